/*
 * Tool calls (issue 7): the tool catalogue, parameter schemas, request
 * templates, and the pipeline behind POST /v1/tools/{resource}/{action}.
 *
 * A catalogue (YAML, kind ToolCatalog, docs/TOOLS.md) names resources such
 * as `salesforce.accounts`, each with actions; an action is an upstream
 * HTTP request template (method, path and query placeholders filled from
 * the call's parameters and escaped, headers, a JSON body template), a
 * parameter schema and the vault credential to inject.  The same files
 * list upstream MCP servers for the MCP gateway (gateway/mcp.h).
 *
 * A call goes: parameters validated against the schema -> policy decision
 * (the action allowed and not denied, `when` conditions, rpm limits) ->
 * aam-vault INJECT with the credential (the vault enforces its bindings
 * and scrubs the response) -> an audit record made durable -> the
 * response to the agent.  A denial is answered 403 with the reason code
 * and the policy name, and audited too.
 *
 * The pipeline does not call the daemon directly: it reaches the vault
 * and the audit log through struct gwt_io, so tests can drive it with a
 * stub upstream and see that nothing reaches it when a call is refused.
 * gateway/tools_gw.c wires it to aam-gateway (gateway/gw.h).
 */
#ifndef AAM_GATEWAY_TOOLS_H
#define AAM_GATEWAY_TOOLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/yaml.h"
#include "gateway/policy.h"

struct pol_regex; /* gateway/policy_internal.h: a bounded regex */

#define GWT_KIND          "ToolCatalog"
#define GWT_MAX_PARAMS    64u                /* parameters per action */
#define GWT_MAX_ARGS      (64u * 1024)       /* bytes of a call's JSON parameters */
#define GWT_STRING_MAX    4096               /* default max_length of a string parameter */
#define GWT_ITEMS_MAX     100                /* default max_items of an array parameter */
#define GWT_MAX_RESPONSE  (4u * 1024 * 1024) /* upstream response kept for the agent */
#define GWT_MAX_URL       8192u              /* as aam-vault accepts */
#define GWT_MAX_HDR_VALUE 8192u
#define GWT_TIMEOUT_MS    30000 /* default upstream timeout */
#define GWT_NAME_MAX      128u  /* resource, action, credential names */

/* ---- errors ----------------------------------------------------------- */

/*
 * A refused call: a stable snake_case CODE for the JSON body, the
 * parameter involved (empty when none) and a sentence.  Messages are
 * built only from names the catalogue controls, never from values the
 * caller sent, so an error can be logged and returned safely.
 */
struct gwt_err {
	char code[48];
	char param[GWT_NAME_MAX];
	char msg[256];
};

/* ---- the catalogue ---------------------------------------------------- */

enum gwt_type { GWT_STRING = 1, GWT_INTEGER, GWT_NUMBER, GWT_BOOLEAN, GWT_ARRAY };

/* A number bound of the schema, kept exact for integers. */
struct gwt_num {
	bool set;
	bool is_int;
	int64_t i;
	double d;
};

struct gwt_param {
	const char *name;
	const char *description;
	enum gwt_type type;
	enum gwt_type items; /* element type of an ARRAY (a scalar type) */
	bool required;
	json_t *enum_values;        /* array of allowed values, or NULL */
	int64_t min_length;         /* strings, in code points; 0: none */
	int64_t max_length;         /* strings (code points) and arrays (items) */
	struct gwt_num min, max;    /* numbers and integers */
	const char *pattern;        /* bounded regex (docs/POLICY.md syntax), whole match */
	const struct pol_regex *re; /* compiled PATTERN, or NULL */
	unsigned line, col;
};

/* One piece of a string template: literal text or a parameter's value. */
struct gwt_seg {
	const char *lit; /* literal text (LEN bytes), or NULL for a parameter */
	size_t len;
	size_t param; /* index into the action's parameters */
};

struct gwt_tmpl {
	struct gwt_seg *segs;
	size_t n;
};

/* A query or header template: NAME: VALUE. */
struct gwt_kv {
	const char *name;
	struct gwt_tmpl value;
};

struct gwt_action {
	const char *name;
	const char *resource; /* the resource it belongs to */
	const char *description;
	const char *method;   /* upper case */
	const char *base_url; /* scheme://host[:port][/prefix], no trailing '/' */
	struct gwt_tmpl path; /* below base_url; starts with '/' */
	struct gwt_kv *query;
	size_t nquery;
	struct gwt_kv *headers; /* catalogue, resource and action headers merged */
	size_t nheaders;
	json_t *body; /* JSON template, or NULL for no body */
	struct gwt_param *params;
	size_t nparams;
	const char *credential; /* vault credential (a policy rule's credential overrides it) */
	int64_t timeout_ms;
	const char *file;
	unsigned line, col;
};

struct gwt_resource {
	const char *name;
	const char *description;
	struct gwt_action *actions;
	size_t nactions;
};

/* An MCP tool, resource or prompt mapped onto a policy resource and action. */
struct gwt_mcp_map {
	const char *name; /* the upstream tool name; NULL for the default mapping */
	const char *resource;
	const char *action;
};

/* One upstream MCP server (gateway/mcp.h). */
struct gwt_mcp_server {
	const char *name; /* tool-name prefix: "<name>__<tool>" */
	const char *url;
	const char *credential;
	const char *resource; /* policy resource of unmapped tools; default "mcp.<name>" */
	int64_t timeout_ms;
	struct gwt_mcp_map *tools; /* explicit tool mappings */
	size_t ntools;
	struct gwt_mcp_map resources; /* resources/read: resource + action */
	struct gwt_mcp_map prompts;   /* prompts/get: resource + action */
	const char *file;
	unsigned line, col;
};

struct gwt_catalog;

/*
 * Loads every PATH (a file, or a folder whose *.yaml / *.yml files are
 * read in name order) as one catalogue.  Strict: unknown keys, wrong
 * types, undefined placeholders, duplicate resources or MCP servers
 * across files, ... are errors; ERR (may be NULL) receives the first one
 * as file:line:column.  AAM_E_CONFIG for a bad catalogue, AAM_E_NOTFOUND
 * / AAM_E_IO for an unreadable path, AAM_E_NOMEM.
 */
int gwt_catalog_load(const char *const *paths, size_t npaths, struct gwt_catalog **out,
                     struct aam_yaml_error *err);
/* The same for one in-memory file; NAME is used in errors. */
int gwt_catalog_load_buffer(const char *name, const void *data, size_t len,
                            struct gwt_catalog **out, struct aam_yaml_error *err);
void gwt_catalog_free(struct gwt_catalog *c);

size_t gwt_catalog_resource_count(const struct gwt_catalog *c);
const struct gwt_resource *gwt_catalog_resource(const struct gwt_catalog *c, size_t i);
/* NULL when unknown. */
const struct gwt_resource *gwt_catalog_find_resource(const struct gwt_catalog *c, const char *name);
const struct gwt_action *gwt_catalog_find(const struct gwt_catalog *c, const char *resource,
                                          const char *action);
size_t gwt_catalog_mcp_count(const struct gwt_catalog *c);
const struct gwt_mcp_server *gwt_catalog_mcp(const struct gwt_catalog *c, size_t i);
const struct gwt_mcp_server *gwt_catalog_find_mcp(const struct gwt_catalog *c, const char *name);
/*
 * Every policy resource the catalogue defines (tool resources and the
 * MCP mappings), for gw_policy_catalogue.tools.  Borrowed; lives as long
 * as C.
 */
const char *const *gwt_catalog_policy_resources(const struct gwt_catalog *c, size_t *n);

/* Whether NAME is a valid resource name (dot-separated [A-Za-z0-9_-] segments). */
bool gwt_resource_name_ok(const char *name);
/* Whether NAME is a valid action name (letters, digits and . _ : -). */
bool gwt_action_name_ok(const char *name);

/* ---- parameters ------------------------------------------------------- */

/*
 * Checks PARAMS (a JSON object) against A's schema: every member is a
 * declared parameter of the right type within its bounds, every required
 * one is present.  AAM_E_INVAL with E filled (code invalid_parameters)
 * on the first violation.
 */
int gwt_params_check(const struct gwt_action *a, const json_t *params, struct gwt_err *e);

/* Whether S (LEN bytes) is valid UTF-8; *CODEPOINTS (may be NULL) counts them. */
bool gwt_utf8_ok(const char *s, size_t len, size_t *codepoints);

/* ---- rendering -------------------------------------------------------- */

struct gwt_header {
	char *name;
	char *value;
};

/* An upstream request, built from a template and validated parameters. */
struct gwt_request {
	const char *method;
	struct aam_buf url;
	struct gwt_header *headers;
	size_t nheaders;
	struct aam_buf body;
};

void gwt_request_init(struct gwt_request *r);
void gwt_request_uninit(struct gwt_request *r);
/* Adds a header (copied). */
int gwt_request_add_header(struct gwt_request *r, const char *name, const char *value);

/*
 * Fills OUT from A and PARAMS (already checked by gwt_params_check).
 * Path placeholders take one path segment each: a value that is empty,
 * "." or "..", or holds '/', '\\' or a control character is refused;
 * everything outside RFC 3986's unreserved set is percent-encoded.  Query
 * values are percent-encoded the same way; a query or header whose
 * template names an absent parameter is left out.  Header values may not
 * hold control characters.  AAM_E_INVAL with E filled (code
 * invalid_parameters) on a refusal, AAM_E_TOOBIG past GWT_MAX_URL.
 */
int gwt_render(const struct gwt_action *a, const json_t *params, struct gwt_request *out,
               struct gwt_err *e);

/*
 * Appends the percent-encoding of S (LEN bytes) to B: RFC 3986
 * unreserved characters (A-Z a-z 0-9 - . _ ~) are kept, every other byte
 * becomes %XX (upper-case hex).
 */
int gwt_pct_encode(struct aam_buf *b, const char *s, size_t len);

/* ---- audit digest ----------------------------------------------------- */

/*
 * Appends the RFC 8785 (JCS) canonical form of J to B: members sorted by
 * the UTF-16 code units of their names, no whitespace, JCS string
 * escaping, numbers in ECMAScript's shortest round-trip form.
 */
int gwt_jcs(const json_t *j, struct aam_buf *b);
/* Lower-case hex SHA-256 of the JCS form of PARAMS ({} for NULL). */
int gwt_params_digest(const json_t *params, char out[65]);

/* ---- rate limits ------------------------------------------------------ */

struct gwt_rate;

int gwt_rate_new(size_t max_keys, struct gwt_rate **out);
void gwt_rate_free(struct gwt_rate *r);
/*
 * Takes one call from KEY's budget of RPM calls per minute (a token
 * bucket of RPM tokens refilled continuously).  True when allowed; false
 * with *RETRY_AFTER_S (may be NULL) set to the seconds until a token is
 * back.  NOW_US is a monotonic clock in microseconds.
 */
bool gwt_rate_take(struct gwt_rate *r, const char *key, int64_t rpm, int64_t now_us,
                   unsigned *retry_after_s);

/* ---- the call pipeline ------------------------------------------------- */

/* An upstream response as the vault returned it (scrubbed). */
struct gwt_response {
	unsigned status;
	struct aam_buf headers; /* "name\0value\0" pairs, names lower-cased */
	struct aam_buf body;
	bool truncated; /* the body was cut short (limit or upstream error) */
	/* The version of the credential the vault injected; 0 when it did not say. */
	uint32_t credential_version;
};

void gwt_response_init(struct gwt_response *r, size_t max_body);
void gwt_response_uninit(struct gwt_response *r);
/* A response header (NAME lower case), or NULL. */
const char *gwt_response_header(const struct gwt_response *r, const char *name);

/*
 * What the pipeline needs from the daemon.  INJECT sends REQ through
 * aam-vault with CREDENTIAL and fills RESP (returns AAM_OK once a status
 * came back, or the vault's error: AAM_E_DENIED outside the bindings,
 * AAM_E_NOTFOUND unknown credential, AAM_E_TIMEOUT, AAM_E_IO ...).
 * AUDIT_NEW starts an event of KIND with the identity and request fields;
 * AUDIT makes EV durable (an error means: do not answer the request).
 * NOW_US may be NULL (CLOCK_MONOTONIC then).
 */
struct gwt_io {
	void *ctx;
	int (*inject)(void *ctx, const struct gwt_request *req, const char *credential,
	              int64_t timeout_ms, struct gwt_response *resp);
	int (*audit_new)(void *ctx, const char *kind, json_t **ev);
	/* Adds the decision's fields (gw_audit_add_decision); NULL: a built-in form. */
	int (*audit_decision)(json_t *ev, const struct gw_policy_decision *d);
	int (*audit)(void *ctx, json_t *ev);
	int64_t (*now_us)(void *ctx);
};

/* Loaded catalogue plus the shared state of the tool endpoints. */
struct gw_tools;

int gw_tools_new(struct gwt_catalog *catalog, struct gw_tools **out); /* takes CATALOG */
void gw_tools_free(struct gw_tools *t);
const struct gwt_catalog *gw_tools_catalog(const struct gw_tools *t);

/* One tool call as the HTTP layer hands it over. */
struct gwt_call {
	const char *resource;
	const char *action;
	const uint8_t *body; /* the JSON parameters object (empty: {}) */
	size_t body_len;
	const gw_policy_set *set;       /* NULL: no policy loaded (everything denied) */
	struct gw_policy_request *preq; /* identity fields set; the pipeline sets the rest */
};

/* What to answer.  BODY is JSON unless CONTENT_TYPE says otherwise. */
struct gwt_result {
	unsigned status;
	struct aam_buf body;
	char content_type[128];
	char code[48];        /* error code when refused, "" when the upstream answered */
	unsigned retry_after; /* seconds, for 429 */
	const char *decision; /* "allow", "deny", or "error" for /metrics */
};

void gwt_result_init(struct gwt_result *r);
void gwt_result_uninit(struct gwt_result *r);

/*
 * Runs one call and fills OUT completely (status, body).  Returns AAM_OK
 * whenever OUT holds an answer, also for refusals.
 */
int gwt_call_run(struct gw_tools *t, const struct gwt_io *io, const struct gwt_call *c,
                 struct gwt_result *out);

/*
 * GET /v1/tools/: the catalogue's actions the caller's policy could allow
 * (allowed, or allowed for some parameters), with their schemas, as
 * {"tools":[{"resource","action","description","parameters":{...}}]}.
 */
int gwt_list_run(struct gw_tools *t, const struct gwt_call *c, struct gwt_result *out);

/*
 * Whether a listing should show an item: the decision (made with KNOWN,
 * the parameters the listing knows, or NULL) allows it, or only `when`
 * conditions on parameters outside KNOWN stood in the way, so some call
 * could be allowed.  An explicit deny hides it.
 */
bool gwt_decision_listable(const struct gw_policy_decision *d, const json_t *known);

/* The first reason of a deny worth naming (explicit deny first), or NULL. */
const struct gw_policy_reason *gwt_deny_reason(const struct gw_policy_decision *d);

#endif /* AAM_GATEWAY_TOOLS_H */
