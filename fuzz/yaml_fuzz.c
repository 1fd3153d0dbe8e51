/*
 * Fuzz target for the YAML loader.  Besides "no crash", it checks what the
 * policy and config loaders rely on: every error carries a position and a
 * message; every node of a parsed tree has a position, mapping keys are
 * scalars, scalars are NUL-terminated at their length with no NUL inside;
 * the typed readers and the JSON conversion either succeed or fail with a
 * positioned error.  Aliases are walked as expanded, which the node limit
 * keeps bounded.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "common/yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_scalar(const struct aam_yaml_node *n)
{
	if (n->str == NULL || n->str[n->len] != '\0' || strlen(n->str) != n->len)
		abort();
	struct aam_yaml_error err;
	const char *s;
	bool b;
	int64_t i;
	double d;
	/* Exactly one reading applies to a core-schema scalar. */
	int ok = (aam_yaml_get_str(n, "f", &s, &err) == AAM_OK) +
	         (aam_yaml_get_bool(n, "f", &b, &err) == AAM_OK) +
	         (aam_yaml_get_int64(n, "f", &i, &err) == AAM_OK) + aam_yaml_is_null(n);
	if (ok > 1)
		abort();
	if (aam_yaml_get_double(n, "f", &d, &err) != AAM_OK && err.line != n->line)
		abort();
}

static void
walk(const struct aam_yaml_node *n, unsigned depth)
{
	if (n == NULL || n->line == 0 || n->col == 0 || depth > AAM_YAML_DEFAULT_MAX_DEPTH + 1)
		abort();
	switch (n->type) {
	case AAM_YAML_SCALAR:
		check_scalar(n);
		break;
	case AAM_YAML_MAP:
		for (size_t i = 0; i < n->n; i++) {
			if (n->keys[i]->type != AAM_YAML_SCALAR)
				abort();
			check_scalar(n->keys[i]);
			/* Keys are unique (checked on small maps: map_get is linear). */
			if (n->n <= 64 && aam_yaml_map_get(n, n->keys[i]->str) != n->items[i])
				abort();
		}
		/* fall through */
	case AAM_YAML_SEQ:
		for (size_t i = 0; i < n->n; i++)
			walk(n->items[i], depth + 1);
		break;
	default:
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct aam_yaml_limits lim = {.max_nodes = 20000, .max_scalar = 16384};
	aam_yaml_stream *s = NULL;
	struct aam_yaml_error err;
	int rc = aam_yaml_parse("fuzz.yaml", data, size, &lim, &s, &err);
	if (rc != AAM_OK) {
		if (s != NULL || err.msg[0] == '\0' || strcmp(err.file, "fuzz.yaml") != 0)
			abort();
		if ((rc == AAM_E_PARSE || rc == AAM_E_TOOBIG) && err.line == 0)
			abort();
		char out[600];
		aam_yaml_error_format(&err, out, sizeof(out));
		return 0;
	}
	for (size_t i = 0; i < aam_yaml_stream_count(s); i++) {
		const struct aam_yaml_node *root = aam_yaml_stream_doc(s, i);
		walk(root, 0);
		json_t *j = NULL;
		if (aam_yaml_to_json(root, &j, &err, "fuzz.yaml") == AAM_OK)
			json_decref(j);
		else if (j != NULL || err.line == 0)
			abort();
	}
	aam_yaml_stream_free(s);
	return 0;
}
