/*
 * The vault's audit log end to end.
 *
 * - The Merkle vectors (../shared/vectors/merkle) through the log's own
 *   stored-subtree tree (vault/audit_tree.c + common/merkle.h): every root,
 *   every happy-path inclusion and consistency proof regenerated from the
 *   stored hashes byte for byte, every wantErr case rejected.
 * - A real aam-vault (SoftHSM2 token): 1,200 appends from four clients,
 *   `aamctl audit export`, and aam-audit-verify passes with the pinned
 *   audit key; then each kind of tampering of that real export (a byte
 *   edited, a record deleted, inserted, two swapped, the tail dropped, a
 *   checkpoint replaced by one signed with another key, a fork signed
 *   with the real audit key) fails with the right kind and index.
 * - `aamctl audit prove` output accepted by `aam-audit-verify inclusion`,
 *   `aamctl audit hash` equal to the stored end_user hash, OCSF export,
 *   schema refusals (unknown type, seq set by the client, unknown member,
 *   over 64 KiB) and the permission table (admin cannot append).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "aam/err.h"
#include "common/audit_client.h"
#include "common/b64.h"
#include "common/db.h"
#include "common/merkle.h"
#include "common/note.h"
#include "tests/integration/vault_harness.h"
#include "tests/lib/auditgen.h"
#include "tests/lib/testutil.h"
#include "vault/audit.h"
#include "vault/proto.h"
#include "vault/store.h"

#define ORIGIN "audit.test.example/aam"

static struct vh *V;
static char EXPORT[1024], KEYPEM[1024];

/* ---- helpers --------------------------------------------------------------- */

static json_t *
event(const char *who, uint64_t i)
{
	char rid[64], user[64];
	snprintf(rid, sizeof(rid), "req-%s-%06" PRIu64, who, i);
	snprintf(user, sizeof(user), "user-%" PRIu64 "@example.com", i % 7);
	return json_pack(
	        "{s:s, s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s},"
	        " s:{s:s, s:s}, s:{s:s, s:s}, s:{s:s, s:s, s:s},"
	        " s:{s:I, s:i}, s:s, s:{s:s, s:s}}",
	        "type", "tool.call", "identity", "spiffe_id", "spiffe://prod/agent/finance-analyst",
	        "owner", "zo\xc3\xab@example.com", "team", "finance", "environment", "prod",
	        "deployment", "fa-7d9f", "jti", rid, "attestation", "tpm", "decision", "effect",
	        i % 11 ? "allow" : "deny", "reason", "finance-analyst-readonly/tools[0]", "action",
	        "operation", "read", "resource", "salesforce.accounts", "policy", "name",
	        "finance-analyst-readonly", "hash", "sha256:00", "rule", "tools[0]", "outcome",
	        "latency_us", (json_int_t)(1000 + i), "status", 200, "request_id", rid,
	        "delegation", "owner", "zo\xc3\xab@example.com", "end_user", user);
}

struct appender {
	const char *sock;
	const char *who;
	uint64_t n;
	uint64_t *acked; /* seq of each acknowledged append */
	uint64_t nacked;
	volatile int *stop;
};

static void *
append_loop(void *arg)
{
	struct appender *ap = arg;
	struct aam_ipc_client *c = vh_connect(ap->sock);
	if (c == NULL)
		return NULL;
	for (uint64_t i = 0; i < ap->n && (ap->stop == NULL || !*ap->stop); i++) {
		json_t *ev = event(ap->who, i);
		uint64_t seq = 0;
		int rc = aam_audit_append(c, ev, 10000, &seq);
		json_decref(ev);
		if (rc != AAM_OK)
			break;
		ap->acked[ap->nacked++] = seq;
	}
	aam_ipc_client_free(c);
	return NULL;
}

/* N appends from each of four clients in parallel; returns the total acknowledged. */
static uint64_t
append_parallel(uint64_t n)
{
	pthread_t th[4];
	struct appender ap[4];
	static const char *const who[] = {"a", "b", "c", "d"};
	for (int t = 0; t < 4; t++) {
		ap[t] = (struct appender){
		        .sock = V->sock_gw, .who = who[t], .n = n, .acked = calloc(n, 8)};
		assert_int_equal(pthread_create(&th[t], NULL, append_loop, &ap[t]), 0);
	}
	uint64_t total = 0;
	for (int t = 0; t < 4; t++) {
		pthread_join(th[t], NULL);
		total += ap[t].nacked;
		free(ap[t].acked);
	}
	return total;
}

static uint64_t
log_size(void)
{
	char origin[256];
	uint64_t size = 0, signed_size = 0;
	assert_int_equal(vh_audit_info(V, origin, sizeof(origin), &size, &signed_size), AAM_OK);
	assert_string_equal(origin, ORIGIN);
	return size;
}

/* Waits until the newest checkpoint covers the whole log. */
static void
wait_signed(void)
{
	assert_int_equal(vh_audit_wait_signed(V, 10000), AAM_OK);
}

static int
verify(const char *dir, char **out)
{
	return aam_test_sh(out, "'%s' --key '%s' '%s' 2>&1", getenv("AAM_AUDIT_VERIFY_BIN"), KEYPEM,
	                   dir);
}

static int
setup(void **state)
{
	(void)state;
	if (!aam_test_softhsm_available())
		return 0;
	V = calloc(1, sizeof(*V));
	if (V == NULL || vh_setup(V, "  audit:\n    origin: " ORIGIN "\n") != 0 || vh_start(V) != 0)
		return -1;
	char *out = NULL;
	if (vh_aamctl(V, NULL, &out, NULL, "keys", "init", NULL) != 0)
		return -1;
	free(out);
	snprintf(EXPORT, sizeof(EXPORT), "%s/export", V->dir);
	snprintf(KEYPEM, sizeof(KEYPEM), "%s/pinned.pem", V->dir);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	if (V == NULL)
		return 0;
	vh_teardown(V);
	free(V);
	V = NULL;
	return 0;
}

#define NEED_VAULT()                                                                               \
	do {                                                                                       \
		if (V == NULL)                                                                     \
			skip();                                                                    \
	} while (0)

/* ---- the Merkle vectors through the stored tree ------------------------------------ */

static char *
vectors(void)
{
	return aam_test_source_path("../shared/vectors/merkle");
}

/* Decodes a base64 hash; false unless it is exactly 32 bytes. */
static bool
b64hash(const json_t *v, uint8_t out[32])
{
	const char *s = json_string_value(v);
	uint8_t buf[128];
	size_t n = 0;
	/* Some vectors carry short "don't care" hashes: zero-padded, as merkle_test reads them. */
	if (s == NULL ||
	    aam_b64_decode(s, strlen(s), buf, sizeof(buf), &n, AAM_B64_STD) != AAM_OK || n == 0 ||
	    n > 32)
		return false;
	memset(out, 0, 32);
	memcpy(out, buf, n);
	return true;
}

static size_t
b64proof(const json_t *arr, uint8_t *out, bool *ok)
{
	size_t n = json_array_size(arr);
	*ok = json_is_array(arr) || json_is_null(arr);
	if (n > AAM_MERKLE_MAX_PROOF) {
		*ok = false;
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		if (!b64hash(json_array_get(arr, i), out + i * 32))
			*ok = false;
	return n;
}

struct vtree {
	struct aam_db *db;
	char *dir;
	uint8_t roots[9][32];
	size_t matched; /* happy paths over the roots.json tree */
};

static void
vtree_build(struct vtree *t)
{
	char *dir = vectors();
	char path[2048];
	snprintf(path, sizeof(path), "%s/roots.json", dir);
	json_error_t e;
	json_t *roots = json_load_file(path, 0, &e);
	assert_non_null(roots);
	t->dir = aam_test_mkdtemp("aam-audit-tree");
	snprintf(path, sizeof(path), "%s/audit.db", t->dir);
	assert_int_equal(vault_audit_db_open(path, &t->db), AAM_OK);
	json_t *leaves = json_object_get(roots, "leaves_hex");
	json_t *want = json_object_get(roots, "roots_hex");
	assert_int_equal(json_array_size(leaves), 8);
	struct aam_merkle_tree tree;
	aam_merkle_tree_init(&tree);
	for (size_t n = 0; n <= 8; n++) {
		if (n > 0) {
			const char *hex = json_string_value(json_array_get(leaves, n - 1));
			uint8_t data[64], leaf[32];
			size_t len = strlen(hex) / 2;
			for (size_t i = 0; i < len; i++)
				sscanf(hex + 2 * i, "%2hhx", &data[i]);
			assert_int_equal(aam_merkle_leaf_hash(data, len, leaf), AAM_OK);
			assert_int_equal(
			        aam_merkle_tree_append(&tree, leaf, vault_audit_node_put, t->db),
			        AAM_OK);
		}
		/* The root from the incremental state and from a restore out of the db. */
		uint8_t root[32], root2[32];
		struct aam_merkle_tree r;
		assert_int_equal(aam_merkle_tree_root(&tree, root), AAM_OK);
		assert_int_equal(aam_merkle_tree_restore(&r, n, vault_audit_node_get, t->db),
		                 AAM_OK);
		assert_int_equal(aam_merkle_tree_root(&r, root2), AAM_OK);
		char hex[65];
		for (int i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", root[i]);
		assert_string_equal(hex, json_string_value(json_array_get(want, n)));
		assert_memory_equal(root, root2, 32);
		memcpy(t->roots[n], root, 32);
	}
	/* A subtree hash is stored once: a second store of the same node is refused. */
	uint8_t h[32] = {0};
	assert_int_not_equal(vault_audit_node_put(t->db, 0, 0, h), AAM_OK);
	json_decref(roots);
	free(dir);
}

static void
vtree_free(struct vtree *t)
{
	aam_db_close(t->db);
	aam_test_rmtree(t->dir);
	free(t->dir);
}

/* Calls FN for every case file under KIND/<sub>/. */
static size_t
each_case(const char *kind, void (*fn)(struct vtree *, const char *, json_t *), struct vtree *t)
{
	char *dir = vectors();
	char path[2048];
	snprintf(path, sizeof(path), "%s/%s", dir, kind);
	DIR *d = opendir(path);
	assert_non_null(d);
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		char sub[2400];
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		DIR *d2 = opendir(sub);
		if (d2 == NULL)
			continue;
		struct dirent *f;
		while ((f = readdir(d2)) != NULL) {
			if (strstr(f->d_name, ".json") == NULL)
				continue;
			char file[2700];
			snprintf(file, sizeof(file), "%s/%s", sub, f->d_name);
			json_error_t e;
			json_t *c = json_load_file(file, 0, &e);
			/* Two wantErr cases hold 2^64 - 1, beyond jansson's integers. */
			if (c == NULL)
				c = json_load_file(file, JSON_DECODE_INT_AS_REAL, &e);
			assert_non_null(c);
			fn(t, file, c);
			json_decref(c);
			n++;
		}
		closedir(d2);
	}
	closedir(d);
	free(dir);
	return n;
}

/* A vector's size or index; beyond 2^63 (only in wantErr cases) as UINT64_MAX. */
static uint64_t
u64_of(const json_t *v)
{
	if (json_is_integer(v))
		return (uint64_t)json_integer_value(v);
	double d = json_number_value(v);
	return d >= 9223372036854775807.0 ? UINT64_MAX : (uint64_t)d;
}

static void
inclusion_case(struct vtree *t, const char *file, json_t *c)
{
	bool want_err = json_is_true(json_object_get(c, "wantErr"));
	uint64_t idx = u64_of(json_object_get(c, "leafIdx"));
	uint64_t size = u64_of(json_object_get(c, "treeSize"));
	uint8_t root[32], leaf[32], proof[AAM_MERKLE_MAX_PROOF * 32];
	bool ok1 = b64hash(json_object_get(c, "root"), root);
	bool ok2 = b64hash(json_object_get(c, "leafHash"), leaf);
	bool ok3;
	size_t n = b64proof(json_object_get(c, "proof"), proof, &ok3);
	bool verifies = ok1 && ok2 && ok3 &&
	                aam_merkle_verify_inclusion(leaf, idx, size, proof, n, root) == AAM_OK;
	if (want_err) {
		if (verifies)
			fail_msg("%s: a wantErr case verified", file);
		return;
	}
	if (!verifies)
		fail_msg("%s: a happy path did not verify", file);
	/*
	 * Cases over the roots.json tree: the same proof from the log's stored
	 * subtrees, byte for byte (other cases use trees of their own).
	 */
	if (size > 8 || memcmp(t->roots[size], root, 32) != 0)
		return;
	t->matched++;
	uint8_t stored_leaf[32];
	assert_int_equal(vault_audit_node_get(t->db, (uint64_t)idx, 0, stored_leaf), AAM_OK);
	assert_memory_equal(stored_leaf, leaf, 32);
	uint8_t mine[AAM_MERKLE_MAX_PROOF * 32];
	size_t m = 0;
	assert_int_equal(aam_merkle_inclusion_proof((uint64_t)idx, (uint64_t)size,
	                                            vault_audit_node_get, t->db, mine,
	                                            AAM_MERKLE_MAX_PROOF, &m),
	                 AAM_OK);
	assert_int_equal(m, n);
	assert_memory_equal(mine, proof, n * 32);
}

static void
consistency_case(struct vtree *t, const char *file, json_t *c)
{
	bool want_err = json_is_true(json_object_get(c, "wantErr"));
	uint64_t s1 = u64_of(json_object_get(c, "size1"));
	uint64_t s2 = u64_of(json_object_get(c, "size2"));
	uint8_t r1[32], r2[32], proof[AAM_MERKLE_MAX_PROOF * 32];
	bool ok1 = b64hash(json_object_get(c, "root1"), r1);
	bool ok2 = b64hash(json_object_get(c, "root2"), r2);
	bool ok3;
	size_t n = b64proof(json_object_get(c, "proof"), proof, &ok3);
	bool verifies = ok1 && ok2 && ok3 &&
	                aam_merkle_verify_consistency(s1, s2, proof, n, r1, r2) == AAM_OK;
	if (want_err) {
		if (verifies)
			fail_msg("%s: a wantErr case verified", file);
		return;
	}
	if (!verifies)
		fail_msg("%s: a happy path did not verify", file);
	if (s2 > 8 || memcmp(t->roots[s2], r2, 32) != 0 || memcmp(t->roots[s1], r1, 32) != 0)
		return;
	t->matched++;
	uint8_t mine[AAM_MERKLE_MAX_PROOF * 32];
	size_t m = 0;
	assert_int_equal(aam_merkle_consistency_proof((uint64_t)s1, (uint64_t)s2,
	                                              vault_audit_node_get, t->db, mine,
	                                              AAM_MERKLE_MAX_PROOF, &m),
	                 AAM_OK);
	assert_int_equal(m, n);
	assert_memory_equal(mine, proof, n * 32);
}

static void
test_merkle_vectors(void **state)
{
	(void)state;
	struct vtree t;
	vtree_build(&t);
	t.matched = 0;
	size_t ni = each_case("inclusion", inclusion_case, &t);
	size_t mi = t.matched;
	t.matched = 0;
	size_t nc = each_case("consistency", consistency_case, &t);
	assert_true(ni > 50);
	assert_true(nc > 50);
	/* Some happy paths are over the roots.json tree and were regenerated. */
	assert_true(mi >= 1);
	assert_true(t.matched >= 1);
	print_message("merkle vectors: %zu inclusion (%zu regenerated), %zu consistency (%zu "
	              "regenerated)\n",
	              ni, mi, nc, t.matched);
	vtree_free(&t);
}

/* ---- export and verify -------------------------------------------------------------- */

static void
test_append_export_verify(void **state)
{
	(void)state;
	NEED_VAULT();
	uint64_t before = log_size();
	assert_true(before >= 1); /* audit.start */
	assert_int_equal(append_parallel(300), 1200);
	assert_int_equal(log_size(), before + 1200);
	wait_signed();
	char *out = NULL;
	assert_int_equal(vh_aamctl(V, NULL, &out, NULL, "audit", "export", "--out", EXPORT, NULL),
	                 0);
	free(out);
	/* The auditor pins the key obtained out of band (here: aamctl keys show's PEM, same key).
	 */
	char src[1100];
	snprintf(src, sizeof(src), "%s/key.pem", EXPORT);
	size_t len = 0;
	char *pem = aam_test_read_file(src, &len);
	assert_non_null(pem);
	assert_int_equal(aam_test_write_file(KEYPEM, pem, len, 0644), 0);
	free(pem);
	int st = verify(EXPORT, &out);
	if (st != 0)
		fail_msg("verify failed (%d): %s", st, out);
	assert_non_null(strstr(out, "OK: "));
	free(out);
	/* Checkpoints exist at least every 1,000 records. */
	char *man = NULL;
	snprintf(src, sizeof(src), "%s/manifest", EXPORT);
	man = aam_test_read_file(src, &len);
	assert_non_null(man);
	assert_non_null(strstr(man, "origin " ORIGIN "\n"));
	size_t ncp = 0;
	for (const char *p = man; (p = strstr(p, "\ncheckpoint ")) != NULL; p++)
		ncp++;
	assert_true(ncp >= 2);
	free(man);
	/* The sensitive end_user is stored hashed, never raw. */
	snprintf(src, sizeof(src), "%s/records", EXPORT);
	assert_false(vh_tree_contains(src, "user-3@example.com", 18));
	assert_true(vh_tree_contains(src, "\"end_user\":\"hmac-sha256:", 24));
}

/* A fresh copy of the export to tamper with. */
static void
copy_export(const char *to)
{
	assert_int_equal(aam_test_sh(NULL, "rm -rf '%s' && cp -a '%s' '%s'", to, EXPORT, to), 0);
}

static char *
seg_path(const char *dir)
{
	static char p[2048];
	snprintf(p, sizeof(p), "%s/records/000000000000.jsonl", dir);
	return p;
}

/* Line-level edit of the only segment with sed; checks the finding. */
static void
expect(const char *dir, int code, const char *kind, uint64_t index)
{
	char *out = NULL;
	int st = verify(dir, &out);
	char want[128];
	snprintf(want, sizeof(want), "kind=%s index=%" PRIu64 ":", kind, index);
	if (st != code || strstr(out, want) == NULL)
		fail_msg("expected exit %d and '%s', got %d: %s", code, want, st, out);
	free(out);
}

static void
test_tamper(void **state)
{
	(void)state;
	NEED_VAULT();
	char dir[1100];
	snprintf(dir, sizeof(dir), "%s/tampered", V->dir);
	char manp[1200];
	snprintf(manp, sizeof(manp), "%s/manifest", EXPORT);
	size_t mlen = 0;
	char *man = aam_test_read_file(manp, &mlen);
	assert_non_null(man);
	uint64_t records = 0;
	sscanf(strstr(man, "\nrecords ") + 9, "%" SCNu64, &records);
	assert_true(records >= 1000);

	/* One byte of record 500 edited (still canonical JSON). */
	copy_export(dir);
	assert_int_equal(
	        aam_test_sh(
	                NULL,
	                "sed -i '501s/\"request_id\":\"req-\\(.\\)/\"request_id\":\"rEq-\\1/' '%s'",
	                seg_path(dir)),
	        0);
	expect(dir, 1, "modified", 500);

	/* Record 537 deleted. */
	copy_export(dir);
	assert_int_equal(aam_test_sh(NULL, "sed -i '538d' '%s'", seg_path(dir)), 0);
	expect(dir, 3, "deleted", 537);

	/* A second copy of record 300 inserted after it. */
	copy_export(dir);
	assert_int_equal(aam_test_sh(NULL, "sed -i '301p' '%s'", seg_path(dir)), 0);
	expect(dir, 2, "inserted", 301);

	/* Records 400 and 401 swapped. */
	copy_export(dir);
	assert_int_equal(aam_test_sh(NULL, "sed -i '401{h;d};402G' '%s'", seg_path(dir)), 0);
	expect(dir, 4, "reordered", 400);

	/* The last 10 records dropped. */
	copy_export(dir);
	assert_int_equal(aam_test_sh(NULL, "head -n %" PRIu64 " '%s' > '%s.t' && mv '%s.t' '%s'",
	                             records - 10, seg_path(dir), seg_path(dir), seg_path(dir),
	                             seg_path(dir)),
	                 0);
	expect(dir, 5, "truncated", records - 10);

	/* The last checkpoint replaced by one signed with another key under the same name. */
	copy_export(dir);
	EVP_PKEY *other = EVP_EC_gen("P-256");
	assert_non_null(other);
	uint8_t root[32];
	memset(root, 0x42, sizeof(root));
	char cp[1300];
	snprintf(cp, sizeof(cp), "%s/checkpoints/%" PRIu64, dir, records);
	assert_int_equal(aam_auditgen_sign_checkpoint(other, ORIGIN, ORIGIN, records, root, cp), 0);
	EVP_PKEY_free(other);
	expect(dir, 9, "unknown-key", records);

	/*
	 * A fork: a second checkpoint of an existing size with another root,
	 * signed with the real audit key in the token (the vault is stopped
	 * meanwhile so this process can use the token).
	 */
	copy_export(dir);
	assert_int_equal(vh_stop(V), 0);
	struct vault_store_config sc = {.module = V->hsm.module_path,
	                                .token_uri = V->hsm.token_uri,
	                                .pin_file = V->hsm.user_pin_file,
	                                .db_path = NULL,
	                                .pool_size = 1};
	char dbp[1200], err[256];
	snprintf(dbp, sizeof(dbp), "%s/vault.db", V->state);
	sc.db_path = dbp;
	struct vault_store *st = NULL;
	assert_int_equal(vault_store_open(&sc, &st, err, sizeof(err)), AAM_OK);
	struct vault_pubkey pk;
	assert_int_equal(vault_pubkey(st, VAULT_KEY_AUDIT, &pk), AAM_OK);
	const unsigned char *pp = pk.spki_der;
	EVP_PKEY *pub = d2i_PUBKEY(NULL, &pp, (long)pk.spki_len);
	assert_non_null(pub);
	uint32_t kid = 0;
	assert_int_equal(aam_note_key_id(pub, &kid), AAM_OK);
	EVP_PKEY_free(pub);
	/* The head: a split view, two signed histories of the newest size. */
	uint64_t fsize = records;
	/* Sign "ORIGIN / fsize / root'" through the token. */
	char body[512];
	char b64[64];
	aam_note_b64_encode(root, 32, b64, sizeof(b64), NULL);
	int blen = snprintf(body, sizeof(body), "%s\n%" PRIu64 "\n%s\n", ORIGIN, fsize, b64);
	uint8_t dg[32], rs[64];
	EVP_Digest(body, (size_t)blen, dg, NULL, EVP_sha256(), NULL);
	assert_int_equal(vault_sign(st, VAULT_KEY_AUDIT, dg, rs), AAM_OK);
	vault_store_close(st);
	ECDSA_SIG *sig = ECDSA_SIG_new();
	ECDSA_SIG_set0(sig, BN_bin2bn(rs, 32, NULL), BN_bin2bn(rs + 32, 32, NULL));
	uint8_t line[128], *lp = line + 4;
	line[0] = (uint8_t)(kid >> 24);
	line[1] = (uint8_t)(kid >> 16);
	line[2] = (uint8_t)(kid >> 8);
	line[3] = (uint8_t)kid;
	int dl = i2d_ECDSA_SIG(sig, &lp);
	ECDSA_SIG_free(sig);
	char sigb64[256];
	aam_note_b64_encode(line, (size_t)dl + 4, sigb64, sizeof(sigb64), NULL);
	char note[1024];
	int nl = snprintf(note, sizeof(note), "%s\n\xe2\x80\x94 %s %s\n", body, ORIGIN, sigb64);
	snprintf(cp, sizeof(cp), "%s/checkpoints/%" PRIu64 ".fork", dir, fsize);
	assert_int_equal(aam_test_write_file(cp, note, (size_t)nl, 0644), 0);
	expect(dir, 6, "fork", fsize);
	if (vh_start(V) != 0) {
		char *log = aam_test_read_file(V->log, NULL);
		fail_msg("restart failed: %s", log != NULL ? log : "(no log)");
	}
	free(man);
}

/* ---- prove, hash, OCSF, refusals ------------------------------------------------------ */

static void
test_prove_inclusion(void **state)
{
	(void)state;
	NEED_VAULT();
	wait_signed();
	char pdir[1100];
	snprintf(pdir, sizeof(pdir), "%s/proof", V->dir);
	char *out = NULL;
	assert_int_equal(
	        vh_aamctl(V, NULL, &out, NULL, "audit", "prove", "777", "--out", pdir, NULL), 0);
	json_error_t e;
	json_t *j = json_loadb(out, strcspn(out, "\n") ? strstr(out, "\n}") - out + 2 : 0, 0, &e);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(j, "index")), 777);
	assert_true(json_array_size(json_object_get(j, "proof")) >= 10);
	json_decref(j);
	free(out);
	const char *bin = getenv("AAM_AUDIT_VERIFY_BIN");
	int st = aam_test_sh(
	        &out,
	        "'%s' inclusion --key '%s' --checkpoint '%s/checkpoint' --record '%s/record' "
	        "--index 777 --proof '%s/proof' 2>&1",
	        bin, KEYPEM, pdir, pdir, pdir);
	if (st != 0)
		fail_msg("inclusion failed (%d): %s", st, out);
	free(out);
	/* The wrong index is not included. */
	st = aam_test_sh(
	        &out,
	        "'%s' inclusion --key '%s' --checkpoint '%s/checkpoint' --record '%s/record' "
	        "--index 778 --proof '%s/proof' 2>&1",
	        bin, KEYPEM, pdir, pdir, pdir);
	assert_int_not_equal(st, 0);
	free(out);
	/* A seq beyond the log is refused. */
	assert_int_not_equal(vh_aamctl(V, NULL, NULL, NULL, "audit", "prove", "99999999", NULL), 0);
}

static void
test_hash_matches_records(void **state)
{
	(void)state;
	NEED_VAULT();
	char *out = NULL;
	assert_int_equal(vh_aamctl(V, "user-3@example.com\n", &out, NULL, "audit", "hash", NULL),
	                 0);
	assert_true(strncmp(out, "hmac-sha256:", 12) == 0);
	out[strcspn(out, "\n")] = '\0';
	char needle[128];
	snprintf(needle, sizeof(needle), "\"end_user\":\"%s\"", out);
	char rec[1200];
	snprintf(rec, sizeof(rec), "%s/records", EXPORT);
	assert_true(vh_tree_contains(rec, needle, strlen(needle)));
	char *out2 = NULL;
	assert_int_equal(vh_aamctl(V, "user-4@example.com", &out2, NULL, "audit", "hash", NULL), 0);
	assert_string_not_equal(out, out2);
	free(out);
	free(out2);
}

static void
test_ocsf_and_tail(void **state)
{
	(void)state;
	NEED_VAULT();
	char dir[1100];
	snprintf(dir, sizeof(dir), "%s/ocsf", V->dir);
	char *out = NULL;
	assert_int_equal(vh_aamctl(V, NULL, &out, NULL, "audit", "export", "--format", "ocsf",
	                           "--out", dir, NULL),
	                 0);
	free(out);
	char f[1200];
	snprintf(f, sizeof(f), "%s/ocsf.jsonl", dir);
	size_t len = 0;
	char *text = aam_test_read_file(f, &len);
	assert_non_null(text);
	size_t lines = 0;
	for (char *p = text, *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
		json_error_t e;
		json_t *ev = json_loadb(p, (size_t)(nl - p), 0, &e);
		assert_non_null(ev);
		json_int_t cls = json_integer_value(json_object_get(ev, "class_uid"));
		assert_true(cls == 6003 || cls == 3002);
		assert_int_equal(json_integer_value(json_object_get(ev, "type_uid")),
		                 cls * 100 +
		                         json_integer_value(json_object_get(ev, "activity_id")));
		assert_true(json_integer_value(json_object_get(ev, "time")) > 1600000000000LL);
		assert_non_null(json_object_get(json_object_get(ev, "metadata"), "product"));
		if (lines == 5) {
			assert_int_equal(cls, 6003);
			assert_string_equal(json_string_value(json_object_get(
			                            json_object_get(ev, "api"), "operation")),
			                    "read");
			assert_string_equal(
			        json_string_value(json_object_get(
			                json_object_get(json_object_get(ev, "actor"), "user"),
			                "uid")),
			        "spiffe://prod/agent/finance-analyst");
		}
		json_decref(ev);
		lines++;
	}
	assert_true(lines >= 1000);
	free(text);
	assert_int_equal(vh_aamctl(V, NULL, &out, NULL, "audit", "tail", "-n", "3", NULL), 0);
	size_t n = 0;
	for (char *p = out; (p = strchr(p, '\n')) != NULL; p++)
		n++;
	assert_int_equal(n, 3);
	assert_non_null(strstr(out, "\"seq\":"));
	free(out);
}

/* Admin changes are recorded by the vault itself, naming the secret, never its value. */
static void
test_admin_records(void **state)
{
	(void)state;
	const char *value = "adm1n-s3cret-value-0042";
	char stdin_data[128];
	snprintf(stdin_data, sizeof(stdin_data), "%s\n", value);
	assert_int_equal(vh_aamctl(V, stdin_data, NULL, NULL, "secret", "put", "admin-audit-demo",
	                           "--type", "bearer", "--bind", "https://api.example.com/v1",
	                           NULL),
	                 0);
	assert_int_equal(
	        vh_aamctl(V, stdin_data, NULL, NULL, "secret", "rotate", "admin-audit-demo", NULL),
	        0);
	assert_int_equal(
	        vh_aamctl(V, NULL, NULL, NULL, "secret", "delete", "admin-audit-demo", NULL), 0);
	char *out = NULL;
	assert_int_equal(vh_aamctl(V, NULL, &out, NULL, "audit", "tail", "-n", "3", NULL), 0);
	const char *types[] = {"admin.secret.put", "admin.secret.rotate", "admin.secret.delete"};
	for (size_t i = 0; i < 3; i++) {
		char want[64];
		snprintf(want, sizeof(want), "\"type\":\"%s\"", types[i]);
		assert_non_null(strstr(out, want));
	}
	assert_non_null(strstr(out, "\"secret\":\"admin-audit-demo\""));
	assert_null(strstr(out, value));
	free(out);
}

static int
append_text(const char *sock, const char *text, size_t len, char *msg, size_t msglen)
{
	struct aam_ipc_client *c = vh_connect(sock);
	assert_non_null(c);
	struct aam_buf reply;
	aam_buf_init(&reply, 4096);
	int rc = aam_ipc_call(c, AAM_IPC_AUDIT_APPEND, text, len, 10000, NULL, &reply);
	snprintf(msg, msglen, "%s", rc != AAM_OK ? aam_buf_cstr(&reply) : "");
	aam_buf_uninit(&reply);
	aam_ipc_client_free(c);
	return rc;
}

static void
test_refusals(void **state)
{
	(void)state;
	NEED_VAULT();
	char msg[512];
	uint64_t size = log_size();
	static const struct {
		const char *json;
		int rc;
		const char *why;
	} t[] = {
	        {"{\"type\":\"no.such\"}", AAM_E_INVAL, "type"},
	        {"{\"type\":\"tool.call\",\"seq\":5}", AAM_E_INVAL, "seq"},
	        {"{\"type\":\"tool.call\",\"time\":\"x\"}", AAM_E_INVAL, "time"},
	        {"{\"type\":\"tool.call\",\"secret\":\"x\"}", AAM_E_INVAL, "secret: unknown"},
	        {"{\"type\":\"tool.call\",\"identity\":{\"pin\":\"1\"}}", AAM_E_INVAL,
	         "identity.pin"},
	        {"{\"type\":\"tool.call\",\"outcome\":{\"status\":\"200\"}}", AAM_E_INVAL,
	         "outcome.status"},
	        {"{\"type\":\"tool.call\",\"decision\":{\"effect\":\"maybe\"}}", AAM_E_INVAL,
	         "decision.effect"},
	        {"{\"type\":\"tool.call\",\"v\":2}", AAM_E_INVAL, "v:"},
	        /* Plain parameters are a flat object of scalars. */
	        {"{\"type\":\"tool.call\",\"action\":{\"params\":\"x\"}}", AAM_E_INVAL,
	         "action.params: must be an object"},
	        {"{\"type\":\"tool.call\",\"action\":{\"params\":{\"a\":{\"b\":1}}}}", AAM_E_INVAL,
	         "action.params.a"},
	        {"{\"type\":\"tool.call\",\"action\":{\"params\":{\"a\":[1]}}}", AAM_E_INVAL,
	         "action.params.a"},
	        {"[1,2]", AAM_E_INVAL, "object"},
	        {"{\"type\":\"tool.call\",", AAM_E_PARSE, "not JSON"},
	        {"{\"type\":\"tool.call\",\"type\":\"mcp.call\"}", AAM_E_PARSE, "not JSON"},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int rc = append_text(V->sock_gw, t[i].json, strlen(t[i].json), msg, sizeof(msg));
		if (rc != t[i].rc || strstr(msg, t[i].why) == NULL)
			fail_msg("%s: got %d '%s'", t[i].json, rc, msg);
	}
	/* Over 64 KiB. */
	size_t big = 70 * 1024;
	char *b = malloc(big + 64);
	int n = snprintf(b, big + 64, "{\"type\":\"tool.call\",\"request_id\":\"");
	memset(b + n, 'x', big);
	memcpy(b + n + big, "\"}", 3);
	assert_int_equal(append_text(V->sock_gw, b, strlen(b), msg, sizeof(msg)), AAM_E_TOOBIG);
	free(b);
	/* Eight strings of 8 KiB each pass the field limits but make the record too big. */
	json_t *ev = json_pack("{s:s}", "type", "policy.reload");
	json_t *detail = json_object();
	char *s8 = malloc(8193);
	memset(s8, 'y', 8192);
	s8[8192] = '\0';
	for (int i = 0; i < 9; i++) {
		char k[8];
		snprintf(k, sizeof(k), "k%d", i);
		json_object_set_new(detail, k, json_string(s8));
	}
	free(s8);
	json_object_set_new(ev, "detail", detail);
	struct aam_ipc_client *c = vh_connect(V->sock_gw);
	assert_int_equal(aam_audit_append(c, ev, 10000, NULL), AAM_E_TOOBIG);
	json_decref(ev);
	aam_ipc_client_free(c);
	/* Nothing above used a seq. */
	assert_int_equal(log_size(), size);
	/* The admin role reads the log but may not append; the gateway may not read it. */
	assert_int_equal(
	        append_text(V->sock_admin, "{\"type\":\"tool.call\"}", 20, msg, sizeof(msg)),
	        AAM_E_PERM);
	c = vh_connect(V->sock_gw);
	struct aam_buf reply;
	aam_buf_init(&reply, 4096);
	assert_int_equal(aam_ipc_call(c, VAULT_IPC_AUDIT_INFO, NULL, 0, 10000, NULL, &reply),
	                 AAM_E_PERM);
	/* The gateway and attest roles may read the newest checkpoint. */
	aam_buf_reset(&reply);
	assert_int_equal(aam_ipc_call(c, AAM_IPC_AUDIT_CHECKPOINT, NULL, 0, 10000, NULL, &reply),
	                 AAM_OK);
	assert_non_null(strstr(aam_buf_cstr(&reply), ORIGIN "\n"));
	aam_buf_uninit(&reply);
	aam_ipc_client_free(c);
	/* A valid event from the attest socket. */
	c = vh_connect(V->sock_at);
	ev = json_pack("{s:s, s:{s:s, s:s}, s:{s:s, s:s}}", "type", "attest.issue", "identity",
	               "spiffe_id", "spiffe://prod/agent/x", "attestation", "tpm", "decision",
	               "effect", "allow", "reason", "ok");
	uint64_t seq = 0;
	assert_int_equal(aam_audit_append(c, ev, 10000, &seq), AAM_OK);
	assert_int_equal(seq, size);
	json_decref(ev);
	aam_ipc_client_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_merkle_vectors),
	        cmocka_unit_test(test_append_export_verify),
	        cmocka_unit_test(test_tamper),
	        cmocka_unit_test(test_prove_inclusion),
	        cmocka_unit_test(test_hash_matches_records),
	        cmocka_unit_test(test_ocsf_and_tail),
	        cmocka_unit_test(test_refusals),
	        cmocka_unit_test(test_admin_records),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
