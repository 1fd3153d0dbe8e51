/*
 * The policy store: the set in service, swapped atomically on reload.
 *
 * Readers must never wait for a reload (a decision sits on the path of
 * every model and tool call), so there is no lock on the read side.  The
 * hazard is the usual one: a reader loads the pointer, a writer swaps and
 * drops the old set, and the reader then takes a reference on freed
 * memory.  The store closes it the way userspace RCU does, with two
 * reader counters and a phase bit:
 *
 *   reader:  p = phase; active[p]++; set = cur; set->refs++; active[p]--
 *   writer:  old = swap(cur, new); twice { flip phase; wait active[old phase] == 0 }
 *            then drop old
 *
 * After the first flip, new readers count on the other side, so the
 * counter the writer waits on only drains; the second flip catches a
 * reader that read the phase before an earlier writer's flip.  Once both
 * waits are over, no reader can still be between loading the old pointer
 * and taking its reference, so the old set lives exactly as long as the
 * references held on it.  All atomics are sequentially consistent, which
 * the argument relies on.  Writers are serialised by a mutex; they only
 * ever spin for the few instructions a reader spends in that window.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aam/err.h"
#include "common/fswatch.h"
#include "common/log.h"
#include "gateway/policy_internal.h"

struct gw_policy_store {
	_Atomic(gw_policy_set *) cur;
	atomic_uint phase;
	atomic_ulong active[2];
	atomic_uint_fast64_t generation;
	pthread_mutex_t wlock; /* serialises swaps */
	pthread_mutex_t rlock; /* serialises reloads and guards sig */
	uint64_t sig;
	bool have_sig;
};

int
gw_policy_store_new(gw_policy_store **out)
{
	if (out == NULL)
		return AAM_E_INVAL;
	gw_policy_store *st = calloc(1, sizeof(*st));
	if (st == NULL)
		return AAM_E_NOMEM;
	atomic_init(&st->cur, NULL);
	atomic_init(&st->phase, 0);
	atomic_init(&st->active[0], 0);
	atomic_init(&st->active[1], 0);
	atomic_init(&st->generation, 0);
	if (pthread_mutex_init(&st->wlock, NULL) != 0) {
		free(st);
		return AAM_E_NOMEM;
	}
	if (pthread_mutex_init(&st->rlock, NULL) != 0) {
		pthread_mutex_destroy(&st->wlock);
		free(st);
		return AAM_E_NOMEM;
	}
	*out = st;
	return AAM_OK;
}

void
gw_policy_store_free(gw_policy_store *st)
{
	if (st == NULL)
		return;
	gw_policy_set_unref(atomic_load(&st->cur));
	pthread_mutex_destroy(&st->wlock);
	pthread_mutex_destroy(&st->rlock);
	free(st);
}

gw_policy_set *
gw_policy_store_acquire(gw_policy_store *st)
{
	if (st == NULL)
		return NULL;
	unsigned p = atomic_load(&st->phase) & 1u;
	atomic_fetch_add(&st->active[p], 1);
	gw_policy_set *s = atomic_load(&st->cur);
	if (s != NULL)
		atomic_fetch_add(&s->refs, 1);
	atomic_fetch_sub(&st->active[p], 1);
	return s;
}

void
gw_policy_store_release(gw_policy_set *set)
{
	gw_policy_set_unref(set);
}

int
gw_policy_store_swap(gw_policy_store *st, gw_policy_set *set)
{
	if (st == NULL || set == NULL)
		return AAM_E_INVAL;
	gw_policy_set_ref(set);
	pthread_mutex_lock(&st->wlock);
	gw_policy_set *old = atomic_exchange(&st->cur, set);
	for (int round = 0; round < 2; round++) {
		unsigned prev = atomic_fetch_xor(&st->phase, 1u) & 1u;
		while (atomic_load(&st->active[prev]) != 0)
			sched_yield();
	}
	atomic_fetch_add(&st->generation, 1);
	pthread_mutex_unlock(&st->wlock);
	gw_policy_set_unref(old);
	return AAM_OK;
}

uint64_t
gw_policy_store_generation(const gw_policy_store *st)
{
	return st ? atomic_load(&st->generation) : 0;
}

static void
log_errors(const struct gw_policy_diag *d)
{
	char line[1024];
	for (size_t i = 0; i < d->n; i++) {
		gw_policy_diag_format(d, i, line, sizeof(line));
		aam_log(AAM_LOG_ERROR, "policy.reload_error", AAM_F_STR("detail", line));
	}
	if (d->dropped)
		aam_log(AAM_LOG_ERROR, "policy.reload_error",
		        AAM_F_UINT("more_errors", d->dropped));
}

/* Loads and swaps; the caller holds rlock. */
static int
reload_locked(gw_policy_store *st, const char *const *paths, size_t npaths,
              const struct gw_policy_load_opts *opts, struct gw_policy_diag *diag)
{
	struct gw_policy_diag local;
	gw_policy_diag_init(&local);
	struct gw_policy_diag *d = diag ? diag : &local;
	gw_policy_set *set = NULL;
	int rc = gw_policy_set_load(paths, npaths, opts, &set, d);
	if (rc != AAM_OK) {
		log_errors(d);
		gw_policy_set *cur = gw_policy_store_acquire(st);
		aam_log(AAM_LOG_ERROR, "policy.reload_failed", AAM_F_ERR(rc),
		        AAM_F_UINT("errors", d->n + d->dropped),
		        AAM_F_STR("serving", cur ? gw_policy_set_hash_hex(cur) : "none"));
		gw_policy_store_release(cur);
		gw_policy_diag_uninit(&local);
		return rc;
	}
	gw_policy_store_swap(st, set);
	aam_log(AAM_LOG_INFO, "policy.reloaded", AAM_F_UINT("policies", gw_policy_set_count(set)),
	        AAM_F_STR("hash", gw_policy_set_hash_hex(set)));
	gw_policy_set_unref(set);
	gw_policy_diag_uninit(&local);
	return AAM_OK;
}

int
gw_policy_store_reload(gw_policy_store *st, const char *const *paths, size_t npaths,
                       const struct gw_policy_load_opts *opts, struct gw_policy_diag *diag)
{
	if (st == NULL)
		return AAM_E_INVAL;
	pthread_mutex_lock(&st->rlock);
	int rc = reload_locked(st, paths, npaths, opts, diag);
	pthread_mutex_unlock(&st->rlock);
	return rc;
}

int
gw_policy_store_reload_if_changed(gw_policy_store *st, const char *const *paths, size_t npaths,
                                  const struct gw_policy_load_opts *opts,
                                  struct gw_policy_diag *diag, bool *reloaded)
{
	if (reloaded != NULL)
		*reloaded = false;
	if (st == NULL || paths == NULL)
		return AAM_E_INVAL;
	pthread_mutex_lock(&st->rlock);
	uint64_t sig = aam_fswatch_fingerprint(paths, npaths);
	int rc = AAM_OK;
	if (!st->have_sig || sig != st->sig) {
		/*
		 * Remember the signature even when the load fails, so a broken
		 * file is reported once, not on every poll; the next edit
		 * changes the signature and triggers another attempt.
		 */
		st->sig = sig;
		st->have_sig = true;
		rc = reload_locked(st, paths, npaths, opts, diag);
		if (rc == AAM_OK && reloaded != NULL)
			*reloaded = true;
	}
	pthread_mutex_unlock(&st->rlock);
	return rc;
}
