#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aam/err.h"
#include "common/buf.h"
#include "common/json.h"

static int
parse_str(const char *s, const struct aam_json_limits *lim, json_t **out,
          struct aam_json_error *err)
{
	return aam_json_parse(s, strlen(s), lim, out, err);
}

/* Parses S, expecting failure RC; returns nothing, checks *out stays NULL. */
static void
expect_fail(const char *s, size_t len, const struct aam_json_limits *lim, int rc,
            struct aam_json_error *err)
{
	json_t *j = json_null(); /* a non-NULL sentinel */
	assert_int_equal(aam_json_parse(s, len, lim, &j, err), rc);
	assert_null(j);
	assert_true(err->msg[0] != '\0');
}

static void
expect_fail_str(const char *s, const struct aam_json_limits *lim, int rc,
                struct aam_json_error *err)
{
	expect_fail(s, strlen(s), lim, rc, err);
}

static char *
repeat(const char *unit, size_t times, const char *tail)
{
	size_t u = strlen(unit), t = strlen(tail);
	char *s = malloc(u * times + t + 1);
	assert_non_null(s);
	for (size_t i = 0; i < times; i++)
		memcpy(s + i * u, unit, u);
	memcpy(s + u * times, tail, t + 1);
	return s;
}

static void
test_valid_documents(void **state)
{
	(void)state;
	struct aam_json_error err;
	json_t *j = NULL;
	const char *doc =
	        "{\"model\":\"reasoning-high\",\"n\":3,\"t\":0.5,\"stream\":false,"
	        "\"messages\":[{\"role\":\"user\",\"content\":\"h\\u00e9 \\ud83d\\ude00\"}],"
	        "\"meta\":null}";
	assert_int_equal(parse_str(doc, NULL, &j, &err), AAM_OK);
	assert_string_equal(err.msg, "");
	assert_true(json_is_object(j));
	assert_string_equal(json_string_value(json_object_get(j, "model")), "reasoning-high");
	json_t *m0 = json_array_get(json_object_get(j, "messages"), 0);
	assert_string_equal(json_string_value(json_object_get(m0, "content")),
	                    "h\xc3\xa9 \xf0\x9f\x98\x80");
	json_decref(j);

	/* Any JSON value may be a document (RFC 8259), with whitespace around. */
	static const char *scalars[] = {"1",    "-0.5e3",       "\"x\"", "true",
	                                "null", " \n[ ]\t\r\n", "{}"};
	for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++) {
		assert_int_equal(parse_str(scalars[i], NULL, &j, &err), AAM_OK);
		json_decref(j);
	}
	/* NULL limits and zeroed limits mean the same defaults. */
	struct aam_json_limits zero = {0};
	assert_int_equal(parse_str("[[1]]", &zero, &j, &err), AAM_OK);
	json_decref(j);
}

static void
test_depth_limit_boundary(void **state)
{
	(void)state;
	struct aam_json_error err;
	json_t *j = NULL;
	/* Exactly 64 levels pass with the default limit. */
	char *ok = repeat("[", 64, "");
	char *ok2 = malloc(129);
	memcpy(ok2, ok, 64);
	memset(ok2 + 64, ']', 64);
	ok2[128] = 0;
	assert_int_equal(parse_str(ok2, NULL, &j, &err), AAM_OK);
	json_decref(j);
	/* Level 65 is refused, and the position is that of the 65th bracket. */
	ok2[64] = '[';
	expect_fail(ok2, 128, NULL, AAM_E_TOOBIG, &err);
	assert_int_equal(err.offset, 64);
	assert_int_equal(err.line, 1);
	assert_int_equal(err.col, 65);
	assert_string_equal(err.msg, "line 1, column 65: nesting deeper than 64 levels");
	free(ok);
	free(ok2);

	/* Objects count the same as arrays, mixed with arrays, over lines. */
	struct aam_json_limits lim = {.max_depth = 3};
	assert_int_equal(parse_str("{\"a\":[{}]}", &lim, &j, &err), AAM_OK);
	json_decref(j);
	expect_fail_str("{\"a\":\n [{\"b\":{}}]}", &lim, AAM_E_TOOBIG, &err);
	assert_int_equal(err.line, 2);
	assert_int_equal(err.col, 8);
	assert_int_equal(err.offset, 13);
}

static void
test_depth_bomb_million(void **state)
{
	(void)state;
	struct aam_json_error err;
	const size_t n = 1000000;
	char *bomb = malloc(n);
	assert_non_null(bomb);
	memset(bomb, '[', n);
	clock_t t0 = clock();
	expect_fail(bomb, n, NULL, AAM_E_TOOBIG, &err);
	/* The pre-scan stops at the 65th bracket: no megabyte walk, no tree. */
	assert_int_equal(err.offset, 64);
	assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 0.5);

	/* The same bomb of objects. */
	char *obj = repeat("{\"a\":", n / 5, "1");
	expect_fail(obj, strlen(obj), NULL, AAM_E_TOOBIG, &err);
	assert_int_equal(err.offset, 64 * 5);
	free(obj);

	/* A bomb behind a long harmless prefix is still found, with the
	 * column counted from the line start. */
	memset(bomb, ' ', 1000);
	bomb[500] = '\n';
	expect_fail(bomb, n, NULL, AAM_E_TOOBIG, &err);
	assert_int_equal(err.line, 2);
	assert_int_equal(err.offset, 1064);
	assert_int_equal(err.col, 1064 - 500);
	free(bomb);
}

static void
test_depth_ignores_brackets_in_strings(void **state)
{
	(void)state;
	struct aam_json_error err;
	json_t *j = NULL;
	struct aam_json_limits lim = {.max_depth = 2};
	/* Brackets inside strings, after escaped quotes and backslashes. */
	const char *doc = "[\"[[[[{{{{\", \"\\\"[[[[\", \"\\\\\", {\"k[[[\": \"]]]]{{\"}]";
	assert_int_equal(parse_str(doc, &lim, &j, &err), AAM_OK);
	assert_int_equal(json_array_size(j), 4);
	json_decref(j);
	/* Closing brackets in a string do not lower the depth either. */
	expect_fail_str("[\"]]]]\",[[1]]]", &lim, AAM_E_TOOBIG, &err);
	assert_int_equal(err.offset, 9);
}

static void
test_size_limit(void **state)
{
	(void)state;
	struct aam_json_error err;
	json_t *j = NULL;
	struct aam_json_limits lim = {.max_bytes = 8};
	assert_int_equal(parse_str("[1,2,3] ", &lim, &j, &err), AAM_OK);
	json_decref(j);
	expect_fail_str("[1,2,3]  ", &lim, AAM_E_TOOBIG, &err);
	assert_string_equal(err.msg, "document larger than 8 bytes");
	/* Default 1 MiB limit. */
	size_t n = AAM_JSON_DEFAULT_MAX_BYTES + 1;
	char *big = malloc(n);
	memset(big, ' ', n);
	big[0] = '1';
	expect_fail(big, n, NULL, AAM_E_TOOBIG, &err);
	free(big);
	assert_int_equal(aam_json_parse(NULL, 3, NULL, &j, &err), AAM_E_INVAL);
	assert_int_equal(aam_json_parse("1", 1, NULL, NULL, &err), AAM_E_INVAL);
	/* An empty document is malformed, not a crash. */
	expect_fail_str("", NULL, AAM_E_PARSE, &err);
}

static void
test_string_limit(void **state)
{
	(void)state;
	struct aam_json_error err;
	json_t *j = NULL;
	struct aam_json_limits lim = {.max_string = 16};
	assert_int_equal(parse_str("[\"0123456789abcdef\"]", &lim, &j, &err), AAM_OK);
	json_decref(j);
	expect_fail_str("{\"a\":[1,\"0123456789abcdefg\"]}", &lim, AAM_E_TOOBIG, &err);
	assert_string_equal(err.path, "$.a[1]");
	assert_string_equal(err.msg, "$.a[1]: string longer than 16 bytes");
	assert_int_equal(err.line, 0);
	/* The limit is on decoded bytes: 16 escapes of 6 bytes each pass. */
	char *esc = repeat("\\u0041", 16, "\"");
	char doc[128];
	snprintf(doc, sizeof(doc), "\"%s", esc);
	free(esc);
	assert_int_equal(parse_str(doc, &lim, &j, &err), AAM_OK);
	assert_int_equal(json_string_length(j), 16);
	json_decref(j);
	/* Keys are limited too; the path names the object, not the key. */
	expect_fail_str("{\"x\":{\"0123456789abcdefX\":1}}", &lim, AAM_E_TOOBIG, &err);
	assert_string_equal(err.msg, "$.x: object key longer than 16 bytes");

	/* A huge string under the default limits: just over 1 MiB decoded. */
	struct aam_json_limits big = {.max_bytes = 4u * 1024 * 1024};
	size_t n = AAM_JSON_DEFAULT_MAX_STRING + 1;
	char *s = malloc(n + 3);
	s[0] = '"';
	memset(s + 1, 'x', n);
	s[n + 1] = '"';
	s[n + 2] = 0;
	expect_fail(s, n + 2, &big, AAM_E_TOOBIG, &err);
	assert_string_equal(err.path, "$");
	free(s);
}

static void
test_member_limit(void **state)
{
	(void)state;
	struct aam_json_error err;
	json_t *j = NULL;
	struct aam_json_limits lim = {.max_members = 3};
	assert_int_equal(parse_str("{\"a\":[1,2,3],\"b\":{},\"c\":0}", &lim, &j, &err), AAM_OK);
	json_decref(j);
	expect_fail_str("{\"a\":[1,2,3,4]}", &lim, AAM_E_TOOBIG, &err);
	assert_string_equal(err.msg, "$.a: array has more than 3 elements");
	expect_fail_str("[{\"a\":1,\"b\":2,\"c\":3,\"d\":4}]", &lim, AAM_E_TOOBIG, &err);
	assert_string_equal(err.msg, "$[0]: object has more than 3 members");
}

static void
test_duplicate_keys(void **state)
{
	(void)state;
	struct aam_json_error err;
	expect_fail_str("{\"a\":1,\"a\":2}", NULL, AAM_E_PARSE, &err);
	assert_non_null(strstr(err.msg, "duplicate"));
	assert_int_equal(err.line, 1);
	assert_true(err.col > 0);
	expect_fail_str("{\"x\":{\"b\":1,\n\"b\":1}}", NULL, AAM_E_PARSE, &err);
	assert_int_equal(err.line, 2);
	/* Same key in different objects is fine. */
	json_t *j = NULL;
	assert_int_equal(parse_str("[{\"a\":1},{\"a\":2}]", NULL, &j, &err), AAM_OK);
	json_decref(j);
}

static void
test_trailing_garbage(void **state)
{
	(void)state;
	struct aam_json_error err;
	static const char *bad[] = {"{} x",       "{}{}",  "1 2",          "[1]]",
	                            "\"a\"\"b\"", "null,", "{\"a\":1}\x00"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_fail(bad[i], strlen(bad[i]) + (i == 6), NULL, AAM_E_PARSE, &err);
	/* Other strictness: comments, single quotes, trailing commas, NaN. */
	static const char *lax[] = {"[1,]", "{\"a\":1,}", "['a']", "[1] // c", "[NaN]",
	                            "[01]", "[.5]",       "{a:1}", "[\"\t\"]"};
	for (size_t i = 0; i < sizeof(lax) / sizeof(lax[0]); i++)
		expect_fail(lax[i], strlen(lax[i]), NULL, AAM_E_PARSE, &err);
}

static void
test_invalid_utf8(void **state)
{
	(void)state;
	struct aam_json_error err;
	static const char *bad[] = {
	        "[\"\xff\"]",             /* never valid */
	        "[\"\xc0\xaf\"]",         /* overlong '/' */
	        "[\"\xed\xa0\x80\"]",     /* UTF-8-encoded surrogate */
	        "[\"\xe2\x82\"]",         /* truncated sequence */
	        "[\"\xf4\x90\x80\x80\"]", /* past U+10FFFF */
	        "{\"\x80\":1}",           /* in a key */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		expect_fail(bad[i], strlen(bad[i]), NULL, AAM_E_PARSE, &err);
		assert_int_equal(err.line, 1);
	}
}

static void
test_lone_surrogates_and_nul(void **state)
{
	(void)state;
	struct aam_json_error err;
	json_t *j = NULL;
	static const char *bad[] = {"[\"\\ud800\"]", "[\"\\udc00\"]", "[\"\\ud800\\u0041\"]",
	                            "[\"\\ud800x\"]", "[\"\\uDBFF\"]"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_fail(bad[i], strlen(bad[i]), NULL, AAM_E_PARSE, &err);
	assert_int_equal(parse_str("[\"\\ud83d\\ude00\"]", NULL, &j, &err), AAM_OK);
	json_decref(j);

	/* \u0000 only when allowed; a raw NUL byte never. */
	expect_fail_str("[\"a\\u0000b\"]", NULL, AAM_E_PARSE, &err);
	struct aam_json_limits lim = {.allow_nul = true};
	assert_int_equal(parse_str("{\"s\":\"a\\u0000b\"}", &lim, &j, &err), AAM_OK);
	assert_int_equal(json_string_length(json_object_get(j, "s")), 3);
	/* ...and the string getter still refuses to hand it out as a C string. */
	const char *s = NULL;
	assert_int_equal(aam_json_get_str(j, NULL, "s", AAM_JSON_REQUIRED, &s, &err), AAM_E_INVAL);
	assert_string_equal(err.msg, "$.s: string contains a NUL character");
	assert_null(s);
	json_decref(j);
	expect_fail("[\"a\0b\"]", 7, &lim, AAM_E_PARSE, &err);
}

static void
test_errors_never_quote_values(void **state)
{
	(void)state;
	struct aam_json_error err;
	static const char *bad[] = {
	        "{\"key\" \"sk-SECRET-1\"}",
	        "{\"key\": \"sk-SECRET-1\" \"x\"}",
	        "[\"sk-SECRET-1\\q\"]",
	        "[\"sk-SECRET-1",
	        "sk-SECRET-1",
	        /* jansson quotes an offending token of up to 20 bytes. */
	        "{\"key\": \"v\" \"sk-SECRET-1\"}",
	        "[\"sk-SECRET-1\\ud800\"]",
	        "[\"sk-SECRET-1\\u0000\"]",
	        "{\"sk-SECRET-1\":1,\"sk-SECRET-1\":2}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		expect_fail(bad[i], strlen(bad[i]), NULL, AAM_E_PARSE, &err);
		assert_null(strstr(err.msg, "SECRET"));
		assert_true(err.line > 0);
	}
	/* jansson's own position survives: "tru" on line 3. */
	expect_fail_str("{\n \"a\":\n   tru\n}", NULL, AAM_E_PARSE, &err);
	assert_int_equal(err.line, 3);
	assert_true(strncmp(err.msg, "line 3, column ", 15) == 0);
}

static void
test_getter_string_messages(void **state)
{
	(void)state;
	struct aam_json_error err;
	json_t *j = NULL;
	const char *doc = "{\"model\":5,\"messages\":[{},{},{},{\"role\":7,\"content\":\"hi\"}]}";
	assert_int_equal(parse_str(doc, NULL, &j, &err), AAM_OK);
	json_t *msgs = NULL;
	assert_int_equal(aam_json_get_array(j, NULL, "messages", AAM_JSON_REQUIRED, &msgs, &err),
	                 AAM_OK);
	char path[64];
	aam_json_path_index(path, sizeof(path), "$.messages", 3);
	assert_string_equal(path, "$.messages[3]");
	json_t *m3 = json_array_get(msgs, 3);
	const char *role = "default";
	assert_int_equal(aam_json_get_str(m3, path, "role", AAM_JSON_REQUIRED, &role, &err),
	                 AAM_E_INVAL);
	assert_string_equal(err.msg, "$.messages[3].role: expected string, got integer");
	assert_string_equal(err.path, "$.messages[3].role");
	assert_string_equal(role, "default");
	const char *content = NULL;
	assert_int_equal(aam_json_get_str(m3, path, "content", AAM_JSON_REQUIRED, &content, &err),
	                 AAM_OK);
	assert_string_equal(content, "hi");
	assert_string_equal(err.msg, "");

	/* Required and missing, at the root. */
	json_t *empty = json_array_get(msgs, 0);
	assert_int_equal(aam_json_get_str(empty, "$", "model", AAM_JSON_REQUIRED, &role, &err),
	                 AAM_E_INVAL);
	assert_string_equal(err.msg, "$.model: required field missing");
	/* Optional and missing: OK, the preset default is kept. */
	role = "user";
	assert_int_equal(aam_json_get_str(empty, NULL, "role", AAM_JSON_OPTIONAL, &role, &err),
	                 AAM_OK);
	assert_string_equal(role, "user");
	/* Optional but wrong type is still an error. */
	assert_int_equal(aam_json_get_str(j, NULL, "model", AAM_JSON_OPTIONAL, &role, &err),
	                 AAM_E_INVAL);
	assert_string_equal(err.msg, "$.model: expected string, got integer");
	/* The getter's object itself must be an object. */
	assert_int_equal(aam_json_get_str(msgs, "$.messages", "x", 0, &role, &err), AAM_E_INVAL);
	assert_string_equal(err.msg, "$.messages: expected object, got array");
	assert_int_equal(aam_json_get_str(j, NULL, NULL, 0, &role, &err), AAM_E_INVAL);
	json_decref(j);
}

static void
test_getter_str_max(void **state)
{
	(void)state;
	struct aam_json_error err;
	json_t *j = NULL;
	assert_int_equal(parse_str("{\"name\":\"abcdef\"}", NULL, &j, &err), AAM_OK);
	const char *s = NULL;
	assert_int_equal(aam_json_get_str_max(j, "$.metadata", "name", 1, 6, &s, &err), AAM_OK);
	assert_string_equal(s, "abcdef");
	s = NULL;
	assert_int_equal(aam_json_get_str_max(j, "$.metadata", "name", 1, 5, &s, &err),
	                 AAM_E_INVAL);
	assert_string_equal(err.msg, "$.metadata.name: string longer than 5 bytes");
	assert_null(s);
	json_decref(j);
}

static void
test_getter_int64(void **state)
{
	(void)state;
	struct aam_json_error err;
	json_t *j = NULL;
	const char *doc = "{\"a\":9223372036854775807,\"b\":-9223372036854775808,\"r\":1.0,"
	                  "\"e\":1e2,\"s\":\"5\",\"t\":true,\"n\":null,\"k\":42}";
	assert_int_equal(parse_str(doc, NULL, &j, &err), AAM_OK);
	int64_t v = 0;
	assert_int_equal(aam_json_get_int64(j, NULL, "a", 1, &v, &err), AAM_OK);
	assert_true(v == INT64_MAX);
	assert_int_equal(aam_json_get_int64(j, NULL, "b", 1, &v, &err), AAM_OK);
	assert_true(v == INT64_MIN);
	v = 7;
	assert_int_equal(aam_json_get_int64(j, NULL, "r", 1, &v, &err), AAM_E_INVAL);
	assert_string_equal(err.msg, "$.r: expected integer, got real");
	assert_int_equal(aam_json_get_int64(j, NULL, "e", 1, &v, &err), AAM_E_INVAL);
	assert_string_equal(err.msg, "$.e: expected integer, got real");
	assert_int_equal(aam_json_get_int64(j, NULL, "s", 1, &v, &err), AAM_E_INVAL);
	assert_string_equal(err.msg, "$.s: expected integer, got string");
	assert_int_equal(aam_json_get_int64(j, NULL, "t", 1, &v, &err), AAM_E_INVAL);
	assert_string_equal(err.msg, "$.t: expected integer, got boolean");
	assert_int_equal(v, 7);
	assert_int_equal(aam_json_get_int64_range(j, "$.spec", "k", 1, 1, 41, &v, &err),
	                 AAM_E_INVAL);
	assert_string_equal(err.msg, "$.spec.k: integer out of range [1, 41]");
	assert_int_equal(aam_json_get_int64_range(j, "$.spec", "k", 1, 42, 42, &v, &err), AAM_OK);
	assert_int_equal(v, 42);
	json_decref(j);
	/* Past int64: jansson refuses at parse time, with a position. */
	expect_fail_str("{\"a\":9223372036854775808}", NULL, AAM_E_PARSE, &err);
	assert_int_equal(err.line, 1);
}

static void
test_getter_bool_double_object_array(void **state)
{
	(void)state;
	struct aam_json_error err;
	json_t *j = NULL;
	const char *doc = "{\"b\":true,\"d\":0.25,\"i\":3,\"o\":{\"x\":[]},\"a\":[1],\"s\":\"x\"}";
	assert_int_equal(parse_str(doc, NULL, &j, &err), AAM_OK);
	bool b = false;
	assert_int_equal(aam_json_get_bool(j, NULL, "b", 1, &b, &err), AAM_OK);
	assert_true(b);
	assert_int_equal(aam_json_get_bool(j, NULL, "i", 1, &b, &err), AAM_E_INVAL);
	assert_string_equal(err.msg, "$.i: expected boolean, got integer");
	double d = 0;
	assert_int_equal(aam_json_get_double(j, NULL, "d", 1, &d, &err), AAM_OK);
	assert_true(d == 0.25);
	assert_int_equal(aam_json_get_double(j, NULL, "i", 1, &d, &err), AAM_OK);
	assert_true(d == 3.0);
	assert_int_equal(aam_json_get_double(j, NULL, "s", 1, &d, &err), AAM_E_INVAL);
	assert_string_equal(err.msg, "$.s: expected number, got string");
	json_t *o = NULL, *a = NULL;
	assert_int_equal(aam_json_get_object(j, NULL, "o", 1, &o, &err), AAM_OK);
	assert_int_equal(aam_json_get_array(o, "$.o", "x", 1, &a, &err), AAM_OK);
	assert_int_equal(json_array_size(a), 0);
	assert_int_equal(aam_json_get_object(j, NULL, "a", 1, &o, &err), AAM_E_INVAL);
	assert_string_equal(err.msg, "$.a: expected object, got array");
	assert_int_equal(aam_json_get_array(j, NULL, "o", 1, &a, &err), AAM_E_INVAL);
	assert_string_equal(err.msg, "$.o: expected array, got object");
	assert_int_equal(aam_json_get_array(j, NULL, "zz", 1, &a, &err), AAM_E_INVAL);
	assert_string_equal(err.msg, "$.zz: required field missing");
	json_decref(j);
}

static void
test_getter_nullable(void **state)
{
	(void)state;
	struct aam_json_error err;
	json_t *j = NULL;
	assert_int_equal(parse_str("{\"stop\":null}", NULL, &j, &err), AAM_OK);
	const char *s = "dflt";
	/* Strict by default: null is not a string. */
	assert_int_equal(aam_json_get_str(j, NULL, "stop", 0, &s, &err), AAM_E_INVAL);
	assert_string_equal(err.msg, "$.stop: expected string, got null");
	assert_int_equal(aam_json_get_str(j, NULL, "stop", AAM_JSON_NULLABLE, &s, &err), AAM_OK);
	assert_string_equal(s, "dflt");
	assert_int_equal(
	        aam_json_get_str(j, NULL, "stop", AAM_JSON_NULLABLE | AAM_JSON_REQUIRED, &s, &err),
	        AAM_E_INVAL);
	assert_string_equal(err.msg, "$.stop: required field is null");
	json_decref(j);
}

static void
test_paths_and_check_type(void **state)
{
	(void)state;
	char p[32];
	aam_json_path_key(p, sizeof(p), NULL, "model");
	assert_string_equal(p, "$.model");
	aam_json_path_key(p, sizeof(p), "$.a", "x-api-key");
	assert_string_equal(p, "$.a['x-api-key']");
	aam_json_path_key(p, sizeof(p), "$", "it's\n");
	assert_string_equal(p, "$['it\\'s\\u000a']");
	aam_json_path_key(p, sizeof(p), "$", "");
	assert_string_equal(p, "$['']");
	aam_json_path_key(p, sizeof(p), "$", "9lives");
	assert_string_equal(p, "$['9lives']");
	/* Too long: cut, marked, and still terminated. */
	aam_json_path_key(p, sizeof(p), "$", "abcdefghijklmnopqrstuvwxyz0123456789");
	assert_int_equal(strlen(p), sizeof(p) - 1);
	assert_string_equal(p + strlen(p) - 3, "...");
	aam_json_path_index(p, 8, "$.abcdefgh", 3);
	assert_string_equal(p, "$.ab...");

	struct aam_json_error err;
	json_t *v = json_integer(3);
	assert_int_equal(aam_json_check_type(v, "$.x[0]", JSON_INTEGER, &err), AAM_OK);
	assert_int_equal(aam_json_check_type(v, "$.x[0]", JSON_REAL, &err), AAM_OK);
	assert_int_equal(aam_json_check_type(v, "$.x[0]", JSON_OBJECT, &err), AAM_E_INVAL);
	assert_string_equal(err.msg, "$.x[0]: expected object, got integer");
	assert_int_equal(aam_json_check_type(NULL, NULL, JSON_STRING, &err), AAM_E_INVAL);
	assert_string_equal(err.msg, "$: expected string, got nothing");
	assert_int_equal(aam_json_check_type(v, NULL, JSON_TRUE, NULL), AAM_E_INVAL);
	json_decref(v);
}

static void
test_dump_buf(void **state)
{
	(void)state;
	json_t *j = json_pack("{s:i,s:[s,b],s:n}", "z", 1, "a", "x\"y", 1, "m");
	assert_non_null(j);
	struct aam_buf b;
	aam_buf_init(&b, 0);
	assert_int_equal(aam_json_dump_buf(j, &b, JSON_SORT_KEYS), AAM_OK);
	assert_string_equal(aam_buf_cstr(&b), "{\"a\":[\"x\\\"y\",true],\"m\":null,\"z\":1}");
	aam_buf_reset(&b);
	assert_int_equal(aam_json_dump_buf(j, &b, 0), AAM_OK);
	assert_string_equal(aam_buf_cstr(&b), "{\"z\":1,\"a\":[\"x\\\"y\",true],\"m\":null}");
	/* Scalars dump too. */
	aam_buf_reset(&b);
	json_t *s = json_string("\xc3\xa9");
	assert_int_equal(aam_json_dump_buf(s, &b, 0), AAM_OK);
	assert_string_equal(aam_buf_cstr(&b), "\"\xc3\xa9\"");
	json_decref(s);
	aam_buf_uninit(&b);
	/* Over the buffer's maximum: error and the length put back. */
	aam_buf_init(&b, 16);
	aam_buf_append_str(&b, "pre");
	assert_int_equal(aam_json_dump_buf(j, &b, 0), AAM_E_TOOBIG);
	assert_int_equal(b.len, 3);
	assert_string_equal(aam_buf_cstr(&b), "pre");
	aam_buf_uninit(&b);
	json_decref(j);
}

static void
test_error_body(void **state)
{
	(void)state;
	struct aam_buf b;
	aam_buf_init(&b, 0);
	assert_int_equal(
	        aam_json_error_body(&b, "invalid_request", "$.model: required field missing"),
	        AAM_OK);
	assert_string_equal(aam_buf_cstr(&b), "{\"error\":{\"code\":\"invalid_request\","
	                                      "\"message\":\"$.model: required field missing\"}}");
	aam_buf_reset(&b);
	/* Quotes, backslashes, controls, DEL, UTF-8 kept, invalid UTF-8 replaced. */
	const char *msg = "a\"b\\c\nd\te\x01\x7f \xc3\xa9 \xff\xc0\xaf \xed\xa0\x80 \xf0\x9f\x98";
	assert_int_equal(aam_json_error_body(&b, "x\"y", msg), AAM_OK);
	assert_string_equal(aam_buf_cstr(&b),
	                    "{\"error\":{\"code\":\"x\\\"y\",\"message\":\"a\\\"b\\\\c\\nd\\te"
	                    "\\u0001\\u007f \xc3\xa9 \\ufffd\\ufffd\\ufffd \\ufffd\\ufffd\\ufffd "
	                    "\\ufffd\\ufffd\\ufffd\"}}");
	/* The body is valid JSON and reads back through the strict parser. */
	json_t *j = NULL;
	struct aam_json_error err;
	assert_int_equal(aam_json_parse(b.data, b.len, NULL, &j, &err), AAM_OK);
	json_t *e = NULL;
	const char *code = NULL;
	assert_int_equal(aam_json_get_object(j, NULL, "error", 1, &e, &err), AAM_OK);
	assert_int_equal(aam_json_get_str(e, "$.error", "code", 1, &code, &err), AAM_OK);
	assert_string_equal(code, "x\"y");
	json_decref(j);
	aam_buf_uninit(&b);

	/* Too small a buffer: error, nothing half-written. */
	aam_buf_init(&b, 20);
	assert_int_equal(aam_json_error_body(&b, "c", "m"), AAM_E_TOOBIG);
	assert_int_equal(b.len, 0);
	aam_buf_uninit(&b);
	assert_int_equal(aam_json_error_body(&b, NULL, "m"), AAM_E_INVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_valid_documents),
	        cmocka_unit_test(test_depth_limit_boundary),
	        cmocka_unit_test(test_depth_bomb_million),
	        cmocka_unit_test(test_depth_ignores_brackets_in_strings),
	        cmocka_unit_test(test_size_limit),
	        cmocka_unit_test(test_string_limit),
	        cmocka_unit_test(test_member_limit),
	        cmocka_unit_test(test_duplicate_keys),
	        cmocka_unit_test(test_trailing_garbage),
	        cmocka_unit_test(test_invalid_utf8),
	        cmocka_unit_test(test_lone_surrogates_and_nul),
	        cmocka_unit_test(test_errors_never_quote_values),
	        cmocka_unit_test(test_getter_string_messages),
	        cmocka_unit_test(test_getter_str_max),
	        cmocka_unit_test(test_getter_int64),
	        cmocka_unit_test(test_getter_bool_double_object_array),
	        cmocka_unit_test(test_getter_nullable),
	        cmocka_unit_test(test_paths_and_check_type),
	        cmocka_unit_test(test_dump_buf),
	        cmocka_unit_test(test_error_body),
	};
	return cmocka_run_group_tests(tests, 0, 0);
}
