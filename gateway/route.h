/*
 * aam-gateway's model router: the call interface the endpoint handlers
 * (gateway/api_model.c) use to run one model request.
 *
 * A call goes: budget reserve (SQLite, one transaction) -> deployment
 * choice (strategy, cooldown, policy regions) -> request translation for
 * the deployment's provider -> upstream request through aam-vault INJECT
 * (the gateway never holds a key) -> response translated back and written
 * to the sink, streamed chunk by chunk -> budget settle to real usage.
 * Fallbacks, retries and context-window fallbacks happen inside the call,
 * as long as no byte was written to the client.
 *
 * Thread-safety: every function may be called from many threads at once;
 * gw_router_reload swaps the route table atomically (calls in flight keep
 * the table they started with) and carries each kept deployment's runtime
 * state (cooldown, rpm/tpm window, in-flight count, latency) over to the
 * new table (docs/ROUTING.md, "Reloads").
 */
#ifndef AAM_GATEWAY_ROUTE_H
#define AAM_GATEWAY_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/http.h"

/* The API shape the client spoke (and expects back). */
enum gw_api { GW_API_OPENAI_CHAT = 1, GW_API_ANTHROPIC_MESSAGES, GW_API_OPENAI_EMBEDDINGS };

/* The authenticated caller, as budgets and audit need it (all borrowed). */
struct gw_identity {
	const char *spiffe_id, *owner, *team, *environment, *deployment, *jti, *method;
	bool attested;
	const char *vkey_id; /* NULL unless a virtual key */
};

/*
 * gw-core's HTTP layer.  HEAD is called once, before any BODY; each call
 * may block until the client has room.  BODY returns AAM_E_CLOSED when
 * the client went away (the router then stops reading upstream and
 * settles what was used so far).
 */
struct gw_sink {
	int (*head)(void *ctx, unsigned status, const struct aam_http_header *h, size_t n,
	            const char *content_type);
	int (*body)(void *ctx, const uint8_t *p, size_t n);
	void *ctx;
};

struct gw_call {
	enum gw_api api;
	json_t *body;      /* the parsed client request (borrowed; not modified) */
	const char *route; /* requested model/route name */
	bool stream;
	const struct gw_identity *who;
	const char *policy_name;                     /* budgets per policy; may be NULL */
	double policy_daily_usd, policy_monthly_usd; /* 0 = none; from the decision */
	const char *const *allowed_regions;          /* NULL/0 = any region */
	size_t nregions;
	int64_t max_tokens_cap; /* from policy limits, 0 = none */
	const char *request_id, *traceparent;
};

struct gw_call_result {
	char route[128], deployment[256], provider[32], upstream_model[128];
	int64_t input_tokens, output_tokens, cached_tokens;
	double cost_usd;
	unsigned status; /* status sent to the client */
	int64_t upstream_latency_us;
	int attempts;
	bool fell_back;
	char error_code[64]; /* stable code when failed: budget_exceeded, upstream_error,
	                        no_deployment, unknown_route, rate_limited, ... */
	char error_message[256];
};

struct gw_router;

/*
 * Loads ROUTES_PATH (docs/ROUTING.md), opens/creates the budget database
 * BUDGET_DB and remembers the vault's gateway socket.  ERR gets
 * "file:line:column: message" for a bad routes file.
 */
int gw_router_new(const char *routes_path, const char *budget_db, const char *vault_socket,
                  struct gw_router **out, char *err, size_t errlen);
/* Re-reads the routes file; on error the old table stays in force. */
int gw_router_reload(struct gw_router *r, const char *routes_path, char *err, size_t errlen);
void gw_router_free(struct gw_router *r);

/*
 * Runs CALL, writing the client's response to SINK.  Errors before any
 * byte was sent are returned (res->status and res->error_code set, nothing
 * written to SINK) so gw-core answers them in the client's API format.
 * Once the head was written, the return is AAM_OK even when the upstream
 * failed mid-stream (res->error_code then says so).
 */
int gw_router_call(struct gw_router *r, const struct gw_call *call, struct gw_sink *sink,
                   struct gw_call_result *res);

/*
 * For GET /v1/models and metrics labels.  Routes reload on SIGHUP and
 * whenever the routes file changes, and a reload frees the old table as
 * soon as no call holds it, so nothing here hands out a pointer into a
 * table: the names are copied, in file order, into *NAMES, one allocation
 * the caller owns and frees with gw_router_route_names_free (the strings
 * live inside it).  *N gets the count.  gw-core filters them by policy.
 */
int gw_router_route_names(struct gw_router *r, char ***names, size_t *n);
void gw_router_route_names_free(char **names);
/* Whether NAME is a route of the table in force (a snapshot: a reload may follow). */
bool gw_router_has_route(struct gw_router *r, const char *name);
size_t gw_router_route_count(struct gw_router *r);
/* For /readyz: the vault's gateway socket answers. */
bool gw_router_vault_ok(struct gw_router *r);

/*
 * Spend so far for SCOPE ("identity", "team", "policy", "vkey") and KEY,
 * in USD, today and this month (UTC).
 */
int gw_budget_status(struct gw_router *r, const char *scope, const char *key, double *spent_today,
                     double *spent_month);

#endif /* AAM_GATEWAY_ROUTE_H */
