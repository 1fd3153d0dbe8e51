/*
 * The audit log's IPC requests (vault/proto.h), dispatched here by the
 * vault service after the permission check.
 */
#ifndef AAM_VAULT_AUDIT_IPC_H
#define AAM_VAULT_AUDIT_IPC_H

#include <stddef.h>
#include <stdint.h>

#include "common/ipc.h"
#include "vault/audit.h"

/*
 * Answers one audit request of TYPE (AAM_IPC_AUDIT_* or VAULT_IPC_AUDIT_*).
 * A NULL log answers AAM_E_AUDIT (fail closed).
 */
int vault_audit_handle(struct vault_audit *a, struct vault_store *st, uint16_t type,
                       const uint8_t *p, size_t n, struct aam_ipc_replier *r);

#endif
