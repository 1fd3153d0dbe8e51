/*
 * The MCP gateway at /mcp (issue 7): the Model Context Protocol's
 * streamable HTTP transport (protocol versions 2025-06-18 and 2025-03-26)
 * in front of the upstream MCP servers a tool catalogue lists
 * (spec.mcp_servers, gateway/tools.h).
 *
 * To the agent it is one MCP server.  It answers initialize itself,
 * issues an Mcp-Session-Id bound to the caller's identity, and lists the
 * upstream servers' tools, resources and prompts under the server's name
 * ("docs__search"), filtered by the caller's policy.  Every tools/call,
 * resources/read and prompts/get is decided by the policy engine on the
 * mapped resource and action with the call's arguments as parameters
 * (so `when` conditions apply), forwarded through aam-vault INJECT with
 * the server's credential (the gateway keeps one upstream MCP session per
 * server), and audited.  A denial is a JSON-RPC error naming the reason
 * and the policy.
 *
 * Transport rules (docs/TOOLS.md, "MCP gateway"):
 *   POST   one JSON-RPC message (or, for 2025-03-26 only, a batch of at
 *          most GWM_MAX_BATCH); requests are answered with
 *          application/json, or text/event-stream when the client
 *          accepts only that; notifications and responses alone get 202.
 *   GET    with the session and an Accept naming text/event-stream:
 *          the server-to-client SSE stream, held open (SSE comments
 *          only, as the gateway has no server-initiated messages) until
 *          the session ends or the client goes; 406 without that Accept.
 *   DELETE ends the session (204).
 * Every request but initialize needs the Mcp-Session-Id; an unknown or
 * expired one is 404, a missing one 400.
 */
#ifndef AAM_GATEWAY_MCP_H
#define AAM_GATEWAY_MCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/buf.h"
#include "gateway/policy.h"
#include "gateway/tools.h"

#define GWM_VERSION_LATEST  "2025-06-18"
#define GWM_VERSION_OLDEST  "2025-03-26"
#define GWM_MAX_BODY        (1024u * 1024) /* bytes of one POST */
#define GWM_MAX_ARGS        (256u * 1024)  /* bytes of one call's arguments */
#define GWM_MAX_BATCH       16u            /* messages in a 2025-03-26 batch */
#define GWM_MAX_SESSIONS    10000u
#define GWM_SESSION_IDLE_MS (30LL * 60 * 1000)
#define GWM_SEP             "__" /* between server and tool or prompt name */

/* JSON-RPC error codes: the standard ones and the gateway's own. */
enum gwm_code {
	GWM_PARSE_ERROR = -32700,
	GWM_INVALID_REQUEST = -32600,
	GWM_METHOD_NOT_FOUND = -32601,
	GWM_INVALID_PARAMS = -32602,
	GWM_INTERNAL = -32603,
	GWM_RESOURCE_NOT_FOUND = -32002, /* as the MCP specification uses it */
	GWM_POLICY_DENIED = -32010,
	GWM_RATE_LIMITED = -32011,
	GWM_UPSTREAM_ERROR = -32012,
	GWM_AUDIT_UNAVAILABLE = -32013,
	GWM_UPSTREAM_TIMEOUT = -32014,
};

/* ---- JSON-RPC messages (mcp_rpc.c) ------------------------------------ */

enum gwm_kind { GWM_REQUEST = 1, GWM_NOTIFICATION, GWM_RESPONSE };

/* One message; every pointer is borrowed from the parsed document. */
struct gwm_msg {
	enum gwm_kind kind;
	json_t *id;         /* string or integer; NULL for a notification */
	const char *method; /* requests and notifications */
	json_t *params;     /* an object, or NULL when absent */
};

struct gwm_rpc_error {
	int code;
	char message[256];
	json_t *data; /* owned, or NULL */
};

void gwm_rpc_error_set(struct gwm_rpc_error *e, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
void gwm_rpc_error_clear(struct gwm_rpc_error *e);

/*
 * Classifies J as one JSON-RPC 2.0 message: "jsonrpc" exactly "2.0"; a
 * request has a string or integer id and a method; a notification has a
 * method and no id; a response has an id and exactly one of result and
 * error.  params, when present, must be an object (MCP never uses
 * positional parameters).  AAM_E_INVAL with E (GWM_INVALID_REQUEST) and
 * M->id set when the id was usable.
 */
int gwm_msg_parse(json_t *j, struct gwm_msg *m, struct gwm_rpc_error *e);

/* {"jsonrpc":"2.0","id":ID,"result":RESULT} (RESULT stolen; ID copied, NULL = null). */
json_t *gwm_result(const json_t *id, json_t *result);
/* {"jsonrpc":"2.0","id":ID,"error":{code,message[,data]}} (E's data moved). */
json_t *gwm_error(const json_t *id, struct gwm_rpc_error *e);

/* Whether V is a protocol version this gateway speaks. */
bool gwm_version_supported(const char *v);

/* ---- sessions (mcp_session.c) ----------------------------------------- */

#define GWM_SESSION_ID_LEN 43 /* 32 random bytes, base64url */
#define GWM_OWNER_MAX      512

struct gwm_sessions;

int gwm_sessions_new(size_t max, int64_t idle_ms, struct gwm_sessions **out);
void gwm_sessions_free(struct gwm_sessions *s);
/*
 * A new session for OWNER (the caller's identity) speaking VERSION.
 * AAM_E_BUSY when the table is full of live sessions.
 */
int gwm_session_create(struct gwm_sessions *s, const char *owner, const char *version,
                       int64_t now_us, char id[GWM_SESSION_ID_LEN + 1]);
/*
 * The session ID if it exists, is not idle past its limit and belongs to
 * OWNER (another owner's session is reported as unknown); refreshes it.
 * VERSION receives its protocol version.  AAM_E_NOTFOUND otherwise.
 */
int gwm_session_touch(struct gwm_sessions *s, const char *id, const char *owner, int64_t now_us,
                      char version[16]);
/* Ends the session; AAM_E_NOTFOUND as for touch. */
int gwm_session_end(struct gwm_sessions *s, const char *id, const char *owner);
size_t gwm_session_count(struct gwm_sessions *s);

/* ---- the gateway ------------------------------------------------------ */

struct gw_mcp;

/* CATALOG (borrowed) must outlive M. */
int gw_mcp_new(const struct gwt_catalog *catalog, struct gw_mcp **out);
void gw_mcp_free(struct gw_mcp *m);

/* One HTTP request to /mcp as the transport sees it. */
struct gwm_http {
	const char *method; /* GET, POST, DELETE, ... */
	const uint8_t *body;
	size_t body_len;
	/* Request headers (NULL when absent). */
	const char *accept, *content_type, *session_id, *protocol_version, *origin;
	const char *owner;              /* the caller's identity, for session binding */
	const gw_policy_set *set;       /* NULL: nothing is allowed */
	struct gw_policy_request *preq; /* identity fields set */
};

struct gwm_reply {
	unsigned status;
	struct aam_buf body;
	char content_type[64];                   /* "" when there is no body */
	char session_id[GWM_SESSION_ID_LEN + 1]; /* Mcp-Session-Id to send, or "" */
	char allow[32];                          /* Allow header for 405, or "" */
	/*
	 * GET: the server-to-client SSE stream was granted (status 200, no
	 * body).  The caller keeps the response open as a stream for as long
	 * as gw_mcp_session_live() says the session lives and the client
	 * stays, writing only SSE comments: the gateway has no
	 * server-initiated messages to send.
	 */
	bool stream;
};

void gwm_reply_init(struct gwm_reply *r);
void gwm_reply_uninit(struct gwm_reply *r);

/*
 * Serves one request and fills OUT.  IO reaches aam-vault (INJECT to the
 * upstream MCP servers) and the audit log.  Returns AAM_OK whenever OUT
 * holds an answer.
 */
int gw_mcp_serve(struct gw_mcp *m, const struct gwt_io *io, const struct gwm_http *req,
                 struct gwm_reply *out);

/*
 * Whether session ID of OWNER still lives (not ended by DELETE, not
 * expired); an open server-to-client stream counts as activity.
 */
bool gw_mcp_session_live(struct gw_mcp *m, const char *id, const char *owner);

/* ---- upstream MCP servers (mcp_upstream.c) ---------------------------- */

struct gwm_upstream;

int gwm_upstream_new(const struct gwt_mcp_server *srv, struct gwm_upstream **out);
void gwm_upstream_free(struct gwm_upstream *u);
/*
 * Sends METHOD with PARAMS (borrowed, may be NULL) to the upstream server
 * through IO, opening (or re-opening, when it expired) the gateway's MCP
 * session with it first.  On AAM_OK *RESULT owns the "result" member.  An
 * upstream JSON-RPC error is returned as AAM_E_PROTO with E set to it;
 * transport failures as other codes with E set (GWM_UPSTREAM_ERROR or
 * GWM_UPSTREAM_TIMEOUT).  *STATUS (may be NULL) receives the last HTTP
 * status of the upstream, *CRED_VERSION (may be NULL) the version of
 * CREDENTIAL the vault injected last (0 when it did not say).
 */
int gwm_upstream_call(struct gwm_upstream *u, const struct gwt_io *io, const char *credential,
                      const char *method, const json_t *params, json_t **result, unsigned *status,
                      uint32_t *cred_version, struct gwm_rpc_error *e);

/*
 * Extracts the JSON-RPC response with id ID from an upstream HTTP body:
 * application/json (one message) or text/event-stream (the first event
 * whose data is that response; other events are skipped).  Exposed for
 * tests.  AAM_E_NOTFOUND when there is none, AAM_E_PARSE when malformed.
 */
int gwm_upstream_extract(const char *content_type, const uint8_t *body, size_t len, int64_t id,
                         json_t **msg);

#endif /* AAM_GATEWAY_MCP_H */
