/*
 * The gateway's audit emitter: every request's record goes through here
 * to aam-vault's AUDIT_APPEND, and a request is only answered once its
 * record is durable (DESIGN.md invariant 6).  Any failure is reported to
 * the caller, which refuses the request with 503 audit_unavailable.
 *
 * The transport is a function pointer so unit tests can make the append
 * fail; the daemon uses aam_audit_append() (common/audit_client.h) over
 * the vault's gateway socket when that client is built in, and otherwise
 * the interim log backend (one `gateway.audit` log line per record, not
 * durable, said so at start-up and in /readyz).
 */
#ifndef AAM_GATEWAY_AUDIT_EMIT_H
#define AAM_GATEWAY_AUDIT_EMIT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#define GW_AUDIT_TIMEOUT_MS 5000

typedef int (*gw_audit_append_fn)(void *ctx, const json_t *event, int timeout_ms, uint64_t *seq);

struct gw_audit;

/* An emitter appending through aam-vault's socket at VAULT_SOCKET. */
int gw_audit_new(const char *vault_socket, struct gw_audit **out);
void gw_audit_free(struct gw_audit *a);

/* Replaces the transport (tests); FN NULL restores the default. */
void gw_audit_set_backend(struct gw_audit *a, gw_audit_append_fn fn, void *ctx);

/* Appends EV; AAM_OK only once the record is durable. */
int gw_audit_append(struct gw_audit *a, const json_t *ev, uint64_t *seq);

/*
 * The gateway's event EV as an audit record of format v1 (docs/AUDIT.md):
 * identity, delegation (end_user, hashed by the vault), policy, decision,
 * action, model, outcome, credential name; anything else that is a plain
 * value goes to "detail".  The vault adds seq and time.  NULL on ENOMEM.
 */
json_t *gw_audit_record_v1(const json_t *ev);

/* For /readyz: whether the last append (or a probe) worked. */
bool gw_audit_ready(struct gw_audit *a);
/* "vault" or "log" (the interim, non-durable backend) or "custom". */
const char *gw_audit_backend_name(const struct gw_audit *a);

#endif /* AAM_GATEWAY_AUDIT_EMIT_H */
