/*
 * Merkle tree tests: the shared RFC 6962 vectors (roots.json and every
 * transparency-dev inclusion / consistency case), then our own proof
 * generators against our verifiers for every (index, size) up to 64, the
 * incremental tree against the batch root, 64-bit edge sizes and hostile
 * arguments.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/sha.h>

#include "aam/err.h"
#include "common/merkle.h"
#include "common/note.h"
#include "tests/lib/testutil.h"

#define H AAM_MERKLE_HASH_LEN

/* --- vector folder ----------------------------------------------------- */

static char *
vectors_dir(void)
{
	/* The vectors live beside the repository: ${AAM_SOURCE_DIR}/../shared/vectors/merkle. */
	char *p = aam_test_source_path("../shared/vectors/merkle");
	assert_non_null(p);
	struct stat st;
	if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode))
		fail_msg("Merkle test vectors missing at %s (AAM_SOURCE_DIR=%s)", p,
		         getenv("AAM_SOURCE_DIR") ? getenv("AAM_SOURCE_DIR") : "(unset)");
	return p;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends every *.json under DIR (recursively) to *LIST. */
static void
collect_json(const char *dir, char ***list, size_t *n)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char path[4096];
		int len = snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		assert_true(len > 0 && (size_t)len < sizeof(path));
		struct stat st;
		assert_int_equal(stat(path, &st), 0);
		if (S_ISDIR(st.st_mode)) {
			collect_json(path, list, n);
		} else if (len > 5 && strcmp(path + len - 5, ".json") == 0) {
			*list = realloc(*list, (*n + 1) * sizeof(char *));
			assert_non_null(*list);
			(*list)[(*n)++] = strdup(path);
		}
	}
	closedir(d);
	qsort(*list, *n, sizeof(char *), cmp_str);
}

/*
 * Integer fields are read from the raw text because some cases use
 * 2^64 - 1, beyond jansson's signed integers.
 */
static uint64_t
raw_u64(const char *text, const char *key)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	const char *p = strstr(text, pat);
	if (p == NULL)
		fail_msg("field %s missing", key);
	p += strlen(pat);
	while (*p == ' ')
		p++;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(p, &end, 10);
	assert_true(end != p && errno == 0 && *p != '-');
	return (uint64_t)v;
}

/*
 * Decodes a base64 hash into 32 bytes, zero-padded.  The vectors use short
 * "don't care" placeholders ("ZG9uJ3QgY2FyZSAx") and empty strings; padding
 * keeps equal placeholders equal and makes garbage a wrong hash, so the
 * library, not this harness, is what rejects the case.  Returns the
 * decoded length.
 */
static size_t
hash_from_b64(const char *s, uint8_t out[H])
{
	uint8_t tmp[64];
	size_t n = 0;
	assert_int_equal(aam_note_b64_decode(s, strlen(s), tmp, sizeof(tmp), &n), AAM_OK);
	assert_true(n <= H);
	memset(out, 0, H);
	memcpy(out, tmp, n);
	return n;
}

static uint8_t *
proof_from_json(json_t *arr, size_t *count)
{
	*count = 0;
	if (json_is_null(arr))
		return NULL;
	assert_true(json_is_array(arr));
	size_t n = json_array_size(arr);
	uint8_t *p = calloc(n ? n : 1, H);
	assert_non_null(p);
	for (size_t i = 0; i < n; i++) {
		json_t *s = json_array_get(arr, i);
		assert_true(json_is_string(s));
		hash_from_b64(json_string_value(s), p + i * H);
	}
	*count = n;
	return p;
}

static json_t *
load_case(const char *path, char **raw)
{
	*raw = aam_test_read_file(path, NULL);
	assert_non_null(*raw);
	json_error_t jerr;
	json_t *j = json_loads(*raw, JSON_DECODE_INT_AS_REAL, &jerr);
	if (j == NULL)
		fail_msg("%s: %s", path, jerr.text);
	return j;
}

static void
test_roots_json(void **state)
{
	(void)state;
	char *dir = vectors_dir();
	char path[4096];
	snprintf(path, sizeof(path), "%s/roots.json", dir);
	char *raw;
	json_t *j = load_case(path, &raw);
	json_t *leaves = json_object_get(j, "leaves_hex");
	json_t *roots = json_object_get(j, "roots_hex");
	assert_int_equal(json_array_size(leaves), 8);
	assert_int_equal(json_array_size(roots), 9);

	uint8_t hashes[8 * H];
	struct aam_merkle_tree t;
	aam_merkle_tree_init(&t);
	for (size_t n = 0; n <= 8; n++) {
		const char *rhex = json_string_value(json_array_get(roots, n));
		uint8_t want[H];
		for (size_t i = 0; i < H; i++)
			assert_int_equal(sscanf(rhex + 2 * i, "%2hhx", &want[i]), 1);
		uint8_t got[H];
		assert_int_equal(aam_merkle_root(hashes, n, got), AAM_OK);
		assert_memory_equal(got, want, H);
		assert_int_equal(aam_merkle_tree_root(&t, got), AAM_OK);
		assert_memory_equal(got, want, H);
		if (n == 8)
			break;
		const char *lhex = json_string_value(json_array_get(leaves, n));
		size_t llen = strlen(lhex) / 2;
		uint8_t data[64];
		for (size_t i = 0; i < llen; i++)
			assert_int_equal(sscanf(lhex + 2 * i, "%2hhx", &data[i]), 1);
		assert_int_equal(aam_merkle_leaf_hash(data, llen, hashes + n * H), AAM_OK);
		assert_int_equal(aam_merkle_tree_append(&t, hashes + n * H, NULL, NULL), AAM_OK);
	}
	json_decref(j);
	free(raw);
	free(dir);
}

static void
test_inclusion_vectors(void **state)
{
	(void)state;
	char *dir = vectors_dir();
	char sub[4096];
	snprintf(sub, sizeof(sub), "%s/inclusion", dir);
	char **list = NULL;
	size_t n = 0;
	collect_json(sub, &list, &n);
	size_t happy = 0, rejected = 0;
	for (size_t i = 0; i < n; i++) {
		char *raw;
		json_t *j = load_case(list[i], &raw);
		uint64_t index = raw_u64(raw, "leafIdx");
		uint64_t size = raw_u64(raw, "treeSize");
		uint8_t root[H], leaf[H];
		hash_from_b64(json_string_value(json_object_get(j, "root")), root);
		size_t leaf_len =
		        hash_from_b64(json_string_value(json_object_get(j, "leafHash")), leaf);
		size_t count;
		uint8_t *proof = proof_from_json(json_object_get(j, "proof"), &count);
		int want_err = json_is_true(json_object_get(j, "wantErr"));
		int rc;
		if (leaf_len != H) {
			/*
			 * The API takes a leaf hash as 32 bytes, so a proof for
			 * a shorter "leaf hash" cannot even be asked; such a
			 * case must be one the vectors expect to fail.
			 */
			assert_true(want_err);
			rc = AAM_E_INVAL;
		} else {
			rc = aam_merkle_verify_inclusion(leaf, index, size, proof, count, root);
		}
		if (want_err) {
			if (rc == AAM_OK)
				fail_msg("%s: accepted a bad proof", list[i]);
			rejected++;
		} else {
			if (rc != AAM_OK)
				fail_msg("%s: rejected a good proof (%d)", list[i], rc);
			happy++;
		}
		free(proof);
		json_decref(j);
		free(raw);
		free(list[i]);
	}
	free(list);
	free(dir);
	/* Every folder has a happy path and many broken variants. */
	assert_true(happy >= 6);
	assert_true(rejected >= 80);
}

static void
test_consistency_vectors(void **state)
{
	(void)state;
	char *dir = vectors_dir();
	char sub[4096];
	snprintf(sub, sizeof(sub), "%s/consistency", dir);
	char **list = NULL;
	size_t n = 0;
	collect_json(sub, &list, &n);
	size_t happy = 0, rejected = 0;
	for (size_t i = 0; i < n; i++) {
		char *raw;
		json_t *j = load_case(list[i], &raw);
		uint64_t size1 = raw_u64(raw, "size1");
		uint64_t size2 = raw_u64(raw, "size2");
		uint8_t root1[H], root2[H];
		hash_from_b64(json_string_value(json_object_get(j, "root1")), root1);
		hash_from_b64(json_string_value(json_object_get(j, "root2")), root2);
		size_t count;
		uint8_t *proof = proof_from_json(json_object_get(j, "proof"), &count);
		int want_err = json_is_true(json_object_get(j, "wantErr"));
		int rc = aam_merkle_verify_consistency(size1, size2, proof, count, root1, root2);
		if (want_err) {
			if (rc == AAM_OK)
				fail_msg("%s: accepted a bad proof", list[i]);
			rejected++;
		} else {
			if (rc != AAM_OK)
				fail_msg("%s: rejected a good proof (%d)", list[i], rc);
			happy++;
		}
		free(proof);
		json_decref(j);
		free(raw);
		free(list[i]);
	}
	free(list);
	free(dir);
	assert_true(happy >= 6);
	assert_true(rejected >= 60);
}

/* --- generated proofs -------------------------------------------------- */

#define MAXN 64

struct leaves {
	uint8_t h[MAXN * H];
	uint64_t size;    /* the tree size the generator was given */
	unsigned lookups; /* callback calls since the last reset */
};

/* Subtree hashes recomputed from the leaves, checking the generator's promises. */
static int
leaves_node(void *ctx, uint64_t start, unsigned level, uint8_t out[H])
{
	struct leaves *l = ctx;
	assert_true(level < 63);
	uint64_t len = (uint64_t)1 << level;
	assert_int_equal(start % len, 0);
	assert_true(start + len <= l->size);
	l->lookups++;
	return aam_merkle_root(l->h + start * H, len, out);
}

static void
make_leaves(struct leaves *l)
{
	memset(l, 0, sizeof(*l));
	for (unsigned i = 0; i < MAXN; i++) {
		char data[32];
		int n = snprintf(data, sizeof(data), "{\"seq\":%u}", i);
		assert_int_equal(aam_merkle_leaf_hash(data, (size_t)n, l->h + i * H), AAM_OK);
	}
}

static unsigned
ceil_log2(uint64_t n)
{
	unsigned b = 0;
	while (((uint64_t)1 << b) < n)
		b++;
	return b;
}

static void
test_generated_inclusion(void **state)
{
	(void)state;
	struct leaves *l = malloc(sizeof(*l));
	assert_non_null(l);
	make_leaves(l);
	uint8_t proof[AAM_MERKLE_MAX_PROOF * H];
	for (uint64_t size = 1; size <= MAXN; size++) {
		uint8_t root[H];
		assert_int_equal(aam_merkle_root(l->h, size, root), AAM_OK);
		for (uint64_t idx = 0; idx < size; idx++) {
			size_t count = 99;
			l->size = size;
			l->lookups = 0;
			assert_int_equal(aam_merkle_inclusion_proof(idx, size, leaves_node, l,
			                                            proof, AAM_MERKLE_MAX_PROOF,
			                                            &count),
			                 AAM_OK);
			/* O(log n) lookups: one per level plus one non-perfect range. */
			assert_true(l->lookups <= 2 * ceil_log2(size) + 1);
			assert_true(count <= ceil_log2(size));
			const uint8_t *leaf = l->h + idx * H;
			assert_int_equal(
			        aam_merkle_verify_inclusion(leaf, idx, size, proof, count, root),
			        AAM_OK);
			/* Each flipped bit, the wrong leaf, index or size, or a cut proof fails. */
			for (size_t k = 0; k < count; k++) {
				proof[k * H + 7] ^= 0x10;
				assert_int_not_equal(aam_merkle_verify_inclusion(
				                             leaf, idx, size, proof, count, root),
				                     AAM_OK);
				proof[k * H + 7] ^= 0x10;
			}
			const uint8_t *other = l->h + ((idx + 1) % MAXN) * H;
			assert_int_not_equal(
			        aam_merkle_verify_inclusion(other, idx, size, proof, count, root),
			        AAM_OK);
			if (size > 1)
				assert_int_not_equal(
				        aam_merkle_verify_inclusion(leaf, (idx + 1) % size, size,
				                                    proof, count, root),
				        AAM_OK);
			if (count > 0)
				assert_int_not_equal(aam_merkle_verify_inclusion(leaf, idx, size,
				                                                 proof, count - 1,
				                                                 root),
				                     AAM_OK);
			memcpy(proof + count * H, root, H);
			assert_int_not_equal(aam_merkle_verify_inclusion(leaf, idx, size, proof,
			                                                 count + 1, root),
			                     AAM_OK);
		}
	}
	free(l);
}

static void
test_generated_consistency(void **state)
{
	(void)state;
	struct leaves *l = malloc(sizeof(*l));
	assert_non_null(l);
	make_leaves(l);
	uint8_t proof[AAM_MERKLE_MAX_PROOF * H];
	uint8_t roots[MAXN + 1][H];
	for (uint64_t n = 0; n <= MAXN; n++)
		assert_int_equal(aam_merkle_root(l->h, n, roots[n]), AAM_OK);
	for (uint64_t s2 = 1; s2 <= MAXN; s2++) {
		for (uint64_t s1 = 1; s1 <= s2; s1++) {
			size_t count = 99;
			l->size = s2;
			l->lookups = 0;
			assert_int_equal(aam_merkle_consistency_proof(s1, s2, leaves_node, l, proof,
			                                              AAM_MERKLE_MAX_PROOF, &count),
			                 AAM_OK);
			assert_true(l->lookups <= 3 * ceil_log2(s2) + 2);
			assert_true(count <= ceil_log2(s2) + 1);
			assert_int_equal(aam_merkle_verify_consistency(s1, s2, proof, count,
			                                               roots[s1], roots[s2]),
			                 AAM_OK);
			if (s1 == s2) {
				assert_int_equal(count, 0);
				continue;
			}
			for (size_t k = 0; k < count; k++) {
				proof[k * H] ^= 0x01;
				assert_int_not_equal(aam_merkle_verify_consistency(s1, s2, proof,
				                                                   count, roots[s1],
				                                                   roots[s2]),
				                     AAM_OK);
				proof[k * H] ^= 0x01;
			}
			/* A different old root, a new root, or sizes: all fail. */
			assert_int_not_equal(aam_merkle_verify_consistency(s1, s2, proof, count,
			                                                   roots[s1 - 1],
			                                                   roots[s2]),
			                     AAM_OK);
			assert_int_not_equal(aam_merkle_verify_consistency(s1, s2, proof, count,
			                                                   roots[s1],
			                                                   roots[s2 - 1]),
			                     AAM_OK);
			if (s1 + 1 < s2)
				assert_int_not_equal(
				        aam_merkle_verify_consistency(s1 + 1, s2, proof, count,
				                                      roots[s1 + 1], roots[s2]),
				        AAM_OK);
			assert_int_not_equal(aam_merkle_verify_consistency(s1, s2, proof, count - 1,
			                                                   roots[s1], roots[s2]),
			                     AAM_OK);
		}
	}
	free(l);
}

/* --- incremental tree ---------------------------------------------------- */

struct store {
	/* node[level][start >> level]; levels 0..6 cover 64 leaves */
	uint8_t node[7][MAXN][H];
	uint8_t have[7][MAXN];
	unsigned calls;
	int fail_at; /* fail the call with this number (1-based), 0 never */
};

static int
store_node(void *ctx, uint64_t start, unsigned level, const uint8_t hash[H])
{
	struct store *s = ctx;
	s->calls++;
	if (s->fail_at != 0 && (int)s->calls == s->fail_at)
		return AAM_E_DB;
	assert_true(level < 7);
	assert_int_equal(start % ((uint64_t)1 << level), 0);
	uint64_t i = start >> level;
	assert_true(i < MAXN);
	assert_false(s->have[level][i]); /* each subtree is completed exactly once */
	memcpy(s->node[level][i], hash, H);
	s->have[level][i] = 1;
	return AAM_OK;
}

static int
store_get(void *ctx, uint64_t start, unsigned level, uint8_t out[H])
{
	struct store *s = ctx;
	if (level >= 7 || (start >> level) >= MAXN || !s->have[level][start >> level])
		return AAM_E_NOTFOUND;
	memcpy(out, s->node[level][start >> level], H);
	return AAM_OK;
}

static void
test_tree_append_matches_batch(void **state)
{
	(void)state;
	struct leaves *l = malloc(sizeof(*l));
	struct store *s = calloc(1, sizeof(*s));
	assert_non_null(l);
	assert_non_null(s);
	make_leaves(l);
	struct aam_merkle_tree t;
	aam_merkle_tree_init(&t);
	uint8_t proof[AAM_MERKLE_MAX_PROOF * H];
	for (uint64_t n = 1; n <= MAXN; n++) {
		assert_int_equal(aam_merkle_tree_append(&t, l->h + (n - 1) * H, store_node, s),
		                 AAM_OK);
		assert_int_equal(t.size, n);
		assert_int_equal(t.count, (unsigned)__builtin_popcountll(n));
		uint8_t a[H], b[H];
		assert_int_equal(aam_merkle_tree_root(&t, a), AAM_OK);
		assert_int_equal(aam_merkle_root(l->h, n, b), AAM_OK);
		assert_memory_equal(a, b, H);

		/* The stored subtrees answer proofs and rebuild the same state. */
		struct aam_merkle_tree r;
		assert_int_equal(aam_merkle_tree_restore(&r, n, store_get, s), AAM_OK);
		assert_int_equal(r.size, t.size);
		assert_int_equal(r.count, t.count);
		assert_memory_equal(r.hash, t.hash, t.count * H);
		size_t count;
		uint64_t idx = n / 3;
		assert_int_equal(aam_merkle_inclusion_proof(idx, n, store_get, s, proof,
		                                            AAM_MERKLE_MAX_PROOF, &count),
		                 AAM_OK);
		assert_int_equal(
		        aam_merkle_verify_inclusion(l->h + idx * H, idx, n, proof, count, a),
		        AAM_OK);
	}
	/* Every perfect subtree was stored and equals the batch subtree hash. */
	for (unsigned lv = 0; lv < 7; lv++) {
		for (uint64_t i = 0; i < ((uint64_t)MAXN >> lv); i++) {
			assert_true(s->have[lv][i]);
			uint8_t want[H];
			assert_int_equal(
			        aam_merkle_root(l->h + (i << lv) * H, (uint64_t)1 << lv, want),
			        AAM_OK);
			assert_memory_equal(s->node[lv][i], want, H);
		}
	}
	/* tree_set from the right edge gives the same root. */
	struct aam_merkle_tree u;
	assert_int_equal(aam_merkle_tree_set(&u, t.size, &t.hash[0][0], t.count), AAM_OK);
	uint8_t a[H], b[H];
	assert_int_equal(aam_merkle_tree_root(&u, a), AAM_OK);
	assert_int_equal(aam_merkle_tree_root(&t, b), AAM_OK);
	assert_memory_equal(a, b, H);
	assert_int_equal(aam_merkle_tree_set(&u, 7, &t.hash[0][0], 2), AAM_E_INVAL);
	free(s);
	free(l);
}

static void
test_tree_store_failure_is_atomic(void **state)
{
	(void)state;
	struct leaves *l = malloc(sizeof(*l));
	struct store *s = calloc(1, sizeof(*s));
	assert_non_null(l);
	assert_non_null(s);
	make_leaves(l);
	struct aam_merkle_tree t;
	aam_merkle_tree_init(&t);
	for (unsigned i = 0; i < 7; i++)
		assert_int_equal(aam_merkle_tree_append(&t, l->h + i * H, store_node, s), AAM_OK);
	/* Leaf 7 completes levels 0..3: four store calls; fail the third. */
	struct aam_merkle_tree before = t;
	s->fail_at = (int)s->calls + 3;
	assert_int_equal(aam_merkle_tree_append(&t, l->h + 7 * H, store_node, s), AAM_E_DB);
	assert_memory_equal(&before, &t, sizeof(t));
	free(s);
	free(l);
}

/* --- 64-bit edges ------------------------------------------------------ */

/*
 * A hash-consistent tree of any size up to 2^64 - 1 that costs nothing to
 * evaluate: leaves alternate A, B, so every node at level >= 1 depends
 * only on its level.  Left/right order is exercised at level 0; the point
 * here is 64-bit index and size arithmetic.
 */
static uint8_t synth[AAM_MERKLE_MAX_LEVELS + 1][H];

static void
synthetic_init(void)
{
	assert_int_equal(aam_merkle_leaf_hash("A", 1, synth[0]), AAM_OK);
	assert_int_equal(aam_merkle_leaf_hash("B", 1, synth[AAM_MERKLE_MAX_LEVELS]), AAM_OK);
	assert_int_equal(aam_merkle_node_hash(synth[0], synth[AAM_MERKLE_MAX_LEVELS], synth[1]),
	                 AAM_OK);
	for (unsigned k = 1; k + 1 < AAM_MERKLE_MAX_LEVELS; k++)
		assert_int_equal(aam_merkle_node_hash(synth[k], synth[k], synth[k + 1]), AAM_OK);
}

static int
synthetic_node(void *ctx, uint64_t start, unsigned level, uint8_t out[H])
{
	(void)ctx;
	assert_true(level < 64);
	assert_int_equal(start & (((uint64_t)1 << level) - 1), 0);
	if (level == 0)
		memcpy(out, synth[(start & 1) ? AAM_MERKLE_MAX_LEVELS : 0], H);
	else
		memcpy(out, synth[level], H);
	return AAM_OK;
}

static void
test_huge_sizes(void **state)
{
	(void)state;
	const uint64_t sizes[] = {UINT64_MAX, (uint64_t)1 << 63, ((uint64_t)1 << 63) + 1,
	                          0x5555555555555555ULL};
	uint8_t proof[AAM_MERKLE_MAX_PROOF * H];
	synthetic_init();
	/* Sanity: the synthetic tree agrees with real hashing where both are cheap. */
	uint8_t leaves[16 * H], a[H], b[H];
	for (uint64_t i = 0; i < 16; i++)
		synthetic_node(NULL, i, 0, leaves + i * H);
	for (uint64_t n = 1; n <= 16; n++) {
		struct aam_merkle_tree t;
		assert_int_equal(aam_merkle_tree_restore(&t, n, synthetic_node, NULL), AAM_OK);
		assert_int_equal(aam_merkle_tree_root(&t, a), AAM_OK);
		assert_int_equal(aam_merkle_root(leaves, n, b), AAM_OK);
		assert_memory_equal(a, b, H);
	}
	for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
		uint64_t size = sizes[si];
		struct aam_merkle_tree t;
		assert_int_equal(aam_merkle_tree_restore(&t, size, synthetic_node, NULL), AAM_OK);
		uint8_t root[H];
		assert_int_equal(aam_merkle_tree_root(&t, root), AAM_OK);
		const uint64_t idxs[] = {0, size - 1, size / 2, size / 3};
		for (size_t k = 0; k < 4; k++) {
			size_t count;
			assert_int_equal(aam_merkle_inclusion_proof(idxs[k], size, synthetic_node,
			                                            NULL, proof,
			                                            AAM_MERKLE_MAX_PROOF, &count),
			                 AAM_OK);
			uint8_t leaf[H];
			synthetic_node(NULL, idxs[k], 0, leaf);
			assert_int_equal(aam_merkle_verify_inclusion(leaf, idxs[k], size, proof,
			                                             count, root),
			                 AAM_OK);
		}
		/* Consistency from a few old sizes to this one. */
		const uint64_t olds[] = {1, size / 2, size - 1, size};
		for (size_t k = 0; k < 4; k++) {
			size_t count;
			assert_int_equal(aam_merkle_consistency_proof(olds[k], size, synthetic_node,
			                                              NULL, proof,
			                                              AAM_MERKLE_MAX_PROOF, &count),
			                 AAM_OK);
			assert_true(count <= AAM_MERKLE_MAX_PROOF);
			struct aam_merkle_tree o;
			uint8_t oroot[H];
			assert_int_equal(aam_merkle_tree_restore(&o, olds[k], synthetic_node, NULL),
			                 AAM_OK);
			assert_int_equal(aam_merkle_tree_root(&o, oroot), AAM_OK);
			assert_int_equal(aam_merkle_verify_consistency(olds[k], size, proof, count,
			                                               oroot, root),
			                 AAM_OK);
		}
	}
	/* The full tree cannot take another leaf. */
	struct aam_merkle_tree t;
	assert_int_equal(aam_merkle_tree_restore(&t, UINT64_MAX, synthetic_node, NULL), AAM_OK);
	uint8_t leaf[H] = {0};
	assert_int_equal(aam_merkle_tree_append(&t, leaf, NULL, NULL), AAM_E_TOOBIG);
}

static void
test_hostile_arguments(void **state)
{
	(void)state;
	uint8_t h[H] = {0}, proof[AAM_MERKLE_MAX_PROOF * H];
	size_t count;
	struct leaves *l = malloc(sizeof(*l));
	assert_non_null(l);
	make_leaves(l);
	l->size = 10;
	assert_int_equal(aam_merkle_inclusion_proof(10, 10, leaves_node, l, proof,
	                                            AAM_MERKLE_MAX_PROOF, &count),
	                 AAM_E_INVAL);
	assert_int_equal(aam_merkle_inclusion_proof(0, 0, leaves_node, l, proof,
	                                            AAM_MERKLE_MAX_PROOF, &count),
	                 AAM_E_INVAL);
	/* A buffer too small for the proof is refused, not overrun. */
	assert_int_equal(aam_merkle_inclusion_proof(3, 10, leaves_node, l, proof, 2, &count),
	                 AAM_E_TOOBIG);
	assert_int_equal(aam_merkle_consistency_proof(0, 10, leaves_node, l, proof,
	                                              AAM_MERKLE_MAX_PROOF, &count),
	                 AAM_E_INVAL);
	assert_int_equal(aam_merkle_consistency_proof(11, 10, leaves_node, l, proof,
	                                              AAM_MERKLE_MAX_PROOF, &count),
	                 AAM_E_INVAL);
	assert_int_equal(aam_merkle_verify_inclusion(h, 5, 5, NULL, 0, h), AAM_E_INVAL);
	assert_int_equal(aam_merkle_verify_inclusion(h, UINT64_MAX, 1, NULL, 0, h), AAM_E_INVAL);
	assert_int_equal(aam_merkle_verify_inclusion(h, 0, 2, proof, AAM_MERKLE_MAX_PROOF + 1, h),
	                 AAM_E_INVAL);
	assert_int_equal(aam_merkle_verify_consistency(0, 0, NULL, 0, h, h), AAM_E_INVAL);
	assert_int_equal(aam_merkle_verify_consistency(2, 1, NULL, 0, h, h), AAM_E_INVAL);
	assert_int_equal(aam_merkle_verify_consistency(1, 2, NULL, 0, h, h), AAM_E_CRYPTO);
	assert_int_equal(aam_merkle_leaf_hash(NULL, 1, h), AAM_E_INVAL);
	/* The empty leaf and empty tree have their well-known hashes. */
	uint8_t e[H];
	aam_merkle_empty_root(e);
	uint8_t want[H];
	SHA256((const uint8_t *)"", 0, want);
	assert_memory_equal(e, want, H);
	assert_int_equal(aam_merkle_root(NULL, 0, h), AAM_OK);
	assert_memory_equal(h, want, H);
	free(l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_roots_json),
	        cmocka_unit_test(test_inclusion_vectors),
	        cmocka_unit_test(test_consistency_vectors),
	        cmocka_unit_test(test_generated_inclusion),
	        cmocka_unit_test(test_generated_consistency),
	        cmocka_unit_test(test_tree_append_matches_batch),
	        cmocka_unit_test(test_tree_store_failure_is_atomic),
	        cmocka_unit_test(test_huge_sizes),
	        cmocka_unit_test(test_hostile_arguments),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
