/*
 * Internal structures of the policy engine, shared by its source files
 * and by nothing else.  A loaded policy is a plain struct of typed values
 * whose strings live in the set's arena; the compiled indexes refer to
 * policies and rules by index, so the whole set is freed by freeing the
 * arena and a handful of arrays.
 */
#ifndef AAM_GATEWAY_POLICY_INTERNAL_H
#define AAM_GATEWAY_POLICY_INTERNAL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/policy.h"

/* ---- arena ------------------------------------------------------------ */

struct pol_chunk;
struct pol_arena {
	struct pol_chunk *head;
	size_t total; /* bytes handed out, for the set size limit */
};

void pol_arena_init(struct pol_arena *a);
void pol_arena_uninit(struct pol_arena *a);
/* Zeroed, 16-byte aligned; NULL on overflow or out of memory. */
void *pol_alloc(struct pol_arena *a, size_t size);
void *pol_alloc_array(struct pol_arena *a, size_t n, size_t size);
char *pol_strndup(struct pol_arena *a, const char *s, size_t len);
char *pol_printf(struct pol_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- diagnostics ------------------------------------------------------ */

void pol_diag_vadd(struct gw_policy_diag *d, const char *file, unsigned line, unsigned col,
                   const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));
void pol_diag_add(struct gw_policy_diag *d, const char *file, unsigned line, unsigned col,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void pol_diag_add_yaml(struct gw_policy_diag *d, const struct aam_yaml_error *e);

/*
 * Formats a field path ("spec.tools[0].when.x") into OUT (POL_PATH_LEN
 * bytes), truncating quietly: paths only ever feed messages.
 */
#define POL_PATH_LEN 192
void pol_pathf(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- values ----------------------------------------------------------- */

struct pol_pos {
	const char *file;
	unsigned line, col;
};

struct pol_str {
	const char *s;
	size_t len;
	struct pol_pos pos;
};

/* A list of names; ALL is set when it holds "*". */
struct pol_list {
	size_t n;
	struct pol_str *v;
	bool all;
	size_t all_index; /* index of "*" when ALL */
};

/* Index of S in L (exact match), or -1. */
long pol_list_find(const struct pol_list *l, const char *s);

/* ---- bounded regular expressions -------------------------------------- */

#define POL_REGEX_MAX_PATTERN 256
#define POL_REGEX_MAX_PROG    1024

struct pol_regex;
/*
 * Compiles PAT into a program of at most POL_REGEX_MAX_PROG instructions
 * that matches the whole subject in time linear in its length and without
 * allocating.  On error WHY receives a sentence.
 */
int pol_regex_compile(struct pol_arena *a, const char *pat, size_t len, struct pol_regex **out,
                      char *why, size_t whylen);
bool pol_regex_match(const struct pol_regex *re, const char *s, size_t len);

/* ---- conditions on parameters ----------------------------------------- */

#define POL_PARAM_MAX_SEGS 8

enum pol_op {
	POL_OP_EQUALS = 1,
	POL_OP_IN,
	POL_OP_NOT_IN,
	POL_OP_MIN,
	POL_OP_MAX,
	POL_OP_MAX_LENGTH,
	POL_OP_PREFIX,
	POL_OP_REGEX,
	POL_OP_PRESENT,
	POL_OP_ABSENT,
};

enum pol_scalar_type { POL_S_STR = 1, POL_S_INT, POL_S_REAL, POL_S_BOOL };

struct pol_scalar {
	enum pol_scalar_type t;
	const char *s;
	size_t len;
	int64_t i;
	double d;
	bool b;
};

struct pol_cond {
	const char *param; /* "amount" or "account.region" */
	const char *segs[POL_PARAM_MAX_SEGS];
	size_t nsegs;
	enum pol_op op;
	struct pol_scalar v;    /* equals, min, max, max_length, prefix */
	struct pol_scalar *set; /* in, not_in */
	size_t nset;
	struct pol_regex *re; /* regex; its pattern is v.s */
	const char *field;    /* "spec.tools[0].when.amount.max" */
	struct pol_pos pos;
};

const char *pol_op_name(enum pol_op op);
/* Whether COND holds for the parameters object PARAMS (may be NULL). */
bool pol_cond_eval(const struct pol_cond *c, const json_t *params);

/* ---- policies --------------------------------------------------------- */

enum pol_match { POL_M_EXACT = 0, POL_M_ONE, POL_M_ANY, POL_M_ALL };

struct pol_limits {
	int64_t rpm, tpm, max_tokens, max_parallel; /* 0: unset */
};

struct pol_route_limits {
	struct pol_str route;
	struct pol_limits l;
};

struct pol_tool {
	struct pol_str resource;
	enum pol_match kind;
	size_t base_len; /* bytes of the resource before ".*" / ".**" */
	struct pol_list actions, deny;
	struct pol_cond *conds;
	size_t nconds;
	struct pol_str credential; /* s == NULL: none */
	int64_t rpm;
	const char *rule;         /* "tools[0]" */
	const char *f_actions;    /* "spec.tools[0].actions" */
	const char *f_deny;       /* "spec.tools[0].deny" */
	const char *f_resource;   /* "spec.tools[0].resource" */
	const char *f_credential; /* "spec.tools[0].credential" */
	struct pol_pos pos;
};

struct pol_window {
	uint8_t days; /* bit d for day d, 0 = Sunday */
	bool has_hours;
	int start, end; /* minutes after midnight UTC, END exclusive; START > END wraps */
	const char *hours_src;
	struct pol_pos pos;
};

struct gw_pol {
	const char *name;
	const char *description;
	struct pol_pos pos, name_pos;

	/* identity */
	struct pol_pos identity_pos;
	struct pol_list workloads;
	uint8_t *wl_kind; /* enum aam_spiffe_pattern_kind per workload */
	char **wl_base;   /* the ID without its wildcard segment */
	struct pol_list owners, teams, envs, deployments;
	bool require_attested;
	struct pol_pos attested_pos;

	/* models */
	bool has_models;
	struct pol_pos models_pos;
	struct pol_list allow, deny, regions;
	bool has_daily, has_monthly;
	double daily_usd, monthly_usd;
	struct pol_pos budget_pos;
	struct pol_limits limits;
	struct pol_pos limits_pos;
	struct pol_route_limits *rl;
	size_t nrl;

	/* tools */
	struct pol_tool *tools;
	size_t ntools;

	/* credentials: only the safe values are accepted, so presence is all */
	bool has_credentials;

	/* audit */
	unsigned audit;
	bool has_audit;
	struct pol_list plain;

	/* conditions */
	bool has_conditions;
	struct pol_list cond_envs;
	struct pol_window *windows;
	size_t nwindows;
	struct pol_pos time_pos;
	bool has_not_after, has_not_before;
	int64_t not_after, not_before;
	const char *not_after_src, *not_before_src;
	struct pol_pos not_after_pos, not_before_pos;
};

/* ---- the loader's product and the compiled set ------------------------ */

/* State of one file's load; errors go to DIAG with FILE's name. */
struct pol_ld {
	struct pol_arena *a;
	struct gw_policy_diag *diag;
	const char *file; /* in the arena */
	const struct gw_policy_load_opts *opts;
	bool nomem;
};

void pol_ld_err(struct pol_ld *l, const struct aam_yaml_node *n, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Checks that N is a mapping whose keys are all in ALLOWED (NULL-ended). */
bool pol_ld_map(struct pol_ld *l, const struct aam_yaml_node *n, const char *path,
                const char *const *allowed);
/* The same, calling an unknown key a NOUN ("operator", ...) in messages. */
bool pol_ld_map_noun(struct pol_ld *l, const struct aam_yaml_node *n, const char *path,
                     const char *const *allowed, const char *noun);
/* "a string", "an integer", ... for messages. */
const char *pol_ld_kind(const struct aam_yaml_node *n);
struct pol_pos pol_ld_pos(const struct pol_ld *l, const struct aam_yaml_node *n);

/* Name syntax checks: NULL when S is fine, else why it is not. */
typedef const char *(*pol_name_check_fn)(const char *s, size_t len);
const char *pol_check_param(const char *s, size_t len); /* "a.b" parameter paths */
const char *pol_check_policy_name(const char *s, size_t len);
const char *pol_check_route(const char *s, size_t len);
const char *pol_check_token(const char *s, size_t len); /* actions, regions */
const char *pol_check_credential(const char *s, size_t len);
const char *pol_check_selector(const char *s, size_t len);
const char *pol_check_resource_base(const char *s, size_t len);

/* Typed readers; each reports its own error at N's position. */
const char *pol_ld_str(struct pol_ld *l, const struct aam_yaml_node *n, const char *path,
                       size_t maxlen, size_t *lenp); /* copy in the arena */
bool pol_ld_bool(struct pol_ld *l, const struct aam_yaml_node *n, const char *path, bool *out);
bool pol_ld_count(struct pol_ld *l, const struct aam_yaml_node *n, const char *path,
                  int64_t *out); /* 1 .. 10^12 */
bool pol_ld_money(struct pol_ld *l, const struct aam_yaml_node *n, const char *path,
                  double *out); /* finite, 0 .. 10^12 */

enum {
	POL_LIST_SINGLE = 1, /* a lone scalar counts as a one-entry list */
	POL_LIST_STAR = 2,   /* "*" may stand alone for "every name" */
};
/* A list of names checked by CHECK (may be NULL); FLAGS from the enum above. */
bool pol_ld_list(struct pol_ld *l, const struct aam_yaml_node *n, const char *path, int flags,
                 pol_name_check_fn check, size_t maxlen, struct pol_list *out);

/* The word in ALLOWED closest to WORD if it looks like a typo of it. */
const char *pol_ld_suggest(const char *word, const char *const *allowed);
/* "a, b, c" into OUT. */
void pol_ld_join(char *out, size_t outlen, const char *const *words);
void pol_ld_subpath(char *out, const char *path, const char *key);
void pol_ld_missing(struct pol_ld *l, const struct aam_yaml_node *map, const char *path,
                    const char *key);

/* Parses one document into P; false when it had errors. */
bool pol_parse_doc(struct pol_ld *l, const struct aam_yaml_node *root, struct gw_pol *p);
/* spec.tools[i].when into T (policy_cond.c). */
bool pol_parse_when(struct pol_ld *l, const struct aam_yaml_node *n, const char *path,
                    struct pol_tool *t);
/* spec.conditions.time into P (policy_cond.c). */
bool pol_parse_windows(struct pol_ld *l, const struct aam_yaml_node *n, const char *path,
                       struct gw_pol *p);
/* Whether one of P's time windows holds at NOW. */
bool pol_windows_hold(const struct gw_pol *p, int64_t now);

/* Hash table entry namespaces. */
enum pol_ns { POL_NS_WORKLOAD = 1, POL_NS_EDGE, POL_NS_ROUTE, POL_NS_RESOURCE };

struct pol_hent {
	uint64_t h;
	const char *key;
	uint32_t klen;
	uint32_t parent;
	uint32_t ns;
	uint32_t val;  /* list head, node id or route entry */
	uint32_t tail; /* list tail for appends while building */
};

struct pol_route_ent {
	int32_t allow, deny, rl; /* indexes into the policy's lists, -1 when absent */
};

struct pol_tnode {
	uint32_t one, any;           /* heads of policy lists */
	uint32_t one_tail, any_tail; /* for appends while building */
};

#define POL_NIL UINT32_MAX

struct gw_policy_set {
	atomic_uint refs;
	struct pol_arena arena;
	struct gw_pol *pols; /* sorted by name */
	size_t npols;
	uint8_t hash[32];
	char hash_hex[65];

	/* index */
	struct pol_hent *ht;
	size_t htcap;           /* power of two */
	uint32_t *lval, *lnext; /* linked lists of uint32 values */
	size_t nlinks;
	uint32_t wild, wild_tail; /* list of policies without a workload selector */
	struct pol_tnode *tnodes; /* node 0 is the root */
	size_t ntnodes;
	struct pol_route_ent *routes;
	size_t nroutes;
	uint32_t *tool_patterns; /* per policy: list of its pattern tool rules */
	uint32_t *tool_patterns_tail;
};

uint64_t pol_hash(uint32_t ns, uint32_t parent, const char *key, size_t len);
const struct pol_hent *pol_ht_find(const struct gw_policy_set *s, uint32_t ns, uint32_t parent,
                                   const char *key, size_t len);

/* Builds indexes and the hash; takes ownership of POLS and A. */
int pol_set_build(struct pol_arena *a, struct gw_pol *pols, size_t npols, gw_policy_set **out);
void pol_set_free(gw_policy_set *s);

/* Whether resource R matches a tool rule's resource. */
bool pol_resource_match(const struct pol_tool *t, const char *r, size_t len);

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
int64_t pol_days_from_civil(int64_t y, unsigned m, unsigned d);

#endif /* AAM_GATEWAY_POLICY_INTERNAL_H */
