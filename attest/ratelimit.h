/*
 * Rate limiting of failed attestation attempts per source address: a
 * token bucket per address (BURST tokens, refilled at RATE per second).
 * Every failed attempt takes a token; an address with an empty bucket is
 * answered 429 before any evidence is looked at, which bounds how fast
 * one source can probe for registered identities, guess join tokens or
 * burn server CPU on RSA operations.  Successful attempts cost nothing.
 *
 * The table is bounded.  When it is full, the entry that has gone
 * longest without a failure is forgotten, which can only make the
 * limiter more lenient towards an address, never stricter.
 */
#ifndef AAM_ATTEST_RATELIMIT_H
#define AAM_ATTEST_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>

struct attest_ratelimit;

/* CAPACITY addresses (16 .. 2^20); NULL on failure or bad parameters. */
struct attest_ratelimit *attest_ratelimit_new(size_t capacity, double rate, double burst);
void attest_ratelimit_free(struct attest_ratelimit *rl);

/* Whether ADDR may make an attempt at NOW (seconds, monotonic). */
bool attest_ratelimit_allowed(struct attest_ratelimit *rl, const char *addr, double now);

/* Charges one failed attempt to ADDR. */
void attest_ratelimit_fail(struct attest_ratelimit *rl, const char *addr, double now);

#endif /* AAM_ATTEST_RATELIMIT_H */
