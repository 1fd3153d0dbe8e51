/*
 * Deciding never allocates.  This program is linked with
 * -Wl,--wrap=malloc,calloc,realloc,free (see gateway/CMakeLists.txt), so
 * every call the policy library and the test make to those functions goes
 * through the counters below; a decision that allocated would bump them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "gateway/policy.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);

static atomic_bool g_counting;
static atomic_ulong g_calls;

void *
__wrap_malloc(size_t n)
{
	if (atomic_load(&g_counting))
		atomic_fetch_add(&g_calls, 1);
	return __real_malloc(n);
}

void *
__wrap_calloc(size_t n, size_t m)
{
	if (atomic_load(&g_counting))
		atomic_fetch_add(&g_calls, 1);
	return __real_calloc(n, m);
}

void *
__wrap_realloc(void *p, size_t n)
{
	if (atomic_load(&g_counting))
		atomic_fetch_add(&g_calls, 1);
	return __real_realloc(p, n);
}

void
__wrap_free(void *p)
{
	if (atomic_load(&g_counting) && p != NULL)
		atomic_fetch_add(&g_calls, 1);
	__real_free(p);
}

static const char text[] =
        "apiVersion: access.envisionai.dev/v1\nkind: AgentPolicy\n"
        "metadata: {name: a}\n"
        "spec:\n"
        "  identity: {workload: [spiffe://prod/agent/x, spiffe://prod/agent/**], team: t}\n"
        "  models: {allow: [m], deny: [bad], limits: {max_tokens: 100},\n"
        "           route_limits: {m: {rpm: 5}}, regions: [eu]}\n"
        "  tools:\n"
        "    - resource: r.s\n"
        "      actions: [go]\n"
        "      when: {id: {regex: \"[A-Z]+-[0-9]{1,6}\"}, n: {max: 10}, c: {in: [x, y]},\n"
        "             s: {max_length: 8, prefix: ab}, q: {absent: true}}\n"
        "      credential: cred\n"
        "    - {resource: r.*, deny: [rm]}\n"
        "  conditions: {environment: prod, time: {days: mon-fri, hours: \"08:00-18:00\"},\n"
        "               not_after: 2030-01-01T00:00:00Z}\n"
        "---\n"
        "apiVersion: access.envisionai.dev/v1\nkind: AgentPolicy\n"
        "metadata: {name: b}\n"
        "spec:\n"
        "  identity: {team: t, require_attested: true}\n"
        "  tools: [{resource: '*', actions: ['*']}]\n";

static void
test_decide_does_not_allocate(void **state)
{
	(void)state;
	gw_policy_set *set = NULL;
	assert_int_equal(gw_policy_set_load_buffer("a.yaml", text, strlen(text), NULL, &set, NULL),
	                 AAM_OK);
	json_error_t je;
	json_t *good = json_loads("{\"id\": \"ABC-123\", \"n\": 3, \"c\": \"x\", \"s\": \"abcd\"}",
	                          0, &je);
	json_t *bad = json_loads("{\"id\": \"abc\", \"n\": 30}", 0, &je);
	assert_non_null(good);
	assert_non_null(bad);
	struct gw_policy_request reqs[] = {
	        {.workload = "spiffe://prod/agent/x",
	         .team = "t",
	         .attested = true,
	         .kind = GW_POLICY_MODEL,
	         .model = "m",
	         .region = "eu",
	         .max_tokens = 50,
	         .now = 1767607200,
	         .runtime_environment = "prod"},
	        {.workload = "spiffe://prod/agent/x/y",
	         .team = "t",
	         .attested = true,
	         .kind = GW_POLICY_MODEL,
	         .model = "bad",
	         .now = 1767607200},
	        {.workload = "spiffe://prod/agent/x",
	         .team = "t",
	         .attested = true,
	         .kind = GW_POLICY_TOOL,
	         .resource = "r.s",
	         .action = "go",
	         .params = good,
	         .now = 1767607200,
	         .runtime_environment = "prod"},
	        {.workload = "spiffe://prod/agent/x",
	         .team = "t",
	         .kind = GW_POLICY_TOOL,
	         .resource = "r.s",
	         .action = "go",
	         .params = bad,
	         .now = 1767607200},
	        {.workload = "spiffe://prod/agent/x",
	         .kind = GW_POLICY_TOOL,
	         .resource = "r.s",
	         .action = "rm",
	         .now = 1767607200},
	        {.workload = "spiffe://nowhere/x", .kind = GW_POLICY_MODEL, .model = "m"},
	        {.workload = "not a spiffe id", .kind = GW_POLICY_MODEL, .model = "m"},
	};
	struct gw_policy_decision d;
	/* Warm up anything lazily initialised outside the library. */
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++)
		gw_policy_decide(set, &reqs[i], &d);
	bool allowed[sizeof(reqs) / sizeof(reqs[0])];
	atomic_store(&g_calls, 0);
	atomic_store(&g_counting, true);
	for (int round = 0; round < 100; round++)
		for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
			gw_policy_decide(set, &reqs[i], &d);
			allowed[i] = d.allow;
		}
	atomic_store(&g_counting, false);
	assert_int_equal(atomic_load(&g_calls), 0);
	/* The requests cover allows, denies and errors. */
	assert_true(allowed[0]);
	assert_false(allowed[1]);
	assert_true(allowed[2]);
	assert_false(allowed[3]);
	assert_false(allowed[4]);
	assert_false(allowed[6]);

	/* The counter itself works: loading does allocate. */
	atomic_store(&g_counting, true);
	gw_policy_set *again = NULL;
	assert_int_equal(
	        gw_policy_set_load_buffer("a.yaml", text, strlen(text), NULL, &again, NULL),
	        AAM_OK);
	atomic_store(&g_counting, false);
	assert_true(atomic_load(&g_calls) > 0);
	gw_policy_set_unref(again);
	json_decref(good);
	json_decref(bad);
	gw_policy_set_unref(set);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_decide_does_not_allocate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
