/*
 * Helpers of the catalogue loader: strict scalar readers that report
 * file:line:column, name syntaxes, and string templates ("/accounts/{id}").
 */
#include "gateway/tools_load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aam/err.h"
#include "common/config.h"

int
gwt_ld_bad(struct gwt_ld *l, const struct aam_yaml_node *n, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (l->err != NULL)
		aam_yaml_error_at(l->err, l->file, n, "%s", msg);
	return AAM_E_CONFIG;
}

int
gwt_ld_keys_only(struct gwt_ld *l, const struct aam_yaml_node *map, const char *where,
                 const char *const *allowed)
{
	for (size_t i = 0; i < map->n; i++) {
		const char *k = map->keys[i]->str;
		bool ok = false;
		for (size_t j = 0; allowed[j] != NULL && !ok; j++)
			ok = strcmp(k, allowed[j]) == 0;
		if (!ok)
			return gwt_ld_bad(l, map->keys[i], "%s: unknown key '%.64s'", where, k);
	}
	return AAM_OK;
}

int
gwt_ld_want_map(struct gwt_ld *l, const struct aam_yaml_node *n, const char *where)
{
	if (n == NULL || n->type != AAM_YAML_MAP)
		return gwt_ld_bad(l, n, "%s: expected a mapping", where);
	return AAM_OK;
}

int
gwt_ld_get_str(struct gwt_ld *l, const struct aam_yaml_node *n, const char *where, const char **out)
{
	struct aam_yaml_error e;
	if (aam_yaml_get_str(n, l->file, out, &e) != AAM_OK)
		return gwt_ld_bad(l, n, "%s: %s", where, e.msg);
	if ((*out)[0] == '\0')
		return gwt_ld_bad(l, n, "%s: must not be empty", where);
	for (const char *p = *out; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return gwt_ld_bad(l, n, "%s: control characters are not allowed", where);
	return AAM_OK;
}

int
gwt_ld_get_int(struct gwt_ld *l, const struct aam_yaml_node *n, const char *where, int64_t min,
               int64_t max, int64_t *out)
{
	struct aam_yaml_error e;
	if (aam_yaml_get_int64(n, l->file, out, &e) != AAM_OK)
		return gwt_ld_bad(l, n, "%s: %s", where, e.msg);
	if (*out < min || *out > max)
		return gwt_ld_bad(l, n, "%s: must be between %lld and %lld", where, (long long)min,
		                  (long long)max);
	return AAM_OK;
}

int
gwt_ld_get_duration(struct gwt_ld *l, const struct aam_yaml_node *n, const char *where, int64_t *ms)
{
	const char *s;
	int rc = gwt_ld_get_str(l, n, where, &s);
	if (rc != AAM_OK)
		return rc;
	if (aam_config_parse_duration(s, ms) != AAM_OK || *ms < 100 || *ms > 3600000)
		return gwt_ld_bad(l, n, "%s: expected a duration between 100ms and 1h (\"30s\")",
		                  where);
	return AAM_OK;
}

int
gwt_ld_own_json(struct gwt_catalog *c, json_t *j)
{
	if (c->nowned == c->capowned) {
		size_t cap = c->capowned ? c->capowned * 2 : 16;
		json_t **p = realloc(c->owned, cap * sizeof(*p));
		if (p == NULL)
			return AAM_E_NOMEM;
		c->owned = p;
		c->capowned = cap;
	}
	c->owned[c->nowned++] = j;
	return AAM_OK;
}

/* ---- names ------------------------------------------------------------ */

bool
gwt_name_chars(const char *s, const char *extra, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (const char *p = s; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		          (ch >= '0' && ch <= '9') || (ch != 0 && strchr(extra, ch) != NULL);
		if (!ok)
			return false;
	}
	return true;
}

bool
gwt_resource_name_ok(const char *name)
{
	if (name == NULL || !gwt_name_chars(name, "._-", GWT_NAME_MAX - 1))
		return false;
	/* Dot-separated, no empty segment. */
	if (name[0] == '.' || name[strlen(name) - 1] == '.' || strstr(name, "..") != NULL)
		return false;
	return true;
}

bool
gwt_action_name_ok(const char *name)
{
	return name != NULL && gwt_name_chars(name, "._:-", GWT_NAME_MAX - 1);
}

bool
gwt_param_name_ok(const char *s, size_t len)
{
	if (len == 0 || len > 64)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		bool alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
		if (!alpha && !(i > 0 && ch >= '0' && ch <= '9'))
			return false;
	}
	return true;
}

bool
gwt_credential_name_ok(const char *s)
{
	return gwt_name_chars(s, "._-", 127);
}

bool
gwt_header_name_ok(const char *s)
{
	return gwt_name_chars(s, "!#$%&'*+-.^_`|~", 256);
}

/*
 * Headers a template may not set: the vault drops or owns them (the
 * credential's own header, framing, connection management), so allowing
 * them here would only hide a mistake.
 */
bool
gwt_header_forbidden(const char *name)
{
	static const char *const forbidden[] = {"authorization",
	                                        "proxy-authorization",
	                                        "host",
	                                        "content-length",
	                                        "transfer-encoding",
	                                        "connection",
	                                        "keep-alive",
	                                        "upgrade",
	                                        "te",
	                                        "trailer",
	                                        "expect",
	                                        "accept-encoding",
	                                        "cookie",
	                                        NULL};
	for (size_t i = 0; forbidden[i] != NULL; i++)
		if (strcasecmp(name, forbidden[i]) == 0)
			return true;
	return strncasecmp(name, "proxy-", 6) == 0;
}

/* ---- templates -------------------------------------------------------- */

long
gwt_param_find(const struct gwt_param *params, size_t n, const char *name, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(params[i].name) == len && memcmp(params[i].name, name, len) == 0)
			return (long)i;
	return -1;
}

int
gwt_tmpl_parse(struct pol_arena *a, const char *s, const struct gwt_param *params, size_t nparams,
               struct gwt_tmpl *out, char *why, size_t whylen)
{
	/* Count pieces first: at most 2 per '{' plus one. */
	size_t max = 1;
	for (const char *p = s; *p; p++)
		if (*p == '{')
			max += 2;
	out->segs = pol_alloc_array(a, max, sizeof(*out->segs));
	out->n = 0;
	if (out->segs == NULL)
		return AAM_E_NOMEM;
	const char *p = s;
	while (*p) {
		if (*p == '}') {
			snprintf(why, whylen, "'}' without '{' (braces only delimit placeholders)");
			return AAM_E_CONFIG;
		}
		if (*p != '{') {
			size_t n = strcspn(p, "{}");
			out->segs[out->n++] = (struct gwt_seg){.lit = p, .len = n};
			p += n;
			continue;
		}
		const char *end = strchr(p + 1, '}');
		const char *open = strchr(p + 1, '{');
		if (end == NULL || (open != NULL && open < end)) {
			snprintf(why, whylen, "unterminated placeholder (expected {name})");
			return AAM_E_CONFIG;
		}
		size_t len = (size_t)(end - p - 1);
		if (!gwt_param_name_ok(p + 1, len)) {
			snprintf(why, whylen, "placeholder '{%.*s}' is not a parameter name",
			         (int)(len > 64 ? 64 : len), p + 1);
			return AAM_E_CONFIG;
		}
		long idx = gwt_param_find(params, nparams, p + 1, len);
		if (idx < 0) {
			snprintf(why, whylen, "placeholder '{%.*s}' names no declared parameter",
			         (int)len, p + 1);
			return AAM_E_CONFIG;
		}
		out->segs[out->n++] = (struct gwt_seg){.lit = NULL, .param = (size_t)idx};
		p = end + 1;
	}
	return AAM_OK;
}

/* Whether the template is exactly one placeholder. */
bool
gwt_tmpl_is_single(const struct gwt_tmpl *t)
{
	return t->n == 1 && t->segs[0].lit == NULL;
}
