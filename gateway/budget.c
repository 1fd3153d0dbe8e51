/*
 * Budget ledger (gateway/budget.h).  Tables, created if missing so the
 * gateway db's other owners (virtual keys) keep their own schema steps:
 *
 *   budget_spend(scope, key, period, micro)     period 'YYYY-MM-DD' or 'YYYY-MM'
 *   budget_reservations(id, created, micro, identity, team, policy, vkey, day, month)
 *   budget_limits(scope, key, daily_micro, monthly_micro)
 *
 * Spend rows include open reservations, so the check inside reserve is a
 * plain comparison and needs nothing but the row it is about to raise.
 */
#include "gateway/budget.h"
#include "gateway/budget_cache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aam/err.h"
#include "common/db.h"
#include "common/log.h"

#define NSCOPES 4
static const char *const SCOPE_NAMES[NSCOPES] = {"identity", "team", "policy", "vkey"};

static const char SCHEMA[] =
        "CREATE TABLE IF NOT EXISTS budget_spend ("
        " scope TEXT NOT NULL, key TEXT NOT NULL, period TEXT NOT NULL,"
        " micro INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (scope, key, period)) WITHOUT ROWID;"
        "CREATE TABLE IF NOT EXISTS budget_reservations ("
        " id INTEGER PRIMARY KEY, created INTEGER NOT NULL, micro INTEGER NOT NULL,"
        " identity TEXT, team TEXT, policy TEXT, vkey TEXT,"
        " day TEXT NOT NULL, month TEXT NOT NULL);"
        "CREATE INDEX IF NOT EXISTS budget_reservations_created ON budget_reservations(created);"
        "CREATE TABLE IF NOT EXISTS budget_limits ("
        " scope TEXT NOT NULL, key TEXT NOT NULL, daily_micro INTEGER NOT NULL DEFAULT 0,"
        " monthly_micro INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (scope, key)) WITHOUT ROWID;";

/*
 * One queued ledger operation.  Reserve and settle/release are batched:
 * the first thread to find no batch running takes every queued operation
 * and runs them, one after the other, in a single BEGIN IMMEDIATE
 * transaction (flat combining), so N concurrent requests cost one commit
 * instead of N.  Each operation still sees the effects of the ones before
 * it, so the limit checks are exactly as strict as with one transaction
 * per request.
 */
struct bop {
	bool reserve;
	/* reserve */
	const char *keys[4];
	const struct gw_budget_scopes *s;
	int64_t amount;
	const char *which;
	/* settle / release */
	bool settle;
	int64_t actual;
	/* both */
	int64_t id;
	int rc;
	bool done;
	struct bop *next;
};

struct gw_budget {
	struct aam_db *db;
	pthread_mutex_t mu; /* the connection */
	gw_budget_clock clock;
	void *clock_ctx;
	pthread_mutex_t qmu; /* the queue */
	pthread_cond_t qcv;
	struct bop *head, **tail;
	bool combining;
	/* Rows read or written through the connection (under MU); see budget_cache.h. */
	struct gw_bcache spend, limits;
	int64_t data_version;
};

static void
cache_clear(struct gw_budget *b)
{
	gw_bcache_clear(&b->spend);
	gw_bcache_clear(&b->limits);
}

static int64_t
wall_clock(void *ctx)
{
	(void)ctx;
	return (int64_t)time(NULL);
}

static int64_t
to_micro(double usd, bool up)
{
	if (!(usd > 0) || usd > 1e12)
		return 0;
	double m = usd * 1e6;
	if (m > 9e15)
		m = 9e15;
	/* Rounded by hand: the library links no libm. */
	int64_t i = (int64_t)m;
	if (up ? (double)i < m : m - (double)i >= 0.5)
		i++;
	return i;
}

static void
periods(int64_t now, char day[16], char month[16])
{
	time_t t = (time_t)now;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(day, 16, "%Y-%m-%d", &tm);
	strftime(month, 16, "%Y-%m", &tm);
}

int
gw_budget_open(const char *path, struct gw_budget **out)
{
	if (path == NULL || out == NULL)
		return AAM_E_INVAL;
	*out = NULL;
	struct gw_budget *b = calloc(1, sizeof(*b));
	if (b == NULL)
		return AAM_E_NOMEM;
	b->clock = wall_clock;
	pthread_mutex_init(&b->mu, NULL);
	pthread_mutex_init(&b->qmu, NULL);
	pthread_cond_init(&b->qcv, NULL);
	b->tail = &b->head;
	int rc = aam_db_open(path, AAM_DB_CREATE, &b->db);
	if (rc == AAM_OK)
		rc = aam_db_exec(b->db, SCHEMA);
	if (rc == AAM_OK) {
		int64_t n = 0;
		rc = gw_budget_release_stale(b, GW_BUDGET_STALE_S, &n);
		if (n > 0)
			aam_log(AAM_LOG_WARN, "gateway.budget_stale_released",
			        AAM_F_INT("count", n));
	}
	if (rc != AAM_OK) {
		gw_budget_close(b);
		return rc;
	}
	*out = b;
	return AAM_OK;
}

void
gw_budget_close(struct gw_budget *b)
{
	if (b == NULL)
		return;
	cache_clear(b);
	aam_db_close(b->db);
	pthread_mutex_destroy(&b->mu);
	pthread_mutex_destroy(&b->qmu);
	pthread_cond_destroy(&b->qcv);
	free(b);
}

void
gw_budget_set_clock(struct gw_budget *b, gw_budget_clock fn, void *ctx)
{
	pthread_mutex_lock(&b->mu);
	b->clock = fn != NULL ? fn : wall_clock;
	b->clock_ctx = ctx;
	pthread_mutex_unlock(&b->mu);
}

/*
 * Forgets the cached rows when another connection (aamctl, a second
 * gateway) has committed since we last looked.  Caller holds MU.
 */
static int
cache_sync(struct gw_budget *b)
{
	struct aam_db_stmt *st = NULL;
	int rc = aam_db_stmt_get(b->db, "PRAGMA data_version", &st);
	if (rc != AAM_OK)
		return rc;
	bool row = false;
	rc = aam_db_step(st, &row);
	int64_t v = rc == AAM_OK && row ? aam_db_column_int64(st, 0) : -1;
	aam_db_stmt_release(st);
	if (rc != AAM_OK || v != b->data_version) {
		gw_bcache_clear(&b->spend);
		gw_bcache_clear(&b->limits);
		b->data_version = v;
	}
	return rc;
}

static int
spend_get(struct gw_budget *b, const char *scope, const char *key, const char *period, int64_t *out)
{
	int64_t v[2];
	if (gw_bcache_get(&b->spend, scope, key, period, v)) {
		*out = v[0];
		return AAM_OK;
	}
	struct aam_db_stmt *st = NULL;
	int rc = aam_db_stmt_get(b->db,
	                         "SELECT micro FROM budget_spend WHERE scope=?1 AND key=?2 AND "
	                         "period=?3",
	                         &st);
	if (rc != AAM_OK)
		return rc;
	aam_db_bind_str(st, 1, scope);
	aam_db_bind_str(st, 2, key);
	aam_db_bind_str(st, 3, period);
	bool row = false;
	rc = aam_db_step(st, &row);
	*out = rc == AAM_OK && row ? aam_db_column_int64(st, 0) : 0;
	aam_db_stmt_release(st);
	if (rc == AAM_OK)
		gw_bcache_put(&b->spend, scope, key, period, (int64_t[2]){*out, 0});
	return rc;
}

static int
spend_add(struct gw_budget *b, const char *scope, const char *key, const char *period,
          int64_t delta)
{
	struct aam_db_stmt *st = NULL;
	int rc = aam_db_stmt_get(b->db,
	                         "INSERT INTO budget_spend(scope,key,period,micro) "
	                         "VALUES(?1,?2,?3,max(?4,0)) ON CONFLICT(scope,key,period) "
	                         "DO UPDATE SET micro=max(micro+?4,0)",
	                         &st);
	if (rc != AAM_OK)
		return rc;
	aam_db_bind_str(st, 1, scope);
	aam_db_bind_str(st, 2, key);
	aam_db_bind_str(st, 3, period);
	aam_db_bind_int64(st, 4, delta);
	int rc2 = aam_db_run(st);
	/* The row is now max(old + delta, 0), as the statement computes it. */
	int64_t v[2];
	if (rc2 == AAM_OK && gw_bcache_get(&b->spend, scope, key, period, v)) {
		v[0] = v[0] + delta > 0 ? v[0] + delta : 0;
		gw_bcache_put(&b->spend, scope, key, period, v);
	} else if (rc2 != AAM_OK) {
		gw_bcache_forget(&b->spend, scope, key, period);
	}
	return rc2;
}

static int
limit_get(struct gw_budget *b, const char *scope, const char *key, int64_t *daily, int64_t *monthly)
{
	int64_t v[2];
	if (gw_bcache_get(&b->limits, scope, key, NULL, v)) {
		*daily = v[0];
		*monthly = v[1];
		return AAM_OK;
	}
	struct aam_db_stmt *st = NULL;
	int rc = aam_db_stmt_get(b->db,
	                         "SELECT daily_micro, monthly_micro FROM budget_limits "
	                         "WHERE scope=?1 AND key=?2",
	                         &st);
	if (rc != AAM_OK)
		return rc;
	aam_db_bind_str(st, 1, scope);
	aam_db_bind_str(st, 2, key);
	bool row = false;
	rc = aam_db_step(st, &row);
	*daily = *monthly = 0;
	if (rc == AAM_OK && row) {
		*daily = aam_db_column_int64(st, 0);
		*monthly = aam_db_column_int64(st, 1);
	}
	aam_db_stmt_release(st);
	if (rc == AAM_OK)
		gw_bcache_put(&b->limits, scope, key, NULL, (int64_t[2]){*daily, *monthly});
	return rc;
}

/* The tighter of two limits where 0 means none. */
static int64_t
tighter(int64_t a, int64_t b)
{
	if (a <= 0)
		return b;
	if (b <= 0)
		return a;
	return a < b ? a : b;
}

static int
over(struct gw_budget *b, const char *scope, const char *key, const char *period, int64_t limit,
     int64_t amount, bool *deny)
{
	if (limit <= 0)
		return AAM_OK;
	int64_t spent = 0;
	int rc = spend_get(b, scope, key, period, &spent);
	if (rc == AAM_OK && spent + amount > limit)
		*deny = true;
	return rc;
}

static int
reserve_tx(struct gw_budget *b, const char *const keys[NSCOPES], const struct gw_budget_scopes *s,
           int64_t amount, int64_t now, int64_t *id, const char **which)
{
	char day[16], month[16];
	periods(now, day, month);
	int rc = AAM_OK;
	for (size_t i = 0; i < NSCOPES && rc == AAM_OK; i++) {
		if (keys[i] == NULL)
			continue;
		int64_t dl = 0, ml = 0;
		rc = limit_get(b, SCOPE_NAMES[i], keys[i], &dl, &ml);
		if (i == 2) {
			dl = tighter(dl, to_micro(s->policy_daily_usd, false));
			ml = tighter(ml, to_micro(s->policy_monthly_usd, false));
		}
		bool deny = false;
		if (rc == AAM_OK)
			rc = over(b, SCOPE_NAMES[i], keys[i], day, dl, amount, &deny);
		if (rc == AAM_OK)
			rc = over(b, SCOPE_NAMES[i], keys[i], month, ml, amount, &deny);
		if (rc == AAM_OK && deny) {
			if (which != NULL)
				*which = SCOPE_NAMES[i];
			return AAM_E_DENIED;
		}
	}
	for (size_t i = 0; i < NSCOPES && rc == AAM_OK; i++) {
		if (keys[i] == NULL)
			continue;
		rc = spend_add(b, SCOPE_NAMES[i], keys[i], day, amount);
		if (rc == AAM_OK)
			rc = spend_add(b, SCOPE_NAMES[i], keys[i], month, amount);
	}
	struct aam_db_stmt *st = NULL;
	if (rc == AAM_OK)
		rc = aam_db_stmt_get(b->db,
		                     "INSERT INTO budget_reservations(created,micro,identity,team,"
		                     "policy,vkey,day,month) VALUES(?1,?2,?3,?4,?5,?6,?7,?8)",
		                     &st);
	if (rc == AAM_OK) {
		aam_db_bind_int64(st, 1, now);
		aam_db_bind_int64(st, 2, amount);
		for (int i = 0; i < NSCOPES; i++)
			aam_db_bind_str(st, 3 + i, keys[i]);
		aam_db_bind_str(st, 7, day);
		aam_db_bind_str(st, 8, month);
		rc = aam_db_run(st);
		if (rc == AAM_OK)
			*id = aam_db_last_insert_rowid(b->db);
	}
	return rc;
}

/* Moves reservation ID to DELTA_FROM_RESERVED applied to its scopes, then deletes it. */
static int
finish_tx(struct gw_budget *b, int64_t id, bool settle, int64_t actual)
{
	struct aam_db_stmt *st = NULL;
	int rc = aam_db_stmt_get(b->db,
	                         "SELECT micro,identity,team,policy,vkey,day,month FROM "
	                         "budget_reservations WHERE id=?1",
	                         &st);
	if (rc != AAM_OK)
		return rc;
	aam_db_bind_int64(st, 1, id);
	bool row = false;
	rc = aam_db_step(st, &row);
	if (rc == AAM_OK && !row)
		rc = AAM_E_NOTFOUND;
	int64_t reserved = 0;
	char *keys[NSCOPES] = {NULL, NULL, NULL, NULL};
	char day[16] = "", month[16] = "";
	if (rc == AAM_OK) {
		reserved = aam_db_column_int64(st, 0);
		for (int i = 0; i < NSCOPES; i++) {
			const char *k = aam_db_column_text(st, 1 + i, NULL);
			if (k != NULL && (keys[i] = strdup(k)) == NULL)
				rc = AAM_E_NOMEM;
		}
		const char *d = aam_db_column_text(st, 5, NULL),
		           *m = aam_db_column_text(st, 6, NULL);
		snprintf(day, sizeof(day), "%s", d != NULL ? d : "");
		snprintf(month, sizeof(month), "%s", m != NULL ? m : "");
	}
	aam_db_stmt_release(st);
	int64_t delta = (settle ? actual : 0) - reserved;
	for (int i = 0; i < NSCOPES && rc == AAM_OK; i++) {
		if (keys[i] == NULL)
			continue;
		rc = spend_add(b, SCOPE_NAMES[i], keys[i], day, delta);
		if (rc == AAM_OK)
			rc = spend_add(b, SCOPE_NAMES[i], keys[i], month, delta);
	}
	for (int i = 0; i < NSCOPES; i++)
		free(keys[i]);
	if (rc == AAM_OK)
		rc = aam_db_stmt_get(b->db, "DELETE FROM budget_reservations WHERE id=?1", &st);
	if (rc == AAM_OK) {
		aam_db_bind_int64(st, 1, id);
		rc = aam_db_run(st);
	}
	return rc;
}

/* Runs LIST in one transaction (caller holds nothing; takes the connection). */
static void
run_batch(struct gw_budget *b, struct bop *list)
{
	pthread_mutex_lock(&b->mu);
	int64_t now = b->clock(b->clock_ctx);
	int rc = aam_db_begin(b->db);
	if (rc == AAM_OK)
		rc = cache_sync(b);
	for (struct bop *o = list; rc == AAM_OK && o != NULL; o = o->next) {
		if (o->reserve)
			o->rc = reserve_tx(b, o->keys, o->s, o->amount, now, &o->id, &o->which);
		else
			o->rc = finish_tx(b, o->id, o->settle, o->actual);
		/* Refusals happen before an operation writes anything; other errors end the batch.
		 */
		if (o->rc != AAM_OK && o->rc != AAM_E_DENIED && o->rc != AAM_E_NOTFOUND)
			rc = o->rc;
	}
	if (rc == AAM_OK)
		rc = aam_db_commit(b->db);
	if (rc != AAM_OK) {
		aam_db_rollback(b->db);
		cache_clear(b); /* it holds what the rolled-back statements wrote */
		for (struct bop *o = list; o != NULL; o = o->next)
			o->rc = rc;
	}
	pthread_mutex_unlock(&b->mu);
}

static int
submit(struct gw_budget *b, struct bop *op)
{
	op->next = NULL;
	op->done = false;
	pthread_mutex_lock(&b->qmu);
	*b->tail = op;
	b->tail = &op->next;
	while (!op->done) {
		if (b->combining) {
			pthread_cond_wait(&b->qcv, &b->qmu);
			continue;
		}
		b->combining = true;
		struct bop *list = b->head;
		b->head = NULL;
		b->tail = &b->head;
		pthread_mutex_unlock(&b->qmu);
		run_batch(b, list);
		pthread_mutex_lock(&b->qmu);
		/* Read NEXT before DONE: a finished operation's owner may return at once. */
		for (struct bop *o = list, *nx; o != NULL; o = nx) {
			nx = o->next;
			o->done = true;
		}
		b->combining = false;
		pthread_cond_broadcast(&b->qcv);
	}
	pthread_mutex_unlock(&b->qmu);
	return op->rc;
}

int
gw_budget_reserve(struct gw_budget *b, const struct gw_budget_scopes *s, double amount_usd,
                  int64_t *id, const char **which)
{
	if (b == NULL || s == NULL || id == NULL || !(amount_usd >= 0))
		return AAM_E_INVAL;
	struct bop op;
	memset(&op, 0, sizeof(op));
	op.reserve = true;
	op.s = s;
	op.keys[0] = s->identity;
	op.keys[1] = s->team;
	op.keys[2] = s->policy;
	op.keys[3] = s->vkey;
	for (size_t i = 0; i < NSCOPES; i++)
		if (op.keys[i] != NULL && op.keys[i][0] == '\0')
			op.keys[i] = NULL;
	op.amount = to_micro(amount_usd, true);
	int rc = submit(b, &op);
	if (rc == AAM_OK)
		*id = op.id;
	if (rc == AAM_E_DENIED && which != NULL)
		*which = op.which;
	return rc;
}

static int
finish(struct gw_budget *b, int64_t id, bool settle, double actual_usd)
{
	if (b == NULL || id <= 0)
		return AAM_E_INVAL;
	struct bop op;
	memset(&op, 0, sizeof(op));
	op.id = id;
	op.settle = settle;
	op.actual = to_micro(actual_usd, false);
	return submit(b, &op);
}

int
gw_budget_settle(struct gw_budget *b, int64_t id, double actual_usd)
{
	return finish(b, id, true, actual_usd);
}

int
gw_budget_release(struct gw_budget *b, int64_t id)
{
	return finish(b, id, false, 0);
}

int
gw_budget_release_stale(struct gw_budget *b, int64_t older_than_s, int64_t *n)
{
	if (b == NULL)
		return AAM_E_INVAL;
	if (n != NULL)
		*n = 0;
	pthread_mutex_lock(&b->mu);
	int64_t cutoff = b->clock(b->clock_ctx) - older_than_s;
	int rc = aam_db_begin(b->db);
	if (rc == AAM_OK)
		rc = cache_sync(b);
	int64_t count = 0;
	while (rc == AAM_OK) {
		struct aam_db_stmt *st = NULL;
		rc = aam_db_stmt_get(
		        b->db, "SELECT id FROM budget_reservations WHERE created < ?1 LIMIT 1",
		        &st);
		if (rc != AAM_OK)
			break;
		aam_db_bind_int64(st, 1, cutoff);
		bool row = false;
		rc = aam_db_step(st, &row);
		int64_t id = rc == AAM_OK && row ? aam_db_column_int64(st, 0) : 0;
		aam_db_stmt_release(st);
		if (rc != AAM_OK || id == 0)
			break;
		rc = finish_tx(b, id, false, 0);
		count++;
	}
	if (rc == AAM_OK)
		rc = aam_db_commit(b->db);
	if (rc != AAM_OK) {
		aam_db_rollback(b->db);
		cache_clear(b);
	}
	pthread_mutex_unlock(&b->mu);
	if (rc == AAM_OK && n != NULL)
		*n = count;
	return rc;
}

int
gw_budget_spent(struct gw_budget *b, const char *scope, const char *key, double *today,
                double *month)
{
	if (b == NULL || scope == NULL || key == NULL)
		return AAM_E_INVAL;
	bool known = false;
	for (size_t i = 0; i < NSCOPES; i++)
		known = known || strcmp(scope, SCOPE_NAMES[i]) == 0;
	if (!known)
		return AAM_E_INVAL;
	char day[16], mon[16];
	pthread_mutex_lock(&b->mu);
	periods(b->clock(b->clock_ctx), day, mon);
	int64_t d = 0, m = 0;
	int rc = cache_sync(b);
	if (rc == AAM_OK)
		rc = spend_get(b, scope, key, day, &d);
	if (rc == AAM_OK)
		rc = spend_get(b, scope, key, mon, &m);
	pthread_mutex_unlock(&b->mu);
	if (today != NULL)
		*today = (double)d / 1e6;
	if (month != NULL)
		*month = (double)m / 1e6;
	return rc;
}

int
gw_budget_set_limit(struct gw_budget *b, const char *scope, const char *key, double daily_usd,
                    double monthly_usd)
{
	if (b == NULL || scope == NULL || key == NULL || daily_usd < 0 || monthly_usd < 0)
		return AAM_E_INVAL;
	struct aam_db_stmt *st = NULL;
	pthread_mutex_lock(&b->mu);
	int rc;
	if (daily_usd == 0 && monthly_usd == 0) {
		rc = aam_db_stmt_get(b->db, "DELETE FROM budget_limits WHERE scope=?1 AND key=?2",
		                     &st);
	} else {
		rc = aam_db_stmt_get(
		        b->db,
		        "INSERT INTO budget_limits(scope,key,daily_micro,monthly_micro) "
		        "VALUES(?1,?2,?3,?4) ON CONFLICT(scope,key) DO UPDATE SET "
		        "daily_micro=?3, monthly_micro=?4",
		        &st);
		if (rc == AAM_OK) {
			aam_db_bind_int64(st, 3, to_micro(daily_usd, false));
			aam_db_bind_int64(st, 4, to_micro(monthly_usd, false));
		}
	}
	if (rc == AAM_OK) {
		aam_db_bind_str(st, 1, scope);
		aam_db_bind_str(st, 2, key);
		rc = aam_db_run(st);
	}
	gw_bcache_forget(&b->limits, scope, key, NULL);
	pthread_mutex_unlock(&b->mu);
	return rc;
}
