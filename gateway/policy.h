/*
 * AgentPolicy engine: a strict loader for `AgentPolicy` YAML
 * (apiVersion access.envisionai.dev/v1), a compiled, immutable policy set,
 * and one decision function for every model call and tool action.
 *
 * Combination rules (docs/POLICY.md has the whole language):
 *   - an explicit deny in any applicable policy wins over every allow;
 *   - an allow needs a policy whose identity, conditions and rule match;
 *   - a request no policy allows is denied, with the reason why.
 *
 * A set is loaded all-or-nothing: any error (each reported as
 * file:line:column) means no set.  A loaded set never changes; it is
 * reference-counted so a store can swap a new one in while deciders still
 * hold the old one.  Deciding never allocates and never blocks, and every
 * decision carries the SHA-256 of the set's canonical form so an audit
 * record names exactly which policies decided it.
 */
#ifndef AAM_GATEWAY_POLICY_H
#define AAM_GATEWAY_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/yaml.h"

#define GW_POLICY_API_VERSION "access.envisionai.dev/v1"
#define GW_POLICY_KIND        "AgentPolicy"

/* Reasons a decision keeps; further ones are counted in `truncated`. */
#define GW_POLICY_MAX_REASONS 16
/* Errors a load reports before it stops looking. */
#define GW_POLICY_MAX_ERRORS 200
/* Policies one set may hold. */
#define GW_POLICY_MAX_POLICIES 100000

/* ---- diagnostics ------------------------------------------------------ */

/* Every error found by one load, each with file:line:column. */
struct gw_policy_diag {
	struct aam_yaml_error *errs;
	size_t n, cap;
	size_t dropped; /* errors past GW_POLICY_MAX_ERRORS */
};

void gw_policy_diag_init(struct gw_policy_diag *d);
void gw_policy_diag_uninit(struct gw_policy_diag *d);
/* "file:line:column: message" for error I (always NUL-terminated). */
void gw_policy_diag_format(const struct gw_policy_diag *d, size_t i, char *out, size_t outlen);

/* ---- loading ---------------------------------------------------------- */

/*
 * Known model routes and tool resources.  When a catalogue is given, a
 * policy naming a route or resource outside it is an error (a typo would
 * otherwise grant nothing, or deny nothing, silently).
 */
struct gw_policy_catalogue {
	const char *const *routes;
	size_t nroutes;
	const char *const *tools;
	size_t ntools;
};

struct gw_policy_load_opts {
	const struct gw_policy_catalogue *catalogue; /* NULL: names are not checked */
	struct aam_yaml_limits yaml;                 /* zero fields: the policy defaults */
	size_t max_policies;                         /* 0: GW_POLICY_MAX_POLICIES */
};

typedef struct gw_policy_set gw_policy_set;

/*
 * Loads every PATH (a file, or a folder whose *.yaml and *.yml files are
 * read in name order) into one set.  OPTS may be NULL.  On success *OUT
 * holds one reference.  On failure *OUT is NULL, DIAG (may be NULL) holds
 * every error found, and the result is AAM_E_CONFIG (policy errors),
 * AAM_E_NOTFOUND / AAM_E_IO (unreadable path), AAM_E_TOOBIG or AAM_E_NOMEM.
 */
int gw_policy_set_load(const char *const *paths, size_t npaths,
                       const struct gw_policy_load_opts *opts, gw_policy_set **out,
                       struct gw_policy_diag *diag);
/* The same for one in-memory document stream; NAME is used in errors. */
int gw_policy_set_load_buffer(const char *name, const void *data, size_t len,
                              const struct gw_policy_load_opts *opts, gw_policy_set **out,
                              struct gw_policy_diag *diag);

gw_policy_set *gw_policy_set_ref(gw_policy_set *set);
void gw_policy_set_unref(gw_policy_set *set);

size_t gw_policy_set_count(const gw_policy_set *set);
/* Name of policy I; policies are ordered by name. */
const char *gw_policy_set_name(const gw_policy_set *set, size_t i);
/* SHA-256 of the canonical form, raw and as 64 lowercase hex digits. */
void gw_policy_set_hash(const gw_policy_set *set, uint8_t out[32]);
const char *gw_policy_set_hash_hex(const gw_policy_set *set);
/* Appends the canonical form (the bytes that are hashed) to OUT. */
int gw_policy_set_canonical(const gw_policy_set *set, struct aam_buf *out);

/* ---- requests and decisions ------------------------------------------ */

enum gw_policy_kind {
	GW_POLICY_MODEL = 1, /* a model call on a route */
	GW_POLICY_TOOL = 2,  /* an action on a tool resource */
};

/*
 * What is being asked.  Strings are NUL-terminated and borrowed for the
 * call; NULL means absent.  Nothing here is copied or retained.
 */
struct gw_policy_request {
	/* Who: the authenticated workload and its identity attributes. */
	const char *workload; /* SPIFFE ID, required */
	const char *owner, *team, *environment, *deployment;
	bool attested; /* false: the identity came from a virtual key */

	enum gw_policy_kind kind;
	/* Model calls. */
	const char *model;  /* route name */
	const char *region; /* region the route resolves to, if known */
	int64_t max_tokens; /* tokens asked for; 0 when not given */
	/* Tool actions. */
	const char *resource;
	const char *action;
	const json_t *params; /* a JSON object, or NULL for none */

	/* Context. */
	int64_t now;                     /* Unix seconds, UTC; injected so tests can fix it */
	const char *runtime_environment; /* where the gateway runs ("prod", ...) */
};

enum gw_policy_code {
	GW_POLICY_ALLOWED = 1,         /* a rule allowed the request */
	GW_POLICY_EXPLICIT_DENY,       /* a deny list named the request */
	GW_POLICY_NOT_ATTESTED,        /* require_attested and a virtual-key identity */
	GW_POLICY_CONDITION_FAILED,    /* a rule matched but a condition did not hold */
	GW_POLICY_LIMIT_EXCEEDED,      /* the request asks more than a cap allows */
	GW_POLICY_CREDENTIAL_CONFLICT, /* two allowing rules name different credentials */
	GW_POLICY_NO_MATCH,            /* nothing allows the request */
	GW_POLICY_INVALID_REQUEST,     /* the request itself is malformed */
};

/* "allowed", "explicit_deny", ... (stable; used in tests and audit). */
const char *gw_policy_code_name(enum gw_policy_code code);

/*
 * One reason.  Strings point into the set (or are static) and live as
 * long as the caller holds the set.
 */
struct gw_policy_reason {
	enum gw_policy_code code;
	const char *policy;  /* policy name, NULL for set-wide reasons */
	const char *rule;    /* "identity", "conditions", "models", "tools[2]", or NULL */
	const char *field;   /* "spec.tools[0].deny", "spec.tools[1].when.amount.max", ... */
	const char *value;   /* the list entry or parameter involved, or NULL */
	const char *message; /* a short sentence */
	const char *file;    /* where the field is written, or NULL */
	unsigned line, col;
};

/* Limits and budgets that the gateway enforces for an allowed request. */
struct gw_policy_limits {
	int64_t rpm, tpm, max_tokens, max_parallel; /* 0: no limit */
	double daily_usd, monthly_usd;              /* < 0: no budget */
};

enum gw_policy_audit_facet {
	GW_AUDIT_IDENTITY = 1u << 0,
	GW_AUDIT_POLICY = 1u << 1,
	GW_AUDIT_ACTION = 1u << 2,
	GW_AUDIT_PARAMETERS = 1u << 3,
	GW_AUDIT_OUTCOME = 1u << 4,
	GW_AUDIT_MODEL = 1u << 5,
	GW_AUDIT_COST = 1u << 6,
};
#define GW_AUDIT_DEFAULT (GW_AUDIT_IDENTITY | GW_AUDIT_POLICY | GW_AUDIT_ACTION | GW_AUDIT_OUTCOME)

struct gw_policy_decision {
	bool allow;
	const char *set_hash; /* hex SHA-256 of the deciding set */
	size_t nreasons;
	size_t truncated; /* reasons that did not fit */
	struct gw_policy_reason reasons[GW_POLICY_MAX_REASONS];
	/* Obligations of an allow (the most restrictive of the allowing rules). */
	const char *credential; /* vault credential for a tool call, or NULL */
	struct gw_policy_limits limits;
	unsigned audit; /* gw_policy_audit_facet bits to record */
};

/*
 * Decides REQ against SET and fills OUT completely (OUT->allow is false on
 * every error path).  Returns AAM_OK when a decision was made (allow or
 * deny), AAM_E_INVAL for a NULL argument or a malformed request (then
 * OUT is a deny with an invalid_request reason).  Never allocates.
 */
int gw_policy_decide(const gw_policy_set *set, const struct gw_policy_request *req,
                     struct gw_policy_decision *out);

/*
 * Whether parameter NAME may be written to the audit record in plain text
 * for this decision: only if every policy behind the decision lists it in
 * audit.plain.  Otherwise it is recorded as a keyed hash.
 */
bool gw_policy_param_is_plain(const gw_policy_set *set, const struct gw_policy_decision *d,
                              const char *name);

/*
 * Formats a reason on one line:
 *   CODE policy=P rule=R field=F value=V at=FILE:LINE:COL: MESSAGE
 * (absent parts left out).  Returns AAM_E_TOOBIG if OUT was too small (the
 * text is then truncated but terminated).
 */
int gw_policy_reason_format(const struct gw_policy_reason *r, char *out, size_t outlen);

/*
 * Builds a request from JSON (the format of `aamctl policy explain` and of
 * policies/tests/ cases):
 *   {"identity": {"workload": "spiffe://...", "owner": "...", "team": "...",
 *                 "environment": "...", "deployment": "...", "attested": true},
 *    "model": "route", "region": "eu", "max_tokens": 1000,
 *    "tool": {"resource": "r", "action": "a", "params": {...}},
 *    "time": "2026-01-05T10:00:00Z" or Unix seconds, "environment": "prod"}
 * Exactly one of model and tool.  Unknown keys are errors.  OUT borrows
 * strings from J.  Without "time", OUT->now is DEFAULT_NOW.  On error WHY
 * receives a sentence naming the field.
 */
int gw_policy_request_from_json(json_t *j, int64_t default_now, struct gw_policy_request *out,
                                char *why, size_t whylen);

/* Parses an RFC 3339 timestamp ("2026-01-05T10:00:00Z", offsets allowed). */
int gw_policy_parse_time(const char *s, int64_t *out);

/* ---- hot reload ------------------------------------------------------- */

/*
 * A store holds the set in service.  Readers acquire it without blocking
 * (a few atomic operations), decide, and release it; a reload builds a new
 * set off to the side and swaps it in atomically.  A reload that fails
 * leaves the last good set serving.
 */
typedef struct gw_policy_store gw_policy_store;

int gw_policy_store_new(gw_policy_store **out);
void gw_policy_store_free(gw_policy_store *store);

/* Puts SET in service (the store takes its own reference). */
int gw_policy_store_swap(gw_policy_store *store, gw_policy_set *set);
/*
 * Loads PATHS and swaps the result in.  On failure the current set stays,
 * each error is logged with its position (event policy.reload_error) and
 * also returned in DIAG (may be NULL).
 */
int gw_policy_store_reload(gw_policy_store *store, const char *const *paths, size_t npaths,
                           const struct gw_policy_load_opts *opts, struct gw_policy_diag *diag);
/*
 * Reloads only if a file under PATHS changed (name, size or modification
 * time) since the last reload through this function; *RELOADED (may be
 * NULL) says whether it did.  Cheap enough to call from a timer.
 */
int gw_policy_store_reload_if_changed(gw_policy_store *store, const char *const *paths,
                                      size_t npaths, const struct gw_policy_load_opts *opts,
                                      struct gw_policy_diag *diag, bool *reloaded);
/* The set in service with a new reference, or NULL if none was loaded. */
gw_policy_set *gw_policy_store_acquire(gw_policy_store *store);
/* Drops a reference obtained from gw_policy_store_acquire. */
void gw_policy_store_release(gw_policy_set *set);
/* How many sets have been swapped in. */
uint64_t gw_policy_store_generation(const gw_policy_store *store);

#endif /* AAM_GATEWAY_POLICY_H */
