/*
 * The extension points of gateway/gw.h as the tool and MCP modules use
 * them: this test defines gw_tools_handle() itself (a strong definition
 * replaces the weak default), runs the gateway in process with virtual
 * keys, and checks what a handler gets (identity, request id, subpath,
 * traceparent, delegation), the audit emitter, and streaming through
 * gw_respond_stream(): events arrive one by one, the request context is
 * still valid on the producer's thread, and a client that goes away makes
 * the producer's writes fail.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "aam/err.h"
#include "common/config.h"
#include "common/json.h"
#include "gateway/gw_int.h"
#include "gateway/vkeys.h"
#include "tests/lib/testutil.h"

#define WL "spiffe://prod/agent/tooling"

struct g {
	char *dir;
	struct aam_config cfg;
	struct gw *gw;
	char base[128];
	char key[GW_VKEY_NEW_LEN + 1];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int acks, closed_seen, runs;
	char seen_workload[128], seen_subpath[64], seen_rid[64];
	int audited;
};

static struct g G;

static void
note(int *field)
{
	pthread_mutex_lock(&G.mu);
	(*field)++;
	pthread_cond_broadcast(&G.cv);
	pthread_mutex_unlock(&G.mu);
}

static bool
wait_for(int *field, int n, int ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000 + 1;
	pthread_mutex_lock(&G.mu);
	while (*field < n)
		if (pthread_cond_timedwait(&G.cv, &G.mu, &ts) != 0)
			break;
	bool ok = *field >= n;
	pthread_mutex_unlock(&G.mu);
	return ok;
}

/* ---- the extension: a strong gw_tools_handle ------------------------------------- */

static int
run_events(struct gw *g, const struct gw_request_ctx *rc, struct aam_http_stream *st, void *arg)
{
	(void)g;
	int n = *(int *)arg;
	free(arg);
	pthread_mutex_lock(&G.mu);
	snprintf(G.seen_workload, sizeof(G.seen_workload), "%s", rc->who->spiffe_id);
	snprintf(G.seen_subpath, sizeof(G.seen_subpath), "%s", rc->subpath);
	snprintf(G.seen_rid, sizeof(G.seen_rid), "%s", rc->request_id);
	pthread_mutex_unlock(&G.mu);
	struct gw_sink sink;
	gw_sink_for_stream(&sink, st);
	int rc2 = sink.head(sink.ctx, 200, NULL, 0, "text/event-stream");
	for (int i = 0; rc2 == AAM_OK && i < n; i++) {
		char ev[32];
		int len = snprintf(ev, sizeof(ev), "data: %d\n\n", i);
		rc2 = sink.body(sink.ctx, (const uint8_t *)ev, (size_t)len);
		/* Each event must be at the client before the next one is written. */
		if (rc2 == AAM_OK && n <= 3)
			wait_for(&G.acks, i + 1, 3000);
		if (n > 3)
			usleep(10 * 1000);
	}
	if (rc2 == AAM_E_CLOSED)
		note(&G.closed_seen);
	note(&G.runs);
	return AAM_OK;
}

int
gw_tools_handle(struct gw *g, const struct gw_request_ctx *rc, struct aam_http_response *resp)
{
	if (strncmp(rc->subpath, "stream/", 7) == 0) {
		int *n = malloc(sizeof(*n));
		if (n == NULL)
			return AAM_E_NOMEM;
		*n = atoi(rc->subpath + 7);
		int r = gw_respond_stream(g, rc, resp, run_events, n);
		if (r != AAM_OK)
			free(n);
		return r;
	}
	if (strcmp(rc->subpath, "audit") == 0) {
		json_t *ev = NULL;
		assert_int_equal(gw_audit_event_new(g, rc, "tool.call", &ev), AAM_OK);
		gw_policy_set *set = gw_policy_store_acquire(gw_policies(g));
		struct gw_policy_request pr;
		gw_policy_request_init(g, rc, &pr);
		pr.kind = GW_POLICY_TOOL;
		pr.resource = "salesforce.accounts";
		pr.action = "read";
		struct gw_policy_decision d;
		gw_policy_decide(set, &pr, &d);
		gw_audit_add_decision(ev, &d);
		int r = gw_audit_emit(g, ev, NULL);
		json_decref(ev);
		gw_policy_store_release(set);
		gw_metrics_tool_call(g, "salesforce.accounts", d.allow ? "allow" : "deny",
		                     r == AAM_OK ? 200 : 503);
		if (r != AAM_OK)
			return gw_respond_error(resp, GW_ERR_AAM, 503, "audit_unavailable",
			                        "The audit record could not be stored.");
		json_t *j = json_pack("{s:b}", "allow", d.allow);
		r = aam_http_respond_json(resp, 200, j);
		json_decref(j);
		return r;
	}
	json_t *j = json_pack("{s:s,s:s,s:s,s:b,s:s?,s:s?,s:s?}", "workload", rc->who->spiffe_id,
	                      "subpath", rc->subpath, "request_id", rc->request_id, "attested",
	                      rc->who->attested, "traceparent", rc->traceparent, "on_behalf_of",
	                      rc->on_behalf_of, "method", rc->who->method);
	int r = aam_http_respond_json(resp, 200, j);
	json_decref(j);
	return r;
}

static int
capture_audit(void *ctx, const json_t *ev, int timeout_ms, uint64_t *seq)
{
	(void)ctx;
	(void)timeout_ms;
	if (seq != NULL)
		*seq = 1;
	const char *kind = json_string_value(json_object_get(ev, "kind"));
	if (kind != NULL && strcmp(kind, "tool.call") == 0) {
		/* The record names the identity, the decision and the policy set. */
		json_t *id = json_object_get(ev, "identity");
		assert_string_equal(json_string_value(json_object_get(id, "workload")), WL);
		assert_string_equal(json_string_value(json_object_get(ev, "decision")), "allow");
		assert_non_null(json_string_value(
		        json_object_get(json_object_get(ev, "policy"), "set_hash")));
		G.audited++;
	}
	return AAM_OK;
}

/* ---- client ---------------------------------------------------------------------- */

struct client {
	struct aam_buf body;
	int stop_after;
	int chunks;
	long status;
};

static size_t
on_body(char *p, size_t size, size_t n, void *ud)
{
	struct client *c = ud;
	if (aam_buf_append(&c->body, p, size * n) != AAM_OK)
		return 0;
	c->chunks++;
	note(&G.acks);
	return c->stop_after > 0 && c->chunks >= c->stop_after ? 0 : size * n;
}

static CURLcode
request(const char *path, const char *const *extra, struct client *c)
{
	aam_buf_init(&c->body, 1u << 20);
	char url[256], auth[256];
	snprintf(url, sizeof(url), "%s%s", G.base, path);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", G.key);
	struct curl_slist *h = curl_slist_append(NULL, auth);
	for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
		h = curl_slist_append(h, extra[i]);
	CURL *e = curl_easy_init();
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, "{}");
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	CURLcode rc = curl_easy_perform(e);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &c->status);
	curl_slist_free_all(h);
	curl_easy_cleanup(e);
	return rc;
}

/* ---- fixture -------------------------------------------------------------------------- */

static const char policies[] = "apiVersion: access.envisionai.dev/v1\n"
                               "kind: AgentPolicy\n"
                               "metadata:\n  name: tooling\n"
                               "spec:\n"
                               "  identity:\n    workload: " WL "\n"
                               "  tools:\n"
                               "    - resource: salesforce.accounts\n"
                               "      actions: [read]\n";

static int
group_setup(void **state)
{
	(void)state;
	memset(&G, 0, sizeof(G));
	pthread_mutex_init(&G.mu, NULL);
	pthread_cond_init(&G.cv, NULL);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	G.dir = aam_test_mkdtemp("aam-gw-ext");
	char path[1024], yaml[2048], err[512];
	snprintf(path, sizeof(path), "%s/policies.yaml", G.dir);
	aam_test_write_file(path, policies, strlen(policies), 0600);
	snprintf(yaml, sizeof(yaml),
	         "gateway:\n  listen: 127.0.0.1:%d\n  policies: %s/policies.yaml\n"
	         "  db: %s/gateway.db\n  attest_url: http://127.0.0.1:1\n",
	         aam_test_free_port(), G.dir, G.dir);
	snprintf(path, sizeof(path), "%s/aam.yaml", G.dir);
	if (aam_config_load_buffer(path, yaml, strlen(yaml), &G.cfg, err, sizeof(err)) != AAM_OK)
		return -1;
	struct gw_options opt = {.cfg = &G.cfg.gateway, .no_feed = true};
	if (gw_new(&opt, &G.gw, err, sizeof(err)) != AAM_OK || gw_start(G.gw) != AAM_OK) {
		print_error("gateway: %s\n", err);
		return -1;
	}
	snprintf(G.base, sizeof(G.base), "http://127.0.0.1:%u", (unsigned)gw_port(G.gw));
	struct aam_db *db = NULL;
	snprintf(path, sizeof(path), "%s/gateway.db", G.dir);
	if (aam_db_open(path, 0, &db) != AAM_OK)
		return -1;
	gw_vkey_generate(G.key);
	struct gw_vkey k = {.workload = (char *)(uintptr_t)WL,
	                    .owner = (char *)(uintptr_t) "carol",
	                    .max_budget = -1};
	gw_vkey_hash(G.key, strlen(G.key), k.hash);
	int rc = gw_vkey_insert(db, &k);
	aam_db_close(db);
	gw_audit_set_backend(G.gw->audit, capture_audit, NULL);
	return rc == AAM_OK ? 0 : -1;
}

static int
group_teardown(void **state)
{
	(void)state;
	gw_free(G.gw);
	aam_config_uninit(&G.cfg);
	aam_test_rmtree(G.dir);
	free(G.dir);
	curl_global_cleanup();
	pthread_cond_destroy(&G.cv);
	pthread_mutex_destroy(&G.mu);
	return 0;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void
test_context(void **state)
{
	(void)state;
	struct client c = {0};
	const char *h[] = {"traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	                   "x-aam-on-behalf-of: user-42", NULL};
	assert_int_equal(request("/v1/tools/github/issues.create", h, &c), CURLE_OK);
	assert_int_equal(c.status, 200);
	json_t *j = NULL;
	assert_int_equal(aam_json_parse(c.body.data, c.body.len, NULL, &j, NULL), AAM_OK);
	assert_string_equal(json_string_value(json_object_get(j, "workload")), WL);
	assert_string_equal(json_string_value(json_object_get(j, "subpath")),
	                    "github/issues.create");
	assert_string_equal(json_string_value(json_object_get(j, "method")), "virtual_key");
	assert_false(json_is_true(json_object_get(j, "attested")));
	assert_int_equal(strlen(json_string_value(json_object_get(j, "request_id"))), 32);
	assert_string_equal(json_string_value(json_object_get(j, "traceparent")),
	                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
	assert_string_equal(json_string_value(json_object_get(j, "on_behalf_of")), "user-42");
	json_decref(j);
	aam_buf_uninit(&c.body);
	/* A malformed traceparent is dropped, not passed on. */
	const char *bad[] = {"traceparent: 00-00000000000000000000000000000000-00f067aa0ba902b7-01",
	                     NULL};
	c = (struct client){0};
	assert_int_equal(request("/v1/tools/x", bad, &c), CURLE_OK);
	assert_non_null(strstr(aam_buf_cstr(&c.body), "\"traceparent\":null"));
	aam_buf_uninit(&c.body);
}

static void
test_audit_through_gw(void **state)
{
	(void)state;
	struct client c = {0};
	assert_int_equal(request("/v1/tools/audit", NULL, &c), CURLE_OK);
	assert_int_equal(c.status, 200);
	assert_string_equal(aam_buf_cstr(&c.body), "{\"allow\":true}");
	assert_int_equal(G.audited, 1);
	aam_buf_uninit(&c.body);
}

static void
test_stream_incremental(void **state)
{
	(void)state;
	G.acks = G.runs = 0;
	struct client c = {0};
	assert_int_equal(request("/v1/tools/stream/3", NULL, &c), CURLE_OK);
	assert_int_equal(c.status, 200);
	assert_string_equal(aam_buf_cstr(&c.body), "data: 0\n\ndata: 1\n\ndata: 2\n\n");
	assert_true(wait_for(&G.runs, 1, 3000));
	/* The context was intact on the producer's thread. */
	assert_string_equal(G.seen_workload, WL);
	assert_string_equal(G.seen_subpath, "stream/3");
	assert_int_equal(strlen(G.seen_rid), 32);
	aam_buf_uninit(&c.body);
}

static void
test_stream_client_gone(void **state)
{
	(void)state;
	G.acks = G.runs = G.closed_seen = 0;
	struct client c = {.stop_after = 2};
	assert_int_equal(request("/v1/tools/stream/400", NULL, &c), CURLE_WRITE_ERROR);
	assert_true(wait_for(&G.closed_seen, 1, 3000));
	assert_true(wait_for(&G.runs, 1, 1000));
	aam_buf_uninit(&c.body);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_context),
	        cmocka_unit_test(test_audit_through_gw),
	        cmocka_unit_test(test_stream_incremental),
	        cmocka_unit_test(test_stream_client_gone),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
