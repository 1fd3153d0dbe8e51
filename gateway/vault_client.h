/*
 * The router's streaming INJECT client over aam-vault's gateway socket
 * (vault/proto.h, "Injection").  The response head and each body frame
 * are handed to callbacks as they arrive, so an upstream SSE stream
 * reaches the client chunk by chunk.
 *
 * Connections: a small pool of IPC clients.  One aam_ipc_client carries
 * many requests at once (replies are dispatched by request id), so the
 * pool only spreads the socket work over a few connections; a broken one
 * is replaced on next use.
 */
#ifndef AAM_GATEWAY_VAULT_CLIENT_H
#define AAM_GATEWAY_VAULT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/http.h"
#include "gateway/provider.h"

#define GW_VAULT_POOL 4

struct gw_vault_client;

struct gw_inject_cb {
	/* Once, before any body; H lowercased names.  Non-OK aborts the request. */
	int (*head)(void *ctx, unsigned status, const struct aam_http_header *h, size_t n);
	/* Each body frame's bytes as it arrives.  Non-OK aborts the request. */
	int (*body)(void *ctx, const uint8_t *p, size_t n);
	void *ctx;
};

struct gw_inject_result {
	bool head_seen;   /* the head callback ran */
	bool complete;    /* the body ended properly */
	int cb_rc;        /* what a callback returned when it aborted; AAM_OK otherwise */
	char reason[257]; /* the vault's error message, if any */
};

int gw_vault_client_new(const char *socket_path, struct gw_vault_client **out);
void gw_vault_client_free(struct gw_vault_client *c);
/* PING on a pooled connection (connecting if needed). */
bool gw_vault_client_ping(struct gw_vault_client *c);

/*
 * Sends U with CREDENTIAL ("" = none) through the vault, waiting at most
 * TIMEOUT_MS for each reply frame (the vault also gets TIMEOUT_MS as the
 * upstream timeout).  Returns AAM_OK when the whole response was read;
 * otherwise the error (the vault's code for a refused/failed request,
 * AAM_E_TIMEOUT, AAM_E_CLOSED when the vault is unreachable, or the
 * callback's code), with RES telling whether the head had been seen.
 */
int gw_vault_inject(struct gw_vault_client *c, const char *credential, const struct gw_upstream *u,
                    int64_t timeout_ms, const struct gw_inject_cb *cb,
                    struct gw_inject_result *res);

#endif /* AAM_GATEWAY_VAULT_CLIENT_H */
