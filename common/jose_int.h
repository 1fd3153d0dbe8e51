/*
 * Helpers shared by the jose_*.c files; not part of the public API.
 */
#ifndef AAM_COMMON_JOSE_INT_H
#define AAM_COMMON_JOSE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/jose.h"
#include "common/json.h"

/* Limits for the JSON inside a JWS header, payload or JWK. */
extern const struct aam_json_limits aam_jose__json_limits;

/* Stores R in *WHY (when WHY is not NULL) and returns RC. */
int aam_jose__fail(enum aam_jose_reason *why, enum aam_jose_reason r, int rc);

/* NOW when positive, else the real clock. */
int64_t aam_jose__now(int64_t now);

int aam_jose__sha256(const void *data, size_t len, uint8_t out[AAM_JOSE_DIGEST_LEN]);

/* base64url of N bytes into OUT (NUL-terminated). */
int aam_jose__b64url(const void *in, size_t n, char *out, size_t outcap);

/*
 * Decodes a base64url segment and parses it as a JSON object:
 * AAM_E_PARSE with *BAD_B64 set when the base64url itself is bad.
 */
int aam_jose__segment_json(const char *seg, size_t n, json_t **out, bool *bad_b64);

/* Whether KEY is an EC key on P-256. */
bool aam_jose__is_p256(EVP_PKEY *key);

/*
 * A JSON NumericDate (RFC 7519 section 2): a non-negative integer or a
 * finite real below 2^53, rounded down or (ROUND_UP) up to whole seconds.
 */
int aam_jose__numeric_date(const json_t *v, bool round_up, int64_t *out);

#endif /* AAM_COMMON_JOSE_INT_H */
