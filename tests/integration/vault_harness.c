/*
 * Integration harness for aam-vault (see vault_harness.h).
 */
#include "tests/integration/vault_harness.h"
#include "tests/lib/testutil.h"
#include "aam/err.h"
#include "vault/proto.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void
nap_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

int
vh_write_config(struct vh *v, const char *extra)
{
	snprintf(v->extra, sizeof(v->extra), "%s", extra != NULL ? extra : "");
	char buf[8192];
	int n = snprintf(buf, sizeof(buf),
	                 "log:\n  level: info\n"
	                 "vault:\n"
	                 "  state_dir: %s\n"
	                 "  sockets:\n    gateway: %s\n    attest: %s\n    admin: %s\n"
	                 "  pkcs11:\n    module: %s\n    token: \"%s\"\n    pin_file: %s\n"
	                 "%s",
	                 v->state, v->sock_gw, v->sock_at, v->sock_admin, v->hsm.module_path,
	                 v->hsm.token_uri, v->hsm.user_pin_file, v->extra);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -1;
	return aam_test_write_file(v->cfg, buf, (size_t)n, 0600);
}

int
vh_setup(struct vh *v, const char *extra)
{
	memset(v, 0, sizeof(*v));
	v->pid = -1;
	if (aam_test_softhsm_start(&v->hsm, "aam-vault-test") != AAM_OK)
		return -1;
	v->dir = aam_test_mkdtemp("aam-vault-it");
	if (v->dir == NULL)
		return -1;
	snprintf(v->cfg, sizeof(v->cfg), "%s/aam.yaml", v->dir);
	snprintf(v->sock_gw, sizeof(v->sock_gw), "%s/gw.sock", v->dir);
	snprintf(v->sock_at, sizeof(v->sock_at), "%s/at.sock", v->dir);
	snprintf(v->sock_admin, sizeof(v->sock_admin), "%s/admin.sock", v->dir);
	snprintf(v->state, sizeof(v->state), "%s/state", v->dir);
	snprintf(v->log, sizeof(v->log), "%s/vault.log", v->dir);
	return vh_write_config(v, extra);
}

struct aam_ipc_client *
vh_connect(const char *sock)
{
	struct aam_ipc_client *c = NULL;
	if (aam_ipc_client_connect(sock, 2000, &c) != AAM_OK)
		return NULL;
	return c;
}

static bool
pings(const char *sock)
{
	struct aam_ipc_client *c = vh_connect(sock);
	if (c == NULL)
		return false;
	int rc = aam_ipc_call(c, AAM_IPC_PING, "hi", 2, 2000, NULL, NULL);
	aam_ipc_client_free(c);
	return rc == AAM_OK;
}

static void
dump_log(const struct vh *v)
{
	char *log = aam_test_read_file(v->log, NULL);
	if (log != NULL)
		fprintf(stderr, "---- aam-vault log ----\n%s-----------------------\n", log);
	free(log);
}

int
vh_start(struct vh *v)
{
	const char *bin = getenv("AAM_VAULT_BIN");
	if (bin == NULL || bin[0] == '\0') {
		fprintf(stderr, "AAM_VAULT_BIN is not set\n");
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open(v->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		int nul = open("/dev/null", O_RDWR);
		if (fd < 0 || nul < 0)
			_exit(127);
		dup2(nul, STDIN_FILENO);
		dup2(nul, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		execl(bin, bin, "-c", v->cfg, (char *)NULL);
		_exit(127);
	}
	v->pid = pid;
	v->nruns++;
	/* Sanitized start-up and SoftHSM2 can take a few seconds. */
	for (int i = 0; i < 600; i++) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			v->pid = -1;
			v->exit_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			fprintf(stderr, "aam-vault exited early (status %d)\n", v->exit_status);
			dump_log(v);
			return -1;
		}
		if (pings(v->sock_gw) && pings(v->sock_at) && pings(v->sock_admin))
			return 0;
		nap_ms(50);
	}
	dump_log(v);
	return -1;
}

int
vh_stop(struct vh *v)
{
	if (v->pid <= 0)
		return -1;
	kill(v->pid, SIGTERM);
	int st = 0;
	for (int i = 0; i < 600; i++) {
		if (waitpid(v->pid, &st, WNOHANG) == v->pid) {
			v->pid = -1;
			v->exit_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			if (v->exit_status != 0)
				dump_log(v);
			return v->exit_status;
		}
		nap_ms(50);
	}
	kill(v->pid, SIGKILL);
	waitpid(v->pid, &st, 0);
	v->pid = -1;
	dump_log(v);
	return -1;
}

void
vh_teardown(struct vh *v)
{
	if (v->pid > 0)
		vh_stop(v);
	/* AAM_TEST_KEEP=1 keeps the folder (config, log, state) for a post-mortem. */
	const char *keep = getenv("AAM_TEST_KEEP");
	if (v->dir != NULL && keep != NULL && strcmp(keep, "1") == 0)
		fprintf(stderr, "kept %s\n", v->dir);
	else if (v->dir != NULL)
		aam_test_rmtree(v->dir);
	free(v->dir);
	v->dir = NULL;
	aam_test_softhsm_stop(&v->hsm);
}

static void
append_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "a");
	if (f != NULL) {
		fputs(text, f);
		fclose(f);
	}
}

int
vh_aamctl(struct vh *v, const char *stdin_data, char **out, char **err, ...)
{
	const char *bin = getenv("AAM_AAMCTL_BIN");
	if (bin == NULL || bin[0] == '\0') {
		fprintf(stderr, "AAM_AAMCTL_BIN is not set\n");
		return -1;
	}
	char *argv[64];
	int argc = 0;
	argv[argc++] = (char *)(uintptr_t)bin;
	argv[argc++] = (char *)(uintptr_t) "-c";
	argv[argc++] = v->cfg;
	va_list ap;
	va_start(ap, err);
	const char *a;
	while ((a = va_arg(ap, const char *)) != NULL && argc < 62)
		argv[argc++] = (char *)(uintptr_t)a;
	va_end(ap);
	argv[argc] = NULL;

	char opath[1100], epath[1100];
	snprintf(opath, sizeof(opath), "%s/aamctl.stdout", v->dir);
	snprintf(epath, sizeof(epath), "%s/aamctl.stderr", v->dir);
	int in[2];
	if (pipe(in) != 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int o = open(opath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(epath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (o < 0 || e < 0)
			_exit(127);
		dup2(in[0], STDIN_FILENO);
		dup2(o, STDOUT_FILENO);
		dup2(e, STDERR_FILENO);
		close(in[1]);
		execv(bin, argv);
		_exit(127);
	}
	close(in[0]);
	if (stdin_data != NULL) {
		size_t n = strlen(stdin_data);
		if (write(in[1], stdin_data, n) != (ssize_t)n)
			fprintf(stderr, "short write to aamctl\n");
	}
	close(in[1]);
	int st = 0;
	waitpid(pid, &st, 0);
	char *o = aam_test_read_file(opath, NULL);
	char *e = aam_test_read_file(epath, NULL);
	char all[1100];
	snprintf(all, sizeof(all), "%s/aamctl.out", v->dir);
	append_file(all, o != NULL ? o : "");
	append_file(all, e != NULL ? e : "");
	if (out != NULL)
		*out = o;
	else
		free(o);
	if (err != NULL)
		*err = e;
	else
		free(e);
	unlink(opath);
	unlink(epath);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- INJECT client ------------------------------------------------------------- */

#define FIRST_BODY_MAX (512u * 1024)

void
vh_resp_free(struct vh_resp *r)
{
	aam_buf_uninit(&r->headers);
	aam_buf_uninit(&r->body);
}

int
vh_inject(struct aam_ipc_client *c, const char *cred, const char *scope, const char *method,
          const char *url, const char *const *hdrs, const void *body, size_t blen,
          struct vh_resp *out)
{
	memset(out, 0, sizeof(*out));
	aam_buf_init(&out->headers, 1u << 20);
	aam_buf_init(&out->body, 64u << 20);
	out->head_first = true;
	struct aam_buf req;
	aam_buf_init(&req, AAM_IPC_MAX_PAYLOAD);
	aam_ipc_put_str(&req, cred);
	aam_ipc_put_str(&req, method);
	aam_ipc_put_str(&req, url);
	aam_ipc_put_str(&req, scope != NULL ? scope : "");
	aam_ipc_put_u32(&req, 0);
	uint32_t nh = 0;
	for (const char *const *h = hdrs; h != NULL && h[0] != NULL; h += 2)
		nh++;
	aam_ipc_put_u32(&req, nh);
	for (const char *const *h = hdrs; h != NULL && h[0] != NULL; h += 2) {
		aam_ipc_put_str(&req, h[0]);
		aam_ipc_put_bytes(&req, h[1], strlen(h[1]));
	}
	bool split = blen > FIRST_BODY_MAX;
	aam_ipc_put_bytes(&req, body, split ? 0 : blen);
	if (aam_buf_failed(&req)) {
		aam_buf_uninit(&req);
		return out->rc = AAM_E_INVAL;
	}
	struct aam_ipc_req *q;
	int rc = aam_ipc_req_open(c, &q);
	if (rc != AAM_OK) {
		aam_buf_uninit(&req);
		return out->rc = rc;
	}
	rc = aam_ipc_req_send(q, AAM_IPC_INJECT, split ? AAM_IPC_F_MORE : 0, req.data, req.len,
	                      10000);
	aam_buf_uninit(&req);
	const uint8_t *p = body;
	size_t left = split ? blen : 0;
	while (rc == AAM_OK && left > 0) {
		size_t k = left > FIRST_BODY_MAX ? FIRST_BODY_MAX : left;
		rc = aam_ipc_req_send(q, AAM_IPC_INJECT_BODY,
		                      k == left ? AAM_IPC_F_END : AAM_IPC_F_MORE, p, k, 10000);
		p += k;
		left -= k;
	}
	bool head = false;
	struct aam_buf f;
	aam_buf_init(&f, AAM_IPC_MAX_PAYLOAD);
	while (rc == AAM_OK) {
		struct aam_ipc_hdr h;
		aam_buf_reset(&f);
		rc = aam_ipc_req_recv(q, 60000, &h, &f);
		if (rc != AAM_OK)
			break;
		if (h.flags & AAM_IPC_F_ERROR) {
			int code = AAM_E_PROTO;
			aam_ipc_error_decode(f.data, f.len, &code, out->msg, sizeof(out->msg));
			rc = code;
			break;
		}
		if (h.type == AAM_IPC_INJECT_RESP_HEAD) {
			struct aam_ipc_reader r;
			aam_ipc_reader_init(&r, f.data, f.len);
			uint16_t status = 0;
			uint32_t n = 0;
			aam_ipc_get_u16(&r, &status);
			aam_ipc_get_u32(&r, &n);
			for (uint32_t i = 0; i < n && r.err == AAM_OK; i++) {
				char *name = NULL;
				const uint8_t *val;
				size_t vl;
				aam_ipc_get_str(&r, 1024, &name);
				aam_ipc_get_bytes(&r, 1u << 20, &val, &vl);
				if (r.err == AAM_OK)
					aam_buf_printf(&out->headers, "%s: %.*s\n", name, (int)vl,
					               (const char *)val);
				free(name);
			}
			if (r.err == AAM_OK && aam_ipc_reader_left(&r) > 0)
				aam_ipc_get_u32(&r, &out->credential_version);
			if (aam_ipc_reader_end(&r) != AAM_OK) {
				rc = AAM_E_PARSE;
				break;
			}
			out->status = status;
			head = true;
		} else if (h.type == AAM_IPC_INJECT_RESP_BODY) {
			if (!head)
				out->head_first = false;
			aam_buf_append(&out->body, f.data, f.len);
			out->body_frames++;
		}
		if (aam_ipc_flags_final(h.flags))
			break;
	}
	aam_buf_uninit(&f);
	aam_ipc_req_close(q);
	return out->rc = rc;
}

bool
vh_contains(const void *hay, size_t n, const char *needle)
{
	return hay != NULL && memmem(hay, n, needle, strlen(needle)) != NULL;
}

bool
vh_tree_contains(const char *dir, const void *needle, size_t n)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return false;
	bool found = false;
	struct dirent *de;
	while (!found && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		char path[2048];
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		struct stat st;
		if (lstat(path, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			found = vh_tree_contains(path, needle, n);
		} else if (S_ISREG(st.st_mode)) {
			size_t len = 0;
			char *data = aam_test_read_file(path, &len);
			found = data != NULL && memmem(data, len, needle, n) != NULL;
			free(data);
		}
	}
	closedir(d);
	return found;
}

int
vh_audit_info(const struct vh *v, char *origin, size_t originsz, uint64_t *size,
              uint64_t *signed_size)
{
	struct aam_ipc_client *c = vh_connect(v->sock_admin);
	if (c == NULL)
		return AAM_E_CLOSED;
	struct aam_buf reply;
	aam_buf_init(&reply, AAM_IPC_MAX_PAYLOAD);
	int rc = aam_ipc_call(c, VAULT_IPC_AUDIT_INFO, NULL, 0, 10000, NULL, &reply);
	aam_ipc_client_free(c);
	if (rc == AAM_OK) {
		struct aam_ipc_reader r;
		aam_ipc_reader_init(&r, reply.data, reply.len);
		vault_ipc_get_strbuf(&r, origin, originsz);
		aam_ipc_get_u64(&r, size);
		aam_ipc_get_u64(&r, signed_size);
		rc = r.err;
	}
	aam_buf_uninit(&reply);
	return rc;
}

int
vh_audit_wait_signed(const struct vh *v, int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms; waited += 100) {
		char origin[256];
		uint64_t size = 0, signed_size = 0;
		int rc = vh_audit_info(v, origin, sizeof(origin), &size, &signed_size);
		if (rc != AAM_OK)
			return rc;
		if (size == signed_size)
			return AAM_OK;
		struct timespec ts = {.tv_nsec = 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return AAM_E_TIMEOUT;
}
