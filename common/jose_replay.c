/*
 * The DPoP jti replay cache.  Entries live in a ring in insertion order,
 * so the oldest is always at the head and eviction is a pop; a chained
 * hash table over the same slots gives O(1) expected lookups.  Keys are
 * stored as SHA-256(salt || key) with a per-cache random salt: the table
 * holds no client bytes, its size is fixed, and a client that picks jtis
 * cannot aim them at one bucket because it does not know the salt.
 *
 * The verifier inserts with expires = now + the whole iat window, so
 * expiries grow with insertion order and the head is always the first to
 * expire.  Should a caller insert out of order, an entry simply stays
 * until it reaches the head: never too short, which is the property that
 * matters for replay protection.
 */
#include "common/jose.h"
#include "common/jose_int.h"
#include "common/secret.h"
#include "aam/err.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/rand.h>

#define REPLAY_NIL       UINT32_MAX
#define REPLAY_MAX_SLOTS (1u << 24)

struct replay_entry {
	uint8_t h[AAM_JOSE_DIGEST_LEN];
	int64_t expires;
	uint32_t next; /* next slot in the same bucket, or REPLAY_NIL */
};

struct aam_dpop_replay {
	pthread_mutex_t mu;
	struct replay_entry *ring;
	uint32_t *buckets;
	size_t cap, head, count;
	size_t mask; /* buckets - 1, a power of two minus one */
	uint8_t salt[32];
};

struct aam_dpop_replay *
aam_dpop_replay_new(size_t capacity)
{
	if (capacity == 0 || capacity > REPLAY_MAX_SLOTS)
		return NULL;
	size_t nb = 1;
	while (nb < 2 * capacity)
		nb <<= 1;
	struct aam_dpop_replay *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->ring = calloc(capacity, sizeof(*r->ring));
	r->buckets = malloc(nb * sizeof(*r->buckets));
	if (r->ring == NULL || r->buckets == NULL || RAND_bytes(r->salt, sizeof(r->salt)) != 1 ||
	    pthread_mutex_init(&r->mu, NULL) != 0) {
		ERR_clear_error();
		free(r->ring);
		free(r->buckets);
		free(r);
		return NULL;
	}
	for (size_t i = 0; i < nb; i++)
		r->buckets[i] = REPLAY_NIL;
	r->cap = capacity;
	r->mask = nb - 1;
	return r;
}

void
aam_dpop_replay_free(struct aam_dpop_replay *r)
{
	if (r == NULL)
		return;
	pthread_mutex_destroy(&r->mu);
	aam_wipe(r->salt, sizeof(r->salt));
	free(r->ring);
	free(r->buckets);
	free(r);
}

static size_t
bucket_of(const struct aam_dpop_replay *r, const uint8_t h[AAM_JOSE_DIGEST_LEN])
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | h[i];
	return (size_t)(v & r->mask);
}

static void
unlink_slot(struct aam_dpop_replay *r, uint32_t slot)
{
	uint32_t *pp = &r->buckets[bucket_of(r, r->ring[slot].h)];
	while (*pp != REPLAY_NIL && *pp != slot)
		pp = &r->ring[*pp].next;
	if (*pp == slot)
		*pp = r->ring[slot].next;
}

static void
evict_expired(struct aam_dpop_replay *r, int64_t now)
{
	while (r->count > 0 && r->ring[r->head].expires <= now) {
		unlink_slot(r, (uint32_t)r->head);
		r->head = (r->head + 1) % r->cap;
		r->count--;
	}
}

int
aam_dpop_replay_insert(struct aam_dpop_replay *r, const void *key, size_t keylen, int64_t now,
                       int64_t expires)
{
	if (r == NULL || key == NULL || keylen == 0 || expires <= now)
		return AAM_E_INVAL;
	uint8_t h[AAM_JOSE_DIGEST_LEN];
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int hl = 0;
	int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
	         EVP_DigestUpdate(md, r->salt, sizeof(r->salt)) == 1 &&
	         EVP_DigestUpdate(md, key, keylen) == 1 && EVP_DigestFinal_ex(md, h, &hl) == 1;
	EVP_MD_CTX_free(md);
	if (!ok) {
		ERR_clear_error();
		return AAM_E_CRYPTO;
	}

	int rc = AAM_OK;
	pthread_mutex_lock(&r->mu);
	evict_expired(r, now);
	size_t b = bucket_of(r, h);
	for (uint32_t s = r->buckets[b]; s != REPLAY_NIL; s = r->ring[s].next) {
		struct replay_entry *e = &r->ring[s];
		if (memcmp(e->h, h, sizeof(h)) != 0)
			continue;
		if (e->expires > now) {
			rc = AAM_E_EXISTS;
		} else if (expires > e->expires) {
			/* Expired but not yet at the head: reuse the slot in place. */
			e->expires = expires;
		}
		goto out;
	}
	if (r->count == r->cap) {
		rc = AAM_E_BUSY;
		goto out;
	}
	uint32_t slot = (uint32_t)((r->head + r->count) % r->cap);
	struct replay_entry *e = &r->ring[slot];
	memcpy(e->h, h, sizeof(h));
	e->expires = expires;
	e->next = r->buckets[b];
	r->buckets[b] = slot;
	r->count++;
out:
	pthread_mutex_unlock(&r->mu);
	return rc;
}

size_t
aam_dpop_replay_count(struct aam_dpop_replay *r, int64_t now)
{
	if (r == NULL)
		return 0;
	pthread_mutex_lock(&r->mu);
	evict_expired(r, now);
	size_t n = r->count;
	pthread_mutex_unlock(&r->mu);
	return n;
}
