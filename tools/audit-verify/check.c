/*
 * Verifying an export folder (docs/AUDIT.md, "What the verifier checks").
 *
 * 1. Every checkpoint file is opened against the pinned keys only; forks
 *    (two good checkpoints of one size with different roots) are found.
 * 2. The records are streamed once: leaf hash, canonical-JSON scan, seq
 *    and time checks.  The tree is recomputed from the manifest's prefix
 *    plus these leaves and compared with every good checkpoint.
 * 3. If a checkpoint does not match, the first bad index and its kind are
 *    worked out from the authenticated leaf-hash file (when it matches the
 *    signed roots) or else from the seq numbers.
 *
 * The reported verdict is the finding with the smallest index; findings
 * about the manifest itself (an unsigned table of contents) only count
 * when the signed evidence shows nothing wrong.
 */
#include "av.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "aam/err.h"

#define HLEN AAM_MERKLE_HASH_LEN

enum { F_PARSE = 1, F_TIME_BACK = 2 };
#define SEQ_UNKNOWN   UINT64_MAX
#define MAX_PARSE_WHY 1024

struct cp {
	char path[4096]; /* as displayed */
	uint64_t size;
	uint8_t root[HLEN];
	bool listed; /* named by the manifest */
	bool good;   /* signature and form verified */
	bool in_fork;
	/* comparison with the recomputed trees */
	bool r_reach, r_match, l_reach, l_match;
};

struct ctx {
	const struct av_opts *o;
	struct av_manifest m;
	struct av_keys keys;
	struct cp *cps;
	size_t ncps;

	uint64_t first;
	size_t n, cap;
	uint8_t (*R)[HLEN];
	uint64_t *seq;
	uint8_t *flags;
	struct {
		size_t pos;
		const char *why;
	} parse_why[MAX_PARSE_WHY];
	size_t nparse_why;

	uint8_t (*L)[HLEN];
	size_t nl;

	struct av_finding strong;
	struct av_finding weak;
	int weak_rank;
};

/* --- findings ----------------------------------------------------------- */

static void strong(struct ctx *c, int kind, uint64_t index, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static void
strong(struct ctx *c, int kind, uint64_t index, const char *fmt, ...)
{
	if (c->strong.kind != AV_OK && c->strong.index <= index)
		return;
	c->strong.kind = kind;
	c->strong.index = index;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->strong.detail, sizeof(c->strong.detail), fmt, ap);
	va_end(ap);
}

/* Manifest-level findings: RANK orders them (lower wins), first one kept per rank. */
static void weak(struct ctx *c, int rank, int kind, uint64_t index, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));

static void
weak(struct ctx *c, int rank, int kind, uint64_t index, const char *fmt, ...)
{
	if (c->weak.kind != AV_OK && c->weak_rank <= rank)
		return;
	c->weak_rank = rank;
	c->weak.kind = kind;
	c->weak.index = index;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->weak.detail, sizeof(c->weak.detail), fmt, ap);
	va_end(ap);
}

static void note(const struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
note(const struct ctx *c, const char *fmt, ...)
{
	if (c->o->quiet)
		return;
	va_list ap;
	va_start(ap, fmt);
	fputs("aam-audit-verify: note: ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	va_end(ap);
}

/* --- checkpoints --------------------------------------------------------- */

/* DIR/REL into OUT; false (and an empty OUT) when it does not fit. */
static bool
join(char *out, size_t cap, const char *dir, const char *rel)
{
	int n = snprintf(out, cap, "%s/%s", dir, rel);
	if (n < 0 || (size_t)n >= cap) {
		out[0] = '\0';
		return false;
	}
	return true;
}

static struct cp *
add_cp(struct ctx *c, const char *path)
{
	for (size_t i = 0; i < c->ncps; i++)
		if (strcmp(c->cps[i].path, path) == 0)
			return &c->cps[i];
	if (c->ncps >= AV_MAX_CHECKPOINTS + AV_MAX_EXTRA_CP)
		return NULL;
	if (c->ncps % 64 == 0) {
		struct cp *n = realloc(c->cps, (c->ncps + 64) * sizeof(*n));
		if (n == NULL)
			return NULL;
		c->cps = n;
	}
	struct cp *cp = &c->cps[c->ncps++];
	memset(cp, 0, sizeof(*cp));
	snprintf(cp->path, sizeof(cp->path), "%s", path);
	cp->size = AV_NO_INDEX;
	return cp;
}

/* Size a checkpoint claims in its (unverified) text, for reporting only. */
static uint64_t
claimed_size(const char *note_text, size_t len)
{
	const char *split = NULL;
	for (size_t i = len; i >= 2; i--)
		if (note_text[i - 1] == '\n' && note_text[i - 2] == '\n') {
			split = note_text + i - 2;
			break;
		}
	if (split == NULL)
		return AV_NO_INDEX;
	struct aam_note_checkpoint cp;
	if (aam_note_checkpoint_parse(note_text, (size_t)(split - note_text) + 1, &cp, NULL) !=
	    AAM_OK)
		return AV_NO_INDEX;
	return cp.size;
}

/* Size named by checkpoints/<size>[.<suffix>], or AV_NO_INDEX. */
static uint64_t
name_size(const char *rel)
{
	const char *name = strrchr(rel, '/');
	name = name != NULL ? name + 1 : rel;
	size_t digits = strspn(name, "0123456789");
	uint64_t v;
	if (av_parse_u64(name, digits, &v) != AAM_OK ||
	    (name[digits] != '\0' && name[digits] != '.'))
		return AV_NO_INDEX;
	return v;
}

static int
open_cp(struct ctx *c, struct cp *cp, const char *fs_path, bool in_export, const uint8_t *want_sha)
{
	char *text;
	size_t len;
	int rc = av_read_file(fs_path, AAM_NOTE_MAX_LEN, &text, &len);
	uint64_t nsize = in_export ? name_size(cp->path) : AV_NO_INDEX;
	if (rc == AAM_E_NOTFOUND) {
		if (in_export)
			weak(c, 3, AV_MALFORMED, nsize, "%s: listed in the manifest but missing",
			     cp->path);
		else
			strong(c, AV_USAGE, AV_NO_INDEX, "%s: no such checkpoint file", cp->path);
		return AV_OK;
	}
	if (rc == AAM_E_TOOBIG) {
		strong(c, AV_MALFORMED, nsize, "%s: checkpoint larger than 16 KiB", cp->path);
		return AV_OK;
	}
	if (rc != AAM_OK)
		return rc == AAM_E_NOMEM ? AV_INTERNAL : AV_IO;

	if (want_sha != NULL) {
		uint8_t got[HLEN];
		if (EVP_Digest(text, len, got, NULL, EVP_sha256(), NULL) != 1 ||
		    memcmp(got, want_sha, HLEN) != 0)
			weak(c, 3, AV_MALFORMED, nsize, "%s: SHA-256 differs from the manifest",
			     cp->path);
	}

	struct aam_note_checkpoint body;
	const char *why = "invalid";
	rc = aam_note_checkpoint_open(text, len, c->keys.v, c->keys.n, &body, &why);
	uint64_t shown = nsize != AV_NO_INDEX ? nsize : claimed_size(text, len);
	free(text);
	int kind = av_note_error_kind(rc);
	if (kind == AV_INTERNAL)
		return kind;
	if (kind != AV_OK) {
		strong(c, kind, shown, "%s: %s", cp->path, why);
		return AV_OK;
	}
	if (strcmp(body.origin, c->m.origin) != 0) {
		strong(c, AV_MALFORMED, body.size, "%s: origin \"%s\" is not the export's \"%s\"",
		       cp->path, body.origin, c->m.origin);
		return AV_OK;
	}
	if (in_export && nsize != body.size) {
		strong(c, AV_MALFORMED, body.size, "%s: file name does not match tree size %llu",
		       cp->path, (unsigned long long)body.size);
		return AV_OK;
	}
	cp->good = true;
	cp->size = body.size;
	memcpy(cp->root, body.root, HLEN);
	return AV_OK;
}

static int
cmp_cp(const void *a, const void *b)
{
	const struct cp *x = a, *y = b;
	if (x->good != y->good)
		return x->good ? -1 : 1;
	if (x->size != y->size)
		return x->size < y->size ? -1 : 1;
	return strcmp(x->path, y->path);
}

static int
load_checkpoints(struct ctx *c)
{
	char path[4096];
	/* Manifest-listed files, then anything else in checkpoints/, then extras. */
	for (size_t i = 0; i < c->m.ncheckpoints; i++) {
		struct cp *cp = add_cp(c, c->m.checkpoints[i].path);
		if (cp == NULL)
			return AV_INTERNAL;
		cp->listed = true;
		join(path, sizeof(path), c->o->dir, cp->path);
		int rc = open_cp(c, cp, path, true, c->m.checkpoints[i].sha256);
		if (rc != AV_OK)
			return rc;
	}
	join(path, sizeof(path), c->o->dir, "checkpoints");
	DIR *d = opendir(path);
	if (d != NULL) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			char rel[512];
			snprintf(rel, sizeof(rel), "checkpoints/%.400s", e->d_name);
			bool known = false;
			for (size_t i = 0; i < c->ncps; i++)
				known = known || strcmp(c->cps[i].path, rel) == 0;
			if (known)
				continue;
			if (name_size(rel) == AV_NO_INDEX) {
				weak(c, 3, AV_MALFORMED, AV_NO_INDEX,
				     "%s: not a checkpoint name (checkpoints/<size>[.<suffix>])",
				     rel);
				continue;
			}
			struct cp *cp = add_cp(c, rel);
			if (cp == NULL) {
				closedir(d);
				return AV_INTERNAL;
			}
			join(path, sizeof(path), c->o->dir, rel);
			note(c, "%s is not listed in the manifest; verifying it anyway", rel);
			int rc = open_cp(c, cp, path, true, NULL);
			if (rc != AV_OK) {
				closedir(d);
				return rc;
			}
		}
		closedir(d);
	}
	for (size_t i = 0; i < c->o->nextra; i++) {
		struct cp *cp = add_cp(c, c->o->extra_cp[i]);
		if (cp == NULL)
			return AV_INTERNAL;
		int rc = open_cp(c, cp, c->o->extra_cp[i], false, NULL);
		if (rc != AV_OK)
			return rc;
	}
	qsort(c->cps, c->ncps, sizeof(*c->cps), cmp_cp);

	/* Two good checkpoints of one size with different roots: the signer forked. */
	for (size_t i = 0; i < c->ncps && c->cps[i].good; i++) {
		for (size_t j = i + 1;
		     j < c->ncps && c->cps[j].good && c->cps[j].size == c->cps[i].size; j++) {
			if (memcmp(c->cps[i].root, c->cps[j].root, HLEN) != 0) {
				c->cps[i].in_fork = c->cps[j].in_fork = true;
				strong(c, AV_FORK, c->cps[i].size,
				       "%s and %s are both validly signed for tree size %llu but "
				       "have "
				       "different roots",
				       c->cps[i].path, c->cps[j].path,
				       (unsigned long long)c->cps[i].size);
			}
		}
	}
	return AV_OK;
}

/* --- records ------------------------------------------------------------- */

static int
grow_records(struct ctx *c)
{
	if (c->n < c->cap)
		return AV_OK;
	size_t ncap = c->cap ? c->cap * 2 : 4096;
	void *r = realloc(c->R, ncap * HLEN);
	if (r == NULL)
		return AV_INTERNAL;
	c->R = r;
	void *s = realloc(c->seq, ncap * sizeof(*c->seq));
	if (s == NULL)
		return AV_INTERNAL;
	c->seq = s;
	void *f = realloc(c->flags, ncap);
	if (f == NULL)
		return AV_INTERNAL;
	c->flags = f;
	c->cap = ncap;
	return AV_OK;
}

static void
parse_error(struct ctx *c, size_t pos, const char *why)
{
	c->flags[pos] |= F_PARSE;
	if (c->nparse_why < MAX_PARSE_WHY) {
		c->parse_why[c->nparse_why].pos = pos;
		c->parse_why[c->nparse_why].why = why;
		c->nparse_why++;
	}
}

static const char *
why_at(const struct ctx *c, size_t pos)
{
	for (size_t i = 0; i < c->nparse_why; i++)
		if (c->parse_why[i].pos == pos)
			return c->parse_why[i].why;
	return "not a canonical JSON record";
}

static int
read_records(struct ctx *c)
{
	char path[4096];
	char prev_time[AV_TIME_LEN + 1] = "";
	for (size_t s = 0; s < c->m.nsegments; s++) {
		const struct av_file *seg = &c->m.segments[s];
		join(path, sizeof(path), c->o->dir, seg->path);
		struct av_lines lr;
		int rc = av_lines_open(&lr, path);
		if (rc == AAM_E_NOTFOUND) {
			weak(c, 2, AV_MALFORMED, c->first + c->n,
			     "%s: listed in the manifest but missing", seg->path);
			continue;
		}
		if (rc != AAM_OK)
			return rc == AAM_E_NOMEM ? AV_INTERNAL : AV_IO;
		uint64_t count = 0;
		const char *line;
		size_t len;
		bool has_nl;
		while ((rc = av_lines_next(&lr, &line, &len, &has_nl)) == 1) {
			if (grow_records(c) != AV_OK) {
				av_lines_close(&lr, NULL);
				return AV_INTERNAL;
			}
			size_t pos = c->n++;
			count++;
			c->flags[pos] = 0;
			c->seq[pos] = SEQ_UNKNOWN;
			if (aam_merkle_leaf_hash(line, len, c->R[pos]) != AAM_OK) {
				av_lines_close(&lr, NULL);
				return AV_INTERNAL;
			}
			struct av_record r;
			const char *why;
			if (!has_nl) {
				parse_error(c, pos, "last line of the segment has no newline");
			} else if (len > AV_RECORD_MAX) {
				parse_error(c, pos, "record is larger than 64 KiB");
			} else if (!av_jcs_record(line, len, &r, &why)) {
				parse_error(c, pos, why);
			} else {
				c->seq[pos] = r.seq;
				if (prev_time[0] != '\0' && strcmp(r.time, prev_time) < 0)
					c->flags[pos] |= F_TIME_BACK;
				memcpy(prev_time, r.time, sizeof(prev_time));
			}
		}
		if (rc == AAM_E_TOOBIG) {
			strong(c, AV_MALFORMED, c->first + c->n,
			       "%s line %llu: longer than 1 MiB; the rest of the segment is not "
			       "read",
			       seg->path, (unsigned long long)lr.lineno + 1);
			av_lines_close(&lr, NULL);
			continue;
		}
		uint8_t sha[HLEN];
		int crc = av_lines_close(&lr, sha);
		if (rc < 0 || crc != AAM_OK)
			return rc == AAM_E_NOMEM ? AV_INTERNAL : AV_IO;
		if (rc != 0)
			return AV_IO;
		if (count != seg->records)
			weak(c, 2, AV_MALFORMED, c->first + c->n - count,
			     "%s: %llu records, the manifest says %llu", seg->path,
			     (unsigned long long)count, (unsigned long long)seg->records);
		else if (memcmp(sha, seg->sha256, HLEN) != 0)
			weak(c, 2, AV_MALFORMED, c->first + c->n - count,
			     "%s: SHA-256 differs from the manifest", seg->path);
	}
	if (c->n < c->m.records)
		weak(c, 1, AV_TRUNCATED, c->first + c->n,
		     "the manifest lists %llu records but only %zu are present",
		     (unsigned long long)c->m.records, c->n);
	else if (c->n > c->m.records)
		weak(c, 2, AV_MALFORMED, c->first + c->m.records,
		     "%zu records present but the manifest lists %llu", c->n,
		     (unsigned long long)c->m.records);
	return AV_OK;
}

/* The optional leaf-hash file: one lowercase hex leaf hash per record. */
static int
read_leaves(struct ctx *c)
{
	if (!c->m.have_leaves) {
		note(c, "the export has no leaves file: a modified record is located only to the "
		        "checkpoint interval it is in");
		return AV_OK;
	}
	char path[4096];
	join(path, sizeof(path), c->o->dir, c->m.leaves.path);
	struct av_lines lr;
	int rc = av_lines_open(&lr, path);
	if (rc == AAM_E_NOTFOUND) {
		weak(c, 3, AV_MALFORMED, AV_NO_INDEX, "leaves: listed in the manifest but missing");
		return AV_OK;
	}
	if (rc != AAM_OK)
		return rc == AAM_E_NOMEM ? AV_INTERNAL : AV_IO;
	size_t cap = 0;
	const char *line;
	size_t len;
	bool has_nl;
	while ((rc = av_lines_next(&lr, &line, &len, &has_nl)) == 1) {
		if (!has_nl || len != 2 * HLEN) {
			rc = AAM_E_PARSE;
			break;
		}
		if (c->nl == cap) {
			cap = cap ? cap * 2 : 4096;
			void *nb = realloc(c->L, cap * HLEN);
			if (nb == NULL) {
				av_lines_close(&lr, NULL);
				return AV_INTERNAL;
			}
			c->L = nb;
		}
		if (av_parse_hex(line, len, c->L[c->nl]) != AAM_OK) {
			rc = AAM_E_PARSE;
			break;
		}
		c->nl++;
	}
	uint8_t sha[HLEN];
	int crc = av_lines_close(&lr, sha);
	if (rc == AAM_E_NOMEM || crc == AAM_E_NOMEM)
		return AV_INTERNAL;
	if (rc != 0 || crc != AAM_OK) {
		/* Hashes before the bad line still count; they are checked against roots. */
		weak(c, 3, AV_MALFORMED, AV_NO_INDEX, "leaves: line %llu is not a hex SHA-256",
		     (unsigned long long)lr.lineno);
		return AV_OK;
	}
	if (memcmp(sha, c->m.leaves.sha256, HLEN) != 0)
		weak(c, 3, AV_MALFORMED, AV_NO_INDEX, "leaves: SHA-256 differs from the manifest");
	return AV_OK;
}

/* --- tree comparison ----------------------------------------------------- */

/* Recomputes roots over prefix + HASHES[0..N) at every good checkpoint size. */
static int
compare_roots(struct ctx *c, const uint8_t (*hashes)[HLEN], size_t n, bool leaves_file)
{
	struct aam_merkle_tree t;
	if (aam_merkle_tree_set(&t, c->first, &c->m.prefix[0][0], c->m.nprefix) != AAM_OK)
		return AV_INTERNAL;
	size_t k = 0;
	for (size_t pos = 0;; pos++) {
		uint64_t size = c->first + pos;
		while (k < c->ncps && c->cps[k].good && c->cps[k].size < size)
			k++;
		for (size_t j = k; j < c->ncps && c->cps[j].good && c->cps[j].size == size; j++) {
			uint8_t root[HLEN];
			if (aam_merkle_tree_root(&t, root) != AAM_OK)
				return AV_INTERNAL;
			bool match = memcmp(root, c->cps[j].root, HLEN) == 0;
			if (leaves_file) {
				c->cps[j].l_reach = true;
				c->cps[j].l_match = match;
			} else {
				c->cps[j].r_reach = true;
				c->cps[j].r_match = match;
			}
		}
		if (pos == n)
			break;
		if (aam_merkle_tree_append(&t, hashes[pos], NULL, NULL) != AAM_OK)
			return AV_INTERNAL;
	}
	return AV_OK;
}

/* Whether checkpoint I takes part in the record comparison. */
static bool
usable(const struct ctx *c, size_t i)
{
	return c->cps[i].good && !c->cps[i].in_fork && c->cps[i].size >= c->first;
}

/*
 * Seq-based classification of the first anomaly in positions [from, to).
 * Returns true when one was found and reported.
 */
static bool
classify_by_seq(struct ctx *c, size_t from, size_t to, bool signed_region)
{
	for (size_t p = from; p < to && p < c->n; p++) {
		uint64_t idx = c->first + p;
		if (c->flags[p] & F_PARSE) {
			if (signed_region)
				strong(c, AV_MALFORMED, idx, "record %llu: %s (in signed data)",
				       (unsigned long long)idx, why_at(c, p));
			else
				strong(c, AV_MODIFIED, idx, "record %llu: %s",
				       (unsigned long long)idx, why_at(c, p));
			return true;
		}
		uint64_t s = c->seq[p];
		if (s != idx) {
			if (signed_region) {
				strong(c, AV_MALFORMED, idx,
				       "record at index %llu has seq %llu in signed data",
				       (unsigned long long)idx, (unsigned long long)s);
			} else if (s > idx) {
				/* Is a skipped seq further on?  Then it was moved, not lost. */
				bool later = false;
				for (size_t q = p + 1; q < c->n && !later; q++)
					later = c->seq[q] >= idx && c->seq[q] < s;
				if (later)
					strong(c, AV_REORDERED, idx,
					       "index %llu holds seq %llu; seq %llu comes later",
					       (unsigned long long)idx, (unsigned long long)s,
					       (unsigned long long)idx);
				else if (s == idx + 1)
					strong(c, AV_DELETED, idx,
					       "seq %llu is missing (index %llu holds seq %llu)",
					       (unsigned long long)idx, (unsigned long long)idx,
					       (unsigned long long)s);
				else
					strong(c, AV_DELETED, idx,
					       "seq %llu..%llu are missing (index %llu holds seq "
					       "%llu)",
					       (unsigned long long)idx, (unsigned long long)(s - 1),
					       (unsigned long long)idx, (unsigned long long)s);
			} else {
				strong(c, AV_INSERTED, idx,
				       "index %llu holds seq %llu again or out of place",
				       (unsigned long long)idx, (unsigned long long)s);
			}
			return true;
		}
		if (c->flags[p] & F_TIME_BACK) {
			if (signed_region)
				strong(c, AV_TIME_ORDER, idx,
				       "record %llu is earlier than record %llu (in signed data)",
				       (unsigned long long)idx, (unsigned long long)idx - 1);
			else
				strong(c, AV_MODIFIED, idx, "record %llu: time goes backwards",
				       (unsigned long long)idx);
			return true;
		}
	}
	return false;
}

static bool
find_in(const uint8_t (*hashes)[HLEN], size_t from, size_t to, const uint8_t *h, size_t *at)
{
	for (size_t i = from; i < to; i++)
		if (memcmp(hashes[i], h, HLEN) == 0) {
			*at = i;
			return true;
		}
	return false;
}

/*
 * The first position P where the records differ from the authenticated
 * leaf hashes L[0..lend): what happened there.
 */
static void
classify_by_identity(struct ctx *c, size_t p, size_t lend, uint64_t t_size)
{
	uint64_t idx = c->first + p;
	size_t q;
	if (!find_in((const uint8_t(*)[HLEN])c->L, 0, lend, c->R[p], &q)) {
		if (p + 1 < c->n && memcmp(c->R[p + 1], c->L[p], HLEN) == 0)
			strong(c, AV_INSERTED, idx,
			       "record at index %llu is not in the signed log; the signed record "
			       "%llu "
			       "follows it",
			       (unsigned long long)idx, (unsigned long long)idx);
		else
			strong(c, AV_MODIFIED, idx,
			       "record %llu differs from the leaf the checkpoint of size %llu "
			       "commits "
			       "to",
			       (unsigned long long)idx, (unsigned long long)t_size);
		return;
	}
	uint64_t qidx = c->first + q;
	if (q > p) {
		size_t r;
		if (find_in((const uint8_t(*)[HLEN])c->R, p + 1, c->n, c->L[p], &r))
			strong(c, AV_REORDERED, idx,
			       "index %llu holds signed record %llu; signed record %llu is at "
			       "index "
			       "%llu",
			       (unsigned long long)idx, (unsigned long long)qidx,
			       (unsigned long long)idx, (unsigned long long)(c->first + r));
		else if (qidx == idx + 1)
			strong(c, AV_DELETED, idx, "signed record %llu is missing",
			       (unsigned long long)idx);
		else
			strong(c, AV_DELETED, idx, "signed records %llu..%llu are missing",
			       (unsigned long long)idx, (unsigned long long)(qidx - 1));
		return;
	}
	strong(c, AV_INSERTED, idx, "index %llu holds a second copy of signed record %llu",
	       (unsigned long long)idx, (unsigned long long)qidx);
}

static void
analyse(struct ctx *c)
{
	uint64_t end = c->first + c->n; /* one past the last record */
	size_t t = c->ncps;             /* first usable checkpoint the records fail */
	uint64_t good_end = c->first;   /* records authenticated below this index */
	for (size_t i = 0; i < c->ncps; i++) {
		if (!usable(c, i))
			continue;
		if (c->cps[i].r_reach && c->cps[i].r_match) {
			if (t == c->ncps)
				good_end = c->cps[i].size;
			continue;
		}
		if (t == c->ncps)
			t = i;
	}
	uint64_t lend_size = c->first; /* leaf hashes authenticated below this index */
	for (size_t i = 0; i < c->ncps; i++)
		if (usable(c, i) && c->cps[i].l_reach && c->cps[i].l_match &&
		    c->cps[i].size > lend_size)
			lend_size = c->cps[i].size;

	/* Anomalies inside signed data are the log's own defects. */
	classify_by_seq(c, 0, (size_t)(good_end - c->first), true);

	if (t == c->ncps) {
		/* Every checkpoint matches; what is left is the unsigned tail. */
		size_t from = (size_t)(good_end - c->first);
		/*
		 * Unsigned records are reported only when nothing else is
		 * wrong: with no usable checkpoint every record is unsigned,
		 * and the checkpoint finding is the one that explains why.
		 */
		if (!classify_by_seq(c, from, c->n, false) && end > good_end)
			weak(c, 0, AV_UNANCHORED, good_end,
			     "records %llu..%llu come after the last checkpoint (size %llu) and "
			     "are "
			     "not covered by any signature",
			     (unsigned long long)good_end, (unsigned long long)end - 1,
			     (unsigned long long)good_end);
		return;
	}

	const struct cp *bad = &c->cps[t];
	for (size_t j = t + 1; j < c->ncps; j++) {
		if (usable(c, j) && c->cps[j].r_reach && c->cps[j].r_match) {
			strong(c, AV_ROLLBACK, bad->size,
			       "%s (size %llu) is not consistent with %s (size %llu), which the "
			       "records match",
			       bad->path, (unsigned long long)bad->size, c->cps[j].path,
			       (unsigned long long)c->cps[j].size);
			return;
		}
	}

	size_t from = (size_t)(good_end - c->first);
	size_t to = (size_t)(bad->size - c->first); /* may exceed n when unreachable */
	if (lend_size >= bad->size) {
		size_t lend = (size_t)(lend_size - c->first);
		for (size_t p = from; p < to; p++) {
			if (p >= c->n) {
				strong(c, AV_TRUNCATED, c->first + p,
				       "the records end at index %llu but %s needs %llu",
				       (unsigned long long)(c->first + p), bad->path,
				       (unsigned long long)bad->size);
				return;
			}
			if (memcmp(c->R[p], c->L[p], HLEN) != 0) {
				classify_by_identity(c, p, lend, bad->size);
				return;
			}
		}
	}
	if (classify_by_seq(c, from, to, false))
		return;
	if (!bad->r_reach) {
		strong(c, AV_TRUNCATED, end, "the records end at index %llu but %s needs %llu",
		       (unsigned long long)end, bad->path, (unsigned long long)bad->size);
		return;
	}
	strong(c, AV_MODIFIED, good_end,
	       "a record in %llu..%llu differs from what %s commits to (no authenticated leaf "
	       "hashes to narrow it down)",
	       (unsigned long long)good_end, (unsigned long long)bad->size - 1, bad->path);
}

/* --- entry point --------------------------------------------------------- */

static void
ctx_free(struct ctx *c)
{
	av_manifest_free(&c->m);
	av_keys_free(&c->keys);
	free(c->cps);
	free(c->R);
	free(c->seq);
	free(c->flags);
	free(c->L);
}

static void
print_ok(const struct ctx *c)
{
	size_t last = c->ncps;
	size_t ngood = 0;
	for (size_t i = 0; i < c->ncps; i++)
		if (usable(c, i)) {
			last = i;
			ngood++;
		}
	char b64[64] = "-";
	if (last < c->ncps)
		aam_note_b64_encode(c->cps[last].root, HLEN, b64, sizeof(b64), NULL);
	if (c->n > 0)
		printf("aam-audit-verify: OK: %zu records (seq %llu..%llu), %zu checkpoints, "
		       "tree size %llu, root %s\n",
		       c->n, (unsigned long long)c->first,
		       (unsigned long long)(c->first + c->n - 1), ngood,
		       (unsigned long long)(last < c->ncps ? c->cps[last].size : c->first), b64);
	else
		printf("aam-audit-verify: OK: no records, %zu checkpoints\n", ngood);
}

int
av_verify_export(const struct av_opts *o, struct av_finding *f)
{
	struct ctx *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		av_finding_set(f, AV_INTERNAL, AV_NO_INDEX, "out of memory");
		return AV_INTERNAL;
	}
	c->o = o;
	int rc = av_manifest_load(o->dir, &c->m, f);
	if (rc != AV_OK)
		goto out;
	c->first = c->m.first_seq;
	if (o->origin != NULL && strcmp(o->origin, c->m.origin) != 0) {
		av_finding_set(f, AV_MALFORMED, AV_NO_INDEX,
		               "the export's origin \"%s\" is not the pinned origin \"%s\"",
		               c->m.origin, o->origin);
		rc = AV_MALFORMED;
		goto out;
	}
	rc = av_keys_load(o, o->origin != NULL ? o->origin : c->m.origin, &c->keys, f);
	if (rc != AV_OK)
		goto out;
	if ((rc = load_checkpoints(c)) != AV_OK || (rc = read_records(c)) != AV_OK ||
	    (rc = read_leaves(c)) != AV_OK) {
		av_finding_set(f, rc, AV_NO_INDEX, "%s",
		               rc == AV_IO ? "an export file exists but cannot be read"
		                           : "out of memory");
		goto out;
	}
	for (size_t i = 0; i < c->ncps; i++)
		if (c->cps[i].good && c->cps[i].size < c->first)
			note(c,
			     "%s (size %llu) predates the export's first record and is not "
			     "compared",
			     c->cps[i].path, (unsigned long long)c->cps[i].size);
	if ((rc = compare_roots(c, (const uint8_t(*)[HLEN])c->R, c->n, false)) != AV_OK ||
	    (rc = compare_roots(c, (const uint8_t(*)[HLEN])c->L, c->nl, true)) != AV_OK) {
		av_finding_set(f, rc, AV_NO_INDEX, "internal error recomputing the tree");
		goto out;
	}
	analyse(c);
	if (c->strong.kind != AV_OK)
		*f = c->strong;
	else if (c->weak.kind != AV_OK)
		*f = c->weak;
	else {
		f->kind = AV_OK;
		print_ok(c);
	}
	rc = f->kind;
out:
	ctx_free(c);
	free(c);
	return rc;
}
