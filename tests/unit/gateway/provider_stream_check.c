/*
 * Stream translation (gateway/translate_stream.c): both directions, tool
 * calls, same-API passthrough, usage, and hostile or truncated streams.
 * Every stream is fed whole and one byte at a time; the outputs must be
 * identical.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "gateway/provider.h"
#include "gateway/provider_int.h"
#include "gateway/sse.h"

static struct gw_deployment
dep(char *provider)
{
	struct gw_deployment d = {0};
	d.id = "r#0";
	d.provider = provider;
	d.model = "up-model";
	d.api_base = "https://h";
	return d;
}

struct run {
	struct aam_buf out;
	int feed_rc, finish_rc;
	struct gw_usage usage;
};

static void
run_once(char *provider, enum gw_api api, bool wants, const char *in, size_t n, size_t step,
         struct run *r)
{
	struct gw_deployment d = dep(provider);
	struct gw_xlate *x = NULL;
	assert_int_equal(gw_xlate_new(&d, api, wants, &x), AAM_OK);
	gw_xlate_set_created(x, 1700000000);
	aam_buf_init(&r->out, 0);
	r->feed_rc = AAM_OK;
	for (size_t i = 0; i < n && r->feed_rc == AAM_OK; i += step) {
		size_t k = n - i < step ? n - i : step;
		r->feed_rc = gw_xlate_feed(x, (const uint8_t *)in + i, k, &r->out);
	}
	r->finish_rc = gw_xlate_finish(x, &r->out);
	gw_xlate_usage(x, &r->usage);
	gw_xlate_free(x);
}

/* Runs whole and bytewise, checks both agree, returns the whole run. */
static void
run(char *provider, enum gw_api api, bool wants, const char *in, struct run *r)
{
	size_t n = strlen(in);
	struct run b;
	run_once(provider, api, wants, in, n, n ? n : 1, r);
	run_once(provider, api, wants, in, n, 1, &b);
	assert_int_equal(r->feed_rc, b.feed_rc);
	assert_int_equal(r->finish_rc, b.finish_rc);
	assert_string_equal(aam_buf_cstr(&r->out), aam_buf_cstr(&b.out));
	assert_memory_equal(&r->usage, &b.usage, sizeof(r->usage));
	aam_buf_uninit(&b.out);
}

/* A one-line-per-event summary of client output. */
struct sum {
	struct aam_buf s;
	bool openai;
};

static int
sum_cb(void *ctx, const struct gw_sse_event *ev)
{
	struct sum *s = ctx;
	if (strcmp(ev->data, "[DONE]") == 0) {
		aam_buf_append_str(&s->s, "DONE\n");
		return AAM_OK;
	}
	json_t *j = json_loads(ev->data, 0, NULL);
	assert_non_null(j);
	if (json_object_get(j, "error") && s->openai) {
		aam_buf_append_str(&s->s, "ERROR\n");
		json_decref(j);
		return AAM_OK;
	}
	if (s->openai) {
		assert_string_equal(gw_json_str(j, "object"), "chat.completion.chunk");
		assert_non_null(gw_json_str(j, "id"));
		assert_int_equal(json_integer_value(json_object_get(j, "created")), 1700000000);
		json_t *chs = json_object_get(j, "choices");
		json_t *ch = json_array_get(chs, 0);
		json_t *us = json_object_get(j, "usage");
		if (json_array_size(chs) == 0 && us) {
			aam_buf_printf(
			        &s->s, "usage %lld/%lld/%lld\n",
			        (long long)gw_json_int(us, "prompt_tokens"),
			        (long long)gw_json_int(us, "completion_tokens"),
			        (long long)gw_json_int(json_object_get(us, "prompt_tokens_details"),
			                               "cached_tokens"));
		} else {
			json_t *d = json_object_get(ch, "delta");
			assert_true(json_is_object(d));
			assert_int_equal(json_integer_value(json_object_get(ch, "index")), 0);
			if (gw_json_str(d, "role"))
				aam_buf_printf(&s->s, "role %s\n", gw_json_str(d, "role"));
			else if (gw_json_str(d, "content"))
				aam_buf_printf(&s->s, "c %s\n", gw_json_str(d, "content"));
			json_t *tc = json_array_get(json_object_get(d, "tool_calls"), 0);
			if (tc) {
				json_t *fn = json_object_get(tc, "function");
				aam_buf_printf(&s->s, "tc%lld",
				               (long long)json_integer_value(
				                       json_object_get(tc, "index")));
				if (gw_json_str(tc, "id"))
					aam_buf_printf(&s->s, " %s %s %s", gw_json_str(tc, "id"),
					               gw_json_str(tc, "type"),
					               gw_json_str(fn, "name"));
				aam_buf_printf(&s->s, " [%s]\n", gw_json_str(fn, "arguments"));
			}
			if (gw_json_str(ch, "finish_reason"))
				aam_buf_printf(&s->s, "fin %s\n", gw_json_str(ch, "finish_reason"));
		}
	} else {
		const char *t = gw_json_str(j, "type");
		assert_non_null(t);
		assert_string_equal(ev->event, t); /* event name and type agree */
		json_t *idx = json_object_get(j, "index");
		if (strcmp(t, "message_start") == 0) {
			json_t *m = json_object_get(j, "message");
			assert_string_equal(gw_json_str(m, "type"), "message");
			assert_string_equal(gw_json_str(m, "role"), "assistant");
			assert_true(json_is_array(json_object_get(m, "content")));
			assert_true(json_is_object(json_object_get(m, "usage")));
			aam_buf_printf(&s->s, "message_start %s\n", gw_json_str(m, "id"));
		} else if (strcmp(t, "content_block_start") == 0) {
			json_t *cb = json_object_get(j, "content_block");
			aam_buf_printf(&s->s, "start%lld %s", (long long)json_integer_value(idx),
			               gw_json_str(cb, "type"));
			if (gw_json_str(cb, "id"))
				aam_buf_printf(&s->s, " %s %s", gw_json_str(cb, "id"),
				               gw_json_str(cb, "name"));
			aam_buf_append_str(&s->s, "\n");
		} else if (strcmp(t, "content_block_delta") == 0) {
			json_t *d = json_object_get(j, "delta");
			const char *dt = gw_json_str(d, "type");
			aam_buf_printf(&s->s, "delta%lld %s\n", (long long)json_integer_value(idx),
			               strcmp(dt, "text_delta") == 0
			                       ? gw_json_str(d, "text")
			                       : gw_json_str(d, "partial_json"));
		} else if (strcmp(t, "content_block_stop") == 0) {
			aam_buf_printf(&s->s, "stop%lld\n", (long long)json_integer_value(idx));
		} else if (strcmp(t, "message_delta") == 0) {
			json_t *u = json_object_get(j, "usage");
			aam_buf_printf(&s->s, "message_delta %s out=%lld in=%lld cr=%lld\n",
			               gw_json_str(json_object_get(j, "delta"), "stop_reason"),
			               (long long)gw_json_int(u, "output_tokens"),
			               (long long)gw_json_int(u, "input_tokens"),
			               (long long)gw_json_int(u, "cache_read_input_tokens"));
		} else {
			aam_buf_printf(&s->s, "%s\n", t);
		}
	}
	json_decref(j);
	return AAM_OK;
}

static void
assert_summary(const struct aam_buf *out, bool openai, const char *want)
{
	struct sum s = {.openai = openai};
	aam_buf_init(&s.s, 0);
	struct gw_sse p;
	gw_sse_init(&p, 0, 0, false, sum_cb, &s);
	assert_int_equal(gw_sse_feed(&p, out->data, out->len), AAM_OK);
	assert_int_equal(gw_sse_finish(&p), AAM_OK);
	if (strcmp(aam_buf_cstr(&s.s), want) != 0) {
		print_error("got:\n%s\nwant:\n%s\n", aam_buf_cstr(&s.s), want);
		fail();
	}
	gw_sse_uninit(&p);
	aam_buf_uninit(&s.s);
}

#define AEV(type, json) "event: " type "\ndata: " json "\n\n"

static const char *anth_stream = AEV(
        "message_start",
        "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\","
        "\"role\":\"assistant\",\"model\":\"claude-x\",\"content\":[],\"stop_reason\":null,"
        "\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"cache_read_input_tokens\":5,"
        "\"output_tokens\":1}}}") AEV("content_block_start",
                                      "{\"type\":\"content_block_start\",\"index\":0,"
                                      "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}")
        AEV("ping", "{\"type\": \"ping\"}") AEV(
                "content_block_delta",
                "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
                "{\"type\":\"text_delta\",\"text\":\"Hello\"}}") AEV("content_block_delta",
                                                                     "{\"type\":\"content_block_"
                                                                     "delta\",\"index\":0,"
                                                                     "\"delta\":"
                                                                     "{\"type\":\"text_delta\","
                                                                     "\"text\":\" world\"}}")
                AEV("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}") AEV(
                        "content_block_start",
                        "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":"
                        "\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get\",\"input\":{}}}")
                        AEV("content_block_delta",
                            "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":"
                            "{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}")
                                AEV("content_block_delta",
                                    "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":"
                                    "{\"type\":\"input_json_delta\",\"partial_json\":"
                                    "\"{\\\"q\\\":\"}}")
                                        AEV("content_block_delta",
                                            "{\"type\":\"content_block_delta\",\"index\":1,"
                                            "\"delta\":"
                                            "{\"type\":\"input_json_delta\",\"partial_json\":"
                                            "\"\\\"a\\\"}\"}}")
                                                AEV("content_block_stop",
                                                    "{\"type\":\"content_block_stop\",\"index\":1}")
                                                        AEV("message_delta",
                                                            "{\"type\":\"message_delta\",\"delta\":"
                                                            "{\"stop_reason\":"
                                                            "\"tool_use\",\"stop_sequence\":null},"
                                                            "\"usage\":{\"output_tokens\":12}}")
                                                                AEV("message_stop",
                                                                    "{\"type\":\"message_stop\"}");

static void
test_anthropic_to_openai_stream(void **state)
{
	(void)state;
	struct run r;
	run("anthropic", GW_API_OPENAI_CHAT, true, anth_stream, &r);
	assert_int_equal(r.feed_rc, AAM_OK);
	assert_int_equal(r.finish_rc, AAM_OK);
	assert_true(r.usage.seen);
	assert_int_equal(r.usage.input, 30);
	assert_int_equal(r.usage.cached, 5);
	assert_int_equal(r.usage.output, 12);
	assert_summary(&r.out, true,
	               "role assistant\n"
	               "c Hello\n"
	               "c  world\n"
	               "tc0 toolu_1 function get []\n"
	               "tc0 [{\"q\":]\n"
	               "tc0 [\"a\"}]\n"
	               "fin tool_calls\n"
	               "usage 30/12/5\n"
	               "DONE\n");
	/* The exact shape of the first chunk. */
	const char *want =
	        "data: {\"id\":\"msg_1\",\"object\":\"chat.completion.chunk\",\"created\":"
	        "1700000000,\"model\":\"claude-x\",\"choices\":[{\"index\":0,\"delta\":{"
	        "\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,"
	        "\"finish_reason\":null}]}\n\n";
	assert_memory_equal(r.out.data, want, strlen(want));
	aam_buf_uninit(&r.out);

	/* Without include_usage the client gets no usage chunk. */
	run("anthropic", GW_API_OPENAI_CHAT, false, anth_stream, &r);
	assert_null(strstr(aam_buf_cstr(&r.out), "\"usage\""));
	assert_int_equal(r.usage.output, 12);
	aam_buf_uninit(&r.out);
}

static void
test_anthropic_passthrough(void **state)
{
	(void)state;
	struct run r;
	run("anthropic", GW_API_ANTHROPIC_MESSAGES, false, anth_stream, &r);
	assert_int_equal(r.finish_rc, AAM_OK);
	assert_string_equal(aam_buf_cstr(&r.out), anth_stream);
	assert_int_equal(r.usage.output, 12);
	assert_int_equal(r.usage.input, 30);
	aam_buf_uninit(&r.out);
}

#define OC(delta, fin)                                                                             \
	"data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,"         \
	"\"model\":\"gpt-x\",\"choices\":[{\"index\":0,\"delta\":" delta ",\"finish_reason\":" fin \
	"}],\"usage\":null}\n\n"
#define OUSAGE                                                                                     \
	"data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,"         \
	"\"model\":\"gpt-x\",\"choices\":[],\"usage\":{\"prompt_tokens\":40,\"completion_"         \
	"tokens\":"                                                                                \
	"9,\"total_tokens\":49,\"prompt_tokens_details\":{\"cached_tokens\":10}}}\n\n"

static const char *oai_stream = OC("{\"role\":\"assistant\",\"content\":\"\"}",
                                   "null") OC("{\"content\":\"Hi\"}", "null")
        OC("{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":"
           "{\"name\":\"get\",\"arguments\":\"\"}}]}",
           "null")
                OC("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"q\\\":\"}}]}",
                   "null")
                        OC("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"1}\"}}]}",
                           "null") OC("{\"tool_calls\":[{\"index\":1,\"id\":\"call_2\",\"type\":"
                                      "\"function\",\"function\":"
                                      "{\"name\":\"x\",\"arguments\":\"{}\"}}]}",
                                      "null") OC("{}", "\"tool_calls\"") OUSAGE "data: [DONE]\n\n";

static const char *oai_to_anth_want = "message_start chatcmpl-1\n"
                                      "start0 text\n"
                                      "delta0 Hi\n"
                                      "stop0\n"
                                      "start1 tool_use call_1 get\n"
                                      "delta1 {\"q\":\n"
                                      "delta1 1}\n"
                                      "stop1\n"
                                      "start2 tool_use call_2 x\n"
                                      "delta2 {}\n"
                                      "stop2\n"
                                      "message_delta tool_use out=9 in=30 cr=10\n"
                                      "message_stop\n";

static void
test_openai_to_anthropic_stream(void **state)
{
	(void)state;
	struct run r;
	run("openai", GW_API_ANTHROPIC_MESSAGES, false, oai_stream, &r);
	assert_int_equal(r.feed_rc, AAM_OK);
	assert_int_equal(r.finish_rc, AAM_OK);
	assert_int_equal(r.usage.input, 40);
	assert_int_equal(r.usage.cached, 10);
	assert_int_equal(r.usage.output, 9);
	assert_summary(&r.out, false, oai_to_anth_want);
	aam_buf_uninit(&r.out);

	/* A server that ends after finish_reason without usage or [DONE]. */
	const char *s = OC("{\"content\":\"a\"}", "null") OC("{}", "\"length\"");
	run("openai-compatible", GW_API_ANTHROPIC_MESSAGES, false, s, &r);
	assert_int_equal(r.finish_rc, AAM_OK);
	assert_false(r.usage.seen);
	assert_summary(&r.out, false,
	               "message_start chatcmpl-1\nstart0 text\ndelta0 a\nstop0\n"
	               "message_delta max_tokens out=0 in=0 cr=0\nmessage_stop\n");
	aam_buf_uninit(&r.out);
}

static void
test_openai_passthrough_strips_usage(void **state)
{
	(void)state;
	struct run r;
	/* Client asked for usage: bytes unchanged. */
	run("openai", GW_API_OPENAI_CHAT, true, oai_stream, &r);
	assert_int_equal(r.finish_rc, AAM_OK);
	assert_string_equal(aam_buf_cstr(&r.out), oai_stream);
	assert_int_equal(r.usage.output, 9);
	aam_buf_uninit(&r.out);
	/* Client did not: the same bytes minus the usage-only chunk. */
	run("azure", GW_API_OPENAI_CHAT, false, oai_stream, &r);
	assert_int_equal(r.finish_rc, AAM_OK);
	assert_int_equal(r.usage.output, 9);
	assert_int_equal(r.usage.input, 40);
	const char *u = strstr(oai_stream, OUSAGE);
	assert_non_null(u);
	size_t pre = (size_t)(u - oai_stream);
	assert_int_equal(r.out.len, strlen(oai_stream) - strlen(OUSAGE));
	assert_memory_equal(r.out.data, oai_stream, pre);
	assert_string_equal(aam_buf_cstr(&r.out) + pre, "data: [DONE]\n\n");
	aam_buf_uninit(&r.out);
}

static void
test_truncated_streams(void **state)
{
	(void)state;
	struct run r;
	/* Cut mid-way in each direction: finish reports AAM_E_PARSE and the
	 * client gets an error event, not a clean end. */
	size_t half = strlen(anth_stream) / 2;
	char *cut = strndup(anth_stream, half);
	run("anthropic", GW_API_OPENAI_CHAT, true, cut, &r);
	assert_int_equal(r.feed_rc, AAM_OK);
	assert_int_equal(r.finish_rc, AAM_E_PARSE);
	assert_non_null(strstr(aam_buf_cstr(&r.out), "\"error\""));
	assert_true(r.usage.seen); /* input usage from message_start still counts */
	aam_buf_uninit(&r.out);
	run("anthropic", GW_API_ANTHROPIC_MESSAGES, true, cut, &r);
	assert_int_equal(r.finish_rc, AAM_E_PARSE);
	assert_non_null(strstr(aam_buf_cstr(&r.out), "event: error\n"));
	aam_buf_uninit(&r.out);
	free(cut);
	cut = strndup(oai_stream, strlen(oai_stream) / 2);
	run("openai", GW_API_ANTHROPIC_MESSAGES, true, cut, &r);
	assert_int_equal(r.finish_rc, AAM_E_PARSE);
	assert_non_null(strstr(aam_buf_cstr(&r.out), "event: error\n"));
	assert_null(strstr(aam_buf_cstr(&r.out), "message_stop"));
	aam_buf_uninit(&r.out);
	run("openai", GW_API_OPENAI_CHAT, false, cut, &r);
	assert_int_equal(r.finish_rc, AAM_E_PARSE);
	aam_buf_uninit(&r.out);
	free(cut);
	/* Empty stream. */
	run("openai", GW_API_OPENAI_CHAT, true, "", &r);
	assert_int_equal(r.finish_rc, AAM_E_PARSE);
	aam_buf_uninit(&r.out);
}

static void
test_hostile_streams(void **state)
{
	(void)state;
	struct run r;
	/* Not JSON. */
	run("anthropic", GW_API_OPENAI_CHAT, true, "event: x\ndata: {nope\n\n", &r);
	assert_int_equal(r.feed_rc, AAM_E_PARSE);
	assert_int_equal(r.finish_rc, AAM_E_PARSE);
	aam_buf_uninit(&r.out);
	/* Invalid UTF-8 inside JSON. */
	run("openai", GW_API_ANTHROPIC_MESSAGES, true, "data: {\"a\":\"\xff\xfe\"}\n\n", &r);
	assert_int_equal(r.feed_rc, AAM_E_PARSE);
	aam_buf_uninit(&r.out);
	/* A tool call that comes back after another began. */
	const char *s = OC("{\"tool_calls\":[{\"index\":0,\"id\":\"a\",\"function\":{\"name\":"
	                   "\"f\",\"arguments\":\"\"}}]}",
	                   "null")
	        OC("{\"tool_calls\":[{\"index\":1,\"id\":\"b\",\"function\":{\"name\":\"g\","
	           "\"arguments\":\"\"}}]}",
	           "null")
	                OC("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{}\"}}]}",
	                   "null");
	run("openai", GW_API_ANTHROPIC_MESSAGES, true, s, &r);
	assert_int_equal(r.feed_rc, AAM_E_PROTO);
	assert_int_equal(r.finish_rc, AAM_E_PROTO);
	aam_buf_uninit(&r.out);
	/* Upstream error event mid-stream. */
	const char *e =
	        AEV("message_start", "{\"type\":\"message_start\",\"message\":{\"id\":"
	                             "\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":1}}}")
	                AEV("error", "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
	                             "\"message\":\"Overloaded\"}}");
	run("anthropic", GW_API_OPENAI_CHAT, true, e, &r);
	assert_int_equal(r.finish_rc, AAM_E_PROTO);
	assert_summary(&r.out, true, "role assistant\nERROR\nDONE\n");
	assert_non_null(strstr(aam_buf_cstr(&r.out), "Overloaded"));
	aam_buf_uninit(&r.out);

	/* An endless line: an error, bounded memory, no crash. */
	struct gw_deployment d = dep("openai");
	struct gw_xlate *x;
	assert_int_equal(gw_xlate_new(&d, GW_API_ANTHROPIC_MESSAGES, true, &x), AAM_OK);
	struct aam_buf out;
	aam_buf_init(&out, 0);
	static uint8_t junk[64 * 1024];
	memset(junk, 'x', sizeof(junk));
	int rc = AAM_OK;
	size_t fed = 0;
	while (rc == AAM_OK && fed < 4 * GW_SSE_MAX_LINE) {
		rc = gw_xlate_feed(x, junk, sizeof(junk), &out);
		fed += sizeof(junk);
	}
	assert_int_equal(rc, AAM_E_TOOBIG);
	assert_true(fed <= GW_SSE_MAX_LINE + sizeof(junk));
	assert_int_equal(gw_xlate_feed(x, junk, 1, &out), AAM_E_TOOBIG);
	assert_int_equal(gw_xlate_finish(x, &out), AAM_E_TOOBIG);
	assert_non_null(strstr(aam_buf_cstr(&out), "event: error"));
	gw_xlate_free(x);
	aam_buf_uninit(&out);

	/* Bad arguments. */
	assert_int_equal(gw_xlate_new(&d, GW_API_OPENAI_EMBEDDINGS, true, &x), AAM_E_INVAL);
	d.provider = "nope";
	assert_int_equal(gw_xlate_new(&d, GW_API_OPENAI_CHAT, true, &x), AAM_E_INVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_anthropic_to_openai_stream),
	        cmocka_unit_test(test_anthropic_passthrough),
	        cmocka_unit_test(test_openai_to_anthropic_stream),
	        cmocka_unit_test(test_openai_passthrough_strips_usage),
	        cmocka_unit_test(test_truncated_streams),
	        cmocka_unit_test(test_hostile_streams),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
