/*
 * Hot reload: readers decide on the set in service while a writer swaps
 * sets as fast as it can; every reader sees one whole set (never a mix,
 * never freed memory, which ASan would report), a failed reload leaves
 * the last good set serving, and change detection reloads only on change.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aam/err.h"
#include "common/log.h"
#include "gateway/policy.h"
#include "tests/lib/testutil.h"

static const char *
policy_text(const char *route)
{
	static char buf[2][512];
	static int i;
	char *b = buf[i++ & 1];
	snprintf(b, 512,
	         "apiVersion: access.envisionai.dev/v1\n"
	         "kind: AgentPolicy\n"
	         "metadata:\n  name: only-%s\n"
	         "spec:\n"
	         "  identity:\n    workload: spiffe://prod/agent/x\n"
	         "  models:\n    allow: [%s]\n",
	         route, route);
	return b;
}

static gw_policy_set *
load(const char *route)
{
	const char *t = policy_text(route);
	gw_policy_set *s = NULL;
	assert_int_equal(gw_policy_set_load_buffer("s.yaml", t, strlen(t), NULL, &s, NULL), AAM_OK);
	return s;
}

static bool
allows(const gw_policy_set *s, const char *route)
{
	struct gw_policy_request r = {
	        .workload = "spiffe://prod/agent/x", .kind = GW_POLICY_MODEL, .model = route};
	struct gw_policy_decision d;
	if (gw_policy_decide(s, &r, &d) != AAM_OK)
		return false;
	return d.allow;
}

struct shared {
	gw_policy_store *store;
	char hash_a[65], hash_b[65];
	atomic_bool stop;
	atomic_ulong reads, bad;
};

static void *
reader(void *arg)
{
	struct shared *sh = arg;
	while (!atomic_load(&sh->stop)) {
		gw_policy_set *s = gw_policy_store_acquire(sh->store);
		if (s == NULL) {
			atomic_fetch_add(&sh->bad, 1);
			continue;
		}
		bool a = allows(s, "a"), b = allows(s, "b");
		const char *h = gw_policy_set_hash_hex(s);
		/* One whole set: exactly its own route, matching its hash. */
		bool ok = (a && !b && strcmp(h, sh->hash_a) == 0) ||
		          (b && !a && strcmp(h, sh->hash_b) == 0);
		if (!ok)
			atomic_fetch_add(&sh->bad, 1);
		gw_policy_store_release(s);
		atomic_fetch_add(&sh->reads, 1);
	}
	return NULL;
}

static void
test_concurrent_swaps(void **state)
{
	(void)state;
	struct shared sh;
	memset(&sh, 0, sizeof(sh));
	assert_int_equal(gw_policy_store_new(&sh.store), AAM_OK);
	assert_null(gw_policy_store_acquire(sh.store));
	gw_policy_set *a = load("a"), *b = load("b");
	snprintf(sh.hash_a, sizeof(sh.hash_a), "%s", gw_policy_set_hash_hex(a));
	snprintf(sh.hash_b, sizeof(sh.hash_b), "%s", gw_policy_set_hash_hex(b));
	assert_string_not_equal(sh.hash_a, sh.hash_b);
	assert_int_equal(gw_policy_store_swap(sh.store, a), AAM_OK);
	gw_policy_set_unref(a);

	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, reader, &sh), 0);
	/*
	 * The writer builds a fresh set for every swap, so each old set is
	 * really freed once its readers let go: a reader still using it
	 * would be a use-after-free under ASan.
	 */
	for (int i = 0; i < 400; i++) {
		gw_policy_set *s = load(i % 2 ? "a" : "b");
		assert_int_equal(gw_policy_store_swap(sh.store, s), AAM_OK);
		gw_policy_set_unref(s);
		if (i % 50 == 0)
			usleep(1000);
	}
	atomic_store(&sh.stop, true);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&sh.bad), 0);
	assert_true(atomic_load(&sh.reads) > 0);
	assert_int_equal(gw_policy_store_generation(sh.store), 401);
	gw_policy_set_unref(b);
	gw_policy_store_free(sh.store);
}

static void
test_held_set_outlives_swap(void **state)
{
	(void)state;
	gw_policy_store *st;
	assert_int_equal(gw_policy_store_new(&st), AAM_OK);
	gw_policy_set *a = load("a");
	gw_policy_store_swap(st, a);
	gw_policy_set_unref(a);
	gw_policy_set *held = gw_policy_store_acquire(st);
	gw_policy_set *b = load("b");
	gw_policy_store_swap(st, b);
	gw_policy_set_unref(b);
	/* The store no longer holds A, but this reader still does. */
	assert_true(allows(held, "a"));
	gw_policy_store_release(held);
	gw_policy_set *now = gw_policy_store_acquire(st);
	assert_true(allows(now, "b"));
	gw_policy_store_release(now);
	assert_int_equal(gw_policy_store_swap(st, NULL), AAM_E_INVAL);
	gw_policy_store_free(st);
	gw_policy_store_free(NULL);
}

static void
write_policy(const char *dir, const char *name, const char *text)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(aam_test_write_file(path, text, strlen(text), 0644), 0);
}

static void
test_reload_keeps_last_good_set(void **state)
{
	(void)state;
	char *dir = aam_test_mkdtemp("policy-reload");
	write_policy(dir, "p.yaml", policy_text("a"));
	const char *paths[] = {dir};
	gw_policy_store *st;
	assert_int_equal(gw_policy_store_new(&st), AAM_OK);

	/* Errors are logged; capture the log to check their positions. */
	char *logpath = NULL;
	size_t loglen = 0;
	FILE *log = open_memstream(&logpath, &loglen);
	assert_non_null(log);
	aam_log_set_stream(log);

	bool reloaded = false;
	assert_int_equal(gw_policy_store_reload_if_changed(st, paths, 1, NULL, NULL, &reloaded),
	                 AAM_OK);
	assert_true(reloaded);
	gw_policy_set *s = gw_policy_store_acquire(st);
	assert_true(allows(s, "a"));
	char good_hash[65];
	snprintf(good_hash, sizeof(good_hash), "%s", gw_policy_set_hash_hex(s));
	gw_policy_store_release(s);

	/* Nothing changed: no reload. */
	assert_int_equal(gw_policy_store_reload_if_changed(st, paths, 1, NULL, NULL, &reloaded),
	                 AAM_OK);
	assert_false(reloaded);

	/* A broken file: the reload fails, the good set keeps serving. */
	write_policy(dir, "q.yaml",
	             "apiVersion: access.envisionai.dev/v1\nkind: AgentPolicy\n"
	             "metadata: {name: q}\nspec: {identity: {workload: "
	             "spiffe://prod/agent/x}, models: {allow: [b], budget: "
	             "{daily_usd: -1}}}\n");
	struct gw_policy_diag d;
	gw_policy_diag_init(&d);
	assert_int_equal(gw_policy_store_reload_if_changed(st, paths, 1, NULL, &d, &reloaded),
	                 AAM_E_CONFIG);
	assert_false(reloaded);
	assert_int_equal(d.n, 1);
	char line[512];
	gw_policy_diag_format(&d, 0, line, sizeof(line));
	assert_non_null(strstr(line, "/q.yaml:4:94: spec.models.budget.daily_usd: must not be "
	                             "negative"));
	gw_policy_diag_uninit(&d);
	s = gw_policy_store_acquire(st);
	assert_string_equal(gw_policy_set_hash_hex(s), good_hash);
	assert_true(allows(s, "a"));
	assert_false(allows(s, "b"));
	gw_policy_store_release(s);
	/* The same broken state is not retried on every poll. */
	assert_int_equal(gw_policy_store_reload_if_changed(st, paths, 1, NULL, NULL, &reloaded),
	                 AAM_OK);
	assert_false(reloaded);

	/* Fixing the file reloads. */
	write_policy(dir, "q.yaml", policy_text("b"));
	assert_int_equal(gw_policy_store_reload_if_changed(st, paths, 1, NULL, NULL, &reloaded),
	                 AAM_OK);
	assert_true(reloaded);
	s = gw_policy_store_acquire(st);
	assert_true(allows(s, "a"));
	assert_true(allows(s, "b"));
	assert_int_equal(gw_policy_set_count(s), 2);
	gw_policy_store_release(s);

	/* An explicit reload of a missing path fails and changes nothing. */
	const char *missing[] = {"/nonexistent/aam/policies"};
	assert_int_equal(gw_policy_store_reload(st, missing, 1, NULL, NULL), AAM_E_NOTFOUND);
	s = gw_policy_store_acquire(st);
	assert_int_equal(gw_policy_set_count(s), 2);
	gw_policy_store_release(s);

	aam_log_set_stream(NULL);
	fclose(log);
	assert_non_null(strstr(logpath, "event=policy.reload_error"));
	assert_non_null(strstr(logpath, "q.yaml:4:94: spec.models.budget.daily_usd"));
	assert_non_null(strstr(logpath, "event=policy.reload_failed"));
	assert_non_null(strstr(logpath, good_hash));
	assert_non_null(strstr(logpath, "event=policy.reloaded"));
	free(logpath);
	gw_policy_store_free(st);
	aam_test_rmtree(dir);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_concurrent_swaps),
	        cmocka_unit_test(test_held_set_outlives_swap),
	        cmocka_unit_test(test_reload_keeps_last_good_set),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
