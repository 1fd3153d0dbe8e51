/*
 * Token buckets per source address.  See ratelimit.h.
 *
 * Open addressing with a bounded probe: an address lives in one of the
 * PROBE slots after its (salted) hash.  A full neighbourhood gives up the
 * slot whose last failure is oldest.  The salt is random per process so a
 * client cannot choose addresses that all land in one neighbourhood.
 */
#include "attest/ratelimit.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#define ADDR_MAX 64u
#define PROBE    16u

struct slot {
	char addr[ADDR_MAX]; /* "" when free */
	double tokens;
	double updated;
};

struct attest_ratelimit {
	pthread_mutex_t mu;
	struct slot *slots;
	size_t nslots; /* power of two */
	double rate, burst;
	uint64_t salt;
};

struct attest_ratelimit *
attest_ratelimit_new(size_t capacity, double rate, double burst)
{
	if (capacity < 16 || capacity > (1u << 20) || !(rate > 0) || !(burst >= 1))
		return NULL;
	struct attest_ratelimit *rl = calloc(1, sizeof(*rl));
	if (rl == NULL)
		return NULL;
	rl->nslots = 16;
	while (rl->nslots < capacity)
		rl->nslots <<= 1;
	rl->slots = calloc(rl->nslots, sizeof(*rl->slots));
	if (rl->slots == NULL || RAND_bytes((unsigned char *)&rl->salt, sizeof(rl->salt)) != 1) {
		free(rl->slots);
		free(rl);
		return NULL;
	}
	rl->rate = rate;
	rl->burst = burst;
	pthread_mutex_init(&rl->mu, NULL);
	return rl;
}

void
attest_ratelimit_free(struct attest_ratelimit *rl)
{
	if (rl == NULL)
		return;
	pthread_mutex_destroy(&rl->mu);
	free(rl->slots);
	free(rl);
}

/* FNV-1a, salted; good enough to spread addresses, not a MAC. */
static size_t
addr_hash(const struct attest_ratelimit *rl, const char *addr)
{
	uint64_t h = 1469598103934665603ull ^ rl->salt;
	for (const unsigned char *p = (const unsigned char *)addr; *p != '\0'; p++) {
		h ^= *p;
		h *= 1099511628211ull;
	}
	h ^= h >> 29;
	return (size_t)h;
}

/* Refills S up to the burst for the time since its last update. */
static void
refill(const struct attest_ratelimit *rl, struct slot *s, double now)
{
	if (now > s->updated) {
		s->tokens += (now - s->updated) * rl->rate;
		if (s->tokens > rl->burst)
			s->tokens = rl->burst;
		s->updated = now;
	}
}

/* The slot of ADDR, or NULL (lookup only). */
static struct slot *
lookup(struct attest_ratelimit *rl, const char *addr)
{
	size_t h = addr_hash(rl, addr);
	for (size_t i = 0; i < PROBE; i++) {
		struct slot *s = &rl->slots[(h + i) & (rl->nslots - 1)];
		if (strcmp(s->addr, addr) == 0)
			return s;
	}
	return NULL;
}

bool
attest_ratelimit_allowed(struct attest_ratelimit *rl, const char *addr, double now)
{
	if (rl == NULL || addr == NULL)
		return true;
	pthread_mutex_lock(&rl->mu);
	bool ok = true;
	struct slot *s = lookup(rl, addr);
	if (s != NULL) {
		refill(rl, s, now);
		ok = s->tokens >= 1.0;
	}
	pthread_mutex_unlock(&rl->mu);
	return ok;
}

void
attest_ratelimit_fail(struct attest_ratelimit *rl, const char *addr, double now)
{
	if (rl == NULL || addr == NULL || addr[0] == '\0' || strlen(addr) >= ADDR_MAX)
		return;
	pthread_mutex_lock(&rl->mu);
	struct slot *s = lookup(rl, addr);
	if (s == NULL) {
		/* A free slot, else one whose bucket is full again, else the stalest. */
		size_t h = addr_hash(rl, addr);
		struct slot *victim = NULL;
		for (size_t i = 0; i < PROBE; i++) {
			struct slot *c = &rl->slots[(h + i) & (rl->nslots - 1)];
			if (c->addr[0] == '\0') {
				victim = c;
				break;
			}
			refill(rl, c, now);
			if (c->tokens >= rl->burst) {
				victim = c;
				break;
			}
			if (victim == NULL || c->updated < victim->updated)
				victim = c;
		}
		s = victim;
		memset(s, 0, sizeof(*s));
		memcpy(s->addr, addr, strlen(addr) + 1);
		s->tokens = rl->burst;
		s->updated = now;
	}
	refill(rl, s, now);
	s->tokens -= 1.0;
	if (s->tokens < 0)
		s->tokens = 0;
	/* The last failure time orders eviction; refill() moved it to now. */
	s->updated = now;
	pthread_mutex_unlock(&rl->mu);
}
