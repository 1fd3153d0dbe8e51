/*
 * TPM 2.0 evidence verification, in two rounds (docs/ATTEST.md):
 *
 * begin: the EK certificate chains to a configured manufacturer CA; the
 *   EK public area is the certificate's key and is the one registered (or
 *   its CA is); the AK is a restricted, fixedTPM, fixedParent signing key;
 *   the agent's key is a fixedTPM, sign-only ECC P-256 key; the AK
 *   certified that key (TPM2_Certify with the challenge nonce); then a
 *   credential for the AK's name is made for the EK (MakeCredential in
 *   software) with a fresh secret, and a quote nonce is chosen.
 *
 * finish: the agent activated the credential (the secret matches, which
 *   proves the AK lives in the TPM that holds the EK); the quote is signed
 *   by the AK, is a TPM quote over the quote nonce and the requested PCRs,
 *   and the reported PCR values hash to its digest and satisfy the
 *   registration's policy.
 *
 * Each check has its own enum attest_err.  Nothing here talks to the
 * network, the database or a clock: the caller supplies the registration
 * and keeps the session.
 */
#ifndef AAM_ATTEST_TPM_VERIFY_H
#define AAM_ATTEST_TPM_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "attest/errors.h"
#include "attest/registry.h"
#include "attest/tpm_mu.h"
#include "common/buf.h"
#include "common/jose.h"

#define ATTEST_NONCE_LEN 32u

/* Manufacturer CAs that EK certificates must chain to. */
struct attest_ek_trust;

/*
 * Loads every certificate of the PEM files PATHS: self-signed ones become
 * trust anchors, the others intermediates.  ERR receives a sentence
 * naming the file on failure (AAM_E_CONFIG / AAM_E_NOTFOUND).
 */
int attest_ek_trust_load(const char *const *paths, size_t n, struct attest_ek_trust **out,
                         char *err, size_t errlen);
void attest_ek_trust_free(struct attest_ek_trust *t);

struct attest_tpm_begin_in {
	const uint8_t *nonce; /* the challenge nonce, already consumed */
	size_t nonce_len;
	const uint8_t *ek_cert, *ek_pub, *ak_pub, *key_pub, *certify_info, *certify_sig;
	size_t ek_cert_len, ek_pub_len, ak_pub_len, key_pub_len, certify_info_len, certify_sig_len;
};

/* What the server remembers between begin and finish. */
struct attest_tpm_session {
	int64_t reg_id;
	char spiffe_id[AAM_SPIFFE_ID_BUFSZ];
	char audience[ATTEST_AUDIENCE_MAX + 1];
	uint8_t secret[32];
	uint8_t quote_nonce[ATTEST_NONCE_LEN];
	uint32_t pcr_mask;
	uint8_t ak_pub[2 + TPM_MAX_PUBLIC];
	size_t ak_pub_len;
	struct aam_jwk key; /* the certified key; key.jkt binds the token */
};

/* What begin sends back (besides the session id). */
struct attest_tpm_challenge {
	struct aam_buf credential_blob;  /* TPM2B_ID_OBJECT */
	struct aam_buf encrypted_secret; /* TPM2B_ENCRYPTED_SECRET */
};

void attest_tpm_challenge_init(struct attest_tpm_challenge *c);
void attest_tpm_challenge_uninit(struct attest_tpm_challenge *c);

/*
 * Round one.  On ATTEST_OK, SESS is filled (secret, quote nonce, AK, key,
 * PCR selection from REG; the caller sets spiffe_id/audience) and CH holds
 * the credential challenge.  SESS must be released with
 * attest_tpm_session_uninit whatever the outcome.
 */
enum attest_err attest_tpm_begin(const struct attest_ek_trust *trust, const struct attest_reg *reg,
                                 const struct attest_tpm_begin_in *in,
                                 struct attest_tpm_session *sess, struct attest_tpm_challenge *ch);

struct attest_tpm_finish_in {
	const uint8_t *secret, *quote, *quote_sig;
	size_t secret_len, quote_len, quote_sig_len;
	/* Reported SHA-256 bank values: PCR i is present when bit i of pcr_present is set. */
	uint32_t pcr_present;
	uint8_t pcrs[ATTEST_PCR_COUNT][32];
};

/* Round two, against the session of round one and the registration read afresh. */
enum attest_err attest_tpm_finish(const struct attest_tpm_session *sess,
                                  const struct attest_reg *reg,
                                  const struct attest_tpm_finish_in *in);

void attest_tpm_session_uninit(struct attest_tpm_session *sess);

#endif /* AAM_ATTEST_TPM_VERIFY_H */
