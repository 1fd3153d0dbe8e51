/*
 * TPM 2.0 cryptography in software.  See tpm_crypto.h.
 */
#include "attest/tpm_crypto.h"
#include "common/secret.h"
#include "aam/err.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

static const EVP_MD *
tpm_md(uint16_t alg)
{
	switch (alg) {
	case TPM_ALG_SHA1:
		return EVP_sha1();
	case TPM_ALG_SHA256:
		return EVP_sha256();
	case TPM_ALG_SHA384:
		return EVP_sha384();
	case TPM_ALG_SHA512:
		return EVP_sha512();
	default:
		return NULL;
	}
}

/* ---- keys ----------------------------------------------------------------- */

static int
tpm_rsa_pubkey(const struct attest_tpm_public *pub, EVP_PKEY **out)
{
	if (pub->rsa_bits != 2048 && pub->rsa_bits != 3072 && pub->rsa_bits != 4096)
		return AAM_E_UNSUPPORTED;
	if (pub->rsa_n.n != (size_t)pub->rsa_bits / 8 || (pub->rsa_n.p[0] & 0x80) == 0)
		return AAM_E_PARSE;
	uint32_t e = pub->rsa_exponent != 0 ? pub->rsa_exponent : 65537u;
	if (e < 3 || (e & 1u) == 0)
		return AAM_E_PARSE;

	int rc = AAM_E_CRYPTO;
	BIGNUM *n = BN_bin2bn(pub->rsa_n.p, (int)pub->rsa_n.n, NULL);
	BIGNUM *bn_e = BN_new();
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	if (n == NULL || bn_e == NULL || bld == NULL || BN_set_word(bn_e, e) != 1)
		goto out;
	if (OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) != 1)
		goto out;
	params = OSSL_PARAM_BLD_to_param(bld);
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1)
		goto out;
	if (EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) != 1)
		goto out;
	rc = AAM_OK;
out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn_e);
	BN_free(n);
	return rc;
}

static int
tpm_ecc_pubkey(const struct attest_tpm_public *pub, EVP_PKEY **out)
{
	const char *group;
	size_t flen;
	switch (pub->curve) {
	case TPM_ECC_NIST_P256:
		group = "prime256v1";
		flen = 32;
		break;
	case TPM_ECC_NIST_P384:
		group = "secp384r1";
		flen = 48;
		break;
	default:
		return AAM_E_UNSUPPORTED;
	}
	/* Coordinates may come without leading zeros; never longer than the field. */
	if (pub->ecc_x.n == 0 || pub->ecc_y.n == 0 || pub->ecc_x.n > flen || pub->ecc_y.n > flen)
		return AAM_E_PARSE;
	uint8_t point[1 + 2 * 48];
	memset(point, 0, sizeof(point));
	point[0] = 0x04;
	memcpy(point + 1 + flen - pub->ecc_x.n, pub->ecc_x.p, pub->ecc_x.n);
	memcpy(point + 1 + 2 * flen - pub->ecc_y.n, pub->ecc_y.p, pub->ecc_y.n);

	int rc = AAM_E_PARSE;
	OSSL_PARAM params[] = {
	        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
	                                         (char *)(uintptr_t)group, 0),
	        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * flen),
	        OSSL_PARAM_construct_end(),
	};
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *pk = NULL;
	if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1) {
		rc = AAM_E_CRYPTO;
		goto out;
	}
	if (EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
		goto out;
	/* A point off the curve must never become a key. */
	EVP_PKEY_CTX *chk = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
	int ok = chk != NULL && EVP_PKEY_public_check(chk) == 1;
	EVP_PKEY_CTX_free(chk);
	if (!ok) {
		EVP_PKEY_free(pk);
		goto out;
	}
	*out = pk;
	rc = AAM_OK;
out:
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

int
attest_tpm_pubkey(const struct attest_tpm_public *pub, EVP_PKEY **out)
{
	if (pub == NULL || out == NULL)
		return AAM_E_INVAL;
	*out = NULL;
	if (pub->type == TPM_ALG_RSA)
		return tpm_rsa_pubkey(pub, out);
	if (pub->type == TPM_ALG_ECC)
		return tpm_ecc_pubkey(pub, out);
	return AAM_E_UNSUPPORTED;
}

/* ---- signatures ----------------------------------------------------------- */

/* r and s of a TPM ECDSA signature as DER, for OpenSSL. */
static int
tpm_ecdsa_der(const struct attest_tpm_signature *sig, uint8_t **der, size_t *derlen)
{
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig->ecdsa_r.p, (int)sig->ecdsa_r.n, NULL);
	BIGNUM *s = BN_bin2bn(sig->ecdsa_s.p, (int)sig->ecdsa_s.n, NULL);
	if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
		ECDSA_SIG_free(es);
		BN_free(r);
		BN_free(s);
		return AAM_E_CRYPTO;
	}
	unsigned char *p = NULL;
	int len = i2d_ECDSA_SIG(es, &p);
	ECDSA_SIG_free(es);
	if (len <= 0)
		return AAM_E_CRYPTO;
	*der = p;
	*derlen = (size_t)len;
	return AAM_OK;
}

int
attest_tpm_verify(const struct attest_tpm_public *pub, EVP_PKEY *key,
                  const struct attest_tpm_signature *sig, const uint8_t *msg, size_t len)
{
	if (pub == NULL || key == NULL || sig == NULL || msg == NULL)
		return AAM_E_INVAL;
	if (sig->hash != TPM_ALG_SHA256 && sig->hash != TPM_ALG_SHA384 &&
	    sig->hash != TPM_ALG_SHA512)
		return AAM_E_DENIED;
	bool rsa_sig = sig->sig_alg == TPM_ALG_RSASSA || sig->sig_alg == TPM_ALG_RSAPSS;
	if ((pub->type == TPM_ALG_RSA) != rsa_sig)
		return AAM_E_DENIED;
	if (pub->type == TPM_ALG_ECC && sig->sig_alg != TPM_ALG_ECDSA)
		return AAM_E_DENIED;
	/* A key with a fixed scheme can only have produced that scheme. */
	if (pub->scheme != TPM_ALG_NULL &&
	    (pub->scheme != sig->sig_alg || pub->scheme_hash != sig->hash))
		return AAM_E_DENIED;

	const uint8_t *sp;
	size_t sn;
	uint8_t *der = NULL;
	if (rsa_sig) {
		sp = sig->rsa_sig.p;
		sn = sig->rsa_sig.n;
		if (sn != (size_t)EVP_PKEY_get_size(key))
			return AAM_E_DENIED;
	} else {
		if (tpm_ecdsa_der(sig, &der, &sn) != AAM_OK)
			return AAM_E_DENIED;
		sp = der;
	}

	int rc = AAM_E_DENIED;
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	if (mctx == NULL || EVP_DigestVerifyInit(mctx, &pctx, tpm_md(sig->hash), NULL, key) != 1) {
		rc = AAM_E_CRYPTO;
		goto out;
	}
	if (sig->sig_alg == TPM_ALG_RSAPSS &&
	    (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	     EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) != 1)) {
		rc = AAM_E_CRYPTO;
		goto out;
	}
	if (sig->sig_alg == TPM_ALG_RSASSA &&
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
		rc = AAM_E_CRYPTO;
		goto out;
	}
	if (EVP_DigestVerify(mctx, sp, sn, msg, len) == 1)
		rc = AAM_OK;
out:
	EVP_MD_CTX_free(mctx);
	OPENSSL_free(der);
	return rc;
}

/* ---- KDFs ------------------------------------------------------------------- */

#define KDF_INPUT_MAX 512u

static void
put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

int
attest_tpm_kdfa(uint16_t hash, const uint8_t *key, size_t keylen, const char *label,
                const uint8_t *ctx_u, size_t ulen, const uint8_t *ctx_v, size_t vlen, size_t bits,
                uint8_t *out)
{
	const EVP_MD *md = tpm_md(hash);
	if (md == NULL || key == NULL || label == NULL || out == NULL || bits == 0 ||
	    bits % 8 != 0 || bits > UINT32_MAX)
		return AAM_E_INVAL;
	size_t lablen = strlen(label) + 1;
	if (4 + lablen + ulen + vlen + 4 > KDF_INPUT_MAX)
		return AAM_E_TOOBIG;
	/* [i]32 || Label || 0x00 || ContextU || ContextV || [bits]32 */
	uint8_t in[KDF_INPUT_MAX];
	size_t off = 4;
	memcpy(in + off, label, lablen);
	off += lablen;
	if (ulen > 0)
		memcpy(in + off, ctx_u, ulen);
	off += ulen;
	if (vlen > 0)
		memcpy(in + off, ctx_v, vlen);
	off += vlen;
	put_u32(in + off, (uint32_t)bits);
	off += 4;

	size_t need = bits / 8, done = 0;
	uint8_t block[EVP_MAX_MD_SIZE];
	int rc = AAM_OK;
	for (uint32_t i = 1; done < need; i++) {
		put_u32(in, i);
		unsigned int blen = 0;
		if (HMAC(md, key, (int)keylen, in, off, block, &blen) == NULL) {
			rc = AAM_E_CRYPTO;
			break;
		}
		size_t take = need - done < blen ? need - done : blen;
		memcpy(out + done, block, take);
		done += take;
	}
	aam_wipe(block, sizeof(block));
	aam_wipe(in, sizeof(in));
	return rc;
}

int
attest_tpm_kdfe(uint16_t hash, const uint8_t *z, size_t zlen, const char *label,
                const uint8_t *party_u, size_t ulen, const uint8_t *party_v, size_t vlen,
                size_t bits, uint8_t *out)
{
	const EVP_MD *md = tpm_md(hash);
	if (md == NULL || z == NULL || label == NULL || out == NULL || bits == 0 || bits % 8 != 0)
		return AAM_E_INVAL;
	size_t lablen = strlen(label) + 1;
	if (4 + zlen + lablen + ulen + vlen > KDF_INPUT_MAX)
		return AAM_E_TOOBIG;
	/* H([i]32 || Z || Label || 0x00 || PartyUInfo || PartyVInfo) */
	uint8_t in[KDF_INPUT_MAX];
	size_t off = 4;
	memcpy(in + off, z, zlen);
	off += zlen;
	memcpy(in + off, label, lablen);
	off += lablen;
	if (ulen > 0)
		memcpy(in + off, party_u, ulen);
	off += ulen;
	if (vlen > 0)
		memcpy(in + off, party_v, vlen);
	off += vlen;

	size_t need = bits / 8, done = 0;
	uint8_t block[EVP_MAX_MD_SIZE];
	int rc = AAM_OK;
	for (uint32_t i = 1; done < need; i++) {
		put_u32(in, i);
		unsigned int blen = 0;
		if (EVP_Digest(in, off, block, &blen, md, NULL) != 1) {
			rc = AAM_E_CRYPTO;
			break;
		}
		size_t take = need - done < blen ? need - done : blen;
		memcpy(out + done, block, take);
		done += take;
	}
	aam_wipe(block, sizeof(block));
	aam_wipe(in, sizeof(in));
	return rc;
}

/* ---- MakeCredential -------------------------------------------------------- */

/* The seed, RSA-OAEP encrypted to the EK with the label "IDENTITY\0". */
static int
cred_seed_rsa(const struct attest_tpm_public *ek, EVP_PKEY *key, uint8_t *seed, size_t seedlen,
              struct aam_buf *enc_secret)
{
	if (RAND_bytes(seed, (int)seedlen) != 1)
		return AAM_E_CRYPTO;
	int rc = AAM_E_CRYPTO;
	uint8_t ct[TPM_MAX_RSA_BYTES];
	size_t ctlen = sizeof(ct);
	unsigned char *label = OPENSSL_malloc(9);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
	if (label == NULL || ctx == NULL)
		goto out;
	memcpy(label, "IDENTITY", 9);
	if (EVP_PKEY_encrypt_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md(ctx, tpm_md(ek->name_alg)) != 1 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, tpm_md(ek->name_alg)) != 1 ||
	    EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, label, 9) != 1)
		goto out;
	label = NULL; /* owned by CTX now */
	if (EVP_PKEY_encrypt(ctx, ct, &ctlen, seed, seedlen) != 1)
		goto out;
	aam_buf_append_u16be(enc_secret, (uint16_t)ctlen);
	aam_buf_append(enc_secret, ct, ctlen);
	rc = aam_buf_failed(enc_secret) ? enc_secret->err : AAM_OK;
out:
	OPENSSL_free(label);
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

/* An ephemeral ECDH key on the EK's curve; the seed is KDFe of the shared x. */
static int
cred_seed_ecc(const struct attest_tpm_public *ek, EVP_PKEY *key, uint8_t *seed, size_t seedlen,
              struct aam_buf *enc_secret)
{
	int rc = AAM_E_CRYPTO;
	size_t flen = ek->curve == TPM_ECC_NIST_P256 ? 32 : 48;
	EVP_PKEY *eph = NULL;
	EVP_PKEY_CTX *gctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
	EVP_PKEY_CTX *dctx = NULL;
	uint8_t z[48], pt[1 + 2 * 48], ek_x[48];
	size_t zlen = sizeof(z), ptlen = 0;
	if (gctx == NULL || EVP_PKEY_keygen_init(gctx) != 1 || EVP_PKEY_keygen(gctx, &eph) != 1)
		goto out;
	dctx = EVP_PKEY_CTX_new_from_pkey(NULL, eph, NULL);
	if (dctx == NULL || EVP_PKEY_derive_init(dctx) != 1 ||
	    EVP_PKEY_derive_set_peer(dctx, key) != 1 || EVP_PKEY_derive(dctx, z, &zlen) != 1 ||
	    zlen != flen)
		goto out;
	if (EVP_PKEY_get_octet_string_param(eph, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &ptlen) !=
	            1 ||
	    ptlen != 1 + 2 * flen || pt[0] != 0x04)
		goto out;
	memset(ek_x, 0, sizeof(ek_x));
	memcpy(ek_x + flen - ek->ecc_x.n, ek->ecc_x.p, ek->ecc_x.n);
	rc = attest_tpm_kdfe(ek->name_alg, z, zlen, "IDENTITY", pt + 1, flen, ek_x, flen,
	                     seedlen * 8, seed);
	if (rc != AAM_OK)
		goto out;
	/* TPMS_ECC_POINT of the ephemeral key inside the TPM2B. */
	aam_buf_append_u16be(enc_secret, (uint16_t)(4 + 2 * flen));
	aam_buf_append_u16be(enc_secret, (uint16_t)flen);
	aam_buf_append(enc_secret, pt + 1, flen);
	aam_buf_append_u16be(enc_secret, (uint16_t)flen);
	aam_buf_append(enc_secret, pt + 1 + flen, flen);
	rc = aam_buf_failed(enc_secret) ? enc_secret->err : AAM_OK;
out:
	aam_wipe(z, sizeof(z));
	EVP_PKEY_CTX_free(dctx);
	EVP_PKEY_CTX_free(gctx);
	EVP_PKEY_free(eph);
	return rc;
}

int
attest_tpm_make_credential(const struct attest_tpm_public *ek, const uint8_t *name, size_t namelen,
                           const uint8_t *secret, size_t secretlen, struct aam_buf *id_object,
                           struct aam_buf *enc_secret)
{
	if (ek == NULL || name == NULL || secret == NULL || id_object == NULL ||
	    enc_secret == NULL || namelen == 0 || namelen > TPM_MAX_NAME || secretlen == 0 ||
	    secretlen > ATTEST_TPM_CREDENTIAL_MAX)
		return AAM_E_INVAL;
	size_t hlen = attest_tpm_hash_size(ek->name_alg);
	const EVP_MD *md = tpm_md(ek->name_alg);
	if (md == NULL || ek->name_alg == TPM_ALG_SHA1)
		return AAM_E_UNSUPPORTED;
	/* The EK's symmetric definition protects the credential: AES-CFB only. */
	if (ek->sym_alg != TPM_ALG_AES || ek->sym_mode != TPM_ALG_CFB ||
	    (ek->sym_bits != 128 && ek->sym_bits != 256))
		return AAM_E_UNSUPPORTED;
	/* An EK is a restricted decryption key. */
	if ((ek->attributes & (TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)) !=
	            (TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT) ||
	    (ek->attributes & TPMA_OBJECT_SIGN) != 0)
		return AAM_E_UNSUPPORTED;

	EVP_PKEY *key = NULL;
	int rc = attest_tpm_pubkey(ek, &key);
	if (rc != AAM_OK)
		return rc;

	uint8_t seed[EVP_MAX_MD_SIZE], symkey[32], hmackey[EVP_MAX_MD_SIZE];
	uint8_t plain[2 + ATTEST_TPM_CREDENTIAL_MAX], enc[2 + ATTEST_TPM_CREDENTIAL_MAX];
	uint8_t mac[EVP_MAX_MD_SIZE];
	size_t es_mark = enc_secret->len, id_mark = id_object->len;
	EVP_CIPHER_CTX *cctx = NULL;

	if (ek->type == TPM_ALG_RSA)
		rc = cred_seed_rsa(ek, key, seed, hlen, enc_secret);
	else
		rc = cred_seed_ecc(ek, key, seed, hlen, enc_secret);
	if (rc != AAM_OK)
		goto out;

	/* encIdentity = CFB(symKey, iv 0, TPM2B_DIGEST credential) */
	rc = attest_tpm_kdfa(ek->name_alg, seed, hlen, "STORAGE", name, namelen, NULL, 0,
	                     ek->sym_bits, symkey);
	if (rc != AAM_OK)
		goto out;
	plain[0] = (uint8_t)(secretlen >> 8);
	plain[1] = (uint8_t)secretlen;
	memcpy(plain + 2, secret, secretlen);
	size_t plen = 2 + secretlen;
	uint8_t iv[16] = {0};
	int outl = 0, finl = 0;
	rc = AAM_E_CRYPTO;
	cctx = EVP_CIPHER_CTX_new();
	if (cctx == NULL ||
	    EVP_EncryptInit_ex(cctx,
	                       ek->sym_bits == 128 ? EVP_aes_128_cfb128() : EVP_aes_256_cfb128(),
	                       NULL, symkey, iv) != 1 ||
	    EVP_EncryptUpdate(cctx, enc, &outl, plain, (int)plen) != 1 ||
	    EVP_EncryptFinal_ex(cctx, enc + outl, &finl) != 1 || (size_t)(outl + finl) != plen)
		goto out;

	/* outerHMAC = HMAC(hmacKey, encIdentity || name) */
	rc = attest_tpm_kdfa(ek->name_alg, seed, hlen, "INTEGRITY", NULL, 0, NULL, 0, hlen * 8,
	                     hmackey);
	if (rc != AAM_OK)
		goto out;
	uint8_t macin[2 + ATTEST_TPM_CREDENTIAL_MAX + TPM_MAX_NAME];
	memcpy(macin, enc, plen);
	memcpy(macin + plen, name, namelen);
	unsigned int maclen = 0;
	rc = AAM_E_CRYPTO;
	if (HMAC(md, hmackey, (int)hlen, macin, plen + namelen, mac, &maclen) == NULL ||
	    maclen != hlen)
		goto out;

	/* TPM2B_ID_OBJECT { TPM2B_DIGEST integrityHMAC, encIdentity } */
	aam_buf_append_u16be(id_object, (uint16_t)(2 + hlen + plen));
	aam_buf_append_u16be(id_object, (uint16_t)hlen);
	aam_buf_append(id_object, mac, hlen);
	aam_buf_append(id_object, enc, plen);
	rc = aam_buf_failed(id_object) ? id_object->err : AAM_OK;
out:
	if (rc != AAM_OK) {
		enc_secret->len = es_mark;
		id_object->len = id_mark;
	}
	EVP_CIPHER_CTX_free(cctx);
	EVP_PKEY_free(key);
	aam_wipe(seed, sizeof(seed));
	aam_wipe(symkey, sizeof(symkey));
	aam_wipe(hmackey, sizeof(hmackey));
	aam_wipe(plain, sizeof(plain));
	return rc;
}
