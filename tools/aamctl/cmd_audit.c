/*
 * aamctl audit: read the vault's signed audit log through the admin socket.
 *
 *   aamctl audit export [--since T] [--until T] [--format jsonl|ocsf] --out DIR
 *   aamctl audit tail [-f] [-n N]
 *   aamctl audit prove SEQ [--size N] [--out DIR]
 *   aamctl audit hash              (the value on standard input, never in argv)
 *
 * The export layout is docs/AUDIT.md section 4, checked by
 * aam-audit-verify; records are written as the vault stored them (the
 * exact leaf bytes), never re-serialised.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "aam/err.h"
#include "common/buf.h"
#include "common/config.h"
#include "common/ipc.h"
#include "common/merkle.h"
#include "common/note.h"
#include "common/secret.h"
#include "tools/aamctl/aamctl.h"
#include "vault/proto.h"

#define CALL_MS     60000
#define SEGMENT_MAX 100000u /* records per segment file */

static const char audit_usage[] =
        "usage: aamctl audit export [--since T] [--until T] [--format jsonl|ocsf] --out DIR\n"
        "       aamctl audit tail [-f] [-n N]\n"
        "       aamctl audit prove SEQ [--size N] [--out DIR]\n"
        "       aamctl audit hash            (reads the value from standard input)\n"
        "T is RFC 3339 UTC (2026-01-31T00:00:00Z or with .ffffff).\n";

static int
usage(const char *msg)
{
	if (msg != NULL)
		fprintf(stderr, "aamctl audit: %s\n", msg);
	fputs(audit_usage, stderr);
	return AAMCTL_EXIT_USAGE;
}

static int
connect_admin(const struct aam_cli *cli, struct aam_ipc_client **out)
{
	struct aam_config cfg;
	char err[512];
	if (aam_config_load(cli->config_path, &cfg, err, sizeof(err)) != AAM_OK ||
	    aam_config_require(&cfg, "vault", err, sizeof(err)) != AAM_OK) {
		fprintf(stderr, "aamctl audit: %s\n", err);
		return AAM_E_CONFIG;
	}
	int rc = aam_ipc_client_connect(cfg.vault.sockets.admin, 5000, out);
	if (rc != AAM_OK)
		fprintf(stderr, "aamctl audit: cannot reach the vault at %s: %s\n",
		        cfg.vault.sockets.admin, aam_strerror(rc));
	aam_config_uninit(&cfg);
	return rc;
}

static int
call(struct aam_ipc_client *c, uint16_t type, const struct aam_buf *req, struct aam_buf *reply)
{
	aam_buf_reset(reply);
	int rc = aam_ipc_call(c, type, req != NULL ? req->data : NULL, req != NULL ? req->len : 0,
	                      CALL_MS, NULL, reply);
	if (rc != AAM_OK) {
		const char *msg = reply->len > 0 ? aam_buf_cstr(reply) : aam_strerror(rc);
		fprintf(stderr, "aamctl audit: %s (%s)\n", msg, aam_err_code(rc));
	}
	return rc;
}

struct info {
	char origin[AAM_NOTE_ORIGIN_MAX + 1];
	uint64_t size, signed_size;
	bool healthy;
	uint8_t spki[128];
	size_t spki_len;
};

static int
get_info(struct aam_ipc_client *c, struct info *in)
{
	struct aam_buf reply;
	aam_buf_init(&reply, AAM_IPC_MAX_PAYLOAD);
	int rc = call(c, VAULT_IPC_AUDIT_INFO, NULL, &reply);
	if (rc == AAM_OK) {
		struct aam_ipc_reader r;
		aam_ipc_reader_init(&r, reply.data, reply.len);
		uint8_t h = 0;
		const uint8_t *k = NULL;
		vault_ipc_get_strbuf(&r, in->origin, sizeof(in->origin));
		aam_ipc_get_u64(&r, &in->size);
		aam_ipc_get_u64(&r, &in->signed_size);
		aam_ipc_get_u8(&r, &h);
		aam_ipc_get_bytes(&r, sizeof(in->spki), &k, &in->spki_len);
		if (aam_ipc_reader_end(&r) != AAM_OK) {
			fprintf(stderr, "aamctl audit: malformed answer from the vault\n");
			rc = AAM_E_PROTO;
		} else {
			in->healthy = h != 0;
			if (in->spki_len > 0)
				memcpy(in->spki, k, in->spki_len);
		}
	}
	aam_buf_uninit(&reply);
	return rc;
}

static int
seq_at(struct aam_ipc_client *c, const char *t, uint64_t *seq)
{
	struct aam_buf req, reply;
	aam_buf_init(&req, 128);
	aam_buf_init(&reply, 4096);
	aam_ipc_put_str(&req, t);
	int rc = call(c, VAULT_IPC_AUDIT_SEQ_AT, &req, &reply);
	if (rc == AAM_OK) {
		struct aam_ipc_reader r;
		aam_ipc_reader_init(&r, reply.data, reply.len);
		aam_ipc_get_u64(&r, seq);
		rc = aam_ipc_reader_end(&r);
	}
	aam_buf_uninit(&req);
	aam_buf_uninit(&reply);
	return rc;
}

/* Normalises an RFC 3339 UTC time to the stored form (six fractional digits). */
static int
norm_time(const char *in, char out[32])
{
	int y, mo, d, h, mi, s, n = 0;
	if (sscanf(in, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &n) != 6)
		return AAM_E_INVAL;
	const char *p = in + n;
	char frac[7] = "000000";
	if (*p == '.') {
		p++;
		size_t k = 0;
		while (*p >= '0' && *p <= '9') {
			if (k < 6)
				frac[k] = *p;
			k++;
			p++;
		}
		if (k == 0)
			return AAM_E_INVAL;
	}
	if (strcmp(p, "Z") != 0)
		return AAM_E_INVAL;
	snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%sZ", y, mo, d, h, mi, s, frac);
	return AAM_OK;
}

/* ---- reading pages ---------------------------------------------------------------- */

typedef int (*rec_fn)(void *ctx, uint64_t seq, const uint8_t *rec, size_t len);

/* Calls FN for records FROM..END-1, page by page. */
static int
for_records(struct aam_ipc_client *c, uint64_t from, uint64_t end, rec_fn fn, void *ctx)
{
	struct aam_buf req, reply;
	aam_buf_init(&req, 64);
	aam_buf_init(&reply, AAM_IPC_MAX_PAYLOAD);
	int rc = AAM_OK;
	uint64_t next = from;
	while (rc == AAM_OK && next < end) {
		aam_buf_reset(&req);
		aam_ipc_put_u64(&req, next);
		uint64_t want = end - next;
		aam_ipc_put_u32(&req, want > 100000 ? 100000 : (uint32_t)want);
		rc = call(c, VAULT_IPC_AUDIT_RECORDS, &req, &reply);
		if (rc != AAM_OK)
			break;
		struct aam_ipc_reader r;
		aam_ipc_reader_init(&r, reply.data, reply.len);
		uint32_t n = 0;
		aam_ipc_get_u32(&r, &n);
		if (n == 0) {
			fprintf(stderr, "aamctl audit: record %" PRIu64 " is missing\n", next);
			rc = AAM_E_NOTFOUND;
			break;
		}
		for (uint32_t i = 0; i < n && rc == AAM_OK; i++) {
			uint64_t seq = 0;
			const uint8_t *p = NULL;
			size_t len = 0;
			aam_ipc_get_u64(&r, &seq);
			aam_ipc_get_bytes(&r, AAM_IPC_MAX_PAYLOAD, &p, &len);
			if (r.err != AAM_OK || seq != next) {
				rc = AAM_E_PROTO;
				break;
			}
			rc = fn(ctx, seq, p, len);
			next++;
		}
		if (rc == AAM_OK && aam_ipc_reader_end(&r) != AAM_OK)
			rc = AAM_E_PROTO;
	}
	aam_buf_uninit(&req);
	aam_buf_uninit(&reply);
	return rc;
}

typedef int (*cp_fn)(void *ctx, uint64_t size, const uint8_t *note, size_t len);

static int
for_checkpoints(struct aam_ipc_client *c, uint64_t min, uint64_t max, cp_fn fn, void *ctx)
{
	struct aam_buf req, reply;
	aam_buf_init(&req, 64);
	aam_buf_init(&reply, AAM_IPC_MAX_PAYLOAD);
	int rc = AAM_OK;
	uint64_t next = min;
	for (;;) {
		aam_buf_reset(&req);
		aam_ipc_put_u64(&req, next);
		aam_ipc_put_u64(&req, max);
		rc = call(c, VAULT_IPC_AUDIT_CHECKPOINTS, &req, &reply);
		if (rc != AAM_OK)
			break;
		struct aam_ipc_reader r;
		aam_ipc_reader_init(&r, reply.data, reply.len);
		uint32_t n = 0;
		aam_ipc_get_u32(&r, &n);
		uint64_t size = 0;
		for (uint32_t i = 0; i < n && rc == AAM_OK; i++) {
			const uint8_t *p = NULL;
			size_t len = 0;
			aam_ipc_get_u64(&r, &size);
			aam_ipc_get_bytes(&r, AAM_NOTE_MAX_LEN, &p, &len);
			if (r.err != AAM_OK)
				rc = AAM_E_PROTO;
			else
				rc = fn(ctx, size, p, len);
		}
		if (rc == AAM_OK && aam_ipc_reader_end(&r) != AAM_OK)
			rc = AAM_E_PROTO;
		if (rc != AAM_OK || n < VAULT_IPC_AUDIT_CP_PAGE || size >= max)
			break;
		next = size + 1;
	}
	aam_buf_uninit(&req);
	aam_buf_uninit(&reply);
	return rc;
}

/* ---- files ------------------------------------------------------------------ */

static int
write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (f == NULL)
		return AAM_E_IO;
	bool ok = fwrite(p, 1, n, f) == n;
	ok = fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
	return fclose(f) == 0 && ok ? AAM_OK : AAM_E_IO;
}

static void
hex32(const uint8_t h[32], char out[65])
{
	static const char d[] = "0123456789abcdef";
	for (int i = 0; i < 32; i++) {
		out[2 * i] = d[h[i] >> 4];
		out[2 * i + 1] = d[h[i] & 15];
	}
	out[64] = '\0';
}

static int
sha_file(const char *path, char hex[65])
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return AAM_E_IO;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (md == NULL) {
		fclose(f);
		return AAM_E_NOMEM;
	}
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	char buf[65536];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		EVP_DigestUpdate(md, buf, n);
	bool err = ferror(f) != 0;
	fclose(f);
	uint8_t h[32];
	EVP_DigestFinal_ex(md, h, NULL);
	EVP_MD_CTX_free(md);
	hex32(h, hex);
	return err ? AAM_E_IO : AAM_OK;
}

/* The key files: PEM and vkey of the current audit key. */
static int
write_keys(const char *dir, const struct info *in, struct aam_buf *man)
{
	const unsigned char *p = in->spki;
	EVP_PKEY *k = in->spki_len > 0 ? d2i_PUBKEY(NULL, &p, (long)in->spki_len) : NULL;
	if (k == NULL) {
		fprintf(stderr,
		        "aamctl audit: the vault has no audit key (run aamctl keys init)\n");
		return AAM_E_CONFIG;
	}
	char path[4096], hex[65];
	snprintf(path, sizeof(path), "%s/key.pem", dir);
	FILE *f = fopen(path, "wb");
	int rc = f != NULL && PEM_write_PUBKEY(f, k) == 1 ? AAM_OK : AAM_E_IO;
	if (f != NULL && fclose(f) != 0)
		rc = AAM_E_IO;
	if (rc == AAM_OK)
		rc = sha_file(path, hex);
	if (rc == AAM_OK)
		aam_buf_printf(man, "key key.pem %s\n", hex);
	char vkey[AAM_NOTE_VKEY_MAX + 1];
	size_t vlen = 0;
	if (rc == AAM_OK)
		rc = aam_note_vkey_format(in->origin, k, vkey, sizeof(vkey) - 1, &vlen);
	if (rc == AAM_OK) {
		vkey[vlen++] = '\n';
		snprintf(path, sizeof(path), "%s/key.vkey", dir);
		rc = write_file(path, vkey, vlen);
	}
	if (rc == AAM_OK)
		rc = sha_file(path, hex);
	if (rc == AAM_OK)
		aam_buf_printf(man, "key key.vkey %s\n", hex);
	EVP_PKEY_free(k);
	return rc;
}

/* ---- export ------------------------------------------------------------------ */

struct exp {
	const char *dir;
	struct aam_buf *man;
	FILE *seg, *leaves;
	char seg_rel[64];
	uint64_t seg_n;
	uint64_t first;
	bool ocsf;
	const char *origin;
	int rc;
};

static int
close_segment(struct exp *e)
{
	if (e->seg == NULL)
		return AAM_OK;
	int rc = fclose(e->seg) == 0 ? AAM_OK : AAM_E_IO;
	e->seg = NULL;
	char path[4096], hex[65];
	snprintf(path, sizeof(path), "%s/%s", e->dir, e->seg_rel);
	if (rc == AAM_OK)
		rc = sha_file(path, hex);
	if (rc == AAM_OK)
		aam_buf_printf(e->man, "segment %s %" PRIu64 " %s\n", e->seg_rel, e->seg_n, hex);
	return rc;
}

static int64_t
time_ms(const char *t)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	unsigned frac = 0;
	if (t == NULL || sscanf(t, "%d-%d-%dT%d:%d:%d.%6uZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
	                        &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &frac) != 7)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm) * 1000 + frac / 1000;
}

static const char *
jstr(const json_t *o, const char *a, const char *b)
{
	const json_t *v = json_object_get(o, a);
	if (b != NULL)
		v = json_object_get(v, b);
	return json_string_value(v);
}

/*
 * One record as an OCSF 1.x event: Authentication (3002) for attestation,
 * API Activity (6003) for everything else; the record itself is kept
 * under unmapped.aam so nothing is lost.
 */
static json_t *
ocsf_event(const json_t *rec, const char *origin)
{
	const char *type = jstr(rec, "type", NULL);
	bool auth = type != NULL && strncmp(type, "attest.", 7) == 0;
	const char *eff = jstr(rec, "decision", "effect");
	json_int_t status =
	        json_integer_value(json_object_get(json_object_get(rec, "outcome"), "status"));
	bool failed = (type != NULL && strcmp(type, "attest.fail") == 0) ||
	              (eff != NULL && strcmp(eff, "deny") == 0) || status >= 400;
	int activity = 99;
	const char *op = jstr(rec, "action", "operation");
	if (auth) {
		activity = 1; /* Logon */
	} else if (op != NULL) {
		if (strcmp(op, "read") == 0 || strcmp(op, "search") == 0 ||
		    strcmp(op, "get") == 0 || strcmp(op, "GET") == 0)
			activity = 2;
		else if (strcmp(op, "create") == 0 || strcmp(op, "POST") == 0)
			activity = 1;
		else if (strcmp(op, "update") == 0 || strcmp(op, "PUT") == 0 ||
		         strcmp(op, "PATCH") == 0)
			activity = 3;
		else if (strcmp(op, "delete") == 0 || strcmp(op, "DELETE") == 0)
			activity = 4;
	}
	static const char *const api_names[] = {"Unknown", "Create", "Read", "Update", "Delete"};
	int class_uid = auth ? 3002 : 6003;
	json_t *ev = json_object();
	json_object_set_new(ev, "class_uid", json_integer(class_uid));
	json_object_set_new(ev, "class_name",
	                    json_string(auth ? "Authentication" : "API Activity"));
	json_object_set_new(ev, "category_uid", json_integer(auth ? 3 : 6));
	json_object_set_new(
	        ev, "category_name",
	        json_string(auth ? "Identity & Access Management" : "Application Activity"));
	json_object_set_new(ev, "activity_id", json_integer(activity));
	json_object_set_new(ev, "activity_name",
	                    json_string(auth             ? "Logon"
	                                : activity == 99 ? "Other"
	                                                 : api_names[activity]));
	json_object_set_new(ev, "type_uid", json_integer(class_uid * 100 + activity));
	json_object_set_new(ev, "time", json_integer(time_ms(jstr(rec, "time", NULL))));
	json_object_set_new(ev, "severity_id", json_integer(failed ? 3 : 1));
	json_object_set_new(ev, "status_id", json_integer(failed ? 2 : 1));
	json_object_set_new(ev, "status", json_string(failed ? "Failure" : "Success"));
	if (status != 0) {
		char sc[16];
		snprintf(sc, sizeof(sc), "%lld", (long long)status);
		json_object_set_new(ev, "status_code", json_string(sc));
	}
	const char *reason = jstr(rec, "decision", "reason");
	if (reason != NULL)
		json_object_set_new(ev, "status_detail", json_string(reason));
	json_t *user = json_object();
	const char *spiffe = jstr(rec, "identity", "spiffe_id");
	const char *owner = jstr(rec, "identity", "owner");
	if (spiffe != NULL)
		json_object_set_new(user, "uid", json_string(spiffe));
	if (owner != NULL)
		json_object_set_new(user, "name", json_string(owner));
	const char *team = jstr(rec, "identity", "team");
	if (team != NULL)
		json_object_set_new(user, "groups", json_pack("[{s:s}]", "name", team));
	json_t *actor = json_object();
	json_object_set_new(actor, "user", user);
	json_object_set_new(ev, "actor", actor);
	if (auth) {
		json_object_set_new(ev, "user", json_deep_copy(user));
		const char *m = jstr(rec, "identity", "attestation");
		if (m != NULL)
			json_object_set_new(ev, "auth_protocol", json_string(m));
	} else {
		json_t *api = json_object();
		json_object_set_new(api, "operation", json_string(op != NULL ? op : type));
		const char *svc = jstr(rec, "action", "resource");
		if (svc == NULL)
			svc = jstr(rec, "model", "route");
		if (svc != NULL)
			json_object_set_new(api, "service", json_pack("{s:s}", "name", svc));
		const char *rid = jstr(rec, "request_id", NULL);
		if (rid != NULL)
			json_object_set_new(api, "request", json_pack("{s:s}", "uid", rid));
		json_object_set_new(ev, "api", api);
	}
	char uid[32];
	snprintf(uid, sizeof(uid), "%lld",
	         (long long)json_integer_value(json_object_get(rec, "seq")));
	json_t *meta = json_pack("{s:s, s:{s:s, s:s, s:s}, s:s, s:s}", "version", "1.1.0",
	                         "product", "name", "Agent Access Manager", "vendor_name", "AAM",
	                         "version", AAM_VERSION, "uid", uid, "log_name", origin);
	const char *tp = jstr(rec, "traceparent", NULL);
	if (meta != NULL && tp != NULL)
		json_object_set_new(meta, "correlation_uid", json_string(tp));
	json_object_set_new(ev, "metadata", meta);
	json_object_set_new(ev, "unmapped", json_pack("{s:O}", "aam", rec));
	return ev;
}

static int
export_rec(void *ctx, uint64_t seq, const uint8_t *rec, size_t len)
{
	struct exp *e = ctx;
	if (e->ocsf) {
		json_error_t je;
		json_t *v = json_loadb((const char *)rec, len, 0, &je);
		json_t *ev = v != NULL ? ocsf_event(v, e->origin) : NULL;
		int rc = ev != NULL && json_dumpf(ev, e->seg, JSON_COMPACT) == 0 &&
		                         fputc('\n', e->seg) != EOF
		                 ? AAM_OK
		                 : AAM_E_IO;
		json_decref(ev);
		json_decref(v);
		return rc;
	}
	if (e->seg != NULL && e->seg_n >= SEGMENT_MAX) {
		int rc = close_segment(e);
		if (rc != AAM_OK)
			return rc;
	}
	if (e->seg == NULL) {
		snprintf(e->seg_rel, sizeof(e->seg_rel), "records/%012" PRIu64 ".jsonl", seq);
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", e->dir, e->seg_rel);
		e->seg = fopen(path, "wb");
		if (e->seg == NULL)
			return AAM_E_IO;
		e->seg_n = 0;
	}
	if (fwrite(rec, 1, len, e->seg) != len || fputc('\n', e->seg) == EOF)
		return AAM_E_IO;
	e->seg_n++;
	uint8_t h[32];
	char hex[65];
	int rc = aam_merkle_leaf_hash(rec, len, h);
	if (rc != AAM_OK)
		return rc;
	hex32(h, hex);
	return fprintf(e->leaves, "%s\n", hex) > 0 ? AAM_OK : AAM_E_IO;
}

static int
export_cp(void *ctx, uint64_t size, const uint8_t *note, size_t len)
{
	struct exp *e = ctx;
	char rel[64], path[4096], hex[65];
	snprintf(rel, sizeof(rel), "checkpoints/%" PRIu64, size);
	snprintf(path, sizeof(path), "%s/%s", e->dir, rel);
	int rc = write_file(path, note, len);
	if (rc == AAM_OK)
		rc = sha_file(path, hex);
	if (rc == AAM_OK)
		aam_buf_printf(e->man, "checkpoint %s %s\n", rel, hex);
	return rc;
}

/* Finds the smallest checkpoint size >= AT (or 0 when none). */
static int
min_cp_cb(void *ctx, uint64_t size, const uint8_t *note, size_t len)
{
	(void)note;
	(void)len;
	uint64_t *found = ctx;
	if (*found == 0)
		*found = size;
	return AAM_E_BUSY; /* one is enough */
}

static int
next_checkpoint(struct aam_ipc_client *c, uint64_t at, uint64_t *size)
{
	*size = 0;
	int rc = for_checkpoints(c, at, INT64_MAX, min_cp_cb, size);
	return rc == AAM_E_BUSY ? AAM_OK : rc;
}

static int
mkdir_p1(const char *path)
{
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
		return AAM_E_IO;
	return AAM_OK;
}

static int
audit_export(struct aam_ipc_client *c, const char *since, const char *until, bool ocsf,
             const char *dir)
{
	struct info in;
	int rc = get_info(c, &in);
	if (rc != AAM_OK)
		return rc;
	uint64_t first = 0, end = in.signed_size;
	char t[32];
	if (since != NULL) {
		if (norm_time(since, t) != AAM_OK)
			return usage("--since: not an RFC 3339 UTC time");
		if ((rc = seq_at(c, t, &first)) != AAM_OK)
			return rc;
	}
	if (until != NULL) {
		if (norm_time(until, t) != AAM_OK)
			return usage("--until: not an RFC 3339 UTC time");
		uint64_t u = 0, cp = 0;
		if ((rc = seq_at(c, t, &u)) != AAM_OK)
			return rc;
		/* The export must end at a checkpoint: extend to the next one. */
		if ((rc = next_checkpoint(c, u > first ? u : first, &cp)) != AAM_OK)
			return rc;
		end = cp != 0 ? cp : in.signed_size;
	}
	if (first > end) {
		/* Everything asked for is newer than the last checkpoint. */
		first = end;
	}
	if (end < in.size)
		fprintf(stderr,
		        "aamctl audit: note: %" PRIu64 " newer record(s) are not covered by a "
		        "checkpoint yet and are not exported\n",
		        in.size - end);
	if (mkdir_p1(dir) != AAM_OK) {
		fprintf(stderr, "aamctl audit: cannot create %s: %s\n", dir, strerror(errno));
		return AAM_E_IO;
	}
	char path[4096];
	struct aam_buf man;
	aam_buf_init(&man, 16u * 1024 * 1024);
	struct exp e = {.dir = dir, .man = &man, .first = first, .ocsf = ocsf, .origin = in.origin};
	if (ocsf) {
		snprintf(path, sizeof(path), "%s/ocsf.jsonl", dir);
		e.seg = fopen(path, "wb");
		rc = e.seg != NULL ? for_records(c, first, end, export_rec, &e) : AAM_E_IO;
		if (e.seg != NULL && fclose(e.seg) != 0 && rc == AAM_OK)
			rc = AAM_E_IO;
		if (rc == AAM_OK)
			printf("exported %" PRIu64 " OCSF event(s) (seq %" PRIu64 "..%" PRIu64
			       ") to %s\n",
			       end - first, first, end > first ? end - 1 : first, path);
		aam_buf_uninit(&man);
		return rc;
	}
	snprintf(path, sizeof(path), "%s/records", dir);
	rc = mkdir_p1(path);
	snprintf(path, sizeof(path), "%s/checkpoints", dir);
	if (rc == AAM_OK)
		rc = mkdir_p1(path);
	aam_buf_printf(
	        &man, "aam-audit-export 1\norigin %s\nrecords %" PRIu64 "\nfirst-seq %" PRIu64 "\n",
	        in.origin, end - first, first);
	if (end > first)
		aam_buf_printf(&man, "last-seq %" PRIu64 "\n", end - 1);
	else
		aam_buf_printf(&man, "last-seq -\n");
	/* The prefix: the right edge of the tree before the first exported record. */
	if (rc == AAM_OK && first > 0) {
		struct aam_buf req, reply;
		aam_buf_init(&req, 16);
		aam_buf_init(&reply, 8192);
		aam_ipc_put_u64(&req, first);
		rc = call(c, VAULT_IPC_AUDIT_PREFIX, &req, &reply);
		struct aam_ipc_reader r;
		aam_ipc_reader_init(&r, reply.data, reply.len);
		uint32_t n = 0;
		if (rc == AAM_OK)
			aam_ipc_get_u32(&r, &n);
		for (uint32_t i = 0; rc == AAM_OK && i < n && r.err == AAM_OK; i++) {
			const uint8_t *h;
			char b64[48];
			aam_ipc_get_fixed(&r, 32, &h);
			if (r.err == AAM_OK &&
			    aam_note_b64_encode(h, 32, b64, sizeof(b64), NULL) == AAM_OK)
				aam_buf_printf(&man, "prefix %s\n", b64);
		}
		if (rc == AAM_OK && aam_ipc_reader_end(&r) != AAM_OK)
			rc = AAM_E_PROTO;
		aam_buf_uninit(&req);
		aam_buf_uninit(&reply);
	}
	snprintf(path, sizeof(path), "%s/leaves", dir);
	e.leaves = rc == AAM_OK ? fopen(path, "wb") : NULL;
	if (rc == AAM_OK && e.leaves == NULL)
		rc = AAM_E_IO;
	if (rc == AAM_OK)
		rc = for_records(c, first, end, export_rec, &e);
	int crc = close_segment(&e);
	if (rc == AAM_OK)
		rc = crc;
	if (e.leaves != NULL && fclose(e.leaves) != 0 && rc == AAM_OK)
		rc = AAM_E_IO;
	char hex[65];
	if (rc == AAM_OK && (rc = sha_file(path, hex)) == AAM_OK)
		aam_buf_printf(&man, "leaves leaves %s\n", hex);
	if (rc == AAM_OK)
		rc = for_checkpoints(c, first, end, export_cp, &e);
	if (rc == AAM_OK)
		rc = write_keys(dir, &in, &man);
	if (rc == AAM_OK && aam_buf_failed(&man))
		rc = man.err;
	if (rc == AAM_OK) {
		snprintf(path, sizeof(path), "%s/manifest", dir);
		rc = write_file(path, man.data, man.len);
	}
	aam_buf_uninit(&man);
	if (rc != AAM_OK) {
		fprintf(stderr, "aamctl audit: export to %s failed: %s\n", dir, aam_strerror(rc));
		return rc;
	}
	printf("exported %" PRIu64 " record(s) (seq %" PRIu64 "..%" PRIu64 ") to %s\n", end - first,
	       first, end > first ? end - 1 : first, dir);
	printf("verify with: aam-audit-verify --key <the audit key you hold> %s\n", dir);
	return AAM_OK;
}

/* ---- tail, prove, hash ------------------------------------------------------------ */

static int
print_rec(void *ctx, uint64_t seq, const uint8_t *rec, size_t len)
{
	(void)ctx;
	(void)seq;
	fwrite(rec, 1, len, stdout);
	fputc('\n', stdout);
	return AAM_OK;
}

static int
audit_tail(struct aam_ipc_client *c, bool follow, uint64_t n)
{
	struct info in;
	int rc = get_info(c, &in);
	if (rc != AAM_OK)
		return rc;
	uint64_t next = in.size > n ? in.size - n : 0;
	for (;;) {
		rc = for_records(c, next, in.size, print_rec, NULL);
		fflush(stdout);
		if (rc != AAM_OK || !follow)
			return rc;
		next = in.size;
		struct timespec ts = {0, 250 * 1000000L};
		nanosleep(&ts, NULL);
		if ((rc = get_info(c, &in)) != AAM_OK)
			return rc;
	}
}

static int
audit_prove(struct aam_ipc_client *c, uint64_t seq, uint64_t size, const char *dir)
{
	struct aam_buf req, reply;
	aam_buf_init(&req, 32);
	aam_buf_init(&reply, AAM_IPC_MAX_PAYLOAD);
	aam_ipc_put_u64(&req, seq);
	aam_ipc_put_u64(&req, size);
	int rc = call(c, VAULT_IPC_AUDIT_PROVE, &req, &reply);
	struct aam_ipc_reader r;
	aam_ipc_reader_init(&r, reply.data, reply.len);
	const uint8_t *note = NULL, *rec = NULL, *proof = NULL;
	size_t nlen = 0, rlen = 0;
	uint32_t n = 0;
	if (rc == AAM_OK) {
		aam_ipc_get_u64(&r, &size);
		aam_ipc_get_bytes(&r, AAM_NOTE_MAX_LEN, &note, &nlen);
		aam_ipc_get_bytes(&r, AAM_IPC_MAX_PAYLOAD, &rec, &rlen);
		aam_ipc_get_u32(&r, &n);
		if (n <= AAM_MERKLE_MAX_PROOF)
			aam_ipc_get_fixed(&r, (size_t)n * 32, &proof);
		if (n > AAM_MERKLE_MAX_PROOF || aam_ipc_reader_end(&r) != AAM_OK) {
			fprintf(stderr, "aamctl audit: malformed answer from the vault\n");
			rc = AAM_E_PROTO;
		}
	}
	struct aam_buf pf;
	aam_buf_init(&pf, 8192);
	json_t *arr = json_array();
	for (uint32_t i = 0; rc == AAM_OK && i < n; i++) {
		char b64[48];
		aam_note_b64_encode(proof + (size_t)i * 32, 32, b64, sizeof(b64), NULL);
		aam_buf_printf(&pf, "%s\n", b64);
		json_array_append_new(arr, json_string(b64));
	}
	if (rc == AAM_OK && dir != NULL) {
		char path[4096];
		rc = mkdir_p1(dir);
		snprintf(path, sizeof(path), "%s/record", dir);
		if (rc == AAM_OK)
			rc = write_file(path, rec, rlen);
		snprintf(path, sizeof(path), "%s/proof", dir);
		if (rc == AAM_OK)
			rc = write_file(path, pf.data, pf.len);
		snprintf(path, sizeof(path), "%s/checkpoint", dir);
		if (rc == AAM_OK)
			rc = write_file(path, note, nlen);
		if (rc != AAM_OK)
			fprintf(stderr, "aamctl audit: cannot write the proof files to %s\n", dir);
	}
	if (rc == AAM_OK) {
		uint8_t leaf[32];
		char hex[65];
		aam_merkle_leaf_hash(rec, rlen, leaf);
		hex32(leaf, hex);
		json_t *out = json_pack("{s:I, s:I, s:s, s:s%, s:O, s:s%}", "index",
		                        (json_int_t)seq, "size", (json_int_t)size, "leaf_hash", hex,
		                        "record", (const char *)rec, rlen, "proof", arr,
		                        "checkpoint", (const char *)note, nlen);
		if (out == NULL) {
			rc = AAM_E_PARSE;
		} else {
			json_dumpf(out, stdout, JSON_INDENT(2));
			fputc('\n', stdout);
			json_decref(out);
		}
		if (dir != NULL)
			printf("verify with: aam-audit-verify inclusion --key <audit key> "
			       "--checkpoint %s/checkpoint --record %s/record --index %" PRIu64
			       " --proof %s/proof\n",
			       dir, dir, seq, dir);
	}
	json_decref(arr);
	aam_buf_uninit(&pf);
	aam_buf_uninit(&req);
	aam_buf_uninit(&reply);
	return rc;
}

static int
audit_hash(struct aam_ipc_client *c)
{
	/* The value comes from standard input only: argv is visible to every local user. */
	struct aam_buf v;
	aam_buf_init(&v, 64u * 1024 + 2);
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0)
		aam_buf_append(&v, buf, n);
	aam_wipe(buf, sizeof(buf));
	int rc = aam_buf_failed(&v) ? AAM_E_TOOBIG : AAM_OK;
	/* One trailing newline (from echo or a terminal) is not part of the value. */
	if (rc == AAM_OK && v.len > 0 && v.data[v.len - 1] == '\n')
		v.len--;
	if (rc == AAM_OK && v.len > 0 && v.data[v.len - 1] == '\r')
		v.len--;
	struct aam_buf req, reply;
	aam_buf_init(&req, 64u * 1024 + 16);
	aam_buf_init(&reply, 4096);
	if (rc == AAM_OK) {
		aam_ipc_put_bytes(&req, v.data, v.len);
		rc = call(c, VAULT_IPC_AUDIT_HASH, &req, &reply);
	} else {
		fprintf(stderr, "aamctl audit: the value exceeds 64 KiB\n");
	}
	if (rc == AAM_OK) {
		struct aam_ipc_reader r;
		aam_ipc_reader_init(&r, reply.data, reply.len);
		char h[128];
		vault_ipc_get_strbuf(&r, h, sizeof(h));
		rc = aam_ipc_reader_end(&r);
		if (rc == AAM_OK)
			printf("%s\n", h);
	}
	aam_buf_uninit_wipe(&v);
	aam_buf_uninit_wipe(&req);
	aam_buf_uninit(&reply);
	return rc;
}

static bool
parse_u64(const char *s, uint64_t *out)
{
	if (s == NULL || *s < '0' || *s > '9')
		return false;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > INT64_MAX)
		return false;
	*out = v;
	return true;
}

static int
run_audit(int argc, char **argv, const struct aam_cli *cli)
{
	if (argc < 2)
		return usage(NULL);
	const char *sub = argv[1];
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
		fputs(audit_usage, stdout);
		return 0;
	}
	const char *since = NULL, *until = NULL, *out = NULL, *format = "jsonl";
	bool follow = false;
	uint64_t n = 10, size = 0, seq = 0;
	bool have_seq = false;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "-f") == 0 || strcmp(a, "--follow") == 0) {
			follow = true;
			continue;
		}
		bool takes = strcmp(a, "--since") == 0 || strcmp(a, "--until") == 0 ||
		             strcmp(a, "--out") == 0 || strcmp(a, "--format") == 0 ||
		             strcmp(a, "--size") == 0 || strcmp(a, "-n") == 0;
		if (takes && val == NULL)
			return usage("option needs a value");
		if (strcmp(a, "--since") == 0)
			since = val;
		else if (strcmp(a, "--until") == 0)
			until = val;
		else if (strcmp(a, "--out") == 0)
			out = val;
		else if (strcmp(a, "--format") == 0)
			format = val;
		else if (strcmp(a, "--size") == 0) {
			if (!parse_u64(val, &size) || size == 0)
				return usage("--size: a positive tree size");
		} else if (strcmp(a, "-n") == 0) {
			if (!parse_u64(val, &n))
				return usage("-n: a number of records");
		} else if (!have_seq && strcmp(sub, "prove") == 0 && parse_u64(a, &seq)) {
			have_seq = true;
			continue;
		} else {
			return usage("unexpected argument");
		}
		i++;
	}
	int which = strcmp(sub, "export") == 0  ? 1
	            : strcmp(sub, "tail") == 0  ? 2
	            : strcmp(sub, "prove") == 0 ? 3
	            : strcmp(sub, "hash") == 0  ? 4
	                                        : 0;
	if (which == 0)
		return usage("unknown audit command");
	if (which == 1 && out == NULL)
		return usage("export needs --out DIR");
	if (which == 1 && strcmp(format, "jsonl") != 0 && strcmp(format, "ocsf") != 0)
		return usage("--format: jsonl or ocsf");
	if (which == 3 && !have_seq)
		return usage("prove needs SEQ");
	struct aam_ipc_client *c = NULL;
	if (connect_admin(cli, &c) != AAM_OK)
		return AAMCTL_EXIT_FAIL;
	int rc;
	switch (which) {
	case 1:
		rc = audit_export(c, since, until, strcmp(format, "ocsf") == 0, out);
		break;
	case 2:
		rc = audit_tail(c, follow, n);
		break;
	case 3:
		rc = audit_prove(c, seq, size, out);
		break;
	default:
		rc = audit_hash(c);
		break;
	}
	aam_ipc_client_free(c);
	if (rc == AAMCTL_EXIT_USAGE)
		return rc;
	return rc == AAM_OK ? AAMCTL_EXIT_OK : AAMCTL_EXIT_FAIL;
}

const struct aamctl_cmd aamctl_cmd_audit = {
        .name = "audit",
        .summary = "export, follow and prove the signed audit log; hash a sensitive value",
        .run = run_audit,
};
