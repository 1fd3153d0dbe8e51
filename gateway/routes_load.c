/*
 * The routes file (docs/ROUTING.md): model_list + router_settings, read
 * with common/yaml.h so every error names file:line:column.  Unknown keys
 * are errors, not warnings: a misspelt `fallback:` silently ignored would
 * leave a route without the fallback its operator believes it has.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "common/yaml.h"
#include "gateway/router_int.h"

struct ld {
	const char *file;
	struct aam_yaml_error err;
	struct gw_routes *t;
};

static int fail(struct ld *l, const struct aam_yaml_node *n, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int
fail(struct ld *l, const struct aam_yaml_node *n, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	aam_yaml_error_at(&l->err, l->file, n, "%s", msg);
	return AAM_E_CONFIG;
}

/* Every key of map N must be one of ALLOWED. */
static int
check_keys(struct ld *l, const struct aam_yaml_node *n, const char *what,
           const char *const *allowed)
{
	if (n->type != AAM_YAML_MAP)
		return fail(l, n, "%s: expected a mapping", what);
	for (size_t i = 0; i < n->n; i++) {
		const char *k = n->keys[i]->str;
		bool ok = false;
		for (size_t j = 0; allowed[j] != NULL && !ok; j++)
			ok = strcmp(k, allowed[j]) == 0;
		if (!ok)
			return fail(l, n->keys[i], "%s: unknown key '%s'", what, k);
	}
	return AAM_OK;
}

static int
get_str(struct ld *l, const struct aam_yaml_node *n, const char *what, char **out)
{
	const char *s = NULL;
	if (n->type != AAM_YAML_SCALAR || aam_yaml_is_null(n))
		return fail(l, n, "%s: expected a string", what);
	if (aam_yaml_get_str(n, l->file, &s, &l->err) != AAM_OK)
		return AAM_E_CONFIG;
	if (s[0] == '\0')
		return fail(l, n, "%s: must not be empty", what);
	if (strlen(s) != n->len)
		return fail(l, n, "%s: contains a NUL byte", what);
	*out = strdup(s);
	return *out != NULL ? AAM_OK : AAM_E_NOMEM;
}

static int
get_int(struct ld *l, const struct aam_yaml_node *n, const char *what, int64_t min, int64_t max,
        int64_t *out)
{
	if (n->type != AAM_YAML_SCALAR || !n->plain)
		return fail(l, n, "%s: expected an integer", what);
	if (aam_yaml_get_int64(n, l->file, out, &l->err) != AAM_OK)
		return AAM_E_CONFIG;
	if (*out < min || *out > max)
		return fail(l, n, "%s: must be between %lld and %lld", what, (long long)min,
		            (long long)max);
	return AAM_OK;
}

static int
get_num(struct ld *l, const struct aam_yaml_node *n, const char *what, double max, double *out)
{
	if (n->type != AAM_YAML_SCALAR || !n->plain)
		return fail(l, n, "%s: expected a number", what);
	if (aam_yaml_get_double(n, l->file, out, &l->err) != AAM_OK)
		return AAM_E_CONFIG;
	if (!isfinite(*out) || *out < 0 || *out > max)
		return fail(l, n, "%s: must be a number between 0 and %g", what, max);
	return AAM_OK;
}

int
gw_parse_duration_ms(const char *s, int64_t *out)
{
	if (s == NULL || !isdigit((unsigned char)s[0]))
		return AAM_E_INVAL;
	errno = 0;
	char *end = NULL;
	double v = strtod(s, &end);
	if (errno != 0 || end == s || !isfinite(v) || v < 0)
		return AAM_E_INVAL;
	double mul;
	if (*end == '\0' || strcmp(end, "s") == 0)
		mul = 1000;
	else if (strcmp(end, "ms") == 0)
		mul = 1;
	else if (strcmp(end, "m") == 0)
		mul = 60000;
	else if (strcmp(end, "h") == 0)
		mul = 3600000;
	else
		return AAM_E_INVAL;
	double ms = v * mul;
	/* A day bounds every timeout and window the router knows. */
	if (ms > 86400000.0)
		return AAM_E_INVAL;
	*out = (int64_t)ms;
	return AAM_OK;
}

static int
get_duration(struct ld *l, const struct aam_yaml_node *n, const char *what, int64_t *out)
{
	if (n->type != AAM_YAML_SCALAR || aam_yaml_is_null(n) ||
	    gw_parse_duration_ms(n->str, out) != AAM_OK)
		return fail(l, n,
		            "%s: expected a duration such as 500ms, 30s, 5m or 1h (at most 24h)",
		            what);
	return AAM_OK;
}

static const char *const K_TOP[] = {"model_list", "router_settings", NULL};
static const char *const K_ROUTE[] = {"model_name", "deployments", "max_output_tokens", NULL};
static const char *const K_DEP[] = {
        "id",  "provider", "model",  "api_base", "api_version", "credential",  "region",
        "rpm", "tpm",      "weight", "timeout",  "cost",        "max_context", NULL};
static const char *const K_COST[] = {"input_per_mtok", "output_per_mtok", "cached_input_per_mtok",
                                     NULL};
static const char *const K_SET[] = {"routing_strategy",
                                    "fallbacks",
                                    "context_window_fallbacks",
                                    "num_retries",
                                    "retry_after_max",
                                    "retry_backoff",
                                    "allowed_fails",
                                    "cooldown_time",
                                    "timeout",
                                    NULL};
static const char *const PROVIDERS[] = {"openai",  "anthropic",         "azure",
                                        "bedrock", "openai-compatible", NULL};

static int
load_cost(struct ld *l, const struct aam_yaml_node *n, struct gw_deployment *d)
{
	int rc = check_keys(l, n, "cost", K_COST);
	for (size_t i = 0; rc == AAM_OK && i < n->n; i++) {
		const char *k = n->keys[i]->str;
		double *dst = strcmp(k, "input_per_mtok") == 0    ? &d->cost_in
		              : strcmp(k, "output_per_mtok") == 0 ? &d->cost_out
		                                                  : &d->cost_cached;
		char what[64];
		snprintf(what, sizeof(what), "cost.%s", k);
		rc = get_num(l, n->items[i], what, 1e6, dst);
	}
	return rc;
}

static int
load_dep(struct ld *l, const struct aam_yaml_node *n, const char *route, size_t idx,
         struct gw_deployment *d, char **stable_id)
{
	int rc = check_keys(l, n, "deployment", K_DEP);
	if (rc != AAM_OK)
		return rc;
	d->weight = 1;
	for (size_t i = 0; rc == AAM_OK && i < n->n; i++) {
		const char *k = n->keys[i]->str;
		const struct aam_yaml_node *v = n->items[i];
		if (strcmp(k, "id") == 0) {
			rc = get_str(l, v, k, stable_id);
			if (rc == AAM_OK && strlen(*stable_id) > 127)
				rc = fail(l, v, "id: at most 127 bytes");
		} else if (strcmp(k, "provider") == 0) {
			rc = get_str(l, v, k, &d->provider);
			bool known = false;
			for (size_t j = 0; rc == AAM_OK && PROVIDERS[j] != NULL; j++)
				known = known || strcmp(d->provider, PROVIDERS[j]) == 0;
			if (rc == AAM_OK && !known)
				rc = fail(l, v,
				          "provider: '%s' is not one of openai, anthropic, azure, "
				          "bedrock, "
				          "openai-compatible",
				          d->provider);
		} else if (strcmp(k, "model") == 0) {
			rc = get_str(l, v, k, &d->model);
		} else if (strcmp(k, "api_base") == 0) {
			rc = get_str(l, v, k, &d->api_base);
			if (rc == AAM_OK && strncmp(d->api_base, "https://", 8) != 0 &&
			    strncmp(d->api_base, "http://", 7) != 0)
				rc = fail(l, v, "api_base: expected an http:// or https:// URL");
			/* Providers append their paths: no trailing slash. */
			size_t bl = rc == AAM_OK ? strlen(d->api_base) : 0;
			while (bl > 0 && d->api_base[bl - 1] == '/')
				d->api_base[--bl] = '\0';
		} else if (strcmp(k, "api_version") == 0) {
			rc = get_str(l, v, k, &d->api_version);
		} else if (strcmp(k, "credential") == 0) {
			rc = get_str(l, v, k, &d->credential);
		} else if (strcmp(k, "region") == 0) {
			rc = get_str(l, v, k, &d->region);
		} else if (strcmp(k, "rpm") == 0) {
			rc = get_int(l, v, k, 0, INT64_C(1) << 40, &d->rpm);
		} else if (strcmp(k, "tpm") == 0) {
			rc = get_int(l, v, k, 0, INT64_C(1) << 50, &d->tpm);
		} else if (strcmp(k, "weight") == 0) {
			rc = get_num(l, v, k, 1e6, &d->weight);
			if (rc == AAM_OK && !(d->weight > 0))
				rc = fail(l, v, "weight: must be greater than 0");
		} else if (strcmp(k, "timeout") == 0) {
			rc = get_duration(l, v, k, &d->timeout_ms);
			if (rc == AAM_OK && d->timeout_ms == 0)
				rc = fail(l, v, "timeout: must be greater than 0");
		} else if (strcmp(k, "max_context") == 0) {
			rc = get_int(l, v, k, 0, INT64_C(1) << 40, &d->max_context);
		} else {
			rc = load_cost(l, v, d);
		}
	}
	if (rc != AAM_OK)
		return rc;
	if (d->provider == NULL)
		return fail(l, n, "deployment: 'provider' is required");
	if (d->model == NULL)
		return fail(l, n, "deployment: 'model' is required");
	if (d->api_base == NULL)
		return fail(l, n, "deployment: 'api_base' is required");
	if (strcmp(d->provider, "azure") == 0 && d->api_version == NULL)
		return fail(l, n, "deployment: azure needs 'api_version'");
	if (d->credential == NULL && strcmp(d->provider, "openai-compatible") != 0)
		return fail(l, n, "deployment: 'credential' is required for provider %s",
		            d->provider);
	char id[300];
	snprintf(id, sizeof(id), "%s#%zu", route, idx);
	d->id = strdup(id);
	return d->id != NULL ? AAM_OK : AAM_E_NOMEM;
}

static struct gw_dep_state *
state_new(void)
{
	struct gw_dep_state *st = calloc(1, sizeof(*st));
	if (st == NULL)
		return NULL;
	atomic_init(&st->refs, 1);
	pthread_mutex_init(&st->mu, NULL);
	return st;
}

static void
state_unref(struct gw_dep_state *st)
{
	if (st != NULL && atomic_fetch_sub(&st->refs, 1) == 1) {
		pthread_mutex_destroy(&st->mu);
		free(st);
	}
}

static int
load_route(struct ld *l, const struct aam_yaml_node *n, struct gw_route *r)
{
	int rc = check_keys(l, n, "model_list entry", K_ROUTE);
	if (rc != AAM_OK)
		return rc;
	const struct aam_yaml_node *name = aam_yaml_map_get(n, "model_name");
	const struct aam_yaml_node *deps = aam_yaml_map_get(n, "deployments");
	const struct aam_yaml_node *cap = aam_yaml_map_get(n, "max_output_tokens");
	if (name == NULL)
		return fail(l, n, "model_list entry: 'model_name' is required");
	if ((rc = get_str(l, name, "model_name", &r->name)) != AAM_OK)
		return rc;
	if (strlen(r->name) >= 128)
		return fail(l, name, "model_name: at most 127 bytes");
	r->max_output_tokens = GW_DEFAULT_MAX_OUTPUT_TOKENS;
	if (cap != NULL && (rc = get_int(l, cap, "max_output_tokens", 1, 10000000,
	                                 &r->max_output_tokens)) != AAM_OK)
		return rc;
	if (deps == NULL)
		return fail(l, n, "route '%s': 'deployments' is required", r->name);
	if (deps->type != AAM_YAML_SEQ || deps->n == 0)
		return fail(l, deps, "deployments: expected a non-empty list");
	if (deps->n > GW_MAX_DEPLOYMENTS)
		return fail(l, deps, "deployments: at most %d per route", GW_MAX_DEPLOYMENTS);
	r->deps = calloc(deps->n, sizeof(*r->deps));
	r->state = calloc(deps->n, sizeof(*r->state));
	r->dep_ids = calloc(deps->n, sizeof(*r->dep_ids));
	if (r->deps == NULL || r->state == NULL || r->dep_ids == NULL)
		return AAM_E_NOMEM;
	r->ndeps = deps->n;
	for (size_t i = 0; i < deps->n; i++)
		if ((r->state[i] = state_new()) == NULL)
			return AAM_E_NOMEM;
	for (size_t i = 0; rc == AAM_OK && i < deps->n; i++) {
		rc = load_dep(l, deps->items[i], r->name, i, &r->deps[i], &r->dep_ids[i]);
		for (size_t j = 0; rc == AAM_OK && r->dep_ids[i] != NULL && j < i; j++)
			if (r->dep_ids[j] != NULL && strcmp(r->dep_ids[i], r->dep_ids[j]) == 0)
				rc = fail(l, aam_yaml_map_get(deps->items[i], "id"),
				          "id: duplicate deployment id '%s' in route '%s'",
				          r->dep_ids[i], r->name);
	}
	return rc;
}

/* fallbacks: [ { route: [a, b] }, ... ] */
static int
load_fallbacks(struct ld *l, const struct aam_yaml_node *n, const char *what, bool cw)
{
	if (n->type != AAM_YAML_SEQ)
		return fail(l, n, "%s: expected a list of {route: [fallback, ...]}", what);
	for (size_t i = 0; i < n->n; i++) {
		const struct aam_yaml_node *m = n->items[i];
		if (m->type != AAM_YAML_MAP || m->n == 0)
			return fail(l, m, "%s: expected a mapping {route: [fallback, ...]}", what);
		for (size_t j = 0; j < m->n; j++) {
			const struct aam_yaml_node *k = m->keys[j], *v = m->items[j];
			struct gw_route *r = NULL;
			for (size_t x = 0; x < l->t->nroutes && r == NULL; x++)
				if (strcmp(l->t->routes[x].name, k->str) == 0)
					r = &l->t->routes[x];
			if (r == NULL)
				return fail(l, k, "%s: route '%s' is not defined in model_list",
				            what, k->str);
			char ***list = cw ? &r->cw_fallbacks : &r->fallbacks;
			size_t *cnt = cw ? &r->ncw_fallbacks : &r->nfallbacks;
			if (*list != NULL)
				return fail(l, k, "%s: route '%s' is listed twice", what, k->str);
			if (v->type != AAM_YAML_SEQ || v->n == 0)
				return fail(l, v, "%s: expected a non-empty list of route names",
				            what);
			if (v->n > GW_MAX_FALLBACKS)
				return fail(l, v, "%s: at most %d fallbacks per route", what,
				            GW_MAX_FALLBACKS);
			*list = calloc(v->n, sizeof(char *));
			if (*list == NULL)
				return AAM_E_NOMEM;
			for (size_t f = 0; f < v->n; f++) {
				char *s = NULL;
				int rc = get_str(l, v->items[f], what, &s);
				if (rc != AAM_OK)
					return rc;
				(*list)[(*cnt)++] = s;
				if (gw_routes_find(l->t, s) == NULL)
					return fail(l, v->items[f],
					            "%s: fallback '%s' of route '%s' is not "
					            "defined in model_list",
					            what, s, k->str);
				if (strcmp(s, k->str) == 0)
					return fail(l, v->items[f],
					            "%s: route '%s' falls back to itself", what, s);
			}
		}
	}
	return AAM_OK;
}

static int
load_settings(struct ld *l, const struct aam_yaml_node *n)
{
	struct gw_settings *s = &l->t->settings;
	int rc = check_keys(l, n, "router_settings", K_SET);
	for (size_t i = 0; rc == AAM_OK && i < n->n; i++) {
		const char *k = n->keys[i]->str;
		const struct aam_yaml_node *v = n->items[i];
		int64_t x = 0;
		if (strcmp(k, "routing_strategy") == 0) {
			const char *names[] = {"simple-shuffle", "least-busy", "latency-based",
			                       "usage-based", "cost-based"};
			s->strategy = 0;
			for (size_t j = 0; v->type == AAM_YAML_SCALAR && j < 5; j++)
				if (strcmp(v->str, names[j]) == 0)
					s->strategy = (enum gw_strategy)(j + 1);
			if (s->strategy == 0)
				rc = fail(l, v,
				          "routing_strategy: expected simple-shuffle, least-busy, "
				          "latency-based, usage-based or cost-based");
		} else if (strcmp(k, "num_retries") == 0) {
			rc = get_int(l, v, k, 0, 10, &x);
			s->num_retries = (int)x;
		} else if (strcmp(k, "allowed_fails") == 0) {
			rc = get_int(l, v, k, 1, 16, &x);
			s->allowed_fails = (int)x;
		} else if (strcmp(k, "retry_after_max") == 0) {
			rc = get_duration(l, v, k, &s->retry_after_max_ms);
		} else if (strcmp(k, "retry_backoff") == 0) {
			rc = get_duration(l, v, k, &s->retry_backoff_ms);
		} else if (strcmp(k, "cooldown_time") == 0) {
			rc = get_duration(l, v, k, &s->cooldown_ms);
		} else if (strcmp(k, "timeout") == 0) {
			rc = get_duration(l, v, k, &s->timeout_ms);
			if (rc == AAM_OK && s->timeout_ms == 0)
				rc = fail(l, v, "timeout: must be greater than 0");
		}
		/* fallbacks are read once every route is known (load_doc). */
	}
	return rc;
}

static int
load_doc(struct ld *l, const struct aam_yaml_node *root)
{
	struct gw_routes *t = l->t;
	int rc = check_keys(l, root, "routes file", K_TOP);
	if (rc != AAM_OK)
		return rc;
	const struct aam_yaml_node *ml = aam_yaml_map_get(root, "model_list");
	const struct aam_yaml_node *rs = aam_yaml_map_get(root, "router_settings");
	if (ml == NULL)
		return fail(l, root, "routes file: 'model_list' is required");
	if (ml->type != AAM_YAML_SEQ)
		return fail(l, ml, "model_list: expected a list");
	if (ml->n > GW_MAX_ROUTES)
		return fail(l, ml, "model_list: at most %d routes", GW_MAX_ROUTES);
	t->routes = calloc(ml->n > 0 ? ml->n : 1, sizeof(*t->routes));
	if (t->routes == NULL)
		return AAM_E_NOMEM;
	for (size_t i = 0; i < ml->n; i++) {
		rc = load_route(l, ml->items[i], &t->routes[t->nroutes]);
		t->nroutes++;
		if (rc != AAM_OK)
			return rc;
		for (size_t j = 0; j + 1 < t->nroutes; j++)
			if (strcmp(t->routes[j].name, t->routes[i].name) == 0)
				return fail(l, aam_yaml_map_get(ml->items[i], "model_name"),
				            "model_name: duplicate route '%s'", t->routes[i].name);
	}
	if (rs == NULL)
		return AAM_OK;
	if ((rc = load_settings(l, rs)) != AAM_OK)
		return rc;
	const struct aam_yaml_node *fb = aam_yaml_map_get(rs, "fallbacks");
	const struct aam_yaml_node *cw = aam_yaml_map_get(rs, "context_window_fallbacks");
	if (fb != NULL && (rc = load_fallbacks(l, fb, "fallbacks", false)) != AAM_OK)
		return rc;
	if (cw != NULL && (rc = load_fallbacks(l, cw, "context_window_fallbacks", true)) != AAM_OK)
		return rc;
	return AAM_OK;
}

static struct gw_routes *
table_new(void)
{
	struct gw_routes *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	atomic_init(&t->refs, 1);
	t->settings = (struct gw_settings){
	        .strategy = GW_STRATEGY_SIMPLE_SHUFFLE,
	        .num_retries = GW_DEFAULT_NUM_RETRIES,
	        .retry_after_max_ms = GW_DEFAULT_RETRY_AFTER_MAX,
	        .retry_backoff_ms = GW_DEFAULT_RETRY_BACKOFF,
	        .allowed_fails = GW_DEFAULT_ALLOWED_FAILS,
	        .cooldown_ms = GW_DEFAULT_COOLDOWN,
	        .timeout_ms = GW_DEFAULT_TIMEOUT,
	};
	return t;
}

static void
free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void
table_free(struct gw_routes *t)
{
	for (size_t i = 0; i < t->nroutes; i++) {
		struct gw_route *r = &t->routes[i];
		for (size_t j = 0; r->deps != NULL && j < r->ndeps; j++) {
			struct gw_deployment *d = &r->deps[j];
			free(d->id);
			free(d->provider);
			free(d->model);
			free(d->api_base);
			free(d->api_version);
			free(d->credential);
			free(d->region);
		}
		free(r->deps);
		for (size_t j = 0; r->state != NULL && j < r->ndeps; j++)
			state_unref(r->state[j]);
		free(r->state);
		free_list(r->dep_ids, r->dep_ids != NULL ? r->ndeps : 0);
		free(r->name);
		free_list(r->fallbacks, r->nfallbacks);
		free_list(r->cw_fallbacks, r->ncw_fallbacks);
	}
	free(t->routes);
	free(t);
}

static int
finish(struct ld *l, aam_yaml_stream *s, int rc, struct gw_routes **out, char *err, size_t errlen)
{
	if (rc == AAM_OK && aam_yaml_stream_count(s) != 1) {
		snprintf(l->err.file, sizeof(l->err.file), "%s", l->file);
		l->err.line = l->err.col = 0;
		snprintf(l->err.msg, sizeof(l->err.msg), "expected exactly one YAML document");
		rc = AAM_E_CONFIG;
	}
	if (rc == AAM_OK) {
		const struct aam_yaml_node *root = aam_yaml_stream_doc(s, 0);
		l->t = table_new();
		rc = l->t == NULL ? AAM_E_NOMEM : load_doc(l, root);
	}
	if (rc != AAM_OK) {
		if (err != NULL && errlen > 0) {
			if (l->err.msg[0] != '\0')
				aam_yaml_error_format(&l->err, err, errlen);
			else
				snprintf(err, errlen, "%s: %s", l->file, aam_strerror(rc));
		}
		if (l->t != NULL)
			table_free(l->t);
		aam_yaml_stream_free(s);
		/* A YAML syntax error is a configuration error to our callers. */
		return rc == AAM_E_NOMEM ? rc : AAM_E_CONFIG;
	}
	aam_yaml_stream_free(s);
	*out = l->t;
	return AAM_OK;
}

int
gw_routes_load(const char *path, struct gw_routes **out, char *err, size_t errlen)
{
	if (path == NULL || out == NULL)
		return AAM_E_INVAL;
	struct ld l;
	memset(&l, 0, sizeof(l));
	l.file = path;
	aam_yaml_stream *s = NULL;
	int rc = aam_yaml_parse_file(path, NULL, &s, &l.err);
	return finish(&l, s, rc, out, err, errlen);
}

int
gw_routes_parse(const char *name, const void *data, size_t len, struct gw_routes **out, char *err,
                size_t errlen)
{
	if (name == NULL || data == NULL || out == NULL)
		return AAM_E_INVAL;
	struct ld l;
	memset(&l, 0, sizeof(l));
	l.file = name;
	aam_yaml_stream *s = NULL;
	int rc = aam_yaml_parse(name, data, len, NULL, &s, &l.err);
	return finish(&l, s, rc, out, err, errlen);
}

void
gw_routes_ref(struct gw_routes *t)
{
	atomic_fetch_add(&t->refs, 1);
}

void
gw_routes_unref(struct gw_routes *t)
{
	if (t != NULL && atomic_fetch_sub(&t->refs, 1) == 1)
		table_free(t);
}

const struct gw_route *
gw_routes_find(const struct gw_routes *t, const char *name)
{
	for (size_t i = 0; name != NULL && i < t->nroutes; i++)
		if (t->routes[i].name != NULL && strcmp(t->routes[i].name, name) == 0)
			return &t->routes[i];
	return NULL;
}

static bool
same_str(const char *a, const char *b)
{
	return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

/*
 * The stable identity of deployment I of route A and J of route B
 * (docs/ROUTING.md, "Reloads"): the `id` key when either has one, else
 * what makes it the same upstream account.
 */
static bool
same_deployment(const struct gw_route *a, size_t i, const struct gw_route *b, size_t j)
{
	if (a->dep_ids[i] != NULL || b->dep_ids[j] != NULL)
		return same_str(a->dep_ids[i], b->dep_ids[j]);
	const struct gw_deployment *x = &a->deps[i], *y = &b->deps[j];
	return same_str(x->provider, y->provider) && same_str(x->model, y->model) &&
	       same_str(x->api_base, y->api_base) && same_str(x->credential, y->credential);
}

size_t
gw_routes_adopt_state(struct gw_routes *t, const struct gw_routes *old)
{
	size_t kept = 0;
	if (t == NULL || old == NULL)
		return 0;
	for (size_t i = 0; i < t->nroutes; i++) {
		struct gw_route *r = &t->routes[i];
		const struct gw_route *o = gw_routes_find(old, r->name);
		if (o == NULL)
			continue;
		uint64_t taken = 0; /* old deployments already matched (at most 64) */
		for (size_t j = 0; j < r->ndeps; j++) {
			for (size_t k = 0; k < o->ndeps; k++) {
				if ((taken & (UINT64_C(1) << k)) != 0 ||
				    !same_deployment(r, j, o, k))
					continue;
				taken |= UINT64_C(1) << k;
				atomic_fetch_add(&o->state[k]->refs, 1);
				state_unref(r->state[j]);
				r->state[j] = o->state[k];
				kept++;
				break;
			}
		}
	}
	return kept;
}

const char *
gw_strategy_name(enum gw_strategy s)
{
	switch (s) {
	case GW_STRATEGY_SIMPLE_SHUFFLE:
		return "simple-shuffle";
	case GW_STRATEGY_LEAST_BUSY:
		return "least-busy";
	case GW_STRATEGY_LATENCY:
		return "latency-based";
	case GW_STRATEGY_USAGE:
		return "usage-based";
	case GW_STRATEGY_COST:
		return "cost-based";
	}
	return "?";
}
