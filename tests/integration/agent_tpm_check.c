/*
 * aam-agent with its key in a TPM (swtpm, EK certificate from swtpm's
 * local CA), against the real aam-vault and aam-attest daemons:
 *   - `aam-agent identity --ek-cert` writes the EK certificate read from NV
 *     and prints its SHA-256; `aamctl workload register --ek-pub` takes it;
 *   - `aam-agent token` runs the whole TPM protocol through tss2 ESYS
 *     (certify, credential activation with the EK policy session, quote)
 *     and prints a token that verifies against the JWKS and is bound to
 *     the TPM key: cnf.jkt is the thumbprint of key.pub in the state folder;
 *   - a restart reuses the same key; a PCR policy that does not hold is
 *     refused with pcr_mismatch; a revoked registration with
 *     registration_revoked;
 *   - the sidecar's DPoP proofs are signed by the TPM key (TPM2_Sign);
 *   - no transient object is left in the TPM (swtpm has no resource
 *     manager, so a leak would exhaust its three slots).
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
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_tctildr.h>

#include "aam/agent.h"
#include "aam/err.h"
#include "common/jose.h"
#include "common/json.h"
#include "tests/integration/agent_stack.h"
#include "tests/lib/swtpm.h"
#include "tests/lib/testutil.h"

#define ID     "spiffe://prod/agent/tpm-analyst"
#define ID_PCR "spiffe://prod/agent/tpm-pcr-policy"

struct fx {
	struct aam_test_swtpm tpm;
	bool tpm_up;
	struct agent_stack st;
	bool up;
	struct fake_gw gw;
	bool gw_up;
	char state[STACK_PATH], cfg[STACK_PATH], cfg_pcr[STACK_PATH];
	char ek_path[STACK_PATH];
	char jkt[48]; /* computed here from state/key.pub */
};

static struct fx X;

static void
agent_body(char *out, size_t len, const char *id, const char *extra)
{
	snprintf(out, len,
	         "  gateway_url: %s\n  audience: %s\n  spiffe_id: %s\n  tcti: \"%s\"\n"
	         "  state_dir: %s\n%s",
	         X.gw.url, X.gw.url, id, X.tpm.tcti, X.state, extra != NULL ? extra : "");
}

static int
group_setup(void **state)
{
	(void)state;
	memset(&X, 0, sizeof(X));
	const char *missing = NULL;
	if (!stack_available(&missing) || !aam_test_swtpm_available())
		return 0;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (aam_test_swtpm_start(&X.tpm) != AAM_OK)
		return -1;
	X.tpm_up = true;
	const char *cas[] = {X.tpm.root_cert_path, X.tpm.ca_cert_path};
	if (stack_start(&X.st, cas, 2) != 0)
		return -1;
	X.up = true;
	if (fg_start(&X.gw, &X.st, NULL) != 0)
		return -1;
	X.gw_up = true;
	snprintf(X.state, sizeof(X.state), "%s/agent-state", X.st.v.dir);
	snprintf(X.ek_path, sizeof(X.ek_path), "%s/ek.der", X.st.v.dir);
	char body[4096];
	snprintf(X.cfg, sizeof(X.cfg), "%s/agent.yaml", X.st.v.dir);
	agent_body(body, sizeof(body), ID, NULL);
	if (stack_write_agent_config(&X.st, X.cfg, body) != 0)
		return -1;
	snprintf(X.cfg_pcr, sizeof(X.cfg_pcr), "%s/agent-pcr.yaml", X.st.v.dir);
	agent_body(body, sizeof(body), ID_PCR, NULL);
	return stack_write_agent_config(&X.st, X.cfg_pcr, body);
}

static int
group_teardown(void **state)
{
	(void)state;
	if (X.gw_up)
		fg_stop(&X.gw);
	if (X.up) {
		stack_stop(&X.st);
		curl_global_cleanup();
	}
	if (X.tpm_up)
		aam_test_swtpm_stop(&X.tpm);
	return 0;
}

#define REQUIRE()                                                                                  \
	do {                                                                                       \
		const char *m_ = NULL;                                                             \
		AAM_TEST_SWTPM_REQUIRE();                                                          \
		if (!stack_available(&m_)) {                                                       \
			print_message("[  SKIP    ] %s not available\n", m_);                      \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

/* The thumbprint of the key in STATE/key.pub (a TPM2B_PUBLIC), computed independently. */
static void
key_pub_jkt(char out[48])
{
	char p[STACK_PATH + 16];
	snprintf(p, sizeof(p), "%s/key.pub", X.state);
	size_t n = 0;
	uint8_t *b = (uint8_t *)aam_test_read_file(p, &n);
	assert_non_null(b);
	TPM2B_PUBLIC pub;
	size_t off = 0;
	memset(&pub, 0, sizeof(pub));
	assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Unmarshal(b, n, &off, &pub), TSS2_RC_SUCCESS);
	assert_int_equal(off, n);
	free(b);
	const TPMT_PUBLIC *a = &pub.publicArea;
	assert_int_equal(a->type, TPM2_ALG_ECC);
	assert_int_equal(a->parameters.eccDetail.curveID, TPM2_ECC_NIST_P256);
	/* The attributes the server demands: sign-only, never leaves the TPM. */
	assert_true(a->objectAttributes & TPMA_OBJECT_FIXEDTPM);
	assert_true(a->objectAttributes & TPMA_OBJECT_FIXEDPARENT);
	assert_true(a->objectAttributes & TPMA_OBJECT_SENSITIVEDATAORIGIN);
	assert_true(a->objectAttributes & TPMA_OBJECT_SIGN_ENCRYPT);
	assert_false(a->objectAttributes & TPMA_OBJECT_DECRYPT);
	uint8_t x[32] = {0}, y[32] = {0};
	memcpy(x + 32 - a->unique.ecc.x.size, a->unique.ecc.x.buffer, a->unique.ecc.x.size);
	memcpy(y + 32 - a->unique.ecc.y.size, a->unique.ecc.y.buffer, a->unique.ecc.y.size);
	struct aam_jwk jwk;
	assert_int_equal(aam_jwk_from_xy(x, y, NULL, &jwk), AAM_OK);
	snprintf(out, 48, "%s", jwk.jkt);
	aam_jwk_uninit(&jwk);
}

static void
ek_spki_hex(const char *path, char hex[65])
{
	size_t n = 0;
	uint8_t *der = (uint8_t *)aam_test_read_file(path, &n);
	assert_non_null(der);
	const unsigned char *q = der;
	X509 *x = d2i_X509(NULL, &q, (long)n);
	assert_non_null(x);
	/* The file holds the certificate exactly, without NV padding. */
	assert_true(q == der + n);
	unsigned char *spki = NULL;
	int l = i2d_PUBKEY(X509_get0_pubkey(x), &spki);
	uint8_t d[32];
	EVP_Digest(spki, (size_t)l, d, NULL, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
	OPENSSL_free(spki);
	X509_free(x);
	free(der);
}

static int
ctl(const char *a1, const char *a2, const char *a3, const char *a4, const char *a5, const char *a6)
{
	char *out = NULL, *err = NULL;
	int rc = stack_aamctl(&X.st, &out, &err, "workload", a1, a2, a3, a4, a5, a6, NULL);
	if (rc != 0)
		fprintf(stderr, "aamctl: %s%s\n", out ? out : "", err ? err : "");
	free(out);
	free(err);
	return rc;
}

static int
register_tpm(const char *id, const char *pcr_arg, const char *pcr_val)
{
	char *out = NULL, *err = NULL;
	int rc = stack_aamctl(&X.st, &out, &err, "workload", "register", id, "--method", "tpm",
	                      "--owner", "bob@example.com", "--team", "risk", "--env", "prod",
	                      "--deployment", "tpm-v1", "--audience", X.gw.url, "--ek-pub",
	                      X.ek_path, "--ttl", "4s", pcr_arg, pcr_val, NULL);
	if (rc != 0)
		fprintf(stderr, "aamctl workload register: %s%s\n", out ? out : "", err ? err : "");
	free(out);
	free(err);
	return rc;
}

/* The number of transient objects loaded in the TPM right now. */
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

/* ---- tests ---------------------------------------------------------------------------- */

static void
test_identity_and_register(void **state)
{
	(void)state;
	REQUIRE();
	char *out = NULL, *err = NULL;
	int rc = stack_agent(X.cfg, &out, &err, "identity", "--ek-cert", X.ek_path, NULL);
	if (rc != 0)
		print_error("aam-agent identity: %s\n", err);
	assert_int_equal(rc, 0);
	json_t *j = NULL;
	assert_int_equal(aam_json_parse(out, strlen(out), NULL, &j, NULL), AAM_OK);
	assert_string_equal(json_string_value(json_object_get(j, "method")), "tpm");
	/* The key was created on first use and its blobs written. */
	key_pub_jkt(X.jkt);
	assert_string_equal(json_string_value(json_object_get(j, "jkt")), X.jkt);
	char hex[65];
	ek_spki_hex(X.ek_path, hex);
	assert_string_equal(json_string_value(json_object_get(j, "ek_pub_sha256")), hex);
	json_decref(j);
	free(out);
	free(err);

	assert_int_equal(register_tpm(ID, "--pcrs", "0,1,7"), 0);
	/* A policy no TPM here satisfies: PCR 0 must be all ones. */
	assert_int_equal(
	        register_tpm(ID_PCR, "--pcr",
	                     "0=ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
	        0);
	assert_int_equal(transient_objects(), 0);
}

static char *
token_ok(void)
{
	char *out = NULL, *err = NULL;
	int rc = stack_agent(X.cfg, &out, &err, "token", NULL);
	if (rc != 0)
		print_error("aam-agent token: %s\n", err);
	assert_int_equal(rc, 0);
	free(err);
	size_t n = strlen(out);
	assert_true(n > 10 && out[n - 1] == '\n');
	out[n - 1] = '\0';
	return out;
}

static void
test_token(void **state)
{
	(void)state;
	REQUIRE();
	char *tok = token_ok();
	json_t *c = stack_verify_token(&X.st, tok, X.gw.url);
	assert_non_null(c);
	assert_string_equal(json_string_value(json_object_get(c, "sub")), ID);
	const char *jkt = NULL;
	assert_int_equal(aam_jose_claims_cnf_jkt(c, &jkt), AAM_OK);
	assert_string_equal(jkt, X.jkt);
	json_t *aam = json_object_get(c, "aam");
	assert_string_equal(json_string_value(json_object_get(aam, "method")), "tpm");
	assert_string_equal(json_string_value(json_object_get(aam, "owner")), "bob@example.com");
	char jti1[64];
	snprintf(jti1, sizeof(jti1), "%s", json_string_value(json_object_get(c, "jti")));
	json_decref(c);
	free(tok);
	assert_int_equal(transient_objects(), 0);

	/* A restart: the same key (the registration's token binds it), a new token. */
	tok = token_ok();
	c = stack_verify_token(&X.st, tok, X.gw.url);
	assert_non_null(c);
	assert_int_equal(aam_jose_claims_cnf_jkt(c, &jkt), AAM_OK);
	assert_string_equal(jkt, X.jkt);
	assert_string_not_equal(json_string_value(json_object_get(c, "jti")), jti1);
	json_decref(c);
	free(tok);
	char again[48];
	key_pub_jkt(again);
	assert_string_equal(again, X.jkt);
	assert_int_equal(transient_objects(), 0);
}

static void
test_pcr_policy_refused(void **state)
{
	(void)state;
	REQUIRE();
	char *out = NULL, *err = NULL;
	assert_int_equal(stack_agent(X.cfg_pcr, &out, &err, "token", NULL), 1);
	assert_string_equal(out, "");
	assert_non_null(strstr(err, "pcr_mismatch"));
	free(out);
	free(err);
	assert_int_equal(transient_objects(), 0);
}

static void
test_library_sign(void **state)
{
	(void)state;
	REQUIRE();
	struct aam_agent_config c = {.tcti = X.tpm.tcti,
	                             .state_dir = X.state,
	                             .attest_url = X.st.attest_url,
	                             .spiffe_id = ID,
	                             .audience = X.gw.url};
	struct aam_agent *a = NULL;
	struct aam_agent_error e;
	assert_int_equal(aam_agent_open(&c, &a, &e), AAM_OK);
	assert_string_equal(aam_agent_method(a), "tpm");
	assert_string_equal(aam_agent_jkt(a), X.jkt);
	/* TPM2_Sign signatures verify with the public key from key.pub. */
	uint8_t d[32], sig[64], der[80];
	for (int i = 0; i < 32; i++)
		d[i] = (uint8_t)(i * 7 + 1);
	assert_int_equal(aam_agent_sign(a, d, sig), AAM_OK);
	char *jwk_text = NULL;
	assert_int_equal(aam_agent_jwk_json(a, &jwk_text), AAM_OK);
	struct aam_jwk jwk;
	assert_int_equal(aam_jwk_parse(jwk_text, strlen(jwk_text), &jwk, NULL), AAM_OK);
	assert_string_equal(jwk.jkt, X.jkt);
	size_t dl = 0;
	assert_int_equal(aam_jose_ecdsa_rs_to_der(sig, der, sizeof(der), &dl), AAM_OK);
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(jwk.pkey, NULL);
	assert_int_equal(EVP_PKEY_verify_init(pc), 1);
	assert_int_equal(EVP_PKEY_verify(pc, der, dl, d, 32), 1);
	d[0] ^= 1;
	assert_int_not_equal(EVP_PKEY_verify(pc, der, dl, d, 32), 1);
	EVP_PKEY_CTX_free(pc);
	aam_jwk_uninit(&jwk);
	free(jwk_text);
	/* The whole protocol in-process, twice on one handle: nothing is left loaded. */
	for (int i = 0; i < 2; i++) {
		struct aam_agent_token t;
		assert_int_equal(aam_agent_attest(a, &t, &e), AAM_OK);
		assert_string_equal(t.jkt, X.jkt);
		assert_int_equal(t.expires_in, 4);
		aam_agent_token_uninit(&t);
	}
	aam_agent_close(a);
	assert_int_equal(transient_objects(), 0);

	/* Half a key set in the state folder is refused, not silently replaced. */
	char dir[STACK_PATH], p[STACK_PATH + 16], q[STACK_PATH + 16];
	snprintf(dir, sizeof(dir), "%s/half-state", X.st.v.dir);
	struct aam_agent_config h = c;
	h.state_dir = dir;
	assert_int_equal(aam_agent_open(&h, &a, &e), AAM_OK);
	aam_agent_close(a);
	snprintf(p, sizeof(p), "%s/ak.priv", dir);
	assert_int_equal(unlink(p), 0);
	assert_int_not_equal(aam_agent_open(&h, &a, &e), AAM_OK);
	assert_string_equal(e.code, "tpm_error");
	assert_non_null(strstr(e.message, "only some"));
	/* A blob that is not a TPM structure. */
	snprintf(q, sizeof(q), "%s/ak.priv", dir);
	assert_int_equal(aam_test_write_file(q, "junk", 4, 0600), 0);
	assert_int_not_equal(aam_agent_open(&h, &a, &e), AAM_OK);
	assert_null(a);
	assert_int_equal(transient_objects(), 0);
}

static void
test_sidecar_tpm(void **state)
{
	(void)state;
	REQUIRE();
	int port = aam_test_free_port();
	char cfg[STACK_PATH], log[STACK_PATH], body[4096], extra[64], url[128];
	snprintf(extra, sizeof(extra), "  listen: 127.0.0.1:%d\n", port);
	agent_body(body, sizeof(body), ID, extra);
	snprintf(cfg, sizeof(cfg), "%s/sidecar-tpm.yaml", X.st.v.dir);
	snprintf(log, sizeof(log), "%s/sidecar-tpm.log", X.st.v.dir);
	assert_int_equal(stack_write_agent_config(&X.st, cfg, body), 0);
	pid_t pid = stack_sidecar_spawn(cfg, log);
	assert_true(pid > 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/.aam/health", port);
	long st = -1;
	for (int i = 0; i < 300 && st != 200; i++) {
		usleep(50 * 1000);
		st = stack_http_get(url, NULL);
	}
	assert_int_equal(st, 200);
	size_t before = fg_count(&X.gw);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/messages", port);
	char *resp = NULL;
	assert_int_equal(stack_http_get(url, &resp), 200);
	free(resp);
	assert_int_equal(fg_count(&X.gw), before + 1);
	struct fg_record r;
	assert_true(fg_record(&X.gw, before, &r));
	assert_true(r.token_ok);
	if (!r.dpop_ok)
		print_error("proof refused: %s\n", r.dpop_why);
	assert_true(r.dpop_ok);
	assert_string_equal(r.jkt, X.jkt);
	/* The 4 s token is renewed (a whole TPM attestation) while the sidecar runs. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/.aam/health", port);
	json_int_t refreshes = 0;
	for (int i = 0; i < 100 && refreshes < 2; i++) {
		usleep(100 * 1000);
		char *h = NULL;
		if (stack_http_get(url, &h) == 200) {
			json_t *j = NULL;
			aam_json_parse(h, strlen(h), NULL, &j, NULL);
			refreshes = json_integer_value(json_object_get(j, "refreshes"));
			json_decref(j);
		}
		free(h);
	}
	assert_true(refreshes >= 2);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/messages", port);
	assert_int_equal(stack_http_get(url, NULL), 200);
	struct fg_record r2;
	assert_true(fg_record(&X.gw, fg_count(&X.gw) - 1, &r2));
	assert_true(r2.dpop_ok);
	assert_string_not_equal(r.jti, r2.jti);
	assert_int_equal(stack_sidecar_stop(pid, log), 0);
	/* It flushed its key on the way out. */
	assert_int_equal(transient_objects(), 0);
}

static void
test_revoked(void **state)
{
	(void)state;
	REQUIRE();
	assert_int_equal(ctl("revoke", ID, NULL, NULL, NULL, NULL), 0);
	char *out = NULL, *err = NULL;
	assert_int_equal(stack_agent(X.cfg, &out, &err, "token", NULL), 1);
	assert_string_equal(out, "");
	assert_non_null(strstr(err, "registration_revoked"));
	free(out);
	free(err);
	assert_int_equal(transient_objects(), 0);
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_identity_and_register), cmocka_unit_test(test_token),
	        cmocka_unit_test(test_pcr_policy_refused),    cmocka_unit_test(test_library_sign),
	        cmocka_unit_test(test_sidecar_tpm),           cmocka_unit_test(test_revoked),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
