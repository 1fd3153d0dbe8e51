/*
 * Audit export generator for tests; see auditgen.h and docs/AUDIT.md.
 * It writes exactly what `aamctl audit export` must write, so the
 * verifier's tests double as a specification of the exporter.
 */
#include "tests/lib/auditgen.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "aam/err.h"
#include "common/merkle.h"
#include "common/note.h"

void
aam_auditgen_defaults(struct aam_auditgen_opts *o, const char *dir, EVP_PKEY *key)
{
	memset(o, 0, sizeof(*o));
	o->dir = dir;
	o->key = key;
	o->origin = "audit.example.com/aam";
	o->records = 1000;
	o->checkpoint_every = 100;
	o->segment_records = 250;
	o->time_backwards_at = AAM_AUDITGEN_NONE;
	o->noncanonical_at = AAM_AUDITGEN_NONE;
}

size_t
aam_auditgen_record(const struct aam_auditgen_opts *o, uint64_t seq, char *buf, size_t cap)
{
	static const char *const types[] = {"tool.call", "model.request", "credential.use",
	                                    "attest.issue"};
	/* Costs spelled as JCS (ECMAScript) prints them. */
	static const char *const costs[] = {"0",    "0.0125", "0.025", "0.0375",
	                                    "0.05", "0.0625", "0.075"};
	/* 2025-01-01T00:00:00Z plus 1.5 ms per record. */
	uint64_t us = 1735689600ULL * 1000000 + seq * 1500;
	if (seq == o->time_backwards_at && seq > 0)
		us = 1735689600ULL * 1000000 + (seq - 1) * 1500 - 1;
	time_t secs = (time_t)(us / 1000000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	char when[32];
	size_t n = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + n, sizeof(when) - n, ".%06uZ", (unsigned)(us % 1000000));
	/* Stand-in digests: distinct per record, the right shape. */
	char hex64[65], hex32[33];
	uint64_t x = seq * 0x9e3779b97f4a7c15ULL;
	snprintf(hex64, sizeof(hex64), "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64, x,
	         ~x, x ^ 0x5555, seq);
	snprintf(hex32, sizeof(hex32), "%016" PRIx64 "%016" PRIx64, x, seq + 1);
	const char *colon = seq == o->noncanonical_at ? ": " : ":";
	int len = snprintf(
	        buf, cap,
	        "{\"action\":{\"operation\":\"%s\",\"params_sha256\":\"%s\","
	        "\"resource\":\"salesforce.accounts\"},"
	        "\"decision\":{\"effect\":\"%s\",\"reason\":\"finance-analyst-readonly/tools[0]\"},"
	        "\"delegation\":{\"end_user\":\"hmac-sha256:%s\",\"owner\":\"zo\xc3\xab@example."
	        "com\"},"
	        "\"identity\":{\"attestation\":\"tpm\",\"deployment\":\"finance-analyst-7d9f\","
	        "\"environment\":\"prod\",\"jti\":\"jti-%06" PRIu64
	        "\",\"owner\":\"zo\xc3\xab@example.com\","
	        "\"spiffe_id\":\"spiffe://prod/agent/finance-analyst\",\"team\":\"finance\"},"
	        "\"model\":{\"cost_usd\":%s,\"deployment\":\"anthropic/claude-sonnet\","
	        "\"route\":\"reasoning-high\",\"tokens_in\":%u,\"tokens_out\":%u},"
	        "\"outcome\":{\"latency_us\":%u,\"status\":200},"
	        "\"policy\":{\"hash\":\"sha256:%s\",\"name\":\"finance-analyst-readonly\","
	        "\"rule\":\"tools[0]\"},"
	        "\"request_id\":\"req-%06" PRIu64 "\",\"seq\"%s%" PRIu64 ",\"time\":\"%s\","
	        "\"traceparent\":\"00-%s-%.16s-01\",\"type\":\"%s\",\"v\":1}",
	        seq % 3 ? "read" : "search", hex64, seq % 11 ? "allow" : "deny", hex64, seq,
	        costs[seq % 7], (unsigned)(100 + seq % 900), (unsigned)(10 + seq % 90),
	        (unsigned)(1000 + seq % 977), hex64, seq, colon, seq, when, hex32, hex64,
	        types[seq % 4]);
	if (len < 0 || (size_t)len >= cap)
		return 0;
	return (size_t)len;
}

static int
leaf_of(const struct aam_auditgen_opts *o, uint64_t seq, uint8_t out[32])
{
	char rec[2048];
	size_t len = aam_auditgen_record(o, seq, rec, sizeof(rec));
	if (len == 0)
		return -1;
	return aam_merkle_leaf_hash(rec, len, out) == AAM_OK ? 0 : -1;
}

int
aam_auditgen_root(const struct aam_auditgen_opts *o, uint64_t size, uint8_t root[32])
{
	struct aam_merkle_tree t;
	aam_merkle_tree_init(&t);
	for (uint64_t i = 0; i < size; i++) {
		uint8_t h[32];
		if (leaf_of(o, i, h) != 0 || aam_merkle_tree_append(&t, h, NULL, NULL) != AAM_OK)
			return -1;
	}
	return aam_merkle_tree_root(&t, root) == AAM_OK ? 0 : -1;
}

static int
sha_file(const char *path, char hex[65])
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return -1;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	char buf[8192];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		EVP_DigestUpdate(md, buf, n);
	fclose(f);
	uint8_t h[32];
	EVP_DigestFinal_ex(md, h, NULL);
	EVP_MD_CTX_free(md);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", h[i]);
	return 0;
}

int
aam_auditgen_sign_checkpoint(EVP_PKEY *key, const char *name, const char *origin, uint64_t size,
                             const uint8_t root[32], const char *path)
{
	uint32_t id;
	char note[AAM_NOTE_MAX_LEN + 1];
	size_t len;
	if (aam_note_key_id(key, &id) != AAM_OK ||
	    aam_note_checkpoint_sign(origin, size, root, name, id, aam_note_sign_with_pkey, key,
	                             note, sizeof(note), &len) != AAM_OK)
		return -1;
	FILE *f = fopen(path, "wb");
	if (f == NULL)
		return -1;
	int ok = fwrite(note, 1, len, f) == len;
	return fclose(f) == 0 && ok ? 0 : -1;
}

#define PATHCAP 4096

int
aam_auditgen_write(const struct aam_auditgen_opts *o)
{
	char path[PATHCAP], hex[65];
	uint64_t end = o->first_seq + o->records;
	snprintf(path, sizeof(path), "%s/records", o->dir);
	if (mkdir(path, 0755) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/checkpoints", o->dir);
	if (mkdir(path, 0755) != 0)
		return -1;

	/* The manifest body is gathered while the files are written. */
	size_t mcap = 1 << 20, mlen = 0;
	char *man = malloc(mcap);
	if (man == NULL)
		return -1;
#define MAN(...) (mlen += (size_t)snprintf(man + mlen, mcap - mlen, __VA_ARGS__))
	MAN("aam-audit-export 1\norigin %s\nrecords %" PRIu64 "\nfirst-seq %" PRIu64 "\n",
	    o->origin, o->records, o->first_seq);
	if (o->records > 0)
		MAN("last-seq %" PRIu64 "\n", end - 1);
	else
		MAN("last-seq -\n");

	/* Prefix: the right edge of the tree over the records before the export. */
	struct aam_merkle_tree t;
	aam_merkle_tree_init(&t);
	uint8_t *leaves = malloc((size_t)(end ? end : 1) * 32);
	if (leaves == NULL) {
		free(man);
		return -1;
	}
	int rc = -1;
	for (uint64_t i = 0; i < end; i++)
		if (leaf_of(o, i, leaves + i * 32) != 0)
			goto out;
	for (uint64_t i = 0; i < o->first_seq; i++)
		if (aam_merkle_tree_append(&t, leaves + i * 32, NULL, NULL) != AAM_OK)
			goto out;
	for (unsigned i = 0; i < t.count; i++) {
		char b64[45];
		aam_note_b64_encode(t.hash[i], 32, b64, sizeof(b64), NULL);
		MAN("prefix %s\n", b64);
	}

	for (uint64_t s = o->first_seq; s < end; s += o->segment_records) {
		uint64_t stop = s + o->segment_records < end ? s + o->segment_records : end;
		char rel[64];
		snprintf(rel, sizeof(rel), "records/%012" PRIu64 ".jsonl", s);
		snprintf(path, sizeof(path), "%s/%s", o->dir, rel);
		FILE *f = fopen(path, "wb");
		if (f == NULL)
			goto out;
		for (uint64_t i = s; i < stop; i++) {
			char rec[2048];
			size_t len = aam_auditgen_record(o, i, rec, sizeof(rec));
			rec[len++] = '\n';
			fwrite(rec, 1, len, f);
		}
		if (fclose(f) != 0 || sha_file(path, hex) != 0)
			goto out;
		MAN("segment %s %" PRIu64 " %s\n", rel, stop - s, hex);
	}

	if (!o->no_leaves) {
		snprintf(path, sizeof(path), "%s/leaves", o->dir);
		FILE *f = fopen(path, "wb");
		if (f == NULL)
			goto out;
		for (uint64_t i = o->first_seq; i < end; i++) {
			for (int k = 0; k < 32; k++)
				fprintf(f, "%02x", leaves[i * 32 + (uint64_t)k]);
			fputc('\n', f);
		}
		if (fclose(f) != 0 || sha_file(path, hex) != 0)
			goto out;
		MAN("leaves leaves %s\n", hex);
	}

	/* Checkpoints at every multiple of the cadence, and at the end. */
	for (uint64_t size = o->first_seq + 1; size <= end; size++) {
		if (size % o->checkpoint_every != 0 && size != end)
			continue;
		uint8_t root[32];
		if (aam_merkle_root(leaves, size, root) != AAM_OK)
			goto out;
		char rel[64];
		snprintf(rel, sizeof(rel), "checkpoints/%" PRIu64, size);
		snprintf(path, sizeof(path), "%s/%s", o->dir, rel);
		if (aam_auditgen_sign_checkpoint(o->key, o->origin, o->origin, size, root, path) !=
		            0 ||
		    sha_file(path, hex) != 0)
			goto out;
		MAN("checkpoint %s %s\n", rel, hex);
	}

	/* The verifier key, as PEM and as a vkey string (never trusted implicitly). */
	snprintf(path, sizeof(path), "%s/key.pem", o->dir);
	FILE *f = fopen(path, "wb");
	if (f == NULL)
		goto out;
	int ok = PEM_write_PUBKEY(f, o->key) == 1;
	if (fclose(f) != 0 || !ok || sha_file(path, hex) != 0)
		goto out;
	MAN("key key.pem %s\n", hex);
	char vkey[AAM_NOTE_VKEY_MAX];
	if (aam_note_vkey_format(o->origin, o->key, vkey, sizeof(vkey), NULL) != AAM_OK)
		goto out;
	snprintf(path, sizeof(path), "%s/key.vkey", o->dir);
	f = fopen(path, "wb");
	if (f == NULL)
		goto out;
	fprintf(f, "%s\n", vkey);
	if (fclose(f) != 0 || sha_file(path, hex) != 0)
		goto out;
	MAN("key key.vkey %s\n", hex);

	snprintf(path, sizeof(path), "%s/manifest", o->dir);
	f = fopen(path, "wb");
	if (f == NULL)
		goto out;
	ok = fwrite(man, 1, mlen, f) == mlen;
	if (fclose(f) != 0 || !ok || mlen >= mcap)
		goto out;
	rc = 0;
#undef MAN
out:
	free(leaves);
	free(man);
	return rc;
}
