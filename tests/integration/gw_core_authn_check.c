/*
 * aam-gateway's authentication and refusals, in process: the gateway
 * runs on loopback with its real HTTP front, policy engine and audit
 * emitter; a stand-in aam-attest (an HTTP server in this test) serves the
 * issuer's JWKS and the revocation feed, and tokens are signed here with
 * an OpenSSL key, so every way a token or proof can be wrong is easy to
 * build.  The real aam-attest and aam-vault are exercised by
 * gw_core_e2e_check.
 *
 * Covered: a good DPoP request and the token cache (one verification per
 * token); expired, not-yet-valid, wrong audience, wrong issuer, too long,
 * unbound and unsigned tokens; a missing, replayed, other-key, wrong-htu,
 * wrong-htm and ath-less proof; a DPoP token sent as Bearer; an unknown
 * kid fetched once per interval; revocations by jti and by identity
 * applied to cached tokens; virtual keys (good, revoked, expired,
 * x-api-key, route-limited, against require_attested); policy denials
 * with their reason; audit failure answered 503.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "aam/err.h"
#include "common/config.h"
#include "common/http.h"
#include "common/jose.h"
#include "common/json.h"
#include "gateway/authn_int.h"
#include "gateway/gw_int.h"
#include "gateway/vkeys.h"
#include "tests/lib/testutil.h"

#define ISSUER "https://attest.test"
#define WL     "spiffe://prod/agent/finance"
#define WL_ATT "spiffe://prod/agent/attested-only"

/* ---- the stand-in aam-attest -------------------------------------------------- */

struct fake_attest {
	pthread_mutex_t mu;
	json_t *jwks;        /* served at /.well-known/jwks.json */
	json_t *revocations; /* array of feed entries */
	int jwks_hits;
	struct aam_http_server *srv;
	uint16_t port;
};

static struct fake_attest FA;

static int
on_jwks(void *ctx, const struct aam_http_request *req, struct aam_http_response *resp)
{
	(void)ctx;
	(void)req;
	pthread_mutex_lock(&FA.mu);
	FA.jwks_hits++;
	int rc = aam_http_respond_json(resp, 200, FA.jwks);
	pthread_mutex_unlock(&FA.mu);
	return rc;
}

static int
on_revocations(void *ctx, const struct aam_http_request *req, struct aam_http_response *resp)
{
	(void)ctx;
	const char *since = aam_http_request_query(req, "since");
	size_t from = since != NULL ? (size_t)strtoul(since, NULL, 10) : 0;
	pthread_mutex_lock(&FA.mu);
	json_t *list = json_array();
	size_t n = json_array_size(FA.revocations);
	for (size_t i = from; i < n; i++)
		json_array_append(list, json_array_get(FA.revocations, i));
	json_t *j = json_pack("{s:I,s:I,s:b,s:o}", "sequence", (json_int_t)n, "next", (json_int_t)n,
	                      "more", 0, "revocations", list);
	pthread_mutex_unlock(&FA.mu);
	int rc = aam_http_respond_json(resp, 200, j);
	json_decref(j);
	return rc;
}

static const struct aam_http_route fa_routes[] = {
        {"GET", "/.well-known/jwks.json", on_jwks},
        {"GET", "/v1/revocations", on_revocations},
};

/* ---- keys and tokens ------------------------------------------------------------ */

struct key {
	EVP_PKEY *pkey;
	struct aam_jwk jwk;
	struct aam_jose_signer signer;
	char kid[64];
};

static void
key_new(struct key *k, const char *kid)
{
	memset(k, 0, sizeof(*k));
	k->pkey = EVP_EC_gen("P-256");
	assert_non_null(k->pkey);
	snprintf(k->kid, sizeof(k->kid), "%s", kid != NULL ? kid : "");
	assert_int_equal(aam_jwk_from_pkey(k->pkey, kid, &k->jwk), AAM_OK);
	aam_jose_signer_pkey(&k->signer, k->pkey, kid);
}

static void
key_free(struct key *k)
{
	aam_jwk_uninit(&k->jwk);
	EVP_PKEY_free(k->pkey);
}

static void
publish(const struct key *const *keys, size_t n)
{
	struct aam_jwks set;
	aam_jwks_init(&set);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(aam_jwks_add(&set, &keys[i]->jwk), AAM_OK);
	json_t *j = NULL;
	assert_int_equal(aam_jwks_to_json(&set, &j), AAM_OK);
	aam_jwks_uninit(&set);
	pthread_mutex_lock(&FA.mu);
	json_decref(FA.jwks);
	FA.jwks = j;
	pthread_mutex_unlock(&FA.mu);
}

struct tok_opts {
	const char *iss, *aud, *sub;
	int64_t iat_off, exp_off, nbf_off; /* relative to now */
	bool no_cnf;
	const char *jkt; /* NULL: the agent key's */
	const char *jti;
};

struct g {
	char *dir;
	struct key issuer, issuer2, issuer3, agent, other;
	struct aam_config cfg;
	struct gw *gw;
	uint16_t port;
	char base[128];
	int jti_seq;
};

static struct g G;

static char *
mint(const struct key *iss, const struct tok_opts *o)
{
	int64_t now = (int64_t)time(NULL);
	char jti[64];
	snprintf(jti, sizeof(jti), "jti-%d-%ld", ++G.jti_seq, (long)now);
	json_t *c =
	        json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:s,s:{s:s,s:s,s:s,s:s,s:s}}", "iss",
	                  o->iss != NULL ? o->iss : ISSUER, "aud", o->aud != NULL ? o->aud : G.base,
	                  "sub", o->sub != NULL ? o->sub : WL, "iat",
	                  (json_int_t)(now + o->iat_off), "nbf", (json_int_t)(now + o->nbf_off),
	                  "exp", (json_int_t)(now + (o->exp_off != 0 ? o->exp_off : 300)), "jti",
	                  o->jti != NULL ? o->jti : jti, "aam", "owner", "alice", "team", "finance",
	                  "environment", "prod", "deployment", "eu-1", "method", "pkcs11");
	if (!o->no_cnf)
		json_object_set_new(
		        c, "cnf",
		        json_pack("{s:s}", "jkt", o->jkt != NULL ? o->jkt : G.agent.jwk.jkt));
	char *tok = NULL;
	assert_int_equal(aam_jose_sign(&iss->signer, "JWT", NULL, c, &tok), AAM_OK);
	json_decref(c);
	return tok;
}

static char *
proof(const struct key *k, const char *method, const char *path, const char *token)
{
	char htu[256];
	snprintf(htu, sizeof(htu), "%s%s", G.base, path);
	struct aam_dpop_request r = {.htm = method, .htu = htu, .access_token = token};
	char *p = NULL;
	assert_int_equal(aam_dpop_create(&k->signer, &k->jwk, &r, &p), AAM_OK);
	return p;
}

/* ---- HTTP client ------------------------------------------------------------------ */

struct reply {
	long status;
	struct aam_buf body;
	char www[256];
};

static size_t
on_body(char *p, size_t size, size_t n, void *ud)
{
	struct reply *r = ud;
	return aam_buf_append(&r->body, p, size * n) == AAM_OK ? size * n : 0;
}

static size_t
on_header(char *p, size_t size, size_t n, void *ud)
{
	struct reply *r = ud;
	size_t len = size * n;
	if (len > 17 && strncasecmp(p, "WWW-Authenticate:", 17) == 0)
		snprintf(r->www, sizeof(r->www), "%.*s", (int)(len - 17), p + 17);
	return len;
}

/* HDRS: NULL-terminated "Name: value" strings. */
static void
call(const char *method, const char *path, const char *body, const char *const *hdrs,
     struct reply *r)
{
	memset(r, 0, sizeof(*r));
	aam_buf_init(&r->body, 1u << 20);
	char url[256];
	snprintf(url, sizeof(url), "%s%s", G.base, path);
	CURL *c = curl_easy_init();
	struct curl_slist *h = curl_slist_append(NULL, "Expect:");
	for (size_t i = 0; hdrs != NULL && hdrs[i] != NULL; i++)
		h = curl_slist_append(h, hdrs[i]);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (body != NULL)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
}

static void
reply_free(struct reply *r)
{
	aam_buf_uninit(&r->body);
}

/* A DPoP request to GET /v1/models with TOKEN and PROOF (either may be NULL). */
static long
dpop_get(const char *token, const char *proof_, struct reply *r)
{
	char a[9000], d[9000];
	const char *h[3] = {NULL, NULL, NULL};
	size_t n = 0;
	if (token != NULL) {
		snprintf(a, sizeof(a), "Authorization: DPoP %s", token);
		h[n++] = a;
	}
	if (proof_ != NULL) {
		snprintf(d, sizeof(d), "DPoP: %s", proof_);
		h[n++] = d;
	}
	call("GET", "/v1/models", NULL, h, r);
	return r->status;
}

/* Asserts STATUS and that the body's error mentions WANT (a code or a check name). */
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

/* A token and a fresh proof for it; asserts the answer. */
static void
try_token(const struct key *iss, const struct tok_opts *o, long status, const char *want)
{
	char *t = mint(iss, o);
	char *p = proof(&G.agent, "GET", "/v1/models", t);
	struct reply r;
	dpop_get(t, p, &r);
	expect(&r, status, want);
	free(t);
	free(p);
}

/* ---- fixture ------------------------------------------------------------------------ */

static const char policies[] = "apiVersion: access.envisionai.dev/v1\n"
                               "kind: AgentPolicy\n"
                               "metadata:\n  name: finance-models\n"
                               "spec:\n"
                               "  identity:\n    workload: " WL "\n"
                               "  models:\n    allow: [reasoning-high, summarization]\n"
                               "---\n"
                               "apiVersion: access.envisionai.dev/v1\n"
                               "kind: AgentPolicy\n"
                               "metadata:\n  name: attested-only\n"
                               "spec:\n"
                               "  identity:\n    workload: " WL_ATT "\n    require_attested: true\n"
                               "  models:\n    allow: [reasoning-high]\n";

static _Atomic int captured;

/* Stands in for aam-vault's AUDIT_APPEND: every record is acknowledged with the next seq. */
static int
capture_audit(void *ctx, const json_t *ev, int timeout_ms, uint64_t *seq)
{
	(void)ctx;
	(void)timeout_ms;
	if (!json_is_object(ev) || json_object_size(ev) == 0)
		return AAM_E_INVAL;
	int n = captured++;
	if (seq != NULL)
		*seq = (uint64_t)n;
	return AAM_OK;
}

static int
group_setup(void **state)
{
	(void)state;
	memset(&G, 0, sizeof(G));
	memset(&FA, 0, sizeof(FA));
	curl_global_init(CURL_GLOBAL_DEFAULT);
	pthread_mutex_init(&FA.mu, NULL);
	FA.revocations = json_array();
	key_new(&G.issuer, "issuer-1");
	key_new(&G.issuer2, "issuer-2");
	key_new(&G.issuer3, "issuer-3");
	key_new(&G.agent, NULL);
	key_new(&G.other, NULL);
	const struct key *ks[] = {&G.issuer};
	publish(ks, 1);
	struct aam_http_config hc = {
	        .host = "127.0.0.1", .routes = fa_routes, .nroutes = 2, .name = "fake-attest"};
	if (aam_http_server_start(&hc, &FA.srv) != AAM_OK)
		return -1;
	FA.port = aam_http_server_port(FA.srv);

	G.dir = aam_test_mkdtemp("aam-gw-authn");
	char path[1024];
	snprintf(path, sizeof(path), "%s/policies.yaml", G.dir);
	aam_test_write_file(path, policies, strlen(policies), 0600);
	int port = aam_test_free_port();
	char yaml[4096];
	snprintf(yaml, sizeof(yaml),
	         "gateway:\n"
	         "  listen: 127.0.0.1:%d\n"
	         "  policies: %s/policies.yaml\n"
	         "  db: %s/gateway.db\n"
	         "  attest_url: http://127.0.0.1:%u\n"
	         "  issuer: " ISSUER "\n"
	         "  jwks_refresh: 2s\n"
	         "  revocation_poll: 100ms\n",
	         port, G.dir, G.dir, (unsigned)FA.port);
	char err[512];
	snprintf(path, sizeof(path), "%s/aam.yaml", G.dir);
	if (aam_config_load_buffer(path, yaml, strlen(yaml), &G.cfg, err, sizeof(err)) != AAM_OK) {
		print_error("config: %s\n", err);
		return -1;
	}
	struct gw_options opt = {.cfg = &G.cfg.gateway};
	if (gw_new(&opt, &G.gw, err, sizeof(err)) != AAM_OK) {
		print_error("gw_new: %s\n", err);
		return -1;
	}
	/* No aam-vault here: records go to a capturing backend (the durable one is tested end to
	 * end). */
	gw_audit_set_backend(G.gw->audit, capture_audit, NULL);
	if (gw_start(G.gw) != AAM_OK)
		return -1;
	G.port = gw_port(G.gw);
	snprintf(G.base, sizeof(G.base), "http://127.0.0.1:%u", (unsigned)G.port);
	/* Wait for the first JWKS fetch. */
	for (int i = 0; i < 100 && !gw_authn_jwks_fresh(G.gw->authn); i++)
		usleep(20 * 1000);
	return gw_authn_jwks_fresh(G.gw->authn) ? 0 : -1;
}

static int
group_teardown(void **state)
{
	(void)state;
	gw_free(G.gw);
	aam_config_uninit(&G.cfg);
	aam_http_server_stop(FA.srv);
	json_decref(FA.jwks);
	json_decref(FA.revocations);
	pthread_mutex_destroy(&FA.mu);
	key_free(&G.issuer);
	key_free(&G.issuer2);
	key_free(&G.issuer3);
	key_free(&G.agent);
	key_free(&G.other);
	aam_test_rmtree(G.dir);
	free(G.dir);
	curl_global_cleanup();
	return 0;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void
test_dpop_good_and_cached(void **state)
{
	(void)state;
	struct tok_opts o = {0};
	char *t = mint(&G.issuer, &o);
	struct gw_authn_stats before, after;
	gw_authn_stats(G.gw->authn, &before);
	for (int i = 0; i < 3; i++) {
		char *p = proof(&G.agent, "GET", "/v1/models", t);
		struct reply r;
		dpop_get(t, p, &r);
		expect(&r, 200, "\"object\":\"list\"");
		free(p);
	}
	gw_authn_stats(G.gw->authn, &after);
	/* One verification of the token, then the cache. */
	assert_int_equal(after.token_cache_misses - before.token_cache_misses, 1);
	assert_int_equal(after.token_cache_hits - before.token_cache_hits, 2);
	free(t);
}

static void
test_bad_tokens(void **state)
{
	(void)state;
	try_token(&G.issuer, &(struct tok_opts){.iat_off = -400, .nbf_off = -400, .exp_off = -100},
	          401, "expired");
	try_token(&G.issuer, &(struct tok_opts){.nbf_off = 120}, 401, "not_yet_valid");
	try_token(&G.issuer, &(struct tok_opts){.aud = "http://elsewhere.example"}, 401,
	          "wrong_audience");
	try_token(&G.issuer, &(struct tok_opts){.iss = "https://evil.example"}, 401,
	          "wrong_issuer");
	try_token(&G.issuer, &(struct tok_opts){.exp_off = 16 * 60}, 401, "lifetime_too_long");
	try_token(&G.issuer, &(struct tok_opts){.no_cnf = true}, 401,
	          "token_not_sender_constrained");
	try_token(&G.issuer, &(struct tok_opts){.sub = "not-a-spiffe-id"}, 401, "bad_subject");
	/* Signed by a key without a kid, which no key set fetch could bring. */
	try_token(&G.other, &(struct tok_opts){0}, 401, "unknown_kid");
	/* Tampered: the signature no longer matches. */
	char *t = mint(&G.issuer, &(struct tok_opts){0});
	char *dot = strchr(t, '.');
	dot[3] = dot[3] == 'A' ? 'B' : 'A';
	char *p = proof(&G.agent, "GET", "/v1/models", t);
	struct reply r;
	dpop_get(t, p, &r);
	assert_int_equal(r.status, 401);
	reply_free(&r);
	free(p);
	free(t);
}

static void
test_bad_proofs(void **state)
{
	(void)state;
	char *t = mint(&G.issuer, &(struct tok_opts){0});
	struct reply r;
	/* Token without a proof. */
	dpop_get(t, NULL, &r);
	assert_non_null(strstr(r.www, "invalid_dpop_proof"));
	expect(&r, 401, "dpop_proof_missing");
	/* A proof by another key than the token is bound to. */
	char *p = proof(&G.other, "GET", "/v1/models", t);
	dpop_get(t, p, &r);
	expect(&r, 401, "dpop_key_mismatch");
	free(p);
	/* Replay: the same proof twice. */
	p = proof(&G.agent, "GET", "/v1/models", t);
	dpop_get(t, p, &r);
	expect(&r, 200, NULL);
	dpop_get(t, p, &r);
	expect(&r, 401, "dpop_jti_replayed");
	free(p);
	/* Another path or method than the request's. */
	p = proof(&G.agent, "GET", "/v1/chat/completions", t);
	dpop_get(t, p, &r);
	expect(&r, 401, "dpop_htu_mismatch");
	free(p);
	p = proof(&G.agent, "POST", "/v1/models", t);
	dpop_get(t, p, &r);
	expect(&r, 401, "dpop_htm_mismatch");
	free(p);
	/* A proof that does not name the token (no ath). */
	p = proof(&G.agent, "GET", "/v1/models", NULL);
	dpop_get(t, p, &r);
	expect(&r, 401, "dpop_ath_missing");
	free(p);
	/* A proof for another token. */
	char *t2 = mint(&G.issuer, &(struct tok_opts){0});
	p = proof(&G.agent, "GET", "/v1/models", t2);
	dpop_get(t, p, &r);
	expect(&r, 401, "dpop_ath_mismatch");
	free(p);
	free(t2);
	/* Garbage. */
	dpop_get(t, "not.a.proof", &r);
	expect(&r, 401, "invalid_dpop_proof");
	/* A DPoP-bound token downgraded to Bearer. */
	char a[9000];
	snprintf(a, sizeof(a), "Authorization: Bearer %s", t);
	const char *h[] = {a, NULL};
	call("GET", "/v1/models", NULL, h, &r);
	expect(&r, 401, "dpop_scheme_required");
	/* Nothing at all, and an unknown scheme. */
	call("GET", "/v1/models", NULL, NULL, &r);
	expect(&r, 401, "missing_credentials");
	const char *h2[] = {"Authorization: Basic dXNlcjpwYXNz", NULL};
	call("GET", "/v1/models", NULL, h2, &r);
	expect(&r, 401, "invalid_token");
	free(t);
}

/* A token signed with a new issuer key is accepted after one JWKS fetch; fetches are spaced. */
static void
test_unknown_kid_refetch(void **state)
{
	(void)state;
	const struct key *ks[] = {&G.issuer, &G.issuer2, &G.issuer3};
	publish(ks, 2);
	pthread_mutex_lock(&FA.mu);
	int before = FA.jwks_hits;
	pthread_mutex_unlock(&FA.mu);
	try_token(&G.issuer2, &(struct tok_opts){0}, 200, NULL);
	/* A third key right away: the set is not fetched again within the interval. */
	publish(ks, 3);
	try_token(&G.issuer3, &(struct tok_opts){0}, 401, "unknown_kid");
	pthread_mutex_lock(&FA.mu);
	int after = FA.jwks_hits;
	pthread_mutex_unlock(&FA.mu);
	assert_true(after - before <= 2);
	assert_true(after - before >= 1);
}

static void
add_revocation(const char *sub, const char *jti)
{
	pthread_mutex_lock(&FA.mu);
	json_int_t seq = (json_int_t)json_array_size(FA.revocations) + 1;
	json_t *e = json_pack("{s:I,s:s,s:I}", "seq", seq, "spiffe_id", sub, "revoked_at",
	                      (json_int_t)time(NULL));
	if (jti != NULL) {
		json_object_set_new(e, "jti", json_string(jti));
		json_object_set_new(e, "exp", json_integer((json_int_t)time(NULL) + 300));
	}
	json_array_append_new(FA.revocations, e);
	pthread_mutex_unlock(&FA.mu);
}

static void
test_revocation_applies_to_cached_tokens(void **state)
{
	(void)state;
	char *t = mint(&G.issuer, &(struct tok_opts){.jti = "revoke-me"});
	char *t2 = mint(&G.issuer, &(struct tok_opts){.jti = "keep-me"});
	for (int i = 0; i < 2; i++) {
		char *p = proof(&G.agent, "GET", "/v1/models", i == 0 ? t : t2);
		struct reply r;
		dpop_get(i == 0 ? t : t2, p, &r);
		expect(&r, 200, NULL);
		free(p);
	}
	add_revocation(WL, "revoke-me");
	assert_int_equal(gw_authn_poll_revocations(G.gw->authn), AAM_OK);
	char *p = proof(&G.agent, "GET", "/v1/models", t);
	struct reply r;
	dpop_get(t, p, &r);
	expect(&r, 401, "token_revoked");
	free(p);
	p = proof(&G.agent, "GET", "/v1/models", t2);
	dpop_get(t2, p, &r);
	expect(&r, 200, NULL);
	free(p);
	/* Revoking the identity revokes every token issued until then (the feed thread picks it
	 * up). */
	add_revocation(WL, NULL);
	usleep(400 * 1000);
	p = proof(&G.agent, "GET", "/v1/models", t2);
	dpop_get(t2, p, &r);
	expect(&r, 401, "token_revoked");
	free(p);
	free(t);
	free(t2);
	/* Clean slate for later tests: a new identity revocation list. */
	pthread_mutex_lock(&G.gw->authn->cache_mu);
	gw_smap_free(&G.gw->authn->rev_sub);
	pthread_mutex_unlock(&G.gw->authn->cache_mu);
}

/* ---- virtual keys ------------------------------------------------------------------- */

static void
make_key(const char *workload, const char *alias, const char *models, int64_t expires,
         char out[GW_VKEY_NEW_LEN + 1])
{
	struct aam_db *db = NULL;
	char path[1024];
	snprintf(path, sizeof(path), "%s/gateway.db", G.dir);
	assert_int_equal(aam_db_open(path, 0, &db), AAM_OK);
	assert_int_equal(gw_vkey_generate(out), AAM_OK);
	struct gw_vkey k = {.workload = (char *)(uintptr_t)workload,
	                    .owner = (char *)(uintptr_t) "bob",
	                    .alias = (char *)(uintptr_t)alias,
	                    .models = (char *)(uintptr_t)models,
	                    .max_budget = -1,
	                    .expires = expires};
	gw_vkey_hash(out, strlen(out), k.hash);
	assert_int_equal(gw_vkey_insert(db, &k), AAM_OK);
	aam_db_close(db);
}

static void
vkey_get(const char *path, const char *hdr_prefix, const char *key, struct reply *r)
{
	char h[512];
	snprintf(h, sizeof(h), "%s%s", hdr_prefix, key);
	const char *hs[] = {h, NULL};
	call("GET", path, NULL, hs, r);
}

static void
test_virtual_keys(void **state)
{
	(void)state;
	char k1[GW_VKEY_NEW_LEN + 1], k2[GW_VKEY_NEW_LEN + 1], k3[GW_VKEY_NEW_LEN + 1];
	make_key(WL, "k1", NULL, 0, k1);
	make_key(WL, NULL, NULL, (int64_t)time(NULL) - 10, k2);
	make_key(WL, NULL, "[\"summarization\"]", 0, k3);
	struct reply r;
	vkey_get("/v1/models", "Authorization: Bearer ", k1, &r);
	expect(&r, 200, NULL);
	vkey_get("/v1/models", "x-api-key: ", k1, &r);
	expect(&r, 200, NULL);
	vkey_get("/v1/models", "Authorization: Bearer ", "sk-aam-nope", &r);
	expect(&r, 401, "invalid_api_key");
	vkey_get("/v1/models", "Authorization: Bearer ", k2, &r);
	expect(&r, 401, "expired");
	/* Revoked, by alias, through the library aamctl uses. */
	struct aam_db *db = NULL;
	char path[1024];
	snprintf(path, sizeof(path), "%s/gateway.db", G.dir);
	assert_int_equal(aam_db_open(path, 0, &db), AAM_OK);
	assert_int_equal(gw_vkey_revoke(db, "k1"), AAM_OK);
	assert_int_equal(gw_vkey_revoke(db, "no-such-alias"), AAM_E_NOTFOUND);
	aam_db_close(db);
	vkey_get("/v1/models", "Authorization: Bearer ", k1, &r);
	expect(&r, 401, "revoked");
	/* A route-limited key asking for another route: refused before the policy. */
	char h[512];
	snprintf(h, sizeof(h), "Authorization: Bearer %s", k3);
	const char *hs[] = {h, NULL};
	call("POST", "/v1/chat/completions", "{\"model\":\"reasoning-high\",\"messages\":[]}", hs,
	     &r);
	expect(&r, 403, "model_not_allowed");
}

/* A virtual key against a require_attested policy: denied with the reason. */
static void
test_require_attested(void **state)
{
	(void)state;
	char k[GW_VKEY_NEW_LEN + 1];
	make_key(WL_ATT, NULL, NULL, 0, k);
	char h[512];
	snprintf(h, sizeof(h), "Authorization: Bearer %s", k);
	const char *hs[] = {h, NULL};
	struct reply r;
	call("POST", "/v1/chat/completions", "{\"model\":\"reasoning-high\",\"messages\":[]}", hs,
	     &r);
	assert_non_null(strstr(aam_buf_cstr(&r.body), "attested-only"));
	expect(&r, 403, "not_attested");
	/* The same identity, attested, passes the policy (and finds no routes configured). */
	char *t = mint(&G.issuer, &(struct tok_opts){.sub = WL_ATT});
	char *p = proof(&G.agent, "POST", "/v1/chat/completions", t);
	char a[9000], d[9000];
	snprintf(a, sizeof(a), "Authorization: DPoP %s", t);
	snprintf(d, sizeof(d), "DPoP: %s", p);
	const char *hd[] = {a, d, NULL};
	call("POST", "/v1/chat/completions", "{\"model\":\"reasoning-high\",\"messages\":[]}", hd,
	     &r);
	expect(&r, 503, "no_routes");
	free(t);
	free(p);
}

/* Policy denials in each SDK's error shape, and bad bodies. */
static void
test_policy_denials_and_shapes(void **state)
{
	(void)state;
	char k[GW_VKEY_NEW_LEN + 1];
	make_key(WL, NULL, NULL, 0, k);
	char h[512];
	snprintf(h, sizeof(h), "Authorization: Bearer %s", k);
	const char *hs[] = {h, NULL};
	struct reply r;
	call("POST", "/v1/chat/completions", "{\"model\":\"not-allowed\",\"messages\":[]}", hs, &r);
	json_t *j = NULL;
	assert_int_equal(aam_json_parse(r.body.data, r.body.len, NULL, &j, NULL), AAM_OK);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "type")),
	                    "permission_error");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
	                    "policy_denied");
	json_decref(j);
	expect(&r, 403, "no_match");
	/* Anthropic's shape on /v1/messages. */
	char xk[512];
	snprintf(xk, sizeof(xk), "x-api-key: %s", k);
	const char *hx[] = {xk, "anthropic-version: 2023-06-01", NULL};
	call("POST", "/v1/messages", "{\"model\":\"not-allowed\",\"max_tokens\":5,\"messages\":[]}",
	     hx, &r);
	assert_int_equal(aam_json_parse(r.body.data, r.body.len, NULL, &j, NULL), AAM_OK);
	assert_string_equal(json_string_value(json_object_get(j, "type")), "error");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "type")),
	                    "permission_error");
	json_decref(j);
	expect(&r, 403, "policy_denied");
	/* Bodies: not JSON, no model, wrong types, duplicate keys. */
	call("POST", "/v1/chat/completions", "{not json", hs, &r);
	expect(&r, 400, "invalid_request");
	call("POST", "/v1/chat/completions", "{\"messages\":[]}", hs, &r);
	expect(&r, 400, "$.model");
	call("POST", "/v1/chat/completions", "{\"model\":\"x\",\"stream\":\"yes\"}", hs, &r);
	expect(&r, 400, "$.stream");
	call("POST", "/v1/chat/completions", "{\"model\":\"x\",\"model\":\"y\"}", hs, &r);
	expect(&r, 400, "invalid_request");
	call("POST", "/v1/chat/completions", "{\"model\":\"x\",\"max_tokens\":-1}", hs, &r);
	expect(&r, 400, "$.max_tokens");
}

static int fail_calls;

static int
failing_audit(void *ctx, const json_t *ev, int timeout_ms, uint64_t *seq)
{
	(void)ctx;
	(void)ev;
	(void)timeout_ms;
	(void)seq;
	fail_calls++;
	return AAM_E_IO;
}

/* No record, no answer: a denial whose record cannot be stored is a 503. */
static void
test_audit_failure_is_503(void **state)
{
	(void)state;
	char k[GW_VKEY_NEW_LEN + 1];
	make_key(WL, NULL, NULL, 0, k);
	char h[512];
	snprintf(h, sizeof(h), "Authorization: Bearer %s", k);
	const char *hs[] = {h, NULL};
	gw_audit_set_backend(G.gw->audit, failing_audit, NULL);
	struct reply r;
	call("POST", "/v1/chat/completions", "{\"model\":\"not-allowed\",\"messages\":[]}", hs, &r);
	expect(&r, 503, "audit_unavailable");
	call("POST", "/v1/chat/completions", "{\"model\":\"reasoning-high\",\"messages\":[]}", hs,
	     &r);
	expect(&r, 503, "audit_unavailable");
	assert_int_equal(fail_calls, 2);
	call("GET", "/readyz", NULL, NULL, &r);
	expect(&r, 503, "\"audit_writable\":false");
	gw_audit_set_backend(G.gw->audit, capture_audit, NULL);
	call("POST", "/v1/chat/completions", "{\"model\":\"not-allowed\",\"messages\":[]}", hs, &r);
	expect(&r, 403, "policy_denied");
	call("GET", "/readyz", NULL, NULL, &r);
	expect(&r, 200, "\"status\":\"ready\"");
	call("GET", "/metrics", NULL, NULL, &r);
	assert_non_null(strstr(aam_buf_cstr(&r.body), "aam_gateway_audit_failures_total 2"));
	assert_non_null(strstr(aam_buf_cstr(&r.body), "aam_gateway_token_cache_hits_total"));
	expect(&r, 200, "aam_gateway_authn_failures_total{code=\"invalid_api_key\"}");
}

static void
test_extension_points_default(void **state)
{
	(void)state;
	char k[GW_VKEY_NEW_LEN + 1];
	make_key(WL, NULL, NULL, 0, k);
	char h[512];
	snprintf(h, sizeof(h), "Authorization: Bearer %s", k);
	const char *hs[] = {h, NULL};
	struct reply r;
	call("POST", "/v1/tools/github/issues.create", "{}", hs, &r);
	expect(&r, 404, "not_enabled");
	call("POST", "/mcp", "{}", hs, &r);
	expect(&r, 404, "not_enabled");
	/* Unauthenticated: 401 before any extension runs. */
	call("POST", "/v1/tools/github/issues.create", "{}", NULL, &r);
	expect(&r, 401, "missing_credentials");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_dpop_good_and_cached),
	        cmocka_unit_test(test_bad_tokens),
	        cmocka_unit_test(test_bad_proofs),
	        cmocka_unit_test(test_unknown_kid_refetch),
	        cmocka_unit_test(test_revocation_applies_to_cached_tokens),
	        cmocka_unit_test(test_virtual_keys),
	        cmocka_unit_test(test_require_attested),
	        cmocka_unit_test(test_policy_denials_and_shapes),
	        cmocka_unit_test(test_audit_failure_is_503),
	        cmocka_unit_test(test_extension_points_default),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
