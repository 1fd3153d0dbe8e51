/*
 * The SoftHSM2 fixture really makes a usable token: through p11-kit, a
 * login with the PIN from the 0600 file, an ECDSA P-256 key generated on
 * the token that cannot leave it, and a C_Sign that OpenSSL verifies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <p11-kit/p11-kit.h>

#include "aam/err.h"
#include "tests/lib/softhsm.h"
#include "tests/lib/testutil.h"

/* DER of the prime256v1 OID, the CKA_EC_PARAMS of a P-256 key. */
static const uint8_t P256_PARAMS[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};

static double
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static bool
exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* Loads SoftHSM2 the way AAM will: a managed module through p11-kit. */
static CK_FUNCTION_LIST *
load_module(const struct aam_test_softhsm *h)
{
	CK_FUNCTION_LIST *f = p11_kit_module_load(h->module_path, 0);
	assert_non_null(f);
	CK_C_INITIALIZE_ARGS args;
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	assert_int_equal(f->C_Initialize(&args), CKR_OK);
	return f;
}

static void
unload_module(CK_FUNCTION_LIST *f)
{
	assert_int_equal(f->C_Finalize(NULL), CKR_OK);
	p11_kit_module_release(f);
}

static CK_SESSION_HANDLE
open_user_session(const struct aam_test_softhsm *h, CK_FUNCTION_LIST *f)
{
	CK_SLOT_ID slot;
	assert_int_equal(aam_test_softhsm_find_slot(h, f, &slot), AAM_OK);
	CK_SESSION_HANDLE s;
	assert_int_equal(
	        f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s),
	        CKR_OK);
	assert_int_equal(aam_test_softhsm_login(h, f, s), AAM_OK);
	return s;
}

static void
generate_p256(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, const char *label, CK_OBJECT_HANDLE *pub,
              CK_OBJECT_HANDLE *priv)
{
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_ATTRIBUTE pub_tmpl[] = {
	        {CKA_EC_PARAMS, (void *)(uintptr_t)P256_PARAMS, sizeof(P256_PARAMS)},
	        {CKA_TOKEN, &yes, sizeof(yes)},
	        {CKA_VERIFY, &yes, sizeof(yes)},
	        {CKA_LABEL, (void *)(uintptr_t)label, strlen(label)},
	};
	CK_ATTRIBUTE priv_tmpl[] = {
	        {CKA_TOKEN, &yes, sizeof(yes)},
	        {CKA_PRIVATE, &yes, sizeof(yes)},
	        {CKA_SENSITIVE, &yes, sizeof(yes)},
	        {CKA_EXTRACTABLE, &no, sizeof(no)},
	        {CKA_SIGN, &yes, sizeof(yes)},
	        {CKA_LABEL, (void *)(uintptr_t)label, strlen(label)},
	};
	assert_int_equal(f->C_GenerateKeyPair(s, &mech, pub_tmpl,
	                                      sizeof(pub_tmpl) / sizeof(pub_tmpl[0]), priv_tmpl,
	                                      sizeof(priv_tmpl) / sizeof(priv_tmpl[0]), pub, priv),
	                 CKR_OK);
}

static CK_BBOOL
get_bool(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type)
{
	CK_BBOOL v = 0xAA;
	CK_ATTRIBUTE a = {type, &v, sizeof(v)};
	assert_int_equal(f->C_GetAttributeValue(s, o, &a, 1), CKR_OK);
	assert_true(v == CK_TRUE || v == CK_FALSE);
	return v;
}

/* Number of objects of CLASS with LABEL visible in the session. */
static CK_ULONG
count_objects(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const char *label)
{
	CK_ATTRIBUTE tmpl[] = {
	        {CKA_CLASS, &cls, sizeof(cls)},
	        {CKA_LABEL, (void *)(uintptr_t)label, strlen(label)},
	};
	assert_int_equal(f->C_FindObjectsInit(s, tmpl, 2), CKR_OK);
	CK_OBJECT_HANDLE found[8];
	CK_ULONG n = 0;
	assert_int_equal(f->C_FindObjects(s, found, 8, &n), CKR_OK);
	assert_int_equal(f->C_FindObjectsFinal(s), CKR_OK);
	return n;
}

/* An OpenSSL public key from the token's CKA_EC_POINT (DER OCTET STRING or raw). */
static EVP_PKEY *
pkey_from_ec_point(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE pub)
{
	uint8_t der[128];
	CK_ATTRIBUTE a = {CKA_EC_POINT, der, sizeof(der)};
	assert_int_equal(f->C_GetAttributeValue(s, pub, &a, 1), CKR_OK);
	const uint8_t *point = der;
	size_t point_len = a.ulValueLen;
	if (point_len == 67 && der[0] == 0x04 && der[1] == 65) {
		point += 2;
		point_len -= 2;
	}
	assert_int_equal(point_len, 65);
	assert_int_equal(point[0], 0x04); /* uncompressed */

	OSSL_PARAM params[] = {
	        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1",
	                                         0),
	        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)(uintptr_t)point,
	                                          point_len),
	        OSSL_PARAM_construct_end(),
	};
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	assert_non_null(ctx);
	EVP_PKEY *pkey = NULL;
	assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
	assert_int_equal(EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params), 1);
	EVP_PKEY_CTX_free(ctx);
	return pkey;
}

/* PKCS#11 ECDSA signatures are r || s; OpenSSL verifies DER ECDSA-Sig-Value. */
static int
verify_raw_sig(EVP_PKEY *pkey, const uint8_t *digest, size_t dlen, const uint8_t *sig, size_t slen)
{
	assert_int_equal(slen, 64);
	ECDSA_SIG *es = ECDSA_SIG_new();
	assert_non_null(es);
	BIGNUM *r = BN_bin2bn(sig, 32, NULL), *sv = BN_bin2bn(sig + 32, 32, NULL);
	assert_non_null(r);
	assert_non_null(sv);
	assert_int_equal(ECDSA_SIG_set0(es, r, sv), 1);
	unsigned char *der = NULL;
	int der_len = i2d_ECDSA_SIG(es, &der);
	assert_true(der_len > 0);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pkey, NULL);
	assert_non_null(ctx);
	assert_int_equal(EVP_PKEY_verify_init(ctx), 1);
	int ok = EVP_PKEY_verify(ctx, der, (size_t)der_len, digest, dlen);
	EVP_PKEY_CTX_free(ctx);
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	return ok;
}

static void
test_start_creates_token_and_stop_removes_it(void **state)
{
	(void)state;
	AAM_TEST_SOFTHSM_REQUIRE();
	struct aam_test_softhsm h;
	double t0 = now_ms();
	assert_int_equal(aam_test_softhsm_start(&h, "aam-fixture"), AAM_OK);
	print_message("softhsm fixture start took %.1f ms\n", now_ms() - t0);
	assert_true(h.started);
	assert_string_equal(h.token_label, "aam-fixture");
	assert_string_equal(h.token_uri, "pkcs11:token=aam-fixture");
	assert_non_null(getenv("SOFTHSM2_CONF"));
	assert_string_equal(getenv("SOFTHSM2_CONF"), h.conf_path);
	assert_int_equal(strncmp(h.conf_path, h.dir, strlen(h.dir)), 0);
	assert_int_equal(strncmp(h.token_dir, h.dir, strlen(h.dir)), 0);
	assert_true(h.token_serial[0] != '\0');

	/* The configuration keeps the token inside the fixture folder. */
	char *conf = aam_test_read_file(h.conf_path, NULL);
	assert_non_null(conf);
	char want[AAM_TEST_PATH_MAX + 32];
	snprintf(want, sizeof(want), "directories.tokendir = %s\n", h.token_dir);
	assert_non_null(strstr(conf, want));
	assert_non_null(strstr(conf, "objectstore.backend = file\n"));
	assert_non_null(strstr(conf, "log.level = ERROR\n"));
	free(conf);

	/* Both PIN files are 0600, random hex, and differ from each other. */
	const char *files[] = {h.so_pin_file, h.user_pin_file};
	char pins[2][AAM_TEST_PIN_MAX + 1];
	for (int i = 0; i < 2; i++) {
		struct stat st;
		assert_int_equal(stat(files[i], &st), 0);
		assert_true(S_ISREG(st.st_mode));
		assert_int_equal(st.st_mode & 0777, 0600);
		assert_int_equal(aam_test_softhsm_read_pin(files[i], pins[i], sizeof(pins[i])),
		                 AAM_OK);
		assert_int_equal(strlen(pins[i]), 32);
		assert_int_equal(strspn(pins[i], "0123456789abcdef"), 32);
	}
	assert_string_not_equal(pins[0], pins[1]);

	char dir[AAM_TEST_PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", h.dir);
	assert_true(exists(dir));
	aam_test_softhsm_stop(&h);
	assert_false(exists(dir));
	assert_null(getenv("SOFTHSM2_CONF"));
	assert_false(h.started);
	/* A second stop, and a stop of a zeroed fixture, are harmless. */
	aam_test_softhsm_stop(&h);
	aam_test_softhsm_stop(NULL);
}

static void
test_generates_key_on_token_and_signs(void **state)
{
	(void)state;
	AAM_TEST_SOFTHSM_REQUIRE();
	struct aam_test_softhsm h;
	assert_int_equal(aam_test_softhsm_start(&h, "aam-sign"), AAM_OK);
	CK_FUNCTION_LIST *f = load_module(&h);
	CK_SESSION_HANDLE s = open_user_session(&h, f);

	CK_OBJECT_HANDLE pub, priv;
	double t0 = now_ms();
	generate_p256(f, s, "audit-key", &pub, &priv);
	print_message("P-256 key generation on the token took %.1f ms\n", now_ms() - t0);

	/* Invariant 3: generated on the token, sensitive, never extractable. */
	assert_int_equal(get_bool(f, s, priv, CKA_EXTRACTABLE), CK_FALSE);
	assert_int_equal(get_bool(f, s, priv, CKA_SENSITIVE), CK_TRUE);
	assert_int_equal(get_bool(f, s, priv, CKA_NEVER_EXTRACTABLE), CK_TRUE);
	assert_int_equal(get_bool(f, s, priv, CKA_ALWAYS_SENSITIVE), CK_TRUE);
	assert_int_equal(get_bool(f, s, priv, CKA_LOCAL), CK_TRUE);
	assert_int_equal(get_bool(f, s, priv, CKA_TOKEN), CK_TRUE);
	/* The private value cannot be read out. */
	uint8_t leak[64];
	CK_ATTRIBUTE value = {CKA_VALUE, leak, sizeof(leak)};
	assert_int_equal(f->C_GetAttributeValue(s, priv, &value, 1), CKR_ATTRIBUTE_SENSITIVE);
	/* Nor can it be made extractable afterwards. */
	CK_BBOOL yes = CK_TRUE;
	CK_ATTRIBUTE make_extractable = {CKA_EXTRACTABLE, &yes, sizeof(yes)};
	assert_int_not_equal(f->C_SetAttributeValue(s, priv, &make_extractable, 1), CKR_OK);
	assert_int_equal(get_bool(f, s, priv, CKA_EXTRACTABLE), CK_FALSE);

	static const char msg[] = "checkpoint: aam.example/log 42 root";
	uint8_t digest[32];
	unsigned int dlen = 0;
	assert_int_equal(EVP_Digest(msg, strlen(msg), digest, &dlen, EVP_sha256(), NULL), 1);
	assert_int_equal(dlen, 32);

	CK_MECHANISM ecdsa = {CKM_ECDSA, NULL, 0};
	uint8_t sig[128];
	CK_ULONG slen = sizeof(sig);
	assert_int_equal(f->C_SignInit(s, &ecdsa, priv), CKR_OK);
	assert_int_equal(f->C_Sign(s, digest, sizeof(digest), sig, &slen), CKR_OK);
	assert_int_equal(slen, 64);

	EVP_PKEY *pkey = pkey_from_ec_point(f, s, pub);
	assert_int_equal(verify_raw_sig(pkey, digest, sizeof(digest), sig, slen), 1);
	/* A signature over another digest, or a damaged signature, must not verify. */
	uint8_t other[32];
	memcpy(other, digest, sizeof(other));
	other[0] ^= 0x01;
	assert_int_not_equal(verify_raw_sig(pkey, other, sizeof(other), sig, slen), 1);
	sig[40] ^= 0x80;
	assert_int_not_equal(verify_raw_sig(pkey, digest, sizeof(digest), sig, slen), 1);
	EVP_PKEY_free(pkey);

	/* CKA_TOKEN: the key outlives the session and a re-initialisation. */
	assert_int_equal(f->C_Logout(s), CKR_OK);
	assert_int_equal(f->C_CloseSession(s), CKR_OK);
	unload_module(f);
	f = load_module(&h);
	s = open_user_session(&h, f);
	assert_int_equal(count_objects(f, s, CKO_PRIVATE_KEY, "audit-key"), 1);
	assert_int_equal(count_objects(f, s, CKO_PUBLIC_KEY, "audit-key"), 1);
	f->C_Logout(s);
	f->C_CloseSession(s);
	unload_module(f);

	aam_test_softhsm_stop(&h);
}

static void
test_wrong_pin_is_refused(void **state)
{
	(void)state;
	AAM_TEST_SOFTHSM_REQUIRE();
	struct aam_test_softhsm h;
	assert_int_equal(aam_test_softhsm_start(&h, "aam-pin"), AAM_OK);
	CK_FUNCTION_LIST *f = load_module(&h);
	CK_SLOT_ID slot;
	assert_int_equal(aam_test_softhsm_find_slot(&h, f, &slot), AAM_OK);
	CK_SESSION_HANDLE s;
	assert_int_equal(
	        f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s),
	        CKR_OK);
	/* The SO PIN is not the user PIN, and a guess is not either. */
	char so_pin[AAM_TEST_PIN_MAX + 1];
	assert_int_equal(aam_test_softhsm_read_pin(h.so_pin_file, so_pin, sizeof(so_pin)), AAM_OK);
	assert_int_equal(f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)so_pin, strlen(so_pin)),
	                 CKR_PIN_INCORRECT);
	assert_int_equal(f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)(uintptr_t) "1234", 4),
	                 CKR_PIN_INCORRECT);
	/* The SO PIN works for the SO. */
	assert_int_equal(f->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)so_pin, strlen(so_pin)), CKR_OK);
	assert_int_equal(f->C_Logout(s), CKR_OK);
	memset(so_pin, 0, sizeof(so_pin));
	assert_int_equal(aam_test_softhsm_login(&h, f, s), AAM_OK);
	f->C_Logout(s);
	f->C_CloseSession(s);
	unload_module(f);
	aam_test_softhsm_stop(&h);
}

static void
test_two_tokens_are_independent(void **state)
{
	(void)state;
	AAM_TEST_SOFTHSM_REQUIRE();
	struct aam_test_softhsm a, b;
	assert_int_equal(aam_test_softhsm_start(&a, "aam-a"), AAM_OK);
	assert_int_equal(aam_test_softhsm_start(&b, "aam-b"), AAM_OK);
	assert_string_not_equal(a.dir, b.dir);
	assert_string_not_equal(a.conf_path, b.conf_path);
	/* The most recent start is the active one. */
	assert_string_equal(getenv("SOFTHSM2_CONF"), b.conf_path);

	assert_int_equal(aam_test_softhsm_activate(&a), AAM_OK);
	CK_FUNCTION_LIST *f = load_module(&a);
	CK_SLOT_ID slot;
	assert_int_equal(aam_test_softhsm_find_slot(&b, f, &slot), AAM_E_NOTFOUND);
	CK_SESSION_HANDLE s = open_user_session(&a, f);
	CK_OBJECT_HANDLE pub, priv;
	generate_p256(f, s, "only-on-a", &pub, &priv);
	f->C_Logout(s);
	f->C_CloseSession(s);
	unload_module(f);

	assert_int_equal(aam_test_softhsm_activate(&b), AAM_OK);
	f = load_module(&b);
	assert_int_equal(aam_test_softhsm_find_slot(&a, f, &slot), AAM_E_NOTFOUND);
	assert_int_equal(aam_test_softhsm_find_slot(&b, f, &slot), AAM_OK);
	assert_int_equal(
	        f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s),
	        CKR_OK);
	/* A's user PIN does not open B. */
	char a_pin[AAM_TEST_PIN_MAX + 1];
	assert_int_equal(aam_test_softhsm_read_pin(a.user_pin_file, a_pin, sizeof(a_pin)), AAM_OK);
	assert_int_equal(f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)a_pin, strlen(a_pin)),
	                 CKR_PIN_INCORRECT);
	memset(a_pin, 0, sizeof(a_pin));
	assert_int_equal(aam_test_softhsm_login(&b, f, s), AAM_OK);
	assert_int_equal(count_objects(f, s, CKO_PRIVATE_KEY, "only-on-a"), 0);
	f->C_Logout(s);
	f->C_CloseSession(s);
	unload_module(f);

	/* Back on A: its key is still there. */
	assert_int_equal(aam_test_softhsm_activate(&a), AAM_OK);
	f = load_module(&a);
	s = open_user_session(&a, f);
	assert_int_equal(count_objects(f, s, CKO_PRIVATE_KEY, "only-on-a"), 1);
	f->C_Logout(s);
	f->C_CloseSession(s);
	unload_module(f);

	aam_test_softhsm_stop(&a);
	aam_test_softhsm_stop(&b);
	assert_int_equal(aam_test_softhsm_activate(&a), AAM_E_INVAL);
}

static void
test_start_refuses_while_module_initialised(void **state)
{
	(void)state;
	AAM_TEST_SOFTHSM_REQUIRE();
	struct aam_test_softhsm a, b;
	assert_int_equal(aam_test_softhsm_start(&a, "aam-busy-a"), AAM_OK);
	CK_FUNCTION_LIST *f = load_module(&a);
	/*
	 * SoftHSM2 would keep serving A's folder: starting B now must fail
	 * loudly instead of initialising a second token next to A's.
	 */
	assert_int_equal(aam_test_softhsm_start(&b, "aam-busy-b"), AAM_E_BUSY);
	assert_false(b.started);
	assert_int_equal(b.dir[0], '\0');
	CK_SLOT_ID slot;
	assert_int_equal(aam_test_softhsm_find_slot(&a, f, &slot), AAM_OK);
	unload_module(f);
	assert_int_equal(aam_test_softhsm_start(&b, "aam-busy-b"), AAM_OK);
	aam_test_softhsm_stop(&b);
	aam_test_softhsm_stop(&a);
}

static void
test_labels_are_checked_and_uri_encoded(void **state)
{
	(void)state;
	struct aam_test_softhsm h;
	assert_int_equal(aam_test_softhsm_start(&h, NULL), AAM_E_INVAL);
	assert_int_equal(aam_test_softhsm_start(&h, ""), AAM_E_INVAL);
	assert_int_equal(aam_test_softhsm_start(&h, "123456789012345678901234567890123"),
	                 AAM_E_INVAL);
	assert_int_equal(aam_test_softhsm_start(&h, "trailing "), AAM_E_INVAL);
	assert_int_equal(aam_test_softhsm_start(&h, "tab\there"), AAM_E_INVAL);
	assert_int_equal(aam_test_softhsm_start(&h, "caf\xc3\xa9"), AAM_E_INVAL);
	assert_int_equal(h.dir[0], '\0');
	assert_int_equal(aam_test_softhsm_start(NULL, "x"), AAM_E_INVAL);

	AAM_TEST_SOFTHSM_REQUIRE();
	/* 32 characters is the most a token label holds. */
	assert_int_equal(aam_test_softhsm_start(&h, "12345678901234567890123456789012"), AAM_OK);
	assert_string_equal(h.token_label, "12345678901234567890123456789012");
	aam_test_softhsm_stop(&h);
	assert_int_equal(aam_test_softhsm_start(&h, "aam test/1;x=%"), AAM_OK);
	assert_string_equal(h.token_uri, "pkcs11:token=aam%20test%2F1%3Bx%3D%25");
	CK_FUNCTION_LIST *f = load_module(&h);
	CK_SLOT_ID slot;
	assert_int_equal(aam_test_softhsm_find_slot(&h, f, &slot), AAM_OK);
	unload_module(f);
	aam_test_softhsm_stop(&h);
}

static void
test_read_pin_refuses_hostile_files(void **state)
{
	(void)state;
	char *dir = aam_test_mkdtemp("aam-pin-test");
	assert_non_null(dir);
	char path[AAM_TEST_PATH_MAX], buf[64];
	snprintf(path, sizeof(path), "%s/pin", dir);

	assert_int_equal(aam_test_softhsm_read_pin(path, buf, sizeof(buf)), AAM_E_NOTFOUND);

	assert_int_equal(aam_test_write_file(path, "secret1\n", 8, 0600), 0);
	assert_int_equal(aam_test_softhsm_read_pin(path, buf, sizeof(buf)), AAM_OK);
	assert_string_equal(buf, "secret1");
	unlink(path);

	/* Readable by others: a leaked PIN is refused and BUF is wiped. */
	assert_int_equal(aam_test_write_file(path, "secret2", 7, 0600), 0);
	assert_int_equal(chmod(path, 0644), 0);
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(aam_test_softhsm_read_pin(path, buf, sizeof(buf)), AAM_E_PERM);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0);
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(aam_test_softhsm_read_pin(path, buf, sizeof(buf)), AAM_E_PERM);
	unlink(path);

	assert_int_equal(aam_test_write_file(path, "", 0, 0600), 0);
	assert_int_equal(aam_test_softhsm_read_pin(path, buf, sizeof(buf)), AAM_E_INVAL);
	unlink(path);
	assert_int_equal(aam_test_write_file(path, "\n", 1, 0600), 0);
	assert_int_equal(aam_test_softhsm_read_pin(path, buf, sizeof(buf)), AAM_E_INVAL);
	unlink(path);
	assert_int_equal(aam_test_write_file(path, "ab\0cd", 5, 0600), 0);
	assert_int_equal(aam_test_softhsm_read_pin(path, buf, sizeof(buf)), AAM_E_INVAL);
	unlink(path);
	assert_int_equal(aam_test_write_file(path, "two\nlines", 9, 0600), 0);
	assert_int_equal(aam_test_softhsm_read_pin(path, buf, sizeof(buf)), AAM_E_INVAL);
	unlink(path);

	/* Longer than the buffer, and longer than any PIN. */
	char big[400];
	memset(big, 'a', sizeof(big));
	assert_int_equal(aam_test_write_file(path, big, 64, 0600), 0);
	assert_int_equal(aam_test_softhsm_read_pin(path, buf, sizeof(buf)), AAM_E_TOOBIG);
	assert_int_equal(aam_test_write_file(path, big, 63, 0600), 0);
	assert_int_equal(aam_test_softhsm_read_pin(path, buf, sizeof(buf)), AAM_OK);
	assert_int_equal(strlen(buf), 63);
	char huge[512];
	assert_int_equal(aam_test_write_file(path, big, sizeof(big), 0600), 0);
	assert_int_equal(aam_test_softhsm_read_pin(path, huge, sizeof(huge)), AAM_E_TOOBIG);
	assert_int_equal(aam_test_write_file(path, big, AAM_TEST_PIN_MAX, 0600), 0);
	assert_int_equal(aam_test_softhsm_read_pin(path, huge, sizeof(huge)), AAM_OK);
	unlink(path);

	/* Not a regular file; a symlink is not followed. */
	assert_int_equal(aam_test_softhsm_read_pin(dir, buf, sizeof(buf)), AAM_E_IO);
	char target[AAM_TEST_PATH_MAX];
	snprintf(target, sizeof(target), "%s/real", dir);
	assert_int_equal(aam_test_write_file(target, "secret3", 7, 0600), 0);
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(aam_test_softhsm_read_pin(path, buf, sizeof(buf)), AAM_E_IO);

	assert_int_equal(aam_test_softhsm_read_pin(NULL, buf, sizeof(buf)), AAM_E_INVAL);
	assert_int_equal(aam_test_softhsm_read_pin(target, buf, 1), AAM_E_INVAL);
	aam_test_rmtree(dir);
	free(dir);
}

static void
test_module_is_found(void **state)
{
	(void)state;
	AAM_TEST_SOFTHSM_REQUIRE();
	char path[AAM_TEST_PATH_MAX], saved[AAM_TEST_PATH_MAX] = "";
	const char *env = getenv("AAM_SOFTHSM2_MODULE");
	if (env != NULL)
		snprintf(saved, sizeof(saved), "%s", env);
	assert_true(aam_test_softhsm_find_module(path, sizeof(path)));
	assert_int_equal(access(path, R_OK), 0);
	/* An explicit override that does not exist is not silently replaced. */
	assert_int_equal(setenv("AAM_SOFTHSM2_MODULE", "/nonexistent/libsofthsm2.so", 1), 0);
	assert_false(aam_test_softhsm_available());
	struct aam_test_softhsm h;
	assert_int_equal(aam_test_softhsm_start(&h, "aam-none"), AAM_E_NOTFOUND);
	assert_int_equal(setenv("AAM_SOFTHSM2_MODULE", path, 1), 0);
	assert_true(aam_test_softhsm_available());
	if (saved[0] != '\0')
		assert_int_equal(setenv("AAM_SOFTHSM2_MODULE", saved, 1), 0);
	else
		assert_int_equal(unsetenv("AAM_SOFTHSM2_MODULE"), 0);
	/* A buffer too small for the path is refused, not truncated. */
	char tiny[8];
	assert_false(aam_test_softhsm_find_module(tiny, sizeof(tiny)));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_start_creates_token_and_stop_removes_it),
	        cmocka_unit_test(test_generates_key_on_token_and_signs),
	        cmocka_unit_test(test_wrong_pin_is_refused),
	        cmocka_unit_test(test_two_tokens_are_independent),
	        cmocka_unit_test(test_start_refuses_while_module_initialised),
	        cmocka_unit_test(test_labels_are_checked_and_uri_encoded),
	        cmocka_unit_test(test_read_pin_refuses_hostile_files),
	        cmocka_unit_test(test_module_is_found),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
