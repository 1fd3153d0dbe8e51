/*
 * The tool catalogue loader: the shipped catalogues load and say what
 * docs/TOOLS.md says they do, and every kind of mistake is refused with
 * file:line:column.
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

#define HDR                                                                                        \
	"apiVersion: access.envisionai.dev/v1\n"                                                   \
	"kind: ToolCatalog\n"                                                                      \
	"metadata: {name: t}\n"

static struct gwt_catalog *
load_ok(const char *text)
{
	struct gwt_catalog *c = NULL;
	struct aam_yaml_error e = {0};
	int rc = gwt_catalog_load_buffer("t.yaml", text, strlen(text), &c, &e);
	if (rc != AAM_OK) {
		char line[600];
		aam_yaml_error_format(&e, line, sizeof(line));
		fail_msg("load failed: %s", line);
	}
	return c;
}

/* Loads TEXT expecting an error whose formatted line contains WANT. */
static void
load_bad(const char *text, const char *want)
{
	struct gwt_catalog *c = NULL;
	struct aam_yaml_error e = {0};
	int rc = gwt_catalog_load_buffer("t.yaml", text, strlen(text), &c, &e);
	char line[600];
	aam_yaml_error_format(&e, line, sizeof(line));
	if (rc == AAM_OK)
		fail_msg("loaded, expected an error containing \"%s\"", want);
	assert_int_equal(rc, AAM_E_CONFIG);
	assert_null(c);
	if (strstr(line, want) == NULL)
		fail_msg("error \"%s\" does not contain \"%s\"", line, want);
	/* Every error names the file and a position. */
	assert_true(strncmp(line, "t.yaml:", 7) == 0);
	assert_true(e.line > 0);
}

static void
test_shipped_catalogues(void **state)
{
	(void)state;
	char *dir = aam_test_source_path("deploy/etc/aam/tools");
	const char *paths[] = {dir};
	struct gwt_catalog *c = NULL;
	struct aam_yaml_error e = {0};
	int rc = gwt_catalog_load(paths, 1, &c, &e);
	if (rc != AAM_OK) {
		char line[600];
		aam_yaml_error_format(&e, line, sizeof(line));
		fail_msg("%s", line);
	}
	/* The CRM: five actions on salesforce.accounts. */
	const char *acts[] = {"read", "search", "export", "update", "delete"};
	for (size_t i = 0; i < 5; i++)
		assert_non_null(gwt_catalog_find(c, "salesforce.accounts", acts[i]));
	const struct gwt_action *a = gwt_catalog_find(c, "salesforce.accounts", "update");
	assert_string_equal(a->method, "PATCH");
	assert_string_equal(a->credential, "crm-api");
	assert_string_equal(a->base_url, "https://crm.example.com/services/data/v1");
	assert_int_equal(a->timeout_ms, 30000);
	/* Catalogue-wide headers reach every action; action headers add to them. */
	bool accept = false, ifmatch = false;
	for (size_t i = 0; i < a->nheaders; i++) {
		accept = accept || strcmp(a->headers[i].name, "Accept") == 0;
		ifmatch = ifmatch || strcmp(a->headers[i].name, "If-Match") == 0;
	}
	assert_true(accept && ifmatch);
	/* GitHub: an action-level credential overrides the catalogue's. */
	assert_string_equal(gwt_catalog_find(c, "github.repos.releases", "create")->credential,
	                    "github-release-writer");
	assert_string_equal(gwt_catalog_find(c, "github.repos.issues", "list")->credential,
	                    "github-readonly");
	assert_null(gwt_catalog_find(c, "salesforce.accounts", "merge"));
	assert_null(gwt_catalog_find(c, "salesforce", "read"));
	size_t n;
	const char *const *res = gwt_catalog_policy_resources(c, &n);
	assert_true(n >= 4);
	bool sf = false;
	for (size_t i = 0; i < n; i++)
		sf = sf || strcmp(res[i], "salesforce.accounts") == 0;
	assert_true(sf);
	gwt_catalog_free(c);
	free(dir);
}

static void
test_mcp_servers(void **state)
{
	(void)state;
	struct gwt_catalog *c =
	        load_ok(HDR "spec:\n"
	                    "  mcp_servers:\n"
	                    "    - name: docs\n"
	                    "      url: https://mcp.example.com/mcp\n"
	                    "      credential: docs-key\n"
	                    "      tools:\n"
	                    "        search: {resource: docs.pages, action: search}\n"
	                    "        delete_page: {action: delete}\n"
	                    "    - name: crm-mcp\n"
	                    "      url: http://127.0.0.1:9/mcp\n"
	                    "      credential: crm-mcp-key\n"
	                    "      resource: crm.mcp\n"
	                    "      timeout: 5s\n"
	                    "      resources: {action: files.read}\n");
	assert_int_equal(gwt_catalog_mcp_count(c), 2);
	const struct gwt_mcp_server *s = gwt_catalog_find_mcp(c, "docs");
	assert_non_null(s);
	assert_string_equal(s->resource, "mcp.docs");
	assert_int_equal(s->ntools, 2);
	assert_string_equal(s->tools[0].resource, "docs.pages");
	assert_string_equal(s->tools[1].resource, "mcp.docs");
	assert_string_equal(s->tools[1].action, "delete");
	assert_string_equal(s->resources.action, "resources.read");
	assert_string_equal(s->prompts.action, "prompts.get");
	s = gwt_catalog_find_mcp(c, "crm-mcp");
	assert_string_equal(s->resource, "crm.mcp");
	assert_int_equal(s->timeout_ms, 5000);
	assert_string_equal(s->resources.resource, "crm.mcp");
	assert_string_equal(s->resources.action, "files.read");
	size_t n;
	const char *const *res = gwt_catalog_policy_resources(c, &n);
	bool pages = false, crm = false;
	for (size_t i = 0; i < n; i++) {
		pages = pages || strcmp(res[i], "docs.pages") == 0;
		crm = crm || strcmp(res[i], "crm.mcp") == 0;
	}
	assert_true(pages && crm);
	gwt_catalog_free(c);
}

#define ACT(body)                                                                                  \
	HDR "spec:\n"                                                                              \
	    "  base_url: https://api.example.com\n"                                                \
	    "  credential: k\n"                                                                    \
	    "  resources:\n"                                                                       \
	    "    a.b:\n"                                                                           \
	    "      actions:\n"                                                                     \
	    "        x:\n" body

static void
test_errors(void **state)
{
	(void)state;
	/* Document level. */
	load_bad("apiVersion: v2\nkind: ToolCatalog\nmetadata: {name: t}\nspec: {}\n",
	         "t.yaml:1:13: apiVersion: expected access.envisionai.dev/v1");
	load_bad("apiVersion: access.envisionai.dev/v1\nkind: AgentPolicy\nmetadata: {name: t}\n",
	         "kind: expected ToolCatalog");
	load_bad(HDR "spec:\n  base_url: https://x.example\n",
	         "needs 'resources' or 'mcp_servers'");
	load_bad(HDR "spec:\n  resources: {}\n  extra: 1\n",
	         "t.yaml:6:3: spec: unknown key 'extra'");
	load_bad(HDR "spec:\n  base_url: ftp://x\n  resources: {}\n", "expected an http");
	load_bad(HDR "spec:\n  base_url: https://x.example/\n  resources: {}\n", "no trailing '/'");
	load_bad(HDR "spec:\n  base_url: https://user@x.example\n  resources: {}\n", "credentials");
	/* Resources. */
	load_bad(HDR "spec:\n  base_url: https://x.example\n  resources:\n    Bad..name: {actions: "
	             "{}}\n",
	         "resource names are dot-separated");
	load_bad(HDR "spec:\n  base_url: https://x.example\n  resources:\n    a.b: {}\n",
	         "'actions' is required");
	/* Actions. */
	load_bad(ACT("          method: GET\n"), "'path' is required");
	load_bad(ACT("          method: get\n          path: /x\n"), "method must be GET");
	load_bad(ACT("          method: CONNECT\n          path: /x\n"), "method must be GET");
	load_bad(ACT("          method: GET\n          path: x\n"), "must start with '/'");
	load_bad(ACT("          method: GET\n          path: /a/../b\n"), "'..' segments");
	load_bad(ACT("          method: GET\n          path: /a//b\n"), "empty, '.' and '..'");
	load_bad(ACT("          method: GET\n          path: /a b\n"), "only unreserved");
	load_bad(ACT("          method: GET\n          path: /a/{id}\n"),
	         "placeholder '{id}' names no declared parameter");
	load_bad(ACT("          method: GET\n          path: /a/{id\n"),
	         "unterminated placeholder");
	load_bad(ACT("          method: GET\n          path: /a/id}\n"), "'}' without '{'");
	load_bad(ACT("          method: GET\n          path: /a/{id}\n"
	             "          parameters:\n            id: {type: string}\n"),
	         "placeholder '{id}' must name a required parameter");
	load_bad(ACT("          method: GET\n          path: /a\n"
	             "          parameters:\n            id: {type: string}\n"),
	         "parameter 'id' is not used");
	load_bad(ACT("          method: GET\n          path: /a\n          body: {x: 1}\n"),
	         "a GET request has no body");
	load_bad(ACT("          method: GET\n          path: /a\n          headers: "
	             "{Authorization: x}\n"),
	         "'Authorization' cannot be set by a template");
	load_bad(ACT("          method: GET\n          path: /a\n          headers: {Host: x}\n"),
	         "cannot be set by a template");
	load_bad(ACT("          method: GET\n          path: /a\n          headers: {\"bad name\": "
	             "x}\n"),
	         "is not a header name");
	load_bad(ACT("          method: GET\n          path: /a\n          frobnicate: 1\n"),
	         "unknown key 'frobnicate'");
	load_bad(ACT("          method: GET\n          path: /a\n          timeout: 2h\n"),
	         "between 100ms and 1h");
	load_bad(ACT("          method: GET\n          path: /a\n          credential: \"bad "
	             "name\"\n"),
	         "invalid credential name");
	/* Parameter schemas. */
	const char *P = "          method: POST\n          path: /a\n          body: {v: \"{v}\"}\n"
	                "          parameters:\n            v: ";
	char buf[2048];
	struct {
		const char *schema, *want;
	} cases[] = {
	        {"{type: strin}", "expected string, integer, number, boolean or array"},
	        {"{required: true}", "'type' is required"},
	        {"{type: string, max_length: 0}", "must be between 1 and"},
	        {"{type: integer, max_length: 3}", "'max_length' applies to strings only"},
	        {"{type: string, min: 1}", "'min' applies to integers and numbers only"},
	        {"{type: integer, min: 1.5}", "an integer's min must be an integer"},
	        {"{type: number, min: 5, max: 1}", "min is greater than max"},
	        {"{type: string, min_length: 10, max_length: 5}", "min_length is greater"},
	        {"{type: string, pattern: \"(a\"}", "pattern:"},
	        {"{type: string, pattern: \"(a)\\\\1\"}", "pattern:"},
	        {"{type: string, enum: []}", "expected a non-empty list"},
	        {"{type: string, enum: [a, 1]}", "does not have the parameter's type"},
	        {"{type: string, enum: [a, a]}", "duplicate value"},
	        {"{type: array}", "needs 'items'"},
	        {"{type: array, items: {type: array}}",
	         "expected string, integer, number or boolean"},
	        {"{type: string, items: {type: string}}", "'items' applies to arrays only"},
	        {"{type: string, required: yes}", "boolean"},
	        {"{type: string, color: red}", "unknown key 'color'"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(buf, sizeof(buf), ACT("%s%s\n"), P, cases[i].schema);
		load_bad(buf, cases[i].want);
	}
	load_bad(ACT("          method: GET\n          path: /a\n"
	             "          query: {q: \"{1bad}\"}\n"),
	         "is not a parameter name");
	load_bad(ACT("          method: GET\n          path: /a/{l}\n"
	             "          parameters:\n            l: {type: array, items: {type: string}, "
	             "required: true}\n"),
	         "cannot be an array");
	load_bad(
	        ACT("          method: GET\n          path: /a\n"
	            "          headers: {X-L: \"{l}\"}\n"
	            "          parameters:\n            l: {type: array, items: {type: string}}\n"),
	        "a header cannot take an array");
	/* MCP servers. */
	load_bad(HDR "spec:\n  mcp_servers:\n    - name: a_b\n      url: https://x.example\n"
	             "      credential: k\n",
	         "letters, digits and '-'");
	load_bad(HDR "spec:\n  mcp_servers:\n    - name: a\n      url: https://x.example\n",
	         "'credential' is required");
	load_bad(HDR "spec:\n  mcp_servers:\n    - name: a\n      url: https://x.example\n"
	             "      credential: k\n    - name: a\n      url: https://y.example\n"
	             "      credential: k\n",
	         "MCP server 'a' is defined twice");
	load_bad(HDR "spec:\n  mcp_servers:\n    - name: a\n      url: https://x.example\n"
	             "      credential: k\n      tools: {\"bad tool\": {action: x}}\n",
	         "tool names are letters");
	/* YAML hostility is refused by the parser with a position. */
	load_bad(HDR "spec:\n  base_url: https://x.example\n  base_url: https://y.example\n"
	             "  resources: {}\n",
	         "t.yaml:");
}

static void
test_duplicates_across_files(void **state)
{
	(void)state;
	char *dir = aam_test_mkdtemp("aam-tools-cat");
	char p1[512], p2[512];
	snprintf(p1, sizeof(p1), "%s/a.yaml", dir);
	snprintf(p2, sizeof(p2), "%s/b.yml", dir);
	const char *doc = HDR "spec:\n  base_url: https://x.example\n  credential: k\n"
	                      "  resources:\n    a.b:\n      actions:\n        x: {method: GET, "
	                      "path: /x}\n";
	assert_int_equal(aam_test_write_file(p1, doc, strlen(doc), 0600), 0);
	/* Not a catalogue file: ignored. */
	char p3[512];
	snprintf(p3, sizeof(p3), "%s/notes.txt", dir);
	assert_int_equal(aam_test_write_file(p3, "x", 1, 0600), 0);
	const char *paths[] = {dir};
	struct gwt_catalog *c = NULL;
	struct aam_yaml_error e = {0};
	assert_int_equal(gwt_catalog_load(paths, 1, &c, &e), AAM_OK);
	assert_int_equal(gwt_catalog_resource_count(c), 1);
	gwt_catalog_free(c);
	assert_int_equal(aam_test_write_file(p2, doc, strlen(doc), 0600), 0);
	assert_int_equal(gwt_catalog_load(paths, 1, &c, &e), AAM_E_CONFIG);
	assert_non_null(strstr(e.msg, "defined twice"));
	assert_non_null(strstr(e.file, "b.yml"));
	const char *missing[] = {"/nonexistent/aam/tools"};
	assert_int_equal(gwt_catalog_load(missing, 1, &c, &e), AAM_E_NOTFOUND);
	aam_test_rmtree(dir);
	free(dir);
}

static void
test_names(void **state)
{
	(void)state;
	assert_true(gwt_resource_name_ok("salesforce.accounts"));
	assert_true(gwt_resource_name_ok("github.repos.issues"));
	assert_true(gwt_resource_name_ok("a_b-c"));
	assert_false(gwt_resource_name_ok(""));
	assert_false(gwt_resource_name_ok(".a"));
	assert_false(gwt_resource_name_ok("a."));
	assert_false(gwt_resource_name_ok("a..b"));
	assert_false(gwt_resource_name_ok("a/b"));
	assert_false(gwt_resource_name_ok("a b"));
	assert_false(gwt_resource_name_ok("*"));
	assert_true(gwt_action_name_ok("issues.create"));
	assert_true(gwt_action_name_ok("a:b-c_d"));
	assert_false(gwt_action_name_ok("a/b"));
	assert_false(gwt_action_name_ok(""));
	assert_false(gwt_action_name_ok("a%2fb"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_shipped_catalogues),
	        cmocka_unit_test(test_mcp_servers),
	        cmocka_unit_test(test_errors),
	        cmocka_unit_test(test_duplicates_across_files),
	        cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
