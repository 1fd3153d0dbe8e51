/*
 * Route table reloads (gateway/router.c): request threads listing the
 * route names while another thread reloads the routes file in a loop
 * (run under ASan, a name read after its table was freed is caught), and
 * the per-deployment runtime state carried over a reload: cooldowns and
 * rpm windows survive an unrelated edit, calls in flight on the old table
 * settle into the shared state, and a removed deployment's state is gone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aam/err.h"
#include "common/buf.h"
#include "gateway/route.h"
#include "gateway/router_int.h"
#include "tests/lib/testutil.h"

struct fx {
	char *dir;
	char routes[1024], db[1024], sock[1024];
};

static void
write_routes(const char *path, const char *prefix, int n)
{
	struct aam_buf b;
	aam_buf_init(&b, 1 << 20);
	aam_buf_printf(&b, "model_list:\n");
	for (int i = 0; i < n; i++)
		aam_buf_printf(&b,
		               "  - model_name: %s-route-with-a-long-name-%04d\n"
		               "    deployments:\n"
		               "      - {provider: openai, model: m, api_base: http://127.0.0.1:9, "
		               "credential: k}\n",
		               prefix, i);
	assert_false(aam_buf_failed(&b));
	assert_int_equal(aam_test_write_file(path, b.data, b.len, 0600), 0);
	aam_buf_uninit(&b);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	f->dir = aam_test_mkdtemp("route-reload");
	if (f->dir == NULL)
		return -1;
	snprintf(f->routes, sizeof(f->routes), "%s/routes.yaml", f->dir);
	snprintf(f->db, sizeof(f->db), "%s/gateway.db", f->dir);
	snprintf(f->sock, sizeof(f->sock), "%s/vault.sock", f->dir);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	aam_test_rmtree(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

/* ---- listing while reloading ------------------------------------------------------ */

/* One router reloaded in a loop (reloader) while other threads use it. */
struct race {
	struct gw_router *r;
	char alt[2][1024];
	int64_t now;
	atomic_bool stop;
	atomic_long lists, calls, reloads;
	atomic_int bad;
};

static void *
reloader(void *arg)
{
	struct race *x = arg;
	for (long i = 0; !atomic_load(&x->stop); i++) {
		char err[256];
		if (gw_router_reload(x->r, x->alt[i % 2], err, sizeof(err)) != AAM_OK)
			atomic_fetch_add(&x->bad, 1);
		atomic_fetch_add(&x->reloads, 1);
	}
	return NULL;
}

static void *
lister(void *arg)
{
	struct race *x = arg;
	while (!atomic_load(&x->stop)) {
		char **names = NULL;
		size_t n = 0;
		if (gw_router_route_names(x->r, &names, &n) != AAM_OK || (n != 40 && n != 60))
			atomic_fetch_add(&x->bad, 1);
		for (size_t i = 0; i < n; i++) {
			/* Read every byte, as a JSON encoder would, after more reloads. */
			if (i == n / 2)
				sched_yield();
			size_t len = strlen(names[i]);
			if (len < 10 || (names[i][0] != 'a' && names[i][0] != 'b'))
				atomic_fetch_add(&x->bad, 1);
		}
		if (n > 0 && names[n] != NULL)
			atomic_fetch_add(&x->bad, 1);
		/* The metrics label check: a snapshot answer, never a dangling pointer. */
		(void)gw_router_has_route(x->r, "a-route-with-a-long-name-0001");
		if (gw_router_has_route(x->r, "c-route-with-a-long-name-0001"))
			atomic_fetch_add(&x->bad, 1);
		size_t c = gw_router_route_count(x->r);
		if (c != 40 && c != 60)
			atomic_fetch_add(&x->bad, 1);
		gw_router_route_names_free(names);
		atomic_fetch_add(&x->lists, 1);
	}
	return NULL;
}

static void
test_list_while_reloading(void **state)
{
	struct fx *f = *state;
	struct race x;
	memset(&x, 0, sizeof(x));
	snprintf(x.alt[0], sizeof(x.alt[0]), "%s/a.yaml", f->dir);
	snprintf(x.alt[1], sizeof(x.alt[1]), "%s/b.yaml", f->dir);
	write_routes(x.alt[0], "a", 40);
	write_routes(x.alt[1], "b", 60);
	char err[512] = "";
	assert_int_equal(gw_router_new(x.alt[0], f->db, f->sock, &x.r, err, sizeof(err)), AAM_OK);
	pthread_t rl, ls[4];
	assert_int_equal(pthread_create(&rl, NULL, reloader, &x), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&ls[i], NULL, lister, &x), 0);
	/* Enough reloads and listings to overlap many times. */
	while (atomic_load(&x.reloads) < 300 || atomic_load(&x.lists) < 300)
		nanosleep(&(struct timespec){.tv_nsec = 5000000}, NULL);
	atomic_store(&x.stop, true);
	pthread_join(rl, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(ls[i], NULL);
	assert_int_equal(atomic_load(&x.bad), 0);
	gw_router_free(x.r);
}

/* ---- runtime state across reloads ------------------------------------------------ */

#define DEP_A                                                                                      \
	"      - {provider: openai, model: m-a, api_base: http://127.0.0.1:9, credential: k-a, "   \
	"rpm: 2%s}\n"
#define DEP_B                                                                                      \
	"      - {provider: openai, model: m-b, api_base: http://127.0.0.1:10, credential: %s}\n"
#define DEP_C                                                                                      \
	"      - {provider: anthropic, model: m-c, api_base: http://127.0.0.1:11, credential: "    \
	"k-c}\n"
#define SETTINGS "router_settings:\n  allowed_fails: 2\n  cooldown_time: 60s\n"

/* chat = A (+ B unless !WITH_B), other = C; EXTRA adds an unrelated route. */
static void
write_state_routes(const char *path, bool with_b, const char *b_cred, const char *a_extra,
                   bool extra)
{
	struct aam_buf b;
	aam_buf_init(&b, 1 << 16);
	aam_buf_printf(&b, "model_list:\n");
	if (extra)
		aam_buf_printf(&b, "  - model_name: added\n    deployments:\n" DEP_C);
	aam_buf_printf(&b, "  - model_name: chat\n    deployments:\n");
	aam_buf_printf(&b, DEP_A, a_extra);
	if (with_b)
		aam_buf_printf(&b, DEP_B, b_cred);
	aam_buf_printf(&b, "  - model_name: other\n    deployments:\n" DEP_C SETTINGS);
	assert_false(aam_buf_failed(&b));
	assert_int_equal(aam_test_write_file(path, b.data, b.len, 0600), 0);
	aam_buf_uninit(&b);
}

static double
draw0(void *ctx)
{
	(void)ctx;
	return 0.0;
}

/* Picks in route NAME of R's current table, excluding EXCLUDE; returns the deployment's model. */
static const char *
pick_model(struct gw_router *r, const char *name, uint64_t exclude, int64_t now, int *why)
{
	static char model[64];
	struct gw_routes *t = gw_router_table(r);
	const struct gw_route *route = gw_routes_find(t, name);
	assert_non_null(route);
	size_t idx = 0;
	int w = 0;
	int rc = gw_pick(t, route, exclude, NULL, 0, 10, draw0, NULL, now, &idx, &w);
	snprintf(model, sizeof(model), "%s", rc == AAM_OK ? route->deps[idx].model : "");
	if (why != NULL)
		*why = w;
	gw_routes_unref(t);
	return model;
}

static size_t
dep_index(const struct gw_route *route, const char *model)
{
	for (size_t i = 0; i < route->ndeps; i++)
		if (strcmp(route->deps[i].model, model) == 0)
			return i;
	fail_msg("no deployment %s", model);
	return 0;
}

static void
reload(struct gw_router *r, const char *path)
{
	char err[512] = "";
	if (gw_router_reload(r, path, err, sizeof(err)) != AAM_OK)
		fail_msg("reload: %s", err);
}

static void
test_state_survives_reload(void **state)
{
	struct fx *f = *state;
	write_state_routes(f->routes, true, "k-b", "", false);
	struct gw_router *r = NULL;
	char err[512] = "";
	assert_int_equal(gw_router_new(f->routes, f->db, f->sock, &r, err, sizeof(err)), AAM_OK);
	/* One minute's worth of fixed clock: the rpm window cannot roll over under us. */
	int64_t now = (gw_now_ms() / 60000) * 60000 + 1000;

	struct gw_routes *t1 = gw_router_table(r);
	const struct gw_route *chat1 = gw_routes_find(t1, "chat");
	const struct gw_route *other1 = gw_routes_find(t1, "other");
	size_t a = dep_index(chat1, "m-a"), b = dep_index(chat1, "m-b");
	/* B fails twice: cooled down for 60 s.  A takes its 2 requests of the minute. */
	for (int i = 0; i < 2; i++) {
		gw_state_begin(t1, chat1, b, now);
		gw_state_end(t1, chat1, b, false, 0, 0, now);
		gw_state_begin(t1, chat1, a, now);
		gw_state_end(t1, chat1, a, true, 1000, 50, now);
	}
	int why = 0;
	assert_string_equal(pick_model(r, "chat", UINT64_C(1) << a, now, &why), "");
	assert_int_equal(why, GW_PICK_COOLDOWN);
	assert_string_equal(pick_model(r, "chat", UINT64_C(1) << b, now, &why), "");
	assert_int_equal(why, GW_PICK_RATE);
	/* A call in flight on C that will end after the reloads, on its old table. */
	gw_state_begin(t1, other1, 0, now);

	/* An unrelated edit: a new route first, A's weight changed (not part of its identity). */
	write_state_routes(f->routes, true, "k-b", ", weight: 3", true);
	reload(r, f->routes);
	assert_string_equal(pick_model(r, "chat", UINT64_C(1) << a, now, &why), "");
	assert_int_equal(why, GW_PICK_COOLDOWN);
	assert_string_equal(pick_model(r, "chat", UINT64_C(1) << b, now, &why), "");
	assert_int_equal(why, GW_PICK_RATE);
	struct gw_routes *t2 = gw_router_table(r);
	const struct gw_route *chat2 = gw_routes_find(t2, "chat");
	const struct gw_route *other2 = gw_routes_find(t2, "other");
	assert_int_equal(chat2->state[dep_index(chat2, "m-a")]->minute_tokens, 100);
	assert_int_equal(other2->state[0]->in_flight, 1);
	/* The new route's C is another deployment (other route): its own state. */
	assert_int_equal(gw_routes_find(t2, "added")->state[0]->in_flight, 0);
	gw_routes_unref(t2);

	/* B's credential changes: a different deployment, so a fresh state (not cooled). */
	write_state_routes(f->routes, true, "k-b2", ", weight: 3", true);
	reload(r, f->routes);
	assert_string_equal(pick_model(r, "chat", UINT64_C(1) << a, now, &why), "m-b");
	/* Cool it again, remove it, put it back: its state went with the removal. */
	t2 = gw_router_table(r);
	chat2 = gw_routes_find(t2, "chat");
	b = dep_index(chat2, "m-b");
	for (int i = 0; i < 2; i++) {
		gw_state_begin(t2, chat2, b, now);
		gw_state_end(t2, chat2, b, false, 0, 0, now);
	}
	gw_routes_unref(t2);
	assert_string_equal(pick_model(r, "chat", UINT64_C(1) << a, now, &why), "");
	write_state_routes(f->routes, false, "k-b2", ", weight: 3", true);
	reload(r, f->routes);
	write_state_routes(f->routes, true, "k-b2", ", weight: 3", true);
	reload(r, f->routes);
	assert_string_equal(pick_model(r, "chat", UINT64_C(1) << a, now, &why), "m-b");
	/* A kept its rpm window through all of it. */
	assert_string_equal(pick_model(r, "chat", 0, now, &why), "m-b");
	assert_string_equal(pick_model(r, "chat", UINT64_C(1) << 1, now, &why), "");
	assert_int_equal(why, GW_PICK_RATE);

	/* The call in flight ends on the table it started with, four reloads ago. */
	gw_state_end(t1, other1, 0, true, 2000, 10, now);
	t2 = gw_router_table(r);
	other2 = gw_routes_find(t2, "other");
	assert_int_equal(other2->state[0]->in_flight, 0);
	assert_int_equal(other2->state[0]->minute_tokens, 10);
	assert_true(other2->state[0]->ewma_latency_us > 0);
	gw_routes_unref(t2);
	gw_routes_unref(t1);
	gw_router_free(r);
}

/* ---- calls in flight across reloads, many threads --------------------------------- */

/* A call: take the table, pick, begin, hold it over a reload or two, end on the same table. */
static void *
churn_caller(void *arg)
{
	struct race *x = arg;
	while (!atomic_load(&x->stop)) {
		struct gw_routes *t = gw_router_table(x->r);
		const struct gw_route *route = gw_routes_find(t, "chat");
		size_t idx = 0;
		int why = 0;
		if (route == NULL ||
		    gw_pick(t, route, 0, NULL, 0, 10, draw0, NULL, x->now, &idx, &why) != AAM_OK) {
			atomic_fetch_add(&x->bad, 1);
			gw_routes_unref(t);
			continue;
		}
		gw_state_begin(t, route, idx, x->now);
		sched_yield();
		gw_state_end(t, route, idx, true, 1000, 3, x->now);
		gw_routes_unref(t);
		atomic_fetch_add(&x->calls, 1);
	}
	return NULL;
}

static void
test_calls_in_flight_across_reloads(void **state)
{
	struct fx *f = *state;
	struct race x;
	memset(&x, 0, sizeof(x));
	snprintf(x.alt[0], sizeof(x.alt[0]), "%s/c0.yaml", f->dir);
	snprintf(x.alt[1], sizeof(x.alt[1]), "%s/c1.yaml", f->dir);
	/* The same chat deployments in both; the second file adds a route. */
	write_state_routes(x.alt[0], true, "k-b", "", false);
	write_state_routes(x.alt[1], true, "k-b", ", weight: 2", true);
	char err[512] = "";
	assert_int_equal(gw_router_new(x.alt[0], f->db, f->sock, &x.r, err, sizeof(err)), AAM_OK);
	x.now = (gw_now_ms() / 60000) * 60000 + 1000;
	pthread_t rl, cs[4];
	assert_int_equal(pthread_create(&rl, NULL, reloader, &x), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&cs[i], NULL, churn_caller, &x), 0);
	while (atomic_load(&x.reloads) < 200 || atomic_load(&x.calls) < 2000)
		nanosleep(&(struct timespec){.tv_nsec = 2000000}, NULL);
	atomic_store(&x.stop, true);
	pthread_join(rl, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(cs[i], NULL);
	assert_int_equal(atomic_load(&x.bad), 0);
	/*
	 * Every call ended where it began: nothing is left in flight, and the
	 * minute's counts hold every call, whichever table each one used.
	 */
	struct gw_routes *t = gw_router_table(x.r);
	const struct gw_route *chat = gw_routes_find(t, "chat");
	int64_t reqs = 0, toks = 0;
	for (size_t i = 0; i < chat->ndeps; i++) {
		assert_int_equal(chat->state[i]->in_flight, 0);
		reqs += chat->state[i]->minute_requests;
		toks += chat->state[i]->minute_tokens;
	}
	assert_int_equal(reqs, atomic_load(&x.calls));
	assert_int_equal(toks, 3 * atomic_load(&x.calls));
	gw_routes_unref(t);
	gw_router_free(x.r);
}

/* Duplicate deployments match in order; a renamed route starts afresh; explicit ids. */
static void
test_adopt_matching(void **state)
{
	(void)state;
	static const char V1[] =
	        "model_list:\n"
	        "  - model_name: r\n    deployments:\n"
	        "      - {provider: openai, model: m, api_base: http://h, credential: k}\n"
	        "      - {provider: openai, model: m, api_base: http://h, credential: k}\n"
	        "      - {provider: openai-compatible, model: m, api_base: http://h}\n";
	static const char V2[] =
	        "model_list:\n"
	        "  - model_name: r\n    deployments:\n"
	        "      - {provider: openai-compatible, model: m, api_base: http://h}\n"
	        "      - {provider: openai, model: m, api_base: http://h, credential: k}\n"
	        "      - {provider: openai, model: m, api_base: http://h/v2, credential: k}\n"
	        "      - {provider: openai, model: m, api_base: http://h, credential: k}\n"
	        "      - {provider: openai, model: m, api_base: http://h, credential: k}\n"
	        "  - model_name: r2\n    deployments:\n"
	        "      - {provider: openai, model: m, api_base: http://h, credential: k}\n";
	struct gw_routes *t1 = NULL, *t2 = NULL;
	char err[256];
	assert_int_equal(gw_routes_parse("v1", V1, strlen(V1), &t1, err, sizeof(err)), AAM_OK);
	assert_int_equal(gw_routes_parse("v2", V2, strlen(V2), &t2, err, sizeof(err)), AAM_OK);
	assert_int_equal(gw_routes_adopt_state(t2, t1), 3);
	const struct gw_route *o = &t1->routes[0], *n = &t2->routes[0];
	assert_ptr_equal(n->state[0], o->state[2]);
	assert_ptr_equal(n->state[1], o->state[0]);
	assert_ptr_equal(n->state[3], o->state[1]);
	assert_true(n->state[2] != o->state[0] && n->state[2] != o->state[1]);
	assert_true(n->state[4] != o->state[0] && n->state[4] != o->state[1]);
	assert_true(t2->routes[1].state[0] != o->state[0]);
	/* The old table goes first: the shared objects live on in the new one. */
	gw_routes_unref(t1);
	n->state[1]->in_flight = 5;
	assert_int_equal(gw_routes_adopt_state(t2, NULL), 0);

	/*
	 * An explicit id is the identity: the deployment may move to another
	 * api_base and credential and keep its state; an id never matches a
	 * deployment without one (nor the other way round).
	 */
	static const char V3[] =
	        "model_list:\n"
	        "  - model_name: r\n    deployments:\n"
	        "      - {id: primary, provider: openai, model: m, api_base: http://other, "
	        "credential: k2}\n"
	        "      - {id: second, provider: openai, model: m, api_base: http://h, credential: "
	        "k}\n"
	        "      - {provider: openai, model: m, api_base: http://h, credential: k}\n";
	static const char V4[] =
	        "model_list:\n"
	        "  - model_name: r\n    deployments:\n"
	        "      - {provider: openai, model: m, api_base: http://h, credential: k}\n"
	        "      - {id: primary, provider: openai, model: m2, api_base: http://h, "
	        "credential: k}\n";
	struct gw_routes *t3 = NULL, *t4 = NULL;
	assert_int_equal(gw_routes_parse("v3", V3, strlen(V3), &t3, err, sizeof(err)), AAM_OK);
	assert_string_equal(t3->routes[0].dep_ids[0], "primary");
	assert_null(t3->routes[0].dep_ids[2]);
	/* Only the id-less one of V3 matches an id-less deployment of V2 (the first, r#1). */
	assert_int_equal(gw_routes_adopt_state(t3, t2), 1);
	assert_ptr_equal(t3->routes[0].state[2], t2->routes[0].state[1]);
	assert_int_equal(gw_routes_parse("v4", V4, strlen(V4), &t4, err, sizeof(err)), AAM_OK);
	assert_int_equal(gw_routes_adopt_state(t4, t3), 2);
	assert_ptr_equal(t4->routes[0].state[0], t3->routes[0].state[2]);
	assert_ptr_equal(t4->routes[0].state[1], t3->routes[0].state[0]);
	assert_int_equal(t4->routes[0].state[0]->in_flight, 5);
	gw_routes_unref(t2);
	gw_routes_unref(t3);
	gw_routes_unref(t4);

	/* Ids are unique within a route. */
	static const char DUP[] =
	        "model_list:\n"
	        "  - model_name: r\n    deployments:\n"
	        "      - {id: a, provider: openai, model: m, api_base: http://h, credential: k}\n"
	        "      - {id: a, provider: openai, model: n, api_base: http://h, credential: k}\n";
	struct gw_routes *bad = NULL;
	assert_int_equal(gw_routes_parse("dup.yaml", DUP, strlen(DUP), &bad, err, sizeof(err)),
	                 AAM_E_CONFIG);
	if (strstr(err, "dup.yaml:5:14: id: duplicate deployment id 'a' in route 'r'") == NULL)
		fail_msg("%s", err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_list_while_reloading, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_state_survives_reload, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_calls_in_flight_across_reloads, setup,
	                                        teardown),
	        cmocka_unit_test(test_adopt_matching),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
