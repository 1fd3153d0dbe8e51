/*
 * Structured logging: one line per event on stderr,
 *
 *   2026-11-28T04:30:00.123456Z level=info event=vault.start socket=/run/aam/vault.sock
 *
 * Fields are typed.  There is deliberately no field kind that takes an
 * aam_secret's bytes: AAM_F_SECRET accepts the opaque secret type and
 * always prints "[redacted]", so a secret cannot reach a log by
 * construction.  String values are quoted and escaped when they contain
 * spaces, quotes, '=' or control characters, so a hostile value cannot
 * forge a field or a line.
 */
#ifndef AAM_COMMON_LOG_H
#define AAM_COMMON_LOG_H

#include <stdbool.h>
#include <stdio.h>
#include "common/secret.h"

enum aam_log_level {
	AAM_LOG_DEBUG = 0,
	AAM_LOG_INFO = 1,
	AAM_LOG_WARN = 2,
	AAM_LOG_ERROR = 3,
};

enum aam_log_kind {
	AAM_LOG_F_NONE = 0,
	AAM_LOG_F_STR,
	AAM_LOG_F_INT,
	AAM_LOG_F_UINT,
	AAM_LOG_F_REDACTED,
};

struct aam_log_field {
	const char *key;
	enum aam_log_kind kind;
	union {
		const char *s;
		long long i;
		unsigned long long u;
	} v;
};

#define AAM_F_STR(k, val) ((struct aam_log_field){.key = (k), .kind = AAM_LOG_F_STR, .v.s = (val)})
#define AAM_F_INT(k, val)                                                                          \
	((struct aam_log_field){.key = (k), .kind = AAM_LOG_F_INT, .v.i = (long long)(val)})
#define AAM_F_UINT(k, val)                                                                         \
	((struct aam_log_field){                                                                   \
	        .key = (k), .kind = AAM_LOG_F_UINT, .v.u = (unsigned long long)(val)})
/*
 * Only the type is checked: passing anything but an aam_secret pointer is a
 * compile error (incompatible pointer type under -Werror), and the
 * secret's bytes are never read.
 */
static inline const char *
aam_log_secret_redact(const aam_secret *s)
{
	(void)s;
	return NULL;
}
#define AAM_F_SECRET(k, sec)                                                                       \
	((struct aam_log_field){                                                                   \
	        .key = (k), .kind = AAM_LOG_F_REDACTED, .v.s = aam_log_secret_redact(sec)})
/* An error code, printed as its stable code name. */
#define AAM_F_ERR(val) AAM_F_STR("error", aam_err_code(val))

/*
 * aam_log(LEVEL, "event.name", AAM_F_STR("k", v), ...)
 * The leading NONE element lets the field list be empty.
 */
#define aam_log(level, event, ...)                                                                 \
	aam_log_emit(                                                                              \
	        (level), (event),                                                                  \
	        (const struct aam_log_field[]){{.kind = AAM_LOG_F_NONE}, __VA_ARGS__},             \
	        sizeof((const struct aam_log_field[]){{.kind = AAM_LOG_F_NONE}, __VA_ARGS__}) /    \
	                sizeof(struct aam_log_field))

void aam_log_emit(enum aam_log_level level, const char *event, const struct aam_log_field *f,
                  size_t n);

/* Whether a line of LEVEL would be printed (to skip building costly fields). */
bool aam_log_enabled(enum aam_log_level level);

/* Minimum level printed (default info; AAM_LOG_LEVEL=debug overrides). */
void aam_log_set_level(enum aam_log_level level);
int aam_log_parse_level(const char *name, enum aam_log_level *out);
/* Redirects output (tests); NULL restores stderr. */
void aam_log_set_stream(FILE *f);

/* Logs at error level and exits(1).  Daemons use it only at start-up. */
_Noreturn void aam_fatal(const char *event, const char *msg);

#endif
