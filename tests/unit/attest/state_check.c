/*
 * attest/ttlmap (single-use expiring nonces and sessions) and
 * attest/ratelimit (token buckets of failed attempts per address).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "aam/err.h"
#include "attest/ratelimit.h"
#include "attest/ttlmap.h"

static int freed;

static void
count_free(void *p)
{
	freed++;
	free(p);
}

static void *
val(int v)
{
	int *p = malloc(sizeof(int));
	*p = v;
	return p;
}

static void
key(uint8_t k[32], int i)
{
	memset(k, 0, 32);
	memcpy(k, &i, sizeof(i));
	k[31] = (uint8_t)i;
}

static void
test_single_use(void **state)
{
	(void)state;
	freed = 0;
	struct attest_ttlmap *m = attest_ttlmap_new(8, count_free);
	uint8_t k[32];
	key(k, 1);
	assert_int_equal(attest_ttlmap_put(m, k, val(7), 160, 100), AAM_OK);
	void *x = val(8);
	assert_int_equal(attest_ttlmap_put(m, k, x, 160, 100), AAM_E_EXISTS);
	free(x); /* a refused value stays the caller's */
	int *v = attest_ttlmap_take(m, k, 101);
	assert_non_null(v);
	assert_int_equal(*v, 7);
	free(v);
	/* Taken once: gone. */
	assert_null(attest_ttlmap_take(m, k, 101));
	uint8_t other[32];
	key(other, 2);
	assert_null(attest_ttlmap_take(m, other, 101));
	assert_int_equal(attest_ttlmap_count(m, 101), 0);
	attest_ttlmap_free(m);
}

static void
test_expiry(void **state)
{
	(void)state;
	freed = 0;
	struct attest_ttlmap *m = attest_ttlmap_new(8, count_free);
	uint8_t k[32];
	key(k, 1);
	assert_int_equal(attest_ttlmap_put(m, k, val(1), 160, 100), AAM_OK);
	/* Exactly at expiry it is already dead, and its value was freed. */
	assert_null(attest_ttlmap_take(m, k, 160));
	assert_int_equal(freed, 1);
	/* An out-of-order expiry (a longer-lived entry before a shorter one). */
	uint8_t a[32], b[32];
	key(a, 2);
	key(b, 3);
	assert_int_equal(attest_ttlmap_put(m, a, val(2), 500, 200), AAM_OK);
	assert_int_equal(attest_ttlmap_put(m, b, val(3), 250, 200), AAM_OK);
	assert_null(attest_ttlmap_take(m, b, 260));
	int *v = attest_ttlmap_take(m, a, 260);
	assert_non_null(v);
	free(v);
	attest_ttlmap_free(m);
	assert_int_equal(freed, 2);
}

/* Full of live entries: refuse, never evict a live nonce; expired ones make room. */
static void
test_capacity(void **state)
{
	(void)state;
	freed = 0;
	struct attest_ttlmap *m = attest_ttlmap_new(4, count_free);
	uint8_t k[32];
	for (int i = 0; i < 4; i++) {
		key(k, 10 + i);
		assert_int_equal(attest_ttlmap_put(m, k, val(i), 160, 100), AAM_OK);
	}
	key(k, 99);
	void *x = val(99);
	assert_int_equal(attest_ttlmap_put(m, k, x, 160, 100), AAM_E_BUSY);
	free(x);
	key(k, 10);
	void *v = attest_ttlmap_take(m, k, 120);
	assert_non_null(v);
	free(v);
	key(k, 99);
	assert_int_equal(attest_ttlmap_put(m, k, val(99), 300, 120), AAM_OK);
	key(k, 100);
	x = val(100);
	assert_int_equal(attest_ttlmap_put(m, k, x, 300, 120), AAM_E_BUSY);
	free(x);
	/* Time passes: the first ones expire and make room. */
	assert_int_equal(attest_ttlmap_put(m, k, val(100), 300, 170), AAM_OK);
	assert_int_equal(attest_ttlmap_count(m, 170), 2);
	attest_ttlmap_free(m);
	assert_int_equal(freed, 5);
}

struct race {
	struct attest_ttlmap *m;
	uint8_t k[32];
	int wins;
};

static void *
race_take(void *arg)
{
	struct race *r = arg;
	void *v = attest_ttlmap_take(r->m, r->k, 1);
	if (v != NULL) {
		__atomic_add_fetch(&r->wins, 1, __ATOMIC_SEQ_CST);
		free(v);
	}
	return NULL;
}

/* Many threads race for one nonce: exactly one gets it. */
static void
test_concurrent_take(void **state)
{
	(void)state;
	for (int round = 0; round < 20; round++) {
		struct race r = {.m = attest_ttlmap_new(16, free)};
		RAND_bytes(r.k, sizeof(r.k));
		assert_int_equal(attest_ttlmap_put(r.m, r.k, val(1), 100, 0), AAM_OK);
		pthread_t t[8];
		for (int i = 0; i < 8; i++)
			pthread_create(&t[i], NULL, race_take, &r);
		for (int i = 0; i < 8; i++)
			pthread_join(t[i], NULL);
		assert_int_equal(r.wins, 1);
		attest_ttlmap_free(r.m);
	}
}

static void
test_bad_args(void **state)
{
	(void)state;
	assert_null(attest_ttlmap_new(0, NULL));
	assert_null(attest_ttlmap_new((1u << 22) + 1, NULL));
	assert_null(attest_ratelimit_new(8, 1, 1));
	assert_null(attest_ratelimit_new(64, 0, 1));
	assert_null(attest_ratelimit_new(64, 1, 0.5));
	attest_ttlmap_free(NULL);
	attest_ratelimit_free(NULL);
}

static void
test_ratelimit_burst_and_refill(void **state)
{
	(void)state;
	struct attest_ratelimit *rl = attest_ratelimit_new(64, 0.5, 3);
	const char *a = "192.0.2.1", *b = "192.0.2.2";
	for (int i = 0; i < 3; i++) {
		assert_true(attest_ratelimit_allowed(rl, a, 10.0));
		attest_ratelimit_fail(rl, a, 10.0);
	}
	assert_false(attest_ratelimit_allowed(rl, a, 10.0));
	/* Another address is not affected. */
	assert_true(attest_ratelimit_allowed(rl, b, 10.0));
	/* 0.5 tokens/s: one attempt again after 2 s, not after 1 s. */
	assert_false(attest_ratelimit_allowed(rl, a, 11.0));
	assert_true(attest_ratelimit_allowed(rl, a, 12.0));
	attest_ratelimit_fail(rl, a, 12.0);
	assert_false(attest_ratelimit_allowed(rl, a, 12.5));
	/* Refill stops at the burst. */
	assert_true(attest_ratelimit_allowed(rl, a, 1000.0));
	for (int i = 0; i < 3; i++)
		attest_ratelimit_fail(rl, a, 1000.0);
	assert_false(attest_ratelimit_allowed(rl, a, 1000.0));
	attest_ratelimit_free(rl);
}

/* A flood of addresses cannot grow the table, and the limiter keeps working. */
static void
test_ratelimit_bounded(void **state)
{
	(void)state;
	struct attest_ratelimit *rl = attest_ratelimit_new(16, 0.001, 2);
	char addr[64];
	for (int i = 0; i < 10000; i++) {
		snprintf(addr, sizeof(addr), "2001:db8::%x", i);
		attest_ratelimit_fail(rl, addr, 1.0 + i * 1e-6);
	}
	attest_ratelimit_fail(rl, "198.51.100.7", 2.0);
	attest_ratelimit_fail(rl, "198.51.100.7", 2.0);
	assert_false(attest_ratelimit_allowed(rl, "198.51.100.7", 2.0));
	/* Over-long and empty addresses are ignored, not crashes. */
	char lng[200];
	memset(lng, 'a', sizeof(lng) - 1);
	lng[sizeof(lng) - 1] = '\0';
	attest_ratelimit_fail(rl, lng, 3.0);
	attest_ratelimit_fail(rl, "", 3.0);
	assert_true(attest_ratelimit_allowed(rl, lng, 3.0));
	attest_ratelimit_free(rl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_single_use),
	        cmocka_unit_test(test_expiry),
	        cmocka_unit_test(test_capacity),
	        cmocka_unit_test(test_concurrent_take),
	        cmocka_unit_test(test_bad_args),
	        cmocka_unit_test(test_ratelimit_burst_and_refill),
	        cmocka_unit_test(test_ratelimit_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
