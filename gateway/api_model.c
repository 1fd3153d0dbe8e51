/*
 * The model endpoints: POST /v1/chat/completions (OpenAI), POST
 * /v1/messages (Anthropic) and POST /v1/embeddings.
 *
 * Flow: body (bounded, strict JSON) -> policy decision (kind model, the
 * route the client names as "model") -> router (gateway/route.h) -> audit
 * -> answer.  Nothing is served unaudited (DESIGN.md invariant 6):
 *
 *  - a denial is answered 403 only after its record is stored;
 *  - a non-streaming call is buffered, its record (tokens, cost, status)
 *    stored, and only then released to the client;
 *  - a streaming call first stores a "model.request" record (who, what,
 *    which policy allowed it) and only then starts forwarding; its
 *    "model.call" outcome record follows when the stream ends.
 *
 * Any failed append answers 503 audit_unavailable instead.
 */
#include "gateway/gw_int.h"
#include "aam/err.h"
#include "common/json.h"
#include "common/log.h"
#include "gateway/limits.h"
#include "gateway/vkeys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct model_api {
	enum gw_api api;
	enum gw_err_style style;
	const char *endpoint; /* metrics label and audit "endpoint" */
	const char *name;     /* audit "api" */
	bool can_stream;
};

static const struct model_api API_CHAT = {GW_API_OPENAI_CHAT, GW_ERR_OPENAI, "/v1/chat/completions",
                                          "openai.chat", true};
static const struct model_api API_MESSAGES = {GW_API_ANTHROPIC_MESSAGES, GW_ERR_ANTHROPIC,
                                              "/v1/messages", "anthropic.messages", true};
static const struct model_api API_EMBEDDINGS = {GW_API_OPENAI_EMBEDDINGS, GW_ERR_OPENAI,
                                                "/v1/embeddings", "openai.embeddings", false};

static int64_t
mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * The model label for metrics: a configured route name, or "other"
 * (bounded series).  The label is copied into BUF (route names are at
 * most 127 bytes): a pointer into the route table would dangle after a
 * reload, and one into the request body after the body is released.
 */
static const char *
model_label(struct gw *g, const char *model, char *buf, size_t cap)
{
	if (g->router == NULL || model == NULL || !gw_router_has_route(g->router, model) ||
	    strlen(model) >= cap)
		return "other";
	memcpy(buf, model, strlen(model) + 1);
	return buf;
}

/* Response headers from upstream that a client may see (hop-by-hop and framing are ours). */
static bool
forwardable(const char *name)
{
	static const char *const drop[] = {"connection",
	                                   "keep-alive",
	                                   "transfer-encoding",
	                                   "content-length",
	                                   "content-type",
	                                   "upgrade",
	                                   "te",
	                                   "trailer",
	                                   "proxy-connection",
	                                   "x-request-id"};
	for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
		if (strcasecmp(name, drop[i]) == 0)
			return false;
	return true;
}

/* The static content-type string closest to an upstream's. */
static const char *
static_ctype(const char *ct)
{
	if (ct == NULL || strncasecmp(ct, "application/json", 16) == 0)
		return "application/json";
	if (strncasecmp(ct, "text/event-stream", 17) == 0)
		return "text/event-stream";
	if (strncasecmp(ct, "text/plain", 10) == 0)
		return "text/plain; charset=utf-8";
	return "application/octet-stream";
}

/* ---- the request as parsed ------------------------------------------------------- */

struct model_req {
	json_t *body;
	const char *model;
	bool stream;
	int64_t max_tokens;
	char user[256]; /* delegation from the body, "" when none */
};

static int
parse_body(struct gw *g, const struct gw_request_ctx *rc, const struct model_api *m,
           struct model_req *out, char *why, size_t whylen)
{
	memset(out, 0, sizeof(*out));
	const struct aam_http_request *h = rc->http;
	if (h->body_len == 0) {
		snprintf(why, whylen, "The request body must be a JSON object.");
		return AAM_E_INVAL;
	}
	struct aam_json_limits lim = {.max_bytes = (size_t)g->cfg->max_body,
	                              .max_string = (size_t)g->cfg->max_body};
	struct aam_json_error je;
	memset(&je, 0, sizeof(je));
	int rc2 = aam_json_parse(h->body, h->body_len, &lim, &out->body, &je);
	if (rc2 == AAM_OK)
		rc2 = aam_json_check_type(out->body, NULL, JSON_OBJECT, &je);
	if (rc2 == AAM_OK)
		rc2 = aam_json_get_str_max(out->body, NULL, "model", AAM_JSON_REQUIRED, 256,
		                           &out->model, &je);
	if (rc2 == AAM_OK && m->can_stream)
		rc2 = aam_json_get_bool(out->body, NULL, "stream",
		                        AAM_JSON_OPTIONAL | AAM_JSON_NULLABLE, &out->stream, &je);
	const char *mt = m->api == GW_API_OPENAI_CHAT &&
	                                 json_object_get(out->body, "max_completion_tokens") != NULL
	                         ? "max_completion_tokens"
	                         : "max_tokens";
	if (rc2 == AAM_OK && m->api != GW_API_OPENAI_EMBEDDINGS)
		rc2 = aam_json_get_int64_range(out->body, NULL, mt,
		                               AAM_JSON_OPTIONAL | AAM_JSON_NULLABLE, 1, 1000000000,
		                               &out->max_tokens, &je);
	if (rc2 != AAM_OK) {
		/* JSON errors name a position or field path, never a value. */
		snprintf(why, whylen, "%s", je.msg[0] != '\0' ? je.msg : "The body is not valid.");
		json_decref(out->body);
		out->body = NULL;
		return rc2 == AAM_E_TOOBIG ? AAM_E_TOOBIG : AAM_E_INVAL;
	}
	if (out->model[0] == '\0') {
		snprintf(why, whylen, "$.model: must not be empty.");
		json_decref(out->body);
		out->body = NULL;
		return AAM_E_INVAL;
	}
	/* Delegation: OpenAI's "user", Anthropic's metadata.user_id (printable, bounded). */
	const char *u = m->api == GW_API_ANTHROPIC_MESSAGES
	                        ? json_string_value(json_object_get(
	                                  json_object_get(out->body, "metadata"), "user_id"))
	                        : json_string_value(json_object_get(out->body, "user"));
	if (u != NULL) {
		size_t n = strnlen(u, sizeof(out->user));
		bool ok = n > 0 && n < sizeof(out->user);
		for (size_t i = 0; ok && i < n; i++)
			ok = (unsigned char)u[i] >= 0x20 && u[i] != 0x7f;
		if (ok)
			memcpy(out->user, u, n + 1);
	}
	return AAM_OK;
}

/* ---- audit records ---------------------------------------------------------------- */

static json_t *
action_obj(const struct model_api *m, const struct model_req *mr)
{
	return json_pack("{s:s,s:s,s:s,s:b,s:I}", "api", m->name, "endpoint", m->endpoint, "route",
	                 mr->model, "stream", mr->stream, "max_tokens", (json_int_t)mr->max_tokens);
}

static json_t *
event_base(struct gw *g, const struct gw_request_ctx *rc, const char *kind,
           const struct model_api *m, const struct model_req *mr,
           const struct gw_policy_decision *d)
{
	json_t *ev = NULL;
	if (gw_audit_event_new(g, rc, kind, &ev) != AAM_OK)
		return NULL;
	if (rc->on_behalf_of == NULL && mr->user[0] != '\0')
		json_object_set_new(ev, "on_behalf_of", json_string(mr->user));
	json_object_set_new(ev, "action", action_obj(m, mr));
	if (d != NULL)
		gw_audit_add_decision(ev, d);
	return ev;
}

static void
add_outcome(json_t *ev, unsigned status, const struct gw_call_result *res, int64_t started_us,
            const char *error)
{
	json_t *o = json_pack("{s:i,s:I}", "status", (int)status, "latency_us",
	                      (json_int_t)(mono_us() - started_us));
	if (o == NULL)
		return;
	if (res != NULL) {
		if (res->route[0] != '\0')
			json_object_set_new(o, "route", json_string(res->route));
		if (res->deployment[0] != '\0')
			json_object_set_new(o, "deployment", json_string(res->deployment));
		if (res->provider[0] != '\0')
			json_object_set_new(o, "provider", json_string(res->provider));
		if (res->upstream_model[0] != '\0')
			json_object_set_new(o, "upstream_model", json_string(res->upstream_model));
		json_object_set_new(o, "input_tokens", json_integer(res->input_tokens));
		json_object_set_new(o, "output_tokens", json_integer(res->output_tokens));
		json_object_set_new(o, "cached_tokens", json_integer(res->cached_tokens));
		json_object_set_new(o, "cost_usd", json_real(res->cost_usd));
		json_object_set_new(o, "upstream_latency_us",
		                    json_integer(res->upstream_latency_us));
		json_object_set_new(o, "attempts", json_integer(res->attempts));
		json_object_set_new(o, "fell_back", json_boolean(res->fell_back));
		if (res->error_code[0] != '\0' && error == NULL)
			error = res->error_code;
	}
	if (error != NULL)
		json_object_set_new(o, "error", json_string(error));
	json_object_set_new(ev, "outcome", o);
}

/* Emits EV (consumed); AAM_OK when durable. */
static int
emit(struct gw *g, json_t *ev)
{
	if (ev == NULL)
		return AAM_E_AUDIT;
	int rc = gw_audit_emit(g, ev, NULL);
	json_decref(ev);
	return rc;
}

static int
audit_unavailable(struct gw *g, const struct model_api *m, const char *model,
                  struct aam_http_response *resp)
{
	char lb[128];
	gw_metrics_request(g->metrics, m->endpoint, model_label(g, model, lb, sizeof(lb)), "error",
	                   503);
	return gw_respond_error(resp, m->style, 503, "audit_unavailable",
	                        "The request was not served because its audit record could not be "
	                        "stored.");
}

static bool
is_budget_code(const char *code)
{
	return strcmp(code, "budget_exceeded") == 0 || strcmp(code, "rate_limited") == 0 ||
	       strcmp(code, "rate_limit_exceeded") == 0 || strcmp(code, "parallel_limit") == 0;
}

static void
count_call(struct gw *g, const struct model_api *m, const char *model, unsigned status,
           const struct gw_call_result *res)
{
	char lb[128];
	const char *label = model_label(g, model, lb, sizeof(lb));
	gw_metrics_request(g->metrics, m->endpoint, label, "allow", status);
	if (res->attempts > 0 || res->upstream_latency_us > 0)
		gw_metrics_upstream(g->metrics, label, res->upstream_latency_us, res->cost_usd,
		                    res->input_tokens, res->output_tokens);
	if (is_budget_code(res->error_code))
		gw_metrics_budget_rejection(g->metrics, label);
}

/* ---- buffering sink (non-streaming calls) ------------------------------------------ */

struct bufsink {
	bool started;
	unsigned status;
	const char *ctype;
	struct aam_http_header h[AAM_HTTP_MAX_HEADERS];
	size_t n;
	struct aam_buf body;
};

static int
buf_head(void *ctx, unsigned status, const struct aam_http_header *h, size_t n,
         const char *content_type)
{
	struct bufsink *b = ctx;
	if (b->started)
		return AAM_E_INVAL;
	b->started = true;
	b->status = status;
	b->ctype = static_ctype(content_type);
	/* One slot stays free for x-request-id. */
	for (size_t i = 0; i < n && b->n < AAM_HTTP_MAX_HEADERS - 1; i++) {
		if (h[i].name == NULL || h[i].value == NULL || !forwardable(h[i].name))
			continue;
		b->h[b->n].name = strdup(h[i].name);
		b->h[b->n].value = strdup(h[i].value);
		if (b->h[b->n].name == NULL || b->h[b->n].value == NULL) {
			free(b->h[b->n].name);
			free(b->h[b->n].value);
			return AAM_E_NOMEM;
		}
		b->n++;
	}
	return AAM_OK;
}

static int
buf_body(void *ctx, const uint8_t *p, size_t n)
{
	struct bufsink *b = ctx;
	if (!b->started)
		return AAM_E_INVAL;
	return aam_buf_append(&b->body, p, n);
}

static void
bufsink_uninit(struct bufsink *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free(b->h[i].name);
		free(b->h[i].value);
	}
	aam_buf_uninit_wipe(&b->body);
}

/* ---- streaming ------------------------------------------------------------------------ */

/*
 * The rpm/tpm/max_parallel limits of one call (gateway/limits.h): the
 * policy decision's for the workload, the virtual key's own for the key.
 */
struct call_limits {
	char id_key[AAM_SPIFFE_ID_BUFSZ + 16], vk_key[48];
	struct gw_limit_want id_w, vk_w;
	bool id_in, vk_in;
};

/* Admits the call or says which limit refused it (AAM_E_BUSY). */
static int
limits_enter(struct gw *g, const struct gw_principal *who, const struct gw_policy_decision *d,
             struct call_limits *cl, const char **which, int64_t *retry_s)
{
	memset(cl, 0, sizeof(*cl));
	snprintf(cl->id_key, sizeof(cl->id_key), "workload %s", who->spiffe_id);
	cl->id_w = (struct gw_limit_want){d->limits.rpm, d->limits.tpm, d->limits.max_parallel};
	if (who->vkey_id[0] != '\0') {
		snprintf(cl->vk_key, sizeof(cl->vk_key), "vkey %s", who->vkey_id);
		cl->vk_w = (struct gw_limit_want){who->vkey_rpm, who->vkey_tpm, 0};
	}
	int64_t now = mono_us();
	int rc = gw_limits_enter(g->limits, cl->id_key, &cl->id_w, now, which, retry_s);
	if (rc != AAM_OK)
		return rc;
	cl->id_in = true;
	if (cl->vk_key[0] != '\0') {
		rc = gw_limits_enter(g->limits, cl->vk_key, &cl->vk_w, now, which, retry_s);
		if (rc != AAM_OK) {
			gw_limits_leave(g->limits, cl->id_key, &cl->id_w, 0, now);
			cl->id_in = false;
			return rc;
		}
		cl->vk_in = true;
	}
	return AAM_OK;
}

static void
limits_leave(struct gw *g, struct call_limits *cl, const struct gw_call_result *res)
{
	int64_t tokens = res != NULL ? res->input_tokens + res->output_tokens : 0;
	int64_t now = mono_us();
	if (cl->id_in)
		gw_limits_leave(g->limits, cl->id_key, &cl->id_w, tokens, now);
	if (cl->vk_in)
		gw_limits_leave(g->limits, cl->vk_key, &cl->vk_w, tokens, now);
	cl->id_in = cl->vk_in = false;
}

struct stream_job {
	struct call_limits lim;
	const struct model_api *m;
	gw_policy_set *set; /* held until the call ends: the call's policy name points into it */
	struct model_req mr;
	struct gw_call call;
};

struct stream_sink {
	struct aam_http_stream *st;
	const char *request_id;
	bool started;
};

static int
ss_head(void *ctx, unsigned status, const struct aam_http_header *h, size_t n,
        const char *content_type)
{
	struct stream_sink *s = ctx;
	struct aam_http_header out[AAM_HTTP_MAX_HEADERS];
	size_t k = 0;
	for (size_t i = 0; i < n && k < AAM_HTTP_MAX_HEADERS - 1; i++)
		if (h[i].name != NULL && h[i].value != NULL && forwardable(h[i].name))
			out[k++] = h[i];
	out[k].name = (char *)(uintptr_t) "x-request-id";
	out[k].value = (char *)(uintptr_t)s->request_id;
	k++;
	int rc = aam_http_stream_head(s->st, status, out, k, content_type);
	if (rc == AAM_OK)
		s->started = true;
	return rc;
}

static int
ss_body(void *ctx, const uint8_t *p, size_t n)
{
	struct stream_sink *s = ctx;
	return aam_http_stream_write(s->st, p, n);
}

static void
stream_error(struct aam_http_stream *st, enum gw_err_style style, unsigned status, const char *code,
             const char *msg)
{
	struct aam_buf b;
	aam_buf_init(&b, 4096);
	if (gw_error_body(&b, style, status, code, msg) == AAM_OK)
		aam_http_stream_respond(st, status, "application/json", b.data, b.len);
	aam_buf_uninit(&b);
}

static int
run_stream(struct gw *g, const struct gw_request_ctx *rc, struct aam_http_stream *st, void *arg)
{
	struct stream_job *j = arg;
	struct stream_sink ss = {.st = st, .request_id = rc->request_id};
	struct gw_sink sink = {.head = ss_head, .body = ss_body, .ctx = &ss};
	struct gw_call_result res;
	memset(&res, 0, sizeof(res));
	j->call.who = rc->who;
	j->call.request_id = rc->request_id;
	j->call.traceparent = rc->traceparent;
	int r = gw_router_call(g->router, &j->call, &sink, &res);
	unsigned status = ss.started ? res.status : 0;
	if (!ss.started) {
		status = res.status >= 400 ? res.status : 502;
		const char *code = res.error_code[0] != '\0' ? res.error_code : "upstream_error";
		stream_error(st, j->m->style, status, code, "The model call failed.");
	} else if (status == 0) {
		status = 200;
	}
	aam_http_stream_end(st);
	/* The outcome record; the response is already out, so a failure can only be reported. */
	json_t *ev = event_base(g, rc, "model.call", j->m, &j->mr, NULL);
	if (ev != NULL) {
		/* The decision is in the model.request record; name it again to join the two. */
		json_object_set_new(ev, "decision", json_string("allow"));
		json_object_set_new(ev, "policy",
		                    json_pack("{s:s,s:[s?]}", "set_hash",
		                              gw_policy_set_hash_hex(j->set), "names",
		                              j->call.policy_name));
		add_outcome(ev, status, &res, rc->started_us,
		            r != AAM_OK && res.error_code[0] == '\0' ? aam_err_code(r) : NULL);
	}
	if (emit(g, ev) != AAM_OK)
		aam_log(AAM_LOG_ERROR, "gateway.audit_outcome_lost",
		        AAM_F_STR("request_id", rc->request_id));
	count_call(g, j->m, j->mr.model, status, &res);
	limits_leave(g, &j->lim, &res);
	json_decref(j->mr.body);
	gw_policy_store_release(j->set);
	free(j);
	return AAM_OK;
}

/* ---- the endpoint ---------------------------------------------------------------------- */

static void
deny_message(const struct gw_policy_decision *d, char *out, size_t outlen)
{
	const struct gw_policy_reason *r = d->nreasons > 0 ? &d->reasons[0] : NULL;
	if (r == NULL) {
		snprintf(out, outlen, "Denied: no policy allows this request (no_match).");
		return;
	}
	if (r->policy != NULL)
		snprintf(out, outlen, "Denied by policy '%s': %s%s%s.", r->policy,
		         gw_policy_code_name(r->code), r->field != NULL ? " at " : "",
		         r->field != NULL ? r->field : "");
	else
		snprintf(out, outlen, "Denied: %s (no policy allows this request).",
		         gw_policy_code_name(r->code));
}

static int
model_request(struct gw *g, const struct gw_request_ctx *rc, struct aam_http_response *resp,
              const struct model_api *m)
{
	struct model_req mr;
	/* Admitted under the caller's rate limits until the call ends (left at `out`). */
	struct call_limits lim;
	memset(&lim, 0, sizeof(lim));
	char why[300];
	int rc2 = parse_body(g, rc, m, &mr, why, sizeof(why));
	if (rc2 != AAM_OK) {
		unsigned st = rc2 == AAM_E_TOOBIG ? 413 : 400;
		gw_metrics_request(g->metrics, m->endpoint, "", "invalid", st);
		return gw_respond_error(resp, m->style, st, "invalid_request", why);
	}
	const struct gw_reqstate *state = (const struct gw_reqstate *)(const void *)rc;
	char lb[128];
	const char *label = model_label(g, mr.model, lb, sizeof(lb));

	/* A virtual key may be limited to some routes, on top of the policies. */
	if (state->who.vkey_models != NULL) {
		struct gw_vkey k = {.models = state->who.vkey_models};
		if (!gw_vkey_allows_model(&k, mr.model)) {
			json_decref(mr.body);
			gw_metrics_request(g->metrics, m->endpoint, label, "deny", 403);
			return gw_respond_error(resp, m->style, 403, "model_not_allowed",
			                        "This API key may not use that model.");
		}
	}

	gw_policy_set *set = gw_policy_store_acquire(g->policies);
	if (set == NULL) {
		json_decref(mr.body);
		gw_metrics_request(g->metrics, m->endpoint, label, "error", 503);
		return gw_respond_error(resp, m->style, 503, "policies_not_loaded",
		                        "No policy set is loaded.");
	}
	struct gw_policy_request pr;
	gw_policy_request_init(g, rc, &pr);
	pr.kind = GW_POLICY_MODEL;
	pr.model = mr.model;
	pr.max_tokens = mr.max_tokens;
	struct gw_policy_decision d;
	gw_policy_decide(set, &pr, &d);

	int ret;
	if (!d.allow) {
		json_t *ev = event_base(g, rc, "model.call", m, &mr, &d);
		if (ev != NULL)
			add_outcome(ev, 403, NULL, rc->started_us, "policy_denied");
		if (emit(g, ev) != AAM_OK) {
			ret = audit_unavailable(g, m, mr.model, resp);
		} else {
			char msg[512];
			deny_message(&d, msg, sizeof(msg));
			gw_metrics_request(g->metrics, m->endpoint, label, "deny", 403);
			ret = gw_respond_error(resp, m->style, 403, "policy_denied", msg);
		}
		goto out;
	}
	if (g->router == NULL) {
		json_t *ev = event_base(g, rc, "model.call", m, &mr, &d);
		if (ev != NULL)
			add_outcome(ev, 503, NULL, rc->started_us, "no_routes");
		if (emit(g, ev) != AAM_OK) {
			ret = audit_unavailable(g, m, mr.model, resp);
		} else {
			gw_metrics_request(g->metrics, m->endpoint, label, "allow", 503);
			ret = gw_respond_error(resp, m->style, 503, "no_routes",
			                       "No model routes are configured on this gateway.");
		}
		goto out;
	}

	const char *which = NULL;
	int64_t retry_s = 1;
	if (limits_enter(g, &state->who, &d, &lim, &which, &retry_s) != AAM_OK) {
		json_t *ev = event_base(g, rc, "model.call", m, &mr, &d);
		if (ev != NULL)
			add_outcome(ev, 429, NULL, rc->started_us, "rate_limited");
		if (emit(g, ev) != AAM_OK) {
			ret = audit_unavailable(g, m, mr.model, resp);
		} else {
			char msg[160], ra[24];
			snprintf(msg, sizeof(msg), "Rate limit reached (%s); retry in %lld s.",
			         which != NULL ? which : "limit", (long long)retry_s);
			snprintf(ra, sizeof(ra), "%lld", (long long)retry_s);
			gw_metrics_request(g->metrics, m->endpoint, label, "allow", 429);
			ret = gw_respond_error(resp, m->style, 429, "rate_limited", msg);
			if (ret == AAM_OK)
				ret = aam_http_response_header(resp, "retry-after", ra);
		}
		goto out;
	}

	struct gw_call call = {
	        .api = m->api,
	        .body = mr.body,
	        .route = mr.model,
	        .stream = mr.stream,
	        .who = rc->who,
	        .policy_name = gw_decision_policy(&d),
	        .policy_daily_usd = d.limits.daily_usd > 0 ? d.limits.daily_usd : 0,
	        .policy_monthly_usd = d.limits.monthly_usd > 0 ? d.limits.monthly_usd : 0,
	        .max_tokens_cap = d.limits.max_tokens,
	        .request_id = rc->request_id,
	        .traceparent = rc->traceparent,
	};

	if (mr.stream) {
		/* Stored before the first byte goes upstream: a stream is never served unaudited.
		 */
		json_t *ev = event_base(g, rc, "model.request", m, &mr, &d);
		if (emit(g, ev) != AAM_OK) {
			ret = audit_unavailable(g, m, mr.model, resp);
			goto out;
		}
		struct stream_job *j = calloc(1, sizeof(*j));
		if (j == NULL) {
			ret = gw_respond_error(resp, m->style, 503, "unavailable",
			                       "The gateway is short of memory.");
			goto out;
		}
		j->m = m;
		j->set = set;
		j->mr = mr;
		j->call = call;
		j->lim = lim;
		ret = gw_respond_stream(g, rc, resp, run_stream, j);
		if (ret != AAM_OK) {
			free(j); /* LIM is still ours: left at `out` */
			ret = gw_respond_error(resp, m->style, 503, "unavailable",
			                       "The stream could not be started.");
			goto out;
		}
		return AAM_OK; /* the job owns the body, the set and the limits now */
	}

	struct bufsink bs;
	memset(&bs, 0, sizeof(bs));
	aam_buf_init(&bs.body, AAM_HTTP_MAX_RESPONSE);
	struct gw_sink sink = {.head = buf_head, .body = buf_body, .ctx = &bs};
	struct gw_call_result res;
	memset(&res, 0, sizeof(res));
	int r = gw_router_call(g->router, &call, &sink, &res);
	limits_leave(g, &lim, &res);
	bool ok = bs.started && (r == AAM_OK || res.status >= 400) && !aam_buf_failed(&bs.body);
	unsigned status = ok ? bs.status : (res.status >= 400 ? res.status : 502);
	const char *code = res.error_code[0] != '\0' ? res.error_code : "upstream_error";
	json_t *ev = event_base(g, rc, "model.call", m, &mr, &d);
	if (ev != NULL)
		add_outcome(ev, status, &res, rc->started_us,
		            !ok && res.error_code[0] == '\0' ? code : NULL);
	if (emit(g, ev) != AAM_OK) {
		ret = audit_unavailable(g, m, mr.model, resp);
	} else if (ok) {
		resp->status = bs.status;
		resp->content_type = bs.ctype;
		aam_buf_reset(&resp->body);
		ret = aam_buf_append(&resp->body, bs.body.data, bs.body.len);
		for (size_t i = 0; ret == AAM_OK && i < bs.n; i++)
			ret = aam_http_response_header(resp, bs.h[i].name, bs.h[i].value);
		count_call(g, m, mr.model, status, &res);
	} else {
		count_call(g, m, mr.model, status, &res);
		ret = gw_respond_error(resp, m->style, status, code,
		                       status == 404 ? "No such model route."
		                       : status == 429
		                               ? "A budget or rate limit refused the request."
		                               : "The model call failed.");
	}
	bufsink_uninit(&bs);
out:
	limits_leave(g, &lim, NULL);
	json_decref(mr.body);
	gw_policy_store_release(set);
	return ret;
}

int
gw_api_chat(struct gw *g, const struct gw_request_ctx *rc, struct aam_http_response *resp)
{
	return model_request(g, rc, resp, &API_CHAT);
}

int
gw_api_messages(struct gw *g, const struct gw_request_ctx *rc, struct aam_http_response *resp)
{
	return model_request(g, rc, resp, &API_MESSAGES);
}

int
gw_api_embeddings(struct gw *g, const struct gw_request_ctx *rc, struct aam_http_response *resp)
{
	return model_request(g, rc, resp, &API_EMBEDDINGS);
}
