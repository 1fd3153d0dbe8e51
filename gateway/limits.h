/*
 * Per-caller request limits on the model path (issue 6, "Budgets and
 * limits per identity, team and policy: ... rpm, tpm, max parallel"): the
 * `limits` / `route_limits` a policy decision carries (rpm, tpm,
 * max_parallel) for the workload, and a virtual key's own rpm/tpm (as
 * LiteLLM keys have them) for the key.
 *
 * Each key (a workload's SPIFFE ID, or a virtual key's id) has:
 *   - rpm: a token bucket RPM deep, refilled continuously (a burst may use
 *     the minute at once, never more);
 *   - tpm: a token bucket TPM deep, refilled continuously, from which each
 *     finished call takes the tokens it really used; a call is admitted
 *     while the bucket is not empty, so one call may overdraw it, and the
 *     debt delays the next ones;
 *   - max_parallel: the calls in flight.
 * USD budgets are the ledger's (gateway/budget.c), not this.
 *
 * Process-local: several gateways in front of one database each enforce
 * their own rpm/tpm/parallel (the USD budgets stay exact across them).
 */
#ifndef AAM_GATEWAY_LIMITS_H
#define AAM_GATEWAY_LIMITS_H

#include <stddef.h>
#include <stdint.h>

struct gw_limits;

/* The limits of one key; 0 = no limit. */
struct gw_limit_want {
	int64_t rpm, tpm, max_parallel;
};

/* MAX_KEYS: keys tracked at once (0: 65536). */
int gw_limits_new(size_t max_keys, struct gw_limits **out);
void gw_limits_free(struct gw_limits *l);

/*
 * Admits one call of KEY under W at NOW_US (monotonic).  AAM_OK: the call
 * is in flight until gw_limits_leave.  AAM_E_BUSY: refused; *WHICH names
 * the limit ("rpm", "tpm", "max_parallel") and *RETRY_S the seconds after
 * which a retry may pass (at least 1).  Nothing is tracked for a key whose
 * W has no limit.
 */
int gw_limits_enter(struct gw_limits *l, const char *key, const struct gw_limit_want *w,
                    int64_t now_us, const char **which, int64_t *retry_s);
/* Ends a call admitted by gw_limits_enter with the same KEY and W, which used TOKENS. */
void gw_limits_leave(struct gw_limits *l, const char *key, const struct gw_limit_want *w,
                     int64_t tokens, int64_t now_us);

#endif
