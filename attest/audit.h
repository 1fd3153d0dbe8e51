/*
 * The audit hook of aam-attest.  Every token issued and every failed
 * attempt becomes one record in aam-vault's signed audit log (type
 * attest.issue or attest.fail, docs/AUDIT.md), appended over the attest
 * socket, and one structured log line (event=attest.audit).  No field
 * ever carries a token, a join token, a nonce or a secret.
 */
#ifndef AAM_ATTEST_AUDIT_H
#define AAM_ATTEST_AUDIT_H

#include <stdint.h>

#include "attest/errors.h"
#include "attest/registry.h"

struct attest_audit_event {
	const char *action; /* "token.issued" or "attest.failed" */
	enum attest_err outcome;
	enum attest_method method;
	const char *spiffe_id; /* NULL when not known */
	const char *client;    /* source address */
	const char *audience;  /* NULL when not known */
	const char *jti;       /* issued tokens */
	const char *jkt;       /* key the token is bound to */
	int64_t exp;           /* issued tokens; 0 otherwise */
};

/*
 * Appends records to the vault at VAULT_SOCKET from now on (the daemon
 * calls it at start; the connection is made on first use).  Without it,
 * events are only logged (library use in tests).  NULL disconnects.
 */
int attest_audit_connect(const char *vault_socket);
void attest_audit_close(void);

/*
 * Records EV.  Returns AAM_OK once the record is durable in the vault's
 * log; otherwise AAM_E_AUDIT, and the caller must stop the issuance
 * (DESIGN.md invariant 6: no token without its audit record).
 */
int attest_audit_emit(const struct attest_audit_event *ev);

#endif /* AAM_ATTEST_AUDIT_H */
