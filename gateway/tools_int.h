/*
 * Internals of the tool and MCP modules, shared by gateway/tools_*.c and
 * gateway/mcp_*.c and by nothing else.
 */
#ifndef AAM_GATEWAY_TOOLS_INT_H
#define AAM_GATEWAY_TOOLS_INT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/policy_internal.h"
#include "gateway/tools.h"

struct gwt_catalog {
	struct pol_arena arena;    /* actions, parameters, templates, regexes */
	aam_yaml_stream **streams; /* every string points into these */
	size_t nstreams;
	struct gwt_resource *res;
	size_t nres, capres;
	struct gwt_mcp_server *mcp;
	size_t nmcp, capmcp;
	json_t **owned; /* body templates and enum lists to release */
	size_t nowned, capowned;
	const char **pres; /* policy resources, deduplicated */
	size_t npres, cappres;
	char **names; /* strings the loader built ("mcp.<name>") */
	size_t nnames, capnames;
};

struct gw_tools {
	struct gwt_catalog *catalog;
	struct gwt_rate *rate;
};

/* Sets E (may be NULL): CODE, PARAM (may be NULL) and a printf message. */
void gwt_err_set(struct gwt_err *e, const char *code, const char *param, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/*
 * Parses a string template: literal text and {name} placeholders, each
 * naming one of PARAMS.  On error WHY receives a sentence.
 */
int gwt_tmpl_parse(struct pol_arena *a, const char *s, const struct gwt_param *params,
                   size_t nparams, struct gwt_tmpl *out, char *why, size_t whylen);
/* Index of the parameter NAME (LEN bytes) in PARAMS, or -1. */
long gwt_param_find(const struct gwt_param *params, size_t n, const char *name, size_t len);

/* The value of a JSON scalar as text (integers exactly, reals shortest). */
int gwt_scalar_text(const json_t *v, struct aam_buf *b);
/* ECMAScript Number::toString of D (finite), as JCS writes numbers. */
int gwt_number_text(double d, char *out, size_t outlen);

/* Monotonic clock, microseconds. */
int64_t gwt_mono_us(void);

/* Key of a decision's rate limit: the workload and the first allowing rule. */
void gwt_rate_key(const struct gw_policy_request *req, const struct gw_policy_decision *d,
                  char *out, size_t outlen);

/* The credential a call used, for its audit record: the name and the version, never the value. */
struct gwt_cred_use {
	const char *name;
	uint32_t version; /* as aam-vault's INJECT reply named it; 0 when unknown */
};

/*
 * The audit fields every tool and MCP record carries, added to EV:
 * "action" {resource, operation, params_sha256[, params {plain ones}]},
 * "credential" {name[, version]} when one was chosen (the version when the
 * vault named it), "outcome" {status, latency_us} and the tool name for MCP.
 */
int gwt_audit_fields(json_t *ev, const gw_policy_set *set, const struct gw_policy_decision *d,
                     const char *resource, const char *action, const json_t *params,
                     const struct gwt_cred_use *credential, unsigned upstream_status,
                     int64_t latency_us);

/*
 * Writes one audit record of KIND through IO and waits until it is
 * durable.  D is the decision, or NULL when none was made (then DECISION
 * and REASON say what happened).  ERROR names a gateway-side failure
 * after an allow; EXTRA (may be NULL, stolen) is merged last.
 */
int gwt_audit_write(const struct gwt_io *io, const char *kind, const gw_policy_set *set,
                    const struct gw_policy_decision *d, const char *decision, const char *reason,
                    const char *resource, const char *action, const json_t *params,
                    const struct gwt_cred_use *credential, unsigned status, int64_t latency_us,
                    const char *error, json_t *extra);

/*
 * Parses a call's JSON parameters (an empty body is {}): a JSON object
 * within GWT_MAX_ARGS bytes and depth 8.  On error E and *STATUS (400 or
 * 413) say why.
 */
int gwt_parse_params(const uint8_t *body, size_t len, json_t **out, struct gwt_err *e,
                     unsigned *status);

/* The action's parameters as a JSON Schema object (new reference). */
json_t *gwt_action_schema(const struct gwt_action *a);

/* {"error":{"code","message"[,"parameter"]}} for E into B. */
int gwt_err_body(struct aam_buf *b, const struct gwt_err *e);
/*
 * The 403 body of a policy denial:
 * {"error":{"code":"policy_denied","message","reason","policy","rule","field"}}.
 */
int gwt_deny_body(struct aam_buf *b, const struct gw_policy_decision *d);

#endif /* AAM_GATEWAY_TOOLS_INT_H */
