/*
 * The tool and MCP modules' INJECT client: one upstream request through
 * aam-vault (vault/proto.h), the response collected into a bounded
 * buffer.  It is a thin internal seam: the pipeline only sees struct
 * gwt_io, so this can be swapped for the gateway's shared vault client
 * (gateway/vault_client.h) without touching anything else.
 */
#ifndef AAM_GATEWAY_TOOLS_VAULT_H
#define AAM_GATEWAY_TOOLS_VAULT_H

#include <stdint.h>

#include "gateway/tools.h"

/*
 * Sends REQ with CREDENTIAL over the vault's gateway socket SOCK and
 * fills RESP.  Returns AAM_OK once the head arrived (RESP->truncated
 * tells whether the body was cut short), or the vault's error code
 * (AAM_E_DENIED, AAM_E_NOTFOUND, AAM_E_TIMEOUT, AAM_E_IO, ...), or
 * AAM_E_CLOSED when the vault is not reachable.
 */
int gwt_vault_inject(const char *sock, const struct gwt_request *req, const char *credential,
                     int64_t timeout_ms, struct gwt_response *resp);

#endif /* AAM_GATEWAY_TOOLS_VAULT_H */
