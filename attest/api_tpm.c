/*
 * POST /v1/attest/tpm: the two rounds of TPM attestation (step "begin"
 * and step "finish"), see tpm_verify.h for what each checks.
 */
#include "attest/server.h"
#include "attest/tpm_crypto.h"
#include "common/b64.h"
#include "common/json.h"
#include "common/log.h"
#include "aam/err.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#define TPM_FIELD_MAX 4096u /* bytes of any one decoded TPM structure or certificate */

struct tpm_bufs {
	struct aam_buf ek_cert, ek_pub, ak_pub, key_pub, certify_info, certify_sig;
};

static void
bufs_init(struct tpm_bufs *b)
{
	aam_buf_init(&b->ek_cert, TPM_FIELD_MAX);
	aam_buf_init(&b->ek_pub, TPM_FIELD_MAX);
	aam_buf_init(&b->ak_pub, TPM_FIELD_MAX);
	aam_buf_init(&b->key_pub, TPM_FIELD_MAX);
	aam_buf_init(&b->certify_info, TPM_FIELD_MAX);
	aam_buf_init(&b->certify_sig, TPM_FIELD_MAX);
}

static void
bufs_uninit(struct tpm_bufs *b)
{
	aam_buf_uninit(&b->ek_cert);
	aam_buf_uninit(&b->ek_pub);
	aam_buf_uninit(&b->ak_pub);
	aam_buf_uninit(&b->key_pub);
	aam_buf_uninit(&b->certify_info);
	aam_buf_uninit(&b->certify_sig);
}

static json_t *
b64_json(const struct aam_buf *b)
{
	struct aam_buf e;
	aam_buf_init(&e, 0);
	json_t *j = NULL;
	if (aam_b64_encode_buf(&e, b->data, b->len, AAM_B64_URL) == AAM_OK)
		j = json_stringn((const char *)e.data, e.len);
	aam_buf_uninit(&e);
	return j;
}

static json_t *
b64_json_raw(const uint8_t *p, size_t n)
{
	char enc[128];
	if (aam_b64_encode(p, n, enc, sizeof(enc), NULL, AAM_B64_URL) != AAM_OK)
		return NULL;
	return json_string(enc);
}

static int
tpm_begin(struct attest_server *s, const struct aam_http_request *req,
          struct aam_http_response *resp, const json_t *body)
{
	const char *spiffe_id = NULL, *audience = NULL, *nonce = NULL;
	struct tpm_bufs b;
	bufs_init(&b);
	struct attest_reg *reg = calloc(1, sizeof(*reg));
	struct attest_tpm_session *sess = calloc(1, sizeof(*sess));
	struct attest_tpm_challenge ch;
	attest_tpm_challenge_init(&ch);
	uint8_t nonce_raw[ATTEST_NONCE_LEN], sid[ATTEST_TTLMAP_KEY_LEN], qnonce[ATTEST_NONCE_LEN];
	const char *who = NULL;

	enum attest_err e = reg != NULL && sess != NULL ? ATTEST_OK : ATTEST_E_INTERNAL;
	if (e == ATTEST_OK &&
	    (aam_json_get_str_max(body, NULL, "spiffe_id", AAM_JSON_REQUIRED, AAM_SPIFFE_ID_MAX,
	                          &spiffe_id, NULL) != AAM_OK ||
	     aam_json_get_str_max(body, NULL, "audience", AAM_JSON_REQUIRED, ATTEST_AUDIENCE_MAX,
	                          &audience, NULL) != AAM_OK ||
	     aam_json_get_str_max(body, NULL, "nonce", AAM_JSON_REQUIRED, 64, &nonce, NULL) !=
	             AAM_OK))
		e = ATTEST_E_INVALID_REQUEST;
	const struct {
		const char *key;
		struct aam_buf *buf;
	} fields[] = {{"ek_cert", &b.ek_cert},
	              {"ek_pub", &b.ek_pub},
	              {"ak_pub", &b.ak_pub},
	              {"key_pub", &b.key_pub},
	              {"certify_info", &b.certify_info},
	              {"certify_sig", &b.certify_sig}};
	for (size_t i = 0; e == ATTEST_OK && i < sizeof(fields) / sizeof(fields[0]); i++)
		e = attest_get_b64(body, fields[i].key, TPM_FIELD_MAX, fields[i].buf);
	/* The identity claimed, for the audit record even when the nonce is bad. */
	if (e == ATTEST_OK)
		who = spiffe_id;
	if (e == ATTEST_OK)
		e = attest_nonce_take(s, nonce, ATTEST_METHOD_TPM, spiffe_id, NULL, nonce_raw);
	if (e == ATTEST_OK) {
		int rc = attest_server_reg_get(s, spiffe_id, reg);
		if (rc != AAM_OK)
			e = rc == AAM_E_NOTFOUND ? ATTEST_E_REGISTRATION_UNKNOWN
			                         : ATTEST_E_INTERNAL;
	}
	if (e == ATTEST_OK)
		e = attest_reg_check(reg, ATTEST_METHOD_TPM, audience);
	if (e == ATTEST_OK) {
		struct attest_tpm_begin_in in = {
		        .nonce = nonce_raw,
		        .nonce_len = sizeof(nonce_raw),
		        .ek_cert = b.ek_cert.data,
		        .ek_cert_len = b.ek_cert.len,
		        .ek_pub = b.ek_pub.data,
		        .ek_pub_len = b.ek_pub.len,
		        .ak_pub = b.ak_pub.data,
		        .ak_pub_len = b.ak_pub.len,
		        .key_pub = b.key_pub.data,
		        .key_pub_len = b.key_pub.len,
		        .certify_info = b.certify_info.data,
		        .certify_info_len = b.certify_info.len,
		        .certify_sig = b.certify_sig.data,
		        .certify_sig_len = b.certify_sig.len,
		};
		e = attest_tpm_begin(s->ek_trust, reg, &in, sess, &ch);
	}
	if (e == ATTEST_OK) {
		memcpy(sess->spiffe_id, spiffe_id, strlen(spiffe_id) + 1);
		memcpy(sess->audience, audience, strlen(audience) + 1);
		memcpy(qnonce, sess->quote_nonce, sizeof(qnonce));
		int64_t now = attest_now(s);
		int rc = RAND_bytes(sid, sizeof(sid)) == 1
		                 ? attest_ttlmap_put(s->sessions, sid, sess, now + ATTEST_NONCE_TTL,
		                                     now)
		                 : AAM_E_CRYPTO;
		if (rc == AAM_OK)
			sess = NULL; /* owned by the session map */
		else
			e = rc == AAM_E_BUSY ? ATTEST_E_UNAVAILABLE : ATTEST_E_INTERNAL;
	}
	int rc = AAM_OK;
	if (e == ATTEST_OK) {
		json_t *sel = json_array();
		for (unsigned i = 0; sel != NULL && i < ATTEST_PCR_COUNT; i++)
			if (reg->pcr_mask >> i & 1u)
				json_array_append_new(sel, json_integer(i));
		json_t *j = json_pack(
		        "{s:o,s:o,s:o,s:o,s:{s:o}}", "session", b64_json_raw(sid, sizeof(sid)),
		        "credential_blob", b64_json(&ch.credential_blob), "encrypted_secret",
		        b64_json(&ch.encrypted_secret), "quote_nonce",
		        b64_json_raw(qnonce, sizeof(qnonce)), "pcr_selection", "sha256", sel);
		rc = j != NULL ? aam_http_respond_json(resp, 200, j) : AAM_E_NOMEM;
		json_decref(j);
		if (rc == AAM_OK)
			rc = aam_http_response_header(resp, "Cache-Control", "no-store");
	} else {
		rc = attest_respond_failure(s, req, resp, e, ATTEST_METHOD_TPM, who);
	}
	if (sess != NULL) {
		attest_tpm_session_uninit(sess);
		free(sess);
	}
	attest_tpm_challenge_uninit(&ch);
	bufs_uninit(&b);
	free(reg);
	return rc;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * {"sha256":{"0":"<64 hex>",...}}: the SHA-256 bank only, indices in
 * canonical decimal form, every value exactly 32 bytes.
 */
static enum attest_err
parse_pcrs(const json_t *body, struct attest_tpm_finish_in *in)
{
	json_t *pcrs = NULL, *bank = NULL;
	if (aam_json_get_object(body, NULL, "pcrs", AAM_JSON_REQUIRED, &pcrs, NULL) != AAM_OK ||
	    json_object_size(pcrs) != 1 ||
	    aam_json_get_object(pcrs, "$.pcrs", "sha256", AAM_JSON_REQUIRED, &bank, NULL) !=
	            AAM_OK ||
	    json_object_size(bank) > ATTEST_PCR_COUNT)
		return ATTEST_E_INVALID_REQUEST;
	const char *key;
	json_t *v;
	json_object_foreach(bank, key, v)
	{
		size_t kl = strlen(key);
		const char *hex = json_string_value(v);
		if (kl == 0 || kl > 2 || (kl == 2 && key[0] == '0') || hex == NULL ||
		    strlen(hex) != 64)
			return ATTEST_E_INVALID_REQUEST;
		unsigned idx = 0;
		for (size_t i = 0; i < kl; i++) {
			if (key[i] < '0' || key[i] > '9')
				return ATTEST_E_INVALID_REQUEST;
			idx = idx * 10 + (unsigned)(key[i] - '0');
		}
		if (idx >= ATTEST_PCR_COUNT)
			return ATTEST_E_INVALID_REQUEST;
		for (size_t i = 0; i < 32; i++) {
			int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
			if (hi < 0 || lo < 0)
				return ATTEST_E_INVALID_REQUEST;
			in->pcrs[idx][i] = (uint8_t)(hi << 4 | lo);
		}
		in->pcr_present |= 1u << idx;
	}
	return ATTEST_OK;
}

static int
tpm_finish(struct attest_server *s, const struct aam_http_request *req,
           struct aam_http_response *resp, const json_t *body)
{
	struct aam_buf sid, secret, quote, quote_sig;
	aam_buf_init(&sid, 64);
	aam_buf_init(&secret, 128);
	aam_buf_init(&quote, TPM_FIELD_MAX);
	aam_buf_init(&quote_sig, TPM_FIELD_MAX);
	struct attest_tpm_finish_in *in = calloc(1, sizeof(*in));
	struct attest_reg *reg = calloc(1, sizeof(*reg));
	struct attest_tpm_session *sess = NULL;
	const char *who = NULL;

	enum attest_err e = in != NULL && reg != NULL ? ATTEST_OK : ATTEST_E_INTERNAL;
	if (e == ATTEST_OK)
		e = attest_get_b64(body, "session", ATTEST_TTLMAP_KEY_LEN, &sid);
	if (e == ATTEST_OK)
		e = attest_get_b64(body, "secret", ATTEST_TPM_CREDENTIAL_MAX, &secret);
	if (e == ATTEST_OK)
		e = attest_get_b64(body, "quote", TPM_FIELD_MAX, &quote);
	if (e == ATTEST_OK)
		e = attest_get_b64(body, "quote_sig", TPM_FIELD_MAX, &quote_sig);
	if (e == ATTEST_OK)
		e = parse_pcrs(body, in);
	if (e == ATTEST_OK) {
		/* Single use: the session is gone whatever happens next. */
		sess = sid.len == ATTEST_TTLMAP_KEY_LEN
		               ? attest_ttlmap_take(s->sessions, sid.data, attest_now(s))
		               : NULL;
		if (sess == NULL)
			e = ATTEST_E_SESSION_INVALID;
	}
	if (e == ATTEST_OK) {
		who = sess->spiffe_id;
		/* Read afresh: a revocation between the rounds applies here. */
		int rc = attest_server_reg_get(s, sess->spiffe_id, reg);
		if (rc == AAM_E_NOTFOUND || (rc == AAM_OK && reg->id != sess->reg_id))
			e = ATTEST_E_REGISTRATION_UNKNOWN;
		else if (rc != AAM_OK)
			e = ATTEST_E_INTERNAL;
	}
	if (e == ATTEST_OK)
		e = attest_reg_check(reg, ATTEST_METHOD_TPM, sess->audience);
	if (e == ATTEST_OK) {
		in->secret = secret.data;
		in->secret_len = secret.len;
		in->quote = quote.data;
		in->quote_len = quote.len;
		in->quote_sig = quote_sig.data;
		in->quote_sig_len = quote_sig.len;
		e = attest_tpm_finish(sess, reg, in);
	}
	if (e == ATTEST_OK)
		e = attest_respond_token(s, req, resp, reg, sess->audience, sess->key.jkt,
		                         ATTEST_METHOD_TPM);
	int rc = AAM_OK;
	if (e != ATTEST_OK)
		rc = attest_respond_failure(s, req, resp, e, ATTEST_METHOD_TPM, who);
	if (sess != NULL) {
		attest_tpm_session_uninit(sess);
		free(sess);
	}
	free(reg);
	free(in);
	aam_buf_uninit(&sid);
	aam_buf_uninit_wipe(&secret);
	aam_buf_uninit(&quote);
	aam_buf_uninit(&quote_sig);
	return rc;
}

int
attest_api_tpm(void *ctx, const struct aam_http_request *req, struct aam_http_response *resp)
{
	struct attest_server *s = ctx;
	if (!attest_ratelimit_allowed(s->limiter, req->client_addr, attest_mono()))
		return attest_respond_failure(s, req, resp, ATTEST_E_RATE_LIMITED,
		                              ATTEST_METHOD_TPM, NULL);
	json_t *body = NULL;
	enum attest_err e = attest_parse_body(req, &body);
	const char *step = NULL;
	if (e == ATTEST_OK &&
	    aam_json_get_str_max(body, NULL, "step", AAM_JSON_REQUIRED, 16, &step, NULL) != AAM_OK)
		e = ATTEST_E_INVALID_REQUEST;
	int rc;
	if (e == ATTEST_OK && strcmp(step, "begin") == 0)
		rc = tpm_begin(s, req, resp, body);
	else if (e == ATTEST_OK && strcmp(step, "finish") == 0)
		rc = tpm_finish(s, req, resp, body);
	else
		rc = attest_respond_failure(s, req, resp, ATTEST_E_INVALID_REQUEST,
		                            ATTEST_METHOD_TPM, NULL);
	json_decref(body);
	return rc;
}
