/*
 * The seam between the tool and MCP modules and aam-gateway (gateway/gw.h),
 * shared by gateway/tools_gw.c and gateway/mcp_gw.c.
 */
#ifndef AAM_GATEWAY_TOOLS_GW_H
#define AAM_GATEWAY_TOOLS_GW_H

#include <stdbool.h>

#include "gateway/gw.h"
#include "gateway/mcp.h"
#include "gateway/tools.h"

/* What struct gwt_io's callbacks need: the daemon and the request. */
struct gwt_gw_ctx {
	struct gw *g;
	const struct gw_request_ctx *rc;
};

/* The modules' state for gateway G; false when tools are not enabled there. */
bool gwt_gw_state(struct gw *g, struct gw_tools **tools, struct gw_mcp **mcp);
/* IO reaching aam-vault and the audit log on behalf of X's request. */
void gwt_gw_io(struct gwt_gw_ctx *x, struct gwt_io *io);

#endif /* AAM_GATEWAY_TOOLS_GW_H */
