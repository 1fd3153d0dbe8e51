/*
 * aam-audit-verify: the offline verifier compliance teams run on an
 * export folder.  It links only libcrypto (plus common/merkle.c and
 * common/note.c compiled in), so a team can build and audit it alone.
 * docs/AUDIT.md is the reference for the formats and the exit codes.
 */
#ifndef AAM_TOOLS_AV_H
#define AAM_TOOLS_AV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/merkle.h"
#include "common/note.h"

/* Verdicts; the value is the process exit code (docs/AUDIT.md). */
enum av_kind {
	AV_OK = 0,
	AV_MODIFIED = 1,
	AV_INSERTED = 2,
	AV_DELETED = 3,
	AV_REORDERED = 4,
	AV_TRUNCATED = 5,
	AV_FORK = 6,
	AV_ROLLBACK = 7,
	AV_BAD_SIGNATURE = 8,
	AV_UNKNOWN_KEY = 9,
	AV_MALFORMED = 10,
	AV_TIME_ORDER = 11,
	AV_UNANCHORED = 12,
	AV_NOT_INCLUDED = 13,
	AV_USAGE = 64,    /* EX_USAGE */
	AV_INTERNAL = 70, /* EX_SOFTWARE: out of memory, broken invariant */
	AV_IO = 74,       /* EX_IOERR: a file exists but cannot be read */
};

const char *av_kind_name(int kind);

#define AV_NO_INDEX UINT64_MAX

struct av_finding {
	int kind;       /* AV_OK when nothing was found */
	uint64_t index; /* leaf index / tree size, or AV_NO_INDEX */
	char detail[512];
};

void av_finding_set(struct av_finding *f, int kind, uint64_t index, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* Limits on untrusted export contents. */
#define AV_MAX_KEYS        8
#define AV_MAX_EXTRA_CP    64
#define AV_RECORD_MAX      (64 * 1024)   /* the vault refuses longer records */
#define AV_LINE_HARD_MAX   (1024 * 1024) /* beyond this a line is not read at all */
#define AV_MANIFEST_MAX    (16 * 1024 * 1024)
#define AV_MANIFEST_LINE   4096
#define AV_PATH_MAX        255
#define AV_MAX_SEGMENTS    100000
#define AV_MAX_CHECKPOINTS 1000000
#define AV_PROOF_FILE_MAX  (AAM_MERKLE_MAX_PROOF * 46 + 1)
#define AV_TIME_LEN        27 /* YYYY-MM-DDTHH:MM:SS.ffffffZ */

struct av_opts {
	const char *pem[AV_MAX_KEYS];
	size_t npem;
	const char *vkey[AV_MAX_KEYS];
	size_t nvkey;
	const char *origin; /* pinned origin, also the key name for --key */
	const char *extra_cp[AV_MAX_EXTRA_CP];
	size_t nextra;
	const char *dir;
	bool quiet;
	/* inclusion */
	const char *checkpoint, *record, *proof;
	uint64_t index;
	bool have_index;
};

/* --- files (export.c) --- */

/*
 * Reads a whole file of at most MAX bytes (NUL-terminated, malloc'd).
 * AAM_E_NOTFOUND, AAM_E_TOOBIG, AAM_E_IO or AAM_E_NOMEM on failure.
 */
int av_read_file(const char *path, size_t max, char **out, size_t *len);
void av_hex(const uint8_t *in, size_t len, char *out);
int av_parse_hex(const char *s, size_t len, uint8_t *out);
/* Decimal without sign or leading zeros, below 2^64. */
int av_parse_u64(const char *s, size_t len, uint64_t *out);

/* Streams the lines of a file, hashing the raw bytes as it goes. */
struct av_lines {
	void *f; /* FILE * */
	char *buf;
	size_t start, end, cap;
	bool eof;
	void *sha; /* EVP_MD_CTX * over every byte read */
	uint64_t lineno;
};
int av_lines_open(struct av_lines *lr, const char *path);
/*
 * Next line without its '\n'.  *HAS_NL is false for a last line that has
 * no newline.  Returns 1 with a line, 0 at end of file, or an AAM error
 * (AAM_E_TOOBIG for a line over AV_LINE_HARD_MAX).
 */
int av_lines_next(struct av_lines *lr, const char **line, size_t *len, bool *has_nl);
/* Finishes the file hash (call after the last line) and closes. */
int av_lines_close(struct av_lines *lr, uint8_t sha256[32]);

/* The export's manifest (docs/AUDIT.md, "manifest"). */
struct av_file {
	char path[AV_PATH_MAX + 1];
	uint64_t records; /* segments only */
	uint8_t sha256[32];
};

struct av_manifest {
	char origin[AAM_NOTE_ORIGIN_MAX + 1];
	uint64_t records, first_seq;
	uint8_t prefix[AAM_MERKLE_MAX_LEVELS][AAM_MERKLE_HASH_LEN];
	unsigned nprefix;
	struct av_file *segments;
	size_t nsegments;
	struct av_file leaves;
	bool have_leaves;
	struct av_file *checkpoints;
	size_t ncheckpoints;
	struct av_file keys[2];
	size_t nkeys;
};

int av_manifest_load(const char *dir, struct av_manifest *m, struct av_finding *f);
void av_manifest_free(struct av_manifest *m);

/* --- records (jcs.c) --- */

struct av_record {
	uint64_t seq;
	char time[AV_TIME_LEN + 1];
};

/*
 * Checks that LINE is one canonical (RFC 8785) JSON object and extracts
 * its top-level `seq` and `time`.  Returns true, or false with *WHY set.
 */
bool av_jcs_record(const char *line, size_t len, struct av_record *r, const char **why);

/* --- keys and checkpoints (keys.c) --- */

struct av_keys {
	struct aam_note_verifier v[2 * AV_MAX_KEYS];
	size_t n;
};

/* Loads --key (named PEM_NAME) and --vkey verifiers; AV_OK or a kind with F set. */
int av_keys_load(const struct av_opts *o, const char *pem_name, struct av_keys *k,
                 struct av_finding *f);
void av_keys_free(struct av_keys *k);
/* Maps an aam_note_verify/open error to a verdict kind. */
int av_note_error_kind(int rc);

/* --- commands --- */

int av_verify_export(const struct av_opts *o, struct av_finding *f);
int av_verify_inclusion(const struct av_opts *o, struct av_finding *f);

#endif /* AAM_TOOLS_AV_H */
