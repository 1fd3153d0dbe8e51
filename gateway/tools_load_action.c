/*
 * Catalogue actions: the parameter schema and the request template
 * (method, path, query, headers, body) of one action, checked together so
 * every placeholder names a declared parameter and every parameter is
 * used.
 */
#include "gateway/tools_load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aam/err.h"

/* ---- parameters ------------------------------------------------------- */

static int
parse_type(struct gwt_ld *l, const struct aam_yaml_node *n, const char *where, bool scalar_only,
           enum gwt_type *out)
{
	const char *s;
	int rc = gwt_ld_get_str(l, n, where, &s);
	if (rc != AAM_OK)
		return rc;
	static const char *const names[] = {"string", "integer", "number", "boolean", "array"};
	for (size_t i = 0; i < 5; i++)
		if (strcmp(s, names[i]) == 0) {
			if (scalar_only && i == 4)
				break;
			*out = (enum gwt_type)(i + 1);
			return AAM_OK;
		}
	return gwt_ld_bad(l, n, "%s: expected %s", where,
	                  scalar_only ? "string, integer, number or boolean"
	                              : "string, integer, number, boolean or array");
}

static int
parse_num(struct gwt_ld *l, const struct aam_yaml_node *n, const char *where, struct gwt_num *out)
{
	enum aam_yaml_kind k = aam_yaml_kind(n);
	struct aam_yaml_error e;
	if (k == AAM_YAML_K_INT) {
		if (aam_yaml_get_int64(n, l->file, &out->i, &e) != AAM_OK)
			return gwt_ld_bad(l, n, "%s: %s", where, e.msg);
		out->is_int = true;
		out->d = (double)out->i;
	} else if (k == AAM_YAML_K_FLOAT) {
		if (aam_yaml_get_double(n, l->file, &out->d, &e) != AAM_OK)
			return gwt_ld_bad(l, n, "%s: %s", where, e.msg);
		if (out->d != out->d || out->d > 1e308 || out->d < -1e308)
			return gwt_ld_bad(l, n, "%s: must be a finite number", where);
	} else {
		return gwt_ld_bad(l, n, "%s: expected a number", where);
	}
	out->set = true;
	return AAM_OK;
}

/* Whether the enum value V suits TYPE. */
static bool
enum_value_ok(const json_t *v, enum gwt_type t)
{
	switch (t) {
	case GWT_STRING:
		return json_is_string(v);
	case GWT_INTEGER:
		return json_is_integer(v);
	case GWT_NUMBER:
		return json_is_number(v);
	case GWT_BOOLEAN:
		return json_is_boolean(v);
	default:
		return false;
	}
}

static int
parse_param(struct gwt_ld *l, const struct aam_yaml_node *key, const struct aam_yaml_node *n,
            struct gwt_param *p)
{
	static const char *const keys[] = {"type",       "description", "required",  "enum",
	                                   "min_length", "max_length",  "min",       "max",
	                                   "pattern",    "items",       "max_items", NULL};
	char where[160];
	snprintf(where, sizeof(where), "parameter '%s'", key->str);
	if (!gwt_param_name_ok(key->str, key->len))
		return gwt_ld_bad(
		        l, key,
		        "parameter names are letters, digits and '_', not starting with a digit "
		        "(at most 64)");
	int rc = gwt_ld_want_map(l, n, where);
	if (rc == AAM_OK)
		rc = gwt_ld_keys_only(l, n, where, keys);
	if (rc != AAM_OK)
		return rc;
	p->name = key->str;
	p->line = key->line;
	p->col = key->col;
	const struct aam_yaml_node *v = aam_yaml_map_get(n, "type");
	if (v == NULL)
		return gwt_ld_bad(l, n, "%s: 'type' is required", where);
	if ((rc = parse_type(l, v, where, false, &p->type)) != AAM_OK)
		return rc;
	if ((v = aam_yaml_map_get(n, "description")) != NULL &&
	    (rc = gwt_ld_get_str(l, v, where, &p->description)) != AAM_OK)
		return rc;
	if ((v = aam_yaml_map_get(n, "required")) != NULL) {
		struct aam_yaml_error e;
		if (aam_yaml_get_bool(v, l->file, &p->required, &e) != AAM_OK)
			return gwt_ld_bad(l, v, "%s.required: %s", where, e.msg);
	}
	bool is_str = p->type == GWT_STRING, is_arr = p->type == GWT_ARRAY;
	bool is_num = p->type == GWT_INTEGER || p->type == GWT_NUMBER;
	p->max_length = is_str ? GWT_STRING_MAX : is_arr ? GWT_ITEMS_MAX : 0;
	if ((v = aam_yaml_map_get(n, "items")) != NULL) {
		if (!is_arr)
			return gwt_ld_bad(l, v, "%s: 'items' applies to arrays only", where);
		if ((rc = gwt_ld_want_map(l, v, where)) != AAM_OK ||
		    (rc = gwt_ld_keys_only(l, v, where, (const char *const[]){"type", NULL})) !=
		            AAM_OK)
			return rc;
		const struct aam_yaml_node *t = aam_yaml_map_get(v, "type");
		if (t == NULL)
			return gwt_ld_bad(l, v, "%s.items: 'type' is required", where);
		if ((rc = parse_type(l, t, where, true, &p->items)) != AAM_OK)
			return rc;
	} else if (is_arr) {
		return gwt_ld_bad(l, n, "%s: an array needs 'items' (its element type)", where);
	}
	if ((v = aam_yaml_map_get(n, "max_items")) != NULL) {
		if (!is_arr)
			return gwt_ld_bad(l, v, "%s: 'max_items' applies to arrays only", where);
		if ((rc = gwt_ld_get_int(l, v, where, 1, 10000, &p->max_length)) != AAM_OK)
			return rc;
	}
	if ((v = aam_yaml_map_get(n, "max_length")) != NULL) {
		if (!is_str)
			return gwt_ld_bad(l, v, "%s: 'max_length' applies to strings only", where);
		if ((rc = gwt_ld_get_int(l, v, where, 1, 1 << 20, &p->max_length)) != AAM_OK)
			return rc;
	}
	if ((v = aam_yaml_map_get(n, "min_length")) != NULL) {
		if (!is_str)
			return gwt_ld_bad(l, v, "%s: 'min_length' applies to strings only", where);
		if ((rc = gwt_ld_get_int(l, v, where, 0, 1 << 20, &p->min_length)) != AAM_OK)
			return rc;
		if (p->min_length > p->max_length)
			return gwt_ld_bad(l, v, "%s: min_length is greater than max_length", where);
	}
	const char *const bounds[] = {"min", "max"};
	struct gwt_num *nums[] = {&p->min, &p->max};
	for (size_t i = 0; i < 2; i++) {
		if ((v = aam_yaml_map_get(n, bounds[i])) == NULL)
			continue;
		if (!is_num)
			return gwt_ld_bad(l, v, "%s: '%s' applies to integers and numbers only",
			                  where, bounds[i]);
		if ((rc = parse_num(l, v, where, nums[i])) != AAM_OK)
			return rc;
		if (p->type == GWT_INTEGER && !nums[i]->is_int)
			return gwt_ld_bad(l, v, "%s: an integer's %s must be an integer", where,
			                  bounds[i]);
	}
	if (p->min.set && p->max.set &&
	    (p->min.is_int && p->max.is_int ? p->min.i > p->max.i : p->min.d > p->max.d))
		return gwt_ld_bad(l, n, "%s: min is greater than max", where);
	if ((v = aam_yaml_map_get(n, "pattern")) != NULL) {
		if (!is_str)
			return gwt_ld_bad(l, v, "%s: 'pattern' applies to strings only", where);
		if ((rc = gwt_ld_get_str(l, v, where, &p->pattern)) != AAM_OK)
			return rc;
		char why[200];
		struct pol_regex *re = NULL;
		rc = pol_regex_compile(&l->c->arena, p->pattern, strlen(p->pattern), &re, why,
		                       sizeof(why));
		if (rc == AAM_E_NOMEM)
			return rc;
		if (rc != AAM_OK)
			return gwt_ld_bad(l, v, "%s.pattern: %s", where, why);
		p->re = re;
	}
	if ((v = aam_yaml_map_get(n, "enum")) != NULL) {
		if (is_arr)
			return gwt_ld_bad(l, v, "%s: 'enum' applies to scalars only", where);
		if (v->type != AAM_YAML_SEQ || v->n == 0)
			return gwt_ld_bad(l, v, "%s.enum: expected a non-empty list", where);
		json_t *arr = NULL;
		struct aam_yaml_error e;
		if (aam_yaml_to_json(v, &arr, &e, l->file) != AAM_OK)
			return gwt_ld_bad(l, v, "%s.enum: %s", where, e.msg);
		if ((rc = gwt_ld_own_json(l->c, arr)) != AAM_OK) {
			json_decref(arr);
			return rc;
		}
		for (size_t i = 0; i < json_array_size(arr); i++) {
			json_t *x = json_array_get(arr, i);
			if (!enum_value_ok(x, p->type))
				return gwt_ld_bad(
				        l, v->items[i],
				        "%s.enum: value does not have the parameter's type", where);
			for (size_t j = 0; j < i; j++)
				if (json_equal(json_array_get(arr, j), x))
					return gwt_ld_bad(l, v->items[i],
					                  "%s.enum: duplicate value", where);
		}
		p->enum_values = arr;
	}
	return AAM_OK;
}

/* ---- actions ---------------------------------------------------------- */

/* Literal path text: RFC 3986 pchar and '/', no dot segments, no "//". */
static bool
path_literal_ok(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9'))
			continue;
		if (strchr("-._~!$&'()*+,;=:@/", ch) == NULL || ch == 0)
			return false;
	}
	return true;
}

static int
check_path(struct gwt_ld *l, const struct aam_yaml_node *n, const struct gwt_action *a)
{
	const struct gwt_tmpl *t = &a->path;
	if (t->n == 0 || t->segs[0].lit == NULL || t->segs[0].lit[0] != '/')
		return gwt_ld_bad(l, n, "path: must start with '/'");
	for (size_t i = 0; i < t->n; i++) {
		const struct gwt_seg *s = &t->segs[i];
		if (s->lit != NULL) {
			if (!path_literal_ok(s->lit, s->len))
				return gwt_ld_bad(
				        l, n,
				        "path: only unreserved characters, sub-delimiters, ':', "
				        "'@' and "
				        "'/' may be written literally");
			continue;
		}
		const struct gwt_param *p = &a->params[s->param];
		if (!p->required)
			return gwt_ld_bad(l, n,
			                  "path: placeholder '{%s}' must name a required parameter",
			                  p->name);
		if (p->type == GWT_ARRAY)
			return gwt_ld_bad(l, n, "path: placeholder '{%s}' cannot be an array",
			                  p->name);
	}
	/* Literal dot segments and empty segments, looking across placeholders. */
	const char *path = n->str;
	for (const char *p = path; *p; p++) {
		if (*p != '/')
			continue;
		size_t seg = strcspn(p + 1, "/");
		if ((seg == 0 && p[1] != '\0') || (seg == 1 && p[1] == '.') ||
		    (seg == 2 && p[1] == '.' && p[2] == '.'))
			return gwt_ld_bad(l, n,
			                  "path: empty, '.' and '..' segments are not allowed");
	}
	return AAM_OK;
}

static int
parse_kvs(struct gwt_ld *l, const struct aam_yaml_node *n, const char *where, bool headers,
          struct gwt_action *a, struct gwt_kv **out, size_t *nout, size_t extra)
{
	if (n == NULL) {
		*out = extra ? pol_alloc_array(&l->c->arena, extra, sizeof(**out)) : NULL;
		*nout = 0;
		return extra && *out == NULL ? AAM_E_NOMEM : AAM_OK;
	}
	int rc = gwt_ld_want_map(l, n, where);
	if (rc != AAM_OK)
		return rc;
	if (n->n > 64)
		return gwt_ld_bad(l, n, "%s: at most 64 entries", where);
	*out = pol_alloc_array(&l->c->arena, n->n + extra, sizeof(**out));
	if (*out == NULL)
		return AAM_E_NOMEM;
	*nout = 0;
	for (size_t i = 0; i < n->n; i++) {
		const char *name = n->keys[i]->str;
		if (headers) {
			if (!gwt_header_name_ok(name))
				return gwt_ld_bad(l, n->keys[i], "%s: '%.64s' is not a header name",
				                  where, name);
			if (gwt_header_forbidden(name))
				return gwt_ld_bad(
				        l, n->keys[i],
				        "%s: '%.64s' cannot be set by a template (aam-vault "
				        "owns it)",
				        where, name);
		} else if (name[0] == '\0' || strlen(name) > 256) {
			return gwt_ld_bad(l, n->keys[i], "%s: query names are 1 to 256 bytes",
			                  where);
		}
		const char *val;
		if ((rc = gwt_ld_get_str(l, n->items[i], where, &val)) != AAM_OK)
			return rc;
		struct gwt_kv *kv = &(*out)[(*nout)++];
		kv->name = name;
		char why[200];
		rc = gwt_tmpl_parse(&l->c->arena, val, a->params, a->nparams, &kv->value, why,
		                    sizeof(why));
		if (rc != AAM_OK)
			return rc == AAM_E_NOMEM ? rc
			                         : gwt_ld_bad(l, n->items[i], "%s.%.64s: %s", where,
			                                      name, why);
		for (size_t j = 0; j < kv->value.n; j++) {
			const struct gwt_seg *s = &kv->value.segs[j];
			if (s->lit == NULL && headers && a->params[s->param].type == GWT_ARRAY)
				return gwt_ld_bad(l, n->items[i],
				                  "%s.%.64s: a header cannot take an array", where,
				                  name);
			if (s->lit == NULL && a->params[s->param].type == GWT_ARRAY &&
			    !gwt_tmpl_is_single(&kv->value))
				return gwt_ld_bad(
				        l, n->items[i],
				        "%s.%.64s: an array parameter must be the whole value",
				        where, name);
		}
	}
	return AAM_OK;
}

/* Checks every placeholder of a JSON body template. */
static int
check_body(struct gwt_ld *l, const struct aam_yaml_node *n, const json_t *j,
           const struct gwt_action *a)
{
	char why[200];
	if (json_is_string(j)) {
		struct gwt_tmpl t;
		int rc = gwt_tmpl_parse(&l->c->arena, json_string_value(j), a->params, a->nparams,
		                        &t, why, sizeof(why));
		if (rc != AAM_OK)
			return rc == AAM_E_NOMEM ? rc : gwt_ld_bad(l, n, "body: %s", why);
		for (size_t i = 0; i < t.n; i++)
			if (t.segs[i].lit == NULL && a->params[t.segs[i].param].type == GWT_ARRAY &&
			    !gwt_tmpl_is_single(&t))
				return gwt_ld_bad(l, n,
				                  "body: an array parameter must be a whole value");
		return AAM_OK;
	}
	if (json_is_array(j)) {
		for (size_t i = 0; i < json_array_size(j); i++) {
			int rc = check_body(l, n, json_array_get(j, i), a);
			if (rc != AAM_OK)
				return rc;
		}
	} else if (json_is_object(j)) {
		const char *k;
		json_t *v;
		json_object_foreach((json_t *)(uintptr_t)j, k, v)
		{
			if (strchr(k, '{') != NULL)
				return gwt_ld_bad(l, n,
				                  "body: member names cannot hold placeholders");
			int rc = check_body(l, n, v, a);
			if (rc != AAM_OK)
				return rc;
		}
	}
	return AAM_OK;
}

static bool
method_ok(const char *m)
{
	static const char *const methods[] = {"GET",    "POST", "PUT", "PATCH",
	                                      "DELETE", "HEAD", NULL};
	for (size_t i = 0; methods[i] != NULL; i++)
		if (strcmp(m, methods[i]) == 0)
			return true;
	return false;
}

int
gwt_ld_action(struct gwt_ld *l, const struct gwt_resource *r, const struct aam_yaml_node *key,
              const struct aam_yaml_node *n, const char *res_base, const char *res_cred,
              const struct aam_yaml_node *res_headers, struct gwt_action *a)
{
	static const char *const keys[] = {"description", "method", "path",       "query",
	                                   "headers",     "body",   "parameters", "credential",
	                                   "timeout",     NULL};
	char where[200];
	snprintf(where, sizeof(where), "action '%s.%s'", r->name, key->str);
	if (!gwt_action_name_ok(key->str))
		return gwt_ld_bad(l, key,
		                  "action names are letters, digits and . _ : - (at most %u)",
		                  GWT_NAME_MAX - 1);
	int rc = gwt_ld_want_map(l, n, where);
	if (rc == AAM_OK)
		rc = gwt_ld_keys_only(l, n, where, keys);
	if (rc != AAM_OK)
		return rc;
	a->name = key->str;
	a->resource = r->name;
	a->file = l->file;
	a->line = key->line;
	a->col = key->col;
	a->base_url = res_base;
	a->credential = res_cred;
	a->timeout_ms = l->timeout_ms;
	const struct aam_yaml_node *v;
	if ((v = aam_yaml_map_get(n, "description")) != NULL &&
	    (rc = gwt_ld_get_str(l, v, where, &a->description)) != AAM_OK)
		return rc;
	if ((v = aam_yaml_map_get(n, "method")) == NULL)
		return gwt_ld_bad(l, n, "%s: 'method' is required", where);
	if ((rc = gwt_ld_get_str(l, v, where, &a->method)) != AAM_OK)
		return rc;
	if (!method_ok(a->method))
		return gwt_ld_bad(l, v, "%s: method must be GET, POST, PUT, PATCH, DELETE or HEAD",
		                  where);
	if ((v = aam_yaml_map_get(n, "credential")) != NULL) {
		if ((rc = gwt_ld_get_str(l, v, where, &a->credential)) != AAM_OK)
			return rc;
		if (!gwt_credential_name_ok(a->credential))
			return gwt_ld_bad(l, v, "%s: invalid credential name", where);
	}
	if ((v = aam_yaml_map_get(n, "timeout")) != NULL &&
	    (rc = gwt_ld_get_duration(l, v, where, &a->timeout_ms)) != AAM_OK)
		return rc;
	if (a->base_url == NULL)
		return gwt_ld_bad(l, n, "%s: no base_url (set it in spec or on the resource)",
		                  where);

	/* Parameters first: templates refer to them. */
	const struct aam_yaml_node *ps = aam_yaml_map_get(n, "parameters");
	if (ps != NULL && !aam_yaml_is_null(ps)) {
		if ((rc = gwt_ld_want_map(l, ps, where)) != AAM_OK)
			return rc;
		if (ps->n > GWT_MAX_PARAMS)
			return gwt_ld_bad(l, ps, "%s: at most %u parameters", where,
			                  GWT_MAX_PARAMS);
		a->params = pol_alloc_array(&l->c->arena, ps->n ? ps->n : 1, sizeof(*a->params));
		if (a->params == NULL)
			return AAM_E_NOMEM;
		for (size_t i = 0; i < ps->n; i++) {
			if ((rc = parse_param(l, ps->keys[i], ps->items[i], &a->params[i])) !=
			    AAM_OK)
				return rc;
			a->nparams++;
		}
	}

	if ((v = aam_yaml_map_get(n, "path")) == NULL)
		return gwt_ld_bad(l, n, "%s: 'path' is required", where);
	const char *path;
	if ((rc = gwt_ld_get_str(l, v, where, &path)) != AAM_OK)
		return rc;
	char why[200];
	rc = gwt_tmpl_parse(&l->c->arena, path, a->params, a->nparams, &a->path, why, sizeof(why));
	if (rc != AAM_OK)
		return rc == AAM_E_NOMEM ? rc : gwt_ld_bad(l, v, "%s.path: %s", where, why);
	if ((rc = check_path(l, v, a)) != AAM_OK)
		return rc;
	if ((rc = parse_kvs(l, aam_yaml_map_get(n, "query"), "query", false, a, &a->query,
	                    &a->nquery, 0)) != AAM_OK)
		return rc;

	/* Headers: catalogue, then resource, then action; a later one replaces. */
	const struct aam_yaml_node *hs[3] = {l->headers, res_headers,
	                                     aam_yaml_map_get(n, "headers")};
	size_t total = 0;
	for (size_t i = 0; i < 3; i++)
		total += hs[i] != NULL ? hs[i]->n : 0;
	a->headers = pol_alloc_array(&l->c->arena, total ? total : 1, sizeof(*a->headers));
	if (a->headers == NULL)
		return AAM_E_NOMEM;
	for (size_t i = 0; i < 3; i++) {
		struct gwt_kv *kvs;
		size_t nkv;
		if (hs[i] == NULL)
			continue;
		if ((rc = parse_kvs(l, hs[i], "headers", true, a, &kvs, &nkv, 0)) != AAM_OK)
			return rc;
		for (size_t k = 0; k < nkv; k++) {
			size_t j = 0;
			while (j < a->nheaders && strcasecmp(a->headers[j].name, kvs[k].name) != 0)
				j++;
			a->headers[j] = kvs[k];
			if (j == a->nheaders)
				a->nheaders++;
		}
	}

	if ((v = aam_yaml_map_get(n, "body")) != NULL) {
		if (strcmp(a->method, "GET") == 0 || strcmp(a->method, "HEAD") == 0)
			return gwt_ld_bad(l, v, "%s: a %s request has no body", where, a->method);
		struct aam_yaml_error e;
		json_t *j = NULL;
		if (aam_yaml_to_json(v, &j, &e, l->file) != AAM_OK)
			return gwt_ld_bad(l, v, "%s.body: %s", where, e.msg);
		if ((rc = gwt_ld_own_json(l->c, j)) != AAM_OK) {
			json_decref(j);
			return rc;
		}
		if ((rc = check_body(l, v, j, a)) != AAM_OK)
			return rc;
		a->body = j;
	}
	/* Every parameter must be used somewhere, or the schema lies about the call. */
	for (size_t i = 0; i < a->nparams; i++) {
		bool used = false;
		const struct gwt_tmpl *ts[1 + 64 + 3 * 64];
		size_t nt = 0;
		ts[nt++] = &a->path;
		for (size_t k = 0; k < a->nquery; k++)
			ts[nt++] = &a->query[k].value;
		for (size_t k = 0; k < a->nheaders && nt < sizeof(ts) / sizeof(ts[0]); k++)
			ts[nt++] = &a->headers[k].value;
		for (size_t k = 0; k < nt && !used; k++)
			for (size_t s = 0; s < ts[k]->n && !used; s++)
				used = ts[k]->segs[s].lit == NULL && ts[k]->segs[s].param == i;
		if (!used && a->body != NULL) {
			char ph[80];
			snprintf(ph, sizeof(ph), "{%s}", a->params[i].name);
			char *dump = json_dumps(a->body, JSON_COMPACT);
			used = dump != NULL && strstr(dump, ph) != NULL;
			free(dump);
		}
		if (!used)
			return gwt_ld_bad(l, ps->keys[i],
			                  "%s: parameter '%s' is not used by the request template",
			                  where, a->params[i].name);
	}
	return AAM_OK;
}
