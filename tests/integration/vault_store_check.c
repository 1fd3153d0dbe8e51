/*
 * The vault's key and secret store against a throwaway SoftHSM2 token:
 * key attributes and the start-up refusal of a bad key, every secret type
 * through put/get/list/rotate/prune/delete, no plaintext on the token, in
 * the database or in the logs, HMAC inside the token, verified signatures,
 * key rotation with overlap, tampering, the cache and session loss.
 *
 * (Named *_check.c, not *_test.c: it links aam-vaultcore, so vault/
 * registers it instead of the integration glob.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "aam/err.h"
#include "common/b64.h"
#include "common/log.h"
#include "tests/lib/softhsm.h"
#include "tests/lib/testutil.h"
#include "vault/store.h"

static const uint8_t P256_PARAMS[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};

struct vfx {
	struct aam_test_softhsm hsm;
	char *tmp;
	char db[AAM_TEST_PATH_MAX + 32];
	struct vault_store *s;
};

static int
setup(void **state)
{
	if (!aam_test_softhsm_available()) {
		*state = NULL;
		return 0;
	}
	struct vfx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(aam_test_softhsm_start(&f->hsm, "aam-vault-test"), AAM_OK);
	f->tmp = aam_test_mkdtemp("aam-vault-store");
	assert_non_null(f->tmp);
	snprintf(f->db, sizeof(f->db), "%s/vault.db", f->tmp);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct vfx *f = *state;
	if (f == NULL)
		return 0;
	vault_store_close(f->s);
	aam_test_softhsm_stop(&f->hsm);
	aam_test_rmtree(f->tmp);
	free(f->tmp);
	free(f);
	return 0;
}

static struct vfx *
fx_get(void **state)
{
	AAM_TEST_SOFTHSM_REQUIRE();
	struct vfx *f = *state;
	assert_non_null(f);
	return f;
}

static int
store_open(struct vfx *f, char *err, size_t errlen)
{
	struct vault_store_config cfg = {
	        .module = f->hsm.module_path,
	        .token_uri = f->hsm.token_uri,
	        .pin_file = f->hsm.user_pin_file,
	        .db_path = f->db,
	        .pool_size = 2,
	};
	return vault_store_open(&cfg, &f->s, err, errlen);
}

static void
store_open_ok(struct vfx *f)
{
	char err[512] = "";
	int rc = store_open(f, err, sizeof(err));
	if (rc != AAM_OK)
		print_message("vault_store_open: %s\n", err);
	assert_int_equal(rc, AAM_OK);
}

static void
store_reopen(struct vfx *f)
{
	vault_store_close(f->s);
	f->s = NULL;
	store_open_ok(f);
	assert_true(vault_store_ready(f->s));
}

static void
store_init(struct vfx *f)
{
	store_open_ok(f);
	assert_int_equal(vault_keys_init(f->s), AAM_OK);
	assert_true(vault_store_ready(f->s));
}

/* ---- raw PKCS#11 access, behind the store's back ----------------------- */

static CK_FUNCTION_LIST *
fl_of(struct vfx *f)
{
	return aam_p11_module(vault_store_p11(f->s));
}

static CK_SESSION_HANDLE
raw_session(struct vfx *f)
{
	CK_SESSION_HANDLE s;
	assert_int_equal(fl_of(f)->C_OpenSession(aam_p11_slot(vault_store_p11(f->s)),
	                                         CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
	                                         &s),
	                 CKR_OK);
	return s;
}

/* Objects of CLS (0 = every class) with LABEL (NULL = any label). */
static CK_ULONG
raw_find(struct vfx *f, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const char *label,
         CK_OBJECT_HANDLE *out, CK_ULONG max)
{
	CK_ATTRIBUTE t[2];
	CK_ULONG n = 0;
	if (cls != 0)
		t[n++] = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof(cls)};
	if (label != NULL)
		t[n++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)(uintptr_t)label, strlen(label)};
	CK_FUNCTION_LIST *fl = fl_of(f);
	assert_int_equal(fl->C_FindObjectsInit(s, t, n), CKR_OK);
	CK_ULONG got = 0;
	assert_int_equal(fl->C_FindObjects(s, out, max, &got), CKR_OK);
	assert_int_equal(fl->C_FindObjectsFinal(s), CKR_OK);
	return got;
}

static CK_BBOOL
raw_bool(struct vfx *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type)
{
	CK_BBOOL v = 0x55;
	CK_ATTRIBUTE a = {type, &v, sizeof(v)};
	assert_int_equal(fl_of(f)->C_GetAttributeValue(s, o, &a, 1), CKR_OK);
	return v;
}

static void
raw_destroy_label(struct vfx *f, CK_OBJECT_CLASS cls, const char *label)
{
	CK_SESSION_HANDLE s = raw_session(f);
	CK_OBJECT_HANDLE h[8];
	CK_ULONG n = raw_find(f, s, cls, label, h, 8);
	assert_true(n > 0);
	for (CK_ULONG i = 0; i < n; i++)
		assert_int_equal(fl_of(f)->C_DestroyObject(s, h[i]), CKR_OK);
	fl_of(f)->C_CloseSession(s);
}

/* ---- secret helpers ------------------------------------------------------ */

static const enum vault_secret_type ALL_TYPES[] = {
        VAULT_SECRET_BEARER,    VAULT_SECRET_HEADER, VAULT_SECRET_BASIC,     VAULT_SECRET_QUERY,
        VAULT_SECRET_AWS_SIGV4, VAULT_SECRET_HMAC,   VAULT_SECRET_OAUTH2_CC,
};
#define NTYPES (sizeof(ALL_TYPES) / sizeof(ALL_TYPES[0]))

static void
make_meta(struct vault_secret_meta *m, enum vault_secret_type t, const char *name)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->name, sizeof(m->name), "%s", name);
	m->type = t;
	m->nbindings = 2;
	snprintf(m->bindings[0], sizeof(m->bindings[0]), "https://api.example.com");
	snprintf(m->bindings[1], sizeof(m->bindings[1]), "http://127.0.0.1:8443/test/");
	switch (t) {
	case VAULT_SECRET_HEADER:
		snprintf(m->header, sizeof(m->header), "x-api-key");
		break;
	case VAULT_SECRET_BASIC:
		snprintf(m->username, sizeof(m->username), "svc-user");
		break;
	case VAULT_SECRET_QUERY:
		snprintf(m->param, sizeof(m->param), "api_key");
		break;
	case VAULT_SECRET_AWS_SIGV4:
		snprintf(m->aws_access_key_id, sizeof(m->aws_access_key_id), "AKIDEXAMPLE");
		snprintf(m->aws_region, sizeof(m->aws_region), "us-east-1");
		snprintf(m->aws_service, sizeof(m->aws_service), "iam");
		break;
	case VAULT_SECRET_HMAC:
		snprintf(m->header, sizeof(m->header), "x-hub-signature-256");
		break;
	case VAULT_SECRET_OAUTH2_CC:
		snprintf(m->token_url, sizeof(m->token_url),
		         "https://auth.example.com/oauth/token");
		snprintf(m->client_id, sizeof(m->client_id), "client-123");
		snprintf(m->scope, sizeof(m->scope), "read write");
		break;
	default:
		break;
	}
}

/* A distinctive value per type and round, long enough to be searched for. */
static void
make_value(char *buf, size_t cap, enum vault_secret_type t, int round)
{
	snprintf(buf, cap, "Zq8v%d-%s-s3cr3t-value-%08x-xY7", round, vault_secret_type_name(t),
	         (unsigned)(0x5eed0000u + (unsigned)t * 16u + (unsigned)round));
}

static void
expect_hmac(enum vault_secret_type t, const char *value, const uint8_t *data, size_t len,
            uint8_t out[32])
{
	char key[600];
	int kl = snprintf(key, sizeof(key), "%s%s", t == VAULT_SECRET_AWS_SIGV4 ? "AWS4" : "",
	                  value);
	unsigned ol = 0;
	assert_non_null(HMAC(EVP_sha256(), key, kl, data, len, out, &ol));
	assert_int_equal(ol, 32);
}

/* Opens NAME and checks it yields VALUE (decrypted, or as an HMAC key in the token). */
static void
check_cred(struct vfx *f, const char *name, enum vault_secret_type t, const char *value)
{
	struct vault_cred *c = NULL;
	assert_int_equal(vault_cred_open(f->s, name, &c), AAM_OK);
	assert_non_null(c);
	assert_string_equal(c->meta.name, name);
	assert_int_equal(c->meta.type, t);
	static const uint8_t data[] = "20150830";
	uint8_t mac[32], want[32];
	if (vault_secret_type_is_hmac(t)) {
		assert_null(c->plain);
		assert_int_not_equal(c->hmac_key, CK_INVALID_HANDLE);
		assert_int_equal(vault_cred_hmac(f->s, c, data, 8, mac), AAM_OK);
		expect_hmac(t, value, data, 8, want);
		assert_memory_equal(mac, want, 32);
		assert_int_equal(vault_hmac_with_key(f->s, c->hmac_key, data, 8, mac), AAM_OK);
		assert_memory_equal(mac, want, 32);
	} else {
		assert_non_null(c->plain);
		assert_int_equal(aam_secret_len(c->plain), strlen(value));
		assert_memory_equal(aam_secret_data(c->plain), value, strlen(value));
		assert_int_equal(vault_cred_hmac(f->s, c, data, 8, mac), AAM_E_INVAL);
	}
	vault_cred_free(c);
}

static bool
contains(const void *hay, size_t n, const void *needle, size_t m)
{
	return m > 0 && n >= m && memmem(hay, n, needle, m) != NULL;
}

/* Every encoding of VALUE that must never be found: raw, base64, base64url, SHA-256 hex. */
struct needles {
	char v[8][256];
	size_t n;
};

static void
needles_for(struct needles *nd, const char *value)
{
	size_t len = strlen(value), ol = 0;
	nd->n = 0;
	snprintf(nd->v[nd->n++], 256, "%s", value);
	assert_int_equal(aam_b64_encode(value, len, nd->v[nd->n], 256, &ol, AAM_B64_STD), AAM_OK);
	nd->n++;
	assert_int_equal(aam_b64_encode(value, len, nd->v[nd->n], 256, &ol, AAM_B64_URL), AAM_OK);
	nd->n++;
	uint8_t h[32];
	unsigned hl = 0;
	EVP_Digest(value, len, h, &hl, EVP_sha256(), NULL);
	for (int upper = 0; upper < 2; upper++) {
		char *o = nd->v[nd->n++];
		for (int i = 0; i < 32; i++)
			snprintf(o + 2 * i, 3, upper ? "%02X" : "%02x", h[i]);
	}
	/* The raw hash bytes too. */
	memcpy(nd->v[nd->n], h, 32);
	nd->v[nd->n][32] = '\0';
	nd->n++;
}

static bool
hay_has_any(const void *hay, size_t n, const struct needles *nd)
{
	for (size_t i = 0; i < nd->n; i++) {
		size_t m = i == nd->n - 1 ? 32 : strlen(nd->v[i]);
		if (contains(hay, n, nd->v[i], m))
			return true;
	}
	return false;
}

static bool
file_has_any(const char *path, const struct needles *nd)
{
	size_t n = 0;
	char *data = aam_test_read_file(path, &n);
	if (data == NULL)
		return false; /* absent (no -wal right now) */
	bool hit = hay_has_any(data, n, nd);
	free(data);
	return hit;
}

/* Every regular file under DIR (recursively). */
static bool
tree_has_any(const char *dir, const struct needles *nd, int *files)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return false;
	bool hit = false;
	struct dirent *e;
	while (!hit && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char p[2048];
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		struct stat st;
		if (lstat(p, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			hit = tree_has_any(p, nd, files);
		} else if (S_ISREG(st.st_mode)) {
			(*files)++;
			hit = file_has_any(p, nd);
			if (hit)
				print_message("found a secret encoding in %s\n", p);
		}
	}
	closedir(d);
	return hit;
}

/* ---- ECDSA verification with OpenSSL ------------------------------------- */

static int
verify_rs(const struct vault_pubkey *pk, const uint8_t d[32], const uint8_t rs[64])
{
	const unsigned char *p = pk->spki_der;
	EVP_PKEY *k = d2i_PUBKEY(NULL, &p, (long)pk->spki_len);
	assert_non_null(k);
	ECDSA_SIG *sig = ECDSA_SIG_new();
	assert_int_equal(ECDSA_SIG_set0(sig, BN_bin2bn(rs, 32, NULL), BN_bin2bn(rs + 32, 32, NULL)),
	                 1);
	unsigned char *der = NULL;
	int dl = i2d_ECDSA_SIG(sig, &der);
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(k, NULL);
	assert_int_equal(EVP_PKEY_verify_init(c), 1);
	int ok = EVP_PKEY_verify(c, der, (size_t)dl, d, 32);
	EVP_PKEY_CTX_free(c);
	OPENSSL_free(der);
	ECDSA_SIG_free(sig);
	EVP_PKEY_free(k);
	return ok;
}

/* ---- tests ------------------------------------------------------------------ */

static void
test_uninitialised_then_init(void **state)
{
	struct vfx *f = fx_get(state);
	store_open_ok(f);
	assert_false(vault_store_ready(f->s));
	uint8_t d[32] = {1}, sig[64];
	assert_int_equal(vault_sign(f->s, VAULT_KEY_ISSUER, d, sig), AAM_E_CONFIG);
	struct vault_pubkey pk;
	assert_int_equal(vault_pubkey(f->s, VAULT_KEY_AUDIT, &pk), AAM_E_CONFIG);
	struct vault_secret_meta m;
	make_meta(&m, VAULT_SECRET_BEARER, "early");
	assert_int_equal(vault_secret_put(f->s, &m, (const uint8_t *)"abc", 3), AAM_E_CONFIG);
	assert_int_equal(vault_keys_rotate(f->s, VAULT_KEY_ISSUER), AAM_E_CONFIG);

	assert_int_equal(vault_keys_init(f->s), AAM_OK);
	assert_true(vault_store_ready(f->s));
	assert_int_equal(vault_keys_init(f->s), AAM_E_EXISTS);
	char err[256];
	assert_int_equal(vault_keys_check(f->s, err, sizeof(err)), AAM_OK);
	assert_int_equal(vault_sign(f->s, VAULT_KEY_ISSUER, d, sig), AAM_OK);
	/* A second store on the same token sees the keys as present and sound. */
	store_reopen(f);
	assert_int_equal(vault_keys_init(f->s), AAM_E_EXISTS);
}

static void
test_keys_have_the_right_attributes(void **state)
{
	struct vfx *f = fx_get(state);
	store_init(f);
	CK_SESSION_HANDLE s = raw_session(f);
	struct {
		const char *label;
		CK_OBJECT_CLASS cls;
		CK_KEY_TYPE type;
	} keys[] = {
	        {"aam-issuer", CKO_PRIVATE_KEY, CKK_EC},
	        {"aam-audit", CKO_PRIVATE_KEY, CKK_EC},
	        {"aam-secret-enc", CKO_SECRET_KEY, CKK_AES},
	        {"aam-fingerprint", CKO_SECRET_KEY, CKK_GENERIC_SECRET},
	};
	for (size_t i = 0; i < 4; i++) {
		CK_OBJECT_HANDLE h[4];
		assert_int_equal(raw_find(f, s, keys[i].cls, keys[i].label, h, 4), 1);
		assert_int_equal(raw_bool(f, s, h[0], CKA_TOKEN), CK_TRUE);
		assert_int_equal(raw_bool(f, s, h[0], CKA_PRIVATE), CK_TRUE);
		assert_int_equal(raw_bool(f, s, h[0], CKA_SENSITIVE), CK_TRUE);
		assert_int_equal(raw_bool(f, s, h[0], CKA_EXTRACTABLE), CK_FALSE);
		assert_int_equal(raw_bool(f, s, h[0], CKA_LOCAL), CK_TRUE);
		assert_int_equal(raw_bool(f, s, h[0], CKA_NEVER_EXTRACTABLE), CK_TRUE);
		assert_int_equal(raw_bool(f, s, h[0], CKA_ALWAYS_SENSITIVE), CK_TRUE);
		CK_KEY_TYPE kt = 0;
		CK_ATTRIBUTE a = {CKA_KEY_TYPE, &kt, sizeof(kt)};
		assert_int_equal(fl_of(f)->C_GetAttributeValue(s, h[0], &a, 1), CKR_OK);
		assert_int_equal(kt, keys[i].type);
		/* The value itself is never readable. */
		uint8_t v[128];
		CK_ATTRIBUTE va = {CKA_VALUE, v, sizeof(v)};
		assert_int_equal(fl_of(f)->C_GetAttributeValue(s, h[0], &va, 1),
		                 CKR_ATTRIBUTE_SENSITIVE);
		if (keys[i].type != CKK_EC) {
			assert_int_equal(raw_bool(f, s, h[0], CKA_WRAP), CK_FALSE);
			assert_int_equal(raw_bool(f, s, h[0], CKA_DERIVE), CK_FALSE);
			continue;
		}
		/* EC pairs: P-256, named by the SHA-256 of their public key (CKA_ID and kid). */
		uint8_t params[16];
		CK_ATTRIBUTE pa = {CKA_EC_PARAMS, params, sizeof(params)};
		assert_int_equal(fl_of(f)->C_GetAttributeValue(s, h[0], &pa, 1), CKR_OK);
		assert_int_equal(pa.ulValueLen, sizeof(P256_PARAMS));
		assert_memory_equal(params, P256_PARAMS, sizeof(P256_PARAMS));
		struct vault_pubkey pk;
		assert_int_equal(
		        vault_pubkey(f->s, i == 0 ? VAULT_KEY_ISSUER : VAULT_KEY_AUDIT, &pk),
		        AAM_OK);
		assert_int_equal(pk.spki_len, 91);
		assert_int_equal(strlen(pk.kid), 43);
		uint8_t hash[32], kid[32];
		unsigned hl = 0;
		EVP_Digest(pk.spki_der, pk.spki_len, hash, &hl, EVP_sha256(), NULL);
		size_t kl = 0;
		assert_int_equal(aam_b64_decode(pk.kid, 43, kid, sizeof(kid), &kl, AAM_B64_URL),
		                 AAM_OK);
		assert_int_equal(kl, 32);
		assert_memory_equal(kid, hash, 32);
		uint8_t id[64];
		CK_ATTRIBUTE ia = {CKA_ID, id, sizeof(id)};
		assert_int_equal(fl_of(f)->C_GetAttributeValue(s, h[0], &ia, 1), CKR_OK);
		assert_int_equal(ia.ulValueLen, 32);
		assert_memory_equal(id, hash, 32);
		CK_OBJECT_HANDLE pub[2];
		assert_int_equal(raw_find(f, s, CKO_PUBLIC_KEY, keys[i].label, pub, 2), 1);
		ia.ulValueLen = sizeof(id);
		assert_int_equal(fl_of(f)->C_GetAttributeValue(s, pub[0], &ia, 1), CKR_OK);
		assert_memory_equal(id, hash, 32);
		/* PEM export parses back to the same key. */
		char pem[256];
		assert_int_equal(vault_pubkey_pem(&pk, pem, 10), AAM_E_TOOBIG);
		assert_int_equal(vault_pubkey_pem(&pk, pem, sizeof(pem)), AAM_OK);
		assert_non_null(strstr(pem, "-----BEGIN PUBLIC KEY-----\n"));
		BIO *bio = BIO_new_mem_buf(pem, -1);
		EVP_PKEY *k = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
		assert_non_null(k);
		unsigned char *der = NULL;
		int dl = i2d_PUBKEY(k, &der);
		assert_int_equal(dl, 91);
		assert_memory_equal(der, pk.spki_der, 91);
		OPENSSL_free(der);
		EVP_PKEY_free(k);
		BIO_free(bio);
	}
	fl_of(f)->C_CloseSession(s);
}

struct gen_ctx {
	CK_BBOOL extractable;
	const char *label;
};

static CK_RV
gen_extractable_op(CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE s, void *vctx)
{
	struct gen_ctx *c = vctx;
	CK_BBOOL yes = CK_TRUE;
	CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_ATTRIBUTE pub[] = {
	        {CKA_EC_PARAMS, (void *)(uintptr_t)P256_PARAMS, sizeof(P256_PARAMS)},
	        {CKA_TOKEN, &yes, sizeof(yes)},
	        {CKA_VERIFY, &yes, sizeof(yes)},
	        {CKA_LABEL, (void *)(uintptr_t)c->label, strlen(c->label)},
	};
	CK_ATTRIBUTE priv[] = {
	        {CKA_TOKEN, &yes, sizeof(yes)},
	        {CKA_PRIVATE, &yes, sizeof(yes)},
	        {CKA_SENSITIVE, &yes, sizeof(yes)},
	        {CKA_EXTRACTABLE, &c->extractable, sizeof(c->extractable)},
	        {CKA_SIGN, &yes, sizeof(yes)},
	        {CKA_LABEL, (void *)(uintptr_t)c->label, strlen(c->label)},
	};
	CK_OBJECT_HANDLE a, b;
	return fl->C_GenerateKeyPair(s, &mech, pub, 4, priv, 6, &a, &b);
}

static void
test_extractable_key_is_refused_by_name(void **state)
{
	struct vfx *f = fx_get(state);
	store_open_ok(f);
	assert_false(vault_store_ready(f->s));
	/* Someone creates the issuer key by hand, extractable. */
	struct gen_ctx g = {.extractable = CK_TRUE, .label = "aam-issuer"};
	assert_int_equal(aam_p11_run(vault_store_p11(f->s), gen_extractable_op, &g), CKR_OK);
	vault_store_close(f->s);
	f->s = NULL;
	char err[512] = "";
	assert_int_not_equal(store_open(f, err, sizeof(err)), AAM_OK);
	assert_null(f->s);
	print_message("refused: %s\n", err);
	assert_non_null(strstr(err, "aam-issuer"));
	assert_non_null(strstr(err, "EXTRACTABLE"));
	/* The refusal names the bad key even though the other three are missing. */
	assert_null(strstr(err, "missing"));
}

static CK_RV
import_aes_op(CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE s, void *vctx)
{
	(void)vctx;
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	uint8_t v[32];
	RAND_bytes(v, sizeof(v));
	CK_ATTRIBUTE t[] = {
	        {CKA_CLASS, &cls, sizeof(cls)},
	        {CKA_KEY_TYPE, &kt, sizeof(kt)},
	        {CKA_TOKEN, &yes, sizeof(yes)},
	        {CKA_PRIVATE, &yes, sizeof(yes)},
	        {CKA_SENSITIVE, &yes, sizeof(yes)},
	        {CKA_EXTRACTABLE, &no, sizeof(no)},
	        {CKA_ENCRYPT, &yes, sizeof(yes)},
	        {CKA_DECRYPT, &yes, sizeof(yes)},
	        {CKA_LABEL, (void *)(uintptr_t) "aam-secret-enc", 14},
	        {CKA_VALUE, v, sizeof(v)},
	};
	CK_OBJECT_HANDLE h;
	return fl->C_CreateObject(s, t, sizeof(t) / sizeof(t[0]), &h);
}

static void
test_imported_or_missing_key_is_refused(void **state)
{
	struct vfx *f = fx_get(state);
	store_init(f);
	/* Replace the encryption key with one imported from outside (not CKA_LOCAL). */
	raw_destroy_label(f, CKO_SECRET_KEY, "aam-secret-enc");
	assert_int_equal(aam_p11_run(vault_store_p11(f->s), import_aes_op, NULL), CKR_OK);
	vault_store_close(f->s);
	f->s = NULL;
	char err[512] = "";
	assert_int_not_equal(store_open(f, err, sizeof(err)), AAM_OK);
	print_message("refused: %s\n", err);
	assert_non_null(strstr(err, "aam-secret-enc"));
	assert_non_null(strstr(err, "CKA_LOCAL"));
}

static void
test_missing_key_is_named(void **state)
{
	struct vfx *f = fx_get(state);
	store_init(f);
	raw_destroy_label(f, CKO_PRIVATE_KEY, "aam-audit");
	vault_store_close(f->s);
	f->s = NULL;
	char err[512] = "";
	assert_int_equal(store_open(f, err, sizeof(err)), AAM_E_NOTFOUND);
	print_message("refused: %s\n", err);
	assert_non_null(strstr(err, "aam-audit"));

	/* A public key that does not belong to the private key is caught by a test signature. */
	teardown(state);
	setup(state);
	f = *state;
	store_init(f);
	raw_destroy_label(f, CKO_PUBLIC_KEY, "aam-issuer");
	struct gen_ctx g = {.extractable = CK_FALSE, .label = "aam-issuer-other"};
	assert_int_equal(aam_p11_run(vault_store_p11(f->s), gen_extractable_op, &g), CKR_OK);
	/* Relabel the other pair's public half as aam-issuer. */
	CK_SESSION_HANDLE s = raw_session(f);
	CK_OBJECT_HANDLE h[2];
	assert_int_equal(raw_find(f, s, CKO_PUBLIC_KEY, "aam-issuer-other", h, 2), 1);
	CK_ATTRIBUTE la = {CKA_LABEL, (void *)(uintptr_t) "aam-issuer", 10};
	assert_int_equal(fl_of(f)->C_SetAttributeValue(s, h[0], &la, 1), CKR_OK);
	fl_of(f)->C_CloseSession(s);
	vault_store_close(f->s);
	f->s = NULL;
	assert_int_not_equal(store_open(f, err, sizeof(err)), AAM_OK);
	print_message("refused: %s\n", err);
	assert_non_null(strstr(err, "aam-issuer"));
	assert_non_null(strstr(err, "signature"));
}

struct list_ctx {
	size_t n;
	char names[16][128];
};

static int
list_cb(void *vctx, const struct vault_secret_meta *m)
{
	struct list_ctx *c = vctx;
	if (c->n < 16)
		snprintf(c->names[c->n], 128, "%s", m->name);
	c->n++;
	return 0;
}

static int
list_stop_cb(void *vctx, const struct vault_secret_meta *m)
{
	(void)m;
	(*(int *)vctx)++;
	return 42;
}

static void
test_lifecycle_every_type(void **state)
{
	struct vfx *f = fx_get(state);
	store_init(f);
	CK_SESSION_HANDLE rs = raw_session(f);
	for (size_t i = 0; i < NTYPES; i++) {
		enum vault_secret_type t = ALL_TYPES[i];
		char name[64], v1[128], v2[128], label[160];
		snprintf(name, sizeof(name), "sec-%s", vault_secret_type_name(t));
		make_value(v1, sizeof(v1), t, 1);
		make_value(v2, sizeof(v2), t, 2);
		struct vault_secret_meta m, got;
		make_meta(&m, t, name);
		int64_t before = (int64_t)time(NULL);
		assert_int_equal(vault_secret_put(f->s, &m, (const uint8_t *)v1, strlen(v1)),
		                 AAM_OK);
		assert_int_equal(vault_secret_put(f->s, &m, (const uint8_t *)v2, strlen(v2)),
		                 AAM_E_EXISTS);
		assert_int_equal(vault_secret_get(f->s, name, &got), AAM_OK);
		assert_string_equal(got.name, name);
		assert_int_equal(got.type, t);
		assert_int_equal(got.version, 1);
		assert_true(got.created >= before && got.created <= before + 5);
		assert_int_equal(got.rotated, got.created);
		assert_int_equal(got.nbindings, 2);
		/* A binding without a path covers the whole origin. */
		assert_string_equal(got.bindings[0], "https://api.example.com/");
		assert_string_equal(got.bindings[1], "http://127.0.0.1:8443/test/");
		assert_string_equal(got.header, m.header);
		assert_string_equal(got.param, m.param);
		assert_string_equal(got.username, m.username);
		assert_string_equal(got.aws_access_key_id, m.aws_access_key_id);
		assert_string_equal(got.aws_region, m.aws_region);
		assert_string_equal(got.aws_service, m.aws_service);
		assert_string_equal(got.token_url, m.token_url);
		assert_string_equal(got.client_id, m.client_id);
		assert_string_equal(got.scope, m.scope);
		assert_int_equal(strlen(got.fingerprint), 64);
		char fp1[65];
		memcpy(fp1, got.fingerprint, 65);
		check_cred(f, name, t, v1);

		/* The token object: a key for HMAC types, a private data object otherwise. */
		snprintf(label, sizeof(label), "aam-secret/%s/v1", name);
		CK_OBJECT_HANDLE h[4];
		CK_OBJECT_CLASS want = vault_secret_type_is_hmac(t) ? CKO_SECRET_KEY : CKO_DATA;
		assert_int_equal(raw_find(f, rs, want, label, h, 4), 1);
		assert_int_equal(raw_bool(f, rs, h[0], CKA_PRIVATE), CK_TRUE);
		assert_int_equal(raw_bool(f, rs, h[0], CKA_TOKEN), CK_TRUE);
		if (want == CKO_SECRET_KEY) {
			assert_int_equal(raw_bool(f, rs, h[0], CKA_SENSITIVE), CK_TRUE);
			assert_int_equal(raw_bool(f, rs, h[0], CKA_EXTRACTABLE), CK_FALSE);
			assert_int_equal(raw_bool(f, rs, h[0], CKA_SIGN), CK_TRUE);
		}

		assert_int_equal(vault_secret_rotate(f->s, name, (const uint8_t *)v2, strlen(v2)),
		                 AAM_OK);
		assert_int_equal(vault_secret_get(f->s, name, &got), AAM_OK);
		assert_int_equal(got.version, 2);
		assert_string_not_equal(got.fingerprint, fp1);
		size_t nv = 0;
		assert_int_equal(vault_secret_versions(f->s, name, &nv), AAM_OK);
		assert_int_equal(nv, 2);
		check_cred(f, name, t, v2);
		/* The previous version is kept until pruned. */
		assert_int_equal(raw_find(f, rs, want, label, h, 4), 1);

		assert_int_equal(vault_secret_prune(f->s, name), AAM_OK);
		assert_int_equal(vault_secret_versions(f->s, name, &nv), AAM_OK);
		assert_int_equal(nv, 1);
		assert_int_equal(raw_find(f, rs, 0, label, h, 4), 0);
		check_cred(f, name, t, v2);
		assert_int_equal(vault_secret_get(f->s, name, &got), AAM_OK);
		assert_int_equal(got.version, 2);
		/* Rotating again continues the numbering. */
		assert_int_equal(vault_secret_rotate(f->s, name, (const uint8_t *)v1, strlen(v1)),
		                 AAM_OK);
		assert_int_equal(vault_secret_get(f->s, name, &got), AAM_OK);
		assert_int_equal(got.version, 3);
		assert_string_equal(got.fingerprint, fp1); /* same value, same keyed fingerprint */
		check_cred(f, name, t, v1);
	}
	struct list_ctx lc = {0};
	assert_int_equal(vault_secret_list(f->s, list_cb, &lc), AAM_OK);
	assert_int_equal(lc.n, NTYPES);
	for (size_t i = 1; i < NTYPES; i++)
		assert_true(strcmp(lc.names[i - 1], lc.names[i]) < 0);
	int calls = 0;
	assert_int_equal(vault_secret_list(f->s, list_stop_cb, &calls), 42);
	assert_int_equal(calls, 1);

	for (size_t i = 0; i < NTYPES; i++) {
		char name[64], prefix[96];
		snprintf(name, sizeof(name), "sec-%s", vault_secret_type_name(ALL_TYPES[i]));
		assert_int_equal(vault_secret_delete(f->s, name), AAM_OK);
		struct vault_secret_meta got;
		assert_int_equal(vault_secret_get(f->s, name, &got), AAM_E_NOTFOUND);
		struct vault_cred *c = NULL;
		assert_int_equal(vault_cred_open(f->s, name, &c), AAM_E_NOTFOUND);
		assert_null(c);
		assert_int_equal(vault_secret_delete(f->s, name), AAM_E_NOTFOUND);
		assert_int_equal(vault_secret_rotate(f->s, name, (const uint8_t *)"x", 1),
		                 AAM_E_NOTFOUND);
		for (int v = 1; v <= 3; v++) {
			CK_OBJECT_HANDLE h[2];
			snprintf(prefix, sizeof(prefix), "aam-secret/%s/v%d", name, v);
			assert_int_equal(raw_find(f, rs, 0, prefix, h, 2), 0);
		}
	}
	lc.n = 0;
	assert_int_equal(vault_secret_list(f->s, list_cb, &lc), AAM_OK);
	assert_int_equal(lc.n, 0);
	/* Only the AAM keys remain on the token. */
	CK_OBJECT_HANDLE all[32];
	assert_int_equal(raw_find(f, rs, 0, NULL, all, 32), 6);
	fl_of(f)->C_CloseSession(rs);
	/* A name can be reused after delete. */
	struct vault_secret_meta m;
	make_meta(&m, VAULT_SECRET_BEARER, "sec-bearer");
	assert_int_equal(vault_secret_put(f->s, &m, (const uint8_t *)"again-value", 11), AAM_OK);
	check_cred(f, "sec-bearer", VAULT_SECRET_BEARER, "again-value");
}

static void
test_hmac_keys_match_openssl(void **state)
{
	struct vfx *f = fx_get(state);
	store_init(f);
	/* Short, medium, block-sized and long keys: the token's HMAC equals HMAC with K. */
	const size_t lens[] = {1, 5, 31, 32, 40, 60, 64, 65, 100, 300};
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		for (int aws = 0; aws < 2; aws++) {
			char v[400], name[64];
			for (size_t j = 0; j < lens[i]; j++)
				v[j] = (char)('A' + (j * 7 + i) % 26);
			v[lens[i]] = '\0';
			enum vault_secret_type t = aws ? VAULT_SECRET_AWS_SIGV4 : VAULT_SECRET_HMAC;
			snprintf(name, sizeof(name), "hk-%zu-%d", lens[i], aws);
			struct vault_secret_meta m;
			make_meta(&m, t, name);
			assert_int_equal(vault_secret_put(f->s, &m, (const uint8_t *)v, lens[i]),
			                 AAM_OK);
			check_cred(f, name, t, v);
		}
	}
	/* AWS's documented example secret: kDate = HMAC("AWS4" + secret, "20150830"). */
	const char *aws_secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
	struct vault_secret_meta m;
	make_meta(&m, VAULT_SECRET_AWS_SIGV4, "aws-doc");
	assert_int_equal(
	        vault_secret_put(f->s, &m, (const uint8_t *)aws_secret, strlen(aws_secret)),
	        AAM_OK);
	check_cred(f, "aws-doc", VAULT_SECRET_AWS_SIGV4, aws_secret);
	/* Binary HMAC values are allowed, text types refuse control characters. */
	const uint8_t bin[] = {0, 1, 2, 0xff, '\n', 0x7f, 9, 0};
	make_meta(&m, VAULT_SECRET_HMAC, "binary");
	assert_int_equal(vault_secret_put(f->s, &m, bin, sizeof(bin)), AAM_OK);
	make_meta(&m, VAULT_SECRET_BEARER, "newline");
	assert_int_equal(vault_secret_put(f->s, &m, (const uint8_t *)"tok\n", 4), AAM_E_INVAL);
	assert_int_equal(vault_secret_put(f->s, &m, (const uint8_t *)"to\r\nX: y", 8), AAM_E_INVAL);
	assert_int_equal(vault_secret_put(f->s, &m, bin, 0), AAM_E_INVAL);
	assert_int_equal(vault_secret_put(f->s, &m, NULL, 4), AAM_E_INVAL);
}

static void
test_no_plaintext_on_token_disk_or_log(void **state)
{
	struct vfx *f = fx_get(state);
	char logpath[AAM_TEST_PATH_MAX + 32];
	snprintf(logpath, sizeof(logpath), "%s/log.txt", f->tmp);
	FILE *log = fopen(logpath, "w");
	assert_non_null(log);
	aam_log_set_stream(log);
	aam_log_set_level(AAM_LOG_DEBUG);

	store_init(f);
	char values[NTYPES * 2 + 1][128];
	for (size_t i = 0; i < NTYPES; i++) {
		enum vault_secret_type t = ALL_TYPES[i];
		char name[64];
		snprintf(name, sizeof(name), "leak-%s", vault_secret_type_name(t));
		make_value(values[2 * i], 128, t, 7);
		make_value(values[2 * i + 1], 128, t, 8);
		struct vault_secret_meta m;
		make_meta(&m, t, name);
		assert_int_equal(vault_secret_put(f->s, &m, (const uint8_t *)values[2 * i],
		                                  strlen(values[2 * i])),
		                 AAM_OK);
		assert_int_equal(vault_secret_rotate(f->s, name, (const uint8_t *)values[2 * i + 1],
		                                     strlen(values[2 * i + 1])),
		                 AAM_OK);
		check_cred(f, name, t, values[2 * i + 1]);
	}
	/* CBC + HMAC path too. */
	if (vault_store_set_cipher(f->s, VAULT_CIPHER_AES_CBC_HMAC) == AAM_OK) {
		struct vault_secret_meta m;
		make_meta(&m, VAULT_SECRET_BEARER, "leak-cbc");
		make_value(values[NTYPES * 2], 128, VAULT_SECRET_BEARER, 9);
		assert_int_equal(vault_secret_put(f->s, &m, (const uint8_t *)values[NTYPES * 2],
		                                  strlen(values[NTYPES * 2])),
		                 AAM_OK);
		check_cred(f, "leak-cbc", VAULT_SECRET_BEARER, values[NTYPES * 2]);
	} else {
		snprintf(values[NTYPES * 2], 128, "%s", values[0]);
	}

	/* Every object on the token: readable values and labels hold no encoding of a value. */
	CK_SESSION_HANDLE rs = raw_session(f);
	CK_OBJECT_HANDLE all[128];
	CK_ULONG n = raw_find(f, rs, 0, NULL, all, 128);
	assert_true(n >= 6 + NTYPES * 2);
	size_t readable = 0, sensitive = 0;
	for (CK_ULONG i = 0; i < n; i++) {
		static uint8_t buf[VAULT_VALUE_MAX + 256];
		CK_ATTRIBUTE a[] = {{CKA_VALUE, buf, sizeof(buf)}};
		CK_RV rv = fl_of(f)->C_GetAttributeValue(rs, all[i], a, 1);
		CK_OBJECT_CLASS cls = 0;
		CK_ATTRIBUTE ca = {CKA_CLASS, &cls, sizeof(cls)};
		assert_int_equal(fl_of(f)->C_GetAttributeValue(rs, all[i], &ca, 1), CKR_OK);
		if (cls == CKO_SECRET_KEY || cls == CKO_PRIVATE_KEY) {
			/* Every key, including each HMAC-type secret, refuses to show its value. */
			assert_int_equal(rv, CKR_ATTRIBUTE_SENSITIVE);
			sensitive++;
			continue;
		}
		if (rv == CKR_OK) {
			readable++;
			for (size_t j = 0; j <= NTYPES * 2; j++) {
				struct needles nd;
				needles_for(&nd, values[j]);
				assert_false(hay_has_any(buf, a[0].ulValueLen, &nd));
			}
		}
	}
	print_message("token: %zu readable values checked, %zu sensitive keys\n", readable,
	              sensitive);
	/* 5 encrypted types x 2 versions (+1 CBC); 2 EC + 2 AAM secret keys + 2 HMAC types x 2. */
	assert_true(readable >= 10);
	assert_int_equal(sensitive, 8);
	fl_of(f)->C_CloseSession(rs);

	/* The database (and its WAL) while open, then after close; the token files; the log. */
	char wal[AAM_TEST_PATH_MAX + 40], shm[AAM_TEST_PATH_MAX + 40];
	snprintf(wal, sizeof(wal), "%s-wal", f->db);
	snprintf(shm, sizeof(shm), "%s-shm", f->db);
	for (int pass = 0; pass < 2; pass++) {
		for (size_t j = 0; j <= NTYPES * 2; j++) {
			struct needles nd;
			needles_for(&nd, values[j]);
			assert_false(file_has_any(f->db, &nd));
			assert_false(file_has_any(wal, &nd));
			assert_false(file_has_any(shm, &nd));
			int files = 0;
			assert_false(tree_has_any(f->hsm.token_dir, &nd, &files));
			assert_true(files > 0);
		}
		vault_store_close(f->s);
		f->s = NULL;
	}
	fflush(log);
	aam_log_set_stream(NULL);
	aam_log_set_level(AAM_LOG_INFO);
	fclose(log);
	for (size_t j = 0; j <= NTYPES * 2; j++) {
		struct needles nd;
		needles_for(&nd, values[j]);
		assert_false(file_has_any(logpath, &nd));
	}
	/* The log did record the puts, with names and fingerprints only. */
	size_t ll = 0;
	char *text = aam_test_read_file(logpath, &ll);
	assert_non_null(text);
	assert_non_null(strstr(text, "event=vault.secret_put"));
	assert_non_null(strstr(text, "name=leak-aws-sigv4"));
	free(text);
}

static void
test_reopen_keeps_keys_and_secrets(void **state)
{
	struct vfx *f = fx_get(state);
	store_init(f);
	struct vault_pubkey iss, aud;
	assert_int_equal(vault_pubkey(f->s, VAULT_KEY_ISSUER, &iss), AAM_OK);
	assert_int_equal(vault_pubkey(f->s, VAULT_KEY_AUDIT, &aud), AAM_OK);
	assert_string_not_equal(iss.kid, aud.kid);
	struct vault_secret_meta m, a, b;
	make_meta(&m, VAULT_SECRET_HEADER, "keep-a");
	assert_int_equal(vault_secret_put(f->s, &m, (const uint8_t *)"value-one-1234", 14), AAM_OK);
	make_meta(&m, VAULT_SECRET_HMAC, "keep-b");
	assert_int_equal(vault_secret_put(f->s, &m, (const uint8_t *)"value-two-5678", 14), AAM_OK);
	make_meta(&m, VAULT_SECRET_BEARER, "keep-c");
	assert_int_equal(vault_secret_put(f->s, &m, (const uint8_t *)"value-one-1234", 14), AAM_OK);
	assert_int_equal(vault_secret_get(f->s, "keep-a", &a), AAM_OK);
	assert_int_equal(vault_secret_get(f->s, "keep-b", &b), AAM_OK);
	/* Fingerprints: equal for equal values, different for different ones. */
	assert_string_not_equal(a.fingerprint, b.fingerprint);
	struct vault_secret_meta c;
	assert_int_equal(vault_secret_get(f->s, "keep-c", &c), AAM_OK);
	assert_string_equal(a.fingerprint, c.fingerprint);

	store_reopen(f);
	struct vault_pubkey iss2;
	assert_int_equal(vault_pubkey(f->s, VAULT_KEY_ISSUER, &iss2), AAM_OK);
	assert_string_equal(iss.kid, iss2.kid);
	assert_memory_equal(iss.point, iss2.point, 65);
	struct vault_secret_meta a2, b2;
	assert_int_equal(vault_secret_get(f->s, "keep-a", &a2), AAM_OK);
	assert_int_equal(vault_secret_get(f->s, "keep-b", &b2), AAM_OK);
	assert_string_equal(a.fingerprint, a2.fingerprint);
	assert_string_equal(b.fingerprint, b2.fingerprint);
	assert_string_equal(a2.header, "x-api-key");
	check_cred(f, "keep-a", VAULT_SECRET_HEADER, "value-one-1234");
	check_cred(f, "keep-b", VAULT_SECRET_HMAC, "value-two-5678");
	/* The fingerprint is keyed: not the plain SHA-256 of the value. */
	uint8_t h[32];
	unsigned hl = 0;
	char hex[65];
	EVP_Digest("value-one-1234", 14, h, &hl, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", h[i]);
	assert_string_not_equal(hex, a2.fingerprint);
}

static void
test_sign_verifies_with_openssl(void **state)
{
	struct vfx *f = fx_get(state);
	store_init(f);
	for (int id = VAULT_KEY_ISSUER; id <= VAULT_KEY_AUDIT; id++) {
		struct vault_pubkey pk;
		assert_int_equal(vault_pubkey(f->s, (enum vault_key_id)id, &pk), AAM_OK);
		for (int i = 0; i < 50; i++) {
			uint8_t d[32], sig[64];
			RAND_bytes(d, sizeof(d));
			assert_int_equal(vault_sign(f->s, (enum vault_key_id)id, d, sig), AAM_OK);
			assert_int_equal(verify_rs(&pk, d, sig), 1);
			d[31] ^= 0x80;
			assert_int_not_equal(verify_rs(&pk, d, sig), 1);
		}
	}
	/* The two keys are distinct: an issuer signature does not verify as audit. */
	struct vault_pubkey aud;
	assert_int_equal(vault_pubkey(f->s, VAULT_KEY_AUDIT, &aud), AAM_OK);
	uint8_t d[32] = {9}, sig[64];
	assert_int_equal(vault_sign(f->s, VAULT_KEY_ISSUER, d, sig), AAM_OK);
	assert_int_not_equal(verify_rs(&aud, d, sig), 1);
	assert_int_equal(vault_sign(f->s, (enum vault_key_id)7, d, sig), AAM_E_INVAL);
	assert_int_equal(vault_sign(f->s, VAULT_KEY_ISSUER, NULL, sig), AAM_E_INVAL);
	assert_null(vault_key_label((enum vault_key_id)5));
	assert_string_equal(vault_key_label(VAULT_KEY_AUDIT), "aam-audit");
}

static void
test_rotate_issuer_keeps_previous(void **state)
{
	struct vfx *f = fx_get(state);
	store_init(f);
	struct vault_pubkey k0, k1, aud0, aud1, all[8];
	size_t n = 0;
	assert_int_equal(vault_pubkey(f->s, VAULT_KEY_ISSUER, &k0), AAM_OK);
	assert_int_equal(vault_pubkey(f->s, VAULT_KEY_AUDIT, &aud0), AAM_OK);
	assert_int_equal(vault_pubkeys_all(f->s, VAULT_KEY_ISSUER, all, 8, &n), AAM_OK);
	assert_int_equal(n, 1);

	assert_int_equal(vault_keys_rotate(f->s, VAULT_KEY_ISSUER), AAM_OK);
	assert_int_equal(vault_pubkey(f->s, VAULT_KEY_ISSUER, &k1), AAM_OK);
	assert_string_not_equal(k0.kid, k1.kid);
	assert_int_equal(vault_pubkeys_all(f->s, VAULT_KEY_ISSUER, all, 8, &n), AAM_OK);
	assert_int_equal(n, 2);
	assert_string_equal(all[0].kid, k1.kid);
	assert_string_equal(all[1].kid, k0.kid);
	assert_int_equal(vault_pubkey(f->s, VAULT_KEY_AUDIT, &aud1), AAM_OK);
	assert_string_equal(aud0.kid, aud1.kid);
	uint8_t d[32] = {3}, sig[64];
	assert_int_equal(vault_sign(f->s, VAULT_KEY_ISSUER, d, sig), AAM_OK);
	assert_int_equal(verify_rs(&k1, d, sig), 1);
	assert_int_not_equal(verify_rs(&k0, d, sig), 1);

	/* The old private key is gone; its public key stays as aam-issuer.prev.1. */
	CK_SESSION_HANDLE rs = raw_session(f);
	CK_OBJECT_HANDLE h[4];
	assert_int_equal(raw_find(f, rs, CKO_PRIVATE_KEY, "aam-issuer", h, 4), 1);
	assert_int_equal(raw_find(f, rs, CKO_PUBLIC_KEY, "aam-issuer.prev.1", h, 4), 1);
	assert_int_equal(raw_find(f, rs, CKO_PRIVATE_KEY, "aam-issuer.prev.1", h, 4), 0);
	CK_OBJECT_HANDLE privs[16];
	assert_int_equal(raw_find(f, rs, CKO_PRIVATE_KEY, NULL, privs, 16), 2);

	/* Survives a restart; rotates again, newest first; max bounds the answer. */
	store_reopen(f);
	assert_int_equal(vault_pubkeys_all(f->s, VAULT_KEY_ISSUER, all, 8, &n), AAM_OK);
	assert_int_equal(n, 2);
	assert_string_equal(all[0].kid, k1.kid);
	assert_string_equal(all[1].kid, k0.kid);
	assert_int_equal(vault_keys_rotate(f->s, VAULT_KEY_ISSUER), AAM_OK);
	assert_int_equal(vault_pubkeys_all(f->s, VAULT_KEY_ISSUER, all, 8, &n), AAM_OK);
	assert_int_equal(n, 3);
	assert_string_equal(all[1].kid, k1.kid);
	assert_string_equal(all[2].kid, k0.kid);
	assert_int_equal(vault_pubkeys_all(f->s, VAULT_KEY_ISSUER, all, 1, &n), AAM_OK);
	assert_int_equal(n, 1);
	assert_int_equal(vault_keys_rotate(f->s, VAULT_KEY_AUDIT), AAM_OK);
	assert_int_equal(vault_pubkeys_all(f->s, VAULT_KEY_AUDIT, all, 8, &n), AAM_OK);
	assert_int_equal(n, 2);
	assert_string_equal(all[1].kid, aud0.kid);
	assert_int_equal(vault_keys_rotate(f->s, (enum vault_key_id)3), AAM_E_INVAL);

	/* A rotation interrupted after generating the new pair is undone at the next open. */
	struct vault_pubkey cur;
	assert_int_equal(vault_pubkey(f->s, VAULT_KEY_ISSUER, &cur), AAM_OK);
	struct gen_ctx g = {.extractable = CK_FALSE, .label = "aam-issuer.new"};
	assert_int_equal(aam_p11_run(vault_store_p11(f->s), gen_extractable_op, &g), CKR_OK);
	store_reopen(f);
	rs = raw_session(f);
	assert_int_equal(raw_find(f, rs, 0, "aam-issuer.new", h, 4), 0);
	struct vault_pubkey after;
	assert_int_equal(vault_pubkey(f->s, VAULT_KEY_ISSUER, &after), AAM_OK);
	assert_string_equal(after.kid, cur.kid);

	/*
	 * Interrupted after the old pair was retired: the new pair is promoted.
	 * Simulate: retire the current public key by hand, destroy the private
	 * key, and leave a ".new" pair.
	 */
	assert_int_equal(aam_p11_run(vault_store_p11(f->s), gen_extractable_op, &g), CKR_OK);
	assert_int_equal(raw_find(f, rs, CKO_PUBLIC_KEY, "aam-issuer", h, 4), 1);
	CK_ATTRIBUTE la = {CKA_LABEL, (void *)(uintptr_t) "aam-issuer.prev.9", 17};
	assert_int_equal(fl_of(f)->C_SetAttributeValue(rs, h[0], &la, 1), CKR_OK);
	assert_int_equal(raw_find(f, rs, CKO_PRIVATE_KEY, "aam-issuer", h, 4), 1);
	assert_int_equal(fl_of(f)->C_DestroyObject(rs, h[0]), CKR_OK);
	fl_of(f)->C_CloseSession(rs);
	store_reopen(f);
	assert_int_equal(vault_pubkey(f->s, VAULT_KEY_ISSUER, &after), AAM_OK);
	assert_string_not_equal(after.kid, cur.kid);
	assert_int_equal(vault_pubkeys_all(f->s, VAULT_KEY_ISSUER, all, 8, &n), AAM_OK);
	assert_int_equal(n, 4);
	assert_string_equal(all[1].kid, cur.kid); /* prev.9 is the newest previous key */
	assert_int_equal(vault_sign(f->s, VAULT_KEY_ISSUER, d, sig), AAM_OK);
	assert_int_equal(verify_rs(&after, d, sig), 1);
}

static void
test_validation(void **state)
{
	struct vfx *f = fx_get(state);
	static const char *const good[] = {
	        "https://api.openai.com/v1/",
	        "https://api.example.com",
	        "https://api.example.com:8443/x",
	        "https://10.0.0.5/path",
	        "https://[2001:db8::1]:443/v1",
	        "http://127.0.0.1:8080/",
	        "http://localhost/api",
	        "http://[::1]:9000/",
	        "https://a-b.c-d.example/p;x=1/@/~",
	};
	static const char *const bad[] = {
	        "",
	        "api.example.com/v1",
	        "ftp://api.example.com/",
	        "HTTPS://api.example.com/",
	        "http://api.example.com/",        /* plain http off loopback */
	        "http://127.0.0.2/",              /* not the loopback we allow */
	        "https://user@api.example.com/",  /* userinfo */
	        "https://u:p@api.example.com/",   /* userinfo */
	        "https://api.example.com/?x=1",   /* query */
	        "https://api.example.com/#frag",  /* fragment */
	        "https://api.example.com./v1",    /* trailing dot */
	        "https://API.example.com/",       /* uppercase host */
	        "https://api..example.com/",      /* empty label */
	        "https://-api.example.com/",      /* hyphen */
	        "https://0x7f.0.0.1/",            /* numeric trick */
	        "https://2130706433/",            /* numeric trick */
	        "https://127.1/",                 /* short IPv4 */
	        "https://127.000.0.1/",           /* leading zeros */
	        "https://api.example.com:0/",     /* port 0 */
	        "https://api.example.com:65536/", /* port range */
	        "https://api.example.com:08/",    /* leading zero port */
	        "https://api.example.com:/",      /* empty port */
	        "https://api.example.com/a/../b", /* dot segment */
	        "https://api.example.com/a/./b",  /* dot segment */
	        "https://api.example.com//b",     /* empty segment */
	        "https://api.example.com/a%2fb",  /* percent-encoding */
	        "https://api.example.com/a b",    /* space */
	        "https://api.example.com\\@evil.com/",
	        "https://[::1/",
	        "https://[zz::1]/",
	        "https:///path",
	        "https://exa_mple.com/",
	};
	char err[700];
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int rc = vault_binding_validate(good[i], err, sizeof(err));
		if (rc != AAM_OK)
			print_message("good binding refused: %s: %s\n", good[i], err);
		assert_int_equal(rc, AAM_OK);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		int rc = vault_binding_validate(bad[i], err, sizeof(err));
		if (rc == AAM_OK)
			print_message("bad binding accepted: %s\n", bad[i]);
		assert_int_equal(rc, AAM_E_INVAL);
		assert_true(strlen(err) > 0);
	}
	char longurl[600];
	snprintf(longurl, sizeof(longurl), "https://api.example.com/%0550d", 0);
	assert_int_equal(vault_binding_validate(longurl, err, sizeof(err)), AAM_E_INVAL);
	assert_int_equal(vault_binding_validate(NULL, err, sizeof(err)), AAM_E_INVAL);

	enum vault_secret_type t;
	for (size_t i = 0; i < NTYPES; i++) {
		assert_int_equal(vault_secret_type_parse(vault_secret_type_name(ALL_TYPES[i]), &t),
		                 AAM_OK);
		assert_int_equal(t, ALL_TYPES[i]);
	}
	assert_string_equal(vault_secret_type_name(VAULT_SECRET_OAUTH2_CC),
	                    "oauth2-client-credentials");
	assert_int_equal(vault_secret_type_parse("Bearer", &t), AAM_E_INVAL);
	assert_int_equal(vault_secret_type_parse("", &t), AAM_E_INVAL);
	assert_null(vault_secret_type_name((enum vault_secret_type)0));
	assert_null(vault_secret_type_name((enum vault_secret_type)99));

	store_init(f);
	struct vault_secret_meta m;
	const uint8_t *v = (const uint8_t *)"value-123456";
	/* Names. */
	const char *badnames[] = {"", "-lead", "a/b", "a b", "ä", "x\n"};
	for (size_t i = 0; i < sizeof(badnames) / sizeof(badnames[0]); i++) {
		make_meta(&m, VAULT_SECRET_BEARER, badnames[i]);
		assert_int_equal(vault_secret_put(f->s, &m, v, 12), AAM_E_INVAL);
	}
	make_meta(&m, VAULT_SECRET_BEARER, "x");
	memset(m.name, 'n', sizeof(m.name)); /* unterminated */
	assert_int_equal(vault_secret_put(f->s, &m, v, 12), AAM_E_INVAL);
	/* Bindings. */
	make_meta(&m, VAULT_SECRET_BEARER, "b1");
	m.nbindings = 0;
	assert_int_equal(vault_secret_put(f->s, &m, v, 12), AAM_E_INVAL);
	m.nbindings = VAULT_MAX_BINDINGS + 1;
	assert_int_equal(vault_secret_put(f->s, &m, v, 12), AAM_E_INVAL);
	make_meta(&m, VAULT_SECRET_BEARER, "b1");
	snprintf(m.bindings[1], sizeof(m.bindings[1]), "https://evil@api.example.com/");
	assert_int_equal(vault_secret_put(f->s, &m, v, 12), AAM_E_INVAL);
	assert_int_equal(vault_secret_meta_validate(&m, err, sizeof(err)), AAM_E_INVAL);
	assert_non_null(strstr(err, "userinfo"));
	/* Options required by the type, and options foreign to it. */
	make_meta(&m, VAULT_SECRET_HEADER, "o1");
	m.header[0] = '\0';
	assert_int_equal(vault_secret_meta_validate(&m, err, sizeof(err)), AAM_E_INVAL);
	snprintf(m.header, sizeof(m.header), "x api key");
	assert_int_equal(vault_secret_meta_validate(&m, err, sizeof(err)), AAM_E_INVAL);
	snprintf(m.header, sizeof(m.header), "Content-Length");
	assert_int_equal(vault_secret_meta_validate(&m, err, sizeof(err)), AAM_E_INVAL);
	make_meta(&m, VAULT_SECRET_BEARER, "o2");
	snprintf(m.param, sizeof(m.param), "key");
	assert_int_equal(vault_secret_meta_validate(&m, err, sizeof(err)), AAM_E_INVAL);
	assert_non_null(strstr(err, "does not apply"));
	make_meta(&m, VAULT_SECRET_BASIC, "o3");
	snprintf(m.username, sizeof(m.username), "user:name");
	assert_int_equal(vault_secret_meta_validate(&m, err, sizeof(err)), AAM_E_INVAL);
	make_meta(&m, VAULT_SECRET_AWS_SIGV4, "o4");
	m.aws_region[0] = '\0';
	assert_int_equal(vault_secret_meta_validate(&m, err, sizeof(err)), AAM_E_INVAL);
	make_meta(&m, VAULT_SECRET_OAUTH2_CC, "o5");
	snprintf(m.token_url, sizeof(m.token_url), "http://auth.example.com/token");
	assert_int_equal(vault_secret_meta_validate(&m, err, sizeof(err)), AAM_E_INVAL);
	make_meta(&m, VAULT_SECRET_OAUTH2_CC, "o5");
	m.scope[0] = '\0'; /* scope is optional */
	assert_int_equal(vault_secret_meta_validate(&m, err, sizeof(err)), AAM_OK);
	make_meta(&m, VAULT_SECRET_QUERY, "o6");
	snprintf(m.param, sizeof(m.param), "a&b");
	assert_int_equal(vault_secret_meta_validate(&m, err, sizeof(err)), AAM_E_INVAL);
	m.type = (enum vault_secret_type)42;
	assert_int_equal(vault_secret_meta_validate(&m, err, sizeof(err)), AAM_E_INVAL);
	/* Values: size limits. */
	make_meta(&m, VAULT_SECRET_HMAC, "big");
	uint8_t *bigv = malloc(VAULT_VALUE_MAX + 1);
	assert_non_null(bigv);
	memset(bigv, 'v', VAULT_VALUE_MAX + 1);
	assert_int_equal(vault_secret_put(f->s, &m, bigv, VAULT_VALUE_MAX + 1), AAM_E_INVAL);
	make_meta(&m, VAULT_SECRET_BEARER, "big");
	assert_int_equal(vault_secret_put(f->s, &m, bigv, VAULT_VALUE_MAX), AAM_OK);
	struct vault_cred *c = NULL;
	assert_int_equal(vault_cred_open(f->s, "big", &c), AAM_OK);
	assert_int_equal(aam_secret_len(c->plain), VAULT_VALUE_MAX);
	assert_memory_equal(aam_secret_data(c->plain), bigv, VAULT_VALUE_MAX);
	vault_cred_free(c);
	vault_cred_free(NULL);
	free(bigv);
	/* Nothing refused above left a row or an object behind. */
	struct list_ctx lc = {0};
	assert_int_equal(vault_secret_list(f->s, list_cb, &lc), AAM_OK);
	assert_int_equal(lc.n, 1);
	assert_int_equal(vault_secret_get(f->s, "../x", &m), AAM_E_INVAL);
	assert_int_equal(vault_cred_open(f->s, "nope", &c), AAM_E_NOTFOUND);
}

static CK_RV
tamper_op(CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE s, void *vctx)
{
	const char **labels = vctx; /* [0] object to modify; [1] NULL = flip a byte, else source */
	CK_OBJECT_CLASS cls = CKO_DATA;
	CK_OBJECT_HANDLE h[2], src[2];
	CK_ULONG n = 0;
	CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
	                    {CKA_LABEL, (void *)(uintptr_t)labels[0], strlen(labels[0])}};
	fl->C_FindObjectsInit(s, t, 2);
	fl->C_FindObjects(s, h, 2, &n);
	fl->C_FindObjectsFinal(s);
	if (n != 1)
		return CKR_GENERAL_ERROR;
	static uint8_t buf[4096];
	CK_ATTRIBUTE a = {CKA_VALUE, buf, sizeof(buf)};
	if (labels[1] == NULL) {
		CK_RV rv = fl->C_GetAttributeValue(s, h[0], &a, 1);
		if (rv != CKR_OK)
			return rv;
		buf[a.ulValueLen / 2] ^= 0x01;
	} else {
		t[1].pValue = (void *)(uintptr_t)labels[1];
		t[1].ulValueLen = strlen(labels[1]);
		fl->C_FindObjectsInit(s, t, 2);
		fl->C_FindObjects(s, src, 2, &n);
		fl->C_FindObjectsFinal(s);
		if (n != 1)
			return CKR_GENERAL_ERROR;
		CK_RV rv = fl->C_GetAttributeValue(s, src[0], &a, 1);
		if (rv != CKR_OK)
			return rv;
	}
	/* CKA_VALUE of a data object is read-only: replace the object under the same label. */
	CK_RV rv = fl->C_DestroyObject(s, h[0]);
	if (rv != CKR_OK)
		return rv;
	CK_BBOOL yes = CK_TRUE;
	CK_ATTRIBUTE nt[] = {
	        {CKA_CLASS, &cls, sizeof(cls)},
	        {CKA_TOKEN, &yes, sizeof(yes)},
	        {CKA_PRIVATE, &yes, sizeof(yes)},
	        {CKA_LABEL, (void *)(uintptr_t)labels[0], strlen(labels[0])},
	        a,
	};
	return fl->C_CreateObject(s, nt, 5, &h[0]);
}

static void
test_ciphers_and_tampering(void **state)
{
	struct vfx *f = fx_get(state);
	store_init(f);
	enum vault_cipher ciphers[] = {VAULT_CIPHER_AES_GCM, VAULT_CIPHER_AES_CBC_HMAC};
	for (size_t i = 0; i < 2; i++) {
		if (vault_store_set_cipher(f->s, ciphers[i]) != AAM_OK) {
			print_message("cipher %zu not offered by this token\n", i);
			continue;
		}
		assert_int_equal(vault_store_cipher(f->s), ciphers[i]);
		char a[32], b[32], la[64], lb[64];
		snprintf(a, sizeof(a), "tamper-a-%zu", i);
		snprintf(b, sizeof(b), "tamper-b-%zu", i);
		snprintf(la, sizeof(la), "aam-secret/%s/v1", a);
		snprintf(lb, sizeof(lb), "aam-secret/%s/v1", b);
		struct vault_secret_meta m;
		make_meta(&m, VAULT_SECRET_BEARER, a);
		assert_int_equal(vault_secret_put(f->s, &m, (const uint8_t *)"alpha-value-1", 13),
		                 AAM_OK);
		make_meta(&m, VAULT_SECRET_BEARER, b);
		assert_int_equal(vault_secret_put(f->s, &m, (const uint8_t *)"bravo-value-2", 13),
		                 AAM_OK);
		check_cred(f, a, VAULT_SECRET_BEARER, "alpha-value-1");
		check_cred(f, b, VAULT_SECRET_BEARER, "bravo-value-2");
		/* Swapping ciphertexts between secrets fails: name and version are bound in. */
		const char *swap[2] = {lb, la};
		assert_int_equal(aam_p11_run(vault_store_p11(f->s), tamper_op, swap), CKR_OK);
		aam_p11_forget(vault_store_p11(f->s));
		struct vault_cred *c = NULL;
		assert_int_equal(vault_cred_open(f->s, b, &c), AAM_E_CRYPTO);
		assert_null(c);
		/* A flipped bit fails. */
		const char *flip[2] = {la, NULL};
		assert_int_equal(aam_p11_run(vault_store_p11(f->s), tamper_op, flip), CKR_OK);
		aam_p11_forget(vault_store_p11(f->s));
		assert_int_equal(vault_cred_open(f->s, a, &c), AAM_E_CRYPTO);
		assert_null(c);
		/* Rotation recovers: a new version with a fresh object. */
		assert_int_equal(vault_secret_rotate(f->s, a, (const uint8_t *)"alpha-value-3", 13),
		                 AAM_OK);
		check_cred(f, a, VAULT_SECRET_BEARER, "alpha-value-3");
	}
	assert_int_equal(vault_store_set_cipher(f->s, VAULT_CIPHER_AUTO), AAM_OK);
	assert_int_equal(vault_store_set_cipher(f->s, (enum vault_cipher)9), AAM_E_INVAL);

	/* Metadata that names a missing token object is an internal error, not "no secret". */
	struct vault_secret_meta m;
	make_meta(&m, VAULT_SECRET_QUERY, "orphan");
	assert_int_equal(vault_secret_put(f->s, &m, (const uint8_t *)"orphan-value", 12), AAM_OK);
	raw_destroy_label(f, CKO_DATA, "aam-secret/orphan/v1");
	aam_p11_forget(vault_store_p11(f->s));
	struct vault_cred *c = NULL;
	assert_int_equal(vault_cred_open(f->s, "orphan", &c), AAM_E_INTERNAL);
	/* Delete still works and cleans up. */
	assert_int_equal(vault_secret_delete(f->s, "orphan"), AAM_OK);
}

static void
test_cache_ttl(void **state)
{
	struct vfx *f = fx_get(state);
	store_init(f);
	struct vault_secret_meta m;
	make_meta(&m, VAULT_SECRET_BEARER, "cached");
	assert_int_equal(vault_secret_put(f->s, &m, (const uint8_t *)"cache-value-1", 13), AAM_OK);
	assert_int_equal(vault_store_set_cache_ttl(f->s, 999999), AAM_E_INVAL);
	assert_int_equal(vault_store_set_cache_ttl(f->s, 60), AAM_OK);
	check_cred(f, "cached", VAULT_SECRET_BEARER, "cache-value-1");
	/* With the ciphertext gone behind the store's back, the cache still serves it... */
	raw_destroy_label(f, CKO_DATA, "aam-secret/cached/v1");
	aam_p11_forget(vault_store_p11(f->s));
	check_cred(f, "cached", VAULT_SECRET_BEARER, "cache-value-1");
	/* ...until rotation changes the version, which is read from the token again. */
	assert_int_equal(vault_secret_rotate(f->s, "cached", (const uint8_t *)"cache-value-2", 13),
	                 AAM_OK);
	check_cred(f, "cached", VAULT_SECRET_BEARER, "cache-value-2");
	/* Turning the cache off wipes it: the token is asked again. */
	assert_int_equal(vault_store_set_cache_ttl(f->s, 0), AAM_OK);
	raw_destroy_label(f, CKO_DATA, "aam-secret/cached/v2");
	aam_p11_forget(vault_store_p11(f->s));
	struct vault_cred *c = NULL;
	assert_int_equal(vault_cred_open(f->s, "cached", &c), AAM_E_INTERNAL);
	/* Without a cache, nothing is served from memory by default. */
	make_meta(&m, VAULT_SECRET_BEARER, "uncached");
	assert_int_equal(vault_secret_put(f->s, &m, (const uint8_t *)"plain-value-9", 13), AAM_OK);
	check_cred(f, "uncached", VAULT_SECRET_BEARER, "plain-value-9");
	raw_destroy_label(f, CKO_DATA, "aam-secret/uncached/v1");
	aam_p11_forget(vault_store_p11(f->s));
	assert_int_equal(vault_cred_open(f->s, "uncached", &c), AAM_E_INTERNAL);
}

static void
test_session_loss(void **state)
{
	struct vfx *f = fx_get(state);
	store_init(f);
	struct vault_secret_meta m;
	make_meta(&m, VAULT_SECRET_BEARER, "s1");
	assert_int_equal(vault_secret_put(f->s, &m, (const uint8_t *)"session-value", 13), AAM_OK);
	make_meta(&m, VAULT_SECRET_HMAC, "s2");
	assert_int_equal(vault_secret_put(f->s, &m, (const uint8_t *)"session-hmac", 12), AAM_OK);
	struct vault_pubkey pk;
	assert_int_equal(vault_pubkey(f->s, VAULT_KEY_ISSUER, &pk), AAM_OK);
	aam_p11 *p = vault_store_p11(f->s);
	for (int round = 0; round < 4; round++) {
		/* Every session closed (a logout with it): each kind of operation recovers. */
		assert_int_equal(fl_of(f)->C_CloseAllSessions(aam_p11_slot(p)), CKR_OK);
		uint8_t d[32] = {(uint8_t)round}, sig[64];
		switch (round) {
		case 0:
			assert_int_equal(vault_sign(f->s, VAULT_KEY_ISSUER, d, sig), AAM_OK);
			assert_int_equal(verify_rs(&pk, d, sig), 1);
			break;
		case 1:
			check_cred(f, "s1", VAULT_SECRET_BEARER, "session-value");
			break;
		case 2:
			check_cred(f, "s2", VAULT_SECRET_HMAC, "session-hmac");
			break;
		default:
			assert_int_equal(vault_secret_rotate(f->s, "s1",
			                                     (const uint8_t *)"session-value2", 14),
			                 AAM_OK);
			check_cred(f, "s1", VAULT_SECRET_BEARER, "session-value2");
			break;
		}
	}
	/* An HMAC credential opened before a logout still signs (looked up again). */
	struct vault_cred *c = NULL;
	assert_int_equal(vault_cred_open(f->s, "s2", &c), AAM_OK);
	assert_int_equal(fl_of(f)->C_CloseAllSessions(aam_p11_slot(p)), CKR_OK);
	uint8_t mac[32], want[32];
	assert_int_equal(vault_cred_hmac(f->s, c, (const uint8_t *)"abc", 3, mac), AAM_OK);
	expect_hmac(VAULT_SECRET_HMAC, "session-hmac", (const uint8_t *)"abc", 3, want);
	assert_memory_equal(mac, want, 32);
	vault_cred_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_uninitialised_then_init, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_keys_have_the_right_attributes, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_extractable_key_is_refused_by_name, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_imported_or_missing_key_is_refused, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_missing_key_is_named, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_lifecycle_every_type, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_hmac_keys_match_openssl, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_no_plaintext_on_token_disk_or_log, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_reopen_keeps_keys_and_secrets, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_sign_verifies_with_openssl, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_rotate_issuer_keeps_previous, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_validation, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_ciphers_and_tampering, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_cache_ttl, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_session_loss, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
