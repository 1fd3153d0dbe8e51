/*
 * IPC server replies: one frame at a time on a connection, and the
 * replier API handlers use to answer, stream and notice cancellation.
 */
#include "common/ipc.h"
#include "common/ipc_internal.h"
#include "common/ipc_server_internal.h"
#include "common/buf.h"
#include "common/log.h"
#include "aam/err.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

/* ---- writing ----------------------------------------------------------- */

int
aam_ipc_conn_write(struct aam_ipc_conn *c, const struct aam_ipc_hdr *h, const void *p)
{
	int rc = AAM_E_CLOSED;
	pthread_mutex_lock(&c->wmu);
	if (!atomic_load(&c->broken)) {
		rc = aam_ipc_write_frame(c->fd, h, p, c->srv->cfg.write_timeout_ms);
		if (rc != AAM_OK) {
			/*
			 * A frame may be half written, so the stream is lost:
			 * shutting it down also wakes the reader to clean up.
			 */
			atomic_store(&c->broken, true);
			shutdown(c->fd, SHUT_RDWR);
			rc = AAM_E_CLOSED;
		}
	}
	pthread_mutex_unlock(&c->wmu);
	return rc;
}

int
aam_ipc_conn_write_error(struct aam_ipc_conn *c, uint32_t id, uint16_t type, int code,
                         const char *msg)
{
	struct aam_buf b;
	aam_buf_init(&b, AAM_IPC_MAX_ERRMSG + 16);
	int rc = aam_ipc_error_encode(&b, code, msg);
	if (rc == AAM_OK) {
		struct aam_ipc_hdr h = {
		        .type = type, .flags = AAM_IPC_F_ERROR, .id = id, .len = (uint32_t)b.len};
		rc = aam_ipc_conn_write(c, &h, b.data);
	}
	aam_buf_uninit(&b);
	return rc;
}

/* ---- replies ----------------------------------------------------------- */

/* No more replies for Q, and its remaining request frames are dropped. */
static void
reply_mark_done(struct aam_ipc_replier *q)
{
	struct aam_ipc_conn *c = q->conn;
	pthread_mutex_lock(&c->mu);
	q->replied = true;
	q->draining = true;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->mu);
}

static int
reply_send(struct aam_ipc_replier *q, uint16_t type, uint16_t flags, const void *p, size_t n)
{
	if (q->replied)
		return AAM_E_INVAL;
	if (!aam_ipc_flags_valid(flags) || n > AAM_IPC_MAX_PAYLOAD || (n > 0 && p == NULL))
		return AAM_E_INVAL;
	struct aam_ipc_hdr h = {.type = type, .flags = flags, .id = q->id, .len = (uint32_t)n};
	bool final = aam_ipc_flags_final(flags);
	/*
	 * A final reply ends the request whether or not its write succeeds,
	 * so it is marked answered before the write: once the frame is out,
	 * the client sends its next request at once, and the reader
	 * dispatching it should not find c->mu taken by this worker.
	 */
	if (final)
		reply_mark_done(q);
	else
		q->streamed = true;
	int rc = aam_ipc_conn_write(q->conn, &h, p);
	if (rc != AAM_OK && !final)
		reply_mark_done(q);
	return rc;
}

int
aam_ipc_reply_frame(struct aam_ipc_replier *r, uint16_t type, uint16_t flags, const void *payload,
                    size_t len)
{
	if (r == NULL || (flags & AAM_IPC_F_ERROR))
		return AAM_E_INVAL; /* errors go through aam_ipc_reply_error */
	return reply_send(r, type, flags, payload, len);
}

int
aam_ipc_reply(struct aam_ipc_replier *r, const void *payload, size_t len)
{
	if (r == NULL || (len > 0 && payload == NULL))
		return AAM_E_INVAL;
	if (len <= AAM_IPC_MAX_PAYLOAD)
		return reply_send(r, r->type, 0, payload, len);
	const uint8_t *p = payload;
	while (len > 0) {
		size_t n = len > AAM_IPC_MAX_PAYLOAD ? AAM_IPC_MAX_PAYLOAD : len;
		uint16_t flags = n == len ? AAM_IPC_F_END : AAM_IPC_F_MORE;
		int rc = reply_send(r, r->type, flags, p, n);
		if (rc != AAM_OK)
			return rc;
		p += n;
		len -= n;
	}
	return AAM_OK;
}

int
aam_ipc_reply_error(struct aam_ipc_replier *r, int code, const char *msg)
{
	if (r == NULL)
		return AAM_E_INVAL;
	struct aam_buf b;
	aam_buf_init(&b, AAM_IPC_MAX_ERRMSG + 16);
	int rc = aam_ipc_error_encode(&b, code, msg);
	if (rc == AAM_OK)
		rc = reply_send(r, r->type, AAM_IPC_F_ERROR, b.data, b.len);
	aam_buf_uninit(&b);
	return rc;
}

bool
aam_ipc_replier_cancelled(const struct aam_ipc_replier *r)
{
	const struct aam_ipc_conn *c = r->conn;
	if (atomic_load(&c->dead) || atomic_load(&c->broken))
		return true;
	/*
	 * On AF_UNIX, POLLHUP means the peer closed both directions; a peer
	 * that only shut down its writing side still waits for replies.
	 */
	struct pollfd pfd = {.fd = c->fd, .events = 0};
	return poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLHUP | POLLERR));
}

void
aam_ipc_replier_set_state(struct aam_ipc_replier *r, void *state, void (*free_fn)(void *))
{
	r->state = state;
	r->state_free = free_fn;
}

void *
aam_ipc_replier_state(const struct aam_ipc_replier *r)
{
	return r->state;
}
