/*
 * URL parsing, normalisation and destination binding (see binding.h).
 */
#include "vault/binding.h"
#include "aam/err.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
refuse(char *why, size_t whylen, const char *msg)
{
	if (whylen > 0)
		snprintf(why, whylen, "%s", msg);
	return AAM_E_INVAL;
}

static char
lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char
upper(char c)
{
	return (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
}

/* RFC 3986 unreserved, sub-delims, ':' and '@': what a pchar may be unencoded. */
static bool
is_pchar(char c)
{
	return is_alpha(c) || is_digit(c) || strchr("-._~!$&'()*+,;=:@", c) != NULL;
}

static uint16_t
default_port(const char *scheme)
{
	return strcmp(scheme, "https") == 0 ? 443 : 80;
}

/* A label that a URL parser would read as a number (WHATWG "ends in a number"). */
static bool
numeric_label(const char *p, size_t n)
{
	if (n == 0)
		return false;
	if (n >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		for (size_t i = 2; i < n; i++) {
			if (!is_hex(p[i]))
				return false;
		}
		return true;
	}
	for (size_t i = 0; i < n; i++) {
		if (!is_digit(p[i]))
			return false;
	}
	return true;
}

/* Exactly four decimal octets 0-255 without leading zeros. */
static bool
canonical_ipv4(const char *h)
{
	int parts = 0;
	const char *p = h;
	for (;;) {
		size_t n = 0;
		unsigned v = 0;
		while (is_digit(p[n])) {
			v = v * 10 + (unsigned)(p[n] - '0');
			if (++n > 3)
				return false;
		}
		if (n == 0 || v > 255 || (n > 1 && p[0] == '0'))
			return false;
		parts++;
		p += n;
		if (*p == '\0')
			break;
		if (*p != '.')
			return false;
		p++;
	}
	return parts == 4;
}

static int
parse_host(const char *a, size_t n, struct vault_url *u, char *why, size_t whylen)
{
	if (n == 0)
		return refuse(why, whylen, "empty host");
	if (a[0] == '[') {
		if (n < 3 || a[n - 1] != ']')
			return refuse(why, whylen, "malformed IPv6 literal");
		char tmp[64];
		size_t m = n - 2;
		if (m >= sizeof(tmp))
			return refuse(why, whylen, "malformed IPv6 literal");
		memcpy(tmp, a + 1, m);
		tmp[m] = '\0';
		if (strchr(tmp, '%') != NULL)
			return refuse(why, whylen, "IPv6 zone identifiers are not allowed");
		struct in6_addr addr;
		if (inet_pton(AF_INET6, tmp, &addr) != 1)
			return refuse(why, whylen, "malformed IPv6 literal");
		if (inet_ntop(AF_INET6, &addr, u->host, sizeof(u->host)) == NULL)
			return refuse(why, whylen, "malformed IPv6 literal");
		u->host_ipv6 = true;
		u->host_ip = true;
		return AAM_OK;
	}
	if (n >= sizeof(u->host) || n > 253)
		return refuse(why, whylen, "host name too long");
	for (size_t i = 0; i < n; i++) {
		char c = a[i];
		if (!(is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_'))
			return refuse(why, whylen, "invalid character in host");
		u->host[i] = lower(c);
	}
	u->host[n] = '\0';
	if (u->host[n - 1] == '.')
		return refuse(why, whylen, "host with a trailing dot");
	/* Labels: non-empty, at most 63 characters. */
	const char *last = u->host;
	size_t lastlen = 0;
	for (const char *p = u->host;;) {
		const char *dot = strchr(p, '.');
		size_t len = dot != NULL ? (size_t)(dot - p) : strlen(p);
		if (len == 0)
			return refuse(why, whylen, "empty label in host");
		if (len > 63)
			return refuse(why, whylen, "host label too long");
		last = p;
		lastlen = len;
		if (dot == NULL)
			break;
		p = dot + 1;
	}
	/*
	 * A host ending in a numeric label is an IPv4 address to URL
	 * parsers and resolvers, in many spellings; only the canonical one
	 * is accepted, so each address has exactly one name here.
	 */
	if (numeric_label(last, lastlen)) {
		if (!canonical_ipv4(u->host))
			return refuse(why, whylen, "IPv4 address not in canonical dotted form");
		u->host_ip = true;
	}
	return AAM_OK;
}

static int
parse_port(const char *p, size_t n, uint16_t *out, char *why, size_t whylen)
{
	if (n == 0 || n > 5)
		return refuse(why, whylen, "invalid port");
	unsigned v = 0;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit(p[i]))
			return refuse(why, whylen, "invalid port");
		v = v * 10 + (unsigned)(p[i] - '0');
	}
	if (v == 0 || v > 65535 || (n > 1 && p[0] == '0'))
		return refuse(why, whylen, "invalid port");
	*out = (uint16_t)v;
	return AAM_OK;
}

/* Hex value of a percent-encoding at P (both digits checked by the caller). */
static unsigned
hexval(char c)
{
	if (is_digit(c))
		return (unsigned)(c - '0');
	return (unsigned)(lower(c) - 'a' + 10);
}

/*
 * Copies a path or query component, checking characters and
 * percent-encodings and uppercasing their hex digits.  In a path, encoded
 * '/', '\', '.' and NUL are refused, also when double-encoded: they are
 * how a request escapes a prefix on a server that decodes differently.
 */
static int
copy_component(const char *p, size_t n, bool is_path, char *out, char *why, size_t whylen)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (c == '%') {
			if (i + 2 >= n)
				return refuse(why, whylen, "truncated percent-encoding");
			if (!is_hex(p[i + 1]) || !is_hex(p[i + 2]))
				return refuse(why, whylen, "malformed percent-encoding");
			unsigned v = hexval(p[i + 1]) << 4 | hexval(p[i + 2]);
			if (v == 0)
				return refuse(why, whylen, "encoded NUL");
			if (is_path) {
				if (v == '/' || v == '\\' || v == '.')
					return refuse(why, whylen,
					              "encoded slash, backslash or dot in path");
				if (v == '%' && i + 4 < n && is_hex(p[i + 3]) && is_hex(p[i + 4])) {
					unsigned w = hexval(p[i + 3]) << 4 | hexval(p[i + 4]);
					if (w == '/' || w == '\\' || w == '.' || w == 0)
						return refuse(
						        why, whylen,
						        "double-encoded slash, backslash, dot or "
						        "NUL in path");
				}
			}
			out[o++] = '%';
			out[o++] = upper(p[i + 1]);
			out[o++] = upper(p[i + 2]);
			i += 2;
			continue;
		}
		bool ok = is_pchar(c) || c == '/' || (!is_path && c == '?');
		if (!ok)
			return refuse(why, whylen,
			              is_path ? "invalid character in path"
			                      : "invalid character in query");
		out[o++] = c;
	}
	out[o] = '\0';
	return AAM_OK;
}

/* Removes the last "/segment" from OUT[0..*len). */
static void
pop_segment(char *out, size_t *len)
{
	while (*len > 0 && out[*len - 1] != '/')
		(*len)--;
	if (*len > 0)
		(*len)--;
}

/* RFC 3986 section 5.2.4, in place; PATH starts with '/'. */
static void
remove_dot_segments(char *path)
{
	size_t n = strlen(path);
	char *in = malloc(n + 1);
	if (in == NULL) {
		/* Unreachable in practice; fail closed by emptying the path. */
		strcpy(path, "/");
		return;
	}
	memcpy(in, path, n + 1);
	const char *p = in;
	size_t o = 0;
	while (*p != '\0') {
		if (strncmp(p, "../", 3) == 0) {
			p += 3;
		} else if (strncmp(p, "./", 2) == 0) {
			p += 2;
		} else if (strncmp(p, "/./", 3) == 0) {
			p += 2;
		} else if (strcmp(p, "/.") == 0) {
			path[o++] = '/'; /* "/." becomes "/" */
			break;
		} else if (strncmp(p, "/../", 4) == 0) {
			p += 3;
			pop_segment(path, &o);
		} else if (strcmp(p, "/..") == 0) {
			pop_segment(path, &o);
			path[o++] = '/';
			break;
		} else if (strcmp(p, ".") == 0 || strcmp(p, "..") == 0) {
			break;
		} else {
			size_t k = 0;
			if (p[0] == '/')
				k = 1;
			while (p[k] != '\0' && p[k] != '/')
				k++;
			memcpy(path + o, p, k);
			o += k;
			p += k;
		}
	}
	if (o == 0)
		path[o++] = '/';
	path[o] = '\0';
	free(in);
}

/* Refuses "." and ".." segments that carry ";parameters" ("..;/"). */
static bool
has_dot_params(const char *path)
{
	for (const char *p = path; *p != '\0';) {
		const char *seg = p[0] == '/' ? p + 1 : p;
		const char *end = strchr(seg, '/');
		size_t len = end != NULL ? (size_t)(end - seg) : strlen(seg);
		const char *semi = memchr(seg, ';', len);
		if (semi != NULL) {
			size_t base = (size_t)(semi - seg);
			if ((base == 1 && seg[0] == '.') ||
			    (base == 2 && seg[0] == '.' && seg[1] == '.'))
				return true;
		}
		if (end == NULL)
			break;
		p = end;
	}
	return false;
}

int
vault_url_parse(const char *url, struct vault_url *u, char *why, size_t whylen)
{
	memset(u, 0, sizeof(*u));
	if (url == NULL)
		return refuse(why, whylen, "no URL");
	size_t len = strlen(url);
	if (len == 0 || len > VAULT_URL_MAX)
		return refuse(why, whylen, "URL empty or too long");
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)url[i];
		if (c <= 0x20 || c >= 0x7f)
			return refuse(why, whylen, "URL holds a space, control or non-ASCII byte");
		if (c == '\\')
			return refuse(why, whylen, "backslash in URL");
		if (c == '#')
			return refuse(why, whylen, "fragment in URL");
	}
	/* scheme "://" */
	const char *sep = strstr(url, "://");
	if (sep == NULL || sep == url || (size_t)(sep - url) >= sizeof(u->scheme))
		return refuse(why, whylen, "URL without scheme");
	size_t sl = (size_t)(sep - url);
	for (size_t i = 0; i < sl; i++)
		u->scheme[i] = lower(url[i]);
	u->scheme[sl] = '\0';
	if (strcmp(u->scheme, "https") != 0 && strcmp(u->scheme, "http") != 0)
		return refuse(why, whylen, "scheme is not https or http");

	/* authority */
	const char *a = sep + 3;
	size_t an = strcspn(a, "/?");
	if (memchr(a, '@', an) != NULL)
		return refuse(why, whylen, "userinfo in URL");
	if (an == 0)
		return refuse(why, whylen, "empty host");
	size_t hn = an;
	const char *portp = NULL;
	if (a[0] == '[') {
		const char *close = memchr(a, ']', an);
		if (close == NULL)
			return refuse(why, whylen, "malformed IPv6 literal");
		hn = (size_t)(close - a) + 1;
		if (hn < an) {
			if (a[hn] != ':')
				return refuse(why, whylen, "malformed authority");
			portp = a + hn + 1;
		}
	} else {
		const char *colon = memchr(a, ':', an);
		if (colon != NULL) {
			hn = (size_t)(colon - a);
			portp = colon + 1;
		}
	}
	int rc = parse_host(a, hn, u, why, whylen);
	if (rc != AAM_OK)
		return rc;
	u->port = default_port(u->scheme);
	if (portp != NULL) {
		rc = parse_port(portp, (size_t)(a + an - portp), &u->port, why, whylen);
		if (rc != AAM_OK)
			return rc;
	}

	/* path and query */
	const char *rest = a + an;
	size_t pn = strcspn(rest, "?");
	if (pn == 0) {
		strcpy(u->path, "/");
	} else {
		rc = copy_component(rest, pn, true, u->path, why, whylen);
		if (rc != AAM_OK)
			return rc;
	}
	if (rest[pn] == '?') {
		u->has_query = true;
		rc = copy_component(rest + pn + 1, strlen(rest + pn + 1), false, u->query, why,
		                    whylen);
		if (rc != AAM_OK)
			return rc;
	}
	if (has_dot_params(u->path))
		return refuse(why, whylen, "dot segment with parameters in path");
	remove_dot_segments(u->path);
	return AAM_OK;
}

int
vault_url_authority(const struct vault_url *u, char *out, size_t outsz)
{
	int n;
	bool dflt = u->port == default_port(u->scheme);
	if (u->host_ipv6)
		n = dflt ? snprintf(out, outsz, "[%s]", u->host)
		         : snprintf(out, outsz, "[%s]:%u", u->host, (unsigned)u->port);
	else
		n = dflt ? snprintf(out, outsz, "%s", u->host)
		         : snprintf(out, outsz, "%s:%u", u->host, (unsigned)u->port);
	return (n < 0 || (size_t)n >= outsz) ? AAM_E_TOOBIG : AAM_OK;
}

int
vault_url_format(const struct vault_url *u, struct aam_buf *b)
{
	char auth[300];
	int rc = vault_url_authority(u, auth, sizeof(auth));
	if (rc != AAM_OK)
		return rc;
	aam_buf_append_str(b, u->scheme);
	aam_buf_append_str(b, "://");
	aam_buf_append_str(b, auth);
	aam_buf_append_str(b, u->path);
	if (u->has_query) {
		aam_buf_append_byte(b, '?');
		aam_buf_append_str(b, u->query);
	}
	return b->err;
}

/* Mismatch levels, in order of how far a binding got. */
enum { MISS_SCHEME = 0, MISS_HOST, MISS_PORT, MISS_PATH, MATCH };

static int
binding_level(const char *binding, const struct vault_url *u)
{
	struct vault_url *b = malloc(sizeof(*b));
	if (b == NULL)
		return MISS_SCHEME;
	char why[8];
	int level = MISS_SCHEME;
	if (vault_url_parse(binding, b, why, sizeof(why)) != AAM_OK || b->has_query)
		goto out;
	if (strcmp(b->scheme, u->scheme) != 0)
		goto out;
	level = MISS_HOST;
	if (strcmp(b->host, u->host) != 0)
		goto out;
	level = MISS_PORT;
	if (b->port != u->port)
		goto out;
	level = MISS_PATH;
	size_t bl = strlen(b->path);
	if (strncmp(u->path, b->path, bl) != 0)
		goto out;
	/* On a segment boundary: the prefix ends in '/', or the path ends or continues with '/'. */
	if (b->path[bl - 1] == '/' || u->path[bl] == '\0' || u->path[bl] == '/')
		level = MATCH;
out:
	free(b);
	return level;
}

bool
vault_binding_match(const char *binding, const struct vault_url *u)
{
	return binding_level(binding, u) == MATCH;
}

int
vault_binding_check(const char (*bindings)[512], size_t nb, const struct vault_url *u, char *why,
                    size_t whylen)
{
	static const char *const names[] = {"scheme", "host", "port", "path"};
	int best = MISS_SCHEME;
	for (size_t i = 0; i < nb; i++) {
		int level = binding_level(bindings[i], u);
		if (level == MATCH)
			return AAM_OK;
		if (level > best)
			best = level;
	}
	if (whylen > 0)
		snprintf(why, whylen, "URL outside the credential's bindings (%s does not match)",
		         nb == 0 ? "no binding" : names[best]);
	return AAM_E_DENIED;
}
