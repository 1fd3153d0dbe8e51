/*
 * Per-caller request limits (see limits.h): a chained hash table of keys
 * under one mutex, each with its two buckets and in-flight count.  When the
 * table is full, keys with nothing in flight and both buckets full (they
 * carry no state worth keeping) are dropped; if none is, a new key is
 * refused rather than admitted without its limits.
 */
#include "gateway/limits.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "common/hash.h"

#define NBUCKETS 4096u

struct ent {
	struct ent *next;
	double rpm_tokens, tpm_tokens; /* what is left of the buckets */
	int64_t last_us;               /* when they were last refilled */
	int64_t inflight;
	char key[];
};

struct gw_limits {
	pthread_mutex_t mu;
	struct ent *b[NBUCKETS];
	size_t n, max;
};

int
gw_limits_new(size_t max_keys, struct gw_limits **out)
{
	*out = NULL;
	struct gw_limits *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return AAM_E_NOMEM;
	l->max = max_keys != 0 ? max_keys : 65536;
	pthread_mutex_init(&l->mu, NULL);
	*out = l;
	return AAM_OK;
}

void
gw_limits_free(struct gw_limits *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < NBUCKETS; i++)
		for (struct ent *e = l->b[i], *nx; e != NULL; e = nx) {
			nx = e->next;
			free(e);
		}
	pthread_mutex_destroy(&l->mu);
	free(l);
}

static bool
limited(const struct gw_limit_want *w)
{
	return w != NULL && (w->rpm > 0 || w->tpm > 0 || w->max_parallel > 0);
}

/* Refills E's buckets up to W's depths for the time since the last call. */
static void
refill(struct ent *e, const struct gw_limit_want *w, int64_t now_us)
{
	double dt = now_us > e->last_us ? (double)(now_us - e->last_us) : 0;
	e->last_us = now_us;
	if (w->rpm > 0) {
		e->rpm_tokens += dt * (double)w->rpm / 60e6;
		if (e->rpm_tokens > (double)w->rpm)
			e->rpm_tokens = (double)w->rpm;
	}
	if (w->tpm > 0) {
		e->tpm_tokens += dt * (double)w->tpm / 60e6;
		if (e->tpm_tokens > (double)w->tpm)
			e->tpm_tokens = (double)w->tpm;
	}
}

/* Drops idle keys (nothing in flight, buckets refilled) to make room. */
static void
sweep(struct gw_limits *l, int64_t now_us)
{
	for (size_t i = 0; i < NBUCKETS; i++)
		for (struct ent **pp = &l->b[i]; *pp != NULL;) {
			struct ent *e = *pp;
			/* A minute since the last call refills any bucket completely. */
			if (e->inflight == 0 && now_us - e->last_us >= 60000000) {
				*pp = e->next;
				free(e);
				l->n--;
			} else {
				pp = &e->next;
			}
		}
}

static struct ent *
lookup(struct gw_limits *l, const char *key, const struct gw_limit_want *w, int64_t now_us,
       bool create)
{
	size_t h = (size_t)(aam_hash_str(key) % NBUCKETS);
	for (struct ent *e = l->b[h]; e != NULL; e = e->next)
		if (strcmp(e->key, key) == 0)
			return e;
	if (!create)
		return NULL;
	if (l->n >= l->max)
		sweep(l, now_us);
	if (l->n >= l->max)
		return NULL;
	size_t len = strlen(key);
	struct ent *e = calloc(1, sizeof(*e) + len + 1);
	if (e == NULL)
		return NULL;
	memcpy(e->key, key, len + 1);
	e->rpm_tokens = (double)w->rpm;
	e->tpm_tokens = (double)w->tpm;
	e->last_us = now_us;
	e->next = l->b[h];
	l->b[h] = e;
	l->n++;
	return e;
}

static int64_t
seconds_until(double missing, int64_t per_minute)
{
	if (per_minute <= 0)
		return 1;
	double s = missing * 60.0 / (double)per_minute;
	int64_t r = (int64_t)s + 1;
	return r < 1 ? 1 : r > 60 ? 60 : r;
}

int
gw_limits_enter(struct gw_limits *l, const char *key, const struct gw_limit_want *w, int64_t now_us,
                const char **which, int64_t *retry_s)
{
	if (l == NULL || key == NULL || !limited(w))
		return AAM_OK;
	pthread_mutex_lock(&l->mu);
	struct ent *e = lookup(l, key, w, now_us, true);
	int rc = AAM_OK;
	const char *why = NULL;
	int64_t retry = 1;
	if (e == NULL) {
		rc = AAM_E_BUSY;
		why = "capacity";
	} else {
		refill(e, w, now_us);
		if (w->max_parallel > 0 && e->inflight >= w->max_parallel) {
			rc = AAM_E_BUSY;
			why = "max_parallel";
		} else if (w->rpm > 0 && e->rpm_tokens < 1.0) {
			rc = AAM_E_BUSY;
			why = "rpm";
			retry = seconds_until(1.0 - e->rpm_tokens, w->rpm);
		} else if (w->tpm > 0 && e->tpm_tokens <= 0.0) {
			rc = AAM_E_BUSY;
			why = "tpm";
			retry = seconds_until(1.0 - e->tpm_tokens, w->tpm);
		} else {
			if (w->rpm > 0)
				e->rpm_tokens -= 1.0;
			e->inflight++;
		}
	}
	pthread_mutex_unlock(&l->mu);
	if (which != NULL)
		*which = why;
	if (retry_s != NULL)
		*retry_s = retry;
	return rc;
}

void
gw_limits_leave(struct gw_limits *l, const char *key, const struct gw_limit_want *w, int64_t tokens,
                int64_t now_us)
{
	if (l == NULL || key == NULL || !limited(w))
		return;
	pthread_mutex_lock(&l->mu);
	struct ent *e = lookup(l, key, w, now_us, false);
	if (e != NULL) {
		refill(e, w, now_us);
		if (e->inflight > 0)
			e->inflight--;
		if (w->tpm > 0 && tokens > 0) {
			e->tpm_tokens -= (double)tokens;
			/* At most a minute of debt: one huge call cannot block a key for hours. */
			if (e->tpm_tokens < -(double)w->tpm)
				e->tpm_tokens = -(double)w->tpm;
		}
	}
	pthread_mutex_unlock(&l->mu);
}
