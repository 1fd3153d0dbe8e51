/*
 * Deployment choice (docs/ROUTING.md, "Strategies") and the runtime state
 * it reads: in-flight counts, latency EWMA, failures and cooldown, and
 * the rpm/tpm use of the current minute.
 *
 * Every strategy first filters the eligible deployments (not excluded by
 * the caller, not cooling down, inside the policy's regions, under their
 * rpm/tpm for this minute, large enough a context), then scores them; the
 * lowest score wins and ties are broken by a weighted random draw, so
 * simple-shuffle is "all tie".
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aam/err.h"
#include "gateway/router_int.h"

#define EWMA_ALPHA 0.3

int64_t
gw_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t
gw_rng_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * UINT64_C(0x2545F4914F6CDD1D);
}

double
gw_rng_unit(uint64_t *s)
{
	return (double)(gw_rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

uint64_t
gw_rng_seed(void)
{
	const char *e = getenv("AAM_ROUTER_SEED");
	uint64_t seed = 0;
	if (e != NULL && e[0] != '\0') {
		seed = strtoull(e, NULL, 0);
	} else {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
	}
	/* Scramble (splitmix64 finaliser) so small seeds differ at once; xorshift needs non-zero.
	 */
	seed += UINT64_C(0x9E3779B97F4A7C15);
	seed = (seed ^ (seed >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	seed = (seed ^ (seed >> 27)) * UINT64_C(0x94D049BB133111EB);
	seed ^= seed >> 31;
	return seed != 0 ? seed : 1;
}

/* Rolls the minute counters over (caller holds the state's mutex). */
static void
roll_minute(struct gw_dep_state *s, int64_t now_ms)
{
	int64_t minute = now_ms / 60000;
	if (s->minute != minute) {
		s->minute = minute;
		s->minute_requests = 0;
		s->minute_tokens = 0;
	}
}

static bool
region_ok(const struct gw_deployment *d, const char *const *regions, size_t n)
{
	if (regions == NULL || n == 0)
		return true;
	/* Under a region restriction a deployment of unknown region is not eligible. */
	if (d->region == NULL)
		return false;
	for (size_t i = 0; i < n; i++)
		if (regions[i] != NULL && strcmp(regions[i], d->region) == 0)
			return true;
	return false;
}

static double
score(const struct gw_routes *t, const struct gw_deployment *d, const struct gw_dep_state *s)
{
	switch (t->settings.strategy) {
	case GW_STRATEGY_LEAST_BUSY:
		return (double)s->in_flight;
	case GW_STRATEGY_LATENCY:
		/* No sample yet scores 0: a new deployment is tried, then measured. */
		return s->ewma_latency_us;
	case GW_STRATEGY_USAGE:
		/* Tokens dominate; requests break ties between equally loaded ones. */
		return (double)s->minute_tokens * 1e6 + (double)s->minute_requests;
	case GW_STRATEGY_COST:
		return d->cost_in + d->cost_out;
	case GW_STRATEGY_SIMPLE_SHUFFLE:
		break;
	}
	return 0;
}

int
gw_pick(struct gw_routes *t, const struct gw_route *route, uint64_t exclude,
        const char *const *regions, size_t nregions, int64_t input_tokens, double (*rng)(void *),
        void *rng_ctx, int64_t now_ms, size_t *idx, int *why)
{
	bool ok[GW_MAX_DEPLOYMENTS];
	double sc[GW_MAX_DEPLOYMENTS];
	size_t n_ok = 0, n_ctx = 0, n_rate = 0, n_cool = 0;
	for (size_t i = 0; i < route->ndeps; i++) {
		const struct gw_deployment *d = &route->deps[i];
		struct gw_dep_state *s = route->state[i];
		ok[i] = false;
		if (exclude & (UINT64_C(1) << i))
			continue;
		if (!region_ok(d, regions, nregions))
			continue;
		if (d->max_context > 0 && input_tokens > d->max_context) {
			n_ctx++;
			continue;
		}
		pthread_mutex_lock(&s->mu);
		bool cool = s->cooldown_until_ms > now_ms;
		bool rate = false;
		if (!cool) {
			roll_minute(s, now_ms);
			rate = (d->rpm > 0 && s->minute_requests >= d->rpm) ||
			       (d->tpm > 0 && s->minute_tokens + input_tokens > d->tpm);
			sc[i] = score(t, d, s);
		}
		pthread_mutex_unlock(&s->mu);
		if (cool) {
			n_cool++;
		} else if (rate) {
			n_rate++;
		} else {
			ok[i] = true;
			n_ok++;
		}
	}
	if (n_ok == 0) {
		*why = n_ctx > 0    ? GW_PICK_CONTEXT
		       : n_rate > 0 ? GW_PICK_RATE
		       : n_cool > 0 ? GW_PICK_COOLDOWN
		                    : GW_PICK_REGION;
		return AAM_E_NOTFOUND;
	}
	*why = GW_PICK_NONE;
	double best = INFINITY;
	for (size_t i = 0; i < route->ndeps; i++)
		if (ok[i] && sc[i] < best)
			best = sc[i];
	double total = 0;
	for (size_t i = 0; i < route->ndeps; i++) {
		ok[i] = ok[i] && sc[i] <= best + (best > 0 ? best : -best) * 1e-9;
		if (ok[i])
			total += route->deps[i].weight;
	}
	double x = rng(rng_ctx) * total;
	size_t last = 0;
	for (size_t i = 0; i < route->ndeps; i++) {
		if (!ok[i])
			continue;
		last = i;
		if (x < route->deps[i].weight)
			break;
		x -= route->deps[i].weight;
	}
	*idx = last;
	return AAM_OK;
}

void
gw_state_begin(struct gw_routes *t, const struct gw_route *route, size_t i, int64_t now_ms)
{
	(void)t;
	struct gw_dep_state *s = route->state[i];
	pthread_mutex_lock(&s->mu);
	roll_minute(s, now_ms);
	s->in_flight++;
	s->minute_requests++;
	pthread_mutex_unlock(&s->mu);
}

void
gw_state_end(struct gw_routes *t, const struct gw_route *route, size_t i, bool ok,
             int64_t latency_us, int64_t tokens, int64_t now_ms)
{
	struct gw_dep_state *s = route->state[i];
	const struct gw_settings *cfg = &t->settings;
	pthread_mutex_lock(&s->mu);
	roll_minute(s, now_ms);
	if (s->in_flight > 0)
		s->in_flight--;
	s->minute_tokens += tokens > 0 ? tokens : 0;
	if (ok && latency_us <= 0) {
		/* Nothing was measured (the request never reached the upstream). */
	} else if (ok) {
		double l = (double)latency_us;
		s->ewma_latency_us =
		        s->ewma_latency_us > 0
		                ? EWMA_ALPHA * l + (1 - EWMA_ALPHA) * s->ewma_latency_us
		                : l;
	} else {
		/* Failures older than the cooldown window do not count. */
		const unsigned ring = (unsigned)(sizeof(s->fail_times) / sizeof(s->fail_times[0]));
		s->fail_times[s->fail_pos] = now_ms;
		s->fail_pos = (s->fail_pos + 1) % ring;
		if (s->nfails < ring)
			s->nfails++;
		int recent = 0;
		for (unsigned k = 0; k < s->nfails; k++)
			if (now_ms - s->fail_times[k] <= cfg->cooldown_ms)
				recent++;
		if (recent >= cfg->allowed_fails) {
			s->cooldown_until_ms = now_ms + cfg->cooldown_ms;
			s->nfails = 0;
			s->fail_pos = 0;
		}
	}
	pthread_mutex_unlock(&s->mu);
}
