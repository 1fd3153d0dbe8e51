/*
 * Internals of the IPC server helper, shared by ipc_server.c (server and
 * connection lifetimes), ipc_dispatch.c (reading, routing and running
 * requests) and ipc_reply.c (writing replies).  Not part of the API.
 *
 * Lifetimes are reference counts under locks rather than joins: a
 * connection lives while its reader or any admitted request holds it, a
 * request while it is being handled or its input is still arriving.
 * Whoever drops the last reference frees, and the server waits for its
 * connection count to reach zero before returning.
 *
 * Handlers run on the server's worker pool (ipc_pool.c).  A request is
 * queued on the pool only when it has something to do (a frame to hand
 * to the handler, or its input ended), and a worker lets go of it when
 * its queue runs dry, so no thread ever sleeps waiting for a slow
 * client's next frame.  At most one worker holds a request at a time,
 * which keeps its frames in order and its handler calls sequential.
 *
 * Lock order: conn->mu, then pool->mu.  Workers never hold pool->mu
 * while running a request.
 */
#ifndef AAM_COMMON_IPC_SERVER_INTERNAL_H
#define AAM_COMMON_IPC_SERVER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/ipc.h"
#include "common/reaper.h"

/* A request frame waiting for its handler. */
struct aam_ipc_qframe {
	struct aam_ipc_qframe *next;
	struct aam_ipc_hdr h;
	uint8_t *data;
};

struct aam_ipc_conn;

/* One request: the replier handed to the handler is the request itself. */
struct aam_ipc_replier {
	struct aam_ipc_replier *next; /* in conn->reqs */
	struct aam_ipc_conn *conn;
	uint32_t id;
	uint16_t type;               /* of the first frame; error replies carry it */
	struct aam_ipc_qframe *head; /* frames received, not yet handled */
	struct aam_ipc_qframe *tail;
	size_t queued;   /* payload bytes in the queue */
	bool input_done; /* last request frame received, or input ended */
	bool admitted;   /* counted in conn->inflight, holds a conn reference */
	bool scheduled;  /* queued on the pool or held by a worker */
	bool handled;    /* handling is over: never scheduled again */
	bool draining;   /* no more handler calls: frames are discarded */
	bool replied;    /* final reply sent (worker thread only) */
	bool single;     /* the request came in one frame */
	bool streamed;   /* a non-final reply frame was sent (worker thread only) */
	bool aborted;    /* the client abandoned it mid-stream */
	struct aam_ipc_replier *pool_next; /* in the pool's run queue */
	void *state;
	void (*state_free)(void *);
};

struct aam_ipc_conn {
	struct aam_ipc_conn *next; /* in srv->conns */
	struct aam_ipc_server *srv;
	int fd;
	struct aam_ipc_peer peer;
	pthread_mutex_t mu;  /* everything below but the atomics */
	pthread_cond_t cond; /* queues changed, input ended, dead */
	pthread_mutex_t wmu; /* one frame on the wire at a time */
	atomic_bool dead;    /* dropped or stopping: stop handling */
	atomic_bool broken;  /* a write failed: nothing more can be sent */
	unsigned refs;       /* reader + admitted requests */
	unsigned inflight;   /* admitted requests not yet handled */
	unsigned nreqs;
	struct aam_ipc_replier *reqs;
};

/*
 * A bounded pool of worker threads that run requests (ipc_pool.c).  Up
 * to WARM threads stay once started; more are started on demand up to
 * MAX and leave after AAM_IPC_POOL_IDLE_MS without work.  Idle threads
 * wait on a stack, each on its own condition variable, and a request is
 * handed straight to the most recently idle one: that thread's caches
 * (and the per-thread state of OpenSSL and the PKCS#11 module) are the
 * warmest, and only the thread that gets the work is woken.  Requests
 * queue in FIFO order only while no thread is idle.  Threads are
 * joinable: one that leaves parks its record on EXITED, and whoever
 * starts a thread next, or uninit, joins it.
 */
#define AAM_IPC_POOL_IDLE_MS 5000

struct aam_ipc_pool;

struct aam_ipc_pool_thread {
	struct aam_ipc_pool_thread *next; /* on the idle stack or the exited list */
	struct aam_ipc_pool *pool;
	pthread_t tid;
	pthread_cond_t wake;
	struct aam_ipc_replier *task; /* handed over by submit */
	bool idle;                    /* on the idle stack */
};

struct aam_ipc_pool {
	pthread_mutex_t mu;
	pthread_cond_t empty;                /* nthreads reached zero */
	struct aam_ipc_replier *head, *tail; /* waiting for a thread */
	struct aam_ipc_pool_thread *idle;    /* most recently idle first */
	unsigned nthreads;
	unsigned warm, max;
	bool stopping;
	struct aam_ipc_pool_thread *exited;
	void (*run)(struct aam_ipc_replier *q);
};

/* Starts one thread (the pool is never empty while it runs). */
int aam_ipc_pool_init(struct aam_ipc_pool *p, unsigned warm, unsigned max,
                      void (*run)(struct aam_ipc_replier *q));
/*
 * Queues Q for a worker, starting a thread when every thread is busy and
 * the cap allows.  Never fails: at worst Q waits for a busy thread.
 */
void aam_ipc_pool_submit(struct aam_ipc_pool *p, struct aam_ipc_replier *q);
/* Lets every thread finish the queue, exit, and joins them all. */
void aam_ipc_pool_uninit(struct aam_ipc_pool *p);

/*
 * Running short requests on the reader thread.  Handing a request to a
 * pool thread costs a wake-up and two context switches, which on a
 * virtual machine is a good part of a small request (measured on the
 * vault's SIGN: ~17% more requests per second when the reader runs it
 * itself).  But a reader busy with a handler reads no more frames from
 * its connection, so only requests that cannot hold it long qualify: a
 * single-frame request, alone on its connection (nothing else of that
 * connection in flight, and no further frame already waiting on the
 * socket, so a pipelining client keeps its concurrency), of a message
 * type whose last
 * AAM_IPC_INLINE_MIN_RUNS requests were each answered with one reply
 * frame within AAM_IPC_INLINE_MAX_NS.  A slower run sends the type back
 * to the pool until it has again that many quick runs in a row; a type
 * that ever streams its reply (INJECT) never runs inline.  The table is
 * per server, keyed by a hash of the type: a collision only resets the
 * count of the type that took the slot.
 */
#define AAM_IPC_INLINE_SLOTS    256
#define AAM_IPC_INLINE_MIN_RUNS 32
#define AAM_IPC_INLINE_MAX_NS   (1000 * 1000)

struct aam_ipc_type_stat {
	uint16_t type;
	bool used;
	bool never;          /* streamed a reply once: never inline */
	unsigned quick_runs; /* consecutive quick, single-reply runs */
};

/* Whether a request of TYPE may run on the reader thread (ipc_dispatch.c). */
bool aam_ipc_type_inline_ok(struct aam_ipc_server *s, uint16_t type);

struct aam_ipc_server {
	struct aam_ipc_server_config cfg;
	struct aam_ipc_pool pool;
	pthread_mutex_t stat_mu; /* stats */
	struct aam_ipc_type_stat stats[AAM_IPC_INLINE_SLOTS];
	int lfd;
	int wake[2]; /* self-pipe: stop() writes, run() polls */
	atomic_int stopping;
	pthread_mutex_t mu;
	pthread_cond_t cond; /* nconns changed */
	struct aam_ipc_conn *conns;
	unsigned nconns;
	/* Reader threads, joinable (common/reaper.h): close_all joins them all. */
	struct aam_reaper readers;
};

/* Writes one frame; a failure marks the connection broken (AAM_E_CLOSED). */
int aam_ipc_conn_write(struct aam_ipc_conn *c, const struct aam_ipc_hdr *h, const void *p);
/* Writes an error frame for ID. */
int aam_ipc_conn_write_error(struct aam_ipc_conn *c, uint32_t id, uint16_t type, int code,
                             const char *msg);
/* Drops one reference; the caller holds c->mu, which this releases. */
void aam_ipc_conn_unref_unlock(struct aam_ipc_conn *c);
/* Marks the connection dead and shuts its socket down. */
void aam_ipc_conn_kill(struct aam_ipc_conn *c);
/* The connection's reader thread (ipc_dispatch.c). */
void *aam_ipc_conn_reader(void *arg);
/* Runs one scheduled request, on a pool worker or inline on the reader (ipc_dispatch.c). */
void aam_ipc_req_run(struct aam_ipc_replier *q);

#endif
