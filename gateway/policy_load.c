/*
 * Loader primitives for the AgentPolicy schema (policy_schema.c): typed
 * readers, name syntax, lists and errors with positions.
 *
 * The loader is strict on purpose (DESIGN.md invariant 5): an unknown key
 * is usually a typo, and a typo in a deny list that silently denies
 * nothing is the worst kind of policy bug.  So every key is checked
 * against the keys its section allows, every value against its type and
 * syntax, lists that must say something must not be empty, and each
 * problem is reported at its own file:line:column.  Parsing goes on after
 * an error so one run shows them all.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "gateway/policy_internal.h"

/* ---- error helpers ----------------------------------------------------- */

void
pol_ld_err(struct pol_ld *l, const struct aam_yaml_node *n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	pol_diag_vadd(l->diag, l->file, n ? n->line : 0, n ? n->col : 0, fmt, ap);
	va_end(ap);
}

struct pol_pos
pol_ld_pos(const struct pol_ld *l, const struct aam_yaml_node *n)
{
	struct pol_pos p = {.file = l->file, .line = n ? n->line : 0, .col = n ? n->col : 0};
	return p;
}

const char *
pol_ld_kind(const struct aam_yaml_node *n)
{
	return aam_yaml_kind_name(aam_yaml_kind(n));
}

static size_t
edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 32 || lb > 32)
		return 99;
	size_t row[33];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* The allowed word closest to WORD, if it is close enough to be a typo. */
const char *
pol_ld_suggest(const char *word, const char *const *allowed)
{
	const char *best = NULL;
	size_t bestd = 3;
	for (size_t i = 0; allowed[i] != NULL; i++) {
		size_t d = edit_distance(word, allowed[i]);
		if (d < bestd) {
			bestd = d;
			best = allowed[i];
		}
	}
	return best;
}

void
pol_ld_join(char *out, size_t outlen, const char *const *words)
{
	size_t len = 0;
	out[0] = '\0';
	for (size_t i = 0; words[i] != NULL && len < outlen; i++) {
		int n = snprintf(out + len, outlen - len, "%s%s", i ? ", " : "", words[i]);
		if (n < 0)
			break;
		len += (size_t)n;
	}
}

bool
pol_ld_map(struct pol_ld *l, const struct aam_yaml_node *n, const char *path,
           const char *const *allowed)
{
	return pol_ld_map_noun(l, n, path, allowed, "key");
}

bool
pol_ld_map_noun(struct pol_ld *l, const struct aam_yaml_node *n, const char *path,
                const char *const *allowed, const char *noun)
{
	if (n == NULL || n->type != AAM_YAML_MAP) {
		pol_ld_err(l, n, "%s: expected a mapping, got %s", path, pol_ld_kind(n));
		return false;
	}
	for (size_t i = 0; i < n->n; i++) {
		const char *k = n->keys[i]->str;
		bool ok = false;
		for (size_t j = 0; allowed[j] != NULL; j++)
			if (strcmp(k, allowed[j]) == 0)
				ok = true;
		if (ok)
			continue;
		const char *s = pol_ld_suggest(k, allowed);
		if (s != NULL) {
			pol_ld_err(l, n->keys[i], "%s: unknown key '%.64s' (did you mean '%s'?)",
			           path, k, s);
		} else {
			char words[160];
			pol_ld_join(words, sizeof(words), allowed);
			pol_ld_err(l, n->keys[i], "%s: unknown %s '%.64s' (allowed: %s)", path,
			           noun, k, words);
		}
	}
	return true;
}

void
pol_ld_subpath(char *out, const char *path, const char *key)
{
	pol_pathf(out, "%s.%s", path, key);
}

void
pol_ld_missing(struct pol_ld *l, const struct aam_yaml_node *map, const char *path, const char *key)
{
	pol_ld_err(l, map, "%s: missing required key '%s'", path, key);
}

/* ---- scalar readers ---------------------------------------------------- */

static bool
is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Reads a non-empty string of at most MAXLEN bytes with no control bytes. */
const char *
pol_ld_str(struct pol_ld *l, const struct aam_yaml_node *n, const char *path, size_t maxlen,
           size_t *lenp)
{
	if (n == NULL || aam_yaml_kind(n) != AAM_YAML_K_STR) {
		pol_ld_err(l, n, "%s: expected a string, got %s", path, pol_ld_kind(n));
		return NULL;
	}
	if (n->len == 0) {
		pol_ld_err(l, n, "%s: must not be empty", path);
		return NULL;
	}
	if (n->len > maxlen) {
		pol_ld_err(l, n, "%s: longer than %zu bytes", path, maxlen);
		return NULL;
	}
	for (size_t i = 0; i < n->len; i++) {
		if ((unsigned char)n->str[i] < 0x20 || n->str[i] == 0x7f) {
			pol_ld_err(l, n, "%s: contains a control character", path);
			return NULL;
		}
	}
	char *s = pol_strndup(l->a, n->str, n->len);
	if (s == NULL)
		l->nomem = true;
	if (lenp != NULL)
		*lenp = n->len;
	return s;
}

bool
pol_ld_bool(struct pol_ld *l, const struct aam_yaml_node *n, const char *path, bool *out)
{
	struct aam_yaml_error e;
	if (n == NULL || aam_yaml_kind(n) != AAM_YAML_K_BOOL ||
	    aam_yaml_get_bool(n, l->file, out, &e) != AAM_OK) {
		pol_ld_err(l, n, "%s: expected true or false, got %s", path, pol_ld_kind(n));
		return false;
	}
	return true;
}

/* A positive integer up to 10^12 (rates, token counts). */
bool
pol_ld_count(struct pol_ld *l, const struct aam_yaml_node *n, const char *path, int64_t *out)
{
	struct aam_yaml_error e;
	int64_t v;
	if (n == NULL || aam_yaml_kind(n) != AAM_YAML_K_INT ||
	    aam_yaml_get_int64(n, l->file, &v, &e) != AAM_OK) {
		pol_ld_err(l, n, "%s: expected a positive integer, got %s", path, pol_ld_kind(n));
		return false;
	}
	if (v <= 0 || v > 1000000000000ll) {
		pol_ld_err(l, n, "%s: must be a positive integer no larger than 10^12", path);
		return false;
	}
	*out = v;
	return true;
}

/* A finite amount of money, zero or more. */
bool
pol_ld_money(struct pol_ld *l, const struct aam_yaml_node *n, const char *path, double *out)
{
	struct aam_yaml_error e;
	enum aam_yaml_kind k = n ? aam_yaml_kind(n) : AAM_YAML_K_NULL;
	double v;
	if ((k != AAM_YAML_K_INT && k != AAM_YAML_K_FLOAT) ||
	    aam_yaml_get_double(n, l->file, &v, &e) != AAM_OK) {
		pol_ld_err(l, n, "%s: expected a number of US dollars, got %s", path,
		           pol_ld_kind(n));
		return false;
	}
	if (!isfinite(v)) {
		pol_ld_err(l, n, "%s: must be a finite number", path);
		return false;
	}
	if (v < 0) {
		pol_ld_err(l, n, "%s: must not be negative", path);
		return false;
	}
	if (v > 1e12) {
		pol_ld_err(l, n, "%s: larger than 10^12", path);
		return false;
	}
	*out = v;
	return true;
}

/* ---- name syntax -------------------------------------------------------- */

const char *
pol_check_policy_name(const char *s, size_t len)
{
	if (len > 253)
		return "is longer than 253 characters";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
		if (!ok)
			return "may contain only lowercase letters, digits, '-' and '.'";
	}
	if (!is_alnum((unsigned char)s[0]) || !is_alnum((unsigned char)s[len - 1]))
		return "must start and end with a lowercase letter or digit";
	return NULL;
}

const char *
pol_check_route(const char *s, size_t len)
{
	if (len > 128)
		return "is longer than 128 characters";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!is_alnum(c) && strchr("._:/@+-", c) == NULL)
			return "may contain only letters, digits and . _ : / @ + -";
	}
	return NULL;
}

const char *
pol_check_token(const char *s, size_t len)
{
	if (len > 128)
		return "is longer than 128 characters";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!is_alnum(c) && strchr("._:-", c) == NULL)
			return "may contain only letters, digits and . _ : -";
	}
	return NULL;
}

const char *
pol_check_credential(const char *s, size_t len)
{
	if (len > 128)
		return "is longer than 128 characters";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!is_alnum(c) && strchr("._:/-", c) == NULL)
			return "may contain only letters, digits and . _ : / -";
	}
	return NULL;
}

const char *
pol_check_selector(const char *s, size_t len)
{
	if (len > 256)
		return "is longer than 256 characters";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c == 0x7f)
			return "may not contain spaces or control characters";
	}
	return NULL;
}

/* Dot-separated segments of letters, digits, '_' and '-'. */
static const char *
check_dotted(const char *s, size_t len, size_t maxsegs)
{
	size_t segs = 1, seglen = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (seglen == 0)
				return "has an empty segment (segments are separated by a single "
				       "'.')";
			segs++;
			seglen = 0;
			continue;
		}
		if (!is_alnum(c) && c != '_' && c != '-')
			return "may contain only letters, digits, '_', '-' and '.' between "
			       "segments";
		seglen++;
	}
	if (seglen == 0)
		return "has an empty segment (segments are separated by a single '.')";
	if (segs > maxsegs)
		return "has too many segments";
	return NULL;
}

const char *
pol_check_resource_base(const char *s, size_t len)
{
	if (len > 256)
		return "is longer than 256 characters";
	return check_dotted(s, len, 32);
}

const char *
pol_check_param(const char *s, size_t len)
{
	if (len > 128)
		return "is longer than 128 characters";
	return check_dotted(s, len, POL_PARAM_MAX_SEGS);
}

/* ---- lists -------------------------------------------------------------- */

/*
 * Reads a list of names checked by CHECK into OUT.  Empty lists, repeated
 * entries and a "*" next to other entries are errors: each of them hides
 * what the author meant.
 */
bool
pol_ld_list(struct pol_ld *l, const struct aam_yaml_node *n, const char *path, int flags,
            pol_name_check_fn check, size_t maxlen, struct pol_list *out)
{
	memset(out, 0, sizeof(*out));
	const struct aam_yaml_node *const *items;
	const struct aam_yaml_node *one = n;
	size_t count;
	if (n != NULL && n->type == AAM_YAML_SEQ) {
		items = (const struct aam_yaml_node *const *)n->items;
		count = n->n;
		if (count == 0) {
			pol_ld_err(l, n, "%s: must not be empty", path);
			return false;
		}
	} else if ((flags & POL_LIST_SINGLE) && n != NULL && aam_yaml_kind(n) == AAM_YAML_K_STR) {
		items = &one;
		count = 1;
	} else {
		pol_ld_err(l, n, "%s: expected a list%s, got %s", path,
		           (flags & POL_LIST_SINGLE) ? " or a single string" : "", pol_ld_kind(n));
		return false;
	}
	out->v = pol_alloc_array(l->a, count, sizeof(*out->v));
	if (out->v == NULL) {
		l->nomem = true;
		return false;
	}
	bool ok = true;
	for (size_t i = 0; i < count; i++) {
		const struct aam_yaml_node *it = items[i];
		char ipath[POL_PATH_LEN];
		if (n->type == AAM_YAML_SEQ)
			pol_pathf(ipath, "%s[%zu]", path, i);
		else
			pol_pathf(ipath, "%s", path);
		size_t len = 0;
		const char *s = pol_ld_str(l, it, ipath, maxlen, &len);
		if (s == NULL) {
			ok = false;
			continue;
		}
		if (strcmp(s, "*") == 0) {
			if (!(flags & POL_LIST_STAR)) {
				pol_ld_err(l, it, "%s: '*' is not allowed here", ipath);
				ok = false;
				continue;
			}
			if (count != 1) {
				pol_ld_err(l, it, "%s: '*' must be the only entry of its list",
				           ipath);
				ok = false;
				continue;
			}
			out->all = true;
			out->all_index = out->n;
		} else if (check != NULL) {
			const char *why = check(s, len);
			if (why != NULL) {
				pol_ld_err(l, it, "%s: '%.64s' %s", ipath, s, why);
				ok = false;
				continue;
			}
		}
		if (pol_list_find(out, s) >= 0) {
			pol_ld_err(l, it, "%s: duplicate entry '%.64s'", ipath, s);
			ok = false;
			continue;
		}
		out->v[out->n++] = (struct pol_str){.s = s, .len = len, .pos = pol_ld_pos(l, it)};
	}
	return ok;
}
