/*
 * attest/issuer: token contents, self-verification, key rotation with
 * overlap, and a signer that fails.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "attest/issuer.h"
#include "common/jose.h"
#include "tests/unit/attest/attest_testutil.h"

static const char JKT[] = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

static void
reg(struct attest_reg *r)
{
	at_reg_init(r, "spiffe://prod/agent/finance-analyst", ATTEST_METHOD_PKCS11,
	            "http://127.0.0.1:4000");
	memcpy(r->key_jkt, JKT, sizeof(JKT));
	r->id = 1;
}

static void
jwks_of(struct attest_issuer *is, struct aam_jwks *set)
{
	json_t *j = NULL;
	assert_int_equal(attest_issuer_jwks(is, &j), AAM_OK);
	aam_jwks_init(set);
	assert_int_equal(aam_jwks_from_json(j, set, NULL), AAM_OK);
	json_decref(j);
}

static void
test_token_contents(void **state)
{
	(void)state;
	struct attest_pkey_src ps = {.keys = {at_p256_new()}, .nkeys = 1};
	struct attest_keysrc ks;
	struct attest_issuer *is = NULL;
	assert_int_equal(attest_keysrc_pkey(&ps, &ks), AAM_OK);
	assert_int_equal(attest_issuer_new(&ks, AT_ISSUER, &is), AAM_OK);
	struct attest_reg *r = calloc(1, sizeof(*r));
	reg(r);
	int64_t now = (int64_t)time(NULL);
	struct attest_token_req tr = {.reg = r,
	                              .audience = "http://127.0.0.1:4000",
	                              .jkt = JKT,
	                              .method = ATTEST_METHOD_TPM,
	                              .now = now,
	                              .ttl = 300};
	struct attest_token t;
	assert_int_equal(attest_issuer_issue(is, &tr, &t), AAM_OK);
	assert_int_equal(t.exp - t.iat, 300);
	assert_true(strlen(t.jti) >= 22);

	struct aam_jwks set;
	jwks_of(is, &set);
	assert_int_equal(set.count, 1);
	json_t *hdr = NULL, *c = NULL;
	assert_int_equal(aam_jose_verify_jwks(t.token, strlen(t.token), &set, &hdr, &c, NULL),
	                 AAM_OK);
	assert_string_equal(json_string_value(json_object_get(hdr, "alg")), "ES256");
	assert_string_equal(json_string_value(json_object_get(hdr, "typ")), "JWT");
	assert_string_equal(json_string_value(json_object_get(hdr, "kid")), set.keys[0].kid);
	assert_string_equal(json_string_value(json_object_get(c, "iss")), AT_ISSUER);
	assert_string_equal(json_string_value(json_object_get(c, "sub")), r->spiffe_id);
	assert_string_equal(json_string_value(json_object_get(c, "aud")), "http://127.0.0.1:4000");
	assert_string_equal(json_string_value(json_object_get(c, "jti")), t.jti);
	assert_int_equal(json_integer_value(json_object_get(c, "iat")), now);
	assert_int_equal(json_integer_value(json_object_get(c, "nbf")), now);
	assert_int_equal(json_integer_value(json_object_get(c, "exp")), now + 300);
	const char *jkt = NULL;
	assert_int_equal(aam_jose_claims_cnf_jkt(c, &jkt), AAM_OK);
	assert_string_equal(jkt, JKT);
	json_t *aam = json_object_get(c, "aam");
	assert_string_equal(json_string_value(json_object_get(aam, "owner")), "alice@example.com");
	assert_string_equal(json_string_value(json_object_get(aam, "team")), "finance");
	assert_string_equal(json_string_value(json_object_get(aam, "environment")), "prod");
	assert_string_equal(json_string_value(json_object_get(aam, "deployment")), "analyst-v1");
	assert_string_equal(json_string_value(json_object_get(aam, "method")), "tpm");
	struct aam_jose_claims_check chk = {.iss = AT_ISSUER,
	                                    .aud = "http://127.0.0.1:4000",
	                                    .max_lifetime = 900,
	                                    .flags = AAM_JOSE_REQ_IAT | AAM_JOSE_REQ_JTI};
	assert_int_equal(aam_jose_check_claims(c, &chk, NULL), AAM_OK);

	/* Two tokens never share a jti. */
	struct attest_token t2;
	assert_int_equal(attest_issuer_issue(is, &tr, &t2), AAM_OK);
	assert_string_not_equal(t.jti, t2.jti);

	json_decref(hdr);
	json_decref(c);
	aam_jwks_uninit(&set);
	attest_token_uninit(&t);
	attest_token_uninit(&t2);
	attest_issuer_free(is);
	EVP_PKEY_free(ps.keys[0]);
	free(r);
}

/*
 * The vault rotated: the signer now uses a key the issuer has not seen.
 * The first signature fails self-verification, the issuer re-reads the
 * keys and signs again; the JWKS then shows the new key first and the
 * old one after it.
 */
static void
test_rotation(void **state)
{
	(void)state;
	EVP_PKEY *old = at_p256_new(), *cur = at_p256_new();
	struct attest_pkey_src ps = {.keys = {old}, .nkeys = 1};
	struct attest_keysrc ks;
	struct attest_issuer *is = NULL;
	assert_int_equal(attest_keysrc_pkey(&ps, &ks), AAM_OK);
	assert_int_equal(attest_issuer_new(&ks, AT_ISSUER, &is), AAM_OK);
	assert_int_equal(attest_issuer_refresh(is), AAM_OK);
	char kid_old[64], kid_cur[64], kids[256];
	assert_int_equal(attest_kid_of(old, kid_old), AAM_OK);
	assert_int_equal(attest_kid_of(cur, kid_cur), AAM_OK);
	assert_int_equal(attest_issuer_kids(is, kids, sizeof(kids)), AAM_OK);
	assert_string_equal(kids, kid_old);

	/* Rotate behind the issuer's back. */
	ps.keys[0] = cur;
	ps.keys[1] = old;
	ps.nkeys = 2;
	ks.signer.ctx = cur;

	struct attest_reg *r = calloc(1, sizeof(*r));
	reg(r);
	struct attest_token_req tr = {.reg = r,
	                              .audience = "http://127.0.0.1:4000",
	                              .jkt = JKT,
	                              .method = ATTEST_METHOD_PKCS11,
	                              .now = (int64_t)time(NULL),
	                              .ttl = 60};
	/* The issuer copied the key source: point its signer at the new key too. */
	attest_issuer_free(is);
	assert_int_equal(attest_issuer_new(&ks, AT_ISSUER, &is), AAM_OK);
	/* Seed its cache with the old set only, as before the rotation. */
	ps.keys[0] = old;
	ps.nkeys = 1;
	assert_int_equal(attest_issuer_refresh(is), AAM_OK);
	ps.keys[0] = cur;
	ps.keys[1] = old;
	ps.nkeys = 2;

	struct attest_token t;
	assert_int_equal(attest_issuer_issue(is, &tr, &t), AAM_OK);
	json_t *hdr = NULL;
	assert_int_equal(aam_jose_verify(t.token, strlen(t.token), cur, &hdr, NULL, NULL), AAM_OK);
	assert_string_equal(json_string_value(json_object_get(hdr, "kid")), kid_cur);
	json_decref(hdr);
	assert_int_equal(attest_issuer_kids(is, kids, sizeof(kids)), AAM_OK);
	char want[256];
	snprintf(want, sizeof(want), "%s,%s", kid_cur, kid_old);
	assert_string_equal(kids, want);

	struct aam_jwks set;
	jwks_of(is, &set);
	assert_int_equal(set.count, 2);
	assert_string_equal(set.keys[0].kid, kid_cur);
	assert_string_equal(set.keys[1].kid, kid_old);
	aam_jwks_uninit(&set);
	attest_token_uninit(&t);
	attest_issuer_free(is);
	EVP_PKEY_free(old);
	EVP_PKEY_free(cur);
	free(r);
}

static int
failing_sign(void *ctx, const uint8_t d[32], uint8_t rs[64])
{
	(void)ctx;
	(void)d;
	(void)rs;
	return AAM_E_CLOSED;
}

/* A signature by some other key never leaves the issuer. */
static void
test_bad_signer(void **state)
{
	(void)state;
	EVP_PKEY *k = at_p256_new(), *rogue = at_p256_new();
	struct attest_pkey_src ps = {.keys = {k}, .nkeys = 1};
	struct attest_keysrc ks;
	assert_int_equal(attest_keysrc_pkey(&ps, &ks), AAM_OK);
	struct attest_reg *r = calloc(1, sizeof(*r));
	reg(r);
	struct attest_token_req tr = {.reg = r,
	                              .audience = "a",
	                              .jkt = JKT,
	                              .method = ATTEST_METHOD_PKCS11,
	                              .now = 1000,
	                              .ttl = 60};
	struct attest_token t;
	struct attest_issuer *is = NULL;

	ks.signer.ctx = rogue;
	assert_int_equal(attest_issuer_new(&ks, AT_ISSUER, &is), AAM_OK);
	assert_int_equal(attest_issuer_issue(is, &tr, &t), AAM_E_BUSY);
	assert_null(t.token);
	attest_issuer_free(is);

	ks.signer.sign = failing_sign;
	assert_int_equal(attest_issuer_new(&ks, AT_ISSUER, &is), AAM_OK);
	assert_int_equal(attest_issuer_issue(is, &tr, &t), AAM_E_BUSY);
	attest_issuer_free(is);

	/* Bad requests. */
	assert_int_equal(attest_keysrc_pkey(&ps, &ks), AAM_OK);
	assert_int_equal(attest_issuer_new(&ks, AT_ISSUER, &is), AAM_OK);
	tr.ttl = 0;
	assert_int_equal(attest_issuer_issue(is, &tr, &t), AAM_E_INVAL);
	attest_issuer_free(is);
	EVP_PKEY_free(k);
	EVP_PKEY_free(rogue);
	free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_token_contents),
	        cmocka_unit_test(test_rotation),
	        cmocka_unit_test(test_bad_signer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
