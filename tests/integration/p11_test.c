/*
 * common/p11 against a throwaway SoftHSM2 token: open and close, PIN and
 * URI errors that leak nothing, mechanism probing, the handle cache,
 * ECDSA that OpenSSL verifies, HMAC inside the token, attribute reads, and
 * recovery when every session is closed behind the pool's back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "aam/err.h"
#include "common/p11.h"
#include "tests/lib/softhsm.h"
#include "tests/lib/testutil.h"

static const uint8_t P256_PARAMS[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t SPKI_PREFIX[26] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
                                        0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
                                        0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00};

struct fx {
	struct aam_test_softhsm hsm;
	char *tmp;
	aam_p11 *p;
};

static int
setup(void **state)
{
	if (!aam_test_softhsm_available()) {
		*state = NULL;
		return 0;
	}
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(aam_test_softhsm_start(&f->hsm, "aam-p11-test"), AAM_OK);
	f->tmp = aam_test_mkdtemp("aam-p11-test");
	assert_non_null(f->tmp);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	if (f == NULL)
		return 0;
	aam_p11_close(f->p);
	aam_test_softhsm_stop(&f->hsm);
	aam_test_rmtree(f->tmp);
	free(f->tmp);
	free(f);
	return 0;
}

static struct fx *
fx_get(void **state)
{
	AAM_TEST_SOFTHSM_REQUIRE();
	struct fx *f = *state;
	assert_non_null(f);
	return f;
}

static void
open_default(struct fx *f, unsigned pool)
{
	struct aam_p11_config cfg = {
	        .module = f->hsm.module_path,
	        .token_uri = f->hsm.token_uri,
	        .pin_file = f->hsm.user_pin_file,
	        .pool_size = pool,
	};
	char err[256] = "";
	int rc = aam_p11_open(&cfg, &f->p, err, sizeof(err));
	if (rc != AAM_OK)
		print_message("open: %s\n", err);
	assert_int_equal(rc, AAM_OK);
}

/* ---- ops used through aam_p11_run -------------------------------------- */

struct genpair {
	const char *label;
	CK_OBJECT_HANDLE pub, priv;
};

static CK_RV
genpair_op(CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE s, void *vctx)
{
	struct genpair *g = vctx;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_ATTRIBUTE pub[] = {
	        {CKA_EC_PARAMS, (void *)(uintptr_t)P256_PARAMS, sizeof(P256_PARAMS)},
	        {CKA_TOKEN, &yes, sizeof(yes)},
	        {CKA_VERIFY, &yes, sizeof(yes)},
	        {CKA_LABEL, (void *)(uintptr_t)g->label, strlen(g->label)},
	};
	CK_ATTRIBUTE priv[] = {
	        {CKA_TOKEN, &yes, sizeof(yes)},
	        {CKA_PRIVATE, &yes, sizeof(yes)},
	        {CKA_SENSITIVE, &yes, sizeof(yes)},
	        {CKA_EXTRACTABLE, &no, sizeof(no)},
	        {CKA_SIGN, &yes, sizeof(yes)},
	        {CKA_LABEL, (void *)(uintptr_t)g->label, strlen(g->label)},
	};
	return fl->C_GenerateKeyPair(s, &mech, pub, 4, priv, 6, &g->pub, &g->priv);
}

struct mkobj {
	CK_OBJECT_CLASS cls;
	const char *label;
	const uint8_t *value;
	size_t len;
	CK_OBJECT_HANDLE h;
};

/* A data object (CKO_DATA) or an HMAC key (CKO_SECRET_KEY) with VALUE. */
static CK_RV
mkobj_op(CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE s, void *vctx)
{
	struct mkobj *m = vctx;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
	CK_ATTRIBUTE t[] = {
	        {CKA_CLASS, &m->cls, sizeof(m->cls)},
	        {CKA_TOKEN, &yes, sizeof(yes)},
	        {CKA_PRIVATE, &yes, sizeof(yes)},
	        {CKA_LABEL, (void *)(uintptr_t)m->label, strlen(m->label)},
	        {CKA_VALUE, (void *)(uintptr_t)m->value, m->len},
	        {CKA_KEY_TYPE, &kt, sizeof(kt)},
	        {CKA_SIGN, &yes, sizeof(yes)},
	        {CKA_SENSITIVE, &yes, sizeof(yes)},
	        {CKA_EXTRACTABLE, &no, sizeof(no)},
	};
	return fl->C_CreateObject(s, t, m->cls == CKO_DATA ? 5 : 9, &m->h);
}

static CK_OBJECT_HANDLE
mkobj(struct fx *f, CK_OBJECT_CLASS cls, const char *label, const void *v, size_t len)
{
	struct mkobj m = {.cls = cls, .label = label, .value = v, .len = len};
	assert_int_equal(aam_p11_run(f->p, mkobj_op, &m), CKR_OK);
	return m.h;
}

static EVP_PKEY *
pkey_from_point(const uint8_t point[65])
{
	uint8_t spki[91];
	memcpy(spki, SPKI_PREFIX, 26);
	memcpy(spki + 26, point, 65);
	const unsigned char *p = spki;
	EVP_PKEY *k = d2i_PUBKEY(NULL, &p, sizeof(spki));
	assert_non_null(k);
	return k;
}

static int
verify_rs(EVP_PKEY *k, const uint8_t d[32], const uint8_t rs[64])
{
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
	return ok;
}

/* ---- tests --------------------------------------------------------------- */

static void
test_open_and_close(void **state)
{
	struct fx *f = fx_get(state);
	open_default(f, 2);
	assert_non_null(aam_p11_module(f->p));
	CK_TOKEN_INFO ti;
	assert_int_equal(aam_p11_module(f->p)->C_GetTokenInfo(aam_p11_slot(f->p), &ti), CKR_OK);
	assert_memory_equal(ti.label, "aam-p11-test", 12);
	aam_p11_close(f->p);
	f->p = NULL;
	aam_p11_close(NULL);
	/* Twice in a row: close must leave the module re-initialisable. */
	open_default(f, 1);
	aam_p11_close(f->p);
	f->p = NULL;
}

static void
test_pin_source_in_uri(void **state)
{
	struct fx *f = fx_get(state);
	char uri[2 * AAM_TEST_PATH_MAX + 64];
	snprintf(uri, sizeof(uri), "%s?pin-source=file:%s", f->hsm.token_uri, f->hsm.user_pin_file);
	struct aam_p11_config cfg = {.module = f->hsm.module_path, .token_uri = uri};
	char err[256];
	assert_int_equal(aam_p11_open(&cfg, &f->p, err, sizeof(err)), AAM_OK);
	aam_p11_close(f->p);
	f->p = NULL;
}

static void
test_wrong_pin_error_has_no_pin(void **state)
{
	struct fx *f = fx_get(state);
	const char *wrong = "wrongpin-7c1e5a";
	char path[AAM_TEST_PATH_MAX + 64];
	snprintf(path, sizeof(path), "%s/bad.pin", f->tmp);
	assert_int_equal(aam_test_write_file(path, wrong, strlen(wrong), 0600), 0);
	char real[AAM_TEST_PIN_MAX + 1];
	assert_int_equal(aam_test_softhsm_read_pin(f->hsm.user_pin_file, real, sizeof(real)),
	                 AAM_OK);

	struct aam_p11_config cfg = {
	        .module = f->hsm.module_path, .token_uri = f->hsm.token_uri, .pin_file = path};
	char err[512] = "";
	aam_p11 *p = NULL;
	assert_int_equal(aam_p11_open(&cfg, &p, err, sizeof(err)), AAM_E_PERM);
	assert_null(p);
	assert_non_null(strstr(err, "CKR_PIN_INCORRECT"));
	assert_null(strstr(err, wrong));
	assert_null(strstr(err, real));

	/* An empty PIN file and a missing one are refused before any login. */
	assert_int_equal(aam_test_write_file(path, "\n", 1, 0600), 0);
	assert_int_equal(aam_p11_open(&cfg, &p, err, sizeof(err)), AAM_E_INVAL);
	snprintf(path, sizeof(path), "%s/missing.pin", f->tmp);
	assert_int_equal(aam_p11_open(&cfg, &p, err, sizeof(err)), AAM_E_IO);
	assert_null(p);
}

static void
test_pin_value_uri_refused(void **state)
{
	struct fx *f = fx_get(state);
	char uri[2 * AAM_TEST_PATH_MAX + 64];
	snprintf(uri, sizeof(uri), "%s?pin-value=31337", f->hsm.token_uri);
	struct aam_p11_config cfg = {
	        .module = f->hsm.module_path, .token_uri = uri, .pin_file = f->hsm.user_pin_file};
	char err[512] = "";
	aam_p11 *p = NULL;
	assert_int_equal(aam_p11_open(&cfg, &p, err, sizeof(err)), AAM_E_CONFIG);
	assert_null(p);
	assert_non_null(strstr(err, "pin-value"));
	assert_null(strstr(err, "31337"));

	/* No PIN at all, a broken URI, and a missing module. */
	cfg.token_uri = f->hsm.token_uri;
	cfg.pin_file = NULL;
	assert_int_equal(aam_p11_open(&cfg, &p, err, sizeof(err)), AAM_E_CONFIG);
	cfg.pin_file = f->hsm.user_pin_file;
	cfg.token_uri = "http://not-pkcs11";
	assert_int_equal(aam_p11_open(&cfg, &p, err, sizeof(err)), AAM_E_CONFIG);
	cfg.token_uri = f->hsm.token_uri;
	cfg.module = "/nonexistent/libnothing.so";
	assert_int_equal(aam_p11_open(&cfg, &p, err, sizeof(err)), AAM_E_HSM);
	assert_null(p);
}

static void
test_token_not_found(void **state)
{
	struct fx *f = fx_get(state);
	struct aam_p11_config cfg = {.module = f->hsm.module_path,
	                             .token_uri = "pkcs11:token=no-such-token",
	                             .pin_file = f->hsm.user_pin_file};
	char err[512] = "";
	aam_p11 *p = NULL;
	assert_int_equal(aam_p11_open(&cfg, &p, err, sizeof(err)), AAM_E_NOTFOUND);
	assert_null(p);
	assert_non_null(strstr(err, "no-such-token"));
}

static void
test_mechanism_probe(void **state)
{
	struct fx *f = fx_get(state);
	open_default(f, 1);
	assert_true(aam_p11_has_mechanism(f->p, CKM_ECDSA));
	assert_true(aam_p11_has_mechanism(f->p, CKM_EC_KEY_PAIR_GEN));
	assert_true(aam_p11_has_mechanism(f->p, CKM_SHA256_HMAC));
	assert_true(aam_p11_has_mechanism(f->p, CKM_AES_CBC_PAD));
	assert_false(aam_p11_has_mechanism(f->p, CKM_VENDOR_DEFINED | 0x4242));
	/* The answer agrees with a direct C_GetMechanismInfo. */
	CK_MECHANISM_INFO mi;
	CK_RV rv = aam_p11_module(f->p)->C_GetMechanismInfo(aam_p11_slot(f->p), CKM_AES_GCM, &mi);
	assert_int_equal(aam_p11_has_mechanism(f->p, CKM_AES_GCM), rv == CKR_OK);
}

static void
test_find_is_cached(void **state)
{
	struct fx *f = fx_get(state);
	open_default(f, 2);
	CK_OBJECT_HANDLE h = mkobj(f, CKO_DATA, "cache-me", "x", 1), a = 0, b = 0;
	assert_int_equal(aam_p11_find(f->p, CKO_DATA, "cache-me", &a), AAM_OK);
	assert_int_equal(a, h);
	/* Wrong class: a different cache key, and nothing there. */
	assert_int_equal(aam_p11_find(f->p, CKO_SECRET_KEY, "cache-me", &b), AAM_E_NOTFOUND);

	/* Destroy it behind the cache's back: a cached lookup does not search. */
	CK_FUNCTION_LIST *fl = aam_p11_module(f->p);
	CK_SESSION_HANDLE s;
	assert_int_equal(fl->C_OpenSession(aam_p11_slot(f->p), CKF_SERIAL_SESSION | CKF_RW_SESSION,
	                                   NULL, NULL, &s),
	                 CKR_OK);
	assert_int_equal(fl->C_DestroyObject(s, h), CKR_OK);
	assert_int_equal(fl->C_CloseSession(s), CKR_OK);
	assert_int_equal(aam_p11_find(f->p, CKO_DATA, "cache-me", &b), AAM_OK);
	assert_int_equal(b, h);
	aam_p11_forget_label(f->p, CKO_DATA, "cache-me");
	assert_int_equal(aam_p11_find(f->p, CKO_DATA, "cache-me", &b), AAM_E_NOTFOUND);

	/* Two objects with one label are ambiguous, never "the first one". */
	mkobj(f, CKO_DATA, "twice", "1", 1);
	mkobj(f, CKO_DATA, "twice", "2", 1);
	assert_int_equal(aam_p11_find(f->p, CKO_DATA, "twice", &b), AAM_E_EXISTS);

	/* Many labels: the cache grows past its first allocation and stays right. */
	CK_OBJECT_HANDLE many[80];
	for (int i = 0; i < 80; i++) {
		char l[32];
		snprintf(l, sizeof(l), "many-%d", i);
		many[i] = mkobj(f, CKO_DATA, l, l, strlen(l));
		assert_int_equal(aam_p11_find(f->p, CKO_DATA, l, &b), AAM_OK);
		assert_int_equal(b, many[i]);
	}
	for (int i = 79; i >= 0; i--) {
		char l[32];
		snprintf(l, sizeof(l), "many-%d", i);
		assert_int_equal(aam_p11_find(f->p, CKO_DATA, l, &b), AAM_OK);
		assert_int_equal(b, many[i]);
	}
	/* aam_p11_destroy drops the cache: the label is gone for real. */
	assert_int_equal(aam_p11_destroy(f->p, many[3]), AAM_OK);
	assert_int_equal(aam_p11_find(f->p, CKO_DATA, "many-3", &b), AAM_E_NOTFOUND);
	assert_int_equal(aam_p11_destroy(f->p, many[3]), AAM_E_NOTFOUND);

	/* Uncached search sees every object carrying a label. */
	CK_ATTRIBUTE t[] = {{CKA_LABEL, (void *)(uintptr_t) "twice", 5}};
	CK_OBJECT_HANDLE all[4];
	size_t n = 0;
	assert_int_equal(aam_p11_find_all(f->p, t, 1, all, 4, &n), AAM_OK);
	assert_int_equal(n, 2);

	char longl[300];
	memset(longl, 'a', sizeof(longl) - 1);
	longl[sizeof(longl) - 1] = '\0';
	assert_int_equal(aam_p11_find(f->p, CKO_DATA, longl, &b), AAM_E_INVAL);
	assert_int_equal(aam_p11_find(f->p, CKO_DATA, "", &b), AAM_E_INVAL);
}

static void
test_sign_verifies_and_attributes(void **state)
{
	struct fx *f = fx_get(state);
	open_default(f, 2);
	struct genpair g = {.label = "p11-sign"};
	assert_int_equal(aam_p11_run(f->p, genpair_op, &g), CKR_OK);
	uint8_t point[65];
	assert_int_equal(aam_p11_ec_point(f->p, g.pub, point), AAM_OK);
	assert_int_equal(point[0], 0x04);
	EVP_PKEY *k = pkey_from_point(point);
	for (int i = 0; i < 20; i++) {
		uint8_t d[32], sig[64];
		RAND_bytes(d, sizeof(d));
		assert_int_equal(aam_p11_sign_ecdsa_p256(f->p, g.priv, d, sig), AAM_OK);
		/* SoftHSM2 may rarely produce a bad one; the vault checks each (vault_sign). */
		if (verify_rs(k, d, sig) != 1)
			print_message("note: SoftHSM2 produced an invalid signature\n");
		d[0] ^= 1;
		assert_int_not_equal(verify_rs(k, d, sig), 1);
	}
	EVP_PKEY_free(k);

	bool v = false;
	assert_int_equal(aam_p11_get_bool(f->p, g.priv, CKA_SENSITIVE, &v), AAM_OK);
	assert_true(v);
	assert_int_equal(aam_p11_get_bool(f->p, g.priv, CKA_EXTRACTABLE, &v), AAM_OK);
	assert_false(v);
	assert_int_equal(aam_p11_get_bool(f->p, g.priv, CKA_LOCAL, &v), AAM_OK);
	assert_true(v);
	/* A non-boolean attribute is not read as one. */
	assert_int_not_equal(aam_p11_get_bool(f->p, g.priv, CKA_KEY_TYPE, &v), AAM_OK);

	uint8_t buf[128];
	size_t n = 0;
	assert_int_equal(aam_p11_get_attr(f->p, g.priv, CKA_VALUE, buf, sizeof(buf), &n),
	                 AAM_E_PERM);
	assert_int_equal(aam_p11_get_attr(f->p, g.priv, CKA_LABEL, buf, sizeof(buf), &n), AAM_OK);
	assert_int_equal(n, 8);
	assert_memory_equal(buf, "p11-sign", 8);
	assert_int_equal(aam_p11_get_attr(f->p, g.priv, CKA_LABEL, buf, 3, &n), AAM_E_TOOBIG);
	assert_int_equal(n, 8);
	assert_int_equal(aam_p11_get_attr(f->p, g.pub, CKA_EC_PARAMS, buf, sizeof(buf), &n),
	                 AAM_OK);
	assert_int_equal(n, sizeof(P256_PARAMS));

	/* Signing with a public key or a dead handle fails cleanly, and the pool survives. */
	uint8_t d[32] = {1}, sig[64];
	assert_int_not_equal(aam_p11_sign_ecdsa_p256(f->p, g.pub, d, sig), AAM_OK);
	assert_int_not_equal(aam_p11_sign_ecdsa_p256(f->p, 0x7fffffff, d, sig), AAM_OK);
	assert_int_equal(aam_p11_sign_ecdsa_p256(f->p, g.priv, d, sig), AAM_OK);
}

static void
test_hmac_and_random(void **state)
{
	struct fx *f = fx_get(state);
	open_default(f, 1);
	uint8_t key[32];
	RAND_bytes(key, sizeof(key));
	CK_OBJECT_HANDLE h = mkobj(f, CKO_SECRET_KEY, "p11-hmac", key, sizeof(key));
	const char *msg = "The quick brown fox";
	uint8_t mac[32], want[32];
	unsigned wl = 0;
	assert_int_equal(aam_p11_hmac_sha256(f->p, h, (const uint8_t *)msg, strlen(msg), mac),
	                 AAM_OK);
	HMAC(EVP_sha256(), key, sizeof(key), (const uint8_t *)msg, strlen(msg), want, &wl);
	assert_memory_equal(mac, want, 32);
	/* Empty input is a valid HMAC input. */
	assert_int_equal(aam_p11_hmac_sha256(f->p, h, NULL, 0, mac), AAM_OK);
	HMAC(EVP_sha256(), key, sizeof(key), (const uint8_t *)"", 0, want, &wl);
	assert_memory_equal(mac, want, 32);

	uint8_t r1[32] = {0}, r2[32] = {0};
	assert_int_equal(aam_p11_random(f->p, r1, sizeof(r1)), AAM_OK);
	assert_int_equal(aam_p11_random(f->p, r2, sizeof(r2)), AAM_OK);
	assert_memory_not_equal(r1, r2, 32);
}

struct worker {
	aam_p11 *p;
	CK_OBJECT_HANDLE priv;
	EVP_PKEY *k;
	int failures;
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < 25; i++) {
		uint8_t d[32], sig[64];
		RAND_bytes(d, sizeof(d));
		if (aam_p11_sign_ecdsa_p256(w->p, w->priv, d, sig) != AAM_OK)
			w->failures++;
	}
	return NULL;
}

static void
test_session_recovery(void **state)
{
	struct fx *f = fx_get(state);
	open_default(f, 4);
	struct genpair g = {.label = "p11-recover"};
	assert_int_equal(aam_p11_run(f->p, genpair_op, &g), CKR_OK);
	uint8_t point[65];
	assert_int_equal(aam_p11_ec_point(f->p, g.pub, point), AAM_OK);
	EVP_PKEY *k = pkey_from_point(point);
	CK_FUNCTION_LIST *fl = aam_p11_module(f->p);
	CK_OBJECT_HANDLE h;
	assert_int_equal(aam_p11_find(f->p, CKO_PRIVATE_KEY, "p11-recover", &h), AAM_OK);
	assert_int_equal(h, g.priv);

	for (int round = 0; round < 3; round++) {
		/* Every session of the pool dies, and the login with them. */
		assert_int_equal(fl->C_CloseAllSessions(aam_p11_slot(f->p)), CKR_OK);
		uint64_t gen = aam_p11_generation(f->p);
		uint8_t d[32], sig[64];
		RAND_bytes(d, sizeof(d));
		/* The next operation re-opens a session, logs in again and succeeds. */
		assert_int_equal(aam_p11_random(f->p, d, sizeof(d)), AAM_OK);
		assert_true(aam_p11_generation(f->p) > gen);
		/*
		 * The module may renumber private objects across the logout, so the
		 * cache was dropped: a fresh lookup gives a handle that signs.
		 */
		assert_int_equal(aam_p11_find(f->p, CKO_PRIVATE_KEY, "p11-recover", &h), AAM_OK);
		assert_int_equal(aam_p11_sign_ecdsa_p256(f->p, h, d, sig), AAM_OK);
		g.priv = h;
		/* The other pool sessions recover too, used from several threads at once. */
		pthread_t t[6];
		struct worker w[6];
		for (int i = 0; i < 6; i++) {
			w[i] = (struct worker){.p = f->p, .priv = g.priv, .k = k};
			assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
		}
		for (int i = 0; i < 6; i++) {
			pthread_join(t[i], NULL);
			assert_int_equal(w[i].failures, 0);
		}
	}
	/* A logout is recovered the same way (CKR_USER_NOT_LOGGED_IN on a private object). */
	CK_SESSION_HANDLE s;
	assert_int_equal(fl->C_OpenSession(aam_p11_slot(f->p), CKF_SERIAL_SESSION, NULL, NULL, &s),
	                 CKR_OK);
	assert_int_equal(fl->C_Logout(s), CKR_OK);
	assert_int_equal(fl->C_CloseSession(s), CKR_OK);
	uint8_t d[32] = {7}, sig[64];
	uint64_t gen = aam_p11_generation(f->p);
	int rc = aam_p11_sign_ecdsa_p256(f->p, g.priv, d, sig);
	if (rc != AAM_OK) {
		/* Renumbered by the logout: the contract says look it up again. */
		assert_int_equal(rc, AAM_E_NOTFOUND);
		assert_true(aam_p11_generation(f->p) > gen);
		assert_int_equal(aam_p11_find(f->p, CKO_PRIVATE_KEY, "p11-recover", &h), AAM_OK);
		assert_int_equal(aam_p11_sign_ecdsa_p256(f->p, h, d, sig), AAM_OK);
	}
	/* After another logout a search alone notices and logs in again. */
	assert_int_equal(fl->C_OpenSession(aam_p11_slot(f->p), CKF_SERIAL_SESSION, NULL, NULL, &s),
	                 CKR_OK);
	assert_int_equal(fl->C_Logout(s), CKR_OK);
	assert_int_equal(fl->C_CloseSession(s), CKR_OK);
	aam_p11_forget(f->p);
	assert_int_equal(aam_p11_find(f->p, CKO_PRIVATE_KEY, "p11-recover", &h), AAM_OK);
	assert_int_equal(aam_p11_sign_ecdsa_p256(f->p, h, d, sig), AAM_OK);
	EVP_PKEY_free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_open_and_close, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_pin_source_in_uri, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_wrong_pin_error_has_no_pin, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_pin_value_uri_refused, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_token_not_found, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_mechanism_probe, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_find_is_cached, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_sign_verifies_and_attributes, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_hmac_and_random, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_session_recovery, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
