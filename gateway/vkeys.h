/*
 * Virtual keys: bearer keys for clients that cannot attest yet (step 2 of
 * the LiteLLM migration path).  Each key maps to a workload identity, so
 * the same AgentPolicy rules apply to it as to an attested agent, except
 * that it is never "attested" (require_attested policies refuse it).
 *
 * Only the SHA-256 of a key is stored (lowercase hex of the whole key
 * string, exactly what LiteLLM stores, so imported LiteLLM keys keep
 * working).  New keys are "sk-aam-" followed by 32 random bytes in
 * base64url and are shown once, by `aamctl key create`.
 *
 * Table `virtual_keys` in the gateway database (gateway.db).  The schema
 * is created with CREATE TABLE IF NOT EXISTS rather than through
 * PRAGMA user_version, because the same file holds other modules' tables
 * (budgets) and one user_version cannot count two schemas.
 */
#ifndef AAM_GATEWAY_VKEYS_H
#define AAM_GATEWAY_VKEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/db.h"

#define GW_VKEY_PREFIX     "sk-aam-"
#define GW_VKEY_HASH_LEN   64  /* hex characters */
#define GW_VKEY_MAX        256 /* longest presented key we look up */
#define GW_VKEY_NEW_LEN    50  /* "sk-aam-" + 43 base64url characters */
#define GW_VKEY_ALIAS_MAX  128
#define GW_VKEY_MODELS_MAX 8192 /* bytes of the models JSON array */

/*
 * One key.  From gw_vkey_lookup/list every string is owned (free with
 * gw_vkey_uninit); for gw_vkey_insert the caller's strings are borrowed.
 */
struct gw_vkey {
	char hash[GW_VKEY_HASH_LEN + 1];
	char *alias;           /* unique when set, or NULL */
	char *workload;        /* SPIFFE ID, required */
	char *owner;           /* required */
	char *team;            /* or NULL */
	char *models;          /* JSON array of route names, or NULL for every route */
	double max_budget;     /* USD; < 0: none */
	char *budget_duration; /* "30d", "1mo" (LiteLLM's), or NULL */
	int64_t rpm, tpm;      /* 0: no limit */
	int64_t expires;       /* Unix seconds; 0: never */
	bool revoked;
	char *source; /* "aam" or "litellm" */
	int64_t created;
};

/* Creates the table and its indexes when missing. */
int gw_vkeys_migrate(struct aam_db *db);

/* Lowercase hex SHA-256 of KEY (LEN bytes). */
void gw_vkey_hash(const char *key, size_t len, char out[GW_VKEY_HASH_LEN + 1]);

/* A new key, "sk-aam-" + 32 random bytes base64url, into OUT (NUL-terminated). */
int gw_vkey_generate(char out[GW_VKEY_NEW_LEN + 1]);

/*
 * Stores K (K->hash must be 64 lowercase hex digits; K->created 0 means
 * now; K->source NULL means "aam").  AAM_E_EXISTS when the hash or the
 * alias is taken, AAM_E_INVAL for a malformed field (SPIFFE ID, models
 * not a JSON array of strings, ...).
 */
int gw_vkey_insert(struct aam_db *db, const struct gw_vkey *k);

/*
 * The key whose hash is SHA-256(PRESENTED).  AAM_E_NOTFOUND when unknown.
 * Revoked and expired keys ARE returned (the caller decides, and says
 * why); use gw_vkey_usable().
 */
int gw_vkey_lookup(struct aam_db *db, const char *presented, struct gw_vkey *out);
int gw_vkey_lookup_hash(struct aam_db *db, const char *hash, struct gw_vkey *out);

/* Whether K may be used at NOW: not revoked, not expired. */
bool gw_vkey_usable(const struct gw_vkey *k, int64_t now);

/* Whether K allows route ROUTE (models NULL allows every route). */
bool gw_vkey_allows_model(const struct gw_vkey *k, const char *route);

/* Revokes the key named by its full hash or its alias: AAM_E_NOTFOUND when none. */
int gw_vkey_revoke(struct aam_db *db, const char *hash_or_alias);

/* Calls FN for every key, newest first; FN's non-zero return stops and is returned. */
int gw_vkey_list(struct aam_db *db, int (*fn)(void *ctx, const struct gw_vkey *k), void *ctx);

void gw_vkey_uninit(struct gw_vkey *k);

#endif /* AAM_GATEWAY_VKEYS_H */
