/*
 * gw_router_call (gateway/route.h): budget reservation, deployment
 * choice, upstream attempts through the vault with retries and
 * fallbacks, the response written to the client's sink (streamed or
 * whole), and the budget settled to the real usage.
 *
 * Nothing is written to the sink before an upstream answered well: a
 * stream's head goes out with its first translated bytes, so a stream
 * that fails before producing any can still be retried elsewhere.  Once
 * a byte is out, the call is committed to that deployment.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* strptime, timegm */
#endif
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "aam/err.h"
#include "common/log.h"
#include "gateway/budget.h"
#include "gateway/provider.h"
#include "gateway/provider_int.h"
#include "gateway/route.h"
#include "gateway/router_int.h"
#include "gateway/vault_client.h"

#define MAX_QUEUE     64
#define ERR_BODY_MAX  (64u * 1024)
#define RESP_BODY_MAX (32u * 1024 * 1024)
#define CHUNK_OUT_MAX (8u * 1024 * 1024)

enum outcome {
	O_DONE = 1,   /* answered (maybe cut short after the head) */
	O_CLIENT_ERR, /* an upstream 4xx returned to the client as is */
	O_RETRY,      /* failed before any byte reached the client: try again or elsewhere */
	O_FATAL,      /* nothing to retry with: the vault is unreachable, or a bad request */
};

struct attempt {
	struct gw_router *r;
	const struct gw_call *call;
	struct gw_sink *sink;
	const struct gw_deployment *d;
	bool wants_usage;
	unsigned status;
	int64_t retry_after_ms; /* -1: none */
	struct aam_buf err;     /* upstream error body */
	struct aam_buf body;    /* non-stream upstream body */
	struct aam_buf out;     /* translated bytes for the client */
	struct gw_xlate *x;
	bool started; /* the sink's head was written */
	bool client_closed;
	int64_t t0_us, head_us;
	int64_t default_timeout_ms; /* router_settings.timeout */
	size_t upstream_bytes;
	struct gw_usage usage;
};

static int64_t
now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
sleep_ms(int64_t ms)
{
	if (ms <= 0)
		return;
	struct timespec ts = {.tv_sec = (time_t)(ms / 1000),
	                      .tv_nsec = (long)(ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

/*
 * retry-after: delay-seconds or an HTTP-date (RFC 9110 10.2.3); OpenAI
 * also sends retry-after-ms.  Returns -1 when unusable.
 */
static int64_t
parse_retry_after(const char *v, bool millis)
{
	while (*v == ' ')
		v++;
	if (isdigit((unsigned char)*v)) {
		char *end = NULL;
		errno = 0;
		double x = strtod(v, &end);
		if (errno != 0 || x < 0 || x > 86400.0 * 1000)
			return -1;
		while (end != NULL && *end == ' ')
			end++;
		if (end == NULL || *end != '\0')
			return -1;
		return (int64_t)(millis ? x : x * 1000);
	}
	if (millis)
		return -1;
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *end = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (end == NULL || *end != '\0')
		return -1;
	time_t at = timegm(&tm);
	time_t now = time(NULL);
	return at > now ? (int64_t)(at - now) * 1000 : 0;
}

static bool
is_2xx(unsigned s)
{
	return s >= 200 && s < 300;
}

static bool
retryable_status(unsigned s)
{
	return s == 408 || s == 409 || s == 429 || (s >= 500 && s <= 599);
}

static int
flush(struct attempt *a)
{
	if (a->out.len == 0)
		return AAM_OK;
	int rc = AAM_OK;
	if (!a->started) {
		a->started = true;
		rc = a->sink->head(a->sink->ctx, 200, NULL, 0, "text/event-stream");
	}
	if (rc == AAM_OK)
		rc = a->sink->body(a->sink->ctx, a->out.data, a->out.len);
	aam_buf_reset(&a->out);
	if (rc != AAM_OK) {
		a->client_closed = true;
		return AAM_E_CLOSED;
	}
	return AAM_OK;
}

static int
on_head(void *ctx, unsigned status, const struct aam_http_header *h, size_t n)
{
	struct attempt *a = ctx;
	a->status = status;
	a->head_us = now_us();
	for (size_t i = 0; i < n; i++) {
		int64_t ms = -1;
		if (strcmp(h[i].name, "retry-after-ms") == 0)
			ms = parse_retry_after(h[i].value, true);
		else if (strcmp(h[i].name, "retry-after") == 0 && a->retry_after_ms < 0)
			ms = parse_retry_after(h[i].value, false);
		if (ms >= 0)
			a->retry_after_ms = ms;
	}
	if (is_2xx(status) && a->call->stream) {
		if (gw_xlate_new(a->d, a->call->api, a->wants_usage, &a->x) != AAM_OK)
			return AAM_E_NOMEM;
	}
	return AAM_OK;
}

static int
on_body(void *ctx, const uint8_t *p, size_t n)
{
	struct attempt *a = ctx;
	a->upstream_bytes += n;
	if (!is_2xx(a->status)) {
		/* Only the start of an error body is kept; the message is near the top. */
		size_t room = ERR_BODY_MAX - a->err.len;
		aam_buf_append(&a->err, p, n < room ? n : room);
		return AAM_OK;
	}
	if (!a->call->stream)
		return aam_buf_append(&a->body, p, n) == AAM_OK ? AAM_OK : AAM_E_TOOBIG;
	int rc = gw_xlate_feed(a->x, p, n, &a->out);
	if (rc != AAM_OK)
		return rc;
	return flush(a);
}

static void
set_error(struct gw_call_result *res, unsigned status, const char *code, const char *msg)
{
	res->status = status;
	/* Truncation is intended: both fields are bounded summaries. */
	size_t n = strnlen(code, sizeof(res->error_code) - 1);
	memcpy(res->error_code, code, n);
	res->error_code[n] = '\0';
	n = strnlen(msg, sizeof(res->error_message) - 1);
	memcpy(res->error_message, msg, n);
	res->error_message[n] = '\0';
}

static enum outcome
finish_stream(struct attempt *a, int rc, struct gw_call_result *res)
{
	if (a->client_closed) {
		set_error(res, 200, "client_closed", "the client went away during the response");
		return O_DONE;
	}
	if (rc != AAM_OK && !a->started) {
		set_error(res, 502, "upstream_error",
		          "the upstream stream failed before any output");
		return O_RETRY;
	}
	/* Close the client stream properly even when the upstream was cut short. */
	int frc = gw_xlate_finish(a->x, &a->out);
	if (flush(a) != AAM_OK) {
		set_error(res, 200, "client_closed", "the client went away during the response");
		return O_DONE;
	}
	if (!a->started) {
		/* A well-formed but empty stream still gets its head. */
		a->started = true;
		if (a->sink->head(a->sink->ctx, 200, NULL, 0, "text/event-stream") != AAM_OK)
			a->client_closed = true;
	}
	res->status = 200;
	if (rc != AAM_OK || frc != AAM_OK)
		set_error(res, 200, "upstream_truncated", "the upstream stream ended early");
	return O_DONE;
}

static enum outcome
finish_whole(struct attempt *a, int rc, struct gw_call_result *res)
{
	if (rc != AAM_OK) {
		set_error(res, 502, "upstream_error", "the upstream response was cut short");
		return O_RETRY;
	}
	if (gw_provider_response(a->d, a->call->api, a->body.data, a->body.len, &a->out,
	                         &a->usage) != AAM_OK) {
		set_error(res, 502, "upstream_error", "the upstream response could not be read");
		return O_RETRY;
	}
	a->started = true;
	res->status = 200;
	int src = a->sink->head(a->sink->ctx, 200, NULL, 0, "application/json");
	if (src == AAM_OK)
		src = a->sink->body(a->sink->ctx, a->out.data, a->out.len);
	if (src != AAM_OK) {
		a->client_closed = true;
		set_error(res, 200, "client_closed", "the client went away during the response");
	}
	return O_DONE;
}

static enum outcome
attempt_run(struct attempt *a, int64_t out_cap, struct gw_call_result *res)
{
	const struct gw_call *call = a->call;
	struct gw_upstream up;
	char err[256] = "";
	memset(&up, 0, sizeof(up));
	int rc = gw_provider_build(a->d, call->api, call->body, call->stream, out_cap, &up, err,
	                           sizeof(err));
	if (rc != AAM_OK) {
		gw_upstream_free(&up);
		set_error(res, rc == AAM_E_NOMEM ? 500 : 400, "invalid_request",
		          err[0] != '\0' ? err : "the request cannot be sent to this model");
		return O_FATAL;
	}
	int64_t timeout = a->d->timeout_ms > 0 ? a->d->timeout_ms : a->default_timeout_ms;
	struct gw_inject_cb cb = {.head = on_head, .body = on_body, .ctx = a};
	struct gw_inject_result ir;
	a->t0_us = now_us();
	rc = gw_vault_inject(a->r->vault, a->d->credential, &up, timeout, &cb, &ir);
	gw_upstream_free(&up);
	if (a->head_us == 0)
		a->head_us = now_us();
	res->upstream_latency_us = now_us() - a->t0_us;

	if (a->client_closed) {
		set_error(res, 200, "client_closed", "the client went away during the response");
		return O_DONE;
	}
	if (ir.head_seen && is_2xx(a->status))
		return call->stream ? finish_stream(a, rc, res) : finish_whole(a, rc, res);
	if (ir.head_seen) {
		char msg[256];
		gw_provider_error_message(a->status, a->err.data, a->err.len, msg, sizeof(msg));
		if (retryable_status(a->status)) {
			set_error(res, a->status == 429 ? 429 : 502,
			          a->status == 429 ? "upstream_rate_limited" : "upstream_error",
			          msg);
			return O_RETRY;
		}
		set_error(res, a->status, "upstream_error", msg);
		return O_CLIENT_ERR;
	}
	if (rc == AAM_E_TIMEOUT) {
		set_error(res, 504, "upstream_timeout", "the upstream did not answer in time");
		return O_RETRY;
	}
	if (rc == AAM_E_CLOSED) {
		set_error(res, 503, "vault_unavailable", "the vault is not reachable");
		return O_FATAL;
	}
	/* The vault refused or failed the request (its messages name no secret). */
	char msg[300];
	snprintf(msg, sizeof(msg), "the upstream request failed: %s",
	         ir.reason[0] != '\0' ? ir.reason : aam_strerror(rc));
	set_error(res, 502, "upstream_error", msg);
	return O_RETRY;
}

static int64_t
body_int(const json_t *body, const char *key)
{
	json_t *v = json_object_get(body, key);
	return json_is_integer(v) && json_integer_value(v) > 0 ? (int64_t)json_integer_value(v) : 0;
}

/* The worst-case cost over every deployment the call may reach. */
static void
worst_visit(const struct gw_routes *t, const struct gw_route *r, int64_t in, int64_t out,
            double *worst, const struct gw_route **seen, size_t *nseen)
{
	for (size_t i = 0; i < *nseen; i++)
		if (seen[i] == r)
			return;
	if (*nseen == MAX_QUEUE)
		return;
	seen[(*nseen)++] = r;
	for (size_t i = 0; i < r->ndeps; i++) {
		const struct gw_deployment *d = &r->deps[i];
		double c = ((double)in * d->cost_in + (double)out * d->cost_out) / 1e6;
		if (c > *worst)
			*worst = c;
	}
	for (size_t i = 0; i < r->nfallbacks; i++) {
		const struct gw_route *f = gw_routes_find(t, r->fallbacks[i]);
		if (f != NULL)
			worst_visit(t, f, in, out, worst, seen, nseen);
	}
	for (size_t i = 0; i < r->ncw_fallbacks; i++) {
		const struct gw_route *f = gw_routes_find(t, r->cw_fallbacks[i]);
		if (f != NULL)
			worst_visit(t, f, in, out, worst, seen, nseen);
	}
}

static bool
queued(const struct gw_route *const *q, size_t n, const struct gw_route *r)
{
	for (size_t i = 0; i < n; i++)
		if (q[i] == r)
			return true;
	return false;
}

/* Inserts the routes NAMES at position AT of the queue (skipping queued ones). */
static void
enqueue(const struct gw_routes *t, const struct gw_route **q, size_t *n, size_t at,
        char *const *names, size_t nnames)
{
	for (size_t i = 0; i < nnames && *n < MAX_QUEUE; i++) {
		const struct gw_route *f = gw_routes_find(t, names[i]);
		if (f == NULL || queued(q, *n, f))
			continue;
		memmove(&q[at + 1], &q[at], (*n - at) * sizeof(*q));
		q[at++] = f;
		(*n)++;
	}
}

/*
 * docs/ROUTING.md, "Settle".  Without the final usage the charge must
 * not fall below what was spent: the input an Anthropic message_start
 * reported is spent, and the output delivered so far is bounded by its
 * bytes (a token is at least one byte of text).  An OpenAI stream reports
 * nothing before its last chunk, and reasoning models (like Anthropic's
 * summarised thinking) spend output tokens the stream does not show, so
 * those are charged the reservation's worst case: the input estimate and
 * the output cap.  Output generated upstream but never delivered before
 * the cut cannot be seen; the cap bounds it in the worst-case branch only.
 */
void
gw_settle_tokens(const struct gw_usage *u, const struct gw_stream_progress *p, bool openai_wire,
                 int64_t est_in, int64_t out_cap, struct gw_charge *c)
{
	struct gw_usage none = {0};
	if (u == NULL)
		u = &none;
	memset(c, 0, sizeof(*c));
	c->cached = u->cached > 0 ? u->cached : 0;
	bool final = p != NULL ? p->final_usage : u->seen;
	if (final) {
		c->input = u->input > 0 ? u->input : est_in;
		c->output = u->output > 0 ? u->output : 0;
		return;
	}
	c->estimated = true;
	bool input_known = p != NULL && p->input_reported && u->input > 0;
	c->input = input_known ? u->input : est_in;
	if (!input_known)
		c->cached = 0;
	int64_t out = out_cap;
	if (p != NULL && !openai_wire && input_known && !p->opaque_output) {
		out = p->output_bytes > u->output ? p->output_bytes : u->output;
		if (out_cap > 0 && out > out_cap)
			out = out_cap;
	}
	c->output = out > 0 ? out : 0;
}

static void
settle(struct gw_router *r, int64_t rid, const struct attempt *a, int64_t est_in, int64_t out_cap,
       struct gw_call_result *res)
{
	struct gw_usage u = a->usage;
	struct gw_stream_progress p = {0};
	if (a->x != NULL) {
		gw_xlate_usage(a->x, &u);
		gw_xlate_progress(a->x, &p);
	}
	enum gw_wire wire = GW_WIRE_OPENAI;
	(void)gw_provider_wire(a->d->provider, &wire);
	struct gw_charge ch;
	gw_settle_tokens(&u, a->call->stream ? &p : NULL, wire == GW_WIRE_OPENAI, est_in, out_cap,
	                 &ch);
	int64_t uncached = ch.input > ch.cached ? ch.input - ch.cached : 0;
	const struct gw_deployment *d = a->d;
	double cost = ((double)uncached * d->cost_in + (double)ch.cached * d->cost_cached +
	               (double)ch.output * d->cost_out) /
	              1e6;
	res->input_tokens = ch.input;
	res->output_tokens = ch.output;
	res->cached_tokens = ch.cached;
	res->cost_usd = cost;
	if (ch.estimated)
		aam_log(AAM_LOG_INFO, "gateway.settle_estimated",
		        AAM_F_STR("request_id", a->call->request_id),
		        AAM_F_STR("deployment", d->id), AAM_F_INT("input_tokens", ch.input),
		        AAM_F_INT("output_tokens", ch.output));
	if (rid > 0 && gw_budget_settle(r->budget, rid, cost) != AAM_OK)
		aam_log(AAM_LOG_ERROR, "gateway.budget_settle_failed",
		        AAM_F_STR("request_id", a->call->request_id));
}

static void
attempt_init(struct attempt *a, struct gw_router *r, const struct gw_call *call,
             struct gw_sink *sink, const struct gw_deployment *d)
{
	memset(a, 0, sizeof(*a));
	a->r = r;
	a->call = call;
	a->sink = sink;
	a->d = d;
	a->retry_after_ms = -1;
	json_t *so = json_object_get(call->body, "stream_options");
	a->wants_usage = call->api == GW_API_OPENAI_CHAT &&
	                 json_is_true(json_object_get(so, "include_usage"));
	aam_buf_init(&a->err, ERR_BODY_MAX);
	aam_buf_init(&a->body, RESP_BODY_MAX);
	aam_buf_init(&a->out, call->stream ? CHUNK_OUT_MAX : RESP_BODY_MAX);
}

static void
attempt_uninit(struct attempt *a)
{
	aam_buf_uninit(&a->err);
	aam_buf_uninit(&a->body);
	aam_buf_uninit(&a->out);
	gw_xlate_free(a->x);
	a->x = NULL;
}

static void
describe(struct gw_call_result *res, const struct gw_route *route, const struct gw_deployment *d)
{
	snprintf(res->route, sizeof(res->route), "%s", route->name);
	snprintf(res->deployment, sizeof(res->deployment), "%s", d->id);
	snprintf(res->provider, sizeof(res->provider), "%s", d->provider);
	snprintf(res->upstream_model, sizeof(res->upstream_model), "%s", d->model);
}

static int
reserve(struct gw_router *r, const struct gw_call *call, double amount, int64_t *rid,
        struct gw_call_result *res)
{
	const struct gw_identity *who = call->who;
	struct gw_budget_scopes s = {
	        .identity = who != NULL ? who->spiffe_id : NULL,
	        .team = who != NULL ? who->team : NULL,
	        .policy = call->policy_name,
	        .vkey = who != NULL ? who->vkey_id : NULL,
	        .policy_daily_usd = call->policy_daily_usd,
	        .policy_monthly_usd = call->policy_monthly_usd,
	};
	const char *which = NULL;
	int rc = gw_budget_reserve(r->budget, &s, amount, rid, &which);
	if (rc == AAM_E_DENIED) {
		char msg[128];
		snprintf(msg, sizeof(msg), "the %s budget does not allow this request",
		         which != NULL ? which : "");
		set_error(res, 429, "budget_exceeded", msg);
	} else if (rc != AAM_OK) {
		aam_log(AAM_LOG_ERROR, "gateway.budget_unavailable", AAM_F_ERR(rc));
		set_error(res, 503, "budget_unavailable", "the budget ledger is not available");
	}
	return rc;
}

static void
no_pick_error(struct gw_call_result *res, int why)
{
	switch (why) {
	case GW_PICK_CONTEXT:
		set_error(res, 400, "context_length_exceeded",
		          "the request is larger than every deployment's context window");
		break;
	case GW_PICK_RATE:
		set_error(res, 429, "rate_limited", "every deployment is at its rpm/tpm limit");
		break;
	case GW_PICK_COOLDOWN:
		set_error(res, 503, "no_deployment",
		          "every deployment is cooling down after failures");
		break;
	default:
		set_error(res, 403, "region_denied", "no deployment in a region the policy allows");
		break;
	}
}

/* Runs the route queue.  Returns the outcome of the last attempt (0 if none was made). */
static enum outcome
run_queue(struct gw_router *r, struct gw_routes *t, const struct gw_call *call,
          struct gw_sink *sink, const struct gw_route *first, int64_t est_in, int64_t out_cap,
          struct attempt *a, const struct gw_route **served, struct gw_call_result *res)
{
	const struct gw_route *q[MAX_QUEUE];
	size_t nq = 0;
	q[nq++] = first;
	enum outcome last = 0;
	int64_t delay = 0;
	for (size_t qi = 0; qi < nq; qi++) {
		const struct gw_route *cur = q[qi];
		uint64_t exclude = 0;
		int tries = 0;
		while (tries <= t->settings.num_retries) {
			size_t idx = 0;
			int why = 0;
			int64_t now = gw_now_ms();
			int prc = gw_pick(t, cur, exclude, call->allowed_regions, call->nregions,
			                  est_in, gw_router_random, r, now, &idx, &why);
			if (prc != AAM_OK && exclude != 0)
				prc = gw_pick(t, cur, 0, call->allowed_regions, call->nregions,
				              est_in, gw_router_random, r, now, &idx, &why);
			if (prc != AAM_OK) {
				if (why == GW_PICK_CONTEXT)
					enqueue(t, q, &nq, qi + 1, cur->cw_fallbacks,
					        cur->ncw_fallbacks);
				if (last == 0 || why == GW_PICK_CONTEXT)
					no_pick_error(res, why);
				break;
			}
			if (tries > 0 || qi > 0) {
				sleep_ms(delay);
				if (qi > 0)
					res->fell_back = true;
			}
			attempt_uninit(a);
			attempt_init(a, r, call, sink, &cur->deps[idx]);
			a->default_timeout_ms = t->settings.timeout_ms;
			describe(res, cur, a->d);
			res->error_code[0] = '\0';
			res->error_message[0] = '\0';
			res->attempts++;
			gw_state_begin(t, cur, idx, gw_now_ms());
			last = attempt_run(a, out_cap, res);
			/* Only upstream failures count against a deployment (not a vault outage).
			 */
			bool ok = last != O_RETRY;
			int64_t tokens = 0;
			if (a->x != NULL) {
				struct gw_usage u;
				gw_xlate_usage(a->x, &u);
				tokens = u.input + u.output;
			} else {
				tokens = a->usage.input + a->usage.output;
			}
			gw_state_end(t, cur, idx, ok, a->head_us - a->t0_us, tokens, gw_now_ms());
			if (last != O_RETRY) {
				*served = cur;
				return last;
			}
			aam_log(AAM_LOG_INFO, "gateway.upstream_retry",
			        AAM_F_STR("deployment", a->d->id), AAM_F_UINT("status", a->status),
			        AAM_F_STR("reason", res->error_code),
			        AAM_F_STR("request_id", call->request_id));
			exclude |= UINT64_C(1) << idx;
			tries++;
			/* Exponential backoff, or what the upstream asked for, capped. */
			delay = t->settings.retry_backoff_ms << (tries - 1 < 10 ? tries - 1 : 10);
			if (a->retry_after_ms >= 0)
				delay = a->retry_after_ms;
			if (delay > t->settings.retry_after_max_ms)
				delay = t->settings.retry_after_max_ms;
		}
		/* Fallback routes are tried once the route itself is exhausted, in order. */
		enqueue(t, q, &nq, qi + 1, cur->fallbacks, cur->nfallbacks);
		/* A fallback route is a different upstream: no need to wait for this one's backoff.
		 */
		delay = 0;
	}
	return last;
}

int
gw_router_call(struct gw_router *r, const struct gw_call *call, struct gw_sink *sink,
               struct gw_call_result *res)
{
	if (res != NULL)
		memset(res, 0, sizeof(*res));
	if (r == NULL || call == NULL || sink == NULL || res == NULL || sink->head == NULL ||
	    sink->body == NULL || call->body == NULL) {
		if (res != NULL)
			set_error(res, 500, "internal_error", "bad router call");
		return AAM_E_INVAL;
	}
	snprintf(res->route, sizeof(res->route), "%s", call->route != NULL ? call->route : "");
	struct gw_routes *t = gw_router_table(r);
	const struct gw_route *route = gw_routes_find(t, call->route);
	if (route == NULL) {
		gw_routes_unref(t);
		set_error(res, 404, "unknown_route", "no such model route");
		return AAM_E_NOTFOUND;
	}
	int64_t est_in = gw_estimate_input_tokens(call->api, call->body);
	int64_t out_cap = 0;
	if (call->api != GW_API_OPENAI_EMBEDDINGS) {
		out_cap = body_int(call->body, "max_completion_tokens");
		if (out_cap == 0)
			out_cap = body_int(call->body, "max_tokens");
		if (out_cap == 0 || out_cap > route->max_output_tokens)
			out_cap = route->max_output_tokens;
		if (call->max_tokens_cap > 0 && call->max_tokens_cap < out_cap)
			out_cap = call->max_tokens_cap;
	}
	double worst = 0;
	const struct gw_route *seen[MAX_QUEUE];
	size_t nseen = 0;
	worst_visit(t, route, est_in, out_cap, &worst, seen, &nseen);
	int64_t rid = 0;
	int rc = reserve(r, call, worst, &rid, res);
	if (rc != AAM_OK) {
		gw_routes_unref(t);
		return rc;
	}
	struct attempt a;
	attempt_init(&a, r, call, sink, &route->deps[0]);
	const struct gw_route *served = NULL;
	enum outcome o = run_queue(r, t, call, sink, route, est_in, out_cap, &a, &served, res);
	if (o == O_DONE) {
		settle(r, rid, &a, est_in, out_cap, res);
		rc = AAM_OK;
	} else {
		if (gw_budget_release(r->budget, rid) != AAM_OK)
			aam_log(AAM_LOG_ERROR, "gateway.budget_release_failed",
			        AAM_F_STR("request_id", call->request_id));
		rc = o == O_CLIENT_ERR ? AAM_E_DENIED : AAM_E_IO;
		if (res->status == 0)
			set_error(res, 502, "upstream_error", "the model call failed");
	}
	if (o == O_DONE && res->error_code[0] == '\0')
		res->status = 200;
	attempt_uninit(&a);
	gw_routes_unref(t);
	return rc;
}
