/*
 * The routes file loader (gateway/routes_load.c): a full file with every
 * key, defaults, the deployment choice of each strategy over a loaded
 * table, and bad files, each error checked with its line:column.
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
#include "gateway/router_int.h"
#include "tests/lib/testutil.h"

static const char GOOD[] =
        "model_list:\n"
        "  - model_name: reasoning-high\n"
        "    max_output_tokens: 2048\n"
        "    deployments:\n"
        "      - provider: anthropic\n"
        "        model: claude-sonnet\n"
        "        api_base: https://api.anthropic.com/\n"
        "        credential: anthropic-key\n"
        "        region: us\n"
        "        rpm: 600\n"
        "        tpm: 1000000\n"
        "        weight: 2\n"
        "        timeout: 60s\n"
        "        max_context: 200000\n"
        "        cost: { input_per_mtok: 3.0, output_per_mtok: 15.0, cached_input_per_mtok: 0.3 "
        "}\n"
        "      - provider: azure\n"
        "        model: gpt-4o-deploy\n"
        "        api_base: https://x.openai.azure.com\n"
        "        api_version: \"2024-02-01\"\n"
        "        credential: azure-key\n"
        "  - model_name: long-context\n"
        "    deployments:\n"
        "      - { provider: openai, model: gpt-4.1, api_base: https://api.openai.com, "
        "credential: k }\n"
        "  - model_name: local\n"
        "    deployments:\n"
        "      - { provider: openai-compatible, model: llama, api_base: http://127.0.0.1:8000 }\n"
        "router_settings:\n"
        "  routing_strategy: latency-based\n"
        "  fallbacks: [ { reasoning-high: [local, long-context] } ]\n"
        "  context_window_fallbacks: [ { reasoning-high: [long-context] } ]\n"
        "  num_retries: 3\n"
        "  retry_after_max: 5m\n"
        "  retry_backoff: 250ms\n"
        "  allowed_fails: 2\n"
        "  cooldown_time: 45s\n"
        "  timeout: 90\n";

static void
test_good_file(void **state)
{
	(void)state;
	struct gw_routes *t = NULL;
	char err[512] = "";
	assert_int_equal(gw_routes_parse("routes.yaml", GOOD, strlen(GOOD), &t, err, sizeof(err)),
	                 AAM_OK);
	assert_int_equal(t->nroutes, 3);
	const struct gw_route *r = gw_routes_find(t, "reasoning-high");
	assert_non_null(r);
	assert_int_equal(r->ndeps, 2);
	assert_int_equal(r->max_output_tokens, 2048);
	const struct gw_deployment *d = &r->deps[0];
	assert_string_equal(d->id, "reasoning-high#0");
	assert_string_equal(d->provider, "anthropic");
	assert_string_equal(d->model, "claude-sonnet");
	assert_string_equal(d->api_base, "https://api.anthropic.com"); /* trailing slash gone */
	assert_string_equal(d->credential, "anthropic-key");
	assert_string_equal(d->region, "us");
	assert_int_equal(d->rpm, 600);
	assert_int_equal(d->tpm, 1000000);
	assert_true(d->weight == 2.0);
	assert_int_equal(d->timeout_ms, 60000);
	assert_int_equal(d->max_context, 200000);
	assert_true(d->cost_in == 3.0 && d->cost_out == 15.0 && d->cost_cached == 0.3);
	assert_string_equal(r->deps[1].api_version, "2024-02-01");
	assert_null(r->deps[1].region);
	assert_true(r->deps[1].weight == 1.0);
	assert_int_equal(r->deps[1].timeout_ms, 0); /* router_settings.timeout applies */
	assert_int_equal(r->nfallbacks, 2);
	assert_string_equal(r->fallbacks[0], "local");
	assert_string_equal(r->fallbacks[1], "long-context");
	assert_int_equal(r->ncw_fallbacks, 1);
	assert_string_equal(r->cw_fallbacks[0], "long-context");
	const struct gw_route *local = gw_routes_find(t, "local");
	assert_non_null(local);
	assert_null(local->deps[0].credential);
	assert_int_equal(local->max_output_tokens, GW_DEFAULT_MAX_OUTPUT_TOKENS);
	assert_null(gw_routes_find(t, "nope"));
	assert_int_equal(t->settings.strategy, GW_STRATEGY_LATENCY);
	assert_int_equal(t->settings.num_retries, 3);
	assert_int_equal(t->settings.retry_after_max_ms, 300000);
	assert_int_equal(t->settings.retry_backoff_ms, 250);
	assert_int_equal(t->settings.allowed_fails, 2);
	assert_int_equal(t->settings.cooldown_ms, 45000);
	assert_int_equal(t->settings.timeout_ms, 90000);
	gw_routes_unref(t);
}

static void
test_defaults_and_file(void **state)
{
	(void)state;
	char *dir = aam_test_mkdtemp("aam-routes");
	assert_non_null(dir);
	char path[512];
	snprintf(path, sizeof(path), "%s/routes.yaml", dir);
	const char *y =
	        "model_list:\n"
	        "  - model_name: a\n"
	        "    deployments:\n"
	        "      - {provider: openai, model: m, api_base: https://h, credential: c}\n";
	assert_int_equal(aam_test_write_file(path, y, strlen(y), 0600), 0);
	struct gw_routes *t = NULL;
	char err[512] = "";
	assert_int_equal(gw_routes_load(path, &t, err, sizeof(err)), AAM_OK);
	assert_int_equal(t->settings.strategy, GW_STRATEGY_SIMPLE_SHUFFLE);
	assert_int_equal(t->settings.num_retries, GW_DEFAULT_NUM_RETRIES);
	assert_int_equal(t->settings.retry_after_max_ms, GW_DEFAULT_RETRY_AFTER_MAX);
	assert_int_equal(t->settings.allowed_fails, GW_DEFAULT_ALLOWED_FAILS);
	assert_int_equal(t->settings.cooldown_ms, GW_DEFAULT_COOLDOWN);
	assert_int_equal(t->settings.timeout_ms, GW_DEFAULT_TIMEOUT);
	/* References: the table outlives one unref while another holder has it. */
	gw_routes_ref(t);
	gw_routes_unref(t);
	assert_string_equal(t->routes[0].name, "a");
	gw_routes_unref(t);
	/* A missing file names itself. */
	snprintf(path, sizeof(path), "%s/missing.yaml", dir);
	assert_int_equal(gw_routes_load(path, &t, err, sizeof(err)), AAM_E_CONFIG);
	assert_non_null(strstr(err, "missing.yaml"));
	aam_test_rmtree(dir);
	free(dir);
}

/* The example shipped in deploy/ stays loadable. */
static void
test_example_file(void **state)
{
	(void)state;
	char *path = aam_test_source_path("deploy/etc/aam/routes.yaml");
	assert_non_null(path);
	struct gw_routes *t = NULL;
	char err[512] = "";
	if (gw_routes_load(path, &t, err, sizeof(err)) != AAM_OK)
		fail_msg("%s", err);
	const struct gw_route *r = gw_routes_find(t, "reasoning-high");
	assert_non_null(r);
	assert_int_equal(r->nfallbacks, 2);
	assert_int_equal(r->ncw_fallbacks, 1);
	assert_int_equal(t->settings.strategy, GW_STRATEGY_LATENCY);
	gw_routes_unref(t);
	free(path);
}

static void
test_durations(void **state)
{
	(void)state;
	int64_t ms = 0;
	assert_int_equal(gw_parse_duration_ms("30s", &ms), AAM_OK);
	assert_int_equal(ms, 30000);
	assert_int_equal(gw_parse_duration_ms("5m", &ms), AAM_OK);
	assert_int_equal(ms, 300000);
	assert_int_equal(gw_parse_duration_ms("1h", &ms), AAM_OK);
	assert_int_equal(ms, 3600000);
	assert_int_equal(gw_parse_duration_ms("250ms", &ms), AAM_OK);
	assert_int_equal(ms, 250);
	assert_int_equal(gw_parse_duration_ms("2", &ms), AAM_OK);
	assert_int_equal(ms, 2000);
	assert_int_equal(gw_parse_duration_ms("1.5s", &ms), AAM_OK);
	assert_int_equal(ms, 1500);
	const char *bad[] = {"", "s", "-1s", "10x", "25h", "1e400", " 5s", "5 s", "nan", "inf"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_not_equal(gw_parse_duration_ms(bad[i], &ms), AAM_OK);
}

#define DEP "      - {provider: openai, model: m, api_base: https://h, credential: c}\n"

struct bad_case {
	const char *yaml;
	const char *expect; /* "line:col: message fragment" */
};

static const struct bad_case BAD[] = {
        {"model_list: []\nrouter_settings: {}\nextra: 1\n",
         "routes.yaml:3:1: routes file: unknown key 'extra'"},
        {"router_settings: {}\n", "routes.yaml:1:1: routes file: 'model_list' is required"},
        {"model_list: {a: 1}\n", "routes.yaml:1:13: model_list: expected a list"},
        {"model_list:\n  - model_name: a\n    deployment: []\n",
         "routes.yaml:3:5: model_list entry: unknown key 'deployment'"},
        {"model_list:\n  - deployments: []\n",
         "routes.yaml:2:5: model_list entry: 'model_name' is required"},
        {"model_list:\n  - model_name: a\n    deployments: []\n",
         "routes.yaml:3:18: deployments: expected a non-empty list"},
        {"model_list:\n  - model_name: a\n    deployments:\n      - {provider: openai, model: m, "
         "api_base: https://h, credential: c, colour: red}\n",
         "routes.yaml:4:74: deployment: unknown key 'colour'"},
        {"model_list:\n  - model_name: a\n    deployments:\n      - {provider: cohere, model: m, "
         "api_base: https://h, credential: c}\n",
         "routes.yaml:4:20: provider: 'cohere' is not one of"},
        {"model_list:\n  - model_name: a\n    deployments:\n      - {provider: openai, model: m, "
         "api_base: ftp://h, credential: c}\n",
         "routes.yaml:4:48: api_base: expected an http:// or https:// URL"},
        {"model_list:\n  - model_name: a\n    deployments:\n      - {provider: openai, model: m, "
         "api_base: https://h}\n",
         "routes.yaml:4:9: deployment: 'credential' is required for provider openai"},
        {"model_list:\n  - model_name: a\n    deployments:\n      - {provider: azure, model: m, "
         "api_base: https://h, credential: c}\n",
         "routes.yaml:4:9: deployment: azure needs 'api_version'"},
        {"model_list:\n  - model_name: a\n    deployments:\n      - {provider: openai, model: m, "
         "api_base: https://h, credential: c, rpm: many}\n",
         "routes.yaml:4:79: expected an integer"},
        {"model_list:\n  - model_name: a\n    deployments:\n      - {provider: openai, model: m, "
         "api_base: https://h, credential: c, rpm: \"5\"}\n",
         "routes.yaml:4:79: rpm: expected an integer"},
        {"model_list:\n  - model_name: a\n    deployments:\n      - {provider: openai, model: m, "
         "api_base: https://h, credential: c, weight: 0}\n",
         "routes.yaml:4:82: weight: must be greater than 0"},
        {"model_list:\n  - model_name: a\n    deployments:\n      - {provider: openai, model: m, "
         "api_base: https://h, credential: c, timeout: soon}\n",
         "routes.yaml:4:83: timeout: expected a duration"},
        {"model_list:\n  - model_name: a\n    deployments:\n      - {provider: openai, model: m, "
         "api_base: https://h, credential: c, cost: {input: 1}}\n",
         "routes.yaml:4:81: cost: unknown key 'input'"},
        {"model_list:\n  - model_name: a\n    deployments:\n      - {provider: openai, model: m, "
         "api_base: https://h, credential: c, cost: {input_per_mtok: -1}}\n",
         "routes.yaml:4:97: cost.input_per_mtok: must be a number between 0 and"},
        {"model_list:\n  - model_name: a\n    deployments:\n" DEP
         "  - model_name: a\n    deployments:\n" DEP,
         "routes.yaml:5:17: model_name: duplicate route 'a'"},
        {"model_list:\n  - model_name: a\n    deployments:\n" DEP
         "router_settings:\n  fallbacks: [ {a: [openai-fallback]} ]\n",
         "routes.yaml:6:21: fallbacks: fallback 'openai-fallback' of route 'a' is not defined in "
         "model_list"},
        {"model_list:\n  - model_name: a\n    deployments:\n" DEP
         "router_settings:\n  fallbacks: [ {b: [a]} ]\n",
         "routes.yaml:6:17: fallbacks: route 'b' is not defined in model_list"},
        {"model_list:\n  - model_name: a\n    deployments:\n" DEP
         "router_settings:\n  context_window_fallbacks: [ {a: [a]} ]\n",
         "routes.yaml:6:36: context_window_fallbacks: route 'a' falls back to itself"},
        {"model_list:\n  - model_name: a\n    deployments:\n" DEP
         "router_settings:\n  routing_strategy: fastest\n",
         "routes.yaml:6:21: routing_strategy: expected simple-shuffle"},
        {"model_list:\n  - model_name: a\n    deployments:\n" DEP
         "router_settings:\n  num_retries: 11\n",
         "routes.yaml:6:16: num_retries: must be between 0 and 10"},
        {"model_list:\n  - model_name: a\n    deployments:\n" DEP
         "router_settings:\n  cooldown: 5s\n",
         "routes.yaml:6:3: router_settings: unknown key 'cooldown'"},
        {"model_list:\n  - model_name: a\n    deployments:\n" DEP
         "router_settings:\n  fallbacks: {a: [a]}\n",
         "routes.yaml:6:14: fallbacks: expected a list"},
        {"model_list:\n  - model_name: a\n    deployments:\n" DEP "model_list: []\n",
         "routes.yaml:5:1: duplicate key 'model_list'"},
        {"model_list:\n  - model_name: a\n\tdeployments: []\n", "routes.yaml:"},
        {"- a\n- b\n", "routes.yaml:1:1: routes file: expected a mapping"},
        {"model_list: []\n---\nmodel_list: []\n", "expected exactly one YAML document"},
};

static void
test_bad_files(void **state)
{
	(void)state;
	int bad = 0;
	for (size_t i = 0; i < sizeof(BAD) / sizeof(BAD[0]); i++) {
		struct gw_routes *t = NULL;
		char err[512] = "";
		int rc = gw_routes_parse("routes.yaml", BAD[i].yaml, strlen(BAD[i].yaml), &t, err,
		                         sizeof(err));
		if (rc == AAM_OK || strstr(err, BAD[i].expect) == NULL) {
			print_error("case %zu: rc %d, got \"%s\", want \"%s\"\n", i, rc, err,
			            BAD[i].expect);
			bad++;
		}
		assert_null(t);
	}
	assert_int_equal(bad, 0);
}

/* Hostile input never crashes and never loads: truncations of the good file. */
static void
test_truncations(void **state)
{
	(void)state;
	size_t n = strlen(GOOD);
	for (size_t cut = 0; cut < n; cut += 7) {
		struct gw_routes *t = NULL;
		char err[512] = "";
		int rc = gw_routes_parse("routes.yaml", GOOD, cut, &t, err, sizeof(err));
		if (rc == AAM_OK)
			gw_routes_unref(t);
		else
			assert_non_null(strstr(err, "routes.yaml"));
	}
}

/* The strategies over a loaded table, with a fixed random sequence. */
static double
fixed_rng(void *ctx)
{
	double *v = ctx;
	return *v;
}

static const char STRAT[] =
        "model_list:\n"
        "  - model_name: r\n"
        "    deployments:\n"
        "      - {provider: openai, model: a, api_base: https://a, credential: c, region: eu,\n"
        "         weight: 1, cost: {input_per_mtok: 5, output_per_mtok: 10}, max_context: 1000}\n"
        "      - {provider: openai, model: b, api_base: https://b, credential: c, region: us,\n"
        "         weight: 3, rpm: 2, cost: {input_per_mtok: 1, output_per_mtok: 2}}\n"
        "router_settings:\n"
        "  routing_strategy: STRATEGY\n"
        "  allowed_fails: 2\n"
        "  cooldown_time: 10s\n";

static struct gw_routes *
strat_table(const char *strategy)
{
	char y[1024];
	const char *p = strstr(STRAT, "STRATEGY");
	snprintf(y, sizeof(y), "%.*s%s%s", (int)(p - STRAT), STRAT, strategy, p + 8);
	struct gw_routes *t = NULL;
	char err[512] = "";
	if (gw_routes_parse("s.yaml", y, strlen(y), &t, err, sizeof(err)) != AAM_OK)
		fail_msg("%s", err);
	return t;
}

static size_t
pick(struct gw_routes *t, double x, int64_t in, const char *const *regions, size_t nr, int64_t now,
     int expect_rc, int *why)
{
	size_t idx = 99;
	int w = -1;
	int rc = gw_pick(t, &t->routes[0], 0, regions, nr, in, fixed_rng, &x, now, &idx, &w);
	assert_int_equal(rc, expect_rc);
	if (why != NULL)
		*why = w;
	return idx;
}

static void
test_strategies(void **state)
{
	(void)state;
	int64_t now = 1000000;
	struct gw_routes *t = strat_table("simple-shuffle");
	const struct gw_route *r = &t->routes[0];
	/* Weighted: 1 vs 3, so draws below 0.25 pick a and above pick b. */
	assert_int_equal(pick(t, 0.10, 10, NULL, 0, now, AAM_OK, NULL), 0);
	assert_int_equal(pick(t, 0.30, 10, NULL, 0, now, AAM_OK, NULL), 1);
	assert_int_equal(pick(t, 0.99, 10, NULL, 0, now, AAM_OK, NULL), 1);
	/* Regions: only b is in us; a deployment with no region never matches. */
	const char *us[] = {"us"};
	assert_int_equal(pick(t, 0.0, 10, us, 1, now, AAM_OK, NULL), 1);
	const char *ap[] = {"ap"};
	int why = 0;
	pick(t, 0.0, 10, ap, 1, now, AAM_E_NOTFOUND, &why);
	assert_int_equal(why, GW_PICK_REGION);
	/* Context: a holds 1000 tokens, so a larger request goes to b. */
	assert_int_equal(pick(t, 0.0, 5000, NULL, 0, now, AAM_OK, NULL), 1);
	const char *eu[] = {"eu"};
	pick(t, 0.0, 5000, eu, 1, now, AAM_E_NOTFOUND, &why);
	assert_int_equal(why, GW_PICK_CONTEXT);
	/* rpm: b takes 2 requests a minute, then only a is eligible, until the next minute. */
	gw_state_begin(t, r, 1, now);
	gw_state_end(t, r, 1, true, 1000, 10, now);
	gw_state_begin(t, r, 1, now);
	gw_state_end(t, r, 1, true, 1000, 10, now);
	assert_int_equal(pick(t, 0.99, 10, NULL, 0, now, AAM_OK, NULL), 0);
	pick(t, 0.99, 10, us, 1, now, AAM_E_NOTFOUND, &why);
	assert_int_equal(why, GW_PICK_RATE);
	assert_int_equal(pick(t, 0.99, 10, NULL, 0, now + 60000, AAM_OK, NULL), 1);
	/* Cooldown: 2 failures within 10 s cool a down for 10 s. */
	gw_state_begin(t, r, 0, now);
	gw_state_end(t, r, 0, false, 0, 0, now);
	assert_int_equal(pick(t, 0.0, 10, NULL, 0, now + 60000, AAM_OK, NULL), 0);
	gw_state_begin(t, r, 0, now + 1);
	gw_state_end(t, r, 0, false, 0, 0, now + 1);
	assert_int_equal(pick(t, 0.0, 10, NULL, 0, now + 5000, AAM_OK, NULL), 1);
	pick(t, 0.0, 10, eu, 1, now + 5000, AAM_E_NOTFOUND, &why);
	assert_int_equal(why, GW_PICK_COOLDOWN);
	assert_int_equal(pick(t, 0.0, 10, NULL, 0, now + 10002, AAM_OK, NULL), 0);
	/* Failures further apart than the window do not add up. */
	gw_state_end(t, r, 0, false, 0, 0, now + 20000);
	gw_state_end(t, r, 0, false, 0, 0, now + 40000);
	assert_int_equal(pick(t, 0.0, 10, NULL, 0, now + 40001, AAM_OK, NULL), 0);
	gw_routes_unref(t);

	/* least-busy: the deployment with fewer calls in flight, whatever the draw. */
	t = strat_table("least-busy");
	r = &t->routes[0];
	gw_state_begin(t, r, 1, now);
	assert_int_equal(pick(t, 0.99, 10, NULL, 0, now, AAM_OK, NULL), 0);
	gw_state_begin(t, r, 0, now);
	gw_state_begin(t, r, 0, now);
	assert_int_equal(pick(t, 0.0, 10, NULL, 0, now, AAM_OK, NULL), 1);
	gw_routes_unref(t);

	/* latency-based: unmeasured first, then the lower EWMA. */
	t = strat_table("latency-based");
	r = &t->routes[0];
	gw_state_begin(t, r, 0, now);
	gw_state_end(t, r, 0, true, 50000, 0, now);
	assert_int_equal(pick(t, 0.0, 10, NULL, 0, now, AAM_OK, NULL), 1);
	gw_state_begin(t, r, 1, now);
	gw_state_end(t, r, 1, true, 90000, 0, now);
	assert_int_equal(pick(t, 0.99, 10, NULL, 0, now, AAM_OK, NULL), 0);
	/* a slows down: its EWMA passes b's. */
	for (int i = 0; i < 10; i++) {
		gw_state_begin(t, r, 0, now);
		gw_state_end(t, r, 0, true, 200000, 0, now);
	}
	assert_int_equal(pick(t, 0.0, 10, NULL, 0, now, AAM_OK, NULL), 1);
	gw_routes_unref(t);

	/* usage-based: fewer tokens this minute wins. */
	t = strat_table("usage-based");
	r = &t->routes[0];
	gw_state_begin(t, r, 0, now);
	gw_state_end(t, r, 0, true, 1, 500, now);
	assert_int_equal(pick(t, 0.0, 10, NULL, 0, now, AAM_OK, NULL), 1);
	gw_state_begin(t, r, 1, now);
	gw_state_end(t, r, 1, true, 1, 900, now);
	assert_int_equal(pick(t, 0.99, 10, NULL, 0, now, AAM_OK, NULL), 0);
	/* A new minute starts everyone at zero: the weighted draw decides again. */
	assert_int_equal(pick(t, 0.99, 10, NULL, 0, now + 60000, AAM_OK, NULL), 1);
	gw_routes_unref(t);

	/* cost-based: b is cheaper, whatever the draw; a when b is out of region. */
	t = strat_table("cost-based");
	assert_int_equal(pick(t, 0.0, 10, NULL, 0, now, AAM_OK, NULL), 1);
	assert_int_equal(pick(t, 0.0, 10, eu, 1, now, AAM_OK, NULL), 0);
	gw_routes_unref(t);
}

static void
test_rng_seed(void **state)
{
	(void)state;
	setenv("AAM_ROUTER_SEED", "42", 1);
	uint64_t a = gw_rng_seed(), b = gw_rng_seed();
	assert_true(a == b && a != 0);
	setenv("AAM_ROUTER_SEED", "43", 1);
	assert_true(gw_rng_seed() != a);
	unsetenv("AAM_ROUTER_SEED");
	uint64_t s = a;
	for (int i = 0; i < 1000; i++) {
		double x = gw_rng_unit(&s);
		assert_true(x >= 0 && x < 1);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_good_file),   cmocka_unit_test(test_defaults_and_file),
	        cmocka_unit_test(test_durations),   cmocka_unit_test(test_bad_files),
	        cmocka_unit_test(test_truncations), cmocka_unit_test(test_strategies),
	        cmocka_unit_test(test_rng_seed),    cmocka_unit_test(test_example_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
