/*
 * libcurl egress (see egress.h).
 */
#include "vault/egress.h"
#include "aam/err.h"
#include "common/secret.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

/* Idle easy handles kept for reuse: creating one per request costs more than the request. */
#define POOL_MAX 32
/* Idle upstream connections kept (CURLOPT_MAXCONNECTS). */
#define EGRESS_MAX_IDLE 256

struct vault_egress {
	struct vault_egress_config cfg;
	char *ca_bundle;
	CURLSH *share;
	pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
	atomic_bool stopping;
	pthread_mutex_t pool_mu;
	CURL *pool[POOL_MAX];
	size_t npool;
};

static CURL *
handle_get(struct vault_egress *e)
{
	CURL *h = NULL;
	pthread_mutex_lock(&e->pool_mu);
	if (e->npool > 0)
		h = e->pool[--e->npool];
	pthread_mutex_unlock(&e->pool_mu);
	if (h != NULL) {
		curl_easy_reset(h);
		return h;
	}
	return curl_easy_init();
}

static void
handle_put(struct vault_egress *e, CURL *h)
{
	/* Detach from the share now: a pooled handle holds no connection. */
	curl_easy_setopt(h, CURLOPT_SHARE, NULL);
	pthread_mutex_lock(&e->pool_mu);
	if (e->npool < POOL_MAX) {
		e->pool[e->npool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&e->pool_mu);
	if (h != NULL)
		curl_easy_cleanup(h);
}

static void
share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ctx)
{
	(void)h;
	(void)access;
	struct vault_egress *e = ctx;
	if ((unsigned)data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&e->locks[data]);
}

static void
share_unlock(CURL *h, curl_lock_data data, void *ctx)
{
	(void)h;
	struct vault_egress *e = ctx;
	if ((unsigned)data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&e->locks[data]);
}

int
vault_egress_new(const struct vault_egress_config *cfg, struct vault_egress **out)
{
	*out = NULL;
	struct vault_egress *e = calloc(1, sizeof(*e));
	if (e == NULL)
		return AAM_E_NOMEM;
	if (cfg != NULL)
		e->cfg = *cfg;
	if (e->cfg.connect_timeout_ms <= 0)
		e->cfg.connect_timeout_ms = 10000;
	if (cfg != NULL && cfg->ca_bundle != NULL) {
		e->ca_bundle = strdup(cfg->ca_bundle);
		if (e->ca_bundle == NULL) {
			free(e);
			return AAM_E_NOMEM;
		}
	}
	e->cfg.ca_bundle = e->ca_bundle;
	for (unsigned i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&e->locks[i], NULL);
	pthread_mutex_init(&e->pool_mu, NULL);
	e->share = curl_share_init();
	if (e->share == NULL) {
		vault_egress_free(e);
		return AAM_E_NOMEM;
	}
	curl_share_setopt(e->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(e->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(e->share, CURLSHOPT_USERDATA, e);
	curl_share_setopt(e->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(e->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	if (curl_share_setopt(e->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK) {
		vault_egress_free(e);
		return AAM_E_UNSUPPORTED;
	}
	*out = e;
	return AAM_OK;
}

void
vault_egress_free(struct vault_egress *e)
{
	if (e == NULL)
		return;
	for (size_t i = 0; i < e->npool; i++)
		curl_easy_cleanup(e->pool[i]);
	if (e->share != NULL)
		curl_share_cleanup(e->share);
	for (unsigned i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&e->locks[i]);
	pthread_mutex_destroy(&e->pool_mu);
	free(e->ca_bundle);
	free(e);
}

void
vault_egress_stop(struct vault_egress *e)
{
	if (e != NULL)
		atomic_store(&e->stopping, true);
}

void
vault_egress_slist_free(struct curl_slist *l)
{
	for (struct curl_slist *p = l; p != NULL; p = p->next) {
		if (p->data != NULL)
			aam_wipe(p->data, strlen(p->data));
	}
	curl_slist_free_all(l);
}

/* ---- one transfer ------------------------------------------------------- */

struct xfer {
	struct vault_egress *e;
	const struct vault_egress_sink *sink;
	int status;
	bool head_sent;
	bool in_trailers;
	struct vault_http_hdr hdr[VAULT_EGRESS_MAX_HEADERS];
	size_t nhdr;
	size_t hdr_bytes;
	int err; /* why a callback aborted */
};

static void
hdrs_clear(struct xfer *x)
{
	for (size_t i = 0; i < x->nhdr; i++) {
		free(x->hdr[i].name);
		if (x->hdr[i].value != NULL)
			aam_wipe(x->hdr[i].value, x->hdr[i].vlen);
		free(x->hdr[i].value);
	}
	x->nhdr = 0;
	x->hdr_bytes = 0;
}

static bool
tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Headers that describe the connection or the encoded body, not the message. */
static bool
dropped(const char *name)
{
	static const char *const drop[] = {
	        "content-length", "content-encoding", "transfer-encoding",
	        "connection",     "keep-alive",       "proxy-connection",
	        "upgrade",        "trailer",          "te",
	};
	for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++) {
		if (strcasecmp(name, drop[i]) == 0)
			return true;
	}
	return false;
}

static int
send_head(struct xfer *x)
{
	if (x->head_sent)
		return AAM_OK;
	x->head_sent = true;
	return x->sink->head(x->sink->ctx, x->status, x->hdr, x->nhdr);
}

/* Parses "HTTP/x[.y] NNN ...". */
static int
parse_status(const char *p, size_t n)
{
	const char *sp = memchr(p, ' ', n);
	if (sp == NULL || (size_t)(p + n - sp) < 4)
		return -1;
	int v = 0;
	for (int i = 1; i <= 3; i++) {
		char c = sp[i];
		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (c - '0');
	}
	return v;
}

static int
add_header_line(struct xfer *x, const char *p, size_t n)
{
	if (x->hdr_bytes + n > VAULT_EGRESS_MAX_HEADER_LEN * 4)
		return AAM_E_TOOBIG;
	x->hdr_bytes += n;
	if ((p[0] == ' ' || p[0] == '\t')) {
		/* obs-fold: a continuation of the previous value. */
		if (x->nhdr == 0)
			return AAM_OK;
		struct vault_http_hdr *h = &x->hdr[x->nhdr - 1];
		while (n > 0 && (p[0] == ' ' || p[0] == '\t')) {
			p++;
			n--;
		}
		uint8_t *v = realloc(h->value, h->vlen + 1 + n + 1);
		if (v == NULL)
			return AAM_E_NOMEM;
		v[h->vlen] = ' ';
		memcpy(v + h->vlen + 1, p, n);
		h->vlen += 1 + n;
		v[h->vlen] = '\0';
		h->value = v;
		return AAM_OK;
	}
	const char *colon = memchr(p, ':', n);
	if (colon == NULL || colon == p)
		return AAM_OK; /* not a header: ignore it */
	size_t nl = (size_t)(colon - p);
	for (size_t i = 0; i < nl; i++) {
		if (!tchar(p[i]))
			return AAM_OK;
	}
	const char *v = colon + 1;
	size_t vl = n - nl - 1;
	while (vl > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		vl--;
	}
	while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
		vl--;
	if (memchr(v, '\0', vl) != NULL)
		return AAM_OK;
	char name[256];
	if (nl >= sizeof(name))
		return AAM_E_TOOBIG;
	memcpy(name, p, nl);
	name[nl] = '\0';
	if (dropped(name))
		return AAM_OK;
	if (x->nhdr >= VAULT_EGRESS_MAX_HEADERS)
		return AAM_E_TOOBIG;
	struct vault_http_hdr *h = &x->hdr[x->nhdr];
	h->name = strdup(name);
	h->value = malloc(vl + 1);
	if (h->name == NULL || h->value == NULL) {
		free(h->name);
		free(h->value);
		return AAM_E_NOMEM;
	}
	memcpy(h->value, v, vl);
	h->value[vl] = '\0';
	h->vlen = vl;
	x->nhdr++;
	return AAM_OK;
}

static size_t
header_cb(char *buf, size_t size, size_t nitems, void *ud)
{
	struct xfer *x = ud;
	size_t n = size * nitems;
	size_t len = n;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	int rc = AAM_OK;
	if (x->head_sent) {
		/* Trailers after the body are not forwarded. */
		return n;
	}
	if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
		/* A new response (after 1xx, or a first one): start over. */
		hdrs_clear(x);
		x->status = parse_status(buf, len);
		if (x->status < 100 || x->status > 999)
			rc = AAM_E_PROTO;
	} else if (len == 0) {
		if (x->status >= 200 || x->status == 101)
			rc = send_head(x);
	} else {
		rc = add_header_line(x, buf, len);
	}
	if (rc != AAM_OK) {
		x->err = rc;
		return 0; /* aborts the transfer */
	}
	return n;
}

static size_t
write_cb(char *p, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	size_t n = size * nmemb;
	int rc = send_head(x);
	if (rc == AAM_OK && n > 0)
		rc = x->sink->body(x->sink->ctx, (const uint8_t *)p, n);
	if (rc != AAM_OK) {
		x->err = rc;
		return CURL_WRITEFUNC_ERROR;
	}
	return n;
}

static int
xferinfo_cb(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	struct xfer *x = ud;
	if (atomic_load(&x->e->stopping) ||
	    (x->sink->cancelled != NULL && x->sink->cancelled(x->sink->ctx))) {
		x->err = AAM_E_CLOSED;
		return 1;
	}
	return 0;
}

static int
map_curl(CURLcode c, char *why, size_t whylen)
{
	int rc;
	switch (c) {
	case CURLE_OPERATION_TIMEDOUT:
		rc = AAM_E_TIMEOUT;
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
		rc = AAM_E_CRYPTO;
		break;
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
		rc = AAM_E_INVAL;
		break;
	case CURLE_OUT_OF_MEMORY:
		rc = AAM_E_NOMEM;
		break;
	default:
		rc = AAM_E_IO;
		break;
	}
	/* curl_easy_strerror() is a fixed sentence per code: never the URL. */
	snprintf(why, whylen, "upstream request failed: %s", curl_easy_strerror(c));
	return rc;
}

int
vault_egress_perform(struct vault_egress *e, const struct vault_egress_req *req,
                     const struct vault_egress_sink *sink, char *why, size_t whylen)
{
	if (whylen > 0)
		why[0] = '\0';
	if (e == NULL || req == NULL || sink == NULL || sink->head == NULL || sink->body == NULL ||
	    req->url == NULL || req->method == NULL)
		return AAM_E_INVAL;
	if (atomic_load(&e->stopping)) {
		snprintf(why, whylen, "the vault is shutting down");
		return AAM_E_CLOSED;
	}
	struct xfer *x = calloc(1, sizeof(*x));
	CURL *h = handle_get(e);
	if (x == NULL || h == NULL) {
		free(x);
		if (h != NULL)
			curl_easy_cleanup(h);
		return AAM_E_NOMEM;
	}
	x->e = e;
	x->sink = sink;

	bool https = strncmp(req->url, "https://", 8) == 0;
	curl_easy_setopt(h, CURLOPT_SHARE, e->share);
	/*
	 * How many idle connections the shared cache keeps.  libcurl's default
	 * is 5: with more requests than that in flight, every connection handed
	 * back past the fifth was closed, and one request in four (measured,
	 * 32 in flight) paid a new TCP (and TLS) connection upstream.
	 */
	curl_easy_setopt(h, CURLOPT_MAXCONNECTS, (long)EGRESS_MAX_IDLE);
	curl_easy_setopt(h, CURLOPT_URL, req->url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, https ? "https" : "http");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (e->cfg.ca_bundle != NULL)
		curl_easy_setopt(h, CURLOPT_CAINFO, e->cfg.ca_bundle);
	/* Proxies from the environment could send the credential elsewhere. */
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, e->cfg.connect_timeout_ms);
	/* A caller may shorten the configured limit, never extend it. */
	long tmo = e->cfg.timeout_ms;
	if (req->timeout_ms > 0 && (tmo <= 0 || req->timeout_ms < tmo))
		tmo = req->timeout_ms;
	if (tmo > 0)
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, tmo);
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION,
	                 e->cfg.no_http2 ? (long)CURL_HTTP_VERSION_1_1
	                                 : (long)CURL_HTTP_VERSION_2TLS);
	/* Decode what the server compressed, so the scrubber sees plain bytes. */
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, req->headers);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);

	const char *m = req->method;
	if (strcmp(m, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (req->body_len > 0 || strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 ||
	           strcmp(m, "PATCH") == 0) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS,
		                 req->body != NULL ? (const char *)req->body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		if (strcmp(m, "POST") != 0)
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
	} else if (strcmp(m, "GET") != 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
	}

	CURLcode c = curl_easy_perform(h);
	if (req->stats != NULL) {
		long v = 0;
		curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &req->stats->new_connections);
		curl_easy_getinfo(h, CURLINFO_HTTP_VERSION, &v);
		req->stats->http_version = v == CURL_HTTP_VERSION_2_0 ? 2 : v != 0 ? 1 : 0;
	}
	int rc = AAM_OK;
	if (c == CURLE_OK) {
		rc = send_head(x);
	} else if (x->err != AAM_OK) {
		rc = x->err;
		if (rc == AAM_E_CLOSED)
			snprintf(why, whylen, "request cancelled");
		else if (rc == AAM_E_TOOBIG)
			snprintf(why, whylen, "upstream response headers too large");
		else if (rc == AAM_E_PROTO)
			snprintf(why, whylen, "malformed upstream response");
	} else {
		rc = map_curl(c, why, whylen);
	}
	handle_put(e, h);
	hdrs_clear(x);
	free(x);
	return rc;
}
