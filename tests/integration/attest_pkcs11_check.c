/*
 * PKCS#11 attestation end to end: the agent's key is generated in a
 * SoftHSM2 token (never extractable), the proof of possession is signed
 * with C_Sign, and aam-attest issues a token bound to that key.  Negative
 * cases: another key, a signature by another key, a replayed or stale
 * nonce, a nonce for another identity or method.
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
#include "common/p11.h"
#include "tests/lib/softhsm.h"
#include "tests/lib/testutil.h"
#include "tests/unit/attest/attest_testutil.h"

#define AUD "http://127.0.0.1:4000"
#define ID  "spiffe://prod/agent/hsm-agent"

static const uint8_t P256_PARAMS[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};

struct hkey {
	CK_OBJECT_HANDLE pub, priv;
	struct aam_jwk jwk;
};

struct g {
	bool ready;
	struct aam_test_softhsm hsm;
	aam_p11 *p11;
	struct hkey agent, other;
	struct at_server srv;
};

static struct g G;

struct genpair {
	const char *label;
	CK_OBJECT_HANDLE pub, priv;
};

static CK_RV
genpair_op(CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE s, void *vctx)
{
	struct genpair *g = vctx;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_ATTRIBUTE pub[] = {
	        {CKA_EC_PARAMS, (void *)(uintptr_t)P256_PARAMS, sizeof(P256_PARAMS)},
	        {CKA_TOKEN, &yes, sizeof(yes)},
	        {CKA_VERIFY, &yes, sizeof(yes)},
	        {CKA_LABEL, (void *)(uintptr_t)g->label, strlen(g->label)},
	};
	CK_ATTRIBUTE priv[] = {
	        {CKA_TOKEN, &yes, sizeof(yes)},
	        {CKA_PRIVATE, &yes, sizeof(yes)},
	        {CKA_SENSITIVE, &yes, sizeof(yes)},
	        {CKA_EXTRACTABLE, &no, sizeof(no)},
	        {CKA_SIGN, &yes, sizeof(yes)},
	        {CKA_LABEL, (void *)(uintptr_t)g->label, strlen(g->label)},
	};
	return fl->C_GenerateKeyPair(s, &mech, pub, 4, priv, 6, &g->pub, &g->priv);
}

static int
make_key(const char *label, struct hkey *k)
{
	struct genpair gp = {.label = label};
	if (aam_p11_run(G.p11, genpair_op, &gp) != CKR_OK)
		return -1;
	k->pub = gp.pub;
	k->priv = gp.priv;
	uint8_t pt[65];
	if (aam_p11_ec_point(G.p11, k->pub, pt) != AAM_OK)
		return -1;
	return aam_jwk_from_xy(pt + 1, pt + 33, NULL, &k->jwk) == AAM_OK ? 0 : -1;
}

static int
group_setup(void **state)
{
	(void)state;
	memset(&G, 0, sizeof(G));
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (!aam_test_softhsm_available())
		return 0;
	if (aam_test_softhsm_start(&G.hsm, "aam-attest") != AAM_OK)
		return -1;
	struct aam_p11_config cfg = {.module = G.hsm.module_path,
	                             .token_uri = G.hsm.token_uri,
	                             .pin_file = G.hsm.user_pin_file};
	char err[256];
	if (aam_p11_open(&cfg, &G.p11, err, sizeof(err)) != AAM_OK) {
		print_error("p11 open: %s\n", err);
		return -1;
	}
	if (make_key("agent", &G.agent) != 0 || make_key("other", &G.other) != 0)
		return -1;
	if (at_server_start(&G.srv, NULL) != AAM_OK)
		return -1;
	struct attest_reg *r = calloc(1, sizeof(*r));
	at_reg_init(r, ID, ATTEST_METHOD_PKCS11, AUD);
	memcpy(r->key_jkt, G.agent.jwk.jkt, sizeof(r->key_jkt));
	int rc = at_register(&G.srv, r);
	free(r);
	G.ready = rc == AAM_OK;
	return G.ready ? 0 : -1;
}

static int
group_teardown(void **state)
{
	(void)state;
	if (G.srv.srv != NULL)
		at_server_stop(&G.srv);
	aam_jwk_uninit(&G.agent.jwk);
	aam_jwk_uninit(&G.other.jwk);
	aam_p11_close(G.p11);
	aam_test_softhsm_stop(&G.hsm);
	curl_global_cleanup();
	return 0;
}

#define REQUIRE()                                                                                  \
	do {                                                                                       \
		AAM_TEST_SOFTHSM_REQUIRE();                                                        \
		assert_true(G.ready);                                                              \
	} while (0)

/* The proof: ES256 by KEY (in the token) over the context string. */
static char *
proof(const struct hkey *k, const char *nonce, const char *spiffe_id, const char *aud)
{
	char msg[4096];
	int n = snprintf(msg, sizeof(msg), "aam-attest-pkcs11\n%s\n%s\n%s", nonce, spiffe_id, aud);
	uint8_t d[32], rs[64];
	EVP_Digest(msg, (size_t)n, d, NULL, EVP_sha256(), NULL);
	assert_int_equal(aam_p11_sign_ecdsa_p256(G.p11, k->priv, d, rs), AAM_OK);
	return at_b64(rs, sizeof(rs));
}

/* POSTs a PKCS#11 attestation; returns the error code or "ok" (static buffer). */
static const char *
attest(const struct hkey *jwk_key, const struct hkey *sign_key, const char *nonce,
       const char *spiffe_id, const char *aud, json_t **token_resp)
{
	static char code[64];
	char *sig = proof(sign_key, nonce, spiffe_id, aud);
	json_t *jwk = NULL;
	assert_int_equal(aam_jwk_to_json(&jwk_key->jwk, AAM_JWK_PUBLIC, &jwk), AAM_OK);
	json_t *b = json_pack("{s:s,s:s,s:s,s:o,s:s}", "spiffe_id", spiffe_id, "audience", aud,
	                      "nonce", nonce, "jwk", jwk, "signature", sig);
	free(sig);
	struct at_resp r;
	assert_int_equal(at_request(G.srv.port, "POST", "/v1/attest/pkcs11", b, &r), 0);
	json_decref(b);
	const char *c = r.status == 200 ? "ok" : at_err_code(&r);
	snprintf(code, sizeof(code), "%s", c != NULL ? c : "?");
	if (r.status != 200)
		assert_true(r.status == 400 || r.status == 403);
	if (token_resp != NULL && r.status == 200)
		*token_resp = json_incref(r.json);
	at_resp_free(&r);
	return code;
}

static void
test_positive_and_replay(void **state)
{
	(void)state;
	REQUIRE();
	char *nonce = at_challenge(&G.srv, "pkcs11", ID);
	assert_non_null(nonce);
	json_t *tr = NULL;
	assert_string_equal(attest(&G.agent, &G.agent, nonce, ID, AUD, &tr), "ok");
	assert_string_equal(json_string_value(json_object_get(tr, "jkt")), G.agent.jwk.jkt);
	json_t *c = at_verify_token(&G.srv, json_string_value(json_object_get(tr, "token")), AUD);
	assert_non_null(c);
	const char *jkt = NULL;
	assert_int_equal(aam_jose_claims_cnf_jkt(c, &jkt), AAM_OK);
	assert_string_equal(jkt, G.agent.jwk.jkt);
	assert_string_equal(json_string_value(json_object_get(json_object_get(c, "aam"), "method")),
	                    "pkcs11");
	assert_string_equal(json_string_value(json_object_get(c, "sub")), ID);
	json_decref(c);
	json_decref(tr);
	/* The same nonce again, even with a perfect proof. */
	assert_string_equal(attest(&G.agent, &G.agent, nonce, ID, AUD, NULL), "nonce_invalid");
	free(nonce);
}

static void
test_other_key(void **state)
{
	(void)state;
	REQUIRE();
	/* Another token key, honestly presented: not the registered one. */
	char *nonce = at_challenge(&G.srv, "pkcs11", ID);
	assert_string_equal(attest(&G.other, &G.other, nonce, ID, AUD, NULL), "key_mismatch");
	free(nonce);
	/* The registered public key, but signed by another key. */
	nonce = at_challenge(&G.srv, "pkcs11", ID);
	assert_string_equal(attest(&G.agent, &G.other, nonce, ID, AUD, NULL), "signature_invalid");
	free(nonce);
}

/* A signature over another audience or identity than the request says. */
static void
test_proof_binds_context(void **state)
{
	(void)state;
	REQUIRE();
	char *nonce = at_challenge(&G.srv, "pkcs11", ID);
	char *sig = proof(&G.agent, nonce, ID, "https://elsewhere.example");
	json_t *jwk = NULL;
	aam_jwk_to_json(&G.agent.jwk, AAM_JWK_PUBLIC, &jwk);
	json_t *b = json_pack("{s:s,s:s,s:s,s:o,s:s}", "spiffe_id", ID, "audience", AUD, "nonce",
	                      nonce, "jwk", jwk, "signature", sig);
	struct at_resp r;
	assert_int_equal(at_request(G.srv.port, "POST", "/v1/attest/pkcs11", b, &r), 0);
	assert_string_equal(at_err_code(&r), "signature_invalid");
	at_resp_free(&r);
	json_decref(b);
	free(sig);
	free(nonce);
}

static void
test_stale_and_misbound_nonce(void **state)
{
	(void)state;
	REQUIRE();
	char *nonce = at_challenge(&G.srv, "pkcs11", ID);
	attest_server_advance_clock(G.srv.srv, 61);
	assert_string_equal(attest(&G.agent, &G.agent, nonce, ID, AUD, NULL), "nonce_invalid");
	attest_server_advance_clock(G.srv.srv, -61);
	free(nonce);
	/* At 59 seconds it is still good. */
	nonce = at_challenge(&G.srv, "pkcs11", ID);
	attest_server_advance_clock(G.srv.srv, 59);
	const char *c = attest(&G.agent, &G.agent, nonce, ID, AUD, NULL);
	attest_server_advance_clock(G.srv.srv, -59);
	assert_string_equal(c, "ok");
	free(nonce);
	/* A nonce issued for the TPM method, or for another identity. */
	nonce = at_challenge(&G.srv, "tpm", ID);
	assert_string_equal(attest(&G.agent, &G.agent, nonce, ID, AUD, NULL), "nonce_invalid");
	free(nonce);
	nonce = at_challenge(&G.srv, "pkcs11", "spiffe://prod/agent/someone-else");
	assert_string_equal(attest(&G.agent, &G.agent, nonce, ID, AUD, NULL), "nonce_invalid");
	free(nonce);
	/* A nonce the server never issued. */
	uint8_t fake[32] = {1, 2, 3};
	char *f = at_b64(fake, sizeof(fake));
	assert_string_equal(attest(&G.agent, &G.agent, f, ID, AUD, NULL), "nonce_invalid");
	free(f);
}

static void
test_audience_and_registration(void **state)
{
	(void)state;
	REQUIRE();
	char *nonce = at_challenge(&G.srv, "pkcs11", ID);
	assert_string_equal(attest(&G.agent, &G.agent, nonce, ID, "https://other.example", NULL),
	                    "audience_not_allowed");
	free(nonce);
	const char *unknown = "spiffe://prod/agent/unknown";
	nonce = at_challenge(&G.srv, "pkcs11", unknown);
	assert_string_equal(attest(&G.agent, &G.agent, nonce, unknown, AUD, NULL),
	                    "registration_unknown");
	free(nonce);
	/* Revocation applies to the very next request. */
	assert_int_equal(attest_reg_revoke(G.srv.db, ID, (int64_t)time(NULL), NULL), AAM_OK);
	nonce = at_challenge(&G.srv, "pkcs11", ID);
	assert_string_equal(attest(&G.agent, &G.agent, nonce, ID, AUD, NULL),
	                    "registration_revoked");
	free(nonce);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_positive_and_replay),
	        cmocka_unit_test(test_other_key),
	        cmocka_unit_test(test_proof_binds_context),
	        cmocka_unit_test(test_stale_and_misbound_nonce),
	        cmocka_unit_test(test_audience_and_registration),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
