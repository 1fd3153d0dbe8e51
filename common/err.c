/* Error code tables.  Kept in one place so wire codes stay stable. */
#include "aam/err.h"

#include <stddef.h>

static const struct {
	const char *msg;
	const char *code;
} err_table[AAM_E__MAX] = {
        [AAM_OK] = {"success", "ok"},
        [AAM_E_NOMEM] = {"out of memory", "out_of_memory"},
        [AAM_E_INVAL] = {"invalid argument", "invalid_request"},
        [AAM_E_TOOBIG] = {"input exceeds a limit", "payload_too_large"},
        [AAM_E_PARSE] = {"malformed input", "malformed_input"},
        [AAM_E_IO] = {"input/output error", "io_error"},
        [AAM_E_NOTFOUND] = {"not found", "not_found"},
        [AAM_E_EXISTS] = {"already exists", "already_exists"},
        [AAM_E_PERM] = {"permission denied", "permission_denied"},
        [AAM_E_PROTO] = {"protocol violation", "protocol_error"},
        [AAM_E_TIMEOUT] = {"timed out", "timeout"},
        [AAM_E_CLOSED] = {"connection closed", "connection_closed"},
        [AAM_E_CRYPTO] = {"cryptographic failure", "crypto_error"},
        [AAM_E_HSM] = {"security token failure", "hsm_error"},
        [AAM_E_DB] = {"database failure", "database_error"},
        [AAM_E_UNSUPPORTED] = {"not supported", "unsupported"},
        [AAM_E_BUSY] = {"temporarily unavailable", "unavailable"},
        [AAM_E_DENIED] = {"denied by policy", "policy_denied"},
        [AAM_E_CONFIG] = {"configuration error", "config_error"},
        [AAM_E_INTERNAL] = {"internal error", "internal_error"},
        [AAM_E_AUDIT] = {"audit log unavailable", "audit_unavailable"},
};

const char *
aam_strerror(int err)
{
	if (err < 0 || err >= AAM_E__MAX || err_table[err].msg == NULL)
		return "unknown error";
	return err_table[err].msg;
}

const char *
aam_err_code(int err)
{
	if (err < 0 || err >= AAM_E__MAX || err_table[err].code == NULL)
		return "unknown_error";
	return err_table[err].code;
}
