/*
 * The swtpm fixture really answers: tss2 connects with the fixture's TCTI
 * string, TPM2_GetRandom returns fresh bytes, and the EK certificates that
 * swtpm_setup wrote to NV parse as X.509, belong to this TPM's EK and chain
 * to the local CA the fixture exposes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "aam/err.h"
#include "tests/lib/swtpm.h"
#include "tests/lib/testutil.h"

#if __has_include(<tss2/tss2_esys.h>) && __has_include(<tss2/tss2_tctildr.h>)
#define HAVE_TSS2 1
#include <tss2/tss2_esys.h>
#include <tss2/tss2_tctildr.h>
#else
#define HAVE_TSS2 0
#endif

/* The persistent RSA EK swtpm_setup creates (TCG provisioning guidance). */
#define EK_RSA_PERSISTENT 0x81010001u

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

static X509 *
load_pem_cert(const char *path)
{
	FILE *fp = fopen(path, "r");
	assert_non_null(fp);
	X509 *c = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(c);
	return c;
}

/*
 * Verifies LEAF against the fixture's CA.  With a root it is the full
 * chain root -> local CA -> leaf; without one, the local CA alone is the
 * trust anchor (a partial chain).
 */
static int
verify_chain(X509 *leaf, const char *root_path, const char *ca_path)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	STACK_OF(X509) *untrusted = sk_X509_new_null();
	assert_non_null(store);
	assert_non_null(ctx);
	assert_non_null(untrusted);
	X509 *ca = load_pem_cert(ca_path);
	if (root_path != NULL) {
		X509 *root = load_pem_cert(root_path);
		assert_int_equal(X509_STORE_add_cert(store, root), 1);
		X509_free(root);
		assert_true(sk_X509_push(untrusted, ca) > 0);
	} else {
		assert_int_equal(X509_STORE_add_cert(store, ca), 1);
		X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
		X509_free(ca);
		ca = NULL;
	}
	assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, untrusted), 1);
	int ok = X509_verify_cert(ctx);
	if (ok != 1)
		print_message("chain check: %s\n",
		              X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	X509_STORE_CTX_free(ctx);
	sk_X509_pop_free(untrusted, X509_free);
	X509_STORE_free(store);
	return ok;
}

#if HAVE_TSS2

struct tpm_conn {
	TSS2_TCTI_CONTEXT *tcti;
	ESYS_CONTEXT *esys;
};

static void
tpm_connect(const struct aam_test_swtpm *h, struct tpm_conn *c)
{
	memset(c, 0, sizeof(*c));
	assert_int_equal(Tss2_TctiLdr_Initialize(h->tcti, &c->tcti), TSS2_RC_SUCCESS);
	assert_int_equal(Esys_Initialize(&c->esys, c->tcti, NULL), TSS2_RC_SUCCESS);
	/* The fixture started the TPM already; a second Startup says so. */
	TSS2_RC rc = Esys_Startup(c->esys, TPM2_SU_CLEAR);
	assert_true(rc == TSS2_RC_SUCCESS || rc == TPM2_RC_INITIALIZE);
}

static void
tpm_disconnect(struct tpm_conn *c)
{
	Esys_Finalize(&c->esys);
	Tss2_TctiLdr_Finalize(&c->tcti);
}

static void
get_random(ESYS_CONTEXT *esys, uint8_t out[32])
{
	TPM2B_DIGEST *rnd = NULL;
	assert_int_equal(Esys_GetRandom(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, 32, &rnd),
	                 TSS2_RC_SUCCESS);
	assert_non_null(rnd);
	assert_int_equal(rnd->size, 32);
	memcpy(out, rnd->buffer, 32);
	Esys_Free(rnd);
}

/* Reads a whole NV index; returns the TSS2 code of the first failure. */
static TSS2_RC
read_nv(ESYS_CONTEXT *esys, TPM2_HANDLE index, uint8_t **out, size_t *len)
{
	*out = NULL;
	*len = 0;
	ESYS_TR nv = ESYS_TR_NONE;
	TSS2_RC rc =
	        Esys_TR_FromTPMPublic(esys, index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &nv);
	if (rc != TSS2_RC_SUCCESS)
		return rc;
	TPM2B_NV_PUBLIC *pub = NULL;
	rc = Esys_NV_ReadPublic(esys, nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		Esys_TR_Close(esys, &nv);
		return rc;
	}
	size_t size = pub->nvPublic.dataSize;
	Esys_Free(pub);
	uint8_t *buf = malloc(size > 0 ? size : 1);
	assert_non_null(buf);
	size_t off = 0;
	while (rc == TSS2_RC_SUCCESS && off < size) {
		/* 512 bytes fits every TPM's NV buffer (TPM2_PT_NV_BUFFER_MAX). */
		UINT16 chunk = (UINT16)(size - off > 512 ? 512 : size - off);
		TPM2B_MAX_NV_BUFFER *data = NULL;
		rc = Esys_NV_Read(esys, ESYS_TR_RH_OWNER, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE,
		                  ESYS_TR_NONE, chunk, (UINT16)off, &data);
		if (rc == TSS2_RC_SUCCESS) {
			assert_true(data->size > 0 && data->size <= chunk);
			memcpy(buf + off, data->buffer, data->size);
			off += data->size;
			Esys_Free(data);
		}
	}
	Esys_TR_Close(esys, &nv);
	if (rc != TSS2_RC_SUCCESS) {
		free(buf);
		return rc;
	}
	*out = buf;
	*len = size;
	return TSS2_RC_SUCCESS;
}

/* Parses DER that must be exactly one certificate, nothing trailing. */
static X509 *
parse_cert(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	X509 *cert = d2i_X509(NULL, &p, (long)len);
	assert_non_null(cert);
	assert_ptr_equal(p, der + len);
	return cert;
}

static void
test_start_answers_get_random(void **state)
{
	(void)state;
	AAM_TEST_SWTPM_REQUIRE();
	struct aam_test_swtpm h;
	double t0 = now_ms();
	assert_int_equal(aam_test_swtpm_start(&h), AAM_OK);
	print_message(
	        "swtpm fixture start took %.0f ms (swtpm_setup %.0f ms, swtpm up in %.0f ms)\n",
	        now_ms() - t0, h.setup_seconds * 1e3, h.start_seconds * 1e3);
	assert_true(h.pid > 0);
	assert_int_equal(kill(h.pid, 0), 0);
	assert_true(h.server_port > 0 && h.server_port < 65535);
	assert_int_equal(h.ctrl_port, h.server_port + 1);
	char want[64];
	snprintf(want, sizeof(want), "swtpm:host=127.0.0.1,port=%d", h.server_port);
	assert_string_equal(h.tcti, want);
	assert_true(exists(h.ca_cert_path));
	assert_true(exists(h.root_cert_path));
	assert_int_equal(aam_test_swtpm_ping(&h), AAM_OK);

	struct tpm_conn c;
	tpm_connect(&h, &c);
	uint8_t r1[32], r2[32];
	get_random(c.esys, r1);
	get_random(c.esys, r2);
	assert_memory_not_equal(r1, r2, sizeof(r1));
	static const uint8_t zero[32];
	assert_memory_not_equal(r1, zero, sizeof(r1));
	tpm_disconnect(&c);

	/* Stop: the process is gone, the port is closed, the folder removed. */
	pid_t pid = h.pid;
	int port = h.server_port;
	char dir[AAM_TEST_PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", h.dir);
	t0 = now_ms();
	aam_test_swtpm_stop(&h);
	print_message("swtpm fixture stop took %.0f ms\n", now_ms() - t0);
	errno = 0;
	assert_int_equal(kill(pid, 0), -1);
	assert_int_equal(errno, ESRCH);
	assert_false(exists(dir));
	assert_int_equal(h.pid, -1);
	struct aam_test_swtpm gone = {.server_port = port};
	assert_int_not_equal(aam_test_swtpm_ping(&gone), AAM_OK);
	/* Stopping twice, or a zeroed fixture, is harmless. */
	aam_test_swtpm_stop(&h);
	aam_test_swtpm_stop(NULL);
	struct aam_test_swtpm zeroed;
	memset(&zeroed, 0, sizeof(zeroed));
	aam_test_swtpm_stop(&zeroed);
}

static void
check_rsa_ek_matches(ESYS_CONTEXT *esys, X509 *cert)
{
	ESYS_TR ek = ESYS_TR_NONE;
	assert_int_equal(Esys_TR_FromTPMPublic(esys, EK_RSA_PERSISTENT, ESYS_TR_NONE, ESYS_TR_NONE,
	                                       ESYS_TR_NONE, &ek),
	                 TSS2_RC_SUCCESS);
	TPM2B_PUBLIC *pub = NULL;
	assert_int_equal(Esys_ReadPublic(esys, ek, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub,
	                                 NULL, NULL),
	                 TSS2_RC_SUCCESS);
	assert_int_equal(pub->publicArea.type, TPM2_ALG_RSA);
	assert_int_equal(pub->publicArea.unique.rsa.size, 256);

	EVP_PKEY *key = X509_get0_pubkey(cert);
	assert_non_null(key);
	assert_int_equal(EVP_PKEY_get_base_id(key), EVP_PKEY_RSA);
	BIGNUM *n = NULL;
	assert_int_equal(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n), 1);
	uint8_t mod[256];
	assert_int_equal(BN_bn2binpad(n, mod, sizeof(mod)), 256);
	assert_memory_equal(mod, pub->publicArea.unique.rsa.buffer, 256);
	BN_free(n);
	Esys_Free(pub);
	Esys_TR_Close(esys, &ek);
}

static void
test_ek_certificates_chain_to_local_ca(void **state)
{
	(void)state;
	AAM_TEST_SWTPM_REQUIRE();
	struct aam_test_swtpm h;
	assert_int_equal(aam_test_swtpm_start(&h), AAM_OK);
	struct tpm_conn c;
	tpm_connect(&h, &c);

	uint8_t *der = NULL;
	size_t len = 0;
	assert_int_equal(read_nv(c.esys, AAM_TEST_SWTPM_NV_EK_CERT_RSA, &der, &len),
	                 TSS2_RC_SUCCESS);
	assert_true(len > 100);
	X509 *rsa = parse_cert(der, len);
	free(der);
	assert_int_equal(verify_chain(rsa, h.root_cert_path, h.ca_cert_path), 1);
	assert_int_equal(verify_chain(rsa, NULL, h.ca_cert_path), 1);
	/* The certificate is for this TPM's EK, not just any RSA key. */
	check_rsa_ek_matches(c.esys, rsa);

	/* The issuer of the EK certificate is the exposed CA certificate. */
	X509 *ca = load_pem_cert(h.ca_cert_path);
	assert_int_equal(X509_check_issued(ca, rsa), X509_V_OK);
	X509_free(ca);

	/* swtpm 0.7 writes a P-384 ECC EK certificate; newer ones may use P-256. */
	TPM2_HANDLE ecc_index = AAM_TEST_SWTPM_NV_EK_CERT_ECC_P256;
	if (read_nv(c.esys, ecc_index, &der, &len) != TSS2_RC_SUCCESS) {
		ecc_index = AAM_TEST_SWTPM_NV_EK_CERT_ECC_P384;
		assert_int_equal(read_nv(c.esys, ecc_index, &der, &len), TSS2_RC_SUCCESS);
	}
	print_message("ECC EK certificate at NV index 0x%08x\n", (unsigned)ecc_index);
	X509 *ecc = parse_cert(der, len);
	free(der);
	assert_int_equal(EVP_PKEY_get_base_id(X509_get0_pubkey(ecc)), EVP_PKEY_EC);
	assert_int_equal(verify_chain(ecc, h.root_cert_path, h.ca_cert_path), 1);

	/* The platform certificate is in NV too (an attribute certificate). */
	assert_int_equal(read_nv(c.esys, AAM_TEST_SWTPM_NV_PLATFORM_CERT, &der, &len),
	                 TSS2_RC_SUCCESS);
	assert_true(len > 0);
	free(der);

	/* An index that was never defined is an error, not an empty read. */
	assert_int_not_equal(read_nv(c.esys, 0x01c00100u, &der, &len), TSS2_RC_SUCCESS);
	assert_null(der);

	/* A damaged signature no longer chains. */
	const ASN1_BIT_STRING *sig = NULL;
	X509_get0_signature(&sig, NULL, rsa);
	assert_non_null(sig);
	unsigned char *der_rsa = NULL;
	int der_rsa_len = i2d_X509(rsa, &der_rsa);
	assert_true(der_rsa_len > 10);
	der_rsa[der_rsa_len - 5] ^= 0x01; /* inside the trailing signature bits */
	X509 *bad = parse_cert(der_rsa, (size_t)der_rsa_len);
	assert_int_not_equal(verify_chain(bad, h.root_cert_path, h.ca_cert_path), 1);
	X509_free(bad);
	OPENSSL_free(der_rsa);

	X509_free(rsa);
	X509_free(ecc);
	tpm_disconnect(&c);
	aam_test_swtpm_stop(&h);
}

static void
test_two_tpms_are_independent(void **state)
{
	(void)state;
	AAM_TEST_SWTPM_REQUIRE();
	struct aam_test_swtpm a, b;
	assert_int_equal(aam_test_swtpm_start(&a), AAM_OK);
	assert_int_equal(aam_test_swtpm_start(&b), AAM_OK);
	assert_int_not_equal(a.pid, b.pid);
	assert_int_not_equal(a.server_port, b.server_port);
	assert_string_not_equal(a.dir, b.dir);

	struct tpm_conn ca, cb;
	tpm_connect(&a, &ca);
	tpm_connect(&b, &cb);
	uint8_t *der_a, *der_b;
	size_t len_a, len_b;
	assert_int_equal(read_nv(ca.esys, AAM_TEST_SWTPM_NV_EK_CERT_RSA, &der_a, &len_a),
	                 TSS2_RC_SUCCESS);
	assert_int_equal(read_nv(cb.esys, AAM_TEST_SWTPM_NV_EK_CERT_RSA, &der_b, &len_b),
	                 TSS2_RC_SUCCESS);
	X509 *ek_a = parse_cert(der_a, len_a);
	X509 *ek_b = parse_cert(der_b, len_b);
	assert_int_not_equal(EVP_PKEY_eq(X509_get0_pubkey(ek_a), X509_get0_pubkey(ek_b)), 1);
	/* Each TPM's EK chains to its own CA only. */
	assert_int_equal(verify_chain(ek_a, a.root_cert_path, a.ca_cert_path), 1);
	assert_int_equal(verify_chain(ek_b, b.root_cert_path, b.ca_cert_path), 1);
	assert_int_not_equal(verify_chain(ek_a, b.root_cert_path, b.ca_cert_path), 1);
	assert_int_not_equal(verify_chain(ek_b, NULL, a.ca_cert_path), 1);
	X509_free(ek_a);
	X509_free(ek_b);
	free(der_a);
	free(der_b);
	tpm_disconnect(&ca);
	tpm_disconnect(&cb);

	/* Stopping one leaves the other answering. */
	aam_test_swtpm_stop(&a);
	assert_int_equal(aam_test_swtpm_ping(&b), AAM_OK);
	aam_test_swtpm_stop(&b);
}

#endif /* HAVE_TSS2 */

/* A one-shot impostor on a loopback port: reads a command, answers REPLY. */
struct impostor {
	int listen_fd;
	const uint8_t *reply;
	size_t reply_len;
};

static void *
impostor_main(void *arg)
{
	struct impostor *im = arg;
	int fd = accept(im->listen_fd, NULL, NULL);
	if (fd >= 0) {
		uint8_t cmd[12];
		size_t got = 0;
		while (got < sizeof(cmd)) {
			ssize_t n = recv(fd, cmd + got, sizeof(cmd) - got, 0);
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		if (im->reply_len > 0)
			(void)send(fd, im->reply, im->reply_len, MSG_NOSIGNAL);
		close(fd);
	}
	return NULL;
}

static int
ping_impostor(const uint8_t *reply, size_t reply_len)
{
	struct impostor im = {.reply = reply, .reply_len = reply_len};
	im.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(im.listen_fd >= 0);
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof(sa);
	assert_int_equal(bind(im.listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(im.listen_fd, 1), 0);
	assert_int_equal(getsockname(im.listen_fd, (struct sockaddr *)&sa, &sl), 0);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, impostor_main, &im), 0);
	struct aam_test_swtpm h;
	memset(&h, 0, sizeof(h));
	h.server_port = ntohs(sa.sin_port);
	int rc = aam_test_swtpm_ping(&h);
	pthread_join(t, NULL);
	close(im.listen_fd);
	return rc;
}

static void
test_ping_refuses_a_non_tpm(void **state)
{
	(void)state;
	struct aam_test_swtpm h;
	memset(&h, 0, sizeof(h));
	assert_int_equal(aam_test_swtpm_ping(NULL), AAM_E_INVAL);
	assert_int_equal(aam_test_swtpm_ping(&h), AAM_E_INVAL);
	/* A port with nobody listening. */
	h.server_port = aam_test_free_port();
	assert_true(h.server_port > 0);
	assert_int_equal(aam_test_swtpm_ping(&h), AAM_E_IO);

	/* A web server, a TPM error, a lying size, and a peer that hangs up. */
	static const uint8_t http[] = "HTTP/1.1 400 Bad Request\r\n\r\n";
	assert_int_equal(ping_impostor(http, sizeof(http) - 1), AAM_E_PROTO);
	static const uint8_t tpm_error[] = {0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x01, 0x01};
	assert_int_equal(ping_impostor(tpm_error, sizeof(tpm_error)), AAM_E_PROTO);
	static const uint8_t huge_size[] = {0x80, 0x01, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0};
	assert_int_equal(ping_impostor(huge_size, sizeof(huge_size)), AAM_E_PROTO);
	static const uint8_t truncated[] = {0x80, 0x01, 0, 0, 0, 20, 0, 0, 0, 0, 0, 8};
	assert_int_equal(ping_impostor(truncated, sizeof(truncated)), AAM_E_CLOSED);
	assert_int_equal(ping_impostor(NULL, 0), AAM_E_CLOSED);
}

#if !HAVE_TSS2
static void
test_tss2_missing(void **state)
{
	(void)state;
	print_message("[  SKIP    ] tss2 headers not found (install libtss2-dev)\n");
	skip();
}
#endif

int
main(void)
{
	/*
	 * Some checks probe NV indices that do not exist on purpose; keep
	 * ESYS from logging those as errors.  TSS2_LOG set by a developer wins.
	 */
	setenv("TSS2_LOG", "esys+none", 0);
	const struct CMUnitTest tests[] = {
#if HAVE_TSS2
		cmocka_unit_test(test_start_answers_get_random),
		cmocka_unit_test(test_ek_certificates_chain_to_local_ca),
		cmocka_unit_test(test_two_tpms_are_independent),
#else
		cmocka_unit_test(test_tss2_missing),
#endif
		cmocka_unit_test(test_ping_refuses_a_non_tpm),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
