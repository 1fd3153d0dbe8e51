/*
 * The sidecar's life: the loopback HTTP server (common/http, a thread per
 * connection so responses can stream), the first attestation, and the
 * refresher thread that renews the token at two thirds of its life, or
 * after a failure with jittered exponential backoff.  Forwarding itself
 * is in sidecar_proxy.c.
 */
#include "agent/sidecar_int.h"
#include "aam/err.h"
#include "common/log.h"
#include "common/secret.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#define DEFAULT_MAX_BODY    (4u * 1024 * 1024)
#define DEFAULT_MAX_CONNS   256u
#define DEFAULT_CONNECT_MS  10000L
#define DEFAULT_BACKOFF_MIN 1000L
#define DEFAULT_BACKOFF_MAX 60000L
#define EXPIRY_MARGIN_MS    2000 /* a token this close to its end is not sent */
#define IDLE_TIMEOUT_S      300u

int64_t
sidecar_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *
sidecar_token(struct aam_agent_sidecar *s)
{
	char *t = NULL;
	pthread_mutex_lock(&s->mu);
	if (s->tok.token != NULL &&
	    sidecar_now_ms() + EXPIRY_MARGIN_MS < s->tok_start_ms + s->tok_life_ms)
		t = strdup(s->tok.token);
	pthread_mutex_unlock(&s->mu);
	return t;
}

char *
sidecar_nonce(struct aam_agent_sidecar *s)
{
	pthread_mutex_lock(&s->mu);
	char *n = s->dpop_nonce != NULL ? strdup(s->dpop_nonce) : NULL;
	pthread_mutex_unlock(&s->mu);
	return n;
}

void
sidecar_set_nonce(struct aam_agent_sidecar *s, const char *nonce)
{
	if (nonce == NULL || nonce[0] == '\0' || strlen(nonce) > AAM_DPOP_MAX_NONCE)
		return;
	char *n = strdup(nonce);
	if (n == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	free(s->dpop_nonce);
	s->dpop_nonce = n;
	pthread_mutex_unlock(&s->mu);
}

/* ---- refreshing -------------------------------------------------------------- */

/* Full jitter in [base/2, base], base = min(max, min * 2^(failures-1)). */
static int64_t
backoff_ms(const struct aam_agent_sidecar *s, unsigned failures)
{
	int64_t base = s->backoff_min_ms;
	for (unsigned i = 1; i < failures && base < s->backoff_max_ms; i++)
		base *= 2;
	if (base > s->backoff_max_ms)
		base = s->backoff_max_ms;
	uint32_t r = 0;
	if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
		r = (uint32_t)sidecar_now_ms();
	int64_t half = base / 2;
	return half + (half > 0 ? (int64_t)(r % (uint64_t)(half + 1)) : 0);
}

/* One attestation; installs the token or schedules a retry.  Called without MU. */
static void
refresh_once(struct aam_agent_sidecar *s)
{
	struct aam_agent_token t;
	struct aam_agent_error e;
	int64_t start = sidecar_now_ms();
	int rc = aam_agent_attest(s->a, &t, &e);
	pthread_mutex_lock(&s->mu);
	if (rc == AAM_OK) {
		aam_agent_token_uninit(&s->tok);
		s->tok = t;
		s->tok_start_ms = start;
		s->tok_life_ms = t.expires_in * 1000;
		s->refreshes++;
		s->failures = 0;
	} else {
		s->failures++;
		int64_t d = backoff_ms(s, s->failures);
		s->retry_at_ms = sidecar_now_ms() + d;
		aam_log(AAM_LOG_WARN, "agent.refresh_failed", AAM_F_STR("code", e.code),
		        AAM_F_UINT("failures", s->failures), AAM_F_INT("retry_in_ms", d));
	}
	pthread_mutex_unlock(&s->mu);
}

/* When the refresher should next attest; caller holds MU. */
static int64_t
next_refresh_ms(const struct aam_agent_sidecar *s)
{
	if (s->failures > 0)
		return s->retry_at_ms;
	if (s->tok.token == NULL)
		return sidecar_now_ms();
	return s->tok_start_ms + s->tok_life_ms * 2 / 3;
}

static void *
refresher_main(void *arg)
{
	struct aam_agent_sidecar *s = arg;
	pthread_mutex_lock(&s->mu);
	while (!s->stopping) {
		int64_t at = next_refresh_ms(s);
		if (sidecar_now_ms() < at) {
			struct timespec ts = {.tv_sec = at / 1000,
			                      .tv_nsec = (at % 1000) * 1000000};
			pthread_cond_timedwait(&s->cv, &s->mu, &ts);
			continue; /* re-check: stopping, or the time has come */
		}
		pthread_mutex_unlock(&s->mu);
		refresh_once(s);
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* ---- local endpoints ----------------------------------------------------------- */

static int
on_health(void *ctx, const struct aam_http_request *req, struct aam_http_response *resp)
{
	(void)req;
	struct aam_agent_sidecar *s = ctx;
	pthread_mutex_lock(&s->mu);
	int64_t left = s->tok.token != NULL
	                       ? (s->tok_start_ms + s->tok_life_ms - sidecar_now_ms()) / 1000
	                       : 0;
	bool ok = s->tok.token != NULL && left > 0;
	json_t *j = json_pack("{s:s,s:b,s:I,s:s?,s:s,s:I}", "status", ok ? "ok" : "no_token",
	                      "token", ok, "expires_in", (json_int_t)(ok ? left : 0), "spiffe_id",
	                      s->tok.spiffe_id, "method", aam_agent_method(s->a), "refreshes",
	                      (json_int_t)s->refreshes);
	pthread_mutex_unlock(&s->mu);
	if (j == NULL)
		return AAM_E_NOMEM;
	int rc = aam_http_respond_json(resp, ok ? 200 : 503, j);
	json_decref(j);
	return rc;
}

static int
on_local_unknown(void *ctx, const struct aam_http_request *req, struct aam_http_response *resp)
{
	(void)ctx;
	(void)req;
	return aam_http_respond_error(resp, 404, "not_found",
	                              "No such sidecar endpoint (paths under /.aam/ are local).");
}

static const struct aam_http_route ROUTES[] = {
        {"GET", "/.aam/health", on_health},
        {"*", "/.aam/*", on_local_unknown},
        {"*", "/*", sidecar_forward},
};

/* ---- start / stop ------------------------------------------------------------------ */

static void
sidecar_free(struct aam_agent_sidecar *s)
{
	aam_agent_token_uninit(&s->tok);
	free(s->dpop_nonce);
	free(s->gateway_url);
	free(s->ca_bundle);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

int
aam_agent_sidecar_start(struct aam_agent *a, const struct aam_agent_sidecar_config *cfg,
                        struct aam_agent_sidecar **out, struct aam_agent_error *e)
{
	if (e != NULL)
		memset(e, 0, sizeof(*e));
	if (a == NULL || cfg == NULL || out == NULL || cfg->gateway_url == NULL) {
		agent_err(e, "invalid_config", "the sidecar needs an agent and a gateway URL");
		return AAM_E_INVAL;
	}
	*out = NULL;
	struct aam_agent_sidecar *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		agent_err(e, "internal", "out of memory");
		return AAM_E_NOMEM;
	}
	s->a = a;
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	s->gateway_url = strdup(cfg->gateway_url);
	s->ca_bundle = cfg->ca_bundle != NULL ? strdup(cfg->ca_bundle) : NULL;
	s->connect_timeout_ms =
	        cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : DEFAULT_CONNECT_MS;
	s->backoff_min_ms = cfg->backoff_min_ms > 0 ? cfg->backoff_min_ms : DEFAULT_BACKOFF_MIN;
	s->backoff_max_ms = cfg->backoff_max_ms > 0 ? cfg->backoff_max_ms : DEFAULT_BACKOFF_MAX;
	if (s->backoff_max_ms < s->backoff_min_ms)
		s->backoff_max_ms = s->backoff_min_ms;
	if (s->gateway_url == NULL || (cfg->ca_bundle != NULL && s->ca_bundle == NULL)) {
		sidecar_free(s);
		agent_err(e, "internal", "out of memory");
		return AAM_E_NOMEM;
	}
	size_t l = strlen(s->gateway_url);
	while (l > 0 && s->gateway_url[l - 1] == '/')
		s->gateway_url[--l] = '\0';

	/* Attest at once, so the first request normally finds a token. */
	refresh_once(s);

	struct aam_http_config hc = {
	        .host = cfg->host != NULL ? cfg->host : "127.0.0.1",
	        .port = cfg->port,
	        .routes = ROUTES,
	        .nroutes = sizeof(ROUTES) / sizeof(ROUTES[0]),
	        .ctx = s,
	        .max_body = cfg->max_body > 0 ? cfg->max_body : DEFAULT_MAX_BODY,
	        .timeout_s = IDLE_TIMEOUT_S,
	        .max_conns = cfg->max_conns > 0 ? cfg->max_conns : DEFAULT_MAX_CONNS,
	        .name = "sidecar",
	        .mode = AAM_HTTP_MODE_THREAD_PER_CONN,
	};
	int rc = aam_http_server_start(&hc, &s->http);
	if (rc != AAM_OK) {
		agent_err(e, "listen_failed", "cannot listen on %s:%u (%s)", hc.host,
		          (unsigned)hc.port, aam_err_code(rc));
		sidecar_free(s);
		return rc;
	}
	if (pthread_create(&s->refresher, NULL, refresher_main, s) != 0) {
		aam_http_server_stop(s->http);
		sidecar_free(s);
		agent_err(e, "internal", "cannot start the refresher thread");
		return AAM_E_NOMEM;
	}
	s->refresher_started = true;
	aam_log(AAM_LOG_INFO, "agent.sidecar_start", AAM_F_STR("host", hc.host),
	        AAM_F_UINT("port", aam_http_server_port(s->http)),
	        AAM_F_STR("gateway", s->gateway_url), AAM_F_STR("method", aam_agent_method(a)));
	*out = s;
	return AAM_OK;
}

uint16_t
aam_agent_sidecar_port(const struct aam_agent_sidecar *s)
{
	return s != NULL ? aam_http_server_port(s->http) : 0;
}

uint64_t
aam_agent_sidecar_refreshes(struct aam_agent_sidecar *s)
{
	if (s == NULL)
		return 0;
	pthread_mutex_lock(&s->mu);
	uint64_t n = s->refreshes;
	pthread_mutex_unlock(&s->mu);
	return n;
}

void
aam_agent_sidecar_stop(struct aam_agent_sidecar *s)
{
	if (s == NULL)
		return;
	/* Requests first (they read the token), then the refresher. */
	aam_http_server_stop(s->http);
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	if (s->refresher_started)
		pthread_join(s->refresher, NULL);
	aam_log(AAM_LOG_INFO, "agent.sidecar_stop");
	sidecar_free(s);
}
