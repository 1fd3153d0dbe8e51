/*
 * aam-vault's IPC service: the request dispatcher behind the three role
 * sockets.  Each frame is checked against the permission table (perm.h)
 * for the socket's role, the peer's credentials and the vault's state
 * before anything else happens; a refusal is an explicit AAM_E_PERM
 * error frame and a log line.  Every request is answered.  Payloads are
 * decoded exactly (vault/proto.h): a size that does not match its fields
 * is AAM_E_PARSE.
 */
#ifndef AAM_VAULT_SERVICE_H
#define AAM_VAULT_SERVICE_H

#include <stdbool.h>

#include "common/ipc.h"
#include "vault/inject.h"
#include "vault/perm.h"
#include "vault/store.h"

struct vault_service;

/* One per socket: the aam_ipc_server's ctx. */
struct vault_service_role {
	struct vault_service *svc;
	enum vault_role role;
};

/* Takes PERM.  ST and VI stay the caller's and must outlive the service. */
int vault_service_new(struct vault_store *st, struct vault_inject *vi, struct vault_perm *perm,
                      struct vault_service **out);
void vault_service_free(struct vault_service *s);

struct vault_audit;
/* The audit log AUDIT_* requests go to (the caller's; must outlive the service). */
void vault_service_set_audit(struct vault_service *s, struct vault_audit *a);

/* Swaps in a new permission table (SIGHUP); takes PERM and frees the old one. */
void vault_service_set_perm(struct vault_service *s, struct vault_perm *perm);

/* aam_ipc_handler and aam_ipc_accept_fn with a struct vault_service_role as ctx. */
int vault_service_handle(void *ctx, const struct aam_ipc_peer *peer, const struct aam_ipc_hdr *req,
                         const uint8_t *payload, struct aam_ipc_replier *r);
int vault_service_accept(void *ctx, const struct aam_ipc_peer *peer);

#endif
