/*
 * SIGN and PUBKEY through aam-vault.  See vault.h.
 */
#include "attest/vault.h"
#include "common/b64.h"
#include "common/buf.h"
#include "common/ipc.h"
#include "common/log.h"
#include "vault/proto.h"
#include "aam/err.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

/* A connection with a reference count, so a reconnect never frees a client in use. */
struct conn {
	struct aam_ipc_client *c;
	unsigned refs;
};

struct attest_vault {
	pthread_mutex_t mu;
	char *path;
	struct conn *cur;
};

int
attest_vault_new(const char *socket_path, struct attest_vault **out)
{
	if (socket_path == NULL || out == NULL)
		return AAM_E_INVAL;
	struct attest_vault *v = calloc(1, sizeof(*v));
	if (v == NULL || (v->path = strdup(socket_path)) == NULL) {
		free(v);
		return AAM_E_NOMEM;
	}
	pthread_mutex_init(&v->mu, NULL);
	*out = v;
	return AAM_OK;
}

static void
conn_put_locked(struct conn *k)
{
	if (k != NULL && --k->refs == 0) {
		aam_ipc_client_free(k->c);
		free(k);
	}
}

void
attest_vault_free(struct attest_vault *v)
{
	if (v == NULL)
		return;
	pthread_mutex_lock(&v->mu);
	conn_put_locked(v->cur);
	v->cur = NULL;
	pthread_mutex_unlock(&v->mu);
	pthread_mutex_destroy(&v->mu);
	free(v->path);
	free(v);
}

/* A usable connection (reconnecting when the last one died), with a reference. */
static int
conn_get(struct attest_vault *v, struct conn **out)
{
	int rc = AAM_OK;
	pthread_mutex_lock(&v->mu);
	if (v->cur != NULL && aam_ipc_client_status(v->cur->c) != AAM_OK) {
		conn_put_locked(v->cur);
		v->cur = NULL;
	}
	if (v->cur == NULL) {
		struct conn *k = calloc(1, sizeof(*k));
		if (k == NULL) {
			rc = AAM_E_NOMEM;
		} else if ((rc = aam_ipc_client_connect(v->path, ATTEST_VAULT_TIMEOUT_MS, &k->c)) !=
		           AAM_OK) {
			free(k);
			aam_log(AAM_LOG_WARN, "attest.vault_unreachable",
			        AAM_F_STR("socket", v->path), AAM_F_ERR(rc));
			rc = AAM_E_BUSY;
		} else {
			k->refs = 1;
			v->cur = k;
		}
	}
	if (rc == AAM_OK) {
		v->cur->refs++;
		*out = v->cur;
	}
	pthread_mutex_unlock(&v->mu);
	return rc;
}

static void
conn_put(struct attest_vault *v, struct conn *k)
{
	pthread_mutex_lock(&v->mu);
	conn_put_locked(k);
	pthread_mutex_unlock(&v->mu);
}

/* One request/reply; a lost connection is retried once on a fresh one. */
static int
vault_call(struct attest_vault *v, uint16_t type, const struct aam_buf *req, struct aam_buf *reply)
{
	int rc = AAM_E_CLOSED;
	for (int attempt = 0; attempt < 2 && rc == AAM_E_CLOSED; attempt++) {
		struct conn *k = NULL;
		rc = conn_get(v, &k);
		if (rc != AAM_OK)
			return rc;
		struct aam_ipc_hdr h;
		aam_buf_reset(reply);
		rc = aam_ipc_call(k->c, type, req->data, req->len, ATTEST_VAULT_TIMEOUT_MS, &h,
		                  reply);
		conn_put(v, k);
		if (rc == AAM_OK && (h.flags & AAM_IPC_F_ERROR) != 0)
			rc = AAM_E_PROTO; /* an error reply always carries a non-zero code */
	}
	if (rc == AAM_E_CLOSED || rc == AAM_E_TIMEOUT)
		rc = AAM_E_BUSY;
	return rc;
}

static int
vault_sign(void *ctx, const uint8_t digest[AAM_JOSE_DIGEST_LEN], uint8_t sig_rs[AAM_JOSE_SIG_LEN])
{
	struct attest_vault *v = ctx;
	struct aam_buf req, reply;
	aam_buf_init(&req, 256);
	aam_buf_init(&reply, 1024);
	aam_ipc_put_u8(&req, VAULT_IPC_KEY_ISSUER);
	aam_ipc_put_str(&req, ""); /* the current key: the issuer checks which one signed */
	aam_ipc_put_bytes(&req, digest, AAM_JOSE_DIGEST_LEN);
	int rc = aam_buf_failed(&req) ? req.err : vault_call(v, AAM_IPC_SIGN, &req, &reply);
	if (rc == AAM_OK) {
		struct aam_ipc_reader r;
		char *kid = NULL;
		const uint8_t *sig = NULL;
		aam_ipc_reader_init(&r, reply.data, reply.len);
		aam_ipc_get_str(&r, VAULT_IPC_MAX_KID, &kid);
		aam_ipc_get_fixed(&r, AAM_JOSE_SIG_LEN, &sig);
		rc = aam_ipc_reader_end(&r);
		if (rc == AAM_OK)
			memcpy(sig_rs, sig, AAM_JOSE_SIG_LEN);
		else
			rc = AAM_E_PROTO;
		free(kid);
	}
	aam_buf_uninit(&req);
	aam_buf_uninit(&reply);
	return rc;
}

int
attest_vault_signer(struct attest_vault *v, struct aam_jose_signer *out)
{
	if (v == NULL || out == NULL)
		return AAM_E_INVAL;
	out->sign = vault_sign;
	out->ctx = v;
	out->kid = NULL;
	return AAM_OK;
}

/* One PUBKEY entry as a JWK, after checking that point, SPKI and kid agree. */
static int
pubkey_entry(const char *kid, const uint8_t point[65], const uint8_t *spki, size_t spki_len,
             struct aam_jwk *out)
{
	if (point[0] != 0x04)
		return AAM_E_PROTO;
	int rc = aam_jwk_from_xy(point + 1, point + 33, kid, out);
	if (rc != AAM_OK)
		return AAM_E_PROTO;
	const unsigned char *q = spki;
	EVP_PKEY *pk = d2i_PUBKEY(NULL, &q, (long)spki_len);
	char want[AAM_JWK_THUMBPRINT_LEN + 1];
	bool ok = pk != NULL && q == spki + spki_len && EVP_PKEY_eq(pk, out->pkey) == 1 &&
	          attest_kid_of(pk, want) == AAM_OK && strcmp(want, kid) == 0;
	EVP_PKEY_free(pk);
	if (!ok) {
		aam_jwk_uninit(out);
		return AAM_E_PROTO;
	}
	return AAM_OK;
}

int
attest_vault_pubkeys(void *ctx, struct aam_jwks *out)
{
	struct attest_vault *v = ctx;
	if (v == NULL || out == NULL)
		return AAM_E_INVAL;
	struct aam_buf req, reply;
	aam_buf_init(&req, 16);
	aam_buf_init(&reply, 64 * 1024);
	aam_ipc_put_u8(&req, VAULT_IPC_KEY_ISSUER);
	int rc = aam_buf_failed(&req) ? req.err : vault_call(v, AAM_IPC_PUBKEY, &req, &reply);
	if (rc == AAM_OK) {
		struct aam_ipc_reader r;
		uint32_t n = 0;
		aam_ipc_reader_init(&r, reply.data, reply.len);
		aam_ipc_get_u32(&r, &n);
		if (r.err != AAM_OK || n == 0 || n > VAULT_IPC_MAX_PUBKEYS)
			rc = AAM_E_PROTO;
		for (uint32_t i = 0; rc == AAM_OK && i < n; i++) {
			char *kid = NULL;
			const uint8_t *point = NULL, *spki = NULL;
			size_t spki_len = 0;
			aam_ipc_get_str(&r, VAULT_IPC_MAX_KID, &kid);
			aam_ipc_get_fixed(&r, 65, &point);
			aam_ipc_get_bytes(&r, 1024, &spki, &spki_len);
			struct aam_jwk k;
			if (r.err != AAM_OK || kid == NULL) {
				rc = AAM_E_PROTO;
			} else if ((rc = pubkey_entry(kid, point, spki, spki_len, &k)) == AAM_OK) {
				rc = aam_jwks_add(out, &k);
				aam_jwk_uninit(&k);
			}
			free(kid);
		}
		if (rc == AAM_OK && aam_ipc_reader_end(&r) != AAM_OK)
			rc = AAM_E_PROTO;
	}
	aam_buf_uninit(&req);
	aam_buf_uninit(&reply);
	return rc;
}

int
attest_vault_keysrc(struct attest_vault *v, struct attest_keysrc *out)
{
	if (v == NULL || out == NULL)
		return AAM_E_INVAL;
	memset(out, 0, sizeof(*out));
	attest_vault_signer(v, &out->signer);
	out->pubkeys = attest_vault_pubkeys;
	out->pubkeys_ctx = v;
	return AAM_OK;
}
