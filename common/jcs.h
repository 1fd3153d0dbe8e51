/*
 * RFC 8785 JSON Canonicalization Scheme (JCS) from a jansson value.
 *
 * The audit log stores each record as the JCS form of its JSON object, so
 * one event always has exactly one byte representation and its Merkle
 * leaf can be recomputed by anyone (docs/AUDIT.md section 1).
 *
 * Rules implemented: no whitespace; object members sorted by the UTF-16
 * code units of their names; strings escaped minimally (\" \\ \b \t \n
 * \f \r, other controls as \u00xx in lower-case hex, everything else as
 * itself); numbers as ECMAScript Number.prototype.toString prints them.
 * Integers are accepted only within +-2^53 (beyond it an IEEE double, and
 * so every JCS consumer, cannot hold them exactly); NaN and infinities
 * are refused.  Strings must be valid UTF-8 (jansson guarantees it for
 * values it built, the check is kept for values built with _nocheck).
 */
#ifndef AAM_COMMON_JCS_H
#define AAM_COMMON_JCS_H

#include <stddef.h>

#include <jansson.h>

struct aam_buf;

/* Largest integer magnitude that serialises exactly: 2^53. */
#define AAM_JCS_INT_MAX 9007199254740992LL
/* Deepest nesting accepted (as the verifier's limit). */
#define AAM_JCS_MAX_DEPTH 64
/* Longest output of aam_jcs_number, NUL included. */
#define AAM_JCS_NUMBER_MAX 32

/*
 * Appends the canonical form of V to OUT.  AAM_E_INVAL for a value JCS
 * cannot represent (NaN, infinity, an integer beyond 2^53, invalid UTF-8,
 * nesting deeper than AAM_JCS_MAX_DEPTH); the buffer's own error
 * (AAM_E_TOOBIG, AAM_E_NOMEM) when it is full.  On error OUT holds a
 * partial result that the caller discards.
 */
int aam_jcs_serialize(const json_t *v, struct aam_buf *out);

/*
 * ECMAScript Number::toString of D into OUT (CAP >= AAM_JCS_NUMBER_MAX):
 * the shortest digits that round-trip, "-0" printed as "0".  AAM_E_INVAL
 * for NaN or an infinity.
 */
int aam_jcs_number(double d, char *out, size_t cap);

/* Compares two UTF-8 strings by their UTF-16 code units (RFC 8785 3.2.3). */
int aam_jcs_key_cmp(const char *a, size_t alen, const char *b, size_t blen);

#endif /* AAM_COMMON_JCS_H */
