/*
 * The tool-call pipeline with the shipped CRM catalogue, real policies
 * (the reference finance-analyst-readonly policy and richer rules) and a
 * stub in place of aam-vault and the audit log: what reaches the
 * upstream, what is answered, and what is audited.
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
#include "gateway/tools.h"
#include "tests/lib/testutil.h"

#define FINANCE "spiffe://prod/agent/finance-analyst"
#define UPDATER "spiffe://prod/agent/crm-updater"
#define ACCOUNT "001000000000001AAA"

static const char RICHER[] = "apiVersion: access.envisionai.dev/v1\n"
                             "kind: AgentPolicy\n"
                             "metadata: {name: crm-updater}\n"
                             "spec:\n"
                             "  identity: {workload: " UPDATER "}\n"
                             "  tools:\n"
                             "    - resource: salesforce.accounts\n"
                             "      actions: [update]\n"
                             "      when: {amount: {max: 1000}}\n"
                             "      credential: crm-writer\n"
                             "      limits: {rpm: 2}\n"
                             "    - resource: salesforce.accounts\n"
                             "      actions: [search]\n"
                             "      when: {region: {in: [EU]}}\n"
                             "  audit:\n"
                             "    record: [identity, policy, action, parameters, outcome]\n"
                             "    plain: [id, region]\n";

struct stub {
	int calls;
	char method[16], url[4096], cred[128], body[4096], headers[4096];
	int64_t timeout_ms;
	int rc;           /* what inject returns */
	unsigned status;  /* upstream status */
	uint32_t version; /* the credential version the "vault" names */
	const char *reply;
	bool audit_fails;
	json_t *records; /* every audit record, in order */
	int64_t clock;
};

static struct stub S;
static struct gw_tools *T;
static gw_policy_set *SET;

static int
stub_inject(void *ctx, const struct gwt_request *req, const char *credential, int64_t timeout_ms,
            struct gwt_response *resp)
{
	struct stub *s = ctx;
	s->calls++;
	snprintf(s->method, sizeof(s->method), "%s", req->method);
	snprintf(s->url, sizeof(s->url), "%s", aam_buf_cstr(&req->url));
	snprintf(s->cred, sizeof(s->cred), "%s", credential);
	snprintf(s->body, sizeof(s->body), "%s", aam_buf_cstr(&req->body));
	s->headers[0] = '\0';
	for (size_t i = 0; i < req->nheaders; i++) {
		size_t n = strlen(s->headers);
		snprintf(s->headers + n, sizeof(s->headers) - n, "%s: %s\n", req->headers[i].name,
		         req->headers[i].value);
	}
	s->timeout_ms = timeout_ms;
	s->clock += 1500;
	if (s->rc != AAM_OK)
		return s->rc;
	resp->status = s->status;
	resp->credential_version = s->version;
	aam_buf_append(&resp->headers, "content-type\0application/json\0", 30);
	aam_buf_append_str(&resp->body, s->reply);
	return AAM_OK;
}

static int
stub_audit_new(void *ctx, const char *kind, json_t **ev)
{
	(void)ctx;
	*ev = json_pack("{s:s, s:s}", "kind", kind, "request_id", "r1");
	return AAM_OK;
}

static int
stub_audit(void *ctx, json_t *ev)
{
	struct stub *s = ctx;
	if (s->audit_fails)
		return AAM_E_AUDIT;
	json_array_append(s->records, ev);
	return AAM_OK;
}

static int64_t
stub_now(void *ctx)
{
	struct stub *s = ctx;
	return s->clock += 10;
}

static const struct gwt_io IO = {.ctx = &S,
                                 .inject = stub_inject,
                                 .audit_new = stub_audit_new,
                                 .audit = stub_audit,
                                 .now_us = stub_now};

/* A fresh catalogue and rate-limit state for every test. */
static int
tools_new(void)
{
	char *dir = aam_test_source_path("deploy/etc/aam/tools/crm.yaml");
	const char *paths[] = {dir};
	struct gwt_catalog *c = NULL;
	int rc = gwt_catalog_load(paths, 1, &c, NULL);
	free(dir);
	return rc == AAM_OK ? gw_tools_new(c, &T) : rc;
}

static int
setup(void **state)
{
	(void)state;
	int rc;
	char *ref = aam_test_source_path("policies/examples/finance-analyst-readonly.yaml");
	size_t len;
	char *text = aam_test_read_file(ref, &len);
	free(ref);
	char *all = NULL;
	if (text == NULL || asprintf(&all, "%s\n---\n%s", text, RICHER) < 0)
		return -1;
	free(text);
	rc = gw_policy_set_load_buffer("policies.yaml", all, strlen(all), NULL, &SET, NULL);
	free(all);
	return rc == AAM_OK ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	gw_policy_set_unref(SET);
	return 0;
}

static int
reset(void **state)
{
	(void)state;
	json_decref(S.records);
	memset(&S, 0, sizeof(S));
	S.records = json_array();
	S.status = 200;
	S.reply = "{\"ok\":true}";
	S.clock = 1000000;
	return tools_new() == AAM_OK ? 0 : -1;
}

static int
cleanup(void **state)
{
	(void)state;
	json_decref(S.records);
	S.records = NULL;
	gw_tools_free(T);
	T = NULL;
	return 0;
}

/* Runs one call; the answer's body is parsed into *BODY (may be NULL). */
static unsigned
call(const char *workload, const char *resource, const char *action, const char *params,
     json_t **body, struct gwt_result *res)
{
	struct gw_policy_request pr = {.workload = workload, .attested = true, .now = 1767607200};
	struct gwt_call c = {.resource = resource,
	                     .action = action,
	                     .body = (const uint8_t *)params,
	                     .body_len = params != NULL ? strlen(params) : 0,
	                     .set = SET,
	                     .preq = &pr};
	gwt_result_init(res);
	assert_int_equal(gwt_call_run(T, &IO, &c, res), AAM_OK);
	if (body != NULL) {
		json_error_t e;
		*body = json_loadb((const char *)res->body.data, res->body.len, 0, &e);
		assert_non_null(*body);
	}
	return res->status;
}

static const char *
jstr(json_t *j, const char *path)
{
	/* "a.b.c" into nested objects. */
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", path);
	json_t *cur = j;
	for (char *save = NULL, *tok = strtok_r(buf, ".", &save); tok != NULL && cur != NULL;
	     tok = strtok_r(NULL, ".", &save))
		cur = json_object_get(cur, tok);
	return json_string_value(cur);
}

static json_t *
last_record(void)
{
	size_t n = json_array_size(S.records);
	assert_true(n > 0);
	return json_array_get(S.records, n - 1);
}

static void
test_reference_allows_read_and_search(void **state)
{
	(void)state;
	struct gwt_result r;
	json_t *b;
	S.version = 4;
	assert_int_equal(call(FINANCE, "salesforce.accounts", "read",
	                      "{\"id\":\"" ACCOUNT "\",\"fields\":[\"Name\",\"Region\"]}", &b, &r),
	                 200);
	assert_true(json_is_true(json_object_get(b, "ok")));
	assert_string_equal(r.content_type, "application/json");
	json_decref(b);
	gwt_result_uninit(&r);
	assert_int_equal(S.calls, 1);
	assert_string_equal(S.method, "GET");
	assert_string_equal(S.url, "https://crm.example.com/services/data/v1/accounts/" ACCOUNT
	                           "?fields=Name%2CRegion");
	assert_string_equal(S.cred, "crm-api");
	assert_int_equal(S.timeout_ms, 30000);
	assert_non_null(strstr(S.headers, "Accept: application/json\n"));
	/* The audit record: decision, policy, action, digest, credential, outcome. */
	json_t *ev = last_record();
	assert_string_equal(jstr(ev, "kind"), "tool.call");
	assert_string_equal(jstr(ev, "decision"), "allow");
	assert_string_equal(jstr(ev, "reason"), "allowed");
	assert_string_equal(jstr(ev, "policy.set_hash"), gw_policy_set_hash_hex(SET));
	assert_string_equal(json_string_value(json_array_get(
	                            json_object_get(json_object_get(ev, "policy"), "names"), 0)),
	                    "finance-analyst-readonly");
	assert_string_equal(jstr(ev, "action.resource"), "salesforce.accounts");
	assert_string_equal(jstr(ev, "action.operation"), "read");
	assert_int_equal(strlen(jstr(ev, "action.params_sha256")), 64);
	/* The reference policy does not record parameters in plain. */
	assert_null(json_object_get(json_object_get(ev, "action"), "params"));
	assert_string_equal(jstr(ev, "credential.name"), "crm-api");
	/* The version the vault used, never the value. */
	json_t *cr = json_object_get(ev, "credential");
	assert_int_equal(json_integer_value(json_object_get(cr, "version")), 4);
	assert_int_equal(json_object_size(cr), 2);
	json_t *out = json_object_get(ev, "outcome");
	assert_int_equal(json_integer_value(json_object_get(out, "status")), 200);
	assert_true(json_integer_value(json_object_get(out, "latency_us")) >= 1500);

	assert_int_equal(call(FINANCE, "salesforce.accounts", "search",
	                      "{\"query\":\"Acme & Co\",\"region\":\"US\",\"limit\":5}", NULL, &r),
	                 200);
	gwt_result_uninit(&r);
	assert_string_equal(S.url, "https://crm.example.com/services/data/v1/accounts"
	                           "?q=Acme%20%26%20Co&region=US&limit=5");
	assert_int_equal(S.calls, 2);
	assert_int_equal(json_array_size(S.records), 2);
}

static void
test_reference_denies_and_audits(void **state)
{
	(void)state;
	const char *denied[][2] = {{"export", "{\"format\":\"csv\"}"},
	                           {"update", "{\"id\":\"" ACCOUNT "\",\"amount\":5}"},
	                           {"delete", "{\"id\":\"" ACCOUNT "\"}"}};
	for (size_t i = 0; i < 3; i++) {
		struct gwt_result r;
		json_t *b;
		assert_int_equal(
		        call(FINANCE, "salesforce.accounts", denied[i][0], denied[i][1], &b, &r),
		        403);
		assert_string_equal(r.code, "policy_denied");
		assert_string_equal(r.decision, "deny");
		assert_string_equal(jstr(b, "error.code"), "policy_denied");
		assert_string_equal(jstr(b, "error.reason"), "explicit_deny");
		assert_string_equal(jstr(b, "error.policy"), "finance-analyst-readonly");
		assert_string_equal(jstr(b, "error.rule"), "tools[0]");
		assert_string_equal(jstr(b, "error.field"), "spec.tools[0].deny");
		assert_non_null(strstr(jstr(b, "error.message"), "finance-analyst-readonly"));
		json_decref(b);
		gwt_result_uninit(&r);
		json_t *ev = last_record();
		assert_string_equal(jstr(ev, "decision"), "deny");
		assert_string_equal(jstr(ev, "reason"), "explicit_deny");
		assert_string_equal(jstr(ev, "action.operation"), denied[i][0]);
		assert_non_null(jstr(ev, "action.params_sha256"));
		assert_null(json_object_get(ev, "credential"));
		assert_int_equal(json_integer_value(
		                         json_object_get(json_object_get(ev, "outcome"), "status")),
		                 0);
	}
	/* Nothing reached the upstream; every denial was audited. */
	assert_int_equal(S.calls, 0);
	assert_int_equal(json_array_size(S.records), 3);
	/* Another workload: no policy applies. */
	struct gwt_result r;
	json_t *b;
	assert_int_equal(call("spiffe://prod/agent/other", "salesforce.accounts", "read",
	                      "{\"id\":\"" ACCOUNT "\"}", &b, &r),
	                 403);
	assert_string_equal(jstr(b, "error.reason"), "no_match");
	assert_true(json_is_null(json_object_get(json_object_get(b, "error"), "policy")));
	json_decref(b);
	gwt_result_uninit(&r);
	assert_int_equal(S.calls, 0);
}

static void
test_conditions_and_credentials(void **state)
{
	(void)state;
	struct gwt_result r;
	json_t *b;
	/* update only when amount <= 1000, with the rule's credential. */
	assert_int_equal(call(UPDATER, "salesforce.accounts", "update",
	                      "{\"id\":\"" ACCOUNT "\",\"amount\":1000,\"region\":\"EU\","
	                      "\"etag\":\"v7\"}",
	                      NULL, &r),
	                 200);
	gwt_result_uninit(&r);
	assert_string_equal(S.method, "PATCH");
	assert_string_equal(S.cred, "crm-writer");
	assert_string_equal(S.body, "{\"annual_revenue\":1000,\"region\":\"EU\"}");
	assert_non_null(strstr(S.headers, "If-Match: v7\n"));
	assert_non_null(strstr(S.headers, "Content-Type: application/json\n"));
	/* The richer policy lists id and region as plain: they are recorded as is. */
	json_t *ev = last_record();
	assert_string_equal(jstr(ev, "action.params.id"), ACCOUNT);
	assert_string_equal(jstr(ev, "action.params.region"), "EU");
	assert_null(json_object_get(json_object_get(json_object_get(ev, "action"), "params"),
	                            "amount"));
	assert_null(
	        json_object_get(json_object_get(json_object_get(ev, "action"), "params"), "etag"));

	assert_int_equal(call(UPDATER, "salesforce.accounts", "update",
	                      "{\"id\":\"" ACCOUNT "\",\"amount\":1000.5}", &b, &r),
	                 403);
	assert_string_equal(jstr(b, "error.reason"), "condition_failed");
	assert_string_equal(jstr(b, "error.policy"), "crm-updater");
	assert_string_equal(jstr(b, "error.field"), "spec.tools[0].when.amount.max");
	json_decref(b);
	gwt_result_uninit(&r);
	/* search only in region EU. */
	assert_int_equal(call(UPDATER, "salesforce.accounts", "search",
	                      "{\"query\":\"a\",\"region\":\"EU\"}", NULL, &r),
	                 200);
	gwt_result_uninit(&r);
	assert_int_equal(call(UPDATER, "salesforce.accounts", "search",
	                      "{\"query\":\"a\",\"region\":\"US\"}", &b, &r),
	                 403);
	assert_string_equal(jstr(b, "error.reason"), "condition_failed");
	json_decref(b);
	gwt_result_uninit(&r);
	assert_int_equal(
	        call(UPDATER, "salesforce.accounts", "search", "{\"query\":\"a\"}", NULL, &r), 403);
	gwt_result_uninit(&r);
	assert_int_equal(S.calls, 2);
}

static void
test_rate_limit(void **state)
{
	(void)state;
	struct gwt_result r;
	json_t *b;
	const char *p = "{\"id\":\"" ACCOUNT "\",\"amount\":1}";
	assert_int_equal(call(UPDATER, "salesforce.accounts", "update", p, NULL, &r), 200);
	gwt_result_uninit(&r);
	assert_int_equal(call(UPDATER, "salesforce.accounts", "update", p, NULL, &r), 200);
	gwt_result_uninit(&r);
	assert_int_equal(call(UPDATER, "salesforce.accounts", "update", p, &b, &r), 429);
	assert_string_equal(jstr(b, "error.code"), "rate_limited");
	assert_true(r.retry_after >= 1 && r.retry_after <= 31);
	json_decref(b);
	gwt_result_uninit(&r);
	assert_int_equal(S.calls, 2);
	json_t *ev = last_record();
	assert_string_equal(jstr(ev, "decision"), "deny");
	assert_string_equal(jstr(ev, "reason"), "rate_limited");
	/* Search has no limit: unaffected. */
	assert_int_equal(call(UPDATER, "salesforce.accounts", "search",
	                      "{\"query\":\"a\",\"region\":\"EU\"}", NULL, &r),
	                 200);
	gwt_result_uninit(&r);
}

/* Each refusal: a precise error, audited, and nothing sent. */
static void
refused(const char *resource, const char *action, const char *params, unsigned status,
        const char *code, const char *param, bool audited)
{
	struct gwt_result r;
	json_t *b;
	size_t before = json_array_size(S.records);
	assert_int_equal(call(FINANCE, resource, action, params, &b, &r), status);
	assert_string_equal(jstr(b, "error.code"), code);
	if (param != NULL)
		assert_string_equal(jstr(b, "error.parameter"), param);
	json_decref(b);
	gwt_result_uninit(&r);
	assert_int_equal(S.calls, 0);
	assert_int_equal(json_array_size(S.records), before + (audited ? 1 : 0));
	if (audited) {
		json_t *ev = last_record();
		assert_string_equal(jstr(ev, "decision"), "deny");
		assert_string_equal(jstr(ev, "reason"), code);
	}
}

static void
test_hostile_calls(void **state)
{
	(void)state;
	const char *sf = "salesforce.accounts";
	refused(sf, "merge", "{}", 404, "unknown_tool", NULL, false);
	refused("salesforce.opportunities", "read", "{}", 404, "unknown_tool", NULL, false);
	refused("../etc", "read", "{}", 404, "unknown_tool", NULL, false);
	refused(sf, "read", "{\"id\":", 400, "invalid_json", NULL, true);
	refused(sf, "read", "[1]", 400, "invalid_parameters", NULL, true);
	refused(sf, "read", "{\"id\":\"" ACCOUNT "\",\"id\":\"x\"}", 400, "invalid_json", NULL,
	        true);
	refused(sf, "read", "{}", 400, "invalid_parameters", "id", true);
	refused(sf, "read", "{\"id\":\"../../admin\"}", 400, "invalid_parameters", "id", true);
	refused(sf, "read", "{\"id\":\"" ACCOUNT "/../x\"}", 400, "invalid_parameters", "id", true);
	refused(sf, "read", "{\"id\":\"" ACCOUNT "\",\"limit\":1}", 400, "unknown_parameter", NULL,
	        true);
	refused(sf, "search", "{\"query\":\"\"}", 400, "invalid_parameters", "query", true);
	refused(sf, "search", "{\"query\":\"a\",\"limit\":201}", 400, "invalid_parameters", "limit",
	        true);
	refused(sf, "search", "{\"query\":\"a\",\"region\":\"MARS\"}", 400, "invalid_parameters",
	        "region", true);
	/* Oversized arguments: refused before parsing. */
	size_t big = GWT_MAX_ARGS + 10;
	char *doc = malloc(big + 1);
	memset(doc, ' ', big);
	memcpy(doc, "{\"query\":\"", 10);
	memcpy(doc + big - 2, "\"}", 2);
	doc[big] = '\0';
	refused(sf, "search", doc, 413, "payload_too_large", NULL, true);
	free(doc);
	/* Deep nesting within the size bound. */
	char deep[200];
	memset(deep, '[', 100);
	memset(deep + 100, ']', 99);
	deep[199] = '\0';
	char *nest = NULL;
	assert_true(asprintf(&nest, "{\"query\":%s]}", deep) > 0);
	refused(sf, "search", nest, 413, "payload_too_large", NULL, true);
	free(nest);
}

static void
test_header_injection_update(void **state)
{
	(void)state;
	/* The updater may update; its etag tries to smuggle a header. */
	struct gwt_result r;
	json_t *b;
	assert_int_equal(call(UPDATER, "salesforce.accounts", "update",
	                      "{\"id\":\"" ACCOUNT
	                      "\",\"amount\":1,\"etag\":\"v1\\r\\nX-Admin: true\"}",
	                      &b, &r),
	                 400);
	assert_string_equal(jstr(b, "error.parameter"), "etag");
	json_decref(b);
	gwt_result_uninit(&r);
	assert_int_equal(S.calls, 0);
}

static void
test_audit_failure_withholds(void **state)
{
	(void)state;
	S.audit_fails = true;
	struct gwt_result r;
	json_t *b;
	S.reply = "{\"secret_data\":42}";
	assert_int_equal(
	        call(FINANCE, "salesforce.accounts", "read", "{\"id\":\"" ACCOUNT "\"}", &b, &r),
	        503);
	assert_string_equal(jstr(b, "error.code"), "audit_unavailable");
	assert_null(strstr((const char *)r.body.data, "secret_data"));
	json_decref(b);
	gwt_result_uninit(&r);
	/* A denial that cannot be audited is not answered as a denial either. */
	assert_int_equal(
	        call(FINANCE, "salesforce.accounts", "delete", "{\"id\":\"" ACCOUNT "\"}", &b, &r),
	        503);
	json_decref(b);
	gwt_result_uninit(&r);
}

static void
test_upstream_errors(void **state)
{
	(void)state;
	struct {
		int rc;
		unsigned status;
		const char *code;
	} cases[] = {{AAM_E_DENIED, 502, "upstream_refused"},
	             {AAM_E_NOTFOUND, 502, "credential_unknown"},
	             {AAM_E_TIMEOUT, 504, "upstream_timeout"},
	             {AAM_E_CLOSED, 503, "vault_unavailable"},
	             {AAM_E_IO, 502, "upstream_error"}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		S.rc = cases[i].rc;
		struct gwt_result r;
		json_t *b;
		assert_int_equal(call(FINANCE, "salesforce.accounts", "read",
		                      "{\"id\":\"" ACCOUNT "\"}", &b, &r),
		                 cases[i].status);
		assert_string_equal(jstr(b, "error.code"), cases[i].code);
		json_decref(b);
		gwt_result_uninit(&r);
		json_t *ev = last_record();
		assert_string_equal(jstr(ev, "decision"), "allow");
		assert_string_equal(jstr(ev, "error"), cases[i].code);
	}
	/* An upstream error status passes through with its body. */
	S.rc = AAM_OK;
	S.status = 404;
	S.reply = "{\"error\":\"no such account\"}";
	struct gwt_result r;
	assert_int_equal(
	        call(FINANCE, "salesforce.accounts", "read", "{\"id\":\"" ACCOUNT "\"}", NULL, &r),
	        404);
	assert_string_equal(aam_buf_cstr(&r.body), S.reply);
	gwt_result_uninit(&r);
}

static void
test_listing(void **state)
{
	(void)state;
	struct gw_policy_request pr = {.workload = FINANCE, .attested = true, .now = 1767607200};
	struct gwt_call c = {.set = SET, .preq = &pr};
	struct gwt_result r;
	gwt_result_init(&r);
	assert_int_equal(gwt_list_run(T, &c, &r), AAM_OK);
	json_error_t e;
	json_t *j = json_loadb((const char *)r.body.data, r.body.len, 0, &e);
	json_t *tools = json_object_get(j, "tools");
	assert_int_equal(json_array_size(tools), 2);
	assert_string_equal(jstr(json_array_get(tools, 0), "action"), "read");
	assert_string_equal(jstr(json_array_get(tools, 1), "action"), "search");
	json_t *schema = json_object_get(json_array_get(tools, 1), "parameters");
	assert_string_equal(jstr(schema, "properties.region.type"), "string");
	assert_true(json_is_false(json_object_get(schema, "additionalProperties")));
	json_decref(j);
	gwt_result_uninit(&r);
	/* The updater's update and search are conditional: listed as such. */
	pr.workload = UPDATER;
	gwt_result_init(&r);
	assert_int_equal(gwt_list_run(T, &c, &r), AAM_OK);
	j = json_loadb((const char *)r.body.data, r.body.len, 0, &e);
	tools = json_object_get(j, "tools");
	assert_int_equal(json_array_size(tools), 2);
	assert_true(json_is_true(json_object_get(json_array_get(tools, 0), "conditional")));
	json_decref(j);
	gwt_result_uninit(&r);
}

int
main(void)
{
#define T_(f) cmocka_unit_test_setup_teardown(f, reset, cleanup)
	const struct CMUnitTest tests[] = {
	        T_(test_reference_allows_read_and_search),
	        T_(test_reference_denies_and_audits),
	        T_(test_conditions_and_credentials),
	        T_(test_rate_limit),
	        T_(test_hostile_calls),
	        T_(test_header_injection_update),
	        T_(test_audit_failure_withholds),
	        T_(test_upstream_errors),
	        T_(test_listing),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
