/*
 * The vault's audit log (docs/AUDIT.md): records in a Merkle log kept in
 * its own SQLite file, checkpoints signed with the token's audit key.
 *
 * Appends: a caller hands in an event (a JSON object without seq and
 * time).  It is validated against the record schema (audit_event.c),
 * its sensitive strings are replaced by HMAC-SHA256 values computed in
 * the token, and it is queued for the one writer thread.  The writer
 * takes every queued event (up to a batch limit), gives each its seq and
 * time, serialises it with RFC 8785 JCS (the exact leaf bytes), extends
 * the tree and writes records and completed subtree hashes in one
 * BEGIN IMMEDIATE ... COMMIT (WAL, synchronous=FULL).  Each caller is
 * woken only after its batch committed, so an acknowledged seq is
 * durable; one fsync serves the whole batch.
 *
 * Checkpoints: the writer signs one every second or every 1,000 records,
 * whichever first (never two within 500 ms: at most two signatures a
 * second), and once a minute when idle, after checking that the
 * new tree is consistent with the last signed one.  Each is stored in the
 * database and written atomically to <checkpoint_dir>/<size>.
 *
 * Failure: a failed commit or checkpoint write marks the log failed;
 * appends then fail at once (AAM_E_AUDIT) until the writer, probing every
 * second, has reopened the database and made a test write durable.  An
 * append that is not durable within the time bound fails with
 * AAM_E_TIMEOUT (the record may still be written later: the caller only
 * knows that it was not acknowledged, and refuses its request).
 */
#ifndef AAM_VAULT_AUDIT_H
#define AAM_VAULT_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/buf.h"
#include "vault/store.h"

/* Largest record, and largest event accepted from a client. */
#define VAULT_AUDIT_MAX_RECORD (64u * 1024)
/* "hmac-sha256:" + 64 hex digits + NUL. */
#define VAULT_AUDIT_HASH_LEN 77u

struct vault_audit_config {
	const char *db_path;        /* the audit database (its own file) */
	const char *checkpoint_dir; /* where checkpoint files are written */
	const char *origin;         /* the log's name and the checkpoint key name */
	unsigned append_timeout_ms; /* bound on one append; 0: 2000 */
	unsigned cp_interval_ms;    /* 0: 1000 */
	unsigned cp_records;        /* 0: 1000 */
	unsigned cp_idle_ms;        /* 0: 60000 */
	unsigned max_batch;         /* records per transaction; 0: 4096; 1: no group commit */
};

struct vault_audit;

/*
 * Opens (creating) the database, restores the tree and the last
 * checkpoint, starts the writer and appends an audit.start record.  ST
 * (may not be NULL) signs checkpoints and computes HMACs; while its keys
 * are missing, checkpoints wait and sensitive values cannot be hashed.
 */
int vault_audit_open(const struct vault_audit_config *cfg, struct vault_store *st,
                     struct vault_audit **out, char *err, size_t errlen);
/* Stops the writer (signing a last checkpoint when records are unsigned) and closes. */
void vault_audit_close(struct vault_audit *a);

/*
 * Appends an event given as JSON text.  AAM_E_PARSE / AAM_E_INVAL /
 * AAM_E_TOOBIG for an event the schema refuses (WHY says which field),
 * AAM_E_AUDIT when the log is failed, AAM_E_TIMEOUT when not durable in
 * time.  *SEQ is the record's seq on AAM_OK.
 */
int vault_audit_append_text(struct vault_audit *a, const char *json, size_t len, uint64_t *seq,
                            char *why, size_t whylen);
/* The same for an event the vault builds itself; EVENT is not modified. */
int vault_audit_append(struct vault_audit *a, const json_t *event, uint64_t *seq, char *why,
                       size_t whylen);

/* Whether appends are accepted (not failed). */
bool vault_audit_healthy(struct vault_audit *a);
/* The log's name (origin line and key name). */
const char *vault_audit_origin(const struct vault_audit *a);
/* Records in the log (the next seq). */
uint64_t vault_audit_size(struct vault_audit *a);
/* Forces a checkpoint now when records are unsigned (tests, shutdown). */
int vault_audit_checkpoint_now(struct vault_audit *a);

/* The newest signed checkpoint note; AAM_E_NOTFOUND when none yet. */
int vault_audit_latest_checkpoint(struct vault_audit *a, struct aam_buf *note, uint64_t *size);
/* The newest checkpoint of size SIZE exactly; AAM_E_NOTFOUND when none. */
int vault_audit_checkpoint_at(struct vault_audit *a, uint64_t size, struct aam_buf *note);
/*
 * Calls CB for each stored checkpoint with MIN <= size <= MAX, in size
 * order, the newest note of each size.
 */
int vault_audit_checkpoints(struct vault_audit *a, uint64_t min, uint64_t max,
                            int (*cb)(void *ctx, uint64_t size, const char *note, size_t len),
                            void *ctx);
/* Calls CB for the records FROM .. FROM+MAX-1 that exist, in seq order. */
int vault_audit_records(struct vault_audit *a, uint64_t from, uint64_t max,
                        int (*cb)(void *ctx, uint64_t seq, const uint8_t *rec, size_t len),
                        void *ctx);
/* The seq of the first record whose time is >= TIME (RFC 3339 as stored); size when none. */
int vault_audit_seq_at(struct vault_audit *a, const char *time, uint64_t *seq);
/* Right edge of the tree of SIZE leaves: popcount(SIZE) hashes, largest subtree first. */
int vault_audit_prefix(struct vault_audit *a, uint64_t size, uint8_t *hashes, size_t cap,
                       size_t *count);
/* Inclusion proof of SEQ in the tree of SIZE (<= log size) leaves. */
int vault_audit_prove(struct vault_audit *a, uint64_t seq, uint64_t size, uint8_t *proof,
                      size_t cap, size_t *count);
/*
 * "hmac-sha256:<hex>" of VALUE as a sensitive field holds it (the
 * fingerprint key, domain-separated; see docs/AUDIT.md).
 */
int vault_audit_hash(struct vault_store *st, const uint8_t *value, size_t len,
                     char out[VAULT_AUDIT_HASH_LEN]);

/* ---- audit_tree.c: schema and stored subtree hashes ------------------ */

struct aam_db;
/* Opens (creating, migrating) an audit database: WAL, synchronous=FULL. */
int vault_audit_db_open(const char *path, struct aam_db **out);
/*
 * aam_merkle_node_fn and aam_merkle_store_fn over the subtree table; CTX
 * is the struct aam_db *.  Together with common/merkle.h they are the
 * incremental tree: append, restore, inclusion and consistency proofs.
 */
int vault_audit_node_get(void *ctx, uint64_t start, unsigned level, uint8_t out[32]);
int vault_audit_node_put(void *ctx, uint64_t start, unsigned level, const uint8_t hash[32]);

/* ---- audit_event.c --------------------------------------------------- */

/*
 * Checks EVENT against the record schema v1 (type known, members and
 * their types as docs/AUDIT.md lists them, no seq or time) and replaces
 * every sensitive string by its hash (ST computes it).  EVENT is modified
 * in place.  AAM_E_INVAL with WHY naming the field.
 */
int vault_audit_event_prepare(json_t *event, struct vault_store *st, char *why, size_t whylen);
/*
 * Appends the credential.use record of one INJECT (name, version and
 * keyed fingerprint of the credential, method and destination; never the
 * value), before the upstream request is sent.
 */
/*
 * Records an administrative change that succeeded: TYPE is admin.secret.<verb>
 * or admin.key.<verb>, KIND/NAME the detail member naming what changed
 * ("secret" or "key", never a value), PEER_UID the admin's uid.
 */
int vault_audit_admin(struct vault_audit *a, const char *type, const char *kind, const char *name,
                      unsigned peer_uid, char *why, size_t whylen);
int vault_audit_credential_use(struct vault_audit *a, const struct vault_secret_meta *m,
                               const char *method, const char *host, unsigned port,
                               const char *path, char *why, size_t whylen);
/* Whether TYPE is a record type this version knows. */
bool vault_audit_type_known(const char *type);

#endif /* AAM_VAULT_AUDIT_H */
