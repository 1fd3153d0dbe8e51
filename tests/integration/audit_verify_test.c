/*
 * aam-audit-verify end to end: a generated export of 1,000 canonical
 * records with a checkpoint every 100, signed by an OpenSSL P-256 key,
 * verifies; each kind of tampering is then caught with the right exit
 * code, kind and first bad index.  The binary under test is the one the
 * build produced: ${AAM_BUILD_DIR}/tools/audit-verify/aam-audit-verify.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "aam/err.h"
#include "common/merkle.h"
#include "common/note.h"
#include "tests/lib/auditgen.h"
#include "tests/lib/testutil.h"

#define SEG     250
#define OUT_CAP 8192

struct fx {
	char *keydir;
	char bin[4096];
	char pem_a[4200], pem_b[4200];
	char vkey_a[AAM_NOTE_VKEY_MAX];
	EVP_PKEY *a, *b;
	char *dir; /* the current export */
	char out[OUT_CAP];
};

static int
write_pem(EVP_PKEY *k, const char *path)
{
	FILE *f = fopen(path, "wb");
	if (f == NULL)
		return -1;
	int ok = PEM_write_PUBKEY(f, k) == 1;
	return fclose(f) == 0 && ok ? 0 : -1;
}

static int
group_setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	if (fx == NULL)
		return -1;
	const char *build = getenv("AAM_BUILD_DIR");
	snprintf(fx->bin, sizeof(fx->bin), "%s/tools/audit-verify/aam-audit-verify",
	         build != NULL ? build : ".");
	fx->a = EVP_EC_gen("P-256");
	fx->b = EVP_EC_gen("P-256");
	fx->keydir = aam_test_mkdtemp("aam-av-keys");
	if (fx->a == NULL || fx->b == NULL || fx->keydir == NULL)
		return -1;
	snprintf(fx->pem_a, sizeof(fx->pem_a), "%s/a.pem", fx->keydir);
	snprintf(fx->pem_b, sizeof(fx->pem_b), "%s/b.pem", fx->keydir);
	if (write_pem(fx->a, fx->pem_a) != 0 || write_pem(fx->b, fx->pem_b) != 0)
		return -1;
	if (aam_note_vkey_format("audit.example.com/aam", fx->a, fx->vkey_a, sizeof(fx->vkey_a),
	                         NULL) != AAM_OK)
		return -1;
	*state = fx;
	return 0;
}

static int
group_teardown(void **state)
{
	struct fx *fx = *state;
	aam_test_rmtree(fx->keydir);
	free(fx->keydir);
	EVP_PKEY_free(fx->a);
	EVP_PKEY_free(fx->b);
	free(fx);
	return 0;
}

static int
test_teardown(void **state)
{
	struct fx *fx = *state;
	if (fx->dir != NULL) {
		aam_test_rmtree(fx->dir);
		free(fx->dir);
		fx->dir = NULL;
	}
	return 0;
}

/* A fresh export in fx->dir; OPTS may adjust the defaults. */
static void
gen(struct fx *fx, void (*adjust)(struct aam_auditgen_opts *))
{
	struct stat st;
	if (stat(fx->bin, &st) != 0)
		fail_msg("verifier binary missing: %s (build the tree first)", fx->bin);
	fx->dir = aam_test_mkdtemp("aam-av-export");
	assert_non_null(fx->dir);
	struct aam_auditgen_opts o;
	aam_auditgen_defaults(&o, fx->dir, fx->a);
	if (adjust != NULL)
		adjust(&o);
	assert_int_equal(aam_auditgen_write(&o), 0);
}

/* Runs the verifier with ARGS (shell words, our own temp paths); returns its exit code. */
static int run(struct fx *fx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
run(struct fx *fx, const char *fmt, ...)
{
	char args[8192], cmd[16384];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "'%s' %s 2>&1", fx->bin, args);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t n = fread(fx->out, 1, sizeof(fx->out) - 1, p);
	fx->out[n] = '\0';
	int status = pclose(p);
	assert_true(WIFEXITED(status));
	print_message("%s", fx->out);
	return WEXITSTATUS(status);
}

static int
verify(struct fx *fx)
{
	return run(fx, "--key '%s' '%s'", fx->pem_a, fx->dir);
}

static void
expect(struct fx *fx, int code, const char *kind, const char *index)
{
	int rc = verify(fx);
	char want[128];
	snprintf(want, sizeof(want), "FAIL kind=%s index=%s:", kind, index);
	if (rc != code || strstr(fx->out, want) == NULL)
		fail_msg("want exit %d and \"%s\", got exit %d: %s", code, want, rc, fx->out);
}

/* --- editing records -------------------------------------------------- */

struct seg {
	char path[4200];
	char *data;
	char *line[SEG + 8];
	size_t nlines;
};

static void
seg_load(struct fx *fx, uint64_t seq, struct seg *s)
{
	snprintf(s->path, sizeof(s->path), "%s/records/%012" PRIu64 ".jsonl", fx->dir,
	         seq / SEG * SEG);
	s->data = aam_test_read_file(s->path, NULL);
	assert_non_null(s->data);
	s->nlines = 0;
	for (char *p = s->data; *p != '\0';) {
		char *nl = strchr(p, '\n');
		assert_non_null(nl);
		*nl = '\0';
		s->line[s->nlines++] = p;
		p = nl + 1;
	}
}

static void
seg_store(struct seg *s)
{
	FILE *f = fopen(s->path, "wb");
	assert_non_null(f);
	for (size_t i = 0; i < s->nlines; i++)
		fprintf(f, "%s\n", s->line[i]);
	assert_int_equal(fclose(f), 0);
	free(s->data);
}

/* --- the clean export ---------------------------------------------------- */

static void
test_clean_export_verifies(void **state)
{
	struct fx *fx = *state;
	gen(fx, NULL);
	assert_int_equal(verify(fx), 0);
	assert_non_null(
	        strstr(fx->out, "OK: 1000 records (seq 0..999), 10 checkpoints, tree size 1000"));
	/* The vkey string pins the same key. */
	assert_int_equal(
	        run(fx, "--vkey '%s' --origin audit.example.com/aam '%s'", fx->vkey_a, fx->dir), 0);
	/* The export's own key works only when the auditor names it. */
	assert_int_equal(run(fx, "--key '%s/key.pem' '%s'", fx->dir, fx->dir), 0);
	assert_int_equal(run(fx, "'%s'", fx->dir), 64);
}

static void
partial_adjust(struct aam_auditgen_opts *o)
{
	o->first_seq = 300; /* an export "--since": seq 300..1299 with a prefix */
}

static void
test_partial_export_verifies(void **state)
{
	struct fx *fx = *state;
	gen(fx, partial_adjust);
	assert_int_equal(verify(fx), 0);
	assert_non_null(strstr(fx->out, "OK: 1000 records (seq 300..1299)"));
}

/* --- tampering ----------------------------------------------------------- */

static void
test_one_byte_edited(void **state)
{
	struct fx *fx = *state;
	gen(fx, NULL);
	struct seg s;
	seg_load(fx, 537, &s);
	char *r = strstr(s.line[537 - 500], "\"req-");
	assert_non_null(r);
	r[1] = 'R'; /* still valid, canonical JSON with the same seq */
	seg_store(&s);
	expect(fx, 1, "modified", "537");
}

static void
test_record_deleted(void **state)
{
	struct fx *fx = *state;
	gen(fx, NULL);
	struct seg s;
	seg_load(fx, 537, &s);
	memmove(&s.line[37], &s.line[38], (s.nlines - 38) * sizeof(char *));
	s.nlines--;
	seg_store(&s);
	expect(fx, 3, "deleted", "537");
}

static void
test_record_inserted(void **state)
{
	struct fx *fx = *state;
	gen(fx, NULL);
	struct seg s;
	seg_load(fx, 537, &s);
	/* A forged event that reuses seq 537, placed before the real one. */
	char forged[2048];
	snprintf(forged, sizeof(forged), "%s", s.line[37]);
	char *r = strstr(forged, "\"req-");
	assert_non_null(r);
	memcpy(r + 1, "FAKE", 4);
	memmove(&s.line[38], &s.line[37], (s.nlines - 37) * sizeof(char *));
	s.line[37] = forged;
	s.nlines++;
	seg_store(&s);
	expect(fx, 2, "inserted", "537");
}

static void
test_two_records_swapped(void **state)
{
	struct fx *fx = *state;
	gen(fx, NULL);
	struct seg s;
	seg_load(fx, 537, &s);
	char *t = s.line[37];
	s.line[37] = s.line[38];
	s.line[38] = t;
	seg_store(&s);
	expect(fx, 4, "reordered", "537");
}

static void
test_tail_dropped(void **state)
{
	struct fx *fx = *state;
	gen(fx, NULL);
	struct seg s;
	seg_load(fx, 950, &s);
	s.nlines = 950 - 750; /* keep 750..949 */
	seg_store(&s);
	expect(fx, 5, "truncated", "950");
}

static void
test_checkpoint_from_another_key(void **state)
{
	struct fx *fx = *state;
	gen(fx, NULL);
	struct aam_auditgen_opts o;
	aam_auditgen_defaults(&o, fx->dir, fx->a);
	uint8_t root[32];
	assert_int_equal(aam_auditgen_root(&o, 500, root), 0);
	char path[4200];
	snprintf(path, sizeof(path), "%s/checkpoints/500", fx->dir);
	/* Same name and origin, same root, but key B signed it. */
	assert_int_equal(aam_auditgen_sign_checkpoint(fx->b, o.origin, o.origin, 500, root, path),
	                 0);
	expect(fx, 9, "unknown-key", "500");
}

static void
test_fork(void **state)
{
	struct fx *fx = *state;
	gen(fx, NULL);
	uint8_t other[32];
	memset(other, 0x5a, sizeof(other));
	char path[4200];
	snprintf(path, sizeof(path), "%s/checkpoints/500.fork", fx->dir);
	assert_int_equal(aam_auditgen_sign_checkpoint(fx->a, "audit.example.com/aam",
	                                              "audit.example.com/aam", 500, other, path),
	                 0);
	expect(fx, 6, "fork", "500");
}

static void
test_bad_signature(void **state)
{
	struct fx *fx = *state;
	gen(fx, NULL);
	char path[4200];
	snprintf(path, sizeof(path), "%s/checkpoints/300", fx->dir);
	size_t len;
	char *note = aam_test_read_file(path, &len);
	assert_non_null(note);
	char *root = strstr(note, "\n300\n") + 5;
	root[0] = root[0] == 'A' ? 'B' : 'A'; /* another root, the old signature */
	assert_int_equal(aam_test_write_file(path, note, len, 0644), 0);
	free(note);
	expect(fx, 8, "bad-signature", "300");
}

static void
test_rollback(void **state)
{
	struct fx *fx = *state;
	gen(fx, NULL);
	/* A validly signed checkpoint that no later checkpoint extends. */
	uint8_t other[32];
	memset(other, 0x33, sizeof(other));
	char path[4200];
	snprintf(path, sizeof(path), "%s/checkpoints/550", fx->dir);
	assert_int_equal(aam_auditgen_sign_checkpoint(fx->a, "audit.example.com/aam",
	                                              "audit.example.com/aam", 550, other, path),
	                 0);
	expect(fx, 7, "rollback", "550");
}

static void
test_wrong_pinned_key(void **state)
{
	struct fx *fx = *state;
	gen(fx, NULL);
	int rc = run(fx, "--key '%s' '%s'", fx->pem_b, fx->dir);
	assert_int_equal(rc, 9);
	assert_non_null(strstr(fx->out, "kind=unknown-key index=100:"));
}

static void
no_leaves_adjust(struct aam_auditgen_opts *o)
{
	o->no_leaves = true;
}

static void
test_without_leaves(void **state)
{
	struct fx *fx = *state;
	gen(fx, no_leaves_adjust);
	assert_int_equal(verify(fx), 0);
	/* A deletion is still exact: the seq numbers show it. */
	struct seg s;
	seg_load(fx, 537, &s);
	memmove(&s.line[37], &s.line[38], (s.nlines - 38) * sizeof(char *));
	s.nlines--;
	seg_store(&s);
	expect(fx, 3, "deleted", "537");
	test_teardown(state);
	/* A modification is located to its checkpoint interval [500, 600). */
	gen(fx, no_leaves_adjust);
	seg_load(fx, 537, &s);
	char *r = strstr(s.line[37], "\"req-");
	r[1] = 'R';
	seg_store(&s);
	expect(fx, 1, "modified", "500");
}

static void
test_unanchored_tail(void **state)
{
	struct fx *fx = *state;
	gen(fx, NULL);
	char path[4200];
	snprintf(path, sizeof(path), "%s/checkpoints/1000", fx->dir);
	assert_int_equal(unlink(path), 0);
	expect(fx, 12, "unanchored", "900");
}

static void
time_adjust(struct aam_auditgen_opts *o)
{
	o->time_backwards_at = 421;
}

static void
noncanonical_adjust(struct aam_auditgen_opts *o)
{
	o->noncanonical_at = 77;
}

static void
test_defects_in_signed_data(void **state)
{
	struct fx *fx = *state;
	/* The signer itself wrote a record whose time goes backwards. */
	gen(fx, time_adjust);
	expect(fx, 11, "time-order", "421");
	test_teardown(state);
	/* ... or a record that is not canonical JSON. */
	gen(fx, noncanonical_adjust);
	expect(fx, 10, "malformed", "77");
}

static void
test_malformed_manifest(void **state)
{
	struct fx *fx = *state;
	gen(fx, NULL);
	char path[4200];
	snprintf(path, sizeof(path), "%s/manifest", fx->dir);
	size_t len;
	char *m = aam_test_read_file(path, &len);
	assert_non_null(m);
	char *seg = strstr(m, "segment records/");
	seg[8] = '/'; /* "segment /ecords/...": an absolute path */
	assert_int_equal(aam_test_write_file(path, m, len, 0644), 0);
	free(m);
	expect(fx, 10, "malformed", "-");
	assert_non_null(strstr(fx->out, "manifest line"));
}

/* --- inclusion ----------------------------------------------------------- */

#define INCLUSION_ARGS                                                                             \
	"inclusion --key '%s' --checkpoint '%s/checkpoints/1000' --record '%s' --index %d "        \
	"--proof '%s'"

struct leafset {
	uint8_t h[1000][32];
};

static int
leafset_node(void *ctx, uint64_t start, unsigned level, uint8_t out[32])
{
	struct leafset *l = ctx;
	return aam_merkle_root(l->h[start], (uint64_t)1 << level, out);
}

static void
test_inclusion_command(void **state)
{
	struct fx *fx = *state;
	gen(fx, NULL);
	struct aam_auditgen_opts o;
	aam_auditgen_defaults(&o, fx->dir, fx->a);
	struct leafset *l = malloc(sizeof(*l));
	assert_non_null(l);
	char rec[2048];
	for (uint64_t i = 0; i < 1000; i++) {
		size_t n = aam_auditgen_record(&o, i, rec, sizeof(rec));
		assert_int_equal(aam_merkle_leaf_hash(rec, n, l->h[i]), AAM_OK);
	}
	uint8_t proof[AAM_MERKLE_MAX_PROOF * 32];
	size_t count;
	assert_int_equal(aam_merkle_inclusion_proof(537, 1000, leafset_node, l, proof,
	                                            AAM_MERKLE_MAX_PROOF, &count),
	                 AAM_OK);
	char proof_path[4200], rec_path[4200], text[4096];
	size_t tl = 0;
	for (size_t i = 0; i < count; i++) {
		aam_note_b64_encode(proof + i * 32, 32, text + tl, sizeof(text) - tl, NULL);
		tl += 44;
		text[tl++] = '\n';
	}
	snprintf(proof_path, sizeof(proof_path), "%s/proof-537", fx->dir);
	assert_int_equal(aam_test_write_file(proof_path, text, tl, 0644), 0);
	size_t rl = aam_auditgen_record(&o, 537, rec, sizeof(rec));
	rec[rl++] = '\n';
	snprintf(rec_path, sizeof(rec_path), "%s/record-537", fx->dir);
	assert_int_equal(aam_test_write_file(rec_path, rec, rl, 0644), 0);

	assert_int_equal(run(fx, INCLUSION_ARGS, fx->pem_a, fx->dir, rec_path, 537, proof_path), 0);
	assert_non_null(strstr(fx->out, "OK: record seq 537 is leaf 537 of the tree of size 1000"));
	/* The wrong index: the record's own seq disagrees. */
	assert_int_equal(run(fx, INCLUSION_ARGS, fx->pem_a, fx->dir, rec_path, 538, proof_path),
	                 10);
	/* A wrong checkpoint for this proof. */
	assert_int_equal(run(fx,
	                     "inclusion --key '%s' --checkpoint '%s/checkpoints/900' --record "
	                     "'%s' --index 537 --proof '%s'",
	                     fx->pem_a, fx->dir, rec_path, proof_path),
	                 13);
	/* A flipped proof hash. */
	text[3] = text[3] == 'A' ? 'B' : 'A';
	assert_int_equal(aam_test_write_file(proof_path, text, tl, 0644), 0);
	assert_int_equal(run(fx, INCLUSION_ARGS, fx->pem_a, fx->dir, rec_path, 537, proof_path),
	                 13);
	assert_non_null(strstr(fx->out, "kind=not-included index=537"));
	/* Another key. */
	assert_int_equal(run(fx, INCLUSION_ARGS, fx->pem_b, fx->dir, rec_path, 537, proof_path), 9);
	free(l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_teardown(test_clean_export_verifies, test_teardown),
	        cmocka_unit_test_teardown(test_partial_export_verifies, test_teardown),
	        cmocka_unit_test_teardown(test_one_byte_edited, test_teardown),
	        cmocka_unit_test_teardown(test_record_deleted, test_teardown),
	        cmocka_unit_test_teardown(test_record_inserted, test_teardown),
	        cmocka_unit_test_teardown(test_two_records_swapped, test_teardown),
	        cmocka_unit_test_teardown(test_tail_dropped, test_teardown),
	        cmocka_unit_test_teardown(test_checkpoint_from_another_key, test_teardown),
	        cmocka_unit_test_teardown(test_fork, test_teardown),
	        cmocka_unit_test_teardown(test_bad_signature, test_teardown),
	        cmocka_unit_test_teardown(test_rollback, test_teardown),
	        cmocka_unit_test_teardown(test_wrong_pinned_key, test_teardown),
	        cmocka_unit_test_teardown(test_without_leaves, test_teardown),
	        cmocka_unit_test_teardown(test_unanchored_tail, test_teardown),
	        cmocka_unit_test_teardown(test_defects_in_signed_data, test_teardown),
	        cmocka_unit_test_teardown(test_malformed_manifest, test_teardown),
	        cmocka_unit_test_teardown(test_inclusion_command, test_teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
