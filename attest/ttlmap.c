/*
 * Single-use expiring map.  See ttlmap.h.
 *
 * Chained hash buckets plus a FIFO of entries in insertion order.  All
 * entries of one map share one lifetime in practice (60 s), so insertion
 * order is expiry order and expired entries are dropped from the head of
 * the FIFO in amortised O(1); an entry taken early is unlinked from both.
 */
#include "attest/ttlmap.h"
#include "common/secret.h"
#include "aam/err.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct entry {
	uint8_t key[ATTEST_TTLMAP_KEY_LEN];
	void *value;
	int64_t expires;
	struct entry *chain;         /* bucket chain */
	struct entry *older, *newer; /* FIFO */
};

struct attest_ttlmap {
	pthread_mutex_t mu;
	struct entry **buckets;
	size_t nbuckets; /* power of two */
	size_t count, capacity;
	struct entry *oldest, *newest;
	void (*free_fn)(void *);
};

struct attest_ttlmap *
attest_ttlmap_new(size_t capacity, void (*free_fn)(void *))
{
	if (capacity == 0 || capacity > (1u << 22))
		return NULL;
	struct attest_ttlmap *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	m->nbuckets = 16;
	while (m->nbuckets < capacity)
		m->nbuckets <<= 1;
	m->buckets = calloc(m->nbuckets, sizeof(*m->buckets));
	if (m->buckets == NULL) {
		free(m);
		return NULL;
	}
	m->capacity = capacity;
	m->free_fn = free_fn;
	pthread_mutex_init(&m->mu, NULL);
	return m;
}

static size_t
bucket_of(const struct attest_ttlmap *m, const uint8_t *key)
{
	uint64_t h;
	memcpy(&h, key, sizeof(h));
	return (size_t)(h & (m->nbuckets - 1));
}

static void
entry_unlink(struct attest_ttlmap *m, struct entry *e)
{
	struct entry **pp = &m->buckets[bucket_of(m, e->key)];
	while (*pp != NULL && *pp != e)
		pp = &(*pp)->chain;
	if (*pp == e)
		*pp = e->chain;
	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		m->oldest = e->newer;
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		m->newest = e->older;
	m->count--;
}

static void
entry_free(struct attest_ttlmap *m, struct entry *e)
{
	if (m->free_fn != NULL && e->value != NULL)
		m->free_fn(e->value);
	aam_wipe(e->key, sizeof(e->key));
	free(e);
}

/*
 * Drops expired entries.  Entries are nearly in expiry order; scanning
 * from the oldest and stopping at the first live one keeps this cheap,
 * and an out-of-order expired entry is still refused by take().
 */
static void
expire(struct attest_ttlmap *m, int64_t now)
{
	while (m->oldest != NULL && m->oldest->expires <= now) {
		struct entry *e = m->oldest;
		entry_unlink(m, e);
		entry_free(m, e);
	}
}

void
attest_ttlmap_free(struct attest_ttlmap *m)
{
	if (m == NULL)
		return;
	while (m->oldest != NULL) {
		struct entry *e = m->oldest;
		entry_unlink(m, e);
		entry_free(m, e);
	}
	free(m->buckets);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

static struct entry *
find(struct attest_ttlmap *m, const uint8_t *key)
{
	for (struct entry *e = m->buckets[bucket_of(m, key)]; e != NULL; e = e->chain)
		if (aam_ct_equal(e->key, key, ATTEST_TTLMAP_KEY_LEN))
			return e;
	return NULL;
}

int
attest_ttlmap_put(struct attest_ttlmap *m, const uint8_t key[ATTEST_TTLMAP_KEY_LEN], void *value,
                  int64_t expires, int64_t now)
{
	if (m == NULL || key == NULL)
		return AAM_E_INVAL;
	int rc = AAM_OK;
	pthread_mutex_lock(&m->mu);
	expire(m, now);
	if (m->count >= m->capacity) {
		rc = AAM_E_BUSY;
		goto out;
	}
	if (find(m, key) != NULL) {
		rc = AAM_E_EXISTS;
		goto out;
	}
	struct entry *e = calloc(1, sizeof(*e));
	if (e == NULL) {
		rc = AAM_E_NOMEM;
		goto out;
	}
	memcpy(e->key, key, ATTEST_TTLMAP_KEY_LEN);
	e->value = value;
	e->expires = expires;
	size_t b = bucket_of(m, key);
	e->chain = m->buckets[b];
	m->buckets[b] = e;
	e->older = m->newest;
	if (m->newest != NULL)
		m->newest->newer = e;
	else
		m->oldest = e;
	m->newest = e;
	m->count++;
out:
	pthread_mutex_unlock(&m->mu);
	return rc;
}

void *
attest_ttlmap_take(struct attest_ttlmap *m, const uint8_t key[ATTEST_TTLMAP_KEY_LEN], int64_t now)
{
	if (m == NULL || key == NULL)
		return NULL;
	void *v = NULL;
	pthread_mutex_lock(&m->mu);
	expire(m, now);
	struct entry *e = find(m, key);
	if (e != NULL) {
		entry_unlink(m, e);
		if (e->expires > now) {
			v = e->value;
			e->value = NULL;
		}
		entry_free(m, e);
	}
	pthread_mutex_unlock(&m->mu);
	return v;
}

size_t
attest_ttlmap_count(struct attest_ttlmap *m, int64_t now)
{
	if (m == NULL)
		return 0;
	pthread_mutex_lock(&m->mu);
	expire(m, now);
	size_t n = m->count;
	pthread_mutex_unlock(&m->mu);
	return n;
}
