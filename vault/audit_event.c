/*
 * Audit events: the record schema v1 of docs/AUDIT.md and the
 * replacement of sensitive strings by keyed hashes.
 *
 * The schema is strict, like every other untrusted input: an unknown
 * member or a member of the wrong type is an error naming the field, so a
 * client cannot smuggle arbitrary data (or a value meant to be hashed)
 * into the signed log under a name the verifier's users do not expect.
 */
#include "vault/audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "common/p11.h"
#include "common/secret.h"

#define HASH_DOMAIN "aam-audit-hmac-v1\n"

enum ftype { F_STR, F_INT, F_NUM, F_OBJ };

struct field {
	const char *name;
	enum ftype type;
	bool sensitive;
};

struct group {
	const char *name;
	const struct field *fields;
	size_t n;
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct field action_f[] = {{"operation", F_STR, false},
                                        {"params", F_OBJ, false},
                                        {"params_sha256", F_STR, false},
                                        {"resource", F_STR, false}};
static const struct field credential_f[] = {
        {"fingerprint", F_STR, false}, {"name", F_STR, false}, {"version", F_INT, false}};
static const struct field decision_f[] = {{"effect", F_STR, false}, {"reason", F_STR, false}};
static const struct field delegation_f[] = {{"end_user", F_STR, true}, {"owner", F_STR, false}};
static const struct field identity_f[] = {
        {"attestation", F_STR, false}, {"deployment", F_STR, false}, {"environment", F_STR, false},
        {"jti", F_STR, false},         {"owner", F_STR, false},      {"spiffe_id", F_STR, false},
        {"team", F_STR, false}};
static const struct field model_f[] = {{"cost_usd", F_NUM, false},
                                       {"deployment", F_STR, false},
                                       {"route", F_STR, false},
                                       {"tokens_in", F_INT, false},
                                       {"tokens_out", F_INT, false}};
static const struct field outcome_f[] = {{"latency_us", F_INT, false}, {"status", F_INT, false}};
static const struct field policy_f[] = {
        {"hash", F_STR, false}, {"name", F_STR, false}, {"rule", F_STR, false}};

static const struct group groups[] = {
        {"action", action_f, N(action_f)},
        {"credential", credential_f, N(credential_f)},
        {"decision", decision_f, N(decision_f)},
        {"delegation", delegation_f, N(delegation_f)},
        {"identity", identity_f, N(identity_f)},
        {"model", model_f, N(model_f)},
        {"outcome", outcome_f, N(outcome_f)},
        {"policy", policy_f, N(policy_f)},
        /*
         * Details of an audit.start, policy.reload or admin event: the
         * vault's version, a file name, a secret or key name.  Never a value.
         */
        {"detail", NULL, 0},
};

/* Top-level strings. */
static const char *const top_strings[] = {"request_id", "traceparent", "type"};

static const char *const known_types[] = {"attest.issue",  "attest.fail", "model.request",
                                          "tool.call",     "mcp.call",    "credential.use",
                                          "policy.reload", "audit.start", "audit.stop"};

/* Longest string member: records are small and 64 KiB bounds the whole. */
#define MAX_STR 8192

bool
vault_audit_type_known(const char *type)
{
	if (type == NULL)
		return false;
	for (size_t i = 0; i < N(known_types); i++)
		if (strcmp(type, known_types[i]) == 0)
			return true;
	/* admin.secret.<verb> and admin.key.<verb>: a lower-case verb. */
	const char *verb = NULL;
	if (strncmp(type, "admin.secret.", 13) == 0)
		verb = type + 13;
	else if (strncmp(type, "admin.key.", 10) == 0)
		verb = type + 10;
	if (verb == NULL || *verb == '\0' || strlen(verb) > 32)
		return false;
	for (const char *p = verb; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || *p == '_'))
			return false;
	return true;
}

int
vault_audit_hash(struct vault_store *st, const uint8_t *value, size_t len,
                 char out[VAULT_AUDIT_HASH_LEN])
{
	if (st == NULL || (value == NULL && len > 0) || len > VAULT_AUDIT_MAX_RECORD)
		return AAM_E_INVAL;
	if (!vault_store_ready(st))
		return AAM_E_CONFIG;
	/* Domain separation: an audit hash never equals a secret's fingerprint. */
	uint8_t *in = malloc(sizeof(HASH_DOMAIN) - 1 + len);
	if (in == NULL)
		return AAM_E_NOMEM;
	memcpy(in, HASH_DOMAIN, sizeof(HASH_DOMAIN) - 1);
	if (len > 0)
		memcpy(in + sizeof(HASH_DOMAIN) - 1, value, len);
	size_t n = sizeof(HASH_DOMAIN) - 1 + len;
	aam_p11 *p = vault_store_p11(st);
	uint8_t mac[32];
	CK_OBJECT_HANDLE h;
	int rc = aam_p11_find(p, CKO_SECRET_KEY, VAULT_LABEL_FINGERPRINT, &h);
	if (rc == AAM_OK)
		rc = vault_hmac_with_key(st, h, in, n, mac);
	if (rc == AAM_E_NOTFOUND) {
		/* A re-login renumbered the objects: look the key up again. */
		aam_p11_forget_label(p, CKO_SECRET_KEY, VAULT_LABEL_FINGERPRINT);
		rc = aam_p11_find(p, CKO_SECRET_KEY, VAULT_LABEL_FINGERPRINT, &h);
		if (rc == AAM_OK)
			rc = vault_hmac_with_key(st, h, in, n, mac);
	}
	aam_wipe(in, n);
	free(in);
	if (rc != AAM_OK)
		return rc;
	static const char hex[] = "0123456789abcdef";
	memcpy(out, "hmac-sha256:", 12);
	for (size_t i = 0; i < 32; i++) {
		out[12 + 2 * i] = hex[mac[i] >> 4];
		out[12 + 2 * i + 1] = hex[mac[i] & 15];
	}
	out[76] = '\0';
	return AAM_OK;
}

/* "A.B: MSG" (or "A: MSG") into WHY; AAM_E_INVAL. */
static int
fail2(char *why, size_t whylen, const char *a, const char *b, const char *msg)
{
	if (b != NULL)
		snprintf(why, whylen, "%s.%.64s: %s", a, b, msg);
	else if (a != NULL)
		snprintf(why, whylen, "%.64s: %s", a, msg);
	else
		snprintf(why, whylen, "%s", msg);
	return AAM_E_INVAL;
}

static bool
type_ok(const json_t *v, enum ftype t)
{
	switch (t) {
	case F_STR:
		return json_is_string(v) && json_string_length(v) <= MAX_STR &&
		       strlen(json_string_value(v)) == json_string_length(v);
	case F_INT:
		return json_is_integer(v);
	case F_NUM:
		return json_is_number(v);
	case F_OBJ:
		return json_is_object(v);
	}
	return false;
}

/*
 * detail, and action.params (the parameters a policy lists as plain): a
 * flat object of at most 32 strings, integers or booleans (and, for
 * parameters, numbers).
 */
static int
check_flat(const json_t *obj, const char *where, bool numbers, char *why, size_t whylen)
{
	const char *k;
	json_t *v;
	if (json_object_size(obj) > 32)
		return fail2(why, whylen, where, NULL, "too many members");
	json_object_foreach((json_t *)(uintptr_t)obj, k, v)
	{
		if (!type_ok(v, F_STR) && !json_is_integer(v) && !json_is_boolean(v) &&
		    !(numbers && json_is_number(v)))
			return fail2(why, whylen, where, k,
			             numbers ? "must be a string, number or boolean"
			                     : "must be a string, integer or boolean");
	}
	return AAM_OK;
}

static int
check_group(const struct group *g, json_t *obj, struct vault_store *st, char *why, size_t whylen)
{
	if (!json_is_object(obj))
		return fail2(why, whylen, g->name, NULL, "must be an object");
	if (g->fields == NULL)
		return check_flat(obj, "detail", false, why, whylen);
	const char *k;
	json_t *v;
	json_object_foreach(obj, k, v)
	{
		const struct field *f = NULL;
		for (size_t i = 0; i < g->n; i++)
			if (strcmp(k, g->fields[i].name) == 0)
				f = &g->fields[i];
		if (f == NULL)
			return fail2(why, whylen, g->name, k, "unknown member");
		if (!type_ok(v, f->type))
			return fail2(why, whylen, g->name, k,
			             f->type == F_STR   ? "must be a string (at most 8192 bytes)"
			             : f->type == F_INT ? "must be an integer"
			             : f->type == F_OBJ ? "must be an object"
			                                : "must be a number");
		if (f->type == F_OBJ) {
			int rc = check_flat(v, "action.params", true, why, whylen);
			if (rc != AAM_OK)
				return rc;
		}
		if (f->type == F_INT && (json_integer_value(v) > 9007199254740992LL ||
		                         json_integer_value(v) < -9007199254740992LL))
			return fail2(why, whylen, g->name, k, "integer out of range");
		if (f->sensitive) {
			char h[VAULT_AUDIT_HASH_LEN];
			int rc = vault_audit_hash(st, (const uint8_t *)json_string_value(v),
			                          json_string_length(v), h);
			if (rc != AAM_OK) {
				snprintf(why, whylen, "%s.%s: cannot hash the sensitive value (%s)",
				         g->name, k, aam_strerror(rc));
				return rc;
			}
			if (json_string_set(v, h) != 0)
				return AAM_E_NOMEM;
		}
	}
	if (strcmp(g->name, "decision") == 0) {
		const char *eff = json_string_value(json_object_get(obj, "effect"));
		if (eff != NULL && strcmp(eff, "allow") != 0 && strcmp(eff, "deny") != 0)
			return fail2(why, whylen, "decision", "effect", "must be allow or deny");
	}
	return AAM_OK;
}

int
vault_audit_event_prepare(json_t *event, struct vault_store *st, char *why, size_t whylen)
{
	if (!json_is_object(event))
		return fail2(why, whylen, NULL, NULL, "the event must be a JSON object");
	const char *type = json_string_value(json_object_get(event, "type"));
	if (type == NULL)
		return fail2(why, whylen, "type", NULL, "missing or not a string");
	if (!vault_audit_type_known(type))
		return fail2(why, whylen, "type", NULL, "unknown record type");
	const char *k;
	json_t *v;
	json_object_foreach(event, k, v)
	{
		if (strcmp(k, "seq") == 0 || strcmp(k, "time") == 0)
			return fail2(why, whylen, k, NULL, "set by the vault, not by the client");
		if (strcmp(k, "v") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) != 1)
				return fail2(why, whylen, "v", NULL,
				             "only record format 1 is supported");
			continue;
		}
		bool done = false;
		for (size_t i = 0; i < N(top_strings) && !done; i++) {
			if (strcmp(k, top_strings[i]) != 0)
				continue;
			if (!type_ok(v, F_STR))
				return fail2(why, whylen, k, NULL,
				             "must be a string (at most 8192 bytes)");
			done = true;
		}
		for (size_t i = 0; i < N(groups) && !done; i++) {
			if (strcmp(k, groups[i].name) != 0)
				continue;
			int rc = check_group(&groups[i], v, st, why, whylen);
			if (rc != AAM_OK)
				return rc;
			done = true;
		}
		if (!done)
			return fail2(why, whylen, k, NULL, "unknown member");
	}
	if (json_object_set_new(event, "v", json_integer(1)) != 0)
		return AAM_E_NOMEM;
	return AAM_OK;
}

int
vault_audit_credential_use(struct vault_audit *a, const struct vault_secret_meta *m,
                           const char *method, const char *host, unsigned port, const char *path,
                           char *why, size_t whylen)
{
	char fp[80];
	snprintf(fp, sizeof(fp), "hmac-sha256:%s", m->fingerprint);
	json_t *ev = json_pack("{s:s, s:{s:s, s:s, s:I}, s:{s:s, s:s}, s:{s:s, s:I, s:s%}}", "type",
	                       "credential.use", "credential", "name", m->name, "fingerprint", fp,
	                       "version", (json_int_t)m->version, "action", "operation", method,
	                       "resource", host, "detail", "host", host, "port", (json_int_t)port,
	                       "path", path, strnlen(path, 1024));
	if (ev == NULL) {
		snprintf(why, whylen, "cannot build the credential.use record");
		return AAM_E_NOMEM;
	}
	uint64_t seq = 0;
	int rc = vault_audit_append(a, ev, &seq, why, whylen);
	json_decref(ev);
	return rc;
}

int
vault_audit_admin(struct vault_audit *a, const char *type, const char *kind, const char *name,
                  unsigned peer_uid, char *why, size_t whylen)
{
	/* Written only once the change succeeded, so the record needs no outcome. */
	json_t *ev = json_pack("{s:s, s:{s:s, s:I}}", "type", type, "detail", kind, name,
	                       "peer_uid", (json_int_t)peer_uid);
	if (ev == NULL) {
		snprintf(why, whylen, "cannot build the %s record", type);
		return AAM_E_NOMEM;
	}
	uint64_t seq = 0;
	int rc = vault_audit_append(a, ev, &seq, why, whylen);
	json_decref(ev);
	return rc;
}
