#include "tests/lib/swtpm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aam/err.h"
#include "tests/lib/testutil.h"

extern char **environ;

/* Manufacturing creates a CA and two EKs: about a second, more under load. */
#define SETUP_TIMEOUT_S 120.0
#define READY_TIMEOUT_S 15.0
#define STOP_GRACE_S    5.0
#define PROBE_TIMEOUT_S 5.0
#define LAUNCH_ATTEMPTS 6
/* swtpm control channel command CMD_GET_CAPABILITY (tpm_ioctl.h). */
#define SWTPM_CMD_GET_CAPABILITY 0x00000001u

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void
say(const char *what, const char *detail)
{
	fprintf(stderr, "swtpm fixture: %s%s%s\n", what, detail != NULL ? ": " : "",
	        detail != NULL ? detail : "");
}

/* Copies the tail of a tool's log to stderr so a failure explains itself. */
static void
dump_log(const char *label, const char *path)
{
	size_t len = 0;
	char *text = aam_test_read_file(path, &len);
	if (text == NULL)
		return;
	const char *start = len > 4000 ? text + len - 4000 : text;
	fprintf(stderr, "---- %s (%s) ----\n%s\n---- end ----\n", label, path, start);
	free(text);
}

/*
 * Registry of started fixtures (pid and folder copies, never pointers to
 * the caller's struct) so that an atexit handler can kill and clean what a
 * failed test left behind.
 */
#define REGISTRY_SLOTS 16
struct registry_entry {
	pid_t pid;
	char dir[AAM_TEST_PATH_MAX];
};
static struct registry_entry s_registry[REGISTRY_SLOTS];
static bool s_atexit_installed;
static pthread_mutex_t s_registry_lock = PTHREAD_MUTEX_INITIALIZER;

static void
registry_cleanup(void)
{
	pthread_mutex_lock(&s_registry_lock);
	for (size_t i = 0; i < REGISTRY_SLOTS; i++) {
		struct registry_entry *e = &s_registry[i];
		if (e->pid > 0) {
			kill(e->pid, SIGKILL);
			waitpid(e->pid, NULL, 0);
		}
		if (e->dir[0] != '\0')
			aam_test_rmtree(e->dir);
		e->pid = 0;
		e->dir[0] = '\0';
	}
	pthread_mutex_unlock(&s_registry_lock);
}

static void
registry_add(const char *dir)
{
	pthread_mutex_lock(&s_registry_lock);
	if (!s_atexit_installed)
		s_atexit_installed = atexit(registry_cleanup) == 0;
	for (size_t i = 0; i < REGISTRY_SLOTS; i++) {
		if (s_registry[i].dir[0] == '\0') {
			s_registry[i].pid = 0;
			snprintf(s_registry[i].dir, sizeof(s_registry[i].dir), "%s", dir);
			break;
		}
	}
	pthread_mutex_unlock(&s_registry_lock);
}

/* Records PID (or 0 once reaped) for the fixture in DIR. */
static void
registry_set_pid(const char *dir, pid_t pid)
{
	pthread_mutex_lock(&s_registry_lock);
	for (size_t i = 0; i < REGISTRY_SLOTS; i++) {
		if (strcmp(s_registry[i].dir, dir) == 0)
			s_registry[i].pid = pid;
	}
	pthread_mutex_unlock(&s_registry_lock);
}

static void
registry_remove(const char *dir)
{
	pthread_mutex_lock(&s_registry_lock);
	for (size_t i = 0; i < REGISTRY_SLOTS; i++) {
		if (strcmp(s_registry[i].dir, dir) == 0) {
			s_registry[i].pid = 0;
			s_registry[i].dir[0] = '\0';
		}
	}
	pthread_mutex_unlock(&s_registry_lock);
}

/* An executable NAME on PATH, then in the usual system folders. */
static bool
find_program(const char *name, char *out, size_t len)
{
	const char *path = getenv("PATH");
	char buf[4096];
	snprintf(buf, sizeof(buf), "%s:/usr/bin:/usr/sbin:/usr/local/bin:/bin",
	         path != NULL ? path : "");
	char *save = NULL;
	for (char *dir = strtok_r(buf, ":", &save); dir != NULL; dir = strtok_r(NULL, ":", &save)) {
		if (*dir == '\0')
			continue;
		int w = snprintf(out, len, "%s/%s", dir, name);
		struct stat st;
		if (w > 0 && (size_t)w < len && stat(out, &st) == 0 && S_ISREG(st.st_mode) &&
		    access(out, X_OK) == 0)
			return true;
	}
	out[0] = '\0';
	return false;
}

bool
aam_test_swtpm_available(void)
{
	static const char *const tools[] = {"swtpm", "swtpm_setup", "swtpm_localca", "certtool"};
	char path[AAM_TEST_PATH_MAX];
	for (size_t i = 0; i < sizeof(tools) / sizeof(tools[0]); i++) {
		if (!find_program(tools[i], path, sizeof(path)))
			return false;
	}
	return true;
}

static int
path_join(char *out, size_t len, const char *dir, const char *name)
{
	int w = snprintf(out, len, "%s/%s", dir, name);
	return w < 0 || (size_t)w >= len ? AAM_E_TOOBIG : AAM_OK;
}

static int
write_text(const char *dir, const char *name, const char *text)
{
	char path[AAM_TEST_PATH_MAX];
	int rc = path_join(path, sizeof(path), dir, name);
	if (rc == AAM_OK && aam_test_write_file(path, text, strlen(text), 0600) != 0)
		rc = AAM_E_IO;
	if (rc != AAM_OK)
		say("cannot write", path);
	return rc;
}

/*
 * swtpm_setup reads /etc/swtpm_setup.conf unless told otherwise, and that
 * one sends swtpm_localca to /var/lib/swtpm-localca.  These three files
 * keep the local CA, its keys and its serial counter inside the fixture.
 */
static int
write_configs(const struct aam_test_swtpm *h, const char *localca)
{
	char text[4 * AAM_TEST_PATH_MAX + 512];
	int w = snprintf(text, sizeof(text),
	                 "statedir = %s\n"
	                 "signingkey = %s/signkey.pem\n"
	                 "issuercert = %s\n"
	                 "certserial = %s/certserial\n",
	                 h->ca_dir, h->ca_dir, h->ca_cert_path, h->ca_dir);
	if (w < 0 || (size_t)w >= sizeof(text))
		return AAM_E_TOOBIG;
	int rc = write_text(h->dir, "swtpm-localca.conf", text);
	if (rc == AAM_OK)
		rc = write_text(h->dir, "swtpm-localca.options",
		                "--platform-manufacturer AAM-test\n"
		                "--platform-version 2.1\n"
		                "--platform-model swtpm\n");
	if (rc != AAM_OK)
		return rc;
	w = snprintf(text, sizeof(text),
	             "create_certs_tool = %s\n"
	             "create_certs_tool_config = %s/swtpm-localca.conf\n"
	             "create_certs_tool_options = %s/swtpm-localca.options\n"
	             "active_pcr_banks = sha256\n",
	             localca, h->dir, h->dir);
	if (w < 0 || (size_t)w >= sizeof(text))
		return AAM_E_TOOBIG;
	return write_text(h->dir, "swtpm_setup.conf", text);
}

/*
 * fork + execve with stdin from /dev/null and stdout/stderr appended to
 * LOG_FD.  KEEP_FD (or -1) is the one descriptor handed to the child.  The
 * child asks for SIGKILL when this thread dies, so a crashed or killed test
 * never leaves a TPM behind.  Only async-signal-safe calls after fork().
 */
static pid_t
spawn(char *const argv[], char *const envp[], int log_fd, int keep_fd)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
		_exit(126);
	int null_fd = open("/dev/null", O_RDONLY);
	if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0)
		_exit(126);
	if (keep_fd >= 0) {
		int fl = fcntl(keep_fd, F_GETFD);
		if (fl < 0 || fcntl(keep_fd, F_SETFD, fl & ~FD_CLOEXEC) < 0)
			_exit(126);
	}
	execve(argv[0], argv, envp);
	_exit(127);
}

/* Waits up to TIMEOUT seconds; true when PID has exited (status in *ST). */
static bool
wait_exit(pid_t pid, double timeout, int *st)
{
	double deadline = now_s() + timeout;
	for (;;) {
		pid_t r = waitpid(pid, st, WNOHANG);
		if (r == pid || (r < 0 && errno == ECHILD))
			return true;
		if (now_s() >= deadline)
			return false;
		sleep_ms(5);
	}
}

static int
open_log(const char *path)
{
	return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

/* The environment with TMPDIR pointing into the fixture (malloc'd vector). */
static char **
env_with_tmpdir(char *tmpdir_entry)
{
	size_t n = 0;
	while (environ[n] != NULL)
		n++;
	char **env = calloc(n + 2, sizeof(*env));
	if (env == NULL)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (strncmp(environ[i], "TMPDIR=", 7) != 0)
			env[o++] = environ[i];
	}
	env[o++] = tmpdir_entry;
	env[o] = NULL;
	return env;
}

static int
run_setup(struct aam_test_swtpm *h)
{
	char prog[AAM_TEST_PATH_MAX], conf[AAM_TEST_PATH_MAX], tmpdir[AAM_TEST_PATH_MAX + 8];
	if (!find_program("swtpm_setup", prog, sizeof(prog)))
		return AAM_E_UNSUPPORTED;
	if (path_join(conf, sizeof(conf), h->dir, "swtpm_setup.conf") != AAM_OK)
		return AAM_E_TOOBIG;
	/* swtpm_setup keeps its scratch certificates under $TMPDIR: keep them here. */
	snprintf(tmpdir, sizeof(tmpdir), "TMPDIR=%s", h->dir);
	char *argv[] = {prog,
	                "--tpm2",
	                "--tpmstate",
	                h->state_dir,
	                "--create-ek-cert",
	                "--create-platform-cert",
	                "--lock-nvram",
	                "--overwrite",
	                "--config",
	                conf,
	                NULL};
	char **env = env_with_tmpdir(tmpdir);
	int log_fd = open_log(h->setup_log_path);
	if (env == NULL || log_fd < 0) {
		free(env);
		if (log_fd >= 0)
			close(log_fd);
		return AAM_E_IO;
	}
	double t0 = now_s();
	pid_t pid = spawn(argv, env, log_fd, -1);
	free(env);
	close(log_fd);
	if (pid < 0) {
		say("fork failed", strerror(errno));
		return AAM_E_IO;
	}
	int st = 0;
	if (!wait_exit(pid, SETUP_TIMEOUT_S, &st)) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		say("swtpm_setup timed out", NULL);
		dump_log("swtpm_setup", h->setup_log_path);
		return AAM_E_TIMEOUT;
	}
	h->setup_seconds = now_s() - t0;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || access(h->ca_cert_path, R_OK) != 0 ||
	    access(h->root_cert_path, R_OK) != 0) {
		say("swtpm_setup failed", NULL);
		dump_log("swtpm_setup", h->setup_log_path);
		return AAM_E_HSM;
	}
	return AAM_OK;
}

/* A listening TCP socket on 127.0.0.1:PORT (0: any); *BOUND gets the port. */
static int
listen_loopback(int port, int *bound, bool do_listen)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof(sa);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    (do_listen && listen(fd, 16) != 0) ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
		close(fd);
		return -1;
	}
	*bound = ntohs(sa.sin_port);
	return fd;
}

static int
connect_loopback(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Reads exactly LEN bytes before DEADLINE.  While waiting it watches PID
 * (when > 0), so a swtpm that died is noticed at once.
 */
static int
recv_exact(int fd, uint8_t *buf, size_t len, double deadline, pid_t pid)
{
	size_t got = 0;
	while (got < len) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int r = poll(&p, 1, 20);
		if (r < 0 && errno != EINTR)
			return AAM_E_IO;
		if (r > 0) {
			ssize_t n = recv(fd, buf + got, len - got, 0);
			if (n == 0)
				return AAM_E_CLOSED;
			if (n < 0 && errno != EINTR)
				return AAM_E_CLOSED;
			if (n > 0)
				got += (size_t)n;
			continue;
		}
		if (pid > 0) {
			/* WNOWAIT: notice the exit but leave reaping to the caller. */
			siginfo_t si;
			memset(&si, 0, sizeof(si));
			if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
			    si.si_pid == pid)
				return AAM_E_CLOSED;
		}
		if (now_s() >= deadline)
			return AAM_E_TIMEOUT;
	}
	return AAM_OK;
}

static int
send_all(int fd, const uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return AAM_E_IO;
		buf += n;
		len -= (size_t)n;
	}
	return AAM_OK;
}

static uint32_t
be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/*
 * TPM2_GetRandom(8) over the raw command channel: tag TPM_ST_NO_SESSIONS,
 * size 12, command code 0x17b, bytesRequested 8.
 */
static int
tpm_probe(int port, double deadline, pid_t pid)
{
	static const uint8_t cmd[] = {0x80, 0x01, 0x00, 0x00, 0x00, 0x0c,
	                              0x00, 0x00, 0x01, 0x7b, 0x00, 0x08};
	int fd = connect_loopback(port);
	if (fd < 0)
		return AAM_E_IO;
	uint8_t hdr[10], body[64];
	int rc = send_all(fd, cmd, sizeof(cmd));
	if (rc == AAM_OK)
		rc = recv_exact(fd, hdr, sizeof(hdr), deadline, pid);
	if (rc == AAM_OK) {
		uint32_t size = be32(hdr + 2);
		if (hdr[0] != 0x80 || hdr[1] != 0x01 || be32(hdr + 6) != 0 || size < 10 ||
		    size > 10 + sizeof(body))
			rc = AAM_E_PROTO;
		else
			rc = recv_exact(fd, body, size - 10, deadline, pid);
	}
	close(fd);
	return rc;
}

int
aam_test_swtpm_ping(const struct aam_test_swtpm *h)
{
	if (h == NULL || h->server_port <= 0)
		return AAM_E_INVAL;
	return tpm_probe(h->server_port, now_s() + PROBE_TIMEOUT_S, 0);
}

/*
 * CMD_GET_CAPABILITY on the control channel.  The control socket is the
 * one this process bound and handed over, so an answer proves it is our
 * swtpm that runs, and swtpm only serves it after it bound the server port.
 */
static int
ctrl_probe(int port, double deadline, pid_t pid)
{
	int fd = connect_loopback(port);
	if (fd < 0)
		return AAM_E_IO;
	const uint8_t cmd[4] = {0, 0, 0, SWTPM_CMD_GET_CAPABILITY};
	uint8_t resp[8];
	int rc = send_all(fd, cmd, sizeof(cmd));
	if (rc == AAM_OK)
		rc = recv_exact(fd, resp, sizeof(resp), deadline, pid);
	if (rc == AAM_OK && be32(resp) != 0)
		rc = AAM_E_PROTO;
	close(fd);
	return rc;
}

/*
 * One launch: the control socket is bound and listening here (port P+1)
 * and passed to swtpm as fd=N; the server port P was free a moment ago and
 * swtpm binds it itself.  If someone takes P in between, swtpm exits and
 * the caller tries other ports.
 */
static int
launch_once(struct aam_test_swtpm *h, char *prog)
{
	int server_port = 0, ctrl_port = 0;
	int probe = listen_loopback(0, &server_port, false);
	if (probe < 0)
		return AAM_E_IO;
	if (server_port >= 65535) {
		close(probe);
		return AAM_E_BUSY;
	}
	int ctrl = listen_loopback(server_port + 1, &ctrl_port, true);
	close(probe);
	if (ctrl < 0)
		return AAM_E_BUSY;

	char state_arg[AAM_TEST_PATH_MAX + 8], server_arg[96], ctrl_arg[64];
	snprintf(state_arg, sizeof(state_arg), "dir=%s", h->state_dir);
	snprintf(server_arg, sizeof(server_arg), "type=tcp,port=%d,bindaddr=127.0.0.1",
	         server_port);
	snprintf(ctrl_arg, sizeof(ctrl_arg), "type=tcp,fd=%d", ctrl);
	char *argv[] = {prog,
	                "socket",
	                "--tpm2",
	                "--tpmstate",
	                state_arg,
	                "--server",
	                server_arg,
	                "--ctrl",
	                ctrl_arg,
	                "--flags",
	                "not-need-init,startup-clear",
	                NULL};
	int log_fd = open_log(h->log_path);
	if (log_fd < 0) {
		close(ctrl);
		return AAM_E_IO;
	}
	double t0 = now_s();
	pid_t pid = spawn(argv, environ, log_fd, ctrl);
	close(log_fd);
	close(ctrl);
	if (pid < 0)
		return AAM_E_IO;
	registry_set_pid(h->dir, pid);

	double deadline = t0 + READY_TIMEOUT_S;
	int rc = ctrl_probe(ctrl_port, deadline, pid);
	if (rc == AAM_OK)
		rc = tpm_probe(server_port, deadline, pid);
	if (rc != AAM_OK) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		registry_set_pid(h->dir, 0);
		return rc == AAM_E_TIMEOUT ? rc : AAM_E_BUSY;
	}
	h->start_seconds = now_s() - t0;
	h->pid = pid;
	h->server_port = server_port;
	h->ctrl_port = ctrl_port;
	snprintf(h->tcti, sizeof(h->tcti), "swtpm:host=127.0.0.1,port=%d", server_port);
	return AAM_OK;
}

static int
setup_paths(struct aam_test_swtpm *h)
{
	int rc = path_join(h->state_dir, sizeof(h->state_dir), h->dir, "state");
	if (rc == AAM_OK)
		rc = path_join(h->ca_dir, sizeof(h->ca_dir), h->dir, "ca");
	if (rc == AAM_OK)
		rc = path_join(h->ca_cert_path, sizeof(h->ca_cert_path), h->ca_dir,
		               "issuercert.pem");
	/* swtpm_localca names its self-signed root this way in its statedir. */
	if (rc == AAM_OK)
		rc = path_join(h->root_cert_path, sizeof(h->root_cert_path), h->ca_dir,
		               "swtpm-localca-rootca-cert.pem");
	if (rc == AAM_OK)
		rc = path_join(h->setup_log_path, sizeof(h->setup_log_path), h->dir,
		               "swtpm_setup.log");
	if (rc == AAM_OK)
		rc = path_join(h->log_path, sizeof(h->log_path), h->dir, "swtpm.log");
	if (rc == AAM_OK && (mkdir(h->state_dir, 0700) != 0 || mkdir(h->ca_dir, 0700) != 0))
		rc = AAM_E_IO;
	return rc;
}

int
aam_test_swtpm_start(struct aam_test_swtpm *h)
{
	if (h == NULL)
		return AAM_E_INVAL;
	memset(h, 0, sizeof(*h));
	h->pid = -1;
	char swtpm[AAM_TEST_PATH_MAX], localca[AAM_TEST_PATH_MAX];
	if (!aam_test_swtpm_available() || !find_program("swtpm", swtpm, sizeof(swtpm)) ||
	    !find_program("swtpm_localca", localca, sizeof(localca))) {
		say("swtpm tools not found", "install swtpm swtpm-tools gnutls-bin");
		return AAM_E_UNSUPPORTED;
	}
	char *dir = aam_test_mkdtemp("aam-swtpm");
	if (dir == NULL || strlen(dir) >= sizeof(h->dir) - 64) {
		say("cannot create a temporary folder", strerror(errno));
		if (dir != NULL)
			aam_test_rmtree(dir);
		free(dir);
		return AAM_E_IO;
	}
	snprintf(h->dir, sizeof(h->dir), "%s", dir);
	free(dir);
	registry_add(h->dir);

	int rc = setup_paths(h);
	if (rc == AAM_OK)
		rc = write_configs(h, localca);
	if (rc == AAM_OK)
		rc = run_setup(h);
	for (int attempt = 0; rc == AAM_OK && attempt < LAUNCH_ATTEMPTS; attempt++) {
		rc = launch_once(h, swtpm);
		if (rc == AAM_OK)
			break;
		/* A port clash: swtpm exited at once.  Try other ports. */
		if (rc == AAM_E_BUSY && attempt + 1 < LAUNCH_ATTEMPTS) {
			rc = AAM_OK;
			continue;
		}
	}
	if (rc == AAM_OK && h->pid <= 0)
		rc = AAM_E_BUSY;
	if (rc != AAM_OK) {
		say("swtpm did not start", aam_strerror(rc));
		dump_log("swtpm", h->log_path);
		aam_test_swtpm_stop(h);
		return rc == AAM_E_BUSY ? AAM_E_HSM : rc;
	}
	return AAM_OK;
}

void
aam_test_swtpm_stop(struct aam_test_swtpm *h)
{
	if (h == NULL)
		return;
	if (h->pid > 0) {
		int st;
		kill(h->pid, SIGTERM);
		if (!wait_exit(h->pid, STOP_GRACE_S, &st)) {
			kill(h->pid, SIGKILL);
			waitpid(h->pid, &st, 0);
		}
	}
	if (h->dir[0] != '\0') {
		aam_test_rmtree(h->dir);
		registry_remove(h->dir);
	}
	memset(h, 0, sizeof(*h));
	h->pid = -1;
}
