/*
 * GET /v1/models (authenticated: only the routes the caller's policies
 * allow) and the operational endpoints /healthz, /readyz and /metrics
 * (unauthenticated; the gateway listens on loopback by default).
 */
#include "gateway/gw_int.h"
#include "aam/err.h"
#include "common/ipc.h"
#include "common/json.h"
#include "common/log.h"
#include "gateway/vkeys.h"

#include <string.h>
#include <time.h>

int
gw_api_models(struct gw *g, const struct gw_request_ctx *rc, struct aam_http_response *resp)
{
	/* The Anthropic SDK sends anthropic-version; it gets Anthropic's list shape. */
	bool anthropic = aam_http_request_header(rc->http, "anthropic-version") != NULL;
	gw_policy_set *set = gw_policy_store_acquire(g->policies);
	if (set == NULL) {
		gw_metrics_request(g->metrics, "/v1/models", "", "error", 503);
		return gw_respond_error(resp, anthropic ? GW_ERR_ANTHROPIC : GW_ERR_OPENAI, 503,
		                        "policies_not_loaded", "No policy set is loaded.");
	}
	const struct gw_reqstate *state = (const struct gw_reqstate *)(const void *)rc;
	struct gw_vkey k = {.models = state->who.vkey_models};
	json_t *data = json_array();
	/* A copy of the names: a reload may free the route table meanwhile. */
	char **names = NULL;
	size_t n = 0;
	if (g->router != NULL && gw_router_route_names(g->router, &names, &n) != AAM_OK) {
		json_decref(data);
		gw_policy_store_release(set);
		gw_metrics_request(g->metrics, "/v1/models", "", "error", 500);
		return gw_respond_error(resp, anthropic ? GW_ERR_ANTHROPIC : GW_ERR_OPENAI, 500,
		                        "internal_error", "Out of memory.");
	}
	for (size_t i = 0; i < n; i++) {
		const char *name = names[i];
		if (name == NULL || (k.models != NULL && !gw_vkey_allows_model(&k, name)))
			continue;
		struct gw_policy_request pr;
		gw_policy_request_init(g, rc, &pr);
		pr.kind = GW_POLICY_MODEL;
		pr.model = name;
		struct gw_policy_decision d;
		if (gw_policy_decide(set, &pr, &d) != AAM_OK || !d.allow)
			continue;
		json_t *e = anthropic ? json_pack("{s:s,s:s,s:s,s:s}", "type", "model", "id", name,
		                                  "display_name", name, "created_at",
		                                  "1970-01-01T00:00:00Z")
		                      : json_pack("{s:s,s:s,s:i,s:s}", "id", name, "object",
		                                  "model", "created", 0, "owned_by", "aam");
		json_array_append_new(data, e);
	}
	gw_router_route_names_free(names);
	gw_policy_store_release(set);
	json_t *body;
	if (anthropic) {
		size_t c = json_array_size(data);
		json_t *first = c > 0 ? json_object_get(json_array_get(data, 0), "id") : NULL;
		json_t *last = c > 0 ? json_object_get(json_array_get(data, c - 1), "id") : NULL;
		body = json_pack("{s:o,s:b,s:O?,s:O?}", "data", data, "has_more", 0, "first_id",
		                 first, "last_id", last);
	} else {
		body = json_pack("{s:s,s:o}", "object", "list", "data", data);
	}
	if (body == NULL)
		return AAM_E_NOMEM;
	int rc2 = aam_http_respond_json(resp, 200, body);
	json_decref(body);
	gw_metrics_request(g->metrics, "/v1/models", "", "allow", 200);
	return rc2;
}

int
gw_api_healthz(struct gw *g, struct aam_http_response *resp)
{
	(void)g;
	json_t *j = json_pack("{s:s}", "status", "ok");
	int rc = aam_http_respond_json(resp, 200, j);
	json_decref(j);
	return rc;
}

int
gw_api_readyz(struct gw *g, struct aam_http_response *resp)
{
	gw_policy_set *set = gw_policy_store_acquire(g->policies);
	bool policies = set != NULL;
	gw_policy_store_release(set);
	bool vault;
	if (g->router != NULL) {
		vault = gw_router_vault_ok(g->router);
	} else {
		struct aam_ipc_client *c = NULL;
		vault = g->cfg->vault_socket != NULL &&
		        aam_ipc_client_connect(g->cfg->vault_socket, 500, &c) == AAM_OK;
		aam_ipc_client_free(c);
	}
	bool audit = gw_audit_ready(g->audit);
	bool jwks = gw_authn_jwks_fresh(g->authn);
	/* The vault matters when model calls or audit records go through it. */
	bool need_vault =
	        g->router != NULL || strcmp(gw_audit_backend_name(g->audit), "vault") == 0;
	bool ready = policies && audit && jwks && (vault || !need_vault);
	json_t *checks = json_pack("{s:b,s:b,s:b,s:b,s:s,s:b}", "policies_loaded", policies,
	                           "vault_reachable", vault, "audit_writable", audit, "jwks_fresh",
	                           jwks, "audit_backend", gw_audit_backend_name(g->audit),
	                           "routes_loaded", g->router != NULL);
	json_t *j = ready ? json_pack("{s:s,s:o}", "status", "ready", "checks", checks)
	                  : json_pack("{s:{s:s,s:s},s:s,s:o}", "error", "code", "not_ready",
	                              "message", "The gateway is not ready.", "status", "not_ready",
	                              "checks", checks);
	if (j == NULL)
		return AAM_E_NOMEM;
	int rc = aam_http_respond_json(resp, ready ? 200 : 503, j);
	json_decref(j);
	return rc;
}

int
gw_api_metrics(struct gw *g, struct aam_http_response *resp)
{
	struct gw_authn_stats as;
	gw_authn_stats(g->authn, &as);
	gw_policy_set *set = gw_policy_store_acquire(g->policies);
	struct gw_metrics_extra x = {
	        .token_cache_hits = as.token_cache_hits,
	        .token_cache_misses = as.token_cache_misses,
	        .jwks_fetches = as.jwks_fetches,
	        .jwks_fetch_failures = as.jwks_fetch_failures,
	        .revocations_seen = as.revocations_seen,
	        .vkey_lookups = as.vkey_lookups,
	        .token_cache_size = as.token_cache_size,
	        .policy_generation = gw_policy_store_generation(g->policies),
	        .inflight = atomic_load(&g->inflight),
	        .jwks_fresh = gw_authn_jwks_fresh(g->authn),
	        .policies_loaded = set != NULL,
	};
	gw_policy_store_release(set);
	aam_buf_reset(&resp->body);
	int rc = gw_metrics_render(g->metrics, &x, &resp->body);
	if (rc != AAM_OK)
		return rc;
	resp->status = 200;
	resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
	return AAM_OK;
}
