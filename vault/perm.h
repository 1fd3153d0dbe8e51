/*
 * The vault's permission table, in the manner of OpenSSH's monitor: which
 * peer role may make which request, in which state.
 *
 * Each role has its own socket, so the role of a connection is known from
 * the socket it arrived on.  The table gives every role a fixed maximum
 * set of operations; the configuration may narrow a role's set (never
 * widen it) and may restrict who may use a role by the peer's uid or gid
 * (SO_PEERCRED), so roles stay separate even when every process runs as
 * one user.  Before the AAM keys exist, only the admin's KEYS_INIT (and
 * PING, which the IPC layer answers itself) is allowed.
 *
 * A table is immutable once built; SIGHUP builds a new one and swaps it.
 */
#ifndef AAM_VAULT_PERM_H
#define AAM_VAULT_PERM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/config.h"
#include "common/ipc.h"

enum vault_role {
	VAULT_ROLE_GATEWAY = 0,
	VAULT_ROLE_ATTEST = 1,
	VAULT_ROLE_ADMIN = 2,
	VAULT_ROLE__N
};

enum vault_op {
	VAULT_OP_SIGN_ISSUER = 0,
	VAULT_OP_SIGN_AUDIT,
	VAULT_OP_PUBKEY,
	VAULT_OP_INJECT,
	VAULT_OP_AUDIT_APPEND,
	VAULT_OP_KEYS_INIT,
	VAULT_OP_KEYS_ROTATE,
	VAULT_OP_SECRET_PUT,
	VAULT_OP_SECRET_ROTATE,
	VAULT_OP_SECRET_LIST,
	VAULT_OP_SECRET_SHOW,
	VAULT_OP_SECRET_DELETE,
	VAULT_OP_SECRET_PRUNE,
	VAULT_OP_AUDIT_CHECKPOINT, /* the latest signed checkpoint */
	VAULT_OP_AUDIT_READ,       /* records, checkpoints, proofs (export, tail, prove) */
	VAULT_OP_AUDIT_HASH,       /* the keyed hash of a sensitive value */
	VAULT_OP__N,
	VAULT_OP_UNKNOWN = VAULT_OP__N
};

/* "gateway", "attest", "admin". */
const char *vault_role_name(enum vault_role r);
/* "SIGN_ISSUER", "INJECT", ...; "UNKNOWN" for anything else. */
const char *vault_op_name(enum vault_op op);

/*
 * The operation a request frame asks for.  SIGN is split by the key byte
 * at the start of its payload (a payload too short to hold it is
 * SIGN_ISSUER: the decoder refuses it later).  Unknown types are
 * VAULT_OP_UNKNOWN, which no role may use.
 */
enum vault_op vault_op_of(uint16_t type, const uint8_t *payload, size_t len);

struct vault_perm;

/*
 * Builds a table from the vault section: per role, the "ops" list (names
 * as vault_op_name, case-insensitive; must be within the role's maximum)
 * and the "uids"/"gids" lists (names or numbers, resolved now).  ERR names
 * the offending key and value.
 */
int vault_perm_new(const struct aam_config_vault *cfg, struct vault_perm **out, char *err,
                   size_t errlen);
/* The built-in table: every role its full set, no uid/gid restriction. */
int vault_perm_new_default(struct vault_perm **out);
void vault_perm_free(struct vault_perm *p);

/* Whether PEER may connect to ROLE's socket at all (uid/gid restriction). */
int vault_perm_peer(const struct vault_perm *p, enum vault_role role,
                    const struct aam_ipc_peer *peer);

/*
 * Whether PEER, on ROLE's socket, may run OP with the vault READY (keys
 * present) or not.  AAM_OK, or AAM_E_PERM with a one-line reason in WHY.
 */
int vault_perm_check(const struct vault_perm *p, enum vault_role role,
                     const struct aam_ipc_peer *peer, enum vault_op op, bool ready, char *why,
                     size_t whylen);

/* The ops bitmask of ROLE (bit i = enum vault_op i), for tests and logs. */
uint32_t vault_perm_ops(const struct vault_perm *p, enum vault_role role);

#endif
