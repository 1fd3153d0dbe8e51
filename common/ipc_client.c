/*
 * IPC client: many threads share one connection.  Each request takes a
 * fresh id; a reader thread reads every reply frame and queues it on the
 * request with that id, where the caller's thread picks it up.  A reply
 * for an id the client never issued means the stream can no longer be
 * trusted, so it ends the connection.  A request whose caller gave up
 * (timeout, abandoned stream) stays in the table as a "zombie" until its
 * final reply arrives, so that late reply is recognised and discarded.
 */
#include "common/ipc.h"
#include "common/ipc_internal.h"
#include "common/buf.h"
#include "common/log.h"
#include "aam/err.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CLIENT_BUCKETS     64
#define CLIENT_MAX_QUEUED  (4u * 1024 * 1024) /* reply bytes queued per request */
#define CLIENT_MAX_ZOMBIES 4096u
#define CLIENT_ABORT_MS    1000

struct rframe {
	struct rframe *next;
	struct aam_ipc_hdr h;
	uint8_t *data;
};

struct aam_ipc_req {
	struct aam_ipc_req *next; /* hash chain */
	struct aam_ipc_client *c;
	uint32_t id;
	pthread_cond_t cond; /* a frame arrived or the connection ended */
	struct rframe *head;
	struct rframe *tail;
	size_t queued;
	bool done;       /* the final reply frame was received */
	bool delivered;  /* ... and handed to the caller */
	bool abandoned;  /* closed by the caller before done */
	bool sent_any;   /* the server knows this id */
	bool sent_final; /* the request's last frame went out */
};

struct aam_ipc_client {
	int fd;
	pthread_t reader;
	struct aam_ipc_peer peer;
	pthread_mutex_t mu;  /* table, queues, status */
	pthread_cond_t room; /* the reader waits here for queue room */
	pthread_mutex_t wmu; /* one frame on the wire at a time */
	struct aam_ipc_req *tab[CLIENT_BUCKETS];
	unsigned nzombies;
	uint32_t next_id;
	int status; /* AAM_OK while the reader runs */
	bool closing;
};

static struct aam_ipc_req **
slot(struct aam_ipc_client *c, uint32_t id)
{
	struct aam_ipc_req **pp = &c->tab[id % CLIENT_BUCKETS];
	while (*pp != NULL && (*pp)->id != id)
		pp = &(*pp)->next;
	return pp;
}

static void
rframes_free(struct rframe *f)
{
	while (f != NULL) {
		struct rframe *next = f->next;
		free(f->data);
		free(f);
		f = next;
	}
}

/* Unlinks and frees Q; the caller holds c->mu. */
static void
req_destroy(struct aam_ipc_req *q)
{
	struct aam_ipc_client *c = q->c;
	struct aam_ipc_req **pp = slot(c, q->id);
	if (*pp == q)
		*pp = q->next;
	if (q->abandoned)
		c->nzombies--;
	rframes_free(q->head);
	pthread_cond_destroy(&q->cond);
	free(q);
}

/* Ends the connection for everyone (the reader notices and wakes waiters). */
static void
client_break(struct aam_ipc_client *c)
{
	shutdown(c->fd, SHUT_RDWR);
}

/* ---- reader ------------------------------------------------------------ */

/* Queues one reply frame; returns AAM_E_PROTO if it cannot be ours. */
static int
deliver(struct aam_ipc_client *c, const struct aam_ipc_hdr *h, uint8_t *data)
{
	int rc = AAM_OK;
	pthread_mutex_lock(&c->mu);
	struct aam_ipc_req *q = *slot(c, h->id);
	if (q == NULL || q->done) {
		rc = AAM_E_PROTO;
		goto out;
	}
	while (!q->abandoned && !c->closing && q->head != NULL &&
	       q->queued + h->len > CLIENT_MAX_QUEUED)
		pthread_cond_wait(&c->room, &c->mu);
	bool final = aam_ipc_flags_final(h->flags);
	if (q->abandoned || c->closing) {
		if (final && q->abandoned)
			req_destroy(q); /* a zombie's last frame: forget the id */
		goto out;
	}
	struct rframe *f = calloc(1, sizeof(*f));
	if (f == NULL) {
		rc = AAM_E_NOMEM;
		goto out;
	}
	f->h = *h;
	f->data = data;
	data = NULL;
	if (q->tail != NULL)
		q->tail->next = f;
	else
		q->head = f;
	q->tail = f;
	q->queued += h->len;
	q->done = final;
	pthread_cond_signal(&q->cond);
out:
	pthread_mutex_unlock(&c->mu);
	free(data);
	return rc;
}

static void *
reader_main(void *arg)
{
	struct aam_ipc_client *c = arg;
	int status = AAM_E_CLOSED;
	for (;;) {
		struct aam_ipc_hdr h;
		uint8_t *data;
		int rc = aam_ipc_read_frame(c->fd, -1, AAM_IPC_FRAME_TIMEOUT_MS, &h, &data);
		if (rc == AAM_OK && h.id == 0) {
			/* A connection-level error: the server is dropping us. */
			int code = AAM_E_PROTO;
			if (h.flags & AAM_IPC_F_ERROR)
				aam_ipc_error_decode(data, h.len, &code, NULL, 0);
			aam_log(AAM_LOG_WARN, "ipc.server_error", AAM_F_ERR(code));
			free(data);
			status = AAM_E_CLOSED;
			break;
		}
		if (rc == AAM_OK)
			rc = deliver(c, &h, data);
		if (rc != AAM_OK) {
			status = rc == AAM_E_CLOSED || rc == AAM_E_IO ? AAM_E_CLOSED : AAM_E_PROTO;
			if (status == AAM_E_PROTO) {
				aam_log(AAM_LOG_WARN, "ipc.bad_reply", AAM_F_ERR(rc),
				        AAM_F_UINT("id", h.id), AAM_F_UINT("type", h.type));
			}
			break;
		}
	}
	client_break(c);

	/* Wake every waiter; zombies will never get their replies now. */
	pthread_mutex_lock(&c->mu);
	c->status = status;
	for (unsigned i = 0; i < CLIENT_BUCKETS; i++) {
		for (struct aam_ipc_req *q = c->tab[i], *next; q != NULL; q = next) {
			next = q->next;
			if (q->abandoned)
				req_destroy(q);
			else
				pthread_cond_broadcast(&q->cond);
		}
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* ---- connection -------------------------------------------------------- */

int
aam_ipc_client_adopt(int fd, struct aam_ipc_client **out)
{
	*out = NULL;
	if (fd < 0)
		return AAM_E_INVAL;
	struct aam_ipc_client *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		return AAM_E_NOMEM;
	}
	c->fd = fd;
	c->next_id = 1;
	int rc = aam_ipc_peer_get(fd, &c->peer);
	if (rc == AAM_OK)
		rc = aam_ipc_cond_init(&c->room);
	if (rc != AAM_OK) {
		close(fd);
		free(c);
		return rc;
	}
	/* Taken by the reader for every reply frame and by the caller it wakes. */
	aam_ipc_mutex_init_adaptive(&c->mu);
	pthread_mutex_init(&c->wmu, NULL);
	if (pthread_create(&c->reader, NULL, reader_main, c) != 0) {
		pthread_mutex_destroy(&c->mu);
		pthread_mutex_destroy(&c->wmu);
		pthread_cond_destroy(&c->room);
		close(fd);
		free(c);
		return AAM_E_NOMEM;
	}
	*out = c;
	return AAM_OK;
}

int
aam_ipc_client_connect(const char *path, int timeout_ms, struct aam_ipc_client **out)
{
	int fd;
	*out = NULL;
	int rc = aam_ipc_connect(path, timeout_ms, &fd);
	if (rc != AAM_OK)
		return rc;
	return aam_ipc_client_adopt(fd, out);
}

int
aam_ipc_client_peer(const struct aam_ipc_client *c, struct aam_ipc_peer *peer)
{
	*peer = c->peer;
	return AAM_OK;
}

int
aam_ipc_client_status(struct aam_ipc_client *c)
{
	pthread_mutex_lock(&c->mu);
	int st = c->status;
	pthread_mutex_unlock(&c->mu);
	return st;
}

void
aam_ipc_client_free(struct aam_ipc_client *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	c->closing = true;
	pthread_cond_broadcast(&c->room);
	pthread_mutex_unlock(&c->mu);
	client_break(c);
	pthread_join(c->reader, NULL);
	/* Only zombies can be left (callers close their requests first). */
	pthread_mutex_lock(&c->mu);
	for (unsigned i = 0; i < CLIENT_BUCKETS; i++) {
		while (c->tab[i] != NULL)
			req_destroy(c->tab[i]);
	}
	pthread_mutex_unlock(&c->mu);
	close(c->fd);
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->wmu);
	pthread_cond_destroy(&c->room);
	free(c);
}

/* ---- requests ---------------------------------------------------------- */

int
aam_ipc_req_open(struct aam_ipc_client *c, struct aam_ipc_req **out)
{
	*out = NULL;
	struct aam_ipc_req *q = calloc(1, sizeof(*q));
	if (q == NULL)
		return AAM_E_NOMEM;
	if (aam_ipc_cond_init(&q->cond) != AAM_OK) {
		free(q);
		return AAM_E_NOMEM;
	}
	q->c = c;
	pthread_mutex_lock(&c->mu);
	if (c->status != AAM_OK || c->closing) {
		pthread_mutex_unlock(&c->mu);
		pthread_cond_destroy(&q->cond);
		free(q);
		return AAM_E_CLOSED;
	}
	/*
	 * Ids go up one by one, so an id comes back only after 2^32
	 * requests: long after the server forgot the old one.  0 is reserved.
	 */
	do {
		q->id = c->next_id++;
	} while (q->id == 0 || *slot(c, q->id) != NULL);
	q->next = c->tab[q->id % CLIENT_BUCKETS];
	c->tab[q->id % CLIENT_BUCKETS] = q;
	pthread_mutex_unlock(&c->mu);
	*out = q;
	return AAM_OK;
}

uint32_t
aam_ipc_req_id(const struct aam_ipc_req *q)
{
	return q->id;
}

/* Sends one frame for Q; the caller has validated it. */
static int
req_write(struct aam_ipc_req *q, const struct aam_ipc_hdr *h, const void *p, int timeout_ms)
{
	struct aam_ipc_client *c = q->c;
	size_t written = 0;
	pthread_mutex_lock(&c->wmu);
	int rc = aam_ipc_write_frame_part(c->fd, h, p, timeout_ms, &written);
	pthread_mutex_unlock(&c->wmu);
	if (rc == AAM_OK || written > 0)
		q->sent_any = true;
	if (rc != AAM_OK && written > 0) {
		/* Half a frame is on the wire: the stream cannot be resumed. */
		client_break(c);
	}
	if (rc == AAM_E_IO)
		rc = AAM_E_CLOSED;
	return rc;
}

int
aam_ipc_req_send(struct aam_ipc_req *q, uint16_t type, uint16_t flags, const void *payload,
                 size_t len, int timeout_ms)
{
	if (q == NULL || (flags != 0 && flags != AAM_IPC_F_MORE && flags != AAM_IPC_F_END) ||
	    len > AAM_IPC_MAX_PAYLOAD || (len > 0 && payload == NULL) || q->sent_final)
		return AAM_E_INVAL;
	if (aam_ipc_client_status(q->c) != AAM_OK)
		return AAM_E_CLOSED;
	struct aam_ipc_hdr h = {.type = type, .flags = flags, .id = q->id, .len = (uint32_t)len};
	int rc = req_write(q, &h, payload, timeout_ms);
	if (rc == AAM_OK && aam_ipc_flags_final(flags))
		q->sent_final = true;
	return rc;
}

int
aam_ipc_req_recv(struct aam_ipc_req *q, int timeout_ms, struct aam_ipc_hdr *h,
                 struct aam_buf *payload)
{
	if (q == NULL || q->delivered)
		return AAM_E_INVAL;
	struct aam_ipc_client *c = q->c;
	int64_t deadline = aam_ipc_deadline(timeout_ms);
	pthread_mutex_lock(&c->mu);
	while (q->head == NULL && c->status == AAM_OK) {
		if (aam_ipc_cond_wait(&q->cond, &c->mu, deadline) == ETIMEDOUT && q->head == NULL) {
			pthread_mutex_unlock(&c->mu);
			return AAM_E_TIMEOUT;
		}
	}
	struct rframe *f = q->head;
	if (f == NULL) {
		pthread_mutex_unlock(&c->mu);
		return AAM_E_CLOSED;
	}
	q->head = f->next;
	if (q->head == NULL)
		q->tail = NULL;
	q->queued -= f->h.len;
	if (aam_ipc_flags_final(f->h.flags))
		q->delivered = true;
	pthread_cond_broadcast(&c->room);
	pthread_mutex_unlock(&c->mu);

	int rc = AAM_OK;
	if (h != NULL)
		*h = f->h;
	if (payload != NULL && f->h.len > 0)
		rc = aam_buf_append(payload, f->data, f->h.len);
	free(f->data);
	free(f);
	return rc;
}

void
aam_ipc_req_close(struct aam_ipc_req *q)
{
	if (q == NULL)
		return;
	struct aam_ipc_client *c = q->c;
	if (q->sent_any && !q->sent_final && aam_ipc_client_status(c) == AAM_OK) {
		/*
		 * The server is still collecting this request's frames: tell
		 * it the request is abandoned so it neither waits for the rest
		 * nor runs the handler on a partial request.
		 */
		struct aam_buf b;
		aam_buf_init(&b, AAM_IPC_MAX_ERRMSG + 16);
		if (aam_ipc_error_encode(&b, AAM_E_CLOSED, "request abandoned by client") ==
		    AAM_OK) {
			struct aam_ipc_hdr h = {.type = AAM_IPC_ERROR,
			                        .flags = AAM_IPC_F_ERROR,
			                        .id = q->id,
			                        .len = (uint32_t)b.len};
			if (req_write(q, &h, b.data, CLIENT_ABORT_MS) != AAM_OK)
				client_break(c);
		}
		aam_buf_uninit(&b);
	}
	pthread_mutex_lock(&c->mu);
	if (q->done || !q->sent_any || c->status != AAM_OK || c->closing) {
		req_destroy(q);
	} else {
		/* The reply is still coming: keep the id to discard it. */
		rframes_free(q->head);
		q->head = q->tail = NULL;
		q->queued = 0;
		q->abandoned = true;
		if (++c->nzombies > CLIENT_MAX_ZOMBIES)
			client_break(c); /* the server stopped answering */
		pthread_cond_broadcast(&c->room);
	}
	pthread_mutex_unlock(&c->mu);
}

/* ---- calls ------------------------------------------------------------- */

/* Sends a whole request, split into MORE/END frames when large. */
static int
send_all(struct aam_ipc_req *q, uint16_t type, const void *payload, size_t len, int64_t deadline)
{
	if (len <= AAM_IPC_MAX_PAYLOAD)
		return aam_ipc_req_send(q, type, 0, payload, len, aam_ipc_remaining(deadline));
	const uint8_t *p = payload;
	while (len > 0) {
		size_t n = len > AAM_IPC_MAX_PAYLOAD ? AAM_IPC_MAX_PAYLOAD : len;
		uint16_t flags = n == len ? AAM_IPC_F_END : AAM_IPC_F_MORE;
		int rc = aam_ipc_req_send(q, type, flags, p, n, aam_ipc_remaining(deadline));
		if (rc != AAM_OK)
			return rc;
		p += n;
		len -= n;
	}
	return AAM_OK;
}

/* Decodes the error frame at the end of B (from OFF) and returns its code. */
static int
take_error(struct aam_buf *b, size_t off, size_t start)
{
	char msg[AAM_IPC_MAX_ERRMSG + 1];
	int code;
	if (aam_ipc_error_decode(b->data + off, b->len - off, &code, msg, sizeof(msg)) != AAM_OK)
		return AAM_E_PROTO;
	/* The reply holds only the message, not data frames sent before. */
	b->len = start;
	if (b->data != NULL)
		b->data[start] = 0;
	aam_buf_append_str(b, msg);
	return code;
}

int
aam_ipc_call(struct aam_ipc_client *c, uint16_t type, const void *payload, size_t len,
             int timeout_ms, struct aam_ipc_hdr *reply_hdr, struct aam_buf *reply)
{
	if (c == NULL || (len > 0 && payload == NULL))
		return AAM_E_INVAL;
	struct aam_buf scratch;
	aam_buf_init(&scratch, AAM_IPC_MAX_PAYLOAD);
	struct aam_buf *b = reply != NULL ? reply : &scratch;
	size_t start = b->len;
	int64_t deadline = aam_ipc_deadline(timeout_ms);
	struct aam_ipc_req *q;
	int rc = aam_ipc_req_open(c, &q);
	if (rc != AAM_OK) {
		aam_buf_uninit(&scratch);
		return rc;
	}
	rc = send_all(q, type, payload, len, deadline);
	while (rc == AAM_OK) {
		struct aam_ipc_hdr h;
		if (reply == NULL)
			aam_buf_reset(b); /* nobody wants the data: keep one frame */
		size_t off = b->len;
		rc = aam_ipc_req_recv(q, aam_ipc_remaining(deadline), &h, b);
		if (rc != AAM_OK)
			break;
		if (reply_hdr != NULL)
			*reply_hdr = h;
		if (h.flags & AAM_IPC_F_ERROR) {
			rc = take_error(b, off, start);
			break;
		}
		if (aam_ipc_flags_final(h.flags))
			break;
	}
	aam_ipc_req_close(q);
	aam_buf_uninit(&scratch);
	return rc;
}

int
aam_ipc_call_stream(struct aam_ipc_client *c, uint16_t type, const void *payload, size_t len,
                    int timeout_ms, aam_ipc_frame_fn fn, void *ctx)
{
	if (c == NULL || fn == NULL || (len > 0 && payload == NULL))
		return AAM_E_INVAL;
	struct aam_ipc_req *q;
	int rc = aam_ipc_req_open(c, &q);
	if (rc != AAM_OK)
		return rc;
	struct aam_buf b;
	aam_buf_init(&b, AAM_IPC_MAX_PAYLOAD);
	rc = send_all(q, type, payload, len, aam_ipc_deadline(timeout_ms));
	while (rc == AAM_OK) {
		struct aam_ipc_hdr h;
		aam_buf_reset(&b);
		rc = aam_ipc_req_recv(q, timeout_ms, &h, &b);
		if (rc != AAM_OK)
			break;
		if (h.flags & AAM_IPC_F_ERROR) {
			rc = take_error(&b, 0, 0);
			break;
		}
		rc = fn(ctx, &h, b.data);
		if (rc != AAM_OK || aam_ipc_flags_final(h.flags))
			break;
	}
	aam_ipc_req_close(q);
	aam_buf_uninit(&b);
	return rc;
}
