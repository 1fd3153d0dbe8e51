/*
 * aamctl import: the two LiteLLM importers (step 1 and step 2 of the
 * migration path, docs/MIGRATING-FROM-LITELLM.md).
 *   cmd_import.c       dispatch and `import litellm` (reading LiteLLM's config.yaml)
 *   cmd_import_emit.c  writing AAM's routes file (cmd_import_int.h: shared internals)
 *   cmd_import_vault.c vault writes of the imported provider keys
 *   cmd_import_keys.c  `import litellm-keys` (key table export -> virtual keys)
 */
#ifndef AAM_TOOLS_AAMCTL_CMD_IMPORT_H
#define AAM_TOOLS_AAMCTL_CMD_IMPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "common/cli.h"

/* A provider key to store in the vault; the value is never held here. */
struct import_cred {
	char name[128];       /* vault secret name */
	char type[32];        /* bearer | header | aws-sigv4 */
	char header[64];      /* header type: api-key / x-api-key */
	char binding[512];    /* the deployment's api_base */
	char env[128];        /* environment variable holding the value, or "" */
	const char *literal;  /* the value written in the LiteLLM file, or NULL */
	char aws_id_env[128]; /* aws-sigv4: env var of the access key id, or "" */
	const char *aws_id_literal;
	char aws_region[32];
	unsigned line, col; /* where api_key was written */
};

/*
 * Stores each credential in aam-vault through the admin socket named by
 * the configuration (SECRET_PUT; an existing secret of the same type and
 * binding is rotated instead).  Prints one line per secret (names only)
 * on MSGS.
 * Returns the number of failures.
 */
int import_vault_store(const struct aam_cli *cli, const struct import_cred *creds, size_t n,
                       FILE *msgs);

int import_litellm_keys_main(int argc, char **argv, const struct aam_cli *cli);

#endif
