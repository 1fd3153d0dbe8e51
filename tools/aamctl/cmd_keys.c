/*
 * aamctl keys: the vault's AAM keys, through the admin socket.
 *
 *   aamctl keys init              generate the issuer, audit, secret-encryption
 *                                 and fingerprint keys on the token
 *   aamctl keys show              public keys: label, kid, PEM (current and previous)
 *   aamctl keys rotate issuer|audit
 *
 * Private keys never leave the token; this prints public keys only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "common/b64.h"
#include "common/buf.h"
#include "common/config.h"
#include "common/ipc.h"
#include "tools/aamctl/aamctl.h"
#include "vault/proto.h"

#define CALL_TIMEOUT_MS 60000

static const char keys_usage[] = "usage: aamctl keys init\n"
                                 "       aamctl keys show\n"
                                 "       aamctl keys rotate issuer|audit\n";

/* Connects to the vault's admin socket named in the configuration. */
static int
keys_connect(const struct aam_cli *cli, struct aam_ipc_client **out)
{
	struct aam_config cfg;
	char err[512];
	if (aam_config_load(cli->config_path, &cfg, err, sizeof(err)) != AAM_OK ||
	    aam_config_require(&cfg, "vault", err, sizeof(err)) != AAM_OK) {
		fprintf(stderr, "aamctl keys: %s\n", err);
		return AAMCTL_EXIT_FAIL;
	}
	int rc = aam_ipc_client_connect(cfg.vault.sockets.admin, 5000, out);
	if (rc != AAM_OK)
		fprintf(stderr, "aamctl keys: cannot reach the vault at %s: %s\n",
		        cfg.vault.sockets.admin, aam_strerror(rc));
	aam_config_uninit(&cfg);
	return rc == AAM_OK ? AAMCTL_EXIT_OK : AAMCTL_EXIT_FAIL;
}

/* Runs one call; on failure prints the vault's message. */
static int
keys_call(struct aam_ipc_client *c, uint16_t type, const struct aam_buf *req, struct aam_buf *reply)
{
	int rc = aam_ipc_call(c, type, req != NULL ? req->data : NULL, req != NULL ? req->len : 0,
	                      CALL_TIMEOUT_MS, NULL, reply);
	if (rc != AAM_OK) {
		const char *msg = reply->len > 0 ? aam_buf_cstr(reply) : aam_strerror(rc);
		fprintf(stderr, "aamctl keys: %s (%s)\n", msg, aam_err_code(rc));
	}
	return rc;
}

static void
print_pem(const uint8_t *der, size_t n)
{
	char b64[256];
	size_t len = 0;
	if (aam_b64_encode(der, n, b64, sizeof(b64), &len, AAM_B64_STD) != AAM_OK)
		return;
	printf("-----BEGIN PUBLIC KEY-----\n");
	for (size_t i = 0; i < len; i += 64)
		printf("%.*s\n", (int)(len - i < 64 ? len - i : 64), b64 + i);
	printf("-----END PUBLIC KEY-----\n");
}

static int
show_key(struct aam_ipc_client *c, uint8_t key, const char *label)
{
	struct aam_buf req, reply;
	aam_buf_init(&req, 16);
	aam_buf_init(&reply, AAM_IPC_MAX_PAYLOAD);
	aam_ipc_put_u8(&req, key);
	int rc = keys_call(c, AAM_IPC_PUBKEY, &req, &reply);
	if (rc == AAM_OK) {
		struct aam_ipc_reader r;
		aam_ipc_reader_init(&r, reply.data, reply.len);
		uint32_t n = 0;
		aam_ipc_get_u32(&r, &n);
		for (uint32_t i = 0; i < n && r.err == AAM_OK; i++) {
			char kid[VAULT_IPC_MAX_KID + 1];
			const uint8_t *point, *spki;
			size_t spki_len;
			vault_ipc_get_strbuf(&r, kid, sizeof(kid));
			aam_ipc_get_fixed(&r, 65, &point);
			aam_ipc_get_bytes(&r, 128, &spki, &spki_len);
			if (r.err != AAM_OK)
				break;
			printf("key: %s (%s)\nkid: %s\n", label, i == 0 ? "current" : "previous",
			       kid);
			print_pem(spki, spki_len);
			printf("\n");
		}
		if (aam_ipc_reader_end(&r) != AAM_OK) {
			fprintf(stderr, "aamctl keys: malformed answer from the vault\n");
			rc = AAM_E_PROTO;
		}
	}
	aam_buf_uninit(&req);
	aam_buf_uninit(&reply);
	return rc;
}

static int
keys_show(struct aam_ipc_client *c)
{
	int rc = show_key(c, VAULT_IPC_KEY_ISSUER, "aam-issuer");
	if (rc == AAM_OK)
		rc = show_key(c, VAULT_IPC_KEY_AUDIT, "aam-audit");
	return rc;
}

static int
keys_main(int argc, char **argv, const struct aam_cli *cli)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(keys_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? AAMCTL_EXIT_USAGE : AAMCTL_EXIT_OK;
	}
	const char *sub = argv[1];
	uint8_t key = 0;
	if (strcmp(sub, "init") == 0 || strcmp(sub, "show") == 0) {
		if (argc != 2) {
			fputs(keys_usage, stderr);
			return AAMCTL_EXIT_USAGE;
		}
	} else if (strcmp(sub, "rotate") == 0) {
		if (argc != 3 ||
		    (strcmp(argv[2], "issuer") != 0 && strcmp(argv[2], "audit") != 0)) {
			fputs(keys_usage, stderr);
			return AAMCTL_EXIT_USAGE;
		}
		key = strcmp(argv[2], "issuer") == 0 ? VAULT_IPC_KEY_ISSUER : VAULT_IPC_KEY_AUDIT;
	} else {
		fprintf(stderr, "aamctl keys: unknown subcommand '%s'\n", sub);
		fputs(keys_usage, stderr);
		return AAMCTL_EXIT_USAGE;
	}

	struct aam_ipc_client *c = NULL;
	int ex = keys_connect(cli, &c);
	if (ex != AAMCTL_EXIT_OK)
		return ex;
	struct aam_buf req, reply;
	aam_buf_init(&req, 16);
	aam_buf_init(&reply, AAM_IPC_MAX_PAYLOAD);
	int rc;
	if (strcmp(sub, "init") == 0) {
		rc = keys_call(c, VAULT_IPC_KEYS_INIT, NULL, &reply);
		if (rc == AAM_OK) {
			printf("keys created on the token\n\n");
			rc = keys_show(c);
		}
	} else if (strcmp(sub, "show") == 0) {
		rc = keys_show(c);
	} else {
		aam_ipc_put_u8(&req, key);
		rc = keys_call(c, VAULT_IPC_KEYS_ROTATE, &req, &reply);
		if (rc == AAM_OK) {
			struct aam_ipc_reader r;
			char kid[VAULT_IPC_MAX_KID + 1];
			aam_ipc_reader_init(&r, reply.data, reply.len);
			vault_ipc_get_strbuf(&r, kid, sizeof(kid));
			if (aam_ipc_reader_end(&r) == AAM_OK)
				printf("rotated aam-%s: new kid %s (the previous key stays "
				       "published)\n",
				       argv[2], kid);
			else
				rc = AAM_E_PROTO;
		}
	}
	aam_buf_uninit(&req);
	aam_buf_uninit(&reply);
	aam_ipc_client_free(c);
	return rc == AAM_OK ? AAMCTL_EXIT_OK : AAMCTL_EXIT_FAIL;
}

const struct aamctl_cmd aamctl_cmd_keys = {
        .name = "keys",
        .summary = "create, show and rotate the vault's keys",
        .run = keys_main,
};
