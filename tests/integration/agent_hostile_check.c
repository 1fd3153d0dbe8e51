/*
 * aam-agent against a hostile or broken aam-attest and gateway, in
 * process, through the public API (include/aam/agent.h):
 *   - the PKCS#11 proof it sends is exactly the documented one (the fake
 *     server verifies it with the JWK the agent sent);
 *   - tokens not bound to its key, for another identity, with a response
 *     "jkt" that disagrees, malformed, oversized, without expiry, or
 *     refused with 429 are all rejected with their own error code;
 *   - TPM (swtpm): a PCR selection out of range, a selection of another
 *     bank and a credential that does not unmarshal are refused, and every
 *     failure leaves no transient object in the TPM;
 *   - the sidecar: no token yet gives 503 token_unavailable, jittered
 *     retries obtain one once aam-attest recovers, an unreachable gateway
 *     gives 502, an oversized body 413.
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
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_tctildr.h>

#include "aam/agent.h"
#include "aam/err.h"
#include "common/b64.h"
#include "common/http.h"
#include "common/jose.h"
#include "common/json.h"
#include "tests/integration/agent_stack.h"
#include "tests/lib/softhsm.h"
#include "tests/lib/swtpm.h"
#include "tests/lib/testutil.h"

#define ID  "spiffe://prod/agent/hostile"
#define AUD "http://gw.test"

enum mode {
	M_OK = 0,
	M_WRONG_JKT,  /* token bound to another key */
	M_WRONG_SUB,  /* token for another identity */
	M_RESP_JKT,   /* the response's "jkt" is another key's */
	M_GARBAGE,    /* 200 with a body that is not JSON */
	M_HUGE,       /* 200 with a 300 KiB body */
	M_NO_EXPIRY,  /* no expires_in */
	M_BAD_TOKEN,  /* "token" is not a JWS */
	M_RATE,       /* 429 on the challenge */
	M_REFUSE,     /* 403 registration_revoked */
	M_TPM_PCR_24, /* pcr_selection names PCR 24 */
	M_TPM_SHA1,   /* pcr_selection of another bank */
	M_TPM_BLOB,   /* credential_blob that does not unmarshal */
};

struct fake_attest {
	struct aam_http_server *srv;
	char url[64];
	EVP_PKEY *issuer;
	pthread_mutex_t mu;
	enum mode mode;
	int proofs_ok, proofs_bad, tpm_begins;
};

static struct {
	struct fake_attest fa;
	struct aam_test_softhsm hsm;
	bool hsm_up;
	char key_uri[STACK_PATH];
	char jkt[48];
	struct aam_test_swtpm tpm;
	bool tpm_up;
	char *dir;
} X;

static enum mode
cur_mode(void)
{
	pthread_mutex_lock(&X.fa.mu);
	enum mode m = X.fa.mode;
	pthread_mutex_unlock(&X.fa.mu);
	return m;
}

static void
set_mode(enum mode m)
{
	pthread_mutex_lock(&X.fa.mu);
	X.fa.mode = m;
	pthread_mutex_unlock(&X.fa.mu);
}

/* ---- the fake aam-attest ------------------------------------------------------------ */

static int
fa_challenge(void *ctx, const struct aam_http_request *req, struct aam_http_response *resp)
{
	(void)ctx;
	(void)req;
	if (cur_mode() == M_RATE) {
		aam_http_response_header(resp, "Retry-After", "6");
		return aam_http_respond_error(resp, 429, "rate_limited", "Too many failures.");
	}
	json_t *j = json_pack("{s:s,s:i}", "nonce", "bm9uY2Utbm9uY2Utbm9uY2Utbm9uY2Utbm9uY2UtMTI",
	                      "expires_in", 60);
	int rc = aam_http_respond_json(resp, 200, j);
	json_decref(j);
	return rc;
}

/* A token with SUB and JKT signed by the fake issuer. */
static char *
fa_token(const char *sub, const char *jkt)
{
	struct aam_jose_signer s;
	aam_jose_signer_pkey(&s, X.fa.issuer, "fake-kid");
	int64_t now = (int64_t)time(NULL);
	json_t *c = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:s,s:{s:s}}", "iss", "https://fake", "sub",
	                      sub, "aud", AUD, "iat", (json_int_t)now, "nbf", (json_int_t)now,
	                      "exp", (json_int_t)(now + 300), "jti", "fake-jti", "cnf", "jkt", jkt);
	char *tok = NULL;
	aam_jose_sign(&s, "JWT", NULL, c, &tok);
	json_decref(c);
	return tok;
}

static int
fa_respond_token(struct aam_http_response *resp, const char *jkt)
{
	enum mode m = cur_mode();
	if (m == M_GARBAGE) {
		aam_buf_append_str(&resp->body, "this is not json");
		resp->status = 200;
		return AAM_OK;
	}
	if (m == M_HUGE) {
		aam_buf_append_str(&resp->body, "{\"pad\":\"");
		for (int i = 0; i < 300 * 1024; i++)
			aam_buf_append_byte(&resp->body, 'A');
		aam_buf_append_str(&resp->body, "\"}");
		resp->status = 200;
		return AAM_OK;
	}
	if (m == M_REFUSE)
		return aam_http_respond_error(resp, 403, "registration_revoked", "Revoked.");
	const char *other = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
	char *tok = fa_token(m == M_WRONG_SUB ? "spiffe://prod/agent/else" : ID,
	                     m == M_WRONG_JKT ? other : jkt);
	json_t *j = json_pack("{s:s,s:s,s:i,s:s,s:s}", "token", m == M_BAD_TOKEN ? "a.b.c" : tok,
	                      "token_type", "DPoP", "expires_in", 4, "spiffe_id", ID, "jkt",
	                      m == M_RESP_JKT ? other : jkt);
	if (m == M_NO_EXPIRY)
		json_object_del(j, "expires_in");
	int rc = aam_http_respond_json(resp, 200, j);
	json_decref(j);
	free(tok);
	return rc;
}

static int
fa_pkcs11(void *ctx, const struct aam_http_request *req, struct aam_http_response *resp)
{
	(void)ctx;
	json_t *b = NULL;
	if (aam_json_parse(req->body, req->body_len, NULL, &b, NULL) != AAM_OK)
		return aam_http_respond_error(resp, 400, "invalid_request", "Bad JSON.");
	/* The documented proof: ES256 over the context string, with the JWK sent. */
	struct aam_jwk jwk;
	bool ok = false;
	const char *nonce = json_string_value(json_object_get(b, "nonce"));
	const char *sig = json_string_value(json_object_get(b, "signature"));
	if (nonce != NULL && sig != NULL &&
	    aam_jwk_from_json(json_object_get(b, "jwk"), &jwk, NULL) == AAM_OK) {
		char msg[512];
		int n = snprintf(msg, sizeof(msg), "aam-attest-pkcs11\n%s\n%s\n%s", nonce,
		                 json_string_value(json_object_get(b, "spiffe_id")),
		                 json_string_value(json_object_get(b, "audience")));
		uint8_t rs[64], der[80], d[32];
		size_t rl = 0, dl = 0;
		EVP_Digest(msg, (size_t)n, d, NULL, EVP_sha256(), NULL);
		if (aam_b64_decode(sig, strlen(sig), rs, sizeof(rs), &rl, AAM_B64_URL) == AAM_OK &&
		    rl == 64 && aam_jose_ecdsa_rs_to_der(rs, der, sizeof(der), &dl) == AAM_OK) {
			EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(jwk.pkey, NULL);
			ok = EVP_PKEY_verify_init(pc) == 1 &&
			     EVP_PKEY_verify(pc, der, dl, d, 32) == 1;
			EVP_PKEY_CTX_free(pc);
		}
	}
	pthread_mutex_lock(&X.fa.mu);
	if (ok)
		X.fa.proofs_ok++;
	else
		X.fa.proofs_bad++;
	pthread_mutex_unlock(&X.fa.mu);
	json_decref(b);
	if (!ok)
		return aam_http_respond_error(resp, 403, "signature_invalid", "Bad proof.");
	int rc = fa_respond_token(resp, jwk.jkt);
	aam_jwk_uninit(&jwk);
	return rc;
}

static int
fa_tpm(void *ctx, const struct aam_http_request *req, struct aam_http_response *resp)
{
	(void)ctx;
	json_t *b = NULL;
	if (aam_json_parse(req->body, req->body_len, NULL, &b, NULL) != AAM_OK)
		return aam_http_respond_error(resp, 400, "invalid_request", "Bad JSON.");
	const char *step = json_string_value(json_object_get(b, "step"));
	bool begin = step != NULL && strcmp(step, "begin") == 0 &&
	             json_string_value(json_object_get(b, "certify_info")) != NULL;
	json_decref(b);
	if (!begin)
		return aam_http_respond_error(resp, 400, "invalid_request", "Only begin here.");
	if (cur_mode() == M_REFUSE)
		return aam_http_respond_error(resp, 403, "ek_untrusted", "Unknown EK CA.");
	pthread_mutex_lock(&X.fa.mu);
	X.fa.tpm_begins++;
	pthread_mutex_unlock(&X.fa.mu);
	enum mode m = cur_mode();
	json_t *sel = m == M_TPM_SHA1     ? json_pack("{s:[i]}", "sha1", 0)
	              : m == M_TPM_PCR_24 ? json_pack("{s:[i,i]}", "sha256", 0, 24)
	                                  : json_pack("{s:[i]}", "sha256", 0);
	/* A well-formed but empty TPM2B pair, or junk. */
	const char *blob = m == M_TPM_BLOB ? "eHh4" : "AAA";
	json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:o}", "session", "s1", "credential_blob", blob,
	                      "encrypted_secret", "AAA", "quote_nonce",
	                      "cXVvdGUtcXVvdGUtcXVvdGUtcXVvdGUtcXVvdGUtMTI", "pcr_selection", sel);
	int rc = aam_http_respond_json(resp, 200, j);
	json_decref(j);
	return rc;
}

static const struct aam_http_route FA_ROUTES[] = {
        {"POST", "/v1/attest/challenge", fa_challenge},
        {"POST", "/v1/attest/pkcs11", fa_pkcs11},
        {"POST", "/v1/attest/tpm", fa_tpm},
};

/* ---- fixtures ------------------------------------------------------------------------- */

static int
group_setup(void **state)
{
	(void)state;
	memset(&X, 0, sizeof(X));
	curl_global_init(CURL_GLOBAL_DEFAULT);
	pthread_mutex_init(&X.fa.mu, NULL);
	X.fa.issuer = EVP_EC_gen("P-256");
	struct aam_http_config c = {.host = "127.0.0.1",
	                            .routes = FA_ROUTES,
	                            .nroutes = 3,
	                            .ctx = &X.fa,
	                            .name = "fake-attest",
	                            .mode = AAM_HTTP_MODE_THREAD_PER_CONN};
	if (X.fa.issuer == NULL || aam_http_server_start(&c, &X.fa.srv) != AAM_OK)
		return -1;
	snprintf(X.fa.url, sizeof(X.fa.url), "http://127.0.0.1:%u",
	         (unsigned)aam_http_server_port(X.fa.srv));
	X.dir = aam_test_mkdtemp("aam-agent-hostile");
	if (X.dir == NULL)
		return -1;
	if (aam_test_softhsm_available()) {
		if (aam_test_softhsm_start(&X.hsm, "aam-agent-hostile") != AAM_OK)
			return -1;
		X.hsm_up = true;
		if (stack_p11_make_key(&X.hsm, "k", X.jkt) != 0)
			return -1;
		snprintf(X.key_uri, sizeof(X.key_uri), "%s;object=k", X.hsm.token_uri);
	}
	if (aam_test_swtpm_available()) {
		if (aam_test_swtpm_start(&X.tpm) != AAM_OK)
			return -1;
		X.tpm_up = true;
	}
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	aam_http_server_stop(X.fa.srv);
	EVP_PKEY_free(X.fa.issuer);
	pthread_mutex_destroy(&X.fa.mu);
	if (X.hsm_up)
		aam_test_softhsm_stop(&X.hsm);
	if (X.tpm_up)
		aam_test_swtpm_stop(&X.tpm);
	if (X.dir != NULL) {
		aam_test_rmtree(X.dir);
		free(X.dir);
	}
	curl_global_cleanup();
	return 0;
}

static struct aam_agent *
open_p11(const char *attest_url)
{
	struct aam_agent_config c = {.pkcs11_key = X.key_uri,
	                             .pkcs11_module = X.hsm.module_path,
	                             .pin_file = X.hsm.user_pin_file,
	                             .attest_url = attest_url,
	                             .spiffe_id = ID,
	                             .audience = AUD,
	                             .timeout_ms = 5000};
	struct aam_agent *a = NULL;
	struct aam_agent_error e;
	assert_int_equal(aam_agent_open(&c, &a, &e), AAM_OK);
	return a;
}

#define REQUIRE_HSM()                                                                              \
	do {                                                                                       \
		AAM_TEST_SOFTHSM_REQUIRE();                                                        \
		if (!X.hsm_up)                                                                     \
			skip();                                                                    \
	} while (0)

/* ---- PKCS#11 answers ------------------------------------------------------------------- */

static void
expect(struct aam_agent *a, enum mode m, int rc, const char *code)
{
	set_mode(m);
	struct aam_agent_token t;
	struct aam_agent_error e;
	int got = aam_agent_attest(a, &t, &e);
	if (got != rc || strcmp(e.code, code) != 0)
		print_error("mode %d: got %d/%s (%s), want %d/%s\n", (int)m, got, e.code, e.message,
		            rc, code);
	assert_int_equal(got, rc);
	assert_string_equal(e.code, code);
	assert_null(t.token);
	assert_null(t.spiffe_id);
}

static void
test_pkcs11_answers(void **state)
{
	(void)state;
	REQUIRE_HSM();
	struct aam_agent *a = open_p11(X.fa.url);
	set_mode(M_OK);
	struct aam_agent_token t;
	struct aam_agent_error e;
	assert_int_equal(aam_agent_attest(a, &t, &e), AAM_OK);
	assert_string_equal(t.jkt, X.jkt);
	assert_int_equal(t.expires_in, 4);
	aam_agent_token_uninit(&t);
	assert_int_equal(X.fa.proofs_ok, 1);
	assert_int_equal(X.fa.proofs_bad, 0);

	expect(a, M_WRONG_JKT, AAM_E_PROTO, "token_not_bound");
	expect(a, M_RESP_JKT, AAM_E_PROTO, "token_not_bound");
	expect(a, M_WRONG_SUB, AAM_E_PROTO, "attest_protocol");
	expect(a, M_GARBAGE, AAM_E_PROTO, "attest_protocol");
	expect(a, M_NO_EXPIRY, AAM_E_PROTO, "attest_protocol");
	expect(a, M_BAD_TOKEN, AAM_E_PROTO, "attest_protocol");
	expect(a, M_HUGE, AAM_E_TOOBIG, "attest_unreachable");
	expect(a, M_RATE, AAM_E_BUSY, "rate_limited");
	expect(a, M_REFUSE, AAM_E_DENIED, "registration_revoked");
	/* Every proof the agent sent was the documented one. */
	assert_int_equal(X.fa.proofs_bad, 0);
	aam_agent_close(a);
}

/* ---- TPM answers ----------------------------------------------------------------------- */

static uint32_t
transient_objects(void)
{
	TSS2_TCTI_CONTEXT *tcti = NULL;
	ESYS_CONTEXT *esys = NULL;
	assert_int_equal(Tss2_TctiLdr_Initialize(X.tpm.tcti, &tcti), TSS2_RC_SUCCESS);
	assert_int_equal(Esys_Initialize(&esys, tcti, NULL), TSS2_RC_SUCCESS);
	TPMS_CAPABILITY_DATA *cap = NULL;
	TPMI_YES_NO more = 0;
	assert_int_equal(Esys_GetCapability(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
	                                    TPM2_CAP_HANDLES, 0x80000000u, 16, &more, &cap),
	                 TSS2_RC_SUCCESS);
	uint32_t n = cap->data.handles.count;
	Esys_Free(cap);
	Esys_Finalize(&esys);
	Tss2_TctiLdr_Finalize(&tcti);
	return n;
}

static void
test_tpm_answers(void **state)
{
	(void)state;
	AAM_TEST_SWTPM_REQUIRE();
	assert_true(X.tpm_up);
	char sd[STACK_PATH];
	snprintf(sd, sizeof(sd), "%s/tpm-state", X.dir);
	struct aam_agent_config c = {.tcti = X.tpm.tcti,
	                             .state_dir = sd,
	                             .attest_url = X.fa.url,
	                             .spiffe_id = ID,
	                             .audience = AUD,
	                             .timeout_ms = 5000};
	struct aam_agent *a = NULL;
	struct aam_agent_error e;
	assert_int_equal(aam_agent_open(&c, &a, &e), AAM_OK);
	/* The TPM's EK certificate, from NV. */
	uint8_t *der = NULL;
	size_t dl = 0;
	assert_int_equal(aam_agent_ek_cert(a, &der, &dl, &e), AAM_OK);
	assert_true(dl > 300 && der[0] == 0x30);
	free(der);
	/* Only the signing key is loaded while the handle is open. */
	aam_agent_close(a);
	assert_int_equal(transient_objects(), 0);
	assert_int_equal(aam_agent_open(&c, &a, &e), AAM_OK);

	int begins = X.fa.tpm_begins;
	/* Refused on begin: nothing stays loaded. */
	expect(a, M_REFUSE, AAM_E_DENIED, "ek_untrusted");
	expect(a, M_TPM_PCR_24, AAM_E_PROTO, "attest_protocol");
	expect(a, M_TPM_SHA1, AAM_E_PROTO, "attest_protocol");
	expect(a, M_TPM_BLOB, AAM_E_PARSE, "tpm_error");
	/* An empty credential unmarshals but the TPM refuses to activate it. */
	expect(a, M_OK, AAM_E_HSM, "tpm_error");
	assert_int_equal(X.fa.tpm_begins, begins + 4);
	aam_agent_close(a);
	assert_int_equal(transient_objects(), 0);
}

/* ---- the sidecar ---------------------------------------------------------------------- */

static long
post(uint16_t port, const char *path, const char *body, size_t len, char **resp)
{
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", (unsigned)port, path);
	CURL *c = curl_easy_init();
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	FILE *f = tmpfile();
	curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
	long st = -1;
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
	curl_easy_cleanup(c);
	long n = ftell(f);
	*resp = calloc(1, (size_t)(n > 0 ? n : 0) + 1);
	rewind(f);
	if (n > 0 && fread(*resp, 1, (size_t)n, f) != (size_t)n)
		(*resp)[0] = '\0';
	fclose(f);
	return st;
}

static void
test_sidecar_failures(void **state)
{
	(void)state;
	REQUIRE_HSM();
	struct aam_agent *a = open_p11(X.fa.url);
	/* aam-attest refuses at start; nothing listens on the gateway port. */
	set_mode(M_REFUSE);
	int dead = aam_test_free_port();
	char gw[64];
	snprintf(gw, sizeof(gw), "http://127.0.0.1:%d", dead);
	struct aam_agent_sidecar_config sc = {.gateway_url = gw,
	                                      .max_body = 1024,
	                                      .backoff_min_ms = 50,
	                                      .backoff_max_ms = 200,
	                                      .connect_timeout_ms = 2000};
	struct aam_agent_sidecar *s = NULL;
	struct aam_agent_error e;
	assert_int_equal(aam_agent_sidecar_start(a, &sc, &s, &e), AAM_OK);
	uint16_t port = aam_agent_sidecar_port(s);
	assert_true(port > 0);
	assert_int_equal(aam_agent_sidecar_refreshes(s), 0);
	char *r = NULL;
	assert_int_equal(post(port, "/v1/chat/completions", "{}", 2, &r), 503);
	assert_non_null(strstr(r, "token_unavailable"));
	free(r);
	char url[128], *h = NULL;
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/.aam/health", (unsigned)port);
	assert_int_equal(stack_http_get(url, &h), 503);
	assert_non_null(strstr(h, "no_token"));
	free(h);

	/* aam-attest recovers: a jittered retry gets a token within a few hundred ms. */
	set_mode(M_OK);
	for (int i = 0; i < 100 && aam_agent_sidecar_refreshes(s) == 0; i++)
		usleep(20 * 1000);
	assert_int_equal(aam_agent_sidecar_refreshes(s), 1);
	assert_int_equal(stack_http_get(url, NULL), 200);

	/* The gateway is unreachable. */
	assert_int_equal(post(port, "/v1/chat/completions", "{}", 2, &r), 502);
	assert_non_null(strstr(r, "gateway_unreachable"));
	free(r);
	/* A body over max_body is refused before anything is forwarded. */
	char big[2048];
	memset(big, 'x', sizeof(big));
	assert_int_equal(post(port, "/v1/chat/completions", big, sizeof(big), &r), 413);
	assert_non_null(strstr(r, "payload_too_large"));
	free(r);

	/* The 4 s token is renewed at about 2.7 s. */
	for (int i = 0; i < 250 && aam_agent_sidecar_refreshes(s) < 2; i++)
		usleep(20 * 1000);
	assert_true(aam_agent_sidecar_refreshes(s) >= 2);
	aam_agent_sidecar_stop(s);
	aam_agent_sidecar_stop(NULL);
	aam_agent_close(a);
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_pkcs11_answers),
	        cmocka_unit_test(test_tpm_answers),
	        cmocka_unit_test(test_sidecar_failures),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
