/*
 * aam-gateway's parts without a server: virtual keys in SQLite (hash
 * compatible with LiteLLM's, hostile fields refused, revoke by hash or
 * alias, expiry, route lists), the Prometheus exposition (escaping, the
 * series bound) and the error bodies each SDK expects.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aam/err.h"
#include "common/db.h"
#include "common/json.h"
#include "gateway/gw.h"
#include "gateway/metrics.h"
#include "gateway/vkeys.h"
#include "tests/lib/testutil.h"

#define C(s) ((char *)(uintptr_t)(s))

static struct aam_db *
open_db(char **dir)
{
	*dir = aam_test_mkdtemp("aam-gw-parts");
	char path[1024];
	snprintf(path, sizeof(path), "%s/gateway.db", *dir);
	struct aam_db *db = NULL;
	assert_int_equal(aam_db_open(path, AAM_DB_CREATE, &db), AAM_OK);
	assert_int_equal(gw_vkeys_migrate(db), AAM_OK);
	assert_int_equal(gw_vkeys_migrate(db), AAM_OK); /* idempotent */
	return db;
}

static void
close_db(struct aam_db *db, char *dir)
{
	aam_db_close(db);
	aam_test_rmtree(dir);
	free(dir);
}

static void
test_hash_is_litellms(void **state)
{
	(void)state;
	/* sha256("sk-1234"), as LiteLLM stores a key's token. */
	char h[GW_VKEY_HASH_LEN + 1];
	gw_vkey_hash("sk-1234", 7, h);
	assert_string_equal(h, "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b");
	char k[GW_VKEY_NEW_LEN + 1], k2[GW_VKEY_NEW_LEN + 1];
	assert_int_equal(gw_vkey_generate(k), AAM_OK);
	assert_int_equal(gw_vkey_generate(k2), AAM_OK);
	assert_int_equal(strlen(k), GW_VKEY_NEW_LEN);
	assert_true(strncmp(k, "sk-aam-", 7) == 0);
	assert_string_not_equal(k, k2);
}

static void
test_insert_lookup_revoke(void **state)
{
	(void)state;
	char *dir;
	struct aam_db *db = open_db(&dir);
	char key[GW_VKEY_NEW_LEN + 1];
	gw_vkey_generate(key);
	struct gw_vkey k = {.workload = C("spiffe://prod/agent/a"),
	                    .owner = C("alice"),
	                    .team = C("data"),
	                    .alias = C("app-1"),
	                    .models = C("[\"fast\",\"slow\"]"),
	                    .max_budget = 12.5,
	                    .rpm = 60};
	gw_vkey_hash(key, strlen(key), k.hash);
	assert_int_equal(gw_vkey_insert(db, &k), AAM_OK);
	assert_int_equal(gw_vkey_insert(db, &k), AAM_E_EXISTS);
	/* Another key with the same alias. */
	struct gw_vkey k2 = k;
	gw_vkey_hash("other", 5, k2.hash);
	assert_int_equal(gw_vkey_insert(db, &k2), AAM_E_EXISTS);

	struct gw_vkey out;
	assert_int_equal(gw_vkey_lookup(db, key, &out), AAM_OK);
	assert_string_equal(out.workload, "spiffe://prod/agent/a");
	assert_string_equal(out.owner, "alice");
	assert_string_equal(out.source, "aam");
	assert_true(out.max_budget == 12.5);
	assert_int_equal(out.rpm, 60);
	assert_true(gw_vkey_usable(&out, (int64_t)time(NULL)));
	assert_true(gw_vkey_allows_model(&out, "fast"));
	assert_false(gw_vkey_allows_model(&out, "fastest"));
	gw_vkey_uninit(&out);
	assert_int_equal(gw_vkey_lookup(db, "sk-aam-unknown", &out), AAM_E_NOTFOUND);
	assert_int_equal(gw_vkey_lookup(db, "", &out), AAM_E_NOTFOUND);

	assert_int_equal(gw_vkey_revoke(db, "app-1"), AAM_OK);
	assert_int_equal(gw_vkey_lookup(db, key, &out), AAM_OK);
	assert_true(out.revoked);
	assert_false(gw_vkey_usable(&out, (int64_t)time(NULL)));
	gw_vkey_uninit(&out);
	assert_int_equal(gw_vkey_revoke(db, k.hash), AAM_OK);
	assert_int_equal(gw_vkey_revoke(db, "nope"), AAM_E_NOTFOUND);
	close_db(db, dir);
}

static void
test_hostile_fields(void **state)
{
	(void)state;
	char *dir;
	struct aam_db *db = open_db(&dir);
	struct gw_vkey base = {
	        .workload = C("spiffe://prod/agent/a"), .owner = C("o"), .max_budget = -1};
	gw_vkey_hash("x", 1, base.hash);
	struct gw_vkey k;
	k = base;
	k.workload = C("spiffe://Prod/agent/../a");
	assert_int_equal(gw_vkey_insert(db, &k), AAM_E_INVAL);
	k = base;
	k.owner = C("a\nb");
	assert_int_equal(gw_vkey_insert(db, &k), AAM_E_INVAL);
	k = base;
	k.models = C("{\"a\":1}");
	assert_int_equal(gw_vkey_insert(db, &k), AAM_E_INVAL);
	k = base;
	k.models = C("[\"\"]");
	assert_int_equal(gw_vkey_insert(db, &k), AAM_E_INVAL);
	k = base;
	memcpy(k.hash, "ABCDEF", 6); /* uppercase hex is not the canonical form */
	assert_int_equal(gw_vkey_insert(db, &k), AAM_E_INVAL);
	k = base;
	k.alias = C(base.hash); /* an alias that looks like a hash */
	assert_int_equal(gw_vkey_insert(db, &k), AAM_E_INVAL);
	k = base;
	k.rpm = -1;
	assert_int_equal(gw_vkey_insert(db, &k), AAM_E_INVAL);
	/* An expired key is returned, and not usable. */
	k = base;
	k.expires = (int64_t)time(NULL) - 1;
	k.models = C("[\"all-proxy-models\"]");
	assert_int_equal(gw_vkey_insert(db, &k), AAM_OK);
	struct gw_vkey out;
	assert_int_equal(gw_vkey_lookup(db, "x", &out), AAM_OK);
	assert_false(gw_vkey_usable(&out, (int64_t)time(NULL)));
	assert_true(gw_vkey_allows_model(&out, "anything"));
	gw_vkey_uninit(&out);
	close_db(db, dir);
}

static int
count_keys(void *ctx, const struct gw_vkey *k)
{
	(void)k;
	(*(int *)ctx)++;
	return AAM_OK;
}

static void
test_list(void **state)
{
	(void)state;
	char *dir;
	struct aam_db *db = open_db(&dir);
	for (int i = 0; i < 5; i++) {
		char key[8];
		snprintf(key, sizeof(key), "k%d", i);
		struct gw_vkey k = {
		        .workload = C("spiffe://prod/a"), .owner = C("o"), .max_budget = -1};
		gw_vkey_hash(key, strlen(key), k.hash);
		assert_int_equal(gw_vkey_insert(db, &k), AAM_OK);
	}
	int n = 0;
	assert_int_equal(gw_vkey_list(db, count_keys, &n), AAM_OK);
	assert_int_equal(n, 5);
	close_db(db, dir);
}

static void
test_metrics(void **state)
{
	(void)state;
	struct gw_metrics *m = NULL;
	assert_int_equal(gw_metrics_new(&m), AAM_OK);
	gw_metrics_request(m, "/v1/chat/completions", "fast", "allow", 200);
	gw_metrics_request(m, "/v1/chat/completions", "fast", "allow", 200);
	gw_metrics_request(m, "/v1/chat/completions", "we\"ird\\\n", "deny", 403);
	gw_metrics_upstream(m, "fast", 120000, 0.25, 100, 20);
	gw_metrics_budget_rejection(m, "fast");
	/* Far more label sets than the table holds: folded into "other", bounded. */
	for (int i = 0; i < 10000; i++) {
		char code[32];
		snprintf(code, sizeof(code), "c%d", i);
		gw_metrics_authn_failure(m, code);
	}
	struct aam_buf b;
	aam_buf_init(&b, 16u << 20);
	struct gw_metrics_extra x = {.token_cache_hits = 3, .token_cache_misses = 1};
	assert_int_equal(gw_metrics_render(m, &x, &b), AAM_OK);
	const char *s = aam_buf_cstr(&b);
	assert_non_null(strstr(s, "aam_gateway_requests_total{endpoint=\"/v1/chat/completions\","
	                          "model=\"fast\",decision=\"allow\",status=\"200\"} 2\n"));
	assert_non_null(strstr(s, "model=\"we\\\"ird\\\\\\n\""));
	assert_non_null(strstr(s, "aam_gateway_upstream_latency_seconds_bucket{model=\"fast\","
	                          "le=\"0.25\"} 1\n"));
	assert_non_null(strstr(s, "aam_gateway_upstream_latency_seconds_bucket{model=\"fast\","
	                          "le=\"0.1\"} 0\n"));
	assert_non_null(strstr(s, "aam_gateway_spend_usd_total{model=\"fast\"} 0.25\n"));
	assert_non_null(strstr(s, "aam_gateway_budget_rejections_total{model=\"fast\"} 1\n"));
	assert_non_null(strstr(s, "aam_gateway_authn_failures_total{code=\"other\"}"));
	assert_non_null(strstr(s, "aam_gateway_token_cache_hit_ratio 0.75\n"));
	assert_true(b.len < 2u << 20);
	aam_buf_uninit(&b);
	gw_metrics_free(m);
}

static json_t *
body_of(enum gw_err_style style, unsigned status)
{
	struct aam_http_response r;
	memset(&r, 0, sizeof(r));
	aam_buf_init(&r.body, 1 << 16);
	assert_int_equal(gw_respond_error(&r, style, status, "some_code", "A \"quoted\" message."),
	                 AAM_OK);
	assert_int_equal(r.status, status);
	json_t *j = NULL;
	assert_int_equal(aam_json_parse(r.body.data, r.body.len, NULL, &j, NULL), AAM_OK);
	aam_buf_uninit(&r.body);
	return j;
}

static const char *
path_str(json_t *j, const char *a, const char *b)
{
	json_t *o = json_object_get(j, a);
	return json_string_value(b != NULL ? json_object_get(o, b) : o);
}

static void
test_error_shapes(void **state)
{
	(void)state;
	json_t *j = body_of(GW_ERR_OPENAI, 429);
	assert_string_equal(path_str(j, "error", "type"), "rate_limit_error");
	assert_string_equal(path_str(j, "error", "code"), "some_code");
	assert_string_equal(path_str(j, "error", "message"), "A \"quoted\" message.");
	assert_true(json_is_null(json_object_get(json_object_get(j, "error"), "param")));
	json_decref(j);
	j = body_of(GW_ERR_ANTHROPIC, 413);
	assert_string_equal(path_str(j, "type", NULL), "error");
	assert_string_equal(path_str(j, "error", "type"), "request_too_large");
	json_decref(j);
	j = body_of(GW_ERR_ANTHROPIC, 503);
	assert_string_equal(path_str(j, "error", "type"), "api_error");
	json_decref(j);
	j = body_of(GW_ERR_JSONRPC, 403);
	assert_string_equal(path_str(j, "jsonrpc", NULL), "2.0");
	assert_true(json_is_null(json_object_get(j, "id")));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "error"), "code")),
	                 -32001);
	json_decref(j);
	j = body_of(GW_ERR_AAM, 404);
	assert_int_equal(json_object_size(j), 1);
	assert_string_equal(path_str(j, "error", "code"), "some_code");
	json_decref(j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_hash_is_litellms),
	        cmocka_unit_test(test_insert_lookup_revoke),
	        cmocka_unit_test(test_hostile_fields),
	        cmocka_unit_test(test_list),
	        cmocka_unit_test(test_metrics),
	        cmocka_unit_test(test_error_shapes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
