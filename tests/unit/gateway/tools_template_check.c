/*
 * Parameter schemas and request templates: types and bounds, escaping of
 * path segments, query values and headers, and the refusals that keep a
 * parameter from changing where a request goes (path traversal) or what
 * it says (header injection).  Also the JCS digest of audit records.
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

static const char CAT[] =
        "apiVersion: access.envisionai.dev/v1\n"
        "kind: ToolCatalog\n"
        "metadata: {name: t}\n"
        "spec:\n"
        "  base_url: https://api.example.com/v1\n"
        "  credential: k\n"
        "  headers: {Accept: application/json}\n"
        "  resources:\n"
        "    files.items:\n"
        "      actions:\n"
        /* No patterns here: the template itself must refuse bad values. */
        "        read:\n"
        "          method: GET\n"
        "          path: /files/{owner}/{name}.json\n"
        "          query: {v: \"{version}\", tag: \"t-{tag}\", ids: \"{ids}\"}\n"
        "          headers: {If-Match: \"{etag}\", X-Trace: \"t={trace}\"}\n"
        "          parameters:\n"
        "            owner: {type: string, required: true}\n"
        "            name: {type: string, required: true}\n"
        "            version: {type: integer}\n"
        "            tag: {type: string}\n"
        "            ids: {type: array, items: {type: integer}, max_items: 3}\n"
        "            etag: {type: string}\n"
        "            trace: {type: string, max_length: 16}\n"
        "        write:\n"
        "          method: PUT\n"
        "          path: /files/{id}\n"
        "          body:\n"
        "            meta: {title: \"{title}\", size: \"{size}\", note: \"size={size}\"}\n"
        "            tags: \"{tags}\"\n"
        "            list: [\"{title}\", fixed, 3]\n"
        "            flag: \"{flag}\"\n"
        "            ratio: \"{ratio}\"\n"
        "          parameters:\n"
        "            id: {type: integer, required: true, min: 1, max: 1000000}\n"
        "            title: {type: string, min_length: 2, max_length: 5, pattern: \"[a-z]+\"}\n"
        "            size: {type: integer, min: 0, max: 100}\n"
        "            tags: {type: array, items: {type: string}}\n"
        "            flag: {type: boolean}\n"
        "            ratio: {type: number, min: -1.5, max: 1.5}\n"
        "            mode: {type: string, enum: [fast, slow]}\n"
        "            hint: {type: string}\n";

/* mode and hint are declared but unused above: that must be refused, so
 * the working catalogue uses them in a query. */
static struct gwt_catalog *CATALOG;

static int
setup(void **state)
{
	(void)state;
	char *text = NULL;
	/* Add a query using mode and hint to the write action. */
	if (asprintf(&text, "%s", CAT) < 0)
		return -1;
	const char *needle = "          body:\n";
	char *at = strstr(text, needle);
	char *fixed = NULL;
	if (asprintf(&fixed, "%.*s          query: {mode: \"{mode}\", hint: \"{hint}\"}\n%s",
	             (int)(at - text), text, at) < 0)
		return -1;
	free(text);
	struct aam_yaml_error e;
	int rc = gwt_catalog_load_buffer("t.yaml", fixed, strlen(fixed), &CATALOG, &e);
	free(fixed);
	if (rc != AAM_OK) {
		char line[600];
		aam_yaml_error_format(&e, line, sizeof(line));
		print_error("%s\n", line);
	}
	return rc;
}

static int
teardown(void **state)
{
	(void)state;
	gwt_catalog_free(CATALOG);
	return 0;
}

static json_t *
J(const char *s)
{
	json_error_t e;
	json_t *j = json_loads(s, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
	if (j == NULL)
		fail_msg("bad test JSON: %s", s);
	return j;
}

/* Renders ACTION with PARAMS (JSON text); expects success. */
static void
render_ok(const char *action, const char *params, struct gwt_request *r)
{
	const struct gwt_action *a = gwt_catalog_find(CATALOG, "files.items", action);
	assert_non_null(a);
	json_t *p = J(params);
	struct gwt_err e = {0};
	int rc = gwt_params_check(a, p, &e);
	if (rc != AAM_OK)
		fail_msg("params refused: %s: %s", e.code, e.msg);
	gwt_request_init(r);
	rc = gwt_render(a, p, r, &e);
	if (rc != AAM_OK)
		fail_msg("render refused: %s: %s", e.code, e.msg);
	json_decref(p);
}

/* Expects PARAMS refused, by the schema or the template, naming PARAM. */
static void
refused(const char *action, const char *params, const char *code, const char *param,
        const char *msg_part)
{
	const struct gwt_action *a = gwt_catalog_find(CATALOG, "files.items", action);
	json_t *p = J(params);
	struct gwt_err e = {0};
	int rc = gwt_params_check(a, p, &e);
	if (rc == AAM_OK) {
		struct gwt_request r;
		gwt_request_init(&r);
		rc = gwt_render(a, p, &r, &e);
		gwt_request_uninit(&r);
	}
	json_decref(p);
	if (rc == AAM_OK)
		fail_msg("accepted %s", params);
	assert_int_equal(rc, AAM_E_INVAL);
	assert_string_equal(e.code, code);
	if (param != NULL)
		assert_string_equal(e.param, param);
	if (strstr(e.msg, msg_part) == NULL)
		fail_msg("message \"%s\" lacks \"%s\"", e.msg, msg_part);
}

static const char *
header(const struct gwt_request *r, const char *name)
{
	for (size_t i = 0; i < r->nheaders; i++)
		if (strcmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	return NULL;
}

static void
test_render_get(void **state)
{
	(void)state;
	struct gwt_request r;
	render_ok("read",
	          "{\"owner\":\"ann e\",\"name\":\"r\u00e9sum\u00e9+v1\",\"version\":3,"
	          "\"tag\":\"a&b=c?d#e\",\"ids\":[1,2,3],\"etag\":\"W/\\\"x\\\"\"}",
	          &r);
	assert_string_equal(r.method, "GET");
	assert_string_equal(aam_buf_cstr(&r.url),
	                    "https://api.example.com/v1/files/ann%20e/r%C3%A9sum%C3%A9%2Bv1.json"
	                    "?v=3&tag=t-a%26b%3Dc%3Fd%23e&ids=1%2C2%2C3");
	assert_string_equal(header(&r, "Accept"), "application/json");
	assert_string_equal(header(&r, "If-Match"), "W/\"x\"");
	/* An absent parameter drops its header and query entries. */
	assert_null(header(&r, "X-Trace"));
	assert_int_equal(r.body.len, 0);
	gwt_request_uninit(&r);

	render_ok("read", "{\"owner\":\"a\",\"name\":\"b\",\"ids\":[],\"trace\":\"x\"}", &r);
	assert_string_equal(aam_buf_cstr(&r.url), "https://api.example.com/v1/files/a/b.json");
	assert_string_equal(header(&r, "X-Trace"), "t=x");
	gwt_request_uninit(&r);
}

static void
test_render_body(void **state)
{
	(void)state;
	struct gwt_request r;
	render_ok("write",
	          "{\"id\":7,\"title\":\"abc\",\"size\":10,\"tags\":[\"x\",\"y\"],\"flag\":false,"
	          "\"ratio\":0.25,\"mode\":\"fast\"}",
	          &r);
	assert_string_equal(r.method, "PUT");
	assert_string_equal(aam_buf_cstr(&r.url), "https://api.example.com/v1/files/7?mode=fast");
	/* Whole-value placeholders keep their JSON type; mixed text is a string. */
	assert_string_equal(aam_buf_cstr(&r.body),
	                    "{\"flag\":false,\"list\":[\"abc\",\"fixed\",3],\"meta\":{\"note\":"
	                    "\"size=10\",\"size\":10,\"title\":\"abc\"},\"ratio\":0.25,\"tags\":["
	                    "\"x\",\"y\"]}");
	assert_string_equal(header(&r, "Content-Type"), "application/json");
	gwt_request_uninit(&r);

	/* Absent parameters are left out of objects and arrays alike. */
	render_ok("write", "{\"id\":1}", &r);
	assert_string_equal(aam_buf_cstr(&r.body), "{\"list\":[\"fixed\",3],\"meta\":{}}");
	gwt_request_uninit(&r);

	/* A parameter's text is data in the body, never JSON syntax. */
	render_ok("write", "{\"id\":1,\"title\":\"ab\"}", &r);
	gwt_request_uninit(&r);
	render_ok("write", "{\"id\":1,\"hint\":\"\\\",\\\"admin\\\":true}\"}", &r);
	assert_null(strstr(aam_buf_cstr(&r.body), "admin"));
	assert_non_null(strstr(aam_buf_cstr(&r.url), "hint=%22%2C%22admin%22%3Atrue%7D"));
	gwt_request_uninit(&r);
}

static void
test_path_traversal(void **state)
{
	(void)state;
	const char *msg = "fills a path segment";
	refused("read", "{\"owner\":\"..\",\"name\":\"x\"}", "invalid_parameters", "owner", msg);
	refused("read", "{\"owner\":\".\",\"name\":\"x\"}", "invalid_parameters", "owner", msg);
	refused("read", "{\"owner\":\"\",\"name\":\"x\"}", "invalid_parameters", "owner", msg);
	refused("read", "{\"owner\":\"a/../../admin\",\"name\":\"x\"}", "invalid_parameters",
	        "owner", msg);
	refused("read", "{\"owner\":\"a/b\",\"name\":\"x\"}", "invalid_parameters", "owner", msg);
	refused("read", "{\"owner\":\"a\\\\..\\\\b\",\"name\":\"x\"}", "invalid_parameters",
	        "owner", msg);
	refused("read", "{\"owner\":\"a\\u0000b\",\"name\":\"x\"}", "invalid_parameters", "owner",
	        "without NUL");
	refused("read", "{\"owner\":\"a\\nb\",\"name\":\"x\"}", "invalid_parameters", "owner", msg);
	refused("read", "{\"owner\":\"a\\u007fb\",\"name\":\"x\"}", "invalid_parameters", "owner",
	        msg);
	/* Encoded forms stay data: '%' is escaped, so %2e%2e cannot turn into "..". */
	struct gwt_request r;
	render_ok("read", "{\"owner\":\"%2e%2e\",\"name\":\"%2f\"}", &r);
	assert_string_equal(aam_buf_cstr(&r.url),
	                    "https://api.example.com/v1/files/%252e%252e/%252f.json");
	gwt_request_uninit(&r);
	/* A lone dot is refused even next to literal text ("..json" would be harmless). */
	refused("read", "{\"owner\":\"a\",\"name\":\".\"}", "invalid_parameters", "name", msg);
	render_ok("read", "{\"owner\":\"a.b\",\"name\":\"...\"}", &r);
	assert_string_equal(aam_buf_cstr(&r.url), "https://api.example.com/v1/files/a.b/....json");
	gwt_request_uninit(&r);
}

static void
test_header_injection(void **state)
{
	(void)state;
	refused("read", "{\"owner\":\"a\",\"name\":\"b\",\"etag\":\"x\\r\\nX-Admin: 1\"}",
	        "invalid_parameters", "etag", "control characters");
	refused("read", "{\"owner\":\"a\",\"name\":\"b\",\"etag\":\"x\\nAuthorization: y\"}",
	        "invalid_parameters", "etag", "If-Match header");
	refused("read", "{\"owner\":\"a\",\"name\":\"b\",\"trace\":\"\\r\"}", "invalid_parameters",
	        "trace", "control characters");
	/* A tab is allowed in a header value; UTF-8 passes as is. */
	struct gwt_request r;
	render_ok("read", "{\"owner\":\"a\",\"name\":\"b\",\"etag\":\"x\\ty\"}", &r);
	assert_string_equal(header(&r, "If-Match"), "x\ty");
	gwt_request_uninit(&r);
}

static void
test_schema(void **state)
{
	(void)state;
	const char *w = "write";
	refused(w, "[]", "invalid_parameters", NULL, "JSON object");
	refused(w, "{}", "invalid_parameters", "id", "required");
	refused(w, "{\"id\":null}", "invalid_parameters", "id", "cannot be null");
	refused(w, "{\"id\":\"7\"}", "invalid_parameters", "id", "must be an integer");
	refused(w, "{\"id\":7.0}", "invalid_parameters", "id", "must be an integer");
	refused(w, "{\"id\":0}", "invalid_parameters", "id", "below its minimum");
	refused(w, "{\"id\":1000001}", "invalid_parameters", "id", "above its maximum");
	refused(w, "{\"id\":1,\"admin\":true}", "unknown_parameter", NULL, "no such parameter");
	refused(w, "{\"id\":1,\"title\":\"a\"}", "invalid_parameters", "title", "shorter than 2");
	refused(w, "{\"id\":1,\"title\":\"abcdef\"}", "invalid_parameters", "title",
	        "longer than 5");
	refused(w, "{\"id\":1,\"title\":\"ab1\"}", "invalid_parameters", "title", "pattern");
	refused(w, "{\"id\":1,\"title\":5}", "invalid_parameters", "title", "must be a string");
	refused(w, "{\"id\":1,\"flag\":1}", "invalid_parameters", "flag", "must be a boolean");
	refused(w, "{\"id\":1,\"ratio\":2}", "invalid_parameters", "ratio", "above its maximum");
	refused(w, "{\"id\":1,\"ratio\":-1.51}", "invalid_parameters", "ratio", "below");
	refused(w, "{\"id\":1,\"ratio\":\"1\"}", "invalid_parameters", "ratio", "must be a number");
	refused(w, "{\"id\":1,\"mode\":\"medium\"}", "invalid_parameters", "mode",
	        "allowed values");
	refused(w, "{\"id\":1,\"tags\":\"x\"}", "invalid_parameters", "tags", "must be an array");
	refused(w, "{\"id\":1,\"tags\":[1]}", "invalid_parameters", "tags", "item of parameter");
	refused("read", "{\"owner\":\"a\",\"name\":\"b\",\"ids\":[1,2,3,4]}", "invalid_parameters",
	        "ids", "more than 3 items");
	/* Strings are bounded by default (GWT_STRING_MAX code points), arrays too. */
	char *big = malloc(GWT_STRING_MAX + 64);
	memset(big, 'a', GWT_STRING_MAX + 1);
	char *doc = NULL;
	assert_true(asprintf(&doc, "{\"id\":1,\"hint\":\"%.*s\"}", GWT_STRING_MAX + 1, big) > 0);
	refused(w, doc, "invalid_parameters", "hint", "longer than 4096");
	free(doc);
	/* Exactly at the bound is fine; code points, not bytes, are counted. */
	struct gwt_request r;
	assert_true(asprintf(&doc, "{\"id\":1,\"hint\":\"%.*s\"}", GWT_STRING_MAX, big) > 0);
	render_ok(w, doc, &r);
	gwt_request_uninit(&r);
	free(doc);
	render_ok(w, "{\"id\":1,\"title\":\"ab\",\"hint\":\"\u00e9\u00e9\u00e9\"}", &r);
	gwt_request_uninit(&r);
	free(big);
	/* Invalid UTF-8 never gets this far: jansson refuses it at parse time. */
	assert_false(gwt_utf8_ok("\xc0\xaf", 2, NULL));
	assert_false(gwt_utf8_ok("\xed\xa0\x80", 3, NULL));
	size_t cps = 0;
	assert_true(gwt_utf8_ok("a\xc3\xa9\xf0\x9f\x98\x80", 7, &cps));
	assert_int_equal(cps, 3);
}

static void
test_url_bound(void **state)
{
	(void)state;
	/* Strings within their bounds can still not overflow the URL silently. */
	const struct gwt_action *a = gwt_catalog_find(CATALOG, "files.items", "read");
	char *v = malloc(4097);
	memset(v, '%', 4096);
	v[4096] = '\0';
	json_t *p = json_pack("{s:s, s:s, s:s}", "owner", v, "name", v, "tag", v);
	struct gwt_err e = {0};
	assert_int_equal(gwt_params_check(a, p, &e), AAM_OK);
	struct gwt_request r;
	gwt_request_init(&r);
	assert_int_equal(gwt_render(a, p, &r, &e), AAM_E_INVAL);
	assert_string_equal(e.code, "invalid_parameters");
	assert_non_null(strstr(e.msg, "URL would be too long"));
	gwt_request_uninit(&r);
	json_decref(p);
	free(v);
}

static void
test_pct_encode(void **state)
{
	(void)state;
	struct aam_buf b;
	aam_buf_init(&b, 1024);
	const char in[] = "aZ09-._~ /?#[]@!$&'()*+,;=%\x01\xff";
	assert_int_equal(gwt_pct_encode(&b, in, sizeof(in) - 1), AAM_OK);
	assert_string_equal(
	        aam_buf_cstr(&b),
	        "aZ09-._~%20%2F%3F%23%5B%5D%40%21%24%26%27%28%29%2A%2B%2C%3B%3D%25%01%FF");
	aam_buf_uninit(&b);
}

static void
jcs_is(const char *in, const char *want)
{
	json_t *j = J(in);
	struct aam_buf b;
	aam_buf_init(&b, 1 << 20);
	assert_int_equal(gwt_jcs(j, &b), AAM_OK);
	if (strcmp(aam_buf_cstr(&b), want) != 0)
		fail_msg("JCS of %s:\n got  %s\n want %s", in, aam_buf_cstr(&b), want);
	aam_buf_uninit(&b);
	json_decref(j);
}

static void
test_jcs(void **state)
{
	(void)state;
	/* RFC 8785 section 3.2.3's sorting example (UTF-16 code units). */
	jcs_is("{\"\\u20ac\":\"Euro Sign\",\"\\r\":\"Carriage Return\",\"\\ufb33\":\"Hebrew\","
	       "\"1\":\"One\",\"\\ud83d\\ude00\":\"Emoji: Grinning Face\",\"\\u0080\":\"Control\","
	       "\"\\u00f6\":\"Latin Small Letter O With Diaeresis\"}",
	       "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\xc2\x80\":\"Control\",\"\xc3\xb6\":"
	       "\"Latin Small Letter O With Diaeresis\",\"\xe2\x82\xac\":\"Euro Sign\","
	       "\"\xf0\x9f\x98\x80\":\"Emoji: Grinning Face\",\"\xef\xac\xb3\":\"Hebrew\"}");
	/* Numbers in ECMAScript form (RFC 8785 appendix B samples). */
	jcs_is("[1.0, 100, -0.0, 1e21, 1e20, 1e-7, 0.000001, 1.5e-7, 123.456, 4.5, 2e-3, "
	       "9007199254740993, 333333333.33333329, 1E30, -5e-324]",
	       "[1,100,0,1e+21,100000000000000000000,1e-7,0.000001,1.5e-7,123.456,4.5,0.002,"
	       "9007199254740992,333333333.3333333,1e+30,-5e-324]");
	jcs_is("{\"b\":[true,false,null],\"a\":{\"y\":\"\\u001f\\t\\\"/\",\"x\":\"\\u00e9\"}}",
	       "{\"a\":{\"x\":\"\xc3\xa9\",\"y\":\"\\u001f\\t\\\"/\"},\"b\":[true,false,null]}");
	char d1[65], d2[65], d3[65];
	json_t *a = J("{\"b\":1,\"a\":[1.50,\"x\"]}"), *b = J("{\"a\":[1.5,\"x\"],\"b\":1.0}");
	assert_int_equal(gwt_params_digest(a, d1), AAM_OK);
	assert_int_equal(gwt_params_digest(b, d2), AAM_OK);
	assert_string_equal(d1, d2);
	assert_int_equal(gwt_params_digest(NULL, d3), AAM_OK);
	/* SHA-256("{}") */
	assert_string_equal(d3, "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
	json_decref(a);
	json_decref(b);
}

static void
test_rate(void **state)
{
	(void)state;
	struct gwt_rate *r;
	assert_int_equal(gwt_rate_new(16, &r), AAM_OK);
	int64_t t = 1000000;
	unsigned retry = 0;
	for (int i = 0; i < 3; i++)
		assert_true(gwt_rate_take(r, "k", 3, t, &retry));
	assert_false(gwt_rate_take(r, "k", 3, t, &retry));
	assert_true(retry >= 19 && retry <= 21);
	/* Another key has its own bucket. */
	assert_true(gwt_rate_take(r, "other", 3, t, NULL));
	/* A third of a minute later one token is back, and only one. */
	assert_true(gwt_rate_take(r, "k", 3, t + 20000000, NULL));
	assert_false(gwt_rate_take(r, "k", 3, t + 20000000, NULL));
	/* No limit: always allowed. */
	assert_true(gwt_rate_take(r, "k", 0, t, NULL));
	/* A full table reuses full buckets instead of forgetting a spent one. */
	char key[32];
	for (int i = 0; i < 64; i++) {
		snprintf(key, sizeof(key), "n%d", i);
		gwt_rate_take(r, key, 1000, t + 20000000, NULL);
	}
	assert_false(gwt_rate_take(r, "k", 3, t + 20000000, NULL));
	gwt_rate_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_render_get),     cmocka_unit_test(test_render_body),
	        cmocka_unit_test(test_path_traversal), cmocka_unit_test(test_header_injection),
	        cmocka_unit_test(test_schema),         cmocka_unit_test(test_url_bound),
	        cmocka_unit_test(test_pct_encode),     cmocka_unit_test(test_jcs),
	        cmocka_unit_test(test_rate),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
