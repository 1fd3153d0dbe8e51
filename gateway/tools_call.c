/*
 * The pipeline of one tool call, POST /v1/tools/{resource}/{action}:
 *
 *   parameters parsed and checked against the schema, the request
 *   rendered (so every parameter error is known before anything else
 *   happens) -> policy decision -> rpm limit -> aam-vault INJECT with the
 *   credential -> audit record made durable -> the answer.
 *
 * Every outcome that involves a known action is audited, refusals too,
 * and nothing reaches the upstream unless every step before INJECT
 * passed.  If the audit record cannot be made durable the upstream's
 * answer is withheld and the agent gets 503 audit_unavailable (DESIGN.md
 * invariant 6).
 */
#include "gateway/tools_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "common/json.h"
#include "common/log.h"

void
gwt_result_init(struct gwt_result *r)
{
	memset(r, 0, sizeof(*r));
	aam_buf_init(&r->body, GWT_MAX_RESPONSE + 4096);
	snprintf(r->content_type, sizeof(r->content_type), "application/json");
	r->decision = "error";
}

void
gwt_result_uninit(struct gwt_result *r)
{
	aam_buf_uninit(&r->body);
}

int
gw_tools_new(struct gwt_catalog *catalog, struct gw_tools **out)
{
	*out = NULL;
	struct gw_tools *t = calloc(1, sizeof(*t));
	if (t == NULL) {
		gwt_catalog_free(catalog);
		return AAM_E_NOMEM;
	}
	t->catalog = catalog;
	int rc = gwt_rate_new(4096, &t->rate);
	if (rc != AAM_OK) {
		gw_tools_free(t);
		return rc;
	}
	*out = t;
	return AAM_OK;
}

void
gw_tools_free(struct gw_tools *t)
{
	if (t == NULL)
		return;
	gwt_rate_free(t->rate);
	gwt_catalog_free(t->catalog);
	free(t);
}

const struct gwt_catalog *
gw_tools_catalog(const struct gw_tools *t)
{
	return t != NULL ? t->catalog : NULL;
}

/* ---- answers ---------------------------------------------------------- */

int
gwt_err_body(struct aam_buf *b, const struct gwt_err *e)
{
	json_t *err = json_pack("{s:s, s:s}", "code", e->code, "message", e->msg);
	if (err == NULL)
		return AAM_E_NOMEM;
	if (e->param[0] != '\0')
		json_object_set_new(err, "parameter", json_string(e->param));
	json_t *j = json_pack("{s:o}", "error", err);
	int rc = j != NULL ? aam_json_dump_buf(j, b, JSON_COMPACT | JSON_SORT_KEYS) : AAM_E_NOMEM;
	json_decref(j);
	return rc;
}

const struct gw_policy_reason *
gwt_deny_reason(const struct gw_policy_decision *d)
{
	static const enum gw_policy_code order[] = {
	        GW_POLICY_EXPLICIT_DENY,  GW_POLICY_NOT_ATTESTED,        GW_POLICY_CONDITION_FAILED,
	        GW_POLICY_LIMIT_EXCEEDED, GW_POLICY_CREDENTIAL_CONFLICT, GW_POLICY_INVALID_REQUEST,
	        GW_POLICY_NO_MATCH};
	for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++)
		for (size_t i = 0; i < d->nreasons; i++)
			if (d->reasons[i].code == order[k])
				return &d->reasons[i];
	return d->nreasons > 0 ? &d->reasons[0] : NULL;
}

/* Whether the parameter named in a `when` reason's field is in KNOWN. */
static bool
reason_param_known(const struct gw_policy_reason *r, const json_t *known)
{
	const char *w = r->field != NULL ? strstr(r->field, ".when.") : NULL;
	if (w == NULL)
		return true; /* not a parameter condition: it holds or fails as it is */
	if (known == NULL)
		return false;
	/* "spec.tools[0].when.a.b.max": the parameter is "a.b", the operator last. */
	const char *p = w + 6, *op = strrchr(p, '.');
	if (op == NULL)
		return true;
	const json_t *cur = known;
	while (p < op && cur != NULL) {
		const char *dot = memchr(p, '.', (size_t)(op - p));
		size_t n = (size_t)((dot != NULL ? dot : op) - p);
		char seg[128];
		if (n >= sizeof(seg))
			return false;
		memcpy(seg, p, n);
		seg[n] = '\0';
		cur = json_is_object(cur) ? json_object_get(cur, seg) : NULL;
		p += n + 1;
	}
	return cur != NULL;
}

bool
gwt_decision_listable(const struct gw_policy_decision *d, const json_t *known)
{
	if (d->allow)
		return true;
	bool near = false;
	for (size_t i = 0; i < d->nreasons; i++) {
		enum gw_policy_code c = d->reasons[i].code;
		if (c == GW_POLICY_EXPLICIT_DENY || c == GW_POLICY_NOT_ATTESTED ||
		    c == GW_POLICY_INVALID_REQUEST)
			return false;
		/* A condition on a parameter the listing does not know may hold for some call. */
		if (c == GW_POLICY_CONDITION_FAILED && !reason_param_known(&d->reasons[i], known))
			near = true;
	}
	return near;
}

int
gwt_deny_body(struct aam_buf *b, const struct gw_policy_decision *d)
{
	const struct gw_policy_reason *r = gwt_deny_reason(d);
	const char *code = r != NULL ? gw_policy_code_name(r->code) : "no_match";
	char msg[256];
	if (r != NULL && r->policy != NULL)
		snprintf(msg, sizeof(msg), "denied by policy %s (%s)", r->policy, code);
	else
		snprintf(msg, sizeof(msg), "no policy allows this action (%s)", code);
	json_t *err = json_pack("{s:s, s:s, s:s}", "code", "policy_denied", "message", msg,
	                        "reason", code);
	if (err == NULL)
		return AAM_E_NOMEM;
	json_object_set_new(err, "policy",
	                    r != NULL && r->policy != NULL ? json_string(r->policy) : json_null());
	if (r != NULL && r->rule != NULL)
		json_object_set_new(err, "rule", json_string(r->rule));
	if (r != NULL && r->field != NULL)
		json_object_set_new(err, "field", json_string(r->field));
	json_t *j = json_pack("{s:o}", "error", err);
	int rc = j != NULL ? aam_json_dump_buf(j, b, JSON_COMPACT | JSON_SORT_KEYS) : AAM_E_NOMEM;
	json_decref(j);
	return rc;
}

static int
answer_err(struct gwt_result *out, unsigned status, const struct gwt_err *e, const char *decision)
{
	out->status = status;
	out->decision = decision;
	snprintf(out->code, sizeof(out->code), "%s", e->code);
	snprintf(out->content_type, sizeof(out->content_type), "application/json");
	aam_buf_reset(&out->body);
	return gwt_err_body(&out->body, e);
}

/* ---- audit ------------------------------------------------------------- */

int
gwt_audit_fields(json_t *ev, const gw_policy_set *set, const struct gw_policy_decision *d,
                 const char *resource, const char *action, const json_t *params,
                 const struct gwt_cred_use *credential, unsigned upstream_status,
                 int64_t latency_us)
{
	char digest[65];
	int rc = gwt_params_digest(params, digest);
	if (rc != AAM_OK)
		return rc;
	json_t *act = json_pack("{s:s, s:s, s:s}", "resource", resource, "operation", action,
	                        "params_sha256", digest);
	if (act == NULL)
		return AAM_E_NOMEM;
	/* Plain values only where every policy behind the decision lists them. */
	if (d != NULL && set != NULL && params != NULL && (d->audit & GW_AUDIT_PARAMETERS) != 0) {
		json_t *plain = json_object();
		const char *k;
		json_t *v;
		json_object_foreach((json_t *)(uintptr_t)params, k, v)
		{
			if (gw_policy_param_is_plain(set, d, k))
				json_object_set(plain, k, v);
		}
		if (json_object_size(plain) > 0)
			json_object_set_new(act, "params", plain);
		else
			json_decref(plain);
	}
	json_object_set_new(ev, "action", act);
	if (credential != NULL && credential->name != NULL) {
		json_t *cr = json_pack("{s:s}", "name", credential->name);
		if (cr != NULL && credential->version > 0)
			json_object_set_new(cr, "version", json_integer(credential->version));
		json_object_set_new(ev, "credential", cr);
	}
	json_object_set_new(ev, "outcome",
	                    json_pack("{s:i, s:I}", "status", (int)upstream_status, "latency_us",
	                              (json_int_t)latency_us));
	return AAM_OK;
}

/* The decision fields when the daemon's helper is not there (tests). */
static void
decision_fields(json_t *ev, const struct gw_policy_decision *d)
{
	json_t *names = json_array(), *reasons = json_array();
	for (size_t i = 0; i < d->nreasons; i++) {
		const struct gw_policy_reason *r = &d->reasons[i];
		char line[512];
		gw_policy_reason_format(r, line, sizeof(line));
		json_array_append_new(reasons, json_string(line));
		if (r->policy != NULL) {
			bool seen = false;
			for (size_t k = 0; k < json_array_size(names) && !seen; k++)
				seen = strcmp(json_string_value(json_array_get(names, k)),
				              r->policy) == 0;
			if (!seen)
				json_array_append_new(names, json_string(r->policy));
		}
	}
	const struct gw_policy_reason *r = d->allow ? NULL : gwt_deny_reason(d);
	json_object_set_new(ev, "policy",
	                    json_pack("{s:s, s:o, s:o}", "set_hash",
	                              d->set_hash != NULL ? d->set_hash : "", "names", names,
	                              "reasons", reasons));
	json_object_set_new(ev, "decision", json_string(d->allow ? "allow" : "deny"));
	json_object_set_new(
	        ev, "reason",
	        json_string(
	                d->allow ? "allowed"
	                         : gw_policy_code_name(r != NULL ? r->code : GW_POLICY_NO_MATCH)));
}

int
gwt_audit_write(const struct gwt_io *io, const char *kind, const gw_policy_set *set,
                const struct gw_policy_decision *d, const char *decision, const char *reason,
                const char *resource, const char *action, const json_t *params,
                const struct gwt_cred_use *credential, unsigned status, int64_t latency_us,
                const char *error, json_t *extra)
{
	json_t *ev = NULL;
	int rc = io->audit_new != NULL ? io->audit_new(io->ctx, kind, &ev) : AAM_E_INTERNAL;
	if (rc == AAM_OK && ev == NULL)
		rc = AAM_E_INTERNAL;
	if (rc == AAM_OK) {
		if (d != NULL) {
			if (io->audit_decision != NULL)
				rc = io->audit_decision(ev, d);
			else
				decision_fields(ev, d);
		} else {
			json_object_set_new(ev, "decision", json_string(decision));
			json_object_set_new(ev, "reason", json_string(reason));
		}
	}
	if (rc == AAM_OK)
		rc = gwt_audit_fields(ev, set, d, resource, action, params, credential, status,
		                      latency_us);
	if (rc == AAM_OK && error != NULL)
		json_object_set_new(ev, "error", json_string(error));
	if (rc == AAM_OK && extra != NULL)
		rc = json_object_update(ev, extra) == 0 ? AAM_OK : AAM_E_NOMEM;
	json_decref(extra);
	if (rc == AAM_OK)
		rc = io->audit(io->ctx, ev);
	json_decref(ev);
	if (rc != AAM_OK)
		aam_log(AAM_LOG_ERROR, "tools.audit_failed", AAM_F_STR("kind", kind),
		        AAM_F_STR("resource", resource), AAM_F_STR("action", action),
		        AAM_F_ERR(rc));
	return rc;
}

static int
audit_unavailable(struct gwt_result *out)
{
	struct gwt_err e;
	gwt_err_set(&e, "audit_unavailable", NULL,
	            "the audit record could not be stored, so the call is not answered");
	return answer_err(out, 503, &e, "error");
}

/* ---- the call --------------------------------------------------------- */

static int64_t
now_us(const struct gwt_io *io)
{
	return io->now_us != NULL ? io->now_us(io->ctx) : gwt_mono_us();
}

static const struct aam_json_limits ARG_LIMITS = {
        .max_bytes = GWT_MAX_ARGS, .max_depth = 8, .max_string = GWT_MAX_ARGS, .max_members = 1024};

int
gwt_parse_params(const uint8_t *body, size_t len, json_t **out, struct gwt_err *e, unsigned *status)
{
	*out = NULL;
	if (len > GWT_MAX_ARGS) {
		*status = 413;
		gwt_err_set(e, "payload_too_large", NULL, "the parameters are larger than %u bytes",
		            GWT_MAX_ARGS);
		return AAM_E_TOOBIG;
	}
	if (len == 0) {
		*out = json_object();
		return *out != NULL ? AAM_OK : AAM_E_NOMEM;
	}
	struct aam_json_error je;
	json_t *j = NULL;
	int rc = aam_json_parse(body, len, &ARG_LIMITS, &j, &je);
	if (rc != AAM_OK) {
		*status = rc == AAM_E_TOOBIG ? 413 : 400;
		gwt_err_set(e, rc == AAM_E_TOOBIG ? "payload_too_large" : "invalid_json", NULL,
		            "the parameters are not valid JSON within the limits: %s", je.msg);
		return rc;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		*status = 400;
		gwt_err_set(e, "invalid_parameters", NULL, "the parameters must be a JSON object");
		return AAM_E_INVAL;
	}
	*out = j;
	return AAM_OK;
}

/* Maps an INJECT failure to the answer. */
static void
inject_error(int rc, unsigned *status, struct gwt_err *e)
{
	switch (rc) {
	case AAM_E_DENIED:
		*status = 502;
		gwt_err_set(e, "upstream_refused", NULL,
		            "aam-vault refused the request (outside the credential's bindings)");
		break;
	case AAM_E_NOTFOUND:
		*status = 502;
		gwt_err_set(e, "credential_unknown", NULL,
		            "aam-vault does not hold the credential");
		break;
	case AAM_E_TIMEOUT:
		*status = 504;
		gwt_err_set(e, "upstream_timeout", NULL, "the upstream did not answer in time");
		break;
	case AAM_E_TOOBIG:
		*status = 502;
		gwt_err_set(e, "upstream_too_large", NULL, "the upstream's answer is too large");
		break;
	case AAM_E_CLOSED:
	case AAM_E_BUSY:
		*status = 503;
		gwt_err_set(e, "vault_unavailable", NULL, "aam-vault is not reachable");
		break;
	default:
		*status = 502;
		gwt_err_set(e, "upstream_error", NULL, "the upstream request failed (%s)",
		            aam_err_code(rc));
	}
}

static void
copy_content_type(struct gwt_result *out, const struct gwt_response *resp)
{
	const char *ct = gwt_response_header(resp, "content-type");
	snprintf(out->content_type, sizeof(out->content_type), "%s", "application/octet-stream");
	if (ct == NULL || strlen(ct) >= sizeof(out->content_type))
		return;
	for (const char *p = ct; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			return;
	snprintf(out->content_type, sizeof(out->content_type), "%s", ct);
}

int
gwt_call_run(struct gw_tools *t, const struct gwt_io *io, const struct gwt_call *c,
             struct gwt_result *out)
{
	int64_t t0 = now_us(io);
	struct gwt_err e = {0};
	unsigned status = 400;
	if (!gwt_resource_name_ok(c->resource) || !gwt_action_name_ok(c->action)) {
		gwt_err_set(&e, "unknown_tool", NULL,
		            "no such tool (POST /v1/tools/RESOURCE/ACTION)");
		return answer_err(out, 404, &e, "deny");
	}
	const struct gwt_action *a = gwt_catalog_find(t->catalog, c->resource, c->action);
	json_t *params = NULL;
	int rc;
	if (a == NULL) {
		gwt_err_set(&e, "unknown_tool", NULL,
		            "the catalogue has no such resource and action");
		status = 404;
		goto refuse;
	}
	if (gwt_parse_params(c->body, c->body_len, &params, &e, &status) != AAM_OK)
		goto refuse;
	status = 400;
	if (gwt_params_check(a, params, &e) != AAM_OK)
		goto refuse;
	struct gwt_request req;
	gwt_request_init(&req);
	rc = gwt_render(a, params, &req, &e);
	if (rc != AAM_OK) {
		gwt_request_uninit(&req);
		if (e.code[0] == '\0')
			gwt_err_set(&e, "internal", NULL, "the request could not be built");
		status = strcmp(e.code, "internal") == 0 ? 500 : 400;
		goto refuse;
	}

	/* Policy. */
	struct gw_policy_decision d;
	struct gw_policy_request *pr = c->preq;
	pr->kind = GW_POLICY_TOOL;
	pr->resource = a->resource;
	pr->action = a->name;
	pr->params = params;
	if (c->set == NULL) {
		memset(&d, 0, sizeof(d));
		d.nreasons = 1;
		d.set_hash = "";
		d.reasons[0] = (struct gw_policy_reason){.code = GW_POLICY_NO_MATCH,
		                                         .message = "no policy set is loaded"};
	} else {
		gw_policy_decide(c->set, pr, &d);
	}
	if (!d.allow) {
		gwt_request_uninit(&req);
		int arc = gwt_audit_write(io, "tool.call", c->set, &d, NULL, NULL, a->resource,
		                          a->name, params, NULL, 0, now_us(io) - t0, NULL, NULL);
		json_decref(params);
		if (arc != AAM_OK)
			return audit_unavailable(out);
		out->status = 403;
		out->decision = "deny";
		snprintf(out->code, sizeof(out->code), "policy_denied");
		aam_buf_reset(&out->body);
		return gwt_deny_body(&out->body, &d);
	}
	if (d.limits.rpm > 0) {
		char key[512];
		gwt_rate_key(pr, &d, key, sizeof(key));
		unsigned retry = 0;
		if (!gwt_rate_take(t->rate, key, d.limits.rpm, now_us(io), &retry)) {
			gwt_request_uninit(&req);
			int arc = gwt_audit_write(io, "tool.call", c->set, &d, NULL, NULL,
			                          a->resource, a->name, params, NULL, 0,
			                          now_us(io) - t0, "rate_limited",
			                          json_pack("{s:s, s:s}", "decision", "deny",
			                                    "reason", "rate_limited"));
			json_decref(params);
			if (arc != AAM_OK)
				return audit_unavailable(out);
			gwt_err_set(&e, "rate_limited", NULL,
			            "the policy allows %lld calls per minute for this rule",
			            (long long)d.limits.rpm);
			out->retry_after = retry;
			return answer_err(out, 429, &e, "deny");
		}
	}
	const char *cred = d.credential != NULL ? d.credential : a->credential;
	if (cred == NULL) {
		gwt_request_uninit(&req);
		gwt_err_set(
		        &e, "no_credential", NULL,
		        "neither the catalogue nor the policy names a credential for this action");
		int arc = gwt_audit_write(io, "tool.call", c->set, &d, NULL, NULL, a->resource,
		                          a->name, params, NULL, 0, now_us(io) - t0,
		                          "no_credential", NULL);
		json_decref(params);
		return arc != AAM_OK ? audit_unavailable(out) : answer_err(out, 500, &e, "error");
	}

	/* The upstream, through the vault. */
	struct gwt_response resp;
	gwt_response_init(&resp, GWT_MAX_RESPONSE);
	int64_t u0 = now_us(io);
	rc = io->inject(io->ctx, &req, cred, a->timeout_ms, &resp);
	int64_t lat = now_us(io) - u0;
	gwt_request_uninit(&req);
	const char *err_code = NULL;
	/* A cut body is no answer: too large for the gateway, or the upstream broke off. */
	if (rc == AAM_OK && resp.truncated)
		rc = resp.body.err != AAM_OK ? AAM_E_TOOBIG : AAM_E_IO;
	if (rc != AAM_OK) {
		inject_error(rc, &status, &e);
		err_code = e.code;
	}
	aam_log(AAM_LOG_INFO, "tools.call", AAM_F_STR("resource", a->resource),
	        AAM_F_STR("action", a->name), AAM_F_STR("credential", cred),
	        AAM_F_INT("status", (int64_t)resp.status), AAM_F_INT("latency_us", lat),
	        AAM_F_STR("error", err_code != NULL ? err_code : ""));
	const struct gwt_cred_use used = {.name = cred, .version = resp.credential_version};
	int arc = gwt_audit_write(io, "tool.call", c->set, &d, NULL, NULL, a->resource, a->name,
	                          params, &used, resp.status, lat, err_code, NULL);
	json_decref(params);
	if (arc != AAM_OK) {
		gwt_response_uninit(&resp);
		return audit_unavailable(out);
	}
	if (rc != AAM_OK) {
		gwt_response_uninit(&resp);
		return answer_err(out, status, &e, "allow");
	}
	out->status = resp.status;
	out->decision = "allow";
	out->code[0] = '\0';
	copy_content_type(out, &resp);
	aam_buf_reset(&out->body);
	aam_buf_append(&out->body, resp.body.data, resp.body.len);
	gwt_response_uninit(&resp);
	return out->body.err;

refuse:
	/* A known action refused before the policy: audited, nothing sent. */
	if (a != NULL) {
		int rrc = gwt_audit_write(io, "tool.call", NULL, NULL, "deny", e.code, a->resource,
		                          a->name, params, NULL, 0, now_us(io) - t0, NULL, NULL);
		json_decref(params);
		if (rrc != AAM_OK)
			return audit_unavailable(out);
		return answer_err(out, status, &e, "deny");
	}
	json_decref(params);
	return answer_err(out, status, &e, "deny");
}
