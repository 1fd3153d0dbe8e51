/* Non-stream response translation, usage, stop reasons and error messages. */
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

static struct gw_deployment
dep(char *provider)
{
	struct gw_deployment d = {0};
	d.id = "r#0";
	d.provider = provider;
	d.model = "m";
	d.api_base = "https://h";
	return d;
}

static json_t *
respond(char *provider, enum gw_api api, const char *body, struct gw_usage *u, int want_rc)
{
	struct gw_deployment d = dep(provider);
	struct aam_buf out;
	aam_buf_init(&out, 0);
	int rc = gw_provider_response(&d, api, (const uint8_t *)body, strlen(body), &out, u);
	assert_int_equal(rc, want_rc);
	json_t *j = rc == AAM_OK ? json_loads(aam_buf_cstr(&out), 0, NULL) : NULL;
	if (rc == AAM_OK)
		assert_non_null(j);
	aam_buf_uninit(&out);
	return j;
}

static const char *anth_resp =
        "{\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x\","
        "\"content\":[{\"type\":\"thinking\",\"thinking\":\"hm\",\"signature\":\"s\"},"
        "{\"type\":\"text\",\"text\":\"Hello \"},{\"type\":\"text\",\"text\":\"there\"},"
        "{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get\",\"input\":{\"q\":\"a\"}}],"
        "\"stop_reason\":\"tool_use\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":10,"
        "\"cache_read_input_tokens\":90,\"cache_creation_input_tokens\":0,\"output_tokens\":5}}";

static void
test_anthropic_to_openai(void **state)
{
	(void)state;
	struct gw_usage u;
	json_t *j = respond("anthropic", GW_API_OPENAI_CHAT, anth_resp, &u, AAM_OK);
	assert_true(u.seen);
	assert_int_equal(u.input, 100);
	assert_int_equal(u.cached, 90);
	assert_int_equal(u.output, 5);
	assert_string_equal(gw_json_str(j, "object"), "chat.completion");
	assert_string_equal(gw_json_str(j, "id"), "msg_01");
	assert_string_equal(gw_json_str(j, "model"), "claude-x");
	assert_true(json_is_integer(json_object_get(j, "created")));
	json_t *c0 = json_array_get(json_object_get(j, "choices"), 0);
	assert_string_equal(gw_json_str(c0, "finish_reason"), "tool_calls");
	assert_int_equal(json_integer_value(json_object_get(c0, "index")), 0);
	json_t *m = json_object_get(c0, "message");
	assert_string_equal(gw_json_str(m, "role"), "assistant");
	assert_string_equal(gw_json_str(m, "content"), "Hello there");
	json_t *tc = json_array_get(json_object_get(m, "tool_calls"), 0);
	assert_string_equal(gw_json_str(tc, "id"), "toolu_1");
	assert_string_equal(gw_json_str(tc, "type"), "function");
	assert_string_equal(gw_json_str(json_object_get(tc, "function"), "arguments"),
	                    "{\"q\":\"a\"}");
	json_t *us = json_object_get(j, "usage");
	assert_int_equal(gw_json_int(us, "prompt_tokens"), 100);
	assert_int_equal(gw_json_int(us, "completion_tokens"), 5);
	assert_int_equal(gw_json_int(us, "total_tokens"), 105);
	assert_int_equal(gw_json_int(json_object_get(us, "prompt_tokens_details"), "cached_tokens"),
	                 90);
	json_decref(j);
	/* Bedrock answers in the Anthropic shape too. */
	j = respond("bedrock", GW_API_OPENAI_CHAT, anth_resp, &u, AAM_OK);
	assert_int_equal(u.output, 5);
	json_decref(j);
}

static void
test_stop_reason_maps(void **state)
{
	(void)state;
	const char *pairs[][2] = {{"end_turn", "stop"},
	                          {"stop_sequence", "stop"},
	                          {"max_tokens", "length"},
	                          {"tool_use", "tool_calls"},
	                          {"refusal", "content_filter"}};
	for (size_t i = 0; i < 5; i++)
		assert_string_equal(gw_finish_from_stop(pairs[i][0]), pairs[i][1]);
	assert_string_equal(gw_stop_from_finish("stop"), "end_turn");
	assert_string_equal(gw_stop_from_finish("length"), "max_tokens");
	assert_string_equal(gw_stop_from_finish("tool_calls"), "tool_use");
	assert_string_equal(gw_stop_from_finish("content_filter"), "refusal");
	assert_string_equal(gw_stop_from_finish(NULL), "end_turn");
}

static const char *oai_resp =
        "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"gpt-x\","
        "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hi\","
        "\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":"
        "\"get\",\"arguments\":\"{\\\"q\\\":2}\"}},{\"id\":\"call_2\",\"type\":\"function\","
        "\"function\":{\"name\":\"bad\",\"arguments\":\"not json\"}}]},\"finish_reason\":"
        "\"tool_calls\"}],\"usage\":{\"prompt_tokens\":50,\"completion_tokens\":7,"
        "\"total_tokens\":57,\"prompt_tokens_details\":{\"cached_tokens\":20}}}";

static void
test_openai_to_anthropic(void **state)
{
	(void)state;
	struct gw_usage u;
	json_t *j = respond("azure", GW_API_ANTHROPIC_MESSAGES, oai_resp, &u, AAM_OK);
	assert_int_equal(u.input, 50);
	assert_int_equal(u.cached, 20);
	assert_int_equal(u.output, 7);
	json_t *want = json_loads(
	        "{\"id\":\"chatcmpl-1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":"
	        "\"gpt-x\",\"content\":[{\"type\":\"text\",\"text\":\"Hi\"},{\"type\":\"tool_use\","
	        "\"id\":\"call_1\",\"name\":\"get\",\"input\":{\"q\":2}},{\"type\":\"tool_use\","
	        "\"id\":\"call_2\",\"name\":\"bad\",\"input\":{}}],\"stop_reason\":\"tool_use\","
	        "\"stop_sequence\":null,\"usage\":{\"input_tokens\":30,"
	        "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":20,"
	        "\"output_tokens\":7}}",
	        0, NULL);
	assert_true(json_equal(j, want));
	json_decref(want);
	json_decref(j);
}

static void
test_same_api_passthrough(void **state)
{
	(void)state;
	struct gw_deployment d = dep("openai");
	struct aam_buf out;
	aam_buf_init(&out, 0);
	struct gw_usage u;
	assert_int_equal(gw_provider_response(&d, GW_API_OPENAI_CHAT, (const uint8_t *)oai_resp,
	                                      strlen(oai_resp), &out, &u),
	                 AAM_OK);
	assert_string_equal(aam_buf_cstr(&out), oai_resp);
	assert_int_equal(u.input, 50);
	aam_buf_reset(&out);
	const char *emb = "{\"object\":\"list\",\"data\":[],\"usage\":{\"prompt_tokens\":8,"
	                  "\"total_tokens\":8}}";
	assert_int_equal(gw_provider_response(&d, GW_API_OPENAI_EMBEDDINGS, (const uint8_t *)emb,
	                                      strlen(emb), &out, &u),
	                 AAM_OK);
	assert_int_equal(u.input, 8);
	assert_string_equal(aam_buf_cstr(&out), emb);
	aam_buf_reset(&out);
	d = dep("anthropic");
	assert_int_equal(gw_provider_response(&d, GW_API_ANTHROPIC_MESSAGES,
	                                      (const uint8_t *)anth_resp, strlen(anth_resp), &out,
	                                      &u),
	                 AAM_OK);
	assert_string_equal(aam_buf_cstr(&out), anth_resp);
	assert_int_equal(u.cached, 90);
	aam_buf_uninit(&out);
}

static void
test_bad_bodies(void **state)
{
	(void)state;
	struct gw_usage u;
	respond("anthropic", GW_API_OPENAI_CHAT, "{\"content\":", &u, AAM_E_PARSE);
	respond("anthropic", GW_API_OPENAI_CHAT, "[1]", &u, AAM_E_PARSE);
	respond("anthropic", GW_API_OPENAI_CHAT, "{\"content\":\"x\"}", &u, AAM_E_PARSE);
	respond("openai", GW_API_ANTHROPIC_MESSAGES, "{\"choices\":[]}", &u, AAM_E_PARSE);
	respond("openai", GW_API_ANTHROPIC_MESSAGES, "\xff\xfe", &u, AAM_E_PARSE);
	assert_false(u.seen);
	respond("anthropic", GW_API_OPENAI_EMBEDDINGS, "{}", &u, AAM_E_INVAL);
}

static void
test_error_messages(void **state)
{
	(void)state;
	char m[64];
	struct {
		const char *body, *want;
	} cases[] = {
	        {"{\"error\":{\"message\":\"Rate limit\",\"type\":\"x\"}}", "Rate limit"},
	        {"{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
	         "\"Overloaded\"}}",
	         "Overloaded"},
	        {"{\"message\":\"Throttled\"}", "Throttled"},
	        {"{\"Message\":\"Denied\"}", "Denied"},
	        {"{\"error\":\"model not found\"}", "model not found"},
	        {"{\"detail\":\"bad\\nline\"}", "bad line"},
	        {"<html>502</html>", "upstream status 502"},
	        {"", "upstream status 502"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		gw_provider_error_message(502, (const uint8_t *)cases[i].body,
		                          strlen(cases[i].body), m, sizeof(m));
		assert_string_equal(m, cases[i].want);
	}
	/* Truncated to the buffer. */
	char small[5];
	gw_provider_error_message(500, (const uint8_t *)cases[0].body, strlen(cases[0].body), small,
	                          sizeof(small));
	assert_string_equal(small, "Rate");
	/* Truncation never leaves half a UTF-8 character. */
	const char *u8 = "{\"error\":{\"message\":\"\u00e9\u00e9\u00e9\"}}";
	gw_provider_error_message(500, (const uint8_t *)u8, strlen(u8), small, sizeof(small));
	assert_string_equal(small, "\xc3\xa9\xc3\xa9");
	char four[4];
	gw_provider_error_message(500, (const uint8_t *)u8, strlen(u8), four, sizeof(four));
	assert_string_equal(four, "\xc3\xa9");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_anthropic_to_openai),
	        cmocka_unit_test(test_stop_reason_maps),
	        cmocka_unit_test(test_openai_to_anthropic),
	        cmocka_unit_test(test_same_api_passthrough),
	        cmocka_unit_test(test_bad_bodies),
	        cmocka_unit_test(test_error_messages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
