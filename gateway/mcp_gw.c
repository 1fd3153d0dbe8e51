/*
 * aam-gateway's /mcp endpoint: the strong definition of gw.h's
 * gw_mcp_handle, passing the HTTP request to the MCP gateway
 * (gateway/mcp.h) with the caller's identity and the policy set in
 * service, and turning its reply into the HTTP answer (Mcp-Session-Id,
 * Allow), or, for a granted GET, into the server-to-client SSE stream.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aam/err.h"
#include "common/log.h"
#include "gateway/tools_gw.h"

/* SSE comments on an idle stream, well inside the connection's inactivity timeout. */
#define STREAM_KEEPALIVE_MS 10000
#define STREAM_TICK_MS      200
#define STREAM_CHECK_MS     1000

/* What the server-to-client stream's thread needs. */
struct mcp_stream {
	struct gw_mcp *m; /* outlives the stream: the server stops before the tools go */
	char session[GWM_SESSION_ID_LEN + 1];
	char owner[GWM_OWNER_MAX];
};

static int64_t
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * GET /mcp: the server-to-client stream.  The gateway has no message of
 * its own to push, so the stream carries SSE comments only: one at once
 * (the client sees it open) and one every STREAM_KEEPALIVE_MS (so neither
 * the gateway's nor a proxy's inactivity timeout closes it).  It ends
 * when the session ends (DELETE, expiry), the client goes, or the
 * gateway stops.
 */
static int
run_stream(struct gw *g, const struct gw_request_ctx *rc, struct aam_http_stream *st, void *arg)
{
	(void)g;
	(void)rc;
	struct mcp_stream *a = arg;
	struct aam_http_header h[] = {{.name = "Cache-Control", .value = "no-cache"}};
	int r = aam_http_stream_head(st, 200, h, 1, "text/event-stream");
	static const char open_note[] = ": stream open\n\n", keep[] = ": keepalive\n\n";
	if (r == AAM_OK)
		r = aam_http_stream_write(st, open_note, sizeof(open_note) - 1);
	int64_t t0 = mono_ms(), checked = t0, kept = t0;
	const char *why = r == AAM_OK ? "stopped" : "client_gone";
	while (r == AAM_OK) {
		struct timespec ts = {0, STREAM_TICK_MS * 1000000L};
		nanosleep(&ts, NULL);
		if (aam_http_stream_closed(st)) {
			why = "client_gone";
			break;
		}
		int64_t now = mono_ms();
		if (now - checked >= STREAM_CHECK_MS) {
			checked = now;
			if (!gw_mcp_session_live(a->m, a->session, a->owner)) {
				why = "session_ended";
				break;
			}
		}
		if (now - kept >= STREAM_KEEPALIVE_MS) {
			kept = now;
			r = aam_http_stream_write(st, keep, sizeof(keep) - 1);
			if (r != AAM_OK)
				why = "client_gone";
		}
	}
	aam_log(AAM_LOG_INFO, "mcp.stream_end", AAM_F_STR("why", why),
	        AAM_F_INT("ms", mono_ms() - t0));
	free(a);
	return AAM_OK;
}

/* Hands the granted stream of REQ's session to a worker thread. */
static int
start_stream(struct gw *g, const struct gw_request_ctx *rc, struct aam_http_response *resp,
             struct gw_mcp *m, const struct gwm_http *req)
{
	struct mcp_stream *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return gw_respond_error(resp, GW_ERR_JSONRPC, 503, "unavailable",
		                        "The gateway is short of memory.");
	a->m = m;
	snprintf(a->session, sizeof(a->session), "%s", req->session_id);
	snprintf(a->owner, sizeof(a->owner), "%s", req->owner);
	int r = gw_respond_stream(g, rc, resp, run_stream, a);
	if (r != AAM_OK)
		free(a);
	return r;
}

int
gw_mcp_handle(struct gw *g, const struct gw_request_ctx *rc, struct aam_http_response *resp)
{
	struct gw_tools *t;
	struct gw_mcp *m;
	if (!gwt_gw_state(g, &t, &m) || gwt_catalog_mcp_count(gw_tools_catalog(t)) == 0)
		return gw_respond_error(resp, GW_ERR_JSONRPC, 404, "not_enabled",
		                        "MCP is not enabled on this gateway (no MCP servers in the "
		                        "tool catalogue).");
	if (rc->who == NULL)
		return gw_respond_error(resp, GW_ERR_JSONRPC, 401, "unauthenticated",
		                        "MCP needs an authenticated identity.");
	const struct aam_http_request *h = rc->http;
	/* The session belongs to the workload, and to the virtual key when there is one. */
	char owner[GWM_OWNER_MAX];
	snprintf(owner, sizeof(owner), "%s|%s",
	         rc->who->spiffe_id != NULL ? rc->who->spiffe_id : "",
	         rc->who->vkey_id != NULL ? rc->who->vkey_id : "");
	gw_policy_set *set = gw_policy_store_acquire(gw_policies(g));
	struct gw_policy_request preq;
	memset(&preq, 0, sizeof(preq));
	gw_policy_request_init(g, rc, &preq);
	struct gwm_http req = {.method = h->method,
	                       .body = h->body,
	                       .body_len = h->body_len,
	                       .accept = aam_http_request_header(h, "Accept"),
	                       .content_type = aam_http_request_header(h, "Content-Type"),
	                       .session_id = aam_http_request_header(h, "Mcp-Session-Id"),
	                       .protocol_version =
	                               aam_http_request_header(h, "MCP-Protocol-Version"),
	                       .origin = aam_http_request_header(h, "Origin"),
	                       .owner = owner,
	                       .set = set,
	                       .preq = &preq};
	struct gwt_gw_ctx x = {.g = g, .rc = rc};
	struct gwt_io io;
	gwt_gw_io(&x, &io);
	struct gwm_reply r;
	gwm_reply_init(&r);
	int rc2 = gw_mcp_serve(m, &io, &req, &r);
	gw_policy_store_release(set);
	if (rc2 == AAM_OK && r.stream) {
		gwm_reply_uninit(&r);
		return start_stream(g, rc, resp, m, &req);
	}
	if (rc2 == AAM_OK) {
		resp->status = r.status;
		resp->content_type = strcmp(r.content_type, "text/event-stream") == 0
		                             ? "text/event-stream"
		                             : "application/json";
		aam_buf_reset(&resp->body);
		aam_buf_append(&resp->body, r.body.data, r.body.len);
		if (r.session_id[0] != '\0')
			rc2 = aam_http_response_header(resp, "Mcp-Session-Id", r.session_id);
		if (rc2 == AAM_OK && r.allow[0] != '\0')
			rc2 = aam_http_response_header(resp, "Allow", r.allow);
		if (rc2 == AAM_OK)
			rc2 = resp->body.err;
	}
	gwm_reply_uninit(&r);
	return rc2;
}
