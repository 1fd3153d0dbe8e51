/*
 * The reply a request gets and its token counts, as documented functions
 * of the request so tests can predict them (README.md, "Content"):
 *   text          = "mock reply to: " + the first 40 bytes of the last user
 *                   message (cut on a UTF-8 boundary)
 *   input_tokens  = ceil(B / 4), at least 1, where B is the byte count of all
 *                   message text (string contents, text parts, tool results)
 *                   plus the system prompt
 *   output_tokens = ceil(bytes of the reply text / 4), at least 1; for a tool
 *                   call ceil((bytes of name + bytes of arguments) / 4)
 */
#include "tests/mock-provider/mock.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "common/buf.h"

int64_t
mock_tokens(size_t bytes)
{
	int64_t t = (int64_t)((bytes + 3) / 4);
	return t > 0 ? t : 1;
}

size_t
mock_utf8_cut(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	size_t n = max;
	/* Back off continuation bytes so no multi-byte sequence is split. */
	while (n > 0 && ((unsigned char)s[n] & 0xC0u) == 0x80u)
		n--;
	return n;
}

/* Appends the text inside CONTENT: a string, or an array of parts/blocks. */
static void
collect_text(const json_t *content, struct aam_buf *b, bool *tool_result)
{
	if (json_is_string(content)) {
		aam_buf_append(b, json_string_value(content), json_string_length(content));
		return;
	}
	if (!json_is_array(content))
		return;
	size_t i;
	const json_t *part;
	json_array_foreach(content, i, part)
	{
		const json_t *text = json_object_get(part, "text");
		const char *type = json_string_value(json_object_get(part, "type"));
		if (json_is_string(text))
			aam_buf_append(b, json_string_value(text), json_string_length(text));
		else if (type != NULL && strcmp(type, "tool_result") == 0) {
			if (tool_result != NULL)
				*tool_result = true;
			collect_text(json_object_get(part, "content"), b, NULL);
		}
	}
}

static bool
contains_ci(const char *hay, size_t n, const char *needle)
{
	size_t m = strlen(needle);
	for (size_t i = 0; i + m <= n; i++) {
		size_t k = 0;
		while (k < m && tolower((unsigned char)hay[i + k]) == needle[k])
			k++;
		if (k == m)
			return true;
	}
	return false;
}

static const char *
first_tool_name(const struct mock_req *r)
{
	const json_t *tools = json_object_get(r->body, "tools");
	const json_t *t0 = json_array_get(tools, 0);
	if (t0 == NULL)
		return NULL;
	const char *name = json_string_value(json_object_get(t0, "name"));
	if (name == NULL) /* OpenAI: {"type":"function","function":{"name":...}} */
		name = json_string_value(json_object_get(json_object_get(t0, "function"), "name"));
	return name;
}

static int64_t
max_tokens_of(const struct mock_req *r)
{
	const json_t *m = json_object_get(r->body, "max_tokens");
	if (!json_is_integer(m))
		m = json_object_get(r->body, "max_completion_tokens");
	return json_is_integer(m) ? json_integer_value(m) : 0;
}

int
mock_content_build(const struct mock_req *r, struct mock_content *c)
{
	memset(c, 0, sizeof(*c));
	const json_t *msgs = json_object_get(r->body, "messages");
	struct aam_buf all, last;
	aam_buf_init(&all, AAM_BUF_DEFAULT_MAX);
	aam_buf_init(&last, AAM_BUF_DEFAULT_MAX);
	collect_text(json_object_get(r->body, "system"), &all, NULL);

	bool last_is_user = false, last_is_tool_result = false;
	size_t i;
	const json_t *m;
	json_array_foreach(msgs, i, m)
	{
		const char *role = json_string_value(json_object_get(m, "role"));
		const json_t *content = json_object_get(m, "content");
		collect_text(content, &all, NULL);
		if (role == NULL)
			continue;
		if (strcmp(role, "user") == 0 || strcmp(role, "tool") == 0) {
			aam_buf_reset(&last);
			bool tr = strcmp(role, "tool") == 0;
			collect_text(content, &last, &tr);
			last_is_tool_result = tr;
		}
		last_is_user = strcmp(role, "user") == 0 && i + 1 == json_array_size(msgs);
	}
	int rc = AAM_OK;
	if (aam_buf_failed(&all) || aam_buf_failed(&last)) {
		rc = AAM_E_NOMEM;
		goto out;
	}
	c->input_tokens = mock_tokens(all.len);

	const char *tool = first_tool_name(r);
	if (r->echo) {
		c->text = json_dumps(r->headers, JSON_COMPACT | JSON_SORT_KEYS);
	} else if (tool != NULL && last_is_user && !last_is_tool_result &&
	           contains_ci(aam_buf_cstr(&last), last.len, "weather")) {
		size_t q = mock_utf8_cut(aam_buf_cstr(&last), last.len, MOCK_QUOTE_BYTES);
		json_t *args = json_pack("{s:s%}", "query", aam_buf_cstr(&last), q);
		c->tool_args = args != NULL ? json_dumps(args, JSON_COMPACT) : NULL;
		json_decref(args);
		c->tool_name = strdup(tool);
		if (c->tool_args == NULL || c->tool_name == NULL) {
			rc = AAM_E_NOMEM;
			goto out;
		}
		c->output_tokens = mock_tokens(strlen(c->tool_name) + strlen(c->tool_args));
		goto out;
	} else {
		size_t q = mock_utf8_cut(aam_buf_cstr(&last), last.len, MOCK_QUOTE_BYTES);
		struct aam_buf t;
		aam_buf_init(&t, AAM_BUF_DEFAULT_MAX);
		aam_buf_append_str(&t, "mock reply to: ");
		aam_buf_append(&t, aam_buf_cstr(&last), q);
		size_t n;
		c->text = (char *)aam_buf_steal(&t, &n);
	}
	if (c->text == NULL) {
		rc = AAM_E_NOMEM;
		goto out;
	}
	int64_t max = max_tokens_of(r);
	size_t len = strlen(c->text);
	if (max > 0 && mock_tokens(len) > max) {
		size_t keep = mock_utf8_cut(c->text, len, (size_t)max * 4);
		c->text[keep] = '\0';
		len = keep;
		c->truncated = true;
	}
	c->output_tokens = mock_tokens(len);
out:
	aam_buf_uninit(&all);
	aam_buf_uninit(&last);
	if (rc != AAM_OK)
		mock_content_free(c);
	return rc;
}

void
mock_content_free(struct mock_content *c)
{
	free(c->text);
	free(c->tool_name);
	free(c->tool_args);
	memset(c, 0, sizeof(*c));
}
