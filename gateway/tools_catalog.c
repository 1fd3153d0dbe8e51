/*
 * The tool catalogue loader: strict YAML (kind ToolCatalog) into the
 * typed structs of gateway/tools.h.
 *
 * Everything the format does not describe is an error naming
 * file:line:column, because a typo in a catalogue would otherwise send a
 * request somewhere unintended or drop a parameter check silently.  The
 * loader keeps the parsed YAML streams alive and points into them, so
 * strings are never copied.
 */
#include "gateway/tools_load.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "aam/err.h"
#include "common/config.h"

#define GWT_MAX_FILES 256

/* ---- resources and MCP servers --------------------------------------- */

static int
check_base_url(struct gwt_ld *l, const struct aam_yaml_node *n, const char *s)
{
	char why[200];
	if (aam_config_check_url(s, why, sizeof(why)) != AAM_OK)
		return gwt_ld_bad(l, n, "base_url: %s", why);
	if (strchr(s, '?') != NULL || strchr(s, '{') != NULL)
		return gwt_ld_bad(l, n, "base_url: no query and no placeholders");
	if (s[strlen(s) - 1] == '/')
		return gwt_ld_bad(l, n, "base_url: no trailing '/' (paths start with one)");
	return AAM_OK;
}

static int
add_pres(struct gwt_catalog *c, const char *name)
{
	for (size_t i = 0; i < c->npres; i++)
		if (strcmp(c->pres[i], name) == 0)
			return AAM_OK;
	if (c->npres == c->cappres) {
		size_t cap = c->cappres ? c->cappres * 2 : 16;
		const char **p = realloc(c->pres, cap * sizeof(*p));
		if (p == NULL)
			return AAM_E_NOMEM;
		c->pres = p;
		c->cappres = cap;
	}
	c->pres[c->npres++] = name;
	return AAM_OK;
}

static int
parse_resource(struct gwt_ld *l, const struct aam_yaml_node *key, const struct aam_yaml_node *n)
{
	static const char *const keys[] = {"description", "base_url", "credential",
	                                   "headers",     "actions",  NULL};
	char where[180];
	snprintf(where, sizeof(where), "resource '%.120s'", key->str);
	if (!gwt_resource_name_ok(key->str))
		return gwt_ld_bad(
		        l, key,
		        "resource names are dot-separated segments of letters, digits, '_' and "
		        "'-'");
	if (gwt_catalog_find_resource(l->c, key->str) != NULL)
		return gwt_ld_bad(l, key, "resource '%.120s' is defined twice", key->str);
	int rc = gwt_ld_want_map(l, n, where);
	if (rc == AAM_OK)
		rc = gwt_ld_keys_only(l, n, where, keys);
	if (rc != AAM_OK)
		return rc;
	struct gwt_resource r = {.name = key->str};
	const char *base = l->base_url, *cred = l->credential;
	const struct aam_yaml_node *v;
	if ((v = aam_yaml_map_get(n, "description")) != NULL &&
	    (rc = gwt_ld_get_str(l, v, where, &r.description)) != AAM_OK)
		return rc;
	if ((v = aam_yaml_map_get(n, "base_url")) != NULL &&
	    ((rc = gwt_ld_get_str(l, v, where, &base)) != AAM_OK ||
	     (rc = check_base_url(l, v, base)) != AAM_OK))
		return rc;
	if ((v = aam_yaml_map_get(n, "credential")) != NULL) {
		if ((rc = gwt_ld_get_str(l, v, where, &cred)) != AAM_OK)
			return rc;
		if (!gwt_credential_name_ok(cred))
			return gwt_ld_bad(l, v, "%s: invalid credential name", where);
	}
	const struct aam_yaml_node *hdrs = aam_yaml_map_get(n, "headers");
	if (hdrs != NULL && (rc = gwt_ld_want_map(l, hdrs, where)) != AAM_OK)
		return rc;
	const struct aam_yaml_node *acts = aam_yaml_map_get(n, "actions");
	if (acts == NULL)
		return gwt_ld_bad(l, n, "%s: 'actions' is required", where);
	if ((rc = gwt_ld_want_map(l, acts, where)) != AAM_OK)
		return rc;
	if (acts->n == 0 || acts->n > 256)
		return gwt_ld_bad(l, acts, "%s: 1 to 256 actions", where);
	r.actions = pol_alloc_array(&l->c->arena, acts->n, sizeof(*r.actions));
	if (r.actions == NULL)
		return AAM_E_NOMEM;
	for (size_t i = 0; i < acts->n; i++) {
		rc = gwt_ld_action(l, &r, acts->keys[i], acts->items[i], base, cred, hdrs,
		                   &r.actions[i]);
		if (rc != AAM_OK)
			return rc;
		r.nactions++;
	}
	struct gwt_catalog *c = l->c;
	if (c->nres == c->capres) {
		size_t cap = c->capres ? c->capres * 2 : 16;
		struct gwt_resource *p = realloc(c->res, cap * sizeof(*p));
		if (p == NULL)
			return AAM_E_NOMEM;
		c->res = p;
		c->capres = cap;
	}
	c->res[c->nres++] = r;
	return add_pres(c, r.name);
}

static int
parse_map(struct gwt_ld *l, const struct aam_yaml_node *n, const char *where, struct gwt_mcp_map *m)
{
	int rc = gwt_ld_want_map(l, n, where);
	if (rc == AAM_OK)
		rc = gwt_ld_keys_only(l, n, where,
		                      (const char *const[]){"resource", "action", NULL});
	if (rc != AAM_OK)
		return rc;
	const struct aam_yaml_node *v;
	if ((v = aam_yaml_map_get(n, "resource")) != NULL) {
		if ((rc = gwt_ld_get_str(l, v, where, &m->resource)) != AAM_OK)
			return rc;
		if (!gwt_resource_name_ok(m->resource))
			return gwt_ld_bad(l, v, "%s: invalid resource name", where);
	}
	if ((v = aam_yaml_map_get(n, "action")) != NULL) {
		if ((rc = gwt_ld_get_str(l, v, where, &m->action)) != AAM_OK)
			return rc;
		if (!gwt_action_name_ok(m->action))
			return gwt_ld_bad(l, v, "%s: invalid action name", where);
	}
	return AAM_OK;
}

static bool
mcp_tool_name_ok(const char *s)
{
	return gwt_name_chars(s, "_.-", 128);
}

static char *
keep_name(struct gwt_catalog *c, const char *prefix, const char *arg)
{
	if (c->nnames == c->capnames) {
		size_t cap = c->capnames ? c->capnames * 2 : 8;
		char **p = realloc(c->names, cap * sizeof(*p));
		if (p == NULL)
			return NULL;
		c->names = p;
		c->capnames = cap;
	}
	char *s = NULL;
	if (asprintf(&s, "%s%s", prefix, arg) < 0)
		return NULL;
	c->names[c->nnames++] = s;
	return s;
}

static int
parse_mcp(struct gwt_ld *l, const struct aam_yaml_node *n)
{
	static const char *const keys[] = {"name",      "url",     "credential",
	                                   "resource",  "timeout", "tools",
	                                   "resources", "prompts", NULL};
	int rc = gwt_ld_want_map(l, n, "mcp_servers[]");
	if (rc == AAM_OK)
		rc = gwt_ld_keys_only(l, n, "mcp_servers[]", keys);
	if (rc != AAM_OK)
		return rc;
	struct gwt_mcp_server s = {
	        .file = l->file, .line = n->line, .col = n->col, .timeout_ms = l->timeout_ms};
	const struct aam_yaml_node *v = aam_yaml_map_get(n, "name");
	if (v == NULL)
		return gwt_ld_bad(l, n, "mcp_servers[]: 'name' is required");
	if ((rc = gwt_ld_get_str(l, v, "mcp_servers[].name", &s.name)) != AAM_OK)
		return rc;
	if (!gwt_name_chars(s.name, "-", 32) || strchr(s.name, '_') != NULL)
		return gwt_ld_bad(l, v, "mcp_servers[].name: letters, digits and '-' (at most 32)");
	if (gwt_catalog_find_mcp(l->c, s.name) != NULL)
		return gwt_ld_bad(l, v, "MCP server '%s' is defined twice", s.name);
	char where[96];
	snprintf(where, sizeof(where), "mcp server '%s'", s.name);
	if ((v = aam_yaml_map_get(n, "url")) == NULL)
		return gwt_ld_bad(l, n, "%s: 'url' is required", where);
	char why[200];
	if ((rc = gwt_ld_get_str(l, v, where, &s.url)) != AAM_OK)
		return rc;
	if (aam_config_check_url(s.url, why, sizeof(why)) != AAM_OK)
		return gwt_ld_bad(l, v, "%s.url: %s", where, why);
	if ((v = aam_yaml_map_get(n, "credential")) == NULL)
		return gwt_ld_bad(l, n, "%s: 'credential' is required (the vault injects it)",
		                  where);
	if ((rc = gwt_ld_get_str(l, v, where, &s.credential)) != AAM_OK)
		return rc;
	if (!gwt_credential_name_ok(s.credential))
		return gwt_ld_bad(l, v, "%s: invalid credential name", where);
	if ((v = aam_yaml_map_get(n, "timeout")) != NULL &&
	    (rc = gwt_ld_get_duration(l, v, where, &s.timeout_ms)) != AAM_OK)
		return rc;
	if ((v = aam_yaml_map_get(n, "resource")) != NULL) {
		if ((rc = gwt_ld_get_str(l, v, where, &s.resource)) != AAM_OK)
			return rc;
		if (!gwt_resource_name_ok(s.resource))
			return gwt_ld_bad(l, v, "%s: invalid resource name", where);
	} else if ((s.resource = keep_name(l->c, "mcp.", s.name)) == NULL) {
		return AAM_E_NOMEM;
	}
	s.resources = (struct gwt_mcp_map){.resource = s.resource, .action = "resources.read"};
	s.prompts = (struct gwt_mcp_map){.resource = s.resource, .action = "prompts.get"};
	if ((v = aam_yaml_map_get(n, "resources")) != NULL &&
	    (rc = parse_map(l, v, where, &s.resources)) != AAM_OK)
		return rc;
	if ((v = aam_yaml_map_get(n, "prompts")) != NULL &&
	    (rc = parse_map(l, v, where, &s.prompts)) != AAM_OK)
		return rc;
	if ((v = aam_yaml_map_get(n, "tools")) != NULL) {
		if ((rc = gwt_ld_want_map(l, v, where)) != AAM_OK)
			return rc;
		if (v->n > 1024)
			return gwt_ld_bad(l, v, "%s: at most 1024 tool mappings", where);
		s.tools = pol_alloc_array(&l->c->arena, v->n ? v->n : 1, sizeof(*s.tools));
		if (s.tools == NULL)
			return AAM_E_NOMEM;
		for (size_t i = 0; i < v->n; i++) {
			struct gwt_mcp_map *m = &s.tools[i];
			m->name = v->keys[i]->str;
			if (!mcp_tool_name_ok(m->name))
				return gwt_ld_bad(l, v->keys[i],
				                  "%s: tool names are letters, digits and _ . -",
				                  where);
			m->resource = s.resource;
			m->action = m->name;
			if ((rc = parse_map(l, v->items[i], where, m)) != AAM_OK)
				return rc;
			if (!gwt_action_name_ok(m->action))
				return gwt_ld_bad(l, v->items[i],
				                  "%s: give the tool an 'action' name", where);
			if ((rc = add_pres(l->c, m->resource)) != AAM_OK)
				return rc;
			s.ntools++;
		}
	}
	if ((rc = add_pres(l->c, s.resource)) != AAM_OK ||
	    (rc = add_pres(l->c, s.resources.resource)) != AAM_OK ||
	    (rc = add_pres(l->c, s.prompts.resource)) != AAM_OK)
		return rc;
	struct gwt_catalog *c = l->c;
	if (c->nmcp == c->capmcp) {
		size_t cap = c->capmcp ? c->capmcp * 2 : 8;
		struct gwt_mcp_server *p = realloc(c->mcp, cap * sizeof(*p));
		if (p == NULL)
			return AAM_E_NOMEM;
		c->mcp = p;
		c->capmcp = cap;
	}
	c->mcp[c->nmcp++] = s;
	return AAM_OK;
}

static int
parse_doc(struct gwt_ld *l, const struct aam_yaml_node *doc)
{
	static const char *const top[] = {"apiVersion", "kind", "metadata", "spec", NULL};
	static const char *const spec_keys[] = {"base_url",  "credential",  "timeout", "headers",
	                                        "resources", "mcp_servers", NULL};
	int rc = gwt_ld_want_map(l, doc, "document");
	if (rc == AAM_OK)
		rc = gwt_ld_keys_only(l, doc, "document", top);
	if (rc != AAM_OK)
		return rc;
	const char *s;
	const struct aam_yaml_node *v = aam_yaml_map_get(doc, "apiVersion");
	if (v == NULL)
		return gwt_ld_bad(l, doc, "'apiVersion' is required");
	if ((rc = gwt_ld_get_str(l, v, "apiVersion", &s)) != AAM_OK)
		return rc;
	if (strcmp(s, GW_POLICY_API_VERSION) != 0)
		return gwt_ld_bad(l, v, "apiVersion: expected %s", GW_POLICY_API_VERSION);
	if ((v = aam_yaml_map_get(doc, "kind")) == NULL)
		return gwt_ld_bad(l, doc, "'kind' is required");
	if ((rc = gwt_ld_get_str(l, v, "kind", &s)) != AAM_OK)
		return rc;
	if (strcmp(s, GWT_KIND) != 0)
		return gwt_ld_bad(l, v, "kind: expected %s", GWT_KIND);
	const struct aam_yaml_node *md = aam_yaml_map_get(doc, "metadata");
	if (md == NULL)
		return gwt_ld_bad(l, doc, "'metadata' is required");
	if ((rc = gwt_ld_want_map(l, md, "metadata")) != AAM_OK ||
	    (rc = gwt_ld_keys_only(l, md, "metadata",
	                           (const char *const[]){"name", "description", NULL})) != AAM_OK)
		return rc;
	if ((v = aam_yaml_map_get(md, "name")) == NULL)
		return gwt_ld_bad(l, md, "metadata: 'name' is required");
	if ((rc = gwt_ld_get_str(l, v, "metadata.name", &s)) != AAM_OK)
		return rc;
	if ((v = aam_yaml_map_get(md, "description")) != NULL &&
	    (rc = gwt_ld_get_str(l, v, "metadata.description", &s)) != AAM_OK)
		return rc;
	const struct aam_yaml_node *spec = aam_yaml_map_get(doc, "spec");
	if (spec == NULL)
		return gwt_ld_bad(l, doc, "'spec' is required");
	if ((rc = gwt_ld_want_map(l, spec, "spec")) != AAM_OK ||
	    (rc = gwt_ld_keys_only(l, spec, "spec", spec_keys)) != AAM_OK)
		return rc;
	l->base_url = NULL;
	l->credential = NULL;
	l->timeout_ms = GWT_TIMEOUT_MS;
	l->headers = NULL;
	if ((v = aam_yaml_map_get(spec, "base_url")) != NULL &&
	    ((rc = gwt_ld_get_str(l, v, "spec.base_url", &l->base_url)) != AAM_OK ||
	     (rc = check_base_url(l, v, l->base_url)) != AAM_OK))
		return rc;
	if ((v = aam_yaml_map_get(spec, "credential")) != NULL) {
		if ((rc = gwt_ld_get_str(l, v, "spec.credential", &l->credential)) != AAM_OK)
			return rc;
		if (!gwt_credential_name_ok(l->credential))
			return gwt_ld_bad(l, v, "spec.credential: invalid credential name");
	}
	if ((v = aam_yaml_map_get(spec, "timeout")) != NULL &&
	    (rc = gwt_ld_get_duration(l, v, "spec.timeout", &l->timeout_ms)) != AAM_OK)
		return rc;
	if ((v = aam_yaml_map_get(spec, "headers")) != NULL) {
		if ((rc = gwt_ld_want_map(l, v, "spec.headers")) != AAM_OK)
			return rc;
		l->headers = v;
	}
	const struct aam_yaml_node *res = aam_yaml_map_get(spec, "resources");
	const struct aam_yaml_node *mcp = aam_yaml_map_get(spec, "mcp_servers");
	if (res == NULL && mcp == NULL)
		return gwt_ld_bad(l, spec, "spec: needs 'resources' or 'mcp_servers'");
	if (res != NULL) {
		if ((rc = gwt_ld_want_map(l, res, "spec.resources")) != AAM_OK)
			return rc;
		for (size_t i = 0; i < res->n; i++)
			if ((rc = parse_resource(l, res->keys[i], res->items[i])) != AAM_OK)
				return rc;
	}
	if (mcp != NULL) {
		if (mcp->type != AAM_YAML_SEQ || mcp->n == 0)
			return gwt_ld_bad(l, mcp, "spec.mcp_servers: expected a non-empty list");
		for (size_t i = 0; i < mcp->n; i++)
			if ((rc = parse_mcp(l, mcp->items[i])) != AAM_OK)
				return rc;
	}
	return AAM_OK;
}

static int
add_stream(struct gwt_catalog *c, aam_yaml_stream *s, struct aam_yaml_error *err)
{
	aam_yaml_stream **p = realloc(c->streams, (c->nstreams + 1) * sizeof(*p));
	if (p == NULL) {
		aam_yaml_stream_free(s);
		return AAM_E_NOMEM;
	}
	c->streams = p;
	c->streams[c->nstreams++] = s;
	struct gwt_ld l = {.c = c, .file = aam_yaml_stream_name(s), .err = err};
	if (aam_yaml_stream_count(s) == 0) {
		if (err != NULL)
			aam_yaml_error_set(err, l.file, 0, 0, "empty catalogue file");
		return AAM_E_CONFIG;
	}
	for (size_t i = 0; i < aam_yaml_stream_count(s); i++) {
		int rc = parse_doc(&l, aam_yaml_stream_doc(s, i));
		if (rc != AAM_OK)
			return rc;
	}
	return AAM_OK;
}

static struct gwt_catalog *
catalog_new(void)
{
	struct gwt_catalog *c = calloc(1, sizeof(*c));
	if (c != NULL)
		pol_arena_init(&c->arena);
	return c;
}

void
gwt_catalog_free(struct gwt_catalog *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->nowned; i++)
		json_decref(c->owned[i]);
	for (size_t i = 0; i < c->nstreams; i++)
		aam_yaml_stream_free(c->streams[i]);
	for (size_t i = 0; i < c->nnames; i++)
		free(c->names[i]);
	free(c->names);
	free(c->owned);
	free(c->streams);
	free(c->res);
	free(c->mcp);
	free(c->pres);
	pol_arena_uninit(&c->arena);
	free(c);
}

static const struct aam_yaml_limits LIMITS = {
        .max_bytes = 1024 * 1024, .max_depth = 32, .max_scalar = 16 * 1024};

int
gwt_catalog_load_buffer(const char *name, const void *data, size_t len, struct gwt_catalog **out,
                        struct aam_yaml_error *err)
{
	*out = NULL;
	struct gwt_catalog *c = catalog_new();
	if (c == NULL)
		return AAM_E_NOMEM;
	aam_yaml_stream *s = NULL;
	int rc = aam_yaml_parse(name, data, len, &LIMITS, &s, err);
	if (rc == AAM_OK)
		rc = add_stream(c, s, err);
	else if (rc == AAM_E_PARSE)
		rc = AAM_E_CONFIG;
	if (rc != AAM_OK) {
		gwt_catalog_free(c);
		return rc;
	}
	*out = c;
	return AAM_OK;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool
yaml_name(const char *n)
{
	size_t len = strlen(n);
	if (n[0] == '.')
		return false;
	return (len > 5 && strcmp(n + len - 5, ".yaml") == 0) ||
	       (len > 4 && strcmp(n + len - 4, ".yml") == 0);
}

static int
load_file(struct gwt_catalog *c, const char *path, struct aam_yaml_error *err)
{
	aam_yaml_stream *s = NULL;
	int rc = aam_yaml_parse_file(path, &LIMITS, &s, err);
	if (rc == AAM_E_PARSE || rc == AAM_E_TOOBIG)
		return AAM_E_CONFIG;
	if (rc != AAM_OK)
		return rc;
	return add_stream(c, s, err);
}

static int
load_path(struct gwt_catalog *c, const char *path, struct aam_yaml_error *err)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		if (err != NULL)
			aam_yaml_error_set(err, path, 0, 0, "%s", strerror(errno));
		return errno == ENOENT ? AAM_E_NOTFOUND : AAM_E_IO;
	}
	if (!S_ISDIR(st.st_mode))
		return load_file(c, path, err);
	DIR *d = opendir(path);
	if (d == NULL) {
		if (err != NULL)
			aam_yaml_error_set(err, path, 0, 0, "%s", strerror(errno));
		return AAM_E_IO;
	}
	char *names[GWT_MAX_FILES];
	size_t n = 0;
	int rc = AAM_OK;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (!yaml_name(e->d_name))
			continue;
		if (n == GWT_MAX_FILES) {
			if (err != NULL)
				aam_yaml_error_set(err, path, 0, 0, "more than %d catalogue files",
				                   GWT_MAX_FILES);
			rc = AAM_E_CONFIG;
			break;
		}
		if (asprintf(&names[n], "%s/%s", path, e->d_name) < 0) {
			rc = AAM_E_NOMEM;
			break;
		}
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), cmp_str);
	for (size_t i = 0; i < n; i++) {
		if (rc == AAM_OK)
			rc = load_file(c, names[i], err);
		free(names[i]);
	}
	return rc;
}

int
gwt_catalog_load(const char *const *paths, size_t npaths, struct gwt_catalog **out,
                 struct aam_yaml_error *err)
{
	*out = NULL;
	struct gwt_catalog *c = catalog_new();
	if (c == NULL)
		return AAM_E_NOMEM;
	int rc = AAM_OK;
	for (size_t i = 0; i < npaths && rc == AAM_OK; i++)
		rc = load_path(c, paths[i], err);
	if (rc != AAM_OK) {
		gwt_catalog_free(c);
		return rc;
	}
	*out = c;
	return AAM_OK;
}

/* ---- lookups ---------------------------------------------------------- */

size_t
gwt_catalog_resource_count(const struct gwt_catalog *c)
{
	return c != NULL ? c->nres : 0;
}

const struct gwt_resource *
gwt_catalog_resource(const struct gwt_catalog *c, size_t i)
{
	return c != NULL && i < c->nres ? &c->res[i] : NULL;
}

const struct gwt_resource *
gwt_catalog_find_resource(const struct gwt_catalog *c, const char *name)
{
	if (c == NULL || name == NULL)
		return NULL;
	for (size_t i = 0; i < c->nres; i++)
		if (strcmp(c->res[i].name, name) == 0)
			return &c->res[i];
	return NULL;
}

const struct gwt_action *
gwt_catalog_find(const struct gwt_catalog *c, const char *resource, const char *action)
{
	const struct gwt_resource *r = gwt_catalog_find_resource(c, resource);
	if (r == NULL || action == NULL)
		return NULL;
	for (size_t i = 0; i < r->nactions; i++)
		if (strcmp(r->actions[i].name, action) == 0)
			return &r->actions[i];
	return NULL;
}

size_t
gwt_catalog_mcp_count(const struct gwt_catalog *c)
{
	return c != NULL ? c->nmcp : 0;
}

const struct gwt_mcp_server *
gwt_catalog_mcp(const struct gwt_catalog *c, size_t i)
{
	return c != NULL && i < c->nmcp ? &c->mcp[i] : NULL;
}

const struct gwt_mcp_server *
gwt_catalog_find_mcp(const struct gwt_catalog *c, const char *name)
{
	if (c == NULL || name == NULL)
		return NULL;
	for (size_t i = 0; i < c->nmcp; i++)
		if (strcmp(c->mcp[i].name, name) == 0)
			return &c->mcp[i];
	return NULL;
}

const char *const *
gwt_catalog_policy_resources(const struct gwt_catalog *c, size_t *n)
{
	*n = c != NULL ? c->npres : 0;
	return c != NULL ? c->pres : NULL;
}
