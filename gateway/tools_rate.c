/*
 * Per-minute call limits of tool rules (`limits: {rpm}` in a policy):
 * one token bucket per key (workload, resource and the rule that allowed
 * the call), RPM tokens deep and refilled continuously, so a burst can
 * use the minute's budget at once but never more.
 *
 * The table has a fixed number of slots (open addressing); when it is
 * full, the slot whose bucket has been full the longest is reused, since
 * a full bucket carries no state worth keeping.  A table that cannot
 * find room refuses the call rather than forget a limit.
 */
#include "gateway/tools_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aam/err.h"

#define RATE_KEY_MAX 384

struct slot {
	bool used;
	char key[RATE_KEY_MAX];
	double tokens;
	int64_t last_us;
	int64_t rpm;
};

struct gwt_rate {
	pthread_mutex_t mu;
	struct slot *slots;
	size_t n;
};

int64_t
gwt_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int
gwt_rate_new(size_t max_keys, struct gwt_rate **out)
{
	*out = NULL;
	if (max_keys == 0)
		max_keys = 4096;
	struct gwt_rate *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return AAM_E_NOMEM;
	r->slots = calloc(max_keys, sizeof(*r->slots));
	if (r->slots == NULL) {
		free(r);
		return AAM_E_NOMEM;
	}
	r->n = max_keys;
	pthread_mutex_init(&r->mu, NULL);
	*out = r;
	return AAM_OK;
}

void
gwt_rate_free(struct gwt_rate *r)
{
	if (r == NULL)
		return;
	pthread_mutex_destroy(&r->mu);
	free(r->slots);
	free(r);
}

static uint64_t
fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static void
refill(struct slot *s, int64_t now_us)
{
	if (now_us > s->last_us) {
		s->tokens += (double)(now_us - s->last_us) * (double)s->rpm / 60e6;
		if (s->tokens > (double)s->rpm)
			s->tokens = (double)s->rpm;
		s->last_us = now_us;
	}
}

bool
gwt_rate_take(struct gwt_rate *r, const char *key, int64_t rpm, int64_t now_us,
              unsigned *retry_after_s)
{
	if (rpm <= 0)
		return true;
	if (retry_after_s != NULL)
		*retry_after_s = 0;
	if (strlen(key) >= RATE_KEY_MAX) {
		if (retry_after_s != NULL)
			*retry_after_s = 60;
		return false;
	}
	pthread_mutex_lock(&r->mu);
	size_t start = (size_t)(fnv1a(key) % r->n);
	struct slot *found = NULL, *victim = NULL;
	double victim_full = -1;
	/* Probe a bounded window: the key, an empty slot, or the best victim. */
	for (size_t i = 0; i < 64 && i < r->n; i++) {
		struct slot *s = &r->slots[(start + i) % r->n];
		if (!s->used) {
			if (victim == NULL || victim->used)
				victim = s;
			continue;
		}
		if (strcmp(s->key, key) == 0) {
			found = s;
			break;
		}
		if (victim == NULL || victim->used) {
			refill(s, now_us);
			if (s->tokens >= (double)s->rpm) {
				double age = (double)(now_us - s->last_us);
				if (age > victim_full) {
					victim_full = age;
					victim = s;
				}
			}
		}
	}
	if (found == NULL && victim != NULL) {
		found = victim;
		found->used = true;
		strcpy(found->key, key);
		found->tokens = (double)rpm;
		found->last_us = now_us;
		found->rpm = rpm;
	}
	bool ok = false;
	if (found != NULL) {
		if (found->rpm != rpm) {
			/* The policy changed: keep the spent part, apply the new depth. */
			found->rpm = rpm;
			if (found->tokens > (double)rpm)
				found->tokens = (double)rpm;
		}
		refill(found, now_us);
		if (found->tokens >= 1.0) {
			found->tokens -= 1.0;
			ok = true;
		} else if (retry_after_s != NULL) {
			double wait_s = (1.0 - found->tokens) * 60.0 / (double)rpm;
			*retry_after_s = (unsigned)wait_s + 1;
		}
	} else if (retry_after_s != NULL) {
		*retry_after_s = 1;
	}
	pthread_mutex_unlock(&r->mu);
	return ok;
}

void
gwt_rate_key(const struct gw_policy_request *req, const struct gw_policy_decision *d, char *out,
             size_t outlen)
{
	const char *policy = "", *rule = "";
	for (size_t i = 0; i < d->nreasons; i++)
		if (d->reasons[i].code == GW_POLICY_ALLOWED) {
			policy = d->reasons[i].policy != NULL ? d->reasons[i].policy : "";
			rule = d->reasons[i].rule != NULL ? d->reasons[i].rule : "";
			break;
		}
	/* A rule's budget covers every call it allows, whatever the resource. */
	snprintf(out, outlen, "%s\n%s\n%s", req->workload != NULL ? req->workload : "", policy,
	         rule);
}
