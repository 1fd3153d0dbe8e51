/*
 * SQLite helpers against real files in a throwaway folder: WAL and file
 * modes, migrations (once, incremental, failing, newer schema), the
 * statement cache, lock contention between two connections, constraint
 * mapping, blobs, and garbage files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aam/err.h"
#include "common/db.h"
#include "tests/lib/testutil.h"

struct fixture {
	char *dir;
	char path[512];
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -1;
	f->dir = aam_test_mkdtemp("aam-db-test");
	if (f->dir == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/aam.db", f->dir);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	aam_test_rmtree(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

/* The first column of the first row of SQL, as an integer. */
static int64_t
query_int(struct aam_db *db, const char *sql)
{
	struct aam_db_stmt *st;
	assert_int_equal(aam_db_stmt_get(db, sql, &st), AAM_OK);
	bool row = false;
	assert_int_equal(aam_db_step(st, &row), AAM_OK);
	assert_true(row);
	int64_t v = aam_db_column_int64(st, 0);
	aam_db_stmt_release(st);
	return v;
}

static int64_t
user_version(struct aam_db *db)
{
	int64_t v = -1;
	assert_int_equal(aam_db_user_version(db, &v), AAM_OK);
	return v;
}

static bool
table_exists(struct aam_db *db, const char *name)
{
	struct aam_db_stmt *st;
	assert_int_equal(
	        aam_db_stmt_get(db, "SELECT count(*) FROM sqlite_master WHERE name = ?1", &st),
	        AAM_OK);
	assert_int_equal(aam_db_bind_str(st, 1, name), AAM_OK);
	bool row;
	assert_int_equal(aam_db_step(st, &row), AAM_OK);
	int64_t n = aam_db_column_int64(st, 0);
	aam_db_stmt_release(st);
	return n > 0;
}

static void
test_open_creates_wal_0600(void **state)
{
	struct fixture *f = *state;
	struct aam_db *db = NULL;
	/* With umask 0 the mode can only come from aam_db_open itself. */
	mode_t old = umask(0);
	int rc = aam_db_open(f->path, AAM_DB_CREATE, &db);
	umask(old);
	assert_int_equal(rc, AAM_OK);
	assert_non_null(db);

	struct stat st;
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);

	struct aam_db_stmt *s;
	assert_int_equal(aam_db_stmt_get(db, "PRAGMA journal_mode", &s), AAM_OK);
	bool row;
	assert_int_equal(aam_db_step(s, &row), AAM_OK);
	assert_true(row);
	assert_string_equal(aam_db_column_text(s, 0, NULL), "wal");
	aam_db_stmt_release(s);
	assert_int_equal(query_int(db, "PRAGMA synchronous"), 1); /* NORMAL */
	assert_int_equal(query_int(db, "PRAGMA foreign_keys"), 1);

	/* The WAL file appears on the first write and copies the 0600 mode. */
	assert_int_equal(aam_db_exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES (1)"), AAM_OK);
	char wal[600];
	snprintf(wal, sizeof(wal), "%s-wal", f->path);
	assert_int_equal(stat(wal, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	aam_db_close(db);
}

static void
test_open_refusals(void **state)
{
	struct fixture *f = *state;
	struct aam_db *db = (struct aam_db *)state; /* must be reset to NULL */
	assert_int_equal(aam_db_open(f->path, 0, &db), AAM_E_NOTFOUND);
	assert_null(db);
	assert_int_equal(access(f->path, F_OK), -1); /* nothing created */
	assert_int_equal(aam_db_open(f->path, 0x80, &db), AAM_E_INVAL);
	assert_int_equal(aam_db_open(NULL, AAM_DB_CREATE, &db), AAM_E_INVAL);
	assert_int_equal(aam_db_open("", AAM_DB_CREATE, &db), AAM_E_INVAL);
	/* A folder is not a database file. */
	assert_int_equal(aam_db_open(f->dir, AAM_DB_CREATE, &db), AAM_E_INVAL);
	assert_null(db);
	aam_db_close(NULL);
}

static void
test_sync_full_option(void **state)
{
	struct fixture *f = *state;
	struct aam_db *db;
	assert_int_equal(aam_db_open(f->path, AAM_DB_CREATE | AAM_DB_SYNC_FULL, &db), AAM_OK);
	assert_int_equal(query_int(db, "PRAGMA synchronous"), 2); /* FULL */
	aam_db_close(db);
	/* The setting belongs to the connection, not the file. */
	assert_int_equal(aam_db_open(f->path, 0, &db), AAM_OK);
	assert_int_equal(query_int(db, "PRAGMA synchronous"), 1);
	aam_db_close(db);
}

static const char *const schema_v3[] = {
        "CREATE TABLE a(x INTEGER)",
        "INSERT INTO a VALUES (1)",
        "CREATE TABLE b(y TEXT NOT NULL); INSERT INTO b VALUES ('v3')",
};

static void
test_migrations_apply_once(void **state)
{
	struct fixture *f = *state;
	struct aam_db *db;
	assert_int_equal(aam_db_open(f->path, AAM_DB_CREATE, &db), AAM_OK);
	assert_int_equal(user_version(db), 0);
	assert_int_equal(aam_db_migrate(db, schema_v3, 3), AAM_OK);
	assert_int_equal(user_version(db), 3);
	assert_int_equal(query_int(db, "SELECT count(*) FROM a"), 1);
	/* Again on the same connection: nothing to do. */
	assert_int_equal(aam_db_migrate(db, schema_v3, 3), AAM_OK);
	aam_db_close(db);

	/* And across a reopen: the INSERT step is not replayed. */
	assert_int_equal(aam_db_open(f->path, 0, &db), AAM_OK);
	assert_int_equal(aam_db_migrate(db, schema_v3, 3), AAM_OK);
	assert_int_equal(query_int(db, "SELECT count(*) FROM a"), 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM b"), 1);
	assert_int_equal(user_version(db), 3);
	aam_db_close(db);
}

static void
test_migrations_incremental(void **state)
{
	struct fixture *f = *state;
	struct aam_db *db;
	assert_int_equal(aam_db_open(f->path, AAM_DB_CREATE, &db), AAM_OK);
	assert_int_equal(aam_db_migrate(db, schema_v3, 2), AAM_OK);
	assert_int_equal(user_version(db), 2);
	assert_false(table_exists(db, "b"));
	assert_int_equal(aam_db_migrate(db, schema_v3, 3), AAM_OK);
	assert_int_equal(user_version(db), 3);
	assert_true(table_exists(db, "b"));
	assert_int_equal(query_int(db, "SELECT count(*) FROM a"), 1);
	/* Code that knows no steps at all is older than this database. */
	assert_int_equal(aam_db_migrate(db, NULL, 0), AAM_E_UNSUPPORTED);
	aam_db_close(db);
}

static void
test_failing_migration_rolls_back(void **state)
{
	struct fixture *f = *state;
	const char *const broken[] = {
	        "CREATE TABLE a(x INTEGER)",
	        /* The first statement succeeds, the second fails: neither stays. */
	        "CREATE TABLE b(y); INSERT INTO nosuch VALUES (1)",
	        "CREATE TABLE c(z)",
	};
	struct aam_db *db;
	assert_int_equal(aam_db_open(f->path, AAM_DB_CREATE, &db), AAM_OK);
	assert_int_equal(aam_db_migrate(db, broken, 3), AAM_E_DB);
	assert_non_null(strstr(aam_db_errmsg(db), "version 2"));
	assert_non_null(strstr(aam_db_errmsg(db), "no such table: nosuch"));
	assert_int_equal(user_version(db), 1);
	assert_true(table_exists(db, "a"));
	assert_false(table_exists(db, "b"));
	assert_false(table_exists(db, "c"));

	/* Fixed code then migrates from where it stopped. */
	const char *const fixed[] = {broken[0], "CREATE TABLE b(y)", broken[2]};
	assert_int_equal(aam_db_migrate(db, fixed, 3), AAM_OK);
	assert_int_equal(user_version(db), 3);
	assert_true(table_exists(db, "c"));
	aam_db_close(db);
}

static void
test_migration_transaction_control_refused(void **state)
{
	struct fixture *f = *state;
	struct aam_db *db;
	assert_int_equal(aam_db_open(f->path, AAM_DB_CREATE, &db), AAM_OK);
	const char *const commits[] = {"CREATE TABLE a(x); COMMIT"};
	assert_int_equal(aam_db_migrate(db, commits, 1), AAM_E_DB);
	assert_non_null(strstr(aam_db_errmsg(db), "ended the transaction"));
	assert_int_equal(user_version(db), 0);
	const char *const begins[] = {"BEGIN; CREATE TABLE z(x)"};
	assert_int_equal(aam_db_migrate(db, begins, 1), AAM_E_DB);
	assert_int_equal(user_version(db), 0);
	assert_false(table_exists(db, "z"));
	const char *const nulls[] = {"CREATE TABLE y(x)", NULL};
	assert_int_equal(aam_db_migrate(db, nulls, 2), AAM_E_INVAL);
	assert_false(table_exists(db, "y"));
	aam_db_close(db);
}

static void
test_newer_schema_refused(void **state)
{
	struct fixture *f = *state;
	struct aam_db *db;
	assert_int_equal(aam_db_open(f->path, AAM_DB_CREATE, &db), AAM_OK);
	assert_int_equal(aam_db_migrate(db, schema_v3, 3), AAM_OK);
	aam_db_close(db);

	/* An older program (two steps) must not touch a version-3 database. */
	assert_int_equal(aam_db_open(f->path, 0, &db), AAM_OK);
	assert_int_equal(aam_db_migrate(db, schema_v3, 2), AAM_E_UNSUPPORTED);
	assert_string_equal(aam_db_errmsg(db),
	                    "database schema version 3 is newer than this program supports (2)");
	assert_int_equal(user_version(db), 3);
	assert_true(table_exists(db, "b"));
	/* No transaction is left open behind the refusal. */
	assert_int_equal(aam_db_begin(db), AAM_OK);
	assert_int_equal(aam_db_rollback(db), AAM_OK);

	assert_int_equal(aam_db_exec(db, "PRAGMA user_version = -4"), AAM_OK);
	assert_int_equal(aam_db_migrate(db, schema_v3, 3), AAM_E_DB);
	assert_non_null(strstr(aam_db_errmsg(db), "is invalid"));
	aam_db_close(db);
}

static void
test_statement_cache_reuse(void **state)
{
	struct fixture *f = *state;
	struct aam_db *db;
	struct aam_db_stats stats;
	assert_int_equal(aam_db_open(f->path, AAM_DB_CREATE, &db), AAM_OK);
	aam_db_stats(db, &stats);
	uint64_t base_prepares = stats.prepares, base_hits = stats.cache_hits;

	const char *sql = "SELECT ?1 + 1";
	struct aam_db_stmt *a, *b, *c;
	assert_int_equal(aam_db_stmt_get(db, sql, &a), AAM_OK);
	sqlite3_stmt *raw = aam_db_stmt_handle(a);
	assert_int_equal(aam_db_bind_int64(a, 1, 41), AAM_OK);
	bool row;
	assert_int_equal(aam_db_step(a, &row), AAM_OK);
	assert_true(row);
	assert_int_equal(aam_db_column_int64(a, 0), 42);
	aam_db_stmt_release(a);

	/* Same text: the same prepared statement, reset and unbound. */
	assert_int_equal(aam_db_stmt_get(db, sql, &b), AAM_OK);
	assert_ptr_equal(aam_db_stmt_handle(b), raw);
	assert_int_equal(aam_db_step(b, &row), AAM_OK);
	assert_true(aam_db_column_is_null(b, 0)); /* NULL + 1 */
	/* Asked again while B is in use: an independent statement. */
	assert_int_equal(aam_db_stmt_get(db, sql, &c), AAM_OK);
	assert_ptr_not_equal(aam_db_stmt_handle(c), raw);
	aam_db_stmt_release(c);
	aam_db_stmt_release(b);

	aam_db_stats(db, &stats);
	assert_int_equal(stats.prepares - base_prepares, 2);
	assert_int_equal(stats.cache_hits - base_hits, 1);

	/* Single statements only, and SQL errors are reported as such. */
	assert_int_equal(aam_db_stmt_get(db, "SELECT 1; SELECT 2", &a), AAM_E_INVAL);
	assert_null(a);
	assert_string_equal(aam_db_errmsg(db), "SQL holds more than one statement");
	assert_int_equal(aam_db_stmt_get(db, "SELECT 1;  \n", &a), AAM_OK);
	aam_db_stmt_release(a);
	assert_int_equal(aam_db_stmt_get(db, "   ", &a), AAM_E_INVAL);
	assert_int_equal(aam_db_stmt_get(db, "SELEKT 1", &a), AAM_E_DB);
	assert_non_null(strstr(aam_db_errmsg(db), "syntax error"));
	aam_db_close(db);
}

static void
test_statement_cache_eviction(void **state)
{
	struct fixture *f = *state;
	struct aam_db *db;
	assert_int_equal(aam_db_open(f->path, AAM_DB_CREATE, &db), AAM_OK);
	struct aam_db_stats before, after;
	aam_db_stats(db, &before);
	char sql[64];
	for (int i = 0; i < 2 * AAM_DB_STMT_CACHE_MAX; i++) {
		snprintf(sql, sizeof(sql), "SELECT %d", i);
		assert_int_equal(query_int(db, sql), i);
	}
	aam_db_stats(db, &after);
	assert_int_equal(after.prepares - before.prepares, 2 * AAM_DB_STMT_CACHE_MAX);
	assert_true(after.evictions - before.evictions >= AAM_DB_STMT_CACHE_MAX);

	/* Every slot busy: one more statement still works, outside the cache. */
	struct aam_db_stmt *held[AAM_DB_STMT_CACHE_MAX + 1];
	for (int i = 0; i <= AAM_DB_STMT_CACHE_MAX; i++) {
		snprintf(sql, sizeof(sql), "SELECT %d + 1000", i);
		assert_int_equal(aam_db_stmt_get(db, sql, &held[i]), AAM_OK);
	}
	bool row;
	assert_int_equal(aam_db_step(held[AAM_DB_STMT_CACHE_MAX], &row), AAM_OK);
	assert_int_equal(aam_db_column_int64(held[AAM_DB_STMT_CACHE_MAX], 0),
	                 1000 + AAM_DB_STMT_CACHE_MAX);
	for (int i = 0; i <= AAM_DB_STMT_CACHE_MAX; i++)
		aam_db_stmt_release(held[i]);
	aam_db_close(db);
}

static void
test_busy_between_connections(void **state)
{
	struct fixture *f = *state;
	struct aam_db *a, *b;
	assert_int_equal(aam_db_open(f->path, AAM_DB_CREATE, &a), AAM_OK);
	assert_int_equal(aam_db_exec(a, "CREATE TABLE t(x)"), AAM_OK);
	assert_int_equal(aam_db_open(f->path, 0, &b), AAM_OK);
	assert_int_equal(aam_db_set_busy_timeout(b, 0), AAM_OK);
	assert_int_equal(aam_db_set_busy_timeout(b, -1), AAM_E_INVAL);

	assert_int_equal(aam_db_begin(a), AAM_OK);
	assert_int_equal(aam_db_exec(a, "INSERT INTO t VALUES (1)"), AAM_OK);
	assert_int_equal(aam_db_begin(b), AAM_E_BUSY);
	assert_int_equal(aam_db_errcode(b) & 0xff, SQLITE_BUSY);
	struct aam_db_stmt *st;
	assert_int_equal(aam_db_stmt_get(b, "INSERT INTO t VALUES (?1)", &st), AAM_OK);
	assert_int_equal(aam_db_bind_int64(st, 1, 2), AAM_OK);
	assert_int_equal(aam_db_run(st), AAM_E_BUSY);
	/* WAL: the reader is not blocked and sees only committed rows. */
	assert_int_equal(query_int(b, "SELECT count(*) FROM t"), 0);

	assert_int_equal(aam_db_commit(a), AAM_OK);
	assert_int_equal(aam_db_begin(b), AAM_OK);
	assert_int_equal(aam_db_exec(b, "INSERT INTO t VALUES (3)"), AAM_OK);
	assert_int_equal(aam_db_commit(b), AAM_OK);
	assert_int_equal(query_int(a, "SELECT count(*) FROM t"), 2);
	aam_db_close(b);
	aam_db_close(a);
}

static void
test_foreign_keys_enforced(void **state)
{
	struct fixture *f = *state;
	struct aam_db *db;
	assert_int_equal(aam_db_open(f->path, AAM_DB_CREATE, &db), AAM_OK);
	assert_int_equal(aam_db_exec(db, "CREATE TABLE owner(id INTEGER PRIMARY KEY);"
	                                 "CREATE TABLE workload(id INTEGER PRIMARY KEY,"
	                                 " owner INTEGER NOT NULL REFERENCES owner(id));"
	                                 "INSERT INTO owner VALUES (1)"),
	                 AAM_OK);
	struct aam_db_stmt *st;
	assert_int_equal(aam_db_stmt_get(db, "INSERT INTO workload(owner) VALUES (?1)", &st),
	                 AAM_OK);
	assert_int_equal(aam_db_bind_int64(st, 1, 99), AAM_OK);
	assert_int_equal(aam_db_run(st), AAM_E_EXISTS);
	assert_int_equal(aam_db_errcode(db), SQLITE_CONSTRAINT_FOREIGNKEY);
	assert_int_equal(query_int(db, "SELECT count(*) FROM workload"), 0);

	assert_int_equal(aam_db_stmt_get(db, "INSERT INTO workload(owner) VALUES (?1)", &st),
	                 AAM_OK);
	assert_int_equal(aam_db_bind_int64(st, 1, 1), AAM_OK);
	assert_int_equal(aam_db_run(st), AAM_OK);
	assert_int_equal(aam_db_changes(db), 1);
	assert_int_equal(aam_db_last_insert_rowid(db), 1);
	/* The referenced row cannot go away underneath. */
	assert_int_equal(aam_db_exec(db, "DELETE FROM owner WHERE id = 1"), AAM_E_EXISTS);
	aam_db_close(db);
}

static void
test_errors_never_carry_bound_values(void **state)
{
	struct fixture *f = *state;
	static const char value[] = "jti-4f1c0ffee-SECRETISH-value";
	struct aam_db *db;
	assert_int_equal(aam_db_open(f->path, AAM_DB_CREATE, &db), AAM_OK);
	assert_int_equal(aam_db_exec(db, "CREATE TABLE seen(jti TEXT PRIMARY KEY,"
	                                 " n INTEGER CHECK (n > 0))"),
	                 AAM_OK);
	struct aam_db_stmt *st;
	for (int i = 0; i < 2; i++) {
		assert_int_equal(aam_db_stmt_get(db, "INSERT INTO seen VALUES (?1, 1)", &st),
		                 AAM_OK);
		assert_int_equal(aam_db_bind_str(st, 1, value), AAM_OK);
		assert_int_equal(aam_db_run(st), i == 0 ? AAM_OK : AAM_E_EXISTS);
	}
	assert_int_equal(aam_db_errcode(db), SQLITE_CONSTRAINT_PRIMARYKEY);
	assert_non_null(strstr(aam_db_errmsg(db), "UNIQUE constraint failed"));
	assert_null(strstr(aam_db_errmsg(db), "SECRETISH"));

	assert_int_equal(aam_db_stmt_get(db, "INSERT INTO seen VALUES (?1, ?2)", &st), AAM_OK);
	assert_int_equal(aam_db_bind_str(st, 1, "other-SECRETISH"), AAM_OK);
	assert_int_equal(aam_db_bind_int64(st, 2, -7), AAM_OK);
	assert_int_equal(aam_db_run(st), AAM_E_EXISTS);
	assert_int_equal(aam_db_errcode(db), SQLITE_CONSTRAINT_CHECK);
	assert_null(strstr(aam_db_errmsg(db), "SECRETISH"));
	assert_null(strstr(aam_db_errmsg(db), "-7"));

	/* Bad parameter indexes are caller errors. */
	assert_int_equal(aam_db_stmt_get(db, "SELECT ?1", &st), AAM_OK);
	assert_int_equal(aam_db_bind_int64(st, 0, 1), AAM_E_INVAL);
	assert_int_equal(aam_db_bind_str(st, 2, value), AAM_E_INVAL);
	assert_null(strstr(aam_db_errmsg(db), "SECRETISH"));
	aam_db_stmt_release(st);
	aam_db_close(db);
}

static void
test_blob_and_value_round_trip(void **state)
{
	struct fixture *f = *state;
	struct aam_db *db;
	assert_int_equal(aam_db_open(f->path, AAM_DB_CREATE, &db), AAM_OK);
	assert_int_equal(aam_db_exec(db, "CREATE TABLE v(id INTEGER PRIMARY KEY, b BLOB, t TEXT,"
	                                 " i INTEGER)"),
	                 AAM_OK);
	size_t big_len = 1u << 20;
	uint8_t *big = malloc(big_len);
	assert_non_null(big);
	for (size_t i = 0; i < big_len; i++)
		big[i] = (uint8_t)(i * 131u + (i >> 8));
	const char text[] = "slice-of-a-longer-string";

	struct {
		const void *p;
		size_t len;
		int64_t i;
	} rows[] = {
	        {big, 256, INT64_MIN}, /* every byte value, NULs included */
	        {big, big_len, INT64_MAX},
	        {"", 0, 0}, /* empty blob, distinct from NULL */
	        {NULL, 0, -1},
	};
	size_t n = sizeof(rows) / sizeof(rows[0]);
	struct aam_db_stmt *st;
	for (size_t r = 0; r < n; r++) {
		assert_int_equal(
		        aam_db_stmt_get(db, "INSERT INTO v(id, b, t, i) VALUES (?1, ?2, ?3, ?4)",
		                        &st),
		        AAM_OK);
		assert_int_equal(aam_db_bind_int64(st, 1, (int64_t)r), AAM_OK);
		assert_int_equal(aam_db_bind_blob(st, 2, rows[r].p, rows[r].len), AAM_OK);
		if (r == 3)
			assert_int_equal(aam_db_bind_null(st, 3), AAM_OK);
		else
			assert_int_equal(aam_db_bind_text(st, 3, text, 5), AAM_OK);
		assert_int_equal(aam_db_bind_int64(st, 4, rows[r].i), AAM_OK);
		assert_int_equal(aam_db_run(st), AAM_OK);
	}
	for (size_t r = 0; r < n; r++) {
		assert_int_equal(aam_db_stmt_get(db, "SELECT b, t, i FROM v WHERE id = ?1", &st),
		                 AAM_OK);
		assert_int_equal(aam_db_bind_int64(st, 1, (int64_t)r), AAM_OK);
		bool row;
		assert_int_equal(aam_db_step(st, &row), AAM_OK);
		assert_true(row);
		size_t len = 99;
		const void *p = aam_db_column_blob(st, 0, &len);
		if (rows[r].p == NULL) {
			assert_null(p);
			assert_true(aam_db_column_is_null(st, 0));
			assert_null(aam_db_column_text(st, 1, &len));
		} else {
			assert_non_null(p);
			assert_int_equal(len, rows[r].len);
			if (len > 0)
				assert_memory_equal(p, rows[r].p, len);
			assert_string_equal(aam_db_column_text(st, 1, &len), "slice");
			assert_int_equal(len, 5);
		}
		assert_int_equal(aam_db_column_int64(st, 2), rows[r].i);
		assert_int_equal(aam_db_step(st, &row), AAM_OK);
		assert_false(row);
		aam_db_stmt_release(st);
	}
	free(big);
	aam_db_close(db);
}

static void
test_transactions(void **state)
{
	struct fixture *f = *state;
	struct aam_db *db;
	assert_int_equal(aam_db_open(f->path, AAM_DB_CREATE, &db), AAM_OK);
	assert_int_equal(aam_db_exec(db, "CREATE TABLE t(x)"), AAM_OK);
	assert_int_equal(aam_db_begin(db), AAM_OK);
	assert_int_equal(aam_db_exec(db, "INSERT INTO t VALUES (1)"), AAM_OK);
	assert_int_equal(aam_db_rollback(db), AAM_OK);
	assert_int_equal(query_int(db, "SELECT count(*) FROM t"), 0);
	assert_int_equal(aam_db_begin(db), AAM_OK);
	assert_int_equal(aam_db_begin(db), AAM_E_DB); /* no nesting */
	assert_int_equal(aam_db_exec(db, "INSERT INTO t VALUES (1)"), AAM_OK);
	assert_int_equal(aam_db_commit(db), AAM_OK);
	assert_int_equal(query_int(db, "SELECT count(*) FROM t"), 1);
	assert_int_equal(aam_db_commit(db), AAM_E_DB);
	assert_non_null(strstr(aam_db_errmsg(db), "no transaction is active"));
	/* Rolling back when nothing is open is harmless (error paths do it). */
	assert_int_equal(aam_db_rollback(db), AAM_OK);
	aam_db_close(db);
}

static void
test_garbage_file_is_clean_error(void **state)
{
	struct fixture *f = *state;
	uint8_t junk[8192];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 7u + 13u);
	assert_int_equal(aam_test_write_file(f->path, junk, sizeof(junk), 0600), 0);
	struct aam_db *db = (struct aam_db *)state;
	assert_int_equal(aam_db_open(f->path, AAM_DB_CREATE, &db), AAM_E_DB);
	assert_null(db);
	/* A file we did not create is never removed. */
	assert_int_equal(access(f->path, F_OK), 0);

	/* A real database whose header was overwritten. */
	unlink(f->path);
	assert_int_equal(aam_db_open(f->path, AAM_DB_CREATE, &db), AAM_OK);
	assert_int_equal(aam_db_exec(db, "CREATE TABLE t(x); PRAGMA wal_checkpoint(TRUNCATE)"),
	                 AAM_OK);
	aam_db_close(db);
	FILE *fp = fopen(f->path, "r+b");
	assert_non_null(fp);
	assert_int_equal(fwrite("NOT A DATABASE!!", 1, 16, fp), 16);
	fclose(fp);
	assert_int_equal(aam_db_open(f->path, 0, &db), AAM_E_DB);
	assert_null(db);
}

static void
test_memory_database(void **state)
{
	(void)state;
	struct aam_db *db;
	assert_int_equal(aam_db_open(":memory:", 0, &db), AAM_OK);
	assert_int_equal(aam_db_migrate(db, schema_v3, 3), AAM_OK);
	assert_int_equal(query_int(db, "SELECT count(*) FROM b"), 1);
	assert_int_equal(query_int(db, "PRAGMA foreign_keys"), 1);
	aam_db_close(db);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	        T(test_open_creates_wal_0600),
	        T(test_open_refusals),
	        T(test_sync_full_option),
	        T(test_migrations_apply_once),
	        T(test_migrations_incremental),
	        T(test_failing_migration_rolls_back),
	        T(test_migration_transaction_control_refused),
	        T(test_newer_schema_refused),
	        T(test_statement_cache_reuse),
	        T(test_statement_cache_eviction),
	        T(test_busy_between_connections),
	        T(test_foreign_keys_enforced),
	        T(test_errors_never_carry_bound_values),
	        T(test_blob_and_value_round_trip),
	        T(test_transactions),
	        T(test_garbage_file_is_clean_error),
	        T(test_memory_database),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
