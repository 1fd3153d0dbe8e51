/*
 * Shared helpers for aam-attest's tests: an in-process server with an
 * OpenSSL issuer key in a temporary folder, a small libcurl JSON client,
 * base64url helpers and token verification against the server's JWKS.
 * Include after the cmocka prerequisites.
 */
#ifndef AAM_TESTS_ATTEST_TESTUTIL_H
#define AAM_TESTS_ATTEST_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "attest/attest.h"
#include "attest/issuer.h"
#include "attest/registry.h"

struct at_resp {
	long status;
	json_t *json; /* NULL when the body is not JSON */
	char *body;
	char retry_after[16];
	char cache_control[64];
};

/* POST BODY (not consumed) as JSON, or GET when BODY is NULL. */
int at_request(uint16_t port, const char *method, const char *path, const json_t *body,
               struct at_resp *r);
/* POST raw bytes (for hostile bodies). */
int at_post_raw(uint16_t port, const char *path, const void *body, size_t len, struct at_resp *r);
void at_resp_free(struct at_resp *r);
/* error.code of an error body, or NULL. */
const char *at_err_code(const struct at_resp *r);

/* base64url of N bytes (malloc'd) and back (malloc'd, *N set; NULL on error). */
char *at_b64(const void *p, size_t n);
uint8_t *at_unb64(const char *s, size_t *n);

EVP_PKEY *at_p256_new(void);
/* ES256 r||s over SHA-256(MSG). */
void at_es256(EVP_PKEY *k, const void *msg, size_t len, uint8_t rs[64]);

struct at_server {
	char *dir;
	char db_path[1024];
	EVP_PKEY *issuer_key;
	struct attest_pkey_src ps;
	struct attest_keysrc ks;
	struct attest_server *srv;
	uint16_t port;
	struct aam_db *db; /* a second connection, as aamctl would have */
};

struct at_server_opts {
	const char *const *ek_ca;
	size_t n_ek_ca;
	double fail_burst; /* 0: generous (1000), so negative tests do not trip it */
	const char *trust_domain;
};

/* Starts a server on an ephemeral loopback port. */
int at_server_start(struct at_server *f, const struct at_server_opts *o);
void at_server_stop(struct at_server *f);

/* A registration filled with test values for METHOD and one audience. */
void at_reg_init(struct attest_reg *r, const char *spiffe_id, enum attest_method m,
                 const char *audience);
int at_register(struct at_server *f, struct attest_reg *r);

/* POST /v1/attest/challenge; the nonce (malloc'd) or NULL. */
char *at_challenge(struct at_server *f, const char *method, const char *spiffe_id);

/*
 * Verifies TOKEN with the server's JWKS (fetched over HTTP), checks iss and
 * aud, and returns the claims (a new reference) or NULL.
 */
json_t *at_verify_token(struct at_server *f, const char *token, const char *aud);

#define AT_ISSUER "https://attest.test"

#endif
