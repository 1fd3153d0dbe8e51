#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "aam/err.h"
#include "common/secret.h"

static void
test_copy_and_length(void **state)
{
	(void)state;
	aam_secret *s = aam_secret_from("hunter2", 7);
	assert_non_null(s);
	assert_int_equal(aam_secret_len(s), 7);
	assert_memory_equal(aam_secret_data(s), "hunter2", 7);
	assert_int_equal(aam_secret_set_len(s, 3), AAM_OK);
	assert_int_equal(aam_secret_len(s), 3);
	/* Shrinking wipes the tail. */
	assert_int_equal(aam_secret_data(s)[3], 0);
	assert_int_equal(aam_secret_set_len(s, 1u << 20), AAM_E_INVAL);
	aam_secret_free(s);
	aam_secret_free(NULL);
}

static void
test_limits(void **state)
{
	(void)state;
	assert_null(aam_secret_new(AAM_SECRET_MAX + 1));
	aam_secret *s = aam_secret_new(AAM_SECRET_MAX);
	assert_non_null(s);
	memset(aam_secret_data(s), 0x5a, AAM_SECRET_MAX);
	aam_secret_free(s);
	s = aam_secret_new(0);
	assert_non_null(s);
	assert_int_equal(aam_secret_len(s), 0);
	aam_secret_free(s);
}

/* The pages holding a secret are locked when the limit allows it. */
static void
test_locked_in_memory(void **state)
{
	(void)state;
	aam_secret *s = aam_secret_from("x", 1);
	assert_non_null(s);
	unsigned char vec[1];
	void *page = (void *)((uintptr_t)aam_secret_data(s) & ~(uintptr_t)4095);
	assert_int_equal(mincore(page, 1, vec), 0);
	assert_true(vec[0] & 1);
	aam_secret_free(s);
}

/*
 * Freed pages are kept for the next secret of the same size: what the next
 * secret gets must be wiped, locked, and as large as asked, whatever the
 * previous one held.
 */
static void
test_reused_pages_are_clean(void **state)
{
	(void)state;
	aam_secret *held[80];
	for (size_t i = 0; i < 80; i++) {
		held[i] = aam_secret_new(3000);
		assert_non_null(held[i]);
		memset(aam_secret_data(held[i]), 0xa5, 3000);
	}
	for (size_t i = 0; i < 80; i++)
		aam_secret_free(held[i]);
	for (size_t i = 0; i < 80; i++) {
		held[i] = aam_secret_new(100);
		assert_non_null(held[i]);
		assert_int_equal(aam_secret_len(held[i]), 100);
		/* The whole usable area is zero, not only the visible length. */
		assert_int_equal(aam_secret_set_len(held[i], 4000), AAM_OK);
		const uint8_t *d = aam_secret_data(held[i]);
		for (size_t j = 0; j < 4000; j++)
			assert_int_equal(d[j], 0);
		unsigned char vec[1];
		void *page = (void *)((uintptr_t)d & ~(uintptr_t)4095);
		assert_int_equal(mincore(page, 1, vec), 0);
		assert_true(vec[0] & 1);
	}
	for (size_t i = 0; i < 80; i++)
		aam_secret_free(held[i]);

	/* The largest sizes (the vault's 32 KiB scrub buffer) are kept and wiped too. */
	aam_secret *big = aam_secret_new(AAM_SECRET_MAX);
	assert_non_null(big);
	memset(aam_secret_data(big), 0x5a, AAM_SECRET_MAX);
	uint8_t *was = aam_secret_data(big);
	aam_secret_free(big);
	big = aam_secret_new(AAM_SECRET_MAX - 10);
	assert_non_null(big);
	assert_ptr_equal(aam_secret_data(big), was); /* the kept mapping, not a new one */
	assert_int_equal(aam_secret_set_len(big, AAM_SECRET_MAX), AAM_OK);
	for (size_t j = 0; j < AAM_SECRET_MAX; j++)
		assert_int_equal(aam_secret_data(big)[j], 0);
	aam_secret_free(big);
}

static void
test_wipe_and_ct_equal(void **state)
{
	(void)state;
	unsigned char buf[16];
	memset(buf, 0xff, sizeof(buf));
	aam_wipe(buf, sizeof(buf));
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0);
	assert_true(aam_ct_equal("abcd", "abcd", 4));
	assert_false(aam_ct_equal("abcd", "abce", 4));
	aam_wipe(NULL, 10);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_copy_and_length),
	        cmocka_unit_test(test_limits),
	        cmocka_unit_test(test_locked_in_memory),
	        cmocka_unit_test(test_reused_pages_are_clean),
	        cmocka_unit_test(test_wipe_and_ct_equal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
