/*
 * Request templates: an action's URL, query, headers and JSON body with
 * the call's parameters filled in.
 *
 * Each value is escaped for the place it lands in.  A path placeholder
 * fills exactly one path segment: '/', '\\', control characters, empty
 * values and dot segments are refused (not encoded), because an encoded
 * separator is read as a real one by enough servers that escaping is not
 * a defence; aam-vault refuses encoded '/', '\\' and '.' too.  Query
 * values are percent-encoded; header values may not carry control
 * characters (no CR/LF header injection); the body is built as JSON, so
 * a parameter can only ever be a JSON value, never JSON syntax.
 */
#include "gateway/tools_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aam/err.h"
#include "common/json.h"

void
gwt_request_init(struct gwt_request *r)
{
	memset(r, 0, sizeof(*r));
	aam_buf_init(&r->url, GWT_MAX_URL);
	aam_buf_init(&r->body, 4u * 1024 * 1024);
}

void
gwt_request_uninit(struct gwt_request *r)
{
	for (size_t i = 0; i < r->nheaders; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
	}
	free(r->headers);
	aam_buf_uninit(&r->url);
	aam_buf_uninit(&r->body);
	memset(r, 0, sizeof(*r));
}

int
gwt_request_add_header(struct gwt_request *r, const char *name, const char *value)
{
	if (r->nheaders >= 100)
		return AAM_E_TOOBIG;
	struct gwt_header *h = realloc(r->headers, (r->nheaders + 1) * sizeof(*h));
	if (h == NULL)
		return AAM_E_NOMEM;
	r->headers = h;
	h[r->nheaders].name = strdup(name);
	h[r->nheaders].value = strdup(value);
	if (h[r->nheaders].name == NULL || h[r->nheaders].value == NULL) {
		free(h[r->nheaders].name);
		free(h[r->nheaders].value);
		return AAM_E_NOMEM;
	}
	r->nheaders++;
	return AAM_OK;
}

int
gwt_pct_encode(struct aam_buf *b, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			aam_buf_append_byte(b, c);
		} else {
			char enc[3] = {'%', hex[c >> 4], hex[c & 15]};
			aam_buf_append(b, enc, 3);
		}
	}
	return b->err;
}

int
gwt_scalar_text(const json_t *v, struct aam_buf *b)
{
	char num[40];
	switch (json_typeof(v)) {
	case JSON_STRING:
		return aam_buf_append(b, json_string_value(v), json_string_length(v));
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return aam_buf_append_str(b, num);
	case JSON_REAL:
		if (gwt_number_text(json_real_value(v), num, sizeof(num)) != AAM_OK)
			return AAM_E_INVAL;
		return aam_buf_append_str(b, num);
	case JSON_TRUE:
		return aam_buf_append_str(b, "true");
	case JSON_FALSE:
		return aam_buf_append_str(b, "false");
	default:
		return AAM_E_INVAL;
	}
}

/* The parameter's value, or NULL when absent or null. */
static const json_t *
param_value(const struct gwt_action *a, size_t i, const json_t *params)
{
	const json_t *v = json_object_get(params, a->params[i].name);
	return v == NULL || json_is_null(v) ? NULL : v;
}

static bool
tmpl_complete(const struct gwt_action *a, const struct gwt_tmpl *t, const json_t *params)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->segs[i].lit == NULL && param_value(a, t->segs[i].param, params) == NULL)
			return false;
	return true;
}

/* Checks a value that is to fill a path segment. */
static int
segment_ok(const struct gwt_param *p, const char *s, size_t len, struct gwt_err *e)
{
	if (len == 0 || (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.')) {
		gwt_err_set(e, "invalid_parameters", p->name,
		            "parameter '%s' cannot be empty, '.' or '..' (it fills a path segment)",
		            p->name);
		return AAM_E_INVAL;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '/' || c == '\\' || c < 0x20 || c == 0x7f) {
			gwt_err_set(e, "invalid_parameters", p->name,
			            "parameter '%s' cannot hold '/', '\\' or control characters "
			            "(it fills "
			            "a path segment)",
			            p->name);
			return AAM_E_INVAL;
		}
	}
	return AAM_OK;
}

static int
render_path(const struct gwt_action *a, const json_t *params, struct aam_buf *url,
            struct gwt_err *e)
{
	size_t start = url->len;
	struct aam_buf tmp;
	aam_buf_init(&tmp, GWT_MAX_URL);
	int rc = AAM_OK;
	for (size_t i = 0; i < a->path.n && rc == AAM_OK; i++) {
		const struct gwt_seg *s = &a->path.segs[i];
		if (s->lit != NULL) {
			aam_buf_append(url, s->lit, s->len);
			continue;
		}
		const struct gwt_param *p = &a->params[s->param];
		const json_t *v = param_value(a, s->param, params);
		if (v == NULL) {
			gwt_err_set(e, "invalid_parameters", p->name, "parameter '%s' is required",
			            p->name);
			rc = AAM_E_INVAL;
			break;
		}
		aam_buf_reset(&tmp);
		if ((rc = gwt_scalar_text(v, &tmp)) != AAM_OK)
			break;
		if ((rc = segment_ok(p, (const char *)tmp.data, tmp.len, e)) != AAM_OK)
			break;
		rc = gwt_pct_encode(url, (const char *)tmp.data, tmp.len);
	}
	aam_buf_uninit(&tmp);
	if (rc == AAM_OK)
		rc = url->err;
	if (rc != AAM_OK)
		return rc;
	/*
	 * Pieces put together (a literal "." next to a value ".", say) must
	 * not form a dot segment either.
	 */
	const char *p = (const char *)url->data + start;
	const char *end = (const char *)url->data + url->len;
	while (p < end) {
		const char *q = memchr(p + 1, '/', (size_t)(end - p - 1));
		size_t seg = (size_t)((q != NULL ? q : end) - p - 1);
		if ((seg == 1 && p[1] == '.') || (seg == 2 && p[1] == '.' && p[2] == '.')) {
			gwt_err_set(e, "invalid_parameters", NULL,
			            "the parameters would form a '.' or '..' path segment");
			return AAM_E_INVAL;
		}
		if (q == NULL)
			break;
		p = q;
	}
	return AAM_OK;
}

static int
render_query(const struct gwt_action *a, const json_t *params, struct aam_buf *url)
{
	bool first = true;
	struct aam_buf tmp;
	aam_buf_init(&tmp, GWT_MAX_URL);
	for (size_t i = 0; i < a->nquery; i++) {
		const struct gwt_kv *kv = &a->query[i];
		if (!tmpl_complete(a, &kv->value, params))
			continue;
		aam_buf_reset(&tmp);
		const json_t *arr = NULL;
		if (kv->value.n == 1 && kv->value.segs[0].lit == NULL)
			arr = param_value(a, kv->value.segs[0].param, params);
		if (arr != NULL && json_is_array(arr)) {
			/* An array is sent as one comma-separated value. */
			if (json_array_size(arr) == 0)
				continue;
			struct aam_buf item;
			aam_buf_init(&item, GWT_MAX_URL);
			for (size_t k = 0; k < json_array_size(arr); k++) {
				aam_buf_reset(&item);
				gwt_scalar_text(json_array_get(arr, k), &item);
				if (k > 0)
					aam_buf_append_str(&tmp, "%2C");
				gwt_pct_encode(&tmp, (const char *)item.data, item.len);
			}
			int irc = item.err;
			aam_buf_uninit(&item);
			if (irc != AAM_OK) {
				aam_buf_uninit(&tmp);
				return irc;
			}
		} else {
			struct aam_buf raw;
			aam_buf_init(&raw, GWT_MAX_URL);
			for (size_t k = 0; k < kv->value.n; k++) {
				const struct gwt_seg *s = &kv->value.segs[k];
				if (s->lit != NULL)
					aam_buf_append(&raw, s->lit, s->len);
				else
					gwt_scalar_text(param_value(a, s->param, params), &raw);
			}
			gwt_pct_encode(&tmp, (const char *)raw.data, raw.len);
			int rrc = raw.err;
			aam_buf_uninit(&raw);
			if (rrc != AAM_OK) {
				aam_buf_uninit(&tmp);
				return rrc;
			}
		}
		aam_buf_append_byte(url, first ? '?' : '&');
		gwt_pct_encode(url, kv->name, strlen(kv->name));
		aam_buf_append_byte(url, '=');
		aam_buf_append(url, tmp.data, tmp.len);
		first = false;
	}
	int rc = tmp.err;
	aam_buf_uninit(&tmp);
	return rc != AAM_OK ? rc : url->err;
}

static int
render_headers(const struct gwt_action *a, const json_t *params, struct gwt_request *out,
               struct gwt_err *e)
{
	struct aam_buf val;
	aam_buf_init(&val, GWT_MAX_HDR_VALUE);
	int rc = AAM_OK;
	for (size_t i = 0; i < a->nheaders && rc == AAM_OK; i++) {
		const struct gwt_kv *kv = &a->headers[i];
		if (!tmpl_complete(a, &kv->value, params))
			continue;
		aam_buf_reset(&val);
		const struct gwt_param *culprit = NULL;
		for (size_t k = 0; k < kv->value.n; k++) {
			const struct gwt_seg *s = &kv->value.segs[k];
			size_t before = val.len;
			if (s->lit != NULL) {
				aam_buf_append(&val, s->lit, s->len);
				continue;
			}
			gwt_scalar_text(param_value(a, s->param, params), &val);
			for (size_t j = before; j < val.len && culprit == NULL; j++)
				if ((val.data[j] < 0x20 && val.data[j] != '\t') ||
				    val.data[j] == 0x7f)
					culprit = &a->params[s->param];
		}
		if (culprit != NULL) {
			gwt_err_set(
			        e, "invalid_parameters", culprit->name,
			        "parameter '%s' cannot hold control characters (it fills the %s "
			        "header)",
			        culprit->name, kv->name);
			rc = AAM_E_INVAL;
		} else if (val.err != AAM_OK) {
			gwt_err_set(e, "invalid_parameters", NULL,
			            "the %s header would be too long", kv->name);
			rc = AAM_E_INVAL;
		} else {
			rc = gwt_request_add_header(out, kv->name, aam_buf_cstr(&val));
		}
	}
	aam_buf_uninit(&val);
	return rc;
}

/* Expands the string template S; *OUT is NULL when a parameter is absent. */
static int
expand_string(const struct gwt_action *a, const char *s, const json_t *params, json_t **out)
{
	*out = NULL;
	/* A whole-value placeholder keeps the parameter's JSON type. */
	size_t len = strlen(s);
	if (len > 2 && s[0] == '{' && s[len - 1] == '}' && strchr(s + 1, '{') == NULL) {
		long idx = gwt_param_find(a->params, a->nparams, s + 1, len - 2);
		if (idx < 0)
			return AAM_E_INTERNAL;
		const json_t *v = param_value(a, (size_t)idx, params);
		if (v != NULL && (*out = json_deep_copy(v)) == NULL)
			return AAM_E_NOMEM;
		return AAM_OK;
	}
	struct aam_buf b;
	aam_buf_init(&b, GWT_MAX_ARGS * 2);
	const char *p = s;
	while (*p) {
		if (*p != '{') {
			size_t n = strcspn(p, "{");
			aam_buf_append(&b, p, n);
			p += n;
			continue;
		}
		const char *end = strchr(p, '}');
		if (end == NULL) {
			aam_buf_uninit(&b);
			return AAM_E_INTERNAL;
		}
		long idx = gwt_param_find(a->params, a->nparams, p + 1, (size_t)(end - p - 1));
		const json_t *v = idx >= 0 ? param_value(a, (size_t)idx, params) : NULL;
		if (v == NULL) {
			aam_buf_uninit(&b);
			return idx >= 0 ? AAM_OK : AAM_E_INTERNAL;
		}
		gwt_scalar_text(v, &b);
		p = end + 1;
	}
	int rc = b.err;
	if (rc == AAM_OK &&
	    (*out = json_stringn((const char *)b.data ? (const char *)b.data : "", b.len)) == NULL)
		rc = AAM_E_NOMEM;
	aam_buf_uninit(&b);
	return rc;
}

/* Renders a body template node; *OUT NULL means "leave it out". */
static int
render_json(const struct gwt_action *a, const json_t *t, const json_t *params, json_t **out)
{
	*out = NULL;
	if (json_is_string(t))
		return expand_string(a, json_string_value(t), params, out);
	if (json_is_array(t)) {
		json_t *arr = json_array();
		if (arr == NULL)
			return AAM_E_NOMEM;
		for (size_t i = 0; i < json_array_size(t); i++) {
			json_t *v;
			int rc = render_json(a, json_array_get(t, i), params, &v);
			if (rc == AAM_OK && v != NULL && json_array_append_new(arr, v) != 0)
				rc = AAM_E_NOMEM;
			if (rc != AAM_OK) {
				json_decref(arr);
				return rc;
			}
		}
		*out = arr;
		return AAM_OK;
	}
	if (json_is_object(t)) {
		json_t *obj = json_object();
		if (obj == NULL)
			return AAM_E_NOMEM;
		const char *k;
		json_t *tv;
		json_object_foreach((json_t *)(uintptr_t)t, k, tv)
		{
			json_t *v;
			int rc = render_json(a, tv, params, &v);
			if (rc == AAM_OK && v != NULL && json_object_set_new(obj, k, v) != 0)
				rc = AAM_E_NOMEM;
			if (rc != AAM_OK) {
				json_decref(obj);
				return rc;
			}
		}
		*out = obj;
		return AAM_OK;
	}
	*out = json_deep_copy(t);
	return *out != NULL ? AAM_OK : AAM_E_NOMEM;
}

int
gwt_render(const struct gwt_action *a, const json_t *params, struct gwt_request *out,
           struct gwt_err *e)
{
	out->method = a->method;
	aam_buf_append_str(&out->url, a->base_url);
	int rc = render_path(a, params, &out->url, e);
	if (rc == AAM_OK)
		rc = render_query(a, params, &out->url);
	if (rc == AAM_E_TOOBIG || out->url.err == AAM_E_TOOBIG) {
		gwt_err_set(e, "invalid_parameters", NULL, "the request URL would be too long");
		return AAM_E_INVAL;
	}
	if (rc != AAM_OK)
		return rc;
	if ((rc = render_headers(a, params, out, e)) != AAM_OK)
		return rc;
	if (a->body == NULL)
		return AAM_OK;
	json_t *body = NULL;
	if ((rc = render_json(a, a->body, params, &body)) != AAM_OK)
		return rc;
	if (body == NULL)
		body = json_object();
	rc = aam_json_dump_buf(body, &out->body, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(body);
	if (rc != AAM_OK)
		return rc;
	bool has_ct = false;
	for (size_t i = 0; i < out->nheaders; i++)
		has_ct = has_ct || strcasecmp(out->headers[i].name, "content-type") == 0;
	return has_ct ? AAM_OK : gwt_request_add_header(out, "Content-Type", "application/json");
}
