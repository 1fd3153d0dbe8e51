/*
 * A small HTTP/1.1 server over libmicrohttpd for AAM's daemons (aam-attest,
 * the gateway, the agent sidecar): a route table of method + exact path,
 * request bodies accumulated up to a hard limit, buffered JSON responses
 * and the `{"error":{"code","message"}}` bodies of DESIGN.md invariant 8.
 *
 *   static const struct aam_http_route routes[] = {
 *           {"GET", "/healthz", on_healthz},
 *           {"POST", "/v1/thing", on_thing},
 *   };
 *   struct aam_http_config cfg = {.host = "127.0.0.1", .port = 4001,
 *                                 .routes = routes, .nroutes = 2, .ctx = app};
 *   aam_http_server_start(&cfg, &srv);  ...  aam_http_server_stop(srv);
 *
 * The library answers by itself, with a JSON error body, everything that
 * never reaches a handler: an unknown path (404 not_found), a known path
 * with another method (405 method_not_allowed, with an Allow header), a
 * body over the limit (413 payload_too_large, decided from Content-Length
 * before a byte of the body is read when the client sends one) and a
 * handler that fails without answering (500 internal).
 *
 * Handlers run on libmicrohttpd's threads (one epoll thread, or a pool of
 * them when `threads` > 1, or one thread per connection in
 * AAM_HTTP_MODE_THREAD_PER_CONN), so with more than one they must be
 * thread-safe.  A handler gets the whole body at once and fills a buffered
 * response.
 *
 * Routes match a path exactly, or by prefix when the route's path ends in
 * '*' (the path "/v1/tools/" followed by '*' serves
 * "/v1/tools/github/search"), and a method "*" accepts any method.  The first matching route in
 * table order wins.
 *
 * Streaming responses (server-sent events, long downloads).  A handler
 * may answer with aam_http_respond_stream(RESP, RUN, ARG): once it
 * returns, RUN runs on a new thread, starts the response with
 * aam_http_stream_head() and writes the body with aam_http_stream_write()
 * as it becomes available.  Each write is handed to libmicrohttpd as its
 * own chunk and sent at once, so an SSE event reaches the client when it
 * is written, not when the buffer fills.  The per-response queue is
 * bounded: a writer blocks while the client reads slowly and gets
 * AAM_E_CLOSED once the client has gone (or the server stops).  This
 * needs AAM_HTTP_MODE_THREAD_PER_CONN, where libmicrohttpd's content
 * callbacks may block; in the epoll modes a stream is refused with 500
 * (a blocking callback there would stall every other connection).
 */
#ifndef AAM_COMMON_HTTP_H
#define AAM_COMMON_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/buf.h"

#define AAM_HTTP_DEFAULT_MAX_BODY (64u * 1024) /* bytes */
#define AAM_HTTP_DEFAULT_TIMEOUT  30u          /* seconds of inactivity per connection */
#define AAM_HTTP_DEFAULT_MAX_CONN 256u
#define AAM_HTTP_MAX_HEADERS      8u  /* extra response headers per response */
#define AAM_HTTP_ADDR_MAX         64u /* textual client address, IPv6 included */
#define AAM_HTTP_MAX_RESPONSE     (8u * 1024 * 1024)
#define AAM_HTTP_STREAM_QUEUE     (256u * 1024) /* bytes queued per streaming response */
#define AAM_HTTP_STREAM_POLL_MS   200u          /* how often a blocked stream looks for hangups */

struct aam_http_server;
struct aam_http_stream;

/* One request as a handler sees it.  Everything lives until the handler returns. */
struct aam_http_request {
	const char *method; /* "GET", "POST", ... */
	const char *path;   /* decoded path without the query string */
	const uint8_t *body;
	size_t body_len;
	/* The peer's address without port ("127.0.0.1", "::1"), for rate limiting. */
	char client_addr[AAM_HTTP_ADDR_MAX];
	void *conn; /* libmicrohttpd's connection; use the accessors below */
	/* Private: the streaming response's snapshot of headers and query. */
	void *priv;
};

struct aam_http_header {
	char *name;
	char *value;
};

/* A buffered response; the handler sets the status and fills the body. */
struct aam_http_response {
	unsigned status;          /* 0 means "not answered" */
	struct aam_buf body;      /* at most AAM_HTTP_MAX_RESPONSE bytes */
	const char *content_type; /* a static string; default application/json */
	struct aam_http_header headers[AAM_HTTP_MAX_HEADERS];
	size_t nheaders;
	/* Set by aam_http_respond_stream(); the buffered fields are then ignored. */
	void (*stream_run)(void *arg, struct aam_http_stream *st);
	void *stream_arg;
};

/*
 * A handler answers through RESP and returns AAM_OK.  Returning an error
 * code without having set RESP->status makes the library answer 500 with
 * a generic body (the code is logged, never sent).
 */
typedef int (*aam_http_handler)(void *ctx, const struct aam_http_request *req,
                                struct aam_http_response *resp);

struct aam_http_route {
	const char *method; /* exact, upper case; "*" for any method */
	const char *path;   /* exact match on the decoded path; a final '*' matches any rest */
	aam_http_handler handler;
};

enum aam_http_mode {
	/* One epoll thread (or a pool of `threads`): cheap per request, but a
	 * handler that blocks stalls the connections of its thread. */
	AAM_HTTP_MODE_EPOLL = 0,
	/* A thread per connection: handlers and streams may block (on an
	 * upstream, a queue) without stalling anyone else; needed for
	 * aam_http_respond_stream().  max_conns bounds the threads. */
	AAM_HTTP_MODE_THREAD_PER_CONN = 1,
};

struct aam_http_config {
	const char *host; /* IPv4 or IPv6 literal, or a name such as "localhost" */
	uint16_t port;    /* 0: an ephemeral port (see aam_http_server_port) */
	const struct aam_http_route *routes;
	size_t nroutes;
	void *ctx;          /* passed to every handler */
	size_t max_body;    /* 0: AAM_HTTP_DEFAULT_MAX_BODY */
	unsigned timeout_s; /* 0: AAM_HTTP_DEFAULT_TIMEOUT */
	unsigned max_conns; /* 0: AAM_HTTP_DEFAULT_MAX_CONN */
	unsigned threads;   /* 0 or 1: one epoll thread; more: a thread pool */
	const char *name;   /* for log lines ("attest"); NULL: "http" */
	enum aam_http_mode mode;
};

/*
 * Binds, listens and starts serving.  Returns AAM_OK, AAM_E_INVAL (bad
 * configuration), AAM_E_CONFIG (host does not resolve), AAM_E_IO (cannot
 * bind or start), AAM_E_NOMEM.
 */
int aam_http_server_start(const struct aam_http_config *cfg, struct aam_http_server **out);

/* The port actually bound (useful with port 0). */
uint16_t aam_http_server_port(const struct aam_http_server *s);

/*
 * Stops accepting, closes every connection, waits for running handlers
 * and frees.  NULL is fine.
 */
void aam_http_server_stop(struct aam_http_server *s);

/* ---- request accessors ----------------------------------------------- */

/* A request header (case-insensitive name), or NULL. */
const char *aam_http_request_header(const struct aam_http_request *req, const char *name);
/* A decoded query parameter, or NULL when absent. */
const char *aam_http_request_query(const struct aam_http_request *req, const char *key);

/* ---- response helpers ------------------------------------------------- */

/* Adds a header (copied).  AAM_E_TOOBIG past AAM_HTTP_MAX_HEADERS. */
int aam_http_response_header(struct aam_http_response *resp, const char *name, const char *value);

/* Serialises J (compact, keys sorted) as the body with STATUS. */
int aam_http_respond_json(struct aam_http_response *resp, unsigned status, const json_t *j);

/*
 * Answers STATUS with {"error":{"code":CODE,"message":MESSAGE}}.  MESSAGE
 * is fixed text chosen by the caller: never put request values in it.
 */
int aam_http_respond_error(struct aam_http_response *resp, unsigned status, const char *code,
                           const char *message);

/* The HTTP status that suits an aam_err code (400, 404, 413, 500, 503, ...). */
unsigned aam_http_status_for_err(int err);

/* ---- streaming responses ------------------------------------------------ */

typedef void (*aam_http_stream_fn)(void *arg, struct aam_http_stream *st);

/*
 * Makes RESP a streaming response produced by RUN(ARG, stream) on a new
 * thread after the handler returns.  ARG belongs to RUN from then on
 * (RUN is always called, also when the client has already gone, so it
 * can free ARG).  AAM_E_INVAL for NULL arguments or a second call.
 */
int aam_http_respond_stream(struct aam_http_response *resp, aam_http_stream_fn run, void *arg);

/*
 * The request, valid until RUN returns: method, path, body, client
 * address, and aam_http_request_header() / aam_http_request_query() on it
 * (answered from a copy taken when the stream started).
 */
const struct aam_http_request *aam_http_stream_request(const struct aam_http_stream *st);

/*
 * Starts the response: STATUS, CONTENT_TYPE (NULL: application/json) and
 * N extra headers (copied; names and values without CR/LF).  Once only:
 * AAM_E_INVAL the second time; AAM_E_CLOSED when the client has gone.
 */
int aam_http_stream_head(struct aam_http_stream *st, unsigned status,
                         const struct aam_http_header *h, size_t n, const char *content_type);

/*
 * Queues N bytes of body and returns once they fit in the bounded queue
 * (they are then on their way; call again for more).  Blocks while the
 * client is slow.  AAM_E_CLOSED when the client has gone or the server is
 * stopping (stop producing then), AAM_E_INVAL before the head.
 */
int aam_http_stream_write(struct aam_http_stream *st, const void *p, size_t n);

/*
 * Ends the body now (RUN returning does the same): the client sees the
 * end of the response while RUN goes on with bookkeeping.  Writes after
 * it fail with AAM_E_CLOSED.
 */
void aam_http_stream_end(struct aam_http_stream *st);

/* Whether the client has gone (a write would fail with AAM_E_CLOSED). */
bool aam_http_stream_closed(struct aam_http_stream *st);

/*
 * A whole buffered answer through a stream that has no head yet: STATUS,
 * CONTENT_TYPE and BODY, then the end.  For errors found before streaming.
 */
int aam_http_stream_respond(struct aam_http_stream *st, unsigned status, const char *content_type,
                            const void *body, size_t len);

#endif /* AAM_COMMON_HTTP_H */
