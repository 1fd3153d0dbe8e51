/*
 * The verified-token cache, the revocation sets and the pool of database
 * connections used for virtual keys.
 *
 * The token cache is what makes a request cost one signature check: a
 * token is verified once, its facts kept under the SHA-256 of its compact
 * form until it expires, and later requests only verify their DPoP proof.
 * It is bounded; when full of live tokens a new one is simply not cached
 * (it was still verified), so a flood of tokens costs CPU, never memory.
 */
#include "gateway/authn_int.h"
#include "aam/err.h"
#include "common/db.h"
#include "common/hash.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- clocks ------------------------------------------------------------------ */

int64_t
gw_authn_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
gw_authn_now_s(void)
{
	return (int64_t)time(NULL);
}

/* ---- string map ---------------------------------------------------------------- */

static size_t
smap_hash(const char *s)
{
	/* FNV-1a: the keys are revocation entries from aam-attest, not client input. */
	return (size_t)aam_hash_str(s);
}

static int
smap_grow(struct gw_smap *m)
{
	size_t nb = m->nb == 0 ? 64 : m->nb * 2;
	struct gw_smap_ent **b = calloc(nb, sizeof(*b));
	if (b == NULL)
		return AAM_E_NOMEM;
	for (size_t i = 0; i < m->nb; i++) {
		struct gw_smap_ent *e = m->b[i];
		while (e != NULL) {
			struct gw_smap_ent *nx = e->next;
			size_t k = smap_hash(e->key) & (nb - 1);
			e->next = b[k];
			b[k] = e;
			e = nx;
		}
	}
	free(m->b);
	m->b = b;
	m->nb = nb;
	return AAM_OK;
}

int
gw_smap_put(struct gw_smap *m, const char *key, int64_t val)
{
	if (m->nb == 0 || m->n >= m->nb) {
		int rc = smap_grow(m);
		if (rc != AAM_OK)
			return rc;
	}
	size_t k = smap_hash(key) & (m->nb - 1);
	for (struct gw_smap_ent *e = m->b[k]; e != NULL; e = e->next)
		if (strcmp(e->key, key) == 0) {
			if (val > e->val)
				e->val = val;
			return AAM_OK;
		}
	struct gw_smap_ent *e = calloc(1, sizeof(*e));
	if (e == NULL || (e->key = strdup(key)) == NULL) {
		free(e);
		return AAM_E_NOMEM;
	}
	e->val = val;
	e->next = m->b[k];
	m->b[k] = e;
	m->n++;
	return AAM_OK;
}

bool
gw_smap_get(const struct gw_smap *m, const char *key, int64_t *val)
{
	if (m->nb == 0 || key == NULL)
		return false;
	for (struct gw_smap_ent *e = m->b[smap_hash(key) & (m->nb - 1)]; e != NULL; e = e->next)
		if (strcmp(e->key, key) == 0) {
			*val = e->val;
			return true;
		}
	return false;
}

void
gw_smap_prune_below(struct gw_smap *m, int64_t limit)
{
	for (size_t i = 0; i < m->nb; i++) {
		struct gw_smap_ent **pp = &m->b[i];
		while (*pp != NULL) {
			struct gw_smap_ent *e = *pp;
			if (e->val < limit) {
				*pp = e->next;
				free(e->key);
				free(e);
				m->n--;
			} else {
				pp = &e->next;
			}
		}
	}
}

void
gw_smap_free(struct gw_smap *m)
{
	gw_smap_prune_below(m, INT64_MAX);
	free(m->b);
	memset(m, 0, sizeof(*m));
}

/* ---- token cache ------------------------------------------------------------------- */

void
gw_authn_tok_free(struct gw_tok *t)
{
	if (t == NULL)
		return;
	free(t->sub);
	free(t->owner);
	free(t->team);
	free(t->env);
	free(t->dep);
	free(t->jti);
	free(t->method);
	free(t);
}

int
gw_authn_cache_init(struct gw_authn *a)
{
	size_t nb = 1024;
	while (nb < a->token_cache_max && nb < (1u << 20))
		nb <<= 1;
	a->tb = calloc(nb, sizeof(*a->tb));
	if (a->tb == NULL)
		return AAM_E_NOMEM;
	a->ntb = nb;
	return AAM_OK;
}

void
gw_authn_cache_uninit(struct gw_authn *a)
{
	for (size_t i = 0; i < a->ntb; i++) {
		struct gw_tok *t = a->tb[i];
		while (t != NULL) {
			struct gw_tok *nx = t->next;
			gw_authn_tok_free(t);
			t = nx;
		}
	}
	free(a->tb);
	a->tb = NULL;
	a->ntb = a->ntok = 0;
	gw_smap_free(&a->rev_jti);
	gw_smap_free(&a->rev_sub);
}

static size_t
tok_bucket(const struct gw_authn *a, const uint8_t h[32])
{
	/* The key is a SHA-256 already: its first bytes are as good as any hash. */
	uint64_t v;
	memcpy(&v, h, sizeof(v));
	return (size_t)v & (a->ntb - 1);
}

/* Drops expired tokens of bucket B; caller holds CACHE_MU. */
static void
bucket_prune(struct gw_authn *a, size_t b, int64_t now)
{
	struct gw_tok **pp = &a->tb[b];
	while (*pp != NULL) {
		struct gw_tok *t = *pp;
		if (t->exp <= now) {
			*pp = t->next;
			gw_authn_tok_free(t);
			a->ntok--;
		} else {
			pp = &t->next;
		}
	}
}

static void
copy_field(char *dst, size_t cap, const char *src)
{
	size_t n = src != NULL ? strnlen(src, cap - 1) : 0;
	if (n > 0)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

bool
gw_authn_cache_get(struct gw_authn *a, const uint8_t h[32], int64_t now, struct gw_principal *p,
                   char jkt[AAM_JWK_THUMBPRINT_LEN + 1], int64_t *iat)
{
	size_t b = tok_bucket(a, h);
	bool hit = false;
	pthread_mutex_lock(&a->cache_mu);
	bucket_prune(a, b, now);
	for (struct gw_tok *t = a->tb[b]; t != NULL; t = t->next) {
		if (memcmp(t->h, h, 32) != 0)
			continue;
		copy_field(p->spiffe_id, sizeof(p->spiffe_id), t->sub);
		copy_field(p->owner, sizeof(p->owner), t->owner);
		copy_field(p->team, sizeof(p->team), t->team);
		copy_field(p->environment, sizeof(p->environment), t->env);
		copy_field(p->deployment, sizeof(p->deployment), t->dep);
		copy_field(p->jti, sizeof(p->jti), t->jti);
		copy_field(p->method, sizeof(p->method), t->method);
		memcpy(jkt, t->jkt, sizeof(t->jkt));
		p->exp = t->exp;
		*iat = t->iat;
		hit = true;
		break;
	}
	pthread_mutex_unlock(&a->cache_mu);
	atomic_fetch_add(hit ? &a->hits : &a->misses, 1);
	return hit;
}

void
gw_authn_cache_put(struct gw_authn *a, struct gw_tok *t, int64_t now)
{
	size_t b = tok_bucket(a, t->h);
	pthread_mutex_lock(&a->cache_mu);
	bucket_prune(a, b, now);
	bool dup = false;
	for (struct gw_tok *o = a->tb[b]; o != NULL; o = o->next)
		if (memcmp(o->h, t->h, 32) == 0)
			dup = true;
	if (!dup && a->ntok < a->token_cache_max) {
		t->next = a->tb[b];
		a->tb[b] = t;
		a->ntok++;
		t = NULL;
	}
	pthread_mutex_unlock(&a->cache_mu);
	gw_authn_tok_free(t);
}

bool
gw_authn_revoked(struct gw_authn *a, const char *jti, const char *sub, int64_t iat)
{
	int64_t v = 0;
	bool r = false;
	pthread_mutex_lock(&a->cache_mu);
	if (jti != NULL && jti[0] != '\0' && gw_smap_get(&a->rev_jti, jti, &v))
		r = true;
	/* An identity revocation covers every token issued up to that moment. */
	if (!r && sub != NULL && gw_smap_get(&a->rev_sub, sub, &v) && iat <= v)
		r = true;
	pthread_mutex_unlock(&a->cache_mu);
	return r;
}

/* ---- database pool ------------------------------------------------------------------ */

struct gw_dbpool {
	pthread_mutex_t mu;
	char *path;
	struct aam_db **free_;
	size_t nfree, cap;
};

int
gw_dbpool_new(const char *path, size_t max, struct gw_dbpool **out)
{
	*out = NULL;
	struct gw_dbpool *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return AAM_E_NOMEM;
	pthread_mutex_init(&p->mu, NULL);
	p->cap = max > 0 ? max : 16;
	p->free_ = calloc(p->cap, sizeof(*p->free_));
	p->path = strdup(path);
	if (p->free_ == NULL || p->path == NULL) {
		gw_dbpool_free(p);
		return AAM_E_NOMEM;
	}
	*out = p;
	return AAM_OK;
}

void
gw_dbpool_free(struct gw_dbpool *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->nfree; i++)
		aam_db_close(p->free_[i]);
	pthread_mutex_destroy(&p->mu);
	free(p->free_);
	free(p->path);
	free(p);
}

struct aam_db *
gw_dbpool_get(struct gw_dbpool *p)
{
	struct aam_db *db = NULL;
	pthread_mutex_lock(&p->mu);
	if (p->nfree > 0)
		db = p->free_[--p->nfree];
	pthread_mutex_unlock(&p->mu);
	if (db == NULL && aam_db_open(p->path, AAM_DB_CREATE, &db) != AAM_OK)
		return NULL;
	return db;
}

void
gw_dbpool_put(struct gw_dbpool *p, struct aam_db *db)
{
	if (db == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	if (p->nfree < p->cap) {
		p->free_[p->nfree++] = db;
		db = NULL;
	}
	pthread_mutex_unlock(&p->mu);
	aam_db_close(db); /* more connections than the pool keeps: close the extra one */
}
