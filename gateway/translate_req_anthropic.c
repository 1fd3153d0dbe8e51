/*
 * Request translation, Anthropic messages -> OpenAI chat completions (the
 * other direction is in translate_req.c, which explains the rules: what
 * has no counterpart is refused with a clear message, what only tunes
 * the answer -- top_k, thinking -- is dropped; docs/PROVIDERS.md).
 */
#include "gateway/provider_int.h"

#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "common/json.h"

/* Appends the text of an Anthropic content (string or text blocks) to B. */
static int
anthropic_text(const json_t *content, struct aam_buf *b, const char *what, char *err, size_t errlen)
{
	if (json_is_string(content))
		return aam_buf_append(b, json_string_value(content), json_string_length(content));
	if (!content || json_is_null(content))
		return AAM_OK;
	if (!json_is_array(content))
		return gw_perr(err, errlen, "%s must be a string or an array of blocks", what);
	size_t i;
	const json_t *blk;
	json_array_foreach(content, i, blk)
	{
		const char *t = gw_json_str(blk, "type");
		const json_t *tx = json_object_get(blk, "text");
		if (!t || strcmp(t, "text") != 0 || !json_is_string(tx))
			return gw_perr(err, errlen, "%s supports only text blocks on this route",
			               what);
		if (i > 0 && b->len > 0 && strcmp(what, "system") == 0)
			aam_buf_append(b, "\n\n", 2);
		aam_buf_append(b, json_string_value(tx), json_string_length(tx));
	}
	return b->err;
}

static int
anthropic_image_part(const json_t *blk, json_t **out, char *err, size_t errlen)
{
	const json_t *src = json_object_get(blk, "source");
	const char *st = gw_json_str(src, "type");
	if (st && strcmp(st, "base64") == 0) {
		const char *mt = gw_json_str(src, "media_type"), *data = gw_json_str(src, "data");
		if (!mt || !data)
			return gw_perr(err, errlen, "image source needs media_type and data");
		struct aam_buf u;
		aam_buf_init(&u, GW_MAX_RESPONSE);
		aam_buf_printf(&u, "data:%s;base64,%s", mt, data);
		*out = u.err ? NULL
		             : json_pack("{s:s, s:{s:s}}", "type", "image_url", "image_url", "url",
		                         aam_buf_cstr(&u));
		aam_buf_uninit(&u);
	} else if (st && strcmp(st, "url") == 0 && gw_json_str(src, "url")) {
		*out = json_pack("{s:s, s:{s:s}}", "type", "image_url", "image_url", "url",
		                 gw_json_str(src, "url"));
	} else {
		return gw_perr(err, errlen, "image source type is not supported on this route");
	}
	return *out ? AAM_OK : AAM_E_NOMEM;
}

static int
anthropic_user(const json_t *m, json_t *arr, char *err, size_t errlen)
{
	const json_t *c = json_object_get(m, "content");
	if (json_is_string(c))
		return json_array_append_new(arr,
		                             json_pack("{s:s, s:O}", "role", "user", "content", c))
		               ? AAM_E_NOMEM
		               : AAM_OK;
	if (!json_is_array(c))
		return gw_perr(err, errlen, "message content must be a string or an array");
	json_t *parts = json_array();
	if (!parts)
		return AAM_E_NOMEM;
	int rc = AAM_OK;
	size_t i;
	const json_t *blk;
	json_array_foreach(c, i, blk)
	{
		const char *t = gw_json_str(blk, "type");
		json_t *p = NULL;
		if (t && strcmp(t, "text") == 0 && json_is_string(json_object_get(blk, "text"))) {
			p = json_pack("{s:s, s:O}", "type", "text", "text",
			              json_object_get(blk, "text"));
		} else if (t && strcmp(t, "image") == 0) {
			rc = anthropic_image_part(blk, &p, err, errlen);
		} else if (t && strcmp(t, "tool_result") == 0) {
			/* Tool results become role "tool" messages, which must follow
			 * the assistant's tool calls: they go before the user's text. */
			const char *id = gw_json_str(blk, "tool_use_id");
			struct aam_buf text;
			aam_buf_init(&text, 0);
			if (!id)
				rc = gw_perr(err, errlen, "tool_result needs a tool_use_id");
			else
				rc = anthropic_text(json_object_get(blk, "content"), &text,
				                    "tool_result content", err, errlen);
			if (rc == AAM_OK &&
			    json_array_append_new(arr, json_pack("{s:s, s:s, s:s%}", "role", "tool",
			                                         "tool_call_id", id, "content",
			                                         aam_buf_cstr(&text), text.len)))
				rc = AAM_E_NOMEM;
			aam_buf_uninit(&text);
			if (rc != AAM_OK)
				break;
			continue;
		} else {
			rc = gw_perr(err, errlen,
			             "content block type \"%s\" is not supported on "
			             "this route",
			             t ? t : "?");
		}
		if (rc != AAM_OK || !p || json_array_append_new(parts, p) != 0) {
			rc = rc != AAM_OK ? rc : AAM_E_NOMEM;
			break;
		}
	}
	if (rc == AAM_OK && json_array_size(parts) > 0) {
		json_t *content = parts;
		const json_t *p0 = json_array_get(parts, 0);
		/* A lone text part is sent as a plain string, which every
		 * OpenAI-compatible server understands. */
		if (json_array_size(parts) == 1 && strcmp(gw_json_str(p0, "type"), "text") == 0)
			content = json_object_get(p0, "text");
		if (json_array_append_new(
		            arr, json_pack("{s:s, s:O}", "role", "user", "content", content)) != 0)
			rc = AAM_E_NOMEM;
	}
	json_decref(parts);
	return rc;
}

static int
anthropic_assistant(const json_t *m, json_t *arr, char *err, size_t errlen)
{
	const json_t *c = json_object_get(m, "content");
	struct aam_buf text;
	aam_buf_init(&text, 0);
	json_t *calls = json_array();
	int rc = calls ? AAM_OK : AAM_E_NOMEM;
	if (rc == AAM_OK && json_is_string(c)) {
		aam_buf_append(&text, json_string_value(c), json_string_length(c));
	} else if (rc == AAM_OK && json_is_array(c)) {
		size_t i;
		const json_t *blk;
		json_array_foreach(c, i, blk)
		{
			const char *t = gw_json_str(blk, "type");
			if (t && strcmp(t, "text") == 0 && gw_json_str(blk, "text")) {
				const json_t *tx = json_object_get(blk, "text");
				aam_buf_append(&text, json_string_value(tx),
				               json_string_length(tx));
			} else if (t && strcmp(t, "tool_use") == 0) {
				const char *id = gw_json_str(blk, "id"),
				           *name = gw_json_str(blk, "name");
				const json_t *input = json_object_get(blk, "input");
				char *args = input ? json_dumps(input, JSON_COMPACT) : strdup("{}");
				if (!id || !name)
					rc = gw_perr(err, errlen,
					             "tool_use needs an id and a name");
				else if (!args)
					rc = AAM_E_NOMEM;
				else if (json_array_append_new(
				                 calls,
				                 json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", id,
				                           "type", "function", "function", "name",
				                           name, "arguments", args)) != 0)
					rc = AAM_E_NOMEM;
				free(args);
			} else if (t && (strcmp(t, "thinking") == 0 ||
			                 strcmp(t, "redacted_thinking") == 0)) {
				continue; /* no OpenAI counterpart; the model does not need it back
				           */
			} else {
				rc = gw_perr(err, errlen,
				             "assistant block type \"%s\" is not "
				             "supported on this route",
				             t ? t : "?");
			}
			if (rc != AAM_OK)
				break;
		}
	} else if (rc == AAM_OK) {
		rc = gw_perr(err, errlen, "message content must be a string or an array");
	}
	if (rc == AAM_OK && text.err)
		rc = text.err;
	if (rc == AAM_OK) {
		json_t *msg = json_pack("{s:s}", "role", "assistant");
		if (msg && text.len > 0)
			json_object_set_new(msg, "content",
			                    json_stringn(aam_buf_cstr(&text), text.len));
		else if (msg)
			json_object_set_new(msg, "content", json_null());
		if (msg && json_array_size(calls) > 0)
			json_object_set(msg, "tool_calls", calls);
		if (!msg || json_array_append_new(arr, msg) != 0)
			rc = AAM_E_NOMEM;
	}
	json_decref(calls);
	aam_buf_uninit(&text);
	return rc;
}

static int
anthropic_tools(const json_t *in, json_t *o, char *err, size_t errlen)
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
			const char *type = gw_json_str(t, "type"), *name = gw_json_str(t, "name");
			const json_t *schema = json_object_get(t, "input_schema");
			if ((type && strcmp(type, "custom") != 0) || !name ||
			    !json_is_object(schema))
				return gw_perr(err, errlen,
				               "only client tools with a name and an "
				               "input_schema are supported on this route");
			json_t *fn = json_pack("{s:s, s:O}", "name", name, "parameters", schema);
			if (!fn)
				return AAM_E_NOMEM;
			if (gw_json_str(t, "description"))
				json_object_set_new(fn, "description",
				                    json_string(gw_json_str(t, "description")));
			if (json_array_append_new(arr, json_pack("{s:s, s:o}", "type", "function",
			                                         "function", fn)) != 0)
				return AAM_E_NOMEM;
		}
	}
	const json_t *tc = json_object_get(in, "tool_choice");
	if (tc && !json_is_null(tc)) {
		const char *type = gw_json_str(tc, "type");
		json_t *choice = NULL;
		if (!type)
			return gw_perr(err, errlen, "tool_choice needs a type");
		if (strcmp(type, "auto") == 0)
			choice = json_string("auto");
		else if (strcmp(type, "any") == 0)
			choice = json_string("required");
		else if (strcmp(type, "none") == 0)
			choice = json_string("none");
		else if (strcmp(type, "tool") == 0 && gw_json_str(tc, "name"))
			choice = json_pack("{s:s, s:{s:s}}", "type", "function", "function", "name",
			                   gw_json_str(tc, "name"));
		else
			return gw_perr(err, errlen, "unknown tool_choice type \"%s\"", type);
		if (json_object_set_new(o, "tool_choice", choice) != 0)
			return AAM_E_NOMEM;
		if (json_is_true(json_object_get(tc, "disable_parallel_tool_use")) &&
		    json_object_get(o, "tools"))
			json_object_set_new(o, "parallel_tool_calls", json_false());
	}
	return AAM_OK;
}

int
gw_req_anthropic_to_openai(const json_t *in, json_t **out, char *err, size_t errlen)
{
	const json_t *msgs = json_object_get(in, "messages");
	if (!json_is_array(msgs) || json_array_size(msgs) == 0)
		return gw_perr(err, errlen, "messages must be a non-empty array");
	json_t *o = json_object(), *arr = json_array();
	if (!o || !arr || json_object_set_new(o, "messages", arr) != 0) {
		json_decref(o);
		return AAM_E_NOMEM;
	}
	int rc = AAM_OK;
	const json_t *sysj = json_object_get(in, "system");
	if (sysj && !json_is_null(sysj)) {
		struct aam_buf sys;
		aam_buf_init(&sys, 0);
		rc = anthropic_text(sysj, &sys, "system", err, errlen);
		if (rc == AAM_OK && sys.len > 0 &&
		    json_array_append_new(arr, json_pack("{s:s, s:s%}", "role", "system", "content",
		                                         aam_buf_cstr(&sys), sys.len)) != 0)
			rc = AAM_E_NOMEM;
		aam_buf_uninit(&sys);
	}
	size_t i;
	const json_t *m;
	json_array_foreach(msgs, i, m)
	{
		if (rc != AAM_OK)
			break;
		const char *role = gw_json_str(m, "role");
		if (role && strcmp(role, "user") == 0)
			rc = anthropic_user(m, arr, err, errlen);
		else if (role && strcmp(role, "assistant") == 0)
			rc = anthropic_assistant(m, arr, err, errlen);
		else
			rc = gw_perr(err, errlen, "messages[%zu]: role must be user or assistant",
			             i);
	}
	if (rc == AAM_OK)
		rc = anthropic_tools(in, o, err, errlen);
	if (rc == AAM_OK) {
		const json_t *mt = json_object_get(in, "max_tokens");
		if (mt && !json_is_null(mt)) {
			if (!json_is_integer(mt) || json_integer_value(mt) < 1)
				rc = gw_perr(err, errlen, "max_tokens must be a positive integer");
			else
				json_object_set_new(o, "max_tokens",
				                    json_integer(json_integer_value(mt)));
		}
		const json_t *v = json_object_get(in, "temperature");
		if (json_is_number(v))
			json_object_set_new(o, "temperature", json_real(json_number_value(v)));
		v = json_object_get(in, "top_p");
		if (json_is_number(v))
			json_object_set_new(o, "top_p", json_real(json_number_value(v)));
		v = json_object_get(in, "stop_sequences");
		if (json_is_array(v) && json_array_size(v) > 0)
			json_object_set_new(o, "stop", json_deep_copy(v));
		const char *user = gw_json_str(json_object_get(in, "metadata"), "user_id");
		if (user)
			json_object_set_new(o, "user", json_string(user));
	}
	if (rc != AAM_OK) {
		json_decref(o);
		return rc;
	}
	*out = o;
	return AAM_OK;
}
