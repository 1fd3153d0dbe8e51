/*
 * The daemon state behind struct gw, shared by gw-core's files
 * (server.c, api_*.c, main.c); not part of gw.h's API.
 */
#ifndef AAM_GATEWAY_GW_INT_H
#define AAM_GATEWAY_GW_INT_H

#include <stdatomic.h>

#include "common/config.h"
#include "gateway/audit_emit.h"
#include "gateway/authn.h"
#include "gateway/gw.h"
#include "gateway/metrics.h"

struct gw {
	const struct aam_config_gateway *cfg; /* borrowed; outlives the gateway */
	gw_policy_store *policies;
	const char *policy_paths[1];
	struct gw_router *router; /* NULL without gateway.routes */
	struct gw_authn *authn;
	struct gw_dbpool *keys;
	struct gw_metrics *metrics;
	struct gw_audit *audit;
	struct gw_limits *limits; /* rpm/tpm/max_parallel per workload and virtual key */
	struct aam_http_server *http;
	uint16_t port;
	_Atomic long inflight;
};

/* Everything one request owns; RC is what handlers see. */
struct gw_reqstate {
	struct gw_request_ctx rc;
	struct gw_principal who;
	char request_id[GW_REQUEST_ID_LEN + 1];
	char traceparent[64];
	char on_behalf_of[256];
	const char *endpoint; /* the route's path, for metrics */
	bool stolen;          /* a stream took it over; the dispatcher must not free it */
};

/* Options the daemon (or a test) passes to gw_new. */
struct gw_options {
	const struct aam_config_gateway *cfg;
	bool no_feed; /* do not start the JWKS/revocation thread (unit tests) */
};

int gw_new(const struct gw_options *opt, struct gw **out, char *err, size_t errlen);
/* Binds and starts serving (port 0 in the listen address: an ephemeral port). */
int gw_start(struct gw *g);
uint16_t gw_port(const struct gw *g);
/* Reloads policies and routes (SIGHUP); failures keep the old ones. */
int gw_reload(struct gw *g);
void gw_free(struct gw *g);

/* ---- endpoint handlers (api_*.c) --------------------------------------------- */

typedef int (*gw_endpoint_fn)(struct gw *g, const struct gw_request_ctx *rc,
                              struct aam_http_response *resp);

int gw_api_chat(struct gw *g, const struct gw_request_ctx *rc, struct aam_http_response *resp);
int gw_api_messages(struct gw *g, const struct gw_request_ctx *rc, struct aam_http_response *resp);
int gw_api_embeddings(struct gw *g, const struct gw_request_ctx *rc,
                      struct aam_http_response *resp);
int gw_api_models(struct gw *g, const struct gw_request_ctx *rc, struct aam_http_response *resp);

/* Unauthenticated operational endpoints. */
int gw_api_healthz(struct gw *g, struct aam_http_response *resp);
int gw_api_readyz(struct gw *g, struct aam_http_response *resp);
int gw_api_metrics(struct gw *g, struct aam_http_response *resp);

/* "allow" / "deny" names and the first policy that allowed or denied D. */
const char *gw_decision_policy(const struct gw_policy_decision *d);

#endif /* AAM_GATEWAY_GW_INT_H */
