/*
 * The vault side of `aamctl import litellm`: each provider key named by
 * the LiteLLM file (os.environ/NAME, or a literal) goes to aam-vault with
 * SECRET_PUT, bound to its deployment's api_base.  The value is read from
 * the environment straight into the request buffer, which is wiped; it is
 * never printed, logged or written to a file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "common/buf.h"
#include "common/config.h"
#include "common/ipc.h"
#include "tools/aamctl/cmd_import.h"
#include "vault/proto.h"

#define CALL_TIMEOUT_MS 60000

static int
connect_vault(const struct aam_cli *cli, struct aam_ipc_client **out)
{
	struct aam_config cfg;
	char err[512];
	if (aam_config_load(cli->config_path, &cfg, err, sizeof(err)) != AAM_OK ||
	    aam_config_require(&cfg, "vault", err, sizeof(err)) != AAM_OK) {
		fprintf(stderr, "aamctl import: %s (use --no-secrets to import without a vault)\n",
		        err);
		return AAM_E_CONFIG;
	}
	int rc = aam_ipc_client_connect(cfg.vault.sockets.admin, 5000, out);
	if (rc != AAM_OK)
		fprintf(stderr, "aamctl import: cannot reach the vault at %s: %s\n",
		        cfg.vault.sockets.admin, aam_strerror(rc));
	aam_config_uninit(&cfg);
	return rc;
}

static int
call(struct aam_ipc_client *c, uint16_t type, const struct aam_buf *req, struct aam_buf *reply)
{
	aam_buf_reset(reply);
	return aam_ipc_call(c, type, req->data, req->len, CALL_TIMEOUT_MS, NULL, reply);
}

/* Whether the existing secret NAME has the same type and binding. */
static bool
same_secret(struct aam_ipc_client *c, const struct vault_ipc_meta *want)
{
	struct aam_buf req, reply;
	aam_buf_init(&req, 1024);
	aam_buf_init(&reply, AAM_IPC_MAX_PAYLOAD);
	aam_ipc_put_str(&req, want->name);
	bool same = false;
	struct vault_ipc_meta *m = calloc(1, sizeof(*m));
	if (m != NULL && req.err == AAM_OK &&
	    call(c, VAULT_IPC_SECRET_SHOW, &req, &reply) == AAM_OK) {
		struct aam_ipc_reader r;
		aam_ipc_reader_init(&r, reply.data, reply.len);
		if (vault_ipc_meta_decode(&r, m) == AAM_OK) {
			size_t bl = strlen(want->bindings[0]);
			/* The vault stores an origin-only binding as "<origin>/". */
			same = strcmp(m->type, want->type) == 0 && m->nbindings == 1 &&
			       strncmp(m->bindings[0], want->bindings[0], bl) == 0 &&
			       (m->bindings[0][bl] == '\0' ||
			        strcmp(m->bindings[0] + bl, "/") == 0);
		}
	}
	free(m);
	aam_buf_uninit(&req);
	aam_buf_uninit(&reply);
	return same;
}

static int
store_one(struct aam_ipc_client *c, const struct import_cred *cr, FILE *msgs)
{
	const char *value = cr->literal != NULL ? cr->literal : getenv(cr->env);
	if (value == NULL || *value == '\0') {
		fprintf(stderr, "aamctl import: secret %s: environment variable %s is not set\n",
		        cr->name, cr->env);
		return AAM_E_NOTFOUND;
	}
	struct vault_ipc_meta *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return AAM_E_NOMEM;
	snprintf(m->name, sizeof(m->name), "%s", cr->name);
	snprintf(m->type, sizeof(m->type), "%s", cr->type);
	snprintf(m->header, sizeof(m->header), "%s", cr->header);
	snprintf(m->bindings[0], sizeof(m->bindings[0]), "%s", cr->binding);
	m->nbindings = 1;
	if (strcmp(cr->type, "aws-sigv4") == 0) {
		const char *id =
		        cr->aws_id_literal != NULL ? cr->aws_id_literal : getenv(cr->aws_id_env);
		if (id == NULL || *id == '\0') {
			fprintf(stderr,
			        "aamctl import: secret %s: environment variable %s (the AWS access "
			        "key "
			        "id) is not set\n",
			        cr->name, cr->aws_id_env);
			free(m);
			return AAM_E_NOTFOUND;
		}
		snprintf(m->aws_access_key_id, sizeof(m->aws_access_key_id), "%s", id);
		snprintf(m->aws_region, sizeof(m->aws_region), "%s", cr->aws_region);
		snprintf(m->aws_service, sizeof(m->aws_service), "bedrock");
	}
	struct aam_buf req, reply;
	aam_buf_init(&req, AAM_IPC_MAX_PAYLOAD);
	aam_buf_init(&reply, AAM_IPC_MAX_PAYLOAD);
	vault_ipc_meta_encode(&req, m);
	aam_ipc_put_bytes(&req, value, strlen(value));
	int rc = req.err != AAM_OK ? req.err : call(c, VAULT_IPC_SECRET_PUT, &req, &reply);
	const char *what = "stored";
	if (rc == AAM_E_EXISTS) {
		if (!same_secret(c, m)) {
			fprintf(stderr,
			        "aamctl import: secret %s already exists with another type or "
			        "binding; "
			        "not changed (delete or rename it, then import again)\n",
			        cr->name);
		} else {
			/* Re-import: the same secret gets the current value as a new version. */
			aam_buf_uninit_wipe(&req);
			aam_buf_init(&req, AAM_IPC_MAX_PAYLOAD);
			aam_ipc_put_str(&req, cr->name);
			aam_ipc_put_bytes(&req, value, strlen(value));
			rc = req.err != AAM_OK ? req.err
			                       : call(c, VAULT_IPC_SECRET_ROTATE, &req, &reply);
			what = "updated (rotated)";
		}
	}
	if (rc == AAM_OK)
		fprintf(msgs, "secret %s %s: type %s, bound to %s\n", cr->name, what, cr->type,
		        cr->binding);
	else if (rc != AAM_E_EXISTS)
		fprintf(stderr, "aamctl import: secret %s: %s (%s)\n", cr->name,
		        reply.len > 0 ? aam_buf_cstr(&reply) : aam_strerror(rc), aam_err_code(rc));
	aam_buf_uninit_wipe(&req);
	aam_buf_uninit(&reply);
	free(m);
	return rc;
}

int
import_vault_store(const struct aam_cli *cli, const struct import_cred *creds, size_t n, FILE *msgs)
{
	if (n == 0)
		return 0;
	struct aam_ipc_client *c = NULL;
	if (connect_vault(cli, &c) != AAM_OK)
		return (int)n;
	int failures = 0;
	for (size_t i = 0; i < n; i++)
		if (store_one(c, &creds[i], msgs) != AAM_OK)
			failures++;
	aam_ipc_client_free(c);
	return failures;
}
