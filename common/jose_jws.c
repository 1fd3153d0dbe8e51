/*
 * JWS compact serialisation, ES256 only: signing through a pluggable
 * signer, parsing with every structural check before any key is used,
 * and signature verification with OpenSSL.
 */
#include "common/jose.h"
#include "common/jose_int.h"
#include "common/b64.h"
#include "common/json.h"
#include "aam/err.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>

/* Appends base64url(JSON of J) to B. */
static int
append_b64_json(struct aam_buf *b, const json_t *j)
{
	struct aam_buf tmp;
	aam_buf_init(&tmp, AAM_JOSE_MAX_TOKEN);
	int rc = aam_json_dump_buf(j, &tmp, 0);
	if (rc == AAM_OK)
		rc = aam_b64_encode_buf(b, tmp.data, tmp.len, AAM_B64_URL);
	aam_buf_uninit(&tmp);
	return rc;
}

static int
build_header(const struct aam_jose_signer *signer, const char *typ, const struct aam_jwk *jwk,
             json_t **out)
{
	json_t *h = json_object();
	if (h == NULL)
		return AAM_E_NOMEM;
	int rc = AAM_OK;
	if (json_object_set_new(h, "alg", json_string("ES256")) != 0 ||
	    (typ != NULL && json_object_set_new(h, "typ", json_string(typ)) != 0) ||
	    (signer->kid != NULL && json_object_set_new(h, "kid", json_string(signer->kid)) != 0))
		rc = AAM_E_INVAL; /* jansson refuses only invalid UTF-8 here, or memory */
	if (rc == AAM_OK && jwk != NULL) {
		json_t *k = NULL;
		rc = aam_jwk_to_json(jwk, AAM_JWK_PUBLIC, &k);
		if (rc == AAM_OK && json_object_set_new(h, "jwk", k) != 0)
			rc = AAM_E_NOMEM;
	}
	if (rc != AAM_OK) {
		json_decref(h);
		return rc;
	}
	*out = h;
	return AAM_OK;
}

int
aam_jose_sign(const struct aam_jose_signer *signer, const char *typ, const struct aam_jwk *jwk,
              const json_t *claims, char **out)
{
	if (out != NULL)
		*out = NULL;
	if (signer == NULL || signer->sign == NULL || !json_is_object(claims) || out == NULL)
		return AAM_E_INVAL;
	if (signer->kid != NULL && strlen(signer->kid) > AAM_JOSE_MAX_KID)
		return AAM_E_INVAL;

	json_t *header = NULL;
	int rc = build_header(signer, typ, jwk, &header);
	if (rc != AAM_OK)
		return rc;

	struct aam_buf tok;
	aam_buf_init(&tok, AAM_JOSE_MAX_TOKEN);
	rc = append_b64_json(&tok, header);
	json_decref(header);
	if (rc == AAM_OK)
		rc = aam_buf_append_byte(&tok, '.');
	if (rc == AAM_OK)
		rc = append_b64_json(&tok, claims);

	uint8_t digest[AAM_JOSE_DIGEST_LEN], sig[AAM_JOSE_SIG_LEN];
	if (rc == AAM_OK)
		rc = aam_jose__sha256(tok.data, tok.len, digest);
	if (rc == AAM_OK)
		rc = signer->sign(signer->ctx, digest, sig);
	if (rc == AAM_OK)
		rc = aam_buf_append_byte(&tok, '.');
	if (rc == AAM_OK)
		rc = aam_b64_encode_buf(&tok, sig, sizeof(sig), AAM_B64_URL);
	if (rc == AAM_OK) {
		*out = (char *)aam_buf_steal(&tok, NULL);
		if (*out == NULL)
			rc = AAM_E_NOMEM;
	}
	aam_buf_uninit(&tok);
	return rc;
}

/* Refuses every algorithm but ES256, naming the dangerous ones apart. */
static int
check_alg(const json_t *header, enum aam_jose_reason *why)
{
	const char *alg = json_string_value(json_object_get(header, "alg"));
	if (alg == NULL)
		return aam_jose__fail(why, AAM_JOSE_R_ALG, AAM_E_DENIED);
	if (strcmp(alg, "ES256") == 0)
		return AAM_OK;
	/* "none" in any case: some libraries once matched it case-insensitively. */
	if (strcasecmp(alg, "none") == 0)
		return aam_jose__fail(why, AAM_JOSE_R_ALG_NONE, AAM_E_DENIED);
	if (strncmp(alg, "HS", 2) == 0)
		return aam_jose__fail(why, AAM_JOSE_R_ALG_HMAC, AAM_E_DENIED);
	return aam_jose__fail(why, AAM_JOSE_R_ALG, AAM_E_DENIED);
}

static int
check_header(const json_t *header, enum aam_jose_reason *why)
{
	int rc = check_alg(header, why);
	if (rc != AAM_OK)
		return rc;
	/*
	 * We implement no extension, so any "crit" must be refused (RFC 7515
	 * section 4.1.11).  "b64" (RFC 7797) changes what is signed; a
	 * header carrying it without "crit" is malformed, so it is refused
	 * outright rather than silently interpreted either way.
	 */
	if (json_object_get(header, "crit") != NULL || json_object_get(header, "b64") != NULL)
		return aam_jose__fail(why, AAM_JOSE_R_CRIT, AAM_E_DENIED);
	const json_t *kid = json_object_get(header, "kid");
	if (kid != NULL && (!json_is_string(kid) || json_string_length(kid) > AAM_JOSE_MAX_KID))
		return aam_jose__fail(why, AAM_JOSE_R_HEADER, AAM_E_PARSE);
	const json_t *typ = json_object_get(header, "typ");
	if (typ != NULL && !json_is_string(typ))
		return aam_jose__fail(why, AAM_JOSE_R_HEADER, AAM_E_PARSE);
	return AAM_OK;
}

int
aam_jose_jws_parse(const char *token, size_t len, struct aam_jose_jws *out,
                   enum aam_jose_reason *why)
{
	if (out == NULL)
		return aam_jose__fail(why, AAM_JOSE_R_NONE, AAM_E_INVAL);
	memset(out, 0, sizeof(*out));
	if (token == NULL)
		return aam_jose__fail(why, AAM_JOSE_R_NONE, AAM_E_INVAL);
	if (len > AAM_JOSE_MAX_TOKEN)
		return aam_jose__fail(why, AAM_JOSE_R_TOO_BIG, AAM_E_TOOBIG);

	/*
	 * Exactly two dots; a JWE (four) or a JWS JSON serialisation is
	 * refused here.  An empty signature (an unsecured JWS) passes this
	 * point so that "alg":"none" is reported as what it is.
	 */
	const char *d1 = memchr(token, '.', len);
	const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
	if (d2 == NULL || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)) != NULL ||
	    d1 == token || d2 == d1 + 1)
		return aam_jose__fail(why, AAM_JOSE_R_FORMAT, AAM_E_PARSE);

	bool bad_b64 = false;
	int rc = aam_jose__segment_json(token, (size_t)(d1 - token), &out->header, &bad_b64);
	if (rc != AAM_OK) {
		if (rc == AAM_E_NOMEM)
			return aam_jose__fail(why, AAM_JOSE_R_NONE, rc);
		return aam_jose__fail(why, bad_b64 ? AAM_JOSE_R_BASE64 : AAM_JOSE_R_HEADER,
		                      AAM_E_PARSE);
	}
	rc = check_header(out->header, why);
	if (rc != AAM_OK)
		goto fail;
	out->kid = json_string_value(json_object_get(out->header, "kid"));
	out->typ = json_string_value(json_object_get(out->header, "typ"));

	rc = aam_jose__segment_json(d1 + 1, (size_t)(d2 - d1 - 1), &out->claims, &bad_b64);
	if (rc != AAM_OK) {
		if (rc != AAM_E_NOMEM) {
			rc = aam_jose__fail(why, bad_b64 ? AAM_JOSE_R_BASE64 : AAM_JOSE_R_PAYLOAD,
			                    AAM_E_PARSE);
		}
		goto fail;
	}

	size_t siglen = 0;
	const char *sig = d2 + 1;
	size_t sig_chars = len - (size_t)(sig - token);
	rc = aam_b64_decode(sig, sig_chars, out->sig, sizeof(out->sig), &siglen, AAM_B64_URL);
	if (rc == AAM_E_PARSE) {
		rc = aam_jose__fail(why, AAM_JOSE_R_BASE64, AAM_E_PARSE);
		goto fail;
	}
	if (rc != AAM_OK || siglen != AAM_JOSE_SIG_LEN) {
		rc = aam_jose__fail(why, AAM_JOSE_R_SIG_FORMAT, AAM_E_PARSE);
		goto fail;
	}
	rc = aam_jose__sha256(token, (size_t)(d2 - token), out->digest);
	if (rc != AAM_OK)
		goto fail;
	return aam_jose__fail(why, AAM_JOSE_R_NONE, AAM_OK);
fail:
	aam_jose_jws_uninit(out);
	return rc;
}

int
aam_jose_jws_verify(const struct aam_jose_jws *jws, EVP_PKEY *key, enum aam_jose_reason *why)
{
	if (jws == NULL || key == NULL)
		return aam_jose__fail(why, AAM_JOSE_R_NONE, AAM_E_INVAL);
	if (!aam_jose__is_p256(key))
		return aam_jose__fail(why, AAM_JOSE_R_KEY, AAM_E_DENIED);

	uint8_t der[AAM_JOSE_ECDSA_DER_MAX];
	size_t derlen = 0;
	int rc = aam_jose_ecdsa_rs_to_der(jws->sig, der, sizeof(der), &derlen);
	if (rc != AAM_OK)
		return aam_jose__fail(why, AAM_JOSE_R_NONE, rc);

	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
	if (ctx == NULL) {
		ERR_clear_error();
		return aam_jose__fail(why, AAM_JOSE_R_NONE, AAM_E_NOMEM);
	}
	/*
	 * OpenSSL rejects r or s of zero or not below the group order itself,
	 * so the all-zero signature and (r, s+n) malleations fail here too.
	 */
	rc = AAM_E_CRYPTO;
	if (EVP_PKEY_verify_init(ctx) == 1 && EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1)
		rc = EVP_PKEY_verify(ctx, der, derlen, jws->digest, sizeof(jws->digest)) == 1
		             ? AAM_OK
		             : AAM_E_DENIED;
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	if (rc == AAM_E_DENIED)
		return aam_jose__fail(why, AAM_JOSE_R_SIGNATURE, rc);
	return aam_jose__fail(why, AAM_JOSE_R_NONE, rc);
}

void
aam_jose_jws_uninit(struct aam_jose_jws *jws)
{
	if (jws == NULL)
		return;
	json_decref(jws->header);
	json_decref(jws->claims);
	memset(jws, 0, sizeof(*jws));
}

static int
finish(struct aam_jose_jws *jws, int rc, json_t **header, json_t **claims)
{
	if (rc == AAM_OK) {
		if (header != NULL)
			*header = json_incref(jws->header);
		if (claims != NULL)
			*claims = json_incref(jws->claims);
	}
	aam_jose_jws_uninit(jws);
	return rc;
}

int
aam_jose_verify(const char *token, size_t len, EVP_PKEY *key, json_t **header, json_t **claims,
                enum aam_jose_reason *why)
{
	if (header != NULL)
		*header = NULL;
	if (claims != NULL)
		*claims = NULL;
	struct aam_jose_jws jws;
	int rc = aam_jose_jws_parse(token, len, &jws, why);
	if (rc != AAM_OK)
		return rc;
	return finish(&jws, aam_jose_jws_verify(&jws, key, why), header, claims);
}

int
aam_jose_verify_jwks(const char *token, size_t len, const struct aam_jwks *set, json_t **header,
                     json_t **claims, enum aam_jose_reason *why)
{
	if (header != NULL)
		*header = NULL;
	if (claims != NULL)
		*claims = NULL;
	if (set == NULL)
		return aam_jose__fail(why, AAM_JOSE_R_NONE, AAM_E_INVAL);
	struct aam_jose_jws jws;
	int rc = aam_jose_jws_parse(token, len, &jws, why);
	if (rc != AAM_OK)
		return rc;
	const struct aam_jwk *k = jws.kid != NULL ? aam_jwks_find(set, jws.kid) : NULL;
	if (k == NULL)
		rc = aam_jose__fail(why, AAM_JOSE_R_KID, AAM_E_DENIED);
	else
		rc = aam_jose_jws_verify(&jws, k->pkey, why);
	return finish(&jws, rc, header, claims);
}
