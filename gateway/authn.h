/*
 * Authentication of gateway requests (private to gw-core).
 *
 * Two ways in:
 *
 *  1. A DPoP-bound token from aam-attest: `Authorization: DPoP <token>`
 *     and `DPoP: <proof>` (RFC 9449).  The token's signature is checked
 *     against the issuer's JWKS (fetched from aam-attest, cached, fetched
 *     again on an unknown kid at most once per jwks_refresh), then iss,
 *     aud, exp, nbf, the 15-minute maximum life, a SPIFFE "sub" and
 *     cnf.jkt.  A verified token is cached by its SHA-256 until it
 *     expires, so the next request costs one signature check: the proof's
 *     (htm, htu = external URL + path, iat window, jti replay, ath, and the
 *     proof key's thumbprint equal to cnf.jkt).  Revocations are read from
 *     aam-attest's feed every revocation_poll and apply to cached tokens.
 *
 *  2. A virtual key (gateway/vkeys.h): `Authorization: Bearer <key>` or
 *     `x-api-key: <key>` (the Anthropic SDK's header).  Never attested.
 *
 * Failures carry an HTTP status, a stable code and a fixed message that
 * may name the check that failed (aam_jose_reason_str), never a value.
 */
#ifndef AAM_GATEWAY_AUTHN_H
#define AAM_GATEWAY_AUTHN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/http.h"
#include "common/spiffe.h"
#include "gateway/route.h"

struct gw_authn;
struct gw_dbpool;

struct gw_authn_config {
	const char *jwks_url;
	const char *revocations_url; /* ".../v1/revocations"; NULL: no feed */
	const char *issuer;
	const char *audience;
	const char *external_url; /* scheme://host[:port] (+ base path) for htu */
	int64_t jwks_refresh_ms;
	int64_t revocation_poll_ms;
	size_t replay_capacity; /* DPoP jti cache entries; 0: 1 << 20 */
	size_t token_cache_max; /* verified tokens kept; 0: 65536 */
	int64_t dpop_window_s;  /* proof iat window either side; 0: 60 */
	struct gw_dbpool *keys; /* virtual keys; NULL: virtual keys disabled */
};

#define GW_ID_FIELD_MAX 256

/* An authenticated caller; ID's strings point into this struct. */
struct gw_principal {
	struct gw_identity id;
	char spiffe_id[AAM_SPIFFE_ID_BUFSZ];
	char owner[GW_ID_FIELD_MAX], team[GW_ID_FIELD_MAX], environment[GW_ID_FIELD_MAX];
	char deployment[GW_ID_FIELD_MAX], jti[GW_ID_FIELD_MAX], method[32], vkey_id[32];
	int64_t exp; /* token or key expiry; 0: none */
	/* Virtual keys only: the routes the key allows, or NULL for all (owned). */
	char *vkey_models;
	/* Virtual keys only: the key's own limits (0: none). */
	int64_t vkey_rpm, vkey_tpm;
};

void gw_principal_uninit(struct gw_principal *p);

struct gw_authn_error {
	unsigned status;      /* 401, 403, 503 */
	const char *code;     /* "invalid_token", "invalid_dpop_proof", "invalid_api_key", ... */
	char message[160];    /* fixed text plus a check name */
	const char *www_auth; /* WWW-Authenticate value, or NULL */
	const char *metric_label; /* short label for /metrics */
};

int gw_authn_new(const struct gw_authn_config *cfg, struct gw_authn **out);
/* Starts the JWKS and revocation feed thread (a first fetch is tried at once). */
int gw_authn_start(struct gw_authn *a);
void gw_authn_free(struct gw_authn *a);

/*
 * Authenticates REQ (METHOD and PATH are the request's; the query string
 * is not part of htu).  AAM_OK with *OUT filled, or AAM_E_PERM /
 * AAM_E_DENIED / AAM_E_BUSY with ERR filled.
 */
int gw_authn_request(struct gw_authn *a, const struct aam_http_request *req,
                     struct gw_principal *out, struct gw_authn_error *err);

/* For /readyz: a JWKS fetched successfully within a few refresh periods. */
bool gw_authn_jwks_fresh(struct gw_authn *a);

struct gw_authn_stats {
	uint64_t token_cache_hits, token_cache_misses;
	uint64_t jwks_fetches, jwks_fetch_failures;
	uint64_t revocations_seen;
	uint64_t vkey_lookups;
	size_t token_cache_size;
};
void gw_authn_stats(struct gw_authn *a, struct gw_authn_stats *out);

/* Forces a revocation poll now (tests, SIGHUP). */
int gw_authn_poll_revocations(struct gw_authn *a);

/* ---- a small pool of database connections (one per concurrent user) ---- */

int gw_dbpool_new(const char *path, size_t max, struct gw_dbpool **out);
void gw_dbpool_free(struct gw_dbpool *p);
/* A connection for this thread's exclusive use; NULL when none can be opened. */
struct aam_db *gw_dbpool_get(struct gw_dbpool *p);
void gw_dbpool_put(struct gw_dbpool *p, struct aam_db *db);

#endif /* AAM_GATEWAY_AUTHN_H */
