/*
 * aam-attest's link to aam-vault (its "attest" socket): SIGN with the
 * issuer key and PUBKEY for the JWKS, as vault/proto.h and
 * docs/PROTOCOL.md define them.  The issuer key never leaves the HSM;
 * aam-attest only ever sends a 32-byte digest and gets r||s back.
 *
 * One connection is shared by every HTTP worker (the IPC client
 * multiplexes requests); when the vault restarts, the next call
 * reconnects.
 */
#ifndef AAM_ATTEST_VAULT_H
#define AAM_ATTEST_VAULT_H

#include "attest/issuer.h"
#include "common/jose.h"

#define ATTEST_VAULT_TIMEOUT_MS 5000

struct attest_vault;

/* Does not connect yet: the vault may start after aam-attest. */
int attest_vault_new(const char *socket_path, struct attest_vault **out);
void attest_vault_free(struct attest_vault *v);

/*
 * The signer: SIGN(issuer key, current kid, digest).  AAM_E_BUSY when the
 * vault cannot be reached, the vault's code when it refuses.
 */
int attest_vault_signer(struct attest_vault *v, struct aam_jose_signer *out);

/* PUBKEY(issuer key) as a JWK set, current key first. */
int attest_vault_pubkeys(void *v, struct aam_jwks *out);

/* Both together as the issuer's key source. */
int attest_vault_keysrc(struct attest_vault *v, struct attest_keysrc *out);

#endif /* AAM_ATTEST_VAULT_H */
