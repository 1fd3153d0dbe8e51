/*
 * A small, strict unmarshaller for the few TPM 2.0 structures aam-attest
 * reads (TPM 2.0 Library, Part 2: Structures): TPM2B_PUBLIC / TPMT_PUBLIC,
 * TPMS_ATTEST (certify and quote), TPMT_SIGNATURE, and the marshalling of
 * TPM2B_ID_OBJECT / TPM2B_ENCRYPTED_SECRET that MakeCredential produces.
 *
 * The server has no TPM and does not link tss2: every byte comes from an
 * agent, so every length is checked against both the bytes left and the
 * largest value the specification allows, unknown algorithms and selector
 * values are refused rather than skipped, and a structure must use its
 * bytes exactly (nothing left over, nothing missing).  Parsed structures
 * point into the caller's buffer; they copy nothing.
 */
#ifndef AAM_ATTEST_TPM_MU_H
#define AAM_ATTEST_TPM_MU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Algorithm identifiers (Part 2, table 9). */
#define TPM_ALG_RSA            0x0001u
#define TPM_ALG_SHA1           0x0004u
#define TPM_ALG_HMAC           0x0005u
#define TPM_ALG_AES            0x0006u
#define TPM_ALG_KEYEDHASH      0x0008u
#define TPM_ALG_XOR            0x000Au
#define TPM_ALG_SHA256         0x000Bu
#define TPM_ALG_SHA384         0x000Cu
#define TPM_ALG_SHA512         0x000Du
#define TPM_ALG_NULL           0x0010u
#define TPM_ALG_SM3_256        0x0012u
#define TPM_ALG_SM4            0x0013u
#define TPM_ALG_RSASSA         0x0014u
#define TPM_ALG_RSAES          0x0015u
#define TPM_ALG_RSAPSS         0x0016u
#define TPM_ALG_OAEP           0x0017u
#define TPM_ALG_ECDSA          0x0018u
#define TPM_ALG_ECDH           0x0019u
#define TPM_ALG_ECDAA          0x001Au
#define TPM_ALG_SM2            0x001Bu
#define TPM_ALG_ECSCHNORR      0x001Cu
#define TPM_ALG_ECMQV          0x001Du
#define TPM_ALG_KDF1_SP800_56A 0x0020u
#define TPM_ALG_KDF2           0x0021u
#define TPM_ALG_KDF1_SP800_108 0x0022u
#define TPM_ALG_ECC            0x0023u
#define TPM_ALG_SYMCIPHER      0x0025u
#define TPM_ALG_CAMELLIA       0x0026u
#define TPM_ALG_CFB            0x0043u

#define TPM_ECC_NIST_P256 0x0003u
#define TPM_ECC_NIST_P384 0x0004u

/* TPMA_OBJECT bits (Part 2, table 31). */
#define TPMA_OBJECT_FIXEDTPM             (1u << 1)
#define TPMA_OBJECT_STCLEAR              (1u << 2)
#define TPMA_OBJECT_FIXEDPARENT          (1u << 4)
#define TPMA_OBJECT_SENSITIVEDATAORIGIN  (1u << 5)
#define TPMA_OBJECT_USERWITHAUTH         (1u << 6)
#define TPMA_OBJECT_ADMINWITHPOLICY      (1u << 7)
#define TPMA_OBJECT_NODA                 (1u << 10)
#define TPMA_OBJECT_ENCRYPTEDDUPLICATION (1u << 11)
#define TPMA_OBJECT_RESTRICTED           (1u << 16)
#define TPMA_OBJECT_DECRYPT              (1u << 17)
#define TPMA_OBJECT_SIGN                 (1u << 18)
#define TPMA_OBJECT_X509SIGN             (1u << 19)

#define TPM_GENERATED_VALUE   0xff544347u
#define TPM_ST_ATTEST_CERTIFY 0x8017u
#define TPM_ST_ATTEST_QUOTE   0x8018u

/* Size limits from the reference implementation's TPM profile. */
#define TPM_MAX_DIGEST     64u  /* SHA-512 */
#define TPM_MAX_RSA_BYTES  512u /* RSA 4096 */
#define TPM_MAX_ECC_BYTES  66u  /* P-521 */
#define TPM_MAX_NAME       (2u + TPM_MAX_DIGEST)
#define TPM_MAX_PCR_SELECT 4u /* 32 PCRs */
#define TPM_MAX_PCR_BANKS  16u
#define TPM_MAX_PUBLIC     1024u /* a TPMT_PUBLIC is never close to this */
#define TPM_MAX_ATTEST     2048u

/* A byte range inside the caller's buffer. */
struct attest_tpm_bytes {
	const uint8_t *p;
	size_t n;
};

struct attest_tpm_public {
	uint16_t type; /* TPM_ALG_RSA or TPM_ALG_ECC */
	uint16_t name_alg;
	uint32_t attributes;
	struct attest_tpm_bytes auth_policy;
	uint16_t sym_alg; /* TPM_ALG_NULL or a block cipher */
	uint16_t sym_bits;
	uint16_t sym_mode;
	uint16_t scheme;      /* TPM_ALG_NULL or a signing/encryption scheme */
	uint16_t scheme_hash; /* the scheme's hash (TPM_ALG_NULL when none) */
	/* RSA */
	uint16_t rsa_bits;
	uint32_t rsa_exponent; /* 0 means 65537 */
	struct attest_tpm_bytes rsa_n;
	/* ECC */
	uint16_t curve;
	uint16_t kdf;
	uint16_t kdf_hash;
	struct attest_tpm_bytes ecc_x, ecc_y;
	/* The marshalled TPMT_PUBLIC, which the object's name hashes. */
	struct attest_tpm_bytes area;
};

struct attest_tpm_pcr_selection {
	uint32_t count;
	struct {
		uint16_t hash;
		uint8_t size;
		uint8_t select[TPM_MAX_PCR_SELECT];
	} banks[TPM_MAX_PCR_BANKS];
};

struct attest_tpm_attest {
	uint32_t magic;
	uint16_t type;
	struct attest_tpm_bytes qualified_signer;
	struct attest_tpm_bytes extra_data;
	uint64_t clock;
	uint32_t reset_count, restart_count;
	uint8_t safe;
	uint64_t firmware_version;
	/* TPM_ST_ATTEST_CERTIFY */
	struct attest_tpm_bytes certified_name, certified_qualified_name;
	/* TPM_ST_ATTEST_QUOTE */
	struct attest_tpm_pcr_selection pcr_select;
	struct attest_tpm_bytes pcr_digest;
	/* The marshalled TPMS_ATTEST, which the signature covers. */
	struct attest_tpm_bytes area;
};

struct attest_tpm_signature {
	uint16_t sig_alg; /* TPM_ALG_RSASSA, TPM_ALG_RSAPSS or TPM_ALG_ECDSA */
	uint16_t hash;
	struct attest_tpm_bytes rsa_sig;
	struct attest_tpm_bytes ecdsa_r, ecdsa_s;
};

/*
 * Each parser returns AAM_OK, AAM_E_PARSE (truncated, trailing bytes,
 * inconsistent sizes, unknown selector) or AAM_E_TOOBIG (a size over the
 * specification's maximum), and fills *OUT only on success.
 */

/* A TPM2B_PUBLIC (u16 size, TPMT_PUBLIC) of RSA or ECC type. */
int attest_tpm_public_parse(const uint8_t *p, size_t n, struct attest_tpm_public *out);

/*
 * A TPM2B_ATTEST (u16 size, TPMS_ATTEST) or a bare TPMS_ATTEST as
 * tpm2_certify -o and tpm2_quote -m write it; the two are told apart by
 * the TPM_GENERATED magic, which cannot be a plausible TPM2B size.  Only
 * certify and quote attestations are accepted.
 */
int attest_tpm_attest_parse(const uint8_t *p, size_t n, struct attest_tpm_attest *out);

/*
 * The TPMS_ATTEST bytes of a TPM2B_ATTEST or bare TPMS_ATTEST (as above)
 * without parsing them, so a signature can be checked before anything
 * inside is trusted.
 */
int attest_tpm_attest_unwrap(const uint8_t *p, size_t n, struct attest_tpm_bytes *area);

/* A TPMT_SIGNATURE with an RSASSA, RSAPSS or ECDSA signature. */
int attest_tpm_signature_parse(const uint8_t *p, size_t n, struct attest_tpm_signature *out);

/* Digest size of a TPM hash algorithm; 0 for anything else. */
size_t attest_tpm_hash_size(uint16_t alg);

/*
 * The object's name: nameAlg (big-endian) || H_nameAlg(TPMT_PUBLIC).
 * OUT holds TPM_MAX_NAME bytes.  AAM_E_UNSUPPORTED for a name algorithm
 * other than SHA-256, SHA-384 or SHA-512.
 */
int attest_tpm_public_name(const struct attest_tpm_public *pub, uint8_t out[TPM_MAX_NAME],
                           size_t *outlen);

/* Whether PCR index I is selected in bank B of SEL. */
bool attest_tpm_pcr_selected(const struct attest_tpm_pcr_selection *sel, size_t bank, unsigned i);

#endif /* AAM_ATTEST_TPM_MU_H */
