/*
 * What every endpoint shares: error bodies in each SDK's shape, the audit
 * event skeleton, policy requests from a request context, and the
 * accessors gw.h gives extension modules.
 */
#include "gateway/gw_int.h"
#include "aam/err.h"
#include "common/json.h"
#include "common/log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- accessors ----------------------------------------------------------------- */

gw_policy_store *
gw_policies(struct gw *g)
{
	return g != NULL ? g->policies : NULL;
}

const char *
gw_vault_socket(const struct gw *g)
{
	return g != NULL ? g->cfg->vault_socket : NULL;
}

struct gw_router *
gw_router_of(struct gw *g)
{
	return g != NULL ? g->router : NULL;
}

const char *
gw_environment(const struct gw *g)
{
	return g != NULL ? g->cfg->environment : NULL;
}

void
gw_metrics_tool_call(struct gw *g, const char *resource, const char *decision, unsigned status)
{
	if (g != NULL)
		gw_metrics_tool(g->metrics, resource, decision, status);
}

void
gw_policy_request_init(struct gw *g, const struct gw_request_ctx *rc, struct gw_policy_request *req)
{
	memset(req, 0, sizeof(*req));
	const struct gw_identity *who = rc->who;
	req->workload = who->spiffe_id;
	req->owner = who->owner;
	req->team = who->team;
	req->environment = who->environment;
	req->deployment = who->deployment;
	req->attested = who->attested;
	req->now = (int64_t)time(NULL);
	req->runtime_environment = gw_environment(g);
}

const char *
gw_decision_policy(const struct gw_policy_decision *d)
{
	/* The policy behind the deciding reason: for an allow the allowing rule's, for a deny the
	 * first. */
	for (size_t i = 0; i < d->nreasons; i++)
		if (d->reasons[i].policy != NULL &&
		    (!d->allow || d->reasons[i].code == GW_POLICY_ALLOWED))
			return d->reasons[i].policy;
	return NULL;
}

/* ---- errors ------------------------------------------------------------------------ */

static const char *
openai_type(unsigned status)
{
	switch (status) {
	case 400:
	case 413:
		return "invalid_request_error";
	case 401:
		return "authentication_error";
	case 403:
		return "permission_error";
	case 404:
		return "not_found_error";
	case 409:
		return "conflict_error";
	case 422:
		return "unprocessable_entity_error";
	case 429:
		return "rate_limit_error";
	default:
		return status >= 500 ? "api_error" : "invalid_request_error";
	}
}

static const char *
anthropic_type(unsigned status)
{
	switch (status) {
	case 400:
		return "invalid_request_error";
	case 401:
		return "authentication_error";
	case 403:
		return "permission_error";
	case 404:
		return "not_found_error";
	case 413:
		return "request_too_large";
	case 429:
		return "rate_limit_error";
	case 529:
		return "overloaded_error";
	default:
		return status >= 500 ? "api_error" : "invalid_request_error";
	}
}

int
gw_error_body(struct aam_buf *b, enum gw_err_style style, unsigned status, const char *code,
              const char *message)
{
	if (b == NULL || code == NULL)
		return AAM_E_INVAL;
	if (message == NULL)
		message = "";
	json_t *j = NULL;
	switch (style) {
	case GW_ERR_OPENAI:
		j = json_pack("{s:{s:s,s:s,s:s,s:n}}", "error", "message", message, "type",
		              openai_type(status), "code", code, "param");
		break;
	case GW_ERR_ANTHROPIC:
		/* "code" is not Anthropic's; the SDK ignores it and AAM's clients can use it. */
		j = json_pack("{s:s,s:{s:s,s:s,s:s}}", "type", "error", "error", "type",
		              anthropic_type(status), "message", message, "code", code);
		break;
	case GW_ERR_JSONRPC:
		/* JSON-RPC 2.0: implementation-defined server errors live in -32000..-32099. */
		j = json_pack("{s:s,s:n,s:{s:i,s:s,s:{s:s,s:i}}}", "jsonrpc", "2.0", "id", "error",
		              "code", status == 401 || status == 403 ? -32001 : -32000, "message",
		              message, "data", "code", code, "status", (int)status);
		break;
	case GW_ERR_AAM:
	default:
		return aam_json_error_body(b, code, message);
	}
	if (j == NULL)
		return AAM_E_NOMEM;
	int rc = aam_json_dump_buf(j, b, JSON_SORT_KEYS);
	json_decref(j);
	return rc;
}

int
gw_respond_error(struct aam_http_response *resp, enum gw_err_style style, unsigned status,
                 const char *code, const char *message)
{
	if (resp == NULL || status < 100 || status > 599)
		return AAM_E_INVAL;
	aam_buf_reset(&resp->body);
	int rc = gw_error_body(&resp->body, style, status, code, message);
	if (rc != AAM_OK)
		return rc;
	resp->status = status;
	resp->content_type = "application/json";
	return AAM_OK;
}

/* ---- audit ------------------------------------------------------------------------- */

static void
set_str(json_t *o, const char *k, const char *v)
{
	if (v != NULL)
		json_object_set_new(o, k, json_string(v));
}

int
gw_audit_event_new(struct gw *g, const struct gw_request_ctx *rc, const char *kind, json_t **out)
{
	(void)g;
	if (rc == NULL || kind == NULL || out == NULL)
		return AAM_E_INVAL;
	json_t *ev = json_object();
	json_t *id = json_object();
	if (ev == NULL || id == NULL) {
		json_decref(ev);
		json_decref(id);
		return AAM_E_NOMEM;
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char when[96];
	snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
	set_str(ev, "kind", kind);
	set_str(ev, "time", when);
	set_str(ev, "source", "gateway");
	set_str(ev, "request_id", rc->request_id);
	set_str(ev, "traceparent", rc->traceparent);
	if (rc->who != NULL) {
		const struct gw_identity *w = rc->who;
		set_str(id, "workload", w->spiffe_id);
		set_str(id, "owner", w->owner);
		set_str(id, "team", w->team);
		set_str(id, "environment", w->environment);
		set_str(id, "deployment", w->deployment);
		set_str(id, "method", w->method);
		set_str(id, "jti", w->jti);
		set_str(id, "virtual_key", w->vkey_id);
		json_object_set_new(id, "attested", json_boolean(w->attested));
	}
	json_object_set_new(ev, "identity", id);
	if (rc->on_behalf_of != NULL)
		json_object_set_new(ev, "on_behalf_of", json_string(rc->on_behalf_of));
	*out = ev;
	return AAM_OK;
}

int
gw_audit_add_decision(json_t *ev, const struct gw_policy_decision *d)
{
	if (ev == NULL || d == NULL)
		return AAM_E_INVAL;
	json_t *pol = json_object();
	json_t *names = json_array();
	json_t *reasons = json_array();
	if (pol == NULL || names == NULL || reasons == NULL) {
		json_decref(pol);
		json_decref(names);
		json_decref(reasons);
		return AAM_E_NOMEM;
	}
	for (size_t i = 0; i < d->nreasons; i++) {
		const struct gw_policy_reason *r = &d->reasons[i];
		json_t *o = json_object();
		set_str(o, "code", gw_policy_code_name(r->code));
		set_str(o, "policy", r->policy);
		set_str(o, "rule", r->rule);
		set_str(o, "field", r->field);
		json_array_append_new(reasons, o);
		bool seen = r->policy == NULL;
		size_t k;
		json_t *v;
		json_array_foreach(names, k, v)
		{
			if (!seen && strcmp(json_string_value(v), r->policy) == 0)
				seen = true;
		}
		if (!seen)
			json_array_append_new(names, json_string(r->policy));
	}
	set_str(pol, "set_hash", d->set_hash);
	json_object_set_new(pol, "names", names);
	json_object_set_new(pol, "reasons", reasons);
	if (d->truncated > 0)
		json_object_set_new(pol, "reasons_truncated",
		                    json_integer((json_int_t)d->truncated));
	json_object_set_new(ev, "policy", pol);
	json_object_set_new(ev, "decision", json_string(d->allow ? "allow" : "deny"));
	json_object_set_new(ev, "reason",
	                    json_string(d->nreasons > 0 ? gw_policy_code_name(d->reasons[0].code)
	                                                : (d->allow ? "allowed" : "no_match")));
	return AAM_OK;
}

int
gw_audit_emit(struct gw *g, const json_t *ev, uint64_t *seq)
{
	if (g == NULL || ev == NULL)
		return AAM_E_INVAL;
	int rc = gw_audit_append(g->audit, ev, seq);
	if (rc != AAM_OK)
		gw_metrics_audit_failure(g->metrics);
	return rc;
}
