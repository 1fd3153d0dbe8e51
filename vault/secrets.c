/*
 * Secrets: metadata in SQLite, values on the token (crypt.c), versions,
 * and the per-request credential (vault_cred).
 *
 * Ordering between the two stores: a put or rotate creates the token
 * object first and commits the metadata after, destroying the object if
 * the commit fails; prune and delete destroy the token objects first and
 * remove the metadata after.  A crash in between leaves at worst a token
 * object that no metadata names (still encrypted, or a non-extractable
 * key), which the next put or rotate of that name and version destroys
 * before it creates its own.
 */
#include "aam/err.h"
#include "common/log.h"
#include "vault/store.h"
#include "vault/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LABEL_CAP 192

static const char SQL_GET_META[] =
        "SELECT type, header, param, username, aws_access_key_id, aws_region, aws_service,"
        " token_url, client_id, scope, version, created, rotated"
        " FROM vault_secrets WHERE name = ?1";
static const char SQL_GET_BINDINGS[] =
        "SELECT url FROM vault_secret_bindings WHERE name = ?1 ORDER BY pos";
static const char SQL_GET_FP[] =
        "SELECT fingerprint FROM vault_secret_versions WHERE name = ?1 AND version = ?2";

static void
copy_col(char *dst, size_t cap, struct aam_db_stmt *st, int col)
{
	size_t n = 0;
	const char *v = aam_db_column_text(st, col, &n);
	if (v == NULL || n >= cap)
		n = 0; /* cannot happen for rows we wrote; never overflow for rows we did not */
	if (n > 0)
		memcpy(dst, v, n);
	dst[n] = '\0';
}

static int meta_read(struct vault_store *s, const char *name, struct vault_secret_meta *m);

/* NAME's metadata, from the cache when it is there; caller holds s->lock. */
static int
meta_get(struct vault_store *s, const char *name, struct vault_secret_meta *m)
{
	if (vault_meta_cached(s, name, m))
		return AAM_OK;
	int rc = meta_read(s, name, m);
	if (rc == AAM_OK)
		vault_meta_remember(s, m);
	return rc;
}

/* Reads NAME's metadata; caller holds s->lock. */
static int
meta_read(struct vault_store *s, const char *name, struct vault_secret_meta *m)
{
	memset(m, 0, sizeof(*m));
	struct aam_db_stmt *st;
	int rc = aam_db_stmt_get(s->db, SQL_GET_META, &st);
	if (rc != AAM_OK)
		return rc;
	bool row = false;
	rc = aam_db_bind_str(st, 1, name);
	if (rc == AAM_OK)
		rc = aam_db_step(st, &row);
	if (rc == AAM_OK && !row)
		rc = AAM_E_NOTFOUND;
	if (rc == AAM_OK) {
		snprintf(m->name, sizeof(m->name), "%s", name);
		m->type = (enum vault_secret_type)aam_db_column_int64(st, 0);
		copy_col(m->header, sizeof(m->header), st, 1);
		copy_col(m->param, sizeof(m->param), st, 2);
		copy_col(m->username, sizeof(m->username), st, 3);
		copy_col(m->aws_access_key_id, sizeof(m->aws_access_key_id), st, 4);
		copy_col(m->aws_region, sizeof(m->aws_region), st, 5);
		copy_col(m->aws_service, sizeof(m->aws_service), st, 6);
		copy_col(m->token_url, sizeof(m->token_url), st, 7);
		copy_col(m->client_id, sizeof(m->client_id), st, 8);
		copy_col(m->scope, sizeof(m->scope), st, 9);
		m->version = aam_db_column_int64(st, 10);
		m->created = aam_db_column_int64(st, 11);
		m->rotated = aam_db_column_int64(st, 12);
	}
	aam_db_stmt_release(st);
	if (rc != AAM_OK)
		return rc;

	rc = aam_db_stmt_get(s->db, SQL_GET_BINDINGS, &st);
	if (rc != AAM_OK)
		return rc;
	rc = aam_db_bind_str(st, 1, name);
	while (rc == AAM_OK) {
		rc = aam_db_step(st, &row);
		if (rc != AAM_OK || !row)
			break;
		if (m->nbindings < VAULT_MAX_BINDINGS) {
			copy_col(m->bindings[m->nbindings], sizeof(m->bindings[0]), st, 0);
			m->nbindings++;
		}
	}
	aam_db_stmt_release(st);
	if (rc != AAM_OK)
		return rc;

	rc = aam_db_stmt_get(s->db, SQL_GET_FP, &st);
	if (rc != AAM_OK)
		return rc;
	rc = aam_db_bind_str(st, 1, name);
	if (rc == AAM_OK)
		rc = aam_db_bind_int64(st, 2, m->version);
	if (rc == AAM_OK)
		rc = aam_db_step(st, &row);
	if (rc == AAM_OK && row)
		copy_col(m->fingerprint, sizeof(m->fingerprint), st, 0);
	else if (rc == AAM_OK)
		rc = AAM_E_INTERNAL; /* the current version has no row: a broken invariant */
	aam_db_stmt_release(st);
	return rc;
}

/* A binding without a path means the whole origin: store it with "/". */
static void
normalize_binding(const char *in, char *out, size_t cap)
{
	const char *auth = strstr(in, "://");
	auth = auth ? auth + 3 : in;
	if (strchr(auth, '/') == NULL && strlen(in) + 1 < cap)
		snprintf(out, cap, "%s/", in);
	else
		snprintf(out, cap, "%s", in);
}

/*
 * Creates the token object for NAME version VERSION holding VALUE and
 * computes its fingerprint.  Caller holds s->lock.
 */
static int
value_store(struct vault_store *s, const char *name, int64_t version, enum vault_secret_type type,
            const uint8_t *value, size_t len, char fp[65], char *label, size_t labelcap)
{
	int rc = vault_secret_label(name, version, label, labelcap);
	if (rc != AAM_OK)
		return rc;
	/* An object left by a crash between token and database: never two under one label. */
	rc = vault_crypt_destroy_label(s, label);
	if (rc == AAM_OK)
		rc = vault_crypt_fingerprint(s, value, len, fp);
	if (rc != AAM_OK)
		return rc;
	CK_OBJECT_HANDLE obj;
	if (vault_secret_type_is_hmac(type))
		return vault_crypt_import_hmac(s, label, type, value, len, &obj);
	uint8_t *blob = NULL;
	size_t bloblen = 0;
	rc = vault_crypt_encrypt(s, name, version, type, value, len, &blob, &bloblen);
	if (rc == AAM_OK)
		rc = vault_crypt_store_blob(s, label, blob, bloblen, &obj);
	free(blob);
	return rc;
}

static int
insert_version(struct vault_store *s, const char *name, int64_t version, int64_t now,
               const char *fp)
{
	struct aam_db_stmt *st;
	int rc = aam_db_stmt_get(s->db,
	                         "INSERT INTO vault_secret_versions (name, version, created, "
	                         "fingerprint) VALUES (?1, ?2, ?3, ?4)",
	                         &st);
	if (rc != AAM_OK)
		return rc;
	rc = aam_db_bind_str(st, 1, name);
	if (rc == AAM_OK)
		rc = aam_db_bind_int64(st, 2, version);
	if (rc == AAM_OK)
		rc = aam_db_bind_int64(st, 3, now);
	if (rc == AAM_OK)
		rc = aam_db_bind_str(st, 4, fp);
	if (rc != AAM_OK) {
		aam_db_stmt_release(st);
		return rc;
	}
	return aam_db_run(st);
}

static int
insert_meta(struct vault_store *s, const struct vault_secret_meta *m, int64_t now)
{
	struct aam_db_stmt *st;
	int rc = aam_db_stmt_get(
	        s->db,
	        "INSERT INTO vault_secrets (name, type, header, param, username, aws_access_key_id,"
	        " aws_region, aws_service, token_url, client_id, scope, version, created, rotated)"
	        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 1, ?12, ?12)",
	        &st);
	if (rc != AAM_OK)
		return rc;
	const char *text[] = {m->header,     m->param,       m->username,  m->aws_access_key_id,
	                      m->aws_region, m->aws_service, m->token_url, m->client_id,
	                      m->scope};
	rc = aam_db_bind_str(st, 1, m->name);
	if (rc == AAM_OK)
		rc = aam_db_bind_int64(st, 2, (int64_t)m->type);
	for (int i = 0; rc == AAM_OK && i < 9; i++)
		rc = aam_db_bind_str(st, 3 + i, text[i]);
	if (rc == AAM_OK)
		rc = aam_db_bind_int64(st, 12, now);
	if (rc != AAM_OK) {
		aam_db_stmt_release(st);
		return rc;
	}
	rc = aam_db_run(st);
	for (size_t i = 0; rc == AAM_OK && i < m->nbindings; i++) {
		char url[512];
		normalize_binding(m->bindings[i], url, sizeof(url));
		rc = aam_db_stmt_get(
		        s->db,
		        "INSERT INTO vault_secret_bindings (name, pos, url) VALUES (?1, "
		        "?2, ?3)",
		        &st);
		if (rc != AAM_OK)
			break;
		rc = aam_db_bind_str(st, 1, m->name);
		if (rc == AAM_OK)
			rc = aam_db_bind_int64(st, 2, (int64_t)i);
		if (rc == AAM_OK)
			rc = aam_db_bind_str(st, 3, url);
		if (rc != AAM_OK) {
			aam_db_stmt_release(st);
			break;
		}
		rc = aam_db_run(st);
	}
	return rc;
}

static int
require_ready(struct vault_store *s)
{
	return s->ready ? AAM_OK : AAM_E_CONFIG;
}

int
vault_secret_put(struct vault_store *s, const struct vault_secret_meta *meta, const uint8_t *value,
                 size_t len)
{
	if (s == NULL || meta == NULL)
		return AAM_E_INVAL;
	char err[700];
	int rc = vault_secret_meta_validate(meta, err, sizeof(err));
	if (rc != AAM_OK) {
		aam_log(AAM_LOG_WARN, "vault.secret_refused", AAM_F_STR("reason", err));
		return rc;
	}
	rc = vault_value_validate(meta->type, value, len);
	if (rc != AAM_OK) {
		aam_log(AAM_LOG_WARN, "vault.secret_refused", AAM_F_STR("name", meta->name),
		        AAM_F_STR("reason",
		                  "value is empty, too large or holds control characters"));
		return rc;
	}
	pthread_mutex_lock(&s->lock);
	rc = require_ready(s);
	struct vault_secret_meta old;
	if (rc == AAM_OK) {
		rc = meta_read(s, meta->name, &old);
		rc = rc == AAM_OK ? AAM_E_EXISTS : rc == AAM_E_NOTFOUND ? AAM_OK : rc;
	}
	char fp[65] = "", label[LABEL_CAP] = "";
	if (rc == AAM_OK)
		rc = value_store(s, meta->name, 1, meta->type, value, len, fp, label,
		                 sizeof(label));
	bool stored = rc == AAM_OK;
	int64_t now = (int64_t)time(NULL);
	if (rc == AAM_OK)
		rc = aam_db_begin(s->db);
	if (rc == AAM_OK) {
		rc = insert_meta(s, meta, now);
		if (rc == AAM_OK)
			rc = insert_version(s, meta->name, 1, now, fp);
		if (rc == AAM_OK)
			rc = aam_db_commit(s->db);
		if (rc != AAM_OK)
			aam_db_rollback(s->db);
	}
	if (rc != AAM_OK && stored)
		vault_crypt_destroy_label(s, label);
	if (rc == AAM_OK)
		vault_cache_drop(s, meta->name);
	pthread_mutex_unlock(&s->lock);
	if (rc == AAM_OK)
		aam_log(AAM_LOG_INFO, "vault.secret_put", AAM_F_STR("name", meta->name),
		        AAM_F_STR("type", vault_secret_type_name(meta->type)),
		        AAM_F_INT("version", 1), AAM_F_STR("fingerprint", fp));
	else if (rc != AAM_E_EXISTS)
		aam_log(AAM_LOG_ERROR, "vault.secret_put", AAM_F_STR("name", meta->name),
		        AAM_F_ERR(rc));
	return rc;
}

int
vault_secret_rotate(struct vault_store *s, const char *name, const uint8_t *value, size_t len)
{
	if (s == NULL || vault_name_validate(name) != AAM_OK)
		return AAM_E_INVAL;
	pthread_mutex_lock(&s->lock);
	struct vault_secret_meta m;
	int rc = require_ready(s);
	if (rc == AAM_OK)
		rc = meta_read(s, name, &m);
	if (rc == AAM_OK)
		rc = vault_value_validate(m.type, value, len);
	int64_t version = m.version + 1;
	char fp[65] = "", label[LABEL_CAP] = "";
	if (rc == AAM_OK)
		rc = value_store(s, name, version, m.type, value, len, fp, label, sizeof(label));
	bool stored = rc == AAM_OK;
	int64_t now = (int64_t)time(NULL);
	if (rc == AAM_OK)
		rc = aam_db_begin(s->db);
	if (rc == AAM_OK) {
		rc = insert_version(s, name, version, now, fp);
		struct aam_db_stmt *st = NULL;
		if (rc == AAM_OK)
			rc = aam_db_stmt_get(
			        s->db,
			        "UPDATE vault_secrets SET version = ?2, rotated = ?3 WHERE "
			        "name = ?1",
			        &st);
		if (rc == AAM_OK) {
			rc = aam_db_bind_str(st, 1, name);
			if (rc == AAM_OK)
				rc = aam_db_bind_int64(st, 2, version);
			if (rc == AAM_OK)
				rc = aam_db_bind_int64(st, 3, now);
			if (rc == AAM_OK)
				rc = aam_db_run(st);
			else
				aam_db_stmt_release(st);
		}
		if (rc == AAM_OK)
			rc = aam_db_commit(s->db);
		if (rc != AAM_OK)
			aam_db_rollback(s->db);
	}
	if (rc != AAM_OK && stored)
		vault_crypt_destroy_label(s, label);
	if (rc == AAM_OK)
		vault_cache_drop(s, name);
	pthread_mutex_unlock(&s->lock);
	if (rc == AAM_OK)
		aam_log(AAM_LOG_INFO, "vault.secret_rotated", AAM_F_STR("name", name),
		        AAM_F_INT("version", version), AAM_F_STR("fingerprint", fp));
	return rc;
}

/* Versions of NAME into V (at most MAX), optionally only those below BELOW. */
static int
list_versions(struct vault_store *s, const char *name, int64_t below, int64_t *v, size_t max,
              size_t *n)
{
	*n = 0;
	struct aam_db_stmt *st;
	int rc = aam_db_stmt_get(s->db,
	                         "SELECT version FROM vault_secret_versions WHERE name = ?1 AND "
	                         "version < ?2 ORDER BY version",
	                         &st);
	if (rc != AAM_OK)
		return rc;
	rc = aam_db_bind_str(st, 1, name);
	if (rc == AAM_OK)
		rc = aam_db_bind_int64(st, 2, below);
	while (rc == AAM_OK) {
		bool row = false;
		rc = aam_db_step(st, &row);
		if (rc != AAM_OK || !row)
			break;
		if (*n == max) {
			rc = AAM_E_TOOBIG;
			break;
		}
		v[(*n)++] = aam_db_column_int64(st, 0);
	}
	aam_db_stmt_release(st);
	return rc;
}

#define VERSIONS_MAX 4096

/* Destroys the token objects of NAME's versions below BELOW, then their rows. */
static int
remove_versions(struct vault_store *s, const char *name, int64_t below)
{
	int64_t *v = calloc(VERSIONS_MAX, sizeof(*v));
	if (v == NULL)
		return AAM_E_NOMEM;
	size_t n = 0;
	int rc = list_versions(s, name, below, v, VERSIONS_MAX, &n);
	for (size_t i = 0; rc == AAM_OK && i < n; i++) {
		char label[LABEL_CAP];
		rc = vault_secret_label(name, v[i], label, sizeof(label));
		if (rc == AAM_OK)
			rc = vault_crypt_destroy_label(s, label);
	}
	free(v);
	if (rc != AAM_OK)
		return rc;
	struct aam_db_stmt *st;
	rc = aam_db_stmt_get(
	        s->db, "DELETE FROM vault_secret_versions WHERE name = ?1 AND version < ?2", &st);
	if (rc != AAM_OK)
		return rc;
	rc = aam_db_bind_str(st, 1, name);
	if (rc == AAM_OK)
		rc = aam_db_bind_int64(st, 2, below);
	if (rc != AAM_OK) {
		aam_db_stmt_release(st);
		return rc;
	}
	return aam_db_run(st);
}

int
vault_secret_prune(struct vault_store *s, const char *name)
{
	if (s == NULL || vault_name_validate(name) != AAM_OK)
		return AAM_E_INVAL;
	pthread_mutex_lock(&s->lock);
	struct vault_secret_meta m;
	int rc = require_ready(s);
	if (rc == AAM_OK)
		rc = meta_read(s, name, &m);
	if (rc == AAM_OK)
		rc = remove_versions(s, name, m.version);
	vault_cache_drop(s, name);
	pthread_mutex_unlock(&s->lock);
	if (rc == AAM_OK)
		aam_log(AAM_LOG_INFO, "vault.secret_pruned", AAM_F_STR("name", name),
		        AAM_F_INT("kept_version", m.version));
	return rc;
}

int
vault_secret_delete(struct vault_store *s, const char *name)
{
	if (s == NULL || vault_name_validate(name) != AAM_OK)
		return AAM_E_INVAL;
	pthread_mutex_lock(&s->lock);
	struct vault_secret_meta m;
	int rc = require_ready(s);
	if (rc == AAM_OK)
		rc = meta_read(s, name, &m);
	if (rc == AAM_OK)
		rc = remove_versions(s, name, INT64_MAX);
	struct aam_db_stmt *st = NULL;
	if (rc == AAM_OK)
		rc = aam_db_stmt_get(s->db, "DELETE FROM vault_secrets WHERE name = ?1", &st);
	if (rc == AAM_OK) {
		rc = aam_db_bind_str(st, 1, name);
		if (rc == AAM_OK)
			rc = aam_db_run(st);
		else
			aam_db_stmt_release(st);
	}
	vault_cache_drop(s, name);
	pthread_mutex_unlock(&s->lock);
	if (rc == AAM_OK)
		aam_log(AAM_LOG_INFO, "vault.secret_deleted", AAM_F_STR("name", name));
	return rc;
}

int
vault_secret_get(struct vault_store *s, const char *name, struct vault_secret_meta *out)
{
	if (s == NULL || out == NULL || vault_name_validate(name) != AAM_OK)
		return AAM_E_INVAL;
	pthread_mutex_lock(&s->lock);
	int rc = meta_get(s, name, out);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int
vault_secret_versions(struct vault_store *s, const char *name, size_t *n)
{
	if (s == NULL || n == NULL || vault_name_validate(name) != AAM_OK)
		return AAM_E_INVAL;
	*n = 0;
	struct aam_db_stmt *st;
	pthread_mutex_lock(&s->lock);
	int rc = aam_db_stmt_get(s->db,
	                         "SELECT count(*) FROM vault_secret_versions WHERE name = ?1", &st);
	if (rc == AAM_OK) {
		bool row = false;
		rc = aam_db_bind_str(st, 1, name);
		if (rc == AAM_OK)
			rc = aam_db_step(st, &row);
		if (rc == AAM_OK && row)
			*n = (size_t)aam_db_column_int64(st, 0);
		aam_db_stmt_release(st);
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int
vault_secret_list(struct vault_store *s, int (*cb)(void *ctx, const struct vault_secret_meta *m),
                  void *ctx)
{
	if (s == NULL || cb == NULL)
		return AAM_E_INVAL;
	/* Names first, callbacks after: CB may call back into the store. */
	size_t n = 0, cap = 0;
	char(*names)[128] = NULL;
	struct aam_db_stmt *st = NULL;
	pthread_mutex_lock(&s->lock);
	int rc = aam_db_stmt_get(s->db, "SELECT name FROM vault_secrets ORDER BY name", &st);
	while (rc == AAM_OK) {
		bool row = false;
		rc = aam_db_step(st, &row);
		if (rc != AAM_OK || !row)
			break;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 32;
			char(*nn)[128] = realloc(names, nc * sizeof(*names));
			if (nn == NULL) {
				rc = AAM_E_NOMEM;
				break;
			}
			names = nn;
			cap = nc;
		}
		copy_col(names[n], sizeof(names[n]), st, 0);
		n++;
	}
	if (st != NULL)
		aam_db_stmt_release(st);
	pthread_mutex_unlock(&s->lock);

	struct vault_secret_meta *m = malloc(sizeof(*m));
	if (m == NULL && rc == AAM_OK)
		rc = AAM_E_NOMEM;
	for (size_t i = 0; rc == AAM_OK && i < n; i++) {
		int grc = vault_secret_get(s, names[i], m);
		if (grc == AAM_E_NOTFOUND)
			continue; /* deleted meanwhile */
		rc = grc != AAM_OK ? grc : cb(ctx, m);
	}
	free(m);
	free(names);
	return rc;
}

/* ---- Use ---------------------------------------------------------------- */

static int
read_blob(struct vault_store *s, CK_OBJECT_HANDLE obj, uint8_t **blob, size_t *len)
{
	*blob = malloc(VAULT_BLOB_MAX);
	if (*blob == NULL)
		return AAM_E_NOMEM;
	int rc = aam_p11_get_attr(s->p11, obj, CKA_VALUE, *blob, VAULT_BLOB_MAX, len);
	if (rc != AAM_OK) {
		free(*blob);
		*blob = NULL;
	}
	return rc;
}

int
vault_cred_open(struct vault_store *s, const char *name, struct vault_cred **out)
{
	if (s == NULL || out == NULL || vault_name_validate(name) != AAM_OK)
		return AAM_E_INVAL;
	*out = NULL;
	struct vault_cred *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return AAM_E_NOMEM;
	c->hmac_key = CK_INVALID_HANDLE;
	pthread_mutex_lock(&s->lock);
	int rc = require_ready(s);
	if (rc == AAM_OK)
		rc = meta_get(s, name, &c->meta);
	bool hmac = rc == AAM_OK && vault_secret_type_is_hmac(c->meta.type);
	if (rc == AAM_OK && !hmac)
		c->plain = vault_cache_get(s, name, c->meta.version);
	uint8_t *blob = NULL;
	size_t bloblen = 0;
	/* Taken before the object is read: a forget during the read makes the copy stale. */
	uint64_t gen = aam_p11_generation(s->p11);
	bool blob_cached =
	        rc == AAM_OK && !hmac && c->plain == NULL &&
	        vault_meta_blob(s, name, c->meta.version, gen, &blob, &bloblen) == AAM_OK;
	pthread_mutex_unlock(&s->lock);

	bool have_meta = rc == AAM_OK;
	char label[LABEL_CAP];
	if (rc == AAM_OK)
		rc = vault_secret_label(name, c->meta.version, label, sizeof(label));
	if (rc == AAM_OK && hmac) {
		rc = aam_p11_find(s->p11, CKO_SECRET_KEY, label, &c->hmac_key);
	} else if (rc == AAM_OK && c->plain == NULL) {
		CK_OBJECT_HANDLE obj;
		if (!blob_cached) {
			rc = aam_p11_find(s->p11, CKO_DATA, label, &obj);
			if (rc == AAM_OK)
				rc = read_blob(s, obj, &blob, &bloblen);
		}
		if (rc == AAM_OK)
			rc = vault_crypt_decrypt(s, name, c->meta.version, c->meta.type, blob,
			                         bloblen, &c->plain);
		if (rc == AAM_OK) {
			/* Kept only once it decrypted: a damaged object is read again next time. */
			pthread_mutex_lock(&s->lock);
			vault_cache_put(s, name, c->meta.version, c->plain);
			if (!blob_cached)
				vault_meta_blob_remember(s, name, c->meta.version, gen, blob,
				                         bloblen);
			pthread_mutex_unlock(&s->lock);
		}
	}
	free(blob);
	if (rc != AAM_OK) {
		/* Metadata that names a missing token object is not "no such secret". */
		if (have_meta && rc == AAM_E_NOTFOUND)
			rc = AAM_E_INTERNAL;
		if (have_meta)
			aam_log(AAM_LOG_ERROR, "vault.cred_open", AAM_F_STR("name", name),
			        AAM_F_ERR(rc));
		vault_cred_free(c);
		return rc;
	}
	*out = c;
	return AAM_OK;
}

int
vault_hmac_with_key(struct vault_store *s, CK_OBJECT_HANDLE key, const uint8_t *data, size_t len,
                    uint8_t mac[32])
{
	if (s == NULL || mac == NULL || (data == NULL && len > 0) || key == CK_INVALID_HANDLE)
		return AAM_E_INVAL;
	return aam_p11_hmac_sha256(s->p11, key, data, len, mac);
}

int
vault_cred_hmac(struct vault_store *s, const struct vault_cred *c, const uint8_t *data, size_t len,
                uint8_t mac[32])
{
	if (s == NULL || c == NULL || !vault_secret_type_is_hmac(c->meta.type))
		return AAM_E_INVAL;
	int rc = vault_hmac_with_key(s, c->hmac_key, data, len, mac);
	if (rc != AAM_E_NOTFOUND)
		return rc;
	/* The handle went stale (a re-login renumbered objects): look the key up again. */
	char label[LABEL_CAP];
	CK_OBJECT_HANDLE h;
	rc = vault_secret_label(c->meta.name, c->meta.version, label, sizeof(label));
	if (rc != AAM_OK)
		return rc;
	aam_p11_forget_label(s->p11, CKO_SECRET_KEY, label);
	rc = aam_p11_find(s->p11, CKO_SECRET_KEY, label, &h);
	return rc == AAM_OK ? vault_hmac_with_key(s, h, data, len, mac) : rc;
}

void
vault_cred_free(struct vault_cred *c)
{
	if (c == NULL)
		return;
	aam_secret_free(c->plain);
	aam_wipe(c, sizeof(*c));
	free(c);
}
