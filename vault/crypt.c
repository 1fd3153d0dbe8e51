/*
 * Secret values on the token.
 *
 * Encrypted types: the value is encrypted inside the token with
 * aam-secret-enc and the ciphertext is stored on the token as a private
 * CKO_DATA object.  Blob layout (version 1):
 *
 *   01 | alg | IV | ciphertext [| MAC]
 *   alg 01: AES-256-GCM, 12-byte IV, ciphertext ends with a 16-byte tag
 *   alg 02: AES-256-CBC-PAD, 16-byte IV, then HMAC-SHA256 (32 bytes)
 *           encrypt-then-MAC for tokens without GCM (tpm2-pkcs11)
 *
 * The additional data (GCM) or MAC input (CBC) binds the blob to the
 * secret's name, version and type, so ciphertext objects cannot be swapped
 * between secrets or versions.  The MAC is computed inside the token with
 * aam-fingerprint over "aam-etm-v1" NUL || AAD || blob, a domain separation
 * prefix.  Fingerprints are MACs of raw values under the same key, so an
 * admin could obtain the MAC of a chosen string by storing it as a secret;
 * that gains nothing, since whoever may store secrets needs no forgery, and
 * a forged blob still decrypts to noise without the AES key.
 *
 * HMAC types: the value becomes a CKK_GENERIC_SECRET key (sensitive, not
 * extractable, sign only).  C_CreateObject is the only way to import a
 * value into a PKCS#11 token; the value exists in vault memory only in
 * locked pages during that call and is wiped right after.
 */
#include "aam/err.h"
#include "common/log.h"
#include "vault/store.h"
#include "vault/store_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#define BLOB_V1      0x01
#define ALG_GCM      0x01
#define ALG_CBC_HMAC 0x02
#define GCM_IV_LEN   12
#define GCM_TAG_LEN  16
#define CBC_IV_LEN   16
#define MAC_LEN      32
#define AAD_MAX      (16 + 128 + 1 + 8 + 1)

static const char AAD_PREFIX[] = "aam-secret-v1";
static const char ETM_PREFIX[] = "aam-etm-v1";

static const CK_BBOOL T = CK_TRUE, F = CK_FALSE;
#define BOOL_ATTR(type, v)                                                                         \
	{                                                                                          \
		(type), (void *)(uintptr_t) & (v), sizeof(CK_BBOOL)                                \
	}

int
vault_secret_label(const char *name, int64_t version, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "aam-secret/%s/v%" PRId64, name, version);
	return n > 0 && (size_t)n < outlen ? AAM_OK : AAM_E_TOOBIG;
}

static size_t
build_aad(uint8_t aad[AAD_MAX], const char *name, int64_t version, enum vault_secret_type type)
{
	size_t o = 0, nl = strlen(name);
	if (nl > 127)
		nl = 127;
	memcpy(aad, AAD_PREFIX, sizeof(AAD_PREFIX)); /* with its NUL */
	o += sizeof(AAD_PREFIX);
	memcpy(aad + o, name, nl);
	o += nl;
	aad[o++] = 0;
	for (int i = 7; i >= 0; i--)
		aad[o++] = (uint8_t)((uint64_t)version >> (i * 8));
	aad[o++] = (uint8_t)type;
	return o;
}

struct cipher_ctx {
	CK_OBJECT_HANDLE key;
	CK_MECHANISM mech;
	bool decrypt;
	const uint8_t *in;
	size_t inlen;
	uint8_t *out;
	size_t outcap;
	CK_ULONG outlen;
	CK_RV op_rv; /* of C_Encrypt / C_Decrypt, once the Init succeeded */
};

static CK_RV
cipher_op(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, void *vctx)
{
	struct cipher_ctx *c = vctx;
	CK_RV rv = c->decrypt ? f->C_DecryptInit(s, &c->mech, c->key)
	                      : f->C_EncryptInit(s, &c->mech, c->key);
	if (rv != CKR_OK)
		return rv;
	c->outlen = c->outcap;
	CK_BYTE_PTR in = (CK_BYTE_PTR)(uintptr_t)c->in;
	c->op_rv = c->decrypt ? f->C_Decrypt(s, in, c->inlen, c->out, &c->outlen)
	                      : f->C_Encrypt(s, in, c->inlen, c->out, &c->outlen);
	return c->op_rv;
}

struct hmac_ctx {
	const uint8_t *data;
	size_t len;
	uint8_t *mac;
};

static int
hmac_fn(struct vault_store *s, CK_OBJECT_HANDLE h, void *vctx)
{
	struct hmac_ctx *c = vctx;
	return aam_p11_hmac_sha256(s->p11, h, c->data, c->len, c->mac);
}

/* HMAC-SHA256 under aam-fingerprint, inside the token. */
static int
fp_hmac(struct vault_store *s, const uint8_t *data, size_t len, uint8_t mac[32])
{
	struct hmac_ctx c = {.data = data, .len = len, .mac = mac};
	return vault_with_key(s, CKO_SECRET_KEY, VAULT_LABEL_FINGERPRINT, hmac_fn, &c);
}

static int
cipher_fn(struct vault_store *s, CK_OBJECT_HANDLE h, void *vctx)
{
	struct cipher_ctx *c = vctx;
	c->key = h;
	return aam_p11_err(aam_p11_run(s->p11, cipher_op, c));
}

static int
run_cipher(struct vault_store *s, struct cipher_ctx *c)
{
	return vault_with_key(s, CKO_SECRET_KEY, VAULT_LABEL_SECRET_ENC, cipher_fn, c);
}

/* HMAC-SHA256 under aam-fingerprint of ETM_PREFIX || AAD || BODY. */
static int
etm_mac(struct vault_store *s, const uint8_t *aad, size_t aadlen, const uint8_t *body,
        size_t bodylen, uint8_t mac[MAC_LEN])
{
	size_t n = sizeof(ETM_PREFIX) + aadlen + bodylen;
	uint8_t *in = malloc(n);
	if (in == NULL)
		return AAM_E_NOMEM;
	memcpy(in, ETM_PREFIX, sizeof(ETM_PREFIX));
	memcpy(in + sizeof(ETM_PREFIX), aad, aadlen);
	memcpy(in + sizeof(ETM_PREFIX) + aadlen, body, bodylen);
	int rc = fp_hmac(s, in, n, mac);
	free(in);
	return rc;
}

int
vault_crypt_encrypt(struct vault_store *s, const char *name, int64_t version,
                    enum vault_secret_type type, const uint8_t *value, size_t len, uint8_t **blob,
                    size_t *bloblen)
{
	*blob = NULL;
	*bloblen = 0;
	if (len == 0 || len > VAULT_VALUE_MAX)
		return AAM_E_INVAL;
	uint8_t aad[AAD_MAX];
	size_t aadlen = build_aad(aad, name, version, type);
	bool gcm = s->cipher == VAULT_CIPHER_AES_GCM;
	size_t ivlen = gcm ? GCM_IV_LEN : CBC_IV_LEN;
	size_t cap = 2 + ivlen + len + 16 + (gcm ? 0 : MAC_LEN);
	uint8_t *b = malloc(cap);
	if (b == NULL)
		return AAM_E_NOMEM;
	b[0] = BLOB_V1;
	b[1] = gcm ? ALG_GCM : ALG_CBC_HMAC;
	uint8_t *iv = b + 2;
	int rc = aam_p11_random(s->p11, iv, ivlen);
	if (rc != AAM_OK) {
		free(b);
		return rc;
	}
	CK_GCM_PARAMS gp = {
	        .iv_ptr = iv,
	        .iv_len = GCM_IV_LEN,
	        .iv_bits = GCM_IV_LEN * 8,
	        .aad_ptr = aad,
	        .aad_len = aadlen,
	        .tag_bits = GCM_TAG_LEN * 8,
	};
	struct cipher_ctx c = {
	        .mech = gcm ? (CK_MECHANISM){CKM_AES_GCM, &gp, sizeof(gp)}
	                    : (CK_MECHANISM){CKM_AES_CBC_PAD, iv, CBC_IV_LEN},
	        .in = value,
	        .inlen = len,
	        .out = b + 2 + ivlen,
	        .outcap = len + 16,
	};
	rc = run_cipher(s, &c);
	size_t ctlen = c.outlen;
	if (rc == AAM_OK && gcm && ctlen != len + GCM_TAG_LEN)
		rc = AAM_E_HSM;
	if (rc == AAM_OK && !gcm && (ctlen == 0 || ctlen % 16 != 0 || ctlen > len + 16))
		rc = AAM_E_HSM;
	if (rc == AAM_OK && !gcm)
		rc = etm_mac(s, aad, aadlen, b, 2 + ivlen + ctlen, b + 2 + ivlen + ctlen);
	if (rc != AAM_OK) {
		free(b);
		return rc;
	}
	*blob = b;
	*bloblen = 2 + ivlen + ctlen + (gcm ? 0 : MAC_LEN);
	return AAM_OK;
}

int
vault_crypt_decrypt(struct vault_store *s, const char *name, int64_t version,
                    enum vault_secret_type type, const uint8_t *blob, size_t bloblen,
                    aam_secret **out)
{
	*out = NULL;
	if (bloblen < 2 || blob[0] != BLOB_V1 || (blob[1] != ALG_GCM && blob[1] != ALG_CBC_HMAC))
		return AAM_E_CRYPTO;
	bool gcm = blob[1] == ALG_GCM;
	size_t ivlen = gcm ? GCM_IV_LEN : CBC_IV_LEN;
	size_t minlen = 2 + ivlen + (gcm ? GCM_TAG_LEN + 1 : 16 + MAC_LEN);
	if (bloblen < minlen || bloblen > VAULT_BLOB_MAX)
		return AAM_E_CRYPTO;
	uint8_t aad[AAD_MAX];
	size_t aadlen = build_aad(aad, name, version, type);
	const uint8_t *iv = blob + 2;
	const uint8_t *ct = iv + ivlen;
	size_t ctlen = bloblen - 2 - ivlen - (gcm ? 0 : MAC_LEN);
	if (!gcm) {
		/* Encrypt-then-MAC: nothing is decrypted before the MAC checks out. */
		if (ctlen % 16 != 0)
			return AAM_E_CRYPTO;
		uint8_t mac[MAC_LEN];
		int rc = etm_mac(s, aad, aadlen, blob, 2 + ivlen + ctlen, mac);
		if (rc != AAM_OK)
			return rc;
		if (!aam_ct_equal(mac, ct + ctlen, MAC_LEN))
			return AAM_E_CRYPTO;
	}
	aam_secret *plain = aam_secret_new(ctlen);
	if (plain == NULL)
		return AAM_E_NOMEM;
	CK_GCM_PARAMS gp = {
	        .iv_ptr = (CK_BYTE_PTR)(uintptr_t)iv,
	        .iv_len = GCM_IV_LEN,
	        .iv_bits = GCM_IV_LEN * 8,
	        .aad_ptr = aad,
	        .aad_len = aadlen,
	        .tag_bits = GCM_TAG_LEN * 8,
	};
	struct cipher_ctx c = {
	        .mech = gcm ? (CK_MECHANISM){CKM_AES_GCM, &gp, sizeof(gp)}
	                    : (CK_MECHANISM){CKM_AES_CBC_PAD, (void *)(uintptr_t)iv, CBC_IV_LEN},
	        .decrypt = true,
	        .op_rv = CKR_OK,
	        .in = ct,
	        .inlen = ctlen,
	        .out = aam_secret_data(plain),
	        .outcap = ctlen,
	};
	int rc = run_cipher(s, &c);
	/*
	 * Modules report a failed GCM tag check or bad padding differently
	 * (SoftHSM2: CKR_GENERAL_ERROR); after a successful C_DecryptInit, any of
	 * these means the ciphertext does not authenticate.
	 */
	if (c.op_rv == CKR_ENCRYPTED_DATA_INVALID || c.op_rv == CKR_ENCRYPTED_DATA_LEN_RANGE ||
	    c.op_rv == CKR_GENERAL_ERROR || c.op_rv == CKR_FUNCTION_FAILED)
		rc = AAM_E_CRYPTO;
	if (rc == AAM_OK && (c.outlen == 0 || c.outlen > ctlen))
		rc = AAM_E_CRYPTO;
	if (rc == AAM_OK)
		rc = aam_secret_set_len(plain, c.outlen);
	if (rc != AAM_OK) {
		aam_secret_free(plain);
		return rc;
	}
	*out = plain;
	return AAM_OK;
}

int
vault_crypt_fingerprint(struct vault_store *s, const uint8_t *value, size_t len, char hex[65])
{
	uint8_t mac[32];
	int rc = fp_hmac(s, value, len, mac);
	if (rc != AAM_OK)
		return rc;
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < sizeof(mac); i++) {
		hex[2 * i] = digits[mac[i] >> 4];
		hex[2 * i + 1] = digits[mac[i] & 15];
	}
	hex[64] = '\0';
	return AAM_OK;
}

struct create_ctx {
	CK_ATTRIBUTE *t;
	CK_ULONG n;
	CK_OBJECT_HANDLE obj;
};

static CK_RV
create_op(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, void *vctx)
{
	struct create_ctx *c = vctx;
	return f->C_CreateObject(s, c->t, c->n, &c->obj);
}

/*
 * The key the token holds for an HMAC-type value K.  HMAC-SHA256 itself
 * replaces a key longer than the 64-byte block by SHA-256(K) and pads a
 * shorter one with zero bytes, so SHA-256(K) (for long keys) and K padded
 * with zeros to 32 bytes (for short ones) give exactly the same MACs as K.
 * Normalising this way keeps every value within the key sizes tokens accept
 * for CKM_SHA256_HMAC (SoftHSM2 refuses keys shorter than the hash).
 * SigV4 keys hold "AWS4" + secret, so the date key is derived in the token.
 */
static aam_secret *
hmac_key_material(enum vault_secret_type type, const uint8_t *value, size_t len)
{
	size_t pre = type == VAULT_SECRET_AWS_SIGV4 ? 4 : 0;
	aam_secret *raw = aam_secret_new(pre + len);
	if (raw == NULL)
		return NULL;
	uint8_t *r = aam_secret_data(raw);
	memcpy(r, "AWS4", pre);
	memcpy(r + pre, value, len);
	size_t rl = pre + len;
	aam_secret *key = aam_secret_new(rl > 64 || rl < 32 ? 32 : rl);
	if (key == NULL) {
		aam_secret_free(raw);
		return NULL;
	}
	uint8_t *k = aam_secret_data(key);
	if (rl > 64) {
		unsigned hl = 0;
		if (EVP_Digest(r, rl, k, &hl, EVP_sha256(), NULL) != 1 || hl != 32) {
			aam_secret_free(raw);
			aam_secret_free(key);
			return NULL;
		}
	} else {
		memcpy(k, r, rl); /* the rest of a short key stays zero */
	}
	aam_secret_free(raw);
	return key;
}

int
vault_crypt_import_hmac(struct vault_store *s, const char *label, enum vault_secret_type type,
                        const uint8_t *value, size_t len, CK_OBJECT_HANDLE *out)
{
	aam_secret *key = hmac_key_material(type, value, len);
	if (key == NULL)
		return AAM_E_NOMEM;
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
	CK_ATTRIBUTE t[] = {
	        {CKA_CLASS, &cls, sizeof(cls)},
	        {CKA_KEY_TYPE, &kt, sizeof(kt)},
	        BOOL_ATTR(CKA_TOKEN, T),
	        BOOL_ATTR(CKA_PRIVATE, T),
	        BOOL_ATTR(CKA_SENSITIVE, T),
	        BOOL_ATTR(CKA_EXTRACTABLE, F),
	        BOOL_ATTR(CKA_SIGN, T),
	        BOOL_ATTR(CKA_VERIFY, F),
	        BOOL_ATTR(CKA_ENCRYPT, F),
	        BOOL_ATTR(CKA_DECRYPT, F),
	        BOOL_ATTR(CKA_WRAP, F),
	        BOOL_ATTR(CKA_UNWRAP, F),
	        BOOL_ATTR(CKA_DERIVE, F),
	        {CKA_LABEL, (void *)(uintptr_t)label, strlen(label)},
	        {CKA_VALUE, aam_secret_data(key), aam_secret_len(key)},
	};
	struct create_ctx c = {.t = t, .n = sizeof(t) / sizeof(t[0])};
	int rc = aam_p11_err(aam_p11_run(s->p11, create_op, &c));
	aam_secret_free(key);
	if (rc != AAM_OK)
		return rc;
	*out = c.obj;
	return AAM_OK;
}

int
vault_crypt_store_blob(struct vault_store *s, const char *label, const uint8_t *blob, size_t len,
                       CK_OBJECT_HANDLE *out)
{
	static const char app[] = "aam-vault";
	CK_OBJECT_CLASS cls = CKO_DATA;
	CK_ATTRIBUTE t[] = {
	        {CKA_CLASS, &cls, sizeof(cls)},
	        BOOL_ATTR(CKA_TOKEN, T),
	        BOOL_ATTR(CKA_PRIVATE, T),
	        {CKA_LABEL, (void *)(uintptr_t)label, strlen(label)},
	        {CKA_APPLICATION, (void *)(uintptr_t)app, sizeof(app) - 1},
	        {CKA_VALUE, (void *)(uintptr_t)blob, len},
	};
	struct create_ctx c = {.t = t, .n = sizeof(t) / sizeof(t[0])};
	int rc = aam_p11_err(aam_p11_run(s->p11, create_op, &c));
	if (rc != AAM_OK)
		return rc;
	*out = c.obj;
	return AAM_OK;
}

int
vault_crypt_destroy_label(struct vault_store *s, const char *label)
{
	CK_ATTRIBUTE t[] = {{CKA_LABEL, (void *)(uintptr_t)label, strlen(label)}};
	CK_OBJECT_HANDLE hs[16];
	size_t n = 0;
	int rc = aam_p11_find_all(s->p11, t, 1, hs, 16, &n);
	for (size_t i = 0; rc == AAM_OK && i < n; i++) {
		rc = aam_p11_destroy(s->p11, hs[i]);
		if (rc == AAM_E_NOTFOUND)
			rc = AAM_OK; /* already gone */
	}
	aam_p11_forget_label(s->p11, CKO_DATA, label);
	aam_p11_forget_label(s->p11, CKO_SECRET_KEY, label);
	return rc;
}
