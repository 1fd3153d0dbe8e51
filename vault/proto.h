/*
 * aam-vault's IPC payloads: the message types this service adds to the
 * generic frames of include/aam/ipc.h, and their exact layouts.
 * docs/PROTOCOL.md ("Vault IPC payloads") is the normative description;
 * this header is its C form, shared by the daemon and its clients
 * (aamctl, aam-gateway, aam-attest).
 *
 * Field notation, all big-endian: u8/u16/u32/u64 integers; str = u32
 * length + UTF-8 without NUL; bytes = u32 length + raw bytes; fixed N = N
 * raw bytes.  A payload whose size is not exactly what its fields
 * describe is malformed (AAM_E_PARSE).
 *
 * The codec helpers are static inline so a client links nothing beyond
 * libaam-common.
 */
#ifndef AAM_VAULT_PROTO_H
#define AAM_VAULT_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "aam/err.h"
#include "aam/ipc.h"
#include "common/buf.h"

/*
 * Administration messages (the AAM_IPC_ADMIN_FIRST..LAST range), used by
 * aamctl on the admin socket.
 *
 *   KEYS_INIT      req: (empty)                 reply: (empty)
 *   KEYS_ROTATE    req: u8 key                  reply: str kid (the new key)
 *   SECRET_PUT     req: meta, bytes value       reply: meta
 *   SECRET_ROTATE  req: str name, bytes value   reply: meta
 *   SECRET_LIST    req: (empty)                 reply: u32 n, n x meta
 *   SECRET_SHOW    req: str name                reply: meta, u32 versions
 *   SECRET_DELETE  req: str name                reply: (empty)
 *   SECRET_PRUNE   req: str name                reply: (empty)
 *
 * Audit log, admin socket (read-only; docs/AUDIT.md, docs/PROTOCOL.md):
 *
 *   AUDIT_INFO        req: (empty)
 *                     reply: str origin, u64 size (records), u64 signed (size of
 *                     the newest checkpoint, 0 when none), u8 healthy,
 *                     bytes spki_der (the current audit key; empty before
 *                     keys init)
 *   AUDIT_RECORDS     req: u64 from, u32 max
 *                     reply: u32 n, n x (u64 seq, bytes record) -- seq order,
 *                     at most VAULT_IPC_AUDIT_PAGE bytes of records
 *   AUDIT_CHECKPOINTS req: u64 min, u64 max (tree sizes, inclusive)
 *                     reply: u32 n, n x (u64 size, bytes note) -- size order,
 *                     the newest note of each size, at most VAULT_IPC_AUDIT_CP_PAGE
 *   AUDIT_PREFIX      req: u64 size
 *                     reply: u32 n, n x fixed 32 -- right edge of the tree
 *   AUDIT_PROVE       req: u64 seq, u64 size (0: the newest checkpoint)
 *                     reply: u64 size, bytes note (the checkpoint of that size),
 *                     bytes record, u32 n, n x fixed 32 (RFC 9162 order)
 *   AUDIT_SEQ_AT      req: str time (RFC 3339, as records hold it)
 *                     reply: u64 seq (first record at or after TIME; the
 *                     log size when none)
 *   AUDIT_HASH        req: bytes value (at most 64 KiB)
 *                     reply: str "hmac-sha256:<hex>" as sensitive fields hold it
 *
 * Audit log, gateway and attest sockets (include/aam/ipc.h types):
 *
 *   AUDIT_APPEND      req: the event, JSON text (at most 64 KiB, no seq/time)
 *                     reply: u64 seq, sent only once the record is durable
 *   AUDIT_CHECKPOINT  req: (empty)   reply: the newest signed checkpoint note
 *
 * Signing (attest socket) and public keys (attest and admin sockets):
 *
 *   SIGN    req: u8 key, str kid ("" = current), bytes digest (exactly 32)
 *           reply: str kid, fixed 64 signature (r || s, JOSE form)
 *   PUBKEY  req: u8 key
 *           reply: u32 n, n x (str kid, fixed 65 point, bytes spki_der),
 *           the current key first, then previous ones (JWKS overlap)
 *
 * Injection (gateway socket):
 *
 *   INJECT  req: str credential, str method, str url, str scope
 *                ("" = the credential's configured scope; oauth2 only),
 *                u32 timeout_ms (0 = the vault's default),
 *                u32 n, n x (str name, bytes value), bytes body
 *           When the body is larger, the INJECT frame carries MORE and
 *           INJECT_BODY frames follow, each payload raw body bytes, the
 *           last one END (it may be empty).
 *   reply:  one INJECT_RESP_HEAD frame (MORE):
 *                u16 status, u32 n, n x (str name, bytes value),
 *                u32 credential_version (the version of the credential
 *                that was injected: 1, 2, ... after rotations; a
 *                decoder accepts a head without it, from an older vault,
 *                as version 0 = unknown)
 *           then INJECT_RESP_BODY frames (MORE) of raw body bytes as they
 *           arrive from the upstream, and a last INJECT_RESP_BODY (END),
 *           possibly empty.  An error frame may replace any of them
 *           (before the head: the request was refused or failed; after
 *           it: the body is truncated).  Redirects are returned as they
 *           are, never followed.
 */
enum vault_ipc_type {
	VAULT_IPC_KEYS_INIT = 0x0400,
	VAULT_IPC_KEYS_ROTATE = 0x0401,
	VAULT_IPC_SECRET_PUT = 0x0410,
	VAULT_IPC_SECRET_ROTATE = 0x0411,
	VAULT_IPC_SECRET_LIST = 0x0412,
	VAULT_IPC_SECRET_SHOW = 0x0413,
	VAULT_IPC_SECRET_DELETE = 0x0414,
	VAULT_IPC_SECRET_PRUNE = 0x0415,
	VAULT_IPC_AUDIT_INFO = 0x0420,
	VAULT_IPC_AUDIT_RECORDS = 0x0421,
	VAULT_IPC_AUDIT_CHECKPOINTS = 0x0422,
	VAULT_IPC_AUDIT_PREFIX = 0x0423,
	VAULT_IPC_AUDIT_PROVE = 0x0424,
	VAULT_IPC_AUDIT_SEQ_AT = 0x0425,
	VAULT_IPC_AUDIT_HASH = 0x0426,
};

/* Reply size bounds of the audit reads (the client pages on). */
#define VAULT_IPC_AUDIT_PAGE    (768u * 1024)
#define VAULT_IPC_AUDIT_CP_PAGE 1024u

/* Key selectors in SIGN, PUBKEY and KEYS_ROTATE (same values as enum vault_key_id). */
enum vault_ipc_key { VAULT_IPC_KEY_ISSUER = 0, VAULT_IPC_KEY_AUDIT = 1 };

/* Limits every peer can rely on. */
#define VAULT_IPC_MAX_NAME      127u
#define VAULT_IPC_MAX_KID       43u
#define VAULT_IPC_MAX_METHOD    16u
#define VAULT_IPC_MAX_URL       8192u
#define VAULT_IPC_MAX_SCOPE     255u
#define VAULT_IPC_MAX_HEADERS   100u
#define VAULT_IPC_MAX_HDR_NAME  256u
#define VAULT_IPC_MAX_HDR_VALUE 8192u
#define VAULT_IPC_MAX_PUBKEYS   16u

/*
 * Secret metadata ("meta" above), never a value:
 *   str name, str type, u32 nbindings (<= 16), nbindings x str binding,
 *   str header, str param, str username, str aws_access_key_id,
 *   str aws_region, str aws_service, str token_url, str client_id,
 *   str scope, u64 version, u64 created, u64 rotated, str fingerprint
 * Strings that do not apply to the type are empty.  In SECRET_PUT the
 * version, times and fingerprint are ignored (the vault sets them).
 */
struct vault_ipc_meta {
	char name[128];
	char type[32];
	uint32_t nbindings;
	char bindings[16][512];
	char header[64];
	char param[64];
	char username[128];
	char aws_access_key_id[128], aws_region[32], aws_service[32];
	char token_url[512], client_id[256], scope[256];
	uint64_t version, created, rotated;
	char fingerprint[65];
};

/* Reads a str field into a fixed array (NUL-terminated); sticky errors as the reader's. */
static inline int
vault_ipc_get_strbuf(struct aam_ipc_reader *r, char *out, size_t outsz)
{
	const uint8_t *p;
	size_t n;
	out[0] = '\0';
	if (aam_ipc_get_bytes(r, outsz - 1, &p, &n) != AAM_OK)
		return r->err;
	if (memchr(p, 0, n) != NULL || !aam_ipc_utf8_valid(p, n)) {
		r->err = AAM_E_PARSE;
		return r->err;
	}
	memcpy(out, p, n);
	out[n] = '\0';
	return AAM_OK;
}

static inline int
vault_ipc_meta_encode(struct aam_buf *b, const struct vault_ipc_meta *m)
{
	if (m->nbindings > 16)
		return AAM_E_INVAL;
	aam_ipc_put_str(b, m->name);
	aam_ipc_put_str(b, m->type);
	aam_ipc_put_u32(b, m->nbindings);
	for (uint32_t i = 0; i < m->nbindings; i++)
		aam_ipc_put_str(b, m->bindings[i]);
	aam_ipc_put_str(b, m->header);
	aam_ipc_put_str(b, m->param);
	aam_ipc_put_str(b, m->username);
	aam_ipc_put_str(b, m->aws_access_key_id);
	aam_ipc_put_str(b, m->aws_region);
	aam_ipc_put_str(b, m->aws_service);
	aam_ipc_put_str(b, m->token_url);
	aam_ipc_put_str(b, m->client_id);
	aam_ipc_put_str(b, m->scope);
	aam_ipc_put_u64(b, m->version);
	aam_ipc_put_u64(b, m->created);
	aam_ipc_put_u64(b, m->rotated);
	return aam_ipc_put_str(b, m->fingerprint);
}

/* Decodes a meta at the reader's position (the caller checks the end). */
static inline int
vault_ipc_meta_decode(struct aam_ipc_reader *r, struct vault_ipc_meta *m)
{
	memset(m, 0, sizeof(*m));
	vault_ipc_get_strbuf(r, m->name, sizeof(m->name));
	vault_ipc_get_strbuf(r, m->type, sizeof(m->type));
	aam_ipc_get_u32(r, &m->nbindings);
	if (r->err == AAM_OK && m->nbindings > 16)
		r->err = AAM_E_PARSE;
	for (uint32_t i = 0; r->err == AAM_OK && i < m->nbindings; i++)
		vault_ipc_get_strbuf(r, m->bindings[i], sizeof(m->bindings[i]));
	vault_ipc_get_strbuf(r, m->header, sizeof(m->header));
	vault_ipc_get_strbuf(r, m->param, sizeof(m->param));
	vault_ipc_get_strbuf(r, m->username, sizeof(m->username));
	vault_ipc_get_strbuf(r, m->aws_access_key_id, sizeof(m->aws_access_key_id));
	vault_ipc_get_strbuf(r, m->aws_region, sizeof(m->aws_region));
	vault_ipc_get_strbuf(r, m->aws_service, sizeof(m->aws_service));
	vault_ipc_get_strbuf(r, m->token_url, sizeof(m->token_url));
	vault_ipc_get_strbuf(r, m->client_id, sizeof(m->client_id));
	vault_ipc_get_strbuf(r, m->scope, sizeof(m->scope));
	aam_ipc_get_u64(r, &m->version);
	aam_ipc_get_u64(r, &m->created);
	aam_ipc_get_u64(r, &m->rotated);
	vault_ipc_get_strbuf(r, m->fingerprint, sizeof(m->fingerprint));
	return r->err;
}

#endif /* AAM_VAULT_PROTO_H */
