/*
 * aamctl import litellm CONFIG.yaml [--out ROUTES.yaml] [--dry-run] [--no-secrets]
 * aamctl import litellm-keys FILE --workload-prefix spiffe://TD/ns/NS/sa/ ...
 *
 * `import litellm` converts LiteLLM's proxy config (model_list,
 * router_settings) into AAM's routes file (gateway/route.h) and moves
 * every provider key it names into aam-vault (cmd_import_vault.c).  What
 * AAM does not support is listed with its position, never dropped
 * silently; a fallback to an undefined route is reported and left out.
 * The mapping is documented in docs/MIGRATING-FROM-LITELLM.md.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aam/err.h"
#include "common/buf.h"
#include "common/yaml.h"
#include "tools/aamctl/aamctl.h"
#include "tools/aamctl/cmd_import.h"
#include "tools/aamctl/cmd_import_int.h"

static const char import_usage[] =
        "usage: aamctl import litellm CONFIG.yaml [--out ROUTES.yaml] [--dry-run] "
        "[--no-secrets]\n"
        "       aamctl import litellm-keys FILE --workload-prefix spiffe://TD/PATH/ "
        "[--default-owner O] [--db PATH]\n"
        "Without --out the routes file goes to standard output.  --dry-run writes nothing\n"
        "(no file, no vault).  --no-secrets skips the vault writes.\n";

void
import_unsupported(struct imp *im, const char *path, const struct aam_yaml_node *n)
{
	fprintf(stderr, "unsupported: %s (%u:%u)\n", path, n->line, n->col);
	aam_buf_printf(&im->unsup, "  %s (%u:%u)\n", path, n->line, n->col);
	im->nunsup++;
}

void
import_warn(struct imp *im, const struct aam_yaml_node *n, const char *fmt, ...)
{
	fprintf(stderr, "warning: %s:%u:%u: ", im->file, n != NULL ? n->line : 0,
	        n != NULL ? n->col : 0);
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	im->nwarn++;
}

int
import_error_at(struct imp *im, const struct aam_yaml_node *n, const char *fmt, ...)
{
	fprintf(stderr, "error: %s:%u:%u: ", im->file, n != NULL ? n->line : 0,
	        n != NULL ? n->col : 0);
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	im->nerr++;
	return AAM_E_CONFIG;
}

int
import_get_str(struct imp *im, const struct aam_yaml_node *n, const char **out)
{
	struct aam_yaml_error e;
	if (aam_yaml_get_str(n, im->file, out, &e) != AAM_OK) {
		char buf[600];
		aam_yaml_error_format(&e, buf, sizeof(buf));
		fprintf(stderr, "error: %s\n", buf);
		im->nerr++;
		return AAM_E_CONFIG;
	}
	return AAM_OK;
}

int
import_get_num(struct imp *im, const struct aam_yaml_node *n, double *out)
{
	struct aam_yaml_error e;
	if (aam_yaml_get_double(n, im->file, out, &e) != AAM_OK || !__builtin_isfinite(*out) ||
	    *out < 0) {
		return import_error_at(im, n, "expected a non-negative number");
	}
	return AAM_OK;
}

int
import_get_int(struct imp *im, const struct aam_yaml_node *n, int64_t *out)
{
	double d;
	int rc = import_get_num(im, n, &d);
	if (rc == AAM_OK && (d > 1e15 || (double)(int64_t)d != d))
		return import_error_at(im, n, "expected a whole number");
	*out = (int64_t)d;
	return rc;
}

/* LiteLLM durations are seconds (numbers); AAM's are "30s" / "1500ms". */
int
import_get_seconds_ms(struct imp *im, const struct aam_yaml_node *n, int64_t *ms)
{
	double s;
	int rc = import_get_num(im, n, &s);
	if (rc != AAM_OK)
		return rc;
	if (s > 86400)
		return import_error_at(im, n, "at most 86400 seconds are supported");
	*ms = (int64_t)(s * 1000 + 0.5);
	return AAM_OK;
}

/* Vault secret names: [A-Za-z0-9._-], starting with a letter or digit. */
static void
sanitize(const char *in, char *out, size_t outlen)
{
	size_t j = 0;
	for (size_t i = 0; in[i] != '\0' && j + 1 < outlen; i++) {
		unsigned char c = (unsigned char)in[i];
		out[j++] = (char)(isalnum(c) || c == '.' || c == '_' || c == '-' ? c : '-');
	}
	out[j] = '\0';
	if (j == 0 || !isalnum((unsigned char)out[0]))
		snprintf(out, outlen, "r%s", in[0] != '\0' ? "-route" : "");
}

static bool
strip_suffix(char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	if (n >= m && strcmp(s + n - m, suffix) == 0) {
		s[n - m] = '\0';
		return true;
	}
	return false;
}

/* "os.environ/NAME" -> NAME, or NULL for a literal value. */
static const char *
env_ref(const char *v)
{
	static const char pfx[] = "os.environ/";
	return strncmp(v, pfx, sizeof(pfx) - 1) == 0 ? v + sizeof(pfx) - 1 : NULL;
}

struct params {
	const struct aam_yaml_node *model, *api_base, *api_version, *api_key, *aws_id, *aws_secret,
	        *region;
};

/* Adds (or reuses) the vault credential of deployment D. */
static int
plan_credential(struct imp *im, const char *route, struct dep *d, const struct params *p)
{
	struct import_cred cr;
	memset(&cr, 0, sizeof(cr));
	const struct aam_yaml_node *src = p->api_key;
	const char *dflt_env = NULL;
	if (strcmp(d->provider, "bedrock") == 0) {
		snprintf(cr.type, sizeof(cr.type), "aws-sigv4");
		snprintf(cr.aws_region, sizeof(cr.aws_region), "%s",
		         d->region != NULL ? d->region : "us-east-1");
		src = p->aws_secret;
		dflt_env = "AWS_SECRET_ACCESS_KEY";
		const char *id = NULL;
		if (p->aws_id != NULL && import_get_str(im, p->aws_id, &id) != AAM_OK)
			return AAM_E_CONFIG;
		const char *idenv = id != NULL ? env_ref(id) : "AWS_ACCESS_KEY_ID";
		if (idenv != NULL)
			snprintf(cr.aws_id_env, sizeof(cr.aws_id_env), "%s", idenv);
		else
			cr.aws_id_literal = id; /* an access key id is not secret */
	} else if (strcmp(d->provider, "azure") == 0) {
		snprintf(cr.type, sizeof(cr.type), "header");
		snprintf(cr.header, sizeof(cr.header), "api-key");
		dflt_env = "AZURE_API_KEY";
	} else if (strcmp(d->provider, "anthropic") == 0) {
		snprintf(cr.type, sizeof(cr.type), "header");
		snprintf(cr.header, sizeof(cr.header), "x-api-key");
		dflt_env = "ANTHROPIC_API_KEY";
	} else {
		snprintf(cr.type, sizeof(cr.type), "bearer");
		dflt_env = strcmp(d->provider, "openai") == 0 ? "OPENAI_API_KEY" : NULL;
	}
	if (src != NULL) {
		const char *v;
		if (import_get_str(im, src, &v) != AAM_OK)
			return AAM_E_CONFIG;
		const char *env = env_ref(v);
		if (env != NULL) {
			snprintf(cr.env, sizeof(cr.env), "%s", env);
		} else {
			cr.literal = v;
			import_warn(
			        im, src,
			        "a literal key is written in the LiteLLM file; it is imported into "
			        "the "
			        "vault (never into the routes file): remove it from the file and "
			        "rotate "
			        "it");
		}
		cr.line = src->line;
		cr.col = src->col;
	} else if (dflt_env != NULL) {
		/* LiteLLM falls back to the provider's usual variable. */
		snprintf(cr.env, sizeof(cr.env), "%s", dflt_env);
		fprintf(stderr,
		        "note: route %s: no api_key given; LiteLLM would use %s, imported from "
		        "it\n",
		        route, dflt_env);
	} else {
		return AAM_OK; /* a local OpenAI-compatible server without a key */
	}
	snprintf(cr.binding, sizeof(cr.binding), "%s", d->api_base);
	char base[100];
	sanitize(route, base, sizeof(base));
	snprintf(cr.name, sizeof(cr.name), "%s-%s-key", base, d->provider);
	/* The same name for another source or binding gets -2, -3, ... */
	for (unsigned k = 2;; k++) {
		struct import_cred *same = NULL;
		for (size_t i = 0; i < im->ncreds && same == NULL; i++)
			if (strcmp(im->creds[i].name, cr.name) == 0)
				same = &im->creds[i];
		if (same == NULL)
			break;
		bool src_eq = (same->literal != NULL && cr.literal != NULL &&
		               strcmp(same->literal, cr.literal) == 0) ||
		              (same->literal == NULL && cr.literal == NULL &&
		               strcmp(same->env, cr.env) == 0);
		if (src_eq && strcmp(same->binding, cr.binding) == 0 &&
		    strcmp(same->type, cr.type) == 0 &&
		    strcmp(same->aws_id_env, cr.aws_id_env) == 0) {
			snprintf(d->credential, sizeof(d->credential), "%s", same->name);
			return AAM_OK;
		}
		snprintf(cr.name, sizeof(cr.name), "%s-%s-%u-key", base, d->provider, k);
	}
	if (im->read_env && cr.env[0] != '\0' && getenv(cr.env) == NULL) {
		fprintf(stderr, "error: %s: route %s: environment variable %s is not set\n",
		        im->file, route, cr.env);
		im->nerr++;
		return AAM_E_NOTFOUND;
	}
	struct import_cred *grown = realloc(im->creds, (im->ncreds + 1) * sizeof(*grown));
	if (grown == NULL)
		return AAM_E_NOMEM;
	im->creds = grown;
	im->creds[im->ncreds++] = cr;
	snprintf(d->credential, sizeof(d->credential), "%s", cr.name);
	return AAM_OK;
}

/* model: "provider/model" -> AAM provider, upstream model and default api_base. */
static int
map_model(struct imp *im, const struct aam_yaml_node *node, const char *m, bool custom_base,
          struct dep *d, const char **dflt_base)
{
	const char *slash = strchr(m, '/');
	char pfx[64] = "";
	const char *rest = m;
	if (slash != NULL && (size_t)(slash - m) < sizeof(pfx)) {
		memcpy(pfx, m, (size_t)(slash - m));
		pfx[slash - m] = '\0';
		rest = slash + 1;
	} else if (strncmp(m, "claude", 6) == 0) {
		snprintf(pfx, sizeof(pfx), "anthropic");
	} else if (strncmp(m, "gpt-", 4) == 0 || strncmp(m, "o1", 2) == 0 ||
	           strncmp(m, "o3", 2) == 0 || strncmp(m, "text-embedding", 14) == 0) {
		snprintf(pfx, sizeof(pfx), "openai");
	}
	*dflt_base = NULL;
	if (strcmp(pfx, "openai") == 0 || strcmp(pfx, "text-completion-openai") == 0) {
		d->provider = custom_base ? "openai-compatible" : "openai";
		*dflt_base = "https://api.openai.com";
	} else if (strcmp(pfx, "anthropic") == 0) {
		d->provider = "anthropic";
		*dflt_base = "https://api.anthropic.com";
	} else if (strcmp(pfx, "azure") == 0) {
		d->provider = "azure";
	} else if (strcmp(pfx, "bedrock") == 0) {
		d->provider = "bedrock";
		/* bedrock/converse/... and bedrock/invoke/... name the API; AAM speaks invoke. */
		if (strncmp(rest, "invoke/", 7) == 0)
			rest += 7;
		const char *id = rest;
		const char *dot = strchr(id, '.');
		/* Cross-region profiles ("us.anthropic....") keep their prefix. */
		bool anth =
		        strncmp(id, "anthropic.", 10) == 0 ||
		        (dot != NULL && dot - id <= 4 && strncmp(dot + 1, "anthropic.", 10) == 0);
		if (!anth || strncmp(rest, "converse/", 9) == 0) {
			import_warn(
			        im, node,
			        "bedrock model %s: only Anthropic models through InvokeModel are "
			        "supported; deployment skipped",
			        m);
			return AAM_E_UNSUPPORTED;
		}
	} else if (strcmp(pfx, "hosted_vllm") == 0 || strcmp(pfx, "litellm_proxy") == 0) {
		d->provider = "openai-compatible";
	} else if (strcmp(pfx, "ollama") == 0 || strcmp(pfx, "ollama_chat") == 0) {
		d->provider = "openai-compatible";
		*dflt_base = "http://localhost:11434";
	} else {
		import_warn(im, node,
		            "model %s: provider '%s' is not supported; deployment skipped", m,
		            pfx[0] != '\0' ? pfx : "(none)");
		return AAM_E_UNSUPPORTED;
	}
	snprintf(d->model, sizeof(d->model), "%s", rest);
	return AAM_OK;
}

static const char *const LP_KEYS[] = {"model",
                                      "api_base",
                                      "base_url",
                                      "api_version",
                                      "api_key",
                                      "rpm",
                                      "tpm",
                                      "timeout",
                                      "weight",
                                      "region_name",
                                      "aws_region_name",
                                      "aws_access_key_id",
                                      "aws_secret_access_key",
                                      NULL};

static bool
in_list(const char *k, const char *const *list)
{
	for (size_t i = 0; list[i] != NULL; i++)
		if (strcmp(k, list[i]) == 0)
			return true;
	return false;
}

static struct route *
route_get(struct imp *im, const char *name)
{
	for (size_t i = 0; i < im->nroutes; i++)
		if (strcmp(im->routes[i].name, name) == 0)
			return &im->routes[i];
	if (im->nroutes == MAX_ROUTES)
		return NULL;
	struct route *r = &im->routes[im->nroutes++];
	memset(r, 0, sizeof(*r));
	r->name = name;
	return r;
}

static int
load_entry(struct imp *im, const struct aam_yaml_node *e, size_t idx)
{
	char path[256];
	if (e->type != AAM_YAML_MAP)
		return import_error_at(im, e, "model_list entry: expected a mapping");
	const struct aam_yaml_node *mn = aam_yaml_map_get(e, "model_name");
	const struct aam_yaml_node *lp = aam_yaml_map_get(e, "litellm_params");
	const struct aam_yaml_node *mi = aam_yaml_map_get(e, "model_info");
	if (mn == NULL || lp == NULL || lp->type != AAM_YAML_MAP)
		return import_error_at(
		        im, e, "model_list entry: model_name and litellm_params are required%s",
		        "");
	for (size_t i = 0; i < e->n; i++) {
		const char *k = e->keys[i]->str;
		if (strcmp(k, "model_name") != 0 && strcmp(k, "litellm_params") != 0 &&
		    strcmp(k, "model_info") != 0) {
			snprintf(path, sizeof(path), "model_list[%zu].%s", idx, k);
			import_unsupported(im, path, e->keys[i]);
		}
	}
	const char *name;
	if (import_get_str(im, mn, &name) != AAM_OK)
		return AAM_E_CONFIG;
	if (*name == '\0' || strlen(name) >= 128)
		return import_error_at(im, mn, "model_name: 1 to 127 bytes");
	struct dep d;
	memset(&d, 0, sizeof(d));
	d.weight = 1;
	struct params p;
	memset(&p, 0, sizeof(p));
	int rc = AAM_OK;
	for (size_t i = 0; rc == AAM_OK && i < lp->n; i++) {
		const char *k = lp->keys[i]->str;
		const struct aam_yaml_node *v = lp->items[i];
		if (!in_list(k, LP_KEYS)) {
			snprintf(path, sizeof(path), "model_list[%zu].litellm_params.%s", idx, k);
			import_unsupported(im, path, lp->keys[i]);
		} else if (strcmp(k, "model") == 0) {
			p.model = v;
		} else if (strcmp(k, "api_base") == 0 || strcmp(k, "base_url") == 0) {
			p.api_base = v;
		} else if (strcmp(k, "api_version") == 0) {
			p.api_version = v;
		} else if (strcmp(k, "api_key") == 0) {
			p.api_key = v;
		} else if (strcmp(k, "aws_access_key_id") == 0) {
			p.aws_id = v;
		} else if (strcmp(k, "aws_secret_access_key") == 0) {
			p.aws_secret = v;
		} else if (strcmp(k, "region_name") == 0 || strcmp(k, "aws_region_name") == 0) {
			p.region = v;
		} else if (strcmp(k, "rpm") == 0) {
			rc = import_get_int(im, v, &d.rpm);
		} else if (strcmp(k, "tpm") == 0) {
			rc = import_get_int(im, v, &d.tpm);
		} else if (strcmp(k, "timeout") == 0) {
			rc = import_get_seconds_ms(im, v, &d.timeout_ms);
		} else {
			rc = import_get_num(im, v, &d.weight);
			if (rc == AAM_OK && !(d.weight > 0))
				rc = import_error_at(im, v, "weight: must be greater than 0");
		}
	}
	if (rc != AAM_OK)
		return rc;
	if (p.model == NULL)
		return import_error_at(im, lp, "litellm_params.model is required");
	const char *model, *base = NULL, *dflt_base;
	if (import_get_str(im, p.model, &model) != AAM_OK ||
	    (p.api_base != NULL && import_get_str(im, p.api_base, &base) != AAM_OK) ||
	    (p.api_version != NULL &&
	     import_get_str(im, p.api_version, &d.api_version) != AAM_OK) ||
	    (p.region != NULL && import_get_str(im, p.region, &d.region) != AAM_OK))
		return AAM_E_CONFIG;
	bool custom = base != NULL && strstr(base, "://api.openai.com") == NULL;
	rc = map_model(im, p.model, model, custom, &d, &dflt_base);
	if (rc == AAM_E_UNSUPPORTED) {
		snprintf(path, sizeof(path), "model_list[%zu].litellm_params.model", idx);
		import_unsupported(im, path, p.model);
		return AAM_OK;
	}
	/* Key parameters the provider does not use are reported, not ignored. */
	bool br = strcmp(d.provider, "bedrock") == 0;
	const struct {
		const struct aam_yaml_node *n;
		const char *name;
		bool unused;
	} unused[] = {{p.api_key, "api_key", br},
	              {p.aws_id, "aws_access_key_id", !br},
	              {p.aws_secret, "aws_secret_access_key", !br}};
	for (size_t i = 0; i < sizeof(unused) / sizeof(unused[0]); i++)
		if (unused[i].n != NULL && unused[i].unused) {
			snprintf(path, sizeof(path), "model_list[%zu].litellm_params.%s", idx,
			         unused[i].name);
			import_unsupported(im, path, unused[i].n);
		}
	if (br) {
		const char *region = d.region != NULL ? d.region : "us-east-1";
		if (d.region == NULL)
			import_warn(im, p.model,
			            "bedrock deployment without aws_region_name: %s assumed%s",
			            region, "");
		d.region = region;
		snprintf(d.api_base, sizeof(d.api_base), "https://bedrock-runtime.%s.amazonaws.com",
		         region);
		if (base != NULL)
			snprintf(d.api_base, sizeof(d.api_base), "%s", base);
	} else if (base != NULL) {
		snprintf(d.api_base, sizeof(d.api_base), "%s", base);
	} else if (dflt_base != NULL) {
		snprintf(d.api_base, sizeof(d.api_base), "%s", dflt_base);
	} else {
		return import_error_at(im, p.model,
		                       "model %s: api_base is required for this provider", model);
	}
	if (strncmp(d.api_base, "https://", 8) != 0 && strncmp(d.api_base, "http://", 7) != 0)
		return import_error_at(im, p.api_base,
		                       "api_base: expected an http:// or https:// URL");
	while (strip_suffix(d.api_base, "/"))
		;
	if (strcmp(d.provider, "azure") == 0 && d.api_version == NULL) {
		d.api_version = "2024-02-01";
		import_warn(im, p.model, "azure deployment without api_version: %s assumed",
		            d.api_version);
	}
	if (mi != NULL && mi->type == AAM_YAML_MAP) {
		struct route *r0 = NULL;
		for (size_t i = 0; rc == AAM_OK && i < mi->n; i++) {
			const char *k = mi->keys[i]->str;
			const struct aam_yaml_node *v = mi->items[i];
			double x = 0;
			if (strcmp(k, "input_cost_per_token") == 0) {
				rc = import_get_num(im, v, &x);
				d.cin = x * 1e6;
				d.has_cin = true;
			} else if (strcmp(k, "output_cost_per_token") == 0) {
				rc = import_get_num(im, v, &x);
				d.cout = x * 1e6;
				d.has_cout = true;
			} else if (strcmp(k, "cache_read_input_token_cost") == 0) {
				rc = import_get_num(im, v, &x);
				d.ccached = x * 1e6;
				d.has_ccached = true;
			} else if (strcmp(k, "id") == 0) {
				/* LiteLLM's deployment id keeps its state across reloads here too.
				 */
				rc = import_get_str(im, v, &d.id);
				if (rc == AAM_OK && (strlen(d.id) == 0 || strlen(d.id) > 127)) {
					import_warn(im, v,
					            "model_info.id of 0 or more than 127 bytes: "
					            "dropped");
					d.id = NULL;
				}
			} else if (strcmp(k, "max_input_tokens") == 0) {
				rc = import_get_int(im, v, &d.max_context);
			} else if (strcmp(k, "max_output_tokens") == 0) {
				int64_t mo = 0;
				rc = import_get_int(im, v, &mo);
				r0 = route_get(im, name);
				if (rc == AAM_OK && r0 != NULL && mo > 0 &&
				    (r0->max_output == 0 || mo < r0->max_output))
					r0->max_output = mo;
			} else {
				snprintf(path, sizeof(path), "model_list[%zu].model_info.%s", idx,
				         k);
				import_unsupported(im, path, mi->keys[i]);
			}
		}
		if (rc != AAM_OK)
			return rc;
	} else if (mi != NULL) {
		snprintf(path, sizeof(path), "model_list[%zu].model_info", idx);
		import_unsupported(im, path, mi);
	}
	struct route *r = route_get(im, name);
	if (r == NULL)
		return import_error_at(im, mn, "more than 256 routes");
	if (r->ndeps == MAX_DEPS)
		return import_error_at(im, mn, "route %s: more than 64 deployments", name);
	for (size_t i = 0; d.id != NULL && i < r->ndeps; i++)
		if (r->deps[i].id != NULL && strcmp(r->deps[i].id, d.id) == 0) {
			import_warn(im, p.model, "model_info.id '%s' repeats in route %s: dropped",
			            d.id, name);
			d.id = NULL;
		}
	rc = plan_credential(im, name, &d, &p);
	if (rc != AAM_OK)
		return rc;
	r->deps[r->ndeps++] = d;
	return AAM_OK;
}

static int
import_litellm(int argc, char **argv, const struct aam_cli *cli)
{
	const char *file = NULL, *out = NULL;
	bool dry = false, no_secrets = false;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
			out = argv[++i];
		else if (strcmp(argv[i], "--dry-run") == 0)
			dry = true;
		else if (strcmp(argv[i], "--no-secrets") == 0)
			no_secrets = true;
		else if (argv[i][0] != '-' && file == NULL)
			file = argv[i];
		else {
			fprintf(stderr, "aamctl import: unexpected argument '%s'\n%s", argv[i],
			        import_usage);
			return AAMCTL_EXIT_USAGE;
		}
	}
	if (file == NULL) {
		fputs(import_usage, stderr);
		return AAMCTL_EXIT_USAGE;
	}
	aam_yaml_stream *ys = NULL;
	struct aam_yaml_error ye;
	if (aam_yaml_parse_file(file, NULL, &ys, &ye) != AAM_OK) {
		char buf[600];
		aam_yaml_error_format(&ye, buf, sizeof(buf));
		fprintf(stderr, "error: %s\n", buf);
		return AAMCTL_EXIT_FAIL;
	}
	struct imp im = {.file = file, .read_env = !dry && !no_secrets};
	im.routes = calloc(MAX_ROUTES, sizeof(*im.routes));
	aam_buf_init(&im.unsup, AAM_BUF_DEFAULT_MAX);
	struct aam_buf b;
	aam_buf_init(&b, AAM_BUF_DEFAULT_MAX);
	int rc = im.routes != NULL ? AAM_OK : AAM_E_NOMEM;
	const struct aam_yaml_node *doc =
	        aam_yaml_stream_count(ys) == 1 ? aam_yaml_stream_doc(ys, 0) : NULL;
	if (rc == AAM_OK && (doc == NULL || doc->type != AAM_YAML_MAP)) {
		fprintf(stderr, "error: %s: expected one YAML document holding a mapping\n", file);
		rc = AAM_E_CONFIG;
	}
	const struct aam_yaml_node *ml = rc == AAM_OK ? aam_yaml_map_get(doc, "model_list") : NULL;
	if (rc == AAM_OK && (ml == NULL || ml->type != AAM_YAML_SEQ)) {
		fprintf(stderr, "error: %s: model_list (a list) is required\n", file);
		rc = AAM_E_CONFIG;
	}
	for (size_t i = 0; rc == AAM_OK && i < doc->n; i++) {
		const char *k = doc->keys[i]->str;
		const struct aam_yaml_node *v = doc->items[i];
		if (strcmp(k, "model_list") == 0 || strcmp(k, "router_settings") == 0)
			continue;
		/* Whole sections AAM has no equivalent for: list each setting. */
		if (v->type == AAM_YAML_MAP && v->n > 0) {
			for (size_t j = 0; j < v->n; j++) {
				char path[256];
				snprintf(path, sizeof(path), "%s.%s", k, v->keys[j]->str);
				import_unsupported(&im, path, v->keys[j]);
			}
		} else {
			import_unsupported(&im, k, doc->keys[i]);
		}
	}
	/* Every entry is read (and every problem reported) before stopping. */
	for (size_t i = 0; rc == AAM_OK && i < ml->n; i++)
		if (load_entry(&im, ml->items[i], i) == AAM_E_NOMEM)
			rc = AAM_E_NOMEM;
	size_t nroutes = 0;
	for (size_t i = 0; rc == AAM_OK && i < im.nroutes; i++) {
		if (im.routes[i].ndeps > 0)
			nroutes++;
		else
			import_warn(&im, ml, "route '%s' has no supported deployment; left out",
			            im.routes[i].name);
	}
	if (rc == AAM_OK) {
		aam_buf_printf(&b,
		               "# AAM routes file generated by `aamctl import litellm %s`.\n"
		               "# Credentials are vault secret names; no key is written here.\n",
		               file);
		import_emit_routes(&im, &b);
		const struct aam_yaml_node *rs = aam_yaml_map_get(doc, "router_settings");
		if (rs != NULL && import_emit_settings(&im, rs, &b) != AAM_OK)
			rc = AAM_E_CONFIG;
	}
	if (rc == AAM_OK && nroutes == 0) {
		fprintf(stderr, "error: %s: no route could be imported\n", file);
		im.nerr++;
	}
	if (rc == AAM_OK && im.nerr == 0 && aam_buf_failed(&b))
		rc = b.err;
	int failures = 0;
	if (rc == AAM_OK && im.nerr == 0) {
		if (!dry && !no_secrets)
			failures = import_vault_store(cli, im.creds, im.ncreds,
			                              out != NULL ? stdout : stderr);
		if (failures > 0) {
			fprintf(stderr,
			        "aamctl import: %d secret(s) could not be stored; routes file "
			        "not written\n",
			        failures);
		} else if (out != NULL && !dry) {
			rc = import_write_file(out, &b);
			if (rc != AAM_OK)
				fprintf(stderr, "aamctl import: cannot write %s: %s\n", out,
				        aam_strerror(rc));
			else
				printf("wrote %s\n", out);
		} else {
			fwrite(b.data, 1, b.len, stdout);
		}
	}
	fprintf(stderr,
	        "summary: %zu route(s), %zu credential(s)%s, %zu unsupported setting(s), %zu "
	        "warning(s), %zu error(s)\n",
	        nroutes, im.ncreds,
	        dry || no_secrets ? " (not stored: --dry-run/--no-secrets)" : "", im.nunsup,
	        im.nwarn, im.nerr);
	if (im.nunsup > 0)
		fprintf(stderr, "unsupported settings (not imported):\n%s",
		        aam_buf_cstr(&im.unsup));
	bool ok = rc == AAM_OK && im.nerr == 0 && failures == 0;
	free(im.routes);
	free(im.creds);
	aam_buf_uninit(&im.unsup);
	aam_buf_uninit(&b);
	aam_yaml_stream_free(ys);
	return ok ? AAMCTL_EXIT_OK : AAMCTL_EXIT_FAIL;
}

static int
import_main(int argc, char **argv, const struct aam_cli *cli)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(import_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? AAMCTL_EXIT_USAGE : AAMCTL_EXIT_OK;
	}
	if (strcmp(argv[1], "litellm") == 0)
		return import_litellm(argc, argv, cli);
	if (strcmp(argv[1], "litellm-keys") == 0)
		return import_litellm_keys_main(argc, argv, cli);
	fprintf(stderr, "aamctl import: unknown source '%s'\n%s", argv[1], import_usage);
	return AAMCTL_EXIT_USAGE;
}

const struct aamctl_cmd aamctl_cmd_import = {
        .name = "import",
        .summary = "import a LiteLLM proxy config (routes, keys into the vault) or key table",
        .run = import_main,
};
