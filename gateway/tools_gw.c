/*
 * aam-gateway's tool endpoints: the strong definitions of gw.h's
 * extension points gw_tools_init / gw_tools_uninit / gw_tools_handle,
 * wiring the pipeline of gateway/tools_call.c to the daemon (identity,
 * policy store, aam-vault socket, audit emitter, metrics).
 *
 *   GET  /v1/tools (or /v1/tools/)     what the caller may call (JSON Schema)
 *   POST /v1/tools/{resource}/{action} one call, the parameters as a JSON object
 *
 * The catalogue is what `gateway.tools` names (a file or a folder), else
 * the folder `tools` next to the policies (gateway.policies
 * /etc/aam/policies -> /etc/aam/tools) when it exists.  Without a
 * catalogue the endpoints stay disabled (404 not_enabled).  A catalogue
 * that does not load stops the gateway at start, every error reported as
 * file:line:column, since serving with half a catalogue would refuse or
 * misroute calls silently; so does a `gateway.tools` that names nothing,
 * since the operator asked for tools and would otherwise get 404s.  The
 * catalogue is read once: SIGHUP reloads policies and routes, not it.
 */
#include "gateway/tools_gw.h"

#include <errno.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "aam/err.h"
#include "common/log.h"
#include "gateway/gw_int.h"
#include "gateway/tools_vault.h"

#define MAX_GATEWAYS 8

struct slot {
	struct gw *g;
	struct gw_tools *tools;
	struct gw_mcp *mcp;
};

static pthread_mutex_t slots_mu = PTHREAD_MUTEX_INITIALIZER;
static struct slot slots[MAX_GATEWAYS];

bool
gwt_gw_state(struct gw *g, struct gw_tools **tools, struct gw_mcp **mcp)
{
	bool found = false;
	pthread_mutex_lock(&slots_mu);
	for (size_t i = 0; i < MAX_GATEWAYS && !found; i++)
		if (slots[i].g == g && slots[i].tools != NULL) {
			*tools = slots[i].tools;
			*mcp = slots[i].mcp;
			found = true;
		}
	pthread_mutex_unlock(&slots_mu);
	return found;
}

/*
 * The catalogue path into *OUT, or NULL when there is none (the endpoints
 * stay off).  An explicit gateway.tools that names nothing is an error,
 * logged with the option and the path.
 */
static int
catalog_path(struct gw *g, char **out)
{
	*out = NULL;
	if (g->cfg == NULL)
		return AAM_OK;
	struct stat st;
	if (g->cfg->tools != NULL) {
		if (stat(g->cfg->tools, &st) != 0) {
			char line[600];
			snprintf(line, sizeof(line), "gateway.tools: '%s': %s", g->cfg->tools,
			         errno == ENOENT ? "no such file or folder" : strerror(errno));
			aam_log(AAM_LOG_ERROR, "tools.catalog_error", AAM_F_STR("error", line));
			return errno == ENOENT ? AAM_E_NOTFOUND : AAM_E_IO;
		}
		*out = strdup(g->cfg->tools);
		return *out != NULL ? AAM_OK : AAM_E_NOMEM;
	}
	if (g->cfg->policies == NULL)
		return AAM_OK;
	char *copy = strdup(g->cfg->policies);
	if (copy == NULL)
		return AAM_E_NOMEM;
	/* A trailing '/' would make dirname() return the folder itself. */
	size_t n = strlen(copy);
	while (n > 1 && copy[n - 1] == '/')
		copy[--n] = '\0';
	char *path = NULL;
	if (asprintf(&path, "%s/tools", dirname(copy)) < 0)
		path = NULL;
	free(copy);
	if (path == NULL)
		return AAM_E_NOMEM;
	if (stat(path, &st) != 0) {
		free(path);
		return AAM_OK;
	}
	*out = path;
	return AAM_OK;
}

int
gw_tools_init(struct gw *g)
{
	char *path = NULL;
	int rc = catalog_path(g, &path);
	if (rc != AAM_OK)
		return rc;
	if (path == NULL) {
		aam_log(AAM_LOG_INFO, "tools.disabled",
		        AAM_F_STR("why", "no gateway.tools and no tool catalogue next to the "
		                         "policies"));
		return AAM_OK;
	}
	const char *paths[] = {path};
	struct gwt_catalog *cat = NULL;
	struct aam_yaml_error e = {0};
	rc = gwt_catalog_load(paths, 1, &cat, &e);
	if (rc != AAM_OK) {
		char line[600];
		aam_yaml_error_format(&e, line, sizeof(line));
		aam_log(AAM_LOG_ERROR, "tools.catalog_error", AAM_F_STR("error", line));
		free(path);
		return rc;
	}
	struct gw_tools *t = NULL;
	struct gw_mcp *m = NULL;
	rc = gw_tools_new(cat, &t);
	if (rc == AAM_OK)
		rc = gw_mcp_new(gw_tools_catalog(t), &m);
	pthread_mutex_lock(&slots_mu);
	size_t i = 0;
	while (rc == AAM_OK && i < MAX_GATEWAYS && slots[i].g != NULL)
		i++;
	if (rc == AAM_OK && i == MAX_GATEWAYS)
		rc = AAM_E_BUSY;
	if (rc == AAM_OK)
		slots[i] = (struct slot){.g = g, .tools = t, .mcp = m};
	pthread_mutex_unlock(&slots_mu);
	if (rc != AAM_OK) {
		gw_mcp_free(m);
		gw_tools_free(t);
		free(path);
		return rc;
	}
	aam_log(AAM_LOG_INFO, "tools.ready", AAM_F_STR("catalogue", path),
	        AAM_F_UINT("resources", gwt_catalog_resource_count(gw_tools_catalog(t))),
	        AAM_F_UINT("mcp_servers", gwt_catalog_mcp_count(gw_tools_catalog(t))));
	free(path);
	return AAM_OK;
}

void
gw_tools_uninit(struct gw *g)
{
	pthread_mutex_lock(&slots_mu);
	for (size_t i = 0; i < MAX_GATEWAYS; i++)
		if (slots[i].g == g) {
			gw_mcp_free(slots[i].mcp);
			gw_tools_free(slots[i].tools);
			slots[i] = (struct slot){0};
		}
	pthread_mutex_unlock(&slots_mu);
}

/* ---- the seam to the daemon ------------------------------------------- */

static int
io_inject(void *ctx, const struct gwt_request *req, const char *credential, int64_t timeout_ms,
          struct gwt_response *resp)
{
	struct gwt_gw_ctx *x = ctx;
	return gwt_vault_inject(gw_vault_socket(x->g), req, credential, timeout_ms, resp);
}

static int
io_audit_new(void *ctx, const char *kind, json_t **ev)
{
	struct gwt_gw_ctx *x = ctx;
	return gw_audit_event_new(x->g, x->rc, kind, ev);
}

static int
io_audit(void *ctx, json_t *ev)
{
	struct gwt_gw_ctx *x = ctx;
	return gw_audit_emit(x->g, ev, NULL);
}

void
gwt_gw_io(struct gwt_gw_ctx *x, struct gwt_io *io)
{
	*io = (struct gwt_io){.ctx = x,
	                      .inject = io_inject,
	                      .audit_new = io_audit_new,
	                      .audit_decision = gw_audit_add_decision,
	                      .audit = io_audit};
}

/* Upstream media types, narrowed to a few static ones (never HTML). */
static const char *
media_type(const char *ct)
{
	if (strncasecmp(ct, "application/json", 16) == 0 || strstr(ct, "+json") != NULL)
		return "application/json";
	if (strncasecmp(ct, "text/csv", 8) == 0)
		return "text/csv; charset=utf-8";
	if (strncasecmp(ct, "text/", 5) == 0)
		return "text/plain; charset=utf-8";
	return "application/octet-stream";
}

static int
answer(struct aam_http_response *resp, struct gwt_result *r)
{
	resp->status = r->status;
	resp->content_type = media_type(r->content_type);
	aam_buf_reset(&resp->body);
	aam_buf_append(&resp->body, r->body.data, r->body.len);
	if (r->status == 429 && r->retry_after > 0) {
		char s[16];
		snprintf(s, sizeof(s), "%u", r->retry_after);
		aam_http_response_header(resp, "Retry-After", s);
	}
	return resp->body.err;
}

int
gw_tools_handle(struct gw *g, const struct gw_request_ctx *rc, struct aam_http_response *resp)
{
	struct gw_tools *t;
	struct gw_mcp *m;
	if (!gwt_gw_state(g, &t, &m)) {
		gw_metrics_tool_call(g, "", "not_enabled", 404);
		return gw_respond_error(
		        resp, GW_ERR_AAM, 404, "not_enabled",
		        "Tool calls are not enabled on this gateway (no catalogue).");
	}
	const char *method = rc->http->method, *sub = rc->subpath != NULL ? rc->subpath : "";
	bool list = sub[0] == '\0';
	char resource[GWT_NAME_MAX], action[GWT_NAME_MAX];
	if (list && strcmp(method, "GET") != 0) {
		aam_http_response_header(resp, "Allow", "GET");
		return gw_respond_error(resp, GW_ERR_AAM, 405, "method_not_allowed",
		                        "GET /v1/tools/ lists the tools; calls are POST "
		                        "/v1/tools/RESOURCE/ACTION.");
	}
	if (!list) {
		const char *slash = strchr(sub, '/');
		size_t rl = slash != NULL ? (size_t)(slash - sub) : 0;
		if (slash == NULL || rl == 0 || rl >= sizeof(resource) ||
		    strchr(slash + 1, '/') != NULL || strlen(slash + 1) >= sizeof(action) ||
		    slash[1] == '\0') {
			gw_metrics_tool_call(g, "", "deny", 404);
			return gw_respond_error(resp, GW_ERR_AAM, 404, "unknown_tool",
			                        "no such tool (POST /v1/tools/RESOURCE/ACTION)");
		}
		if (strcmp(method, "POST") != 0) {
			aam_http_response_header(resp, "Allow", "POST");
			return gw_respond_error(resp, GW_ERR_AAM, 405, "method_not_allowed",
			                        "tool calls are POST requests");
		}
		memcpy(resource, sub, rl);
		resource[rl] = '\0';
		snprintf(action, sizeof(action), "%s", slash + 1);
	}
	gw_policy_set *set = gw_policy_store_acquire(gw_policies(g));
	struct gw_policy_request preq;
	memset(&preq, 0, sizeof(preq));
	gw_policy_request_init(g, rc, &preq);
	struct gwt_call c = {.resource = list ? NULL : resource,
	                     .action = list ? NULL : action,
	                     .body = rc->http->body,
	                     .body_len = rc->http->body_len,
	                     .set = set,
	                     .preq = &preq};
	struct gwt_gw_ctx x = {.g = g, .rc = rc};
	struct gwt_io io;
	gwt_gw_io(&x, &io);
	struct gwt_result r;
	gwt_result_init(&r);
	int rc2 = list ? gwt_list_run(t, &c, &r) : gwt_call_run(t, &io, &c, &r);
	gw_policy_store_release(set);
	if (rc2 == AAM_OK)
		rc2 = answer(resp, &r);
	/* Only catalogue names become metric labels, never what a client made up. */
	if (!list)
		gw_metrics_tool_call(
		        g,
		        gwt_catalog_find_resource(gw_tools_catalog(t), resource) != NULL ? resource
		                                                                         : "",
		        r.decision, r.status);
	gwt_result_uninit(&r);
	return rc2;
}
