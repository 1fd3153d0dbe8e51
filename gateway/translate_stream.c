/*
 * Stream translation: upstream bytes (SSE, or AWS event-stream for
 * bedrock) in, client SSE bytes out, in the client's API shape.
 *
 * Same API over SSE: the upstream's bytes are forwarded unchanged, one
 * whole event at a time once it has been parsed (to count usage and see
 * the end), so what the client receives does not depend on how the bytes
 * were split and a malformed event is never half-forwarded.  The one
 * change: an OpenAI client that did not ask for usage does not get the
 * usage-only chunk the gateway forced on.  Across APIs each upstream event is turned into the
 * client's events as it arrives, so the client sees text as early as
 * with a direct connection:
 *
 *   Anthropic -> OpenAI: message_start -> role chunk; text deltas ->
 *   content chunks; tool_use block start -> tool_calls delta with index,
 *   id, type, function.name and empty arguments; input_json_delta ->
 *   arguments fragments; message_delta -> finish_reason chunk;
 *   message_stop -> usage chunk (only when asked) and "data: [DONE]".
 *
 *   OpenAI -> Anthropic: first chunk -> message_start; content -> a text
 *   block; each tool call -> a tool_use block with input_json_delta
 *   fragments; finish_reason closes the open block; [DONE] (or the end
 *   after a finish_reason) -> message_delta with stop_reason and usage,
 *   then message_stop.  OpenAI sends usage after finish_reason, so the
 *   message_delta waits for it.
 *
 * A stream that ends before its stop reason, or that carried an error,
 * gets an error event in the client's shape, which both official SDKs
 * raise as an error instead of returning a truncated answer.
 *
 * Along the way the translator keeps the stream's progress for the budget
 * settle of a stream cut short (gw_xlate_progress, router_int.h): whether
 * the input and the final usage were reported, and the bytes of output
 * the deltas carried.
 */
#include "gateway/provider_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aam/err.h"
#include "common/b64.h"
#include "common/json.h"
#include "gateway/router_int.h"
#include "gateway/sse.h"

enum { BLK_NONE = 0, BLK_TEXT, BLK_TOOL, BLK_OTHER };

struct gw_xlate {
	enum gw_wire wire;
	enum gw_api api;
	bool wants_usage;
	bool client_openai, upstream_openai;
	bool passthrough; /* same API: forward the upstream's event bytes */
	struct gw_sse sse;
	struct gw_evstream ev;
	struct aam_buf *out; /* the caller's buffer during feed/finish */
	int err;             /* sticky */
	bool done;           /* upstream terminator ([DONE], message_stop) */
	bool stopped;        /* upstream stop reason seen */
	bool upstream_error; /* upstream sent an error */
	bool started;        /* the client's stream was opened */
	bool closed;         /* the client's stream was terminated */
	struct gw_usage usage;
	struct gw_stream_progress progress; /* for the settle of a stream cut short */
	char id[128], model[128];
	int64_t created;
	/* Anthropic -> OpenAI */
	int cur_kind;
	int ntools;
	/* OpenAI -> Anthropic */
	int block_open;
	int next_block;
	int64_t open_tool, max_tool;
	char stop[32];
};

/* Copies S into DST (truncated); a missing or empty S leaves DST as it was. */
static void
copy_str(char *dst, size_t cap, const char *s)
{
	if (!s || !*s)
		return;
	size_t n = strlen(s);
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, s, n);
	dst[n] = '\0';
}

static int
emit_json(struct gw_xlate *x, const char *event, json_t *j)
{
	if (!j)
		return AAM_E_NOMEM;
	int rc = gw_sse_write_json(x->out, event, j);
	json_decref(j);
	return rc != AAM_OK ? rc : x->out->err;
}

static int
emit_done(struct gw_xlate *x)
{
	x->closed = true;
	return aam_buf_append_str(x->out, "data: [DONE]\n\n");
}

/* An error event in the client's shape (message is not quoted from secrets). */
static int
emit_client_error(struct gw_xlate *x, const char *type, const char *msg)
{
	/* Upstream messages are valid UTF-8 (they come from parsed JSON) but
	 * may be long: keep the first 512 bytes, cut on a character boundary. */
	size_t n = strlen(msg);
	if (n > 512) {
		n = 512;
		while (n > 0 && ((unsigned char)msg[n] & 0xC0) == 0x80)
			n--;
	}
	int rc;
	if (x->client_openai) {
		rc = emit_json(x, NULL,
		               json_pack("{s:{s:s%, s:s, s:n}}", "error", "message", msg, n, "type",
		                         type, "code"));
		if (rc == AAM_OK)
			rc = emit_done(x);
	} else {
		rc = emit_json(x, "error",
		               json_pack("{s:s, s:{s:s, s:s%}}", "type", "error", "error", "type",
		                         type, "message", msg, n));
		x->closed = true;
	}
	return rc;
}

/* ---- to an OpenAI client ---- */

static int
oai_chunk(struct gw_xlate *x, json_t *delta, const char *finish)
{
	if (!delta)
		return AAM_E_NOMEM;
	json_t *c = json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:o, s:n, s:o}]}", "id", x->id,
	                      "object", "chat.completion.chunk", "created", (json_int_t)x->created,
	                      "model", x->model, "choices", "index", 0, "delta", delta, "logprobs",
	                      "finish_reason", finish ? json_string(finish) : json_null());
	return emit_json(x, NULL, c);
}

static int
oai_start(struct gw_xlate *x)
{
	if (x->started)
		return AAM_OK;
	x->started = true;
	if (!x->id[0])
		copy_str(x->id, sizeof(x->id), "chatcmpl-aam");
	return oai_chunk(x, json_pack("{s:s, s:s}", "role", "assistant", "content", ""), NULL);
}

static int
oai_end(struct gw_xlate *x)
{
	int rc = AAM_OK;
	if (x->wants_usage) {
		json_t *c = json_pack("{s:s, s:s, s:I, s:s, s:[], s:o}", "id", x->id, "object",
		                      "chat.completion.chunk", "created", (json_int_t)x->created,
		                      "model", x->model, "choices", "usage",
		                      gw_usage_to_openai(&x->usage));
		rc = emit_json(x, NULL, c);
	}
	return rc == AAM_OK ? emit_done(x) : rc;
}

/* Adds the byte length of string member KEY of O to the output seen. */
static void
count_str(struct gw_xlate *x, const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	if (json_is_string(v))
		x->progress.output_bytes += (int64_t)json_string_length(v);
}

/*
 * Keeps the progress of an Anthropic stream: whether the input and the
 * final usage were reported, and the bytes of output the deltas carried.
 */
static void
count_anthropic(struct gw_xlate *x, const char *type, const json_t *ev)
{
	struct gw_stream_progress *p = &x->progress;
	if (strcmp(type, "message_start") == 0) {
		const json_t *u = json_object_get(json_object_get(ev, "message"), "usage");
		if (json_is_integer(json_object_get(u, "input_tokens")))
			p->input_reported = true;
	} else if (strcmp(type, "message_delta") == 0) {
		if (json_is_integer(json_object_get(json_object_get(ev, "usage"), "output_tokens")))
			p->final_usage = true;
	} else if (strcmp(type, "content_block_start") == 0) {
		const json_t *cb = json_object_get(ev, "content_block");
		const char *bt = gw_json_str(cb, "type");
		if (bt != NULL && (strcmp(bt, "text") == 0 || strcmp(bt, "tool_use") == 0 ||
		                   strcmp(bt, "server_tool_use") == 0)) {
			count_str(x, cb, "text");
			count_str(x, cb, "name");
		} else if (bt != NULL && strstr(bt, "tool_result") == NULL) {
			/* thinking (summarised), redacted_thinking (encrypted), unknown kinds. */
			p->opaque_output = true;
		}
	} else if (strcmp(type, "content_block_delta") == 0) {
		const json_t *d = json_object_get(ev, "delta");
		count_str(x, d, "text");
		count_str(x, d, "partial_json");
		count_str(x, d, "thinking");
	}
}

/* The same for one OpenAI chunk: every choice's content, refusal, reasoning and tool calls. */
static void
count_openai(struct gw_xlate *x, const json_t *c)
{
	if (json_is_object(json_object_get(c, "usage"))) {
		x->progress.input_reported = true;
		x->progress.final_usage = true;
	}
	size_t i;
	const json_t *ch;
	json_array_foreach(json_object_get(c, "choices"), i, ch)
	{
		const json_t *d = json_object_get(ch, "delta");
		count_str(x, d, "content");
		count_str(x, d, "refusal");
		count_str(x, d, "reasoning_content");
		size_t k;
		const json_t *tc;
		json_array_foreach(json_object_get(d, "tool_calls"), k, tc)
		{
			const json_t *fn = json_object_get(tc, "function");
			count_str(x, fn, "name");
			count_str(x, fn, "arguments");
		}
	}
}

/* One Anthropic stream event (from SSE or Bedrock), for either client. */
static int
on_anthropic(struct gw_xlate *x, const json_t *ev)
{
	const char *type = gw_json_str(ev, "type");
	if (!type)
		return AAM_E_PARSE;
	bool to_openai = x->client_openai;
	int rc = AAM_OK;
	count_anthropic(x, type, ev);

	if (strcmp(type, "message_start") == 0) {
		const json_t *m = json_object_get(ev, "message");
		gw_usage_from_anthropic(json_object_get(m, "usage"), &x->usage);
		copy_str(x->id, sizeof(x->id), gw_json_str(m, "id"));
		copy_str(x->model, sizeof(x->model), gw_json_str(m, "model"));
		if (to_openai)
			rc = oai_start(x);
	} else if (strcmp(type, "message_delta") == 0) {
		gw_usage_from_anthropic(json_object_get(ev, "usage"), &x->usage);
		x->stopped = true;
		const char *sr = gw_json_str(json_object_get(ev, "delta"), "stop_reason");
		if (to_openai && (rc = oai_start(x)) == AAM_OK)
			rc = oai_chunk(x, json_object(), gw_finish_from_stop(sr));
	} else if (strcmp(type, "message_stop") == 0) {
		x->done = true;
		if (to_openai && (rc = oai_start(x)) == AAM_OK)
			rc = oai_end(x);
		else if (!to_openai)
			x->closed = true;
	} else if (strcmp(type, "error") == 0) {
		x->upstream_error = true;
		if (to_openai) {
			const json_t *e = json_object_get(ev, "error");
			const char *et = gw_json_str(e, "type"), *em = gw_json_str(e, "message");
			rc = emit_client_error(x, et ? et : "api_error",
			                       em ? em : "upstream stream error");
		} else {
			x->closed = true;
		}
	} else if (to_openai && strcmp(type, "content_block_start") == 0) {
		const json_t *cb = json_object_get(ev, "content_block");
		const char *bt = gw_json_str(cb, "type");
		rc = oai_start(x);
		if (rc == AAM_OK && bt && strcmp(bt, "text") == 0) {
			x->cur_kind = BLK_TEXT;
			const char *t = gw_json_str(cb, "text");
			if (t && *t)
				rc = oai_chunk(x, json_pack("{s:s}", "content", t), NULL);
		} else if (rc == AAM_OK && bt && strcmp(bt, "tool_use") == 0) {
			const char *id = gw_json_str(cb, "id"), *name = gw_json_str(cb, "name");
			if (!id || !name)
				return AAM_E_PARSE;
			x->cur_kind = BLK_TOOL;
			rc = oai_chunk(x,
			               json_pack("{s:[{s:i, s:s, s:s, s:{s:s, s:s}}]}",
			                         "tool_calls", "index", x->ntools, "id", id, "type",
			                         "function", "function", "name", name, "arguments",
			                         ""),
			               NULL);
			x->ntools++;
		} else {
			x->cur_kind = BLK_OTHER; /* thinking, server tools: not for OpenAI */
		}
	} else if (to_openai && strcmp(type, "content_block_delta") == 0) {
		const json_t *d = json_object_get(ev, "delta");
		const char *dt = gw_json_str(d, "type");
		rc = oai_start(x);
		if (rc == AAM_OK && dt && strcmp(dt, "text_delta") == 0 &&
		    x->cur_kind == BLK_TEXT) {
			const char *t = gw_json_str(d, "text");
			if (t && *t)
				rc = oai_chunk(x, json_pack("{s:s}", "content", t), NULL);
		} else if (rc == AAM_OK && dt && strcmp(dt, "input_json_delta") == 0 &&
		           x->cur_kind == BLK_TOOL) {
			const char *pj = gw_json_str(d, "partial_json");
			if (pj && *pj)
				rc = oai_chunk(x,
				               json_pack("{s:[{s:i, s:{s:s}}]}", "tool_calls",
				                         "index", x->ntools - 1, "function",
				                         "arguments", pj),
				               NULL);
		}
	} else if (to_openai && strcmp(type, "content_block_stop") == 0) {
		x->cur_kind = BLK_NONE;
	}
	/* ping and unknown event types carry nothing for a client to act on. */
	return rc;
}

/* ---- to an Anthropic client ---- */

static int
anth_start(struct gw_xlate *x)
{
	if (x->started)
		return AAM_OK;
	x->started = true;
	if (!x->id[0])
		copy_str(x->id, sizeof(x->id), "msg_aam");
	return emit_json(x, "message_start",
	                 json_pack("{s:s, s:{s:s, s:s, s:s, s:s, s:[], s:n, s:n, s:{s:i, s:i}}}",
	                           "type", "message_start", "message", "id", x->id, "type",
	                           "message", "role", "assistant", "model", x->model, "content",
	                           "stop_reason", "stop_sequence", "usage", "input_tokens", 0,
	                           "output_tokens", 0));
}

static int
anth_close_block(struct gw_xlate *x)
{
	if (x->block_open == BLK_NONE)
		return AAM_OK;
	x->block_open = BLK_NONE;
	return emit_json(
	        x, "content_block_stop",
	        json_pack("{s:s, s:i}", "type", "content_block_stop", "index", x->next_block - 1));
}

static int
anth_end(struct gw_xlate *x)
{
	int rc = anth_start(x);
	if (rc == AAM_OK)
		rc = anth_close_block(x);
	if (rc != AAM_OK)
		return rc;
	json_t *u = gw_usage_to_anthropic(&x->usage);
	if (u)
		json_object_del(u, "cache_creation_input_tokens");
	rc = emit_json(x, "message_delta",
	               json_pack("{s:s, s:{s:s, s:n}, s:o}", "type", "message_delta", "delta",
	                         "stop_reason", x->stop[0] ? x->stop : "end_turn", "stop_sequence",
	                         "usage", u));
	if (rc == AAM_OK)
		rc = emit_json(x, "message_stop", json_pack("{s:s}", "type", "message_stop"));
	x->closed = true;
	return rc;
}

static int
anth_tool_call(struct gw_xlate *x, const json_t *tc)
{
	const json_t *fn = json_object_get(tc, "function");
	const json_t *jidx = json_object_get(tc, "index");
	int64_t idx = json_is_integer(jidx) ? json_integer_value(jidx) : 0;
	const char *id = gw_json_str(tc, "id"), *name = gw_json_str(fn, "name");
	const char *args = gw_json_str(fn, "arguments");
	int rc = AAM_OK;

	if (id || name) {
		/* A new call.  Anthropic blocks come one after another, so calls
		 * must too: a call that comes back after another began is refused. */
		if (!id || !name || idx <= x->max_tool)
			return AAM_E_PROTO;
		rc = anth_close_block(x);
		if (rc == AAM_OK)
			rc = emit_json(x, "content_block_start",
			               json_pack("{s:s, s:i, s:{s:s, s:s, s:s, s:{}}}", "type",
			                         "content_block_start", "index", x->next_block,
			                         "content_block", "type", "tool_use", "id", id,
			                         "name", name, "input"));
		x->next_block++;
		x->block_open = BLK_TOOL;
		x->open_tool = x->max_tool = idx;
	} else if (x->block_open != BLK_TOOL || idx != x->open_tool) {
		return AAM_E_PROTO;
	}
	if (rc == AAM_OK && args && *args)
		rc = emit_json(x, "content_block_delta",
		               json_pack("{s:s, s:i, s:{s:s, s:s}}", "type", "content_block_delta",
		                         "index", x->next_block - 1, "delta", "type",
		                         "input_json_delta", "partial_json", args));
	return rc;
}

static int
on_openai_to_anthropic(struct gw_xlate *x, const json_t *c)
{
	if (!x->started) {
		copy_str(x->id, sizeof(x->id), gw_json_str(c, "id"));
		copy_str(x->model, sizeof(x->model), gw_json_str(c, "model"));
	}
	const json_t *ch = json_array_get(json_object_get(c, "choices"), 0);
	const json_t *delta = json_object_get(ch, "delta");
	int rc = anth_start(x);
	const char *text = gw_json_str(delta, "content");
	if (rc == AAM_OK && text && *text) {
		if (x->block_open != BLK_TEXT) {
			rc = anth_close_block(x);
			if (rc == AAM_OK)
				rc = emit_json(x, "content_block_start",
				               json_pack("{s:s, s:i, s:{s:s, s:s}}", "type",
				                         "content_block_start", "index",
				                         x->next_block, "content_block", "type",
				                         "text", "text", ""));
			x->next_block++;
			x->block_open = BLK_TEXT;
		}
		if (rc == AAM_OK)
			rc = emit_json(x, "content_block_delta",
			               json_pack("{s:s, s:i, s:{s:s, s:s}}", "type",
			                         "content_block_delta", "index", x->next_block - 1,
			                         "delta", "type", "text_delta", "text", text));
	}
	const json_t *tcs = json_object_get(delta, "tool_calls");
	size_t i;
	const json_t *tc;
	json_array_foreach(tcs, i, tc)
	{
		if (rc != AAM_OK)
			break;
		rc = anth_tool_call(x, tc);
	}
	const char *fr = gw_json_str(ch, "finish_reason");
	if (rc == AAM_OK && fr) {
		copy_str(x->stop, sizeof(x->stop), gw_stop_from_finish(fr));
		rc = anth_close_block(x);
	}
	return rc;
}

/* ---- upstream event dispatch ---- */

static int
parse_event(const char *data, size_t n, json_t **out)
{
	const struct aam_json_limits lim = {.max_bytes = GW_SSE_MAX_EVENT,
	                                    .max_string = GW_SSE_MAX_EVENT};
	int rc = aam_json_parse(data, n, &lim, out, NULL);
	if (rc == AAM_OK && !json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		rc = AAM_E_PARSE;
	}
	return rc == AAM_OK || rc == AAM_E_NOMEM ? rc : AAM_E_PARSE;
}

static int
on_openai(struct gw_xlate *x, const struct gw_sse_event *sev)
{
	bool forward = x->passthrough && !x->closed;
	if (sev->data_len == 6 && memcmp(sev->data, "[DONE]", 6) == 0) {
		x->done = true;
		if (x->passthrough) {
			x->closed = true;
			return forward ? aam_buf_append(x->out, sev->raw, sev->raw_len) : AAM_OK;
		}
		return x->closed ? AAM_OK : anth_end(x);
	}
	json_t *c = NULL;
	int rc = parse_event(sev->data, sev->data_len, &c);
	if (rc != AAM_OK)
		return rc;
	const json_t *usage = json_object_get(c, "usage");
	const json_t *choices = json_object_get(c, "choices");
	gw_usage_from_openai(usage, &x->usage);
	count_openai(x, c);
	const json_t *e = json_object_get(c, "error");
	if (e && !json_is_null(e))
		x->upstream_error = true;
	if (gw_json_str(json_array_get(choices, 0), "finish_reason"))
		x->stopped = true;

	if (x->passthrough) {
		/* The forced usage-only chunk has no choices; drop it if unwanted. */
		bool usage_only = json_is_object(usage) && json_is_array(choices) &&
		                  json_array_size(choices) == 0;
		if (forward && !(usage_only && !x->wants_usage))
			rc = aam_buf_append(x->out, sev->raw, sev->raw_len);
		if (x->upstream_error)
			x->closed = true;
	} else if (!x->closed) {
		if (x->upstream_error) {
			const char *m = gw_json_str(e, "message");
			const char *t = gw_json_str(e, "type");
			rc = emit_client_error(x, t ? t : "api_error",
			                       m ? m : "upstream stream error");
		} else {
			rc = on_openai_to_anthropic(x, c);
		}
	}
	json_decref(c);
	return rc;
}

static int
sse_cb(void *ctx, const struct gw_sse_event *sev)
{
	struct gw_xlate *x = ctx;
	if (x->upstream_openai)
		return on_openai(x, sev);
	json_t *ev = NULL;
	bool was_closed = x->closed;
	int rc = parse_event(sev->data, sev->data_len, &ev);
	if (rc == AAM_OK && !(was_closed && x->client_openai))
		rc = on_anthropic(x, ev);
	if (rc == AAM_OK && x->passthrough && !was_closed)
		rc = aam_buf_append(x->out, sev->raw, sev->raw_len);
	json_decref(ev);
	return rc;
}

static int
ev_cb(void *ctx, const char *mtype, const char *etype, const uint8_t *payload, size_t n)
{
	struct gw_xlate *x = ctx;
	json_t *p = NULL;
	int rc = parse_event((const char *)payload, n, &p);
	if (rc != AAM_OK)
		return rc;
	if (strcmp(mtype, "event") != 0) {
		/* An exception (throttling, model error, ...) ends the stream. */
		x->upstream_error = true;
		const char *m = gw_json_str(p, "message");
		char msg[300];
		snprintf(msg, sizeof(msg), "bedrock %s: %s", etype[0] ? etype : mtype,
		         m ? m : "stream error");
		gw_utf8_trim(msg);
		rc = x->closed ? AAM_OK : emit_client_error(x, "api_error", msg);
		json_decref(p);
		return rc;
	}
	if (strcmp(etype, "chunk") != 0) {
		json_decref(p);
		return AAM_OK;
	}
	const char *b = gw_json_str(p, "bytes");
	struct aam_buf dec;
	aam_buf_init(&dec, GW_EVSTREAM_MAX_MESSAGE);
	rc = b ? aam_b64_decode_buf(&dec, b, strlen(b), AAM_B64_STD) : AAM_E_PARSE;
	json_decref(p);
	json_t *ev = NULL;
	if (rc == AAM_OK)
		rc = parse_event((const char *)dec.data, dec.len, &ev);
	aam_buf_uninit(&dec);
	if (rc != AAM_OK)
		return rc == AAM_E_NOMEM ? rc : AAM_E_PARSE;
	if (!x->closed) {
		rc = on_anthropic(x, ev);
		/* An Anthropic client gets each event re-framed as SSE. */
		if (rc == AAM_OK && !x->client_openai) {
			const char *t = gw_json_str(ev, "type");
			json_t *copy = json_copy(ev);
			if (copy)
				json_object_del(copy, "amazon-bedrock-invocationMetrics");
			rc = emit_json(x, t, copy);
		}
	}
	json_decref(ev);
	return rc;
}

int
gw_xlate_new(const struct gw_deployment *d, enum gw_api api, bool client_wants_usage,
             struct gw_xlate **out)
{
	enum gw_wire wire;
	if (!d || !out || (api != GW_API_OPENAI_CHAT && api != GW_API_ANTHROPIC_MESSAGES))
		return AAM_E_INVAL;
	if (gw_provider_wire(d->provider, &wire) != AAM_OK)
		return AAM_E_INVAL;
	struct gw_xlate *x = calloc(1, sizeof(*x));
	if (!x)
		return AAM_E_NOMEM;
	x->wire = wire;
	x->api = api;
	x->client_openai = api == GW_API_OPENAI_CHAT;
	x->upstream_openai = wire == GW_WIRE_OPENAI;
	x->wants_usage = x->client_openai ? client_wants_usage : true;
	x->passthrough = x->client_openai == x->upstream_openai;
	x->created = (int64_t)time(NULL);
	x->open_tool = x->max_tool = -1;
	copy_str(x->model, sizeof(x->model), d->model);
	if (wire == GW_WIRE_BEDROCK)
		gw_evstream_init(&x->ev, ev_cb, x);
	else
		gw_sse_init(&x->sse, 0, 0, x->passthrough, sse_cb, x);
	*out = x;
	return AAM_OK;
}

void
gw_xlate_set_created(struct gw_xlate *x, int64_t created)
{
	x->created = created;
}

int
gw_xlate_feed(struct gw_xlate *x, const uint8_t *p, size_t n, struct aam_buf *out)
{
	if (!x || !out || (!p && n))
		return AAM_E_INVAL;
	if (x->err)
		return x->err;
	x->out = out;
	int rc;
	if (x->wire == GW_WIRE_BEDROCK) {
		rc = gw_evstream_feed(&x->ev, p, n);
	} else {
		rc = gw_sse_feed(&x->sse, p, n);
	}
	if (rc == AAM_OK && aam_buf_failed(out))
		rc = out->err;
	x->out = NULL;
	if (rc != AAM_OK)
		x->err = rc;
	return rc;
}

int
gw_xlate_finish(struct gw_xlate *x, struct aam_buf *out)
{
	if (!x || !out)
		return AAM_E_INVAL;
	x->out = out;
	int prc = x->wire == GW_WIRE_BEDROCK ? gw_evstream_finish(&x->ev) : gw_sse_finish(&x->sse);
	bool complete = (x->done || x->stopped) && !x->err;
	int rc = AAM_OK;
	if (x->upstream_error)
		rc = AAM_E_PROTO;
	else if (x->err)
		rc = x->err;
	else if (!complete)
		rc = prc != AAM_OK ? prc : AAM_E_PARSE;

	if (!x->closed) {
		int wrc;
		if (rc != AAM_OK) {
			wrc = emit_client_error(
			        x, "api_error",
			        rc == AAM_E_TOOBIG
			                ? "upstream stream exceeded a size limit"
			                : "upstream stream ended early or was malformed");
		} else if (x->client_openai && x->passthrough) {
			wrc = emit_done(x);
		} else if (x->client_openai) {
			wrc = oai_start(x);
			if (wrc == AAM_OK)
				wrc = oai_end(x);
		} else if (x->passthrough || x->wire == GW_WIRE_BEDROCK) {
			wrc = emit_json(x, "message_stop",
			                json_pack("{s:s}", "type", "message_stop"));
			x->closed = true;
		} else {
			wrc = anth_end(x);
		}
		if (rc == AAM_OK && wrc != AAM_OK)
			rc = wrc;
	}
	x->out = NULL;
	return rc;
}

void
gw_xlate_usage(const struct gw_xlate *x, struct gw_usage *u)
{
	if (u)
		*u = x ? x->usage : (struct gw_usage){0};
}

void
gw_xlate_progress(const struct gw_xlate *x, struct gw_stream_progress *p)
{
	if (p)
		*p = x ? x->progress : (struct gw_stream_progress){0};
}

void
gw_xlate_free(struct gw_xlate *x)
{
	if (!x)
		return;
	if (x->wire == GW_WIRE_BEDROCK)
		gw_evstream_uninit(&x->ev);
	else
		gw_sse_uninit(&x->sse);
	free(x);
}
