/*
 * Prebuilt stream chunks: SSE events and AWS event-stream frames.  A
 * stream is built in full before the first byte goes out, so the server's
 * content reader only copies bytes and sleeps between chunks.
 */
#include "tests/mock-provider/mock.h"

#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "common/b64.h"
#include "common/buf.h"

struct mock_events *
mock_events_new(void)
{
	return calloc(1, sizeof(struct mock_events));
}

void
mock_events_free(struct mock_events *e)
{
	if (e == NULL)
		return;
	for (size_t i = 0; i < e->n; i++)
		free(e->ev[i]);
	free(e->ev);
	free(e->len);
	free(e);
}

int
mock_events_add(struct mock_events *e, const void *p, size_t n)
{
	if (e->n == e->cap) {
		size_t cap = e->cap != 0 ? e->cap * 2 : 16;
		char **ev = realloc(e->ev, cap * sizeof(*ev));
		if (ev == NULL)
			return AAM_E_NOMEM;
		e->ev = ev;
		size_t *len = realloc(e->len, cap * sizeof(*len));
		if (len == NULL)
			return AAM_E_NOMEM;
		e->len = len;
		e->cap = cap;
	}
	char *copy = malloc(n + 1);
	if (copy == NULL)
		return AAM_E_NOMEM;
	memcpy(copy, p, n);
	copy[n] = '\0';
	e->ev[e->n] = copy;
	e->len[e->n] = n;
	e->n++;
	return AAM_OK;
}

int
mock_events_add_sse(struct mock_events *e, const char *name, json_t *data)
{
	if (data == NULL)
		return AAM_E_NOMEM;
	char *s = json_dumps(data, JSON_COMPACT);
	json_decref(data);
	if (s == NULL)
		return AAM_E_NOMEM;
	struct aam_buf b;
	aam_buf_init(&b, AAM_BUF_DEFAULT_MAX);
	if (name != NULL)
		aam_buf_printf(&b, "event: %s\n", name);
	aam_buf_printf(&b, "data: %s\n\n", s);
	free(s);
	int rc = aam_buf_failed(&b) ? b.err : mock_events_add(e, b.data, b.len);
	aam_buf_uninit(&b);
	return rc;
}

/* CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as the AWS
 * event-stream prelude and message checksums use it. */
uint32_t
mock_crc32(uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
	}
	return ~crc;
}

static void
add_string_header(struct aam_buf *b, const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value);
	aam_buf_append_byte(b, (uint8_t)nl);
	aam_buf_append(b, name, nl);
	aam_buf_append_byte(b, 7); /* value type 7: string */
	aam_buf_append_u16be(b, (uint16_t)vl);
	aam_buf_append(b, value, vl);
}

int
mock_events_add_eventstream(struct mock_events *e, json_t *data)
{
	if (data == NULL)
		return AAM_E_NOMEM;
	char *s = json_dumps(data, JSON_COMPACT);
	json_decref(data);
	if (s == NULL)
		return AAM_E_NOMEM;
	struct aam_buf payload, hdrs, msg;
	aam_buf_init(&payload, AAM_BUF_DEFAULT_MAX);
	aam_buf_init(&hdrs, 4096);
	aam_buf_init(&msg, AAM_BUF_DEFAULT_MAX);
	aam_buf_append_str(&payload, "{\"bytes\":\"");
	aam_b64_encode_buf(&payload, s, strlen(s), AAM_B64_STD);
	aam_buf_append_str(&payload, "\"}");
	free(s);

	add_string_header(&hdrs, ":event-type", "chunk");
	add_string_header(&hdrs, ":content-type", "application/json");
	add_string_header(&hdrs, ":message-type", "event");

	int rc = AAM_OK;
	if (aam_buf_failed(&payload) || aam_buf_failed(&hdrs)) {
		rc = AAM_E_NOMEM;
		goto out;
	}
	uint32_t total = (uint32_t)(12 + hdrs.len + payload.len + 4);
	aam_buf_append_u32be(&msg, total);
	aam_buf_append_u32be(&msg, (uint32_t)hdrs.len);
	if (aam_buf_failed(&msg)) {
		rc = AAM_E_NOMEM;
		goto out;
	}
	aam_buf_append_u32be(&msg, mock_crc32(0, msg.data, 8));
	aam_buf_append(&msg, hdrs.data, hdrs.len);
	aam_buf_append(&msg, payload.data, payload.len);
	if (aam_buf_failed(&msg)) {
		rc = AAM_E_NOMEM;
		goto out;
	}
	aam_buf_append_u32be(&msg, mock_crc32(0, msg.data, msg.len));
	rc = aam_buf_failed(&msg) ? AAM_E_NOMEM : mock_events_add(e, msg.data, msg.len);
out:
	aam_buf_uninit(&payload);
	aam_buf_uninit(&hdrs);
	aam_buf_uninit(&msg);
	return rc;
}
