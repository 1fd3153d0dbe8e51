/*
 * aam-gateway's HTTP front: the daemon state, the route table, and the
 * dispatcher that gives every authenticated endpoint a request context
 * (identity, request id, traceparent, delegation).
 *
 * Threading mode.  The front runs libmicrohttpd with a thread per
 * connection (AAM_HTTP_MODE_THREAD_PER_CONN).  Model requests block on
 * upstreams for seconds and streams for minutes, which in the epoll mode
 * would stall every other connection of that thread; with a thread per
 * connection a handler may block, and a keep-alive client pays the thread
 * once per connection, not per request.  Figures are in docs/GATEWAY.md.
 */
#include "gateway/gw_int.h"
#include "aam/err.h"
#include "common/log.h"
#include "gateway/limits.h"
#include "gateway/vkeys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

/* ---- request context ---------------------------------------------------------- */

static int64_t
mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static bool
is_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static bool
all_zero(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != '0')
			return false;
	return true;
}

/* W3C Trace Context: "00-<32 hex trace-id>-<16 hex parent-id>-<2 hex flags>". */
static bool
traceparent_ok(const char *t)
{
	if (t == NULL || strlen(t) != 55 || t[2] != '-' || t[35] != '-' || t[52] != '-')
		return false;
	if (!is_lower_hex(t, 2) || !is_lower_hex(t + 3, 32) || !is_lower_hex(t + 36, 16) ||
	    !is_lower_hex(t + 53, 2))
		return false;
	return strncmp(t, "ff", 2) != 0 && !all_zero(t + 3, 32) && !all_zero(t + 36, 16);
}

static bool
printable_max(const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static void
new_request_id(char out[GW_REQUEST_ID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t r[GW_REQUEST_ID_LEN / 2];
	if (RAND_bytes(r, sizeof(r)) != 1) {
		/* Not a secret: a clock-based id is an acceptable fallback. */
		uint64_t t = (uint64_t)mono_us();
		memset(r, 0, sizeof(r));
		memcpy(r, &t, sizeof(t));
	}
	for (size_t i = 0; i < sizeof(r); i++) {
		out[2 * i] = hex[r[i] >> 4];
		out[2 * i + 1] = hex[r[i] & 15];
	}
	out[GW_REQUEST_ID_LEN] = '\0';
}

static struct gw_reqstate *
reqstate_new(const struct aam_http_request *req, const char *endpoint, size_t subpath_off)
{
	struct gw_reqstate *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->endpoint = endpoint;
	s->rc.http = req;
	s->rc.started_us = mono_us();
	new_request_id(s->request_id);
	s->rc.request_id = s->request_id;
	const char *tp = aam_http_request_header(req, "traceparent");
	if (traceparent_ok(tp)) {
		memcpy(s->traceparent, tp, 56);
		s->rc.traceparent = s->traceparent;
	}
	const char *obo = aam_http_request_header(req, "x-aam-on-behalf-of");
	if (obo != NULL && printable_max(obo, sizeof(s->on_behalf_of) - 1)) {
		snprintf(s->on_behalf_of, sizeof(s->on_behalf_of), "%s", obo);
		s->rc.on_behalf_of = s->on_behalf_of;
	}
	size_t plen = strlen(req->path);
	s->rc.subpath = req->path + (subpath_off <= plen ? subpath_off : plen);
	return s;
}

static void
reqstate_free(struct gw_reqstate *s)
{
	if (s == NULL)
		return;
	gw_principal_uninit(&s->who);
	free(s);
}

/* ---- streaming hand-off -------------------------------------------------------------- */

struct stream_job {
	struct gw *g;
	struct gw_reqstate *s;
	size_t subpath_off;
	gw_stream_fn run;
	void *arg;
};

static void
stream_trampoline(void *p, struct aam_http_stream *st)
{
	struct stream_job *j = p;
	struct gw_reqstate *s = j->s;
	/* From here on the request is the stream's copy; the connection's may be gone. */
	s->rc.http = aam_http_stream_request(st);
	size_t plen = strlen(s->rc.http->path);
	s->rc.subpath = s->rc.http->path + (j->subpath_off <= plen ? j->subpath_off : plen);
	j->run(j->g, &s->rc, st, j->arg);
	atomic_fetch_sub(&j->g->inflight, 1);
	reqstate_free(s);
	free(j);
}

int
gw_respond_stream(struct gw *g, const struct gw_request_ctx *rc, struct aam_http_response *resp,
                  gw_stream_fn run, void *arg)
{
	if (g == NULL || rc == NULL || resp == NULL || run == NULL)
		return AAM_E_INVAL;
	/* RC is the first member of the request's state, which the stream takes over. */
	struct gw_reqstate *s = (struct gw_reqstate *)(uintptr_t)rc;
	if (s->stolen)
		return AAM_E_INVAL;
	struct stream_job *j = calloc(1, sizeof(*j));
	if (j == NULL)
		return AAM_E_NOMEM;
	*j = (struct stream_job){.g = g,
	                         .s = s,
	                         .subpath_off = (size_t)(rc->subpath - rc->http->path),
	                         .run = run,
	                         .arg = arg};
	int r = aam_http_respond_stream(resp, stream_trampoline, j);
	if (r != AAM_OK) {
		free(j);
		return r;
	}
	s->stolen = true;
	return AAM_OK;
}

static int
sink_head(void *ctx, unsigned status, const struct aam_http_header *h, size_t n,
          const char *content_type)
{
	return aam_http_stream_head(ctx, status, h, n, content_type);
}

static int
sink_body(void *ctx, const uint8_t *p, size_t n)
{
	return aam_http_stream_write(ctx, p, n);
}

void
gw_sink_for_stream(struct gw_sink *sink, struct aam_http_stream *st)
{
	sink->head = sink_head;
	sink->body = sink_body;
	sink->ctx = st;
}

/* ---- dispatch ------------------------------------------------------------------------- */

/* What an authenticated route runs. */
struct gw_route_spec {
	gw_endpoint_fn fn;
	enum gw_err_style style;
	const char *endpoint; /* metrics label */
	size_t subpath_off;   /* strlen of the route's prefix */
};

static int
dispatch(struct gw *g, const struct aam_http_request *req, struct aam_http_response *resp,
         const struct gw_route_spec *spec)
{
	atomic_fetch_add(&g->inflight, 1);
	struct gw_reqstate *s = reqstate_new(req, spec->endpoint, spec->subpath_off);
	if (s == NULL) {
		atomic_fetch_sub(&g->inflight, 1);
		return gw_respond_error(resp, spec->style, 503, "unavailable",
		                        "The gateway is short of memory.");
	}
	struct gw_authn_error ae;
	int rc = gw_authn_request(g->authn, req, &s->who, &ae);
	if (rc != AAM_OK) {
		aam_log(AAM_LOG_INFO, "gateway.authn_failed", AAM_F_STR("code", ae.code),
		        AAM_F_STR("why", ae.message), AAM_F_STR("path", req->path),
		        AAM_F_STR("client", req->client_addr),
		        AAM_F_STR("request_id", s->request_id));
		gw_metrics_authn_failure(g->metrics, ae.code);
		gw_metrics_request(g->metrics, spec->endpoint, "", "unauthenticated", ae.status);
		rc = gw_respond_error(resp, spec->style, ae.status, ae.code, ae.message);
		if (rc == AAM_OK && ae.www_auth != NULL)
			rc = aam_http_response_header(resp, "WWW-Authenticate", ae.www_auth);
	} else {
		s->rc.who = &s->who.id;
		rc = spec->fn(g, &s->rc, resp);
	}
	if (!s->stolen) {
		if (resp->stream_run == NULL && resp->status != 0)
			aam_http_response_header(resp, "x-request-id", s->request_id);
		reqstate_free(s);
		atomic_fetch_sub(&g->inflight, 1);
	}
	return rc;
}

#define ROUTE_FN(name, fnp, sty, ep, off)                                                          \
	static int name(void *ctx, const struct aam_http_request *req,                             \
	                struct aam_http_response *resp)                                            \
	{                                                                                          \
		static const struct gw_route_spec spec = {fnp, sty, ep, off};                      \
		return dispatch(ctx, req, resp, &spec);                                            \
	}

ROUTE_FN(on_chat, gw_api_chat, GW_ERR_OPENAI, "/v1/chat/completions", 0)
ROUTE_FN(on_messages, gw_api_messages, GW_ERR_ANTHROPIC, "/v1/messages", 0)
ROUTE_FN(on_embeddings, gw_api_embeddings, GW_ERR_OPENAI, "/v1/embeddings", 0)
ROUTE_FN(on_models, gw_api_models, GW_ERR_OPENAI, "/v1/models", 0)
ROUTE_FN(on_tools, gw_tools_handle, GW_ERR_AAM, "/v1/tools", sizeof("/v1/tools/") - 1)
ROUTE_FN(on_mcp, gw_mcp_handle, GW_ERR_JSONRPC, "/mcp", sizeof("/mcp") - 1)

static int
on_healthz(void *ctx, const struct aam_http_request *req, struct aam_http_response *resp)
{
	(void)req;
	return gw_api_healthz(ctx, resp);
}

static int
on_readyz(void *ctx, const struct aam_http_request *req, struct aam_http_response *resp)
{
	(void)req;
	return gw_api_readyz(ctx, resp);
}

static int
on_metrics(void *ctx, const struct aam_http_request *req, struct aam_http_response *resp)
{
	(void)req;
	return gw_api_metrics(ctx, resp);
}

/*
 * Both the /v1 paths and the bare ones: LiteLLM serves both, and clients
 * configured with base_url "http://host:4000" (no /v1) call the bare ones.
 */
static const struct aam_http_route gw_routes[] = {
        {"POST", "/v1/chat/completions", on_chat},
        {"POST", "/chat/completions", on_chat},
        {"POST", "/v1/messages", on_messages},
        {"POST", "/v1/embeddings", on_embeddings},
        {"POST", "/embeddings", on_embeddings},
        {"GET", "/v1/models", on_models},
        {"GET", "/models", on_models},
        {"*", "/v1/tools/*", on_tools},
        {"*", "/v1/tools", on_tools},
        {"*", "/mcp", on_mcp},
        {"GET", "/healthz", on_healthz},
        {"GET", "/readyz", on_readyz},
        {"GET", "/metrics", on_metrics},
};

/* ---- lifecycle ------------------------------------------------------------------------- */

static int
load_policies(struct gw *g, char *err, size_t errlen)
{
	struct gw_policy_diag d;
	gw_policy_diag_init(&d);
	int rc = gw_policy_store_reload(g->policies, g->policy_paths, 1, NULL, &d);
	if (rc != AAM_OK && err != NULL) {
		if (d.n > 0)
			gw_policy_diag_format(&d, 0, err, errlen);
		else
			snprintf(err, errlen, "%s: cannot load policies (%s)", g->policy_paths[0],
			         aam_err_code(rc));
	}
	gw_policy_diag_uninit(&d);
	return rc;
}

static int
revocations_url(const char *attest_url, char *out, size_t outlen)
{
	size_t l = strlen(attest_url);
	while (l > 0 && attest_url[l - 1] == '/')
		l--;
	int n = snprintf(out, outlen, "%.*s/v1/revocations", (int)l, attest_url);
	return n > 0 && (size_t)n < outlen ? AAM_OK : AAM_E_TOOBIG;
}

int
gw_new(const struct gw_options *opt, struct gw **out, char *err, size_t errlen)
{
	if (out == NULL || opt == NULL || opt->cfg == NULL)
		return AAM_E_INVAL;
	*out = NULL;
	const struct aam_config_gateway *cfg = opt->cfg;
	if (cfg->policies == NULL || cfg->listen == NULL || cfg->external_url == NULL ||
	    cfg->jwks_url == NULL || cfg->issuer == NULL || cfg->audience == NULL) {
		snprintf(err, errlen, "gateway: incomplete configuration");
		return AAM_E_CONFIG;
	}
	struct gw *g = calloc(1, sizeof(*g));
	if (g == NULL)
		return AAM_E_NOMEM;
	g->cfg = cfg;
	g->policy_paths[0] = cfg->policies;
	int rc = gw_policy_store_new(&g->policies);
	if (rc == AAM_OK)
		rc = load_policies(g, err, errlen);
	if (rc == AAM_OK)
		rc = gw_metrics_new(&g->metrics);
	if (rc == AAM_OK)
		rc = gw_limits_new(0, &g->limits);
	if (rc == AAM_OK) {
		rc = gw_dbpool_new(cfg->db, 32, &g->keys);
		struct aam_db *db = rc == AAM_OK ? gw_dbpool_get(g->keys) : NULL;
		if (rc == AAM_OK && db == NULL)
			rc = AAM_E_DB;
		if (rc == AAM_OK)
			rc = gw_vkeys_migrate(db);
		gw_dbpool_put(g->keys, db);
		if (rc != AAM_OK)
			snprintf(err, errlen, "%s: cannot open the gateway database (%s)", cfg->db,
			         aam_err_code(rc));
	}
	if (rc == AAM_OK) {
		rc = gw_audit_new(cfg->vault_socket, &g->audit);
	}
	char rurl[2048];
	if (rc == AAM_OK && cfg->attest_url != NULL)
		rc = revocations_url(cfg->attest_url, rurl, sizeof(rurl));
	if (rc == AAM_OK) {
		struct gw_authn_config ac = {
		        .jwks_url = cfg->jwks_url,
		        .revocations_url = cfg->attest_url != NULL ? rurl : NULL,
		        .issuer = cfg->issuer,
		        .audience = cfg->audience,
		        .external_url = cfg->external_url,
		        .jwks_refresh_ms = cfg->jwks_refresh_ms,
		        .revocation_poll_ms = cfg->revocation_poll_ms,
		        .keys = g->keys,
		};
		rc = gw_authn_new(&ac, &g->authn);
	}
	if (rc == AAM_OK && cfg->routes != NULL) {
		char rerr[512] = "";
		rc = gw_router_new(cfg->routes, cfg->db, cfg->vault_socket, &g->router, rerr,
		                   sizeof(rerr));
		if (rc != AAM_OK)
			snprintf(err, errlen, "%s", rerr[0] != '\0' ? rerr : "cannot load routes");
	}
	if (rc == AAM_OK) {
		rc = gw_tools_init(g);
		if (rc != AAM_OK)
			snprintf(err, errlen, "gateway: the tools module failed to start (%s)",
			         aam_err_code(rc));
	}
	if (rc == AAM_OK && !opt->no_feed)
		rc = gw_authn_start(g->authn);
	if (rc != AAM_OK) {
		if (err != NULL && err[0] == '\0')
			snprintf(err, errlen, "gateway: start-up failed (%s)", aam_err_code(rc));
		gw_free(g);
		return rc;
	}
	*out = g;
	return AAM_OK;
}

int
gw_start(struct gw *g)
{
	char host[AAM_CONFIG_HOST_MAX];
	uint16_t port = 0;
	int rc = aam_config_parse_listen(g->cfg->listen, host, &port);
	if (rc != AAM_OK)
		return rc;
	int64_t to = g->cfg->request_timeout_ms / 1000;
	struct aam_http_config hc = {
	        .host = host,
	        .port = port,
	        .routes = gw_routes,
	        .nroutes = sizeof(gw_routes) / sizeof(gw_routes[0]),
	        .ctx = g,
	        .max_body = (size_t)g->cfg->max_body,
	        .timeout_s = (unsigned)(to > 0 ? (to < 600 ? to : 600) : 60),
	        .max_conns = (unsigned)g->cfg->max_connections,
	        .name = "gateway",
	        .mode = AAM_HTTP_MODE_THREAD_PER_CONN,
	};
	/*
	 * For the threading-mode measurement only (bench/gateway/run.sh, see
	 * docs/GATEWAY.md): one epoll thread, where a model call stalls every
	 * other connection and streams are refused.
	 */
	const char *mode = getenv("AAM_GATEWAY_HTTP_MODE");
	if (mode != NULL && strcmp(mode, "epoll") == 0) {
		hc.mode = AAM_HTTP_MODE_EPOLL;
		aam_log(AAM_LOG_WARN, "gateway.http_mode",
		        AAM_F_STR("mode", "epoll (benchmark only: model calls block other "
		                          "connections, streams are refused)"));
	}
	rc = aam_http_server_start(&hc, &g->http);
	if (rc == AAM_OK)
		g->port = aam_http_server_port(g->http);
	return rc;
}

uint16_t
gw_port(const struct gw *g)
{
	return g != NULL ? g->port : 0;
}

int
gw_reload(struct gw *g)
{
	char err[512] = "";
	int rc = load_policies(g, err, sizeof(err));
	if (rc != AAM_OK)
		aam_log(AAM_LOG_ERROR, "gateway.policy_reload_failed", AAM_F_STR("error", err));
	if (g->router != NULL && g->cfg->routes != NULL) {
		char rerr[512] = "";
		int r2 = gw_router_reload(g->router, g->cfg->routes, rerr, sizeof(rerr));
		if (r2 != AAM_OK) {
			aam_log(AAM_LOG_ERROR, "gateway.routes_reload_failed",
			        AAM_F_STR("error", rerr));
			rc = rc != AAM_OK ? rc : r2;
		}
	}
	return rc;
}

void
gw_free(struct gw *g)
{
	if (g == NULL)
		return;
	/* Stop taking requests (and wait for streams) before tearing down what they use. */
	aam_http_server_stop(g->http);
	gw_tools_uninit(g);
	gw_authn_free(g->authn);
	if (g->router != NULL)
		gw_router_free(g->router);
	gw_audit_free(g->audit);
	gw_dbpool_free(g->keys);
	gw_metrics_free(g->metrics);
	gw_limits_free(g->limits);
	gw_policy_store_free(g->policies);
	free(g);
}
