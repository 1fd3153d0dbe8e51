/*
 * IPC wire encoding: frame headers, payload fields and error payloads.
 * No I/O here, so the fuzzer reaches every decoder directly.
 */
#include "aam/ipc.h"
#include "aam/err.h"
#include "common/buf.h"

#include <stdlib.h>
#include <string.h>

static uint16_t
rd16(const uint8_t *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | (unsigned)p[1]);
}

static uint32_t
rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void
wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

bool
aam_ipc_flags_valid(uint16_t flags)
{
	return flags == 0 || flags == AAM_IPC_F_ERROR || flags == AAM_IPC_F_MORE ||
	       flags == AAM_IPC_F_END;
}

bool
aam_ipc_flags_final(uint16_t flags)
{
	return (flags & AAM_IPC_F_MORE) == 0;
}

int
aam_ipc_hdr_encode(const struct aam_ipc_hdr *h, uint8_t out[AAM_IPC_HDR_LEN])
{
	if (h == NULL || out == NULL || !aam_ipc_flags_valid(h->flags) ||
	    h->len > AAM_IPC_MAX_PAYLOAD)
		return AAM_E_INVAL;
	wr32(out, AAM_IPC_MAGIC);
	wr16(out + 4, AAM_IPC_VERSION);
	wr16(out + 6, h->type);
	wr16(out + 8, h->flags);
	wr16(out + 10, 0);
	wr32(out + 12, h->id);
	wr32(out + 16, h->len);
	wr32(out + 20, 0);
	return AAM_OK;
}

int
aam_ipc_hdr_decode(const uint8_t p[AAM_IPC_HDR_LEN], struct aam_ipc_hdr *h)
{
	h->type = AAM_IPC_ERROR;
	h->flags = 0;
	h->id = 0;
	h->len = 0;
	/*
	 * Until magic and version are known to be ours, nothing else in the
	 * header can be trusted, not even where the request id sits.
	 */
	if (rd32(p) != AAM_IPC_MAGIC || rd16(p + 4) != AAM_IPC_VERSION)
		return AAM_E_PARSE;
	h->type = rd16(p + 6);
	h->id = rd32(p + 12);
	uint16_t flags = rd16(p + 8);
	uint32_t len = rd32(p + 16);
	if (rd16(p + 10) != 0 || rd32(p + 20) != 0 || !aam_ipc_flags_valid(flags))
		return AAM_E_PARSE;
	if (len > AAM_IPC_MAX_PAYLOAD)
		return AAM_E_TOOBIG;
	h->flags = flags;
	h->len = len;
	return AAM_OK;
}

int
aam_ipc_frame_decode(const uint8_t *p, size_t n, struct aam_ipc_hdr *h, size_t *consumed)
{
	*consumed = 0;
	memset(h, 0, sizeof(*h));
	if (p == NULL && n > 0)
		return AAM_E_INVAL;
	/* Reject a wrong prefix early rather than wait for a whole header. */
	static const uint8_t prefix[6] = {0x41, 0x41, 0x4D, 0x31, 0x00, 0x01};
	size_t k = n < sizeof(prefix) ? n : sizeof(prefix);
	if (k > 0 && memcmp(p, prefix, k) != 0) {
		h->type = AAM_IPC_ERROR;
		return AAM_E_PARSE;
	}
	if (n < AAM_IPC_HDR_LEN)
		return AAM_IPC_NEED_MORE;
	int rc = aam_ipc_hdr_decode(p, h);
	if (rc != AAM_OK)
		return rc;
	if (n - AAM_IPC_HDR_LEN < h->len)
		return AAM_IPC_NEED_MORE;
	*consumed = AAM_IPC_HDR_LEN + (size_t)h->len;
	return AAM_OK;
}

int
aam_ipc_frame_encode(struct aam_buf *b, const struct aam_ipc_hdr *h, const void *payload,
                     size_t len)
{
	uint8_t hdr[AAM_IPC_HDR_LEN];
	if (h == NULL || h->len != len || (len > 0 && payload == NULL))
		return AAM_E_INVAL;
	int rc = aam_ipc_hdr_encode(h, hdr);
	if (rc != AAM_OK)
		return rc;
	rc = aam_buf_append(b, hdr, sizeof(hdr));
	if (rc == AAM_OK && len > 0)
		rc = aam_buf_append(b, payload, len);
	return rc;
}

/* ---- payload reader ---------------------------------------------------- */

void
aam_ipc_reader_init(struct aam_ipc_reader *r, const void *p, size_t len)
{
	r->p = p;
	r->len = p != NULL ? len : 0;
	r->off = 0;
	r->err = AAM_OK;
}

/* Takes N bytes or fails for good; every getter goes through here. */
static const uint8_t *
take(struct aam_ipc_reader *r, size_t n)
{
	if (r->err != AAM_OK)
		return NULL;
	if (n > r->len - r->off) {
		r->err = AAM_E_PARSE;
		return NULL;
	}
	const uint8_t *q = r->p + r->off;
	r->off += n;
	return q;
}

int
aam_ipc_get_u8(struct aam_ipc_reader *r, uint8_t *v)
{
	const uint8_t *q = take(r, 1);
	if (q == NULL)
		return r->err;
	*v = q[0];
	return AAM_OK;
}

int
aam_ipc_get_u16(struct aam_ipc_reader *r, uint16_t *v)
{
	const uint8_t *q = take(r, 2);
	if (q == NULL)
		return r->err;
	*v = rd16(q);
	return AAM_OK;
}

int
aam_ipc_get_u32(struct aam_ipc_reader *r, uint32_t *v)
{
	const uint8_t *q = take(r, 4);
	if (q == NULL)
		return r->err;
	*v = rd32(q);
	return AAM_OK;
}

int
aam_ipc_get_u64(struct aam_ipc_reader *r, uint64_t *v)
{
	const uint8_t *q = take(r, 8);
	if (q == NULL)
		return r->err;
	*v = (uint64_t)rd32(q) << 32 | rd32(q + 4);
	return AAM_OK;
}

int
aam_ipc_get_fixed(struct aam_ipc_reader *r, size_t n, const uint8_t **p)
{
	const uint8_t *q = take(r, n);
	if (q == NULL)
		return r->err;
	*p = q;
	return AAM_OK;
}

int
aam_ipc_get_bytes(struct aam_ipc_reader *r, size_t max, const uint8_t **p, size_t *n)
{
	uint32_t len = 0;
	if (aam_ipc_get_u32(r, &len) != AAM_OK)
		return r->err;
	if (len > max) {
		r->err = AAM_E_PARSE;
		return r->err;
	}
	const uint8_t *q = take(r, len);
	if (q == NULL)
		return r->err;
	*p = q;
	*n = len;
	return AAM_OK;
}

int
aam_ipc_get_str(struct aam_ipc_reader *r, size_t max, char **s)
{
	const uint8_t *q;
	size_t n;
	*s = NULL;
	if (aam_ipc_get_bytes(r, max, &q, &n) != AAM_OK)
		return r->err;
	if (memchr(q, 0, n) != NULL || !aam_ipc_utf8_valid(q, n)) {
		r->err = AAM_E_PARSE;
		return r->err;
	}
	char *out = malloc(n + 1);
	if (out == NULL)
		return AAM_E_NOMEM; /* not the peer's fault: not sticky */
	if (n > 0)
		memcpy(out, q, n);
	out[n] = '\0';
	*s = out;
	return AAM_OK;
}

size_t
aam_ipc_reader_left(const struct aam_ipc_reader *r)
{
	return r->len - r->off;
}

int
aam_ipc_reader_end(const struct aam_ipc_reader *r)
{
	if (r->err != AAM_OK)
		return r->err;
	return r->off == r->len ? AAM_OK : AAM_E_PARSE;
}

/* ---- payload writer ---------------------------------------------------- */

int
aam_ipc_put_u8(struct aam_buf *b, uint8_t v)
{
	return aam_buf_append_byte(b, v);
}

int
aam_ipc_put_u16(struct aam_buf *b, uint16_t v)
{
	return aam_buf_append_u16be(b, v);
}

int
aam_ipc_put_u32(struct aam_buf *b, uint32_t v)
{
	return aam_buf_append_u32be(b, v);
}

int
aam_ipc_put_u64(struct aam_buf *b, uint64_t v)
{
	return aam_buf_append_u64be(b, v);
}

int
aam_ipc_put_fixed(struct aam_buf *b, const void *p, size_t n)
{
	return aam_buf_append(b, p, n);
}

int
aam_ipc_put_bytes(struct aam_buf *b, const void *p, size_t n)
{
	if (n > UINT32_MAX || (n > 0 && p == NULL)) {
		if (b->err == 0)
			b->err = AAM_E_INVAL;
		return b->err;
	}
	int rc = aam_buf_reserve(b, 4 + n);
	if (rc != AAM_OK)
		return rc;
	aam_buf_append_u32be(b, (uint32_t)n);
	return aam_buf_append(b, p, n);
}

int
aam_ipc_put_str(struct aam_buf *b, const char *s)
{
	if (s == NULL || !aam_ipc_utf8_valid(s, strlen(s))) {
		if (b->err == 0)
			b->err = AAM_E_INVAL;
		return b->err;
	}
	return aam_ipc_put_bytes(b, s, strlen(s));
}

/* ---- UTF-8 ------------------------------------------------------------- */

/* Length of the well-formed sequence at P[0..N), or 0 if it is not one. */
static size_t
utf8_seq(const uint8_t *p, size_t n)
{
	uint8_t c = p[0];
	if (c < 0x80)
		return 1;
	size_t len;
	uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		if (c == 0xE0)
			lo = 0xA0; /* overlong */
		else if (c == 0xED)
			hi = 0x9F; /* surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		if (c == 0xF0)
			lo = 0x90; /* overlong */
		else if (c == 0xF4)
			hi = 0x8F; /* above U+10FFFF */
	} else {
		return 0;
	}
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
	}
	return len;
}

bool
aam_ipc_utf8_valid(const void *p, size_t n)
{
	const uint8_t *s = p;
	size_t i = 0;
	while (i < n) {
		size_t k = utf8_seq(s + i, n - i);
		if (k == 0)
			return false;
		i += k;
	}
	return true;
}

/* ---- error payload ----------------------------------------------------- */

int
aam_ipc_error_encode(struct aam_buf *b, int code, const char *msg)
{
	if (code <= 0 || code >= AAM_E__MAX)
		code = AAM_E_INTERNAL;
	if (msg == NULL || *msg == '\0')
		msg = aam_strerror(code);
	/*
	 * The message may come from anywhere (a handler echoing input), so it
	 * is bounded and made valid UTF-8 here rather than trusted.
	 */
	char clean[AAM_IPC_MAX_ERRMSG];
	size_t n = 0, i = 0, len = strlen(msg);
	while (i < len) {
		size_t k = utf8_seq((const uint8_t *)msg + i, len - i);
		if (k == 0) {
			if (n + 1 > sizeof(clean))
				break;
			clean[n++] = '?';
			i++;
			continue;
		}
		if (n + k > sizeof(clean))
			break;
		memcpy(clean + n, msg + i, k);
		n += k;
		i += k;
	}
	aam_buf_append_u32be(b, (uint32_t)code);
	return aam_ipc_put_bytes(b, clean, n);
}

int
aam_ipc_error_decode(const uint8_t *p, size_t n, int *code, char *msg, size_t msg_size)
{
	struct aam_ipc_reader r;
	uint32_t c = 0;
	const uint8_t *text = NULL;
	size_t tlen = 0;
	*code = AAM_E_PROTO;
	if (msg != NULL && msg_size > 0)
		msg[0] = '\0';
	aam_ipc_reader_init(&r, p, n);
	aam_ipc_get_u32(&r, &c);
	aam_ipc_get_bytes(&r, AAM_IPC_MAX_ERRMSG, &text, &tlen);
	int rc = aam_ipc_reader_end(&r);
	if (rc != AAM_OK || memchr(text, 0, tlen) != NULL || !aam_ipc_utf8_valid(text, tlen))
		return AAM_E_PARSE;
	*code = (c > 0 && c < AAM_E__MAX) ? (int)c : AAM_E_PROTO;
	if (msg != NULL && msg_size > 0) {
		size_t k = tlen < msg_size - 1 ? tlen : msg_size - 1;
		if (k > 0)
			memcpy(msg, text, k);
		msg[k] = '\0';
	}
	return AAM_OK;
}
