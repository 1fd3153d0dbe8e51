/*
 * The agent's TPM 2.0 side, over tss2 ESYS and a TCTI string.
 *
 * Objects (all ECC NIST P-256 unless said otherwise):
 *   - a storage primary (the TCG SRK template) in the owner hierarchy,
 *     re-created whenever a child must be loaded: it is derived from the
 *     owner seed, so it is the same key every time and needs no storage;
 *   - the signing key (sign-only, fixedTPM|fixedParent|sensitiveDataOrigin
 *     |userWithAuth, ECDSA-SHA256) and the attestation key (the same plus
 *     restricted), both children of the storage primary, created once and
 *     kept as TPM2B_PUBLIC / TPM2B_PRIVATE files in the state folder (the
 *     private part is wrapped by the storage primary, so only this TPM can
 *     load it): restarts reuse the same keys;
 *   - the endorsement key: the RSA 2048 EK of the TCG EK credential
 *     profile (template L-1), either the persistent one at 0x81010001 when
 *     its modulus is the one in the NV certificate, or created as a
 *     primary in the endorsement hierarchy from that template.
 *
 * A TPM without a resource manager (swtpm, /dev/tpm0) holds three
 * transient objects at most.  The signing key stays loaded while the
 * handle is open; an attestation adds the AK and, for the credential
 * activation only, the EK, and every path flushes what it loaded.
 *
 * All functions are thread-safe (one mutex around the ESYS context).
 * Errors fill MSG with a sentence naming the TPM command and the decoded
 * response code.
 */
#ifndef AAM_AGENT_TPM_H
#define AAM_AGENT_TPM_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define AGENT_TPM_NV_EK_CERT_RSA 0x01c00002u
#define AGENT_TPM_EK_PERSISTENT  0x81010001u
#define AGENT_TPM_MAX_PCR        24u
#define AGENT_TPM_MSG_MAX        256u

struct agent_tpm;

/*
 * Connects through TCTI, then loads the signing key from STATE_DIR,
 * creating both keys (and the folder, 0700) the first time.  AAM_E_HSM
 * for TPM failures, AAM_E_IO for the folder, AAM_E_PARSE for blob files
 * that are not TPM structures.
 */
int agent_tpm_open(const char *tcti, const char *state_dir, struct agent_tpm **out, char *msg,
                   size_t msglen);
/* Flushes every transient object this handle loaded and disconnects. */
void agent_tpm_close(struct agent_tpm *t);

/* The signing key's public point. */
void agent_tpm_key_xy(const struct agent_tpm *t, uint8_t x[32], uint8_t y[32]);

/* ECDSA P-256 over DIGEST with the signing key (TPM2_Sign, null ticket). */
int agent_tpm_sign(struct agent_tpm *t, const uint8_t digest[32], uint8_t sig[64], char *msg,
                   size_t msglen);

/* The RSA EK certificate from NV (DER, trailing zero padding removed). */
int agent_tpm_ek_cert(struct agent_tpm *t, struct aam_buf *der, char *msg, size_t msglen);

/* Round one's evidence, each field in the wire form aam-attest expects. */
struct agent_tpm_evidence {
	struct aam_buf ek_cert;      /* DER */
	struct aam_buf ek_pub;       /* TPM2B_PUBLIC */
	struct aam_buf ak_pub;       /* TPM2B_PUBLIC */
	struct aam_buf key_pub;      /* TPM2B_PUBLIC */
	struct aam_buf certify_info; /* TPM2B_ATTEST */
	struct aam_buf certify_sig;  /* TPMT_SIGNATURE */
};

void agent_tpm_evidence_init(struct agent_tpm_evidence *ev);
void agent_tpm_evidence_uninit(struct agent_tpm_evidence *ev);

/*
 * Starts an attestation: loads the AK (it stays loaded until
 * agent_tpm_end), reads the EK certificate and the EK's public area, and
 * certifies the signing key with the AK over NONCE (qualifyingData).
 */
int agent_tpm_begin(struct agent_tpm *t, const uint8_t *nonce, size_t nlen,
                    struct agent_tpm_evidence *ev, char *msg, size_t msglen);

/*
 * TPM2_ActivateCredential(AK, EK) on the server's credential: BLOB is a
 * TPM2B_ID_OBJECT, SECRET a TPM2B_ENCRYPTED_SECRET.  OUT receives the
 * recovered credential.  AAM_E_PARSE when the blobs do not unmarshal.
 */
int agent_tpm_activate(struct agent_tpm *t, const uint8_t *blob, size_t blen, const uint8_t *secret,
                       size_t slen, struct aam_buf *out, char *msg, size_t msglen);

/*
 * TPM2_Quote by the AK over NONCE and the SHA-256 PCRs in MASK (bit i =
 * PCR i), and the values of those PCRs, checked against the quote's
 * digest (read again when a PCR moved in between).  QUOTE receives a
 * TPM2B_ATTEST, SIG a TPMT_SIGNATURE, VALUES[i] the value of PCR i.
 */
int agent_tpm_quote(struct agent_tpm *t, const uint8_t *nonce, size_t nlen, uint32_t mask,
                    struct aam_buf *quote, struct aam_buf *sig,
                    uint8_t values[AGENT_TPM_MAX_PCR][32], char *msg, size_t msglen);

/* Ends an attestation: flushes the AK.  Safe to call twice. */
void agent_tpm_end(struct agent_tpm *t);

#endif /* AAM_AGENT_TPM_H */
