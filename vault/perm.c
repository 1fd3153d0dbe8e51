/*
 * The permission table (see perm.h).  The maxima below are the whole
 * policy of what each role can ever do; configuration only narrows them.
 */
#include "vault/perm.h"
#include "vault/proto.h"
#include "aam/err.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BIT(op) (1u << (unsigned)(op))

/*
 * gateway: egress with injected credentials, and its audit records.
 * attest:  signs tokens with the issuer key, publishes public keys, audits.
 * admin:   aamctl; manages keys and secrets and reads public keys, but
 *          never signs and never injects.
 */
static const uint32_t role_max[VAULT_ROLE__N] = {
        [VAULT_ROLE_GATEWAY] =
                BIT(VAULT_OP_INJECT) | BIT(VAULT_OP_AUDIT_APPEND) | BIT(VAULT_OP_AUDIT_CHECKPOINT),
        [VAULT_ROLE_ATTEST] = BIT(VAULT_OP_SIGN_ISSUER) | BIT(VAULT_OP_PUBKEY) |
                              BIT(VAULT_OP_AUDIT_APPEND) | BIT(VAULT_OP_AUDIT_CHECKPOINT),
        /* The admin reads the audit log (export, tail, prove, hash) but never appends. */
        [VAULT_ROLE_ADMIN] = BIT(VAULT_OP_KEYS_INIT) | BIT(VAULT_OP_KEYS_ROTATE) |
                             BIT(VAULT_OP_SECRET_PUT) | BIT(VAULT_OP_SECRET_ROTATE) |
                             BIT(VAULT_OP_SECRET_LIST) | BIT(VAULT_OP_SECRET_SHOW) |
                             BIT(VAULT_OP_SECRET_DELETE) | BIT(VAULT_OP_SECRET_PRUNE) |
                             BIT(VAULT_OP_PUBKEY) | BIT(VAULT_OP_AUDIT_CHECKPOINT) |
                             BIT(VAULT_OP_AUDIT_READ) | BIT(VAULT_OP_AUDIT_HASH),
};

/* Operations that make sense before the keys exist. */
static const uint32_t uninit_ops = BIT(VAULT_OP_KEYS_INIT);

static const char *const op_names[VAULT_OP__N] = {
        [VAULT_OP_SIGN_ISSUER] = "SIGN_ISSUER",
        [VAULT_OP_SIGN_AUDIT] = "SIGN_AUDIT",
        [VAULT_OP_PUBKEY] = "PUBKEY",
        [VAULT_OP_INJECT] = "INJECT",
        [VAULT_OP_AUDIT_APPEND] = "AUDIT_APPEND",
        [VAULT_OP_KEYS_INIT] = "KEYS_INIT",
        [VAULT_OP_KEYS_ROTATE] = "KEYS_ROTATE",
        [VAULT_OP_SECRET_PUT] = "SECRET_PUT",
        [VAULT_OP_SECRET_ROTATE] = "SECRET_ROTATE",
        [VAULT_OP_SECRET_LIST] = "SECRET_LIST",
        [VAULT_OP_SECRET_SHOW] = "SECRET_SHOW",
        [VAULT_OP_SECRET_DELETE] = "SECRET_DELETE",
        [VAULT_OP_SECRET_PRUNE] = "SECRET_PRUNE",
        [VAULT_OP_AUDIT_CHECKPOINT] = "AUDIT_CHECKPOINT",
        [VAULT_OP_AUDIT_READ] = "AUDIT_READ",
        [VAULT_OP_AUDIT_HASH] = "AUDIT_HASH",
};

#define MAX_IDS 64

struct perm_role {
	uint32_t ops;
	size_t nuids, ngids;
	uid_t uids[MAX_IDS];
	gid_t gids[MAX_IDS];
};

struct vault_perm {
	struct perm_role role[VAULT_ROLE__N];
};

const char *
vault_role_name(enum vault_role r)
{
	switch (r) {
	case VAULT_ROLE_GATEWAY:
		return "gateway";
	case VAULT_ROLE_ATTEST:
		return "attest";
	case VAULT_ROLE_ADMIN:
		return "admin";
	default:
		return "unknown";
	}
}

const char *
vault_op_name(enum vault_op op)
{
	if ((unsigned)op >= VAULT_OP__N)
		return "UNKNOWN";
	return op_names[op];
}

enum vault_op
vault_op_of(uint16_t type, const uint8_t *payload, size_t len)
{
	switch (type) {
	case AAM_IPC_SIGN:
		if (payload != NULL && len >= 1 && payload[0] == VAULT_IPC_KEY_AUDIT)
			return VAULT_OP_SIGN_AUDIT;
		return VAULT_OP_SIGN_ISSUER;
	case AAM_IPC_PUBKEY:
		return VAULT_OP_PUBKEY;
	case AAM_IPC_INJECT:
		return VAULT_OP_INJECT;
	case AAM_IPC_AUDIT_APPEND:
		return VAULT_OP_AUDIT_APPEND;
	case AAM_IPC_AUDIT_CHECKPOINT:
		return VAULT_OP_AUDIT_CHECKPOINT;
	case VAULT_IPC_AUDIT_INFO:
	case VAULT_IPC_AUDIT_RECORDS:
	case VAULT_IPC_AUDIT_CHECKPOINTS:
	case VAULT_IPC_AUDIT_PREFIX:
	case VAULT_IPC_AUDIT_PROVE:
	case VAULT_IPC_AUDIT_SEQ_AT:
		return VAULT_OP_AUDIT_READ;
	case VAULT_IPC_AUDIT_HASH:
		return VAULT_OP_AUDIT_HASH;
	case VAULT_IPC_KEYS_INIT:
		return VAULT_OP_KEYS_INIT;
	case VAULT_IPC_KEYS_ROTATE:
		return VAULT_OP_KEYS_ROTATE;
	case VAULT_IPC_SECRET_PUT:
		return VAULT_OP_SECRET_PUT;
	case VAULT_IPC_SECRET_ROTATE:
		return VAULT_OP_SECRET_ROTATE;
	case VAULT_IPC_SECRET_LIST:
		return VAULT_OP_SECRET_LIST;
	case VAULT_IPC_SECRET_SHOW:
		return VAULT_OP_SECRET_SHOW;
	case VAULT_IPC_SECRET_DELETE:
		return VAULT_OP_SECRET_DELETE;
	case VAULT_IPC_SECRET_PRUNE:
		return VAULT_OP_SECRET_PRUNE;
	default:
		return VAULT_OP_UNKNOWN;
	}
}

/* A decimal id without sign, spaces or overflow. */
static bool
parse_id(const char *s, unsigned long *out)
{
	if (s[0] < '0' || s[0] > '9')
		return false;
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > 0xFFFFFFFEul)
		return false;
	*out = v;
	return true;
}

static int
resolve_uid(const char *s, uid_t *out)
{
	unsigned long v;
	if (parse_id(s, &v)) {
		*out = (uid_t)v;
		return AAM_OK;
	}
	struct passwd pw, *res = NULL;
	char buf[4096];
	if (getpwnam_r(s, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
		return AAM_E_NOTFOUND;
	*out = pw.pw_uid;
	return AAM_OK;
}

static int
resolve_gid(const char *s, gid_t *out)
{
	unsigned long v;
	if (parse_id(s, &v)) {
		*out = (gid_t)v;
		return AAM_OK;
	}
	struct group gr, *res = NULL;
	char buf[8192];
	if (getgrnam_r(s, &gr, buf, sizeof(buf), &res) != 0 || res == NULL)
		return AAM_E_NOTFOUND;
	*out = gr.gr_gid;
	return AAM_OK;
}

static enum vault_op
op_parse(const char *s)
{
	for (unsigned i = 0; i < VAULT_OP__N; i++) {
		if (strcasecmp(s, op_names[i]) == 0)
			return (enum vault_op)i;
	}
	return VAULT_OP_UNKNOWN;
}

static int
role_load(enum vault_role r, const struct aam_config_vault_peer *c, struct perm_role *out,
          char *err, size_t errlen)
{
	const char *rn = vault_role_name(r);
	out->ops = role_max[r];
	if (c->ops.n > 0) {
		out->ops = 0;
		for (size_t i = 0; i < c->ops.n; i++) {
			enum vault_op op = op_parse(c->ops.v[i]);
			if (op == VAULT_OP_UNKNOWN) {
				snprintf(err, errlen, "vault.access.%s.ops: unknown operation '%s'",
				         rn, c->ops.v[i]);
				return AAM_E_CONFIG;
			}
			if (!(role_max[r] & BIT(op))) {
				snprintf(err, errlen,
				         "vault.access.%s.ops: the %s role can never be granted %s",
				         rn, rn, op_names[op]);
				return AAM_E_CONFIG;
			}
			out->ops |= BIT(op);
		}
	}
	if (c->uids.n > MAX_IDS || c->gids.n > MAX_IDS) {
		snprintf(err, errlen, "vault.access.%s: at most %d uids and %d gids", rn, MAX_IDS,
		         MAX_IDS);
		return AAM_E_CONFIG;
	}
	for (size_t i = 0; i < c->uids.n; i++) {
		if (resolve_uid(c->uids.v[i], &out->uids[i]) != AAM_OK) {
			snprintf(err, errlen, "vault.access.%s.uids: no such user '%s'", rn,
			         c->uids.v[i]);
			return AAM_E_CONFIG;
		}
	}
	out->nuids = c->uids.n;
	for (size_t i = 0; i < c->gids.n; i++) {
		if (resolve_gid(c->gids.v[i], &out->gids[i]) != AAM_OK) {
			snprintf(err, errlen, "vault.access.%s.gids: no such group '%s'", rn,
			         c->gids.v[i]);
			return AAM_E_CONFIG;
		}
	}
	out->ngids = c->gids.n;
	return AAM_OK;
}

int
vault_perm_new_default(struct vault_perm **out)
{
	*out = NULL;
	struct vault_perm *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return AAM_E_NOMEM;
	for (unsigned r = 0; r < VAULT_ROLE__N; r++)
		p->role[r].ops = role_max[r];
	*out = p;
	return AAM_OK;
}

int
vault_perm_new(const struct aam_config_vault *cfg, struct vault_perm **out, char *err,
               size_t errlen)
{
	*out = NULL;
	if (errlen > 0)
		err[0] = '\0';
	struct vault_perm *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return AAM_E_NOMEM;
	const struct aam_config_vault_peer *c[VAULT_ROLE__N] = {
	        [VAULT_ROLE_GATEWAY] = &cfg->access.gateway,
	        [VAULT_ROLE_ATTEST] = &cfg->access.attest,
	        [VAULT_ROLE_ADMIN] = &cfg->access.admin,
	};
	for (unsigned r = 0; r < VAULT_ROLE__N; r++) {
		int rc = role_load((enum vault_role)r, c[r], &p->role[r], err, errlen);
		if (rc != AAM_OK) {
			free(p);
			return rc;
		}
	}
	*out = p;
	return AAM_OK;
}

void
vault_perm_free(struct vault_perm *p)
{
	free(p);
}

int
vault_perm_peer(const struct vault_perm *p, enum vault_role role, const struct aam_ipc_peer *peer)
{
	if (p == NULL || (unsigned)role >= VAULT_ROLE__N || peer == NULL)
		return AAM_E_PERM;
	const struct perm_role *r = &p->role[role];
	if (r->nuids == 0 && r->ngids == 0)
		return AAM_OK;
	for (size_t i = 0; i < r->nuids; i++) {
		if (r->uids[i] == peer->uid)
			return AAM_OK;
	}
	for (size_t i = 0; i < r->ngids; i++) {
		if (r->gids[i] == peer->gid)
			return AAM_OK;
	}
	return AAM_E_PERM;
}

int
vault_perm_check(const struct vault_perm *p, enum vault_role role, const struct aam_ipc_peer *peer,
                 enum vault_op op, bool ready, char *why, size_t whylen)
{
	const char *rn = vault_role_name(role);
	if (p == NULL || (unsigned)role >= VAULT_ROLE__N) {
		snprintf(why, whylen, "no permission table");
		return AAM_E_PERM;
	}
	if ((unsigned)op >= VAULT_OP__N) {
		snprintf(why, whylen, "unknown request type");
		return AAM_E_PERM;
	}
	if (vault_perm_peer(p, role, peer) != AAM_OK) {
		snprintf(why, whylen, "uid %u gid %u may not use the %s socket",
		         (unsigned)peer->uid, (unsigned)peer->gid, rn);
		return AAM_E_PERM;
	}
	if (!(p->role[role].ops & BIT(op))) {
		snprintf(why, whylen, "the %s role may not %s", rn, op_names[op]);
		return AAM_E_PERM;
	}
	if (!ready && !(uninit_ops & BIT(op))) {
		snprintf(why, whylen, "the vault has no keys yet (run 'aamctl keys init')");
		return AAM_E_PERM;
	}
	return AAM_OK;
}

uint32_t
vault_perm_ops(const struct vault_perm *p, enum vault_role role)
{
	if (p == NULL || (unsigned)role >= VAULT_ROLE__N)
		return 0;
	return p->role[role].ops;
}
