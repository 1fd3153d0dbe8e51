/*
 * Token issuance: JWT-SVID compatible JWS (ES256, kid) signed with the
 * issuer key through a pluggable signer — aam-vault's SIGN in the daemon
 * (attest/vault.h), an OpenSSL key in tests — and the issuer's public
 * keys for the JWKS and the SPIFFE bundle, current key first, previous
 * keys kept while a rotation overlaps.
 *
 * The signer never tells which key it used, so every token is verified
 * with the public key its header names before it leaves: a token signed
 * by a freshly rotated key is caught, the key list refreshed and the
 * token signed again, and a broken signer cannot hand out unverifiable
 * tokens.
 */
#ifndef AAM_ATTEST_ISSUER_H
#define AAM_ATTEST_ISSUER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "attest/registry.h"
#include "common/jose.h"

/* Where the issuer key lives. */
struct attest_keysrc {
	/* Signs with the current key; its kid member is ignored (the issuer sets it). */
	struct aam_jose_signer signer;
	/* Fills OUT (initialised, empty) with the public keys, current first, each with a kid. */
	int (*pubkeys)(void *ctx, struct aam_jwks *out);
	void *pubkeys_ctx;
};

/* kid of a key as aam-vault names it: base64url(SHA-256(SubjectPublicKeyInfo DER)). */
int attest_kid_of(EVP_PKEY *pkey, char kid[AAM_JWK_THUMBPRINT_LEN + 1]);

/*
 * A key source over OpenSSL EC P-256 keys (tests, benchmarks): KEYS[0]
 * signs, all are published.  The caller keeps the keys alive.
 */
struct attest_pkey_src {
	EVP_PKEY *keys[4];
	size_t nkeys;
};
int attest_keysrc_pkey(struct attest_pkey_src *ps, struct attest_keysrc *out);

struct attest_issuer;

#define ATTEST_ISSUER_REFRESH_S 30 /* re-read the public keys at least this often */

int attest_issuer_new(const struct attest_keysrc *src, const char *iss, struct attest_issuer **out);
void attest_issuer_free(struct attest_issuer *is);

/* Re-reads the public keys now.  On failure the previous set stays. */
int attest_issuer_refresh(struct attest_issuer *is);

/* What a token says. */
struct attest_token_req {
	const struct attest_reg *reg;
	const char *audience;
	const char *jkt; /* RFC 7638 thumbprint of the key the token is bound to */
	enum attest_method method;
	int64_t now; /* seconds */
	int64_t ttl; /* seconds, already capped */
};

struct attest_token {
	char *token; /* compact JWS, free() */
	char jti[32];
	int64_t iat, exp;
};

/* Builds, signs and self-verifies a token.  AAM_E_BUSY when the signer is unavailable. */
int attest_issuer_issue(struct attest_issuer *is, const struct attest_token_req *req,
                        struct attest_token *out);
void attest_token_uninit(struct attest_token *t);

/* {"keys":[...]} (current first); a new reference. */
int attest_issuer_jwks(struct attest_issuer *is, json_t **out);
/*
 * The kids of the current key set joined by ',' into OUT (to notice a
 * change of keys, for the bundle's sequence number).
 */
int attest_issuer_kids(struct attest_issuer *is, char *out, size_t outlen);

#endif /* AAM_ATTEST_ISSUER_H */
