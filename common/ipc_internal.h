/*
 * Helpers shared by the IPC transport files (ipc.c, ipc_server.c,
 * ipc_client.c) and nothing else: monotonic deadlines and condition
 * variables that wait on them.  Not part of the module's API.
 */
#ifndef AAM_COMMON_IPC_INTERNAL_H
#define AAM_COMMON_IPC_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "aam/ipc.h"

/* Milliseconds on the monotonic clock. */
int64_t aam_ipc_now_ms(void);

/* A deadline TIMEOUT_MS from now; -1 (none) when TIMEOUT_MS < 0. */
int64_t aam_ipc_deadline(int timeout_ms);

/* Milliseconds left until DEADLINE for poll(): -1 for none, 0 if passed. */
int aam_ipc_remaining(int64_t deadline);

/*
 * Initialises a mutex that spins briefly before sleeping (ipc_pool.c):
 * the transport's locks are held for a few instructions, so a short spin
 * is cheaper than a futex sleep and wake-up.
 */
void aam_ipc_mutex_init_adaptive(pthread_mutex_t *m);

/* A condition variable that times out on the monotonic clock. */
int aam_ipc_cond_init(pthread_cond_t *c);

/*
 * pthread_cond_wait until DEADLINE (-1: none).  Returns 0 when woken (the
 * caller re-checks its predicate) and ETIMEDOUT once the deadline passed.
 */
int aam_ipc_cond_wait(pthread_cond_t *c, pthread_mutex_t *m, int64_t deadline);

/*
 * aam_ipc_write_frame() that also reports how many bytes went out, so a
 * caller can tell a frame never started (the stream is intact) from one
 * cut short (the stream is lost).
 */
int aam_ipc_write_frame_part(int fd, const struct aam_ipc_hdr *h, const void *payload,
                             int timeout_ms, size_t *written);

#endif
