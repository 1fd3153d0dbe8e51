/*
 * The verifier's canonical-JSON record scanner: what RFC 8785 writes is
 * accepted, every other spelling of the same data is refused, and `seq`
 * and `time` are extracted exactly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "tools/audit-verify/av.h"

#define T "\"time\":\"2025-01-01T00:00:00.000000Z\""

static bool
ok(const char *line)
{
	struct av_record r;
	const char *why = NULL;
	bool res = av_jcs_record(line, strlen(line), &r, &why);
	if (!res)
		assert_non_null(why);
	return res;
}

static void
test_accepts_canonical(void **state)
{
	(void)state;
	const char *good[] = {
	        "{\"seq\":0," T "}",
	        "{\"a\":[],\"b\":{},\"c\":[1,\"x\",null,true,false,{\"d\":[[]]}],\"seq\":7," T "}",
	        "{\"n\":[0.5,-1.5,1e+21,1e-7,0.000001,123456789012345680000,-0.0125,5e-324],"
	        "\"seq\":1," T "}",
	        /* Escapes exactly as JCS writes them; '/' and DEL stay literal. */
	        "{\"s\":\"\\\"\\\\\\b\\f\\n\\r\\t\\u0000\\u001f/\x7f\",\"seq\":2," T "}",
	        /* UTF-16 order: U+1F600 (D83D DE00) sorts before U+FF61. */
	        "{\"seq\":3," T ",\"\xf0\x9f\x98\x80\":1,\"\xef\xbd\xa1\":2}",
	        "{\"seq\":9007199254740992,\"time\":\"2024-02-29T23:59:60.999999Z\"}",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!ok(good[i]))
			fail_msg("refused canonical record %zu: %s", i, good[i]);

	struct av_record r;
	const char *why;
	const char *line = "{\"a\":{\"seq\":5,\"time\":\"x\"},\"seq\":42,\"time\":"
	                   "\"2025-06-30T12:34:56.789012Z\",\"z\":1}";
	assert_true(av_jcs_record(line, strlen(line), &r, &why));
	assert_int_equal(r.seq, 42); /* the nested seq is not the record's */
	assert_string_equal(r.time, "2025-06-30T12:34:56.789012Z");
}

static void
test_refuses_other_spellings(void **state)
{
	(void)state;
	const char *bad[] = {
	        "{\"seq\": 0," T "}",          /* whitespace */
	        " {\"seq\":0," T "}",          /* leading space */
	        "{\"seq\":0," T "}\r",         /* CR of a CRLF line */
	        "{\"seq\":0," T "}{}",         /* trailing bytes */
	        "{" T ",\"seq\":0}",           /* unsorted */
	        "{\"seq\":0,\"seq\":0," T "}", /* duplicate */
	        "{\"seq\":3," T ",\"\xef\xbd\xa1\":2,\"\xf0\x9f\x98\x80\":1}", /* UTF-8 order */
	        "{\"s\":\"\\/\",\"seq\":0," T "}",                             /* escaped solidus */
	        "{\"s\":\"\\u0041\",\"seq\":0," T "}",                         /* needless \u */
	        "{\"s\":\"\\u000a\",\"seq\":0," T "}",                         /* \u for \n */
	        "{\"s\":\"\\u001F\",\"seq\":0," T "}",                         /* upper-case hex */
	        "{\"s\":\"a\tb\",\"seq\":0," T "}",         /* raw control char */
	        "{\"s\":\"\xc3\",\"seq\":0," T "}",         /* truncated UTF-8 */
	        "{\"s\":\"\xed\xa0\x80\",\"seq\":0," T "}", /* surrogate */
	        "{\"n\":1.0,\"seq\":0," T "}",
	        "{\"n\":1e21,\"seq\":0," T "}",
	        "{\"n\":1E+21,\"seq\":0," T "}",
	        "{\"n\":-0,\"seq\":0," T "}",
	        "{\"n\":01,\"seq\":0," T "}",
	        "{\"n\":0.10,\"seq\":0," T "}",
	        "{\"n\":1e-07,\"seq\":0," T "}",
	        "{\"n\":0.0000001,\"seq\":0," T "}",
	        "{\"n\":100000000000000000000000,\"seq\":0," T "}",
	        "{\"n\":9007199254740993,\"seq\":0," T "}", /* not a double */
	        "{\"n\":1e400,\"seq\":0," T "}",
	        "{\"n\":tru,\"seq\":0," T "}",
	        "{\"seq\":-1," T "}",
	        "{\"seq\":1.5," T "}",
	        "{\"seq\":\"1\"," T "}",
	        "{\"seq\":1e+21," T "}",
	        "{" T "}",
	        "{\"seq\":0}",
	        "{\"seq\":0,\"time\":\"2025-01-01T00:00:00Z\"}",
	        "{\"seq\":0,\"time\":\"2025-01-01T00:00:00.000Z\"}",
	        "{\"seq\":0,\"time\":\"2025-01-01 00:00:00.000000Z\"}",
	        "{\"seq\":0,\"time\":\"2025-01-01T00:00:00.000000+00:00\"}",
	        "{\"seq\":0,\"time\":\"2023-02-29T00:00:00.000000Z\"}",
	        "{\"seq\":0,\"time\":\"2025-04-31T00:00:00.000000Z\"}",
	        "{\"seq\":0,\"time\":\"2025-13-01T00:00:00.000000Z\"}",
	        "{\"seq\":0,\"time\":\"2025-01-01T24:00:00.000000Z\"}",
	        "{\"seq\":0,\"time\":\"2025-01-01T00:00:61.000000Z\"}",
	        "[{\"seq\":0," T "}]",
	        "",
	        "{",
	        "{\"seq\":0," T ",}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (ok(bad[i]))
			fail_msg("accepted non-canonical record %zu: %s", i, bad[i]);
}

static void
test_depth_limit(void **state)
{
	(void)state;
	char line[512];
	for (int depth = 60; depth <= 70; depth += 10) {
		size_t o = (size_t)snprintf(line, sizeof(line), "{\"a\":");
		for (int i = 0; i < depth; i++)
			line[o++] = '[';
		for (int i = 0; i < depth; i++)
			line[o++] = ']';
		o += (size_t)snprintf(line + o, sizeof(line) - o, ",\"seq\":0," T "}");
		assert_int_equal(ok(line), depth == 60);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_accepts_canonical),
	        cmocka_unit_test(test_refuses_other_spellings),
	        cmocka_unit_test(test_depth_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
