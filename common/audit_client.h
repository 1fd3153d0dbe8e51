/*
 * Client side of AUDIT_APPEND: aam-gateway and aam-attest hand their audit
 * events to aam-vault, which stores them durably in the signed log
 * (docs/AUDIT.md).  The call returns only once the record is durable, so
 * a caller that gets AAM_OK may serve its request; on any error it must
 * refuse it (DESIGN.md invariant 6, fail closed).
 */
#ifndef AAM_COMMON_AUDIT_CLIENT_H
#define AAM_COMMON_AUDIT_CLIENT_H

#include <stdint.h>

#include <jansson.h>

struct aam_ipc_client;

/* Largest event accepted, serialised (the vault's record limit). */
#define AAM_AUDIT_EVENT_MAX (64u * 1024)

/*
 * Sends EVENT (a JSON object without seq and time) over C and waits up to
 * TIMEOUT_MS (< 0: no limit) for its seq.  AAM_E_INVAL for a non-object,
 * AAM_E_TOOBIG over AAM_AUDIT_EVENT_MAX, AAM_E_PROTO for a malformed
 * answer, otherwise the vault's error (AAM_E_AUDIT when its log cannot
 * store records, AAM_E_TIMEOUT, AAM_E_INVAL for a refused event) or the
 * connection's.  SEQ_OUT may be NULL.
 */
int aam_audit_append(struct aam_ipc_client *c, const json_t *event, int timeout_ms,
                     uint64_t *seq_out);

#endif /* AAM_COMMON_AUDIT_CLIENT_H */
