/*
 * The DPoP "htu" comparison form.  RFC 9449 section 4.3 compares the
 * proof's htu with the request URI "after syntax-based and scheme-based
 * normalisation" (RFC 3986 sections 6.2.2 and 6.2.3), ignoring query and
 * fragment.  Both sides go through the same function here, so two
 * spellings of one resource compare equal and nothing else does.
 */
#include "common/jose.h"
#include "aam/err.h"

#include <string.h>
#include <strings.h>

static bool
is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_unreserved(unsigned char c)
{
	return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static bool
is_sub_delim(unsigned char c)
{
	return c != '\0' && strchr("!$&'()*+,;=", c) != NULL;
}

static int
hex_value(unsigned char c)
{
	if (is_digit(c))
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static unsigned char
to_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/*
 * Normalises the path's characters into OUT: valid escapes get uppercase
 * hex and are decoded when they stand for an unreserved character; raw
 * characters that a path may not hold are percent-encoded, as clients
 * do before sending them, so "|" and "%7C" agree.
 */
static int
normalise_path_chars(const unsigned char *p, size_t n, struct aam_buf *out)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];
		if (c == '%') {
			if (i + 2 >= n)
				return AAM_E_PARSE;
			int hi = hex_value(p[i + 1]), lo = hex_value(p[i + 2]);
			if (hi < 0 || lo < 0)
				return AAM_E_PARSE;
			unsigned char d = (unsigned char)(hi * 16 + lo);
			if (is_unreserved(d)) {
				aam_buf_append_byte(out, d);
			} else {
				aam_buf_append_byte(out, '%');
				aam_buf_append_byte(out, (uint8_t)hex[d >> 4]);
				aam_buf_append_byte(out, (uint8_t)hex[d & 15]);
			}
			i += 2;
		} else if (is_unreserved(c) || is_sub_delim(c) || c == ':' || c == '@' ||
		           c == '/') {
			aam_buf_append_byte(out, c);
		} else if (c <= 0x20 || c == 0x7f) {
			return AAM_E_PARSE; /* a request target never holds these */
		} else {
			aam_buf_append_byte(out, '%');
			aam_buf_append_byte(out, (uint8_t)hex[c >> 4]);
			aam_buf_append_byte(out, (uint8_t)hex[c & 15]);
		}
	}
	return out->err;
}

/*
 * RFC 3986 section 5.2.4 remove_dot_segments on an absolute path (it
 * starts with '/').  The output never grows longer than the input.
 */
static int
remove_dot_segments(const char *in, size_t n, struct aam_buf *out)
{
	size_t base = out->len;
	bool trailing = false;
	size_t i = 1; /* past the leading '/' */
	for (;;) {
		size_t start = i;
		while (i < n && in[i] != '/')
			i++;
		size_t seglen = i - start;
		const char *seg = in + start;
		trailing = false;
		if (seglen == 1 && seg[0] == '.') {
			trailing = true;
		} else if (seglen == 2 && seg[0] == '.' && seg[1] == '.') {
			/* Drop the last output segment, if any. */
			while (out->len > base && out->data[out->len - 1] != '/')
				out->len--;
			if (out->len > base)
				out->len--;
			trailing = true;
		} else {
			aam_buf_append_byte(out, '/');
			aam_buf_append(out, seg, seglen);
		}
		if (i >= n)
			break;
		i++; /* the '/' */
	}
	if (out->len == base || trailing)
		aam_buf_append_byte(out, '/');
	if (out->err == AAM_OK && out->data != NULL)
		out->data[out->len] = '\0';
	return out->err;
}

/* Appends the lowercased host; IP literals keep only hex digits, ':' and '.'. */
static int
normalise_host(const unsigned char *h, size_t n, struct aam_buf *out)
{
	if (n == 0)
		return AAM_E_PARSE;
	if (h[0] == '[') {
		if (n < 3 || h[n - 1] != ']')
			return AAM_E_PARSE;
		for (size_t i = 1; i + 1 < n; i++)
			if (hex_value(h[i]) < 0 && h[i] != ':' && h[i] != '.')
				return AAM_E_PARSE;
	} else {
		/* A reg-name; percent-encoded hosts are refused rather than decoded. */
		for (size_t i = 0; i < n; i++)
			if (!is_unreserved(h[i]) && !is_sub_delim(h[i]))
				return AAM_E_PARSE;
	}
	for (size_t i = 0; i < n; i++)
		aam_buf_append_byte(out, to_lower(h[i]));
	return out->err;
}

int
aam_dpop_htu_normalise(const char *uri, size_t len, struct aam_buf *out)
{
	if (uri == NULL || out == NULL)
		return AAM_E_INVAL;
	if (len > AAM_DPOP_MAX_HTU)
		return AAM_E_TOOBIG;
	const unsigned char *u = (const unsigned char *)uri;
	size_t restore = out->len;

	/* scheme ":" "//" */
	size_t i = 0;
	while (i < len &&
	       (is_alpha(u[i]) || is_digit(u[i]) || u[i] == '+' || u[i] == '-' || u[i] == '.'))
		i++;
	if (i == 0 || !is_alpha(u[0]) || i + 3 > len || memcmp(uri + i, "://", 3) != 0)
		return AAM_E_PARSE;
	bool https;
	if (i == 4 && strncasecmp(uri, "http", 4) == 0)
		https = false;
	else if (i == 5 && strncasecmp(uri, "https", 5) == 0)
		https = true;
	else
		return AAM_E_PARSE;

	/* authority = host [ ":" port ], no userinfo */
	size_t a = i + 3, e = a;
	while (e < len && u[e] != '/' && u[e] != '?' && u[e] != '#')
		e++;
	if (memchr(uri + a, '@', e - a) != NULL)
		return AAM_E_PARSE;
	size_t host_end = e;
	if (a < e && u[a] == '[') {
		const char *rb = memchr(uri + a, ']', e - a);
		if (rb == NULL)
			return AAM_E_PARSE;
		host_end = (size_t)(rb - uri) + 1;
		if (host_end != e && u[host_end] != ':')
			return AAM_E_PARSE;
	} else {
		const char *colon = memchr(uri + a, ':', e - a);
		if (colon != NULL)
			host_end = (size_t)(colon - uri);
	}
	unsigned long port = 0;
	bool has_port = false;
	if (host_end < e) {
		/* ":" then digits; an empty port is the default (RFC 3986 section 6.2.3). */
		for (size_t p = host_end + 1; p < e; p++) {
			if (!is_digit(u[p]))
				return AAM_E_PARSE;
			port = port * 10 + (unsigned long)(u[p] - '0');
			if (port > 65535)
				return AAM_E_PARSE;
			has_port = true;
		}
		if (has_port && port == 0)
			return AAM_E_PARSE;
	}

	aam_buf_append_str(out, https ? "https://" : "http://");
	int rc = normalise_host(u + a, host_end - a, out);
	if (rc == AAM_OK && has_port && port != (https ? 443u : 80u))
		rc = aam_buf_printf(out, ":%lu", port);

	/* path: up to query or fragment, which are dropped */
	size_t pe = e;
	while (pe < len && u[pe] != '?' && u[pe] != '#')
		pe++;
	for (size_t q = pe; q < len && rc == AAM_OK; q++)
		if (u[q] <= 0x20 || u[q] == 0x7f)
			rc = AAM_E_PARSE;
	if (rc == AAM_OK) {
		struct aam_buf path;
		aam_buf_init(&path, 3 * AAM_DPOP_MAX_HTU + 2);
		if (pe == e)
			rc = aam_buf_append_byte(&path, '/');
		else
			rc = normalise_path_chars(u + e, pe - e, &path);
		if (rc == AAM_OK)
			rc = remove_dot_segments(aam_buf_cstr(&path), path.len, out);
		aam_buf_uninit(&path);
	}
	if (rc == AAM_OK)
		rc = out->err;
	if (rc != AAM_OK && out->data != NULL) {
		out->len = restore;
		out->data[restore] = '\0';
	}
	return rc;
}
