/*
 * The IPC server's worker pool: the threads that run requests, and a
 * FIFO of requests waiting for one.  Starting a thread per request cost
 * more than the work of a small request (thread creation, a fresh TLS
 * block, and the per-thread state that OpenSSL and the PKCS#11 module
 * set up on first use and tear down at exit), so threads are kept and
 * reused.  The pool is bounded; it grows on demand so that long-running
 * handlers (a streaming INJECT waiting on its upstream) delay other
 * requests only once the cap is reached, and shrinks back to its warm
 * size when idle.
 */
#include "common/ipc.h"
#include "common/ipc_internal.h"
#include "common/ipc_server_internal.h"
#include "common/log.h"
#include "aam/err.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

void
aam_ipc_mutex_init_adaptive(pthread_mutex_t *m)
{
	pthread_mutexattr_t a;
	if (pthread_mutexattr_init(&a) != 0) {
		pthread_mutex_init(m, NULL);
		return;
	}
#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
	pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
}

/* Takes T off the idle stack; the caller holds p->mu. */
static void
idle_remove(struct aam_ipc_pool *p, struct aam_ipc_pool_thread *t)
{
	for (struct aam_ipc_pool_thread **pp = &p->idle; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	}
	t->next = NULL;
	t->idle = false;
}

/* The next request for ME, if any; the caller holds p->mu. */
static struct aam_ipc_replier *
take_work(struct aam_ipc_pool *p, struct aam_ipc_pool_thread *me)
{
	struct aam_ipc_replier *q = me->task;
	if (q != NULL) {
		me->task = NULL;
		return q;
	}
	q = p->head;
	if (q != NULL) {
		p->head = q->pool_next;
		if (p->head == NULL)
			p->tail = NULL;
		q->pool_next = NULL;
	}
	return q;
}

static void *
pool_main(void *arg)
{
	struct aam_ipc_pool_thread *me = arg;
	struct aam_ipc_pool *p = me->pool;
	bool leave = false;

	pthread_mutex_lock(&p->mu);
	while (!leave) {
		struct aam_ipc_replier *q = take_work(p, me);
		if (q != NULL) {
			pthread_mutex_unlock(&p->mu);
			p->run(q);
			pthread_mutex_lock(&p->mu);
			continue;
		}
		/* The queue is drained before stopping: queued requests hold connections. */
		if (p->stopping)
			break;
		me->idle = true;
		me->next = p->idle;
		p->idle = me;
		while (me->idle && !p->stopping) {
			int rc = 0;
			if (p->nthreads > p->warm)
				rc = aam_ipc_cond_wait(&me->wake, &p->mu,
				                       aam_ipc_deadline(AAM_IPC_POOL_IDLE_MS));
			else
				pthread_cond_wait(&me->wake, &p->mu);
			/* Threads beyond the warm size leave once idle for a while. */
			if (rc == ETIMEDOUT && me->idle && p->nthreads > p->warm)
				leave = true;
			if (leave)
				break;
		}
		if (me->idle)
			idle_remove(p, me);
	}
	p->nthreads--;
	me->next = p->exited;
	p->exited = me;
	if (p->nthreads == 0)
		pthread_cond_broadcast(&p->empty);
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Joins threads that have left (they no longer touch the pool). */
static void
join_exited(struct aam_ipc_pool_thread *t)
{
	while (t != NULL) {
		struct aam_ipc_pool_thread *next = t->next;
		pthread_join(t->tid, NULL);
		pthread_cond_destroy(&t->wake);
		free(t);
		t = next;
	}
}

/*
 * Starts one thread; the caller holds p->mu, which also keeps the new
 * thread from parking its record on the exited list before
 * pthread_create() has stored its id there.
 */
static int
spawn_locked(struct aam_ipc_pool *p)
{
	struct aam_ipc_pool_thread *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return AAM_E_NOMEM;
	t->pool = p;
	if (aam_ipc_cond_init(&t->wake) != AAM_OK) {
		free(t);
		return AAM_E_NOMEM;
	}
	if (pthread_create(&t->tid, NULL, pool_main, t) != 0) {
		pthread_cond_destroy(&t->wake);
		free(t);
		return AAM_E_NOMEM;
	}
	p->nthreads++;
	return AAM_OK;
}

int
aam_ipc_pool_init(struct aam_ipc_pool *p, unsigned warm, unsigned max,
                  void (*run)(struct aam_ipc_replier *q))
{
	*p = (struct aam_ipc_pool){.warm = warm > 0 ? warm : 1, .run = run};
	p->max = max > p->warm ? max : p->warm;
	if (pthread_cond_init(&p->empty, NULL) != 0)
		return AAM_E_NOMEM;
	aam_ipc_mutex_init_adaptive(&p->mu);
	/* One thread from the start: the pool is never empty while it serves. */
	pthread_mutex_lock(&p->mu);
	int rc = spawn_locked(p);
	pthread_mutex_unlock(&p->mu);
	if (rc != AAM_OK) {
		pthread_mutex_destroy(&p->mu);
		pthread_cond_destroy(&p->empty);
	}
	return rc;
}

void
aam_ipc_pool_submit(struct aam_ipc_pool *p, struct aam_ipc_replier *q)
{
	struct aam_ipc_pool_thread *exited = NULL;
	q->pool_next = NULL;
	pthread_mutex_lock(&p->mu);
	struct aam_ipc_pool_thread *t = p->idle;
	if (t != NULL) {
		/* Straight to the most recently idle thread. */
		p->idle = t->next;
		t->next = NULL;
		t->idle = false;
		t->task = q;
		pthread_cond_signal(&t->wake);
		pthread_mutex_unlock(&p->mu);
		return;
	}
	if (p->tail != NULL)
		p->tail->pool_next = q;
	else
		p->head = q;
	p->tail = q;
	if (p->nthreads < p->max && !p->stopping) {
		/*
		 * Every thread is busy: grow.  If that fails, Q waits for a
		 * busy thread; there is always at least one.
		 */
		exited = p->exited;
		p->exited = NULL;
		if (spawn_locked(p) != AAM_OK)
			aam_log(AAM_LOG_WARN, "ipc.pool_grow_failed",
			        AAM_F_UINT("threads", p->nthreads));
	}
	pthread_mutex_unlock(&p->mu);
	join_exited(exited);
}

void
aam_ipc_pool_uninit(struct aam_ipc_pool *p)
{
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	for (struct aam_ipc_pool_thread *t = p->idle; t != NULL; t = t->next)
		pthread_cond_signal(&t->wake);
	while (p->nthreads > 0)
		pthread_cond_wait(&p->empty, &p->mu);
	struct aam_ipc_pool_thread *exited = p->exited;
	p->exited = NULL;
	pthread_mutex_unlock(&p->mu);
	join_exited(exited);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->empty);
}
