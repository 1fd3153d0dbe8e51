/*
 * IPC server, per connection: one reader thread reads frames and routes
 * them by request id; an admitted request is run by the server's worker
 * pool (ipc_pool.c), which feeds its frames, in order, to the handler.
 * Everything is bounded: requests in flight, open request streams, bytes
 * queued per request, worker threads, and the time a frame may take once
 * it has started.
 */
#include "common/ipc.h"
#include "common/ipc_internal.h"
#include "common/ipc_server_internal.h"
#include "common/buf.h"
#include "common/log.h"
#include "aam/err.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

/* ---- requests ---------------------------------------------------------- */

static void
frames_free(struct aam_ipc_qframe *f)
{
	while (f != NULL) {
		struct aam_ipc_qframe *next = f->next;
		free(f->data);
		free(f);
		f = next;
	}
}

/* Unlinks Q from its connection; the caller holds c->mu and frees Q after. */
static void
req_unlink(struct aam_ipc_conn *c, struct aam_ipc_replier *q)
{
	for (struct aam_ipc_replier **pp = &c->reqs; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == q) {
			*pp = q->next;
			c->nreqs--;
			return;
		}
	}
}

/* Frees an unlinked request, outside any lock (the state callback may block). */
static void
req_free(struct aam_ipc_replier *q)
{
	if (q == NULL)
		return;
	frames_free(q->head);
	if (q->state_free != NULL)
		q->state_free(q->state);
	free(q);
}

/* Whether nobody will touch Q again: its input and its handling are both over. */
static bool
req_finished(const struct aam_ipc_replier *q)
{
	return q->input_done && (!q->admitted || q->handled);
}

/*
 * Whether Q must now go to the pool: it is admitted, nobody holds it, and
 * it has something to do (a frame, or the end of its input, or a dead
 * connection to clean up after).  Marks it scheduled; the caller holds
 * c->mu and submits Q, which stays alive until a worker has handled it.
 */
static bool
req_claim(struct aam_ipc_conn *c, struct aam_ipc_replier *q)
{
	if (!q->admitted || q->handled || q->scheduled)
		return false;
	if (q->head == NULL && !q->input_done && !atomic_load(&c->dead))
		return false;
	q->scheduled = true;
	return true;
}

static struct aam_ipc_replier *
req_find(struct aam_ipc_conn *c, uint32_t id)
{
	for (struct aam_ipc_replier *q = c->reqs; q != NULL; q = q->next) {
		if (q->id == id)
			return q;
	}
	return NULL;
}

/* ---- inline runs (see ipc_server_internal.h) ---------------------------- */

static int64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct aam_ipc_type_stat *
type_stat(struct aam_ipc_server *s, uint16_t type)
{
	return &s->stats[(type ^ (type >> 8)) % AAM_IPC_INLINE_SLOTS];
}

bool
aam_ipc_type_inline_ok(struct aam_ipc_server *s, uint16_t type)
{
	pthread_mutex_lock(&s->stat_mu);
	const struct aam_ipc_type_stat *st = type_stat(s, type);
	bool ok = st->used && st->type == type && !st->never &&
	          st->quick_runs >= AAM_IPC_INLINE_MIN_RUNS;
	pthread_mutex_unlock(&s->stat_mu);
	return ok;
}

/* Records how a single-frame request of TYPE went: NS to answer, STREAMED or not. */
static void
type_record(struct aam_ipc_server *s, uint16_t type, int64_t ns, bool streamed)
{
	pthread_mutex_lock(&s->stat_mu);
	struct aam_ipc_type_stat *st = type_stat(s, type);
	if (!st->used || st->type != type)
		*st = (struct aam_ipc_type_stat){.type = type, .used = true};
	if (streamed)
		st->never = true;
	else if (ns > AAM_IPC_INLINE_MAX_NS)
		st->quick_runs = 0;
	else if (st->quick_runs < AAM_IPC_INLINE_MIN_RUNS)
		st->quick_runs++;
	pthread_mutex_unlock(&s->stat_mu);
}

/*
 * Whether the client has already sent more: a client that keeps several
 * requests in flight must not have them read one by one after inline
 * runs of the ones before (frames are read exactly, never ahead, so the
 * socket's queue is all there is).
 */
static bool
input_pending(const struct aam_ipc_conn *c)
{
	int n = 0;
	return ioctl(c->fd, FIONREAD, &n) != 0 || n > 0;
}

/* ---- workers ----------------------------------------------------------- */

void
aam_ipc_req_run(struct aam_ipc_replier *q)
{
	struct aam_ipc_conn *c = q->conn;
	const struct aam_ipc_server_config *cfg = &c->srv->cfg;
	bool cut_short = false, aborted = false;
	int64_t t0 = q->single ? now_ns() : 0;

	pthread_mutex_lock(&c->mu);
	for (;;) {
		if (atomic_load(&c->dead))
			break;
		if (q->head == NULL) {
			if (!q->input_done) {
				/*
				 * Waiting for the client's next frame would pin a
				 * pool thread on a slow peer: let go, the reader
				 * schedules the request again when a frame comes.
				 */
				q->scheduled = false;
				pthread_mutex_unlock(&c->mu);
				return;
			}
			/* Input ended before the request's last frame. */
			cut_short = true;
			aborted = q->aborted;
			break;
		}
		struct aam_ipc_qframe *f = q->head;
		q->head = f->next;
		if (q->head == NULL)
			q->tail = NULL;
		q->queued -= f->h.len;
		pthread_cond_broadcast(&c->cond); /* the reader may wait for room */
		pthread_mutex_unlock(&c->mu);

		bool last = aam_ipc_flags_final(f->h.flags);
		int rc = cfg->handle(cfg->ctx, &c->peer, &f->h, f->data, q);
		if (rc != AAM_OK && !q->replied)
			aam_ipc_reply_error(q, rc, NULL);
		else if (last && !q->replied)
			aam_ipc_reply_error(q, AAM_E_INTERNAL, "request was not answered");
		free(f->data);
		free(f);

		pthread_mutex_lock(&c->mu);
		if (q->replied)
			break;
	}

	/*
	 * c->mu is held from here to the end in the common case (answered,
	 * or the connection died), so a worker takes it once after its
	 * reply: the client's next request is often already being
	 * dispatched by the reader, and every extra round on the lock is a
	 * chance to sleep on it and be woken.
	 */
	if (cut_short && !q->replied) {
		pthread_mutex_unlock(&c->mu);
		if (aborted)
			aam_ipc_reply_error(q, AAM_E_CLOSED, "request abandoned by client");
		else
			aam_ipc_reply_error(q, AAM_E_PROTO, "request stream ended early");
		pthread_mutex_lock(&c->mu);
	}

	if (q->single && q->replied && !cut_short)
		type_record(c->srv, q->type, now_ns() - t0, q->streamed);
	q->handled = true;
	q->draining = true;
	c->inflight--;
	struct aam_ipc_qframe *left = q->head;
	q->head = q->tail = NULL;
	q->queued = 0;
	struct aam_ipc_replier *done = NULL;
	if (req_finished(q)) {
		req_unlink(c, q);
		done = q;
	}
	pthread_cond_broadcast(&c->cond);
	aam_ipc_conn_unref_unlock(c);
	frames_free(left);
	req_free(done);
}

/* ---- reader ------------------------------------------------------------ */

/*
 * Routes one request frame.  Takes PAYLOAD.  Returns an error only for a
 * protocol violation that must drop the peer; *WHY names it.
 */
static int
dispatch(struct aam_ipc_conn *c, const struct aam_ipc_hdr *h, uint8_t *payload, const char **why)
{
	const struct aam_ipc_server_config *cfg = &c->srv->cfg;
	bool final = aam_ipc_flags_final(h->flags);
	struct aam_ipc_replier *done = NULL;

	if (h->id == 0) {
		*why = "request id 0 is reserved";
		free(payload);
		return AAM_E_PROTO;
	}
	pthread_mutex_lock(&c->mu);
	struct aam_ipc_replier *q = req_find(c, h->id);
	if (q != NULL) {
		if (q->input_done) {
			pthread_mutex_unlock(&c->mu);
			*why = "request id reused while in flight";
			free(payload);
			return AAM_E_PROTO;
		}
		if (h->flags & AAM_IPC_F_ERROR) {
			/*
			 * The client abandons a request it was still sending.
			 * The handler is not called again; its worker sees the
			 * input end early and answers with an error.
			 */
			struct aam_ipc_qframe *left = q->head;
			q->head = q->tail = NULL;
			q->queued = 0;
			q->input_done = true;
			q->aborted = true;
			bool run = false;
			if (req_finished(q)) {
				req_unlink(c, q);
				done = q;
			} else {
				run = req_claim(c, q);
			}
			pthread_cond_broadcast(&c->cond);
			pthread_mutex_unlock(&c->mu);
			if (run)
				aam_ipc_pool_submit(&c->srv->pool, q);
			frames_free(left);
			free(payload);
			req_free(done);
			return AAM_OK;
		}
		/* A continuation frame: queue it, waiting for room if needed. */
		while (!q->draining && !atomic_load(&c->dead) && q->head != NULL &&
		       q->queued + h->len > cfg->max_queued)
			pthread_cond_wait(&c->cond, &c->mu);
		struct aam_ipc_qframe *f = NULL;
		if (!q->draining && !atomic_load(&c->dead)) {
			f = calloc(1, sizeof(*f));
			if (f == NULL) {
				pthread_mutex_unlock(&c->mu);
				*why = "out of memory";
				free(payload);
				return AAM_E_NOMEM;
			}
			f->h = *h;
			f->data = payload;
			payload = NULL;
			if (q->tail != NULL)
				q->tail->next = f;
			else
				q->head = f;
			q->tail = f;
			q->queued += h->len;
		}
		if (final)
			q->input_done = true;
		bool run = false;
		if (req_finished(q)) {
			req_unlink(c, q);
			done = q;
		} else {
			run = req_claim(c, q);
		}
		pthread_cond_broadcast(&c->cond);
		pthread_mutex_unlock(&c->mu);
		if (run)
			aam_ipc_pool_submit(&c->srv->pool, q);
		free(payload);
		req_free(done);
		return AAM_OK;
	}

	/* A new request. */
	if (h->flags & AAM_IPC_F_ERROR) {
		pthread_mutex_unlock(&c->mu);
		*why = "request frame carries the error flag";
		free(payload);
		return AAM_E_PROTO;
	}
	if (h->type == AAM_IPC_PING && h->flags == 0) {
		pthread_mutex_unlock(&c->mu);
		struct aam_ipc_hdr r = {.type = AAM_IPC_PING, .id = h->id, .len = h->len};
		aam_ipc_conn_write(c, &r, payload);
		free(payload);
		return AAM_OK;
	}
	if (c->nreqs >= 2 * cfg->max_inflight) {
		pthread_mutex_unlock(&c->mu);
		*why = "too many open request streams";
		free(payload);
		return AAM_E_PROTO;
	}
	q = calloc(1, sizeof(*q));
	struct aam_ipc_qframe *f = calloc(1, sizeof(*f));
	if (q == NULL || f == NULL) {
		pthread_mutex_unlock(&c->mu);
		free(q);
		free(f);
		free(payload);
		*why = "out of memory";
		return AAM_E_NOMEM;
	}
	q->conn = c;
	q->id = h->id;
	q->type = h->type;
	q->input_done = final;
	q->single = final;
	q->next = c->reqs;
	c->reqs = q;
	c->nreqs++;
	int refuse = 0;
	bool run = false, alone = false;
	if (h->type == AAM_IPC_PING) {
		refuse = AAM_E_INVAL; /* a streamed PING means nothing */
	} else if (c->inflight >= cfg->max_inflight) {
		refuse = AAM_E_BUSY;
	} else {
		f->h = *h;
		f->data = payload;
		payload = NULL;
		q->head = q->tail = f;
		q->queued = h->len;
		f = NULL;
		q->admitted = true;
		c->inflight++;
		c->refs++;
		run = req_claim(c, q);
		alone = c->inflight == 1;
	}
	if (refuse != 0) {
		/* Answered now; later frames of the request are discarded. */
		q->draining = true;
		if (req_finished(q)) {
			req_unlink(c, q);
			done = q;
		}
	}
	pthread_mutex_unlock(&c->mu);
	/*
	 * A short request alone on its connection runs right here (see
	 * ipc_server_internal.h); anything else is submitted outside c->mu,
	 * so the worker it wakes finds the lock free.
	 */
	if (run && final && alone && !input_pending(c) && aam_ipc_type_inline_ok(c->srv, h->type))
		aam_ipc_req_run(q);
	else if (run)
		aam_ipc_pool_submit(&c->srv->pool, q);
	if (refuse != 0)
		aam_ipc_conn_write_error(c, h->id, h->type, refuse, NULL);
	free(f);
	free(payload);
	req_free(done);
	return AAM_OK;
}

void *
aam_ipc_conn_reader(void *arg)
{
	struct aam_ipc_conn *c = arg;
	const struct aam_ipc_server_config *cfg = &c->srv->cfg;
	bool drop = false;

	while (!atomic_load(&c->dead)) {
		struct aam_ipc_hdr h;
		uint8_t *payload;
		int rc = aam_ipc_read_frame(c->fd, -1, cfg->frame_timeout_ms, &h, &payload);
		if (rc == AAM_E_CLOSED || (rc == AAM_E_IO && atomic_load(&c->dead)))
			break;
		const char *why = "malformed frame";
		if (rc == AAM_OK)
			rc = dispatch(c, &h, payload, &why);
		else if (rc == AAM_E_TIMEOUT)
			why = "frame stalled";
		if (rc != AAM_OK) {
			/* Answer where possible, then drop: a bad frame is fatal. */
			if (!atomic_load(&c->dead))
				aam_ipc_conn_write_error(
				        c, h.id, h.id != 0 ? h.type : AAM_IPC_ERROR, rc, why);
			aam_log(AAM_LOG_WARN, "ipc.peer_dropped", AAM_F_INT("pid", c->peer.pid),
			        AAM_F_UINT("uid", c->peer.uid), AAM_F_ERR(rc),
			        AAM_F_STR("reason", why));
			drop = true;
			break;
		}
	}
	if (drop || atomic_load(&c->broken))
		aam_ipc_conn_kill(c);

	/*
	 * No more input.  Requests still receiving frames are cut short: the
	 * pool runs them once more to answer (or, on a dead connection, just
	 * to end them).  Requests that were never admitted go now.
	 */
	struct aam_ipc_replier *done = NULL;
	pthread_mutex_lock(&c->mu);
	for (struct aam_ipc_replier *q = c->reqs, *next; q != NULL; q = next) {
		next = q->next;
		q->input_done = true;
		if (req_finished(q)) {
			req_unlink(c, q);
			q->next = done;
			done = q;
		} else if (req_claim(c, q)) {
			aam_ipc_pool_submit(&c->srv->pool, q);
		}
	}
	pthread_cond_broadcast(&c->cond);
	aam_ipc_conn_unref_unlock(c);
	while (done != NULL) {
		struct aam_ipc_replier *next = done->next;
		req_free(done);
		done = next;
	}
	return NULL;
}
