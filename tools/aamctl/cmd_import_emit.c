/*
 * The output side of `aamctl import litellm`: AAM's routes file
 * (gateway/route.h, docs/ROUTING.md) from the imported routes, and
 * router_settings with LiteLLM's names mapped to AAM's.  Strings are
 * written as double-quoted scalars, so nothing in a LiteLLM file can
 * change the structure of the output.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aam/err.h"
#include "common/buf.h"
#include "common/yaml.h"
#include "tools/aamctl/cmd_import_int.h"

/* A YAML double-quoted scalar: JSON string syntax is valid YAML. */
static void
q(struct aam_buf *b, const char *s)
{
	aam_buf_append_byte(b, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			aam_buf_printf(b, "\\%c", *p);
		else if (*p < 0x20)
			aam_buf_printf(b, "\\x%02x", *p);
		else
			aam_buf_append_byte(b, *p);
	}
	aam_buf_append_byte(b, '"');
}

static void
duration(struct aam_buf *b, int64_t ms)
{
	if (ms % 1000 == 0)
		aam_buf_printf(b, "%llds", (long long)(ms / 1000));
	else
		aam_buf_printf(b, "%lldms", (long long)ms);
}

static bool
route_defined(const struct imp *im, const char *name)
{
	for (size_t i = 0; i < im->nroutes; i++)
		if (strcmp(im->routes[i].name, name) == 0 && im->routes[i].ndeps > 0)
			return true;
	return false;
}

/* fallbacks / context_window_fallbacks: [ {route: [a, b]}, ... ], undefined names dropped. */
static int
emit_fallbacks(struct imp *im, const struct aam_yaml_node *n, const char *key, struct aam_buf *b)
{
	if (n->type != AAM_YAML_SEQ)
		return import_error_at(im, n, "%s: expected a list of {route: [fallback, ...]}",
		                       key);
	struct aam_buf out;
	aam_buf_init(&out, AAM_BUF_DEFAULT_MAX);
	size_t kept = 0;
	for (size_t i = 0; i < n->n; i++) {
		const struct aam_yaml_node *m = n->items[i];
		if (m->type != AAM_YAML_MAP) {
			aam_buf_uninit(&out);
			return import_error_at(
			        im, m, "%s: expected a mapping {route: [fallback, ...]}", key);
		}
		for (size_t j = 0; j < m->n; j++) {
			const char *from = m->keys[j]->str;
			const struct aam_yaml_node *v = m->items[j];
			if (!route_defined(im, from)) {
				import_warn(im, m->keys[j],
				            "%s: route '%s' is not defined; entry removed", key,
				            from);
				continue;
			}
			if (v->type != AAM_YAML_SEQ) {
				aam_buf_uninit(&out);
				return import_error_at(im, v, "%s: expected a list of route names",
				                       key);
			}
			struct aam_buf list;
			aam_buf_init(&list, AAM_BUF_DEFAULT_MAX);
			size_t nl = 0;
			for (size_t f = 0; f < v->n; f++) {
				const char *to;
				if (import_get_str(im, v->items[f], &to) != AAM_OK) {
					aam_buf_uninit(&list);
					aam_buf_uninit(&out);
					return AAM_E_CONFIG;
				}
				if (!route_defined(im, to)) {
					import_warn(im, v->items[f],
					            "fallback to undefined route '%s' (from '%s') "
					            "removed",
					            to, from);
					continue;
				}
				if (strcmp(to, from) == 0) {
					import_warn(im, v->items[f],
					            "route '%s' falls back to itself; removed", to);
					continue;
				}
				aam_buf_append_str(&list, nl++ > 0 ? ", " : "");
				q(&list, to);
			}
			if (nl > 0) {
				aam_buf_append_str(&out, "    - { ");
				q(&out, from);
				aam_buf_printf(&out, ": [%s] }\n", aam_buf_cstr(&list));
				kept++;
			}
			aam_buf_uninit(&list);
		}
	}
	if (kept > 0) {
		aam_buf_printf(b, "  %s:\n", key);
		aam_buf_append(b, out.data, out.len);
	}
	aam_buf_uninit(&out);
	return AAM_OK;
}

static const struct {
	const char *litellm, *aam;
} STRATEGIES[] = {
        {"simple-shuffle", "simple-shuffle"},       {"least-busy", "least-busy"},
        {"latency-based-routing", "latency-based"}, {"usage-based-routing", "usage-based"},
        {"usage-based-routing-v2", "usage-based"},  {"cost-based-routing", "cost-based"},
};

int
import_emit_settings(struct imp *im, const struct aam_yaml_node *rs, struct aam_buf *b)
{
	if (rs->type != AAM_YAML_MAP)
		return import_error_at(im, rs, "router_settings: expected a mapping");
	struct aam_buf s;
	aam_buf_init(&s, AAM_BUF_DEFAULT_MAX);
	int rc = AAM_OK;
	for (size_t i = 0; rc == AAM_OK && i < rs->n; i++) {
		const char *k = rs->keys[i]->str;
		const struct aam_yaml_node *v = rs->items[i];
		char path[160];
		int64_t x = 0;
		if (strcmp(k, "routing_strategy") == 0) {
			const char *name;
			rc = import_get_str(im, v, &name);
			const char *aam = NULL;
			for (size_t j = 0;
			     rc == AAM_OK && j < sizeof(STRATEGIES) / sizeof(STRATEGIES[0]); j++)
				if (strcmp(name, STRATEGIES[j].litellm) == 0)
					aam = STRATEGIES[j].aam;
			if (rc == AAM_OK && aam == NULL) {
				snprintf(path, sizeof(path), "router_settings.routing_strategy=%s",
				         name);
				import_unsupported(im, path, v);
			} else if (rc == AAM_OK) {
				aam_buf_printf(&s, "  routing_strategy: %s\n", aam);
			}
		} else if (strcmp(k, "fallbacks") == 0 ||
		           strcmp(k, "context_window_fallbacks") == 0) {
			rc = emit_fallbacks(im, v, k, &s);
		} else if (strcmp(k, "num_retries") == 0 || strcmp(k, "allowed_fails") == 0) {
			rc = import_get_int(im, v, &x);
			if (rc == AAM_OK)
				aam_buf_printf(&s, "  %s: %lld\n", k, (long long)x);
		} else if (strcmp(k, "cooldown_time") == 0 || strcmp(k, "timeout") == 0 ||
		           strcmp(k, "retry_after") == 0) {
			rc = import_get_seconds_ms(im, v, &x);
			if (rc == AAM_OK) {
				aam_buf_printf(&s, "  %s: ",
				               strcmp(k, "retry_after") == 0 ? "retry_backoff" : k);
				duration(&s, x);
				aam_buf_append_byte(&s, '\n');
			}
		} else {
			snprintf(path, sizeof(path), "router_settings.%s", k);
			import_unsupported(im, path, rs->keys[i]);
		}
	}
	if (rc == AAM_OK && s.len > 0) {
		aam_buf_append_str(b, "router_settings:\n");
		aam_buf_append(b, s.data, s.len);
	}
	aam_buf_uninit(&s);
	return rc;
}

void
import_emit_routes(const struct imp *im, struct aam_buf *b)
{
	aam_buf_append_str(b, "model_list:\n");
	for (size_t i = 0; i < im->nroutes; i++) {
		const struct route *r = &im->routes[i];
		if (r->ndeps == 0)
			continue;
		aam_buf_append_str(b, "  - model_name: ");
		q(b, r->name);
		aam_buf_append_byte(b, '\n');
		if (r->max_output > 0)
			aam_buf_printf(b, "    max_output_tokens: %lld\n",
			               (long long)r->max_output);
		aam_buf_append_str(b, "    deployments:\n");
		for (size_t j = 0; j < r->ndeps; j++) {
			const struct dep *d = &r->deps[j];
			if (d->id != NULL) {
				aam_buf_append_str(b, "      - id: ");
				q(b, d->id);
				aam_buf_printf(
				        b, "\n        provider: %s\n        model: ", d->provider);
			} else {
				aam_buf_printf(
				        b, "      - provider: %s\n        model: ", d->provider);
			}
			q(b, d->model);
			aam_buf_append_str(b, "\n        api_base: ");
			q(b, d->api_base);
			aam_buf_append_byte(b, '\n');
			if (d->api_version != NULL) {
				aam_buf_append_str(b, "        api_version: ");
				q(b, d->api_version);
				aam_buf_append_byte(b, '\n');
			}
			if (d->credential[0] != '\0') {
				aam_buf_append_str(b, "        credential: ");
				q(b, d->credential);
				aam_buf_append_byte(b, '\n');
			}
			if (d->region != NULL) {
				aam_buf_append_str(b, "        region: ");
				q(b, d->region);
				aam_buf_append_byte(b, '\n');
			}
			if (d->rpm > 0)
				aam_buf_printf(b, "        rpm: %lld\n", (long long)d->rpm);
			if (d->tpm > 0)
				aam_buf_printf(b, "        tpm: %lld\n", (long long)d->tpm);
			if (d->weight != 1)
				aam_buf_printf(b, "        weight: %.17g\n", d->weight);
			if (d->timeout_ms > 0) {
				aam_buf_append_str(b, "        timeout: ");
				duration(b, d->timeout_ms);
				aam_buf_append_byte(b, '\n');
			}
			if (d->max_context > 0)
				aam_buf_printf(b, "        max_context: %lld\n",
				               (long long)d->max_context);
			if (d->has_cin || d->has_cout || d->has_ccached) {
				const char *sep = "";
				aam_buf_append_str(b, "        cost: { ");
				if (d->has_cin) {
					aam_buf_printf(b, "input_per_mtok: %.10g", d->cin);
					sep = ", ";
				}
				if (d->has_cout) {
					aam_buf_printf(b, "%soutput_per_mtok: %.10g", sep, d->cout);
					sep = ", ";
				}
				if (d->has_ccached)
					aam_buf_printf(b, "%scached_input_per_mtok: %.10g", sep,
					               d->ccached);
				aam_buf_append_str(b, " }\n");
			}
		}
	}
}

int
import_write_file(const char *path, const struct aam_buf *b)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp))
		return AAM_E_INVAL;
	FILE *f = fopen(tmp, "wx");
	if (f == NULL)
		return AAM_E_IO;
	bool ok = fwrite(b->data, 1, b->len, f) == b->len;
	ok = fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
	ok = fclose(f) == 0 && ok;
	if (ok)
		ok = chmod(tmp, 0644) == 0 && rename(tmp, path) == 0;
	if (!ok)
		unlink(tmp);
	return ok ? AAM_OK : AAM_E_IO;
}
