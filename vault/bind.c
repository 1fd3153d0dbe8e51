/*
 * Validation of what an admin stores: secret names, types and their
 * options, destination bindings and values.  Everything is checked at put
 * time, so the injection path only ever sees well-formed metadata.
 *
 * Error messages may quote names, bindings and options (they are not
 * secret) but never a value.
 */
#include "aam/err.h"
#include "vault/store.h"
#include "vault/store_int.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const TYPE_NAMES[] = {
        [VAULT_SECRET_BEARER] = "bearer",
        [VAULT_SECRET_HEADER] = "header",
        [VAULT_SECRET_BASIC] = "basic",
        [VAULT_SECRET_QUERY] = "query",
        [VAULT_SECRET_AWS_SIGV4] = "aws-sigv4",
        [VAULT_SECRET_HMAC] = "hmac",
        [VAULT_SECRET_OAUTH2_CC] = "oauth2-client-credentials",
};
#define NTYPES (sizeof(TYPE_NAMES) / sizeof(TYPE_NAMES[0]))

const char *
vault_secret_type_name(enum vault_secret_type t)
{
	if ((size_t)t >= NTYPES || t < VAULT_SECRET_BEARER)
		return NULL;
	return TYPE_NAMES[t];
}

int
vault_secret_type_parse(const char *name, enum vault_secret_type *out)
{
	if (name == NULL || out == NULL)
		return AAM_E_INVAL;
	for (size_t i = VAULT_SECRET_BEARER; i < NTYPES; i++) {
		if (strcmp(name, TYPE_NAMES[i]) == 0) {
			*out = (enum vault_secret_type)i;
			return AAM_OK;
		}
	}
	return AAM_E_INVAL;
}

bool
vault_secret_type_is_hmac(enum vault_secret_type t)
{
	return t == VAULT_SECRET_AWS_SIGV4 || t == VAULT_SECRET_HMAC;
}

static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

int
vault_name_validate(const char *name)
{
	if (name == NULL)
		return AAM_E_INVAL;
	size_t n = strnlen(name, 128);
	if (n == 0 || n >= 128 || !(is_alpha(name[0]) || is_digit(name[0])))
		return AAM_E_INVAL;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!(is_alpha(c) || is_digit(c) || c == '.' || c == '_' || c == '-'))
			return AAM_E_INVAL;
	}
	return AAM_OK;
}

/* Dotted-quad IPv4 in canonical form: four decimal parts 0-255, no leading zeros. */
static bool
is_canonical_ipv4(const char *h, size_t n)
{
	int parts = 0;
	size_t i = 0;
	while (i < n) {
		size_t start = i;
		unsigned v = 0;
		while (i < n && is_digit(h[i])) {
			v = v * 10 + (unsigned)(h[i] - '0');
			if (v > 255)
				return false;
			i++;
		}
		size_t len = i - start;
		if (len == 0 || (len > 1 && h[start] == '0'))
			return false;
		parts++;
		if (i < n) {
			if (h[i] != '.' || i + 1 == n)
				return false;
			i++;
		}
	}
	return parts == 4;
}

/*
 * A DNS name in lowercase (labels of 1-63 letters, digits and inner
 * hyphens, no empty label, so no trailing dot) whose last label starts
 * with a letter, or a canonical IPv4 address.  Numeric forms that
 * resolvers also accept ("0x7f.1", "2130706433", "127.1") are refused: a
 * binding must name its host one way only.
 */
static int
check_host(const char *h, size_t n, char *err, size_t errlen)
{
	if (n == 0 || n > 253) {
		vault_errf(err, errlen, "host is empty or longer than 253 characters");
		return AAM_E_INVAL;
	}
	if (is_canonical_ipv4(h, n))
		return AAM_OK;
	size_t label_start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || h[i] == '.') {
			size_t ll = i - label_start;
			if (ll == 0 || ll > 63) {
				vault_errf(
				        err, errlen,
				        "host has an empty or over-long label (a trailing dot?)");
				return AAM_E_INVAL;
			}
			if (h[label_start] == '-' || h[i - 1] == '-') {
				vault_errf(err, errlen, "host label starts or ends with '-'");
				return AAM_E_INVAL;
			}
			if (i == n && !(h[label_start] >= 'a' && h[label_start] <= 'z')) {
				vault_errf(
				        err, errlen,
				        "host is neither a DNS name nor a canonical IPv4 address");
				return AAM_E_INVAL;
			}
			label_start = i + 1;
			continue;
		}
		char c = h[i];
		if (c >= 'A' && c <= 'Z') {
			vault_errf(err, errlen, "host must be lowercase");
			return AAM_E_INVAL;
		}
		if (!((c >= 'a' && c <= 'z') || is_digit(c) || c == '-')) {
			vault_errf(err, errlen, "host holds a character outside [a-z0-9.-]");
			return AAM_E_INVAL;
		}
	}
	return AAM_OK;
}

static bool
path_char_ok(char c)
{
	if (is_alpha(c) || is_digit(c))
		return true;
	return strchr("-._~!$&'()*+,;=:@/", c) != NULL && c != '\0';
}

int
vault_binding_validate(const char *url, char *err, size_t errlen)
{
	vault_errf(err, errlen, "%s", "");
	if (url == NULL) {
		vault_errf(err, errlen, "binding is missing");
		return AAM_E_INVAL;
	}
	size_t n = strnlen(url, 512);
	if (n == 0 || n >= 512) {
		vault_errf(err, errlen, "binding is empty or longer than 511 characters");
		return AAM_E_INVAL;
	}
	bool https = strncmp(url, "https://", 8) == 0;
	bool http = !https && strncmp(url, "http://", 7) == 0;
	if (!https && !http) {
		vault_errf(err, errlen, "binding %s must start with https:// (lowercase)", url);
		return AAM_E_INVAL;
	}
	if (strpbrk(url, "?#") != NULL) {
		vault_errf(err, errlen, "binding %s may not hold a query or fragment", url);
		return AAM_E_INVAL;
	}
	const char *auth = url + (https ? 8 : 7);
	const char *path = strchr(auth, '/');
	size_t alen = path ? (size_t)(path - auth) : strlen(auth);
	if (memchr(auth, '@', alen) != NULL) {
		vault_errf(err, errlen, "binding %s may not hold userinfo (user@)", url);
		return AAM_E_INVAL;
	}
	if (memchr(auth, '\\', alen) != NULL) {
		vault_errf(err, errlen, "binding %s holds a backslash", url);
		return AAM_E_INVAL;
	}
	/* Host, as an IPv6 literal in brackets or a name / IPv4 address. */
	const char *port = NULL;
	size_t hlen;
	bool loopback;
	if (alen > 0 && auth[0] == '[') {
		const char *close = memchr(auth, ']', alen);
		char v6[64];
		size_t vl = close ? (size_t)(close - auth - 1) : 0;
		struct in6_addr a6;
		if (close == NULL || vl == 0 || vl >= sizeof(v6)) {
			vault_errf(err, errlen, "binding %s has a malformed IPv6 literal", url);
			return AAM_E_INVAL;
		}
		memcpy(v6, auth + 1, vl);
		v6[vl] = '\0';
		if (inet_pton(AF_INET6, v6, &a6) != 1 || strchr(v6, '%') != NULL) {
			vault_errf(err, errlen, "binding %s has a malformed IPv6 literal", url);
			return AAM_E_INVAL;
		}
		loopback = IN6_IS_ADDR_LOOPBACK(&a6);
		hlen = (size_t)(close - auth) + 1;
		if (hlen < alen) {
			if (auth[hlen] != ':') {
				vault_errf(err, errlen, "binding %s: junk after the IPv6 literal",
				           url);
				return AAM_E_INVAL;
			}
			port = auth + hlen + 1;
		}
	} else {
		const char *colon = memchr(auth, ':', alen);
		hlen = colon ? (size_t)(colon - auth) : alen;
		if (colon != NULL)
			port = colon + 1;
		char herr[128];
		if (check_host(auth, hlen, herr, sizeof(herr)) != AAM_OK) {
			vault_errf(err, errlen, "binding %s: %s", url, herr);
			return AAM_E_INVAL;
		}
		loopback = (hlen == 9 && memcmp(auth, "localhost", 9) == 0) ||
		           (hlen == 9 && memcmp(auth, "127.0.0.1", 9) == 0);
	}
	if (port != NULL) {
		size_t pl = (size_t)(auth + alen - port);
		unsigned long v = 0;
		bool ok = pl > 0 && pl <= 5 && port[0] != '0';
		for (size_t i = 0; ok && i < pl; i++) {
			ok = is_digit(port[i]);
			v = v * 10 + (unsigned long)(port[i] - '0');
		}
		if (!ok || v == 0 || v > 65535) {
			vault_errf(err, errlen, "binding %s has an invalid port", url);
			return AAM_E_INVAL;
		}
	}
	/*
	 * Plain http only to a loopback upstream: integration tests and local
	 * model servers.  Anything that leaves the host must use TLS.
	 */
	if (http && !loopback) {
		vault_errf(err, errlen,
		           "binding %s: http is allowed only for 127.0.0.1, [::1] and localhost; "
		           "use https",
		           url);
		return AAM_E_INVAL;
	}
	if (path != NULL) {
		/* No percent-encoding and no dot segments: a prefix matches exactly what it says.
		 */
		for (const char *c = path; *c != '\0'; c++) {
			if (!path_char_ok(*c)) {
				vault_errf(err, errlen,
				           "binding %s: the path holds a character that is not "
				           "allowed "
				           "(percent-encoding, spaces and controls are refused)",
				           url);
				return AAM_E_INVAL;
			}
			if (c[0] == '/' && c[1] == '/') {
				vault_errf(err, errlen, "binding %s: the path has an empty segment",
				           url);
				return AAM_E_INVAL;
			}
			if (c[0] == '/' && c[1] == '.' &&
			    (c[2] == '/' || c[2] == '\0' ||
			     (c[2] == '.' && (c[3] == '/' || c[3] == '\0')))) {
				vault_errf(err, errlen,
				           "binding %s: the path has a . or .. segment", url);
				return AAM_E_INVAL;
			}
		}
	}
	return AAM_OK;
}

/* ---- Type options ------------------------------------------------------ */

enum charset { CS_TOKEN, CS_PARAM, CS_USER, CS_AWSKEY, CS_AWSNAME, CS_VSCHAR, CS_SCOPE };

static bool
char_ok(enum charset cs, unsigned char c)
{
	switch (cs) {
	case CS_TOKEN: /* RFC 9110 tchar */
		return is_alpha((char)c) || is_digit((char)c) ||
		       (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
	case CS_PARAM:
		return is_alpha((char)c) || is_digit((char)c) ||
		       (c != 0 && strchr("-._~", c) != NULL);
	case CS_USER: /* RFC 7617: no control characters and no colon */
		return c >= 0x20 && c != 0x7f && c != ':';
	case CS_AWSKEY:
		return (c >= 'A' && c <= 'Z') || is_digit((char)c);
	case CS_AWSNAME:
		return (c >= 'a' && c <= 'z') || is_digit((char)c) || c == '-';
	case CS_VSCHAR: /* RFC 6749 client_id */
		return c >= 0x20 && c <= 0x7e;
	case CS_SCOPE: /* RFC 6749 NQCHAR and the separating space */
		return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\';
	}
	return false;
}

/*
 * FIELD (capacity CAP) must be NUL-terminated; when REQUIRED, non-empty;
 * when not APPLIES, empty.  Every character must be in CS.
 */
static int
check_opt(const char *field, size_t cap, const char *what, bool applies, bool required,
          enum charset cs, enum vault_secret_type type, char *err, size_t errlen)
{
	size_t n = strnlen(field, cap);
	if (n == cap) {
		vault_errf(err, errlen, "option %s is not terminated or too long", what);
		return AAM_E_INVAL;
	}
	if (!applies) {
		if (n > 0) {
			vault_errf(err, errlen, "option %s does not apply to type %s", what,
			           vault_secret_type_name(type));
			return AAM_E_INVAL;
		}
		return AAM_OK;
	}
	if (required && n == 0) {
		vault_errf(err, errlen, "type %s requires option %s", vault_secret_type_name(type),
		           what);
		return AAM_E_INVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (!char_ok(cs, (unsigned char)field[i])) {
			vault_errf(err, errlen, "option %s holds a character that is not allowed",
			           what);
			return AAM_E_INVAL;
		}
	}
	return AAM_OK;
}

/* Headers whose value frames or routes the request: never a credential's place. */
static bool
header_reserved(const char *h)
{
	static const char *const reserved[] = {
	        "host",       "content-length", "transfer-encoding",
	        "connection", "upgrade",        "te",
	        "trailer",    "keep-alive",     "proxy-connection",
	        "expect",     "content-type",   "cookie",
	};
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
		if (strcasecmp(h, reserved[i]) == 0)
			return true;
	}
	return false;
}

int
vault_secret_meta_validate(const struct vault_secret_meta *m, char *err, size_t errlen)
{
	vault_errf(err, errlen, "%s", "");
	if (m == NULL)
		return AAM_E_INVAL;
	if (vault_name_validate(m->name) != AAM_OK) {
		vault_errf(err, errlen,
		           "invalid secret name: use 1-127 characters of [A-Za-z0-9._-], starting "
		           "with a letter or digit");
		return AAM_E_INVAL;
	}
	enum vault_secret_type t = m->type;
	if (vault_secret_type_name(t) == NULL) {
		vault_errf(err, errlen, "unknown secret type");
		return AAM_E_INVAL;
	}
	if (m->nbindings == 0 || m->nbindings > VAULT_MAX_BINDINGS) {
		vault_errf(err, errlen, "a secret needs 1 to %d bindings", VAULT_MAX_BINDINGS);
		return AAM_E_INVAL;
	}
	for (size_t i = 0; i < m->nbindings; i++) {
		if (strnlen(m->bindings[i], sizeof(m->bindings[i])) == sizeof(m->bindings[i])) {
			vault_errf(err, errlen, "binding %zu is not terminated", i + 1);
			return AAM_E_INVAL;
		}
		int rc = vault_binding_validate(m->bindings[i], err, errlen);
		if (rc != AAM_OK)
			return rc;
	}
	bool hdr = t == VAULT_SECRET_HEADER || t == VAULT_SECRET_HMAC;
	bool aws = t == VAULT_SECRET_AWS_SIGV4, oauth = t == VAULT_SECRET_OAUTH2_CC;
	int rc = check_opt(m->header, sizeof(m->header), "header", hdr, hdr, CS_TOKEN, t, err,
	                   errlen);
	if (rc == AAM_OK && hdr && header_reserved(m->header)) {
		vault_errf(err, errlen, "header %s cannot carry a credential", m->header);
		rc = AAM_E_INVAL;
	}
	if (rc == AAM_OK)
		rc = check_opt(m->param, sizeof(m->param), "param", t == VAULT_SECRET_QUERY, true,
		               CS_PARAM, t, err, errlen);
	if (rc == AAM_OK)
		rc = check_opt(m->username, sizeof(m->username), "username",
		               t == VAULT_SECRET_BASIC, true, CS_USER, t, err, errlen);
	if (rc == AAM_OK)
		rc = check_opt(m->aws_access_key_id, sizeof(m->aws_access_key_id),
		               "aws_access_key_id", aws, true, CS_AWSKEY, t, err, errlen);
	if (rc == AAM_OK)
		rc = check_opt(m->aws_region, sizeof(m->aws_region), "aws_region", aws, true,
		               CS_AWSNAME, t, err, errlen);
	if (rc == AAM_OK)
		rc = check_opt(m->aws_service, sizeof(m->aws_service), "aws_service", aws, true,
		               CS_AWSNAME, t, err, errlen);
	if (rc == AAM_OK)
		rc = check_opt(m->token_url, sizeof(m->token_url), "token_url", oauth, true,
		               CS_VSCHAR, t, err, errlen);
	if (rc == AAM_OK && oauth) {
		char uerr[600];
		if (vault_binding_validate(m->token_url, uerr, sizeof(uerr)) != AAM_OK) {
			vault_errf(err, errlen, "token_url: %s", uerr);
			rc = AAM_E_INVAL;
		}
	}
	if (rc == AAM_OK)
		rc = check_opt(m->client_id, sizeof(m->client_id), "client_id", oauth, true,
		               CS_VSCHAR, t, err, errlen);
	if (rc == AAM_OK)
		rc = check_opt(m->scope, sizeof(m->scope), "scope", oauth, false, CS_SCOPE, t, err,
		               errlen);
	return rc;
}

int
vault_value_validate(enum vault_secret_type type, const uint8_t *value, size_t len)
{
	if (value == NULL || len == 0 || len > VAULT_VALUE_MAX)
		return AAM_E_INVAL;
	if (vault_secret_type_is_hmac(type))
		return AAM_OK; /* any bytes: they only ever key an HMAC */
	for (size_t i = 0; i < len; i++) {
		if (value[i] < 0x20 || value[i] == 0x7f)
			return AAM_E_INVAL;
	}
	return AAM_OK;
}
