/*
 * POST /v1/attest/challenge, /v1/attest/pkcs11 and /v1/attest/join.
 *
 * PKCS#11 and join attestations are proofs of possession: the agent signs
 * (ES256) a string that binds the server's fresh nonce, the identity and
 * the audience, so a signature cannot be replayed, moved to another
 * identity or reused for another audience:
 *
 *   "aam-attest-pkcs11\n" nonce "\n" spiffe_id "\n" audience
 *   "aam-attest-join\n"   nonce "\n" spiffe_id "\n" audience
 *
 * where nonce is the base64url string exactly as the challenge returned
 * it, and for a join spiffe_id is the registration's SPIFFE ID.
 */
#include "attest/server.h"
#include "common/b64.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/log.h"
#include "aam/err.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#define POP_CONTEXT_PKCS11 "aam-attest-pkcs11\n"
#define POP_CONTEXT_JOIN   "aam-attest-join\n"
#define JOIN_TOKEN_MAX     256u

/* ---- challenge ------------------------------------------------------------- */

int
attest_api_challenge(void *ctx, const struct aam_http_request *req, struct aam_http_response *resp)
{
	struct attest_server *s = ctx;
	double mono = attest_mono();
	if (!attest_ratelimit_allowed(s->limiter, req->client_addr, mono) ||
	    !attest_ratelimit_allowed(s->challenges, req->client_addr, mono))
		return attest_respond_failure(s, req, resp, ATTEST_E_RATE_LIMITED,
		                              ATTEST_METHOD_NONE, NULL);
	attest_ratelimit_fail(s->challenges, req->client_addr, mono);
	json_t *body = NULL;
	enum attest_err e = attest_parse_body(req, &body);
	const char *method_s = NULL, *spiffe_id = NULL;
	enum attest_method method = ATTEST_METHOD_NONE;
	if (e == ATTEST_OK && (aam_json_get_str_max(body, NULL, "method", AAM_JSON_REQUIRED, 16,
	                                            &method_s, NULL) != AAM_OK ||
	                       aam_json_get_str_max(body, NULL, "spiffe_id", AAM_JSON_OPTIONAL,
	                                            AAM_SPIFFE_ID_MAX, &spiffe_id, NULL) != AAM_OK))
		e = ATTEST_E_INVALID_REQUEST;
	if (e == ATTEST_OK) {
		method = attest_method_parse(method_s);
		struct aam_spiffe_id id;
		/* A join agent may not know its identity yet; the others must name it. */
		if (method == ATTEST_METHOD_NONE ||
		    (spiffe_id == NULL && method != ATTEST_METHOD_JOIN) ||
		    (spiffe_id != NULL &&
		     aam_spiffe_parse(spiffe_id, strlen(spiffe_id), &id, NULL) != AAM_OK))
			e = ATTEST_E_INVALID_REQUEST;
	}
	struct attest_nonce_binding *b = NULL;
	uint8_t nonce[ATTEST_TTLMAP_KEY_LEN];
	if (e == ATTEST_OK) {
		b = calloc(1, sizeof(*b));
		if (b == NULL || RAND_bytes(nonce, sizeof(nonce)) != 1)
			e = ATTEST_E_INTERNAL;
	}
	if (e == ATTEST_OK) {
		b->method = method;
		if (spiffe_id != NULL) {
			b->has_spiffe_id = true;
			attest_spiffe_hash(spiffe_id, b->spiffe_id_hash);
		}
		int64_t now = attest_now(s);
		int rc = attest_ttlmap_put(s->nonces, nonce, b, now + ATTEST_NONCE_TTL, now);
		if (rc == AAM_OK)
			b = NULL;
		else
			e = rc == AAM_E_BUSY ? ATTEST_E_UNAVAILABLE : ATTEST_E_INTERNAL;
	}
	free(b);
	int rc;
	if (e != ATTEST_OK) {
		rc = attest_respond_failure(s, req, resp, e, method, spiffe_id);
	} else {
		char enc[64];
		aam_b64_encode(nonce, sizeof(nonce), enc, sizeof(enc), NULL, AAM_B64_URL);
		json_t *j = json_pack("{s:s,s:i}", "nonce", enc, "expires_in", ATTEST_NONCE_TTL);
		rc = j != NULL ? aam_http_respond_json(resp, 200, j) : AAM_E_NOMEM;
		json_decref(j);
		if (rc == AAM_OK)
			rc = aam_http_response_header(resp, "Cache-Control", "no-store");
	}
	json_decref(body);
	return rc;
}

/* ---- proof of possession ---------------------------------------------------- */

/*
 * Verifies the ES256 signature SIG_B64 by KEY over
 * CONTEXT nonce "\n" spiffe_id "\n" audience.
 */
static enum attest_err
pop_verify(const struct aam_jwk *key, const char *context, const char *nonce_b64,
           const char *spiffe_id, const char *audience, const char *sig_b64)
{
	uint8_t rs[AAM_JOSE_SIG_LEN];
	size_t n = 0;
	if (sig_b64 == NULL ||
	    aam_b64_decode(sig_b64, strlen(sig_b64), rs, sizeof(rs), &n, AAM_B64_URL) != AAM_OK ||
	    n != sizeof(rs))
		return ATTEST_E_SIGNATURE_INVALID;
	struct aam_buf msg;
	aam_buf_init(&msg, 8192);
	aam_buf_append_str(&msg, context);
	aam_buf_append_str(&msg, nonce_b64);
	aam_buf_append_byte(&msg, '\n');
	aam_buf_append_str(&msg, spiffe_id);
	aam_buf_append_byte(&msg, '\n');
	aam_buf_append_str(&msg, audience);
	uint8_t der[AAM_JOSE_ECDSA_DER_MAX];
	size_t derlen = 0;
	enum attest_err e = ATTEST_E_SIGNATURE_INVALID;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (aam_buf_failed(&msg) || md == NULL) {
		e = ATTEST_E_INTERNAL;
		goto out;
	}
	if (aam_jose_ecdsa_rs_to_der(rs, der, sizeof(der), &derlen) != AAM_OK)
		goto out;
	if (EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key->pkey) == 1 &&
	    EVP_DigestVerify(md, der, derlen, msg.data, msg.len) == 1)
		e = ATTEST_OK;
out:
	EVP_MD_CTX_free(md);
	aam_buf_uninit(&msg);
	return e;
}

/* The "jwk" member as an EC P-256 public key. */
static enum attest_err
get_jwk(const json_t *body, struct aam_jwk *out)
{
	json_t *j = NULL;
	if (aam_json_get_object(body, NULL, "jwk", AAM_JSON_REQUIRED, &j, NULL) != AAM_OK)
		return ATTEST_E_INVALID_REQUEST;
	if (aam_jwk_from_json(j, out, NULL) != AAM_OK)
		return ATTEST_E_INVALID_REQUEST;
	return ATTEST_OK;
}

/* The fields common to both proofs. */
struct pop_req {
	const char *spiffe_id, *audience, *nonce, *signature, *join_token;
};

static enum attest_err
pop_fields(const json_t *body, struct pop_req *p, bool join)
{
	int rc = aam_json_get_str_max(body, NULL, "audience", AAM_JSON_REQUIRED,
	                              ATTEST_AUDIENCE_MAX, &p->audience, NULL);
	if (rc == AAM_OK)
		rc = aam_json_get_str_max(body, NULL, "nonce", AAM_JSON_REQUIRED, 64, &p->nonce,
		                          NULL);
	if (rc == AAM_OK)
		rc = aam_json_get_str_max(body, NULL, "signature", AAM_JSON_REQUIRED, 128,
		                          &p->signature, NULL);
	if (rc == AAM_OK)
		rc = aam_json_get_str_max(body, NULL, "spiffe_id",
		                          join ? AAM_JSON_OPTIONAL : AAM_JSON_REQUIRED,
		                          AAM_SPIFFE_ID_MAX, &p->spiffe_id, NULL);
	if (rc == AAM_OK && join)
		rc = aam_json_get_str_max(body, NULL, "join_token", AAM_JSON_REQUIRED,
		                          JOIN_TOKEN_MAX, &p->join_token, NULL);
	return rc == AAM_OK ? ATTEST_OK : ATTEST_E_INVALID_REQUEST;
}

int
attest_api_pkcs11(void *ctx, const struct aam_http_request *req, struct aam_http_response *resp)
{
	struct attest_server *s = ctx;
	if (!attest_ratelimit_allowed(s->limiter, req->client_addr, attest_mono()))
		return attest_respond_failure(s, req, resp, ATTEST_E_RATE_LIMITED,
		                              ATTEST_METHOD_PKCS11, NULL);
	json_t *body = NULL;
	struct pop_req p = {0};
	struct aam_jwk key;
	memset(&key, 0, sizeof(key));
	struct attest_reg *reg = calloc(1, sizeof(*reg));
	enum attest_err e = reg != NULL ? attest_parse_body(req, &body) : ATTEST_E_INTERNAL;
	if (e == ATTEST_OK)
		e = pop_fields(body, &p, false);
	if (e == ATTEST_OK)
		e = attest_nonce_take(s, p.nonce, ATTEST_METHOD_PKCS11, p.spiffe_id, NULL, NULL);
	if (e == ATTEST_OK) {
		int rc = attest_server_reg_get(s, p.spiffe_id, reg);
		if (rc != AAM_OK)
			e = rc == AAM_E_NOTFOUND ? ATTEST_E_REGISTRATION_UNKNOWN
			                         : ATTEST_E_INTERNAL;
	}
	if (e == ATTEST_OK)
		e = attest_reg_check(reg, ATTEST_METHOD_PKCS11, p.audience);
	if (e == ATTEST_OK)
		e = get_jwk(body, &key);
	if (e == ATTEST_OK && strcmp(key.jkt, reg->key_jkt) != 0)
		e = ATTEST_E_KEY_MISMATCH;
	if (e == ATTEST_OK)
		e = pop_verify(&key, POP_CONTEXT_PKCS11, p.nonce, p.spiffe_id, p.audience,
		               p.signature);
	if (e == ATTEST_OK)
		e = attest_respond_token(s, req, resp, reg, p.audience, key.jkt,
		                         ATTEST_METHOD_PKCS11);
	int rc = AAM_OK;
	if (e != ATTEST_OK)
		rc = attest_respond_failure(s, req, resp, e, ATTEST_METHOD_PKCS11, p.spiffe_id);
	aam_jwk_uninit(&key);
	json_decref(body);
	free(reg);
	return rc;
}

static enum attest_err
join_lookup(struct attest_server *s, const char *token, struct attest_reg *reg)
{
	uint8_t h[32];
	EVP_Digest(token, strlen(token), h, NULL, EVP_sha256(), NULL);
	pthread_mutex_lock(&s->db_mu);
	int rc = attest_reg_get_by_join(s->db, h, reg);
	pthread_mutex_unlock(&s->db_mu);
	if (rc == AAM_E_NOTFOUND)
		return ATTEST_E_JOIN_TOKEN_INVALID;
	if (rc != AAM_OK)
		return ATTEST_E_INTERNAL;
	if (reg->revoked != 0)
		return ATTEST_E_REGISTRATION_REVOKED;
	if (reg->join_used || reg->method != ATTEST_METHOD_JOIN)
		return ATTEST_E_JOIN_TOKEN_USED;
	if (reg->join_expires <= attest_now(s))
		return ATTEST_E_JOIN_TOKEN_EXPIRED;
	return ATTEST_OK;
}

int
attest_api_join(void *ctx, const struct aam_http_request *req, struct aam_http_response *resp)
{
	struct attest_server *s = ctx;
	if (!attest_ratelimit_allowed(s->limiter, req->client_addr, attest_mono()))
		return attest_respond_failure(s, req, resp, ATTEST_E_RATE_LIMITED,
		                              ATTEST_METHOD_JOIN, NULL);
	json_t *body = NULL;
	struct pop_req p = {0};
	struct aam_jwk key;
	memset(&key, 0, sizeof(key));
	struct attest_nonce_binding *bind = calloc(1, sizeof(*bind));
	struct attest_reg *reg = calloc(1, sizeof(*reg));
	const char *who = NULL;
	enum attest_err e =
	        reg != NULL && bind != NULL ? attest_parse_body(req, &body) : ATTEST_E_INTERNAL;
	if (e == ATTEST_OK)
		e = pop_fields(body, &p, true);
	if (e == ATTEST_OK)
		e = attest_nonce_take(s, p.nonce, ATTEST_METHOD_JOIN, NULL, bind, NULL);
	if (e == ATTEST_OK) {
		e = join_lookup(s, p.join_token, reg);
		if (reg->spiffe_id[0] != '\0')
			who = reg->spiffe_id;
	}
	if (e == ATTEST_OK) {
		/* A nonce or request that names an identity must name this one. */
		if ((bind->has_spiffe_id && !attest_nonce_bound_to(bind, reg->spiffe_id)) ||
		    (p.spiffe_id != NULL && strcmp(p.spiffe_id, reg->spiffe_id) != 0))
			e = ATTEST_E_NONCE_INVALID;
	}
	if (e == ATTEST_OK)
		e = attest_reg_check(reg, ATTEST_METHOD_JOIN, p.audience);
	if (e == ATTEST_OK)
		e = get_jwk(body, &key);
	if (e == ATTEST_OK)
		e = pop_verify(&key, POP_CONTEXT_JOIN, p.nonce, reg->spiffe_id, p.audience,
		               p.signature);
	if (e == ATTEST_OK) {
		/* Use the token up atomically: of two racing joins only one wins. */
		pthread_mutex_lock(&s->db_mu);
		int rc = attest_reg_join_complete(s->db, reg->id, key.jkt);
		pthread_mutex_unlock(&s->db_mu);
		if (rc == AAM_E_EXISTS)
			e = ATTEST_E_JOIN_TOKEN_USED;
		else if (rc != AAM_OK)
			e = ATTEST_E_INTERNAL;
		else
			aam_log(AAM_LOG_INFO, "attest.joined",
			        AAM_F_STR("spiffe_id", reg->spiffe_id), AAM_F_STR("jkt", key.jkt));
	}
	if (e == ATTEST_OK)
		e = attest_respond_token(s, req, resp, reg, p.audience, key.jkt,
		                         ATTEST_METHOD_JOIN);
	int rc = AAM_OK;
	if (e != ATTEST_OK)
		rc = attest_respond_failure(s, req, resp, e, ATTEST_METHOD_JOIN, who);
	aam_jwk_uninit(&key);
	json_decref(body);
	free(bind);
	free(reg);
	return rc;
}
