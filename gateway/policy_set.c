/*
 * Loading a policy set from files, folders or memory, all-or-nothing, and
 * the set's reference counting.
 *
 * A folder is read in name order (so its hash does not depend on the
 * order the file system lists it in), only *.yaml and *.yml regular
 * files, not recursively.  Any error anywhere means no set: a half-loaded
 * set could be missing exactly the policy that denies something.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aam/err.h"
#include "gateway/policy_internal.h"

/* Policy files are small; these bounds leave room and stop abuse early. */
#define POL_YAML_MAX_BYTES  (1024u * 1024)
#define POL_YAML_MAX_DEPTH  32u
#define POL_YAML_MAX_NODES  100000u
#define POL_YAML_MAX_SCALAR (16u * 1024)
#define POL_YAML_MAX_DOCS   1000u
#define POL_MAX_DIR_FILES   10000u

struct loader {
	struct pol_arena arena;
	struct gw_pol *pols;
	size_t n, cap;
	struct gw_policy_diag *diag;
	const struct gw_policy_load_opts *opts;
	struct aam_yaml_limits lim;
	size_t maxp;
	int rc; /* first error that is not a policy error */
	bool nomem;
};

static void
loader_init(struct loader *L, const struct gw_policy_load_opts *opts, struct gw_policy_diag *diag)
{
	memset(L, 0, sizeof(*L));
	pol_arena_init(&L->arena);
	L->diag = diag;
	L->opts = opts;
	struct aam_yaml_limits def = {POL_YAML_MAX_BYTES, POL_YAML_MAX_DEPTH, POL_YAML_MAX_NODES,
	                              POL_YAML_MAX_SCALAR, POL_YAML_MAX_DOCS};
	if (opts != NULL) {
		const struct aam_yaml_limits *y = &opts->yaml;
		if (y->max_bytes)
			def.max_bytes = y->max_bytes;
		if (y->max_depth)
			def.max_depth = y->max_depth;
		if (y->max_nodes)
			def.max_nodes = y->max_nodes;
		if (y->max_scalar)
			def.max_scalar = y->max_scalar;
		if (y->max_docs)
			def.max_docs = y->max_docs;
	}
	L->lim = def;
	L->maxp = opts && opts->max_policies ? opts->max_policies : GW_POLICY_MAX_POLICIES;
	if (L->maxp > GW_POLICY_MAX_POLICIES)
		L->maxp = GW_POLICY_MAX_POLICIES;
}

static void
loader_note_rc(struct loader *L, int rc)
{
	if (L->rc == AAM_OK)
		L->rc = rc;
}

static void
load_stream(struct loader *L, const aam_yaml_stream *st, const char *name)
{
	const char *file = pol_strndup(&L->arena, name, strlen(name));
	if (file == NULL) {
		L->nomem = true;
		return;
	}
	size_t ndocs = aam_yaml_stream_count(st);
	if (ndocs == 0) {
		pol_diag_add(L->diag, file, 0, 0, "contains no policy");
		return;
	}
	for (size_t i = 0; i < ndocs && !L->nomem; i++) {
		if (L->n >= L->maxp) {
			const struct aam_yaml_node *d = aam_yaml_stream_doc(st, i);
			pol_diag_add(L->diag, file, d ? d->line : 0, d ? d->col : 0,
			             "more than %zu policies in one set", L->maxp);
			loader_note_rc(L, AAM_E_TOOBIG);
			return;
		}
		if (L->n == L->cap) {
			size_t cap = L->cap ? L->cap * 2 : 16;
			struct gw_pol *p = realloc(L->pols, cap * sizeof(*p));
			if (p == NULL) {
				L->nomem = true;
				return;
			}
			L->pols = p;
			L->cap = cap;
		}
		struct pol_ld l = {.a = &L->arena, .diag = L->diag, .file = file, .opts = L->opts};
		if (pol_parse_doc(&l, aam_yaml_stream_doc(st, i), &L->pols[L->n]))
			L->n++;
		if (l.nomem)
			L->nomem = true;
	}
}

static void
load_file(struct loader *L, const char *path)
{
	aam_yaml_stream *st = NULL;
	struct aam_yaml_error err;
	memset(&err, 0, sizeof(err));
	int rc = aam_yaml_parse_file(path, &L->lim, &st, &err);
	if (rc != AAM_OK) {
		pol_diag_add_yaml(L->diag, &err);
		if (rc != AAM_E_PARSE)
			loader_note_rc(L, rc);
		return;
	}
	load_stream(L, st, path);
	aam_yaml_stream_free(st);
}

static int
yaml_name(const struct dirent *e)
{
	if (e->d_name[0] == '.')
		return 0;
	size_t len = strlen(e->d_name);
	return (len > 5 && strcmp(e->d_name + len - 5, ".yaml") == 0) ||
	       (len > 4 && strcmp(e->d_name + len - 4, ".yml") == 0);
}

static void
load_dir(struct loader *L, const char *path)
{
	struct dirent **names = NULL;
	int n = scandir(path, &names, yaml_name, alphasort);
	if (n < 0) {
		pol_diag_add(L->diag, path, 0, 0, "cannot read folder: %s", strerror(errno));
		loader_note_rc(L, AAM_E_IO);
		return;
	}
	size_t loaded = 0;
	for (int i = 0; i < n; i++) {
		char sub[4096];
		int len = snprintf(sub, sizeof(sub), "%s/%s", path, names[i]->d_name);
		struct stat st;
		if (len > 0 && (size_t)len < sizeof(sub) && loaded < POL_MAX_DIR_FILES &&
		    stat(sub, &st) == 0 && S_ISREG(st.st_mode)) {
			load_file(L, sub);
			loaded++;
		}
		free(names[i]);
	}
	free(names);
	if (loaded == 0)
		pol_diag_add(L->diag, path, 0, 0, "folder holds no *.yaml or *.yml policy file");
}

static void
load_path(struct loader *L, const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		pol_diag_add(L->diag, path, 0, 0, "cannot open: %s", strerror(errno));
		loader_note_rc(L, errno == ENOENT ? AAM_E_NOTFOUND : AAM_E_IO);
		return;
	}
	if (S_ISDIR(st.st_mode))
		load_dir(L, path);
	else
		load_file(L, path);
}

static int
cmp_name_then_order(const void *a, const void *b)
{
	const struct gw_pol *const *x = a, *const *y = b;
	int c = strcmp((*x)->name, (*y)->name);
	if (c != 0)
		return c;
	return *x < *y ? -1 : *x > *y;
}

/* Reports every policy whose name an earlier one already took. */
static void
check_duplicates(struct loader *L)
{
	if (L->n < 2)
		return;
	const struct gw_pol **v = malloc(L->n * sizeof(*v));
	if (v == NULL) {
		L->nomem = true;
		return;
	}
	for (size_t i = 0; i < L->n; i++)
		v[i] = &L->pols[i];
	qsort(v, L->n, sizeof(*v), cmp_name_then_order);
	size_t i = 0;
	while (i < L->n) {
		const struct gw_pol *first = v[i];
		size_t j = i + 1;
		while (j < L->n && strcmp(v[j]->name, first->name) == 0) {
			const struct gw_pol *dup = v[j];
			pol_diag_add(
			        L->diag, dup->name_pos.file, dup->name_pos.line, dup->name_pos.col,
			        "metadata.name: duplicate policy name '%.64s' (first defined at "
			        "%.96s:%u:%u)",
			        dup->name, first->name_pos.file, first->name_pos.line,
			        first->name_pos.col);
			j++;
		}
		i = j;
	}
	free(v);
}

static int
loader_finish(struct loader *L, gw_policy_set **out)
{
	if (!L->nomem)
		check_duplicates(L);
	int rc;
	if (L->nomem)
		rc = AAM_E_NOMEM;
	else if (L->diag->n != 0 || L->diag->dropped != 0)
		rc = L->rc != AAM_OK ? L->rc : AAM_E_CONFIG;
	else if (L->n == 0) {
		pol_diag_add(L->diag, NULL, 0, 0, "no policies were loaded");
		rc = AAM_E_CONFIG;
	} else
		rc = AAM_OK;
	if (rc != AAM_OK) {
		pol_arena_uninit(&L->arena);
		free(L->pols);
		return rc;
	}
	return pol_set_build(&L->arena, L->pols, L->n, out);
}

int
gw_policy_set_load(const char *const *paths, size_t npaths, const struct gw_policy_load_opts *opts,
                   gw_policy_set **out, struct gw_policy_diag *diag)
{
	if (out == NULL)
		return AAM_E_INVAL;
	*out = NULL;
	if (paths == NULL || npaths == 0)
		return AAM_E_INVAL;
	struct gw_policy_diag local;
	gw_policy_diag_init(&local);
	struct loader L;
	loader_init(&L, opts, diag ? diag : &local);
	for (size_t i = 0; i < npaths && !L.nomem; i++) {
		if (paths[i] == NULL) {
			loader_note_rc(&L, AAM_E_INVAL);
			pol_diag_add(L.diag, NULL, 0, 0, "missing path");
			continue;
		}
		load_path(&L, paths[i]);
	}
	int rc = loader_finish(&L, out);
	gw_policy_diag_uninit(&local);
	return rc;
}

int
gw_policy_set_load_buffer(const char *name, const void *data, size_t len,
                          const struct gw_policy_load_opts *opts, gw_policy_set **out,
                          struct gw_policy_diag *diag)
{
	if (out == NULL)
		return AAM_E_INVAL;
	*out = NULL;
	if (data == NULL && len != 0)
		return AAM_E_INVAL;
	if (name == NULL)
		name = "<input>";
	struct gw_policy_diag local;
	gw_policy_diag_init(&local);
	struct loader L;
	loader_init(&L, opts, diag ? diag : &local);
	aam_yaml_stream *st = NULL;
	struct aam_yaml_error err;
	memset(&err, 0, sizeof(err));
	int rc = aam_yaml_parse(name, data ? data : "", len, &L.lim, &st, &err);
	if (rc != AAM_OK) {
		pol_diag_add_yaml(L.diag, &err);
		if (rc != AAM_E_PARSE)
			loader_note_rc(&L, rc);
	} else {
		load_stream(&L, st, name);
		aam_yaml_stream_free(st);
	}
	rc = loader_finish(&L, out);
	gw_policy_diag_uninit(&local);
	return rc;
}

gw_policy_set *
gw_policy_set_ref(gw_policy_set *set)
{
	if (set != NULL)
		atomic_fetch_add_explicit(&set->refs, 1, memory_order_relaxed);
	return set;
}

void
gw_policy_set_unref(gw_policy_set *set)
{
	if (set == NULL)
		return;
	if (atomic_fetch_sub_explicit(&set->refs, 1, memory_order_acq_rel) == 1)
		pol_set_free(set);
}

size_t
gw_policy_set_count(const gw_policy_set *set)
{
	return set ? set->npols : 0;
}

const char *
gw_policy_set_name(const gw_policy_set *set, size_t i)
{
	return set && i < set->npols ? set->pols[i].name : NULL;
}

void
gw_policy_set_hash(const gw_policy_set *set, uint8_t out[32])
{
	if (set != NULL)
		memcpy(out, set->hash, 32);
	else
		memset(out, 0, 32);
}

const char *
gw_policy_set_hash_hex(const gw_policy_set *set)
{
	return set ? set->hash_hex : "";
}
