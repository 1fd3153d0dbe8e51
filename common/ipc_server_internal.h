/*
 * Internals of the IPC server helper, shared by ipc_server.c (server and
 * connection lifetimes), ipc_dispatch.c (reading, routing and running
 * requests) and ipc_reply.c (writing replies).  Not part of the API.
 *
 * Lifetimes are reference counts under locks rather than joins: a
 * connection lives while its reader or any worker holds it, a request
 * while its worker runs or its input is still arriving.  Whoever drops
 * the last reference frees, and the server waits for its connection
 * count to reach zero before returning, so no thread outlives run().
 */
#ifndef AAM_COMMON_IPC_SERVER_INTERNAL_H
#define AAM_COMMON_IPC_SERVER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/ipc.h"

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
	size_t queued;    /* payload bytes in the queue */
	bool input_done;  /* last request frame received, or input ended */
	bool has_worker;  /* a worker thread was started for it */
	bool worker_done; /* ... and has finished */
	bool draining;    /* no more handler calls: frames are discarded */
	bool replied;     /* final reply sent (worker thread only) */
	bool aborted;     /* the client abandoned it mid-stream */
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
	unsigned refs;       /* reader + running workers */
	unsigned inflight;   /* running workers */
	unsigned nreqs;
	struct aam_ipc_replier *reqs;
};

struct aam_ipc_server {
	struct aam_ipc_server_config cfg;
	int lfd;
	int wake[2]; /* self-pipe: stop() writes, run() polls */
	atomic_int stopping;
	pthread_mutex_t mu;
	pthread_cond_t cond; /* nconns changed */
	struct aam_ipc_conn *conns;
	unsigned nconns;
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

#endif
