/*
 * Strict JSON over jansson, with limits, and typed getters whose errors
 * name the field path.
 *
 * Every JSON document AAM reads comes from a peer it does not trust (an
 * agent, a provider, an admin's file), so parsing enforces limits on size,
 * nesting depth, string length and container size, rejects duplicate keys
 * (two parsers could otherwise disagree on which value wins) and trailing
 * bytes, and reports either a position (line, column, byte offset) or a
 * JSONPath-like field path such as "$.messages[3].role".
 *
 * Error messages never quote string values from the document, so a
 * malformed request that carries a credential cannot copy it into a log or
 * an HTTP error body.
 */
#ifndef AAM_COMMON_JSON_H
#define AAM_COMMON_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/buf.h"

#define AAM_JSON_DEFAULT_MAX_BYTES   (1024u * 1024)
#define AAM_JSON_DEFAULT_MAX_DEPTH   64u
#define AAM_JSON_DEFAULT_MAX_STRING  (1024u * 1024)
#define AAM_JSON_DEFAULT_MAX_MEMBERS 100000u

/* Zero in any field means its default.  A NULL pointer means all defaults. */
struct aam_json_limits {
	size_t max_bytes;   /* size of the whole document */
	unsigned max_depth; /* nesting of arrays and objects; [] is depth 1 */
	size_t max_string;  /* decoded bytes of any string or object key */
	size_t max_members; /* members of any one object or elements of any one array */
	bool allow_nul;     /* accept "\u0000" inside string values */
};

struct aam_json_error {
	unsigned line, col; /* 1-based; 0 when the error has a path instead */
	size_t offset;      /* byte offset of the error; 0 when it has a path */
	char path[256];     /* "$.a.b[2]" for errors found after parsing, else "" */
	char msg[256];      /* a complete sentence, led by "line L, column C:" or the path */
};

/*
 * Parses LEN bytes of DATA (a complete document of any JSON type).  On
 * success *OUT owns a new reference.  On failure *OUT is NULL, ERR (may be
 * NULL) says what and where, and the result is AAM_E_TOOBIG for a broken
 * limit, AAM_E_PARSE for malformed JSON, AAM_E_NOMEM or AAM_E_INVAL.
 *
 * Nesting depth is checked by a pre-scan before jansson sees the text, so
 * a megabyte of "[[[[" costs one linear pass and no allocation.
 */
int aam_json_parse(const void *data, size_t len, const struct aam_json_limits *lim, json_t **out,
                   struct aam_json_error *err);

/* Flags for the getters. */
enum {
	AAM_JSON_OPTIONAL = 0, /* absent: AAM_OK with *out untouched (preset the default) */
	AAM_JSON_REQUIRED = 1, /* absent: AAM_E_INVAL "required field missing" */
	AAM_JSON_NULLABLE = 2, /* an explicit null counts as absent rather than a type error */
};

/*
 * Typed getters.  OBJ must be an object whose path is PREFIX (NULL means
 * "$"); KEY names the member.  A present member of the wrong type, a
 * missing required member, an out-of-range integer or an over-long string
 * returns AAM_E_INVAL with ERR (may be NULL) naming the path, for example
 * "$.messages[3].role: expected string, got integer".
 *
 * Strings: the returned pointer lives as long as the member does; strings
 * containing NUL are rejected since callers use them as C strings.
 * Integers: reals such as 1.0 are rejected.  Doubles: integers are
 * accepted and converted.  Objects and arrays: a borrowed reference.
 */
int aam_json_get_str(const json_t *obj, const char *prefix, const char *key, int flags,
                     const char **out, struct aam_json_error *err);
int aam_json_get_str_max(const json_t *obj, const char *prefix, const char *key, int flags,
                         size_t maxlen, const char **out, struct aam_json_error *err);
int aam_json_get_int64(const json_t *obj, const char *prefix, const char *key, int flags,
                       int64_t *out, struct aam_json_error *err);
int aam_json_get_int64_range(const json_t *obj, const char *prefix, const char *key, int flags,
                             int64_t min, int64_t max, int64_t *out, struct aam_json_error *err);
int aam_json_get_bool(const json_t *obj, const char *prefix, const char *key, int flags, bool *out,
                      struct aam_json_error *err);
int aam_json_get_double(const json_t *obj, const char *prefix, const char *key, int flags,
                        double *out, struct aam_json_error *err);
int aam_json_get_object(const json_t *obj, const char *prefix, const char *key, int flags,
                        json_t **out, struct aam_json_error *err);
int aam_json_get_array(const json_t *obj, const char *prefix, const char *key, int flags,
                       json_t **out, struct aam_json_error *err);

/*
 * Checks that V (at PATH, NULL meaning "$") has type WANT; for array
 * elements and the document root.  JSON_TRUE or JSON_FALSE mean "boolean"
 * and JSON_REAL means "number" (integers pass).  AAM_E_INVAL with ERR
 * filled otherwise.
 */
int aam_json_check_type(const json_t *v, const char *path, json_type want,
                        struct aam_json_error *err);

/* The lowercase JSON type name used in messages: "string", "integer", ... */
const char *aam_json_type_name(const json_t *v);

/*
 * Builds "PREFIX.key" (or "PREFIX['odd key']" when KEY is not a plain
 * identifier) and "PREFIX[idx]" into OUT, for walking nested documents.
 * An over-long path is truncated and ends in "...".
 */
void aam_json_path_key(char *out, size_t outsz, const char *prefix, const char *key);
void aam_json_path_index(char *out, size_t outsz, const char *prefix, size_t idx);

/*
 * Appends the serialisation of J to B.  FLAGS are jansson's dump flags
 * (JSON_SORT_KEYS, JSON_INDENT(n), ...); output is always compact (no
 * space after ',' or ':') and any JSON type may be dumped.  On failure B's
 * length is restored.
 */
int aam_json_dump_buf(const json_t *j, struct aam_buf *b, size_t flags);

/*
 * Appends N bytes of S to B as a quoted JSON string.  Invalid UTF-8 is
 * replaced by U+FFFD so the output is always valid JSON.
 */
int aam_json_append_string(struct aam_buf *b, const char *s, size_t n);

/* Appends exactly {"error":{"code":"CODE","message":"MESSAGE"}} to B. */
int aam_json_error_body(struct aam_buf *b, const char *code, const char *message);

#endif /* AAM_COMMON_JSON_H */
