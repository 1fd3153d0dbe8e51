/*
 * The public, read-only endpoints: the JWKS, the SPIFFE bundle, the
 * revocation feed and the health check.
 */
#include "attest/server.h"
#include "common/log.h"
#include "aam/err.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REVOCATIONS_PAGE 1000u

static int
unavailable(struct aam_http_response *resp)
{
	return aam_http_respond_error(resp, attest_err_status(ATTEST_E_UNAVAILABLE),
	                              attest_err_code(ATTEST_E_UNAVAILABLE),
	                              attest_err_message(ATTEST_E_UNAVAILABLE));
}

int
attest_api_jwks(void *ctx, const struct aam_http_request *req, struct aam_http_response *resp)
{
	(void)req;
	struct attest_server *s = ctx;
	json_t *j = NULL;
	if (attest_issuer_jwks(s->issuer, &j) != AAM_OK)
		return unavailable(resp);
	int rc = aam_http_respond_json(resp, 200, j);
	json_decref(j);
	if (rc == AAM_OK)
		rc = aam_http_response_header(resp, "Cache-Control", "public, max-age=60");
	return rc;
}

/*
 * The bundle's spiffe_sequence goes up whenever the set of keys changes.
 * It is kept in the database so it survives restarts and never goes back.
 */
static int64_t
bundle_sequence(struct attest_server *s)
{
	char kids[sizeof(s->bundle_kids)];
	if (attest_issuer_kids(s->issuer, kids, sizeof(kids)) != AAM_OK)
		kids[0] = '\0';
	pthread_mutex_lock(&s->bundle_mu);
	if (strcmp(kids, s->bundle_kids) != 0) {
		char seq[32];
		pthread_mutex_lock(&s->db_mu);
		/* Another process may have moved on: take the larger sequence. */
		if (attest_meta_get(s->db, "bundle_seq", seq, sizeof(seq)) == AAM_OK) {
			int64_t stored = strtoll(seq, NULL, 10);
			if (stored > s->bundle_seq)
				s->bundle_seq = stored;
		}
		s->bundle_seq++;
		snprintf(seq, sizeof(seq), "%" PRId64, s->bundle_seq);
		if (attest_meta_set(s->db, "bundle_seq", seq) != AAM_OK ||
		    attest_meta_set(s->db, "bundle_kids", kids) != AAM_OK)
			aam_log(AAM_LOG_WARN, "attest.bundle_seq_not_saved");
		pthread_mutex_unlock(&s->db_mu);
		memcpy(s->bundle_kids, kids, sizeof(kids));
	}
	int64_t seq = s->bundle_seq;
	pthread_mutex_unlock(&s->bundle_mu);
	return seq;
}

int
attest_api_bundle(void *ctx, const struct aam_http_request *req, struct aam_http_response *resp)
{
	(void)req;
	struct attest_server *s = ctx;
	json_t *j = NULL;
	if (attest_issuer_jwks(s->issuer, &j) != AAM_OK)
		return unavailable(resp);
	/* SPIFFE Trust Domain and Bundle, section 4: JWT-SVID keys carry use "jwt-svid". */
	json_t *keys = json_object_get(j, "keys");
	size_t i;
	json_t *k;
	json_array_foreach(keys, i, k) json_object_set_new(k, "use", json_string("jwt-svid"));
	json_object_set_new(j, "spiffe_sequence", json_integer(bundle_sequence(s)));
	json_object_set_new(j, "spiffe_refresh_hint", json_integer(ATTEST_BUNDLE_REFRESH_HINT));
	int rc = aam_http_respond_json(resp, 200, j);
	json_decref(j);
	return rc;
}

int
attest_api_revocations(void *ctx, const struct aam_http_request *req,
                       struct aam_http_response *resp)
{
	struct attest_server *s = ctx;
	const char *since_s = aam_http_request_query(req, "since");
	int64_t since = 0;
	if (since_s != NULL) {
		/* Canonical decimal only: "", "+1", "01", "1e3" are all refused. */
		size_t n = strlen(since_s);
		bool ok = n > 0 && n <= 18 && (n == 1 || since_s[0] != '0');
		for (size_t i = 0; ok && i < n; i++)
			ok = since_s[i] >= '0' && since_s[i] <= '9';
		if (!ok)
			return aam_http_respond_error(resp, 400, "invalid_request",
			                              "since must be a non-negative integer.");
		since = strtoll(since_s, NULL, 10);
	}
	json_t *j = NULL;
	pthread_mutex_lock(&s->db_mu);
	int rc = attest_revocations_since(s->db, since, REVOCATIONS_PAGE, &j);
	pthread_mutex_unlock(&s->db_mu);
	if (rc != AAM_OK)
		return unavailable(resp);
	rc = aam_http_respond_json(resp, 200, j);
	json_decref(j);
	if (rc == AAM_OK)
		rc = aam_http_response_header(resp, "Cache-Control", "no-store");
	return rc;
}

int
attest_api_healthz(void *ctx, const struct aam_http_request *req, struct aam_http_response *resp)
{
	(void)ctx;
	(void)req;
	json_t *j = json_pack("{s:s}", "status", "ok");
	int rc = j != NULL ? aam_http_respond_json(resp, 200, j) : AAM_E_NOMEM;
	json_decref(j);
	return rc;
}
