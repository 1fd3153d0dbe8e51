/*
 * Small pieces the rest of the policy engine shares: the arena that owns a
 * set's strings, the error list, name lists and the hashing used by the
 * indexes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "gateway/policy_internal.h"

/* ---- arena ------------------------------------------------------------ */

#define POL_CHUNK_MIN (64u * 1024)

struct pol_chunk {
	struct pol_chunk *next;
	size_t used, cap;
	_Alignas(16) unsigned char data[];
};

void
pol_arena_init(struct pol_arena *a)
{
	a->head = NULL;
	a->total = 0;
}

void
pol_arena_uninit(struct pol_arena *a)
{
	struct pol_chunk *c = a->head;
	while (c != NULL) {
		struct pol_chunk *next = c->next;
		free(c);
		c = next;
	}
	a->head = NULL;
	a->total = 0;
}

void *
pol_alloc(struct pol_arena *a, size_t size)
{
	if (size == 0)
		size = 1;
	if (size > SIZE_MAX / 2)
		return NULL;
	size_t need = (size + 15u) & ~(size_t)15u;
	struct pol_chunk *c = a->head;
	if (c == NULL || c->cap - c->used < need) {
		size_t cap = need > POL_CHUNK_MIN ? need : POL_CHUNK_MIN;
		c = malloc(sizeof(*c) + cap);
		if (c == NULL)
			return NULL;
		c->used = 0;
		c->cap = cap;
		c->next = a->head;
		a->head = c;
	}
	void *p = c->data + c->used;
	c->used += need;
	a->total += need;
	memset(p, 0, size);
	return p;
}

void *
pol_alloc_array(struct pol_arena *a, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / 4 / size)
		return NULL;
	return pol_alloc(a, n * size);
}

char *
pol_strndup(struct pol_arena *a, const char *s, size_t len)
{
	if (len == SIZE_MAX)
		return NULL;
	char *p = pol_alloc(a, len + 1);
	if (p == NULL)
		return NULL;
	if (len != 0)
		memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *
pol_printf(struct pol_arena *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	char *p = pol_alloc(a, (size_t)n + 1);
	if (p == NULL)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

/* ---- diagnostics ------------------------------------------------------ */

void
gw_policy_diag_init(struct gw_policy_diag *d)
{
	memset(d, 0, sizeof(*d));
}

void
gw_policy_diag_uninit(struct gw_policy_diag *d)
{
	if (d == NULL)
		return;
	free(d->errs);
	memset(d, 0, sizeof(*d));
}

void
gw_policy_diag_format(const struct gw_policy_diag *d, size_t i, char *out, size_t outlen)
{
	if (out == NULL || outlen == 0)
		return;
	if (d == NULL || i >= d->n) {
		out[0] = '\0';
		return;
	}
	aam_yaml_error_format(&d->errs[i], out, outlen);
}

/* Reserves room for one more error; NULL when the list is full. */
static struct aam_yaml_error *
diag_slot(struct gw_policy_diag *d)
{
	if (d->n >= GW_POLICY_MAX_ERRORS) {
		d->dropped++;
		return NULL;
	}
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 8;
		struct aam_yaml_error *e = realloc(d->errs, cap * sizeof(*e));
		if (e == NULL) {
			/* Out of memory: the load still fails, by count. */
			d->dropped++;
			return NULL;
		}
		d->errs = e;
		d->cap = cap;
	}
	struct aam_yaml_error *e = &d->errs[d->n++];
	memset(e, 0, sizeof(*e));
	return e;
}

void
pol_diag_vadd(struct gw_policy_diag *d, const char *file, unsigned line, unsigned col,
              const char *fmt, va_list ap)
{
	struct aam_yaml_error *e = diag_slot(d);
	if (e == NULL)
		return;
	snprintf(e->file, sizeof(e->file), "%s", file ? file : "<input>");
	e->line = line;
	e->col = col;
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
}

void
pol_diag_add(struct gw_policy_diag *d, const char *file, unsigned line, unsigned col,
             const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	pol_diag_vadd(d, file, line, col, fmt, ap);
	va_end(ap);
}

void
pol_diag_add_yaml(struct gw_policy_diag *d, const struct aam_yaml_error *src)
{
	struct aam_yaml_error *e = diag_slot(d);
	if (e != NULL)
		*e = *src;
}

void
pol_pathf(char *out, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out, POL_PATH_LEN, fmt, ap);
	va_end(ap);
}

/* ---- lists and hashing ------------------------------------------------ */

long
pol_list_find(const struct pol_list *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].s, s) == 0)
			return (long)i;
	return -1;
}

/*
 * FNV-1a with a final avalanche.  Keys are written by administrators and
 * probed with request values, so flooding is not a concern; speed is.
 */
uint64_t
pol_hash(uint32_t ns, uint32_t parent, const char *key, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull ^ ((uint64_t)ns << 56) ^ ((uint64_t)parent << 8);
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)key[i];
		h *= 0x100000001b3ull;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

const struct pol_hent *
pol_ht_find(const struct gw_policy_set *s, uint32_t ns, uint32_t parent, const char *key,
            size_t len)
{
	if (s->htcap == 0 || len > UINT32_MAX)
		return NULL;
	uint64_t h = pol_hash(ns, parent, key, len);
	size_t mask = s->htcap - 1;
	for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
		const struct pol_hent *e = &s->ht[i];
		if (e->key == NULL)
			return NULL;
		if (e->h == h && e->ns == ns && e->parent == parent && e->klen == len &&
		    memcmp(e->key, key, len) == 0)
			return e;
	}
}

/* ---- dates ------------------------------------------------------------ */

/* Howard Hinnant's days_from_civil, valid for every year we accept. */
int64_t
pol_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int
digits(const char *s, size_t n, unsigned *out)
{
	unsigned v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*out = v;
	return 0;
}

int
gw_policy_parse_time(const char *s, int64_t *out)
{
	if (s == NULL || out == NULL)
		return AAM_E_INVAL;
	size_t len = strlen(s);
	unsigned y, mo, d, h, mi, se;
	if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
	    s[13] != ':' || s[16] != ':')
		return AAM_E_PARSE;
	if (digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) ||
	    digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) || digits(s + 17, 2, &se))
		return AAM_E_PARSE;
	static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 ||
	    se > 60)
		return AAM_E_PARSE;
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (mo == 2 && d == 29 && !leap)
		return AAM_E_PARSE;
	if (se == 60)
		se = 59; /* A leap second is held at :59; POSIX time has none. */
	size_t i = 19;
	if (s[i] == '.') {
		i++;
		size_t start = i;
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == start || i - start > 9)
			return AAM_E_PARSE;
	}
	int64_t off = 0;
	if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
		i++;
	} else if (i < len && (s[i] == '+' || s[i] == '-')) {
		unsigned oh, om;
		if (len - i != 6 || s[i + 3] != ':' || digits(s + i + 1, 2, &oh) ||
		    digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
			return AAM_E_PARSE;
		off = (int64_t)(oh * 60 + om) * 60;
		if (s[i] == '-')
			off = -off;
		i += 6;
	} else {
		return AAM_E_PARSE;
	}
	if (i != len)
		return AAM_E_PARSE;
	int64_t days = pol_days_from_civil(y, mo, d);
	*out = days * 86400 + (int64_t)(h * 3600 + mi * 60 + se) - off;
	return AAM_OK;
}

/* ---- reasons ---------------------------------------------------------- */

const char *
gw_policy_code_name(enum gw_policy_code code)
{
	switch (code) {
	case GW_POLICY_ALLOWED:
		return "allowed";
	case GW_POLICY_EXPLICIT_DENY:
		return "explicit_deny";
	case GW_POLICY_NOT_ATTESTED:
		return "not_attested";
	case GW_POLICY_CONDITION_FAILED:
		return "condition_failed";
	case GW_POLICY_LIMIT_EXCEEDED:
		return "limit_exceeded";
	case GW_POLICY_CREDENTIAL_CONFLICT:
		return "credential_conflict";
	case GW_POLICY_NO_MATCH:
		return "no_match";
	case GW_POLICY_INVALID_REQUEST:
		return "invalid_request";
	}
	return "unknown";
}

/* Appends to a fixed buffer, remembering whether anything was cut. */
struct pol_w {
	char *p;
	size_t len, cap;
	bool cut;
};

static void pol_w_add(struct pol_w *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
pol_w_add(struct pol_w *w, const char *fmt, ...)
{
	if (w->cut)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(w->p + w->len, w->cap - w->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= w->cap - w->len) {
		w->cut = true;
		w->len = w->cap - 1;
		return;
	}
	w->len += (size_t)n;
}

int
gw_policy_reason_format(const struct gw_policy_reason *r, char *out, size_t outlen)
{
	if (r == NULL || out == NULL || outlen == 0)
		return AAM_E_INVAL;
	struct pol_w w = {.p = out, .len = 0, .cap = outlen, .cut = false};
	out[0] = '\0';
	pol_w_add(&w, "%s", gw_policy_code_name(r->code));
	if (r->policy)
		pol_w_add(&w, " policy=%s", r->policy);
	if (r->rule)
		pol_w_add(&w, " rule=%s", r->rule);
	if (r->field)
		pol_w_add(&w, " field=%s", r->field);
	if (r->value)
		pol_w_add(&w, " value=%s", r->value);
	if (r->file && r->line)
		pol_w_add(&w, " at=%s:%u:%u", r->file, r->line, r->col);
	if (r->message)
		pol_w_add(&w, ": %s", r->message);
	return w.cut ? AAM_E_TOOBIG : AAM_OK;
}
