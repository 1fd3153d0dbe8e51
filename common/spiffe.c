/*
 * SPIFFE ID parsing and validation.  See spiffe.h for the rules; every
 * rejection names the rule it breaks, because these strings end up in
 * policy-load errors that an operator has to act on.
 *
 * The parser is a single left-to-right pass over an explicit length, so
 * the first offending byte decides the message and input that is not
 * NUL-terminated (or holds a NUL) is handled like any other.
 */
#include "common/spiffe.h"

#include <string.h>

#include "aam/err.h"

#define SCHEME_PREFIX     "spiffe://"
#define SCHEME_PREFIX_LEN (sizeof(SCHEME_PREFIX) - 1)

static const char WHY_ARG[] = "missing argument";
static const char WHY_EMPTY[] = "SPIFFE ID is empty";
static const char WHY_TOO_LONG[] = "SPIFFE ID exceeds 2048 bytes";
static const char WHY_NO_PREFIX[] = "missing 'spiffe://' prefix";
static const char WHY_SCHEME[] = "scheme is not 'spiffe'";
static const char WHY_SCHEME_CASE[] = "scheme must be lowercase 'spiffe'";
static const char WHY_NO_SLASHES[] = "scheme must be followed by '//'";
static const char WHY_TD_EMPTY[] = "trust domain is empty";
static const char WHY_TD_TOO_LONG[] = "trust domain exceeds 255 bytes";
static const char WHY_TD_UPPER[] = "trust domain contains an uppercase letter";
static const char WHY_TD_CHAR[] = "trust domain contains an invalid character";
static const char WHY_TD_PORT[] = "trust domain contains a port";
static const char WHY_TD_USERINFO[] = "trust domain contains userinfo";
static const char WHY_PERCENT[] = "percent-encoding is not allowed";
static const char WHY_QUERY[] = "query is not allowed";
static const char WHY_FRAGMENT[] = "fragment is not allowed";
static const char WHY_SEG_EMPTY[] = "path segment is empty";
static const char WHY_SEG_DOT[] = "path segment is '.'";
static const char WHY_SEG_DOTDOT[] = "path segment is '..'";
static const char WHY_TRAILING[] = "path has a trailing slash";
static const char WHY_PATH_CHAR[] = "path contains an invalid character";
static const char WHY_PATH_RELATIVE[] = "path must start with '/'";
static const char WHY_WILDCARD[] = "wildcard must be the whole last path segment";

static int
fail(const char **why, const char *msg, int rc)
{
	if (why != NULL)
		*why = msg;
	return rc;
}

static bool
is_lower_digit(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool
is_td_char(unsigned char c)
{
	return is_lower_digit(c) || c == '.' || c == '-' || c == '_';
}

static bool
is_path_char(unsigned char c)
{
	return is_td_char(c) || (c >= 'A' && c <= 'Z');
}

/*
 * The characters that are valid somewhere in a URI but forbidden here get
 * a message of their own, so "spiffe://td:8443" says "port", not just
 * "invalid character".
 */
static const char *
uri_feature(unsigned char c)
{
	switch (c) {
	case '%':
		return WHY_PERCENT;
	case '?':
		return WHY_QUERY;
	case '#':
		return WHY_FRAGMENT;
	default:
		return NULL;
	}
}

/* Validates a whole trust domain slice (no scheme, no slash). */
static int
check_trust_domain(const char *s, size_t len, const char **why)
{
	if (len == 0)
		return fail(why, WHY_TD_EMPTY, AAM_E_PARSE);
	/*
	 * userinfo is looked for first: in "user:pw@host" the ':' belongs to
	 * the userinfo, and calling it a port would mislead.  An '@' after a
	 * '?' or '#' is part of a query or fragment and reported as such.
	 */
	for (size_t i = 0; i < len && s[i] != '?' && s[i] != '#'; i++) {
		if (s[i] == '@')
			return fail(why, WHY_TD_USERINFO, AAM_E_PARSE);
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (is_td_char(c))
			continue;
		const char *feature = uri_feature(c);
		if (feature != NULL)
			return fail(why, feature, AAM_E_PARSE);
		if (c >= 'A' && c <= 'Z')
			return fail(why, WHY_TD_UPPER, AAM_E_PARSE);
		if (c == ':')
			return fail(why, WHY_TD_PORT, AAM_E_PARSE);
		return fail(why, WHY_TD_CHAR, AAM_E_PARSE);
	}
	if (len > AAM_SPIFFE_TD_MAX)
		return fail(why, WHY_TD_TOO_LONG, AAM_E_TOOBIG);
	return AAM_OK;
}

/* Validates a path slice: empty, or "/seg" repeated. */
static int
check_path(const char *s, size_t len, const char **why)
{
	if (len == 0)
		return AAM_OK;
	if (s[0] != '/')
		return fail(why, WHY_PATH_RELATIVE, AAM_E_PARSE);
	size_t i = 0;
	while (i < len) {
		/* s[i] is the '/' that opens a segment. */
		size_t start = ++i;
		while (i < len && s[i] != '/') {
			unsigned char c = (unsigned char)s[i];
			if (!is_path_char(c)) {
				const char *feature = uri_feature(c);
				return fail(why, feature != NULL ? feature : WHY_PATH_CHAR,
				            AAM_E_PARSE);
			}
			i++;
		}
		size_t seglen = i - start;
		if (seglen == 0)
			return fail(why, i == len ? WHY_TRAILING : WHY_SEG_EMPTY, AAM_E_PARSE);
		if (seglen == 1 && s[start] == '.')
			return fail(why, WHY_SEG_DOT, AAM_E_PARSE);
		if (seglen == 2 && s[start] == '.' && s[start + 1] == '.')
			return fail(why, WHY_SEG_DOTDOT, AAM_E_PARSE);
	}
	return AAM_OK;
}

static bool
ascii_ieq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
		if (x >= 'A' && x <= 'Z')
			x = (unsigned char)(x - 'A' + 'a');
		if (x != y)
			return false;
	}
	return true;
}

/* Checks "spiffe://" and explains the most likely mistake when it is absent. */
static int
check_scheme(const char *s, size_t len, const char **why)
{
	if (len >= SCHEME_PREFIX_LEN && memcmp(s, SCHEME_PREFIX, SCHEME_PREFIX_LEN) == 0)
		return AAM_OK;
	if (len >= 7 && s[6] == ':' && ascii_ieq(s, "spiffe", 6)) {
		if (memcmp(s, "spiffe", 6) != 0)
			return fail(why, WHY_SCHEME_CASE, AAM_E_PARSE);
		return fail(why, WHY_NO_SLASHES, AAM_E_PARSE);
	}
	/* A ':' before any '/' means the string has some other scheme. */
	for (size_t i = 0; i < len && s[i] != '/'; i++) {
		if (s[i] == ':')
			return fail(why, WHY_SCHEME, AAM_E_PARSE);
	}
	return fail(why, WHY_NO_PREFIX, AAM_E_PARSE);
}

int
aam_spiffe_parse(const char *s, size_t len, struct aam_spiffe_id *out, const char **why)
{
	if (why != NULL)
		*why = NULL;
	if (out == NULL || (s == NULL && len != 0))
		return fail(why, WHY_ARG, AAM_E_INVAL);
	memset(out, 0, sizeof(*out));
	if (len == 0)
		return fail(why, WHY_EMPTY, AAM_E_PARSE);
	if (len > AAM_SPIFFE_ID_MAX)
		return fail(why, WHY_TOO_LONG, AAM_E_TOOBIG);

	int rc = check_scheme(s, len, why);
	if (rc != AAM_OK)
		return rc;
	const char *td = s + SCHEME_PREFIX_LEN;
	size_t rest = len - SCHEME_PREFIX_LEN;
	const char *slash = memchr(td, '/', rest);
	size_t td_len = slash != NULL ? (size_t)(slash - td) : rest;
	rc = check_trust_domain(td, td_len, why);
	if (rc != AAM_OK)
		return rc;
	rc = check_path(td + td_len, rest - td_len, why);
	if (rc != AAM_OK)
		return rc;

	/* Both fit: td_len <= 255 and the path is shorter than the whole ID. */
	memcpy(out->trust_domain, td, td_len);
	memcpy(out->path, td + td_len, rest - td_len);
	return AAM_OK;
}

int
aam_spiffe_trust_domain_parse(const char *s, size_t len, char out[AAM_SPIFFE_TD_MAX + 1],
                              const char **why)
{
	if (why != NULL)
		*why = NULL;
	if (out == NULL || (s == NULL && len != 0))
		return fail(why, WHY_ARG, AAM_E_INVAL);
	out[0] = '\0';
	int rc = check_trust_domain(s, len, why);
	if (rc != AAM_OK)
		return rc;
	memcpy(out, s, len);
	out[len] = '\0';
	return AAM_OK;
}

int
aam_spiffe_from_parts(const char *trust_domain, const char *path, struct aam_spiffe_id *out,
                      const char **why)
{
	if (why != NULL)
		*why = NULL;
	if (trust_domain == NULL || path == NULL || out == NULL)
		return fail(why, WHY_ARG, AAM_E_INVAL);
	memset(out, 0, sizeof(*out));
	/* Bounded lengths: an over-long input fails without a full strlen. */
	size_t td_len = strnlen(trust_domain, AAM_SPIFFE_ID_MAX + 1);
	size_t path_len = strnlen(path, AAM_SPIFFE_ID_MAX + 1);
	int rc = check_trust_domain(trust_domain, td_len, why);
	if (rc != AAM_OK)
		return rc;
	if (SCHEME_PREFIX_LEN + td_len + path_len > AAM_SPIFFE_ID_MAX)
		return fail(why, WHY_TOO_LONG, AAM_E_TOOBIG);
	rc = check_path(path, path_len, why);
	if (rc != AAM_OK)
		return rc;
	memcpy(out->trust_domain, trust_domain, td_len);
	memcpy(out->path, path, path_len);
	return AAM_OK;
}

/*
 * Lengths of the two fields of a struct that may have been filled by hand;
 * false when either is not NUL-terminated inside its array.
 */
static bool
id_lengths(const struct aam_spiffe_id *id, size_t *td_len, size_t *path_len)
{
	*td_len = strnlen(id->trust_domain, sizeof(id->trust_domain));
	*path_len = strnlen(id->path, sizeof(id->path));
	return *td_len < sizeof(id->trust_domain) && *path_len < sizeof(id->path);
}

int
aam_spiffe_format(const struct aam_spiffe_id *id, char *out, size_t outlen, size_t *written)
{
	if (written != NULL)
		*written = 0;
	if (id == NULL || out == NULL || outlen == 0)
		return AAM_E_INVAL;
	out[0] = '\0';
	size_t td_len, path_len;
	if (!id_lengths(id, &td_len, &path_len))
		return AAM_E_PARSE;
	if (check_trust_domain(id->trust_domain, td_len, NULL) != AAM_OK ||
	    check_path(id->path, path_len, NULL) != AAM_OK)
		return AAM_E_PARSE;
	size_t total = SCHEME_PREFIX_LEN + td_len + path_len;
	if (total > AAM_SPIFFE_ID_MAX)
		return AAM_E_PARSE;
	if (total >= outlen)
		return AAM_E_TOOBIG;
	memcpy(out, SCHEME_PREFIX, SCHEME_PREFIX_LEN);
	memcpy(out + SCHEME_PREFIX_LEN, id->trust_domain, td_len);
	memcpy(out + SCHEME_PREFIX_LEN + td_len, id->path, path_len);
	out[total] = '\0';
	if (written != NULL)
		*written = total;
	return AAM_OK;
}

bool
aam_spiffe_equal(const struct aam_spiffe_id *a, const struct aam_spiffe_id *b)
{
	if (a == NULL || b == NULL)
		return false;
	size_t atd, apath, btd, bpath;
	if (!id_lengths(a, &atd, &apath) || !id_lengths(b, &btd, &bpath))
		return false;
	return atd == btd && apath == bpath && memcmp(a->trust_domain, b->trust_domain, atd) == 0 &&
	       memcmp(a->path, b->path, apath) == 0;
}

bool
aam_spiffe_in_trust_domain(const struct aam_spiffe_id *id, const char *trust_domain)
{
	if (id == NULL || trust_domain == NULL)
		return false;
	size_t td_len, path_len;
	if (!id_lengths(id, &td_len, &path_len) || td_len == 0)
		return false;
	return strncmp(id->trust_domain, trust_domain, sizeof(id->trust_domain)) == 0;
}

int
aam_spiffe_pattern_parse(const char *s, size_t len, struct aam_spiffe_pattern *out,
                         const char **why)
{
	if (why != NULL)
		*why = NULL;
	if (out == NULL || (s == NULL && len != 0))
		return fail(why, WHY_ARG, AAM_E_INVAL);
	memset(out, 0, sizeof(*out));
	if (len == 0)
		return fail(why, WHY_EMPTY, AAM_E_PARSE);
	if (len > AAM_SPIFFE_ID_MAX)
		return fail(why, WHY_TOO_LONG, AAM_E_TOOBIG);

	enum aam_spiffe_pattern_kind kind = AAM_SPIFFE_PATTERN_EXACT;
	size_t base_len = len;
	if (len >= 3 && memcmp(s + len - 3, "/**", 3) == 0) {
		kind = AAM_SPIFFE_PATTERN_ANY;
		base_len = len - 3;
	} else if (len >= 2 && memcmp(s + len - 2, "/*", 2) == 0) {
		kind = AAM_SPIFFE_PATTERN_ONE;
		base_len = len - 2;
	}
	/*
	 * The wildcard must follow a complete "spiffe://td"; otherwise the
	 * slash before it is part of "://" (a star right after the scheme)
	 * and the star is standing in for the trust domain, which is never
	 * allowed.
	 */
	if (memchr(s, '*', base_len) != NULL ||
	    (kind != AAM_SPIFFE_PATTERN_EXACT && base_len < SCHEME_PREFIX_LEN))
		return fail(why, WHY_WILDCARD, AAM_E_PARSE);
	int rc = aam_spiffe_parse(s, base_len, &out->base, why);
	if (rc != AAM_OK) {
		memset(out, 0, sizeof(*out));
		return rc;
	}
	out->kind = kind;
	return AAM_OK;
}

bool
aam_spiffe_pattern_match(const struct aam_spiffe_pattern *pattern, const struct aam_spiffe_id *id)
{
	if (pattern == NULL || id == NULL)
		return false;
	size_t ptd, ppath, itd, ipath;
	if (!id_lengths(&pattern->base, &ptd, &ppath) || !id_lengths(id, &itd, &ipath))
		return false;
	/* An empty trust domain is never valid, so it never matches. */
	if (ptd == 0 || ptd != itd ||
	    memcmp(pattern->base.trust_domain, id->trust_domain, ptd) != 0)
		return false;

	switch (pattern->kind) {
	case AAM_SPIFFE_PATTERN_EXACT:
		return ppath == ipath && memcmp(pattern->base.path, id->path, ppath) == 0;
	case AAM_SPIFFE_PATTERN_ONE:
	case AAM_SPIFFE_PATTERN_ANY:
		break;
	default:
		return false;
	}
	/*
	 * A hand-filled ID such as "/a//" must not slip past the segment
	 * counting below, so the path is checked again.
	 */
	if (check_path(id->path, ipath, NULL) != AAM_OK)
		return false;
	/* The ID must be the base path, a '/', and at least one more byte. */
	if (ipath < ppath + 2 || memcmp(pattern->base.path, id->path, ppath) != 0 ||
	    id->path[ppath] != '/')
		return false;
	const char *tail = id->path + ppath + 1;
	size_t tail_len = ipath - ppath - 1;
	if (pattern->kind == AAM_SPIFFE_PATTERN_ONE)
		return memchr(tail, '/', tail_len) == NULL;
	return true;
}
