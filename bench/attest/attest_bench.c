/*
 * aam-attest benchmark (bench/RESULTS.md, "Attest"):
 *
 *   issue   tokens issued per second by attest_issuer_issue, with an
 *           OpenSSL key and through the real aam-vault (SoftHSM2, C_Sign
 *           over the attest socket), on 1..N threads;
 *   attest  latency of whole attestations over HTTP against an in-process
 *           server signing through aam-vault: PKCS#11 (challenge + proof),
 *           join (challenge + join), TPM (challenge + begin + finish, with
 *           the TPM work done by swtpm and tpm2-tools between the rounds;
 *           the server's share is reported apart).
 *
 *   attest_bench [--threads N] [--seconds S] [--n N] [--tpm-n N]
 *
 * Needs AAM_VAULT_BIN and AAM_AAMCTL_BIN (bench/attest/run.sh sets them).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "aam/err.h"
#include "attest/tpm_mu.h"
#include "attest/vault.h"
#include "common/jose.h"
#include "common/log.h"
#include "tests/integration/vault_harness.h"
#include "tests/lib/swtpm.h"
#include "tests/lib/testutil.h"
#include "tests/unit/attest/attest_testutil.h"

#define AUD "http://127.0.0.1:4000"

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
report(const char *what, double *ms, size_t n)
{
	qsort(ms, n, sizeof(*ms), cmp_d);
	printf("%s n=%zu p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n", what, n, ms[n / 2],
	       ms[(size_t)((double)n * 0.99) < n ? (size_t)((double)n * 0.99) : n - 1], ms[n - 1]);
	fflush(stdout);
}

/* ---- tokens/s ----------------------------------------------------------- */

struct issue_ctx {
	struct attest_issuer *is;
	const struct attest_reg *reg;
	double until;
	long count;
	int failures;
};

static void *
issue_loop(void *arg)
{
	struct issue_ctx *c = arg;
	struct attest_token_req tr = {.reg = c->reg,
	                              .audience = AUD,
	                              .jkt = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
	                              .method = ATTEST_METHOD_PKCS11,
	                              .ttl = 300};
	while (now_s() < c->until) {
		struct attest_token t;
		tr.now = (int64_t)time(NULL);
		if (attest_issuer_issue(c->is, &tr, &t) == AAM_OK)
			c->count++;
		else
			c->failures++;
		attest_token_uninit(&t);
	}
	return NULL;
}

static void
bench_issue(const char *label, const struct attest_keysrc *ks, int threads, double seconds)
{
	struct attest_issuer *is = NULL;
	if (attest_issuer_new(ks, AT_ISSUER, &is) != AAM_OK ||
	    attest_issuer_refresh(is) != AAM_OK) {
		printf("issue signer=%s: cannot start\n", label);
		return;
	}
	struct attest_reg reg;
	at_reg_init(&reg, "spiffe://prod/agent/bench", ATTEST_METHOD_PKCS11, AUD);
	struct issue_ctx c[64];
	pthread_t th[64];
	double t0 = now_s();
	for (int i = 0; i < threads; i++) {
		c[i] = (struct issue_ctx){.is = is, .reg = &reg, .until = t0 + seconds};
		pthread_create(&th[i], NULL, issue_loop, &c[i]);
	}
	long total = 0;
	int fails = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		total += c[i].count;
		fails += c[i].failures;
	}
	double el = now_s() - t0;
	printf("issue signer=%s threads=%d tokens/s=%.0f (n=%ld, failures=%d)\n", label, threads,
	       (double)total / el, total, fails);
	fflush(stdout);
	attest_issuer_free(is);
}

/*
 * An in-process server (temporary folder and database from the test
 * helpers) whose tokens are signed through KS.
 */
static int
start_server(struct at_server *f, const struct attest_keysrc *ks, const char *const *ca, size_t nca)
{
	struct at_server_opts o = {.ek_ca = ca, .n_ek_ca = nca};
	if (at_server_start(f, &o) != AAM_OK)
		return -1;
	attest_server_free(f->srv);
	struct attest_server_config cfg = {.host = "127.0.0.1",
	                                   .db_path = f->db_path,
	                                   .issuer = AT_ISSUER,
	                                   .ek_ca = ca,
	                                   .n_ek_ca = nca,
	                                   .keys = ks,
	                                   .fail_burst = 1000};
	char e[256];
	if (attest_server_new(&cfg, &f->srv, e, sizeof(e)) != AAM_OK ||
	    attest_server_start(f->srv) != AAM_OK) {
		fprintf(stderr, "attest_bench: %s\n", e);
		return -1;
	}
	f->port = attest_server_port(f->srv);
	return 0;
}

/* ---- PKCS#11 and join over HTTP ------------------------------------------------ */

static void
pop(EVP_PKEY *k, const char *ctx, const char *nonce, const char *id, char **sig, json_t **jwk)
{
	char msg[1024];
	int n = snprintf(msg, sizeof(msg), "%s%s\n%s\n%s", ctx, nonce, id, AUD);
	uint8_t rs[64];
	at_es256(k, msg, (size_t)n, rs);
	*sig = at_b64(rs, 64);
	struct aam_jwk j;
	aam_jwk_from_pkey(k, NULL, &j);
	aam_jwk_to_json(&j, AAM_JWK_PUBLIC, jwk);
	aam_jwk_uninit(&j);
}

static void
bench_pkcs11(struct at_server *f, int n)
{
	const char *id = "spiffe://prod/agent/bench-p11";
	EVP_PKEY *k = at_p256_new();
	struct aam_jwk jwk;
	aam_jwk_from_pkey(k, NULL, &jwk);
	struct attest_reg *r = calloc(1, sizeof(*r));
	at_reg_init(r, id, ATTEST_METHOD_PKCS11, AUD);
	memcpy(r->key_jkt, jwk.jkt, sizeof(r->key_jkt));
	at_register(f, r);
	free(r);
	aam_jwk_uninit(&jwk);
	double *ms = calloc((size_t)n, sizeof(double));
	int ok = 0;
	for (int i = 0; i < n; i++) {
		double t0 = now_s();
		char *nonce = at_challenge(f, "pkcs11", id);
		char *sig;
		json_t *jj;
		pop(k, "aam-attest-pkcs11\n", nonce, id, &sig, &jj);
		json_t *b = json_pack("{s:s,s:s,s:s,s:o,s:s}", "spiffe_id", id, "audience", AUD,
		                      "nonce", nonce, "jwk", jj, "signature", sig);
		struct at_resp resp;
		at_request(f->port, "POST", "/v1/attest/pkcs11", b, &resp);
		ms[i] = (now_s() - t0) * 1000;
		ok += resp.status == 200;
		at_resp_free(&resp);
		json_decref(b);
		free(sig);
		free(nonce);
	}
	char label[64];
	snprintf(label, sizeof(label), "attest method=pkcs11 ok=%d", ok);
	report(label, ms, (size_t)n);
	free(ms);
	EVP_PKEY_free(k);
}

static void
bench_join(struct at_server *f, int n)
{
	double *ms = calloc((size_t)n, sizeof(double));
	int ok = 0;
	for (int i = 0; i < n; i++) {
		char id[128], tok[64];
		snprintf(id, sizeof(id), "spiffe://prod/agent/bench-join-%d", i);
		snprintf(tok, sizeof(tok), "aamj_bench_%d_%ld", i, (long)time(NULL));
		struct attest_reg *r = calloc(1, sizeof(*r));
		at_reg_init(r, id, ATTEST_METHOD_JOIN, AUD);
		r->has_join = true;
		EVP_Digest(tok, strlen(tok), r->join_hash, NULL, EVP_sha256(), NULL);
		r->join_expires = (int64_t)time(NULL) + 3600;
		at_register(f, r);
		free(r);
		EVP_PKEY *k = at_p256_new(); /* a fresh agent key per join, as in life */
		double t0 = now_s();
		char *nonce = at_challenge(f, "join", id);
		char *sig;
		json_t *jj;
		pop(k, "aam-attest-join\n", nonce, id, &sig, &jj);
		json_t *b = json_pack("{s:s,s:s,s:s,s:o,s:s}", "join_token", tok, "audience", AUD,
		                      "nonce", nonce, "jwk", jj, "signature", sig);
		struct at_resp resp;
		at_request(f->port, "POST", "/v1/attest/join", b, &resp);
		ms[i] = (now_s() - t0) * 1000;
		ok += resp.status == 200;
		at_resp_free(&resp);
		json_decref(b);
		free(sig);
		free(nonce);
		EVP_PKEY_free(k);
	}
	char label[64];
	snprintf(label, sizeof(label), "attest method=join ok=%d", ok);
	report(label, ms, (size_t)n);
	free(ms);
}

/* ---- TPM over HTTP with swtpm ----------------------------------------------------- */

static char tpm_dir[1024];

__attribute__((format(printf, 1, 2))) static int
sh(const char *fmt, ...)
{
	char cmd[4096], full[5200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	snprintf(full, sizeof(full), "cd '%s' && (%s) >>tools.log 2>&1", tpm_dir, cmd);
	return system(full);
}

static uint8_t *
slurp(const char *name, size_t *len)
{
	char p[1200];
	snprintf(p, sizeof(p), "%s/%s", tpm_dir, name);
	return (uint8_t *)aam_test_read_file(p, len);
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* TPM2_Certify(0x81018003 by 0x81018002, qualifyingData = NONCE) through tpm2_send. */
static int
certify(const uint8_t nonce[32], char **info, char **sig)
{
	uint8_t cmd[128];
	size_t n = 10;
	put32(cmd + n, 0x81018003);
	put32(cmd + n + 4, 0x81018002);
	n += 8;
	put32(cmd + n, 18);
	n += 4;
	for (int i = 0; i < 2; i++) {
		const uint8_t pw[9] = {0x40, 0, 0, 0x09, 0, 0, 0, 0, 0};
		memcpy(cmd + n, pw, 9);
		n += 9;
	}
	cmd[n++] = 0;
	cmd[n++] = 32;
	memcpy(cmd + n, nonce, 32);
	n += 32;
	cmd[n++] = 0x00;
	cmd[n++] = 0x10;
	cmd[0] = 0x80;
	cmd[1] = 0x02;
	put32(cmd + 2, (uint32_t)n);
	put32(cmd + 6, 0x148);
	char p[1200];
	snprintf(p, sizeof(p), "%s/certify.cmd", tpm_dir);
	aam_test_write_file(p, cmd, n, 0600);
	if (sh("tpm2_send -o certify.rsp < certify.cmd") != 0)
		return -1;
	size_t rl = 0;
	uint8_t *r = slurp("certify.rsp", &rl);
	if (r == NULL || rl < 16 || (r[6] | r[7] | r[8] | r[9]) != 0) {
		free(r);
		return -1;
	}
	size_t ps = (size_t)r[10] << 24 | (size_t)r[11] << 16 | (size_t)r[12] << 8 | r[13];
	size_t al = 2 + ((size_t)r[14] << 8 | r[15]);
	*info = at_b64(r + 14, al);
	*sig = at_b64(r + 14 + al, ps - al);
	free(r);
	return 0;
}

static void
bench_tpm(const struct attest_keysrc *ks, int n)
{
	struct at_server server_fx, *f = &server_fx;
	memset(&server_fx, 0, sizeof(server_fx));
	struct aam_test_swtpm tpm;
	if (!aam_test_swtpm_available() || !aam_test_have_program("tpm2_send") ||
	    aam_test_swtpm_start(&tpm) != AAM_OK) {
		printf("attest method=tpm: skipped (swtpm or tpm2-tools missing)\n");
		return;
	}
	setenv("TPM2TOOLS_TCTI", tpm.tcti, 1);
	char *d = aam_test_mkdtemp("aam-attest-bench");
	snprintf(tpm_dir, sizeof(tpm_dir), "%s", d);
	int rc = sh(
	        "tpm2_nvread 0x01c00002 -o ek.der && tpm2_createek -c 0x81018001 -G rsa -u ek.pub"
	        " && tpm2_createak -C 0x81018001 -c ak.ctx -G ecc -g sha256 -s ecdsa -u ak.pub"
	        " && tpm2_flushcontext -t && tpm2_evictcontrol -C o -c ak.ctx 0x81018002"
	        " && tpm2_flushcontext -t && tpm2_createprimary -C o -G ecc -c prim.ctx"
	        " && tpm2_flushcontext -t && tpm2_create -C prim.ctx -G ecc256:ecdsa-sha256"
	        " -u key.pub -r key.priv"
	        " -a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign'"
	        " && tpm2_flushcontext -t && tpm2_load -C prim.ctx -u key.pub -r key.priv"
	        " -c key.ctx && tpm2_flushcontext -t"
	        " && tpm2_evictcontrol -C o -c key.ctx 0x81018003 && tpm2_flushcontext -t");
	const char *id = "spiffe://prod/agent/bench-tpm";
	size_t l1, l2, l3, l4;
	uint8_t *ekc = slurp("ek.der", &l1), *ekp = slurp("ek.pub", &l2),
	        *akp = slurp("ak.pub", &l3), *kp = slurp("key.pub", &l4);
	if (rc != 0 || ekc == NULL || ekp == NULL || akp == NULL || kp == NULL) {
		printf("attest method=tpm: setup failed (see %s/tools.log)\n", tpm_dir);
		goto out;
	}
	const char *ca[] = {tpm.root_cert_path, tpm.ca_cert_path};
	if (start_server(f, ks, ca, 2) != 0)
		goto out;
	struct attest_reg *r = calloc(1, sizeof(*r));
	at_reg_init(r, id, ATTEST_METHOD_TPM, AUD);
	r->has_ek_pub = true;
	{
		const unsigned char *q = ekc;
		X509 *x = d2i_X509(NULL, &q, (long)l1);
		unsigned char *der = NULL;
		int dl = i2d_PUBKEY(X509_get0_pubkey(x), &der);
		EVP_Digest(der, (size_t)dl, r->ek_pub_sha256, NULL, EVP_sha256(), NULL);
		OPENSSL_free(der);
		X509_free(x);
	}
	at_register(f, r);
	free(r);
	char *ekc64 = at_b64(ekc, l1), *ekp64 = at_b64(ekp, l2), *akp64 = at_b64(akp, l3),
	     *kp64 = at_b64(kp, l4);
	double *server = calloc((size_t)n, sizeof(double)),
	       *total = calloc((size_t)n, sizeof(double));
	int ok = 0;
	for (int i = 0; i < n; i++) {
		double t0 = now_s();
		char *nonce = at_challenge(f, "tpm", id);
		size_t nl = 0;
		uint8_t *raw = at_unb64(nonce, &nl);
		char *info = NULL, *sig = NULL;
		double srv = now_s() - t0;
		if (raw == NULL || certify(raw, &info, &sig) != 0)
			break;
		json_t *b = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "step", "begin",
		                      "spiffe_id", id, "audience", AUD, "nonce", nonce, "ek_cert",
		                      ekc64, "ek_pub", ekp64, "ak_pub", akp64, "key_pub", kp64,
		                      "certify_info", info, "certify_sig", sig);
		struct at_resp br;
		double t1 = now_s();
		at_request(f->port, "POST", "/v1/attest/tpm", b, &br);
		srv += now_s() - t1;
		json_decref(b);
		free(info);
		free(sig);
		free(raw);
		free(nonce);
		if (br.status != 200) {
			at_resp_free(&br);
			break;
		}
		size_t il, el, ql;
		uint8_t *idb = at_unb64(
		        json_string_value(json_object_get(br.json, "credential_blob")), &il);
		uint8_t *es = at_unb64(
		        json_string_value(json_object_get(br.json, "encrypted_secret")), &el);
		uint8_t *qn =
		        at_unb64(json_string_value(json_object_get(br.json, "quote_nonce")), &ql);
		uint8_t *cred = malloc(8 + il + el);
		const uint8_t h[8] = {0xba, 0xdc, 0xc0, 0xde, 0, 0, 0, 1};
		memcpy(cred, h, 8);
		memcpy(cred + 8, idb, il);
		memcpy(cred + 8 + il, es, el);
		char p[1200], qhex[65];
		snprintf(p, sizeof(p), "%s/cred.bin", tpm_dir);
		aam_test_write_file(p, cred, 8 + il + el, 0600);
		for (int j = 0; j < 32; j++)
			snprintf(qhex + 2 * j, 3, "%02x", qn[j]);
		sh("tpm2_startauthsession --policy-session -S s.ctx && tpm2_policysecret -S s.ctx "
		   "-c "
		   "0x4000000B && tpm2_activatecredential -c 0x81018002 -C 0x81018001 -i cred.bin "
		   "-o "
		   "secret.bin -P session:s.ctx; tpm2_flushcontext s.ctx; tpm2_flushcontext -t");
		sh("tpm2_quote -c 0x81018002 -l sha256:0,1,2,3,4,5,6,7 -q %s -m quote.msg -s "
		   "quote.sig"
		   " -g sha256 && tpm2_flushcontext -t && tpm2_pcrread sha256:0,1,2,3,4,5,6,7 -o "
		   "pcrs.bin",
		   qhex);
		size_t sl, ml, gl, pl;
		uint8_t *sec = slurp("secret.bin", &sl), *msg = slurp("quote.msg", &ml),
		        *qs = slurp("quote.sig", &gl), *pv = slurp("pcrs.bin", &pl);
		json_t *vals = json_object();
		for (int j = 0; j < 8 && pv != NULL && pl == 256; j++) {
			char k[4], hx[65];
			snprintf(k, sizeof(k), "%d", j);
			for (int q = 0; q < 32; q++)
				snprintf(hx + 2 * q, 3, "%02x", pv[32 * j + q]);
			json_object_set_new(vals, k, json_string(hx));
		}
		char *s64 = at_b64(sec, sl), *m64 = at_b64(msg, ml), *g64 = at_b64(qs, gl);
		json_t *fb = json_pack("{s:s,s:O,s:s,s:s,s:s,s:{s:o}}", "step", "finish", "session",
		                       json_object_get(br.json, "session"), "secret", s64, "quote",
		                       m64, "quote_sig", g64, "pcrs", "sha256", vals);
		struct at_resp fr;
		double t2 = now_s();
		at_request(f->port, "POST", "/v1/attest/tpm", fb, &fr);
		srv += now_s() - t2;
		server[ok] = srv * 1000;
		total[ok] = (now_s() - t0) * 1000;
		ok += fr.status == 200;
		at_resp_free(&fr);
		at_resp_free(&br);
		json_decref(fb);
		free(s64);
		free(m64);
		free(g64);
		free(sec);
		free(msg);
		free(qs);
		free(pv);
		free(idb);
		free(es);
		free(qn);
		free(cred);
	}
	if (ok > 0) {
		char label[96];
		snprintf(label, sizeof(label), "attest method=tpm part=server ok=%d", ok);
		report(label, server, (size_t)ok);
		snprintf(label, sizeof(label),
		         "attest method=tpm part=total(swtpm+tpm2-tools) ok=%d", ok);
		report(label, total, (size_t)ok);
	} else {
		printf("attest method=tpm: no successful attestation\n");
	}
	free(server);
	free(total);
	free(ekc64);
	free(ekp64);
	free(akp64);
	free(kp64);
out:
	if (server_fx.dir != NULL)
		at_server_stop(&server_fx);
	free(ekc);
	free(ekp);
	free(akp);
	free(kp);
	aam_test_swtpm_stop(&tpm);
	aam_test_rmtree(d);
	free(d);
}

int
main(int argc, char **argv)
{
	int threads = 1, n = 500, tpm_n = 30;
	double seconds = 5;
	static const struct option opts[] = {{"threads", required_argument, NULL, 't'},
	                                     {"seconds", required_argument, NULL, 's'},
	                                     {"n", required_argument, NULL, 'n'},
	                                     {"tpm-n", required_argument, NULL, 'T'},
	                                     {NULL, 0, NULL, 0}};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 't')
			threads = atoi(optarg);
		else if (c == 's')
			seconds = atof(optarg);
		else if (c == 'n')
			n = atoi(optarg);
		else if (c == 'T')
			tpm_n = atoi(optarg);
		else
			return 2;
	}
	if (threads < 1 || threads > 64 || n < 1 || tpm_n < 1)
		return 2;
	aam_log_set_level(AAM_LOG_ERROR);
	curl_global_init(CURL_GLOBAL_DEFAULT);

	/* Tokens/s with an OpenSSL key: the issuer's own cost. */
	struct attest_pkey_src ps = {.keys = {at_p256_new()}, .nkeys = 1};
	struct attest_keysrc ks;
	attest_keysrc_pkey(&ps, &ks);
	for (int t = 1; t <= threads; t *= 2)
		bench_issue("openssl", &ks, t, seconds);

	/* Through the real vault and SoftHSM2. */
	struct vh v;
	memset(&v, 0, sizeof(v));
	char *out = NULL, *err = NULL;
	if (vh_setup(&v, NULL) != 0 || vh_start(&v) != 0 ||
	    vh_aamctl(&v, NULL, &out, &err, "keys", "init", NULL) != 0) {
		fprintf(stderr,
		        "attest_bench: cannot start aam-vault (AAM_VAULT_BIN, AAM_AAMCTL_BIN)\n");
		return 1;
	}
	free(out);
	free(err);
	struct attest_vault *vault = NULL;
	struct attest_keysrc vks;
	attest_vault_new(v.sock_at, &vault);
	attest_vault_keysrc(vault, &vks);
	for (int t = 1; t <= threads; t *= 2)
		bench_issue("vault-softhsm2", &vks, t, seconds);

	/* Whole attestations over HTTP, signed through the vault. */
	struct at_server f;
	memset(&f, 0, sizeof(f));
	if (start_server(&f, &vks, NULL, 0) == 0) {
		bench_pkcs11(&f, n);
		bench_join(&f, n / 2 > 0 ? n / 2 : 1);
	}
	bench_tpm(&vks, tpm_n);
	at_server_stop(&f);
	attest_vault_free(vault);
	vh_stop(&v);
	vh_teardown(&v);
	EVP_PKEY_free(ps.keys[0]);
	curl_global_cleanup();
	return 0;
}
