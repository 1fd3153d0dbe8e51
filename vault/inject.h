/*
 * INJECT: the vault sends an outbound request on the gateway's behalf with
 * a credential the gateway never sees.
 *
 * For each request: the URL is parsed and checked against the
 * credential's bindings (binding.h) before the secret is touched; the
 * caller's own credential headers (Authorization, the credential's header,
 * proxy and hop-by-hop headers, Host) are dropped; the secret is opened
 * (decrypted in the token, or used in place for HMAC types) and injected
 * according to its type; the request goes out through the egress
 * (egress.h) and the response streams back frame by frame as it arrives,
 * scrubbed of the secret (scrub.h).  Plaintext exists only in protected
 * memory for the life of the request, and is wiped after.  The wire
 * format is in vault/proto.h.
 */
#ifndef AAM_VAULT_INJECT_H
#define AAM_VAULT_INJECT_H

#include <stddef.h>
#include <stdint.h>

#include "common/ipc.h"
#include "vault/egress.h"
#include "vault/store.h"

#define VAULT_INJECT_DEFAULT_MAX_BODY (16u * 1024 * 1024)

struct vault_inject_config {
	struct vault_egress_config egress;
	size_t max_body; /* request body limit; 0: VAULT_INJECT_DEFAULT_MAX_BODY */
};

struct vault_inject;

int vault_inject_new(const struct vault_inject_config *cfg, struct vault_store *st,
                     struct vault_inject **out);
void vault_inject_free(struct vault_inject *vi);
/* Drops cached derived credentials (OAuth tokens) after a rotation or deletion. */
void vault_inject_forget(struct vault_inject *vi);
struct vault_audit;
/*
 * The audit log each INJECT writes its credential.use record to before the
 * upstream request is sent; the request is refused (AAM_E_AUDIT) when that
 * record is not durable.  NULL (the default) writes none.
 */
void vault_inject_set_audit(struct vault_inject *vi, struct vault_audit *a);
/* Aborts transfers in flight and refuses new ones (shutdown). */
void vault_inject_stop(struct vault_inject *vi);

/*
 * Handles one frame of an INJECT request: the INJECT frame, then (when it
 * carried MORE) INJECT_BODY frames.  The request runs when its last frame
 * arrives.  Returns an error code for the server to answer with when no
 * reply was sent.  The caller has checked the peer's permission.
 */
int vault_inject_frame(struct vault_inject *vi, const struct aam_ipc_peer *peer,
                       const struct aam_ipc_hdr *h, const uint8_t *payload,
                       struct aam_ipc_replier *r);

#endif
