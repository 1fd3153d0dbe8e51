/*
 * JSON-RPC 2.0 messages as MCP uses them: strict classification of what
 * a client sends, and the response and error objects the gateway
 * answers with.
 *
 * The checks are those of the JSON-RPC 2.0 specification and MCP's
 * narrowing of it: "jsonrpc" is exactly "2.0"; a request id is a string
 * or an integer (MCP forbids null ids, and a fractional id has no single
 * spelling); params are an object; a response has exactly one of result
 * and error.  Anything else is an invalid request, answered with the id
 * when one could be read and null otherwise.
 */
#include "gateway/mcp.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "aam/err.h"

void
gwm_rpc_error_set(struct gwm_rpc_error *e, int code, const char *fmt, ...)
{
	if (e == NULL)
		return;
	e->code = code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
}

void
gwm_rpc_error_clear(struct gwm_rpc_error *e)
{
	if (e == NULL)
		return;
	json_decref(e->data);
	memset(e, 0, sizeof(*e));
}

bool
gwm_version_supported(const char *v)
{
	return v != NULL &&
	       (strcmp(v, GWM_VERSION_LATEST) == 0 || strcmp(v, GWM_VERSION_OLDEST) == 0);
}

static bool
id_ok(const json_t *id)
{
	if (json_is_integer(id))
		return true;
	/* Ids are echoed back and logged: keep them short. */
	return json_is_string(id) && json_string_length(id) <= 256 &&
	       strlen(json_string_value(id)) == json_string_length(id);
}

int
gwm_msg_parse(json_t *j, struct gwm_msg *m, struct gwm_rpc_error *e)
{
	memset(m, 0, sizeof(*m));
	if (!json_is_object(j)) {
		gwm_rpc_error_set(e, GWM_INVALID_REQUEST, "a JSON-RPC message must be an object");
		return AAM_E_INVAL;
	}
	json_t *id = json_object_get(j, "id");
	if (id != NULL && id_ok(id))
		m->id = id;
	json_t *ver = json_object_get(j, "jsonrpc");
	if (!json_is_string(ver) || strcmp(json_string_value(ver), "2.0") != 0) {
		gwm_rpc_error_set(e, GWM_INVALID_REQUEST, "\"jsonrpc\" must be \"2.0\"");
		return AAM_E_INVAL;
	}
	if (id != NULL && m->id == NULL) {
		gwm_rpc_error_set(e, GWM_INVALID_REQUEST,
		                  "\"id\" must be a string (at most 256 bytes) or an integer");
		return AAM_E_INVAL;
	}
	json_t *method = json_object_get(j, "method");
	json_t *result = json_object_get(j, "result"), *error = json_object_get(j, "error");
	if (method == NULL) {
		if (m->id == NULL || (result == NULL) == (error == NULL)) {
			gwm_rpc_error_set(
			        e, GWM_INVALID_REQUEST,
			        "a message needs a method, or an id and one of result and error");
			return AAM_E_INVAL;
		}
		if (error != NULL && !json_is_object(error)) {
			gwm_rpc_error_set(e, GWM_INVALID_REQUEST, "\"error\" must be an object");
			return AAM_E_INVAL;
		}
		m->kind = GWM_RESPONSE;
		return AAM_OK;
	}
	if (!json_is_string(method) || json_string_length(method) == 0 ||
	    json_string_length(method) > 128 ||
	    strlen(json_string_value(method)) != json_string_length(method)) {
		gwm_rpc_error_set(e, GWM_INVALID_REQUEST,
		                  "\"method\" must be a string (1 to 128 bytes)");
		return AAM_E_INVAL;
	}
	if (result != NULL || error != NULL) {
		gwm_rpc_error_set(e, GWM_INVALID_REQUEST, "a request cannot carry result or error");
		return AAM_E_INVAL;
	}
	json_t *params = json_object_get(j, "params");
	if (params != NULL && !json_is_object(params)) {
		gwm_rpc_error_set(e, GWM_INVALID_REQUEST, "\"params\" must be an object");
		return AAM_E_INVAL;
	}
	/* Unknown members would be ignored by one reader and not another. */
	const char *k;
	json_t *v;
	json_object_foreach(j, k, v)
	{
		if (strcmp(k, "jsonrpc") != 0 && strcmp(k, "id") != 0 && strcmp(k, "method") != 0 &&
		    strcmp(k, "params") != 0) {
			gwm_rpc_error_set(e, GWM_INVALID_REQUEST,
			                  "unknown member in a JSON-RPC message");
			return AAM_E_INVAL;
		}
	}
	m->method = json_string_value(method);
	m->params = params;
	m->kind = id != NULL ? GWM_REQUEST : GWM_NOTIFICATION;
	return AAM_OK;
}

json_t *
gwm_result(const json_t *id, json_t *result)
{
	json_t *r = json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id",
	                      id != NULL ? id : json_null(), "result", result);
	return r;
}

json_t *
gwm_error(const json_t *id, struct gwm_rpc_error *e)
{
	json_t *err = json_pack("{s:i, s:s}", "code", e->code, "message", e->message);
	if (err != NULL && e->data != NULL) {
		json_object_set_new(err, "data", e->data);
		e->data = NULL;
	}
	return json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id != NULL ? id : json_null(),
	                 "error", err);
}
