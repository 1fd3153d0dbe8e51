/*
 * The vault's request dispatcher (see service.h).  Handlers decode their
 * payload completely before acting, answer with exactly one final reply,
 * and never put a secret value in a reply, an error or a log line.
 */
#include "vault/service.h"
#include "vault/audit_ipc.h"
#include "vault/proto.h"
#include "aam/err.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/secret.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vault_service {
	struct vault_store *st;
	struct vault_inject *vi;
	pthread_rwlock_t perm_lock;
	struct vault_perm *perm;
	struct vault_audit *audit; /* NULL: audit requests fail closed */
};

int
vault_service_new(struct vault_store *st, struct vault_inject *vi, struct vault_perm *perm,
                  struct vault_service **out)
{
	*out = NULL;
	if (st == NULL || perm == NULL)
		return AAM_E_INVAL;
	struct vault_service *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return AAM_E_NOMEM;
	s->st = st;
	s->vi = vi;
	s->perm = perm;
	pthread_rwlock_init(&s->perm_lock, NULL);
	*out = s;
	return AAM_OK;
}

void
vault_service_free(struct vault_service *s)
{
	if (s == NULL)
		return;
	vault_perm_free(s->perm);
	pthread_rwlock_destroy(&s->perm_lock);
	free(s);
}

void
vault_service_set_audit(struct vault_service *s, struct vault_audit *a)
{
	s->audit = a;
}

void
vault_service_set_perm(struct vault_service *s, struct vault_perm *perm)
{
	pthread_rwlock_wrlock(&s->perm_lock);
	struct vault_perm *old = s->perm;
	s->perm = perm;
	pthread_rwlock_unlock(&s->perm_lock);
	vault_perm_free(old);
}

int
vault_service_accept(void *ctx, const struct aam_ipc_peer *peer)
{
	struct vault_service_role *sr = ctx;
	struct vault_service *s = sr->svc;
	pthread_rwlock_rdlock(&s->perm_lock);
	int rc = vault_perm_peer(s->perm, sr->role, peer);
	pthread_rwlock_unlock(&s->perm_lock);
	if (rc != AAM_OK)
		aam_log(AAM_LOG_WARN, "vault.peer_refused",
		        AAM_F_STR("role", vault_role_name(sr->role)), AAM_F_INT("pid", peer->pid),
		        AAM_F_UINT("uid", peer->uid), AAM_F_UINT("gid", peer->gid));
	return rc;
}

/* ---- helpers --------------------------------------------------------------- */

static int
reply_buf(struct aam_ipc_replier *r, struct aam_buf *b)
{
	if (aam_buf_failed(b))
		return b->err;
	return aam_ipc_reply(r, b->data, b->len);
}

static int
bad_payload(struct aam_ipc_replier *r, const char *what)
{
	char msg[128];
	snprintf(msg, sizeof(msg), "malformed %s request", what);
	return aam_ipc_reply_error(r, AAM_E_PARSE, msg);
}

static bool
key_ok(uint8_t k)
{
	return k == VAULT_IPC_KEY_ISSUER || k == VAULT_IPC_KEY_AUDIT;
}

#define COPY(dst, src) snprintf((dst), sizeof(dst), "%s", (src))

static void
meta_to_ipc(const struct vault_secret_meta *m, struct vault_ipc_meta *o)
{
	memset(o, 0, sizeof(*o));
	COPY(o->name, m->name);
	const char *tn = vault_secret_type_name(m->type);
	COPY(o->type, tn != NULL ? tn : "");
	o->nbindings = (uint32_t)(m->nbindings <= 16 ? m->nbindings : 16);
	for (uint32_t i = 0; i < o->nbindings; i++)
		COPY(o->bindings[i], m->bindings[i]);
	COPY(o->header, m->header);
	COPY(o->param, m->param);
	COPY(o->username, m->username);
	COPY(o->aws_access_key_id, m->aws_access_key_id);
	COPY(o->aws_region, m->aws_region);
	COPY(o->aws_service, m->aws_service);
	COPY(o->token_url, m->token_url);
	COPY(o->client_id, m->client_id);
	COPY(o->scope, m->scope);
	o->version = (uint64_t)m->version;
	o->created = (uint64_t)m->created;
	o->rotated = (uint64_t)m->rotated;
	COPY(o->fingerprint, m->fingerprint);
}

static int
meta_from_ipc(const struct vault_ipc_meta *o, struct vault_secret_meta *m, char *why, size_t whylen)
{
	memset(m, 0, sizeof(*m));
	COPY(m->name, o->name);
	if (vault_secret_type_parse(o->type, &m->type) != AAM_OK) {
		snprintf(why, whylen, "unknown secret type");
		return AAM_E_INVAL;
	}
	if (o->nbindings == 0 || o->nbindings > VAULT_MAX_BINDINGS) {
		snprintf(why, whylen, "a secret needs 1 to %d bindings", VAULT_MAX_BINDINGS);
		return AAM_E_INVAL;
	}
	m->nbindings = o->nbindings;
	for (uint32_t i = 0; i < o->nbindings; i++) {
		char err[200];
		if (vault_binding_validate(o->bindings[i], err, sizeof(err)) != AAM_OK) {
			snprintf(why, whylen, "binding %u: %s", (unsigned)i + 1, err);
			return AAM_E_INVAL;
		}
		COPY(m->bindings[i], o->bindings[i]);
	}
	COPY(m->header, o->header);
	COPY(m->param, o->param);
	COPY(m->username, o->username);
	COPY(m->aws_access_key_id, o->aws_access_key_id);
	COPY(m->aws_region, o->aws_region);
	COPY(m->aws_service, o->aws_service);
	COPY(m->token_url, o->token_url);
	COPY(m->client_id, o->client_id);
	COPY(m->scope, o->scope);
	return AAM_OK;
}

/* Replies with NAME's metadata (and optionally its version count). */
static int
reply_meta(struct vault_service *s, struct aam_ipc_replier *r, const char *name, bool versions)
{
	struct vault_secret_meta *m = calloc(1, sizeof(*m));
	struct vault_ipc_meta *o = calloc(1, sizeof(*o));
	int rc = m == NULL || o == NULL ? AAM_E_NOMEM : vault_secret_get(s->st, name, m);
	size_t nv = 0;
	if (rc == AAM_OK && versions)
		rc = vault_secret_versions(s->st, name, &nv);
	if (rc == AAM_OK) {
		struct aam_buf b;
		aam_buf_init(&b, AAM_IPC_MAX_PAYLOAD);
		meta_to_ipc(m, o);
		vault_ipc_meta_encode(&b, o);
		if (versions)
			aam_ipc_put_u32(&b, (uint32_t)nv);
		rc = reply_buf(r, &b);
		aam_buf_uninit(&b);
	} else if (rc == AAM_E_NOTFOUND) {
		rc = aam_ipc_reply_error(r, rc, "no such secret");
	}
	free(m);
	free(o);
	return rc;
}

/*
 * The request payload is the server's heap copy; a value in it is wiped
 * once used, since it is the only plaintext copy outside the token.
 */
static void
wipe_payload(const uint8_t *p, size_t n)
{
	if (p != NULL)
		aam_wipe((void *)(uintptr_t)p, n);
}

/* ---- handlers -------------------------------------------------------------- */

static int
do_sign(struct vault_service *s, const uint8_t *p, size_t n, struct aam_ipc_replier *r)
{
	struct aam_ipc_reader rd;
	aam_ipc_reader_init(&rd, p, n);
	uint8_t key = 0;
	char kid[VAULT_IPC_MAX_KID + 1];
	const uint8_t *digest;
	size_t dlen = 0;
	aam_ipc_get_u8(&rd, &key);
	vault_ipc_get_strbuf(&rd, kid, sizeof(kid));
	aam_ipc_get_bytes(&rd, 64, &digest, &dlen);
	if (aam_ipc_reader_end(&rd) != AAM_OK || !key_ok(key))
		return bad_payload(r, "SIGN");
	/* The signer accepts only SHA-256 digests (OpenSSH monitor: valid sizes only). */
	if (dlen != 32)
		return aam_ipc_reply_error(r, AAM_E_INVAL, "digest must be exactly 32 bytes");
	enum vault_key_id id = (enum vault_key_id)key;
	struct vault_pubkey before, after;
	uint8_t sig[64];
	int rc = AAM_OK;
	/* A rotation between reading the kid and signing is detected and retried. */
	for (int attempt = 0; attempt < 2; attempt++) {
		rc = vault_pubkey(s->st, id, &before);
		if (rc == AAM_OK && kid[0] != '\0' && strcmp(kid, before.kid) != 0)
			return aam_ipc_reply_error(
			        r, AAM_E_NOTFOUND,
			        "kid is not the current key (previous keys never sign)");
		if (rc == AAM_OK)
			rc = vault_sign(s->st, id, digest, sig);
		if (rc == AAM_OK)
			rc = vault_pubkey(s->st, id, &after);
		if (rc != AAM_OK || strcmp(before.kid, after.kid) == 0)
			break;
		rc = AAM_E_BUSY;
	}
	if (rc != AAM_OK) {
		aam_log(AAM_LOG_ERROR, "vault.sign_failed", AAM_F_STR("key", vault_key_label(id)),
		        AAM_F_ERR(rc));
		return aam_ipc_reply_error(r, rc, "signing failed");
	}
	struct aam_buf b;
	aam_buf_init(&b, 256);
	aam_ipc_put_str(&b, before.kid);
	aam_ipc_put_fixed(&b, sig, 64);
	rc = reply_buf(r, &b);
	aam_buf_uninit(&b);
	return rc;
}

static int
do_pubkey(struct vault_service *s, const uint8_t *p, size_t n, struct aam_ipc_replier *r)
{
	struct aam_ipc_reader rd;
	aam_ipc_reader_init(&rd, p, n);
	uint8_t key = 0;
	aam_ipc_get_u8(&rd, &key);
	if (aam_ipc_reader_end(&rd) != AAM_OK || !key_ok(key))
		return bad_payload(r, "PUBKEY");
	struct vault_pubkey *pk = calloc(VAULT_IPC_MAX_PUBKEYS, sizeof(*pk));
	if (pk == NULL)
		return AAM_E_NOMEM;
	size_t npk = 0;
	int rc = vault_pubkeys_all(s->st, (enum vault_key_id)key, pk, VAULT_IPC_MAX_PUBKEYS, &npk);
	if (rc == AAM_OK) {
		struct aam_buf b;
		aam_buf_init(&b, AAM_IPC_MAX_PAYLOAD);
		aam_ipc_put_u32(&b, (uint32_t)npk);
		for (size_t i = 0; i < npk; i++) {
			aam_ipc_put_str(&b, pk[i].kid);
			aam_ipc_put_fixed(&b, pk[i].point, 65);
			aam_ipc_put_bytes(&b, pk[i].spki_der, pk[i].spki_len);
		}
		rc = reply_buf(r, &b);
		aam_buf_uninit(&b);
	}
	free(pk);
	return rc;
}

/*
 * Records an administrative change once it succeeded.  The change has
 * happened by then, so a failure to record it cannot undo it: it is
 * logged as an error (and the log's health turns red on the append path).
 */
static void
audit_admin(struct vault_service *s, unsigned uid, const char *type, const char *kind,
            const char *name)
{
	if (s->audit == NULL)
		return;
	char why[160] = "";
	int rc = vault_audit_admin(s->audit, type, kind, name, uid, why, sizeof(why));
	if (rc != AAM_OK)
		aam_log(AAM_LOG_ERROR, "vault.audit_admin_failed", AAM_F_STR("type", type),
		        AAM_F_STR("why", why), AAM_F_ERR(rc));
}

static int
do_keys_init(struct vault_service *s, unsigned uid, size_t n, struct aam_ipc_replier *r)
{
	if (n != 0)
		return bad_payload(r, "KEYS_INIT");
	int rc = vault_keys_init(s->st);
	if (rc == AAM_E_EXISTS)
		return aam_ipc_reply_error(r, rc, "keys already exist (use 'aamctl keys rotate')");
	if (rc != AAM_OK) {
		aam_log(AAM_LOG_ERROR, "vault.keys_init_failed", AAM_F_ERR(rc));
		return aam_ipc_reply_error(r, rc, "key generation failed");
	}
	aam_log(AAM_LOG_INFO, "vault.keys_init", AAM_F_STR("result", "ok"));
	audit_admin(s, uid, "admin.key.init", "key", "issuer,audit,secret,fingerprint");
	return aam_ipc_reply(r, NULL, 0);
}

static int
do_keys_rotate(struct vault_service *s, unsigned uid, const uint8_t *p, size_t n,
               struct aam_ipc_replier *r)
{
	struct aam_ipc_reader rd;
	aam_ipc_reader_init(&rd, p, n);
	uint8_t key = 0;
	aam_ipc_get_u8(&rd, &key);
	if (aam_ipc_reader_end(&rd) != AAM_OK || !key_ok(key))
		return bad_payload(r, "KEYS_ROTATE");
	enum vault_key_id id = (enum vault_key_id)key;
	int rc = vault_keys_rotate(s->st, id);
	struct vault_pubkey pk;
	if (rc == AAM_OK)
		rc = vault_pubkey(s->st, id, &pk);
	if (rc != AAM_OK) {
		aam_log(AAM_LOG_ERROR, "vault.keys_rotate_failed",
		        AAM_F_STR("key", vault_key_label(id)), AAM_F_ERR(rc));
		return aam_ipc_reply_error(r, rc, "key rotation failed");
	}
	aam_log(AAM_LOG_INFO, "vault.keys_rotate", AAM_F_STR("key", vault_key_label(id)),
	        AAM_F_STR("kid", pk.kid));
	audit_admin(s, uid, "admin.key.rotate", "key", vault_key_label(id));
	struct aam_buf b;
	aam_buf_init(&b, 128);
	aam_ipc_put_str(&b, pk.kid);
	rc = reply_buf(r, &b);
	aam_buf_uninit(&b);
	return rc;
}

static int
do_secret_put(struct vault_service *s, unsigned uid, const uint8_t *p, size_t n,
              struct aam_ipc_replier *r)
{
	struct vault_ipc_meta *o = calloc(1, sizeof(*o));
	struct vault_secret_meta *m = calloc(1, sizeof(*m));
	if (o == NULL || m == NULL) {
		free(o);
		free(m);
		return AAM_E_NOMEM;
	}
	struct aam_ipc_reader rd;
	aam_ipc_reader_init(&rd, p, n);
	const uint8_t *val = NULL;
	size_t vlen = 0;
	vault_ipc_meta_decode(&rd, o);
	aam_ipc_get_bytes(&rd, AAM_SECRET_MAX, &val, &vlen);
	int rc;
	char why[256] = "";
	if (aam_ipc_reader_end(&rd) != AAM_OK) {
		rc = bad_payload(r, "SECRET_PUT");
	} else if ((rc = meta_from_ipc(o, m, why, sizeof(why))) != AAM_OK) {
		rc = aam_ipc_reply_error(r, rc, why);
	} else if (vlen == 0) {
		rc = aam_ipc_reply_error(r, AAM_E_INVAL, "empty secret value");
	} else {
		rc = vault_secret_put(s->st, m, val, vlen);
		if (rc == AAM_OK) {
			aam_log(AAM_LOG_INFO, "vault.secret_put", AAM_F_STR("name", m->name),
			        AAM_F_STR("type", o->type), AAM_F_UINT("bindings", m->nbindings));
			audit_admin(s, uid, "admin.secret.put", "secret", m->name);
			rc = reply_meta(s, r, m->name, false);
		} else if (rc == AAM_E_EXISTS) {
			rc = aam_ipc_reply_error(r, rc,
			                         "a secret with this name exists (use rotate)");
		} else {
			aam_log(AAM_LOG_WARN, "vault.secret_put_failed", AAM_F_STR("name", m->name),
			        AAM_F_ERR(rc));
			rc = aam_ipc_reply_error(
			        r, rc,
			        rc == AAM_E_INVAL
			                ? "invalid name, type options or value for this type"
			                : "storing the secret failed");
		}
	}
	wipe_payload(p, n);
	free(o);
	free(m);
	return rc;
}

static int
do_secret_rotate(struct vault_service *s, unsigned uid, const uint8_t *p, size_t n,
                 struct aam_ipc_replier *r)
{
	struct aam_ipc_reader rd;
	aam_ipc_reader_init(&rd, p, n);
	char name[VAULT_IPC_MAX_NAME + 1];
	const uint8_t *val = NULL;
	size_t vlen = 0;
	vault_ipc_get_strbuf(&rd, name, sizeof(name));
	aam_ipc_get_bytes(&rd, AAM_SECRET_MAX, &val, &vlen);
	int rc;
	if (aam_ipc_reader_end(&rd) != AAM_OK) {
		rc = bad_payload(r, "SECRET_ROTATE");
	} else if (vlen == 0) {
		rc = aam_ipc_reply_error(r, AAM_E_INVAL, "empty secret value");
	} else {
		rc = vault_secret_rotate(s->st, name, val, vlen);
		if (rc == AAM_OK) {
			vault_inject_forget(s->vi);
			aam_log(AAM_LOG_INFO, "vault.secret_rotate", AAM_F_STR("name", name));
			audit_admin(s, uid, "admin.secret.rotate", "secret", name);
			rc = reply_meta(s, r, name, false);
		} else {
			rc = aam_ipc_reply_error(r, rc,
			                         rc == AAM_E_NOTFOUND
			                                 ? "no such secret"
			                                 : "rotating the secret failed");
		}
	}
	wipe_payload(p, n);
	return rc;
}

struct list_ctx {
	struct aam_buf *b;
	struct vault_ipc_meta *o;
	uint32_t n;
};

static int
list_cb(void *ctx, const struct vault_secret_meta *m)
{
	struct list_ctx *l = ctx;
	meta_to_ipc(m, l->o);
	l->n++;
	return vault_ipc_meta_encode(l->b, l->o);
}

static int
do_secret_list(struct vault_service *s, size_t n, struct aam_ipc_replier *r)
{
	if (n != 0)
		return bad_payload(r, "SECRET_LIST");
	struct aam_buf b;
	aam_buf_init(&b, 64u * 1024 * 1024);
	struct list_ctx l = {.b = &b, .o = calloc(1, sizeof(struct vault_ipc_meta))};
	if (l.o == NULL)
		return AAM_E_NOMEM;
	aam_ipc_put_u32(&b, 0); /* count, patched below */
	int rc = vault_secret_list(s->st, list_cb, &l);
	if (rc == AAM_OK && !aam_buf_failed(&b)) {
		b.data[0] = (uint8_t)(l.n >> 24);
		b.data[1] = (uint8_t)(l.n >> 16);
		b.data[2] = (uint8_t)(l.n >> 8);
		b.data[3] = (uint8_t)l.n;
		rc = reply_buf(r, &b);
	} else {
		rc = aam_ipc_reply_error(r, rc != AAM_OK ? rc : b.err, "listing secrets failed");
	}
	free(l.o);
	aam_buf_uninit(&b);
	return rc;
}

/* SHOW, DELETE and PRUNE take just a name. */
static int
do_secret_named(struct vault_service *s, unsigned uid, uint16_t type, const uint8_t *p, size_t n,
                struct aam_ipc_replier *r)
{
	struct aam_ipc_reader rd;
	aam_ipc_reader_init(&rd, p, n);
	char name[VAULT_IPC_MAX_NAME + 1];
	vault_ipc_get_strbuf(&rd, name, sizeof(name));
	if (aam_ipc_reader_end(&rd) != AAM_OK)
		return bad_payload(r, "secret");
	if (type == VAULT_IPC_SECRET_SHOW)
		return reply_meta(s, r, name, true);
	int rc = type == VAULT_IPC_SECRET_DELETE ? vault_secret_delete(s->st, name)
	                                         : vault_secret_prune(s->st, name);
	const char *what =
	        type == VAULT_IPC_SECRET_DELETE ? "vault.secret_delete" : "vault.secret_prune";
	if (rc != AAM_OK) {
		aam_log(AAM_LOG_WARN, what, AAM_F_STR("name", name), AAM_F_ERR(rc));
		return aam_ipc_reply_error(r, rc, rc == AAM_E_NOTFOUND ? "no such secret" : NULL);
	}
	vault_inject_forget(s->vi);
	aam_log(AAM_LOG_INFO, what, AAM_F_STR("name", name), AAM_F_STR("result", "ok"));
	audit_admin(s, uid,
	            type == VAULT_IPC_SECRET_DELETE ? "admin.secret.delete" : "admin.secret.prune",
	            "secret", name);
	return aam_ipc_reply(r, NULL, 0);
}

/* ---- dispatch ------------------------------------------------------------------ */

int
vault_service_handle(void *ctx, const struct aam_ipc_peer *peer, const struct aam_ipc_hdr *h,
                     const uint8_t *payload, struct aam_ipc_replier *r)
{
	struct vault_service_role *sr = ctx;
	struct vault_service *s = sr->svc;

	/* Continuation frames of an admitted INJECT carry their state. */
	if (aam_ipc_replier_state(r) != NULL)
		return vault_inject_frame(s->vi, peer, h, payload, r);

	enum vault_op op = vault_op_of(h->type, payload, h->len);
	char why[160];
	pthread_rwlock_rdlock(&s->perm_lock);
	int rc = vault_perm_check(s->perm, sr->role, peer, op, vault_store_ready(s->st), why,
	                          sizeof(why));
	pthread_rwlock_unlock(&s->perm_lock);
	if (rc != AAM_OK) {
		aam_log(AAM_LOG_WARN, "vault.request_refused",
		        AAM_F_STR("role", vault_role_name(sr->role)),
		        AAM_F_STR("op", vault_op_name(op)), AAM_F_UINT("type", h->type),
		        AAM_F_INT("pid", peer->pid), AAM_F_UINT("uid", peer->uid),
		        AAM_F_STR("reason", why));
		return aam_ipc_reply_error(r, AAM_E_PERM, why);
	}
	if (op == VAULT_OP_INJECT)
		return vault_inject_frame(s->vi, peer, h, payload, r);
	if (!aam_ipc_flags_final(h->flags))
		return aam_ipc_reply_error(r, AAM_E_PROTO, "only INJECT may span several frames");

	switch (op) {
	case VAULT_OP_SIGN_ISSUER:
	case VAULT_OP_SIGN_AUDIT:
		return do_sign(s, payload, h->len, r);
	case VAULT_OP_PUBKEY:
		return do_pubkey(s, payload, h->len, r);
	case VAULT_OP_AUDIT_APPEND:
	case VAULT_OP_AUDIT_CHECKPOINT:
	case VAULT_OP_AUDIT_READ:
	case VAULT_OP_AUDIT_HASH:
		return vault_audit_handle(s->audit, s->st, h->type, payload, h->len, r);
	case VAULT_OP_KEYS_INIT:
		return do_keys_init(s, (unsigned)peer->uid, h->len, r);
	case VAULT_OP_KEYS_ROTATE:
		return do_keys_rotate(s, (unsigned)peer->uid, payload, h->len, r);
	case VAULT_OP_SECRET_PUT:
		return do_secret_put(s, (unsigned)peer->uid, payload, h->len, r);
	case VAULT_OP_SECRET_ROTATE:
		return do_secret_rotate(s, (unsigned)peer->uid, payload, h->len, r);
	case VAULT_OP_SECRET_LIST:
		return do_secret_list(s, h->len, r);
	case VAULT_OP_SECRET_SHOW:
	case VAULT_OP_SECRET_DELETE:
	case VAULT_OP_SECRET_PRUNE:
		return do_secret_named(s, (unsigned)peer->uid, h->type, payload, h->len, r);
	default:
		return aam_ipc_reply_error(r, AAM_E_PERM, "unknown request type");
	}
}
