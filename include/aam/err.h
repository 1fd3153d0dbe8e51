/*
 * AAM error codes.  Libraries return these and never exit; daemons turn
 * them into HTTP statuses, JSON error bodies and IPC error frames.  The
 * numeric values travel over IPC, so they are part of the wire protocol:
 * append new codes at the end, never renumber.
 */
#ifndef AAM_ERR_H
#define AAM_ERR_H

typedef enum aam_err {
	AAM_OK = 0,
	AAM_E_NOMEM = 1,        /* allocation failed */
	AAM_E_INVAL = 2,        /* invalid argument or input */
	AAM_E_TOOBIG = 3,       /* input exceeds a size, count or depth limit */
	AAM_E_PARSE = 4,        /* malformed input (JSON, YAML, frame, ...) */
	AAM_E_IO = 5,           /* read/write/socket failure */
	AAM_E_NOTFOUND = 6,     /* named object does not exist */
	AAM_E_EXISTS = 7,       /* object already exists */
	AAM_E_PERM = 8,         /* caller is not permitted */
	AAM_E_PROTO = 9,        /* protocol violation by a peer */
	AAM_E_TIMEOUT = 10,     /* deadline passed */
	AAM_E_CLOSED = 11,      /* peer closed the connection */
	AAM_E_CRYPTO = 12,      /* cryptographic operation failed */
	AAM_E_HSM = 13,         /* PKCS#11 / TPM failure */
	AAM_E_DB = 14,          /* database failure */
	AAM_E_UNSUPPORTED = 15, /* feature or mechanism not available */
	AAM_E_BUSY = 16,        /* temporarily unavailable, retry later */
	AAM_E_DENIED = 17,      /* refused by policy */
	AAM_E_CONFIG = 18,      /* configuration error */
	AAM_E_INTERNAL = 19,    /* broken invariant */
	AAM_E_AUDIT = 20,       /* audit record could not be made durable */
	AAM_E__MAX
} aam_err;

/* A human-readable sentence for an error code; never NULL. */
const char *aam_strerror(int err);

/*
 * A stable snake_case code for JSON error bodies ("invalid_request",
 * "payload_too_large", ...); never NULL.
 */
const char *aam_err_code(int err);

#endif /* AAM_ERR_H */
