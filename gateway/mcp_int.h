/*
 * Internals of the MCP gateway shared by gateway/mcp_serve.c (the
 * transport) and gateway/mcp_methods.c (the JSON-RPC methods).
 */
#ifndef AAM_GATEWAY_MCP_INT_H
#define AAM_GATEWAY_MCP_INT_H

#include <pthread.h>

#include "gateway/mcp.h"
#include "gateway/tools_int.h"

#define GWM_URI_CACHE 4096 /* resource URIs remembered for routing resources/read */
#define GWM_URI_MAX   2048
#define GWM_MAX_PAGES 20 /* pages of an upstream listing followed */

struct gwm_uri {
	char *uri;
	size_t server;
};

struct gw_mcp {
	const struct gwt_catalog *cat;
	struct gwm_sessions *sessions;
	struct gwm_upstream **up; /* one per catalogue MCP server, same order */
	size_t nup;
	struct gwt_rate *rate;
	pthread_mutex_t uri_mu;
	struct gwm_uri uris[GWM_URI_CACHE]; /* a ring: the latest listings win */
	size_t uri_next;
};

/* One JSON-RPC request being served, within a session. */
struct gwm_ctx {
	struct gw_mcp *m;
	const struct gwt_io *io;
	const struct gwm_http *req;
	const char *version; /* the session's protocol version */
};

/* Answers one request (never NULL unless out of memory): a result or an error. */
json_t *gwm_dispatch(struct gwm_ctx *x, const struct gwm_msg *msg);

/* The initialize result for a client asking for VERSION (may be NULL). */
json_t *gwm_initialize_result(const char *negotiated);

#endif /* AAM_GATEWAY_MCP_INT_H */
