/*
 * What the gateway reads from aam-attest: the issuer's JWKS and the
 * revocation feed, both over plain HTTP(S) with libcurl, on a background
 * thread (and, for an unknown kid, from the request that needs it).
 *
 * Every fetch is bounded (size and time), and a failed fetch keeps the
 * last good state: a JWKS that cannot be refreshed still verifies tokens
 * signed by known keys, and /readyz says it is stale.
 */
#include "gateway/authn_int.h"
#include "aam/err.h"
#include "common/json.h"
#include "common/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#define FEED_TIMEOUT_MS   5000
#define JWKS_MAX_BYTES    (256u * 1024)
#define REVOKE_MAX_BYTES  (4u * 1024 * 1024)
#define REVOKE_MAX_ROUNDS 100 /* pages of 1,000 read per poll */
/* A token lives at most 15 minutes, so a revoked jti need not be kept longer. */
#define REVOKED_JTI_KEEP_S (15 * 60)

static size_t
on_data(char *p, size_t size, size_t n, void *ud)
{
	struct aam_buf *b = ud;
	return aam_buf_append(b, p, size * n) == AAM_OK ? size * n : 0;
}

int
gw_authn_http_get(const char *url, size_t max, struct aam_buf *out)
{
	aam_buf_init(out, max);
	CURL *c = curl_easy_init();
	if (c == NULL)
		return AAM_E_NOMEM;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)FEED_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	CURLcode cr = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	if (cr != CURLE_OK)
		return cr == CURLE_OPERATION_TIMEDOUT ? AAM_E_TIMEOUT
		       : cr == CURLE_WRITE_ERROR      ? AAM_E_TOOBIG
		                                      : AAM_E_IO;
	return status == 200 ? AAM_OK : AAM_E_PROTO;
}

int
gw_authn_fetch_jwks(struct gw_authn *a, bool locked)
{
	if (!locked)
		pthread_mutex_lock(&a->fetch_mu);
	a->last_fetch_ms = gw_authn_mono_ms();
	atomic_fetch_add(&a->fetches, 1);
	struct aam_buf b;
	int rc = gw_authn_http_get(a->jwks_url, JWKS_MAX_BYTES, &b);
	struct aam_jwks set;
	aam_jwks_init(&set);
	enum aam_jose_reason why = AAM_JOSE_R_NONE;
	if (rc == AAM_OK)
		rc = aam_jwks_parse(aam_buf_cstr(&b), b.len, &set, &why);
	aam_buf_uninit(&b);
	if (rc == AAM_OK && set.count == 0)
		rc = AAM_E_PARSE; /* an empty set would make every token fail; keep the old one */
	if (rc == AAM_OK) {
		pthread_rwlock_wrlock(&a->keys_lock);
		struct aam_jwks old = a->jwks;
		a->jwks = set;
		a->have_jwks = true;
		pthread_rwlock_unlock(&a->keys_lock);
		aam_jwks_uninit(&old);
		atomic_store(&a->jwks_ok_ms, gw_authn_mono_ms());
	} else {
		aam_jwks_uninit(&set);
		atomic_fetch_add(&a->fetch_failures, 1);
		aam_log(AAM_LOG_WARN, "gateway.jwks_fetch_failed", AAM_F_STR("url", a->jwks_url),
		        AAM_F_ERR(rc),
		        AAM_F_STR("reason",
		                  why != AAM_JOSE_R_NONE ? aam_jose_reason_str(why) : "-"));
	}
	if (!locked)
		pthread_mutex_unlock(&a->fetch_mu);
	return rc;
}

/* Applies one page of the feed; *NEXT and *MORE tell how to go on. */
static int
apply_revocations(struct gw_authn *a, json_t *j, uint64_t *next, bool *more)
{
	json_int_t seq = 0, nx = 0;
	json_t *list = NULL;
	int m = 0;
	if (json_unpack(j, "{s:I,s:I,s:b,s:o}", "sequence", &seq, "next", &nx, "more", &m,
	                "revocations", &list) != 0 ||
	    !json_is_array(list) || seq < 0 || nx < 0)
		return AAM_E_PARSE;
	int64_t now = gw_authn_now_s();
	size_t i;
	json_t *e;
	size_t applied = 0;
	pthread_mutex_lock(&a->cache_mu);
	if ((uint64_t)seq < a->rev_next) {
		/* The feed went backwards (a new attest database): read it again from the start. */
		pthread_mutex_unlock(&a->cache_mu);
		*next = 0;
		*more = seq > 0;
		return AAM_OK;
	}
	int rc = AAM_OK;
	json_array_foreach(list, i, e)
	{
		const char *sub = json_string_value(json_object_get(e, "spiffe_id"));
		const char *jti = json_string_value(json_object_get(e, "jti"));
		json_t *at = json_object_get(e, "revoked_at");
		json_t *exp = json_object_get(e, "exp");
		if (sub == NULL || !json_is_integer(at))
			continue;
		if (jti != NULL) {
			int64_t keep = json_is_integer(exp) ? (int64_t)json_integer_value(exp)
			                                    : now + REVOKED_JTI_KEEP_S;
			rc = gw_smap_put(&a->rev_jti, jti, keep);
		} else {
			rc = gw_smap_put(&a->rev_sub, sub, (int64_t)json_integer_value(at));
		}
		if (rc != AAM_OK)
			break;
		applied++;
	}
	/* Revoked jtis matter only while their tokens could still be valid. */
	gw_smap_prune_below(&a->rev_jti, now - 60);
	if (rc == AAM_OK)
		a->rev_next = (uint64_t)nx;
	pthread_mutex_unlock(&a->cache_mu);
	atomic_fetch_add(&a->revs_seen, applied);
	*next = (uint64_t)nx;
	*more = m != 0;
	return rc;
}

int
gw_authn_poll_revocations(struct gw_authn *a)
{
	if (a == NULL || a->revocations_url == NULL)
		return AAM_OK;
	int rc = AAM_OK;
	for (int round = 0; round < REVOKE_MAX_ROUNDS; round++) {
		pthread_mutex_lock(&a->cache_mu);
		uint64_t since = a->rev_next;
		pthread_mutex_unlock(&a->cache_mu);
		char url[2048];
		int n = snprintf(url, sizeof(url), "%s?since=%" PRIu64, a->revocations_url, since);
		if (n < 0 || (size_t)n >= sizeof(url))
			return AAM_E_INVAL;
		struct aam_buf b;
		rc = gw_authn_http_get(url, REVOKE_MAX_BYTES, &b);
		json_t *j = NULL;
		if (rc == AAM_OK)
			rc = aam_json_parse(b.data, b.len, NULL, &j, NULL);
		aam_buf_uninit(&b);
		uint64_t next = 0;
		bool more = false;
		if (rc == AAM_OK)
			rc = apply_revocations(a, j, &next, &more);
		json_decref(j);
		if (rc != AAM_OK) {
			aam_log(AAM_LOG_WARN, "gateway.revocations_failed",
			        AAM_F_STR("url", a->revocations_url), AAM_F_ERR(rc));
			break;
		}
		if (next == 0 && more) {
			pthread_mutex_lock(&a->cache_mu);
			a->rev_next = 0;
			pthread_mutex_unlock(&a->cache_mu);
		}
		if (!more)
			break;
	}
	return rc;
}

/* ---- the background thread ------------------------------------------------------ */

static void *
feed_thread(void *arg)
{
	struct gw_authn *a = arg;
	int64_t next_jwks = 0, next_rev = 0;
	pthread_mutex_lock(&a->th_mu);
	while (!a->stop) {
		int64_t now = gw_authn_mono_ms();
		pthread_mutex_unlock(&a->th_mu);
		if (now >= next_jwks) {
			int rc = gw_authn_fetch_jwks(a, false);
			/* Until a first key set arrives, try again every second. */
			int64_t wait =
			        rc == AAM_OK || atomic_load(&a->jwks_ok_ms) != 0
			                ? a->jwks_refresh_ms
			                : (a->jwks_refresh_ms < 1000 ? a->jwks_refresh_ms : 1000);
			next_jwks = gw_authn_mono_ms() + wait;
		}
		if (now >= next_rev) {
			gw_authn_poll_revocations(a);
			next_rev = gw_authn_mono_ms() + a->revocation_poll_ms;
		}
		int64_t until = next_jwks < next_rev ? next_jwks : next_rev;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t wait_ms = until - gw_authn_mono_ms();
		if (wait_ms < 10)
			wait_ms = 10;
		ts.tv_sec += wait_ms / 1000;
		ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&a->th_mu);
		if (!a->stop)
			pthread_cond_timedwait(&a->th_cv, &a->th_mu, &ts);
	}
	pthread_mutex_unlock(&a->th_mu);
	return NULL;
}

int
gw_authn_start(struct gw_authn *a)
{
	if (a == NULL || a->th_started)
		return AAM_E_INVAL;
	if (pthread_create(&a->th, NULL, feed_thread, a) != 0)
		return AAM_E_NOMEM;
	a->th_started = true;
	return AAM_OK;
}

void
gw_authn_feed_stop(struct gw_authn *a)
{
	if (!a->th_started)
		return;
	pthread_mutex_lock(&a->th_mu);
	a->stop = true;
	pthread_cond_broadcast(&a->th_cv);
	pthread_mutex_unlock(&a->th_mu);
	pthread_join(a->th, NULL);
	a->th_started = false;
}

bool
gw_authn_jwks_fresh(struct gw_authn *a)
{
	int64_t ok = atomic_load(&a->jwks_ok_ms);
	if (ok == 0)
		return false;
	/* Fresh: refreshed within three periods (and never staler than 15 minutes). */
	int64_t limit = 3 * a->jwks_refresh_ms + 5000;
	if (limit > 15 * 60 * 1000)
		limit = 15 * 60 * 1000;
	return gw_authn_mono_ms() - ok <= limit;
}
