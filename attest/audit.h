/*
 * The audit hook of aam-attest.  Every token issued and every failed
 * attempt becomes one event.  Until aam-vault's AUDIT_APPEND is wired
 * (issue 8), an event is written as one structured log line
 * (event=attest.audit); the fields are already those of the future audit
 * record, and no field ever carries a token, a join token, a nonce or a
 * secret.
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
 * Records EV.  Returns AAM_OK once the event is durable (today: logged).
 * When the vault path exists, a failure here must stop the issuance
 * (DESIGN.md invariant 6: no token without its audit record).
 */
int attest_audit_emit(const struct attest_audit_event *ev);

#endif /* AAM_ATTEST_AUDIT_H */
