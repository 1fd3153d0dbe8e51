/*
 * libFuzzer target for the MCP gateway's transport: raw bytes are the
 * body of a POST to /mcp within an initialized session (the first byte
 * picks the protocol version and whether the client accepts JSON or only
 * SSE), served by gw_mcp_serve() with an upstream that answers every
 * request with an empty result and a policy that allows some tools.
 * Every request must get an HTTP answer.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "gateway/mcp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char CAT[] = "apiVersion: access.envisionai.dev/v1\nkind: ToolCatalog\n"
                          "metadata: {name: f}\nspec:\n  mcp_servers:\n"
                          "    - name: docs\n      url: https://mcp.example.com/mcp\n"
                          "      credential: k\n";
static const char POL[] = "apiVersion: access.envisionai.dev/v1\nkind: AgentPolicy\n"
                          "metadata: {name: p}\nspec:\n  identity: {workload: spiffe://f/a}\n"
                          "  tools:\n    - resource: mcp.docs\n      actions: [search]\n"
                          "      when: {q: {max_length: 8}}\n";

static int
inject(void *ctx, const struct gwt_request *req, const char *cred, int64_t timeout_ms,
       struct gwt_response *resp)
{
	(void)ctx;
	(void)cred;
	(void)timeout_ms;
	json_t *msg = json_loadb((const char *)req->body.data, req->body.len, 0, NULL);
	json_t *id = json_object_get(msg, "id");
	resp->status = id != NULL ? 200 : 202;
	if (id != NULL) {
		json_t *r = json_pack("{s:s, s:O, s:{s:s, s:[{s:s}], s:[], s:[]}}", "jsonrpc",
		                      "2.0", "id", id, "result", "protocolVersion", "2025-06-18",
		                      "tools", "name", "search", "resources", "prompts");
		char *s = json_dumps(r, JSON_COMPACT);
		aam_buf_append(&resp->headers, "content-type\0application/json\0", 30);
		aam_buf_append_str(&resp->body, s);
		free(s);
		json_decref(r);
	}
	json_decref(msg);
	return AAM_OK;
}

static int
audit_new(void *ctx, const char *kind, json_t **ev)
{
	(void)ctx;
	*ev = json_pack("{s:s}", "kind", kind);
	return AAM_OK;
}

static int
audit(void *ctx, json_t *ev)
{
	(void)ctx;
	(void)ev;
	return AAM_OK;
}

static const struct gwt_io IO = {.inject = inject, .audit_new = audit_new, .audit = audit};
static struct gwt_catalog *cat;
static gw_policy_set *set;
static struct gw_mcp *m;
static char sid[2][GWM_SESSION_ID_LEN + 1];

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gw_policy_request pr = {.workload = "spiffe://f/a", .now = 1767607200};
	struct gwm_http req = {.method = "POST",
	                       .content_type = "application/json",
	                       .owner = "spiffe://f/a",
	                       .preq = &pr};
	if (m == NULL) {
		if (gwt_catalog_load_buffer("c.yaml", CAT, strlen(CAT), &cat, NULL) != AAM_OK ||
		    gw_policy_set_load_buffer("p.yaml", POL, strlen(POL), NULL, &set, NULL) !=
		            AAM_OK ||
		    gw_mcp_new(cat, &m) != AAM_OK)
			abort();
		const char *versions[] = {GWM_VERSION_LATEST, GWM_VERSION_OLDEST};
		for (int i = 0; i < 2; i++) {
			char body[256];
			snprintf(body, sizeof(body),
			         "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\","
			         "\"params\":{"
			         "\"protocolVersion\":\"%s\"}}",
			         versions[i]);
			req.body = (const uint8_t *)body;
			req.body_len = strlen(body);
			struct gwm_reply r;
			gwm_reply_init(&r);
			if (gw_mcp_serve(m, &IO, &req, &r) != AAM_OK || r.session_id[0] == '\0')
				abort();
			memcpy(sid[i], r.session_id, sizeof(sid[i]));
			gwm_reply_uninit(&r);
		}
	}
	if (size == 0)
		return 0;
	req.set = set;
	req.session_id = sid[data[0] & 1];
	req.accept = (data[0] & 2) ? "text/event-stream" : "application/json, text/event-stream";
	req.body = data + 1;
	req.body_len = size - 1;
	struct gwm_reply r;
	gwm_reply_init(&r);
	if (gw_mcp_serve(m, &IO, &req, &r) != AAM_OK || r.status < 200 || r.status > 599)
		abort();
	gwm_reply_uninit(&r);
	return 0;
}
