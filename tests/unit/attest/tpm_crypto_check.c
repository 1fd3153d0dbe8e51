/*
 * attest/tpm_crypto: KDFa and KDFe against OpenSSL's own SP 800-108
 * (KBKDF) and SP 800-56C (SSKDF) implementations, and MakeCredential
 * against an independent software ActivateCredential written here with
 * those OpenSSL KDFs, for RSA and ECC endorsement keys.  The same
 * MakeCredential is checked against a real TPM in
 * tests/integration/attest_tpm_check.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>
#include <openssl/bn.h>

#include "aam/err.h"
#include "attest/tpm_crypto.h"
#include "attest/tpm_mu.h"
#include "common/buf.h"

static const char *
md_name(uint16_t alg)
{
	return alg == TPM_ALG_SHA384 ? "SHA384" : alg == TPM_ALG_SHA512 ? "SHA512" : "SHA256";
}

/* OpenSSL's KBKDF in counter mode: [i] || label || 0x00 || context || [L]. */
static void
ossl_kbkdf(uint16_t alg, const uint8_t *key, size_t keylen, const char *label, const uint8_t *ctx,
           size_t ctxlen, uint8_t *out, size_t outlen)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "KBKDF", NULL);
	EVP_KDF_CTX *k = EVP_KDF_CTX_new(kdf);
	OSSL_PARAM p[8];
	size_t n = 0;
	p[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MODE,
	                                          (char *)(uintptr_t) "counter", 0);
	p[n++] =
	        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MAC, (char *)(uintptr_t) "HMAC", 0);
	p[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
	                                          (char *)(uintptr_t)md_name(alg), 0);
	p[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)(uintptr_t)key,
	                                           keylen);
	p[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)(uintptr_t)label,
	                                           strlen(label));
	if (ctxlen > 0)
		p[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
		                                           (void *)(uintptr_t)ctx, ctxlen);
	p[n] = OSSL_PARAM_construct_end();
	assert_int_equal(EVP_KDF_derive(k, out, outlen, p), 1);
	EVP_KDF_CTX_free(k);
	EVP_KDF_free(kdf);
}

/* OpenSSL's SSKDF with a hash: H([i] || Z || info). */
static void
ossl_sskdf(uint16_t alg, const uint8_t *z, size_t zlen, const uint8_t *info, size_t infolen,
           uint8_t *out, size_t outlen)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SSKDF", NULL);
	EVP_KDF_CTX *k = EVP_KDF_CTX_new(kdf);
	OSSL_PARAM p[] = {
	        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
	                                         (char *)(uintptr_t)md_name(alg), 0),
	        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)(uintptr_t)z, zlen),
	        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)(uintptr_t)info,
	                                          infolen),
	        OSSL_PARAM_construct_end(),
	};
	assert_int_equal(EVP_KDF_derive(k, out, outlen, p), 1);
	EVP_KDF_CTX_free(k);
	EVP_KDF_free(kdf);
}

static void
test_kdfa_matches_kbkdf(void **state)
{
	(void)state;
	uint8_t key[48], ctxu[34], ctxv[20], a[100], b[100];
	RAND_bytes(key, sizeof(key));
	RAND_bytes(ctxu, sizeof(ctxu));
	RAND_bytes(ctxv, sizeof(ctxv));
	uint8_t ctx[sizeof(ctxu) + sizeof(ctxv)];
	memcpy(ctx, ctxu, sizeof(ctxu));
	memcpy(ctx + sizeof(ctxu), ctxv, sizeof(ctxv));
	const uint16_t algs[] = {TPM_ALG_SHA256, TPM_ALG_SHA384, TPM_ALG_SHA512};
	const size_t bits[] = {128, 256, 264, 512, 800};
	for (size_t i = 0; i < 3; i++)
		for (size_t j = 0; j < 5; j++) {
			assert_int_equal(attest_tpm_kdfa(algs[i], key, 32, "STORAGE", ctxu,
			                                 sizeof(ctxu), ctxv, sizeof(ctxv), bits[j],
			                                 a),
			                 AAM_OK);
			ossl_kbkdf(algs[i], key, 32, "STORAGE", ctx, sizeof(ctx), b, bits[j] / 8);
			assert_memory_equal(a, b, bits[j] / 8);
		}
	/* Without context, as for the integrity key. */
	assert_int_equal(
	        attest_tpm_kdfa(TPM_ALG_SHA256, key, 32, "INTEGRITY", NULL, 0, NULL, 0, 256, a),
	        AAM_OK);
	ossl_kbkdf(TPM_ALG_SHA256, key, 32, "INTEGRITY", NULL, 0, b, 32);
	assert_memory_equal(a, b, 32);
	/* Bad arguments. */
	assert_int_equal(attest_tpm_kdfa(TPM_ALG_AES, key, 32, "X", NULL, 0, NULL, 0, 128, a),
	                 AAM_E_INVAL);
	assert_int_equal(attest_tpm_kdfa(TPM_ALG_SHA256, key, 32, "X", NULL, 0, NULL, 0, 7, a),
	                 AAM_E_INVAL);
}

static void
test_kdfe_matches_sskdf(void **state)
{
	(void)state;
	uint8_t z[48], u[48], v[48], a[64], b[64];
	RAND_bytes(z, sizeof(z));
	RAND_bytes(u, sizeof(u));
	RAND_bytes(v, sizeof(v));
	uint8_t info[9 + 96];
	memcpy(info, "IDENTITY", 9);
	memcpy(info + 9, u, 48);
	memcpy(info + 57, v, 48);
	assert_int_equal(attest_tpm_kdfe(TPM_ALG_SHA384, z, 48, "IDENTITY", u, 48, v, 48, 384, a),
	                 AAM_OK);
	ossl_sskdf(TPM_ALG_SHA384, z, 48, info, sizeof(info), b, 48);
	assert_memory_equal(a, b, 48);
	memcpy(info + 9, u, 32);
	memcpy(info + 41, v, 32);
	assert_int_equal(attest_tpm_kdfe(TPM_ALG_SHA256, z, 32, "IDENTITY", u, 32, v, 32, 512, a),
	                 AAM_OK);
	ossl_sskdf(TPM_ALG_SHA256, z, 32, info, 9 + 64, b, 64);
	assert_memory_equal(a, b, 64);
}

/* ---- an EK as a TPM would publish it, with the private half kept here ---- */

struct ek {
	EVP_PKEY *priv;
	uint8_t pub[1024];
	size_t publen;
	struct attest_tpm_public tp;
};

static void
put16(struct aam_buf *b, unsigned v)
{
	aam_buf_append_u16be(b, (uint16_t)v);
}

static void
ek_finish(struct ek *e, struct aam_buf *area)
{
	assert_false(aam_buf_failed(area));
	e->pub[0] = (uint8_t)(area->len >> 8);
	e->pub[1] = (uint8_t)area->len;
	memcpy(e->pub + 2, area->data, area->len);
	e->publen = area->len + 2;
	aam_buf_uninit(area);
	assert_int_equal(attest_tpm_public_parse(e->pub, e->publen, &e->tp), AAM_OK);
}

static void
ek_rsa(struct ek *e, uint32_t attrs)
{
	e->priv = EVP_RSA_gen(2048);
	assert_non_null(e->priv);
	BIGNUM *n = NULL;
	assert_int_equal(EVP_PKEY_get_bn_param(e->priv, OSSL_PKEY_PARAM_RSA_N, &n), 1);
	uint8_t nb[256];
	assert_int_equal(BN_bn2binpad(n, nb, 256), 256);
	BN_free(n);
	struct aam_buf a;
	aam_buf_init(&a, 1024);
	put16(&a, TPM_ALG_RSA);
	put16(&a, TPM_ALG_SHA256);
	aam_buf_append_u32be(&a, attrs);
	put16(&a, 0); /* authPolicy */
	put16(&a, TPM_ALG_AES);
	put16(&a, 128);
	put16(&a, TPM_ALG_CFB);
	put16(&a, TPM_ALG_NULL);
	put16(&a, 2048);
	aam_buf_append_u32be(&a, 0);
	put16(&a, 256);
	aam_buf_append(&a, nb, 256);
	ek_finish(e, &a);
}

static void
ek_ecc(struct ek *e, bool p384)
{
	e->priv = EVP_EC_gen(p384 ? "secp384r1" : "prime256v1");
	assert_non_null(e->priv);
	size_t fl = p384 ? 48 : 32;
	uint8_t pt[97];
	size_t ptl = 0;
	assert_int_equal(EVP_PKEY_get_octet_string_param(e->priv, OSSL_PKEY_PARAM_PUB_KEY, pt,
	                                                 sizeof(pt), &ptl),
	                 1);
	assert_int_equal(ptl, 1 + 2 * fl);
	struct aam_buf a;
	aam_buf_init(&a, 1024);
	put16(&a, TPM_ALG_ECC);
	put16(&a, p384 ? TPM_ALG_SHA384 : TPM_ALG_SHA256);
	aam_buf_append_u32be(&a, 0x000300b2u);
	put16(&a, 0);
	put16(&a, TPM_ALG_AES);
	put16(&a, p384 ? 256 : 128);
	put16(&a, TPM_ALG_CFB);
	put16(&a, TPM_ALG_NULL);
	put16(&a, p384 ? TPM_ECC_NIST_P384 : TPM_ECC_NIST_P256);
	put16(&a, TPM_ALG_NULL);
	put16(&a, (unsigned)fl);
	aam_buf_append(&a, pt + 1, fl);
	put16(&a, (unsigned)fl);
	aam_buf_append(&a, pt + 1 + fl, fl);
	ek_finish(e, &a);
}

static uint16_t
rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/*
 * TPM2_ActivateCredential in software: recovers the seed with the EK's
 * private key, checks the outer HMAC and decrypts the credential.
 * Returns the credential length, or -1 when the integrity check fails.
 */
static int
activate(const struct ek *e, const uint8_t *name, size_t namelen, const struct aam_buf *id,
         const struct aam_buf *es, uint8_t *secret)
{
	uint16_t alg = e->tp.name_alg;
	size_t hl = attest_tpm_hash_size(alg);
	const EVP_MD *md = alg == TPM_ALG_SHA384 ? EVP_sha384() : EVP_sha256();
	uint8_t seed[512]; /* RSA decryption wants room for a whole modulus */
	assert_int_equal(rd16(es->data), es->len - 2);
	if (e->tp.type == TPM_ALG_RSA) {
		EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(e->priv, NULL);
		unsigned char *label = OPENSSL_malloc(9);
		memcpy(label, "IDENTITY", 9);
		size_t sl = sizeof(seed);
		assert_int_equal(EVP_PKEY_decrypt_init(c), 1);
		EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING);
		EVP_PKEY_CTX_set_rsa_oaep_md(c, md);
		EVP_PKEY_CTX_set_rsa_mgf1_md(c, md);
		EVP_PKEY_CTX_set0_rsa_oaep_label(c, label, 9);
		assert_int_equal(EVP_PKEY_decrypt(c, seed, &sl, es->data + 2, es->len - 2), 1);
		assert_int_equal(sl, hl);
		EVP_PKEY_CTX_free(c);
	} else {
		size_t fl = e->tp.ecc_x.n;
		const uint8_t *p = es->data + 2;
		assert_int_equal(rd16(p), fl);
		assert_int_equal(rd16(p + 2 + fl), fl);
		uint8_t pt[97];
		pt[0] = 0x04;
		memcpy(pt + 1, p + 2, fl);
		memcpy(pt + 1 + fl, p + 4 + fl, fl);
		EVP_PKEY *eph = EVP_PKEY_new();
		EVP_PKEY_copy_parameters(eph, e->priv);
		assert_int_equal(EVP_PKEY_set1_encoded_public_key(eph, pt, 1 + 2 * fl), 1);
		EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(e->priv, NULL);
		uint8_t z[48];
		size_t zl = sizeof(z);
		assert_int_equal(EVP_PKEY_derive_init(c), 1);
		assert_int_equal(EVP_PKEY_derive_set_peer(c, eph), 1);
		assert_int_equal(EVP_PKEY_derive(c, z, &zl), 1);
		uint8_t info[9 + 96];
		memcpy(info, "IDENTITY", 9);
		memcpy(info + 9, pt + 1, fl);
		memcpy(info + 9 + fl, e->tp.ecc_x.p, fl);
		ossl_sskdf(alg, z, zl, info, 9 + 2 * fl, seed, hl);
		EVP_PKEY_CTX_free(c);
		EVP_PKEY_free(eph);
	}
	/* TPM2B_ID_OBJECT { TPM2B_DIGEST hmac, encIdentity } */
	const uint8_t *p = id->data;
	assert_int_equal(rd16(p), id->len - 2);
	assert_int_equal(rd16(p + 2), hl);
	const uint8_t *mac = p + 4, *enc = p + 4 + hl;
	size_t enclen = id->len - 4 - hl;
	uint8_t hkey[64], want[64], macin[256];
	ossl_kbkdf(alg, seed, hl, "INTEGRITY", NULL, 0, hkey, hl);
	memcpy(macin, enc, enclen);
	memcpy(macin + enclen, name, namelen);
	unsigned int ml = 0;
	HMAC(md, hkey, (int)hl, macin, enclen + namelen, want, &ml);
	if (memcmp(want, mac, hl) != 0)
		return -1;
	size_t symbits = e->tp.sym_bits;
	uint8_t skey[32], iv[16] = {0}, plain[128];
	ossl_kbkdf(alg, seed, hl, "STORAGE", name, namelen, skey, symbits / 8);
	EVP_CIPHER_CTX *cc = EVP_CIPHER_CTX_new();
	int ol = 0;
	EVP_DecryptInit_ex(cc, symbits == 128 ? EVP_aes_128_cfb128() : EVP_aes_256_cfb128(), NULL,
	                   skey, iv);
	EVP_DecryptUpdate(cc, plain, &ol, enc, (int)enclen);
	EVP_CIPHER_CTX_free(cc);
	size_t sl = rd16(plain);
	assert_int_equal(sl + 2, enclen);
	memcpy(secret, plain + 2, sl);
	return (int)sl;
}

static void
roundtrip(struct ek *e)
{
	uint8_t name[34] = {0x00, 0x0b}, secret[32], got[64];
	RAND_bytes(name + 2, 32);
	RAND_bytes(secret, sizeof(secret));
	struct aam_buf id, es;
	aam_buf_init(&id, 1024);
	aam_buf_init(&es, 1024);
	assert_int_equal(attest_tpm_make_credential(&e->tp, name, sizeof(name), secret,
	                                            sizeof(secret), &id, &es),
	                 AAM_OK);
	assert_int_equal(activate(e, name, sizeof(name), &id, &es, got), 32);
	assert_memory_equal(got, secret, 32);
	/* Bound to the AK's name: another name fails the integrity check. */
	name[5] ^= 1;
	assert_int_equal(activate(e, name, sizeof(name), &id, &es, got), -1);
	aam_buf_uninit(&id);
	aam_buf_uninit(&es);
	EVP_PKEY_free(e->priv);
}

static void
test_make_credential_rsa(void **state)
{
	(void)state;
	struct ek e;
	ek_rsa(&e, 0x000300b2u);
	roundtrip(&e);
}

static void
test_make_credential_ecc_p256(void **state)
{
	(void)state;
	struct ek e;
	ek_ecc(&e, false);
	roundtrip(&e);
}

static void
test_make_credential_ecc_p384(void **state)
{
	(void)state;
	struct ek e;
	ek_ecc(&e, true);
	roundtrip(&e);
}

/* Keys that are not EKs and bad arguments are refused before any work. */
static void
test_make_credential_refusals(void **state)
{
	(void)state;
	struct ek e;
	ek_rsa(&e, 0x000500b2u); /* restricted signing key, not a decryption key */
	uint8_t name[34] = {0x00, 0x0b}, secret[32] = {1};
	struct aam_buf id, es;
	aam_buf_init(&id, 1024);
	aam_buf_init(&es, 1024);
	assert_int_equal(attest_tpm_make_credential(&e.tp, name, sizeof(name), secret,
	                                            sizeof(secret), &id, &es),
	                 AAM_E_UNSUPPORTED);
	struct attest_tpm_public t = e.tp;
	t.attributes = 0x000300b2u;
	t.sym_mode = 0x0042; /* CBC */
	assert_int_equal(attest_tpm_make_credential(&t, name, sizeof(name), secret, sizeof(secret),
	                                            &id, &es),
	                 AAM_E_UNSUPPORTED);
	t.sym_mode = TPM_ALG_CFB;
	assert_int_equal(attest_tpm_make_credential(&t, name, 0, secret, sizeof(secret), &id, &es),
	                 AAM_E_INVAL);
	assert_int_equal(attest_tpm_make_credential(&t, name, sizeof(name), secret, 65, &id, &es),
	                 AAM_E_INVAL);
	assert_int_equal(id.len, 0);
	assert_int_equal(es.len, 0);
	aam_buf_uninit(&id);
	aam_buf_uninit(&es);
	EVP_PKEY_free(e.priv);
}

/* A TPM public area whose point is not on the curve never becomes a key. */
static void
test_pubkey_off_curve(void **state)
{
	(void)state;
	struct ek e;
	ek_ecc(&e, false);
	uint8_t b[1024];
	memcpy(b, e.pub, e.publen);
	b[e.publen - 1] ^= 0x01; /* last byte of y */
	struct attest_tpm_public t;
	assert_int_equal(attest_tpm_public_parse(b, e.publen, &t), AAM_OK);
	EVP_PKEY *k = NULL;
	assert_int_equal(attest_tpm_pubkey(&t, &k), AAM_E_PARSE);
	assert_null(k);
	EVP_PKEY_free(e.priv);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_kdfa_matches_kbkdf),
	        cmocka_unit_test(test_kdfe_matches_sskdf),
	        cmocka_unit_test(test_make_credential_rsa),
	        cmocka_unit_test(test_make_credential_ecc_p256),
	        cmocka_unit_test(test_make_credential_ecc_p384),
	        cmocka_unit_test(test_make_credential_refusals),
	        cmocka_unit_test(test_pubkey_off_curve),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
