/*
 * aam-attest's outcomes.  Every way an attestation can fail has its own
 * stable snake_case code, sent to the agent as
 * {"error":{"code":...,"message":...}} and written to the log and the
 * audit trail, so an operator can tell an untrusted EK from a replayed
 * nonce without reading server logs.  Append only: the codes are API.
 */
#ifndef AAM_ATTEST_ERRORS_H
#define AAM_ATTEST_ERRORS_H

enum attest_err {
	ATTEST_OK = 0,
	ATTEST_E_INVALID_REQUEST,      /* invalid_request: bad JSON, missing or mistyped field */
	ATTEST_E_MALFORMED_EVIDENCE,   /* malformed_evidence: a TPM structure does not unmarshal */
	ATTEST_E_NONCE_INVALID,        /* nonce_invalid: unknown, expired, replayed or misbound */
	ATTEST_E_SESSION_INVALID,      /* session_invalid: unknown or expired TPM session */
	ATTEST_E_REGISTRATION_UNKNOWN, /* registration_unknown */
	ATTEST_E_REGISTRATION_REVOKED, /* registration_revoked */
	ATTEST_E_METHOD_MISMATCH,      /* method_mismatch: registered for another method */
	ATTEST_E_AUDIENCE,             /* audience_not_allowed */
	ATTEST_E_EK_UNTRUSTED,         /* ek_untrusted: EK certificate chain does not verify */
	ATTEST_E_EK_NOT_REGISTERED,    /* ek_not_registered: trusted EK, but not this workload's */
	ATTEST_E_EK_MISMATCH,          /* ek_mismatch: EK public is not the certificate's key */
	ATTEST_E_EK_UNSUPPORTED,       /* ek_unsupported: EK type or parameters not supported */
	ATTEST_E_AK_ATTRIBUTES,        /* ak_attributes */
	ATTEST_E_KEY_ATTRIBUTES,       /* key_attributes */
	ATTEST_E_CERTIFY_INVALID,      /* certify_invalid */
	ATTEST_E_CREDENTIAL_MISMATCH,  /* credential_mismatch: wrong activated secret */
	ATTEST_E_QUOTE_INVALID,        /* quote_invalid: not a quote, wrong magic */
	ATTEST_E_QUOTE_SIGNATURE,      /* quote_signature */
	ATTEST_E_QUOTE_PCR_SELECTION,  /* quote_pcr_selection */
	ATTEST_E_PCR_DIGEST,           /* pcr_digest_mismatch: values do not hash to the quote */
	ATTEST_E_PCR_MISMATCH,         /* pcr_mismatch: values differ from the PCR policy */
	ATTEST_E_KEY_MISMATCH,         /* key_mismatch: not the registered key */
	ATTEST_E_SIGNATURE_INVALID,    /* signature_invalid */
	ATTEST_E_JOIN_TOKEN_INVALID,   /* join_token_invalid */
	ATTEST_E_JOIN_TOKEN_EXPIRED,   /* join_token_expired */
	ATTEST_E_JOIN_TOKEN_USED,      /* join_token_used */
	ATTEST_E_RATE_LIMITED,         /* rate_limited */
	ATTEST_E_UNAVAILABLE,          /* unavailable: signer or state full, retry later */
	ATTEST_E_INTERNAL,             /* internal */
	ATTEST_E__MAX
};

/* The stable code; never NULL. */
const char *attest_err_code(enum attest_err e);
/* A fixed sentence for the error body; never quotes request values. */
const char *attest_err_message(enum attest_err e);
/* The HTTP status: 400, 403, 429, 500 or 503. */
unsigned attest_err_status(enum attest_err e);

#endif /* AAM_ATTEST_ERRORS_H */
