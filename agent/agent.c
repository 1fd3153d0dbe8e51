/*
 * The aam-agent library's front (include/aam/agent.h): opening the key's
 * device, attesting, checking the token is bound to the key, and DPoP
 * proofs signed by the device.
 */
#include "agent/agent_int.h"
#include "agent/p11key.h"
#include "agent/tpm.h"
#include "aam/err.h"
#include "common/log.h"
#include "common/secret.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#define DEFAULT_TIMEOUT_MS 15000L
#define MAX_TOKEN_LIFE     86400 /* seconds; aam-attest caps tokens at 15 min */

static char *
dup_opt(const char *s, bool *fail)
{
	if (s == NULL)
		return NULL;
	char *d = strdup(s);
	if (d == NULL)
		*fail = true;
	return d;
}

static int
open_key(struct aam_agent *a, const struct aam_agent_config *cfg, struct aam_agent_error *e)
{
	char msg[AGENT_TPM_MSG_MAX] = "";
	uint8_t x[32], y[32];
	int rc;
	if (a->method == AGENT_METHOD_TPM) {
		rc = agent_tpm_open(cfg->tcti, cfg->state_dir, &a->tpm, msg, sizeof(msg));
		if (rc != AAM_OK) {
			agent_err(e, "tpm_error", "%s", msg[0] ? msg : aam_strerror(rc));
			return rc;
		}
		agent_tpm_key_xy(a->tpm, x, y);
	} else {
		rc = agent_p11_open(cfg->pkcs11_key, cfg->pkcs11_module, cfg->pin_file, &a->p11,
		                    msg, sizeof(msg));
		if (rc != AAM_OK) {
			agent_err(e, "pkcs11_error", "%s", msg[0] ? msg : aam_strerror(rc));
			return rc;
		}
		agent_p11_key_xy(a->p11, x, y);
	}
	rc = aam_jwk_from_xy(x, y, NULL, &a->jwk);
	if (rc != AAM_OK)
		agent_err(e, a->method == AGENT_METHOD_TPM ? "tpm_error" : "pkcs11_error",
		          "the key's public point is not on P-256");
	return rc;
}

int
aam_agent_open(const struct aam_agent_config *cfg, struct aam_agent **out,
               struct aam_agent_error *e)
{
	if (e != NULL)
		memset(e, 0, sizeof(*e));
	if (out == NULL || cfg == NULL) {
		agent_err(e, "invalid_config", "no configuration");
		return AAM_E_INVAL;
	}
	*out = NULL;
	bool tpm = cfg->tcti != NULL && cfg->tcti[0] != '\0';
	bool p11 = cfg->pkcs11_key != NULL && cfg->pkcs11_key[0] != '\0';
	if (tpm == p11) {
		agent_err(e, "invalid_config", "set either a TCTI (TPM) or a pkcs11: key URI");
		return AAM_E_INVAL;
	}
	if (tpm && (cfg->state_dir == NULL || cfg->state_dir[0] == '\0')) {
		agent_err(e, "invalid_config",
		          "a TPM agent needs a state folder for its key blobs");
		return AAM_E_INVAL;
	}
	struct aam_agent *a = calloc(1, sizeof(*a));
	if (a == NULL) {
		agent_err(e, "internal", "out of memory");
		return AAM_E_NOMEM;
	}
	pthread_mutex_init(&a->attest_mu, NULL);
	/* Reference-counted by libcurl; balanced in aam_agent_close. */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	a->method = tpm ? AGENT_METHOD_TPM : AGENT_METHOD_PKCS11;
	a->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS;
	bool fail = false;
	a->attest_url = dup_opt(cfg->attest_url, &fail);
	a->spiffe_id = dup_opt(cfg->spiffe_id, &fail);
	a->audience = dup_opt(cfg->audience, &fail);
	a->ca_bundle = dup_opt(cfg->ca_bundle, &fail);
	if (a->attest_url != NULL) {
		size_t l = strlen(a->attest_url);
		while (l > 0 && a->attest_url[l - 1] == '/')
			a->attest_url[--l] = '\0';
	}
	int rc = fail ? AAM_E_NOMEM : AAM_OK;
	if (fail)
		agent_err(e, "internal", "out of memory");
	if (rc == AAM_OK)
		rc = open_key(a, cfg, e);
	if (rc != AAM_OK) {
		aam_agent_close(a);
		return rc;
	}
	*out = a;
	return AAM_OK;
}

void
aam_agent_close(struct aam_agent *a)
{
	if (a == NULL)
		return;
	agent_tpm_close(a->tpm);
	agent_p11_close(a->p11);
	if (a->jwk.pkey != NULL)
		aam_jwk_uninit(&a->jwk);
	free(a->attest_url);
	free(a->spiffe_id);
	free(a->audience);
	free(a->ca_bundle);
	pthread_mutex_destroy(&a->attest_mu);
	free(a);
	curl_global_cleanup();
}

const char *
aam_agent_method(const struct aam_agent *a)
{
	return a != NULL && a->method == AGENT_METHOD_TPM ? "tpm" : "pkcs11";
}

const char *
aam_agent_jkt(const struct aam_agent *a)
{
	return a != NULL ? a->jwk.jkt : "";
}

int
aam_agent_jwk_json(const struct aam_agent *a, char **out)
{
	if (a == NULL || out == NULL)
		return AAM_E_INVAL;
	json_t *j = NULL;
	int rc = aam_jwk_to_json(&a->jwk, AAM_JWK_PUBLIC, &j);
	if (rc != AAM_OK)
		return rc;
	*out = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	return *out != NULL ? AAM_OK : AAM_E_NOMEM;
}

int
aam_agent_ek_cert(struct aam_agent *a, uint8_t **der, size_t *len, struct aam_agent_error *e)
{
	if (a == NULL || der == NULL || len == NULL)
		return AAM_E_INVAL;
	if (a->method != AGENT_METHOD_TPM) {
		agent_err(e, "unsupported", "a PKCS#11 agent has no EK certificate");
		return AAM_E_UNSUPPORTED;
	}
	struct aam_buf b;
	aam_buf_init(&b, 8192);
	char msg[AGENT_TPM_MSG_MAX] = "";
	int rc = agent_tpm_ek_cert(a->tpm, &b, msg, sizeof(msg));
	if (rc != AAM_OK) {
		agent_err(e, "tpm_error", "%s", msg[0] ? msg : aam_strerror(rc));
		aam_buf_uninit(&b);
		return rc;
	}
	*der = b.data; /* the buffer's storage, handed over */
	*len = b.len;
	return AAM_OK;
}

int
aam_agent_sign(struct aam_agent *a, const uint8_t digest[32], uint8_t sig[64])
{
	if (a == NULL || digest == NULL || sig == NULL)
		return AAM_E_INVAL;
	char msg[AGENT_TPM_MSG_MAX] = "";
	int rc = a->method == AGENT_METHOD_TPM
	                 ? agent_tpm_sign(a->tpm, digest, sig, msg, sizeof(msg))
	                 : agent_p11_sign(a->p11, digest, sig, msg, sizeof(msg));
	if (rc != AAM_OK)
		aam_log(AAM_LOG_WARN, "agent.sign_failed", AAM_F_STR("method", aam_agent_method(a)),
		        AAM_F_STR("why", msg), AAM_F_ERR(rc));
	return rc;
}

static int
signer_cb(void *ctx, const uint8_t digest[AAM_JOSE_DIGEST_LEN], uint8_t sig_rs[AAM_JOSE_SIG_LEN])
{
	return aam_agent_sign(ctx, digest, sig_rs);
}

void
agent_signer(struct aam_agent *a, struct aam_jose_signer *s)
{
	s->sign = signer_cb;
	s->ctx = a;
	s->kid = NULL;
}

/*
 * A token response is only useful if it is bound to our key: the "jkt"
 * member and the token's own cnf.jkt must both be our thumbprint, and the
 * token must be for our identity.  (Its signature is the gateway's to
 * check; the agent does not need the JWKS.)
 */
static int
check_token(struct aam_agent *a, const json_t *resp, struct aam_agent_token *out,
            struct aam_agent_error *e)
{
	const char *tok = json_string_value(json_object_get(resp, "token"));
	const char *jkt = json_string_value(json_object_get(resp, "jkt"));
	const char *typ = json_string_value(json_object_get(resp, "token_type"));
	const json_t *ei = json_object_get(resp, "expires_in");
	if (tok == NULL || jkt == NULL || !json_is_integer(ei) || json_integer_value(ei) <= 0 ||
	    json_integer_value(ei) > MAX_TOKEN_LIFE || (typ != NULL && strcmp(typ, "DPoP") != 0)) {
		agent_err(e, "attest_protocol", "the token response misses a field");
		return AAM_E_PROTO;
	}
	struct aam_jose_jws jws;
	enum aam_jose_reason why = AAM_JOSE_R_NONE;
	if (aam_jose_jws_parse(tok, strlen(tok), &jws, &why) != AAM_OK) {
		agent_err(e, "attest_protocol", "the token does not parse (%s)",
		          aam_jose_reason_str(why));
		return AAM_E_PROTO;
	}
	const char *cnf = NULL;
	const char *sub = json_string_value(json_object_get(jws.claims, "sub"));
	int rc = AAM_OK;
	if (aam_jose_claims_cnf_jkt(jws.claims, &cnf) != AAM_OK || strcmp(cnf, a->jwk.jkt) != 0 ||
	    strcmp(jkt, a->jwk.jkt) != 0) {
		agent_err(e, "token_not_bound", "the token is not bound to this agent's key");
		rc = AAM_E_PROTO;
	} else if (sub == NULL || strcmp(sub, a->spiffe_id) != 0) {
		agent_err(e, "attest_protocol", "the token names another identity");
		rc = AAM_E_PROTO;
	}
	if (rc == AAM_OK) {
		out->token = strdup(tok);
		out->spiffe_id = strdup(sub);
		snprintf(out->jkt, sizeof(out->jkt), "%s", a->jwk.jkt);
		out->expires_in = json_integer_value(ei);
		if (out->token == NULL || out->spiffe_id == NULL) {
			aam_agent_token_uninit(out);
			agent_err(e, "internal", "out of memory");
			rc = AAM_E_NOMEM;
		}
	}
	aam_jose_jws_uninit(&jws);
	return rc;
}

int
aam_agent_attest(struct aam_agent *a, struct aam_agent_token *out, struct aam_agent_error *e)
{
	if (e != NULL)
		memset(e, 0, sizeof(*e));
	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (a == NULL || out == NULL)
		return AAM_E_INVAL;
	if (a->attest_url == NULL || a->spiffe_id == NULL || a->audience == NULL) {
		agent_err(e, "invalid_config",
		          "attesting needs attest_url, spiffe_id and audience");
		return AAM_E_INVAL;
	}
	int64_t t0 = (int64_t)time(NULL);
	json_t *resp = NULL;
	pthread_mutex_lock(&a->attest_mu);
	int rc = a->method == AGENT_METHOD_TPM ? agent_attest_tpm(a, &resp, e)
	                                       : agent_attest_pkcs11(a, &resp, e);
	pthread_mutex_unlock(&a->attest_mu);
	if (rc == AAM_OK) {
		rc = check_token(a, resp, out, e);
		out->issued_at = t0;
		out->expires_at = t0 + out->expires_in;
	}
	if (resp != NULL) {
		json_t *t = json_object_get(resp, "token");
		if (json_is_string(t))
			aam_wipe((void *)(uintptr_t)json_string_value(t), json_string_length(t));
		json_decref(resp);
	}
	if (rc == AAM_OK)
		aam_log(AAM_LOG_INFO, "agent.token", AAM_F_STR("method", aam_agent_method(a)),
		        AAM_F_STR("spiffe_id", out->spiffe_id), AAM_F_STR("jkt", out->jkt),
		        AAM_F_INT("expires_in", out->expires_in));
	else
		aam_log(AAM_LOG_WARN, "agent.attest_failed",
		        AAM_F_STR("method", aam_agent_method(a)),
		        AAM_F_STR("code", e != NULL ? e->code : "?"),
		        AAM_F_STR("why", e != NULL ? e->message : ""));
	return rc;
}

void
aam_agent_token_uninit(struct aam_agent_token *t)
{
	if (t == NULL)
		return;
	if (t->token != NULL) {
		aam_wipe(t->token, strlen(t->token));
		free(t->token);
	}
	free(t->spiffe_id);
	memset(t, 0, sizeof(*t));
}

int
aam_agent_dpop(struct aam_agent *a, const char *method, const char *url, const char *access_token,
               const char *nonce, char **out)
{
	if (a == NULL || method == NULL || url == NULL || out == NULL)
		return AAM_E_INVAL;
	struct aam_jose_signer s;
	agent_signer(a, &s);
	struct aam_dpop_request req = {
	        .htm = method, .htu = url, .access_token = access_token, .nonce = nonce};
	return aam_dpop_create(&s, &a->jwk, &req, out);
}
