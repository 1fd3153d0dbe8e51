/*
 * The audit log's IPC requests (vault/proto.h): AUDIT_APPEND and
 * AUDIT_CHECKPOINT from the gateway and attest roles, and the admin's
 * read-only requests behind `aamctl audit`.  Every request is decoded
 * exactly and answered once.
 */
#include "vault/audit_ipc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/merkle.h"
#include "common/secret.h"
#include "vault/proto.h"

static int
reply_buf(struct aam_ipc_replier *r, struct aam_buf *b)
{
	if (aam_buf_failed(b))
		return aam_ipc_reply_error(r, b->err, "reply too large");
	return aam_ipc_reply(r, b->data, b->len);
}

static int
bad(struct aam_ipc_replier *r, const char *what)
{
	char msg[96];
	snprintf(msg, sizeof(msg), "malformed %s request", what);
	return aam_ipc_reply_error(r, AAM_E_PARSE, msg);
}

static int
do_append(struct vault_audit *a, const uint8_t *p, size_t n, struct aam_ipc_replier *r)
{
	char why[256] = "";
	uint64_t seq = 0;
	int rc = vault_audit_append_text(a, (const char *)p, n, &seq, why, sizeof(why));
	if (rc != AAM_OK) {
		aam_log(rc == AAM_E_AUDIT || rc == AAM_E_TIMEOUT ? AAM_LOG_ERROR : AAM_LOG_WARN,
		        "audit.append_refused", AAM_F_ERR(rc), AAM_F_STR("reason", why));
		return aam_ipc_reply_error(r, rc, why);
	}
	struct aam_buf b;
	aam_buf_init(&b, 16);
	aam_ipc_put_u64(&b, seq);
	rc = reply_buf(r, &b);
	aam_buf_uninit(&b);
	return rc;
}

static int
do_checkpoint(struct vault_audit *a, size_t n, struct aam_ipc_replier *r)
{
	if (n != 0)
		return bad(r, "AUDIT_CHECKPOINT");
	struct aam_buf b;
	aam_buf_init(&b, AAM_IPC_MAX_PAYLOAD);
	int rc = vault_audit_latest_checkpoint(a, &b, NULL);
	rc = rc == AAM_OK ? reply_buf(r, &b)
	                  : aam_ipc_reply_error(r, rc,
	                                        rc == AAM_E_NOTFOUND ? "no checkpoint signed yet"
	                                                             : "reading the log failed");
	aam_buf_uninit(&b);
	return rc;
}

static int
do_info(struct vault_audit *a, struct vault_store *st, size_t n, struct aam_ipc_replier *r)
{
	if (n != 0)
		return bad(r, "AUDIT_INFO");
	struct aam_buf note;
	aam_buf_init(&note, AAM_IPC_MAX_PAYLOAD);
	uint64_t signed_size = 0;
	if (vault_audit_latest_checkpoint(a, &note, &signed_size) != AAM_OK)
		signed_size = 0;
	aam_buf_uninit(&note);
	struct vault_pubkey pk;
	bool have_key = vault_store_ready(st) && vault_pubkey(st, VAULT_KEY_AUDIT, &pk) == AAM_OK;
	struct aam_buf b;
	aam_buf_init(&b, 4096);
	aam_ipc_put_str(&b, vault_audit_origin(a));
	aam_ipc_put_u64(&b, vault_audit_size(a));
	aam_ipc_put_u64(&b, signed_size);
	aam_ipc_put_u8(&b, vault_audit_healthy(a) ? 1 : 0);
	aam_ipc_put_bytes(&b, have_key ? pk.spki_der : NULL, have_key ? pk.spki_len : 0);
	int rc = reply_buf(r, &b);
	aam_buf_uninit(&b);
	return rc;
}

struct page {
	struct aam_buf *b;
	uint32_t n;
	size_t limit;
	uint32_t max;
};

static int
rec_cb(void *ctx, uint64_t seq, const uint8_t *rec, size_t len)
{
	struct page *pg = ctx;
	/* One record always fits; stop before the page would exceed its bound. */
	if (pg->n > 0 && pg->b->len + len + 16 > pg->limit)
		return AAM_E_BUSY;
	aam_ipc_put_u64(pg->b, seq);
	aam_ipc_put_bytes(pg->b, rec, len);
	pg->n++;
	return aam_buf_failed(pg->b) ? pg->b->err : AAM_OK;
}

static int
cp_cb(void *ctx, uint64_t size, const char *note, size_t len)
{
	struct page *pg = ctx;
	if (pg->n >= pg->max || (pg->n > 0 && pg->b->len + len + 16 > pg->limit))
		return AAM_E_BUSY;
	aam_ipc_put_u64(pg->b, size);
	aam_ipc_put_bytes(pg->b, note, len);
	pg->n++;
	return aam_buf_failed(pg->b) ? pg->b->err : AAM_OK;
}

/* Patches the u32 count at the start of B. */
static void
put_count(struct aam_buf *b, uint32_t n)
{
	if (aam_buf_failed(b) || b->len < 4)
		return;
	b->data[0] = (uint8_t)(n >> 24);
	b->data[1] = (uint8_t)(n >> 16);
	b->data[2] = (uint8_t)(n >> 8);
	b->data[3] = (uint8_t)n;
}

static int
do_records(struct vault_audit *a, const uint8_t *p, size_t n, bool cps, struct aam_ipc_replier *r)
{
	struct aam_ipc_reader rd;
	aam_ipc_reader_init(&rd, p, n);
	uint64_t x = 0, y = 0;
	uint32_t max = 0;
	aam_ipc_get_u64(&rd, &x);
	if (cps)
		aam_ipc_get_u64(&rd, &y);
	else
		aam_ipc_get_u32(&rd, &max);
	if (aam_ipc_reader_end(&rd) != AAM_OK)
		return bad(r, cps ? "AUDIT_CHECKPOINTS" : "AUDIT_RECORDS");
	struct aam_buf b;
	aam_buf_init(&b, AAM_IPC_MAX_PAYLOAD);
	aam_ipc_put_u32(&b, 0);
	struct page pg = {.b = &b, .limit = VAULT_IPC_AUDIT_PAGE, .max = VAULT_IPC_AUDIT_CP_PAGE};
	int rc = cps ? vault_audit_checkpoints(a, x, y, cp_cb, &pg)
	             : vault_audit_records(a, x, max, rec_cb, &pg);
	if (rc == AAM_E_BUSY)
		rc = AAM_OK; /* the page is full: the client asks for the rest */
	put_count(&b, pg.n);
	rc = rc == AAM_OK ? reply_buf(r, &b) : aam_ipc_reply_error(r, rc, "reading the log failed");
	aam_buf_uninit(&b);
	return rc;
}

static int
do_prefix(struct vault_audit *a, const uint8_t *p, size_t n, struct aam_ipc_replier *r)
{
	struct aam_ipc_reader rd;
	aam_ipc_reader_init(&rd, p, n);
	uint64_t size = 0;
	aam_ipc_get_u64(&rd, &size);
	if (aam_ipc_reader_end(&rd) != AAM_OK)
		return bad(r, "AUDIT_PREFIX");
	uint8_t h[AAM_MERKLE_MAX_LEVELS * 32];
	size_t cnt = 0;
	int rc = vault_audit_prefix(a, size, h, AAM_MERKLE_MAX_LEVELS, &cnt);
	if (rc != AAM_OK)
		return aam_ipc_reply_error(r, rc, rc == AAM_E_INVAL ? "size beyond the log" : NULL);
	struct aam_buf b;
	aam_buf_init(&b, 4096);
	aam_ipc_put_u32(&b, (uint32_t)cnt);
	aam_ipc_put_fixed(&b, h, cnt * 32);
	rc = reply_buf(r, &b);
	aam_buf_uninit(&b);
	return rc;
}

static int
one_rec(void *ctx, uint64_t seq, const uint8_t *rec, size_t len)
{
	(void)seq;
	return aam_buf_append(ctx, rec, len);
}

static int
do_prove(struct vault_audit *a, const uint8_t *p, size_t n, struct aam_ipc_replier *r)
{
	struct aam_ipc_reader rd;
	aam_ipc_reader_init(&rd, p, n);
	uint64_t seq = 0, size = 0;
	aam_ipc_get_u64(&rd, &seq);
	aam_ipc_get_u64(&rd, &size);
	if (aam_ipc_reader_end(&rd) != AAM_OK)
		return bad(r, "AUDIT_PROVE");
	struct aam_buf note, rec, b;
	aam_buf_init(&note, AAM_IPC_MAX_PAYLOAD);
	aam_buf_init(&rec, VAULT_AUDIT_MAX_RECORD + 1);
	aam_buf_init(&b, AAM_IPC_MAX_PAYLOAD);
	int rc;
	const char *why = NULL;
	if (size == 0)
		rc = vault_audit_latest_checkpoint(a, &note, &size);
	else
		rc = vault_audit_checkpoint_at(a, size, &note);
	if (rc == AAM_E_NOTFOUND)
		why = "no signed checkpoint of that size";
	if (rc == AAM_OK && seq >= size) {
		rc = AAM_E_INVAL;
		why = "the record is not covered by that checkpoint (wait for the next one)";
	}
	if (rc == AAM_OK)
		rc = vault_audit_records(a, seq, 1, one_rec, &rec);
	if (rc == AAM_OK && rec.len == 0)
		rc = AAM_E_NOTFOUND;
	uint8_t proof[AAM_MERKLE_MAX_PROOF * 32];
	size_t cnt = 0;
	if (rc == AAM_OK)
		rc = vault_audit_prove(a, seq, size, proof, AAM_MERKLE_MAX_PROOF, &cnt);
	if (rc == AAM_OK) {
		aam_ipc_put_u64(&b, size);
		aam_ipc_put_bytes(&b, note.data, note.len);
		aam_ipc_put_bytes(&b, rec.data, rec.len);
		aam_ipc_put_u32(&b, (uint32_t)cnt);
		aam_ipc_put_fixed(&b, proof, cnt * 32);
		rc = reply_buf(r, &b);
	} else {
		rc = aam_ipc_reply_error(r, rc, why);
	}
	aam_buf_uninit(&note);
	aam_buf_uninit(&rec);
	aam_buf_uninit(&b);
	return rc;
}

static int
do_seq_at(struct vault_audit *a, const uint8_t *p, size_t n, struct aam_ipc_replier *r)
{
	struct aam_ipc_reader rd;
	aam_ipc_reader_init(&rd, p, n);
	char *t = NULL;
	aam_ipc_get_str(&rd, 64, &t);
	if (aam_ipc_reader_end(&rd) != AAM_OK) {
		free(t);
		return bad(r, "AUDIT_SEQ_AT");
	}
	uint64_t seq = 0;
	int rc = vault_audit_seq_at(a, t, &seq);
	free(t);
	if (rc != AAM_OK)
		return aam_ipc_reply_error(r, rc, NULL);
	struct aam_buf b;
	aam_buf_init(&b, 16);
	aam_ipc_put_u64(&b, seq);
	rc = reply_buf(r, &b);
	aam_buf_uninit(&b);
	return rc;
}

static int
do_hash(struct vault_store *st, const uint8_t *p, size_t n, struct aam_ipc_replier *r)
{
	struct aam_ipc_reader rd;
	aam_ipc_reader_init(&rd, p, n);
	const uint8_t *v = NULL;
	size_t vlen = 0;
	aam_ipc_get_bytes(&rd, VAULT_AUDIT_MAX_RECORD, &v, &vlen);
	if (aam_ipc_reader_end(&rd) != AAM_OK)
		return bad(r, "AUDIT_HASH");
	char h[VAULT_AUDIT_HASH_LEN];
	int rc = vault_audit_hash(st, v, vlen, h);
	/* The value may be a person's identifier: wipe the server's copy. */
	aam_wipe((void *)(uintptr_t)p, n);
	if (rc != AAM_OK)
		return aam_ipc_reply_error(r, rc, "hashing failed");
	struct aam_buf b;
	aam_buf_init(&b, 128);
	aam_ipc_put_str(&b, h);
	rc = reply_buf(r, &b);
	aam_buf_uninit(&b);
	return rc;
}

int
vault_audit_handle(struct vault_audit *a, struct vault_store *st, uint16_t type, const uint8_t *p,
                   size_t n, struct aam_ipc_replier *r)
{
	if (a == NULL)
		return aam_ipc_reply_error(r, AAM_E_AUDIT, "the audit log is not open");
	switch (type) {
	case AAM_IPC_AUDIT_APPEND:
		return do_append(a, p, n, r);
	case AAM_IPC_AUDIT_CHECKPOINT:
		return do_checkpoint(a, n, r);
	case VAULT_IPC_AUDIT_INFO:
		return do_info(a, st, n, r);
	case VAULT_IPC_AUDIT_RECORDS:
		return do_records(a, p, n, false, r);
	case VAULT_IPC_AUDIT_CHECKPOINTS:
		return do_records(a, p, n, true, r);
	case VAULT_IPC_AUDIT_PREFIX:
		return do_prefix(a, p, n, r);
	case VAULT_IPC_AUDIT_PROVE:
		return do_prove(a, p, n, r);
	case VAULT_IPC_AUDIT_SEQ_AT:
		return do_seq_at(a, p, n, r);
	case VAULT_IPC_AUDIT_HASH:
		return do_hash(st, p, n, r);
	default:
		return aam_ipc_reply_error(r, AAM_E_PERM, "unknown request type");
	}
}
