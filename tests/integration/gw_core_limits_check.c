/*
 * gateway/limits.c: the model path's rpm, tpm and max_parallel per key,
 * driven with an explicit clock (no sleeping).  End to end through the
 * daemon with the OpenAI SDK: tests/e2e/openai_sdk.test.mjs ("rate limits").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "aam/err.h"
#include "gateway/limits.h"

#define S(x) ((int64_t)(x)*1000000)

static void
test_max_parallel(void **state)
{
	(void)state;
	struct gw_limits *l = NULL;
	assert_int_equal(gw_limits_new(0, &l), AAM_OK);
	struct gw_limit_want w = {.max_parallel = 2};
	const char *which = NULL;
	assert_int_equal(gw_limits_enter(l, "a", &w, S(1), &which, NULL), AAM_OK);
	assert_int_equal(gw_limits_enter(l, "a", &w, S(1), &which, NULL), AAM_OK);
	assert_int_equal(gw_limits_enter(l, "a", &w, S(1), &which, NULL), AAM_E_BUSY);
	assert_string_equal(which, "max_parallel");
	/* Another key is counted apart. */
	assert_int_equal(gw_limits_enter(l, "b", &w, S(1), NULL, NULL), AAM_OK);
	gw_limits_leave(l, "a", &w, 0, S(2));
	assert_int_equal(gw_limits_enter(l, "a", &w, S(2), NULL, NULL), AAM_OK);
	gw_limits_free(l);
}

static void
test_rpm_refills_continuously(void **state)
{
	(void)state;
	struct gw_limits *l = NULL;
	assert_int_equal(gw_limits_new(0, &l), AAM_OK);
	struct gw_limit_want w = {.rpm = 3};
	for (int i = 0; i < 3; i++) {
		assert_int_equal(gw_limits_enter(l, "k", &w, S(10), NULL, NULL), AAM_OK);
		gw_limits_leave(l, "k", &w, 0, S(10));
	}
	const char *which = NULL;
	int64_t retry = 0;
	assert_int_equal(gw_limits_enter(l, "k", &w, S(10), &which, &retry), AAM_E_BUSY);
	assert_string_equal(which, "rpm");
	assert_true(retry >= 1 && retry <= 21);
	/* One call's worth comes back every 20 s. */
	assert_int_equal(gw_limits_enter(l, "k", &w, S(25), NULL, NULL), AAM_E_BUSY);
	assert_int_equal(gw_limits_enter(l, "k", &w, S(31), NULL, NULL), AAM_OK);
	gw_limits_free(l);
}

static void
test_tpm_charges_what_was_used(void **state)
{
	(void)state;
	struct gw_limits *l = NULL;
	assert_int_equal(gw_limits_new(0, &l), AAM_OK);
	struct gw_limit_want w = {.tpm = 100};
	assert_int_equal(gw_limits_enter(l, "t", &w, S(1), NULL, NULL), AAM_OK);
	/* One call may overdraw the bucket... */
	gw_limits_leave(l, "t", &w, 150, S(1));
	const char *which = NULL;
	int64_t retry = 0;
	/* ...and the debt holds the next ones back until the minute refills it. */
	assert_int_equal(gw_limits_enter(l, "t", &w, S(2), &which, &retry), AAM_E_BUSY);
	assert_string_equal(which, "tpm");
	assert_true(retry >= 1);
	assert_int_equal(gw_limits_enter(l, "t", &w, S(31), NULL, NULL), AAM_E_BUSY);
	assert_int_equal(gw_limits_enter(l, "t", &w, S(32), NULL, NULL), AAM_OK);
	gw_limits_leave(l, "t", &w, 0, S(32));
	/* A huge call leaves at most a minute of debt. */
	assert_int_equal(gw_limits_enter(l, "t", &w, S(100), NULL, NULL), AAM_OK);
	gw_limits_leave(l, "t", &w, 1000000, S(100));
	assert_int_equal(gw_limits_enter(l, "t", &w, S(159), NULL, NULL), AAM_E_BUSY);
	assert_int_equal(gw_limits_enter(l, "t", &w, S(161), NULL, NULL), AAM_OK);
	gw_limits_free(l);
}

static void
test_no_limits_and_capacity(void **state)
{
	(void)state;
	struct gw_limits *l = NULL;
	assert_int_equal(gw_limits_new(2, &l), AAM_OK);
	struct gw_limit_want none = {0}, w = {.rpm = 10};
	/* Nothing is tracked, or refused, without a limit. */
	for (int i = 0; i < 100; i++)
		assert_int_equal(gw_limits_enter(l, "free", &none, S(1), NULL, NULL), AAM_OK);
	assert_int_equal(gw_limits_enter(l, "x", &w, S(1), NULL, NULL), AAM_OK);
	assert_int_equal(gw_limits_enter(l, "y", &w, S(1), NULL, NULL), AAM_OK);
	/* Full: a third key is refused, never admitted without its limits. */
	const char *which = NULL;
	assert_int_equal(gw_limits_enter(l, "z", &w, S(2), &which, NULL), AAM_E_BUSY);
	assert_string_equal(which, "capacity");
	/* Keys idle for a minute make room; one with a call in flight stays. */
	gw_limits_leave(l, "x", &w, 0, S(2));
	assert_int_equal(gw_limits_enter(l, "z", &w, S(70), NULL, NULL), AAM_OK);
	assert_int_equal(gw_limits_enter(l, "q", &w, S(70), &which, NULL), AAM_E_BUSY);
	gw_limits_leave(l, "y", &w, 0, S(70));
	gw_limits_leave(l, "z", &w, 0, S(70));
	gw_limits_free(l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_max_parallel),
	        cmocka_unit_test(test_rpm_refills_continuously),
	        cmocka_unit_test(test_tpm_charges_what_was_used),
	        cmocka_unit_test(test_no_limits_and_capacity),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
