/*
 * INJECT over the vault's gateway socket (docs/PROTOCOL.md, "INJECT
 * replies"): one request frame (with INJECT_BODY continuation frames
 * when the body does not fit), then INJECT_RESP_HEAD and
 * INJECT_RESP_BODY frames up to END, or an error frame.
 *
 * A connection per call keeps this free of shared state; tool calls are
 * not frequent enough for the connect to matter next to the upstream's
 * round trip.
 */
#include "gateway/tools_vault.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "aam/ipc.h"
#include "common/ipc.h"
#include "common/log.h"
#include "vault/proto.h"

#define FIRST_BODY_MAX (AAM_IPC_MAX_PAYLOAD - 64u * 1024)
#define CONNECT_MS     2000

void
gwt_response_init(struct gwt_response *r, size_t max_body)
{
	memset(r, 0, sizeof(*r));
	aam_buf_init(&r->headers, 256u * 1024);
	aam_buf_init(&r->body, max_body);
}

void
gwt_response_uninit(struct gwt_response *r)
{
	aam_buf_uninit(&r->headers);
	aam_buf_uninit(&r->body);
}

const char *
gwt_response_header(const struct gwt_response *r, const char *name)
{
	const char *p = (const char *)r->headers.data, *end = p + r->headers.len;
	while (p != NULL && p < end) {
		const char *v = p + strlen(p) + 1;
		if (v >= end)
			break;
		if (strcmp(p, name) == 0)
			return v;
		p = v + strlen(v) + 1;
	}
	return NULL;
}

static int
decode_head(const uint8_t *p, size_t n, struct gwt_response *resp)
{
	struct aam_ipc_reader r;
	aam_ipc_reader_init(&r, p, n);
	uint16_t status = 0;
	uint32_t nh = 0;
	aam_ipc_get_u16(&r, &status);
	aam_ipc_get_u32(&r, &nh);
	if (r.err == AAM_OK && nh > 1000)
		return AAM_E_PARSE;
	for (uint32_t i = 0; i < nh && r.err == AAM_OK; i++) {
		const uint8_t *name, *val;
		size_t nl, vl;
		aam_ipc_get_bytes(&r, VAULT_IPC_MAX_HDR_NAME, &name, &nl);
		aam_ipc_get_bytes(&r, 1u << 20, &val, &vl);
		if (r.err != AAM_OK)
			break;
		/* Kept only when usable as C strings; the rest is of no use here. */
		if (memchr(name, 0, nl) != NULL || memchr(val, 0, vl) != NULL)
			continue;
		for (size_t k = 0; k < nl; k++)
			aam_buf_append_byte(&resp->headers, (uint8_t)tolower(name[k]));
		aam_buf_append_byte(&resp->headers, 0);
		aam_buf_append(&resp->headers, val, vl);
		aam_buf_append_byte(&resp->headers, 0);
	}
	/* The injected credential's version (vault/proto.h); absent from older vaults. */
	uint32_t version = 0;
	if (r.err == AAM_OK && aam_ipc_reader_left(&r) > 0)
		aam_ipc_get_u32(&r, &version);
	if (aam_ipc_reader_end(&r) != AAM_OK)
		return AAM_E_PARSE;
	resp->status = status;
	resp->credential_version = version;
	return AAM_OK;
}

int
gwt_vault_inject(const char *sock, const struct gwt_request *req, const char *credential,
                 int64_t timeout_ms, struct gwt_response *resp)
{
	if (sock == NULL || req == NULL || credential == NULL)
		return AAM_E_INVAL;
	struct aam_buf p;
	aam_buf_init(&p, AAM_IPC_MAX_PAYLOAD);
	aam_ipc_put_str(&p, credential);
	aam_ipc_put_str(&p, req->method);
	aam_ipc_put_str(&p, aam_buf_cstr(&req->url));
	aam_ipc_put_str(&p, "");
	aam_ipc_put_u32(&p, timeout_ms > 0 && timeout_ms < UINT32_MAX ? (uint32_t)timeout_ms : 0);
	aam_ipc_put_u32(&p, (uint32_t)req->nheaders);
	for (size_t i = 0; i < req->nheaders; i++) {
		aam_ipc_put_str(&p, req->headers[i].name);
		aam_ipc_put_bytes(&p, req->headers[i].value, strlen(req->headers[i].value));
	}
	bool split = req->body.len > FIRST_BODY_MAX;
	aam_ipc_put_bytes(&p, req->body.data, split ? 0 : req->body.len);
	if (aam_buf_failed(&p)) {
		aam_buf_uninit(&p);
		return AAM_E_INVAL;
	}
	struct aam_ipc_client *c = NULL;
	int rc = aam_ipc_client_connect(sock, CONNECT_MS, &c);
	if (rc != AAM_OK) {
		aam_buf_uninit(&p);
		aam_log(AAM_LOG_WARN, "tools.vault_unreachable", AAM_F_STR("socket", sock),
		        AAM_F_ERR(rc));
		return AAM_E_CLOSED;
	}
	int wait_ms = (int)(timeout_ms > 0 ? timeout_ms : 30000) + 5000;
	struct aam_ipc_req *q = NULL;
	rc = aam_ipc_req_open(c, &q);
	if (rc == AAM_OK)
		rc = aam_ipc_req_send(q, AAM_IPC_INJECT, split ? AAM_IPC_F_MORE : 0, p.data, p.len,
		                      wait_ms);
	aam_buf_uninit(&p);
	const uint8_t *b = req->body.data;
	size_t left = split ? req->body.len : 0;
	while (rc == AAM_OK && left > 0) {
		size_t k = left > FIRST_BODY_MAX ? FIRST_BODY_MAX : left;
		rc = aam_ipc_req_send(q, AAM_IPC_INJECT_BODY,
		                      k == left ? AAM_IPC_F_END : AAM_IPC_F_MORE, b, k, wait_ms);
		b += k;
		left -= k;
	}
	bool head = false;
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
			char msg[AAM_IPC_MAX_ERRMSG + 1];
			aam_ipc_error_decode(f.data, f.len, &code, msg, sizeof(msg));
			if (head) {
				/* After the head: the body is cut short. */
				resp->truncated = true;
				rc = AAM_OK;
			} else {
				rc = code;
				aam_log(AAM_LOG_INFO, "tools.inject_refused",
				        AAM_F_STR("credential", credential), AAM_F_ERR(code),
				        AAM_F_STR("reason", msg));
			}
			break;
		}
		if (h.type == AAM_IPC_INJECT_RESP_HEAD && !head) {
			rc = decode_head(f.data, f.len, resp);
			head = rc == AAM_OK;
		} else if (h.type == AAM_IPC_INJECT_RESP_BODY && head) {
			if (aam_buf_append(&resp->body, f.data, f.len) != AAM_OK) {
				/* Over the limit: stop reading; closing the request aborts it. */
				resp->truncated = true;
				break;
			}
		} else {
			rc = AAM_E_PROTO;
		}
		if (rc == AAM_OK && aam_ipc_flags_final(h.flags))
			break;
	}
	if (rc == AAM_OK && !head)
		rc = AAM_E_PROTO;
	aam_buf_uninit(&f);
	aam_ipc_req_close(q);
	aam_ipc_client_free(c);
	return rc;
}
