/*
 * Internals of `aamctl import litellm` shared by cmd_import.c (reading
 * LiteLLM's config) and cmd_import_emit.c (writing AAM's routes file).
 */
#ifndef AAM_TOOLS_AAMCTL_CMD_IMPORT_INT_H
#define AAM_TOOLS_AAMCTL_CMD_IMPORT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/yaml.h"
#include "tools/aamctl/cmd_import.h"

#define MAX_ROUTES 256
#define MAX_DEPS   64

struct dep {
	const char *id; /* model_info.id: the routes file's deployment id; NULL = none */
	const char *provider;
	char model[256];
	char api_base[512];
	const char *api_version;
	char credential[128];
	const char *region;
	int64_t rpm, tpm, max_context;
	double weight;
	int64_t timeout_ms;
	double cin, cout, ccached;
	bool has_cin, has_cout, has_ccached;
};

struct route {
	const char *name;
	struct dep deps[MAX_DEPS];
	size_t ndeps;
	int64_t max_output;
};

struct imp {
	const char *file;
	struct route *routes;
	size_t nroutes;
	struct import_cred *creds;
	size_t ncreds;
	struct aam_buf unsup; /* summary lines */
	size_t nunsup, nwarn, nerr;
	bool read_env; /* check that referenced variables are set */
};

/* Reports: each goes to stderr; unsupported settings also into the summary. */
void import_unsupported(struct imp *im, const char *path, const struct aam_yaml_node *n);
void import_warn(struct imp *im, const struct aam_yaml_node *n, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
int import_error_at(struct imp *im, const struct aam_yaml_node *n, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Typed readers: errors name file:line:column and count in IM. */
int import_get_str(struct imp *im, const struct aam_yaml_node *n, const char **out);
int import_get_num(struct imp *im, const struct aam_yaml_node *n, double *out);
int import_get_int(struct imp *im, const struct aam_yaml_node *n, int64_t *out);
/* LiteLLM seconds (a number) into milliseconds. */
int import_get_seconds_ms(struct imp *im, const struct aam_yaml_node *n, int64_t *ms);

/* cmd_import_emit.c */
void import_emit_routes(const struct imp *im, struct aam_buf *b);
int import_emit_settings(struct imp *im, const struct aam_yaml_node *rs, struct aam_buf *b);
int import_write_file(const char *path, const struct aam_buf *b);

#endif
