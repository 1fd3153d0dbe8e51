/*
 * The TPM 2.0 cryptography aam-attest does in software with OpenSSL:
 * public areas as OpenSSL keys, signatures by a TPM key over TPMS_ATTEST,
 * the KDFs of TPM 2.0 Part 1 section 11.4.10, and TPM2_MakeCredential
 * (Part 1 section 24, "Credential Protection"), so the server can build a
 * credential challenge for an attestation key without a TPM of its own.
 */
#ifndef AAM_ATTEST_TPM_CRYPTO_H
#define AAM_ATTEST_TPM_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "attest/tpm_mu.h"
#include "common/buf.h"

/*
 * An OpenSSL public key for an RSA or ECC (NIST P-256 or P-384) public
 * area.  AAM_E_UNSUPPORTED for other curves or key sizes, AAM_E_PARSE for
 * a point off the curve or an inconsistent modulus.
 */
int attest_tpm_pubkey(const struct attest_tpm_public *pub, EVP_PKEY **out);

/*
 * Verifies SIG over MSG (the marshalled TPMS_ATTEST) with the key of PUB
 * (already converted to KEY).  The signature's algorithm must suit the
 * key type and, when the key has a fixed scheme, be that scheme; the hash
 * must be SHA-256, SHA-384 or SHA-512.  AAM_OK or AAM_E_DENIED.
 */
int attest_tpm_verify(const struct attest_tpm_public *pub, EVP_PKEY *key,
                      const struct attest_tpm_signature *sig, const uint8_t *msg, size_t len);

/*
 * KDFa (SP 800-108 counter mode with HMAC): BITS bits into OUT.  LABEL is
 * a C string; its terminating NUL is part of the input, as the TPM
 * specification requires.
 */
int attest_tpm_kdfa(uint16_t hash, const uint8_t *key, size_t keylen, const char *label,
                    const uint8_t *ctx_u, size_t ulen, const uint8_t *ctx_v, size_t vlen,
                    size_t bits, uint8_t *out);

/* KDFe (SP 800-56A concatenation KDF), the ECC counterpart. */
int attest_tpm_kdfe(uint16_t hash, const uint8_t *z, size_t zlen, const char *label,
                    const uint8_t *party_u, size_t ulen, const uint8_t *party_v, size_t vlen,
                    size_t bits, uint8_t *out);

#define ATTEST_TPM_CREDENTIAL_MAX 64u

/*
 * TPM2_MakeCredential for the object named NAME (the attestation key),
 * protected by the endorsement key EK (RSA with OAEP, or ECC with
 * ECDH + KDFe; its symmetric parameters must be AES-CFB).  The credential
 * SECRET (1..64 bytes) is what TPM2_ActivateCredential gives back.
 * Appends the marshalled TPM2B_ID_OBJECT to ID_OBJECT and the
 * TPM2B_ENCRYPTED_SECRET to ENC_SECRET.  Intermediate keys are wiped.
 */
int attest_tpm_make_credential(const struct attest_tpm_public *ek, const uint8_t *name,
                               size_t namelen, const uint8_t *secret, size_t secretlen,
                               struct aam_buf *id_object, struct aam_buf *enc_secret);

#endif /* AAM_ATTEST_TPM_CRYPTO_H */
