/*
 * The budget ledger's row map (gateway/budget_cache.h): open addressing
 * with linear probing over twice as many slots as rows, FNV-1a hashes.
 */
#include "gateway/budget_cache.h"
#include "common/hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NSLOTS (2 * GW_BCACHE_MAX)

/* KEY of the row, in BUF; false when it does not fit (the row is then never cached). */
static bool
make_key(char *buf, size_t len, const char *a, const char *b, const char *c)
{
	/* A separator inside a part could make two rows one: such rows are not cached. */
	if (strchr(a, '\x1f') != NULL || strchr(b, '\x1f') != NULL ||
	    (c != NULL && strchr(c, '\x1f') != NULL))
		return false;
	int n = snprintf(buf, len, "%s\x1f%s\x1f%s", a, b, c != NULL ? c : "");
	return n > 0 && (size_t)n < len;
}

static size_t
hash(const char *s)
{
	return (size_t)(aam_hash_str(s) % NSLOTS);
}

/* The slot holding KEY, or the empty slot where it would go. */
static size_t
probe(const struct gw_bcache *c, const char *key)
{
	size_t i = hash(key);
	while (c->slot[i].key != NULL && strcmp(c->slot[i].key, key) != 0)
		i = (i + 1) % NSLOTS;
	return i;
}

void
gw_bcache_clear(struct gw_bcache *c)
{
	if (c->n == 0)
		return;
	for (size_t i = 0; i < NSLOTS; i++) {
		free(c->slot[i].key);
		c->slot[i].key = NULL;
	}
	c->n = 0;
}

bool
gw_bcache_get(const struct gw_bcache *c, const char *a, const char *b, const char *c3, int64_t v[2])
{
	char key[512];
	if (c->n == 0 || !make_key(key, sizeof(key), a, b, c3))
		return false;
	size_t i = probe(c, key);
	if (c->slot[i].key == NULL)
		return false;
	v[0] = c->slot[i].v[0];
	v[1] = c->slot[i].v[1];
	return true;
}

void
gw_bcache_put(struct gw_bcache *c, const char *a, const char *b, const char *c3, const int64_t v[2])
{
	char key[512];
	if (!make_key(key, sizeof(key), a, b, c3))
		return;
	size_t i = probe(c, key);
	if (c->slot[i].key == NULL) {
		if (c->n >= GW_BCACHE_MAX) {
			gw_bcache_clear(c);
			i = probe(c, key);
		}
		c->slot[i].key = strdup(key);
		if (c->slot[i].key == NULL)
			return;
		c->n++;
	}
	c->slot[i].v[0] = v[0];
	c->slot[i].v[1] = v[1];
}

void
gw_bcache_forget(struct gw_bcache *c, const char *a, const char *b, const char *c3)
{
	char key[512];
	if (c->n == 0 || !make_key(key, sizeof(key), a, b, c3))
		return;
	size_t i = probe(c, key);
	if (c->slot[i].key == NULL)
		return;
	free(c->slot[i].key);
	c->slot[i].key = NULL;
	c->n--;
	/* Re-insert the rest of the cluster so that probing still finds every row. */
	for (size_t j = (i + 1) % NSLOTS; c->slot[j].key != NULL; j = (j + 1) % NSLOTS) {
		struct gw_bcache_entry e = c->slot[j];
		c->slot[j].key = NULL;
		size_t k = probe(c, e.key);
		c->slot[k] = e;
	}
}
