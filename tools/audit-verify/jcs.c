/*
 * A strict scanner for one canonical JSON (RFC 8785 JCS) record line.
 *
 * The verifier does not need a JSON tree: it needs to know that the line
 * is exactly one canonical object (so one event has one spelling) and the
 * values of two top-level members, `seq` and `time`.  Canonical means: no
 * insignificant whitespace; members sorted by their names' UTF-16 code
 * units, no duplicates; strings escape exactly the characters JCS
 * escapes, in the way it escapes them; numbers in ECMAScript's shortest
 * round-trip form.  Nesting is limited so a hostile line cannot exhaust
 * the stack.
 */
#include "av.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JCS_MAX_DEPTH 64

struct scan {
	const unsigned char *p, *end;
	const char *why;
	int depth;
};

static bool
fail(struct scan *s, const char *why)
{
	if (s->why == NULL)
		s->why = why;
	return false;
}

/* Length of the well-formed UTF-8 scalar at P, 0 if ill-formed. */
static size_t
utf8_len(const unsigned char *p, const unsigned char *end, uint32_t *cp)
{
	size_t n = (size_t)(end - p);
	if (n == 0)
		return 0;
	unsigned char c = p[0];
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf;
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		*cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		*cp = c & 0x0f;
		lo = c == 0xe0 ? 0xa0 : 0x80;
		hi = c == 0xed ? 0x9f : 0xbf;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		*cp = c & 0x07;
		lo = c == 0xf0 ? 0x90 : 0x80;
		hi = c == 0xf4 ? 0x8f : 0xbf;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		unsigned char b = p[i];
		if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xbf))
			return 0;
		*cp = (*cp << 6) | (b & 0x3f);
	}
	return len;
}

static int
hex4(const unsigned char *p)
{
	int v = 0;
	for (int i = 0; i < 4; i++) {
		int d;
		if (p[i] >= '0' && p[i] <= '9')
			d = p[i] - '0';
		else if (p[i] >= 'a' && p[i] <= 'f')
			d = p[i] - 'a' + 10;
		else
			return -1; /* JCS writes lowercase hex */
		v = v << 4 | d;
	}
	return v;
}

/* A canonical string; on success BODY and LEN span the text between the quotes. */
static bool
scan_string(struct scan *s, const unsigned char **body, size_t *len)
{
	if (s->p >= s->end || *s->p != '"')
		return fail(s, "expected a string");
	s->p++;
	*body = s->p;
	while (s->p < s->end) {
		unsigned char c = *s->p;
		if (c == '"') {
			*len = (size_t)(s->p - *body);
			s->p++;
			return true;
		}
		if (c == '\\') {
			if (s->end - s->p < 2)
				return fail(s, "string ends inside an escape");
			unsigned char e = s->p[1];
			if (e == '"' || e == '\\' || e == 'b' || e == 'f' || e == 'n' || e == 'r' ||
			    e == 't') {
				s->p += 2;
				continue;
			}
			if (e != 'u' || s->end - s->p < 6)
				return fail(s, "string has an escape JCS does not write");
			int v = hex4(s->p + 2);
			/* Only control characters without a short form are \u-escaped. */
			if (v < 0 || v >= 0x20 || v == 0x08 || v == 0x09 || v == 0x0a ||
			    v == 0x0c || v == 0x0d)
				return fail(s, "string has a \\u escape JCS does not write");
			s->p += 6;
			continue;
		}
		if (c < 0x20)
			return fail(s, "string has an unescaped control character");
		uint32_t cp;
		size_t n = utf8_len(s->p, s->end, &cp);
		if (n == 0)
			return fail(s, "string is not valid UTF-8");
		s->p += n;
	}
	return fail(s, "unterminated string");
}

/* UTF-16 code units of a canonical string body, for JCS member ordering. */
struct u16it {
	const unsigned char *p, *end;
	int pending; /* low surrogate still to return, or -1 */
};

static int
u16_next(struct u16it *it)
{
	if (it->pending >= 0) {
		int u = it->pending;
		it->pending = -1;
		return u;
	}
	if (it->p >= it->end)
		return -1;
	uint32_t cp;
	if (*it->p == '\\') {
		unsigned char e = it->p[1];
		it->p += 2;
		switch (e) {
		case 'b':
			return 0x08;
		case 'f':
			return 0x0c;
		case 'n':
			return 0x0a;
		case 'r':
			return 0x0d;
		case 't':
			return 0x09;
		case 'u':
			cp = (uint32_t)hex4(it->p);
			it->p += 4;
			return (int)cp;
		default:
			return e; /* '"' or '\\' */
		}
	}
	size_t n = utf8_len(it->p, it->end, &cp);
	it->p += n ? n : 1; /* bodies were validated; n is never 0 here */
	if (cp < 0x10000)
		return (int)cp;
	cp -= 0x10000;
	it->pending = (int)(0xdc00 + (cp & 0x3ff));
	return (int)(0xd800 + (cp >> 10));
}

static int
u16_compare(const unsigned char *a, size_t alen, const unsigned char *b, size_t blen)
{
	struct u16it x = {a, a + alen, -1}, y = {b, b + blen, -1};
	for (;;) {
		int u = u16_next(&x), v = u16_next(&y);
		if (u != v)
			return u < v ? -1 : 1; /* -1 (end) sorts first */
		if (u < 0)
			return 0;
	}
}

/*
 * Whether the JSON number text NUM is what ECMAScript's Number::toString
 * prints for its value (RFC 8785 3.2.2.3).
 */
static bool
number_canonical(const char *num, size_t len)
{
	char in[40];
	if (len == 0 || len >= sizeof(in))
		return false; /* no canonical number is this long */
	memcpy(in, num, len);
	in[len] = '\0';
	char *endp;
	double x = strtod(in, &endp);
	if (endp != in + len || !isfinite(x))
		return false;
	if (x == 0)
		return len == 1 && num[0] == '0'; /* also refuses "-0" */
	double ax = fabs(x);
	char t[40];
	int p;
	for (p = 1; p <= 17; p++) {
		snprintf(t, sizeof(t), "%.*e", p - 1, ax);
		if (strtod(t, NULL) == ax)
			break;
	}
	if (p > 17)
		return false;
	/* t is "d[.ddd]e[+-]xx": gather the digits and the exponent. */
	char digits[20];
	int k = 0;
	const char *q = t;
	for (; *q != 'e'; q++)
		if (*q >= '0' && *q <= '9')
			digits[k++] = *q;
	int e = atoi(q + 1);
	while (k > 1 && digits[k - 1] == '0')
		k--;
	int n = e + 1;
	char out[48];
	size_t o = 0;
	if (x < 0)
		out[o++] = '-';
	if (k <= n && n <= 21) {
		memcpy(out + o, digits, (size_t)k);
		o += (size_t)k;
		for (int i = 0; i < n - k; i++)
			out[o++] = '0';
	} else if (0 < n && n <= 21) {
		memcpy(out + o, digits, (size_t)n);
		o += (size_t)n;
		out[o++] = '.';
		memcpy(out + o, digits + n, (size_t)(k - n));
		o += (size_t)(k - n);
	} else if (-6 < n && n <= 0) {
		out[o++] = '0';
		out[o++] = '.';
		for (int i = 0; i < -n; i++)
			out[o++] = '0';
		memcpy(out + o, digits, (size_t)k);
		o += (size_t)k;
	} else {
		out[o++] = digits[0];
		if (k > 1) {
			out[o++] = '.';
			memcpy(out + o, digits + 1, (size_t)(k - 1));
			o += (size_t)(k - 1);
		}
		o += (size_t)snprintf(out + o, sizeof(out) - o, "e%c%d", n - 1 < 0 ? '-' : '+',
		                      abs(n - 1));
	}
	return o == len && memcmp(out, num, len) == 0;
}

static bool
scan_number(struct scan *s, const unsigned char **num, size_t *len)
{
	const unsigned char *start = s->p;
	if (s->p < s->end && *s->p == '-')
		s->p++;
	if (s->p >= s->end || *s->p < '0' || *s->p > '9')
		return fail(s, "invalid number");
	if (*s->p == '0')
		s->p++;
	else
		while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
			s->p++;
	if (s->p < s->end && *s->p == '.') {
		s->p++;
		if (s->p >= s->end || *s->p < '0' || *s->p > '9')
			return fail(s, "invalid number");
		while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
			s->p++;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (s->p >= s->end || *s->p < '0' || *s->p > '9')
			return fail(s, "invalid number");
		while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
			s->p++;
	}
	*num = start;
	*len = (size_t)(s->p - start);
	if (!number_canonical((const char *)start, *len))
		return fail(s, "number is not in JCS (ECMAScript) form");
	return true;
}

static bool scan_value(struct scan *s);

static bool
literal(struct scan *s, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return fail(s, "invalid literal");
	s->p += n;
	return true;
}

/* Member callback for the top-level object. */
struct top {
	struct av_record *r;
	bool have_seq, have_time;
};

static bool
top_member(struct scan *s, struct top *t, const unsigned char *name, size_t nlen)
{
	if (nlen == 3 && memcmp(name, "seq", 3) == 0) {
		const unsigned char *num;
		size_t len;
		if (!scan_number(s, &num, &len))
			return false;
		/* Digits only: a non-negative integer (canonical form ensures <= 2^53). */
		for (size_t i = 0; i < len; i++)
			if (num[i] < '0' || num[i] > '9')
				return fail(s, "seq is not a non-negative integer");
		if (len > 16 || av_parse_u64((const char *)num, len, &t->r->seq) != 0 ||
		    t->r->seq > (UINT64_C(1) << 53))
			return fail(s, "seq is not an integer below 2^53");
		t->have_seq = true;
		return true;
	}
	if (nlen == 4 && memcmp(name, "time", 4) == 0) {
		const unsigned char *body;
		size_t len;
		if (!scan_string(s, &body, &len))
			return false;
		if (len != AV_TIME_LEN)
			return fail(s, "time is not YYYY-MM-DDTHH:MM:SS.ffffffZ");
		memcpy(t->r->time, body, len);
		t->r->time[len] = '\0';
		t->have_time = true;
		return true;
	}
	return scan_value(s);
}

static bool
scan_object(struct scan *s, struct top *top)
{
	if (++s->depth > JCS_MAX_DEPTH)
		return fail(s, "nesting deeper than 64");
	s->p++; /* '{' */
	const unsigned char *prev = NULL;
	size_t prevlen = 0;
	if (s->p < s->end && *s->p == '}') {
		s->p++;
		s->depth--;
		return true;
	}
	for (;;) {
		const unsigned char *name;
		size_t nlen;
		if (s->p < s->end &&
		    (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
			return fail(s, "whitespace between tokens (JCS has none)");
		if (!scan_string(s, &name, &nlen))
			return fail(s, "expected a member name");
		if (prev != NULL) {
			int c = u16_compare(prev, prevlen, name, nlen);
			if (c == 0)
				return fail(s, "duplicate member name");
			if (c > 0)
				return fail(s, "member names are not in JCS order");
		}
		prev = name;
		prevlen = nlen;
		if (s->p >= s->end || *s->p != ':')
			return fail(s, "expected ':' (no whitespace in JCS)");
		s->p++;
		bool ok = top != NULL ? top_member(s, top, name, nlen) : scan_value(s);
		if (!ok)
			return false;
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			continue;
		}
		if (s->p < s->end && *s->p == '}') {
			s->p++;
			s->depth--;
			return true;
		}
		return fail(s, "expected ',' or '}' (no whitespace in JCS)");
	}
}

static bool
scan_array(struct scan *s)
{
	if (++s->depth > JCS_MAX_DEPTH)
		return fail(s, "nesting deeper than 64");
	s->p++; /* '[' */
	if (s->p < s->end && *s->p == ']') {
		s->p++;
		s->depth--;
		return true;
	}
	for (;;) {
		if (!scan_value(s))
			return false;
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			continue;
		}
		if (s->p < s->end && *s->p == ']') {
			s->p++;
			s->depth--;
			return true;
		}
		return fail(s, "expected ',' or ']' (no whitespace in JCS)");
	}
}

static bool
scan_value(struct scan *s)
{
	if (s->p >= s->end)
		return fail(s, "unexpected end of line");
	const unsigned char *b;
	size_t n;
	switch (*s->p) {
	case ' ':
	case '\t':
	case '\n':
	case '\r':
		return fail(s, "whitespace between tokens (JCS has none)");
	case '{':
		return scan_object(s, NULL);
	case '[':
		return scan_array(s);
	case '"':
		return scan_string(s, &b, &n);
	case 't':
		return literal(s, "true");
	case 'f':
		return literal(s, "false");
	case 'n':
		return literal(s, "null");
	default:
		return scan_number(s, &b, &n);
	}
}

static int
two(const char *p)
{
	return (p[0] - '0') * 10 + (p[1] - '0');
}

/* YYYY-MM-DDTHH:MM:SS.ffffffZ with real calendar dates (RFC 3339, UTC). */
static bool
time_valid(const char *t)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";
	for (size_t i = 0; i < AV_TIME_LEN; i++) {
		if (shape[i] == 'd' ? (t[i] < '0' || t[i] > '9') : t[i] != shape[i])
			return false;
	}
	int year = two(t) * 100 + two(t + 2);
	int mon = two(t + 5), day = two(t + 8);
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (mon < 1 || mon > 12 || day < 1)
		return false;
	int dim = mdays[mon - 1];
	if (mon == 2 && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0))
		dim = 29;
	/* Second 60 is a leap second, which RFC 3339 allows. */
	return day <= dim && two(t + 11) <= 23 && two(t + 14) <= 59 && two(t + 17) <= 60;
}

bool
av_jcs_record(const char *line, size_t len, struct av_record *r, const char **why)
{
	struct scan s = {(const unsigned char *)line, (const unsigned char *)line + len, NULL, 0};
	struct top top = {r, false, false};
	memset(r, 0, sizeof(*r));
	*why = NULL;
	if (len == 0 || line[0] != '{') {
		*why = "record is not a JSON object";
		return false;
	}
	if (!scan_object(&s, &top)) {
		*why = s.why;
		return false;
	}
	if (s.p != s.end) {
		*why = "bytes after the record object";
		return false;
	}
	if (!top.have_seq) {
		*why = "record has no seq";
		return false;
	}
	if (!top.have_time || !time_valid(r->time)) {
		*why = top.have_time ? "time is not a valid RFC 3339 UTC time with microseconds"
		                     : "record has no time";
		return false;
	}
	return true;
}
