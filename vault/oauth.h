/*
 * OAuth 2.0 client credentials (RFC 6749 section 4.4) for the
 * oauth2-client-credentials secret type: the vault trades the long-lived
 * client secret for a short-lived access token, for exactly the scope
 * the request needs, and injects only that token.
 *
 * The client authenticates with HTTP Basic (client_secret_basic, RFC 6749
 * section 2.3.1: id and secret form-urlencoded first).  Tokens are cached
 * in protected memory per (credential, version, scope) until shortly
 * before they expire: 30 seconds early, or half their lifetime when that
 * is shorter.  The token endpoint is reached through the same egress as
 * INJECT (TLS verified, no redirects, no proxies).
 */
#ifndef AAM_VAULT_OAUTH_H
#define AAM_VAULT_OAUTH_H

#include <stddef.h>

#include "common/secret.h"
#include "vault/egress.h"
#include "vault/store.h"

struct vault_oauth;

int vault_oauth_new(struct vault_egress *e, struct vault_oauth **out);
/* Wipes every cached token; NULL is fine. */
void vault_oauth_free(struct vault_oauth *o);

/*
 * An access token for CRED (an OAUTH2_CC credential with its client
 * secret open) and SCOPE (space-separated; "" for the configured scope).
 * *TOKEN is a protected copy the caller frees.  AAM_E_DENIED when the
 * token endpoint refuses, AAM_E_PROTO for a malformed answer, egress
 * errors otherwise; WHY never holds a secret or token.
 */
int vault_oauth_token(struct vault_oauth *o, const struct vault_cred *cred, const char *scope,
                      aam_secret **token, char *why, size_t whylen);

/* Drops every cached token (for tests and after a rotation). */
void vault_oauth_clear(struct vault_oauth *o);

#endif
