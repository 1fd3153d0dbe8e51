/*
 * Strict TPM 2.0 unmarshalling.  See tpm_mu.h.
 */
#include "attest/tpm_mu.h"
#include "aam/err.h"

#include <string.h>

#include <openssl/evp.h>

/* A cursor with a sticky error: once a read fails, every later read fails. */
struct rd {
	const uint8_t *p;
	size_t n, off;
	int err;
};

static void
rd_init(struct rd *r, const uint8_t *p, size_t n)
{
	r->p = p;
	r->n = n;
	r->off = 0;
	r->err = AAM_OK;
}

static void
rd_fail(struct rd *r, int err)
{
	if (r->err == AAM_OK)
		r->err = err;
}

static const uint8_t *
rd_take(struct rd *r, size_t k)
{
	if (r->err != AAM_OK)
		return NULL;
	if (k > r->n - r->off) {
		rd_fail(r, AAM_E_PARSE);
		return NULL;
	}
	const uint8_t *q = r->p + r->off;
	r->off += k;
	return q;
}

static uint8_t
rd_u8(struct rd *r)
{
	const uint8_t *q = rd_take(r, 1);
	return q != NULL ? q[0] : 0;
}

static uint16_t
rd_u16(struct rd *r)
{
	const uint8_t *q = rd_take(r, 2);
	return q != NULL ? (uint16_t)((unsigned)q[0] << 8 | q[1]) : 0;
}

static uint32_t
rd_u32(struct rd *r)
{
	const uint8_t *q = rd_take(r, 4);
	if (q == NULL)
		return 0;
	return (uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3];
}

static uint64_t
rd_u64(struct rd *r)
{
	uint64_t hi = rd_u32(r);
	return hi << 32 | rd_u32(r);
}

/* A TPM2B: u16 size then SIZE bytes, at most MAX. */
static void
rd_tpm2b(struct rd *r, size_t max, struct attest_tpm_bytes *out)
{
	uint16_t size = rd_u16(r);
	if (r->err == AAM_OK && size > max) {
		rd_fail(r, AAM_E_TOOBIG);
		return;
	}
	out->p = rd_take(r, size);
	out->n = out->p != NULL ? size : 0;
}

size_t
attest_tpm_hash_size(uint16_t alg)
{
	switch (alg) {
	case TPM_ALG_SHA1:
		return 20;
	case TPM_ALG_SHA256:
	case TPM_ALG_SM3_256:
		return 32;
	case TPM_ALG_SHA384:
		return 48;
	case TPM_ALG_SHA512:
		return 64;
	default:
		return 0;
	}
}

static bool
is_hash(uint16_t alg)
{
	return attest_tpm_hash_size(alg) != 0;
}

/* TPMT_SYM_DEF_OBJECT: algorithm, then key bits and mode unless NULL. */
static void
rd_sym_def_object(struct rd *r, struct attest_tpm_public *pub)
{
	pub->sym_alg = rd_u16(r);
	pub->sym_bits = 0;
	pub->sym_mode = TPM_ALG_NULL;
	if (r->err != AAM_OK || pub->sym_alg == TPM_ALG_NULL)
		return;
	if (pub->sym_alg != TPM_ALG_AES && pub->sym_alg != TPM_ALG_SM4 &&
	    pub->sym_alg != TPM_ALG_CAMELLIA) {
		rd_fail(r, AAM_E_PARSE);
		return;
	}
	pub->sym_bits = rd_u16(r);
	pub->sym_mode = rd_u16(r);
	/* TPM_ALG_CTR .. TPM_ALG_ECB, or NULL. */
	if (r->err == AAM_OK && pub->sym_mode != TPM_ALG_NULL &&
	    (pub->sym_mode < 0x0040u || pub->sym_mode > 0x0044u))
		rd_fail(r, AAM_E_PARSE);
}

/* The scheme of an RSA key: TPMT_RSA_SCHEME. */
static void
rd_rsa_scheme(struct rd *r, struct attest_tpm_public *pub)
{
	pub->scheme = rd_u16(r);
	pub->scheme_hash = TPM_ALG_NULL;
	switch (pub->scheme) {
	case TPM_ALG_NULL:
	case TPM_ALG_RSAES: /* TPMS_ENC_SCHEME_RSAES is empty */
		return;
	case TPM_ALG_RSASSA:
	case TPM_ALG_RSAPSS:
	case TPM_ALG_OAEP:
		pub->scheme_hash = rd_u16(r);
		if (r->err == AAM_OK && !is_hash(pub->scheme_hash))
			rd_fail(r, AAM_E_PARSE);
		return;
	default:
		rd_fail(r, AAM_E_PARSE);
	}
}

/* The scheme and KDF of an ECC key: TPMT_ECC_SCHEME, curve, TPMT_KDF_SCHEME. */
static void
rd_ecc_params(struct rd *r, struct attest_tpm_public *pub)
{
	pub->scheme = rd_u16(r);
	pub->scheme_hash = TPM_ALG_NULL;
	switch (pub->scheme) {
	case TPM_ALG_NULL:
		break;
	case TPM_ALG_ECDSA:
	case TPM_ALG_ECDH:
	case TPM_ALG_SM2:
	case TPM_ALG_ECSCHNORR:
	case TPM_ALG_ECMQV:
		pub->scheme_hash = rd_u16(r);
		break;
	case TPM_ALG_ECDAA:
		pub->scheme_hash = rd_u16(r);
		(void)rd_u16(r); /* count */
		break;
	default:
		rd_fail(r, AAM_E_PARSE);
		return;
	}
	if (r->err == AAM_OK && pub->scheme != TPM_ALG_NULL && !is_hash(pub->scheme_hash))
		rd_fail(r, AAM_E_PARSE);
	pub->curve = rd_u16(r);
	pub->kdf = rd_u16(r);
	pub->kdf_hash = TPM_ALG_NULL;
	switch (pub->kdf) {
	case TPM_ALG_NULL:
		break;
	case 0x0007u: /* TPM_ALG_MGF1 */
	case TPM_ALG_KDF1_SP800_56A:
	case TPM_ALG_KDF2:
	case TPM_ALG_KDF1_SP800_108:
		pub->kdf_hash = rd_u16(r);
		if (r->err == AAM_OK && !is_hash(pub->kdf_hash))
			rd_fail(r, AAM_E_PARSE);
		break;
	default:
		rd_fail(r, AAM_E_PARSE);
	}
}

int
attest_tpm_public_parse(const uint8_t *p, size_t n, struct attest_tpm_public *out)
{
	if (p == NULL || out == NULL)
		return AAM_E_INVAL;
	if (n > 2u + TPM_MAX_PUBLIC)
		return AAM_E_TOOBIG;
	struct rd outer;
	rd_init(&outer, p, n);
	uint16_t size = rd_u16(&outer);
	if (outer.err != AAM_OK)
		return outer.err;
	if (size == 0 || (size_t)size != n - 2)
		return AAM_E_PARSE;

	struct attest_tpm_public pub;
	memset(&pub, 0, sizeof(pub));
	struct rd r;
	rd_init(&r, p + 2, size);
	pub.area.p = p + 2;
	pub.area.n = size;
	pub.type = rd_u16(&r);
	pub.name_alg = rd_u16(&r);
	pub.attributes = rd_u32(&r);
	rd_tpm2b(&r, TPM_MAX_DIGEST, &pub.auth_policy);
	if (r.err != AAM_OK)
		return r.err;
	if (!is_hash(pub.name_alg))
		return AAM_E_PARSE;
	switch (pub.type) {
	case TPM_ALG_RSA:
		rd_sym_def_object(&r, &pub);
		rd_rsa_scheme(&r, &pub);
		pub.rsa_bits = rd_u16(&r);
		pub.rsa_exponent = rd_u32(&r);
		rd_tpm2b(&r, TPM_MAX_RSA_BYTES, &pub.rsa_n);
		break;
	case TPM_ALG_ECC:
		rd_sym_def_object(&r, &pub);
		rd_ecc_params(&r, &pub);
		rd_tpm2b(&r, TPM_MAX_ECC_BYTES, &pub.ecc_x);
		rd_tpm2b(&r, TPM_MAX_ECC_BYTES, &pub.ecc_y);
		break;
	default:
		/* KEYEDHASH and SYMCIPHER objects have no use in attestation. */
		return AAM_E_PARSE;
	}
	if (r.err != AAM_OK)
		return r.err;
	if (r.off != r.n)
		return AAM_E_PARSE;
	*out = pub;
	return AAM_OK;
}

/* TPML_PCR_SELECTION. */
static void
rd_pcr_selection(struct rd *r, struct attest_tpm_pcr_selection *sel)
{
	sel->count = rd_u32(r);
	if (r->err != AAM_OK)
		return;
	if (sel->count > TPM_MAX_PCR_BANKS) {
		rd_fail(r, AAM_E_TOOBIG);
		return;
	}
	for (uint32_t i = 0; i < sel->count; i++) {
		sel->banks[i].hash = rd_u16(r);
		sel->banks[i].size = rd_u8(r);
		if (r->err != AAM_OK)
			return;
		if (!is_hash(sel->banks[i].hash)) {
			rd_fail(r, AAM_E_PARSE);
			return;
		}
		if (sel->banks[i].size > TPM_MAX_PCR_SELECT) {
			rd_fail(r, AAM_E_TOOBIG);
			return;
		}
		const uint8_t *q = rd_take(r, sel->banks[i].size);
		if (q == NULL)
			return;
		memset(sel->banks[i].select, 0, sizeof(sel->banks[i].select));
		memcpy(sel->banks[i].select, q, sel->banks[i].size);
	}
}

int
attest_tpm_attest_unwrap(const uint8_t *p, size_t n, struct attest_tpm_bytes *area)
{
	if (p == NULL || area == NULL)
		return AAM_E_INVAL;
	if (n > 2u + TPM_MAX_ATTEST)
		return AAM_E_TOOBIG;
	/*
	 * A bare TPMS_ATTEST starts with the magic 0xff544347; as a TPM2B size
	 * 0xff54 would exceed TPM_MAX_ATTEST, so the two forms cannot be
	 * confused.
	 */
	bool bare = n >= 4 && p[0] == 0xff && p[1] == 0x54 && p[2] == 0x43 && p[3] == 0x47;
	if (bare) {
		area->p = p;
		area->n = n;
		return AAM_OK;
	}
	if (n < 2)
		return AAM_E_PARSE;
	size_t size = (size_t)p[0] << 8 | p[1];
	if (size == 0 || size != n - 2)
		return AAM_E_PARSE;
	area->p = p + 2;
	area->n = size;
	return AAM_OK;
}

int
attest_tpm_attest_parse(const uint8_t *p, size_t n, struct attest_tpm_attest *out)
{
	if (p == NULL || out == NULL)
		return AAM_E_INVAL;
	struct attest_tpm_bytes area;
	int urc = attest_tpm_attest_unwrap(p, n, &area);
	if (urc != AAM_OK)
		return urc;
	const uint8_t *body = area.p;
	size_t len = area.n;

	struct attest_tpm_attest a;
	memset(&a, 0, sizeof(a));
	struct rd r;
	rd_init(&r, body, len);
	a.area.p = body;
	a.area.n = len;
	a.magic = rd_u32(&r);
	a.type = rd_u16(&r);
	rd_tpm2b(&r, TPM_MAX_NAME, &a.qualified_signer);
	rd_tpm2b(&r, TPM_MAX_DIGEST, &a.extra_data);
	a.clock = rd_u64(&r);
	a.reset_count = rd_u32(&r);
	a.restart_count = rd_u32(&r);
	a.safe = rd_u8(&r);
	a.firmware_version = rd_u64(&r);
	if (r.err != AAM_OK)
		return r.err;
	if (a.safe > 1)
		return AAM_E_PARSE;
	switch (a.type) {
	case TPM_ST_ATTEST_CERTIFY:
		rd_tpm2b(&r, TPM_MAX_NAME, &a.certified_name);
		rd_tpm2b(&r, TPM_MAX_NAME, &a.certified_qualified_name);
		break;
	case TPM_ST_ATTEST_QUOTE:
		rd_pcr_selection(&r, &a.pcr_select);
		rd_tpm2b(&r, TPM_MAX_DIGEST, &a.pcr_digest);
		break;
	default:
		return AAM_E_PARSE;
	}
	if (r.err != AAM_OK)
		return r.err;
	if (r.off != r.n)
		return AAM_E_PARSE;
	*out = a;
	return AAM_OK;
}

int
attest_tpm_signature_parse(const uint8_t *p, size_t n, struct attest_tpm_signature *out)
{
	if (p == NULL || out == NULL)
		return AAM_E_INVAL;
	if (n > 4u + 2u * (2u + TPM_MAX_RSA_BYTES))
		return AAM_E_TOOBIG;
	struct attest_tpm_signature s;
	memset(&s, 0, sizeof(s));
	struct rd r;
	rd_init(&r, p, n);
	s.sig_alg = rd_u16(&r);
	s.hash = rd_u16(&r);
	if (r.err != AAM_OK)
		return r.err;
	if (!is_hash(s.hash))
		return AAM_E_PARSE;
	switch (s.sig_alg) {
	case TPM_ALG_RSASSA:
	case TPM_ALG_RSAPSS:
		rd_tpm2b(&r, TPM_MAX_RSA_BYTES, &s.rsa_sig);
		break;
	case TPM_ALG_ECDSA:
		rd_tpm2b(&r, TPM_MAX_ECC_BYTES, &s.ecdsa_r);
		rd_tpm2b(&r, TPM_MAX_ECC_BYTES, &s.ecdsa_s);
		break;
	default:
		return AAM_E_PARSE;
	}
	if (r.err != AAM_OK)
		return r.err;
	if (r.off != r.n)
		return AAM_E_PARSE;
	*out = s;
	return AAM_OK;
}

int
attest_tpm_public_name(const struct attest_tpm_public *pub, uint8_t out[TPM_MAX_NAME],
                       size_t *outlen)
{
	if (pub == NULL || out == NULL || outlen == NULL || pub->area.p == NULL)
		return AAM_E_INVAL;
	const EVP_MD *md;
	switch (pub->name_alg) {
	case TPM_ALG_SHA256:
		md = EVP_sha256();
		break;
	case TPM_ALG_SHA384:
		md = EVP_sha384();
		break;
	case TPM_ALG_SHA512:
		md = EVP_sha512();
		break;
	default:
		return AAM_E_UNSUPPORTED;
	}
	unsigned int dlen = 0;
	out[0] = (uint8_t)(pub->name_alg >> 8);
	out[1] = (uint8_t)pub->name_alg;
	if (EVP_Digest(pub->area.p, pub->area.n, out + 2, &dlen, md, NULL) != 1)
		return AAM_E_CRYPTO;
	*outlen = 2u + dlen;
	return AAM_OK;
}

bool
attest_tpm_pcr_selected(const struct attest_tpm_pcr_selection *sel, size_t bank, unsigned i)
{
	if (sel == NULL || bank >= sel->count || i / 8 >= sel->banks[bank].size)
		return false;
	return (sel->banks[bank].select[i / 8] >> (i % 8)) & 1u;
}
