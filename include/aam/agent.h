/*
 * aam-agent client library: the workload side of AAM's attestation.
 *
 * An agent runtime holds one EC P-256 key in a TPM 2.0 (through tss2 ESYS
 * and a TCTI string) or in a PKCS#11 token.  The key never leaves its
 * device: this library asks the device to sign.  With it the library
 *
 *   - proves to aam-attest which workload it is (TPM: EK certificate,
 *     credential activation, quote and a TPM2_Certify of the key by an
 *     attestation key; PKCS#11: a signature over a fresh nonce) and
 *     receives a short-lived token bound to the key (cnf.jkt);
 *   - signs one DPoP proof (RFC 9449) per request with that key;
 *   - runs the sidecar: a loopback HTTP proxy that keeps a token fresh and
 *     forwards the agent code's requests to aam-gateway with
 *     "Authorization: DPoP <token>" and a fresh "DPoP" proof.
 *
 *   struct aam_agent_config c = {.tcti = "device:/dev/tpmrm0",
 *                                .state_dir = "/var/lib/aam/agent",
 *                                .attest_url = "http://127.0.0.1:4001",
 *                                .spiffe_id = "spiffe://prod/agent/x",
 *                                .audience = "http://127.0.0.1:4000"};
 *   struct aam_agent *a;  struct aam_agent_token t;  struct aam_agent_error e;
 *   aam_agent_open(&c, &a, &e);
 *   aam_agent_attest(a, &t, &e);   ... t.token ...
 *   aam_agent_token_uninit(&t);  aam_agent_close(a);
 *
 * Functions return codes from aam/err.h (AAM_OK = 0).  Those that take an
 * aam_agent_error fill it on failure: a stable snake_case CODE (aam-attest's
 * own error code when the server refused, such as "registration_revoked"
 * or "credential_mismatch", else a local one such as "tpm_error",
 * "attest_unreachable") and a message without any secret, token or PIN.
 *
 * Thread safety: an aam_agent may be used from several threads; device
 * operations are serialised inside (a TPM or a token session does one
 * thing at a time).
 */
#ifndef AAM_AGENT_H
#define AAM_AGENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AAM_AGENT_JKT_LEN   43u  /* RFC 7638 SHA-256 thumbprint, base64url */
#define AAM_AGENT_CODE_MAX  64u  /* error code, NUL included */
#define AAM_AGENT_MSG_MAX   256u /* error message, NUL included */
#define AAM_AGENT_TOKEN_MAX 8192u

struct aam_agent;
struct aam_agent_sidecar;

struct aam_agent_error {
	char code[AAM_AGENT_CODE_MAX];
	char message[AAM_AGENT_MSG_MAX];
	unsigned http_status; /* aam-attest's answer when it refused; 0 otherwise */
};

/* Exactly one of TCTI and PKCS11_KEY is set. */
struct aam_agent_config {
	/* TPM: a TCTI string ("device:/dev/tpmrm0", "swtpm:host=127.0.0.1,port=2321"). */
	const char *tcti;
	/* TPM: folder of the key blobs (created 0700).  They are wrapped by the
	 * TPM's storage key, so they are useless on any other TPM. */
	const char *state_dir;
	/* PKCS#11: RFC 7512 URI of the private key: token selection plus
	 * object= (CKA_LABEL); the public key object carries the same label. */
	const char *pkcs11_key;
	const char *pkcs11_module; /* module path or p11-kit module name */
	const char *pin_file;      /* user PIN file; NULL: the URI's pin-source */

	const char *attest_url; /* aam-attest's base URL */
	const char *spiffe_id;  /* the workload's registered SPIFFE ID */
	const char *audience;   /* audience requested for tokens */
	const char *ca_bundle;  /* CA file for https URLs; NULL: the system's */
	long timeout_ms;        /* per HTTP exchange with aam-attest; 0: 15 s */
};

/* Opens the key's device and loads (TPM: first creates) the key. */
int aam_agent_open(const struct aam_agent_config *cfg, struct aam_agent **out,
                   struct aam_agent_error *err);
/* Flushes every TPM object it loaded, closes the token.  NULL is fine. */
void aam_agent_close(struct aam_agent *a);

/* "tpm" or "pkcs11": the attestation method this agent uses. */
const char *aam_agent_method(const struct aam_agent *a);
/* The key's RFC 7638 thumbprint: what tokens are bound to (cnf.jkt). */
const char *aam_agent_jkt(const struct aam_agent *a);
/* The key's public JWK {"kty","crv","x","y"} as JSON text (malloc'd). */
int aam_agent_jwk_json(const struct aam_agent *a, char **out);
/*
 * TPM only: the EK certificate (DER, as read from NV index 0x01c00002,
 * trailing padding removed) for `aamctl workload register --ek-pub`.
 * *DER is malloc'd (free() it).  AAM_E_UNSUPPORTED for a PKCS#11 agent.
 */
int aam_agent_ek_cert(struct aam_agent *a, uint8_t **der, size_t *len, struct aam_agent_error *err);

/* ES256 over a SHA-256 DIGEST by the device: raw r||s. */
int aam_agent_sign(struct aam_agent *a, const uint8_t digest[32], uint8_t sig[64]);

/* A token as aam-attest issued it. */
struct aam_agent_token {
	char *token;     /* JWS compact (a secret: wipe, never log) */
	char *spiffe_id; /* sub */
	char jkt[AAM_AGENT_JKT_LEN + 1];
	int64_t expires_in; /* seconds, as the server said */
	int64_t issued_at;  /* local wall clock (s) when the request was sent */
	int64_t expires_at; /* issued_at + expires_in: a conservative local expiry */
};

/*
 * One attestation: challenge, evidence, token.  Checks that the token
 * response is bound to this agent's key before returning it.
 */
int aam_agent_attest(struct aam_agent *a, struct aam_agent_token *out, struct aam_agent_error *err);
/* Wipes and frees the token's strings.  Safe on a zeroed token. */
void aam_agent_token_uninit(struct aam_agent_token *t);

/*
 * A DPoP proof for METHOD and URL (query and fragment are dropped from
 * htu), with ath for ACCESS_TOKEN when given and the server's NONCE when
 * given.  *OUT is malloc'd.
 */
int aam_agent_dpop(struct aam_agent *a, const char *method, const char *url,
                   const char *access_token, const char *nonce, char **out);

/* ---- the sidecar --------------------------------------------------------- */

struct aam_agent_sidecar_config {
	const char *host;        /* default "127.0.0.1" */
	uint16_t port;           /* 0: an ephemeral port (aam_agent_sidecar_port) */
	const char *gateway_url; /* where requests go; proofs name it (htu) */
	const char *ca_bundle;   /* CA file for an https gateway; NULL: the system's */
	size_t max_body;         /* request body limit; 0: 4 MiB */
	unsigned max_conns;      /* concurrent agent connections; 0: 256 */
	long connect_timeout_ms; /* to the gateway; 0: 10 s */
	/* Retry delays after a failed attestation: full jitter between half
	 * and all of min(max, min * 2^failures).  0: 1 s and 60 s. */
	long backoff_min_ms, backoff_max_ms;
};

/*
 * Starts the sidecar on A (which it borrows: close A after stopping):
 * attests once at once (a failure is logged and retried with backoff;
 * meanwhile requests get 503 token_unavailable), then refreshes the token
 * at two thirds of its life.  Every request except those under /.aam/ is
 * forwarded to the gateway: the agent code's Authorization, X-Api-Key,
 * Api-Key, Proxy-Authorization and DPoP headers are dropped and replaced by
 * the token and a proof signed for this request; the response, streamed
 * (server-sent events included), comes back as it arrives.
 * GET /.aam/health answers {"status","token","expires_in","spiffe_id"}.
 */
int aam_agent_sidecar_start(struct aam_agent *a, const struct aam_agent_sidecar_config *cfg,
                            struct aam_agent_sidecar **out, struct aam_agent_error *err);
uint16_t aam_agent_sidecar_port(const struct aam_agent_sidecar *s);
/* Tokens obtained so far (the first attestation included). */
uint64_t aam_agent_sidecar_refreshes(struct aam_agent_sidecar *s);
/* Stops serving, ends the refresher, frees.  NULL is fine. */
void aam_agent_sidecar_stop(struct aam_agent_sidecar *s);

#ifdef __cplusplus
}
#endif

#endif /* AAM_AGENT_H */
