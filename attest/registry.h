/*
 * Workload registrations in aam-attest's SQLite database: who a workload
 * is (SPIFFE ID, owner, team, environment, deployment), how it proves it
 * (TPM with an EK selector and an optional PCR policy, a PKCS#11 key's
 * RFC 7638 thumbprint, or a one-use join token of which only a hash is
 * stored), what audiences and token lifetime it gets, and whether it is
 * revoked.  Also the record of issued token ids and the revocation feed
 * (a sequence of revoked SPIFFE IDs and jtis) that the gateway polls.
 *
 * aam-attest and aamctl both open the database; every check reads the
 * row afresh, so a revocation applies to the very next token request.
 */
#ifndef AAM_ATTEST_REGISTRY_H
#define AAM_ATTEST_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/db.h"
#include "common/spiffe.h"

enum attest_method {
	ATTEST_METHOD_NONE = 0,
	ATTEST_METHOD_TPM = 1,
	ATTEST_METHOD_PKCS11 = 2,
	ATTEST_METHOD_JOIN = 3,
};

#define ATTEST_FIELD_MAX        128u /* owner, team, environment, deployment */
#define ATTEST_AUDIENCE_MAX     512u
#define ATTEST_MAX_AUDIENCES    16u
#define ATTEST_PCR_COUNT        24u /* PCRs 0..23 of the SHA-256 bank */
#define ATTEST_TTL_DEFAULT      300 /* seconds; DESIGN.md invariant 7 */
#define ATTEST_TTL_MAX          900
#define ATTEST_JKT_LEN          43u
#define ATTEST_JOIN_TTL_DEFAULT 3600
/* PCRs quoted when a TPM registration names none: the firmware and boot PCRs. */
#define ATTEST_PCR_DEFAULT_MASK 0xFFu

struct attest_reg {
	int64_t id;
	char spiffe_id[AAM_SPIFFE_ID_BUFSZ];
	char owner[ATTEST_FIELD_MAX + 1];
	char team[ATTEST_FIELD_MAX + 1];
	char environment[ATTEST_FIELD_MAX + 1];
	char deployment[ATTEST_FIELD_MAX + 1];
	enum attest_method method;
	/* TPM: SHA-256 of the EK's SubjectPublicKeyInfo (DER) and/or of an EK CA certificate (DER).
	 */
	bool has_ek_pub, has_ek_ca;
	uint8_t ek_pub_sha256[32];
	uint8_t ek_ca_sha256[32];
	/* TPM: PCRs of the SHA-256 bank to quote, and the values expected for some of them. */
	uint32_t pcr_mask;
	uint32_t pcr_value_mask; /* subset of pcr_mask */
	uint8_t pcr_values[ATTEST_PCR_COUNT][32];
	/* PKCS#11 (and a completed join): RFC 7638 thumbprint of the agent key; "" when none. */
	char key_jkt[ATTEST_JKT_LEN + 1];
	/* Join: SHA-256 of the token, its expiry and whether it was used. */
	bool has_join;
	uint8_t join_hash[32];
	int64_t join_expires;
	bool join_used;
	size_t naudiences;
	char audiences[ATTEST_MAX_AUDIENCES][ATTEST_AUDIENCE_MAX + 1];
	int64_t token_ttl; /* seconds, 1..ATTEST_TTL_MAX */
	int64_t created;
	int64_t revoked; /* unix time, 0 when not revoked */
};

const char *attest_method_name(enum attest_method m);
/* "tpm", "pkcs11" or "join"; ATTEST_METHOD_NONE otherwise. */
enum attest_method attest_method_parse(const char *s);

/*
 * Opens (creating when CREATE) and migrates the database.  AAM_E_UNSUPPORTED
 * when the file was written by a newer AAM.
 */
int attest_registry_open(const char *path, bool create, struct aam_db **out);

/*
 * Checks a registration before it is stored: a valid SPIFFE ID (in
 * TRUST_DOMAIN when not NULL), the four descriptive fields (1..128 bytes,
 * no control characters), 1..16 audiences, TTL bounds, a TPM EK selector,
 * a PKCS#11 thumbprint, a join token hash.  WHY receives a sentence.
 */
int attest_reg_validate(const struct attest_reg *r, const char *trust_domain, char *why,
                        size_t whylen);

/* Stores R (validated by the caller) and sets R->id; AAM_E_EXISTS for a taken SPIFFE ID. */
int attest_reg_insert(struct aam_db *db, struct attest_reg *r);

/* AAM_E_NOTFOUND when no registration has that SPIFFE ID (or join token hash). */
int attest_reg_get(struct aam_db *db, const char *spiffe_id, struct attest_reg *out);
int attest_reg_get_by_join(struct aam_db *db, const uint8_t hash[32], struct attest_reg *out);

/* Calls CB for every registration in SPIFFE ID order; a non-zero return stops and is returned. */
int attest_reg_list(struct aam_db *db, int (*cb)(void *ctx, const struct attest_reg *r), void *ctx);

/*
 * Marks the registration revoked at NOW and publishes, in one
 * transaction, its SPIFFE ID and the jtis of its tokens still alive.
 * AAM_E_NOTFOUND, or AAM_E_EXISTS when it already was.  *NJTI (may be
 * NULL) receives how many live tokens were published.
 */
int attest_reg_revoke(struct aam_db *db, const char *spiffe_id, int64_t now, size_t *njti);

/* Publishes one issued token's jti as revoked; AAM_E_NOTFOUND for an unknown jti. */
int attest_jti_revoke(struct aam_db *db, const char *jti, int64_t now);

/*
 * Completes a join: records the key thumbprint, marks the token used and
 * switches the registration to method pkcs11 — only if the token is still
 * unused (AAM_E_EXISTS otherwise, so two racing joins cannot both win).
 */
int attest_reg_join_complete(struct aam_db *db, int64_t id, const char *jkt);

/* Records an issued token (for revocation of live tokens). */
int attest_issued_record(struct aam_db *db, int64_t reg_id, const char *jti, int64_t iat,
                         int64_t exp);

/*
 * The revocation feed after SINCE: {"sequence":N,"revocations":[{"seq":..,
 * "spiffe_id":..,"revoked_at":..} or {"seq":..,"jti":..,"spiffe_id":..,
 * "exp":..,"revoked_at":..}],"more":bool}, at most LIMIT entries.
 */
int attest_revocations_since(struct aam_db *db, int64_t since, size_t limit, json_t **out);

/* Forgets issued tokens that expired before NOW. */
int attest_registry_prune(struct aam_db *db, int64_t now);

/* Small persistent values (bundle sequence). */
int attest_meta_get(struct aam_db *db, const char *key, char *out, size_t outlen);
int attest_meta_set(struct aam_db *db, const char *key, const char *value);

#endif /* AAM_ATTEST_REGISTRY_H */
