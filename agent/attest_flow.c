/*
 * The two attestation conversations with aam-attest (docs/ATTEST.md):
 * TPM in two rounds (evidence and certify, then the activated credential
 * and a quote) and PKCS#11 in one (a signature over the nonce and the
 * request context).
 */
#include "agent/agent_int.h"
#include "agent/tpm.h"
#include "aam/err.h"
#include "common/b64.h"
#include "common/secret.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#define NONCE_MAX     64u
#define TPM_FIELD_MAX 4096u

/* POSTs BODY to PATH and insists on 200: *OUT gets the answer's JSON. */
static int
post_ok(struct aam_agent *a, const char *path, const char *step, json_t *body, json_t **out,
        struct aam_agent_error *e)
{
	struct agent_http_resp r;
	int rc = agent_http_post(a, path, body, &r, e);
	if (rc != AAM_OK)
		return rc;
	if (r.status != 200) {
		rc = agent_http_refusal(&r, step, e);
		agent_http_resp_uninit(&r);
		return rc;
	}
	if (!json_is_object(r.json)) {
		agent_http_resp_uninit(&r);
		agent_err(e, "attest_protocol", "%s: the answer is not a JSON object", step);
		return AAM_E_PROTO;
	}
	*out = r.json;
	return AAM_OK;
}

static int
decode_nonce(const char *s, uint8_t out[NONCE_MAX], size_t *len, struct aam_agent_error *e)
{
	if (aam_b64_decode(s, strlen(s), out, NONCE_MAX, len, AAM_B64_URL) != AAM_OK || *len == 0) {
		agent_err(e, "attest_protocol",
		          "the server's nonce is not base64url of 1-64 bytes");
		return AAM_E_PROTO;
	}
	return AAM_OK;
}

/* Adds base64url(B) as KEY; false on allocation failure. */
static bool
set_b64(json_t *o, const char *key, const struct aam_buf *b)
{
	return json_object_set_new(o, key, agent_b64_json(b->data, b->len)) == 0;
}

/* ---- TPM ---------------------------------------------------------------------------- */

static int
tpm_begin(struct aam_agent *a, json_t **resp, struct aam_agent_error *e)
{
	char *nonce = NULL;
	int rc = agent_challenge(a, "tpm", &nonce, e);
	if (rc != AAM_OK)
		return rc;
	uint8_t raw[NONCE_MAX];
	size_t rl = 0;
	rc = decode_nonce(nonce, raw, &rl, e);
	struct agent_tpm_evidence ev;
	agent_tpm_evidence_init(&ev);
	char msg[AGENT_TPM_MSG_MAX] = "";
	if (rc == AAM_OK) {
		rc = agent_tpm_begin(a->tpm, raw, rl, &ev, msg, sizeof(msg));
		if (rc != AAM_OK)
			agent_err(e, "tpm_error", "%s", msg[0] ? msg : aam_strerror(rc));
	}
	json_t *b = NULL;
	if (rc == AAM_OK) {
		b = json_pack("{s:s,s:s,s:s,s:s}", "step", "begin", "spiffe_id", a->spiffe_id,
		              "audience", a->audience, "nonce", nonce);
		if (b == NULL || !set_b64(b, "ek_cert", &ev.ek_cert) ||
		    !set_b64(b, "ek_pub", &ev.ek_pub) || !set_b64(b, "ak_pub", &ev.ak_pub) ||
		    !set_b64(b, "key_pub", &ev.key_pub) ||
		    !set_b64(b, "certify_info", &ev.certify_info) ||
		    !set_b64(b, "certify_sig", &ev.certify_sig)) {
			agent_err(e, "internal", "out of memory");
			rc = AAM_E_NOMEM;
		}
	}
	if (rc == AAM_OK)
		rc = post_ok(a, "/v1/attest/tpm", "tpm begin", b, resp, e);
	json_decref(b);
	agent_tpm_evidence_uninit(&ev);
	free(nonce);
	return rc;
}

/* The PCR mask the server asks for: {"sha256": [indices]} and nothing else. */
static int
pcr_mask(const json_t *begin, uint32_t *mask, struct aam_agent_error *e)
{
	const json_t *sel = json_object_get(begin, "pcr_selection");
	const json_t *arr = json_object_get(sel, "sha256");
	if (!json_is_object(sel) || json_object_size(sel) != 1 || !json_is_array(arr) ||
	    json_array_size(arr) == 0) {
		agent_err(e, "attest_protocol",
		          "tpm begin: pcr_selection is not {\"sha256\":[...]}");
		return AAM_E_PROTO;
	}
	*mask = 0;
	size_t i;
	const json_t *v;
	json_array_foreach(arr, i, v)
	{
		json_int_t n = json_is_integer(v) ? json_integer_value(v) : -1;
		if (n < 0 || n >= (json_int_t)AGENT_TPM_MAX_PCR) {
			agent_err(e, "attest_protocol", "tpm begin: a PCR index is out of range");
			return AAM_E_PROTO;
		}
		*mask |= 1u << n;
	}
	return AAM_OK;
}

static int
tpm_finish_body(struct aam_agent *a, const json_t *begin, json_t **body, struct aam_agent_error *e)
{
	struct aam_buf blob, es, qn, secret, quote, qsig;
	aam_buf_init(&blob, TPM_FIELD_MAX);
	aam_buf_init(&es, TPM_FIELD_MAX);
	aam_buf_init(&qn, NONCE_MAX);
	aam_buf_init(&secret, 128);
	aam_buf_init(&quote, TPM_FIELD_MAX);
	aam_buf_init(&qsig, TPM_FIELD_MAX);
	uint32_t mask = 0;
	const char *session = json_string_value(json_object_get(begin, "session"));
	int rc = AAM_OK;
	if (session == NULL || agent_b64_member(begin, "credential_blob", TPM_FIELD_MAX, &blob) ||
	    agent_b64_member(begin, "encrypted_secret", TPM_FIELD_MAX, &es) ||
	    agent_b64_member(begin, "quote_nonce", NONCE_MAX, &qn) || qn.len == 0) {
		agent_err(e, "attest_protocol", "tpm begin: the answer misses a field");
		rc = AAM_E_PROTO;
	}
	if (rc == AAM_OK)
		rc = pcr_mask(begin, &mask, e);
	char msg[AGENT_TPM_MSG_MAX] = "";
	uint8_t values[AGENT_TPM_MAX_PCR][32];
	memset(values, 0, sizeof(values));
	if (rc == AAM_OK) {
		rc = agent_tpm_activate(a->tpm, blob.data, blob.len, es.data, es.len, &secret, msg,
		                        sizeof(msg));
		if (rc == AAM_OK)
			rc = agent_tpm_quote(a->tpm, qn.data, qn.len, mask, &quote, &qsig, values,
			                     msg, sizeof(msg));
		if (rc != AAM_OK)
			agent_err(e, "tpm_error", "%s", msg[0] ? msg : aam_strerror(rc));
	}
	json_t *pcrs = NULL;
	if (rc == AAM_OK) {
		pcrs = json_object();
		for (unsigned i = 0; pcrs != NULL && i < AGENT_TPM_MAX_PCR; i++) {
			if (!(mask & (1u << i)))
				continue;
			char idx[4], hex[65];
			snprintf(idx, sizeof(idx), "%u", i);
			for (unsigned k = 0; k < 32; k++)
				snprintf(hex + 2 * k, 3, "%02x", values[i][k]);
			if (json_object_set_new(pcrs, idx, json_string(hex)) != 0) {
				json_decref(pcrs);
				pcrs = NULL;
			}
		}
		*body = pcrs == NULL ? NULL
		                     : json_pack("{s:s,s:s,s:{s:o}}", "step", "finish", "session",
		                                 session, "pcrs", "sha256", pcrs);
		if (*body == NULL || !set_b64(*body, "secret", &secret) ||
		    !set_b64(*body, "quote", &quote) || !set_b64(*body, "quote_sig", &qsig)) {
			json_decref(*body);
			*body = NULL;
			agent_err(e, "internal", "out of memory");
			rc = AAM_E_NOMEM;
		}
	}
	aam_buf_uninit(&blob);
	aam_buf_uninit(&es);
	aam_buf_uninit(&qn);
	aam_buf_uninit_wipe(&secret);
	aam_buf_uninit(&quote);
	aam_buf_uninit(&qsig);
	return rc;
}

int
agent_attest_tpm(struct aam_agent *a, json_t **out, struct aam_agent_error *e)
{
	json_t *begin = NULL, *fin = NULL;
	int rc = tpm_begin(a, &begin, e);
	if (rc == AAM_OK)
		rc = tpm_finish_body(a, begin, &fin, e);
	if (rc == AAM_OK)
		rc = post_ok(a, "/v1/attest/tpm", "tpm finish", fin, out, e);
	/* Whatever happened, the AK (and the EK) leave the TPM's few slots. */
	agent_tpm_end(a->tpm);
	json_decref(begin);
	if (fin != NULL) {
		/* The body holds the activated credential. */
		json_t *s = json_object_get(fin, "secret");
		if (json_is_string(s))
			aam_wipe((void *)(uintptr_t)json_string_value(s), json_string_length(s));
		json_decref(fin);
	}
	return rc;
}

/* ---- PKCS#11 ---------------------------------------------------------------------- */

int
agent_attest_pkcs11(struct aam_agent *a, json_t **out, struct aam_agent_error *e)
{
	char *nonce = NULL;
	int rc = agent_challenge(a, "pkcs11", &nonce, e);
	if (rc != AAM_OK)
		return rc;
	/* The signed context names the nonce exactly as /challenge spelled it. */
	struct aam_buf m;
	aam_buf_init(&m, 8192);
	aam_buf_printf(&m, "aam-attest-pkcs11\n%s\n%s\n%s", nonce, a->spiffe_id, a->audience);
	uint8_t digest[32], sig[64];
	json_t *jwk = NULL, *b = NULL;
	if (m.err != 0 || EVP_Digest(m.data, m.len, digest, NULL, EVP_sha256(), NULL) != 1)
		rc = AAM_E_NOMEM;
	if (rc == AAM_OK) {
		rc = aam_agent_sign(a, digest, sig);
		if (rc != AAM_OK)
			agent_err(e, "pkcs11_error", "the token could not sign the challenge (%s)",
			          aam_err_code(rc));
	}
	if (rc == AAM_OK && aam_jwk_to_json(&a->jwk, AAM_JWK_PUBLIC, &jwk) != AAM_OK)
		rc = AAM_E_NOMEM;
	if (rc == AAM_OK) {
		b = json_pack("{s:s,s:s,s:s,s:O}", "spiffe_id", a->spiffe_id, "audience",
		              a->audience, "nonce", nonce, "jwk", jwk);
		if (b == NULL || json_object_set_new(b, "signature", agent_b64_json(sig, 64)) != 0)
			rc = AAM_E_NOMEM;
	}
	if (rc == AAM_E_NOMEM)
		agent_err(e, "internal", "out of memory");
	if (rc == AAM_OK)
		rc = post_ok(a, "/v1/attest/pkcs11", "pkcs11", b, out, e);
	json_decref(b);
	json_decref(jwk);
	aam_buf_uninit(&m);
	free(nonce);
	return rc;
}
