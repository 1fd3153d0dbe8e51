/*
 * YAML loader: libyaml events -> a positioned node tree, with the limits
 * and refusals described in yaml.h enforced while the events arrive.
 * Typed scalar readers and the JSON conversion live at the end.
 */
#include "common/yaml.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "aam/err.h"

/* ---- arena: every node and string of a stream, freed at once ---- */

struct chunk {
	struct chunk *next;
	size_t used, cap;
	max_align_t align; /* makes sizeof(struct chunk) a multiple of the alignment */
};

#define CHUNK_SIZE  (64u * 1024)
#define ALIGN_UP(n) (((n) + (_Alignof(max_align_t) - 1)) & ~(_Alignof(max_align_t) - 1))

struct aam_yaml_stream {
	char *name;
	struct chunk *chunks;
	const struct aam_yaml_node **docs;
	size_t ndocs, capdocs;
};

static void *
arena_alloc(aam_yaml_stream *s, size_t size)
{
	if (size > SIZE_MAX / 2)
		return NULL;
	size = ALIGN_UP(size ? size : 1);
	struct chunk *c = s->chunks;
	if (c == NULL || c->cap - c->used < size) {
		size_t cap = size > CHUNK_SIZE ? size : CHUNK_SIZE;
		struct chunk *n = malloc(sizeof(*n) + cap);
		if (n == NULL)
			return NULL;
		n->used = 0;
		n->cap = cap;
		/* A big block gets its own chunk behind the head, so the head's free space stays
		 * usable for the small nodes around it. */
		if (c != NULL && size > CHUNK_SIZE / 4) {
			n->next = c->next;
			c->next = n;
		} else {
			n->next = c;
			s->chunks = n;
		}
		c = n;
	}
	void *p = (unsigned char *)(c + 1) + c->used;
	c->used += size;
	return p;
}

static char *
arena_strndup(aam_yaml_stream *s, const char *src, size_t len)
{
	char *p = arena_alloc(s, len + 1);
	if (p != NULL) {
		memcpy(p, src, len);
		p[len] = '\0';
	}
	return p;
}

/* The parser's view of a node: the public part plus what the limits need. */
struct ynode {
	struct aam_yaml_node pub; /* first, so a node pointer converts back */
	size_t weight;            /* nodes in the subtree with aliases expanded */
	unsigned height;          /* container levels in the expanded subtree */
	bool complete;            /* its end event has been seen */
};

/* ---- hash table for anchors (id = document) and keys (id = mapping) ---- */

struct hent {
	uint64_t id;
	const char *s;
	size_t len;
	struct ynode *node;
	unsigned line; /* where this entry was made (keys: for the duplicate message) */
};

struct htab {
	struct hent *e;
	size_t cap, n;
	uint64_t seed; /* random per stream, so colliding keys cannot be prepared offline */
};

static uint64_t
hash(const struct htab *t, uint64_t id, const char *s, size_t len)
{
	uint64_t h = t->seed ^ (id * 0x9e3779b97f4a7c15ull);
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ull;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

static struct hent *
htab_find(const struct htab *t, uint64_t id, const char *s, size_t len)
{
	if (t->cap == 0)
		return NULL;
	size_t i = (size_t)hash(t, id, s, len) & (t->cap - 1);
	while (t->e[i].node != NULL) {
		struct hent *e = &t->e[i];
		if (e->id == id && e->len == len && memcmp(e->s, s, len) == 0)
			return e;
		i = (i + 1) & (t->cap - 1);
	}
	return NULL;
}

static int
htab_grow(struct htab *t)
{
	size_t cap = t->cap ? t->cap * 2 : 64;
	struct hent *e = calloc(cap, sizeof(*e));
	if (e == NULL)
		return AAM_E_NOMEM;
	for (size_t k = 0; k < t->cap; k++) {
		if (t->e[k].node == NULL)
			continue;
		size_t i = (size_t)hash(t, t->e[k].id, t->e[k].s, t->e[k].len) & (cap - 1);
		while (e[i].node != NULL)
			i = (i + 1) & (cap - 1);
		e[i] = t->e[k];
	}
	free(t->e);
	t->e = e;
	t->cap = cap;
	return AAM_OK;
}

/* Inserts or replaces (anchors may be redefined; the latest one wins). */
static int
htab_put(struct htab *t, uint64_t id, const char *s, size_t len, struct ynode *node, unsigned line)
{
	struct hent *e = htab_find(t, id, s, len);
	if (e != NULL) {
		e->node = node;
		e->line = line;
		return AAM_OK;
	}
	if ((t->n + 1) * 2 > t->cap && htab_grow(t) != AAM_OK)
		return AAM_E_NOMEM;
	size_t i = (size_t)hash(t, id, s, len) & (t->cap - 1);
	while (t->e[i].node != NULL)
		i = (i + 1) & (t->cap - 1);
	t->e[i] = (struct hent){.id = id, .s = s, .len = len, .node = node, .line = line};
	t->n++;
	return AAM_OK;
}

/* ---- errors ---- */

static void error_vset(struct aam_yaml_error *e, const char *file, unsigned line, unsigned col,
                       const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

static void
error_vset(struct aam_yaml_error *e, const char *file, unsigned line, unsigned col, const char *fmt,
           va_list ap)
{
	if (e == NULL)
		return;
	snprintf(e->file, sizeof(e->file), "%s", file ? file : "<input>");
	e->line = line;
	e->col = line ? col : 0;
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
}

void
aam_yaml_error_set(struct aam_yaml_error *e, const char *file, unsigned line, unsigned col,
                   const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	error_vset(e, file, line, col, fmt, ap);
	va_end(ap);
}

void
aam_yaml_error_at(struct aam_yaml_error *e, const char *file, const struct aam_yaml_node *n,
                  const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	error_vset(e, file, n ? n->line : 0, n ? n->col : 0, fmt, ap);
	va_end(ap);
}

void
aam_yaml_error_format(const struct aam_yaml_error *e, char *out, size_t outlen)
{
	if (out == NULL || outlen == 0)
		return;
	if (e == NULL) {
		snprintf(out, outlen, "<input>: unknown error");
		return;
	}
	const char *file = e->file[0] ? e->file : "<input>";
	if (e->line)
		snprintf(out, outlen, "%s:%u:%u: %s", file, e->line, e->col, e->msg);
	else
		snprintf(out, outlen, "%s: %s", file, e->msg);
}

/* A key as it may appear in a message: printable ASCII only, at most 64 bytes. */
static void
quote_key(char out[80], const char *s, size_t len)
{
	size_t o = 0;
	for (size_t i = 0; i < len && o < 64; i++) {
		unsigned char c = (unsigned char)s[i];
		out[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (len > 64) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

static unsigned
clamp_u(size_t v)
{
	return v >= UINT_MAX ? UINT_MAX : (unsigned)v;
}

/* 1-based line and column of a byte offset (columns count UTF-8 characters, like libyaml). */
static void
pos_at_offset(const unsigned char *d, size_t len, size_t off, unsigned *line, unsigned *col)
{
	size_t l = 1, c = 1;
	for (size_t i = 0; i < off && i < len; i++) {
		if (d[i] == '\n') {
			l++;
			c = 1;
		} else if ((d[i] & 0xc0) != 0x80) {
			c++;
		}
	}
	*line = clamp_u(l);
	*col = clamp_u(c);
}

/* The byte at a 0-based libyaml mark, or -1; used only to recognise a tab. */
static int
byte_at_mark(const unsigned char *d, size_t len, size_t line, size_t col)
{
	size_t i = 0;
	for (size_t l = 0; l < line; l++) {
		const unsigned char *nl = memchr(d + i, '\n', len - i);
		if (nl == NULL)
			return -1;
		i = (size_t)(nl - d) + 1;
	}
	for (size_t c = 0; c < col && i < len; c++) {
		i++;
		while (i < len && (d[i] & 0xc0) == 0x80)
			i++;
	}
	return i < len ? d[i] : -1;
}

/* ---- the event loop ---- */

struct level {
	struct ynode *node;
	size_t kid0; /* index of its first child in the kids stack */
	uint64_t map_id;
};

struct pstate {
	aam_yaml_stream *s;
	struct aam_yaml_limits lim;
	struct aam_yaml_error *err;
	const char *name;
	const unsigned char *data;
	size_t len;
	struct level *levels;
	size_t nlevels, caplevels;
	struct ynode **kids; /* children of every open container, in order */
	size_t nkids, capkids;
	struct htab anchors, keys;
	size_t count; /* nodes so far, aliases expanded */
	uint64_t map_ids;
	struct ynode *root;
};

static int fail_at(struct pstate *ps, int rc, const yaml_mark_t *m, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static int
fail_at(struct pstate *ps, int rc, const yaml_mark_t *m, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	error_vset(ps->err, ps->name, clamp_u(m->line + 1), clamp_u(m->column + 1), fmt, ap);
	va_end(ap);
	return rc;
}

static int
nomem(struct pstate *ps)
{
	aam_yaml_error_set(ps->err, ps->name, 0, 0, "out of memory");
	return AAM_E_NOMEM;
}

static int
count_nodes(struct pstate *ps, size_t w, const yaml_mark_t *m)
{
	if (w > ps->lim.max_nodes - ps->count)
		return fail_at(ps, AAM_E_TOOBIG, m,
		               "more than %zu nodes (aliases counted as expanded)",
		               ps->lim.max_nodes);
	ps->count += w;
	return AAM_OK;
}

static struct ynode *
new_node(struct pstate *ps, enum aam_yaml_type type, const yaml_mark_t *m, const yaml_char_t *tag)
{
	struct ynode *n = arena_alloc(ps->s, sizeof(*n));
	if (n == NULL)
		return NULL;
	memset(n, 0, sizeof(*n));
	n->pub.type = type;
	n->pub.line = clamp_u(m->line + 1);
	n->pub.col = clamp_u(m->column + 1);
	n->weight = 1;
	if (tag != NULL) {
		/* Give back the short form the author wrote for the standard tags. */
		static const char std[] = "tag:yaml.org,2002:";
		const char *t = (const char *)tag;
		char *copy;
		if (strncmp(t, std, sizeof(std) - 1) == 0) {
			size_t rest = strlen(t + sizeof(std) - 1);
			copy = arena_alloc(ps->s, rest + 3);
			if (copy != NULL) {
				memcpy(copy, "!!", 2);
				memcpy(copy + 2, t + sizeof(std) - 1, rest + 1);
			}
		} else {
			copy = arena_strndup(ps->s, t, strlen(t));
		}
		if (copy == NULL)
			return NULL;
		n->pub.tag = copy;
	}
	return n;
}

static int
push_kid(struct pstate *ps, struct ynode *n)
{
	if (ps->nkids == ps->capkids) {
		size_t cap = ps->capkids ? ps->capkids * 2 : 64;
		struct ynode **k = realloc(ps->kids, cap * sizeof(*k));
		if (k == NULL)
			return nomem(ps);
		ps->kids = k;
		ps->capkids = cap;
	}
	ps->kids[ps->nkids++] = n;
	return AAM_OK;
}

/*
 * Attaches a finished or just-started node to the open container (or makes
 * it the document root), checking what a mapping key must be.
 */
static int
attach(struct pstate *ps, struct ynode *n, const yaml_mark_t *m)
{
	if (ps->nlevels == 0) {
		ps->root = n;
		return AAM_OK;
	}
	struct level *top = &ps->levels[ps->nlevels - 1];
	if (top->node->pub.type == AAM_YAML_MAP && (ps->nkids - top->kid0) % 2 == 0) {
		const struct aam_yaml_node *k = &n->pub;
		if (k->type != AAM_YAML_SCALAR)
			return fail_at(ps, AAM_E_PARSE, m, "mapping keys must be scalars");
		if ((k->plain && k->tag == NULL && k->len == 2 && memcmp(k->str, "<<", 2) == 0) ||
		    (k->tag != NULL && strcmp(k->tag, "!!merge") == 0))
			return fail_at(ps, AAM_E_PARSE, m,
			               "merge keys ('<<') are not supported; write the keys out");
		struct hent *dup = htab_find(&ps->keys, top->map_id, k->str, k->len);
		if (dup != NULL) {
			char q[80];
			quote_key(q, k->str, k->len);
			return fail_at(ps, AAM_E_PARSE, m, "duplicate key '%s' (first at line %u)",
			               q, dup->line);
		}
		if (htab_put(&ps->keys, top->map_id, k->str, k->len, n, clamp_u(m->line + 1)) !=
		    AAM_OK)
			return nomem(ps);
	}
	return push_kid(ps, n);
}

static int
add_anchor(struct pstate *ps, const yaml_char_t *anchor, struct ynode *n, size_t doc)
{
	if (anchor == NULL)
		return AAM_OK;
	size_t len = strlen((const char *)anchor);
	char *name = arena_strndup(ps->s, (const char *)anchor, len);
	if (name == NULL || htab_put(&ps->anchors, doc, name, len, n, n->pub.line) != AAM_OK)
		return nomem(ps);
	return AAM_OK;
}

static int
on_scalar(struct pstate *ps, const yaml_event_t *ev, size_t doc)
{
	const yaml_mark_t *m = &ev->start_mark;
	size_t len = ev->data.scalar.length;
	if (len > ps->lim.max_scalar)
		return fail_at(ps, AAM_E_TOOBIG, m, "scalar longer than %zu bytes",
		               ps->lim.max_scalar);
	if (memchr(ev->data.scalar.value, '\0', len) != NULL)
		return fail_at(ps, AAM_E_PARSE, m, "scalar contains a NUL character");
	int rc = count_nodes(ps, 1, m);
	if (rc != AAM_OK)
		return rc;
	struct ynode *n = new_node(ps, AAM_YAML_SCALAR, m, ev->data.scalar.tag);
	char *str = n ? arena_strndup(ps->s, (const char *)ev->data.scalar.value, len) : NULL;
	if (str == NULL)
		return nomem(ps);
	n->pub.str = str;
	n->pub.len = len;
	n->pub.plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	n->complete = true;
	rc = attach(ps, n, m);
	return rc != AAM_OK ? rc : add_anchor(ps, ev->data.scalar.anchor, n, doc);
}

static int
on_start(struct pstate *ps, const yaml_event_t *ev, size_t doc)
{
	const yaml_mark_t *m = &ev->start_mark;
	bool map = ev->type == YAML_MAPPING_START_EVENT;
	if (ps->nlevels >= ps->lim.max_depth)
		return fail_at(ps, AAM_E_TOOBIG, m, "nesting deeper than %u levels",
		               ps->lim.max_depth);
	if (ps->nlevels == ps->caplevels) {
		size_t cap = ps->caplevels ? ps->caplevels * 2 : 16;
		struct level *l = realloc(ps->levels, cap * sizeof(*l));
		if (l == NULL)
			return nomem(ps);
		ps->levels = l;
		ps->caplevels = cap;
	}
	int rc = count_nodes(ps, 1, m);
	if (rc != AAM_OK)
		return rc;
	struct ynode *n = new_node(ps, map ? AAM_YAML_MAP : AAM_YAML_SEQ, m,
	                           map ? ev->data.mapping_start.tag : ev->data.sequence_start.tag);
	if (n == NULL)
		return nomem(ps);
	rc = attach(ps, n, m);
	if (rc == AAM_OK)
		rc = add_anchor(
		        ps, map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor, n,
		        doc);
	if (rc != AAM_OK)
		return rc;
	ps->levels[ps->nlevels++] =
	        (struct level){.node = n, .kid0 = ps->nkids, .map_id = ++ps->map_ids};
	return AAM_OK;
}

static int
on_end(struct pstate *ps)
{
	if (ps->nlevels == 0)
		return AAM_E_INTERNAL; /* libyaml balances its events; defensive only */
	struct level *top = &ps->levels[--ps->nlevels];
	struct ynode *n = top->node;
	size_t nk = ps->nkids - top->kid0;
	/* kids is NULL until the first child anywhere: no pointer arithmetic on it then. */
	struct ynode **kids = nk > 0 ? ps->kids + top->kid0 : NULL;
	bool map = n->pub.type == AAM_YAML_MAP;
	size_t cnt = map ? nk / 2 : nk;
	if (cnt > 0) {
		n->pub.items = arena_alloc(ps->s, cnt * sizeof(*n->pub.items));
		if (map)
			n->pub.keys = arena_alloc(ps->s, cnt * sizeof(*n->pub.keys));
		if (n->pub.items == NULL || (map && n->pub.keys == NULL))
			return nomem(ps);
	}
	size_t w = 1;
	unsigned h = 0;
	for (size_t i = 0; i < nk; i++) {
		struct ynode *k = kids[i];
		w = k->weight > SIZE_MAX - w ? SIZE_MAX : w + k->weight;
		if (k->height > h)
			h = k->height;
		if (!map)
			n->pub.items[i] = &k->pub;
		else if (i % 2 == 0)
			n->pub.keys[i / 2] = &k->pub;
		else
			n->pub.items[i / 2] = &k->pub;
	}
	n->pub.n = cnt;
	n->weight = w;
	n->height = h + 1;
	n->complete = true;
	ps->nkids = top->kid0;
	return AAM_OK;
}

static int
on_alias(struct pstate *ps, const yaml_event_t *ev, size_t doc)
{
	const yaml_mark_t *m = &ev->start_mark;
	const char *name = (const char *)ev->data.alias.anchor;
	char q[80];
	quote_key(q, name, strlen(name));
	struct hent *a = htab_find(&ps->anchors, doc, name, strlen(name));
	if (a == NULL)
		return fail_at(ps, AAM_E_PARSE, m, "undefined alias '*%s'", q);
	struct ynode *t = a->node;
	if (!t->complete)
		return fail_at(ps, AAM_E_PARSE, m, "alias '*%s' refers to a node that contains it",
		               q);
	if (ps->nlevels + t->height > ps->lim.max_depth)
		return fail_at(ps, AAM_E_TOOBIG, m,
		               "alias '*%s' nests deeper than %u levels when expanded", q,
		               ps->lim.max_depth);
	if (t->weight > ps->lim.max_nodes - ps->count)
		return fail_at(ps, AAM_E_TOOBIG, m,
		               "alias '*%s' expands past the limit of %zu nodes", q,
		               ps->lim.max_nodes);
	ps->count += t->weight;
	return attach(ps, t, m);
}

static int
libyaml_error(struct pstate *ps, const yaml_parser_t *p)
{
	if (p->error == YAML_MEMORY_ERROR)
		return nomem(ps);
	const char *problem = p->problem ? p->problem : "malformed YAML";
	unsigned line, col;
	if (p->error == YAML_READER_ERROR) {
		pos_at_offset(ps->data, ps->len, p->problem_offset, &line, &col);
		aam_yaml_error_set(ps->err, ps->name, line, col, "%s", problem);
		return AAM_E_PARSE;
	}
	line = clamp_u(p->problem_mark.line + 1);
	col = clamp_u(p->problem_mark.column + 1);
	int c = byte_at_mark(ps->data, ps->len, p->problem_mark.line, p->problem_mark.column);
	const char *hint = c == '\t' ? "; tabs cannot be used for indentation" : "";
	if (p->context != NULL)
		aam_yaml_error_set(ps->err, ps->name, line, col, "%s (%s at line %u)%s", problem,
		                   p->context, clamp_u(p->context_mark.line + 1), hint);
	else
		aam_yaml_error_set(ps->err, ps->name, line, col, "%s%s", problem, hint);
	return AAM_E_PARSE;
}

static int
add_doc(struct pstate *ps)
{
	aam_yaml_stream *s = ps->s;
	if (s->ndocs == s->capdocs) {
		size_t cap = s->capdocs ? s->capdocs * 2 : 4;
		const struct aam_yaml_node **d = realloc(s->docs, cap * sizeof(*d));
		if (d == NULL)
			return nomem(ps);
		s->docs = d;
		s->capdocs = cap;
	}
	s->docs[s->ndocs++] = &ps->root->pub;
	ps->root = NULL;
	return AAM_OK;
}

static int
run_events(struct pstate *ps, yaml_parser_t *p)
{
	for (;;) {
		yaml_event_t ev;
		if (!yaml_parser_parse(p, &ev))
			return libyaml_error(ps, p);
		int rc = AAM_OK;
		size_t doc = ps->s->ndocs;
		switch (ev.type) {
		case YAML_DOCUMENT_START_EVENT:
			if (ps->s->ndocs >= ps->lim.max_docs)
				rc = fail_at(ps, AAM_E_TOOBIG, &ev.start_mark,
				             "more than %zu documents", ps->lim.max_docs);
			break;
		case YAML_DOCUMENT_END_EVENT:
			rc = ps->root != NULL ? add_doc(ps) : AAM_E_INTERNAL;
			break;
		case YAML_SCALAR_EVENT:
			rc = on_scalar(ps, &ev, doc);
			break;
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			rc = on_start(ps, &ev, doc);
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			rc = on_end(ps);
			break;
		case YAML_ALIAS_EVENT:
			rc = on_alias(ps, &ev, doc);
			break;
		default:
			break;
		}
		bool end = ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
		if (rc == AAM_E_INTERNAL)
			aam_yaml_error_set(ps->err, ps->name, 0, 0,
			                   "internal error in YAML loader");
		if (rc != AAM_OK || end)
			return rc;
	}
}

static void
limits_resolve(struct aam_yaml_limits *o, const struct aam_yaml_limits *lim)
{
	struct aam_yaml_limits z = {0};
	if (lim == NULL)
		lim = &z;
	o->max_bytes = lim->max_bytes ? lim->max_bytes : AAM_YAML_DEFAULT_MAX_BYTES;
	o->max_depth = lim->max_depth ? lim->max_depth : AAM_YAML_DEFAULT_MAX_DEPTH;
	o->max_nodes = lim->max_nodes ? lim->max_nodes : AAM_YAML_DEFAULT_MAX_NODES;
	o->max_scalar = lim->max_scalar ? lim->max_scalar : AAM_YAML_DEFAULT_MAX_SCALAR;
	o->max_docs = lim->max_docs ? lim->max_docs : AAM_YAML_DEFAULT_MAX_DOCS;
}

static uint64_t
random_seed(const void *salt)
{
	uint64_t seed;
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
		seed = (uint64_t)(uintptr_t)salt * 0x9e3779b97f4a7c15ull;
	return seed;
}

/* DATA is known to be within the size limit. */
static int
parse_bytes(const char *name, const unsigned char *data, size_t len,
            const struct aam_yaml_limits *lim, aam_yaml_stream **out, struct aam_yaml_error *err)
{
	struct pstate ps = {.lim = *lim, .err = err, .data = data, .len = len};
	ps.s = calloc(1, sizeof(*ps.s));
	if (ps.s == NULL)
		return nomem(&ps);
	ps.s->name = strdup(name);
	ps.name = ps.s->name;
	if (ps.s->name == NULL) {
		aam_yaml_stream_free(ps.s);
		ps.name = name;
		return nomem(&ps);
	}
	ps.anchors.seed = random_seed(&ps);
	ps.keys.seed = ps.anchors.seed ^ 0x5bd1e995u;

	yaml_parser_t p;
	int rc;
	if (!yaml_parser_initialize(&p)) {
		rc = nomem(&ps);
	} else {
		yaml_parser_set_input_string(&p, data, len);
		rc = run_events(&ps, &p);
		yaml_parser_delete(&p);
	}
	free(ps.levels);
	free(ps.kids);
	free(ps.anchors.e);
	free(ps.keys.e);
	if (rc != AAM_OK) {
		/* The error names the file, so copy it before the stream goes. */
		if (err != NULL && err->file[0] == '\0')
			snprintf(err->file, sizeof(err->file), "%s", name);
		aam_yaml_stream_free(ps.s);
		return rc;
	}
	*out = ps.s;
	return AAM_OK;
}

static int
too_big(const char *name, const unsigned char *data, size_t len, size_t max,
        struct aam_yaml_error *err)
{
	unsigned line, col;
	pos_at_offset(data, len, max, &line, &col);
	aam_yaml_error_set(err, name, line, col, "input is larger than the limit of %zu bytes",
	                   max);
	return AAM_E_TOOBIG;
}

int
aam_yaml_parse(const char *name, const void *data, size_t len, const struct aam_yaml_limits *lim,
               aam_yaml_stream **out, struct aam_yaml_error *err)
{
	if (name == NULL)
		name = "<input>";
	if (err != NULL)
		memset(err, 0, sizeof(*err));
	if (out == NULL || (data == NULL && len > 0)) {
		aam_yaml_error_set(err, name, 0, 0, "invalid arguments");
		return AAM_E_INVAL;
	}
	*out = NULL;
	struct aam_yaml_limits l;
	limits_resolve(&l, lim);
	const unsigned char *d = data ? data : (const unsigned char *)"";
	if (len > l.max_bytes)
		return too_big(name, d, len, l.max_bytes, err);
	return parse_bytes(name, d, len, &l, out, err);
}

int
aam_yaml_parse_file(const char *path, const struct aam_yaml_limits *lim, aam_yaml_stream **out,
                    struct aam_yaml_error *err)
{
	if (err != NULL)
		memset(err, 0, sizeof(*err));
	if (path == NULL || out == NULL) {
		aam_yaml_error_set(err, path, 0, 0, "invalid arguments");
		return AAM_E_INVAL;
	}
	*out = NULL;
	struct aam_yaml_limits l;
	limits_resolve(&l, lim);
	char ebuf[128];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		aam_yaml_error_set(err, path, 0, 0, "cannot open: %s",
		                   strerror_r(e, ebuf, sizeof(ebuf)));
		return e == ENOENT ? AAM_E_NOTFOUND : e == EACCES ? AAM_E_PERM : AAM_E_IO;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
		close(fd);
		aam_yaml_error_set(err, path, 0, 0, "cannot read: not a regular file");
		return AAM_E_IO;
	}
	/* Read at most one byte past the limit: enough to know it is too big. */
	size_t cap = l.max_bytes + 1, len = 0;
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size < cap)
		cap = (size_t)st.st_size + 1;
	unsigned char *buf = malloc(cap);
	int rc = AAM_OK;
	while (buf != NULL && len <= l.max_bytes) {
		if (len == cap) {
			size_t ncap = cap * 2 > l.max_bytes + 1 ? l.max_bytes + 1 : cap * 2;
			unsigned char *nb = realloc(buf, ncap);
			if (nb == NULL) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap = ncap;
		}
		ssize_t r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			aam_yaml_error_set(err, path, 0, 0, "cannot read: %s",
			                   strerror_r(errno, ebuf, sizeof(ebuf)));
			rc = AAM_E_IO;
			break;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	if (buf == NULL) {
		aam_yaml_error_set(err, path, 0, 0, "out of memory");
		return AAM_E_NOMEM;
	}
	if (rc == AAM_OK)
		rc = len > l.max_bytes ? too_big(path, buf, len, l.max_bytes, err)
		                       : parse_bytes(path, buf, len, &l, out, err);
	free(buf);
	return rc;
}

void
aam_yaml_stream_free(aam_yaml_stream *s)
{
	if (s == NULL)
		return;
	struct chunk *c = s->chunks;
	while (c != NULL) {
		struct chunk *next = c->next;
		free(c);
		c = next;
	}
	free(s->docs);
	free(s->name);
	free(s);
}

size_t
aam_yaml_stream_count(const aam_yaml_stream *s)
{
	return s ? s->ndocs : 0;
}

const struct aam_yaml_node *
aam_yaml_stream_doc(const aam_yaml_stream *s, size_t i)
{
	return s && i < s->ndocs ? s->docs[i] : NULL;
}

const char *
aam_yaml_stream_name(const aam_yaml_stream *s)
{
	return s ? s->name : NULL;
}

const struct aam_yaml_node *
aam_yaml_map_get(const struct aam_yaml_node *map, const char *key)
{
	if (map == NULL || map->type != AAM_YAML_MAP || key == NULL)
		return NULL;
	size_t len = strlen(key);
	for (size_t i = 0; i < map->n; i++) {
		const struct aam_yaml_node *k = map->keys[i];
		if (k->len == len && memcmp(k->str, key, len) == 0)
			return map->items[i];
	}
	return NULL;
}

/* ---- YAML 1.2 core schema ---- */

static bool
eq(const struct aam_yaml_node *n, const char *s)
{
	size_t l = strlen(s);
	return n->len == l && memcmp(n->str, s, l) == 0;
}

static bool
text_is_null(const struct aam_yaml_node *n)
{
	return n->len == 0 || eq(n, "~") || eq(n, "null") || eq(n, "Null") || eq(n, "NULL");
}

/* 1 true, 0 false, -1 not a core-schema boolean. */
static int
text_bool(const struct aam_yaml_node *n)
{
	if (eq(n, "true") || eq(n, "True") || eq(n, "TRUE"))
		return 1;
	if (eq(n, "false") || eq(n, "False") || eq(n, "FALSE"))
		return 0;
	return -1;
}

static int
digit_val(char c, unsigned base)
{
	int v = -1;
	if (c >= '0' && c <= '9')
		v = c - '0';
	else if (c >= 'a' && c <= 'f')
		v = c - 'a' + 10;
	else if (c >= 'A' && c <= 'F')
		v = c - 'A' + 10;
	return v >= 0 && (unsigned)v < base ? v : -1;
}

/* 0 ok, -1 not an integer, -2 out of range. */
static int
text_int(const struct aam_yaml_node *n, int64_t *out)
{
	const char *s = n->str;
	size_t len = n->len, i = 0;
	unsigned base = 10;
	bool neg = false;
	if (len > 2 && s[0] == '0' && (s[1] == 'o' || s[1] == 'x')) {
		base = s[1] == 'o' ? 8 : 16;
		i = 2;
	} else if (len > 0 && (s[0] == '-' || s[0] == '+')) {
		neg = s[0] == '-';
		i = 1;
	}
	if (i == len)
		return -1;
	uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	bool range = true;
	for (; i < len; i++) {
		int d = digit_val(s[i], base);
		if (d < 0)
			return -1;
		if (v > (lim - (uint64_t)d) / base)
			range = false;
		else
			v = v * base + (uint64_t)d;
	}
	if (!range)
		return -2;
	if (out != NULL)
		*out = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
	return 0;
}

static size_t
skip_digits(const char *s, size_t i, size_t len)
{
	while (i < len && s[i] >= '0' && s[i] <= '9')
		i++;
	return i;
}

/* 0 ok, -1 not a float, -2 out of range, -3 NaN. */
static int
text_float(const struct aam_yaml_node *n, double *out)
{
	const char *s = n->str;
	size_t len = n->len, i = 0;
	if (eq(n, ".nan") || eq(n, ".NaN") || eq(n, ".NAN"))
		return -3;
	if (len > 0 && (s[0] == '-' || s[0] == '+'))
		i = 1;
	const char *r = s + i;
	size_t rl = len - i;
	if ((rl == 4 && (memcmp(r, ".inf", 4) == 0 || memcmp(r, ".Inf", 4) == 0 ||
	                 memcmp(r, ".INF", 4) == 0))) {
		if (out != NULL)
			*out = s[0] == '-' ? -INFINITY : INFINITY;
		return 0;
	}
	/* [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
	size_t j = skip_digits(s, i, len);
	if (j > i) {
		if (j < len && s[j] == '.')
			j = skip_digits(s, j + 1, len);
	} else {
		if (j >= len || s[j] != '.')
			return -1;
		size_t k = skip_digits(s, j + 1, len);
		if (k == j + 1)
			return -1;
		j = k;
	}
	if (j < len && (s[j] == 'e' || s[j] == 'E')) {
		j++;
		if (j < len && (s[j] == '-' || s[j] == '+'))
			j++;
		size_t k = skip_digits(s, j, len);
		if (k == j)
			return -1;
		j = k;
	}
	if (j != len)
		return -1;
	errno = 0;
	double v = strtod(s, NULL);
	if (errno == ERANGE && isinf(v))
		return -2;
	if (out != NULL)
		*out = v;
	return 0;
}

static enum aam_yaml_kind
tag_kind(const char *tag)
{
	static const struct {
		const char *tag;
		enum aam_yaml_kind kind;
	} tags[] = {
	        {"!", AAM_YAML_K_STR},       {"!!str", AAM_YAML_K_STR},
	        {"!!null", AAM_YAML_K_NULL}, {"!!bool", AAM_YAML_K_BOOL},
	        {"!!int", AAM_YAML_K_INT},   {"!!float", AAM_YAML_K_FLOAT},
	};
	for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++)
		if (strcmp(tag, tags[i].tag) == 0)
			return tags[i].kind;
	return AAM_YAML_K_OTHER;
}

enum aam_yaml_kind
aam_yaml_kind(const struct aam_yaml_node *n)
{
	if (n == NULL)
		return AAM_YAML_K_NULL;
	if (n->type == AAM_YAML_SEQ)
		return AAM_YAML_K_SEQ;
	if (n->type == AAM_YAML_MAP)
		return AAM_YAML_K_MAP;
	if (n->tag != NULL)
		return tag_kind(n->tag);
	if (!n->plain)
		return AAM_YAML_K_STR;
	if (text_is_null(n))
		return AAM_YAML_K_NULL;
	if (text_bool(n) >= 0)
		return AAM_YAML_K_BOOL;
	if (text_int(n, NULL) != -1)
		return AAM_YAML_K_INT;
	if (text_float(n, NULL) != -1)
		return AAM_YAML_K_FLOAT;
	return AAM_YAML_K_STR;
}

const char *
aam_yaml_kind_name(enum aam_yaml_kind k)
{
	switch (k) {
	case AAM_YAML_K_NULL:
		return "null";
	case AAM_YAML_K_BOOL:
		return "a boolean";
	case AAM_YAML_K_INT:
		return "an integer";
	case AAM_YAML_K_FLOAT:
		return "a float";
	case AAM_YAML_K_STR:
		return "a string";
	case AAM_YAML_K_SEQ:
		return "a sequence";
	case AAM_YAML_K_MAP:
		return "a mapping";
	case AAM_YAML_K_OTHER:
		break;
	}
	return "a scalar with an unsupported tag";
}

bool
aam_yaml_is_null(const struct aam_yaml_node *n)
{
	return n != NULL && n->type == AAM_YAML_SCALAR && aam_yaml_kind(n) == AAM_YAML_K_NULL;
}

static int
missing(const char *file, struct aam_yaml_error *err)
{
	aam_yaml_error_set(err, file, 0, 0, "missing value");
	return AAM_E_INVAL;
}

static int
mismatch(const struct aam_yaml_node *n, const char *file, struct aam_yaml_error *err,
         const char *want, enum aam_yaml_kind got, const char *hint)
{
	aam_yaml_error_at(err, file, n, "expected %s, got %s%s", want, aam_yaml_kind_name(got),
	                  hint);
	return AAM_E_PARSE;
}

int
aam_yaml_get_str(const struct aam_yaml_node *n, const char *file, const char **out,
                 struct aam_yaml_error *err)
{
	if (n == NULL)
		return missing(file, err);
	enum aam_yaml_kind k = aam_yaml_kind(n);
	if (k != AAM_YAML_K_STR)
		return mismatch(n, file, err, "a string", k,
		                n->type == AAM_YAML_SCALAR && k != AAM_YAML_K_OTHER
		                        ? " (quote it to make it a string)"
		                        : "");
	*out = n->str;
	return AAM_OK;
}

int
aam_yaml_get_bool(const struct aam_yaml_node *n, const char *file, bool *out,
                  struct aam_yaml_error *err)
{
	if (n == NULL)
		return missing(file, err);
	enum aam_yaml_kind k = aam_yaml_kind(n);
	int v = k == AAM_YAML_K_BOOL ? text_bool(n) : -1;
	if (v < 0) {
		/* YAML 1.1 spelled booleans this way; YAML 1.2 and this loader do not. */
		static const char *const old[] = {"yes", "no",  "on", "off", "y",   "n",
		                                  "Yes", "No",  "On", "Off", "YES", "NO",
		                                  "ON",  "OFF", "Y",  "N"};
		bool is_old = false;
		for (size_t i = 0; n->type == AAM_YAML_SCALAR && i < sizeof(old) / sizeof(old[0]);
		     i++)
			is_old = is_old || eq(n, old[i]);
		if (k == AAM_YAML_K_BOOL)
			return mismatch(n, file, err, "true or false", AAM_YAML_K_OTHER, "");
		return mismatch(n, file, err, "a boolean (true or false)", k,
		                is_old ? " (yes/no/on/off are strings in YAML 1.2)" : "");
	}
	*out = v == 1;
	return AAM_OK;
}

int
aam_yaml_get_int64(const struct aam_yaml_node *n, const char *file, int64_t *out,
                   struct aam_yaml_error *err)
{
	if (n == NULL)
		return missing(file, err);
	enum aam_yaml_kind k = aam_yaml_kind(n);
	if (k != AAM_YAML_K_INT)
		return mismatch(n, file, err, "an integer", k, "");
	int rc = text_int(n, out);
	if (rc == -2) {
		aam_yaml_error_at(err, file, n, "integer out of range (64-bit signed)");
		return AAM_E_PARSE;
	}
	if (rc != 0) {
		aam_yaml_error_at(err, file, n, "expected an integer, got a malformed !!int");
		return AAM_E_PARSE;
	}
	return AAM_OK;
}

int
aam_yaml_get_double(const struct aam_yaml_node *n, const char *file, double *out,
                    struct aam_yaml_error *err)
{
	if (n == NULL)
		return missing(file, err);
	enum aam_yaml_kind k = aam_yaml_kind(n);
	if (k == AAM_YAML_K_INT) {
		int64_t v;
		if (text_int(n, &v) == 0) {
			*out = (double)v;
			return AAM_OK;
		}
	} else if (k != AAM_YAML_K_FLOAT) {
		return mismatch(n, file, err, "a number", k, "");
	}
	int rc = text_float(n, out);
	if (rc == 0)
		return AAM_OK;
	if (rc == -3)
		aam_yaml_error_at(err, file, n, "NaN is not accepted as a number");
	else if (rc == -2 || k == AAM_YAML_K_INT)
		aam_yaml_error_at(err, file, n, "number out of range");
	else
		aam_yaml_error_at(err, file, n, "expected a number, got a malformed !!float");
	return AAM_E_PARSE;
}

/* ---- JSON ---- */

static int
scalar_to_json(const struct aam_yaml_node *n, json_t **out, struct aam_yaml_error *err,
               const char *file)
{
	json_t *j = NULL;
	int rc = AAM_OK;
	switch (aam_yaml_kind(n)) {
	case AAM_YAML_K_NULL:
		j = json_null();
		break;
	case AAM_YAML_K_BOOL: {
		bool b;
		rc = aam_yaml_get_bool(n, file, &b, err);
		j = rc == AAM_OK ? json_boolean(b) : NULL;
		break;
	}
	case AAM_YAML_K_INT: {
		int64_t v;
		rc = aam_yaml_get_int64(n, file, &v, err);
		j = rc == AAM_OK ? json_integer((json_int_t)v) : NULL;
		break;
	}
	case AAM_YAML_K_FLOAT: {
		double d;
		rc = aam_yaml_get_double(n, file, &d, err);
		if (rc == AAM_OK && !isfinite(d)) {
			aam_yaml_error_at(err, file, n, "infinity cannot be represented in JSON");
			rc = AAM_E_PARSE;
		}
		j = rc == AAM_OK ? json_real(d) : NULL;
		break;
	}
	case AAM_YAML_K_STR:
		j = json_stringn(n->str, n->len);
		if (j == NULL) {
			aam_yaml_error_at(err, file, n, "string is not valid UTF-8");
			return AAM_E_PARSE;
		}
		break;
	default:
		aam_yaml_error_at(err, file, n, "unsupported tag '%s'", n->tag ? n->tag : "?");
		return AAM_E_PARSE;
	}
	if (rc != AAM_OK)
		return rc;
	if (j == NULL) {
		aam_yaml_error_set(err, file, 0, 0, "out of memory");
		return AAM_E_NOMEM;
	}
	*out = j;
	return AAM_OK;
}

int
aam_yaml_to_json(const struct aam_yaml_node *n, json_t **out, struct aam_yaml_error *err,
                 const char *file)
{
	if (n == NULL || out == NULL)
		return missing(file, err);
	*out = NULL;
	if (n->type == AAM_YAML_SCALAR)
		return scalar_to_json(n, out, err, file);
	if (n->tag != NULL && strcmp(n->tag, n->type == AAM_YAML_MAP ? "!!map" : "!!seq") != 0) {
		aam_yaml_error_at(err, file, n, "unsupported tag '%s'", n->tag);
		return AAM_E_PARSE;
	}
	json_t *c = n->type == AAM_YAML_MAP ? json_object() : json_array();
	if (c == NULL) {
		aam_yaml_error_set(err, file, 0, 0, "out of memory");
		return AAM_E_NOMEM;
	}
	/* Depth is bounded: the loader limits nesting with aliases expanded. */
	for (size_t i = 0; i < n->n; i++) {
		json_t *v;
		int rc = aam_yaml_to_json(n->items[i], &v, err, file);
		if (rc == AAM_OK) {
			int r = n->type == AAM_YAML_MAP ? json_object_set_new(c, n->keys[i]->str, v)
			                                : json_array_append_new(c, v);
			if (r != 0) {
				aam_yaml_error_at(err, file,
				                  n->type == AAM_YAML_MAP ? n->keys[i] : n,
				                  "cannot store value in JSON");
				rc = AAM_E_PARSE;
			}
		}
		if (rc != AAM_OK) {
			json_decref(c);
			return rc;
		}
	}
	*out = c;
	return AAM_OK;
}
