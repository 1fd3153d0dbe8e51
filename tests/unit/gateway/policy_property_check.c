/*
 * Property test over random policy sets and requests.  Each round writes a
 * random set as YAML, loads it through the real loader, and compares every
 * decision with a tiny independent oracle of the combination rules:
 *
 *   - an explicit deny in any applicable policy always wins (and is the
 *     reason given);
 *   - otherwise an allow needs an applicable policy that allows;
 *   - a request that no policy mentions is always denied with no_match.
 *
 * The generator sticks to what the loader accepts (no name both allowed and
 * denied in one list pair, '*' alone), and the seed is printed on failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "common/buf.h"
#include "gateway/policy.h"

#define NW      5 /* exact workloads */
#define NR      5 /* routes */
#define NT      4 /* tool resources */
#define NA      4 /* actions */
#define MAXPOL  8
#define MAXRULE 3

static uint64_t g_rng;

static uint32_t
rnd(uint32_t n)
{
	/* xorshift64*: fast, seedable, good enough for a test generator. */
	g_rng ^= g_rng >> 12;
	g_rng ^= g_rng << 25;
	g_rng ^= g_rng >> 27;
	return (uint32_t)((g_rng * 0x2545F4914F6CDD1Dull) >> 33) % n;
}

enum wl_kind { WL_EXACT, WL_ONE, WL_ANY, WL_TEAM };

struct rule {
	int res;
	unsigned actions, deny; /* bit masks over NA */
	bool actions_all, deny_all;
};

struct pol {
	enum wl_kind wk;
	int w;
	bool has_models;
	unsigned allow, deny; /* bit masks over NR */
	bool allow_all, deny_all;
	int nrules;
	struct rule rules[MAXRULE];
};

struct set {
	int n;
	struct pol p[MAXPOL];
};

static unsigned
mask(unsigned bits)
{
	return rnd(1u << bits);
}

static void
gen(struct set *s)
{
	s->n = 1 + (int)rnd(MAXPOL);
	for (int i = 0; i < s->n; i++) {
		struct pol *p = &s->p[i];
		memset(p, 0, sizeof(*p));
		p->wk = (enum wl_kind)rnd(4);
		p->w = (int)rnd(NW);
		p->has_models = rnd(3) != 0;
		if (p->has_models) {
			p->allow_all = rnd(6) == 0;
			p->deny_all = !p->allow_all && rnd(10) == 0;
			p->allow = p->allow_all ? 0 : mask(NR);
			p->deny = p->deny_all ? 0 : mask(NR) & ~p->allow;
			if (!p->allow_all && !p->deny_all && p->allow == 0 && p->deny == 0)
				p->allow = 1;
		}
		p->nrules = p->has_models ? (int)rnd(MAXRULE + 1) : 1 + (int)rnd(MAXRULE);
		for (int k = 0; k < p->nrules; k++) {
			struct rule *r = &p->rules[k];
			r->res = (int)rnd(NT);
			r->actions_all = rnd(6) == 0;
			r->deny_all = !r->actions_all && rnd(10) == 0;
			r->actions = r->actions_all ? 0 : mask(NA);
			r->deny = r->deny_all ? 0 : mask(NA) & ~r->actions;
			if (!r->actions_all && !r->deny_all && r->actions == 0 && r->deny == 0)
				r->actions = 1;
		}
	}
}

static void
emit_list(struct aam_buf *b, const char *key, const char *prefix, unsigned m, int n, bool all)
{
	if (!all && m == 0)
		return;
	aam_buf_printf(b, "%s: [", key);
	if (all) {
		aam_buf_append_str(b, "\"*\"");
	} else {
		bool first = true;
		for (int i = 0; i < n; i++)
			if (m & (1u << i)) {
				aam_buf_printf(b, "%s%s%d", first ? "" : ", ", prefix, i);
				first = false;
			}
	}
	aam_buf_append_str(b, "]");
}

static void
to_yaml(const struct set *s, struct aam_buf *b)
{
	for (int i = 0; i < s->n; i++) {
		const struct pol *p = &s->p[i];
		aam_buf_printf(b,
		               "%sapiVersion: access.envisionai.dev/v1\nkind: AgentPolicy\n"
		               "metadata: {name: p%d}\nspec:\n  identity: {",
		               i ? "---\n" : "", i);
		switch (p->wk) {
		case WL_EXACT:
			aam_buf_printf(b, "workload: spiffe://prod/agent/w%d}\n", p->w);
			break;
		case WL_ONE:
			aam_buf_append_str(b, "workload: spiffe://prod/agent/*}\n");
			break;
		case WL_ANY:
			aam_buf_append_str(b, "workload: spiffe://prod/**}\n");
			break;
		case WL_TEAM:
			aam_buf_printf(b, "team: team%d}\n", p->w % 2);
			break;
		}
		if (p->has_models) {
			aam_buf_append_str(b, "  models: {");
			emit_list(b, "allow", "r", p->allow, NR, p->allow_all);
			if ((p->allow || p->allow_all) && (p->deny || p->deny_all))
				aam_buf_append_str(b, ", ");
			emit_list(b, "deny", "r", p->deny, NR, p->deny_all);
			aam_buf_append_str(b, "}\n");
		}
		if (p->nrules > 0)
			aam_buf_append_str(b, "  tools:\n");
		for (int k = 0; k < p->nrules; k++) {
			const struct rule *r = &p->rules[k];
			aam_buf_printf(b, "    - {resource: t%d.x, ", r->res);
			emit_list(b, "actions", "a", r->actions, NA, r->actions_all);
			if ((r->actions || r->actions_all) && (r->deny || r->deny_all))
				aam_buf_append_str(b, ", ");
			emit_list(b, "deny", "a", r->deny, NA, r->deny_all);
			aam_buf_append_str(b, "}\n");
		}
	}
}

/* Request: workload index (NW = a workload two levels deeper), team. */
struct req {
	int w; /* 0..NW-1 exact, NW: deeper path, NW+1: another trust domain */
	int team;
	bool model;
	int name;   /* route or resource; NR/NT = a name no policy uses */
	int action; /* NA = an action no policy uses */
};

static bool
applies(const struct pol *p, const struct req *q)
{
	switch (p->wk) {
	case WL_EXACT:
		return q->w == p->w;
	case WL_ONE:
		return q->w < NW;
	case WL_ANY:
		return q->w <= NW;
	case WL_TEAM:
		return q->team == p->w % 2;
	}
	return false;
}

/* The oracle: 1 allow, 0 deny by no match, -1 explicit deny. */
static int
oracle(const struct set *s, const struct req *q)
{
	bool allow = false, deny = false;
	for (int i = 0; i < s->n; i++) {
		const struct pol *p = &s->p[i];
		if (!applies(p, q))
			continue;
		if (q->model) {
			if (!p->has_models)
				continue;
			bool known = q->name < NR;
			if (p->deny_all || (known && (p->deny & (1u << q->name))))
				deny = true;
			else if (p->allow_all || (known && (p->allow & (1u << q->name))))
				allow = true;
			continue;
		}
		for (int k = 0; k < p->nrules; k++) {
			const struct rule *r = &p->rules[k];
			if (q->name >= NT || r->res != q->name)
				continue;
			bool known = q->action < NA;
			if (r->deny_all || (known && (r->deny & (1u << q->action))))
				deny = true;
			else if (r->actions_all || (known && (r->actions & (1u << q->action))))
				allow = true;
		}
	}
	return deny ? -1 : allow ? 1 : 0;
}

static void
run_round(uint64_t seed)
{
	g_rng = seed;
	struct set s;
	gen(&s);
	struct aam_buf b;
	aam_buf_init(&b, 0);
	to_yaml(&s, &b);
	gw_policy_set *set = NULL;
	struct gw_policy_diag d;
	gw_policy_diag_init(&d);
	int rc = gw_policy_set_load_buffer("rand.yaml", b.data, b.len, NULL, &set, &d);
	if (rc != AAM_OK) {
		char line[512];
		gw_policy_diag_format(&d, 0, line, sizeof(line));
		print_error("seed %llu: load failed: %s\n%s\n", (unsigned long long)seed, line,
		            aam_buf_cstr(&b));
	}
	assert_int_equal(rc, AAM_OK);
	gw_policy_diag_uninit(&d);

	for (int n = 0; n < 60; n++) {
		struct req q = {.w = (int)rnd(NW + 2),
		                .team = (int)rnd(3),
		                .model = rnd(2) == 0,
		                .name = 0,
		                .action = (int)rnd(NA + 1)};
		q.name = (int)rnd(q.model ? NR + 1 : NT + 1);
		char wl[64], name[32], act[16], team[16];
		if (q.w < NW)
			snprintf(wl, sizeof(wl), "spiffe://prod/agent/w%d", q.w);
		else if (q.w == NW)
			snprintf(wl, sizeof(wl), "spiffe://prod/agent/w0/deeper");
		else
			snprintf(wl, sizeof(wl), "spiffe://elsewhere/agent/w0");
		if (q.model)
			snprintf(name, sizeof(name), q.name < NR ? "r%d" : "unused-route", q.name);
		else
			snprintf(name, sizeof(name), q.name < NT ? "t%d.x" : "unused.tool", q.name);
		snprintf(act, sizeof(act), q.action < NA ? "a%d" : "unused", q.action);
		snprintf(team, sizeof(team), "team%d", q.team);
		struct gw_policy_request r = {.workload = wl,
		                              .team = q.team < 2 ? team : NULL,
		                              .kind = q.model ? GW_POLICY_MODEL : GW_POLICY_TOOL,
		                              .model = name,
		                              .resource = name,
		                              .action = act};
		struct gw_policy_decision dec;
		assert_int_equal(gw_policy_decide(set, &r, &dec), AAM_OK);
		int want = oracle(&s, &q);
		if ((want == 1) != dec.allow) {
			print_error("seed %llu: %s %s %s team=%d: want %d got allow=%d\n%s\n",
			            (unsigned long long)seed, wl, name, q.model ? "" : act, q.team,
			            want, dec.allow, aam_buf_cstr(&b));
		}
		assert_int_equal(want == 1, dec.allow);
		assert_true(dec.nreasons >= 1);
		/* Explicit deny always wins and is what the decision says. */
		if (want == -1) {
			for (size_t i = 0; i < dec.nreasons; i++)
				assert_int_equal(dec.reasons[i].code, GW_POLICY_EXPLICIT_DENY);
		}
		if (want == 0)
			assert_int_equal(dec.reasons[dec.nreasons - 1].code, GW_POLICY_NO_MATCH);
		/* Another trust domain: no policy mentions it, so no_match. */
		if (q.w == NW + 1 && q.team == 2) {
			assert_false(dec.allow);
			assert_int_equal(dec.nreasons, 1);
			assert_int_equal(dec.reasons[0].code, GW_POLICY_NO_MATCH);
			assert_null(dec.reasons[0].policy);
		}
		/* Names no policy uses are never allowed unless a '*' covers them. */
		if (!dec.allow)
			continue;
		for (size_t i = 0; i < dec.nreasons; i++) {
			assert_int_equal(dec.reasons[i].code, GW_POLICY_ALLOWED);
			if ((q.model && q.name >= NR) || (!q.model && q.action >= NA))
				assert_string_equal(dec.reasons[i].value, "*");
		}
		assert_true(q.model || q.name < NT);
	}
	gw_policy_set_unref(set);
	aam_buf_uninit(&b);
}

static void
test_random_sets_agree_with_oracle(void **state)
{
	(void)state;
	const char *env = getenv("AAM_POLICY_PROPERTY_SEED");
	uint64_t base = env ? strtoull(env, NULL, 10) : 0x5eed5eedull;
	for (uint64_t i = 0; i < 400; i++)
		run_round(base + i * 0x9E3779B97F4A7C15ull);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_random_sets_agree_with_oracle),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
