/*
 * DPoP proofs (RFC 9449): creation for the agent, verification for the
 * gateway and aam-attest.  Verification follows the checklist of section
 * 4.3 and gives each failed check its own reason, so an operator can tell
 * a replay from a clock problem from a proxy that rewrote the URL.
 */
#include "common/jose.h"
#include "common/jose_int.h"
#include "common/secret.h"
#include "aam/err.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/rand.h>

#define DPOP_TYP       "dpop+jwt"
#define DPOP_JTI_BYTES 16
#define DPOP_MAX_HTM   32

int
aam_dpop_ath(const char *token, size_t len, char out[AAM_JWK_THUMBPRINT_LEN + 1])
{
	if (token == NULL || out == NULL)
		return AAM_E_INVAL;
	uint8_t digest[AAM_JOSE_DIGEST_LEN];
	int rc = aam_jose__sha256(token, len, digest);
	if (rc != AAM_OK)
		return rc;
	return aam_jose__b64url(digest, sizeof(digest), out, AAM_JWK_THUMBPRINT_LEN + 1);
}

static int
set_str(json_t *obj, const char *key, const char *val, size_t len)
{
	json_t *s = json_stringn(val, len);
	if (s == NULL)
		return AAM_E_INVAL; /* invalid UTF-8, or memory */
	return json_object_set_new(obj, key, s) == 0 ? AAM_OK : AAM_E_NOMEM;
}

static int
build_claims(const struct aam_dpop_request *req, json_t *c)
{
	uint8_t rnd[DPOP_JTI_BYTES];
	char jti[32];
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		ERR_clear_error();
		return AAM_E_CRYPTO;
	}
	int rc = aam_jose__b64url(rnd, sizeof(rnd), jti, sizeof(jti));
	if (rc == AAM_OK)
		rc = set_str(c, "jti", jti, strlen(jti));
	if (rc == AAM_OK)
		rc = set_str(c, "htm", req->htm, strlen(req->htm));
	/* The proof names the URI without query and fragment (section 4.2). */
	if (rc == AAM_OK)
		rc = set_str(c, "htu", req->htu, strcspn(req->htu, "?#"));
	if (rc == AAM_OK &&
	    json_object_set_new(c, "iat", json_integer(aam_jose__now(req->iat))) != 0)
		rc = AAM_E_NOMEM;
	if (rc == AAM_OK && req->access_token != NULL) {
		char ath[AAM_JWK_THUMBPRINT_LEN + 1];
		rc = aam_dpop_ath(req->access_token, strlen(req->access_token), ath);
		if (rc == AAM_OK)
			rc = set_str(c, "ath", ath, strlen(ath));
	}
	if (rc == AAM_OK && req->nonce != NULL)
		rc = set_str(c, "nonce", req->nonce, strlen(req->nonce));
	return rc;
}

int
aam_dpop_create(const struct aam_jose_signer *signer, const struct aam_jwk *key,
                const struct aam_dpop_request *req, char **out)
{
	if (out != NULL)
		*out = NULL;
	if (signer == NULL || key == NULL || key->pkey == NULL || req == NULL || req->htm == NULL ||
	    req->htu == NULL || out == NULL || *req->htm == '\0' || *req->htu == '\0')
		return AAM_E_INVAL;
	json_t *claims = json_object();
	if (claims == NULL)
		return AAM_E_NOMEM;
	int rc = build_claims(req, claims);
	if (rc == AAM_OK) {
		/* The key travels in "jwk"; a kid would only invite a second lookup path. */
		struct aam_jose_signer s = *signer;
		s.kid = NULL;
		rc = aam_jose_sign(&s, DPOP_TYP, key, claims, out);
	}
	json_decref(claims);
	return rc;
}

/* A required string claim; empty strings count as malformed. */
static int
claim_str(const json_t *claims, const char *name, const char **out, enum aam_jose_reason *why)
{
	const json_t *v = json_object_get(claims, name);
	if (v == NULL)
		return aam_jose__fail(why, AAM_JOSE_R_MISSING_CLAIM, AAM_E_DENIED);
	if (!json_is_string(v) || json_string_length(v) == 0)
		return aam_jose__fail(why, AAM_JOSE_R_CLAIM, AAM_E_DENIED);
	*out = json_string_value(v);
	return AAM_OK;
}

static int
check_htu(const char *proof_htu, const char *request_htu, enum aam_jose_reason *why)
{
	struct aam_buf a, b;
	aam_buf_init(&a, 3 * AAM_DPOP_MAX_HTU + 64);
	aam_buf_init(&b, 3 * AAM_DPOP_MAX_HTU + 64);
	int rc = aam_dpop_htu_normalise(request_htu, strlen(request_htu), &b);
	if (rc != AAM_OK) {
		/* The caller built the request URI; a bad one is its error, not the client's. */
		rc = aam_jose__fail(why, AAM_JOSE_R_NONE, rc == AAM_E_NOMEM ? rc : AAM_E_INVAL);
	} else if (aam_dpop_htu_normalise(proof_htu, strlen(proof_htu), &a) != AAM_OK ||
	           a.len != b.len || memcmp(a.data, b.data, a.len) != 0) {
		rc = aam_jose__fail(why, AAM_JOSE_R_DPOP_HTU, AAM_E_DENIED);
	}
	aam_buf_uninit(&a);
	aam_buf_uninit(&b);
	return rc;
}

/* Equal strings, in time independent of where they differ. */
static bool
str_equal_ct(const char *a, const char *b)
{
	size_t n = strlen(a);
	return n == strlen(b) && aam_ct_equal(a, b, n);
}

/* Everything after the signature: the claims against the request. */
static int
check_claims(const json_t *c, const struct aam_dpop_check *chk, int64_t now, const char **jti,
             enum aam_jose_reason *why)
{
	const char *htm = NULL, *htu = NULL;
	int rc = claim_str(c, "jti", jti, why);
	if (rc == AAM_OK)
		rc = claim_str(c, "htm", &htm, why);
	if (rc == AAM_OK)
		rc = claim_str(c, "htu", &htu, why);
	if (rc != AAM_OK)
		return rc;
	const json_t *iat_v = json_object_get(c, "iat");
	int64_t iat = 0;
	if (iat_v == NULL)
		return aam_jose__fail(why, AAM_JOSE_R_MISSING_CLAIM, AAM_E_DENIED);
	if (aam_jose__numeric_date(iat_v, false, &iat) != AAM_OK)
		return aam_jose__fail(why, AAM_JOSE_R_CLAIM, AAM_E_DENIED);
	if (strlen(*jti) > AAM_DPOP_MAX_JTI)
		return aam_jose__fail(why, AAM_JOSE_R_DPOP_JTI, AAM_E_DENIED);

	/* Methods are case-sensitive (RFC 9110 section 9.1). */
	if (strlen(htm) > DPOP_MAX_HTM || strcmp(htm, chk->htm) != 0)
		return aam_jose__fail(why, AAM_JOSE_R_DPOP_HTM, AAM_E_DENIED);
	rc = check_htu(htu, chk->htu, why);
	if (rc != AAM_OK)
		return rc;

	int64_t past = chk->iat_past > 0 ? chk->iat_past : AAM_DPOP_DEFAULT_WINDOW;
	int64_t future = chk->iat_future > 0 ? chk->iat_future : AAM_DPOP_DEFAULT_WINDOW;
	if (iat < now - past)
		return aam_jose__fail(why, AAM_JOSE_R_DPOP_IAT_STALE, AAM_E_DENIED);
	if (iat > now + future)
		return aam_jose__fail(why, AAM_JOSE_R_DPOP_IAT_FUTURE, AAM_E_DENIED);

	if (chk->access_token != NULL) {
		char want[AAM_JWK_THUMBPRINT_LEN + 1];
		const json_t *ath = json_object_get(c, "ath");
		if (ath == NULL)
			return aam_jose__fail(why, AAM_JOSE_R_DPOP_ATH_MISSING, AAM_E_DENIED);
		rc = aam_dpop_ath(chk->access_token, strlen(chk->access_token), want);
		if (rc != AAM_OK)
			return aam_jose__fail(why, AAM_JOSE_R_NONE, rc);
		if (!json_is_string(ath) || !str_equal_ct(json_string_value(ath), want))
			return aam_jose__fail(why, AAM_JOSE_R_DPOP_ATH, AAM_E_DENIED);
	}
	if (chk->nonce != NULL) {
		const json_t *nonce = json_object_get(c, "nonce");
		if (nonce == NULL)
			return aam_jose__fail(why, AAM_JOSE_R_DPOP_NONCE_MISSING, AAM_E_DENIED);
		if (!json_is_string(nonce) || json_string_length(nonce) > AAM_DPOP_MAX_NONCE ||
		    !str_equal_ct(json_string_value(nonce), chk->nonce))
			return aam_jose__fail(why, AAM_JOSE_R_DPOP_NONCE, AAM_E_DENIED);
	}
	return AAM_OK;
}

/* Records jkt || jti: a jti is unique per key, and one key cannot burn another's. */
static int
record_jti(const struct aam_dpop_check *chk, const char *jkt, const char *jti, int64_t now,
           enum aam_jose_reason *why)
{
	int64_t past = chk->iat_past > 0 ? chk->iat_past : AAM_DPOP_DEFAULT_WINDOW;
	int64_t future = chk->iat_future > 0 ? chk->iat_future : AAM_DPOP_DEFAULT_WINDOW;
	char key[AAM_JWK_THUMBPRINT_LEN + AAM_DPOP_MAX_JTI + 1];
	size_t kl = strlen(jkt), jl = strlen(jti);
	memcpy(key, jkt, kl);
	memcpy(key + kl, jti, jl);
	/*
	 * A proof stays acceptable until iat + past, and iat may be up to
	 * now + future; keeping the jti for the whole window covers both.
	 */
	int rc = aam_dpop_replay_insert(chk->replay, key, kl + jl, now, now + past + future + 1);
	if (rc == AAM_E_EXISTS)
		return aam_jose__fail(why, AAM_JOSE_R_DPOP_REPLAY, AAM_E_DENIED);
	if (rc == AAM_E_BUSY)
		return aam_jose__fail(why, AAM_JOSE_R_DPOP_REPLAY_FULL, AAM_E_BUSY);
	return aam_jose__fail(why, AAM_JOSE_R_NONE, rc);
}

int
aam_dpop_verify(const char *proof, size_t len, const struct aam_dpop_check *chk,
                char jkt_out[AAM_JWK_THUMBPRINT_LEN + 1], enum aam_jose_reason *why)
{
	if (jkt_out != NULL)
		jkt_out[0] = '\0';
	if (chk == NULL || chk->htm == NULL || chk->htu == NULL || chk->replay == NULL)
		return aam_jose__fail(why, AAM_JOSE_R_NONE, AAM_E_INVAL);
	const int64_t now = aam_jose__now(chk->now);

	struct aam_jose_jws jws;
	int rc = aam_jose_jws_parse(proof, len, &jws, why);
	if (rc != AAM_OK)
		return rc;
	struct aam_jwk key;
	memset(&key, 0, sizeof(key));
	const json_t *jwk = json_object_get(jws.header, "jwk");
	const char *jti = NULL;

	if (jws.typ == NULL || strcmp(jws.typ, DPOP_TYP) != 0)
		rc = aam_jose__fail(why, AAM_JOSE_R_TYP, AAM_E_DENIED);
	else if (jwk == NULL)
		rc = aam_jose__fail(why, AAM_JOSE_R_JWK_MISSING, AAM_E_DENIED);
	else
		rc = aam_jwk_from_json(jwk, &key, why);
	if (rc == AAM_OK)
		rc = aam_jose_jws_verify(&jws, key.pkey, why);
	if (rc == AAM_OK)
		rc = check_claims(jws.claims, chk, now, &jti, why);
	if (rc == AAM_OK && chk->jkt != NULL && strcmp(key.jkt, chk->jkt) != 0)
		rc = aam_jose__fail(why, AAM_JOSE_R_DPOP_JKT, AAM_E_DENIED);
	if (rc == AAM_OK)
		rc = record_jti(chk, key.jkt, jti, now, why);
	if (rc == AAM_OK && jkt_out != NULL)
		memcpy(jkt_out, key.jkt, sizeof(key.jkt));
	aam_jwk_uninit(&key);
	aam_jose_jws_uninit(&jws);
	return rc;
}
