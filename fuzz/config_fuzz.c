/*
 * Fuzz target for the configuration loader and its value syntaxes.  A
 * loaded configuration must satisfy what the daemons will assume without
 * checking again (listen addresses parse, the token lifetime is within
 * bounds, every path is set); a refused one must say where, and leave
 * nothing allocated.  The raw input is also fed to each value parser.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "common/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_listen(const char *s)
{
	char host[AAM_CONFIG_HOST_MAX];
	uint16_t port = 0;
	if (s == NULL || aam_config_parse_listen(s, host, &port) != AAM_OK || port == 0)
		abort();
}

static void
check_loaded(const struct aam_config *c)
{
	check_listen(c->attest.listen);
	check_listen(c->gateway.listen);
	check_listen(c->agent.listen);
	if (c->attest.token_ttl_ms < 1000 || c->attest.token_ttl_ms > 15 * 60 * 1000)
		abort();
	if (c->gateway.max_body < 1024 || c->gateway.max_body > 1024 * 1024 * 1024)
		abort();
	if (c->vault.db == NULL || c->vault.state_dir == NULL || c->agent.audience == NULL)
		abort();
	if (c->gateway.present && c->gateway.policies == NULL)
		abort();
	if (c->vault.present && (c->vault.pkcs11.module == NULL || c->vault.pkcs11.token == NULL))
		abort();
	if (c->agent.present && (c->agent.tcti == NULL) == (c->agent.pkcs11_key == NULL))
		abort();
	if (c->vault.pkcs11.token != NULL &&
	    aam_config_check_pkcs11_uri(c->vault.pkcs11.token, NULL, 0) != AAM_OK)
		abort();
}

static void
value_parsers(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (s == NULL)
		return;
	memcpy(s, data, size);
	s[size] = '\0';
	char host[AAM_CONFIG_HOST_MAX], why[160];
	uint16_t port;
	int64_t ms;
	uint64_t bytes;
	if (aam_config_parse_listen(s, host, &port) == AAM_OK &&
	    (port == 0 || strlen(host) >= AAM_CONFIG_HOST_MAX))
		abort();
	if (aam_config_parse_duration(s, &ms) == AAM_OK && ms < 0)
		abort();
	(void)aam_config_parse_size(s, &bytes);
	(void)aam_config_check_url(s, why, sizeof(why));
	(void)aam_config_check_pkcs11_uri(s, why, sizeof(why));
	free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct aam_config c;
	char err[512];
	int rc = aam_config_load_buffer("/etc/aam/aam.yaml", data, size, &c, err, sizeof(err));
	if (rc == AAM_OK) {
		check_loaded(&c);
		aam_config_uninit(&c);
	} else {
		if (rc != AAM_E_CONFIG && rc != AAM_E_NOMEM)
			abort();
		if (strncmp(err, "/etc/aam/aam.yaml:", 18) != 0 || c.path != NULL)
			abort();
	}
	value_parsers(data, size);
	return 0;
}
