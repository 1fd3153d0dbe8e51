/*
 * The audit database's schema and its Merkle tree storage: the hash of
 * every perfect subtree [start, start + 2^level) is stored as it is
 * completed (common/merkle.h calls the store callback), in the same
 * transaction as the records that completed it, so roots and proofs are
 * answered with O(log n) lookups and a restart rebuilds the right edge
 * with popcount(size) of them.
 */
#include "vault/audit.h"

#include <string.h>

#include "aam/err.h"
#include "common/db.h"

static const char *const schema[] = {
        "CREATE TABLE records(seq INTEGER PRIMARY KEY, time TEXT NOT NULL, rec BLOB NOT NULL);"
        "CREATE INDEX records_time ON records(time);"
        "CREATE TABLE subtree(level INTEGER NOT NULL, start INTEGER NOT NULL,"
        " hash BLOB NOT NULL, PRIMARY KEY(level, start)) WITHOUT ROWID;"
        "CREATE TABLE checkpoints(id INTEGER PRIMARY KEY, size INTEGER NOT NULL,"
        " root BLOB NOT NULL, note TEXT NOT NULL, created TEXT NOT NULL);"
        "CREATE INDEX checkpoints_size ON checkpoints(size);"
        "CREATE TABLE meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);",
};

int
vault_audit_db_open(const char *path, struct aam_db **out)
{
	*out = NULL;
	struct aam_db *db = NULL;
	/* WAL and synchronous=FULL: a committed append survives a power loss. */
	int rc = aam_db_open(path, AAM_DB_CREATE | AAM_DB_SYNC_FULL, &db);
	if (rc == AAM_OK)
		rc = aam_db_migrate(db, schema, sizeof(schema) / sizeof(schema[0]));
	if (rc != AAM_OK) {
		aam_db_close(db);
		return rc;
	}
	*out = db;
	return AAM_OK;
}

int
vault_audit_node_get(void *ctx, uint64_t start, unsigned level, uint8_t out[32])
{
	struct aam_db *db = ctx;
	if (db == NULL)
		return AAM_E_AUDIT;
	struct aam_db_stmt *st;
	int rc = aam_db_stmt_get(db, "SELECT hash FROM subtree WHERE level = ?1 AND start = ?2",
	                         &st);
	if (rc != AAM_OK)
		return rc;
	aam_db_bind_int64(st, 1, (int64_t)level);
	aam_db_bind_int64(st, 2, (int64_t)start);
	bool row = false;
	rc = aam_db_step(st, &row);
	if (rc == AAM_OK && !row)
		rc = AAM_E_NOTFOUND;
	if (rc == AAM_OK) {
		size_t n = 0;
		const void *h = aam_db_column_blob(st, 0, &n);
		if (n != 32)
			rc = AAM_E_INTERNAL;
		else
			memcpy(out, h, 32);
	}
	aam_db_stmt_release(st);
	return rc;
}

int
vault_audit_node_put(void *ctx, uint64_t start, unsigned level, const uint8_t hash[32])
{
	struct aam_db *db = ctx;
	if (db == NULL)
		return AAM_E_AUDIT;
	struct aam_db_stmt *st;
	int rc = aam_db_stmt_get(db, "INSERT INTO subtree(level, start, hash) VALUES (?1, ?2, ?3)",
	                         &st);
	if (rc != AAM_OK)
		return rc;
	aam_db_bind_int64(st, 1, (int64_t)level);
	aam_db_bind_int64(st, 2, (int64_t)start);
	aam_db_bind_blob(st, 3, hash, 32);
	rc = aam_db_run(st);
	aam_db_stmt_release(st);
	return rc;
}
