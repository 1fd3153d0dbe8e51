/*
 * RFC 6962 / RFC 9162 Merkle tree hashing, proofs and the incremental
 * right-edge ("compact range") state.  See merkle.h for the contract.
 *
 * Depends only on libc, libcrypto and aam/err.h: aam-audit-verify builds
 * this file into a binary that links nothing else.
 */
#include "common/merkle.h"

#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "aam/err.h"

#define HLEN AAM_MERKLE_HASH_LEN

int
aam_merkle_leaf_hash(const void *data, size_t len, uint8_t out[HLEN])
{
	static const uint8_t prefix = 0x00;
	if (out == NULL || (data == NULL && len > 0))
		return AAM_E_INVAL;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (md == NULL)
		return AAM_E_NOMEM;
	unsigned int outlen = 0;
	int ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
	         EVP_DigestUpdate(md, &prefix, 1) == 1 &&
	         (len == 0 || EVP_DigestUpdate(md, data, len) == 1) &&
	         EVP_DigestFinal_ex(md, out, &outlen) == 1 && outlen == HLEN;
	EVP_MD_CTX_free(md);
	return ok ? AAM_OK : AAM_E_CRYPTO;
}

int
aam_merkle_node_hash(const uint8_t left[HLEN], const uint8_t right[HLEN], uint8_t out[HLEN])
{
	uint8_t in[1 + 2 * HLEN];
	if (left == NULL || right == NULL || out == NULL)
		return AAM_E_INVAL;
	in[0] = 0x01;
	memcpy(in + 1, left, HLEN);
	memcpy(in + 1 + HLEN, right, HLEN);
	/* OUT may alias LEFT or RIGHT: the input was copied first. */
	return SHA256(in, sizeof(in), out) != NULL ? AAM_OK : AAM_E_CRYPTO;
}

void
aam_merkle_empty_root(uint8_t out[HLEN])
{
	/* SHA-256 of the empty string, spelled out so this cannot fail. */
	static const uint8_t empty[HLEN] = {
	        0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4,
	        0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b,
	        0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
	};
	memcpy(out, empty, HLEN);
}

/* --- incremental right-edge state ------------------------------------- */

void
aam_merkle_tree_init(struct aam_merkle_tree *t)
{
	memset(t, 0, sizeof(*t));
}

int
aam_merkle_tree_append(struct aam_merkle_tree *t, const uint8_t leaf_hash[HLEN],
                       aam_merkle_store_fn store, void *ctx)
{
	if (t == NULL || leaf_hash == NULL || t->count > AAM_MERKLE_MAX_LEVELS)
		return AAM_E_INVAL;
	if (t->size == UINT64_MAX)
		return AAM_E_TOOBIG;

	/*
	 * Each trailing one bit of the old size is a perfect subtree that
	 * the new leaf's subtree of equal size now pairs with.  Work on
	 * copies and commit at the end, so a failing STORE leaves T intact.
	 */
	uint64_t index = t->size;
	uint8_t h[HLEN];
	memcpy(h, leaf_hash, HLEN);
	if (store != NULL) {
		int rc = store(ctx, index, 0, h);
		if (rc != AAM_OK)
			return rc;
	}
	unsigned count = t->count;
	unsigned level = 0;
	for (uint64_t s = index; s & 1; s >>= 1) {
		if (count == 0)
			return AAM_E_INTERNAL; /* popcount(size) != count: corrupt state */
		int rc = aam_merkle_node_hash(t->hash[count - 1], h, h);
		if (rc != AAM_OK)
			return rc;
		count--;
		level++;
		if (store != NULL) {
			rc = store(ctx, index + 1 - ((uint64_t)1 << level), level, h);
			if (rc != AAM_OK)
				return rc;
		}
	}
	if (count >= AAM_MERKLE_MAX_LEVELS)
		return AAM_E_INTERNAL;
	memcpy(t->hash[count], h, HLEN);
	t->count = count + 1;
	t->size = index + 1;
	return AAM_OK;
}

/* Folds right-edge hashes right to left: H(e0, H(e1, ... H(en-2, en-1))). */
static int
fold(const uint8_t (*hash)[HLEN], unsigned count, uint8_t out[HLEN])
{
	if (count == 0) {
		aam_merkle_empty_root(out);
		return AAM_OK;
	}
	uint8_t acc[HLEN];
	memcpy(acc, hash[count - 1], HLEN);
	for (unsigned i = count - 1; i-- > 0;) {
		int rc = aam_merkle_node_hash(hash[i], acc, acc);
		if (rc != AAM_OK)
			return rc;
	}
	memcpy(out, acc, HLEN);
	return AAM_OK;
}

int
aam_merkle_tree_root(const struct aam_merkle_tree *t, uint8_t out[HLEN])
{
	if (t == NULL || out == NULL || t->count > AAM_MERKLE_MAX_LEVELS ||
	    t->count != (unsigned)__builtin_popcountll(t->size))
		return AAM_E_INVAL;
	return fold((const uint8_t(*)[HLEN])t->hash, t->count, out);
}

int
aam_merkle_tree_restore(struct aam_merkle_tree *t, uint64_t size, aam_merkle_node_fn get, void *ctx)
{
	if (t == NULL || get == NULL)
		return AAM_E_INVAL;
	struct aam_merkle_tree tmp;
	aam_merkle_tree_init(&tmp);
	uint64_t start = 0;
	for (unsigned b = AAM_MERKLE_MAX_LEVELS; b-- > 0;) {
		if (((size >> b) & 1) == 0)
			continue;
		int rc = get(ctx, start, b, tmp.hash[tmp.count]);
		if (rc != AAM_OK)
			return rc;
		tmp.count++;
		start += (uint64_t)1 << b;
	}
	tmp.size = size;
	*t = tmp;
	return AAM_OK;
}

int
aam_merkle_tree_set(struct aam_merkle_tree *t, uint64_t size, const uint8_t *hashes, size_t count)
{
	if (t == NULL || (hashes == NULL && count > 0) ||
	    count != (size_t)__builtin_popcountll(size))
		return AAM_E_INVAL;
	aam_merkle_tree_init(t);
	if (count > 0)
		memcpy(t->hash, hashes, count * HLEN);
	t->count = (unsigned)count;
	t->size = size;
	return AAM_OK;
}

int
aam_merkle_root(const uint8_t *leaf_hashes, uint64_t n, uint8_t out[HLEN])
{
	if (out == NULL || (leaf_hashes == NULL && n > 0))
		return AAM_E_INVAL;
	struct aam_merkle_tree t;
	aam_merkle_tree_init(&t);
	for (uint64_t i = 0; i < n; i++) {
		int rc = aam_merkle_tree_append(&t, leaf_hashes + i * HLEN, NULL, NULL);
		if (rc != AAM_OK)
			return rc;
	}
	return aam_merkle_tree_root(&t, out);
}

/* --- proof generation -------------------------------------------------- */

struct gen {
	aam_merkle_node_fn get;
	void *ctx;
	uint8_t *proof;
	size_t cap;
	size_t count;
};

/* Largest power of two strictly below N (N >= 2). */
static uint64_t
split_point(uint64_t n)
{
	return (uint64_t)1 << (63 - __builtin_clzll(n - 1));
}

/*
 * Hash of the leaves [start, start + len).  In every range the RFC's
 * recursion visits, START is aligned to the next power of two above LEN,
 * so the range is the perfect subtrees of LEN's set bits, largest first,
 * folded right to left: at most 64 lookups, and only one range per proof
 * is not itself a single perfect subtree.
 */
static int
range_hash(struct gen *g, uint64_t start, uint64_t len, uint8_t out[HLEN])
{
	uint8_t parts[AAM_MERKLE_MAX_LEVELS][HLEN];
	unsigned n = 0;
	uint64_t pos = start;
	for (unsigned b = AAM_MERKLE_MAX_LEVELS; b-- > 0;) {
		if (((len >> b) & 1) == 0)
			continue;
		int rc = g->get(g->ctx, pos, b, parts[n]);
		if (rc != AAM_OK)
			return rc;
		n++;
		pos += (uint64_t)1 << b;
	}
	if (n == 0)
		return AAM_E_INTERNAL;
	return fold((const uint8_t(*)[HLEN])parts, n, out);
}

static int
emit(struct gen *g, uint64_t start, uint64_t len)
{
	if (g->count >= g->cap)
		return AAM_E_TOOBIG;
	int rc = range_hash(g, start, len, g->proof + g->count * HLEN);
	if (rc == AAM_OK)
		g->count++;
	return rc;
}

/* RFC 9162 2.1.3.1 PATH(m, D[start:start+n]); siblings nearest the leaf come first. */
static int
gen_path(struct gen *g, uint64_t m, uint64_t start, uint64_t n)
{
	if (n <= 1)
		return AAM_OK;
	uint64_t k = split_point(n);
	int rc;
	if (m < k) {
		rc = gen_path(g, m, start, k);
		return rc != AAM_OK ? rc : emit(g, start + k, n - k);
	}
	rc = gen_path(g, m - k, start + k, n - k);
	return rc != AAM_OK ? rc : emit(g, start, k);
}

/* RFC 9162 2.1.4.1 SUBPROOF(m, D[start:start+n], b). */
static int
gen_subproof(struct gen *g, uint64_t m, uint64_t start, uint64_t n, int whole)
{
	if (m == n)
		return whole ? AAM_OK : emit(g, start, n);
	uint64_t k = split_point(n);
	int rc;
	if (m <= k) {
		rc = gen_subproof(g, m, start, k, whole);
		return rc != AAM_OK ? rc : emit(g, start + k, n - k);
	}
	rc = gen_subproof(g, m - k, start + k, n - k, 0);
	return rc != AAM_OK ? rc : emit(g, start, k);
}

int
aam_merkle_inclusion_proof(uint64_t index, uint64_t size, aam_merkle_node_fn get, void *ctx,
                           uint8_t *proof, size_t cap, size_t *count)
{
	if (get == NULL || count == NULL || (proof == NULL && cap > 0) || index >= size)
		return AAM_E_INVAL;
	struct gen g = {.get = get, .ctx = ctx, .proof = proof, .cap = cap, .count = 0};
	int rc = gen_path(&g, index, 0, size);
	*count = rc == AAM_OK ? g.count : 0;
	return rc;
}

int
aam_merkle_consistency_proof(uint64_t size1, uint64_t size2, aam_merkle_node_fn get, void *ctx,
                             uint8_t *proof, size_t cap, size_t *count)
{
	if (get == NULL || count == NULL || (proof == NULL && cap > 0) || size1 == 0 ||
	    size1 > size2)
		return AAM_E_INVAL;
	struct gen g = {.get = get, .ctx = ctx, .proof = proof, .cap = cap, .count = 0};
	int rc = size1 == size2 ? AAM_OK : gen_subproof(&g, size1, 0, size2, 1);
	*count = rc == AAM_OK ? g.count : 0;
	return rc;
}

/* --- proof verification ------------------------------------------------ */

int
aam_merkle_verify_inclusion(const uint8_t leaf_hash[HLEN], uint64_t index, uint64_t size,
                            const uint8_t *proof, size_t count, const uint8_t root[HLEN])
{
	if (leaf_hash == NULL || root == NULL || (proof == NULL && count > 0))
		return AAM_E_INVAL;
	if (index >= size || count > AAM_MERKLE_MAX_PROOF)
		return AAM_E_INVAL;

	uint64_t fn = index, sn = size - 1;
	uint8_t r[HLEN];
	memcpy(r, leaf_hash, HLEN);
	for (size_t i = 0; i < count; i++) {
		const uint8_t *p = proof + i * HLEN;
		if (sn == 0)
			return AAM_E_CRYPTO; /* more hashes than the path has levels */
		int rc;
		if ((fn & 1) || fn == sn) {
			rc = aam_merkle_node_hash(p, r, r);
			if ((fn & 1) == 0) {
				while ((fn & 1) == 0 && fn != 0) {
					fn >>= 1;
					sn >>= 1;
				}
			}
		} else {
			rc = aam_merkle_node_hash(r, p, r);
		}
		if (rc != AAM_OK)
			return rc;
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0 || memcmp(r, root, HLEN) != 0)
		return AAM_E_CRYPTO;
	return AAM_OK;
}

int
aam_merkle_verify_consistency(uint64_t size1, uint64_t size2, const uint8_t *proof, size_t count,
                              const uint8_t root1[HLEN], const uint8_t root2[HLEN])
{
	if (root1 == NULL || root2 == NULL || (proof == NULL && count > 0))
		return AAM_E_INVAL;
	if (size1 == 0 || size1 > size2 || count > AAM_MERKLE_MAX_PROOF)
		return AAM_E_INVAL;
	if (size1 == size2) {
		if (count != 0 || memcmp(root1, root2, HLEN) != 0)
			return AAM_E_CRYPTO;
		return AAM_OK;
	}
	if (count == 0)
		return AAM_E_CRYPTO;

	/*
	 * When SIZE1 is a power of two the old root is itself a node of the
	 * new tree and the proof omits it; the RFC prepends it.  Instead of
	 * copying, treat it as element -1 of the path.
	 */
	size_t i = 0;
	const uint8_t *first;
	if ((size1 & (size1 - 1)) == 0) {
		first = root1;
	} else {
		first = proof;
		i = 1;
	}
	uint64_t fn = size1 - 1, sn = size2 - 1;
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	uint8_t fr[HLEN], sr[HLEN];
	memcpy(fr, first, HLEN);
	memcpy(sr, first, HLEN);
	for (; i < count; i++) {
		const uint8_t *c = proof + i * HLEN;
		if (sn == 0)
			return AAM_E_CRYPTO;
		int rc;
		if ((fn & 1) || fn == sn) {
			rc = aam_merkle_node_hash(c, fr, fr);
			if (rc == AAM_OK)
				rc = aam_merkle_node_hash(c, sr, sr);
			if ((fn & 1) == 0) {
				while ((fn & 1) == 0 && fn != 0) {
					fn >>= 1;
					sn >>= 1;
				}
			}
		} else {
			rc = aam_merkle_node_hash(sr, c, sr);
		}
		if (rc != AAM_OK)
			return rc;
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0 || memcmp(fr, root1, HLEN) != 0 || memcmp(sr, root2, HLEN) != 0)
		return AAM_E_CRYPTO;
	return AAM_OK;
}
