/*
 * RFC 6962 / RFC 9162 section 2.1 Merkle tree hashing for the audit log.
 *
 *   leaf hash  = SHA-256(0x00 || record bytes)
 *   node hash  = SHA-256(0x01 || left || right)
 *   empty tree = SHA-256("")
 *
 * The tree over n leaves splits at k, the largest power of two below n;
 * every "perfect subtree" [start, start + 2^level) with start a multiple
 * of 2^level is a node whose hash never changes once its last leaf exists.
 * The vault stores those hashes as they are created (the store callback of
 * aam_merkle_tree_append) and answers proofs from them through a lookup
 * callback (aam_merkle_node_fn), so a proof costs O(log n) lookups.
 *
 * This file and merkle.c depend only on libc, OpenSSL libcrypto and
 * include/aam/err.h, because aam-audit-verify compiles them on their own.
 * Proofs are flat arrays of AAM_MERKLE_HASH_LEN-byte hashes in RFC 9162
 * order (the hash nearest the leaf first).
 */
#ifndef AAM_COMMON_MERKLE_H
#define AAM_COMMON_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define AAM_MERKLE_HASH_LEN 32
/* A tree of at most 2^64 - 1 leaves has at most 64 perfect subtrees on its right edge. */
#define AAM_MERKLE_MAX_LEVELS 64
/*
 * The longest proof for a tree of up to 2^64 - 1 leaves: an inclusion
 * proof has at most 64 hashes, a consistency proof at most 65 (one per
 * level plus the old tree's own subtree).  Callers size proof buffers
 * with this.
 */
#define AAM_MERKLE_MAX_PROOF 65

/*
 * Lookup of a perfect subtree hash: writes the hash of leaves
 * [start, start + 2^level) to OUT (level 0 is the leaf hash of leaf
 * START).  START is always a multiple of 2^level, and the generators ask
 * only for subtrees that lie inside the tree size they were given.
 * Returns AAM_OK or an error code, which the generator passes back.
 */
typedef int (*aam_merkle_node_fn)(void *ctx, uint64_t start, unsigned level,
                                  uint8_t out[AAM_MERKLE_HASH_LEN]);

/*
 * Called by aam_merkle_tree_append for every perfect subtree that the new
 * leaf completes, lowest level first: the leaf itself (level 0) and each
 * node it closes.  A non-zero return aborts the append and leaves the
 * tree unchanged.
 */
typedef int (*aam_merkle_store_fn)(void *ctx, uint64_t start, unsigned level,
                                   const uint8_t hash[AAM_MERKLE_HASH_LEN]);

/* SHA-256(0x00 || data). */
int aam_merkle_leaf_hash(const void *data, size_t len, uint8_t out[AAM_MERKLE_HASH_LEN]);
/* SHA-256(0x01 || left || right). */
int aam_merkle_node_hash(const uint8_t left[AAM_MERKLE_HASH_LEN],
                         const uint8_t right[AAM_MERKLE_HASH_LEN],
                         uint8_t out[AAM_MERKLE_HASH_LEN]);
/* SHA-256(""): the root of the tree with no leaves. */
void aam_merkle_empty_root(uint8_t out[AAM_MERKLE_HASH_LEN]);

/* Root over N leaf hashes stored back to back in LEAF_HASHES (N * 32 bytes). */
int aam_merkle_root(const uint8_t *leaf_hashes, uint64_t n, uint8_t out[AAM_MERKLE_HASH_LEN]);

/*
 * Incremental tree state ("compact range" of [0, size)): the hashes of
 * the perfect subtrees along the right edge, one per set bit of SIZE,
 * largest (leftmost) first.  O(log n) memory; plain data, safe to copy.
 */
struct aam_merkle_tree {
	uint64_t size;
	unsigned count; /* number of entries in hash[], == popcount(size) */
	uint8_t hash[AAM_MERKLE_MAX_LEVELS][AAM_MERKLE_HASH_LEN];
};

void aam_merkle_tree_init(struct aam_merkle_tree *t);
/*
 * Appends one leaf hash.  STORE (may be NULL) sees every completed perfect
 * subtree; if it fails the tree is left as it was.  AAM_E_TOOBIG when the
 * tree already has 2^64 - 1 leaves.
 */
int aam_merkle_tree_append(struct aam_merkle_tree *t, const uint8_t leaf_hash[AAM_MERKLE_HASH_LEN],
                           aam_merkle_store_fn store, void *ctx);
/* The root of the tree of t->size leaves (the empty root when size is 0). */
int aam_merkle_tree_root(const struct aam_merkle_tree *t, uint8_t out[AAM_MERKLE_HASH_LEN]);
/* Rebuilds the state for SIZE leaves from stored subtree hashes: popcount(size) lookups. */
int aam_merkle_tree_restore(struct aam_merkle_tree *t, uint64_t size, aam_merkle_node_fn get,
                            void *ctx);
/*
 * Sets the state from an explicit right-edge list (COUNT hashes, largest
 * subtree first), as carried in an export's manifest.  COUNT must equal
 * popcount(SIZE), otherwise AAM_E_INVAL.
 */
int aam_merkle_tree_set(struct aam_merkle_tree *t, uint64_t size, const uint8_t *hashes,
                        size_t count);

/*
 * Inclusion proof (RFC 9162 2.1.3.1) for leaf INDEX in the tree of SIZE
 * leaves.  PROOF holds CAP hashes (AAM_MERKLE_MAX_PROOF is always enough);
 * *COUNT receives the number written.  AAM_E_INVAL when INDEX >= SIZE.
 */
int aam_merkle_inclusion_proof(uint64_t index, uint64_t size, aam_merkle_node_fn get, void *ctx,
                               uint8_t *proof, size_t cap, size_t *count);
/*
 * Consistency proof (RFC 9162 2.1.4.1) from the tree of SIZE1 leaves to
 * the tree of SIZE2 leaves.  Empty when the sizes are equal; AAM_E_INVAL
 * when SIZE1 is 0 (nothing to prove) or SIZE1 > SIZE2.
 */
int aam_merkle_consistency_proof(uint64_t size1, uint64_t size2, aam_merkle_node_fn get, void *ctx,
                                 uint8_t *proof, size_t cap, size_t *count);

/*
 * RFC 9162 2.1.3.2.  AAM_OK when PROOF (COUNT hashes) proves LEAF_HASH is
 * leaf INDEX of the tree of SIZE leaves with root ROOT; AAM_E_INVAL for
 * impossible parameters (INDEX >= SIZE, overlong proof); AAM_E_CRYPTO when
 * the proof does not verify.
 */
int aam_merkle_verify_inclusion(const uint8_t leaf_hash[AAM_MERKLE_HASH_LEN], uint64_t index,
                                uint64_t size, const uint8_t *proof, size_t count,
                                const uint8_t root[AAM_MERKLE_HASH_LEN]);
/*
 * RFC 9162 2.1.4.2.  AAM_OK when PROOF shows the tree (SIZE2, ROOT2)
 * extends the tree (SIZE1, ROOT1).  Equal sizes need an empty proof and
 * equal roots.  SIZE1 == 0 is refused (AAM_E_INVAL): every tree extends
 * the empty one, so such a "proof" proves nothing and is more likely a
 * caller mistake.  AAM_E_CRYPTO when the proof does not verify.
 */
int aam_merkle_verify_consistency(uint64_t size1, uint64_t size2, const uint8_t *proof,
                                  size_t count, const uint8_t root1[AAM_MERKLE_HASH_LEN],
                                  const uint8_t root2[AAM_MERKLE_HASH_LEN]);

#endif /* AAM_COMMON_MERKLE_H */
