/*
 * DPoP proofs (RFC 9449): creation, every verification check with its own
 * reason, htu normalisation and the jti replay cache.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "aam/err.h"
#include "common/b64.h"
#include "common/jose.h"

#define NOW   1767225600 /* 2026-01-01T00:00:00Z */
#define HTU   "https://gateway.example.com/v1/chat/completions"
#define TOKEN "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.c2ln"

struct fixture {
	EVP_PKEY *pkey;
	struct aam_jwk jwk;
	struct aam_jose_signer signer;
	struct aam_dpop_replay *replay;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -1;
	f->pkey = EVP_EC_gen("P-256");
	if (f->pkey == NULL || aam_jwk_from_pkey(f->pkey, NULL, &f->jwk) != AAM_OK)
		return -1;
	aam_jose_signer_pkey(&f->signer, f->pkey, "ignored-kid");
	f->replay = aam_dpop_replay_new(1024);
	if (f->replay == NULL)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	aam_dpop_replay_free(f->replay);
	aam_jwk_uninit(&f->jwk);
	EVP_PKEY_free(f->pkey);
	free(f);
	return 0;
}

static struct aam_dpop_check
check_for(struct fixture *f, const char *htm, const char *htu)
{
	struct aam_dpop_check c = {.htm = htm, .htu = htu, .now = NOW, .replay = f->replay};
	return c;
}

static char *
make_proof(struct fixture *f, const char *htm, const char *htu, const char *token,
           const char *nonce, int64_t iat)
{
	struct aam_dpop_request req = {
	        .htm = htm, .htu = htu, .access_token = token, .nonce = nonce, .iat = iat};
	char *p = NULL;
	assert_int_equal(aam_dpop_create(&f->signer, &f->jwk, &req, &p), AAM_OK);
	assert_non_null(p);
	return p;
}

static int
verify(const char *proof, const struct aam_dpop_check *c, enum aam_jose_reason *why)
{
	char jkt[AAM_JWK_THUMBPRINT_LEN + 1];
	*why = AAM_JOSE_R_NONE;
	int rc = aam_dpop_verify(proof, strlen(proof), c, jkt, why);
	if (rc != AAM_OK)
		assert_string_equal(jkt, "");
	return rc;
}

static char *
b64s(const char *s)
{
	struct aam_buf b;
	aam_buf_init(&b, 0);
	assert_int_equal(aam_b64_encode_buf(&b, s, strlen(s), AAM_B64_URL), AAM_OK);
	return (char *)aam_buf_steal(&b, NULL);
}

/* A proof with any header and claims, signed by KEY (or unsigned when NULL). */
static char *
raw_proof(const char *header, const char *claims, EVP_PKEY *key)
{
	char *h = b64s(header), *c = b64s(claims);
	struct aam_buf t;
	aam_buf_init(&t, 0);
	aam_buf_printf(&t, "%s.%s.", h, c);
	free(h);
	free(c);
	if (key != NULL) {
		uint8_t digest[32], sig[64];
		assert_int_equal(EVP_Digest(t.data, t.len - 1, digest, NULL, EVP_sha256(), NULL),
		                 1);
		assert_int_equal(aam_jose_pkey_sign(key, digest, sig), AAM_OK);
		aam_b64_encode_buf(&t, sig, sizeof(sig), AAM_B64_URL);
	}
	return (char *)aam_buf_steal(&t, NULL);
}

/* The fixture key's public JWK as header text, plus EXTRA members. */
static char *
jwk_text(struct fixture *f, const char *extra)
{
	json_t *j = NULL;
	assert_int_equal(aam_jwk_to_json(&f->jwk, AAM_JWK_PUBLIC, &j), AAM_OK);
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	size_t n = strlen(s);
	char *r = malloc(n + strlen(extra) + 1);
	memcpy(r, s, n - 1); /* drop the closing brace */
	strcpy(r + n - 1, extra);
	strcat(r, "}");
	free(s);
	return r;
}

static char *
header_with(struct fixture *f, const char *typ_alg, const char *jwk_extra)
{
	char *jwk = jwk_text(f, jwk_extra);
	char *h = malloc(strlen(jwk) + strlen(typ_alg) + 32);
	sprintf(h, "{%s,\"jwk\":%s}", typ_alg, jwk);
	free(jwk);
	return h;
}

#define GOOD_CLAIMS "{\"jti\":\"j-%d\",\"htm\":\"POST\",\"htu\":\"" HTU "\",\"iat\":1767225600}"

static void
test_dpop_roundtrip(void **state)
{
	struct fixture *f = *state;
	char *p = make_proof(f, "POST", HTU, TOKEN, "n-1", NOW);
	struct aam_jose_jws jws;
	enum aam_jose_reason why;
	assert_int_equal(aam_jose_jws_parse(p, strlen(p), &jws, &why), AAM_OK);
	assert_string_equal(jws.typ, "dpop+jwt");
	assert_null(jws.kid);
	json_t *jwk = json_object_get(jws.header, "jwk");
	assert_int_equal(json_object_size(jwk), 4);
	assert_null(json_object_get(jwk, "d"));
	const char *jti = json_string_value(json_object_get(jws.claims, "jti"));
	assert_int_equal(strlen(jti), 22); /* 16 random bytes */
	char ath[AAM_JWK_THUMBPRINT_LEN + 1];
	assert_int_equal(aam_dpop_ath(TOKEN, strlen(TOKEN), ath), AAM_OK);
	assert_string_equal(json_string_value(json_object_get(jws.claims, "ath")), ath);
	assert_int_equal(json_integer_value(json_object_get(jws.claims, "iat")), NOW);
	aam_jose_jws_uninit(&jws);

	struct aam_dpop_check c = check_for(f, "POST", HTU);
	c.access_token = TOKEN;
	c.nonce = "n-1";
	c.jkt = f->jwk.jkt;
	char jkt[AAM_JWK_THUMBPRINT_LEN + 1];
	assert_int_equal(aam_dpop_verify(p, strlen(p), &c, jkt, &why), AAM_OK);
	assert_int_equal(why, AAM_JOSE_R_NONE);
	assert_string_equal(jkt, f->jwk.jkt);
	free(p);

	/* Two proofs for the same request carry different jtis. */
	char *a = make_proof(f, "GET", HTU, NULL, NULL, NOW);
	char *b = make_proof(f, "GET", HTU, NULL, NULL, NOW);
	assert_string_not_equal(a, b);
	free(a);
	free(b);
}

static void
test_dpop_replayed_jti(void **state)
{
	struct fixture *f = *state;
	char *p = make_proof(f, "POST", HTU, NULL, NULL, NOW);
	struct aam_dpop_check c = check_for(f, "POST", HTU);
	enum aam_jose_reason why;
	assert_int_equal(verify(p, &c, &why), AAM_OK);
	assert_int_equal(verify(p, &c, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_DPOP_REPLAY);
	/* Still a replay at the end of the window; the cache keeps it that long. */
	c.now = NOW + 60;
	assert_int_equal(verify(p, &c, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_DPOP_REPLAY);
	/* After the window the iat check refuses it instead. */
	c.now = NOW + 61;
	assert_int_equal(verify(p, &c, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_DPOP_IAT_STALE);
	free(p);
}

static void
test_dpop_jti_scoped_to_key(void **state)
{
	struct fixture *f = *state;
	/* Another key using the same jti is not a replay of this key's proof. */
	EVP_PKEY *other = EVP_EC_gen("P-256");
	char claims[256];
	snprintf(claims, sizeof(claims), GOOD_CLAIMS, 7);
	char *h1 = header_with(f, "\"typ\":\"dpop+jwt\",\"alg\":\"ES256\"", "");
	char *p1 = raw_proof(h1, claims, f->pkey);
	struct aam_jwk ok;
	assert_int_equal(aam_jwk_from_pkey(other, NULL, &ok), AAM_OK);
	json_t *oj = NULL;
	assert_int_equal(aam_jwk_to_json(&ok, AAM_JWK_PUBLIC, &oj), AAM_OK);
	char *ojs = json_dumps(oj, JSON_COMPACT);
	char h2[512];
	snprintf(h2, sizeof(h2), "{\"typ\":\"dpop+jwt\",\"alg\":\"ES256\",\"jwk\":%s}", ojs);
	char *p2 = raw_proof(h2, claims, other);
	struct aam_dpop_check c = check_for(f, "POST", HTU);
	enum aam_jose_reason why;
	assert_int_equal(verify(p1, &c, &why), AAM_OK);
	assert_int_equal(verify(p2, &c, &why), AAM_OK);
	assert_int_equal(verify(p2, &c, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_DPOP_REPLAY);
	free(ojs);
	json_decref(oj);
	aam_jwk_uninit(&ok);
	free(p1);
	free(p2);
	free(h1);
	EVP_PKEY_free(other);
}

static void
test_dpop_wrong_htm(void **state)
{
	struct fixture *f = *state;
	char *p = make_proof(f, "POST", HTU, NULL, NULL, NOW);
	enum aam_jose_reason why;
	const char *methods[] = {"GET", "post", "POST ", "PUT"};
	for (size_t i = 0; i < 4; i++) {
		struct aam_dpop_check c = check_for(f, methods[i], HTU);
		assert_int_equal(verify(p, &c, &why), AAM_E_DENIED);
		assert_int_equal(why, AAM_JOSE_R_DPOP_HTM);
	}
	free(p);
}

static void
test_dpop_wrong_htu(void **state)
{
	struct fixture *f = *state;
	char *p = make_proof(f, "POST", HTU, NULL, NULL, NOW);
	enum aam_jose_reason why;
	const char *others[] = {
	        "http://gateway.example.com/v1/chat/completions",
	        "https://gateway.example.com:4000/v1/chat/completions",
	        "https://evil.example.com/v1/chat/completions",
	        "https://gateway.example.com/v1/chat/completion",
	        "https://gateway.example.com/v1/chat/completions/",
	        "https://gateway.example.com/V1/chat/completions",
	        "https://gateway.example.com/v1/embeddings",
	};
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		struct aam_dpop_check c = check_for(f, "POST", others[i]);
		int rc = verify(p, &c, &why);
		if (rc != AAM_E_DENIED || why != AAM_JOSE_R_DPOP_HTU)
			fail_msg("case %zu: rc %d why %s", i, rc, aam_jose_reason_str(why));
	}
	/* A request URI the server itself cannot normalise is the caller's error. */
	struct aam_dpop_check c = check_for(f, "POST", "not a uri");
	assert_int_equal(verify(p, &c, &why), AAM_E_INVAL);
	free(p);
}

static void
test_dpop_htu_equivalences(void **state)
{
	struct fixture *f = *state;
	enum aam_jose_reason why;
	struct {
		const char *proof, *request;
	} eq[] = {
	        {"HTTPS://Example.COM:443/path", "https://example.com/path"},
	        {"https://example.com/path", "HTTPS://EXAMPLE.com:443/path?query=1#frag"},
	        {"http://example.com:80/a/./b/../c", "http://EXAMPLE.com/a/c"},
	        {"https://example.com", "https://example.com/"},
	        {"https://example.com:/p", "https://example.com/p"},
	        {"https://example.com/%7euser/%41", "https://example.com/~user/A"},
	        {"https://example.com/a%2fb", "https://example.com/a%2Fb"},
	        {"https://[::1]:4000/x", "https://[::1]:4000/x"},
	};
	for (size_t i = 0; i < sizeof(eq) / sizeof(eq[0]); i++) {
		char *p = make_proof(f, "GET", eq[i].proof, NULL, NULL, NOW);
		struct aam_dpop_check c = check_for(f, "GET", eq[i].request);
		int rc = verify(p, &c, &why);
		if (rc != AAM_OK)
			fail_msg("case %zu: rc %d why %s", i, rc, aam_jose_reason_str(why));
		free(p);
	}
	/* Encoded and raw '/' are different resources. */
	char *p = make_proof(f, "GET", "https://example.com/a%2Fb", NULL, NULL, NOW);
	struct aam_dpop_check c = check_for(f, "GET", "https://example.com/a/b");
	assert_int_equal(verify(p, &c, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_DPOP_HTU);
	free(p);
}

static void
test_htu_normalise_table(void **state)
{
	(void)state;
	struct {
		const char *in, *out;
	} cases[] = {
	        {"HTTPS://Example.COM:443/path", "https://example.com/path"},
	        {"http://Example.com:80", "http://example.com/"},
	        {"http://example.com:443/", "http://example.com:443/"},
	        {"https://example.com:80/", "https://example.com:80/"},
	        {"https://example.com:0443/x", "https://example.com/x"},
	        {"https://example.com/a/b/c/./../../g", "https://example.com/a/g"},
	        {"https://example.com/a/..", "https://example.com/"},
	        {"https://example.com/a/.", "https://example.com/a/"},
	        {"https://example.com/../../x", "https://example.com/x"},
	        {"https://example.com/a//b/", "https://example.com/a//b/"},
	        {"https://example.com/%2e%2E/x", "https://example.com/x"},
	        {"https://example.com/%c3%a9", "https://example.com/%C3%A9"},
	        {"https://example.com/a|b", "https://example.com/a%7Cb"},
	        {"https://example.com/p?q=1#f", "https://example.com/p"},
	        {"https://example.com?q", "https://example.com/"},
	        {"https://example.com#f", "https://example.com/"},
	        {"https://[2001:DB8::1]:443/", "https://[2001:db8::1]/"},
	        {"http://127.0.0.1:4000/v1/models", "http://127.0.0.1:4000/v1/models"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct aam_buf b;
		aam_buf_init(&b, 0);
		int rc = aam_dpop_htu_normalise(cases[i].in, strlen(cases[i].in), &b);
		if (rc != AAM_OK || strcmp(aam_buf_cstr(&b), cases[i].out) != 0)
			fail_msg("case %zu: rc %d got '%s' want '%s'", i, rc, aam_buf_cstr(&b),
			         cases[i].out);
		aam_buf_uninit(&b);
	}
}

static void
test_htu_normalise_rejects(void **state)
{
	(void)state;
	const char *bad[] = {
	        "",
	        "example.com/path",
	        "/v1/chat",
	        "ftp://example.com/",
	        "https:/example.com/",
	        "https://",
	        "https:///path",
	        "https://user@example.com/",
	        "https://user:pw@example.com/",
	        "https://example.com:65536/",
	        "https://example.com:0/",
	        "https://example.com:44a/",
	        "https://example.com/%zz",
	        "https://example.com/%4",
	        "https://example.com/a b",
	        "https://example.com/a\tb",
	        "https://exa mple.com/",
	        "https://ex%41mple.com/",
	        "https://[::1/",
	        "https://[::1]x/",
	        "https://[fe80::1%25eth0]/",
	        "1https://example.com/",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct aam_buf b;
		aam_buf_init(&b, 0);
		aam_buf_append_str(&b, "keep");
		int rc = aam_dpop_htu_normalise(bad[i], strlen(bad[i]), &b);
		if (rc != AAM_E_PARSE)
			fail_msg("case %zu accepted: rc %d out '%s'", i, rc, aam_buf_cstr(&b));
		/* A failure leaves what was in the buffer before. */
		assert_string_equal(aam_buf_cstr(&b), "keep");
		aam_buf_uninit(&b);
	}
	char *big = malloc(AAM_DPOP_MAX_HTU + 2);
	memcpy(big, "https://e.com/", 14);
	memset(big + 14, 'a', AAM_DPOP_MAX_HTU + 1 - 14);
	big[AAM_DPOP_MAX_HTU + 1] = '\0';
	struct aam_buf b;
	aam_buf_init(&b, 0);
	assert_int_equal(aam_dpop_htu_normalise(big, strlen(big), &b), AAM_E_TOOBIG);
	aam_buf_uninit(&b);
	free(big);
}

static void
test_dpop_iat_window(void **state)
{
	struct fixture *f = *state;
	enum aam_jose_reason why;
	struct aam_dpop_check c = check_for(f, "GET", HTU);
	struct {
		int64_t iat;
		int rc;
		enum aam_jose_reason why;
	} cases[] = {
	        {NOW - 61, AAM_E_DENIED, AAM_JOSE_R_DPOP_IAT_STALE},
	        {NOW - 3600, AAM_E_DENIED, AAM_JOSE_R_DPOP_IAT_STALE},
	        {NOW - 60, AAM_OK, AAM_JOSE_R_NONE},
	        {NOW + 60, AAM_OK, AAM_JOSE_R_NONE},
	        {NOW + 61, AAM_E_DENIED, AAM_JOSE_R_DPOP_IAT_FUTURE},
	        {NOW + 86400, AAM_E_DENIED, AAM_JOSE_R_DPOP_IAT_FUTURE},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *p = make_proof(f, "GET", HTU, NULL, NULL, cases[i].iat);
		int rc = verify(p, &c, &why);
		if (rc != cases[i].rc || why != cases[i].why)
			fail_msg("case %zu: rc %d why %s", i, rc, aam_jose_reason_str(why));
		free(p);
	}
	/* A configured window replaces the default on each side. */
	c.iat_past = 5;
	c.iat_future = 2;
	char *p = make_proof(f, "GET", HTU, NULL, NULL, NOW - 6);
	assert_int_equal(verify(p, &c, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_DPOP_IAT_STALE);
	free(p);
	p = make_proof(f, "GET", HTU, NULL, NULL, NOW + 3);
	assert_int_equal(verify(p, &c, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_DPOP_IAT_FUTURE);
	free(p);
}

static void
test_dpop_ath(void **state)
{
	struct fixture *f = *state;
	enum aam_jose_reason why;
	struct aam_dpop_check c = check_for(f, "GET", HTU);
	c.access_token = TOKEN;
	/* Missing: a proof made without the token. */
	char *p = make_proof(f, "GET", HTU, NULL, NULL, NOW);
	assert_int_equal(verify(p, &c, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_DPOP_ATH_MISSING);
	free(p);
	/* Wrong: bound to another token. */
	p = make_proof(f, "GET", HTU, TOKEN "x", NULL, NOW);
	assert_int_equal(verify(p, &c, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_DPOP_ATH);
	free(p);
	/* Wrong type. */
	char claims[256];
	snprintf(claims, sizeof(claims),
	         "{\"jti\":\"a1\",\"htm\":\"GET\",\"htu\":\"" HTU "\",\"iat\":%d,\"ath\":5}", NOW);
	char *h = header_with(f, "\"typ\":\"dpop+jwt\",\"alg\":\"ES256\"", "");
	p = raw_proof(h, claims, f->pkey);
	assert_int_equal(verify(p, &c, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_DPOP_ATH);
	free(p);
	free(h);
	/* Right, and an ath without a token to check is simply not looked at. */
	p = make_proof(f, "GET", HTU, TOKEN, NULL, NOW);
	assert_int_equal(verify(p, &c, &why), AAM_OK);
	free(p);
	c.access_token = NULL;
	p = make_proof(f, "GET", HTU, TOKEN, NULL, NOW);
	assert_int_equal(verify(p, &c, &why), AAM_OK);
	free(p);
}

static void
test_dpop_nonce(void **state)
{
	struct fixture *f = *state;
	enum aam_jose_reason why;
	struct aam_dpop_check c = check_for(f, "GET", HTU);
	c.nonce = "eyJ7S_zG.eyJH0-Z.HX4w-7v";
	char *p = make_proof(f, "GET", HTU, NULL, NULL, NOW);
	assert_int_equal(verify(p, &c, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_DPOP_NONCE_MISSING);
	free(p);
	p = make_proof(f, "GET", HTU, NULL, "eyJ7S_zG.eyJH0-Z.HX4w-7w", NOW);
	assert_int_equal(verify(p, &c, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_DPOP_NONCE);
	free(p);
	p = make_proof(f, "GET", HTU, NULL, "eyJ7S_zG.eyJH0-Z.HX4w-7v", NOW);
	assert_int_equal(verify(p, &c, &why), AAM_OK);
	free(p);
}

static void
test_dpop_alg_none_and_hs256(void **state)
{
	struct fixture *f = *state;
	enum aam_jose_reason why;
	struct aam_dpop_check c = check_for(f, "POST", HTU);
	char claims[256];
	snprintf(claims, sizeof(claims), GOOD_CLAIMS, 1);
	char *h = header_with(f, "\"typ\":\"dpop+jwt\",\"alg\":\"none\"", "");
	char *p = raw_proof(h, claims, NULL);
	assert_int_equal(verify(p, &c, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_ALG_NONE);
	free(p);
	free(h);

	/* HS256 keyed with the public JWK text, as a confused verifier might. */
	h = header_with(f, "\"typ\":\"dpop+jwt\",\"alg\":\"HS256\"", "");
	p = raw_proof(h, claims, NULL);
	uint8_t mac[32];
	unsigned int maclen = 0;
	char *jwk = jwk_text(f, "");
	assert_non_null(HMAC(EVP_sha256(), jwk, (int)strlen(jwk), (uint8_t *)p, strlen(p) - 1, mac,
	                     &maclen));
	struct aam_buf b;
	aam_buf_init(&b, 0);
	aam_buf_append_str(&b, p);
	aam_b64_encode_buf(&b, mac, maclen, AAM_B64_URL);
	assert_int_equal(verify(aam_buf_cstr(&b), &c, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_ALG_HMAC);
	aam_buf_uninit(&b);
	free(jwk);
	free(p);
	free(h);

	/* RS256 with an ES256 signature is refused on alg. */
	h = header_with(f, "\"typ\":\"dpop+jwt\",\"alg\":\"RS256\"", "");
	p = raw_proof(h, claims, f->pkey);
	assert_int_equal(verify(p, &c, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_ALG);
	free(p);
	free(h);
}

static void
test_dpop_typ(void **state)
{
	struct fixture *f = *state;
	enum aam_jose_reason why;
	struct aam_dpop_check c = check_for(f, "POST", HTU);
	const char *typs[] = {
	        "\"typ\":\"JWT\",\"alg\":\"ES256\"", "\"typ\":\"DPoP+JWT\",\"alg\":\"ES256\"",
	        "\"typ\":\"application/dpop+jwt\",\"alg\":\"ES256\"", "\"alg\":\"ES256\""};
	for (size_t i = 0; i < 4; i++) {
		char claims[256];
		snprintf(claims, sizeof(claims), GOOD_CLAIMS, (int)i);
		char *h = header_with(f, typs[i], "");
		char *p = raw_proof(h, claims, f->pkey);
		assert_int_equal(verify(p, &c, &why), AAM_E_DENIED);
		assert_int_equal(why, AAM_JOSE_R_TYP);
		free(p);
		free(h);
	}
	/* The same proof with typ dpop+jwt passes: the tests above fail on typ only. */
	char claims[256];
	snprintf(claims, sizeof(claims), GOOD_CLAIMS, 99);
	char *h = header_with(f, "\"typ\":\"dpop+jwt\",\"alg\":\"ES256\"", "");
	char *p = raw_proof(h, claims, f->pkey);
	assert_int_equal(verify(p, &c, &why), AAM_OK);
	free(p);
	free(h);
}

static void
test_dpop_jwk_checks(void **state)
{
	struct fixture *f = *state;
	enum aam_jose_reason why;
	struct aam_dpop_check c = check_for(f, "POST", HTU);
	char claims[256];
	snprintf(claims, sizeof(claims), GOOD_CLAIMS, 2);

	/* A jwk carrying "d" (here a made-up value) is refused as private. */
	char *h = header_with(f, "\"typ\":\"dpop+jwt\",\"alg\":\"ES256\"",
	                      ",\"d\":\"jpsQnnGQmL-YBIffH1136cLv0kDGeD8vN6ZqRQk4WKg\"");
	char *p = raw_proof(h, claims, f->pkey);
	assert_int_equal(verify(p, &c, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_JWK_PRIVATE);
	free(p);
	free(h);

	/* No jwk at all; a kid does not stand in for it. */
	p = raw_proof("{\"typ\":\"dpop+jwt\",\"alg\":\"ES256\",\"kid\":\"k\"}", claims, f->pkey);
	assert_int_equal(verify(p, &c, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_JWK_MISSING);
	free(p);

	/* A jwk that is not an EC P-256 key. */
	p = raw_proof(
	        "{\"typ\":\"dpop+jwt\",\"alg\":\"ES256\",\"jwk\":{\"kty\":\"RSA\",\"n\":\"AQAB\","
	        "\"e\":\"AQAB\"}}",
	        claims, f->pkey);
	assert_int_equal(verify(p, &c, &why), AAM_E_PARSE);
	assert_int_equal(why, AAM_JOSE_R_JWK);
	free(p);

	/* The jwk names one key, another signed: the signature check catches it. */
	EVP_PKEY *other = EVP_EC_gen("P-256");
	h = header_with(f, "\"typ\":\"dpop+jwt\",\"alg\":\"ES256\"", "");
	p = raw_proof(h, claims, other);
	assert_int_equal(verify(p, &c, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_SIGNATURE);
	free(p);
	free(h);
	EVP_PKEY_free(other);
}

static void
test_dpop_jkt_binding(void **state)
{
	struct fixture *f = *state;
	enum aam_jose_reason why;
	struct aam_dpop_check c = check_for(f, "GET", HTU);
	c.jkt = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
	char *p = make_proof(f, "GET", HTU, NULL, NULL, NOW);
	assert_int_equal(verify(p, &c, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_DPOP_JKT);
	/* A refused proof did not consume its jti: with the right jkt it passes. */
	c.jkt = f->jwk.jkt;
	assert_int_equal(verify(p, &c, &why), AAM_OK);
	free(p);
}

static void
test_dpop_missing_and_bad_claims(void **state)
{
	struct fixture *f = *state;
	enum aam_jose_reason why;
	struct aam_dpop_check c = check_for(f, "POST", HTU);
	char *h = header_with(f, "\"typ\":\"dpop+jwt\",\"alg\":\"ES256\"", "");
	struct {
		const char *claims;
		enum aam_jose_reason why;
	} cases[] = {
	        {"{\"htm\":\"POST\",\"htu\":\"" HTU "\",\"iat\":1767225600}",
	         AAM_JOSE_R_MISSING_CLAIM},
	        {"{\"jti\":\"a\",\"htu\":\"" HTU "\",\"iat\":1767225600}",
	         AAM_JOSE_R_MISSING_CLAIM},
	        {"{\"jti\":\"a\",\"htm\":\"POST\",\"iat\":1767225600}", AAM_JOSE_R_MISSING_CLAIM},
	        {"{\"jti\":\"a\",\"htm\":\"POST\",\"htu\":\"" HTU "\"}", AAM_JOSE_R_MISSING_CLAIM},
	        {"{\"jti\":\"\",\"htm\":\"POST\",\"htu\":\"" HTU "\",\"iat\":1767225600}",
	         AAM_JOSE_R_CLAIM},
	        {"{\"jti\":1,\"htm\":\"POST\",\"htu\":\"" HTU "\",\"iat\":1767225600}",
	         AAM_JOSE_R_CLAIM},
	        {"{\"jti\":\"a\",\"htm\":\"POST\",\"htu\":\"" HTU "\",\"iat\":\"1767225600\"}",
	         AAM_JOSE_R_CLAIM},
	        {"{\"jti\":\"a\",\"htm\":\"POST\",\"htu\":\"ftp://x/\",\"iat\":1767225600}",
	         AAM_JOSE_R_DPOP_HTU},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *p = raw_proof(h, cases[i].claims, f->pkey);
		int rc = verify(p, &c, &why);
		if (rc != AAM_E_DENIED || why != cases[i].why)
			fail_msg("case %zu: rc %d why %s", i, rc, aam_jose_reason_str(why));
		free(p);
	}
	/* An over-long jti. */
	struct aam_buf cl;
	aam_buf_init(&cl, 0);
	aam_buf_append_str(&cl, "{\"jti\":\"");
	for (unsigned i = 0; i <= AAM_DPOP_MAX_JTI; i++)
		aam_buf_append_byte(&cl, 'j');
	aam_buf_printf(&cl, "\",\"htm\":\"POST\",\"htu\":\"%s\",\"iat\":%d}", HTU, NOW);
	char *p = raw_proof(h, aam_buf_cstr(&cl), f->pkey);
	assert_int_equal(verify(p, &c, &why), AAM_E_DENIED);
	assert_int_equal(why, AAM_JOSE_R_DPOP_JTI);
	free(p);
	aam_buf_uninit(&cl);
	free(h);
	/* Caller errors. */
	struct aam_dpop_check nocache = check_for(f, "POST", HTU);
	nocache.replay = NULL;
	assert_int_equal(aam_dpop_verify("a.b.c", 5, &nocache, NULL, &why), AAM_E_INVAL);
}

/*
 * RFC 9449's rejection list, one proof each, through one verifier: every
 * failure must carry a reason of its own so operators can tell them apart.
 */
static void
test_dpop_rejections_have_distinct_reasons(void **state)
{
	struct fixture *f = *state;
	enum aam_jose_reason seen[16];
	size_t n = 0;
	enum aam_jose_reason why;
	struct aam_dpop_check c = check_for(f, "POST", HTU);
	c.access_token = TOKEN;

	char *ok = make_proof(f, "POST", HTU, TOKEN, NULL, NOW);
	assert_int_equal(verify(ok, &c, &why), AAM_OK);
	assert_int_equal(verify(ok, &c, &why), AAM_E_DENIED); /* replayed jti */
	seen[n++] = why;
	free(ok);

	struct {
		const char *htm, *htu, *token;
		int64_t iat;
	} bad[] = {
	        {"GET", HTU, TOKEN, NOW},                              /* wrong htm */
	        {"POST", "https://gateway.example.com/x", TOKEN, NOW}, /* wrong htu */
	        {"POST", HTU, TOKEN, NOW - 3600},                      /* stale iat */
	        {"POST", HTU, TOKEN, NOW + 3600},                      /* future iat */
	        {"POST", HTU, NULL, NOW},                              /* missing ath */
	        {"POST", HTU, "other-token", NOW},                     /* wrong ath */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *p = make_proof(f, bad[i].htm, bad[i].htu, bad[i].token, NULL, bad[i].iat);
		assert_int_equal(verify(p, &c, &why), AAM_E_DENIED);
		seen[n++] = why;
		free(p);
	}
	char claims[256];
	snprintf(claims, sizeof(claims), GOOD_CLAIMS, 3);
	const char *hdrs[] = {"\"typ\":\"dpop+jwt\",\"alg\":\"none\"",
	                      "\"typ\":\"dpop+jwt\",\"alg\":\"HS256\"",
	                      "\"typ\":\"JWT\",\"alg\":\"ES256\""};
	for (size_t i = 0; i < 3; i++) {
		char *h = header_with(f, hdrs[i], "");
		char *p = raw_proof(h, claims, f->pkey);
		assert_int_equal(verify(p, &c, &why), AAM_E_DENIED);
		seen[n++] = why;
		free(p);
		free(h);
	}
	char *h = header_with(f, "\"typ\":\"dpop+jwt\",\"alg\":\"ES256\"", ",\"d\":\"AAAA\"");
	char *p = raw_proof(h, claims, f->pkey);
	assert_int_equal(verify(p, &c, &why), AAM_E_DENIED);
	seen[n++] = why;
	free(p);
	free(h);

	assert_int_equal(n, 11);
	for (size_t i = 0; i < n; i++) {
		assert_int_not_equal(seen[i], AAM_JOSE_R_NONE);
		for (size_t k = i + 1; k < n; k++)
			if (seen[i] == seen[k])
				fail_msg("rejections %zu and %zu share reason %s", i, k,
				         aam_jose_reason_str(seen[i]));
	}
}

static void
test_dpop_create_strips_query_and_validates(void **state)
{
	struct fixture *f = *state;
	char *p = make_proof(f, "GET", HTU "?stream=true#x", NULL, NULL, NOW);
	struct aam_jose_jws jws;
	enum aam_jose_reason why;
	assert_int_equal(aam_jose_jws_parse(p, strlen(p), &jws, &why), AAM_OK);
	assert_string_equal(json_string_value(json_object_get(jws.claims, "htu")), HTU);
	assert_null(json_object_get(jws.claims, "ath"));
	assert_null(json_object_get(jws.claims, "nonce"));
	aam_jose_jws_uninit(&jws);
	free(p);
	struct aam_dpop_request req = {.htm = "GET", .htu = NULL};
	char *out = NULL;
	assert_int_equal(aam_dpop_create(&f->signer, &f->jwk, &req, &out), AAM_E_INVAL);
	req.htu = HTU;
	req.htm = "";
	assert_int_equal(aam_dpop_create(&f->signer, &f->jwk, &req, &out), AAM_E_INVAL);
	assert_null(out);
}

static void
test_replay_eviction(void **state)
{
	(void)state;
	struct aam_dpop_replay *r = aam_dpop_replay_new(4);
	assert_non_null(r);
	char key[8];
	for (int i = 0; i < 4; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(aam_dpop_replay_insert(r, key, strlen(key), 100, 110 + i), AAM_OK);
	}
	assert_int_equal(aam_dpop_replay_count(r, 100), 4);
	/* Full of live entries: fail closed, never forget one. */
	assert_int_equal(aam_dpop_replay_insert(r, "k9", 2, 105, 200), AAM_E_BUSY);
	assert_int_equal(aam_dpop_replay_insert(r, "k0", 2, 105, 200), AAM_E_EXISTS);
	/* At 111 the first two have expired and make room, oldest first. */
	assert_int_equal(aam_dpop_replay_insert(r, "k9", 2, 111, 200), AAM_OK);
	assert_int_equal(aam_dpop_replay_count(r, 111), 3);
	assert_int_equal(aam_dpop_replay_insert(r, "k0", 2, 111, 200), AAM_OK);
	assert_int_equal(aam_dpop_replay_insert(r, "k2", 2, 111, 200), AAM_E_EXISTS);
	assert_int_equal(aam_dpop_replay_insert(r, "k8", 2, 111, 200), AAM_E_BUSY);
	assert_int_equal(aam_dpop_replay_count(r, 1000), 0);
	assert_int_equal(aam_dpop_replay_insert(r, "k2", 2, 1000, 1001), AAM_OK);
	/* Caller errors. */
	assert_int_equal(aam_dpop_replay_insert(r, "k", 1, 10, 10), AAM_E_INVAL);
	assert_int_equal(aam_dpop_replay_insert(r, "", 0, 10, 20), AAM_E_INVAL);
	assert_null(aam_dpop_replay_new(0));
	aam_dpop_replay_free(r);
	aam_dpop_replay_free(NULL);
}

static void
test_replay_capacity_churn(void **state)
{
	(void)state;
	/* Many generations through a small ring: entries stay findable until they expire. */
	struct aam_dpop_replay *r = aam_dpop_replay_new(64);
	char key[16];
	for (int t = 0; t < 100; t++) {
		for (int i = 0; i < 64; i++) {
			snprintf(key, sizeof(key), "%d-%d", t, i);
			assert_int_equal(
			        aam_dpop_replay_insert(r, key, strlen(key), t * 10, t * 10 + 10),
			        AAM_OK);
		}
		for (int i = 0; i < 64; i += 7) {
			snprintf(key, sizeof(key), "%d-%d", t, i);
			assert_int_equal(aam_dpop_replay_insert(r, key, strlen(key), t * 10 + 9,
			                                        t * 10 + 19),
			                 AAM_E_EXISTS);
		}
	}
	assert_int_equal(aam_dpop_replay_count(r, 990), 64);
	aam_dpop_replay_free(r);
}

static void
test_dpop_replay_cache_full(void **state)
{
	struct fixture *f = *state;
	struct aam_dpop_replay *small = aam_dpop_replay_new(1);
	struct aam_dpop_check c = check_for(f, "GET", HTU);
	c.replay = small;
	enum aam_jose_reason why;
	char *a = make_proof(f, "GET", HTU, NULL, NULL, NOW);
	char *b = make_proof(f, "GET", HTU, NULL, NULL, NOW);
	assert_int_equal(verify(a, &c, &why), AAM_OK);
	assert_int_equal(verify(b, &c, &why), AAM_E_BUSY);
	assert_int_equal(why, AAM_JOSE_R_DPOP_REPLAY_FULL);
	free(a);
	free(b);
	aam_dpop_replay_free(small);
}

struct race {
	struct aam_dpop_replay *r;
	int wins;
};

static void *
race_thread(void *arg)
{
	struct race *rc = arg;
	char key[16];
	for (int i = 0; i < 2000; i++) {
		snprintf(key, sizeof(key), "jti-%d", i);
		if (aam_dpop_replay_insert(rc->r, key, strlen(key), 100, 200) == AAM_OK)
			rc->wins++;
	}
	return NULL;
}

static void
test_replay_threads(void **state)
{
	(void)state;
	/* Eight threads race to record the same 2000 jtis: each is accepted exactly once. */
	struct aam_dpop_replay *r = aam_dpop_replay_new(4096);
	pthread_t th[8];
	struct race races[8];
	for (int i = 0; i < 8; i++) {
		races[i] = (struct race){.r = r};
		assert_int_equal(pthread_create(&th[i], NULL, race_thread, &races[i]), 0);
	}
	int total = 0;
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		total += races[i].wins;
	}
	assert_int_equal(total, 2000);
	assert_int_equal(aam_dpop_replay_count(r, 150), 2000);
	aam_dpop_replay_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_dpop_roundtrip, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_dpop_replayed_jti, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_dpop_jti_scoped_to_key, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_dpop_wrong_htm, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_dpop_wrong_htu, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_dpop_htu_equivalences, setup, teardown),
	        cmocka_unit_test(test_htu_normalise_table),
	        cmocka_unit_test(test_htu_normalise_rejects),
	        cmocka_unit_test_setup_teardown(test_dpop_iat_window, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_dpop_ath, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_dpop_nonce, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_dpop_alg_none_and_hs256, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_dpop_typ, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_dpop_jwk_checks, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_dpop_jkt_binding, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_dpop_missing_and_bad_claims, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_dpop_rejections_have_distinct_reasons, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_dpop_create_strips_query_and_validates, setup,
	                                        teardown),
	        cmocka_unit_test(test_replay_eviction),
	        cmocka_unit_test(test_replay_capacity_churn),
	        cmocka_unit_test_setup_teardown(test_dpop_replay_cache_full, setup, teardown),
	        cmocka_unit_test(test_replay_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
