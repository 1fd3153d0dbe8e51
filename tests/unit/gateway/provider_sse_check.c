/* The SSE parser (gateway/sse.c): WHATWG line and field rules, limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "aam/err.h"
#include "gateway/sse.h"

/* Records events as "event|data|id\n" lines. */
struct rec {
	struct aam_buf log;
	struct aam_buf raw;
	int n;
	int fail_at; /* return an error on this event (1-based), 0 = never */
};

static int
rec_cb(void *ctx, const struct gw_sse_event *ev)
{
	struct rec *r = ctx;
	r->n++;
	aam_buf_printf(&r->log, "%s|%s|%s\n", ev->event, ev->data, ev->id);
	assert_int_equal(strlen(ev->data), ev->data_len);
	if (ev->raw)
		aam_buf_append(&r->raw, ev->raw, ev->raw_len);
	return r->fail_at == r->n ? AAM_E_PROTO : AAM_OK;
}

/* Parses S whole and byte by byte; both must log the same. */
static void
parse_both(const char *s, const char *want, int want_finish)
{
	for (int pass = 0; pass < 2; pass++) {
		struct rec r = {0};
		aam_buf_init(&r.log, 0);
		aam_buf_init(&r.raw, 0);
		struct gw_sse p;
		gw_sse_init(&p, 0, 0, true, rec_cb, &r);
		size_t n = strlen(s);
		if (pass == 0) {
			assert_int_equal(gw_sse_feed(&p, (const uint8_t *)s, n), AAM_OK);
		} else {
			for (size_t i = 0; i < n; i++)
				assert_int_equal(gw_sse_feed(&p, (const uint8_t *)s + i, 1),
				                 AAM_OK);
		}
		assert_string_equal(aam_buf_cstr(&r.log), want);
		assert_int_equal(gw_sse_finish(&p), want_finish);
		gw_sse_uninit(&p);
		aam_buf_uninit(&r.log);
		aam_buf_uninit(&r.raw);
	}
}

static void
test_basic_fields(void **state)
{
	(void)state;
	parse_both("event: a\ndata: x\nid: 7\n\ndata:y\n\n", "a|x|7\nmessage|y|7\n", AAM_OK);
}

static void
test_line_endings(void **state)
{
	(void)state;
	parse_both("data: a\r\ndata: b\r\rdata: c\r\n\r\n", "message|a\nb|\nmessage|c|\n", AAM_OK);
	/* CR at a chunk boundary followed by LF is one line end (checked by
	 * the byte-by-byte pass of parse_both). */
	parse_both("data: 1\r\n\r\ndata: 2\n\n", "message|1|\nmessage|2|\n", AAM_OK);
}

static void
test_comments_unknown_and_empty(void **state)
{
	(void)state;
	/* Comments, retry and unknown fields are ignored; a blank line with
	 * no data dispatches nothing; "data" without colon is an empty line
	 * of data; only one leading space is stripped. */
	parse_both(": keepalive\nretry: 10\nfoo: bar\n\nevent: e\n\ndata\ndata:  two\n\n",
	           "message|\n two|\n", AAM_OK);
}

static void
test_bom_skipped(void **state)
{
	(void)state;
	parse_both("\xEF\xBB\xBF"
	           "data: z\n\n",
	           "message|z|\n", AAM_OK);
}

static void
test_truncated(void **state)
{
	(void)state;
	parse_both("data: a\n\ndata: b\n", "message|a|\n", AAM_E_PARSE);
	parse_both("data: a\n\ndata: partial", "message|a|\n", AAM_E_PARSE);
}

static void
test_raw_bytes_kept(void **state)
{
	(void)state;
	struct rec r = {0};
	aam_buf_init(&r.log, 0);
	aam_buf_init(&r.raw, 0);
	struct gw_sse p;
	gw_sse_init(&p, 0, 0, true, rec_cb, &r);
	const char *s = ": c\r\ndata: a\r\n\r\nevent: x\ndata: b\n\n";
	assert_int_equal(gw_sse_feed(&p, (const uint8_t *)s, strlen(s)), AAM_OK);
	assert_string_equal(aam_buf_cstr(&r.raw), s);
	gw_sse_uninit(&p);
	aam_buf_uninit(&r.log);
	aam_buf_uninit(&r.raw);
}

static void
test_limits(void **state)
{
	(void)state;
	struct rec r = {0};
	aam_buf_init(&r.log, 0);
	aam_buf_init(&r.raw, 0);
	struct gw_sse p;
	gw_sse_init(&p, 16, 32, false, rec_cb, &r);
	/* A line of 17 bytes without end. */
	assert_int_equal(gw_sse_feed(&p, (const uint8_t *)"data: 0123456789ab", 18), AAM_E_TOOBIG);
	/* Sticky. */
	assert_int_equal(gw_sse_feed(&p, (const uint8_t *)"\n\n", 2), AAM_E_TOOBIG);
	assert_int_equal(gw_sse_finish(&p), AAM_E_TOOBIG);
	gw_sse_uninit(&p);

	/* Many short data lines exceeding the event limit. */
	gw_sse_init(&p, 16, 32, false, rec_cb, &r);
	int rc = AAM_OK;
	for (int i = 0; i < 20 && rc == AAM_OK; i++)
		rc = gw_sse_feed(&p, (const uint8_t *)"data: 0123456\n", 14);
	assert_int_equal(rc, AAM_E_TOOBIG);
	assert_int_equal(r.n, 0);
	gw_sse_uninit(&p);

	/* The default line limit: 1 MiB + 1 bytes fail, 1 MiB pass. */
	static uint8_t big[GW_SSE_MAX_LINE + 2];
	memset(big, 'a', sizeof(big));
	memcpy(big, "data:", 5);
	gw_sse_init(&p, 0, 0, false, rec_cb, &r);
	assert_int_equal(gw_sse_feed(&p, big, GW_SSE_MAX_LINE), AAM_OK);
	assert_int_equal(gw_sse_feed(&p, (const uint8_t *)"\n\n", 2), AAM_OK);
	assert_int_equal(r.n, 1);
	assert_int_equal(gw_sse_feed(&p, big, GW_SSE_MAX_LINE + 1), AAM_E_TOOBIG);
	gw_sse_uninit(&p);
	aam_buf_uninit(&r.log);
	aam_buf_uninit(&r.raw);
}

static void
test_callback_error_sticks(void **state)
{
	(void)state;
	struct rec r = {.fail_at = 1};
	aam_buf_init(&r.log, 0);
	aam_buf_init(&r.raw, 0);
	struct gw_sse p;
	gw_sse_init(&p, 0, 0, false, rec_cb, &r);
	assert_int_equal(gw_sse_feed(&p, (const uint8_t *)"data: a\n\ndata: b\n\n", 18),
	                 AAM_E_PROTO);
	assert_int_equal(r.n, 1);
	gw_sse_uninit(&p);
	aam_buf_uninit(&r.log);
	aam_buf_uninit(&r.raw);
}

static void
test_writer(void **state)
{
	(void)state;
	struct aam_buf b;
	aam_buf_init(&b, 0);
	gw_sse_write(&b, "ev", "a\nb\r\nc", 6);
	assert_string_equal(aam_buf_cstr(&b), "event: ev\ndata: a\ndata: b\ndata: c\n\n");
	aam_buf_reset(&b);
	gw_sse_write(&b, NULL, "x\n", 2);
	assert_string_equal(aam_buf_cstr(&b), "data: x\ndata: \n\n");
	/* What the writer writes, the parser reads back. */
	struct rec r = {0};
	aam_buf_init(&r.log, 0);
	aam_buf_init(&r.raw, 0);
	struct gw_sse p;
	gw_sse_init(&p, 0, 0, false, rec_cb, &r);
	assert_int_equal(gw_sse_feed(&p, b.data, b.len), AAM_OK);
	assert_string_equal(aam_buf_cstr(&r.log), "message|x\n|\n");
	aam_buf_reset(&b);
	json_t *j = json_pack("{s:s}", "k", "line1\nline2");
	gw_sse_write_json(&b, "t", j);
	json_decref(j);
	assert_string_equal(aam_buf_cstr(&b), "event: t\ndata: {\"k\":\"line1\\nline2\"}\n\n");
	gw_sse_uninit(&p);
	aam_buf_uninit(&r.log);
	aam_buf_uninit(&r.raw);
	aam_buf_uninit(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_basic_fields),
	        cmocka_unit_test(test_line_endings),
	        cmocka_unit_test(test_comments_unknown_and_empty),
	        cmocka_unit_test(test_bom_skipped),
	        cmocka_unit_test(test_truncated),
	        cmocka_unit_test(test_raw_bytes_kept),
	        cmocka_unit_test(test_limits),
	        cmocka_unit_test(test_callback_error_sticks),
	        cmocka_unit_test(test_writer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
