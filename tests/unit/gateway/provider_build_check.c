/* Upstream requests per provider (URL, headers, body) and request translation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "aam/err.h"
#include "gateway/provider.h"
#include "gateway/provider_int.h"

static struct gw_deployment
dep(char *provider, char *model, char *base)
{
	struct gw_deployment d = {0};
	d.id = "r#0";
	d.provider = provider;
	d.model = model;
	d.api_base = base;
	d.weight = 1;
	return d;
}

static json_t *
js(const char *s)
{
	json_error_t e;
	json_t *j = json_loads(s, 0, &e);
	if (!j)
		fail_msg("bad test JSON: %s", e.text);
	return j;
}

static const char *
hdr(const struct gw_upstream *u, const char *name)
{
	for (size_t i = 0; i < u->nheaders; i++)
		if (strcmp(u->headers[i].name, name) == 0)
			return u->headers[i].value;
	return NULL;
}

/* Builds and returns the parsed upstream body (caller decrefs). */
static json_t *
build(const struct gw_deployment *d, enum gw_api api, const char *body, bool stream, int64_t cap,
      struct gw_upstream *u)
{
	json_t *b = js(body);
	char err[256];
	int rc = gw_provider_build(d, api, b, stream, cap, u, err, sizeof(err));
	json_decref(b);
	if (rc != AAM_OK)
		fail_msg("build failed: %d %s", rc, err);
	return js(aam_buf_cstr(&u->body));
}

static int
build_err(const struct gw_deployment *d, enum gw_api api, const char *body, char *err,
          size_t errlen)
{
	json_t *b = js(body);
	struct gw_upstream u;
	int rc = gw_provider_build(d, api, b, false, 0, &u, err, errlen);
	json_decref(b);
	gw_upstream_free(&u);
	return rc;
}

static void
assert_json_eq(const json_t *got, const char *want)
{
	json_t *w = js(want);
	if (!json_equal(got, w)) {
		char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
		char *ws = json_dumps(w, JSON_SORT_KEYS | JSON_COMPACT);
		print_error("got  %s\nwant %s\n", g, ws);
		free(g);
		free(ws);
		json_decref(w);
		fail();
	}
	json_decref(w);
}

static const char *chat =
        "{\"model\":\"route\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";

static void
test_openai_urls(void **state)
{
	(void)state;
	struct gw_upstream u;
	struct {
		char *prov, *base;
		const char *url;
	} cases[] = {
	        {"openai", NULL, "https://api.openai.com/v1/chat/completions"},
	        {"openai", "https://api.openai.com/v1/",
	         "https://api.openai.com/v1/chat/completions"},
	        {"openai-compatible", "http://127.0.0.1:8000",
	         "http://127.0.0.1:8000/v1/chat/completions"},
	        {"openai-compatible", "http://litellm:4000/v1",
	         "http://litellm:4000/v1/chat/completions"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct gw_deployment d = dep(cases[i].prov, "gpt-4o", cases[i].base);
		json_t *b = build(&d, GW_API_OPENAI_CHAT, chat, false, 0, &u);
		assert_string_equal(u.url, cases[i].url);
		assert_string_equal(u.method, "POST");
		assert_string_equal(hdr(&u, "content-type"), "application/json");
		assert_string_equal(hdr(&u, "accept"), "application/json");
		assert_null(hdr(&u, "authorization"));
		assert_null(hdr(&u, "x-api-key"));
		assert_string_equal(gw_json_str(b, "model"), "gpt-4o");
		assert_null(json_object_get(b, "stream"));
		json_decref(b);
		gw_upstream_free(&u);
	}
	struct gw_deployment d = dep("azure", "my deploy", "https://x.openai.azure.com");
	d.api_version = "2024-06-01";
	json_t *b = build(&d, GW_API_OPENAI_CHAT, chat, false, 0, &u);
	assert_string_equal(u.url, "https://x.openai.azure.com/openai/deployments/my%20deploy/"
	                           "chat/completions?api-version=2024-06-01");
	json_decref(b);
	gw_upstream_free(&u);
	b = build(&d, GW_API_OPENAI_EMBEDDINGS, "{\"input\":\"x\",\"model\":\"e\"}", true, 0, &u);
	assert_string_equal(u.url, "https://x.openai.azure.com/openai/deployments/my%20deploy/"
	                           "embeddings?api-version=2024-06-01");
	assert_false(u.stream);
	json_decref(b);
	gw_upstream_free(&u);

	d = dep("openai-compatible", "m", NULL);
	char err[256];
	assert_int_equal(build_err(&d, GW_API_OPENAI_CHAT, chat, err, sizeof(err)), AAM_E_INVAL);
	assert_non_null(strstr(err, "api_base"));
	d = dep("openai-compatible", "m", "ftp://x");
	assert_int_equal(build_err(&d, GW_API_OPENAI_CHAT, chat, err, sizeof(err)), AAM_E_INVAL);
	d = dep("mistral", "m", "https://x");
	assert_int_equal(build_err(&d, GW_API_OPENAI_CHAT, chat, err, sizeof(err)), AAM_E_INVAL);
	assert_non_null(strstr(err, "unknown provider"));
}

static void
test_openai_stream_forces_usage_and_caps(void **state)
{
	(void)state;
	struct gw_upstream u;
	struct gw_deployment d = dep("openai", "gpt-4o", NULL);
	json_t *b = build(&d, GW_API_OPENAI_CHAT,
	                  "{\"model\":\"r\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
	                  "\"max_tokens\":9000,\"stream\":true,\"stream_options\":{\"x\":1}}",
	                  true, 100, &u);
	assert_true(u.stream);
	assert_string_equal(hdr(&u, "accept"), "text/event-stream");
	assert_true(json_is_true(json_object_get(b, "stream")));
	assert_json_eq(json_object_get(b, "stream_options"), "{\"x\":1,\"include_usage\":true}");
	assert_int_equal(gw_json_int(b, "max_tokens"), 100);
	json_decref(b);
	gw_upstream_free(&u);
	/* No max given: the cap is added under OpenAI's current name. */
	b = build(&d, GW_API_OPENAI_CHAT, chat, false, 50, &u);
	assert_int_equal(gw_json_int(b, "max_completion_tokens"), 50);
	json_decref(b);
	gw_upstream_free(&u);
}

static void
test_anthropic_and_bedrock(void **state)
{
	(void)state;
	struct gw_upstream u;
	struct gw_deployment d = dep("anthropic", "claude-sonnet-4-5", NULL);
	const char *msg = "{\"model\":\"r\",\"max_tokens\":10000,\"stream\":false,\"messages\":"
	                  "[{\"role\":\"user\",\"content\":\"hi\"}]}";
	json_t *b = build(&d, GW_API_ANTHROPIC_MESSAGES, msg, true, 2000, &u);
	assert_string_equal(u.url, "https://api.anthropic.com/v1/messages");
	assert_string_equal(hdr(&u, "anthropic-version"), "2023-06-01");
	assert_string_equal(hdr(&u, "accept"), "text/event-stream");
	assert_null(hdr(&u, "x-api-key"));
	assert_json_eq(b, "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":2000,\"stream\":true,"
	                  "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
	json_decref(b);
	gw_upstream_free(&u);

	/* Bedrock: model id escaped into the path, no model/stream in the body. */
	d = dep("bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0", NULL);
	d.region = "eu-west-1";
	b = build(&d, GW_API_ANTHROPIC_MESSAGES, msg, false, 0, &u);
	assert_string_equal(u.url, "https://bedrock-runtime.eu-west-1.amazonaws.com/model/"
	                           "anthropic.claude-3-5-sonnet-20240620-v1%3A0/invoke");
	assert_json_eq(b, "{\"anthropic_version\":\"bedrock-2023-05-31\",\"max_tokens\":10000,"
	                  "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
	assert_null(hdr(&u, "anthropic-version"));
	json_decref(b);
	gw_upstream_free(&u);
	d.api_base = "https://vpce.example";
	b = build(&d, GW_API_OPENAI_CHAT, chat, true, 0, &u);
	assert_string_equal(u.url, "https://vpce.example/model/"
	                           "anthropic.claude-3-5-sonnet-20240620-v1%3A0/"
	                           "invoke-with-response-stream");
	assert_string_equal(hdr(&u, "accept"), "application/vnd.amazon.eventstream");
	assert_null(json_object_get(b, "stream"));
	assert_null(json_object_get(b, "model"));
	assert_int_equal(gw_json_int(b, "max_tokens"), GW_DEFAULT_MAX_TOKENS);
	json_decref(b);
	gw_upstream_free(&u);

	char err[256];
	d.api_base = NULL;
	d.region = NULL;
	assert_int_equal(build_err(&d, GW_API_OPENAI_CHAT, chat, err, sizeof(err)), AAM_E_INVAL);
	d = dep("anthropic", "c", NULL);
	assert_int_equal(
	        build_err(&d, GW_API_OPENAI_EMBEDDINGS, "{\"input\":\"x\"}", err, sizeof(err)),
	        AAM_E_INVAL);
	assert_non_null(strstr(err, "embeddings are not supported"));
}

static void
test_openai_to_anthropic_translation(void **state)
{
	(void)state;
	struct gw_upstream u;
	struct gw_deployment d = dep("anthropic", "claude", NULL);
	json_t *b = build(
	        &d, GW_API_OPENAI_CHAT,
	        "{\"model\":\"r\",\"user\":\"u1\",\"temperature\":1.5,\"top_p\":0.5,\"stop\":"
	        "\"END\","
	        "\"max_completion_tokens\":300,\"parallel_tool_calls\":false,"
	        "\"tool_choice\":\"required\",\"frequency_penalty\":0.1,"
	        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get\",\"description\":"
	        "\"Get it\",\"parameters\":{\"type\":\"object\",\"properties\":{\"q\":{\"type\":"
	        "\"string\"}}}}},{\"type\":\"function\",\"function\":{\"name\":\"noargs\"}}],"
	        "\"messages\":["
	        "{\"role\":\"system\",\"content\":\"Be brief.\"},"
	        "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"No lies.\"}]},"
	        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"look\"},"
	        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBO\"}},"
	        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x/y.png\"}}]},"
	        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
	        "{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"get\","
	        "\"arguments\":\"{\\\"q\\\":\\\"a\\\"}\"}},"
	        "{\"id\":\"c2\",\"type\":\"function\",\"function\":{\"name\":\"noargs\","
	        "\"arguments\":\"\"}}]},"
	        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"A\"},"
	        "{\"role\":\"tool\",\"tool_call_id\":\"c2\",\"content\":[{\"type\":\"text\","
	        "\"text\":\"B\"}]},"
	        "{\"role\":\"user\",\"content\":\"thanks\"}]}",
	        false, 0, &u);
	assert_json_eq(
	        b,
	        "{\"model\":\"claude\",\"max_tokens\":300,\"temperature\":1.0,\"top_p\":0.5,"
	        "\"stop_sequences\":[\"END\"],\"metadata\":{\"user_id\":\"u1\"},"
	        "\"system\":\"Be brief.\\n\\nNo lies.\","
	        "\"tool_choice\":{\"type\":\"any\",\"disable_parallel_tool_use\":true},"
	        "\"tools\":[{\"name\":\"get\",\"description\":\"Get "
	        "it\",\"input_schema\":{\"type\":"
	        "\"object\",\"properties\":{\"q\":{\"type\":\"string\"}}}},{\"name\":\"noargs\","
	        "\"input_schema\":{\"type\":\"object\",\"properties\":{}}}],"
	        "\"messages\":["
	        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"look\"},"
	        "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\","
	        "\"data\":\"iVBO\"}},{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":"
	        "\"https://x/y.png\"}}]},"
	        "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"c1\","
	        "\"name\":"
	        "\"get\",\"input\":{\"q\":\"a\"}},{\"type\":\"tool_use\",\"id\":\"c2\",\"name\":"
	        "\"noargs\",\"input\":{}}]},"
	        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"c1\","
	        "\"content\":\"A\"},{\"type\":\"tool_result\",\"tool_use_id\":\"c2\",\"content\":"
	        "\"B\"}]},"
	        "{\"role\":\"user\",\"content\":\"thanks\"}]}");
	json_decref(b);
	gw_upstream_free(&u);

	/* tool_choice forms */
	b = build(&d, GW_API_OPENAI_CHAT,
	          "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":{\"type\":"
	          "\"function\",\"function\":{\"name\":\"get\"}}}",
	          false, 0, &u);
	assert_json_eq(json_object_get(b, "tool_choice"), "{\"type\":\"tool\",\"name\":\"get\"}");
	json_decref(b);
	gw_upstream_free(&u);
}

static void
test_openai_unsupported_refused(void **state)
{
	(void)state;
	struct gw_deployment d = dep("anthropic", "claude", NULL);
	char err[256];
	const char *bad[] = {
	        "{\"n\":2,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
	        "{\"logprobs\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
	        "{\"audio\":{\"voice\":\"a\"},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]"
	        "}",
	        "{\"modalities\":[\"text\",\"audio\"],\"messages\":[{\"role\":\"user\",\"content\":"
	        "\"x\"}]}",
	        "{\"response_format\":{\"type\":\"json_object\"},\"messages\":[{\"role\":\"user\","
	        "\"content\":\"x\"}]}",
	        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\"}]}]}",
	        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_"
	        "url\":{\"url\":\"data:image/png,abc\"}}]}]}",
	        "{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"a\",\"function\":"
	        "{\"name\":\"f\",\"arguments\":\"[1]\"}}]}]}",
	        "{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}",
	        "{\"messages\":[{\"role\":\"function\",\"content\":\"x\"}]}",
	        "{\"messages\":[]}",
	        "{\"messages\":[{\"role\":\"system\",\"content\":\"only system\"}]}",
	        "{\"tools\":[{\"type\":\"web\"}],\"messages\":[{\"role\":\"user\",\"content\":"
	        "\"x\"}]}",
	        "{\"max_tokens\":0,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (build_err(&d, GW_API_OPENAI_CHAT, bad[i], err, sizeof(err)) != AAM_E_INVAL)
			fail_msg("case %zu accepted", i);
		assert_true(strlen(err) > 5);
	}
	/* Same-API routes do not judge fields they pass through. */
	d = dep("openai", "gpt", NULL);
	struct gw_upstream u;
	json_t *b = build(&d, GW_API_OPENAI_CHAT, bad[0], false, 0, &u);
	assert_int_equal(gw_json_int(b, "n"), 2);
	json_decref(b);
	gw_upstream_free(&u);
}

static void
test_anthropic_to_openai_translation(void **state)
{
	(void)state;
	struct gw_upstream u;
	struct gw_deployment d = dep("openai-compatible", "llama", "http://h:1");
	json_t *b = build(
	        &d, GW_API_ANTHROPIC_MESSAGES,
	        "{\"model\":\"r\",\"max_tokens\":100,\"temperature\":0.2,\"top_k\":5,"
	        "\"stop_sequences\":[\"X\"],\"metadata\":{\"user_id\":\"u\"},"
	        "\"system\":[{\"type\":\"text\",\"text\":\"S1\"},{\"type\":\"text\",\"text\":"
	        "\"S2\"}],"
	        "\"tools\":[{\"name\":\"get\",\"description\":\"d\",\"input_schema\":{\"type\":"
	        "\"object\"}}],\"tool_choice\":{\"type\":\"any\",\"disable_parallel_tool_use\":"
	        "true},"
	        "\"messages\":["
	        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"see\"},{\"type\":"
	        "\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/jpeg\",\"data\":"
	        "\"/9j/\"}}]},"
	        "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"t\"},"
	        "{\"type\":\"text\",\"text\":\"calling\"},{\"type\":\"tool_use\",\"id\":\"t1\","
	        "\"name\":\"get\",\"input\":{\"q\":1}}]},"
	        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t1\","
	        "\"content\":[{\"type\":\"text\",\"text\":\"R\"}]},{\"type\":\"text\",\"text\":"
	        "\"ok?\"}]}]}",
	        true, 0, &u);
	assert_json_eq(
	        b,
	        "{\"model\":\"llama\",\"max_tokens\":100,\"temperature\":0.2,\"stop\":[\"X\"],"
	        "\"user\":\"u\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
	        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get\",\"description\":"
	        "\"d\",\"parameters\":{\"type\":\"object\"}}}],\"tool_choice\":\"required\","
	        "\"parallel_tool_calls\":false,"
	        "\"messages\":[{\"role\":\"system\",\"content\":\"S1\\n\\nS2\"},"
	        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"see\"},{\"type\":"
	        "\"image_url\",\"image_url\":{\"url\":\"data:image/jpeg;base64,/9j/\"}}]},"
	        "{\"role\":\"assistant\",\"content\":\"calling\",\"tool_calls\":[{\"id\":\"t1\","
	        "\"type\":\"function\",\"function\":{\"name\":\"get\",\"arguments\":"
	        "\"{\\\"q\\\":1}\"}}]},"
	        "{\"role\":\"tool\",\"tool_call_id\":\"t1\",\"content\":\"R\"},"
	        "{\"role\":\"user\",\"content\":\"ok?\"}]}");
	json_decref(b);
	gw_upstream_free(&u);

	/* To OpenAI itself max_tokens becomes max_completion_tokens. */
	d = dep("openai", "gpt", NULL);
	b = build(&d, GW_API_ANTHROPIC_MESSAGES,
	          "{\"max_tokens\":7,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", false,
	          0, &u);
	assert_int_equal(gw_json_int(b, "max_completion_tokens"), 7);
	assert_null(json_object_get(b, "max_tokens"));
	json_decref(b);
	gw_upstream_free(&u);

	char err[256];
	assert_int_equal(build_err(&d, GW_API_ANTHROPIC_MESSAGES,
	                           "{\"tools\":[{\"type\":\"web_search_20250305\",\"name\":\"w\"}],"
	                           "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
	                           err, sizeof(err)),
	                 AAM_E_INVAL);
	assert_int_equal(build_err(&d, GW_API_ANTHROPIC_MESSAGES,
	                           "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
	                           "\"document\"}]}]}",
	                           err, sizeof(err)),
	                 AAM_E_INVAL);
	assert_int_equal(build_err(&d, GW_API_ANTHROPIC_MESSAGES,
	                           "{\"messages\":[{\"role\":\"system\",\"content\":\"x\"}]}", err,
	                           sizeof(err)),
	                 AAM_E_INVAL);
}

static void
test_estimate(void **state)
{
	(void)state;
	/* 400 bytes of text in one message: 100 + 4 + priming. */
	char text[401];
	memset(text, 'a', 400);
	text[400] = '\0';
	json_t *b = json_pack("{s:[{s:s, s:s}]}", "messages", "role", "user", "content", text);
	int64_t e1 = gw_estimate_input_tokens(GW_API_OPENAI_CHAT, b);
	assert_true(e1 >= 104 && e1 <= 110);
	/* Tools add their schema bytes / 4. */
	json_object_set_new(b, "tools", json_pack("[{s:s}]", "name", text));
	int64_t e2 = gw_estimate_input_tokens(GW_API_OPENAI_CHAT, b);
	assert_true(e2 >= e1 + 100);
	json_decref(b);
	/* An image counts as a flat amount, not its base64 length. */
	b = js("{\"system\":\"sys\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
	       "\"image\",\"source\":{\"type\":\"base64\",\"data\":\"AAAA\"}}]}]}");
	assert_true(gw_estimate_input_tokens(GW_API_ANTHROPIC_MESSAGES, b) >= 1600);
	json_decref(b);
	b = js("{\"input\":[\"abcdabcd\",\"abcd\"]}");
	assert_int_equal(gw_estimate_input_tokens(GW_API_OPENAI_EMBEDDINGS, b), 3);
	json_decref(b);
	assert_int_equal(gw_estimate_input_tokens(GW_API_OPENAI_CHAT, NULL), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_openai_urls),
	        cmocka_unit_test(test_openai_stream_forces_usage_and_caps),
	        cmocka_unit_test(test_anthropic_and_bedrock),
	        cmocka_unit_test(test_openai_to_anthropic_translation),
	        cmocka_unit_test(test_openai_unsupported_refused),
	        cmocka_unit_test(test_anthropic_to_openai_translation),
	        cmocka_unit_test(test_estimate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
