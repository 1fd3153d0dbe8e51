/*
 * aam-attest's audit events, appended to aam-vault's signed audit log
 * over the attest socket (AUDIT_APPEND).  See audit.h.
 */
#include "attest/audit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "aam/err.h"
#include "common/audit_client.h"
#include "common/ipc.h"
#include "common/log.h"

#define AUDIT_TIMEOUT_MS 5000

/*
 * One shared connection, as for SIGN (attest/vault.c), guarded by a mutex:
 * attestation is not a hot path, and one append at a time keeps a broken
 * connection simple to replace.
 */
static pthread_mutex_t audit_mu = PTHREAD_MUTEX_INITIALIZER;
static char *audit_socket;
static struct aam_ipc_client *audit_conn;

int
attest_audit_connect(const char *vault_socket)
{
	char *s = vault_socket != NULL ? strdup(vault_socket) : NULL;
	if (vault_socket != NULL && s == NULL)
		return AAM_E_NOMEM;
	pthread_mutex_lock(&audit_mu);
	free(audit_socket);
	audit_socket = s;
	aam_ipc_client_free(audit_conn);
	audit_conn = NULL;
	pthread_mutex_unlock(&audit_mu);
	return AAM_OK;
}

void
attest_audit_close(void)
{
	attest_audit_connect(NULL);
}

/* The event as an audit record v1 (docs/AUDIT.md); never a token, nonce or secret. */
static json_t *
record_of(const struct attest_audit_event *ev)
{
	bool ok = ev->outcome == ATTEST_OK;
	json_t *rec = json_pack("{s:s, s:{s:s, s:s}}", "type", ok ? "attest.issue" : "attest.fail",
	                        "decision", "effect", ok ? "allow" : "deny", "reason",
	                        attest_err_code(ev->outcome));
	if (rec == NULL)
		return NULL;
	json_t *id = json_pack("{s:s}", "attestation", attest_method_name(ev->method));
	if (ev->spiffe_id != NULL)
		json_object_set_new(id, "spiffe_id", json_string(ev->spiffe_id));
	if (ev->jti != NULL)
		json_object_set_new(id, "jti", json_string(ev->jti));
	json_object_set_new(rec, "identity", id);
	json_t *d = json_pack("{s:s}", "action", ev->action);
	if (ev->client != NULL)
		json_object_set_new(d, "client", json_string(ev->client));
	if (ev->audience != NULL)
		json_object_set_new(d, "audience", json_string(ev->audience));
	if (ev->jkt != NULL)
		json_object_set_new(d, "jkt", json_string(ev->jkt));
	if (ev->exp != 0)
		json_object_set_new(d, "exp", json_integer(ev->exp));
	json_object_set_new(rec, "detail", d);
	return rec;
}

static int
vault_append(const json_t *rec)
{
	int rc = AAM_E_AUDIT;
	pthread_mutex_lock(&audit_mu);
	for (int attempt = 0; attempt < 2; attempt++) {
		if (audit_conn != NULL && aam_ipc_client_status(audit_conn) != AAM_OK) {
			aam_ipc_client_free(audit_conn);
			audit_conn = NULL;
		}
		if (audit_conn == NULL &&
		    aam_ipc_client_connect(audit_socket, AUDIT_TIMEOUT_MS, &audit_conn) != AAM_OK) {
			audit_conn = NULL;
			rc = AAM_E_AUDIT;
			break;
		}
		rc = aam_audit_append(audit_conn, rec, AUDIT_TIMEOUT_MS, NULL);
		if (rc != AAM_E_CLOSED)
			break;
	}
	pthread_mutex_unlock(&audit_mu);
	return rc;
}

int
attest_audit_emit(const struct attest_audit_event *ev)
{
	if (ev == NULL || ev->action == NULL)
		return AAM_E_INVAL;
	enum aam_log_level lvl = ev->outcome == ATTEST_OK ? AAM_LOG_INFO : AAM_LOG_WARN;
	aam_log(lvl, "attest.audit", AAM_F_STR("action", ev->action),
	        AAM_F_STR("outcome", attest_err_code(ev->outcome)),
	        AAM_F_STR("method", attest_method_name(ev->method)),
	        AAM_F_STR("spiffe_id", ev->spiffe_id != NULL ? ev->spiffe_id : "-"),
	        AAM_F_STR("client", ev->client != NULL ? ev->client : "-"),
	        AAM_F_STR("audience", ev->audience != NULL ? ev->audience : "-"),
	        AAM_F_STR("jti", ev->jti != NULL ? ev->jti : "-"),
	        AAM_F_STR("jkt", ev->jkt != NULL ? ev->jkt : "-"), AAM_F_INT("exp", ev->exp));
	pthread_mutex_lock(&audit_mu);
	bool have_vault = audit_socket != NULL;
	pthread_mutex_unlock(&audit_mu);
	/* Without attest_audit_connect (library use in tests) the log line is all. */
	if (!have_vault)
		return AAM_OK;
	json_t *rec = record_of(ev);
	int rc = rec != NULL ? vault_append(rec) : AAM_E_NOMEM;
	json_decref(rec);
	if (rc != AAM_OK) {
		aam_log(AAM_LOG_ERROR, "attest.audit_failed", AAM_F_STR("action", ev->action),
		        AAM_F_ERR(rc));
		return AAM_E_AUDIT;
	}
	return AAM_OK;
}
