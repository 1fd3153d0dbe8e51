/*
 * libmicrohttpd wrapper: routing, bounded bodies, buffered responses and
 * JSON errors.  See http.h for the contract.
 */
#include "common/http_int.h"
#include "common/json.h"
#include "common/log.h"
#include "aam/err.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <microhttpd.h>

/* Per-request state, created on the first call for a request. */
struct http_req {
	const struct aam_http_route *route;
	struct aam_buf body;
	bool too_big;
	size_t discarded;
};

/*
 * A chunked body over the limit is discarded rather than answered at once
 * (libmicrohttpd cannot queue a response in the middle of an upload), but
 * only up to this many times the limit; past that the connection is cut.
 */
#define HTTP_DISCARD_FACTOR 16u

__attribute__((format(printf, 2, 0))) static void
http_mhd_log(void *cls, const char *fmt, va_list ap)
{
	const struct aam_http_server *s = cls;
	char msg[256];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	aam_log(AAM_LOG_WARN, "http.mhd", AAM_F_STR("server", s != NULL ? s->name : "http"),
	        AAM_F_STR("message", msg));
}

unsigned
aam_http_status_for_err(int err)
{
	switch (err) {
	case AAM_OK:
		return 200;
	case AAM_E_INVAL:
	case AAM_E_PARSE:
	case AAM_E_UNSUPPORTED:
		return 400;
	case AAM_E_PERM:
	case AAM_E_DENIED:
		return 403;
	case AAM_E_NOTFOUND:
		return 404;
	case AAM_E_EXISTS:
		return 409;
	case AAM_E_TOOBIG:
		return 413;
	case AAM_E_BUSY:
		return 503;
	case AAM_E_TIMEOUT:
		return 504;
	default:
		return 500;
	}
}

/* ---- responses ------------------------------------------------------------ */

void
aam_http__response_init(struct aam_http_response *r)
{
	memset(r, 0, sizeof(*r));
	aam_buf_init(&r->body, AAM_HTTP_MAX_RESPONSE);
}

void
aam_http__response_uninit(struct aam_http_response *r)
{
	for (size_t i = 0; i < r->nheaders; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
	}
	r->nheaders = 0;
	/* Bodies may carry tokens; wipe them rather than just free. */
	aam_buf_uninit_wipe(&r->body);
}

int
aam_http_response_header(struct aam_http_response *resp, const char *name, const char *value)
{
	if (resp == NULL || name == NULL || value == NULL || name[0] == '\0')
		return AAM_E_INVAL;
	/* A CR or LF in a header would let a value start a new header. */
	if (strpbrk(name, "\r\n:") != NULL || strpbrk(value, "\r\n") != NULL)
		return AAM_E_INVAL;
	if (resp->nheaders >= AAM_HTTP_MAX_HEADERS)
		return AAM_E_TOOBIG;
	char *n = strdup(name), *v = strdup(value);
	if (n == NULL || v == NULL) {
		free(n);
		free(v);
		return AAM_E_NOMEM;
	}
	resp->headers[resp->nheaders].name = n;
	resp->headers[resp->nheaders].value = v;
	resp->nheaders++;
	return AAM_OK;
}

int
aam_http_respond_json(struct aam_http_response *resp, unsigned status, const json_t *j)
{
	if (resp == NULL || j == NULL || status < 100 || status > 599)
		return AAM_E_INVAL;
	aam_buf_reset(&resp->body);
	int rc = aam_json_dump_buf(j, &resp->body, JSON_SORT_KEYS);
	if (rc != AAM_OK)
		return rc;
	resp->status = status;
	resp->content_type = "application/json";
	return AAM_OK;
}

int
aam_http_respond_error(struct aam_http_response *resp, unsigned status, const char *code,
                       const char *message)
{
	if (resp == NULL || code == NULL || status < 100 || status > 599)
		return AAM_E_INVAL;
	aam_buf_reset(&resp->body);
	int rc = aam_json_error_body(&resp->body, code, message != NULL ? message : "");
	if (rc != AAM_OK)
		return rc;
	resp->status = status;
	resp->content_type = "application/json";
	return AAM_OK;
}

/*
 * Hands RESP to libmicrohttpd.  Any failure here leaves the connection
 * to be closed by libmicrohttpd (MHD_NO), which is all that can be done
 * when not even a response object can be built.
 */
enum MHD_Result
aam_http__queue(struct MHD_Connection *c, struct aam_http_response *r)
{
	if (aam_buf_failed(&r->body)) {
		aam_buf_reset(&r->body);
		aam_json_error_body(&r->body, "internal", "The response could not be built.");
		r->status = 500;
		r->content_type = "application/json";
	}
	static char empty[1];
	struct MHD_Response *mr = MHD_create_response_from_buffer(
	        r->body.len, r->body.len > 0 ? (void *)r->body.data : empty, MHD_RESPMEM_MUST_COPY);
	if (mr == NULL)
		return MHD_NO;
	enum MHD_Result ok = MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE,
	                                             r->content_type != NULL ? r->content_type
	                                                                     : "application/json");
	for (size_t i = 0; ok == MHD_YES && i < r->nheaders; i++)
		ok = MHD_add_response_header(mr, r->headers[i].name, r->headers[i].value);
	if (ok == MHD_YES)
		ok = MHD_queue_response(c, r->status, mr);
	MHD_destroy_response(mr);
	return ok;
}

static enum MHD_Result
http_queue_error(struct MHD_Connection *c, unsigned status, const char *code, const char *msg,
                 const char *allow)
{
	struct aam_http_response r;
	aam_http__response_init(&r);
	aam_http_respond_error(&r, status, code, msg);
	if (allow != NULL)
		aam_http_response_header(&r, "Allow", allow);
	enum MHD_Result ok = aam_http__queue(c, &r);
	aam_http__response_uninit(&r);
	return ok;
}

/* ---- requests ------------------------------------------------------------- */

const char *
aam_http_request_header(const struct aam_http_request *req, const char *name)
{
	if (req == NULL || name == NULL)
		return NULL;
	if (req->priv != NULL)
		return aam_http__stream_header(req->priv, name);
	if (req->conn == NULL)
		return NULL;
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *
aam_http_request_query(const struct aam_http_request *req, const char *key)
{
	if (req == NULL || key == NULL)
		return NULL;
	if (req->priv != NULL)
		return aam_http__stream_query(req->priv, key);
	if (req->conn == NULL)
		return NULL;
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

static void
http_client_addr(struct MHD_Connection *c, char *out, size_t outlen)
{
	snprintf(out, outlen, "unknown");
	const union MHD_ConnectionInfo *ci =
	        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || ci->client_addr == NULL)
		return;
	const struct sockaddr *sa = ci->client_addr;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, out, (socklen_t)outlen);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, out, (socklen_t)outlen);
	}
}

/*
 * Strict Content-Length: digits only.  Returns false for a malformed
 * value, which libmicrohttpd would have refused anyway.
 */
static bool
http_parse_length(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	if (s == NULL || *s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return true;
}

/* The route for METHOD + PATH; *PATH_KNOWN tells whether any method serves PATH. */
static const struct aam_http_route *
http_route_find(const struct aam_http_server *s, const char *method, const char *path,
                bool *path_known, char *allow, size_t allowlen)
{
	*path_known = false;
	allow[0] = '\0';
	const struct aam_http_route *hit = NULL;
	for (size_t i = 0; i < s->nroutes; i++) {
		const struct aam_http_route *r = &s->routes[i];
		size_t plen = strlen(r->path);
		bool prefix = plen > 0 && r->path[plen - 1] == '*';
		if (prefix ? strncmp(r->path, path, plen - 1) != 0 : strcmp(r->path, path) != 0)
			continue;
		*path_known = true;
		size_t used = strlen(allow);
		snprintf(allow + used, allowlen - used, "%s%s", used > 0 ? ", " : "", r->method);
		/* The first route in table order wins, so more specific ones go first. */
		if (hit == NULL && (strcmp(r->method, "*") == 0 || strcmp(r->method, method) == 0))
			hit = r;
	}
	return hit;
}

static enum MHD_Result
http_dispatch(struct aam_http_server *s, struct MHD_Connection *c, const char *url,
              const char *method, struct http_req *rq)
{
	struct aam_http_request req = {
	        .method = method,
	        .path = url,
	        .body = rq->body.data,
	        .body_len = rq->body.len,
	        .conn = c,
	};
	http_client_addr(c, req.client_addr, sizeof(req.client_addr));

	struct aam_http_response resp;
	aam_http__response_init(&resp);
	int rc = rq->route->handler(s->ctx, &req, &resp);
	if (resp.stream_run != NULL) {
		enum MHD_Result sok = aam_http__stream_dispatch(s, c, &req, &rq->body, &resp);
		aam_http__response_uninit(&resp);
		return sok;
	}
	if (resp.status == 0) {
		aam_log(AAM_LOG_ERROR, "http.handler_failed", AAM_F_STR("server", s->name),
		        AAM_F_STR("path", url), AAM_F_ERR(rc != AAM_OK ? rc : AAM_E_INTERNAL));
		aam_http__response_uninit(&resp);
		aam_http__response_init(&resp);
		aam_http_respond_error(&resp, 500, "internal",
		                       "The request could not be processed.");
	}
	aam_log(AAM_LOG_DEBUG, "http.request", AAM_F_STR("server", s->name),
	        AAM_F_STR("method", method), AAM_F_STR("path", url),
	        AAM_F_UINT("status", resp.status), AAM_F_STR("client", req.client_addr));
	enum MHD_Result ok = aam_http__queue(c, &resp);
	aam_http__response_uninit(&resp);
	return ok;
}

static enum MHD_Result
http_on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                const char *version, const char *upload_data, size_t *upload_data_size,
                void **con_cls)
{
	(void)version;
	struct aam_http_server *s = cls;
	struct http_req *rq = *con_cls;

	if (rq == NULL) {
		/* First call: headers only.  Decide what can be decided now. */
		bool known;
		char allow[128];
		const struct aam_http_route *route =
		        http_route_find(s, method, url, &known, allow, sizeof(allow));
		if (route == NULL && !known)
			return http_queue_error(c, 404, "not_found", "No such endpoint.", NULL);
		if (route == NULL)
			return http_queue_error(c, 405, "method_not_allowed",
			                        "This endpoint does not accept that method.",
			                        allow);
		uint64_t clen;
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
		                                             MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl != NULL && http_parse_length(cl, &clen) && clen > s->max_body)
			return http_queue_error(c, 413, "payload_too_large",
			                        "The request body exceeds the size limit.", NULL);
		rq = calloc(1, sizeof(*rq));
		if (rq == NULL)
			return MHD_NO;
		rq->route = route;
		aam_buf_init(&rq->body, s->max_body);
		*con_cls = rq;
		return MHD_YES;
	}

	if (*upload_data_size > 0) {
		if (!rq->too_big &&
		    aam_buf_append(&rq->body, upload_data, *upload_data_size) != AAM_OK) {
			rq->too_big = true;
			aam_buf_uninit_wipe(&rq->body);
		}
		if (rq->too_big) {
			rq->discarded += *upload_data_size;
			if (rq->discarded / HTTP_DISCARD_FACTOR > s->max_body)
				return MHD_NO;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}

	if (rq->too_big)
		return http_queue_error(c, 413, "payload_too_large",
		                        "The request body exceeds the size limit.", NULL);
	return http_dispatch(s, c, url, method, rq);
}

static void
http_on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                  enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	(void)toe;
	struct http_req *rq = *con_cls;
	if (rq == NULL)
		return;
	/* Request bodies carry evidence and join tokens: wipe, do not just free. */
	aam_buf_uninit_wipe(&rq->body);
	free(rq);
	*con_cls = NULL;
}

/* Resolves HOST:PORT to one socket address. */
static int
http_resolve(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *sslen)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	char portstr[8];
	snprintf(portstr, sizeof(portstr), "%u", (unsigned)port);
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	if (getaddrinfo(host, portstr, &hints, &res) != 0) {
		hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
		if (getaddrinfo(host, portstr, &hints, &res) != 0)
			return AAM_E_CONFIG;
	}
	int rc = AAM_E_CONFIG;
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
		    ai->ai_addrlen <= sizeof(*ss)) {
			memset(ss, 0, sizeof(*ss));
			memcpy(ss, ai->ai_addr, ai->ai_addrlen);
			*sslen = ai->ai_addrlen;
			rc = AAM_OK;
			break;
		}
	}
	freeaddrinfo(res);
	return rc;
}

int
aam_http_server_start(const struct aam_http_config *cfg, struct aam_http_server **out)
{
	if (out == NULL)
		return AAM_E_INVAL;
	*out = NULL;
	if (cfg == NULL || cfg->host == NULL || (cfg->routes == NULL && cfg->nroutes > 0))
		return AAM_E_INVAL;
	for (size_t i = 0; i < cfg->nroutes; i++)
		if (cfg->routes[i].method == NULL || cfg->routes[i].path == NULL ||
		    cfg->routes[i].handler == NULL)
			return AAM_E_INVAL;

	struct sockaddr_storage ss;
	socklen_t sslen = 0;
	int rc = http_resolve(cfg->host, cfg->port, &ss, &sslen);
	if (rc != AAM_OK) {
		aam_log(AAM_LOG_ERROR, "http.resolve_failed", AAM_F_STR("host", cfg->host));
		return rc;
	}

	struct aam_http_server *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return AAM_E_NOMEM;
	s->routes = cfg->routes;
	s->nroutes = cfg->nroutes;
	s->ctx = cfg->ctx;
	s->max_body = cfg->max_body != 0 ? cfg->max_body : AAM_HTTP_DEFAULT_MAX_BODY;
	s->name = cfg->name != NULL ? cfg->name : "http";
	s->mode = cfg->mode;
	atomic_init(&s->stopping, false);
	pthread_mutex_init(&s->wmu, NULL);
	pthread_cond_init(&s->wcv, NULL);

	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	if (cfg->mode == AAM_HTTP_MODE_THREAD_PER_CONN)
		flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
		        MHD_USE_POLL | MHD_USE_ERROR_LOG;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	unsigned timeout = cfg->timeout_s != 0 ? cfg->timeout_s : AAM_HTTP_DEFAULT_TIMEOUT;
	unsigned conns = cfg->max_conns != 0 ? cfg->max_conns : AAM_HTTP_DEFAULT_MAX_CONN;
	/* A pool makes no sense with a thread per connection. */
	unsigned threads =
	        cfg->threads > 1 && cfg->mode != AAM_HTTP_MODE_THREAD_PER_CONN ? cfg->threads : 1;

	/* The pool option is only passed for a real pool: 1 would mean one worker plus a master. */
	struct MHD_OptionItem opts[] = {
	        {MHD_OPTION_SOCK_ADDR, 0, &ss},
	        {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)timeout, NULL},
	        {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)conns, NULL},
	        {threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, (intptr_t)threads,
	         NULL},
	        {MHD_OPTION_END, 0, NULL},
	};
	s->mhd = MHD_start_daemon(flags, cfg->port, NULL, NULL, http_on_request, s,
	                          MHD_OPTION_EXTERNAL_LOGGER, http_mhd_log, s, MHD_OPTION_ARRAY,
	                          opts, MHD_OPTION_NOTIFY_COMPLETED, http_on_completed, s,
	                          MHD_OPTION_END);
	if (s->mhd == NULL) {
		aam_log(AAM_LOG_ERROR, "http.start_failed", AAM_F_STR("server", s->name),
		        AAM_F_STR("host", cfg->host), AAM_F_UINT("port", cfg->port));
		pthread_cond_destroy(&s->wcv);
		pthread_mutex_destroy(&s->wmu);
		free(s);
		return AAM_E_IO;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
	s->port = di != NULL ? di->port : cfg->port;
	aam_log(AAM_LOG_INFO, "http.listen", AAM_F_STR("server", s->name),
	        AAM_F_STR("host", cfg->host), AAM_F_UINT("port", s->port));
	*out = s;
	return AAM_OK;
}

uint16_t
aam_http_server_port(const struct aam_http_server *s)
{
	return s != NULL ? s->port : 0;
}

void
aam_http_server_stop(struct aam_http_server *s)
{
	if (s == NULL)
		return;
	/*
	 * Blocked stream callbacks notice the flag within a poll interval and
	 * give up, so MHD_stop_daemon can join the connection threads; the
	 * producers then see their streams closed and finish on their own.
	 */
	atomic_store(&s->stopping, true);
	if (s->mhd != NULL)
		MHD_stop_daemon(s->mhd);
	pthread_mutex_lock(&s->wmu);
	while (s->workers.running > 0)
		pthread_cond_wait(&s->wcv, &s->wmu);
	pthread_mutex_unlock(&s->wmu);
	/* Each worker has fully exited once joined: nothing of it outlives stop. */
	aam_reaper_join(&s->workers, &s->wmu);
	aam_reaper_uninit(&s->workers);
	pthread_cond_destroy(&s->wcv);
	pthread_mutex_destroy(&s->wmu);
	free(s);
}
