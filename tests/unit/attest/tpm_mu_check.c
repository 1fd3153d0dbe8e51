/*
 * attest/tpm_mu: strict unmarshalling of TPM2B_PUBLIC, TPMS_ATTEST and
 * TPMT_SIGNATURE, against structures a real (software) TPM produced, and
 * against every truncation, oversized size field and trailing byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "attest/tpm_crypto.h"
#include "attest/tpm_mu.h"
#include "tests/unit/attest/tpm_vectors.h"

static void
test_public_real(void **state)
{
	(void)state;
	struct attest_tpm_public ek, ak, key;
	assert_int_equal(attest_tpm_public_parse(vec_ek_pub, sizeof(vec_ek_pub), &ek), AAM_OK);
	assert_int_equal(ek.type, TPM_ALG_RSA);
	assert_int_equal(ek.name_alg, TPM_ALG_SHA256);
	assert_int_equal(ek.attributes, 0x000300b2u);
	assert_int_equal(ek.sym_alg, TPM_ALG_AES);
	assert_int_equal(ek.sym_bits, 128);
	assert_int_equal(ek.sym_mode, TPM_ALG_CFB);
	assert_int_equal(ek.rsa_bits, 2048);
	assert_int_equal(ek.rsa_exponent, 0);
	assert_int_equal(ek.rsa_n.n, 256);
	assert_int_equal(ek.auth_policy.n, 32);

	assert_int_equal(attest_tpm_public_parse(vec_ak_pub, sizeof(vec_ak_pub), &ak), AAM_OK);
	assert_int_equal(ak.type, TPM_ALG_ECC);
	assert_int_equal(ak.curve, TPM_ECC_NIST_P256);
	assert_int_equal(ak.scheme, TPM_ALG_ECDSA);
	assert_int_equal(ak.scheme_hash, TPM_ALG_SHA256);
	assert_true(ak.attributes & TPMA_OBJECT_RESTRICTED);
	assert_int_equal(ak.ecc_x.n, 32);
	assert_int_equal(ak.ecc_y.n, 32);

	assert_int_equal(attest_tpm_public_parse(vec_key_pub, sizeof(vec_key_pub), &key), AAM_OK);
	assert_false(key.attributes & TPMA_OBJECT_RESTRICTED);
	assert_true(key.attributes & TPMA_OBJECT_FIXEDTPM);
}

/* The name tpm2_createak printed is nameAlg || SHA-256(TPMT_PUBLIC). */
static void
test_name_matches_tpm(void **state)
{
	(void)state;
	struct attest_tpm_public ak;
	uint8_t name[TPM_MAX_NAME];
	size_t n = 0;
	assert_int_equal(attest_tpm_public_parse(vec_ak_pub, sizeof(vec_ak_pub), &ak), AAM_OK);
	assert_int_equal(attest_tpm_public_name(&ak, name, &n), AAM_OK);
	assert_int_equal(n, sizeof(vec_ak_name));
	assert_memory_equal(name, vec_ak_name, n);
}

/* Every strict prefix and every extension by one byte is refused. */
static void
test_public_truncated_and_trailing(void **state)
{
	(void)state;
	struct attest_tpm_public p;
	const struct {
		const uint8_t *v;
		size_t n;
	} vecs[] = {{vec_ek_pub, sizeof(vec_ek_pub)},
	            {vec_ak_pub, sizeof(vec_ak_pub)},
	            {vec_key_pub, sizeof(vec_key_pub)}};
	for (size_t k = 0; k < 3; k++) {
		for (size_t cut = 0; cut < vecs[k].n; cut++)
			assert_int_not_equal(attest_tpm_public_parse(vecs[k].v, cut, &p), AAM_OK);
		uint8_t *ext = malloc(vecs[k].n + 1);
		memcpy(ext, vecs[k].v, vecs[k].n);
		ext[vecs[k].n] = 0;
		assert_int_not_equal(attest_tpm_public_parse(ext, vecs[k].n + 1, &p), AAM_OK);
		/* The TPM2B size grown by one to cover the extra byte: now TPMT has a trailing
		 * byte. */
		size_t sz = (size_t)ext[0] << 8 | ext[1];
		sz++;
		ext[0] = (uint8_t)(sz >> 8);
		ext[1] = (uint8_t)sz;
		assert_int_equal(attest_tpm_public_parse(ext, vecs[k].n + 1, &p), AAM_E_PARSE);
		free(ext);
	}
}

/* Inner TPM2B sizes that exceed the spec's maxima or the bytes left. */
static void
test_public_oversized_fields(void **state)
{
	(void)state;
	struct attest_tpm_public p;
	uint8_t b[sizeof(vec_ak_pub)];
	/* authPolicy size (offset 10) of 65 is over TPM_MAX_DIGEST. */
	memcpy(b, vec_ak_pub, sizeof(b));
	b[10] = 0x00;
	b[11] = 0x41;
	assert_int_equal(attest_tpm_public_parse(b, sizeof(b), &p), AAM_E_TOOBIG);
	/* unique.x size (offset 22) 0xffff: over the maximum. */
	memcpy(b, vec_ak_pub, sizeof(b));
	b[22] = 0xff;
	b[23] = 0xff;
	assert_int_equal(attest_tpm_public_parse(b, sizeof(b), &p), AAM_E_TOOBIG);
	/* unique.x of 40 bytes: within the maximum but past the end. */
	memcpy(b, vec_ak_pub, sizeof(b));
	b[23] = 0x28;
	assert_int_not_equal(attest_tpm_public_parse(b, sizeof(b), &p), AAM_OK);
	/* unique.y of 33 bytes: past the end by one. */
	memcpy(b, vec_ak_pub, sizeof(b));
	b[sizeof(b) - 33] = 0x21;
	assert_int_equal(attest_tpm_public_parse(b, sizeof(b), &p), AAM_E_PARSE);
	/* The outer size is beyond any TPMT_PUBLIC. */
	uint8_t big[2 + TPM_MAX_PUBLIC + 2];
	memset(big, 0, sizeof(big));
	big[0] = (uint8_t)((TPM_MAX_PUBLIC + 2) >> 8);
	big[1] = (uint8_t)(TPM_MAX_PUBLIC + 2);
	assert_int_equal(attest_tpm_public_parse(big, sizeof(big), &p), AAM_E_TOOBIG);
}

static void
test_public_unknown_selectors(void **state)
{
	(void)state;
	struct attest_tpm_public p;
	uint8_t b[sizeof(vec_ak_pub)];
	/* type KEYEDHASH */
	memcpy(b, vec_ak_pub, sizeof(b));
	b[3] = 0x08;
	assert_int_equal(attest_tpm_public_parse(b, sizeof(b), &p), AAM_E_PARSE);
	/* nameAlg 0x0099 */
	memcpy(b, vec_ak_pub, sizeof(b));
	b[5] = 0x99;
	assert_int_equal(attest_tpm_public_parse(b, sizeof(b), &p), AAM_E_PARSE);
	/* scheme 0x0099 (offset 14) */
	memcpy(b, vec_ak_pub, sizeof(b));
	b[15] = 0x99;
	assert_int_equal(attest_tpm_public_parse(b, sizeof(b), &p), AAM_E_PARSE);
	/* scheme hash not a hash (offset 16) */
	memcpy(b, vec_ak_pub, sizeof(b));
	b[17] = 0x06;
	assert_int_equal(attest_tpm_public_parse(b, sizeof(b), &p), AAM_E_PARSE);
	/* symmetric XOR is not allowed for an object (offset 12) */
	memcpy(b, vec_ak_pub, sizeof(b));
	b[13] = 0x0a;
	assert_int_equal(attest_tpm_public_parse(b, sizeof(b), &p), AAM_E_PARSE);
	/* NULL arguments */
	assert_int_equal(attest_tpm_public_parse(NULL, 4, &p), AAM_E_INVAL);
}

static void
test_attest_real_and_forms(void **state)
{
	(void)state;
	struct attest_tpm_attest a;
	assert_int_equal(attest_tpm_attest_parse(vec_certify_info, sizeof(vec_certify_info), &a),
	                 AAM_OK);
	assert_int_equal(a.magic, TPM_GENERATED_VALUE);
	assert_int_equal(a.type, TPM_ST_ATTEST_CERTIFY);
	assert_int_equal(a.extra_data.n, sizeof(vec_certify_nonce));
	assert_memory_equal(a.extra_data.p, vec_certify_nonce, sizeof(vec_certify_nonce));
	/* The certified name is the agent key's name. */
	struct attest_tpm_public key;
	uint8_t name[TPM_MAX_NAME];
	size_t nl = 0;
	assert_int_equal(attest_tpm_public_parse(vec_key_pub, sizeof(vec_key_pub), &key), AAM_OK);
	assert_int_equal(attest_tpm_public_name(&key, name, &nl), AAM_OK);
	assert_int_equal(a.certified_name.n, nl);
	assert_memory_equal(a.certified_name.p, name, nl);

	/* The bare TPMS_ATTEST (tpm2_certify -o) parses to the same thing. */
	struct attest_tpm_attest b;
	assert_int_equal(
	        attest_tpm_attest_parse(vec_certify_info + 2, sizeof(vec_certify_info) - 2, &b),
	        AAM_OK);
	assert_int_equal(b.area.n, a.area.n);
	assert_ptr_equal(b.area.p, a.area.p);
	for (size_t cut = 0; cut < sizeof(vec_certify_info); cut++)
		assert_int_not_equal(attest_tpm_attest_parse(vec_certify_info, cut, &b), AAM_OK);
}

static void
test_attest_hostile(void **state)
{
	(void)state;
	struct attest_tpm_attest a;
	uint8_t b[sizeof(vec_certify_info)];
	/* type 0x8014 (TPM_ST_ATTEST_TIME) is not accepted. */
	memcpy(b, vec_certify_info, sizeof(b));
	b[7] = 0x14;
	assert_int_equal(attest_tpm_attest_parse(b, sizeof(b), &a), AAM_E_PARSE);
	/* qualifiedSigner size 0xffff */
	memcpy(b, vec_certify_info, sizeof(b));
	b[8] = 0xff;
	b[9] = 0xff;
	assert_int_equal(attest_tpm_attest_parse(b, sizeof(b), &a), AAM_E_TOOBIG);
	/* clockInfo.safe = 2 (offset 2+4+2+36+34+8+4+4 = 94) */
	memcpy(b, vec_certify_info, sizeof(b));
	b[94] = 2;
	assert_int_equal(attest_tpm_attest_parse(b, sizeof(b), &a), AAM_E_PARSE);
	/* TPM2B size one too small */
	memcpy(b, vec_certify_info, sizeof(b));
	b[1]--;
	assert_int_equal(attest_tpm_attest_parse(b, sizeof(b), &a), AAM_E_PARSE);

	/* A quote whose PCR selection has too many banks or select bytes. */
	uint8_t q[64];
	size_t n = 0;
	const uint8_t head[] = {0xff, 0x54, 0x43, 0x47, 0x80, 0x18, 0x00, 0x00, 0x00, 0x00};
	memcpy(q, head, sizeof(head));
	n = sizeof(head);
	memset(q + n, 0, 8 + 4 + 4 + 1 + 8); /* clock info and firmware */
	n += 25;
	size_t selpos = n;
	const uint8_t sel_many[] = {0x00, 0x00, 0x00, 0x11}; /* 17 banks */
	memcpy(q + n, sel_many, 4);
	assert_int_equal(attest_tpm_attest_parse(q, n + 4, &a), AAM_E_TOOBIG);
	const uint8_t sel_wide[] = {0x00, 0x00, 0x00, 0x01, 0x00, 0x0b, 0x05,
	                            0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00};
	memcpy(q + selpos, sel_wide, sizeof(sel_wide));
	assert_int_equal(attest_tpm_attest_parse(q, selpos + sizeof(sel_wide), &a), AAM_E_TOOBIG);
	const uint8_t sel_ok[] = {0x00, 0x00, 0x00, 0x01, 0x00, 0x0b,
	                          0x03, 0x07, 0x00, 0x00, 0x00, 0x00};
	memcpy(q + selpos, sel_ok, sizeof(sel_ok));
	assert_int_equal(attest_tpm_attest_parse(q, selpos + sizeof(sel_ok), &a), AAM_OK);
	assert_true(attest_tpm_pcr_selected(&a.pcr_select, 0, 0));
	assert_true(attest_tpm_pcr_selected(&a.pcr_select, 0, 2));
	assert_false(attest_tpm_pcr_selected(&a.pcr_select, 0, 3));
	assert_false(attest_tpm_pcr_selected(&a.pcr_select, 0, 31));
	assert_false(attest_tpm_pcr_selected(&a.pcr_select, 1, 0));
}

static void
test_signature(void **state)
{
	(void)state;
	struct attest_tpm_signature s;
	assert_int_equal(attest_tpm_signature_parse(vec_certify_sig, sizeof(vec_certify_sig), &s),
	                 AAM_OK);
	assert_int_equal(s.sig_alg, TPM_ALG_ECDSA);
	assert_int_equal(s.hash, TPM_ALG_SHA256);
	assert_int_equal(s.ecdsa_r.n, 32);
	for (size_t cut = 0; cut < sizeof(vec_certify_sig); cut++)
		assert_int_not_equal(attest_tpm_signature_parse(vec_certify_sig, cut, &s), AAM_OK);
	uint8_t b[sizeof(vec_certify_sig) + 1];
	memcpy(b, vec_certify_sig, sizeof(vec_certify_sig));
	b[sizeof(vec_certify_sig)] = 0;
	assert_int_equal(attest_tpm_signature_parse(b, sizeof(b), &s), AAM_E_PARSE);
	/* HMAC signatures (0x0005) are not accepted. */
	memcpy(b, vec_certify_sig, sizeof(vec_certify_sig));
	b[1] = 0x05;
	assert_int_equal(attest_tpm_signature_parse(b, sizeof(vec_certify_sig), &s), AAM_E_PARSE);
}

/* The real TPM's certify signature verifies with the AK, and not after a flip. */
static void
test_certify_signature_verifies(void **state)
{
	(void)state;
	struct attest_tpm_public ak;
	struct attest_tpm_signature s;
	struct attest_tpm_bytes area;
	EVP_PKEY *k = NULL;
	assert_int_equal(attest_tpm_public_parse(vec_ak_pub, sizeof(vec_ak_pub), &ak), AAM_OK);
	assert_int_equal(attest_tpm_pubkey(&ak, &k), AAM_OK);
	assert_int_equal(attest_tpm_signature_parse(vec_certify_sig, sizeof(vec_certify_sig), &s),
	                 AAM_OK);
	assert_int_equal(
	        attest_tpm_attest_unwrap(vec_certify_info, sizeof(vec_certify_info), &area),
	        AAM_OK);
	assert_int_equal(attest_tpm_verify(&ak, k, &s, area.p, area.n), AAM_OK);
	uint8_t b[sizeof(vec_certify_info)];
	memcpy(b, vec_certify_info, sizeof(b));
	for (size_t i = 2; i < sizeof(b); i += 17) {
		b[i] ^= 0x01;
		assert_int_equal(attest_tpm_verify(&ak, k, &s, b + 2, sizeof(b) - 2), AAM_E_DENIED);
		b[i] ^= 0x01;
	}
	/* A signature claiming SHA-1 is refused whatever its bytes. */
	struct attest_tpm_signature s1 = s;
	s1.hash = TPM_ALG_SHA1;
	assert_int_equal(attest_tpm_verify(&ak, k, &s1, area.p, area.n), AAM_E_DENIED);
	EVP_PKEY_free(k);
}

/* xorshift64*, seeded: reproducible hostile inputs. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

/*
 * Thousands of mutations of real structures (byte flips, size fields
 * set to extremes, truncations, junk appended) through every parser and,
 * when a public area still parses, through key conversion and naming.
 * Under ASan/UBSan this is a small deterministic fuzzer; the assertion is
 * that nothing reads out of bounds and accepted areas stay consistent.
 */
static void
test_mutations(void **state)
{
	(void)state;
	const struct {
		const uint8_t *v;
		size_t n;
	} vecs[] = {{vec_ek_pub, sizeof(vec_ek_pub)},
	            {vec_ak_pub, sizeof(vec_ak_pub)},
	            {vec_key_pub, sizeof(vec_key_pub)},
	            {vec_certify_info, sizeof(vec_certify_info)},
	            {vec_certify_sig, sizeof(vec_certify_sig)}};
	uint8_t buf[600];
	size_t accepted = 0;
	for (int iter = 0; iter < 20000; iter++) {
		size_t k = (size_t)(rng() % 5);
		size_t n = vecs[k].n;
		memcpy(buf, vecs[k].v, n);
		int muts = 1 + (int)(rng() % 3);
		for (int m = 0; m < muts && n > 0; m++) {
			size_t pos = (size_t)(rng() % n);
			switch (rng() % 5) {
			case 0:
				buf[pos] ^= (uint8_t)(1u << (rng() % 8));
				break;
			case 1:
				buf[pos] = 0xff;
				break;
			case 2:
				buf[pos] = 0x00;
				break;
			case 3:
				n = pos; /* truncate */
				break;
			default:
				if (n + 8 <= sizeof(buf)) {
					for (int j = 0; j < 8; j++)
						buf[n + (size_t)j] = (uint8_t)rng();
					n += 8;
				}
			}
		}
		struct attest_tpm_public p;
		struct attest_tpm_attest a;
		struct attest_tpm_signature sg;
		if (attest_tpm_public_parse(buf, n, &p) == AAM_OK) {
			accepted++;
			assert_true(p.area.p == buf + 2 && p.area.n == n - 2);
			uint8_t name[TPM_MAX_NAME];
			size_t nl = 0;
			(void)attest_tpm_public_name(&p, name, &nl);
			EVP_PKEY *key = NULL;
			if (attest_tpm_pubkey(&p, &key) == AAM_OK)
				assert_non_null(key);
			EVP_PKEY_free(key);
		}
		if (attest_tpm_attest_parse(buf, n, &a) == AAM_OK) {
			accepted++;
			assert_true(a.area.p + a.area.n == buf + n);
			assert_true(a.extra_data.n <= TPM_MAX_DIGEST);
		}
		if (attest_tpm_signature_parse(buf, n, &sg) == AAM_OK)
			accepted++;
	}
	/* Some mutations (flips inside key material) must still parse. */
	assert_true(accepted > 100);
}

static void
test_hash_sizes(void **state)
{
	(void)state;
	assert_int_equal(attest_tpm_hash_size(TPM_ALG_SHA1), 20);
	assert_int_equal(attest_tpm_hash_size(TPM_ALG_SHA256), 32);
	assert_int_equal(attest_tpm_hash_size(TPM_ALG_SHA384), 48);
	assert_int_equal(attest_tpm_hash_size(TPM_ALG_SHA512), 64);
	assert_int_equal(attest_tpm_hash_size(TPM_ALG_NULL), 0);
	assert_int_equal(attest_tpm_hash_size(TPM_ALG_AES), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_public_real),
	        cmocka_unit_test(test_name_matches_tpm),
	        cmocka_unit_test(test_public_truncated_and_trailing),
	        cmocka_unit_test(test_public_oversized_fields),
	        cmocka_unit_test(test_public_unknown_selectors),
	        cmocka_unit_test(test_attest_real_and_forms),
	        cmocka_unit_test(test_attest_hostile),
	        cmocka_unit_test(test_signature),
	        cmocka_unit_test(test_certify_signature_verifies),
	        cmocka_unit_test(test_mutations),
	        cmocka_unit_test(test_hash_sizes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
