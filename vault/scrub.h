/*
 * Response scrubbing: every occurrence of a credential's bytes (and the
 * encodings under which it was sent, such as base64 for basic auth) is
 * replaced by "[REDACTED]" before a response header or body byte leaves
 * the vault, so an upstream that echoes the credential cannot hand it to
 * the gateway.
 *
 * Bodies arrive in chunks, and a secret may straddle two of them.  The
 * scrubber therefore holds back the longest tail of what it has seen that
 * is a proper prefix of some pattern (never more than the longest
 * pattern's length minus one) and releases it once the next chunk shows
 * whether the pattern completes.  Holding back only a real partial match,
 * not a fixed len-1 bytes, keeps server-sent events flowing: an event's
 * final "\n\n" is released at once unless a secret starts with a newline.
 *
 * Patterns and held-back bytes live in protected memory (aam_secret) and
 * are wiped on free.
 */
#ifndef AAM_VAULT_SCRUB_H
#define AAM_VAULT_SCRUB_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define VAULT_SCRUB_REPLACEMENT  "[REDACTED]"
#define VAULT_SCRUB_MAX_PATTERNS 8

struct vault_scrub;

int vault_scrub_new(struct vault_scrub **out);
/* Wipes patterns and held bytes; NULL is fine. */
void vault_scrub_free(struct vault_scrub *s);

/*
 * Adds a pattern (copied into protected memory).  Empty patterns and
 * duplicates are ignored; AAM_E_TOOBIG past VAULT_SCRUB_MAX_PATTERNS or
 * for a pattern too long for protected memory (a caller then refuses its
 * request: a credential that cannot be scrubbed is not sent).
 */
int vault_scrub_add(struct vault_scrub *s, const void *pattern, size_t len);
/* Adds the standard base64 of DATA, encoded straight into protected memory. */
int vault_scrub_add_b64(struct vault_scrub *s, const void *data, size_t len);

/* Scrubs one chunk of a stream, appending what can be released to OUT. */
int vault_scrub_push(struct vault_scrub *s, const uint8_t *p, size_t n, struct aam_buf *out);
/* Ends the stream: appends the held-back bytes (which cannot hold a match). */
int vault_scrub_finish(struct vault_scrub *s, struct aam_buf *out);

/* Scrubs a complete value (a header) independently of the stream. */
int vault_scrub_once(struct vault_scrub *s, const uint8_t *p, size_t n, struct aam_buf *out);

/* Replacements made so far (streams and single values), for logs. */
size_t vault_scrub_count(const struct vault_scrub *s);

#endif
