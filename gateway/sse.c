/*
 * Incremental SSE parser (WHATWG EventSource rules) and writers; see sse.h.
 */
#include "gateway/sse.h"

#include <string.h>

#include "aam/err.h"
#include "common/json.h"

void
gw_sse_init(struct gw_sse *p, size_t max_line, size_t max_event, bool keep_raw, gw_sse_cb cb,
            void *ctx)
{
	memset(p, 0, sizeof(*p));
	p->max_line = max_line ? max_line : GW_SSE_MAX_LINE;
	p->max_event = max_event ? max_event : GW_SSE_MAX_EVENT;
	/* The buffers get one byte of slack over the limits so an overflow is
	 * detected by our own checks, with a clear error, before buf's. */
	aam_buf_init(&p->line, p->max_line + 1);
	aam_buf_init(&p->data, p->max_event + 2);
	aam_buf_init(&p->event, 256);
	aam_buf_init(&p->id, 1024);
	/* The raw bytes of one event: its data plus field names, comments and
	 * line ends, which a well-behaved server keeps small. */
	aam_buf_init(&p->raw, p->max_event + p->max_line + 4096);
	p->keep_raw = keep_raw;
	p->cb = cb;
	p->ctx = ctx;
	p->first_line = true;
}

void
gw_sse_uninit(struct gw_sse *p)
{
	aam_buf_uninit(&p->line);
	aam_buf_uninit(&p->data);
	aam_buf_uninit(&p->event);
	aam_buf_uninit(&p->id);
	aam_buf_uninit(&p->raw);
}

static int
sse_dispatch(struct gw_sse *p)
{
	int rc = AAM_OK;
	if (p->data.len > 0) {
		/* The data buffer always ends with the LF added after each line. */
		p->data.len--;
		p->data.data[p->data.len] = '\0';
		struct gw_sse_event ev = {
		        .event = p->event.len ? aam_buf_cstr(&p->event) : "message",
		        .data = aam_buf_cstr(&p->data),
		        .data_len = p->data.len,
		        .id = aam_buf_cstr(&p->id),
		        .raw = p->keep_raw ? p->raw.data : NULL,
		        .raw_len = p->keep_raw ? p->raw.len : 0,
		};
		rc = p->cb ? p->cb(p->ctx, &ev) : AAM_OK;
		aam_buf_reset(&p->raw);
	}
	aam_buf_reset(&p->data);
	aam_buf_reset(&p->event);
	return rc;
}

static int
sse_line(struct gw_sse *p)
{
	const char *s = aam_buf_cstr(&p->line);
	size_t n = p->line.len;

	if (p->first_line) {
		p->first_line = false;
		if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
			s += 3;
			n -= 3;
		}
	}
	if (n == 0)
		return sse_dispatch(p);
	if (s[0] == ':')
		return AAM_OK; /* comment */

	const char *colon = memchr(s, ':', n);
	size_t flen = colon ? (size_t)(colon - s) : n;
	const char *v = colon ? colon + 1 : s + n;
	size_t vlen = n - (size_t)(v - s);
	if (vlen > 0 && v[0] == ' ') {
		v++;
		vlen--;
	}

	if (flen == 5 && memcmp(s, "event", 5) == 0) {
		aam_buf_reset(&p->event);
		if (aam_buf_append(&p->event, v, vlen) != AAM_OK)
			return AAM_E_TOOBIG;
	} else if (flen == 4 && memcmp(s, "data", 4) == 0) {
		if (p->data.len + vlen + 1 > p->max_event)
			return AAM_E_TOOBIG;
		if (aam_buf_append(&p->data, v, vlen) != AAM_OK ||
		    aam_buf_append_byte(&p->data, '\n') != AAM_OK)
			return p->data.err ? p->data.err : AAM_E_NOMEM;
	} else if (flen == 2 && memcmp(s, "id", 2) == 0) {
		/* An id containing NUL is ignored, per the spec. */
		if (memchr(v, '\0', vlen) == NULL) {
			aam_buf_reset(&p->id);
			if (aam_buf_append(&p->id, v, vlen) != AAM_OK)
				return AAM_E_TOOBIG;
		}
	}
	/* "retry" and unknown fields are ignored: reconnection is not ours. */
	return AAM_OK;
}

int
gw_sse_feed(struct gw_sse *p, const uint8_t *buf, size_t n)
{
	if (p->err)
		return p->err;
	size_t i = 0;
	while (i < n) {
		if (p->saw_cr) {
			p->saw_cr = false;
			if (buf[i] == '\n') {
				if (p->keep_raw && aam_buf_append_byte(&p->raw, '\n') != AAM_OK)
					return p->err = AAM_E_TOOBIG;
				i++;
				continue;
			}
		}
		size_t j = i;
		while (j < n && buf[j] != '\r' && buf[j] != '\n')
			j++;
		if (p->line.len + (j - i) > p->max_line)
			return p->err = AAM_E_TOOBIG;
		if (aam_buf_append(&p->line, buf + i, j - i) != AAM_OK)
			return p->err = p->line.err;
		if (p->keep_raw && aam_buf_append(&p->raw, buf + i, j - i) != AAM_OK)
			return p->err = AAM_E_TOOBIG;
		if (j == n)
			break;
		if (p->keep_raw && aam_buf_append_byte(&p->raw, buf[j]) != AAM_OK)
			return p->err = AAM_E_TOOBIG;
		p->saw_cr = buf[j] == '\r';
		int rc = sse_line(p);
		aam_buf_reset(&p->line);
		if (rc != AAM_OK)
			return p->err = rc;
		i = j + 1;
	}
	return AAM_OK;
}

int
gw_sse_finish(struct gw_sse *p)
{
	if (p->err)
		return p->err;
	if (p->line.len > 0 || p->data.len > 0)
		return AAM_E_PARSE;
	return AAM_OK;
}

int
gw_sse_write(struct aam_buf *out, const char *event, const char *data, size_t n)
{
	if (event)
		aam_buf_printf(out, "event: %s\n", event);
	size_t i = 0;
	for (;;) {
		size_t j = i;
		while (j < n && data[j] != '\n' && data[j] != '\r')
			j++;
		aam_buf_append(out, "data: ", 6);
		aam_buf_append(out, data + i, j - i);
		aam_buf_append_byte(out, '\n');
		if (j >= n)
			break;
		if (data[j] == '\r' && j + 1 < n && data[j + 1] == '\n')
			j++;
		i = j + 1;
	}
	return aam_buf_append_byte(out, '\n');
}

int
gw_sse_write_json(struct aam_buf *out, const char *event, const json_t *j)
{
	if (event)
		aam_buf_printf(out, "event: %s\n", event);
	aam_buf_append(out, "data: ", 6);
	aam_json_dump_buf(j, out, 0);
	return aam_buf_append(out, "\n\n", 2);
}
