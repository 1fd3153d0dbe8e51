/*
 * IPC server helper: the listening loop, admission of connections
 * (credentials, limits) and orderly shutdown.  Reading and running
 * requests is in ipc_dispatch.c, writing replies in ipc_reply.c; the
 * lifetime rules are in ipc_server_internal.h.
 */
#include "common/ipc.h"
#include "common/ipc_internal.h"
#include "common/ipc_server_internal.h"
#include "common/buf.h"
#include "common/log.h"
#include "aam/err.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- connections ------------------------------------------------------- */

static void
conn_free(struct aam_ipc_conn *c)
{
	struct aam_ipc_server *s = c->srv;
	pthread_mutex_lock(&s->mu);
	for (struct aam_ipc_conn **pp = &s->conns; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	/* Closed under the server lock so stop() never shuts down a reused fd. */
	close(c->fd);
	s->nconns--;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mu);
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->wmu);
	pthread_cond_destroy(&c->cond);
	free(c);
}

/* Drops one reference (the caller holds c->mu, which this releases). */
void
aam_ipc_conn_unref_unlock(struct aam_ipc_conn *c)
{
	bool last = --c->refs == 0;
	pthread_mutex_unlock(&c->mu);
	if (last)
		conn_free(c);
}

void
aam_ipc_conn_kill(struct aam_ipc_conn *c)
{
	pthread_mutex_lock(&c->mu);
	atomic_store(&c->dead, true);
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->mu);
	shutdown(c->fd, SHUT_RDWR);
}

/* ---- server ------------------------------------------------------------ */

/* Warm pool size: a few threads per CPU, since handlers mostly wait on the token. */
static unsigned
default_workers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	unsigned w = 4u * (unsigned)(n > 16 ? 16 : n);
	return w < 4 ? 4 : w > 64 ? 64 : w;
}

int
aam_ipc_server_new(const struct aam_ipc_server_config *cfg, int listen_fd,
                   struct aam_ipc_server **out)
{
	*out = NULL;
	if (cfg == NULL || cfg->handle == NULL)
		return AAM_E_INVAL;
	struct aam_ipc_server *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return AAM_E_NOMEM;
	s->cfg = *cfg;
	if (s->cfg.max_conns == 0)
		s->cfg.max_conns = 64;
	if (s->cfg.max_inflight == 0)
		s->cfg.max_inflight = 32;
	if (s->cfg.frame_timeout_ms <= 0)
		s->cfg.frame_timeout_ms = AAM_IPC_FRAME_TIMEOUT_MS;
	if (s->cfg.write_timeout_ms <= 0)
		s->cfg.write_timeout_ms = 5000;
	if (s->cfg.max_queued == 0)
		s->cfg.max_queued = 4u * 1024 * 1024;
	if (s->cfg.workers == 0)
		s->cfg.workers = default_workers();
	if (s->cfg.max_workers == 0)
		s->cfg.max_workers = 256;
	if (s->cfg.max_workers < s->cfg.workers)
		s->cfg.max_workers = s->cfg.workers;
	if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
		free(s);
		return AAM_E_IO;
	}
	if (aam_ipc_cond_init(&s->cond) != AAM_OK) {
		close(s->wake[0]);
		close(s->wake[1]);
		free(s);
		return AAM_E_NOMEM;
	}
	if (aam_ipc_pool_init(&s->pool, s->cfg.workers, s->cfg.max_workers, aam_ipc_req_run) !=
	    AAM_OK) {
		pthread_cond_destroy(&s->cond);
		close(s->wake[0]);
		close(s->wake[1]);
		free(s);
		return AAM_E_NOMEM;
	}
	pthread_mutex_init(&s->mu, NULL);
	aam_ipc_mutex_init_adaptive(&s->stat_mu);
	s->lfd = listen_fd;
	*out = s;
	return AAM_OK;
}

static void *
reader_main(void *arg)
{
	struct aam_ipc_conn *c = arg;
	struct aam_ipc_server *s = c->srv;
	aam_ipc_conn_reader(c); /* C may be gone after this */
	pthread_mutex_lock(&s->mu);
	aam_reaper_done(&s->readers);
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static int
add_conn(struct aam_ipc_server *s, int fd)
{
	aam_reaper_join(&s->readers, &s->mu);
	struct aam_ipc_peer peer;
	int rc = aam_ipc_peer_get(fd, &peer);
	if (rc == AAM_OK && s->cfg.accept != NULL && s->cfg.accept(s->cfg.ctx, &peer) != AAM_OK)
		rc = AAM_E_PERM;
	pthread_mutex_lock(&s->mu);
	if (rc == AAM_OK && atomic_load(&s->stopping))
		rc = AAM_E_CLOSED;
	else if (rc == AAM_OK && s->nconns >= s->cfg.max_conns)
		rc = AAM_E_BUSY;
	struct aam_ipc_conn *c = NULL;
	if (rc == AAM_OK && (c = calloc(1, sizeof(*c))) == NULL)
		rc = AAM_E_NOMEM;
	if (rc == AAM_OK && !aam_reaper_add(&s->readers)) {
		free(c);
		rc = AAM_E_NOMEM;
	}
	if (rc == AAM_OK) {
		c->srv = s;
		c->fd = fd;
		c->peer = peer;
		c->refs = 1;
		aam_ipc_mutex_init_adaptive(&c->mu);
		pthread_mutex_init(&c->wmu, NULL);
		pthread_cond_init(&c->cond, NULL);
		c->next = s->conns;
		s->conns = c;
		s->nconns++;
	}
	pthread_mutex_unlock(&s->mu);
	if (rc != AAM_OK) {
		/* Refused peers still learn why, in a connection-level error. */
		struct aam_buf b;
		aam_buf_init(&b, AAM_IPC_MAX_ERRMSG + 16);
		if (aam_ipc_error_encode(&b, rc, NULL) == AAM_OK) {
			struct aam_ipc_hdr h = {.type = AAM_IPC_ERROR,
			                        .flags = AAM_IPC_F_ERROR,
			                        .len = (uint32_t)b.len};
			aam_ipc_write_frame(fd, &h, b.data, 100);
		}
		aam_buf_uninit(&b);
		aam_log(AAM_LOG_WARN, "ipc.peer_refused", AAM_F_INT("pid", peer.pid),
		        AAM_F_UINT("uid", peer.uid), AAM_F_ERR(rc));
		close(fd);
		return rc;
	}
	pthread_t t;
	if (pthread_create(&t, NULL, reader_main, c) != 0) {
		pthread_mutex_lock(&s->mu);
		aam_reaper_cancel(&s->readers);
		pthread_mutex_unlock(&s->mu);
		pthread_mutex_lock(&c->mu);
		aam_ipc_conn_unref_unlock(c);
		return AAM_E_NOMEM;
	}
	return AAM_OK;
}

int
aam_ipc_server_adopt(struct aam_ipc_server *s, int fd)
{
	if (s == NULL || fd < 0)
		return AAM_E_INVAL;
	return add_conn(s, fd);
}

unsigned
aam_ipc_server_conns(struct aam_ipc_server *s)
{
	pthread_mutex_lock(&s->mu);
	unsigned n = s->nconns;
	pthread_mutex_unlock(&s->mu);
	return n;
}

void
aam_ipc_server_stop(struct aam_ipc_server *s)
{
	/* Async-signal-safe: an atomic store and a write(). */
	int saved = errno;
	atomic_store(&s->stopping, 1);
	ssize_t w = write(s->wake[1], "x", 1);
	(void)w; /* a full pipe already holds a wake-up */
	errno = saved;
}

/* Closes every connection and waits until their requests are all handled. */
static void
close_all(struct aam_ipc_server *s)
{
	pthread_mutex_lock(&s->mu);
	for (struct aam_ipc_conn *c = s->conns; c != NULL; c = c->next)
		aam_ipc_conn_kill(c);
	while (s->nconns > 0 || s->readers.running > 0)
		pthread_cond_wait(&s->cond, &s->mu);
	pthread_mutex_unlock(&s->mu);
	aam_reaper_join(&s->readers, &s->mu);
}

int
aam_ipc_server_run(struct aam_ipc_server *s)
{
	while (!atomic_load(&s->stopping)) {
		struct pollfd pfd[2] = {{.fd = s->wake[0], .events = POLLIN},
		                        {.fd = s->lfd, .events = POLLIN}};
		int n = poll(pfd, s->lfd >= 0 ? 2 : 1, -1);
		if (n < 0 && errno != EINTR)
			return AAM_E_IO;
		if (n <= 0 || atomic_load(&s->stopping) || !(pfd[1].revents & POLLIN))
			continue;
		int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0) {
			add_conn(s, fd);
		} else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		           errno == ENOMEM) {
			/* Out of descriptors: back off rather than spin. */
			aam_log(AAM_LOG_ERROR, "ipc.accept_failed", AAM_F_INT("errno", errno));
			struct timespec nap = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
			nanosleep(&nap, NULL);
		}
	}
	close_all(s);
	return AAM_OK;
}

void
aam_ipc_server_free(struct aam_ipc_server *s)
{
	if (s == NULL)
		return;
	aam_ipc_server_stop(s);
	close_all(s);
	/* Every connection is gone, so no request is left for the workers. */
	aam_ipc_pool_uninit(&s->pool);
	if (s->lfd >= 0)
		close(s->lfd);
	close(s->wake[0]);
	close(s->wake[1]);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->stat_mu);
	pthread_cond_destroy(&s->cond);
	aam_reaper_uninit(&s->readers);
	free(s);
}
