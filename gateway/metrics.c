/*
 * Counters and histograms for /metrics.  See metrics.h.
 *
 * One mutex guards everything: an update is a hash lookup and an add, far
 * cheaper than anything else a request does, so a lock-free design would
 * buy nothing measurable.
 */
#include "gateway/metrics.h"
#include "aam/err.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LABELS 4
#define MAX_SERIES 8192 /* past this, new label sets are counted under "other" */
#define NBUCKETS   14

static const double bucket_s[NBUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                          1,     2.5,  5,     10,   30,  60,   120};

enum fam {
	F_REQUESTS,
	F_SPEND,
	F_INPUT_TOKENS,
	F_OUTPUT_TOKENS,
	F_BUDGET_REJECTIONS,
	F_AUTHN_FAILURES,
	F_AUDIT_FAILURES,
	F_TOOL_CALLS,
	F__N
};

static const struct {
	const char *name, *help, *type;
	const char *labels[MAX_LABELS];
} fams[F__N] = {
        [F_REQUESTS] = {"aam_gateway_requests_total",
                        "Requests by endpoint, model route, policy decision and HTTP status.",
                        "counter",
                        {"endpoint", "model", "decision", "status"}},
        [F_SPEND] = {"aam_gateway_spend_usd_total",
                     "Upstream spend in USD by model route.",
                     "counter",
                     {"model"}},
        [F_INPUT_TOKENS] = {"aam_gateway_input_tokens_total",
                            "Input tokens by model route.",
                            "counter",
                            {"model"}},
        [F_OUTPUT_TOKENS] = {"aam_gateway_output_tokens_total",
                             "Output tokens by model route.",
                             "counter",
                             {"model"}},
        [F_BUDGET_REJECTIONS] = {"aam_gateway_budget_rejections_total",
                                 "Requests refused by a budget or rate limit, by model route.",
                                 "counter",
                                 {"model"}},
        [F_AUTHN_FAILURES] = {"aam_gateway_authn_failures_total",
                              "Failed authentications by error code.",
                              "counter",
                              {"code"}},
        [F_AUDIT_FAILURES] = {"aam_gateway_audit_failures_total",
                              "Requests refused because the audit record could not be stored.",
                              "counter",
                              {NULL}},
        [F_TOOL_CALLS] = {"aam_gateway_tool_calls_total",
                          "Tool calls by resource, decision and HTTP status.",
                          "counter",
                          {"resource", "decision", "status"}},
};

struct series {
	enum fam fam;
	char *labels[MAX_LABELS];
	double v;
	struct series *next;     /* hash chain */
	struct series *next_all; /* insertion order, for rendering */
};

struct hist {
	char *model;
	uint64_t b[NBUCKETS];
	uint64_t count;
	double sum;
	struct hist *next;
};

struct gw_metrics {
	pthread_mutex_t mu;
	struct series *tab[1024];
	struct series *all, **all_tail;
	size_t nseries;
	struct hist *hists;
	size_t nhists;
};

int
gw_metrics_new(struct gw_metrics **out)
{
	struct gw_metrics *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return AAM_E_NOMEM;
	pthread_mutex_init(&m->mu, NULL);
	m->all_tail = &m->all;
	*out = m;
	return AAM_OK;
}

void
gw_metrics_free(struct gw_metrics *m)
{
	if (m == NULL)
		return;
	for (struct series *s = m->all; s != NULL;) {
		struct series *n = s->next_all;
		for (int i = 0; i < MAX_LABELS; i++)
			free(s->labels[i]);
		free(s);
		s = n;
	}
	for (struct hist *h = m->hists; h != NULL;) {
		struct hist *n = h->next;
		free(h->model);
		free(h);
		h = n;
	}
	pthread_mutex_destroy(&m->mu);
	free(m);
}

static size_t
key_hash(enum fam f, const char *const *lv)
{
	uint64_t h = 1469598103934665603ull ^ (uint64_t)f;
	for (int i = 0; i < MAX_LABELS; i++) {
		for (const char *p = lv[i] != NULL ? lv[i] : ""; *p != '\0'; p++) {
			h ^= (unsigned char)*p;
			h *= 1099511628211ull;
		}
		h ^= 0x1f;
		h *= 1099511628211ull;
	}
	return (size_t)(h % 1024);
}

static bool
same(const char *a, const char *b)
{
	return strcmp(a != NULL ? a : "", b != NULL ? b : "") == 0;
}

/* Adds V to the series FAM{LV...}; caller holds MU. */
static void
add_locked(struct gw_metrics *m, enum fam f, const char *const *lv, double v)
{
	static const char *const other[MAX_LABELS] = {"other", "other", "other", "other"};
	for (int pass = 0; pass < 2; pass++) {
		size_t k = key_hash(f, lv);
		for (struct series *s = m->tab[k]; s != NULL; s = s->next) {
			if (s->fam != f)
				continue;
			bool eq = true;
			for (int i = 0; i < MAX_LABELS && eq; i++)
				eq = same(s->labels[i], lv[i]);
			if (eq) {
				s->v += v;
				return;
			}
		}
		/* Past the bound only the per-family "other" series may still be created. */
		if (m->nseries < MAX_SERIES || pass == 1) {
			struct series *s = calloc(1, sizeof(*s));
			if (s == NULL)
				return;
			s->fam = f;
			for (int i = 0; i < MAX_LABELS; i++)
				if (fams[f].labels[i] != NULL)
					s->labels[i] = strdup(lv[i] != NULL ? lv[i] : "");
			s->v = v;
			s->next = m->tab[k];
			m->tab[k] = s;
			*m->all_tail = s;
			m->all_tail = &s->next_all;
			m->nseries++;
			return;
		}
		/* Full: fold into one "other" series per family. */
		lv = other;
	}
}

static void
add(struct gw_metrics *m, enum fam f, const char *l0, const char *l1, const char *l2,
    const char *l3, double v)
{
	if (m == NULL)
		return;
	const char *lv[MAX_LABELS] = {l0, l1, l2, l3};
	pthread_mutex_lock(&m->mu);
	add_locked(m, f, lv, v);
	pthread_mutex_unlock(&m->mu);
}

void
gw_metrics_request(struct gw_metrics *m, const char *endpoint, const char *model,
                   const char *decision, unsigned status)
{
	char st[8];
	snprintf(st, sizeof(st), "%u", status);
	add(m, F_REQUESTS, endpoint, model != NULL ? model : "", decision != NULL ? decision : "",
	    st, 1);
}

void
gw_metrics_upstream(struct gw_metrics *m, const char *model, int64_t latency_us, double cost_usd,
                    int64_t input_tokens, int64_t output_tokens)
{
	if (m == NULL)
		return;
	const char *lv[MAX_LABELS] = {model, NULL, NULL, NULL};
	pthread_mutex_lock(&m->mu);
	if (cost_usd > 0)
		add_locked(m, F_SPEND, lv, cost_usd);
	if (input_tokens > 0)
		add_locked(m, F_INPUT_TOKENS, lv, (double)input_tokens);
	if (output_tokens > 0)
		add_locked(m, F_OUTPUT_TOKENS, lv, (double)output_tokens);
	struct hist *h = m->hists;
	while (h != NULL && strcmp(h->model, model) != 0)
		h = h->next;
	if (h == NULL && m->nhists < 1024 && (h = calloc(1, sizeof(*h))) != NULL) {
		h->model = strdup(model);
		if (h->model == NULL) {
			free(h);
			h = NULL;
		} else {
			h->next = m->hists;
			m->hists = h;
			m->nhists++;
		}
	}
	if (h != NULL) {
		double s = (double)latency_us / 1e6;
		for (int i = 0; i < NBUCKETS; i++)
			if (s <= bucket_s[i])
				h->b[i]++;
		h->count++;
		h->sum += s;
	}
	pthread_mutex_unlock(&m->mu);
}

void
gw_metrics_budget_rejection(struct gw_metrics *m, const char *model)
{
	add(m, F_BUDGET_REJECTIONS, model, NULL, NULL, NULL, 1);
}

void
gw_metrics_authn_failure(struct gw_metrics *m, const char *code)
{
	add(m, F_AUTHN_FAILURES, code, NULL, NULL, NULL, 1);
}

void
gw_metrics_audit_failure(struct gw_metrics *m)
{
	add(m, F_AUDIT_FAILURES, NULL, NULL, NULL, NULL, 1);
}

void
gw_metrics_tool(struct gw_metrics *m, const char *resource, const char *decision, unsigned status)
{
	char st[8];
	snprintf(st, sizeof(st), "%u", status);
	add(m, F_TOOL_CALLS, resource, decision, st, NULL, 1);
}

/* ---- rendering ----------------------------------------------------------------- */

/* A label value escaped as the exposition format requires. */
static void
put_label(struct aam_buf *b, const char *name, const char *v)
{
	aam_buf_printf(b, "%s=\"", name);
	for (const char *p = v != NULL ? v : ""; *p != '\0'; p++) {
		if (*p == '\\' || *p == '"')
			aam_buf_append_byte(b, '\\');
		if (*p == '\n') {
			aam_buf_append_str(b, "\\n");
			continue;
		}
		aam_buf_append_byte(b, (uint8_t)*p);
	}
	aam_buf_append_byte(b, '"');
}

static void
put_gauge(struct aam_buf *b, const char *name, const char *help, const char *type, double v)
{
	aam_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name,
	               v);
}

int
gw_metrics_render(struct gw_metrics *m, const struct gw_metrics_extra *x, struct aam_buf *out)
{
	pthread_mutex_lock(&m->mu);
	for (int f = 0; f < F__N; f++) {
		aam_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", fams[f].name, fams[f].help,
		               fams[f].name, fams[f].type);
		bool any = false;
		for (struct series *s = m->all; s != NULL; s = s->next_all) {
			if (s->fam != (enum fam)f)
				continue;
			any = true;
			aam_buf_append_str(out, fams[f].name);
			if (fams[f].labels[0] != NULL) {
				aam_buf_append_byte(out, '{');
				for (int i = 0; i < MAX_LABELS && fams[f].labels[i] != NULL; i++) {
					if (i > 0)
						aam_buf_append_byte(out, ',');
					put_label(out, fams[f].labels[i], s->labels[i]);
				}
				aam_buf_append_byte(out, '}');
			}
			aam_buf_printf(out, " %.17g\n", s->v);
		}
		if (!any && fams[f].labels[0] == NULL)
			aam_buf_printf(out, "%s 0\n", fams[f].name);
	}
	static const char hname[] = "aam_gateway_upstream_latency_seconds";
	aam_buf_printf(out,
	               "# HELP %s Upstream call latency by model route.\n# TYPE %s histogram\n",
	               hname, hname);
	for (struct hist *h = m->hists; h != NULL; h = h->next) {
		for (int i = 0; i < NBUCKETS; i++) {
			aam_buf_printf(out, "%s_bucket{", hname);
			put_label(out, "model", h->model);
			aam_buf_printf(out, ",le=\"%g\"} %llu\n", bucket_s[i],
			               (unsigned long long)h->b[i]);
		}
		aam_buf_printf(out, "%s_bucket{", hname);
		put_label(out, "model", h->model);
		aam_buf_printf(out, ",le=\"+Inf\"} %llu\n%s_sum{", (unsigned long long)h->count,
		               hname);
		put_label(out, "model", h->model);
		aam_buf_printf(out, "} %.17g\n%s_count{", h->sum, hname);
		put_label(out, "model", h->model);
		aam_buf_printf(out, "} %llu\n", (unsigned long long)h->count);
	}
	pthread_mutex_unlock(&m->mu);

	if (x != NULL) {
		put_gauge(out, "aam_gateway_token_cache_hits_total",
		          "Requests whose token was already verified (one signature check).",
		          "counter", (double)x->token_cache_hits);
		put_gauge(out, "aam_gateway_token_cache_misses_total",
		          "Requests whose token had to be verified.", "counter",
		          (double)x->token_cache_misses);
		double total = (double)(x->token_cache_hits + x->token_cache_misses);
		put_gauge(out, "aam_gateway_token_cache_hit_ratio",
		          "Share of token lookups served from the cache.", "gauge",
		          total > 0 ? (double)x->token_cache_hits / total : 0);
		put_gauge(out, "aam_gateway_token_cache_entries", "Verified tokens cached.",
		          "gauge", (double)x->token_cache_size);
		put_gauge(out, "aam_gateway_jwks_fetches_total", "JWKS fetches from aam-attest.",
		          "counter", (double)x->jwks_fetches);
		put_gauge(out, "aam_gateway_jwks_fetch_failures_total", "Failed JWKS fetches.",
		          "counter", (double)x->jwks_fetch_failures);
		put_gauge(out, "aam_gateway_jwks_fresh", "1 when the issuer's key set is fresh.",
		          "gauge", x->jwks_fresh);
		put_gauge(out, "aam_gateway_revocations_seen_total",
		          "Revocation entries read from aam-attest.", "counter",
		          (double)x->revocations_seen);
		put_gauge(out, "aam_gateway_virtual_key_lookups_total", "Virtual key lookups.",
		          "counter", (double)x->vkey_lookups);
		put_gauge(out, "aam_gateway_policies_loaded", "1 when a policy set is in service.",
		          "gauge", x->policies_loaded);
		put_gauge(out, "aam_gateway_policy_generation", "Policy sets swapped in so far.",
		          "counter", (double)x->policy_generation);
		put_gauge(out, "aam_gateway_inflight_requests", "Requests being served.", "gauge",
		          (double)x->inflight);
	}
	return aam_buf_failed(out) ? out->err : AAM_OK;
}
