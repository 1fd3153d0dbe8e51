/*
 * `aam-audit-verify inclusion`: one record against one signed checkpoint
 * with an RFC 9162 inclusion proof, for an auditor who holds a single
 * record (for example from `aamctl audit prove SEQ`) rather than an export.
 */
#include "av.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"

#define HLEN AAM_MERKLE_HASH_LEN

/*
 * The proof file: zero or more lines, each the padded base64 of one
 * 32-byte hash, nearest the leaf first, every line ending in '\n'.
 */
static int
read_proof(const char *path, uint8_t *proof, size_t *count, struct av_finding *f)
{
	char *text;
	size_t len;
	int rc = av_read_file(path, AV_PROOF_FILE_MAX, &text, &len);
	if (rc != AAM_OK) {
		av_finding_set(f, rc == AAM_E_TOOBIG ? AV_MALFORMED : AV_USAGE, AV_NO_INDEX,
		               "--proof %s: %s", path,
		               rc == AAM_E_TOOBIG ? "longer than any proof"
		                                  : "cannot read the file");
		return f->kind;
	}
	*count = 0;
	size_t off = 0;
	while (off < len) {
		const char *nl = memchr(text + off, '\n', len - off);
		size_t llen = nl != NULL ? (size_t)(nl - (text + off)) : 0;
		size_t n = 0;
		if (nl == NULL || *count >= AAM_MERKLE_MAX_PROOF || llen != 44 ||
		    aam_note_b64_decode(text + off, llen, proof + *count * HLEN, HLEN, &n) !=
		            AAM_OK ||
		    n != HLEN) {
			av_finding_set(f, AV_MALFORMED, AV_NO_INDEX,
			               "--proof %s line %zu: not the base64 of a 32-byte hash",
			               path, *count + 1);
			free(text);
			return AV_MALFORMED;
		}
		(*count)++;
		off += llen + 1;
	}
	free(text);
	return AV_OK;
}

int
av_verify_inclusion(const struct av_opts *o, struct av_finding *f)
{
	char *note = NULL, *rec = NULL;
	size_t nlen, rlen;
	struct av_keys keys = {0};
	int rc = av_read_file(o->checkpoint, AAM_NOTE_MAX_LEN, &note, &nlen);
	if (rc != AAM_OK) {
		av_finding_set(f, rc == AAM_E_TOOBIG ? AV_MALFORMED : AV_USAGE, AV_NO_INDEX,
		               "--checkpoint %s: %s", o->checkpoint,
		               rc == AAM_E_TOOBIG ? "larger than 16 KiB" : "cannot read the file");
		return f->kind;
	}
	/*
	 * A --key PEM carries no name; the note's key name is the origin.
	 * Taking it from the note's own first line is safe: the signature
	 * covers that line, and the key ID must still match the pinned key.
	 */
	char origin[AAM_NOTE_ORIGIN_MAX + 1] = "";
	if (o->origin != NULL) {
		snprintf(origin, sizeof(origin), "%s", o->origin);
	} else {
		const char *nl = memchr(note, '\n', nlen);
		size_t olen = nl != NULL ? (size_t)(nl - note) : 0;
		if (olen == 0 || olen > AAM_NOTE_ORIGIN_MAX) {
			av_finding_set(f, AV_MALFORMED, AV_NO_INDEX, "%s: no origin line",
			               o->checkpoint);
			rc = AV_MALFORMED;
			goto out;
		}
		memcpy(origin, note, olen);
		origin[olen] = '\0';
	}
	if ((rc = av_keys_load(o, origin, &keys, f)) != AV_OK)
		goto out;

	struct aam_note_checkpoint cp;
	const char *why = "invalid";
	int nrc = aam_note_checkpoint_open(note, nlen, keys.v, keys.n, &cp, &why);
	if (nrc != AAM_OK) {
		rc = av_note_error_kind(nrc);
		av_finding_set(f, rc, AV_NO_INDEX, "%s: %s", o->checkpoint, why);
		goto out;
	}
	if (o->origin != NULL && strcmp(cp.origin, o->origin) != 0) {
		av_finding_set(f, AV_MALFORMED, cp.size,
		               "%s: origin \"%s\" is not the pinned \"%s\"", o->checkpoint,
		               cp.origin, o->origin);
		rc = AV_MALFORMED;
		goto out;
	}

	/* The record file holds the record line, with or without its one '\n'. */
	rc = av_read_file(o->record, AV_RECORD_MAX + 1, &rec, &rlen);
	if (rc != AAM_OK) {
		av_finding_set(f, rc == AAM_E_TOOBIG ? AV_MALFORMED : AV_USAGE, o->index,
		               "--record %s: %s", o->record,
		               rc == AAM_E_TOOBIG ? "larger than 64 KiB" : "cannot read the file");
		rc = f->kind;
		goto out;
	}
	if (rlen > 0 && rec[rlen - 1] == '\n')
		rlen--;
	struct av_record r;
	if (!av_jcs_record(rec, rlen, &r, &why)) {
		av_finding_set(f, AV_MALFORMED, o->index, "--record %s: %s", o->record, why);
		rc = AV_MALFORMED;
		goto out;
	}
	if (r.seq != o->index) {
		av_finding_set(f, AV_MALFORMED, o->index,
		               "--record %s: seq %llu is not --index %llu", o->record,
		               (unsigned long long)r.seq, (unsigned long long)o->index);
		rc = AV_MALFORMED;
		goto out;
	}

	uint8_t proof[AAM_MERKLE_MAX_PROOF * HLEN];
	size_t count = 0;
	if ((rc = read_proof(o->proof, proof, &count, f)) != AV_OK)
		goto out;
	uint8_t leaf[HLEN];
	if (aam_merkle_leaf_hash(rec, rlen, leaf) != AAM_OK) {
		av_finding_set(f, AV_INTERNAL, AV_NO_INDEX, "hashing failed");
		rc = AV_INTERNAL;
		goto out;
	}
	int vrc = aam_merkle_verify_inclusion(leaf, o->index, cp.size, proof, count, cp.root);
	if (vrc != AAM_OK) {
		av_finding_set(
		        f, AV_NOT_INCLUDED, o->index,
		        vrc == AAM_E_INVAL
		                ? "index %llu is not below the checkpoint's tree size %llu"
		                : "the proof does not show record %llu in the tree of size %llu",
		        (unsigned long long)o->index, (unsigned long long)cp.size);
		rc = AV_NOT_INCLUDED;
		goto out;
	}
	f->kind = AV_OK;
	printf("aam-audit-verify: OK: record seq %llu is leaf %llu of the tree of size %llu "
	       "signed for %s\n",
	       (unsigned long long)r.seq, (unsigned long long)o->index, (unsigned long long)cp.size,
	       cp.origin);
	rc = AV_OK;
out:
	av_keys_free(&keys);
	free(note);
	free(rec);
	return rc;
}
