/*
 * Provider dispatch: from a deployment's provider name to its wire
 * format, the upstream request (URL, headers, body), non-stream response
 * translation, upstream error messages and the input token estimate.
 * The per-provider URL rules live in provider_<name>.c, the format
 * translation in translate_*.c.
 */
#include "gateway/provider_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "common/json.h"

int
gw_perr(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return AAM_E_INVAL;
}

int
gw_url_escape(struct aam_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (isalnum(*c) || *c == '-' || *c == '.' || *c == '_' || *c == '~') {
			aam_buf_append_byte(b, *c);
		} else {
			aam_buf_append_byte(b, '%');
			aam_buf_append_byte(b, (uint8_t)hex[*c >> 4]);
			aam_buf_append_byte(b, (uint8_t)hex[*c & 15]);
		}
	}
	return b->err;
}

int64_t
gw_json_int(const json_t *obj, const char *key)
{
	const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
	if (json_is_integer(v) && json_integer_value(v) > 0)
		return json_integer_value(v);
	return 0;
}

const char *
gw_json_str(const json_t *obj, const char *key)
{
	const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
	return json_is_string(v) ? json_string_value(v) : NULL;
}

int
gw_provider_wire(const char *provider, enum gw_wire *out)
{
	if (!provider)
		return AAM_E_INVAL;
	if (strcmp(provider, "openai") == 0 || strcmp(provider, "azure") == 0 ||
	    strcmp(provider, "openai-compatible") == 0)
		*out = GW_WIRE_OPENAI;
	else if (strcmp(provider, "anthropic") == 0)
		*out = GW_WIRE_ANTHROPIC;
	else if (strcmp(provider, "bedrock") == 0)
		*out = GW_WIRE_BEDROCK;
	else
		return AAM_E_INVAL;
	return AAM_OK;
}

void
gw_upstream_free(struct gw_upstream *u)
{
	if (!u)
		return;
	free(u->url);
	u->url = NULL;
	for (size_t i = 0; i < u->nheaders; i++) {
		free(u->headers[i].name);
		free(u->headers[i].value);
		u->headers[i].name = u->headers[i].value = NULL;
	}
	u->nheaders = 0;
	aam_buf_uninit(&u->body);
}

static int
add_header(struct gw_upstream *u, const char *name, const char *value)
{
	if (u->nheaders >= GW_UPSTREAM_MAX_HEADERS)
		return AAM_E_TOOBIG;
	char *n = strdup(name), *v = strdup(value);
	if (!n || !v) {
		free(n);
		free(v);
		return AAM_E_NOMEM;
	}
	u->headers[u->nheaders].name = n;
	u->headers[u->nheaders].value = v;
	u->nheaders++;
	return AAM_OK;
}

/* Builds the body object for the upstream wire; *OUT is a new reference. */
static int
build_body(const struct gw_deployment *d, enum gw_wire wire, enum gw_api api, const json_t *body,
           bool stream, int64_t cap, json_t **out, char *err, size_t errlen)
{
	json_t *b = NULL;
	int rc;

	if (api == GW_API_OPENAI_EMBEDDINGS) {
		b = json_deep_copy(body);
		if (!b)
			return AAM_E_NOMEM;
		if (json_object_set_new(b, "model", json_string(d->model)) != 0) {
			json_decref(b);
			return AAM_E_NOMEM;
		}
		*out = b;
		return AAM_OK;
	}
	if (api == GW_API_OPENAI_CHAT) {
		if (wire == GW_WIRE_OPENAI) {
			b = json_deep_copy(body);
			rc = b ? AAM_OK : AAM_E_NOMEM;
		} else {
			rc = gw_req_openai_to_anthropic(body, &b, err, errlen);
		}
	} else {
		if (wire == GW_WIRE_OPENAI) {
			rc = gw_req_anthropic_to_openai(body, &b, err, errlen);
			/* OpenAI's own API wants max_completion_tokens (reasoning
			 * models refuse max_tokens); other servers know max_tokens. */
			json_t *mt = rc == AAM_OK ? json_object_get(b, "max_tokens") : NULL;
			if (mt && strcmp(d->provider, "openai") == 0) {
				json_object_set(b, "max_completion_tokens", mt);
				json_object_del(b, "max_tokens");
			}
		} else {
			b = json_deep_copy(body);
			rc = b ? AAM_OK : AAM_E_NOMEM;
		}
	}
	if (rc != AAM_OK)
		return rc;
	if (wire == GW_WIRE_OPENAI)
		rc = gw_openai_finish_body(d, b, stream, cap, err, errlen);
	else
		rc = gw_anthropic_finish_body(d, b, wire == GW_WIRE_BEDROCK, stream, cap, err,
		                              errlen);
	if (rc != AAM_OK) {
		json_decref(b);
		return rc;
	}
	*out = b;
	return AAM_OK;
}

int
gw_provider_build(const struct gw_deployment *d, enum gw_api api, const json_t *body, bool stream,
                  int64_t max_tokens_cap, struct gw_upstream *out, char *err, size_t errlen)
{
	enum gw_wire wire;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (!d || !out)
		return AAM_E_INVAL;
	memset(out, 0, sizeof(*out));
	aam_buf_init(&out->body, 0);
	if (!d->model || !*d->model)
		return gw_perr(err, errlen, "deployment %s has no model", d->id ? d->id : "?");
	if (gw_provider_wire(d->provider, &wire) != AAM_OK)
		return gw_perr(err, errlen, "unknown provider \"%s\"",
		               d->provider ? d->provider : "");
	if (!json_is_object(body))
		return gw_perr(err, errlen, "the request body must be a JSON object");
	if (api != GW_API_OPENAI_CHAT && api != GW_API_ANTHROPIC_MESSAGES &&
	    api != GW_API_OPENAI_EMBEDDINGS)
		return gw_perr(err, errlen, "unknown API");
	if (api == GW_API_OPENAI_EMBEDDINGS) {
		if (wire != GW_WIRE_OPENAI)
			return gw_perr(
			        err, errlen,
			        "embeddings are not supported by provider \"%s\" (only openai, "
			        "azure and openai-compatible deployments serve them)",
			        d->provider);
		stream = false;
	}

	struct aam_buf url;
	aam_buf_init(&url, 8192);
	if (wire == GW_WIRE_OPENAI)
		rc = gw_openai_url(d, api == GW_API_OPENAI_EMBEDDINGS, &url, err, errlen);
	else if (wire == GW_WIRE_ANTHROPIC)
		rc = gw_anthropic_url(d, &url, err, errlen);
	else
		rc = gw_bedrock_url(d, stream, &url, err, errlen);
	if (rc == AAM_OK && aam_buf_failed(&url))
		rc = url.err;
	if (rc != AAM_OK) {
		aam_buf_uninit(&url);
		return rc;
	}
	out->url = (char *)aam_buf_steal(&url, NULL);
	aam_buf_uninit(&url);
	if (!out->url)
		return AAM_E_NOMEM;

	json_t *b = NULL;
	rc = build_body(d, wire, api, body, stream, max_tokens_cap, &b, err, errlen);
	if (rc != AAM_OK)
		goto fail;
	rc = aam_json_dump_buf(b, &out->body, 0);
	json_decref(b);
	if (rc != AAM_OK)
		goto fail;

	memcpy(out->method, "POST", 5);
	out->stream = stream;
	rc = add_header(out, "content-type", "application/json");
	if (rc == AAM_OK) {
		const char *accept = "application/json";
		if (stream)
			accept = wire == GW_WIRE_BEDROCK ? "application/vnd.amazon.eventstream"
			                                 : "text/event-stream";
		rc = add_header(out, "accept", accept);
	}
	if (rc == AAM_OK && wire == GW_WIRE_ANTHROPIC)
		rc = add_header(out, "anthropic-version", "2023-06-01");
	if (rc != AAM_OK)
		goto fail;
	return AAM_OK;
fail:
	gw_upstream_free(out);
	aam_buf_init(&out->body, 0);
	return rc;
}

int
gw_provider_response(const struct gw_deployment *d, enum gw_api api, const uint8_t *body, size_t n,
                     struct aam_buf *out, struct gw_usage *usage)
{
	enum gw_wire wire;
	struct gw_usage u = {0};

	if (usage)
		*usage = u;
	if (!d || !out || (!body && n))
		return AAM_E_INVAL;
	if (gw_provider_wire(d->provider, &wire) != AAM_OK)
		return AAM_E_INVAL;
	if (api == GW_API_OPENAI_EMBEDDINGS && wire != GW_WIRE_OPENAI)
		return AAM_E_INVAL;

	const struct aam_json_limits lim = {.max_bytes = GW_MAX_RESPONSE,
	                                    .max_string = GW_MAX_RESPONSE};
	json_t *j = NULL;
	int rc = aam_json_parse(body, n, &lim, &j, NULL);
	if (rc != AAM_OK)
		return rc == AAM_E_TOOBIG ? rc : AAM_E_PARSE;
	if (!json_is_object(j)) {
		json_decref(j);
		return AAM_E_PARSE;
	}

	bool client_openai = api != GW_API_ANTHROPIC_MESSAGES;
	bool upstream_openai = wire == GW_WIRE_OPENAI;
	if (client_openai == upstream_openai) {
		/* Same API: the bytes go through unchanged; only usage is read. */
		if (upstream_openai)
			gw_usage_from_openai(json_object_get(j, "usage"), &u);
		else
			gw_usage_from_anthropic(json_object_get(j, "usage"), &u);
		rc = aam_buf_append(out, body, n);
	} else {
		json_t *t = NULL;
		rc = upstream_openai ? gw_resp_openai_to_anthropic(j, &t, &u)
		                     : gw_resp_anthropic_to_openai(j, &t, &u);
		if (rc == AAM_OK)
			rc = aam_json_dump_buf(t, out, 0);
		json_decref(t);
	}
	json_decref(j);
	if (usage)
		*usage = u;
	return rc;
}

void
gw_utf8_trim(char *s)
{
	size_t n = strlen(s), i = n;
	while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
		i--;
	if (i == 0)
		return;
	unsigned char c = (unsigned char)s[i - 1];
	size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
	if (n - (i - 1) < need)
		s[i - 1] = '\0';
}

/* Copies S into MSG, replacing control characters, truncating at MSGLEN
 * on a character boundary. */
static void
copy_message(char *msg, size_t msglen, const char *s)
{
	size_t i = 0;
	for (; s[i] && i + 1 < msglen; i++)
		msg[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? ' ' : s[i];
	msg[i] = '\0';
	gw_utf8_trim(msg);
}

void
gw_provider_error_message(unsigned status, const uint8_t *body, size_t n, char *msg, size_t msglen)
{
	if (!msg || !msglen)
		return;
	snprintf(msg, msglen, "upstream status %u", status);
	if (!body || !n)
		return;
	json_t *j = NULL;
	if (aam_json_parse(body, n, NULL, &j, NULL) != AAM_OK)
		return;
	const char *s = NULL;
	json_t *e = json_is_object(j) ? json_object_get(j, "error") : NULL;
	if (json_is_object(e))
		s = gw_json_str(e, "message"); /* OpenAI, Azure, Anthropic, vLLM */
	else if (json_is_string(e))
		s = json_string_value(e); /* Ollama, some OpenAI-compatible servers */
	if (!s)
		s = gw_json_str(j, "message"); /* Bedrock */
	if (!s)
		s = gw_json_str(j, "Message");
	if (!s)
		s = gw_json_str(j, "detail"); /* FastAPI-based servers */
	if (s && *s)
		copy_message(msg, msglen, s);
	json_decref(j);
}

/*
 * The token estimate walks every string of the messages: text parts,
 * tool arguments and results, names.  Image payloads are not text; each
 * image counts as a flat GW_IMAGE_TOKENS.
 */
#define GW_IMAGE_TOKENS 1600

static bool
is_image_part(const json_t *v)
{
	const char *t = gw_json_str(v, "type");
	return t && (strcmp(t, "image_url") == 0 || strcmp(t, "image") == 0 ||
	             strcmp(t, "input_audio") == 0 || strcmp(t, "document") == 0);
}

static void
count_strings(json_t *v, uint64_t *bytes, uint64_t *tokens, unsigned depth)
{
	if (depth > 64)
		return;
	if (json_is_string(v)) {
		*bytes += json_string_length(v);
	} else if (json_is_array(v)) {
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e)
		{
			count_strings(e, bytes, tokens, depth + 1);
		}
	} else if (json_is_object(v)) {
		if (is_image_part(v)) {
			*tokens += GW_IMAGE_TOKENS;
			return;
		}
		const char *k;
		json_t *e;
		json_object_foreach(v, k, e)
		{
			/* Field names and the fixed words of the format are not text. */
			if (strcmp(k, "role") == 0 || strcmp(k, "type") == 0 ||
			    strcmp(k, "tool_call_id") == 0 || strcmp(k, "tool_use_id") == 0 ||
			    strcmp(k, "id") == 0 || strcmp(k, "cache_control") == 0)
				continue;
			count_strings(e, bytes, tokens, depth + 1);
		}
	}
}

int64_t
gw_estimate_input_tokens(enum gw_api api, const json_t *body)
{
	uint64_t bytes = 0, tokens = 0;
	if (!json_is_object(body))
		return 0;
	if (api == GW_API_OPENAI_EMBEDDINGS) {
		count_strings(json_object_get(body, "input"), &bytes, &tokens, 0);
		/* Token-id arrays: one token per integer, counted as 4 bytes. */
		const json_t *in = json_object_get(body, "input");
		if (json_is_array(in)) {
			size_t i;
			const json_t *e;
			json_array_foreach(in, i, e)
			{
				if (json_is_integer(e))
					bytes += 4;
				else if (json_is_array(e))
					bytes += 4 * json_array_size(e);
			}
		}
		return (int64_t)(tokens + (bytes + 3) / 4);
	}
	json_t *msgs = json_object_get(body, "messages");
	if (json_is_array(msgs)) {
		tokens += 4 * (uint64_t)json_array_size(msgs);
		count_strings(msgs, &bytes, &tokens, 0);
	}
	json_t *sys = json_object_get(body, "system");
	if (sys) {
		tokens += 4;
		count_strings(sys, &bytes, &tokens, 0);
	}
	const json_t *tools = json_object_get(body, "tools");
	if (json_is_array(tools) && json_array_size(tools) > 0) {
		char *s = json_dumps(tools, JSON_COMPACT);
		if (s) {
			bytes += strlen(s);
			free(s);
		}
	}
	return (int64_t)(tokens + (bytes + 3) / 4 + 3); /* + the reply's priming */
}
