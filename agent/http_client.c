/*
 * The agent's HTTP client for aam-attest: one libcurl exchange per call,
 * JSON in and out, bounded answers, no redirects (a redirect could carry
 * evidence somewhere else), errors turned into aam_agent_error.
 */
#include "agent/agent_int.h"
#include "aam/err.h"
#include "common/b64.h"
#include "common/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

void
agent_err(struct aam_agent_error *e, const char *code, const char *fmt, ...)
{
	if (e == NULL)
		return;
	snprintf(e->code, sizeof(e->code), "%s", code);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
}

static size_t
collect(char *p, size_t size, size_t n, void *ud)
{
	struct aam_buf *b = ud;
	size_t len = size * n;
	/* Past the limit the transfer is aborted: returning less than LEN does that. */
	if (aam_buf_append(b, p, len) != AAM_OK)
		return 0;
	return len;
}

int
agent_http_post(struct aam_agent *a, const char *path, const json_t *body,
                struct agent_http_resp *r, struct aam_agent_error *e)
{
	memset(r, 0, sizeof(*r));
	char url[2048];
	if (snprintf(url, sizeof(url), "%s%s", a->attest_url, path) >= (int)sizeof(url)) {
		agent_err(e, "invalid_config", "attest_url is too long");
		return AAM_E_TOOBIG;
	}
	struct aam_buf out, in;
	aam_buf_init(&out, 1024 * 1024);
	aam_buf_init(&in, AGENT_HTTP_MAX_RESPONSE);
	int rc = aam_json_dump_buf(body, &out, JSON_COMPACT);
	CURL *c = rc == AAM_OK ? curl_easy_init() : NULL;
	struct curl_slist *h = NULL;
	if (rc == AAM_OK && c == NULL)
		rc = AAM_E_NOMEM;
	if (rc == AAM_OK) {
		h = curl_slist_append(h, "Content-Type: application/json");
		h = curl_slist_append(h, "Accept: application/json");
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)out.data);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)out.len);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &in);
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, a->timeout_ms);
		curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, a->timeout_ms);
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
		curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
		if (a->ca_bundle != NULL)
			curl_easy_setopt(c, CURLOPT_CAINFO, a->ca_bundle);
		CURLcode cc = curl_easy_perform(c);
		if (cc != CURLE_OK) {
			rc = cc == CURLE_OPERATION_TIMEDOUT ? AAM_E_TIMEOUT : AAM_E_IO;
			if (cc == CURLE_WRITE_ERROR && in.err != 0)
				rc = AAM_E_TOOBIG;
			agent_err(e, "attest_unreachable", "aam-attest at %s: %s", a->attest_url,
			          rc == AAM_E_TOOBIG ? "answer too large" : curl_easy_strerror(cc));
		} else {
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
		}
	}
	if (rc == AAM_OK && in.len > 0)
		(void)aam_json_parse(in.data, in.len, NULL, &r->json, NULL);
	if (rc != AAM_OK && e != NULL && e->code[0] == '\0')
		agent_err(e, "internal", "cannot send the request (%s)", aam_err_code(rc));
	curl_slist_free_all(h);
	if (c != NULL)
		curl_easy_cleanup(c);
	/* Request bodies carry activated credentials, answers carry tokens. */
	aam_buf_uninit_wipe(&out);
	aam_buf_uninit_wipe(&in);
	return rc;
}

void
agent_http_resp_uninit(struct agent_http_resp *r)
{
	json_decref(r->json);
	r->json = NULL;
}

int
agent_http_refusal(const struct agent_http_resp *r, const char *step, struct aam_agent_error *e)
{
	const json_t *err = json_object_get(r->json, "error");
	const char *code = json_string_value(json_object_get(err, "code"));
	const char *m = json_string_value(json_object_get(err, "message"));
	if (e != NULL) {
		agent_err(e, code != NULL ? code : "attest_error", "%s: HTTP %ld%s%s", step,
		          r->status, m != NULL ? ": " : "", m != NULL ? m : "");
		e->http_status = (unsigned)r->status;
	}
	return r->status == 429 || r->status >= 500 ? AAM_E_BUSY : AAM_E_DENIED;
}

json_t *
agent_b64_json(const void *p, size_t n)
{
	struct aam_buf b;
	aam_buf_init(&b, 64 * 1024);
	json_t *j = NULL;
	if (aam_b64_encode_buf(&b, p, n, AAM_B64_URL) == AAM_OK)
		j = json_stringn((const char *)b.data, b.len);
	aam_buf_uninit(&b);
	return j;
}

int
agent_b64_member(const json_t *obj, const char *key, size_t max, struct aam_buf *out)
{
	const json_t *v = json_object_get(obj, key);
	if (!json_is_string(v) || json_string_length(v) > aam_b64_encoded_len(max, AAM_B64_URL))
		return AAM_E_PARSE;
	aam_buf_reset(out);
	return aam_b64_decode_buf(out, json_string_value(v), json_string_length(v), AAM_B64_URL);
}

int
agent_challenge(struct aam_agent *a, const char *method, char **nonce, struct aam_agent_error *e)
{
	*nonce = NULL;
	json_t *b = json_pack("{s:s,s:s}", "method", method, "spiffe_id", a->spiffe_id);
	if (b == NULL) {
		agent_err(e, "internal", "out of memory");
		return AAM_E_NOMEM;
	}
	struct agent_http_resp r;
	int rc = agent_http_post(a, "/v1/attest/challenge", b, &r, e);
	json_decref(b);
	if (rc != AAM_OK)
		return rc;
	if (r.status != 200) {
		rc = agent_http_refusal(&r, "challenge", e);
		agent_http_resp_uninit(&r);
		return rc;
	}
	const char *n = json_string_value(json_object_get(r.json, "nonce"));
	if (n == NULL || n[0] == '\0' || strlen(n) > 256) {
		agent_err(e, "attest_protocol", "challenge: the answer has no nonce");
		rc = AAM_E_PROTO;
	} else if ((*nonce = strdup(n)) == NULL) {
		rc = AAM_E_NOMEM;
	}
	agent_http_resp_uninit(&r);
	return rc;
}
