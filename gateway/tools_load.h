/*
 * Internals of the catalogue loader (gateway/tools_catalog.c and its
 * helpers): the loader's state and the strict YAML readers, each of which
 * reports the first error as file:line:column and returns AAM_E_CONFIG.
 */
#ifndef AAM_GATEWAY_TOOLS_LOAD_H
#define AAM_GATEWAY_TOOLS_LOAD_H

#include "gateway/tools_int.h"

struct gwt_ld {
	struct gwt_catalog *c;
	const char *file;
	struct aam_yaml_error *err;
	/* Catalogue-wide defaults while one document loads. */
	const char *base_url, *credential;
	int64_t timeout_ms;
	const struct aam_yaml_node *headers;
};

/* Sets the error at N (printf-style); returns AAM_E_CONFIG. */
int gwt_ld_bad(struct gwt_ld *l, const struct aam_yaml_node *n, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Refuses keys of MAP outside ALLOWED (NULL-terminated). */
int gwt_ld_keys_only(struct gwt_ld *l, const struct aam_yaml_node *map, const char *where,
                     const char *const *allowed);
int gwt_ld_want_map(struct gwt_ld *l, const struct aam_yaml_node *n, const char *where);
/* A non-empty string without control characters. */
int gwt_ld_get_str(struct gwt_ld *l, const struct aam_yaml_node *n, const char *where,
                   const char **out);
int gwt_ld_get_int(struct gwt_ld *l, const struct aam_yaml_node *n, const char *where, int64_t min,
                   int64_t max, int64_t *out);
/* A duration between 100ms and 1h, in milliseconds. */
int gwt_ld_get_duration(struct gwt_ld *l, const struct aam_yaml_node *n, const char *where,
                        int64_t *ms);
/* Keeps J (a body template or an enum list) until the catalogue is freed. */
int gwt_ld_own_json(struct gwt_catalog *c, json_t *j);

/* Whether S is 1..MAX characters of letters, digits and EXTRA. */
bool gwt_name_chars(const char *s, const char *extra, size_t max);
bool gwt_param_name_ok(const char *s, size_t len);
bool gwt_credential_name_ok(const char *s);
bool gwt_header_name_ok(const char *s);
/* Headers a template may not set (aam-vault owns them). */
bool gwt_header_forbidden(const char *name);
/* Whether the template is exactly one placeholder. */
bool gwt_tmpl_is_single(const struct gwt_tmpl *t);

/*
 * Loads action KEY: N of resource R, with the resource's base URL,
 * credential and headers as defaults.
 */
int gwt_ld_action(struct gwt_ld *l, const struct gwt_resource *r, const struct aam_yaml_node *key,
                  const struct aam_yaml_node *n, const char *res_base, const char *res_cred,
                  const struct aam_yaml_node *res_headers, struct gwt_action *a);

#endif /* AAM_GATEWAY_TOOLS_LOAD_H */
