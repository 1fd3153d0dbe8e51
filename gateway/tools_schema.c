/*
 * Parameter validation against an action's schema.
 *
 * The schema is closed: a member the action does not declare is refused,
 * so an agent cannot smuggle a field into a body template or past a
 * policy condition that only looks at declared names.  Every string has a
 * length bound (GWT_STRING_MAX unless the catalogue says otherwise) and
 * every array an item bound, and patterns are the policy engine's bounded
 * regexes, so checking costs time linear in the input.
 */
#include "gateway/tools_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "aam/err.h"

void
gwt_err_set(struct gwt_err *e, const char *code, const char *param, const char *fmt, ...)
{
	if (e == NULL)
		return;
	snprintf(e->code, sizeof(e->code), "%s", code);
	snprintf(e->param, sizeof(e->param), "%s", param != NULL ? param : "");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
}

bool
gwt_utf8_ok(const char *str, size_t len, size_t *codepoints)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, n = 0;
	while (i < len) {
		unsigned char c = s[i];
		size_t k;
		unsigned char lo = 0x80, hi = 0xbf;
		if (c < 0x80)
			k = 1;
		else if (c >= 0xc2 && c <= 0xdf)
			k = 2;
		else if (c >= 0xe0 && c <= 0xef) {
			k = 3;
			lo = c == 0xe0 ? 0xa0 : 0x80;
			hi = c == 0xed ? 0x9f : 0xbf;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 4;
			lo = c == 0xf0 ? 0x90 : 0x80;
			hi = c == 0xf4 ? 0x8f : 0xbf;
		} else
			return false;
		if (len - i < k)
			return false;
		for (size_t j = 1; j < k; j++) {
			unsigned char b = s[i + j];
			if (j == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xbf))
				return false;
		}
		i += k;
		n++;
	}
	if (codepoints != NULL)
		*codepoints = n;
	return true;
}

static const char *
type_name(enum gwt_type t)
{
	switch (t) {
	case GWT_STRING:
		return "a string";
	case GWT_INTEGER:
		return "an integer";
	case GWT_NUMBER:
		return "a number";
	case GWT_BOOLEAN:
		return "a boolean";
	case GWT_ARRAY:
		return "an array";
	}
	return "?";
}

static bool
type_ok(const json_t *v, enum gwt_type t)
{
	switch (t) {
	case GWT_STRING:
		return json_is_string(v);
	case GWT_INTEGER:
		return json_is_integer(v);
	case GWT_NUMBER:
		return json_is_number(v) && (!json_is_real(v) || isfinite(json_real_value(v)));
	case GWT_BOOLEAN:
		return json_is_boolean(v);
	case GWT_ARRAY:
		return json_is_array(v);
	}
	return false;
}

/* V compared with bound B: <0, 0, >0; exact when both are integers. */
static int
num_cmp(const json_t *v, const struct gwt_num *b)
{
	if (json_is_integer(v) && b->is_int) {
		json_int_t x = json_integer_value(v);
		return x < b->i ? -1 : x > b->i;
	}
	double x = json_number_value(v);
	return x < b->d ? -1 : x > b->d;
}

static int
check_scalar(const struct gwt_param *p, enum gwt_type t, const json_t *v, const char *what,
             struct gwt_err *e)
{
	if (!type_ok(v, t)) {
		gwt_err_set(e, "invalid_parameters", p->name, "%s '%s' must be %s", what, p->name,
		            type_name(t));
		return AAM_E_INVAL;
	}
	if (t == GWT_STRING) {
		const char *s = json_string_value(v);
		size_t len = json_string_length(v), cps = 0;
		if (memchr(s, 0, len) != NULL || !gwt_utf8_ok(s, len, &cps)) {
			gwt_err_set(e, "invalid_parameters", p->name,
			            "%s '%s' must be UTF-8 text without NUL", what, p->name);
			return AAM_E_INVAL;
		}
		if ((int64_t)cps > p->max_length) {
			gwt_err_set(e, "invalid_parameters", p->name,
			            "%s '%s' is longer than %lld characters", what, p->name,
			            (long long)p->max_length);
			return AAM_E_INVAL;
		}
		if ((int64_t)cps < p->min_length) {
			gwt_err_set(e, "invalid_parameters", p->name,
			            "%s '%s' is shorter than %lld characters", what, p->name,
			            (long long)p->min_length);
			return AAM_E_INVAL;
		}
		if (p->re != NULL && !pol_regex_match(p->re, s, len)) {
			gwt_err_set(e, "invalid_parameters", p->name,
			            "%s '%s' does not match its pattern", what, p->name);
			return AAM_E_INVAL;
		}
	}
	if (t == GWT_INTEGER || t == GWT_NUMBER) {
		if (p->min.set && num_cmp(v, &p->min) < 0) {
			gwt_err_set(e, "invalid_parameters", p->name,
			            "%s '%s' is below its minimum", what, p->name);
			return AAM_E_INVAL;
		}
		if (p->max.set && num_cmp(v, &p->max) > 0) {
			gwt_err_set(e, "invalid_parameters", p->name,
			            "%s '%s' is above its maximum", what, p->name);
			return AAM_E_INVAL;
		}
	}
	if (p->enum_values != NULL) {
		bool found = false;
		for (size_t i = 0; i < json_array_size(p->enum_values) && !found; i++) {
			const json_t *x = json_array_get(p->enum_values, i);
			found = json_equal(x, v) || (json_is_number(x) && json_is_number(v) &&
			                             json_number_value(x) == json_number_value(v));
		}
		if (!found) {
			gwt_err_set(e, "invalid_parameters", p->name,
			            "%s '%s' is not one of its allowed values", what, p->name);
			return AAM_E_INVAL;
		}
	}
	return AAM_OK;
}

int
gwt_params_check(const struct gwt_action *a, const json_t *params, struct gwt_err *e)
{
	if (params == NULL || !json_is_object(params)) {
		gwt_err_set(e, "invalid_parameters", NULL, "the parameters must be a JSON object");
		return AAM_E_INVAL;
	}
	const char *k;
	const json_t *v;
	json_object_foreach((json_t *)(uintptr_t)params, k, v)
	{
		long idx = gwt_param_find(a->params, a->nparams, k, strlen(k));
		if (idx < 0) {
			gwt_err_set(e, "unknown_parameter", NULL,
			            "the action %s.%s has no such parameter", a->resource, a->name);
			return AAM_E_INVAL;
		}
		const struct gwt_param *p = &a->params[idx];
		if (json_is_null(v)) {
			if (p->required) {
				gwt_err_set(e, "invalid_parameters", p->name,
				            "parameter '%s' is required and cannot be null",
				            p->name);
				return AAM_E_INVAL;
			}
			continue;
		}
		if (p->type != GWT_ARRAY) {
			int rc = check_scalar(p, p->type, v, "parameter", e);
			if (rc != AAM_OK)
				return rc;
			continue;
		}
		if (!json_is_array(v)) {
			gwt_err_set(e, "invalid_parameters", p->name,
			            "parameter '%s' must be an array", p->name);
			return AAM_E_INVAL;
		}
		if ((int64_t)json_array_size(v) > p->max_length) {
			gwt_err_set(e, "invalid_parameters", p->name,
			            "parameter '%s' has more than %lld items", p->name,
			            (long long)p->max_length);
			return AAM_E_INVAL;
		}
		/* Items are bounded like any string parameter; max_length counts items here. */
		struct gwt_param item = *p;
		item.max_length = GWT_STRING_MAX;
		item.min_length = 0;
		for (size_t i = 0; i < json_array_size(v); i++) {
			int rc = check_scalar(&item, p->items, json_array_get(v, i),
			                      "an item of parameter", e);
			if (rc != AAM_OK)
				return rc;
		}
	}
	for (size_t i = 0; i < a->nparams; i++) {
		const json_t *v2 = json_object_get(params, a->params[i].name);
		if (a->params[i].required && (v2 == NULL || json_is_null(v2))) {
			gwt_err_set(e, "invalid_parameters", a->params[i].name,
			            "parameter '%s' is required", a->params[i].name);
			return AAM_E_INVAL;
		}
	}
	return AAM_OK;
}
