/*
 * IPC server worker pool: handlers run on a bounded set of reused
 * threads, requests beyond the cap queue instead of failing, a slow
 * client never pins a worker while it sends, PING and other servers stay
 * responsive while a pool is saturated, and stopping with queued work
 * neither hangs nor leaks.  Servers are fed through socketpairs; cmocka
 * assertions run on the main thread only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "aam/err.h"
#include "aam/ipc.h"
#include "common/buf.h"
#include "common/ipc.h"

enum {
	T_ECHO = 0x7100,  /* reply = request payload */
	T_BLOCK = 0x7101, /* wait for the gate (or cancellation), then reply */
	T_TID = 0x7102,   /* reply = the handler thread's kernel id */
	T_ACCUM = 0x7103, /* multi-frame request; reply = concatenation */
};

static atomic_int g_entered; /* T_BLOCK handlers running now */
static atomic_int g_max_entered;
static atomic_int g_gate_open;
static atomic_int g_accum_calls;

static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static void
accum_free(void *p)
{
	struct aam_buf *b = p;
	aam_buf_uninit(b);
	free(b);
}

static int
handle(void *ctx, const struct aam_ipc_peer *peer, const struct aam_ipc_hdr *req,
       const uint8_t *payload, struct aam_ipc_replier *r)
{
	(void)ctx;
	(void)peer;
	uint16_t type = aam_ipc_replier_state(r) != NULL ? T_ACCUM : req->type;
	switch (type) {
	case T_ECHO:
		return aam_ipc_reply(r, payload, req->len);
	case T_BLOCK: {
		int now = atomic_fetch_add(&g_entered, 1) + 1;
		int seen = atomic_load(&g_max_entered);
		while (now > seen && !atomic_compare_exchange_weak(&g_max_entered, &seen, now))
			;
		int rc = AAM_E_CLOSED;
		while (!atomic_load(&g_gate_open) && !aam_ipc_replier_cancelled(r))
			sleep_ms(2);
		if (atomic_load(&g_gate_open))
			rc = aam_ipc_reply(r, "open", 4);
		atomic_fetch_sub(&g_entered, 1);
		return rc;
	}
	case T_TID: {
		uint32_t tid = (uint32_t)syscall(SYS_gettid);
		return aam_ipc_reply(r, &tid, sizeof(tid));
	}
	case T_ACCUM: {
		atomic_fetch_add(&g_accum_calls, 1);
		struct aam_buf *acc = aam_ipc_replier_state(r);
		if (acc == NULL) {
			acc = malloc(sizeof(*acc));
			if (acc == NULL)
				return AAM_E_NOMEM;
			aam_buf_init(acc, 1024 * 1024);
			aam_ipc_replier_set_state(r, acc, accum_free);
		}
		int rc = aam_buf_append(acc, payload, req->len);
		if (rc != AAM_OK || !aam_ipc_flags_final(req->flags))
			return rc;
		return aam_ipc_reply(r, acc->data, acc->len);
	}
	default:
		return AAM_E_UNSUPPORTED;
	}
}

static void
reset_globals(void)
{
	atomic_store(&g_entered, 0);
	atomic_store(&g_max_entered, 0);
	atomic_store(&g_gate_open, 0);
	atomic_store(&g_accum_calls, 0);
}

/* A new connection to SRV: a client on one end of a socketpair. */
static struct aam_ipc_client *
connect_pair(struct aam_ipc_server *srv)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(aam_ipc_server_adopt(srv, sv[0]), AAM_OK);
	struct aam_ipc_client *c = NULL;
	assert_int_equal(aam_ipc_client_adopt(sv[1], &c), AAM_OK);
	return c;
}

static struct aam_ipc_server *
server(unsigned workers, unsigned max_workers)
{
	struct aam_ipc_server_config cfg = {
	        .handle = handle, .workers = workers, .max_workers = max_workers};
	struct aam_ipc_server *s = NULL;
	assert_int_equal(aam_ipc_server_new(&cfg, -1, &s), AAM_OK);
	return s;
}

/* Threads of this process, from /proc/self/task. */
static int
thread_count(void)
{
	DIR *d = opendir("/proc/self/task");
	if (d == NULL)
		return -1;
	int n = 0;
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		if (e->d_name[0] != '.')
			n++;
	}
	closedir(d);
	return n;
}

static bool
wait_for(atomic_int *v, int want, int ms)
{
	int64_t end = now_ms() + ms;
	while (atomic_load(v) != want) {
		if (now_ms() > end)
			return false;
		sleep_ms(2);
	}
	return true;
}

struct caller {
	struct aam_ipc_client *c;
	uint16_t type;
	int rc;
	int64_t done_ms;
};

static void *
caller_main(void *arg)
{
	struct caller *k = arg;
	k->rc = aam_ipc_call(k->c, k->type, NULL, 0, 20000, NULL, NULL);
	k->done_ms = now_ms();
	return NULL;
}

/* ---- tests ----------------------------------------------------------------- */

static void
test_threads_are_reused(void **state)
{
	(void)state;
	reset_globals();
	struct aam_ipc_server *srv = server(2, 4);
	struct aam_ipc_client *c = connect_pair(srv);
	/* Kernel thread ids grow: a thread per request would show 300 of them. */
	uint32_t seen[16];
	size_t nseen = 0;
	for (int i = 0; i < 300; i++) {
		struct aam_buf reply;
		aam_buf_init(&reply, 64);
		assert_int_equal(aam_ipc_call(c, T_TID, NULL, 0, 5000, NULL, &reply), AAM_OK);
		assert_int_equal(reply.len, sizeof(uint32_t));
		uint32_t tid;
		memcpy(&tid, reply.data, sizeof(tid));
		aam_buf_uninit(&reply);
		bool known = false;
		for (size_t k = 0; k < nseen; k++)
			known = known || seen[k] == tid;
		if (!known) {
			assert_true(nseen < 4); /* never more than max_workers */
			seen[nseen++] = tid;
		}
	}
	assert_true(nseen >= 1 && nseen <= 4);
	aam_ipc_client_free(c);
	aam_ipc_server_free(srv);
}

static void
test_cap_queues_instead_of_refusing(void **state)
{
	(void)state;
	reset_globals();
	struct aam_ipc_server *srv = server(1, 3);
	enum { N = 6 };
	struct aam_ipc_client *c[N];
	struct caller k[N];
	pthread_t t[N];
	for (int i = 0; i < N; i++) {
		c[i] = connect_pair(srv);
		k[i] = (struct caller){.c = c[i], .type = T_BLOCK, .rc = -100};
		assert_int_equal(pthread_create(&t[i], NULL, caller_main, &k[i]), 0);
	}
	/* Three handlers run (the cap), the other three requests wait. */
	assert_true(wait_for(&g_entered, 3, 3000));
	sleep_ms(100);
	assert_int_equal(atomic_load(&g_entered), 3);
	assert_int_equal(atomic_load(&g_max_entered), 3);
	/* The readers are not workers: PING on every connection is answered now. */
	for (int i = 0; i < N; i++) {
		int64_t t0 = now_ms();
		assert_int_equal(aam_ipc_call(c[i], AAM_IPC_PING, "p", 1, 2000, NULL, NULL),
		                 AAM_OK);
		assert_true(now_ms() - t0 < 1000);
	}
	atomic_store(&g_gate_open, 1);
	for (int i = 0; i < N; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(k[i].rc, AAM_OK); /* queued, then served: never BUSY */
	}
	assert_int_equal(atomic_load(&g_max_entered), 3);
	for (int i = 0; i < N; i++)
		aam_ipc_client_free(c[i]);
	aam_ipc_server_free(srv);
}

static void
test_grows_past_warm_then_shrinks(void **state)
{
	(void)state;
	reset_globals();
	int base = thread_count();
	struct aam_ipc_server *srv = server(1, 8);
	enum { N = 5 };
	struct aam_ipc_client *c[N];
	struct caller k[N];
	pthread_t t[N];
	for (int i = 0; i < N; i++) {
		c[i] = connect_pair(srv);
		k[i] = (struct caller){.c = c[i], .type = T_BLOCK, .rc = -100};
		assert_int_equal(pthread_create(&t[i], NULL, caller_main, &k[i]), 0);
	}
	/* All five run at once although only one thread is kept warm. */
	assert_true(wait_for(&g_entered, N, 3000));
	atomic_store(&g_gate_open, 1);
	for (int i = 0; i < N; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(k[i].rc, AAM_OK);
	}
	/* base + N client readers + N server readers + 1 warm worker, once idle. */
	int want = base + 2 * N + 1;
	int64_t end = now_ms() + 15000;
	/* Wait for the steady state: surplus workers retire, and the warm one may still be
	 * starting. */
	while (thread_count() != want && now_ms() < end)
		sleep_ms(50);
	assert_int_equal(thread_count(), want);
	/* The pool still works after shrinking. */
	assert_int_equal(aam_ipc_call(c[0], T_ECHO, "x", 1, 2000, NULL, NULL), AAM_OK);
	for (int i = 0; i < N; i++)
		aam_ipc_client_free(c[i]);
	aam_ipc_server_free(srv);
}

static void
test_slow_sender_does_not_pin_a_worker(void **state)
{
	(void)state;
	reset_globals();
	/* One worker in all. */
	struct aam_ipc_server *srv = server(1, 1);
	struct aam_ipc_client *slow = connect_pair(srv);
	struct aam_ipc_client *fast = connect_pair(srv);
	struct aam_ipc_req *q;
	assert_int_equal(aam_ipc_req_open(slow, &q), AAM_OK);
	assert_int_equal(aam_ipc_req_send(q, T_ACCUM, AAM_IPC_F_MORE, "part1-", 6, 1000), AAM_OK);
	assert_true(wait_for(&g_accum_calls, 1, 3000));
	/* The slow request waits for its next frame without holding the only worker. */
	for (int i = 0; i < 20; i++) {
		struct aam_buf reply;
		aam_buf_init(&reply, 64);
		assert_int_equal(aam_ipc_call(fast, T_ECHO, "fast", 4, 2000, NULL, &reply), AAM_OK);
		assert_string_equal(aam_buf_cstr(&reply), "fast");
		aam_buf_uninit(&reply);
	}
	assert_int_equal(aam_ipc_req_send(q, AAM_IPC_INJECT_BODY, AAM_IPC_F_END, "part2", 5, 1000),
	                 AAM_OK);
	struct aam_ipc_hdr h;
	struct aam_buf reply;
	aam_buf_init(&reply, 64);
	assert_int_equal(aam_ipc_req_recv(q, 3000, &h, &reply), AAM_OK);
	assert_int_equal(h.flags, 0);
	assert_string_equal(aam_buf_cstr(&reply), "part1-part2");
	aam_buf_uninit(&reply);
	aam_ipc_req_close(q);
	assert_int_equal(atomic_load(&g_accum_calls), 2);
	aam_ipc_client_free(slow);
	aam_ipc_client_free(fast);
	aam_ipc_server_free(srv);
}

static void
test_saturated_server_does_not_starve_another(void **state)
{
	(void)state;
	reset_globals();
	/* As in aam-vault: one server per peer role, each with its own pool. */
	struct aam_ipc_server *gateway = server(1, 2);
	struct aam_ipc_server *attest = server(1, 2);
	enum { N = 4 };
	struct aam_ipc_client *c[N];
	struct caller k[N];
	pthread_t t[N];
	for (int i = 0; i < N; i++) {
		c[i] = connect_pair(gateway);
		k[i] = (struct caller){.c = c[i], .type = T_BLOCK, .rc = -100};
		assert_int_equal(pthread_create(&t[i], NULL, caller_main, &k[i]), 0);
	}
	assert_true(wait_for(&g_entered, 2, 3000));
	/* Every gateway worker is stuck (think: streaming INJECTs); attest still signs. */
	struct aam_ipc_client *a = connect_pair(attest);
	for (int i = 0; i < 50; i++) {
		int64_t t0 = now_ms();
		assert_int_equal(aam_ipc_call(a, T_ECHO, "sign", 4, 2000, NULL, NULL), AAM_OK);
		assert_true(now_ms() - t0 < 1000);
	}
	assert_int_equal(atomic_load(&g_entered), 2);
	atomic_store(&g_gate_open, 1);
	for (int i = 0; i < N; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(k[i].rc, AAM_OK);
	}
	aam_ipc_client_free(a);
	for (int i = 0; i < N; i++)
		aam_ipc_client_free(c[i]);
	aam_ipc_server_free(attest);
	aam_ipc_server_free(gateway);
}

static void
test_stop_with_queued_requests(void **state)
{
	(void)state;
	reset_globals();
	struct aam_ipc_server *srv = server(1, 1);
	enum { N = 4 };
	struct aam_ipc_client *c[N];
	struct caller k[N];
	pthread_t t[N];
	for (int i = 0; i < N; i++) {
		c[i] = connect_pair(srv);
		k[i] = (struct caller){.c = c[i], .type = T_BLOCK, .rc = -100};
		assert_int_equal(pthread_create(&t[i], NULL, caller_main, &k[i]), 0);
	}
	assert_true(wait_for(&g_entered, 1, 3000));
	sleep_ms(50); /* the other three are queued behind the only worker */
	/* Freeing stops: the running handler is cancelled, the queue drains, nothing hangs. */
	int64_t t0 = now_ms();
	aam_ipc_server_free(srv);
	assert_true(now_ms() - t0 < 5000);
	for (int i = 0; i < N; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(k[i].rc, AAM_E_CLOSED);
	}
	assert_int_equal(atomic_load(&g_entered), 0);
	for (int i = 0; i < N; i++)
		aam_ipc_client_free(c[i]);
}

static void
test_defaults(void **state)
{
	(void)state;
	reset_globals();
	/* Zero means defaults; a cap below the warm size is raised to it. */
	struct aam_ipc_server *srv = server(0, 0);
	struct aam_ipc_client *c = connect_pair(srv);
	assert_int_equal(aam_ipc_call(c, T_ECHO, "d", 1, 2000, NULL, NULL), AAM_OK);
	aam_ipc_client_free(c);
	aam_ipc_server_free(srv);
	srv = server(3, 1);
	enum { N = 3 };
	struct aam_ipc_client *cs[N];
	struct caller k[N];
	pthread_t t[N];
	for (int i = 0; i < N; i++) {
		cs[i] = connect_pair(srv);
		k[i] = (struct caller){.c = cs[i], .type = T_BLOCK, .rc = -100};
		assert_int_equal(pthread_create(&t[i], NULL, caller_main, &k[i]), 0);
	}
	assert_true(wait_for(&g_entered, N, 3000));
	atomic_store(&g_gate_open, 1);
	for (int i = 0; i < N; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(k[i].rc, AAM_OK);
		aam_ipc_client_free(cs[i]);
	}
	aam_ipc_server_free(srv);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_threads_are_reused),
	        cmocka_unit_test(test_cap_queues_instead_of_refusing),
	        cmocka_unit_test(test_grows_past_warm_then_shrinks),
	        cmocka_unit_test(test_slow_sender_does_not_pin_a_worker),
	        cmocka_unit_test(test_saturated_server_does_not_starve_another),
	        cmocka_unit_test(test_stop_with_queued_requests),
	        cmocka_unit_test(test_defaults),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
