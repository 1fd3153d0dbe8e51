/*
 * The mock model provider (tests/mock-provider) as a client sees it: each
 * endpoint's shape and predictable usage, SSE and AWS event-stream
 * framing (CRCs checked with an independent implementation), failure
 * injection, hangs, cut streams, latency, the key check and echo.  Runs the
 * real binary ($AAM_MOCK_PROVIDER_BIN) on loopback and talks to it with
 * libcurl.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "common/b64.h"
#include "tests/lib/testutil.h"

struct mock {
	pid_t pid;
	char base[64];
};

static struct mock M; /* default flags */
static char *DIR_;

static int
mock_start(struct mock *m, const char *const *extra)
{
	const char *bin = getenv("AAM_MOCK_PROVIDER_BIN");
	if (bin == NULL)
		return -1;
	int fds[2];
	if (pipe(fds) != 0)
		return -1;
	const char *argv[16] = {bin, "--port", "0"};
	size_t n = 3;
	for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 15; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execv(bin, (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	close(fds[1]);
	char line[64] = {0};
	size_t got = 0;
	while (got < sizeof(line) - 1) {
		ssize_t r = read(fds[0], line + got, 1);
		if (r <= 0 || line[got] == '\n')
			break;
		got++;
	}
	close(fds[0]);
	unsigned port = 0;
	if (sscanf(line, "port=%u", &port) != 1 || port == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -1;
	}
	m->pid = pid;
	snprintf(m->base, sizeof(m->base), "http://127.0.0.1:%u", port);
	return 0;
}

/* Stops the mock; returns its exit status, so a sanitizer report in the
 * mock (leaks at exit included) fails the test. */
static int
mock_stop(struct mock *m)
{
	int st = 0;
	if (m->pid > 0) {
		kill(m->pid, SIGTERM);
		waitpid(m->pid, &st, 0);
		m->pid = 0;
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* ---- HTTP ------------------------------------------------------------- */

struct resp {
	long status;
	CURLcode cc;
	char *body;
	size_t len;
	char headers[4096];
	size_t hlen;
	double secs;
};

static size_t
on_body(char *p, size_t sz, size_t nm, void *ud)
{
	struct resp *r = ud;
	size_t n = sz * nm;
	char *b = realloc(r->body, r->len + n + 1);
	if (b == NULL)
		return 0;
	memcpy(b + r->len, p, n);
	r->len += n;
	b[r->len] = '\0';
	r->body = b;
	return n;
}

static size_t
on_header(char *p, size_t sz, size_t nm, void *ud)
{
	struct resp *r = ud;
	size_t n = sz * nm;
	for (size_t i = 0; i < n && r->hlen + 1 < sizeof(r->headers); i++) {
		char c = p[i];
		r->headers[r->hlen++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	r->headers[r->hlen] = '\0';
	return n;
}

/* BODY NULL = GET.  HDRS: NULL-terminated "Name: value" lines. */
static void
http(const struct mock *m, const char *path, const char *const *hdrs, const char *body,
     long timeout_ms, struct resp *r)
{
	memset(r, 0, sizeof(*r));
	char url[512];
	snprintf(url, sizeof(url), "%s%s", m->base, path);
	CURL *c = curl_easy_init();
	assert_non_null(c);
	struct curl_slist *sl = curl_slist_append(NULL, "Content-Type: application/json");
	for (size_t i = 0; hdrs != NULL && hdrs[i] != NULL; i++)
		sl = curl_slist_append(sl, hdrs[i]);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, sl);
	if (body != NULL)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 10000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	r->cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &r->secs);
	curl_slist_free_all(sl);
	curl_easy_cleanup(c);
}

static json_t *
body_json(const struct resp *r)
{
	assert_non_null(r->body);
	json_t *j = json_loadb(r->body, r->len, 0, NULL);
	assert_non_null(j);
	return j;
}

static const char *
jstr(const json_t *j, const char *path)
{
	/* "a.b.0.c": object keys and array indexes. */
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", path);
	const json_t *cur = j;
	for (char *save = NULL, *tok = strtok_r(buf, ".", &save); tok != NULL && cur != NULL;
	     tok = strtok_r(NULL, ".", &save))
		cur = json_is_array(cur) ? json_array_get(cur, strtoul(tok, NULL, 10))
		                         : json_object_get(cur, tok);
	return json_string_value(cur);
}

static json_int_t
jint(const json_t *j, const char *obj, const char *key)
{
	const json_t *o = obj != NULL ? json_object_get(j, obj) : j;
	const json_t *v = json_object_get(o, key);
	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

/* ---- SSE ------------------------------------------------------------ */

struct sse {
	char *event[64];
	json_t *data[64];
	size_t n;
	bool done;
};

static void
sse_parse(const char *body, struct sse *s)
{
	memset(s, 0, sizeof(*s));
	const char *p = body;
	char *ev = NULL;
	while (p != NULL && *p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
		if (len > 7 && strncmp(p, "event: ", 7) == 0) {
			free(ev);
			ev = strndup(p + 7, len - 7);
		} else if (len > 6 && strncmp(p, "data: ", 6) == 0) {
			if (len == 12 && strncmp(p + 6, "[DONE]", 6) == 0) {
				s->done = true;
			} else {
				assert_true(s->n < 64);
				s->data[s->n] = json_loadb(p + 6, len - 6, 0, NULL);
				assert_non_null(s->data[s->n]);
				s->event[s->n] = ev;
				ev = NULL;
				s->n++;
			}
		} else {
			/* Events are separated by exactly one empty line. */
			assert_int_equal(len, 0);
		}
		p = nl != NULL ? nl + 1 : NULL;
	}
	free(ev);
}

static void
sse_free(struct sse *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->event[i]);
		json_decref(s->data[i]);
	}
}

static size_t
count_events(const char *body)
{
	size_t n = 0;
	for (const char *p = body; p != NULL && (p = strstr(p, "\n\n")) != NULL; p += 2)
		n++;
	return n;
}

/* ---- expectations ------------------------------------------------- */

static long
tokens(size_t bytes)
{
	long t = (long)((bytes + 3) / 4);
	return t > 0 ? t : 1;
}

#define CHAT "/v1/chat/completions"
static const char *const AV[] = {"anthropic-version: 2023-06-01", NULL};

/* ---- tests ---------------------------------------------------------- */

static void
test_openai_nonstream(void **state)
{
	(void)state;
	struct resp r;
	http(&M, CHAT, NULL,
	     "{\"model\":\"gpt-x\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
	     "{\"role\":\"user\",\"content\":\"Hello there, how are you?\"}]}",
	     0, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.headers, "content-type: application/json"));
	json_t *j = body_json(&r);
	assert_string_equal(jstr(j, "object"), "chat.completion");
	assert_string_equal(jstr(j, "model"), "gpt-x");
	assert_string_equal(jstr(j, "choices.0.message.role"), "assistant");
	const char *text = "mock reply to: Hello there, how are you?";
	assert_string_equal(jstr(j, "choices.0.message.content"), text);
	assert_string_equal(jstr(j, "choices.0.finish_reason"), "stop");
	assert_int_equal(jint(j, "usage", "prompt_tokens"), tokens(8 + 25));
	assert_int_equal(jint(j, "usage", "completion_tokens"), tokens(strlen(text)));
	assert_int_equal(jint(j, "usage", "total_tokens"), tokens(33) + tokens(strlen(text)));
	json_decref(j);
	free(r.body);

	/* max_tokens cuts the reply and says so. */
	http(&M, CHAT, NULL,
	     "{\"model\":\"m\",\"max_tokens\":2,\"messages\":[{\"role\":\"user\",\"content\":"
	     "\"long "
	     "question here\"}]}",
	     0, &r);
	j = body_json(&r);
	assert_string_equal(jstr(j, "choices.0.message.content"), "mock rep");
	assert_string_equal(jstr(j, "choices.0.finish_reason"), "length");
	assert_int_equal(jint(j, "usage", "completion_tokens"), 2);
	json_decref(j);
	free(r.body);

	/* The quote is cut on a UTF-8 boundary: "a" + 30 two-byte chars. */
	char msg[128] = "a";
	for (int i = 0; i < 30; i++)
		strcat(msg, "\xc3\xa9");
	char body[512];
	snprintf(body, sizeof(body),
	         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}", msg);
	http(&M, CHAT, NULL, body, 0, &r);
	assert_int_equal(r.status, 200);
	j = body_json(&r);
	const char *c = jstr(j, "choices.0.message.content");
	assert_non_null(c);
	assert_int_equal(strlen(c), strlen("mock reply to: ") + 39);
	json_decref(j);
	free(r.body);
}

static void
test_openai_stream(void **state)
{
	(void)state;
	struct resp r;
	http(&M, CHAT, NULL,
	     "{\"model\":\"gpt-x\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
	     "\"messages\":[{\"role\":\"user\",\"content\":\"Hello world, streaming\"}]}",
	     0, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.headers, "content-type: text/event-stream"));
	struct sse s;
	sse_parse(r.body, &s);
	assert_true(s.done);
	assert_true(s.n >= 5);
	assert_string_equal(jstr(s.data[0], "choices.0.delta.role"), "assistant");
	char text[256] = "";
	size_t content_chunks = 0;
	for (size_t i = 1; i + 2 < s.n; i++) {
		assert_string_equal(jstr(s.data[i], "object"), "chat.completion.chunk");
		const char *c = jstr(s.data[i], "choices.0.delta.content");
		assert_non_null(c);
		assert_true(strlen(c) <= 8);
		strcat(text, c);
		content_chunks++;
		assert_true(json_is_null(json_object_get(s.data[i], "usage")));
	}
	assert_true(content_chunks >= 3);
	assert_string_equal(text, "mock reply to: Hello world, streaming");
	assert_string_equal(jstr(s.data[s.n - 2], "choices.0.finish_reason"), "stop");
	json_t *last = s.data[s.n - 1];
	assert_int_equal(json_array_size(json_object_get(last, "choices")), 0);
	assert_int_equal(jint(last, "usage", "prompt_tokens"), tokens(22));
	assert_int_equal(jint(last, "usage", "completion_tokens"), tokens(strlen(text)));
	sse_free(&s);
	free(r.body);

	/* Without include_usage: no usage chunk and no usage key at all. */
	http(&M, CHAT, NULL,
	     "{\"model\":\"gpt-x\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":"
	     "\"hi\"}]}",
	     0, &r);
	sse_parse(r.body, &s);
	assert_true(s.done);
	for (size_t i = 0; i < s.n; i++) {
		assert_null(json_object_get(s.data[i], "usage"));
		assert_int_equal(json_array_size(json_object_get(s.data[i], "choices")), 1);
	}
	sse_free(&s);
	free(r.body);
}

static const char OA_TOOLS[] = "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
                               "\"get_weather\",\"parameters\":{\"type\":\"object\"}}}]";

static void
test_openai_tools(void **state)
{
	(void)state;
	char body[1024];
	snprintf(body, sizeof(body),
	         "{\"model\":\"m\",%s,\"messages\":[{\"role\":\"user\",\"content\":\"What is the "
	         "Weather in Paris?\"}]}",
	         OA_TOOLS);
	struct resp r;
	http(&M, CHAT, NULL, body, 0, &r);
	json_t *j = body_json(&r);
	assert_string_equal(jstr(j, "choices.0.finish_reason"), "tool_calls");
	assert_true(json_is_null(json_object_get(
	        json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message"),
	        "content")));
	assert_string_equal(jstr(j, "choices.0.message.tool_calls.0.type"), "function");
	assert_string_equal(jstr(j, "choices.0.message.tool_calls.0.function.name"), "get_weather");
	json_t *args =
	        json_loads(jstr(j, "choices.0.message.tool_calls.0.function.arguments"), 0, NULL);
	assert_string_equal(jstr(args, "query"), "What is the Weather in Paris?");
	json_decref(args);
	json_decref(j);
	free(r.body);

	/* Streamed: name first, then argument fragments that join to JSON. */
	snprintf(body, sizeof(body),
	         "{\"model\":\"m\",\"stream\":true,%s,\"messages\":[{\"role\":\"user\",\"content\":"
	         "\"weather?\"}]}",
	         OA_TOOLS);
	http(&M, CHAT, NULL, body, 0, &r);
	struct sse s;
	sse_parse(r.body, &s);
	assert_string_equal(jstr(s.data[0], "choices.0.delta.tool_calls.0.function.name"),
	                    "get_weather");
	assert_non_null(jstr(s.data[0], "choices.0.delta.tool_calls.0.id"));
	char joined[256] = "";
	for (size_t i = 1; i + 1 < s.n; i++)
		strcat(joined, jstr(s.data[i], "choices.0.delta.tool_calls.0.function.arguments"));
	args = json_loads(joined, 0, NULL);
	assert_non_null(args);
	assert_string_equal(jstr(args, "query"), "weather?");
	json_decref(args);
	assert_string_equal(jstr(s.data[s.n - 1], "choices.0.finish_reason"), "tool_calls");
	sse_free(&s);
	free(r.body);

	/* A tool result as last message ends the loop with text. */
	snprintf(body, sizeof(body),
	         "{\"model\":\"m\",%s,\"messages\":[{\"role\":\"user\",\"content\":\"weather?\"},"
	         "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":"
	         "\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{}\"}}]},"
	         "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"sunny\"}]}",
	         OA_TOOLS);
	http(&M, CHAT, NULL, body, 0, &r);
	j = body_json(&r);
	assert_string_equal(jstr(j, "choices.0.message.content"), "mock reply to: sunny");
	json_decref(j);
	free(r.body);
}

static void
test_anthropic(void **state)
{
	(void)state;
	struct resp r;
	http(&M, "/v1/messages", AV,
	     "{\"model\":\"claude-x\",\"max_tokens\":100,\"system\":\"be nice\",\"messages\":[{"
	     "\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hi there\"}]}]}",
	     0, &r);
	assert_int_equal(r.status, 200);
	json_t *j = body_json(&r);
	assert_string_equal(jstr(j, "type"), "message");
	assert_string_equal(jstr(j, "role"), "assistant");
	assert_string_equal(jstr(j, "content.0.type"), "text");
	assert_string_equal(jstr(j, "content.0.text"), "mock reply to: Hi there");
	assert_string_equal(jstr(j, "stop_reason"), "end_turn");
	assert_int_equal(jint(j, "usage", "input_tokens"), tokens(7 + 8));
	assert_int_equal(jint(j, "usage", "output_tokens"), tokens(23));
	json_decref(j);
	free(r.body);

	/* Streamed: the exact event sequence. */
	http(&M, "/v1/messages", AV,
	     "{\"model\":\"claude-x\",\"stream\":true,\"max_tokens\":100,\"messages\":[{\"role\":"
	     "\"user\",\"content\":\"Stream to me please\"}]}",
	     0, &r);
	assert_non_null(strstr(r.headers, "content-type: text/event-stream"));
	struct sse s;
	sse_parse(r.body, &s);
	assert_false(s.done);
	assert_string_equal(s.event[0], "message_start");
	assert_int_equal(jint(json_object_get(s.data[0], "message"), "usage", "input_tokens"),
	                 tokens(19));
	assert_string_equal(s.event[1], "content_block_start");
	assert_string_equal(s.event[2], "ping");
	char text[256] = "";
	size_t i = 3;
	for (; i < s.n && strcmp(s.event[i], "content_block_delta") == 0; i++) {
		assert_string_equal(jstr(s.data[i], "delta.type"), "text_delta");
		strcat(text, jstr(s.data[i], "delta.text"));
	}
	assert_true(i >= 6);
	assert_string_equal(text, "mock reply to: Stream to me please");
	assert_string_equal(s.event[i], "content_block_stop");
	assert_string_equal(s.event[i + 1], "message_delta");
	assert_string_equal(jstr(s.data[i + 1], "delta.stop_reason"), "end_turn");
	assert_int_equal(jint(s.data[i + 1], "usage", "output_tokens"), tokens(strlen(text)));
	assert_string_equal(s.event[i + 2], "message_stop");
	assert_int_equal(s.n, i + 3);
	for (size_t k = 0; k < s.n; k++) /* the event name repeats the data's type */
		assert_string_equal(jstr(s.data[k], "type"), s.event[k]);
	sse_free(&s);
	free(r.body);

	/* tool_use, streamed with input_json_delta. */
	http(&M, "/v1/messages", AV,
	     "{\"model\":\"c\",\"stream\":true,\"max_tokens\":100,\"tools\":[{\"name\":\"lookup\","
	     "\"input_schema\":{\"type\":\"object\"}}],\"messages\":[{\"role\":\"user\","
	     "\"content\":\"WEATHER now\"}]}",
	     0, &r);
	sse_parse(r.body, &s);
	assert_string_equal(jstr(s.data[1], "content_block.type"), "tool_use");
	assert_string_equal(jstr(s.data[1], "content_block.name"), "lookup");
	char joined[256] = "";
	for (i = 3; i < s.n && strcmp(s.event[i], "content_block_delta") == 0; i++) {
		assert_string_equal(jstr(s.data[i], "delta.type"), "input_json_delta");
		strcat(joined, jstr(s.data[i], "delta.partial_json"));
	}
	json_t *args = json_loads(joined, 0, NULL);
	assert_string_equal(jstr(args, "query"), "WEATHER now");
	json_decref(args);
	assert_string_equal(jstr(s.data[i + 1], "delta.stop_reason"), "tool_use");
	sse_free(&s);
	free(r.body);

	/* Missing anthropic-version and missing max_tokens: 400, Anthropic shape. */
	http(&M, "/v1/messages", NULL,
	     "{\"model\":\"c\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}"
	     "]}",
	     0, &r);
	assert_int_equal(r.status, 400);
	j = body_json(&r);
	assert_string_equal(jstr(j, "type"), "error");
	assert_string_equal(jstr(j, "error.type"), "invalid_request_error");
	json_decref(j);
	free(r.body);
	http(&M, "/v1/messages", AV,
	     "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 0, &r);
	assert_int_equal(r.status, 400);
	free(r.body);
}

/* CRC-32/ISO-HDLC, written independently of the mock's. */
static uint32_t
crc32_ref(const uint8_t *p, size_t n)
{
	static uint32_t table[256];
	if (table[1] == 0)
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;
			for (int k = 0; k < 8; k++)
				c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
			table[i] = c;
		}
	uint32_t c = 0xFFFFFFFFu;
	for (size_t i = 0; i < n; i++)
		c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}

static uint32_t
be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void
test_bedrock(void **state)
{
	(void)state;
	assert_int_equal(crc32_ref((const uint8_t *)"123456789", 9), 0xCBF43926u);
	const char *body = "{\"anthropic_version\":\"bedrock-2023-05-31\",\"max_tokens\":50,"
	                   "\"messages\":[{\"role\":\"user\",\"content\":\"bedrock hi\"}]}";
	struct resp r;
	http(&M, "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/invoke", NULL, body, 0, &r);
	assert_int_equal(r.status, 200);
	json_t *j = body_json(&r);
	assert_string_equal(jstr(j, "model"), "anthropic.claude-3-5-sonnet-20240620-v1:0");
	assert_string_equal(jstr(j, "content.0.text"), "mock reply to: bedrock hi");
	json_decref(j);
	free(r.body);

	/* No anthropic_version in the body: Bedrock's ValidationException. */
	http(&M, "/model/x/invoke", NULL,
	     "{\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 0, &r);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.headers, "x-amzn-errortype: validationexception"));
	j = body_json(&r);
	assert_non_null(jstr(j, "message"));
	json_decref(j);
	free(r.body);

	http(&M, "/model/anthropic.claude-v2/invoke-with-response-stream", NULL, body, 0, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.headers, "content-type: application/vnd.amazon.eventstream"));
	const uint8_t *p = (const uint8_t *)r.body;
	size_t off = 0, frames = 0;
	char text[256] = "";
	const char *types[32];
	json_t *events[32];
	while (off < r.len) {
		assert_true(r.len - off >= 16);
		uint32_t total = be32(p + off), hlen = be32(p + off + 4);
		assert_true(total <= r.len - off && hlen + 16 <= total);
		assert_int_equal(be32(p + off + 8), crc32_ref(p + off, 8));
		assert_int_equal(be32(p + off + total - 4), crc32_ref(p + off, total - 4));
		/* Headers: the three string headers a Bedrock client routes on. */
		const uint8_t *h = p + off + 12;
		int seen = 0;
		for (size_t k = 0; k < hlen;) {
			uint8_t nl = h[k];
			const char *name = (const char *)h + k + 1;
			assert_int_equal(h[k + 1 + nl], 7);
			uint16_t vl = (uint16_t)(h[k + 2 + nl] << 8 | h[k + 3 + nl]);
			const char *val = (const char *)h + k + 4 + nl;
			if (nl == 11 && memcmp(name, ":event-type", 11) == 0 && vl == 5 &&
			    memcmp(val, "chunk", 5) == 0)
				seen |= 1;
			if (nl == 13 && memcmp(name, ":content-type", 13) == 0 && vl == 16 &&
			    memcmp(val, "application/json", 16) == 0)
				seen |= 2;
			if (nl == 13 && memcmp(name, ":message-type", 13) == 0 && vl == 5 &&
			    memcmp(val, "event", 5) == 0)
				seen |= 4;
			k += 4u + nl + vl;
		}
		assert_int_equal(seen, 7);
		json_t *payload = json_loadb((const char *)h + hlen, total - 16 - hlen, 0, NULL);
		const char *b64 = jstr(payload, "bytes");
		assert_non_null(b64);
		uint8_t dec[2048];
		size_t dlen = 0;
		assert_int_equal(aam_b64_decode(b64, strlen(b64), dec, sizeof(dec), &dlen, 0), 0);
		json_t *ev = json_loadb((const char *)dec, dlen, 0, NULL);
		assert_non_null(ev);
		json_decref(payload);
		assert_true(frames < 32);
		events[frames] = ev;
		types[frames] = jstr(ev, "type");
		if (strcmp(types[frames], "content_block_delta") == 0)
			strcat(text, jstr(ev, "delta.text"));
		frames++;
		off += total;
	}
	assert_int_equal(off, r.len);
	assert_string_equal(types[0], "message_start");
	assert_string_equal(types[frames - 2], "message_delta");
	assert_string_equal(types[frames - 1], "message_stop");
	assert_non_null(json_object_get(events[frames - 1], "amazon-bedrock-invocationMetrics"));
	assert_string_equal(text, "mock reply to: bedrock hi");
	for (size_t k = 0; k < frames; k++)
		json_decref(events[k]);
	free(r.body);
}

static void
test_azure_embeddings_models(void **state)
{
	(void)state;
	struct resp r;
	const char *msg = "{\"messages\":[{\"role\":\"user\",\"content\":\"az\"}]}";
	http(&M, "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-02-01", NULL,
	     msg, 0, &r);
	assert_int_equal(r.status, 200);
	json_t *j = body_json(&r);
	assert_string_equal(jstr(j, "model"), "gpt4o-prod");
	json_decref(j);
	free(r.body);
	http(&M, "/openai/deployments/gpt4o-prod/chat/completions", NULL, msg, 0, &r);
	assert_int_equal(r.status, 400);
	free(r.body);

	http(&M, "/v1/embeddings", NULL,
	     "{\"model\":\"e\",\"input\":[\"alpha\",\"beta\",\"alpha\"],\"dimensions\":16}", 0, &r);
	assert_int_equal(r.status, 200);
	j = body_json(&r);
	json_t *data = json_object_get(j, "data");
	assert_int_equal(json_array_size(data), 3);
	json_t *v0 = json_object_get(json_array_get(data, 0), "embedding");
	json_t *v1 = json_object_get(json_array_get(data, 1), "embedding");
	json_t *v2 = json_object_get(json_array_get(data, 2), "embedding");
	assert_int_equal(json_array_size(v0), 16);
	assert_true(json_equal(v0, v2));
	assert_false(json_equal(v0, v1));
	double norm = 0;
	for (size_t i = 0; i < 16; i++)
		norm += json_real_value(json_array_get(v0, i)) *
		        json_real_value(json_array_get(v0, i));
	assert_true(norm > 0.999 && norm < 1.001);
	assert_int_equal(jint(j, "usage", "prompt_tokens"), tokens(14));
	json_decref(j);
	free(r.body);

	http(&M, "/v1/embeddings", NULL,
	     "{\"model\":\"e\",\"input\":\"x\",\"encoding_format\":\"base64\"}", 0, &r);
	j = body_json(&r);
	const char *b64 = jstr(j, "data.0.embedding");
	assert_non_null(b64);
	assert_int_equal(strlen(b64), 44); /* 8 float32s = 32 bytes */
	json_decref(j);
	free(r.body);

	http(&M, "/v1/embeddings", NULL, "{\"model\":\"e\",\"input\":[]}", 0, &r);
	assert_int_equal(r.status, 400);
	free(r.body);

	http(&M, "/v1/models", NULL, NULL, 0, &r);
	assert_int_equal(r.status, 200);
	j = body_json(&r);
	assert_string_equal(jstr(j, "object"), "list");
	assert_string_equal(jstr(j, "data.0.object"), "model");
	json_decref(j);
	free(r.body);
}

static void
test_failures(void **state)
{
	(void)state;
	const char *msg = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
	const char *amsg = "{\"model\":\"m\",\"max_tokens\":9,\"messages\":[{\"role\":\"user\","
	                   "\"content\":\"x\"}]}";
	struct resp r;
	const char *h500[] = {"x-mock-status: 500", NULL};
	http(&M, CHAT, h500, msg, 0, &r);
	assert_int_equal(r.status, 500);
	json_t *j = body_json(&r);
	assert_string_equal(jstr(j, "error.type"), "server_error");
	assert_non_null(jstr(j, "error.message"));
	assert_non_null(jstr(j, "error.code"));
	assert_null(strstr(r.headers, "retry-after"));
	json_decref(j);
	free(r.body);

	const char *h429[] = {"x-mock-status: 429", "x-mock-retry-after: 2", NULL};
	http(&M, CHAT, h429, msg, 0, &r);
	assert_int_equal(r.status, 429);
	assert_non_null(strstr(r.headers, "retry-after: 2\r\n"));
	j = body_json(&r);
	assert_string_equal(jstr(j, "error.code"), "rate_limit_exceeded");
	json_decref(j);
	free(r.body);

	const char *a529[] = {"x-mock-status: 529", AV[0], NULL};
	http(&M, "/v1/messages", a529, amsg, 0, &r);
	assert_int_equal(r.status, 529);
	j = body_json(&r);
	assert_string_equal(jstr(j, "type"), "error");
	assert_string_equal(jstr(j, "error.type"), "overloaded_error");
	json_decref(j);
	free(r.body);

	/* --fail-first 2 --fail-status 429 --retry-after 3, re-armed by reset. */
	struct mock f = {0};
	const char *args[] = {
	        "--fail-first", "2", "--fail-status", "429", "--retry-after", "3", NULL};
	assert_int_equal(mock_start(&f, args), 0);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 3; i++) {
			http(&f, CHAT, NULL, msg, 0, &r);
			assert_int_equal(r.status, i < 2 ? 429 : 200);
			if (i < 2)
				assert_non_null(strstr(r.headers, "retry-after: 3\r\n"));
			free(r.body);
		}
		http(&f, "/_mock/reset", NULL, "", 0, &r);
		assert_int_equal(r.status, 200);
		free(r.body);
	}
	assert_int_equal(mock_stop(&f), 0);

	/* Hostile bodies. */
	http(&M, CHAT, NULL, "{not json", 0, &r);
	assert_int_equal(r.status, 400);
	free(r.body);
	http(&M, CHAT, NULL, "[1,2]", 0, &r);
	assert_int_equal(r.status, 400);
	free(r.body);
	http(&M, CHAT, NULL, "{\"model\":\"m\",\"model\":\"n\",\"messages\":[]}", 0, &r);
	assert_int_equal(r.status, 400);
	free(r.body);
	http(&M, "/v2/whatever", NULL, "{}", 0, &r);
	assert_int_equal(r.status, 404);
	j = body_json(&r);
	assert_non_null(jstr(j, "error.message"));
	json_decref(j);
	free(r.body);
	size_t big = 9u * 1024 * 1024;
	char *huge = malloc(big + 1);
	assert_non_null(huge);
	memset(huge, 'a', big);
	huge[big] = '\0';
	http(&M, CHAT, NULL, huge, 0, &r);
	free(huge);
	assert_int_equal(r.status, 413);
	free(r.body);
}

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
test_latency_hang_cut(void **state)
{
	(void)state;
	const char *msg = "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\","
	                  "\"content\":\"a long enough message to stream\"}]}";
	struct resp r;
	const char *lat[] = {"x-mock-latency-ms: 250", NULL};
	double t0 = now_s();
	http(&M, CHAT, lat, msg, 0, &r);
	assert_int_equal(r.status, 200);
	assert_true(now_s() - t0 >= 0.25);
	free(r.body);

	/* A hang: the client times out and gets nothing, the mock still serves. */
	const char *hang[] = {"x-mock-hang: 1", NULL};
	t0 = now_s();
	http(&M, CHAT, hang, msg, 400, &r);
	assert_int_equal(r.cc, CURLE_OPERATION_TIMEDOUT);
	assert_int_equal(r.status, 0);
	assert_true(now_s() - t0 >= 0.39);
	free(r.body);
	http(&M, CHAT, NULL, msg, 0, &r);
	assert_int_equal(r.status, 200);
	free(r.body);

	/* Cut after 2 events: the transfer fails and exactly 2 arrived. */
	const char *cut[] = {"x-mock-cut-after: 2", NULL};
	http(&M, CHAT, cut, msg, 0, &r);
	assert_int_equal(r.status, 200);
	assert_int_not_equal(r.cc, CURLE_OK);
	assert_int_equal(count_events(r.body), 2);
	assert_null(strstr(r.body, "[DONE]"));
	free(r.body);

	/* Chunk delay: 10 events x 30 ms. */
	const char *slow[] = {"x-mock-chunk-delay-ms: 30", NULL};
	t0 = now_s();
	http(&M, CHAT, slow, msg, 0, &r);
	assert_int_equal(r.cc, CURLE_OK);
	size_t n = count_events(r.body);
	assert_true(n >= 6);
	assert_true(now_s() - t0 >= 0.03 * (double)(n - 1));
	free(r.body);
}

static void
test_echo_and_key(void **state)
{
	(void)state;
	const char *msg = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
	const char *eh[] = {"x-mock-echo: 1", "X-Custom-Thing: Value-1",
	                    "Authorization: Bearer t0k", NULL};
	struct resp r;
	http(&M, CHAT, eh, msg, 0, &r);
	json_t *j = body_json(&r);
	json_t *hdrs = json_loads(jstr(j, "choices.0.message.content"), 0, NULL);
	assert_non_null(hdrs);
	assert_string_equal(jstr(hdrs, "x-custom-thing"), "Value-1");
	assert_string_equal(jstr(hdrs, "authorization"), "Bearer t0k");
	assert_string_equal(jstr(hdrs, "content-type"), "application/json");
	assert_null(json_object_get(hdrs, "X-Custom-Thing"));
	json_decref(hdrs);
	json_decref(j);
	free(r.body);

	/* --require-key and --echo on a second mock. */
	char path[512];
	snprintf(path, sizeof(path), "%s/key", DIR_);
	assert_int_equal(aam_test_write_file(path, "sk-mock-expected\n", 17, 0600), 0);
	struct mock k = {0};
	const char *args[] = {"--require-key", path, "--echo", "--threads", "2", NULL};
	assert_int_equal(mock_start(&k, args), 0);
	http(&k, CHAT, NULL, msg, 0, &r);
	assert_int_equal(r.status, 401);
	j = body_json(&r);
	assert_string_equal(jstr(j, "error.code"), "invalid_api_key");
	json_decref(j);
	free(r.body);
	const char *wrong[] = {"Authorization: Bearer sk-mock-expecteD", NULL};
	http(&k, CHAT, wrong, msg, 0, &r);
	assert_int_equal(r.status, 401);
	free(r.body);
	const char *prefix[] = {"Authorization: Bearer sk-mock-expected2", NULL};
	http(&k, CHAT, prefix, msg, 0, &r);
	assert_int_equal(r.status, 401);
	free(r.body);
	const char *good[] = {"Authorization: Bearer sk-mock-expected", NULL};
	http(&k, CHAT, good, msg, 0, &r);
	assert_int_equal(r.status, 200);
	j = body_json(&r);
	hdrs = json_loads(jstr(j, "choices.0.message.content"), 0, NULL);
	assert_string_equal(jstr(hdrs, "authorization"), "Bearer sk-mock-expected");
	json_decref(hdrs);
	json_decref(j);
	free(r.body);
	const char *azure[] = {"api-key: sk-mock-expected", NULL};
	http(&k, "/openai/deployments/d/chat/completions?api-version=1", azure, msg, 0, &r);
	assert_int_equal(r.status, 200);
	free(r.body);
	const char *amsg = "{\"model\":\"m\",\"max_tokens\":9,\"messages\":[{\"role\":\"user\","
	                   "\"content\":\"x\"}]}";
	http(&k, "/v1/messages", AV, amsg, 0, &r);
	assert_int_equal(r.status, 401);
	j = body_json(&r);
	assert_string_equal(jstr(j, "error.type"), "authentication_error");
	json_decref(j);
	free(r.body);
	const char *ak[] = {AV[0], "x-api-key: sk-mock-expected", NULL};
	http(&k, "/v1/messages", ak, amsg, 0, &r);
	assert_int_equal(r.status, 200);
	free(r.body);
	const char *bbody = "{\"anthropic_version\":\"bedrock-2023-05-31\",\"max_tokens\":9,"
	                    "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
	const char *sig[] = {"Authorization: AWS4-HMAC-SHA256 Credential=sk-mock-expected/20260101/"
	                     "us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature=00",
	                     NULL};
	http(&k, "/model/m/invoke", sig, bbody, 0, &r);
	assert_int_equal(r.status, 200);
	free(r.body);
	http(&k, "/model/m/invoke", good, bbody, 0, &r);
	assert_int_equal(r.status, 401);
	assert_non_null(strstr(r.headers, "x-amzn-errortype: accessdeniedexception"));
	free(r.body);
	assert_int_equal(mock_stop(&k), 0);
}

static void
test_stats(void **state)
{
	(void)state;
	struct resp r;
	http(&M, "/_mock/reset", NULL, "", 0, &r);
	free(r.body);
	const char *msg = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
	for (int i = 0; i < 3; i++) {
		http(&M, CHAT, NULL, msg, 0, &r);
		free(r.body);
	}
	http(&M, "/v1/models", NULL, NULL, 0, &r);
	free(r.body);
	http(&M, "/_mock/stats", NULL, NULL, 0, &r);
	json_t *j = body_json(&r);
	assert_int_equal(jint(j, NULL, "requests"), 4);
	assert_int_equal(jint(j, "paths", CHAT), 3);
	assert_int_equal(jint(j, "paths", "/v1/models"), 1);
	json_decref(j);
	free(r.body);
	http(&M, "/_mock/last", NULL, NULL, 0, &r);
	j = body_json(&r);
	assert_string_equal(jstr(j, "path"), "/v1/models");
	assert_string_equal(jstr(j, "method"), "GET");
	json_decref(j);
	free(r.body);
	http(&M, "/_mock/reset", NULL, "", 0, &r);
	free(r.body);
	http(&M, "/_mock/stats", NULL, NULL, 0, &r);
	j = body_json(&r);
	assert_int_equal(jint(j, NULL, "requests"), 0);
	json_decref(j);
	free(r.body);
}

static int
setup(void **state)
{
	(void)state;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	DIR_ = aam_test_mkdtemp("mockprov");
	if (DIR_ == NULL || mock_start(&M, NULL) != 0) {
		fprintf(stderr, "cannot start $AAM_MOCK_PROVIDER_BIN\n");
		return -1;
	}
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	int st = mock_stop(&M);
	if (DIR_ != NULL)
		aam_test_rmtree(DIR_);
	free(DIR_);
	curl_global_cleanup();
	if (st != 0)
		fprintf(stderr, "aam-mock-provider exited with status %d\n", st);
	return st == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_openai_nonstream),
	        cmocka_unit_test(test_openai_stream),
	        cmocka_unit_test(test_openai_tools),
	        cmocka_unit_test(test_anthropic),
	        cmocka_unit_test(test_bedrock),
	        cmocka_unit_test(test_azure_embeddings_models),
	        cmocka_unit_test(test_failures),
	        cmocka_unit_test(test_latency_hang_cut),
	        cmocka_unit_test(test_echo_and_key),
	        cmocka_unit_test(test_stats),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
