/*
 * The Anthropic messages wire: provider anthropic ({api_base}/v1/messages,
 * header anthropic-version: 2023-06-01, api_base defaulting to
 * https://api.anthropic.com), and the body rules it shares with bedrock.
 */
#include "gateway/provider_int.h"

#include <string.h>

#include "aam/err.h"

int
gw_anthropic_url(const struct gw_deployment *d, struct aam_buf *url, char *err, size_t errlen)
{
	const char *base = d->api_base && *d->api_base ? d->api_base : "https://api.anthropic.com";
	int rc = gw_append_base(url, base, err, errlen);
	if (rc != AAM_OK)
		return rc;
	/* Like the OpenAI rule: a base that already names the version is kept. */
	if (url->len < 3 || memcmp(url->data + url->len - 3, "/v1", 3) != 0)
		aam_buf_append_str(url, "/v1");
	aam_buf_append_str(url, "/messages");
	return url->err;
}

int
gw_anthropic_finish_body(const struct gw_deployment *d, json_t *body, bool bedrock, bool stream,
                         int64_t cap, char *err, size_t errlen)
{
	json_t *mt = json_object_get(body, "max_tokens");
	int64_t max = GW_DEFAULT_MAX_TOKENS;
	if (mt && !json_is_null(mt)) {
		if (!json_is_integer(mt) || json_integer_value(mt) < 1)
			return gw_perr(err, errlen, "max_tokens must be a positive integer");
		max = json_integer_value(mt);
	}
	if (cap > 0 && max > cap)
		max = cap;
	if (json_object_set_new(body, "max_tokens", json_integer(max)) != 0)
		return AAM_E_NOMEM;
	if (bedrock) {
		/* InvokeModel takes the model from the URL and streaming from
		 * the operation; the body names the Bedrock API version instead. */
		json_object_del(body, "model");
		json_object_del(body, "stream");
		if (json_object_set_new(body, "anthropic_version",
		                        json_string("bedrock-2023-05-31")) != 0)
			return AAM_E_NOMEM;
		return AAM_OK;
	}
	if (json_object_set_new(body, "model", json_string(d->model)) != 0)
		return AAM_E_NOMEM;
	if (stream) {
		if (json_object_set_new(body, "stream", json_true()) != 0)
			return AAM_E_NOMEM;
	} else {
		json_object_del(body, "stream");
	}
	return AAM_OK;
}
