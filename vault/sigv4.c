/*
 * AWS SigV4 signing with the first key-derivation step in the token (see
 * sigv4.h).  The canonical request follows AWS's "Create a canonical
 * request for Signature Version 4" rules.
 */
#include "vault/sigv4.h"
#include "aam/err.h"
#include "common/buf.h"
#include "common/secret.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#define MAX_SIGNED 64

static const char HEX[] = "0123456789abcdef";

static void
hex_encode(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = HEX[p[i] >> 4];
		out[2 * i + 1] = HEX[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static bool
unreserved(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~';
}

static int
hexv(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* AWS UriEncode of P[0..N): unreserved kept, '/' kept when KEEP_SLASH, the rest %XX. */
static void
uri_encode(struct aam_buf *b, const uint8_t *p, size_t n, bool keep_slash)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		if (unreserved(c) || (keep_slash && c == '/')) {
			aam_buf_append_byte(b, c);
		} else {
			char e[3] = {'%', "0123456789ABCDEF"[c >> 4], "0123456789ABCDEF"[c & 15]};
			aam_buf_append(b, e, 3);
		}
	}
}

/* Percent-decodes P[0..N) into B ('+' stays '+'). */
static int
uri_decode(struct aam_buf *b, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '%') {
			if (i + 2 >= n)
				return AAM_E_INVAL;
			int hi = hexv(p[i + 1]), lo = hexv(p[i + 2]);
			if (hi < 0 || lo < 0)
				return AAM_E_INVAL;
			aam_buf_append_byte(b, (uint8_t)(hi << 4 | lo));
			i += 2;
		} else {
			aam_buf_append_byte(b, (uint8_t)p[i]);
		}
	}
	return b->err;
}

/* The path with each segment decoded and encoded once (what is sent and, for S3, signed). */
static int
path_encode_once(const char *path, struct aam_buf *out)
{
	struct aam_buf seg;
	aam_buf_init(&seg, VAULT_URL_MAX);
	int rc = AAM_OK;
	const char *p = path;
	while (*p != '\0' && rc == AAM_OK) {
		if (*p == '/') {
			aam_buf_append_byte(out, '/');
			p++;
			continue;
		}
		size_t n = strcspn(p, "/");
		aam_buf_reset(&seg);
		rc = uri_decode(&seg, p, n);
		if (rc == AAM_OK)
			uri_encode(out, seg.data, seg.len, false);
		p += n;
	}
	aam_buf_uninit(&seg);
	if (rc == AAM_OK && out->len == 0)
		aam_buf_append_byte(out, '/');
	return rc != AAM_OK ? rc : out->err;
}

struct qparam {
	char *k, *v;
};

static int
qparam_cmp(const void *a, const void *b)
{
	const struct qparam *x = a, *y = b;
	int c = strcmp(x->k, y->k);
	return c != 0 ? c : strcmp(x->v, y->v);
}

/* Decodes, re-encodes strictly and sorts the query's parameters into OUT. */
static int
canonical_query(const char *q, struct aam_buf *out)
{
	size_t cap = 1;
	for (const char *p = q; *p != '\0'; p++)
		cap += *p == '&';
	struct qparam *ps = calloc(cap, sizeof(*ps));
	if (ps == NULL)
		return AAM_E_NOMEM;
	size_t n = 0;
	int rc = AAM_OK;
	struct aam_buf tmp, enc;
	aam_buf_init(&tmp, VAULT_URL_MAX);
	aam_buf_init(&enc, 3 * VAULT_URL_MAX);
	for (const char *p = q; *p != '\0' && rc == AAM_OK;) {
		size_t len = strcspn(p, "&");
		if (len > 0) {
			const char *eq = memchr(p, '=', len);
			size_t kl = eq != NULL ? (size_t)(eq - p) : len;
			const char *vp = eq != NULL ? eq + 1 : p + len;
			size_t vl = eq != NULL ? len - kl - 1 : 0;
			char **dst[2] = {&ps[n].k, &ps[n].v};
			const char *src[2] = {p, vp};
			size_t srcl[2] = {kl, vl};
			for (int j = 0; j < 2 && rc == AAM_OK; j++) {
				aam_buf_reset(&tmp);
				aam_buf_reset(&enc);
				rc = uri_decode(&tmp, src[j], srcl[j]);
				if (rc == AAM_OK) {
					uri_encode(&enc, tmp.data, tmp.len, false);
					aam_buf_append_byte(&enc, 0);
					rc = enc.err;
				}
				if (rc == AAM_OK) {
					*dst[j] = strdup((const char *)enc.data);
					if (*dst[j] == NULL)
						rc = AAM_E_NOMEM;
				}
			}
			n++;
		}
		p += len;
		if (*p == '&')
			p++;
	}
	if (rc == AAM_OK) {
		qsort(ps, n, sizeof(*ps), qparam_cmp);
		for (size_t i = 0; i < n; i++) {
			if (i > 0)
				aam_buf_append_byte(out, '&');
			aam_buf_append_str(out, ps[i].k);
			aam_buf_append_byte(out, '=');
			aam_buf_append_str(out, ps[i].v);
		}
		rc = out->err;
	}
	for (size_t i = 0; i < n; i++) {
		free(ps[i].k);
		free(ps[i].v);
	}
	free(ps);
	aam_buf_uninit(&tmp);
	aam_buf_uninit(&enc);
	return rc;
}

struct chdr {
	char name[128];
	struct aam_buf value; /* trimmed, inner spaces collapsed; repeats joined by ',' */
};

static int
chdr_cmp(const void *a, const void *b)
{
	return strcmp(((const struct chdr *)a)->name, ((const struct chdr *)b)->name);
}

static bool
signable(const char *lname, bool s3)
{
	(void)s3;
	return strcmp(lname, "content-type") == 0 || strcmp(lname, "content-md5") == 0 ||
	       strncmp(lname, "x-amz-", 6) == 0;
}

/* Adds VALUE under LNAME: trimmed, runs of spaces collapsed, repeats joined by ','. */
static int
chdr_add(struct chdr *h, size_t *n, const char *lname, const char *value)
{
	struct chdr *c = NULL;
	for (size_t i = 0; i < *n; i++) {
		if (strcmp(h[i].name, lname) == 0)
			c = &h[i];
	}
	if (c == NULL) {
		if (*n >= MAX_SIGNED || strlen(lname) >= sizeof(h[0].name))
			return AAM_E_TOOBIG;
		c = &h[(*n)++];
		snprintf(c->name, sizeof(c->name), "%s", lname);
		aam_buf_init(&c->value, 16384);
	} else {
		aam_buf_append_byte(&c->value, ',');
	}
	const char *s = value;
	while (*s == ' ' || *s == '\t')
		s++;
	size_t len = strlen(s);
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	bool space = false;
	for (size_t i = 0; i < len; i++) {
		char ch = s[i] == '\t' ? ' ' : s[i];
		if (ch == ' ') {
			if (!space)
				aam_buf_append_byte(&c->value, ' ');
			space = true;
		} else {
			aam_buf_append_byte(&c->value, (uint8_t)ch);
			space = false;
		}
	}
	return c->value.err;
}

static int
hmac256(const uint8_t *key, size_t klen, const void *data, size_t len, uint8_t out[32])
{
	unsigned int olen = 32;
	if (HMAC(EVP_sha256(), key, (int)klen, data, len, out, &olen) == NULL || olen != 32)
		return AAM_E_CRYPTO;
	return AAM_OK;
}

/* kDate (token) -> kRegion -> kService -> kSigning -> signature, keys in protected memory. */
static int
derive_and_sign(const struct vault_sigv4_params *p, const char *date, const char *sts,
                uint8_t sig[32])
{
	aam_secret *k = aam_secret_new(64);
	if (k == NULL)
		return AAM_E_NOMEM;
	uint8_t *a = aam_secret_data(k), *b = a + 32;
	int rc = p->kdate(p->kdate_ctx, (const uint8_t *)date, strlen(date), a);
	if (rc == AAM_OK)
		rc = hmac256(a, 32, p->region, strlen(p->region), b);
	if (rc == AAM_OK)
		rc = hmac256(b, 32, p->service, strlen(p->service), a);
	if (rc == AAM_OK)
		rc = hmac256(a, 32, "aws4_request", 12, b);
	if (rc == AAM_OK)
		rc = hmac256(b, 32, sts, strlen(sts), sig);
	aam_secret_free(k);
	return rc;
}

static bool
lower_name(const char *in, char *out, size_t outsz)
{
	size_t n = strlen(in);
	if (n == 0 || n >= outsz)
		return false;
	for (size_t i = 0; i <= n; i++)
		out[i] = (in[i] >= 'A' && in[i] <= 'Z') ? (char)(in[i] - 'A' + 'a') : in[i];
	return true;
}

int
vault_sigv4_sign(const struct vault_sigv4_params *p, struct vault_url *url,
                 struct vault_sigv4_result *out)
{
	memset(out, 0, sizeof(*out));
	if (p == NULL || url == NULL || p->kdate == NULL || p->method == NULL ||
	    p->access_key_id == NULL || p->region == NULL || p->service == NULL ||
	    p->access_key_id[0] == '\0' || p->region[0] == '\0' || p->service[0] == '\0')
		return AAM_E_INVAL;
	bool s3 = strcmp(p->service, "s3") == 0;

	struct tm tm;
	if (gmtime_r(&p->now, &tm) == NULL)
		return AAM_E_INVAL;
	char date[9];
	if (strftime(out->amz_date, sizeof(out->amz_date), "%Y%m%dT%H%M%SZ", &tm) != 16 ||
	    strftime(date, sizeof(date), "%Y%m%d", &tm) != 8)
		return AAM_E_INVAL;

	uint8_t hash[32];
	SHA256(p->body != NULL ? p->body : (const uint8_t *)"", p->body_len, hash);
	hex_encode(hash, 32, out->payload_hash);
	out->content_sha256 = s3;
	if (vault_url_authority(url, out->host, sizeof(out->host)) != AAM_OK)
		return AAM_E_INVAL;

	struct aam_buf path, query, creq, sts;
	aam_buf_init(&path, VAULT_URL_MAX);
	aam_buf_init(&query, VAULT_URL_MAX);
	aam_buf_init(&creq, 256 * 1024);
	aam_buf_init(&sts, 1024);
	struct chdr *h = calloc(MAX_SIGNED, sizeof(*h));
	size_t nh = 0;
	int rc = h == NULL ? AAM_E_NOMEM : AAM_OK;

	/* Path: sent encoded once; non-S3 services sign it encoded twice. */
	if (rc == AAM_OK)
		rc = path_encode_once(url->path, &path);
	if (rc == AAM_OK && url->has_query)
		rc = canonical_query(url->query, &query);
	if (rc == AAM_OK) {
		aam_buf_append_byte(&path, 0);
		aam_buf_append_byte(&query, 0);
		rc = path.err != AAM_OK || query.err != AAM_OK ? AAM_E_INVAL : AAM_OK;
	}
	if (rc == AAM_OK) {
		memcpy(url->path, path.data, path.len);
		memcpy(url->query, query.data, query.len);
		url->has_query = query.len > 1;
	}

	/* Headers. */
	if (rc == AAM_OK)
		rc = chdr_add(h, &nh, "host", out->host);
	if (rc == AAM_OK)
		rc = chdr_add(h, &nh, "x-amz-date", out->amz_date);
	if (rc == AAM_OK && s3)
		rc = chdr_add(h, &nh, "x-amz-content-sha256", out->payload_hash);
	for (size_t i = 0; rc == AAM_OK && i < p->nheaders; i++) {
		char ln[128];
		if (!lower_name(p->hnames[i], ln, sizeof(ln))) {
			rc = AAM_E_INVAL;
			break;
		}
		/* The signer owns these; callers' copies were stripped before. */
		if (strcmp(ln, "host") == 0 || strcmp(ln, "x-amz-date") == 0 ||
		    strcmp(ln, "x-amz-content-sha256") == 0 || strcmp(ln, "authorization") == 0)
			continue;
		if (signable(ln, s3))
			rc = chdr_add(h, &nh, ln, p->hvalues[i]);
	}
	if (rc == AAM_OK)
		qsort(h, nh, sizeof(*h), chdr_cmp);

	if (rc == AAM_OK) {
		aam_buf_append_str(&creq, p->method);
		aam_buf_append_byte(&creq, '\n');
		if (s3)
			aam_buf_append_str(&creq, url->path);
		else
			uri_encode(&creq, (const uint8_t *)url->path, strlen(url->path), true);
		aam_buf_append_byte(&creq, '\n');
		aam_buf_append_str(&creq, url->query);
		aam_buf_append_byte(&creq, '\n');
		for (size_t i = 0; i < nh; i++) {
			aam_buf_append_str(&creq, h[i].name);
			aam_buf_append_byte(&creq, ':');
			aam_buf_append(&creq, h[i].value.data, h[i].value.len);
			aam_buf_append_byte(&creq, '\n');
		}
		aam_buf_append_byte(&creq, '\n');
		size_t sh_start = creq.len;
		for (size_t i = 0; i < nh; i++) {
			if (i > 0)
				aam_buf_append_byte(&creq, ';');
			aam_buf_append_str(&creq, h[i].name);
		}
		size_t sh_end = creq.len;
		aam_buf_append_byte(&creq, '\n');
		aam_buf_append_str(&creq, out->payload_hash);
		rc = creq.err != AAM_OK ? AAM_E_INVAL : AAM_OK;

		if (rc == AAM_OK) {
			char chash[65];
			SHA256(creq.data, creq.len, hash);
			hex_encode(hash, 32, chash);
			aam_buf_printf(&sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s",
			               out->amz_date, date, p->region, p->service, chash);
			rc = sts.err != AAM_OK ? AAM_E_INVAL : AAM_OK;
		}
		uint8_t sig[32];
		if (rc == AAM_OK)
			rc = derive_and_sign(p, date, aam_buf_cstr(&sts), sig);
		if (rc == AAM_OK) {
			hex_encode(sig, 32, out->signature);
			int n = snprintf(out->authorization, sizeof(out->authorization),
			                 "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, "
			                 "SignedHeaders=%.*s, Signature=%s",
			                 p->access_key_id, date, p->region, p->service,
			                 (int)(sh_end - sh_start),
			                 (const char *)creq.data + sh_start, out->signature);
			if (n < 0 || (size_t)n >= sizeof(out->authorization))
				rc = AAM_E_TOOBIG;
		}
	}

	for (size_t i = 0; h != NULL && i < nh; i++)
		aam_buf_uninit(&h[i].value);
	free(h);
	aam_buf_uninit(&path);
	aam_buf_uninit(&query);
	aam_buf_uninit(&creq);
	aam_buf_uninit(&sts);
	return rc;
}

struct cred_ctx {
	struct vault_store *st;
	const struct vault_cred *cred;
};

static int
kdate_token(void *ctx, const uint8_t *data, size_t len, uint8_t mac[32])
{
	struct cred_ctx *c = ctx;
	return vault_cred_hmac(c->st, c->cred, data, len, mac);
}

int
vault_sigv4_sign_cred(struct vault_store *st, const struct vault_cred *cred,
                      struct vault_sigv4_params *p, struct vault_url *url,
                      struct vault_sigv4_result *out)
{
	if (st == NULL || cred == NULL || p == NULL || cred->meta.type != VAULT_SECRET_AWS_SIGV4)
		return AAM_E_INVAL;
	struct cred_ctx c = {.st = st, .cred = cred};
	p->access_key_id = cred->meta.aws_access_key_id;
	p->region = cred->meta.aws_region;
	p->service = cred->meta.aws_service;
	p->kdate = kdate_token;
	p->kdate_ctx = &c;
	int rc = vault_sigv4_sign(p, url, out);
	p->kdate = NULL;
	p->kdate_ctx = NULL;
	return rc;
}
