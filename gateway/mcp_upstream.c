/*
 * The gateway as an MCP client of one upstream server, over the
 * streamable HTTP transport, every request sent by aam-vault INJECT (the
 * vault adds the server's credential and scrubs it from the answer).
 *
 * The gateway keeps one upstream session per server: initialize (the
 * protocol version it speaks), then notifications/initialized, then
 * requests carrying Mcp-Session-Id and MCP-Protocol-Version.  When the
 * server forgets the session (HTTP 404) it is opened again once and the
 * request repeated.  Answers come as application/json or as an SSE
 * stream; in a stream, the event carrying the response to our id is
 * taken and everything else (progress notifications, server requests
 * the gateway does not serve) is skipped.
 */
#include "gateway/mcp.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aam/err.h"
#include "common/json.h"
#include "common/log.h"

#define UP_SESSION_MAX 256

struct gwm_upstream {
	const struct gwt_mcp_server *srv;
	pthread_mutex_t mu; /* session state below; held while (re)opening */
	bool ready;
	char session[UP_SESSION_MAX + 1]; /* "" when the server keeps none */
	char version[16];
	uint64_t gen; /* bumped when the session is dropped */
	atomic_llong next_id;
};

int
gwm_upstream_new(const struct gwt_mcp_server *srv, struct gwm_upstream **out)
{
	*out = NULL;
	struct gwm_upstream *u = calloc(1, sizeof(*u));
	if (u == NULL)
		return AAM_E_NOMEM;
	u->srv = srv;
	pthread_mutex_init(&u->mu, NULL);
	atomic_init(&u->next_id, 1);
	*out = u;
	return AAM_OK;
}

void
gwm_upstream_free(struct gwm_upstream *u)
{
	if (u == NULL)
		return;
	pthread_mutex_destroy(&u->mu);
	free(u);
}

/* ---- answers ----------------------------------------------------------- */

static const struct aam_json_limits UP_LIMITS = {.max_bytes = GWT_MAX_RESPONSE,
                                                 .max_depth = 64,
                                                 .max_string = GWT_MAX_RESPONSE,
                                                 .max_members = 100000};

/* Whether J is the response to ID. */
static bool
is_response(const json_t *j, int64_t id)
{
	const json_t *jid = json_object_get(j, "id");
	return json_is_object(j) && json_is_integer(jid) && json_integer_value(jid) == id &&
	       (json_object_get(j, "result") != NULL || json_object_get(j, "error") != NULL);
}

static bool
ct_is(const char *ct, const char *want)
{
	size_t n = strlen(want);
	return ct != NULL && strncasecmp(ct, want, n) == 0 &&
	       (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

int
gwm_upstream_extract(const char *content_type, const uint8_t *body, size_t len, int64_t id,
                     json_t **msg)
{
	*msg = NULL;
	if (ct_is(content_type, "application/json")) {
		json_t *j = NULL;
		if (aam_json_parse(body, len, &UP_LIMITS, &j, NULL) != AAM_OK)
			return AAM_E_PARSE;
		if (!is_response(j, id)) {
			json_decref(j);
			return AAM_E_NOTFOUND;
		}
		*msg = j;
		return AAM_OK;
	}
	if (!ct_is(content_type, "text/event-stream"))
		return AAM_E_PARSE;
	/* Events end at a blank line; an event's data lines are joined with '\n'. */
	struct aam_buf data;
	aam_buf_init(&data, GWT_MAX_RESPONSE);
	const char *p = (const char *)body, *end = p + len;
	int rc = AAM_E_NOTFOUND;
	while (p <= end && rc == AAM_E_NOTFOUND) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl != NULL ? nl : end;
		size_t ll = (size_t)(eol - p);
		if (ll > 0 && p[ll - 1] == '\r')
			ll--;
		if (ll == 0) {
			/* Dispatch. */
			if (data.len > 0) {
				json_t *j = NULL;
				if (aam_json_parse(data.data, data.len, &UP_LIMITS, &j, NULL) ==
				            AAM_OK &&
				    is_response(j, id)) {
					*msg = j;
					rc = AAM_OK;
				} else {
					json_decref(j);
				}
			}
			aam_buf_reset(&data);
		} else if (ll >= 5 && memcmp(p, "data:", 5) == 0) {
			const char *v = p + 5;
			size_t vl = ll - 5;
			if (vl > 0 && v[0] == ' ') {
				v++;
				vl--;
			}
			if (data.len > 0)
				aam_buf_append_byte(&data, '\n');
			aam_buf_append(&data, v, vl);
		}
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	/* A last event without its blank line still counts. */
	if (rc == AAM_E_NOTFOUND && data.len > 0) {
		json_t *j = NULL;
		if (aam_json_parse(data.data, data.len, &UP_LIMITS, &j, NULL) == AAM_OK &&
		    is_response(j, id)) {
			*msg = j;
			rc = AAM_OK;
		} else {
			json_decref(j);
		}
	}
	if (data.err != AAM_OK && rc != AAM_OK)
		rc = AAM_E_TOOBIG;
	aam_buf_uninit(&data);
	return rc;
}

/* ---- requests ---------------------------------------------------------- */

/* POSTs MSG to the server with the session headers. */
static int
post(struct gwm_upstream *u, const struct gwt_io *io, const char *credential, const json_t *msg,
     const char *session, const char *version, struct gwt_response *resp)
{
	struct gwt_request req;
	gwt_request_init(&req);
	req.method = "POST";
	aam_buf_append_str(&req.url, u->srv->url);
	int rc = aam_json_dump_buf(msg, &req.body, JSON_COMPACT);
	if (rc == AAM_OK)
		rc = gwt_request_add_header(&req, "Content-Type", "application/json");
	if (rc == AAM_OK)
		rc = gwt_request_add_header(&req, "Accept", "application/json, text/event-stream");
	if (rc == AAM_OK && session != NULL && session[0] != '\0')
		rc = gwt_request_add_header(&req, "Mcp-Session-Id", session);
	if (rc == AAM_OK && version != NULL && version[0] != '\0')
		rc = gwt_request_add_header(&req, "MCP-Protocol-Version", version);
	if (rc == AAM_OK && req.url.err != AAM_OK)
		rc = req.url.err;
	if (rc == AAM_OK)
		rc = io->inject(io->ctx, &req, credential, u->srv->timeout_ms, resp);
	gwt_request_uninit(&req);
	if (rc == AAM_OK && resp->truncated)
		rc = AAM_E_TOOBIG;
	return rc;
}

static void
transport_error(struct gwm_upstream *u, int rc, struct gwm_rpc_error *e)
{
	if (rc == AAM_E_TIMEOUT)
		gwm_rpc_error_set(e, GWM_UPSTREAM_TIMEOUT,
		                  "the MCP server %s did not answer in time", u->srv->name);
	else
		gwm_rpc_error_set(e, GWM_UPSTREAM_ERROR,
		                  "the MCP server %s could not be reached (%s)", u->srv->name,
		                  aam_err_code(rc));
}

/* Whether S may be echoed as a header value: visible ASCII, bounded. */
static bool
session_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > UP_SESSION_MAX)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
			return false;
	return true;
}

/* Opens the gateway's session with the server (U->mu held). */
static int
open_session(struct gwm_upstream *u, const struct gwt_io *io, const char *credential,
             unsigned *status, struct gwm_rpc_error *e)
{
	int64_t id = atomic_fetch_add(&u->next_id, 1);
	json_t *msg = json_pack("{s:s, s:I, s:s, s:{s:s, s:{}, s:{s:s, s:s}}}", "jsonrpc", "2.0",
	                        "id", (json_int_t)id, "method", "initialize", "params",
	                        "protocolVersion", GWM_VERSION_LATEST, "capabilities", "clientInfo",
	                        "name", "aam-gateway", "version", AAM_VERSION);
	struct gwt_response resp;
	gwt_response_init(&resp, GWT_MAX_RESPONSE);
	int rc = msg != NULL ? post(u, io, credential, msg, NULL, NULL, &resp) : AAM_E_NOMEM;
	json_decref(msg);
	if (status != NULL)
		*status = resp.status;
	json_t *reply = NULL;
	if (rc == AAM_OK && resp.status != 200) {
		gwm_rpc_error_set(e, GWM_UPSTREAM_ERROR,
		                  "the MCP server %s refused initialize (HTTP %u)", u->srv->name,
		                  resp.status);
		rc = AAM_E_PROTO;
	} else if (rc != AAM_OK) {
		transport_error(u, rc, e);
	} else if (gwm_upstream_extract(gwt_response_header(&resp, "content-type"), resp.body.data,
	                                resp.body.len, id, &reply) != AAM_OK) {
		gwm_rpc_error_set(e, GWM_UPSTREAM_ERROR,
		                  "the MCP server %s sent no valid initialize response",
		                  u->srv->name);
		rc = AAM_E_PROTO;
	}
	const char *ver = NULL;
	if (rc == AAM_OK) {
		ver = json_string_value(
		        json_object_get(json_object_get(reply, "result"), "protocolVersion"));
		if (!gwm_version_supported(ver)) {
			gwm_rpc_error_set(
			        e, GWM_UPSTREAM_ERROR,
			        "the MCP server %s speaks no protocol version the gateway does",
			        u->srv->name);
			rc = AAM_E_PROTO;
		}
	}
	const char *sid = gwt_response_header(&resp, "mcp-session-id");
	if (rc == AAM_OK && sid != NULL && !session_ok(sid)) {
		gwm_rpc_error_set(e, GWM_UPSTREAM_ERROR,
		                  "the MCP server %s sent a malformed session id", u->srv->name);
		rc = AAM_E_PROTO;
	}
	if (rc == AAM_OK) {
		snprintf(u->session, sizeof(u->session), "%s", sid != NULL ? sid : "");
		snprintf(u->version, sizeof(u->version), "%s", ver);
	}
	json_decref(reply);
	gwt_response_uninit(&resp);
	if (rc != AAM_OK)
		return rc;

	/* The handshake's last step; a server may answer 202 or 200/204. */
	json_t *note =
	        json_pack("{s:s, s:s}", "jsonrpc", "2.0", "method", "notifications/initialized");
	gwt_response_init(&resp, 64u * 1024);
	rc = note != NULL ? post(u, io, credential, note, u->session, u->version, &resp)
	                  : AAM_E_NOMEM;
	json_decref(note);
	if (rc == AAM_OK && resp.status / 100 != 2) {
		gwm_rpc_error_set(e, GWM_UPSTREAM_ERROR,
		                  "the MCP server %s refused notifications/initialized (HTTP %u)",
		                  u->srv->name, resp.status);
		rc = AAM_E_PROTO;
	} else if (rc != AAM_OK) {
		transport_error(u, rc, e);
	}
	gwt_response_uninit(&resp);
	if (rc == AAM_OK) {
		u->ready = true;
		aam_log(AAM_LOG_INFO, "mcp.upstream_session", AAM_F_STR("server", u->srv->name),
		        AAM_F_STR("version", u->version));
	}
	return rc;
}

int
gwm_upstream_call(struct gwm_upstream *u, const struct gwt_io *io, const char *credential,
                  const char *method, const json_t *params, json_t **result, unsigned *status,
                  uint32_t *cred_version, struct gwm_rpc_error *e)
{
	*result = NULL;
	if (status != NULL)
		*status = 0;
	if (cred_version != NULL)
		*cred_version = 0;
	for (int attempt = 0; attempt < 2; attempt++) {
		char session[UP_SESSION_MAX + 1], version[16];
		pthread_mutex_lock(&u->mu);
		int rc = u->ready ? AAM_OK : open_session(u, io, credential, status, e);
		memcpy(session, u->session, sizeof(session));
		memcpy(version, u->version, sizeof(version));
		uint64_t gen = u->gen;
		pthread_mutex_unlock(&u->mu);
		if (rc != AAM_OK)
			return rc;

		int64_t id = atomic_fetch_add(&u->next_id, 1);
		json_t *msg = json_pack("{s:s, s:I, s:s}", "jsonrpc", "2.0", "id", (json_int_t)id,
		                        "method", method);
		if (msg != NULL && params != NULL)
			json_object_set(msg, "params", (json_t *)(uintptr_t)params);
		struct gwt_response resp;
		gwt_response_init(&resp, GWT_MAX_RESPONSE);
		rc = msg != NULL ? post(u, io, credential, msg, session, version, &resp)
		                 : AAM_E_NOMEM;
		json_decref(msg);
		if (status != NULL)
			*status = resp.status;
		if (cred_version != NULL)
			*cred_version = resp.credential_version;
		if (rc != AAM_OK) {
			gwt_response_uninit(&resp);
			transport_error(u, rc, e);
			return rc;
		}
		if (resp.status == 404 && session[0] != '\0' && attempt == 0) {
			/* The server dropped our session: open a new one, once. */
			gwt_response_uninit(&resp);
			pthread_mutex_lock(&u->mu);
			if (u->gen == gen) {
				u->ready = false;
				u->gen++;
			}
			pthread_mutex_unlock(&u->mu);
			continue;
		}
		json_t *reply = NULL;
		if (resp.status != 200) {
			gwm_rpc_error_set(e, GWM_UPSTREAM_ERROR,
			                  "the MCP server %s answered HTTP %u", u->srv->name,
			                  resp.status);
			rc = AAM_E_PROTO;
		} else if (gwm_upstream_extract(gwt_response_header(&resp, "content-type"),
		                                resp.body.data, resp.body.len, id,
		                                &reply) != AAM_OK) {
			gwm_rpc_error_set(e, GWM_UPSTREAM_ERROR,
			                  "the MCP server %s sent no valid response", u->srv->name);
			rc = AAM_E_PROTO;
		}
		gwt_response_uninit(&resp);
		if (rc != AAM_OK)
			return rc;
		json_t *err = json_object_get(reply, "error");
		if (err != NULL) {
			/* The upstream's own error, passed on (its text was scrubbed by the vault).
			 */
			json_t *code = json_object_get(err, "code");
			const char *m = json_string_value(json_object_get(err, "message"));
			gwm_rpc_error_set(e,
			                  json_is_integer(code) ? (int)json_integer_value(code)
			                                        : GWM_UPSTREAM_ERROR,
			                  "%s", m != NULL ? m : "error from the MCP server");
			json_t *data = json_object_get(err, "data");
			if (data != NULL && e != NULL)
				e->data = json_incref(data);
			json_decref(reply);
			return AAM_E_PROTO;
		}
		*result = json_incref(json_object_get(reply, "result"));
		json_decref(reply);
		if (*result == NULL) {
			gwm_rpc_error_set(e, GWM_UPSTREAM_ERROR, "the MCP server %s sent no result",
			                  u->srv->name);
			return AAM_E_PROTO;
		}
		return AAM_OK;
	}
	gwm_rpc_error_set(e, GWM_UPSTREAM_ERROR, "the MCP server %s keeps losing its session",
	                  u->srv->name);
	return AAM_E_PROTO;
}
