/*
 * A small string-keyed map of the budget ledger's rows (gateway/budget.c).
 *
 * Every reserve and settle used to read each scope's limit and spend rows
 * with SQL inside the batch's transaction: about twenty statements a
 * request, a third of the gateway's CPU with the writes.  The ledger keeps
 * the rows it has read or written here instead, and forgets all of them
 * whenever another connection has committed to the database (PRAGMA
 * data_version) or a transaction of its own rolled back, so the map never
 * answers differently from the database.  Not thread-safe: the ledger's
 * connection lock covers it.
 */
#ifndef AAM_GATEWAY_BUDGET_CACHE_H
#define AAM_GATEWAY_BUDGET_CACHE_H

#include <stdbool.h>
#include <stdint.h>

/* Most rows kept; the map starts over when it is this full. */
#define GW_BCACHE_MAX 4096u

struct gw_bcache_entry {
	char *key; /* "a\x1f" "b\x1f" "c", NULL for an empty slot */
	int64_t v[2];
};

struct gw_bcache {
	struct gw_bcache_entry slot[2 * GW_BCACHE_MAX];
	unsigned n;
};

/* Forgets every row. */
void gw_bcache_clear(struct gw_bcache *c);
/* The values of row (A, B, C); false when not cached. */
bool gw_bcache_get(const struct gw_bcache *c, const char *a, const char *b, const char *c3,
                   int64_t v[2]);
/* Remembers row (A, B, C) with V (a failed allocation only loses the row). */
void gw_bcache_put(struct gw_bcache *c, const char *a, const char *b, const char *c3,
                   const int64_t v[2]);
/* Forgets one row. */
void gw_bcache_forget(struct gw_bcache *c, const char *a, const char *b, const char *c3);

#endif
