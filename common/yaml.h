/*
 * YAML loader on libyaml's event API.  It builds a tree of nodes that carry
 * their source positions, so every later error (config, policy) can name
 * file:line:column.
 *
 * The loader is for untrusted files, so it enforces its limits while it
 * parses rather than afterwards: input size, nesting depth, scalar size,
 * document count, and the number of nodes counted WITH alias expansion.
 * Aliases share the anchored node instead of copying it, but each alias
 * adds the anchored node's expanded size to the count, so a "billion
 * laughs" document fails at the first alias that crosses the limit and is
 * never expanded.  Expanded depth is bounded the same way, so a consumer
 * that walks through aliases (aam_yaml_to_json) never recurses deeper than
 * max_depth.
 *
 * It also refuses what YAML allows but a configuration should not have:
 * duplicate keys, non-scalar keys, the "<<" merge key, recursive aliases
 * and scalars containing NUL.
 *
 * Scalars are typed with the YAML 1.2 core schema, and only plain
 * (unquoted) untagged scalars are resolved: "true"/"false" are booleans,
 * "yes"/"no"/"on"/"off" are strings, "~"/"null"/empty are null, and quoted
 * scalars are always strings.
 */
#ifndef AAM_COMMON_YAML_H
#define AAM_COMMON_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

enum aam_yaml_type { AAM_YAML_SCALAR = 1, AAM_YAML_SEQ, AAM_YAML_MAP };

struct aam_yaml_node {
	enum aam_yaml_type type;
	unsigned line, col; /* 1-based start of the node in the source */
	const char *tag;    /* explicit tag ("!!str", ...) or NULL */
	/* SCALAR */
	const char *str; /* NUL-terminated (may contain no NUL) */
	size_t len;
	bool plain; /* plain style (unquoted): only plain scalars are null/bool/number */
	/* SEQ: items[0..n); MAP: keys[i] -> items[i], keys are SCALAR, in document order */
	size_t n;
	struct aam_yaml_node **items;
	struct aam_yaml_node **keys;
};

struct aam_yaml_limits {
	size_t max_bytes;   /* whole input, default 1 MiB */
	unsigned max_depth; /* nesting, default 64 */
	size_t max_nodes;   /* nodes counted WITH alias expansion, default 100000: a billion-laughs
	                       document fails at once */
	size_t max_scalar;  /* bytes per scalar, default 64 KiB */
	size_t max_docs;    /* documents per stream, default 1000 */
};
/* Zeroed fields mean the defaults. */

#define AAM_YAML_DEFAULT_MAX_BYTES  (1024u * 1024)
#define AAM_YAML_DEFAULT_MAX_DEPTH  64u
#define AAM_YAML_DEFAULT_MAX_NODES  100000u
#define AAM_YAML_DEFAULT_MAX_SCALAR (64u * 1024)
#define AAM_YAML_DEFAULT_MAX_DOCS   1000u

struct aam_yaml_error {
	char file[256];
	unsigned line, col; /* 0 when unknown */
	char msg[256];
};
/*
 * Formats "file:line:column: message" into out (always NUL-terminated).
 * Without a position (line 0) it is "file: message".
 */
void aam_yaml_error_format(const struct aam_yaml_error *e, char *out, size_t outlen);
/* Sets an error at a node's position (printf-style message). */
void aam_yaml_error_at(struct aam_yaml_error *e, const char *file, const struct aam_yaml_node *n,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Sets an error at an explicit position (0, 0 when unknown). */
void aam_yaml_error_set(struct aam_yaml_error *e, const char *file, unsigned line, unsigned col,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));

typedef struct aam_yaml_stream aam_yaml_stream; /* owns every node and string */

/*
 * Parses LEN bytes of DATA.  NAME is the file name used in errors (NULL
 * means "<input>").  LIM may be NULL for the defaults.  On success *OUT
 * owns the tree; on failure *OUT is NULL and ERR (which may be NULL) says
 * where and why.  Returns AAM_E_PARSE for malformed input, AAM_E_TOOBIG
 * for a limit, AAM_E_NOMEM.
 */
int aam_yaml_parse(const char *name, const void *data, size_t len,
                   const struct aam_yaml_limits *lim, aam_yaml_stream **out,
                   struct aam_yaml_error *err);
/* As aam_yaml_parse on a file's contents; AAM_E_NOTFOUND, AAM_E_PERM or
 * AAM_E_IO when it cannot be read (the error names the file). */
int aam_yaml_parse_file(const char *path, const struct aam_yaml_limits *lim, aam_yaml_stream **out,
                        struct aam_yaml_error *err);
void aam_yaml_stream_free(aam_yaml_stream *s);
size_t aam_yaml_stream_count(const aam_yaml_stream *s); /* number of documents */
const struct aam_yaml_node *aam_yaml_stream_doc(const aam_yaml_stream *s,
                                                size_t i);  /* root of doc i */
const char *aam_yaml_stream_name(const aam_yaml_stream *s); /* the file name given */

/* NULL if absent or not a map */
const struct aam_yaml_node *aam_yaml_map_get(const struct aam_yaml_node *map, const char *key);

/*
 * Typed scalar readers (YAML 1.2 core schema for plain scalars; quoted
 * scalars are always strings).  On a type mismatch they fill err at the
 * node's position with a message naming what was expected, and return
 * AAM_E_PARSE.  A NULL node is AAM_E_INVAL ("missing value").
 *
 * aam_yaml_get_str accepts only scalars that resolve to strings: a plain
 * 123, true or ~ is refused ("quote it"), so a typo cannot silently change
 * a value's type.  aam_yaml_get_int64 accepts decimal, 0o octal and 0x hex
 * and refuses values out of range.  aam_yaml_get_double accepts integers
 * and floats, .inf included; it refuses .nan, which compares false with
 * everything and would defeat any limit it is used for.
 */
int aam_yaml_get_str(const struct aam_yaml_node *n, const char *file, const char **out,
                     struct aam_yaml_error *err);
int aam_yaml_get_bool(const struct aam_yaml_node *n, const char *file, bool *out,
                      struct aam_yaml_error *err);
int aam_yaml_get_int64(const struct aam_yaml_node *n, const char *file, int64_t *out,
                       struct aam_yaml_error *err);
int aam_yaml_get_double(const struct aam_yaml_node *n, const char *file, double *out,
                        struct aam_yaml_error *err);
/* True for a plain null scalar (~, null, Null, NULL, empty) or !!null; false for a NULL node. */
bool aam_yaml_is_null(const struct aam_yaml_node *n);

/* What a node resolves to under the core schema (explicit tags included). */
enum aam_yaml_kind {
	AAM_YAML_K_NULL = 1,
	AAM_YAML_K_BOOL,
	AAM_YAML_K_INT,
	AAM_YAML_K_FLOAT,
	AAM_YAML_K_STR,
	AAM_YAML_K_SEQ,
	AAM_YAML_K_MAP,
	AAM_YAML_K_OTHER, /* a scalar with a tag outside the core schema */
};
enum aam_yaml_kind aam_yaml_kind(const struct aam_yaml_node *n);
/* "null", "a boolean", "an integer", "a float", "a string", "a sequence", ... */
const char *aam_yaml_kind_name(enum aam_yaml_kind k);

/*
 * Converts a node to a jansson tree (for callers that want JSON).  Plain
 * scalars become null/true/false/integers/reals per the core schema, other
 * scalars strings, mappings objects keyed by the key's text.  Integers out
 * of range, .inf/.nan and unknown tags are errors at their position.
 */
int aam_yaml_to_json(const struct aam_yaml_node *n, json_t **out, struct aam_yaml_error *err,
                     const char *file);

#endif
