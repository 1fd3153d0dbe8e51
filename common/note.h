/*
 * C2SP signed-note and C2SP tlog-checkpoint, with ECDSA P-256 signatures
 * (signature type 0x02, as transparency-dev/witness uses them).
 *
 * A signed note is
 *
 *     <text, valid UTF-8, no control characters but '\n', ending in '\n'>
 *     <blank line>
 *     — <key name> <base64(4-byte key ID || signature)>\n     (one or more)
 *
 * with an em dash (U+2014) and standard, padded base64.  For type 0x02
 * the key ID is the first four bytes (big-endian) of SHA-256 over the
 * DER SubjectPublicKeyInfo of the P-256 key, and the signature is an
 * ASN.1 DER ECDSA signature over SHA-256(text).  A verifier key string
 * ("vkey") is  <name>+<8 lowercase hex digits of the key ID>+<base64(0x02 || DER SPKI)>.
 *
 * A checkpoint is a note whose text is
 *
 *     <origin>\n<decimal tree size, no leading zeros>\n<base64 root hash>\n[<extension line>\n...]
 *
 * This file and note.c depend only on libc, OpenSSL libcrypto and
 * include/aam/err.h, because aam-audit-verify compiles them on their own.
 *
 * Errors: AAM_E_PARSE malformed note, AAM_E_TOOBIG over a limit,
 * AAM_E_NOTFOUND no signature from any known key ("unknown key"),
 * AAM_E_CRYPTO a known key's signature does not verify ("bad signature"),
 * AAM_E_UNSUPPORTED a key that is not ECDSA P-256.  Functions that take
 * `const char **why` set it (when non-NULL) to a static sentence naming
 * the first problem found.
 */
#ifndef AAM_COMMON_NOTE_H
#define AAM_COMMON_NOTE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define AAM_NOTE_MAX_LEN       (16 * 1024) /* whole signed note, bytes */
#define AAM_NOTE_MAX_SIGS      16          /* signature lines per note */
#define AAM_NOTE_NAME_MAX      255         /* key name, bytes */
#define AAM_NOTE_SIG_MAX       512         /* decoded signature line payload, bytes */
#define AAM_NOTE_ALG_ECDSA     0x02
#define AAM_NOTE_ECDSA_SIG_MAX 72 /* longest DER ECDSA P-256 signature */
#define AAM_NOTE_VKEY_MAX      512
#define AAM_NOTE_ORIGIN_MAX    255

/* A named, pinned ECDSA P-256 public key. */
struct aam_note_verifier {
	char name[AAM_NOTE_NAME_MAX + 1];
	uint32_t key_id;
	EVP_PKEY *pkey; /* owned reference */
};

/*
 * Produces a DER ECDSA signature over a SHA-256 digest.  On entry
 * *DER_LEN is the capacity of DER_SIG (AAM_NOTE_ECDSA_SIG_MAX); on
 * success it is the signature length.  The vault implements this with its
 * HSM (converting the token's raw r||s to DER); tests use
 * aam_note_sign_with_pkey.
 */
typedef int (*aam_note_sign_fn)(void *ctx, const uint8_t digest[32], uint8_t *der_sig,
                                size_t *der_len);

/* An aam_note_sign_fn over an OpenSSL private key: CTX is the EVP_PKEY *. */
int aam_note_sign_with_pkey(void *ctx, const uint8_t digest[32], uint8_t *der_sig, size_t *der_len);

/* Strict standard base64 with padding, as the note formats use it. */
/* Writes a NUL-terminated encoding; CAP must hold 4*ceil(len/3)+1 bytes. */
int aam_note_b64_encode(const uint8_t *in, size_t len, char *out, size_t cap, size_t *out_len);
/*
 * Rejects characters outside the alphabet, missing or misplaced padding
 * and non-zero trailing bits, so every value has exactly one encoding.
 */
int aam_note_b64_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *out_len);

/* Whether NAME is a valid key name: non-empty UTF-8, no spaces, no '+'. */
int aam_note_name_valid(const char *name, size_t len);

/* First four bytes (big-endian) of SHA-256(DER SPKI); AAM_E_UNSUPPORTED unless P-256. */
int aam_note_key_id(EVP_PKEY *pkey, uint32_t *id);

/* Takes its own reference to PKEY. */
int aam_note_verifier_init(struct aam_note_verifier *v, const char *name, EVP_PKEY *pkey);
/* From a PEM "PUBLIC KEY" (SubjectPublicKeyInfo). */
int aam_note_verifier_from_pem(struct aam_note_verifier *v, const char *name, const char *pem,
                               size_t len);
/* From a vkey string; the key ID in it must match the key. */
int aam_note_verifier_from_vkey(struct aam_note_verifier *v, const char *vkey, size_t len,
                                const char **why);
void aam_note_verifier_uninit(struct aam_note_verifier *v);

/* Writes the NUL-terminated vkey string for NAME and PKEY. */
int aam_note_vkey_format(const char *name, EVP_PKEY *pkey, char *out, size_t cap, size_t *out_len);

/*
 * Signs TEXT (which must be a valid note text) with one signature line
 * by KEY_NAME / KEY_ID and writes the NUL-terminated note to OUT.
 */
int aam_note_sign(const char *text, size_t text_len, const char *key_name, uint32_t key_id,
                  aam_note_sign_fn sign, void *ctx, char *out, size_t cap, size_t *out_len);

/*
 * Parses the signed note MSG and checks its signatures against the NV
 * pinned verifiers.  Signature lines whose name and key ID do not both
 * match a verifier are ignored; AAM_OK needs at least one known key's
 * signature, and every known key's signature present must verify.  On
 * success *TEXT_LEN (optional) is the length of the signed text, a prefix
 * of MSG, and *BY (optional) the verifier that signed.
 */
int aam_note_verify(const char *msg, size_t len, const struct aam_note_verifier *v, size_t nv,
                    size_t *text_len, const struct aam_note_verifier **by, const char **why);

/* A parsed checkpoint body. */
struct aam_note_checkpoint {
	char origin[AAM_NOTE_ORIGIN_MAX + 1];
	uint64_t size;
	uint8_t root[32];
	size_t ext_count; /* extension lines after the root (kept in the note, not here) */
};

/*
 * Writes the NUL-terminated checkpoint text.  EXT (may be NULL) is zero or
 * more non-empty extension lines, each ending in '\n'.
 */
int aam_note_checkpoint_format(const char *origin, uint64_t size, const uint8_t root[32],
                               const char *ext, char *out, size_t cap, size_t *out_len);
/* Parses checkpoint TEXT (the note text, without signatures). */
int aam_note_checkpoint_parse(const char *text, size_t len, struct aam_note_checkpoint *cp,
                              const char **why);
/* Formats and signs a checkpoint (no extension lines): a whole signed note in OUT. */
int aam_note_checkpoint_sign(const char *origin, uint64_t size, const uint8_t root[32],
                             const char *key_name, uint32_t key_id, aam_note_sign_fn sign,
                             void *ctx, char *out, size_t cap, size_t *out_len);
/* aam_note_verify, then aam_note_checkpoint_parse of the signed text. */
int aam_note_checkpoint_open(const char *msg, size_t len, const struct aam_note_verifier *v,
                             size_t nv, struct aam_note_checkpoint *cp, const char **why);

#endif /* AAM_COMMON_NOTE_H */
