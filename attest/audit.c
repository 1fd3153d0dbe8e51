/*
 * Audit events as structured log lines until AUDIT_APPEND exists.
 */
#include "attest/audit.h"
#include "common/log.h"
#include "aam/err.h"

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
	return AAM_OK;
}
