/*
 * The TPM evidence of one attestation (docs/ATTEST.md, "Agent side"):
 * the EK certificate from NV, the EK, TPM2_Certify of the signing key by
 * the AK, TPM2_ActivateCredential with the EK's policy session, and
 * TPM2_Quote with the PCR values it covers.
 */
#include "agent/tpm_int.h"
#include "aam/err.h"
#include "common/log.h"
#include "common/secret.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <tss2/tss2_mu.h>

#define NV_CHUNK         512u
#define EK_CERT_MAX      4096u
#define QUOTE_ATTEMPTS   3
#define EK_MODULUS_BYTES 256u

/* TPM2_PolicySecret(TPM_RH_ENDORSEMENT): the TCG default EK's authPolicy. */
static const uint8_t EK_POLICY[32] = {0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xB3, 0xF8,
                                      0x1A, 0x90, 0xCC, 0x8D, 0x46, 0xA5, 0xD7, 0x24,
                                      0xFD, 0x52, 0xD7, 0x6E, 0x06, 0x52, 0x0B, 0x64,
                                      0xF2, 0xA1, 0xDA, 0x1B, 0x33, 0x14, 0x69, 0xAA};

#define EK_ATTRS                                                                                   \
	(TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |        \
	 TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)

/* The RSA 2048 EK template of the TCG EK Credential Profile (template L-1). */
static void
ek_template(TPM2B_PUBLIC *p)
{
	memset(p, 0, sizeof(*p));
	TPMT_PUBLIC *a = &p->publicArea;
	a->type = TPM2_ALG_RSA;
	a->nameAlg = TPM2_ALG_SHA256;
	a->objectAttributes = EK_ATTRS;
	a->authPolicy.size = 32;
	memcpy(a->authPolicy.buffer, EK_POLICY, 32);
	a->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
	a->parameters.rsaDetail.symmetric.keyBits.aes = 128;
	a->parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
	a->parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
	a->parameters.rsaDetail.keyBits = 2048;
	a->parameters.rsaDetail.exponent = 0;
	a->unique.rsa.size = EK_MODULUS_BYTES;
}

/* ---- EK certificate ------------------------------------------------------------- */

/*
 * NV indices are often larger than the certificate they hold: the DER
 * header says how long it really is.
 */
static size_t
der_length(const uint8_t *p, size_t n)
{
	if (n < 2 || p[0] != 0x30)
		return n;
	size_t len, hdr;
	if (p[1] < 0x80) {
		len = p[1];
		hdr = 2;
	} else {
		size_t k = p[1] & 0x7fu;
		if (k == 0 || k > 3 || n < 2 + k)
			return n;
		len = 0;
		for (size_t i = 0; i < k; i++)
			len = len << 8 | p[2 + i];
		hdr = 2 + k;
	}
	return hdr + len <= n ? hdr + len : n;
}

static int
read_ek_cert(struct agent_tpm *t, struct aam_buf *der, char *msg, size_t msglen)
{
	ESYS_TR nv = ESYS_TR_NONE;
	TSS2_RC rc = Esys_TR_FromTPMPublic(t->esys, AGENT_TPM_NV_EK_CERT_RSA, ESYS_TR_NONE,
	                                   ESYS_TR_NONE, ESYS_TR_NONE, &nv);
	if (rc != TSS2_RC_SUCCESS) {
		snprintf(msg, msglen,
		         "the TPM has no RSA EK certificate in NV index 0x%08x (was it provisioned "
		         "with one?)",
		         AGENT_TPM_NV_EK_CERT_RSA);
		return AAM_E_NOTFOUND;
	}
	TPM2B_NV_PUBLIC *np = NULL;
	TPM2B_NAME *name = NULL;
	rc = Esys_NV_ReadPublic(t->esys, nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &np, &name);
	Esys_Free(name);
	if (rc != TSS2_RC_SUCCESS) {
		Esys_TR_Close(t->esys, &nv);
		return agent_tpm_fail(rc, "TPM2_NV_ReadPublic (EK certificate)", msg, msglen);
	}
	size_t size = np->nvPublic.dataSize;
	TPMA_NV attrs = np->nvPublic.attributes;
	Esys_Free(np);
	/* EK certificate indices are readable with their own (empty) auth or the owner's. */
	ESYS_TR auth = (attrs & TPMA_NV_AUTHREAD) ? nv : ESYS_TR_RH_OWNER;
	int out = AAM_OK;
	if (size == 0 || size > EK_CERT_MAX) {
		snprintf(msg, msglen, "the EK certificate index has an unexpected size (%zu)",
		         size);
		out = AAM_E_PARSE;
	}
	aam_buf_reset(der);
	for (size_t off = 0; out == AAM_OK && off < size;) {
		size_t n = size - off < NV_CHUNK ? size - off : NV_CHUNK;
		TPM2B_MAX_NV_BUFFER *data = NULL;
		rc = Esys_NV_Read(t->esys, auth, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
		                  (UINT16)n, (UINT16)off, &data);
		if (rc != TSS2_RC_SUCCESS) {
			out = agent_tpm_fail(rc, "TPM2_NV_Read (EK certificate)", msg, msglen);
			break;
		}
		if (data->size == 0 || data->size > n) {
			Esys_Free(data);
			snprintf(msg, msglen, "TPM2_NV_Read returned a short answer");
			out = AAM_E_HSM;
			break;
		}
		out = aam_buf_append(der, data->buffer, data->size);
		off += data->size;
		Esys_Free(data);
	}
	Esys_TR_Close(t->esys, &nv);
	if (out == AAM_OK)
		der->len = der_length(der->data, der->len);
	return out;
}

int
agent_tpm_ek_cert(struct agent_tpm *t, struct aam_buf *der, char *msg, size_t msglen)
{
	pthread_mutex_lock(&t->mu);
	int rc = read_ek_cert(t, der, msg, msglen);
	pthread_mutex_unlock(&t->mu);
	return rc;
}

/* ---- the EK ----------------------------------------------------------------------- */

/* Whether PUB is an EK of the default template whose modulus is the certificate's key. */
static bool
ek_matches_cert(const TPM2B_PUBLIC *pub, const struct aam_buf *cert)
{
	const TPMT_PUBLIC *a = &pub->publicArea;
	if (a->type != TPM2_ALG_RSA || a->objectAttributes != EK_ATTRS ||
	    a->unique.rsa.size != EK_MODULUS_BYTES || a->authPolicy.size != 32 ||
	    memcmp(a->authPolicy.buffer, EK_POLICY, 32) != 0)
		return false;
	const unsigned char *q = cert->data;
	X509 *x = d2i_X509(NULL, &q, (long)cert->len);
	if (x == NULL)
		return false;
	bool ok = false;
	BIGNUM *n = NULL;
	uint8_t mod[EK_MODULUS_BYTES];
	EVP_PKEY *pk = X509_get0_pubkey(x);
	if (pk != NULL && EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &n) == 1 &&
	    BN_num_bytes(n) == (int)EK_MODULUS_BYTES &&
	    BN_bn2binpad(n, mod, sizeof(mod)) == (int)EK_MODULUS_BYTES)
		ok = memcmp(mod, a->unique.rsa.buffer, EK_MODULUS_BYTES) == 0;
	BN_free(n);
	X509_free(x);
	return ok;
}

static bool
persistent_exists(struct agent_tpm *t, TPM2_HANDLE h)
{
	TPMS_CAPABILITY_DATA *cap = NULL;
	TPMI_YES_NO more = 0;
	TSS2_RC rc = Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
	                                TPM2_CAP_HANDLES, h, 1, &more, &cap);
	bool found = rc == TSS2_RC_SUCCESS && cap->data.handles.count == 1 &&
	             cap->data.handles.handle[0] == h;
	Esys_Free(cap);
	return found;
}

/*
 * Makes T->EK the EK whose certificate CERT is: the persistent one when
 * it is that key (no RSA key generation then), else a primary created
 * from the template.  PUB receives its public area.
 */
static int
ek_get(struct agent_tpm *t, const struct aam_buf *cert, TPM2B_PUBLIC *pub, char *msg, size_t msglen)
{
	t->ek = ESYS_TR_NONE;
	t->ek_transient = false;
	if (persistent_exists(t, AGENT_TPM_EK_PERSISTENT)) {
		ESYS_TR h = ESYS_TR_NONE;
		TPM2B_PUBLIC *p = NULL;
		TPM2B_NAME *n1 = NULL, *n2 = NULL;
		TSS2_RC rc = Esys_TR_FromTPMPublic(t->esys, AGENT_TPM_EK_PERSISTENT, ESYS_TR_NONE,
		                                   ESYS_TR_NONE, ESYS_TR_NONE, &h);
		if (rc == TSS2_RC_SUCCESS)
			rc = Esys_ReadPublic(t->esys, h, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
			                     &p, &n1, &n2);
		bool use = rc == TSS2_RC_SUCCESS && ek_matches_cert(p, cert);
		if (use)
			*pub = *p;
		Esys_Free(p);
		Esys_Free(n1);
		Esys_Free(n2);
		if (use) {
			t->ek = h;
			aam_log(AAM_LOG_DEBUG, "agent.tpm_ek", AAM_F_STR("source", "persistent"));
			return AAM_OK;
		}
		if (h != ESYS_TR_NONE)
			Esys_TR_Close(t->esys, &h);
	}
	TPM2B_PUBLIC tmpl;
	ek_template(&tmpl);
	TPM2B_SENSITIVE_CREATE sens;
	memset(&sens, 0, sizeof(sens));
	TPM2B_DATA outside = {.size = 0};
	TPML_PCR_SELECTION pcrs = {.count = 0};
	TPM2B_PUBLIC *opub = NULL;
	TPM2B_CREATION_DATA *cd = NULL;
	TPM2B_DIGEST *ch = NULL;
	TPMT_TK_CREATION *tk = NULL;
	TSS2_RC rc = Esys_CreatePrimary(t->esys, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD,
	                                ESYS_TR_NONE, ESYS_TR_NONE, &sens, &tmpl, &outside, &pcrs,
	                                &t->ek, &opub, &cd, &ch, &tk);
	if (rc == TSS2_RC_SUCCESS)
		*pub = *opub;
	Esys_Free(opub);
	Esys_Free(cd);
	Esys_Free(ch);
	Esys_Free(tk);
	if (rc != TSS2_RC_SUCCESS) {
		t->ek = ESYS_TR_NONE;
		return agent_tpm_fail(rc, "TPM2_CreatePrimary (EK)", msg, msglen);
	}
	t->ek_transient = true;
	aam_log(AAM_LOG_DEBUG, "agent.tpm_ek", AAM_F_STR("source", "created"));
	return AAM_OK;
}

static void
ek_release(struct agent_tpm *t)
{
	if (t->ek == ESYS_TR_NONE)
		return;
	if (t->ek_transient)
		agent_tpm_flush(t, &t->ek);
	else
		Esys_TR_Close(t->esys, &t->ek);
	t->ek = ESYS_TR_NONE;
}

/* ---- evidence ----------------------------------------------------------------------- */

void
agent_tpm_evidence_init(struct agent_tpm_evidence *ev)
{
	aam_buf_init(&ev->ek_cert, 8192);
	aam_buf_init(&ev->ek_pub, 4096);
	aam_buf_init(&ev->ak_pub, 4096);
	aam_buf_init(&ev->key_pub, 4096);
	aam_buf_init(&ev->certify_info, 4096);
	aam_buf_init(&ev->certify_sig, 4096);
}

void
agent_tpm_evidence_uninit(struct agent_tpm_evidence *ev)
{
	aam_buf_uninit(&ev->ek_cert);
	aam_buf_uninit(&ev->ek_pub);
	aam_buf_uninit(&ev->ak_pub);
	aam_buf_uninit(&ev->key_pub);
	aam_buf_uninit(&ev->certify_info);
	aam_buf_uninit(&ev->certify_sig);
}

static int
put_attest(struct aam_buf *b, const TPM2B_ATTEST *a)
{
	uint8_t tmp[sizeof(TPM2B_ATTEST)];
	size_t off = 0;
	if (Tss2_MU_TPM2B_ATTEST_Marshal(a, tmp, sizeof(tmp), &off) != TSS2_RC_SUCCESS)
		return AAM_E_INTERNAL;
	return aam_buf_append(b, tmp, off);
}

static int
put_signature(struct aam_buf *b, const TPMT_SIGNATURE *s)
{
	uint8_t tmp[sizeof(TPMT_SIGNATURE)];
	size_t off = 0;
	if (Tss2_MU_TPMT_SIGNATURE_Marshal(s, tmp, sizeof(tmp), &off) != TSS2_RC_SUCCESS)
		return AAM_E_INTERNAL;
	return aam_buf_append(b, tmp, off);
}

int
agent_tpm_begin(struct agent_tpm *t, const uint8_t *nonce, size_t nlen,
                struct agent_tpm_evidence *ev, char *msg, size_t msglen)
{
	if (nonce == NULL || nlen == 0 || nlen > sizeof(((TPM2B_DATA *)0)->buffer))
		return AAM_E_INVAL;
	pthread_mutex_lock(&t->mu);
	int rc = agent_tpm_load_ak(t, msg, msglen);
	if (rc == AAM_OK)
		rc = read_ek_cert(t, &ev->ek_cert, msg, msglen);
	TPM2B_PUBLIC ek_pub;
	if (rc == AAM_OK && t->ek == ESYS_TR_NONE)
		rc = ek_get(t, &ev->ek_cert, &ek_pub, msg, msglen);
	if (rc == AAM_OK)
		rc = agent_tpm_put_public(&ev->ek_pub, &ek_pub);
	if (rc == AAM_OK)
		rc = agent_tpm_put_public(&ev->ak_pub, &t->ak_pub);
	if (rc == AAM_OK)
		rc = agent_tpm_put_public(&ev->key_pub, &t->key_pub);
	if (rc == AAM_OK) {
		TPM2B_DATA qd = {.size = (UINT16)nlen};
		memcpy(qd.buffer, nonce, nlen);
		TPMT_SIG_SCHEME scheme = {.scheme = TPM2_ALG_NULL}; /* the AK's own */
		TPM2B_ATTEST *info = NULL;
		TPMT_SIGNATURE *sig = NULL;
		TSS2_RC trc =
		        Esys_Certify(t->esys, t->key, t->ak, ESYS_TR_PASSWORD, ESYS_TR_PASSWORD,
		                     ESYS_TR_NONE, &qd, &scheme, &info, &sig);
		if (trc != TSS2_RC_SUCCESS) {
			rc = agent_tpm_fail(trc, "TPM2_Certify", msg, msglen);
		} else {
			rc = put_attest(&ev->certify_info, info);
			if (rc == AAM_OK)
				rc = put_signature(&ev->certify_sig, sig);
		}
		Esys_Free(info);
		Esys_Free(sig);
	}
	pthread_mutex_unlock(&t->mu);
	if (rc == AAM_OK && (ev->ek_pub.err || ev->ak_pub.err || ev->key_pub.err))
		rc = AAM_E_NOMEM;
	return rc;
}

int
agent_tpm_activate(struct agent_tpm *t, const uint8_t *blob, size_t blen, const uint8_t *secret,
                   size_t slen, struct aam_buf *out, char *msg, size_t msglen)
{
	TPM2B_ID_OBJECT id;
	TPM2B_ENCRYPTED_SECRET es;
	size_t o1 = 0, o2 = 0;
	memset(&id, 0, sizeof(id));
	memset(&es, 0, sizeof(es));
	if (Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(blob, blen, &o1, &id) != TSS2_RC_SUCCESS ||
	    o1 != blen ||
	    Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(secret, slen, &o2, &es) != TSS2_RC_SUCCESS ||
	    o2 != slen) {
		snprintf(msg, msglen, "the server's credential does not unmarshal");
		return AAM_E_PARSE;
	}
	pthread_mutex_lock(&t->mu);
	int rc = AAM_OK;
	if (t->ak == ESYS_TR_NONE || t->ek == ESYS_TR_NONE) {
		snprintf(msg, msglen, "no attestation in progress");
		rc = AAM_E_INVAL;
	}
	/*
	 * The EK's authPolicy is PolicySecret(TPM_RH_ENDORSEMENT): a policy
	 * session satisfied with the endorsement hierarchy's (empty) auth.
	 */
	ESYS_TR sess = ESYS_TR_NONE;
	TSS2_RC trc = TSS2_RC_SUCCESS;
	if (rc == AAM_OK) {
		TPMT_SYM_DEF sym = {.algorithm = TPM2_ALG_NULL};
		trc = Esys_StartAuthSession(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
		                            ESYS_TR_NONE, ESYS_TR_NONE, NULL, TPM2_SE_POLICY, &sym,
		                            TPM2_ALG_SHA256, &sess);
		if (trc != TSS2_RC_SUCCESS) {
			sess = ESYS_TR_NONE;
			rc = agent_tpm_fail(trc, "TPM2_StartAuthSession (EK policy)", msg, msglen);
		}
	}
	if (rc == AAM_OK) {
		/* Kept alive across the command so that it is flushed below in every case. */
		Esys_TRSess_SetAttributes(t->esys, sess, TPMA_SESSION_CONTINUESESSION,
		                          TPMA_SESSION_CONTINUESESSION);
		TPM2B_NONCE none = {.size = 0};
		TPM2B_DIGEST cp = {.size = 0};
		TPM2B_TIMEOUT *to = NULL;
		TPMT_TK_AUTH *tk = NULL;
		trc = Esys_PolicySecret(t->esys, ESYS_TR_RH_ENDORSEMENT, sess, ESYS_TR_PASSWORD,
		                        ESYS_TR_NONE, ESYS_TR_NONE, &none, &cp, &none, 0, &to, &tk);
		Esys_Free(to);
		Esys_Free(tk);
		if (trc != TSS2_RC_SUCCESS)
			rc = agent_tpm_fail(trc, "TPM2_PolicySecret (endorsement)", msg, msglen);
	}
	if (rc == AAM_OK) {
		TPM2B_DIGEST *cred = NULL;
		trc = Esys_ActivateCredential(t->esys, t->ak, t->ek, ESYS_TR_PASSWORD, sess,
		                              ESYS_TR_NONE, &id, &es, &cred);
		if (trc != TSS2_RC_SUCCESS) {
			rc = agent_tpm_fail(trc, "TPM2_ActivateCredential", msg, msglen);
		} else {
			aam_buf_reset(out);
			rc = aam_buf_append(out, cred->buffer, cred->size);
			aam_wipe(cred, sizeof(*cred));
		}
		Esys_Free(cred);
	}
	if (sess != ESYS_TR_NONE)
		agent_tpm_flush(t, &sess);
	/* The EK is needed for nothing else: free its slot now. */
	ek_release(t);
	pthread_mutex_unlock(&t->mu);
	return rc;
}

/* Reads the SHA-256 PCRs of SEL into VALUES (PCR_Read answers at most 8 at a time). */
static int
read_pcrs(struct agent_tpm *t, const TPML_PCR_SELECTION *sel, uint8_t values[AGENT_TPM_MAX_PCR][32],
          char *msg, size_t msglen)
{
	TPML_PCR_SELECTION want = *sel;
	for (int round = 0; round < (int)AGENT_TPM_MAX_PCR; round++) {
		bool any = false;
		for (int i = 0; i < 3; i++)
			any |= want.pcrSelections[0].pcrSelect[i] != 0;
		if (!any)
			return AAM_OK;
		UINT32 ctr = 0;
		TPML_PCR_SELECTION *got = NULL;
		TPML_DIGEST *vals = NULL;
		TSS2_RC rc = Esys_PCR_Read(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &want,
		                           &ctr, &got, &vals);
		if (rc != TSS2_RC_SUCCESS)
			return agent_tpm_fail(rc, "TPM2_PCR_Read", msg, msglen);
		uint32_t k = 0;
		bool progress = false, bad = false;
		for (uint32_t s = 0; s < got->count && !bad; s++) {
			const TPMS_PCR_SELECTION *ps = &got->pcrSelections[s];
			if (ps->hash != TPM2_ALG_SHA256)
				continue;
			for (unsigned i = 0; i < AGENT_TPM_MAX_PCR && i / 8 < ps->sizeofSelect;
			     i++) {
				if (!(ps->pcrSelect[i / 8] & (1u << (i % 8))))
					continue;
				if (k >= vals->count || vals->digests[k].size != 32) {
					bad = true;
					break;
				}
				memcpy(values[i], vals->digests[k++].buffer, 32);
				want.pcrSelections[0].pcrSelect[i / 8] &= (BYTE) ~(1u << (i % 8));
				progress = true;
			}
		}
		Esys_Free(got);
		Esys_Free(vals);
		if (bad || !progress) {
			snprintf(msg, msglen,
			         "TPM2_PCR_Read did not return the selected SHA-256 PCRs");
			return AAM_E_HSM;
		}
	}
	return AAM_OK;
}

/* Whether the quote's pcrDigest is SHA-256 over VALUES of MASK in index order. */
static bool
quote_covers(const TPM2B_ATTEST *q, uint32_t mask, uint8_t values[AGENT_TPM_MAX_PCR][32])
{
	TPMS_ATTEST att;
	size_t off = 0;
	memset(&att, 0, sizeof(att));
	if (Tss2_MU_TPMS_ATTEST_Unmarshal(q->attestationData, q->size, &off, &att) !=
	            TSS2_RC_SUCCESS ||
	    att.type != TPM2_ST_ATTEST_QUOTE || att.attested.quote.pcrDigest.size != 32)
		return false;
	uint8_t d[32];
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	bool ok = c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1;
	for (unsigned i = 0; ok && i < AGENT_TPM_MAX_PCR; i++)
		if (mask & (1u << i))
			ok = EVP_DigestUpdate(c, values[i], 32) == 1;
	ok = ok && EVP_DigestFinal_ex(c, d, NULL) == 1;
	EVP_MD_CTX_free(c);
	return ok && memcmp(d, att.attested.quote.pcrDigest.buffer, 32) == 0;
}

int
agent_tpm_quote(struct agent_tpm *t, const uint8_t *nonce, size_t nlen, uint32_t mask,
                struct aam_buf *quote, struct aam_buf *sig, uint8_t values[AGENT_TPM_MAX_PCR][32],
                char *msg, size_t msglen)
{
	if (nonce == NULL || nlen == 0 || nlen > sizeof(((TPM2B_DATA *)0)->buffer) ||
	    (mask >> AGENT_TPM_MAX_PCR) != 0)
		return AAM_E_INVAL;
	TPML_PCR_SELECTION sel;
	memset(&sel, 0, sizeof(sel));
	sel.count = 1;
	sel.pcrSelections[0].hash = TPM2_ALG_SHA256;
	sel.pcrSelections[0].sizeofSelect = 3;
	for (unsigned i = 0; i < AGENT_TPM_MAX_PCR; i++)
		if (mask & (1u << i))
			sel.pcrSelections[0].pcrSelect[i / 8] |= (BYTE)(1u << (i % 8));
	TPM2B_DATA qd = {.size = (UINT16)nlen};
	memcpy(qd.buffer, nonce, nlen);
	TPMT_SIG_SCHEME scheme = {.scheme = TPM2_ALG_NULL};

	pthread_mutex_lock(&t->mu);
	int rc = t->ak == ESYS_TR_NONE ? AAM_E_INVAL : AAM_OK;
	if (rc != AAM_OK)
		snprintf(msg, msglen, "no attestation in progress");
	/*
	 * A PCR may be extended between the quote and the read: the values
	 * sent must be the ones quoted, so read after quoting and compare.
	 */
	for (int attempt = 0; rc == AAM_OK; attempt++) {
		TPM2B_ATTEST *q = NULL;
		TPMT_SIGNATURE *s = NULL;
		TSS2_RC trc = Esys_Quote(t->esys, t->ak, ESYS_TR_PASSWORD, ESYS_TR_NONE,
		                         ESYS_TR_NONE, &qd, &scheme, &sel, &q, &s);
		if (trc != TSS2_RC_SUCCESS) {
			rc = agent_tpm_fail(trc, "TPM2_Quote", msg, msglen);
			break;
		}
		rc = read_pcrs(t, &sel, values, msg, msglen);
		if (rc == AAM_OK && quote_covers(q, mask, values)) {
			aam_buf_reset(quote);
			aam_buf_reset(sig);
			rc = put_attest(quote, q);
			if (rc == AAM_OK)
				rc = put_signature(sig, s);
			Esys_Free(q);
			Esys_Free(s);
			break;
		}
		Esys_Free(q);
		Esys_Free(s);
		if (rc == AAM_OK && attempt + 1 >= QUOTE_ATTEMPTS) {
			snprintf(msg, msglen, "the PCRs kept changing while they were quoted");
			rc = AAM_E_BUSY;
		}
	}
	pthread_mutex_unlock(&t->mu);
	return rc;
}

void
agent_tpm_end(struct agent_tpm *t)
{
	if (t == NULL || t->esys == NULL)
		return;
	pthread_mutex_lock(&t->mu);
	ek_release(t);
	agent_tpm_flush(t, &t->ak);
	pthread_mutex_unlock(&t->mu);
}
