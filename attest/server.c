/*
 * aam-attest's server: state, shared helpers of the handlers, start and
 * stop.  The handlers themselves are in api_*.c.
 */
#include "attest/server.h"
#include "common/b64.h"
#include "common/json.h"
#include "common/log.h"
#include "aam/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

static const struct aam_http_route attest_routes[] = {
        {"POST", "/v1/attest/challenge", attest_api_challenge},
        {"POST", "/v1/attest/tpm", attest_api_tpm},
        {"POST", "/v1/attest/pkcs11", attest_api_pkcs11},
        {"POST", "/v1/attest/join", attest_api_join},
        {"GET", "/.well-known/jwks.json", attest_api_jwks},
        {"GET", "/v1/bundle", attest_api_bundle},
        {"GET", "/v1/revocations", attest_api_revocations},
        {"GET", "/healthz", attest_api_healthz},
};

int64_t
attest_now(struct attest_server *s)
{
	return (int64_t)time(NULL) + (int64_t)atomic_load(&s->clock_offset);
}

double
attest_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
attest_server_advance_clock(struct attest_server *s, int64_t seconds)
{
	if (s != NULL)
		atomic_fetch_add(&s->clock_offset, (long long)seconds);
}

static void
session_free(void *p)
{
	struct attest_tpm_session *sess = p;
	attest_tpm_session_uninit(sess);
	free(sess);
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

int
attest_server_new(const struct attest_server_config *cfg, struct attest_server **out, char *err,
                  size_t errlen)
{
	if (out == NULL || err == NULL || errlen == 0)
		return AAM_E_INVAL;
	*out = NULL;
	err[0] = '\0';
	if (cfg == NULL || cfg->db_path == NULL || cfg->issuer == NULL || cfg->keys == NULL) {
		snprintf(err, errlen, "attest: db, issuer and issuer key are required");
		return AAM_E_INVAL;
	}
	struct attest_server *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return AAM_E_NOMEM;
	pthread_mutex_init(&s->db_mu, NULL);
	pthread_mutex_init(&s->bundle_mu, NULL);
	atomic_init(&s->clock_offset, 0);
	s->port = cfg->port;
	s->threads = cfg->threads != 0 ? cfg->threads : 4;
	s->keys = *cfg->keys;
	s->host = strdup(cfg->host != NULL ? cfg->host : "127.0.0.1");
	s->issuer_name = strdup(cfg->issuer);
	s->trust_domain = dup_or_null(cfg->trust_domain);
	int rc = AAM_E_NOMEM;
	if (s->host == NULL || s->issuer_name == NULL ||
	    (cfg->trust_domain != NULL && s->trust_domain == NULL))
		goto fail;

	rc = attest_registry_open(cfg->db_path, true, &s->db);
	if (rc != AAM_OK) {
		snprintf(err, errlen, "%s: cannot open the registrations database (%s)",
		         cfg->db_path, aam_strerror(rc));
		goto fail;
	}
	rc = attest_ek_trust_load(cfg->ek_ca, cfg->n_ek_ca, &s->ek_trust, err, errlen);
	if (rc != AAM_OK)
		goto fail;
	if (cfg->n_ek_ca == 0)
		aam_log(AAM_LOG_WARN, "attest.no_ek_ca",
		        AAM_F_STR("message", "no EK CA configured: TPM attestation will fail"));
	rc = attest_issuer_new(&s->keys, s->issuer_name, &s->issuer);
	if (rc != AAM_OK)
		goto fail;
	rc = AAM_E_NOMEM;
	s->nonces = attest_ttlmap_new(cfg->max_nonces != 0 ? cfg->max_nonces : 65536, free);
	s->sessions =
	        attest_ttlmap_new(cfg->max_sessions != 0 ? cfg->max_sessions : 4096, session_free);
	s->limiter = attest_ratelimit_new(
	        4096, cfg->fail_rate > 0 ? cfg->fail_rate : ATTEST_DEFAULT_FAIL_RATE,
	        cfg->fail_burst > 0 ? cfg->fail_burst : ATTEST_DEFAULT_FAIL_BURST);
	/*
	 * Challenges are not failures, but each holds a table slot for 60 s:
	 * one address may not fill the table for everybody else.
	 */
	s->challenges = attest_ratelimit_new(4096, ATTEST_CHALLENGE_RATE, ATTEST_CHALLENGE_BURST);
	if (s->nonces == NULL || s->sessions == NULL || s->limiter == NULL || s->challenges == NULL)
		goto fail;

	char seq[32];
	if (attest_meta_get(s->db, "bundle_seq", seq, sizeof(seq)) == AAM_OK)
		s->bundle_seq = strtoll(seq, NULL, 10);
	attest_meta_get(s->db, "bundle_kids", s->bundle_kids, sizeof(s->bundle_kids));
	/* The vault may not be up yet; the keys are read again on first use. */
	if (attest_issuer_refresh(s->issuer) != AAM_OK)
		aam_log(AAM_LOG_WARN, "attest.issuer_keys_unavailable");
	*out = s;
	return AAM_OK;
fail:
	if (err[0] == '\0')
		snprintf(err, errlen, "attest: %s", aam_strerror(rc));
	attest_server_free(s);
	return rc;
}

int
attest_server_start(struct attest_server *s)
{
	if (s == NULL || s->http != NULL)
		return AAM_E_INVAL;
	struct aam_http_config hc = {
	        .host = s->host,
	        .port = s->port,
	        .routes = attest_routes,
	        .nroutes = sizeof(attest_routes) / sizeof(attest_routes[0]),
	        .ctx = s,
	        .max_body = ATTEST_MAX_BODY,
	        .timeout_s = 10,
	        .threads = s->threads,
	        .name = "attest",
	};
	return aam_http_server_start(&hc, &s->http);
}

uint16_t
attest_server_port(const struct attest_server *s)
{
	return s != NULL ? aam_http_server_port(s->http) : 0;
}

int
attest_server_maintain(struct attest_server *s)
{
	if (s == NULL)
		return AAM_E_INVAL;
	pthread_mutex_lock(&s->db_mu);
	int rc = attest_registry_prune(s->db, attest_now(s));
	pthread_mutex_unlock(&s->db_mu);
	attest_ttlmap_count(s->nonces, attest_now(s));
	attest_ttlmap_count(s->sessions, attest_now(s));
	int krc = attest_issuer_refresh(s->issuer);
	return rc != AAM_OK ? rc : krc;
}

void
attest_server_free(struct attest_server *s)
{
	if (s == NULL)
		return;
	/* The HTTP server first: no handler may run while the state goes. */
	aam_http_server_stop(s->http);
	attest_ratelimit_free(s->limiter);
	attest_ratelimit_free(s->challenges);
	attest_ttlmap_free(s->sessions);
	attest_ttlmap_free(s->nonces);
	attest_issuer_free(s->issuer);
	attest_ek_trust_free(s->ek_trust);
	aam_db_close(s->db);
	pthread_mutex_destroy(&s->db_mu);
	pthread_mutex_destroy(&s->bundle_mu);
	free(s->trust_domain);
	free(s->issuer_name);
	free(s->host);
	free(s);
}

/* ---- helpers shared by the handlers ------------------------------------- */

enum attest_err
attest_parse_body(const struct aam_http_request *req, json_t **out)
{
	struct aam_json_limits lim = {.max_bytes = ATTEST_MAX_BODY, .max_depth = 8};
	json_t *j = NULL;
	if (aam_json_parse(req->body, req->body_len, &lim, &j, NULL) != AAM_OK)
		return ATTEST_E_INVALID_REQUEST;
	if (!json_is_object(j)) {
		json_decref(j);
		return ATTEST_E_INVALID_REQUEST;
	}
	*out = j;
	return ATTEST_OK;
}

enum attest_err
attest_get_b64(const json_t *obj, const char *key, size_t max, struct aam_buf *out)
{
	const char *s = NULL;
	if (aam_json_get_str_max(obj, NULL, key, AAM_JSON_REQUIRED, (max / 3 + 1) * 4, &s, NULL) !=
	    AAM_OK)
		return ATTEST_E_INVALID_REQUEST;
	aam_buf_reset(out);
	int rc = aam_b64_decode_buf(out, s, strlen(s), AAM_B64_URL);
	if (rc != AAM_OK || out->len > max || out->len == 0)
		return ATTEST_E_INVALID_REQUEST;
	return ATTEST_OK;
}

void
attest_spiffe_hash(const char *spiffe_id, uint8_t out[32])
{
	EVP_Digest(spiffe_id, strlen(spiffe_id), out, NULL, EVP_sha256(), NULL);
}

bool
attest_nonce_bound_to(const struct attest_nonce_binding *b, const char *spiffe_id)
{
	if (!b->has_spiffe_id)
		return false;
	uint8_t h[32];
	attest_spiffe_hash(spiffe_id, h);
	return memcmp(h, b->spiffe_id_hash, sizeof(h)) == 0;
}

enum attest_err
attest_nonce_take(struct attest_server *s, const char *nonce_b64, enum attest_method method,
                  const char *spiffe_id, struct attest_nonce_binding *binding, uint8_t raw[32])
{
	uint8_t n[ATTEST_TTLMAP_KEY_LEN];
	size_t len = 0;
	if (nonce_b64 == NULL ||
	    aam_b64_decode(nonce_b64, strlen(nonce_b64), n, sizeof(n), &len, AAM_B64_URL) !=
	            AAM_OK ||
	    len != sizeof(n))
		return ATTEST_E_NONCE_INVALID;
	struct attest_nonce_binding *b = attest_ttlmap_take(s->nonces, n, attest_now(s));
	if (b == NULL)
		return ATTEST_E_NONCE_INVALID;
	enum attest_err e = ATTEST_OK;
	if (b->method != method)
		e = ATTEST_E_NONCE_INVALID;
	else if (spiffe_id != NULL && !attest_nonce_bound_to(b, spiffe_id))
		e = ATTEST_E_NONCE_INVALID;
	if (e == ATTEST_OK && binding != NULL)
		*binding = *b;
	if (e == ATTEST_OK && raw != NULL)
		memcpy(raw, n, sizeof(n));
	free(b);
	return e;
}

int
attest_server_reg_get(struct attest_server *s, const char *spiffe_id, struct attest_reg *r)
{
	pthread_mutex_lock(&s->db_mu);
	int rc = attest_reg_get(s->db, spiffe_id, r);
	pthread_mutex_unlock(&s->db_mu);
	return rc;
}

enum attest_err
attest_reg_check(const struct attest_reg *r, enum attest_method method, const char *audience)
{
	if (r->revoked != 0)
		return ATTEST_E_REGISTRATION_REVOKED;
	if (r->method != method)
		return ATTEST_E_METHOD_MISMATCH;
	if (audience == NULL)
		return ATTEST_E_INVALID_REQUEST;
	for (size_t i = 0; i < r->naudiences; i++)
		if (strcmp(r->audiences[i], audience) == 0)
			return ATTEST_OK;
	return ATTEST_E_AUDIENCE;
}

int
attest_respond_failure(struct attest_server *s, const struct aam_http_request *req,
                       struct aam_http_response *resp, enum attest_err e, enum attest_method method,
                       const char *spiffe_id)
{
	unsigned status = attest_err_status(e);
	/* Only the client's own mistakes count against it, not our outages. */
	if (status >= 400 && status < 500 && e != ATTEST_E_RATE_LIMITED)
		attest_ratelimit_fail(s->limiter, req->client_addr, attest_mono());
	struct attest_audit_event ev = {
	        .action = "attest.failed",
	        .outcome = e,
	        .method = method,
	        .spiffe_id = spiffe_id,
	        .client = req->client_addr,
	};
	attest_audit_emit(&ev);
	if (e == ATTEST_E_RATE_LIMITED)
		aam_http_response_header(resp, "Retry-After", "6");
	return aam_http_respond_error(resp, status, attest_err_code(e), attest_err_message(e));
}

enum attest_err
attest_respond_token(struct attest_server *s, const struct aam_http_request *req,
                     struct aam_http_response *resp, const struct attest_reg *reg,
                     const char *audience, const char *jkt, enum attest_method method)
{
	int64_t ttl = reg->token_ttl;
	if (ttl <= 0 || ttl > ATTEST_TTL_MAX)
		ttl = ttl <= 0 ? ATTEST_TTL_DEFAULT : ATTEST_TTL_MAX;
	struct attest_token_req tr = {
	        .reg = reg,
	        .audience = audience,
	        .jkt = jkt,
	        .method = method,
	        .now = attest_now(s),
	        .ttl = ttl,
	};
	struct attest_token tok;
	int rc = attest_issuer_issue(s->issuer, &tr, &tok);
	if (rc != AAM_OK)
		return rc == AAM_E_NOMEM ? ATTEST_E_INTERNAL : ATTEST_E_UNAVAILABLE;

	pthread_mutex_lock(&s->db_mu);
	rc = attest_issued_record(s->db, reg->id, tok.jti, tok.iat, tok.exp);
	pthread_mutex_unlock(&s->db_mu);
	if (rc != AAM_OK) {
		/* A token the revocation feed could not name is not handed out. */
		aam_log(AAM_LOG_ERROR, "attest.record_failed", AAM_F_ERR(rc));
		attest_token_uninit(&tok);
		return ATTEST_E_UNAVAILABLE;
	}
	struct attest_audit_event ev = {
	        .action = "token.issued",
	        .outcome = ATTEST_OK,
	        .method = method,
	        .spiffe_id = reg->spiffe_id,
	        .client = req->client_addr,
	        .audience = audience,
	        .jti = tok.jti,
	        .jkt = jkt,
	        .exp = tok.exp,
	};
	if (attest_audit_emit(&ev) != AAM_OK) {
		attest_token_uninit(&tok);
		return ATTEST_E_UNAVAILABLE;
	}
	json_t *j =
	        json_pack("{s:s,s:s,s:I,s:s,s:s}", "token", tok.token, "token_type", "DPoP",
	                  "expires_in", (json_int_t)ttl, "spiffe_id", reg->spiffe_id, "jkt", jkt);
	attest_token_uninit(&tok);
	if (j == NULL)
		return ATTEST_E_INTERNAL;
	rc = aam_http_respond_json(resp, 200, j);
	json_decref(j);
	if (rc == AAM_OK)
		rc = aam_http_response_header(resp, "Cache-Control", "no-store");
	return rc == AAM_OK ? ATTEST_OK : ATTEST_E_INTERNAL;
}
