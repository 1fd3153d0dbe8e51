/*
 * aamctl workload register | list | show | revoke, run as the real
 * binary against the database of a running in-process aam-attest: a
 * printed join token works once over HTTP, only its hash is stored, and a
 * revocation applies to the next request.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "aam/err.h"
#include "common/jose.h"
#include "common/json.h"
#include "tests/lib/testutil.h"
#include "tests/unit/attest/attest_testutil.h"

#define AUD "http://127.0.0.1:4000"

struct fx {
	struct at_server srv;
	char aamctl[1024];
	char cfg[1200];
	char out[16384];
	char err[4096];
};

static int
setup(void **state)
{
	const char *bdir = getenv("AAM_BUILD_DIR");
	struct fx *x = calloc(1, sizeof(*x));
	*state = x;
	if (bdir == NULL)
		return 0;
	snprintf(x->aamctl, sizeof(x->aamctl), "%s/tools/aamctl/aamctl", bdir);
	if (access(x->aamctl, X_OK) != 0) {
		x->aamctl[0] = '\0';
		return 0;
	}
	struct at_server_opts o = {.trust_domain = "prod"};
	if (at_server_start(&x->srv, &o) != AAM_OK)
		return -1;
	snprintf(x->cfg, sizeof(x->cfg), "%s/aam.yaml", x->srv.dir);
	char text[2048];
	snprintf(text, sizeof(text),
	         "attest:\n  db: %s\n  issuer: %s\n  token_ttl: 4m\n  trust_domain: prod\n",
	         x->srv.db_path, AT_ISSUER);
	return aam_test_write_file(x->cfg, text, strlen(text), 0600);
}

static int
teardown(void **state)
{
	struct fx *x = *state;
	if (x->srv.srv != NULL)
		at_server_stop(&x->srv);
	free(x);
	return 0;
}

#define REQUIRE_CTL(x)                                                                             \
	do {                                                                                       \
		if ((x)->aamctl[0] == '\0') {                                                      \
			print_message("[  SKIP    ] aamctl not built\n");                          \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

/* Runs aamctl -c CFG workload ARGS (a shell fragment); stdout/stderr captured. */
__attribute__((format(printf, 2, 3))) static int
ctl(struct fx *x, const char *fmt, ...)
{
	char args[4096], cmd[8192], path[1200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "'%s' -c '%s' workload %s >'%s/out.txt' 2>'%s/err.txt'",
	         x->aamctl, x->cfg, args, x->srv.dir, x->srv.dir);
	int rc = system(cmd);
	snprintf(path, sizeof(path), "%s/out.txt", x->srv.dir);
	char *o = aam_test_read_file(path, NULL);
	snprintf(x->out, sizeof(x->out), "%s", o != NULL ? o : "");
	free(o);
	snprintf(path, sizeof(path), "%s/err.txt", x->srv.dir);
	o = aam_test_read_file(path, NULL);
	snprintf(x->err, sizeof(x->err), "%s", o != NULL ? o : "");
	free(o);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static const char *BASE = "--owner alice@example.com --team finance --env prod "
                          "--deployment analyst-v1 --audience " AUD;

static void
test_register_list_show(void **state)
{
	struct fx *x = *state;
	REQUIRE_CTL(x);
	/* PKCS#11 from a public JWK file. */
	EVP_PKEY *k = at_p256_new();
	struct aam_jwk jwk;
	assert_int_equal(aam_jwk_from_pkey(k, NULL, &jwk), AAM_OK);
	json_t *jj = NULL;
	aam_jwk_to_json(&jwk, AAM_JWK_PUBLIC, &jj);
	char *js = json_dumps(jj, 0), p[1200];
	snprintf(p, sizeof(p), "%s/agent.jwk", x->srv.dir);
	aam_test_write_file(p, js, strlen(js), 0600);
	free(js);
	json_decref(jj);
	assert_int_equal(
	        ctl(x, "register spiffe://prod/agent/one --method pkcs11 %s --jwk %s --ttl 10m",
	            BASE, p),
	        0);
	assert_non_null(strstr(x->out, "registered spiffe://prod/agent/one"));

	/* TPM from a PEM EK public key, with a PCR policy. */
	EVP_PKEY *ek = EVP_RSA_gen(2048);
	snprintf(p, sizeof(p), "%s/ek.pem", x->srv.dir);
	FILE *f = fopen(p, "w");
	PEM_write_PUBKEY(f, ek);
	fclose(f);
	assert_int_equal(ctl(x,
	                     "register spiffe://prod/agent/two --method tpm %s --ek-pub %s"
	                     " --pcrs 0,7 --pcr 7=%s",
	                     BASE, p,
	                     "7777777777777777777777777777777777777777777777777777777777777777"),
	                 0);

	assert_int_equal(ctl(x, "list"), 0);
	assert_non_null(strstr(x->out, "spiffe://prod/agent/one"));
	assert_non_null(strstr(x->out, "spiffe://prod/agent/two"));
	assert_int_equal(ctl(x, "list --json"), 0);
	json_t *arr = NULL;
	assert_int_equal(aam_json_parse(x->out, strlen(x->out), NULL, &arr, NULL), AAM_OK);
	assert_int_equal(json_array_size(arr), 2);
	json_decref(arr);

	assert_int_equal(ctl(x, "show spiffe://prod/agent/one --json"), 0);
	json_t *one = NULL;
	assert_int_equal(aam_json_parse(x->out, strlen(x->out), NULL, &one, NULL), AAM_OK);
	assert_string_equal(json_string_value(json_object_get(one, "jkt")), jwk.jkt);
	assert_int_equal(json_integer_value(json_object_get(one, "token_ttl")), 600);
	assert_string_equal(json_string_value(json_object_get(one, "status")), "active");
	json_decref(one);

	assert_int_equal(ctl(x, "show spiffe://prod/agent/two --json"), 0);
	json_t *two = NULL;
	assert_int_equal(aam_json_parse(x->out, strlen(x->out), NULL, &two, NULL), AAM_OK);
	json_t *pcrs = json_object_get(two, "pcrs");
	assert_int_equal(json_array_size(pcrs), 2);
	assert_int_equal(json_integer_value(json_array_get(pcrs, 1)), 7);
	assert_non_null(json_object_get(json_object_get(two, "pcr_values"), "7"));
	assert_int_equal(json_integer_value(json_object_get(two, "token_ttl")), 240);
	/* The EK selector is the SHA-256 of its SubjectPublicKeyInfo. */
	unsigned char *der = NULL;
	int dl = i2d_PUBKEY(ek, &der);
	uint8_t d[32];
	EVP_Digest(der, (size_t)dl, d, NULL, EVP_sha256(), NULL);
	OPENSSL_free(der);
	char hex[65];
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
	assert_string_equal(json_string_value(json_object_get(two, "ek_pub_sha256")), hex);
	json_decref(two);

	assert_int_equal(ctl(x, "show spiffe://prod/agent/one"), 0);
	assert_non_null(strstr(x->out, "owner"));
	assert_int_equal(ctl(x, "show spiffe://prod/agent/none"), 1);
	aam_jwk_uninit(&jwk);
	EVP_PKEY_free(k);
	EVP_PKEY_free(ek);
}

static void
test_refusals(void **state)
{
	struct fx *x = *state;
	REQUIRE_CTL(x);
	const char *jkt = "--jkt NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
	assert_int_equal(ctl(x, "register spiffe://prod/agent/a --method pkcs11 %s %s", BASE, jkt),
	                 0);
	/* Taken. */
	assert_int_equal(ctl(x, "register spiffe://prod/agent/a --method pkcs11 %s %s", BASE, jkt),
	                 1);
	assert_non_null(strstr(x->err, "already registered"));
	/* Outside the trust domain. */
	assert_int_equal(
	        ctl(x, "register spiffe://staging/agent/a --method pkcs11 %s %s", BASE, jkt), 2);
	assert_non_null(strstr(x->err, "trust domain"));
	/* TPM without an EK selector. */
	assert_int_equal(ctl(x, "register spiffe://prod/agent/t --method tpm %s", BASE), 2);
	/* TTL over 15 minutes, unknown method, no audience, unknown option, bad PCR. */
	assert_int_equal(
	        ctl(x, "register spiffe://prod/agent/b --method pkcs11 %s %s --ttl 16m", BASE, jkt),
	        2);
	assert_int_equal(ctl(x, "register spiffe://prod/agent/b --method magic %s", BASE), 2);
	assert_int_equal(ctl(x,
	                     "register spiffe://prod/agent/b --method pkcs11 --owner o --team t "
	                     "--env e --deployment d %s",
	                     jkt),
	                 2);
	assert_int_equal(ctl(x, "register spiffe://prod/agent/b --bogus"), 2);
	assert_int_equal(ctl(x,
	                     "register spiffe://prod/agent/b --method tpm %s --ek-ca-sha256 %s"
	                     " --pcr 24=00",
	                     BASE, "00"),
	                 2);
	assert_int_equal(ctl(x, "frobnicate"), 2);
	assert_int_equal(ctl(x, "revoke"), 2);
	assert_int_equal(ctl(x, "revoke spiffe://prod/agent/nobody"), 1);
	assert_int_equal(ctl(x, "revoke --jti nosuchjti"), 1);
}

/* The join token is printed once, works once, and is stored only as a hash. */
static void
test_join_and_revoke(void **state)
{
	struct fx *x = *state;
	REQUIRE_CTL(x);
	const char *id = "spiffe://prod/agent/joiner";
	assert_int_equal(ctl(x, "register %s --method join %s --join-ttl 1h", id, BASE), 0);
	const char *t = strstr(x->out, "join_token: ");
	assert_non_null(t);
	char tok[128];
	assert_int_equal(sscanf(t, "join_token: %127s", tok), 1);
	assert_true(strncmp(tok, "aamj_", 5) == 0);
	/*
	 * Not in the database files.  grep runs in another process: closing a
	 * descriptor of the database in this one would drop the server's
	 * POSIX locks on it.
	 */
	char cmd[2048];
	snprintf(cmd, sizeof(cmd), "grep -F -q -- '%s' '%s'*", tok + 5, x->srv.db_path);
	int g = system(cmd);
	assert_true(WIFEXITED(g) && WEXITSTATUS(g) == 1);
	/* What is stored is its SHA-256. */
	uint8_t h[32];
	EVP_Digest(tok, strlen(tok), h, NULL, EVP_sha256(), NULL);
	struct attest_reg *reg = calloc(1, sizeof(*reg));
	assert_int_equal(attest_reg_get_by_join(x->srv.db, h, reg), AAM_OK);
	assert_string_equal(reg->spiffe_id, id);
	free(reg);
	assert_int_equal(ctl(x, "show %s --json", id), 0);
	assert_null(strstr(x->out, tok));
	assert_non_null(strstr(x->out, "join-pending"));

	/* Join over HTTP with the printed token. */
	EVP_PKEY *k = at_p256_new();
	struct aam_jwk jwk;
	aam_jwk_from_pkey(k, NULL, &jwk);
	char *nonce = at_challenge(&x->srv, "join", id);
	char msg[1024];
	int n = snprintf(msg, sizeof(msg), "aam-attest-join\n%s\n%s\n%s", nonce, id, AUD);
	uint8_t rs[64];
	at_es256(k, msg, (size_t)n, rs);
	char *sig = at_b64(rs, 64);
	json_t *jj = NULL;
	aam_jwk_to_json(&jwk, AAM_JWK_PUBLIC, &jj);
	json_t *b = json_pack("{s:s,s:s,s:s,s:o,s:s}", "join_token", tok, "audience", AUD, "nonce",
	                      nonce, "jwk", jj, "signature", sig);
	struct at_resp r;
	assert_int_equal(at_request(x->srv.port, "POST", "/v1/attest/join", b, &r), 0);
	assert_int_equal(r.status, 200);
	/* The registration's TTL came from attest.token_ttl (4m). */
	assert_int_equal(json_integer_value(json_object_get(r.json, "expires_in")), 240);
	at_resp_free(&r);
	json_decref(b);
	free(sig);
	free(nonce);

	assert_int_equal(ctl(x, "show %s --json", id), 0);
	json_t *s = NULL;
	assert_int_equal(aam_json_parse(x->out, strlen(x->out), NULL, &s, NULL), AAM_OK);
	assert_string_equal(json_string_value(json_object_get(s, "method")), "pkcs11");
	assert_string_equal(json_string_value(json_object_get(s, "jkt")), jwk.jkt);
	assert_true(json_is_true(json_object_get(s, "join_used")));
	json_decref(s);

	/* Revoked with aamctl: the next request is refused, the feed names it. */
	assert_int_equal(ctl(x, "revoke %s", id), 0);
	assert_non_null(strstr(x->out, "1 live token published"));
	assert_int_equal(ctl(x, "revoke %s", id), 1);
	nonce = at_challenge(&x->srv, "pkcs11", id);
	n = snprintf(msg, sizeof(msg), "aam-attest-pkcs11\n%s\n%s\n%s", nonce, id, AUD);
	at_es256(k, msg, (size_t)n, rs);
	sig = at_b64(rs, 64);
	jj = NULL;
	aam_jwk_to_json(&jwk, AAM_JWK_PUBLIC, &jj);
	b = json_pack("{s:s,s:s,s:s,s:o,s:s}", "spiffe_id", id, "audience", AUD, "nonce", nonce,
	              "jwk", jj, "signature", sig);
	assert_int_equal(at_request(x->srv.port, "POST", "/v1/attest/pkcs11", b, &r), 0);
	assert_string_equal(at_err_code(&r), "registration_revoked");
	at_resp_free(&r);
	json_decref(b);
	free(sig);
	free(nonce);
	assert_int_equal(at_request(x->srv.port, "GET", "/v1/revocations", NULL, &r), 0);
	json_t *list = json_object_get(r.json, "revocations");
	assert_int_equal(json_array_size(list), 2);
	assert_string_equal(
	        json_string_value(json_object_get(json_array_get(list, 0), "spiffe_id")), id);
	at_resp_free(&r);
	aam_jwk_uninit(&jwk);
	EVP_PKEY_free(k);
}

int
main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_register_list_show, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_join_and_revoke, setup, teardown),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
