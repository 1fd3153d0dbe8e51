/*
 * Incremental Server-Sent Events parser and writer helpers.
 *
 * The parser follows the WHATWG EventSource processing model: lines end
 * in CRLF, LF or CR (a CR at the end of one chunk and an LF at the start
 * of the next are one line end); "event:", "data:", "id:" and "retry:"
 * fields, one optional space after the colon; lines starting with ':' are
 * comments; a blank line dispatches the event (nothing happens when no
 * data was buffered); multi-line data is joined with "\n"; a UTF-8 BOM at
 * the very start is skipped.  Unlike a browser it refuses to grow without
 * bound: a line longer than MAX_LINE or an event whose data exceeds
 * MAX_EVENT is an error (AAM_E_TOOBIG), because upstream bytes are not
 * trusted.
 *
 * When KEEP_RAW is set the parser also hands each event the exact bytes
 * it was made of (from the end of the previous event to the blank line),
 * so a proxy can forward or drop whole events without re-encoding them.
 */
#ifndef AAM_GATEWAY_SSE_H
#define AAM_GATEWAY_SSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/buf.h"

#define GW_SSE_MAX_LINE  (1024u * 1024)
#define GW_SSE_MAX_EVENT (4u * 1024 * 1024)

struct gw_sse_event {
	const char *event; /* "message" when the event had no "event:" field */
	const char *data;  /* NUL-terminated; may contain "\n" */
	size_t data_len;
	const char *id;     /* last event id seen so far ("" if none) */
	const uint8_t *raw; /* the event's bytes when KEEP_RAW, else NULL */
	size_t raw_len;
};

/* Returns AAM_OK to continue; any other value stops the parser and sticks. */
typedef int (*gw_sse_cb)(void *ctx, const struct gw_sse_event *ev);

struct gw_sse {
	struct aam_buf line, data, event, id, raw;
	size_t max_line, max_event;
	gw_sse_cb cb;
	void *ctx;
	bool keep_raw;
	bool saw_cr;     /* the previous byte was a CR: a following LF is part of it */
	bool first_line; /* still before the end of the first line (BOM check) */
	int err;         /* sticky */
};

/* MAX_LINE / MAX_EVENT of 0 take the defaults above. */
void gw_sse_init(struct gw_sse *p, size_t max_line, size_t max_event, bool keep_raw, gw_sse_cb cb,
                 void *ctx);
void gw_sse_uninit(struct gw_sse *p);

/* Feeds N bytes (any split).  Returns the sticky error, or AAM_OK. */
int gw_sse_feed(struct gw_sse *p, const uint8_t *buf, size_t n);

/*
 * At the end of the stream: AAM_E_PARSE when an event (or a line) was
 * started and not terminated by a blank line, the sticky error if any,
 * else AAM_OK.  The pending event is discarded, as EventSource does.
 */
int gw_sse_finish(struct gw_sse *p);

/*
 * Writers.  gw_sse_write appends "event: EVENT\n" (when EVENT is not NULL)
 * and one "data: " line per line of DATA, then the blank line.
 * gw_sse_write_json dumps J compactly (one line) as the data.
 */
int gw_sse_write(struct aam_buf *out, const char *event, const char *data, size_t n);
int gw_sse_write_json(struct aam_buf *out, const char *event, const json_t *j);

#endif /* AAM_GATEWAY_SSE_H */
