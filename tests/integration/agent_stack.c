/*
 * The agent tests' stack and fake gateway (see agent_stack.h).
 */
#include "tests/integration/agent_stack.h"
#include "tests/lib/testutil.h"
#include "aam/err.h"
#include "common/http.h"
#include "common/ipc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <p11-kit/p11-kit.h>

#define RUN_TIMEOUT_MS 120000

static void
nap_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

bool
stack_available(const char **missing)
{
	const char *vars[] = {"AAM_VAULT_BIN", "AAM_AAMCTL_BIN", "AAM_ATTEST_BIN", "AAM_AGENT_BIN"};
	for (size_t i = 0; i < 4; i++) {
		const char *v = getenv(vars[i]);
		if (v == NULL || v[0] == '\0' || access(v, X_OK) != 0) {
			*missing = vars[i];
			return false;
		}
	}
	if (!aam_test_softhsm_available()) {
		*missing = "SoftHSM2";
		return false;
	}
	*missing = NULL;
	return true;
}

/* ---- HTTP --------------------------------------------------------------------------- */

static size_t
grow(char *p, size_t size, size_t n, void *ud)
{
	struct aam_buf *b = ud;
	return aam_buf_append(b, p, size * n) == AAM_OK ? size * n : 0;
}

long
stack_http_get(const char *url, char **body)
{
	CURL *c = curl_easy_init();
	if (c == NULL)
		return -1;
	struct aam_buf b;
	aam_buf_init(&b, 1024 * 1024);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, grow);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	long status = -1;
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	if (body != NULL)
		*body = b.data != NULL ? strdup((const char *)b.data) : strdup("");
	aam_buf_uninit(&b);
	return status;
}

/*
 * In a forked child: die with the test.  A test that aborts (an assertion
 * in a sanitizer, a crash) runs no teardown, and daemons must not outlive
 * it.  Fixtures are started from the main thread, which the death signal
 * follows.
 */
static void
child_dies_with_parent(pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127); /* the parent died before prctl */
}

/* ---- processes ------------------------------------------------------------------------ */

static char *
slurp_file(FILE *f)
{
	if (f == NULL)
		return strdup("");
	fflush(f);
	long n = lseek(fileno(f), 0, SEEK_END);
	if (n < 0)
		n = 0;
	char *s = malloc((size_t)n + 1);
	if (s == NULL)
		return NULL;
	size_t got = n > 0 ? (size_t)pread(fileno(f), s, (size_t)n, 0) : 0;
	s[got <= (size_t)n ? got : 0] = '\0';
	return s;
}

/* Runs ARGV with stdout and stderr captured; waits at most RUN_TIMEOUT_MS. */
static int
run_capture(char *const argv[], char **out, char **err)
{
	FILE *fo = tmpfile(), *fe = tmpfile();
	if (fo == NULL || fe == NULL) {
		if (fo != NULL)
			fclose(fo);
		if (fe != NULL)
			fclose(fe);
		return -1;
	}
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		child_dies_with_parent(parent);
		int nul = open("/dev/null", O_RDONLY);
		dup2(nul, STDIN_FILENO);
		dup2(fileno(fo), STDOUT_FILENO);
		dup2(fileno(fe), STDERR_FILENO);
		execv(argv[0], argv);
		_exit(127);
	}
	int st = 0, rc = -1;
	if (pid > 0) {
		int waited = 0;
		for (;;) {
			pid_t w = waitpid(pid, &st, WNOHANG);
			if (w == pid) {
				rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
				break;
			}
			if (waited >= RUN_TIMEOUT_MS) {
				kill(pid, SIGKILL);
				waitpid(pid, &st, 0);
				fprintf(stderr, "%s timed out\n", argv[0]);
				break;
			}
			nap_ms(10);
			waited += 10;
		}
	}
	char *o = slurp_file(fo), *e = slurp_file(fe);
	fclose(fo);
	fclose(fe);
	if (out != NULL)
		*out = o;
	else
		free(o);
	if (err != NULL)
		*err = e;
	else
		free(e);
	return rc;
}

int
stack_agent(const char *config, char **out, char **err, ...)
{
	char *argv[32];
	int argc = 0;
	argv[argc++] = getenv("AAM_AGENT_BIN");
	argv[argc++] = (char *)(uintptr_t) "-c";
	argv[argc++] = (char *)(uintptr_t)config;
	va_list ap;
	va_start(ap, err);
	const char *a;
	while (argc < 31 && (a = va_arg(ap, const char *)) != NULL)
		argv[argc++] = (char *)(uintptr_t)a;
	va_end(ap);
	argv[argc] = NULL;
	if (argv[0] == NULL)
		return -1;
	return run_capture(argv, out, err);
}

pid_t
stack_sidecar_spawn(const char *config, const char *log)
{
	const char *bin = getenv("AAM_AGENT_BIN");
	if (bin == NULL)
		return -1;
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		child_dies_with_parent(parent);
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		int nul = open("/dev/null", O_RDWR);
		dup2(nul, STDIN_FILENO);
		dup2(nul, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		execl(bin, bin, "-c", config, "sidecar", (char *)NULL);
		_exit(127);
	}
	return pid;
}

static int
sidecar_wait(pid_t pid)
{
	kill(pid, SIGTERM);
	int st = 0;
	for (int i = 0; i < 1000; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		nap_ms(10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

int
stack_sidecar_stop(pid_t pid, const char *log)
{
	if (pid <= 0)
		return -1;
	int rc = sidecar_wait(pid);
	if (rc != 0 && log != NULL) {
		char *text = aam_test_read_file(log, NULL);
		fprintf(stderr, "sidecar exit %d; its log %s:\n%s\n", rc, log,
		        text != NULL ? text : "(unreadable)");
		free(text);
	}
	return rc;
}

/* ---- the stack ------------------------------------------------------------------------ */

int
stack_aamctl(struct agent_stack *s, char **out, char **err, ...)
{
	/* vh_aamctl takes its arguments as varargs too: forward up to 24 of them. */
	const char *a[25] = {NULL};
	va_list ap;
	va_start(ap, err);
	for (size_t i = 0; i < 24; i++) {
		a[i] = va_arg(ap, const char *);
		if (a[i] == NULL)
			break;
	}
	va_end(ap);
	return vh_aamctl(&s->v, NULL, out, err, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7],
	                 a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15], a[16], a[17], a[18],
	                 a[19], a[20], a[21], a[22], a[23], NULL);
}

static int
attest_spawn(struct agent_stack *s)
{
	const char *bin = getenv("AAM_ATTEST_BIN");
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		child_dies_with_parent(parent);
		int fd = open(s->attest_log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		int nul = open("/dev/null", O_RDWR);
		dup2(nul, STDIN_FILENO);
		dup2(nul, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		execl(bin, bin, "-c", s->v.cfg, (char *)NULL);
		_exit(127);
	}
	s->attest_pid = pid;
	char url[128];
	snprintf(url, sizeof(url), "%s/healthz", s->attest_url);
	for (int i = 0; i < 400; i++) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			s->attest_pid = -1;
			fprintf(stderr, "aam-attest exited early\n");
			return -1;
		}
		if (stack_http_get(url, NULL) == 200)
			return 0;
		nap_ms(50);
	}
	return -1;
}

static bool
vault_pings(const char *sock)
{
	struct aam_ipc_client *c = vh_connect(sock);
	if (c == NULL)
		return false;
	int rc = aam_ipc_call(c, AAM_IPC_PING, "hi", 2, 2000, NULL, NULL);
	aam_ipc_client_free(c);
	return rc == AAM_OK;
}

/* vh_start's job, with the death signal set (see child_dies_with_parent). */
static int
vault_spawn(struct agent_stack *s)
{
	const char *bin = getenv("AAM_VAULT_BIN");
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		child_dies_with_parent(parent);
		int fd = open(s->v.log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		int nul = open("/dev/null", O_RDWR);
		dup2(nul, STDIN_FILENO);
		dup2(nul, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		execl(bin, bin, "-c", s->v.cfg, (char *)NULL);
		_exit(127);
	}
	s->v.pid = pid;
	for (int i = 0; i < 600; i++) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			s->v.pid = -1;
			fprintf(stderr, "aam-vault exited early\n");
			return -1;
		}
		if (vault_pings(s->v.sock_gw) && vault_pings(s->v.sock_at) &&
		    vault_pings(s->v.sock_admin))
			return 0;
		nap_ms(50);
	}
	return -1;
}

static void
dump(const char *label, const char *path)
{
	char *log = aam_test_read_file(path, NULL);
	if (log != NULL)
		fprintf(stderr, "---- %s ----\n%s---- end ----\n", label, log);
	free(log);
}

int
stack_start(struct agent_stack *s, const char *const *ek_ca, size_t n_ek_ca)
{
	memset(s, 0, sizeof(*s));
	s->attest_pid = -1;
	if (vh_setup(&s->v, NULL) != 0)
		return -1;
	s->attest_port = aam_test_free_port();
	snprintf(s->attest_url, sizeof(s->attest_url), "http://127.0.0.1:%d", s->attest_port);
	snprintf(s->db, sizeof(s->db), "%s/attest.db", s->v.dir);
	snprintf(s->attest_log, sizeof(s->attest_log), "%s/attest.log", s->v.dir);
	/* bench/gateway/run.sh's cache variant: the vault's decrypted-secret cache on. */
	const char *ttl = getenv("AAM_BENCH_SECRET_CACHE_TTL");
	bool cache = ttl != NULL && ttl[0] != '\0' && strspn(ttl, "0123456789smh") == strlen(ttl);
	char extra[4096];
	int n = snprintf(extra, sizeof(extra),
	                 "%s%s%s"
	                 "attest:\n  listen: 127.0.0.1:%d\n  db: %s\n  issuer: %s\n"
	                 "  token_ttl: 5m\n  vault_socket: %s\n  ek_ca: [",
	                 cache ? "  secret_cache_ttl: " : "", cache ? ttl : "", cache ? "\n" : "",
	                 s->attest_port, s->db, STACK_ISSUER, s->v.sock_at);
	for (size_t i = 0; i < n_ek_ca; i++)
		n += snprintf(extra + n, sizeof(extra) - (size_t)n, "%s\"%s\"", i ? ", " : "",
		              ek_ca[i]);
	snprintf(extra + n, sizeof(extra) - (size_t)n, "]\n");
	if (vh_write_config(&s->v, extra) != 0)
		return -1;
	if (vault_spawn(s) != 0) {
		dump("aam-vault", s->v.log);
		return -1;
	}
	s->vault_up = true;
	char *out = NULL, *err = NULL;
	int rc = vh_aamctl(&s->v, NULL, &out, &err, "keys", "init", NULL);
	if (rc != 0)
		fprintf(stderr, "aamctl keys init: %s%s\n", out ? out : "", err ? err : "");
	free(out);
	free(err);
	if (rc != 0)
		return -1;
	if (attest_spawn(s) != 0) {
		dump("aam-attest", s->attest_log);
		return -1;
	}
	return 0;
}

void
stack_stop(struct agent_stack *s)
{
	if (s->attest_pid > 0) {
		kill(s->attest_pid, SIGTERM);
		int st = 0;
		waitpid(s->attest_pid, &st, 0);
		s->attest_pid = -1;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			dump("aam-attest", s->attest_log);
	}
	if (s->v.dir != NULL)
		vh_teardown(&s->v);
	s->vault_up = false;
}

int
stack_write_agent_config(const struct agent_stack *s, const char *path, const char *body)
{
	char text[8192];
	int n = snprintf(text, sizeof(text), "log:\n  level: info\nagent:\n  attest_url: %s\n%s",
	                 s->attest_url, body);
	if (n < 0 || (size_t)n >= sizeof(text))
		return -1;
	return aam_test_write_file(path, text, (size_t)n, 0600);
}

static int
fetch_jwks(const struct agent_stack *s, struct aam_jwks *set)
{
	char url[128], *body = NULL;
	snprintf(url, sizeof(url), "%s/.well-known/jwks.json", s->attest_url);
	if (stack_http_get(url, &body) != 200) {
		free(body);
		return -1;
	}
	aam_jwks_init(set);
	int rc = aam_jwks_parse(body, strlen(body), set, NULL);
	free(body);
	return rc == AAM_OK ? 0 : -1;
}

json_t *
stack_verify_token(const struct agent_stack *s, const char *token, const char *aud)
{
	struct aam_jwks set;
	if (fetch_jwks(s, &set) != 0)
		return NULL;
	json_t *claims = NULL;
	enum aam_jose_reason why = AAM_JOSE_R_NONE;
	int rc = aam_jose_verify_jwks(token, strlen(token), &set, NULL, &claims, &why);
	aam_jwks_uninit(&set);
	if (rc != AAM_OK) {
		fprintf(stderr, "token does not verify: %s\n", aam_jose_reason_str(why));
		return NULL;
	}
	struct aam_jose_claims_check chk = {.iss = STACK_ISSUER,
	                                    .aud = aud,
	                                    .flags = AAM_JOSE_REQ_IAT | AAM_JOSE_REQ_NBF |
	                                             AAM_JOSE_REQ_JTI | AAM_JOSE_REQ_SUB};
	if (aam_jose_check_claims(claims, &chk, &why) != AAM_OK) {
		fprintf(stderr, "token claims refused: %s\n", aam_jose_reason_str(why));
		json_decref(claims);
		return NULL;
	}
	return claims;
}

/* ---- an agent key in a SoftHSM2 token ---- */

int
stack_p11_make_key(const struct aam_test_softhsm *hsm, const char *label, char jkt[48])
{
	CK_FUNCTION_LIST *f = p11_kit_module_load(hsm->module_path, 0);
	if (f == NULL)
		return -1;
	CK_C_INITIALIZE_ARGS ia = {.flags = CKF_OS_LOCKING_OK};
	int rc = -1;
	CK_SESSION_HANDLE s = 0;
	CK_SLOT_ID slot = 0;
	if (f->C_Initialize(&ia) != CKR_OK)
		goto unload;
	if (aam_test_softhsm_find_slot(hsm, f, &slot) != AAM_OK ||
	    f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s) != CKR_OK ||
	    aam_test_softhsm_login(hsm, f, s) != AAM_OK)
		goto fin;
	static const CK_BYTE p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE pub[] = {
	        {CKA_EC_PARAMS, (void *)(uintptr_t)p256, sizeof(p256)},
	        {CKA_TOKEN, &yes, sizeof(yes)},
	        {CKA_VERIFY, &yes, sizeof(yes)},
	        {CKA_LABEL, (void *)(uintptr_t)label, strlen(label)},
	};
	CK_ATTRIBUTE priv[] = {
	        {CKA_TOKEN, &yes, sizeof(yes)},
	        {CKA_PRIVATE, &yes, sizeof(yes)},
	        {CKA_SENSITIVE, &yes, sizeof(yes)},
	        {CKA_EXTRACTABLE, &no, sizeof(no)},
	        {CKA_SIGN, &yes, sizeof(yes)},
	        {CKA_LABEL, (void *)(uintptr_t)label, strlen(label)},
	};
	CK_MECHANISM m = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_OBJECT_HANDLE hpub = 0, hpriv = 0;
	if (f->C_GenerateKeyPair(s, &m, pub, 4, priv, 6, &hpub, &hpriv) != CKR_OK)
		goto fin;
	/* The thumbprint, from the public point as the token stores it. */
	CK_BYTE pt[80];
	CK_ATTRIBUTE a = {CKA_EC_POINT, pt, sizeof(pt)};
	if (f->C_GetAttributeValue(s, hpub, &a, 1) != CKR_OK || a.ulValueLen != 67)
		goto fin;
	struct aam_jwk jwk;
	if (aam_jwk_from_xy(pt + 3, pt + 35, NULL, &jwk) != AAM_OK)
		goto fin;
	snprintf(jkt, 48, "%s", jwk.jkt);
	aam_jwk_uninit(&jwk);
	rc = 0;
fin:
	if (s != 0)
		f->C_CloseSession(s);
	f->C_Finalize(NULL);
unload:
	p11_kit_module_release(f);
	return rc;
}

/* ---- the fake gateway ------------------------------------------------------------------ */

static void
copy_hdr(const struct aam_http_request *req, const char *name, char *out, size_t len)
{
	const char *v = aam_http_request_header(req, name);
	snprintf(out, len, "%s", v != NULL ? v : "");
}

/* Checks the token and the proof of REQ exactly as the gateway must; fills R. */
static void
fg_check(struct fake_gw *g, const struct aam_http_request *req, bool want_nonce,
         struct fg_record *r)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->method, sizeof(r->method), "%s", req->method);
	snprintf(r->path, sizeof(r->path), "%s", req->path);
	const char *qa = aam_http_request_query(req, "a");
	snprintf(r->query_a, sizeof(r->query_a), "%s", qa != NULL ? qa : "");
	r->x_api_key = aam_http_request_header(req, "x-api-key") != NULL;
	r->api_key = aam_http_request_header(req, "api-key") != NULL;
	copy_hdr(req, "anthropic-version", r->anthropic_version, sizeof(r->anthropic_version));
	copy_hdr(req, "mcp-session-id", r->mcp_session, sizeof(r->mcp_session));
	r->body_len = req->body_len;
	size_t bl =
	        req->body_len < sizeof(r->body_head) - 1 ? req->body_len : sizeof(r->body_head) - 1;
	if (bl > 0)
		memcpy(r->body_head, req->body, bl);

	const char *auth = aam_http_request_header(req, "authorization");
	const char *token = NULL;
	if (auth != NULL) {
		const char *sp = strchr(auth, ' ');
		size_t sl = sp != NULL ? (size_t)(sp - auth) : strlen(auth);
		snprintf(r->authorization, sizeof(r->authorization), "%.*s", (int)sl, auth);
		if (sp != NULL && strcasecmp(r->authorization, "DPoP") == 0)
			token = sp + 1;
	}
	if (token == NULL)
		return;
	json_t *claims = NULL;
	enum aam_jose_reason why = AAM_JOSE_R_NONE;
	if (aam_jose_verify_jwks(token, strlen(token), &g->jwks, NULL, &claims, &why) == AAM_OK) {
		struct aam_jose_claims_check chk = {.iss = STACK_ISSUER, .aud = g->audience};
		r->token_ok = aam_jose_check_claims(claims, &chk, &why) == AAM_OK;
		const char *jkt = NULL;
		if (aam_jose_claims_cnf_jkt(claims, &jkt) == AAM_OK)
			snprintf(r->jkt, sizeof(r->jkt), "%s", jkt);
		const char *jti = json_string_value(json_object_get(claims, "jti"));
		snprintf(r->jti, sizeof(r->jti), "%s", jti != NULL ? jti : "");
	}
	json_decref(claims);
	const char *proof = aam_http_request_header(req, "dpop");
	if (proof == NULL || r->jkt[0] == '\0') {
		snprintf(r->dpop_why, sizeof(r->dpop_why), "no proof or no cnf.jkt");
		return;
	}
	char htu[512];
	snprintf(htu, sizeof(htu), "%s%s", g->url, req->path);
	struct aam_dpop_check dc = {.htm = req->method,
	                            .htu = htu,
	                            .access_token = token,
	                            .nonce = want_nonce ? FG_NONCE : NULL,
	                            .jkt = r->jkt,
	                            .replay = g->replay};
	why = AAM_JOSE_R_NONE;
	r->dpop_ok = aam_dpop_verify(proof, strlen(proof), &dc, NULL, &why) == AAM_OK;
	r->dpop_nonce = r->dpop_ok && want_nonce;
	if (!r->dpop_ok)
		snprintf(r->dpop_why, sizeof(r->dpop_why), "%s", aam_jose_reason_str(why));
}

static void
fg_store(struct fake_gw *g, const struct fg_record *r)
{
	pthread_mutex_lock(&g->mu);
	if (g->nrec < FG_MAX_RECORDS)
		g->rec[g->nrec++] = *r;
	pthread_mutex_unlock(&g->mu);
}

static void
fg_sse(void *arg, struct aam_http_stream *st)
{
	(void)arg;
	const struct aam_http_header h[] = {
	        {(char *)(uintptr_t) "Cache-Control", (char *)(uintptr_t) "no-cache"}};
	if (aam_http_stream_head(st, 200, h, 1, "text/event-stream") != AAM_OK)
		return;
	for (int i = 0; i < 3; i++) {
		char ev[96];
		int n = snprintf(ev, sizeof(ev), "data: {\"n\":%d}\n\n", i);
		if (aam_http_stream_write(st, ev, (size_t)n) != AAM_OK)
			return;
		if (i < 2)
			nap_ms(400);
	}
	aam_http_stream_write(st, "data: [DONE]\n\n", 14);
}

static int
fg_handle(void *ctx, const struct aam_http_request *req, struct aam_http_response *resp)
{
	struct fake_gw *g = ctx;
	bool nonce_path = strcmp(req->path, "/nonce") == 0;
	struct fg_record r;
	fg_check(g, req, nonce_path, &r);
	fg_store(g, &r);
	if (nonce_path && !r.dpop_ok && strcmp(r.dpop_why, "dpop_nonce_missing") == 0) {
		aam_http_response_header(resp, "DPoP-Nonce", FG_NONCE);
		aam_http_response_header(resp, "WWW-Authenticate",
		                         "DPoP error=\"use_dpop_nonce\", algs=\"ES256\"");
		return aam_http_respond_error(resp, 401, "use_dpop_nonce", "Use the DPoP nonce.");
	}
	if (!r.token_ok || !r.dpop_ok)
		return aam_http_respond_error(resp, 401, "invalid_token", "Bad token or proof.");
	if (strcmp(req->path, "/stream") == 0)
		return aam_http_respond_stream(resp, fg_sse, NULL);
	if (strcmp(req->path, "/status/404") == 0)
		return aam_http_respond_error(resp, 404, "not_found", "Nothing here.");
	aam_http_response_header(resp, "Mcp-Session-Id", "sess-42");
	json_t *j = json_pack("{s:b,s:s}", "ok", 1, "path", req->path);
	int rc = aam_http_respond_json(resp, 200, j);
	json_decref(j);
	return rc;
}

static const struct aam_http_route FG_ROUTES[] = {{"*", "/*", fg_handle}};

int
fg_start(struct fake_gw *g, const struct agent_stack *s, const char *audience)
{
	memset(g, 0, sizeof(*g));
	pthread_mutex_init(&g->mu, NULL);
	g->replay = aam_dpop_replay_new(4096);
	if (g->replay == NULL || fetch_jwks(s, &g->jwks) != 0)
		return -1;
	struct aam_http_config c = {.host = "127.0.0.1",
	                            .routes = FG_ROUTES,
	                            .nroutes = 1,
	                            .ctx = g,
	                            .max_body = 1024 * 1024,
	                            .name = "fake-gateway",
	                            .mode = AAM_HTTP_MODE_THREAD_PER_CONN};
	if (aam_http_server_start(&c, &g->srv) != AAM_OK)
		return -1;
	g->port = aam_http_server_port(g->srv);
	snprintf(g->url, sizeof(g->url), "http://127.0.0.1:%u", (unsigned)g->port);
	snprintf(g->audience, sizeof(g->audience), "%s", audience != NULL ? audience : g->url);
	return 0;
}

void
fg_stop(struct fake_gw *g)
{
	aam_http_server_stop(g->srv);
	g->srv = NULL;
	aam_dpop_replay_free(g->replay);
	g->replay = NULL;
	aam_jwks_uninit(&g->jwks);
	pthread_mutex_destroy(&g->mu);
}

bool
fg_record(struct fake_gw *g, size_t i, struct fg_record *out)
{
	pthread_mutex_lock(&g->mu);
	bool ok = i < g->nrec;
	if (ok)
		*out = g->rec[i];
	pthread_mutex_unlock(&g->mu);
	return ok;
}

size_t
fg_count(struct fake_gw *g)
{
	pthread_mutex_lock(&g->mu);
	size_t n = g->nrec;
	pthread_mutex_unlock(&g->mu);
	return n;
}
