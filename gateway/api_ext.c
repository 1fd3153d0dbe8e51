/*
 * Weak defaults for the extension points of gw.h, so the gateway builds
 * and answers before the tool-call and MCP modules (issue 7) exist: both
 * endpoints say 404 not_enabled.  A module's strong definitions replace
 * these at link time, provided its objects are linked into aam-gateway
 * (as sources, an OBJECT library or a whole archive; see
 * gateway/CMakeLists.txt), not merely as members of a static archive the
 * linker never opens for an already-defined symbol.
 */
#include "gateway/gw_int.h"
#include "aam/err.h"

__attribute__((weak)) int
gw_tools_handle(struct gw *g, const struct gw_request_ctx *rc, struct aam_http_response *resp)
{
	(void)rc;
	gw_metrics_tool_call(g, "", "not_enabled", 404);
	return gw_respond_error(resp, GW_ERR_AAM, 404, "not_enabled",
	                        "Tool calls are not enabled on this gateway.");
}

__attribute__((weak)) int
gw_mcp_handle(struct gw *g, const struct gw_request_ctx *rc, struct aam_http_response *resp)
{
	(void)g;
	(void)rc;
	return gw_respond_error(resp, GW_ERR_AAM, 404, "not_enabled",
	                        "MCP is not enabled on this gateway.");
}

__attribute__((weak)) int
gw_tools_init(struct gw *g)
{
	(void)g;
	return AAM_OK;
}

__attribute__((weak)) void
gw_tools_uninit(struct gw *g)
{
	(void)g;
}
