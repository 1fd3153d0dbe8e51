/*
 * Test generator for audit exports in the layout docs/AUDIT.md defines
 * (manifest, records/NNNNNNNNNNNN.jsonl, leaves, checkpoints/<size>, key.pem,
 * key.vkey), signed with an OpenSSL P-256 key.  Integration tests build an
 * export, tamper with it and run aam-audit-verify on it.
 */
#ifndef AAM_TESTS_AUDITGEN_H
#define AAM_TESTS_AUDITGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define AAM_AUDITGEN_NONE UINT64_MAX

struct aam_auditgen_opts {
	const char *dir;            /* existing, empty folder */
	const char *origin;         /* also the checkpoint key name */
	EVP_PKEY *key;              /* P-256 private key */
	uint64_t first_seq;         /* records before it are summarised by the prefix */
	uint64_t records;           /* records in the export */
	uint64_t checkpoint_every;  /* plus one at the end of the export */
	uint64_t segment_records;   /* records per records/NNNNNNNNNNNN.jsonl */
	bool no_leaves;             /* omit the leaves file */
	uint64_t time_backwards_at; /* this record's time is before its predecessor's */
	uint64_t noncanonical_at;   /* this record has a space after a ':' */
};

/* Sensible defaults: 1000 records, checkpoints every 100, segments of 250. */
void aam_auditgen_defaults(struct aam_auditgen_opts *o, const char *dir, EVP_PKEY *key);

/* The exact bytes (no newline) of record SEQ; returns the length or 0. */
size_t aam_auditgen_record(const struct aam_auditgen_opts *o, uint64_t seq, char *buf, size_t cap);

/* Writes the whole export; 0 on success. */
int aam_auditgen_write(const struct aam_auditgen_opts *o);

/* Root of the log's tree of SIZE leaves (records 0..SIZE-1). */
int aam_auditgen_root(const struct aam_auditgen_opts *o, uint64_t size, uint8_t root[32]);

/* Writes a checkpoint for (ORIGIN, SIZE, ROOT) signed by KEY under NAME to PATH. */
int aam_auditgen_sign_checkpoint(EVP_PKEY *key, const char *name, const char *origin, uint64_t size,
                                 const uint8_t root[32], const char *path);

#endif
