/*
 * The gateway's budget ledger (docs/ROUTING.md, "Budgets"): USD spend per
 * scope -- identity (SPIFFE ID), team, policy, virtual key -- per UTC day
 * and month, in the gateway's SQLite database.
 *
 * A request first RESERVES its worst-case cost: one BEGIN IMMEDIATE
 * transaction checks every applicable limit against spend (which already
 * includes the other requests' open reservations) and adds the amount, so
 * concurrent requests can never together pass a limit.  When the upstream
 * answered, SETTLE replaces the reservation by the real cost; on failure
 * RELEASE removes it.  Reservations left by a crashed process are released
 * when the ledger is opened again (older than the stale bound).
 *
 * Amounts are kept as integer micro-dollars so that thousands of
 * additions and subtractions never drift.
 *
 * Thread-safety: every function may be called from many threads.  One
 * connection serves them; concurrent reserves and settles are batched
 * into one transaction (flat combining, budget.c), which keeps the
 * per-request cost of the ledger flat under load.
 */
#ifndef AAM_GATEWAY_BUDGET_H
#define AAM_GATEWAY_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gw_budget;

/* Reservations older than this are a dead process's and are released at open. */
#define GW_BUDGET_STALE_S 3600

/* The scopes a request is charged to (NULL = not charged to that scope). */
struct gw_budget_scopes {
	const char *identity, *team, *policy, *vkey;
	double policy_daily_usd, policy_monthly_usd; /* 0 = no limit (from the policy decision) */
};

/* Seconds since the epoch; tests inject a clock to cross UTC midnight. */
typedef int64_t (*gw_budget_clock)(void *ctx);

int gw_budget_open(const char *path, struct gw_budget **out);
void gw_budget_close(struct gw_budget *b);
void gw_budget_set_clock(struct gw_budget *b, gw_budget_clock fn, void *ctx);

/*
 * Reserves AMOUNT_USD against every applicable limit: the policy limits
 * in S and any row of the budget_limits table for S's identity, team,
 * policy or vkey.  Returns AAM_E_DENIED when a limit would be passed
 * (nothing is changed), with *WHICH (may be NULL) naming the scope.
 */
int gw_budget_reserve(struct gw_budget *b, const struct gw_budget_scopes *s, double amount_usd,
                      int64_t *id, const char **which);
/* Replaces reservation ID by ACTUAL_USD (in the day/month it was reserved in). */
int gw_budget_settle(struct gw_budget *b, int64_t id, double actual_usd);
int gw_budget_release(struct gw_budget *b, int64_t id);
/* Releases reservations older than OLDER_THAN_S seconds; *N (may be NULL) gets how many. */
int gw_budget_release_stale(struct gw_budget *b, int64_t older_than_s, int64_t *n);

/* Spend (reservations included) of SCOPE/KEY today and this month, UTC. */
int gw_budget_spent(struct gw_budget *b, const char *scope, const char *key, double *today,
                    double *month);
/* Sets (or with both 0, removes) a standing limit for SCOPE/KEY. */
int gw_budget_set_limit(struct gw_budget *b, const char *scope, const char *key, double daily_usd,
                        double monthly_usd);

#endif /* AAM_GATEWAY_BUDGET_H */
