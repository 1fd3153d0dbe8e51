/*
 * Registrations, issued tokens and the revocation feed.  See registry.h.
 */
#include "attest/registry.h"
#include "common/json.h"
#include "aam/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Schema migrations; append only (common/db.h runs each once). */
static const char *const attest_migrations[] = {
        /* 1: registrations, issued tokens, revocations, meta. */
        "CREATE TABLE registrations ("
        " id INTEGER PRIMARY KEY,"
        " spiffe_id TEXT NOT NULL UNIQUE,"
        " owner TEXT NOT NULL, team TEXT NOT NULL,"
        " environment TEXT NOT NULL, deployment TEXT NOT NULL,"
        " method TEXT NOT NULL CHECK (method IN ('tpm','pkcs11','join')),"
        " ek_pub_sha256 BLOB CHECK (ek_pub_sha256 IS NULL OR length(ek_pub_sha256) = 32),"
        " ek_ca_sha256 BLOB CHECK (ek_ca_sha256 IS NULL OR length(ek_ca_sha256) = 32),"
        " pcr_mask INTEGER NOT NULL DEFAULT 0,"
        " pcr_values TEXT,"
        " key_jkt TEXT,"
        " join_hash BLOB UNIQUE CHECK (join_hash IS NULL OR length(join_hash) = 32),"
        " join_expires INTEGER,"
        " join_used INTEGER NOT NULL DEFAULT 0,"
        " audiences TEXT NOT NULL,"
        " token_ttl INTEGER NOT NULL CHECK (token_ttl BETWEEN 1 AND 900),"
        " created INTEGER NOT NULL,"
        " revoked INTEGER);"
        "CREATE TABLE issued ("
        " jti TEXT PRIMARY KEY,"
        " registration INTEGER NOT NULL REFERENCES registrations(id) ON DELETE CASCADE,"
        " iat INTEGER NOT NULL, exp INTEGER NOT NULL);"
        "CREATE INDEX issued_by_registration ON issued(registration, exp);"
        "CREATE INDEX issued_by_exp ON issued(exp);"
        "CREATE TABLE revocations ("
        " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
        " spiffe_id TEXT NOT NULL,"
        " jti TEXT,"
        " exp INTEGER,"
        " revoked_at INTEGER NOT NULL);"
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
};

const char *
attest_method_name(enum attest_method m)
{
	switch (m) {
	case ATTEST_METHOD_TPM:
		return "tpm";
	case ATTEST_METHOD_PKCS11:
		return "pkcs11";
	case ATTEST_METHOD_JOIN:
		return "join";
	default:
		return "none";
	}
}

enum attest_method
attest_method_parse(const char *s)
{
	if (s == NULL)
		return ATTEST_METHOD_NONE;
	if (strcmp(s, "tpm") == 0)
		return ATTEST_METHOD_TPM;
	if (strcmp(s, "pkcs11") == 0)
		return ATTEST_METHOD_PKCS11;
	if (strcmp(s, "join") == 0)
		return ATTEST_METHOD_JOIN;
	return ATTEST_METHOD_NONE;
}

int
attest_registry_open(const char *path, bool create, struct aam_db **out)
{
	if (path == NULL || out == NULL)
		return AAM_E_INVAL;
	struct aam_db *db = NULL;
	int rc = aam_db_open(path, create ? AAM_DB_CREATE : 0, &db);
	if (rc != AAM_OK)
		return rc;
	rc = aam_db_migrate(db, attest_migrations,
	                    sizeof(attest_migrations) / sizeof(attest_migrations[0]));
	if (rc != AAM_OK) {
		aam_db_close(db);
		return rc;
	}
	*out = db;
	return AAM_OK;
}

/* ---- validation ----------------------------------------------------------- */

static bool
text_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

static bool
jkt_ok(const char *s)
{
	if (strlen(s) != ATTEST_JKT_LEN)
		return false;
	for (const char *p = s; *p != '\0'; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
			return false;
	return true;
}

#define WHY(...)                                                                                   \
	do {                                                                                       \
		if (why != NULL)                                                                   \
			snprintf(why, whylen, __VA_ARGS__);                                        \
		return AAM_E_INVAL;                                                                \
	} while (0)

int
attest_reg_validate(const struct attest_reg *r, const char *trust_domain, char *why, size_t whylen)
{
	if (r == NULL)
		return AAM_E_INVAL;
	struct aam_spiffe_id id;
	const char *sw = NULL;
	if (aam_spiffe_parse(r->spiffe_id, strlen(r->spiffe_id), &id, &sw) != AAM_OK)
		WHY("spiffe_id: %s", sw != NULL ? sw : "invalid SPIFFE ID");
	if (id.path[0] == '\0')
		WHY("spiffe_id: a workload ID needs a path");
	if (trust_domain != NULL && !aam_spiffe_in_trust_domain(&id, trust_domain))
		WHY("spiffe_id: not in trust domain %s", trust_domain);
	const struct {
		const char *name, *v;
	} fields[] = {{"owner", r->owner},
	              {"team", r->team},
	              {"environment", r->environment},
	              {"deployment", r->deployment}};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (!text_ok(fields[i].v, ATTEST_FIELD_MAX))
			WHY("%s: 1 to %u characters without control characters", fields[i].name,
			    ATTEST_FIELD_MAX);
	if (r->naudiences == 0 || r->naudiences > ATTEST_MAX_AUDIENCES)
		WHY("audience: 1 to %u audiences", ATTEST_MAX_AUDIENCES);
	for (size_t i = 0; i < r->naudiences; i++) {
		if (!text_ok(r->audiences[i], ATTEST_AUDIENCE_MAX))
			WHY("audience: 1 to %u characters without control characters",
			    ATTEST_AUDIENCE_MAX);
		for (size_t j = 0; j < i; j++)
			if (strcmp(r->audiences[i], r->audiences[j]) == 0)
				WHY("audience: listed twice");
	}
	if (r->token_ttl < 1 || r->token_ttl > ATTEST_TTL_MAX)
		WHY("ttl: 1 second to %d minutes", ATTEST_TTL_MAX / 60);
	switch (r->method) {
	case ATTEST_METHOD_TPM:
		if (!r->has_ek_pub && !r->has_ek_ca)
			WHY("tpm: an EK public key or an EK CA selector is required");
		if (r->pcr_mask == 0 || r->pcr_mask >> ATTEST_PCR_COUNT != 0)
			WHY("pcrs: PCR indices 0 to %u", ATTEST_PCR_COUNT - 1);
		if ((r->pcr_value_mask & ~r->pcr_mask) != 0)
			WHY("pcrs: a PCR value for a PCR that is not selected");
		break;
	case ATTEST_METHOD_PKCS11:
		if (!jkt_ok(r->key_jkt))
			WHY("pkcs11: the key's RFC 7638 thumbprint is required");
		break;
	case ATTEST_METHOD_JOIN:
		if (!r->has_join || r->join_expires <= 0)
			WHY("join: a join token hash and expiry are required");
		break;
	default:
		WHY("method: tpm, pkcs11 or join");
	}
	return AAM_OK;
}

/* ---- encoding of JSON columns ---------------------------------------------- */

static char *
audiences_json(const struct attest_reg *r)
{
	json_t *a = json_array();
	for (size_t i = 0; a != NULL && i < r->naudiences; i++)
		json_array_append_new(a, json_string(r->audiences[i]));
	char *s = a != NULL ? json_dumps(a, JSON_COMPACT) : NULL;
	json_decref(a);
	return s;
}

static int
audiences_parse(const char *s, size_t len, struct attest_reg *r)
{
	json_t *a = NULL;
	if (s == NULL || aam_json_parse(s, len, NULL, &a, NULL) != AAM_OK)
		return AAM_E_DB;
	int rc = AAM_OK;
	if (!json_is_array(a) || json_array_size(a) > ATTEST_MAX_AUDIENCES) {
		rc = AAM_E_DB;
		goto out;
	}
	r->naudiences = json_array_size(a);
	for (size_t i = 0; i < r->naudiences; i++) {
		const char *v = json_string_value(json_array_get(a, i));
		if (v == NULL || strlen(v) > ATTEST_AUDIENCE_MAX) {
			rc = AAM_E_DB;
			goto out;
		}
		memcpy(r->audiences[i], v, strlen(v) + 1);
	}
out:
	json_decref(a);
	return rc;
}

static char *
pcr_values_json(const struct attest_reg *r)
{
	if (r->pcr_value_mask == 0)
		return NULL;
	json_t *o = json_object();
	for (unsigned i = 0; o != NULL && i < ATTEST_PCR_COUNT; i++) {
		if (!(r->pcr_value_mask >> i & 1u))
			continue;
		char key[4], hex[65];
		snprintf(key, sizeof(key), "%u", i);
		for (size_t b = 0; b < 32; b++)
			snprintf(hex + 2 * b, 3, "%02x", r->pcr_values[i][b]);
		json_object_set_new(o, key, json_string(hex));
	}
	char *s = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	return s;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int
pcr_values_parse(const char *s, size_t len, struct attest_reg *r)
{
	json_t *o = NULL;
	if (aam_json_parse(s, len, NULL, &o, NULL) != AAM_OK)
		return AAM_E_DB;
	int rc = json_is_object(o) ? AAM_OK : AAM_E_DB;
	const char *key;
	json_t *v;
	json_object_foreach(o, key, v)
	{
		char *end = NULL;
		unsigned long idx = strtoul(key, &end, 10);
		const char *hex = json_string_value(v);
		if (end == key || *end != '\0' || idx >= ATTEST_PCR_COUNT || hex == NULL ||
		    strlen(hex) != 64) {
			rc = AAM_E_DB;
			break;
		}
		for (size_t b = 0; b < 32; b++) {
			int hi = hexval(hex[2 * b]), lo = hexval(hex[2 * b + 1]);
			if (hi < 0 || lo < 0) {
				rc = AAM_E_DB;
				break;
			}
			r->pcr_values[idx][b] = (uint8_t)(hi << 4 | lo);
		}
		r->pcr_value_mask |= 1u << idx;
	}
	json_decref(o);
	return rc;
}

/* ---- rows -------------------------------------------------------------------- */

#define REG_COLUMNS                                                                                \
	"id, spiffe_id, owner, team, environment, deployment, method, ek_pub_sha256, "             \
	"ek_ca_sha256, pcr_mask, pcr_values, key_jkt, join_hash, join_expires, join_used, "        \
	"audiences, token_ttl, created, revoked"

static void
copy_text(struct aam_db_stmt *st, int col, char *dst, size_t cap)
{
	size_t n = 0;
	const char *s = aam_db_column_text(st, col, &n);
	if (s == NULL || n >= cap)
		n = 0;
	if (n > 0)
		memcpy(dst, s, n);
	dst[n] = '\0';
}

static bool
copy_hash(struct aam_db_stmt *st, int col, uint8_t dst[32])
{
	size_t n = 0;
	const void *p = aam_db_column_blob(st, col, &n);
	if (p == NULL || n != 32)
		return false;
	memcpy(dst, p, 32);
	return true;
}

static int
reg_from_row(struct aam_db_stmt *st, struct attest_reg *r)
{
	memset(r, 0, sizeof(*r));
	r->id = aam_db_column_int64(st, 0);
	copy_text(st, 1, r->spiffe_id, sizeof(r->spiffe_id));
	copy_text(st, 2, r->owner, sizeof(r->owner));
	copy_text(st, 3, r->team, sizeof(r->team));
	copy_text(st, 4, r->environment, sizeof(r->environment));
	copy_text(st, 5, r->deployment, sizeof(r->deployment));
	r->method = attest_method_parse(aam_db_column_text(st, 6, NULL));
	r->has_ek_pub = copy_hash(st, 7, r->ek_pub_sha256);
	r->has_ek_ca = copy_hash(st, 8, r->ek_ca_sha256);
	int64_t mask = aam_db_column_int64(st, 9);
	r->pcr_mask = mask > 0 && mask < (1 << ATTEST_PCR_COUNT) ? (uint32_t)mask : 0;
	size_t n = 0;
	const char *pv = aam_db_column_text(st, 10, &n);
	if (pv != NULL && pcr_values_parse(pv, n, r) != AAM_OK)
		return AAM_E_DB;
	copy_text(st, 11, r->key_jkt, sizeof(r->key_jkt));
	r->has_join = copy_hash(st, 12, r->join_hash);
	r->join_expires = aam_db_column_int64(st, 13);
	r->join_used = aam_db_column_int64(st, 14) != 0;
	const char *aud = aam_db_column_text(st, 15, &n);
	if (audiences_parse(aud, n, r) != AAM_OK)
		return AAM_E_DB;
	r->token_ttl = aam_db_column_int64(st, 16);
	r->created = aam_db_column_int64(st, 17);
	r->revoked = aam_db_column_is_null(st, 18) ? 0 : aam_db_column_int64(st, 18);
	if (r->method == ATTEST_METHOD_NONE)
		return AAM_E_DB;
	return AAM_OK;
}

int
attest_reg_insert(struct aam_db *db, struct attest_reg *r)
{
	if (db == NULL || r == NULL)
		return AAM_E_INVAL;
	char *aud = audiences_json(r);
	char *pcrs = pcr_values_json(r);
	if (aud == NULL || (r->pcr_value_mask != 0 && pcrs == NULL)) {
		free(aud);
		free(pcrs);
		return AAM_E_NOMEM;
	}
	struct aam_db_stmt *st = NULL;
	int rc = aam_db_stmt_get(
	        db,
	        "INSERT INTO registrations (spiffe_id, owner, team, environment, deployment, "
	        "method, ek_pub_sha256, ek_ca_sha256, pcr_mask, pcr_values, key_jkt, join_hash, "
	        "join_expires, audiences, token_ttl, created) "
	        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
	        &st);
	if (rc == AAM_OK) {
		aam_db_bind_str(st, 1, r->spiffe_id);
		aam_db_bind_str(st, 2, r->owner);
		aam_db_bind_str(st, 3, r->team);
		aam_db_bind_str(st, 4, r->environment);
		aam_db_bind_str(st, 5, r->deployment);
		aam_db_bind_str(st, 6, attest_method_name(r->method));
		aam_db_bind_blob(st, 7, r->has_ek_pub ? r->ek_pub_sha256 : NULL, 32);
		aam_db_bind_blob(st, 8, r->has_ek_ca ? r->ek_ca_sha256 : NULL, 32);
		aam_db_bind_int64(st, 9, r->method == ATTEST_METHOD_TPM ? r->pcr_mask : 0);
		aam_db_bind_str(st, 10, pcrs);
		aam_db_bind_str(st, 11, r->key_jkt[0] != '\0' ? r->key_jkt : NULL);
		aam_db_bind_blob(st, 12, r->has_join ? r->join_hash : NULL, 32);
		if (r->has_join)
			aam_db_bind_int64(st, 13, r->join_expires);
		else
			aam_db_bind_null(st, 13);
		aam_db_bind_str(st, 14, aud);
		aam_db_bind_int64(st, 15, r->token_ttl);
		aam_db_bind_int64(st, 16, r->created);
		rc = aam_db_run(st);
	}
	free(aud);
	free(pcrs);
	if (rc == AAM_OK)
		r->id = aam_db_last_insert_rowid(db);
	return rc;
}

static int
reg_get_one(struct aam_db *db, const char *sql, const void *key, size_t keylen, bool blob,
            struct attest_reg *out)
{
	struct aam_db_stmt *st = NULL;
	int rc = aam_db_stmt_get(db, sql, &st);
	if (rc != AAM_OK)
		return rc;
	rc = blob ? aam_db_bind_blob(st, 1, key, keylen) : aam_db_bind_text(st, 1, key, keylen);
	bool row = false;
	if (rc == AAM_OK)
		rc = aam_db_step(st, &row);
	if (rc == AAM_OK)
		rc = row ? reg_from_row(st, out) : AAM_E_NOTFOUND;
	aam_db_stmt_release(st);
	return rc;
}

int
attest_reg_get(struct aam_db *db, const char *spiffe_id, struct attest_reg *out)
{
	if (db == NULL || spiffe_id == NULL || out == NULL)
		return AAM_E_INVAL;
	return reg_get_one(db, "SELECT " REG_COLUMNS " FROM registrations WHERE spiffe_id = ?1",
	                   spiffe_id, strlen(spiffe_id), false, out);
}

int
attest_reg_get_by_join(struct aam_db *db, const uint8_t hash[32], struct attest_reg *out)
{
	if (db == NULL || hash == NULL || out == NULL)
		return AAM_E_INVAL;
	return reg_get_one(db, "SELECT " REG_COLUMNS " FROM registrations WHERE join_hash = ?1",
	                   hash, 32, true, out);
}

int
attest_reg_list(struct aam_db *db, int (*cb)(void *ctx, const struct attest_reg *r), void *ctx)
{
	if (db == NULL || cb == NULL)
		return AAM_E_INVAL;
	struct aam_db_stmt *st = NULL;
	int rc = aam_db_stmt_get(db, "SELECT " REG_COLUMNS " FROM registrations ORDER BY spiffe_id",
	                         &st);
	if (rc != AAM_OK)
		return rc;
	struct attest_reg *r = malloc(sizeof(*r));
	if (r == NULL) {
		aam_db_stmt_release(st);
		return AAM_E_NOMEM;
	}
	for (;;) {
		bool row = false;
		rc = aam_db_step(st, &row);
		if (rc != AAM_OK || !row)
			break;
		rc = reg_from_row(st, r);
		if (rc == AAM_OK)
			rc = cb(ctx, r);
		if (rc != AAM_OK)
			break;
	}
	free(r);
	aam_db_stmt_release(st);
	return rc;
}

/* ---- revocation ---------------------------------------------------------------- */

int
attest_reg_revoke(struct aam_db *db, const char *spiffe_id, int64_t now, size_t *njti)
{
	if (db == NULL || spiffe_id == NULL)
		return AAM_E_INVAL;
	if (njti != NULL)
		*njti = 0;
	int rc = aam_db_begin(db);
	if (rc != AAM_OK)
		return rc;
	struct aam_db_stmt *st = NULL;
	int64_t id = 0, revoked = 0;
	bool row = false;
	rc = aam_db_stmt_get(db, "SELECT id, revoked FROM registrations WHERE spiffe_id = ?1", &st);
	if (rc == AAM_OK) {
		aam_db_bind_str(st, 1, spiffe_id);
		rc = aam_db_step(st, &row);
		if (rc == AAM_OK && row) {
			id = aam_db_column_int64(st, 0);
			revoked = aam_db_column_is_null(st, 1) ? 0 : 1;
		}
		aam_db_stmt_release(st);
	}
	if (rc == AAM_OK && !row)
		rc = AAM_E_NOTFOUND;
	if (rc == AAM_OK && revoked)
		rc = AAM_E_EXISTS;
	if (rc == AAM_OK && (rc = aam_db_stmt_get(db,
	                                          "UPDATE registrations SET revoked = ?2 "
	                                          "WHERE id = ?1",
	                                          &st)) == AAM_OK) {
		aam_db_bind_int64(st, 1, id);
		aam_db_bind_int64(st, 2, now);
		rc = aam_db_run(st);
	}
	if (rc == AAM_OK &&
	    (rc = aam_db_stmt_get(db,
	                          "INSERT INTO revocations (spiffe_id, revoked_at) VALUES (?1, ?2)",
	                          &st)) == AAM_OK) {
		aam_db_bind_str(st, 1, spiffe_id);
		aam_db_bind_int64(st, 2, now);
		rc = aam_db_run(st);
	}
	/* Live tokens are published one by one so a gateway can drop them by jti too. */
	if (rc == AAM_OK &&
	    (rc = aam_db_stmt_get(db,
	                          "INSERT INTO revocations (spiffe_id, jti, exp, revoked_at) "
	                          "SELECT ?2, jti, exp, ?3 FROM issued "
	                          "WHERE registration = ?1 AND exp > ?3 ORDER BY iat",
	                          &st)) == AAM_OK) {
		aam_db_bind_int64(st, 1, id);
		aam_db_bind_str(st, 2, spiffe_id);
		aam_db_bind_int64(st, 3, now);
		rc = aam_db_run(st);
		if (rc == AAM_OK && njti != NULL)
			*njti = (size_t)aam_db_changes(db);
	}
	if (rc == AAM_OK)
		rc = aam_db_commit(db);
	else
		aam_db_rollback(db);
	return rc;
}

int
attest_jti_revoke(struct aam_db *db, const char *jti, int64_t now)
{
	if (db == NULL || jti == NULL)
		return AAM_E_INVAL;
	struct aam_db_stmt *st = NULL;
	int rc = aam_db_stmt_get(db,
	                         "INSERT INTO revocations (spiffe_id, jti, exp, revoked_at) "
	                         "SELECT r.spiffe_id, i.jti, i.exp, ?2 FROM issued i "
	                         "JOIN registrations r ON r.id = i.registration WHERE i.jti = ?1",
	                         &st);
	if (rc != AAM_OK)
		return rc;
	aam_db_bind_str(st, 1, jti);
	aam_db_bind_int64(st, 2, now);
	rc = aam_db_run(st);
	if (rc == AAM_OK && aam_db_changes(db) == 0)
		rc = AAM_E_NOTFOUND;
	return rc;
}

int
attest_reg_join_complete(struct aam_db *db, int64_t id, const char *jkt)
{
	if (db == NULL || jkt == NULL || !jkt_ok(jkt))
		return AAM_E_INVAL;
	struct aam_db_stmt *st = NULL;
	int rc = aam_db_stmt_get(db,
	                         "UPDATE registrations SET join_used = 1, key_jkt = ?2, "
	                         "method = 'pkcs11' "
	                         "WHERE id = ?1 AND method = 'join' AND join_used = 0 "
	                         "AND revoked IS NULL",
	                         &st);
	if (rc != AAM_OK)
		return rc;
	aam_db_bind_int64(st, 1, id);
	aam_db_bind_str(st, 2, jkt);
	rc = aam_db_run(st);
	if (rc == AAM_OK && aam_db_changes(db) != 1)
		rc = AAM_E_EXISTS;
	return rc;
}

int
attest_issued_record(struct aam_db *db, int64_t reg_id, const char *jti, int64_t iat, int64_t exp)
{
	if (db == NULL || jti == NULL)
		return AAM_E_INVAL;
	struct aam_db_stmt *st = NULL;
	int rc = aam_db_stmt_get(
	        db, "INSERT INTO issued (jti, registration, iat, exp) VALUES (?1, ?2, ?3, ?4)",
	        &st);
	if (rc != AAM_OK)
		return rc;
	aam_db_bind_str(st, 1, jti);
	aam_db_bind_int64(st, 2, reg_id);
	aam_db_bind_int64(st, 3, iat);
	aam_db_bind_int64(st, 4, exp);
	return aam_db_run(st);
}

int
attest_revocations_since(struct aam_db *db, int64_t since, size_t limit, json_t **out)
{
	if (db == NULL || out == NULL || limit == 0)
		return AAM_E_INVAL;
	*out = NULL;
	json_t *list = json_array();
	if (list == NULL)
		return AAM_E_NOMEM;
	struct aam_db_stmt *st = NULL;
	int rc = aam_db_stmt_get(db,
	                         "SELECT seq, spiffe_id, jti, exp, revoked_at FROM revocations "
	                         "WHERE seq > ?1 ORDER BY seq LIMIT ?2",
	                         &st);
	bool more = false;
	int64_t last = since;
	if (rc == AAM_OK) {
		aam_db_bind_int64(st, 1, since);
		aam_db_bind_int64(st, 2, (int64_t)limit + 1);
		size_t n = 0;
		for (;;) {
			bool row = false;
			rc = aam_db_step(st, &row);
			if (rc != AAM_OK || !row)
				break;
			if (n == limit) {
				more = true;
				break;
			}
			n++;
			last = aam_db_column_int64(st, 0);
			json_t *e = json_pack("{s:I,s:s,s:I}", "seq", (json_int_t)last, "spiffe_id",
			                      aam_db_column_text(st, 1, NULL), "revoked_at",
			                      (json_int_t)aam_db_column_int64(st, 4));
			if (e != NULL && !aam_db_column_is_null(st, 2)) {
				json_object_set_new(e, "jti",
				                    json_string(aam_db_column_text(st, 2, NULL)));
				json_object_set_new(e, "exp",
				                    json_integer(aam_db_column_int64(st, 3)));
			}
			if (e == NULL || json_array_append_new(list, e) != 0) {
				rc = AAM_E_NOMEM;
				break;
			}
		}
		aam_db_stmt_release(st);
	}
	/* The feed's head, so a client that is up to date learns so. */
	int64_t head = last;
	if (rc == AAM_OK &&
	    (rc = aam_db_stmt_get(db, "SELECT coalesce(max(seq), 0) FROM revocations", &st)) ==
	            AAM_OK) {
		bool row = false;
		rc = aam_db_step(st, &row);
		if (rc == AAM_OK && row)
			head = aam_db_column_int64(st, 0);
		aam_db_stmt_release(st);
	}
	if (rc != AAM_OK) {
		json_decref(list);
		return rc;
	}
	json_t *o = json_pack("{s:I,s:I,s:o,s:b}", "sequence", (json_int_t)head, "next",
	                      (json_int_t)last, "revocations", list, "more", more);
	if (o == NULL)
		return AAM_E_NOMEM;
	*out = o;
	return AAM_OK;
}

int
attest_registry_prune(struct aam_db *db, int64_t now)
{
	if (db == NULL)
		return AAM_E_INVAL;
	struct aam_db_stmt *st = NULL;
	int rc = aam_db_stmt_get(db, "DELETE FROM issued WHERE exp <= ?1", &st);
	if (rc != AAM_OK)
		return rc;
	aam_db_bind_int64(st, 1, now);
	return aam_db_run(st);
}

int
attest_meta_get(struct aam_db *db, const char *key, char *out, size_t outlen)
{
	if (db == NULL || key == NULL || out == NULL || outlen == 0)
		return AAM_E_INVAL;
	struct aam_db_stmt *st = NULL;
	int rc = aam_db_stmt_get(db, "SELECT value FROM meta WHERE key = ?1", &st);
	if (rc != AAM_OK)
		return rc;
	aam_db_bind_str(st, 1, key);
	bool row = false;
	rc = aam_db_step(st, &row);
	if (rc == AAM_OK && !row)
		rc = AAM_E_NOTFOUND;
	if (rc == AAM_OK) {
		size_t n = 0;
		const char *v = aam_db_column_text(st, 0, &n);
		if (v == NULL || n >= outlen)
			rc = AAM_E_TOOBIG;
		else
			memcpy(out, v, n + 1);
	}
	aam_db_stmt_release(st);
	return rc;
}

int
attest_meta_set(struct aam_db *db, const char *key, const char *value)
{
	if (db == NULL || key == NULL || value == NULL)
		return AAM_E_INVAL;
	struct aam_db_stmt *st = NULL;
	int rc = aam_db_stmt_get(db,
	                         "INSERT INTO meta (key, value) VALUES (?1, ?2) "
	                         "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
	                         &st);
	if (rc != AAM_OK)
		return rc;
	aam_db_bind_str(st, 1, key);
	aam_db_bind_str(st, 2, value);
	return aam_db_run(st);
}
