/*
 * Forwarding one request from the agent code to the gateway.
 *
 * The handler runs on the connection's thread: it copies what the
 * forwarder needs off the connection (method, path, query, the headers
 * worth forwarding) and turns the answer into a streaming response whose
 * producer (fwd_run) runs on its own thread.  The producer sends the
 * request with libcurl, adding "Authorization: DPoP <token>" and a fresh
 * proof for exactly this method and URL, and hands every chunk of the
 * gateway's answer to the agent code as it arrives (server-sent events
 * stay events).
 *
 * Credentials the agent code brings (Authorization, X-Api-Key, ...) are
 * dropped: the SDKs insist on sending some API key, and it must not reach
 * the gateway as if it meant something.  Hop-by-hop headers (RFC 9110
 * section 7.6.1) and Accept-Encoding are dropped too; the gateway then
 * answers uncompressed, so the bytes can be passed through as they are.
 */
#include "agent/sidecar_int.h"
#include "aam/err.h"
#include "common/json.h"
#include "common/log.h"
#include "common/secret.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <microhttpd.h>

#define MAX_FWD_HEADERS  64u
#define MAX_RESP_HEADERS 64u
#define MAX_HEADER_BYTES (64u * 1024)
#define MAX_URL          (16u * 1024)

/* Request headers never forwarded (lower case). */
static const char *const DROP_REQ[] = {"authorization",
                                       "proxy-authorization",
                                       "x-api-key",
                                       "api-key",
                                       "x-goog-api-key",
                                       "dpop",
                                       "host",
                                       "content-length",
                                       "connection",
                                       "keep-alive",
                                       "proxy-connection",
                                       "transfer-encoding",
                                       "te",
                                       "trailer",
                                       "upgrade",
                                       "expect",
                                       "accept-encoding",
                                       NULL};

/* Response headers never passed back: hop-by-hop, or set by our own server. */
static const char *const DROP_RESP[] = {"connection",
                                        "keep-alive",
                                        "proxy-connection",
                                        "transfer-encoding",
                                        "te",
                                        "trailer",
                                        "upgrade",
                                        "content-length",
                                        "content-type",
                                        "date",
                                        "server",
                                        "dpop-nonce",
                                        NULL};

/* Passed back first: what the protocols the sidecar carries need (MCP sessions above all). */
static const char *const KEEP_FIRST[] = {
        "mcp-session-id", "retry-after", "location", "cache-control",
        "x-request-id",   "request-id",  NULL};

static bool
in_list(const char *const *list, const char *name)
{
	for (size_t i = 0; list[i] != NULL; i++)
		if (strcasecmp(list[i], name) == 0)
			return true;
	return false;
}

struct fwd {
	struct aam_agent_sidecar *s;
	struct curl_slist *hdrs; /* forwarded "Name: value" lines */
	size_t nhdrs;
	char *connection; /* the Connection header's value: more hop-by-hop names */
	struct aam_buf query;
	bool query_fail;
};

static void
fwd_free(struct fwd *f)
{
	curl_slist_free_all(f->hdrs);
	free(f->connection);
	aam_buf_uninit(&f->query);
	free(f);
}

/* Whether NAME is listed in a Connection header value (comma-separated tokens). */
static bool
in_connection(const char *conn, const char *name)
{
	if (conn == NULL)
		return false;
	size_t n = strlen(name);
	for (const char *p = conn; *p != '\0';) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		const char *q = p;
		while (*q != '\0' && *q != ',' && *q != ' ' && *q != '\t')
			q++;
		if ((size_t)(q - p) == n && strncasecmp(p, name, n) == 0)
			return true;
		p = q;
	}
	return false;
}

static enum MHD_Result
snap_conn(void *cls, enum MHD_ValueKind kind, const char *k, const char *v)
{
	(void)kind;
	struct fwd *f = cls;
	if (k != NULL && v != NULL && strcasecmp(k, "connection") == 0 && f->connection == NULL)
		f->connection = strdup(v);
	return MHD_YES;
}

static enum MHD_Result
snap_header(void *cls, enum MHD_ValueKind kind, const char *k, const char *v)
{
	(void)kind;
	struct fwd *f = cls;
	if (k == NULL || v == NULL || k[0] == '\0' || in_list(DROP_REQ, k) ||
	    in_connection(f->connection, k))
		return MHD_YES;
	if (f->nhdrs >= MAX_FWD_HEADERS || strpbrk(k, "\r\n:") != NULL ||
	    strpbrk(v, "\r\n") != NULL)
		return MHD_YES;
	size_t n = strlen(k) + strlen(v) + 3;
	char *line = malloc(n);
	if (line == NULL)
		return MHD_YES;
	snprintf(line, n, "%s: %s", k, v);
	struct curl_slist *l = curl_slist_append(f->hdrs, line);
	free(line);
	if (l != NULL) {
		f->hdrs = l;
		f->nhdrs++;
	}
	return MHD_YES;
}

/* Percent-encodes every byte outside RFC 3986's unreserved set (plus KEEP). */
static int
append_encoded(struct aam_buf *b, const char *s, const char *keep)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~' ||
		    (keep != NULL && strchr(keep, *p) != NULL)) {
			aam_buf_append_byte(b, *p);
		} else {
			aam_buf_append_byte(b, '%');
			aam_buf_append_byte(b, (uint8_t)hex[*p >> 4]);
			aam_buf_append_byte(b, (uint8_t)hex[*p & 15]);
		}
	}
	return b->err;
}

static enum MHD_Result
snap_query(void *cls, enum MHD_ValueKind kind, const char *k, const char *v)
{
	(void)kind;
	struct fwd *f = cls;
	if (k == NULL)
		return MHD_YES;
	if (f->query.len > 0)
		aam_buf_append_byte(&f->query, '&');
	append_encoded(&f->query, k, NULL);
	if (v != NULL) {
		aam_buf_append_byte(&f->query, '=');
		append_encoded(&f->query, v, NULL);
	}
	if (f->query.err != 0)
		f->query_fail = true;
	return MHD_YES;
}

/* ---- the producer ------------------------------------------------------------------ */

struct xfer {
	struct fwd *f;
	struct aam_http_stream *st;
	CURL *c;
	char *resp_hdrs[MAX_RESP_HEADERS]; /* "name: value" of the current response */
	size_t nresp;
	size_t hbytes;
	bool head_sent;
	bool discard;   /* a nonce challenge being answered: this body is not the client's */
	bool may_retry; /* the first attempt: a nonce challenge may be retried once */
	bool want_retry;
	bool client_gone;
};

static void
xfer_reset_headers(struct xfer *x)
{
	for (size_t i = 0; i < x->nresp; i++)
		free(x->resp_hdrs[i]);
	x->nresp = 0;
	x->hbytes = 0;
}

/* The value of response header NAME (trimmed, inside the stored line), or NULL. */
static const char *
resp_header(const struct xfer *x, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < x->nresp; i++) {
		const char *h = x->resp_hdrs[i];
		if (strncasecmp(h, name, n) == 0 && h[n] == ':') {
			const char *v = h + n + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			return v;
		}
	}
	return NULL;
}

static size_t
on_header(char *p, size_t size, size_t n, void *ud)
{
	struct xfer *x = ud;
	size_t len = size * n;
	if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		/* A new response (after a 1xx, or a retry): forget the previous headers. */
		xfer_reset_headers(x);
		return len;
	}
	size_t l = len;
	while (l > 0 && (p[l - 1] == '\r' || p[l - 1] == '\n'))
		l--;
	if (l == 0 || memchr(p, ':', l) == NULL)
		return len;
	x->hbytes += l;
	if (x->nresp >= MAX_RESP_HEADERS || x->hbytes > MAX_HEADER_BYTES)
		return len; /* more than we pass back anyway */
	char *h = strndup(p, l);
	if (h == NULL)
		return 0;
	x->resp_hdrs[x->nresp++] = h;
	return len;
}

/* Sends the status line and headers of the gateway's answer to the agent code. */
static int
send_head(struct xfer *x)
{
	long status = 0;
	curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &status);
	if (status < 100 || status > 599)
		status = 502;
	struct aam_http_header h[AAM_HTTP_MAX_HEADERS];
	char *names[AAM_HTTP_MAX_HEADERS];
	size_t nh = 0;
	bool taken[MAX_RESP_HEADERS] = {false};
	/* Two passes: the headers protocols depend on first, then the rest while room is left. */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < x->nresp && nh < AAM_HTTP_MAX_HEADERS; i++) {
			if (taken[i])
				continue;
			const char *line = x->resp_hdrs[i];
			const char *colon = strchr(line, ':');
			char *name = strndup(line, (size_t)(colon - line));
			if (name == NULL)
				continue;
			bool first = in_list(KEEP_FIRST, name);
			if (in_list(DROP_RESP, name) || (pass == 0 && !first)) {
				free(name);
				continue;
			}
			const char *v = colon + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			names[nh] = name;
			h[nh].name = name;
			h[nh].value = (char *)(uintptr_t)v;
			nh++;
			taken[i] = true;
		}
	}
	const char *ct = resp_header(x, "content-type");
	int rc = aam_http_stream_head(x->st, (unsigned)status, h, nh,
	                              ct != NULL ? ct : "application/octet-stream");
	for (size_t i = 0; i < nh; i++)
		free(names[i]);
	x->head_sent = true;
	return rc;
}

static size_t
on_body(char *p, size_t size, size_t n, void *ud)
{
	struct xfer *x = ud;
	size_t len = size * n;
	if (!x->head_sent && !x->discard) {
		long status = 0;
		curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &status);
		/* RFC 9449 section 8: a 401 carrying DPoP-Nonce asks for a proof with it. */
		if (status == 401 && x->may_retry && resp_header(x, "dpop-nonce") != NULL) {
			x->discard = true;
			x->want_retry = true;
		} else if (send_head(x) != AAM_OK) {
			x->client_gone = true;
			return 0;
		}
	}
	if (x->discard)
		return len;
	if (aam_http_stream_write(x->st, p, len) != AAM_OK) {
		x->client_gone = true;
		return 0; /* aborts the transfer */
	}
	return len;
}

/* Called about once a second even while the gateway is silent: notices a client that left. */
static int
on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	struct xfer *x = ud;
	if (aam_http_stream_closed(x->st)) {
		x->client_gone = true;
		return 1;
	}
	return 0;
}

static void
respond_error(struct aam_http_stream *st, unsigned status, const char *code, const char *msg)
{
	struct aam_buf b;
	aam_buf_init(&b, 1024);
	aam_json_error_body(&b, code, msg);
	aam_http_stream_respond(st, status, "application/json", b.data, b.len);
	aam_buf_uninit(&b);
}

/* "Authorization: DPoP <token>" and "DPoP: <proof>" lines, wiped after use. */
static char *
header_line(const char *name, const char *value)
{
	size_t n = strlen(name) + strlen(value) + 3;
	char *l = malloc(n);
	if (l != NULL)
		snprintf(l, n, "%s: %s", name, value);
	return l;
}

static void
wipe_free(char *s)
{
	if (s != NULL) {
		aam_wipe(s, strlen(s));
		free(s);
	}
}

/* One exchange with the gateway.  Returns the curl result. */
static CURLcode
exchange(struct xfer *x, const struct aam_http_request *rq, const char *url, const char *token,
         const char *proof)
{
	struct fwd *f = x->f;
	char *auth = header_line("Authorization", "DPoP ");
	char *authl = NULL, *dpopl = header_line("DPoP", proof);
	if (auth != NULL) {
		size_t n = strlen(auth) + strlen(token) + 1;
		authl = malloc(n);
		if (authl != NULL)
			snprintf(authl, n, "%s%s", auth, token);
		free(auth);
	}
	if (authl == NULL || dpopl == NULL) {
		wipe_free(authl);
		wipe_free(dpopl);
		return CURLE_OUT_OF_MEMORY;
	}
	/* The forwarded list plus our two lines, built as a separate list so it can be wiped. */
	struct curl_slist *h = NULL, *tmp;
	bool oom = false;
	for (struct curl_slist *i = f->hdrs; i != NULL && !oom; i = i->next) {
		tmp = curl_slist_append(h, i->data);
		oom = tmp == NULL;
		h = oom ? h : tmp;
	}
	const char *extra[] = {authl, dpopl, "Expect:", "Accept-Encoding: identity"};
	for (size_t i = 0; i < 4 && !oom; i++) {
		tmp = curl_slist_append(h, extra[i]);
		oom = tmp == NULL;
		h = oom ? h : tmp;
	}
	wipe_free(authl);
	wipe_free(dpopl);
	if (oom) {
		curl_slist_free_all(h);
		return CURLE_OUT_OF_MEMORY;
	}

	CURL *c = x->c;
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, f->s->connect_timeout_ms);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	if (f->s->ca_bundle != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, f->s->ca_bundle);
	if (strcmp(rq->method, "HEAD") == 0) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (strcmp(rq->method, "GET") == 0 && rq->body_len == 0) {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	} else {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, rq->method);
		bool has_body = rq->body_len > 0 || strcmp(rq->method, "POST") == 0 ||
		                strcmp(rq->method, "PUT") == 0 || strcmp(rq->method, "PATCH") == 0;
		if (has_body) {
			curl_easy_setopt(c, CURLOPT_POSTFIELDS,
			                 rq->body != NULL ? (const char *)rq->body : "");
			curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
		}
	}
	CURLcode cc = curl_easy_perform(c);
	const char *nonce = resp_header(x, "dpop-nonce");
	if (nonce != NULL)
		sidecar_set_nonce(f->s, nonce);
	/* A nonce challenge without a body never reached on_body. */
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (cc == CURLE_OK && !x->head_sent && x->may_retry && status == 401 && nonce != NULL)
		x->want_retry = true;
	/* The header list held the token and the proof. */
	for (struct curl_slist *i = h; i != NULL; i = i->next)
		aam_wipe(i->data, strlen(i->data));
	curl_slist_free_all(h);
	return cc;
}

/* gateway_url + the path as the agent code sent it (re-encoded), and the same with the query. */
static int
build_urls(const struct fwd *f, const char *path, struct aam_buf *htu, struct aam_buf *url)
{
	aam_buf_append_str(htu, f->s->gateway_url);
	append_encoded(htu, path, "/!$&'()*+,;=:@");
	aam_buf_append(url, htu->data, htu->len);
	if (f->query.len > 0) {
		aam_buf_append_byte(url, '?');
		aam_buf_append(url, f->query.data, f->query.len);
	}
	return htu->err != 0 || url->err != 0 ? AAM_E_TOOBIG : AAM_OK;
}

static void
fwd_run(void *arg, struct aam_http_stream *st)
{
	struct fwd *f = arg;
	const struct aam_http_request *rq = aam_http_stream_request(st);
	if (aam_http_stream_closed(st)) {
		fwd_free(f);
		return;
	}
	struct aam_buf htu, url;
	aam_buf_init(&htu, MAX_URL);
	aam_buf_init(&url, MAX_URL);
	char *token = NULL;
	struct xfer x = {.f = f, .st = st, .may_retry = true};
	if (f->query_fail || build_urls(f, rq->path, &htu, &url) != AAM_OK) {
		respond_error(st, 414, "uri_too_long", "The request URI is too long.");
		goto out;
	}
	token = sidecar_token(f->s);
	if (token == NULL) {
		respond_error(st, 503, "token_unavailable",
		              "The sidecar has no valid token yet; attestation is being retried.");
		goto out;
	}
	x.c = curl_easy_init();
	if (x.c == NULL) {
		respond_error(st, 503, "unavailable", "The sidecar is short of memory.");
		goto out;
	}
	CURLcode cc = CURLE_OK;
	for (int attempt = 0; attempt < 2; attempt++) {
		char *nonce = sidecar_nonce(f->s);
		char *proof = NULL;
		int rc = aam_agent_dpop(f->s->a, rq->method, (const char *)htu.data, token, nonce,
		                        &proof);
		free(nonce);
		if (rc != AAM_OK) {
			respond_error(st, 503, "signing_failed",
			              "The sidecar's key could not sign a DPoP proof.");
			goto out;
		}
		x.may_retry = attempt == 0;
		x.want_retry = false;
		x.discard = false;
		xfer_reset_headers(&x);
		cc = exchange(&x, rq, (const char *)url.data, token, proof);
		wipe_free(proof);
		if (!x.want_retry)
			break;
	}
	if (x.client_gone) {
		aam_log(AAM_LOG_DEBUG, "agent.sidecar_client_gone", AAM_F_STR("path", rq->path));
	} else if (cc != CURLE_OK && !x.head_sent) {
		bool slow = cc == CURLE_OPERATION_TIMEDOUT;
		aam_log(AAM_LOG_WARN, "agent.sidecar_upstream_failed", AAM_F_STR("path", rq->path),
		        AAM_F_STR("why", curl_easy_strerror(cc)));
		respond_error(st, slow ? 504 : 502,
		              slow ? "gateway_timeout" : "gateway_unreachable",
		              "The sidecar could not reach the gateway.");
	} else if (!x.head_sent) {
		/* An answer without a body (204, HEAD, a 401 retried in vain). */
		send_head(&x);
	}
	if (cc == CURLE_OK) {
		long status = 0;
		curl_easy_getinfo(x.c, CURLINFO_RESPONSE_CODE, &status);
		aam_log(AAM_LOG_DEBUG, "agent.sidecar_forward", AAM_F_STR("method", rq->method),
		        AAM_F_STR("path", rq->path), AAM_F_INT("status", status));
	}
out:
	xfer_reset_headers(&x);
	if (x.c != NULL)
		curl_easy_cleanup(x.c);
	wipe_free(token);
	aam_buf_uninit(&htu);
	aam_buf_uninit(&url);
	fwd_free(f);
}

/* ---- the handler ---------------------------------------------------------------------- */

int
sidecar_forward(void *ctx, const struct aam_http_request *req, struct aam_http_response *resp)
{
	struct aam_agent_sidecar *s = ctx;
	struct fwd *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return aam_http_respond_error(resp, 503, "unavailable",
		                              "The sidecar is short of memory.");
	f->s = s;
	aam_buf_init(&f->query, MAX_URL);
	struct MHD_Connection *c = req->conn;
	if (c != NULL) {
		MHD_get_connection_values(c, MHD_HEADER_KIND, snap_conn, f);
		MHD_get_connection_values(c, MHD_HEADER_KIND, snap_header, f);
		MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, snap_query, f);
	}
	int rc = aam_http_respond_stream(resp, fwd_run, f);
	if (rc != AAM_OK) {
		fwd_free(f);
		return aam_http_respond_error(resp, 500, "internal",
		                              "The request could not be processed.");
	}
	return AAM_OK;
}
