/*
 * aam-vault's IPC service end to end: a real daemon on temporary sockets
 * with a SoftHSM2 token.  The permission table by role, by state (nothing
 * but KEYS_INIT before keys exist) and by peer uid, reloaded on SIGHUP;
 * SIGN with exact digest sizes and signatures that verify; hostile
 * frames (garbage, truncated, oversized, malformed payloads); aamctl keys
 * and secret commands; a clean SIGTERM; restart keeps keys and secrets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "aam/err.h"
#include "tests/integration/vault_harness.h"
#include "tests/lib/testutil.h"
#include "vault/proto.h"

static struct vh *V;

/* Asserts that HAY contains NEEDLE, showing HAY when it does not. */
#define assert_has(hay, needle)                                                                    \
	do {                                                                                       \
		const char *h_ = (hay);                                                            \
		if (h_ == NULL || strstr(h_, (needle)) == NULL)                                    \
			fail_msg("'%s' not in: %s", (needle), h_ != NULL ? h_ : "(null)");         \
	} while (0)

static int
setup(void **state)
{
	(void)state;
	if (!aam_test_softhsm_available())
		return 0;
	V = calloc(1, sizeof(*V));
	if (V == NULL || vh_setup(V, NULL) != 0 || vh_start(V) != 0)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	if (V == NULL)
		return 0;
	vh_teardown(V);
	free(V);
	V = NULL;
	return 0;
}

/* One call on a fresh connection to SOCK; returns the vault's code. */
static int
call(const char *sock, uint16_t type, const struct aam_buf *req, struct aam_buf *reply)
{
	struct aam_ipc_client *c = vh_connect(sock);
	assert_non_null(c);
	int rc = aam_ipc_call(c, type, req != NULL ? req->data : NULL, req != NULL ? req->len : 0,
	                      30000, NULL, reply);
	aam_ipc_client_free(c);
	return rc;
}

static int
sign(const char *sock, uint8_t key, const char *kid, const uint8_t *digest, size_t dlen,
     struct aam_buf *reply)
{
	struct aam_buf req;
	aam_buf_init(&req, 0);
	aam_ipc_put_u8(&req, key);
	aam_ipc_put_str(&req, kid);
	aam_ipc_put_bytes(&req, digest, dlen);
	int rc = call(sock, AAM_IPC_SIGN, &req, reply);
	aam_buf_uninit(&req);
	return rc;
}

static void
test_before_keys_only_init(void **state)
{
	AAM_TEST_SOFTHSM_REQUIRE();
	(void)state;
	uint8_t d[32] = {1};
	struct aam_buf reply;
	aam_buf_init(&reply, 0);
	assert_int_equal(sign(V->sock_at, 0, "", d, 32, &reply), AAM_E_PERM);
	assert_has(aam_buf_cstr(&reply), "no keys yet");
	aam_buf_reset(&reply);
	assert_int_equal(call(V->sock_admin, VAULT_IPC_SECRET_LIST, NULL, &reply), AAM_E_PERM);
	aam_buf_reset(&reply);
	/* KEYS_INIT is the admin's alone, even now. */
	assert_int_equal(call(V->sock_gw, VAULT_IPC_KEYS_INIT, NULL, &reply), AAM_E_PERM);
	aam_buf_reset(&reply);
	assert_int_equal(call(V->sock_at, VAULT_IPC_KEYS_INIT, NULL, &reply), AAM_E_PERM);
	aam_buf_uninit(&reply);
	char *out = NULL, *err = NULL;
	assert_int_equal(vh_aamctl(V, NULL, &out, &err, "keys", "show", NULL), 1);
	assert_has(err, "no keys yet");
	free(out);
	free(err);
}

static void
test_keys_init_and_show(void **state)
{
	AAM_TEST_SOFTHSM_REQUIRE();
	(void)state;
	char *out = NULL, *err = NULL;
	assert_int_equal(vh_aamctl(V, NULL, &out, &err, "keys", "init", NULL), 0);
	assert_has(out, "key: aam-issuer (current)");
	assert_has(out, "key: aam-audit (current)");
	assert_has(out, "-----BEGIN PUBLIC KEY-----");
	free(out);
	free(err);
	assert_int_equal(vh_aamctl(V, NULL, &out, &err, "keys", "init", NULL), 1);
	assert_has(err, "already exist");
	free(out);
	free(err);
	assert_int_equal(vh_aamctl(V, NULL, &out, &err, "keys", "rotate", "nonsense", NULL), 2);
	free(out);
	free(err);
}

/* The current key's SPKI (as POINT: DER, at most 91 bytes) and kid, through PUBKEY on SOCK. */
static void
pubkey(const char *sock, uint8_t key, uint8_t point[96], char kid[64], uint32_t *n)
{
	struct aam_buf req, reply;
	aam_buf_init(&req, 0);
	aam_buf_init(&reply, 0);
	aam_ipc_put_u8(&req, key);
	assert_int_equal(call(sock, AAM_IPC_PUBKEY, &req, &reply), AAM_OK);
	struct aam_ipc_reader r;
	aam_ipc_reader_init(&r, reply.data, reply.len);
	const uint8_t *pt, *spki;
	size_t sl;
	aam_ipc_get_u32(&r, n);
	assert_true(*n >= 1);
	vault_ipc_get_strbuf(&r, kid, 64);
	aam_ipc_get_fixed(&r, 65, &pt);
	aam_ipc_get_bytes(&r, 200, &spki, &sl);
	assert_int_equal(r.err, AAM_OK);
	assert_int_equal(pt[0], 0x04);
	assert_true(sl <= 96);
	memset(point, 0, 96);
	memcpy(point, spki, sl);
	aam_buf_uninit(&req);
	aam_buf_uninit(&reply);
}

static bool
verifies(const uint8_t spki[96], const uint8_t digest[32], const uint8_t sig[64])
{
	const uint8_t *p = spki;
	EVP_PKEY *k = d2i_PUBKEY(NULL, &p, 96);
	ECDSA_SIG *s = ECDSA_SIG_new();
	ECDSA_SIG_set0(s, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL));
	uint8_t *der = NULL;
	int dl = i2d_ECDSA_SIG(s, &der);
	EVP_PKEY_CTX *ctx = k != NULL ? EVP_PKEY_CTX_new(k, NULL) : NULL;
	bool ok = ctx != NULL && dl > 0 && EVP_PKEY_verify_init(ctx) == 1 &&
	          EVP_PKEY_verify(ctx, der, (size_t)dl, digest, 32) == 1;
	EVP_PKEY_CTX_free(ctx);
	OPENSSL_free(der);
	ECDSA_SIG_free(s);
	EVP_PKEY_free(k);
	return ok;
}

static void
test_sign(void **state)
{
	AAM_TEST_SOFTHSM_REQUIRE();
	(void)state;
	uint8_t point[96];
	char kid[64];
	uint32_t n;
	pubkey(V->sock_at, VAULT_IPC_KEY_ISSUER, point, kid, &n);
	uint8_t digest[33];
	SHA256((const uint8_t *)"header.payload", 14, digest);
	struct aam_buf reply;
	aam_buf_init(&reply, 0);
	for (int i = 0; i < 5; i++) {
		aam_buf_reset(&reply);
		digest[0] = (uint8_t)i;
		assert_int_equal(sign(V->sock_at, VAULT_IPC_KEY_ISSUER, "", digest, 32, &reply),
		                 AAM_OK);
		struct aam_ipc_reader r;
		aam_ipc_reader_init(&r, reply.data, reply.len);
		char got[64];
		const uint8_t *sig;
		vault_ipc_get_strbuf(&r, got, sizeof(got));
		aam_ipc_get_fixed(&r, 64, &sig);
		assert_int_equal(aam_ipc_reader_end(&r), AAM_OK);
		assert_string_equal(got, kid);
		assert_true(verifies(point, digest, sig));
	}
	/* Naming the current kid works; any other kid does not. */
	aam_buf_reset(&reply);
	assert_int_equal(sign(V->sock_at, VAULT_IPC_KEY_ISSUER, kid, digest, 32, &reply), AAM_OK);
	aam_buf_reset(&reply);
	assert_int_equal(sign(V->sock_at, VAULT_IPC_KEY_ISSUER, "AAAA", digest, 32, &reply),
	                 AAM_E_NOTFOUND);
	/* Only 32-byte digests. */
	size_t sizes[] = {0, 20, 31, 33, 48, 64};
	uint8_t big[64] = {0};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		aam_buf_reset(&reply);
		int rc = sign(V->sock_at, VAULT_IPC_KEY_ISSUER, "", big, sizes[i], &reply);
		assert_true(rc == AAM_E_INVAL);
	}
	/* The attest role signs with the issuer key only; others never sign. */
	aam_buf_reset(&reply);
	assert_int_equal(sign(V->sock_at, VAULT_IPC_KEY_AUDIT, "", digest, 32, &reply), AAM_E_PERM);
	aam_buf_reset(&reply);
	assert_int_equal(sign(V->sock_admin, VAULT_IPC_KEY_ISSUER, "", digest, 32, &reply),
	                 AAM_E_PERM);
	aam_buf_reset(&reply);
	assert_int_equal(sign(V->sock_gw, VAULT_IPC_KEY_ISSUER, "", digest, 32, &reply),
	                 AAM_E_PERM);
	/* Unknown key selector and trailing bytes: malformed. */
	aam_buf_reset(&reply);
	assert_int_equal(sign(V->sock_at, 7, "", digest, 32, &reply), AAM_E_PARSE);
	struct aam_buf req;
	aam_buf_init(&req, 0);
	aam_ipc_put_u8(&req, 0);
	aam_ipc_put_str(&req, "");
	aam_ipc_put_bytes(&req, digest, 32);
	aam_ipc_put_u8(&req, 0);
	aam_buf_reset(&reply);
	assert_int_equal(call(V->sock_at, AAM_IPC_SIGN, &req, &reply), AAM_E_PARSE);
	/* AUDIT_APPEND with a payload that is not an event: answered with a parse error, not
	 * dropped. */
	aam_buf_reset(&reply);
	assert_int_equal(call(V->sock_gw, AAM_IPC_AUDIT_APPEND, &req, &reply), AAM_E_PARSE);
	/* Unknown types in the admin range are refused. */
	aam_buf_reset(&reply);
	assert_int_equal(call(V->sock_admin, 0x04F0, NULL, &reply), AAM_E_PERM);
	aam_buf_uninit(&req);
	aam_buf_uninit(&reply);
}

/* A raw connection for hostile frames. */
static int
raw_connect(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	assert_true(strlen(path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Reads until EOF (3 s at most); returns bytes read, and the first error frame's code. */
static size_t
drain(int fd, int *code)
{
	uint8_t buf[4096], scratch[4096];
	size_t total = 0;
	*code = 0;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 3000) <= 0)
			break;
		uint8_t *dst = total < sizeof(buf) ? buf + total : scratch;
		size_t room = total < sizeof(buf) ? sizeof(buf) - total : sizeof(scratch);
		ssize_t n = read(fd, dst, room);
		if (n <= 0)
			break;
		total += (size_t)n;
	}
	if (total >= AAM_IPC_HDR_LEN) {
		struct aam_ipc_hdr h;
		if (aam_ipc_hdr_decode(buf, &h) == AAM_OK && (h.flags & AAM_IPC_F_ERROR) &&
		    total >= AAM_IPC_HDR_LEN + h.len)
			aam_ipc_error_decode(buf + AAM_IPC_HDR_LEN, h.len, code, NULL, 0);
	}
	return total;
}

static bool
alive(void)
{
	struct aam_ipc_client *c = vh_connect(V->sock_at);
	if (c == NULL)
		return false;
	bool ok = aam_ipc_call(c, AAM_IPC_PING, "p", 1, 5000, NULL, NULL) == AAM_OK;
	aam_ipc_client_free(c);
	return ok;
}

static void
test_hostile_frames(void **state)
{
	AAM_TEST_SOFTHSM_REQUIRE();
	(void)state;
	int code;
	/* Garbage: answered with an error, then dropped. */
	int fd = raw_connect(V->sock_at);
	const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	assert_int_equal(write(fd, junk, sizeof(junk) - 1), (ssize_t)(sizeof(junk) - 1));
	assert_true(drain(fd, &code) > 0);
	assert_int_equal(code, AAM_E_PARSE);
	close(fd);
	assert_true(alive());

	/* Oversized: a header announcing more than the maximum payload. */
	uint8_t hdr[AAM_IPC_HDR_LEN];
	struct aam_ipc_hdr h = {.type = AAM_IPC_SIGN, .id = 9, .len = 0};
	assert_int_equal(aam_ipc_hdr_encode(&h, hdr), AAM_OK);
	uint32_t big = AAM_IPC_MAX_PAYLOAD + 1;
	hdr[16] = (uint8_t)(big >> 24);
	hdr[17] = (uint8_t)(big >> 16);
	hdr[18] = (uint8_t)(big >> 8);
	hdr[19] = (uint8_t)big;
	fd = raw_connect(V->sock_admin);
	assert_int_equal(write(fd, hdr, sizeof(hdr)), (ssize_t)sizeof(hdr));
	drain(fd, &code);
	assert_int_equal(code, AAM_E_TOOBIG);
	close(fd);
	assert_true(alive());

	/* Truncated: half a frame, then the peer goes away. */
	h.len = 100;
	assert_int_equal(aam_ipc_hdr_encode(&h, hdr), AAM_OK);
	fd = raw_connect(V->sock_at);
	assert_int_equal(write(fd, hdr, sizeof(hdr)), (ssize_t)sizeof(hdr));
	assert_int_equal(write(fd, "0123456789", 10), 10);
	close(fd);
	/* Truncated header only. */
	fd = raw_connect(V->sock_gw);
	assert_int_equal(write(fd, hdr, 7), 7);
	shutdown(fd, SHUT_WR);
	drain(fd, &code);
	close(fd);
	assert_true(alive());

	/* A malformed payload is an error reply; the connection stays usable. */
	struct aam_ipc_client *c = vh_connect(V->sock_admin);
	struct aam_buf reply;
	aam_buf_init(&reply, 0);
	assert_int_equal(aam_ipc_call(c, VAULT_IPC_SECRET_SHOW,
	                              "\x00\x00\x00\x09"
	                              "ab",
	                              6, 5000, NULL, &reply),
	                 AAM_E_PARSE);
	aam_buf_reset(&reply);
	assert_int_equal(aam_ipc_call(c, VAULT_IPC_KEYS_INIT, "x", 1, 5000, NULL, &reply),
	                 AAM_E_PARSE);
	aam_buf_reset(&reply);
	assert_int_equal(
	        aam_ipc_call(c, VAULT_IPC_SECRET_PUT, "\xff\xff\xff\xff", 4, 5000, NULL, &reply),
	        AAM_E_PARSE);
	assert_int_equal(aam_ipc_call(c, AAM_IPC_PING, "ok", 2, 5000, NULL, NULL), AAM_OK);
	/* Only INJECT may span frames: a streamed SIGN is refused, and answered. */
	struct aam_ipc_req *q;
	assert_int_equal(aam_ipc_req_open(c, &q), AAM_OK);
	assert_int_equal(aam_ipc_req_send(q, AAM_IPC_PUBKEY, AAM_IPC_F_MORE, "\x00", 1, 5000),
	                 AAM_OK);
	struct aam_ipc_hdr rh;
	aam_buf_reset(&reply);
	assert_int_equal(aam_ipc_req_recv(q, 5000, &rh, &reply), AAM_OK);
	assert_true(rh.flags & AAM_IPC_F_ERROR);
	aam_ipc_req_close(q);
	/* An INJECT continuation with the wrong type is answered too (on the gateway). */
	aam_buf_uninit(&reply);
	aam_ipc_client_free(c);
	assert_true(alive());
}

static void
test_secret_commands(void **state)
{
	AAM_TEST_SOFTHSM_REQUIRE();
	(void)state;
	char *out = NULL, *err = NULL;
	/* Bad bindings and missing options are refused with a reason. */
	assert_int_equal(vh_aamctl(V, "v\n", &out, &err, "secret", "put", "bad", "--type", "bearer",
	                           "--bind", "ftp://x/", NULL),
	                 1);
	assert_has(err, "binding");
	free(out);
	free(err);
	assert_int_equal(vh_aamctl(V, "v\n", &out, &err, "secret", "put", "bad", "--type", "header",
	                           "--bind", "https://api.example.com/", NULL),
	                 1);
	free(out);
	free(err);
	assert_int_equal(vh_aamctl(V, "", &out, &err, "secret", "put", "empty", "--type", "bearer",
	                           "--bind", "https://api.example.com/", NULL),
	                 1);
	assert_has(err, "no value");
	free(out);
	free(err);
	assert_int_equal(vh_aamctl(V, "x\n", &out, &err, "secret", "put", "nobind", "--type",
	                           "bearer", NULL),
	                 2);
	free(out);
	free(err);

	assert_int_equal(vh_aamctl(V, "first-Value-ABC\n", &out, &err, "secret", "put", "svc",
	                           "--type", "bearer", "--bind",
	                           "https://api.example.com/v1,https://api.example.com/v2", NULL),
	                 0);
	assert_has(out, "version:     1");
	free(out);
	free(err);
	assert_int_equal(vh_aamctl(V, "again\n", &out, &err, "secret", "put", "svc", "--type",
	                           "bearer", "--bind", "https://api.example.com/v1", NULL),
	                 1);
	assert_has(err, "exists");
	free(out);
	free(err);
	assert_int_equal(
	        vh_aamctl(V, "second-Value-DEF\r\n", &out, &err, "secret", "rotate", "svc", NULL),
	        0);
	assert_has(out, "version:     2");
	free(out);
	free(err);
	assert_int_equal(vh_aamctl(V, NULL, &out, &err, "secret", "show", "svc", NULL), 0);
	assert_has(out, "versions:    2 kept");
	assert_has(out, "binding:     https://api.example.com/v2");
	free(out);
	free(err);
	assert_int_equal(vh_aamctl(V, NULL, &out, &err, "secret", "prune", "svc", NULL), 0);
	free(out);
	free(err);
	assert_int_equal(vh_aamctl(V, NULL, &out, &err, "secret", "show", "svc", NULL), 0);
	assert_has(out, "versions:    1 kept");
	free(out);
	free(err);
	assert_int_equal(vh_aamctl(V, "gone-Value\n", &out, &err, "secret", "put", "tmp", "--type",
	                           "header", "--header", "x-api-key", "--bind",
	                           "https://api.example.com/", NULL),
	                 0);
	free(out);
	free(err);
	assert_int_equal(vh_aamctl(V, NULL, &out, &err, "secret", "delete", "tmp", NULL), 0);
	free(out);
	free(err);
	assert_int_equal(vh_aamctl(V, NULL, &out, &err, "secret", "show", "tmp", NULL), 1);
	assert_has(err, "no such secret");
	free(out);
	free(err);
	assert_int_equal(vh_aamctl(V, NULL, &out, &err, "secret", "list", NULL), 0);
	assert_has(out, "svc");
	assert_null(strstr(out, "tmp "));
	assert_null(strstr(out, "Value"));
	free(out);
	free(err);
}

static void
test_restart_keeps_state(void **state)
{
	AAM_TEST_SOFTHSM_REQUIRE();
	(void)state;
	uint8_t point[96];
	char kid[64], kid2[64];
	uint32_t n;
	char *out = NULL, *err = NULL;
	assert_int_equal(vh_aamctl(V, NULL, &out, &err, "keys", "rotate", "issuer", NULL), 0);
	free(out);
	free(err);
	pubkey(V->sock_admin, VAULT_IPC_KEY_ISSUER, point, kid, &n);
	assert_int_equal(n, 2); /* the previous key stays published */

	/* SIGTERM: a clean exit (sanitizers included) that removes the sockets. */
	assert_int_equal(vh_stop(V), 0);
	struct stat st;
	assert_int_not_equal(stat(V->sock_gw, &st), 0);
	assert_int_equal(vh_start(V), 0);

	pubkey(V->sock_admin, VAULT_IPC_KEY_ISSUER, point, kid2, &n);
	assert_string_equal(kid, kid2);
	assert_int_equal(n, 2);
	uint8_t digest[32] = {42};
	struct aam_buf reply;
	aam_buf_init(&reply, 0);
	assert_int_equal(sign(V->sock_at, VAULT_IPC_KEY_ISSUER, kid, digest, 32, &reply), AAM_OK);
	assert_true(verifies(point, digest, reply.data + reply.len - 64));
	aam_buf_uninit(&reply);
	assert_int_equal(vh_aamctl(V, NULL, &out, &err, "secret", "show", "svc", NULL), 0);
	assert_has(out, "version:     2");
	free(out);
	free(err);
}

static void
test_peer_uid_and_sighup(void **state)
{
	AAM_TEST_SOFTHSM_REQUIRE();
	(void)state;
	unsigned me = (unsigned)getuid();
	char extra[512];
	/* Attest: another uid only.  Admin: no SECRET_DELETE. */
	snprintf(extra, sizeof(extra),
	         "  access:\n"
	         "    attest:\n      uids: [\"%u\"]\n"
	         "    admin:\n      mode: \"0600\"\n"
	         "      ops: [KEYS_INIT, KEYS_ROTATE, SECRET_PUT, SECRET_ROTATE, SECRET_LIST,\n"
	         "            SECRET_SHOW, SECRET_PRUNE, PUBKEY]\n",
	         me + 1);
	assert_int_equal(vh_write_config(V, extra), 0);
	assert_int_equal(kill(V->pid, SIGHUP), 0);
	uint8_t digest[32] = {7};
	struct aam_buf reply;
	aam_buf_init(&reply, 0);
	/* The reload is asynchronous: wait for it to take effect. */
	int rc = AAM_OK;
	for (int i = 0; i < 100 && rc != AAM_E_PERM; i++) {
		aam_buf_reset(&reply);
		struct aam_ipc_client *c = NULL;
		if (aam_ipc_client_connect(V->sock_at, 2000, &c) != AAM_OK) {
			rc = AAM_E_PERM; /* refused at accept */
			break;
		}
		struct aam_buf req;
		aam_buf_init(&req, 0);
		aam_ipc_put_u8(&req, 0);
		aam_ipc_put_str(&req, "");
		aam_ipc_put_bytes(&req, digest, 32);
		rc = aam_ipc_call(c, AAM_IPC_SIGN, req.data, req.len, 5000, NULL, &reply);
		aam_buf_uninit(&req);
		aam_ipc_client_free(c);
		if (rc != AAM_E_PERM)
			usleep(50000);
	}
	assert_true(rc != AAM_OK);
	char *out = NULL, *err = NULL;
	assert_int_equal(vh_aamctl(V, NULL, &out, &err, "secret", "delete", "svc", NULL), 1);
	assert_has(err, "SECRET_DELETE");
	free(out);
	free(err);
	/* The refusals were logged. */
	char *log = aam_test_read_file(V->log, NULL);
	assert_has(log, "event=vault.reload");
	assert_has(log, "event=vault.request_refused");
	free(log);

	/* A bad reload keeps the current table. */
	assert_int_equal(vh_write_config(V, "  access:\n    gateway:\n      ops: [SIGN_ISSUER]\n"),
	                 0);
	assert_int_equal(kill(V->pid, SIGHUP), 0);
	bool logged = false;
	for (int i = 0; i < 100 && !logged; i++) {
		log = aam_test_read_file(V->log, NULL);
		logged = strstr(log, "event=vault.reload_failed") != NULL;
		free(log);
		if (!logged)
			usleep(50000);
	}
	assert_true(logged);
	assert_int_equal(vh_aamctl(V, NULL, &out, &err, "secret", "delete", "svc", NULL), 1);
	free(out);
	free(err);

	/* Back to an open table: our uid may sign again. */
	assert_int_equal(vh_write_config(V, NULL), 0);
	assert_int_equal(kill(V->pid, SIGHUP), 0);
	rc = AAM_E_PERM;
	for (int i = 0; i < 100 && rc != AAM_OK; i++) {
		aam_buf_reset(&reply);
		rc = sign(V->sock_at, 0, "", digest, 32, &reply);
		if (rc != AAM_OK)
			usleep(50000);
	}
	assert_int_equal(rc, AAM_OK);
	assert_int_equal(vh_aamctl(V, NULL, &out, &err, "secret", "delete", "svc", NULL), 0);
	free(out);
	free(err);
	aam_buf_uninit(&reply);
}

static void
test_socket_modes(void **state)
{
	AAM_TEST_SOFTHSM_REQUIRE();
	(void)state;
	struct stat st;
	assert_int_equal(stat(V->sock_admin, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(V->sock_gw, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0660);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_before_keys_only_init),
	        cmocka_unit_test(test_keys_init_and_show),
	        cmocka_unit_test(test_sign),
	        cmocka_unit_test(test_hostile_frames),
	        cmocka_unit_test(test_secret_commands),
	        cmocka_unit_test(test_restart_keeps_state),
	        cmocka_unit_test(test_peer_uid_and_sighup),
	        cmocka_unit_test(test_socket_modes),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
