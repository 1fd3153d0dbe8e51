/*
 * The logger formats a whole line into a stack buffer and writes it with
 * one fwrite under the stdio lock, so lines from threads never interleave.
 */
#include "common/log.h"
#include "aam/err.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOG_LINE_MAX 4096

static _Atomic int log_min_level = -1;
static FILE *_Atomic log_stream;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int
aam_log_parse_level(const char *name, enum aam_log_level *out)
{
	for (int i = 0; i < 4; i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum aam_log_level)i;
			return AAM_OK;
		}
	}
	return AAM_E_INVAL;
}

void
aam_log_set_level(enum aam_log_level level)
{
	atomic_store(&log_min_level, (int)level);
}

void
aam_log_set_stream(FILE *f)
{
	atomic_store(&log_stream, f);
}

static int
current_level(void)
{
	int lvl = atomic_load(&log_min_level);
	if (lvl >= 0)
		return lvl;
	enum aam_log_level parsed = AAM_LOG_INFO;
	const char *env = getenv("AAM_LOG_LEVEL");
	if (env != NULL)
		(void)aam_log_parse_level(env, &parsed);
	atomic_store(&log_min_level, (int)parsed);
	return (int)parsed;
}

struct line {
	char buf[LOG_LINE_MAX];
	size_t len;
	int truncated;
};

static void
line_put(struct line *l, const char *s, size_t n)
{
	/* Keep one byte for the newline. */
	size_t room = sizeof(l->buf) - 1 - l->len;
	if (n > room) {
		n = room;
		l->truncated = 1;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void
line_puts(struct line *l, const char *s)
{
	line_put(l, s, strlen(s));
}

static int
needs_quoting(const char *s)
{
	if (*s == '\0')
		return 1;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f)
			return 1;
	}
	return 0;
}

static void
line_value(struct line *l, const char *s)
{
	if (s == NULL) {
		line_puts(l, "(null)");
		return;
	}
	if (!needs_quoting(s)) {
		line_puts(l, s);
		return;
	}
	line_put(l, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char esc[8];
		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			line_put(l, esc, 2);
		} else if (*p == '\n') {
			line_put(l, "\\n", 2);
		} else if (*p < 0x20 || *p == 0x7f) {
			snprintf(esc, sizeof(esc), "\\x%02x", *p);
			line_put(l, esc, 4);
		} else {
			line_put(l, (const char *)p, 1);
		}
	}
	line_put(l, "\"", 1);
}

/* Keys are programmer-chosen; anything odd is replaced so lines parse. */
static void
line_key(struct line *l, const char *k)
{
	if (k == NULL || *k == '\0') {
		line_puts(l, "_");
		return;
	}
	for (const char *p = k; *p; p++) {
		char c = *p;
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		         (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
		line_put(l, ok ? p : "_", 1);
	}
}

bool
aam_log_enabled(enum aam_log_level level)
{
	return (int)level >= current_level();
}

void
aam_log_emit(enum aam_log_level level, const char *event, const struct aam_log_field *f, size_t n)
{
	if ((int)level < current_level())
		return;
	if ((int)level < 0 || (int)level > 3)
		level = AAM_LOG_ERROR;

	struct line l = {.len = 0};
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char stamp[40];
	int sl = snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ",
	                  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	                  tm.tm_sec, ts.tv_nsec / 1000);
	line_put(&l, stamp, sl > 0 ? (size_t)sl : 0);
	line_puts(&l, " level=");
	line_puts(&l, level_names[level]);
	line_puts(&l, " event=");
	line_value(&l, event);

	for (size_t i = 0; i < n; i++) {
		char num[32];
		if (f[i].kind == AAM_LOG_F_NONE)
			continue;
		line_put(&l, " ", 1);
		line_key(&l, f[i].key);
		line_put(&l, "=", 1);
		switch (f[i].kind) {
		case AAM_LOG_F_STR:
			line_value(&l, f[i].v.s);
			break;
		case AAM_LOG_F_INT:
			snprintf(num, sizeof(num), "%lld", f[i].v.i);
			line_puts(&l, num);
			break;
		case AAM_LOG_F_UINT:
			snprintf(num, sizeof(num), "%llu", f[i].v.u);
			line_puts(&l, num);
			break;
		case AAM_LOG_F_REDACTED:
		default:
			line_puts(&l, "[redacted]");
			break;
		}
	}
	if (l.truncated) {
		/* Make room for the marker by overwriting the tail. */
		static const char mark[] = " truncated=1";
		if (l.len > sizeof(mark))
			l.len = sizeof(l.buf) - 1 - (sizeof(mark) - 1);
		memcpy(l.buf + l.len, mark, sizeof(mark) - 1);
		l.len += sizeof(mark) - 1;
	}
	l.buf[l.len++] = '\n';

	FILE *out = atomic_load(&log_stream);
	if (out == NULL)
		out = stderr;
	flockfile(out);
	fwrite(l.buf, 1, l.len, out);
	fflush(out);
	funlockfile(out);
}

_Noreturn void
aam_fatal(const char *event, const char *msg)
{
	aam_log(AAM_LOG_ERROR, event, AAM_F_STR("message", msg), AAM_F_STR("fatal", "true"));
	exit(1);
}
