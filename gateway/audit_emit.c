/*
 * Audit emitter.  See audit_emit.h.
 */
#include "gateway/audit_emit.h"
#include "aam/err.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/log.h"

#include <pthread.h>
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
	for (int attempt = 0; attempt < 2; attempt++) {
		struct conn *k = conn_get(a, timeout_ms);
		if (k == NULL)
			return AAM_E_AUDIT;
		int rc = aam_audit_append(k->c, ev, timeout_ms, seq);
		conn_put(a, k);
		if (rc != AAM_E_CLOSED)
			return rc;
	}
	return AAM_E_AUDIT;
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
