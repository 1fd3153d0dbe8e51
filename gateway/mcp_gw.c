/*
 * aam-gateway's /mcp endpoint: the strong definition of gw.h's
 * gw_mcp_handle, passing the HTTP request to the MCP gateway
 * (gateway/mcp.h) with the caller's identity and the policy set in
 * service, and turning its reply into the HTTP answer (Mcp-Session-Id,
 * Allow).
 */
#include <stdio.h>
#include <string.h>

#include "aam/err.h"
#include "gateway/tools_gw.h"

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
