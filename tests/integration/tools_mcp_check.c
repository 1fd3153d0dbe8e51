/*
 * The MCP gateway with the official MCP SDK on both sides: the SDK's
 * client (StreamableHTTPClientTransport, tests/mcp/e2e.test.mjs) talks
 * to the gateway's /mcp, served here by a small HTTP front around
 * gw_mcp_serve(), whose upstream calls go through a real aam-vault
 * (SoftHSM2) that injects the API key the SDK-built test MCP server
 * (tests/mcp/server.mjs) requires.
 *
 * The front stands in for aam-gateway's authentication (a fixed
 * identity); tools_gateway_check.c runs the same client script through
 * the aam-gateway daemon.  Skips clearly when SoftHSM2, node or the npm
 * packages (deploy/install-deps.sh runs `npm ci` in tests/mcp) are
 * missing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aam/err.h"
#include "common/http.h"
#include "gateway/mcp.h"
#include "gateway/tools_vault.h"
#include "tests/integration/vault_harness.h"
#include "tests/lib/testutil.h"

#define AGENT "spiffe://prod/agent/docs-bot"
#define KEY   "mcp-Upstream-Key-77aa-0003"

/* The policy of the SDK client's test: tests/mcp/docs-reader.yaml, for AGENT. */

struct ctx {
	struct vh v;
	char *dir;
	char record[1024], keyfile[1024];
	int mcp_port;
	pid_t node;
	struct gwt_catalog *cat;
	struct gw_mcp *mcp;
	gw_policy_set *set;
	struct aam_http_server *front;
	pthread_mutex_t mu;
	json_t *audit;
};
static struct ctx *C;

static int
io_inject(void *ctx, const struct gwt_request *req, const char *cred, int64_t timeout_ms,
          struct gwt_response *resp)
{
	(void)ctx;
	return gwt_vault_inject(C->v.sock_gw, req, cred, timeout_ms, resp);
}

static int
io_audit_new(void *ctx, const char *kind, json_t **ev)
{
	(void)ctx;
	*ev = json_pack("{s:s}", "kind", kind);
	return AAM_OK;
}

static int
io_audit(void *ctx, json_t *ev)
{
	(void)ctx;
	pthread_mutex_lock(&C->mu);
	json_array_append(C->audit, ev);
	pthread_mutex_unlock(&C->mu);
	return AAM_OK;
}

static const struct gwt_io IO = {.inject = io_inject, .audit_new = io_audit_new, .audit = io_audit};

/* The front: what aam-gateway's /mcp handler does, with a fixed identity. */
static int
front(void *ctx, const struct aam_http_request *h, struct aam_http_response *resp)
{
	(void)ctx;
	struct gw_policy_request pr = {.workload = AGENT, .attested = true, .now = time(NULL)};
	struct gwm_http req = {.method = h->method,
	                       .body = h->body,
	                       .body_len = h->body_len,
	                       .accept = aam_http_request_header(h, "Accept"),
	                       .content_type = aam_http_request_header(h, "Content-Type"),
	                       .session_id = aam_http_request_header(h, "Mcp-Session-Id"),
	                       .protocol_version =
	                               aam_http_request_header(h, "MCP-Protocol-Version"),
	                       .origin = aam_http_request_header(h, "Origin"),
	                       .owner = AGENT,
	                       .set = C->set,
	                       .preq = &pr};
	struct gwm_reply r;
	gwm_reply_init(&r);
	int rc = gw_mcp_serve(C->mcp, &IO, &req, &r);
	if (rc == AAM_OK && r.stream) {
		/* This front does not hold streams open (the daemon does: tools_gateway_check). */
		resp->status = 405;
		resp->content_type = "application/json";
		aam_buf_append_str(&resp->body, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{"
		                                "\"code\":-32600,\"message\":\"no stream here\"}}");
		aam_http_response_header(resp, "Allow", "POST, DELETE");
	} else if (rc == AAM_OK) {
		resp->status = r.status;
		resp->content_type = strcmp(r.content_type, "text/event-stream") == 0
		                             ? "text/event-stream"
		                             : "application/json";
		aam_buf_append(&resp->body, r.body.data, r.body.len);
		if (r.session_id[0] != '\0')
			aam_http_response_header(resp, "Mcp-Session-Id", r.session_id);
		if (r.allow[0] != '\0')
			aam_http_response_header(resp, "Allow", r.allow);
	}
	gwm_reply_uninit(&r);
	return rc;
}

static void
nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static bool
have_sdk(void)
{
	char *p = aam_test_source_path(
	        "tests/mcp/node_modules/@modelcontextprotocol/sdk/package.json");
	struct stat st;
	bool ok = p != NULL && stat(p, &st) == 0 && aam_test_have_program("node");
	free(p);
	return ok;
}

static int
start_node(void)
{
	char log[1024], port[16];
	snprintf(log, sizeof(log), "%s/mcp-server.log", C->dir);
	snprintf(C->record, sizeof(C->record), "%s/mcp-requests.jsonl", C->dir);
	snprintf(C->keyfile, sizeof(C->keyfile), "%s/mcp.key", C->dir);
	if (aam_test_write_file(C->keyfile, KEY "\n", strlen(KEY) + 1, 0600) != 0 ||
	    aam_test_write_file(C->record, "", 0, 0600) != 0)
		return -1;
	C->mcp_port = aam_test_free_port();
	snprintf(port, sizeof(port), "%d", C->mcp_port);
	char *script = aam_test_source_path("tests/mcp/server.mjs");
	pid_t pid = fork();
	if (pid == 0) {
		FILE *f = freopen(log, "w", stdout);
		(void)f;
		dup2(fileno(stdout), 2);
		setenv("MCP_PORT", port, 1);
		setenv("MCP_KEY_FILE", C->keyfile, 1);
		setenv("MCP_RECORD", C->record, 1);
		execlp("node", "node", script, (char *)NULL);
		_exit(127);
	}
	free(script);
	C->node = pid;
	for (int i = 0; i < 200; i++) {
		char *out = aam_test_read_file(log, NULL);
		bool up = out != NULL && strstr(out, "listening on") != NULL;
		free(out);
		if (up)
			return 0;
		nap_ms(50);
	}
	return -1;
}

static int
load_policy(void)
{
	char *path = aam_test_source_path("tests/mcp/docs-reader.yaml");
	size_t n = 0;
	char *text = path != NULL ? aam_test_read_file(path, &n) : NULL;
	int rc = text != NULL ? gw_policy_set_load_buffer(path, text, n, NULL, &C->set, NULL)
	                      : AAM_E_NOTFOUND;
	free(text);
	free(path);
	return rc;
}

static int
setup(void **state)
{
	(void)state;
	if (!aam_test_softhsm_available() || !have_sdk())
		return 0;
	C = calloc(1, sizeof(*C));
	pthread_mutex_init(&C->mu, NULL);
	C->audit = json_array();
	C->dir = aam_test_mkdtemp("aam-mcp-it");
	if (C->dir == NULL || start_node() != 0)
		return -1;
	if (vh_setup(&C->v, "  request_timeout: 30s\n") != 0 || vh_start(&C->v) != 0)
		return -1;
	char *out = NULL;
	if (vh_aamctl(&C->v, NULL, &out, NULL, "keys", "init", NULL) != 0)
		return -1;
	free(out);
	char bind[256];
	snprintf(bind, sizeof(bind), "http://127.0.0.1:%d/mcp", C->mcp_port);
	if (vh_aamctl(&C->v, KEY "\n", &out, NULL, "secret", "put", "docs-mcp-key", "--type",
	              "header", "--header", "X-API-Key", "--bind", bind, NULL) != 0)
		return -1;
	free(out);
	char cat[1024];
	snprintf(cat, sizeof(cat),
	         "apiVersion: access.envisionai.dev/v1\nkind: ToolCatalog\nmetadata: {name: mcp}\n"
	         "spec:\n  mcp_servers:\n    - name: docs\n      url: %s\n"
	         "      credential: docs-mcp-key\n      timeout: 20s\n",
	         bind);
	if (gwt_catalog_load_buffer("mcp.yaml", cat, strlen(cat), &C->cat, NULL) != AAM_OK ||
	    gw_mcp_new(C->cat, &C->mcp) != AAM_OK || load_policy() != AAM_OK)
		return -1;
	static const struct aam_http_route routes[] = {{"*", "/mcp", front}};
	struct aam_http_config hc = {.host = "127.0.0.1",
	                             .routes = routes,
	                             .nroutes = 1,
	                             .max_body = 2 * 1024 * 1024,
	                             .name = "mcp-front",
	                             .mode = AAM_HTTP_MODE_THREAD_PER_CONN};
	return aam_http_server_start(&hc, &C->front) == AAM_OK ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	if (C == NULL)
		return 0;
	aam_http_server_stop(C->front);
	if (C->node > 0) {
		kill(C->node, SIGTERM);
		waitpid(C->node, NULL, 0);
	}
	vh_teardown(&C->v);
	gw_mcp_free(C->mcp);
	gwt_catalog_free(C->cat);
	gw_policy_set_unref(C->set);
	json_decref(C->audit);
	pthread_mutex_destroy(&C->mu);
	aam_test_rmtree(C->dir);
	free(C->dir);
	free(C);
	C = NULL;
	return 0;
}

#define REQUIRE()                                                                                  \
	do {                                                                                       \
		AAM_TEST_SOFTHSM_REQUIRE();                                                        \
		if (C == NULL) {                                                                   \
			print_message(                                                             \
			        "node or tests/mcp/node_modules missing (npm ci): skipped\n");     \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

static void
test_official_client(void **state)
{
	(void)state;
	REQUIRE();
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/mcp", aam_http_server_port(C->front));
	char *script = aam_test_source_path("tests/mcp/e2e.test.mjs");
	char *cmd = NULL;
	assert_true(asprintf(&cmd,
	                     "AAM_MCP_URL='%s' AAM_MCP_HEADERS='{}' AAM_MCP_RECORD='%s' "
	                     "AAM_MCP_KEY_FILE='%s' AAM_MCP_POLICY=docs-reader node --test "
	                     "--test-reporter=spec '%s' > '%s/node-test.log' 2>&1",
	                     url, C->record, C->keyfile, script, C->dir) > 0);
	int st = system(cmd);
	free(cmd);
	free(script);
	char log[1024];
	snprintf(log, sizeof(log), "%s/node-test.log", C->dir);
	char *out = aam_test_read_file(log, NULL);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("the SDK client's test failed:\n%s", out != NULL ? out : "");
	print_message("%s", out != NULL ? out : "");
	free(out);

	/* Every call was audited: allowed and denied alike, never with the key. */
	pthread_mutex_lock(&C->mu);
	size_t allow = 0, deny = 0;
	for (size_t i = 0; i < json_array_size(C->audit); i++) {
		json_t *ev = json_array_get(C->audit, i);
		assert_string_equal(json_string_value(json_object_get(ev, "kind")), "mcp.call");
		const char *d = json_string_value(json_object_get(ev, "decision"));
		if (strcmp(d, "allow") == 0)
			allow++;
		else
			deny++;
	}
	char *all = json_dumps(C->audit, JSON_COMPACT);
	pthread_mutex_unlock(&C->mu);
	/* search, lookup 5, readResource, getPrompt, whoami; delete_page, lookup 500, missing. */
	assert_int_equal(allow, 5);
	assert_int_equal(deny, 3);
	assert_null(strstr(all, KEY));
	assert_non_null(strstr(all, "\"docs-mcp-key\""));
	free(all);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_official_client),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
