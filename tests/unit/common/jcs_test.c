#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "aam/err.h"
#include "common/buf.h"
#include "common/jcs.h"

static double
from_bits(uint64_t bits)
{
	double d;
	memcpy(&d, &bits, sizeof(d));
	return d;
}

/* RFC 8785 Appendix B: IEEE 754 bit patterns and their JCS form. */
static void
test_number_table(void **state)
{
	(void)state;
	static const struct {
		uint64_t bits;
		const char *want;
	} t[] = {
	        {0x0000000000000000ULL, "0"},
	        {0x8000000000000000ULL, "0"},
	        {0x0000000000000001ULL, "5e-324"},
	        {0x8000000000000001ULL, "-5e-324"},
	        {0x7fefffffffffffffULL, "1.7976931348623157e+308"},
	        {0xffefffffffffffffULL, "-1.7976931348623157e+308"},
	        {0x4340000000000000ULL, "9007199254740992"},
	        {0xc340000000000000ULL, "-9007199254740992"},
	        {0x4430000000000000ULL, "295147905179352830000"},
	        {0x44b52d02c7e14af5ULL, "9.999999999999997e+22"},
	        {0x44b52d02c7e14af6ULL, "1e+23"},
	        {0x44b52d02c7e14af7ULL, "1.0000000000000001e+23"},
	        {0x444b1ae4d6e2ef4eULL, "999999999999999700000"},
	        {0x444b1ae4d6e2ef4fULL, "999999999999999900000"},
	        {0x444b1ae4d6e2ef50ULL, "1e+21"},
	        {0x3eb0c6f7a0b5ed8cULL, "9.999999999999997e-7"},
	        {0x3eb0c6f7a0b5ed8dULL, "0.000001"},
	        {0x41b3de4355555553ULL, "333333333.3333332"},
	        {0x41b3de4355555554ULL, "333333333.33333325"},
	        {0x41b3de4355555555ULL, "333333333.3333333"},
	        {0x41b3de4355555556ULL, "333333333.3333334"},
	        {0x41b3de4355555557ULL, "333333333.33333343"},
	        {0xbecbf647612f3696ULL, "-0.0000033333333333333333"},
	        {0x43143ff3c1cb0959ULL, "1424953923781206.2"},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char out[AAM_JCS_NUMBER_MAX];
		assert_int_equal(aam_jcs_number(from_bits(t[i].bits), out, sizeof(out)), AAM_OK);
		assert_string_equal(out, t[i].want);
	}
	/* Forms the audit records use. */
	const struct {
		double d;
		const char *want;
	} u[] = {{1.5, "1.5"},       {0.0125, "0.0125"},
	         {1e21, "1e+21"},    {1e-7, "1e-7"},
	         {100.0, "100"},     {0.1, "0.1"},
	         {-2.5, "-2.5"},     {123e18, "123000000000000000000"},
	         {1e-6, "0.000001"}, {4.5, "4.5"}};
	for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++) {
		char out[AAM_JCS_NUMBER_MAX];
		assert_int_equal(aam_jcs_number(u[i].d, out, sizeof(out)), AAM_OK);
		assert_string_equal(out, u[i].want);
	}
}

static void
test_nan_inf_refused(void **state)
{
	(void)state;
	char out[AAM_JCS_NUMBER_MAX];
	assert_int_equal(aam_jcs_number(from_bits(0x7fffffffffffffffULL), out, sizeof(out)),
	                 AAM_E_INVAL);
	assert_int_equal(aam_jcs_number(from_bits(0x7ff0000000000000ULL), out, sizeof(out)),
	                 AAM_E_INVAL);
	assert_int_equal(aam_jcs_number(-INFINITY, out, sizeof(out)), AAM_E_INVAL);
	assert_int_equal(aam_jcs_number(1.0, out, 4), AAM_E_INVAL); /* too small a buffer */
}

static char *
canon(const char *json, int *rc)
{
	json_error_t e;
	json_t *v = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
	assert_non_null(v);
	struct aam_buf b;
	aam_buf_init(&b, 1 << 20);
	*rc = aam_jcs_serialize(v, &b);
	json_decref(v);
	char *s = NULL;
	if (*rc == AAM_OK)
		s = strdup(aam_buf_cstr(&b));
	aam_buf_uninit(&b);
	return s;
}

/* RFC 8785 section 3.2.2's example. */
static void
test_rfc_example(void **state)
{
	(void)state;
	int rc;
	char *s = canon(
	        "{\n  \"numbers\": [333333333.33333329, 1E30, 4.50,\n"
	        "              2e-3, 0.000000000000000000000000001],\n"
	        "  \"string\": \"\\u20ac$\\u000F\\u000aA'\\u0042\\u0022\\u005c\\\\\\\"\\/\",\n"
	        "  \"literals\": [null, true, false]\n}",
	        &rc);
	assert_int_equal(rc, AAM_OK);
	assert_string_equal(s, "{\"literals\":[null,true,false],"
	                       "\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],"
	                       "\"string\":\"\xe2\x82\xac$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}");
	free(s);
}

/* RFC 8785 section 3.2.3: sorting by UTF-16 code units, not by UTF-8 bytes. */
static void
test_key_sorting(void **state)
{
	(void)state;
	int rc;
	char *s = canon("{\"\\u20ac\":\"Euro Sign\",\"\\r\":\"Carriage Return\","
	                "\"\\ufb33\":\"Hebrew Letter Dalet With Dagesh\",\"1\":\"One\","
	                "\"\\ud83d\\ude00\":\"Emoji: Grinning Face\",\"\\u0080\":\"Control\","
	                "\"\\u00f6\":\"Latin Small Letter O With Diaeresis\"}",
	                &rc);
	assert_int_equal(rc, AAM_OK);
	assert_string_equal(s, "{\"\\r\":\"Carriage Return\",\"1\":\"One\","
	                       "\"\xc2\x80\":\"Control\","
	                       "\"\xc3\xb6\":\"Latin Small Letter O With Diaeresis\","
	                       "\"\xe2\x82\xac\":\"Euro Sign\","
	                       "\"\xf0\x9f\x98\x80\":\"Emoji: Grinning Face\","
	                       "\"\xef\xac\xb3\":\"Hebrew Letter Dalet With Dagesh\"}");
	free(s);
	/* Prefixes sort first; nested objects are sorted too. */
	s = canon("{\"b\":{\"z\":1,\"a\":[{\"y\":0,\"x\":0}]},\"ab\":2,\"a\":3}", &rc);
	assert_int_equal(rc, AAM_OK);
	assert_string_equal(s, "{\"a\":3,\"ab\":2,\"b\":{\"a\":[{\"x\":0,\"y\":0}],\"z\":1}}");
	free(s);
	assert_true(aam_jcs_key_cmp("\xef\xac\xb3", 3, "\xf0\x9f\x98\x80", 4) > 0);
	assert_true(aam_jcs_key_cmp("a", 1, "ab", 2) < 0);
	assert_int_equal(aam_jcs_key_cmp("", 0, "", 0), 0);
}

static void
test_strings_escaped_minimally(void **state)
{
	(void)state;
	int rc;
	char *s =
	        canon("[\"\\u0000\\u0001\\b\\t\\n\\u000b\\f\\r\\u001f \\u007f/<>&\\u2028\"]", &rc);
	assert_int_equal(rc, AAM_OK);
	assert_string_equal(
	        s, "[\"\\u0000\\u0001\\b\\t\\n\\u000b\\f\\r\\u001f \x7f/<>&\xe2\x80\xa8\"]");
	free(s);
}

static void
test_integers(void **state)
{
	(void)state;
	int rc;
	char *s = canon("[0,-1,9007199254740992,-9007199254740992,1.0,-0.0,1e2]", &rc);
	assert_int_equal(rc, AAM_OK);
	assert_string_equal(s, "[0,-1,9007199254740992,-9007199254740992,1,0,100]");
	free(s);
	s = canon("[9007199254740993]", &rc);
	assert_int_equal(rc, AAM_E_INVAL);
	assert_null(s);
	s = canon("{\"a\":-9007199254740993}", &rc);
	assert_int_equal(rc, AAM_E_INVAL);
	assert_null(s);
}

static void
test_hostile(void **state)
{
	(void)state;
	/* Invalid UTF-8 built with _nocheck is refused. */
	json_t *v = json_object();
	json_object_set_new(v, "k", json_stringn_nocheck("\xc0\xaf", 2));
	struct aam_buf b;
	aam_buf_init(&b, 1024);
	assert_int_equal(aam_jcs_serialize(v, &b), AAM_E_INVAL);
	json_decref(v);
	aam_buf_reset(&b);
	v = json_real(NAN);
	assert_null(v); /* jansson itself refuses NaN */
	/* Too deep. */
	json_t *root = json_array(), *cur = root;
	for (int i = 0; i < AAM_JCS_MAX_DEPTH + 2; i++) {
		json_t *n = json_array();
		json_array_append_new(cur, n);
		cur = n;
	}
	assert_int_equal(aam_jcs_serialize(root, &b), AAM_E_INVAL);
	json_decref(root);
	/* Output bounded by the buffer's maximum. */
	aam_buf_uninit(&b);
	aam_buf_init(&b, 8);
	v = json_pack("{s:s}", "key", "a long value");
	assert_int_equal(aam_jcs_serialize(v, &b), AAM_E_TOOBIG);
	json_decref(v);
	aam_buf_uninit(&b);
	assert_int_equal(aam_jcs_serialize(NULL, NULL), AAM_E_INVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_number_table),
	        cmocka_unit_test(test_nan_inf_refused),
	        cmocka_unit_test(test_rfc_example),
	        cmocka_unit_test(test_key_sorting),
	        cmocka_unit_test(test_strings_escaped_minimally),
	        cmocka_unit_test(test_integers),
	        cmocka_unit_test(test_hostile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
