/*
 * Audit emitter.  See audit_emit.h.
 */
#include "gateway/audit_emit.h"
#include "aam/err.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/log.h"

#include <pthread.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__has_include)
#if __has_include("common/audit_client.h")
#include "common/audit_client.h"
#include "common/ipc.h"
#define GW_HAVE_AUDIT_CLIENT 1
#endif
#endif

struct conn;

struct gw_audit {
	gw_audit_append_fn fn;
	void *ctx;
	const char *backend;
	_Atomic int last_ok; /* 1 after a good append, 0 after a failed one */
	char *socket;
#ifdef GW_HAVE_AUDIT_CLIENT
	pthread_mutex_t mu; /* guards CONN and reference counts */
	struct conn *conn;
#endif
};

/*
 * The interim backend: a log line.  It is not durable, which start-up and
 * /readyz both say; it exists so the gateway is usable before the vault's
 * audit log is, exactly as aam-attest does.
 */
static int
log_append(void *ctx, const json_t *ev, int timeout_ms, uint64_t *seq)
{
	(void)ctx;
	(void)timeout_ms;
	struct aam_buf b;
	aam_buf_init(&b, 64 * 1024);
	int rc = aam_json_dump_buf(ev, &b, JSON_SORT_KEYS);
	if (rc == AAM_OK)
		aam_log(AAM_LOG_INFO, "gateway.audit", AAM_F_STR("record", aam_buf_cstr(&b)));
	aam_buf_uninit(&b);
	if (seq != NULL)
		*seq = 0;
	return rc;
}

/* ---- the gateway's event as an audit record v1 --------------------------------- */

/* Longest string the record schema accepts per member. */
#define V1_STR_MAX 8192

static void
put_str(json_t *o, const char *k, const json_t *v)
{
	const char *s = json_string_value(v);
	if (s == NULL)
		return;
	size_t n = json_string_length(v);
	json_object_set_new(o, k, json_stringn(s, n > V1_STR_MAX ? V1_STR_MAX : n));
}

static void
put_int(json_t *o, const char *k, const json_t *v)
{
	if (json_is_integer(v))
		json_object_set_new(o, k, json_integer(json_integer_value(v)));
}

static void
set_if_members(json_t *rec, const char *k, json_t *o)
{
	if (json_object_size(o) > 0)
		json_object_set_new(rec, k, o);
	else
		json_decref(o);
}

/* A flat detail member: strings (bounded), integers and booleans only. */
static void
put_detail(json_t *detail, const char *k, const json_t *v)
{
	if (json_object_size(detail) >= 32)
		return;
	if (json_is_string(v))
		put_str(detail, k, v);
	else if (json_is_integer(v) || json_is_boolean(v))
		json_object_set(detail, k, (json_t *)(uintptr_t)v);
}

json_t *
gw_audit_record_v1(const json_t *ev)
{
	json_t *rec = json_object();
	if (rec == NULL)
		return NULL;
	const char *kind = json_string_value(json_object_get(ev, "kind"));
	const char *type = "tool.call";
	if (kind != NULL && strncmp(kind, "model.", 6) == 0)
		type = "model.request";
	else if (kind != NULL && strncmp(kind, "mcp.", 4) == 0)
		type = "mcp.call";
	json_object_set_new(rec, "type", json_string(type));
	put_str(rec, "request_id", json_object_get(ev, "request_id"));
	put_str(rec, "traceparent", json_object_get(ev, "traceparent"));
	json_t *detail = json_object();
	if (kind != NULL && strcmp(kind, type) != 0)
		put_detail(detail, "kind", json_object_get(ev, "kind"));

	const json_t *id = json_object_get(ev, "identity");
	json_t *ident = json_object();
	put_str(ident, "spiffe_id", json_object_get(id, "workload"));
	put_str(ident, "owner", json_object_get(id, "owner"));
	put_str(ident, "team", json_object_get(id, "team"));
	put_str(ident, "environment", json_object_get(id, "environment"));
	put_str(ident, "deployment", json_object_get(id, "deployment"));
	put_str(ident, "jti", json_object_get(id, "jti"));
	put_str(ident, "attestation", json_object_get(id, "method"));
	put_detail(detail, "virtual_key", json_object_get(id, "virtual_key"));
	put_detail(detail, "attested", json_object_get(id, "attested"));
	set_if_members(rec, "identity", ident);

	/* The end user is sensitive: the vault stores it as a keyed hash. */
	json_t *del = json_object();
	put_str(del, "owner", json_object_get(id, "owner"));
	put_str(del, "end_user", json_object_get(ev, "on_behalf_of"));
	if (json_object_get(del, "end_user") != NULL)
		json_object_set_new(rec, "delegation", del);
	else
		json_decref(del);

	const json_t *pol = json_object_get(ev, "policy");
	json_t *p = json_object();
	put_str(p, "hash", json_object_get(pol, "set_hash"));
	put_str(p, "name", json_array_get(json_object_get(pol, "names"), 0));
	const json_t *r0 = json_array_get(json_object_get(pol, "reasons"), 0);
	put_str(p, "rule", json_is_object(r0) ? json_object_get(r0, "rule") : r0);
	set_if_members(rec, "policy", p);

	const char *eff = json_string_value(json_object_get(ev, "decision"));
	if (eff != NULL && (strcmp(eff, "allow") == 0 || strcmp(eff, "deny") == 0)) {
		json_t *d = json_pack("{s:s}", "effect", eff);
		put_str(d, "reason", json_object_get(ev, "reason"));
		json_object_set_new(rec, "decision", d);
	}

	const json_t *act = json_object_get(ev, "action");
	const json_t *out = json_object_get(ev, "outcome");
	json_t *a = json_object();
	json_t *m = json_object();
	if (strcmp(type, "model.request") == 0) {
		put_str(a, "operation", json_object_get(act, "api"));
		put_str(a, "resource", json_object_get(act, "endpoint"));
		put_str(m, "route", json_object_get(act, "route"));
		if (json_object_get(out, "route") != NULL)
			put_str(m, "route", json_object_get(out, "route"));
		put_str(m, "deployment", json_object_get(out, "deployment"));
		put_int(m, "tokens_in", json_object_get(out, "input_tokens"));
		put_int(m, "tokens_out", json_object_get(out, "output_tokens"));
		const json_t *cost = json_object_get(out, "cost_usd");
		if (json_is_number(cost))
			json_object_set_new(m, "cost_usd", json_real(json_number_value(cost)));
		put_detail(detail, "provider", json_object_get(out, "provider"));
		put_detail(detail, "upstream_model", json_object_get(out, "upstream_model"));
		put_detail(detail, "stream", json_object_get(act, "stream"));
	} else {
		put_str(a, "operation", json_object_get(act, "operation"));
		put_str(a, "resource", json_object_get(act, "resource"));
		put_str(a, "params_sha256", json_object_get(act, "params_sha256"));
		/*
		 * The parameters the policy lists as plain.  Record v1 keeps
		 * action.params flat: values other than scalars are only in the
		 * digest.
		 */
		const char *pk;
		json_t *pv;
		json_t *plain = json_object();
		json_object_foreach((json_t *)(uintptr_t)json_object_get(act, "params"), pk, pv)
		{
			if (json_object_size(plain) >= 32)
				break; /* the vault's bound on a flat member */
			if (json_is_string(pv))
				put_str(plain, pk, pv);
			else if (json_is_number(pv) || json_is_boolean(pv))
				json_object_set(plain, pk, pv);
		}
		set_if_members(a, "params", plain);
	}
	set_if_members(rec, "action", a);
	set_if_members(rec, "model", m);

	json_t *o = json_object();
	put_int(o, "status", json_object_get(out, "status"));
	put_int(o, "latency_us", json_object_get(out, "latency_us"));
	set_if_members(rec, "outcome", o);
	put_detail(detail, "error", json_object_get(ev, "error"));
	if (json_object_get(detail, "error") == NULL)
		put_detail(detail, "error", json_object_get(out, "error"));

	const json_t *cred = json_object_get(ev, "credential");
	json_t *c = json_object();
	put_str(c, "name", json_object_get(cred, "name"));
	put_int(c, "version", json_object_get(cred, "version"));
	set_if_members(rec, "credential", c);
	set_if_members(rec, "detail", detail);
	return rec;
}

#ifdef GW_HAVE_AUDIT_CLIENT
/*
 * One shared, multiplexed connection to the vault.  Requests hold a
 * reference while they use it, so a broken connection is replaced for new
 * requests and freed by the last one still inside it.
 */
struct conn {
	struct aam_ipc_client *c;
	unsigned refs;
};

static void
conn_put(struct gw_audit *a, struct conn *k)
{
	pthread_mutex_lock(&a->mu);
	bool last = --k->refs == 0;
	pthread_mutex_unlock(&a->mu);
	if (last) {
		aam_ipc_client_free(k->c);
		free(k);
	}
}

static struct conn *
conn_get(struct gw_audit *a, int timeout_ms)
{
	pthread_mutex_lock(&a->mu);
	struct conn *k = a->conn;
	if (k != NULL && aam_ipc_client_status(k->c) != AAM_OK) {
		a->conn = NULL;
		if (--k->refs == 0) {
			aam_ipc_client_free(k->c);
			free(k);
		}
		k = NULL;
	}
	if (k == NULL && (k = calloc(1, sizeof(*k))) != NULL) {
		if (aam_ipc_client_connect(a->socket, timeout_ms, &k->c) != AAM_OK) {
			free(k);
			k = NULL;
		} else {
			k->refs = 1; /* the emitter's own reference */
			a->conn = k;
		}
	}
	if (k != NULL)
		k->refs++;
	pthread_mutex_unlock(&a->mu);
	return k;
}

static int
vault_append(void *ctx, const json_t *ev, int timeout_ms, uint64_t *seq)
{
	struct gw_audit *a = ctx;
	/* The vault stores record format v1 only (docs/AUDIT.md): convert first. */
	json_t *rec = gw_audit_record_v1(ev);
	if (rec == NULL)
		return AAM_E_NOMEM;
	int rc = AAM_E_AUDIT;
	for (int attempt = 0; attempt < 2; attempt++) {
		struct conn *k = conn_get(a, timeout_ms);
		if (k == NULL) {
			rc = AAM_E_AUDIT;
			break;
		}
		rc = aam_audit_append(k->c, rec, timeout_ms, seq);
		conn_put(a, k);
		if (rc != AAM_E_CLOSED)
			break;
		rc = AAM_E_AUDIT;
	}
	json_decref(rec);
	if (rc == AAM_OK && aam_log_enabled(AAM_LOG_INFO)) {
		/*
		 * An operator's trail in the log too, as the interim backend wrote
		 * it, but without the end user: the signed log holds only its hash.
		 * Built only when info lines are printed (a copy and a dump).
		 */
		json_t *line = json_deep_copy(ev);
		if (line != NULL) {
			json_object_del(line, "on_behalf_of");
			struct aam_buf b;
			aam_buf_init(&b, 64 * 1024);
			if (aam_json_dump_buf(line, &b, JSON_SORT_KEYS) == AAM_OK)
				aam_log(AAM_LOG_INFO, "gateway.audit",
				        AAM_F_STR("record", aam_buf_cstr(&b)),
				        AAM_F_UINT("seq", seq != NULL ? *seq : 0));
			aam_buf_uninit(&b);
			json_decref(line);
		}
	}
	return rc;
}
#endif

int
gw_audit_new(const char *vault_socket, struct gw_audit **out)
{
	if (out == NULL)
		return AAM_E_INVAL;
	struct gw_audit *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return AAM_E_NOMEM;
	a->socket = vault_socket != NULL ? strdup(vault_socket) : NULL;
	atomic_init(&a->last_ok, 1);
#ifdef GW_HAVE_AUDIT_CLIENT
	pthread_mutex_init(&a->mu, NULL);
#endif
	gw_audit_set_backend(a, NULL, NULL);
	if (strcmp(a->backend, "log") == 0)
		aam_log(AAM_LOG_WARN, "gateway.audit_log_only",
		        AAM_F_STR("why", "aam-vault's audit client is not built in: audit records "
		                         "go to the log and are not durable"));
	*out = a;
	return AAM_OK;
}

void
gw_audit_free(struct gw_audit *a)
{
	if (a == NULL)
		return;
#ifdef GW_HAVE_AUDIT_CLIENT
	if (a->conn != NULL)
		conn_put(a, a->conn);
	pthread_mutex_destroy(&a->mu);
#endif
	free(a->socket);
	free(a);
}

void
gw_audit_set_backend(struct gw_audit *a, gw_audit_append_fn fn, void *ctx)
{
	if (fn != NULL) {
		a->fn = fn;
		a->ctx = ctx;
		a->backend = "custom";
		return;
	}
#ifdef GW_HAVE_AUDIT_CLIENT
	if (a->socket != NULL) {
		a->fn = vault_append;
		a->ctx = a;
		a->backend = "vault";
		return;
	}
#endif
	a->fn = log_append;
	a->ctx = NULL;
	a->backend = "log";
}

int
gw_audit_append(struct gw_audit *a, const json_t *ev, uint64_t *seq)
{
	if (a == NULL || ev == NULL)
		return AAM_E_INVAL;
	int rc = a->fn(a->ctx, ev, GW_AUDIT_TIMEOUT_MS, seq);
	atomic_store(&a->last_ok, rc == AAM_OK ? 1 : 0);
	if (rc != AAM_OK)
		aam_log(AAM_LOG_ERROR, "gateway.audit_failed", AAM_F_STR("backend", a->backend),
		        AAM_F_ERR(rc));
	return rc == AAM_OK ? AAM_OK : AAM_E_AUDIT;
}

bool
gw_audit_ready(struct gw_audit *a)
{
	return a != NULL && atomic_load(&a->last_ok) == 1;
}

const char *
gw_audit_backend_name(const struct gw_audit *a)
{
	return a != NULL ? a->backend : "none";
}
