/*
 * INJECT requests (see inject.h): decoding, the binding check, credential
 * application per type, and streaming the scrubbed response back.
 */
#include "vault/inject.h"
#include "vault/audit.h"
#include "vault/binding.h"
#include "vault/oauth.h"
#include "vault/proto.h"
#include "vault/scrub.h"
#include "vault/sigv4.h"
#include "aam/err.h"
#include "common/b64.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/secret.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

struct vault_inject {
	struct vault_store *st;
	struct vault_egress *egress;
	struct vault_oauth *oauth;
	size_t max_body;
	struct vault_audit *audit;
};

/* One request, kept as replier state while its body frames arrive. */
struct inj_req {
	char cred[VAULT_IPC_MAX_NAME + 1];
	char method[VAULT_IPC_MAX_METHOD + 1];
	char url[VAULT_URL_MAX + 1];
	char scope[VAULT_IPC_MAX_SCOPE + 1];
	uint32_t timeout_ms;
	size_t nh;
	char *hname[VAULT_IPC_MAX_HEADERS];
	char *hval[VAULT_IPC_MAX_HEADERS];
	struct aam_buf body;
};

static void
req_free(void *p)
{
	struct inj_req *q = p;
	if (q == NULL)
		return;
	for (size_t i = 0; i < q->nh; i++) {
		free(q->hname[i]);
		if (q->hval[i] != NULL)
			aam_wipe(q->hval[i], strlen(q->hval[i]));
		free(q->hval[i]);
	}
	aam_buf_uninit_wipe(&q->body);
	free(q);
}

int
vault_inject_new(const struct vault_inject_config *cfg, struct vault_store *st,
                 struct vault_inject **out)
{
	*out = NULL;
	struct vault_inject *vi = calloc(1, sizeof(*vi));
	if (vi == NULL)
		return AAM_E_NOMEM;
	vi->st = st;
	vi->max_body =
	        cfg != NULL && cfg->max_body > 0 ? cfg->max_body : VAULT_INJECT_DEFAULT_MAX_BODY;
	int rc = vault_egress_new(cfg != NULL ? &cfg->egress : NULL, &vi->egress);
	if (rc == AAM_OK)
		rc = vault_oauth_new(vi->egress, &vi->oauth);
	if (rc != AAM_OK) {
		vault_inject_free(vi);
		return rc;
	}
	*out = vi;
	return AAM_OK;
}

void
vault_inject_free(struct vault_inject *vi)
{
	if (vi == NULL)
		return;
	vault_oauth_free(vi->oauth);
	vault_egress_free(vi->egress);
	free(vi);
}

void
vault_inject_forget(struct vault_inject *vi)
{
	if (vi != NULL)
		vault_oauth_clear(vi->oauth);
}

void
vault_inject_set_audit(struct vault_inject *vi, struct vault_audit *a)
{
	vi->audit = a;
}

void
vault_inject_stop(struct vault_inject *vi)
{
	if (vi != NULL)
		vault_egress_stop(vi->egress);
}

/* ---- decoding ------------------------------------------------------------ */

static bool
tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool
valid_name(const char *s)
{
	if (s[0] == '\0')
		return false;
	for (const char *p = s; *p != '\0'; p++) {
		if (!tchar(*p))
			return false;
	}
	return true;
}

/* A header value: visible ASCII, spaces, tabs and obs-text; never CR, LF or NUL. */
static bool
valid_value(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f)
			return false;
	}
	return true;
}

static bool
valid_method(const char *m)
{
	if (m[0] == '\0')
		return false;
	for (const char *p = m; *p != '\0'; p++) {
		if (*p < 'A' || *p > 'Z')
			return false;
	}
	/* CONNECT opens a tunnel and TRACE reflects headers: neither is an API call. */
	return strcmp(m, "CONNECT") != 0 && strcmp(m, "TRACE") != 0;
}

static int
decode_req(const uint8_t *p, size_t len, struct inj_req *q, size_t max_body, const char **why)
{
	struct aam_ipc_reader r;
	aam_ipc_reader_init(&r, p, len);
	vault_ipc_get_strbuf(&r, q->cred, sizeof(q->cred));
	vault_ipc_get_strbuf(&r, q->method, sizeof(q->method));
	vault_ipc_get_strbuf(&r, q->url, sizeof(q->url));
	vault_ipc_get_strbuf(&r, q->scope, sizeof(q->scope));
	aam_ipc_get_u32(&r, &q->timeout_ms);
	uint32_t n = 0;
	aam_ipc_get_u32(&r, &n);
	if (r.err != AAM_OK) {
		*why = "malformed INJECT request";
		return AAM_E_PARSE;
	}
	if (n > VAULT_IPC_MAX_HEADERS) {
		*why = "too many headers";
		return AAM_E_TOOBIG;
	}
	for (uint32_t i = 0; i < n; i++) {
		char name[VAULT_IPC_MAX_HDR_NAME + 1];
		const uint8_t *v;
		size_t vl;
		vault_ipc_get_strbuf(&r, name, sizeof(name));
		if (aam_ipc_get_bytes(&r, VAULT_IPC_MAX_HDR_VALUE, &v, &vl) != AAM_OK) {
			*why = "malformed INJECT request";
			return AAM_E_PARSE;
		}
		if (!valid_name(name) || !valid_value(v, vl)) {
			*why = "invalid header name or value";
			return AAM_E_INVAL;
		}
		q->hname[q->nh] = strdup(name);
		q->hval[q->nh] = malloc(vl + 1);
		q->nh++;
		if (q->hname[q->nh - 1] == NULL || q->hval[q->nh - 1] == NULL)
			return AAM_E_NOMEM;
		memcpy(q->hval[q->nh - 1], v, vl);
		q->hval[q->nh - 1][vl] = '\0';
	}
	const uint8_t *body;
	size_t bl;
	aam_ipc_get_bytes(&r, AAM_IPC_MAX_PAYLOAD, &body, &bl);
	if (aam_ipc_reader_end(&r) != AAM_OK) {
		*why = "malformed INJECT request";
		return AAM_E_PARSE;
	}
	if (!valid_method(q->method)) {
		*why = "invalid or refused method";
		return AAM_E_INVAL;
	}
	aam_buf_init(&q->body, max_body);
	if (aam_buf_append(&q->body, body, bl) != AAM_OK) {
		*why = "request body too large";
		return AAM_E_TOOBIG;
	}
	return AAM_OK;
}

/* ---- credential application ------------------------------------------------ */

/* What one request injects: header lines and URL, all in protected memory. */
struct applied {
	aam_secret *lines[4];
	size_t nlines;
	aam_secret *url; /* NUL-terminated */
	struct vault_scrub *scrub;
	char host[300]; /* Host header to send (SigV4 signs it), or "" */
};

static void
applied_free(struct applied *a)
{
	for (size_t i = 0; i < a->nlines; i++)
		aam_secret_free(a->lines[i]);
	aam_secret_free(a->url);
	vault_scrub_free(a->scrub);
	memset(a, 0, sizeof(*a));
}

/* Appends a "PREFIX" + DATA header line (protected). */
static int
add_line(struct applied *a, const char *prefix, const uint8_t *data, size_t n)
{
	if (a->nlines >= sizeof(a->lines) / sizeof(a->lines[0]))
		return AAM_E_INTERNAL;
	size_t pl = strlen(prefix);
	aam_secret *s = aam_secret_new(pl + n + 1);
	if (s == NULL)
		return AAM_E_NOMEM;
	uint8_t *d = aam_secret_data(s);
	memcpy(d, prefix, pl);
	memcpy(d + pl, data, n);
	d[pl + n] = '\0';
	a->lines[a->nlines++] = s;
	return AAM_OK;
}

/* Adds PAT and its base64 to the scrubber. */
static int
scrub_with_b64(struct vault_scrub *sc, const uint8_t *pat, size_t n)
{
	int rc = vault_scrub_add(sc, pat, n);
	return rc == AAM_OK ? vault_scrub_add_b64(sc, pat, n) : rc;
}

/* Percent-encodes everything but RFC 3986 unreserved characters. */
static void
pct_encode(struct aam_buf *b, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			aam_buf_append_byte(b, c);
		} else {
			char e[3] = {'%', "0123456789ABCDEF"[c >> 4], "0123456789ABCDEF"[c & 15]};
			aam_buf_append(b, e, 3);
		}
	}
}

/* Whether query parameter P[0..N) is named NAME (its key percent-decoded). */
static bool
param_named(const char *p, size_t n, const char *name)
{
	size_t kl = 0;
	while (kl < n && p[kl] != '=')
		kl++;
	char key[256];
	size_t o = 0;
	for (size_t i = 0; i < kl; i++) {
		if (o + 1 >= sizeof(key))
			return false;
		char c = p[i];
		if (c == '%' && i + 2 < kl) {
			char hx[3] = {p[i + 1], p[i + 2], 0};
			c = (char)strtol(hx, NULL, 16);
			i += 2;
		} else if (c == '+') {
			c = ' ';
		}
		key[o++] = c;
	}
	key[o] = '\0';
	return strcmp(key, name) == 0;
}

/* The URL to send, in protected memory; for QUERY the secret is appended as PARAM. */
static int
build_url(struct applied *a, const struct vault_url *u, const struct vault_cred *c)
{
	struct aam_buf b;
	aam_buf_init(&b, 4 * VAULT_URL_MAX + 4 * AAM_SECRET_MAX);
	struct vault_url base = *u;
	base.has_query = false;
	vault_url_format(&base, &b);
	bool first = true;
	size_t vstart = 0;
	if (u->has_query) {
		for (const char *p = u->query; *p != '\0';) {
			size_t n = strcspn(p, "&");
			bool drop = n == 0 || (c->meta.type == VAULT_SECRET_QUERY &&
			                       param_named(p, n, c->meta.param));
			if (!drop) {
				aam_buf_append_byte(&b, first ? '?' : '&');
				aam_buf_append(&b, p, n);
				first = false;
			}
			p += n;
			if (*p == '&')
				p++;
		}
	}
	if (c->meta.type == VAULT_SECRET_QUERY) {
		aam_buf_append_byte(&b, first ? '?' : '&');
		pct_encode(&b, (const uint8_t *)c->meta.param, strlen(c->meta.param));
		aam_buf_append_byte(&b, '=');
		vstart = b.len;
		pct_encode(&b, aam_secret_data(c->plain), aam_secret_len(c->plain));
	}
	int rc = b.err;
	/* The encoded form is what an echo would show: scrub it too. */
	if (rc == AAM_OK && c->meta.type == VAULT_SECRET_QUERY)
		rc = vault_scrub_add(a->scrub, b.data + vstart, b.len - vstart);
	if (rc == AAM_OK) {
		a->url = aam_secret_from(b.data, b.len + 1);
		if (a->url == NULL)
			rc = AAM_E_NOMEM;
	}
	aam_buf_uninit_wipe(&b);
	return rc;
}

static bool
header_safe(aam_secret *s)
{
	return valid_value(aam_secret_data(s), aam_secret_len(s));
}

static const char HEXD[] = "0123456789abcdef";

static int
apply(struct vault_inject *vi, const struct vault_cred *c, struct inj_req *q, struct vault_url *u,
      struct applied *a, const char **why, char *whybuf, size_t whylen)
{
	int rc = vault_scrub_new(&a->scrub);
	if (rc != AAM_OK)
		return rc;
	enum vault_secret_type t = c->meta.type;
	if (c->plain != NULL) {
		rc = scrub_with_b64(a->scrub, aam_secret_data(c->plain), aam_secret_len(c->plain));
		if (rc != AAM_OK)
			return rc;
		if (t != VAULT_SECRET_QUERY && t != VAULT_SECRET_OAUTH2_CC &&
		    t != VAULT_SECRET_BASIC && !header_safe(c->plain)) {
			*why = "the secret's value cannot be sent in a header";
			return AAM_E_INVAL;
		}
	} else if (!vault_secret_type_is_hmac(t)) {
		return AAM_E_INTERNAL;
	}

	switch (t) {
	case VAULT_SECRET_BEARER:
		rc = add_line(a, "Authorization: Bearer ", aam_secret_data(c->plain),
		              aam_secret_len(c->plain));
		break;
	case VAULT_SECRET_HEADER: {
		if (!valid_name(c->meta.header))
			return AAM_E_INVAL;
		char pre[80];
		snprintf(pre, sizeof(pre), "%s: ", c->meta.header);
		rc = add_line(a, pre, aam_secret_data(c->plain), aam_secret_len(c->plain));
		break;
	}
	case VAULT_SECRET_BASIC: {
		size_t ul = strlen(c->meta.username), sl = aam_secret_len(c->plain);
		aam_secret *raw = aam_secret_new(ul + 1 + sl);
		size_t el = aam_b64_encoded_len(ul + 1 + sl, AAM_B64_STD);
		aam_secret *enc = aam_secret_new(el + 1);
		rc = raw == NULL || enc == NULL ? AAM_E_NOMEM : AAM_OK;
		if (rc == AAM_OK) {
			uint8_t *d = aam_secret_data(raw);
			memcpy(d, c->meta.username, ul);
			d[ul] = ':';
			memcpy(d + ul + 1, aam_secret_data(c->plain), sl);
			rc = aam_b64_encode(d, ul + 1 + sl, (char *)aam_secret_data(enc), el + 1,
			                    NULL, AAM_B64_STD);
		}
		if (rc == AAM_OK)
			rc = vault_scrub_add(a->scrub, aam_secret_data(enc), el);
		if (rc == AAM_OK)
			rc = add_line(a, "Authorization: Basic ", aam_secret_data(enc), el);
		aam_secret_free(raw);
		aam_secret_free(enc);
		break;
	}
	case VAULT_SECRET_QUERY:
		break; /* build_url appends it */
	case VAULT_SECRET_HMAC: {
		uint8_t mac[32];
		char hex[65];
		rc = vault_cred_hmac(vi->st, c, q->body.data, q->body.len, mac);
		if (rc == AAM_OK) {
			for (size_t i = 0; i < 32; i++) {
				hex[2 * i] = HEXD[mac[i] >> 4];
				hex[2 * i + 1] = HEXD[mac[i] & 15];
			}
			char pre[80];
			snprintf(pre, sizeof(pre), "%s: ", c->meta.header);
			rc = valid_name(c->meta.header) ? add_line(a, pre, (const uint8_t *)hex, 64)
			                                : AAM_E_INVAL;
		}
		break;
	}
	case VAULT_SECRET_AWS_SIGV4: {
		struct vault_sigv4_params p = {
		        .method = q->method,
		        .hnames = (const char *const *)q->hname,
		        .hvalues = (const char *const *)q->hval,
		        .nheaders = q->nh,
		        .body = q->body.data,
		        .body_len = q->body.len,
		        .now = time(NULL),
		};
		struct vault_sigv4_result *res = calloc(1, sizeof(*res));
		if (res == NULL)
			return AAM_E_NOMEM;
		rc = vault_sigv4_sign_cred(vi->st, c, &p, u, res);
		if (rc == AAM_OK) {
			const char *auth = res->authorization;
			rc = add_line(a, "Authorization: ", (const uint8_t *)auth, strlen(auth));
			if (rc == AAM_OK)
				rc = add_line(a, "X-Amz-Date: ", (const uint8_t *)res->amz_date,
				              16);
			if (rc == AAM_OK && res->content_sha256)
				rc = add_line(a, "X-Amz-Content-Sha256: ",
				              (const uint8_t *)res->payload_hash, 64);
			snprintf(a->host, sizeof(a->host), "%s", res->host);
		} else {
			*why = "the request cannot be signed";
		}
		free(res);
		break;
	}
	case VAULT_SECRET_OAUTH2_CC: {
		aam_secret *tok = NULL;
		rc = vault_oauth_token(vi->oauth, c, q->scope, &tok, whybuf, whylen);
		if (rc == AAM_OK) {
			rc = scrub_with_b64(a->scrub, aam_secret_data(tok), aam_secret_len(tok));
			if (rc == AAM_OK)
				rc = add_line(a, "Authorization: Bearer ", aam_secret_data(tok),
				              aam_secret_len(tok));
		} else {
			*why = whybuf;
		}
		aam_secret_free(tok);
		break;
	}
	default:
		rc = AAM_E_UNSUPPORTED;
		break;
	}
	if (rc == AAM_OK)
		rc = build_url(a, u, c);
	return rc;
}

/* Caller headers the vault owns or that describe the connection. */
static bool
strip_header(const char *name, const struct vault_cred *c)
{
	static const char *const always[] = {
	        "authorization",
	        "proxy-authorization",
	        "host",
	        "content-length",
	        "transfer-encoding",
	        "connection",
	        "keep-alive",
	        "upgrade",
	        "te",
	        "trailer",
	        "expect",
	        "accept-encoding",
	};
	for (size_t i = 0; i < sizeof(always) / sizeof(always[0]); i++) {
		if (strcasecmp(name, always[i]) == 0)
			return true;
	}
	if (strncasecmp(name, "proxy-", 6) == 0)
		return true;
	enum vault_secret_type t = c->meta.type;
	if ((t == VAULT_SECRET_HEADER || t == VAULT_SECRET_HMAC) &&
	    strcasecmp(name, c->meta.header) == 0)
		return true;
	if (t == VAULT_SECRET_AWS_SIGV4 &&
	    (strcasecmp(name, "x-amz-date") == 0 || strcasecmp(name, "x-amz-security-token") == 0 ||
	     strcasecmp(name, "x-amz-content-sha256") == 0))
		return true;
	return false;
}

static int
slist_add(struct curl_slist **l, const char *line)
{
	struct curl_slist *n = curl_slist_append(*l, line);
	if (n == NULL)
		return AAM_E_NOMEM;
	*l = n;
	return AAM_OK;
}

/* Drops stripped caller headers (compacting Q's arrays) for signing and sending. */
static void
filter_headers(struct inj_req *q, const struct vault_cred *c)
{
	size_t o = 0;
	for (size_t i = 0; i < q->nh; i++) {
		if (strip_header(q->hname[i], c)) {
			free(q->hname[i]);
			aam_wipe(q->hval[i], strlen(q->hval[i]));
			free(q->hval[i]);
			continue;
		}
		q->hname[o] = q->hname[i];
		q->hval[o] = q->hval[i];
		o++;
	}
	q->nh = o;
}

static int
build_headers(const struct inj_req *q, const struct applied *a, struct curl_slist **out)
{
	struct curl_slist *l = NULL;
	int rc = AAM_OK;
	bool has_ctype = false;
	struct aam_buf line;
	aam_buf_init(&line, VAULT_IPC_MAX_HDR_NAME + VAULT_IPC_MAX_HDR_VALUE + 8);
	for (size_t i = 0; i < q->nh && rc == AAM_OK; i++) {
		if (strcasecmp(q->hname[i], "content-type") == 0)
			has_ctype = true;
		aam_buf_reset(&line);
		aam_buf_printf(&line, "%s: %s", q->hname[i], q->hval[i]);
		/* "Name:" alone tells libcurl to remove a header: send "Name;" for empty values. */
		if (q->hval[i][0] == '\0') {
			aam_buf_reset(&line);
			aam_buf_printf(&line, "%s;", q->hname[i]);
		}
		rc = line.err != AAM_OK ? line.err : slist_add(&l, aam_buf_cstr(&line));
	}
	aam_buf_uninit(&line);
	for (size_t i = 0; i < a->nlines && rc == AAM_OK; i++)
		rc = slist_add(&l, (const char *)aam_secret_data(a->lines[i]));
	if (rc == AAM_OK && a->host[0] != '\0') {
		char h[320];
		snprintf(h, sizeof(h), "Host: %s", a->host);
		rc = slist_add(&l, h);
	}
	if (rc == AAM_OK)
		rc = slist_add(&l, "Expect:");
	if (rc == AAM_OK && !has_ctype && q->body.len > 0)
		rc = slist_add(&l, "Content-Type:");
	if (rc != AAM_OK) {
		vault_egress_slist_free(l);
		return rc;
	}
	*out = l;
	return AAM_OK;
}

/* ---- streaming the response -------------------------------------------------- */

struct sink_ctx {
	struct aam_ipc_replier *r;
	struct vault_scrub *scrub;
	struct aam_buf out;
	int status;
	bool head_sent;
	uint64_t bytes;
	int64_t version;       /* of the credential injected, for the head */
	int64_t next_check_ms; /* when sink_cancelled next asks the socket */
};

static int
send_frames(struct sink_ctx *s, uint16_t flags_last)
{
	const uint8_t *p = s->out.data;
	size_t n = s->out.len;
	int rc = AAM_OK;
	do {
		size_t k = n > AAM_IPC_MAX_PAYLOAD ? AAM_IPC_MAX_PAYLOAD : n;
		uint16_t fl = k == n ? flags_last : AAM_IPC_F_MORE;
		if (k > 0 || fl != AAM_IPC_F_MORE)
			rc = aam_ipc_reply_frame(s->r, AAM_IPC_INJECT_RESP_BODY, fl, p, k);
		s->bytes += k;
		p += k;
		n -= k;
	} while (rc == AAM_OK && n > 0);
	aam_buf_reset(&s->out);
	return rc;
}

static int
sink_head(void *ctx, int status, const struct vault_http_hdr *h, size_t n)
{
	struct sink_ctx *s = ctx;
	struct aam_buf b, v;
	aam_buf_init(&b, AAM_IPC_MAX_PAYLOAD);
	aam_buf_init(&v, AAM_IPC_MAX_PAYLOAD);
	aam_ipc_put_u16(&b, (uint16_t)status);
	aam_ipc_put_u32(&b, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		aam_buf_reset(&v);
		vault_scrub_once(s->scrub, (const uint8_t *)h[i].name, strlen(h[i].name), &v);
		aam_buf_append_byte(&v, 0);
		if (v.err == AAM_OK)
			aam_ipc_put_str(&b, (const char *)v.data);
		aam_buf_reset(&v);
		vault_scrub_once(s->scrub, h[i].value, h[i].vlen, &v);
		aam_ipc_put_bytes(&b, v.data, v.len);
	}
	/* Which version was used, so the caller's audit record can name it (never the value). */
	aam_ipc_put_u32(&b, s->version > 0 && s->version <= UINT32_MAX ? (uint32_t)s->version : 0);
	int rc = b.err != AAM_OK ? b.err : v.err;
	if (rc == AAM_OK)
		rc = aam_ipc_reply_frame(s->r, AAM_IPC_INJECT_RESP_HEAD, AAM_IPC_F_MORE, b.data,
		                         b.len);
	s->status = status;
	s->head_sent = rc == AAM_OK;
	aam_buf_uninit(&b);
	aam_buf_uninit(&v);
	return rc;
}

static int
sink_body(void *ctx, const uint8_t *p, size_t n)
{
	struct sink_ctx *s = ctx;
	int rc = vault_scrub_push(s->scrub, p, n, &s->out);
	if (rc == AAM_OK && s->out.len > 0)
		rc = send_frames(s, AAM_IPC_F_MORE);
	return rc;
}

static int64_t
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * libcurl's progress callback asks this several times per request; each
 * answer is a poll() of the caller's socket.  Asking at most every
 * CANCEL_CHECK_MS still stops an abandoned upstream request within that
 * time, and a write to a caller that left fails at once anyway.
 */
#define CANCEL_CHECK_MS 20

static bool
sink_cancelled(void *ctx)
{
	struct sink_ctx *s = ctx;
	int64_t now = mono_ms();
	if (now < s->next_check_ms)
		return false;
	s->next_check_ms = now + CANCEL_CHECK_MS;
	return aam_ipc_replier_cancelled(s->r);
}

/* ---- one request -------------------------------------------------------------- */

static void
log_refusal(const struct aam_ipc_peer *peer, const struct inj_req *q, int rc, const char *why)
{
	aam_log(AAM_LOG_WARN, "vault.inject_refused", AAM_F_STR("credential", q->cred),
	        AAM_F_STR("method", q->method), AAM_F_INT("pid", peer->pid),
	        AAM_F_UINT("uid", peer->uid), AAM_F_ERR(rc), AAM_F_STR("reason", why));
}

static int
run(struct vault_inject *vi, const struct aam_ipc_peer *peer, struct inj_req *q,
    struct aam_ipc_replier *r)
{
	char whybuf[256] = "";
	const char *why = NULL;
	int64_t t0 = mono_ms();
	struct vault_url *u = calloc(1, sizeof(*u));
	struct vault_secret_meta *meta = calloc(1, sizeof(*meta));
	struct vault_cred *cred = NULL;
	struct applied a = {0};
	struct curl_slist *hl = NULL;
	struct sink_ctx s = {.r = r};
	aam_buf_init(&s.out, 4u * AAM_IPC_MAX_PAYLOAD);
	int rc = (u == NULL || meta == NULL) ? AAM_E_NOMEM : AAM_OK;

	if (rc == AAM_OK && (rc = vault_url_parse(q->url, u, whybuf, sizeof(whybuf))) != AAM_OK)
		why = whybuf;
	if (rc == AAM_OK) {
		rc = vault_secret_get(vi->st, q->cred, meta);
		if (rc == AAM_E_NOTFOUND)
			why = "no such credential";
		else if (rc != AAM_OK)
			why = "credential lookup failed";
	}
	/* The binding is checked before the secret is opened. */
	if (rc == AAM_OK &&
	    (rc = vault_binding_check((const char(*)[512])meta->bindings, meta->nbindings, u,
	                              whybuf, sizeof(whybuf))) != AAM_OK)
		why = whybuf;
	/* Invariant 6: no credential is used unless its audit record is durable. */
	if (rc == AAM_OK && vi->audit != NULL &&
	    vault_audit_credential_use(vi->audit, meta, q->method, u->host, u->port, u->path,
	                               whybuf, sizeof(whybuf)) != AAM_OK) {
		rc = AAM_E_AUDIT;
		why = whybuf;
	}
	if (rc == AAM_OK && (rc = vault_cred_open(vi->st, q->cred, &cred)) != AAM_OK)
		why = "credential could not be opened";
	/* A rotation may have changed the bindings in between: check what was opened. */
	if (rc == AAM_OK &&
	    (rc = vault_binding_check((const char(*)[512])cred->meta.bindings, cred->meta.nbindings,
	                              u, whybuf, sizeof(whybuf))) != AAM_OK)
		why = whybuf;
	if (rc == AAM_OK) {
		s.version = cred->meta.version;
		filter_headers(q, cred);
		rc = apply(vi, cred, q, u, &a, &why, whybuf, sizeof(whybuf));
		if (rc != AAM_OK && why == NULL)
			why = "credential could not be applied";
	}
	/* The plaintext is no longer needed: only protected derived forms remain. */
	vault_cred_free(cred);
	cred = NULL;
	if (rc == AAM_OK)
		rc = build_headers(q, &a, &hl);
	if (rc != AAM_OK) {
		log_refusal(peer, q, rc, why != NULL ? why : aam_strerror(rc));
		aam_ipc_reply_error(r, rc, why);
		goto out;
	}

	s.scrub = a.scrub;
	struct vault_egress_stats stats = {0};
	struct vault_egress_req req = {
	        .stats = &stats,
	        .method = q->method,
	        .url = (const char *)aam_secret_data(a.url),
	        .headers = hl,
	        .body = q->body.data,
	        .body_len = q->body.len,
	        .timeout_ms = q->timeout_ms,
	};
	struct vault_egress_sink sink = {
	        .head = sink_head, .body = sink_body, .cancelled = sink_cancelled, .ctx = &s};
	rc = vault_egress_perform(vi->egress, &req, &sink, whybuf, sizeof(whybuf));
	if (rc == AAM_OK) {
		rc = vault_scrub_finish(a.scrub, &s.out);
		if (rc == AAM_OK)
			rc = send_frames(&s, AAM_IPC_F_END);
	} else if (rc != AAM_E_CLOSED) {
		aam_ipc_reply_error(r, rc, whybuf[0] != '\0' ? whybuf : NULL);
	}
	aam_log(rc == AAM_OK ? AAM_LOG_INFO : AAM_LOG_WARN, "vault.inject",
	        AAM_F_STR("credential", q->cred), AAM_F_STR("method", q->method),
	        AAM_F_STR("host", u->host), AAM_F_UINT("port", u->port), AAM_F_STR("path", u->path),
	        AAM_F_INT("status", s.status), AAM_F_UINT("bytes", s.bytes),
	        AAM_F_UINT("redacted", vault_scrub_count(a.scrub)), AAM_F_INT("ms", mono_ms() - t0),
	        AAM_F_INT("http", stats.http_version),
	        AAM_F_STR("conn", stats.new_connections > 0 ? "new" : "reused"),
	        AAM_F_INT("pid", peer->pid),
	        rc == AAM_OK ? AAM_F_STR("result", "ok") : AAM_F_ERR(rc));
	if (rc != AAM_OK && rc != AAM_E_CLOSED)
		rc = AAM_OK; /* answered above */
out:
	vault_egress_slist_free(hl);
	applied_free(&a);
	aam_buf_uninit_wipe(&s.out);
	free(meta);
	free(u);
	return rc == AAM_E_CLOSED ? AAM_E_CLOSED : AAM_OK;
}

int
vault_inject_frame(struct vault_inject *vi, const struct aam_ipc_peer *peer,
                   const struct aam_ipc_hdr *h, const uint8_t *payload, struct aam_ipc_replier *r)
{
	struct inj_req *q = aam_ipc_replier_state(r);
	bool last = aam_ipc_flags_final(h->flags);
	if (q == NULL) {
		if (h->type != AAM_IPC_INJECT)
			return AAM_E_PROTO;
		q = calloc(1, sizeof(*q));
		if (q == NULL)
			return AAM_E_NOMEM;
		aam_ipc_replier_set_state(r, q, req_free);
		const char *why = NULL;
		int rc = decode_req(payload, h->len, q, vi->max_body, &why);
		if (rc != AAM_OK) {
			log_refusal(peer, q, rc, why != NULL ? why : aam_strerror(rc));
			aam_ipc_reply_error(r, rc, why);
			return AAM_OK;
		}
	} else {
		if (h->type != AAM_IPC_INJECT_BODY) {
			aam_ipc_reply_error(r, AAM_E_PROTO,
			                    "INJECT continues with INJECT_BODY frames");
			return AAM_OK;
		}
		if (aam_buf_append(&q->body, payload, h->len) != AAM_OK) {
			aam_ipc_reply_error(r, AAM_E_TOOBIG, "request body too large");
			return AAM_OK;
		}
	}
	if (!last)
		return AAM_OK;
	return run(vi, peer, q, r);
}
