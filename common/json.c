/*
 * Strict JSON over jansson: limits, positions and field paths.  See json.h.
 */
#include "common/json.h"
#include "aam/err.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Getters use this internally for "absent and that is fine". */
#define GET_ABSENT (-1)

struct json_lim {
	size_t max_bytes, max_string, max_members;
	unsigned max_depth;
	bool allow_nul;
};

static void
json_lim_resolve(const struct aam_json_limits *in, struct json_lim *l)
{
	l->max_bytes = in && in->max_bytes ? in->max_bytes : AAM_JSON_DEFAULT_MAX_BYTES;
	l->max_depth = in && in->max_depth ? in->max_depth : AAM_JSON_DEFAULT_MAX_DEPTH;
	l->max_string = in && in->max_string ? in->max_string : AAM_JSON_DEFAULT_MAX_STRING;
	l->max_members = in && in->max_members ? in->max_members : AAM_JSON_DEFAULT_MAX_MEMBERS;
	l->allow_nul = in ? in->allow_nul : false;
}

static void text_set(char *dst, size_t n, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Messages are cut to fit their fixed fields on purpose. */
static void
text_set(char *dst, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(dst, n, fmt, ap);
	va_end(ap);
}

static void
err_clear(struct aam_json_error *err)
{
	if (err != NULL)
		memset(err, 0, sizeof(*err));
}

static void err_at_pos(struct aam_json_error *err, unsigned line, unsigned col, size_t offset,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void
err_at_pos(struct aam_json_error *err, unsigned line, unsigned col, size_t offset, const char *fmt,
           ...)
{
	if (err == NULL)
		return;
	memset(err, 0, sizeof(*err));
	err->line = line;
	err->col = col;
	err->offset = offset;
	char text[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (line > 0)
		text_set(err->msg, sizeof(err->msg), "line %u, column %u: %s", line, col, text);
	else
		text_set(err->msg, sizeof(err->msg), "%s", text);
}

static void err_at_path(struct aam_json_error *err, const char *path, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void
err_at_path(struct aam_json_error *err, const char *path, const char *fmt, ...)
{
	if (err == NULL)
		return;
	memset(err, 0, sizeof(*err));
	text_set(err->path, sizeof(err->path), "%s", path);
	char text[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	text_set(err->msg, sizeof(err->msg), "%s: %s", err->path, text);
}

/* ---- paths ---- */

/*
 * Appends N bytes of S to the NUL-terminated path in OUT.  When it does
 * not fit, the path is cut and ends in "...", and later appends do
 * nothing: no complete segment can end in "..." (identifiers have no dots,
 * other segments end in ']'), so the marker is unambiguous.
 */
static void
path_append(char *out, size_t outsz, const char *s, size_t n)
{
	size_t len = strnlen(out, outsz - 1);
	if (len >= 3 && memcmp(out + len - 3, "...", 3) == 0)
		return;
	if (n < outsz - len) {
		memcpy(out + len, s, n);
		out[len + n] = '\0';
		return;
	}
	if (outsz < 4) {
		out[0] = '\0';
		return;
	}
	size_t keep = outsz - 4;
	if (keep > len)
		memcpy(out + len, s, keep - len);
	memcpy(out + keep, "...", 4);
}

/* RFC 9535 member-name-shorthand, restricted to ASCII. */
static bool
path_is_identifier(const char *key)
{
	const unsigned char *k = (const unsigned char *)key;
	if (!((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') || *k == '_'))
		return false;
	for (k++; *k; k++)
		if (!((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') || *k == '_' ||
		      (*k >= '0' && *k <= '9')))
			return false;
	return true;
}

static void
path_append_key(char *out, size_t outsz, const char *key)
{
	if (path_is_identifier(key)) {
		path_append(out, outsz, ".", 1);
		path_append(out, outsz, key, strlen(key));
		return;
	}
	path_append(out, outsz, "['", 2);
	for (const unsigned char *k = (const unsigned char *)key; *k; k++) {
		char esc[8];
		if (*k == '\'' || *k == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*k;
			path_append(out, outsz, esc, 2);
		} else if (*k < 0x20 || *k == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", *k);
			path_append(out, outsz, esc, 6);
		} else {
			path_append(out, outsz, (const char *)k, 1);
		}
	}
	path_append(out, outsz, "']", 2);
}

static void
path_append_index(char *out, size_t outsz, size_t idx)
{
	char seg[32];
	int n = snprintf(seg, sizeof(seg), "[%zu]", idx);
	path_append(out, outsz, seg, (size_t)n);
}

static void
path_start(char *out, size_t outsz, const char *prefix)
{
	out[0] = '\0';
	prefix = prefix ? prefix : "$";
	path_append(out, outsz, prefix, strlen(prefix));
}

void
aam_json_path_key(char *out, size_t outsz, const char *prefix, const char *key)
{
	if (out == NULL || outsz == 0)
		return;
	path_start(out, outsz, prefix);
	path_append_key(out, outsz, key ? key : "");
}

void
aam_json_path_index(char *out, size_t outsz, const char *prefix, size_t idx)
{
	if (out == NULL || outsz == 0)
		return;
	path_start(out, outsz, prefix);
	path_append_index(out, outsz, idx);
}

/* ---- parsing ---- */

/*
 * Finds where nesting first exceeds MAX_DEPTH without building anything.
 * Only brackets outside strings count; inside a string a backslash hides
 * the next byte, so "\"[" does not open anything.  Columns count UTF-8
 * lead bytes, as jansson's do, so both kinds of error read the same.
 */
static int
json_prescan_depth(const unsigned char *p, size_t len, unsigned max_depth,
                   struct aam_json_error *err)
{
	size_t depth = 0;
	unsigned line = 1, col = 0;
	bool in_str = false, esc = false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = p[i];
		if (c == '\n') {
			line++;
			col = 0;
		} else if ((c & 0xc0) != 0x80) {
			col++;
		}
		if (in_str) {
			if (esc)
				esc = false;
			else if (c == '\\')
				esc = true;
			else if (c == '"')
				in_str = false;
			continue;
		}
		if (c == '"') {
			in_str = true;
		} else if (c == '[' || c == '{') {
			if (++depth > max_depth) {
				err_at_pos(err, line, col, i, "nesting deeper than %u levels",
				           max_depth);
				return AAM_E_TOOBIG;
			}
		} else if ((c == ']' || c == '}') && depth > 0) {
			depth--;
		}
	}
	return AAM_OK;
}

/* One step of the path from the root, kept on the C stack while walking. */
struct walk_frame {
	const struct walk_frame *up;
	const char *key; /* NULL for an array element */
	size_t idx;
};

static void
walk_path(const struct walk_frame *f, char *out, size_t outsz)
{
	if (f == NULL) {
		path_start(out, outsz, "$");
		return;
	}
	walk_path(f->up, out, outsz);
	if (f->key != NULL)
		path_append_key(out, outsz, f->key);
	else
		path_append_index(out, outsz, f->idx);
}

static void walk_error(const struct walk_frame *f, struct aam_json_error *err, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Kept apart so the path buffer is not on the stack of every recursion. */
static void
walk_error(const struct walk_frame *f, struct aam_json_error *err, const char *fmt, ...)
{
	if (err == NULL)
		return;
	char path[sizeof(err->path)], text[200];
	walk_path(f, path, sizeof(path));
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	err_at_path(err, path, "%s", text);
}

/*
 * Applies the limits jansson does not know about.  Recursion is bounded
 * by the depth limit the pre-scan already enforced (and by jansson's own
 * JSON_PARSER_MAX_DEPTH).
 */
static int
json_walk_limits(json_t *v, const struct walk_frame *f, const struct json_lim *l,
                 struct aam_json_error *err)
{
	if (json_is_string(v)) {
		if (json_string_length(v) > l->max_string) {
			walk_error(f, err, "string longer than %zu bytes", l->max_string);
			return AAM_E_TOOBIG;
		}
	} else if (json_is_object(v)) {
		if (json_object_size(v) > l->max_members) {
			walk_error(f, err, "object has more than %zu members", l->max_members);
			return AAM_E_TOOBIG;
		}
		const char *key;
		json_t *child;
		json_object_foreach(v, key, child)
		{
			if (strlen(key) > l->max_string) {
				/* The path names the object, not the over-long key. */
				walk_error(f, err, "object key longer than %zu bytes",
				           l->max_string);
				return AAM_E_TOOBIG;
			}
			struct walk_frame sub = {f, key, 0};
			int rc = json_walk_limits(child, &sub, l, err);
			if (rc != AAM_OK)
				return rc;
		}
	} else if (json_is_array(v)) {
		size_t n = json_array_size(v);
		if (n > l->max_members) {
			walk_error(f, err, "array has more than %zu elements", l->max_members);
			return AAM_E_TOOBIG;
		}
		for (size_t i = 0; i < n; i++) {
			struct walk_frame sub = {f, NULL, i};
			int rc = json_walk_limits(json_array_get(v, i), &sub, l, err);
			if (rc != AAM_OK)
				return rc;
		}
	}
	return AAM_OK;
}

int
aam_json_parse(const void *data, size_t len, const struct aam_json_limits *lim, json_t **out,
               struct aam_json_error *err)
{
	err_clear(err);
	if (out == NULL || (data == NULL && len > 0))
		return AAM_E_INVAL;
	*out = NULL;
	if (data == NULL)
		data = "";
	struct json_lim l;
	json_lim_resolve(lim, &l);
	if (len > l.max_bytes) {
		err_at_pos(err, 0, 0, l.max_bytes, "document larger than %zu bytes", l.max_bytes);
		return AAM_E_TOOBIG;
	}
	int rc = json_prescan_depth(data, len, l.max_depth, err);
	if (rc != AAM_OK)
		return rc;

	size_t flags = JSON_REJECT_DUPLICATES | JSON_DECODE_ANY;
	if (l.allow_nul)
		flags |= JSON_ALLOW_NUL;
	json_error_t je;
	json_t *j = json_loadb(data, len, flags, &je);
	if (j == NULL) {
		/*
		 * jansson ends many messages with " near '<token>'", and the
		 * token may be a whole string literal from the document, say a
		 * credential.  The position already says where, so drop it.
		 */
		char *near = strstr(je.text, " near '");
		if (near != NULL)
			*near = '\0';
		rc = json_error_code(&je) == json_error_out_of_memory ? AAM_E_NOMEM : AAM_E_PARSE;
		err_at_pos(err, je.line > 0 ? (unsigned)je.line : 0,
		           je.column > 0 ? (unsigned)je.column : 0,
		           je.position > 0 ? (size_t)je.position : 0, "%s", je.text);
		return rc;
	}
	rc = json_walk_limits(j, NULL, &l, err);
	if (rc != AAM_OK) {
		json_decref(j);
		return rc;
	}
	*out = j;
	return AAM_OK;
}

/* ---- typed getters ---- */

const char *
aam_json_type_name(const json_t *v)
{
	if (v == NULL)
		return "nothing";
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
		return "integer";
	case JSON_REAL:
		return "real";
	case JSON_TRUE:
	case JSON_FALSE:
		return "boolean";
	case JSON_NULL:
		return "null";
	}
	return "unknown";
}

static const char *
json_want_name(json_type want)
{
	switch (want) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
		return "integer";
	case JSON_REAL:
		return "number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "boolean";
	case JSON_NULL:
		return "null";
	}
	return "unknown";
}

static bool
json_type_matches(const json_t *v, json_type want)
{
	switch (want) {
	case JSON_TRUE:
	case JSON_FALSE:
		return json_is_boolean(v);
	case JSON_REAL:
		return json_is_number(v);
	default:
		return json_typeof(v) == want;
	}
}

int
aam_json_check_type(const json_t *v, const char *path, json_type want, struct aam_json_error *err)
{
	if (v != NULL && json_type_matches(v, want))
		return AAM_OK;
	char p[sizeof(((struct aam_json_error *)0)->path)];
	path_start(p, sizeof(p), path);
	err_at_path(err, p, "expected %s, got %s", json_want_name(want), aam_json_type_name(v));
	return AAM_E_INVAL;
}

/*
 * Shared front half of every getter: checks OBJ, looks KEY up, applies
 * the REQUIRED/NULLABLE flags and the type.  Returns AAM_OK with *V set,
 * GET_ABSENT, or an error with ERR filled.  PATH receives the member's
 * path for the caller's own range checks.
 */
static int
get_member(const json_t *obj, const char *prefix, const char *key, int flags, json_type want,
           json_t **v, char *path, size_t pathsz, struct aam_json_error *err)
{
	err_clear(err);
	if (key == NULL)
		return AAM_E_INVAL;
	if (obj == NULL || !json_is_object(obj))
		return aam_json_check_type(obj, prefix, JSON_OBJECT, err);
	aam_json_path_key(path, pathsz, prefix, key);
	json_t *m = json_object_get(obj, key);
	if (m == NULL) {
		if (flags & AAM_JSON_REQUIRED) {
			err_at_path(err, path, "required field missing");
			return AAM_E_INVAL;
		}
		return GET_ABSENT;
	}
	if (json_is_null(m) && (flags & AAM_JSON_NULLABLE) && want != JSON_NULL) {
		if (flags & AAM_JSON_REQUIRED) {
			err_at_path(err, path, "required field is null");
			return AAM_E_INVAL;
		}
		return GET_ABSENT;
	}
	if (!json_type_matches(m, want)) {
		err_at_path(err, path, "expected %s, got %s", json_want_name(want),
		            aam_json_type_name(m));
		return AAM_E_INVAL;
	}
	*v = m;
	return AAM_OK;
}

#define GET_PATH_SIZE sizeof(((struct aam_json_error *)0)->path)

int
aam_json_get_str_max(const json_t *obj, const char *prefix, const char *key, int flags,
                     size_t maxlen, const char **out, struct aam_json_error *err)
{
	char path[GET_PATH_SIZE];
	json_t *v = NULL;
	int rc = get_member(obj, prefix, key, flags, JSON_STRING, &v, path, sizeof(path), err);
	if (rc != AAM_OK)
		return rc == GET_ABSENT ? AAM_OK : rc;
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	/* Callers use the value as a C string; a NUL would silently cut it. */
	if (strlen(s) != n) {
		err_at_path(err, path, "string contains a NUL character");
		return AAM_E_INVAL;
	}
	if (n > maxlen) {
		err_at_path(err, path, "string longer than %zu bytes", maxlen);
		return AAM_E_INVAL;
	}
	if (out != NULL)
		*out = s;
	return AAM_OK;
}

int
aam_json_get_str(const json_t *obj, const char *prefix, const char *key, int flags,
                 const char **out, struct aam_json_error *err)
{
	return aam_json_get_str_max(obj, prefix, key, flags, SIZE_MAX, out, err);
}

int
aam_json_get_int64_range(const json_t *obj, const char *prefix, const char *key, int flags,
                         int64_t min, int64_t max, int64_t *out, struct aam_json_error *err)
{
	char path[GET_PATH_SIZE];
	json_t *v = NULL;
	int rc = get_member(obj, prefix, key, flags, JSON_INTEGER, &v, path, sizeof(path), err);
	if (rc != AAM_OK)
		return rc == GET_ABSENT ? AAM_OK : rc;
	int64_t x = (int64_t)json_integer_value(v);
	if (x < min || x > max) {
		err_at_path(err, path, "integer out of range [%" PRId64 ", %" PRId64 "]", min, max);
		return AAM_E_INVAL;
	}
	if (out != NULL)
		*out = x;
	return AAM_OK;
}

int
aam_json_get_int64(const json_t *obj, const char *prefix, const char *key, int flags, int64_t *out,
                   struct aam_json_error *err)
{
	return aam_json_get_int64_range(obj, prefix, key, flags, INT64_MIN, INT64_MAX, out, err);
}

int
aam_json_get_bool(const json_t *obj, const char *prefix, const char *key, int flags, bool *out,
                  struct aam_json_error *err)
{
	char path[GET_PATH_SIZE];
	json_t *v = NULL;
	int rc = get_member(obj, prefix, key, flags, JSON_TRUE, &v, path, sizeof(path), err);
	if (rc != AAM_OK)
		return rc == GET_ABSENT ? AAM_OK : rc;
	if (out != NULL)
		*out = json_is_true(v);
	return AAM_OK;
}

int
aam_json_get_double(const json_t *obj, const char *prefix, const char *key, int flags, double *out,
                    struct aam_json_error *err)
{
	char path[GET_PATH_SIZE];
	json_t *v = NULL;
	int rc = get_member(obj, prefix, key, flags, JSON_REAL, &v, path, sizeof(path), err);
	if (rc != AAM_OK)
		return rc == GET_ABSENT ? AAM_OK : rc;
	if (out != NULL)
		*out = json_number_value(v);
	return AAM_OK;
}

int
aam_json_get_object(const json_t *obj, const char *prefix, const char *key, int flags, json_t **out,
                    struct aam_json_error *err)
{
	char path[GET_PATH_SIZE];
	json_t *v = NULL;
	int rc = get_member(obj, prefix, key, flags, JSON_OBJECT, &v, path, sizeof(path), err);
	if (rc != AAM_OK)
		return rc == GET_ABSENT ? AAM_OK : rc;
	if (out != NULL)
		*out = v;
	return AAM_OK;
}

int
aam_json_get_array(const json_t *obj, const char *prefix, const char *key, int flags, json_t **out,
                   struct aam_json_error *err)
{
	char path[GET_PATH_SIZE];
	json_t *v = NULL;
	int rc = get_member(obj, prefix, key, flags, JSON_ARRAY, &v, path, sizeof(path), err);
	if (rc != AAM_OK)
		return rc == GET_ABSENT ? AAM_OK : rc;
	if (out != NULL)
		*out = v;
	return AAM_OK;
}

/* ---- output ---- */

static int
json_dump_to_buf(const char *p, size_t n, void *data)
{
	return aam_buf_append(data, p, n) == AAM_OK ? 0 : -1;
}

int
aam_json_dump_buf(const json_t *j, struct aam_buf *b, size_t flags)
{
	if (j == NULL || b == NULL)
		return AAM_E_INVAL;
	if (b->err)
		return b->err;
	size_t start = b->len;
	if (json_dump_callback(j, json_dump_to_buf, b, flags | JSON_COMPACT | JSON_ENCODE_ANY) !=
	    0) {
		/* jansson fails without a buffer error on, e.g., a cyclic tree. */
		int rc = b->err ? b->err : AAM_E_INVAL;
		b->len = start;
		if (b->data != NULL)
			b->data[start] = 0;
		return rc;
	}
	return AAM_OK;
}

/*
 * Length of the well-formed UTF-8 sequence at S (RFC 3629: no overlong
 * forms, no surrogates, nothing past U+10FFFF), or 0.
 */
static size_t
utf8_seq_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	if (c < 0x80)
		return 1;
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

int
aam_json_append_string(struct aam_buf *b, const char *s, size_t n)
{
	if (b == NULL || (s == NULL && n > 0))
		return AAM_E_INVAL;
	const unsigned char *p = (const unsigned char *)s;
	aam_buf_append_byte(b, '"');
	size_t i = 0;
	while (i < n) {
		/* Copy the longest run that needs no escaping in one append. */
		size_t run = i;
		while (run < n && p[run] >= 0x20 && p[run] < 0x7f && p[run] != '"' &&
		       p[run] != '\\')
			run++;
		if (run > i) {
			aam_buf_append(b, p + i, run - i);
			i = run;
			continue;
		}
		unsigned char c = p[i];
		char esc[8];
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			aam_buf_append(b, esc, 2);
			i++;
		} else if (c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f') {
			esc[0] = '\\';
			esc[1] = c == '\n'   ? 'n'
			         : c == '\r' ? 'r'
			         : c == '\t' ? 't'
			         : c == '\b' ? 'b'
			                     : 'f';
			aam_buf_append(b, esc, 2);
			i++;
		} else if (c < 0x80) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			aam_buf_append(b, esc, 6);
			i++;
		} else {
			size_t len = utf8_seq_len(p + i, n - i);
			if (len == 0) {
				aam_buf_append_str(b, "\\ufffd");
				i++;
			} else {
				aam_buf_append(b, p + i, len);
				i += len;
			}
		}
	}
	aam_buf_append_byte(b, '"');
	return b->err;
}

int
aam_json_error_body(struct aam_buf *b, const char *code, const char *message)
{
	if (b == NULL || code == NULL || message == NULL)
		return AAM_E_INVAL;
	if (b->err)
		return b->err;
	size_t start = b->len;
	aam_buf_append_str(b, "{\"error\":{\"code\":");
	aam_json_append_string(b, code, strlen(code));
	aam_buf_append_str(b, ",\"message\":");
	aam_json_append_string(b, message, strlen(message));
	aam_buf_append_str(b, "}}");
	if (b->err) {
		int rc = b->err;
		b->len = start;
		if (b->data != NULL)
			b->data[start] = 0;
		return rc;
	}
	return AAM_OK;
}
