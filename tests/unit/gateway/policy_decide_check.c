/*
 * Decision semantics beyond the examples: combination of several
 * policies, obligations (credentials, limits, audit), every condition
 * operator on hostile parameter types, time windows, the request JSON
 * format and the reason format.
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
#include "gateway/policy.h"

#define HDR                                                                                        \
	"apiVersion: access.envisionai.dev/v1\n"                                                   \
	"kind: AgentPolicy\n"

static gw_policy_set *
load(const char *text)
{
	gw_policy_set *set = NULL;
	struct gw_policy_diag d;
	gw_policy_diag_init(&d);
	int rc = gw_policy_set_load_buffer("t.yaml", text, strlen(text), NULL, &set, &d);
	for (size_t i = 0; i < d.n; i++) {
		char line[512];
		gw_policy_diag_format(&d, i, line, sizeof(line));
		print_error("%s\n", line);
	}
	gw_policy_diag_uninit(&d);
	assert_int_equal(rc, AAM_OK);
	return set;
}

static json_t *
params(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);
	assert_non_null(j);
	return j;
}

static bool
tool_allowed(const gw_policy_set *set, const char *workload, const char *resource,
             const char *action, const json_t *p)
{
	struct gw_policy_request r = {.workload = workload,
	                              .kind = GW_POLICY_TOOL,
	                              .resource = resource,
	                              .action = action,
	                              .params = p,
	                              .now = 1767607200};
	struct gw_policy_decision d;
	assert_int_equal(gw_policy_decide(set, &r, &d), AAM_OK);
	return d.allow;
}

static void
test_credential_conflict_denies(void **state)
{
	(void)state;
	gw_policy_set *set =
	        load(HDR "metadata: {name: a}\n"
	                 "spec:\n"
	                 "  identity: {workload: spiffe://prod/agent/x}\n"
	                 "  tools: [{resource: gh.repos, actions: [read], credential: "
	                 "gh-ro, limits: {rpm: 50}}]\n"
	                 "---\n" HDR "metadata: {name: b}\n"
	                 "spec:\n"
	                 "  identity: {workload: spiffe://prod/agent/*}\n"
	                 "  tools:\n"
	                 "    - {resource: gh.repos, actions: [read], credential: gh-admin}\n"
	                 "    - {resource: gh.issues, actions: [read], limits: {rpm: 7}}\n"
	                 "    - {resource: gh.*, actions: [read], limits: {rpm: 9}}\n");
	struct gw_policy_request r = {.workload = "spiffe://prod/agent/x",
	                              .kind = GW_POLICY_TOOL,
	                              .resource = "gh.repos",
	                              .action = "read"};
	struct gw_policy_decision d;
	assert_int_equal(gw_policy_decide(set, &r, &d), AAM_OK);
	assert_false(d.allow);
	assert_null(d.credential);
	assert_int_equal(d.nreasons, 2);
	assert_int_equal(d.reasons[0].code, GW_POLICY_CREDENTIAL_CONFLICT);
	assert_int_equal(d.reasons[1].code, GW_POLICY_CREDENTIAL_CONFLICT);
	assert_string_equal(d.reasons[0].value, "gh-ro");
	assert_string_equal(d.reasons[1].value, "gh-admin");
	assert_string_equal(d.reasons[1].field, "spec.tools[0].credential");

	/* Another workload only matches policy b: no conflict. */
	r.workload = "spiffe://prod/agent/y";
	assert_int_equal(gw_policy_decide(set, &r, &d), AAM_OK);
	assert_true(d.allow);
	assert_string_equal(d.credential, "gh-admin");
	assert_int_equal(d.limits.rpm, 9);

	/* Two allowing rules, one without a credential: the strictest rpm wins. */
	r.resource = "gh.issues";
	assert_int_equal(gw_policy_decide(set, &r, &d), AAM_OK);
	assert_true(d.allow);
	assert_null(d.credential);
	assert_int_equal(d.limits.rpm, 7);
	assert_int_equal(d.nreasons, 2);
	gw_policy_set_unref(set);
}

static void
test_strictest_limits_across_policies(void **state)
{
	(void)state;
	gw_policy_set *set =
	        load(HDR "metadata: {name: broad}\n"
	                 "spec:\n"
	                 "  identity: {team: data}\n"
	                 "  models: {allow: ['*'], limits: {rpm: 100, tpm: 1000},\n"
	                 "           budget: {daily_usd: 50, monthly_usd: 900}}\n"
	                 "---\n" HDR "metadata: {name: narrow}\n"
	                 "spec:\n"
	                 "  identity: {workload: spiffe://prod/agent/etl}\n"
	                 "  models: {allow: [embeddings], limits: {rpm: 10, max_parallel: 2},\n"
	                 "           budget: {daily_usd: 75}}\n");
	struct gw_policy_request r = {.workload = "spiffe://prod/agent/etl",
	                              .team = "data",
	                              .kind = GW_POLICY_MODEL,
	                              .model = "embeddings"};
	struct gw_policy_decision d;
	assert_int_equal(gw_policy_decide(set, &r, &d), AAM_OK);
	assert_true(d.allow);
	assert_int_equal(d.nreasons, 2);
	assert_int_equal(d.limits.rpm, 10);
	assert_int_equal(d.limits.tpm, 1000);
	assert_int_equal(d.limits.max_parallel, 2);
	assert_int_equal(d.limits.max_tokens, 0);
	assert_true(d.limits.daily_usd == 50);
	assert_true(d.limits.monthly_usd == 900);
	/* A selector-only policy applies to any workload with the attribute. */
	r.workload = "spiffe://other.example/anything/at/all";
	r.model = "whatever";
	assert_int_equal(gw_policy_decide(set, &r, &d), AAM_OK);
	assert_true(d.allow);
	r.team = NULL;
	assert_int_equal(gw_policy_decide(set, &r, &d), AAM_OK);
	assert_false(d.allow);
	gw_policy_set_unref(set);
}

static void
test_reasons_are_capped_and_counted(void **state)
{
	(void)state;
	char text[16384];
	size_t len = 0;
	for (int i = 0; i < 20; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len,
		                        "%s" HDR "metadata: {name: p%02d}\n"
		                        "spec:\n"
		                        "  identity: {workload: spiffe://prod/agent/x}\n"
		                        "  models: {deny: [risky]}\n",
		                        i ? "---\n" : "", i);
	gw_policy_set *set = load(text);
	struct gw_policy_request r = {
	        .workload = "spiffe://prod/agent/x", .kind = GW_POLICY_MODEL, .model = "risky"};
	struct gw_policy_decision d;
	assert_int_equal(gw_policy_decide(set, &r, &d), AAM_OK);
	assert_false(d.allow);
	assert_int_equal(d.nreasons, GW_POLICY_MAX_REASONS);
	assert_int_equal(d.truncated, 20 - GW_POLICY_MAX_REASONS);
	gw_policy_set_unref(set);
}

static void
test_same_policy_through_two_selectors_counts_once(void **state)
{
	(void)state;
	gw_policy_set *set =
	        load(HDR "metadata: {name: twice}\n"
	                 "spec:\n"
	                 "  identity:\n"
	                 "    workload: [spiffe://prod/agent/x, spiffe://prod/agent/*,\n"
	                 "               spiffe://prod/**, spiffe://prod/*]\n"
	                 "  models: {allow: [m]}\n");
	struct gw_policy_request r = {
	        .workload = "spiffe://prod/agent/x", .kind = GW_POLICY_MODEL, .model = "m"};
	struct gw_policy_decision d;
	assert_int_equal(gw_policy_decide(set, &r, &d), AAM_OK);
	assert_true(d.allow);
	assert_int_equal(d.nreasons, 1);
	/* The one-segment pattern at the trust domain. */
	r.workload = "spiffe://prod/solo";
	assert_int_equal(gw_policy_decide(set, &r, &d), AAM_OK);
	assert_true(d.allow);
	/* An ID without a path matches no pattern. */
	r.workload = "spiffe://prod";
	assert_int_equal(gw_policy_decide(set, &r, &d), AAM_OK);
	assert_false(d.allow);
	gw_policy_set_unref(set);
}

static void
test_audit_facets_and_plain_parameters(void **state)
{
	(void)state;
	gw_policy_set *set =
	        load(HDR "metadata: {name: audited}\n"
	                 "spec:\n"
	                 "  identity: {workload: spiffe://prod/agent/x}\n"
	                 "  tools: [{resource: t.r, actions: [a]}]\n"
	                 "  audit: {record: [identity, parameters, cost], plain: [id]}\n"
	                 "---\n" HDR "metadata: {name: other}\n"
	                 "spec:\n"
	                 "  identity: {workload: spiffe://prod/agent/*}\n"
	                 "  tools: [{resource: t.s, actions: [a]}]\n");
	struct gw_policy_request r = {.workload = "spiffe://prod/agent/x",
	                              .kind = GW_POLICY_TOOL,
	                              .resource = "t.r",
	                              .action = "a"};
	struct gw_policy_decision d;
	assert_int_equal(gw_policy_decide(set, &r, &d), AAM_OK);
	assert_true(d.allow);
	/* Facets of every identity-matching policy are united. */
	assert_int_equal(d.audit, GW_AUDIT_DEFAULT | GW_AUDIT_PARAMETERS | GW_AUDIT_COST);
	assert_true(gw_policy_param_is_plain(set, &d, "id"));
	assert_false(gw_policy_param_is_plain(set, &d, "body"));
	r.resource = "t.s";
	assert_int_equal(gw_policy_decide(set, &r, &d), AAM_OK);
	assert_true(d.allow);
	assert_false(gw_policy_param_is_plain(set, &d, "id"));
	/* No policy for the workload: the default facets. */
	r.workload = "spiffe://elsewhere/x";
	assert_int_equal(gw_policy_decide(set, &r, &d), AAM_OK);
	assert_int_equal(d.audit, GW_AUDIT_DEFAULT);
	assert_false(gw_policy_param_is_plain(set, &d, "id"));
	gw_policy_set_unref(set);
}

static void
test_condition_operators_on_hostile_types(void **state)
{
	(void)state;
	gw_policy_set *set = load(HDR "metadata: {name: ops}\n"
	                              "spec:\n"
	                              "  identity: {workload: spiffe://prod/agent/x}\n"
	                              "  tools:\n"
	                              "    - resource: eq.int\n"
	                              "      actions: [a]\n"
	                              "      when: {n: {equals: 5}}\n"
	                              "    - resource: eq.bool\n"
	                              "      actions: [a]\n"
	                              "      when: {b: {equals: true}}\n"
	                              "    - resource: in.mixed\n"
	                              "      actions: [a]\n"
	                              "      when: {v: {in: [1, \"1\", false]}}\n"
	                              "    - resource: range\n"
	                              "      actions: [a]\n"
	                              "      when: {n: {min: -10, max: 9007199254740993}}\n"
	                              "    - resource: len\n"
	                              "      actions: [a]\n"
	                              "      when: {s: {max_length: 3}}\n"
	                              "    - resource: nested\n"
	                              "      actions: [a]\n"
	                              "      when: {a.b.c: {equals: x}}\n"
	                              "    - resource: notin\n"
	                              "      actions: [a]\n"
	                              "      when: {c: {not_in: [KP]}}\n"
	                              "    - resource: real\n"
	                              "      actions: [a]\n"
	                              "      when: {x: {max: 0.5}}\n");
	const char *w = "spiffe://prod/agent/x";
	struct {
		const char *res, *params;
		bool allow;
	} cases[] = {
	        {"eq.int", "{\"n\": 5}", true},
	        {"eq.int", "{\"n\": 5.0}", true},
	        {"eq.int", "{\"n\": \"5\"}", false},
	        {"eq.int", "{\"n\": 6}", false},
	        {"eq.int", "{}", false},
	        {"eq.int", "{\"n\": null}", false},
	        {"eq.bool", "{\"b\": true}", true},
	        {"eq.bool", "{\"b\": 1}", false},
	        {"eq.bool", "{\"b\": \"true\"}", false},
	        {"in.mixed", "{\"v\": 1}", true},
	        {"in.mixed", "{\"v\": \"1\"}", true},
	        {"in.mixed", "{\"v\": false}", true},
	        {"in.mixed", "{\"v\": true}", false},
	        {"in.mixed", "{\"v\": [1]}", false},
	        {"range", "{\"n\": -10}", true},
	        {"range", "{\"n\": -10.5}", false},
	        {"range", "{\"n\": 9007199254740993}", true},
	        {"range", "{\"n\": 9007199254740994}", false},
	        {"range", "{\"n\": \"3\"}", false},
	        {"range", "{\"n\": [3]}", false},
	        {"len", "{\"s\": \"abc\"}", true},
	        {"len", "{\"s\": \"\xc3\xa9\xc3\xa9\xc3\xa9\"}", true}, /* three characters */
	        {"len", "{\"s\": \"abcd\"}", false},
	        {"len", "{\"s\": [1, 2, 3]}", true},
	        {"len", "{\"s\": [1, 2, 3, 4]}", false},
	        {"len", "{\"s\": 12}", false},
	        {"nested", "{\"a\": {\"b\": {\"c\": \"x\"}}}", true},
	        {"nested", "{\"a\": {\"b\": \"c\"}}", false},
	        {"nested", "{\"a.b.c\": \"x\"}", false},
	        {"notin", "{\"c\": \"DE\"}", true},
	        {"notin", "{\"c\": \"KP\"}", false},
	        {"notin", "{}", false},
	        {"notin", "{\"c\": {\"x\": 1}}", false},
	        {"real", "{\"x\": 0.5}", true},
	        {"real", "{\"x\": 0}", true},
	        {"real", "{\"x\": 0.50001}", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *p = params(cases[i].params);
		bool got = tool_allowed(set, w, cases[i].res, "a", p);
		if (got != cases[i].allow)
			print_error("case %zu (%s %s): got %d\n", i, cases[i].res, cases[i].params,
			            got);
		assert_int_equal(got, cases[i].allow);
		json_decref(p);
	}
	/* No parameters at all. */
	assert_false(tool_allowed(set, w, "eq.int", "a", NULL));
	/* Parameters that are not an object are a malformed request. */
	json_t *arr = params("[1]");
	struct gw_policy_request r = {.workload = w,
	                              .kind = GW_POLICY_TOOL,
	                              .resource = "len",
	                              .action = "a",
	                              .params = arr};
	struct gw_policy_decision d;
	assert_int_equal(gw_policy_decide(set, &r, &d), AAM_E_INVAL);
	assert_false(d.allow);
	json_decref(arr);
	gw_policy_set_unref(set);
}

static int64_t
at(const char *iso)
{
	int64_t t;
	assert_int_equal(gw_policy_parse_time(iso, &t), AAM_OK);
	return t;
}

static void
test_time_windows(void **state)
{
	(void)state;
	gw_policy_set *set = load(HDR "metadata: {name: night}\n"
	                              "spec:\n"
	                              "  identity: {workload: spiffe://prod/agent/x}\n"
	                              "  models: {allow: [m]}\n"
	                              "  conditions:\n"
	                              "    time:\n"
	                              "      - {days: fri-mon, hours: \"22:00-06:00\"}\n"
	                              "      - {days: [wed], hours: \"18:00-24:00\"}\n");
	struct gw_policy_request r = {
	        .workload = "spiffe://prod/agent/x", .kind = GW_POLICY_MODEL, .model = "m"};
	struct {
		const char *when;
		bool allow;
	} cases[] = {
	        {"2026-03-06T23:00:00Z", true},  /* Friday night */
	        {"2026-03-07T03:00:00Z", true},  /* Saturday early */
	        {"2026-03-09T05:59:59Z", true},  /* Monday early */
	        {"2026-03-09T06:00:00Z", false}, /* end is exclusive */
	        {"2026-03-10T23:00:00Z", false}, /* Tuesday */
	        {"2026-03-11T18:00:00Z", true},  /* Wednesday evening */
	        {"2026-03-11T23:59:59Z", true},      {"2026-03-11T17:59:59Z", false},
	        {"2026-03-12T00:00:00Z", false}, /* Thursday */
	        {"2026-03-07T01:00:00+02:00", true}, {"2026-03-06T21:00:00-01:00", true},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		r.now = at(cases[i].when);
		struct gw_policy_decision d;
		assert_int_equal(gw_policy_decide(set, &r, &d), AAM_OK);
		if (d.allow != cases[i].allow)
			print_error("%s\n", cases[i].when);
		assert_int_equal(d.allow, cases[i].allow);
		if (!d.allow)
			assert_string_equal(d.reasons[0].field, "spec.conditions.time");
	}
	/* Before 1970: days still count correctly (1969-12-31 was a Wednesday). */
	r.now = -3600; /* 23:00 */
	struct gw_policy_decision d;
	assert_int_equal(gw_policy_decide(set, &r, &d), AAM_OK);
	assert_true(d.allow);
	gw_policy_set_unref(set);
}

static void
test_parse_time(void **state)
{
	(void)state;
	assert_int_equal(at("1970-01-01T00:00:00Z"), 0);
	assert_int_equal(at("2026-01-05T10:00:00Z"), 1767607200);
	assert_int_equal(at("2026-01-05t10:00:00z"), 1767607200);
	assert_int_equal(at("2026-01-05T10:00:00.123456Z"), 1767607200);
	assert_int_equal(at("2026-01-05T12:30:00+02:30"), 1767607200);
	assert_int_equal(at("2024-02-29T00:00:00Z"), 1709164800);
	int64_t t;
	const char *bad[] = {"2026-01-05",
	                     "2026-01-05T10:00:00",
	                     "2026-02-30T00:00:00Z",
	                     "2025-02-29T00:00:00Z",
	                     "2026-13-01T00:00:00Z",
	                     "2026-01-05T24:00:00Z",
	                     "2026-01-05T10:00:00+2",
	                     "2026-01-05T10:00:00.Z",
	                     "1969-12-31T00:00:00Z",
	                     "2026-01-05T10:00:00Zjunk",
	                     "",
	                     "tomorrow"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(gw_policy_parse_time(bad[i], &t), AAM_E_PARSE);
	assert_int_equal(gw_policy_parse_time(NULL, &t), AAM_E_INVAL);
}

static void
test_request_from_json(void **state)
{
	(void)state;
	struct gw_policy_request r;
	char why[256];
	json_t *j = params("{\"identity\": {\"workload\": \"spiffe://a/b\", \"team\": \"t\", "
	                   "\"attested\": true}, \"model\": \"m\", \"region\": \"eu\", "
	                   "\"max_tokens\": 10, \"time\": \"2026-01-05T10:00:00Z\", "
	                   "\"environment\": \"prod\"}");
	assert_int_equal(gw_policy_request_from_json(j, 5, &r, why, sizeof(why)), AAM_OK);
	assert_int_equal(r.kind, GW_POLICY_MODEL);
	assert_string_equal(r.workload, "spiffe://a/b");
	assert_string_equal(r.team, "t");
	assert_true(r.attested);
	assert_string_equal(r.model, "m");
	assert_string_equal(r.region, "eu");
	assert_int_equal(r.max_tokens, 10);
	assert_int_equal(r.now, 1767607200);
	assert_string_equal(r.runtime_environment, "prod");
	json_decref(j);

	j = params("{\"identity\": {\"workload\": \"spiffe://a/b\"}, \"tool\": {\"resource\": "
	           "\"r\", \"action\": \"a\", \"params\": {\"k\": 1}}, \"time\": 42}");
	assert_int_equal(gw_policy_request_from_json(j, 5, &r, why, sizeof(why)), AAM_OK);
	assert_int_equal(r.kind, GW_POLICY_TOOL);
	assert_false(r.attested);
	assert_int_equal(r.now, 42);
	assert_non_null(json_object_get(r.params, "k"));
	json_decref(j);

	struct {
		const char *json, *why;
	} bad[] = {
	        {"[]", "request: expected a JSON object"},
	        {"{\"identity\": {\"workload\": \"spiffe://a/b\"}, \"modle\": \"m\"}",
	         "request: unknown key 'modle'"},
	        {"{\"identity\": {\"workload\": \"spiffe://a/b\"}}",
	         "request: needs exactly one of model and tool"},
	        {"{\"identity\": {\"workload\": \"spiffe://a/b\"}, \"model\": \"m\", \"tool\": {}}",
	         "request: needs exactly one of model and tool"},
	        {"{\"model\": \"m\"}", "request.identity: expected an object with a workload"},
	        {"{\"identity\": {\"team\": \"t\"}, \"model\": \"m\"}",
	         "request.identity.workload: required"},
	        {"{\"identity\": {\"workload\": 7}, \"model\": \"m\"}",
	         "request.identity.workload: expected a string"},
	        {"{\"identity\": {\"workload\": \"w\", \"attested\": \"yes\"}, \"model\": \"m\"}",
	         "request.identity.attested: expected true or false"},
	        {"{\"identity\": {\"workload\": \"w\", \"virtual\": true}, \"model\": \"m\"}",
	         "request.identity: unknown key 'virtual'"},
	        {"{\"identity\": {\"workload\": \"w\"}, \"tool\": {\"resource\": \"r\"}}",
	         "request.tool: needs resource and action"},
	        {"{\"identity\": {\"workload\": \"w\"}, \"tool\": {\"resource\": \"r\", "
	         "\"action\": "
	         "\"a\", \"params\": [1]}}",
	         "request.tool.params: expected an object"},
	        {"{\"identity\": {\"workload\": \"w\"}, \"tool\": {\"resource\": \"r\", "
	         "\"action\": "
	         "\"a\"}, \"region\": \"eu\"}",
	         "request: region and max_tokens belong to model calls"},
	        {"{\"identity\": {\"workload\": \"w\"}, \"model\": \"m\", \"time\": \"soon\"}",
	         "request.time: expected an RFC 3339 time such as 2026-01-05T10:00:00Z or Unix "
	         "seconds"},
	        {"{\"identity\": {\"workload\": \"w\"}, \"model\": \"m\", \"max_tokens\": -1}",
	         "request.max_tokens: expected a non-negative integer"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		j = params(bad[i].json);
		assert_int_equal(gw_policy_request_from_json(j, 0, &r, why, sizeof(why)),
		                 AAM_E_INVAL);
		assert_string_equal(why, bad[i].why);
		json_decref(j);
	}
}

static void
test_reason_format(void **state)
{
	(void)state;
	struct gw_policy_reason r = {.code = GW_POLICY_EXPLICIT_DENY,
	                             .policy = "p",
	                             .rule = "tools[0]",
	                             .field = "spec.tools[0].deny",
	                             .value = "export",
	                             .message = "the action is explicitly denied",
	                             .file = "f.yaml",
	                             .line = 14,
	                             .col = 14};
	char out[256];
	assert_int_equal(gw_policy_reason_format(&r, out, sizeof(out)), AAM_OK);
	assert_string_equal(out, "explicit_deny policy=p rule=tools[0] field=spec.tools[0].deny "
	                         "value=export at=f.yaml:14:14: the action is explicitly denied");
	char small[20];
	assert_int_equal(gw_policy_reason_format(&r, small, sizeof(small)), AAM_E_TOOBIG);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	struct gw_policy_reason nm = {.code = GW_POLICY_NO_MATCH, .message = "no policy"};
	assert_int_equal(gw_policy_reason_format(&nm, out, sizeof(out)), AAM_OK);
	assert_string_equal(out, "no_match: no policy");
	assert_string_equal(gw_policy_code_name(GW_POLICY_NOT_ATTESTED), "not_attested");
	assert_string_equal(gw_policy_code_name((enum gw_policy_code)99), "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_credential_conflict_denies),
	        cmocka_unit_test(test_strictest_limits_across_policies),
	        cmocka_unit_test(test_reasons_are_capped_and_counted),
	        cmocka_unit_test(test_same_policy_through_two_selectors_counts_once),
	        cmocka_unit_test(test_audit_facets_and_plain_parameters),
	        cmocka_unit_test(test_condition_operators_on_hostile_types),
	        cmocka_unit_test(test_time_windows),
	        cmocka_unit_test(test_parse_time),
	        cmocka_unit_test(test_request_from_json),
	        cmocka_unit_test(test_reason_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
