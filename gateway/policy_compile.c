/*
 * Compiling a loaded policy list into a set: sorting, the indexes that
 * let a decision touch only the policies that can apply, the canonical
 * form and its SHA-256.
 *
 * Indexes (all built once, read without locks or allocation):
 *   - exact SPIFFE IDs: a hash table from the ID to the policies naming it;
 *   - SPIFFE patterns (one more segment, or any depth): a trie over the trust domain
 *     and path segments whose edges live in the same hash table, so a
 *     request walks it one segment at a time;
 *   - policies with no workload selector (owner/team/... only): a list
 *     checked for every request;
 *   - per policy, model routes and exact tool resources in the hash
 *     table, and a short list of its pattern resources.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "aam/err.h"
#include "common/spiffe.h"
#include "gateway/policy_internal.h"

struct build {
	gw_policy_set *s;
	size_t ntcap, nlcap, nrcap;
	bool nomem;
};

static bool
grow(void **p, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return true;
	size_t n = *cap ? *cap : 64;
	while (n < need)
		n *= 2;
	void *q = realloc(*p, n * elem);
	if (q == NULL)
		return false;
	*p = q;
	*cap = n;
	return true;
}

static void
list_append(struct build *b, uint32_t *head, uint32_t *tail, uint32_t v)
{
	gw_policy_set *s = b->s;
	size_t cap = b->nlcap;
	if (!grow((void **)&s->lval, &cap, s->nlinks + 1, sizeof(uint32_t)) ||
	    !grow((void **)&s->lnext, &b->nlcap, s->nlinks + 1, sizeof(uint32_t))) {
		b->nomem = true;
		return;
	}
	/* Both arrays grow to the same capacity, so one cap is enough. */
	uint32_t id = (uint32_t)s->nlinks++;
	s->lval[id] = v;
	s->lnext[id] = POL_NIL;
	if (*head == POL_NIL)
		*head = id;
	else
		s->lnext[*tail] = id;
	*tail = id;
}

static struct pol_hent *
ht_upsert(struct build *b, uint32_t ns, uint32_t parent, const char *key, size_t len, bool *isnew)
{
	gw_policy_set *s = b->s;
	uint64_t h = pol_hash(ns, parent, key, len);
	size_t mask = s->htcap - 1;
	for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
		struct pol_hent *e = &s->ht[i];
		if (e->key == NULL) {
			*e = (struct pol_hent){.h = h,
			                       .key = key,
			                       .klen = (uint32_t)len,
			                       .parent = parent,
			                       .ns = ns,
			                       .val = POL_NIL,
			                       .tail = POL_NIL};
			*isnew = true;
			return e;
		}
		if (e->h == h && e->ns == ns && e->parent == parent && e->klen == len &&
		    memcmp(e->key, key, len) == 0) {
			*isnew = false;
			return e;
		}
	}
}

static uint32_t
tnode_new(struct build *b)
{
	gw_policy_set *s = b->s;
	if (!grow((void **)&s->tnodes, &b->ntcap, s->ntnodes + 1, sizeof(*s->tnodes))) {
		b->nomem = true;
		return POL_NIL;
	}
	s->tnodes[s->ntnodes] = (struct pol_tnode){
	        .one = POL_NIL, .any = POL_NIL, .one_tail = POL_NIL, .any_tail = POL_NIL};
	return (uint32_t)s->ntnodes++;
}

/* The trie node for BASE ("spiffe://td/a/b"), created as needed. */
static uint32_t
trie_node(struct build *b, const char *base)
{
	const char *p = base + strlen("spiffe://");
	uint32_t node = 0;
	while (*p != '\0') {
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		bool isnew;
		struct pol_hent *e = ht_upsert(b, POL_NS_EDGE, node, p, len, &isnew);
		if (isnew)
			e->val = tnode_new(b);
		if (e->val == POL_NIL)
			return POL_NIL;
		node = e->val;
		p += len;
		if (*p == '/')
			p++;
	}
	return node;
}

static struct pol_route_ent *
route_ent(struct build *b, uint32_t pol, const char *route, size_t len)
{
	gw_policy_set *s = b->s;
	bool isnew;
	struct pol_hent *e = ht_upsert(b, POL_NS_ROUTE, pol, route, len, &isnew);
	if (isnew) {
		if (!grow((void **)&s->routes, &b->nrcap, s->nroutes + 1, sizeof(*s->routes))) {
			b->nomem = true;
			return NULL;
		}
		s->routes[s->nroutes] = (struct pol_route_ent){.allow = -1, .deny = -1, .rl = -1};
		e->val = (uint32_t)s->nroutes++;
	}
	return &s->routes[e->val];
}

static size_t
count_char(const char *s, char c)
{
	size_t n = 0;
	for (; *s; s++)
		n += *s == c;
	return n;
}

static void
index_policy(struct build *b, uint32_t i)
{
	gw_policy_set *s = b->s;
	const struct gw_pol *p = &s->pols[i];
	if (p->workloads.n == 0)
		list_append(b, &s->wild, &s->wild_tail, i);
	for (size_t w = 0; w < p->workloads.n; w++) {
		if (p->wl_kind[w] == AAM_SPIFFE_PATTERN_EXACT) {
			bool isnew;
			struct pol_hent *e = ht_upsert(b, POL_NS_WORKLOAD, 0, p->workloads.v[w].s,
			                               p->workloads.v[w].len, &isnew);
			list_append(b, &e->val, &e->tail, i);
			continue;
		}
		uint32_t node = trie_node(b, p->wl_base[w]);
		if (node == POL_NIL)
			return;
		struct pol_tnode *t = &s->tnodes[node];
		if (p->wl_kind[w] == AAM_SPIFFE_PATTERN_ONE)
			list_append(b, &t->one, &t->one_tail, i);
		else
			list_append(b, &t->any, &t->any_tail, i);
	}
	struct pol_route_ent *r;
	for (size_t k = 0; k < p->allow.n; k++)
		if (!p->allow.all && (r = route_ent(b, i, p->allow.v[k].s, p->allow.v[k].len)))
			r->allow = (int32_t)k;
	for (size_t k = 0; k < p->deny.n; k++)
		if (!p->deny.all && (r = route_ent(b, i, p->deny.v[k].s, p->deny.v[k].len)))
			r->deny = (int32_t)k;
	for (size_t k = 0; k < p->nrl; k++)
		if ((r = route_ent(b, i, p->rl[k].route.s, p->rl[k].route.len)))
			r->rl = (int32_t)k;
	for (size_t k = 0; k < p->ntools; k++) {
		const struct pol_tool *t = &p->tools[k];
		if (t->kind == POL_M_EXACT) {
			bool isnew;
			struct pol_hent *e = ht_upsert(b, POL_NS_RESOURCE, i, t->resource.s,
			                               t->resource.len, &isnew);
			list_append(b, &e->val, &e->tail, (uint32_t)k);
		} else {
			list_append(b, &s->tool_patterns[i], &s->tool_patterns_tail[i],
			            (uint32_t)k);
		}
	}
}

static int
cmp_pol(const void *a, const void *b)
{
	return strcmp(((const struct gw_pol *)a)->name, ((const struct gw_pol *)b)->name);
}

/* ---- canonical form ----------------------------------------------------- */

static void
jstr(struct aam_buf *b, const char *s, size_t len)
{
	aam_buf_append_byte(b, '"');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			aam_buf_append_byte(b, '\\');
			aam_buf_append_byte(b, c);
		} else if (c < 0x20 || c == 0x7f) {
			aam_buf_printf(b, "\\u%04x", c);
		} else {
			aam_buf_append_byte(b, c);
		}
	}
	aam_buf_append_byte(b, '"');
}

static void
jcstr(struct aam_buf *b, const char *s)
{
	jstr(b, s, strlen(s));
}

static void
jkey(struct aam_buf *b, bool *first, const char *k)
{
	if (!*first)
		aam_buf_append_byte(b, ',');
	*first = false;
	jcstr(b, k);
	aam_buf_append_byte(b, ':');
}

static void
jlist(struct aam_buf *b, bool *first, const char *k, const struct pol_list *l)
{
	if (l->n == 0)
		return;
	jkey(b, first, k);
	aam_buf_append_byte(b, '[');
	for (size_t i = 0; i < l->n; i++) {
		if (i)
			aam_buf_append_byte(b, ',');
		jstr(b, l->v[i].s, l->v[i].len);
	}
	aam_buf_append_byte(b, ']');
}

static void
jnum(struct aam_buf *b, double d)
{
	aam_buf_printf(b, "%.17g", d);
}

static void
jscalar(struct aam_buf *b, const struct pol_scalar *v)
{
	switch (v->t) {
	case POL_S_STR:
		jstr(b, v->s, v->len);
		break;
	case POL_S_INT:
		aam_buf_printf(b, "%lld", (long long)v->i);
		break;
	case POL_S_REAL:
		jnum(b, v->d);
		break;
	case POL_S_BOOL:
		aam_buf_append_str(b, v->b ? "true" : "false");
		break;
	}
}

static void
jlimits(struct aam_buf *b, const struct pol_limits *l)
{
	bool f = true;
	aam_buf_append_byte(b, '{');
	if (l->max_parallel) {
		jkey(b, &f, "max_parallel");
		aam_buf_printf(b, "%lld", (long long)l->max_parallel);
	}
	if (l->max_tokens) {
		jkey(b, &f, "max_tokens");
		aam_buf_printf(b, "%lld", (long long)l->max_tokens);
	}
	if (l->rpm) {
		jkey(b, &f, "rpm");
		aam_buf_printf(b, "%lld", (long long)l->rpm);
	}
	if (l->tpm) {
		jkey(b, &f, "tpm");
		aam_buf_printf(b, "%lld", (long long)l->tpm);
	}
	aam_buf_append_byte(b, '}');
}

static bool
limits_set(const struct pol_limits *l)
{
	return l->rpm || l->tpm || l->max_tokens || l->max_parallel;
}

static void
canon_models(struct aam_buf *b, const struct gw_pol *p)
{
	bool f = true;
	aam_buf_append_byte(b, '{');
	jlist(b, &f, "allow", &p->allow);
	if (p->has_daily || p->has_monthly) {
		bool g = true;
		jkey(b, &f, "budget");
		aam_buf_append_byte(b, '{');
		if (p->has_daily) {
			jkey(b, &g, "daily_usd");
			jnum(b, p->daily_usd);
		}
		if (p->has_monthly) {
			jkey(b, &g, "monthly_usd");
			jnum(b, p->monthly_usd);
		}
		aam_buf_append_byte(b, '}');
	}
	jlist(b, &f, "deny", &p->deny);
	if (limits_set(&p->limits)) {
		jkey(b, &f, "limits");
		jlimits(b, &p->limits);
	}
	jlist(b, &f, "regions", &p->regions);
	if (p->nrl) {
		bool g = true;
		jkey(b, &f, "route_limits");
		aam_buf_append_byte(b, '{');
		for (size_t i = 0; i < p->nrl; i++) {
			jkey(b, &g, p->rl[i].route.s);
			jlimits(b, &p->rl[i].l);
		}
		aam_buf_append_byte(b, '}');
	}
	aam_buf_append_byte(b, '}');
}

static void
canon_tool(struct aam_buf *b, const struct pol_tool *t)
{
	bool f = true;
	aam_buf_append_byte(b, '{');
	jlist(b, &f, "actions", &t->actions);
	if (t->credential.s) {
		jkey(b, &f, "credential");
		jstr(b, t->credential.s, t->credential.len);
	}
	jlist(b, &f, "deny", &t->deny);
	if (t->rpm) {
		jkey(b, &f, "limits");
		aam_buf_printf(b, "{\"rpm\":%lld}", (long long)t->rpm);
	}
	jkey(b, &f, "resource");
	jstr(b, t->resource.s, t->resource.len);
	if (t->nconds) {
		jkey(b, &f, "when");
		aam_buf_append_byte(b, '[');
		for (size_t i = 0; i < t->nconds; i++) {
			const struct pol_cond *c = &t->conds[i];
			aam_buf_append_str(b, i ? ",[" : "[");
			jcstr(b, c->param);
			aam_buf_append_byte(b, ',');
			jcstr(b, pol_op_name(c->op));
			aam_buf_append_byte(b, ',');
			if (c->op == POL_OP_IN || c->op == POL_OP_NOT_IN) {
				aam_buf_append_byte(b, '[');
				for (size_t k = 0; k < c->nset; k++) {
					if (k)
						aam_buf_append_byte(b, ',');
					jscalar(b, &c->set[k]);
				}
				aam_buf_append_byte(b, ']');
			} else if (c->op == POL_OP_PRESENT || c->op == POL_OP_ABSENT) {
				aam_buf_append_str(b, "true");
			} else {
				jscalar(b, &c->v);
			}
			aam_buf_append_byte(b, ']');
		}
		aam_buf_append_byte(b, ']');
	}
	aam_buf_append_byte(b, '}');
}

static const char *const facet_names[] = {"identity", "policy", "action", "parameters",
                                          "outcome",  "model",  "cost"};

static void
canon_policy(struct aam_buf *b, const struct gw_pol *p)
{
	bool f = true, g;
	aam_buf_printf(b, "{\"apiVersion\":\"%s\",\"kind\":\"%s\",\"metadata\":{",
	               GW_POLICY_API_VERSION, GW_POLICY_KIND);
	g = true;
	if (p->description) {
		jkey(b, &g, "description");
		jcstr(b, p->description);
	}
	jkey(b, &g, "name");
	jcstr(b, p->name);
	aam_buf_append_str(b, "},\"spec\":{");

	/* audit */
	jkey(b, &f, "audit");
	aam_buf_append_byte(b, '{');
	g = true;
	jlist(b, &g, "plain", &p->plain);
	jkey(b, &g, "record");
	aam_buf_append_byte(b, '[');
	bool h = true;
	for (size_t i = 0; i < sizeof(facet_names) / sizeof(facet_names[0]); i++) {
		if (!(p->audit & (1u << i)))
			continue;
		if (!h)
			aam_buf_append_byte(b, ',');
		h = false;
		jcstr(b, facet_names[i]);
	}
	aam_buf_append_str(b, "]}");

	/* conditions */
	if (p->has_conditions) {
		jkey(b, &f, "conditions");
		aam_buf_append_byte(b, '{');
		g = true;
		jlist(b, &g, "environment", &p->cond_envs);
		if (p->has_not_after) {
			jkey(b, &g, "not_after");
			aam_buf_printf(b, "%lld", (long long)p->not_after);
		}
		if (p->has_not_before) {
			jkey(b, &g, "not_before");
			aam_buf_printf(b, "%lld", (long long)p->not_before);
		}
		if (p->nwindows) {
			jkey(b, &g, "time");
			aam_buf_append_byte(b, '[');
			for (size_t i = 0; i < p->nwindows; i++) {
				const struct pol_window *w = &p->windows[i];
				aam_buf_printf(b, "%s{\"days\":%u", i ? "," : "", w->days);
				if (w->has_hours)
					aam_buf_printf(b, ",\"hours\":[%d,%d]", w->start, w->end);
				aam_buf_append_byte(b, '}');
			}
			aam_buf_append_byte(b, ']');
		}
		aam_buf_append_byte(b, '}');
	}

	/* credentials: only one value is ever accepted */
	jkey(b, &f, "credentials");
	aam_buf_append_str(b, "{\"expose_to_agent\":false,\"injection\":\"runtime\"}");

	/* identity */
	jkey(b, &f, "identity");
	aam_buf_append_byte(b, '{');
	g = true;
	jlist(b, &g, "deployment", &p->deployments);
	jlist(b, &g, "environment", &p->envs);
	jlist(b, &g, "owner", &p->owners);
	jkey(b, &g, "require_attested");
	aam_buf_append_str(b, p->require_attested ? "true" : "false");
	jlist(b, &g, "team", &p->teams);
	jlist(b, &g, "workload", &p->workloads);
	aam_buf_append_byte(b, '}');

	if (p->has_models) {
		jkey(b, &f, "models");
		canon_models(b, p);
	}
	if (p->ntools) {
		jkey(b, &f, "tools");
		aam_buf_append_byte(b, '[');
		for (size_t i = 0; i < p->ntools; i++) {
			if (i)
				aam_buf_append_byte(b, ',');
			canon_tool(b, &p->tools[i]);
		}
		aam_buf_append_byte(b, ']');
	}
	aam_buf_append_str(b, "}}");
}

int
gw_policy_set_canonical(const gw_policy_set *set, struct aam_buf *out)
{
	if (set == NULL || out == NULL)
		return AAM_E_INVAL;
	aam_buf_append_str(out, "aam-policy-set/v1\n");
	for (size_t i = 0; i < set->npols; i++) {
		canon_policy(out, &set->pols[i]);
		aam_buf_append_byte(out, '\n');
	}
	return out->err;
}

static int
set_hash(gw_policy_set *s)
{
	struct aam_buf b;
	aam_buf_init(&b, 256u * 1024 * 1024);
	int rc = gw_policy_set_canonical(s, &b);
	if (rc == AAM_OK) {
		unsigned int mdlen = 0;
		if (EVP_Digest(b.data ? b.data : (const uint8_t *)"", b.len, s->hash, &mdlen,
		               EVP_sha256(), NULL) != 1 ||
		    mdlen != 32)
			rc = AAM_E_CRYPTO;
	}
	aam_buf_uninit(&b);
	static const char hex[] = "0123456789abcdef";
	for (int i = 0; i < 32; i++) {
		s->hash_hex[2 * i] = hex[s->hash[i] >> 4];
		s->hash_hex[2 * i + 1] = hex[s->hash[i] & 15];
	}
	s->hash_hex[64] = '\0';
	return rc;
}

/* ---- build ------------------------------------------------------------ */

void
pol_set_free(gw_policy_set *s)
{
	if (s == NULL)
		return;
	free(s->ht);
	free(s->lval);
	free(s->lnext);
	free(s->tnodes);
	free(s->routes);
	free(s->tool_patterns);
	free(s->tool_patterns_tail);
	free(s->pols);
	pol_arena_uninit(&s->arena);
	free(s);
}

int
pol_set_build(struct pol_arena *a, struct gw_pol *pols, size_t npols, gw_policy_set **out)
{
	*out = NULL;
	gw_policy_set *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		pol_arena_uninit(a);
		free(pols);
		return AAM_E_NOMEM;
	}
	atomic_init(&s->refs, 1);
	s->arena = *a;
	pol_arena_init(a);
	s->pols = pols;
	s->npols = npols;
	s->wild = s->wild_tail = POL_NIL;
	if (npols > 1)
		qsort(s->pols, npols, sizeof(*s->pols), cmp_pol);

	struct build b = {.s = s};
	size_t bound = 16;
	for (size_t i = 0; i < npols; i++) {
		const struct gw_pol *p = &pols[i];
		for (size_t w = 0; w < p->workloads.n; w++)
			bound += 2 + count_char(p->wl_base[w], '/');
		bound += p->allow.n + p->deny.n + p->nrl + p->ntools;
	}
	size_t cap = 64;
	while (cap < bound * 2)
		cap *= 2;
	s->htcap = cap;
	s->ht = calloc(cap, sizeof(*s->ht));
	s->tool_patterns = malloc((npols ? npols : 1) * sizeof(uint32_t));
	s->tool_patterns_tail = malloc((npols ? npols : 1) * sizeof(uint32_t));
	if (s->ht == NULL || s->tool_patterns == NULL || s->tool_patterns_tail == NULL ||
	    npols > UINT32_MAX / 2) {
		pol_set_free(s);
		return AAM_E_NOMEM;
	}
	for (size_t i = 0; i < npols; i++)
		s->tool_patterns[i] = s->tool_patterns_tail[i] = POL_NIL;
	if (tnode_new(&b) != 0) {
		pol_set_free(s);
		return AAM_E_NOMEM;
	}
	for (size_t i = 0; i < npols && !b.nomem; i++)
		index_policy(&b, (uint32_t)i);
	if (b.nomem) {
		pol_set_free(s);
		return AAM_E_NOMEM;
	}
	int rc = set_hash(s);
	if (rc != AAM_OK) {
		pol_set_free(s);
		return rc;
	}
	*out = s;
	return AAM_OK;
}

bool
pol_resource_match(const struct pol_tool *t, const char *r, size_t len)
{
	switch (t->kind) {
	case POL_M_ALL:
		return true;
	case POL_M_EXACT:
		return len == t->resource.len && memcmp(r, t->resource.s, len) == 0;
	case POL_M_ONE:
	case POL_M_ANY:
		if (len < t->base_len + 2 || memcmp(r, t->resource.s, t->base_len) != 0 ||
		    r[t->base_len] != '.')
			return false;
		if (t->kind == POL_M_ANY)
			return true;
		return memchr(r + t->base_len + 1, '.', len - t->base_len - 1) == NULL;
	}
	return false;
}
