/*
 * Token issuance and the issuer's key set.  See issuer.h.
 */
#include "attest/issuer.h"
#include "common/b64.h"
#include "common/log.h"
#include "aam/err.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>
#include <openssl/x509.h>

struct attest_issuer {
	pthread_mutex_t mu;
	struct attest_keysrc src;
	char *iss;
	struct aam_jwks keys; /* keys.keys[0] signs */
	double refreshed;     /* monotonic seconds; 0: never */
};

static double
mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
attest_kid_of(EVP_PKEY *pkey, char kid[AAM_JWK_THUMBPRINT_LEN + 1])
{
	if (pkey == NULL || kid == NULL)
		return AAM_E_INVAL;
	unsigned char *der = NULL;
	int len = i2d_PUBKEY(pkey, &der);
	if (len <= 0)
		return AAM_E_CRYPTO;
	uint8_t d[32];
	unsigned int dl = 0;
	int ok = EVP_Digest(der, (size_t)len, d, &dl, EVP_sha256(), NULL);
	OPENSSL_free(der);
	if (ok != 1)
		return AAM_E_CRYPTO;
	return aam_b64_encode(d, sizeof(d), kid, AAM_JWK_THUMBPRINT_LEN + 1, NULL, AAM_B64_URL);
}

/* ---- OpenSSL key source ---------------------------------------------------- */

static int
pkey_src_pubkeys(void *ctx, struct aam_jwks *out)
{
	struct attest_pkey_src *ps = ctx;
	for (size_t i = 0; i < ps->nkeys; i++) {
		char kid[AAM_JWK_THUMBPRINT_LEN + 1];
		struct aam_jwk k;
		int rc = attest_kid_of(ps->keys[i], kid);
		if (rc == AAM_OK)
			rc = aam_jwk_from_pkey(ps->keys[i], kid, &k);
		if (rc != AAM_OK)
			return rc;
		rc = aam_jwks_add(out, &k);
		aam_jwk_uninit(&k);
		if (rc != AAM_OK)
			return rc;
	}
	return AAM_OK;
}

int
attest_keysrc_pkey(struct attest_pkey_src *ps, struct attest_keysrc *out)
{
	if (ps == NULL || out == NULL || ps->nkeys == 0 || ps->nkeys > 4)
		return AAM_E_INVAL;
	memset(out, 0, sizeof(*out));
	aam_jose_signer_pkey(&out->signer, ps->keys[0], NULL);
	out->pubkeys = pkey_src_pubkeys;
	out->pubkeys_ctx = ps;
	return AAM_OK;
}

/* ---- issuer ------------------------------------------------------------------ */

int
attest_issuer_new(const struct attest_keysrc *src, const char *iss, struct attest_issuer **out)
{
	if (src == NULL || src->signer.sign == NULL || src->pubkeys == NULL || iss == NULL ||
	    out == NULL)
		return AAM_E_INVAL;
	struct attest_issuer *is = calloc(1, sizeof(*is));
	if (is == NULL)
		return AAM_E_NOMEM;
	is->iss = strdup(iss);
	if (is->iss == NULL) {
		free(is);
		return AAM_E_NOMEM;
	}
	is->src = *src;
	aam_jwks_init(&is->keys);
	pthread_mutex_init(&is->mu, NULL);
	*out = is;
	return AAM_OK;
}

void
attest_issuer_free(struct attest_issuer *is)
{
	if (is == NULL)
		return;
	aam_jwks_uninit(&is->keys);
	pthread_mutex_destroy(&is->mu);
	free(is->iss);
	free(is);
}

int
attest_issuer_refresh(struct attest_issuer *is)
{
	if (is == NULL)
		return AAM_E_INVAL;
	struct aam_jwks fresh;
	aam_jwks_init(&fresh);
	int rc = is->src.pubkeys(is->src.pubkeys_ctx, &fresh);
	if (rc == AAM_OK && fresh.count == 0)
		rc = AAM_E_NOTFOUND;
	if (rc != AAM_OK) {
		aam_jwks_uninit(&fresh);
		aam_log(AAM_LOG_WARN, "attest.issuer_keys_failed", AAM_F_ERR(rc));
		return rc;
	}
	pthread_mutex_lock(&is->mu);
	struct aam_jwks old = is->keys;
	is->keys = fresh;
	is->refreshed = mono_now();
	pthread_mutex_unlock(&is->mu);
	aam_jwks_uninit(&old);
	return AAM_OK;
}

/* Refreshes when the key set is older than ATTEST_ISSUER_REFRESH_S or missing. */
static int
refresh_if_stale(struct attest_issuer *is)
{
	pthread_mutex_lock(&is->mu);
	bool stale = is->keys.count == 0 || mono_now() - is->refreshed > ATTEST_ISSUER_REFRESH_S;
	pthread_mutex_unlock(&is->mu);
	return stale ? attest_issuer_refresh(is) : AAM_OK;
}

/* A copy of the current key, taken under the lock. */
static int
current_key(struct attest_issuer *is, struct aam_jwk *out)
{
	pthread_mutex_lock(&is->mu);
	int rc = is->keys.count > 0 ? aam_jwk_copy(out, &is->keys.keys[0]) : AAM_E_NOTFOUND;
	pthread_mutex_unlock(&is->mu);
	return rc;
}

static json_t *
token_claims(const struct attest_issuer *is, const struct attest_token_req *req, const char *jti,
             int64_t iat, int64_t exp)
{
	const struct attest_reg *r = req->reg;
	return json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:s,s:{s:s},s:{s:s,s:s,s:s,s:s,s:s}}", "iss",
	                 is->iss, "sub", r->spiffe_id, "aud", req->audience, "iat", (json_int_t)iat,
	                 "nbf", (json_int_t)iat, "exp", (json_int_t)exp, "jti", jti, "cnf", "jkt",
	                 req->jkt, "aam", "owner", r->owner, "team", r->team, "environment",
	                 r->environment, "deployment", r->deployment, "method",
	                 attest_method_name(req->method));
}

/* Signs CLAIMS with KEY's kid and checks the result with KEY. */
static int
sign_and_check(struct attest_issuer *is, const struct aam_jwk *key, const json_t *claims,
               char **token)
{
	struct aam_jose_signer s = is->src.signer;
	s.kid = key->kid;
	char *t = NULL;
	int rc = aam_jose_sign(&s, "JWT", NULL, claims, &t);
	if (rc != AAM_OK)
		return rc;
	enum aam_jose_reason why = AAM_JOSE_R_NONE;
	rc = aam_jose_verify(t, strlen(t), key->pkey, NULL, NULL, &why);
	if (rc != AAM_OK) {
		free(t);
		return AAM_E_CRYPTO;
	}
	*token = t;
	return AAM_OK;
}

int
attest_issuer_issue(struct attest_issuer *is, const struct attest_token_req *req,
                    struct attest_token *out)
{
	if (is == NULL || req == NULL || req->reg == NULL || req->audience == NULL ||
	    req->jkt == NULL || out == NULL || req->ttl <= 0)
		return AAM_E_INVAL;
	memset(out, 0, sizeof(*out));
	uint8_t rnd[16];
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return AAM_E_CRYPTO;
	int rc = aam_b64_encode(rnd, sizeof(rnd), out->jti, sizeof(out->jti), NULL, AAM_B64_URL);
	if (rc != AAM_OK)
		return rc;
	out->iat = req->now;
	out->exp = req->now + req->ttl;
	json_t *claims = token_claims(is, req, out->jti, out->iat, out->exp);
	if (claims == NULL)
		return AAM_E_NOMEM;

	rc = refresh_if_stale(is);
	struct aam_jwk key;
	memset(&key, 0, sizeof(key));
	if (rc == AAM_OK)
		rc = current_key(is, &key);
	if (rc == AAM_OK) {
		rc = sign_and_check(is, &key, claims, &out->token);
		if (rc != AAM_OK && rc != AAM_E_NOMEM) {
			/* Maybe the key rotated under us: re-read the keys and try once more. */
			aam_log(AAM_LOG_INFO, "attest.issuer_key_changed",
			        AAM_F_STR("kid", key.kid));
			aam_jwk_uninit(&key);
			memset(&key, 0, sizeof(key));
			rc = attest_issuer_refresh(is);
			if (rc == AAM_OK)
				rc = current_key(is, &key);
			if (rc == AAM_OK)
				rc = sign_and_check(is, &key, claims, &out->token);
		}
	}
	aam_jwk_uninit(&key);
	json_decref(claims);
	if (rc != AAM_OK) {
		aam_log(AAM_LOG_ERROR, "attest.sign_failed", AAM_F_ERR(rc));
		/* Whatever went wrong, the caller can only retry later. */
		if (rc != AAM_E_NOMEM)
			rc = AAM_E_BUSY;
	}
	return rc;
}

void
attest_token_uninit(struct attest_token *t)
{
	if (t == NULL)
		return;
	if (t->token != NULL) {
		aam_wipe(t->token, strlen(t->token));
		free(t->token);
	}
	memset(t, 0, sizeof(*t));
}

int
attest_issuer_jwks(struct attest_issuer *is, json_t **out)
{
	if (is == NULL || out == NULL)
		return AAM_E_INVAL;
	*out = NULL;
	int rc = refresh_if_stale(is);
	pthread_mutex_lock(&is->mu);
	if (is->keys.count == 0)
		rc = rc != AAM_OK ? rc : AAM_E_NOTFOUND;
	else
		rc = aam_jwks_to_json(&is->keys, out);
	pthread_mutex_unlock(&is->mu);
	return rc;
}

int
attest_issuer_kids(struct attest_issuer *is, char *out, size_t outlen)
{
	if (is == NULL || out == NULL || outlen == 0)
		return AAM_E_INVAL;
	out[0] = '\0';
	int rc = AAM_OK;
	size_t used = 0;
	pthread_mutex_lock(&is->mu);
	for (size_t i = 0; i < is->keys.count; i++) {
		size_t kl = strlen(is->keys.keys[i].kid);
		if (used + kl + 2 > outlen) {
			rc = AAM_E_TOOBIG;
			break;
		}
		if (i > 0)
			out[used++] = ',';
		memcpy(out + used, is->keys.keys[i].kid, kl + 1);
		used += kl;
	}
	pthread_mutex_unlock(&is->mu);
	return rc;
}
