/*
 * Conditions: `when` on tool parameters and the time windows of
 * spec.conditions.time.  Both are parsed into small typed structs at load
 * so that evaluating them while deciding is a few comparisons on values
 * the request already holds: no parsing, no allocation.
 *
 * A condition on a parameter the request does not carry fails (except
 * `absent`), and so does a parameter of the wrong type: a condition is an
 * allow's precondition, so anything unexpected must close, not open.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "aam/err.h"
#include "gateway/policy_internal.h"

#define MAX_CONDS     64
#define MAX_SET       1024
#define MAX_PARAM_LEN 128

static const char *const k_ops[] = {"equals", "in",    "not_in",  "min",    "max", "max_length",
                                    "prefix", "regex", "present", "absent", NULL};

const char *
pol_op_name(enum pol_op op)
{
	if (op >= POL_OP_EQUALS && op <= POL_OP_ABSENT)
		return k_ops[op - 1];
	return "?";
}

/* A scalar operand: string, integer, float or boolean (never null). */
static bool
read_scalar(struct pol_ld *l, const struct aam_yaml_node *n, const char *path,
            struct pol_scalar *out)
{
	struct aam_yaml_error e;
	memset(out, 0, sizeof(*out));
	switch (n ? aam_yaml_kind(n) : AAM_YAML_K_NULL) {
	case AAM_YAML_K_STR:
		out->t = POL_S_STR;
		out->s = pol_strndup(l->a, n->str, n->len);
		out->len = n->len;
		if (out->s == NULL)
			l->nomem = true;
		return out->s != NULL;
	case AAM_YAML_K_INT:
		out->t = POL_S_INT;
		if (aam_yaml_get_int64(n, l->file, &out->i, &e) != AAM_OK)
			break;
		out->d = (double)out->i;
		return true;
	case AAM_YAML_K_FLOAT:
		out->t = POL_S_REAL;
		if (aam_yaml_get_double(n, l->file, &out->d, &e) != AAM_OK || !isfinite(out->d))
			break;
		return true;
	case AAM_YAML_K_BOOL:
		out->t = POL_S_BOOL;
		if (aam_yaml_get_bool(n, l->file, &out->b, &e) != AAM_OK)
			break;
		return true;
	default:
		break;
	}
	pol_ld_err(l, n, "%s: expected a string, number or boolean, got %s", path, pol_ld_kind(n));
	return false;
}

static bool
read_number(struct pol_ld *l, const struct aam_yaml_node *n, const char *path,
            struct pol_scalar *out)
{
	enum aam_yaml_kind k = n ? aam_yaml_kind(n) : AAM_YAML_K_NULL;
	if (k != AAM_YAML_K_INT && k != AAM_YAML_K_FLOAT) {
		pol_ld_err(l, n, "%s: expected a number, got %s", path, pol_ld_kind(n));
		return false;
	}
	if (!read_scalar(l, n, path, out))
		return false;
	return true;
}

static bool
scalar_equal(const struct pol_scalar *a, const struct pol_scalar *b)
{
	if (a->t != b->t)
		return false;
	switch (a->t) {
	case POL_S_STR:
		return a->len == b->len && memcmp(a->s, b->s, a->len) == 0;
	case POL_S_INT:
		return a->i == b->i;
	case POL_S_REAL:
		return a->d == b->d;
	case POL_S_BOOL:
		return a->b == b->b;
	}
	return false;
}

static bool
parse_op(struct pol_ld *l, const struct aam_yaml_node *k, const struct aam_yaml_node *v,
         const char *ppath, const char *param, struct pol_cond *c)
{
	char path[POL_PATH_LEN];
	pol_pathf(path, "%s.%s", ppath, k->str);
	size_t op = 0;
	while (k_ops[op] != NULL && strcmp(k_ops[op], k->str) != 0)
		op++;
	c->op = (enum pol_op)(op + 1);
	c->param = param;
	c->pos = pol_ld_pos(l, k);
	c->field = pol_printf(l->a, "%s", path);
	if (c->field == NULL) {
		l->nomem = true;
		return false;
	}
	switch (c->op) {
	case POL_OP_EQUALS:
		return read_scalar(l, v, path, &c->v);
	case POL_OP_IN:
	case POL_OP_NOT_IN:
		if (v->type != AAM_YAML_SEQ) {
			pol_ld_err(l, v, "%s: expected a list of values, got %s", path,
			           pol_ld_kind(v));
			return false;
		}
		if (v->n == 0 || v->n > MAX_SET) {
			pol_ld_err(l, v, "%s: must list between 1 and %d values", path, MAX_SET);
			return false;
		}
		c->set = pol_alloc_array(l->a, v->n, sizeof(*c->set));
		if (c->set == NULL) {
			l->nomem = true;
			return false;
		}
		for (size_t i = 0; i < v->n; i++) {
			char ip[POL_PATH_LEN];
			pol_pathf(ip, "%s[%zu]", path, i);
			if (!read_scalar(l, v->items[i], ip, &c->set[c->nset]))
				return false;
			for (size_t j = 0; j < c->nset; j++) {
				if (scalar_equal(&c->set[j], &c->set[c->nset])) {
					pol_ld_err(l, v->items[i], "%s: duplicate value", ip);
					return false;
				}
			}
			c->nset++;
		}
		return true;
	case POL_OP_MIN:
	case POL_OP_MAX:
		return read_number(l, v, path, &c->v);
	case POL_OP_MAX_LENGTH: {
		struct aam_yaml_error e;
		if (aam_yaml_kind(v) != AAM_YAML_K_INT ||
		    aam_yaml_get_int64(v, l->file, &c->v.i, &e) != AAM_OK) {
			pol_ld_err(l, v, "%s: expected an integer, got %s", path, pol_ld_kind(v));
			return false;
		}
		if (c->v.i < 0 || c->v.i > 1000000000) {
			pol_ld_err(l, v, "%s: must be an integer from 0 to 10^9", path);
			return false;
		}
		c->v.t = POL_S_INT;
		return true;
	}
	case POL_OP_PREFIX:
	case POL_OP_REGEX: {
		if (aam_yaml_kind(v) != AAM_YAML_K_STR) {
			pol_ld_err(l, v, "%s: expected a string, got %s", path, pol_ld_kind(v));
			return false;
		}
		if (c->op == POL_OP_PREFIX && v->len == 0) {
			pol_ld_err(l, v, "%s: must not be empty", path);
			return false;
		}
		if (!read_scalar(l, v, path, &c->v))
			return false;
		if (c->op == POL_OP_PREFIX)
			return true;
		char why[160];
		int rc = pol_regex_compile(l->a, v->str, v->len, &c->re, why, sizeof(why));
		if (rc == AAM_E_NOMEM) {
			l->nomem = true;
			return false;
		}
		if (rc != AAM_OK) {
			pol_ld_err(l, v, "%s: invalid regex: %s", path, why);
			return false;
		}
		return true;
	}
	case POL_OP_PRESENT:
	case POL_OP_ABSENT: {
		struct aam_yaml_error e;
		bool b = false;
		if (aam_yaml_kind(v) != AAM_YAML_K_BOOL ||
		    aam_yaml_get_bool(v, l->file, &b, &e) != AAM_OK || !b) {
			pol_ld_err(l, v, "%s: must be true (write %s: true for the opposite)", path,
			           c->op == POL_OP_PRESENT ? "absent" : "present");
			return false;
		}
		return true;
	}
	}
	return false;
}

bool
pol_parse_when(struct pol_ld *l, const struct aam_yaml_node *n, const char *path,
               struct pol_tool *t)
{
	if (n->type != AAM_YAML_MAP) {
		pol_ld_err(l, n, "%s: expected a mapping of parameter names to conditions, got %s",
		           path, pol_ld_kind(n));
		return false;
	}
	if (n->n == 0) {
		pol_ld_err(l, n, "%s: must not be empty", path);
		return false;
	}
	size_t total = 0;
	for (size_t i = 0; i < n->n; i++)
		if (n->items[i]->type == AAM_YAML_MAP)
			total += n->items[i]->n;
	if (total > MAX_CONDS) {
		pol_ld_err(l, n, "%s: more than %d conditions", path, MAX_CONDS);
		return false;
	}
	t->conds = pol_alloc_array(l->a, total ? total : 1, sizeof(*t->conds));
	if (t->conds == NULL) {
		l->nomem = true;
		return false;
	}
	bool ok = true;
	for (size_t i = 0; i < n->n; i++) {
		const struct aam_yaml_node *k = n->keys[i], *ops = n->items[i];
		char ppath[POL_PATH_LEN];
		pol_pathf(ppath, "%s.%.64s", path, k->str);
		const char *why =
		        k->len == 0 ? "must not be empty" : pol_check_param(k->str, k->len);
		if (why != NULL) {
			pol_ld_err(l, k, "%s: parameter name '%.64s' %s", path, k->str, why);
			ok = false;
			continue;
		}
		if (!pol_ld_map_noun(l, ops, ppath, k_ops, "operator")) {
			ok = false;
			continue;
		}
		if (ops->n == 0) {
			pol_ld_err(l, ops, "%s: must not be empty", ppath);
			ok = false;
			continue;
		}
		const char *param = pol_strndup(l->a, k->str, k->len);
		if (param == NULL) {
			l->nomem = true;
			return false;
		}
		struct pol_cond *first = &t->conds[t->nconds];
		size_t nfirst = t->nconds;
		for (size_t j = 0; j < ops->n; j++) {
			const struct aam_yaml_node *opk = ops->keys[j];
			bool known = false;
			for (size_t m = 0; k_ops[m]; m++)
				known |= strcmp(k_ops[m], opk->str) == 0;
			if (!known) {
				ok = false; /* already reported by pol_ld_map */
				continue;
			}
			struct pol_cond *c = &t->conds[t->nconds];
			if (!parse_op(l, opk, ops->items[j], ppath, param, c)) {
				ok = false;
				continue;
			}
			/* Split the dotted path once, here, not per decision. */
			const char *p = param;
			while (c->nsegs < POL_PARAM_MAX_SEGS) {
				const char *dot = strchr(p, '.');
				size_t len = dot ? (size_t)(dot - p) : strlen(p);
				c->segs[c->nsegs] = pol_strndup(l->a, p, len);
				if (c->segs[c->nsegs] == NULL) {
					l->nomem = true;
					return false;
				}
				c->nsegs++;
				if (dot == NULL)
					break;
				p = dot + 1;
			}
			t->nconds++;
		}
		/* Contradictions that would make the rule unusable are errors. */
		const struct pol_cond *mn = NULL, *mx = NULL, *ab = NULL;
		for (size_t j = nfirst; j < t->nconds; j++) {
			const struct pol_cond *c = &first[j - nfirst];
			if (c->op == POL_OP_MIN)
				mn = c;
			if (c->op == POL_OP_MAX)
				mx = c;
			if (c->op == POL_OP_ABSENT)
				ab = c;
		}
		if (mn && mx && mn->v.d > mx->v.d) {
			pol_diag_add(l->diag, l->file, mn->pos.line, mn->pos.col,
			             "%s: min is greater than max, so nothing can match", ppath);
			ok = false;
		}
		if (ab && t->nconds - nfirst > 1) {
			pol_diag_add(
			        l->diag, l->file, ab->pos.line, ab->pos.col,
			        "%s: absent cannot be combined with other conditions on the same "
			        "parameter",
			        ppath);
			ok = false;
		}
	}
	return ok;
}

/* ---- evaluation ------------------------------------------------------ */

static const json_t *
param_lookup(const struct pol_cond *c, const json_t *params)
{
	const json_t *v = params;
	for (size_t i = 0; i < c->nsegs; i++) {
		if (v == NULL || !json_is_object(v))
			return NULL;
		v = json_object_get(v, c->segs[i]);
	}
	return v;
}

static bool
json_equals(const struct pol_scalar *s, const json_t *v)
{
	switch (s->t) {
	case POL_S_STR:
		return json_is_string(v) && json_string_length(v) == s->len &&
		       memcmp(json_string_value(v), s->s, s->len) == 0;
	case POL_S_INT:
		if (json_is_integer(v))
			return json_integer_value(v) == s->i;
		return json_is_real(v) && json_real_value(v) == s->d;
	case POL_S_REAL:
		return json_is_number(v) && json_number_value(v) == s->d;
	case POL_S_BOOL:
		return json_is_boolean(v) && json_is_true(v) == s->b;
	}
	return false;
}

/* -1, 0, 1 as V compares to bound S; *ok false when V is not a number. */
static int
num_cmp(const json_t *v, const struct pol_scalar *s, bool *ok)
{
	*ok = json_is_number(v);
	if (!*ok)
		return 0;
	if (json_is_integer(v) && s->t == POL_S_INT) {
		json_int_t a = json_integer_value(v);
		return a < s->i ? -1 : a > s->i;
	}
	double a = json_number_value(v);
	if (isnan(a)) {
		*ok = false;
		return 0;
	}
	return a < s->d ? -1 : a > s->d;
}

static size_t
utf8_chars(const char *s, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		n += ((unsigned char)s[i] & 0xc0) != 0x80;
	return n;
}

bool
pol_cond_eval(const struct pol_cond *c, const json_t *params)
{
	const json_t *v = param_lookup(c, params);
	bool present = v != NULL && !json_is_null(v);
	bool ok;
	switch (c->op) {
	case POL_OP_PRESENT:
		return present;
	case POL_OP_ABSENT:
		return !present;
	case POL_OP_EQUALS:
		return present && json_equals(&c->v, v);
	case POL_OP_IN:
	case POL_OP_NOT_IN: {
		if (!present || json_is_object(v) || json_is_array(v))
			return false;
		bool found = false;
		for (size_t i = 0; i < c->nset && !found; i++)
			found = json_equals(&c->set[i], v);
		return c->op == POL_OP_IN ? found : !found;
	}
	case POL_OP_MIN:
		return present && num_cmp(v, &c->v, &ok) >= 0 && ok;
	case POL_OP_MAX:
		return present && num_cmp(v, &c->v, &ok) <= 0 && ok;
	case POL_OP_MAX_LENGTH:
		if (json_is_string(v))
			return (int64_t)utf8_chars(json_string_value(v), json_string_length(v)) <=
			       c->v.i;
		if (json_is_array(v))
			return (int64_t)json_array_size(v) <= c->v.i;
		return false;
	case POL_OP_PREFIX:
		return json_is_string(v) && json_string_length(v) >= c->v.len &&
		       memcmp(json_string_value(v), c->v.s, c->v.len) == 0;
	case POL_OP_REGEX:
		return json_is_string(v) &&
		       pol_regex_match(c->re, json_string_value(v), json_string_length(v));
	}
	return false;
}

/* ---- time windows ----------------------------------------------------- */

static const char *const day_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};
static const char *const k_window[] = {"days", "hours", NULL};

static int
day_index(const char *s, size_t len)
{
	for (int i = 0; i < 7; i++)
		if (len == 3 && memcmp(s, day_names[i], 3) == 0)
			return i;
	return -1;
}

static bool
parse_days(struct pol_ld *l, const struct aam_yaml_node *n, const char *path, uint8_t *out)
{
	const struct aam_yaml_node *one = n;
	const struct aam_yaml_node *const *items = &one;
	size_t count = 1;
	if (n->type == AAM_YAML_SEQ) {
		items = (const struct aam_yaml_node *const *)n->items;
		count = n->n;
		if (count == 0) {
			pol_ld_err(l, n, "%s: must not be empty", path);
			return false;
		}
	}
	*out = 0;
	for (size_t i = 0; i < count; i++) {
		const struct aam_yaml_node *it = items[i];
		if (aam_yaml_kind(it) != AAM_YAML_K_STR) {
			pol_ld_err(l, it,
			           "%s: expected a day name (mon..sun) or range (mon-fri), got %s",
			           path, pol_ld_kind(it));
			return false;
		}
		int a = -1, b = -1;
		if (it->len == 3) {
			a = b = day_index(it->str, 3);
		} else if (it->len == 7 && it->str[3] == '-') {
			a = day_index(it->str, 3);
			b = day_index(it->str + 4, 3);
		}
		if (a < 0 || b < 0) {
			pol_ld_err(l, it,
			           "%s: '%.16s' is not a day (mon, tue, wed, thu, fri, sat, sun) "
			           "or a range such as mon-fri",
			           path, it->str);
			return false;
		}
		for (int d = a;; d = (d + 1) % 7) {
			*out = (uint8_t)(*out | (1u << d));
			if (d == b)
				break;
		}
	}
	return true;
}

static bool
hhmm(const char *s, int *out)
{
	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' || s[2] != ':' || s[3] < '0' ||
	    s[3] > '9' || s[4] < '0' || s[4] > '9')
		return false;
	int h = (s[0] - '0') * 10 + (s[1] - '0');
	int m = (s[3] - '0') * 10 + (s[4] - '0');
	if (m > 59 || h > 24 || (h == 24 && m != 0))
		return false;
	*out = h * 60 + m;
	return true;
}

static bool
parse_window(struct pol_ld *l, const struct aam_yaml_node *n, const char *path,
             struct pol_window *w)
{
	w->pos = pol_ld_pos(l, n);
	if (!pol_ld_map(l, n, path, k_window))
		return false;
	const struct aam_yaml_node *days = aam_yaml_map_get(n, "days");
	const struct aam_yaml_node *hours = aam_yaml_map_get(n, "hours");
	if (days == NULL && hours == NULL) {
		pol_ld_err(l, n, "%s: needs days or hours", path);
		return false;
	}
	char sp[POL_PATH_LEN];
	w->days = 0x7f;
	if (days != NULL) {
		pol_pathf(sp, "%s.days", path);
		if (!parse_days(l, days, sp, &w->days))
			return false;
	}
	if (hours != NULL) {
		pol_pathf(sp, "%s.hours", path);
		if (aam_yaml_kind(hours) != AAM_YAML_K_STR || hours->len != 11 ||
		    hours->str[5] != '-' || !hhmm(hours->str, &w->start) ||
		    !hhmm(hours->str + 6, &w->end) || w->start == w->end || w->start == 1440) {
			pol_ld_err(l, hours,
			           "%s: expected \"HH:MM-HH:MM\" in UTC, such as "
			           "\"09:00-17:30\"",
			           sp);
			return false;
		}
		if (w->end == 1440)
			w->end = 0; /* "..-24:00" ends at midnight */
		w->has_hours = true;
		w->hours_src = pol_strndup(l->a, hours->str, hours->len);
		if (w->hours_src == NULL)
			l->nomem = true;
	}
	return true;
}

bool
pol_parse_windows(struct pol_ld *l, const struct aam_yaml_node *n, const char *path,
                  struct gw_pol *p)
{
	size_t count = n->type == AAM_YAML_SEQ ? n->n : 1;
	if (n->type == AAM_YAML_SEQ && count == 0) {
		pol_ld_err(l, n, "%s: must not be empty", path);
		return false;
	}
	if (count > 64) {
		pol_ld_err(l, n, "%s: more than 64 windows", path);
		return false;
	}
	p->windows = pol_alloc_array(l->a, count, sizeof(*p->windows));
	if (p->windows == NULL) {
		l->nomem = true;
		return false;
	}
	bool ok = true;
	for (size_t i = 0; i < count; i++) {
		char wp[POL_PATH_LEN];
		const struct aam_yaml_node *w = n;
		if (n->type == AAM_YAML_SEQ) {
			w = n->items[i];
			pol_pathf(wp, "%s[%zu]", path, i);
		} else {
			pol_pathf(wp, "%s", path);
		}
		if (parse_window(l, w, wp, &p->windows[p->nwindows]))
			p->nwindows++;
		else
			ok = false;
	}
	return ok;
}

bool
pol_windows_hold(const struct gw_pol *p, int64_t now)
{
	int64_t days = now / 86400;
	int64_t secs = now % 86400;
	if (secs < 0) {
		secs += 86400;
		days--;
	}
	int dow = (int)(((days + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
	int minute = (int)(secs / 60);
	for (size_t i = 0; i < p->nwindows; i++) {
		const struct pol_window *w = &p->windows[i];
		if (!(w->days & (1u << dow)))
			continue;
		if (!w->has_hours)
			return true;
		bool in = w->start < w->end || w->end == 0
		                  ? (minute >= w->start && (w->end == 0 || minute < w->end))
		                  : (minute >= w->start || minute < w->end);
		if (in)
			return true;
	}
	return false;
}
