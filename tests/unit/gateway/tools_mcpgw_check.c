/*
 * The MCP gateway without a network: the streamable HTTP transport's
 * rules (sessions, protocol versions, batches, notifications, methods),
 * hostile JSON-RPC, and the policy on tools, prompts and resources, with
 * a small upstream MCP server simulated behind the INJECT seam that
 * records what reached it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "gateway/mcp.h"

#define AGENT "spiffe://prod/agent/docs-bot"

static const char CATALOG[] = "apiVersion: access.envisionai.dev/v1\n"
                              "kind: ToolCatalog\n"
                              "metadata: {name: mcp}\n"
                              "spec:\n"
                              "  mcp_servers:\n"
                              "    - name: docs\n"
                              "      url: https://mcp.example.com/mcp\n"
                              "      credential: docs-key\n"
                              "      tools:\n"
                              "        purge_all: {resource: docs.admin, action: purge}\n"
                              "      resources: {resource: docs.files, action: read}\n"
                              "      prompts: {resource: docs.prompts, action: get}\n";

static const char POLICY[] = "apiVersion: access.envisionai.dev/v1\n"
                             "kind: AgentPolicy\n"
                             "metadata: {name: docs-reader}\n"
                             "spec:\n"
                             "  identity: {workload: " AGENT "}\n"
                             "  tools:\n"
                             "    - resource: mcp.docs\n"
                             "      actions: [search, read_page]\n"
                             "      deny: [delete_page]\n"
                             "    - resource: mcp.docs\n"
                             "      actions: [lookup]\n"
                             "      when: {id: {max: 100}}\n"
                             "    - resource: docs.files\n"
                             "      actions: [read]\n"
                             "      when: {uri: {prefix: \"docs://public/\"}}\n"
                             "    - resource: docs.prompts\n"
                             "      actions: [get]\n"
                             "      when: {name: {in: [summarize]}}\n";

/* ---- the simulated upstream MCP server --------------------------------- */

struct up {
	int inits, posts, calls, reads, gets;
	char last_cred[64], last_session[128], last_version[32];
	json_t *last_args;
	bool sse;         /* answer as text/event-stream */
	int expire_next;  /* answer 404 to the next N session requests */
	bool refuse_init; /* answer 500 to initialize */
	bool bad_session; /* hand out a malformed session id */
	json_t *records;  /* audit records */
};
static struct up U;

static int
up_inject(void *ctx, const struct gwt_request *req, const char *cred, int64_t timeout_ms,
          struct gwt_response *resp)
{
	(void)ctx;
	(void)timeout_ms;
	U.posts++;
	snprintf(U.last_cred, sizeof(U.last_cred), "%s", cred);
	assert_string_equal(req->method, "POST");
	assert_string_equal(aam_buf_cstr(&req->url), "https://mcp.example.com/mcp");
	const char *sid = NULL, *ver = NULL;
	for (size_t i = 0; i < req->nheaders; i++) {
		if (strcmp(req->headers[i].name, "Mcp-Session-Id") == 0)
			sid = req->headers[i].value;
		if (strcmp(req->headers[i].name, "MCP-Protocol-Version") == 0)
			ver = req->headers[i].value;
	}
	snprintf(U.last_session, sizeof(U.last_session), "%s", sid != NULL ? sid : "");
	snprintf(U.last_version, sizeof(U.last_version), "%s", ver != NULL ? ver : "");
	json_error_t e;
	json_t *msg = json_loadb((const char *)req->body.data, req->body.len, 0, &e);
	assert_non_null(msg);
	const char *method = json_string_value(json_object_get(msg, "method"));
	json_t *id = json_object_get(msg, "id");
	json_t *params = json_object_get(msg, "params");
	json_t *result = NULL;
	if (strcmp(method, "initialize") == 0) {
		U.inits++;
		if (U.refuse_init) {
			resp->status = 500;
			json_decref(msg);
			return AAM_OK;
		}
		assert_null(sid);
		result = json_pack("{s:s, s:{}, s:{s:s, s:s}}", "protocolVersion", "2025-06-18",
		                   "capabilities", "serverInfo", "name", "sim", "version", "1");
		char hdr[128];
		int n = snprintf(hdr, sizeof(hdr), "mcp-session-id%c%s%c", 0,
		                 U.bad_session ? "bad session" : "up-session-1", 0);
		aam_buf_append(&resp->headers, hdr, (size_t)n);
	} else if (id == NULL) {
		resp->status = 202;
		json_decref(msg);
		return AAM_OK;
	} else {
		assert_string_equal(U.last_session, "up-session-1");
		assert_string_equal(U.last_version, "2025-06-18");
		if (U.expire_next > 0) {
			U.expire_next--;
			resp->status = 404;
			json_decref(msg);
			return AAM_OK;
		}
		if (strcmp(method, "tools/list") == 0) {
			result = json_pack(
			        "{s:[{s:s, s:{s:s}}, {s:s, s:{s:s}}, {s:s, s:{s:s}}, {s:s, "
			        "s:{s:s}}, "
			        "{s:s, s:{s:s}}, {s:s, s:{s:s}}]}",
			        "tools", "name", "search", "inputSchema", "type", "object", "name",
			        "read_page", "inputSchema", "type", "object", "name", "delete_page",
			        "inputSchema", "type", "object", "name", "lookup", "inputSchema",
			        "type", "object", "name", "purge_all", "inputSchema", "type",
			        "object", "name", "bad name!", "inputSchema", "type", "object");
		} else if (strcmp(method, "tools/call") == 0) {
			U.calls++;
			json_decref(U.last_args);
			U.last_args = json_incref(json_object_get(params, "arguments"));
			const char *name = json_string_value(json_object_get(params, "name"));
			if (strcmp(name, "search") == 0)
				result = json_pack("{s:[{s:s, s:s}], s:b}", "content", "type",
				                   "text", "text", "found 3 pages", "isError", 0);
			else
				result = NULL;
		} else if (strcmp(method, "resources/list") == 0) {
			result = json_pack("{s:[{s:s, s:s}, {s:s, s:s}]}", "resources", "uri",
			                   "docs://public/readme", "name", "readme", "uri",
			                   "docs://private/salaries", "name", "salaries");
		} else if (strcmp(method, "resources/read") == 0) {
			U.reads++;
			result = json_pack("{s:[{s:O, s:s}]}", "contents", "uri",
			                   json_object_get(params, "uri"), "text", "hello");
		} else if (strcmp(method, "prompts/list") == 0) {
			result = json_pack("{s:[{s:s}, {s:s}]}", "prompts", "name", "summarize",
			                   "name", "exfiltrate");
		} else if (strcmp(method, "prompts/get") == 0) {
			U.gets++;
			result = json_pack("{s:[{s:s, s:{s:s, s:s}}]}", "messages", "role", "user",
			                   "content", "type", "text", "text", "summarize this");
		}
	}
	json_t *reply;
	if (result != NULL)
		reply = json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id, "result", result);
	else
		reply = json_pack("{s:s, s:O, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", id, "error",
		                  "code", -32602, "message", "no such tool upstream");
	char *text = json_dumps(reply, JSON_COMPACT);
	json_decref(reply);
	json_decref(msg);
	resp->status = 200;
	if (U.sse) {
		aam_buf_append(&resp->headers, "content-type\0text/event-stream\0", 31);
		/* A progress notification first, then the answer split over two data lines. */
		aam_buf_append_str(&resp->body,
		                   ": comment\r\nevent: message\r\ndata: "
		                   "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\","
		                   "\"params\":{}}\r\n\r\nid: 7\nevent: message\ndata: ");
		/* Split after a comma, where the joining newline is only whitespace. */
		size_t half = (size_t)(strchr(text + strlen(text) / 2, ',') + 1 - text);
		aam_buf_append(&resp->body, text, half);
		aam_buf_append_str(&resp->body, "\ndata: ");
		aam_buf_append_str(&resp->body, text + half);
		aam_buf_append_str(&resp->body, "\n\n");
	} else {
		aam_buf_append(&resp->headers, "content-type\0application/json\0", 30);
		aam_buf_append_str(&resp->body, text);
	}
	free(text);
	return AAM_OK;
}

static int
up_audit_new(void *ctx, const char *kind, json_t **ev)
{
	(void)ctx;
	*ev = json_pack("{s:s}", "kind", kind);
	return AAM_OK;
}

static int
up_audit(void *ctx, json_t *ev)
{
	(void)ctx;
	json_array_append(U.records, ev);
	return AAM_OK;
}

static const struct gwt_io IO = {.inject = up_inject, .audit_new = up_audit_new, .audit = up_audit};

/* ---- the gateway --------------------------------------------------------- */

static struct gwt_catalog *CAT;
static gw_policy_set *SET;
static struct gw_mcp *M;

static int
setup(void **state)
{
	(void)state;
	if (gwt_catalog_load_buffer("mcp.yaml", CATALOG, strlen(CATALOG), &CAT, NULL) != AAM_OK)
		return -1;
	if (gw_policy_set_load_buffer("p.yaml", POLICY, strlen(POLICY), NULL, &SET, NULL) != AAM_OK)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	gwt_catalog_free(CAT);
	gw_policy_set_unref(SET);
	return 0;
}

static int
reset(void **state)
{
	(void)state;
	memset(&U, 0, sizeof(U));
	U.records = json_array();
	return gw_mcp_new(CAT, &M) == AAM_OK ? 0 : -1;
}

static int
cleanup(void **state)
{
	(void)state;
	json_decref(U.records);
	json_decref(U.last_args);
	gw_mcp_free(M);
	return 0;
}

struct answer {
	unsigned status;
	json_t *body; /* parsed JSON (for SSE: the first event's data) */
	char ct[64], sid[64], allow[32];
	char raw[8192];
};

static void
answer_free(struct answer *a)
{
	json_decref(a->body);
	a->body = NULL;
}

static struct gw_policy_request PR;

/* One HTTP request to /mcp. */
static void
http(const char *method, const char *workload, const char *sid, const char *version,
     const char *accept, const char *ctype, const char *body, struct answer *a)
{
	memset(a, 0, sizeof(*a));
	PR = (struct gw_policy_request){.workload = workload, .attested = true, .now = 1767607200};
	struct gwm_http req = {.method = method,
	                       .body = (const uint8_t *)body,
	                       .body_len = body != NULL ? strlen(body) : 0,
	                       .accept = accept,
	                       .content_type = ctype,
	                       .session_id = sid,
	                       .protocol_version = version,
	                       .owner = workload,
	                       .set = SET,
	                       .preq = &PR};
	struct gwm_reply r;
	gwm_reply_init(&r);
	assert_int_equal(gw_mcp_serve(M, &IO, &req, &r), AAM_OK);
	a->status = r.status;
	snprintf(a->ct, sizeof(a->ct), "%s", r.content_type);
	snprintf(a->sid, sizeof(a->sid), "%s", r.session_id);
	snprintf(a->allow, sizeof(a->allow), "%s", r.allow);
	snprintf(a->raw, sizeof(a->raw), "%.*s", (int)r.body.len, (const char *)r.body.data);
	if (r.body.len > 0) {
		const char *p = (const char *)r.body.data;
		size_t n = r.body.len;
		if (strcmp(r.content_type, "text/event-stream") == 0) {
			const char *d = strstr(p, "data: ");
			assert_non_null(d);
			p = d + 6;
			n = (size_t)(strchr(p, '\n') - p);
		}
		json_error_t e;
		a->body = json_loadb(p, n, 0, &e);
		assert_non_null(a->body);
	}
	gwm_reply_uninit(&r);
}

static void
post(const char *sid, const char *body, struct answer *a)
{
	http("POST", AGENT, sid, NULL, "application/json, text/event-stream", "application/json",
	     body, a);
}

/* Initializes a session asking for VERSION; returns its id. */
static void
init_session(const char *version, char sid[64])
{
	char body[512];
	snprintf(body, sizeof(body),
	         "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":{"
	         "\"protocolVersion\":\"%s\",\"capabilities\":{},\"clientInfo\":{\"name\":\"t\","
	         "\"version\":\"1\"}}}",
	         version);
	struct answer a;
	post(NULL, body, &a);
	assert_int_equal(a.status, 200);
	assert_int_equal(strlen(a.sid), GWM_SESSION_ID_LEN);
	snprintf(sid, 64, "%s", a.sid);
	answer_free(&a);
}

static int
err_code(const struct answer *a)
{
	return (int)json_integer_value(json_object_get(json_object_get(a->body, "error"), "code"));
}

static const char *
err_msg(const struct answer *a)
{
	return json_string_value(json_object_get(json_object_get(a->body, "error"), "message"));
}

static json_t *
result(const struct answer *a)
{
	json_t *r = json_object_get(a->body, "result");
	if (r == NULL)
		fail_msg("no result: %s", a->raw);
	return r;
}

/* ---- transport ------------------------------------------------------------ */

static void
test_initialize(void **state)
{
	(void)state;
	struct answer a;
	post(NULL,
	     "{\"jsonrpc\":\"2.0\",\"id\":\"init-1\",\"method\":\"initialize\",\"params\":{"
	     "\"protocolVersion\":\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{\"name\":"
	     "\"c\","
	     "\"version\":\"1\"}}}",
	     &a);
	assert_int_equal(a.status, 200);
	assert_string_equal(a.ct, "application/json");
	assert_string_equal(json_string_value(json_object_get(a.body, "id")), "init-1");
	json_t *r = result(&a);
	/* A version the gateway does not speak: it offers its latest. */
	assert_string_equal(json_string_value(json_object_get(r, "protocolVersion")), "2025-06-18");
	assert_non_null(json_object_get(json_object_get(r, "capabilities"), "tools"));
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(r, "serverInfo"), "name")),
	        "aam-gateway");
	/* The session id is visible ASCII. */
	for (const char *p = a.sid; *p; p++)
		assert_true(*p > 0x20 && *p < 0x7f);
	answer_free(&a);
	/* The upstream is not contacted for initialize. */
	assert_int_equal(U.posts, 0);
	char sid[64];
	init_session("2025-03-26", sid);
	struct answer b;
	http("POST", AGENT, sid, "2025-06-18", "application/json", "application/json",
	     "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", &b);
	assert_int_equal(b.status, 400);
	assert_non_null(strstr(err_msg(&b), "MCP-Protocol-Version"));
	answer_free(&b);
	http("POST", AGENT, sid, "2025-03-26", "application/json", "application/json",
	     "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", &b);
	assert_int_equal(b.status, 200);
	assert_true(json_is_object(result(&b)));
	answer_free(&b);
	/* initialize inside a session is refused; initialize without version too. */
	post(sid, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"initialize\",\"params\":{}}", &b);
	assert_int_equal(b.status, 200);
	assert_int_equal(err_code(&b), GWM_INVALID_PARAMS);
	answer_free(&b);
}

static void
test_sessions(void **state)
{
	(void)state;
	struct answer a;
	const char *ping = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}";
	post(NULL, ping, &a);
	assert_int_equal(a.status, 400);
	assert_int_equal(err_code(&a), GWM_INVALID_REQUEST);
	assert_true(json_is_null(json_object_get(a.body, "id")));
	answer_free(&a);
	post("not-a-session", ping, &a);
	assert_int_equal(a.status, 404);
	answer_free(&a);
	char sid[64];
	init_session("2025-06-18", sid);
	post(sid, ping, &a);
	assert_int_equal(a.status, 200);
	answer_free(&a);
	/* Another identity cannot use it: it does not exist for them. */
	http("POST", "spiffe://prod/agent/other", sid, NULL, NULL, "application/json", ping, &a);
	assert_int_equal(a.status, 404);
	answer_free(&a);
	/* DELETE ends it. */
	http("DELETE", "spiffe://prod/agent/other", sid, NULL, NULL, NULL, NULL, &a);
	assert_int_equal(a.status, 404);
	answer_free(&a);
	http("DELETE", AGENT, NULL, NULL, NULL, NULL, NULL, &a);
	assert_int_equal(a.status, 400);
	answer_free(&a);
	http("DELETE", AGENT, sid, NULL, NULL, NULL, NULL, &a);
	assert_int_equal(a.status, 204);
	answer_free(&a);
	post(sid, ping, &a);
	assert_int_equal(a.status, 404);
	answer_free(&a);
	assert_false(gw_mcp_session_live(M, sid, AGENT));
	/* GET: the server-to-client stream, within a live session of the caller. */
	char sid2[64];
	init_session("2025-06-18", sid2);
	assert_true(gw_mcp_session_live(M, sid2, AGENT));
	assert_false(gw_mcp_session_live(M, sid2, "spiffe://prod/agent/other"));
	assert_false(gw_mcp_session_live(M, "no-such-session", AGENT));
	http("GET", AGENT, sid2, NULL, "text/event-stream", NULL, NULL, &a);
	assert_int_equal(a.status, 200);
	assert_string_equal(a.ct, "text/event-stream");
	answer_free(&a);
	http("GET", AGENT, sid2, "2025-06-18", "application/json, text/event-stream", NULL, NULL,
	     &a);
	assert_int_equal(a.status, 200);
	answer_free(&a);
	/* ... and only there: no Accept for SSE, no session, another's, a wrong version. */
	http("GET", AGENT, sid2, NULL, "application/json", NULL, NULL, &a);
	assert_int_equal(a.status, 406);
	answer_free(&a);
	http("GET", AGENT, NULL, NULL, "text/event-stream", NULL, NULL, &a);
	assert_int_equal(a.status, 400);
	answer_free(&a);
	http("GET", "spiffe://prod/agent/other", sid2, NULL, "text/event-stream", NULL, NULL, &a);
	assert_int_equal(a.status, 404);
	answer_free(&a);
	http("GET", AGENT, sid2, "2025-03-26", "text/event-stream", NULL, NULL, &a);
	assert_int_equal(a.status, 400);
	answer_free(&a);
	http("GET", AGENT, sid, NULL, "text/event-stream", NULL, NULL, &a);
	assert_int_equal(a.status, 404);
	answer_free(&a);
	/* Once the session ends, its stream's check says so. */
	http("DELETE", AGENT, sid2, NULL, NULL, NULL, NULL, &a);
	assert_int_equal(a.status, 204);
	answer_free(&a);
	assert_false(gw_mcp_session_live(M, sid2, AGENT));
	http("PUT", AGENT, NULL, NULL, NULL, "application/json", ping, &a);
	assert_int_equal(a.status, 405);
	assert_string_equal(a.allow, "GET, POST, DELETE");
	answer_free(&a);
}

static void
test_hostile_transport(void **state)
{
	(void)state;
	char sid[64];
	init_session("2025-06-18", sid);
	struct answer a;
	const char *ping = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}";
	http("POST", AGENT, sid, NULL, NULL, "text/plain", ping, &a);
	assert_int_equal(a.status, 415);
	answer_free(&a);
	http("POST", AGENT, sid, NULL, "text/html", "application/json", ping, &a);
	assert_int_equal(a.status, 406);
	answer_free(&a);
	http("POST", AGENT, sid, NULL, NULL, "application/json; charset=utf-8", ping, &a);
	assert_int_equal(a.status, 200);
	answer_free(&a);
	/* A browser page (DNS rebinding) is refused. */
	struct gwm_http req = {.method = "POST",
	                       .origin = "http://evil.example",
	                       .content_type = "application/json",
	                       .owner = AGENT};
	struct gwm_reply r;
	gwm_reply_init(&r);
	assert_int_equal(gw_mcp_serve(M, &IO, &req, &r), AAM_OK);
	assert_int_equal(r.status, 403);
	gwm_reply_uninit(&r);

	struct {
		const char *body;
		unsigned status;
		int code;
	} cases[] = {
	        {"{\"jsonrpc\":\"2.0\",\"id\":1,", 400, GWM_PARSE_ERROR},
	        {"", 400, GWM_PARSE_ERROR},
	        {"\"hello\"", 400, GWM_INVALID_REQUEST},
	        {"{\"id\":1,\"method\":\"ping\"}", 400, GWM_INVALID_REQUEST},
	        {"{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}", 400, GWM_INVALID_REQUEST},
	        {"{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}", 400, GWM_INVALID_REQUEST},
	        {"{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"ping\"}", 400, GWM_INVALID_REQUEST},
	        {"{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"ping\"}", 400, GWM_INVALID_REQUEST},
	        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":5}", 400, GWM_INVALID_REQUEST},
	        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":[1]}", 400,
	         GWM_INVALID_REQUEST},
	        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"result\":{}}", 400,
	         GWM_INVALID_REQUEST},
	        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"extra\":1}", 400,
	         GWM_INVALID_REQUEST},
	        {"{\"jsonrpc\":\"2.0\",\"id\":1}", 400, GWM_INVALID_REQUEST},
	        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"id\":2}", 400,
	         GWM_PARSE_ERROR},
	        /* Batches are gone in 2025-06-18, whatever they hold. */
	        {"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]", 400, GWM_INVALID_REQUEST},
	        {"[]", 400, GWM_INVALID_REQUEST},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		post(sid, cases[i].body, &a);
		if (a.status != cases[i].status || err_code(&a) != cases[i].code)
			fail_msg("case %zu (%s): HTTP %u %s", i, cases[i].body, a.status, a.raw);
		answer_free(&a);
	}
	/* Deep nesting and oversize are refused by the parser. */
	char *deep = malloc(20000);
	memset(deep, '[', 10000);
	memset(deep + 10000, ']', 9999);
	deep[19999] = '\0';
	post(sid, deep, &a);
	assert_int_equal(a.status, 413);
	answer_free(&a);
	free(deep);
	char *big = malloc(GWM_MAX_BODY + 100);
	memset(big, ' ', GWM_MAX_BODY + 99);
	big[GWM_MAX_BODY + 99] = '\0';
	post(sid, big, &a);
	assert_int_equal(a.status, 413);
	answer_free(&a);
	free(big);
	/* Unknown methods, and notifications get 202 without a body. */
	post(sid, "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"sampling/createMessage\"}", &a);
	assert_int_equal(a.status, 200);
	assert_int_equal(err_code(&a), GWM_METHOD_NOT_FOUND);
	assert_int_equal(json_integer_value(json_object_get(a.body, "id")), 9);
	answer_free(&a);
	post(sid, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", &a);
	assert_int_equal(a.status, 202);
	assert_null(a.body);
	post(sid, "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}", &a);
	assert_int_equal(a.status, 202);
	assert_int_equal(U.posts, 0);
}

static void
test_batches_2025_03_26(void **state)
{
	(void)state;
	char sid[64];
	init_session("2025-03-26", sid);
	struct answer a;
	post(sid,
	     "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"},"
	     "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{}},"
	     "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"nope\"},"
	     "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"initialize\",\"params\":{}},"
	     "42]",
	     &a);
	assert_int_equal(a.status, 200);
	assert_true(json_is_array(a.body));
	assert_int_equal(json_array_size(a.body), 4);
	assert_true(json_is_object(json_object_get(json_array_get(a.body, 0), "result")));
	assert_int_equal(json_integer_value(json_object_get(
	                         json_object_get(json_array_get(a.body, 1), "error"), "code")),
	                 GWM_METHOD_NOT_FOUND);
	assert_int_equal(json_integer_value(json_object_get(
	                         json_object_get(json_array_get(a.body, 2), "error"), "code")),
	                 GWM_INVALID_REQUEST);
	assert_true(json_is_null(json_object_get(json_array_get(a.body, 3), "id")));
	answer_free(&a);
	/* Only notifications: 202. */
	post(sid, "[{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}]", &a);
	assert_int_equal(a.status, 202);
	/* Batch abuse: more than GWM_MAX_BATCH messages. */
	char body[4096] = "[";
	for (unsigned i = 0; i <= GWM_MAX_BATCH; i++) {
		char one[80];
		snprintf(one, sizeof(one),
		         "%s{\"jsonrpc\":\"2.0\",\"id\":%u,\"method\":\"tools/list\"}",
		         i ? "," : "", i);
		strcat(body, one);
	}
	strcat(body, "]");
	post(sid, body, &a);
	assert_int_equal(a.status, 400);
	assert_non_null(strstr(err_msg(&a), "batch of more than 16"));
	answer_free(&a);
	assert_int_equal(U.posts, 0);
	post(sid, "[]", &a);
	assert_int_equal(a.status, 400);
	answer_free(&a);
}

static void
test_sse_answer(void **state)
{
	(void)state;
	char sid[64];
	init_session("2025-06-18", sid);
	struct answer a;
	http("POST", AGENT, sid, "2025-06-18", "text/event-stream", "application/json",
	     "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"ping\"}", &a);
	assert_int_equal(a.status, 200);
	assert_string_equal(a.ct, "text/event-stream");
	assert_true(strncmp(a.raw, "event: message\ndata: {", 22) == 0);
	assert_int_equal(json_integer_value(json_object_get(a.body, "id")), 5);
	answer_free(&a);
}

/* ---- tools, prompts, resources --------------------------------------------- */

static json_t *
names_of(json_t *arr, const char *key)
{
	json_t *out = json_array();
	for (size_t i = 0; i < json_array_size(arr); i++)
		json_array_append(out, json_object_get(json_array_get(arr, i), key));
	return out;
}

static void
assert_names(json_t *arr, const char *key, const char *want)
{
	json_t *n = names_of(arr, key);
	char *s = json_dumps(n, JSON_COMPACT);
	if (strcmp(s, want) != 0)
		fail_msg("names %s, want %s", s, want);
	free(s);
	json_decref(n);
}

static void
test_tools_list_filtered(void **state)
{
	(void)state;
	char sid[64];
	init_session("2025-06-18", sid);
	struct answer a;
	post(sid, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}", &a);
	assert_int_equal(a.status, 200);
	/* search and read_page are allowed; lookup only with some arguments (listed);
	 * delete_page is denied; purge_all maps to docs.admin, not allowed; "bad name!"
	 * maps to no action. */
	assert_names(json_object_get(result(&a), "tools"), "name",
	             "[\"docs__search\",\"docs__read_page\",\"docs__lookup\"]");
	/* The upstream's schema travels along. */
	assert_non_null(json_object_get(json_array_get(json_object_get(result(&a), "tools"), 0),
	                                "inputSchema"));
	answer_free(&a);
	/* The gateway opened its own upstream session, with the vault credential. */
	assert_int_equal(U.inits, 1);
	assert_string_equal(U.last_cred, "docs-key");
	/* Cursors are never issued, so any cursor is invalid. */
	post(sid,
	     "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/"
	     "list\",\"params\":{\"cursor\":\"x\"}}",
	     &a);
	assert_int_equal(err_code(&a), GWM_INVALID_PARAMS);
	answer_free(&a);
	/* Another identity sees nothing. */
	char sid2[64];
	memset(&PR, 0, sizeof(PR));
	http("POST", "spiffe://prod/agent/other", NULL, NULL, NULL, "application/json",
	     "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":{"
	     "\"protocolVersion\":\"2025-06-18\"}}",
	     &a);
	snprintf(sid2, sizeof(sid2), "%s", a.sid);
	answer_free(&a);
	http("POST", "spiffe://prod/agent/other", sid2, NULL, NULL, "application/json",
	     "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}", &a);
	assert_int_equal(json_array_size(json_object_get(result(&a), "tools")), 0);
	answer_free(&a);
}

static void
test_tools_call(void **state)
{
	(void)state;
	char sid[64];
	init_session("2025-06-18", sid);
	struct answer a;
	post(sid,
	     "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":"
	     "\"docs__search\",\"arguments\":{\"query\":\"budget\"}}}",
	     &a);
	assert_int_equal(a.status, 200);
	json_t *r = result(&a);
	assert_string_equal(json_string_value(json_object_get(
	                            json_array_get(json_object_get(r, "content"), 0), "text")),
	                    "found 3 pages");
	answer_free(&a);
	assert_int_equal(U.calls, 1);
	assert_string_equal(json_string_value(json_object_get(U.last_args, "query")), "budget");
	json_t *ev = json_array_get(U.records, 0);
	assert_string_equal(json_string_value(json_object_get(ev, "kind")), "mcp.call");
	assert_string_equal(json_string_value(json_object_get(ev, "decision")), "allow");
	json_t *act = json_object_get(ev, "action");
	assert_string_equal(json_string_value(json_object_get(act, "resource")), "mcp.docs");
	assert_string_equal(json_string_value(json_object_get(act, "operation")), "search");
	assert_int_equal(strlen(json_string_value(json_object_get(act, "params_sha256"))), 64);
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(ev, "credential"), "name")),
	        "docs-key");
	assert_string_equal(json_string_value(json_object_get(json_object_get(ev, "mcp"), "tool")),
	                    "search");
	assert_int_equal(
	        json_integer_value(json_object_get(json_object_get(ev, "outcome"), "status")), 200);

	/* Denied explicitly: a JSON-RPC error naming the policy; nothing upstream. */
	post(sid,
	     "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":"
	     "\"docs__delete_page\",\"arguments\":{\"page\":\"home\"}}}",
	     &a);
	assert_int_equal(a.status, 200);
	assert_int_equal(err_code(&a), GWM_POLICY_DENIED);
	assert_non_null(strstr(err_msg(&a), "docs-reader"));
	json_t *data = json_object_get(json_object_get(a.body, "error"), "data");
	assert_string_equal(json_string_value(json_object_get(data, "reason")), "explicit_deny");
	assert_string_equal(json_string_value(json_object_get(data, "policy")), "docs-reader");
	answer_free(&a);
	assert_int_equal(U.calls, 1);
	ev = json_array_get(U.records, 1);
	assert_string_equal(json_string_value(json_object_get(ev, "decision")), "deny");
	assert_string_equal(json_string_value(json_object_get(ev, "reason")), "explicit_deny");

	/* `when` on the arguments: lookup only for id <= 100. */
	post(sid,
	     "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":"
	     "\"docs__lookup\",\"arguments\":{\"id\":101}}}",
	     &a);
	assert_int_equal(err_code(&a), GWM_POLICY_DENIED);
	data = json_object_get(json_object_get(a.body, "error"), "data");
	assert_string_equal(json_string_value(json_object_get(data, "reason")), "condition_failed");
	answer_free(&a);
	assert_int_equal(U.calls, 1);
	post(sid,
	     "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":{\"name\":"
	     "\"docs__lookup\",\"arguments\":{\"id\":7}}}",
	     &a);
	/* Allowed; the simulated server knows no "lookup": its error passes through. */
	assert_int_equal(err_code(&a), -32602);
	assert_string_equal(err_msg(&a), "no such tool upstream");
	answer_free(&a);
	assert_int_equal(U.calls, 2);
	assert_int_equal(json_array_size(U.records), 4);

	/* Unknown tools, bad arguments: precise errors, nothing upstream, no audit. */
	const char *bad[] = {
	        "{\"name\":\"search\"}",
	        "{\"name\":\"wiki__search\"}",
	        "{\"name\":\"docs__\"}",
	        "{\"name\":\"__search\"}",
	        "{\"name\":5}",
	        "{}",
	        "{\"name\":\"docs__search\",\"arguments\":[1]}",
	        "{\"name\":\"docs__bad name!\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char body[512];
		snprintf(body, sizeof(body),
		         "{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"tools/call\",\"params\":%s}",
		         bad[i]);
		post(sid, body, &a);
		if (err_code(&a) != GWM_INVALID_PARAMS)
			fail_msg("%s: %s", bad[i], a.raw);
		answer_free(&a);
	}
	/* Oversized arguments. */
	size_t n = GWM_MAX_ARGS + 10;
	char *body = malloc(n + 200);
	int k = snprintf(body, 200,
	                 "{\"jsonrpc\":\"2.0\",\"id\":11,\"method\":\"tools/call\",\"params\":{"
	                 "\"name\":\"docs__search\",\"arguments\":{\"q\":\"");
	memset(body + k, 'x', n);
	strcpy(body + k + n, "\"}}}");
	post(sid, body, &a);
	free(body);
	assert_int_equal(err_code(&a), GWM_INVALID_PARAMS);
	assert_non_null(strstr(err_msg(&a), "larger than"));
	answer_free(&a);
	assert_int_equal(U.calls, 2);
	assert_int_equal(json_array_size(U.records), 4);
}

static void
test_prompts_and_resources(void **state)
{
	(void)state;
	char sid[64];
	init_session("2025-06-18", sid);
	struct answer a;
	post(sid, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"prompts/list\"}", &a);
	assert_names(json_object_get(result(&a), "prompts"), "name", "[\"docs__summarize\"]");
	answer_free(&a);
	post(sid,
	     "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"prompts/get\",\"params\":{\"name\":"
	     "\"docs__summarize\",\"arguments\":{\"topic\":\"q3\"}}}",
	     &a);
	assert_non_null(json_object_get(result(&a), "messages"));
	answer_free(&a);
	post(sid,
	     "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"prompts/get\",\"params\":{\"name\":"
	     "\"docs__exfiltrate\"}}",
	     &a);
	assert_int_equal(err_code(&a), GWM_POLICY_DENIED);
	answer_free(&a);
	assert_int_equal(U.gets, 1);

	post(sid, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"resources/list\"}", &a);
	assert_names(json_object_get(result(&a), "resources"), "uri", "[\"docs://public/readme\"]");
	answer_free(&a);
	post(sid,
	     "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"resources/read\",\"params\":{\"uri\":"
	     "\"docs://public/readme\"}}",
	     &a);
	assert_string_equal(
	        json_string_value(json_object_get(
	                json_array_get(json_object_get(result(&a), "contents"), 0), "text")),
	        "hello");
	answer_free(&a);
	post(sid,
	     "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"resources/read\",\"params\":{\"uri\":"
	     "\"docs://private/salaries\"}}",
	     &a);
	assert_int_equal(err_code(&a), GWM_POLICY_DENIED);
	answer_free(&a);
	assert_int_equal(U.reads, 1);
	/* Every call is audited, allowed or not. */
	assert_int_equal(json_array_size(U.records), 4);
	json_t *ev = json_array_get(U.records, 3);
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(ev, "mcp"), "method")),
	        "resources/read");
	assert_string_equal(json_string_value(json_object_get(ev, "decision")), "deny");
}

static void
test_upstream_session_and_sse(void **state)
{
	(void)state;
	char sid[64];
	init_session("2025-06-18", sid);
	struct answer a;
	U.sse = true;
	const char *call = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{"
	                   "\"name\":\"docs__search\",\"arguments\":{}}}";
	post(sid, call, &a);
	assert_non_null(json_object_get(result(&a), "content"));
	answer_free(&a);
	assert_int_equal(U.inits, 1);
	/* The upstream forgets the session: the gateway opens a new one and retries once. */
	U.expire_next = 1;
	post(sid, call, &a);
	assert_non_null(json_object_get(result(&a), "content"));
	answer_free(&a);
	assert_int_equal(U.inits, 2);
	U.expire_next = 5;
	post(sid, call, &a);
	assert_int_equal(err_code(&a), GWM_UPSTREAM_ERROR);
	answer_free(&a);
	/* An upstream that refuses initialize, or hands out a bad session id. */
	gw_mcp_free(M);
	assert_int_equal(gw_mcp_new(CAT, &M), AAM_OK);
	init_session("2025-06-18", sid);
	U.expire_next = 0;
	U.refuse_init = true;
	post(sid, call, &a);
	assert_int_equal(err_code(&a), GWM_UPSTREAM_ERROR);
	assert_non_null(strstr(err_msg(&a), "refused initialize"));
	answer_free(&a);
	U.refuse_init = false;
	U.bad_session = true;
	post(sid, call, &a);
	assert_int_equal(err_code(&a), GWM_UPSTREAM_ERROR);
	answer_free(&a);
}

static void
test_extract(void **state)
{
	(void)state;
	json_t *m = NULL;
	const char *j = "{\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{}}";
	assert_int_equal(gwm_upstream_extract("application/json; charset=utf-8", (const uint8_t *)j,
	                                      strlen(j), 4, &m),
	                 AAM_OK);
	json_decref(m);
	assert_int_equal(
	        gwm_upstream_extract("application/json", (const uint8_t *)j, strlen(j), 5, &m),
	        AAM_E_NOTFOUND);
	assert_int_equal(gwm_upstream_extract("text/html", (const uint8_t *)j, strlen(j), 4, &m),
	                 AAM_E_PARSE);
	assert_int_equal(gwm_upstream_extract(NULL, (const uint8_t *)j, strlen(j), 4, &m),
	                 AAM_E_PARSE);
	const char *sse = "data: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}\n\n"
	                  "data: not json\n\n"
	                  "data: {\"jsonrpc\":\"2.0\",\"id\":4,\n"
	                  "data: \"result\":{\"ok\":1}}";
	assert_int_equal(
	        gwm_upstream_extract("text/event-stream", (const uint8_t *)sse, strlen(sse), 4, &m),
	        AAM_OK);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "result"), "ok")),
	                 1);
	json_decref(m);
	assert_int_equal(
	        gwm_upstream_extract("text/event-stream", (const uint8_t *)sse, strlen(sse), 9, &m),
	        AAM_E_NOTFOUND);
}

static void
test_rpc_parse(void **state)
{
	(void)state;
	struct gwm_msg m;
	struct gwm_rpc_error e = {0};
	json_t *j = json_loads("{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"x\",\"params\":{}}",
	                       0, NULL);
	assert_int_equal(gwm_msg_parse(j, &m, &e), AAM_OK);
	assert_int_equal(m.kind, GWM_REQUEST);
	assert_string_equal(m.method, "x");
	json_decref(j);
	j = json_loads("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1,\"message\":\"m\"}}", 0,
	               NULL);
	assert_int_equal(gwm_msg_parse(j, &m, &e), AAM_OK);
	assert_int_equal(m.kind, GWM_RESPONSE);
	json_decref(j);
	j = json_loads("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1,\"error\":{}}", 0, NULL);
	assert_int_equal(gwm_msg_parse(j, &m, &e), AAM_E_INVAL);
	assert_int_equal(e.code, GWM_INVALID_REQUEST);
	json_decref(j);
	/* An over-long string id is not echoed back. */
	char big[600];
	memset(big, 'i', 300);
	big[300] = '\0';
	char doc[800];
	snprintf(doc, sizeof(doc), "{\"jsonrpc\":\"2.0\",\"id\":\"%s\",\"method\":\"x\"}", big);
	j = json_loads(doc, 0, NULL);
	assert_int_equal(gwm_msg_parse(j, &m, &e), AAM_E_INVAL);
	assert_null(m.id);
	json_decref(j);
	assert_true(gwm_version_supported("2025-06-18"));
	assert_true(gwm_version_supported("2025-03-26"));
	assert_false(gwm_version_supported("2024-11-05"));
	assert_false(gwm_version_supported(NULL));
}

int
main(void)
{
#define T_(f) cmocka_unit_test_setup_teardown(f, reset, cleanup)
	const struct CMUnitTest tests[] = {
	        T_(test_initialize),
	        T_(test_sessions),
	        T_(test_hostile_transport),
	        T_(test_batches_2025_03_26),
	        T_(test_sse_answer),
	        T_(test_tools_list_filtered),
	        T_(test_tools_call),
	        T_(test_prompts_and_resources),
	        T_(test_upstream_session_and_sse),
	        cmocka_unit_test(test_extract),
	        cmocka_unit_test(test_rpc_parse),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
