#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aam/err.h"
#include "common/buf.h"
#include "common/yaml.h"
#include "tests/lib/testutil.h"

static aam_yaml_stream *
parse_ok(const char *text)
{
	aam_yaml_stream *s = NULL;
	struct aam_yaml_error err;
	int rc = aam_yaml_parse("t.yaml", text, strlen(text), NULL, &s, &err);
	if (rc != AAM_OK) {
		char msg[600];
		aam_yaml_error_format(&err, msg, sizeof(msg));
		print_error("unexpected failure: %s\n", msg);
	}
	assert_int_equal(rc, AAM_OK);
	assert_non_null(s);
	return s;
}

/* Parses TEXT expecting failure RC at LINE:COL with SUBSTR in the message. */
static void
parse_fails(const char *text, size_t len, const struct aam_yaml_limits *lim, int rc, unsigned line,
            unsigned col, const char *substr)
{
	aam_yaml_stream *s = (aam_yaml_stream *)(uintptr_t)1;
	struct aam_yaml_error err;
	int got = aam_yaml_parse("bad.yaml", text, len, lim, &s, &err);
	if (got == AAM_OK)
		aam_yaml_stream_free(s);
	assert_int_equal(got, rc);
	assert_null(s);
	assert_string_equal(err.file, "bad.yaml");
	if (strstr(err.msg, substr) == NULL || err.line != line || err.col != col)
		print_error("got %u:%u: %s\n", err.line, err.col, err.msg);
	assert_non_null(strstr(err.msg, substr));
	assert_int_equal(err.line, line);
	assert_int_equal(err.col, col);
}

static const struct aam_yaml_node *
doc0(const aam_yaml_stream *s)
{
	assert_int_equal(aam_yaml_stream_count(s), 1);
	const struct aam_yaml_node *r = aam_yaml_stream_doc(s, 0);
	assert_non_null(r);
	return r;
}

static double
now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
test_positions(void **state)
{
	(void)state;
	aam_yaml_stream *s = parse_ok("# header\n"
	                              "name: demo\n"
	                              "list:\n"
	                              "  - one\n"
	                              "  -   two\n"
	                              "flow: {a: [1, 2], 'b': \"x\"}\n");
	const struct aam_yaml_node *r = doc0(s);
	assert_int_equal(r->type, AAM_YAML_MAP);
	assert_int_equal(r->n, 3);
	assert_int_equal(r->line, 2);
	assert_int_equal(r->col, 1);
	assert_string_equal(r->keys[0]->str, "name");
	assert_int_equal(r->keys[0]->line, 2);
	assert_int_equal(r->items[0]->col, 7);
	const struct aam_yaml_node *list = aam_yaml_map_get(r, "list");
	assert_non_null(list);
	assert_int_equal(list->type, AAM_YAML_SEQ);
	assert_int_equal(list->n, 2);
	assert_int_equal(list->line, 4);
	assert_int_equal(list->col, 3);
	assert_int_equal(list->items[1]->line, 5);
	assert_int_equal(list->items[1]->col, 7);
	assert_string_equal(list->items[1]->str, "two");
	const struct aam_yaml_node *flow = aam_yaml_map_get(r, "flow");
	assert_int_equal(flow->line, 6);
	assert_int_equal(flow->col, 7);
	const struct aam_yaml_node *a = aam_yaml_map_get(flow, "a");
	assert_int_equal(a->col, 11);
	assert_int_equal(a->items[1]->col, 15);
	const struct aam_yaml_node *b = aam_yaml_map_get(flow, "b");
	assert_int_equal(b->col, 24);
	assert_false(b->plain);
	assert_int_equal(b->len, 1);
	assert_null(aam_yaml_map_get(flow, "c"));
	assert_null(aam_yaml_map_get(list, "a")); /* not a map */
	assert_null(aam_yaml_map_get(NULL, "a"));
	aam_yaml_stream_free(s);
}

static void
test_multi_document(void **state)
{
	(void)state;
	aam_yaml_stream *s = parse_ok("a: 1\n"
	                              "---\n"
	                              "- x\n"
	                              "--- scalar\n"
	                              "...\n"
	                              "---\n"
	                              "b: {c: d}\n");
	assert_int_equal(aam_yaml_stream_count(s), 4);
	assert_string_equal(aam_yaml_stream_name(s), "t.yaml");
	assert_int_equal(aam_yaml_stream_doc(s, 0)->type, AAM_YAML_MAP);
	assert_int_equal(aam_yaml_stream_doc(s, 1)->type, AAM_YAML_SEQ);
	assert_int_equal(aam_yaml_stream_doc(s, 1)->line, 3);
	const struct aam_yaml_node *d2 = aam_yaml_stream_doc(s, 2);
	assert_int_equal(d2->type, AAM_YAML_SCALAR);
	assert_string_equal(d2->str, "scalar");
	assert_int_equal(d2->line, 4);
	assert_int_equal(d2->col, 5);
	assert_int_equal(aam_yaml_stream_doc(s, 3)->line, 7);
	assert_null(aam_yaml_stream_doc(s, 4));
	aam_yaml_stream_free(s);

	/* Anchors do not cross a document boundary. */
	const char *cross = "a: &x 1\n---\nb: *x\n";
	parse_fails(cross, strlen(cross), NULL, AAM_E_PARSE, 3, 4, "undefined alias '*x'");
}

static void
test_empty_documents(void **state)
{
	(void)state;
	aam_yaml_stream *s = parse_ok("");
	assert_int_equal(aam_yaml_stream_count(s), 0);
	assert_null(aam_yaml_stream_doc(s, 0));
	aam_yaml_stream_free(s);

	s = parse_ok("# only a comment\n\n");
	assert_int_equal(aam_yaml_stream_count(s), 0);
	aam_yaml_stream_free(s);

	s = parse_ok("---\n---\n...\n");
	assert_int_equal(aam_yaml_stream_count(s), 2);
	for (size_t i = 0; i < 2; i++) {
		const struct aam_yaml_node *d = aam_yaml_stream_doc(s, i);
		assert_int_equal(d->type, AAM_YAML_SCALAR);
		assert_true(aam_yaml_is_null(d));
		assert_int_equal(d->len, 0);
	}
	aam_yaml_stream_free(s);

	/* NULL data with zero length is an empty stream, not a crash. */
	struct aam_yaml_error err;
	assert_int_equal(aam_yaml_parse("x", NULL, 0, NULL, &s, &err), AAM_OK);
	assert_int_equal(aam_yaml_stream_count(s), 0);
	aam_yaml_stream_free(s);
	assert_int_equal(aam_yaml_parse("x", NULL, 5, NULL, &s, &err), AAM_E_INVAL);
}

static void
test_empty_collections(void **state)
{
	(void)state;
	/* Found by fuzzing: an empty collection before any other child. */
	const char *texts[] = {"[]", "{}", "[[], {}]", "a: []\nb: {}\n", "--- []\n--- {}\n"};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		aam_yaml_stream *s = parse_ok(texts[i]);
		const struct aam_yaml_node *r = aam_yaml_stream_doc(s, 0);
		assert_non_null(r);
		assert_true(r->type == AAM_YAML_SEQ || r->type == AAM_YAML_MAP);
		if (i < 2) {
			assert_int_equal(r->n, 0);
			assert_null(r->items);
			assert_null(r->keys);
		}
		json_t *j = NULL;
		struct aam_yaml_error err;
		assert_int_equal(aam_yaml_to_json(r, &j, &err, "t.yaml"), AAM_OK);
		json_decref(j);
		aam_yaml_stream_free(s);
	}
}

static void
test_plain_vs_quoted(void **state)
{
	(void)state;
	aam_yaml_stream *s = parse_ok("p: 123\n"
	                              "q: \"123\"\n"
	                              "t: 'true'\n"
	                              "n: \"null\"\n"
	                              "tagged: !!str 42\n"
	                              "ns: ! 42\n"
	                              "word: hello world\n");
	const struct aam_yaml_node *r = doc0(s);
	struct aam_yaml_error err;
	const char *str;
	int64_t i;
	bool b;

	const struct aam_yaml_node *p = aam_yaml_map_get(r, "p");
	assert_true(p->plain);
	assert_int_equal(aam_yaml_get_int64(p, "t.yaml", &i, &err), AAM_OK);
	assert_int_equal(i, 123);
	/* A plain number is not a string: typos cannot silently change types. */
	assert_int_equal(aam_yaml_get_str(p, "t.yaml", &str, &err), AAM_E_PARSE);
	assert_int_equal(err.line, 1);
	assert_int_equal(err.col, 4);
	assert_non_null(strstr(err.msg, "expected a string, got an integer"));
	assert_non_null(strstr(err.msg, "quote it"));

	const struct aam_yaml_node *q = aam_yaml_map_get(r, "q");
	assert_false(q->plain);
	assert_int_equal(aam_yaml_kind(q), AAM_YAML_K_STR);
	assert_int_equal(aam_yaml_get_str(q, "t.yaml", &str, &err), AAM_OK);
	assert_string_equal(str, "123");
	assert_int_equal(aam_yaml_get_int64(q, "t.yaml", &i, &err), AAM_E_PARSE);
	assert_non_null(strstr(err.msg, "expected an integer, got a string"));
	assert_int_equal(aam_yaml_get_bool(aam_yaml_map_get(r, "t"), "t.yaml", &b, &err),
	                 AAM_E_PARSE);
	assert_false(aam_yaml_is_null(aam_yaml_map_get(r, "n")));

	const struct aam_yaml_node *tg = aam_yaml_map_get(r, "tagged");
	assert_string_equal(tg->tag, "!!str");
	assert_true(tg->plain);
	assert_int_equal(aam_yaml_get_str(tg, "t.yaml", &str, &err), AAM_OK);
	assert_string_equal(str, "42");
	assert_int_equal(aam_yaml_kind(aam_yaml_map_get(r, "ns")), AAM_YAML_K_STR);
	assert_null(aam_yaml_map_get(r, "word")->tag);
	assert_int_equal(aam_yaml_get_str(aam_yaml_map_get(r, "word"), "t.yaml", &str, &err),
	                 AAM_OK);
	assert_string_equal(str, "hello world");

	/* A missing node is a clear error, not a crash. */
	assert_int_equal(aam_yaml_get_str(NULL, "t.yaml", &str, &err), AAM_E_INVAL);
	assert_string_equal(err.msg, "missing value");
	aam_yaml_stream_free(s);
}

static void
test_bool_core_schema(void **state)
{
	(void)state;
	aam_yaml_stream *s = parse_ok("[true, false, True, FALSE, yes, no, on, off, y, N, 1, "
	                              "tRUE]\n");
	const struct aam_yaml_node *r = doc0(s);
	const bool want[] = {true, false, true, false};
	struct aam_yaml_error err;
	bool b;
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(aam_yaml_get_bool(r->items[i], "t.yaml", &b, &err), AAM_OK);
		assert_int_equal(b, want[i]);
	}
	/* YAML 1.1 booleans are plain strings in the 1.2 core schema. */
	for (size_t i = 4; i < 10; i++) {
		assert_int_equal(aam_yaml_kind(r->items[i]), AAM_YAML_K_STR);
		assert_int_equal(aam_yaml_get_bool(r->items[i], "t.yaml", &b, &err), AAM_E_PARSE);
		assert_non_null(strstr(err.msg, "yes/no/on/off are strings"));
		assert_int_equal(err.line, 1);
	}
	assert_int_equal(err.col, 49); /* the 'N' */
	assert_int_equal(aam_yaml_get_bool(r->items[10], "t.yaml", &b, &err), AAM_E_PARSE);
	assert_non_null(strstr(err.msg, "got an integer"));
	assert_int_equal(aam_yaml_kind(r->items[11]), AAM_YAML_K_STR);
	aam_yaml_stream_free(s);
}

static void
test_int_getter(void **state)
{
	(void)state;
	aam_yaml_stream *s = parse_ok("- 0\n"
	                              "- -17\n"
	                              "- +42\n"
	                              "- 0o17\n"
	                              "- 0xFf\n"
	                              "- 9223372036854775807\n"
	                              "- -9223372036854775808\n"
	                              "- 0123\n"
	                              /* from here on: not valid int64 */
	                              "- 9223372036854775808\n"
	                              "- -9223372036854775809\n"
	                              "- 0x8000000000000000\n"
	                              "- 99999999999999999999999999\n"
	                              "- 1.5\n"
	                              "- 12abc\n"
	                              "- 0o8\n"
	                              "- !!int nope\n"
	                              "- [1]\n");
	const struct aam_yaml_node *r = doc0(s);
	const int64_t want[] = {0, -17, 42, 15, 255, INT64_MAX, INT64_MIN, 123};
	struct aam_yaml_error err;
	int64_t v;
	for (size_t i = 0; i < 8; i++) {
		assert_int_equal(aam_yaml_get_int64(r->items[i], "t.yaml", &v, &err), AAM_OK);
		assert_true(v == want[i]);
	}
	for (size_t i = 8; i < 12; i++) {
		assert_int_equal(aam_yaml_kind(r->items[i]), AAM_YAML_K_INT);
		assert_int_equal(aam_yaml_get_int64(r->items[i], "t.yaml", &v, &err), AAM_E_PARSE);
		assert_non_null(strstr(err.msg, "out of range"));
		assert_int_equal(err.line, i + 1);
		assert_int_equal(err.col, 3);
	}
	assert_int_equal(aam_yaml_get_int64(r->items[12], "t.yaml", &v, &err), AAM_E_PARSE);
	assert_non_null(strstr(err.msg, "got a float"));
	assert_int_equal(aam_yaml_get_int64(r->items[13], "t.yaml", &v, &err), AAM_E_PARSE);
	assert_non_null(strstr(err.msg, "got a string"));
	assert_int_equal(aam_yaml_kind(r->items[14]), AAM_YAML_K_STR);
	assert_int_equal(aam_yaml_get_int64(r->items[15], "t.yaml", &v, &err), AAM_E_PARSE);
	assert_non_null(strstr(err.msg, "malformed"));
	assert_int_equal(aam_yaml_get_int64(r->items[16], "t.yaml", &v, &err), AAM_E_PARSE);
	assert_non_null(strstr(err.msg, "got a sequence"));
	assert_int_equal(err.line, 17);
	aam_yaml_stream_free(s);
}

static void
test_float_getter(void **state)
{
	(void)state;
	aam_yaml_stream *s = parse_ok("[1.5, -2e3, .5, 7, +1., 1E-2, .inf, -.Inf, .nan, 1e999, "
	                              "'1.5', 1.2.3, ., e5, 75]\n");
	const struct aam_yaml_node *r = doc0(s);
	struct aam_yaml_error err;
	double d;
	const double want[] = {1.5, -2000.0, 0.5, 7.0, 1.0, 0.01};
	for (size_t i = 0; i < 6; i++) {
		assert_int_equal(aam_yaml_get_double(r->items[i], "t.yaml", &d, &err), AAM_OK);
		assert_true(fabs(d - want[i]) < 1e-12);
	}
	assert_int_equal(aam_yaml_get_double(r->items[6], "t.yaml", &d, &err), AAM_OK);
	assert_true(isinf(d) && d > 0);
	assert_int_equal(aam_yaml_get_double(r->items[7], "t.yaml", &d, &err), AAM_OK);
	assert_true(isinf(d) && d < 0);
	/* NaN would defeat any budget compared against it. */
	assert_int_equal(aam_yaml_get_double(r->items[8], "t.yaml", &d, &err), AAM_E_PARSE);
	assert_non_null(strstr(err.msg, "NaN"));
	assert_int_equal(aam_yaml_get_double(r->items[9], "t.yaml", &d, &err), AAM_E_PARSE);
	assert_non_null(strstr(err.msg, "out of range"));
	for (size_t i = 10; i < 14; i++) {
		assert_int_equal(aam_yaml_kind(r->items[i]), AAM_YAML_K_STR);
		assert_int_equal(aam_yaml_get_double(r->items[i], "t.yaml", &d, &err), AAM_E_PARSE);
	}
	assert_int_equal(aam_yaml_get_double(r->items[14], "t.yaml", &d, &err), AAM_OK);
	assert_true(d == 75.0);
	aam_yaml_stream_free(s);
}

static void
test_null(void **state)
{
	(void)state;
	aam_yaml_stream *s = parse_ok("a: ~\nb: null\nc: Null\nd: NULL\ne:\nf: 'null'\ng: nULL\n"
	                              "h: !!null ''\n");
	const struct aam_yaml_node *r = doc0(s);
	const char *nulls[] = {"a", "b", "c", "d", "e", "h"};
	for (size_t i = 0; i < 6; i++)
		assert_true(aam_yaml_is_null(aam_yaml_map_get(r, nulls[i])));
	assert_false(aam_yaml_is_null(aam_yaml_map_get(r, "f")));
	assert_false(aam_yaml_is_null(aam_yaml_map_get(r, "g")));
	assert_false(aam_yaml_is_null(NULL));
	assert_false(aam_yaml_is_null(r));
	struct aam_yaml_error err;
	const char *str;
	assert_int_equal(aam_yaml_get_str(aam_yaml_map_get(r, "e"), "t.yaml", &str, &err),
	                 AAM_E_PARSE);
	assert_non_null(strstr(err.msg, "got null"));
	assert_int_equal(err.line, 5);
	aam_yaml_stream_free(s);
}

/* Nine levels of nine-way aliases: 9^9 nodes if it were ever expanded. */
static void
build_laughs(struct aam_buf *b)
{
	aam_buf_init(b, 0);
	aam_buf_append_str(b, "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\","
	                      "\"lol\",\"lol\"]\n");
	for (char c = 'b'; c <= 'i'; c++) {
		aam_buf_printf(b, "%c: &%c [", c, c);
		for (int k = 0; k < 9; k++)
			aam_buf_printf(b, "%s*%c", k ? "," : "", c - 1);
		aam_buf_append_str(b, "]\n");
	}
	assert_false(aam_buf_failed(b));
}

static void
test_billion_laughs(void **state)
{
	(void)state;
	struct aam_buf b;
	build_laughs(&b);
	double t0 = now_seconds();
	/* a=10, b=91, c=820, d=7381, e=66430 nodes, 74740 in all before f's first alias,
	 * which would add another 66430. */
	parse_fails((const char *)b.data, b.len, NULL, AAM_E_TOOBIG, 6, 8,
	            "alias '*e' expands past the limit of 100000 nodes");
	assert_true(now_seconds() - t0 < 1.0);

	/* A lower limit stops it earlier, still at an alias. */
	struct aam_yaml_limits lim = {.max_nodes = 1000};
	parse_fails((const char *)b.data, b.len, &lim, AAM_E_TOOBIG, 4, 8,
	            "alias '*c' expands past");
	aam_buf_uninit(&b);
}

static void
test_aliases_share_nodes(void **state)
{
	(void)state;
	aam_yaml_stream *s = parse_ok("base: &b {x: 1, y: [2, 3]}\n"
	                              "copy: *b\n"
	                              "key: &k name\n"
	                              "m: {*k : v}\n");
	const struct aam_yaml_node *r = doc0(s);
	const struct aam_yaml_node *base = aam_yaml_map_get(r, "base");
	assert_ptr_equal(base, aam_yaml_map_get(r, "copy"));
	assert_int_equal(base->line, 1); /* an alias reports where its anchor is */
	const struct aam_yaml_node *m = aam_yaml_map_get(r, "m");
	assert_string_equal(aam_yaml_map_get(m, "name")->str, "v");

	/* Exactly at the node limit passes; one less fails. */
	aam_yaml_stream_free(s);
	const char *doc = "a: &a [1, 2, 3]\nb: [*a, *a]\n";
	/* root 1 + key a + seq 4 + key b + seq 1 + 2*4 = 16 */
	struct aam_yaml_limits lim = {.max_nodes = 16};
	struct aam_yaml_error err;
	assert_int_equal(aam_yaml_parse("x", doc, strlen(doc), &lim, &s, &err), AAM_OK);
	aam_yaml_stream_free(s);
	lim.max_nodes = 15;
	parse_fails(doc, strlen(doc), &lim, AAM_E_TOOBIG, 2, 9, "expands past the limit of 15");
}

static void
test_deep_nesting(void **state)
{
	(void)state;
	size_t n = 10000;
	char *deep = malloc(2 * n + 1);
	assert_non_null(deep);
	memset(deep, '[', n);
	memset(deep + n, ']', n);
	deep[2 * n] = '\0';
	double t0 = now_seconds();
	parse_fails(deep, 2 * n, NULL, AAM_E_TOOBIG, 1, 65, "nesting deeper than 64 levels");
	assert_true(now_seconds() - t0 < 1.0);

	/* 64 levels are fine, and the limit is adjustable. */
	memmove(deep + 64, deep + 2 * n - 64, 64);
	aam_yaml_stream *s = NULL;
	struct aam_yaml_error err;
	assert_int_equal(aam_yaml_parse("x", deep, 128, NULL, &s, &err), AAM_OK);
	aam_yaml_stream_free(s);
	struct aam_yaml_limits lim = {.max_depth = 10};
	parse_fails(deep, 128, &lim, AAM_E_TOOBIG, 1, 11, "nesting deeper than 10 levels");
	free(deep);

	/* Block style nests the same way. */
	struct aam_buf b;
	aam_buf_init(&b, 0);
	for (int i = 0; i < 100; i++)
		aam_buf_printf(&b, "%*sk%d:\n", i, "", i);
	parse_fails((const char *)b.data, b.len, NULL, AAM_E_TOOBIG, 65, 65, "nesting deeper");
	aam_buf_uninit(&b);
}

static void
test_alias_depth(void **state)
{
	(void)state;
	/* Each alias is shallow in the source but deep when expanded. */
	struct aam_buf b;
	aam_buf_init(&b, 0);
	aam_buf_append_str(&b, "a: &a ");
	for (int i = 0; i < 40; i++)
		aam_buf_append_byte(&b, '[');
	for (int i = 0; i < 40; i++)
		aam_buf_append_byte(&b, ']');
	aam_buf_append_str(&b, "\nb: [[[[[[[[[[[[[[[[[[[[[[[[[[*a]]]]]]]]]]]]]]]]]]]]]]]]]]\n");
	parse_fails((const char *)b.data, b.len, NULL, AAM_E_TOOBIG, 2, 30,
	            "alias '*a' nests deeper than 64 levels when expanded");
	aam_buf_uninit(&b);
}

static void
test_huge_scalar(void **state)
{
	(void)state;
	size_t n = 64 * 1024 + 1;
	char *text = malloc(n + 16);
	assert_non_null(text);
	memcpy(text, "k:\n  v: ", 8);
	memset(text + 8, 'x', n);
	text[8 + n] = '\n';
	parse_fails(text, n + 9, NULL, AAM_E_TOOBIG, 2, 6, "scalar longer than 65536 bytes");

	/* Exactly the limit is accepted. */
	aam_yaml_stream *s = NULL;
	struct aam_yaml_error err;
	assert_int_equal(aam_yaml_parse("x", text, n + 8, NULL, &s, &err), AAM_E_TOOBIG);
	text[8 + n - 1] = '\n';
	assert_int_equal(aam_yaml_parse("x", text, n + 8, NULL, &s, &err), AAM_OK);
	const struct aam_yaml_node *v = aam_yaml_map_get(aam_yaml_map_get(doc0(s), "k"), "v");
	assert_int_equal(v->len, 64 * 1024);
	aam_yaml_stream_free(s);
	free(text);

	/* Raised limits take a half-megabyte scalar. */
	n = 512 * 1024;
	text = malloc(n + 4);
	assert_non_null(text);
	text[0] = '"';
	memset(text + 1, 'y', n);
	text[n + 1] = '"';
	struct aam_yaml_limits lim = {.max_bytes = 2 * 1024 * 1024, .max_scalar = 1024 * 1024};
	assert_int_equal(aam_yaml_parse("x", text, n + 2, &lim, &s, &err), AAM_OK);
	assert_int_equal(doc0(s)->len, n);
	aam_yaml_stream_free(s);
	free(text);
}

static void
test_duplicate_keys(void **state)
{
	(void)state;
	const char *t1 = "a: 1\nb: 2\na: 3\n";
	parse_fails(t1, strlen(t1), NULL, AAM_E_PARSE, 3, 1, "duplicate key 'a' (first at line 1)");
	/* Quoting does not make a different key. */
	const char *t2 = "spec:\n  name: x\n  other: y\n  \"name\": z\n";
	parse_fails(t2, strlen(t2), NULL, AAM_E_PARSE, 4, 3,
	            "duplicate key 'name' (first at line 2)");
	const char *t3 = "{x: 1, y: 2, x: 3}";
	parse_fails(t3, strlen(t3), NULL, AAM_E_PARSE, 1, 14, "duplicate key 'x'");
	/* Hostile key bytes are not copied into the message as is. */
	const char *t4 = "\"\\e[31m\": 1\n\"\\e[31m\": 2\n";
	parse_fails(t4, strlen(t4), NULL, AAM_E_PARSE, 2, 1, "duplicate key '?[31m'");

	/* The same key in different mappings is fine. */
	aam_yaml_stream *s = parse_ok("a: {x: 1}\nb: {x: 2}\nc: [{x: 3}, {x: 4}]\n");
	aam_yaml_stream_free(s);
}

static void
test_many_keys_fast(void **state)
{
	(void)state;
	struct aam_buf b;
	aam_buf_init(&b, 0);
	for (int i = 0; i < 20000; i++)
		aam_buf_printf(&b, "k%d: &a%d %d\n", i, i, i);
	for (int i = 0; i < 20000; i++)
		aam_buf_printf(&b, "r%d: *a%d\n", i, i);
	double t0 = now_seconds();
	aam_yaml_stream *s = NULL;
	struct aam_yaml_error err;
	assert_int_equal(aam_yaml_parse("x", b.data, b.len, NULL, &s, &err), AAM_OK);
	assert_true(now_seconds() - t0 < 5.0);
	const struct aam_yaml_node *r = doc0(s);
	assert_int_equal(r->n, 40000);
	assert_string_equal(aam_yaml_map_get(r, "r19999")->str, "19999");
	aam_yaml_stream_free(s);
	aam_buf_uninit(&b);
}

static void
test_tabs(void **state)
{
	(void)state;
	const char *t = "server:\n\tlisten: 1\n";
	parse_fails(t, strlen(t), NULL, AAM_E_PARSE, 2, 1,
	            "found character that cannot start any token");
	parse_fails(t, strlen(t), NULL, AAM_E_PARSE, 2, 1, "tabs cannot be used for indentation");
	const char *t2 = "a:\n  b: 1\n  c:\n  \t- x\n";
	parse_fails(t2, strlen(t2), NULL, AAM_E_PARSE, 4, 3, "tabs cannot be used");
	/* A tab inside a value is just a character. */
	aam_yaml_stream *s = parse_ok("a: \"x\\ty\"\nb: 'p\tq'\n");
	assert_string_equal(aam_yaml_map_get(doc0(s), "b")->str, "p\tq");
	aam_yaml_stream_free(s);
}

static void
test_undefined_and_recursive_alias(void **state)
{
	(void)state;
	const char *t = "a: 1\nb: *nope\n";
	parse_fails(t, strlen(t), NULL, AAM_E_PARSE, 2, 4, "undefined alias '*nope'");
	const char *r = "a: &x [1, *x]\n";
	parse_fails(r, strlen(r), NULL, AAM_E_PARSE, 1, 11, "refers to a node that contains it");
	/* A redefined anchor: the latest definition wins, as YAML says. */
	aam_yaml_stream *s = parse_ok("a: &x 1\nb: &x 2\nc: *x\n");
	assert_string_equal(aam_yaml_map_get(doc0(s), "c")->str, "2");
	aam_yaml_stream_free(s);
}

static void
test_merge_key_refused(void **state)
{
	(void)state;
	const char *t = "base: &b {x: 1}\nderived:\n  <<: *b\n  y: 2\n";
	parse_fails(t, strlen(t), NULL, AAM_E_PARSE, 3, 3, "merge keys ('<<') are not supported");
	const char *t2 = "a: {!!merge m: 1}\n";
	parse_fails(t2, strlen(t2), NULL, AAM_E_PARSE, 1, 5, "merge keys");
	/* A quoted "<<" is only a string. */
	aam_yaml_stream *s = parse_ok("\"<<\": 1\n");
	assert_non_null(aam_yaml_map_get(doc0(s), "<<"));
	aam_yaml_stream_free(s);
}

static void
test_non_scalar_key(void **state)
{
	(void)state;
	const char *t1 = "? [a, b]\n: 1\n";
	parse_fails(t1, strlen(t1), NULL, AAM_E_PARSE, 1, 3, "mapping keys must be scalars");
	const char *t2 = "x: {{a: 1}: 2}\n";
	parse_fails(t2, strlen(t2), NULL, AAM_E_PARSE, 1, 5, "mapping keys must be scalars");
	const char *t3 = "x: &m {a: 1}\ny: {*m : 2}\n";
	parse_fails(t3, strlen(t3), NULL, AAM_E_PARSE, 2, 5, "mapping keys must be scalars");
}

static void
test_max_bytes(void **state)
{
	(void)state;
	const char *t = "a: 1\nb: 2\nc: 3\n";
	struct aam_yaml_limits lim = {.max_bytes = 8};
	/* The error points at the first byte past the limit. */
	parse_fails(t, strlen(t), &lim, AAM_E_TOOBIG, 2, 4, "larger than the limit of 8 bytes");
	aam_yaml_stream *s = NULL;
	struct aam_yaml_error err;
	lim.max_bytes = strlen(t);
	assert_int_equal(aam_yaml_parse("x", t, strlen(t), &lim, &s, &err), AAM_OK);
	aam_yaml_stream_free(s);
}

static void
test_max_docs(void **state)
{
	(void)state;
	const char *t = "--- 1\n--- 2\n--- 3\n";
	struct aam_yaml_limits lim = {.max_docs = 2};
	parse_fails(t, strlen(t), &lim, AAM_E_TOOBIG, 3, 1, "more than 2 documents");
}

static void
test_libyaml_errors_kept(void **state)
{
	(void)state;
	const char *t = "a: [1, 2\nb: 3\n";
	parse_fails(t, strlen(t), NULL, AAM_E_PARSE, 2, 2, "did not find expected ',' or ']'");
	parse_fails(t, strlen(t), NULL, AAM_E_PARSE, 2, 2,
	            "while parsing a flow sequence at line 1");
	const char *u = "a: \"\xff\xfe\"\n";
	parse_fails(u, strlen(u), NULL, AAM_E_PARSE, 1, 5, "invalid");
	/* A NUL inside a double-quoted scalar would truncate C strings. */
	const char *n = "a: \"x\\0y\"\n";
	parse_fails(n, strlen(n), NULL, AAM_E_PARSE, 1, 4, "NUL");
}

static void
test_file_errors(void **state)
{
	(void)state;
	char *dir = aam_test_mkdtemp("yamltest");
	char path[512];
	snprintf(path, sizeof(path), "%s/missing.yaml", dir);
	aam_yaml_stream *s = (aam_yaml_stream *)(uintptr_t)1;
	struct aam_yaml_error err;
	assert_int_equal(aam_yaml_parse_file(path, NULL, &s, &err), AAM_E_NOTFOUND);
	assert_null(s);
	char msg[600];
	aam_yaml_error_format(&err, msg, sizeof(msg));
	assert_non_null(strstr(msg, path));
	assert_non_null(strstr(msg, "No such file"));
	assert_int_equal(err.line, 0);

	assert_int_equal(aam_yaml_parse_file(dir, NULL, &s, &err), AAM_E_IO);
	assert_non_null(strstr(err.file, dir));

	/* A real file: parsed, named, and its size limit checked. */
	snprintf(path, sizeof(path), "%s/ok.yaml", dir);
	const char *text = "a: 1\nb: [x, y]\n";
	assert_int_equal(aam_test_write_file(path, text, strlen(text), 0600), 0);
	assert_int_equal(aam_yaml_parse_file(path, NULL, &s, &err), AAM_OK);
	assert_string_equal(aam_yaml_stream_name(s), path);
	assert_int_equal(aam_yaml_map_get(doc0(s), "b")->n, 2);
	aam_yaml_stream_free(s);
	struct aam_yaml_limits lim = {.max_bytes = 6};
	assert_int_equal(aam_yaml_parse_file(path, &lim, &s, &err), AAM_E_TOOBIG);
	assert_int_equal(err.line, 2);
	assert_int_equal(err.col, 2);
	aam_yaml_error_format(&err, msg, sizeof(msg));
	assert_non_null(strstr(msg, ":2:2: input is larger than the limit of 6 bytes"));

	/* A syntax error in a file names the file and the position. */
	snprintf(path, sizeof(path), "%s/bad.yaml", dir);
	assert_int_equal(aam_test_write_file(path, "a: 1\na: 2\n", 10, 0600), 0);
	assert_int_equal(aam_yaml_parse_file(path, NULL, &s, &err), AAM_E_PARSE);
	aam_yaml_error_format(&err, msg, sizeof(msg));
	char want[600];
	snprintf(want, sizeof(want), "%s:2:1: duplicate key 'a' (first at line 1)", path);
	assert_string_equal(msg, want);
	aam_test_rmtree(dir);
	free(dir);
}

static void
test_error_format(void **state)
{
	(void)state;
	struct aam_yaml_error e;
	char out[64];
	aam_yaml_error_set(&e, "f.yaml", 3, 7, "bad %s", "thing");
	aam_yaml_error_format(&e, out, sizeof(out));
	assert_string_equal(out, "f.yaml:3:7: bad thing");
	aam_yaml_error_set(&e, NULL, 0, 9, "no position");
	aam_yaml_error_format(&e, out, sizeof(out));
	assert_string_equal(out, "<input>: no position");
	assert_int_equal(e.col, 0);
	struct aam_yaml_node n = {.type = AAM_YAML_SCALAR, .line = 12, .col = 4};
	aam_yaml_error_at(&e, "p.yaml", &n, "value %d", 5);
	aam_yaml_error_format(&e, out, sizeof(out));
	assert_string_equal(out, "p.yaml:12:4: value 5");
	/* Truncation keeps the terminator. */
	char tiny[8];
	aam_yaml_error_format(&e, tiny, sizeof(tiny));
	assert_string_equal(tiny, "p.yaml:");
	aam_yaml_error_format(&e, tiny, 0); /* no write, no crash */
	aam_yaml_error_at(NULL, "x", &n, "ignored");
}

static void
test_to_json_round_trip(void **state)
{
	(void)state;
	aam_yaml_stream *s = parse_ok("apiVersion: access.envisionai.dev/v1\n"
	                              "kind: AgentPolicy\n"
	                              "spec:\n"
	                              "  models:\n"
	                              "    allow: [reasoning-high, summarization]\n"
	                              "    budget: { daily_usd: 75.5 }\n"
	                              "  tools:\n"
	                              "    - resource: &r salesforce.accounts\n"
	                              "      actions: [read, search]\n"
	                              "      again: *r\n"
	                              "  flags: {on: yes, off: false, none: ~, n: -3, q: '7'}\n");
	json_t *j = NULL;
	struct aam_yaml_error err;
	assert_int_equal(aam_yaml_to_json(doc0(s), &j, &err, "t.yaml"), AAM_OK);
	json_error_t jerr;
	json_t *want = json_loads(
	        "{\"apiVersion\":\"access.envisionai.dev/v1\",\"kind\":\"AgentPolicy\","
	        "\"spec\":{\"models\":{\"allow\":[\"reasoning-high\",\"summarization\"],"
	        "\"budget\":{\"daily_usd\":75.5}},"
	        "\"tools\":[{\"resource\":\"salesforce.accounts\",\"actions\":[\"read\","
	        "\"search\"],\"again\":\"salesforce.accounts\"}],"
	        "\"flags\":{\"on\":\"yes\",\"off\":false,\"none\":null,\"n\":-3,\"q\":\"7\"}}}",
	        0, &jerr);
	assert_non_null(want);
	assert_true(json_equal(j, want));
	json_decref(j);
	aam_yaml_stream_free(s);

	/* JSON is YAML: its own text comes back equal. */
	char *text = json_dumps(want, JSON_COMPACT);
	s = parse_ok(text);
	assert_int_equal(aam_yaml_to_json(doc0(s), &j, &err, "t.yaml"), AAM_OK);
	assert_true(json_equal(j, want));
	json_decref(j);
	aam_yaml_stream_free(s);
	free(text);
	json_decref(want);
}

static void
test_to_json_errors(void **state)
{
	(void)state;
	aam_yaml_stream *s = parse_ok("a: [1, .inf]\n"
	                              "b: {c: 99999999999999999999}\n"
	                              "d: !custom x\n"
	                              "e: !!binary aGk=\n"
	                              "f: !!int '12'\n");
	const struct aam_yaml_node *r = doc0(s);
	json_t *j = NULL;
	struct aam_yaml_error err;
	assert_int_equal(aam_yaml_to_json(aam_yaml_map_get(r, "a"), &j, &err, "t.yaml"),
	                 AAM_E_PARSE);
	assert_null(j);
	assert_int_equal(err.col, 8);
	assert_non_null(strstr(err.msg, "infinity"));
	assert_int_equal(aam_yaml_to_json(r, &j, &err, "t.yaml"), AAM_E_PARSE);
	assert_int_equal(err.line, 1);
	assert_int_equal(aam_yaml_to_json(aam_yaml_map_get(r, "b"), &j, &err, "t.yaml"),
	                 AAM_E_PARSE);
	assert_int_equal(err.line, 2);
	assert_int_equal(err.col, 8);
	assert_non_null(strstr(err.msg, "out of range"));
	assert_int_equal(aam_yaml_to_json(aam_yaml_map_get(r, "d"), &j, &err, "t.yaml"),
	                 AAM_E_PARSE);
	assert_non_null(strstr(err.msg, "unsupported tag '!custom'"));
	assert_int_equal(aam_yaml_kind(aam_yaml_map_get(r, "e")), AAM_YAML_K_OTHER);
	const char *str;
	assert_int_equal(aam_yaml_get_str(aam_yaml_map_get(r, "e"), "t.yaml", &str, &err),
	                 AAM_E_PARSE);
	/* An explicit !!int tag types even a quoted scalar. */
	assert_int_equal(aam_yaml_to_json(aam_yaml_map_get(r, "f"), &j, &err, "t.yaml"), AAM_OK);
	assert_true(json_is_integer(j) && json_integer_value(j) == 12);
	json_decref(j);
	assert_int_equal(aam_yaml_to_json(NULL, &j, &err, "t.yaml"), AAM_E_INVAL);
	aam_yaml_stream_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_positions),
	        cmocka_unit_test(test_multi_document),
	        cmocka_unit_test(test_empty_documents),
	        cmocka_unit_test(test_empty_collections),
	        cmocka_unit_test(test_plain_vs_quoted),
	        cmocka_unit_test(test_bool_core_schema),
	        cmocka_unit_test(test_int_getter),
	        cmocka_unit_test(test_float_getter),
	        cmocka_unit_test(test_null),
	        cmocka_unit_test(test_billion_laughs),
	        cmocka_unit_test(test_aliases_share_nodes),
	        cmocka_unit_test(test_deep_nesting),
	        cmocka_unit_test(test_alias_depth),
	        cmocka_unit_test(test_huge_scalar),
	        cmocka_unit_test(test_duplicate_keys),
	        cmocka_unit_test(test_many_keys_fast),
	        cmocka_unit_test(test_tabs),
	        cmocka_unit_test(test_undefined_and_recursive_alias),
	        cmocka_unit_test(test_merge_key_refused),
	        cmocka_unit_test(test_non_scalar_key),
	        cmocka_unit_test(test_max_bytes),
	        cmocka_unit_test(test_max_docs),
	        cmocka_unit_test(test_libyaml_errors_kept),
	        cmocka_unit_test(test_file_errors),
	        cmocka_unit_test(test_error_format),
	        cmocka_unit_test(test_to_json_round_trip),
	        cmocka_unit_test(test_to_json_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
