/*
 * `aamctl import litellm` and `aamctl import litellm-keys` through the
 * built binary ($AAM_AAMCTL_BIN) against a real aam-vault on SoftHSM2
 * ($AAM_VAULT_BIN, tests/integration/vault_harness.h):
 *   - each fixture of tests/fixtures/litellm/ imports; the routes file it
 *     writes loads with the router's own loader (gw_routes_load) and says
 *     what the LiteLLM file said; the dangling fallback is reported and
 *     left out; unsupported settings are listed with their positions;
 *   - the provider keys named by os.environ/NAME (and a literal one) land
 *     in the vault with the right type and binding, and no key value ever
 *     appears in the routes file, stdout or stderr;
 *   - the key table, as JSON and as CSV, becomes virtual keys that
 *     authenticate with the original sk- strings (gw_vkey_lookup), and a
 *     re-import updates instead of duplicating.
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
#include <unistd.h>

#include "aam/err.h"
#include "common/db.h"
#include "gateway/router_int.h"
#include "tests/integration/vault_harness.h"
#include "tests/lib/testutil.h"

/* The key checks use the real gw_vkey_lookup (aam-gwvkeys). */
#include "gateway/vkeys.h"

static struct vh V;
static bool have_vault;

#define ANTHROPIC_VALUE "sk-ant-import-test-3f9a1c7e5b2d"
#define AZURE_E_VALUE   "azure-eastus-import-test-77aa01"
#define AZURE_S_VALUE   "azure-sweden-import-test-88bb02"
#define OPENAI_VALUE    "sk-openai-import-test-c0ffee99"
#define AWS_ID_VALUE    "AKIAIMPORTTEST0001"
#define AWS_SECRET      "aws-secret-import-test-wJalrXUtnFEMI"
#define VLLM_VALUE      "vllm-import-test-1234abcd"
#define LITERAL_VALUE   "sk-literal-proxy-key-0001"

static const char *const ALL_VALUES[] = {ANTHROPIC_VALUE, AZURE_E_VALUE, AZURE_S_VALUE,
                                         OPENAI_VALUE,    AWS_SECRET,    VLLM_VALUE,
                                         LITERAL_VALUE,   NULL};

static char *
fixture(const char *name)
{
	char rel[256];
	snprintf(rel, sizeof(rel), "tests/fixtures/litellm/%s", name);
	char *p = aam_test_source_path(rel);
	assert_non_null(p);
	return p;
}

static void
path_in(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", V.dir, name);
}

static void
assert_no_values(const char *text)
{
	for (size_t i = 0; text != NULL && ALL_VALUES[i] != NULL; i++)
		if (strstr(text, ALL_VALUES[i]) != NULL) {
			fprintf(stderr, "leaked a key value: %s\n", ALL_VALUES[i]);
			fail();
		}
}

static void
set_env(void)
{
	setenv("ANTHROPIC_API_KEY", ANTHROPIC_VALUE, 1);
	setenv("AZURE_EASTUS_KEY", AZURE_E_VALUE, 1);
	setenv("AZURE_SWEDEN_KEY", AZURE_S_VALUE, 1);
	setenv("OPENAI_API_KEY", OPENAI_VALUE, 1);
	setenv("AWS_ACCESS_KEY_ID", AWS_ID_VALUE, 1);
	setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET, 1);
	setenv("VLLM_API_KEY", VLLM_VALUE, 1);
}

/* aamctl secret show NAME: its output, malloc'd (NULL when unknown). */
static char *
secret_show(const char *name)
{
	char *out = NULL;
	if (vh_aamctl(&V, NULL, &out, NULL, "secret", "show", name, NULL) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

static int
import(const char *fx, const char *out_name, const char *extra, char **out, char **err)
{
	char *f = fixture(fx);
	char outp[1100];
	path_in(outp, sizeof(outp), out_name);
	int rc = extra != NULL ? vh_aamctl(&V, NULL, out, err, "import", "litellm", f, "--out",
	                                   outp, extra, NULL)
	                       : vh_aamctl(&V, NULL, out, err, "import", "litellm", f, "--out",
	                                   outp, NULL);
	free(f);
	if (rc != 0 && err != NULL && *err != NULL)
		fprintf(stderr, "aamctl import litellm %s: exit %d\n%s\n", fx, rc, *err);
	return rc;
}

static struct gw_routes *
load_routes(const char *out_name)
{
	char p[1100], err[512] = "";
	path_in(p, sizeof(p), out_name);
	struct gw_routes *t = NULL;
	int rc = gw_routes_load(p, &t, err, sizeof(err));
	if (rc != AAM_OK)
		fprintf(stderr, "routes file does not load: %s\n", err);
	assert_int_equal(rc, AAM_OK);
	char *text = aam_test_read_file(p, NULL);
	assert_non_null(text);
	assert_no_values(text);
	free(text);
	return t;
}

static void
test_design_reference(void **state)
{
	(void)state;
	if (!have_vault)
		skip();
	set_env();
	char *out = NULL, *err = NULL;
	assert_int_equal(import("design_reference.yaml", "ref.yaml", NULL, &out, &err), 0);
	assert_no_values(out);
	assert_no_values(err);
	/* The dangling fallback is reported, with its position, and left out. */
	assert_non_null(strstr(err, "openai-fallback"));
	assert_non_null(strstr(err, "design_reference.yaml:12:"));
	free(out);
	free(err);
	struct gw_routes *t = load_routes("ref.yaml");
	assert_int_equal(t->nroutes, 1);
	const struct gw_route *r = gw_routes_find(t, "reasoning-high");
	assert_non_null(r);
	assert_int_equal(r->ndeps, 1);
	assert_string_equal(r->deps[0].provider, "anthropic");
	assert_string_equal(r->deps[0].model, "claude-sonnet");
	assert_string_equal(r->deps[0].api_base, "https://api.anthropic.com");
	assert_string_equal(r->deps[0].credential, "reasoning-high-anthropic-key");
	assert_int_equal(r->nfallbacks, 0);
	assert_int_equal(t->settings.strategy, GW_STRATEGY_LATENCY);
	gw_routes_unref(t);

	/* The key is in the vault, as an x-api-key header bound to the API. */
	char *show = secret_show("reasoning-high-anthropic-key");
	assert_non_null(show);
	assert_non_null(strstr(show, "type:        header"));
	assert_non_null(strstr(show, "header:      x-api-key"));
	assert_non_null(strstr(show, "binding:     https://api.anthropic.com"));
	assert_non_null(strstr(show, "version:     1"));
	assert_no_values(show);
	free(show);

	/* Importing again is idempotent: the secret is rotated, not duplicated. */
	assert_int_equal(import("design_reference.yaml", "ref.yaml", NULL, &out, &err), 0);
	assert_non_null(strstr(out, "updated"));
	free(out);
	free(err);
	show = secret_show("reasoning-high-anthropic-key");
	assert_non_null(strstr(show, "version:     2"));
	free(show);

	/* Without the variable: an error naming it, and no file written. */
	unsetenv("ANTHROPIC_API_KEY");
	assert_int_equal(import("design_reference.yaml", "ref-noenv.yaml", NULL, &out, &err), 1);
	assert_non_null(strstr(err, "ANTHROPIC_API_KEY"));
	char p[1100];
	path_in(p, sizeof(p), "ref-noenv.yaml");
	assert_int_not_equal(access(p, F_OK), 0);
	free(out);
	free(err);
	set_env();
}

static void
test_azure_openai(void **state)
{
	(void)state;
	if (!have_vault)
		skip();
	set_env();
	char *out = NULL, *err = NULL;
	assert_int_equal(import("azure_openai.yaml", "az.yaml", NULL, &out, &err), 0);
	assert_no_values(out);
	assert_no_values(err);
	assert_non_null(strstr(err, "unsupported: router_settings.redis_host (64:3)"));
	assert_non_null(strstr(err, "unsupported: model_list[4].model_info.mode (51:7)"));
	free(out);
	free(err);
	struct gw_routes *t = load_routes("az.yaml");
	assert_int_equal(t->nroutes, 4);
	const struct gw_route *r = gw_routes_find(t, "gpt-4o");
	assert_non_null(r);
	assert_int_equal(r->ndeps, 2);
	const struct gw_deployment *d = &r->deps[0];
	assert_string_equal(d->provider, "azure");
	assert_string_equal(d->model, "gpt4o-eastus");
	assert_string_equal(d->api_base, "https://contoso-eastus.openai.azure.com");
	assert_string_equal(d->api_version, "2024-08-01-preview");
	assert_int_equal(d->rpm, 900);
	assert_int_equal(d->tpm, 150000);
	assert_int_equal(d->timeout_ms, 45000);
	assert_int_equal(d->max_context, 128000);
	assert_true(d->cost_in > 2.4999 && d->cost_in < 2.5001);
	assert_true(d->cost_out > 9.9999 && d->cost_out < 10.0001);
	assert_true(d->cost_cached > 1.2499 && d->cost_cached < 1.2501);
	assert_true(r->deps[1].weight > 1.999 && r->deps[1].weight < 2.001);
	assert_string_equal(r->deps[1].region, "eu");
	/* model_info.id becomes the deployment's id (its state survives reloads by it). */
	assert_non_null(r->dep_ids);
	assert_string_equal(r->dep_ids[0], "eastus-primary");
	assert_null(r->dep_ids[1]);
	/* Two keys under one route name: two secrets. */
	assert_string_not_equal(r->deps[0].credential, r->deps[1].credential);
	assert_int_equal(r->nfallbacks, 1);
	assert_string_equal(r->fallbacks[0], "gpt-4o-openai");
	assert_int_equal(r->ncw_fallbacks, 1);
	assert_string_equal(r->cw_fallbacks[0], "long-context");
	assert_int_equal(gw_routes_find(t, "gpt-4o-openai")->deps[0].timeout_ms, 30500);
	assert_int_equal(gw_routes_find(t, "long-context")->max_output_tokens, 8192);
	assert_int_equal(t->settings.strategy, GW_STRATEGY_USAGE);
	assert_int_equal(t->settings.num_retries, 3);
	assert_int_equal(t->settings.allowed_fails, 2);
	assert_int_equal(t->settings.cooldown_ms, 60000);
	assert_int_equal(t->settings.timeout_ms, 120000);
	assert_int_equal(t->settings.retry_backoff_ms, 500);
	gw_routes_unref(t);

	char *show = secret_show("gpt-4o-azure-key");
	assert_non_null(show);
	assert_non_null(strstr(show, "header:      api-key"));
	assert_non_null(strstr(show, "binding:     https://contoso-eastus.openai.azure.com"));
	free(show);
	show = secret_show("gpt-4o-openai-openai-key");
	assert_non_null(show);
	assert_non_null(strstr(show, "type:        bearer"));
	free(show);
	char *list = NULL;
	assert_int_equal(vh_aamctl(&V, NULL, &list, NULL, "secret", "list", NULL), 0);
	assert_non_null(strstr(list, "gpt-4o-azure-2-key"));
	assert_non_null(strstr(list, "embeddings-openai-key"));
	assert_no_values(list);
	free(list);
}

static void
test_bedrock_local(void **state)
{
	(void)state;
	/* --no-secrets: no vault and no variables needed. */
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("VLLM_API_KEY");
	char *out = NULL, *err = NULL;
	if (!have_vault)
		skip();
	assert_int_equal(import("bedrock_local.yaml", "br.yaml", "--no-secrets", &out, &err), 0);
	assert_no_values(out);
	assert_no_values(err);
	/* Every unsupported setting is listed with its position. */
	const char *expect[] = {"litellm_settings.drop_params (41:3)",
	                        "litellm_settings.success_callback (42:3)",
	                        "general_settings.master_key (46:3)",
	                        "callbacks (49:1)",
	                        "environment_variables.LANGFUSE_HOST (52:3)",
	                        "model_list[0].litellm_params.stream_timeout (11:7)",
	                        "model_list[5].litellm_params.vertex_project (32:7)",
	                        NULL};
	for (size_t i = 0; expect[i] != NULL; i++) {
		char line[200];
		snprintf(line, sizeof(line), "unsupported: %s", expect[i]);
		if (strstr(err, line) == NULL) {
			fprintf(stderr, "missing: %s\n", line);
			fail();
		}
	}
	assert_non_null(strstr(err, "11 unsupported setting(s)"));
	assert_non_null(strstr(err, "literal key"));
	free(out);
	free(err);
	struct gw_routes *t = load_routes("br.yaml");
	assert_int_equal(t->nroutes, 4);
	const struct gw_route *r = gw_routes_find(t, "claude-bedrock");
	assert_string_equal(r->deps[0].provider, "bedrock");
	assert_string_equal(r->deps[0].model, "anthropic.claude-3-5-sonnet-20240620-v1:0");
	assert_string_equal(r->deps[0].api_base,
	                    "https://bedrock-runtime.eu-central-1.amazonaws.com");
	assert_string_equal(r->deps[0].region, "eu-central-1");
	assert_int_equal(r->nfallbacks, 1);
	assert_string_equal(r->fallbacks[0], "local-llama");
	r = gw_routes_find(t, "local-llama");
	assert_string_equal(r->deps[0].provider, "openai-compatible");
	assert_string_equal(r->deps[0].api_base, "http://localhost:11434");
	assert_null(r->deps[0].credential);
	assert_null(gw_routes_find(t, "gemini"));
	assert_null(gw_routes_find(t, "titan"));
	assert_int_equal(t->settings.strategy, GW_STRATEGY_LEAST_BUSY);
	gw_routes_unref(t);

	/* With the vault: SigV4 for Bedrock, the literal key imported too. */
	set_env();
	assert_int_equal(import("bedrock_local.yaml", "br2.yaml", NULL, &out, &err), 0);
	assert_no_values(out);
	assert_no_values(err);
	free(out);
	free(err);
	char *show = secret_show("claude-bedrock-bedrock-key");
	assert_non_null(show);
	assert_non_null(strstr(show, "type:        aws-sigv4"));
	assert_non_null(strstr(show, "access key:  " AWS_ID_VALUE));
	assert_non_null(strstr(show, "region:      eu-central-1"));
	assert_non_null(strstr(show, "service:     bedrock"));
	free(show);
	show = secret_show("legacy-proxy-openai-compatible-key");
	assert_non_null(show);
	assert_non_null(strstr(show, "binding:     https://litellm.internal.example.com"));
	free(show);
}

static void
test_hostile(void **state)
{
	(void)state;
	if (!have_vault)
		skip();
	struct {
		const char *yaml, *expect;
	} cases[] = {
	        {"model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/x\n"
	         "      rpm: lots\n",
	         ":5:12:"},
	        {"model_list: 3\n", "model_list"},
	        {"- just\n- a list\n", "mapping"},
	        {"model_list:\n  - model_name: a\n    litellm_params:\n      model: azure/x\n",
	         "api_base is required"},
	        {"model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/x\n"
	         "      api_base: ftp://x\n",
	         "http://"},
	        {"model_list:\n  - model_name: a\n    litellm_params: {model: openai/x}\n"
	         "router_settings:\n  cooldown_time: -5\n",
	         ":5:18:"},
	        {"model_list:\n  - model_name: a\n    litellm_params: {model: cohere/x}\n",
	         "no route could be imported"},
	        {"a: &x [1]\nb: *x\nmodel_list: []\n", ""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char p[1100], outp[1100];
		path_in(p, sizeof(p), "hostile.yaml");
		path_in(outp, sizeof(outp), "hostile-out.yaml");
		unlink(outp);
		assert_int_equal(aam_test_write_file(p, cases[i].yaml, strlen(cases[i].yaml), 0644),
		                 0);
		char *out = NULL, *err = NULL;
		int rc = vh_aamctl(&V, NULL, &out, &err, "import", "litellm", p, "--out", outp,
		                   "--no-secrets", NULL);
		if (rc != 1 || strstr(err, cases[i].expect) == NULL) {
			fprintf(stderr, "case %zu: rc %d, stderr:\n%s\n", i, rc, err);
			fail();
		}
		assert_int_not_equal(access(outp, F_OK), 0);
		free(out);
		free(err);
	}
}

static struct aam_db *
open_db(const char *name)
{
	char p[1100];
	path_in(p, sizeof(p), name);
	struct aam_db *db = NULL;
	assert_int_equal(aam_db_open(p, 0, &db), AAM_OK);
	return db;
}

static int
count_cb(void *ctx, const struct gw_vkey *k)
{
	(void)k;
	(*(int *)ctx)++;
	return 0;
}

static void
test_keys_json(void **state)
{
	(void)state;
	if (!have_vault)
		skip();
	char *f = fixture("keys.json"), db[1100], *out = NULL, *err = NULL;
	path_in(db, sizeof(db), "gw-json.db");
	for (int round = 0; round < 2; round++) {
		int rc = vh_aamctl(&V, NULL, &out, &err, "import", "litellm-keys", f,
		                   "--workload-prefix", "spiffe://prod/ns/legacy/sa/",
		                   "--default-owner", "platform-team", "--db", db, NULL);
		/* Two rows cannot be imported (bad token; nothing to name a workload). */
		assert_int_equal(rc, 1);
		assert_non_null(strstr(out, round == 0
		                                    ? "summary: 3 imported, 0 updated, 2 skipped"
		                                    : "summary: 0 imported, 3 updated, 2 skipped"));
		assert_non_null(
		        strstr(out, "skipped  row 4 broken: token is not a SHA-256 hex hash"));
		assert_non_null(strstr(out, "skipped  row 5: no key_alias or team_id"));
		free(out);
		free(err);
	}
	free(f);
	struct aam_db *h = open_db("gw-json.db");
	int n = 0;
	assert_int_equal(gw_vkey_list(h, count_cb, &n), 0);
	assert_int_equal(n, 3); /* updated in place, never duplicated */

	struct gw_vkey k;
	assert_int_equal(gw_vkey_lookup(h, "sk-litellm-finance-0001", &k), AAM_OK);
	assert_string_equal(k.workload, "spiffe://prod/ns/legacy/sa/finance-analyst");
	assert_string_equal(k.owner, "alice@example.com");
	assert_string_equal(k.team, "finance");
	assert_string_equal(k.alias, "finance-analyst");
	assert_string_equal(k.source, "litellm");
	assert_string_equal(k.budget_duration, "30d");
	assert_true(k.max_budget > 74.99 && k.max_budget < 75.01);
	assert_int_equal(k.rpm, 60);
	assert_int_equal(k.tpm, 100000);
	assert_int_equal(k.expires, 1893456000); /* 2030-01-01T00:00:00Z */
	assert_true(gw_vkey_usable(&k, (int64_t)time(NULL)));
	assert_true(gw_vkey_allows_model(&k, "reasoning-high"));
	assert_false(gw_vkey_allows_model(&k, "embeddings"));
	gw_vkey_uninit(&k);

	assert_int_equal(gw_vkey_lookup(h, "sk-litellm-support-0002", &k), AAM_OK);
	assert_string_equal(k.workload, "spiffe://prod/ns/legacy/sa/support-team");
	assert_string_equal(k.owner, "platform-team");
	assert_null(k.models); /* [] in LiteLLM: every model */
	assert_true(k.max_budget < 0);
	assert_int_equal(k.expires, 0);
	gw_vkey_uninit(&k);

	/* Blocked in LiteLLM and expired: imported, but not usable. */
	assert_int_equal(gw_vkey_lookup(h, "sk-litellm-batch-0003", &k), AAM_OK);
	assert_string_equal(k.workload, "spiffe://prod/ns/legacy/sa/batch-job--7");
	assert_true(k.revoked);
	assert_null(k.models); /* all-proxy-models */
	assert_false(gw_vkey_usable(&k, (int64_t)time(NULL)));
	gw_vkey_uninit(&k);

	assert_int_equal(gw_vkey_lookup(h, "sk-litellm-finance-0002", &k), AAM_E_NOTFOUND);
	assert_int_equal(gw_vkey_lookup(h, "sk-litellm-orphan-0005", &k), AAM_E_NOTFOUND);
	aam_db_close(h);
}

static void
test_keys_csv(void **state)
{
	(void)state;
	if (!have_vault)
		skip();
	char *f = fixture("keys.csv"), db[1100], *out = NULL, *err = NULL;
	path_in(db, sizeof(db), "gw-csv.db");
	int rc = vh_aamctl(&V, NULL, &out, &err, "import", "litellm-keys", f, "--workload-prefix",
	                   "spiffe://prod/ns/legacy/sa/", "--default-owner", "platform-team",
	                   "--db", db, NULL);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "summary: 2 imported, 0 updated, 0 skipped"));
	free(out);
	free(err);
	free(f);
	struct aam_db *h = open_db("gw-csv.db");
	struct gw_vkey k;
	assert_int_equal(gw_vkey_lookup(h, "sk-litellm-csv-0101", &k), AAM_OK);
	assert_string_equal(k.workload, "spiffe://prod/ns/legacy/sa/csv-agent");
	assert_string_equal(k.owner, "dave@example.com");
	assert_string_equal(k.models, "[\"reasoning-high\",\"gpt-4o\"]");
	assert_true(k.max_budget > 20.49 && k.max_budget < 20.51);
	assert_int_equal(k.rpm, 30);
	assert_int_equal(k.tpm, 5000);
	struct tm tm = {.tm_year = 131, .tm_mon = 5, .tm_mday = 30, .tm_hour = 12};
	assert_int_equal(k.expires, (int64_t)timegm(&tm));
	gw_vkey_uninit(&k);
	assert_int_equal(gw_vkey_lookup(h, "sk-litellm-csv-0102", &k), AAM_OK);
	assert_string_equal(k.workload, "spiffe://prod/ns/legacy/sa/data--science");
	assert_string_equal(k.team, "data, science");
	assert_string_equal(k.owner, "platform-team");
	assert_string_equal(k.models, "[\"embeddings\"]");
	gw_vkey_uninit(&k);
	aam_db_close(h);

	/* Hostile key files: each is refused as a whole or row by row. */
	const char *bad[] = {"token,key_alias\n\"unterminated,x\n", "{\"keys\": 3}",
	                     "[{\"token\":\"x\"}, {\"token\":\"x\"", "token\n" /* no rows */};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char p[1100];
		path_in(p, sizeof(p), "bad-keys");
		assert_int_equal(aam_test_write_file(p, bad[i], strlen(bad[i]), 0600), 0);
		rc = vh_aamctl(&V, NULL, &out, &err, "import", "litellm-keys", p,
		               "--workload-prefix", "spiffe://prod/ns/legacy/sa/", "--db", db,
		               NULL);
		assert_int_equal(rc, i == 3 ? 0 : 1);
		free(out);
		free(err);
	}
	/* A prefix that is not a SPIFFE path prefix is a usage error. */
	rc = vh_aamctl(&V, NULL, &out, &err, "import", "litellm-keys", db, "--workload-prefix",
	               "https://prod/", "--db", db, NULL);
	assert_int_equal(rc, 2);
	free(out);
	free(err);
}

static int
setup(void **state)
{
	(void)state;
	if (!aam_test_softhsm_available())
		return 0;
	if (vh_setup(&V, NULL) != 0 || vh_start(&V) != 0)
		return -1;
	char *out = NULL;
	if (vh_aamctl(&V, NULL, &out, NULL, "keys", "init", NULL) != 0)
		return -1;
	free(out);
	have_vault = true;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	if (!have_vault)
		return 0;
	/* Everything aamctl printed in this test (vh_aamctl keeps a copy)
	 * is free of key values. */
	char p[1100];
	path_in(p, sizeof(p), "aamctl.out");
	char *all = aam_test_read_file(p, NULL);
	bool leaked = false;
	for (size_t i = 0; all != NULL && ALL_VALUES[i] != NULL; i++)
		leaked = leaked || strstr(all, ALL_VALUES[i]) != NULL;
	free(all);
	if (leaked)
		fprintf(stderr, "a key value appears in aamctl's output\n");
	int st = vh_stop(&V);
	vh_teardown(&V);
	return st == 0 && !leaked ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_design_reference), cmocka_unit_test(test_azure_openai),
	        cmocka_unit_test(test_bedrock_local),    cmocka_unit_test(test_hostile),
	        cmocka_unit_test(test_keys_json),        cmocka_unit_test(test_keys_csv),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
