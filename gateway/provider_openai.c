/*
 * The OpenAI wire: providers openai, azure and openai-compatible.
 *
 * URL rules:
 *   openai             {api_base}/v1/chat/completions (api_base defaults to
 *                      https://api.openai.com)
 *   openai-compatible  the same with a required api_base: "/v1" is added
 *                      unless api_base already ends in "/v1", so both
 *                      http://host:8000 and http://host:8000/v1 (LiteLLM's
 *                      spelling) work
 *   azure              {api_base}/openai/deployments/{model}/chat/completions
 *                      ?api-version={api_version} (default GW_AZURE_API_VERSION)
 * Embeddings replace "chat/completions" with "embeddings".
 */
#include "gateway/provider_int.h"

#include <string.h>

#include "aam/err.h"

#define GW_AZURE_API_VERSION "2024-10-21"

int
gw_append_base(struct aam_buf *url, const char *base, char *err, size_t errlen)
{
	if (strncmp(base, "https://", 8) != 0 && strncmp(base, "http://", 7) != 0)
		return gw_perr(err, errlen, "api_base must start with https:// or http://");
	for (const char *c = base; *c; c++)
		if ((unsigned char)*c <= 0x20 || *c == 0x7f || *c == '?' || *c == '#')
			return gw_perr(err, errlen,
			               "api_base must not contain spaces, controls, '?' or '#'");
	size_t n = strlen(base);
	while (n > 0 && base[n - 1] == '/')
		n--;
	return aam_buf_append(url, base, n);
}

int
gw_openai_url(const struct gw_deployment *d, bool embeddings, struct aam_buf *url, char *err,
              size_t errlen)
{
	const char *what = embeddings ? "embeddings" : "chat/completions";
	const char *base = d->api_base;
	bool azure = strcmp(d->provider, "azure") == 0;

	if (!base || !*base) {
		if (strcmp(d->provider, "openai") != 0)
			return gw_perr(err, errlen, "provider %s needs an api_base", d->provider);
		base = "https://api.openai.com";
	}
	int rc = gw_append_base(url, base, err, errlen);
	if (rc != AAM_OK)
		return rc;
	if (azure) {
		const char *v =
		        d->api_version && *d->api_version ? d->api_version : GW_AZURE_API_VERSION;
		aam_buf_append_str(url, "/openai/deployments/");
		gw_url_escape(url, d->model);
		aam_buf_printf(url, "/%s?api-version=", what);
		gw_url_escape(url, v);
		return url->err;
	}
	if (url->len < 3 || memcmp(url->data + url->len - 3, "/v1", 3) != 0)
		aam_buf_append_str(url, "/v1");
	aam_buf_printf(url, "/%s", what);
	return url->err;
}

static int
cap_int(json_t *body, const char *key, int64_t cap, bool *present, char *err, size_t errlen)
{
	json_t *v = json_object_get(body, key);
	if (!v || json_is_null(v))
		return AAM_OK;
	if (!json_is_integer(v) || json_integer_value(v) < 1)
		return gw_perr(err, errlen, "%s must be a positive integer", key);
	*present = true;
	if (cap > 0 && json_integer_value(v) > cap)
		json_integer_set(v, cap);
	return AAM_OK;
}

int
gw_openai_finish_body(const struct gw_deployment *d, json_t *body, bool stream, int64_t cap,
                      char *err, size_t errlen)
{
	bool present = false;
	int rc = cap_int(body, "max_tokens", cap, &present, err, errlen);
	if (rc == AAM_OK)
		rc = cap_int(body, "max_completion_tokens", cap, &present, err, errlen);
	if (rc != AAM_OK)
		return rc;
	if (!present && cap > 0) {
		const char *key =
		        strcmp(d->provider, "openai") == 0 ? "max_completion_tokens" : "max_tokens";
		if (json_object_set_new(body, key, json_integer(cap)) != 0)
			return AAM_E_NOMEM;
	}
	if (json_object_set_new(body, "model", json_string(d->model)) != 0)
		return AAM_E_NOMEM;
	if (stream) {
		/* Usage is needed to settle the budget, so it is always asked for;
		 * the stream translator strips it again when the client did not ask. */
		json_t *so = json_object_get(body, "stream_options");
		if (!json_is_object(so)) {
			so = json_object();
			if (!so || json_object_set_new(body, "stream_options", so) != 0)
				return AAM_E_NOMEM;
		}
		if (json_object_set_new(so, "include_usage", json_true()) != 0 ||
		    json_object_set_new(body, "stream", json_true()) != 0)
			return AAM_E_NOMEM;
	} else {
		json_object_del(body, "stream");
		json_object_del(body, "stream_options");
	}
	return AAM_OK;
}
