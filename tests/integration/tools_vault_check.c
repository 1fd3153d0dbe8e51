/*
 * Tool calls against real processes: aam-vault on a SoftHSM2 token holds
 * the CRM's API key (stored with aamctl, bound to the mock CRM's URL),
 * aam-mock-saas plays the CRM and records every request, and the
 * pipeline of gateway/tools_call.c runs with the shipped CRM catalogue
 * and the reference finance-analyst-readonly policy, its upstream calls
 * going through the vault's INJECT.
 *
 * Covered: read and search succeed and the CRM saw the injected key (the
 * caller never had it); export, update and delete are denied, audited,
 * and never reach the CRM; hostile parameters (path traversal, header
 * injection, schema violations) never reach it either; a response that
 * would carry the key reaches the caller scrubbed; the vault refuses a
 * credential outside its binding; and the audit records carry every
 * field.  The daemon-level version (aam-gateway, virtual keys, the audit
 * log) is tools_gateway_check.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aam/err.h"
#include "gateway/tools.h"
#include "gateway/tools_vault.h"
#include "tests/integration/vault_harness.h"
#include "tests/lib/testutil.h"

#define FINANCE "spiffe://prod/agent/finance-analyst"
#define WRITER  "spiffe://prod/agent/crm-writer"
#define ACCOUNT "001000000000001AAA"
#define KEY     "crm-Api-Key-5f1e2d3c-0001"
#define GH_KEY  "ghp-Test-Token-9a8b7c6d-0002"
#define BOT     "spiffe://prod/agent/release-bot"

struct ctx {
	struct vh v;
	char *dir;
	char record[1024], gh_record[1024];
	int port, gh_port;
	pid_t mock, gh_mock;
	struct gw_tools *tools;
	gw_policy_set *set;
	json_t *audit;
};
static struct ctx *C;

static const char WRITER_POLICY[] = "apiVersion: access.envisionai.dev/v1\n"
                                    "kind: AgentPolicy\n"
                                    "metadata: {name: crm-writer}\n"
                                    "spec:\n"
                                    "  identity: {workload: " WRITER "}\n"
                                    "  tools:\n"
                                    "    - resource: salesforce.accounts\n"
                                    "      actions: [read, update]\n"
                                    "      when: {amount: {max: 1000}}\n"
                                    "    - resource: salesforce.accounts\n"
                                    "      actions: [read]\n"
                                    "    - resource: salesforce.accounts\n"
                                    "      actions: [search]\n"
                                    "      credential: crm-elsewhere\n"
                                    "  audit:\n"
                                    "    record: [identity, policy, action, parameters, outcome]\n"
                                    "    plain: [id]\n";

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
	*ev = json_pack("{s:s, s:s}", "kind", kind, "request_id",
	                "0123456789abcdef0123456789abcdef");
	return AAM_OK;
}

static int
io_audit(void *ctx, json_t *ev)
{
	(void)ctx;
	json_array_append(C->audit, ev);
	return AAM_OK;
}

static const struct gwt_io IO = {.inject = io_inject, .audit_new = io_audit_new, .audit = io_audit};

static void
nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Starts aam-mock-saas in MODE requiring VALUE; fills *PORT and *PID. */
static int
start_mock(const char *mode, const char *value, char *record, size_t rlen, int *port_out,
           pid_t *pid_out)
{
	char keyfile[1024], log[1024], port[16];
	snprintf(keyfile, sizeof(keyfile), "%s/%s.key", C->dir, mode);
	snprintf(log, sizeof(log), "%s/mock-%s.log", C->dir, mode);
	snprintf(record, rlen, "%s/%s-requests.jsonl", C->dir, mode);
	char line[256];
	snprintf(line, sizeof(line), "%s\n", value);
	if (aam_test_write_file(keyfile, line, strlen(line), 0600) != 0)
		return -1;
	*port_out = aam_test_free_port();
	snprintf(port, sizeof(port), "%d", *port_out);
	const char *bin = getenv("AAM_MOCK_SAAS_BIN");
	if (bin == NULL)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		FILE *f = freopen(log, "w", stdout);
		(void)f;
		dup2(fileno(stdout), 2);
		execl(bin, bin, "--mode", mode, "--port", port, "--record", record, "--key-file",
		      keyfile, (char *)NULL);
		_exit(127);
	}
	*pid_out = pid;
	for (int i = 0; i < 100; i++) {
		char *out = aam_test_read_file(log, NULL);
		bool up = out != NULL && strstr(out, "listening on") != NULL;
		free(out);
		if (up)
			return 0;
		nap_ms(50);
	}
	return -1;
}

/* The shipped catalogue FILE with its base URL FROM replaced by TO (malloc'd). */
static char *
catalogue(const char *file, const char *from, const char *to)
{
	char *path = aam_test_source_path(file);
	char *text = aam_test_read_file(path, NULL);
	free(path);
	char *at = text != NULL ? strstr(text, from) : NULL;
	char *out = NULL;
	if (at == NULL ||
	    asprintf(&out, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from)) < 0)
		out = NULL;
	free(text);
	return out;
}

static int
put_secret(const char *value, const char *name, const char *bind)
{
	char line[256], *out = NULL;
	snprintf(line, sizeof(line), "%s\n", value);
	int rc = vh_aamctl(&C->v, line, &out, NULL, "secret", "put", name, "--type", "bearer",
	                   "--bind", bind, NULL);
	free(out);
	return rc;
}

static int
setup(void **state)
{
	(void)state;
	if (!aam_test_softhsm_available())
		return 0;
	C = calloc(1, sizeof(*C));
	C->audit = json_array();
	C->dir = aam_test_mkdtemp("aam-tools-it");
	if (C->dir == NULL ||
	    start_mock("crm", KEY, C->record, sizeof(C->record), &C->port, &C->mock) != 0 ||
	    start_mock("github", GH_KEY, C->gh_record, sizeof(C->gh_record), &C->gh_port,
	               &C->gh_mock) != 0)
		return -1;
	if (vh_setup(&C->v, "  request_timeout: 30s\n") != 0 || vh_start(&C->v) != 0)
		return -1;
	char *out = NULL;
	if (vh_aamctl(&C->v, NULL, &out, NULL, "keys", "init", NULL) != 0)
		return -1;
	free(out);
	/* The CRM key, bound to the mock's API prefix only. */
	char bind[256];
	snprintf(bind, sizeof(bind), "http://127.0.0.1:%d/services/data/v1/", C->port);
	if (put_secret(KEY, "crm-api", bind) != 0)
		return -1;
	/* A credential bound elsewhere: the vault must refuse to send it to the CRM. */
	if (put_secret("other-value-0002", "crm-elsewhere", "https://crm.example.com/") != 0)
		return -1;
	/* GitHub: a read-only and a release-writing credential (the mock takes one key). */
	snprintf(bind, sizeof(bind), "http://127.0.0.1:%d/repos/", C->gh_port);
	if (put_secret(GH_KEY, "github-readonly", bind) != 0 ||
	    put_secret(GH_KEY, "github-release-writer", bind) != 0)
		return -1;

	/* The shipped catalogues, pointed at the mocks, as one stream. */
	char to[128];
	snprintf(to, sizeof(to), "http://127.0.0.1:%d/services/data/v1", C->port);
	char *crm = catalogue("deploy/etc/aam/tools/crm.yaml",
	                      "https://crm.example.com/services/data/v1", to);
	snprintf(to, sizeof(to), "http://127.0.0.1:%d", C->gh_port);
	char *gh = catalogue("deploy/etc/aam/tools/github.yaml", "https://api.github.com", to);
	char *cat = NULL;
	if (crm == NULL || gh == NULL || asprintf(&cat, "%s\n---\n%s", crm, gh) < 0)
		return -1;
	free(crm);
	free(gh);
	struct gwt_catalog *c = NULL;
	struct aam_yaml_error e;
	int rc = gwt_catalog_load_buffer("tools.yaml", cat, strlen(cat), &c, &e);
	free(cat);
	if (rc != AAM_OK || gw_tools_new(c, &C->tools) != AAM_OK)
		return -1;
	/* The reference policy and the credentials example, as shipped, and the writer's. */
	char *path = aam_test_source_path("policies/examples/finance-analyst-readonly.yaml");
	char *ref = aam_test_read_file(path, NULL);
	free(path);
	path = aam_test_source_path("policies/examples/tool-credentials.yaml");
	char *creds = aam_test_read_file(path, NULL);
	free(path);
	char *all = NULL;
	if (ref == NULL || creds == NULL ||
	    asprintf(&all, "%s\n---\n%s\n---\n%s", ref, creds, WRITER_POLICY) < 0)
		return -1;
	free(ref);
	free(creds);
	rc = gw_policy_set_load_buffer("policies.yaml", all, strlen(all), NULL, &C->set, NULL);
	free(all);
	return rc == AAM_OK ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	if (C == NULL)
		return 0;
	pid_t pids[] = {C->mock, C->gh_mock};
	for (size_t i = 0; i < 2; i++)
		if (pids[i] > 0) {
			kill(pids[i], SIGTERM);
			waitpid(pids[i], NULL, 0);
		}
	/* Nothing anywhere holds the key: not the vault's files, its log, the test folder. */
	assert_false(vh_tree_contains(C->v.dir, KEY, strlen(KEY)));
	vh_teardown(&C->v);
	gw_tools_free(C->tools);
	gw_policy_set_unref(C->set);
	json_decref(C->audit);
	aam_test_rmtree(C->dir);
	free(C->dir);
	free(C);
	C = NULL;
	return 0;
}

/* The requests a mock has recorded (its record file), as a JSON array. */
static json_t *
requests_in(const char *record)
{
	json_t *arr = json_array();
	char *text = aam_test_read_file(record, NULL);
	for (char *line = text, *save = NULL; text != NULL && (line = strtok_r(line, "\n", &save));
	     line = NULL) {
		json_t *j = json_loads(line, 0, NULL);
		if (j != NULL)
			json_array_append_new(arr, j);
	}
	free(text);
	return arr;
}

static json_t *
crm_requests(void)
{
	return requests_in(C->record);
}

static size_t
crm_count(void)
{
	json_t *a = crm_requests();
	size_t n = json_array_size(a);
	json_decref(a);
	return n;
}

static unsigned
call_on(const char *workload, const char *resource, const char *action, const char *params,
        struct gwt_result *r)
{
	struct gw_policy_request pr = {.workload = workload, .attested = true, .now = time(NULL)};
	struct gwt_call c = {.resource = resource,
	                     .action = action,
	                     .body = (const uint8_t *)params,
	                     .body_len = strlen(params),
	                     .set = C->set,
	                     .preq = &pr};
	gwt_result_init(r);
	assert_int_equal(gwt_call_run(C->tools, &IO, &c, r), AAM_OK);
	return r->status;
}

static unsigned
call(const char *workload, const char *action, const char *params, struct gwt_result *r)
{
	return call_on(workload, "salesforce.accounts", action, params, r);
}

static const char *
str_at(json_t *j, const char *a, const char *b)
{
	return json_string_value(
	        json_object_get(b != NULL ? json_object_get(j, a) : j, b != NULL ? b : a));
}

static void
test_reference_policy(void **state)
{
	(void)state;
	AAM_TEST_SOFTHSM_REQUIRE();
	struct gwt_result r;
	size_t before = crm_count();
	assert_int_equal(
	        call(FINANCE, "read", "{\"id\":\"" ACCOUNT "\",\"fields\":[\"Name\"]}", &r), 200);
	assert_non_null(strstr(aam_buf_cstr(&r.body), "Acme Corporation"));
	gwt_result_uninit(&r);
	assert_int_equal(call(FINANCE, "search", "{\"query\":\"acme\",\"region\":\"EU\"}", &r),
	                 200);
	json_t *b = json_loads(aam_buf_cstr(&r.body), 0, NULL);
	assert_int_equal(json_integer_value(json_object_get(b, "totalSize")), 1);
	json_decref(b);
	gwt_result_uninit(&r);
	/* The CRM saw both, each with the vault's key; the query was escaped once. */
	json_t *reqs = crm_requests();
	assert_int_equal(json_array_size(reqs), before + 2);
	json_t *rd = json_array_get(reqs, before), *sr = json_array_get(reqs, before + 1);
	assert_string_equal(str_at(rd, "auth", NULL), "ok");
	assert_string_equal(str_at(rd, "path", NULL), "/services/data/v1/accounts/" ACCOUNT);
	assert_string_equal(str_at(rd, "query", "fields"), "Name");
	assert_string_equal(str_at(sr, "auth", NULL), "ok");
	assert_string_equal(str_at(sr, "query", "q"), "acme");
	assert_string_equal(str_at(sr, "query", "region"), "EU");
	json_decref(reqs);

	/* export, update and delete: denied, audited, never sent. */
	const char *denied[][2] = {{"export", "{\"format\":\"csv\"}"},
	                           {"update", "{\"id\":\"" ACCOUNT "\",\"name\":\"x\"}"},
	                           {"delete", "{\"id\":\"" ACCOUNT "\"}"}};
	for (size_t i = 0; i < 3; i++) {
		size_t na = json_array_size(C->audit);
		assert_int_equal(call(FINANCE, denied[i][0], denied[i][1], &r), 403);
		b = json_loads(aam_buf_cstr(&r.body), 0, NULL);
		assert_string_equal(str_at(b, "error", "reason"), "explicit_deny");
		assert_string_equal(str_at(b, "error", "policy"), "finance-analyst-readonly");
		json_decref(b);
		gwt_result_uninit(&r);
		assert_int_equal(json_array_size(C->audit), na + 1);
		json_t *ev = json_array_get(C->audit, na);
		assert_string_equal(str_at(ev, "decision", NULL), "deny");
		assert_string_equal(str_at(ev, "action", "operation"), denied[i][0]);
	}
	assert_int_equal(crm_count(), before + 2);
}

static void
test_audit_fields(void **state)
{
	(void)state;
	AAM_TEST_SOFTHSM_REQUIRE();
	struct gwt_result r;
	assert_int_equal(call(WRITER, "update", "{\"id\":\"" ACCOUNT "\",\"amount\":900}", &r),
	                 200);
	gwt_result_uninit(&r);
	json_t *ev = json_array_get(C->audit, json_array_size(C->audit) - 1);
	assert_string_equal(str_at(ev, "kind", NULL), "tool.call");
	assert_string_equal(str_at(ev, "decision", NULL), "allow");
	assert_string_equal(str_at(ev, "policy", "set_hash"), gw_policy_set_hash_hex(C->set));
	assert_string_equal(str_at(ev, "action", "resource"), "salesforce.accounts");
	assert_string_equal(str_at(ev, "action", "operation"), "update");
	char digest[65];
	json_t *p = json_loads("{\"amount\":900,\"id\":\"" ACCOUNT "\"}", 0, NULL);
	assert_int_equal(gwt_params_digest(p, digest), AAM_OK);
	json_decref(p);
	assert_string_equal(str_at(ev, "action", "params_sha256"), digest);
	/* id is listed as plain by the policy, amount is not. */
	json_t *plain = json_object_get(json_object_get(ev, "action"), "params");
	assert_string_equal(json_string_value(json_object_get(plain, "id")), ACCOUNT);
	assert_null(json_object_get(plain, "amount"));
	assert_string_equal(str_at(ev, "credential", "name"), "crm-api");
	json_t *out = json_object_get(ev, "outcome");
	assert_int_equal(json_integer_value(json_object_get(out, "status")), 200);
	assert_true(json_integer_value(json_object_get(out, "latency_us")) > 0);
	/* The value is nowhere in any record. */
	char *all = json_dumps(C->audit, JSON_COMPACT);
	assert_null(strstr(all, KEY));
	free(all);
	/* Over the condition: denied with the field that failed. */
	assert_int_equal(call(WRITER, "update", "{\"id\":\"" ACCOUNT "\",\"amount\":1001}", &r),
	                 403);
	json_t *b = json_loads(aam_buf_cstr(&r.body), 0, NULL);
	assert_string_equal(str_at(b, "error", "field"), "spec.tools[0].when.amount.max");
	json_decref(b);
	gwt_result_uninit(&r);
}

static void
test_scrubbed_response(void **state)
{
	(void)state;
	AAM_TEST_SOFTHSM_REQUIRE();
	/* An account whose name is the key: the answer reaches the caller scrubbed. */
	struct gwt_result r;
	assert_int_equal(call(WRITER, "update",
	                      "{\"id\":\"001000000000003AAA\",\"name\":\"" KEY "\",\"amount\":1}",
	                      &r),
	                 200);
	gwt_result_uninit(&r);
	assert_int_equal(call(WRITER, "read", "{\"id\":\"001000000000003AAA\"}", &r), 200);
	assert_null(strstr(aam_buf_cstr(&r.body), KEY));
	assert_non_null(strstr(aam_buf_cstr(&r.body), "[REDACTED]"));
	gwt_result_uninit(&r);
}

static void
test_binding_refused(void **state)
{
	(void)state;
	AAM_TEST_SOFTHSM_REQUIRE();
	/* The policy names a credential bound to another host: the vault refuses. */
	size_t before = crm_count();
	struct gwt_result r;
	assert_int_equal(call(WRITER, "search", "{\"query\":\"a\"}", &r), 502);
	json_t *b = json_loads(aam_buf_cstr(&r.body), 0, NULL);
	assert_string_equal(str_at(b, "error", "code"), "upstream_refused");
	json_decref(b);
	gwt_result_uninit(&r);
	assert_int_equal(crm_count(), before);
	json_t *ev = json_array_get(C->audit, json_array_size(C->audit) - 1);
	assert_string_equal(str_at(ev, "error", NULL), "upstream_refused");
	assert_string_equal(str_at(ev, "credential", "name"), "crm-elsewhere");
}

static void
test_hostile_parameters(void **state)
{
	(void)state;
	AAM_TEST_SOFTHSM_REQUIRE();
	size_t before = crm_count();
	const char *bad[][2] = {
	        {"read", "{\"id\":\"../../../services/data/v1/accounts/export\"}"},
	        {"read", "{\"id\":\"" ACCOUNT "%2F..%2F\"}"},
	        {"read", "{\"id\":\"" ACCOUNT "\",\"extra\":1}"},
	        {"update", "{\"id\":\"" ACCOUNT "\",\"amount\":1,\"etag\":\"x\\r\\nX-Admin: 1\"}"},
	        {"update", "{\"id\":\"" ACCOUNT "\",\"amount\":-1}"},
	        {"update", "{\"id\":\"" ACCOUNT "\",\"amount\":1,\"phone\":\"call me\"}"},
	        {"read", "not json"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct gwt_result r;
		unsigned st = call(WRITER, bad[i][0], bad[i][1], &r);
		if (st != 400)
			fail_msg("%s %s: %u %s", bad[i][0], bad[i][1], st, aam_buf_cstr(&r.body));
		gwt_result_uninit(&r);
	}
	assert_int_equal(crm_count(), before);
}

static void
test_github(void **state)
{
	(void)state;
	AAM_TEST_SOFTHSM_REQUIRE();
	/* policies/examples/tool-credentials.yaml: read/list with github-readonly, releases
	 * created with github-release-writer at most 5 a minute, nothing else. */
	struct gwt_result r;
	assert_int_equal(call_on(BOT, "github.repos.issues", "list",
	                         "{\"owner\":\"acme\",\"repo\":\"widgets\",\"state\":\"open\","
	                         "\"labels\":[\"bug\",\"ui\"],\"per_page\":10}",
	                         &r),
	                 200);
	gwt_result_uninit(&r);
	json_t *ev = json_array_get(C->audit, json_array_size(C->audit) - 1);
	assert_string_equal(str_at(ev, "credential", "name"), "github-readonly");
	json_t *reqs = requests_in(C->gh_record);
	json_t *last = json_array_get(reqs, json_array_size(reqs) - 1);
	assert_string_equal(str_at(last, "path", NULL), "/repos/acme/widgets/issues");
	assert_string_equal(str_at(last, "query", "labels"), "bug,ui");
	assert_string_equal(str_at(last, "auth", NULL), "ok");
	assert_string_equal(str_at(last, "headers", "X-GitHub-Api-Version"), "2022-11-28");
	json_decref(reqs);

	for (int i = 0; i < 5; i++) {
		char body[256];
		snprintf(body, sizeof(body),
		         "{\"owner\":\"acme\",\"repo\":\"widgets\",\"tag\":\"v1.2.%d\","
		         "\"draft\":false}",
		         i);
		assert_int_equal(call_on(BOT, "github.repos.releases", "create", body, &r), 201);
		gwt_result_uninit(&r);
	}
	ev = json_array_get(C->audit, json_array_size(C->audit) - 1);
	assert_string_equal(str_at(ev, "credential", "name"), "github-release-writer");
	reqs = requests_in(C->gh_record);
	last = json_array_get(reqs, json_array_size(reqs) - 1);
	assert_string_equal(str_at(last, "body", NULL),
	                    "{\"draft\":false,\"tag_name\":\"v1.2.4\"}");
	json_decref(reqs);
	/* The sixth within the minute: the rule's rpm. */
	assert_int_equal(call_on(BOT, "github.repos.releases", "create",
	                         "{\"owner\":\"acme\",\"repo\":\"widgets\",\"tag\":\"v9.9.9\"}",
	                         &r),
	                 429);
	gwt_result_uninit(&r);
	/* Creating issues is allowed by no rule; a bad owner never gets past the schema. */
	assert_int_equal(call_on(BOT, "github.repos.issues", "create",
	                         "{\"owner\":\"acme\",\"repo\":\"widgets\",\"title\":\"x\"}", &r),
	                 403);
	gwt_result_uninit(&r);
	assert_int_equal(call_on(BOT, "github.repos.issues", "list",
	                         "{\"owner\":\"..\",\"repo\":\"widgets\"}", &r),
	                 400);
	gwt_result_uninit(&r);
	reqs = requests_in(C->gh_record);
	assert_int_equal(json_array_size(reqs), 6);
	json_decref(reqs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_reference_policy),   cmocka_unit_test(test_audit_fields),
	        cmocka_unit_test(test_scrubbed_response),  cmocka_unit_test(test_binding_refused),
	        cmocka_unit_test(test_hostile_parameters), cmocka_unit_test(test_github),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
