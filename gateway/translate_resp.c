/*
 * Non-stream response translation and the usage / stop-reason mappings
 * shared with the stream translator.
 *
 * Usage: OpenAI's prompt_tokens include cached tokens
 * (prompt_tokens_details.cached_tokens is a subset); Anthropic's
 * input_tokens exclude them (cache_read_input_tokens and
 * cache_creation_input_tokens come on top).  struct gw_usage follows
 * OpenAI: input is every input token, cached the part read from cache.
 */
#include "gateway/provider_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aam/err.h"
#include "common/json.h"

void
gw_usage_from_anthropic(const json_t *usage, struct gw_usage *u)
{
	if (!json_is_object(usage))
		return;
	/* message_delta repeats the counts cumulatively; take what is there. */
	const json_t *in = json_object_get(usage, "input_tokens");
	if (json_is_integer(in)) {
		int64_t cr = gw_json_int(usage, "cache_read_input_tokens");
		u->input = gw_json_int(usage, "input_tokens") + cr +
		           gw_json_int(usage, "cache_creation_input_tokens");
		u->cached = cr;
		u->seen = true;
	}
	if (json_is_integer(json_object_get(usage, "output_tokens"))) {
		u->output = gw_json_int(usage, "output_tokens");
		u->seen = true;
	}
}

void
gw_usage_from_openai(const json_t *usage, struct gw_usage *u)
{
	if (!json_is_object(usage))
		return;
	u->input = gw_json_int(usage, "prompt_tokens");
	u->output = gw_json_int(usage, "completion_tokens");
	u->cached = gw_json_int(json_object_get(usage, "prompt_tokens_details"), "cached_tokens");
	if (u->cached > u->input)
		u->cached = u->input;
	u->seen = true;
}

json_t *
gw_usage_to_openai(const struct gw_usage *u)
{
	return json_pack("{s:I, s:I, s:I, s:{s:I}}", "prompt_tokens", (json_int_t)u->input,
	                 "completion_tokens", (json_int_t)u->output, "total_tokens",
	                 (json_int_t)(u->input + u->output), "prompt_tokens_details",
	                 "cached_tokens", (json_int_t)u->cached);
}

json_t *
gw_usage_to_anthropic(const struct gw_usage *u)
{
	return json_pack("{s:I, s:I, s:I, s:I}", "input_tokens", (json_int_t)(u->input - u->cached),
	                 "cache_creation_input_tokens", (json_int_t)0, "cache_read_input_tokens",
	                 (json_int_t)u->cached, "output_tokens", (json_int_t)u->output);
}

const char *
gw_finish_from_stop(const char *s)
{
	if (!s)
		return "stop";
	if (strcmp(s, "max_tokens") == 0 || strcmp(s, "model_context_window_exceeded") == 0)
		return "length";
	if (strcmp(s, "tool_use") == 0)
		return "tool_calls";
	if (strcmp(s, "refusal") == 0)
		return "content_filter";
	return "stop"; /* end_turn, stop_sequence, pause_turn */
}

const char *
gw_stop_from_finish(const char *f)
{
	if (!f)
		return "end_turn";
	if (strcmp(f, "length") == 0)
		return "max_tokens";
	if (strcmp(f, "tool_calls") == 0 || strcmp(f, "function_call") == 0)
		return "tool_use";
	if (strcmp(f, "content_filter") == 0)
		return "refusal";
	return "end_turn";
}

int
gw_resp_anthropic_to_openai(const json_t *in, json_t **out, struct gw_usage *u)
{
	const json_t *content = json_object_get(in, "content");
	if (!json_is_array(content))
		return AAM_E_PARSE;
	struct aam_buf text;
	aam_buf_init(&text, GW_MAX_RESPONSE);
	json_t *calls = json_array();
	int rc = calls ? AAM_OK : AAM_E_NOMEM;
	size_t i;
	const json_t *blk;
	json_array_foreach(content, i, blk)
	{
		const char *t = gw_json_str(blk, "type");
		if (rc != AAM_OK || !t)
			continue;
		if (strcmp(t, "text") == 0 && gw_json_str(blk, "text")) {
			const json_t *tx = json_object_get(blk, "text");
			aam_buf_append(&text, json_string_value(tx), json_string_length(tx));
		} else if (strcmp(t, "tool_use") == 0) {
			const char *id = gw_json_str(blk, "id"), *name = gw_json_str(blk, "name");
			const json_t *input = json_object_get(blk, "input");
			char *args = json_is_object(input) ? json_dumps(input, JSON_COMPACT)
			                                   : strdup("{}");
			if (!id || !name)
				rc = AAM_E_PARSE;
			else if (!args ||
			         json_array_append_new(calls,
			                               json_pack("{s:s, s:s, s:{s:s, s:s}}", "id",
			                                         id, "type", "function", "function",
			                                         "name", name, "arguments", args)))
				rc = AAM_E_NOMEM;
			free(args);
		}
		/* thinking and server-tool blocks have no OpenAI counterpart. */
	}
	if (rc == AAM_OK && text.err)
		rc = text.err;
	json_t *msg = NULL, *o = NULL;
	if (rc == AAM_OK) {
		msg = json_pack("{s:s, s:n}", "role", "assistant", "refusal");
		if (msg)
			json_object_set_new(msg, "content",
			                    text.len || json_array_size(calls) == 0
			                            ? json_stringn(aam_buf_cstr(&text), text.len)
			                            : json_null());
		if (msg && json_array_size(calls) > 0)
			json_object_set(msg, "tool_calls", calls);
	}
	aam_buf_uninit(&text);
	json_decref(calls);
	if (rc != AAM_OK || !msg) {
		json_decref(msg);
		return rc != AAM_OK ? rc : AAM_E_NOMEM;
	}
	gw_usage_from_anthropic(json_object_get(in, "usage"), u);
	const char *id = gw_json_str(in, "id"), *model = gw_json_str(in, "model");
	o = json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:o, s:n, s:s}], s:o}", "id", id ? id : "msg",
	              "object", "chat.completion", "created", (json_int_t)time(NULL), "model",
	              model ? model : "", "choices", "index", 0, "message", msg, "logprobs",
	              "finish_reason", gw_finish_from_stop(gw_json_str(in, "stop_reason")), "usage",
	              gw_usage_to_openai(u));
	if (!o)
		return AAM_E_NOMEM;
	*out = o;
	return AAM_OK;
}

int
gw_resp_openai_to_anthropic(const json_t *in, json_t **out, struct gw_usage *u)
{
	const json_t *choice = json_array_get(json_object_get(in, "choices"), 0);
	const json_t *msg = json_object_get(choice, "message");
	if (!json_is_object(msg))
		return AAM_E_PARSE;
	json_t *content = json_array();
	if (!content)
		return AAM_E_NOMEM;
	int rc = AAM_OK;
	const json_t *c = json_object_get(msg, "content");
	if (json_is_string(c) && json_string_length(c) > 0)
		if (json_array_append_new(content,
		                          json_pack("{s:s, s:O}", "type", "text", "text", c)) != 0)
			rc = AAM_E_NOMEM;
	const json_t *calls = json_object_get(msg, "tool_calls");
	size_t i;
	const json_t *tc;
	json_array_foreach(calls, i, tc)
	{
		if (rc != AAM_OK)
			break;
		const json_t *fn = json_object_get(tc, "function");
		const char *id = gw_json_str(tc, "id"), *name = gw_json_str(fn, "name");
		const char *args = gw_json_str(fn, "arguments");
		if (!id || !name) {
			rc = AAM_E_PARSE;
			break;
		}
		json_t *input = NULL;
		if (args && *args)
			aam_json_parse(args, strlen(args), NULL, &input, NULL);
		if (!json_is_object(input)) {
			/* The model wrote arguments that are not an object; the
			 * client gets an empty input rather than a broken block. */
			json_decref(input);
			input = json_object();
		}
		if (json_array_append_new(content,
		                          json_pack("{s:s, s:s, s:s, s:o}", "type", "tool_use",
		                                    "id", id, "name", name, "input", input)) != 0)
			rc = AAM_E_NOMEM;
	}
	if (rc != AAM_OK) {
		json_decref(content);
		return rc;
	}
	gw_usage_from_openai(json_object_get(in, "usage"), u);
	const char *id = gw_json_str(in, "id"), *model = gw_json_str(in, "model");
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:n, s:o}", "id", id ? id : "msg",
	                      "type", "message", "role", "assistant", "model", model ? model : "",
	                      "content", content, "stop_reason",
	                      gw_stop_from_finish(gw_json_str(choice, "finish_reason")),
	                      "stop_sequence", "usage", gw_usage_to_anthropic(u));
	if (!o)
		return AAM_E_NOMEM;
	*out = o;
	return AAM_OK;
}
