/*
 * The reference policy of DESIGN.md (policies/examples/
 * finance-analyst-readonly.yaml, byte-identical to the design) must load
 * and behave exactly as written.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "gateway/policy.h"
#include "tests/lib/testutil.h"

#define WORKLOAD "spiffe://prod/agent/finance-analyst"
#define NOW      1767607200 /* 2026-01-05T10:00:00Z, a Monday */

static gw_policy_set *g_set;

static int
setup(void **state)
{
	(void)state;
	char *path = aam_test_source_path("policies/examples/finance-analyst-readonly.yaml");
	if (path == NULL)
		return -1;
	struct gw_policy_diag diag;
	gw_policy_diag_init(&diag);
	const char *paths[] = {path};
	int rc = gw_policy_set_load(paths, 1, NULL, &g_set, &diag);
	for (size_t i = 0; i < diag.n; i++) {
		char line[512];
		gw_policy_diag_format(&diag, i, line, sizeof(line));
		print_error("%s\n", line);
	}
	gw_policy_diag_uninit(&diag);
	free(path);
	return rc == AAM_OK ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	gw_policy_set_unref(g_set);
	return 0;
}

static void
model(const char *workload, const char *route, struct gw_policy_decision *d)
{
	struct gw_policy_request r = {
	        .workload = workload, .kind = GW_POLICY_MODEL, .model = route, .now = NOW};
	assert_int_equal(gw_policy_decide(g_set, &r, d), AAM_OK);
	assert_string_equal(d->set_hash, gw_policy_set_hash_hex(g_set));
}

static void
tool(const char *workload, const char *action, struct gw_policy_decision *d)
{
	struct gw_policy_request r = {.workload = workload,
	                              .kind = GW_POLICY_TOOL,
	                              .resource = "salesforce.accounts",
	                              .action = action,
	                              .now = NOW};
	assert_int_equal(gw_policy_decide(g_set, &r, d), AAM_OK);
}

static void
test_loads_one_policy(void **state)
{
	(void)state;
	assert_int_equal(gw_policy_set_count(g_set), 1);
	assert_string_equal(gw_policy_set_name(g_set, 0), "finance-analyst-readonly");
	assert_int_equal(strlen(gw_policy_set_hash_hex(g_set)), 64);
}

static void
test_allowed_models(void **state)
{
	(void)state;
	struct gw_policy_decision d;
	const char *routes[] = {"reasoning-high", "summarization"};
	for (size_t i = 0; i < 2; i++) {
		model(WORKLOAD, routes[i], &d);
		assert_true(d.allow);
		assert_int_equal(d.nreasons, 1);
		assert_int_equal(d.reasons[0].code, GW_POLICY_ALLOWED);
		assert_string_equal(d.reasons[0].policy, "finance-analyst-readonly");
		assert_string_equal(d.reasons[0].rule, "models");
		assert_string_equal(d.reasons[0].field, "spec.models.allow");
		assert_string_equal(d.reasons[0].value, routes[i]);
		assert_int_equal(d.reasons[0].line, 9);
		/* The budget travels with the allow for the gateway to meter. */
		assert_true(d.limits.daily_usd == 75.0);
		assert_true(d.limits.monthly_usd < 0);
		assert_int_equal(d.limits.rpm, 0);
		assert_null(d.credential);
		assert_int_equal(d.audit, GW_AUDIT_IDENTITY | GW_AUDIT_POLICY | GW_AUDIT_ACTION |
		                                  GW_AUDIT_OUTCOME);
	}
}

static void
test_unlisted_model_denied(void **state)
{
	(void)state;
	struct gw_policy_decision d;
	model(WORKLOAD, "gpt-4o", &d);
	assert_false(d.allow);
	assert_int_equal(d.nreasons, 1);
	assert_int_equal(d.reasons[0].code, GW_POLICY_NO_MATCH);
	assert_non_null(strstr(d.reasons[0].message, "model route"));
}

static void
test_read_and_search_allowed(void **state)
{
	(void)state;
	struct gw_policy_decision d;
	const char *acts[] = {"read", "search"};
	for (size_t i = 0; i < 2; i++) {
		tool(WORKLOAD, acts[i], &d);
		assert_true(d.allow);
		assert_int_equal(d.reasons[0].code, GW_POLICY_ALLOWED);
		assert_string_equal(d.reasons[0].rule, "tools[0]");
		assert_string_equal(d.reasons[0].field, "spec.tools[0].actions");
		assert_string_equal(d.reasons[0].value, acts[i]);
		/* Tool calls carry no model budget. */
		assert_true(d.limits.daily_usd < 0);
	}
}

static void
test_export_update_delete_denied_by_the_deny(void **state)
{
	(void)state;
	struct gw_policy_decision d;
	const char *acts[] = {"export", "update", "delete"};
	for (size_t i = 0; i < 3; i++) {
		tool(WORKLOAD, acts[i], &d);
		assert_false(d.allow);
		assert_int_equal(d.nreasons, 1);
		assert_int_equal(d.reasons[0].code, GW_POLICY_EXPLICIT_DENY);
		assert_string_equal(d.reasons[0].policy, "finance-analyst-readonly");
		assert_string_equal(d.reasons[0].rule, "tools[0]");
		assert_string_equal(d.reasons[0].field, "spec.tools[0].deny");
		assert_string_equal(d.reasons[0].value, acts[i]);
		assert_int_equal(d.reasons[0].line, 14);
		char line[512];
		assert_int_equal(gw_policy_reason_format(&d.reasons[0], line, sizeof(line)),
		                 AAM_OK);
		assert_non_null(strstr(line, "explicit_deny policy=finance-analyst-readonly "
		                             "rule=tools[0] field=spec.tools[0].deny"));
	}
}

static void
test_unlisted_action_and_resource_denied(void **state)
{
	(void)state;
	struct gw_policy_decision d;
	tool(WORKLOAD, "create", &d);
	assert_false(d.allow);
	assert_int_equal(d.reasons[d.nreasons - 1].code, GW_POLICY_NO_MATCH);

	struct gw_policy_request r = {.workload = WORKLOAD,
	                              .kind = GW_POLICY_TOOL,
	                              .resource = "salesforce.opportunities",
	                              .action = "read",
	                              .now = NOW};
	assert_int_equal(gw_policy_decide(g_set, &r, &d), AAM_OK);
	assert_false(d.allow);
	assert_int_equal(d.reasons[0].code, GW_POLICY_NO_MATCH);
}

static void
test_other_workload_denied_for_lack_of_match(void **state)
{
	(void)state;
	struct gw_policy_decision d;
	const char *others[] = {"spiffe://prod/agent/marketing-writer",
	                        "spiffe://prod/agent/finance-analyst/child",
	                        "spiffe://staging/agent/finance-analyst", "spiffe://prod/agent"};
	for (size_t i = 0; i < 4; i++) {
		model(others[i], "reasoning-high", &d);
		assert_false(d.allow);
		assert_int_equal(d.nreasons, 1);
		assert_int_equal(d.reasons[0].code, GW_POLICY_NO_MATCH);
		assert_null(d.reasons[0].policy);
		assert_string_equal(d.reasons[0].message, "no policy applies to this workload");
		tool(others[i], "read", &d);
		assert_false(d.allow);
	}
}

static void
test_malformed_workload_is_invalid_request(void **state)
{
	(void)state;
	struct gw_policy_decision d;
	struct gw_policy_request r = {.workload = "spiffe://Prod/agent/finance-analyst",
	                              .kind = GW_POLICY_MODEL,
	                              .model = "reasoning-high",
	                              .now = NOW};
	assert_int_equal(gw_policy_decide(g_set, &r, &d), AAM_E_INVAL);
	assert_false(d.allow);
	assert_int_equal(d.reasons[0].code, GW_POLICY_INVALID_REQUEST);
	r.workload = NULL;
	assert_int_equal(gw_policy_decide(g_set, &r, &d), AAM_E_INVAL);
	assert_false(d.allow);
	r.workload = WORKLOAD;
	r.model = "";
	assert_int_equal(gw_policy_decide(g_set, &r, &d), AAM_E_INVAL);
	assert_false(d.allow);
	r.kind = 0;
	assert_int_equal(gw_policy_decide(g_set, &r, &d), AAM_E_INVAL);
	assert_false(d.allow);
	assert_int_equal(gw_policy_decide(NULL, &r, &d), AAM_E_INVAL);
	assert_false(d.allow);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_loads_one_policy),
	        cmocka_unit_test(test_allowed_models),
	        cmocka_unit_test(test_unlisted_model_denied),
	        cmocka_unit_test(test_read_and_search_allowed),
	        cmocka_unit_test(test_export_update_delete_denied_by_the_deny),
	        cmocka_unit_test(test_unlisted_action_and_resource_denied),
	        cmocka_unit_test(test_other_workload_denied_for_lack_of_match),
	        cmocka_unit_test(test_malformed_workload_is_invalid_request),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
