/*
 * Opening and closing the store: the token, the metadata database and its
 * schema, the state checks at start, and the optional decrypted-secret
 * cache.  See store.h for the contract.
 */
#include "vault/store.h"
#include "aam/err.h"
#include "common/log.h"
#include "vault/store_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * Metadata schema.  No column ever holds a value, a part of one or an
 * unkeyed hash of one: the fingerprint is an HMAC under a key that never
 * leaves the token.  Bindings and versions hang off the secret and go
 * with it (ON DELETE CASCADE).
 */
static const char *const vault_migrations[] = {
        "CREATE TABLE vault_secrets ("
        " name TEXT PRIMARY KEY,"
        " type INTEGER NOT NULL,"
        " header TEXT NOT NULL DEFAULT '',"
        " param TEXT NOT NULL DEFAULT '',"
        " username TEXT NOT NULL DEFAULT '',"
        " aws_access_key_id TEXT NOT NULL DEFAULT '',"
        " aws_region TEXT NOT NULL DEFAULT '',"
        " aws_service TEXT NOT NULL DEFAULT '',"
        " token_url TEXT NOT NULL DEFAULT '',"
        " client_id TEXT NOT NULL DEFAULT '',"
        " scope TEXT NOT NULL DEFAULT '',"
        " version INTEGER NOT NULL,"
        " created INTEGER NOT NULL,"
        " rotated INTEGER NOT NULL"
        ") STRICT;"
        "CREATE TABLE vault_secret_bindings ("
        " name TEXT NOT NULL REFERENCES vault_secrets(name) ON DELETE CASCADE,"
        " pos INTEGER NOT NULL,"
        " url TEXT NOT NULL,"
        " PRIMARY KEY (name, pos)"
        ") STRICT;"
        "CREATE TABLE vault_secret_versions ("
        " name TEXT NOT NULL REFERENCES vault_secrets(name) ON DELETE CASCADE,"
        " version INTEGER NOT NULL,"
        " created INTEGER NOT NULL,"
        " fingerprint TEXT NOT NULL,"
        " PRIMARY KEY (name, version)"
        ") STRICT;",
};

void
vault_errf(char *err, size_t errlen, const char *fmt, ...)
{
	if (err == NULL || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int
vault_with_key(struct vault_store *s, CK_OBJECT_CLASS cls, const char *label, vault_key_fn fn,
               void *ctx)
{
	int rc = AAM_E_NOTFOUND;
	for (int attempt = 0; attempt < 2 && rc == AAM_E_NOTFOUND; attempt++) {
		if (attempt > 0)
			aam_p11_forget_label(s->p11, cls, label);
		CK_OBJECT_HANDLE h;
		rc = aam_p11_find(s->p11, cls, label, &h);
		if (rc != AAM_OK)
			return rc;
		rc = fn(s, h, ctx);
	}
	return rc;
}

int64_t
vault_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

static int
store_pick_cipher(struct vault_store *s, char *err, size_t errlen)
{
	aam_p11 *p = s->p11;
	if (!aam_p11_has_mechanism(p, CKM_SHA256_HMAC)) {
		vault_errf(err, errlen,
		           "the token lacks CKM_SHA256_HMAC, which AAM needs for "
		           "fingerprints and HMAC-type secrets");
		return AAM_E_UNSUPPORTED;
	}
	if (aam_p11_has_mechanism(p, CKM_AES_GCM)) {
		s->cipher = VAULT_CIPHER_AES_GCM;
		return AAM_OK;
	}
	if (aam_p11_has_mechanism(p, CKM_AES_CBC_PAD)) {
		s->cipher = VAULT_CIPHER_AES_CBC_HMAC;
		return AAM_OK;
	}
	vault_errf(err, errlen, "the token offers neither CKM_AES_GCM nor CKM_AES_CBC_PAD");
	return AAM_E_UNSUPPORTED;
}

int
vault_store_open(const struct vault_store_config *cfg, struct vault_store **out, char *err,
                 size_t errlen)
{
	*out = NULL;
	vault_errf(err, errlen, "%s", "");
	if (cfg == NULL || cfg->db_path == NULL) {
		vault_errf(err, errlen, "vault store: db_path is required");
		return AAM_E_CONFIG;
	}
	struct vault_store *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return AAM_E_NOMEM;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->verify_lock, NULL);

	struct aam_p11_config pc = {
	        .module = cfg->module,
	        .token_uri = cfg->token_uri,
	        .pin_file = cfg->pin_file,
	        .pool_size = cfg->pool_size,
	};
	int rc = aam_p11_open(&pc, &s->p11, err, errlen);
	if (rc != AAM_OK)
		goto fail;
	rc = store_pick_cipher(s, err, errlen);
	if (rc != AAM_OK)
		goto fail;

	rc = aam_db_open(cfg->db_path, AAM_DB_CREATE | AAM_DB_SYNC_FULL, &s->db);
	if (rc != AAM_OK) {
		vault_errf(err, errlen, "cannot open vault database %s: %s", cfg->db_path,
		           aam_strerror(rc));
		goto fail;
	}
	rc = aam_db_migrate(s->db, vault_migrations,
	                    sizeof(vault_migrations) / sizeof(vault_migrations[0]));
	if (rc != AAM_OK) {
		vault_errf(err, errlen, "cannot migrate vault database %s: %s", cfg->db_path,
		           rc == AAM_E_UNSUPPORTED ? "it was written by a newer AAM"
		                                   : aam_db_errmsg(s->db));
		goto fail;
	}

	/* Finish or undo a key rotation that a crash interrupted. */
	rc = vault_keys_recover(s);
	if (rc != AAM_OK) {
		vault_errf(err, errlen, "cannot recover an interrupted key rotation: %s",
		           aam_strerror(rc));
		goto fail;
	}
	size_t present = 0;
	const char *missing = NULL;
	rc = vault_keys_count(s, &present, &missing);
	if (rc != AAM_OK) {
		vault_errf(err, errlen, "cannot look up the AAM keys on the token: %s",
		           aam_strerror(rc));
		goto fail;
	}
	if (present == 0) {
		aam_log(AAM_LOG_INFO, "vault.store_uninitialised",
		        AAM_F_STR("hint", "run aamctl keys init"));
		*out = s;
		return AAM_OK;
	}
	/* Check what is there first, so a bad key is named even when another is missing. */
	rc = vault_keys_check(s, err, errlen);
	if (rc != AAM_OK)
		goto fail;
	rc = vault_keys_load(s, err, errlen);
	if (rc != AAM_OK)
		goto fail;
	s->ready = true;
	*out = s;
	return AAM_OK;

fail:
	aam_log(AAM_LOG_ERROR, "vault.store_open", AAM_F_ERR(rc));
	vault_store_close(s);
	return rc;
}

void
vault_store_close(struct vault_store *s)
{
	if (s == NULL)
		return;
	vault_cache_clear(s);
	vault_keys_unload(s);
	vault_verify_spares_clear(s);
	aam_db_close(s->db);
	aam_p11_close(s->p11);
	pthread_mutex_destroy(&s->verify_lock);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

bool
vault_store_ready(const struct vault_store *s)
{
	return s != NULL && s->ready;
}

aam_p11 *
vault_store_p11(struct vault_store *s)
{
	return s->p11;
}

struct aam_db *
vault_store_db(struct vault_store *s)
{
	return s->db;
}

int
vault_store_set_cipher(struct vault_store *s, enum vault_cipher c)
{
	switch (c) {
	case VAULT_CIPHER_AUTO:
		return store_pick_cipher(s, NULL, 0);
	case VAULT_CIPHER_AES_GCM:
		if (!aam_p11_has_mechanism(s->p11, CKM_AES_GCM))
			return AAM_E_UNSUPPORTED;
		break;
	case VAULT_CIPHER_AES_CBC_HMAC:
		if (!aam_p11_has_mechanism(s->p11, CKM_AES_CBC_PAD))
			return AAM_E_UNSUPPORTED;
		break;
	default:
		return AAM_E_INVAL;
	}
	pthread_mutex_lock(&s->lock);
	s->cipher = c;
	pthread_mutex_unlock(&s->lock);
	return AAM_OK;
}

enum vault_cipher
vault_store_cipher(const struct vault_store *s)
{
	return s->cipher;
}

/* ---- Decrypted-secret cache ------------------------------------------- */

int
vault_store_set_cache_ttl(struct vault_store *s, unsigned seconds)
{
	if (seconds > 24u * 3600u)
		return AAM_E_INVAL;
	pthread_mutex_lock(&s->lock);
	s->cache_ttl = seconds;
	if (seconds == 0)
		vault_cache_clear(s);
	pthread_mutex_unlock(&s->lock);
	return AAM_OK;
}

static void
cache_remove_at(struct vault_store *s, size_t i)
{
	aam_secret_free(s->cache[i].plain);
	s->cache[i] = s->cache[--s->ncache];
	memset(&s->cache[s->ncache], 0, sizeof(s->cache[s->ncache]));
}

static void
plain_drop(struct vault_store *s, const char *name)
{
	for (size_t i = 0; i < s->ncache;) {
		if (strcmp(s->cache[i].name, name) == 0)
			cache_remove_at(s, i);
		else
			i++;
	}
}

aam_secret *
vault_cache_get(struct vault_store *s, const char *name, int64_t version)
{
	if (s->cache_ttl == 0)
		return NULL;
	int64_t now = vault_now();
	for (size_t i = 0; i < s->ncache;) {
		struct vault_cache_entry *e = &s->cache[i];
		if (e->expires <= now) {
			cache_remove_at(s, i);
			continue;
		}
		if (e->version == version && strcmp(e->name, name) == 0)
			return aam_secret_from(aam_secret_data(e->plain), aam_secret_len(e->plain));
		i++;
	}
	return NULL;
}

void
vault_cache_put(struct vault_store *s, const char *name, int64_t version, aam_secret *plain)
{
	if (s->cache_ttl == 0 || strlen(name) >= sizeof(s->cache[0].name))
		return;
	plain_drop(s, name);
	if (s->ncache == VAULT_CACHE_MAX) {
		/* Full: evict the entry closest to expiry. */
		size_t victim = 0;
		for (size_t i = 1; i < s->ncache; i++) {
			if (s->cache[i].expires < s->cache[victim].expires)
				victim = i;
		}
		cache_remove_at(s, victim);
	}
	aam_secret *copy = aam_secret_from(aam_secret_data(plain), aam_secret_len(plain));
	if (copy == NULL)
		return;
	struct vault_cache_entry *e = &s->cache[s->ncache++];
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->version = version;
	e->plain = copy;
	e->expires = vault_now() + (int64_t)s->cache_ttl;
}

void
vault_cache_drop(struct vault_store *s, const char *name)
{
	vault_meta_drop(s, name);
	plain_drop(s, name);
}

void
vault_cache_clear(struct vault_store *s)
{
	vault_meta_clear(s);
	while (s->ncache > 0)
		cache_remove_at(s, s->ncache - 1);
}
