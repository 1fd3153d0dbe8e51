/*
 * SQLite helpers.  See db.h for the contract.
 *
 * Every connection is configured here and nowhere else, so a daemon cannot
 * forget foreign keys or open a database in rollback-journal mode by
 * accident.  Errors keep SQLite's extended code and message on the handle
 * for the caller to report; both name schema objects, never bound values.
 */
#include "common/db.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aam/err.h"
#include "common/log.h"

struct aam_db_stmt {
	struct aam_db *db;
	sqlite3_stmt *st;
	char *sql;
	uint32_t hash;
	uint64_t last_used;
	bool in_use;
	bool cached; /* false: finalized on release (cache was full of busy statements) */
};

struct aam_db {
	sqlite3 *h;
	struct aam_db_stmt *cache[AAM_DB_STMT_CACHE_MAX];
	size_t ncache;
	uint64_t tick;
	struct aam_db_stats stats;
	int errcode;
	char errmsg[256];
};

/* Maps a SQLite result code to an AAM error code (see aam_db_step). */
static int
map_rc(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return AAM_OK;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return AAM_E_BUSY;
	case SQLITE_CONSTRAINT:
		return AAM_E_EXISTS;
	case SQLITE_NOMEM:
		return AAM_E_NOMEM;
	case SQLITE_TOOBIG:
		return AAM_E_TOOBIG;
	case SQLITE_RANGE:
	case SQLITE_MISUSE:
		return AAM_E_INVAL;
	default:
		return AAM_E_DB;
	}
}

/* Records SQLite's current error for the caller and returns its AAM code. */
static int
db_error(struct aam_db *db, int rc)
{
	db->errcode = sqlite3_extended_errcode(db->h);
	if ((db->errcode & 0xff) != (rc & 0xff))
		db->errcode = rc;
	snprintf(db->errmsg, sizeof(db->errmsg), "%s", sqlite3_errmsg(db->h));
	return map_rc(rc);
}

/* Records one of our own messages (never containing a bound value). */
__attribute__((format(printf, 3, 4))) static int
db_error_msg(struct aam_db *db, int aam_rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(db->errmsg, sizeof(db->errmsg), fmt, ap);
	va_end(ap);
	db->errcode = SQLITE_ERROR;
	return aam_rc;
}

static void
db_clear_error(struct aam_db *db)
{
	db->errcode = SQLITE_OK;
	db->errmsg[0] = '\0';
}

/*
 * Creates the file ourselves with O_EXCL and mode 0600 before SQLite sees
 * it: SQLite would create it with 0644 minus the umask, and its -wal and
 * -shm files copy the main file's mode, so this one open decides the mode
 * of all three.  O_EXCL also refuses to create through a symlink.
 */
static int
ensure_file(const char *path, bool create, bool *created)
{
	*created = false;
	struct stat st;
	if (stat(path, &st) == 0)
		return S_ISREG(st.st_mode) ? AAM_OK : AAM_E_INVAL;
	if (errno != ENOENT)
		return AAM_E_IO;
	if (!create)
		return AAM_E_NOTFOUND;
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return errno == EEXIST ? AAM_OK : AAM_E_IO;
	*created = true;
	/* The umask may have removed bits; it cannot have added any. */
	int rc = fchmod(fd, 0600) == 0 ? AAM_OK : AAM_E_IO;
	close(fd);
	return rc;
}

/* Runs a PRAGMA and copies the first column of its first row (may be ""). */
static int
pragma_text(struct aam_db *db, const char *sql, char *out, size_t outlen)
{
	sqlite3_stmt *st = NULL;
	out[0] = '\0';
	int rc = sqlite3_prepare_v2(db->h, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return db_error(db, rc);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const unsigned char *v = sqlite3_column_text(st, 0);
		snprintf(out, outlen, "%s", v != NULL ? (const char *)v : "");
		rc = SQLITE_DONE;
	}
	int err = rc == SQLITE_DONE ? AAM_OK : db_error(db, rc);
	sqlite3_finalize(st);
	return err;
}

/* Sets up a freshly opened connection; the first read happens here. */
static int
configure(struct aam_db *db, unsigned flags, bool memory)
{
	sqlite3_extended_result_codes(db->h, 1);
	sqlite3_busy_timeout(db->h, AAM_DB_BUSY_TIMEOUT_MS);
	/*
	 * Defensive mode forbids the writable_schema and journal tricks that
	 * can corrupt a file from SQL; an untrusted schema may not call
	 * functions with side effects.  Neither is needed by AAM.
	 */
#ifdef SQLITE_DBCONFIG_DEFENSIVE
	sqlite3_db_config(db->h, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
#endif
#ifdef SQLITE_DBCONFIG_TRUSTED_SCHEMA
	sqlite3_db_config(db->h, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
#endif

	char v[32];
	/* Reading the schema first turns a garbage file into SQLITE_NOTADB. */
	int rc = pragma_text(db, "SELECT count(*) FROM sqlite_master", v, sizeof(v));
	if (rc != AAM_OK)
		return rc;
	rc = pragma_text(db, "PRAGMA journal_mode=WAL", v, sizeof(v));
	if (rc != AAM_OK)
		return rc;
	if (strcmp(v, memory ? "memory" : "wal") != 0)
		return db_error_msg(db, AAM_E_DB, "cannot enable WAL (journal mode is %s)", v);
	rc = pragma_text(db,
	                 (flags & AAM_DB_SYNC_FULL) ? "PRAGMA synchronous=FULL"
	                                            : "PRAGMA synchronous=NORMAL",
	                 v, sizeof(v));
	if (rc != AAM_OK)
		return rc;
	rc = pragma_text(db, "PRAGMA foreign_keys=ON", v, sizeof(v));
	if (rc != AAM_OK)
		return rc;
	/* A build without foreign key support ignores the PRAGMA silently. */
	rc = pragma_text(db, "PRAGMA foreign_keys", v, sizeof(v));
	if (rc != AAM_OK)
		return rc;
	if (strcmp(v, "1") != 0)
		return db_error_msg(db, AAM_E_DB, "SQLite lacks foreign key support");
	return AAM_OK;
}

int
aam_db_open(const char *path, unsigned flags, struct aam_db **out)
{
	if (out != NULL)
		*out = NULL;
	if (path == NULL || out == NULL || path[0] == '\0' ||
	    (flags & ~(unsigned)(AAM_DB_CREATE | AAM_DB_SYNC_FULL)) != 0)
		return AAM_E_INVAL;

	bool memory = strcmp(path, ":memory:") == 0;
	bool created = false;
	if (!memory) {
		int rc = ensure_file(path, (flags & AAM_DB_CREATE) != 0, &created);
		if (rc != AAM_OK) {
			aam_log(AAM_LOG_ERROR, "db.open", AAM_F_STR("path", path), AAM_F_ERR(rc));
			return rc;
		}
	}

	struct aam_db *db = calloc(1, sizeof(*db));
	if (db == NULL)
		return AAM_E_NOMEM;
	/*
	 * No SQLITE_OPEN_CREATE: the file exists by now, and SQLite must not
	 * create one with its own mode if it vanished in between.  NOMUTEX
	 * because a connection is used by one thread at a time.
	 */
	int oflags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
	if (memory)
		oflags |= SQLITE_OPEN_CREATE | SQLITE_OPEN_MEMORY;
	int src = sqlite3_open_v2(path, &db->h, oflags, NULL);
	int rc;
	if (db->h == NULL)
		rc = AAM_E_NOMEM;
	else if (src != SQLITE_OK)
		rc = db_error(db, src);
	else
		rc = configure(db, flags, memory);
	if (rc != AAM_OK) {
		aam_log(AAM_LOG_ERROR, "db.open", AAM_F_STR("path", path), AAM_F_ERR(rc),
		        AAM_F_STR("reason", db->errmsg));
		sqlite3_close_v2(db->h);
		free(db);
		/* Leave no empty file behind for the next start to trip over. */
		if (created)
			unlink(path);
		return rc;
	}
	*out = db;
	return AAM_OK;
}

static void
stmt_free(struct aam_db_stmt *s)
{
	sqlite3_finalize(s->st);
	free(s->sql);
	free(s);
}

void
aam_db_close(struct aam_db *db)
{
	if (db == NULL)
		return;
	for (size_t i = 0; i < db->ncache; i++)
		stmt_free(db->cache[i]);
	/* _v2 defers the close if a caller still holds a raw statement. */
	sqlite3_close_v2(db->h);
	free(db);
}

sqlite3 *
aam_db_handle(struct aam_db *db)
{
	return db != NULL ? db->h : NULL;
}

int
aam_db_set_busy_timeout(struct aam_db *db, int ms)
{
	if (db == NULL || ms < 0)
		return AAM_E_INVAL;
	int rc = sqlite3_busy_timeout(db->h, ms);
	return rc == SQLITE_OK ? AAM_OK : db_error(db, rc);
}

const char *
aam_db_errmsg(const struct aam_db *db)
{
	return db != NULL ? db->errmsg : "";
}

int
aam_db_errcode(const struct aam_db *db)
{
	return db != NULL ? db->errcode : SQLITE_MISUSE;
}

/* FNV-1a: a cheap filter so most cache probes skip the strcmp. */
static uint32_t
sql_hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

static bool
only_space(const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
			return false;
	}
	return true;
}

/* A slot for a new cache entry: a free one, or the least recently used idle one. */
static struct aam_db_stmt **
cache_slot(struct aam_db *db)
{
	if (db->ncache < AAM_DB_STMT_CACHE_MAX)
		return &db->cache[db->ncache++];
	struct aam_db_stmt **victim = NULL;
	for (size_t i = 0; i < db->ncache; i++) {
		if (db->cache[i]->in_use)
			continue;
		if (victim == NULL || db->cache[i]->last_used < (*victim)->last_used)
			victim = &db->cache[i];
	}
	if (victim != NULL) {
		stmt_free(*victim);
		*victim = NULL;
		db->stats.evictions++;
	}
	return victim;
}

int
aam_db_stmt_get(struct aam_db *db, const char *sql, struct aam_db_stmt **out)
{
	if (out != NULL)
		*out = NULL;
	if (db == NULL || sql == NULL || out == NULL)
		return AAM_E_INVAL;
	uint32_t hash = sql_hash(sql);
	for (size_t i = 0; i < db->ncache; i++) {
		struct aam_db_stmt *s = db->cache[i];
		if (!s->in_use && s->hash == hash && strcmp(s->sql, sql) == 0) {
			s->in_use = true;
			s->last_used = ++db->tick;
			db->stats.cache_hits++;
			*out = s;
			return AAM_OK;
		}
	}

	sqlite3_stmt *ps = NULL;
	const char *tail = NULL;
	int rc = sqlite3_prepare_v3(db->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &ps, &tail);
	db->stats.prepares++;
	if (rc != SQLITE_OK)
		return db_error(db, rc);
	if (ps == NULL)
		return db_error_msg(db, AAM_E_INVAL, "SQL holds no statement");
	if (tail != NULL && !only_space(tail)) {
		sqlite3_finalize(ps);
		return db_error_msg(db, AAM_E_INVAL, "SQL holds more than one statement");
	}
	struct aam_db_stmt *s = calloc(1, sizeof(*s));
	char *copy = strdup(sql);
	if (s == NULL || copy == NULL) {
		free(s);
		free(copy);
		sqlite3_finalize(ps);
		return AAM_E_NOMEM;
	}
	s->db = db;
	s->st = ps;
	s->sql = copy;
	s->hash = hash;
	s->last_used = ++db->tick;
	s->in_use = true;
	struct aam_db_stmt **slot = cache_slot(db);
	if (slot != NULL) {
		*slot = s;
		s->cached = true;
	}
	*out = s;
	return AAM_OK;
}

void
aam_db_stmt_release(struct aam_db_stmt *st)
{
	if (st == NULL)
		return;
	/* Reset ends the read transaction a half-stepped SELECT keeps open. */
	sqlite3_reset(st->st);
	sqlite3_clear_bindings(st->st);
	if (st->cached)
		st->in_use = false;
	else
		stmt_free(st);
}

sqlite3_stmt *
aam_db_stmt_handle(struct aam_db_stmt *st)
{
	return st != NULL ? st->st : NULL;
}

static int
bind_result(struct aam_db_stmt *st, int rc)
{
	return rc == SQLITE_OK ? AAM_OK : db_error(st->db, rc);
}

int
aam_db_bind_text(struct aam_db_stmt *st, int idx, const char *s, size_t len)
{
	if (st == NULL)
		return AAM_E_INVAL;
	if (s == NULL)
		return bind_result(st, sqlite3_bind_null(st->st, idx));
	return bind_result(st, sqlite3_bind_text64(st->st, idx, s, (sqlite3_uint64)len,
	                                           SQLITE_TRANSIENT, SQLITE_UTF8));
}

int
aam_db_bind_str(struct aam_db_stmt *st, int idx, const char *s)
{
	return aam_db_bind_text(st, idx, s, s != NULL ? strlen(s) : 0);
}

int
aam_db_bind_blob(struct aam_db_stmt *st, int idx, const void *p, size_t len)
{
	if (st == NULL)
		return AAM_E_INVAL;
	if (p == NULL)
		return bind_result(st, sqlite3_bind_null(st->st, idx));
	if (len == 0)
		return bind_result(st, sqlite3_bind_zeroblob(st->st, idx, 0));
	return bind_result(
	        st, sqlite3_bind_blob64(st->st, idx, p, (sqlite3_uint64)len, SQLITE_TRANSIENT));
}

int
aam_db_bind_int64(struct aam_db_stmt *st, int idx, int64_t v)
{
	if (st == NULL)
		return AAM_E_INVAL;
	return bind_result(st, sqlite3_bind_int64(st->st, idx, (sqlite3_int64)v));
}

int
aam_db_bind_null(struct aam_db_stmt *st, int idx)
{
	if (st == NULL)
		return AAM_E_INVAL;
	return bind_result(st, sqlite3_bind_null(st->st, idx));
}

int
aam_db_step(struct aam_db_stmt *st, bool *row)
{
	if (row != NULL)
		*row = false;
	if (st == NULL)
		return AAM_E_INVAL;
	int rc = sqlite3_step(st->st);
	if (rc == SQLITE_ROW) {
		if (row != NULL)
			*row = true;
		return AAM_OK;
	}
	if (rc == SQLITE_DONE)
		return AAM_OK;
	return db_error(st->db, rc);
}

int
aam_db_run(struct aam_db_stmt *st)
{
	if (st == NULL)
		return AAM_E_INVAL;
	bool row = true;
	int rc = AAM_OK;
	while (rc == AAM_OK && row)
		rc = aam_db_step(st, &row);
	aam_db_stmt_release(st);
	return rc;
}

bool
aam_db_column_is_null(struct aam_db_stmt *st, int col)
{
	return st == NULL || sqlite3_column_type(st->st, col) == SQLITE_NULL;
}

int64_t
aam_db_column_int64(struct aam_db_stmt *st, int col)
{
	return st != NULL ? (int64_t)sqlite3_column_int64(st->st, col) : 0;
}

const char *
aam_db_column_text(struct aam_db_stmt *st, int col, size_t *len)
{
	if (len != NULL)
		*len = 0;
	if (aam_db_column_is_null(st, col))
		return NULL;
	const unsigned char *p = sqlite3_column_text(st->st, col);
	if (p == NULL)
		return NULL; /* out of memory converting the value */
	if (len != NULL)
		*len = (size_t)sqlite3_column_bytes(st->st, col);
	return (const char *)p;
}

const void *
aam_db_column_blob(struct aam_db_stmt *st, int col, size_t *len)
{
	static const unsigned char empty[1];
	if (len != NULL)
		*len = 0;
	if (aam_db_column_is_null(st, col))
		return NULL;
	const void *p = sqlite3_column_blob(st->st, col);
	int n = sqlite3_column_bytes(st->st, col);
	/* SQLite returns NULL for an empty blob; callers must see "present". */
	if (p == NULL)
		return n == 0 ? empty : NULL;
	if (len != NULL)
		*len = (size_t)n;
	return p;
}

int64_t
aam_db_changes(struct aam_db *db)
{
	return db != NULL ? (int64_t)sqlite3_changes64(db->h) : 0;
}

int64_t
aam_db_last_insert_rowid(struct aam_db *db)
{
	return db != NULL ? (int64_t)sqlite3_last_insert_rowid(db->h) : 0;
}

void
aam_db_stats(const struct aam_db *db, struct aam_db_stats *out)
{
	if (out == NULL)
		return;
	memset(out, 0, sizeof(*out));
	if (db != NULL)
		*out = db->stats;
}

int
aam_db_exec(struct aam_db *db, const char *sql)
{
	if (db == NULL || sql == NULL)
		return AAM_E_INVAL;
	int rc = sqlite3_exec(db->h, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? AAM_OK : db_error(db, rc);
}

static int
run_sql(struct aam_db *db, const char *sql)
{
	struct aam_db_stmt *st;
	int rc = aam_db_stmt_get(db, sql, &st);
	if (rc != AAM_OK)
		return rc;
	return aam_db_run(st);
}

int
aam_db_begin(struct aam_db *db)
{
	if (db == NULL)
		return AAM_E_INVAL;
	/* IMMEDIATE takes the write lock now, so BUSY comes here, not mid-way. */
	return run_sql(db, "BEGIN IMMEDIATE");
}

int
aam_db_commit(struct aam_db *db)
{
	if (db == NULL)
		return AAM_E_INVAL;
	return run_sql(db, "COMMIT");
}

int
aam_db_rollback(struct aam_db *db)
{
	if (db == NULL)
		return AAM_E_INVAL;
	/*
	 * SQLite rolls back by itself after some errors (full disk, I/O,
	 * out of memory); an error path calling us afterwards is not wrong.
	 */
	if (sqlite3_get_autocommit(db->h))
		return AAM_OK;
	return run_sql(db, "ROLLBACK");
}

int
aam_db_user_version(struct aam_db *db, int64_t *out)
{
	if (db == NULL || out == NULL)
		return AAM_E_INVAL;
	*out = 0;
	struct aam_db_stmt *st;
	int rc = aam_db_stmt_get(db, "PRAGMA user_version", &st);
	if (rc != AAM_OK)
		return rc;
	bool row = false;
	rc = aam_db_step(st, &row);
	if (rc == AAM_OK && row)
		*out = aam_db_column_int64(st, 0);
	else if (rc == AAM_OK)
		rc = db_error_msg(db, AAM_E_DB, "PRAGMA user_version returned no row");
	aam_db_stmt_release(st);
	return rc;
}

/* Applies step V (0-based) inside the transaction the caller opened. */
static int
apply_step(struct aam_db *db, const char *step, int64_t v)
{
	int rc = sqlite3_exec(db->h, step, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		int err = db_error(db, rc);
		char msg[sizeof(db->errmsg)];
		memcpy(msg, db->errmsg, sizeof(msg));
		/* Truncating SQLite's reason to fit is acceptable. */
		if (snprintf(db->errmsg, sizeof(db->errmsg),
		             "migration to schema version %" PRId64 " failed: %s", v + 1, msg) < 0)
			db->errmsg[0] = '\0';
		return err;
	}
	/*
	 * A COMMIT inside the step would have made it durable without the
	 * version bump; refuse rather than record a version that lies.
	 */
	if (sqlite3_get_autocommit(db->h))
		return db_error_msg(db, AAM_E_DB,
		                    "migration step %" PRId64 " ended the transaction itself",
		                    v + 1);
	char sql[64];
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %" PRId64, v + 1);
	rc = sqlite3_exec(db->h, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? AAM_OK : db_error(db, rc);
}

int
aam_db_migrate(struct aam_db *db, const char *const *steps, size_t nsteps)
{
	if (db == NULL || (steps == NULL && nsteps != 0) || nsteps > INT32_MAX)
		return AAM_E_INVAL;
	for (size_t i = 0; i < nsteps; i++) {
		if (steps[i] == NULL)
			return AAM_E_INVAL;
	}
	db_clear_error(db);
	for (;;) {
		int rc = aam_db_begin(db);
		if (rc != AAM_OK)
			return rc;
		int64_t v = 0;
		rc = aam_db_user_version(db, &v);
		if (rc == AAM_OK && v < 0)
			rc = db_error_msg(db, AAM_E_DB,
			                  "database schema version %" PRId64 " is invalid", v);
		if (rc == AAM_OK && (uint64_t)v > nsteps)
			rc = db_error_msg(db, AAM_E_UNSUPPORTED,
			                  "database schema version %" PRId64
			                  " is newer than this program supports (%zu)",
			                  v, nsteps);
		if (rc != AAM_OK || (uint64_t)v == nsteps) {
			aam_db_rollback(db);
			return rc;
		}
		rc = apply_step(db, steps[v], v);
		if (rc == AAM_OK)
			rc = aam_db_commit(db);
		if (rc != AAM_OK) {
			/* Keep the step's error, not the rollback's. */
			char msg[sizeof(db->errmsg)];
			int code = db->errcode;
			memcpy(msg, db->errmsg, sizeof(msg));
			aam_db_rollback(db);
			memcpy(db->errmsg, msg, sizeof(msg));
			db->errcode = code;
			aam_log(AAM_LOG_ERROR, "db.migrate", AAM_F_INT("version", v), AAM_F_ERR(rc),
			        AAM_F_STR("reason", db->errmsg));
			return rc;
		}
		aam_log(AAM_LOG_INFO, "db.migrate", AAM_F_INT("version", v + 1));
	}
}
