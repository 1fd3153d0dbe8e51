/*
 * Fuzz target for the strict JSON parser and the JSON writers.  Besides
 * "no crash", it checks that every rejection has a message with a
 * position or a path, that an accepted document serialises to text the
 * parser accepts again, and that an error body built around the raw input
 * is always valid JSON (the escaper must cope with any bytes).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "common/buf.h"
#include "common/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Generous enough for any re-serialisation of a 1 MiB document. */
#define REPARSE_MAX_BYTES (64u * 1024 * 1024)

/* A getter either succeeds or fails with AAM_E_INVAL and a path-led message. */
static void
check_getter(int rc, const struct aam_json_error *err)
{
	if (rc != AAM_OK && (rc != AAM_E_INVAL || err->msg[0] != '$'))
		abort();
}

static void
exercise_getters(const json_t *j)
{
	static const char *keys[] = {"model", "messages", "a", "n", "stream", "t", ""};
	struct aam_json_error err;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *s = NULL;
		int64_t n = 0;
		bool b = false;
		double d = 0;
		json_t *o = NULL;
		check_getter(aam_json_get_str_max(j, "$", keys[i], AAM_JSON_REQUIRED, 16, &s, &err),
		             &err);
		check_getter(aam_json_get_int64_range(j, "$", keys[i], AAM_JSON_NULLABLE, -5, 5, &n,
		                                      &err),
		             &err);
		check_getter(aam_json_get_bool(j, "$", keys[i], 0, &b, &err), &err);
		check_getter(aam_json_get_double(j, "$", keys[i], AAM_JSON_REQUIRED, &d, &err),
		             &err);
		check_getter(aam_json_get_object(j, "$", keys[i], 0, &o, &err), &err);
		check_getter(aam_json_get_array(j, "$", keys[i], 0, &o, &err), &err);
	}
}

static void
check_document(const uint8_t *data, size_t size, const struct aam_json_limits *lim)
{
	json_t *j = NULL;
	struct aam_json_error err;
	int rc = aam_json_parse(data, size, lim, &j, &err);
	if (rc != AAM_OK) {
		if (j != NULL || err.msg[0] == '\0')
			abort();
		if (rc != AAM_E_PARSE && rc != AAM_E_TOOBIG && rc != AAM_E_NOMEM)
			abort();
		return;
	}
	if (json_is_object(j))
		exercise_getters(j);

	struct aam_buf b;
	aam_buf_init(&b, REPARSE_MAX_BYTES);
	if (aam_json_dump_buf(j, &b, JSON_SORT_KEYS) == AAM_OK) {
		struct aam_json_limits again = *lim;
		again.max_bytes = REPARSE_MAX_BYTES;
		json_t *k = NULL;
		if (aam_json_parse(b.data, b.len, &again, &k, &err) != AAM_OK)
			abort();
		if (!json_equal(j, k))
			abort();
		json_decref(k);
	}
	aam_buf_uninit(&b);
	json_decref(j);
}

static void
check_error_body(const uint8_t *data, size_t size)
{
	/* The message is a C string: stop at the first NUL as callers would. */
	char *msg = malloc(size + 1);
	if (msg == NULL)
		return;
	memcpy(msg, data, size);
	msg[size] = '\0';
	struct aam_buf b;
	aam_buf_init(&b, REPARSE_MAX_BYTES);
	if (aam_json_error_body(&b, "malformed_input", msg) != AAM_OK)
		abort();
	struct aam_json_limits lim = {.max_bytes = REPARSE_MAX_BYTES,
	                              .max_string = REPARSE_MAX_BYTES};
	json_t *j = NULL;
	struct aam_json_error err;
	if (aam_json_parse(b.data, b.len, &lim, &j, &err) != AAM_OK)
		abort();
	json_t *e = NULL;
	const char *m = NULL;
	if (aam_json_get_object(j, NULL, "error", AAM_JSON_REQUIRED, &e, &err) != AAM_OK ||
	    aam_json_get_str(e, "$.error", "message", AAM_JSON_REQUIRED, &m, &err) != AAM_OK)
		abort();
	/* Valid UTF-8 survives unchanged; only invalid bytes are replaced. */
	size_t len = strlen(msg);
	json_t *probe = json_stringn(msg, len);
	if (probe != NULL && strcmp(m, msg) != 0)
		abort();
	json_decref(probe);
	json_decref(j);
	aam_buf_uninit(&b);
	free(msg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct aam_json_limits defaults = {0};
	check_document(data, size, &defaults);
	/* Tight limits reach the string, member and depth checks sooner. */
	struct aam_json_limits tight = {
	        .max_depth = 4, .max_string = 8, .max_members = 4, .allow_nul = true};
	check_document(data, size, &tight);
	check_error_body(data, size);
	return 0;
}
