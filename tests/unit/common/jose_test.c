/*
 * JWS ES256, JWK/JWKS, RFC 7638 thumbprints and JWT claim checks.
 * Known-answer vectors come from RFC 7515 appendix A.3 and RFC 7638
 * section 3.1; everything else is generated keys and hostile tokens.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "aam/err.h"
#include "common/b64.h"
#include "common/jose.h"

/* RFC 7515 appendix A.3: ES256 over the A.1 payload. */
#define A3_TOKEN                                                                                   \
	"eyJhbGciOiJFUzI1NiJ9"                                                                     \
	".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp" \
	"0"                                                                                        \
	"cnVlfQ"                                                                                   \
	".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"
#define A3_X   "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"
#define A3_Y   "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
#define A3_D   "jpsQnnGQmL-YBIffH1136cLv0kDGeD8vN6ZqRQk4WKg"
#define A3_JWK "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y "\"}"

/* RFC 7638 section 3.1. */
#define RFC7638_N                                                                                  \
	"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_"  \
	"BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-"          \
	"65YGjQR0_"                                                                                \
	"FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-"        \
	"bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
#define RFC7638_THUMB "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

static EVP_PKEY *
gen_key(const char *curve)
{
	EVP_PKEY *k = EVP_EC_gen(curve);
	assert_non_null(k);
	return k;
}

static json_t *
parse_json(const char *s)
{
	json_error_t e;
	json_t *j = json_loads(s, 0, &e);
	assert_non_null(j);
	return j;
}

/* base64url of a string, malloc'd. */
static char *
b64s(const char *s, size_t n)
{
	struct aam_buf b;
	aam_buf_init(&b, 0);
	assert_int_equal(aam_b64_encode_buf(&b, s, n, AAM_B64_URL), AAM_OK);
	char *r = (char *)aam_buf_steal(&b, NULL);
	assert_non_null(r);
	return r;
}

/*
 * A token with an arbitrary header and payload, ES256-signed with KEY (or
 * with SIG_B64 verbatim when KEY is NULL).  Lets tests build what
 * aam_jose_sign would never produce.
 */
static char *
raw_token(const char *header, const char *payload, EVP_PKEY *key, const char *sig_b64)
{
	char *h = b64s(header, strlen(header)), *p = b64s(payload, strlen(payload));
	struct aam_buf t;
	aam_buf_init(&t, 0);
	aam_buf_printf(&t, "%s.%s", h, p);
	free(h);
	free(p);
	if (key != NULL) {
		uint8_t digest[32], sig[64];
		assert_int_equal(EVP_Digest(t.data, t.len, digest, NULL, EVP_sha256(), NULL), 1);
		assert_int_equal(aam_jose_pkey_sign(key, digest, sig), AAM_OK);
		aam_buf_append_byte(&t, '.');
		aam_b64_encode_buf(&t, sig, sizeof(sig), AAM_B64_URL);
	} else {
		aam_buf_printf(&t, ".%s", sig_b64);
	}
	char *r = (char *)aam_buf_steal(&t, NULL);
	assert_non_null(r);
	return r;
}

static int
verify_reason(const char *tok, EVP_PKEY *key, enum aam_jose_reason *why)
{
	*why = AAM_JOSE_R_NONE;
	json_t *h = NULL, *c = NULL;
	int rc = aam_jose_verify(tok, strlen(tok), key, &h, &c, why);
	if (rc != AAM_OK) {
		assert_null(h);
		assert_null(c);
	}
	json_decref(h);
	json_decref(c);
	return rc;
}

static char *
sign_claims(EVP_PKEY *key, const char *kid, const char *claims_json)
{
	struct aam_jose_signer s;
	aam_jose_signer_pkey(&s, key, kid);
	json_t *c = parse_json(claims_json);
	char *tok = NULL;
	assert_int_equal(aam_jose_sign(&s, "JWT", NULL, c, &tok), AAM_OK);
	json_decref(c);
	return tok;
}

static void
test_rfc7638_thumbprint(void **state)
{
	(void)state;
	json_t *j = parse_json("{\"kty\":\"RSA\",\"n\":\"" RFC7638_N "\",\"e\":\"AQAB\","
	                       "\"alg\":\"RS256\",\"kid\":\"2011-04-29\"}");
	char out[AAM_JWK_THUMBPRINT_LEN + 1];
	assert_int_equal(aam_jwk_thumbprint_b64(j, out), AAM_OK);
	assert_string_equal(out, RFC7638_THUMB);
	/* Optional members do not take part; a changed required one does. */
	json_object_del(j, "alg");
	json_object_del(j, "kid");
	assert_int_equal(aam_jwk_thumbprint_b64(j, out), AAM_OK);
	assert_string_equal(out, RFC7638_THUMB);
	json_object_set_new(j, "e", json_string("AQAC"));
	assert_int_equal(aam_jwk_thumbprint_b64(j, out), AAM_OK);
	assert_string_not_equal(out, RFC7638_THUMB);
	/* Values needing JSON escaping, missing members and unknown types fail. */
	json_object_set_new(j, "e", json_string("AQ\"AB"));
	assert_int_equal(aam_jwk_thumbprint_b64(j, out), AAM_E_PARSE);
	json_object_del(j, "e");
	assert_int_equal(aam_jwk_thumbprint_b64(j, out), AAM_E_PARSE);
	json_object_set_new(j, "kty", json_string("oct"));
	assert_int_equal(aam_jwk_thumbprint_b64(j, out), AAM_E_UNSUPPORTED);
	json_decref(j);
}

static void
test_ec_thumbprint_matches_json(void **state)
{
	(void)state;
	struct aam_jwk k;
	enum aam_jose_reason why;
	assert_int_equal(aam_jwk_parse(A3_JWK, strlen(A3_JWK), &k, &why), AAM_OK);
	json_t *j = parse_json(A3_JWK);
	char out[AAM_JWK_THUMBPRINT_LEN + 1];
	assert_int_equal(aam_jwk_thumbprint_b64(j, out), AAM_OK);
	assert_string_equal(out, k.jkt);
	assert_int_equal(strlen(k.jkt), AAM_JWK_THUMBPRINT_LEN);
	json_decref(j);
	aam_jwk_uninit(&k);
}

static void
test_rfc7515_a3_verifies(void **state)
{
	(void)state;
	struct aam_jwk k;
	enum aam_jose_reason why;
	assert_int_equal(aam_jwk_parse(A3_JWK, strlen(A3_JWK), &k, &why), AAM_OK);
	json_t *h = NULL, *c = NULL;
	assert_int_equal(aam_jose_verify(A3_TOKEN, strlen(A3_TOKEN), k.pkey, &h, &c, &why), AAM_OK);
	assert_int_equal(why, AAM_JOSE_R_NONE);
	assert_string_equal(json_string_value(json_object_get(h, "alg")), "ES256");
	assert_string_equal(json_string_value(json_object_get(c, "iss")), "joe");
	assert_int_equal(json_integer_value(json_object_get(c, "exp")), 1300819380);
	assert_true(json_is_true(json_object_get(c, "http://example.com/is_root")));
	json_decref(h);
	json_decref(c);

	/* One flipped bit anywhere in the signature breaks it. */
	char *bad = strdup(A3_TOKEN);
	char *last = bad + strlen(bad) - 5;
	*last = *last == 'A' ? 'B' : 'A';
	assert_int_equal(verify_reason(bad, k.pkey, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_SIGNATURE);
	free(bad);
	aam_jwk_uninit(&k);
}

static void
test_sign_verify_roundtrip(void **state)
{
	(void)state;
	EVP_PKEY *key = gen_key("P-256");
	char *tok = sign_claims(key, "issuer-1", "{\"iss\":\"https://attest\",\"n\":1}");
	json_t *h = NULL, *c = NULL;
	enum aam_jose_reason why;
	assert_int_equal(aam_jose_verify(tok, strlen(tok), key, &h, &c, &why), AAM_OK);
	assert_string_equal(json_string_value(json_object_get(h, "alg")), "ES256");
	assert_string_equal(json_string_value(json_object_get(h, "typ")), "JWT");
	assert_string_equal(json_string_value(json_object_get(h, "kid")), "issuer-1");
	assert_null(json_object_get(h, "jwk"));
	assert_int_equal(json_integer_value(json_object_get(c, "n")), 1);
	json_decref(h);
	json_decref(c);

	/* The parsed form exposes kid and typ and verifies separately. */
	struct aam_jose_jws jws;
	assert_int_equal(aam_jose_jws_parse(tok, strlen(tok), &jws, &why), AAM_OK);
	assert_string_equal(jws.kid, "issuer-1");
	assert_string_equal(jws.typ, "JWT");
	assert_int_equal(aam_jose_jws_verify(&jws, key, &why), AAM_OK);
	aam_jose_jws_uninit(&jws);
	free(tok);
	EVP_PKEY_free(key);
}

static void
test_tampered_payload_rejected(void **state)
{
	(void)state;
	EVP_PKEY *key = gen_key("P-256");
	char *tok = sign_claims(key, NULL, "{\"sub\":\"spiffe://prod/agent/a\"}");
	/* Splice in another well-formed payload, keeping header and signature. */
	char *p2 = b64s("{\"sub\":\"spiffe://prod/agent/b\"}", 31);
	char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
	struct aam_buf t;
	aam_buf_init(&t, 0);
	aam_buf_append(&t, tok, (size_t)(d1 - tok) + 1);
	aam_buf_append_str(&t, p2);
	aam_buf_append_str(&t, d2);
	enum aam_jose_reason why;
	assert_int_equal(verify_reason(aam_buf_cstr(&t), key, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_SIGNATURE);
	/* Changing the header (here: dropping typ) breaks the signature too. */
	aam_buf_reset(&t);
	char *h2 = b64s("{\"alg\":\"ES256\"}", 15);
	aam_buf_append_str(&t, h2);
	aam_buf_append_str(&t, d1);
	assert_int_equal(verify_reason(aam_buf_cstr(&t), key, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_SIGNATURE);
	aam_buf_uninit(&t);
	free(h2);
	free(p2);
	free(tok);
	EVP_PKEY_free(key);
}

static void
test_tampered_signature_rejected(void **state)
{
	(void)state;
	EVP_PKEY *key = gen_key("P-256");
	char *tok = sign_claims(key, NULL, "{\"a\":1}");
	enum aam_jose_reason why;
	char *sig = strrchr(tok, '.') + 1;
	sig[10] = sig[10] == 'x' ? 'y' : 'x';
	assert_int_equal(verify_reason(tok, key, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_SIGNATURE);
	/* All-zero r||s, a short signature and an over-long one. */
	char zeros[87];
	memset(zeros, 'A', 86);
	zeros[86] = '\0';
	char *t2 = raw_token("{\"alg\":\"ES256\"}", "{}", NULL, zeros);
	assert_int_equal(verify_reason(t2, key, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_SIGNATURE);
	free(t2);
	t2 = raw_token("{\"alg\":\"ES256\"}", "{}", NULL, "AAAA");
	assert_int_equal(verify_reason(t2, key, &why), AAM_E_PARSE);
	assert_int_equal(why, AAM_JOSE_R_SIG_FORMAT);
	free(t2);
	char longsig[100];
	memset(longsig, 'A', 96);
	longsig[96] = '\0';
	t2 = raw_token("{\"alg\":\"ES256\"}", "{}", NULL, longsig);
	assert_int_equal(verify_reason(t2, key, &why), AAM_E_PARSE);
	assert_int_equal(why, AAM_JOSE_R_SIG_FORMAT);
	free(t2);
	free(tok);
	EVP_PKEY_free(key);
}

static void
test_alg_none_rejected(void **state)
{
	(void)state;
	EVP_PKEY *key = gen_key("P-256");
	enum aam_jose_reason why;
	const char *algs[] = {"{\"alg\":\"none\"}", "{\"alg\":\"None\"}", "{\"alg\":\"NONE\"}"};
	for (size_t i = 0; i < 3; i++) {
		char *t = raw_token(algs[i], "{\"sub\":\"x\"}", NULL, "");
		assert_int_equal(verify_reason(t, key, &why), AAM_E_DENIED);
		assert_int_equal(why, AAM_JOSE_R_ALG_NONE);
		free(t);
	}
	/* A real ES256 signature does not rescue a header that says none. */
	char *t = raw_token("{\"alg\":\"none\"}", "{}", key, NULL);
	assert_int_equal(verify_reason(t, key, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_ALG_NONE);
	free(t);
	EVP_PKEY_free(key);
}

static void
test_alg_hs256_rejected(void **state)
{
	(void)state;
	/*
	 * The key-confusion attack: HMAC the token with the verifier's public
	 * key bytes as the secret.  It must be refused on alg alone.
	 */
	struct aam_jwk k;
	enum aam_jose_reason why;
	assert_int_equal(aam_jwk_parse(A3_JWK, strlen(A3_JWK), &k, &why), AAM_OK);
	const char *algs[] = {"HS256", "HS384", "HS512"};
	for (size_t i = 0; i < 3; i++) {
		char hdr[64];
		snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\"}", algs[i]);
		char *t = raw_token(hdr, "{\"sub\":\"x\"}", NULL, "");
		uint8_t mac[64];
		unsigned int maclen = 0;
		char *dot = strrchr(t, '.');
		assert_non_null(HMAC(EVP_sha256(), A3_JWK, (int)strlen(A3_JWK), (uint8_t *)t,
		                     (size_t)(dot - t), mac, &maclen));
		struct aam_buf b;
		aam_buf_init(&b, 0);
		aam_buf_append_str(&b, t);
		aam_b64_encode_buf(&b, mac, maclen, AAM_B64_URL);
		assert_int_equal(verify_reason(aam_buf_cstr(&b), k.pkey, &why), AAM_E_DENIED);
		assert_int_equal(why, AAM_JOSE_R_ALG_HMAC);
		aam_buf_uninit(&b);
		free(t);
	}
	aam_jwk_uninit(&k);
}

static void
test_other_algs_rejected(void **state)
{
	(void)state;
	EVP_PKEY *key = gen_key("P-256");
	enum aam_jose_reason why;
	const char *hdrs[] = {"{\"alg\":\"RS256\"}",  "{\"alg\":\"PS256\"}", "{\"alg\":\"ES384\"}",
	                      "{\"alg\":\"ES256K\"}", "{\"alg\":\"es256\"}", "{\"alg\":\"EdDSA\"}",
	                      "{\"typ\":\"JWT\"}",    "{\"alg\":256}",       "{\"alg\":null}"};
	for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
		/* Signed with the right key: only the header is wrong. */
		char *t = raw_token(hdrs[i], "{}", key, NULL);
		assert_int_equal(verify_reason(t, key, &why), AAM_E_DENIED);
		assert_int_equal(why, AAM_JOSE_R_ALG);
		free(t);
	}
	EVP_PKEY_free(key);
}

static void
test_crit_rejected(void **state)
{
	(void)state;
	EVP_PKEY *key = gen_key("P-256");
	enum aam_jose_reason why;
	const char *hdrs[] = {"{\"alg\":\"ES256\",\"crit\":[\"exp\"],\"exp\":1}",
	                      "{\"alg\":\"ES256\",\"crit\":[]}",
	                      "{\"alg\":\"ES256\",\"b64\":false,\"crit\":[\"b64\"]}",
	                      "{\"alg\":\"ES256\",\"b64\":false}"};
	for (size_t i = 0; i < 4; i++) {
		char *t = raw_token(hdrs[i], "{}", key, NULL);
		assert_int_equal(verify_reason(t, key, &why), AAM_E_DENIED);
		assert_int_equal(why, AAM_JOSE_R_CRIT);
		free(t);
	}
	/* Wrongly typed kid/typ are malformed headers. */
	char *t = raw_token("{\"alg\":\"ES256\",\"kid\":7}", "{}", key, NULL);
	assert_int_equal(verify_reason(t, key, &why), AAM_E_PARSE);
	assert_int_equal(why, AAM_JOSE_R_HEADER);
	free(t);
	t = raw_token("{\"alg\":\"ES256\",\"typ\":[\"JWT\"]}", "{}", key, NULL);
	assert_int_equal(verify_reason(t, key, &why), AAM_E_PARSE);
	assert_int_equal(why, AAM_JOSE_R_HEADER);
	free(t);
	EVP_PKEY_free(key);
}

static void
test_wrong_key_rejected(void **state)
{
	(void)state;
	EVP_PKEY *key = gen_key("P-256"), *other = gen_key("P-256"), *p384 = gen_key("P-384");
	char *tok = sign_claims(key, "k", "{\"a\":1}");
	enum aam_jose_reason why;
	assert_int_equal(verify_reason(tok, other, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_SIGNATURE);
	assert_int_equal(verify_reason(tok, p384, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_KEY);
	/* A P-384 key cannot sign through the ES256 signer either. */
	struct aam_jose_signer s;
	aam_jose_signer_pkey(&s, p384, NULL);
	json_t *c = parse_json("{}");
	char *t2 = NULL;
	assert_int_not_equal(aam_jose_sign(&s, NULL, NULL, c, &t2), AAM_OK);
	assert_null(t2);
	json_decref(c);
	free(tok);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
	EVP_PKEY_free(p384);
}

static void
test_malformed_tokens(void **state)
{
	(void)state;
	EVP_PKEY *key = gen_key("P-256");
	char *good = sign_claims(key, NULL, "{\"a\":1}");
	enum aam_jose_reason why;
	struct {
		const char *tok;
		int rc;
		enum aam_jose_reason why;
	} cases[] = {
	        {"", AAM_E_PARSE, AAM_JOSE_R_FORMAT},
	        {"abc", AAM_E_PARSE, AAM_JOSE_R_FORMAT},
	        {"a.b", AAM_E_PARSE, AAM_JOSE_R_FORMAT},
	        {"a.b.c.d.e", AAM_E_PARSE, AAM_JOSE_R_FORMAT},
	        {".eyJ9.AAAA", AAM_E_PARSE, AAM_JOSE_R_FORMAT},
	        {"eyJhbGciOiJFUzI1NiJ9..AAAA", AAM_E_PARSE, AAM_JOSE_R_FORMAT},
	        /* padding, the standard alphabet and whitespace are not base64url */
	        {"eyJhbGciOiJFUzI1NiJ9=.e30.AAAA", AAM_E_PARSE, AAM_JOSE_R_BASE64},
	        {"eyJhbGciOiJFUzI1NiJ9.e3+.AAAA", AAM_E_PARSE, AAM_JOSE_R_BASE64},
	        {"eyJhbGciOiJFUzI1 NiJ9.e30.AAAA", AAM_E_PARSE, AAM_JOSE_R_BASE64},
	        /* header "[]", header "{" , header with duplicate alg */
	        {"W10.e30.AAAA", AAM_E_PARSE, AAM_JOSE_R_HEADER},
	        {"ew.e30.AAAA", AAM_E_PARSE, AAM_JOSE_R_HEADER},
	        {"eyJhbGciOiJub25lIiwiYWxnIjoiRVMyNTYifQ.e30.AAAA", AAM_E_PARSE, AAM_JOSE_R_HEADER},
	        /* payload "[1]" and payload "x" */
	        {"eyJhbGciOiJFUzI1NiJ9.WzFd.AAAA", AAM_E_PARSE, AAM_JOSE_R_PAYLOAD},
	        {"eyJhbGciOiJFUzI1NiJ9.eA.AAAA", AAM_E_PARSE, AAM_JOSE_R_PAYLOAD},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = verify_reason(cases[i].tok, key, &why);
		if (rc != cases[i].rc || why != cases[i].why)
			fail_msg("case %zu: rc %d why %s", i, rc, aam_jose_reason_str(why));
	}
	/* Over the size limit before any decoding. */
	size_t n = AAM_JOSE_MAX_TOKEN + 1;
	char *big = malloc(n + 1);
	memset(big, 'A', n);
	big[n] = '\0';
	assert_int_equal(aam_jose_verify(big, n, key, NULL, NULL, &why), AAM_E_TOOBIG);
	assert_int_equal(why, AAM_JOSE_R_TOO_BIG);
	free(big);
	/* The length given is what counts, not a later NUL: 85 characters cannot be base64url. */
	assert_int_equal(aam_jose_verify(good, strlen(good) - 1, key, NULL, NULL, &why),
	                 AAM_E_PARSE);
	assert_int_equal(why, AAM_JOSE_R_BASE64);
	assert_int_equal(aam_jose_verify(good, strlen(good), key, NULL, NULL, &why), AAM_OK);
	assert_int_equal(aam_jose_verify(NULL, 0, key, NULL, NULL, &why), AAM_E_INVAL);
	free(good);
	EVP_PKEY_free(key);
}

static void
test_jwk_parse_and_emit(void **state)
{
	(void)state;
	struct aam_jwk k;
	enum aam_jose_reason why;
	const char *txt = "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y
	                  "\",\"kid\":\"key-1\",\"use\":\"sig\",\"alg\":\"ES256\",\"ext\":true}";
	assert_int_equal(aam_jwk_parse(txt, strlen(txt), &k, &why), AAM_OK);
	assert_string_equal(k.kid, "key-1");
	json_t *pub = NULL, *meta = NULL;
	assert_int_equal(aam_jwk_to_json(&k, AAM_JWK_PUBLIC, &pub), AAM_OK);
	assert_int_equal(json_object_size(pub), 4);
	assert_string_equal(json_string_value(json_object_get(pub, "x")), A3_X);
	assert_string_equal(json_string_value(json_object_get(pub, "y")), A3_Y);
	assert_int_equal(aam_jwk_to_json(&k, AAM_JWK_WITH_META, &meta), AAM_OK);
	assert_string_equal(json_string_value(json_object_get(meta, "kid")), "key-1");
	assert_string_equal(json_string_value(json_object_get(meta, "alg")), "ES256");
	assert_string_equal(json_string_value(json_object_get(meta, "use")), "sig");
	/* The emitted JWK parses back to the same key. */
	struct aam_jwk k2;
	assert_int_equal(aam_jwk_from_json(meta, &k2, &why), AAM_OK);
	assert_string_equal(k2.jkt, k.jkt);
	assert_int_equal(EVP_PKEY_eq(k.pkey, k2.pkey), 1);
	json_decref(pub);
	json_decref(meta);
	aam_jwk_uninit(&k);
	aam_jwk_uninit(&k2);
}

static void
test_jwk_from_pkey_keeps_public_only(void **state)
{
	(void)state;
	EVP_PKEY *key = gen_key("P-256");
	struct aam_jwk k;
	assert_int_equal(aam_jwk_from_pkey(key, "agent", &k), AAM_OK);
	BIGNUM *priv = NULL;
	assert_int_equal(EVP_PKEY_get_bn_param(k.pkey, "priv", &priv), 0);
	assert_null(priv);
	assert_int_equal(EVP_PKEY_eq(k.pkey, key), 1);
	/* Same key through raw coordinates gives the same thumbprint. */
	struct aam_jwk k2;
	assert_int_equal(aam_jwk_from_xy(k.x, k.y, NULL, &k2), AAM_OK);
	assert_string_equal(k2.jkt, k.jkt);
	assert_string_equal(k2.kid, "");
	/* A kid with a space or control character, a P-384 key, NULL: refused. */
	struct aam_jwk k3;
	assert_int_equal(aam_jwk_from_pkey(key, "bad kid", &k3), AAM_E_INVAL);
	EVP_PKEY *p384 = gen_key("P-384");
	assert_int_equal(aam_jwk_from_pkey(p384, NULL, &k3), AAM_E_INVAL);
	assert_int_equal(aam_jwk_from_pkey(NULL, NULL, &k3), AAM_E_INVAL);
	EVP_PKEY_free(p384);
	aam_jwk_uninit(&k);
	aam_jwk_uninit(&k2);
	EVP_PKEY_free(key);
}

/*
 * Points that are not on P-256 are refused: a changed y, coordinates at or
 * above the field prime, and (0, 0).  On P-256 (cofactor 1) this is the
 * whole public-key validation; there is no small subgroup to check for.
 */
static void
test_jwk_rejects_points_off_the_curve(void **state)
{
	(void)state;
	EVP_PKEY *key = gen_key("P-256");
	struct aam_jwk k, bad;
	assert_int_equal(aam_jwk_from_pkey(key, NULL, &k), AAM_OK);
	uint8_t y[AAM_JWK_COORD_LEN];
	memcpy(y, k.y, sizeof(y));
	y[31] ^= 1;
	assert_int_equal(aam_jwk_from_xy(k.x, y, NULL, &bad), AAM_E_PARSE);
	uint8_t ff[AAM_JWK_COORD_LEN], zero[AAM_JWK_COORD_LEN];
	memset(ff, 0xff, sizeof(ff));
	memset(zero, 0, sizeof(zero));
	assert_int_equal(aam_jwk_from_xy(ff, k.y, NULL, &bad), AAM_E_PARSE);
	assert_int_equal(aam_jwk_from_xy(k.x, ff, NULL, &bad), AAM_E_PARSE);
	assert_int_equal(aam_jwk_from_xy(zero, zero, NULL, &bad), AAM_E_PARSE);
	aam_jwk_uninit(&k);
	EVP_PKEY_free(key);
}

static void
test_jwk_rejects_private_d(void **state)
{
	(void)state;
	struct aam_jwk k;
	enum aam_jose_reason why;
	const char *txt = "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y
	                  "\",\"d\":\"" A3_D "\"}";
	assert_int_equal(aam_jwk_parse(txt, strlen(txt), &k, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_JWK_PRIVATE);
	assert_null(k.pkey);
	/* Symmetric key material is refused the same way. */
	const char *oct = "{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}";
	assert_int_equal(aam_jwk_parse(oct, strlen(oct), &k, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_JWK_PRIVATE);
}

static void
test_jwk_rejects_malformed(void **state)
{
	(void)state;
	/* y of the A.3 key with its last coordinate byte changed: off the curve. */
	const char *bad[] = {
	        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X
	        "\",\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a4\"}",
	        /* 31-byte x */
	        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":"
	        "\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVA\","
	        "\"y\":\"" A3_Y "\"}",
	        /* padded base64url, standard alphabet */
	        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "=\",\"y\":\"" A3_Y "\"}",
	        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\","
	        "\"y\":\"x/FEzRu9m36HLN/tue659LNpXW6pCyStikYjKIWI5a0\"}",
	        "{\"kty\":\"RSA\",\"n\":\"" RFC7638_N "\",\"e\":\"AQAB\"}",
	        "{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y "\"}",
	        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y
	        "\",\"alg\":\"RS256\"}",
	        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y
	        "\",\"use\":\"enc\"}",
	        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y
	        "\",\"kid\":\"\"}",
	        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":1,\"y\":\"" A3_Y "\"}",
	        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\"}",
	        /* the point at infinity has no affine form; all-zero is off the curve */
	        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":"
	        "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
	        "\"y\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}",
	        "[]",
	        "{\"kty\":\"EC\",\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y
	        "\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct aam_jwk k;
		enum aam_jose_reason why = AAM_JOSE_R_NONE;
		int rc = aam_jwk_parse(bad[i], strlen(bad[i]), &k, &why);
		if (rc != AAM_E_PARSE || why != AAM_JOSE_R_JWK)
			fail_msg("case %zu: rc %d why %s", i, rc, aam_jose_reason_str(why));
		assert_null(k.pkey);
	}
}

static void
test_jwks_lookup_by_kid(void **state)
{
	(void)state;
	EVP_PKEY *keys[3];
	const char *kids[3] = {"2026-01", "2026-02", "2026-03"};
	struct aam_jwks set;
	aam_jwks_init(&set);
	for (int i = 0; i < 3; i++) {
		keys[i] = gen_key("P-256");
		struct aam_jwk k;
		assert_int_equal(aam_jwk_from_pkey(keys[i], kids[i], &k), AAM_OK);
		assert_int_equal(aam_jwks_add(&set, &k), AAM_OK);
		assert_int_equal(aam_jwks_add(&set, &k), AAM_E_EXISTS);
		aam_jwk_uninit(&k);
	}
	/* Emit, serialise, parse back: the published form round-trips. */
	json_t *j = NULL;
	assert_int_equal(aam_jwks_to_json(&set, &j), AAM_OK);
	char *text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	struct aam_jwks parsed;
	enum aam_jose_reason why;
	assert_int_equal(aam_jwks_parse(text, strlen(text), &parsed, &why), AAM_OK);
	free(text);
	assert_int_equal(parsed.count, 3);
	for (int i = 0; i < 3; i++) {
		const struct aam_jwk *f = aam_jwks_find(&parsed, kids[i]);
		assert_non_null(f);
		assert_string_equal(f->jkt, set.keys[i].jkt);
		/* A token signed by key i verifies through the set, by kid. */
		char *tok = sign_claims(keys[i], kids[i], "{\"i\":1}");
		json_t *c = NULL;
		assert_int_equal(aam_jose_verify_jwks(tok, strlen(tok), &parsed, NULL, &c, &why),
		                 AAM_OK);
		assert_int_equal(json_integer_value(json_object_get(c, "i")), 1);
		json_decref(c);
		free(tok);
	}
	assert_null(aam_jwks_find(&parsed, "2025-12"));
	assert_null(aam_jwks_find(&parsed, ""));
	/* Unknown kid, no kid, and a kid naming another key of the set. */
	char *tok = sign_claims(keys[0], "2025-12", "{}");
	assert_int_equal(aam_jose_verify_jwks(tok, strlen(tok), &parsed, NULL, NULL, &why),
	                 AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_KID);
	free(tok);
	tok = sign_claims(keys[0], NULL, "{}");
	assert_int_equal(aam_jose_verify_jwks(tok, strlen(tok), &parsed, NULL, NULL, &why),
	                 AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_KID);
	free(tok);
	tok = sign_claims(keys[0], kids[1], "{}");
	assert_int_equal(aam_jose_verify_jwks(tok, strlen(tok), &parsed, NULL, NULL, &why),
	                 AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_SIGNATURE);
	free(tok);
	aam_jwks_uninit(&parsed);
	aam_jwks_uninit(&set);
	for (int i = 0; i < 3; i++)
		EVP_PKEY_free(keys[i]);
}

static void
test_jwks_skips_foreign_and_rejects_bad(void **state)
{
	(void)state;
	enum aam_jose_reason why;
	struct aam_jwks set;
	/* A SPIFFE-style bundle: one usable key among others to skip. */
	const char *bundle =
	        "{\"spiffe_sequence\":3,\"keys\":["
	        "{\"kty\":\"RSA\",\"kid\":\"r\",\"n\":\"" RFC7638_N "\",\"e\":\"AQAB\"},"
	        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"use\":\"x509-svid\",\"x\":\"" A3_X
	        "\",\"y\":\"" A3_Y "\",\"x5c\":[\"AA==\"]},"
	        "{\"kty\":\"EC\",\"crv\":\"P-384\",\"kid\":\"p384\",\"x\":\"AA\",\"y\":\"AA\"},"
	        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y "\"},"
	        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"use\":\"jwt-svid\",\"kid\":\"jwt\",\"x\":"
	        "\"" A3_X "\",\"y\":\"" A3_Y "\"}]}";
	assert_int_equal(aam_jwks_parse(bundle, strlen(bundle), &set, &why), AAM_OK);
	assert_int_equal(set.count, 1);
	assert_non_null(aam_jwks_find(&set, "jwt"));
	assert_null(aam_jwks_find(&set, "r"));
	aam_jwks_uninit(&set);

	const char *bad[] = {
	        "{}",
	        "{\"keys\":{}}",
	        "{\"keys\":[1]}",
	        "{\"keys\":[{\"crv\":\"P-256\"}]}",
	        /* a private key in a public set */
	        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"a\",\"x\":\"" A3_X
	        "\",\"y\":\"" A3_Y "\",\"d\":\"" A3_D "\"}]}",
	        /* duplicate kid */
	        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"a\",\"x\":\"" A3_X
	        "\",\"y\":\"" A3_Y
	        "\"},{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"a\",\"x\":\"" A3_X
	        "\",\"y\":\"" A3_Y "\"}]}",
	        /* a broken P-256 key is not silently skipped */
	        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"a\",\"x\":\"AA\",\"y\":"
	        "\"AA\"}]}",
	        "{\"keys\":[]",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = aam_jwks_parse(bad[i], strlen(bad[i]), &set, &why);
		if (rc == AAM_OK)
			fail_msg("case %zu accepted", i);
		assert_int_equal(set.count, 0);
		assert_null(set.keys);
	}

	/* More than AAM_JWKS_MAX_KEYS keys. */
	struct aam_buf b;
	aam_buf_init(&b, 0);
	aam_buf_append_str(&b, "{\"keys\":[");
	for (unsigned i = 0; i <= AAM_JWKS_MAX_KEYS; i++)
		aam_buf_printf(&b,
		               "%s{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"k%u\",\"x\":\"" A3_X
		               "\",\"y\":\"" A3_Y "\"}",
		               i ? "," : "", i);
	aam_buf_append_str(&b, "]}");
	assert_int_equal(aam_jwks_parse(aam_buf_cstr(&b), b.len, &set, &why), AAM_E_TOOBIG);
	aam_buf_uninit(&b);
}

static int
claims_reason(const char *json, const struct aam_jose_claims_check *chk, enum aam_jose_reason *why)
{
	json_t *c = parse_json(json);
	*why = AAM_JOSE_R_NONE;
	int rc = aam_jose_check_claims(c, chk, why);
	json_decref(c);
	return rc;
}

static void
test_claims_valid(void **state)
{
	(void)state;
	enum aam_jose_reason why;
	struct aam_jose_claims_check chk = {.iss = "https://attest.example",
	                                    .aud = "gateway",
	                                    .now = 1000,
	                                    .skew = 30,
	                                    .flags = AAM_JOSE_REQ_IAT | AAM_JOSE_REQ_SUB |
	                                             AAM_JOSE_REQ_JTI};
	assert_int_equal(
	        claims_reason("{\"iss\":\"https://attest.example\",\"sub\":\"spiffe://p/a\","
	                      "\"aud\":\"gateway\",\"exp\":1300,\"iat\":1000,\"nbf\":1000,"
	                      "\"jti\":\"j1\"}",
	                      &chk, &why),
	        AAM_OK);
	/* aud as an array, reals as NumericDates */
	assert_int_equal(claims_reason("{\"iss\":\"https://attest.example\",\"sub\":\"s\","
	                               "\"aud\":[\"other\",\"gateway\"],\"exp\":1300.5,"
	                               "\"iat\":999.9,\"jti\":\"j\"}",
	                               &chk, &why),
	                 AAM_OK);
	/* Required claims missing. */
	assert_int_equal(claims_reason("{\"iss\":\"https://attest.example\",\"aud\":\"gateway\","
	                               "\"exp\":1300,\"iat\":1000,\"jti\":\"j\"}",
	                               &chk, &why),
	                 AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_MISSING_CLAIM);
	/* A zero check only insists on exp. */
	struct aam_jose_claims_check none = {.now = 1000};
	assert_int_equal(claims_reason("{\"exp\":1001}", &none, &why), AAM_OK);
	assert_int_equal(claims_reason("{}", &none, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_MISSING_CLAIM);
	none.flags = AAM_JOSE_NO_EXP;
	assert_int_equal(claims_reason("{}", &none, &why), AAM_OK);
}

static void
test_claims_expired(void **state)
{
	(void)state;
	enum aam_jose_reason why;
	struct aam_jose_claims_check chk = {.now = 1000};
	assert_int_equal(claims_reason("{\"exp\":1000}", &chk, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_EXPIRED);
	assert_int_equal(claims_reason("{\"exp\":999.99}", &chk, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_EXPIRED);
	assert_int_equal(claims_reason("{\"exp\":1001}", &chk, &why), AAM_OK);
	/* Skew extends validity by exactly its value. */
	chk.skew = 60;
	assert_int_equal(claims_reason("{\"exp\":941}", &chk, &why), AAM_OK);
	assert_int_equal(claims_reason("{\"exp\":940}", &chk, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_EXPIRED);
	/* The real clock is used when now is 0: a 2001 token is long expired. */
	chk.now = 0;
	assert_int_equal(claims_reason("{\"exp\":1000000000}", &chk, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_EXPIRED);
}

static void
test_claims_nbf_and_iat_in_future(void **state)
{
	(void)state;
	enum aam_jose_reason why;
	struct aam_jose_claims_check chk = {.now = 1000, .skew = 10};
	assert_int_equal(claims_reason("{\"exp\":2000,\"nbf\":1011}", &chk, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_NOT_YET_VALID);
	assert_int_equal(claims_reason("{\"exp\":2000,\"nbf\":1010}", &chk, &why), AAM_OK);
	assert_int_equal(claims_reason("{\"exp\":2000,\"iat\":1011}", &chk, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_IAT_FUTURE);
	/* Lifetime cap: 15 minutes. */
	chk.max_lifetime = 900;
	assert_int_equal(claims_reason("{\"exp\":1900,\"iat\":1000}", &chk, &why), AAM_OK);
	assert_int_equal(claims_reason("{\"exp\":1901,\"iat\":1000}", &chk, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_LIFETIME);
}

static void
test_claims_wrong_aud(void **state)
{
	(void)state;
	enum aam_jose_reason why;
	struct aam_jose_claims_check chk = {.aud = "gateway", .now = 1000};
	assert_int_equal(claims_reason("{\"exp\":2000,\"aud\":\"gatewayx\"}", &chk, &why),
	                 AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_AUD);
	assert_int_equal(claims_reason("{\"exp\":2000,\"aud\":[\"a\",\"b\"]}", &chk, &why),
	                 AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_AUD);
	assert_int_equal(claims_reason("{\"exp\":2000,\"aud\":[]}", &chk, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_AUD);
	assert_int_equal(claims_reason("{\"exp\":2000}", &chk, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_MISSING_CLAIM);
	/* Malformed aud is refused even when it also lists the audience. */
	assert_int_equal(claims_reason("{\"exp\":2000,\"aud\":[\"gateway\",1]}", &chk, &why),
	                 AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_CLAIM);
	assert_int_equal(claims_reason("{\"exp\":2000,\"aud\":{\"gateway\":1}}", &chk, &why),
	                 AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_CLAIM);
}

static void
test_claims_wrong_iss_and_types(void **state)
{
	(void)state;
	enum aam_jose_reason why;
	struct aam_jose_claims_check chk = {.iss = "https://attest", .now = 1000};
	assert_int_equal(
	        claims_reason("{\"exp\":2000,\"iss\":\"https://attest.evil\"}", &chk, &why),
	        AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_ISS);
	assert_int_equal(claims_reason("{\"exp\":2000,\"iss\":\"HTTPS://attest\"}", &chk, &why),
	                 AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_ISS);
	assert_int_equal(claims_reason("{\"exp\":2000}", &chk, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_MISSING_CLAIM);
	const char *badtypes[] = {
	        "{\"exp\":\"2000\",\"iss\":\"https://attest\"}",
	        "{\"exp\":-5,\"iss\":\"https://attest\"}",
	        "{\"exp\":true,\"iss\":\"https://attest\"}",
	        "{\"exp\":1e300,\"iss\":\"https://attest\"}",
	        "{\"exp\":2000,\"iss\":7}",
	        "{\"exp\":2000,\"iss\":\"https://attest\",\"sub\":[]}",
	        "{\"exp\":2000,\"iss\":\"https://attest\",\"nbf\":null}",
	        "{\"exp\":2000,\"iss\":\"https://attest\",\"jti\":\"\"}",
	};
	for (size_t i = 0; i < sizeof(badtypes) / sizeof(badtypes[0]); i++) {
		int rc = claims_reason(badtypes[i], &chk, &why);
		if (rc != AAM_E_DENIED || why != AAM_JOSE_R_CLAIM)
			fail_msg("case %zu: rc %d why %s", i, rc, aam_jose_reason_str(why));
	}
}

static void
test_cnf_jkt(void **state)
{
	(void)state;
	const char *jkt = NULL;
	json_t *c = parse_json("{\"cnf\":{\"jkt\":\"" RFC7638_THUMB "\"}}");
	assert_int_equal(aam_jose_claims_cnf_jkt(c, &jkt), AAM_OK);
	assert_string_equal(jkt, RFC7638_THUMB);
	json_decref(c);
	c = parse_json("{\"sub\":\"x\"}");
	assert_int_equal(aam_jose_claims_cnf_jkt(c, &jkt), AAM_E_NOTFOUND);
	assert_null(jkt);
	json_decref(c);
	c = parse_json("{\"cnf\":{\"jkt\":\"short\"}}");
	assert_int_equal(aam_jose_claims_cnf_jkt(c, &jkt), AAM_E_PARSE);
	json_decref(c);
	c = parse_json("{\"cnf\":\"jkt\"}");
	assert_int_equal(aam_jose_claims_cnf_jkt(c, &jkt), AAM_E_PARSE);
	json_decref(c);
}

static void
test_ecdsa_der_rs_conversion(void **state)
{
	(void)state;
	uint8_t rs[64], back[64], der[AAM_JOSE_ECDSA_DER_MAX];
	size_t len = 0;
	/* High bits set need a leading zero in DER; leading zero bytes are dropped. */
	memset(rs, 0xff, 32);
	memset(rs + 32, 0, 31);
	rs[63] = 1;
	assert_int_equal(aam_jose_ecdsa_rs_to_der(rs, der, sizeof(der), &len), AAM_OK);
	assert_int_equal(len, 2 + (2 + 33) + (2 + 1));
	assert_int_equal(aam_jose_ecdsa_der_to_rs(der, len, back), AAM_OK);
	assert_memory_equal(rs, back, 64);
	/* Trailing bytes, truncation and a too-small output are refused. */
	der[len] = 0;
	assert_int_equal(aam_jose_ecdsa_der_to_rs(der, len + 1, back), AAM_E_PARSE);
	assert_int_equal(aam_jose_ecdsa_der_to_rs(der, len - 1, back), AAM_E_PARSE);
	assert_int_equal(aam_jose_ecdsa_der_to_rs(der, 0, back), AAM_E_PARSE);
	assert_int_equal(aam_jose_ecdsa_rs_to_der(rs, der, 10, &len), AAM_E_TOOBIG);
	/* A 33-byte r (wider than P-256) does not fit r||s. */
	const uint8_t wide[] = {0x30, 0x26, 0x02, 0x21, 0x01, 1, 1, 1, 1, 1,    1,    1,   1, 1,
	                        1,    1,    1,    1,    1,    1, 1, 1, 1, 1,    1,    1,   1, 1,
	                        1,    1,    1,    1,    1,    1, 1, 1, 1, 0x02, 0x01, 0x01};
	assert_int_equal(aam_jose_ecdsa_der_to_rs(wide, sizeof(wide), back), AAM_E_PARSE);
}

static int
failing_signer(void *ctx, const uint8_t digest[32], uint8_t sig[64])
{
	(void)digest;
	(void)sig;
	(*(int *)ctx)++;
	return AAM_E_HSM;
}

static void
test_sign_errors(void **state)
{
	(void)state;
	int calls = 0;
	struct aam_jose_signer s = {.sign = failing_signer, .ctx = &calls, .kid = "k"};
	json_t *c = parse_json("{\"a\":1}");
	char *tok = (char *)"sentinel";
	/* The signer's error comes back unchanged and nothing is returned. */
	assert_int_equal(aam_jose_sign(&s, NULL, NULL, c, &tok), AAM_E_HSM);
	assert_null(tok);
	assert_int_equal(calls, 1);
	json_t *arr = parse_json("[1]");
	assert_int_equal(aam_jose_sign(&s, NULL, NULL, arr, &tok), AAM_E_INVAL);
	json_decref(arr);
	/* A kid over the limit, and claims that would exceed the token limit. */
	char longkid[AAM_JOSE_MAX_KID + 2];
	memset(longkid, 'k', sizeof(longkid) - 1);
	longkid[sizeof(longkid) - 1] = '\0';
	EVP_PKEY *key = gen_key("P-256");
	aam_jose_signer_pkey(&s, key, longkid);
	assert_int_equal(aam_jose_sign(&s, NULL, NULL, c, &tok), AAM_E_INVAL);
	aam_jose_signer_pkey(&s, key, NULL);
	char *blob = malloc(AAM_JOSE_MAX_TOKEN);
	memset(blob, 'x', AAM_JOSE_MAX_TOKEN - 1);
	blob[AAM_JOSE_MAX_TOKEN - 1] = '\0';
	json_object_set_new(c, "blob", json_string(blob));
	assert_int_equal(aam_jose_sign(&s, NULL, NULL, c, &tok), AAM_E_TOOBIG);
	assert_null(tok);
	free(blob);
	json_decref(c);
	EVP_PKEY_free(key);
}

static void
test_reason_names_distinct(void **state)
{
	(void)state;
	for (int i = 0; i < AAM_JOSE_R__MAX; i++) {
		const char *a = aam_jose_reason_str((enum aam_jose_reason)i);
		assert_string_not_equal(a, "unknown_reason");
		for (int k = i + 1; k < AAM_JOSE_R__MAX; k++)
			assert_string_not_equal(a, aam_jose_reason_str((enum aam_jose_reason)k));
	}
	assert_string_equal(aam_jose_reason_str(AAM_JOSE_R__MAX), "unknown_reason");
	assert_string_equal(aam_jose_reason_str(AAM_JOSE_R_ALG_NONE), "alg_none");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_rfc7638_thumbprint),
	        cmocka_unit_test(test_ec_thumbprint_matches_json),
	        cmocka_unit_test(test_rfc7515_a3_verifies),
	        cmocka_unit_test(test_sign_verify_roundtrip),
	        cmocka_unit_test(test_tampered_payload_rejected),
	        cmocka_unit_test(test_tampered_signature_rejected),
	        cmocka_unit_test(test_alg_none_rejected),
	        cmocka_unit_test(test_alg_hs256_rejected),
	        cmocka_unit_test(test_other_algs_rejected),
	        cmocka_unit_test(test_crit_rejected),
	        cmocka_unit_test(test_wrong_key_rejected),
	        cmocka_unit_test(test_malformed_tokens),
	        cmocka_unit_test(test_jwk_parse_and_emit),
	        cmocka_unit_test(test_jwk_from_pkey_keeps_public_only),
	        cmocka_unit_test(test_jwk_rejects_points_off_the_curve),
	        cmocka_unit_test(test_jwk_rejects_private_d),
	        cmocka_unit_test(test_jwk_rejects_malformed),
	        cmocka_unit_test(test_jwks_lookup_by_kid),
	        cmocka_unit_test(test_jwks_skips_foreign_and_rejects_bad),
	        cmocka_unit_test(test_claims_valid),
	        cmocka_unit_test(test_claims_expired),
	        cmocka_unit_test(test_claims_nbf_and_iat_in_future),
	        cmocka_unit_test(test_claims_wrong_aud),
	        cmocka_unit_test(test_claims_wrong_iss_and_types),
	        cmocka_unit_test(test_cnf_jkt),
	        cmocka_unit_test(test_ecdsa_der_rs_conversion),
	        cmocka_unit_test(test_sign_errors),
	        cmocka_unit_test(test_reason_names_distinct),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
