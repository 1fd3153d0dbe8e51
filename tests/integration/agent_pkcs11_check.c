/*
 * aam-agent with its key in a PKCS#11 token (SoftHSM2), against the real
 * aam-vault and aam-attest daemons:
 *   - `aam-agent identity` prints the key's thumbprint, which matches the
 *     key read straight from the token; the workload is registered with it
 *     through `aamctl workload register --jwk`;
 *   - `aam-agent token` prints a token that verifies against aam-attest's
 *     JWKS, names the workload, and is bound (cnf.jkt) to the token's key;
 *   - a workload registered with another key is refused (key_mismatch);
 *   - the sidecar forwards requests to a gateway that checks token and
 *     DPoP proof like the real one, drops the agent code's own
 *     Authorization / X-Api-Key, keeps other headers, query and body,
 *     answers a DPoP nonce challenge, streams SSE incrementally, passes
 *     errors through, and refreshes its 3-second token.
 *   - the library in-process: proofs verify, bad configurations are refused.
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
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/ec.h>

#include "aam/agent.h"
#include "aam/err.h"
#include "common/jose.h"
#include "common/json.h"
#include "tests/integration/agent_stack.h"
#include "tests/lib/softhsm.h"
#include "tests/lib/testutil.h"

#define ID       "spiffe://prod/agent/pkcs11-analyst"
#define ID_OTHER "spiffe://prod/agent/other-key"
#define LABEL    "agent-key"

struct fx {
	struct agent_stack st;
	bool up;
	struct aam_test_softhsm hsm; /* the agent's own token, not the vault's */
	bool hsm_up;
	struct fake_gw gw;
	bool gw_up;
	char cfg[STACK_PATH], cfg_other[STACK_PATH], key_uri[STACK_PATH];
	char jkt[48]; /* the key's thumbprint, computed from CKA_EC_POINT here */
	char side_cfg[STACK_PATH], side_log[STACK_PATH];
	pid_t side_pid;
	char side_url[64];
};

static struct fx X;

static void
agent_body(char *out, size_t len, const char *id, const char *gw_url)
{
	snprintf(out, len,
	         "  gateway_url: %s\n  audience: %s\n  spiffe_id: %s\n"
	         "  pkcs11_key: \"%s\"\n  pkcs11_module: %s\n  pin_file: %s\n",
	         gw_url, gw_url, id, X.key_uri, X.hsm.module_path, X.hsm.user_pin_file);
}

static int
register_pkcs11(const char *id, const char *jwk_path, const char *ttl, const char *aud)
{
	char *out = NULL, *err = NULL;
	int rc = stack_aamctl(&X.st, &out, &err, "workload", "register", id, "--method", "pkcs11",
	                      "--owner", "alice@example.com", "--team", "finance", "--env", "prod",
	                      "--deployment", "analyst-v1", "--audience", aud, "--jwk", jwk_path,
	                      "--ttl", ttl, NULL);
	if (rc != 0)
		fprintf(stderr, "aamctl workload register: %s%s\n", out ? out : "", err ? err : "");
	free(out);
	free(err);
	return rc;
}

static int
group_setup(void **state)
{
	(void)state;
	memset(&X, 0, sizeof(X));
	X.side_pid = -1;
	const char *missing = NULL;
	if (!stack_available(&missing))
		return 0;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (stack_start(&X.st, NULL, 0) != 0)
		return -1;
	X.up = true;
	/* The agent's token comes after the vault's: SOFTHSM2_CONF now names the agent's. */
	if (aam_test_softhsm_start(&X.hsm, "aam-agent-test") != AAM_OK)
		return -1;
	X.hsm_up = true;
	if (stack_p11_make_key(&X.hsm, LABEL, X.jkt) != 0)
		return -1;
	snprintf(X.key_uri, sizeof(X.key_uri), "%s;object=%s;type=private", X.hsm.token_uri, LABEL);
	if (fg_start(&X.gw, &X.st, NULL) != 0)
		return -1;
	X.gw_up = true;
	char body[4096];
	snprintf(X.cfg, sizeof(X.cfg), "%s/agent.yaml", X.st.v.dir);
	agent_body(body, sizeof(body), ID, X.gw.url);
	if (stack_write_agent_config(&X.st, X.cfg, body) != 0)
		return -1;
	snprintf(X.cfg_other, sizeof(X.cfg_other), "%s/agent-other.yaml", X.st.v.dir);
	agent_body(body, sizeof(body), ID_OTHER, X.gw.url);
	return stack_write_agent_config(&X.st, X.cfg_other, body);
}

static int
group_teardown(void **state)
{
	(void)state;
	if (X.side_pid > 0)
		stack_sidecar_stop(X.side_pid, NULL);
	if (X.gw_up)
		fg_stop(&X.gw);
	if (X.hsm_up)
		aam_test_softhsm_stop(&X.hsm);
	if (X.up) {
		stack_stop(&X.st);
		curl_global_cleanup();
	}
	return 0;
}

#define REQUIRE()                                                                                  \
	do {                                                                                       \
		const char *m_ = NULL;                                                             \
		if (!stack_available(&m_)) {                                                       \
			print_message("[  SKIP    ] %s not available\n", m_);                      \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

/* ---- identity, registration, token ------------------------------------------------------ */

static void
test_identity_and_register(void **state)
{
	(void)state;
	REQUIRE();
	char *out = NULL, *err = NULL;
	assert_int_equal(stack_agent(X.cfg, &out, &err, "identity", NULL), 0);
	json_t *j = NULL;
	assert_int_equal(aam_json_parse(out, strlen(out), NULL, &j, NULL), AAM_OK);
	assert_string_equal(json_string_value(json_object_get(j, "method")), "pkcs11");
	assert_string_equal(json_string_value(json_object_get(j, "jkt")), X.jkt);
	assert_null(json_object_get(j, "ek_pub_sha256"));
	/* The JWK it prints is public only and has the same thumbprint. */
	json_t *jwk = json_object_get(j, "jwk");
	assert_null(json_object_get(jwk, "d"));
	char tp[AAM_JWK_THUMBPRINT_LEN + 1];
	assert_int_equal(aam_jwk_thumbprint_b64(jwk, tp), AAM_OK);
	assert_string_equal(tp, X.jkt);
	char *js = json_dumps(jwk, 0), path[STACK_PATH];
	snprintf(path, sizeof(path), "%s/agent.jwk", X.st.v.dir);
	assert_int_equal(aam_test_write_file(path, js, strlen(js), 0600), 0);
	free(js);
	json_decref(j);
	free(out);
	free(err);
	/* A 3 s token makes the sidecar's refresh observable. */
	assert_int_equal(register_pkcs11(ID, path, "3s", X.gw.url), 0);

	/* ID_OTHER is registered with a different key. */
	EVP_PKEY *k = EVP_EC_gen("P-256");
	struct aam_jwk o;
	assert_int_equal(aam_jwk_from_pkey(k, NULL, &o), AAM_OK);
	json_t *oj = NULL;
	assert_int_equal(aam_jwk_to_json(&o, AAM_JWK_PUBLIC, &oj), AAM_OK);
	js = json_dumps(oj, 0);
	snprintf(path, sizeof(path), "%s/other.jwk", X.st.v.dir);
	assert_int_equal(aam_test_write_file(path, js, strlen(js), 0600), 0);
	free(js);
	json_decref(oj);
	aam_jwk_uninit(&o);
	EVP_PKEY_free(k);
	assert_int_equal(register_pkcs11(ID_OTHER, path, "5m", X.gw.url), 0);
}

static void
test_token(void **state)
{
	(void)state;
	REQUIRE();
	char *out = NULL, *err = NULL;
	int rc = stack_agent(X.cfg, &out, &err, "token", NULL);
	if (rc != 0)
		print_error("aam-agent token: %s\n", err);
	assert_int_equal(rc, 0);
	/* stdout is the token and a newline, nothing else. */
	size_t n = strlen(out);
	assert_true(n > 10 && out[n - 1] == '\n');
	out[n - 1] = '\0';
	assert_null(strchr(out, '\n'));
	json_t *c = stack_verify_token(&X.st, out, X.gw.url);
	assert_non_null(c);
	assert_string_equal(json_string_value(json_object_get(c, "sub")), ID);
	const char *jkt = NULL;
	assert_int_equal(aam_jose_claims_cnf_jkt(c, &jkt), AAM_OK);
	assert_string_equal(jkt, X.jkt);
	json_t *aam = json_object_get(c, "aam");
	assert_string_equal(json_string_value(json_object_get(aam, "method")), "pkcs11");
	assert_string_equal(json_string_value(json_object_get(aam, "team")), "finance");
	/* The token never reaches a log line. */
	assert_null(strstr(err, out));
	json_decref(c);
	free(out);
	free(err);
}

static void
test_other_key_refused(void **state)
{
	(void)state;
	REQUIRE();
	char *out = NULL, *err = NULL;
	assert_int_equal(stack_agent(X.cfg_other, &out, &err, "token", NULL), 1);
	assert_string_equal(out, "");
	assert_non_null(strstr(err, "key_mismatch"));
	free(out);
	free(err);
	/* A configuration without a key is refused before anything is opened. */
	char path[STACK_PATH];
	snprintf(path, sizeof(path), "%s/nokey.yaml", X.st.v.dir);
	assert_int_equal(stack_write_agent_config(&X.st, path, "  spiffe_id: " ID "\n"), 0);
	assert_int_equal(stack_agent(path, &out, &err, "token", NULL), 1);
	assert_non_null(strstr(err, "no key"));
	free(out);
	free(err);
}

/* ---- the library in-process ----------------------------------------------------------- */

static void
test_library_dpop(void **state)
{
	(void)state;
	REQUIRE();
	struct aam_agent_config c = {.pkcs11_key = X.key_uri,
	                             .pkcs11_module = X.hsm.module_path,
	                             .pin_file = X.hsm.user_pin_file,
	                             .attest_url = X.st.attest_url,
	                             .spiffe_id = ID,
	                             .audience = X.gw.url};
	struct aam_agent *a = NULL;
	struct aam_agent_error e;
	assert_int_equal(aam_agent_open(&c, &a, &e), AAM_OK);
	assert_string_equal(aam_agent_method(a), "pkcs11");
	assert_string_equal(aam_agent_jkt(a), X.jkt);
	uint8_t *der = NULL;
	size_t dl = 0;
	assert_int_equal(aam_agent_ek_cert(a, &der, &dl, &e), AAM_E_UNSUPPORTED);

	struct aam_agent_token t;
	assert_int_equal(aam_agent_attest(a, &t, &e), AAM_OK);
	assert_string_equal(t.jkt, X.jkt);
	assert_string_equal(t.spiffe_id, ID);
	assert_int_equal(t.expires_in, 3);
	assert_true(t.expires_at == t.issued_at + 3);

	/* A proof for a URL with a query: htu drops it, ath binds the token. */
	char *proof = NULL;
	assert_int_equal(
	        aam_agent_dpop(a, "POST", "http://gw.test/v1/chat?x=1", t.token, NULL, &proof),
	        AAM_OK);
	struct aam_dpop_replay *rp = aam_dpop_replay_new(16);
	struct aam_dpop_check chk = {.htm = "POST",
	                             .htu = "http://gw.test/v1/chat",
	                             .access_token = t.token,
	                             .jkt = X.jkt,
	                             .replay = rp};
	char pj[AAM_JWK_THUMBPRINT_LEN + 1];
	assert_int_equal(aam_dpop_verify(proof, strlen(proof), &chk, pj, NULL), AAM_OK);
	assert_string_equal(pj, X.jkt);
	/* The same proof for another method fails: the TPM/HSM signed this request only. */
	chk.htm = "GET";
	assert_int_equal(aam_dpop_verify(proof, strlen(proof), &chk, NULL, NULL), AAM_E_DENIED);
	aam_dpop_replay_free(rp);
	free(proof);
	aam_agent_token_uninit(&t);
	aam_agent_token_uninit(&t); /* twice is fine */

	/* A refused attestation carries the server's code. */
	struct aam_agent_config c2 = c;
	c2.spiffe_id = ID_OTHER;
	struct aam_agent *b = NULL;
	assert_int_equal(aam_agent_open(&c2, &b, &e), AAM_OK);
	assert_int_equal(aam_agent_attest(b, &t, &e), AAM_E_DENIED);
	assert_string_equal(e.code, "key_mismatch");
	assert_int_equal(e.http_status, 403);
	assert_null(t.token);
	aam_agent_close(b);
	/* An unreachable aam-attest. */
	c2.spiffe_id = ID;
	c2.attest_url = "http://127.0.0.1:1";
	assert_int_equal(aam_agent_open(&c2, &b, &e), AAM_OK);
	assert_int_not_equal(aam_agent_attest(b, &t, &e), AAM_OK);
	assert_string_equal(e.code, "attest_unreachable");
	aam_agent_close(b);
	aam_agent_close(a);

	/* Bad configurations. */
	struct aam_agent_config bad = {.tcti = "swtpm:port=1", .pkcs11_key = X.key_uri};
	assert_int_equal(aam_agent_open(&bad, &b, &e), AAM_E_INVAL);
	assert_string_equal(e.code, "invalid_config");
	bad.pkcs11_key = NULL; /* a TPM without a state folder */
	assert_int_equal(aam_agent_open(&bad, &b, &e), AAM_E_INVAL);
	struct aam_agent_config nolabel = c;
	nolabel.pkcs11_key = X.hsm.token_uri;
	assert_int_not_equal(aam_agent_open(&nolabel, &b, &e), AAM_OK);
	assert_string_equal(e.code, "pkcs11_error");
	assert_non_null(strstr(e.message, "object="));
	struct aam_agent_config nokey = c;
	char uri[STACK_PATH];
	snprintf(uri, sizeof(uri), "%s;object=no-such-key", X.hsm.token_uri);
	nokey.pkcs11_key = uri;
	assert_int_not_equal(aam_agent_open(&nokey, &b, &e), AAM_OK);
	assert_non_null(strstr(e.message, "no-such-key"));
	assert_null(b);
}

/* ---- the sidecar ------------------------------------------------------------------------ */

struct got {
	struct aam_buf body;
	double t_first, t_last; /* seconds since the request started, per chunk */
	size_t chunks;
	struct timespec t0;
	char session[64];
	char ctype[64];
};

static double
since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static size_t
on_chunk(char *p, size_t size, size_t n, void *ud)
{
	struct got *g = ud;
	double t = since(&g->t0);
	if (g->chunks++ == 0)
		g->t_first = t;
	g->t_last = t;
	aam_buf_append(&g->body, p, size * n);
	return size * n;
}

static size_t
on_hdr(char *p, size_t size, size_t n, void *ud)
{
	struct got *g = ud;
	size_t len = size * n;
	if (len > 16 && strncasecmp(p, "mcp-session-id:", 15) == 0)
		snprintf(g->session, sizeof(g->session), "%.*s", (int)strcspn(p + 15 + 1, "\r\n"),
		         p + 16);
	if (len > 14 && strncasecmp(p, "content-type:", 13) == 0)
		snprintf(g->ctype, sizeof(g->ctype), "%.*s", (int)strcspn(p + 14, "\r\n"), p + 14);
	return len;
}

/* A request to the sidecar as an SDK would send it. */
static long
call(const char *method, const char *path, const char *const *hdrs, const char *body, struct got *g)
{
	memset(g, 0, sizeof(*g));
	aam_buf_init(&g->body, 1024 * 1024);
	char url[512];
	snprintf(url, sizeof(url), "%s%s", X.side_url, path);
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	for (size_t i = 0; hdrs != NULL && hdrs[i] != NULL; i++)
		h = curl_slist_append(h, hdrs[i]);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	if (body != NULL) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_chunk);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, g);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_hdr);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, g);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	clock_gettime(CLOCK_MONOTONIC, &g->t0);
	long status = -1;
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return status;
}

static json_t *
health(void)
{
	char url[128], *body = NULL;
	snprintf(url, sizeof(url), "%s/.aam/health", X.side_url);
	long st = stack_http_get(url, &body);
	json_t *j = NULL;
	if (st == 200)
		aam_json_parse(body, strlen(body), NULL, &j, NULL);
	free(body);
	return j;
}

static void
start_sidecar(void)
{
	if (X.side_pid > 0)
		return;
	int port = aam_test_free_port();
	snprintf(X.side_url, sizeof(X.side_url), "http://127.0.0.1:%d", port);
	snprintf(X.side_cfg, sizeof(X.side_cfg), "%s/sidecar.yaml", X.st.v.dir);
	snprintf(X.side_log, sizeof(X.side_log), "%s/sidecar.log", X.st.v.dir);
	char body[4096];
	agent_body(body, sizeof(body), ID, X.gw.url);
	size_t n = strlen(body);
	snprintf(body + n, sizeof(body) - n, "  listen: 127.0.0.1:%d\n", port);
	assert_int_equal(stack_write_agent_config(&X.st, X.side_cfg, body), 0);
	X.side_pid = stack_sidecar_spawn(X.side_cfg, X.side_log);
	assert_true(X.side_pid > 0);
	json_t *h = NULL;
	for (int i = 0; i < 200 && h == NULL; i++) {
		h = health();
		if (h == NULL)
			usleep(50 * 1000);
	}
	if (h == NULL) {
		char *log = aam_test_read_file(X.side_log, NULL);
		print_error("sidecar did not get ready:\n%s\n", log ? log : "");
		free(log);
	}
	assert_non_null(h);
	assert_true(json_is_true(json_object_get(h, "token")));
	assert_string_equal(json_string_value(json_object_get(h, "spiffe_id")), ID);
	json_decref(h);
}

static void
last_record(struct fg_record *r)
{
	size_t n = fg_count(&X.gw);
	assert_true(n > 0);
	assert_true(fg_record(&X.gw, n - 1, r));
}

static void
test_sidecar_forwards(void **state)
{
	(void)state;
	REQUIRE();
	start_sidecar();
	/* What the OpenAI and Anthropic SDKs send: an API key of their own. */
	const char *hdrs[] = {"Authorization: Bearer sk-agent-code-key",
	                      "X-Api-Key: sk-ant-agent-code-key",
	                      "Api-Key: azure-style-key",
	                      "anthropic-version: 2023-06-01",
	                      "Mcp-Session-Id: client-sess-1",
	                      "Content-Type: application/json",
	                      NULL};
	const char *body = "{\"model\":\"reasoning-high\",\"messages\":[]}";
	struct got g;
	size_t before = fg_count(&X.gw);
	long st = call("POST", "/v1/chat/completions?a=b%20c", hdrs, body, &g);
	assert_int_equal(st, 200);
	assert_non_null(strstr((const char *)g.body.data, "\"path\":\"/v1/chat/completions\""));
	assert_string_equal(g.session, "sess-42");
	assert_string_equal(g.ctype, "application/json");
	aam_buf_uninit(&g.body);
	assert_int_equal(fg_count(&X.gw), before + 1);
	struct fg_record r;
	last_record(&r);
	assert_string_equal(r.method, "POST");
	assert_string_equal(r.path, "/v1/chat/completions");
	assert_string_equal(r.query_a, "b c");
	assert_string_equal(r.authorization, "DPoP");
	assert_false(r.x_api_key);
	assert_false(r.api_key);
	assert_true(r.token_ok);
	if (!r.dpop_ok)
		print_error("proof refused: %s\n", r.dpop_why);
	assert_true(r.dpop_ok);
	assert_string_equal(r.jkt, X.jkt);
	assert_string_equal(r.anthropic_version, "2023-06-01");
	assert_string_equal(r.mcp_session, "client-sess-1");
	assert_int_equal(r.body_len, strlen(body));
	assert_string_equal(r.body_head, body);

	/* A GET and a DELETE get proofs for their own method. */
	assert_int_equal(call("GET", "/v1/models", NULL, NULL, &g), 200);
	aam_buf_uninit(&g.body);
	last_record(&r);
	assert_string_equal(r.method, "GET");
	assert_true(r.dpop_ok);
	assert_int_equal(call("DELETE", "/mcp", NULL, NULL, &g), 200);
	aam_buf_uninit(&g.body);
	last_record(&r);
	assert_string_equal(r.method, "DELETE");
	assert_true(r.dpop_ok);

	/* Errors pass through with their status and body. */
	assert_int_equal(call("GET", "/status/404", NULL, NULL, &g), 404);
	assert_non_null(strstr((const char *)g.body.data, "not_found"));
	aam_buf_uninit(&g.body);

	/* Local paths are not forwarded. */
	before = fg_count(&X.gw);
	assert_int_equal(call("GET", "/.aam/nothing", NULL, NULL, &g), 404);
	aam_buf_uninit(&g.body);
	assert_int_equal(fg_count(&X.gw), before);

	/* The sidecar's log holds neither the token nor the agent code's keys. */
	char *log = aam_test_read_file(X.side_log, NULL);
	assert_non_null(log);
	assert_null(strstr(log, "sk-agent-code-key"));
	assert_null(strstr(log, "eyJ"));
	free(log);
}

static void
test_sidecar_nonce(void **state)
{
	(void)state;
	REQUIRE();
	start_sidecar();
	size_t before = fg_count(&X.gw);
	struct got g;
	assert_int_equal(call("POST", "/nonce", NULL, "{}", &g), 200);
	aam_buf_uninit(&g.body);
	/* Two attempts: the challenge, then a proof with the nonce. */
	assert_int_equal(fg_count(&X.gw), before + 2);
	struct fg_record r;
	assert_true(fg_record(&X.gw, before, &r));
	assert_false(r.dpop_ok);
	assert_string_equal(r.dpop_why, "dpop_nonce_missing");
	assert_true(fg_record(&X.gw, before + 1, &r));
	assert_true(r.dpop_ok);
	assert_true(r.dpop_nonce);
}

static void
test_sidecar_streams(void **state)
{
	(void)state;
	REQUIRE();
	start_sidecar();
	const char *hdrs[] = {"Accept: text/event-stream", NULL};
	struct got g;
	assert_int_equal(call("POST", "/stream", hdrs, "{\"stream\":true}", &g), 200);
	assert_string_equal(g.ctype, "text/event-stream");
	const char *b = (const char *)g.body.data;
	assert_non_null(strstr(b, "data: {\"n\":0}\n\n"));
	assert_non_null(strstr(b, "data: {\"n\":2}\n\n"));
	assert_non_null(strstr(b, "data: [DONE]\n\n"));
	/*
	 * The events are 400 ms apart upstream: the first must arrive long
	 * before the last, not all at once when the stream ends.
	 */
	assert_true(g.chunks >= 3);
	assert_true(g.t_last - g.t_first > 0.6);
	aam_buf_uninit(&g.body);
}

static void
test_sidecar_refreshes(void **state)
{
	(void)state;
	REQUIRE();
	start_sidecar();
	struct got g;
	assert_int_equal(call("GET", "/v1/models", NULL, NULL, &g), 200);
	aam_buf_uninit(&g.body);
	struct fg_record r1, r2;
	last_record(&r1);
	/* The token lives 3 s and is renewed at 2 s: wait for a renewal. */
	json_t *h = health();
	assert_non_null(h);
	json_int_t n0 = json_integer_value(json_object_get(h, "refreshes"));
	json_decref(h);
	json_int_t n1 = n0;
	for (int i = 0; i < 100 && n1 <= n0; i++) {
		usleep(100 * 1000);
		h = health();
		if (h != NULL)
			n1 = json_integer_value(json_object_get(h, "refreshes"));
		json_decref(h);
	}
	assert_true(n1 > n0);
	assert_int_equal(call("GET", "/v1/models", NULL, NULL, &g), 200);
	aam_buf_uninit(&g.body);
	last_record(&r2);
	assert_true(r2.token_ok);
	assert_true(r2.dpop_ok);
	assert_string_not_equal(r1.jti, r2.jti);
	assert_string_equal(r1.jkt, r2.jkt);

	/* SIGTERM: a clean exit. */
	assert_int_equal(stack_sidecar_stop(X.side_pid, X.side_log), 0);
	X.side_pid = -1;
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_identity_and_register),
	        cmocka_unit_test(test_token),
	        cmocka_unit_test(test_other_key_refused),
	        cmocka_unit_test(test_library_dpop),
	        cmocka_unit_test(test_sidecar_forwards),
	        cmocka_unit_test(test_sidecar_nonce),
	        cmocka_unit_test(test_sidecar_streams),
	        cmocka_unit_test(test_sidecar_refreshes),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
