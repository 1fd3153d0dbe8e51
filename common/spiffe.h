/*
 * SPIFFE IDs (spiffe://trust-domain/path), validated exactly as the
 * SPIFFE-ID specification (spiffe/spiffe, standards/SPIFFE-ID.md) and its
 * reference implementations define them:
 *
 *   - the scheme is "spiffe", lowercase, followed by "://";
 *   - the trust domain is non-empty, at most 255 bytes, and made only of
 *     a-z 0-9 '.' '-' '_' (uppercase is invalid, not folded);
 *   - the path is optional; when present it is "/seg/seg..." where every
 *     segment is non-empty, made only of a-z A-Z 0-9 '.' '-' '_', and is
 *     neither "." nor ".."; there is no trailing slash;
 *   - no query, fragment, port, userinfo or percent-encoding;
 *   - the whole ID is at most 2048 bytes.
 *
 * Because the accepted form is canonical (nothing is normalised), two IDs
 * are the same identity exactly when their strings are byte-equal, and
 * aam_spiffe_format(aam_spiffe_parse(s)) gives back s.
 */
#ifndef AAM_COMMON_SPIFFE_H
#define AAM_COMMON_SPIFFE_H

#include <stdbool.h>
#include <stddef.h>

#define AAM_SPIFFE_ID_MAX 2048 /* bytes, whole ID, per the specification */
#define AAM_SPIFFE_TD_MAX 255  /* bytes, trust domain */
/* Size of a buffer that holds any formatted ID plus its NUL. */
#define AAM_SPIFFE_ID_BUFSZ (AAM_SPIFFE_ID_MAX + 1)

struct aam_spiffe_id {
	char trust_domain[AAM_SPIFFE_TD_MAX + 1]; /* NUL-terminated */
	char path[AAM_SPIFFE_ID_MAX];             /* "" or "/seg[/seg...]", NUL-terminated */
};

/*
 * Parses and validates S (LEN bytes, need not be NUL-terminated; a NUL
 * byte inside is an invalid character).  Returns AAM_OK, AAM_E_PARSE for
 * a malformed ID, AAM_E_TOOBIG for an ID or trust domain over its length
 * limit, AAM_E_INVAL for NULL arguments.  On failure *WHY (when WHY is not
 * NULL) points at a static sentence naming the rule broken, and OUT is
 * zeroed; on success *WHY is NULL.
 */
int aam_spiffe_parse(const char *s, size_t len, struct aam_spiffe_id *out, const char **why);

/* Validates a bare trust domain name ("example.org") and copies it to OUT. */
int aam_spiffe_trust_domain_parse(const char *s, size_t len, char out[AAM_SPIFFE_TD_MAX + 1],
                                  const char **why);

/*
 * Builds an ID from a trust domain and a path ("" or "/a/b"), validating
 * both as aam_spiffe_parse would.  Same return codes.
 */
int aam_spiffe_from_parts(const char *trust_domain, const char *path, struct aam_spiffe_id *out,
                          const char **why);

/*
 * Writes "spiffe://td/path" with a NUL to OUT (OUTLEN bytes; use
 * AAM_SPIFFE_ID_BUFSZ to never fail for size).  The ID is validated again,
 * so a hand-filled struct cannot produce an invalid string.  Returns
 * AAM_OK, AAM_E_TOOBIG when OUT is too small (OUT then holds ""),
 * AAM_E_PARSE for an invalid ID, AAM_E_INVAL for NULL arguments.
 * *WRITTEN (optional) receives the length without the NUL.
 */
int aam_spiffe_format(const struct aam_spiffe_id *id, char *out, size_t outlen, size_t *written);

bool aam_spiffe_equal(const struct aam_spiffe_id *a, const struct aam_spiffe_id *b);

/* Whether ID belongs to the trust domain named TRUST_DOMAIN (exact match). */
bool aam_spiffe_in_trust_domain(const struct aam_spiffe_id *id, const char *trust_domain);

// Identity patterns for policies (line comments here, because the
// examples contain the C comment opener):
//
//   spiffe://td/a/b      exactly that ID;
//   spiffe://td/a/*      spiffe://td/a/X for one more segment X;
//   spiffe://td/a/**     spiffe://td/a/X[/Y...], one or more further segments;
//   spiffe://td/*        any ID in td with a one-segment path;
//   spiffe://td/**       any ID in td with a non-empty path.
//
// A wildcard is only ever the whole last segment; '*' anywhere else
// (trust domain, middle segment, part of a segment) is an error.  The
// prefix is matched segment by segment, so spiffe://td/a/** does not
// match spiffe://td/ab/c.
enum aam_spiffe_pattern_kind {
	AAM_SPIFFE_PATTERN_EXACT = 0,
	AAM_SPIFFE_PATTERN_ONE = 1, /* last segment is a single star */
	AAM_SPIFFE_PATTERN_ANY = 2, /* last segment is a double star */
};

struct aam_spiffe_pattern {
	struct aam_spiffe_id base; /* the ID with the wildcard segment removed */
	enum aam_spiffe_pattern_kind kind;
};

/* Same conventions as aam_spiffe_parse. */
int aam_spiffe_pattern_parse(const char *s, size_t len, struct aam_spiffe_pattern *out,
                             const char **why);

bool aam_spiffe_pattern_match(const struct aam_spiffe_pattern *pattern,
                              const struct aam_spiffe_id *id);

#endif /* AAM_COMMON_SPIFFE_H */
