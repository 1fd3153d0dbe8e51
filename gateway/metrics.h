/*
 * Prometheus metrics for /metrics (text exposition format 0.0.4).
 *
 * Counters are kept per label set in a bounded table; label values come
 * from names the gateway controls (endpoint paths, configured route
 * names, decision and status), never from free-form client input, so the
 * series count stays bounded.  Callers pass "other" for a model name that
 * is not a configured route.
 */
#ifndef AAM_GATEWAY_METRICS_H
#define AAM_GATEWAY_METRICS_H

#include <stdint.h>

#include "common/buf.h"

struct gw_metrics;

/* Figures owned by other modules, sampled when /metrics is rendered. */
struct gw_metrics_extra {
	uint64_t token_cache_hits, token_cache_misses;
	uint64_t jwks_fetches, jwks_fetch_failures, revocations_seen, vkey_lookups;
	uint64_t token_cache_size;
	uint64_t policy_generation;
	long inflight;
	int jwks_fresh, policies_loaded;
};

int gw_metrics_new(struct gw_metrics **out);
void gw_metrics_free(struct gw_metrics *m);

/* One finished request. */
void gw_metrics_request(struct gw_metrics *m, const char *endpoint, const char *model,
                        const char *decision, unsigned status);
/* One upstream call: its latency, cost and tokens. */
void gw_metrics_upstream(struct gw_metrics *m, const char *model, int64_t latency_us,
                         double cost_usd, int64_t input_tokens, int64_t output_tokens);
void gw_metrics_budget_rejection(struct gw_metrics *m, const char *model);
void gw_metrics_authn_failure(struct gw_metrics *m, const char *code);
void gw_metrics_audit_failure(struct gw_metrics *m);
void gw_metrics_tool(struct gw_metrics *m, const char *resource, const char *decision,
                     unsigned status);

/* Appends the whole exposition to OUT. */
int gw_metrics_render(struct gw_metrics *m, const struct gw_metrics_extra *x, struct aam_buf *out);

#endif /* AAM_GATEWAY_METRICS_H */
