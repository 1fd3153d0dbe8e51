/*
 * aamctl policy: lint, test and explain AgentPolicy sets with the same
 * loader and decision function the gateway embeds, so what the tool says
 * is what the gateway does.
 *
 *   aamctl policy lint PATH... [--catalogue FILE]
 *   aamctl policy test PATH... --cases FILE [--cases FILE...] [--catalogue FILE]
 *   aamctl policy explain PATH... --request JSON|-
 *   aamctl policy hash PATH...
 *
 * All PATHs load together as one set, all-or-nothing, as the gateway
 * would load them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aam/err.h"
#include "common/json.h"
#include "common/yaml.h"
#include "gateway/policy.h"
#include "tools/aamctl/aamctl.h"

#define MAX_PATHS     256
#define MAX_CASEFILES 64
#define MAX_CATALOGUE 10000
#define STDIN_MAX     (1024u * 1024)

static const char usage_text[] =
        "usage: aamctl policy lint PATH... [--catalogue FILE]\n"
        "       aamctl policy test PATH... --cases FILE [--cases FILE...] [--catalogue FILE]\n"
        "       aamctl policy explain PATH... --request JSON|-\n"
        "       aamctl policy hash PATH...\n"
        "PATH is a policy file or a folder of *.yaml files; all PATHs form one set.\n"
        "A catalogue file lists known names: {models: [route...], tools: [resource...]}.\n";

struct opts {
	const char *paths[MAX_PATHS];
	size_t npaths;
	const char *cases[MAX_CASEFILES];
	size_t ncases;
	const char *catalogue;
	const char *request;
};

static int
usage_error(const char *msg)
{
	if (msg != NULL)
		fprintf(stderr, "aamctl policy: %s\n", msg);
	fputs(usage_text, stderr);
	return AAMCTL_EXIT_USAGE;
}

static int
parse_opts(int argc, char **argv, struct opts *o)
{
	memset(o, 0, sizeof(*o));
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char **dst = NULL;
		if (strcmp(a, "--cases") == 0) {
			if (o->ncases >= MAX_CASEFILES)
				return usage_error("too many --cases files");
			dst = &o->cases[o->ncases++];
		} else if (strcmp(a, "--catalogue") == 0 || strcmp(a, "--catalog") == 0) {
			dst = &o->catalogue;
		} else if (strcmp(a, "--request") == 0) {
			dst = &o->request;
		} else if (a[0] == '-' && a[1] != '\0') {
			fprintf(stderr, "aamctl policy: unknown option %s\n", a);
			return usage_error(NULL);
		} else {
			if (o->npaths >= MAX_PATHS)
				return usage_error("too many paths");
			o->paths[o->npaths++] = a;
			continue;
		}
		if (i + 1 >= argc)
			return usage_error("an option is missing its value");
		*dst = argv[++i];
	}
	if (o->npaths == 0)
		return usage_error("no policy PATH given");
	return AAMCTL_EXIT_OK;
}

static void
print_diag(const struct gw_policy_diag *d)
{
	char line[1024];
	for (size_t i = 0; i < d->n; i++) {
		gw_policy_diag_format(d, i, line, sizeof(line));
		fprintf(stderr, "%s\n", line);
	}
	if (d->dropped)
		fprintf(stderr, "... and %zu more errors\n", d->dropped);
}

/* ---- catalogue --------------------------------------------------------- */

struct catalogue {
	aam_yaml_stream *st;
	const char **routes, **tools;
	struct gw_policy_catalogue c;
};

static int
read_names(const struct aam_yaml_node *n, const char *file, const char *key, const char ***out,
           size_t *count)
{
	*out = NULL;
	*count = 0;
	if (n == NULL)
		return AAM_OK;
	if (n->type != AAM_YAML_SEQ || n->n > MAX_CATALOGUE) {
		fprintf(stderr, "%s:%u:%u: %s: expected a list of names\n", file, n->line, n->col,
		        key);
		return AAM_E_CONFIG;
	}
	*out = calloc(n->n ? n->n : 1, sizeof(**out));
	if (*out == NULL)
		return AAM_E_NOMEM;
	for (size_t i = 0; i < n->n; i++) {
		struct aam_yaml_error e;
		if (aam_yaml_get_str(n->items[i], file, &(*out)[i], &e) != AAM_OK) {
			char line[600];
			aam_yaml_error_format(&e, line, sizeof(line));
			fprintf(stderr, "%s\n", line);
			return AAM_E_CONFIG;
		}
	}
	*count = n->n;
	return AAM_OK;
}

static int
catalogue_load(const char *path, struct catalogue *c)
{
	memset(c, 0, sizeof(*c));
	struct aam_yaml_error e;
	if (aam_yaml_parse_file(path, NULL, &c->st, &e) != AAM_OK) {
		char line[600];
		aam_yaml_error_format(&e, line, sizeof(line));
		fprintf(stderr, "%s\n", line);
		return AAM_E_CONFIG;
	}
	const struct aam_yaml_node *root =
	        aam_yaml_stream_count(c->st) == 1 ? aam_yaml_stream_doc(c->st, 0) : NULL;
	if (root == NULL || root->type != AAM_YAML_MAP) {
		fprintf(stderr, "%s: expected one mapping with models and tools lists\n", path);
		return AAM_E_CONFIG;
	}
	for (size_t i = 0; i < root->n; i++) {
		const char *k = root->keys[i]->str;
		if (strcmp(k, "models") != 0 && strcmp(k, "tools") != 0) {
			fprintf(stderr, "%s:%u:%u: unknown key '%s' (allowed: models, tools)\n",
			        path, root->keys[i]->line, root->keys[i]->col, k);
			return AAM_E_CONFIG;
		}
	}
	int rc = read_names(aam_yaml_map_get(root, "models"), path, "models", &c->routes,
	                    &c->c.nroutes);
	if (rc == AAM_OK)
		rc = read_names(aam_yaml_map_get(root, "tools"), path, "tools", &c->tools,
		                &c->c.ntools);
	c->c.routes = c->routes;
	c->c.tools = c->tools;
	return rc;
}

static void
catalogue_free(struct catalogue *c)
{
	free(c->routes);
	free(c->tools);
	aam_yaml_stream_free(c->st);
}

/* Loads the set, printing every error; returns an exit status. */
static int
load_set(const struct opts *o, gw_policy_set **set)
{
	struct catalogue cat;
	struct gw_policy_load_opts lo;
	memset(&lo, 0, sizeof(lo));
	bool have_cat = false;
	if (o->catalogue != NULL) {
		if (catalogue_load(o->catalogue, &cat) != AAM_OK) {
			catalogue_free(&cat);
			return AAMCTL_EXIT_FAIL;
		}
		have_cat = true;
		lo.catalogue = &cat.c;
	}
	struct gw_policy_diag diag;
	gw_policy_diag_init(&diag);
	int rc = gw_policy_set_load(o->paths, o->npaths, &lo, set, &diag);
	if (rc != AAM_OK) {
		print_diag(&diag);
		if (diag.n == 0)
			fprintf(stderr, "aamctl policy: load failed: %s\n", aam_strerror(rc));
	}
	gw_policy_diag_uninit(&diag);
	if (have_cat)
		catalogue_free(&cat);
	return rc == AAM_OK ? AAMCTL_EXIT_OK : AAMCTL_EXIT_FAIL;
}

/* ---- printing decisions ------------------------------------------------ */

static const char *const facet_names[] = {"identity", "policy", "action", "parameters",
                                          "outcome",  "model",  "cost"};

static void
print_decision(FILE *f, const gw_policy_set *set, const struct gw_policy_decision *d)
{
	fprintf(f, "decision: %s\n", d->allow ? "allow" : "deny");
	fprintf(f, "policy-set: sha256:%s (%zu policies)\n", d->set_hash ? d->set_hash : "",
	        gw_policy_set_count(set));
	char line[1024];
	for (size_t i = 0; i < d->nreasons; i++) {
		gw_policy_reason_format(&d->reasons[i], line, sizeof(line));
		fprintf(f, "reason: %s\n", line);
	}
	if (d->truncated)
		fprintf(f, "reason: ... %zu more\n", d->truncated);
	if (d->allow) {
		if (d->credential)
			fprintf(f, "credential: %s\n", d->credential);
		const struct gw_policy_limits *l = &d->limits;
		if (l->rpm || l->tpm || l->max_tokens || l->max_parallel || l->daily_usd >= 0 ||
		    l->monthly_usd >= 0) {
			fprintf(f, "limits:");
			if (l->rpm)
				fprintf(f, " rpm=%lld", (long long)l->rpm);
			if (l->tpm)
				fprintf(f, " tpm=%lld", (long long)l->tpm);
			if (l->max_tokens)
				fprintf(f, " max_tokens=%lld", (long long)l->max_tokens);
			if (l->max_parallel)
				fprintf(f, " max_parallel=%lld", (long long)l->max_parallel);
			if (l->daily_usd >= 0)
				fprintf(f, " daily_usd=%g", l->daily_usd);
			if (l->monthly_usd >= 0)
				fprintf(f, " monthly_usd=%g", l->monthly_usd);
			fprintf(f, "\n");
		}
	}
	fprintf(f, "audit:");
	for (size_t i = 0; i < sizeof(facet_names) / sizeof(facet_names[0]); i++)
		if (d->audit & (1u << i))
			fprintf(f, " %s", facet_names[i]);
	fprintf(f, "\n");
}

/* ---- lint and hash ----------------------------------------------------- */

static int
run_lint(const struct opts *o, bool hash_only)
{
	gw_policy_set *set = NULL;
	int rc = load_set(o, &set);
	if (rc != AAMCTL_EXIT_OK)
		return rc;
	if (hash_only)
		printf("sha256:%s\n", gw_policy_set_hash_hex(set));
	else
		printf("ok: %zu policies, set sha256:%s\n", gw_policy_set_count(set),
		       gw_policy_set_hash_hex(set));
	gw_policy_set_unref(set);
	return AAMCTL_EXIT_OK;
}

/* ---- explain ----------------------------------------------------------- */

static char *
read_stdin(size_t *len)
{
	char *buf = malloc(STDIN_MAX + 1);
	if (buf == NULL)
		return NULL;
	size_t n = fread(buf, 1, STDIN_MAX + 1, stdin);
	if (n > STDIN_MAX) {
		free(buf);
		fprintf(stderr, "aamctl policy: request on stdin is larger than %u bytes\n",
		        STDIN_MAX);
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

static int
run_explain(const struct opts *o)
{
	if (o->request == NULL)
		return usage_error("explain needs --request JSON (or - for stdin)");
	char *owned = NULL;
	const char *text = o->request;
	size_t len = strlen(text);
	if (strcmp(text, "-") == 0) {
		owned = read_stdin(&len);
		if (owned == NULL)
			return AAMCTL_EXIT_FAIL;
		text = owned;
	}
	json_t *j = NULL;
	struct aam_json_error je;
	memset(&je, 0, sizeof(je));
	if (aam_json_parse(text, len, NULL, &j, &je) != AAM_OK) {
		fprintf(stderr, "aamctl policy: --request: %s\n", je.msg);
		free(owned);
		return AAMCTL_EXIT_FAIL;
	}
	free(owned);
	struct gw_policy_request req;
	char why[256];
	if (gw_policy_request_from_json(j, (int64_t)time(NULL), &req, why, sizeof(why)) != AAM_OK) {
		fprintf(stderr, "aamctl policy: --request: %s\n", why);
		json_decref(j);
		return AAMCTL_EXIT_FAIL;
	}
	gw_policy_set *set = NULL;
	int rc = load_set(o, &set);
	if (rc == AAMCTL_EXIT_OK) {
		struct gw_policy_decision d;
		gw_policy_decide(set, &req, &d);
		print_decision(stdout, set, &d);
		gw_policy_set_unref(set);
	}
	json_decref(j);
	return rc;
}

/* ---- test -------------------------------------------------------------- */

struct tally {
	unsigned passed, failed, number;
};

static bool
keys_ok(const struct aam_yaml_node *n, const char *file, const char *what,
        const char *const *allowed)
{
	if (n == NULL || n->type != AAM_YAML_MAP) {
		fprintf(stderr, "%s:%u:%u: %s: expected a mapping\n", file, n ? n->line : 0,
		        n ? n->col : 0, what);
		return false;
	}
	for (size_t i = 0; i < n->n; i++) {
		bool ok = false;
		for (size_t k = 0; allowed[k]; k++)
			ok |= strcmp(n->keys[i]->str, allowed[k]) == 0;
		if (!ok) {
			fprintf(stderr, "%s:%u:%u: %s: unknown key '%s'\n", file, n->keys[i]->line,
			        n->keys[i]->col, what, n->keys[i]->str);
			return false;
		}
	}
	return true;
}

static const char *const k_reason[] = {"code", "policy", "rule", "field", "value", NULL};

/* Whether reason R has every field that the expectation E names. */
static bool
reason_matches(const struct aam_yaml_node *e, const struct gw_policy_reason *r)
{
	for (size_t i = 0; i < e->n; i++) {
		const char *k = e->keys[i]->str;
		const struct aam_yaml_node *v = e->items[i];
		const char *want = aam_yaml_is_null(v) ? NULL : v->str;
		const char *have = NULL;
		if (strcmp(k, "code") == 0)
			have = gw_policy_code_name(r->code);
		else if (strcmp(k, "policy") == 0)
			have = r->policy;
		else if (strcmp(k, "rule") == 0)
			have = r->rule;
		else if (strcmp(k, "field") == 0)
			have = r->field;
		else if (strcmp(k, "value") == 0)
			have = r->value;
		if ((want == NULL) != (have == NULL))
			return false;
		if (want != NULL && strcmp(want, have) != 0)
			return false;
	}
	return true;
}

static void
explain_failure(const char *name, unsigned number, const char *why, const gw_policy_set *set,
                const struct gw_policy_decision *d)
{
	printf("not ok %u - %s: %s\n", number, name, why);
	if (d != NULL) {
		char line[1024];
		printf("#   got: %s\n", d->allow ? "allow" : "deny");
		for (size_t i = 0; i < d->nreasons; i++) {
			gw_policy_reason_format(&d->reasons[i], line, sizeof(line));
			printf("#   reason: %s\n", line);
		}
	}
	(void)set;
}

static bool
check_limits(const struct aam_yaml_node *n, const char *file, const struct gw_policy_limits *l,
             char *why, size_t whylen)
{
	static const char *const k[] = {"rpm",       "tpm",         "max_tokens", "max_parallel",
	                                "daily_usd", "monthly_usd", NULL};
	if (!keys_ok(n, file, "expect.limits", k)) {
		snprintf(why, whylen, "malformed expect.limits");
		return false;
	}
	for (size_t i = 0; i < n->n; i++) {
		const char *key = n->keys[i]->str;
		struct aam_yaml_error e;
		double want;
		if (aam_yaml_get_double(n->items[i], file, &want, &e) != AAM_OK) {
			snprintf(why, whylen, "expect.limits.%s is not a number", key);
			return false;
		}
		double have = strcmp(key, "rpm") == 0            ? (double)l->rpm
		              : strcmp(key, "tpm") == 0          ? (double)l->tpm
		              : strcmp(key, "max_tokens") == 0   ? (double)l->max_tokens
		              : strcmp(key, "max_parallel") == 0 ? (double)l->max_parallel
		              : strcmp(key, "daily_usd") == 0    ? l->daily_usd
		                                                 : l->monthly_usd;
		if (have != want) {
			snprintf(why, whylen, "limit %s is %g, expected %g", key, have, want);
			return false;
		}
	}
	return true;
}

static const char *const k_case[] = {"name", "request", "expect", NULL};
static const char *const k_expect[] = {"decision",   "reason", "reasons",
                                       "credential", "limits", NULL};

/* Runs one case; false only for a malformed case file. */
static bool
run_case(const gw_policy_set *set, const struct aam_yaml_node *c, const char *file, struct tally *t)
{
	if (!keys_ok(c, file, "case", k_case))
		return false;
	const struct aam_yaml_node *nm = aam_yaml_map_get(c, "name");
	const struct aam_yaml_node *rq = aam_yaml_map_get(c, "request");
	const struct aam_yaml_node *ex = aam_yaml_map_get(c, "expect");
	if (nm == NULL || nm->type != AAM_YAML_SCALAR || rq == NULL || ex == NULL) {
		fprintf(stderr, "%s:%u:%u: case: needs name, request and expect\n", file, c->line,
		        c->col);
		return false;
	}
	if (!keys_ok(ex, file, "expect", k_expect))
		return false;
	const char *name = nm->str;
	unsigned number = ++t->number;
	json_t *j = NULL;
	struct aam_yaml_error ye;
	if (aam_yaml_to_json(rq, &j, &ye, file) != AAM_OK) {
		char line[600];
		aam_yaml_error_format(&ye, line, sizeof(line));
		fprintf(stderr, "%s\n", line);
		return false;
	}
	struct gw_policy_request req;
	char why[512];
	if (gw_policy_request_from_json(j, (int64_t)time(NULL), &req, why, sizeof(why)) != AAM_OK) {
		fprintf(stderr, "%s:%u:%u: %s\n", file, rq->line, rq->col, why);
		json_decref(j);
		return false;
	}
	struct gw_policy_decision d;
	gw_policy_decide(set, &req, &d);

	bool ok = true;
	const struct aam_yaml_node *dec = aam_yaml_map_get(ex, "decision");
	if (dec == NULL || dec->type != AAM_YAML_SCALAR ||
	    (strcmp(dec->str, "allow") != 0 && strcmp(dec->str, "deny") != 0)) {
		fprintf(stderr, "%s:%u:%u: expect.decision: must be allow or deny\n", file,
		        ex->line, ex->col);
		json_decref(j);
		return false;
	}
	bool want_allow = strcmp(dec->str, "allow") == 0;
	if (want_allow != d.allow) {
		snprintf(why, sizeof(why), "expected %s", dec->str);
		ok = false;
	}
	const struct aam_yaml_node *one = aam_yaml_map_get(ex, "reason");
	const struct aam_yaml_node *many = aam_yaml_map_get(ex, "reasons");
	const struct aam_yaml_node *list[64];
	size_t nlist = 0;
	if (one != NULL)
		list[nlist++] = one;
	if (many != NULL && many->type == AAM_YAML_SEQ)
		for (size_t i = 0; i < many->n && nlist < 64; i++)
			list[nlist++] = many->items[i];
	for (size_t i = 0; ok && i < nlist; i++) {
		if (!keys_ok(list[i], file, "expect.reason", k_reason)) {
			json_decref(j);
			return false;
		}
		bool found = false;
		for (size_t k = 0; k < d.nreasons && !found; k++)
			found = reason_matches(list[i], &d.reasons[k]);
		if (!found) {
			snprintf(why, sizeof(why), "no reason matches the expectation at line %u",
			         list[i]->line);
			ok = false;
		}
	}
	const struct aam_yaml_node *cred = aam_yaml_map_get(ex, "credential");
	if (ok && cred != NULL) {
		const char *want = aam_yaml_is_null(cred) ? NULL : cred->str;
		if ((want == NULL) != (d.credential == NULL) ||
		    (want != NULL && strcmp(want, d.credential) != 0)) {
			snprintf(why, sizeof(why), "credential is %s, expected %s",
			         d.credential ? d.credential : "none", want ? want : "none");
			ok = false;
		}
	}
	const struct aam_yaml_node *lim = aam_yaml_map_get(ex, "limits");
	if (ok && lim != NULL)
		ok = check_limits(lim, file, &d.limits, why, sizeof(why));
	if (ok) {
		printf("ok %u - %s\n", number, name);
		t->passed++;
	} else {
		explain_failure(name, number, why, set, &d);
		t->failed++;
	}
	json_decref(j);
	return true;
}

static bool
run_case_file(const gw_policy_set *set, const char *path, struct tally *t)
{
	aam_yaml_stream *st = NULL;
	struct aam_yaml_error e;
	if (aam_yaml_parse_file(path, NULL, &st, &e) != AAM_OK) {
		char line[600];
		aam_yaml_error_format(&e, line, sizeof(line));
		fprintf(stderr, "%s\n", line);
		return false;
	}
	bool ok = true;
	const struct aam_yaml_node *root =
	        aam_yaml_stream_count(st) == 1 ? aam_yaml_stream_doc(st, 0) : NULL;
	static const char *const k_top[] = {"cases", NULL};
	const struct aam_yaml_node *cases = NULL;
	if (root == NULL || !keys_ok(root, path, "cases file", k_top) ||
	    (cases = aam_yaml_map_get(root, "cases")) == NULL || cases->type != AAM_YAML_SEQ ||
	    cases->n == 0) {
		fprintf(stderr, "%s: expected one document with a non-empty 'cases' list\n", path);
		ok = false;
	}
	for (size_t i = 0; ok && i < cases->n; i++)
		ok = run_case(set, cases->items[i], path, t);
	aam_yaml_stream_free(st);
	return ok;
}

static int
run_test(const struct opts *o)
{
	if (o->ncases == 0)
		return usage_error("test needs --cases FILE");
	gw_policy_set *set = NULL;
	int rc = load_set(o, &set);
	if (rc != AAMCTL_EXIT_OK)
		return rc;
	struct tally t = {0, 0, 0};
	bool ok = true;
	for (size_t i = 0; i < o->ncases && ok; i++)
		ok = run_case_file(set, o->cases[i], &t);
	gw_policy_set_unref(set);
	if (!ok) {
		fprintf(stderr, "aamctl policy test: malformed cases file\n");
		return AAMCTL_EXIT_FAIL;
	}
	printf("%u passed, %u failed\n", t.passed, t.failed);
	return t.failed == 0 && t.passed > 0 ? AAMCTL_EXIT_OK : AAMCTL_EXIT_FAIL;
}

static int
policy_main(int argc, char **argv, const struct aam_cli *cli)
{
	(void)cli;
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(usage_text, argc < 2 ? stderr : stdout);
		return argc < 2 ? AAMCTL_EXIT_USAGE : AAMCTL_EXIT_OK;
	}
	const char *sub = argv[1];
	struct opts o;
	int rc = parse_opts(argc - 2, argv + 2, &o);
	if (rc != AAMCTL_EXIT_OK)
		return rc;
	if (strcmp(sub, "lint") == 0)
		return run_lint(&o, false);
	if (strcmp(sub, "hash") == 0)
		return run_lint(&o, true);
	if (strcmp(sub, "test") == 0)
		return run_test(&o);
	if (strcmp(sub, "explain") == 0)
		return run_explain(&o);
	fprintf(stderr, "aamctl policy: unknown subcommand '%s'\n", sub);
	return usage_error(NULL);
}

const struct aamctl_cmd aamctl_cmd_policy = {
        .name = "policy",
        .summary = "lint, test and explain AgentPolicy files",
        .run = policy_main,
};
