/*
 * Anthropic models on Amazon Bedrock: InvokeModel and
 * InvokeModelWithResponseStream.  SigV4 signing is the vault's job; here
 * are the URL ({api_base}/model/{model id, percent-encoded}/invoke or
 * /invoke-with-response-stream, api_base defaulting to
 * https://bedrock-runtime.{region}.amazonaws.com) and the AWS event-stream
 * framing of the streamed answer.
 *
 * An event-stream message is
 *   total_len u32 | headers_len u32 | prelude CRC32 (of the 8 bytes before)
 *   | headers | payload | message CRC32 (of everything before it)
 * all big-endian; a header is name_len u8, name, type u8, value.  Both
 * CRCs are checked: a corrupted frame is an error, never half-parsed.
 */
#include "gateway/provider_int.h"

#include <stdio.h>
#include <string.h>

#include "aam/err.h"

int
gw_bedrock_url(const struct gw_deployment *d, bool stream, struct aam_buf *url, char *err,
               size_t errlen)
{
	int rc;
	if (d->api_base && *d->api_base) {
		rc = gw_append_base(url, d->api_base, err, errlen);
	} else if (d->region && *d->region) {
		for (const char *c = d->region; *c; c++)
			if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-'))
				return gw_perr(err, errlen, "invalid bedrock region");
		rc = aam_buf_printf(url, "https://bedrock-runtime.%s.amazonaws.com", d->region);
	} else {
		return gw_perr(err, errlen, "provider bedrock needs an api_base or a region");
	}
	if (rc != AAM_OK)
		return rc;
	aam_buf_append_str(url, "/model/");
	gw_url_escape(url, d->model);
	aam_buf_append_str(url, stream ? "/invoke-with-response-stream" : "/invoke");
	return url->err;
}

/* CRC-32 (IEEE 802.3, reflected, as zlib and AWS use it), four bits at a
 * time from a constant table, so no lazy initialisation is shared
 * between threads. */
uint32_t
gw_crc32(uint32_t crc, const void *p, size_t n)
{
	static const uint32_t t[16] = {0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu,
	                               0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
	                               0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
	                               0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu};
	const uint8_t *b = p;
	crc = ~crc;
	for (size_t i = 0; i < n; i++) {
		crc ^= b[i];
		crc = t[crc & 15] ^ (crc >> 4);
		crc = t[crc & 15] ^ (crc >> 4);
	}
	return ~crc;
}

static uint32_t
be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void
gw_evstream_init(struct gw_evstream *e, gw_evstream_cb cb, void *ctx)
{
	memset(e, 0, sizeof(*e));
	aam_buf_init(&e->in, GW_EVSTREAM_MAX_MESSAGE + 16);
	e->cb = cb;
	e->ctx = ctx;
}

void
gw_evstream_uninit(struct gw_evstream *e)
{
	aam_buf_uninit(&e->in);
}

/* Copies a string header value into DST (truncated). */
static void
hdr_copy(char *dst, size_t cap, const uint8_t *v, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	/* Header values end up in error messages: printable ASCII only. */
	for (size_t i = 0; i < n; i++)
		dst[i] = v[i] >= 0x20 && v[i] < 0x7f ? (char)v[i] : '?';
	dst[n] = '\0';
}

static int
parse_headers(const uint8_t *h, size_t n, char *mtype, char *etype, char *xtype, size_t cap)
{
	size_t i = 0;
	while (i < n) {
		size_t nl = h[i++];
		if (nl == 0 || i + nl + 1 > n)
			return AAM_E_PARSE;
		const uint8_t *name = h + i;
		i += nl;
		uint8_t type = h[i++];
		size_t vl;
		switch (type) {
		case 0: /* true */
		case 1: /* false */
			vl = 0;
			break;
		case 2:
			vl = 1;
			break;
		case 3:
			vl = 2;
			break;
		case 4:
			vl = 4;
			break;
		case 5: /* long */
		case 8: /* timestamp */
			vl = 8;
			break;
		case 9: /* uuid */
			vl = 16;
			break;
		case 6: /* bytes */
		case 7: /* string */
			if (i + 2 > n)
				return AAM_E_PARSE;
			vl = (size_t)h[i] << 8 | h[i + 1];
			i += 2;
			break;
		default:
			return AAM_E_PARSE;
		}
		if (i + vl > n)
			return AAM_E_PARSE;
		if (type == 7) {
			if (nl == 13 && memcmp(name, ":message-type", 13) == 0)
				hdr_copy(mtype, cap, h + i, vl);
			else if (nl == 11 && memcmp(name, ":event-type", 11) == 0)
				hdr_copy(etype, cap, h + i, vl);
			else if (nl == 15 && memcmp(name, ":exception-type", 15) == 0)
				hdr_copy(xtype, cap, h + i, vl);
		}
		i += vl;
	}
	return AAM_OK;
}

static int
one_message(struct gw_evstream *e, const uint8_t *m, size_t total)
{
	size_t hl = be32(m + 4);
	if (gw_crc32(0, m, total - 4) != be32(m + total - 4))
		return AAM_E_PARSE;
	char mtype[64] = "", etype[64] = "", xtype[64] = "";
	int rc = parse_headers(m + 12, hl, mtype, etype, xtype, sizeof(mtype));
	if (rc != AAM_OK)
		return rc;
	const char *ev = strcmp(mtype, "exception") == 0 && xtype[0] ? xtype : etype;
	return e->cb ? e->cb(e->ctx, mtype[0] ? mtype : "event", ev, m + 12 + hl, total - 16 - hl)
	             : AAM_OK;
}

int
gw_evstream_feed(struct gw_evstream *e, const uint8_t *p, size_t n)
{
	if (e->err)
		return e->err;
	while (n > 0 || e->in.len >= 12) {
		/* Take only as many bytes as the current message needs, so the
		 * buffer never holds more than one message. */
		size_t want;
		if (e->in.len < 12) {
			want = 12 - e->in.len;
		} else {
			const uint8_t *m = e->in.data;
			size_t total = be32(m), hl = be32(m + 4);
			if (gw_crc32(0, m, 8) != be32(m + 8))
				return e->err = AAM_E_PARSE;
			if (total < 16 || total > GW_EVSTREAM_MAX_MESSAGE || hl > total - 16)
				return e->err = total > GW_EVSTREAM_MAX_MESSAGE ? AAM_E_TOOBIG
				                                                : AAM_E_PARSE;
			if (e->in.len == total) {
				int rc = one_message(e, m, total);
				aam_buf_reset(&e->in);
				if (rc != AAM_OK)
					return e->err = rc;
				continue;
			}
			want = total - e->in.len;
		}
		if (n == 0)
			break;
		size_t take = want < n ? want : n;
		if (aam_buf_append(&e->in, p, take) != AAM_OK)
			return e->err = e->in.err;
		p += take;
		n -= take;
	}
	return AAM_OK;
}

int
gw_evstream_finish(struct gw_evstream *e)
{
	if (e->err)
		return e->err;
	return e->in.len ? AAM_E_PARSE : AAM_OK;
}

static void
put_str_header(struct aam_buf *b, const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value);
	aam_buf_append_byte(b, (uint8_t)nl);
	aam_buf_append(b, name, nl);
	aam_buf_append_byte(b, 7);
	aam_buf_append_u16be(b, (uint16_t)vl);
	aam_buf_append(b, value, vl);
}

int
gw_evstream_encode(struct aam_buf *out, const char *message_type, const char *event_type,
                   const uint8_t *payload, size_t n)
{
	struct aam_buf h;
	aam_buf_init(&h, 4096);
	put_str_header(&h, ":message-type", message_type);
	put_str_header(&h,
	               strcmp(message_type, "exception") == 0 ? ":exception-type" : ":event-type",
	               event_type);
	put_str_header(&h, ":content-type", "application/json");
	if (aam_buf_failed(&h) || n > GW_EVSTREAM_MAX_MESSAGE) {
		aam_buf_uninit(&h);
		return AAM_E_TOOBIG;
	}
	size_t start = out->len;
	uint32_t total = (uint32_t)(16 + h.len + n);
	aam_buf_append_u32be(out, total);
	aam_buf_append_u32be(out, (uint32_t)h.len);
	if (!aam_buf_failed(out))
		aam_buf_append_u32be(out, gw_crc32(0, out->data + start, 8));
	aam_buf_append(out, h.data, h.len);
	aam_buf_append(out, payload, n);
	if (!aam_buf_failed(out))
		aam_buf_append_u32be(out, gw_crc32(0, out->data + start, out->len - start));
	aam_buf_uninit(&h);
	return out->err;
}
