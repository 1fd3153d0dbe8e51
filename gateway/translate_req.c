/*
 * Request translation, OpenAI chat completions -> Anthropic messages (the
 * other direction is translate_req_anthropic.c), following both published
 * API references.  What has no counterpart is refused with a clear
 * message (n > 1, logprobs, audio, structured output) rather than
 * silently answered differently; what only tunes the answer (penalties,
 * seed, top_k, thinking) is dropped.  docs/PROVIDERS.md lists both.
 */
#include "gateway/provider_int.h"

#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "common/json.h"

/* Appends the text of an OpenAI content (string or parts) to B. */
static int
openai_text(const json_t *content, struct aam_buf *b, const char *what, char *err, size_t errlen)
{
	if (json_is_string(content))
		return aam_buf_append(b, json_string_value(content), json_string_length(content));
	if (json_is_null(content) || !content)
		return AAM_OK;
	if (!json_is_array(content))
		return gw_perr(err, errlen, "%s content must be a string or an array", what);
	size_t i;
	const json_t *p;
	json_array_foreach(content, i, p)
	{
		const char *t = gw_json_str(p, "type");
		const json_t *tx = json_object_get(p, "text");
		if (!t || strcmp(t, "text") != 0 || !json_is_string(tx))
			return gw_perr(err, errlen, "%s content supports only text parts", what);
		aam_buf_append(b, json_string_value(tx), json_string_length(tx));
	}
	return b->err;
}

/* An OpenAI image_url part -> an Anthropic image block. */
static int
image_block(const json_t *part, json_t **out, char *err, size_t errlen)
{
	const json_t *iu = json_object_get(part, "image_url");
	const char *url = json_is_string(iu) ? json_string_value(iu) : gw_json_str(iu, "url");
	if (!url)
		return gw_perr(err, errlen, "image_url part without a url");
	json_t *src;
	if (strncmp(url, "data:", 5) == 0) {
		const char *comma = strchr(url, ',');
		const char *semi = comma ? strstr(url, ";base64,") : NULL;
		if (!comma || !semi || semi + 7 != comma)
			return gw_perr(err, errlen, "image data URLs must be base64 encoded");
		src = json_pack("{s:s, s:s%, s:s}", "type", "base64", "media_type", url + 5,
		                (size_t)(semi - (url + 5)), "data", comma + 1);
	} else if (strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0) {
		src = json_pack("{s:s, s:s}", "type", "url", "url", url);
	} else {
		return gw_perr(err, errlen, "image URLs must be data: or http(s): URLs");
	}
	if (!src)
		return AAM_E_NOMEM;
	*out = json_pack("{s:s, s:o}", "type", "image", "source", src);
	return *out ? AAM_OK : AAM_E_NOMEM;
}

static int
user_blocks(json_t *content, json_t **out, char *err, size_t errlen)
{
	if (json_is_string(content)) {
		*out = json_incref(content);
		return AAM_OK;
	}
	if (!json_is_array(content))
		return gw_perr(err, errlen, "user message content must be a string or an array");
	json_t *arr = json_array();
	if (!arr)
		return AAM_E_NOMEM;
	size_t i;
	const json_t *p;
	json_array_foreach(content, i, p)
	{
		const char *t = gw_json_str(p, "type");
		json_t *blk = NULL;
		int rc = AAM_OK;
		if (t && strcmp(t, "text") == 0 && json_is_string(json_object_get(p, "text"))) {
			blk = json_pack("{s:s, s:O}", "type", "text", "text",
			                json_object_get(p, "text"));
			rc = blk ? AAM_OK : AAM_E_NOMEM;
		} else if (t && strcmp(t, "image_url") == 0) {
			rc = image_block(p, &blk, err, errlen);
		} else {
			rc = gw_perr(err, errlen,
			             "content part type \"%s\" is not supported by this route",
			             t ? t : "?");
		}
		if (rc != AAM_OK || json_array_append_new(arr, blk) != 0) {
			json_decref(arr);
			return rc != AAM_OK ? rc : AAM_E_NOMEM;
		}
	}
	*out = arr;
	return AAM_OK;
}

static int
parse_arguments(const json_t *fn, json_t **out, char *err, size_t errlen)
{
	json_t *a = json_object_get(fn, "arguments");
	if (json_is_object(a)) {
		*out = json_incref(a);
		return AAM_OK;
	}
	if (!a || json_is_null(a) || (json_is_string(a) && json_string_length(a) == 0)) {
		*out = json_object();
		return *out ? AAM_OK : AAM_E_NOMEM;
	}
	if (!json_is_string(a))
		return gw_perr(err, errlen, "tool call arguments must be a string");
	json_t *j = NULL;
	if (aam_json_parse(json_string_value(a), json_string_length(a), NULL, &j, NULL) != AAM_OK ||
	    !json_is_object(j)) {
		json_decref(j);
		return gw_perr(err, errlen, "tool call arguments must be a JSON object");
	}
	*out = j;
	return AAM_OK;
}

static int
assistant_blocks(const json_t *m, json_t **out, char *err, size_t errlen)
{
	struct aam_buf text;
	aam_buf_init(&text, 0);
	int rc = openai_text(json_object_get(m, "content"), &text, "assistant", err, errlen);
	json_t *arr = json_array();
	if (rc == AAM_OK && !arr)
		rc = AAM_E_NOMEM;
	if (rc == AAM_OK && text.len > 0 &&
	    json_array_append_new(arr, json_pack("{s:s, s:s%}", "type", "text", "text",
	                                         aam_buf_cstr(&text), text.len)) != 0)
		rc = AAM_E_NOMEM;
	aam_buf_uninit(&text);
	const json_t *tcs = json_object_get(m, "tool_calls");
	if (rc == AAM_OK && tcs && !json_is_null(tcs)) {
		if (!json_is_array(tcs))
			rc = gw_perr(err, errlen, "tool_calls must be an array");
		size_t i;
		const json_t *tc;
		json_array_foreach(tcs, i, tc)
		{
			if (rc != AAM_OK)
				break;
			const json_t *fn = json_object_get(tc, "function");
			const char *id = gw_json_str(tc, "id"), *name = gw_json_str(fn, "name");
			if (!id || !name) {
				rc = gw_perr(err, errlen,
				             "a tool call needs an id and a function name");
				break;
			}
			json_t *input = NULL;
			rc = parse_arguments(fn, &input, err, errlen);
			if (rc == AAM_OK &&
			    json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:o}", "type",
			                                         "tool_use", "id", id, "name", name,
			                                         "input", input)) != 0)
				rc = AAM_E_NOMEM;
		}
	}
	if (rc != AAM_OK) {
		json_decref(arr);
		return rc;
	}
	*out = arr;
	return AAM_OK;
}

static int
tool_result_block(const json_t *m, json_t **out, char *err, size_t errlen)
{
	const char *id = gw_json_str(m, "tool_call_id");
	if (!id)
		return gw_perr(err, errlen, "a tool message needs a tool_call_id");
	struct aam_buf text;
	aam_buf_init(&text, 0);
	int rc = openai_text(json_object_get(m, "content"), &text, "tool", err, errlen);
	if (rc == AAM_OK) {
		*out = json_pack("{s:s, s:s, s:s%}", "type", "tool_result", "tool_use_id", id,
		                 "content", aam_buf_cstr(&text), text.len);
		rc = *out ? AAM_OK : AAM_E_NOMEM;
	}
	aam_buf_uninit(&text);
	return rc;
}

static int
openai_unsupported(const json_t *in, char *err, size_t errlen)
{
	const json_t *v = json_object_get(in, "n");
	if (v && !json_is_null(v) && (!json_is_integer(v) || json_integer_value(v) != 1))
		return gw_perr(err, errlen, "n other than 1 is not supported on this route");
	if (json_is_true(json_object_get(in, "logprobs")) ||
	    (json_object_get(in, "top_logprobs") &&
	     !json_is_null(json_object_get(in, "top_logprobs"))))
		return gw_perr(err, errlen, "logprobs are not supported on this route");
	if (json_object_get(in, "audio") && !json_is_null(json_object_get(in, "audio")))
		return gw_perr(err, errlen, "audio output is not supported on this route");
	const json_t *mods = json_object_get(in, "modalities");
	size_t i;
	const json_t *e;
	json_array_foreach(mods, i, e)
	{
		if (json_is_string(e) && strcmp(json_string_value(e), "text") != 0)
			return gw_perr(err, errlen,
			               "only the text modality is supported on this route");
	}
	const char *rf = gw_json_str(json_object_get(in, "response_format"), "type");
	if (rf && strcmp(rf, "text") != 0)
		return gw_perr(err, errlen, "response_format \"%s\" is not supported on this route",
		               rf);
	if (json_object_get(in, "functions") || json_object_get(in, "function_call"))
		return gw_perr(err, errlen, "the legacy functions API is not supported; use tools");
	return AAM_OK;
}

static int
openai_tools(const json_t *in, json_t *o, char *err, size_t errlen)
{
	const json_t *tools = json_object_get(in, "tools");
	if (tools && !json_is_null(tools)) {
		if (!json_is_array(tools))
			return gw_perr(err, errlen, "tools must be an array");
		json_t *arr = json_array();
		if (!arr || json_object_set_new(o, "tools", arr) != 0)
			return AAM_E_NOMEM;
		size_t i;
		const json_t *t;
		json_array_foreach(tools, i, t)
		{
			const json_t *fn = json_object_get(t, "function");
			const char *type = gw_json_str(t, "type"), *name = gw_json_str(fn, "name");
			if (!type || strcmp(type, "function") != 0 || !name)
				return gw_perr(err, errlen,
				               "only function tools with a name are supported");
			json_t *schema = json_object_get(fn, "parameters");
			json_t *sc = json_is_object(schema) ? json_incref(schema)
			                                    : json_pack("{s:s, s:{}}", "type",
			                                                "object", "properties");
			json_t *nt = json_pack("{s:s, s:o}", "name", name, "input_schema", sc);
			if (!nt)
				return AAM_E_NOMEM;
			const char *desc = gw_json_str(fn, "description");
			if (desc)
				json_object_set_new(nt, "description", json_string(desc));
			if (json_array_append_new(arr, nt) != 0)
				return AAM_E_NOMEM;
		}
	}
	const json_t *tc = json_object_get(in, "tool_choice");
	json_t *choice = NULL;
	if (json_is_string(tc)) {
		const char *s = json_string_value(tc);
		if (strcmp(s, "auto") == 0)
			choice = json_pack("{s:s}", "type", "auto");
		else if (strcmp(s, "none") == 0)
			choice = json_pack("{s:s}", "type", "none");
		else if (strcmp(s, "required") == 0)
			choice = json_pack("{s:s}", "type", "any");
		else
			return gw_perr(err, errlen, "unknown tool_choice \"%s\"", s);
	} else if (json_is_object(tc)) {
		const char *name = gw_json_str(json_object_get(tc, "function"), "name");
		if (!name)
			return gw_perr(err, errlen, "tool_choice object needs function.name");
		choice = json_pack("{s:s, s:s}", "type", "tool", "name", name);
	} else if (tc && !json_is_null(tc)) {
		return gw_perr(err, errlen, "tool_choice must be a string or an object");
	}
	if (json_is_false(json_object_get(in, "parallel_tool_calls")) &&
	    json_object_get(o, "tools")) {
		if (!choice)
			choice = json_pack("{s:s}", "type", "auto");
		const char *ct = gw_json_str(choice, "type");
		if (choice && ct && strcmp(ct, "none") != 0)
			json_object_set_new(choice, "disable_parallel_tool_use", json_true());
	}
	if (choice && json_object_set_new(o, "tool_choice", choice) != 0)
		return AAM_E_NOMEM;
	return AAM_OK;
}

static int
openai_sampling(const json_t *in, json_t *o, char *err, size_t errlen)
{
	const json_t *mt = json_object_get(in, "max_completion_tokens");
	if (!mt || json_is_null(mt))
		mt = json_object_get(in, "max_tokens");
	if (mt && !json_is_null(mt)) {
		if (!json_is_integer(mt) || json_integer_value(mt) < 1)
			return gw_perr(err, errlen, "max_tokens must be a positive integer");
		json_object_set_new(o, "max_tokens", json_integer(json_integer_value(mt)));
	}
	const json_t *t = json_object_get(in, "temperature");
	if (json_is_number(t)) {
		/* OpenAI's range is 0..2, Anthropic's 0..1: clamp, not rescale,
		 * so common values (0, 0.2, 0.7, 1) keep their meaning. */
		double v = json_number_value(t);
		json_object_set_new(o, "temperature", json_real(v > 1.0 ? 1.0 : v < 0 ? 0 : v));
	}
	const json_t *tp = json_object_get(in, "top_p");
	if (json_is_number(tp))
		json_object_set_new(o, "top_p", json_real(json_number_value(tp)));
	const json_t *stop = json_object_get(in, "stop");
	if (json_is_string(stop)) {
		json_object_set_new(o, "stop_sequences", json_pack("[O]", stop));
	} else if (json_is_array(stop)) {
		size_t i;
		const json_t *e;
		json_array_foreach(stop, i, e)
		{
			if (!json_is_string(e))
				return gw_perr(err, errlen, "stop must be a string or strings");
		}
		if (json_array_size(stop) > 0)
			json_object_set_new(o, "stop_sequences", json_deep_copy(stop));
	} else if (stop && !json_is_null(stop)) {
		return gw_perr(err, errlen, "stop must be a string or strings");
	}
	const char *user = gw_json_str(in, "user");
	if (user)
		json_object_set_new(o, "metadata", json_pack("{s:s}", "user_id", user));
	return AAM_OK;
}

int
gw_req_openai_to_anthropic(const json_t *in, json_t **out, char *err, size_t errlen)
{
	int rc = openai_unsupported(in, err, errlen);
	if (rc != AAM_OK)
		return rc;
	const json_t *msgs = json_object_get(in, "messages");
	if (!json_is_array(msgs) || json_array_size(msgs) == 0)
		return gw_perr(err, errlen, "messages must be a non-empty array");

	json_t *o = json_object(), *arr = json_array();
	struct aam_buf sys;
	aam_buf_init(&sys, 0);
	if (!o || !arr || json_object_set_new(o, "messages", arr) != 0) {
		json_decref(o);
		return AAM_E_NOMEM;
	}
	json_t *tool_msg = NULL; /* the user message collecting consecutive tool results */
	size_t i;
	const json_t *m;
	json_array_foreach(msgs, i, m)
	{
		const char *role = gw_json_str(m, "role");
		json_t *blocks = NULL;
		if (!role) {
			rc = gw_perr(err, errlen, "messages[%zu] has no role", i);
		} else if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
			if (sys.len > 0)
				aam_buf_append(&sys, "\n\n", 2);
			rc = openai_text(json_object_get(m, "content"), &sys, "system", err,
			                 errlen);
		} else if (strcmp(role, "user") == 0) {
			tool_msg = NULL;
			rc = user_blocks(json_object_get(m, "content"), &blocks, err, errlen);
			if (rc == AAM_OK &&
			    json_array_append_new(arr, json_pack("{s:s, s:o}", "role", "user",
			                                         "content", blocks)) != 0)
				rc = AAM_E_NOMEM;
		} else if (strcmp(role, "assistant") == 0) {
			tool_msg = NULL;
			rc = assistant_blocks(m, &blocks, err, errlen);
			if (rc == AAM_OK && json_array_size(blocks) == 0)
				json_decref(blocks); /* Anthropic refuses empty turns */
			else if (rc == AAM_OK &&
			         json_array_append_new(arr,
			                               json_pack("{s:s, s:o}", "role", "assistant",
			                                         "content", blocks)) != 0)
				rc = AAM_E_NOMEM;
		} else if (strcmp(role, "tool") == 0) {
			json_t *blk = NULL;
			rc = tool_result_block(m, &blk, err, errlen);
			if (rc == AAM_OK && tool_msg) {
				if (json_array_append_new(json_object_get(tool_msg, "content"),
				                          blk))
					rc = AAM_E_NOMEM;
			} else if (rc == AAM_OK) {
				tool_msg =
				        json_pack("{s:s, s:[o]}", "role", "user", "content", blk);
				if (!tool_msg || json_array_append_new(arr, tool_msg) != 0)
					rc = AAM_E_NOMEM;
			}
		} else {
			rc = gw_perr(err, errlen, "message role \"%s\" is not supported", role);
		}
		if (rc != AAM_OK)
			break;
	}
	if (rc == AAM_OK && sys.err)
		rc = sys.err;
	if (rc == AAM_OK && sys.len > 0 &&
	    json_object_set_new(o, "system", json_stringn(aam_buf_cstr(&sys), sys.len)) != 0)
		rc = AAM_E_NOMEM;
	aam_buf_uninit(&sys);
	if (rc == AAM_OK && json_array_size(arr) == 0)
		rc = gw_perr(err, errlen, "messages must contain a user message");
	if (rc == AAM_OK)
		rc = openai_tools(in, o, err, errlen);
	if (rc == AAM_OK)
		rc = openai_sampling(in, o, err, errlen);
	if (rc != AAM_OK) {
		json_decref(o);
		return rc;
	}
	*out = o;
	return AAM_OK;
}
