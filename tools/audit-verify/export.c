/*
 * Reading an export folder: whole small files, streamed line files with
 * their SHA-256, and the manifest (docs/AUDIT.md, "Export layout").
 * Everything here is untrusted input: sizes are bounded and every
 * deviation from the format is reported, never guessed around.
 */
#include "av.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "aam/err.h"

void
av_finding_set(struct av_finding *f, int kind, uint64_t index, const char *fmt, ...)
{
	f->kind = kind;
	f->index = index;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->detail, sizeof(f->detail), fmt, ap);
	va_end(ap);
}

int
av_read_file(const char *path, size_t max, char **out, size_t *len)
{
	*out = NULL;
	FILE *fp = fopen(path, "rb");
	if (fp == NULL)
		return errno == ENOENT ? AAM_E_NOTFOUND : AAM_E_IO;
	char *buf = malloc(max + 2);
	if (buf == NULL) {
		fclose(fp);
		return AAM_E_NOMEM;
	}
	size_t n = fread(buf, 1, max + 1, fp);
	int err = ferror(fp);
	fclose(fp);
	if (err) {
		free(buf);
		return AAM_E_IO;
	}
	if (n > max) {
		free(buf);
		return AAM_E_TOOBIG;
	}
	buf[n] = '\0';
	*out = buf;
	if (len != NULL)
		*len = n;
	return AAM_OK;
}

void
av_hex(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Lowercase hex of exactly LEN/2 bytes. */
int
av_parse_hex(const char *s, size_t len, uint8_t *out)
{
	if (len % 2 != 0)
		return AAM_E_PARSE;
	for (size_t i = 0; i < len; i += 2) {
		int hi = hexval(s[i]), lo = hexval(s[i + 1]);
		if (hi < 0 || lo < 0)
			return AAM_E_PARSE;
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	return AAM_OK;
}

int
av_parse_u64(const char *s, size_t len, uint64_t *out)
{
	if (len == 0 || len > 20 || (len > 1 && s[0] == '0'))
		return AAM_E_PARSE;
	uint64_t v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return AAM_E_PARSE;
		uint64_t d = (uint64_t)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return AAM_E_PARSE;
		v = v * 10 + d;
	}
	*out = v;
	return AAM_OK;
}

/* --- line streaming ----------------------------------------------------- */

#define LINES_INITIAL_CAP (256 * 1024)

int
av_lines_open(struct av_lines *lr, const char *path)
{
	memset(lr, 0, sizeof(*lr));
	FILE *fp = fopen(path, "rb");
	if (fp == NULL)
		return errno == ENOENT ? AAM_E_NOTFOUND : AAM_E_IO;
	lr->buf = malloc(LINES_INITIAL_CAP);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (lr->buf == NULL || md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		free(lr->buf);
		EVP_MD_CTX_free(md);
		fclose(fp);
		lr->buf = NULL;
		return AAM_E_NOMEM;
	}
	lr->f = fp;
	lr->sha = md;
	lr->cap = LINES_INITIAL_CAP;
	return AAM_OK;
}

int
av_lines_next(struct av_lines *lr, const char **line, size_t *len, bool *has_nl)
{
	for (;;) {
		char *nl = memchr(lr->buf + lr->start, '\n', lr->end - lr->start);
		if (nl != NULL) {
			*line = lr->buf + lr->start;
			*len = (size_t)(nl - *line);
			*has_nl = true;
			lr->start = (size_t)(nl - lr->buf) + 1;
			lr->lineno++;
			return 1;
		}
		if (lr->end - lr->start > AV_LINE_HARD_MAX)
			return AAM_E_TOOBIG;
		if (lr->eof) {
			if (lr->start == lr->end)
				return 0;
			*line = lr->buf + lr->start;
			*len = lr->end - lr->start;
			*has_nl = false;
			lr->start = lr->end;
			lr->lineno++;
			return 1;
		}
		if (lr->start > 0) {
			memmove(lr->buf, lr->buf + lr->start, lr->end - lr->start);
			lr->end -= lr->start;
			lr->start = 0;
		}
		if (lr->end == lr->cap) {
			size_t ncap = lr->cap * 2;
			char *nb = realloc(lr->buf, ncap);
			if (nb == NULL)
				return AAM_E_NOMEM;
			lr->buf = nb;
			lr->cap = ncap;
		}
		size_t n = fread(lr->buf + lr->end, 1, lr->cap - lr->end, lr->f);
		if (n > 0 && EVP_DigestUpdate(lr->sha, lr->buf + lr->end, n) != 1)
			return AAM_E_CRYPTO;
		lr->end += n;
		if (n == 0) {
			if (ferror((FILE *)lr->f))
				return AAM_E_IO;
			lr->eof = true;
		}
	}
}

int
av_lines_close(struct av_lines *lr, uint8_t sha256[32])
{
	int rc = AAM_OK;
	if (sha256 != NULL && lr->sha != NULL) {
		/* Hash whatever was not read, so the digest covers the whole file. */
		char tmp[65536];
		size_t n;
		while (lr->f != NULL && (n = fread(tmp, 1, sizeof(tmp), lr->f)) > 0)
			EVP_DigestUpdate(lr->sha, tmp, n);
		unsigned int outlen = 0;
		if (EVP_DigestFinal_ex(lr->sha, sha256, &outlen) != 1 || outlen != 32)
			rc = AAM_E_CRYPTO;
	}
	if (lr->f != NULL)
		fclose(lr->f);
	EVP_MD_CTX_free(lr->sha);
	free(lr->buf);
	memset(lr, 0, sizeof(*lr));
	return rc;
}

/* --- manifest ------------------------------------------------------------ */

/* Relative path of safe characters with no "." / ".." segment and no empty segment. */
static bool
path_safe(const char *p, size_t len)
{
	if (len == 0 || len > AV_PATH_MAX || p[0] == '/' || p[len - 1] == '/')
		return false;
	size_t seg = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || p[i] == '/') {
			if (seg == 0)
				return false;
			const char *s = p + i - seg;
			if ((seg == 1 && s[0] == '.') || (seg == 2 && s[0] == '.' && s[1] == '.'))
				return false;
			seg = 0;
			continue;
		}
		char c = p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
		seg++;
	}
	return true;
}

static bool
all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return n > 0;
}

/* "records/NNNNNNNNNNNN.jsonl" */
static bool
segment_path_ok(const char *p, size_t len)
{
	return len == 8 + 12 + 6 && memcmp(p, "records/", 8) == 0 && all_digits(p + 8, 12) &&
	       memcmp(p + 20, ".jsonl", 6) == 0;
}

/* "checkpoints/<size>" or "checkpoints/<size>.<suffix>" */
static bool
checkpoint_path_ok(const char *p, size_t len)
{
	if (len <= 12 || memcmp(p, "checkpoints/", 12) != 0)
		return false;
	const char *name = p + 12;
	size_t n = len - 12;
	const char *dot = memchr(name, '.', n);
	size_t digits = dot != NULL ? (size_t)(dot - name) : n;
	uint64_t size;
	if (av_parse_u64(name, digits, &size) != AAM_OK)
		return false;
	return dot == NULL || (size_t)(dot - name) + 1 < n;
}

struct mline {
	const char *kw;
	size_t kwlen;
	const char *arg[3];
	size_t arglen[3];
	size_t nargs;
};

/* Splits "keyword arg arg..." on single spaces. */
static bool
split_line(const char *line, size_t len, struct mline *ml)
{
	memset(ml, 0, sizeof(*ml));
	const char *p = line, *end = line + len;
	const char *sp = memchr(p, ' ', len);
	ml->kw = p;
	ml->kwlen = sp != NULL ? (size_t)(sp - p) : len;
	if (ml->kwlen == 0)
		return false;
	p = sp != NULL ? sp + 1 : end;
	while (sp != NULL) {
		if (ml->nargs == 3)
			return false;
		sp = memchr(p, ' ', (size_t)(end - p));
		size_t alen = sp != NULL ? (size_t)(sp - p) : (size_t)(end - p);
		if (alen == 0)
			return false; /* double or trailing space */
		ml->arg[ml->nargs] = p;
		ml->arglen[ml->nargs] = alen;
		ml->nargs++;
		p = sp != NULL ? sp + 1 : end;
	}
	return true;
}

static bool
kw_is(const struct mline *ml, const char *kw, size_t nargs)
{
	return ml->kwlen == strlen(kw) && memcmp(ml->kw, kw, ml->kwlen) == 0 && ml->nargs == nargs;
}

/* Fills F from "<path> [<records>] <sha256 hex>". */
static int
parse_file(const struct mline *ml, bool with_count, struct av_file *f)
{
	memset(f, 0, sizeof(*f));
	memcpy(f->path, ml->arg[0], ml->arglen[0]);
	size_t hi = with_count ? 2 : 1;
	if (with_count && av_parse_u64(ml->arg[1], ml->arglen[1], &f->records) != AAM_OK)
		return AAM_E_PARSE;
	if (ml->arglen[hi] != 64 || av_parse_hex(ml->arg[hi], 64, f->sha256) != AAM_OK)
		return AAM_E_PARSE;
	return AAM_OK;
}

/* Appends a parsed file line to a growable list of at most MAX entries. */
static int
add_file(struct av_file **list, size_t *n, size_t max, const struct mline *ml, bool with_count)
{
	if (*n >= max)
		return AAM_E_TOOBIG;
	if (*n % 64 == 0) {
		struct av_file *nl = realloc(*list, (*n + 64) * sizeof(**list));
		if (nl == NULL)
			return AAM_E_NOMEM;
		*list = nl;
	}
	int rc = parse_file(ml, with_count, &(*list)[*n]);
	if (rc == AAM_OK)
		(*n)++;
	return rc;
}

/*
 * An origin is printed and compared, never interpreted: refuse control
 * characters so it cannot rewrite the terminal it is printed on.
 */
static bool
origin_chars_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c == 0x7f)
			return false;
	}
	return n > 0;
}

enum mstate { M_HEADER, M_ORIGIN, M_RECORDS, M_FIRST, M_LAST, M_BODY };

int
av_manifest_load(const char *dir, struct av_manifest *m, struct av_finding *f)
{
	memset(m, 0, sizeof(*m));
	char path[4096];
	snprintf(path, sizeof(path), "%s/manifest", dir);
	char *text;
	size_t len;
	int rc = av_read_file(path, AV_MANIFEST_MAX, &text, &len);
	if (rc == AAM_E_NOTFOUND || rc == AAM_E_TOOBIG) {
		av_finding_set(f, AV_MALFORMED, AV_NO_INDEX, "manifest: %s",
		               rc == AAM_E_NOTFOUND ? "missing" : "larger than 16 MiB");
		return AV_MALFORMED;
	}
	if (rc != AAM_OK) {
		av_finding_set(f, rc == AAM_E_NOMEM ? AV_INTERNAL : AV_IO, AV_NO_INDEX,
		               "manifest: cannot read");
		return f->kind;
	}

	enum mstate st = M_HEADER;
	/* Section order: prefix, segment, leaves, checkpoint, key. */
	int section = 0;
	uint64_t last_seq = 0, seg_total = 0;
	bool last_none = false;
	size_t off = 0, lineno = 0;
	const char *err = NULL;
	while (err == NULL && off < len) {
		lineno++;
		const char *line = text + off;
		const char *nl = memchr(line, '\n', len - off);
		if (nl == NULL) {
			err = "last line has no newline";
			break;
		}
		size_t llen = (size_t)(nl - line);
		off += llen + 1;
		struct mline ml;
		if (llen > AV_MANIFEST_LINE || !split_line(line, llen, &ml)) {
			err = "not a keyword followed by single-space-separated values";
			break;
		}
		switch (st) {
		case M_HEADER:
			if (!kw_is(&ml, "aam-audit-export", 1) || ml.arglen[0] != 1 ||
			    ml.arg[0][0] != '1')
				err = "first line is not \"aam-audit-export 1\"";
			st = M_ORIGIN;
			continue;
		case M_ORIGIN:
			if (!kw_is(&ml, "origin", 1) || ml.arglen[0] > AAM_NOTE_ORIGIN_MAX ||
			    !origin_chars_ok(ml.arg[0], ml.arglen[0])) {
				err = "second line is not \"origin <origin>\"";
			} else {
				memcpy(m->origin, ml.arg[0], ml.arglen[0]);
				m->origin[ml.arglen[0]] = '\0';
			}
			st = M_RECORDS;
			continue;
		case M_RECORDS:
			if (!kw_is(&ml, "records", 1) ||
			    av_parse_u64(ml.arg[0], ml.arglen[0], &m->records) != AAM_OK)
				err = "third line is not \"records <count>\"";
			st = M_FIRST;
			continue;
		case M_FIRST:
			if (!kw_is(&ml, "first-seq", 1) ||
			    av_parse_u64(ml.arg[0], ml.arglen[0], &m->first_seq) != AAM_OK)
				err = "fourth line is not \"first-seq <seq>\"";
			st = M_LAST;
			continue;
		case M_LAST:
			if (!kw_is(&ml, "last-seq", 1))
				err = "fifth line is not \"last-seq <seq|->\"";
			else if (ml.arglen[0] == 1 && ml.arg[0][0] == '-')
				last_none = true;
			else if (av_parse_u64(ml.arg[0], ml.arglen[0], &last_seq) != AAM_OK)
				err = "last-seq is not a number or \"-\"";
			st = M_BODY;
			continue;
		case M_BODY:
			break;
		}
		int want;
		if (kw_is(&ml, "prefix", 1))
			want = 0;
		else if (kw_is(&ml, "segment", 3))
			want = 1;
		else if (kw_is(&ml, "leaves", 2))
			want = 2;
		else if (kw_is(&ml, "checkpoint", 2))
			want = 3;
		else if (kw_is(&ml, "key", 2))
			want = 4;
		else {
			err = "unknown keyword or wrong number of values";
			break;
		}
		if (want < section) {
			err = "lines out of order (prefix, segment, leaves, checkpoint, key)";
			break;
		}
		section = want;
		if (want > 0 && !path_safe(ml.arg[0], ml.arglen[0])) {
			err = "file path is not a safe relative path";
			break;
		}
		switch (want) {
		case 0: {
			size_t n = 0;
			if (m->nprefix >= AAM_MERKLE_MAX_LEVELS ||
			    aam_note_b64_decode(ml.arg[0], ml.arglen[0], m->prefix[m->nprefix],
			                        AAM_MERKLE_HASH_LEN, &n) != AAM_OK ||
			    n != AAM_MERKLE_HASH_LEN)
				err = "prefix is not the base64 of a 32-byte hash";
			else
				m->nprefix++;
			break;
		}
		case 1:
			if (!segment_path_ok(ml.arg[0], ml.arglen[0]))
				err = "segment path is not records/<12 digits>.jsonl";
			else if ((rc = add_file(&m->segments, &m->nsegments, AV_MAX_SEGMENTS, &ml,
			                        true)) != AAM_OK)
				err = rc == AAM_E_TOOBIG
				              ? "too many segments"
				              : "segment needs <path> <records> <sha256 hex>";
			else if (m->segments[m->nsegments - 1].records > UINT64_MAX - seg_total)
				err = "segment record counts overflow";
			else
				seg_total += m->segments[m->nsegments - 1].records;
			break;
		case 2:
			if (m->have_leaves || ml.arglen[0] != 6 ||
			    memcmp(ml.arg[0], "leaves", 6) != 0) {
				err = "leaves must be one line naming the file \"leaves\"";
			} else if (parse_file(&ml, false, &m->leaves) != AAM_OK) {
				err = "leaves needs <path> <sha256 hex>";
			} else {
				m->have_leaves = true;
			}
			break;
		case 3:
			if (!checkpoint_path_ok(ml.arg[0], ml.arglen[0]))
				err = "checkpoint path is not checkpoints/<size>[.<suffix>]";
			else if (add_file(&m->checkpoints, &m->ncheckpoints, AV_MAX_CHECKPOINTS,
			                  &ml, false) != AAM_OK)
				err = "checkpoint needs <path> <sha256 hex> (and at most 10^6 of "
				      "them)";
			break;
		default: {
			bool pem = ml.arglen[0] == 7 && memcmp(ml.arg[0], "key.pem", 7) == 0;
			bool vk = ml.arglen[0] == 8 && memcmp(ml.arg[0], "key.vkey", 8) == 0;
			if ((!pem && !vk) || m->nkeys >= 2 ||
			    parse_file(&ml, false, &m->keys[m->nkeys]) != AAM_OK)
				err = "key must name key.pem or key.vkey with its sha256";
			else
				m->nkeys++;
			break;
		}
		}
	}
	if (err == NULL && st != M_BODY)
		err = "manifest ends before its header lines";
	if (err == NULL && m->nprefix != (unsigned)__builtin_popcountll(m->first_seq))
		err = "prefix needs one hash per set bit of first-seq";
	if (err == NULL && seg_total != m->records)
		err = "segment record counts do not add up to records";
	if (err == NULL && m->records > 0 &&
	    (last_none || m->first_seq > UINT64_MAX - m->records ||
	     last_seq != m->first_seq + m->records - 1))
		err = "last-seq is not first-seq + records - 1";
	if (err == NULL && m->records == 0 && !last_none)
		err = "last-seq must be \"-\" when records is 0";
	free(text);
	if (err != NULL) {
		av_finding_set(f, AV_MALFORMED, AV_NO_INDEX, "manifest line %zu: %s", lineno, err);
		av_manifest_free(m);
		return AV_MALFORMED;
	}
	return AV_OK;
}

void
av_manifest_free(struct av_manifest *m)
{
	free(m->segments);
	free(m->checkpoints);
	memset(m, 0, sizeof(*m));
}
