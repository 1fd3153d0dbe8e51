/*
 * RFC 8785 canonical JSON; see jcs.h.
 */
#include "common/jcs.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "common/buf.h"

/*
 * Decodes one UTF-8 sequence at S[*I..N) into a code point.  Returns false
 * for malformed input (overlong, surrogate, beyond U+10FFFF, truncated).
 */
static bool
utf8_next(const unsigned char *s, size_t n, size_t *i, uint32_t *cp)
{
	unsigned char c = s[*i];
	uint32_t v;
	size_t len;
	if (c < 0x80) {
		*cp = c;
		(*i)++;
		return true;
	}
	if (c >= 0xC2 && c <= 0xDF) {
		v = c & 0x1Fu;
		len = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
		v = c & 0x0Fu;
		len = 3;
	} else if (c >= 0xF0 && c <= 0xF4) {
		v = c & 0x07u;
		len = 4;
	} else {
		return false;
	}
	if (n - *i < len)
		return false;
	for (size_t k = 1; k < len; k++) {
		unsigned char d = s[*i + k];
		if ((d & 0xC0) != 0x80)
			return false;
		v = (v << 6) | (d & 0x3Fu);
	}
	if ((len == 3 && v < 0x800) || (len == 4 && (v < 0x10000 || v > 0x10FFFF)) ||
	    (v >= 0xD800 && v <= 0xDFFF))
		return false;
	*cp = v;
	*i += len;
	return true;
}

/*
 * The next UTF-16 code unit of a UTF-8 string; a supplementary character
 * yields its high surrogate, then (through PENDING) its low one.  Invalid
 * UTF-8 sorts as U+FFFD so the comparison stays total.
 */
static uint32_t
utf16_next(const unsigned char *s, size_t n, size_t *i, uint32_t *pending)
{
	if (*pending != 0) {
		uint32_t u = *pending;
		*pending = 0;
		return u;
	}
	uint32_t cp;
	if (!utf8_next(s, n, i, &cp)) {
		(*i)++;
		return 0xFFFD;
	}
	if (cp < 0x10000)
		return cp;
	cp -= 0x10000;
	*pending = 0xDC00 + (cp & 0x3FF);
	return 0xD800 + (cp >> 10);
}

int
aam_jcs_key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
	size_t i = 0, j = 0;
	uint32_t pa = 0, pb = 0;
	while ((i < alen || pa != 0) && (j < blen || pb != 0)) {
		uint32_t ua = utf16_next(x, alen, &i, &pa);
		uint32_t ub = utf16_next(y, blen, &j, &pb);
		if (ua != ub)
			return ua < ub ? -1 : 1;
	}
	bool amore = i < alen || pa != 0, bmore = j < blen || pb != 0;
	return amore == bmore ? 0 : (amore ? 1 : -1);
}

static int
put_string(struct aam_buf *out, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	/* Validate first: nothing half-escaped is written for bad input. */
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		if (!utf8_next(p, n, &i, &cp))
			return AAM_E_INVAL;
	}
	aam_buf_append_byte(out, '"');
	size_t run = 0; /* start of the pending run of bytes written as themselves */
	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];
		const char *esc = NULL;
		char u[7];
		switch (c) {
		case '"':
			esc = "\\\"";
			break;
		case '\\':
			esc = "\\\\";
			break;
		case '\b':
			esc = "\\b";
			break;
		case '\t':
			esc = "\\t";
			break;
		case '\n':
			esc = "\\n";
			break;
		case '\f':
			esc = "\\f";
			break;
		case '\r':
			esc = "\\r";
			break;
		default:
			if (c < 0x20) {
				memcpy(u, "\\u00", 4);
				u[4] = hex[c >> 4];
				u[5] = hex[c & 15];
				u[6] = '\0';
				esc = u;
			}
			break;
		}
		if (esc == NULL)
			continue;
		aam_buf_append(out, p + run, i - run);
		aam_buf_append_str(out, esc);
		run = i + 1;
	}
	aam_buf_append(out, p + run, n - run);
	return aam_buf_append_byte(out, '"');
}

int
aam_jcs_number(double d, char *out, size_t cap)
{
	if (cap < AAM_JCS_NUMBER_MAX || isnan(d) || isinf(d))
		return AAM_E_INVAL;
	if (d == 0) {
		/* Both zeros print as "0" (ECMAScript: -0 toString is "0"). */
		snprintf(out, cap, "0");
		return AAM_OK;
	}
	/*
	 * The shortest decimal that reads back as D: try 1..17 significant
	 * digits.  %.*e rounds correctly in glibc, so the first precision that
	 * round-trips gives the digits ECMAScript's algorithm chooses (the
	 * shortest; for ties glibc's nearest rounding matches the spec's
	 * "closest to D" requirement).
	 */
	char tmp[40];
	int prec;
	for (prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, d);
		if (strtod(tmp, NULL) == d)
			break;
	}
	/* tmp: [-]D[.DDD]e[+-]XX; split into sign, digits and exponent. */
	const char *p = tmp;
	bool neg = false;
	if (*p == '-') {
		neg = true;
		p++;
	}
	char digits[20];
	size_t k = 0;
	for (; *p != 'e'; p++)
		if (*p != '.')
			digits[k++] = *p;
	while (k > 1 && digits[k - 1] == '0')
		k--;
	digits[k] = '\0';
	long e = strtol(p + 1, NULL, 10);
	long n = e + 1; /* position of the decimal point relative to the digits */
	size_t o = 0;
	char *w = out;
	if (neg)
		w[o++] = '-';
	if ((long)k <= n && n <= 21) {
		memcpy(w + o, digits, k);
		o += k;
		for (long z = 0; z < n - (long)k; z++)
			w[o++] = '0';
	} else if (0 < n && n <= 21) {
		memcpy(w + o, digits, (size_t)n);
		o += (size_t)n;
		w[o++] = '.';
		memcpy(w + o, digits + n, k - (size_t)n);
		o += k - (size_t)n;
	} else if (-6 < n && n <= 0) {
		w[o++] = '0';
		w[o++] = '.';
		for (long z = 0; z < -n; z++)
			w[o++] = '0';
		memcpy(w + o, digits, k);
		o += k;
	} else {
		w[o++] = digits[0];
		if (k > 1) {
			w[o++] = '.';
			memcpy(w + o, digits + 1, k - 1);
			o += k - 1;
		}
		int m = snprintf(w + o, cap - o, "e%c%ld", n - 1 >= 0 ? '+' : '-',
		                 n - 1 >= 0 ? n - 1 : -(n - 1));
		if (m < 0 || (size_t)m >= cap - o)
			return AAM_E_INVAL;
		o += (size_t)m;
	}
	w[o] = '\0';
	return AAM_OK;
}

struct member {
	const char *key;
	size_t klen;
	json_t *val;
};

static int
member_cmp(const void *a, const void *b)
{
	const struct member *x = a, *y = b;
	return aam_jcs_key_cmp(x->key, x->klen, y->key, y->klen);
}

static int serialize(const json_t *v, struct aam_buf *out, unsigned depth);

static int
put_object(const json_t *v, struct aam_buf *out, unsigned depth)
{
	size_t n = json_object_size(v);
	struct member *m = n ? calloc(n, sizeof(*m)) : NULL;
	if (n != 0 && m == NULL)
		return AAM_E_NOMEM;
	size_t i = 0;
	const char *key;
	json_t *val;
	/* json_object_foreach takes a non-const object; iteration does not modify it. */
	json_object_foreach((json_t *)(uintptr_t)v, key, val)
	{
		if (i == n)
			break;
		m[i].key = key;
		m[i].klen = strlen(key);
		m[i].val = val;
		i++;
	}
	qsort(m, i, sizeof(*m), member_cmp);
	int rc = aam_buf_append_byte(out, '{');
	for (size_t j = 0; rc == AAM_OK && j < i; j++) {
		if (j > 0)
			aam_buf_append_byte(out, ',');
		rc = put_string(out, m[j].key, m[j].klen);
		if (rc == AAM_OK)
			rc = aam_buf_append_byte(out, ':');
		if (rc == AAM_OK)
			rc = serialize(m[j].val, out, depth + 1);
	}
	if (rc == AAM_OK)
		rc = aam_buf_append_byte(out, '}');
	free(m);
	return rc;
}

static int
serialize(const json_t *v, struct aam_buf *out, unsigned depth)
{
	if (v == NULL || depth > AAM_JCS_MAX_DEPTH)
		return AAM_E_INVAL;
	char num[AAM_JCS_NUMBER_MAX];
	int rc;
	switch (json_typeof(v)) {
	case JSON_NULL:
		return aam_buf_append_str(out, "null");
	case JSON_TRUE:
		return aam_buf_append_str(out, "true");
	case JSON_FALSE:
		return aam_buf_append_str(out, "false");
	case JSON_INTEGER: {
		json_int_t x = json_integer_value(v);
		if (x > AAM_JCS_INT_MAX || x < -AAM_JCS_INT_MAX)
			return AAM_E_INVAL;
		return aam_buf_printf(out, "%lld", (long long)x);
	}
	case JSON_REAL:
		rc = aam_jcs_number(json_real_value(v), num, sizeof(num));
		return rc != AAM_OK ? rc : aam_buf_append_str(out, num);
	case JSON_STRING:
		return put_string(out, json_string_value(v), json_string_length(v));
	case JSON_ARRAY:
		rc = aam_buf_append_byte(out, '[');
		for (size_t i = 0; rc == AAM_OK && i < json_array_size(v); i++) {
			if (i > 0)
				aam_buf_append_byte(out, ',');
			rc = serialize(json_array_get(v, i), out, depth + 1);
		}
		return rc != AAM_OK ? rc : aam_buf_append_byte(out, ']');
	case JSON_OBJECT:
		return put_object(v, out, depth);
	}
	return AAM_E_INVAL;
}

int
aam_jcs_serialize(const json_t *v, struct aam_buf *out)
{
	if (out == NULL)
		return AAM_E_INVAL;
	int rc = serialize(v, out, 1);
	if (rc == AAM_OK && aam_buf_failed(out))
		rc = out->err;
	return rc;
}
