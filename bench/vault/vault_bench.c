/*
 * aam-vault throughput, each figure next to its baseline in the same run:
 *
 *   SIGN through IPC      vs  C_Sign on the same SoftHSM2 token, in process
 *   INJECT through IPC    vs  plain libcurl to the same local HTTPS upstream
 *
 * A throwaway SoftHSM2 token and a real aam-vault process are started
 * (the integration harness), the keys are created, a bearer secret is
 * stored, and each measurement runs THREADS client threads for SECONDS.
 * The SIGN side includes what the vault does per request: C_Sign, the
 * OpenSSL verification of every signature (the store's guard against bad
 * ECDSA output), the frame round trip and the permission check.  A third
 * line, C_Sign + verify in process (one reused verification context per
 * thread, as the vault keeps them), separates the verification cost from
 * the IPC cost.  The SIGN lines run interleaved, ROUNDS turns of
 * SECONDS / ROUNDS each, so that other load on the machine hits them
 * alike.  A fourth line keeps K SIGN requests in flight per thread (the
 * vault may then use more CPUs than the thread count: read it as
 * throughput for a multiplexing client, not at equal concurrency).
 *
 *   vault_bench [--seconds S] [--threads N] [--rounds R] [--pipeline K] [--sign-only]
 *   (AAM_VAULT_BIN must be set)
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <p11-kit/p11-kit.h>

#include "aam/err.h"
#include "tests/integration/vault_harness.h"
#include "tests/lib/https_echo.h"
#include "tests/lib/softhsm.h"
#include "tests/lib/testutil.h"
#include "vault/proto.h"

static double g_seconds = 5;
static int g_threads = 1;
static bool g_sign_only = false;
static int g_rounds = 5;
static int g_pipeline = 4;

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef bool (*op_fn)(void *ctx, unsigned long i);

struct runner {
	op_fn op;
	void *(*ctx_new)(void *shared);
	void (*ctx_free)(void *ctx);
	void *shared;
	atomic_ulong done;
	atomic_bool stop;
	atomic_bool failed;
};

static void *
run_thread(void *arg)
{
	struct runner *r = arg;
	void *ctx = r->ctx_new(r->shared);
	if (ctx == NULL) {
		atomic_store(&r->failed, true);
		return NULL;
	}
	for (unsigned long i = 0; !atomic_load(&r->stop); i++) {
		if (!r->op(ctx, i)) {
			atomic_store(&r->failed, true);
			break;
		}
		atomic_fetch_add(&r->done, 1);
	}
	r->ctx_free(ctx);
	return NULL;
}

/* One line of the table: operations and seconds summed over its slices. */
struct line {
	const char *name;
	op_fn op;
	void *(*ctx_new)(void *);
	void (*ctx_free)(void *);
	void *shared;
	unsigned long done;
	double seconds;
	bool failed;
};

/* Runs L's operation on g_threads threads for SECONDS and adds to its totals. */
static void
run_slice(struct line *l, double seconds)
{
	struct runner r = {
	        .op = l->op, .ctx_new = l->ctx_new, .ctx_free = l->ctx_free, .shared = l->shared};
	pthread_t t[64];
	double t0 = now_s();
	for (int i = 0; i < g_threads; i++)
		pthread_create(&t[i], NULL, run_thread, &r);
	struct timespec d = {.tv_sec = (time_t)seconds,
	                     .tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9)};
	nanosleep(&d, NULL);
	atomic_store(&r.stop, true);
	for (int i = 0; i < g_threads; i++)
		pthread_join(t[i], NULL);
	l->seconds += now_s() - t0;
	l->done += atomic_load(&r.done);
	l->failed |= atomic_load(&r.failed);
}

static double
line_print(const struct line *l)
{
	double rate = l->seconds > 0 ? (double)l->done / l->seconds : 0;
	printf("%-38s %10.0f ops/s  (%lu in %.2f s, %d thread%s)%s\n", l->name, rate, l->done,
	       l->seconds, g_threads, g_threads == 1 ? "" : "s", l->failed ? "  FAILED" : "");
	fflush(stdout);
	return l->failed ? 0 : rate;
}

/*
 * Runs the lines side by side: g_rounds rounds, each giving every line
 * g_seconds / g_rounds, so that a load change on the machine (other jobs
 * share it) hits every line alike and the ratios stay meaningful.
 */
static void
measure_interleaved(struct line *lines, size_t n)
{
	double slice = g_seconds / g_rounds;
	for (int r = 0; r < g_rounds; r++) {
		for (size_t i = 0; i < n; i++)
			run_slice(&lines[i], slice);
	}
}

/* Runs OP on g_threads threads for g_seconds; returns operations per second. */
static double
measure(const char *name, op_fn op, void *(*ctx_new)(void *), void (*ctx_free)(void *),
        void *shared)
{
	struct line l = {
	        .name = name, .op = op, .ctx_new = ctx_new, .ctx_free = ctx_free, .shared = shared};
	run_slice(&l, g_seconds);
	return line_print(&l);
}

/* ---- direct C_Sign --------------------------------------------------------------- */

struct p11 {
	CK_FUNCTION_LIST *f;
	CK_SLOT_ID slot;
	EVP_PKEY *pub;
	bool verify;
};

struct p11_thread {
	struct p11 *p;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE key;
	EVP_PKEY_CTX *vctx; /* made once per thread, as the vault keeps its contexts */
};

static void *
p11_ctx_new(void *shared)
{
	struct p11 *p = shared;
	struct p11_thread *t = calloc(1, sizeof(*t));
	t->p = p;
	if (p->f->C_OpenSession(p->slot, CKF_SERIAL_SESSION, NULL, NULL, &t->s) != CKR_OK)
		goto fail;
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	char label[] = "aam-issuer";
	CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof(cls)},
	                       {CKA_LABEL, label, sizeof(label) - 1}};
	CK_ULONG n = 0;
	if (p->f->C_FindObjectsInit(t->s, tmpl, 2) != CKR_OK ||
	    p->f->C_FindObjects(t->s, &t->key, 1, &n) != CKR_OK || n != 1)
		goto fail;
	p->f->C_FindObjectsFinal(t->s);
	t->vctx = EVP_PKEY_CTX_new(p->pub, NULL);
	if (t->vctx == NULL || EVP_PKEY_verify_init(t->vctx) != 1)
		goto fail;
	return t;
fail:
	EVP_PKEY_CTX_free(t->vctx);
	free(t);
	return NULL;
}

static void
p11_ctx_free(void *ctx)
{
	struct p11_thread *t = ctx;
	t->p->f->C_CloseSession(t->s);
	EVP_PKEY_CTX_free(t->vctx);
	free(t);
}

static bool
verify_rs(EVP_PKEY_CTX *c, const uint8_t *digest, const uint8_t *rs)
{
	ECDSA_SIG *s = ECDSA_SIG_new();
	ECDSA_SIG_set0(s, BN_bin2bn(rs, 32, NULL), BN_bin2bn(rs + 32, 32, NULL));
	uint8_t *der = NULL;
	int dl = i2d_ECDSA_SIG(s, &der);
	bool ok = dl > 0 && EVP_PKEY_verify(c, der, (size_t)dl, digest, 32) == 1;
	OPENSSL_free(der);
	ECDSA_SIG_free(s);
	return ok;
}

static bool
p11_sign_op(void *ctx, unsigned long i)
{
	struct p11_thread *t = ctx;
	uint8_t digest[32] = {0};
	memcpy(digest, &i, sizeof(i));
	CK_MECHANISM m = {CKM_ECDSA, NULL, 0};
	uint8_t sig[64];
	CK_ULONG sl = sizeof(sig);
	if (t->p->f->C_SignInit(t->s, &m, t->key) != CKR_OK ||
	    t->p->f->C_Sign(t->s, digest, 32, sig, &sl) != CKR_OK || sl != 64)
		return false;
	return !t->p->verify || verify_rs(t->vctx, digest, sig);
}

/* ---- IPC SIGN and INJECT ----------------------------------------------------------------- */

struct ipc_shared {
	const char *sock;
	char url[256];
};

static void *
ipc_ctx_new(void *shared)
{
	return vh_connect(((struct ipc_shared *)shared)->sock);
}

static void
ipc_ctx_free(void *ctx)
{
	aam_ipc_client_free(ctx);
}

static bool
ipc_sign_op(void *ctx, unsigned long i)
{
	uint8_t req[1 + 4 + 4 + 32] = {0, 0, 0, 0, 0, 0, 0, 0, 32};
	memcpy(req + 9, &i, sizeof(i));
	uint8_t out[256];
	struct aam_buf reply;
	aam_buf_init(&reply, sizeof(out));
	int rc = aam_ipc_call(ctx, AAM_IPC_SIGN, req, sizeof(req), 10000, NULL, &reply);
	bool ok = rc == AAM_OK && reply.len == 4 + 43 + 64;
	aam_buf_uninit(&reply);
	return ok;
}

/*
 * SIGN with g_pipeline requests in flight on the thread's connection: it
 * sends them all, then waits for the oldest and sends a new one in its
 * place.  Each call of this op completes one request.
 */
struct pipe_ctx {
	struct aam_ipc_client *c;
	struct aam_ipc_req *q[16];
	unsigned head; /* the oldest request in flight */
	unsigned long next;
	struct aam_buf reply;
};

static bool
pipe_send(struct pipe_ctx *p, unsigned slot)
{
	uint8_t req[1 + 4 + 4 + 32] = {0, 0, 0, 0, 0, 0, 0, 0, 32};
	unsigned long i = p->next++;
	memcpy(req + 9, &i, sizeof(i));
	return aam_ipc_req_open(p->c, &p->q[slot]) == AAM_OK &&
	       aam_ipc_req_send(p->q[slot], AAM_IPC_SIGN, 0, req, sizeof(req), 10000) == AAM_OK;
}

static void pipe_ctx_free(void *ctx);

static void *
pipe_ctx_new(void *shared)
{
	struct pipe_ctx *p = calloc(1, sizeof(*p));
	p->c = vh_connect(((struct ipc_shared *)shared)->sock);
	aam_buf_init(&p->reply, 256);
	for (unsigned k = 0; p->c != NULL && k < (unsigned)g_pipeline; k++) {
		if (!pipe_send(p, k)) {
			pipe_ctx_free(p);
			return NULL;
		}
	}
	if (p->c == NULL) {
		pipe_ctx_free(p);
		return NULL;
	}
	return p;
}

static void
pipe_ctx_free(void *ctx)
{
	struct pipe_ctx *p = ctx;
	for (unsigned k = 0; k < 16; k++)
		aam_ipc_req_close(p->q[k]);
	aam_ipc_client_free(p->c);
	aam_buf_uninit(&p->reply);
	free(p);
}

static bool
ipc_sign_pipe_op(void *ctx, unsigned long i)
{
	(void)i;
	struct pipe_ctx *p = ctx;
	struct aam_ipc_hdr h;
	p->reply.len = 0;
	int rc = aam_ipc_req_recv(p->q[p->head], 10000, &h, &p->reply);
	bool ok = rc == AAM_OK && h.flags == 0 && p->reply.len == 4 + 43 + 64;
	aam_ipc_req_close(p->q[p->head]);
	p->q[p->head] = NULL;
	ok = ok && pipe_send(p, p->head);
	p->head = (p->head + 1) % (unsigned)g_pipeline;
	return ok;
}

/* The frame round trip alone: PING is answered by the server's reader thread. */
static bool
ipc_ping_op(void *ctx, unsigned long i)
{
	(void)i;
	return aam_ipc_call(ctx, AAM_IPC_PING, "p", 1, 10000, NULL, NULL) == AAM_OK;
}

/*
 * A request that reaches the handler and is refused by the permission
 * table: SIGN on the gateway socket (the gateway role never signs).
 */
static bool
ipc_refused_op(void *ctx, unsigned long i)
{
	uint8_t req[1 + 4 + 4 + 32] = {0, 0, 0, 0, 0, 0, 0, 0, 32};
	memcpy(req + 9, &i, sizeof(i));
	return aam_ipc_call(ctx, AAM_IPC_SIGN, req, sizeof(req), 10000, NULL, NULL) == AAM_E_PERM;
}

static struct ipc_shared *g_inject;

static bool
ipc_inject_op(void *ctx, unsigned long i)
{
	(void)i;
	struct vh_resp r;
	int rc = vh_inject(ctx, "bench-bearer", NULL, "GET", g_inject->url, NULL, NULL, 0, &r);
	bool ok = rc == AAM_OK && r.status == 200 && r.body.len > 0;
	vh_resp_free(&r);
	return ok;
}

/* ---- plain libcurl ------------------------------------------------------------------------- */

struct curl_shared {
	char url[256];
	char ca[1024];
	const char *secret;
};

static size_t
discard(char *p, size_t s, size_t n, void *ud)
{
	(void)p;
	size_t *total = ud;
	*total += s * n;
	return s * n;
}

struct curl_thread {
	CURL *h;
	struct curl_slist *hl;
	size_t bytes;
};

static void *
curl_ctx_new(void *shared)
{
	struct curl_shared *cs = shared;
	struct curl_thread *t = calloc(1, sizeof(*t));
	t->h = curl_easy_init();
	char auth[256];
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", cs->secret);
	t->hl = curl_slist_append(NULL, auth);
	curl_easy_setopt(t->h, CURLOPT_URL, cs->url);
	curl_easy_setopt(t->h, CURLOPT_CAINFO, cs->ca);
	curl_easy_setopt(t->h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(t->h, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(t->h, CURLOPT_HTTPHEADER, t->hl);
	curl_easy_setopt(t->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(t->h, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(t->h, CURLOPT_WRITEDATA, &t->bytes);
	return t;
}

static void
curl_ctx_free(void *ctx)
{
	struct curl_thread *t = ctx;
	curl_easy_cleanup(t->h);
	curl_slist_free_all(t->hl);
	free(t);
}

static bool
curl_op(void *ctx, unsigned long i)
{
	(void)i;
	struct curl_thread *t = ctx;
	long status = 0;
	return curl_easy_perform(t->h) == CURLE_OK &&
	       curl_easy_getinfo(t->h, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
	       status == 200;
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int
admin_call(struct vh *v, uint16_t type, const struct aam_buf *req)
{
	struct aam_ipc_client *c = vh_connect(v->sock_admin);
	if (c == NULL)
		return AAM_E_IO;
	int rc = aam_ipc_call(c, type, req != NULL ? req->data : NULL, req != NULL ? req->len : 0,
	                      30000, NULL, NULL);
	aam_ipc_client_free(c);
	return rc;
}

static EVP_PKEY *
issuer_pub(struct vh *v)
{
	struct aam_buf req, reply;
	aam_buf_init(&req, 0);
	aam_buf_init(&reply, 0);
	aam_ipc_put_u8(&req, 0);
	struct aam_ipc_client *c = vh_connect(v->sock_at);
	EVP_PKEY *k = NULL;
	if (c != NULL &&
	    aam_ipc_call(c, AAM_IPC_PUBKEY, req.data, req.len, 10000, NULL, &reply) == AAM_OK) {
		struct aam_ipc_reader r;
		aam_ipc_reader_init(&r, reply.data, reply.len);
		uint32_t n;
		char kid[64];
		const uint8_t *pt, *spki;
		size_t sl;
		aam_ipc_get_u32(&r, &n);
		vault_ipc_get_strbuf(&r, kid, sizeof(kid));
		aam_ipc_get_fixed(&r, 65, &pt);
		aam_ipc_get_bytes(&r, 200, &spki, &sl);
		if (r.err == AAM_OK)
			k = d2i_PUBKEY(NULL, &spki, (long)sl);
	}
	aam_ipc_client_free(c);
	aam_buf_uninit(&req);
	aam_buf_uninit(&reply);
	return k;
}

int
main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			g_seconds = atof(argv[++i]);
		else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			g_threads = atoi(argv[++i]);
		else if (strcmp(argv[i], "--sign-only") == 0)
			g_sign_only = true;
		else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
			g_rounds = atoi(argv[++i]);
		else if (strcmp(argv[i], "--pipeline") == 0 && i + 1 < argc)
			g_pipeline = atoi(argv[++i]);
		else {
			fprintf(stderr,
			        "usage: vault_bench [--seconds S] [--threads N] [--rounds R] "
			        "[--pipeline K] [--sign-only]\n");
			return 2;
		}
	}
	if (g_threads < 1 || g_threads > 64 || g_seconds <= 0 || g_rounds < 1 || g_pipeline < 1 ||
	    g_pipeline > 16)
		return 2;
	if (!aam_test_softhsm_available()) {
		fprintf(stderr, "SoftHSM2 is not installed\n");
		return 1;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	char *echo_dir = aam_test_mkdtemp("aam-bench-echo");
	struct aam_test_https_echo *echo = NULL;
	if (echo_dir == NULL || aam_test_https_echo_start(echo_dir, &echo) != 0)
		return 1;
	char extra[1200];
	snprintf(extra, sizeof(extra), "  ca_bundle: %s\n", aam_test_https_echo_ca(echo));
	struct vh *v = calloc(1, sizeof(*v));
	if (vh_setup(v, extra) != 0 || vh_start(v) != 0)
		return 1;
	if (admin_call(v, VAULT_IPC_KEYS_INIT, NULL) != AAM_OK)
		return 1;
	const char *secret = "bench-Bearer-Token-Value-123456";
	struct vault_ipc_meta *m = calloc(1, sizeof(*m));
	strcpy(m->name, "bench-bearer");
	strcpy(m->type, "bearer");
	m->nbindings = 1;
	snprintf(m->bindings[0], sizeof(m->bindings[0]), "https://localhost:%d/v1/",
	         aam_test_https_echo_port(echo));
	struct aam_buf req;
	aam_buf_init(&req, 0);
	vault_ipc_meta_encode(&req, m);
	aam_ipc_put_bytes(&req, secret, strlen(secret));
	if (admin_call(v, VAULT_IPC_SECRET_PUT, &req) != AAM_OK)
		return 1;
	aam_buf_uninit(&req);
	free(m);

	printf("vault_bench: %d thread(s), %.1f s per measurement, SIGN lines interleaved in %d "
	       "rounds\n",
	       g_threads, g_seconds, g_rounds);
	struct ipc_shared at = {.sock = v->sock_at};
	measure("IPC PING (frame round trip)", ipc_ping_op, ipc_ctx_new, ipc_ctx_free, &at);
	struct ipc_shared gw0 = {.sock = v->sock_gw};
	measure("IPC request through a handler", ipc_refused_op, ipc_ctx_new, ipc_ctx_free, &gw0);

	/* SIGN: the token is opened in this process too, and the lines take turns. */
	struct p11 p = {.pub = issuer_pub(v)};
	p.f = p11_kit_module_load(v->hsm.module_path, 0);
	CK_C_INITIALIZE_ARGS ia = {.flags = CKF_OS_LOCKING_OK};
	CK_SESSION_HANDLE login;
	if (p.pub == NULL || p.f == NULL || p.f->C_Initialize(&ia) != CKR_OK ||
	    aam_test_softhsm_find_slot(&v->hsm, p.f, &p.slot) != AAM_OK ||
	    p.f->C_OpenSession(p.slot, CKF_SERIAL_SESSION, NULL, NULL, &login) != CKR_OK ||
	    aam_test_softhsm_login(&v->hsm, p.f, login) != AAM_OK) {
		fprintf(stderr, "cannot open the token in process\n");
		return 1;
	}
	struct p11 pv = p;
	pv.verify = true;
	char pipe_name[64];
	snprintf(pipe_name, sizeof(pipe_name), "IPC SIGN, %d in flight per thread", g_pipeline);
	struct line sign[] = {
	        {.name = "IPC SIGN (aam-vault)",
	         .op = ipc_sign_op,
	         .ctx_new = ipc_ctx_new,
	         .ctx_free = ipc_ctx_free,
	         .shared = &at},
	        {.name = "direct C_Sign",
	         .op = p11_sign_op,
	         .ctx_new = p11_ctx_new,
	         .ctx_free = p11_ctx_free,
	         .shared = &p},
	        {.name = "direct C_Sign + OpenSSL verify",
	         .op = p11_sign_op,
	         .ctx_new = p11_ctx_new,
	         .ctx_free = p11_ctx_free,
	         .shared = &pv},
	        {.name = pipe_name,
	         .op = ipc_sign_pipe_op,
	         .ctx_new = pipe_ctx_new,
	         .ctx_free = pipe_ctx_free,
	         .shared = &at},
	};
	measure_interleaved(sign, sizeof(sign) / sizeof(sign[0]));
	double ipc = line_print(&sign[0]);
	double direct = line_print(&sign[1]);
	double direct_v = line_print(&sign[2]);
	double ipc_pipe = line_print(&sign[3]);
	printf("SIGN ratio IPC / direct C_Sign          = %.2f\n", direct > 0 ? ipc / direct : 0);
	printf("SIGN ratio IPC / direct C_Sign + verify = %.2f\n",
	       direct_v > 0 ? ipc / direct_v : 0);
	printf("SIGN ratio IPC pipelined / direct C_Sign = %.2f\n",
	       direct > 0 ? ipc_pipe / direct : 0);
	p.f->C_CloseSession(login);
	p.f->C_Finalize(NULL);
	p11_kit_module_release(p.f);
	EVP_PKEY_free(p.pub);

	if (g_sign_only) {
		int src = vh_stop(v);
		vh_teardown(v);
		free(v);
		aam_test_https_echo_stop(echo);
		aam_test_rmtree(echo_dir);
		free(echo_dir);
		curl_global_cleanup();
		return src == 0 ? 0 : 1;
	}

	/* INJECT. */
	struct curl_shared cs = {.secret = secret};
	snprintf(cs.url, sizeof(cs.url), "https://localhost:%d/v1/echo",
	         aam_test_https_echo_port(echo));
	snprintf(cs.ca, sizeof(cs.ca), "%s", aam_test_https_echo_ca(echo));
	struct ipc_shared gw = {.sock = v->sock_gw};
	snprintf(gw.url, sizeof(gw.url), "%s", cs.url);
	g_inject = &gw;
	double plain =
	        measure("plain libcurl (keep-alive)", curl_op, curl_ctx_new, curl_ctx_free, &cs);
	double inj =
	        measure("IPC INJECT (aam-vault)", ipc_inject_op, ipc_ctx_new, ipc_ctx_free, &gw);
	printf("INJECT ratio IPC / plain libcurl        = %.2f\n", plain > 0 ? inj / plain : 0);

	/* The same with the optional decrypted-secret cache (off by default). */
	char cached[1300];
	snprintf(cached, sizeof(cached), "%s  secret_cache_ttl: 60s\n", extra);
	if (vh_stop(v) != 0 || vh_write_config(v, cached) != 0 || vh_start(v) != 0)
		return 1;
	double injc = measure("IPC INJECT (secret cache on)", ipc_inject_op, ipc_ctx_new,
	                      ipc_ctx_free, &gw);
	printf("INJECT ratio IPC (cache) / plain libcurl = %.2f\n", plain > 0 ? injc / plain : 0);

	int rc = vh_stop(v);
	vh_teardown(v);
	free(v);
	aam_test_https_echo_stop(echo);
	aam_test_rmtree(echo_dir);
	free(echo_dir);
	curl_global_cleanup();
	return rc == 0 ? 0 : 1;
}
