/*
 * The server's internals, shared by server.c and the api_*.c handlers.
 */
#ifndef AAM_ATTEST_SERVER_H
#define AAM_ATTEST_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <jansson.h>

#include "attest/attest.h"
#include "attest/audit.h"
#include "attest/errors.h"
#include "attest/issuer.h"
#include "attest/ratelimit.h"
#include "attest/registry.h"
#include "attest/tpm_verify.h"
#include "attest/ttlmap.h"
#include "common/http.h"

struct attest_server {
	char *host;
	uint16_t port;
	char *issuer_name;
	char *trust_domain;
	unsigned threads;

	pthread_mutex_t db_mu; /* one connection, used by one thread at a time */
	struct aam_db *db;

	struct attest_ek_trust *ek_trust;
	struct attest_keysrc keys;
	struct attest_issuer *issuer;
	struct attest_ttlmap *nonces;
	struct attest_ttlmap *sessions;
	struct attest_ratelimit *limiter;    /* failed attempts */
	struct attest_ratelimit *challenges; /* challenges issued */

	pthread_mutex_t bundle_mu;
	char bundle_kids[1024];
	int64_t bundle_seq;

	atomic_llong clock_offset;
	struct aam_http_server *http;
};

/* The server's clock (seconds since the epoch, plus the test offset). */
int64_t attest_now(struct attest_server *s);
double attest_mono(void);

/*
 * What a challenge nonce is bound to.  The SPIFFE ID is kept as its
 * SHA-256 so that a table full of nonces stays small (tens of bytes each).
 */
struct attest_nonce_binding {
	enum attest_method method;
	bool has_spiffe_id;
	uint8_t spiffe_id_hash[32];
};

/* SHA-256 of a SPIFFE ID, as nonce bindings hold it. */
void attest_spiffe_hash(const char *spiffe_id, uint8_t out[32]);
/* Whether B is bound to SPIFFE_ID (false when it is bound to none). */
bool attest_nonce_bound_to(const struct attest_nonce_binding *b, const char *spiffe_id);

/*
 * Takes the nonce NONCE_B64 (single use) and checks it was issued for
 * METHOD and, when it was bound to one, for SPIFFE_ID (NULL: the caller
 * checks the binding itself through *BINDING, which may be NULL).
 */
enum attest_err attest_nonce_take(struct attest_server *s, const char *nonce_b64,
                                  enum attest_method method, const char *spiffe_id,
                                  struct attest_nonce_binding *binding, uint8_t raw[32]);

/* Reads the registration under the database lock. */
int attest_server_reg_get(struct attest_server *s, const char *spiffe_id, struct attest_reg *r);

/* The common checks on a registration: method, revocation, audience. */
enum attest_err attest_reg_check(const struct attest_reg *r, enum attest_method method,
                                 const char *audience);

/*
 * Issues a token for REG bound to JKT, records its jti, audits and answers
 * RESP with the token response.
 */
enum attest_err attest_respond_token(struct attest_server *s, const struct aam_http_request *req,
                                     struct aam_http_response *resp, const struct attest_reg *reg,
                                     const char *audience, const char *jkt,
                                     enum attest_method method);

/*
 * Answers a failed attempt: charges the rate limiter (client errors
 * only), audits, and sends the JSON error.
 */
int attest_respond_failure(struct attest_server *s, const struct aam_http_request *req,
                           struct aam_http_response *resp, enum attest_err e,
                           enum attest_method method, const char *spiffe_id);

/* A request body parsed as a JSON object under the API's limits. */
enum attest_err attest_parse_body(const struct aam_http_request *req, json_t **out);

/*
 * Decodes the base64url string member KEY of OBJ into OUT: 1 to MAX
 * bytes.  ATTEST_E_INVALID_REQUEST when missing, not a string, empty, too
 * long or not strict base64url.
 */
enum attest_err attest_get_b64(const json_t *obj, const char *key, size_t max, struct aam_buf *out);

/* Handlers. */
int attest_api_challenge(void *ctx, const struct aam_http_request *req,
                         struct aam_http_response *resp);
int attest_api_tpm(void *ctx, const struct aam_http_request *req, struct aam_http_response *resp);
int attest_api_pkcs11(void *ctx, const struct aam_http_request *req,
                      struct aam_http_response *resp);
int attest_api_join(void *ctx, const struct aam_http_request *req, struct aam_http_response *resp);
int attest_api_jwks(void *ctx, const struct aam_http_request *req, struct aam_http_response *resp);
int attest_api_bundle(void *ctx, const struct aam_http_request *req,
                      struct aam_http_response *resp);
int attest_api_revocations(void *ctx, const struct aam_http_request *req,
                           struct aam_http_response *resp);
int attest_api_healthz(void *ctx, const struct aam_http_request *req,
                       struct aam_http_response *resp);

#endif /* AAM_ATTEST_SERVER_H */
