/*
 * aam-mock-provider: a DEMO/TEST model upstream speaking the OpenAI,
 * Anthropic, Azure OpenAI and Bedrock (Anthropic body) wire formats.  It
 * is the upstream of the gateway's tests and of bench/gateway; it never
 * calls a real provider.  README.md in this folder documents behaviour.
 *
 * The parts: mock_main.c (flags, the HTTP server, behaviour controls,
 * counters), mock_reply.c (reply content and token counts), mock_api.c
 * (the response bodies of each API, stream and non-stream) and
 * mock_stream.c (prebuilt stream chunks, AWS event-stream framing).
 */
#ifndef AAM_MOCK_PROVIDER_H
#define AAM_MOCK_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Bytes per stream content chunk: small, so every reply streams in several. */
#define MOCK_CHUNK_BYTES 8
/* Bytes of the last user message quoted in the reply. */
#define MOCK_QUOTE_BYTES 40

enum mock_flavor { MOCK_OPENAI = 1, MOCK_ANTHROPIC, MOCK_BEDROCK };

/* A stream prepared in full before the first byte is sent. */
struct mock_events {
	char **ev;
	size_t *len;
	size_t n, cap;
};

/* One parsed model request. */
struct mock_req {
	enum mock_flavor flavor;
	const char *model; /* from the body, the Azure deployment or the Bedrock id */
	json_t *body;      /* parsed request body (borrowed) */
	json_t *headers;   /* every received header, lowercased names (borrowed) */
	bool stream;
	bool echo;
	uint64_t seq; /* request number, for ids */
};

/* What the server sends back. */
struct mock_answer {
	unsigned status;
	char *body; /* malloc'd; NULL when streaming */
	size_t len;
	const char *ctype;
	struct mock_events *stream; /* non-NULL for streams */
	char retry_after[16];       /* "" = no retry-after header */
	char amz_error_type[64];    /* Bedrock: x-amzn-ErrorType */
};

/* The reply a request gets, computed from its body (mock_reply.c). */
struct mock_content {
	char *text;      /* reply text, or NULL when answering with a tool call */
	char *tool_name; /* tool call: the first declared tool's name */
	char *tool_args; /* tool call: its arguments, compact JSON */
	int64_t input_tokens, output_tokens;
	bool truncated; /* cut to max_tokens */
};

/* mock_reply.c */
int64_t mock_tokens(size_t bytes);
int mock_content_build(const struct mock_req *r, struct mock_content *c);
void mock_content_free(struct mock_content *c);
size_t mock_utf8_cut(const char *s, size_t len, size_t max);

/* mock_api.c: each fills ANS (status 200, or 400 for a malformed request). */
int mock_openai_chat(const struct mock_req *r, struct mock_answer *ans);
int mock_anthropic_messages(const struct mock_req *r, struct mock_answer *ans);
int mock_openai_embeddings(const struct mock_req *r, struct mock_answer *ans);
int mock_openai_models(struct mock_answer *ans);
/* An error in FLAVOR's real shape; STATUS picks the type. */
int mock_error(struct mock_answer *ans, enum mock_flavor flavor, unsigned status, const char *msg);
int mock_answer_json(struct mock_answer *ans, unsigned status, json_t *j);
void mock_answer_uninit(struct mock_answer *ans);

/* mock_stream.c */
struct mock_events *mock_events_new(void);
void mock_events_free(struct mock_events *e);
int mock_events_add(struct mock_events *e, const void *p, size_t n);
/* "event: NAME\n" (when NAME) + "data: JSON\n\n"; takes DATA's reference. */
int mock_events_add_sse(struct mock_events *e, const char *name, json_t *data);
/* An AWS event-stream frame (application/vnd.amazon.eventstream) whose
 * payload is {"bytes":"<base64 of the JSON>"}; takes DATA's reference. */
int mock_events_add_eventstream(struct mock_events *e, json_t *data);
uint32_t mock_crc32(uint32_t crc, const uint8_t *p, size_t n);

#endif
