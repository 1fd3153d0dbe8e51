/* AWS event-stream framing and Bedrock stream translation. */
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
#include "gateway/provider.h"
#include "gateway/provider_int.h"

static void
test_crc32_vector(void **state)
{
	(void)state;
	assert_int_equal(gw_crc32(0, "123456789", 9), 0xCBF43926u);
	assert_int_equal(gw_crc32(0, "", 0), 0);
	/* Incremental equals one-shot. */
	assert_int_equal(gw_crc32(gw_crc32(0, "1234", 4), "56789", 5), 0xCBF43926u);
}

/* Appends one Bedrock "chunk" event carrying Anthropic event JSON EV. */
static void
chunk(struct aam_buf *out, const char *ev)
{
	struct aam_buf p;
	aam_buf_init(&p, 0);
	aam_buf_append_str(&p, "{\"bytes\":\"");
	aam_b64_encode_buf(&p, ev, strlen(ev), AAM_B64_STD);
	aam_buf_append_str(&p, "\"}");
	assert_int_equal(gw_evstream_encode(out, "event", "chunk", p.data, p.len), AAM_OK);
	aam_buf_uninit(&p);
}

struct seen {
	int n;
	char mtype[32], etype[32];
	char payload[256];
};

static int
seen_cb(void *ctx, const char *m, const char *e, const uint8_t *p, size_t n)
{
	struct seen *s = ctx;
	s->n++;
	snprintf(s->mtype, sizeof(s->mtype), "%s", m);
	snprintf(s->etype, sizeof(s->etype), "%s", e);
	snprintf(s->payload, sizeof(s->payload), "%.*s", (int)n, (const char *)p);
	return AAM_OK;
}

static void
test_frames_and_crc(void **state)
{
	(void)state;
	struct aam_buf b;
	aam_buf_init(&b, 0);
	assert_int_equal(gw_evstream_encode(&b, "event", "chunk", (const uint8_t *)"{\"a\":1}", 7),
	                 AAM_OK);
	size_t one = b.len;
	assert_int_equal(gw_evstream_encode(&b, "exception", "throttlingException",
	                                    (const uint8_t *)"{}", 2),
	                 AAM_OK);
	/* Whole and bytewise. */
	for (int pass = 0; pass < 2; pass++) {
		struct seen s = {0};
		struct gw_evstream e;
		gw_evstream_init(&e, seen_cb, &s);
		if (pass == 0) {
			assert_int_equal(gw_evstream_feed(&e, b.data, one), AAM_OK);
		} else {
			for (size_t i = 0; i < one; i++)
				assert_int_equal(gw_evstream_feed(&e, b.data + i, 1), AAM_OK);
		}
		assert_int_equal(s.n, 1);
		assert_string_equal(s.mtype, "event");
		assert_string_equal(s.etype, "chunk");
		assert_string_equal(s.payload, "{\"a\":1}");
		assert_int_equal(gw_evstream_feed(&e, b.data + one, b.len - one), AAM_OK);
		assert_string_equal(s.mtype, "exception");
		assert_string_equal(s.etype, "throttlingException");
		assert_int_equal(gw_evstream_finish(&e), AAM_OK);
		gw_evstream_uninit(&e);
	}
	/* Every single-bit flip in the first message is caught by a CRC or a
	 * length check; none is delivered. */
	for (size_t i = 0; i < one; i++) {
		struct seen s = {0};
		struct gw_evstream e;
		gw_evstream_init(&e, seen_cb, &s);
		b.data[i] ^= 0x10;
		int rc = gw_evstream_feed(&e, b.data, one);
		if (rc == AAM_OK)
			rc = gw_evstream_finish(&e);
		b.data[i] ^= 0x10;
		assert_int_not_equal(rc, AAM_OK);
		assert_int_equal(s.n, 0);
		gw_evstream_uninit(&e);
	}
	/* Truncated, and an absurd length. */
	struct seen s = {0};
	struct gw_evstream e;
	gw_evstream_init(&e, seen_cb, &s);
	assert_int_equal(gw_evstream_feed(&e, b.data, one - 1), AAM_OK);
	assert_int_equal(gw_evstream_finish(&e), AAM_E_PARSE);
	gw_evstream_uninit(&e);
	uint8_t big[12] = {0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0};
	uint32_t c = gw_crc32(0, big, 8);
	big[8] = (uint8_t)(c >> 24);
	big[9] = (uint8_t)(c >> 16);
	big[10] = (uint8_t)(c >> 8);
	big[11] = (uint8_t)c;
	gw_evstream_init(&e, seen_cb, &s);
	assert_int_equal(gw_evstream_feed(&e, big, sizeof(big)), AAM_E_TOOBIG);
	gw_evstream_uninit(&e);
	aam_buf_uninit(&b);
}

static const char *events[] = {
        "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_b\",\"type\":\"message\",\"role\":"
        "\"assistant\",\"model\":\"claude-b\",\"content\":[],\"stop_reason\":null,"
        "\"stop_sequence\":null,\"usage\":{\"input_tokens\":11,\"output_tokens\":1}}}",
        "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\","
        "\"id\":\"toolu_b\",\"name\":\"f\",\"input\":{}}}",
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\","
        "\"partial_json\":\"{\\\"x\\\":1}\"}}",
        "{\"type\":\"content_block_stop\",\"index\":0}",
        "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":"
        "null},\"usage\":{\"output_tokens\":6}}",
        "{\"type\":\"message_stop\",\"amazon-bedrock-invocationMetrics\":{\"inputTokenCount\":11}}",
};

static void
xlate(enum gw_api api, const struct aam_buf *in, size_t step, struct aam_buf *out, int *feed_rc,
      int *fin_rc, struct gw_usage *u)
{
	struct gw_deployment d = {
	        .id = "b#0", .provider = "bedrock", .model = "anthropic.c", .region = "us-east-1"};
	struct gw_xlate *x;
	assert_int_equal(gw_xlate_new(&d, api, true, &x), AAM_OK);
	gw_xlate_set_created(x, 5);
	aam_buf_init(out, 0);
	*feed_rc = AAM_OK;
	for (size_t i = 0; i < in->len && *feed_rc == AAM_OK; i += step)
		*feed_rc = gw_xlate_feed(x, in->data + i, in->len - i < step ? in->len - i : step,
		                         out);
	*fin_rc = gw_xlate_finish(x, out);
	gw_xlate_usage(x, u);
	gw_xlate_free(x);
}

static void
test_bedrock_stream(void **state)
{
	(void)state;
	struct aam_buf in;
	aam_buf_init(&in, 0);
	for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
		chunk(&in, events[i]);

	struct aam_buf a, b;
	int frc, src;
	struct gw_usage u;
	/* To an Anthropic client: the same events as SSE, Bedrock's extra field dropped. */
	xlate(GW_API_ANTHROPIC_MESSAGES, &in, in.len, &a, &frc, &src, &u);
	assert_int_equal(frc, AAM_OK);
	assert_int_equal(src, AAM_OK);
	assert_int_equal(u.input, 11);
	assert_int_equal(u.output, 6);
	assert_non_null(strstr(aam_buf_cstr(&a),
	                       "event: message_start\ndata: {\"type\":"
	                       "\"message_start\",\"message\":{\"id\":\"msg_b\""));
	assert_non_null(strstr(aam_buf_cstr(&a), "event: message_stop\ndata: "
	                                         "{\"type\":\"message_stop\"}\n\n"));
	assert_null(strstr(aam_buf_cstr(&a), "invocationMetrics"));
	xlate(GW_API_ANTHROPIC_MESSAGES, &in, 1, &b, &frc, &src, &u);
	assert_string_equal(aam_buf_cstr(&a), aam_buf_cstr(&b));
	aam_buf_uninit(&a);
	aam_buf_uninit(&b);

	/* To an OpenAI client: a tool-call chunk sequence. */
	xlate(GW_API_OPENAI_CHAT, &in, in.len, &a, &frc, &src, &u);
	assert_int_equal(src, AAM_OK);
	const char *s = aam_buf_cstr(&a);
	assert_non_null(strstr(s, "\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"toolu_b\","
	                          "\"type\":\"function\",\"function\":{\"name\":\"f\","
	                          "\"arguments\":\"\"}}]}"));
	assert_non_null(strstr(s, "\"finish_reason\":\"tool_calls\""));
	assert_non_null(strstr(s, "\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":6"));
	assert_true(a.len > 14 && strcmp(s + a.len - 14, "data: [DONE]\n\n") == 0);
	xlate(GW_API_OPENAI_CHAT, &in, 1, &b, &frc, &src, &u);
	assert_string_equal(aam_buf_cstr(&a), aam_buf_cstr(&b));
	aam_buf_uninit(&a);
	aam_buf_uninit(&b);

	/* A corrupted byte in the middle: an error, never a clean end. */
	in.data[in.len / 2] ^= 1;
	xlate(GW_API_OPENAI_CHAT, &in, in.len, &a, &frc, &src, &u);
	assert_int_equal(frc, AAM_E_PARSE);
	assert_int_equal(src, AAM_E_PARSE);
	assert_null(strstr(aam_buf_cstr(&a), "[DONE]\n\ndata"));
	aam_buf_uninit(&a);
	in.data[in.len / 2] ^= 1;

	/* An exception frame after the start. */
	aam_buf_reset(&in);
	chunk(&in, events[0]);
	gw_evstream_encode(&in, "exception", "modelStreamErrorException",
	                   (const uint8_t *)"{\"message\":\"boom\"}", 18);
	xlate(GW_API_ANTHROPIC_MESSAGES, &in, in.len, &a, &frc, &src, &u);
	assert_int_equal(src, AAM_E_PROTO);
	assert_non_null(strstr(aam_buf_cstr(&a), "event: error\n"));
	assert_non_null(strstr(aam_buf_cstr(&a), "modelStreamErrorException: boom"));
	aam_buf_uninit(&a);

	/* A chunk whose bytes are not base64. */
	aam_buf_reset(&in);
	gw_evstream_encode(&in, "event", "chunk", (const uint8_t *)"{\"bytes\":\"!!\"}", 14);
	xlate(GW_API_OPENAI_CHAT, &in, in.len, &a, &frc, &src, &u);
	assert_int_equal(frc, AAM_E_PARSE);
	aam_buf_uninit(&a);
	aam_buf_uninit(&in);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_crc32_vector),
	        cmocka_unit_test(test_frames_and_crc),
	        cmocka_unit_test(test_bedrock_stream),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
