#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "common/config.h"
#include "common/log.h"
#include "common/yaml.h"
#include "tests/lib/testutil.h"

static void
load_ok(const char *name, const char *text, struct aam_config *cfg)
{
	char err[512] = "unset";
	int rc = aam_config_load_buffer(name, text, strlen(text), cfg, err, sizeof(err));
	if (rc != AAM_OK)
		print_error("unexpected failure: %s\n", err);
	assert_int_equal(rc, AAM_OK);
	assert_string_equal(err, "");
}

/* Expects "aam.yaml:LINE:COL: MSG..." where MSG starts the message. */
static void
load_fails(const char *text, unsigned line, unsigned col, const char *msg)
{
	struct aam_config cfg;
	char err[512];
	int rc = aam_config_load_buffer("aam.yaml", text, strlen(text), &cfg, err, sizeof(err));
	if (rc == AAM_OK)
		aam_config_uninit(&cfg);
	assert_int_equal(rc, AAM_E_CONFIG);
	char want[512];
	if (line)
		snprintf(want, sizeof(want), "aam.yaml:%u:%u: %s", line, col, msg);
	else
		snprintf(want, sizeof(want), "aam.yaml: %s", msg);
	if (strncmp(err, want, strlen(want)) != 0)
		print_error("got  %s\nwant %s\n", err, want);
	assert_true(strncmp(err, want, strlen(want)) == 0);
	/* A failed load leaves nothing to free. */
	assert_null(cfg.path);
	assert_null(cfg.gateway.listen);
}

static const char full[] = "log:\n"
                           "  level: debug\n"
                           "vault:\n"
                           "  state_dir: /srv/aam/vault/\n"
                           "  sockets:\n"
                           "    gateway: /srv/run/gw.sock\n"
                           "    attest: /srv/run/at.sock\n"
                           "    admin: run/admin.sock\n"
                           "  pkcs11:\n"
                           "    module: softhsm2\n"
                           "    token: \"pkcs11:token=aam;manufacturer=SoftHSM%20project\"\n"
                           "    pin_file: pin\n"
                           "attest:\n"
                           "  listen: \"[::1]:4101\"\n"
                           "  db: /srv/attest.db\n"
                           "  issuer: https://attest.example.com\n"
                           "  token_ttl: 10m\n"
                           "gateway:\n"
                           "  listen: 0.0.0.0:8080\n"
                           "  policies: /etc/aam/policies\n"
                           "  max_body: 64KiB\n"
                           "agent:\n"
                           "  listen: localhost:4102\n"
                           "  attest_url: https://attest.example.com:8443/\n"
                           "  gateway_url: http://127.0.0.1:4000\n"
                           "  pkcs11_key: pkcs11:token=agent;object=key;type=private\n"
                           "  audience: https://gw.example.com\n";

static void
test_full_valid_file(void **state)
{
	(void)state;
	struct aam_config c;
	load_ok("/etc/aam/aam.yaml", full, &c);
	assert_string_equal(c.path, "/etc/aam/aam.yaml");
	assert_true(c.log.present);
	assert_int_equal(c.log.level, AAM_LOG_DEBUG);
	assert_true(c.vault.present);
	assert_string_equal(c.vault.state_dir, "/srv/aam/vault/");
	assert_string_equal(c.vault.db, "/srv/aam/vault/vault.db");
	assert_true(c.vault.sockets.present);
	assert_string_equal(c.vault.sockets.gateway, "/srv/run/gw.sock");
	assert_string_equal(c.vault.sockets.attest, "/srv/run/at.sock");
	/* Relative paths are anchored at the config file's folder. */
	assert_string_equal(c.vault.sockets.admin, "/etc/aam/run/admin.sock");
	assert_string_equal(c.vault.pkcs11.module, "softhsm2");
	assert_string_equal(c.vault.pkcs11.token,
	                    "pkcs11:token=aam;manufacturer=SoftHSM%20project");
	assert_string_equal(c.vault.pkcs11.pin_file, "/etc/aam/pin");
	assert_string_equal(c.attest.listen, "[::1]:4101");
	assert_string_equal(c.attest.db, "/srv/attest.db");
	assert_string_equal(c.attest.issuer, "https://attest.example.com");
	assert_int_equal(c.attest.token_ttl_ms, 600000);
	assert_string_equal(c.gateway.listen, "0.0.0.0:8080");
	assert_string_equal(c.gateway.policies, "/etc/aam/policies");
	assert_int_equal(c.gateway.max_body, 65536);
	assert_string_equal(c.agent.listen, "localhost:4102");
	assert_string_equal(c.agent.attest_url, "https://attest.example.com:8443/");
	assert_string_equal(c.agent.gateway_url, "http://127.0.0.1:4000");
	assert_null(c.agent.tcti);
	assert_string_equal(c.agent.pkcs11_key, "pkcs11:token=agent;object=key;type=private");
	assert_string_equal(c.agent.audience, "https://gw.example.com");
	char err[256];
	assert_int_equal(aam_config_require(&c, "vault", err, sizeof(err)), AAM_OK);
	aam_config_uninit(&c);
	assert_null(c.path);
	aam_config_uninit(&c); /* idempotent */
}

static void
test_defaults(void **state)
{
	(void)state;
	struct aam_config c;
	load_ok("aam.yaml", "# nothing configured\n", &c);
	assert_false(c.log.present);
	assert_int_equal(c.log.level, AAM_LOG_INFO);
	assert_false(c.vault.present);
	assert_string_equal(c.vault.state_dir, "/var/lib/aam/vault");
	assert_string_equal(c.vault.db, "/var/lib/aam/vault/vault.db");
	assert_string_equal(c.vault.sockets.gateway, "/run/aam/vault-gateway.sock");
	assert_string_equal(c.vault.sockets.attest, "/run/aam/vault-attest.sock");
	assert_string_equal(c.vault.sockets.admin, "/run/aam/vault-admin.sock");
	assert_null(c.vault.pkcs11.module);
	assert_string_equal(c.attest.listen, "127.0.0.1:4001");
	assert_string_equal(c.attest.db, "/var/lib/aam/attest/attest.db");
	assert_null(c.attest.issuer);
	assert_int_equal(c.attest.token_ttl_ms, 5 * 60 * 1000);
	assert_string_equal(c.gateway.listen, "127.0.0.1:4000");
	assert_int_equal(c.gateway.max_body, 4 * 1024 * 1024);
	assert_null(c.gateway.policies);
	assert_string_equal(c.agent.listen, "127.0.0.1:4002");
	assert_string_equal(c.agent.attest_url, "http://127.0.0.1:4001");
	assert_string_equal(c.agent.gateway_url, "http://127.0.0.1:4000");
	assert_string_equal(c.agent.audience, "http://127.0.0.1:4000");
	aam_config_uninit(&c);

	/* A section given with some keys keeps the defaults of the others; an
	 * empty section (every line commented out) is present with defaults. */
	load_ok("aam.yaml",
	        "log:\n"
	        "  # level: debug\n"
	        "gateway:\n"
	        "  policies: /p\n"
	        "vault:\n"
	        "  state_dir: /x\n"
	        "  pkcs11: {module: /usr/lib/softhsm/libsofthsm2.so, token: \"pkcs11:\"}\n",
	        &c);
	assert_true(c.log.present);
	assert_int_equal(c.log.level, AAM_LOG_INFO);
	assert_string_equal(c.gateway.listen, "127.0.0.1:4000");
	assert_string_equal(c.vault.db, "/x/vault.db");
	assert_false(c.vault.sockets.present);
	assert_true(c.vault.pkcs11.present);
	assert_string_equal(c.vault.pkcs11.module, "/usr/lib/softhsm/libsofthsm2.so");
	assert_null(c.vault.pkcs11.pin_file);
	aam_config_uninit(&c);

	/* A completely empty file is all defaults too. */
	load_ok("aam.yaml", "", &c);
	assert_string_equal(c.gateway.listen, "127.0.0.1:4000");
	aam_config_uninit(&c);
}

static void
test_unknown_keys(void **state)
{
	(void)state;
	load_fails("gateway:\n"
	           "  policies: /p\n"
	           "  listne: 127.0.0.1:4000\n",
	           3, 3, "gateway: unknown key 'listne' (did you mean 'listen'?)");
	load_fails("gatway:\n  listen: 127.0.0.1:4000\n", 1, 1,
	           "unknown section 'gatway' (did you mean 'gateway'?)");
	load_fails("vault:\n  pkcs11:\n    module: x\n    token: \"pkcs11:\"\n    pin: 1234\n", 5,
	           5, "vault.pkcs11: unknown key 'pin'");
	/* No suggestion when nothing is close. */
	struct aam_config c;
	char err[256];
	const char *far = "agent:\n  tcti: device:/dev/tpmrm0\n  completely_else: 1\n";
	assert_int_equal(aam_config_load_buffer("aam.yaml", far, strlen(far), &c, err, sizeof(err)),
	                 AAM_E_CONFIG);
	assert_string_equal(err, "aam.yaml:3:3: agent: unknown key 'completely_else'");
	/* Environment expansion is not a feature: the text is a plain (bad) value. */
	load_fails("gateway:\n  policies: /p\n  listen: ${LISTEN}\n", 3, 11,
	           "gateway.listen: '${LISTEN}': invalid host name");
}

static void
test_wrong_types(void **state)
{
	(void)state;
	load_fails("gateway:\n  policies: /p\n  max_body: [1]\n", 3, 13,
	           "gateway.max_body: expected a size such as 64KiB or 4MiB, got a sequence");
	load_fails("log:\n  level: 3\n", 2, 10,
	           "log.level: expected one of debug, info, warn, error, got an integer");
	load_fails("log:\n  level: verbose\n", 2, 10,
	           "log.level: expected one of debug, info, warn, error, got 'verbose'");
	load_fails("gateway:\n  policies: /p\n  listen: 4000\n", 3, 11,
	           "gateway.listen: expected a string, got an integer (quote it)");
	load_fails("vault: 5\n", 1, 8, "vault: expected a mapping, got an integer");
	load_fails("- a\n- b\n", 1, 1, "expected a mapping of sections, got a sequence");
	load_fails("attest:\n  issuer: https://a\n  token_ttl: {m: 5}\n", 3, 14,
	           "attest.token_ttl: expected a duration such as 30s, 5m or 1h30m, got a mapping");
	load_fails("gateway:\n  policies:\n", 2, 12, "gateway.policies: expected a path, got null");
	load_fails("gateway:\n  policies: \"\"\n", 2, 13, "gateway.policies: must not be empty");
	load_fails("gateway:\n  policies: \"/p\\nx\"\n", 2, 13,
	           "gateway.policies: must not contain control characters");
}

static void
test_ttl_out_of_range(void **state)
{
	(void)state;
	load_fails("attest:\n  issuer: https://attest.example.com\n  token_ttl: 16m\n", 3, 14,
	           "attest.token_ttl: must be between 1s and 15m");
	load_fails("attest:\n  issuer: https://attest.example.com\n  token_ttl: 0s\n", 3, 14,
	           "attest.token_ttl: must be between 1s and 15m");
	load_fails("attest:\n  issuer: https://a.example\n  token_ttl: 900001ms\n", 3, 14,
	           "attest.token_ttl: must be between");
	struct aam_config c;
	load_ok("aam.yaml", "attest:\n  issuer: https://a.example\n  token_ttl: 14m60s\n", &c);
	assert_int_equal(c.attest.token_ttl_ms, 15 * 60 * 1000);
	aam_config_uninit(&c);
}

static void
test_bad_duration(void **state)
{
	(void)state;
	load_fails("attest:\n  issuer: https://a\n  token_ttl: 5\n", 3, 14,
	           "attest.token_ttl: a duration needs a unit, as in 30s or 5m");
	load_fails("attest:\n  issuer: https://a\n  token_ttl: 5 minutes\n", 3, 14,
	           "attest.token_ttl: invalid duration '5 minutes'");
	load_fails("attest:\n  issuer: https://a\n  token_ttl: \"\"\n", 3, 14,
	           "attest.token_ttl: invalid duration ''");

	const char *bad[] = {"",
	                     "s",
	                     "5",
	                     "5x",
	                     "1m1h",
	                     "1s1s",
	                     "-5s",
	                     "1.5m",
	                     "5S",
	                     "9999999999999999s",
	                     "106751991167301d",
	                     " 5s",
	                     "5s "};
	int64_t ms;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (aam_config_parse_duration(bad[i], &ms) == AAM_OK)
			print_error("accepted '%s'\n", bad[i]);
		assert_int_equal(aam_config_parse_duration(bad[i], &ms), AAM_E_INVAL);
	}
	const struct {
		const char *s;
		int64_t ms;
	} good[] = {{"500ms", 500},    {"30s", 30000},        {"5m", 300000}, {"1h30m", 5400000},
	            {"2d", 172800000}, {"1m30s250ms", 90250}, {"0s", 0}};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(aam_config_parse_duration(good[i].s, &ms), AAM_OK);
		assert_true(ms == good[i].ms);
	}
}

static void
test_bad_size(void **state)
{
	(void)state;
	load_fails("gateway:\n  policies: /p\n  max_body: 4MB\n", 3, 13,
	           "gateway.max_body: invalid size '4MB' (units: B, KiB, MiB, GiB, TiB)");
	load_fails("gateway:\n  policies: /p\n  max_body: -1\n", 3, 13,
	           "gateway.max_body: invalid size");
	load_fails("gateway:\n  policies: /p\n  max_body: 2GiB\n", 3, 13,
	           "gateway.max_body: must be between 1KiB and 1GiB");
	load_fails("gateway:\n  policies: /p\n  max_body: 1000\n", 3, 13,
	           "gateway.max_body: must be between 1KiB and 1GiB");

	const char *bad[] = {"",
	                     "KiB",
	                     "4 MiB",
	                     "4mib",
	                     "4k",
	                     "1.5MiB",
	                     "-1",
	                     "99999999999999999",
	                     "20000000TiB",
	                     "0x10"};
	uint64_t b;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(aam_config_parse_size(bad[i], &b), AAM_E_INVAL);
	assert_int_equal(aam_config_parse_size("64KiB", &b), AAM_OK);
	assert_int_equal(b, 65536);
	assert_int_equal(aam_config_parse_size("1MiB", &b), AAM_OK);
	assert_int_equal(b, 1048576);
	assert_int_equal(aam_config_parse_size("512B", &b), AAM_OK);
	assert_int_equal(b, 512);
	assert_int_equal(aam_config_parse_size("2048", &b), AAM_OK);
	assert_int_equal(b, 2048);

	/* A plain integer is a number of bytes. */
	struct aam_config c;
	load_ok("aam.yaml", "gateway:\n  policies: /p\n  max_body: 2048\n", &c);
	assert_int_equal(c.gateway.max_body, 2048);
	aam_config_uninit(&c);
}

static void
test_listen_addresses(void **state)
{
	(void)state;
	load_fails("gateway:\n  policies: /p\n  listen: 127.0.0.1:99999\n", 3, 11,
	           "gateway.listen: '127.0.0.1:99999': port must be a number from 1 to 65535");
	load_fails("agent:\n  tcti: x\n  listen: ::1:4002\n", 3, 11,
	           "agent.listen: '::1:4002': IPv6 addresses need brackets");
	load_fails("attest:\n  issuer: https://a\n  listen: 300.1.1.1:4001\n", 3, 11,
	           "attest.listen: '300.1.1.1:4001': invalid IPv4 address");

	char host[AAM_CONFIG_HOST_MAX];
	uint16_t port = 0;
	assert_int_equal(aam_config_parse_listen("127.0.0.1:4000", host, &port), AAM_OK);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 4000);
	assert_int_equal(aam_config_parse_listen("[::1]:65535", host, &port), AAM_OK);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 65535);
	assert_int_equal(aam_config_parse_listen("gw-1.example.com:1", host, &port), AAM_OK);
	assert_string_equal(host, "gw-1.example.com");
	assert_int_equal(port, 1);
	assert_int_equal(aam_config_parse_listen("[::]:4000", host, &port), AAM_OK);
	assert_string_equal(host, "::");

	const char *bad[] = {"",
	                     "127.0.0.1",
	                     "127.0.0.1:",
	                     ":4000",
	                     "127.0.0.1:0",
	                     "127.0.0.1:65536",
	                     "127.0.0.1:04000",
	                     "127.0.0.1:+400",
	                     "127.0.0.1:40a0",
	                     "::1:4000",
	                     "[::1]",
	                     "[::1:4000",
	                     "[nothex]:4000",
	                     "[::1]x:4000",
	                     "1.2.3:4000",
	                     "256.0.0.1:4000",
	                     "-bad.example:4000",
	                     "bad-.example:4000",
	                     "a..b:4000",
	                     "host name:4000",
	                     "user@host:4000",
	                     "*:4000",
	                     NULL};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = aam_config_parse_listen(bad[i], host, &port);
		if (rc == AAM_OK)
			print_error("accepted '%s'\n", bad[i] ? bad[i] : "(null)");
		assert_int_equal(rc, AAM_E_INVAL);
	}
	/* A 64-character label is one too many. */
	char longlabel[80];
	memset(longlabel, 'a', 64);
	memcpy(longlabel + 64, ".x:1", 5);
	assert_int_equal(aam_config_parse_listen(longlabel, host, &port), AAM_E_INVAL);
	memcpy(longlabel + 63, ".x:1", 5);
	assert_int_equal(aam_config_parse_listen(longlabel, host, &port), AAM_OK);
}

static void
test_missing_required(void **state)
{
	(void)state;
	load_fails("gateway:\n  listen: 127.0.0.1:4000\n", 1, 1,
	           "gateway: missing required key 'policies'");
	load_fails("log: {level: warn}\nattest: {}\n", 2, 1,
	           "attest: missing required key 'issuer'");
	load_fails("vault:\n  state_dir: /v\n", 1, 1, "vault: missing required key 'pkcs11'");
	load_fails("vault:\n  pkcs11:\n    module: softhsm2\n", 2, 3,
	           "vault.pkcs11: missing required key 'token'");
	/* An empty section is present, so its required keys are too. */
	load_fails("gateway:\n", 1, 1, "gateway: missing required key 'policies'");
}

static void
test_agent_key_rules(void **state)
{
	(void)state;
	load_fails("agent:\n  listen: 127.0.0.1:4002\n", 1, 1,
	           "agent: no key: set tcti (a TPM) or pkcs11_key (a PKCS#11 key)");
	load_fails("agent:\n  tcti: device:/dev/tpmrm0\n  pkcs11_key: \"pkcs11:object=k\"\n", 1, 1,
	           "agent: set tcti (a TPM) or pkcs11_key (a PKCS#11 key), not both");
	struct aam_config c;
	load_ok("aam.yaml", "agent:\n  tcti: swtpm:host=127.0.0.1,port=2321\n", &c);
	assert_string_equal(c.agent.tcti, "swtpm:host=127.0.0.1,port=2321");
	assert_string_equal(c.agent.audience, c.agent.gateway_url);
	aam_config_uninit(&c);
}

static void
test_pkcs11_uris(void **state)
{
	(void)state;
	/* A PIN must never be written into the config, not even inside a URI. */
	load_fails("vault:\n  pkcs11:\n    module: softhsm2\n"
	           "    token: \"pkcs11:token=aam?pin-value=1234\"\n",
	           4, 12,
	           "vault.pkcs11.token: 'pkcs11:token=aam?pin-value=1234': pin-value is not");
	load_fails("agent:\n  pkcs11_key: \"pkcs11:object=k;pin-value=1\"\n", 2, 15,
	           "agent.pkcs11_key: 'pkcs11:object=k;pin-value=1': pin-value is not allowed");
	load_fails("agent:\n  pkcs11_key: /dev/key\n", 2, 15,
	           "agent.pkcs11_key: '/dev/key': expected an RFC 7512 URI");
	load_fails("vault:\n  pkcs11:\n    module: \"soft hsm\"\n    token: \"pkcs11:\"\n", 3, 13,
	           "vault.pkcs11.module: 'soft hsm' is neither a path nor a module name");

	char why[160];
	const char *good[] = {
	        "pkcs11:", "pkcs11:token=aam",
	        "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;object=k;type=private",
	        "pkcs11:object=k?module-name=softhsm2&pin-source=file:/etc/aam/pin",
	        "pkcs11:id=%01%02"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(aam_config_check_pkcs11_uri(good[i], why, sizeof(why)), AAM_OK);
	const char *bad[] = {"pkcs11",
	                     "PKCS12:token=a",
	                     "pkcs11:token=a b",
	                     "pkcs11:id=%0",
	                     "pkcs11:id=%zz",
	                     "pkcs11:token=a?pin-value=1&x=y",
	                     "pkcs11:token=a?x=y&pin-value",
	                     "pkcs11:token=\"a\""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (aam_config_check_pkcs11_uri(bad[i], why, sizeof(why)) == AAM_OK)
			print_error("accepted '%s'\n", bad[i]);
		assert_int_equal(aam_config_check_pkcs11_uri(bad[i], why, sizeof(why)),
		                 AAM_E_INVAL);
	}
}

static void
test_urls(void **state)
{
	(void)state;
	load_fails("attest:\n  issuer: https://user:pw@attest.example.com\n", 2, 11,
	           "attest.issuer: 'https://user:pw@attest.example.com': URLs must not carry "
	           "credentials");
	char why[160];
	const char *good[] = {"https://a.example", "http://127.0.0.1:4001",
	                      "https://[::1]:8443/x?y=z", "https://attest.example.com/v1/"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(aam_config_check_url(good[i], why, sizeof(why)), AAM_OK);
	const char *bad[] = {"ftp://a.example", "https://",         "https:///x",
	                     "a.example",       "https://a b",      "https://a.example#frag",
	                     "https://a:0",     "https://[::1",     "https://a.example:99999/",
	                     "HTTPS://a",       "https://a\xc3\xa9"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (aam_config_check_url(bad[i], why, sizeof(why)) == AAM_OK)
			print_error("accepted '%s'\n", bad[i]);
		assert_int_equal(aam_config_check_url(bad[i], why, sizeof(why)), AAM_E_INVAL);
	}
}

static void
test_yaml_errors_keep_positions(void **state)
{
	(void)state;
	load_fails("gateway:\n  policies: /p\n  policies: /q\n", 3, 3,
	           "duplicate key 'policies' (first at line 2)");
	load_fails("gateway:\n\tpolicies: /p\n", 2, 1,
	           "found character that cannot start any token");
	load_fails("log:\n  level: info\n---\nlog:\n  level: debug\n", 4, 1,
	           "a configuration file holds a single YAML document");
	/* The merge key is refused by the YAML layer, before any section is read. */
	load_fails("base: &b {policies: /p}\ngateway:\n  <<: *b\n", 3, 3, "merge keys ('<<')");
	load_fails("gateway:\n  <<: {policies: /p}\n", 2, 3, "merge keys");
	load_fails("log: [\n", 2, 1, "did not find expected node content");
	/* Tight limits: a config file is small. */
	char big[6000];
	memset(big, 'x', sizeof(big));
	memcpy(big, "a: \"", 4);
	memcpy(big + sizeof(big) - 2, "\"\n", 2);
	struct aam_config c;
	char err[512];
	assert_int_equal(aam_config_load_buffer("aam.yaml", big, sizeof(big), &c, err, sizeof(err)),
	                 AAM_E_CONFIG);
	assert_non_null(strstr(err, "aam.yaml:1:4: scalar longer than 4096 bytes"));
}

static void
test_files(void **state)
{
	(void)state;
	char *dir = aam_test_mkdtemp("cfgtest");
	char path[512], err[512];
	struct aam_config c;
	snprintf(path, sizeof(path), "%s/missing.yaml", dir);
	assert_int_equal(aam_config_load(path, &c, err, sizeof(err)), AAM_E_NOTFOUND);
	char want[600];
	snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", path);
	assert_string_equal(err, want);

	snprintf(path, sizeof(path), "%s/aam.yaml", dir);
	const char *text = "gateway:\n  policies: policies\n  max_body: 1MiB\n";
	assert_int_equal(aam_test_write_file(path, text, strlen(text), 0600), 0);
	assert_int_equal(aam_config_load(path, &c, err, sizeof(err)), AAM_OK);
	snprintf(want, sizeof(want), "%s/policies", dir);
	assert_string_equal(c.gateway.policies, want);
	assert_int_equal(c.gateway.max_body, 1024 * 1024);
	assert_string_equal(c.path, path);
	aam_config_uninit(&c);

	text = "gateway:\n  policies: /p\n  max_body: 1 MiB\n";
	assert_int_equal(aam_test_write_file(path, text, strlen(text), 0600), 0);
	assert_int_equal(aam_config_load(path, &c, err, sizeof(err)), AAM_E_CONFIG);
	snprintf(want, sizeof(want), "%s:3:13: gateway.max_body: invalid size '1 MiB'", path);
	assert_true(strncmp(err, want, strlen(want)) == 0);
	aam_test_rmtree(dir);
	free(dir);
}

static void
test_require(void **state)
{
	(void)state;
	struct aam_config c;
	char err[256];
	load_ok("/etc/aam/aam.yaml", "gateway:\n  policies: /p\n", &c);
	assert_int_equal(aam_config_require(&c, "gateway", err, sizeof(err)), AAM_OK);
	assert_int_equal(aam_config_require(&c, "log", err, sizeof(err)), AAM_E_CONFIG);
	assert_int_equal(aam_config_require(&c, "vault", err, sizeof(err)), AAM_E_CONFIG);
	assert_string_equal(err, "/etc/aam/aam.yaml: missing section 'vault'");
	assert_int_equal(aam_config_require(&c, "nonsense", err, sizeof(err)), AAM_E_INVAL);
	aam_config_uninit(&c);
}

/* ---- the generic loader with a table of its own ---- */

struct demo_inner {
	bool present;
	int64_t n;
};

struct demo {
	bool present;
	char *name;
	bool flag;
	int64_t count;
	struct aam_config_strlist tags;
	uint64_t size;
	int64_t wait;
	char *opt;
	struct demo_inner inner;
};

static int
starts_with_x(const char *v, char *why, size_t whylen)
{
	if (v[0] == 'x' || v[0] == '\0')
		return AAM_OK;
	snprintf(why, whylen, "must start with x");
	return AAM_E_INVAL;
}

static const struct aam_config_field inner_fields[] = {
        {.key = "n",
         .type = AAM_CFG_INT,
         .offset = offsetof(struct demo_inner, n),
         .def = "-5",
         .min = -10,
         .max = 10},
};
static const struct aam_config_section inner_section = {
        .name = "demo.inner",
        .fields = inner_fields,
        .nfields = 1,
        .present_offset = offsetof(struct demo_inner, present),
};
static const struct aam_config_field demo_fields[] = {
        {.key = "name",
         .type = AAM_CFG_STR,
         .offset = offsetof(struct demo, name),
         .required = true},
        {.key = "flag", .type = AAM_CFG_BOOL, .offset = offsetof(struct demo, flag), .def = "true"},
        {.key = "count",
         .type = AAM_CFG_INT,
         .offset = offsetof(struct demo, count),
         .def = "3",
         .min = 1,
         .max = 10},
        {.key = "tags",
         .type = AAM_CFG_LIST_STR,
         .offset = offsetof(struct demo, tags),
         .max = 3,
         .check = starts_with_x},
        {.key = "size", .type = AAM_CFG_SIZE, .offset = offsetof(struct demo, size), .def = "1KiB"},
        {.key = "wait",
         .type = AAM_CFG_DURATION,
         .offset = offsetof(struct demo, wait),
         .def = "1500ms"},
        {.key = "opt",
         .type = AAM_CFG_STR,
         .offset = offsetof(struct demo, opt),
         .check = starts_with_x,
         .flags = AAM_CFG_F_EMPTY_OK},
        {.key = "inner",
         .type = AAM_CFG_SECTION,
         .offset = offsetof(struct demo, inner),
         .section = &inner_section},
};
static const struct aam_config_section demo_section = {
        .name = "demo",
        .fields = demo_fields,
        .nfields = sizeof(demo_fields) / sizeof(demo_fields[0]),
        .present_offset = offsetof(struct demo, present),
};

/* Loads TEXT's "demo" key with the demo table; returns the code, ERR gets the message. */
static int
demo_load(const char *text, struct demo *d, char *err, size_t errlen)
{
	aam_yaml_stream *s = NULL;
	struct aam_yaml_error e;
	memset(d, 0, sizeof(*d));
	assert_int_equal(aam_yaml_parse("demo.yaml", text, strlen(text), NULL, &s, &e), AAM_OK);
	const struct aam_yaml_node *root = aam_yaml_stream_doc(s, 0);
	assert_int_equal(aam_config_section_defaults(&demo_section, d), AAM_OK);
	int rc = aam_config_section_load(&demo_section, root->keys[0], root->items[0], "demo.yaml",
	                                 d, &e);
	aam_yaml_error_format(&e, err, errlen);
	aam_yaml_stream_free(s);
	return rc;
}

static void
test_generic_table(void **state)
{
	(void)state;
	struct demo d;
	char err[512];
	assert_int_equal(demo_load("demo:\n  name: n1\n", &d, err, sizeof(err)), AAM_OK);
	assert_true(d.present);
	assert_string_equal(d.name, "n1");
	assert_true(d.flag);
	assert_int_equal(d.count, 3);
	assert_int_equal(d.tags.n, 0);
	assert_int_equal(d.size, 1024);
	assert_int_equal(d.wait, 1500);
	assert_null(d.opt);
	assert_false(d.inner.present);
	assert_int_equal(d.inner.n, -5);
	aam_config_section_uninit(&demo_section, &d);

	assert_int_equal(demo_load("demo:\n  name: n2\n  flag: false\n  count: 10\n"
	                           "  tags: [xa, xb, xc]\n  size: 2MiB\n  wait: 1h\n  opt: ''\n"
	                           "  inner: {n: 10}\n",
	                           &d, err, sizeof(err)),
	                 AAM_OK);
	assert_false(d.flag);
	assert_int_equal(d.count, 10);
	assert_int_equal(d.tags.n, 3);
	assert_string_equal(d.tags.v[1], "xb");
	assert_int_equal(d.size, 2 * 1024 * 1024);
	assert_int_equal(d.wait, 3600000);
	assert_string_equal(d.opt, "");
	assert_true(d.inner.present);
	assert_int_equal(d.inner.n, 10);
	aam_config_section_uninit(&demo_section, &d);
	assert_null(d.name);
	assert_null(d.tags.v);

	const struct {
		const char *text;
		const char *want;
	} cases[] = {
	        {"demo:\n  flag: true\n", "demo.yaml:1:1: demo: missing required key 'name'"},
	        {"demo:\n  name: a\n  count: 11\n",
	         "demo.yaml:3:10: demo.count: must be between 1 and 10"},
	        {"demo:\n  name: a\n  count: 0x7fffffffffffffffff\n",
	         "demo.yaml:3:10: demo.count: integer out of range"},
	        {"demo:\n  name: a\n  flag: yes\n",
	         "demo.yaml:3:9: demo.flag: expected a boolean (true or false), got a string "
	         "(yes/no/on/off are strings in YAML 1.2)"},
	        {"demo:\n  name: a\n  tags: [xa, b]\n",
	         "demo.yaml:3:14: demo.tags: 'b': must start with x"},
	        {"demo:\n  name: a\n  tags: [x1, x2, x3, x4]\n",
	         "demo.yaml:3:9: demo.tags: more than 3 items"},
	        {"demo:\n  name: a\n  tags: xa\n",
	         "demo.yaml:3:9: demo.tags: expected a list of strings, got a string"},
	        {"demo:\n  name: a\n  tags: [[x]]\n",
	         "demo.yaml:3:10: demo.tags: expected a string, got a sequence"},
	        {"demo:\n  name: a\n  opt: y\n", "demo.yaml:3:8: demo.opt: 'y': must start with x"},
	        {"demo:\n  name: \"\"\n", "demo.yaml:2:9: demo.name: must not be empty"},
	        {"demo:\n  name: a\n  tags: [xa, '']\n",
	         "demo.yaml:3:14: demo.tags: must not be empty"},
	        {"demo:\n  name: a\n  inner: {n: -11}\n",
	         "demo.yaml:3:14: demo.inner.n: must be between -10 and 10"},
	        {"demo:\n  name: a\n  inner: {nn: 1}\n",
	         "demo.yaml:3:11: demo.inner: unknown key 'nn' (did you mean 'n'?)"},
	        {"demo:\n  name: a\n  inner: 7\n",
	         "demo.yaml:3:10: demo.inner: expected a mapping, got an integer"},
	        {"demo:\n  name: a\n  wait: 1.5s\n", "demo.yaml:3:9: demo.wait: invalid duration"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = demo_load(cases[i].text, &d, err, sizeof(err));
		if (rc != AAM_E_CONFIG || strncmp(err, cases[i].want, strlen(cases[i].want)) != 0)
			print_error("case %zu: got %s\n", i, err);
		assert_int_equal(rc, AAM_E_CONFIG);
		assert_true(strncmp(err, cases[i].want, strlen(cases[i].want)) == 0);
		aam_config_section_uninit(&demo_section, &d);
	}
}

/* Every option in the tables is documented and shown in the example file. */
static void
check_documented(const struct aam_config_section *d, const char *prefix, const char *doc,
                 const char *example)
{
	for (size_t i = 0; i < d->nfields; i++) {
		const struct aam_config_field *f = &d->fields[i];
		char dotted[128], key[80];
		snprintf(dotted, sizeof(dotted), "%s%s%s", prefix, prefix[0] ? "." : "", f->key);
		snprintf(key, sizeof(key), "%s:", f->key);
		if (strstr(doc, dotted) == NULL)
			print_error("docs/CONFIG.md does not mention %s\n", dotted);
		assert_non_null(strstr(doc, dotted));
		if (strstr(example, key) == NULL)
			print_error("aam.yaml example does not show %s\n", dotted);
		assert_non_null(strstr(example, key));
		if (f->type == AAM_CFG_SECTION)
			check_documented(f->section, dotted, doc, example);
	}
}

static void
test_docs_and_example(void **state)
{
	(void)state;
	char *docp = aam_test_source_path("docs/CONFIG.md");
	char *exp = aam_test_source_path("deploy/etc/aam/aam.yaml");
	char *doc = aam_test_read_file(docp, NULL);
	char *example = aam_test_read_file(exp, NULL);
	assert_non_null(doc);
	assert_non_null(example);
	check_documented(aam_config_schema(), "", doc, example);

	/* The example is a working configuration. */
	struct aam_config c;
	char err[512];
	int rc = aam_config_load(exp, &c, err, sizeof(err));
	if (rc != AAM_OK)
		print_error("%s\n", err);
	assert_int_equal(rc, AAM_OK);
	assert_true(c.vault.present && c.attest.present && c.gateway.present && c.agent.present);
	aam_config_uninit(&c);
	free(doc);
	free(example);
	free(docp);
	free(exp);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_full_valid_file),
	        cmocka_unit_test(test_defaults),
	        cmocka_unit_test(test_unknown_keys),
	        cmocka_unit_test(test_wrong_types),
	        cmocka_unit_test(test_ttl_out_of_range),
	        cmocka_unit_test(test_bad_duration),
	        cmocka_unit_test(test_bad_size),
	        cmocka_unit_test(test_listen_addresses),
	        cmocka_unit_test(test_missing_required),
	        cmocka_unit_test(test_agent_key_rules),
	        cmocka_unit_test(test_pkcs11_uris),
	        cmocka_unit_test(test_urls),
	        cmocka_unit_test(test_yaml_errors_keep_positions),
	        cmocka_unit_test(test_files),
	        cmocka_unit_test(test_require),
	        cmocka_unit_test(test_generic_table),
	        cmocka_unit_test(test_docs_and_example),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
