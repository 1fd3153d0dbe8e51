/*
 * aam-attest's HTTP API beyond the evidence verifiers: join tokens, the
 * JWKS and SPIFFE bundle, the revocation feed, rate limiting of failed
 * attempts, and hostile or malformed requests.  Keys are OpenSSL keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "aam/err.h"
#include "common/jose.h"
#include "tests/lib/testutil.h"
#include "tests/unit/attest/attest_testutil.h"

#define AUD "http://127.0.0.1:4000"

static int
setup(void **state)
{
	struct at_server *f = calloc(1, sizeof(*f));
	if (at_server_start(f, NULL) != AAM_OK)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct at_server *f = *state;
	at_server_stop(f);
	free(f);
	return 0;
}

static void
jwk_of(EVP_PKEY *k, struct aam_jwk *out)
{
	assert_int_equal(aam_jwk_from_pkey(k, NULL, out), AAM_OK);
}

/* A PKCS#11-style or join proof made with an OpenSSL key. */
static char *
sign_ctx(EVP_PKEY *k, const char *ctx, const char *nonce, const char *id, const char *aud)
{
	char msg[4096];
	int n = snprintf(msg, sizeof(msg), "%s%s\n%s\n%s", ctx, nonce, id, aud);
	uint8_t rs[64];
	at_es256(k, msg, (size_t)n, rs);
	return at_b64(rs, sizeof(rs));
}

static json_t *
pop_body(EVP_PKEY *k, const char *ctx, const char *nonce, const char *id, const char *aud,
         const char *join_token)
{
	struct aam_jwk jwk;
	jwk_of(k, &jwk);
	json_t *jj = NULL;
	aam_jwk_to_json(&jwk, AAM_JWK_PUBLIC, &jj);
	aam_jwk_uninit(&jwk);
	char *sig = sign_ctx(k, ctx, nonce, id, aud);
	json_t *b = json_pack("{s:s,s:s,s:o,s:s}", "audience", aud, "nonce", nonce, "jwk", jj,
	                      "signature", sig);
	free(sig);
	if (join_token != NULL)
		json_object_set_new(b, "join_token", json_string(join_token));
	else
		json_object_set_new(b, "spiffe_id", json_string(id));
	return b;
}

static const char *
post(struct at_server *f, const char *path, json_t *b, json_t **ok)
{
	static char code[64];
	struct at_resp r;
	assert_int_equal(at_request(f->port, "POST", path, b, &r), 0);
	json_decref(b);
	const char *c = r.status == 200 ? "ok" : at_err_code(&r);
	snprintf(code, sizeof(code), "%s", c != NULL ? c : "?");
	if (ok != NULL && r.status == 200)
		*ok = json_incref(r.json);
	at_resp_free(&r);
	return code;
}

static void
register_join(struct at_server *f, const char *id, const char *token, int64_t expires)
{
	struct attest_reg *r = calloc(1, sizeof(*r));
	at_reg_init(r, id, ATTEST_METHOD_JOIN, AUD);
	r->has_join = true;
	EVP_Digest(token, strlen(token), r->join_hash, NULL, EVP_sha256(), NULL);
	r->join_expires = expires;
	assert_int_equal(at_register(f, r), AAM_OK);
	free(r);
}

/*
 * A join token is used once, with proof of a fresh key; the registration
 * then records that key and the agent re-attests with method pkcs11.
 */
static void
test_join_flow(void **state)
{
	struct at_server *f = *state;
	const char *id = "spiffe://prod/agent/new-agent", *tok = "aamj_test-token-1";
	register_join(f, id, tok, (int64_t)time(NULL) + 3600);
	EVP_PKEY *k = at_p256_new(), *k2 = at_p256_new();

	/* A wrong token. */
	char *n = at_challenge(f, "join", NULL);
	assert_string_equal(post(f, "/v1/attest/join",
	                         pop_body(k, "aam-attest-join\n", n, id, AUD, "aamj_wrong"), NULL),
	                    "join_token_invalid");
	free(n);
	/* The right token with a proof for another identity does not use it up. */
	n = at_challenge(f, "join", NULL);
	json_t *b = pop_body(k, "aam-attest-join\n", n, "spiffe://prod/agent/x", AUD, tok);
	assert_string_equal(post(f, "/v1/attest/join", b, NULL), "signature_invalid");
	free(n);
	/* A pkcs11 context string is not a join proof. */
	n = at_challenge(f, "join", id);
	assert_string_equal(post(f, "/v1/attest/join",
	                         pop_body(k, "aam-attest-pkcs11\n", n, id, AUD, tok), NULL),
	                    "signature_invalid");
	free(n);

	n = at_challenge(f, "join", id);
	json_t *tr = NULL;
	assert_string_equal(
	        post(f, "/v1/attest/join", pop_body(k, "aam-attest-join\n", n, id, AUD, tok), &tr),
	        "ok");
	free(n);
	json_t *c = at_verify_token(f, json_string_value(json_object_get(tr, "token")), AUD);
	assert_non_null(c);
	assert_string_equal(json_string_value(json_object_get(c, "sub")), id);
	assert_string_equal(json_string_value(json_object_get(json_object_get(c, "aam"), "method")),
	                    "join");
	struct aam_jwk jwk;
	jwk_of(k, &jwk);
	const char *jkt = NULL;
	aam_jose_claims_cnf_jkt(c, &jkt);
	assert_string_equal(jkt, jwk.jkt);
	json_decref(c);
	json_decref(tr);

	/* The registration recorded the key. */
	struct attest_reg *r = calloc(1, sizeof(*r));
	assert_int_equal(attest_reg_get(f->db, id, r), AAM_OK);
	assert_int_equal(r->method, ATTEST_METHOD_PKCS11);
	assert_true(r->join_used);
	assert_string_equal(r->key_jkt, jwk.jkt);
	free(r);
	aam_jwk_uninit(&jwk);

	/* One use only, whatever key comes next. */
	n = at_challenge(f, "join", NULL);
	assert_string_equal(post(f, "/v1/attest/join",
	                         pop_body(k2, "aam-attest-join\n", n, id, AUD, tok), NULL),
	                    "join_token_used");
	free(n);
	/* The agent now attests with its key, method pkcs11. */
	n = at_challenge(f, "pkcs11", id);
	assert_string_equal(post(f, "/v1/attest/pkcs11",
	                         pop_body(k, "aam-attest-pkcs11\n", n, id, AUD, NULL), NULL),
	                    "ok");
	free(n);
	n = at_challenge(f, "pkcs11", id);
	assert_string_equal(post(f, "/v1/attest/pkcs11",
	                         pop_body(k2, "aam-attest-pkcs11\n", n, id, AUD, NULL), NULL),
	                    "key_mismatch");
	free(n);
	EVP_PKEY_free(k);
	EVP_PKEY_free(k2);
}

static void
test_join_expired_and_method(void **state)
{
	struct at_server *f = *state;
	const char *id = "spiffe://prod/agent/late", *tok = "aamj_late";
	register_join(f, id, tok, (int64_t)time(NULL) + 30);
	EVP_PKEY *k = at_p256_new();
	char *n = at_challenge(f, "join", id);
	attest_server_advance_clock(f->srv, 31); /* the nonce lives 60 s */
	const char *c =
	        post(f, "/v1/attest/join", pop_body(k, "aam-attest-join\n", n, id, AUD, tok), NULL);
	attest_server_advance_clock(f->srv, -31);
	assert_string_equal(c, "join_token_expired");
	free(n);
	/* A join registration cannot attest as pkcs11 before it joined. */
	n = at_challenge(f, "pkcs11", id);
	assert_string_equal(post(f, "/v1/attest/pkcs11",
	                         pop_body(k, "aam-attest-pkcs11\n", n, id, AUD, NULL), NULL),
	                    "method_mismatch");
	free(n);
	EVP_PKEY_free(k);
}

static void
test_jwks_and_bundle(void **state)
{
	struct at_server *f = *state;
	struct at_resp r;
	assert_int_equal(at_request(f->port, "GET", "/.well-known/jwks.json", NULL, &r), 0);
	assert_int_equal(r.status, 200);
	json_t *keys = json_object_get(r.json, "keys");
	assert_int_equal(json_array_size(keys), 1);
	json_t *k0 = json_array_get(keys, 0);
	char kid[64];
	assert_int_equal(attest_kid_of(f->issuer_key, kid), AAM_OK);
	assert_string_equal(json_string_value(json_object_get(k0, "kid")), kid);
	assert_string_equal(json_string_value(json_object_get(k0, "alg")), "ES256");
	assert_null(json_object_get(k0, "d"));
	at_resp_free(&r);

	assert_int_equal(at_request(f->port, "GET", "/v1/bundle", NULL, &r), 0);
	assert_int_equal(r.status, 200);
	json_t *b0 = json_array_get(json_object_get(r.json, "keys"), 0);
	assert_string_equal(json_string_value(json_object_get(b0, "use")), "jwt-svid");
	assert_string_equal(json_string_value(json_object_get(b0, "kid")), kid);
	json_int_t seq = json_integer_value(json_object_get(r.json, "spiffe_sequence"));
	assert_true(seq >= 1);
	assert_true(json_integer_value(json_object_get(r.json, "spiffe_refresh_hint")) > 0);
	/* The bundle parses as a key set. */
	struct aam_jwks set;
	aam_jwks_init(&set);
	assert_int_equal(aam_jwks_from_json(r.json, &set, NULL), AAM_OK);
	assert_int_equal(set.count, 1);
	aam_jwks_uninit(&set);
	at_resp_free(&r);
	/* Unchanged keys, unchanged sequence. */
	assert_int_equal(at_request(f->port, "GET", "/v1/bundle", NULL, &r), 0);
	assert_int_equal(json_integer_value(json_object_get(r.json, "spiffe_sequence")), seq);
	at_resp_free(&r);

	/* A rotation (new current key, old kept) bumps it and shows both keys. */
	EVP_PKEY *next = at_p256_new();
	f->ps.keys[1] = f->issuer_key;
	f->ps.keys[0] = next;
	f->ps.nkeys = 2;
	assert_int_equal(attest_server_maintain(f->srv), AAM_OK);
	assert_int_equal(at_request(f->port, "GET", "/v1/bundle", NULL, &r), 0);
	assert_int_equal(json_integer_value(json_object_get(r.json, "spiffe_sequence")), seq + 1);
	keys = json_object_get(r.json, "keys");
	assert_int_equal(json_array_size(keys), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(keys, 1), "kid")),
	                    kid);
	at_resp_free(&r);
	f->ps.keys[0] = f->issuer_key;
	f->ps.keys[1] = NULL;
	f->ps.nkeys = 1;
	assert_int_equal(attest_server_maintain(f->srv), AAM_OK);
	EVP_PKEY_free(next);
}

static void
test_revocation_feed(void **state)
{
	struct at_server *f = *state;
	const char *id = "spiffe://prod/agent/feed";
	EVP_PKEY *k = at_p256_new();
	struct aam_jwk jwk;
	jwk_of(k, &jwk);
	struct attest_reg *r = calloc(1, sizeof(*r));
	at_reg_init(r, id, ATTEST_METHOD_PKCS11, AUD);
	memcpy(r->key_jkt, jwk.jkt, sizeof(r->key_jkt));
	assert_int_equal(at_register(f, r), AAM_OK);
	free(r);
	aam_jwk_uninit(&jwk);
	char *n = at_challenge(f, "pkcs11", id);
	json_t *tr = NULL;
	assert_string_equal(post(f, "/v1/attest/pkcs11",
	                         pop_body(k, "aam-attest-pkcs11\n", n, id, AUD, NULL), &tr),
	                    "ok");
	free(n);
	json_t *c = at_verify_token(f, json_string_value(json_object_get(tr, "token")), AUD);
	char jti[64];
	snprintf(jti, sizeof(jti), "%s", json_string_value(json_object_get(c, "jti")));
	json_decref(c);
	json_decref(tr);

	struct at_resp rr;
	assert_int_equal(at_request(f->port, "GET", "/v1/revocations", NULL, &rr), 0);
	assert_int_equal(rr.status, 200);
	assert_int_equal(json_integer_value(json_object_get(rr.json, "sequence")), 0);
	at_resp_free(&rr);

	assert_int_equal(attest_reg_revoke(f->db, id, (int64_t)time(NULL), NULL), AAM_OK);
	assert_int_equal(at_request(f->port, "GET", "/v1/revocations?since=0", NULL, &rr), 0);
	json_t *list = json_object_get(rr.json, "revocations");
	assert_int_equal(json_array_size(list), 2);
	assert_string_equal(
	        json_string_value(json_object_get(json_array_get(list, 0), "spiffe_id")), id);
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 1), "jti")),
	                    jti);
	json_int_t head = json_integer_value(json_object_get(rr.json, "sequence"));
	at_resp_free(&rr);
	char path[64];
	snprintf(path, sizeof(path), "/v1/revocations?since=%lld", (long long)head);
	assert_int_equal(at_request(f->port, "GET", path, NULL, &rr), 0);
	assert_int_equal(json_array_size(json_object_get(rr.json, "revocations")), 0);
	at_resp_free(&rr);
	const char *bad[] = {
	        "/v1/revocations?since=-1", "/v1/revocations?since=01", "/v1/revocations?since=1e3",
	        "/v1/revocations?since=", "/v1/revocations?since=99999999999999999999"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(at_request(f->port, "GET", bad[i], NULL, &rr), 0);
		assert_int_equal(rr.status, 400);
		assert_string_equal(at_err_code(&rr), "invalid_request");
		at_resp_free(&rr);
	}
	EVP_PKEY_free(k);
}

/* Failed attempts from one address are limited; the limit then refuses everything. */
static void
test_rate_limit(void **state)
{
	(void)state;
	struct at_server f;
	struct at_server_opts o = {.fail_burst = 3};
	assert_int_equal(at_server_start(&f, &o), AAM_OK);
	const char *id = "spiffe://prod/agent/rl";
	for (int i = 0; i < 3; i++) {
		char *n = at_challenge(&f, "pkcs11", id);
		assert_non_null(n);
		EVP_PKEY *k = at_p256_new();
		assert_string_equal(post(&f, "/v1/attest/pkcs11",
		                         pop_body(k, "aam-attest-pkcs11\n", n, id, AUD, NULL),
		                         NULL),
		                    "registration_unknown");
		EVP_PKEY_free(k);
		free(n);
	}
	struct at_resp r;
	json_t *b = json_pack("{s:s,s:s}", "method", "pkcs11", "spiffe_id", id);
	assert_int_equal(at_request(f.port, "POST", "/v1/attest/challenge", b, &r), 0);
	json_decref(b);
	assert_int_equal(r.status, 429);
	assert_string_equal(at_err_code(&r), "rate_limited");
	assert_true(r.retry_after[0] != '\0');
	at_resp_free(&r);
	/* Public endpoints are not attempts. */
	assert_int_equal(at_request(f.port, "GET", "/healthz", NULL, &r), 0);
	assert_int_equal(r.status, 200);
	at_resp_free(&r);
	at_server_stop(&f);
}

/* One address cannot hoard the nonce table: challenges have their own bucket. */
static void
test_challenge_flood(void **state)
{
	struct at_server *f = *state;
	int ok = 0;
	long last = 0;
	for (int i = 0; i < 200 && last != 429; i++) {
		json_t *b = json_pack("{s:s,s:s}", "method", "pkcs11", "spiffe_id", "spiffe://a/b");
		struct at_resp r;
		assert_int_equal(at_request(f->port, "POST", "/v1/attest/challenge", b, &r), 0);
		json_decref(b);
		last = r.status;
		ok += r.status == 200;
		at_resp_free(&r);
	}
	assert_int_equal(last, 429);
	assert_true(ok >= 120 && ok < 200);
}

static void
test_hostile_requests(void **state)
{
	struct at_server *f = *state;
	struct at_resp r;
	const struct {
		const char *path, *body, *code;
	} cases[] = {
	        {"/v1/attest/challenge", "not json", "invalid_request"},
	        {"/v1/attest/challenge", "[]", "invalid_request"},
	        {"/v1/attest/challenge", "{\"method\":\"magic\",\"spiffe_id\":\"spiffe://a/b\"}",
	         "invalid_request"},
	        {"/v1/attest/challenge", "{\"method\":\"tpm\"}", "invalid_request"},
	        {"/v1/attest/challenge", "{\"method\":\"tpm\",\"spiffe_id\":\"spiffe://A/b\"}",
	         "invalid_request"},
	        {"/v1/attest/challenge", "{\"method\":\"tpm\",\"method\":\"join\"}",
	         "invalid_request"},
	        {"/v1/attest/tpm", "{\"step\":\"middle\"}", "invalid_request"},
	        {"/v1/attest/tpm", "{\"step\":\"begin\",\"spiffe_id\":\"spiffe://a/b\"}",
	         "invalid_request"},
	        {"/v1/attest/tpm",
	         "{\"step\":\"finish\",\"session\":\"AAAA\",\"secret\":\"AA\",\"quote\":\"AA\","
	         "\"quote_sig\":\"AA\",\"pcrs\":{\"sha256\":{}}}",
	         "session_invalid"},
	        {"/v1/attest/tpm",
	         "{\"step\":\"finish\",\"session\":\"AAAA\",\"secret\":\"AA\",\"quote\":\"AA\","
	         "\"quote_sig\":\"AA\",\"pcrs\":{\"sha1\":{}}}",
	         "invalid_request"},
	        {"/v1/attest/tpm",
	         "{\"step\":\"finish\",\"session\":\"AAAA\",\"secret\":\"AA\",\"quote\":\"AA\","
	         "\"quote_sig\":\"AA\",\"pcrs\":{\"sha256\":{\"07\":\"00\"}}}",
	         "invalid_request"},
	        {"/v1/attest/pkcs11", "{\"spiffe_id\":\"spiffe://a/b\"}", "invalid_request"},
	        {"/v1/attest/pkcs11",
	         "{\"spiffe_id\":\"spiffe://a/b\",\"audience\":\"x\",\"nonce\":\"A+B/\","
	         "\"jwk\":{},\"signature\":\"x\"}",
	         "nonce_invalid"},
	        {"/v1/attest/join", "{\"join_token\":1}", "invalid_request"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(at_post_raw(f->port, cases[i].path, cases[i].body,
		                             strlen(cases[i].body), &r),
		                 0);
		if (at_err_code(&r) == NULL || strcmp(at_err_code(&r), cases[i].code) != 0)
			print_error("case %zu: %ld %s\n", i, r.status, r.body);
		assert_string_equal(at_err_code(&r), cases[i].code);
		at_resp_free(&r);
	}
	/* A base64url field holding a private JWK member is refused. */
	EVP_PKEY *k = at_p256_new();
	char *n = at_challenge(f, "pkcs11", "spiffe://a/b");
	json_t *b = pop_body(k, "aam-attest-pkcs11\n", n, "spiffe://a/b", AUD, NULL);
	json_object_set_new(json_object_get(b, "jwk"), "d", json_string("AAAA"));
	assert_int_equal(at_request(f->port, "POST", "/v1/attest/pkcs11", b, &r), 0);
	assert_int_equal(r.status, 403); /* the nonce check comes first; unknown identity */
	at_resp_free(&r);
	json_decref(b);
	free(n);
	EVP_PKEY_free(k);

	/* 64 KiB is the limit. */
	size_t big = 64 * 1024 + 1;
	char *body = malloc(big);
	memset(body, ' ', big);
	body[0] = '{';
	body[big - 1] = '}';
	assert_int_equal(at_post_raw(f->port, "/v1/attest/tpm", body, big, &r), 0);
	assert_int_equal(r.status, 413);
	assert_string_equal(at_err_code(&r), "payload_too_large");
	at_resp_free(&r);
	free(body);
	/* Unknown endpoints and methods. */
	assert_int_equal(at_request(f->port, "GET", "/v1/attest/tpm", NULL, &r), 0);
	assert_int_equal(r.status, 405);
	at_resp_free(&r);
	assert_int_equal(at_request(f->port, "GET", "/v1/nothing", NULL, &r), 0);
	assert_int_equal(r.status, 404);
	assert_string_equal(at_err_code(&r), "not_found");
	at_resp_free(&r);
	assert_int_equal(at_request(f->port, "GET", "/healthz", NULL, &r), 0);
	assert_string_equal(r.body, "{\"status\":\"ok\"}");
	at_resp_free(&r);
}

/* Error bodies never echo what the client sent. */
static void
test_errors_do_not_echo(void **state)
{
	struct at_server *f = *state;
	const char *secretish = "aamj_SUPERSECRETJOINTOKENVALUE";
	char body[256];
	char *n = at_challenge(f, "join", NULL);
	snprintf(body, sizeof(body),
	         "{\"join_token\":\"%s\",\"audience\":\"a\",\"nonce\":\"%s\",\"jwk\":{},"
	         "\"signature\":\"AA\"}",
	         secretish, n);
	free(n);
	struct at_resp r;
	assert_int_equal(at_post_raw(f->port, "/v1/attest/join", body, strlen(body), &r), 0);
	assert_string_equal(at_err_code(&r), "join_token_invalid");
	assert_null(strstr(r.body, "SUPERSECRET"));
	at_resp_free(&r);
}

int
main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_join_flow, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_join_expired_and_method, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_jwks_and_bundle, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_revocation_feed, setup, teardown),
	        cmocka_unit_test(test_rate_limit),
	        cmocka_unit_test_setup_teardown(test_challenge_flood, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_hostile_requests, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_errors_do_not_echo, setup, teardown),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
