/*
 * The budget settle of streams (gateway/router_call.c gw_settle_tokens,
 * fed by the stream translator's progress, gateway/translate_stream.c):
 * a stream that ends early is charged at least what is known to be
 * spent.  Anthropic (SSE and Bedrock event-stream) cut after message_start: the input
 * it reported plus an upper bound of the output delivered; with thinking
 * blocks, or an OpenAI stream cut before its usage chunk, the output
 * worst case.  Complete streams are charged exactly their usage.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "common/b64.h"
#include "common/buf.h"
#include "gateway/provider.h"
#include "gateway/provider_int.h"
#include "gateway/route.h"
#include "gateway/router_int.h"

#define OUT_CAP 500
#define EST_IN  30

static struct gw_deployment
dep(const char *provider)
{
	return (struct gw_deployment){.id = "r#0",
	                              .provider = (char *)(uintptr_t)provider,
	                              .model = "m",
	                              .api_base = "http://127.0.0.1:9",
	                              .weight = 1};
}

/* Feeds SSE text to a translator for API, then finishes it, and computes the charge. */
static int
run(const char *provider, enum gw_api api, const char *sse, struct gw_charge *c)
{
	struct gw_deployment d = dep(provider);
	struct gw_xlate *x = NULL;
	assert_int_equal(gw_xlate_new(&d, api, false, &x), AAM_OK);
	struct aam_buf out;
	aam_buf_init(&out, 1 << 20);
	/* Byte by byte: the count must not depend on how the bytes were split. */
	int rc = AAM_OK;
	for (size_t i = 0; sse[i] != '\0' && rc == AAM_OK; i++)
		rc = gw_xlate_feed(x, (const uint8_t *)&sse[i], 1, &out);
	assert_int_equal(rc, AAM_OK);
	int frc = gw_xlate_finish(x, &out);
	struct gw_usage u;
	struct gw_stream_progress p;
	gw_xlate_usage(x, &u);
	gw_xlate_progress(x, &p);
	gw_settle_tokens(&u, &p, strcmp(provider, "anthropic") != 0, EST_IN, OUT_CAP, c);
	gw_xlate_free(x);
	aam_buf_uninit(&out);
	return frc;
}

#define A_START                                                                                    \
	"event: message_start\n"                                                                   \
	"data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"m\","         \
	"\"usage\":{\"input_tokens\":25,\"cache_read_input_tokens\":5,\"output_tokens\":1}}}\n\n"
#define A_BLOCK                                                                                    \
	"event: content_block_start\n"                                                             \
	"data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":"         \
	"\"text\",\"text\":\"\"}}\n\n"
/* 20 bytes of text per delta. */
#define A_DELTA                                                                                    \
	"event: content_block_delta\n"                                                             \
	"data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","  \
	"\"text\":\"abcdefghij0123456789\"}}\n\n"
#define A_END                                                                                      \
	"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"       \
	"event: message_delta\n"                                                                   \
	"data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},"              \
	"\"usage\":{\"output_tokens\":12}}\n\n"                                                    \
	"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"

static void
test_anthropic_complete(void **state)
{
	(void)state;
	struct gw_charge c;
	for (int api = GW_API_OPENAI_CHAT; api <= GW_API_ANTHROPIC_MESSAGES; api++) {
		assert_int_equal(
		        run("anthropic", (enum gw_api)api, A_START A_BLOCK A_DELTA A_END, &c),
		        AAM_OK);
		assert_int_equal(c.input, 30); /* 25 + 5 read from the cache */
		assert_int_equal(c.cached, 5);
		assert_int_equal(c.output, 12);
		assert_false(c.estimated);
	}
}

static void
test_anthropic_cut_after_deltas(void **state)
{
	(void)state;
	struct gw_charge c;
	/* Cut after two deltas: 40 bytes of text delivered, no message_delta. */
	for (int api = GW_API_OPENAI_CHAT; api <= GW_API_ANTHROPIC_MESSAGES; api++) {
		assert_int_not_equal(
		        run("anthropic", (enum gw_api)api, A_START A_BLOCK A_DELTA A_DELTA, &c),
		        AAM_OK);
		assert_int_equal(c.input, 30);
		/* Not message_start's 1: a token is at least a byte, so 40 bounds it. */
		assert_int_equal(c.output, 40);
		assert_true(c.estimated);
	}
	/* Cut right after message_start: the input is spent, the output is (at least) 1. */
	assert_int_not_equal(run("anthropic", GW_API_ANTHROPIC_MESSAGES, A_START, &c), AAM_OK);
	assert_int_equal(c.input, 30);
	assert_int_equal(c.output, 1);
	/* A long cut stream is charged at most the output cap. */
	char *big = malloc(64 * 1024);
	strcpy(big, A_START A_BLOCK);
	for (int i = 0; i < 40; i++)
		strcat(big, A_DELTA);
	assert_int_not_equal(run("anthropic", GW_API_ANTHROPIC_MESSAGES, big, &c), AAM_OK);
	assert_int_equal(c.output, OUT_CAP);
	free(big);
}

static void
test_anthropic_cut_tool_and_thinking(void **state)
{
	(void)state;
	struct gw_charge c;
	static const char tool[] =
	        A_START "event: content_block_start\n"
	                "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
	                "{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get_weather\","
	                "\"input\":{}}}\n\n"
	                "event: content_block_delta\n"
	                "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
	                "\"input_json_delta\",\"partial_json\":\"{\\\"city\\\": \\\"Par\"}}\n\n";
	assert_int_not_equal(run("anthropic", GW_API_OPENAI_CHAT, tool, &c), AAM_OK);
	/* "get_weather" (11) + {"city": "Par (13). */
	assert_int_equal(c.output, 24);
	/* Thinking is summarised in the stream: its bytes bound nothing, charge the cap. */
	static const char think[] =
	        A_START "event: content_block_start\n"
	                "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
	                "{\"type\":\"thinking\",\"thinking\":\"\"}}\n\n"
	                "event: content_block_delta\n"
	                "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
	                "\"thinking_delta\",\"thinking\":\"hmm\"}}\n\n";
	assert_int_not_equal(run("anthropic", GW_API_ANTHROPIC_MESSAGES, think, &c), AAM_OK);
	assert_int_equal(c.input, 30);
	assert_int_equal(c.output, OUT_CAP);
	assert_true(c.estimated);
}

/* Appends one Bedrock event-stream "chunk" message carrying Anthropic event JSON EV. */
static void
bedrock_chunk(struct aam_buf *out, const char *ev)
{
	struct aam_buf p;
	aam_buf_init(&p, 0);
	aam_buf_append_str(&p, "{\"bytes\":\"");
	aam_b64_encode_buf(&p, ev, strlen(ev), AAM_B64_STD);
	aam_buf_append_str(&p, "\"}");
	assert_int_equal(gw_evstream_encode(out, "event", "chunk", p.data, p.len), AAM_OK);
	aam_buf_uninit(&p);
}

static void
test_bedrock_cut(void **state)
{
	(void)state;
	static const char *const events[] = {
	        "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_b\",\"model\":\"m\","
	        "\"usage\":{\"input_tokens\":60,\"output_tokens\":1}}}",
	        "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":"
	        "\"text\",\"text\":\"\"}}",
	        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
	        "\"text_delta\",\"text\":\"0123456789abcdef\"}}",
	        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
	        "\"text_delta\",\"text\":\"0123456789\"}}",
	};
	struct aam_buf in;
	aam_buf_init(&in, 1 << 20);
	for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
		bedrock_chunk(&in, events[i]);
	for (int api = GW_API_OPENAI_CHAT; api <= GW_API_ANTHROPIC_MESSAGES; api++) {
		struct gw_deployment d = dep("bedrock");
		struct gw_xlate *x = NULL;
		assert_int_equal(gw_xlate_new(&d, (enum gw_api)api, false, &x), AAM_OK);
		struct aam_buf out;
		aam_buf_init(&out, 1 << 20);
		/* In 7-byte pieces, and the stream stops in the middle of a fifth message. */
		for (size_t off = 0; off < in.len; off += 7)
			assert_int_equal(gw_xlate_feed(x, in.data + off,
			                               in.len - off < 7 ? in.len - off : 7, &out),
			                 AAM_OK);
		assert_int_equal(gw_xlate_feed(x, in.data, 10, &out), AAM_OK);
		assert_int_not_equal(gw_xlate_finish(x, &out), AAM_OK);
		struct gw_usage u;
		struct gw_stream_progress p;
		gw_xlate_usage(x, &u);
		gw_xlate_progress(x, &p);
		struct gw_charge c;
		gw_settle_tokens(&u, &p, false, EST_IN, OUT_CAP, &c);
		assert_int_equal(c.input, 60);
		assert_int_equal(c.output, 26);
		assert_true(c.estimated);
		gw_xlate_free(x);
		aam_buf_uninit(&out);
	}
	aam_buf_uninit(&in);
}

#define O_CHUNK(content)                                                                           \
	"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":"   \
	"[{\"index\":0,\"delta\":{\"content\":\"" content "\"},\"finish_reason\":null}],"          \
	"\"usage\":null}\n\n"
#define O_FINISH                                                                                   \
	"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":"   \
	"[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n"
#define O_USAGE                                                                                    \
	"data: "                                                                                   \
	"{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[],"      \
	"\"usage\":{\"prompt_tokens\":21,\"completion_tokens\":7,\"total_tokens\":28}}\n\n"

static void
test_openai(void **state)
{
	(void)state;
	struct gw_charge c;
	/* Complete, for both clients. */
	for (int api = GW_API_OPENAI_CHAT; api <= GW_API_ANTHROPIC_MESSAGES; api++) {
		assert_int_equal(run("openai", (enum gw_api)api,
		                     O_CHUNK("hello") O_FINISH O_USAGE "data: [DONE]\n\n", &c),
		                 AAM_OK);
		assert_int_equal(c.input, 21);
		assert_int_equal(c.output, 7);
		assert_false(c.estimated);
	}
	/* The usage arrived, [DONE] did not: the usage is final. */
	run("openai", GW_API_OPENAI_CHAT, O_CHUNK("hello") O_FINISH O_USAGE, &c);
	assert_int_equal(c.output, 7);
	assert_false(c.estimated);
	/*
	 * Cut before the usage chunk (even after finish_reason): OpenAI streams say
	 * nothing of the input, and reasoning models spend output tokens the stream
	 * never shows, so the charge is the reservation's worst case for this
	 * deployment: the input estimate and the output cap.
	 */
	for (int api = GW_API_OPENAI_CHAT; api <= GW_API_ANTHROPIC_MESSAGES; api++) {
		run("openai", (enum gw_api)api, O_CHUNK("hello") O_CHUNK("world"), &c);
		assert_int_equal(c.input, EST_IN);
		assert_int_equal(c.output, OUT_CAP);
		assert_true(c.estimated);
	}
	run("openai-compatible", GW_API_OPENAI_CHAT, O_CHUNK("hello") O_FINISH, &c);
	assert_int_equal(c.output, OUT_CAP);
	assert_true(c.estimated);
}

static void
test_non_stream(void **state)
{
	(void)state;
	struct gw_charge c;
	struct gw_usage u = {.input = 100, .output = 20, .cached = 10, .seen = true};
	gw_settle_tokens(&u, NULL, true, EST_IN, OUT_CAP, &c);
	assert_int_equal(c.input, 100);
	assert_int_equal(c.output, 20);
	assert_int_equal(c.cached, 10);
	assert_false(c.estimated);
	/* An answer without usage (some OpenAI-compatible servers): the worst case. */
	struct gw_usage none = {0};
	gw_settle_tokens(&none, NULL, true, EST_IN, OUT_CAP, &c);
	assert_int_equal(c.input, EST_IN);
	assert_int_equal(c.output, OUT_CAP);
	assert_true(c.estimated);
	gw_settle_tokens(NULL, NULL, false, EST_IN, 0, &c);
	assert_int_equal(c.output, 0); /* embeddings: no output */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_anthropic_complete),
	        cmocka_unit_test(test_anthropic_cut_after_deltas),
	        cmocka_unit_test(test_anthropic_cut_tool_and_thinking),
	        cmocka_unit_test(test_bedrock_cut),
	        cmocka_unit_test(test_openai),
	        cmocka_unit_test(test_non_stream),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
