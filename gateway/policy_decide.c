/*
 * The decision function.
 *
 * It finds the policies whose workload selector can match (exact-ID hash,
 * pattern trie, selector-only list), evaluates each one, and combines:
 *
 *   1. any explicit deny (a deny list, or require_attested refusing a
 *      virtual-key identity) makes the decision a deny, whatever allows;
 *   2. otherwise an allow from any policy makes it an allow, with the most
 *      restrictive limits of all allowing rules;
 *   3. otherwise it is a deny saying why nothing allowed it, including the
 *      conditions that came close.
 *
 * Policy-level conditions (environment, time, not_before/not_after) gate a
 * policy's allows only: an expired or out-of-hours policy grants nothing,
 * but its explicit denies keep standing, because a deny that lapses is a
 * silent widening.  A rule's `when` conditions scope both its allows and
 * its denies, since they describe which calls the rule is about.
 *
 * Everything lives on the stack and in OUT; reason strings point into the
 * set, so a decision stays valid while its caller holds the set.
 */
#include <string.h>

#include "aam/err.h"
#include "common/spiffe.h"
#include "gateway/policy_internal.h"

struct rlist {
	struct gw_policy_reason v[GW_POLICY_MAX_REASONS];
	size_t n, dropped;
};

struct dctx {
	const gw_policy_set *s;
	const struct gw_policy_request *r;
	struct rlist deny, allow, miss;
	bool identity_matched;
	unsigned audit;
	struct gw_policy_limits lim;
	const char *cred;
	const struct gw_pol *cred_pol;
	const struct pol_tool *cred_tool;
	struct rlist conflict;
};

static void
add(struct rlist *l, enum gw_policy_code code, const struct gw_pol *p, const char *rule,
    const char *field, const char *value, const char *message, struct pol_pos pos)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct gw_policy_reason *o = &l->v[i];
		if (o->code == code && o->policy == (p ? p->name : NULL) && o->field == field &&
		    o->value == value)
			return; /* the same policy reached twice through two selectors */
	}
	if (l->n >= GW_POLICY_MAX_REASONS) {
		l->dropped++;
		return;
	}
	l->v[l->n++] = (struct gw_policy_reason){.code = code,
	                                         .policy = p ? p->name : NULL,
	                                         .rule = rule,
	                                         .field = field,
	                                         .value = value,
	                                         .message = message,
	                                         .file = pos.file,
	                                         .line = pos.line,
	                                         .col = pos.col};
}

static bool
selector_match(const struct pol_list *l, const char *v)
{
	if (l->n == 0)
		return true;
	return v != NULL && pol_list_find(l, v) >= 0;
}

static int64_t
min_limit(int64_t a, int64_t b)
{
	if (a == 0)
		return b;
	if (b == 0)
		return a;
	return a < b ? a : b;
}

static double
min_budget(double a, double b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

/* Policy-level conditions; on failure the miss reason says which. */
static bool
conditions_hold(struct dctx *d, const struct gw_pol *p)
{
	if (!p->has_conditions)
		return true;
	const struct gw_policy_request *r = d->r;
	if (p->cond_envs.n && !selector_match(&p->cond_envs, r->runtime_environment)) {
		add(&d->miss, GW_POLICY_CONDITION_FAILED, p, "conditions",
		    "spec.conditions.environment", NULL,
		    "the gateway's environment is not one the policy names", p->cond_envs.v[0].pos);
		return false;
	}
	if (p->has_not_before && r->now < p->not_before) {
		add(&d->miss, GW_POLICY_CONDITION_FAILED, p, "conditions",
		    "spec.conditions.not_before", p->not_before_src,
		    "the policy is not in force yet", p->not_before_pos);
		return false;
	}
	if (p->has_not_after && r->now > p->not_after) {
		add(&d->miss, GW_POLICY_CONDITION_FAILED, p, "conditions",
		    "spec.conditions.not_after", p->not_after_src, "the policy has expired",
		    p->not_after_pos);
		return false;
	}
	if (p->nwindows && !pol_windows_hold(p, r->now)) {
		add(&d->miss, GW_POLICY_CONDITION_FAILED, p, "conditions", "spec.conditions.time",
		    NULL, "the time is outside the policy's windows (UTC)", p->time_pos);
		return false;
	}
	return true;
}

static void
eval_model(struct dctx *d, uint32_t pi)
{
	const gw_policy_set *s = d->s;
	const struct gw_pol *p = &s->pols[pi];
	const struct gw_policy_request *r = d->r;
	if (!p->has_models)
		return;
	const struct pol_hent *e = pol_ht_find(s, POL_NS_ROUTE, pi, r->model, strlen(r->model));
	const struct pol_route_ent *re = e ? &s->routes[e->val] : NULL;
	if (p->deny.all || (re && re->deny >= 0)) {
		const struct pol_str *v =
		        &p->deny.v[p->deny.all ? p->deny.all_index : (size_t)re->deny];
		add(&d->deny, GW_POLICY_EXPLICIT_DENY, p, "models", "spec.models.deny", v->s,
		    "the model route is explicitly denied", v->pos);
		return;
	}
	if (!p->allow.all && !(re && re->allow >= 0))
		return;
	const struct pol_str *v =
	        &p->allow.v[p->allow.all ? p->allow.all_index : (size_t)re->allow];
	if (!conditions_hold(d, p))
		return;
	if (p->regions.n && !selector_match(&p->regions, r->region)) {
		add(&d->miss, GW_POLICY_CONDITION_FAILED, p, "models", "spec.models.regions", NULL,
		    r->region ? "the route's region is not one the policy allows"
		              : "the policy restricts regions and the route's region is unknown",
		    p->regions.v[0].pos);
		return;
	}
	struct pol_limits eff = p->limits;
	const char *mt_field = "spec.models.limits.max_tokens";
	struct pol_pos mt_pos = p->limits_pos;
	if (re && re->rl >= 0) {
		const struct pol_route_limits *rl = &p->rl[re->rl];
		if (rl->l.rpm)
			eff.rpm = rl->l.rpm;
		if (rl->l.tpm)
			eff.tpm = rl->l.tpm;
		if (rl->l.max_parallel)
			eff.max_parallel = rl->l.max_parallel;
		if (rl->l.max_tokens) {
			eff.max_tokens = rl->l.max_tokens;
			mt_field = "spec.models.route_limits";
			mt_pos = rl->route.pos;
		}
	}
	if (eff.max_tokens && r->max_tokens > eff.max_tokens) {
		add(&d->miss, GW_POLICY_LIMIT_EXCEEDED, p, "models", mt_field, v->s,
		    "the request asks for more tokens than the policy's max_tokens", mt_pos);
		return;
	}
	add(&d->allow, GW_POLICY_ALLOWED, p, "models", "spec.models.allow", v->s,
	    "the model route is allowed", v->pos);
	d->lim.rpm = min_limit(d->lim.rpm, eff.rpm);
	d->lim.tpm = min_limit(d->lim.tpm, eff.tpm);
	d->lim.max_tokens = min_limit(d->lim.max_tokens, eff.max_tokens);
	d->lim.max_parallel = min_limit(d->lim.max_parallel, eff.max_parallel);
	if (p->has_daily)
		d->lim.daily_usd = min_budget(d->lim.daily_usd, p->daily_usd);
	if (p->has_monthly)
		d->lim.monthly_usd = min_budget(d->lim.monthly_usd, p->monthly_usd);
}

static void
eval_rule(struct dctx *d, const struct gw_pol *p, const struct pol_tool *t)
{
	const struct gw_policy_request *r = d->r;
	long di = t->deny.all ? (long)t->deny.all_index : pol_list_find(&t->deny, r->action);
	long ai =
	        t->actions.all ? (long)t->actions.all_index : pol_list_find(&t->actions, r->action);
	if (di < 0 && ai < 0)
		return;
	for (size_t i = 0; i < t->nconds; i++) {
		const struct pol_cond *c = &t->conds[i];
		if (pol_cond_eval(c, r->params))
			continue;
		/* A deny whose `when` does not hold is simply not about this call. */
		if (di < 0)
			add(&d->miss, GW_POLICY_CONDITION_FAILED, p, t->rule, c->field, c->param,
			    "a parameter condition does not hold", c->pos);
		return;
	}
	if (di >= 0) {
		const struct pol_str *v = &t->deny.v[di];
		add(&d->deny, GW_POLICY_EXPLICIT_DENY, p, t->rule, t->f_deny, v->s,
		    "the action is explicitly denied", v->pos);
		return;
	}
	if (!conditions_hold(d, p))
		return;
	const struct pol_str *v = &t->actions.v[ai];
	add(&d->allow, GW_POLICY_ALLOWED, p, t->rule, t->f_actions, v->s, "the action is allowed",
	    v->pos);
	d->lim.rpm = min_limit(d->lim.rpm, t->rpm);
	if (t->credential.s == NULL)
		return;
	if (d->cred == NULL) {
		d->cred = t->credential.s;
		d->cred_pol = p;
		d->cred_tool = t;
	} else if (strcmp(d->cred, t->credential.s) != 0) {
		const struct pol_tool *f = d->cred_tool;
		add(&d->conflict, GW_POLICY_CREDENTIAL_CONFLICT, d->cred_pol, f->rule,
		    f->f_credential, f->credential.s, "allowing rules name different credentials",
		    f->credential.pos);
		add(&d->conflict, GW_POLICY_CREDENTIAL_CONFLICT, p, t->rule, t->f_credential,
		    t->credential.s, "allowing rules name different credentials",
		    t->credential.pos);
	}
}

static void
eval_tool(struct dctx *d, uint32_t pi)
{
	const gw_policy_set *s = d->s;
	const struct gw_pol *p = &s->pols[pi];
	const struct gw_policy_request *r = d->r;
	if (p->ntools == 0)
		return;
	size_t rlen = strlen(r->resource);
	const struct pol_hent *e = pol_ht_find(s, POL_NS_RESOURCE, pi, r->resource, rlen);
	for (uint32_t l = e ? e->val : POL_NIL; l != POL_NIL; l = s->lnext[l])
		eval_rule(d, p, &p->tools[s->lval[l]]);
	for (uint32_t l = s->tool_patterns[pi]; l != POL_NIL; l = s->lnext[l]) {
		const struct pol_tool *t = &p->tools[s->lval[l]];
		if (pol_resource_match(t, r->resource, rlen))
			eval_rule(d, p, t);
	}
}

static void
eval_policy(struct dctx *d, uint32_t pi)
{
	const struct gw_pol *p = &d->s->pols[pi];
	const struct gw_policy_request *r = d->r;
	if (!selector_match(&p->owners, r->owner) || !selector_match(&p->teams, r->team) ||
	    !selector_match(&p->envs, r->environment) ||
	    !selector_match(&p->deployments, r->deployment))
		return;
	d->identity_matched = true;
	d->audit |= p->audit;
	if (p->require_attested && !r->attested) {
		add(&d->deny, GW_POLICY_NOT_ATTESTED, p, "identity",
		    "spec.identity.require_attested", NULL,
		    "the policy requires an attested identity and this one came from a virtual key",
		    p->attested_pos);
		return;
	}
	if (r->kind == GW_POLICY_MODEL)
		eval_model(d, pi);
	else
		eval_tool(d, pi);
}

static void
eval_list(struct dctx *d, uint32_t head)
{
	for (uint32_t l = head; l != POL_NIL; l = d->s->lnext[l])
		eval_policy(d, d->s->lval[l]);
}

/* Walks the pattern trie along the request's trust domain and path. */
static void
eval_patterns(struct dctx *d, const struct aam_spiffe_id *id)
{
	const gw_policy_set *s = d->s;
	const struct pol_hent *e =
	        pol_ht_find(s, POL_NS_EDGE, 0, id->trust_domain, strlen(id->trust_domain));
	if (e == NULL)
		return;
	uint32_t node = e->val;
	const char *p = id->path; /* "" or "/a/b" */
	size_t remaining = 0;
	for (const char *q = p; *q; q++)
		remaining += *q == '/';
	for (;;) {
		if (remaining >= 1)
			eval_list(d, s->tnodes[node].any);
		if (remaining == 1)
			eval_list(d, s->tnodes[node].one);
		if (remaining == 0)
			return;
		p++; /* skip '/' */
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		e = pol_ht_find(s, POL_NS_EDGE, node, p, len);
		if (e == NULL)
			return;
		node = e->val;
		p += len;
		remaining--;
	}
}

static void
finish_invalid(struct gw_policy_decision *out, const char *field, const char *message)
{
	out->allow = false;
	out->nreasons = 1;
	out->reasons[0] = (struct gw_policy_reason){
	        .code = GW_POLICY_INVALID_REQUEST, .field = field, .message = message};
	out->audit = GW_AUDIT_DEFAULT;
}

static void
copy_reasons(struct gw_policy_decision *out, const struct rlist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		if (out->nreasons < GW_POLICY_MAX_REASONS)
			out->reasons[out->nreasons++] = l->v[i];
		else
			out->truncated++;
	}
	out->truncated += l->dropped;
}

static bool
empty(const char *s)
{
	return s == NULL || s[0] == '\0';
}

int
gw_policy_decide(const gw_policy_set *set, const struct gw_policy_request *r,
                 struct gw_policy_decision *out)
{
	if (out == NULL)
		return AAM_E_INVAL;
	memset(out, 0, sizeof(*out));
	out->limits.daily_usd = out->limits.monthly_usd = -1;
	if (set == NULL || r == NULL) {
		finish_invalid(out, NULL, "no policy set or no request");
		return AAM_E_INVAL;
	}
	out->set_hash = set->hash_hex;
	if (empty(r->workload)) {
		finish_invalid(out, "request.identity.workload", "the request names no workload");
		return AAM_E_INVAL;
	}
	struct aam_spiffe_id id;
	if (aam_spiffe_parse(r->workload, strlen(r->workload), &id, NULL) != AAM_OK) {
		finish_invalid(out, "request.identity.workload",
		               "the workload is not a valid SPIFFE ID");
		return AAM_E_INVAL;
	}
	if (r->kind == GW_POLICY_MODEL) {
		if (empty(r->model)) {
			finish_invalid(out, "request.model", "a model call must name its route");
			return AAM_E_INVAL;
		}
		if (r->max_tokens < 0) {
			finish_invalid(out, "request.max_tokens",
			               "max_tokens must not be negative");
			return AAM_E_INVAL;
		}
	} else if (r->kind == GW_POLICY_TOOL) {
		if (empty(r->resource) || empty(r->action)) {
			finish_invalid(out, "request.tool",
			               "a tool call must name its resource and action");
			return AAM_E_INVAL;
		}
		if (r->params != NULL && !json_is_object(r->params)) {
			finish_invalid(out, "request.tool.params",
			               "tool parameters must be a JSON object");
			return AAM_E_INVAL;
		}
	} else {
		finish_invalid(out, "request.kind",
		               "the request is neither a model nor a tool call");
		return AAM_E_INVAL;
	}

	struct dctx d;
	d.s = set;
	d.r = r;
	d.deny.n = d.deny.dropped = 0;
	d.allow.n = d.allow.dropped = 0;
	d.miss.n = d.miss.dropped = 0;
	d.conflict.n = d.conflict.dropped = 0;
	d.identity_matched = false;
	d.audit = 0;
	d.lim = (struct gw_policy_limits){.daily_usd = -1, .monthly_usd = -1};
	d.cred = NULL;
	d.cred_pol = NULL;
	d.cred_tool = NULL;

	const struct pol_hent *e =
	        pol_ht_find(set, POL_NS_WORKLOAD, 0, r->workload, strlen(r->workload));
	if (e != NULL)
		eval_list(&d, e->val);
	eval_patterns(&d, &id);
	eval_list(&d, set->wild);

	out->audit = d.identity_matched ? d.audit : GW_AUDIT_DEFAULT;
	if (d.deny.n || d.deny.dropped) {
		copy_reasons(out, &d.deny);
		return AAM_OK;
	}
	if (d.allow.n && d.conflict.n) {
		copy_reasons(out, &d.conflict);
		return AAM_OK;
	}
	if (d.allow.n) {
		out->allow = true;
		copy_reasons(out, &d.allow);
		out->credential = d.cred;
		out->limits = d.lim;
		return AAM_OK;
	}
	copy_reasons(out, &d.miss);
	const char *why;
	if (!d.identity_matched)
		why = "no policy applies to this workload";
	else if (r->kind == GW_POLICY_MODEL)
		why = "no policy allows this model route for this workload";
	else
		why = "no policy allows this action on this resource for this workload";
	struct gw_policy_reason nm = {.code = GW_POLICY_NO_MATCH, .message = why};
	if (out->nreasons < GW_POLICY_MAX_REASONS)
		out->reasons[out->nreasons++] = nm;
	else
		out->reasons[GW_POLICY_MAX_REASONS - 1] = nm, out->truncated++;
	return AAM_OK;
}

static const struct gw_pol *
find_policy(const gw_policy_set *s, const char *name)
{
	size_t lo = 0, hi = s->npols;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(s->pols[mid].name, name);
		if (c == 0)
			return &s->pols[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

bool
gw_policy_param_is_plain(const gw_policy_set *set, const struct gw_policy_decision *d,
                         const char *name)
{
	if (set == NULL || d == NULL || name == NULL)
		return false;
	bool any = false;
	for (size_t i = 0; i < d->nreasons; i++) {
		if (d->reasons[i].policy == NULL)
			continue;
		const struct gw_pol *p = find_policy(set, d->reasons[i].policy);
		if (p == NULL || pol_list_find(&p->plain, name) < 0)
			return false;
		any = true;
	}
	return any;
}
