/*
 * Shared by gateway/authn*.c; not used elsewhere.
 */
#ifndef AAM_GATEWAY_AUTHN_INT_H
#define AAM_GATEWAY_AUTHN_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "common/buf.h"
#include "common/jose.h"
#include "gateway/authn.h"

/* A string-keyed map to an int64 (revoked jtis -> exp, SPIFFE IDs -> revoked_at). */
struct gw_smap_ent {
	char *key;
	int64_t val;
	struct gw_smap_ent *next;
};
struct gw_smap {
	struct gw_smap_ent **b;
	size_t nb, n;
};
int gw_smap_put(struct gw_smap *m, const char *key, int64_t val);
bool gw_smap_get(const struct gw_smap *m, const char *key, int64_t *val);
/* Removes entries whose value is below LIMIT (expired jtis). */
void gw_smap_prune_below(struct gw_smap *m, int64_t limit);
void gw_smap_free(struct gw_smap *m);

/* A verified token, kept until it expires. */
struct gw_tok {
	uint8_t h[32]; /* SHA-256 of the compact token */
	int64_t exp, iat;
	char jkt[AAM_JWK_THUMBPRINT_LEN + 1];
	char *sub, *owner, *team, *env, *dep, *jti, *method;
	struct gw_tok *next;
};

struct gw_authn {
	char *jwks_url, *revocations_url, *issuer, *audience, *external_url;
	int64_t jwks_refresh_ms, revocation_poll_ms, dpop_window_s;
	size_t token_cache_max;
	struct gw_dbpool *keys;
	struct aam_dpop_replay *replay;

	/* The issuer's keys.  Readers take the read lock for a verification. */
	pthread_rwlock_t keys_lock;
	struct aam_jwks jwks;
	bool have_jwks;
	_Atomic int64_t jwks_ok_ms; /* monotonic time of the last good fetch; 0: never */
	/* Serialises fetches; LAST_FETCH_MS (under it) spaces the kid-triggered ones. */
	pthread_mutex_t fetch_mu;
	int64_t last_fetch_ms;     /* any fetch */
	int64_t last_kid_fetch_ms; /* fetches caused by an unknown kid */

	/* Verified tokens by hash; revocations. */
	pthread_mutex_t cache_mu;
	struct gw_tok **tb;
	size_t ntb, ntok;
	struct gw_smap rev_jti, rev_sub;
	uint64_t rev_next;

	/* The background thread (JWKS refresh, revocation feed). */
	pthread_t th;
	bool th_started, stop;
	pthread_mutex_t th_mu;
	pthread_cond_t th_cv;

	_Atomic uint64_t hits, misses, fetches, fetch_failures, revs_seen, vkey_lookups;
};

int64_t gw_authn_mono_ms(void);
int64_t gw_authn_now_s(void);

/* GET URL into OUT (at most MAX bytes); AAM_OK only for HTTP 200. */
int gw_authn_http_get(const char *url, size_t max, struct aam_buf *out);
/* Fetches and installs the JWKS (takes FETCH_MU itself unless LOCKED). */
int gw_authn_fetch_jwks(struct gw_authn *a, bool locked);

/* Stops the background thread (gw_authn_free). */
void gw_authn_feed_stop(struct gw_authn *a);

/* Token cache (authn_cache.c). */
int gw_authn_cache_init(struct gw_authn *a);
void gw_authn_cache_uninit(struct gw_authn *a);
/* Looks up H; on a hit copies the token's facts into P and JKT.  Caller holds nothing. */
bool gw_authn_cache_get(struct gw_authn *a, const uint8_t h[32], int64_t now,
                        struct gw_principal *p, char jkt[AAM_JWK_THUMBPRINT_LEN + 1], int64_t *iat);
/* Takes T (inserted, or freed when the cache is full). */
void gw_authn_cache_put(struct gw_authn *a, struct gw_tok *t, int64_t now);
void gw_authn_tok_free(struct gw_tok *t);
/* Whether a token (JTI, SUB, IAT) is revoked. */
bool gw_authn_revoked(struct gw_authn *a, const char *jti, const char *sub, int64_t iat);

#endif /* AAM_GATEWAY_AUTHN_INT_H */
