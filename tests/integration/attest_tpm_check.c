/*
 * TPM 2.0 attestation end to end against a real (software) TPM: swtpm
 * with an EK certificate from its local CA, evidence produced with
 * tpm2-tools (TPM2_Certify is sent raw with tpm2_send because tpm2_certify
 * cannot set qualifyingData), the credential made by aam-attest in
 * software and activated by the TPM, a quote over the server's nonce, and
 * the token checked against the JWKS.  Then every way the evidence can be
 * wrong is rejected with its own error code.
 *
 * swtpm has no resource manager, so transient objects are flushed after
 * every tool; the EK, AKs and keys are made persistent once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "aam/err.h"
#include "attest/tpm_mu.h"
#include "common/jose.h"
#include "tests/lib/swtpm.h"
#include "tests/lib/testutil.h"
#include "tests/unit/attest/attest_testutil.h"

#define H_EK        "0x81018001"
#define H_AK        "0x81018002"
#define H_KEY       "0x81018003"
#define H_AK_NOFIX  "0x81018004" /* restricted signing key, not fixedTPM */
#define H_KEY_NOFIX "0x81018005" /* signing key, not fixedTPM */
#define AUD         "http://127.0.0.1:4000"
#define ID_MAIN     "spiffe://prod/agent/finance-analyst"

struct g {
	struct aam_test_swtpm tpm;
	char *dir;
	struct at_server srv;
	bool started;
	uint8_t *ek_cert, *ek_pub, *ak_pub, *key_pub, *ak_nofix_pub, *key_nofix_pub;
	size_t ek_cert_len, ek_pub_len, ak_pub_len, key_pub_len, ak_nofix_pub_len,
	        key_nofix_pub_len;
	uint8_t pcr0[32], pcr16[32];
	char key_jkt[64];
};

static struct g G;

/* ---- running tpm2-tools ------------------------------------------------ */

__attribute__((format(printf, 1, 2))) static int
sh(const char *fmt, ...)
{
	char cmd[4096], full[4600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	snprintf(full, sizeof(full), "cd '%s' && (%s) >>tools.log 2>&1", G.dir, cmd);
	int rc = system(full);
	if (rc != 0)
		print_error("command failed (%d): %s\n", rc, cmd);
	return rc;
}

static uint8_t *
slurp(const char *name, size_t *len)
{
	char p[1200];
	snprintf(p, sizeof(p), "%s/%s", G.dir, name);
	return (uint8_t *)aam_test_read_file(p, len);
}

static void
spit(const char *name, const void *data, size_t len)
{
	char p[1200];
	snprintf(p, sizeof(p), "%s/%s", G.dir, name);
	assert_int_equal(aam_test_write_file(p, data, len, 0600), 0);
}

static void
hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", p[i]);
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/*
 * TPM2_Certify(objectHandle = KEY, signHandle = AK, qualifyingData = NONCE,
 * inScheme = NULL) with two empty password sessions, through tpm2_send.
 * Returns the TPM2B_ATTEST and the TPMT_SIGNATURE from the response.
 */
static void
certify(uint32_t key, uint32_t ak, const uint8_t *nonce, size_t nlen, uint8_t **info,
        size_t *info_len, uint8_t **sig, size_t *sig_len)
{
	uint8_t cmd[256];
	size_t n = 10;
	put32(cmd + n, key);
	put32(cmd + n + 4, ak);
	n += 8;
	put32(cmd + n, 18); /* two password sessions of 9 bytes */
	n += 4;
	for (int i = 0; i < 2; i++) {
		const uint8_t pw[9] = {0x40, 0x00, 0x00, 0x09, 0, 0, 0, 0, 0};
		memcpy(cmd + n, pw, 9);
		n += 9;
	}
	cmd[n++] = (uint8_t)(nlen >> 8);
	cmd[n++] = (uint8_t)nlen;
	memcpy(cmd + n, nonce, nlen);
	n += nlen;
	cmd[n++] = 0x00;
	cmd[n++] = 0x10; /* TPM_ALG_NULL: the AK's own scheme */
	cmd[0] = 0x80;
	cmd[1] = 0x02; /* TPM_ST_SESSIONS */
	put32(cmd + 2, (uint32_t)n);
	put32(cmd + 6, 0x00000148); /* TPM_CC_Certify */
	spit("certify.cmd", cmd, n);
	assert_int_equal(sh("tpm2_send -o certify.rsp < certify.cmd"), 0);
	size_t rl = 0;
	uint8_t *r = slurp("certify.rsp", &rl);
	assert_non_null(r);
	assert_true(rl > 16);
	assert_int_equal(r[6] | r[7] | r[8] | r[9], 0); /* responseCode TPM_RC_SUCCESS */
	size_t psize = (size_t)r[10] << 24 | (size_t)r[11] << 16 | (size_t)r[12] << 8 | r[13];
	const uint8_t *p = r + 14;
	assert_true(14 + psize <= rl);
	size_t al = 2 + ((size_t)p[0] << 8 | p[1]);
	assert_true(al < psize);
	*info = malloc(al);
	memcpy(*info, p, al);
	*info_len = al;
	*sig_len = psize - al;
	*sig = malloc(*sig_len);
	memcpy(*sig, p + al, *sig_len);
	free(r);
}

static uint32_t
handle(const char *h)
{
	return (uint32_t)strtoul(h, NULL, 16);
}

/* ---- group setup: TPM, objects, server --------------------------------- */

static int
group_setup(void **state)
{
	(void)state;
	memset(&G, 0, sizeof(G));
	if (!aam_test_swtpm_available() || !aam_test_have_program("tpm2_createek") ||
	    !aam_test_have_program("tpm2_send"))
		return 0; /* each test skips */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (aam_test_swtpm_start(&G.tpm) != AAM_OK)
		return -1;
	G.started = true;
	setenv("TPM2TOOLS_TCTI", G.tpm.tcti, 1);
	G.dir = aam_test_mkdtemp("aam-attest-tpm");
	if (G.dir == NULL)
		return -1;
	int rc = 0;
	rc |= sh("tpm2_nvread 0x%08x -o ek.der", AAM_TEST_SWTPM_NV_EK_CERT_RSA);
	rc |= sh("tpm2_createek -c " H_EK " -G rsa -u ek.pub");
	rc |= sh("tpm2_createak -C " H_EK
	         " -c ak.ctx -G ecc -g sha256 -s ecdsa -u ak.pub -n ak.name"
	         " && tpm2_flushcontext -t && tpm2_evictcontrol -C o -c ak.ctx " H_AK
	         " && tpm2_flushcontext -t");
	rc |= sh("tpm2_createprimary -C o -G ecc -c prim.ctx && tpm2_flushcontext -t");
	rc |= sh("tpm2_create -C prim.ctx -G ecc256:ecdsa-sha256 -u key.pub -r key.priv"
	         " -a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign'"
	         " && tpm2_flushcontext -t"
	         " && tpm2_load -C prim.ctx -u key.pub -r key.priv -c key.ctx && tpm2_flushcontext "
	         "-t"
	         " && tpm2_evictcontrol -C o -c key.ctx " H_KEY " && tpm2_flushcontext -t");
	rc |= sh("tpm2_create -C prim.ctx -G ecc256:ecdsa-sha256:null -u aknf.pub -r aknf.priv"
	         " -a 'restricted|sensitivedataorigin|userwithauth|sign' && tpm2_flushcontext -t"
	         " && tpm2_load -C prim.ctx -u aknf.pub -r aknf.priv -c aknf.ctx"
	         " && tpm2_flushcontext -t"
	         " && tpm2_evictcontrol -C o -c aknf.ctx " H_AK_NOFIX " && tpm2_flushcontext -t");
	rc |= sh("tpm2_create -C prim.ctx -G ecc256:ecdsa-sha256 -u keynf.pub -r keynf.priv"
	         " -a 'sensitivedataorigin|userwithauth|sign' && tpm2_flushcontext -t"
	         " && tpm2_load -C prim.ctx -u keynf.pub -r keynf.priv -c keynf.ctx"
	         " && tpm2_flushcontext -t"
	         " && tpm2_evictcontrol -C o -c keynf.ctx " H_KEY_NOFIX " && tpm2_flushcontext -t");
	rc |= sh("tpm2_pcrread sha256:0,16 -o pcrs0.bin");
	if (rc != 0)
		return -1;
	G.ek_cert = slurp("ek.der", &G.ek_cert_len);
	G.ek_pub = slurp("ek.pub", &G.ek_pub_len);
	G.ak_pub = slurp("ak.pub", &G.ak_pub_len);
	G.key_pub = slurp("key.pub", &G.key_pub_len);
	G.ak_nofix_pub = slurp("aknf.pub", &G.ak_nofix_pub_len);
	G.key_nofix_pub = slurp("keynf.pub", &G.key_nofix_pub_len);
	size_t pl = 0;
	uint8_t *pcrs = slurp("pcrs0.bin", &pl);
	if (G.ek_cert == NULL || G.ek_pub == NULL || G.ak_pub == NULL || G.key_pub == NULL ||
	    G.ak_nofix_pub == NULL || G.key_nofix_pub == NULL || pcrs == NULL || pl != 64)
		return -1;
	memcpy(G.pcr0, pcrs, 32);
	memcpy(G.pcr16, pcrs + 32, 32);
	free(pcrs);

	/* The thumbprint the token must be bound to: the agent key's. */
	struct attest_tpm_public kp;
	struct aam_jwk jwk;
	if (attest_tpm_public_parse(G.key_pub, G.key_pub_len, &kp) != AAM_OK ||
	    aam_jwk_from_xy(kp.ecc_x.p, kp.ecc_y.p, NULL, &jwk) != AAM_OK)
		return -1;
	memcpy(G.key_jkt, jwk.jkt, sizeof(jwk.jkt));
	aam_jwk_uninit(&jwk);

	const char *cas[] = {G.tpm.root_cert_path, G.tpm.ca_cert_path};
	struct at_server_opts o = {.ek_ca = cas, .n_ek_ca = 2};
	return at_server_start(&G.srv, &o) == AAM_OK ? 0 : -1;
}

static int
group_teardown(void **state)
{
	(void)state;
	if (G.srv.srv != NULL)
		at_server_stop(&G.srv);
	if (G.started)
		aam_test_swtpm_stop(&G.tpm);
	if (G.dir != NULL) {
		aam_test_rmtree(G.dir);
		free(G.dir);
	}
	free(G.ek_cert);
	free(G.ek_pub);
	free(G.ak_pub);
	free(G.key_pub);
	free(G.ak_nofix_pub);
	free(G.key_nofix_pub);
	if (G.started)
		curl_global_cleanup();
	return 0;
}

#define REQUIRE_TPM()                                                                              \
	do {                                                                                       \
		AAM_TEST_SWTPM_REQUIRE();                                                          \
		if (!G.started) {                                                                  \
			print_message("[  SKIP    ] tpm2-tools not found\n");                      \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

/* ---- registrations ---------------------------------------------------------- */

static void
ek_spki_hash(uint8_t out[32])
{
	const unsigned char *q = G.ek_cert;
	X509 *x = d2i_X509(NULL, &q, (long)G.ek_cert_len);
	assert_non_null(x);
	unsigned char *der = NULL;
	int len = i2d_PUBKEY(X509_get0_pubkey(x), &der);
	assert_true(len > 0);
	EVP_Digest(der, (size_t)len, out, NULL, EVP_sha256(), NULL);
	OPENSSL_free(der);
	X509_free(x);
}

/* A TPM registration for ID with the EK pinned, PCRs 0,1,2,16 and policy on 0 and 16. */
static void
register_tpm(const char *id, bool pin_ek)
{
	struct attest_reg *r = calloc(1, sizeof(*r));
	at_reg_init(r, id, ATTEST_METHOD_TPM, AUD);
	if (pin_ek) {
		r->has_ek_pub = true;
		ek_spki_hash(r->ek_pub_sha256);
	} else {
		/* Pinned to the issuing CA instead. */
		size_t n = 0;
		char *pem = aam_test_read_file(G.tpm.ca_cert_path, &n);
		BIO *b = BIO_new_mem_buf(pem, (int)n);
		X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
		unsigned char *der = NULL;
		int len = i2d_X509(x, &der);
		EVP_Digest(der, (size_t)len, r->ek_ca_sha256, NULL, EVP_sha256(), NULL);
		r->has_ek_ca = true;
		OPENSSL_free(der);
		X509_free(x);
		BIO_free(b);
		free(pem);
	}
	r->pcr_mask = (1u << 0) | (1u << 1) | (1u << 2) | (1u << 16);
	r->pcr_value_mask = (1u << 0) | (1u << 16);
	memcpy(r->pcr_values[0], G.pcr0, 32);
	memcpy(r->pcr_values[16], G.pcr16, 32);
	assert_int_equal(at_register(&G.srv, r), AAM_OK);
	free(r);
}

/* ---- one attestation, with knobs to break it -------------------------------- */

struct flow {
	const char *id;
	/* begin */
	const char *ak_handle; /* default H_AK */
	const uint8_t *ak_pub; /* default G.ak_pub */
	size_t ak_pub_len;
	const char *key_handle; /* default H_KEY */
	const uint8_t *key_pub;
	size_t key_pub_len;
	const uint8_t *ek_cert; /* default G.ek_cert */
	size_t ek_cert_len;
	const uint8_t *ek_pub;
	size_t ek_pub_len;
	bool certify_other_nonce;
	const char *nonce_override;   /* use this nonce instead of a fresh one */
	int64_t advance_before_begin; /* seconds added to the server clock */
	/* finish */
	bool flip_secret;
	const char *quote_pcrs; /* default "0,1,2,16" */
	bool quote_other_nonce;
	bool flip_quote;
	bool flip_reported_pcr;
	bool finish_twice;
	bool revoke_between;
	/* results */
	char begin_code[64];
	char finish_code[64];
	char *nonce_used;
	json_t *token_resp;
};

static void
code_of(const struct at_resp *r, char *out)
{
	const char *c = r->status == 200 ? "ok" : at_err_code(r);
	snprintf(out, 64, "%s", c != NULL ? c : "?");
}

static json_t *
begin_body(struct flow *f, const char *nonce)
{
	uint8_t *info, *sig;
	size_t il, sl;
	uint8_t n[32];
	size_t nl = 0;
	uint8_t *raw = at_unb64(nonce, &nl);
	assert_non_null(raw);
	memcpy(n, raw, nl < 32 ? nl : 32);
	free(raw);
	if (f->certify_other_nonce)
		n[0] ^= 0xff;
	certify(handle(f->key_handle), handle(f->ak_handle), n, 32, &info, &il, &sig, &sl);
	char *a = at_b64(f->ek_cert, f->ek_cert_len), *b = at_b64(f->ek_pub, f->ek_pub_len),
	     *c = at_b64(f->ak_pub, f->ak_pub_len), *d = at_b64(f->key_pub, f->key_pub_len),
	     *e = at_b64(info, il), *g = at_b64(sig, sl);
	json_t *j =
	        json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "step", "begin", "spiffe_id",
	                  f->id, "audience", AUD, "nonce", nonce, "ek_cert", a, "ek_pub", b,
	                  "ak_pub", c, "key_pub", d, "certify_info", e, "certify_sig", g);
	free(a);
	free(b);
	free(c);
	free(d);
	free(e);
	free(g);
	free(info);
	free(sig);
	return j;
}

/* Activates the credential and quotes; returns the finish body. */
static json_t *
finish_body(struct flow *f, const json_t *begin)
{
	size_t il = 0, el = 0, ql = 0;
	uint8_t *id = at_unb64(json_string_value(json_object_get(begin, "credential_blob")), &il);
	uint8_t *es = at_unb64(json_string_value(json_object_get(begin, "encrypted_secret")), &el);
	uint8_t *qn = at_unb64(json_string_value(json_object_get(begin, "quote_nonce")), &ql);
	assert_non_null(id);
	assert_non_null(es);
	assert_non_null(qn);
	assert_int_equal(ql, 32);
	/* The pcr_selection the server asks for is the registration's. */
	json_t *sel = json_object_get(json_object_get(begin, "pcr_selection"), "sha256");
	assert_int_equal(json_array_size(sel), 4);
	assert_int_equal(json_integer_value(json_array_get(sel, 3)), 16);

	/* tpm2-tools' credential file: magic, version, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET. */
	uint8_t *cred = malloc(8 + il + el);
	const uint8_t headr[8] = {0xba, 0xdc, 0xc0, 0xde, 0, 0, 0, 1};
	memcpy(cred, headr, 8);
	memcpy(cred + 8, id, il);
	memcpy(cred + 8 + il, es, el);
	spit("cred.bin", cred, 8 + il + el);
	free(cred);
	assert_int_equal(sh("tpm2_startauthsession --policy-session -S session.ctx"
	                    " && tpm2_policysecret -S session.ctx -c 0x4000000B"
	                    " && tpm2_activatecredential -c %s -C " H_EK
	                    " -i cred.bin -o secret.bin -P session:session.ctx;"
	                    " rc=$?; tpm2_flushcontext session.ctx; tpm2_flushcontext -t; exit $rc",
	                    f->ak_handle),
	                 0);
	size_t sl = 0;
	uint8_t *secret = slurp("secret.bin", &sl);
	assert_non_null(secret);
	assert_int_equal(sl, 32);
	if (f->flip_secret)
		secret[7] ^= 0x01;

	if (f->quote_other_nonce)
		qn[0] ^= 0xff;
	char qhex[65];
	hex(qn, 32, qhex);
	const char *pcrs = f->quote_pcrs != NULL ? f->quote_pcrs : "0,1,2,16";
	assert_int_equal(
	        sh("tpm2_quote -c %s -l sha256:%s -q %s -m quote.msg -s quote.sig -g sha256"
	           " && tpm2_flushcontext -t",
	           f->ak_handle, pcrs, qhex),
	        0);
	assert_int_equal(sh("tpm2_pcrread sha256:0,1,2,16 -o pcrs.bin"), 0);
	size_t mlen = 0, slen = 0, plen = 0;
	uint8_t *msg = slurp("quote.msg", &mlen), *qsig = slurp("quote.sig", &slen),
	        *pv = slurp("pcrs.bin", &plen);
	assert_non_null(msg);
	assert_non_null(qsig);
	assert_int_equal(plen, 4 * 32);
	if (f->flip_quote)
		msg[mlen / 2] ^= 0x01;
	if (f->flip_reported_pcr)
		pv[32 + 5] ^= 0x01;
	json_t *vals = json_object();
	const char *idx[] = {"0", "1", "2", "16"};
	for (int i = 0; i < 4; i++) {
		char h[65];
		hex(pv + 32 * i, 32, h);
		json_object_set_new(vals, idx[i], json_string(h));
	}
	char *s64 = at_b64(secret, sl), *q64 = at_b64(msg, mlen), *g64 = at_b64(qsig, slen);
	json_t *j = json_pack("{s:s,s:O,s:s,s:s,s:s,s:{s:o}}", "step", "finish", "session",
	                      json_object_get(begin, "session"), "secret", s64, "quote", q64,
	                      "quote_sig", g64, "pcrs", "sha256", vals);
	free(s64);
	free(q64);
	free(g64);
	free(secret);
	free(msg);
	free(qsig);
	free(pv);
	free(id);
	free(es);
	free(qn);
	return j;
}

static void
run_flow(struct flow *f)
{
	if (f->ak_handle == NULL) {
		f->ak_handle = H_AK;
		f->ak_pub = G.ak_pub;
		f->ak_pub_len = G.ak_pub_len;
	}
	if (f->key_handle == NULL) {
		f->key_handle = H_KEY;
		f->key_pub = G.key_pub;
		f->key_pub_len = G.key_pub_len;
	}
	if (f->ek_cert == NULL) {
		f->ek_cert = G.ek_cert;
		f->ek_cert_len = G.ek_cert_len;
	}
	if (f->ek_pub == NULL) {
		f->ek_pub = G.ek_pub;
		f->ek_pub_len = G.ek_pub_len;
	}
	f->nonce_used = f->nonce_override != NULL ? strdup(f->nonce_override)
	                                          : at_challenge(&G.srv, "tpm", f->id);
	assert_non_null(f->nonce_used);
	if (f->advance_before_begin != 0)
		attest_server_advance_clock(G.srv.srv, f->advance_before_begin);
	json_t *b = begin_body(f, f->nonce_used);
	struct at_resp r;
	assert_int_equal(at_request(G.srv.port, "POST", "/v1/attest/tpm", b, &r), 0);
	json_decref(b);
	if (f->advance_before_begin != 0)
		attest_server_advance_clock(G.srv.srv, -f->advance_before_begin);
	code_of(&r, f->begin_code);
	if (r.status != 200) {
		at_resp_free(&r);
		return;
	}
	assert_string_equal(r.cache_control, "no-store");
	json_t *fin = finish_body(f, r.json);
	if (f->revoke_between)
		assert_int_equal(attest_reg_revoke(G.srv.db, f->id, (int64_t)time(NULL), NULL),
		                 AAM_OK);
	struct at_resp r2;
	assert_int_equal(at_request(G.srv.port, "POST", "/v1/attest/tpm", fin, &r2), 0);
	code_of(&r2, f->finish_code);
	if (r2.status == 200)
		f->token_resp = json_incref(r2.json);
	if (f->finish_twice) {
		struct at_resp r3;
		assert_int_equal(at_request(G.srv.port, "POST", "/v1/attest/tpm", fin, &r3), 0);
		code_of(&r3, f->finish_code);
		at_resp_free(&r3);
	}
	json_decref(fin);
	at_resp_free(&r2);
	at_resp_free(&r);
}

static void
flow_done(struct flow *f)
{
	free(f->nonce_used);
	json_decref(f->token_resp);
}

/* ---- tests ------------------------------------------------------------------ */

static void
test_positive(void **state)
{
	(void)state;
	REQUIRE_TPM();
	register_tpm(ID_MAIN, true);
	struct flow f = {.id = ID_MAIN};
	run_flow(&f);
	assert_string_equal(f.begin_code, "ok");
	assert_string_equal(f.finish_code, "ok");
	const char *tok = json_string_value(json_object_get(f.token_resp, "token"));
	assert_non_null(tok);
	assert_string_equal(json_string_value(json_object_get(f.token_resp, "token_type")), "DPoP");
	assert_int_equal(json_integer_value(json_object_get(f.token_resp, "expires_in")), 300);
	assert_string_equal(json_string_value(json_object_get(f.token_resp, "jkt")), G.key_jkt);
	json_t *c = at_verify_token(&G.srv, tok, AUD);
	assert_non_null(c);
	assert_string_equal(json_string_value(json_object_get(c, "sub")), ID_MAIN);
	const char *jkt = NULL;
	assert_int_equal(aam_jose_claims_cnf_jkt(c, &jkt), AAM_OK);
	assert_string_equal(jkt, G.key_jkt);
	assert_string_equal(json_string_value(json_object_get(json_object_get(c, "aam"), "method")),
	                    "tpm");
	json_decref(c);

	/* The nonce was used up: presenting it again is a replay. */
	struct flow again = {.id = ID_MAIN, .nonce_override = f.nonce_used};
	run_flow(&again);
	assert_string_equal(again.begin_code, "nonce_invalid");
	flow_done(&again);
	flow_done(&f);
}

/* A fleet registration pinned to the EK's CA rather than to one EK. */
static void
test_positive_ca_pin(void **state)
{
	(void)state;
	REQUIRE_TPM();
	register_tpm("spiffe://prod/agent/fleet", false);
	struct flow f = {.id = "spiffe://prod/agent/fleet"};
	run_flow(&f);
	assert_string_equal(f.finish_code, "ok");
	flow_done(&f);
}

/* The same EK certificate, re-issued for the same key by a CA nobody trusts. */
static void
test_ek_untrusted(void **state)
{
	(void)state;
	REQUIRE_TPM();
	const unsigned char *q = G.ek_cert;
	X509 *real = d2i_X509(NULL, &q, (long)G.ek_cert_len);
	EVP_PKEY *rogue = at_p256_new();
	X509 *x = X509_new();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_NAME *n = X509_NAME_new();
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"rogue", -1, -1,
	                           0);
	X509_set_issuer_name(x, n);
	X509_set_subject_name(x, X509_get_subject_name(real));
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, X509_get0_pubkey(real));
	assert_true(X509_sign(x, rogue, EVP_sha256()) > 0);
	unsigned char *der = NULL;
	int len = i2d_X509(x, &der);
	struct flow f = {.id = ID_MAIN, .ek_cert = der, .ek_cert_len = (size_t)len};
	run_flow(&f);
	assert_string_equal(f.begin_code, "ek_untrusted");
	flow_done(&f);
	OPENSSL_free(der);
	X509_NAME_free(n);
	X509_free(x);
	X509_free(real);
	EVP_PKEY_free(rogue);
}

/* A genuine certificate with an EK public area that is not its key. */
static void
test_ek_mismatch(void **state)
{
	(void)state;
	REQUIRE_TPM();
	uint8_t *pub = malloc(G.ek_pub_len);
	memcpy(pub, G.ek_pub, G.ek_pub_len);
	pub[G.ek_pub_len - 10] ^= 0x01; /* inside the modulus */
	struct flow f = {.id = ID_MAIN, .ek_pub = pub, .ek_pub_len = G.ek_pub_len};
	run_flow(&f);
	assert_string_equal(f.begin_code, "ek_mismatch");
	flow_done(&f);
	free(pub);
}

/* A trusted EK that is not the one registered. */
static void
test_ek_not_registered(void **state)
{
	(void)state;
	REQUIRE_TPM();
	struct attest_reg *r = calloc(1, sizeof(*r));
	at_reg_init(r, "spiffe://prod/agent/other-host", ATTEST_METHOD_TPM, AUD);
	r->has_ek_pub = true;
	memset(r->ek_pub_sha256, 0x42, 32);
	assert_int_equal(at_register(&G.srv, r), AAM_OK);
	free(r);
	struct flow f = {.id = "spiffe://prod/agent/other-host"};
	run_flow(&f);
	assert_string_equal(f.begin_code, "ek_not_registered");
	flow_done(&f);
}

/* AKs without restricted (the agent key itself) and without fixedTPM. */
static void
test_ak_attributes(void **state)
{
	(void)state;
	REQUIRE_TPM();
	struct flow f = {.id = ID_MAIN,
	                 .ak_handle = H_KEY,
	                 .ak_pub = G.key_pub,
	                 .ak_pub_len = G.key_pub_len};
	run_flow(&f);
	assert_string_equal(f.begin_code, "ak_attributes");
	flow_done(&f);
	struct flow g = {.id = ID_MAIN,
	                 .ak_handle = H_AK_NOFIX,
	                 .ak_pub = G.ak_nofix_pub,
	                 .ak_pub_len = G.ak_nofix_pub_len};
	run_flow(&g);
	assert_string_equal(g.begin_code, "ak_attributes");
	flow_done(&g);
}

static void
test_key_not_fixedtpm(void **state)
{
	(void)state;
	REQUIRE_TPM();
	struct flow f = {.id = ID_MAIN,
	                 .key_handle = H_KEY_NOFIX,
	                 .key_pub = G.key_nofix_pub,
	                 .key_pub_len = G.key_nofix_pub_len};
	run_flow(&f);
	assert_string_equal(f.begin_code, "key_attributes");
	flow_done(&f);
}

/* A certification of the right key, but not over this challenge; and of another key. */
static void
test_certify_invalid(void **state)
{
	(void)state;
	REQUIRE_TPM();
	struct flow f = {.id = ID_MAIN, .certify_other_nonce = true};
	run_flow(&f);
	assert_string_equal(f.begin_code, "certify_invalid");
	flow_done(&f);
	/* The certify is of the not-fixedTPM key, while key_pub claims the good one. */
	struct flow g = {.id = ID_MAIN,
	                 .key_handle = H_KEY_NOFIX,
	                 .key_pub = G.key_pub,
	                 .key_pub_len = G.key_pub_len};
	run_flow(&g);
	assert_string_equal(g.begin_code, "certify_invalid");
	flow_done(&g);
}

static void
test_wrong_secret(void **state)
{
	(void)state;
	REQUIRE_TPM();
	struct flow f = {.id = ID_MAIN, .flip_secret = true};
	run_flow(&f);
	assert_string_equal(f.begin_code, "ok");
	assert_string_equal(f.finish_code, "credential_mismatch");
	flow_done(&f);
}

static void
test_stale_nonce(void **state)
{
	(void)state;
	REQUIRE_TPM();
	struct flow f = {.id = ID_MAIN, .advance_before_begin = 61};
	run_flow(&f);
	assert_string_equal(f.begin_code, "nonce_invalid");
	flow_done(&f);
	/* Bound to another identity. */
	char *n = at_challenge(&G.srv, "tpm", "spiffe://prod/agent/fleet");
	struct flow g = {.id = ID_MAIN, .nonce_override = n};
	run_flow(&g);
	assert_string_equal(g.begin_code, "nonce_invalid");
	flow_done(&g);
	free(n);
	/* A quote over another nonce than the server's. */
	struct flow h = {.id = ID_MAIN, .quote_other_nonce = true};
	run_flow(&h);
	assert_string_equal(h.finish_code, "nonce_invalid");
	flow_done(&h);
}

static void
test_quote_other_pcrs(void **state)
{
	(void)state;
	REQUIRE_TPM();
	struct flow f = {.id = ID_MAIN, .quote_pcrs = "0,1,2,3"};
	run_flow(&f);
	assert_string_equal(f.finish_code, "quote_pcr_selection");
	flow_done(&f);
}

/* PCR 16 is extended after registration: the quote is honest, the policy says no. */
static void
test_pcr_policy(void **state)
{
	(void)state;
	REQUIRE_TPM();
	assert_int_equal(sh("tpm2_pcrextend 16:sha256=%s",
	                    "0101010101010101010101010101010101010101010101010101010101010101"),
	                 0);
	struct flow f = {.id = ID_MAIN};
	run_flow(&f);
	assert_int_equal(sh("tpm2_pcrreset 16"), 0);
	assert_string_equal(f.finish_code, "pcr_mismatch");
	flow_done(&f);
	/* Reported values that are not what was quoted. */
	struct flow g = {.id = ID_MAIN, .flip_reported_pcr = true};
	run_flow(&g);
	assert_string_equal(g.finish_code, "pcr_digest_mismatch");
	flow_done(&g);
}

static void
test_flipped_quote(void **state)
{
	(void)state;
	REQUIRE_TPM();
	struct flow f = {.id = ID_MAIN, .flip_quote = true};
	run_flow(&f);
	assert_string_equal(f.finish_code, "quote_signature");
	flow_done(&f);
}

static void
test_session_single_use(void **state)
{
	(void)state;
	REQUIRE_TPM();
	struct flow f = {.id = ID_MAIN, .finish_twice = true};
	run_flow(&f);
	assert_string_equal(f.finish_code, "session_invalid");
	flow_done(&f);
}

/* Last: revokes the main registration. */
static void
test_revoked(void **state)
{
	(void)state;
	REQUIRE_TPM();
	register_tpm("spiffe://prod/agent/revoked-midway", true);
	struct flow f = {.id = "spiffe://prod/agent/revoked-midway", .revoke_between = true};
	run_flow(&f);
	assert_string_equal(f.begin_code, "ok");
	assert_string_equal(f.finish_code, "registration_revoked");
	flow_done(&f);
	assert_int_equal(attest_reg_revoke(G.srv.db, ID_MAIN, (int64_t)time(NULL), NULL), AAM_OK);
	struct flow g = {.id = ID_MAIN};
	run_flow(&g);
	assert_string_equal(g.begin_code, "registration_revoked");
	flow_done(&g);
	struct flow h = {.id = "spiffe://prod/agent/never-registered"};
	run_flow(&h);
	assert_string_equal(h.begin_code, "registration_unknown");
	flow_done(&h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_positive),          cmocka_unit_test(test_positive_ca_pin),
	        cmocka_unit_test(test_ek_untrusted),      cmocka_unit_test(test_ek_mismatch),
	        cmocka_unit_test(test_ek_not_registered), cmocka_unit_test(test_ak_attributes),
	        cmocka_unit_test(test_key_not_fixedtpm),  cmocka_unit_test(test_certify_invalid),
	        cmocka_unit_test(test_wrong_secret),      cmocka_unit_test(test_stale_nonce),
	        cmocka_unit_test(test_quote_other_pcrs),  cmocka_unit_test(test_pcr_policy),
	        cmocka_unit_test(test_flipped_quote),     cmocka_unit_test(test_session_single_use),
	        cmocka_unit_test(test_revoked),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
