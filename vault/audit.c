/*
 * The audit log's storage, writer thread and checkpoints; see audit.h.
 */
#include "vault/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "aam/err.h"
#include "common/db.h"
#include "common/jcs.h"
#include "common/log.h"
#include "common/merkle.h"
#include "common/note.h"

/* Seconds between recovery probes while the log is failed. */
#define PROBE_MS 1000
/* The writer wakes at least this often to keep the checkpoint schedule. */
#define TICK_MS 100
/* Smallest spacing of two checkpoint signatures (at most two a second). */
#define MIN_CP_GAP_MS 500

struct pending {
	json_t *ev;
	uint64_t seq;
	int rc;
	bool done;
	bool abandoned; /* the caller timed out: the writer frees it */
	/*
	 * Its own condition: the writer wakes exactly the callers whose batch
	 * is done.  One condition for all made every finished batch wake every
	 * waiting caller (thirty and more under load) only for most of them to
	 * sleep again.
	 */
	pthread_cond_t cv;
	struct pending *next;
};

struct vault_audit {
	char *db_path, *cp_dir, *origin;
	unsigned timeout_ms, cp_interval_ms, cp_records, cp_idle_ms, max_batch;
	struct vault_store *st;

	/* Queue, failure state and the size as callers see it. */
	pthread_mutex_t qlock;
	pthread_cond_t wake;
	pthread_condattr_t cv_attr; /* CLOCK_MONOTONIC, for every pending's condition */
	struct pending *head, *tail;
	bool stop, failed;
	uint64_t size_pub;

	/* Database and tree: the writer's, and readers' under DBLOCK. */
	pthread_mutex_t dblock;
	struct aam_db *db;
	struct aam_merkle_tree tree;
	int64_t last_us; /* time of the last record, microseconds since the epoch */
	bool have_cp;
	uint64_t cp_size;
	uint8_t cp_root[32];
	int64_t cp_ms; /* monotonic time of the last checkpoint */
	int64_t probe_ms;

	EVP_PKEY *pkey; /* the audit public key the key ID was computed for */
	char kid[44];
	uint32_t key_id;

	pthread_t writer;
	bool running;
};

static int64_t
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
real_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
format_time(int64_t us, char out[32])
{
	time_t secs = (time_t)(us / 1000000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 32 - n, ".%06uZ", (unsigned)(us % 1000000));
}

/* ---- tree storage ------------------------------------------------------- */

/* Loads size, tree, last time and last checkpoint from the database (DBLOCK held). */
static int
load_state(struct vault_audit *a)
{
	struct aam_db_stmt *st;
	bool row = false;
	uint64_t size = 0;
	int64_t last_us = 0;
	int rc = aam_db_stmt_get(a->db, "SELECT seq, time FROM records ORDER BY seq DESC LIMIT 1",
	                         &st);
	if (rc != AAM_OK)
		return rc;
	rc = aam_db_step(st, &row);
	if (rc == AAM_OK && row) {
		size = (uint64_t)aam_db_column_int64(st, 0) + 1;
		const char *t = aam_db_column_text(st, 1, NULL);
		struct tm tm;
		memset(&tm, 0, sizeof(tm));
		unsigned frac = 0;
		if (t != NULL &&
		    sscanf(t, "%d-%d-%dT%d:%d:%d.%6uZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		           &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &frac) == 7) {
			tm.tm_year -= 1900;
			tm.tm_mon -= 1;
			last_us = (int64_t)timegm(&tm) * 1000000 + frac;
		}
	}
	aam_db_stmt_release(st);
	if (rc != AAM_OK)
		return rc;
	struct aam_merkle_tree t;
	rc = aam_merkle_tree_restore(&t, size, vault_audit_node_get, a->db);
	if (rc != AAM_OK)
		return rc;
	a->tree = t;
	a->last_us = last_us;
	a->have_cp = false;
	rc = aam_db_stmt_get(a->db, "SELECT size, root FROM checkpoints ORDER BY id DESC LIMIT 1",
	                     &st);
	if (rc != AAM_OK)
		return rc;
	rc = aam_db_step(st, &row);
	if (rc == AAM_OK && row) {
		size_t n = 0;
		const void *r = aam_db_column_blob(st, 1, &n);
		if (n == 32) {
			a->have_cp = true;
			a->cp_size = (uint64_t)aam_db_column_int64(st, 0);
			memcpy(a->cp_root, r, 32);
		}
	}
	aam_db_stmt_release(st);
	return rc;
}

static int
db_open(struct vault_audit *a)
{
	struct aam_db *db = NULL;
	int rc = vault_audit_db_open(a->db_path, &db);
	if (rc != AAM_OK)
		return rc;
	a->db = db;
	rc = load_state(a);
	if (rc != AAM_OK) {
		aam_db_close(db);
		a->db = NULL;
	}
	return rc;
}

static void
set_failed(struct vault_audit *a, const char *what, int rc)
{
	pthread_mutex_lock(&a->qlock);
	bool was = a->failed;
	a->failed = true;
	pthread_mutex_unlock(&a->qlock);
	a->probe_ms = mono_ms();
	if (!was)
		aam_log(AAM_LOG_ERROR, "audit.failed", AAM_F_STR("step", what), AAM_F_ERR(rc),
		        AAM_F_STR("db", a->db != NULL ? aam_db_errmsg(a->db) : "closed"));
}

/* ---- appending ------------------------------------------------------------ */

/* One batch in one transaction; sets each item's seq and rc (DBLOCK held). */
static void
commit_batch(struct vault_audit *a, struct pending *batch)
{
	struct aam_merkle_tree saved = a->tree;
	int64_t saved_us = a->last_us;
	int64_t now = real_us();
	if (now < a->last_us)
		now = a->last_us; /* time never goes backwards in seq order */
	char when[32];
	format_time(now, when);
	struct aam_buf b;
	aam_buf_init(&b, VAULT_AUDIT_MAX_RECORD);
	int rc = a->db != NULL ? aam_db_begin(a->db) : AAM_E_AUDIT;
	const char *step = "begin";
	for (struct pending *p = batch; rc == AAM_OK && p != NULL; p = p->next) {
		uint64_t seq = a->tree.size;
		json_object_set_new(p->ev, "seq", json_integer((json_int_t)seq));
		json_object_set_new(p->ev, "time", json_string(when));
		aam_buf_reset(&b);
		int src = aam_jcs_serialize(p->ev, &b);
		if (src != AAM_OK) {
			/* This event alone is refused (too big); no seq is used. */
			p->rc = src == AAM_E_TOOBIG ? AAM_E_TOOBIG : AAM_E_INVAL;
			continue;
		}
		uint8_t leaf[32];
		step = "tree";
		rc = aam_merkle_leaf_hash(b.data, b.len, leaf);
		if (rc == AAM_OK)
			rc = aam_merkle_tree_append(&a->tree, leaf, vault_audit_node_put, a->db);
		if (rc != AAM_OK)
			break;
		struct aam_db_stmt *st;
		step = "insert";
		rc = aam_db_stmt_get(
		        a->db, "INSERT INTO records(seq, time, rec) VALUES (?1, ?2, ?3)", &st);
		if (rc != AAM_OK)
			break;
		aam_db_bind_int64(st, 1, (int64_t)seq);
		aam_db_bind_str(st, 2, when);
		aam_db_bind_blob(st, 3, b.data, b.len);
		rc = aam_db_run(st);
		aam_db_stmt_release(st);
		p->seq = seq;
		p->rc = AAM_OK;
	}
	aam_buf_uninit(&b);
	if (rc == AAM_OK) {
		step = "commit";
		rc = aam_db_commit(a->db);
	}
	if (rc == AAM_OK) {
		a->last_us = now;
		return;
	}
	/* Nothing of the batch is durable: undo the tree, fail every caller. */
	if (a->db != NULL)
		aam_db_rollback(a->db);
	a->tree = saved;
	a->last_us = saved_us;
	for (struct pending *p = batch; p != NULL; p = p->next)
		p->rc = AAM_E_AUDIT;
	set_failed(a, step, rc);
}

/* ---- checkpoints ------------------------------------------------------------ */

/* aam_note_sign_fn: ECDSA in the token, r||s converted to DER. */
static int
sign_digest(void *ctx, const uint8_t digest[32], uint8_t *der, size_t *der_len)
{
	struct vault_audit *a = ctx;
	uint8_t rs[64];
	int rc = vault_sign(a->st, VAULT_KEY_AUDIT, digest, rs);
	if (rc != AAM_OK)
		return rc;
	ECDSA_SIG *sig = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(rs, 32, NULL), *s = BN_bin2bn(rs + 32, 32, NULL);
	if (sig == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(sig, r, s) != 1) {
		ECDSA_SIG_free(sig);
		BN_free(r);
		BN_free(s);
		return AAM_E_NOMEM;
	}
	int n = i2d_ECDSA_SIG(sig, NULL);
	if (n <= 0 || (size_t)n > AAM_NOTE_ECDSA_SIG_MAX) {
		ECDSA_SIG_free(sig);
		return AAM_E_CRYPTO;
	}
	uint8_t *p = der;
	i2d_ECDSA_SIG(sig, &p);
	*der_len = (size_t)n;
	ECDSA_SIG_free(sig);
	return AAM_OK;
}

/* Refreshes the key ID when the audit key changed (rotation). */
static int
load_key(struct vault_audit *a, char kid[44])
{
	struct vault_pubkey pk;
	int rc = vault_pubkey(a->st, VAULT_KEY_AUDIT, &pk);
	if (rc != AAM_OK)
		return rc;
	memcpy(kid, pk.kid, 44);
	if (a->pkey != NULL && strcmp(a->kid, pk.kid) == 0)
		return AAM_OK;
	const unsigned char *p = pk.spki_der;
	EVP_PKEY *k = d2i_PUBKEY(NULL, &p, (long)pk.spki_len);
	if (k == NULL)
		return AAM_E_CRYPTO;
	uint32_t id;
	rc = aam_note_key_id(k, &id);
	if (rc != AAM_OK) {
		EVP_PKEY_free(k);
		return rc;
	}
	EVP_PKEY_free(a->pkey);
	a->pkey = k;
	a->key_id = id;
	memcpy(a->kid, pk.kid, 44);
	return AAM_OK;
}

/* Writes NOTE to <cp_dir>/<size>: temporary file, fsync, rename, fsync of the folder. */
static int
write_checkpoint_file(struct vault_audit *a, uint64_t size, const char *note, size_t len)
{
	char path[4096], tmp[4200];
	snprintf(path, sizeof(path), "%s/%" PRIu64, a->cp_dir, size);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return AAM_E_IO;
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, note + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			close(fd);
			unlink(tmp);
			return AAM_E_IO;
		}
		off += (size_t)w;
	}
	if (fsync(fd) != 0) {
		close(fd);
		unlink(tmp);
		return AAM_E_IO;
	}
	if (close(fd) != 0 || rename(tmp, path) != 0) {
		unlink(tmp);
		return AAM_E_IO;
	}
	int dfd = open(a->cp_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return AAM_E_IO;
	int rc = fsync(dfd) == 0 ? AAM_OK : AAM_E_IO;
	close(dfd);
	return rc;
}

/* Signs a checkpoint of the current tree (DBLOCK held). */
static int
sign_checkpoint(struct vault_audit *a)
{
	uint64_t size = a->tree.size;
	uint8_t root[32];
	int rc = aam_merkle_tree_root(&a->tree, root);
	if (rc != AAM_OK)
		return rc;
	/* Never sign a tree that does not extend the last signed one. */
	if (a->have_cp) {
		bool ok;
		if (a->cp_size > size) {
			ok = false;
		} else if (a->cp_size == size) {
			ok = memcmp(a->cp_root, root, 32) == 0;
		} else if (a->cp_size == 0) {
			ok = true;
		} else {
			uint8_t proof[AAM_MERKLE_MAX_PROOF * 32];
			size_t n = 0;
			rc = aam_merkle_consistency_proof(a->cp_size, size, vault_audit_node_get,
			                                  a->db, proof, AAM_MERKLE_MAX_PROOF, &n);
			ok = rc == AAM_OK &&
			     aam_merkle_verify_consistency(a->cp_size, size, proof, n, a->cp_root,
			                                   root) == AAM_OK;
		}
		if (!ok) {
			aam_log(AAM_LOG_ERROR, "audit.inconsistent",
			        AAM_F_UINT("signed_size", a->cp_size), AAM_F_UINT("size", size));
			return AAM_E_INTERNAL;
		}
	}
	char note[AAM_NOTE_MAX_LEN];
	size_t len = 0;
	char kid[44], kid2[44];
	/* A rotation between reading the key and signing is detected and retried. */
	for (int attempt = 0; attempt < 2; attempt++) {
		rc = load_key(a, kid);
		if (rc == AAM_OK)
			rc = aam_note_checkpoint_sign(a->origin, size, root, a->origin, a->key_id,
			                              sign_digest, a, note, sizeof(note), &len);
		if (rc == AAM_OK)
			rc = load_key(a, kid2);
		if (rc != AAM_OK || strcmp(kid, kid2) == 0)
			break;
		rc = AAM_E_BUSY;
	}
	if (rc != AAM_OK)
		return rc;
	char when[32];
	format_time(real_us(), when);
	struct aam_db_stmt *st;
	rc = aam_db_stmt_get(a->db,
	                     "INSERT INTO checkpoints(size, root, note, created) "
	                     "VALUES (?1, ?2, ?3, ?4)",
	                     &st);
	if (rc != AAM_OK)
		return rc;
	aam_db_bind_int64(st, 1, (int64_t)size);
	aam_db_bind_blob(st, 2, root, 32);
	aam_db_bind_text(st, 3, note, len);
	aam_db_bind_str(st, 4, when);
	rc = aam_db_run(st);
	aam_db_stmt_release(st);
	if (rc != AAM_OK)
		return rc;
	a->have_cp = true;
	a->cp_size = size;
	memcpy(a->cp_root, root, 32);
	a->cp_ms = mono_ms();
	rc = write_checkpoint_file(a, size, note, len);
	if (rc != AAM_OK)
		return rc;
	aam_log(AAM_LOG_DEBUG, "audit.checkpoint", AAM_F_UINT("size", size));
	return AAM_OK;
}

static void
maybe_checkpoint(struct vault_audit *a, bool force)
{
	if (a->failed || !vault_store_ready(a->st))
		return;
	int64_t now = mono_ms();
	uint64_t size = a->tree.size;
	uint64_t unsigned_n = a->have_cp ? size - a->cp_size : size;
	int64_t since = now - a->cp_ms;
	/*
	 * Every second or every CP_RECORDS records, whichever first, but never
	 * two signatures closer than MIN_CP_GAP_MS: under any load the token
	 * signs at most two checkpoints a second.
	 */
	bool due = force ? unsigned_n > 0 || !a->have_cp
	                 : (unsigned_n > 0 &&
	                    ((unsigned_n >= a->cp_records && since >= MIN_CP_GAP_MS) ||
	                     since >= (int64_t)a->cp_interval_ms)) ||
	                           since >= (int64_t)a->cp_idle_ms;
	if (!due)
		return;
	int rc = sign_checkpoint(a);
	if (rc != AAM_OK) {
		/* Retried at the next tick, not in a tight loop. */
		a->cp_ms = now;
		aam_log(AAM_LOG_ERROR, "audit.checkpoint_failed", AAM_F_UINT("size", size),
		        AAM_F_ERR(rc));
		if (rc == AAM_E_DB || rc == AAM_E_IO)
			set_failed(a, "checkpoint", rc);
	}
}

/* Reopens the database and makes one write durable; clears the failure when it works. */
static void
probe(struct vault_audit *a)
{
	int64_t now = mono_ms();
	if (now - a->probe_ms < PROBE_MS)
		return;
	a->probe_ms = now;
	/* The connection that saw the error is never trusted again (fsync semantics). */
	aam_db_close(a->db);
	a->db = NULL;
	int rc = db_open(a);
	if (rc == AAM_OK) {
		char when[32];
		format_time(real_us(), when);
		struct aam_db_stmt *st;
		rc = aam_db_begin(a->db);
		if (rc == AAM_OK)
			rc = aam_db_stmt_get(
			        a->db, "INSERT OR REPLACE INTO meta(k, v) VALUES ('probe', ?1)",
			        &st);
		if (rc == AAM_OK) {
			aam_db_bind_str(st, 1, when);
			rc = aam_db_run(st);
			aam_db_stmt_release(st);
		}
		if (rc == AAM_OK)
			rc = aam_db_commit(a->db);
		else
			aam_db_rollback(a->db);
	}
	if (rc != AAM_OK)
		return;
	pthread_mutex_lock(&a->qlock);
	a->failed = false;
	a->size_pub = a->tree.size;
	pthread_mutex_unlock(&a->qlock);
	aam_log(AAM_LOG_INFO, "audit.recovered", AAM_F_UINT("size", a->tree.size));
}

static void *
writer_main(void *arg)
{
	struct vault_audit *a = arg;
	pthread_mutex_lock(&a->qlock);
	for (;;) {
		if (a->head == NULL && !a->stop) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_nsec += TICK_MS * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&a->wake, &a->qlock, &ts);
		}
		bool stop = a->stop && a->head == NULL;
		struct pending *batch = a->head, *last = NULL;
		unsigned n = 0;
		for (struct pending *p = a->head; p != NULL && n < a->max_batch; p = p->next) {
			last = p;
			n++;
		}
		if (last != NULL) {
			a->head = last->next;
			if (a->head == NULL)
				a->tail = NULL;
			last->next = NULL;
		} else {
			batch = NULL;
		}
		bool failed = a->failed;
		pthread_mutex_unlock(&a->qlock);

		pthread_mutex_lock(&a->dblock);
		if (batch != NULL) {
			if (failed) {
				for (struct pending *p = batch; p != NULL; p = p->next)
					p->rc = AAM_E_AUDIT;
			} else {
				commit_batch(a, batch);
			}
		}
		if (a->failed)
			probe(a);
		maybe_checkpoint(a, stop);
		uint64_t size = a->tree.size;
		pthread_mutex_unlock(&a->dblock);

		pthread_mutex_lock(&a->qlock);
		a->size_pub = size;
		for (struct pending *p = batch, *next; p != NULL; p = next) {
			next = p->next;
			p->done = true;
			if (p->abandoned) {
				json_decref(p->ev);
				pthread_cond_destroy(&p->cv);
				free(p);
			} else {
				pthread_cond_signal(&p->cv);
			}
		}
		if (stop)
			break;
	}
	pthread_mutex_unlock(&a->qlock);
	return NULL;
}

/* Queues EV (taking it) and waits for its batch. */
static int
enqueue_wait(struct vault_audit *a, json_t *ev, uint64_t *seq)
{
	struct pending *p = calloc(1, sizeof(*p));
	if (p == NULL) {
		json_decref(ev);
		return AAM_E_NOMEM;
	}
	p->ev = ev;
	pthread_cond_init(&p->cv, &a->cv_attr);
	struct timespec dl;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += a->timeout_ms / 1000;
	dl.tv_nsec += (long)(a->timeout_ms % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&a->qlock);
	if (a->failed || a->stop) {
		pthread_mutex_unlock(&a->qlock);
		json_decref(ev);
		pthread_cond_destroy(&p->cv);
		free(p);
		return AAM_E_AUDIT;
	}
	if (a->tail != NULL)
		a->tail->next = p;
	else
		a->head = p;
	a->tail = p;
	pthread_cond_signal(&a->wake);
	int rc = AAM_OK;
	while (!p->done && rc == AAM_OK)
		if (pthread_cond_timedwait(&p->cv, &a->qlock, &dl) == ETIMEDOUT && !p->done)
			rc = AAM_E_TIMEOUT;
	if (!p->done) {
		/* Still queued or being written: the writer frees it. */
		p->abandoned = true;
		pthread_mutex_unlock(&a->qlock);
		aam_log(AAM_LOG_ERROR, "audit.append_timeout", AAM_F_UINT("ms", a->timeout_ms));
		return AAM_E_TIMEOUT;
	}
	pthread_mutex_unlock(&a->qlock);
	rc = p->rc;
	if (rc == AAM_OK && seq != NULL)
		*seq = p->seq;
	json_decref(p->ev);
	pthread_cond_destroy(&p->cv);
	free(p);
	return rc;
}

/*
 * Checks EV against the record schema (hashing its sensitive fields), then
 * queues it and waits until it is durable; takes EV.  The prepared event
 * goes to the queue as it is: a second prepare would hash twice.
 */
static int
prepare_and_store(struct vault_audit *a, json_t *ev, uint64_t *seq, char *why, size_t whylen)
{
	int rc = vault_audit_event_prepare(ev, a->st, why, whylen);
	if (rc != AAM_OK) {
		json_decref(ev);
		return rc;
	}
	rc = enqueue_wait(a, ev, seq);
	if (rc == AAM_E_TOOBIG)
		snprintf(why, whylen, "the record would exceed %u bytes", VAULT_AUDIT_MAX_RECORD);
	else if (rc == AAM_E_AUDIT)
		snprintf(why, whylen, "the audit log cannot store records (fail closed)");
	else if (rc == AAM_E_TIMEOUT)
		snprintf(why, whylen, "the audit record was not durable within %u ms",
		         a->timeout_ms);
	else if (rc != AAM_OK)
		snprintf(why, whylen, "the event cannot be stored: %s", aam_strerror(rc));
	return rc;
}

int
vault_audit_append(struct vault_audit *a, const json_t *event, uint64_t *seq, char *why,
                   size_t whylen)
{
	if (a == NULL || event == NULL)
		return AAM_E_INVAL;
	json_t *ev = json_deep_copy(event);
	if (ev == NULL)
		return AAM_E_NOMEM;
	return prepare_and_store(a, ev, seq, why, whylen);
}

int
vault_audit_append_text(struct vault_audit *a, const char *json, size_t len, uint64_t *seq,
                        char *why, size_t whylen)
{
	if (a == NULL || json == NULL)
		return AAM_E_INVAL;
	if (len > VAULT_AUDIT_MAX_RECORD) {
		snprintf(why, whylen, "the event exceeds %u bytes", VAULT_AUDIT_MAX_RECORD);
		return AAM_E_TOOBIG;
	}
	json_error_t e;
	json_t *ev = json_loadb(json, len, JSON_REJECT_DUPLICATES, &e);
	if (ev == NULL) {
		snprintf(why, whylen, "the event is not JSON: %s (column %d)", e.text, e.column);
		return AAM_E_PARSE;
	}
	return prepare_and_store(a, ev, seq, why, whylen);
}

const char *
vault_audit_origin(const struct vault_audit *a)
{
	return a->origin;
}

bool
vault_audit_healthy(struct vault_audit *a)
{
	pthread_mutex_lock(&a->qlock);
	bool ok = !a->failed;
	pthread_mutex_unlock(&a->qlock);
	return ok;
}

uint64_t
vault_audit_size(struct vault_audit *a)
{
	pthread_mutex_lock(&a->qlock);
	uint64_t n = a->size_pub;
	pthread_mutex_unlock(&a->qlock);
	return n;
}

int
vault_audit_checkpoint_now(struct vault_audit *a)
{
	pthread_mutex_lock(&a->dblock);
	int rc = AAM_OK;
	if (a->failed || a->db == NULL)
		rc = AAM_E_AUDIT;
	else if (!a->have_cp || a->cp_size != a->tree.size)
		rc = sign_checkpoint(a);
	pthread_mutex_unlock(&a->dblock);
	return rc;
}

/* ---- open / close ------------------------------------------------------------ */

static char *
dup_or(const char *s, const char *def)
{
	return strdup(s != NULL ? s : def);
}

int
vault_audit_open(const struct vault_audit_config *cfg, struct vault_store *st,
                 struct vault_audit **out, char *err, size_t errlen)
{
	*out = NULL;
	if (cfg == NULL || st == NULL || cfg->db_path == NULL || cfg->checkpoint_dir == NULL)
		return AAM_E_INVAL;
	const char *origin = cfg->origin != NULL ? cfg->origin : "aam.local/audit";
	if (strlen(origin) > AAM_NOTE_ORIGIN_MAX || !aam_note_name_valid(origin, strlen(origin))) {
		snprintf(err, errlen,
		         "vault.audit.origin: not a valid log name (no spaces or '+')");
		return AAM_E_CONFIG;
	}
	struct vault_audit *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return AAM_E_NOMEM;
	a->db_path = strdup(cfg->db_path);
	a->cp_dir = strdup(cfg->checkpoint_dir);
	a->origin = dup_or(origin, "");
	a->timeout_ms = cfg->append_timeout_ms ? cfg->append_timeout_ms : 2000;
	a->cp_interval_ms = cfg->cp_interval_ms ? cfg->cp_interval_ms : 1000;
	a->cp_records = cfg->cp_records ? cfg->cp_records : 1000;
	a->cp_idle_ms = cfg->cp_idle_ms ? cfg->cp_idle_ms : 60000;
	a->max_batch = cfg->max_batch ? cfg->max_batch : 4096;
	a->st = st;
	pthread_mutex_init(&a->qlock, NULL);
	pthread_mutex_init(&a->dblock, NULL);
	pthread_cond_init(&a->wake, NULL);
	pthread_condattr_init(&a->cv_attr);
	pthread_condattr_setclock(&a->cv_attr, CLOCK_MONOTONIC);
	pthread_cond_destroy(&a->wake);
	pthread_cond_init(&a->wake, &a->cv_attr);
	if (a->db_path == NULL || a->cp_dir == NULL || a->origin == NULL) {
		vault_audit_close(a);
		return AAM_E_NOMEM;
	}
	if (mkdir(a->cp_dir, 0755) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: cannot create the checkpoint folder: %s", a->cp_dir,
		         strerror(errno));
		vault_audit_close(a);
		return AAM_E_IO;
	}
	int rc = db_open(a);
	if (rc != AAM_OK) {
		snprintf(err, errlen, "%s: cannot open the audit database: %s", a->db_path,
		         aam_strerror(rc));
		vault_audit_close(a);
		return rc;
	}
	a->size_pub = a->tree.size;
	a->cp_ms = mono_ms();
	if (pthread_create(&a->writer, NULL, writer_main, a) != 0) {
		vault_audit_close(a);
		return AAM_E_NOMEM;
	}
	a->running = true;
	json_t *ev = json_pack("{s:s, s:{s:s, s:s}}", "type", "audit.start", "detail", "version",
	                       AAM_VERSION, "origin", a->origin);
	char why[256] = "";
	uint64_t seq = 0;
	rc = ev != NULL ? vault_audit_append(a, ev, &seq, why, sizeof(why)) : AAM_E_NOMEM;
	json_decref(ev);
	if (rc != AAM_OK) {
		snprintf(err, errlen, "cannot append the audit.start record: %s", why);
		vault_audit_close(a);
		return rc;
	}
	aam_log(AAM_LOG_INFO, "audit.open", AAM_F_STR("db", a->db_path),
	        AAM_F_STR("origin", a->origin), AAM_F_UINT("size", seq + 1));
	*out = a;
	return AAM_OK;
}

void
vault_audit_close(struct vault_audit *a)
{
	if (a == NULL)
		return;
	if (a->running) {
		pthread_mutex_lock(&a->qlock);
		a->stop = true;
		pthread_cond_signal(&a->wake);
		pthread_mutex_unlock(&a->qlock);
		pthread_join(a->writer, NULL);
	}
	aam_db_close(a->db);
	EVP_PKEY_free(a->pkey);
	pthread_cond_destroy(&a->wake);
	pthread_condattr_destroy(&a->cv_attr);
	pthread_mutex_destroy(&a->qlock);
	pthread_mutex_destroy(&a->dblock);
	free(a->db_path);
	free(a->cp_dir);
	free(a->origin);
	free(a);
}

/* ---- reading ---------------------------------------------------------------- */

/* Runs one query whose rows CB consumes (DBLOCK taken here). */
static int
note_row(struct aam_db_stmt *st, struct aam_buf *note, uint64_t *size)
{
	bool row = false;
	int rc = aam_db_step(st, &row);
	if (rc == AAM_OK && !row)
		rc = AAM_E_NOTFOUND;
	if (rc == AAM_OK) {
		size_t n = 0;
		const char *t = aam_db_column_text(st, 1, &n);
		if (size != NULL)
			*size = (uint64_t)aam_db_column_int64(st, 0);
		rc = aam_buf_append(note, t, n);
	}
	return rc;
}

int
vault_audit_latest_checkpoint(struct vault_audit *a, struct aam_buf *note, uint64_t *size)
{
	pthread_mutex_lock(&a->dblock);
	struct aam_db_stmt *st;
	int rc = a->db == NULL ? AAM_E_AUDIT
	                       : aam_db_stmt_get(a->db,
	                                         "SELECT size, note FROM checkpoints "
	                                         "ORDER BY id DESC LIMIT 1",
	                                         &st);
	if (rc == AAM_OK) {
		rc = note_row(st, note, size);
		aam_db_stmt_release(st);
	}
	pthread_mutex_unlock(&a->dblock);
	return rc;
}

int
vault_audit_checkpoint_at(struct vault_audit *a, uint64_t size, struct aam_buf *note)
{
	pthread_mutex_lock(&a->dblock);
	struct aam_db_stmt *st;
	int rc = a->db == NULL
	                 ? AAM_E_AUDIT
	                 : aam_db_stmt_get(a->db,
	                                   "SELECT size, note FROM checkpoints WHERE size = ?1 "
	                                   "ORDER BY id DESC LIMIT 1",
	                                   &st);
	if (rc == AAM_OK) {
		aam_db_bind_int64(st, 1, (int64_t)size);
		rc = note_row(st, note, NULL);
		aam_db_stmt_release(st);
	}
	pthread_mutex_unlock(&a->dblock);
	return rc;
}

int
vault_audit_checkpoints(struct vault_audit *a, uint64_t min, uint64_t max,
                        int (*cb)(void *ctx, uint64_t size, const char *note, size_t len),
                        void *ctx)
{
	if (max > INT64_MAX)
		max = INT64_MAX;
	pthread_mutex_lock(&a->dblock);
	struct aam_db_stmt *st;
	/* The newest note of each size (an idle re-signature replaces the file too). */
	int rc = a->db == NULL ? AAM_E_AUDIT
	                       : aam_db_stmt_get(a->db,
	                                         "SELECT size, note FROM checkpoints WHERE id IN "
	                                         "(SELECT MAX(id) FROM checkpoints WHERE size "
	                                         "BETWEEN ?1 AND ?2 GROUP BY size) ORDER BY size",
	                                         &st);
	if (rc == AAM_OK) {
		aam_db_bind_int64(st, 1, (int64_t)min);
		aam_db_bind_int64(st, 2, (int64_t)max);
		bool row = true;
		while (rc == AAM_OK && (rc = aam_db_step(st, &row)) == AAM_OK && row) {
			size_t n = 0;
			const char *t = aam_db_column_text(st, 1, &n);
			rc = cb(ctx, (uint64_t)aam_db_column_int64(st, 0), t, n);
		}
		aam_db_stmt_release(st);
	}
	pthread_mutex_unlock(&a->dblock);
	return rc;
}

int
vault_audit_records(struct vault_audit *a, uint64_t from, uint64_t max,
                    int (*cb)(void *ctx, uint64_t seq, const uint8_t *rec, size_t len), void *ctx)
{
	if (from > INT64_MAX)
		return AAM_E_INVAL;
	pthread_mutex_lock(&a->dblock);
	struct aam_db_stmt *st;
	int rc = a->db == NULL ? AAM_E_AUDIT
	                       : aam_db_stmt_get(a->db,
	                                         "SELECT seq, rec FROM records WHERE seq >= ?1 "
	                                         "ORDER BY seq LIMIT ?2",
	                                         &st);
	if (rc == AAM_OK) {
		aam_db_bind_int64(st, 1, (int64_t)from);
		aam_db_bind_int64(st, 2, max > INT64_MAX ? INT64_MAX : (int64_t)max);
		bool row = true;
		while (rc == AAM_OK && (rc = aam_db_step(st, &row)) == AAM_OK && row) {
			size_t n = 0;
			const void *r = aam_db_column_blob(st, 1, &n);
			rc = cb(ctx, (uint64_t)aam_db_column_int64(st, 0), r, n);
		}
		aam_db_stmt_release(st);
	}
	pthread_mutex_unlock(&a->dblock);
	return rc;
}

int
vault_audit_seq_at(struct vault_audit *a, const char *time, uint64_t *seq)
{
	pthread_mutex_lock(&a->dblock);
	struct aam_db_stmt *st;
	int rc = a->db == NULL
	                 ? AAM_E_AUDIT
	                 : aam_db_stmt_get(a->db, "SELECT MIN(seq) FROM records WHERE time >= ?1",
	                                   &st);
	if (rc == AAM_OK) {
		aam_db_bind_str(st, 1, time);
		bool row = false;
		rc = aam_db_step(st, &row);
		if (rc == AAM_OK)
			*seq = row && !aam_db_column_is_null(st, 0)
			               ? (uint64_t)aam_db_column_int64(st, 0)
			               : a->tree.size;
		aam_db_stmt_release(st);
	}
	pthread_mutex_unlock(&a->dblock);
	return rc;
}

int
vault_audit_prefix(struct vault_audit *a, uint64_t size, uint8_t *hashes, size_t cap, size_t *count)
{
	pthread_mutex_lock(&a->dblock);
	int rc = a->db == NULL ? AAM_E_AUDIT : size > a->tree.size ? AAM_E_INVAL : AAM_OK;
	struct aam_merkle_tree t;
	if (rc == AAM_OK)
		rc = aam_merkle_tree_restore(&t, size, vault_audit_node_get, a->db);
	pthread_mutex_unlock(&a->dblock);
	if (rc != AAM_OK)
		return rc;
	if (t.count > cap)
		return AAM_E_TOOBIG;
	memcpy(hashes, t.hash, (size_t)t.count * 32);
	*count = t.count;
	return AAM_OK;
}

int
vault_audit_prove(struct vault_audit *a, uint64_t seq, uint64_t size, uint8_t *proof, size_t cap,
                  size_t *count)
{
	pthread_mutex_lock(&a->dblock);
	int rc = a->db == NULL                        ? AAM_E_AUDIT
	         : size > a->tree.size || seq >= size ? AAM_E_INVAL
	                                              : AAM_OK;
	if (rc == AAM_OK)
		rc = aam_merkle_inclusion_proof(seq, size, vault_audit_node_get, a->db, proof, cap,
		                                count);
	pthread_mutex_unlock(&a->dblock);
	return rc;
}
