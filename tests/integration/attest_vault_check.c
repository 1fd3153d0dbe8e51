/*
 * aam-attest signing through aam-vault's IPC (SIGN, PUBKEY), against a
 * stand-in vault that speaks the real frames and payloads of
 * vault/proto.h with an OpenSSL key: tokens verify, a rotation in the
 * vault is followed, a vault that goes away and comes back is reconnected,
 * and a vault that refuses or lies is never trusted.  Then the aam-attest
 * daemon itself runs against it: config, listen, attest, SIGTERM.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "aam/err.h"
#include "attest/vault.h"
#include "common/ipc.h"
#include "common/jose.h"
#include "tests/lib/testutil.h"
#include "tests/unit/attest/attest_testutil.h"
#include "vault/proto.h"

/* ---- the stand-in vault --------------------------------------------------- */

struct fake {
	pthread_mutex_t mu;
	EVP_PKEY *keys[4]; /* keys[0] signs */
	size_t nkeys;
	bool refuse_sign;
	bool lie_kid; /* PUBKEY names keys with a kid that is not theirs */
	int signs;
	struct aam_ipc_server *srv;
	pthread_t th;
	char path[1024];
};

static int
fake_sign(struct fake *f, const uint8_t *p, size_t n, struct aam_ipc_replier *r)
{
	struct aam_ipc_reader rd;
	uint8_t key = 9;
	char *kid = NULL;
	const uint8_t *d = NULL;
	size_t dl = 0;
	aam_ipc_reader_init(&rd, p, n);
	aam_ipc_get_u8(&rd, &key);
	aam_ipc_get_str(&rd, VAULT_IPC_MAX_KID, &kid);
	aam_ipc_get_bytes(&rd, 64, &d, &dl);
	int ok = aam_ipc_reader_end(&rd) == AAM_OK && key == VAULT_IPC_KEY_ISSUER && dl == 32 &&
	         kid != NULL && kid[0] == '\0';
	free(kid);
	if (!ok)
		return aam_ipc_reply_error(r, AAM_E_PARSE, "bad SIGN payload");
	pthread_mutex_lock(&f->mu);
	f->signs++;
	if (f->refuse_sign) {
		pthread_mutex_unlock(&f->mu);
		return aam_ipc_reply_error(r, AAM_E_DENIED, "no");
	}
	uint8_t der[80], rs[64];
	size_t derl = sizeof(der);
	char k[64];
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(f->keys[0], NULL);
	EVP_PKEY_sign_init(c);
	int s = EVP_PKEY_sign(c, der, &derl, d, 32);
	EVP_PKEY_CTX_free(c);
	attest_kid_of(f->keys[0], k);
	pthread_mutex_unlock(&f->mu);
	if (s != 1 || aam_jose_ecdsa_der_to_rs(der, derl, rs) != AAM_OK)
		return aam_ipc_reply_error(r, AAM_E_CRYPTO, "sign");
	struct aam_buf b;
	aam_buf_init(&b, 256);
	aam_ipc_put_str(&b, k);
	aam_ipc_put_fixed(&b, rs, 64);
	int rc = aam_ipc_reply(r, b.data, b.len);
	aam_buf_uninit(&b);
	return rc;
}

static int
fake_pubkey(struct fake *f, struct aam_ipc_replier *r)
{
	struct aam_buf b;
	aam_buf_init(&b, 64 * 1024);
	pthread_mutex_lock(&f->mu);
	aam_ipc_put_u32(&b, (uint32_t)f->nkeys);
	for (size_t i = 0; i < f->nkeys; i++) {
		char kid[64];
		attest_kid_of(f->keys[f->lie_kid ? (i + 1) % f->nkeys : i], kid);
		uint8_t pt[65];
		size_t pl = 0;
		EVP_PKEY_get_octet_string_param(f->keys[i], "pub", pt, sizeof(pt), &pl);
		unsigned char *der = NULL;
		int dl = i2d_PUBKEY(f->keys[i], &der);
		aam_ipc_put_str(&b, kid);
		aam_ipc_put_fixed(&b, pt, 65);
		aam_ipc_put_bytes(&b, der, (size_t)dl);
		OPENSSL_free(der);
	}
	pthread_mutex_unlock(&f->mu);
	int rc = aam_ipc_reply(r, b.data, b.len);
	aam_buf_uninit(&b);
	return rc;
}

/*
 * AUDIT_APPEND as the real vault answers it (u64 seq) for attest.* events;
 * anything else is refused, so an event of the wrong shape fails the test.
 */
static int
fake_audit(const uint8_t *payload, size_t len, struct aam_ipc_replier *r)
{
	static _Atomic uint64_t seq;
	json_error_t je;
	json_t *ev = json_loadb((const char *)payload, len, 0, &je);
	const char *type = json_string_value(json_object_get(ev, "type"));
	bool ok = type != NULL && strncmp(type, "attest.", 7) == 0;
	json_decref(ev);
	if (!ok)
		return aam_ipc_reply_error(r, AAM_E_PARSE, "not an attest event");
	struct aam_buf b;
	aam_buf_init(&b, 0);
	aam_ipc_put_u64(&b, seq++);
	int rc = aam_ipc_reply(r, b.data, b.len);
	aam_buf_uninit(&b);
	return rc;
}

static int
fake_handle(void *ctx, const struct aam_ipc_peer *peer, const struct aam_ipc_hdr *req,
            const uint8_t *payload, struct aam_ipc_replier *r)
{
	(void)peer;
	struct fake *f = ctx;
	if (req->type == AAM_IPC_SIGN)
		return fake_sign(f, payload, req->len, r);
	if (req->type == AAM_IPC_PUBKEY)
		return fake_pubkey(f, r);
	if (req->type == AAM_IPC_AUDIT_APPEND)
		return fake_audit(payload, req->len, r);
	return aam_ipc_reply_error(r, AAM_E_UNSUPPORTED, "not here");
}

static void *
fake_run(void *arg)
{
	struct fake *f = arg;
	aam_ipc_server_run(f->srv);
	return NULL;
}

static void
fake_start(struct fake *f)
{
	int fd = -1;
	assert_int_equal(aam_ipc_listen(f->path, 0600, 16, &fd), AAM_OK);
	struct aam_ipc_server_config c = {.handle = fake_handle, .ctx = f};
	assert_int_equal(aam_ipc_server_new(&c, fd, &f->srv), AAM_OK);
	assert_int_equal(pthread_create(&f->th, NULL, fake_run, f), 0);
}

static void
fake_stop(struct fake *f)
{
	aam_ipc_server_stop(f->srv);
	pthread_join(f->th, NULL);
	aam_ipc_server_free(f->srv);
	f->srv = NULL;
	unlink(f->path);
}

struct fx {
	char *dir;
	struct fake fake;
	struct attest_vault *vault;
	struct attest_keysrc ks;
};

static int
setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));
	x->dir = aam_test_mkdtemp("aam-attest-vault");
	pthread_mutex_init(&x->fake.mu, NULL);
	snprintf(x->fake.path, sizeof(x->fake.path), "%s/vault-attest.sock", x->dir);
	x->fake.keys[0] = at_p256_new();
	x->fake.nkeys = 1;
	fake_start(&x->fake);
	if (attest_vault_new(x->fake.path, &x->vault) != AAM_OK ||
	    attest_vault_keysrc(x->vault, &x->ks) != AAM_OK)
		return -1;
	*state = x;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *x = *state;
	attest_vault_free(x->vault);
	if (x->fake.srv != NULL)
		fake_stop(&x->fake);
	for (size_t i = 0; i < 4; i++)
		EVP_PKEY_free(x->fake.keys[i]);
	pthread_mutex_destroy(&x->fake.mu);
	aam_test_rmtree(x->dir);
	free(x->dir);
	free(x);
	return 0;
}

static const char JKT[] = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

static int
issue(struct attest_issuer *is, struct attest_token *t)
{
	static struct attest_reg r;
	at_reg_init(&r, "spiffe://prod/agent/v", ATTEST_METHOD_PKCS11, "aud");
	struct attest_token_req tr = {.reg = &r,
	                              .audience = "aud",
	                              .jkt = JKT,
	                              .method = ATTEST_METHOD_PKCS11,
	                              .now = (int64_t)time(NULL),
	                              .ttl = 300};
	return attest_issuer_issue(is, &tr, t);
}

static void
test_sign_through_vault(void **state)
{
	struct fx *x = *state;
	struct attest_issuer *is = NULL;
	assert_int_equal(attest_issuer_new(&x->ks, AT_ISSUER, &is), AAM_OK);
	struct attest_token t;
	assert_int_equal(issue(is, &t), AAM_OK);
	json_t *hdr = NULL;
	assert_int_equal(
	        aam_jose_verify(t.token, strlen(t.token), x->fake.keys[0], &hdr, NULL, NULL),
	        AAM_OK);
	char kid[64];
	attest_kid_of(x->fake.keys[0], kid);
	assert_string_equal(json_string_value(json_object_get(hdr, "kid")), kid);
	json_decref(hdr);
	attest_token_uninit(&t);
	assert_int_equal(x->fake.signs, 1);

	/* The vault rotates: the next token carries the new kid, the JWKS both. */
	pthread_mutex_lock(&x->fake.mu);
	x->fake.keys[1] = x->fake.keys[0];
	x->fake.keys[0] = at_p256_new();
	x->fake.nkeys = 2;
	pthread_mutex_unlock(&x->fake.mu);
	assert_int_equal(issue(is, &t), AAM_OK);
	assert_int_equal(
	        aam_jose_verify(t.token, strlen(t.token), x->fake.keys[0], &hdr, NULL, NULL),
	        AAM_OK);
	char kid2[64];
	attest_kid_of(x->fake.keys[0], kid2);
	assert_string_equal(json_string_value(json_object_get(hdr, "kid")), kid2);
	json_decref(hdr);
	attest_token_uninit(&t);
	json_t *jwks = NULL;
	assert_int_equal(attest_issuer_jwks(is, &jwks), AAM_OK);
	json_t *keys = json_object_get(jwks, "keys");
	assert_int_equal(json_array_size(keys), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(keys, 0), "kid")),
	                    kid2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(keys, 1), "kid")),
	                    kid);
	json_decref(jwks);
	attest_issuer_free(is);
}

static void
test_vault_restart_and_refusal(void **state)
{
	struct fx *x = *state;
	struct attest_issuer *is = NULL;
	assert_int_equal(attest_issuer_new(&x->ks, AT_ISSUER, &is), AAM_OK);
	struct attest_token t;
	assert_int_equal(issue(is, &t), AAM_OK);
	attest_token_uninit(&t);
	/* Gone: the caller is told to retry later. */
	fake_stop(&x->fake);
	assert_int_equal(issue(is, &t), AAM_E_BUSY);
	assert_null(t.token);
	/* Back: reconnected on the next call. */
	fake_start(&x->fake);
	assert_int_equal(issue(is, &t), AAM_OK);
	attest_token_uninit(&t);
	/* Refusing to sign. */
	x->fake.refuse_sign = true;
	assert_int_equal(issue(is, &t), AAM_E_BUSY);
	x->fake.refuse_sign = false;
	attest_issuer_free(is);
}

/* A PUBKEY answer whose kids do not belong to their keys is rejected as a whole. */
static void
test_vault_lies(void **state)
{
	struct fx *x = *state;
	pthread_mutex_lock(&x->fake.mu);
	x->fake.keys[1] = at_p256_new();
	x->fake.nkeys = 2;
	x->fake.lie_kid = true;
	pthread_mutex_unlock(&x->fake.mu);
	struct aam_jwks set;
	aam_jwks_init(&set);
	assert_int_equal(attest_vault_pubkeys(x->vault, &set), AAM_E_PROTO);
	aam_jwks_uninit(&set);
	struct attest_issuer *is = NULL;
	assert_int_equal(attest_issuer_new(&x->ks, AT_ISSUER, &is), AAM_OK);
	struct attest_token t;
	assert_int_equal(issue(is, &t), AAM_E_BUSY);
	attest_issuer_free(is);
	x->fake.lie_kid = false;
}

/* ---- the daemon ------------------------------------------------------------- */

static long
http_get(uint16_t port, const char *path, struct at_resp *r)
{
	if (at_request(port, "GET", path, NULL, r) != 0)
		return -1;
	return r->status;
}

static void
test_daemon(void **state)
{
	struct fx *x = *state;
	const char *bdir = getenv("AAM_BUILD_DIR");
	if (bdir == NULL) {
		print_message("[  SKIP    ] AAM_BUILD_DIR not set\n");
		skip();
	}
	char bin[1024], cfgp[1200], db[1200], cfg[4096];
	snprintf(bin, sizeof(bin), "%s/attest/aam-attest", bdir);
	if (access(bin, X_OK) != 0) {
		print_message("[  SKIP    ] %s not built\n", bin);
		skip();
	}
	int port = aam_test_free_port();
	snprintf(db, sizeof(db), "%s/attest.db", x->dir);
	snprintf(cfgp, sizeof(cfgp), "%s/aam.yaml", x->dir);
	snprintf(cfg, sizeof(cfg),
	         "log:\n  level: info\n"
	         "attest:\n  listen: 127.0.0.1:%d\n  db: %s\n  issuer: %s\n  token_ttl: 2m\n"
	         "  trust_domain: prod\n  vault_socket: %s\n",
	         port, db, AT_ISSUER, x->fake.path);
	assert_int_equal(aam_test_write_file(cfgp, cfg, strlen(cfg), 0600), 0);

	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execl(bin, bin, "-c", cfgp, (char *)NULL);
		_exit(127);
	}
	struct at_resp r;
	long st = -1;
	for (int i = 0; i < 100 && st != 200; i++) {
		usleep(50 * 1000);
		st = http_get((uint16_t)port, "/healthz", &r);
		at_resp_free(&r);
	}
	assert_int_equal(st, 200);
	assert_int_equal(http_get((uint16_t)port, "/.well-known/jwks.json", &r), 200);
	char kid[64];
	attest_kid_of(x->fake.keys[0], kid);
	assert_string_equal(json_string_value(json_object_get(
	                            json_array_get(json_object_get(r.json, "keys"), 0), "kid")),
	                    kid);
	at_resp_free(&r);

	/* Register (as aamctl would, in the database) and attest through the daemon. */
	struct aam_db *dbh = NULL;
	assert_int_equal(attest_registry_open(db, false, &dbh), AAM_OK);
	EVP_PKEY *k = at_p256_new();
	struct aam_jwk jwk;
	assert_int_equal(aam_jwk_from_pkey(k, NULL, &jwk), AAM_OK);
	struct attest_reg *reg = calloc(1, sizeof(*reg));
	const char *id = "spiffe://prod/agent/daemon";
	at_reg_init(reg, id, ATTEST_METHOD_PKCS11, "aud");
	memcpy(reg->key_jkt, jwk.jkt, sizeof(reg->key_jkt));
	reg->token_ttl = 120;
	assert_int_equal(attest_reg_insert(dbh, reg), AAM_OK);
	free(reg);
	json_t *b = json_pack("{s:s,s:s}", "method", "pkcs11", "spiffe_id", id);
	assert_int_equal(at_request((uint16_t)port, "POST", "/v1/attest/challenge", b, &r), 0);
	json_decref(b);
	char *nonce = strdup(json_string_value(json_object_get(r.json, "nonce")));
	at_resp_free(&r);
	char msg[512];
	int n = snprintf(msg, sizeof(msg), "aam-attest-pkcs11\n%s\n%s\naud", nonce, id);
	uint8_t rs[64];
	at_es256(k, msg, (size_t)n, rs);
	char *sig = at_b64(rs, 64);
	json_t *jj = NULL;
	aam_jwk_to_json(&jwk, AAM_JWK_PUBLIC, &jj);
	b = json_pack("{s:s,s:s,s:s,s:o,s:s}", "spiffe_id", id, "audience", "aud", "nonce", nonce,
	              "jwk", jj, "signature", sig);
	assert_int_equal(at_request((uint16_t)port, "POST", "/v1/attest/pkcs11", b, &r), 0);
	json_decref(b);
	assert_int_equal(r.status, 200);
	assert_int_equal(json_integer_value(json_object_get(r.json, "expires_in")), 120);
	const char *tok = json_string_value(json_object_get(r.json, "token"));
	assert_int_equal(aam_jose_verify(tok, strlen(tok), x->fake.keys[0], NULL, NULL, NULL),
	                 AAM_OK);
	at_resp_free(&r);
	free(sig);
	free(nonce);

	kill(pid, SIGTERM);
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	aam_jwk_uninit(&jwk);
	EVP_PKEY_free(k);
	aam_db_close(dbh);
}

/* A configuration the daemon must refuse, with a message and exit 1. */
static void
test_daemon_bad_config(void **state)
{
	struct fx *x = *state;
	const char *bdir = getenv("AAM_BUILD_DIR");
	if (bdir == NULL)
		skip();
	char cmd[4096];
	snprintf(cmd, sizeof(cmd),
	         "printf 'attest:\\n  issuer: https://x\\n  trust_domain: BAD\\n' > %s/bad.yaml && "
	         "%s/attest/aam-attest -c %s/bad.yaml 2>%s/err.txt",
	         x->dir, bdir, x->dir, x->dir);
	int rc = system(cmd);
	assert_true(WIFEXITED(rc));
	assert_int_equal(WEXITSTATUS(rc), 1);
	char p[1200];
	snprintf(p, sizeof(p), "%s/err.txt", x->dir);
	char *err = aam_test_read_file(p, NULL);
	assert_non_null(err);
	assert_non_null(strstr(err, "attest.trust_domain"));
	free(err);
}

int
main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_sign_through_vault, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_vault_restart_and_refusal, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_vault_lies, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_daemon, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_daemon_bad_config, setup, teardown),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
