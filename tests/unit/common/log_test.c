#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "common/log.h"
#include "common/secret.h"

/* Captures log output in a temporary file and returns it as a string. */
static char captured[8192];

static FILE *
capture_begin(void)
{
	FILE *f = tmpfile();
	assert_non_null(f);
	aam_log_set_stream(f);
	aam_log_set_level(AAM_LOG_DEBUG);
	return f;
}

static const char *
capture_end(FILE *f)
{
	aam_log_set_stream(NULL);
	rewind(f);
	size_t n = fread(captured, 1, sizeof(captured) - 1, f);
	captured[n] = 0;
	fclose(f);
	return captured;
}

static void
test_fields_and_format(void **state)
{
	(void)state;
	FILE *f = capture_begin();
	aam_log(AAM_LOG_INFO, "vault.start", AAM_F_STR("socket", "/run/aam/vault.sock"),
	        AAM_F_INT("workers", -4), AAM_F_UINT("max", 18446744073709551615ULL));
	const char *out = capture_end(f);
	assert_non_null(strstr(out, " level=info event=vault.start "
	                            "socket=/run/aam/vault.sock workers=-4 "
	                            "max=18446744073709551615\n"));
	/* RFC 3339 UTC timestamp with microseconds leads the line. */
	assert_int_equal(out[4], '-');
	assert_int_equal(out[10], 'T');
	assert_int_equal(out[26], 'Z');
}

static void
test_no_fields(void **state)
{
	(void)state;
	FILE *f = capture_begin();
	aam_log(AAM_LOG_WARN, "plain");
	const char *out = capture_end(f);
	assert_non_null(strstr(out, " level=warn event=plain\n"));
}

static void
test_secret_is_redacted(void **state)
{
	(void)state;
	const char value[] = "sk-live-SUPERSECRET";
	aam_secret *s = aam_secret_from(value, sizeof(value) - 1);
	assert_non_null(s);
	FILE *f = capture_begin();
	aam_log(AAM_LOG_INFO, "secret.use", AAM_F_SECRET("value", s), AAM_F_STR("name", "openai"));
	const char *out = capture_end(f);
	assert_non_null(strstr(out, "value=[redacted] name=openai"));
	assert_null(strstr(out, "SUPERSECRET"));
	aam_secret_free(s);
}

static void
test_injection_is_escaped(void **state)
{
	(void)state;
	FILE *f = capture_begin();
	aam_log(AAM_LOG_INFO, "http.request", AAM_F_STR("path", "/x\nlevel=error event=forged"),
	        AAM_F_STR("q", "a \"b\""), AAM_F_STR("empty", ""), AAM_F_STR("k=v", "x"));
	const char *out = capture_end(f);
	/* One line only: the newline is escaped, the quote too. */
	assert_non_null(strchr(out, '\n'));
	assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
	assert_non_null(strstr(out, "path=\"/x\\nlevel=error event=forged\""));
	assert_non_null(strstr(out, "q=\"a \\\"b\\\"\""));
	assert_non_null(strstr(out, "empty=\"\""));
	assert_non_null(strstr(out, " k_v=x"));
}

static void
test_level_filter(void **state)
{
	(void)state;
	FILE *f = capture_begin();
	aam_log_set_level(AAM_LOG_WARN);
	aam_log(AAM_LOG_INFO, "hidden");
	aam_log(AAM_LOG_ERROR, "shown", AAM_F_ERR(AAM_E_TOOBIG));
	const char *out = capture_end(f);
	assert_null(strstr(out, "hidden"));
	assert_non_null(strstr(out, "event=shown error=payload_too_large"));
	assert_false(aam_log_enabled(AAM_LOG_INFO));
	assert_true(aam_log_enabled(AAM_LOG_WARN));
	assert_true(aam_log_enabled(AAM_LOG_ERROR));
	enum aam_log_level lvl;
	assert_int_equal(aam_log_parse_level("debug", &lvl), AAM_OK);
	assert_int_equal(lvl, AAM_LOG_DEBUG);
	assert_int_equal(aam_log_parse_level("verbose", &lvl), AAM_E_INVAL);
}

static void
test_long_line_truncated(void **state)
{
	(void)state;
	char *big = malloc(10000);
	assert_non_null(big);
	memset(big, 'a', 9999);
	big[9999] = 0;
	FILE *f = capture_begin();
	aam_log(AAM_LOG_INFO, "big", AAM_F_STR("v", big));
	const char *out = capture_end(f);
	size_t n = strlen(out);
	assert_true(n <= 4096);
	assert_non_null(strstr(out, " truncated=1\n"));
	free(big);
}

static void
test_err_codes_stable(void **state)
{
	(void)state;
	assert_string_equal(aam_err_code(AAM_OK), "ok");
	assert_string_equal(aam_err_code(AAM_E_AUDIT), "audit_unavailable");
	assert_string_equal(aam_err_code(AAM_E_DENIED), "policy_denied");
	assert_string_equal(aam_err_code(-1), "unknown_error");
	assert_string_equal(aam_err_code(AAM_E__MAX), "unknown_error");
	for (int i = 0; i < AAM_E__MAX; i++) {
		assert_string_not_equal(aam_err_code(i), "unknown_error");
		assert_string_not_equal(aam_strerror(i), "unknown error");
	}
	assert_string_equal(aam_strerror(12345), "unknown error");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_fields_and_format),
	        cmocka_unit_test(test_no_fields),
	        cmocka_unit_test(test_secret_is_redacted),
	        cmocka_unit_test(test_injection_is_escaped),
	        cmocka_unit_test(test_level_filter),
	        cmocka_unit_test(test_long_line_truncated),
	        cmocka_unit_test(test_err_codes_stable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
