/*
 * Checking the AAM keys at start, and signing: every ECDSA signature is
 * verified against the public key before it leaves the vault.
 */
#include "aam/err.h"
#include "common/log.h"
#include "vault/store.h"
#include "vault/store_int.h"

#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

struct keydef {
	const char *label;
	CK_OBJECT_CLASS cls; /* the class whose attributes are checked */
	CK_KEY_TYPE type;
};

static const struct keydef KEYS[4] = {
        {VAULT_LABEL_ISSUER, CKO_PRIVATE_KEY, CKK_EC},
        {VAULT_LABEL_AUDIT, CKO_PRIVATE_KEY, CKK_EC},
        {VAULT_LABEL_SECRET_ENC, CKO_SECRET_KEY, CKK_AES},
        {VAULT_LABEL_FINGERPRINT, CKO_SECRET_KEY, CKK_GENERIC_SECRET},
};

/* ---- Signatures ------------------------------------------------------- */

/* A context ready to verify with PKEY; NULL when OpenSSL cannot make one. */
static EVP_PKEY_CTX *
verify_ctx_new(EVP_PKEY *pkey)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pkey, NULL);
	if (ctx != NULL && EVP_PKEY_verify_init(ctx) != 1) {
		EVP_PKEY_CTX_free(ctx);
		ctx = NULL;
	}
	return ctx;
}

/*
 * A verification context for key ID's current public key PKEY: a spare
 * one when there is one, else a new one.  Spares made for an earlier key
 * (before a rotation) are freed on the way.
 */
static EVP_PKEY_CTX *
verify_ctx_get(struct vault_store *s, enum vault_key_id id, EVP_PKEY *pkey)
{
	EVP_PKEY_CTX *ctx = NULL, *stale[VAULT_VERIFY_SPARE];
	size_t nstale = 0, keep = 0;
	pthread_mutex_lock(&s->verify_lock);
	EVP_PKEY_CTX **spare = s->verify_spare[id];
	for (size_t i = 0; i < s->nverify_spare[id]; i++) {
		if (EVP_PKEY_CTX_get0_pkey(spare[i]) != pkey)
			stale[nstale++] = spare[i];
		else
			spare[keep++] = spare[i];
	}
	if (keep > 0)
		ctx = spare[--keep];
	s->nverify_spare[id] = keep;
	pthread_mutex_unlock(&s->verify_lock);
	for (size_t i = 0; i < nstale; i++)
		EVP_PKEY_CTX_free(stale[i]);
	return ctx != NULL ? ctx : verify_ctx_new(pkey);
}

/* Keeps CTX for the next signature with key ID, or frees it if enough are kept. */
static void
verify_ctx_put(struct vault_store *s, enum vault_key_id id, EVP_PKEY_CTX *ctx)
{
	if (ctx == NULL)
		return;
	pthread_mutex_lock(&s->verify_lock);
	if (s->nverify_spare[id] < VAULT_VERIFY_SPARE) {
		s->verify_spare[id][s->nverify_spare[id]++] = ctx;
		ctx = NULL;
	}
	pthread_mutex_unlock(&s->verify_lock);
	EVP_PKEY_CTX_free(ctx);
}

void
vault_verify_spares_clear(struct vault_store *s)
{
	pthread_mutex_lock(&s->verify_lock);
	for (size_t id = 0; id < 2; id++) {
		for (size_t i = 0; i < s->nverify_spare[id]; i++)
			EVP_PKEY_CTX_free(s->verify_spare[id][i]);
		s->nverify_spare[id] = 0;
	}
	pthread_mutex_unlock(&s->verify_lock);
}

/*
 * Writes the DER INTEGER for the 32-byte big-endian unsigned V at OUT
 * (room for 35 bytes): shortest form, with a 0x00 byte in front when the
 * top bit is set so the value stays positive.  Returns its length.
 */
static size_t
der_uint256(uint8_t *out, const uint8_t v[32])
{
	size_t skip = 0;
	while (skip < 31 && v[skip] == 0)
		skip++;
	size_t n = 32 - skip, o = 0;
	bool pad = (v[skip] & 0x80) != 0;
	out[o++] = 0x02;
	out[o++] = (uint8_t)(n + (pad ? 1 : 0));
	if (pad)
		out[o++] = 0x00;
	memcpy(out + o, v + skip, n);
	return o + n;
}

/*
 * Verifies the raw r||s signature RS over DIGEST with CTX (from
 * verify_ctx_*).  The DER form OpenSSL wants (RFC 3279 Ecdsa-Sig-Value,
 * at most 72 bytes, so every length fits in one byte) is built on the
 * stack: no BIGNUM or heap allocation per signature.
 */
static bool
ecdsa_verify_raw(EVP_PKEY_CTX *ctx, const uint8_t digest[32], const uint8_t rs[64])
{
	if (ctx == NULL)
		return false;
	uint8_t der[2 + 2 * 35];
	size_t n = 2;
	n += der_uint256(der + n, rs);
	n += der_uint256(der + n, rs + 32);
	der[0] = 0x30;
	der[1] = (uint8_t)(n - 2);
	/* An initialised context verifies any number of times: ECDSA keeps no state in it. */
	return EVP_PKEY_verify(ctx, der, n, digest, 32) == 1;
}

/*
 * SoftHSM2 has been reported to produce an occasional invalid ECDSA
 * signature; a bad signature must never leave the vault (it would be a
 * token nobody can verify, or a checkpoint that fails an audit), so each
 * one is checked against the public key and signing retried once.
 */
struct sign_ctx {
	const uint8_t *digest;
	uint8_t *sig;
};

static int
sign_fn(struct vault_store *s, CK_OBJECT_HANDLE h, void *vctx)
{
	struct sign_ctx *c = vctx;
	return aam_p11_sign_ecdsa_p256(s->p11, h, c->digest, c->sig);
}

/* Signs DIGEST with the private key LABEL and checks the result with VCTX. */
static int
sign_verified(struct vault_store *s, const char *label, EVP_PKEY_CTX *vctx,
              const uint8_t digest[32], uint8_t sig[64])
{
	struct sign_ctx c = {.digest = digest, .sig = sig};
	for (int attempt = 0; attempt < 2; attempt++) {
		int rc = vault_with_key(s, CKO_PRIVATE_KEY, label, sign_fn, &c);
		if (rc != AAM_OK)
			return rc;
		if (ecdsa_verify_raw(vctx, digest, sig))
			return AAM_OK;
		aam_log(AAM_LOG_WARN, "vault.sign_bad_signature", AAM_F_STR("key", label),
		        AAM_F_INT("attempt", attempt + 1));
	}
	memset(sig, 0, 64);
	return AAM_E_CRYPTO;
}

int
vault_sign(struct vault_store *s, enum vault_key_id id, const uint8_t digest[32],
           uint8_t sig_rs[64])
{
	if (s == NULL || digest == NULL || sig_rs == NULL || !vault_key_id_valid(id))
		return AAM_E_INVAL;
	pthread_mutex_lock(&s->lock);
	if (!s->ready) {
		pthread_mutex_unlock(&s->lock);
		return AAM_E_CONFIG;
	}
	EVP_PKEY *pkey = s->ec[id].pkey;
	EVP_PKEY_up_ref(pkey);
	pthread_mutex_unlock(&s->lock);
	EVP_PKEY_CTX *vctx = verify_ctx_get(s, id, pkey);
	int rc = sign_verified(s, vault_key_label(id), vctx, digest, sig_rs);
	verify_ctx_put(s, id, vctx);
	EVP_PKEY_free(pkey);
	return rc;
}

/* ---- Check at start ---------------------------------------------------- */

struct boolcheck {
	CK_ATTRIBUTE_TYPE type;
	bool want;
	const char *name;
	const char *why;
};

static const struct boolcheck CHECKS[] = {
        {CKA_TOKEN, true, "CKA_TOKEN", "it is a session object"},
        {CKA_PRIVATE, true, "CKA_PRIVATE", "it is readable without login"},
        {CKA_SENSITIVE, true, "CKA_SENSITIVE", "its value can be read"},
        {CKA_EXTRACTABLE, false, "CKA_EXTRACTABLE", "it can be exported"},
        {CKA_LOCAL, true, "CKA_LOCAL", "it was imported, not generated on the token"},
        {CKA_NEVER_EXTRACTABLE, true, "CKA_NEVER_EXTRACTABLE",
         "it was extractable once and may exist outside the token"},
        {CKA_ALWAYS_SENSITIVE, true, "CKA_ALWAYS_SENSITIVE",
         "its value was readable once and may exist outside the token"},
};

static int
check_ulong(struct vault_store *s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, CK_ULONG want)
{
	CK_ULONG v = 0;
	size_t n = 0;
	int rc = aam_p11_get_attr(s->p11, h, type, &v, sizeof(v), &n);
	if (rc != AAM_OK)
		return rc;
	return n == sizeof(v) && v == want ? AAM_OK : AAM_E_INVAL;
}

static int
check_ec_pair(struct vault_store *s, const char *label, CK_OBJECT_HANDLE priv, char *err,
              size_t errlen)
{
	uint8_t params[32];
	size_t n = 0;
	int rc = aam_p11_get_attr(s->p11, priv, CKA_EC_PARAMS, params, sizeof(params), &n);
	if (rc != AAM_OK || n != sizeof(vault_p256_params) ||
	    memcmp(params, vault_p256_params, n) != 0) {
		vault_errf(err, errlen, "key %s is refused: it is not an EC P-256 key", label);
		return AAM_E_INVAL;
	}
	CK_OBJECT_HANDLE pub;
	rc = aam_p11_find(s->p11, CKO_PUBLIC_KEY, label, &pub);
	if (rc != AAM_OK) {
		vault_errf(err, errlen, "key %s is refused: %s public key on the token", label,
		           rc == AAM_E_EXISTS ? "more than one" : "no");
		return rc == AAM_E_EXISTS ? AAM_E_INVAL : rc;
	}
	uint8_t point[65];
	rc = aam_p11_ec_point(s->p11, pub, point);
	struct vault_pubkey pk;
	vault_pubkey_from_point(point, &pk);
	const unsigned char *p = pk.spki_der;
	EVP_PKEY *pkey = rc == AAM_OK ? d2i_PUBKEY(NULL, &p, (long)pk.spki_len) : NULL;
	if (pkey == NULL) {
		vault_errf(err, errlen, "key %s is refused: its public key is not a P-256 point",
		           label);
		return AAM_E_INVAL;
	}
	/* The pair must match: a swapped public key would publish a key nobody signs with. */
	uint8_t digest[32], sig[64];
	RAND_bytes(digest, sizeof(digest));
	EVP_PKEY_CTX *vctx = verify_ctx_new(pkey);
	rc = sign_verified(s, label, vctx, digest, sig);
	EVP_PKEY_CTX_free(vctx);
	EVP_PKEY_free(pkey);
	if (rc != AAM_OK) {
		vault_errf(err, errlen,
		           "key %s is refused: a test signature does not verify with its public "
		           "key (%s)",
		           label, aam_strerror(rc));
		return rc == AAM_E_CRYPTO ? AAM_E_INVAL : rc;
	}
	return AAM_OK;
}

static int
check_one(struct vault_store *s, const struct keydef *k, CK_OBJECT_HANDLE h, char *err,
          size_t errlen)
{
	for (size_t i = 0; i < sizeof(CHECKS) / sizeof(CHECKS[0]); i++) {
		bool v = false;
		int rc = aam_p11_get_bool(s->p11, h, CHECKS[i].type, &v);
		if (rc != AAM_OK) {
			vault_errf(err, errlen, "key %s is refused: cannot read %s (%s)", k->label,
			           CHECKS[i].name, aam_strerror(rc));
			return rc == AAM_E_NOTFOUND ? AAM_E_INVAL : rc;
		}
		if (v != CHECKS[i].want) {
			vault_errf(err, errlen,
			           "key %s is refused: %s is %s (%s); AAM keys must be generated "
			           "on the token by aamctl keys init",
			           k->label, CHECKS[i].name, v ? "true" : "false", CHECKS[i].why);
			return AAM_E_INVAL;
		}
	}
	if (check_ulong(s, h, CKA_KEY_TYPE, k->type) != AAM_OK) {
		vault_errf(err, errlen, "key %s is refused: wrong key type", k->label);
		return AAM_E_INVAL;
	}
	if (k->type == CKK_EC)
		return check_ec_pair(s, k->label, h, err, errlen);
	if (check_ulong(s, h, CKA_VALUE_LEN, 32) != AAM_OK) {
		vault_errf(err, errlen, "key %s is refused: it is not 256 bits long", k->label);
		return AAM_E_INVAL;
	}
	return AAM_OK;
}

int
vault_keys_check(struct vault_store *s, char *err, size_t errlen)
{
	const char *missing = NULL;
	for (size_t i = 0; i < sizeof(KEYS) / sizeof(KEYS[0]); i++) {
		CK_OBJECT_HANDLE h;
		int rc = aam_p11_find(s->p11, KEYS[i].cls, KEYS[i].label, &h);
		if (rc == AAM_E_NOTFOUND) {
			if (missing == NULL)
				missing = KEYS[i].label;
			continue;
		}
		if (rc == AAM_E_EXISTS) {
			vault_errf(err, errlen,
			           "key %s is refused: more than one object on the token carries "
			           "its label",
			           KEYS[i].label);
			return AAM_E_INVAL;
		}
		if (rc != AAM_OK) {
			vault_errf(err, errlen, "key %s: lookup failed (%s)", KEYS[i].label,
			           aam_strerror(rc));
			return rc;
		}
		rc = check_one(s, &KEYS[i], h, err, errlen);
		if (rc != AAM_OK) {
			aam_log(AAM_LOG_ERROR, "vault.key_refused",
			        AAM_F_STR("key", KEYS[i].label));
			return rc;
		}
	}
	if (missing != NULL) {
		vault_errf(err, errlen,
		           "key %s is missing: the token holds only some of the AAM keys (an "
		           "interrupted keys init?); remove the other aam-* keys and run aamctl "
		           "keys init again",
		           missing);
		return AAM_E_NOTFOUND;
	}
	return AAM_OK;
}

int
vault_keys_count(struct vault_store *s, size_t *n, const char **missing)
{
	*n = 0;
	*missing = NULL;
	for (size_t i = 0; i < sizeof(KEYS) / sizeof(KEYS[0]); i++) {
		CK_OBJECT_HANDLE h;
		int rc = aam_p11_find(s->p11, KEYS[i].cls, KEYS[i].label, &h);
		if (rc == AAM_OK || rc == AAM_E_EXISTS) {
			(*n)++;
		} else if (rc == AAM_E_NOTFOUND) {
			if (*missing == NULL)
				*missing = KEYS[i].label;
		} else {
			return rc;
		}
	}
	return AAM_OK;
}
