/*
 * Stable codes, messages and HTTP statuses of aam-attest's outcomes.
 */
#include "attest/errors.h"

struct attest_err_info {
	const char *code;
	const char *message;
	unsigned status;
};

static const struct attest_err_info infos[ATTEST_E__MAX] = {
        [ATTEST_OK] = {"ok", "Success.", 200},
        [ATTEST_E_INVALID_REQUEST] = {"invalid_request", "The request is malformed.", 400},
        [ATTEST_E_MALFORMED_EVIDENCE] = {"malformed_evidence",
                                         "A TPM structure in the evidence is malformed.", 400},
        [ATTEST_E_NONCE_INVALID] = {"nonce_invalid",
                                    "The nonce is unknown, expired or already used.", 403},
        [ATTEST_E_SESSION_INVALID] = {"session_invalid",
                                      "The attestation session is unknown or expired.", 403},
        [ATTEST_E_REGISTRATION_UNKNOWN] = {"registration_unknown",
                                           "No workload is registered under this identity.", 403},
        [ATTEST_E_REGISTRATION_REVOKED] = {"registration_revoked",
                                           "The workload registration is revoked.", 403},
        [ATTEST_E_METHOD_MISMATCH] = {"method_mismatch",
                                      "The workload is registered for another attestation "
                                      "method.",
                                      403},
        [ATTEST_E_AUDIENCE] = {"audience_not_allowed",
                               "The audience is not allowed for this workload.", 403},
        [ATTEST_E_EK_UNTRUSTED] = {"ek_untrusted",
                                   "The EK certificate does not chain to a trusted "
                                   "manufacturer CA.",
                                   403},
        [ATTEST_E_EK_NOT_REGISTERED] = {"ek_not_registered",
                                        "The EK is not the one registered for this workload.", 403},
        [ATTEST_E_EK_MISMATCH] = {"ek_mismatch",
                                  "The EK public key does not match the EK certificate.", 403},
        [ATTEST_E_EK_UNSUPPORTED] = {"ek_unsupported",
                                     "The EK type or parameters are not supported.", 400},
        [ATTEST_E_AK_ATTRIBUTES] = {"ak_attributes",
                                    "The attestation key must be a restricted, fixedTPM, "
                                    "fixedParent signing key.",
                                    403},
        [ATTEST_E_KEY_ATTRIBUTES] = {"key_attributes",
                                     "The certified key must be a fixedTPM, sign-only ECC "
                                     "P-256 key.",
                                     403},
        [ATTEST_E_CERTIFY_INVALID] = {"certify_invalid",
                                      "The key certification by the attestation key is "
                                      "invalid.",
                                      403},
        [ATTEST_E_CREDENTIAL_MISMATCH] = {"credential_mismatch",
                                          "The activated credential is wrong.", 403},
        [ATTEST_E_QUOTE_INVALID] = {"quote_invalid", "The quote is not a TPM quote.", 403},
        [ATTEST_E_QUOTE_SIGNATURE] = {"quote_signature", "The quote signature does not verify.",
                                      403},
        [ATTEST_E_QUOTE_PCR_SELECTION] = {"quote_pcr_selection",
                                          "The quote covers other PCRs than requested.", 403},
        [ATTEST_E_PCR_DIGEST] = {"pcr_digest_mismatch",
                                 "The reported PCR values do not match the quoted digest.", 403},
        [ATTEST_E_PCR_MISMATCH] = {"pcr_mismatch",
                                   "The PCR values do not match the workload's PCR policy.", 403},
        [ATTEST_E_KEY_MISMATCH] = {"key_mismatch",
                                   "The key is not the one registered for this workload.", 403},
        [ATTEST_E_SIGNATURE_INVALID] = {"signature_invalid",
                                        "The proof-of-possession signature does not verify.", 403},
        [ATTEST_E_JOIN_TOKEN_INVALID] = {"join_token_invalid", "The join token is not valid.", 403},
        [ATTEST_E_JOIN_TOKEN_EXPIRED] = {"join_token_expired", "The join token has expired.", 403},
        [ATTEST_E_JOIN_TOKEN_USED] = {"join_token_used", "The join token was already used.", 403},
        [ATTEST_E_RATE_LIMITED] = {"rate_limited",
                                   "Too many failed attempts from this address; retry later.", 429},
        [ATTEST_E_UNAVAILABLE] = {"unavailable",
                                  "The service is temporarily unavailable; retry later.", 503},
        [ATTEST_E_INTERNAL] = {"internal", "The request could not be processed.", 500},
};

static const struct attest_err_info *
info(enum attest_err e)
{
	if ((unsigned)e >= ATTEST_E__MAX)
		return &infos[ATTEST_E_INTERNAL];
	return &infos[e];
}

const char *
attest_err_code(enum attest_err e)
{
	return info(e)->code;
}

const char *
attest_err_message(enum attest_err e)
{
	return info(e)->message;
}

unsigned
attest_err_status(enum attest_err e)
{
	return info(e)->status;
}
