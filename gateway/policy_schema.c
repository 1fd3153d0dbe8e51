/*
 * The AgentPolicy schema: one YAML document into one struct gw_pol, section
 * by section.  See docs/POLICY.md for the language; policy_load.c has the
 * typed readers used here.
 *
 * The loader is strict on purpose (DESIGN.md invariant 5): an unknown key
 * is usually a typo, and a typo in a deny list that silently denies
 * nothing is the worst kind of policy bug.  Parsing goes on after an error
 * so one run reports them all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "common/spiffe.h"
#include "gateway/policy_internal.h"

/* ---- catalogue ---------------------------------------------------------- */

static bool
in_catalogue(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (names[i] != NULL && strcmp(names[i], s) == 0)
			return true;
	return false;
}

static void
check_routes_known(struct pol_ld *l, const struct pol_list *list, const char *path)
{
	const struct gw_policy_catalogue *c = l->opts ? l->opts->catalogue : NULL;
	if (c == NULL || list->all)
		return;
	for (size_t i = 0; i < list->n; i++) {
		if (!in_catalogue(c->routes, c->nroutes, list->v[i].s))
			pol_diag_add(l->diag, l->file, list->v[i].pos.line, list->v[i].pos.col,
			             "%s[%zu]: unknown model route '%.64s' (not in the catalogue)",
			             path, i, list->v[i].s);
	}
}

/* ---- sections ----------------------------------------------------------- */

static const char *const k_root[] = {"apiVersion", "kind", "metadata", "spec", NULL};
static const char *const k_metadata[] = {"name", "description", NULL};
static const char *const k_spec[] = {"identity", "models",     "tools", "credentials",
                                     "audit",    "conditions", NULL};
static const char *const k_identity[] = {
        "workload", "owner", "team", "environment", "deployment", "require_attested", NULL};
static const char *const k_models[] = {"allow",        "deny",    "budget", "limits",
                                       "route_limits", "regions", NULL};
static const char *const k_budget[] = {"daily_usd", "monthly_usd", NULL};
static const char *const k_limits[] = {"rpm", "tpm", "max_tokens", "max_parallel", NULL};
static const char *const k_tool[] = {"resource",   "actions", "deny", "when",
                                     "credential", "limits",  NULL};
static const char *const k_tool_limits[] = {"rpm", NULL};
static const char *const k_credentials[] = {"injection", "expose_to_agent", NULL};
static const char *const k_audit[] = {"record", "plain", NULL};
static const char *const k_conditions[] = {"environment", "time", "not_after", "not_before", NULL};

static const char *const audit_facets[] = {"identity", "policy", "action", "parameters",
                                           "outcome",  "model",  "cost",   NULL};

static bool
parse_workloads(struct pol_ld *l, const struct aam_yaml_node *n, const char *path, struct gw_pol *p)
{
	if (!pol_ld_list(l, n, path, POL_LIST_SINGLE, NULL, AAM_SPIFFE_ID_MAX, &p->workloads))
		return false;
	size_t cnt = p->workloads.n;
	p->wl_kind = pol_alloc_array(l->a, cnt, sizeof(*p->wl_kind));
	p->wl_base = pol_alloc_array(l->a, cnt, sizeof(*p->wl_base));
	struct aam_spiffe_pattern *pat = malloc(sizeof(*pat));
	char *buf = malloc(AAM_SPIFFE_ID_BUFSZ);
	bool ok = p->wl_kind != NULL && p->wl_base != NULL && pat != NULL && buf != NULL;
	if (!ok)
		l->nomem = true;
	for (size_t i = 0; ok && i < cnt; i++) {
		const struct pol_str *w = &p->workloads.v[i];
		const char *why = NULL;
		if (aam_spiffe_pattern_parse(w->s, w->len, pat, &why) != AAM_OK) {
			pol_diag_add(l->diag, l->file, w->pos.line, w->pos.col,
			             "%s: invalid SPIFFE ID '%.80s': %s", path, w->s,
			             why ? why : "malformed");
			ok = false;
			continue;
		}
		if (aam_spiffe_format(&pat->base, buf, AAM_SPIFFE_ID_BUFSZ, NULL) != AAM_OK) {
			pol_diag_add(l->diag, l->file, w->pos.line, w->pos.col,
			             "%s: invalid SPIFFE ID '%.80s'", path, w->s);
			ok = false;
			continue;
		}
		p->wl_kind[i] = (uint8_t)pat->kind;
		p->wl_base[i] = pol_strndup(l->a, buf, strlen(buf));
		if (p->wl_base[i] == NULL) {
			l->nomem = true;
			ok = false;
		}
	}
	free(pat);
	free(buf);
	return ok;
}

static void
parse_identity(struct pol_ld *l, const struct aam_yaml_node *n, struct gw_pol *p)
{
	const char *path = "spec.identity";
	p->identity_pos = pol_ld_pos(l, n);
	if (!pol_ld_map(l, n, path, k_identity))
		return;
	char sp[POL_PATH_LEN];
	const struct aam_yaml_node *v;
	bool any = false;
	if ((v = aam_yaml_map_get(n, "workload")) != NULL) {
		pol_ld_subpath(sp, path, "workload");
		parse_workloads(l, v, sp, p);
		any = true;
	}
	struct {
		const char *key;
		struct pol_list *list;
	} sel[] = {{"owner", &p->owners},
	           {"team", &p->teams},
	           {"environment", &p->envs},
	           {"deployment", &p->deployments}};
	for (size_t i = 0; i < sizeof(sel) / sizeof(sel[0]); i++) {
		if ((v = aam_yaml_map_get(n, sel[i].key)) == NULL)
			continue;
		pol_ld_subpath(sp, path, sel[i].key);
		pol_ld_list(l, v, sp, POL_LIST_SINGLE, pol_check_selector, 256, sel[i].list);
		any = true;
	}
	if ((v = aam_yaml_map_get(n, "require_attested")) != NULL) {
		pol_ld_subpath(sp, path, "require_attested");
		pol_ld_bool(l, v, sp, &p->require_attested);
		p->attested_pos = pol_ld_pos(l, v);
	}
	if (!any)
		pol_ld_err(
		        l, n,
		        "%s: needs workload or a selector (owner, team, environment, deployment); "
		        "to cover a whole trust domain write workload: spiffe://DOMAIN/**",
		        path);
}

static void
parse_limits(struct pol_ld *l, const struct aam_yaml_node *n, const char *path,
             struct pol_limits *out)
{
	if (!pol_ld_map(l, n, path, k_limits))
		return;
	if (n->n == 0)
		pol_ld_err(l, n, "%s: must not be empty", path);
	char sp[POL_PATH_LEN];
	const struct aam_yaml_node *v;
	struct {
		const char *key;
		int64_t *dst;
	} f[] = {{"rpm", &out->rpm},
	         {"tpm", &out->tpm},
	         {"max_tokens", &out->max_tokens},
	         {"max_parallel", &out->max_parallel}};
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		if ((v = aam_yaml_map_get(n, f[i].key)) == NULL)
			continue;
		pol_ld_subpath(sp, path, f[i].key);
		pol_ld_count(l, v, sp, f[i].dst);
	}
}

static void
parse_route_limits(struct pol_ld *l, const struct aam_yaml_node *n, const char *path,
                   struct gw_pol *p)
{
	if (n == NULL || n->type != AAM_YAML_MAP) {
		pol_ld_err(l, n, "%s: expected a mapping of route names to limits, got %s", path,
		           pol_ld_kind(n));
		return;
	}
	if (n->n == 0) {
		pol_ld_err(l, n, "%s: must not be empty", path);
		return;
	}
	p->rl = pol_alloc_array(l->a, n->n, sizeof(*p->rl));
	if (p->rl == NULL) {
		l->nomem = true;
		return;
	}
	for (size_t i = 0; i < n->n; i++) {
		const struct aam_yaml_node *k = n->keys[i];
		char sp[POL_PATH_LEN];
		pol_pathf(sp, "%s.%.64s", path, k->str);
		const char *why = pol_check_route(k->str, k->len);
		if (k->len == 0 || strcmp(k->str, "*") == 0 || why != NULL) {
			pol_ld_err(l, k, "%s: '%.64s' is not a route name%s%s", path, k->str,
			           why ? ": " : "", why ? why : "");
			continue;
		}
		if (!p->allow.all && pol_list_find(&p->allow, k->str) < 0) {
			pol_ld_err(l, k, "%s: route '%.64s' is not in spec.models.allow", path,
			           k->str);
			continue;
		}
		struct pol_route_limits *rl = &p->rl[p->nrl++];
		rl->route.s = pol_strndup(l->a, k->str, k->len);
		rl->route.len = k->len;
		rl->route.pos = pol_ld_pos(l, k);
		if (rl->route.s == NULL)
			l->nomem = true;
		parse_limits(l, n->items[i], sp, &rl->l);
	}
}

static void
parse_models(struct pol_ld *l, const struct aam_yaml_node *n, struct gw_pol *p)
{
	const char *path = "spec.models";
	p->has_models = true;
	p->models_pos = pol_ld_pos(l, n);
	if (!pol_ld_map(l, n, path, k_models))
		return;
	char sp[POL_PATH_LEN];
	const struct aam_yaml_node *v;
	const struct aam_yaml_node *allow = aam_yaml_map_get(n, "allow");
	const struct aam_yaml_node *deny = aam_yaml_map_get(n, "deny");
	if (allow == NULL && deny == NULL)
		pol_ld_err(l, n, "%s: needs allow or deny", path);
	bool lists_ok = true;
	if (allow != NULL) {
		lists_ok &=
		        pol_ld_list(l, allow, "spec.models.allow", POL_LIST_SINGLE | POL_LIST_STAR,
		                    pol_check_route, 128, &p->allow);
		check_routes_known(l, &p->allow, "spec.models.allow");
	}
	if (deny != NULL) {
		lists_ok &=
		        pol_ld_list(l, deny, "spec.models.deny", POL_LIST_SINGLE | POL_LIST_STAR,
		                    pol_check_route, 128, &p->deny);
		check_routes_known(l, &p->deny, "spec.models.deny");
	}
	for (size_t i = 0; lists_ok && i < p->deny.n; i++) {
		if (!p->deny.all && pol_list_find(&p->allow, p->deny.v[i].s) >= 0)
			pol_diag_add(
			        l->diag, l->file, p->deny.v[i].pos.line, p->deny.v[i].pos.col,
			        "spec.models.deny[%zu]: route '%.64s' is both allowed and denied",
			        i, p->deny.v[i].s);
	}
	if ((v = aam_yaml_map_get(n, "budget")) != NULL) {
		p->budget_pos = pol_ld_pos(l, v);
		if (pol_ld_map(l, v, "spec.models.budget", k_budget)) {
			const struct aam_yaml_node *d = aam_yaml_map_get(v, "daily_usd");
			const struct aam_yaml_node *m = aam_yaml_map_get(v, "monthly_usd");
			if (d == NULL && m == NULL)
				pol_ld_err(l, v,
				           "spec.models.budget: needs daily_usd or monthly_usd");
			if (d != NULL)
				p->has_daily = pol_ld_money(l, d, "spec.models.budget.daily_usd",
				                            &p->daily_usd);
			if (m != NULL)
				p->has_monthly = pol_ld_money(
				        l, m, "spec.models.budget.monthly_usd", &p->monthly_usd);
		}
	}
	if ((v = aam_yaml_map_get(n, "limits")) != NULL) {
		p->limits_pos = pol_ld_pos(l, v);
		parse_limits(l, v, "spec.models.limits", &p->limits);
	}
	if ((v = aam_yaml_map_get(n, "route_limits")) != NULL && lists_ok) {
		if (allow == NULL)
			pol_ld_err(l, v, "spec.models.route_limits: needs spec.models.allow");
		else
			parse_route_limits(l, v, "spec.models.route_limits", p);
	}
	if ((v = aam_yaml_map_get(n, "regions")) != NULL) {
		pol_ld_subpath(sp, path, "regions");
		pol_ld_list(l, v, sp, POL_LIST_SINGLE, pol_check_token, 64, &p->regions);
	}
}

/* A resource name, "*", or a prefix followed by ".*" or ".**". */
static bool
parse_resource(struct pol_ld *l, const struct aam_yaml_node *n, const char *path,
               struct pol_tool *t)
{
	size_t len = 0;
	const char *s = pol_ld_str(l, n, path, 260, &len);
	if (s == NULL)
		return false;
	t->resource = (struct pol_str){.s = s, .len = len, .pos = pol_ld_pos(l, n)};
	t->base_len = len;
	t->kind = POL_M_EXACT;
	if (strcmp(s, "*") == 0) {
		t->kind = POL_M_ALL;
		t->base_len = 0;
		return true;
	}
	if (len > 3 && strcmp(s + len - 3, ".**") == 0) {
		t->kind = POL_M_ANY;
		t->base_len = len - 3;
	} else if (len > 2 && strcmp(s + len - 2, ".*") == 0) {
		t->kind = POL_M_ONE;
		t->base_len = len - 2;
	}
	const char *why = pol_check_resource_base(s, t->base_len);
	if (why != NULL) {
		if (memchr(s, '*', len) != NULL)
			why = "may use a wildcard only as a whole last segment ('.*' or '.**') or "
			      "alone ('*')";
		pol_ld_err(l, n, "%s: '%.64s' %s", path, s, why);
		return false;
	}
	const struct gw_policy_catalogue *c = l->opts ? l->opts->catalogue : NULL;
	if (c != NULL) {
		bool found = false;
		for (size_t i = 0; i < c->ntools && !found; i++)
			found = c->tools[i] != NULL &&
			        pol_resource_match(t, c->tools[i], strlen(c->tools[i]));
		if (!found) {
			pol_ld_err(l, n, "%s: unknown tool resource '%.64s' (not in the catalogue)",
			           path, s);
			return false;
		}
	}
	return true;
}

static void
parse_tool(struct pol_ld *l, const struct aam_yaml_node *n, size_t idx, struct gw_pol *p)
{
	struct pol_tool *t = &p->tools[idx];
	char path[POL_PATH_LEN], sp[POL_PATH_LEN];
	pol_pathf(path, "spec.tools[%zu]", idx);
	t->pos = pol_ld_pos(l, n);
	t->rule = pol_printf(l->a, "tools[%zu]", idx);
	t->f_actions = pol_printf(l->a, "%s.actions", path);
	t->f_deny = pol_printf(l->a, "%s.deny", path);
	t->f_resource = pol_printf(l->a, "%s.resource", path);
	t->f_credential = pol_printf(l->a, "%s.credential", path);
	if (t->rule == NULL || t->f_actions == NULL || t->f_deny == NULL || t->f_resource == NULL ||
	    t->f_credential == NULL)
		l->nomem = true;
	if (!pol_ld_map(l, n, path, k_tool))
		return;
	const struct aam_yaml_node *v;
	if ((v = aam_yaml_map_get(n, "resource")) != NULL) {
		pol_ld_subpath(sp, path, "resource");
		parse_resource(l, v, sp, t);
	} else {
		pol_ld_missing(l, n, path, "resource");
	}
	const struct aam_yaml_node *acts = aam_yaml_map_get(n, "actions");
	const struct aam_yaml_node *deny = aam_yaml_map_get(n, "deny");
	if (acts == NULL && deny == NULL)
		pol_ld_err(l, n, "%s: needs actions or deny", path);
	bool ok = true;
	if (acts != NULL)
		ok &= pol_ld_list(l, acts, t->f_actions, POL_LIST_SINGLE | POL_LIST_STAR,
		                  pol_check_token, 64, &t->actions);
	if (deny != NULL)
		ok &= pol_ld_list(l, deny, t->f_deny, POL_LIST_SINGLE | POL_LIST_STAR,
		                  pol_check_token, 64, &t->deny);
	for (size_t i = 0; ok && i < t->deny.n; i++) {
		if (!t->deny.all && pol_list_find(&t->actions, t->deny.v[i].s) >= 0)
			pol_diag_add(l->diag, l->file, t->deny.v[i].pos.line, t->deny.v[i].pos.col,
			             "%s[%zu]: action '%.64s' is both allowed and denied",
			             t->f_deny, i, t->deny.v[i].s);
	}
	if ((v = aam_yaml_map_get(n, "when")) != NULL) {
		pol_ld_subpath(sp, path, "when");
		pol_parse_when(l, v, sp, t);
	}
	if ((v = aam_yaml_map_get(n, "credential")) != NULL) {
		pol_ld_subpath(sp, path, "credential");
		size_t len = 0;
		const char *s = pol_ld_str(l, v, sp, 128, &len);
		const char *why = s ? pol_check_credential(s, len) : NULL;
		if (why != NULL)
			pol_ld_err(l, v, "%s: '%.64s' %s", sp, s, why);
		else if (s != NULL && acts == NULL)
			pol_ld_err(l, v, "%s: a rule that allows no action uses no credential", sp);
		else if (s != NULL)
			t->credential =
			        (struct pol_str){.s = s, .len = len, .pos = pol_ld_pos(l, v)};
	}
	if ((v = aam_yaml_map_get(n, "limits")) != NULL) {
		pol_ld_subpath(sp, path, "limits");
		if (pol_ld_map(l, v, sp, k_tool_limits)) {
			const struct aam_yaml_node *r = aam_yaml_map_get(v, "rpm");
			if (r == NULL) {
				pol_ld_missing(l, v, sp, "rpm");
			} else {
				char rp[POL_PATH_LEN];
				pol_ld_subpath(rp, sp, "rpm");
				pol_ld_count(l, r, rp, &t->rpm);
			}
		}
	}
}

static void
parse_tools(struct pol_ld *l, const struct aam_yaml_node *n, struct gw_pol *p)
{
	if (n->type != AAM_YAML_SEQ) {
		pol_ld_err(l, n, "spec.tools: expected a list of tool rules, got %s",
		           pol_ld_kind(n));
		return;
	}
	if (n->n == 0) {
		pol_ld_err(l, n, "spec.tools: must not be empty");
		return;
	}
	p->tools = pol_alloc_array(l->a, n->n, sizeof(*p->tools));
	if (p->tools == NULL) {
		l->nomem = true;
		return;
	}
	p->ntools = n->n;
	for (size_t i = 0; i < n->n; i++)
		parse_tool(l, n->items[i], i, p);
}

static void
parse_credentials(struct pol_ld *l, const struct aam_yaml_node *n, struct gw_pol *p)
{
	p->has_credentials = true;
	if (!pol_ld_map(l, n, "spec.credentials", k_credentials))
		return;
	const struct aam_yaml_node *v;
	if ((v = aam_yaml_map_get(n, "injection")) != NULL) {
		size_t len;
		const char *s = pol_ld_str(l, v, "spec.credentials.injection", 64, &len);
		if (s != NULL && strcmp(s, "runtime") != 0)
			pol_ld_err(
			        l, v,
			        "spec.credentials.injection: must be 'runtime' (aam-vault injects "
			        "the credential into each outbound request; there is no other "
			        "mode)");
	}
	if ((v = aam_yaml_map_get(n, "expose_to_agent")) != NULL) {
		bool b = false;
		if (pol_ld_bool(l, v, "spec.credentials.expose_to_agent", &b) && b)
			pol_ld_err(
			        l, v,
			        "spec.credentials.expose_to_agent: true is not allowed: a "
			        "credential "
			        "never reaches the agent; aam-vault injects it into the outbound "
			        "request (set it to false or remove it)");
	}
}

static void
parse_audit(struct pol_ld *l, const struct aam_yaml_node *n, struct gw_pol *p)
{
	p->has_audit = true;
	if (!pol_ld_map(l, n, "spec.audit", k_audit))
		return;
	const struct aam_yaml_node *rec = aam_yaml_map_get(n, "record");
	if (rec == NULL) {
		pol_ld_missing(l, n, "spec.audit", "record");
	} else {
		struct pol_list facets;
		if (pol_ld_list(l, rec, "spec.audit.record", POL_LIST_SINGLE, NULL, 32, &facets)) {
			p->audit = 0;
			for (size_t i = 0; i < facets.n; i++) {
				size_t j = 0;
				while (audit_facets[j] &&
				       strcmp(audit_facets[j], facets.v[i].s) != 0)
					j++;
				if (audit_facets[j] != NULL) {
					p->audit |= 1u << j;
					continue;
				}
				const char *s = pol_ld_suggest(facets.v[i].s, audit_facets);
				char words[160];
				pol_ld_join(words, sizeof(words), audit_facets);
				pol_diag_add(
				        l->diag, l->file, facets.v[i].pos.line, facets.v[i].pos.col,
				        "spec.audit.record[%zu]: unknown facet '%.32s' (%s%s%s)", i,
				        facets.v[i].s,
				        s ? "did you mean '" : "allowed: ", s ? s : words,
				        s ? "'?" : "");
			}
		}
	}
	const struct aam_yaml_node *plain = aam_yaml_map_get(n, "plain");
	if (plain != NULL) {
		if (pol_ld_list(l, plain, "spec.audit.plain", POL_LIST_SINGLE, pol_check_param, 128,
		                &p->plain) &&
		    !(p->audit & GW_AUDIT_PARAMETERS))
			pol_ld_err(
			        l, plain,
			        "spec.audit.plain: lists parameters but spec.audit.record does not "
			        "include 'parameters'");
	}
}

static bool
read_time(struct pol_ld *l, const struct aam_yaml_node *n, const char *path, int64_t *out,
          const char **src)
{
	size_t len;
	const char *s = pol_ld_str(l, n, path, 64, &len);
	if (s == NULL)
		return false;
	if (gw_policy_parse_time(s, out) != AAM_OK) {
		pol_ld_err(l, n, "%s: '%.64s' is not an RFC 3339 time such as 2026-12-31T23:59:59Z",
		           path, s);
		return false;
	}
	*src = s;
	return true;
}

static void
parse_conditions(struct pol_ld *l, const struct aam_yaml_node *n, struct gw_pol *p)
{
	const char *path = "spec.conditions";
	p->has_conditions = true;
	if (!pol_ld_map(l, n, path, k_conditions))
		return;
	if (n->n == 0)
		pol_ld_err(l, n, "%s: must not be empty", path);
	const struct aam_yaml_node *v;
	if ((v = aam_yaml_map_get(n, "environment")) != NULL)
		pol_ld_list(l, v, "spec.conditions.environment", POL_LIST_SINGLE,
		            pol_check_selector, 256, &p->cond_envs);
	if ((v = aam_yaml_map_get(n, "time")) != NULL) {
		p->time_pos = pol_ld_pos(l, v);
		pol_parse_windows(l, v, "spec.conditions.time", p);
	}
	if ((v = aam_yaml_map_get(n, "not_after")) != NULL) {
		p->not_after_pos = pol_ld_pos(l, v);
		p->has_not_after = read_time(l, v, "spec.conditions.not_after", &p->not_after,
		                             &p->not_after_src);
	}
	if ((v = aam_yaml_map_get(n, "not_before")) != NULL) {
		p->not_before_pos = pol_ld_pos(l, v);
		p->has_not_before = read_time(l, v, "spec.conditions.not_before", &p->not_before,
		                              &p->not_before_src);
	}
	if (p->has_not_after && p->has_not_before && p->not_before >= p->not_after)
		pol_ld_err(l, v, "spec.conditions.not_before: must be earlier than not_after");
}

static void
parse_spec(struct pol_ld *l, const struct aam_yaml_node *n, struct gw_pol *p)
{
	if (!pol_ld_map(l, n, "spec", k_spec))
		return;
	const struct aam_yaml_node *v;
	if ((v = aam_yaml_map_get(n, "identity")) != NULL)
		parse_identity(l, v, p);
	else
		pol_ld_missing(l, n, "spec", "identity");
	const struct aam_yaml_node *models = aam_yaml_map_get(n, "models");
	const struct aam_yaml_node *tools = aam_yaml_map_get(n, "tools");
	if (models == NULL && tools == NULL)
		pol_ld_err(l, n,
		           "spec: needs models or tools (a policy without them allows and "
		           "denies nothing)");
	if (models != NULL)
		parse_models(l, models, p);
	if (tools != NULL)
		parse_tools(l, tools, p);
	if ((v = aam_yaml_map_get(n, "credentials")) != NULL)
		parse_credentials(l, v, p);
	p->audit = GW_AUDIT_DEFAULT;
	if ((v = aam_yaml_map_get(n, "audit")) != NULL)
		parse_audit(l, v, p);
	if ((v = aam_yaml_map_get(n, "conditions")) != NULL)
		parse_conditions(l, v, p);
}

bool
pol_parse_doc(struct pol_ld *l, const struct aam_yaml_node *root, struct gw_pol *p)
{
	size_t before = l->diag->n + l->diag->dropped;
	memset(p, 0, sizeof(*p));
	p->pos = pol_ld_pos(l, root);
	p->daily_usd = p->monthly_usd = -1;
	if (root == NULL || aam_yaml_is_null(root)) {
		pol_ld_err(l, root, "document is empty (expected an AgentPolicy)");
		return false;
	}
	if (root->type != AAM_YAML_MAP) {
		pol_ld_err(l, root, "expected an AgentPolicy mapping, got %s", pol_ld_kind(root));
		return false;
	}
	pol_ld_map(l, root, "policy", k_root);
	const struct aam_yaml_node *v;
	if ((v = aam_yaml_map_get(root, "apiVersion")) == NULL) {
		pol_ld_missing(l, root, "policy", "apiVersion");
	} else {
		size_t len;
		const char *s = pol_ld_str(l, v, "apiVersion", 128, &len);
		if (s != NULL && strcmp(s, GW_POLICY_API_VERSION) != 0)
			pol_ld_err(l, v, "apiVersion: unsupported '%.64s' (expected '%s')", s,
			           GW_POLICY_API_VERSION);
	}
	if ((v = aam_yaml_map_get(root, "kind")) == NULL) {
		pol_ld_missing(l, root, "policy", "kind");
	} else {
		size_t len;
		const char *s = pol_ld_str(l, v, "kind", 128, &len);
		if (s != NULL && strcmp(s, GW_POLICY_KIND) != 0)
			pol_ld_err(l, v, "kind: expected '%s', got '%.64s'", GW_POLICY_KIND, s);
	}
	if ((v = aam_yaml_map_get(root, "metadata")) == NULL) {
		pol_ld_missing(l, root, "policy", "metadata");
	} else if (pol_ld_map(l, v, "metadata", k_metadata)) {
		const struct aam_yaml_node *name = aam_yaml_map_get(v, "name");
		if (name == NULL) {
			pol_ld_missing(l, v, "metadata", "name");
		} else {
			size_t len;
			const char *s = pol_ld_str(l, name, "metadata.name", 253, &len);
			const char *why = s ? pol_check_policy_name(s, len) : NULL;
			if (why != NULL)
				pol_ld_err(l, name, "metadata.name: '%.64s' %s", s, why);
			else
				p->name = s;
			p->name_pos = pol_ld_pos(l, name);
		}
		const struct aam_yaml_node *d = aam_yaml_map_get(v, "description");
		if (d != NULL) {
			if (aam_yaml_kind(d) == AAM_YAML_K_STR && d->len <= 4096) {
				p->description = pol_strndup(l->a, d->str, d->len);
				if (p->description == NULL)
					l->nomem = true;
			} else {
				pol_ld_err(
				        l, d,
				        "metadata.description: expected a string of at most 4096 "
				        "bytes, got %s",
				        pol_ld_kind(d));
			}
		}
	}
	if ((v = aam_yaml_map_get(root, "spec")) == NULL)
		pol_ld_missing(l, root, "policy", "spec");
	else
		parse_spec(l, v, p);
	if (l->nomem)
		return false;
	return l->diag->n + l->diag->dropped == before;
}
