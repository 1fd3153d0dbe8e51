/*
 * aam-agent internals shared by the library's files: the agent object,
 * error helpers and the small HTTP client used to talk to aam-attest.
 * Not part of the public API (include/aam/agent.h).
 */
#ifndef AAM_AGENT_INT_H
#define AAM_AGENT_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "aam/agent.h"
#include "common/buf.h"
#include "common/jose.h"

struct agent_tpm;
struct agent_p11;

enum agent_method {
	AGENT_METHOD_TPM = 1,
	AGENT_METHOD_PKCS11 = 2,
};

struct aam_agent {
	enum agent_method method;
	struct agent_tpm *tpm;
	struct agent_p11 *p11;
	struct aam_jwk jwk; /* the key's public half and thumbprint */
	char *attest_url;   /* without a trailing '/' */
	char *spiffe_id;
	char *audience;
	char *ca_bundle;
	long timeout_ms;
	/* One attestation at a time: a TPM attestation keeps the AK loaded
	 * across two HTTP round trips, and nonces are single-use anyway. */
	pthread_mutex_t attest_mu;
};

/* Fills E (may be NULL) with CODE and a printf-style message. */
void agent_err(struct aam_agent_error *e, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* The signer that jose uses for DPoP proofs, over aam_agent_sign(). */
void agent_signer(struct aam_agent *a, struct aam_jose_signer *s);

/* ---- HTTP client for aam-attest (agent/http_client.c) --------------------- */

#define AGENT_HTTP_MAX_RESPONSE (256u * 1024)

struct agent_http_resp {
	long status;
	json_t *json; /* the parsed body when it is JSON, else NULL */
};

/*
 * POSTs BODY as JSON to A->attest_url + PATH and parses the answer.  A
 * transport failure is AAM_E_IO / AAM_E_TIMEOUT with E filled
 * ("attest_unreachable"); an HTTP error status is AAM_OK with the status
 * in R (the caller turns it into an error with agent_http_refusal).
 */
int agent_http_post(struct aam_agent *a, const char *path, const json_t *body,
                    struct agent_http_resp *r, struct aam_agent_error *e);
void agent_http_resp_uninit(struct agent_http_resp *r);
/*
 * Turns a non-200 answer into an error: aam-attest's error code and
 * message when the body has them.  Returns AAM_E_DENIED for 4xx and
 * AAM_E_BUSY for 429 and 5xx.
 */
int agent_http_refusal(const struct agent_http_resp *r, const char *step,
                       struct aam_agent_error *e);

/* base64url of N bytes as a new JSON string (NULL on allocation failure). */
json_t *agent_b64_json(const void *p, size_t n);
/* Decodes the base64url string member KEY of OBJ into OUT (reset first). */
int agent_b64_member(const json_t *obj, const char *key, size_t max, struct aam_buf *out);

/* ---- attestation flows (agent/attest_tpm.c, agent/attest_p11.c) ------------ */

/* Runs a full TPM attestation; OUT receives the token response. */
int agent_attest_tpm(struct aam_agent *a, json_t **out, struct aam_agent_error *e);
/* Runs a PKCS#11 attestation; OUT receives the token response. */
int agent_attest_pkcs11(struct aam_agent *a, json_t **out, struct aam_agent_error *e);
/* A challenge for METHOD: the nonce string exactly as the server sent it (malloc'd). */
int agent_challenge(struct aam_agent *a, const char *method, char **nonce,
                    struct aam_agent_error *e);

#endif /* AAM_AGENT_INT_H */
