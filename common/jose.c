/*
 * JOSE basics: reason names, the two ECDSA signature encodings, the
 * OpenSSL key signer and helpers the other jose_*.c files share.
 */
#include "common/jose.h"
#include "common/jose_int.h"
#include "common/b64.h"
#include "aam/err.h"

#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>

/*
 * A JWS header, payload or JWK is small; these limits sit well inside
 * AAM_JOSE_MAX_TOKEN and keep a hostile document from costing more than
 * one pass.  Tokens nest at most three levels ({"cnf":{"jkt":..}}, an
 * "aam" object), so 16 leaves room without inviting depth bombs.
 */
const struct aam_json_limits aam_jose__json_limits = {
        .max_bytes = AAM_JOSE_MAX_TOKEN,
        .max_depth = 16,
        .max_string = AAM_JOSE_MAX_TOKEN,
        .max_members = 256,
        .allow_nul = false,
};

static const char *const reason_names[AAM_JOSE_R__MAX] = {
        [AAM_JOSE_R_NONE] = "ok",
        [AAM_JOSE_R_TOO_BIG] = "token_too_big",
        [AAM_JOSE_R_FORMAT] = "malformed_jws",
        [AAM_JOSE_R_BASE64] = "bad_base64url",
        [AAM_JOSE_R_HEADER] = "bad_header",
        [AAM_JOSE_R_PAYLOAD] = "bad_payload",
        [AAM_JOSE_R_ALG_NONE] = "alg_none",
        [AAM_JOSE_R_ALG_HMAC] = "alg_hmac",
        [AAM_JOSE_R_ALG] = "alg_unsupported",
        [AAM_JOSE_R_CRIT] = "crit_unsupported",
        [AAM_JOSE_R_TYP] = "typ_mismatch",
        [AAM_JOSE_R_SIG_FORMAT] = "bad_signature_encoding",
        [AAM_JOSE_R_SIGNATURE] = "bad_signature",
        [AAM_JOSE_R_KID] = "unknown_kid",
        [AAM_JOSE_R_KEY] = "unsupported_key",
        [AAM_JOSE_R_JWK] = "bad_jwk",
        [AAM_JOSE_R_JWK_MISSING] = "jwk_missing",
        [AAM_JOSE_R_JWK_PRIVATE] = "jwk_private",
        [AAM_JOSE_R_CLAIM] = "bad_claim",
        [AAM_JOSE_R_MISSING_CLAIM] = "missing_claim",
        [AAM_JOSE_R_ISS] = "wrong_issuer",
        [AAM_JOSE_R_AUD] = "wrong_audience",
        [AAM_JOSE_R_EXPIRED] = "expired",
        [AAM_JOSE_R_NOT_YET_VALID] = "not_yet_valid",
        [AAM_JOSE_R_IAT_FUTURE] = "issued_in_future",
        [AAM_JOSE_R_LIFETIME] = "lifetime_too_long",
        [AAM_JOSE_R_DPOP_HTM] = "dpop_htm_mismatch",
        [AAM_JOSE_R_DPOP_HTU] = "dpop_htu_mismatch",
        [AAM_JOSE_R_DPOP_IAT_STALE] = "dpop_iat_stale",
        [AAM_JOSE_R_DPOP_IAT_FUTURE] = "dpop_iat_future",
        [AAM_JOSE_R_DPOP_JTI] = "dpop_bad_jti",
        [AAM_JOSE_R_DPOP_REPLAY] = "dpop_jti_replayed",
        [AAM_JOSE_R_DPOP_REPLAY_FULL] = "dpop_replay_cache_full",
        [AAM_JOSE_R_DPOP_ATH_MISSING] = "dpop_ath_missing",
        [AAM_JOSE_R_DPOP_ATH] = "dpop_ath_mismatch",
        [AAM_JOSE_R_DPOP_NONCE_MISSING] = "dpop_nonce_missing",
        [AAM_JOSE_R_DPOP_NONCE] = "dpop_nonce_mismatch",
        [AAM_JOSE_R_DPOP_JKT] = "dpop_key_mismatch",
};

const char *
aam_jose_reason_str(enum aam_jose_reason r)
{
	if ((int)r < 0 || r >= AAM_JOSE_R__MAX || reason_names[r] == NULL)
		return "unknown_reason";
	return reason_names[r];
}

int
aam_jose__fail(enum aam_jose_reason *why, enum aam_jose_reason r, int rc)
{
	if (why != NULL)
		*why = r;
	return rc;
}

int64_t
aam_jose__now(int64_t now)
{
	return now > 0 ? now : (int64_t)time(NULL);
}

int
aam_jose__sha256(const void *data, size_t len, uint8_t out[AAM_JOSE_DIGEST_LEN])
{
	unsigned int n = 0;
	if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != AAM_JOSE_DIGEST_LEN) {
		ERR_clear_error();
		return AAM_E_CRYPTO;
	}
	return AAM_OK;
}

int
aam_jose__b64url(const void *in, size_t n, char *out, size_t outcap)
{
	return aam_b64_encode(in, n, out, outcap, NULL, AAM_B64_URL);
}

int
aam_jose__segment_json(const char *seg, size_t n, json_t **out, bool *bad_b64)
{
	*out = NULL;
	*bad_b64 = false;
	struct aam_buf raw;
	aam_buf_init(&raw, AAM_JOSE_MAX_TOKEN);
	int rc = aam_b64_decode_buf(&raw, seg, n, AAM_B64_URL);
	if (rc != AAM_OK) {
		aam_buf_uninit(&raw);
		if (rc == AAM_E_PARSE)
			*bad_b64 = true;
		return rc;
	}
	json_t *j = NULL;
	rc = aam_json_parse(raw.data != NULL ? raw.data : (const uint8_t *)"", raw.len,
	                    &aam_jose__json_limits, &j, NULL);
	aam_buf_uninit(&raw);
	if (rc != AAM_OK)
		return rc;
	if (!json_is_object(j)) {
		json_decref(j);
		return AAM_E_PARSE;
	}
	*out = j;
	return AAM_OK;
}

bool
aam_jose__is_p256(EVP_PKEY *key)
{
	if (key == NULL || !EVP_PKEY_is_a(key, "EC"))
		return false;
	char group[64];
	size_t glen = 0;
	if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
	                                   &glen) != 1) {
		ERR_clear_error();
		return false;
	}
	return strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0;
}

int
aam_jose__numeric_date(const json_t *v, bool round_up, int64_t *out)
{
	/* 2^53: beyond it a double no longer holds whole seconds exactly. */
	const double limit = 9007199254740992.0;
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);
		if (i < 0 || (double)i >= limit)
			return AAM_E_INVAL;
		*out = (int64_t)i;
		return AAM_OK;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);
		/* Written so that NaN fails too; truncation is floor for d >= 0. */
		if (!(d >= 0 && d < limit))
			return AAM_E_INVAL;
		int64_t t = (int64_t)d;
		*out = round_up && (double)t < d ? t + 1 : t;
		return AAM_OK;
	}
	return AAM_E_INVAL;
}

int
aam_jose_ecdsa_der_to_rs(const uint8_t *der, size_t len, uint8_t rs[AAM_JOSE_SIG_LEN])
{
	if (der == NULL || rs == NULL || len == 0 || len > AAM_JOSE_ECDSA_DER_MAX)
		return AAM_E_PARSE;
	const unsigned char *p = der;
	ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)len);
	if (sig == NULL) {
		ERR_clear_error();
		return AAM_E_PARSE;
	}
	int rc = AAM_E_PARSE;
	const BIGNUM *r = NULL, *s = NULL;
	ECDSA_SIG_get0(sig, &r, &s);
	/* Trailing bytes or values wider than the curve order are not a P-256 signature. */
	if (p == der + len && !BN_is_negative(r) && !BN_is_negative(s) && BN_num_bytes(r) <= 32 &&
	    BN_num_bytes(s) <= 32 && BN_bn2binpad(r, rs, 32) == 32 &&
	    BN_bn2binpad(s, rs + 32, 32) == 32)
		rc = AAM_OK;
	ECDSA_SIG_free(sig);
	return rc;
}

int
aam_jose_ecdsa_rs_to_der(const uint8_t rs[AAM_JOSE_SIG_LEN], uint8_t *out, size_t outcap,
                         size_t *outlen)
{
	if (rs == NULL || out == NULL)
		return AAM_E_INVAL;
	ECDSA_SIG *sig = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(rs, 32, NULL);
	BIGNUM *s = BN_bin2bn(rs + 32, 32, NULL);
	if (sig == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(sig, r, s) != 1) {
		ECDSA_SIG_free(sig);
		BN_free(r);
		BN_free(s);
		ERR_clear_error();
		return AAM_E_NOMEM;
	}
	int rc = AAM_OK;
	int n = i2d_ECDSA_SIG(sig, NULL);
	if (n <= 0) {
		rc = AAM_E_CRYPTO;
	} else if ((size_t)n > outcap) {
		rc = AAM_E_TOOBIG;
	} else {
		unsigned char *p = out;
		if (i2d_ECDSA_SIG(sig, &p) != n)
			rc = AAM_E_CRYPTO;
		else if (outlen != NULL)
			*outlen = (size_t)n;
	}
	ECDSA_SIG_free(sig);
	ERR_clear_error();
	return rc;
}

void
aam_jose_signer_pkey(struct aam_jose_signer *s, EVP_PKEY *pkey, const char *kid)
{
	s->sign = aam_jose_pkey_sign;
	s->ctx = pkey;
	s->kid = kid;
}

int
aam_jose_pkey_sign(void *ctx, const uint8_t digest[AAM_JOSE_DIGEST_LEN],
                   uint8_t sig_rs[AAM_JOSE_SIG_LEN])
{
	EVP_PKEY *pkey = ctx;
	if (!aam_jose__is_p256(pkey))
		return AAM_E_INVAL;
	EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	if (pctx == NULL) {
		ERR_clear_error();
		return AAM_E_NOMEM;
	}
	uint8_t der[AAM_JOSE_ECDSA_DER_MAX];
	size_t derlen = sizeof(der);
	int rc = AAM_E_CRYPTO;
	/* The md only tells the provider how long the pre-hashed input is. */
	if (EVP_PKEY_sign_init(pctx) == 1 &&
	    EVP_PKEY_CTX_set_signature_md(pctx, EVP_sha256()) == 1 &&
	    EVP_PKEY_sign(pctx, der, &derlen, digest, AAM_JOSE_DIGEST_LEN) == 1)
		rc = aam_jose_ecdsa_der_to_rs(der, derlen, sig_rs) == AAM_OK ? AAM_OK
		                                                             : AAM_E_CRYPTO;
	EVP_PKEY_CTX_free(pctx);
	ERR_clear_error();
	return rc;
}
