/*
 * The streamable HTTP transport of the MCP gateway (MCP 2025-06-18,
 * "Transports"; 2025-03-26 accepted): request checks, sessions, batches
 * and the shape of the answer.  What each JSON-RPC method does is in
 * gateway/mcp_methods.c.
 *
 * Transport-level refusals are HTTP errors whose body is a JSON-RPC
 * error with a null id: 400 for a malformed message, a missing session
 * or a batch where the protocol has none, 404 for an unknown session
 * (the client must initialize again), 405/406/413/415 for the HTTP
 * mistakes they name, 403 for a browser Origin (DNS rebinding).
 */
#include "gateway/mcp_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aam/err.h"
#include "common/json.h"
#include "common/log.h"

void
gwm_reply_init(struct gwm_reply *r)
{
	memset(r, 0, sizeof(*r));
	aam_buf_init(&r->body, GWT_MAX_RESPONSE * 2);
}

void
gwm_reply_uninit(struct gwm_reply *r)
{
	aam_buf_uninit(&r->body);
}

int
gw_mcp_new(const struct gwt_catalog *catalog, struct gw_mcp **out)
{
	*out = NULL;
	struct gw_mcp *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return AAM_E_NOMEM;
	m->cat = catalog;
	pthread_mutex_init(&m->uri_mu, NULL);
	int rc = gwm_sessions_new(GWM_MAX_SESSIONS, GWM_SESSION_IDLE_MS, &m->sessions);
	if (rc == AAM_OK)
		rc = gwt_rate_new(4096, &m->rate);
	m->nup = gwt_catalog_mcp_count(catalog);
	if (rc == AAM_OK && m->nup > 0 && (m->up = calloc(m->nup, sizeof(*m->up))) == NULL)
		rc = AAM_E_NOMEM;
	for (size_t i = 0; rc == AAM_OK && i < m->nup; i++)
		rc = gwm_upstream_new(gwt_catalog_mcp(catalog, i), &m->up[i]);
	if (rc != AAM_OK) {
		gw_mcp_free(m);
		return rc;
	}
	*out = m;
	return AAM_OK;
}

void
gw_mcp_free(struct gw_mcp *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; m->up != NULL && i < m->nup; i++)
		gwm_upstream_free(m->up[i]);
	free(m->up);
	for (size_t i = 0; i < GWM_URI_CACHE; i++)
		free(m->uris[i].uri);
	gwt_rate_free(m->rate);
	gwm_sessions_free(m->sessions);
	pthread_mutex_destroy(&m->uri_mu);
	free(m);
}

/* ---- answers ----------------------------------------------------------- */

static bool
media_in(const char *header, const char *type)
{
	/* A comma-separated list of media ranges; parameters after ';' ignored. */
	if (header == NULL)
		return false;
	size_t n = strlen(type);
	const char *p = header;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (strncasecmp(p, type, n) == 0 &&
		    (p[n] == '\0' || p[n] == ',' || p[n] == ';' || p[n] == ' '))
			return true;
		const char *c = strchr(p, ',');
		if (c == NULL)
			break;
		p = c;
	}
	return false;
}

/* Whether the client wants SSE: it accepts event streams and not JSON. */
static bool
wants_sse(const struct gwm_http *req)
{
	return media_in(req->accept, "text/event-stream") &&
	       !media_in(req->accept, "application/json") && !media_in(req->accept, "*/*");
}

static int
write_json(struct gwm_reply *out, unsigned status, json_t *j, bool sse)
{
	out->status = status;
	aam_buf_reset(&out->body);
	int rc = AAM_OK;
	if (!sse) {
		snprintf(out->content_type, sizeof(out->content_type), "application/json");
		rc = aam_json_dump_buf(j, &out->body, JSON_COMPACT);
	} else {
		/* One SSE event per JSON-RPC message; a JSON dump has no newline. */
		snprintf(out->content_type, sizeof(out->content_type), "text/event-stream");
		size_t n = json_is_array(j) ? json_array_size(j) : 1;
		for (size_t i = 0; i < n && rc == AAM_OK; i++) {
			aam_buf_append_str(&out->body, "event: message\ndata: ");
			rc = aam_json_dump_buf(json_is_array(j) ? json_array_get(j, i) : j,
			                       &out->body, JSON_COMPACT);
			aam_buf_append_str(&out->body, "\n\n");
		}
	}
	json_decref(j);
	return rc != AAM_OK ? rc : out->body.err;
}

/* An HTTP error whose body is a JSON-RPC error with a null id. */
__attribute__((format(printf, 4, 5))) static int
transport_error(struct gwm_reply *out, unsigned status, int code, const char *fmt, ...)
{
	struct gwm_rpc_error e = {.code = code};
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e.message, sizeof(e.message), fmt, ap);
	va_end(ap);
	return write_json(out, status, gwm_error(NULL, &e), false);
}

/* ---- POST -------------------------------------------------------------- */

static const struct aam_json_limits BODY_LIMITS = {.max_bytes = GWM_MAX_BODY,
                                                   .max_depth = 32,
                                                   .max_string = GWM_MAX_BODY,
                                                   .max_members = 10000};

static const char *
owner_of(const struct gwm_http *req)
{
	if (req->owner != NULL)
		return req->owner;
	return req->preq != NULL ? req->preq->workload : NULL;
}

static int
serve_initialize(struct gw_mcp *m, const struct gwm_http *req, const struct gwm_msg *msg,
                 struct gwm_reply *out)
{
	struct gwm_rpc_error e = {0};
	const char *asked = json_string_value(json_object_get(msg->params, "protocolVersion"));
	if (asked == NULL) {
		gwm_rpc_error_set(&e, GWM_INVALID_PARAMS,
		                  "initialize needs params.protocolVersion");
		return write_json(out, 200, gwm_error(msg->id, &e), wants_sse(req));
	}
	/* Our version when we speak the client's; otherwise our latest (the client decides). */
	const char *v = gwm_version_supported(asked) ? asked : GWM_VERSION_LATEST;
	const char *owner = owner_of(req);
	char id[GWM_SESSION_ID_LEN + 1];
	int rc = owner != NULL ? gwm_session_create(m->sessions, owner, v, gwt_mono_us(), id)
	                       : AAM_E_INVAL;
	if (rc == AAM_E_BUSY)
		return transport_error(out, 503, GWM_INTERNAL,
		                       "too many MCP sessions; try again later");
	if (rc != AAM_OK)
		return transport_error(out, 500, GWM_INTERNAL, "the session could not be created");
	memcpy(out->session_id, id, sizeof(id));
	aam_log(AAM_LOG_INFO, "mcp.session_start", AAM_F_STR("workload", owner),
	        AAM_F_STR("version", v));
	return write_json(out, 200, gwm_result(msg->id, gwm_initialize_result(v)), wants_sse(req));
}

/*
 * The session's protocol version into VERSION; otherwise the refusal is
 * written into OUT (400 or 404) and the result is not AAM_OK.
 */
static int
session_version(struct gw_mcp *m, const struct gwm_http *req, struct gwm_reply *out,
                char version[16])
{
	if (req->session_id == NULL) {
		transport_error(
		        out, 400, GWM_INVALID_REQUEST,
		        "Bad Request: Mcp-Session-Id header is required (initialize first)");
		return AAM_E_INVAL;
	}
	if (gwm_session_touch(m->sessions, req->session_id, owner_of(req), gwt_mono_us(),
	                      version) != AAM_OK) {
		transport_error(out, 404, GWM_INVALID_REQUEST,
		                "Session not found: initialize a new session");
		return AAM_E_NOTFOUND;
	}
	if (req->protocol_version != NULL && strcmp(req->protocol_version, version) != 0) {
		transport_error(out, 400, GWM_INVALID_REQUEST,
		                "Bad Request: MCP-Protocol-Version does not match the version "
		                "negotiated for this session (%s)",
		                version);
		return AAM_E_INVAL;
	}
	return AAM_OK;
}

static int
serve_post(struct gw_mcp *m, const struct gwt_io *io, const struct gwm_http *req,
           struct gwm_reply *out)
{
	if (!media_in(req->content_type, "application/json"))
		return transport_error(out, 415, GWM_INVALID_REQUEST,
		                       "Unsupported Media Type: send application/json");
	if (req->accept != NULL && !media_in(req->accept, "application/json") &&
	    !media_in(req->accept, "text/event-stream") && !media_in(req->accept, "*/*"))
		return transport_error(
		        out, 406, GWM_INVALID_REQUEST,
		        "Not Acceptable: accept application/json and text/event-stream");
	if (req->body_len > GWM_MAX_BODY)
		return transport_error(out, 413, GWM_INVALID_REQUEST,
		                       "the message is larger than %u bytes", GWM_MAX_BODY);
	json_t *doc = NULL;
	struct aam_json_error je;
	int rc = aam_json_parse(req->body, req->body_len, &BODY_LIMITS, &doc, &je);
	if (rc == AAM_E_TOOBIG)
		return transport_error(out, 413, GWM_PARSE_ERROR, "Parse error: %s", je.msg);
	if (rc != AAM_OK)
		return transport_error(out, 400, GWM_PARSE_ERROR, "Parse error: %s", je.msg);

	struct gwm_rpc_error e = {0};
	struct gwm_msg msg;
	bool batch = json_is_array(doc);
	if (!batch) {
		if (gwm_msg_parse(doc, &msg, &e) != AAM_OK) {
			rc = write_json(out, 400, gwm_error(msg.id, &e), false);
			json_decref(doc);
			return rc;
		}
		if (msg.kind == GWM_REQUEST && strcmp(msg.method, "initialize") == 0) {
			rc = serve_initialize(m, req, &msg, out);
			json_decref(doc);
			return rc;
		}
	}
	char version[16];
	if (session_version(m, req, out, version) != AAM_OK) {
		json_decref(doc);
		return AAM_OK;
	}
	struct gwm_ctx x = {.m = m, .io = io, .req = req, .version = version};
	if (!batch) {
		if (msg.kind != GWM_REQUEST) {
			/* Notifications and responses: accepted, nothing to say. */
			json_decref(doc);
			out->status = 202;
			return AAM_OK;
		}
		json_t *r = gwm_dispatch(&x, &msg);
		json_decref(doc);
		return r != NULL ? write_json(out, 200, r, wants_sse(req)) : AAM_E_NOMEM;
	}

	/* Batches: JSON-RPC 2.0 has them, MCP 2025-06-18 removed them. */
	size_t n = json_array_size(doc);
	if (strcmp(version, GWM_VERSION_OLDEST) != 0 || n == 0 || n > GWM_MAX_BATCH) {
		json_decref(doc);
		if (n == 0)
			return transport_error(out, 400, GWM_INVALID_REQUEST, "an empty batch");
		if (n > GWM_MAX_BATCH)
			return transport_error(out, 400, GWM_INVALID_REQUEST,
			                       "a batch of more than %u messages", GWM_MAX_BATCH);
		return transport_error(out, 400, GWM_INVALID_REQUEST,
		                       "JSON-RPC batches are not supported in protocol version %s",
		                       version);
	}
	json_t *replies = json_array();
	for (size_t i = 0; i < n && replies != NULL; i++) {
		json_t *r = NULL;
		gwm_rpc_error_clear(&e);
		if (gwm_msg_parse(json_array_get(doc, i), &msg, &e) != AAM_OK) {
			r = gwm_error(msg.id, &e);
		} else if (msg.kind != GWM_REQUEST) {
			continue;
		} else if (strcmp(msg.method, "initialize") == 0) {
			gwm_rpc_error_set(&e, GWM_INVALID_REQUEST,
			                  "initialize cannot be part of a batch");
			r = gwm_error(msg.id, &e);
		} else {
			r = gwm_dispatch(&x, &msg);
		}
		if (r == NULL || json_array_append_new(replies, r) != 0) {
			json_decref(replies);
			replies = NULL;
		}
	}
	json_decref(doc);
	if (replies == NULL)
		return AAM_E_NOMEM;
	if (json_array_size(replies) == 0) {
		json_decref(replies);
		out->status = 202;
		return AAM_OK;
	}
	return write_json(out, 200, replies, wants_sse(req));
}

int
gw_mcp_serve(struct gw_mcp *m, const struct gwt_io *io, const struct gwm_http *req,
             struct gwm_reply *out)
{
	if (req->origin != NULL)
		return transport_error(out, 403, GWM_INVALID_REQUEST,
		                       "Forbidden: requests with an Origin header are refused (DNS "
		                       "rebinding protection)");
	if (strcmp(req->method, "POST") == 0)
		return serve_post(m, io, req, out);
	if (strcmp(req->method, "DELETE") == 0) {
		if (req->session_id == NULL)
			return transport_error(out, 400, GWM_INVALID_REQUEST,
			                       "Bad Request: Mcp-Session-Id header is required");
		if (gwm_session_end(m->sessions, req->session_id, owner_of(req)) != AAM_OK)
			return transport_error(out, 404, GWM_INVALID_REQUEST, "Session not found");
		out->status = 204;
		return AAM_OK;
	}
	if (strcmp(req->method, "GET") == 0) {
		/*
		 * The server-to-client stream.  The gateway has nothing of its own
		 * to push yet, but clients (the SDK's among them) open it right
		 * after initialize and keep it as their channel for server
		 * messages, so it is granted within the session, like any request.
		 */
		if (!media_in(req->accept, "text/event-stream"))
			return transport_error(out, 406, GWM_INVALID_REQUEST,
			                       "Not Acceptable: the stream is text/event-stream");
		char version[16];
		if (session_version(m, req, out, version) != AAM_OK)
			return AAM_OK;
		out->status = 200;
		out->stream = true;
		snprintf(out->content_type, sizeof(out->content_type), "text/event-stream");
		return AAM_OK;
	}
	snprintf(out->allow, sizeof(out->allow), "GET, POST, DELETE");
	return transport_error(out, 405, GWM_INVALID_REQUEST,
	                       "Method Not Allowed: /mcp takes GET, POST and DELETE");
}

bool
gw_mcp_session_live(struct gw_mcp *m, const char *id, const char *owner)
{
	char version[16];
	return m != NULL && id != NULL && owner != NULL &&
	       gwm_session_touch(m->sessions, id, owner, gwt_mono_us(), version) == AAM_OK;
}
