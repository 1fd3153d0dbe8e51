/*
 * aam-gateway end to end, every piece a real process on loopback:
 * aam-vault on a SoftHSM2 token (issuer key made by `aamctl keys init`),
 * aam-attest issuing tokens after a PKCS#11 attestation whose agent key
 * lives in the token (C_Sign), and the aam-gateway binary reading the
 * JWKS and the revocation feed from aam-attest.  Every DPoP proof is
 * signed in the token too.  Virtual keys are made and revoked with the
 * aamctl binary.
 *
 * Covered: a good DPoP request (policy allows; no routes are configured
 * here, so the answer after the policy is 503 no_routes), /v1/models,
 * /readyz, /metrics; the negatives of issue 6: expired token, wrong
 * audience, token without proof, proof by another key, replayed proof,
 * revoked virtual key, virtual key against require_attested; a policy
 * denial with its reason; an identity revoked with `aamctl workload
 * revoke` refused through the feed; and, when the vault's audit log is
 * wired (audit backend "vault"), a vault that goes away answers 503
 * audit_unavailable.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "aam/err.h"
#include "common/b64.h"
#include "common/jose.h"
#include "common/json.h"
#include "common/p11.h"
#include "tests/integration/vault_harness.h"
#include "tests/lib/softhsm.h"
#include "tests/lib/testutil.h"

#define ID        "spiffe://prod/agent/e2e"
#define ID_SHORT  "spiffe://prod/agent/short-lived"
#define ID_VKEY   "spiffe://prod/agent/legacy"
#define ID_ATT    "spiffe://prod/agent/attested-only"
#define OTHER_AUD "http://other.example"

static const uint8_t P256_PARAMS[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};

struct hkey {
	CK_OBJECT_HANDLE pub, priv;
	struct aam_jwk jwk;
	struct aam_jose_signer signer;
};

struct g {
	bool ready;
	struct vh v;
	aam_p11 *p11;
	struct hkey agent, other;
	char cfg[1000], dir[900];
	uint16_t attest_port, gw_port;
	pid_t attest_pid, gw_pid;
	char attest_url[64], gw_url[64];
	char *short_token; /* minted at setup, used expired at the end */
};

static struct g G;

static void
nap_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

/* ---- the agent's keys, in the token ------------------------------------------- */

struct genpair {
	const char *label;
	CK_OBJECT_HANDLE pub, priv;
};

static CK_RV
genpair_op(CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE s, void *vctx)
{
	struct genpair *g = vctx;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_ATTRIBUTE pub[] = {
	        {CKA_EC_PARAMS, (void *)(uintptr_t)P256_PARAMS, sizeof(P256_PARAMS)},
	        {CKA_TOKEN, &yes, sizeof(yes)},
	        {CKA_VERIFY, &yes, sizeof(yes)},
	        {CKA_LABEL, (void *)(uintptr_t)g->label, strlen(g->label)},
	};
	CK_ATTRIBUTE priv[] = {
	        {CKA_TOKEN, &yes, sizeof(yes)},
	        {CKA_PRIVATE, &yes, sizeof(yes)},
	        {CKA_SENSITIVE, &yes, sizeof(yes)},
	        {CKA_EXTRACTABLE, &no, sizeof(no)},
	        {CKA_SIGN, &yes, sizeof(yes)},
	        {CKA_LABEL, (void *)(uintptr_t)g->label, strlen(g->label)},
	};
	return fl->C_GenerateKeyPair(s, &mech, pub, 4, priv, 6, &g->pub, &g->priv);
}

/* The DPoP signer: C_Sign(CKM_ECDSA) over the digest, in the token. */
static int
p11_sign(void *ctx, const uint8_t digest[AAM_JOSE_DIGEST_LEN], uint8_t rs[AAM_JOSE_SIG_LEN])
{
	const struct hkey *k = ctx;
	return aam_p11_sign_ecdsa_p256(G.p11, k->priv, digest, rs);
}

static int
make_key(const char *label, struct hkey *k)
{
	struct genpair gp = {.label = label};
	if (aam_p11_run(G.p11, genpair_op, &gp) != CKR_OK)
		return -1;
	k->pub = gp.pub;
	k->priv = gp.priv;
	uint8_t pt[65];
	if (aam_p11_ec_point(G.p11, k->pub, pt) != AAM_OK ||
	    aam_jwk_from_xy(pt + 1, pt + 33, NULL, &k->jwk) != AAM_OK)
		return -1;
	k->signer = (struct aam_jose_signer){.sign = p11_sign, .ctx = k};
	return 0;
}

/* ---- HTTP ------------------------------------------------------------------------ */

struct reply {
	long status;
	struct aam_buf body;
};

static size_t
on_body(char *p, size_t size, size_t n, void *ud)
{
	struct reply *r = ud;
	return aam_buf_append(&r->body, p, size * n) == AAM_OK ? size * n : 0;
}

static int
http(const char *method, const char *url, const char *body, const char *const *hdrs,
     struct reply *r)
{
	memset(r, 0, sizeof(*r));
	aam_buf_init(&r->body, 1u << 20);
	CURL *c = curl_easy_init();
	struct curl_slist *h = curl_slist_append(NULL, "Expect:");
	h = curl_slist_append(h, "Content-Type: application/json");
	for (size_t i = 0; hdrs != NULL && hdrs[i] != NULL; i++)
		h = curl_slist_append(h, hdrs[i]);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (body != NULL)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 15L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	CURLcode cr = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return cr == CURLE_OK ? 0 : -1;
}

static void
reply_free(struct reply *r)
{
	aam_buf_uninit(&r->body);
}

static void
expect(struct reply *r, long status, const char *want)
{
	if (r->status != status || (want != NULL && strstr(aam_buf_cstr(&r->body), want) == NULL))
		print_error("got %ld %s (wanted %ld %s)\n", r->status, aam_buf_cstr(&r->body),
		            status, want != NULL ? want : "");
	assert_int_equal(r->status, status);
	if (want != NULL)
		assert_non_null(strstr(aam_buf_cstr(&r->body), want));
	reply_free(r);
}

/* ---- processes ------------------------------------------------------------------- */

static pid_t
spawn(const char *bin, const char *log)
{
	pid_t pid = fork();
	if (pid == 0) {
		FILE *f = freopen(log, "a", stderr);
		(void)f;
		execl(bin, bin, "-c", G.cfg, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static bool
wait_status(const char *url, long want, int ms)
{
	for (int waited = 0; waited < ms; waited += 50) {
		struct reply r;
		bool ok = http("GET", url, NULL, NULL, &r) == 0 && r.status == want;
		reply_free(&r);
		if (ok)
			return true;
		nap_ms(50);
	}
	return false;
}

static void
stop(pid_t *pid)
{
	if (*pid <= 0)
		return;
	kill(*pid, SIGTERM);
	int st = 0;
	for (int i = 0; i < 100 && waitpid(*pid, &st, WNOHANG) == 0; i++)
		nap_ms(50);
	if (waitpid(*pid, &st, WNOHANG) == 0) {
		kill(*pid, SIGKILL);
		waitpid(*pid, &st, 0);
	}
	*pid = -1;
}

/* ---- attestation ------------------------------------------------------------------ */

/* A token for SPIFFE_ID and AUD from a real PKCS#11 attestation with the agent key. */
static char *
attest(const char *spiffe_id, const char *aud)
{
	char url[256];
	struct reply r;
	json_t *b = json_pack("{s:s,s:s}", "method", "pkcs11", "spiffe_id", spiffe_id);
	char *s = json_dumps(b, JSON_COMPACT);
	json_decref(b);
	snprintf(url, sizeof(url), "%s/v1/attest/challenge", G.attest_url);
	assert_int_equal(http("POST", url, s, NULL, &r), 0);
	free(s);
	json_t *j = NULL;
	assert_int_equal(r.status, 200);
	assert_int_equal(aam_json_parse(r.body.data, r.body.len, NULL, &j, NULL), AAM_OK);
	reply_free(&r);
	const char *nonce = json_string_value(json_object_get(j, "nonce"));
	char msg[2048];
	int n = snprintf(msg, sizeof(msg), "aam-attest-pkcs11\n%s\n%s\n%s", nonce, spiffe_id, aud);
	uint8_t d[32], rs[64];
	EVP_Digest(msg, (size_t)n, d, NULL, EVP_sha256(), NULL);
	assert_int_equal(aam_p11_sign_ecdsa_p256(G.p11, G.agent.priv, d, rs), AAM_OK);
	char sig[128];
	assert_int_equal(aam_b64_encode(rs, 64, sig, sizeof(sig), NULL, AAM_B64_URL), AAM_OK);
	json_t *jwk = NULL;
	assert_int_equal(aam_jwk_to_json(&G.agent.jwk, AAM_JWK_PUBLIC, &jwk), AAM_OK);
	b = json_pack("{s:s,s:s,s:s,s:o,s:s}", "spiffe_id", spiffe_id, "audience", aud, "nonce",
	              nonce, "jwk", jwk, "signature", sig);
	json_decref(j);
	s = json_dumps(b, JSON_COMPACT);
	json_decref(b);
	snprintf(url, sizeof(url), "%s/v1/attest/pkcs11", G.attest_url);
	assert_int_equal(http("POST", url, s, NULL, &r), 0);
	free(s);
	if (r.status != 200)
		print_error("attest: %ld %s\n", r.status, aam_buf_cstr(&r.body));
	assert_int_equal(r.status, 200);
	assert_int_equal(aam_json_parse(r.body.data, r.body.len, NULL, &j, NULL), AAM_OK);
	reply_free(&r);
	char *tok = strdup(json_string_value(json_object_get(j, "token")));
	json_decref(j);
	return tok;
}

static char *
proof(const struct hkey *k, const char *method, const char *path, const char *token)
{
	char htu[256];
	snprintf(htu, sizeof(htu), "%s%s", G.gw_url, path);
	struct aam_dpop_request req = {.htm = method, .htu = htu, .access_token = token};
	char *p = NULL;
	assert_int_equal(aam_dpop_create(&k->signer, &k->jwk, &req, &p), AAM_OK);
	return p;
}

/* A gateway request with TOKEN and PROOF (either may be NULL). */
static void
gw(const char *method, const char *path, const char *body, const char *token, const char *prf,
   struct reply *r)
{
	char url[256], a[9000], d[9000];
	snprintf(url, sizeof(url), "%s%s", G.gw_url, path);
	const char *h[3] = {NULL, NULL, NULL};
	size_t n = 0;
	if (token != NULL) {
		snprintf(a, sizeof(a), "Authorization: DPoP %s", token);
		h[n++] = a;
	}
	if (prf != NULL) {
		snprintf(d, sizeof(d), "DPoP: %s", prf);
		h[n++] = d;
	}
	assert_int_equal(http(method, url, body, h, r), 0);
}

static void
gw_key(const char *method, const char *path, const char *body, const char *key, struct reply *r)
{
	char url[256], a[512];
	snprintf(url, sizeof(url), "%s%s", G.gw_url, path);
	snprintf(a, sizeof(a), "Authorization: Bearer %s", key);
	const char *h[] = {a, NULL};
	assert_int_equal(http(method, url, body, h, r), 0);
}

/* ---- fixture ------------------------------------------------------------------------- */

static const char policies[] = "apiVersion: access.envisionai.dev/v1\n"
                               "kind: AgentPolicy\n"
                               "metadata:\n  name: finance-analyst-readonly\n"
                               "spec:\n"
                               "  identity:\n    workload: spiffe://prod/agent/**\n"
                               "  models:\n    allow: [reasoning-high, summarization]\n"
                               "    budget: { daily_usd: 75 }\n"
                               "---\n"
                               "apiVersion: access.envisionai.dev/v1\n"
                               "kind: AgentPolicy\n"
                               "metadata:\n  name: attested-only\n"
                               "spec:\n"
                               "  identity:\n    workload: " ID_ATT "\n    require_attested: true\n"
                               "  models:\n    allow: [reasoning-high]\n";

static int
aamctl(char **out, ...)
{
	/* vh_aamctl runs with the vault's config; point it at ours for this run. */
	char saved[sizeof(G.v.cfg)];
	memcpy(saved, G.v.cfg, sizeof(saved));
	snprintf(G.v.cfg, sizeof(G.v.cfg), "%s", G.cfg);
	va_list ap;
	va_start(ap, out);
	const char *a[24] = {NULL};
	size_t n = 0;
	for (const char *x = va_arg(ap, const char *); x != NULL && n < 23;
	     x = va_arg(ap, const char *))
		a[n++] = x;
	va_end(ap);
	char *err = NULL;
	/* vh_aamctl stops at the first NULL. */
	int rc = vh_aamctl(&G.v, NULL, out, &err, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7],
	                   a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15], a[16], a[17],
	                   a[18], a[19], a[20], a[21], a[22], NULL);
	if (rc != 0)
		print_error("aamctl: %s\n", err != NULL ? err : "");
	free(err);
	memcpy(G.v.cfg, saved, sizeof(saved));
	return rc;
}

static int
group_setup(void **state)
{
	(void)state;
	memset(&G, 0, sizeof(G));
	G.attest_pid = G.gw_pid = -1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (!aam_test_softhsm_available() || getenv("AAM_VAULT_BIN") == NULL ||
	    getenv("AAM_ATTEST_BIN") == NULL || getenv("AAM_GATEWAY_BIN") == NULL ||
	    getenv("AAM_AAMCTL_BIN") == NULL)
		return 0;
	if (vh_setup(&G.v, NULL) != 0 || vh_start(&G.v) != 0)
		return -1;
	char *out = NULL, *err = NULL;
	int rc = vh_aamctl(&G.v, NULL, &out, &err, "keys", "init", NULL);
	free(out);
	free(err);
	if (rc != 0)
		return -1;
	struct aam_p11_config pc = {.module = G.v.hsm.module_path,
	                            .token_uri = G.v.hsm.token_uri,
	                            .pin_file = G.v.hsm.user_pin_file};
	char e[256];
	if (aam_p11_open(&pc, &G.p11, e, sizeof(e)) != AAM_OK) {
		print_error("p11: %s\n", e);
		return -1;
	}
	if (make_key("gw-agent", &G.agent) != 0 || make_key("gw-other", &G.other) != 0)
		return -1;

	snprintf(G.dir, sizeof(G.dir), "%s", G.v.dir);
	char path[1024];
	snprintf(path, sizeof(path), "%s/policies.yaml", G.dir);
	aam_test_write_file(path, policies, strlen(policies), 0600);
	G.attest_port = (uint16_t)aam_test_free_port();
	G.gw_port = (uint16_t)aam_test_free_port();
	snprintf(G.attest_url, sizeof(G.attest_url), "http://127.0.0.1:%u",
	         (unsigned)G.attest_port);
	snprintf(G.gw_url, sizeof(G.gw_url), "http://127.0.0.1:%u", (unsigned)G.gw_port);
	/* One file for all three daemons, as deployed: the vault's section plus ours. */
	size_t vlen = 0;
	char *vcfg = aam_test_read_file(G.v.cfg, &vlen);
	if (vcfg == NULL)
		return -1;
	char text[12000];
	int n = snprintf(text, sizeof(text),
	                 "%s"
	                 "attest:\n"
	                 "  listen: 127.0.0.1:%u\n"
	                 "  db: %s/attest.db\n"
	                 "  issuer: %s\n"
	                 "  vault_socket: %s\n"
	                 "gateway:\n"
	                 "  listen: 127.0.0.1:%u\n"
	                 "  policies: %s/policies.yaml\n"
	                 "  db: %s/gateway.db\n"
	                 "  vault_socket: %s\n"
	                 "  attest_url: %s\n"
	                 "  issuer: %s\n"
	                 "  revocation_poll: 200ms\n"
	                 "  jwks_refresh: 1s\n",
	                 vcfg, (unsigned)G.attest_port, G.dir, G.attest_url, G.v.sock_at,
	                 (unsigned)G.gw_port, G.dir, G.dir, G.v.sock_gw, G.attest_url,
	                 G.attest_url);
	free(vcfg);
	snprintf(G.cfg, sizeof(G.cfg), "%s/all.yaml", G.dir);
	if (n < 0 || (size_t)n >= sizeof(text) || aam_test_write_file(G.cfg, text, (size_t)n, 0600))
		return -1;

	/* Registrations: the agent's key for three identities, one with a 1 s token life. */
	const char *ids[] = {ID, ID_ATT};
	for (size_t i = 0; i < 2; i++)
		if (aamctl(NULL, "workload", "register", ids[i], "--method", "pkcs11", "--owner",
		           "alice", "--team", "finance", "--env", "prod", "--deployment", "eu-1",
		           "--audience", G.gw_url, "--jkt", G.agent.jwk.jkt, NULL) != 0)
			return -1;
	if (aamctl(NULL, "workload", "register", ID_SHORT, "--method", "pkcs11", "--owner", "alice",
	           "--team", "finance", "--env", "prod", "--deployment", "eu-1", "--audience",
	           G.gw_url, "--jkt", G.agent.jwk.jkt, "--ttl", "1s", NULL) != 0)
		return -1;
	/* A second audience for the wrong-audience case needs its own registration. */
	if (aamctl(NULL, "workload", "register", "spiffe://prod/agent/elsewhere", "--method",
	           "pkcs11", "--owner", "alice", "--team", "finance", "--env", "prod",
	           "--deployment", "eu-1", "--audience", OTHER_AUD, "--jkt", G.agent.jwk.jkt,
	           NULL) != 0)
		return -1;

	char log[1024];
	snprintf(log, sizeof(log), "%s/attest.log", G.dir);
	G.attest_pid = spawn(getenv("AAM_ATTEST_BIN"), log);
	char url[256];
	snprintf(url, sizeof(url), "%s/healthz", G.attest_url);
	if (!wait_status(url, 200, 15000))
		return -1;
	snprintf(log, sizeof(log), "%s/gateway.log", G.dir);
	G.gw_pid = spawn(getenv("AAM_GATEWAY_BIN"), log);
	snprintf(url, sizeof(url), "%s/readyz", G.gw_url);
	if (!wait_status(url, 200, 15000)) {
		print_error("the gateway did not become ready (see %s)\n", log);
		return -1;
	}
	/* Minted now, used last, when it has long expired. */
	G.short_token = attest(ID_SHORT, G.gw_url);
	G.ready = true;
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	stop(&G.gw_pid);
	stop(&G.attest_pid);
	free(G.short_token);
	aam_jwk_uninit(&G.agent.jwk);
	aam_jwk_uninit(&G.other.jwk);
	aam_p11_close(G.p11);
	if (G.v.dir != NULL) {
		vh_stop(&G.v);
		vh_teardown(&G.v);
	}
	curl_global_cleanup();
	return 0;
}

#define REQUIRE()                                                                                  \
	do {                                                                                       \
		AAM_TEST_SOFTHSM_REQUIRE();                                                        \
		if (getenv("AAM_GATEWAY_BIN") == NULL) {                                           \
			print_message("[  SKIP    ] AAM_GATEWAY_BIN not set\n");                   \
			skip();                                                                    \
		}                                                                                  \
		assert_true(G.ready);                                                              \
	} while (0)

static const char chat_allowed[] = "{\"model\":\"reasoning-high\",\"messages\":[]}";

/* ---- tests ------------------------------------------------------------------------------ */

static void
test_attested_request(void **state)
{
	(void)state;
	REQUIRE();
	char *t = attest(ID, G.gw_url);
	char *p = proof(&G.agent, "GET", "/v1/models", t);
	struct reply r;
	gw("GET", "/v1/models", NULL, t, p, &r);
	expect(&r, 200, "\"object\":\"list\"");
	free(p);
	/* The policy allows the route; no routes are configured, so the router is not reached. */
	p = proof(&G.agent, "POST", "/v1/chat/completions", t);
	gw("POST", "/v1/chat/completions", chat_allowed, t, p, &r);
	expect(&r, 503, "no_routes");
	free(p);
	/* A route no policy allows: 403 naming why. */
	p = proof(&G.agent, "POST", "/v1/chat/completions", t);
	gw("POST", "/v1/chat/completions", "{\"model\":\"gpt-secret\",\"messages\":[]}", t, p, &r);
	expect(&r, 403, "no_match");
	free(p);
	free(t);
}

static void
test_authn_negatives(void **state)
{
	(void)state;
	REQUIRE();
	struct reply r;
	char *t = attest(ID, G.gw_url);
	/* Token without proof. */
	gw("GET", "/v1/models", NULL, t, NULL, &r);
	expect(&r, 401, "dpop_proof_missing");
	/* Proof by another key (also in the token, but not the one the token is bound to). */
	char *p = proof(&G.other, "GET", "/v1/models", t);
	gw("GET", "/v1/models", NULL, t, p, &r);
	expect(&r, 401, "dpop_key_mismatch");
	free(p);
	/* Replayed proof. */
	p = proof(&G.agent, "GET", "/v1/models", t);
	gw("GET", "/v1/models", NULL, t, p, &r);
	expect(&r, 200, NULL);
	gw("GET", "/v1/models", NULL, t, p, &r);
	expect(&r, 401, "dpop_jti_replayed");
	free(p);
	free(t);
	/* Wrong audience: a real token, issued for another service. */
	t = attest("spiffe://prod/agent/elsewhere", OTHER_AUD);
	p = proof(&G.agent, "GET", "/v1/models", t);
	gw("GET", "/v1/models", NULL, t, p, &r);
	expect(&r, 401, "wrong_audience");
	free(p);
	free(t);
}

static void
test_virtual_keys(void **state)
{
	(void)state;
	REQUIRE();
	char *key = NULL;
	assert_int_equal(aamctl(&key, "key", "create", "--workload", ID_VKEY, "--owner", "bob",
	                        "--alias", "legacy-app", NULL),
	                 0);
	assert_non_null(key);
	key[strcspn(key, "\n")] = '\0';
	assert_true(strncmp(key, "sk-aam-", 7) == 0);
	/* Only the hash is stored. */
	char db[1024];
	snprintf(db, sizeof(db), "%s/gateway.db", G.dir);
	size_t dlen = 0;
	char *dbdata = aam_test_read_file(db, &dlen);
	assert_false(vh_contains(dbdata, dlen, key));
	free(dbdata);
	struct reply r;
	gw_key("POST", "/v1/chat/completions", chat_allowed, key, &r);
	expect(&r, 503, "no_routes"); /* authenticated and allowed by policy */
	assert_int_equal(aamctl(NULL, "key", "revoke", "legacy-app", NULL), 0);
	gw_key("POST", "/v1/chat/completions", chat_allowed, key, &r);
	expect(&r, 401, "revoked");
	free(key);

	/* A virtual key against a require_attested policy. */
	key = NULL;
	assert_int_equal(
	        aamctl(&key, "key", "create", "--workload", ID_ATT, "--owner", "bob", NULL), 0);
	key[strcspn(key, "\n")] = '\0';
	gw_key("POST", "/v1/chat/completions", chat_allowed, key, &r);
	expect(&r, 403, "not_attested");
	free(key);
}

/* `aamctl workload revoke` reaches the gateway through aam-attest's feed. */
static void
test_identity_revocation(void **state)
{
	(void)state;
	REQUIRE();
	char *t = attest(ID_ATT, G.gw_url);
	char *p = proof(&G.agent, "GET", "/v1/models", t);
	struct reply r;
	gw("GET", "/v1/models", NULL, t, p, &r);
	expect(&r, 200, NULL);
	free(p);
	assert_int_equal(aamctl(NULL, "workload", "revoke", ID_ATT, NULL), 0);
	bool refused = false;
	for (int i = 0; i < 40 && !refused; i++) {
		nap_ms(100);
		p = proof(&G.agent, "GET", "/v1/models", t);
		gw("GET", "/v1/models", NULL, t, p, &r);
		refused = r.status == 401 && strstr(aam_buf_cstr(&r.body), "token_revoked") != NULL;
		reply_free(&r);
		free(p);
	}
	assert_true(refused);
	free(t);
}

static void
test_operational_endpoints(void **state)
{
	(void)state;
	REQUIRE();
	char url[256];
	struct reply r;
	snprintf(url, sizeof(url), "%s/readyz", G.gw_url);
	assert_int_equal(http("GET", url, NULL, NULL, &r), 0);
	expect(&r, 200, "\"jwks_fresh\":true");
	snprintf(url, sizeof(url), "%s/metrics", G.gw_url);
	assert_int_equal(http("GET", url, NULL, NULL, &r), 0);
	assert_non_null(strstr(aam_buf_cstr(&r.body), "aam_gateway_token_cache_hits_total"));
	assert_non_null(strstr(aam_buf_cstr(&r.body), "decision=\"deny\",status=\"403\""));
	expect(&r, 200, "aam_gateway_requests_total{");
}

/* SIGHUP reloads the policies: a route denied before is allowed after. */
static void
test_reload(void **state)
{
	(void)state;
	REQUIRE();
	char *key = NULL;
	assert_int_equal(
	        aamctl(&key, "key", "create", "--workload", ID_VKEY, "--owner", "bob", NULL), 0);
	key[strcspn(key, "\n")] = '\0';
	static const char body[] = "{\"model\":\"summarization-eu\",\"messages\":[]}";
	struct reply r;
	gw_key("POST", "/v1/chat/completions", body, key, &r);
	expect(&r, 403, "policy_denied");
	char path[1024];
	snprintf(path, sizeof(path), "%s/policies.yaml", G.dir);
	size_t n = strlen(policies);
	char *more = malloc(n + 512);
	int m = snprintf(more, n + 512,
	                 "%s---\napiVersion: access.envisionai.dev/v1\nkind: AgentPolicy\n"
	                 "metadata:\n  name: eu-summaries\nspec:\n  identity:\n    workload: %s\n"
	                 "  models:\n    allow: [summarization-eu]\n",
	                 policies, ID_VKEY);
	assert_int_equal(aam_test_write_file(path, more, (size_t)m, 0600), 0);
	free(more);
	kill(G.gw_pid, SIGHUP);
	bool allowed = false;
	for (int i = 0; i < 50 && !allowed; i++) {
		nap_ms(100);
		gw_key("POST", "/v1/chat/completions", body, key, &r);
		allowed = r.status == 503 && strstr(aam_buf_cstr(&r.body), "no_routes") != NULL;
		reply_free(&r);
	}
	assert_true(allowed);
	free(key);
}

/* The 1-second token minted at start-up, long expired by now. */
static void
test_expired_token(void **state)
{
	(void)state;
	REQUIRE();
	/* Token life (1 s) plus the gateway's clock leeway (5 s). */
	for (int i = 0;; i++) {
		assert_true(i < 30);
		char *p = proof(&G.agent, "GET", "/v1/models", G.short_token);
		struct reply r;
		gw("GET", "/v1/models", NULL, G.short_token, p, &r);
		free(p);
		if (r.status == 401) {
			expect(&r, 401, "expired");
			break;
		}
		assert_int_equal(r.status, 200);
		reply_free(&r);
		nap_ms(500);
	}
}

/* With the vault's audit log wired, a vault that is gone means no answer but 503. */
static void
test_audit_unavailable(void **state)
{
	(void)state;
	REQUIRE();
	char url[256];
	struct reply r;
	snprintf(url, sizeof(url), "%s/readyz", G.gw_url);
	assert_int_equal(http("GET", url, NULL, NULL, &r), 0);
	bool vault_audit = strstr(aam_buf_cstr(&r.body), "\"audit_backend\":\"vault\"") != NULL;
	reply_free(&r);
	if (!vault_audit) {
		print_message("[  SKIP    ] the gateway's audit backend is not the vault yet\n");
		skip();
	}
	char *key = NULL;
	assert_int_equal(
	        aamctl(&key, "key", "create", "--workload", ID_VKEY, "--owner", "bob", NULL), 0);
	key[strcspn(key, "\n")] = '\0';
	vh_stop(&G.v);
	gw_key("POST", "/v1/chat/completions", chat_allowed, key, &r);
	expect(&r, 503, "audit_unavailable");
	free(key);
	assert_int_equal(vh_start(&G.v), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_attested_request),
	        cmocka_unit_test(test_authn_negatives),
	        cmocka_unit_test(test_virtual_keys),
	        cmocka_unit_test(test_identity_revocation),
	        cmocka_unit_test(test_operational_endpoints),
	        cmocka_unit_test(test_reload),
	        cmocka_unit_test(test_expired_token),
	        cmocka_unit_test(test_audit_unavailable),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
