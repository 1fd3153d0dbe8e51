/*
 * aam-agent benchmark (bench/RESULTS.md, "Agent"): the agent's side of
 * attestation and DPoP, through the public API, against the real
 * aam-attest daemon signing through a real aam-vault (SoftHSM2).
 *
 *   dpop     DPoP proofs per second, signed by the TPM (swtpm, TPM2_Sign
 *            through tss2 ESYS) and by a SoftHSM2 key (C_Sign), 1 and 2
 *            threads;
 *   attest   latency of whole attestations (aam_agent_attest): TPM with
 *            ESYS (certify, activate, quote; no process spawns) and PKCS#11;
 *   sidecar  round trip of a small request through the sidecar to a gateway
 *            that verifies the token and the proof (agent_stack.h's fake
 *            gateway), against the same request sent straight to it with a
 *            proof made by the caller.
 *
 *   agent_bench [--seconds S] [--n N] [--tpm-n N] [--requests N]
 *
 * aam-attest allows 120 challenges in a burst, then 10/s per address, so
 * N + TPM_N stays under ~110.  Needs AAM_VAULT_BIN, AAM_AAMCTL_BIN,
 * AAM_ATTEST_BIN and AAM_AGENT_BIN (bench/agent/run.sh sets them).
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "aam/agent.h"
#include "aam/err.h"
#include "common/log.h"
#include "tests/integration/agent_stack.h"
#include "tests/lib/softhsm.h"
#include "tests/lib/swtpm.h"
#include "tests/lib/testutil.h"

#define ID_TPM "spiffe://prod/agent/bench-tpm"
#define ID_P11 "spiffe://prod/agent/bench-p11"

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void
report(const char *what, double *ms, size_t n, size_t ok)
{
	if (n == 0)
		return;
	qsort(ms, n, sizeof(double), cmp_d);
	size_t p99 = (n * 99 + 99) / 100;
	printf("%s ok=%zu n=%zu p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n", what, ok, n, ms[n / 2],
	       ms[(p99 > 0 ? p99 : 1) - 1], ms[n - 1]);
	fflush(stdout);
}

/* ---- dpop ------------------------------------------------------------------------------- */

struct dpop_run {
	struct aam_agent *a;
	double until;
	unsigned long n, fail;
};

static void *
dpop_thread(void *arg)
{
	struct dpop_run *r = arg;
	while (now_s() < r->until) {
		char *p = NULL;
		if (aam_agent_dpop(r->a, "POST", "http://127.0.0.1:4000/v1/chat/completions",
		                   "eyJ.header.token", NULL, &p) == AAM_OK)
			r->n++;
		else
			r->fail++;
		free(p);
	}
	return NULL;
}

static void
bench_dpop(struct aam_agent *a, const char *key, unsigned threads, double seconds)
{
	struct dpop_run r[8];
	pthread_t th[8];
	double t0 = now_s();
	for (unsigned i = 0; i < threads; i++) {
		r[i] = (struct dpop_run){.a = a, .until = t0 + seconds};
		pthread_create(&th[i], NULL, dpop_thread, &r[i]);
	}
	unsigned long n = 0, fail = 0;
	for (unsigned i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		n += r[i].n;
		fail += r[i].fail;
	}
	double dt = now_s() - t0;
	printf("dpop key=%s threads=%u proofs/s=%.0f (n=%lu, failures=%lu)\n", key, threads,
	       (double)n / dt, n, fail);
	fflush(stdout);
}

/* ---- attest ----------------------------------------------------------------------------- */

static void
bench_attest(struct aam_agent *a, const char *method, size_t n)
{
	double *ms = calloc(n, sizeof(double));
	size_t ok = 0;
	for (size_t i = 0; i < n; i++) {
		struct aam_agent_token t;
		struct aam_agent_error e;
		double t0 = now_s();
		int rc = aam_agent_attest(a, &t, &e);
		ms[i] = (now_s() - t0) * 1e3;
		if (rc == AAM_OK)
			ok++;
		else
			fprintf(stderr, "attest %s: %s: %s\n", method, e.code, e.message);
		aam_agent_token_uninit(&t);
	}
	char what[64];
	snprintf(what, sizeof(what), "attest method=%s", method);
	report(what, ms, n, ok);
	free(ms);
}

/* ---- sidecar ----------------------------------------------------------------------------- */

static size_t
discard(char *p, size_t s, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return s * n;
}

static long
get(CURL *c, const char *url, struct curl_slist *h)
{
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	long st = -1;
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
	return st;
}

static void
bench_sidecar(struct aam_agent *a, const char *key, struct fake_gw *gw, size_t n)
{
	struct aam_agent_sidecar_config sc = {.gateway_url = gw->url};
	struct aam_agent_sidecar *s = NULL;
	struct aam_agent_error e;
	if (aam_agent_sidecar_start(a, &sc, &s, &e) != AAM_OK) {
		fprintf(stderr, "sidecar: %s: %s\n", e.code, e.message);
		return;
	}
	char url[128], direct[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/models",
	         (unsigned)aam_agent_sidecar_port(s));
	snprintf(direct, sizeof(direct), "%s/v1/models", gw->url);
	double *ms = calloc(n, sizeof(double)), *dms = calloc(n, sizeof(double));
	size_t ok = 0, dok = 0;
	CURL *c = curl_easy_init();
	/* Through the sidecar: the agent code sends a plain request. */
	for (size_t i = 0; i < n; i++) {
		double t0 = now_s();
		ok += get(c, url, NULL) == 200;
		ms[i] = (now_s() - t0) * 1e3;
	}
	/* Straight to the gateway: the caller signs the proof itself (same key, same checks). */
	struct aam_agent_token t;
	if (aam_agent_attest(a, &t, &e) == AAM_OK) {
		for (size_t i = 0; i < n; i++) {
			double t0 = now_s();
			char *proof = NULL, *l1 = NULL, *l2 = NULL;
			aam_agent_dpop(a, "GET", direct, t.token, NULL, &proof);
			if (asprintf(&l1, "Authorization: DPoP %s", t.token) < 0)
				l1 = NULL;
			if (asprintf(&l2, "DPoP: %s", proof != NULL ? proof : "") < 0)
				l2 = NULL;
			struct curl_slist *h = curl_slist_append(NULL, l1);
			h = curl_slist_append(h, l2);
			dok += get(c, direct, h) == 200;
			dms[i] = (now_s() - t0) * 1e3;
			curl_slist_free_all(h);
			free(l1);
			free(l2);
			free(proof);
		}
		aam_agent_token_uninit(&t);
	}
	curl_easy_cleanup(c);
	char what[96];
	snprintf(what, sizeof(what), "sidecar key=%s path=via-sidecar", key);
	report(what, ms, n, ok);
	snprintf(what, sizeof(what), "sidecar key=%s path=direct-with-own-proof", key);
	report(what, dms, n, dok);
	free(ms);
	free(dms);
	aam_agent_sidecar_stop(s);
}

/* ---- setup ------------------------------------------------------------------------------- */

static int
register_p11(struct agent_stack *st, struct aam_agent *a, const char *id, const char *aud)
{
	char *jwk = NULL, path[STACK_PATH];
	if (aam_agent_jwk_json(a, &jwk) != AAM_OK)
		return -1;
	snprintf(path, sizeof(path), "%s/bench.jwk", st->v.dir);
	aam_test_write_file(path, jwk, strlen(jwk), 0600);
	free(jwk);
	return stack_aamctl(st, NULL, NULL, "workload", "register", id, "--method", "pkcs11",
	                    "--owner", "o", "--team", "t", "--env", "bench", "--deployment", "d",
	                    "--audience", aud, "--jwk", path, NULL);
}

static int
register_tpm(struct agent_stack *st, struct aam_agent *a, const char *id, const char *aud)
{
	uint8_t *der = NULL;
	size_t len = 0;
	struct aam_agent_error e;
	if (aam_agent_ek_cert(a, &der, &len, &e) != AAM_OK)
		return -1;
	char path[STACK_PATH];
	snprintf(path, sizeof(path), "%s/bench-ek.der", st->v.dir);
	aam_test_write_file(path, der, len, 0600);
	free(der);
	return stack_aamctl(st, NULL, NULL, "workload", "register", id, "--method", "tpm",
	                    "--owner", "o", "--team", "t", "--env", "bench", "--deployment", "d",
	                    "--audience", aud, "--ek-pub", path, NULL);
}

int
main(int argc, char **argv)
{
	double seconds = 5;
	size_t n = 60, tpm_n = 30, requests = 300;
	static const struct option opts[] = {{"seconds", required_argument, NULL, 's'},
	                                     {"n", required_argument, NULL, 'n'},
	                                     {"tpm-n", required_argument, NULL, 't'},
	                                     {"requests", required_argument, NULL, 'r'},
	                                     {NULL, 0, NULL, 0}};
	int o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o == 's')
			seconds = atof(optarg);
		else if (o == 'n')
			n = (size_t)atol(optarg);
		else if (o == 't')
			tpm_n = (size_t)atol(optarg);
		else if (o == 'r')
			requests = (size_t)atol(optarg);
		else
			return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	aam_log_set_level(AAM_LOG_WARN);
	const char *missing = NULL;
	if (!stack_available(&missing)) {
		fprintf(stderr, "agent_bench: %s not available\n", missing);
		return 1;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	struct aam_test_swtpm tpm;
	memset(&tpm, 0, sizeof(tpm));
	bool have_tpm = aam_test_swtpm_available() && aam_test_swtpm_start(&tpm) == AAM_OK;
	const char *cas[] = {tpm.root_cert_path, tpm.ca_cert_path};
	struct agent_stack st;
	struct aam_test_softhsm hsm;
	memset(&hsm, 0, sizeof(hsm));
	struct fake_gw gw;
	memset(&gw, 0, sizeof(gw));
	char jkt[48], uri[STACK_PATH], sd[STACK_PATH];
	int rc = stack_start(&st, cas, have_tpm ? 2 : 0) == 0 &&
	                         aam_test_softhsm_start(&hsm, "aam-agent-bench") == AAM_OK &&
	                         stack_p11_make_key(&hsm, "bench-key", jkt) == 0 &&
	                         fg_start(&gw, &st, NULL) == 0
	                 ? 0
	                 : 1;
	struct aam_agent *p11 = NULL, *tp = NULL;
	struct aam_agent_error e;
	if (rc == 0) {
		snprintf(uri, sizeof(uri), "%s;object=bench-key", hsm.token_uri);
		struct aam_agent_config c = {.pkcs11_key = uri,
		                             .pkcs11_module = hsm.module_path,
		                             .pin_file = hsm.user_pin_file,
		                             .attest_url = st.attest_url,
		                             .spiffe_id = ID_P11,
		                             .audience = gw.url};
		rc = aam_agent_open(&c, &p11, &e) == AAM_OK &&
		                     register_p11(&st, p11, ID_P11, gw.url) == 0
		             ? 0
		             : 1;
	}
	if (rc == 0 && have_tpm) {
		snprintf(sd, sizeof(sd), "%s/tpm-state", st.v.dir);
		struct aam_agent_config c = {.tcti = tpm.tcti,
		                             .state_dir = sd,
		                             .attest_url = st.attest_url,
		                             .spiffe_id = ID_TPM,
		                             .audience = gw.url};
		rc = aam_agent_open(&c, &tp, &e) == AAM_OK &&
		                     register_tpm(&st, tp, ID_TPM, gw.url) == 0
		             ? 0
		             : 1;
	}
	if (rc != 0) {
		fprintf(stderr, "agent_bench: setup failed (%s: %s)\n", e.code, e.message);
	} else {
		if (tp != NULL) {
			bench_dpop(tp, "tpm-swtpm", 1, seconds);
			bench_dpop(tp, "tpm-swtpm", 2, seconds);
		}
		bench_dpop(p11, "pkcs11-softhsm2", 1, seconds);
		bench_dpop(p11, "pkcs11-softhsm2", 2, seconds);
		if (tp != NULL)
			bench_attest(tp, "tpm", tpm_n);
		bench_attest(p11, "pkcs11", n);
		bench_sidecar(p11, "pkcs11-softhsm2", &gw, requests);
		if (tp != NULL)
			bench_sidecar(tp, "tpm-swtpm", &gw, requests);
	}
	aam_agent_close(tp);
	aam_agent_close(p11);
	if (gw.srv != NULL)
		fg_stop(&gw);
	aam_test_softhsm_stop(&hsm);
	stack_stop(&st);
	if (have_tpm)
		aam_test_swtpm_stop(&tpm);
	curl_global_cleanup();
	return rc;
}
