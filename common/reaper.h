/*
 * Joinable short-lived threads without a join per thread at its end.
 *
 * A server that starts a thread per connection or per stream wants to wait,
 * when it stops, until every such thread has fully exited: a detached thread
 * may still be tearing down its thread-local state after the counter it
 * decremented let stop() return, and the process may exit (and
 * LeakSanitizer check it) in between.  So the threads stay joinable: each
 * one, as its last act, records its id (aam_reaper_done); whoever starts the
 * next thread, and stop(), joins the recorded ones (aam_reaper_join).  Room
 * for the id is made when the thread is counted (aam_reaper_add), so a
 * finishing thread never allocates.
 *
 * Not locked itself: the owner's mutex MU guards it; aam_reaper_add and
 * aam_reaper_done are called with MU held, aam_reaper_join without.
 */
#ifndef AAM_COMMON_REAPER_H
#define AAM_COMMON_REAPER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct aam_reaper {
	unsigned running; /* counted and not yet done */
	pthread_t *done;  /* finished, to be joined; room for running + ndone */
	size_t ndone, cap;
};

/* Counts one more thread about to start; false (nothing counted) when out of memory. MU held. */
bool aam_reaper_add(struct aam_reaper *r);
/* Uncounts a thread that could not be started.  MU held. */
void aam_reaper_cancel(struct aam_reaper *r);
/* The calling thread's last act: records it for joining.  MU held. */
void aam_reaper_done(struct aam_reaper *r);
/* Joins every recorded thread (takes MU itself, joins without it). */
void aam_reaper_join(struct aam_reaper *r, pthread_mutex_t *mu);
/* Frees the bookkeeping (after the last join). */
void aam_reaper_uninit(struct aam_reaper *r);

#endif /* AAM_COMMON_REAPER_H */
