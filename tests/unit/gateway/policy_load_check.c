/*
 * The strict loader: every malformed policy in tests/fixtures/policies/bad
 * is rejected with exactly the expected file:line:column: message; a load
 * reports all its errors; folders load all-or-nothing; names are unique
 * across files; a catalogue catches unknown names; the set hash depends on
 * meaning, not formatting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "gateway/policy.h"
#include "tests/lib/testutil.h"

static const char good[] = "apiVersion: access.envisionai.dev/v1\n"
                           "kind: AgentPolicy\n"
                           "metadata:\n"
                           "  name: NAME\n"
                           "spec:\n"
                           "  identity:\n"
                           "    workload: spiffe://prod/agent/x\n"
                           "  models:\n"
                           "    allow: [reasoning-high]\n";

static char *
good_named(const char *name)
{
	size_t len = sizeof(good) + strlen(name);
	char *s = malloc(len);
	assert_non_null(s);
	const char *at = strstr(good, "NAME");
	snprintf(s, len, "%.*s%s%s", (int)(at - good), good, name, at + 4);
	return s;
}

static int
load_text(const char *name, const char *text, gw_policy_set **set, struct gw_policy_diag *d)
{
	gw_policy_diag_init(d);
	return gw_policy_set_load_buffer(name, text, strlen(text), NULL, set, d);
}

static void
first_error(const struct gw_policy_diag *d, char *out, size_t outlen)
{
	assert_true(d->n > 0);
	gw_policy_diag_format(d, 0, out, outlen);
}

static int
yaml_file(const struct dirent *e)
{
	size_t len = strlen(e->d_name);
	return len > 5 && strcmp(e->d_name + len - 5, ".yaml") == 0;
}

static void
test_bad_fixtures(void **state)
{
	(void)state;
	char *dir = aam_test_source_path("tests/fixtures/policies/bad");
	assert_non_null(dir);
	struct dirent **names = NULL;
	int n = scandir(dir, &names, yaml_file, alphasort);
	assert_true(n >= 40);
	int failures = 0;
	for (int i = 0; i < n; i++) {
		char path[1024], expect_path[1024];
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		snprintf(expect_path, sizeof(expect_path), "%s/%.*s.expect", dir,
		         (int)(strlen(names[i]->d_name) - 5), names[i]->d_name);
		size_t len = 0, elen = 0;
		char *text = aam_test_read_file(path, &len);
		char *expect = aam_test_read_file(expect_path, &elen);
		assert_non_null(text);
		assert_non_null(expect);
		while (elen > 0 && (expect[elen - 1] == '\n' || expect[elen - 1] == '\r'))
			expect[--elen] = '\0';
		gw_policy_set *set = NULL;
		struct gw_policy_diag d;
		gw_policy_diag_init(&d);
		int rc = gw_policy_set_load_buffer(names[i]->d_name, text, len, NULL, &set, &d);
		char got[1024] = "";
		if (d.n > 0)
			gw_policy_diag_format(&d, 0, got, sizeof(got));
		if (rc == AAM_OK || set != NULL || strcmp(got, expect) != 0) {
			print_error("%s: rc=%d\n  want: %s\n  got:  %s\n", names[i]->d_name, rc,
			            expect, got);
			failures++;
		}
		/* A loader error is a policy error, never a crash or an I/O code. */
		assert_true(rc == AAM_E_CONFIG || rc == AAM_E_TOOBIG || rc == AAM_OK);
		gw_policy_set_unref(set);
		gw_policy_diag_uninit(&d);
		free(text);
		free(expect);
		free(names[i]);
	}
	free(names);
	free(dir);
	assert_int_equal(failures, 0);
}

static void
test_every_error_is_reported(void **state)
{
	(void)state;
	const char *text = "apiVersion: access.envisionai.dev/v1\n"
	                   "kind: AgentPolicy\n"
	                   "metadata:\n"
	                   "  name: many-errors\n"
	                   "spec:\n"
	                   "  identity:\n"
	                   "    workload: spiffe://prod/agent/x\n"
	                   "    tem: finance\n"
	                   "  models:\n"
	                   "    allow: [reasoning-high]\n"
	                   "    budget: { daily_usd: -1 }\n"
	                   "  tools:\n"
	                   "    - resource: jira.issues\n"
	                   "      actions: []\n";
	gw_policy_set *set = NULL;
	struct gw_policy_diag d;
	assert_int_equal(load_text("m.yaml", text, &set, &d), AAM_E_CONFIG);
	assert_null(set);
	assert_int_equal(d.n, 3);
	char line[512];
	gw_policy_diag_format(&d, 0, line, sizeof(line));
	assert_string_equal(line,
	                    "m.yaml:8:5: spec.identity: unknown key 'tem' (did you mean 'team'?)");
	gw_policy_diag_format(&d, 1, line, sizeof(line));
	assert_string_equal(line,
	                    "m.yaml:11:26: spec.models.budget.daily_usd: must not be negative");
	gw_policy_diag_format(&d, 2, line, sizeof(line));
	assert_string_equal(line, "m.yaml:14:16: spec.tools[0].actions: must not be empty");
	gw_policy_diag_uninit(&d);
}

static void
write_text(const char *dir, const char *name, const char *text)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(aam_test_write_file(path, text, strlen(text), 0644), 0);
}

static void
test_folder_is_all_or_nothing(void **state)
{
	(void)state;
	char *dir = aam_test_mkdtemp("policy-dir");
	char *a = good_named("alpha"), *b = good_named("beta");
	write_text(dir, "a.yaml", a);
	write_text(dir, "b.yml", b);
	write_text(dir, "notes.txt", "not a policy");
	write_text(dir, ".hidden.yaml", "not: [a policy");
	const char *paths[] = {dir};
	gw_policy_set *set = NULL;
	struct gw_policy_diag d;
	gw_policy_diag_init(&d);
	assert_int_equal(gw_policy_set_load(paths, 1, NULL, &set, &d), AAM_OK);
	assert_int_equal(gw_policy_set_count(set), 2);
	assert_string_equal(gw_policy_set_name(set, 0), "alpha");
	assert_string_equal(gw_policy_set_name(set, 1), "beta");
	gw_policy_set_unref(set);

	/* One broken file: nothing loads, and the error names that file. */
	write_text(dir, "c.yaml", "apiVersion: access.envisionai.dev/v1\nkind: [\n");
	assert_int_equal(gw_policy_set_load(paths, 1, NULL, &set, &d), AAM_E_CONFIG);
	assert_null(set);
	char line[512];
	first_error(&d, line, sizeof(line));
	assert_non_null(strstr(line, "/c.yaml:"));
	gw_policy_diag_uninit(&d);

	/* Two files with the same policy name. */
	char *dup = good_named("alpha");
	write_text(dir, "c.yaml", dup);
	gw_policy_diag_init(&d);
	assert_int_equal(gw_policy_set_load(paths, 1, NULL, &set, &d), AAM_E_CONFIG);
	first_error(&d, line, sizeof(line));
	assert_non_null(strstr(line, "/c.yaml:4:9: metadata.name: duplicate policy name 'alpha' "
	                             "(first defined at "));
	assert_non_null(strstr(line, "/a.yaml:4:9)"));
	gw_policy_diag_uninit(&d);

	aam_test_rmtree(dir);
	free(dir);
	free(a);
	free(b);
	free(dup);
}

static void
test_missing_and_empty_paths(void **state)
{
	(void)state;
	const char *paths[] = {"/nonexistent/policies"};
	gw_policy_set *set = NULL;
	struct gw_policy_diag d;
	gw_policy_diag_init(&d);
	assert_int_equal(gw_policy_set_load(paths, 1, NULL, &set, &d), AAM_E_NOTFOUND);
	assert_null(set);
	assert_true(d.n >= 1);
	gw_policy_diag_uninit(&d);

	char *dir = aam_test_mkdtemp("policy-empty");
	paths[0] = dir;
	gw_policy_diag_init(&d);
	assert_int_equal(gw_policy_set_load(paths, 1, NULL, &set, &d), AAM_E_CONFIG);
	char line[512];
	first_error(&d, line, sizeof(line));
	assert_non_null(strstr(line, "holds no *.yaml"));
	gw_policy_diag_uninit(&d);
	aam_test_rmtree(dir);
	free(dir);

	gw_policy_diag_init(&d);
	assert_int_equal(gw_policy_set_load_buffer("e.yaml", "", 0, NULL, &set, &d), AAM_E_CONFIG);
	first_error(&d, line, sizeof(line));
	assert_string_equal(line, "e.yaml: contains no policy");
	gw_policy_diag_uninit(&d);
	assert_int_equal(gw_policy_set_load(NULL, 0, NULL, &set, NULL), AAM_E_INVAL);
	assert_int_equal(gw_policy_set_load_buffer("x", NULL, 3, NULL, &set, NULL), AAM_E_INVAL);
}

static void
test_catalogue(void **state)
{
	(void)state;
	const char *text = "apiVersion: access.envisionai.dev/v1\n"
	                   "kind: AgentPolicy\n"
	                   "metadata: {name: cat}\n"
	                   "spec:\n"
	                   "  identity: {workload: spiffe://prod/agent/x}\n"
	                   "  models: {allow: [reasoning-high, reasoning-hihg]}\n"
	                   "  tools:\n"
	                   "    - {resource: salesforce.accounts, actions: [read]}\n"
	                   "    - {resource: salesforce.*, actions: [read]}\n"
	                   "    - {resource: jira.*, actions: [read]}\n";
	const char *routes[] = {"reasoning-high", "summarization"};
	const char *tools[] = {"salesforce.accounts", "salesforce.contacts"};
	struct gw_policy_catalogue cat = {routes, 2, tools, 2};
	struct gw_policy_load_opts opts = {.catalogue = &cat};
	gw_policy_set *set = NULL;
	struct gw_policy_diag d;
	gw_policy_diag_init(&d);
	assert_int_equal(gw_policy_set_load_buffer("cat.yaml", text, strlen(text), &opts, &set, &d),
	                 AAM_E_CONFIG);
	assert_int_equal(d.n, 2);
	char line[512];
	gw_policy_diag_format(&d, 0, line, sizeof(line));
	assert_string_equal(line, "cat.yaml:6:36: spec.models.allow[1]: unknown model route "
	                          "'reasoning-hihg' (not in the catalogue)");
	gw_policy_diag_format(&d, 1, line, sizeof(line));
	assert_string_equal(line, "cat.yaml:10:18: spec.tools[2].resource: unknown tool resource "
	                          "'jira.*' (not in the catalogue)");
	gw_policy_diag_uninit(&d);
	/* Without a catalogue the same names are fine. */
	assert_int_equal(
	        gw_policy_set_load_buffer("cat.yaml", text, strlen(text), NULL, &set, NULL),
	        AAM_OK);
	gw_policy_set_unref(set);
}

static void
test_limits_on_policy_count(void **state)
{
	(void)state;
	char *a = good_named("a"), *b = good_named("b"), *c = good_named("c");
	size_t len = strlen(a) + strlen(b) + strlen(c) + 16;
	char *all = malloc(len);
	snprintf(all, len, "%s---\n%s---\n%s", a, b, c);
	struct gw_policy_load_opts opts = {.max_policies = 2};
	gw_policy_set *set = NULL;
	struct gw_policy_diag d;
	gw_policy_diag_init(&d);
	assert_int_equal(gw_policy_set_load_buffer("n.yaml", all, strlen(all), &opts, &set, &d),
	                 AAM_E_TOOBIG);
	char line[512];
	first_error(&d, line, sizeof(line));
	assert_string_equal(line, "n.yaml:21:1: more than 2 policies in one set");
	gw_policy_diag_uninit(&d);
	opts.max_policies = 3;
	assert_int_equal(gw_policy_set_load_buffer("n.yaml", all, strlen(all), &opts, &set, NULL),
	                 AAM_OK);
	assert_int_equal(gw_policy_set_count(set), 3);
	gw_policy_set_unref(set);
	free(a);
	free(b);
	free(c);
	free(all);
}

static void
hash_of(const char *text, char out[65])
{
	gw_policy_set *set = NULL;
	struct gw_policy_diag d;
	assert_int_equal(load_text("h.yaml", text, &set, &d), AAM_OK);
	gw_policy_diag_uninit(&d);
	memcpy(out, gw_policy_set_hash_hex(set), 65);
	uint8_t raw[32];
	gw_policy_set_hash(set, raw);
	char hex[65];
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	assert_string_equal(hex, out);
	gw_policy_set_unref(set);
}

static void
test_hash_follows_meaning_not_form(void **state)
{
	(void)state;
	const char *a = "apiVersion: access.envisionai.dev/v1\n"
	                "kind: AgentPolicy\n"
	                "metadata:\n  name: h\n"
	                "spec:\n"
	                "  identity:\n    workload: spiffe://prod/agent/x\n"
	                "  models:\n    allow: [reasoning-high]\n    budget: {daily_usd: 75}\n";
	/* Same meaning: flow style, quoting, comments, key order, defaults. */
	const char *b = "# a comment\n"
	                "kind: \"AgentPolicy\"\n"
	                "apiVersion: 'access.envisionai.dev/v1'\n"
	                "spec: {models: {budget: {daily_usd: 75.0}, allow: reasoning-high},\n"
	                "       identity: {require_attested: false,\n"
	                "                  workload: [\"spiffe://prod/agent/x\"]},\n"
	                "       credentials: {injection: runtime, expose_to_agent: false},\n"
	                "       audit: {record: [outcome, action, policy, identity]}}\n"
	                "metadata: {name: h}\n";
	const char *c = "apiVersion: access.envisionai.dev/v1\n"
	                "kind: AgentPolicy\n"
	                "metadata:\n  name: h\n"
	                "spec:\n"
	                "  identity:\n    workload: spiffe://prod/agent/x\n"
	                "  models:\n    allow: [reasoning-high]\n    budget: {daily_usd: 76}\n";
	char ha[65], hb[65], hc[65];
	hash_of(a, ha);
	hash_of(b, hb);
	hash_of(c, hc);
	assert_string_equal(ha, hb);
	assert_string_not_equal(ha, hc);

	/* Set order does not matter: policies are hashed sorted by name. */
	char *p1 = good_named("one"), *p2 = good_named("two");
	char both1[1024], both2[1024];
	snprintf(both1, sizeof(both1), "%s---\n%s", p1, p2);
	snprintf(both2, sizeof(both2), "%s---\n%s", p2, p1);
	char h1[65], h2[65];
	hash_of(both1, h1);
	hash_of(both2, h2);
	assert_string_equal(h1, h2);
	free(p1);
	free(p2);
}

static void
test_canonical_form(void **state)
{
	(void)state;
	char *path = aam_test_source_path("policies/examples/finance-analyst-readonly.yaml");
	const char *paths[] = {path};
	gw_policy_set *set = NULL;
	assert_int_equal(gw_policy_set_load(paths, 1, NULL, &set, NULL), AAM_OK);
	struct aam_buf b;
	aam_buf_init(&b, 0);
	assert_int_equal(gw_policy_set_canonical(set, &b), AAM_OK);
	assert_string_equal(
	        aam_buf_cstr(&b),
	        "aam-policy-set/v1\n"
	        "{\"apiVersion\":\"access.envisionai.dev/v1\",\"kind\":\"AgentPolicy\","
	        "\"metadata\":{\"name\":\"finance-analyst-readonly\"},\"spec\":{"
	        "\"audit\":{\"record\":[\"identity\",\"policy\",\"action\",\"outcome\"]},"
	        "\"credentials\":{\"expose_to_agent\":false,\"injection\":\"runtime\"},"
	        "\"identity\":{\"require_attested\":false,"
	        "\"workload\":[\"spiffe://prod/agent/finance-analyst\"]},"
	        "\"models\":{\"allow\":[\"reasoning-high\",\"summarization\"],"
	        "\"budget\":{\"daily_usd\":75}},"
	        "\"tools\":[{\"actions\":[\"read\",\"search\"],"
	        "\"deny\":[\"export\",\"update\",\"delete\"],"
	        "\"resource\":\"salesforce.accounts\"}]}}\n");
	aam_buf_uninit(&b);
	gw_policy_set_unref(set);
	free(path);
}

static void
test_examples_load_together(void **state)
{
	(void)state;
	char *dir = aam_test_source_path("policies/examples");
	const char *paths[] = {dir};
	gw_policy_set *set = NULL;
	struct gw_policy_diag d;
	gw_policy_diag_init(&d);
	int rc = gw_policy_set_load(paths, 1, NULL, &set, &d);
	for (size_t i = 0; i < d.n; i++) {
		char line[512];
		gw_policy_diag_format(&d, i, line, sizeof(line));
		print_error("%s\n", line);
	}
	assert_int_equal(rc, AAM_OK);
	assert_true(gw_policy_set_count(set) >= 8);
	gw_policy_set_unref(set);
	gw_policy_diag_uninit(&d);
	free(dir);
}

static void
test_refcount(void **state)
{
	(void)state;
	char *a = good_named("ref");
	gw_policy_set *set = NULL;
	struct gw_policy_diag d;
	assert_int_equal(load_text("r.yaml", a, &set, &d), AAM_OK);
	gw_policy_diag_uninit(&d);
	assert_ptr_equal(gw_policy_set_ref(set), set);
	gw_policy_set_unref(set);
	/* Still alive after one unref of two references. */
	assert_string_equal(gw_policy_set_name(set, 0), "ref");
	gw_policy_set_unref(set);
	gw_policy_set_unref(NULL);
	assert_null(gw_policy_set_ref(NULL));
	free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_bad_fixtures),
	        cmocka_unit_test(test_every_error_is_reported),
	        cmocka_unit_test(test_folder_is_all_or_nothing),
	        cmocka_unit_test(test_missing_and_empty_paths),
	        cmocka_unit_test(test_catalogue),
	        cmocka_unit_test(test_limits_on_policy_count),
	        cmocka_unit_test(test_hash_follows_meaning_not_form),
	        cmocka_unit_test(test_canonical_form),
	        cmocka_unit_test(test_examples_load_together),
	        cmocka_unit_test(test_refcount),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
