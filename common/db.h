/*
 * SQLite helpers: a connection opened the same way everywhere (WAL,
 * busy timeout, foreign keys, defensive mode, 0600 files), schema
 * migrations through PRAGMA user_version, and cached prepared statements
 * with bind and step helpers that map SQLite results to AAM error codes.
 *
 * A struct aam_db is one connection and is used by one thread at a time;
 * each thread (or each event loop) opens its own.
 *
 * Error messages (aam_db_errmsg) come from sqlite3_errmsg and our own
 * fixed sentences.  SQLite's messages name tables, columns and
 * constraints, never the values bound to a statement, and we never
 * format a bound value into a message, so a value such as a token id
 * cannot leak through an error.
 */
#ifndef AAM_COMMON_DB_H
#define AAM_COMMON_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

struct aam_db;
struct aam_db_stmt;

/* aam_db_open flags. */
enum {
	AAM_DB_CREATE = 1u << 0,    /* create the file (mode 0600) when missing */
	AAM_DB_SYNC_FULL = 1u << 1, /* synchronous=FULL instead of NORMAL */
};

#define AAM_DB_BUSY_TIMEOUT_MS 5000 /* default wait for a lock */
#define AAM_DB_STMT_CACHE_MAX  64   /* cached prepared statements per connection */

/*
 * Opens PATH (":memory:" for a private in-memory database, which cannot
 * use WAL).  Returns AAM_OK, AAM_E_NOTFOUND when the file is missing and
 * AAM_DB_CREATE is not set, AAM_E_IO when it cannot be created,
 * AAM_E_DB when it is not a usable SQLite database (garbage, wrong
 * journal mode), AAM_E_NOMEM.  On failure *OUT is NULL and the reason is
 * logged (event db.open), since there is no handle to ask.
 */
int aam_db_open(const char *path, unsigned flags, struct aam_db **out);
/* Finalizes every cached statement and closes the connection; NULL is a no-op. */
void aam_db_close(struct aam_db *db);

/* The raw handle, for what these helpers do not cover. */
sqlite3 *aam_db_handle(struct aam_db *db);
int aam_db_set_busy_timeout(struct aam_db *db, int ms);

/* The last error's message ("" if none) and SQLite extended result code. */
const char *aam_db_errmsg(const struct aam_db *db);
int aam_db_errcode(const struct aam_db *db);

/*
 * Applies STEPS[user_version .. NSTEPS) in order.  Each step runs in its
 * own BEGIN IMMEDIATE transaction together with the user_version bump, so
 * a failing step leaves neither partial changes nor a new version; the
 * version is re-read inside each transaction, so two processes migrating
 * at once apply each step exactly once.  A step may hold several
 * statements but no transaction control.  Returns AAM_OK (also when
 * nothing was to do), AAM_E_UNSUPPORTED when the database is newer than
 * NSTEPS (it was written by a newer AAM; nothing is changed), AAM_E_DB,
 * AAM_E_BUSY.
 */
int aam_db_migrate(struct aam_db *db, const char *const *steps, size_t nsteps);
int aam_db_user_version(struct aam_db *db, int64_t *out);

/*
 * Runs SQL that binds no values (one or more statements); for schema and
 * maintenance, not for anything that carries input.
 */
int aam_db_exec(struct aam_db *db, const char *sql);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK through cached statements. */
int aam_db_begin(struct aam_db *db);
int aam_db_commit(struct aam_db *db);
int aam_db_rollback(struct aam_db *db);

/*
 * Returns a prepared statement for SQL (a single statement), from the
 * cache when the same text was prepared before.  It comes reset with no
 * bindings; hand it back with aam_db_stmt_release() when done, which also
 * releases any read lock it holds.  Asking for the same SQL again before
 * releasing gives a second, independent statement.
 */
int aam_db_stmt_get(struct aam_db *db, const char *sql, struct aam_db_stmt **out);
void aam_db_stmt_release(struct aam_db_stmt *st);
sqlite3_stmt *aam_db_stmt_handle(struct aam_db_stmt *st);

/* Parameters are 1-based.  A NULL text or blob pointer binds SQL NULL. */
int aam_db_bind_text(struct aam_db_stmt *st, int idx, const char *s, size_t len);
int aam_db_bind_str(struct aam_db_stmt *st, int idx, const char *s);
int aam_db_bind_blob(struct aam_db_stmt *st, int idx, const void *p, size_t len);
int aam_db_bind_int64(struct aam_db_stmt *st, int idx, int64_t v);
int aam_db_bind_null(struct aam_db_stmt *st, int idx);

/*
 * One step.  AAM_OK with *ROW true when a row is available, AAM_OK with
 * *ROW false when the statement is done (ROW may be NULL).  Errors:
 * AAM_E_BUSY (SQLITE_BUSY / SQLITE_LOCKED: retry later), AAM_E_EXISTS
 * (any constraint violation; aam_db_errcode() tells which), AAM_E_NOMEM,
 * AAM_E_DB.
 */
int aam_db_step(struct aam_db_stmt *st, bool *row);
/* Steps to completion ignoring rows, then releases ST (also on error). */
int aam_db_run(struct aam_db_stmt *st);

/* Column readers for the current row (0-based). */
bool aam_db_column_is_null(struct aam_db_stmt *st, int col);
int64_t aam_db_column_int64(struct aam_db_stmt *st, int col);
/* NULL for SQL NULL; otherwise NUL-terminated, valid until the next step. */
const char *aam_db_column_text(struct aam_db_stmt *st, int col, size_t *len);
/* NULL for SQL NULL; a non-NULL pointer for an empty blob. */
const void *aam_db_column_blob(struct aam_db_stmt *st, int col, size_t *len);

int64_t aam_db_changes(struct aam_db *db);
int64_t aam_db_last_insert_rowid(struct aam_db *db);

struct aam_db_stats {
	uint64_t prepares;   /* sqlite3_prepare calls made */
	uint64_t cache_hits; /* aam_db_stmt_get served from the cache */
	uint64_t evictions;  /* cached statements finalized to make room */
};
void aam_db_stats(const struct aam_db *db, struct aam_db_stats *out);

#endif /* AAM_COMMON_DB_H */
