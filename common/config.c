/*
 * Configuration loader: value syntaxes (durations, sizes, listen addresses,
 * URLs, PKCS#11 URIs), the generic table walker, and the tables of the
 * deployment's sections.  See config.h and docs/CONFIG.md.
 */
#include "common/config.h"
#include "common/spiffe.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "common/log.h"

/* The ENUM index of log.level is the aam_log_level value. */
_Static_assert(AAM_LOG_DEBUG == 0 && AAM_LOG_INFO == 1 && AAM_LOG_WARN == 2 && AAM_LOG_ERROR == 3,
               "log level order");

#define LIST_MAX_ITEMS 1024

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_alnum(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int why_set(char *why, size_t whylen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int
why_set(char *why, size_t whylen, const char *fmt, ...)
{
	if (why != NULL && whylen > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return AAM_E_INVAL;
}

/* ---- durations and sizes ---- */

int
aam_config_parse_duration(const char *s, int64_t *ms)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
	if (s == NULL || *s == '\0' || ms == NULL)
		return AAM_E_INVAL;
	int64_t total = 0, last = INT64_MAX;
	/* "1h30m": number-unit pairs, largest unit first, each unit once. */
	while (*s != '\0') {
		int64_t v = 0;
		size_t nd = 0;
		for (; is_digit(*s); s++, nd++) {
			if (nd >= 15)
				return AAM_E_INVAL;
			v = v * 10 + (*s - '0');
		}
		size_t ul = 0;
		while (s[ul] >= 'a' && s[ul] <= 'z')
			ul++;
		if (nd == 0 || ul == 0)
			return AAM_E_INVAL;
		int64_t mult = 0;
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (strlen(units[i].unit) == ul && memcmp(units[i].unit, s, ul) == 0)
				mult = units[i].ms;
		if (mult == 0 || mult >= last || v > (INT64_MAX - total) / mult)
			return AAM_E_INVAL;
		total += v * mult;
		last = mult;
		s += ul;
	}
	*ms = total;
	return AAM_OK;
}

int
aam_config_parse_size(const char *s, uint64_t *bytes)
{
	static const struct {
		const char *unit;
		uint64_t mult;
	} units[] = {{"", 1},
	             {"B", 1},
	             {"KiB", 1ull << 10},
	             {"MiB", 1ull << 20},
	             {"GiB", 1ull << 30},
	             {"TiB", 1ull << 40}};
	if (s == NULL || bytes == NULL || !is_digit(*s))
		return AAM_E_INVAL;
	uint64_t v = 0;
	size_t nd = 0;
	for (; is_digit(*s); s++, nd++) {
		if (nd >= 16)
			return AAM_E_INVAL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(s, units[i].unit) == 0) {
			if (v > UINT64_MAX / units[i].mult)
				return AAM_E_INVAL;
			*bytes = v * units[i].mult;
			return AAM_OK;
		}
	}
	return AAM_E_INVAL;
}

/* The largest unit that divides exactly, for messages: "15m", "1s", "1500ms". */
static void
fmt_duration(char *out, size_t len, int64_t ms)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (ms != 0 && ms % units[i].ms == 0) {
			snprintf(out, len, "%" PRId64 "%s", ms / units[i].ms, units[i].unit);
			return;
		}
	}
	snprintf(out, len, "%" PRId64 "ms", ms);
}

static void
fmt_size(char *out, size_t len, uint64_t b)
{
	static const char *const units[] = {"TiB", "GiB", "MiB", "KiB"};
	for (int i = 0; i < 4; i++) {
		uint64_t m = 1ull << (10 * (4 - i));
		if (b != 0 && b % m == 0) {
			snprintf(out, len, "%" PRIu64 "%s", b / m, units[i]);
			return;
		}
	}
	snprintf(out, len, "%" PRIu64 "B", b);
}

/* ---- hosts, listen addresses, URLs, PKCS#11 URIs ---- */

static int
parse_port(const char *s, size_t len, uint16_t *port, char *why, size_t whylen)
{
	if (len == 0)
		return why_set(why, whylen, "missing port");
	if (len > 5 || (s[0] == '0'))
		return why_set(why, whylen, "port must be a number from 1 to 65535");
	unsigned v = 0;
	for (size_t i = 0; i < len; i++) {
		if (!is_digit(s[i]))
			return why_set(why, whylen, "port must be a number from 1 to 65535");
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return why_set(why, whylen, "port must be a number from 1 to 65535");
	*port = (uint16_t)v;
	return AAM_OK;
}

/* A DNS name: dot-separated labels of letters, digits and '-', 1-63 each, 253 in all. */
static bool
valid_hostname(const char *h, size_t len)
{
	if (len == 0 || len > 253)
		return false;
	size_t label = 0;
	for (size_t i = 0; i <= len; i++) {
		char c = i < len ? h[i] : '.';
		if (c == '.') {
			if (label == 0 || label > 63 || h[i - 1] == '-')
				return false;
			label = 0;
		} else if (is_alnum(c) || c == '-') {
			if (label == 0 && c == '-')
				return false;
			label++;
		} else {
			return false;
		}
	}
	return true;
}

/*
 * "host", "host:port", "[v6]" or "[v6]:port".  HOST (AAM_CONFIG_HOST_MAX)
 * receives the host without brackets; a missing port is an error when
 * NEED_PORT, otherwise *PORT is left alone.
 */
static int
host_port_parse(const char *s, size_t len, bool need_port, char *host, uint16_t *port, char *why,
                size_t whylen)
{
	const char *h = s, *rest;
	size_t hl;
	if (len > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', len);
		if (close == NULL)
			return why_set(why, whylen, "missing ']' after the IPv6 address");
		h = s + 1;
		hl = (size_t)(close - h);
		rest = close + 1;
		char tmp[AAM_CONFIG_HOST_MAX];
		struct in6_addr a6;
		if (hl == 0 || hl >= sizeof(tmp))
			return why_set(why, whylen, "invalid IPv6 address");
		memcpy(tmp, h, hl);
		tmp[hl] = '\0';
		if (inet_pton(AF_INET6, tmp, &a6) != 1)
			return why_set(why, whylen, "invalid IPv6 address");
	} else {
		const char *colon = memchr(s, ':', len);
		if (colon != NULL && memchr(colon + 1, ':', len - (size_t)(colon + 1 - s)) != NULL)
			return why_set(why, whylen,
			               "IPv6 addresses need brackets, as in [::1]:4000");
		hl = colon ? (size_t)(colon - s) : len;
		rest = s + hl;
		if (hl == 0)
			return why_set(why, whylen,
			               "missing host (0.0.0.0 or [::] listen on every interface)");
		if (hl >= AAM_CONFIG_HOST_MAX)
			return why_set(why, whylen, "host name too long");
		bool numeric = true;
		for (size_t i = 0; i < hl; i++)
			numeric = numeric && (is_digit(s[i]) || s[i] == '.');
		if (numeric) {
			char tmp[AAM_CONFIG_HOST_MAX];
			struct in_addr a4;
			memcpy(tmp, s, hl);
			tmp[hl] = '\0';
			if (inet_pton(AF_INET, tmp, &a4) != 1)
				return why_set(why, whylen, "invalid IPv4 address");
		} else if (!valid_hostname(s, hl)) {
			return why_set(why, whylen, "invalid host name");
		}
	}
	size_t rl = len - (size_t)(rest - s);
	uint16_t p = 0;
	if (rl == 0) {
		if (need_port)
			return why_set(why, whylen, "missing port, as in 127.0.0.1:4000");
	} else if (rest[0] != ':') {
		return why_set(why, whylen, "unexpected characters after the host");
	} else if (parse_port(rest + 1, rl - 1, &p, why, whylen) != AAM_OK) {
		return AAM_E_INVAL;
	}
	if (host != NULL) {
		memcpy(host, h, hl);
		host[hl] = '\0';
	}
	if (port != NULL && rl > 0)
		*port = p;
	return AAM_OK;
}

static int
listen_parse(const char *s, char *host, uint16_t *port, char *why, size_t whylen)
{
	if (s == NULL)
		return why_set(why, whylen, "missing address");
	size_t len = strlen(s);
	if (len > AAM_CONFIG_HOST_MAX + 8)
		return why_set(why, whylen, "address too long");
	char h[AAM_CONFIG_HOST_MAX];
	uint16_t p = 0;
	int rc = host_port_parse(s, len, true, h, &p, why, whylen);
	if (rc != AAM_OK)
		return rc;
	if (host != NULL)
		memcpy(host, h, strlen(h) + 1);
	if (port != NULL)
		*port = p;
	return AAM_OK;
}

int
aam_config_parse_listen(const char *s, char host[AAM_CONFIG_HOST_MAX], uint16_t *port)
{
	return listen_parse(s, host, port, NULL, 0);
}

int
aam_config_check_listen(const char *value, char *why, size_t whylen)
{
	return listen_parse(value, NULL, NULL, why, whylen);
}

int
aam_config_check_url(const char *value, char *why, size_t whylen)
{
	const char *s = value;
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return why_set(why, whylen,
			               "URLs must not contain spaces or control or "
			               "non-ASCII characters (percent-encode them)");
	if (strncmp(s, "https://", 8) == 0)
		s += 8;
	else if (strncmp(s, "http://", 7) == 0)
		s += 7;
	else
		return why_set(why, whylen, "expected an http:// or https:// URL");
	if (strchr(s, '#') != NULL)
		return why_set(why, whylen, "URLs here must not have a #fragment");
	size_t alen = strcspn(s, "/?");
	if (memchr(s, '@', alen) != NULL)
		return why_set(why, whylen, "URLs must not carry credentials (user@)");
	if (alen == 0)
		return why_set(why, whylen, "missing host in URL");
	return host_port_parse(s, alen, false, NULL, NULL, why, whylen);
}

/* Attribute names in "a=b;c=d" or "a=b&c=d" (LEN bytes, separated by SEP). */
static bool
has_attr(const char *s, size_t len, char sep, const char *name)
{
	size_t nl = strlen(name);
	const char *end = s + len;
	while (s < end) {
		const char *next = memchr(s, sep, (size_t)(end - s));
		size_t seg = next ? (size_t)(next - s) : (size_t)(end - s);
		if (seg >= nl && memcmp(s, name, nl) == 0 && (seg == nl || s[nl] == '='))
			return true;
		s += seg + 1;
	}
	return false;
}

int
aam_config_check_pkcs11_uri(const char *value, char *why, size_t whylen)
{
	if (strncmp(value, "pkcs11:", 7) != 0)
		return why_set(why, whylen, "expected an RFC 7512 URI starting with \"pkcs11:\"");
	const char *body = value + 7;
	for (const char *p = body; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= 0x20 || c >= 0x7f || strchr("\"<>\\^`{|}", c) != NULL)
			return why_set(why, whylen,
			               "character not allowed in a pkcs11: URI "
			               "(percent-encode it)");
		if (c == '%' && !(is_hex(p[1]) && is_hex(p[2])))
			return why_set(why, whylen, "bad percent-encoding in a pkcs11: URI");
	}
	const char *q = strchr(body, '?');
	size_t plen = q ? (size_t)(q - body) : strlen(body);
	/* The PIN is a secret: it comes from pin_file, never from this file. */
	if (has_attr(body, plen, ';', "pin-value") ||
	    (q != NULL && has_attr(q + 1, strlen(q + 1), '&', "pin-value")))
		return why_set(why, whylen,
		               "pin-value is not allowed here; put the PIN in a file "
		               "and set vault.pkcs11.pin_file");
	return AAM_OK;
}

/* ---- the generic loader ---- */

static void *
member(void *sec, size_t off)
{
	return (char *)sec + off;
}

static int fail(struct aam_yaml_error *err, const char *file, const struct aam_yaml_node *at,
                const char *sect, const char *key, const char *fmt, ...)
        __attribute__((format(printf, 6, 7)));

/* Sets "sect.key: message" at AT's position; returns AAM_E_CONFIG. */
static int
fail(struct aam_yaml_error *err, const char *file, const struct aam_yaml_node *at, const char *sect,
     const char *key, const char *fmt, ...)
{
	char m[sizeof(err->msg)];
	int n = 0;
	if (sect[0] && key)
		n = snprintf(m, sizeof(m), "%s.%s: ", sect, key);
	else if (sect[0] || key)
		n = snprintf(m, sizeof(m), "%s: ", sect[0] ? sect : key);
	if (n < 0 || (size_t)n >= sizeof(m))
		n = 0;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m + n, sizeof(m) - (size_t)n, fmt, ap);
	va_end(ap);
	aam_yaml_error_at(err, file, at, "%s", m);
	return AAM_E_CONFIG;
}

static int
nomem(struct aam_yaml_error *err, const char *file)
{
	aam_yaml_error_set(err, file, 0, 0, "out of memory");
	return AAM_E_NOMEM;
}

/* A value for a message: printable ASCII, at most 48 bytes.  Config values hold no secrets. */
static const char *
shown(char out[64], const char *s)
{
	size_t o = 0;
	for (; s[o] && o < 48; o++)
		out[o] = (s[o] >= 0x20 && s[o] < 0x7f) ? s[o] : '?';
	if (s[o]) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}

static size_t
edit_distance(const char *a, size_t al, const char *b, size_t bl)
{
	size_t row[65];
	if (al > 64 || bl > 64)
		return SIZE_MAX;
	for (size_t j = 0; j <= bl; j++)
		row[j] = j;
	for (size_t i = 1; i <= al; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= bl; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] == b[j - 1] ? 0 : 1);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[bl];
}

static const char *
suggest(const struct aam_config_section *d, const char *key, size_t len)
{
	const char *best = NULL;
	size_t bd = 3; /* suggest only close typos */
	for (size_t i = 0; i < d->nfields; i++) {
		const char *k = d->fields[i].key;
		size_t dist = edit_distance(key, len, k, strlen(k));
		if (dist < bd && dist < len) {
			bd = dist;
			best = k;
		}
	}
	return best;
}

static bool
has_ctrl(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return true;
	return false;
}

static const char *
expected(const struct aam_config_field *f)
{
	switch (f->type) {
	case AAM_CFG_STR:
		return "a string";
	case AAM_CFG_BOOL:
		return "true or false";
	case AAM_CFG_INT:
		return "an integer";
	case AAM_CFG_DURATION:
		return "a duration such as 30s, 5m or 1h30m";
	case AAM_CFG_SIZE:
		return "a size such as 64KiB or 4MiB";
	case AAM_CFG_PATH:
		return "a path";
	case AAM_CFG_LIST_STR:
		return "a list of strings";
	case AAM_CFG_ENUM:
		return "one of its choices";
	case AAM_CFG_SECTION:
		return "a mapping";
	}
	return "a value";
}

/* Replaces the string at *SLOT. */
static int
set_str(char **slot, const char *v, size_t len)
{
	char *c = malloc(len + 1);
	if (c == NULL)
		return AAM_E_NOMEM;
	memcpy(c, v, len);
	c[len] = '\0';
	free(*slot);
	*slot = c;
	return AAM_OK;
}

/* Joins DIR of FILE and a relative PATH; absolute paths and names stay as they are. */
static int
set_path(char **slot, const char *file, const char *v, size_t len)
{
	const char *slash = file ? strrchr(file, '/') : NULL;
	if (v[0] == '/' || slash == NULL)
		return set_str(slot, v, len);
	size_t dl = slash == file ? 1 : (size_t)(slash - file);
	char *c = malloc(dl + 1 + len + 1);
	if (c == NULL)
		return AAM_E_NOMEM;
	memcpy(c, file, dl);
	size_t o = dl;
	if (c[o - 1] != '/')
		c[o++] = '/';
	memcpy(c + o, v, len);
	c[o + len] = '\0';
	free(*slot);
	*slot = c;
	return AAM_OK;
}

static int
check_bounds(const struct aam_config_section *d, const struct aam_config_field *f,
             const struct aam_yaml_node *v, const char *file, int64_t val,
             struct aam_yaml_error *err)
{
	if ((f->min == 0 && f->max == 0) || (val >= f->min && val <= f->max))
		return AAM_OK;
	char lo[32], hi[32];
	if (f->type == AAM_CFG_DURATION) {
		fmt_duration(lo, sizeof(lo), f->min);
		fmt_duration(hi, sizeof(hi), f->max);
	} else if (f->type == AAM_CFG_SIZE) {
		fmt_size(lo, sizeof(lo), (uint64_t)f->min);
		fmt_size(hi, sizeof(hi), (uint64_t)f->max);
	} else {
		snprintf(lo, sizeof(lo), "%" PRId64, f->min);
		snprintf(hi, sizeof(hi), "%" PRId64, f->max);
	}
	return fail(err, file, v, d->name, f->key, "must be between %s and %s", lo, hi);
}

/* Validates a string value of a STR, PATH, ENUM field or LIST_STR item. */
static int
check_string(const struct aam_config_section *d, const struct aam_config_field *f,
             const struct aam_yaml_node *v, const char *file, struct aam_yaml_error *err)
{
	char tmp[64];
	enum aam_yaml_kind k = aam_yaml_kind(v);
	if (k != AAM_YAML_K_STR)
		return fail(err, file, v, d->name, f->key, "expected %s, got %s%s",
		            f->type == AAM_CFG_LIST_STR ? "a string" : expected(f),
		            aam_yaml_kind_name(k),
		            v->type == AAM_YAML_SCALAR && k != AAM_YAML_K_NULL ? " (quote it)"
		                                                               : "");
	if (v->len == 0 && !(f->flags & AAM_CFG_F_EMPTY_OK))
		return fail(err, file, v, d->name, f->key, "must not be empty");
	if (has_ctrl(v->str, v->len))
		return fail(err, file, v, d->name, f->key, "must not contain control characters");
	if (f->type == AAM_CFG_PATH && (f->flags & AAM_CFG_F_NAME_OK) &&
	    strchr(v->str, '/') == NULL) {
		for (size_t i = 0; i < v->len; i++)
			if (!is_alnum(v->str[i]) && strchr("._+-", v->str[i]) == NULL)
				return fail(err, file, v, d->name, f->key,
				            "'%s' is neither a path nor a module name",
				            shown(tmp, v->str));
	}
	if (f->check != NULL) {
		char why[160] = "invalid value";
		if (f->check(v->str, why, sizeof(why)) != AAM_OK)
			return fail(err, file, v, d->name, f->key, "'%s': %s", shown(tmp, v->str),
			            why);
	}
	return AAM_OK;
}

static int
load_list(const struct aam_config_section *d, const struct aam_config_field *f,
          const struct aam_yaml_node *v, const char *file, void *sec, struct aam_yaml_error *err)
{
	size_t max = f->max > 0 ? (size_t)f->max : LIST_MAX_ITEMS;
	if (v->type != AAM_YAML_SEQ)
		return fail(err, file, v, d->name, f->key, "expected a list of strings, got %s",
		            aam_yaml_kind_name(aam_yaml_kind(v)));
	if (v->n > max)
		return fail(err, file, v, d->name, f->key, "more than %zu items", max);
	for (size_t i = 0; i < v->n; i++) {
		int rc = check_string(d, f, v->items[i], file, err);
		if (rc != AAM_OK)
			return rc;
	}
	struct aam_config_strlist nl = {0};
	nl.v = calloc(v->n ? v->n : 1, sizeof(*nl.v));
	if (nl.v == NULL)
		return nomem(err, file);
	for (; nl.n < v->n; nl.n++) {
		if (set_str(&nl.v[nl.n], v->items[nl.n]->str, v->items[nl.n]->len) != AAM_OK) {
			for (size_t i = 0; i < nl.n; i++)
				free(nl.v[i]);
			free(nl.v);
			return nomem(err, file);
		}
	}
	struct aam_config_strlist *slot = member(sec, f->offset);
	for (size_t i = 0; i < slot->n; i++)
		free(slot->v[i]);
	free(slot->v);
	*slot = nl;
	return AAM_OK;
}

static int
load_value(const struct aam_config_section *d, const struct aam_config_field *f,
           const struct aam_yaml_node *key, const struct aam_yaml_node *v, const char *file,
           void *sec, struct aam_yaml_error *err)
{
	struct aam_yaml_error tmp;
	enum aam_yaml_kind k = aam_yaml_kind(v);
	int rc;
	switch (f->type) {
	case AAM_CFG_STR:
	case AAM_CFG_PATH:
		rc = check_string(d, f, v, file, err);
		if (rc != AAM_OK)
			return rc;
		rc = f->type == AAM_CFG_PATH && !((f->flags & AAM_CFG_F_NAME_OK) &&
		                                  strchr(v->str, '/') == NULL)
		             ? set_path(member(sec, f->offset), file, v->str, v->len)
		             : set_str(member(sec, f->offset), v->str, v->len);
		return rc == AAM_OK ? AAM_OK : nomem(err, file);
	case AAM_CFG_ENUM: {
		char list[160] = "", shownv[64];
		for (size_t i = 0; f->choices[i] != NULL; i++) {
			if (k == AAM_YAML_K_STR && strcmp(v->str, f->choices[i]) == 0) {
				*(int *)member(sec, f->offset) = (int)i;
				return AAM_OK;
			}
			size_t l = strlen(list);
			snprintf(list + l, sizeof(list) - l, "%s%s", i ? ", " : "", f->choices[i]);
		}
		if (k == AAM_YAML_K_STR)
			return fail(err, file, v, d->name, f->key, "expected one of %s, got '%s'",
			            list, shown(shownv, v->str));
		return fail(err, file, v, d->name, f->key, "expected one of %s, got %s", list,
		            aam_yaml_kind_name(k));
	}
	case AAM_CFG_BOOL:
		if (aam_yaml_get_bool(v, file, member(sec, f->offset), &tmp) != AAM_OK)
			return fail(err, file, v, d->name, f->key, "%s", tmp.msg);
		return AAM_OK;
	case AAM_CFG_INT: {
		int64_t val;
		if (aam_yaml_get_int64(v, file, &val, &tmp) != AAM_OK)
			return fail(err, file, v, d->name, f->key, "%s", tmp.msg);
		rc = check_bounds(d, f, v, file, val, err);
		if (rc == AAM_OK)
			*(int64_t *)member(sec, f->offset) = val;
		return rc;
	}
	case AAM_CFG_DURATION: {
		int64_t ms;
		if (k == AAM_YAML_K_INT)
			return fail(err, file, v, d->name, f->key,
			            "a duration needs a unit, as in 30s or 5m");
		if (k != AAM_YAML_K_STR)
			return fail(err, file, v, d->name, f->key, "expected %s, got %s",
			            expected(f), aam_yaml_kind_name(k));
		if (aam_config_parse_duration(v->str, &ms) != AAM_OK) {
			char s[64];
			return fail(err, file, v, d->name, f->key,
			            "invalid duration '%s' (units: ms, s, m, h, d, as in 1h30m)",
			            shown(s, v->str));
		}
		rc = check_bounds(d, f, v, file, ms, err);
		if (rc == AAM_OK)
			*(int64_t *)member(sec, f->offset) = ms;
		return rc;
	}
	case AAM_CFG_SIZE: {
		uint64_t b;
		int64_t iv;
		if (k == AAM_YAML_K_INT) {
			if (aam_yaml_get_int64(v, file, &iv, &tmp) != AAM_OK || iv < 0)
				return fail(err, file, v, d->name, f->key,
				            "invalid size (a number of bytes, or 64KiB, 4MiB ...)");
			b = (uint64_t)iv;
		} else if (k == AAM_YAML_K_STR) {
			if (aam_config_parse_size(v->str, &b) != AAM_OK) {
				char s[64];
				return fail(err, file, v, d->name, f->key,
				            "invalid size '%s' (units: B, KiB, MiB, GiB, TiB)",
				            shown(s, v->str));
			}
		} else {
			return fail(err, file, v, d->name, f->key, "expected %s, got %s",
			            expected(f), aam_yaml_kind_name(k));
		}
		if (b > INT64_MAX)
			return fail(err, file, v, d->name, f->key, "size out of range");
		rc = check_bounds(d, f, v, file, (int64_t)b, err);
		if (rc == AAM_OK)
			*(uint64_t *)member(sec, f->offset) = b;
		return rc;
	}
	case AAM_CFG_LIST_STR:
		return load_list(d, f, v, file, sec, err);
	case AAM_CFG_SECTION:
		return aam_config_section_load(f->section, key, v, file, member(sec, f->offset),
		                               err);
	}
	return fail(err, file, v, d->name, f->key, "internal error: unknown field type");
}

/* An absent section still gets its derived defaults. */
static int
section_absent(const struct aam_config_section *d, void *sec, const char *file,
               struct aam_yaml_error *err)
{
	for (size_t i = 0; i < d->nfields; i++) {
		const struct aam_config_field *f = &d->fields[i];
		if (f->type != AAM_CFG_SECTION)
			continue;
		int rc = section_absent(f->section, member(sec, f->offset), file, err);
		if (rc != AAM_OK)
			return rc;
	}
	return d->finish ? d->finish(sec, NULL, file, err) : AAM_OK;
}

int
aam_config_section_load(const struct aam_config_section *d, const struct aam_yaml_node *key,
                        const struct aam_yaml_node *value, const char *file, void *sec,
                        struct aam_yaml_error *err)
{
	const struct aam_yaml_node *at = key ? key : value;
	if (d->nfields > 64)
		return fail(err, file, at, d->name, NULL, "internal error: too many fields");
	if (value != NULL && value->type != AAM_YAML_MAP && !aam_yaml_is_null(value))
		return fail(err, file, value, d->name, NULL, "expected a mapping%s, got %s",
		            d->name[0] ? "" : " of sections",
		            aam_yaml_kind_name(aam_yaml_kind(value)));
	if (d->present_offset != AAM_CFG_NO_PRESENT)
		*(bool *)member(sec, d->present_offset) = true;
	uint64_t seen = 0;
	for (size_t i = 0; value != NULL && value->type == AAM_YAML_MAP && i < value->n; i++) {
		const struct aam_yaml_node *k = value->keys[i];
		size_t fi = 0;
		while (fi < d->nfields && !(strlen(d->fields[fi].key) == k->len &&
		                            strcmp(d->fields[fi].key, k->str) == 0))
			fi++;
		if (fi == d->nfields) {
			char s[64];
			const char *hint = suggest(d, k->str, k->len);
			return fail(err, file, k, d->name, NULL, "unknown %s '%s'%s%s%s",
			            d->name[0] ? "key" : "section", shown(s, k->str),
			            hint ? " (did you mean '" : "", hint ? hint : "",
			            hint ? "'?)" : "");
		}
		int rc = load_value(d, &d->fields[fi], k, value->items[i], file, sec, err);
		if (rc != AAM_OK)
			return rc;
		seen |= 1ull << fi;
	}
	for (size_t i = 0; i < d->nfields; i++) {
		const struct aam_config_field *f = &d->fields[i];
		if (seen & (1ull << i))
			continue;
		if (f->required)
			return fail(err, file, at, d->name, NULL, "missing required key '%s'",
			            f->key);
		if (f->type == AAM_CFG_SECTION) {
			int rc = section_absent(f->section, member(sec, f->offset), file, err);
			if (rc != AAM_OK)
				return rc;
		}
	}
	return d->finish ? d->finish(sec, at, file, err) : AAM_OK;
}

static int
set_default(const struct aam_config_field *f, void *sec)
{
	void *slot = member(sec, f->offset);
	switch (f->type) {
	case AAM_CFG_STR:
	case AAM_CFG_PATH:
		return set_str(slot, f->def, strlen(f->def));
	case AAM_CFG_BOOL:
		*(bool *)slot = strcmp(f->def, "true") == 0;
		return AAM_OK;
	case AAM_CFG_INT: {
		char *end;
		*(int64_t *)slot = strtoll(f->def, &end, 10);
		return *end == '\0' ? AAM_OK : AAM_E_INTERNAL;
	}
	case AAM_CFG_DURATION:
		return aam_config_parse_duration(f->def, slot) == AAM_OK ? AAM_OK : AAM_E_INTERNAL;
	case AAM_CFG_SIZE:
		return aam_config_parse_size(f->def, slot) == AAM_OK ? AAM_OK : AAM_E_INTERNAL;
	case AAM_CFG_ENUM:
		for (size_t i = 0; f->choices[i] != NULL; i++) {
			if (strcmp(f->def, f->choices[i]) == 0) {
				*(int *)slot = (int)i;
				return AAM_OK;
			}
		}
		return AAM_E_INTERNAL;
	case AAM_CFG_LIST_STR:
	case AAM_CFG_SECTION:
		break;
	}
	return AAM_E_INTERNAL; /* a default this loader cannot express: a broken table */
}

int
aam_config_section_defaults(const struct aam_config_section *d, void *sec)
{
	for (size_t i = 0; i < d->nfields; i++) {
		const struct aam_config_field *f = &d->fields[i];
		int rc = AAM_OK;
		if (f->type == AAM_CFG_SECTION)
			rc = aam_config_section_defaults(f->section, member(sec, f->offset));
		else if (f->def != NULL)
			rc = set_default(f, sec);
		if (rc != AAM_OK)
			return rc;
	}
	return AAM_OK;
}

void
aam_config_section_uninit(const struct aam_config_section *d, void *sec)
{
	for (size_t i = 0; i < d->nfields; i++) {
		const struct aam_config_field *f = &d->fields[i];
		void *slot = member(sec, f->offset);
		if (f->type == AAM_CFG_STR || f->type == AAM_CFG_PATH) {
			free(*(char **)slot);
			*(char **)slot = NULL;
		} else if (f->type == AAM_CFG_LIST_STR) {
			struct aam_config_strlist *l = slot;
			for (size_t j = 0; j < l->n; j++)
				free(l->v[j]);
			free(l->v);
			l->v = NULL;
			l->n = 0;
		} else if (f->type == AAM_CFG_SECTION) {
			aam_config_section_uninit(f->section, slot);
		}
	}
	if (d->present_offset != AAM_CFG_NO_PRESENT)
		*(bool *)member(sec, d->present_offset) = false;
}

/* ---- the deployment's tables ---- */

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};

static const struct aam_config_field log_fields[] = {
        {.key = "level",
         .type = AAM_CFG_ENUM,
         .offset = offsetof(struct aam_config_log, level),
         .def = "info",
         .choices = log_levels},
};

static const struct aam_config_field sockets_fields[] = {
        {.key = "gateway",
         .type = AAM_CFG_PATH,
         .offset = offsetof(struct aam_config_vault_sockets, gateway),
         .def = "/run/aam/vault-gateway.sock"},
        {.key = "attest",
         .type = AAM_CFG_PATH,
         .offset = offsetof(struct aam_config_vault_sockets, attest),
         .def = "/run/aam/vault-attest.sock"},
        {.key = "admin",
         .type = AAM_CFG_PATH,
         .offset = offsetof(struct aam_config_vault_sockets, admin),
         .def = "/run/aam/vault-admin.sock"},
};

static const struct aam_config_field pkcs11_fields[] = {
        {.key = "module",
         .type = AAM_CFG_PATH,
         .offset = offsetof(struct aam_config_vault_pkcs11, module),
         .required = true,
         .flags = AAM_CFG_F_NAME_OK},
        {.key = "token",
         .type = AAM_CFG_STR,
         .offset = offsetof(struct aam_config_vault_pkcs11, token),
         .required = true,
         .check = aam_config_check_pkcs11_uri},
        {.key = "pin_file",
         .type = AAM_CFG_PATH,
         .offset = offsetof(struct aam_config_vault_pkcs11, pin_file)},
};

static const struct aam_config_section sockets_section = {
        .name = "vault.sockets",
        .fields = sockets_fields,
        .nfields = sizeof(sockets_fields) / sizeof(sockets_fields[0]),
        .present_offset = offsetof(struct aam_config_vault_sockets, present),
};

static const struct aam_config_section pkcs11_section = {
        .name = "vault.pkcs11",
        .fields = pkcs11_fields,
        .nfields = sizeof(pkcs11_fields) / sizeof(pkcs11_fields[0]),
        .present_offset = offsetof(struct aam_config_vault_pkcs11, present),
};

/* A socket mode: three or four octal digits, no set-id or sticky bits. */
static int
check_mode(const char *value, char *why, size_t whylen)
{
	size_t n = strlen(value);
	bool ok = n >= 3 && n <= 4;
	for (size_t i = 0; ok && i < n; i++)
		ok = value[i] >= '0' && value[i] <= '7';
	if (ok && n == 4 && value[0] != '0')
		ok = false;
	if (!ok) {
		snprintf(why, whylen, "expected an octal mode such as \"0660\"");
		return AAM_E_INVAL;
	}
	return AAM_OK;
}

/* No default mode here: aam-vault picks 0660, or 0600 for the admin socket. */
static const struct aam_config_field peer_fields[] = {
        {.key = "mode",
         .type = AAM_CFG_STR,
         .offset = offsetof(struct aam_config_vault_peer, mode),
         .check = check_mode},
        {.key = "owner",
         .type = AAM_CFG_STR,
         .offset = offsetof(struct aam_config_vault_peer, owner)},
        {.key = "group",
         .type = AAM_CFG_STR,
         .offset = offsetof(struct aam_config_vault_peer, group)},
        {.key = "uids",
         .type = AAM_CFG_LIST_STR,
         .offset = offsetof(struct aam_config_vault_peer, uids),
         .max = 64},
        {.key = "gids",
         .type = AAM_CFG_LIST_STR,
         .offset = offsetof(struct aam_config_vault_peer, gids),
         .max = 64},
        {.key = "ops",
         .type = AAM_CFG_LIST_STR,
         .offset = offsetof(struct aam_config_vault_peer, ops),
         .max = 32},
};

#define VAULT_PEER_SECTION(var, nm)                                                                \
	static const struct aam_config_section var = {                                             \
	        .name = nm,                                                                        \
	        .fields = peer_fields,                                                             \
	        .nfields = sizeof(peer_fields) / sizeof(peer_fields[0]),                           \
	        .present_offset = offsetof(struct aam_config_vault_peer, present),                 \
	}
VAULT_PEER_SECTION(peer_gateway_section, "vault.access.gateway");
VAULT_PEER_SECTION(peer_attest_section, "vault.access.attest");
VAULT_PEER_SECTION(peer_admin_section, "vault.access.admin");

static const struct aam_config_field access_fields[] = {
        {.key = "gateway",
         .type = AAM_CFG_SECTION,
         .offset = offsetof(struct aam_config_vault_access, gateway),
         .section = &peer_gateway_section},
        {.key = "attest",
         .type = AAM_CFG_SECTION,
         .offset = offsetof(struct aam_config_vault_access, attest),
         .section = &peer_attest_section},
        {.key = "admin",
         .type = AAM_CFG_SECTION,
         .offset = offsetof(struct aam_config_vault_access, admin),
         .section = &peer_admin_section},
};

static const struct aam_config_section access_section = {
        .name = "vault.access",
        .fields = access_fields,
        .nfields = sizeof(access_fields) / sizeof(access_fields[0]),
        .present_offset = offsetof(struct aam_config_vault_access, present),
};

/* Audit log names: no space or '+' (signed-note key name rules), at most 255 bytes. */
static int
check_origin(const char *value, char *why, size_t whylen)
{
	size_t n = strlen(value);
	if (n == 0 || n > 255 || strpbrk(value, " +\t") != NULL) {
		snprintf(why, whylen, "an audit log name: 1-255 bytes, no space or '+'");
		return AAM_E_INVAL;
	}
	return AAM_OK;
}

static const struct aam_config_field vault_audit_fields[] = {
        {.key = "db", .type = AAM_CFG_PATH, .offset = offsetof(struct aam_config_vault_audit, db)},
        {.key = "checkpoint_dir",
         .type = AAM_CFG_PATH,
         .offset = offsetof(struct aam_config_vault_audit, checkpoint_dir)},
        {.key = "origin",
         .type = AAM_CFG_STR,
         .offset = offsetof(struct aam_config_vault_audit, origin),
         .def = "aam.local/audit",
         .check = check_origin},
        {.key = "append_timeout",
         .type = AAM_CFG_DURATION,
         .offset = offsetof(struct aam_config_vault_audit, append_timeout_ms),
         .def = "2s",
         .min = 10,
         .max = 60 * 1000},
};

static const struct aam_config_section vault_audit_section = {
        .name = "vault.audit",
        .fields = vault_audit_fields,
        .nfields = sizeof(vault_audit_fields) / sizeof(vault_audit_fields[0]),
        .present_offset = offsetof(struct aam_config_vault_audit, present),
};

/* <state_dir>/NAME into *OUT unless already set. */
static int
state_path(const struct aam_config_vault *v, const char *name, char **out, const char *file,
           struct aam_yaml_error *err)
{
	if (*out != NULL)
		return AAM_OK;
	size_t len = strlen(v->state_dir), nlen = strlen(name);
	while (len > 1 && v->state_dir[len - 1] == '/')
		len--;
	*out = malloc(len + 1 + nlen + 1);
	if (*out == NULL)
		return nomem(err, file);
	memcpy(*out, v->state_dir, len);
	(*out)[len] = '/';
	memcpy(*out + len + 1, name, nlen + 1);
	return AAM_OK;
}

/*
 * vault.db, vault.audit.db and vault.audit.checkpoint_dir default to files
 * in <state_dir>, whatever state_dir became.
 */
static int
vault_finish(void *sec, const struct aam_yaml_node *at, const char *file,
             struct aam_yaml_error *err)
{
	(void)at;
	struct aam_config_vault *v = sec;
	int rc = state_path(v, "vault.db", &v->db, file, err);
	if (rc == AAM_OK)
		rc = state_path(v, "audit.db", &v->audit.db, file, err);
	if (rc == AAM_OK)
		rc = state_path(v, "checkpoints", &v->audit.checkpoint_dir, file, err);
	return rc;
}

static const struct aam_config_field vault_fields[] = {
        {.key = "state_dir",
         .type = AAM_CFG_PATH,
         .offset = offsetof(struct aam_config_vault, state_dir),
         .def = "/var/lib/aam/vault"},
        {.key = "db", .type = AAM_CFG_PATH, .offset = offsetof(struct aam_config_vault, db)},
        {.key = "sockets",
         .type = AAM_CFG_SECTION,
         .offset = offsetof(struct aam_config_vault, sockets),
         .section = &sockets_section},
        {.key = "pkcs11",
         .type = AAM_CFG_SECTION,
         .offset = offsetof(struct aam_config_vault, pkcs11),
         .required = true,
         .section = &pkcs11_section},
        {.key = "access",
         .type = AAM_CFG_SECTION,
         .offset = offsetof(struct aam_config_vault, access),
         .section = &access_section},
        {.key = "ca_bundle",
         .type = AAM_CFG_PATH,
         .offset = offsetof(struct aam_config_vault, ca_bundle)},
        {.key = "connect_timeout",
         .type = AAM_CFG_DURATION,
         .offset = offsetof(struct aam_config_vault, connect_timeout_ms),
         .def = "10s",
         .min = 100,
         .max = 5 * 60 * 1000},
        {.key = "request_timeout",
         .type = AAM_CFG_DURATION,
         .offset = offsetof(struct aam_config_vault, request_timeout_ms),
         .def = "10m",
         .min = 0,
         .max = 24LL * 3600 * 1000},
        {.key = "max_body",
         .type = AAM_CFG_SIZE,
         .offset = offsetof(struct aam_config_vault, max_body),
         .def = "16MiB",
         .min = 1024,
         .max = 1024 * 1024 * 1024},
        {.key = "http2",
         .type = AAM_CFG_BOOL,
         .offset = offsetof(struct aam_config_vault, http2),
         .def = "true"},
        {.key = "secret_cache_ttl",
         .type = AAM_CFG_DURATION,
         .offset = offsetof(struct aam_config_vault, secret_cache_ttl_ms),
         .def = "0s",
         .min = 0,
         .max = 24LL * 3600 * 1000},
        {.key = "audit",
         .type = AAM_CFG_SECTION,
         .offset = offsetof(struct aam_config_vault, audit),
         .section = &vault_audit_section},
};

/* attest.trust_domain: a bare SPIFFE trust domain name. */
static int
check_trust_domain(const char *value, char *why, size_t whylen)
{
	char td[AAM_SPIFFE_TD_MAX + 1];
	const char *reason = NULL;
	if (aam_spiffe_trust_domain_parse(value, strlen(value), td, &reason) != AAM_OK) {
		snprintf(why, whylen, "%s", reason != NULL ? reason : "not a SPIFFE trust domain");
		return AAM_E_INVAL;
	}
	return AAM_OK;
}

static const struct aam_config_field attest_fields[] = {
        {.key = "listen",
         .type = AAM_CFG_STR,
         .offset = offsetof(struct aam_config_attest, listen),
         .def = "127.0.0.1:4001",
         .check = aam_config_check_listen},
        {.key = "db",
         .type = AAM_CFG_PATH,
         .offset = offsetof(struct aam_config_attest, db),
         .def = "/var/lib/aam/attest/attest.db"},
        {.key = "issuer",
         .type = AAM_CFG_STR,
         .offset = offsetof(struct aam_config_attest, issuer),
         .required = true,
         .check = aam_config_check_url},
        /* DESIGN.md invariant 7: tokens live 5 minutes by default, 15 at most. */
        {.key = "token_ttl",
         .type = AAM_CFG_DURATION,
         .offset = offsetof(struct aam_config_attest, token_ttl_ms),
         .def = "5m",
         .min = 1000,
         .max = 15 * 60 * 1000},
        {.key = "trust_domain",
         .type = AAM_CFG_STR,
         .offset = offsetof(struct aam_config_attest, trust_domain),
         .check = check_trust_domain},
        /* TPM manufacturer CAs that EK certificates must chain to. */
        {.key = "ek_ca",
         .type = AAM_CFG_LIST_STR,
         .offset = offsetof(struct aam_config_attest, ek_ca),
         .max = 64},
        {.key = "vault_socket",
         .type = AAM_CFG_PATH,
         .offset = offsetof(struct aam_config_attest, vault_socket),
         .def = "/run/aam/vault-attest.sock"},
};

static const struct aam_config_field gateway_fields[] = {
        {.key = "listen",
         .type = AAM_CFG_STR,
         .offset = offsetof(struct aam_config_gateway, listen),
         .def = "127.0.0.1:4000",
         .check = aam_config_check_listen},
        {.key = "policies",
         .type = AAM_CFG_PATH,
         .offset = offsetof(struct aam_config_gateway, policies),
         .required = true},
        {.key = "max_body",
         .type = AAM_CFG_SIZE,
         .offset = offsetof(struct aam_config_gateway, max_body),
         .def = "4MiB",
         .min = 1024,
         .max = 1024 * 1024 * 1024},
        /* The URL agents put in their DPoP proofs' htu; behind a proxy it differs from listen. */
        {.key = "external_url",
         .type = AAM_CFG_STR,
         .offset = offsetof(struct aam_config_gateway, external_url),
         .check = aam_config_check_url},
        {.key = "routes",
         .type = AAM_CFG_PATH,
         .offset = offsetof(struct aam_config_gateway, routes)},
        /* Absent: the folder `tools` next to the policies, when it exists. */
        {.key = "tools",
         .type = AAM_CFG_PATH,
         .offset = offsetof(struct aam_config_gateway, tools)},
        {.key = "db",
         .type = AAM_CFG_PATH,
         .offset = offsetof(struct aam_config_gateway, db),
         .def = "/var/lib/aam/gateway/gateway.db"},
        {.key = "vault_socket",
         .type = AAM_CFG_PATH,
         .offset = offsetof(struct aam_config_gateway, vault_socket),
         .def = "/run/aam/vault-gateway.sock"},
        {.key = "attest_url",
         .type = AAM_CFG_STR,
         .offset = offsetof(struct aam_config_gateway, attest_url),
         .def = "http://127.0.0.1:4001",
         .check = aam_config_check_url},
        {.key = "jwks_url",
         .type = AAM_CFG_STR,
         .offset = offsetof(struct aam_config_gateway, jwks_url),
         .check = aam_config_check_url},
        {.key = "issuer",
         .type = AAM_CFG_STR,
         .offset = offsetof(struct aam_config_gateway, issuer),
         .check = aam_config_check_url},
        {.key = "audience",
         .type = AAM_CFG_STR,
         .offset = offsetof(struct aam_config_gateway, audience)},
        {.key = "request_timeout",
         .type = AAM_CFG_DURATION,
         .offset = offsetof(struct aam_config_gateway, request_timeout_ms),
         .def = "10m",
         .min = 1000,
         .max = 60 * 60 * 1000},
        /* Revocations must reach cached tokens quickly, and tokens live 15 minutes at most. */
        {.key = "revocation_poll",
         .type = AAM_CFG_DURATION,
         .offset = offsetof(struct aam_config_gateway, revocation_poll_ms),
         .def = "5s",
         .min = 100,
         .max = 60 * 1000},
        {.key = "jwks_refresh",
         .type = AAM_CFG_DURATION,
         .offset = offsetof(struct aam_config_gateway, jwks_refresh_ms),
         .def = "30s",
         .min = 100,
         .max = 60 * 60 * 1000},
        {.key = "environment",
         .type = AAM_CFG_STR,
         .offset = offsetof(struct aam_config_gateway, environment)},
        {.key = "max_connections",
         .type = AAM_CFG_INT,
         .offset = offsetof(struct aam_config_gateway, max_connections),
         .def = "1024",
         .min = 1,
         .max = 65536},
};

/*
 * Derived defaults: the external URL from the listen address, the JWKS URL
 * and the issuer from aam-attest's URL, the audience from the external URL.
 */
static int
gateway_finish(void *sec, const struct aam_yaml_node *at, const char *file,
               struct aam_yaml_error *err)
{
	(void)at;
	struct aam_config_gateway *g = sec;
	char buf[AAM_CONFIG_HOST_MAX + 512];
	if (g->external_url == NULL && g->listen != NULL) {
		int n = snprintf(buf, sizeof(buf), "http://%s", g->listen);
		if (n < 0 || (size_t)n >= sizeof(buf) || set_str(&g->external_url, buf, (size_t)n))
			return nomem(err, file);
	}
	if (g->jwks_url == NULL && g->attest_url != NULL) {
		size_t l = strlen(g->attest_url);
		while (l > 0 && g->attest_url[l - 1] == '/')
			l--;
		int n = snprintf(buf, sizeof(buf), "%.*s/.well-known/jwks.json", (int)l,
		                 g->attest_url);
		if (n < 0 || (size_t)n >= sizeof(buf) || set_str(&g->jwks_url, buf, (size_t)n))
			return nomem(err, file);
	}
	if (g->issuer == NULL && g->attest_url != NULL &&
	    set_str(&g->issuer, g->attest_url, strlen(g->attest_url)) != AAM_OK)
		return nomem(err, file);
	if (g->audience == NULL && g->external_url != NULL &&
	    set_str(&g->audience, g->external_url, strlen(g->external_url)) != AAM_OK)
		return nomem(err, file);
	return AAM_OK;
}

/* agent.spiffe_id: a SPIFFE ID as the SPIFFE-ID specification says. */
static int
check_spiffe_id(const char *value, char *why, size_t whylen)
{
	struct aam_spiffe_id id;
	const char *reason = NULL;
	if (aam_spiffe_parse(value, strlen(value), &id, &reason) != AAM_OK) {
		snprintf(why, whylen, "%s", reason != NULL ? reason : "not a SPIFFE ID");
		return AAM_E_INVAL;
	}
	return AAM_OK;
}

/* The sidecar holds exactly one key, in a TPM or in a PKCS#11 token. */
static int
agent_finish(void *sec, const struct aam_yaml_node *at, const char *file,
             struct aam_yaml_error *err)
{
	struct aam_config_agent *a = sec;
	if (at != NULL && a->tcti != NULL && a->pkcs11_key != NULL)
		return fail(err, file, at, "agent", NULL,
		            "set tcti (a TPM) or pkcs11_key (a PKCS#11 key), not both");
	if (at != NULL && a->tcti == NULL && a->pkcs11_key == NULL)
		return fail(err, file, at, "agent", NULL,
		            "no key: set tcti (a TPM) or pkcs11_key (a PKCS#11 key)");
	if (a->audience == NULL && a->gateway_url != NULL &&
	    set_str(&a->audience, a->gateway_url, strlen(a->gateway_url)) != AAM_OK)
		return nomem(err, file);
	return AAM_OK;
}

static const struct aam_config_field agent_fields[] = {
        {.key = "listen",
         .type = AAM_CFG_STR,
         .offset = offsetof(struct aam_config_agent, listen),
         .def = "127.0.0.1:4002",
         .check = aam_config_check_listen},
        {.key = "attest_url",
         .type = AAM_CFG_STR,
         .offset = offsetof(struct aam_config_agent, attest_url),
         .def = "http://127.0.0.1:4001",
         .check = aam_config_check_url},
        {.key = "gateway_url",
         .type = AAM_CFG_STR,
         .offset = offsetof(struct aam_config_agent, gateway_url),
         .def = "http://127.0.0.1:4000",
         .check = aam_config_check_url},
        {.key = "tcti", .type = AAM_CFG_STR, .offset = offsetof(struct aam_config_agent, tcti)},
        {.key = "pkcs11_key",
         .type = AAM_CFG_STR,
         .offset = offsetof(struct aam_config_agent, pkcs11_key),
         .check = aam_config_check_pkcs11_uri},
        {.key = "audience",
         .type = AAM_CFG_STR,
         .offset = offsetof(struct aam_config_agent, audience)},
        /* Sent in every challenge; aam-agent refuses to attest without it. */
        {.key = "spiffe_id",
         .type = AAM_CFG_STR,
         .offset = offsetof(struct aam_config_agent, spiffe_id),
         .check = check_spiffe_id},
        /* The TPM key blobs, wrapped by the TPM: useless elsewhere, kept across restarts. */
        {.key = "state_dir",
         .type = AAM_CFG_PATH,
         .offset = offsetof(struct aam_config_agent, state_dir),
         .def = "/var/lib/aam/agent"},
        {.key = "pkcs11_module",
         .type = AAM_CFG_PATH,
         .offset = offsetof(struct aam_config_agent, pkcs11_module),
         .flags = AAM_CFG_F_NAME_OK},
        {.key = "pin_file",
         .type = AAM_CFG_PATH,
         .offset = offsetof(struct aam_config_agent, pin_file)},
        {.key = "ca_bundle",
         .type = AAM_CFG_PATH,
         .offset = offsetof(struct aam_config_agent, ca_bundle)},
        {.key = "max_body",
         .type = AAM_CFG_SIZE,
         .offset = offsetof(struct aam_config_agent, max_body),
         .def = "4MiB",
         .min = 1024,
         .max = 1024 * 1024 * 1024},
};

#define SECTION(var, nm, type, fin)                                                                \
	static const struct aam_config_section var##_section = {                                   \
	        .name = nm,                                                                        \
	        .fields = var##_fields,                                                            \
	        .nfields = sizeof(var##_fields) / sizeof(var##_fields[0]),                         \
	        .present_offset = offsetof(type, present),                                         \
	        .finish = fin,                                                                     \
	}

SECTION(log, "log", struct aam_config_log, NULL);
SECTION(vault, "vault", struct aam_config_vault, vault_finish);
SECTION(attest, "attest", struct aam_config_attest, NULL);
SECTION(gateway, "gateway", struct aam_config_gateway, gateway_finish);
SECTION(agent, "agent", struct aam_config_agent, agent_finish);

static const struct aam_config_field root_fields[] = {
        {.key = "log",
         .type = AAM_CFG_SECTION,
         .offset = offsetof(struct aam_config, log),
         .section = &log_section},
        {.key = "vault",
         .type = AAM_CFG_SECTION,
         .offset = offsetof(struct aam_config, vault),
         .section = &vault_section},
        {.key = "attest",
         .type = AAM_CFG_SECTION,
         .offset = offsetof(struct aam_config, attest),
         .section = &attest_section},
        {.key = "gateway",
         .type = AAM_CFG_SECTION,
         .offset = offsetof(struct aam_config, gateway),
         .section = &gateway_section},
        {.key = "agent",
         .type = AAM_CFG_SECTION,
         .offset = offsetof(struct aam_config, agent),
         .section = &agent_section},
};

static const struct aam_config_section root = {
        .name = "",
        .fields = root_fields,
        .nfields = sizeof(root_fields) / sizeof(root_fields[0]),
        .present_offset = AAM_CFG_NO_PRESENT,
};

const struct aam_config_section *
aam_config_schema(void)
{
	return &root;
}

/* ---- loading the file ---- */

/* A config file is small and written by an operator: tight limits cost nothing. */
static const struct aam_yaml_limits config_limits = {
        .max_bytes = 1024 * 1024,
        .max_depth = 16,
        .max_nodes = 20000,
        .max_scalar = 4096,
        .max_docs = 2,
};

static int
finish_load(const char *name, int rc, aam_yaml_stream *s, struct aam_yaml_error *err,
            struct aam_config *out, char *errbuf, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (rc == AAM_OK) {
		out->path = strdup(name);
		rc = out->path ? aam_config_section_defaults(&root, out) : AAM_E_NOMEM;
		if (rc == AAM_E_NOMEM)
			nomem(err, name);
		else if (rc != AAM_OK)
			aam_yaml_error_set(err, name, 0, 0, "internal error: bad default");
	}
	if (rc == AAM_OK && aam_yaml_stream_count(s) > 1)
		rc = fail(err, name, aam_yaml_stream_doc(s, 1), "", NULL,
		          "a configuration file holds a single YAML document");
	if (rc == AAM_OK)
		rc = aam_config_section_load(&root, NULL, aam_yaml_stream_doc(s, 0), name, out,
		                             err);
	aam_yaml_stream_free(s);
	if (rc != AAM_OK) {
		aam_config_uninit(out);
		aam_yaml_error_format(err, errbuf, errlen);
		if (rc != AAM_E_NOMEM && rc != AAM_E_NOTFOUND && rc != AAM_E_PERM && rc != AAM_E_IO)
			rc = AAM_E_CONFIG;
		return rc;
	}
	if (errbuf != NULL && errlen > 0)
		errbuf[0] = '\0';
	return AAM_OK;
}

int
aam_config_load(const char *path, struct aam_config *out, char *errbuf, size_t errlen)
{
	if (path == NULL || out == NULL)
		return AAM_E_INVAL;
	aam_yaml_stream *s = NULL;
	struct aam_yaml_error err;
	int rc = aam_yaml_parse_file(path, &config_limits, &s, &err);
	return finish_load(path, rc, s, &err, out, errbuf, errlen);
}

int
aam_config_load_buffer(const char *name, const void *data, size_t len, struct aam_config *out,
                       char *errbuf, size_t errlen)
{
	if (name == NULL || out == NULL)
		return AAM_E_INVAL;
	aam_yaml_stream *s = NULL;
	struct aam_yaml_error err;
	int rc = aam_yaml_parse(name, data, len, &config_limits, &s, &err);
	return finish_load(name, rc, s, &err, out, errbuf, errlen);
}

void
aam_config_uninit(struct aam_config *cfg)
{
	if (cfg == NULL)
		return;
	aam_config_section_uninit(&root, cfg);
	free(cfg->path);
	memset(cfg, 0, sizeof(*cfg));
}

int
aam_config_require(const struct aam_config *cfg, const char *section, char *errbuf, size_t errlen)
{
	const char *file = cfg && cfg->path ? cfg->path : "<config>";
	for (size_t i = 0; cfg != NULL && section != NULL && i < root.nfields; i++) {
		const struct aam_config_field *f = &root.fields[i];
		if (strcmp(f->key, section) != 0)
			continue;
		const char *base = (const char *)cfg + f->offset;
		if (*(const bool *)(base + f->section->present_offset))
			return AAM_OK;
		if (errbuf != NULL && errlen > 0)
			snprintf(errbuf, errlen, "%s: missing section '%s'", file, section);
		return AAM_E_CONFIG;
	}
	if (errbuf != NULL && errlen > 0)
		snprintf(errbuf, errlen, "%s: no such section '%s'", file, section ? section : "");
	return AAM_E_INVAL;
}
