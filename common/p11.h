/*
 * PKCS#11 access through p11-kit, shared by aam-vault (issuer, audit and
 * secret keys) and aam-agent (its attestation key).
 *
 * One aam_p11 handle = one module, one token, one logged-in user.  A pool
 * of sessions serves worker threads: each operation borrows a session for
 * its duration, so threads never share a session (PKCS#11 forbids
 * concurrent operations on one session).  When the token answers
 * CKR_SESSION_HANDLE_INVALID, CKR_SESSION_CLOSED, CKR_DEVICE_REMOVED or
 * CKR_USER_NOT_LOGGED_IN, the session is re-opened, the user logged in
 * again and the operation retried once.  CKR_OPERATION_ACTIVE (an operation
 * left unfinished on the session) is handled the same way, since only a
 * fresh session clears it.
 *
 * Object handles are looked up once and cached by (class, label):
 * SoftHSM2 answers only ~1,900 C_FindObjects per second, so no request path
 * may search the token.
 *
 * The user PIN comes from a file (config pin_file, or the URI's
 * pin-source); it is kept in protected memory for re-login and never
 * logged.  A pin-value attribute in the URI is refused: PINs do not belong
 * in configuration.
 */
#ifndef AAM_COMMON_P11_H
#define AAM_COMMON_P11_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

typedef struct aam_p11 aam_p11;

struct aam_p11_config {
	const char *module;    /* path to the module, or a p11-kit module name */
	const char *token_uri; /* RFC 7512 pkcs11: URI selecting the token */
	const char *pin_file;  /* user PIN file; NULL to use the URI's pin-source */
	unsigned pool_size;    /* sessions in the pool; 0 = 4 */
};

/*
 * Loads the module, initialises it with CKF_OS_LOCKING_OK, selects the
 * token, logs in and opens the session pool.  ERR receives a message
 * without any secret.
 */
int aam_p11_open(const struct aam_p11_config *cfg, aam_p11 **out, char *err, size_t errlen);
void aam_p11_close(aam_p11 *p);

CK_FUNCTION_LIST *aam_p11_module(aam_p11 *p);
CK_SLOT_ID aam_p11_slot(const aam_p11 *p);
/*
 * Advances whenever cached handles were dropped: sessions were re-opened
 * (handles found before may be stale) or aam_p11_forget() was called
 * (objects changed).  Callers that keep what they read from an object
 * compare it to decide whether to read again.
 */
uint64_t aam_p11_generation(aam_p11 *p);

/* Whether the token offers MECH (probed once at open). */
bool aam_p11_has_mechanism(const aam_p11 *p, CK_MECHANISM_TYPE mech);

/*
 * Runs OP on a borrowed, logged-in session, re-opening and retrying once
 * on session loss.  Returns the PKCS#11 return value of the last attempt.
 *
 * A re-opened session means a new login, and a module may renumber its
 * private objects across a logout (SoftHSM2 does): the handle cache is
 * dropped and the generation counter advances.  An OP that carries a
 * handle found before may then fail with CKR_KEY_HANDLE_INVALID or
 * CKR_OBJECT_HANDLE_INVALID (AAM_E_NOTFOUND); look the object up again and
 * retry.
 */
typedef CK_RV (*aam_p11_op)(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, void *ctx);
CK_RV aam_p11_run(aam_p11 *p, aam_p11_op op, void *ctx);

/*
 * Finds the one object of CLASS with LABEL (cached after the first call).
 * AAM_E_NOTFOUND if none, AAM_E_EXISTS if several carry the label.
 */
int aam_p11_find(aam_p11 *p, CK_OBJECT_CLASS cls, const char *label, CK_OBJECT_HANDLE *out);
/* Drops cached handles (after creating or destroying objects). */
void aam_p11_forget(aam_p11 *p);
/* Drops the cached handle of one (CLASS, LABEL), after destroying or relabelling it. */
void aam_p11_forget_label(aam_p11 *p, CK_OBJECT_CLASS cls, const char *label);

/*
 * An uncached search: up to MAX handles of objects matching TMPL into OUT,
 * the number found (at most MAX) into *N.  For start-up checks and admin
 * operations only, never for a request path.
 */
int aam_p11_find_all(aam_p11 *p, const CK_ATTRIBUTE *tmpl, CK_ULONG ntmpl, CK_OBJECT_HANDLE *out,
                     size_t max, size_t *n);

/* C_DestroyObject, then drops every cached handle (a handle may be reused). */
int aam_p11_destroy(aam_p11 *p, CK_OBJECT_HANDLE obj);

/*
 * Reads one attribute into BUF (capacity CAP); its length into *LEN.
 * AAM_E_PERM for CKR_ATTRIBUTE_SENSITIVE (the token refuses to reveal it),
 * AAM_E_NOTFOUND when the object has no such attribute, AAM_E_TOOBIG when
 * CAP is too small (*LEN then holds the size needed).
 */
int aam_p11_get_attr(aam_p11 *p, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type, void *buf,
                     size_t cap, size_t *len);

/* LEN random bytes from the token's generator. */
int aam_p11_random(aam_p11 *p, uint8_t *out, size_t len);

/* HMAC-SHA256 of DATA computed inside the token: C_Sign(CKM_SHA256_HMAC). */
int aam_p11_hmac_sha256(aam_p11 *p, CK_OBJECT_HANDLE key, const uint8_t *data, size_t len,
                        uint8_t mac[32]);

/* ECDSA over a 32-byte digest with a private key; SIG gets raw r||s. */
int aam_p11_sign_ecdsa_p256(aam_p11 *p, CK_OBJECT_HANDLE key, const uint8_t digest[32],
                            uint8_t sig[64]);

/*
 * The uncompressed P-256 point (65 bytes, 0x04||x||y) of a public key
 * object, unwrapping the DER OCTET STRING that CKA_EC_POINT holds.
 */
int aam_p11_ec_point(aam_p11 *p, CK_OBJECT_HANDLE pub, uint8_t point[65]);

/* Reads a boolean attribute (AAM_E_NOTFOUND when the object has none). */
int aam_p11_get_bool(aam_p11 *p, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type, bool *out);

/* Maps a CK_RV to an aam_err code, and to a short name for logs. */
int aam_p11_err(CK_RV rv);
const char *aam_p11_rv_name(CK_RV rv);

#endif
