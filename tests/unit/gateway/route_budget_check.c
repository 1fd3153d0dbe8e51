/*
 * The budget ledger (gateway/budget.c): reserve/settle/release, every
 * scope, standing limits, UTC day and month rollover through an injected
 * clock, stale reservations released at open, and 200 threads racing for
 * a budget that fits 50.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "gateway/budget.h"
#include "tests/lib/testutil.h"

struct fx {
	char *dir;
	char path[512];
	struct gw_budget *b;
	int64_t now;
};

static int64_t
fake_clock(void *ctx)
{
	return ((struct fx *)ctx)->now;
}

/* 2026-03-31T23:59:00Z: a minute before both a day and a month end. */
#define T_MARCH_END INT64_C(1775001540)

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	f->dir = aam_test_mkdtemp("aam-budget");
	snprintf(f->path, sizeof(f->path), "%s/gateway.db", f->dir);
	f->now = T_MARCH_END;
	if (gw_budget_open(f->path, &f->b) != AAM_OK)
		return -1;
	gw_budget_set_clock(f->b, fake_clock, f);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	gw_budget_close(f->b);
	aam_test_rmtree(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static bool
near(double a, double b)
{
	return a - b < 1e-6 && b - a < 1e-6;
}

static void
test_reserve_settle_release(void **state)
{
	struct fx *f = *state;
	struct gw_budget_scopes s = {.identity = "spiffe://x/a",
	                             .team = "t1",
	                             .policy = "p",
	                             .vkey = "k1",
	                             .policy_daily_usd = 1.0};
	int64_t id1 = 0, id2 = 0, id3 = 0;
	assert_int_equal(gw_budget_reserve(f->b, &s, 0.40, &id1, NULL), AAM_OK);
	assert_int_equal(gw_budget_reserve(f->b, &s, 0.40, &id2, NULL), AAM_OK);
	const char *which = NULL;
	/* 0.8 reserved: another 0.4 would pass the policy's 1.00 a day. */
	assert_int_equal(gw_budget_reserve(f->b, &s, 0.40, &id3, &which), AAM_E_DENIED);
	assert_string_equal(which, "policy");
	double d = 0, m = 0;
	assert_int_equal(gw_budget_spent(f->b, "identity", "spiffe://x/a", &d, &m), AAM_OK);
	assert_true(near(d, 0.8) && near(m, 0.8));
	/* Settling to less frees room. */
	assert_int_equal(gw_budget_settle(f->b, id1, 0.05), AAM_OK);
	assert_int_equal(gw_budget_release(f->b, id2), AAM_OK);
	for (int i = 0; i < 4; i++) {
		const char *sc[] = {"identity", "team", "policy", "vkey"};
		const char *k[] = {"spiffe://x/a", "t1", "p", "k1"};
		assert_int_equal(gw_budget_spent(f->b, sc[i], k[i], &d, &m), AAM_OK);
		assert_true(near(d, 0.05) && near(m, 0.05));
	}
	assert_int_equal(gw_budget_reserve(f->b, &s, 0.90, &id3, NULL), AAM_OK);
	/* Settling above the reservation is recorded (real spend), and blocks more. */
	assert_int_equal(gw_budget_settle(f->b, id3, 0.95), AAM_OK);
	assert_int_equal(gw_budget_spent(f->b, "policy", "p", &d, NULL), AAM_OK);
	assert_true(near(d, 1.0));
	assert_int_equal(gw_budget_reserve(f->b, &s, 0.000001, &id3, NULL), AAM_E_DENIED);
	/* A reservation is settled or released once. */
	assert_int_equal(gw_budget_settle(f->b, id1, 0.05), AAM_E_NOTFOUND);
	assert_int_equal(gw_budget_release(f->b, id2), AAM_E_NOTFOUND);
	assert_int_equal(gw_budget_release(f->b, 0), AAM_E_INVAL);
	/* Unknown scope names and bad amounts are refused. */
	assert_int_equal(gw_budget_spent(f->b, "planet", "p", &d, &m), AAM_E_INVAL);
	assert_int_equal(gw_budget_reserve(f->b, &s, NAN, &id3, NULL), AAM_E_INVAL);
	assert_int_equal(gw_budget_reserve(f->b, &s, -1, &id3, NULL), AAM_E_INVAL);
	/* Other keys of the same scope are untouched. */
	assert_int_equal(gw_budget_spent(f->b, "team", "t2", &d, &m), AAM_OK);
	assert_true(d == 0 && m == 0);
}

static void
test_standing_limits(void **state)
{
	struct fx *f = *state;
	assert_int_equal(gw_budget_set_limit(f->b, "team", "red", 0, 2.0), AAM_OK);
	assert_int_equal(gw_budget_set_limit(f->b, "identity", "spiffe://x/b", 0.5, 0), AAM_OK);
	struct gw_budget_scopes s = {.identity = "spiffe://x/b", .team = "red"};
	int64_t id = 0;
	assert_int_equal(gw_budget_reserve(f->b, &s, 0.5, &id, NULL), AAM_OK);
	const char *which = NULL;
	assert_int_equal(gw_budget_reserve(f->b, &s, 0.01, &id, &which), AAM_E_DENIED);
	assert_string_equal(which, "identity");
	/* Another identity of the team is held by the team's monthly 2.00. */
	struct gw_budget_scopes s2 = {.identity = "spiffe://x/c", .team = "red"};
	assert_int_equal(gw_budget_reserve(f->b, &s2, 1.5, &id, NULL), AAM_OK);
	assert_int_equal(gw_budget_reserve(f->b, &s2, 0.01, &id, &which), AAM_E_DENIED);
	assert_string_equal(which, "team");
	/* Removing the limit lifts it. */
	assert_int_equal(gw_budget_set_limit(f->b, "team", "red", 0, 0), AAM_OK);
	assert_int_equal(gw_budget_reserve(f->b, &s2, 0.01, &id, NULL), AAM_OK);
	/* The tighter of a policy's limit and a standing one applies. */
	assert_int_equal(gw_budget_set_limit(f->b, "policy", "pp", 10, 0), AAM_OK);
	struct gw_budget_scopes s3 = {.policy = "pp", .policy_daily_usd = 0.2};
	assert_int_equal(gw_budget_reserve(f->b, &s3, 0.3, &id, &which), AAM_E_DENIED);
	s3.policy_daily_usd = 0;
	assert_int_equal(gw_budget_reserve(f->b, &s3, 0.3, &id, NULL), AAM_OK);
}

static void
test_utc_rollover(void **state)
{
	struct fx *f = *state;
	struct gw_budget_scopes s = {
	        .policy = "roll", .policy_daily_usd = 1.0, .policy_monthly_usd = 1.5};
	int64_t id = 0, late = 0;
	assert_int_equal(gw_budget_reserve(f->b, &s, 0.9, &id, NULL), AAM_OK);
	assert_int_equal(gw_budget_settle(f->b, id, 0.9), AAM_OK);
	/* A reservation open across midnight settles into the day it was made in. */
	assert_int_equal(gw_budget_reserve(f->b, &s, 0.1, &late, NULL), AAM_OK);
	assert_int_equal(gw_budget_reserve(f->b, &s, 0.1, &id, NULL), AAM_E_DENIED);
	f->now = T_MARCH_END + 60; /* 2026-04-01T00:00:00Z: new day AND new month */
	double d = 0, m = 0;
	assert_int_equal(gw_budget_spent(f->b, "policy", "roll", &d, &m), AAM_OK);
	assert_true(d == 0 && m == 0);
	assert_int_equal(gw_budget_reserve(f->b, &s, 0.9, &id, NULL), AAM_OK);
	assert_int_equal(gw_budget_settle(f->b, late, 0.05), AAM_OK);
	assert_int_equal(gw_budget_spent(f->b, "policy", "roll", &d, &m), AAM_OK);
	assert_true(near(d, 0.9) && near(m, 0.9));
	/* Back in March (as far as the ledger knows): the late settle landed there. */
	f->now = T_MARCH_END;
	assert_int_equal(gw_budget_spent(f->b, "policy", "roll", &d, &m), AAM_OK);
	assert_true(near(d, 0.95) && near(m, 0.95));
	/* Next day in the same month: the daily budget is fresh, the monthly is not. */
	f->now = T_MARCH_END + 60 + 86400;
	assert_int_equal(gw_budget_reserve(f->b, &s, 0.7, &id, NULL), AAM_E_DENIED);
	assert_int_equal(gw_budget_reserve(f->b, &s, 0.6, &id, NULL), AAM_OK);
}

static void
test_stale_released_at_open(void **state)
{
	struct fx *f = *state;
	struct gw_budget_scopes s = {.identity = "crash"};
	int64_t id = 0;
	assert_int_equal(gw_budget_reserve(f->b, &s, 0.3, &id, NULL), AAM_OK);
	f->now += 60;
	assert_int_equal(gw_budget_reserve(f->b, &s, 0.2, &id, NULL), AAM_OK);
	f->now += GW_BUDGET_STALE_S - 30; /* only the first is older than the bound */
	int64_t n = 0;
	assert_int_equal(gw_budget_release_stale(f->b, GW_BUDGET_STALE_S, &n), AAM_OK);
	assert_int_equal(n, 1);
	double d = 0;
	assert_int_equal(gw_budget_spent(f->b, "identity", "crash", &d, NULL), AAM_OK);
	assert_true(near(d, 0.2));
	/*
	 * The process "dies" and the ledger is reopened: open runs with the
	 * wall clock, months after the fake clock's March, so the remaining
	 * reservation is stale and released.
	 */
	gw_budget_close(f->b);
	assert_int_equal(gw_budget_open(f->path, &f->b), AAM_OK);
	gw_budget_set_clock(f->b, fake_clock, f);
	assert_int_equal(gw_budget_spent(f->b, "identity", "crash", &d, NULL), AAM_OK);
	assert_true(near(d, 0));
	assert_int_equal(gw_budget_release_stale(f->b, 0, &n), AAM_OK);
	assert_int_equal(n, 0);
}

#define NTHREADS 200

struct race {
	struct gw_budget *b;
	atomic_int ok, denied, errors;
	pthread_barrier_t *go;
};

static void *
racer(void *arg)
{
	struct race *r = arg;
	struct gw_budget_scopes s = {
	        .identity = "spiffe://race", .policy = "race", .policy_daily_usd = 5.0};
	pthread_barrier_wait(r->go);
	int64_t id = 0;
	/* Worst case 0.10 each: 50 fit into 5.00. */
	int rc = gw_budget_reserve(r->b, &s, 0.10, &id, NULL);
	if (rc == AAM_OK) {
		atomic_fetch_add(&r->ok, 1);
		/* Real usage: exactly the reservation, the worst case for the budget. */
		if (gw_budget_settle(r->b, id, 0.10) != AAM_OK)
			atomic_fetch_add(&r->errors, 1);
	} else if (rc == AAM_E_DENIED) {
		atomic_fetch_add(&r->denied, 1);
	} else {
		atomic_fetch_add(&r->errors, 1);
	}
	return NULL;
}

static void
run_race(struct gw_budget *b, struct race *r)
{
	memset(r, 0, sizeof(*r));
	r->b = b;
	pthread_barrier_t go;
	pthread_barrier_init(&go, NULL, NTHREADS);
	r->go = &go;
	pthread_t th[NTHREADS];
	for (int i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, racer, r), 0);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&go);
}

static void
test_200_threads_budget_for_50(void **state)
{
	struct fx *f = *state;
	struct race r;
	run_race(f->b, &r);
	assert_int_equal(atomic_load(&r.errors), 0);
	assert_int_equal(atomic_load(&r.ok), 50);
	assert_int_equal(atomic_load(&r.denied), NTHREADS - 50);
	double d = 0, m = 0;
	assert_int_equal(gw_budget_spent(f->b, "policy", "race", &d, &m), AAM_OK);
	assert_true(d <= 5.0 + 1e-9);
	assert_true(near(d, 5.0));
}

/*
 * A ledger keeps the rows it has read in memory (gateway/budget_cache.h):
 * what another connection commits (aamctl, a second gateway) must still be
 * seen by its next operation, never an old cached row.
 */
static void
test_cache_sees_other_connection(void **state)
{
	struct fx *f = *state;
	struct gw_budget *b2 = NULL;
	assert_int_equal(gw_budget_open(f->path, &b2), AAM_OK);
	gw_budget_set_clock(b2, fake_clock, f);
	struct gw_budget_scopes s = {.identity = "spiffe://x/cache", .team = "blue"};
	int64_t id = 0;
	const char *which = NULL;
	/* Ledger 1 reads and caches "no limit" and the spend rows. */
	assert_int_equal(gw_budget_reserve(f->b, &s, 0.30, &id, NULL), AAM_OK);
	assert_int_equal(gw_budget_settle(f->b, id, 0.30), AAM_OK);
	/* Ledger 2 sets a limit and spends. */
	assert_int_equal(gw_budget_set_limit(b2, "team", "blue", 1.0, 0), AAM_OK);
	assert_int_equal(gw_budget_reserve(b2, &s, 0.60, &id, NULL), AAM_OK);
	assert_int_equal(gw_budget_settle(b2, id, 0.60), AAM_OK);
	/* Ledger 1 sees both: 0.90 spent of 1.00, so 0.20 more is refused. */
	double d = 0;
	assert_int_equal(gw_budget_spent(f->b, "team", "blue", &d, NULL), AAM_OK);
	assert_true(near(d, 0.90));
	assert_int_equal(gw_budget_reserve(f->b, &s, 0.20, &id, &which), AAM_E_DENIED);
	assert_string_equal(which, "team");
	assert_int_equal(gw_budget_reserve(f->b, &s, 0.10, &id, NULL), AAM_OK);
	/* Ledger 2 lifts the limit; ledger 1's next reservation is allowed again. */
	assert_int_equal(gw_budget_set_limit(b2, "team", "blue", 0, 0), AAM_OK);
	assert_int_equal(gw_budget_reserve(f->b, &s, 5.0, &id, NULL), AAM_OK);
	gw_budget_close(b2);
}

/* The same race through two ledgers (two connections) on one file. */
static void
test_two_connections_race(void **state)
{
	struct fx *f = *state;
	struct gw_budget *b2 = NULL;
	assert_int_equal(gw_budget_open(f->path, &b2), AAM_OK);
	gw_budget_set_clock(b2, fake_clock, f);
	struct race r1, r2;
	memset(&r1, 0, sizeof(r1));
	memset(&r2, 0, sizeof(r2));
	/* Two groups of 100 threads, one per connection, start together. */
	struct race *rs[2] = {&r1, &r2};
	struct gw_budget *bs[2] = {f->b, b2};
	pthread_barrier_t all;
	pthread_barrier_init(&all, NULL, NTHREADS);
	pthread_t th[NTHREADS];
	for (int g = 0; g < 2; g++) {
		rs[g]->b = bs[g];
		rs[g]->go = &all;
	}
	for (int i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, racer, rs[i % 2]), 0);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&all);
	assert_int_equal(r1.errors + r2.errors, 0);
	assert_int_equal(r1.ok + r2.ok, 50);
	double d = 0;
	assert_int_equal(gw_budget_spent(f->b, "policy", "race", &d, NULL), AAM_OK);
	assert_true(d <= 5.0 + 1e-9);
	gw_budget_close(b2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_reserve_settle_release, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_standing_limits, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_utc_rollover, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_stale_released_at_open, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_200_threads_budget_for_50, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_two_connections_race, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_cache_sees_other_connection, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
