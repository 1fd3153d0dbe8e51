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
 * them when `threads` > 1), so with a pool they must be thread-safe.  A
 * handler gets the whole body at once and fills a buffered response; this
 * is meant for small JSON APIs, not for streaming.
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

struct aam_http_server;

/* One request as a handler sees it.  Everything lives until the handler returns. */
struct aam_http_request {
	const char *method; /* "GET", "POST", ... */
	const char *path;   /* decoded path without the query string */
	const uint8_t *body;
	size_t body_len;
	/* The peer's address without port ("127.0.0.1", "::1"), for rate limiting. */
	char client_addr[AAM_HTTP_ADDR_MAX];
	void *conn; /* libmicrohttpd's connection; use the accessors below */
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
};

/*
 * A handler answers through RESP and returns AAM_OK.  Returning an error
 * code without having set RESP->status makes the library answer 500 with
 * a generic body (the code is logged, never sent).
 */
typedef int (*aam_http_handler)(void *ctx, const struct aam_http_request *req,
                                struct aam_http_response *resp);

struct aam_http_route {
	const char *method; /* exact, upper case */
	const char *path;   /* exact match on the decoded path */
	aam_http_handler handler;
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

#endif /* AAM_COMMON_HTTP_H */
