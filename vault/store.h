/*
 * The key and secret store of aam-vault: the only code in AAM that keeps
 * anything in the PKCS#11 token.
 *
 * Keys (all generated on the token: CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE,
 * not CKA_EXTRACTABLE):
 *   aam-issuer       EC P-256 pair, signs identity tokens and JWKS
 *   aam-audit        EC P-256 pair, signs audit checkpoints
 *   aam-secret-enc   AES-256, encrypts stored secret values
 *   aam-fingerprint  generic secret, HMAC-SHA256 fingerprints of values
 * At open every key present is checked (CKA_LOCAL, CKA_NEVER_EXTRACTABLE,
 * CKA_ALWAYS_SENSITIVE, not CKA_EXTRACTABLE) and the store refuses to open
 * on a key that fails, naming it.  Keys are named by label and by the
 * SHA-256 of their public key (kid), never by a raw handle.
 *
 * Secrets: HMAC-type secrets (aws-sigv4, hmac) become CKK_GENERIC_SECRET
 * objects usable only through C_Sign(CKM_SHA256_HMAC), so their value
 * never leaves the token.  Every other type is encrypted by aam-secret-enc
 * (AES-GCM when the token offers it, else AES-CBC-PAD + HMAC-SHA256
 * encrypt-then-MAC) and the ciphertext is kept on the token as a private
 * CKO_DATA object labelled aam-secret/<name>/v<version>.  SQLite holds
 * metadata only: name, type, bindings, options, versions, times and a
 * keyed fingerprint.  No plaintext and no unkeyed hash of a value is ever
 * written to disk.
 *
 * Bindings are URL prefixes scheme://host[:port]/path-prefix.  The scheme
 * must be https; http is accepted only for the hosts 127.0.0.1, ::1 and
 * localhost, so integration tests can bind to loopback upstreams.  No
 * userinfo, query or fragment.
 *
 * A struct vault_store may be shared by threads: a mutex serialises its
 * SQLite connection, key state and cache, and the PKCS#11 side runs on the
 * session pool.  Do not use vault_store_db() concurrently with the store.
 */
#ifndef AAM_VAULT_STORE_H
#define AAM_VAULT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/db.h"
#include "common/p11.h"
#include "common/secret.h"

struct vault_store_config {
	const char *module, *token_uri, *pin_file; /* PKCS#11 */
	const char *db_path;                       /* SQLite metadata */
	unsigned pool_size;
};
struct vault_store;

/*
 * Opens the token and the db.  If the AAM keys exist, checks them
 * (vault_keys_check) and FAILS naming the bad key.  If none exist the
 * store opens in the "uninitialised" state (vault_store_ready false).
 * Partially present keys are an error (AAM_E_INVAL, naming the missing
 * one).  ERR never holds a secret or PIN.  Until the keys exist, every
 * operation that needs one (sign, pubkey, put, rotate, cred_open)
 * returns AAM_E_CONFIG ("run aamctl keys init").
 */
int vault_store_open(const struct vault_store_config *cfg, struct vault_store **out, char *err,
                     size_t errlen);
void vault_store_close(struct vault_store *s);
bool vault_store_ready(const struct vault_store *s); /* keys present and checked */
aam_p11 *vault_store_p11(struct vault_store *s);
struct aam_db *vault_store_db(struct vault_store *s);

/*
 * Optional cache of decrypted secret values in protected memory, so a
 * request does not pay a token decryption.  SECONDS = 0 (the default)
 * disables it and wipes what it holds.  Rotate, prune and delete drop the
 * cached value of the secret they touch.
 */
int vault_store_set_cache_ttl(struct vault_store *s, unsigned seconds);

/*
 * The cipher for values stored from now on.  AUTO (what open chooses):
 * AES-GCM when the token offers CKM_AES_GCM, else AES-CBC-PAD with an
 * HMAC-SHA256 (encrypt-then-MAC, under aam-fingerprint with a domain
 * separation prefix).  Forcing one is for tests and for tokens whose GCM
 * is known broken; AAM_E_UNSUPPORTED when the token lacks the mechanism.
 * Stored values carry their cipher, so both kinds are always readable.
 */
enum vault_cipher {
	VAULT_CIPHER_AUTO = 0,
	VAULT_CIPHER_AES_GCM = 1,
	VAULT_CIPHER_AES_CBC_HMAC = 2
};
int vault_store_set_cipher(struct vault_store *s, enum vault_cipher c);
enum vault_cipher vault_store_cipher(const struct vault_store *s);

/* ---- Keys ------------------------------------------------------------ */

#define VAULT_LABEL_ISSUER      "aam-issuer"
#define VAULT_LABEL_AUDIT       "aam-audit"
#define VAULT_LABEL_SECRET_ENC  "aam-secret-enc"
#define VAULT_LABEL_FINGERPRINT "aam-fingerprint"

enum vault_key_id { VAULT_KEY_ISSUER = 0, VAULT_KEY_AUDIT = 1 };
/* "aam-issuer" / "aam-audit"; NULL for an unknown id. */
const char *vault_key_label(enum vault_key_id id);

/* Generates the four keys; AAM_E_EXISTS if any key exists.  Makes the store ready. */
int vault_keys_init(struct vault_store *s);
/*
 * Checks CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, !CKA_EXTRACTABLE,
 * CKA_LOCAL, CKA_NEVER_EXTRACTABLE and CKA_ALWAYS_SENSITIVE on each of the
 * four keys, their type and size, and that each EC pair signs a test
 * digest its public key verifies.  AAM_E_INVAL with ERR naming the key
 * label and the failing attribute; keys present are checked before a
 * missing one is reported (AAM_E_NOTFOUND, naming it).
 */
int vault_keys_check(struct vault_store *s, char *err, size_t errlen);
/*
 * New key pair, generated on the token.  The previous PUBLIC key is kept
 * under label <label>.prev.<n> (n = 1, 2, ...) for overlap (JWKS, audit
 * verification); the previous private key is destroyed, since nothing may
 * sign with a retired key.  A rotation interrupted by a crash is finished
 * or undone at the next vault_store_open.
 */
int vault_keys_rotate(struct vault_store *s, enum vault_key_id id);
/*
 * ECDSA P-256 through C_Sign; every signature is verified with the public
 * key (OpenSSL) before it is returned, and signing is retried once when
 * the check fails.  SIG_RS is raw r||s (JOSE form).
 */
int vault_sign(struct vault_store *s, enum vault_key_id id, const uint8_t digest[32],
               uint8_t sig_rs[64]);

struct vault_pubkey {
	uint8_t point[65]; /* 0x04 || x || y: JWK x = point[1..33), y = point[33..65) */
	uint8_t spki_der[91];
	size_t spki_len;
	char kid[44]; /* base64url(SHA-256(SPKI DER)) no padding */
};
int vault_pubkey(struct vault_store *s, enum vault_key_id id, struct vault_pubkey *out);
/* Current first, then previous (newest first), for JWKS overlap. */
int vault_pubkeys_all(struct vault_store *s, enum vault_key_id id, struct vault_pubkey *out,
                      size_t max, size_t *n);
/*
 * PEM ("-----BEGIN PUBLIC KEY-----") of PK's SPKI into BUF (NUL-terminated).
 * AAM_E_TOOBIG if BUFLEN is too small (200 bytes always suffice).
 */
int vault_pubkey_pem(const struct vault_pubkey *pk, char *buf, size_t buflen);

/* ---- Secrets --------------------------------------------------------- */

enum vault_secret_type {
	VAULT_SECRET_BEARER = 1,
	VAULT_SECRET_HEADER,
	VAULT_SECRET_BASIC,
	VAULT_SECRET_QUERY,
	VAULT_SECRET_AWS_SIGV4,
	VAULT_SECRET_HMAC,
	VAULT_SECRET_OAUTH2_CC
};
/* "bearer", "header", "basic", "query", "aws-sigv4", "hmac", "oauth2-client-credentials" */
const char *vault_secret_type_name(enum vault_secret_type t);
int vault_secret_type_parse(const char *name, enum vault_secret_type *out);
/* True for AWS_SIGV4 and HMAC (value kept as a token HMAC key). */
bool vault_secret_type_is_hmac(enum vault_secret_type t);

/* Largest secret value accepted (room is left for padding in locked memory). */
#define VAULT_VALUE_MAX (AAM_SECRET_MAX - 64)

#define VAULT_MAX_BINDINGS 16
struct vault_secret_meta {
	char name[128];
	enum vault_secret_type type;
	size_t nbindings;
	char bindings[VAULT_MAX_BINDINGS][512]; /* URL prefixes: scheme://host[:port]/path-prefix */
	char header[64];    /* HEADER: header name (e.g. x-api-key); HMAC: signature header name */
	char param[64];     /* QUERY: parameter name */
	char username[128]; /* BASIC: user name (the secret is the password) */
	char aws_access_key_id[128], aws_region[32], aws_service[32]; /* AWS_SIGV4 */
	char token_url[512], client_id[256], scope[256]; /* OAUTH2_CC (secret = client secret) */
	int64_t version;                                 /* 1, 2, ... */
	int64_t created, rotated;                        /* unix seconds */
	/* Hex HMAC-SHA256(value) under aam-fingerprint, for audit correlation. */
	char fingerprint[65];
};

/*
 * Checks one binding (see the top of this file).  A binding without a path
 * ("https://api.example.com") is accepted and stored as "<origin>/".  AAM_E_INVAL with a
 * reason in ERR (which may quote the binding: bindings are not secret).
 */
int vault_binding_validate(const char *url, char *err, size_t errlen);

/*
 * Checks META as vault_secret_put would (name, type, bindings, options),
 * with the reason in ERR, so a caller can report why a put is refused.
 */
int vault_secret_meta_validate(const struct vault_secret_meta *m, char *err, size_t errlen);

/*
 * Secret names: 1-127 characters of [A-Za-z0-9._-], starting with a letter
 * or digit.  Type options are required per type (HEADER: header, QUERY:
 * param, BASIC: username, AWS_SIGV4: access key id, region, service,
 * HMAC: header, OAUTH2_CC: token_url (https rules as bindings), client_id).
 * VERSION, CREATED, ROTATED and FINGERPRINT in META are ignored (set by
 * the store).  The value is 1..VAULT_VALUE_MAX bytes; for every type but
 * aws-sigv4 and hmac it may not hold control characters (CR, LF, NUL ...),
 * which would let it break out of a header or query parameter.
 */
int vault_secret_put(struct vault_store *s, const struct vault_secret_meta *meta,
                     const uint8_t *value, size_t len); /* AAM_E_EXISTS if name taken */
/* New version; previous kept until vault_secret_prune. */
int vault_secret_rotate(struct vault_store *s, const char *name, const uint8_t *value, size_t len);
/* Removes all but the current version (token objects destroyed). */
int vault_secret_prune(struct vault_store *s, const char *name);
/* Destroys every version's token objects and metadata. */
int vault_secret_delete(struct vault_store *s, const char *name);
/* Metadata of the current version; AAM_E_NOTFOUND if no such secret. */
int vault_secret_get(struct vault_store *s, const char *name, struct vault_secret_meta *out);
/* Calls CB for each secret in name order; a non-zero return from CB stops and is returned. */
int vault_secret_list(struct vault_store *s,
                      int (*cb)(void *ctx, const struct vault_secret_meta *m), void *ctx);
/* Number of stored versions of NAME (current included). */
int vault_secret_versions(struct vault_store *s, const char *name, size_t *n);

/* Use (one outbound request): */
struct vault_cred {
	struct vault_secret_meta meta;
	/* BEARER/HEADER/BASIC/QUERY/OAUTH2_CC: the decrypted value; NULL for HMAC types. */
	aam_secret *plain;
	/* AWS_SIGV4/HMAC: the CKK_GENERIC_SECRET key (its value never leaves the token). */
	CK_OBJECT_HANDLE hmac_key;
};
/*
 * The current version of NAME for one request.  AAM_E_NOTFOUND when there
 * is no such secret; AAM_E_CRYPTO when its ciphertext does not
 * authenticate (tampered, or swapped from another secret); AAM_E_INTERNAL
 * when the metadata names a token object that is missing.  The value is
 * decrypted into locked memory here and nowhere else (or copied from the
 * cache, when enabled).
 */
int vault_cred_open(struct vault_store *s, const char *name, struct vault_cred **out);
/*
 * C_Sign(CKM_SHA256_HMAC) with C's token key; AAM_E_INVAL for a non-HMAC
 * credential.  A handle made stale by a re-login is looked up again.
 */
int vault_cred_hmac(struct vault_store *s, const struct vault_cred *c, const uint8_t *data,
                    size_t len, uint8_t mac[32]);
int vault_hmac_with_key(struct vault_store *s, CK_OBJECT_HANDLE key, const uint8_t *data,
                        size_t len, uint8_t mac[32]);
void vault_cred_free(struct vault_cred *c); /* wipes; NULL is accepted */

#endif /* AAM_VAULT_STORE_H */
