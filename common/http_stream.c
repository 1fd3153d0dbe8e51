/*
 * Streaming responses for common/http: a producer thread writes body
 * chunks into a bounded queue and libmicrohttpd's content callback hands
 * each one to the client as soon as it is there.
 *
 * Why a thread per stream: libmicrohttpd sends a response only after the
 * access handler has returned with it queued, and the status line must be
 * known by then.  So the producer (RUN) runs on its own thread while the
 * connection's thread waits for the head, queues a callback response and
 * then sleeps in the callback until the next chunk.  Sleeping in a
 * callback is legal only with a thread per connection, which is why
 * streams need AAM_HTTP_MODE_THREAD_PER_CONN.
 *
 * The stream object is shared by two sides with their own lifetimes: the
 * connection (until libmicrohttpd frees the response, or until the
 * dispatcher gives up) and the producer (until RUN returns), hence the
 * reference count.  A client that goes away is noticed three ways: the
 * response is freed (libmicrohttpd failed to send), the socket reports a
 * hang-up while we wait (checked every AAM_HTTP_STREAM_POLL_MS), or the
 * server is stopping.  Each sets `closed`, which every wait re-checks.
 */
#include "common/http_int.h"
#include "common/log.h"
#include "aam/err.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct kv {
	char *k, *v; /* v may be NULL (a query key without '=') */
};

struct aam_http_stream {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* any change of state or queue; waiters re-check */
	unsigned refs;
	struct aam_http_server *srv;
	int fd; /* the client socket, only for hang-up checks; -1 if unknown */

	bool head, ended, closed;
	unsigned status;
	char *ctype;
	struct aam_http_header hdrs[AAM_HTTP_MAX_HEADERS];
	size_t nhdrs;
	struct aam_buf q; /* queued body bytes not yet taken by libmicrohttpd */

	/* The request as RUN sees it, copied off the connection. */
	struct aam_http_request req;
	char *method, *path;
	struct aam_buf body;
	struct kv *hv, *qv;
	size_t nh, nq, caph, capq;
	bool snap_failed;

	aam_http_stream_fn run;
	void *arg;
};

/* ---- lifetime ------------------------------------------------------------ */

static void
kv_free(struct kv *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		/* Header values carry tokens and proofs. */
		if (a[i].v != NULL)
			aam_wipe(a[i].v, strlen(a[i].v));
		free(a[i].k);
		free(a[i].v);
	}
	free(a);
}

static void
stream_free(struct aam_http_stream *st)
{
	for (size_t i = 0; i < st->nhdrs; i++) {
		free(st->hdrs[i].name);
		free(st->hdrs[i].value);
	}
	free(st->ctype);
	aam_buf_uninit_wipe(&st->q);
	aam_buf_uninit_wipe(&st->body);
	kv_free(st->hv, st->nh);
	kv_free(st->qv, st->nq);
	free(st->method);
	free(st->path);
	pthread_cond_destroy(&st->cv);
	pthread_mutex_destroy(&st->mu);
	free(st);
}

static void
stream_unref(struct aam_http_stream *st)
{
	pthread_mutex_lock(&st->mu);
	bool last = --st->refs == 0;
	pthread_mutex_unlock(&st->mu);
	if (last)
		stream_free(st);
}

/* Marks the stream closed and wakes everyone; caller holds MU. */
static void
stream_close_locked(struct aam_http_stream *st)
{
	st->closed = true;
	pthread_cond_broadcast(&st->cv);
}

/*
 * One bounded wait on the connection side: sleeps up to the poll interval,
 * then notices a stopping server or a client that hung up.  Returns false
 * when the stream is closed.  Caller holds MU.
 */
static bool
stream_wait_conn(struct aam_http_stream *st)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (long)AAM_HTTP_STREAM_POLL_MS * 1000000L;
	while (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	int rc = pthread_cond_timedwait(&st->cv, &st->mu, &ts);
	if (atomic_load(&st->srv->stopping)) {
		stream_close_locked(st);
		return false;
	}
	if (rc == ETIMEDOUT && st->fd >= 0) {
		struct pollfd p = {.fd = st->fd, .events = POLLRDHUP};
		if (poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) {
			stream_close_locked(st);
			return false;
		}
	}
	return !st->closed;
}

/* ---- the request copy ------------------------------------------------------ */

static int
kv_push(struct kv **a, size_t *n, size_t *cap, const char *k, const char *v)
{
	if (*n == *cap) {
		size_t nc = *cap == 0 ? 16 : *cap * 2;
		struct kv *na = realloc(*a, nc * sizeof(*na));
		if (na == NULL)
			return AAM_E_NOMEM;
		*a = na;
		*cap = nc;
	}
	char *kc = strdup(k), *vc = v != NULL ? strdup(v) : NULL;
	if (kc == NULL || (v != NULL && vc == NULL)) {
		free(kc);
		free(vc);
		return AAM_E_NOMEM;
	}
	(*a)[*n].k = kc;
	(*a)[*n].v = vc;
	(*n)++;
	return AAM_OK;
}

static enum MHD_Result
snap_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void)kind;
	struct aam_http_stream *st = cls;
	if (key != NULL && value != NULL &&
	    kv_push(&st->hv, &st->nh, &st->caph, key, value) != AAM_OK)
		st->snap_failed = true;
	return st->snap_failed ? MHD_NO : MHD_YES;
}

static enum MHD_Result
snap_query(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void)kind;
	struct aam_http_stream *st = cls;
	if (key != NULL && kv_push(&st->qv, &st->nq, &st->capq, key, value) != AAM_OK)
		st->snap_failed = true;
	return st->snap_failed ? MHD_NO : MHD_YES;
}

const char *
aam_http__stream_header(const void *priv, const char *name)
{
	const struct aam_http_stream *st = priv;
	for (size_t i = 0; i < st->nh; i++)
		if (strcasecmp(st->hv[i].k, name) == 0)
			return st->hv[i].v;
	return NULL;
}

const char *
aam_http__stream_query(const void *priv, const char *key)
{
	const struct aam_http_stream *st = priv;
	for (size_t i = 0; i < st->nq; i++)
		if (strcmp(st->qv[i].k, key) == 0)
			return st->qv[i].v;
	return NULL;
}

/* ---- the producer's side --------------------------------------------------- */

int
aam_http_respond_stream(struct aam_http_response *resp, aam_http_stream_fn run, void *arg)
{
	if (resp == NULL || run == NULL || resp->stream_run != NULL)
		return AAM_E_INVAL;
	resp->stream_run = run;
	resp->stream_arg = arg;
	return AAM_OK;
}

const struct aam_http_request *
aam_http_stream_request(const struct aam_http_stream *st)
{
	return st != NULL ? &st->req : NULL;
}

int
aam_http_stream_head(struct aam_http_stream *st, unsigned status, const struct aam_http_header *h,
                     size_t n, const char *content_type)
{
	if (st == NULL || status < 100 || status > 599 || (h == NULL && n > 0) ||
	    n > AAM_HTTP_MAX_HEADERS)
		return AAM_E_INVAL;
	for (size_t i = 0; i < n; i++)
		if (h[i].name == NULL || h[i].value == NULL || h[i].name[0] == '\0' ||
		    strpbrk(h[i].name, "\r\n:") != NULL || strpbrk(h[i].value, "\r\n") != NULL)
			return AAM_E_INVAL;
	if (content_type != NULL && strpbrk(content_type, "\r\n") != NULL)
		return AAM_E_INVAL;

	/* Copies are made before taking the lock, so the lock is never held across malloc. */
	struct aam_http_header copy[AAM_HTTP_MAX_HEADERS];
	size_t done = 0;
	int rc = AAM_OK;
	char *ct = strdup(content_type != NULL ? content_type : "application/json");
	if (ct == NULL)
		rc = AAM_E_NOMEM;
	for (; rc == AAM_OK && done < n; done++) {
		copy[done].name = strdup(h[done].name);
		copy[done].value = strdup(h[done].value);
		if (copy[done].name == NULL || copy[done].value == NULL) {
			free(copy[done].name);
			free(copy[done].value);
			rc = AAM_E_NOMEM;
			break;
		}
	}
	pthread_mutex_lock(&st->mu);
	if (rc == AAM_OK && st->head)
		rc = AAM_E_INVAL;
	else if (rc == AAM_OK && (st->closed || st->ended))
		rc = AAM_E_CLOSED;
	if (rc == AAM_OK) {
		st->head = true;
		st->status = status;
		st->ctype = ct;
		memcpy(st->hdrs, copy, done * sizeof(copy[0]));
		st->nhdrs = done;
		pthread_cond_broadcast(&st->cv);
	}
	pthread_mutex_unlock(&st->mu);
	if (rc != AAM_OK) {
		free(ct);
		for (size_t i = 0; i < done; i++) {
			free(copy[i].name);
			free(copy[i].value);
		}
	}
	return rc;
}

int
aam_http_stream_write(struct aam_http_stream *st, const void *p, size_t n)
{
	if (st == NULL || (p == NULL && n > 0))
		return AAM_E_INVAL;
	const uint8_t *b = p;
	int rc = AAM_OK;
	pthread_mutex_lock(&st->mu);
	if (!st->head)
		rc = AAM_E_INVAL;
	while (rc == AAM_OK && n > 0) {
		if (st->closed || st->ended) {
			rc = AAM_E_CLOSED;
			break;
		}
		size_t room = AAM_HTTP_STREAM_QUEUE - st->q.len;
		if (room == 0) {
			/* The connection side wakes us when it has taken bytes or the client left.
			 */
			pthread_cond_wait(&st->cv, &st->mu);
			continue;
		}
		size_t take = n < room ? n : room;
		rc = aam_buf_append(&st->q, b, take);
		if (rc != AAM_OK)
			break;
		b += take;
		n -= take;
		pthread_cond_broadcast(&st->cv);
	}
	pthread_mutex_unlock(&st->mu);
	return rc;
}

void
aam_http_stream_end(struct aam_http_stream *st)
{
	if (st == NULL)
		return;
	pthread_mutex_lock(&st->mu);
	st->ended = true;
	pthread_cond_broadcast(&st->cv);
	pthread_mutex_unlock(&st->mu);
}

bool
aam_http_stream_closed(struct aam_http_stream *st)
{
	if (st == NULL)
		return true;
	pthread_mutex_lock(&st->mu);
	bool c = st->closed;
	pthread_mutex_unlock(&st->mu);
	return c;
}

int
aam_http_stream_respond(struct aam_http_stream *st, unsigned status, const char *content_type,
                        const void *body, size_t len)
{
	int rc = aam_http_stream_head(st, status, NULL, 0, content_type);
	if (rc == AAM_OK && len > 0)
		rc = aam_http_stream_write(st, body, len);
	if (rc == AAM_OK)
		aam_http_stream_end(st);
	return rc;
}

static void *
stream_worker(void *p)
{
	struct aam_http_stream *st = p;
	struct aam_http_server *srv = st->srv;
	st->run(st->arg, st);
	aam_http_stream_end(st);
	stream_unref(st);
	pthread_mutex_lock(&srv->wmu);
	aam_reaper_done(&srv->workers);
	if (srv->workers.running == 0)
		pthread_cond_broadcast(&srv->wcv);
	pthread_mutex_unlock(&srv->wmu);
	return NULL;
}

/* ---- the connection's side -------------------------------------------------- */

static ssize_t
stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	struct aam_http_stream *st = cls;
	ssize_t out;
	pthread_mutex_lock(&st->mu);
	for (;;) {
		if (st->q.len > 0) {
			size_t take = st->q.len < max ? st->q.len : max;
			memcpy(buf, st->q.data, take);
			aam_buf_consume(&st->q, take);
			pthread_cond_broadcast(&st->cv);
			out = (ssize_t)take;
			break;
		}
		if (st->ended) {
			out = MHD_CONTENT_READER_END_OF_STREAM;
			break;
		}
		if (st->closed || !stream_wait_conn(st)) {
			out = MHD_CONTENT_READER_END_WITH_ERROR;
			break;
		}
	}
	pthread_mutex_unlock(&st->mu);
	return out;
}

static void
stream_reader_free(void *cls)
{
	struct aam_http_stream *st = cls;
	pthread_mutex_lock(&st->mu);
	stream_close_locked(st);
	pthread_mutex_unlock(&st->mu);
	stream_unref(st);
}

/* A response holding the head and, when FINISHED, the whole queued body. */
static struct MHD_Response *
stream_build_response(struct aam_http_stream *st, bool finished)
{
	struct MHD_Response *mr;
	static char empty[1];
	if (finished) {
		mr = MHD_create_response_from_buffer(
		        st->q.len, st->q.len > 0 ? (void *)st->q.data : (void *)empty,
		        MHD_RESPMEM_MUST_COPY);
	} else {
		mr = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_reader,
		                                       st, stream_reader_free);
		if (mr == NULL) {
			/* Never created, so its free callback will not drop our reference. */
			stream_reader_free(st);
		}
	}
	if (mr == NULL)
		return NULL;
	enum MHD_Result ok = MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, st->ctype);
	for (size_t i = 0; ok == MHD_YES && i < st->nhdrs; i++)
		ok = MHD_add_response_header(mr, st->hdrs[i].name, st->hdrs[i].value);
	if (ok != MHD_YES) {
		/* Destroying a callback response runs its free callback: the caller's reference. */
		MHD_destroy_response(mr);
		return NULL;
	}
	return mr;
}

static struct aam_http_stream *
stream_new(struct aam_http_server *s, struct MHD_Connection *c, const struct aam_http_request *req,
           struct aam_buf *body, const struct aam_http_response *resp)
{
	struct aam_http_stream *st = calloc(1, sizeof(*st));
	if (st == NULL)
		return NULL;
	pthread_mutex_init(&st->mu, NULL);
	pthread_cond_init(&st->cv, NULL);
	st->refs = 1;
	st->srv = s;
	st->run = resp->stream_run;
	st->arg = resp->stream_arg;
	st->fd = -1;
	aam_buf_init(&st->q, AAM_HTTP_STREAM_QUEUE);
	st->body = *body;
	aam_buf_init(body, body->max);
	st->method = strdup(req->method);
	st->path = strdup(req->path);
	if (st->method == NULL || st->path == NULL)
		st->snap_failed = true;
	if (!st->snap_failed)
		MHD_get_connection_values(c, MHD_HEADER_KIND, snap_header, st);
	if (!st->snap_failed)
		MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, snap_query, st);
	const union MHD_ConnectionInfo *ci =
	        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci != NULL)
		st->fd = ci->connect_fd;
	st->req = *req;
	st->req.method = st->method != NULL ? st->method : "";
	st->req.path = st->path != NULL ? st->path : "";
	st->req.body = st->body.data;
	st->req.body_len = st->body.len;
	st->req.conn = NULL;
	st->req.priv = st;
	return st;
}

/* Runs the producer here, on a closed stream, so it can release ARG. */
static void
stream_run_closed(struct aam_http_stream *st)
{
	pthread_mutex_lock(&st->mu);
	stream_close_locked(st);
	pthread_mutex_unlock(&st->mu);
	st->run(st->arg, st);
}

static enum MHD_Result
stream_fail(struct MHD_Connection *c, unsigned status, const char *code, const char *msg)
{
	struct aam_http_response r;
	aam_http__response_init(&r);
	aam_http_respond_error(&r, status, code, msg);
	enum MHD_Result ok = aam_http__queue(c, &r);
	aam_http__response_uninit(&r);
	return ok;
}

enum MHD_Result
aam_http__stream_dispatch(struct aam_http_server *s, struct MHD_Connection *c,
                          const struct aam_http_request *req, struct aam_buf *body,
                          struct aam_http_response *resp)
{
	struct aam_http_stream *st = stream_new(s, c, req, body, resp);
	if (st == NULL) {
		/* Nothing can run RUN without a stream; the leak of ARG is the lesser evil. */
		aam_log(AAM_LOG_ERROR, "http.stream_failed", AAM_F_STR("server", s->name),
		        AAM_F_ERR(AAM_E_NOMEM));
		return stream_fail(c, 503, "unavailable", "The server is short of memory.");
	}
	if (s->mode != AAM_HTTP_MODE_THREAD_PER_CONN || st->snap_failed) {
		aam_log(AAM_LOG_ERROR, "http.stream_refused", AAM_F_STR("server", s->name),
		        AAM_F_STR("path", req->path),
		        AAM_F_STR("why", st->snap_failed ? "out of memory" : "epoll mode"));
		stream_run_closed(st);
		stream_unref(st);
		return stream_fail(c, 500, "internal", "The request could not be processed.");
	}

	/* Finished workers are joined here, so they never pile up. */
	aam_reaper_join(&s->workers, &s->wmu);
	pthread_mutex_lock(&s->wmu);
	bool counted = aam_reaper_add(&s->workers);
	pthread_mutex_unlock(&s->wmu);
	if (!counted) {
		aam_log(AAM_LOG_ERROR, "http.stream_failed", AAM_F_STR("server", s->name),
		        AAM_F_ERR(AAM_E_NOMEM));
		stream_run_closed(st);
		stream_unref(st);
		return stream_fail(c, 503, "unavailable", "The server is short of memory.");
	}
	/* One reference for the producer, one (already there) for this side. */
	st->refs = 2;
	pthread_t tid;
	int prc = pthread_create(&tid, NULL, stream_worker, st);
	if (prc != 0) {
		aam_log(AAM_LOG_ERROR, "http.stream_thread_failed", AAM_F_STR("server", s->name));
		pthread_mutex_lock(&s->wmu);
		aam_reaper_cancel(&s->workers);
		pthread_mutex_unlock(&s->wmu);
		st->refs = 1;
		stream_run_closed(st);
		stream_unref(st);
		return stream_fail(c, 503, "unavailable", "The server is busy.");
	}

	pthread_mutex_lock(&st->mu);
	while (!st->head && !st->ended && !st->closed)
		stream_wait_conn(st);
	bool head = st->head, finished = st->ended, closed = st->closed;
	pthread_mutex_unlock(&st->mu);

	if (closed) {
		/* The client left (or we are stopping): nothing more to send. */
		stream_unref(st);
		return MHD_NO;
	}
	if (!head) {
		aam_log(AAM_LOG_ERROR, "http.stream_no_head", AAM_F_STR("server", s->name),
		        AAM_F_STR("path", req->path));
		stream_unref(st);
		return stream_fail(c, 500, "internal", "The request could not be processed.");
	}
	/*
	 * When the producer already finished, the whole body is in the queue:
	 * answer it with a Content-Length instead of chunked encoding.  It is
	 * safe to read the queue unlocked now, since nobody writes after the end.
	 */
	unsigned status = st->status;
	struct MHD_Response *mr = stream_build_response(st, finished);
	if (finished)
		stream_unref(st); /* a buffer response does not hold the stream */
	if (mr == NULL)
		return MHD_NO;
	enum MHD_Result ok = MHD_queue_response(c, status, mr);
	MHD_destroy_response(mr);
	return ok;
}
