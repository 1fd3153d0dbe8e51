/*
 * Strict base64 (RFC 4648 section 4, padded) and base64url (RFC 4648
 * section 5, unpadded as JOSE uses it, RFC 7515 section 2).
 *
 * Decoding accepts exactly one spelling for each byte string: characters
 * outside the chosen alphabet (whitespace, the other alphabet's '+' '/' or
 * '-' '_'), missing or misplaced padding in base64, any padding in
 * base64url, impossible lengths and non-zero trailing bits are all
 * AAM_E_PARSE.  Tokens, JWKs and signatures are compared and hashed in
 * their encoded form, so a second spelling of the same bytes would be a
 * way around a replay cache or a thumbprint match.
 *
 * Decoding is not constant-time; do not use it where the timing of a
 * secret's decoding matters.
 */
#ifndef AAM_COMMON_B64_H
#define AAM_COMMON_B64_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

enum {
	AAM_B64_STD = 0, /* RFC 4648 section 4: "+/", padded with '=' */
	AAM_B64_URL = 1, /* RFC 4648 section 5: "-_", no padding */
};

/*
 * Length of the encoding of N bytes, without the terminating NUL.
 * SIZE_MAX when it would not fit in a size_t.
 */
size_t aam_b64_encoded_len(size_t n, int url);

/* An upper bound on the decoded length of N encoded characters. */
size_t aam_b64_decoded_max(size_t n);

/*
 * Encodes N bytes of IN into OUT and NUL-terminates it.  OUTCAP must be at
 * least aam_b64_encoded_len(n, url) + 1, else AAM_E_TOOBIG.  *OUTLEN (may
 * be NULL) receives the length without the NUL.
 */
int aam_b64_encode(const void *in, size_t n, char *out, size_t outcap, size_t *outlen, int url);

/*
 * Decodes N characters of IN (not necessarily NUL-terminated).  Returns
 * AAM_E_PARSE on malformed input, AAM_E_TOOBIG when the decoded bytes do
 * not fit in OUTCAP (then *OUTLEN, when given, receives the size needed).
 * A malformed input is reported as AAM_E_PARSE whatever OUTCAP is.  On any
 * failure nothing decoded is left in OUT.
 */
int aam_b64_decode(const char *in, size_t n, uint8_t *out, size_t outcap, size_t *outlen, int url);

/*
 * Append the encoding (or the decoded bytes) to B.  On AAM_E_PARSE, B is
 * left as it was and its failure flag is not set: malformed input is not a
 * buffer failure.  Size and memory failures set B's sticky flag.
 */
int aam_b64_encode_buf(struct aam_buf *b, const void *in, size_t n, int url);
int aam_b64_decode_buf(struct aam_buf *b, const char *in, size_t n, int url);

#endif /* AAM_COMMON_B64_H */
