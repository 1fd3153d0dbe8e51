/*
 * The parameter digest of audit records: SHA-256 over the RFC 8785 (JCS)
 * canonical form of the call's parameters, so one set of parameters has
 * exactly one digest whatever key order or number spelling the agent
 * used, and `aamctl audit hash` or any JCS library reproduces it.
 */
#include "gateway/tools_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "aam/err.h"

int
gwt_number_text(double d, char *out, size_t outlen)
{
	if (!isfinite(d) || outlen < 32)
		return AAM_E_INVAL;
	if (d == 0) {
		snprintf(out, outlen, "0");
		return AAM_OK;
	}
	char sign[2] = {d < 0 ? '-' : '\0', '\0'};
	double x = fabs(d);
	/* The shortest digit string that reads back as the same double. */
	char e[40];
	int prec = 1;
	for (; prec <= 17; prec++) {
		snprintf(e, sizeof(e), "%.*e", prec - 1, x);
		if (strtod(e, NULL) == x)
			break;
	}
	char digits[24];
	size_t k = 0;
	const char *p = e;
	for (; *p && *p != 'e'; p++)
		if (*p >= '0' && *p <= '9')
			digits[k++] = *p;
	while (k > 1 && digits[k - 1] == '0')
		k--;
	digits[k] = '\0';
	int n = atoi(p + 1) + 1; /* x = 0.DIGITS * 10^n */
	int kk = (int)k;
	if (kk <= n && n <= 21) {
		snprintf(out, outlen, "%s%s%0*d", sign, digits, n - kk, 0);
		if (n == kk)
			snprintf(out, outlen, "%s%s", sign, digits);
	} else if (0 < n && n <= 21) {
		snprintf(out, outlen, "%s%.*s.%s", sign, n, digits, digits + n);
	} else if (-6 < n && n <= 0) {
		snprintf(out, outlen, "%s0.%0*d%s", sign, -n, 0, digits);
		if (n == 0)
			snprintf(out, outlen, "%s0.%s", sign, digits);
	} else {
		int ex = n - 1;
		if (kk == 1)
			snprintf(out, outlen, "%s%se%c%d", sign, digits, ex < 0 ? '-' : '+',
			         abs(ex));
		else
			snprintf(out, outlen, "%s%c.%se%c%d", sign, digits[0], digits + 1,
			         ex < 0 ? '-' : '+', abs(ex));
	}
	return AAM_OK;
}

static int
jcs_string(const char *s, size_t len, struct aam_buf *b)
{
	static const char hex[] = "0123456789abcdef";
	aam_buf_append_byte(b, '"');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '"':
			aam_buf_append_str(b, "\\\"");
			break;
		case '\\':
			aam_buf_append_str(b, "\\\\");
			break;
		case '\b':
			aam_buf_append_str(b, "\\b");
			break;
		case '\f':
			aam_buf_append_str(b, "\\f");
			break;
		case '\n':
			aam_buf_append_str(b, "\\n");
			break;
		case '\r':
			aam_buf_append_str(b, "\\r");
			break;
		case '\t':
			aam_buf_append_str(b, "\\t");
			break;
		default:
			if (c < 0x20) {
				char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
				aam_buf_append(b, u, 6);
			} else {
				aam_buf_append_byte(b, c);
			}
		}
	}
	return aam_buf_append_byte(b, '"');
}

/* Next UTF-16 code unit of a UTF-8 string (input already valid UTF-8). */
struct u16it {
	const unsigned char *p, *end;
	unsigned pending; /* low surrogate still to return, or 0 */
};

static int
u16_next(struct u16it *it)
{
	if (it->pending) {
		int v = (int)it->pending;
		it->pending = 0;
		return v;
	}
	if (it->p >= it->end)
		return -1;
	unsigned c = *it->p, cp;
	size_t n;
	if (c < 0x80) {
		cp = c;
		n = 1;
	} else if (c < 0xe0) {
		cp = c & 0x1f;
		n = 2;
	} else if (c < 0xf0) {
		cp = c & 0x0f;
		n = 3;
	} else {
		cp = c & 0x07;
		n = 4;
	}
	for (size_t i = 1; i < n && it->p + i < it->end; i++)
		cp = (cp << 6) | (it->p[i] & 0x3f);
	it->p += n;
	if (cp >= 0x10000) {
		cp -= 0x10000;
		it->pending = 0xdc00 | (cp & 0x3ff);
		return (int)(0xd800 | (cp >> 10));
	}
	return (int)cp;
}

static int
u16_cmp(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	struct u16it ix = {(const unsigned char *)x, (const unsigned char *)x + strlen(x), 0};
	struct u16it iy = {(const unsigned char *)y, (const unsigned char *)y + strlen(y), 0};
	for (;;) {
		int cx = u16_next(&ix), cy = u16_next(&iy);
		if (cx != cy)
			return cx < cy ? -1 : 1;
		if (cx < 0)
			return 0;
	}
}

static int
jcs_value(const json_t *j, struct aam_buf *b, unsigned depth)
{
	char num[40];
	if (depth > 64)
		return AAM_E_TOOBIG;
	switch (json_typeof(j)) {
	case JSON_NULL:
		return aam_buf_append_str(b, "null");
	case JSON_TRUE:
		return aam_buf_append_str(b, "true");
	case JSON_FALSE:
		return aam_buf_append_str(b, "false");
	case JSON_STRING:
		return jcs_string(json_string_value(j), json_string_length(j), b);
	case JSON_INTEGER: {
		json_int_t i = json_integer_value(j);
		/* JCS numbers are IEEE doubles: beyond 2^53 the double's form is canonical. */
		if (i > (json_int_t)9007199254740992LL || i < -(json_int_t)9007199254740992LL) {
			if (gwt_number_text((double)i, num, sizeof(num)) != AAM_OK)
				return AAM_E_INVAL;
		} else {
			snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, i);
		}
		return aam_buf_append_str(b, num);
	}
	case JSON_REAL:
		if (gwt_number_text(json_real_value(j), num, sizeof(num)) != AAM_OK)
			return AAM_E_INVAL;
		return aam_buf_append_str(b, num);
	case JSON_ARRAY:
		aam_buf_append_byte(b, '[');
		for (size_t i = 0; i < json_array_size(j); i++) {
			if (i > 0)
				aam_buf_append_byte(b, ',');
			int rc = jcs_value(json_array_get(j, i), b, depth + 1);
			if (rc != AAM_OK)
				return rc;
		}
		return aam_buf_append_byte(b, ']');
	case JSON_OBJECT: {
		size_t n = json_object_size(j);
		const char **keys = calloc(n ? n : 1, sizeof(*keys));
		if (keys == NULL)
			return AAM_E_NOMEM;
		size_t i = 0;
		const char *k;
		json_t *v;
		json_object_foreach((json_t *)(uintptr_t)j, k, v)
		{
			keys[i++] = k;
		}
		qsort(keys, n, sizeof(*keys), u16_cmp);
		aam_buf_append_byte(b, '{');
		int rc = AAM_OK;
		for (i = 0; i < n && rc == AAM_OK; i++) {
			if (i > 0)
				aam_buf_append_byte(b, ',');
			jcs_string(keys[i], strlen(keys[i]), b);
			aam_buf_append_byte(b, ':');
			rc = jcs_value(json_object_get(j, keys[i]), b, depth + 1);
		}
		free(keys);
		if (rc != AAM_OK)
			return rc;
		return aam_buf_append_byte(b, '}');
	}
	}
	return AAM_E_INVAL;
}

int
gwt_jcs(const json_t *j, struct aam_buf *b)
{
	int rc = jcs_value(j, b, 0);
	return rc != AAM_OK ? rc : b->err;
}

int
gwt_params_digest(const json_t *params, char out[65])
{
	struct aam_buf b;
	aam_buf_init(&b, 64u * 1024 * 1024);
	int rc = params != NULL ? gwt_jcs(params, &b) : aam_buf_append_str(&b, "{}");
	unsigned char md[32];
	unsigned int mdlen = 0;
	if (rc == AAM_OK && EVP_Digest(b.data != NULL ? b.data : (const uint8_t *)"", b.len, md,
	                               &mdlen, EVP_sha256(), NULL) != 1)
		rc = AAM_E_CRYPTO;
	aam_buf_uninit(&b);
	if (rc != AAM_OK)
		return rc;
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
	return AAM_OK;
}
