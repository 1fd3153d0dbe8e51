/*
 * TPM 2.0 evidence verification.  See tpm_verify.h for the checks and
 * their order; every check maps to one enum attest_err.
 */
#include "attest/tpm_verify.h"
#include "attest/tpm_crypto.h"
#include "common/log.h"
#include "common/secret.h"
#include "aam/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#define EK_CERT_MAX 4096u

struct attest_ek_trust {
	X509_STORE *store;
	STACK_OF(X509) * intermediates;
	size_t nroots;
};

void
attest_ek_trust_free(struct attest_ek_trust *t)
{
	if (t == NULL)
		return;
	X509_STORE_free(t->store);
	sk_X509_pop_free(t->intermediates, X509_free);
	free(t);
}

int
attest_ek_trust_load(const char *const *paths, size_t n, struct attest_ek_trust **out, char *err,
                     size_t errlen)
{
	if (out == NULL || (paths == NULL && n > 0))
		return AAM_E_INVAL;
	*out = NULL;
	struct attest_ek_trust *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return AAM_E_NOMEM;
	t->store = X509_STORE_new();
	t->intermediates = sk_X509_new_null();
	if (t->store == NULL || t->intermediates == NULL) {
		attest_ek_trust_free(t);
		return AAM_E_NOMEM;
	}
	int rc = AAM_OK;
	for (size_t i = 0; i < n && rc == AAM_OK; i++) {
		FILE *f = fopen(paths[i], "r");
		if (f == NULL) {
			snprintf(err, errlen, "%s: cannot open EK CA file", paths[i]);
			rc = AAM_E_NOTFOUND;
			break;
		}
		size_t count = 0;
		X509 *x;
		while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
			count++;
			bool root = X509_self_signed(x, 1) == 1;
			int ok = root ? X509_STORE_add_cert(t->store, x)
			              : sk_X509_push(t->intermediates, x) > 0;
			if (root) {
				t->nroots++;
				X509_free(x);
			}
			if (!ok) {
				if (root)
					snprintf(err, errlen, "%s: cannot add CA certificate",
					         paths[i]);
				else
					X509_free(x);
				rc = AAM_E_NOMEM;
				break;
			}
		}
		fclose(f);
		/* The loop ends on EOF (expected) or on a malformed PEM block. */
		unsigned long e = ERR_peek_last_error();
		ERR_clear_error();
		if (rc == AAM_OK &&
		    (count == 0 || (e != 0 && ERR_GET_REASON(e) != PEM_R_NO_START_LINE))) {
			snprintf(err, errlen, "%s: not a PEM file of X.509 certificates", paths[i]);
			rc = AAM_E_CONFIG;
		}
	}
	if (rc == AAM_OK && n > 0 && t->nroots == 0) {
		snprintf(err, errlen, "EK CA files hold no self-signed root certificate");
		rc = AAM_E_CONFIG;
	}
	if (rc != AAM_OK) {
		attest_ek_trust_free(t);
		return rc;
	}
	*out = t;
	return AAM_OK;
}

/*
 * Parses the EK certificate.  NV indices are sometimes larger than the
 * certificate, so zero padding after the DER is tolerated; anything else
 * after it is not.
 */
static X509 *
ek_cert_parse(const uint8_t *p, size_t n)
{
	if (n == 0 || n > EK_CERT_MAX)
		return NULL;
	const unsigned char *q = p;
	X509 *x = d2i_X509(NULL, &q, (long)n);
	if (x == NULL) {
		ERR_clear_error();
		return NULL;
	}
	for (size_t i = (size_t)(q - p); i < n; i++)
		if (p[i] != 0) {
			X509_free(x);
			return NULL;
		}
	return x;
}

static void
sha256(const void *p, size_t n, uint8_t out[32])
{
	EVP_Digest(p, n, out, NULL, EVP_sha256(), NULL);
}

/* Chain verification; on success *CA_MATCH says whether the registered EK CA is in the chain. */
static enum attest_err
ek_chain_verify(const struct attest_ek_trust *trust, X509 *cert, const struct attest_reg *reg,
                bool *ca_match)
{
	*ca_match = false;
	if (trust == NULL || trust->nroots == 0)
		return ATTEST_E_EK_UNTRUSTED;
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	if (ctx == NULL)
		return ATTEST_E_INTERNAL;
	enum attest_err e = ATTEST_E_EK_UNTRUSTED;
	if (X509_STORE_CTX_init(ctx, trust->store, cert, trust->intermediates) != 1) {
		e = ATTEST_E_INTERNAL;
		goto out;
	}
	if (X509_verify_cert(ctx) != 1) {
		aam_log(AAM_LOG_INFO, "attest.ek_chain_failed",
		        AAM_F_STR("reason",
		                  X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx))));
		goto out;
	}
	STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
	for (int i = 1; reg->has_ek_ca && i < sk_X509_num(chain); i++) {
		unsigned char *der = NULL;
		int len = i2d_X509(sk_X509_value(chain, i), &der);
		if (len > 0) {
			uint8_t d[32];
			sha256(der, (size_t)len, d);
			if (memcmp(d, reg->ek_ca_sha256, 32) == 0)
				*ca_match = true;
		}
		OPENSSL_free(der);
	}
	e = ATTEST_OK;
out:
	X509_STORE_CTX_free(ctx);
	ERR_clear_error();
	return e;
}

static enum attest_err
check_ek(const struct attest_ek_trust *trust, const struct attest_reg *reg,
         const struct attest_tpm_begin_in *in, struct attest_tpm_public *ek)
{
	X509 *cert = ek_cert_parse(in->ek_cert, in->ek_cert_len);
	if (cert == NULL)
		return ATTEST_E_MALFORMED_EVIDENCE;
	EVP_PKEY *ekkey = NULL;
	bool ca_match = false;
	enum attest_err e = ek_chain_verify(trust, cert, reg, &ca_match);
	if (e != ATTEST_OK)
		goto out;
	if (attest_tpm_public_parse(in->ek_pub, in->ek_pub_len, ek) != AAM_OK) {
		e = ATTEST_E_MALFORMED_EVIDENCE;
		goto out;
	}
	/* An EK is a restricted decryption key and nothing else. */
	if (attest_tpm_pubkey(ek, &ekkey) != AAM_OK ||
	    (ek->attributes & (TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT | TPMA_OBJECT_SIGN)) !=
	            (TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)) {
		e = ATTEST_E_EK_UNSUPPORTED;
		goto out;
	}
	EVP_PKEY *certkey = X509_get0_pubkey(cert);
	if (certkey == NULL || EVP_PKEY_eq(certkey, ekkey) != 1) {
		e = ATTEST_E_EK_MISMATCH;
		goto out;
	}
	if (reg->has_ek_pub) {
		unsigned char *der = NULL;
		int len = i2d_PUBKEY(certkey, &der);
		uint8_t d[32];
		if (len > 0)
			sha256(der, (size_t)len, d);
		OPENSSL_free(der);
		if (len <= 0 || memcmp(d, reg->ek_pub_sha256, 32) != 0) {
			e = ATTEST_E_EK_NOT_REGISTERED;
			goto out;
		}
	}
	if (reg->has_ek_ca && !ca_match)
		e = ATTEST_E_EK_NOT_REGISTERED;
out:
	ERR_clear_error();
	EVP_PKEY_free(ekkey);
	X509_free(cert);
	return e;
}

static bool
has_all(uint32_t attrs, uint32_t want)
{
	return (attrs & want) == want;
}

/* A name algorithm strong enough to name a key by (not SHA-1). */
static bool
name_alg_ok(uint16_t alg)
{
	return alg == TPM_ALG_SHA256 || alg == TPM_ALG_SHA384 || alg == TPM_ALG_SHA512;
}

static enum attest_err
check_ak(const struct attest_tpm_begin_in *in, struct attest_tpm_public *ak, EVP_PKEY **akkey)
{
	if (attest_tpm_public_parse(in->ak_pub, in->ak_pub_len, ak) != AAM_OK)
		return ATTEST_E_MALFORMED_EVIDENCE;
	/*
	 * restricted + sign: the AK only signs TPM-generated structures, so a
	 * quote or certification it signed really came from the TPM.
	 * fixedTPM + fixedParent: it cannot be duplicated out of this TPM.
	 */
	uint32_t want = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN | TPMA_OBJECT_FIXEDTPM |
	                TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN;
	if (!has_all(ak->attributes, want) || (ak->attributes & TPMA_OBJECT_DECRYPT) != 0 ||
	    !name_alg_ok(ak->name_alg))
		return ATTEST_E_AK_ATTRIBUTES;
	if (attest_tpm_pubkey(ak, akkey) != AAM_OK)
		return ATTEST_E_AK_ATTRIBUTES;
	return ATTEST_OK;
}

static enum attest_err
check_key(const struct attest_tpm_begin_in *in, struct attest_tpm_public *key)
{
	if (attest_tpm_public_parse(in->key_pub, in->key_pub_len, key) != AAM_OK)
		return ATTEST_E_MALFORMED_EVIDENCE;
	uint32_t want = TPMA_OBJECT_SIGN | TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
	                TPMA_OBJECT_SENSITIVEDATAORIGIN;
	if (!has_all(key->attributes, want) || (key->attributes & TPMA_OBJECT_DECRYPT) != 0 ||
	    !name_alg_ok(key->name_alg))
		return ATTEST_E_KEY_ATTRIBUTES;
	if (key->type != TPM_ALG_ECC || key->curve != TPM_ECC_NIST_P256 || key->ecc_x.n != 32 ||
	    key->ecc_y.n != 32)
		return ATTEST_E_KEY_ATTRIBUTES;
	/* ES256 only: the key may fix ECDSA with SHA-256, or leave the scheme open. */
	if (key->scheme != TPM_ALG_NULL &&
	    (key->scheme != TPM_ALG_ECDSA || key->scheme_hash != TPM_ALG_SHA256))
		return ATTEST_E_KEY_ATTRIBUTES;
	return ATTEST_OK;
}

static enum attest_err
check_certify(const struct attest_tpm_begin_in *in, const struct attest_tpm_public *ak,
              EVP_PKEY *akkey, const struct attest_tpm_public *key)
{
	struct attest_tpm_bytes area;
	struct attest_tpm_signature sig;
	if (attest_tpm_attest_unwrap(in->certify_info, in->certify_info_len, &area) != AAM_OK ||
	    attest_tpm_signature_parse(in->certify_sig, in->certify_sig_len, &sig) != AAM_OK)
		return ATTEST_E_MALFORMED_EVIDENCE;
	/* The signature first: nothing inside is looked at before it is the AK's. */
	if (attest_tpm_verify(ak, akkey, &sig, area.p, area.n) != AAM_OK)
		return ATTEST_E_CERTIFY_INVALID;
	struct attest_tpm_attest a;
	if (attest_tpm_attest_parse(in->certify_info, in->certify_info_len, &a) != AAM_OK ||
	    a.magic != TPM_GENERATED_VALUE || a.type != TPM_ST_ATTEST_CERTIFY)
		return ATTEST_E_CERTIFY_INVALID;
	if (a.extra_data.n != in->nonce_len ||
	    !aam_ct_equal(a.extra_data.p, in->nonce, in->nonce_len))
		return ATTEST_E_CERTIFY_INVALID;
	uint8_t name[TPM_MAX_NAME];
	size_t namelen = 0;
	if (attest_tpm_public_name(key, name, &namelen) != AAM_OK)
		return ATTEST_E_KEY_ATTRIBUTES;
	if (a.certified_name.n != namelen || memcmp(a.certified_name.p, name, namelen) != 0)
		return ATTEST_E_CERTIFY_INVALID;
	return ATTEST_OK;
}

void
attest_tpm_challenge_init(struct attest_tpm_challenge *c)
{
	aam_buf_init(&c->credential_blob, 1024);
	aam_buf_init(&c->encrypted_secret, 1024);
}

void
attest_tpm_challenge_uninit(struct attest_tpm_challenge *c)
{
	aam_buf_uninit(&c->credential_blob);
	aam_buf_uninit(&c->encrypted_secret);
}

void
attest_tpm_session_uninit(struct attest_tpm_session *sess)
{
	if (sess == NULL)
		return;
	aam_jwk_uninit(&sess->key);
	aam_wipe(sess->secret, sizeof(sess->secret));
	memset(sess, 0, sizeof(*sess));
}

enum attest_err
attest_tpm_begin(const struct attest_ek_trust *trust, const struct attest_reg *reg,
                 const struct attest_tpm_begin_in *in, struct attest_tpm_session *sess,
                 struct attest_tpm_challenge *ch)
{
	if (reg == NULL || in == NULL || sess == NULL || ch == NULL)
		return ATTEST_E_INTERNAL;
	memset(sess, 0, sizeof(*sess));
	struct attest_tpm_public ek, ak, key;
	EVP_PKEY *akkey = NULL;
	enum attest_err e = check_ek(trust, reg, in, &ek);
	if (e == ATTEST_OK)
		e = check_ak(in, &ak, &akkey);
	if (e == ATTEST_OK)
		e = check_key(in, &key);
	if (e == ATTEST_OK)
		e = check_certify(in, &ak, akkey, &key);
	EVP_PKEY_free(akkey);
	if (e != ATTEST_OK)
		return e;

	uint8_t akname[TPM_MAX_NAME];
	size_t aknamelen = 0;
	if (attest_tpm_public_name(&ak, akname, &aknamelen) != AAM_OK)
		return ATTEST_E_AK_ATTRIBUTES;
	if (RAND_bytes(sess->secret, sizeof(sess->secret)) != 1 ||
	    RAND_bytes(sess->quote_nonce, sizeof(sess->quote_nonce)) != 1)
		return ATTEST_E_INTERNAL;
	int rc = attest_tpm_make_credential(&ek, akname, aknamelen, sess->secret,
	                                    sizeof(sess->secret), &ch->credential_blob,
	                                    &ch->encrypted_secret);
	if (rc == AAM_E_UNSUPPORTED)
		return ATTEST_E_EK_UNSUPPORTED;
	if (rc != AAM_OK)
		return ATTEST_E_INTERNAL;
	if (aam_jwk_from_xy(key.ecc_x.p, key.ecc_y.p, NULL, &sess->key) != AAM_OK)
		return ATTEST_E_KEY_ATTRIBUTES;
	memcpy(sess->ak_pub, in->ak_pub, in->ak_pub_len);
	sess->ak_pub_len = in->ak_pub_len;
	sess->reg_id = reg->id;
	sess->pcr_mask = reg->pcr_mask;
	return ATTEST_OK;
}

/* Whether SEL is exactly the SHA-256 bank with the PCRs of MASK. */
static bool
selection_is(const struct attest_tpm_pcr_selection *sel, uint32_t mask)
{
	if (sel->count != 1 || sel->banks[0].hash != TPM_ALG_SHA256)
		return false;
	for (unsigned i = 0; i < 8u * TPM_MAX_PCR_SELECT; i++) {
		bool want = i < ATTEST_PCR_COUNT && (mask >> i & 1u);
		if (attest_tpm_pcr_selected(sel, 0, i) != want)
			return false;
	}
	return true;
}

enum attest_err
attest_tpm_finish(const struct attest_tpm_session *sess, const struct attest_reg *reg,
                  const struct attest_tpm_finish_in *in)
{
	if (sess == NULL || reg == NULL || in == NULL)
		return ATTEST_E_INTERNAL;
	if (in->secret_len != sizeof(sess->secret) ||
	    !aam_ct_equal(in->secret, sess->secret, sizeof(sess->secret)))
		return ATTEST_E_CREDENTIAL_MISMATCH;

	struct attest_tpm_public ak;
	EVP_PKEY *akkey = NULL;
	if (attest_tpm_public_parse(sess->ak_pub, sess->ak_pub_len, &ak) != AAM_OK ||
	    attest_tpm_pubkey(&ak, &akkey) != AAM_OK)
		return ATTEST_E_INTERNAL;
	enum attest_err e = ATTEST_OK;
	struct attest_tpm_bytes area;
	struct attest_tpm_signature sig;
	struct attest_tpm_attest q;
	if (attest_tpm_attest_unwrap(in->quote, in->quote_len, &area) != AAM_OK ||
	    attest_tpm_signature_parse(in->quote_sig, in->quote_sig_len, &sig) != AAM_OK) {
		e = ATTEST_E_MALFORMED_EVIDENCE;
		goto out;
	}
	if (attest_tpm_verify(&ak, akkey, &sig, area.p, area.n) != AAM_OK) {
		e = ATTEST_E_QUOTE_SIGNATURE;
		goto out;
	}
	if (attest_tpm_attest_parse(in->quote, in->quote_len, &q) != AAM_OK ||
	    q.magic != TPM_GENERATED_VALUE || q.type != TPM_ST_ATTEST_QUOTE) {
		e = ATTEST_E_QUOTE_INVALID;
		goto out;
	}
	if (q.extra_data.n != sizeof(sess->quote_nonce) ||
	    !aam_ct_equal(q.extra_data.p, sess->quote_nonce, sizeof(sess->quote_nonce))) {
		e = ATTEST_E_NONCE_INVALID;
		goto out;
	}
	if (!selection_is(&q.pcr_select, sess->pcr_mask) || in->pcr_present != sess->pcr_mask) {
		e = ATTEST_E_QUOTE_PCR_SELECTION;
		goto out;
	}
	/* TPM2_Quote's digest: H(PCR values, lowest index first, in selection order). */
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t d[32];
	unsigned int dl = 0;
	int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
	for (unsigned i = 0; ok && i < ATTEST_PCR_COUNT; i++)
		if (sess->pcr_mask >> i & 1u)
			ok = EVP_DigestUpdate(md, in->pcrs[i], 32) == 1;
	ok = ok && EVP_DigestFinal_ex(md, d, &dl) == 1;
	EVP_MD_CTX_free(md);
	if (!ok) {
		e = ATTEST_E_INTERNAL;
		goto out;
	}
	if (q.pcr_digest.n != 32 || memcmp(q.pcr_digest.p, d, 32) != 0) {
		e = ATTEST_E_PCR_DIGEST;
		goto out;
	}
	/* The policy is read from the registration now, not from the session. */
	if ((reg->pcr_value_mask & ~sess->pcr_mask) != 0) {
		e = ATTEST_E_PCR_MISMATCH;
		goto out;
	}
	for (unsigned i = 0; i < ATTEST_PCR_COUNT; i++)
		if ((reg->pcr_value_mask >> i & 1u) &&
		    memcmp(reg->pcr_values[i], in->pcrs[i], 32) != 0) {
			e = ATTEST_E_PCR_MISMATCH;
			goto out;
		}
out:
	EVP_PKEY_free(akkey);
	return e;
}
