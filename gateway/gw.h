/*
 * aam-gateway's core: the daemon state shared by every endpoint, the
 * per-request context a handler receives, and the extension points that
 * the tool-call and MCP endpoints (issue 7) plug into.
 *
 * Request flow (gateway/server.c):
 *
 *   HTTP front (common/http.h) -> authentication (DPoP-bound token or
 *   virtual key) -> endpoint handler (gateway/api_*.c, gw_tools_handle,
 *   gw_mcp_handle) -> policy decision -> router / vault -> audit event.
 *
 * The gateway holds no secret: credentials are injected by aam-vault, and
 * the only key material here is public (the issuer's JWKS).
 *
 * Threading.  Handlers run on libmicrohttpd's threads, several at once, so
 * everything reachable from struct gw is thread-safe.  A handler may answer
 * with a buffered response (fill RESP and return) or hand the answer to a
 * worker thread with gw_respond_stream(), which keeps the request context
 * alive until the worker returns.  Streaming (SSE) goes through the latter.
 */
#ifndef AAM_GATEWAY_GW_H
#define AAM_GATEWAY_GW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/http.h"
#include "gateway/policy.h"
#include "gateway/route.h" /* struct gw_identity, struct gw_sink, struct gw_router */

struct gw; /* the daemon; opaque */

/* Error body shapes: each SDK reads its own (see gw_respond_error). */
enum gw_err_style {
	GW_ERR_AAM = 0,   /* {"error":{"code","message"}} (DESIGN.md invariant 8) */
	GW_ERR_OPENAI,    /* {"error":{"message","type","code"}} */
	GW_ERR_ANTHROPIC, /* {"type":"error","error":{"type","message"}} */
	GW_ERR_JSONRPC,   /* MCP: {"jsonrpc":"2.0","id":null,"error":{"code","message"}} */
};

#define GW_REQUEST_ID_LEN 32 /* hex characters */

/*
 * One authenticated request, as a handler sees it.  Everything is
 * borrowed and lives until the handler returns, or, when the handler
 * called gw_respond_stream(), until the stream's RUN function returns.
 */
struct gw_request_ctx {
	const struct aam_http_request *http; /* method, path, body, headers */
	const struct gw_identity *who;       /* the authenticated workload */
	/* Request correlation, always set: an id minted here (32 hex digits)
	 * and the W3C traceparent header when the client sent a valid one. */
	const char *request_id;
	const char *traceparent; /* NULL when absent or malformed */
	/* Delegation: x-aam-on-behalf-of when the client sent it (bounded,
	 * printable); endpoints add the body's user fields themselves. */
	const char *on_behalf_of;
	int64_t started_us; /* monotonic clock at arrival, microseconds */
	/* Path below the extension point's prefix: "github/issues.create"
	 * for "/v1/tools/github/issues.create", "" for "/mcp". */
	const char *subpath;
};

/* ---- extension points (weak defaults answer 404 not_enabled) ---------- */

/*
 * POST|GET /v1/tools/<...>: tool calls.  RESP is the buffered response;
 * return AAM_OK after filling it (or after gw_respond_stream).
 */
int gw_tools_handle(struct gw *g, const struct gw_request_ctx *rc, struct aam_http_response *resp);
/* POST|GET|DELETE /mcp: MCP over streamable HTTP (JSON-RPC 2.0). */
int gw_mcp_handle(struct gw *g, const struct gw_request_ctx *rc, struct aam_http_response *resp);

/*
 * Optional start/stop hooks for those modules (weak defaults do nothing):
 * called once after the daemon state is ready and once before it is torn
 * down.  A non-zero return from init stops start-up.
 */
int gw_tools_init(struct gw *g);
void gw_tools_uninit(struct gw *g);

/* ---- what a handler can reach --------------------------------------- */

/* The policy store in service (acquire/decide/release, gateway/policy.h). */
gw_policy_store *gw_policies(struct gw *g);
/* aam-vault's gateway socket path (for INJECT calls). */
const char *gw_vault_socket(const struct gw *g);
/* The model router (gateway/route.h); may be NULL when routes are not configured. */
struct gw_router *gw_router_of(struct gw *g);
/* The gateway's runtime environment name for policy conditions, or NULL. */
const char *gw_environment(const struct gw *g);

/*
 * Fills the identity part of a policy request from RC (workload, owner,
 * team, environment, deployment, attested, now, runtime environment).
 * The caller sets kind and the model or tool fields.
 */
void gw_policy_request_init(struct gw *g, const struct gw_request_ctx *rc,
                            struct gw_policy_request *req);

/* ---- audit ---------------------------------------------------------- */

/*
 * A new audit event (*OUT owns it) with the fields every gateway record
 * carries: "kind" (KIND, e.g. "model.call", "tool.call"), "time" (RFC
 * 3339 UTC), "request_id", "traceparent", "identity" {workload, owner,
 * team, environment, deployment, method, attested, jti | vkey_id} and
 * "on_behalf_of" when known.  The caller adds decision, outcome, ...
 */
int gw_audit_event_new(struct gw *g, const struct gw_request_ctx *rc, const char *kind,
                       json_t **out);
/*
 * Adds the decision to EV: "policy" {set_hash, names[], reasons[]},
 * "decision" "allow"|"deny" and "reason" (the first reason's code).
 */
int gw_audit_add_decision(json_t *ev, const struct gw_policy_decision *d);
/*
 * Appends EV to the audit log through aam-vault and returns only once it
 * is durable.  Any error means the request must not be served: answer
 * 503 audit_unavailable (gw_respond_error(..., 503, "audit_unavailable",
 * ...)).  SEQ (may be NULL) receives the record's sequence number.
 */
int gw_audit_emit(struct gw *g, const json_t *ev, uint64_t *seq);

/* ---- answers -------------------------------------------------------- */

/*
 * An error in STYLE's shape with STATUS.  CODE is a stable snake_case
 * code ("policy_denied", "audit_unavailable"); MESSAGE is fixed text or
 * text built only from names the gateway controls (never request values
 * or secrets).  For GW_ERR_OPENAI the "type" is derived from STATUS
 * (invalid_request_error, authentication_error, permission_error,
 * not_found_error, rate_limit_error, api_error); for GW_ERR_ANTHROPIC
 * likewise Anthropic's types (..., overloaded_error).
 */
int gw_respond_error(struct aam_http_response *resp, enum gw_err_style style, unsigned status,
                     const char *code, const char *message);
/* The same error body written into B (for streams and sinks). */
int gw_error_body(struct aam_buf *b, enum gw_err_style style, unsigned status, const char *code,
                  const char *message);

/*
 * Streaming: answer from a worker thread.  RUN(G, RC, ST, ARG) runs on a
 * new thread after the handler returns; it starts the response with
 * aam_http_stream_head() and writes the body with aam_http_stream_write()
 * (blocks while the client is slow; AAM_E_CLOSED once it has gone).  RC
 * and everything in it stay valid until RUN returns.  ARG belongs to RUN
 * (it frees it).  If RUN returns without starting a response the client
 * gets 500.  Call at most once per request, then return AAM_OK.
 */
typedef int (*gw_stream_fn)(struct gw *g, const struct gw_request_ctx *rc,
                            struct aam_http_stream *st, void *arg);
int gw_respond_stream(struct gw *g, const struct gw_request_ctx *rc, struct aam_http_response *resp,
                      gw_stream_fn run, void *arg);

/* A struct gw_sink (gateway/route.h) writing to ST. */
void gw_sink_for_stream(struct gw_sink *sink, struct aam_http_stream *st);

/* ---- metrics -------------------------------------------------------- */

/*
 * Counts a tool call for /metrics:
 * aam_gateway_tool_calls_total{resource,decision,status}.
 */
void gw_metrics_tool_call(struct gw *g, const char *resource, const char *decision,
                          unsigned status);

#endif /* AAM_GATEWAY_GW_H */
