/*
 * A bounded, thread-safe map from 32-byte random keys to values that
 * expire: the challenge nonces and the TPM sessions between the two
 * rounds.  Entries are single use — taking one removes it — so a nonce or
 * a session can never be presented twice, and an expired entry is never
 * returned.  When the map is full of live entries, inserts fail with
 * AAM_E_BUSY instead of evicting a live nonce (which would turn a flood
 * of challenges into a way to cancel other agents' attestations quietly).
 *
 * Keys are server-generated random bytes, so the first bytes are already
 * a uniform hash and no salting is needed.
 */
#ifndef AAM_ATTEST_TTLMAP_H
#define AAM_ATTEST_TTLMAP_H

#include <stddef.h>
#include <stdint.h>

#define ATTEST_TTLMAP_KEY_LEN 32u

struct attest_ttlmap;

/* CAPACITY live entries (1 .. 2^22); FREE_FN (may be NULL) releases values. */
struct attest_ttlmap *attest_ttlmap_new(size_t capacity, void (*free_fn)(void *));
/* Frees every remaining value.  NULL is fine. */
void attest_ttlmap_free(struct attest_ttlmap *m);

/*
 * Stores VALUE under KEY until EXPIRES (seconds).  On success the map owns
 * VALUE.  AAM_E_BUSY when full of live entries, AAM_E_EXISTS for a key
 * already present (a random-number failure), AAM_E_NOMEM.
 */
int attest_ttlmap_put(struct attest_ttlmap *m, const uint8_t key[ATTEST_TTLMAP_KEY_LEN],
                      void *value, int64_t expires, int64_t now);

/*
 * Removes and returns the value under KEY, or NULL when absent or expired
 * at NOW (an expired value is freed).  The caller owns the result.
 */
void *attest_ttlmap_take(struct attest_ttlmap *m, const uint8_t key[ATTEST_TTLMAP_KEY_LEN],
                         int64_t now);

/* Live entries at NOW (expired ones are dropped on the way). */
size_t attest_ttlmap_count(struct attest_ttlmap *m, int64_t now);

#endif /* AAM_ATTEST_TTLMAP_H */
