/*
 * Streaming INJECT client (gateway/vault_client.h).  The frame layouts
 * are vault/proto.h's; what the tools helper's buffered client
 * (gateway/tools_vault.c) does with them is done here chunk by chunk.
 */
#include "gateway/vault_client.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "aam/ipc.h"
#include "common/ipc.h"
#include "common/log.h"
#include "vault/proto.h"

#define CONNECT_MS     2000
#define FIRST_BODY_MAX (AAM_IPC_MAX_PAYLOAD - 64u * 1024)
#define MAX_RESP_HDRS  64

struct conn {
	struct aam_ipc_client *c;
	int users;
	bool dead;
};

struct gw_vault_client {
	char *path;
	pthread_mutex_t mu;
	struct conn *slot[GW_VAULT_POOL];
	unsigned next;
};

static void
conn_free(struct conn *k)
{
	aam_ipc_client_free(k->c);
	free(k);
}

int
gw_vault_client_new(const char *socket_path, struct gw_vault_client **out)
{
	if (socket_path == NULL || out == NULL)
		return AAM_E_INVAL;
	struct gw_vault_client *c = calloc(1, sizeof(*c));
	if (c == NULL || (c->path = strdup(socket_path)) == NULL) {
		free(c);
		return AAM_E_NOMEM;
	}
	pthread_mutex_init(&c->mu, NULL);
	*out = c;
	return AAM_OK;
}

void
gw_vault_client_free(struct gw_vault_client *c)
{
	if (c == NULL)
		return;
	/* The caller guarantees no request is in flight any more. */
	for (size_t i = 0; i < GW_VAULT_POOL; i++)
		if (c->slot[i] != NULL)
			conn_free(c->slot[i]);
	pthread_mutex_destroy(&c->mu);
	free(c->path);
	free(c);
}

static struct conn *
acquire(struct gw_vault_client *c)
{
	pthread_mutex_lock(&c->mu);
	unsigned i = c->next++ % GW_VAULT_POOL;
	struct conn *k = c->slot[i];
	if (k != NULL && aam_ipc_client_status(k->c) != AAM_OK) {
		c->slot[i] = NULL;
		k->dead = true;
		if (k->users == 0)
			conn_free(k);
		k = NULL;
	}
	if (k != NULL) {
		k->users++;
		pthread_mutex_unlock(&c->mu);
		return k;
	}
	pthread_mutex_unlock(&c->mu);
	/* Connect outside the lock: a slow vault must not stall the other slots. */
	struct aam_ipc_client *ic = NULL;
	if (aam_ipc_client_connect(c->path, CONNECT_MS, &ic) != AAM_OK)
		return NULL;
	struct conn *n = calloc(1, sizeof(*n));
	if (n == NULL) {
		aam_ipc_client_free(ic);
		return NULL;
	}
	n->c = ic;
	pthread_mutex_lock(&c->mu);
	if (c->slot[i] == NULL) {
		c->slot[i] = n;
	} else {
		/* Another thread filled the slot meanwhile; ours serves this call only. */
		n->dead = true;
	}
	n->users++;
	pthread_mutex_unlock(&c->mu);
	return n;
}

static void
release(struct gw_vault_client *c, struct conn *k)
{
	pthread_mutex_lock(&c->mu);
	bool gone = --k->users == 0 && k->dead;
	pthread_mutex_unlock(&c->mu);
	if (gone)
		conn_free(k);
}

bool
gw_vault_client_ping(struct gw_vault_client *c)
{
	if (c == NULL)
		return false;
	struct conn *k = acquire(c);
	if (k == NULL)
		return false;
	struct aam_buf reply;
	aam_buf_init(&reply, 64);
	int rc = aam_ipc_call(k->c, AAM_IPC_PING, "ping", 4, 2000, NULL, &reply);
	bool ok = rc == AAM_OK && reply.len == 4 && memcmp(reply.data, "ping", 4) == 0;
	aam_buf_uninit(&reply);
	release(c, k);
	return ok;
}

static int
decode_head(const uint8_t *p, size_t n, const struct gw_inject_cb *cb, int *cb_rc)
{
	struct aam_ipc_reader r;
	aam_ipc_reader_init(&r, p, n);
	uint16_t status = 0;
	uint32_t nh = 0;
	aam_ipc_get_u16(&r, &status);
	aam_ipc_get_u32(&r, &nh);
	if (r.err != AAM_OK || nh > VAULT_IPC_MAX_HEADERS * 4)
		return AAM_E_PROTO;
	struct aam_http_header h[MAX_RESP_HDRS];
	size_t cnt = 0;
	int rc = AAM_OK;
	for (uint32_t i = 0; i < nh && r.err == AAM_OK; i++) {
		const uint8_t *name, *val;
		size_t nl, vl;
		aam_ipc_get_bytes(&r, VAULT_IPC_MAX_HDR_NAME, &name, &nl);
		aam_ipc_get_bytes(&r, 1u << 20, &val, &vl);
		if (r.err != AAM_OK || cnt == MAX_RESP_HDRS)
			continue;
		if (memchr(name, 0, nl) != NULL || memchr(val, 0, vl) != NULL)
			continue;
		char *hn = malloc(nl + 1), *hv = malloc(vl + 1);
		if (hn == NULL || hv == NULL) {
			free(hn);
			free(hv);
			rc = AAM_E_NOMEM;
			break;
		}
		for (size_t k = 0; k < nl; k++)
			hn[k] = (char)tolower(name[k]);
		hn[nl] = '\0';
		memcpy(hv, val, vl);
		hv[vl] = '\0';
		h[cnt].name = hn;
		h[cnt].value = hv;
		cnt++;
	}
	/*
	 * The injected credential's version (vault/proto.h; absent from older
	 * vaults).  Model calls do not record it yet; it is read so that the
	 * head is parsed exactly and anything else after it is refused.
	 */
	uint32_t version = 0;
	if (rc == AAM_OK && r.err == AAM_OK && aam_ipc_reader_left(&r) > 0)
		aam_ipc_get_u32(&r, &version);
	(void)version;
	if (rc == AAM_OK && (r.err != AAM_OK || aam_ipc_reader_end(&r) != AAM_OK))
		rc = AAM_E_PROTO;
	if (rc == AAM_OK && cb->head != NULL) {
		*cb_rc = cb->head(cb->ctx, status, h, cnt);
		rc = *cb_rc;
	}
	for (size_t i = 0; i < cnt; i++) {
		free(h[i].name);
		free(h[i].value);
	}
	return rc;
}

static int
encode_request(const char *credential, const struct gw_upstream *u, int64_t timeout_ms, bool split,
               struct aam_buf *p)
{
	aam_ipc_put_str(p, credential);
	aam_ipc_put_str(p, u->method);
	aam_ipc_put_str(p, u->url);
	aam_ipc_put_str(p, "");
	aam_ipc_put_u32(p, timeout_ms > 0 && timeout_ms < UINT32_MAX ? (uint32_t)timeout_ms : 0);
	aam_ipc_put_u32(p, (uint32_t)u->nheaders);
	for (size_t i = 0; i < u->nheaders; i++) {
		aam_ipc_put_str(p, u->headers[i].name);
		aam_ipc_put_bytes(p, u->headers[i].value, strlen(u->headers[i].value));
	}
	aam_ipc_put_bytes(p, u->body.data, split ? 0 : u->body.len);
	return aam_buf_failed(p) ? AAM_E_TOOBIG : AAM_OK;
}

static int
run(struct aam_ipc_req *q, const char *credential, const struct gw_upstream *u, int64_t timeout_ms,
    int wait_ms, const struct gw_inject_cb *cb, struct gw_inject_result *res)
{
	bool split = u->body.len > FIRST_BODY_MAX;
	struct aam_buf p;
	aam_buf_init(&p, AAM_IPC_MAX_PAYLOAD);
	int rc = encode_request(credential, u, timeout_ms, split, &p);
	if (rc == AAM_OK)
		rc = aam_ipc_req_send(q, AAM_IPC_INJECT, split ? AAM_IPC_F_MORE : 0, p.data, p.len,
		                      wait_ms);
	aam_buf_uninit(&p);
	const uint8_t *b = u->body.data;
	size_t left = split ? u->body.len : 0;
	while (rc == AAM_OK && left > 0) {
		size_t k = left > FIRST_BODY_MAX ? FIRST_BODY_MAX : left;
		rc = aam_ipc_req_send(q, AAM_IPC_INJECT_BODY,
		                      k == left ? AAM_IPC_F_END : AAM_IPC_F_MORE, b, k, wait_ms);
		b += k;
		left -= k;
	}
	struct aam_buf f;
	aam_buf_init(&f, AAM_IPC_MAX_PAYLOAD);
	while (rc == AAM_OK) {
		struct aam_ipc_hdr h;
		aam_buf_reset(&f);
		rc = aam_ipc_req_recv(q, wait_ms, &h, &f);
		if (rc != AAM_OK)
			break;
		if (h.flags & AAM_IPC_F_ERROR) {
			int code = AAM_E_PROTO;
			aam_ipc_error_decode(f.data, f.len, &code, res->reason,
			                     sizeof(res->reason));
			rc = code != AAM_OK ? code : AAM_E_PROTO;
			break;
		}
		if (h.type == AAM_IPC_INJECT_RESP_HEAD && !res->head_seen) {
			rc = decode_head(f.data, f.len, cb, &res->cb_rc);
			res->head_seen = res->cb_rc == AAM_OK && rc == AAM_OK;
			if (rc == AAM_OK && !res->head_seen)
				rc = AAM_E_PROTO;
		} else if (h.type == AAM_IPC_INJECT_RESP_BODY && res->head_seen) {
			if (f.len > 0 && cb->body != NULL) {
				res->cb_rc = cb->body(cb->ctx, f.data, f.len);
				rc = res->cb_rc;
			}
		} else {
			rc = AAM_E_PROTO;
		}
		if (rc == AAM_OK && aam_ipc_flags_final(h.flags)) {
			res->complete = res->head_seen;
			if (!res->head_seen)
				rc = AAM_E_PROTO;
			break;
		}
	}
	aam_buf_uninit(&f);
	return rc;
}

int
gw_vault_inject(struct gw_vault_client *c, const char *credential, const struct gw_upstream *u,
                int64_t timeout_ms, const struct gw_inject_cb *cb, struct gw_inject_result *res)
{
	if (c == NULL || u == NULL || u->url == NULL || cb == NULL || res == NULL)
		return AAM_E_INVAL;
	memset(res, 0, sizeof(*res));
	struct conn *k = acquire(c);
	if (k == NULL) {
		aam_log(AAM_LOG_WARN, "gateway.vault_unreachable", AAM_F_STR("socket", c->path));
		return AAM_E_CLOSED;
	}
	/* The vault enforces the upstream timeout; our wait per frame has a margin over it. */
	int64_t w = (timeout_ms > 0 ? timeout_ms : 600000) + 2000;
	int wait_ms = w > INT32_MAX ? INT32_MAX : (int)w;
	struct aam_ipc_req *q = NULL;
	int rc = aam_ipc_req_open(k->c, &q);
	if (rc == AAM_OK) {
		rc = run(q, credential != NULL ? credential : "", u, timeout_ms, wait_ms, cb, res);
		/* Closing an unfinished request tells the vault to abandon the upstream. */
		aam_ipc_req_close(q);
	}
	release(c, k);
	return rc;
}
