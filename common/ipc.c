/*
 * IPC sockets: listening, connecting, peer credentials and whole-frame
 * reads and writes with deadlines.  Every socket operation uses
 * MSG_DONTWAIT and poll(), so a deadline holds whatever the fd's blocking
 * mode, and MSG_NOSIGNAL, so a vanished peer is an error code rather than
 * a SIGPIPE.
 */
#include "common/ipc.h"
#include "common/ipc_internal.h"
#include "aam/err.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ---- time -------------------------------------------------------------- */

int64_t
aam_ipc_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
aam_ipc_deadline(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : aam_ipc_now_ms() + timeout_ms;
}

int
aam_ipc_remaining(int64_t deadline)
{
	if (deadline < 0)
		return -1;
	int64_t left = deadline - aam_ipc_now_ms();
	if (left <= 0)
		return 0;
	return left > INT32_MAX ? INT32_MAX : (int)left;
}

int
aam_ipc_cond_init(pthread_cond_t *c)
{
	pthread_condattr_t a;
	if (pthread_condattr_init(&a) != 0)
		return AAM_E_NOMEM;
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	int rc = pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
	return rc == 0 ? AAM_OK : AAM_E_NOMEM;
}

int
aam_ipc_cond_wait(pthread_cond_t *c, pthread_mutex_t *m, int64_t deadline)
{
	if (deadline < 0)
		return pthread_cond_wait(c, m);
	if (aam_ipc_now_ms() >= deadline)
		return ETIMEDOUT;
	struct timespec ts = {.tv_sec = deadline / 1000, .tv_nsec = (deadline % 1000) * 1000000};
	int rc = pthread_cond_timedwait(c, m, &ts);
	return rc == ETIMEDOUT ? ETIMEDOUT : 0;
}

/* ---- sockets ----------------------------------------------------------- */

static int
fill_addr(struct sockaddr_un *sa, const char *path)
{
	if (path == NULL || *path == '\0')
		return AAM_E_INVAL;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	size_t n = strlen(path);
	if (n >= sizeof(sa->sun_path))
		return AAM_E_TOOBIG;
	memcpy(sa->sun_path, path, n + 1);
	return AAM_OK;
}

static int
errno_to_err(int e)
{
	switch (e) {
	case ENOENT:
		return AAM_E_NOTFOUND;
	case EACCES:
	case EPERM:
		return AAM_E_PERM;
	case ECONNREFUSED:
	case ECONNRESET:
	case EPIPE:
		return AAM_E_CLOSED;
	case ENOMEM:
	case ENOBUFS:
		return AAM_E_NOMEM;
	case EADDRINUSE:
	case EEXIST:
		return AAM_E_EXISTS;
	default:
		return AAM_E_IO;
	}
}

/* Waits for EV on FD until DEADLINE. */
static int
wait_fd(int fd, short ev, int64_t deadline)
{
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = ev};
		int rc = poll(&pfd, 1, aam_ipc_remaining(deadline));
		if (rc > 0)
			return AAM_OK; /* readiness or an error: the next call says which */
		if (rc == 0)
			return AAM_E_TIMEOUT;
		if (errno != EINTR)
			return AAM_E_IO;
	}
}

/* Whether a live server accepts connections at SA. */
static int
probe_live(const struct sockaddr_un *sa, bool *live)
{
	*live = false;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return errno_to_err(errno);
	int rc = AAM_OK;
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 || errno == EAGAIN)
		*live = true; /* EAGAIN: a full backlog is still a live server */
	else if (errno != ECONNREFUSED)
		rc = errno_to_err(errno);
	close(fd);
	return rc;
}

int
aam_ipc_listen(const char *path, mode_t mode, int backlog, int *fd_out)
{
	struct sockaddr_un sa;
	*fd_out = -1;
	int rc = fill_addr(&sa, path);
	if (rc != AAM_OK)
		return rc;
	struct stat st;
	if (lstat(path, &st) == 0) {
		/* Only ever remove a socket, and only one nobody answers on. */
		if (!S_ISSOCK(st.st_mode))
			return AAM_E_EXISTS;
		bool live;
		rc = probe_live(&sa, &live);
		if (rc != AAM_OK)
			return rc;
		if (live)
			return AAM_E_EXISTS;
		if (unlink(path) != 0 && errno != ENOENT)
			return errno_to_err(errno);
	} else if (errno != ENOENT) {
		return errno_to_err(errno);
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno_to_err(errno);
	if (bind(fd, (const struct sockaddr *)&sa, sizeof(sa)) != 0) {
		rc = errno_to_err(errno);
		close(fd);
		return rc;
	}
	/*
	 * Connecting needs write permission on the socket file, checked at
	 * connect time, and connect() is refused until listen().  Setting the
	 * mode between the two closes the window in which the umask's
	 * permissions applied, without touching the process-wide umask.
	 */
	if (chmod(path, mode) != 0 || listen(fd, backlog > 0 ? backlog : 64) != 0) {
		rc = errno_to_err(errno);
		unlink(path);
		close(fd);
		return rc;
	}
	*fd_out = fd;
	return AAM_OK;
}

int
aam_ipc_connect(const char *path, int timeout_ms, int *fd_out)
{
	struct sockaddr_un sa;
	*fd_out = -1;
	int rc = fill_addr(&sa, path);
	if (rc != AAM_OK)
		return rc;
	int64_t deadline = aam_ipc_deadline(timeout_ms);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return errno_to_err(errno);
	/*
	 * A non-blocking AF_UNIX connect does not queue: EAGAIN means the
	 * server's backlog is full right now, so retry until the deadline.
	 */
	while (connect(fd, (const struct sockaddr *)&sa, sizeof(sa)) != 0) {
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			rc = errno_to_err(errno);
			close(fd);
			return rc;
		}
		if (aam_ipc_remaining(deadline) == 0) {
			close(fd);
			return AAM_E_TIMEOUT;
		}
		struct timespec nap = {.tv_sec = 0, .tv_nsec = 5 * 1000 * 1000};
		nanosleep(&nap, NULL);
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	*fd_out = fd;
	return AAM_OK;
}

int
aam_ipc_peer_get(int fd, struct aam_ipc_peer *peer)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);
	memset(peer, 0, sizeof(*peer));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) != 0)
		return errno_to_err(errno);
	if (len != sizeof(uc))
		return AAM_E_IO;
	peer->pid = uc.pid;
	peer->uid = uc.uid;
	peer->gid = uc.gid;
	return AAM_OK;
}

/* ---- frames ------------------------------------------------------------ */

/*
 * Reads at least one and at most N - *GOT bytes into P + *GOT, waiting
 * until DEADLINE.  *GOT counts the bytes read so far, which lets the
 * caller tell an orderly close from a truncated frame.
 */
static int
read_some(int fd, uint8_t *p, size_t n, int64_t deadline, size_t *got)
{
	for (;;) {
		ssize_t r = recv(fd, p + *got, n - *got, MSG_DONTWAIT);
		if (r > 0) {
			*got += (size_t)r;
			return AAM_OK;
		}
		if (r == 0)
			return AAM_E_CLOSED;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return errno == ECONNRESET ? AAM_E_CLOSED : AAM_E_IO;
		int rc = wait_fd(fd, POLLIN, deadline);
		if (rc != AAM_OK)
			return rc;
	}
}

static int
read_full(int fd, uint8_t *p, size_t n, int64_t deadline, size_t *got)
{
	while (*got < n) {
		int rc = read_some(fd, p, n, deadline, got);
		if (rc != AAM_OK)
			return rc;
	}
	return AAM_OK;
}

int
aam_ipc_read_frame(int fd, int idle_ms, int frame_ms, struct aam_ipc_hdr *h, uint8_t **payload)
{
	uint8_t raw[AAM_IPC_HDR_LEN];
	size_t got = 0;
	*payload = NULL;
	memset(h, 0, sizeof(*h));
	h->type = AAM_IPC_ERROR;

	/* The idle wait covers only the first byte; then the frame clock runs. */
	int rc = read_some(fd, raw, sizeof(raw), aam_ipc_deadline(idle_ms), &got);
	if (rc != AAM_OK)
		return rc;
	int64_t deadline = aam_ipc_deadline(frame_ms < 0 ? AAM_IPC_FRAME_TIMEOUT_MS : frame_ms);
	while (got < AAM_IPC_HDR_LEN) {
		size_t consumed;
		/* A wrong magic or version fails now, not after a stall. */
		if (aam_ipc_frame_decode(raw, got, h, &consumed) > 0)
			return AAM_E_PARSE;
		rc = read_some(fd, raw, sizeof(raw), deadline, &got);
		if (rc != AAM_OK) {
			/* A header cut short: nothing in it can be trusted. */
			memset(h, 0, sizeof(*h));
			h->type = AAM_IPC_ERROR;
			return rc == AAM_E_CLOSED ? AAM_E_PARSE : rc;
		}
	}
	rc = aam_ipc_hdr_decode(raw, h);
	if (rc != AAM_OK)
		return rc;
	if (h->len == 0)
		return AAM_OK;
	uint8_t *p = malloc(h->len);
	if (p == NULL)
		return AAM_E_NOMEM;
	got = 0;
	rc = read_full(fd, p, h->len, deadline, &got);
	if (rc != AAM_OK) {
		free(p);
		return rc == AAM_E_CLOSED ? AAM_E_PARSE : rc;
	}
	*payload = p;
	return AAM_OK;
}

int
aam_ipc_write_frame_part(int fd, const struct aam_ipc_hdr *h, const void *payload, int timeout_ms,
                         size_t *written)
{
	uint8_t raw[AAM_IPC_HDR_LEN];
	size_t done = 0;
	*written = 0;
	if (h->len > 0 && payload == NULL)
		return AAM_E_INVAL;
	int rc = aam_ipc_hdr_encode(h, raw);
	if (rc != AAM_OK)
		return rc;
	int64_t deadline = aam_ipc_deadline(timeout_ms);
	size_t total = AAM_IPC_HDR_LEN + (size_t)h->len;
	while (done < total) {
		struct iovec iov[2];
		int niov = 0;
		if (done < AAM_IPC_HDR_LEN) {
			iov[niov].iov_base = raw + done;
			iov[niov++].iov_len = AAM_IPC_HDR_LEN - done;
		}
		if (h->len > 0) {
			size_t off = done > AAM_IPC_HDR_LEN ? done - AAM_IPC_HDR_LEN : 0;
			iov[niov].iov_base = (uint8_t *)(uintptr_t)payload + off;
			iov[niov++].iov_len = h->len - off;
		}
		struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)niov};
		ssize_t w = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w > 0) {
			done += (size_t)w;
			*written = done;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return errno_to_err(errno) == AAM_E_CLOSED ? AAM_E_CLOSED : AAM_E_IO;
		rc = wait_fd(fd, POLLOUT, deadline);
		if (rc != AAM_OK)
			return rc;
	}
	return AAM_OK;
}

int
aam_ipc_write_frame(int fd, const struct aam_ipc_hdr *h, const void *payload, int timeout_ms)
{
	size_t written;
	return aam_ipc_write_frame_part(fd, h, payload, timeout_ms, &written);
}
