/*
 * Response bodies in each API's real shape: OpenAI chat completions (and
 * Azure's, which is the same), Anthropic messages (and Bedrock's
 * Anthropic-on-Bedrock variant), OpenAI embeddings and models, and the
 * providers' error objects.
 */
#include "tests/mock-provider/mock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aam/err.h"
#include "common/b64.h"
#include "common/buf.h"

int
mock_answer_json(struct mock_answer *ans, unsigned status, json_t *j)
{
	if (j == NULL)
		return AAM_E_NOMEM;
	ans->body = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (ans->body == NULL)
		return AAM_E_NOMEM;
	ans->len = strlen(ans->body);
	ans->status = status;
	ans->ctype = "application/json";
	return AAM_OK;
}

void
mock_answer_uninit(struct mock_answer *ans)
{
	free(ans->body);
	mock_events_free(ans->stream);
	memset(ans, 0, sizeof(*ans));
}

static const char *
openai_type(unsigned status)
{
	switch (status) {
	case 400:
	case 404:
	case 413:
		return "invalid_request_error";
	case 401:
		return "authentication_error";
	case 403:
		return "permission_error";
	case 429:
		return "rate_limit_error";
	default:
		return status >= 500 ? "server_error" : "invalid_request_error";
	}
}

static const char *
openai_code(unsigned status)
{
	switch (status) {
	case 401:
		return "invalid_api_key";
	case 404:
		return "model_not_found";
	case 429:
		return "rate_limit_exceeded";
	default:
		return status >= 500 ? "mock_failure" : "invalid_request";
	}
}

static const char *
anthropic_type(unsigned status)
{
	switch (status) {
	case 401:
		return "authentication_error";
	case 403:
		return "permission_error";
	case 404:
		return "not_found_error";
	case 413:
		return "request_too_large";
	case 429:
		return "rate_limit_error";
	case 529:
		return "overloaded_error";
	default:
		return status >= 500 ? "api_error" : "invalid_request_error";
	}
}

static const char *
bedrock_type(unsigned status)
{
	switch (status) {
	case 403:
	case 401:
		return "AccessDeniedException";
	case 404:
		return "ResourceNotFoundException";
	case 429:
		return "ThrottlingException";
	case 503:
		return "ServiceUnavailableException";
	default:
		return status >= 500 ? "InternalServerException" : "ValidationException";
	}
}

int
mock_error(struct mock_answer *ans, enum mock_flavor flavor, unsigned status, const char *msg)
{
	json_t *j;
	switch (flavor) {
	case MOCK_ANTHROPIC:
		j = json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type",
		              anthropic_type(status), "message", msg);
		break;
	case MOCK_BEDROCK:
		snprintf(ans->amz_error_type, sizeof(ans->amz_error_type), "%s",
		         bedrock_type(status));
		j = json_pack("{s:s}", "message", msg);
		break;
	default:
		j = json_pack("{s:{s:s,s:s,s:n,s:s}}", "error", "message", msg, "type",
		              openai_type(status), "param", "code", openai_code(status));
		break;
	}
	return mock_answer_json(ans, status, j);
}

/* Splits S into chunks of at most MOCK_CHUNK_BYTES on UTF-8 boundaries.
 * Returns the length of the next chunk starting at S. */
static size_t
next_chunk(const char *s, size_t left)
{
	size_t n = mock_utf8_cut(s, left, MOCK_CHUNK_BYTES);
	if (n == 0) /* a sequence longer than a chunk cannot happen in UTF-8 */
		n = left < MOCK_CHUNK_BYTES ? left : MOCK_CHUNK_BYTES;
	return n;
}

/* ---- OpenAI chat completions -------------------------------------- */

static json_t *
openai_usage(const struct mock_content *c)
{
	return json_pack("{s:I,s:I,s:I,s:{s:i}}", "prompt_tokens", (json_int_t)c->input_tokens,
	                 "completion_tokens", (json_int_t)c->output_tokens, "total_tokens",
	                 (json_int_t)(c->input_tokens + c->output_tokens), "prompt_tokens_details",
	                 "cached_tokens", 0);
}

static json_t *
openai_chunk(const char *id, long created, const char *model, json_t *delta, const char *finish,
             bool with_usage_null)
{
	json_t *choice = json_pack("{s:i,s:o,s:n,s:s?}", "index", 0, "delta", delta, "logprobs",
	                           "finish_reason", finish);
	if (choice != NULL && finish == NULL)
		json_object_set_new(choice, "finish_reason", json_null());
	json_t *j = json_pack("{s:s,s:s,s:i,s:s,s:s,s:[o]}", "id", id, "object",
	                      "chat.completion.chunk", "created", (int)created, "model", model,
	                      "system_fingerprint", "fp_mock", "choices", choice);
	if (j != NULL && with_usage_null)
		json_object_set_new(j, "usage", json_null());
	return j;
}

static int
openai_stream(const struct mock_req *r, const struct mock_content *c, const char *id, long created,
              struct mock_answer *ans)
{
	const json_t *so = json_object_get(r->body, "stream_options");
	bool usage = json_is_true(json_object_get(so, "include_usage"));
	struct mock_events *e = mock_events_new();
	if (e == NULL)
		return AAM_E_NOMEM;
	ans->stream = e;
	int rc;
	const char *finish;
	if (c->text != NULL) {
		rc = mock_events_add_sse(
		        e, NULL,
		        openai_chunk(id, created, r->model,
		                     json_pack("{s:s,s:s,s:n}", "role", "assistant", "content", "",
		                               "refusal"),
		                     NULL, usage));
		size_t len = strlen(c->text);
		for (size_t off = 0; rc == AAM_OK && off < len;) {
			size_t n = next_chunk(c->text + off, len - off);
			rc = mock_events_add_sse(
			        e, NULL,
			        openai_chunk(id, created, r->model,
			                     json_pack("{s:s%}", "content", c->text + off, n), NULL,
			                     usage));
			off += n;
		}
		finish = c->truncated ? "length" : "stop";
	} else {
		char call_id[64];
		snprintf(call_id, sizeof(call_id), "call_mock_%llu", (unsigned long long)r->seq);
		rc = mock_events_add_sse(
		        e, NULL,
		        openai_chunk(id, created, r->model,
		                     json_pack("{s:s,s:n,s:[{s:i,s:s,s:s,s:{s:s,s:s}}]}", "role",
		                               "assistant", "content", "tool_calls", "index", 0,
		                               "id", call_id, "type", "function", "function",
		                               "name", c->tool_name, "arguments", ""),
		                     NULL, usage));
		size_t len = strlen(c->tool_args);
		for (size_t off = 0; rc == AAM_OK && off < len;) {
			size_t n = next_chunk(c->tool_args + off, len - off);
			rc = mock_events_add_sse(
			        e, NULL,
			        openai_chunk(id, created, r->model,
			                     json_pack("{s:[{s:i,s:{s:s%}}]}", "tool_calls",
			                               "index", 0, "function", "arguments",
			                               c->tool_args + off, n),
			                     NULL, usage));
			off += n;
		}
		finish = "tool_calls";
	}
	if (rc == AAM_OK)
		rc = mock_events_add_sse(
		        e, NULL, openai_chunk(id, created, r->model, json_object(), finish, usage));
	if (rc == AAM_OK && usage)
		rc = mock_events_add_sse(e, NULL,
		                         json_pack("{s:s,s:s,s:i,s:s,s:s,s:[],s:o}", "id", id,
		                                   "object", "chat.completion.chunk", "created",
		                                   (int)created, "model", r->model,
		                                   "system_fingerprint", "fp_mock", "choices",
		                                   "usage", openai_usage(c)));
	if (rc == AAM_OK)
		rc = mock_events_add(e, "data: [DONE]\n\n", 14);
	ans->status = 200;
	ans->ctype = "text/event-stream";
	return rc;
}

int
mock_openai_chat(const struct mock_req *r, struct mock_answer *ans)
{
	const json_t *msgs = json_object_get(r->body, "messages");
	if (!json_is_array(msgs) || json_array_size(msgs) == 0)
		return mock_error(ans, MOCK_OPENAI, 400, "messages must be a non-empty array");
	if (r->model == NULL)
		return mock_error(ans, MOCK_OPENAI, 400, "you must provide a model parameter");
	struct mock_content c;
	int rc = mock_content_build(r, &c);
	if (rc != AAM_OK)
		return rc;
	char id[64];
	snprintf(id, sizeof(id), "chatcmpl-mock-%llu", (unsigned long long)r->seq);
	long created = (long)time(NULL);
	if (r->stream) {
		rc = openai_stream(r, &c, id, created, ans);
		mock_content_free(&c);
		return rc;
	}
	json_t *message;
	const char *finish;
	if (c.text != NULL) {
		message = json_pack("{s:s,s:s,s:n}", "role", "assistant", "content", c.text,
		                    "refusal");
		finish = c.truncated ? "length" : "stop";
	} else {
		char call_id[64];
		snprintf(call_id, sizeof(call_id), "call_mock_%llu", (unsigned long long)r->seq);
		message = json_pack("{s:s,s:n,s:n,s:[{s:s,s:s,s:{s:s,s:s}}]}", "role", "assistant",
		                    "content", "refusal", "tool_calls", "id", call_id, "type",
		                    "function", "function", "name", c.tool_name, "arguments",
		                    c.tool_args);
		finish = "tool_calls";
	}
	json_t *j =
	        json_pack("{s:s,s:s,s:i,s:s,s:s,s:[{s:i,s:o,s:n,s:s}],s:o}", "id", id, "object",
	                  "chat.completion", "created", (int)created, "model", r->model,
	                  "system_fingerprint", "fp_mock", "choices", "index", 0, "message",
	                  message, "logprobs", "finish_reason", finish, "usage", openai_usage(&c));
	mock_content_free(&c);
	return mock_answer_json(ans, 200, j);
}

/* ---- Anthropic messages (and Anthropic on Bedrock) ------------------- */

static int
add_event(struct mock_events *e, bool bedrock, const char *name, json_t *data)
{
	return bedrock ? mock_events_add_eventstream(e, data) : mock_events_add_sse(e, name, data);
}

static json_t *
anthropic_message(const struct mock_req *r, const struct mock_content *c, const char *id,
                  json_t *content, const char *stop, int64_t out_tokens)
{
	json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:o,s:s?,s:n,s:{s:I,s:I,s:i,s:i}}", "id", id,
	                      "type", "message", "role", "assistant", "model",
	                      r->model != NULL ? r->model : "mock", "content", content,
	                      "stop_reason", stop, "stop_sequence", "usage", "input_tokens",
	                      (json_int_t)c->input_tokens, "output_tokens", (json_int_t)out_tokens,
	                      "cache_creation_input_tokens", 0, "cache_read_input_tokens", 0);
	if (j != NULL && stop == NULL)
		json_object_set_new(j, "stop_reason", json_null());
	return j;
}

static int
anthropic_stream(const struct mock_req *r, const struct mock_content *c, const char *id,
                 struct mock_answer *ans)
{
	bool br = r->flavor == MOCK_BEDROCK;
	struct mock_events *e = mock_events_new();
	if (e == NULL)
		return AAM_E_NOMEM;
	ans->stream = e;
	int rc = add_event(e, br, "message_start",
	                   json_pack("{s:s,s:o}", "type", "message_start", "message",
	                             anthropic_message(r, c, id, json_array(), NULL, 1)));
	const char *stop;
	if (rc == AAM_OK && c->text != NULL) {
		rc = add_event(e, br, "content_block_start",
		               json_pack("{s:s,s:i,s:{s:s,s:s}}", "type", "content_block_start",
		                         "index", 0, "content_block", "type", "text", "text", ""));
		if (rc == AAM_OK)
			rc = add_event(e, br, "ping", json_pack("{s:s}", "type", "ping"));
		size_t len = strlen(c->text);
		for (size_t off = 0; rc == AAM_OK && off < len;) {
			size_t n = next_chunk(c->text + off, len - off);
			rc = add_event(e, br, "content_block_delta",
			               json_pack("{s:s,s:i,s:{s:s,s:s%}}", "type",
			                         "content_block_delta", "index", 0, "delta", "type",
			                         "text_delta", "text", c->text + off, n));
			off += n;
		}
		stop = c->truncated ? "max_tokens" : "end_turn";
	} else if (rc == AAM_OK) {
		char tid[64];
		snprintf(tid, sizeof(tid), "toolu_mock_%llu", (unsigned long long)r->seq);
		rc = add_event(e, br, "content_block_start",
		               json_pack("{s:s,s:i,s:{s:s,s:s,s:s,s:{}}}", "type",
		                         "content_block_start", "index", 0, "content_block", "type",
		                         "tool_use", "id", tid, "name", c->tool_name, "input"));
		if (rc == AAM_OK)
			rc = add_event(e, br, "ping", json_pack("{s:s}", "type", "ping"));
		size_t len = strlen(c->tool_args);
		for (size_t off = 0; rc == AAM_OK && off < len;) {
			size_t n = next_chunk(c->tool_args + off, len - off);
			rc = add_event(e, br, "content_block_delta",
			               json_pack("{s:s,s:i,s:{s:s,s:s%}}", "type",
			                         "content_block_delta", "index", 0, "delta", "type",
			                         "input_json_delta", "partial_json",
			                         c->tool_args + off, n));
			off += n;
		}
		stop = "tool_use";
	} else {
		return rc;
	}
	if (rc == AAM_OK)
		rc = add_event(e, br, "content_block_stop",
		               json_pack("{s:s,s:i}", "type", "content_block_stop", "index", 0));
	if (rc == AAM_OK)
		rc = add_event(e, br, "message_delta",
		               json_pack("{s:s,s:{s:s,s:n},s:{s:I}}", "type", "message_delta",
		                         "delta", "stop_reason", stop, "stop_sequence", "usage",
		                         "output_tokens", (json_int_t)c->output_tokens));
	if (rc == AAM_OK) {
		json_t *ms = json_pack("{s:s}", "type", "message_stop");
		if (br && ms != NULL) /* Bedrock appends its invocation metrics here */
			json_object_set_new(
			        ms, "amazon-bedrock-invocationMetrics",
			        json_pack("{s:I,s:I,s:i,s:i}", "inputTokenCount",
			                  (json_int_t)c->input_tokens, "outputTokenCount",
			                  (json_int_t)c->output_tokens, "invocationLatency", 1,
			                  "firstByteLatency", 1));
		rc = add_event(e, br, "message_stop", ms);
	}
	ans->status = 200;
	ans->ctype = br ? "application/vnd.amazon.eventstream" : "text/event-stream";
	return rc;
}

int
mock_anthropic_messages(const struct mock_req *r, struct mock_answer *ans)
{
	enum mock_flavor fl = r->flavor;
	const json_t *msgs = json_object_get(r->body, "messages");
	if (!json_is_array(msgs) || json_array_size(msgs) == 0)
		return mock_error(ans, fl, 400, "messages: field required (non-empty array)");
	if (!json_is_integer(json_object_get(r->body, "max_tokens")))
		return mock_error(ans, fl, 400, "max_tokens: field required");
	if (fl == MOCK_ANTHROPIC && r->model == NULL)
		return mock_error(ans, fl, 400, "model: field required");
	if (fl == MOCK_BEDROCK && !json_is_string(json_object_get(r->body, "anthropic_version")))
		return mock_error(ans, fl, 400, "Malformed input request: anthropic_version");
	struct mock_content c;
	int rc = mock_content_build(r, &c);
	if (rc != AAM_OK)
		return rc;
	char id[64];
	snprintf(id, sizeof(id), "msg_mock_%llu", (unsigned long long)r->seq);
	if (r->stream) {
		rc = anthropic_stream(r, &c, id, ans);
		mock_content_free(&c);
		return rc;
	}
	json_t *content;
	const char *stop;
	if (c.text != NULL) {
		content = json_pack("[{s:s,s:s}]", "type", "text", "text", c.text);
		stop = c.truncated ? "max_tokens" : "end_turn";
	} else {
		char tid[64];
		snprintf(tid, sizeof(tid), "toolu_mock_%llu", (unsigned long long)r->seq);
		json_t *input = json_loads(c.tool_args, 0, NULL);
		content = json_pack("[{s:s,s:s,s:s,s:o}]", "type", "tool_use", "id", tid, "name",
		                    c.tool_name, "input", input);
		stop = "tool_use";
	}
	json_t *j = anthropic_message(r, &c, id, content, stop, c.output_tokens);
	mock_content_free(&c);
	return mock_answer_json(ans, 200, j);
}

/* ---- OpenAI embeddings and models ----------------------------------- */

static uint64_t
fnv1a(const void *p, size_t n, uint64_t seed)
{
	const uint8_t *b = p;
	uint64_t h = 0xcbf29ce484222325ull ^ (seed * 0x9E3779B97F4A7C15ull);
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	h ^= h >> 33; /* a final mix so neighbouring seeds differ in every bit */
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

/* Newton's method, so the mock needs no libm. */
static double
root(double x)
{
	if (x <= 0)
		return 0;
	double g = x > 1 ? x : 1;
	for (int i = 0; i < 64; i++)
		g = 0.5 * (g + x / g);
	return g;
}

/* A unit vector that depends only on the input text and DIMS. */
static json_t *
embedding_of(const char *text, size_t len, size_t dims, bool b64)
{
	float *v = calloc(dims, sizeof(float));
	if (v == NULL)
		return NULL;
	double norm = 0;
	for (size_t i = 0; i < dims; i++) {
		double x = (double)(fnv1a(text, len, i + 1) >> 11) / 9007199254740992.0 * 2.0 - 1.0;
		v[i] = (float)x;
		norm += x * x;
	}
	norm = root(norm);
	json_t *out = NULL;
	for (size_t i = 0; i < dims && norm > 0; i++)
		v[i] = (float)(v[i] / norm);
	if (b64) {
		/* The OpenAI SDKs ask for base64: little-endian float32s. */
		struct aam_buf b;
		aam_buf_init(&b, AAM_BUF_DEFAULT_MAX);
		aam_b64_encode_buf(&b, v, dims * sizeof(float), AAM_B64_STD);
		if (!aam_buf_failed(&b))
			out = json_stringn((const char *)b.data, b.len);
		aam_buf_uninit(&b);
	} else {
		out = json_array();
		for (size_t i = 0; out != NULL && i < dims; i++)
			json_array_append_new(out, json_real(v[i]));
	}
	free(v);
	return out;
}

int
mock_openai_embeddings(const struct mock_req *r, struct mock_answer *ans)
{
	json_t *input = json_object_get(r->body, "input");
	json_t *items = json_array();
	if (items == NULL)
		return AAM_E_NOMEM;
	/* A string, an array of strings, an array of token ids or an array of
	 * such arrays: each item is hashed through its compact JSON text. */
	if (json_is_string(input) || (json_is_array(input) && json_array_size(input) > 0 &&
	                              json_is_integer(json_array_get(input, 0))))
		json_array_append(items, input);
	else if (json_is_array(input))
		json_array_extend(items, input);
	if (json_array_size(items) == 0) {
		json_decref(items);
		return mock_error(ans, MOCK_OPENAI, 400,
		                  "input must be a non-empty string or array");
	}
	size_t dims = 8;
	const json_t *d = json_object_get(r->body, "dimensions");
	if (json_is_integer(d)) {
		if (json_integer_value(d) < 1 || json_integer_value(d) > 4096) {
			json_decref(items);
			return mock_error(ans, MOCK_OPENAI, 400, "dimensions must be 1..4096");
		}
		dims = (size_t)json_integer_value(d);
	}
	const char *fmt = json_string_value(json_object_get(r->body, "encoding_format"));
	bool b64 = fmt != NULL && strcmp(fmt, "base64") == 0;
	json_t *data = json_array();
	size_t bytes = 0;
	size_t i;
	json_t *it;
	json_array_foreach(items, i, it)
	{
		char *s = json_is_string(it) ? strdup(json_string_value(it))
		                             : json_dumps(it, JSON_COMPACT | JSON_ENCODE_ANY);
		if (s == NULL)
			continue;
		size_t n = strlen(s);
		bytes += n;
		json_array_append_new(data, json_pack("{s:s,s:i,s:o}", "object", "embedding",
		                                      "index", (int)i, "embedding",
		                                      embedding_of(s, n, dims, b64)));
		free(s);
	}
	json_decref(items);
	json_int_t tok = (json_int_t)mock_tokens(bytes);
	return mock_answer_json(ans, 200,
	                        json_pack("{s:s,s:o,s:s,s:{s:I,s:I}}", "object", "list", "data",
	                                  data, "model", r->model != NULL ? r->model : "mock",
	                                  "usage", "prompt_tokens", tok, "total_tokens", tok));
}

int
mock_openai_models(struct mock_answer *ans)
{
	static const char *const ids[] = {"mock-gpt", "mock-claude", "mock-embed"};
	json_t *data = json_array();
	for (size_t i = 0; data != NULL && i < sizeof(ids) / sizeof(ids[0]); i++)
		json_array_append_new(data,
		                      json_pack("{s:s,s:s,s:i,s:s}", "id", ids[i], "object",
		                                "model", "created", 0, "owned_by", "aam-mock"));
	return mock_answer_json(ans, 200, json_pack("{s:s,s:o}", "object", "list", "data", data));
}
