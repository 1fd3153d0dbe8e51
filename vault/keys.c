/*
 * The four AAM keys: generation on the token, loading their public
 * halves, rotation of the signing keys and its crash recovery, and public
 * key export (JWK point, SPKI, PEM).  The start-up check and signing live
 * in keycheck.c.
 *
 * Keys are named by label and by the SHA-256 of their public key: CKA_ID
 * of both halves of a pair holds SHA-256(SubjectPublicKeyInfo DER), and
 * the JOSE kid is its base64url form.
 */
#include "aam/err.h"
#include "common/b64.h"
#include "common/log.h"
#include "vault/store.h"
#include "vault/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* DER of the prime256v1 OID: CKA_EC_PARAMS of a P-256 key. */
const uint8_t vault_p256_params[10] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};

/* SubjectPublicKeyInfo header for an uncompressed P-256 point (RFC 5480). */
static const uint8_t P256_SPKI_PREFIX[26] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
                                             0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
                                             0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00};

#define NEW_SUFFIX ".new"
#define PREV_INFIX ".prev."
#define LABEL_CAP  128
#define ALL_EC_MAX 1024

static const CK_BBOOL T = CK_TRUE, F = CK_FALSE;
#define BOOL_ATTR(type, v)                                                                         \
	{                                                                                          \
		(type), (void *)(uintptr_t) & (v), sizeof(CK_BBOOL)                                \
	}

const char *
vault_key_label(enum vault_key_id id)
{
	switch (id) {
	case VAULT_KEY_ISSUER:
		return VAULT_LABEL_ISSUER;
	case VAULT_KEY_AUDIT:
		return VAULT_LABEL_AUDIT;
	default:
		return NULL;
	}
}

bool
vault_key_id_valid(enum vault_key_id id)
{
	return id == VAULT_KEY_ISSUER || id == VAULT_KEY_AUDIT;
}

void
vault_pubkey_from_point(const uint8_t point[65], struct vault_pubkey *out)
{
	memset(out, 0, sizeof(*out));
	memcpy(out->point, point, 65);
	memcpy(out->spki_der, P256_SPKI_PREFIX, sizeof(P256_SPKI_PREFIX));
	memcpy(out->spki_der + sizeof(P256_SPKI_PREFIX), point, 65);
	out->spki_len = sizeof(P256_SPKI_PREFIX) + 65;
	uint8_t h[32];
	unsigned hl = 0;
	EVP_Digest(out->spki_der, out->spki_len, h, &hl, EVP_sha256(), NULL);
	size_t kl = 0;
	aam_b64_encode(h, sizeof(h), out->kid, sizeof(out->kid), &kl, AAM_B64_URL);
}

int
vault_pubkey_pem(const struct vault_pubkey *pk, char *buf, size_t buflen)
{
	static const char head[] = "-----BEGIN PUBLIC KEY-----\n";
	static const char tail[] = "-----END PUBLIC KEY-----\n";
	if (pk == NULL || buf == NULL || pk->spki_len == 0 || pk->spki_len > sizeof(pk->spki_der))
		return AAM_E_INVAL;
	char b64[160];
	size_t n = 0;
	int rc = aam_b64_encode(pk->spki_der, pk->spki_len, b64, sizeof(b64), &n, AAM_B64_STD);
	if (rc != AAM_OK)
		return rc;
	size_t need = sizeof(head) - 1 + n + (n + 63) / 64 + sizeof(tail) - 1 + 1;
	if (buflen < need)
		return AAM_E_TOOBIG;
	size_t o = 0;
	memcpy(buf + o, head, sizeof(head) - 1);
	o += sizeof(head) - 1;
	/* RFC 7468: base64 lines of 64 characters. */
	for (size_t i = 0; i < n; i += 64) {
		size_t l = n - i < 64 ? n - i : 64;
		memcpy(buf + o, b64 + i, l);
		o += l;
		buf[o++] = '\n';
	}
	memcpy(buf + o, tail, sizeof(tail) - 1);
	o += sizeof(tail) - 1;
	buf[o] = '\0';
	return AAM_OK;
}

/* ---- Token operations ------------------------------------------------- */

struct genpair_ctx {
	const char *label;
	CK_OBJECT_HANDLE pub, priv;
};

static CK_RV
genpair_op(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, void *vctx)
{
	struct genpair_ctx *c = vctx;
	CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_ULONG ll = strlen(c->label);
	void *label = (void *)(uintptr_t)c->label;
	CK_ATTRIBUTE pub[] = {
	        BOOL_ATTR(CKA_TOKEN, T),
	        BOOL_ATTR(CKA_PRIVATE, F),
	        BOOL_ATTR(CKA_VERIFY, T),
	        BOOL_ATTR(CKA_ENCRYPT, F),
	        BOOL_ATTR(CKA_WRAP, F),
	        BOOL_ATTR(CKA_DERIVE, F),
	        {CKA_EC_PARAMS, (void *)(uintptr_t)vault_p256_params, sizeof(vault_p256_params)},
	        {CKA_LABEL, label, ll},
	};
	CK_ATTRIBUTE priv[] = {
	        BOOL_ATTR(CKA_TOKEN, T),     BOOL_ATTR(CKA_PRIVATE, T),
	        BOOL_ATTR(CKA_SENSITIVE, T), BOOL_ATTR(CKA_EXTRACTABLE, F),
	        BOOL_ATTR(CKA_SIGN, T),      BOOL_ATTR(CKA_DECRYPT, F),
	        BOOL_ATTR(CKA_UNWRAP, F),    BOOL_ATTR(CKA_DERIVE, F),
	        {CKA_LABEL, label, ll},
	};
	return f->C_GenerateKeyPair(s, &mech, pub, sizeof(pub) / sizeof(pub[0]), priv,
	                            sizeof(priv) / sizeof(priv[0]), &c->pub, &c->priv);
}

struct genkey_ctx {
	const char *label;
	CK_MECHANISM_TYPE mech;
	CK_KEY_TYPE type;
	bool encrypt; /* AES: encrypt/decrypt; generic secret: sign/verify */
	CK_OBJECT_HANDLE key;
};

static CK_RV
genkey_op(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, void *vctx)
{
	struct genkey_ctx *c = vctx;
	CK_MECHANISM mech = {c->mech, NULL, 0};
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_ULONG len = 32;
	const CK_BBOOL *enc = c->encrypt ? &T : &F, *sig = c->encrypt ? &F : &T;
	CK_ATTRIBUTE t[] = {
	        {CKA_CLASS, &cls, sizeof(cls)},
	        {CKA_KEY_TYPE, &c->type, sizeof(c->type)},
	        {CKA_VALUE_LEN, &len, sizeof(len)},
	        BOOL_ATTR(CKA_TOKEN, T),
	        BOOL_ATTR(CKA_PRIVATE, T),
	        BOOL_ATTR(CKA_SENSITIVE, T),
	        BOOL_ATTR(CKA_EXTRACTABLE, F),
	        {CKA_ENCRYPT, (void *)(uintptr_t)enc, sizeof(CK_BBOOL)},
	        {CKA_DECRYPT, (void *)(uintptr_t)enc, sizeof(CK_BBOOL)},
	        {CKA_SIGN, (void *)(uintptr_t)sig, sizeof(CK_BBOOL)},
	        {CKA_VERIFY, (void *)(uintptr_t)sig, sizeof(CK_BBOOL)},
	        BOOL_ATTR(CKA_WRAP, F),
	        BOOL_ATTR(CKA_UNWRAP, F),
	        BOOL_ATTR(CKA_DERIVE, F),
	        {CKA_LABEL, (void *)(uintptr_t)c->label, strlen(c->label)},
	};
	return f->C_GenerateKey(s, &mech, t, sizeof(t) / sizeof(t[0]), &c->key);
}

struct setattr_ctx {
	CK_OBJECT_HANDLE obj;
	CK_ATTRIBUTE attr;
};

static CK_RV
setattr_op(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, void *vctx)
{
	struct setattr_ctx *c = vctx;
	return f->C_SetAttributeValue(s, c->obj, &c->attr, 1);
}

static int
set_attr(struct vault_store *s, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type, const void *v,
         size_t len)
{
	struct setattr_ctx c = {.obj = obj, .attr = {type, (void *)(uintptr_t)v, len}};
	return aam_p11_err(aam_p11_run(s->p11, setattr_op, &c));
}

static int
relabel(struct vault_store *s, CK_OBJECT_HANDLE obj, const char *label)
{
	return set_attr(s, obj, CKA_LABEL, label, strlen(label));
}

/* Every object of CLS labelled LABEL, uncached (for recovery at start). */
static int
find_labelled(struct vault_store *s, CK_OBJECT_CLASS cls, const char *label, CK_OBJECT_HANDLE *out,
              size_t max, size_t *n)
{
	CK_ATTRIBUTE t[2] = {
	        {CKA_LABEL, (void *)(uintptr_t)label, strlen(label)},
	        {CKA_CLASS, &cls, sizeof(cls)},
	};
	return aam_p11_find_all(s->p11, t, 2, out, max, n);
}

/* Generates an EC P-256 pair labelled LABEL and sets CKA_ID on both halves. */
static int
gen_ec_pair(struct vault_store *s, const char *label, CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
	struct genpair_ctx c = {.label = label};
	int rc = aam_p11_err(aam_p11_run(s->p11, genpair_op, &c));
	if (rc != AAM_OK)
		return rc;
	uint8_t point[65];
	rc = aam_p11_ec_point(s->p11, c.pub, point);
	struct vault_pubkey pk;
	if (rc == AAM_OK) {
		vault_pubkey_from_point(point, &pk);
		uint8_t id[32];
		unsigned hl = 0;
		EVP_Digest(pk.spki_der, pk.spki_len, id, &hl, EVP_sha256(), NULL);
		rc = set_attr(s, c.pub, CKA_ID, id, sizeof(id));
		if (rc == AAM_OK)
			rc = set_attr(s, c.priv, CKA_ID, id, sizeof(id));
	}
	if (rc != AAM_OK) {
		aam_p11_destroy(s->p11, c.pub);
		aam_p11_destroy(s->p11, c.priv);
		return rc;
	}
	*pub = c.pub;
	*priv = c.priv;
	return AAM_OK;
}

/* ---- Loaded state ------------------------------------------------------ */

struct prev_entry {
	unsigned long n;
	CK_OBJECT_HANDLE h;
};

static int
prev_cmp(const void *a, const void *b)
{
	const struct prev_entry *x = a, *y = b;
	return x->n < y->n ? 1 : x->n > y->n ? -1 : 0; /* newest (largest n) first */
}

/* Parses "<label>.prev.<n>"; false for anything else. */
static bool
parse_prev_label(const char *base, const char *l, size_t len, unsigned long *n)
{
	size_t bl = strlen(base), il = sizeof(PREV_INFIX) - 1;
	if (len <= bl + il || memcmp(l, base, bl) != 0 || memcmp(l + bl, PREV_INFIX, il) != 0)
		return false;
	unsigned long v = 0;
	for (size_t i = bl + il; i < len; i++) {
		if (l[i] < '0' || l[i] > '9' || v > 100000000ul)
			return false;
		v = v * 10 + (unsigned long)(l[i] - '0');
	}
	*n = v;
	return true;
}

static int
load_prev(struct vault_store *s, enum vault_key_id id)
{
	struct vault_ec_state *e = &s->ec[id];
	const char *base = vault_key_label(id);
	CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
	CK_KEY_TYPE kt = CKK_EC;
	CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_KEY_TYPE, &kt, sizeof(kt)}};
	CK_OBJECT_HANDLE *hs = calloc(ALL_EC_MAX, sizeof(*hs));
	struct prev_entry *pe = calloc(ALL_EC_MAX, sizeof(*pe));
	if (hs == NULL || pe == NULL) {
		free(hs);
		free(pe);
		return AAM_E_NOMEM;
	}
	size_t n = 0, np = 0;
	int rc = aam_p11_find_all(s->p11, t, 2, hs, ALL_EC_MAX, &n);
	unsigned long maxn = 0;
	for (size_t i = 0; rc == AAM_OK && i < n; i++) {
		char l[LABEL_CAP];
		size_t ll = 0;
		unsigned long pn = 0;
		if (aam_p11_get_attr(s->p11, hs[i], CKA_LABEL, l, sizeof(l), &ll) != AAM_OK)
			continue;
		if (!parse_prev_label(base, l, ll, &pn))
			continue;
		pe[np++] = (struct prev_entry){.n = pn, .h = hs[i]};
		if (pn > maxn)
			maxn = pn;
	}
	qsort(pe, np, sizeof(*pe), prev_cmp);
	e->nprev = 0;
	for (size_t i = 0; rc == AAM_OK && i < np && e->nprev < VAULT_PREV_MAX; i++) {
		uint8_t point[65];
		if (aam_p11_ec_point(s->p11, pe[i].h, point) != AAM_OK)
			continue;
		vault_pubkey_from_point(point, &e->prev[e->nprev++]);
	}
	e->prev_next = maxn + 1;
	free(hs);
	free(pe);
	return rc;
}

static int
load_ec(struct vault_store *s, enum vault_key_id id)
{
	struct vault_ec_state *e = &s->ec[id];
	const char *label = vault_key_label(id);
	CK_OBJECT_HANDLE pub, priv;
	int rc = aam_p11_find(s->p11, CKO_PRIVATE_KEY, label, &priv);
	if (rc == AAM_OK)
		rc = aam_p11_find(s->p11, CKO_PUBLIC_KEY, label, &pub);
	uint8_t point[65];
	if (rc == AAM_OK)
		rc = aam_p11_ec_point(s->p11, pub, point);
	if (rc != AAM_OK)
		return rc;
	vault_pubkey_from_point(point, &e->cur);
	const unsigned char *p = e->cur.spki_der;
	EVP_PKEY *pkey = d2i_PUBKEY(NULL, &p, (long)e->cur.spki_len);
	if (pkey == NULL)
		return AAM_E_CRYPTO;
	EVP_PKEY_free(e->pkey);
	e->pkey = pkey;
	return load_prev(s, id);
}

int
vault_keys_load(struct vault_store *s, char *err, size_t errlen)
{
	int rc = AAM_OK;
	for (int id = VAULT_KEY_ISSUER; rc == AAM_OK && id <= VAULT_KEY_AUDIT; id++) {
		rc = load_ec(s, (enum vault_key_id)id);
		if (rc != AAM_OK)
			vault_errf(err, errlen, "cannot load key %s: %s",
			           vault_key_label((enum vault_key_id)id), aam_strerror(rc));
	}
	CK_OBJECT_HANDLE h;
	if (rc == AAM_OK)
		rc = aam_p11_find(s->p11, CKO_SECRET_KEY, VAULT_LABEL_SECRET_ENC, &h);
	if (rc == AAM_OK)
		rc = aam_p11_find(s->p11, CKO_SECRET_KEY, VAULT_LABEL_FINGERPRINT, &h);
	if (rc != AAM_OK && err != NULL && err[0] == '\0')
		vault_errf(err, errlen, "cannot load the secret keys: %s", aam_strerror(rc));
	return rc;
}

void
vault_keys_unload(struct vault_store *s)
{
	for (size_t i = 0; i < 2; i++) {
		EVP_PKEY_free(s->ec[i].pkey);
		memset(&s->ec[i], 0, sizeof(s->ec[i]));
	}
}

/* ---- Init, rotation and its recovery ----------------------------------- */

int
vault_keys_init(struct vault_store *s)
{
	if (s == NULL)
		return AAM_E_INVAL;
	pthread_mutex_lock(&s->lock);
	size_t present = 0;
	const char *missing = NULL;
	int rc = vault_keys_count(s, &present, &missing);
	if (rc == AAM_OK && present > 0)
		rc = AAM_E_EXISTS;
	if (rc != AAM_OK) {
		pthread_mutex_unlock(&s->lock);
		return rc;
	}
	CK_OBJECT_HANDLE made[6];
	size_t nmade = 0;
	for (int id = VAULT_KEY_ISSUER; rc == AAM_OK && id <= VAULT_KEY_AUDIT; id++) {
		rc = gen_ec_pair(s, vault_key_label((enum vault_key_id)id), &made[nmade],
		                 &made[nmade + 1]);
		if (rc == AAM_OK)
			nmade += 2;
	}
	struct genkey_ctx aes = {.label = VAULT_LABEL_SECRET_ENC,
	                         .mech = CKM_AES_KEY_GEN,
	                         .type = CKK_AES,
	                         .encrypt = true};
	struct genkey_ctx fp = {.label = VAULT_LABEL_FINGERPRINT,
	                        .mech = CKM_GENERIC_SECRET_KEY_GEN,
	                        .type = CKK_GENERIC_SECRET,
	                        .encrypt = false};
	if (rc == AAM_OK) {
		rc = aam_p11_err(aam_p11_run(s->p11, genkey_op, &aes));
		if (rc == AAM_OK)
			made[nmade++] = aes.key;
	}
	if (rc == AAM_OK) {
		rc = aam_p11_err(aam_p11_run(s->p11, genkey_op, &fp));
		if (rc == AAM_OK)
			made[nmade++] = fp.key;
	}
	aam_p11_forget(s->p11);
	char err[256] = "";
	if (rc == AAM_OK)
		rc = vault_keys_check(s, err, sizeof(err));
	if (rc == AAM_OK)
		rc = vault_keys_load(s, err, sizeof(err));
	if (rc != AAM_OK) {
		/* Leave no partial key set behind: the next init must start clean. */
		for (size_t i = 0; i < nmade; i++)
			aam_p11_destroy(s->p11, made[i]);
		vault_keys_unload(s);
		aam_log(AAM_LOG_ERROR, "vault.keys_init", AAM_F_ERR(rc), AAM_F_STR("detail", err));
	} else {
		s->ready = true;
		for (int id = VAULT_KEY_ISSUER; id <= VAULT_KEY_AUDIT; id++)
			aam_log(AAM_LOG_INFO, "vault.key_created",
			        AAM_F_STR("key", vault_key_label((enum vault_key_id)id)),
			        AAM_F_STR("kid", s->ec[id].cur.kid));
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/*
 * Rotation, step by step, so that a crash at any point leaves a state
 * vault_keys_recover() can finish or undo:
 *   1. generate the new pair as <label>.new;
 *   2. relabel the current public key <label>.prev.<n>;
 *   3. destroy the current private key (nothing may sign with it again);
 *   4. relabel the new private key, then the new public key, <label>.
 */
int
vault_keys_rotate(struct vault_store *s, enum vault_key_id id)
{
	if (s == NULL || !vault_key_id_valid(id))
		return AAM_E_INVAL;
	const char *label = vault_key_label(id);
	char newl[LABEL_CAP], prevl[LABEL_CAP];
	snprintf(newl, sizeof(newl), "%s%s", label, NEW_SUFFIX);
	pthread_mutex_lock(&s->lock);
	if (!s->ready) {
		pthread_mutex_unlock(&s->lock);
		return AAM_E_CONFIG;
	}
	struct vault_ec_state *e = &s->ec[id];
	snprintf(prevl, sizeof(prevl), "%s%s%lu", label, PREV_INFIX, e->prev_next);
	CK_OBJECT_HANDLE npub = CK_INVALID_HANDLE, npriv = CK_INVALID_HANDLE, opub, opriv;
	int rc = gen_ec_pair(s, newl, &npub, &npriv);
	if (rc == AAM_OK)
		rc = aam_p11_find(s->p11, CKO_PUBLIC_KEY, label, &opub);
	if (rc == AAM_OK)
		rc = aam_p11_find(s->p11, CKO_PRIVATE_KEY, label, &opriv);
	if (rc != AAM_OK) {
		if (npub != CK_INVALID_HANDLE)
			aam_p11_destroy(s->p11, npub);
		if (npriv != CK_INVALID_HANDLE)
			aam_p11_destroy(s->p11, npriv);
		pthread_mutex_unlock(&s->lock);
		return rc;
	}
	rc = relabel(s, opub, prevl);
	if (rc != AAM_OK) {
		aam_p11_destroy(s->p11, npub);
		aam_p11_destroy(s->p11, npriv);
		pthread_mutex_unlock(&s->lock);
		return rc;
	}
	aam_p11_forget(s->p11);
	rc = aam_p11_destroy(s->p11, opriv);
	if (rc == AAM_OK)
		rc = relabel(s, npriv, label);
	if (rc == AAM_OK)
		rc = relabel(s, npub, label);
	aam_p11_forget(s->p11);
	if (rc != AAM_OK) {
		/* Past the point of no return: recovery at the next open finishes it. */
		s->ready = false;
		aam_log(AAM_LOG_ERROR, "vault.key_rotate", AAM_F_STR("key", label), AAM_F_ERR(rc));
		pthread_mutex_unlock(&s->lock);
		return rc;
	}
	rc = load_ec(s, id);
	if (rc != AAM_OK)
		s->ready = false;
	else
		aam_log(AAM_LOG_INFO, "vault.key_rotated", AAM_F_STR("key", label),
		        AAM_F_STR("kid", e->cur.kid), AAM_F_STR("previous", prevl));
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int
recover_one(struct vault_store *s, const char *label)
{
	char newl[LABEL_CAP];
	snprintf(newl, sizeof(newl), "%s%s", label, NEW_SUFFIX);
	CK_OBJECT_HANDLE npub[4], npriv[4], cpub[4], cpriv[4];
	size_t nnpub = 0, nnpriv = 0, ncpub = 0, ncpriv = 0;
	int rc = find_labelled(s, CKO_PUBLIC_KEY, newl, npub, 4, &nnpub);
	if (rc == AAM_OK)
		rc = find_labelled(s, CKO_PRIVATE_KEY, newl, npriv, 4, &nnpriv);
	if (rc != AAM_OK || (nnpub == 0 && nnpriv == 0))
		return rc;
	rc = find_labelled(s, CKO_PUBLIC_KEY, label, cpub, 4, &ncpub);
	if (rc == AAM_OK)
		rc = find_labelled(s, CKO_PRIVATE_KEY, label, cpriv, 4, &ncpriv);
	if (rc != AAM_OK)
		return rc;
	aam_log(AAM_LOG_WARN, "vault.key_rotation_recover", AAM_F_STR("key", label));
	if (ncpub > 0 || nnpub > 1 || nnpriv > 1) {
		/* The rotation had not retired the current key: undo it. */
		for (size_t i = 0; i < nnpub; i++)
			aam_p11_destroy(s->p11, npub[i]);
		for (size_t i = 0; i < nnpriv; i++)
			aam_p11_destroy(s->p11, npriv[i]);
		return AAM_OK;
	}
	if (nnpub == 1 && nnpriv == 1) {
		/* The old public key is retired: finish. */
		for (size_t i = 0; i < ncpriv; i++)
			aam_p11_destroy(s->p11, cpriv[i]);
		rc = relabel(s, npriv[0], label);
		if (rc == AAM_OK)
			rc = relabel(s, npub[0], label);
	} else if (nnpub == 1 && ncpriv == 1) {
		/* Only the public key's relabel was missing. */
		rc = relabel(s, npub[0], label);
	}
	aam_p11_forget(s->p11);
	return rc;
}

int
vault_keys_recover(struct vault_store *s)
{
	int rc = recover_one(s, VAULT_LABEL_ISSUER);
	if (rc == AAM_OK)
		rc = recover_one(s, VAULT_LABEL_AUDIT);
	return rc;
}

/* ---- Public keys ------------------------------------------------------- */

int
vault_pubkey(struct vault_store *s, enum vault_key_id id, struct vault_pubkey *out)
{
	if (s == NULL || out == NULL || !vault_key_id_valid(id))
		return AAM_E_INVAL;
	pthread_mutex_lock(&s->lock);
	int rc = s->ready ? AAM_OK : AAM_E_CONFIG;
	if (rc == AAM_OK)
		*out = s->ec[id].cur;
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int
vault_pubkeys_all(struct vault_store *s, enum vault_key_id id, struct vault_pubkey *out, size_t max,
                  size_t *n)
{
	if (s == NULL || n == NULL || (out == NULL && max > 0) || !vault_key_id_valid(id))
		return AAM_E_INVAL;
	*n = 0;
	pthread_mutex_lock(&s->lock);
	int rc = s->ready ? AAM_OK : AAM_E_CONFIG;
	if (rc == AAM_OK) {
		const struct vault_ec_state *e = &s->ec[id];
		if (max > 0)
			out[(*n)++] = e->cur;
		for (size_t i = 0; i < e->nprev && *n < max; i++)
			out[(*n)++] = e->prev[i];
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}
