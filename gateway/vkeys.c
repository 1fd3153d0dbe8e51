/*
 * Virtual keys in SQLite.  See vkeys.h.
 */
#include "gateway/vkeys.h"
#include "aam/err.h"
#include "common/b64.h"
#include "common/json.h"
#include "common/secret.h"
#include "common/spiffe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

static const char vkeys_schema[] =
        "CREATE TABLE IF NOT EXISTS virtual_keys ("
        " hash TEXT PRIMARY KEY NOT NULL CHECK (length(hash) = 64),"
        " alias TEXT UNIQUE,"
        " workload TEXT NOT NULL,"
        " owner TEXT NOT NULL,"
        " team TEXT,"
        " models TEXT,"
        " max_budget REAL,"
        " budget_duration TEXT,"
        " rpm INTEGER NOT NULL DEFAULT 0,"
        " tpm INTEGER NOT NULL DEFAULT 0,"
        " expires INTEGER,"
        " revoked INTEGER NOT NULL DEFAULT 0,"
        " source TEXT NOT NULL DEFAULT 'aam',"
        " created INTEGER NOT NULL);"
        "CREATE INDEX IF NOT EXISTS virtual_keys_workload ON virtual_keys(workload);";

int
gw_vkeys_migrate(struct aam_db *db)
{
	if (db == NULL)
		return AAM_E_INVAL;
	return aam_db_exec(db, vkeys_schema);
}

void
gw_vkey_hash(const char *key, size_t len, char out[GW_VKEY_HASH_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t d[32];
	unsigned dl = 0;
	EVP_Digest(key, len, d, &dl, EVP_sha256(), NULL);
	for (size_t i = 0; i < 32; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[GW_VKEY_HASH_LEN] = '\0';
	aam_wipe(d, sizeof(d));
}

int
gw_vkey_generate(char out[GW_VKEY_NEW_LEN + 1])
{
	uint8_t r[32];
	if (RAND_bytes(r, sizeof(r)) != 1)
		return AAM_E_CRYPTO;
	size_t pl = strlen(GW_VKEY_PREFIX);
	memcpy(out, GW_VKEY_PREFIX, pl);
	int rc =
	        aam_b64_encode(r, sizeof(r), out + pl, GW_VKEY_NEW_LEN + 1 - pl, NULL, AAM_B64_URL);
	aam_wipe(r, sizeof(r));
	return rc;
}

static bool
is_hash(const char *s)
{
	if (s == NULL || strlen(s) != GW_VKEY_HASH_LEN)
		return false;
	for (const char *p = s; *p != '\0'; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

/* A field of printable text of at most MAX bytes (NULL allowed when OPTIONAL). */
static bool
is_text(const char *s, size_t max, bool optional)
{
	if (s == NULL)
		return optional;
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

/* MODELS is NULL or a JSON array of 1..1000 non-empty strings. */
static bool
models_ok(const char *models)
{
	if (models == NULL)
		return true;
	size_t n = strlen(models);
	if (n > GW_VKEY_MODELS_MAX)
		return false;
	json_t *j = NULL;
	if (aam_json_parse(models, n, NULL, &j, NULL) != AAM_OK)
		return false;
	bool ok = json_is_array(j) && json_array_size(j) <= 1000;
	size_t i;
	json_t *v;
	json_array_foreach(j, i, v)
	{
		if (!json_is_string(v) || json_string_length(v) == 0)
			ok = false;
	}
	json_decref(j);
	return ok;
}

int
gw_vkey_insert(struct aam_db *db, const struct gw_vkey *k)
{
	if (db == NULL || k == NULL)
		return AAM_E_INVAL;
	struct aam_spiffe_id id;
	if (!is_hash(k->hash) || k->workload == NULL ||
	    aam_spiffe_parse(k->workload, strlen(k->workload), &id, NULL) != AAM_OK ||
	    !is_text(k->owner, 256, false) || !is_text(k->team, 256, true) ||
	    !is_text(k->alias, GW_VKEY_ALIAS_MAX, true) || !is_text(k->budget_duration, 32, true) ||
	    !is_text(k->source, 32, true) || !models_ok(k->models) || k->rpm < 0 || k->tpm < 0 ||
	    k->expires < 0)
		return AAM_E_INVAL;
	/* An alias that looks like a hash would make revocation by name ambiguous. */
	if (k->alias != NULL && is_hash(k->alias))
		return AAM_E_INVAL;
	struct aam_db_stmt *st = NULL;
	int rc =
	        aam_db_stmt_get(db,
	                        "INSERT INTO virtual_keys (hash, alias, workload, owner, team, "
	                        "models, max_budget, budget_duration, rpm, tpm, expires, revoked, "
	                        "source, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
	                        "?11, ?12, ?13, ?14)",
	                        &st);
	if (rc != AAM_OK)
		return rc;
	aam_db_bind_str(st, 1, k->hash);
	aam_db_bind_str(st, 2, k->alias);
	aam_db_bind_str(st, 3, k->workload);
	aam_db_bind_str(st, 4, k->owner);
	aam_db_bind_str(st, 5, k->team);
	aam_db_bind_str(st, 6, k->models);
	if (k->max_budget >= 0)
		sqlite3_bind_double(aam_db_stmt_handle(st), 7, k->max_budget);
	else
		aam_db_bind_null(st, 7);
	aam_db_bind_str(st, 8, k->budget_duration);
	aam_db_bind_int64(st, 9, k->rpm);
	aam_db_bind_int64(st, 10, k->tpm);
	if (k->expires > 0)
		aam_db_bind_int64(st, 11, k->expires);
	else
		aam_db_bind_null(st, 11);
	aam_db_bind_int64(st, 12, k->revoked ? 1 : 0);
	aam_db_bind_str(st, 13, k->source != NULL ? k->source : "aam");
	aam_db_bind_int64(st, 14, k->created > 0 ? k->created : (int64_t)time(NULL));
	return aam_db_run(st);
}

static int
dup_col(struct aam_db_stmt *st, int col, char **out)
{
	const char *s = aam_db_column_text(st, col, NULL);
	*out = NULL;
	if (s == NULL)
		return AAM_OK;
	*out = strdup(s);
	return *out != NULL ? AAM_OK : AAM_E_NOMEM;
}

#define VKEY_COLUMNS                                                                               \
	"hash, alias, workload, owner, team, models, max_budget, budget_duration, rpm, tpm, "      \
	"expires, revoked, source, created"

static int
row_to_key(struct aam_db_stmt *st, struct gw_vkey *out)
{
	memset(out, 0, sizeof(*out));
	const char *h = aam_db_column_text(st, 0, NULL);
	snprintf(out->hash, sizeof(out->hash), "%s", h != NULL ? h : "");
	int rc = dup_col(st, 1, &out->alias);
	if (rc == AAM_OK)
		rc = dup_col(st, 2, &out->workload);
	if (rc == AAM_OK)
		rc = dup_col(st, 3, &out->owner);
	if (rc == AAM_OK)
		rc = dup_col(st, 4, &out->team);
	if (rc == AAM_OK)
		rc = dup_col(st, 5, &out->models);
	out->max_budget = aam_db_column_is_null(st, 6)
	                          ? -1.0
	                          : sqlite3_column_double(aam_db_stmt_handle(st), 6);
	if (rc == AAM_OK)
		rc = dup_col(st, 7, &out->budget_duration);
	out->rpm = aam_db_column_int64(st, 8);
	out->tpm = aam_db_column_int64(st, 9);
	out->expires = aam_db_column_is_null(st, 10) ? 0 : aam_db_column_int64(st, 10);
	out->revoked = aam_db_column_int64(st, 11) != 0;
	if (rc == AAM_OK)
		rc = dup_col(st, 12, &out->source);
	out->created = aam_db_column_int64(st, 13);
	if (rc == AAM_OK && (out->workload == NULL || out->owner == NULL))
		rc = AAM_E_DB; /* NOT NULL columns; a row without them was not written by us */
	if (rc != AAM_OK)
		gw_vkey_uninit(out);
	return rc;
}

int
gw_vkey_lookup_hash(struct aam_db *db, const char *hash, struct gw_vkey *out)
{
	if (db == NULL || out == NULL || !is_hash(hash))
		return AAM_E_INVAL;
	struct aam_db_stmt *st = NULL;
	int rc = aam_db_stmt_get(db, "SELECT " VKEY_COLUMNS " FROM virtual_keys WHERE hash = ?1",
	                         &st);
	if (rc != AAM_OK)
		return rc;
	aam_db_bind_str(st, 1, hash);
	bool row = false;
	rc = aam_db_step(st, &row);
	if (rc == AAM_OK && !row)
		rc = AAM_E_NOTFOUND;
	if (rc == AAM_OK)
		rc = row_to_key(st, out);
	aam_db_stmt_release(st);
	return rc;
}

int
gw_vkey_lookup(struct aam_db *db, const char *presented, struct gw_vkey *out)
{
	if (db == NULL || presented == NULL || out == NULL)
		return AAM_E_INVAL;
	size_t n = strnlen(presented, GW_VKEY_MAX + 1);
	if (n == 0 || n > GW_VKEY_MAX)
		return AAM_E_NOTFOUND;
	char h[GW_VKEY_HASH_LEN + 1];
	gw_vkey_hash(presented, n, h);
	return gw_vkey_lookup_hash(db, h, out);
}

bool
gw_vkey_usable(const struct gw_vkey *k, int64_t now)
{
	return k != NULL && !k->revoked && (k->expires == 0 || now < k->expires);
}

bool
gw_vkey_allows_model(const struct gw_vkey *k, const char *route)
{
	if (k == NULL || route == NULL)
		return false;
	if (k->models == NULL)
		return true;
	json_t *j = NULL;
	if (aam_json_parse(k->models, strlen(k->models), NULL, &j, NULL) != AAM_OK)
		return false; /* a damaged list allows nothing */
	bool ok = false;
	size_t i;
	json_t *v;
	json_array_foreach(j, i, v)
	{
		const char *m = json_string_value(v);
		/* LiteLLM's "all-proxy-models" (and "*") stand for every route. */
		if (m != NULL && (strcmp(m, route) == 0 || strcmp(m, "*") == 0 ||
		                  strcmp(m, "all-proxy-models") == 0))
			ok = true;
	}
	json_decref(j);
	return ok;
}

int
gw_vkey_revoke(struct aam_db *db, const char *hash_or_alias)
{
	if (db == NULL || hash_or_alias == NULL || hash_or_alias[0] == '\0')
		return AAM_E_INVAL;
	struct aam_db_stmt *st = NULL;
	int rc = aam_db_stmt_get(db,
	                         is_hash(hash_or_alias)
	                                 ? "UPDATE virtual_keys SET revoked = 1 WHERE hash = ?1"
	                                 : "UPDATE virtual_keys SET revoked = 1 WHERE alias = ?1",
	                         &st);
	if (rc != AAM_OK)
		return rc;
	aam_db_bind_str(st, 1, hash_or_alias);
	rc = aam_db_run(st);
	if (rc == AAM_OK && aam_db_changes(db) == 0)
		rc = AAM_E_NOTFOUND;
	return rc;
}

int
gw_vkey_list(struct aam_db *db, int (*fn)(void *ctx, const struct gw_vkey *k), void *ctx)
{
	if (db == NULL || fn == NULL)
		return AAM_E_INVAL;
	struct aam_db_stmt *st = NULL;
	int rc = aam_db_stmt_get(
	        db, "SELECT " VKEY_COLUMNS " FROM virtual_keys ORDER BY created DESC, hash", &st);
	if (rc != AAM_OK)
		return rc;
	for (;;) {
		bool row = false;
		rc = aam_db_step(st, &row);
		if (rc != AAM_OK || !row)
			break;
		struct gw_vkey k;
		rc = row_to_key(st, &k);
		if (rc != AAM_OK)
			break;
		rc = fn(ctx, &k);
		gw_vkey_uninit(&k);
		if (rc != AAM_OK)
			break;
	}
	aam_db_stmt_release(st);
	return rc;
}

void
gw_vkey_uninit(struct gw_vkey *k)
{
	if (k == NULL)
		return;
	free(k->alias);
	free(k->workload);
	free(k->owner);
	free(k->team);
	free(k->models);
	free(k->budget_duration);
	free(k->source);
	memset(k, 0, sizeof(*k));
}
