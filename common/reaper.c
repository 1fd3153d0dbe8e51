/*
 * Joinable short-lived threads (see reaper.h).
 */
#include "common/reaper.h"

#include <stdlib.h>

bool
aam_reaper_add(struct aam_reaper *r)
{
	size_t need = (size_t)r->running + r->ndone + 1;
	if (need > r->cap) {
		size_t cap = r->cap != 0 ? r->cap * 2 : 16;
		while (cap < need)
			cap *= 2;
		pthread_t *d = realloc(r->done, cap * sizeof(*d));
		if (d == NULL)
			return false;
		r->done = d;
		r->cap = cap;
	}
	r->running++;
	return true;
}

void
aam_reaper_cancel(struct aam_reaper *r)
{
	r->running--;
}

void
aam_reaper_done(struct aam_reaper *r)
{
	r->done[r->ndone++] = pthread_self(); /* room made by aam_reaper_add */
	r->running--;
}

void
aam_reaper_join(struct aam_reaper *r, pthread_mutex_t *mu)
{
	pthread_t batch[64];
	for (;;) {
		size_t n = 0;
		pthread_mutex_lock(mu);
		while (n < sizeof(batch) / sizeof(batch[0]) && r->ndone > 0)
			batch[n++] = r->done[--r->ndone];
		pthread_mutex_unlock(mu);
		if (n == 0)
			return;
		for (size_t i = 0; i < n; i++)
			pthread_join(batch[i], NULL);
	}
}

void
aam_reaper_uninit(struct aam_reaper *r)
{
	free(r->done);
	r->done = NULL;
	r->ndone = r->cap = 0;
}
