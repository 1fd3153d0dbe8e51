/*
 * The tool modules' INJECT client (gateway/tools_vault.c) against a fake
 * vault speaking the real IPC framing on a unix socket: the request's
 * fields as the vault decodes them, bodies split into INJECT_BODY
 * frames, streamed replies, refusals before the head, truncation after
 * it, the response size limit, and an absent vault.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "common/ipc.h"
#include "gateway/tools_vault.h"
#include "tests/lib/testutil.h"
#include "vault/proto.h"

struct fake {
	char *dir;
	char sock[512];
	struct aam_ipc_server *srv;
	pthread_t th;
	/* What the last INJECT carried. */
	char cred[128], method[16], url[1024];
	uint32_t timeout_ms, nheaders;
	size_t body_len, frames;
};
static struct fake F;

struct pending {
	struct aam_buf body;
	char cred[128];
};

static void
pending_free(void *p)
{
	struct pending *q = p;
	aam_buf_uninit(&q->body);
	free(q);
}

/*
 * The head as aam-vault sends it: VERSION is the injected credential's
 * version, or -1 for an older vault's head without it; -2 adds a stray
 * u16 instead (a malformed head).
 */
static int
reply_head(struct aam_ipc_replier *r, uint16_t status, const char *ctype, int version)
{
	struct aam_buf b;
	aam_buf_init(&b, 4096);
	aam_ipc_put_u16(&b, status);
	aam_ipc_put_u32(&b, 2);
	aam_ipc_put_str(&b, "Content-Type");
	aam_ipc_put_bytes(&b, ctype, strlen(ctype));
	aam_ipc_put_str(&b, "X-Upstream");
	aam_ipc_put_bytes(&b, "yes", 3);
	if (version >= 0)
		aam_ipc_put_u32(&b, (uint32_t)version);
	else if (version == -2)
		aam_ipc_put_u16(&b, 7);
	int rc = aam_ipc_reply_frame(r, AAM_IPC_INJECT_RESP_HEAD, AAM_IPC_F_MORE, b.data, b.len);
	aam_buf_uninit(&b);
	return rc;
}

/* Answers a complete INJECT according to its credential's name. */
static int
answer(struct aam_ipc_replier *r, const char *cred)
{
	if (strcmp(cred, "refuse") == 0)
		return aam_ipc_reply_error(r, AAM_E_DENIED,
		                           "URL outside the credential's bindings");
	if (strcmp(cred, "unknown") == 0)
		return aam_ipc_reply_error(r, AAM_E_NOTFOUND, "no such credential");
	if (strcmp(cred, "odd-head") == 0)
		return reply_head(r, 200, "application/json", -2);
	/* "missing" plays an older vault, whose head carries no version. */
	reply_head(r, strcmp(cred, "missing") == 0 ? 404 : 200, "application/json",
	           strcmp(cred, "missing") == 0 ? -1 : 3);
	if (strcmp(cred, "cut") == 0) {
		aam_ipc_reply_frame(r, AAM_IPC_INJECT_RESP_BODY, AAM_IPC_F_MORE, "{\"par", 5);
		return aam_ipc_reply_error(r, AAM_E_IO, "upstream reset");
	}
	if (strcmp(cred, "big") == 0) {
		static uint8_t chunk[64 * 1024];
		memset(chunk, 'x', sizeof(chunk));
		for (int i = 0; i < 8; i++)
			if (aam_ipc_reply_frame(r, AAM_IPC_INJECT_RESP_BODY, AAM_IPC_F_MORE, chunk,
			                        sizeof(chunk)) != AAM_OK)
				return AAM_OK;
		return aam_ipc_reply_frame(r, AAM_IPC_INJECT_RESP_BODY, AAM_IPC_F_END, NULL, 0);
	}
	char body[128];
	snprintf(body, sizeof(body), "{\"len\":%zu,", F.body_len);
	aam_ipc_reply_frame(r, AAM_IPC_INJECT_RESP_BODY, AAM_IPC_F_MORE, body, strlen(body));
	return aam_ipc_reply_frame(r, AAM_IPC_INJECT_RESP_BODY, AAM_IPC_F_END, "\"ok\":true}", 10);
}

static int
handle(void *ctx, const struct aam_ipc_peer *peer, const struct aam_ipc_hdr *h,
       const uint8_t *payload, struct aam_ipc_replier *r)
{
	(void)ctx;
	(void)peer;
	struct pending *q = aam_ipc_replier_state(r);
	if (h->type == AAM_IPC_INJECT_BODY && q != NULL) {
		F.frames++;
		aam_buf_append(&q->body, payload, h->len);
		if (h->flags & AAM_IPC_F_END) {
			F.body_len = q->body.len;
			return answer(r, q->cred);
		}
		return AAM_OK;
	}
	if (h->type != AAM_IPC_INJECT)
		return aam_ipc_reply_error(r, AAM_E_UNSUPPORTED, "only INJECT here");
	F.frames = 1;
	struct aam_ipc_reader rd;
	aam_ipc_reader_init(&rd, payload, h->len);
	vault_ipc_get_strbuf(&rd, F.cred, sizeof(F.cred));
	vault_ipc_get_strbuf(&rd, F.method, sizeof(F.method));
	vault_ipc_get_strbuf(&rd, F.url, sizeof(F.url));
	char scope[64];
	vault_ipc_get_strbuf(&rd, scope, sizeof(scope));
	aam_ipc_get_u32(&rd, &F.timeout_ms);
	aam_ipc_get_u32(&rd, &F.nheaders);
	for (uint32_t i = 0; i < F.nheaders && rd.err == AAM_OK; i++) {
		char name[256];
		const uint8_t *v;
		size_t vl;
		vault_ipc_get_strbuf(&rd, name, sizeof(name));
		aam_ipc_get_bytes(&rd, 8192, &v, &vl);
	}
	const uint8_t *body;
	size_t blen;
	aam_ipc_get_bytes(&rd, AAM_IPC_MAX_PAYLOAD, &body, &blen);
	if (aam_ipc_reader_end(&rd) != AAM_OK)
		return aam_ipc_reply_error(r, AAM_E_PARSE, "bad INJECT");
	if (h->flags & AAM_IPC_F_MORE) {
		q = calloc(1, sizeof(*q));
		aam_buf_init(&q->body, 64u << 20);
		snprintf(q->cred, sizeof(q->cred), "%s", F.cred);
		aam_ipc_replier_set_state(r, q, pending_free);
		return AAM_OK;
	}
	F.body_len = blen;
	return answer(r, F.cred);
}

static void *
run(void *arg)
{
	aam_ipc_server_run(arg);
	return NULL;
}

static int
setup(void **state)
{
	(void)state;
	F.dir = aam_test_mkdtemp("aam-inject");
	snprintf(F.sock, sizeof(F.sock), "%s/vault.sock", F.dir);
	int fd;
	if (aam_ipc_listen(F.sock, 0600, 8, &fd) != AAM_OK)
		return -1;
	struct aam_ipc_server_config cfg = {.handle = handle, .max_queued = 64u << 20};
	if (aam_ipc_server_new(&cfg, fd, &F.srv) != AAM_OK)
		return -1;
	return pthread_create(&F.th, NULL, run, F.srv) == 0 ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	aam_ipc_server_stop(F.srv);
	pthread_join(F.th, NULL);
	aam_ipc_server_free(F.srv);
	aam_test_rmtree(F.dir);
	free(F.dir);
	return 0;
}

static int
inject(const char *cred, size_t body_len, size_t max, struct gwt_response *resp)
{
	struct gwt_request req;
	gwt_request_init(&req);
	req.method = "POST";
	aam_buf_append_str(&req.url, "https://api.example.com/v1/x?q=1");
	gwt_request_add_header(&req, "Content-Type", "application/json");
	gwt_request_add_header(&req, "If-Match", "v1");
	if (body_len > 0) {
		uint8_t *b = malloc(body_len);
		memset(b, 'b', body_len);
		aam_buf_append(&req.body, b, body_len);
		free(b);
	}
	gwt_response_init(resp, max);
	int rc = gwt_vault_inject(F.sock, &req, cred, 1234, resp);
	gwt_request_uninit(&req);
	return rc;
}

static void
test_ok(void **state)
{
	(void)state;
	struct gwt_response r;
	assert_int_equal(inject("crm-api", 10, 1 << 20, &r), AAM_OK);
	assert_string_equal(F.cred, "crm-api");
	assert_string_equal(F.method, "POST");
	assert_string_equal(F.url, "https://api.example.com/v1/x?q=1");
	assert_int_equal(F.timeout_ms, 1234);
	assert_int_equal(F.nheaders, 2);
	assert_int_equal(F.frames, 1);
	assert_int_equal(r.status, 200);
	assert_false(r.truncated);
	/* Header names are lower-cased for lookups. */
	assert_string_equal(gwt_response_header(&r, "content-type"), "application/json");
	assert_string_equal(gwt_response_header(&r, "x-upstream"), "yes");
	assert_null(gwt_response_header(&r, "Content-Type"));
	assert_string_equal(aam_buf_cstr(&r.body), "{\"len\":10,\"ok\":true}");
	assert_int_equal(r.credential_version, 3);
	gwt_response_uninit(&r);
	/* A head without the version (an older vault) still decodes: version unknown. */
	assert_int_equal(inject("missing", 0, 1 << 20, &r), AAM_OK);
	assert_int_equal(r.status, 404);
	assert_int_equal(r.credential_version, 0);
	gwt_response_uninit(&r);
	/* Anything else after the headers is a malformed head. */
	assert_int_not_equal(inject("odd-head", 0, 1 << 20, &r), AAM_OK);
	gwt_response_uninit(&r);
}

static void
test_large_body_is_split(void **state)
{
	(void)state;
	struct gwt_response r;
	size_t n = 2u * 1024 * 1024 + 17;
	assert_int_equal(inject("crm-api", n, 1 << 20, &r), AAM_OK);
	assert_true(F.frames >= 3);
	char want[64];
	snprintf(want, sizeof(want), "{\"len\":%zu,\"ok\":true}", n);
	assert_string_equal(aam_buf_cstr(&r.body), want);
	gwt_response_uninit(&r);
}

static void
test_refusals(void **state)
{
	(void)state;
	struct gwt_response r;
	assert_int_equal(inject("refuse", 0, 1 << 20, &r), AAM_E_DENIED);
	gwt_response_uninit(&r);
	assert_int_equal(inject("unknown", 0, 1 << 20, &r), AAM_E_NOTFOUND);
	gwt_response_uninit(&r);
	/* After the head an error means a cut body, not a failed call. */
	assert_int_equal(inject("cut", 0, 1 << 20, &r), AAM_OK);
	assert_true(r.truncated);
	assert_int_equal(r.status, 200);
	gwt_response_uninit(&r);
	/* Over the limit: the client stops reading and says so. */
	assert_int_equal(inject("big", 0, 100 * 1024, &r), AAM_OK);
	assert_true(r.truncated);
	assert_true(r.body.len <= 100 * 1024);
	gwt_response_uninit(&r);
	/* The connection is still good for the next call. */
	assert_int_equal(inject("crm-api", 1, 1 << 20, &r), AAM_OK);
	gwt_response_uninit(&r);
}

static void
test_no_vault(void **state)
{
	(void)state;
	struct gwt_request req;
	gwt_request_init(&req);
	req.method = "GET";
	aam_buf_append_str(&req.url, "https://api.example.com/");
	struct gwt_response r;
	gwt_response_init(&r, 1024);
	char path[600];
	snprintf(path, sizeof(path), "%s/nothing.sock", F.dir);
	assert_int_equal(gwt_vault_inject(path, &req, "k", 0, &r), AAM_E_CLOSED);
	assert_int_equal(gwt_vault_inject(NULL, &req, "k", 0, &r), AAM_E_INVAL);
	/* A header value the wire cannot carry is refused before anything is sent. */
	gwt_request_add_header(&req, "X-Bad", "a");
	free(req.headers[0].name);
	req.headers[0].name = strdup("bad\xff");
	assert_int_equal(gwt_vault_inject(F.sock, &req, "k", 0, &r), AAM_E_INVAL);
	gwt_response_uninit(&r);
	gwt_request_uninit(&req);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_ok),
	        cmocka_unit_test(test_large_body_is_split),
	        cmocka_unit_test(test_refusals),
	        cmocka_unit_test(test_no_vault),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
