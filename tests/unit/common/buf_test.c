#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "common/buf.h"

static void
test_append_and_terminate(void **state)
{
	(void)state;
	struct aam_buf b;
	aam_buf_init(&b, 0);
	assert_int_equal(aam_buf_append_str(&b, "hello"), AAM_OK);
	assert_int_equal(aam_buf_printf(&b, " %d-%s", 42, "x"), AAM_OK);
	assert_int_equal(b.len, 10);
	assert_string_equal(aam_buf_cstr(&b), "hello 42-x");
	aam_buf_uninit(&b);
	assert_null(b.data);
}

static void
test_max_is_hard_and_sticky(void **state)
{
	(void)state;
	struct aam_buf b;
	aam_buf_init(&b, 8);
	assert_int_equal(aam_buf_append(&b, "12345678", 8), AAM_OK);
	assert_int_equal(aam_buf_append_byte(&b, '9'), AAM_E_TOOBIG);
	assert_true(aam_buf_failed(&b));
	/* Sticky: a later small append does not succeed. */
	assert_int_equal(aam_buf_append(&b, "", 0), AAM_E_TOOBIG);
	assert_int_equal(b.len, 8);
	assert_null(aam_buf_steal(&b, NULL));
	aam_buf_reset(&b);
	assert_false(aam_buf_failed(&b));
	aam_buf_uninit(&b);
}

static void
test_printf_over_max(void **state)
{
	(void)state;
	struct aam_buf b;
	aam_buf_init(&b, 4);
	assert_int_equal(aam_buf_printf(&b, "%s", "toolong"), AAM_E_TOOBIG);
	assert_int_equal(b.len, 0);
	aam_buf_uninit(&b);
}

static void
test_big_endian_and_consume(void **state)
{
	(void)state;
	struct aam_buf b;
	aam_buf_init(&b, 64);
	aam_buf_append_u16be(&b, 0x0102);
	aam_buf_append_u32be(&b, 0x03040506);
	aam_buf_append_u64be(&b, 0x0708090a0b0c0d0eULL);
	const uint8_t want[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
	assert_int_equal(b.len, sizeof(want));
	assert_memory_equal(b.data, want, sizeof(want));
	aam_buf_consume(&b, 6);
	assert_int_equal(b.len, 8);
	assert_int_equal(b.data[0], 7);
	aam_buf_consume(&b, 100);
	assert_int_equal(b.len, 0);
	size_t len = 99;
	uint8_t *p = aam_buf_steal(&b, &len);
	assert_non_null(p);
	assert_int_equal(len, 0);
	free(p);
	aam_buf_uninit(&b);
}

static void
test_growth_many_appends(void **state)
{
	(void)state;
	struct aam_buf b;
	aam_buf_init(&b, 1 << 20);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(aam_buf_append(&b, "abcdefghij", 10), AAM_OK);
	assert_int_equal(b.len, 100000);
	assert_int_equal(memcmp(b.data + 99990, "abcdefghij", 10), 0);
	aam_buf_uninit_wipe(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_append_and_terminate),
	        cmocka_unit_test(test_max_is_hard_and_sticky),
	        cmocka_unit_test(test_printf_over_max),
	        cmocka_unit_test(test_big_endian_and_consume),
	        cmocka_unit_test(test_growth_many_appends),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
