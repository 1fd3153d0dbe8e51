/*
 * The JSON-RPC methods of the MCP gateway: initialize, ping, and the
 * aggregated, policy-filtered tools, resources and prompts of the
 * upstream servers.
 *
 * Names.  A tool or prompt "search" of server "docs" is "docs__search"
 * to the agent (server names have no '_', so the first "__" splits).
 * Resource URIs are global already and are kept; the gateway remembers
 * which server listed a URI to route resources/read.
 *
 * Policy.  Each item maps to a policy resource and action (catalogue
 * spec.mcp_servers[].tools, .resources, .prompts; unmapped tools are
 * action <tool> on resource mcp.<server>).  Listings show what the
 * caller may call, or may call with suitable arguments; every call is
 * decided with its arguments as the parameters, so `when` conditions
 * apply, then forwarded and audited ("mcp.call").
 */
#include "gateway/mcp_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "common/json.h"
#include "common/log.h"

json_t *
gwm_initialize_result(const char *negotiated)
{
	return json_pack(
	        "{s:s, s:{s:{s:b}, s:{s:b, s:b}, s:{s:b}}, s:{s:s, s:s}, s:s}", "protocolVersion",
	        negotiated, "capabilities", "tools", "listChanged", 0, "resources", "subscribe", 0,
	        "listChanged", 0, "prompts", "listChanged", 0, "serverInfo", "name", "aam-gateway",
	        "version", AAM_VERSION, "instructions",
	        "Tools, resources and prompts of the upstream MCP servers this identity may "
	        "use, named <server>__<name>. Every call is authorized and audited.");
}

static json_t *
fail(const struct gwm_msg *msg, int code, const char *text)
{
	struct gwm_rpc_error e = {0};
	gwm_rpc_error_set(&e, code, "%s", text);
	return gwm_error(msg->id, &e);
}

/* ---- names and policy ------------------------------------------------- */

/* Splits "server__name": the server's index and the upstream name. */
static bool
split_name(const struct gw_mcp *m, const char *full, size_t *server, const char **name)
{
	const char *sep = full != NULL ? strstr(full, GWM_SEP) : NULL;
	if (sep == NULL || sep == full || sep[2] == '\0')
		return false;
	size_t n = (size_t)(sep - full);
	for (size_t i = 0; i < m->nup; i++) {
		const char *s = gwt_catalog_mcp(m->cat, i)->name;
		if (strlen(s) == n && memcmp(s, full, n) == 0) {
			*server = i;
			*name = sep + 2;
			return true;
		}
	}
	return false;
}

/* The policy resource and action of tool NAME of SRV; false when it has none. */
static bool
tool_map(const struct gwt_mcp_server *srv, const char *name, const char **resource,
         const char **action)
{
	for (size_t i = 0; i < srv->ntools; i++)
		if (strcmp(srv->tools[i].name, name) == 0) {
			*resource = srv->tools[i].resource;
			*action = srv->tools[i].action;
			return true;
		}
	*resource = srv->resource;
	*action = name;
	return gwt_action_name_ok(name);
}

static void
decide(struct gwm_ctx *x, const char *resource, const char *action, const json_t *params,
       struct gw_policy_decision *d)
{
	struct gw_policy_request *pr = x->req->preq;
	pr->kind = GW_POLICY_TOOL;
	pr->resource = resource;
	pr->action = action;
	pr->params = params;
	if (x->req->set == NULL) {
		memset(d, 0, sizeof(*d));
		d->nreasons = 1;
		d->set_hash = "";
		d->reasons[0] = (struct gw_policy_reason){.code = GW_POLICY_NO_MATCH,
		                                          .message = "no policy set is loaded"};
		return;
	}
	gw_policy_decide(x->req->set, pr, d);
}

/* The JSON-RPC error of a denial: the reason and the policy, as data too. */
static json_t *
denied(const struct gwm_msg *msg, const struct gw_policy_decision *d)
{
	const struct gw_policy_reason *r = gwt_deny_reason(d);
	const char *code = gw_policy_code_name(r != NULL ? r->code : GW_POLICY_NO_MATCH);
	struct gwm_rpc_error e = {0};
	if (r != NULL && r->policy != NULL)
		gwm_rpc_error_set(&e, GWM_POLICY_DENIED, "denied by policy %s (%s)", r->policy,
		                  code);
	else
		gwm_rpc_error_set(&e, GWM_POLICY_DENIED, "denied: no policy allows this call (%s)",
		                  code);
	e.data = json_pack("{s:s, s:o}", "reason", code, "policy",
	                   r != NULL && r->policy != NULL ? json_string(r->policy) : json_null());
	if (e.data != NULL && r != NULL && r->rule != NULL)
		json_object_set_new(e.data, "rule", json_string(r->rule));
	if (e.data != NULL && r != NULL && r->field != NULL)
		json_object_set_new(e.data, "field", json_string(r->field));
	return gwm_error(msg->id, &e);
}

/* ---- listings ---------------------------------------------------------- */

/*
 * Every item of METHOD's listing (member KEY) from server I, following
 * nextCursor; NULL when the server failed (logged).
 */
static json_t *
list_all(struct gwm_ctx *x, size_t i, const char *method, const char *key)
{
	const struct gwt_mcp_server *srv = gwt_catalog_mcp(x->m->cat, i);
	json_t *items = json_array();
	json_t *params = NULL;
	for (int page = 0; page < GWM_MAX_PAGES && items != NULL; page++) {
		json_t *res = NULL;
		struct gwm_rpc_error e = {0};
		int rc = gwm_upstream_call(x->m->up[i], x->io, srv->credential, method, params,
		                           &res, NULL, NULL, &e);
		json_decref(params);
		params = NULL;
		if (rc != AAM_OK) {
			aam_log(AAM_LOG_WARN, "mcp.upstream_list_failed",
			        AAM_F_STR("server", srv->name), AAM_F_STR("method", method),
			        AAM_F_INT("code", e.code), AAM_F_STR("message", e.message));
			gwm_rpc_error_clear(&e);
			json_decref(items);
			return NULL;
		}
		json_t *arr = json_object_get(res, key);
		for (size_t k = 0; json_is_array(arr) && k < json_array_size(arr); k++)
			if (json_is_object(json_array_get(arr, k)))
				json_array_append(items, json_array_get(arr, k));
		json_t *next = json_object_get(res, "nextCursor");
		if (json_is_string(next))
			params = json_pack("{s:O}", "cursor", next);
		json_decref(res);
		if (params == NULL)
			break;
	}
	json_decref(params);
	return items;
}

static void
remember_uri(struct gw_mcp *m, const char *uri, size_t server)
{
	pthread_mutex_lock(&m->uri_mu);
	for (size_t i = 0; i < GWM_URI_CACHE; i++)
		if (m->uris[i].uri != NULL && strcmp(m->uris[i].uri, uri) == 0) {
			m->uris[i].server = server;
			pthread_mutex_unlock(&m->uri_mu);
			return;
		}
	struct gwm_uri *slot = &m->uris[m->uri_next];
	m->uri_next = (m->uri_next + 1) % GWM_URI_CACHE;
	free(slot->uri);
	slot->uri = strdup(uri);
	slot->server = server;
	pthread_mutex_unlock(&m->uri_mu);
}

static bool
uri_server(struct gw_mcp *m, const char *uri, size_t *server)
{
	bool found = false;
	pthread_mutex_lock(&m->uri_mu);
	for (size_t i = 0; i < GWM_URI_CACHE && !found; i++)
		if (m->uris[i].uri != NULL && strcmp(m->uris[i].uri, uri) == 0) {
			*server = m->uris[i].server;
			found = true;
		}
	pthread_mutex_unlock(&m->uri_mu);
	if (!found && m->nup == 1) {
		*server = 0;
		found = true;
	}
	return found;
}

enum list_kind { L_TOOLS, L_PROMPTS, L_RESOURCES, L_TEMPLATES };

static json_t *
list(struct gwm_ctx *x, const struct gwm_msg *msg, enum list_kind kind)
{
	static const char *const methods[] = {"tools/list", "prompts/list", "resources/list",
	                                      "resources/templates/list"};
	static const char *const keys[] = {"tools", "prompts", "resources", "resourceTemplates"};
	if (json_object_get(msg->params, "cursor") != NULL)
		return fail(msg, GWM_INVALID_PARAMS,
		            "invalid cursor (the gateway lists everything at once)");
	json_t *out = json_array();
	for (size_t i = 0; i < x->m->nup && out != NULL; i++) {
		const struct gwt_mcp_server *srv = gwt_catalog_mcp(x->m->cat, i);
		json_t *items = list_all(x, i, methods[kind], keys[kind]);
		for (size_t k = 0; items != NULL && k < json_array_size(items); k++) {
			json_t *it = json_array_get(items, k);
			const char *name = json_string_value(json_object_get(it, "name"));
			const char *uri = json_string_value(json_object_get(it, "uri"));
			const char *res = NULL, *act = NULL;
			json_t *p = NULL;
			bool ok = true;
			if (kind == L_TOOLS) {
				ok = name != NULL && tool_map(srv, name, &res, &act);
			} else if (kind == L_PROMPTS) {
				ok = name != NULL;
				res = srv->prompts.resource;
				act = srv->prompts.action;
				p = ok ? json_pack("{s:s}", "name", name) : NULL;
			} else {
				res = srv->resources.resource;
				act = srv->resources.action;
				ok = kind == L_TEMPLATES ||
				     (uri != NULL && strlen(uri) <= GWM_URI_MAX);
				if (ok && kind == L_RESOURCES)
					p = json_pack("{s:s}", "uri", uri);
			}
			struct gw_policy_decision d;
			if (ok)
				decide(x, res, act, p, &d);
			bool show = ok && gwt_decision_listable(&d, p);
			json_decref(p);
			if (!show)
				continue;
			json_t *copy = json_deep_copy(it);
			if (copy == NULL)
				continue;
			if (kind == L_TOOLS || kind == L_PROMPTS) {
				char *full = NULL;
				if (asprintf(&full, "%s" GWM_SEP "%s", srv->name, name) < 0) {
					json_decref(copy);
					continue;
				}
				json_object_set_new(copy, "name", json_string(full));
				free(full);
			}
			if (kind == L_RESOURCES)
				remember_uri(x->m, uri, i);
			json_array_append_new(out, copy);
		}
		json_decref(items);
	}
	if (out == NULL)
		return NULL;
	return gwm_result(msg->id, json_pack("{s:o}", keys[kind], out));
}

/* ---- calls -------------------------------------------------------------- */

enum call_kind { C_TOOL, C_PROMPT, C_RESOURCE };

static json_t *
call(struct gwm_ctx *x, const struct gwm_msg *msg, enum call_kind kind)
{
	struct gw_mcp *m = x->m;
	const json_t *ps = msg->params;
	size_t si = 0;
	const char *name = NULL, *uri = NULL, *res = NULL, *act = NULL;
	json_t *args = json_object_get(ps, "arguments");
	if (args != NULL && !json_is_object(args))
		return fail(msg, GWM_INVALID_PARAMS, "params.arguments must be an object");
	if (kind == C_RESOURCE) {
		uri = json_string_value(json_object_get(ps, "uri"));
		if (uri == NULL || strlen(uri) == 0 || strlen(uri) > GWM_URI_MAX)
			return fail(msg, GWM_INVALID_PARAMS,
			            "params.uri must be a URI (at most 2048 bytes)");
		if (!uri_server(m, uri, &si))
			return fail(msg, GWM_RESOURCE_NOT_FOUND,
			            "Resource not found (list resources first)");
	} else {
		const char *full = json_string_value(json_object_get(ps, "name"));
		if (full == NULL)
			return fail(msg, GWM_INVALID_PARAMS, "params.name must be a string");
		if (!split_name(m, full, &si, &name))
			return fail(msg, GWM_INVALID_PARAMS,
			            kind == C_TOOL
			                    ? "Unknown tool (names are <server>__<tool>)"
			                    : "Unknown prompt (names are <server>__<prompt>)");
	}
	const struct gwt_mcp_server *srv = gwt_catalog_mcp(m->cat, si);
	if (args != NULL) {
		/* Bounded before anything looks at the values. */
		struct aam_buf b;
		aam_buf_init(&b, GWM_MAX_ARGS);
		int rc = aam_json_dump_buf(args, &b, JSON_COMPACT);
		aam_buf_uninit(&b);
		if (rc != AAM_OK)
			return fail(msg, GWM_INVALID_PARAMS,
			            "params.arguments is larger than 256 KiB");
	}
	/* What the policy sees, and what goes upstream. */
	json_t *pparams, *up;
	if (kind == C_TOOL) {
		if (!tool_map(srv, name, &res, &act))
			return fail(msg, GWM_INVALID_PARAMS,
			            "Unknown tool (its name maps to no action)");
		pparams = args != NULL ? json_incref(args) : json_object();
		up = json_pack("{s:s, s:O}", "name", name, "arguments", pparams);
	} else if (kind == C_PROMPT) {
		res = srv->prompts.resource;
		act = srv->prompts.action;
		pparams = json_pack("{s:s}", "name", name);
		if (args != NULL)
			json_object_set(pparams, "arguments", args);
		up = json_pack("{s:s}", "name", name);
		if (args != NULL)
			json_object_set(up, "arguments", args);
	} else {
		res = srv->resources.resource;
		act = srv->resources.action;
		pparams = json_pack("{s:s}", "uri", uri);
		up = json_pack("{s:s}", "uri", uri);
	}
	static const char *const methods[] = {"tools/call", "prompts/get", "resources/read"};
	json_t *extra =
	        json_pack("{s:{s:s, s:s}}", "mcp", "server", srv->name, "method", methods[kind]);
	if (pparams == NULL || up == NULL || extra == NULL) {
		json_decref(pparams);
		json_decref(up);
		json_decref(extra);
		return NULL;
	}
	json_t *mcpobj = json_object_get(extra, "mcp");
	if (kind == C_RESOURCE)
		json_object_set_new(mcpobj, "uri", json_string(uri));
	else
		json_object_set_new(mcpobj, kind == C_TOOL ? "tool" : "prompt", json_string(name));

	struct gw_policy_decision d;
	decide(x, res, act, pparams, &d);
	const struct gwt_io *io = x->io;
	int64_t t0 = io->now_us != NULL ? io->now_us(io->ctx) : gwt_mono_us();
	json_t *reply = NULL;
	if (!d.allow) {
		int arc = gwt_audit_write(io, "mcp.call", x->req->set, &d, NULL, NULL, res, act,
		                          pparams, NULL, 0, 0, NULL, extra);
		reply = arc == AAM_OK
		                ? denied(msg, &d)
		                : fail(msg, GWM_AUDIT_UNAVAILABLE, "audit unavailable: not served");
		goto done;
	}
	if (d.limits.rpm > 0) {
		char key[512];
		gwt_rate_key(x->req->preq, &d, key, sizeof(key));
		if (!gwt_rate_take(m->rate, key, d.limits.rpm, gwt_mono_us(), NULL)) {
			json_object_set_new(extra, "decision", json_string("deny"));
			json_object_set_new(extra, "reason", json_string("rate_limited"));
			int arc = gwt_audit_write(io, "mcp.call", x->req->set, &d, NULL, NULL, res,
			                          act, pparams, NULL, 0, 0, "rate_limited", extra);
			reply = fail(msg, arc == AAM_OK ? GWM_RATE_LIMITED : GWM_AUDIT_UNAVAILABLE,
			             arc == AAM_OK ? "rate limited by policy: try again later"
			                           : "audit unavailable: not served");
			goto done;
		}
	}
	const char *cred = d.credential != NULL ? d.credential : srv->credential;
	json_t *result = NULL;
	unsigned status = 0;
	uint32_t version = 0;
	struct gwm_rpc_error e = {0};
	int rc = gwm_upstream_call(m->up[si], io, cred, methods[kind], up, &result, &status,
	                           &version, &e);
	int64_t lat = (io->now_us != NULL ? io->now_us(io->ctx) : gwt_mono_us()) - t0;
	char errcode[24] = "";
	if (rc != AAM_OK)
		snprintf(errcode, sizeof(errcode), "jsonrpc_%d", e.code);
	aam_log(AAM_LOG_INFO, "mcp.call", AAM_F_STR("server", srv->name),
	        AAM_F_STR("method", methods[kind]), AAM_F_STR("resource", res),
	        AAM_F_STR("action", act), AAM_F_INT("status", status), AAM_F_INT("latency_us", lat),
	        AAM_F_STR("error", errcode));
	const struct gwt_cred_use used = {.name = cred, .version = version};
	int arc = gwt_audit_write(io, "mcp.call", x->req->set, &d, NULL, NULL, res, act, pparams,
	                          &used, status, lat, rc != AAM_OK ? errcode : NULL, extra);
	extra = NULL;
	if (arc != AAM_OK) {
		json_decref(result);
		gwm_rpc_error_clear(&e);
		reply = fail(msg, GWM_AUDIT_UNAVAILABLE,
		             "audit unavailable: the answer is withheld");
	} else if (rc != AAM_OK) {
		reply = gwm_error(msg->id, &e);
		gwm_rpc_error_clear(&e);
	} else {
		reply = gwm_result(msg->id, result);
	}
done:
	json_decref(pparams);
	json_decref(up);
	return reply;
}

json_t *
gwm_dispatch(struct gwm_ctx *x, const struct gwm_msg *msg)
{
	const char *m = msg->method;
	if (strcmp(m, "ping") == 0)
		return gwm_result(msg->id, json_object());
	if (strcmp(m, "initialize") == 0)
		return fail(msg, GWM_INVALID_REQUEST, "the session is already initialized");
	if (strcmp(m, "tools/list") == 0)
		return list(x, msg, L_TOOLS);
	if (strcmp(m, "tools/call") == 0)
		return call(x, msg, C_TOOL);
	if (strcmp(m, "prompts/list") == 0)
		return list(x, msg, L_PROMPTS);
	if (strcmp(m, "prompts/get") == 0)
		return call(x, msg, C_PROMPT);
	if (strcmp(m, "resources/list") == 0)
		return list(x, msg, L_RESOURCES);
	if (strcmp(m, "resources/templates/list") == 0)
		return list(x, msg, L_TEMPLATES);
	if (strcmp(m, "resources/read") == 0)
		return call(x, msg, C_RESOURCE);
	return fail(msg, GWM_METHOD_NOT_FOUND, "Method not found");
}
