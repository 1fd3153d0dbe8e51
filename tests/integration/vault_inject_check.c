/*
 * INJECT end to end: a real aam-vault on temporary sockets with a SoftHSM2
 * token, secrets stored through aamctl, and a real HTTPS echo upstream on
 * 127.0.0.1 whose certificate comes from a CA generated for this run.
 *
 * Every secret type arrives at the upstream as it should; responses that
 * echo the credential reach the caller scrubbed (also when split into
 * 3-byte chunks); requests outside the bindings are refused before any
 * connection is made; redirects come back unfollowed; server-sent events
 * arrive incrementally; a caller that disconnects mid-stream makes the
 * vault drop the upstream; and no value, nor its base64, is found in the
 * vault's files, its log or aamctl's output.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "aam/err.h"
#include "common/b64.h"
#include "tests/integration/vault_harness.h"
#include "tests/lib/https_echo.h"
#include "tests/lib/testutil.h"
#include "vault/binding.h"
#include "vault/proto.h"
#include "vault/sigv4.h"

#define V_BEARER    "bearer-S3cr3t-Value-0001"
#define V_HEADER    "hdr-Api-Key-0002"
#define V_BASIC     "b4sic-Pa55word-0003"
#define V_QUERY     "q&v=1 +/%sec-0004"
#define V_QUERY_ENC "q%26v%3D1%20%2B%2F%25sec-0004"
#define V_HMAC      "hmac-Key-0005"
#define V_AWS       "aws-Secret-0006/K7MDENG"
#define V_OAUTH     "oauth-Client-Secret-0007"
#define V_TOKEN     "echo-oauth-token-XYZ-0008"

static const char *const VALUES[] = {V_BEARER, V_HEADER, V_BASIC, V_QUERY,         V_HMAC,
                                     V_AWS,    V_OAUTH,  V_TOKEN, "alice:" V_BASIC};

struct ctx {
	struct vh v;
	char *echo_dir;
	struct aam_test_https_echo *echo;
	int port;
	char base[128]; /* https://localhost:PORT */
	struct aam_ipc_client *gw;
};

static struct ctx *C;

static void
put_secret(const char *value, ...)
{
	char *argv[32];
	int n = 0;
	va_list ap;
	va_start(ap, value);
	const char *a;
	while ((a = va_arg(ap, const char *)) != NULL && n < 31)
		argv[n++] = (char *)(uintptr_t)a;
	va_end(ap);
	while (n < 31)
		argv[n++] = NULL;
	char stdin_data[256];
	snprintf(stdin_data, sizeof(stdin_data), "%s\n", value);
	char *out = NULL, *err = NULL;
	int rc = vh_aamctl(&C->v, stdin_data, &out, &err, "secret", "put", argv[0], argv[1],
	                   argv[2], argv[3], argv[4], argv[5], argv[6], argv[7], argv[8], argv[9],
	                   argv[10], argv[11], argv[12], argv[13], argv[14], NULL);
	if (rc != 0)
		fail_msg("secret put %s: exit %d: %s", argv[0], rc, err != NULL ? err : "");
	assert_non_null(strstr(out, "fingerprint:"));
	free(out);
	free(err);
}

static int
setup(void **state)
{
	(void)state;
	if (!aam_test_softhsm_available())
		return 0;
	C = calloc(1, sizeof(*C));
	C->echo_dir = aam_test_mkdtemp("aam-echo");
	if (C->echo_dir == NULL || aam_test_https_echo_start(C->echo_dir, &C->echo) != 0)
		return -1;
	aam_test_https_echo_set_token(C->echo, V_TOKEN);
	C->port = aam_test_https_echo_port(C->echo);
	snprintf(C->base, sizeof(C->base), "https://localhost:%d", C->port);
	char extra[1200];
	snprintf(extra, sizeof(extra), "  ca_bundle: %s\n  request_timeout: 60s\n",
	         aam_test_https_echo_ca(C->echo));
	if (vh_setup(&C->v, extra) != 0 || vh_start(&C->v) != 0)
		return -1;
	char *out = NULL;
	if (vh_aamctl(&C->v, NULL, &out, NULL, "keys", "init", NULL) != 0)
		return -1;
	free(out);

	char bind[256], tok[256];
	snprintf(bind, sizeof(bind), "%s/v1/", C->base);
	snprintf(tok, sizeof(tok), "%s/oauth/token", C->base);
	put_secret(V_BEARER, "api-bearer", "--type", "bearer", "--bind", bind, NULL);
	put_secret(V_HEADER, "api-header", "--type", "header", "--header", "x-api-key", "--bind",
	           bind, NULL);
	put_secret(V_BASIC, "api-basic", "--type", "basic", "--username", "alice", "--bind", bind,
	           NULL);
	put_secret(V_QUERY, "api-query", "--type", "query", "--param", "api_key", "--bind", bind,
	           NULL);
	put_secret(V_HMAC, "api-hmac", "--type", "hmac", "--header", "X-Signature", "--bind", bind,
	           NULL);
	put_secret(V_AWS, "api-aws", "--type", "aws-sigv4", "--aws-access-key-id", "AKIDTEST",
	           "--region", "us-east-1", "--service", "execute-api", "--bind", bind, NULL);
	put_secret(V_OAUTH, "api-oauth", "--type", "oauth2-client-credentials", "--token-url", tok,
	           "--client-id", "client-1", "--scope", "read write", "--bind", bind, NULL);
	C->gw = vh_connect(C->v.sock_gw);
	return C->gw != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	if (C == NULL)
		return 0;
	aam_ipc_client_free(C->gw);
	vh_teardown(&C->v);
	aam_test_https_echo_stop(C->echo);
	aam_test_rmtree(C->echo_dir);
	free(C->echo_dir);
	free(C);
	C = NULL;
	return 0;
}

static char *
url(const char *path)
{
	static char buf[512];
	snprintf(buf, sizeof(buf), "%s%s", C->base, path);
	return buf;
}

/* The last request the upstream received (malloc'd). */
static char *
last_request(size_t *len)
{
	char *r = aam_test_https_echo_request(C->echo, 0, len);
	assert_non_null(r);
	return r;
}

static void
b64(const char *in, char *out, size_t outsz)
{
	assert_int_equal(aam_b64_encode(in, strlen(in), out, outsz, NULL, AAM_B64_STD), AAM_OK);
}

/* The response echoes the request: the credential must be gone from it. */
static void
assert_scrubbed(const struct vh_resp *r, const char *value)
{
	char e[256];
	b64(value, e, sizeof(e));
	if (vh_contains(r->body.data, r->body.len, value) ||
	    vh_contains(r->body.data, r->body.len, e) ||
	    vh_contains(r->headers.data, r->headers.len, value))
		fail_msg("response carries the credential:\n%.*s", (int)r->body.len,
		         (const char *)r->body.data);
	assert_true(vh_contains(r->body.data, r->body.len, "[REDACTED]"));
}

static void
test_bearer(void **state)
{
	AAM_TEST_SOFTHSM_REQUIRE();
	(void)state;
	/* The caller's own Authorization is dropped, whatever it says. */
	const char *hdrs[] = {"Authorization", "Bearer caller-forged", "Accept", "text/plain",
	                      NULL};
	struct vh_resp r;
	assert_int_equal(
	        vh_inject(C->gw, "api-bearer", NULL, "GET", url("/v1/echo"), hdrs, NULL, 0, &r),
	        AAM_OK);
	assert_int_equal(r.status, 200);
	assert_true(r.head_first);
	/* The head names the version injected (the credential was put once). */
	assert_int_equal(r.credential_version, 1);
	size_t n;
	char *seen = last_request(&n);
	assert_non_null(strstr(seen, "Authorization: Bearer " V_BEARER "\r\n"));
	assert_null(strstr(seen, "caller-forged"));
	assert_non_null(strstr(seen, "Accept: text/plain\r\n"));
	assert_scrubbed(&r, V_BEARER);
	assert_true(vh_contains(r.body.data, r.body.len, "Authorization: Bearer [REDACTED]"));
	free(seen);
	vh_resp_free(&r);
}

static void
test_header_type(void **state)
{
	AAM_TEST_SOFTHSM_REQUIRE();
	(void)state;
	const char *hdrs[] = {"X-API-Key", "forged", NULL};
	struct vh_resp r;
	assert_int_equal(vh_inject(C->gw, "api-header", NULL, "POST", url("/v1/items"), hdrs,
	                           "{\"a\":1}", 7, &r),
	                 AAM_OK);
	assert_int_equal(r.status, 200);
	char *seen = last_request(NULL);
	assert_non_null(strstr(seen, "x-api-key: " V_HEADER "\r\n"));
	assert_null(strstr(seen, "forged"));
	assert_non_null(strstr(seen, "POST /v1/items HTTP/1.1"));
	assert_non_null(strstr(seen, "\r\n\r\n{\"a\":1}"));
	assert_scrubbed(&r, V_HEADER);
	free(seen);
	vh_resp_free(&r);
}

static void
test_basic(void **state)
{
	AAM_TEST_SOFTHSM_REQUIRE();
	(void)state;
	struct vh_resp r;
	assert_int_equal(
	        vh_inject(C->gw, "api-basic", NULL, "GET", url("/v1/me"), NULL, NULL, 0, &r),
	        AAM_OK);
	char e[128], line[200];
	b64("alice:" V_BASIC, e, sizeof(e));
	snprintf(line, sizeof(line), "Authorization: Basic %s\r\n", e);
	char *seen = last_request(NULL);
	assert_non_null(strstr(seen, line));
	/* The echo shows the base64 form, which is scrubbed. */
	assert_false(vh_contains(r.body.data, r.body.len, e));
	assert_scrubbed(&r, V_BASIC);
	free(seen);
	vh_resp_free(&r);
}

static void
test_query(void **state)
{
	AAM_TEST_SOFTHSM_REQUIRE();
	(void)state;
	struct vh_resp r;
	assert_int_equal(vh_inject(C->gw, "api-query", NULL, "GET",
	                           url("/v1/search?q=cats&api_key=caller&n=2"), NULL, NULL, 0, &r),
	                 AAM_OK);
	char *seen = last_request(NULL);
	/* The caller's parameter of the same name is replaced; the value is escaped. */
	assert_non_null(strstr(seen, "GET /v1/search?q=cats&n=2&api_key=" V_QUERY_ENC " HTTP/1.1"));
	assert_null(strstr(seen, "api_key=caller"));
	assert_false(vh_contains(r.body.data, r.body.len, V_QUERY_ENC));
	assert_true(vh_contains(r.body.data, r.body.len, "api_key=[REDACTED]"));
	free(seen);
	vh_resp_free(&r);
}

static void
test_hmac(void **state)
{
	AAM_TEST_SOFTHSM_REQUIRE();
	(void)state;
	const char *body = "{\"event\":\"push\",\"id\":42}";
	const char *hdrs[] = {"Content-Type", "application/json", "x-signature", "forged", NULL};
	struct vh_resp r;
	assert_int_equal(vh_inject(C->gw, "api-hmac", NULL, "POST", url("/v1/hook"), hdrs, body,
	                           strlen(body), &r),
	                 AAM_OK);
	uint8_t mac[32];
	unsigned ml = 32;
	HMAC(EVP_sha256(), V_HMAC, (int)strlen(V_HMAC), (const uint8_t *)body, strlen(body), mac,
	     &ml);
	char line[128];
	int n = snprintf(line, sizeof(line), "X-Signature: ");
	for (int i = 0; i < 32; i++)
		n += snprintf(line + n, sizeof(line) - (size_t)n, "%02x", mac[i]);
	snprintf(line + n, sizeof(line) - (size_t)n, "\r\n");
	char *seen = last_request(NULL);
	assert_non_null(strstr(seen, line));
	assert_null(strstr(seen, "forged"));
	assert_non_null(strstr(seen, "Content-Type: application/json\r\n"));
	free(seen);
	vh_resp_free(&r);
}

static int
kdate_soft(void *ctx, const uint8_t *data, size_t len, uint8_t mac[32])
{
	(void)ctx;
	const char key[] = "AWS4" V_AWS;
	unsigned ml = 32;
	HMAC(EVP_sha256(), key, (int)strlen(key), data, len, mac, &ml);
	return AAM_OK;
}

/* Value of header NAME in raw request REQ (NUL-terminated copy), or NULL. */
static char *
header_value(const char *req, const char *name)
{
	char pat[128];
	snprintf(pat, sizeof(pat), "\r\n%s: ", name);
	const char *p = strcasestr(req, pat);
	if (p == NULL)
		return NULL;
	p += strlen(pat);
	size_t n = strcspn(p, "\r");
	char *v = malloc(n + 1);
	memcpy(v, p, n);
	v[n] = '\0';
	return v;
}

static void
test_aws_sigv4(void **state)
{
	AAM_TEST_SOFTHSM_REQUIRE();
	(void)state;
	const char *body = "Action=Go";
	const char *hdrs[] = {"Content-Type", "application/x-www-form-urlencoded", "X-Amz-Date",
	                      "19990101T000000Z", NULL};
	struct vh_resp r;
	assert_int_equal(vh_inject(C->gw, "api-aws", NULL, "POST", url("/v1/prod/run?b=2&a=x%20y"),
	                           hdrs, body, strlen(body), &r),
	                 AAM_OK);
	assert_int_equal(r.status, 200);
	char *seen = last_request(NULL);
	char *auth = header_value(seen, "Authorization");
	char *date = header_value(seen, "X-Amz-Date");
	assert_non_null(auth);
	assert_non_null(date);
	assert_string_not_equal(date, "19990101T000000Z");
	assert_non_null(strstr(auth, "AWS4-HMAC-SHA256 Credential=AKIDTEST/"));
	assert_non_null(strstr(auth, "/us-east-1/execute-api/aws4_request"));
	assert_non_null(strstr(auth, "SignedHeaders=content-type;host;x-amz-date,"));
	/* The query went out in the canonical (sorted) form that was signed. */
	assert_non_null(strstr(seen, "POST /v1/prod/run?a=x%20y&b=2 HTTP/1.1"));

	/* Recompute with the secret in software at the same instant: same signature. */
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	assert_non_null(strptime(date, "%Y%m%dT%H%M%SZ", &tm));
	struct vault_url *u = malloc(sizeof(*u));
	char why[128];
	assert_int_equal(vault_url_parse(url("/v1/prod/run?b=2&a=x%20y"), u, why, sizeof(why)),
	                 AAM_OK);
	const char *names[] = {"Content-Type"};
	const char *values[] = {"application/x-www-form-urlencoded"};
	struct vault_sigv4_params p = {.access_key_id = "AKIDTEST",
	                               .region = "us-east-1",
	                               .service = "execute-api",
	                               .method = "POST",
	                               .hnames = names,
	                               .hvalues = values,
	                               .nheaders = 1,
	                               .body = (const uint8_t *)body,
	                               .body_len = strlen(body),
	                               .now = timegm(&tm),
	                               .kdate = kdate_soft};
	struct vault_sigv4_result *res = malloc(sizeof(*res));
	assert_int_equal(vault_sigv4_sign(&p, u, res), AAM_OK);
	assert_string_equal(auth, res->authorization);
	free(res);
	free(u);
	free(auth);
	free(date);
	free(seen);
	vh_resp_free(&r);
}

static void
test_oauth2_client_credentials(void **state)
{
	AAM_TEST_SOFTHSM_REQUIRE();
	(void)state;
	size_t before = aam_test_https_echo_count(C->echo);
	struct vh_resp r;
	assert_int_equal(
	        vh_inject(C->gw, "api-oauth", NULL, "GET", url("/v1/data"), NULL, NULL, 0, &r),
	        AAM_OK);
	assert_int_equal(r.status, 200);
	/* A token request, then the API request. */
	assert_int_equal(aam_test_https_echo_count(C->echo), before + 2);
	char *api = aam_test_https_echo_request(C->echo, 0, NULL);
	char *tokreq = aam_test_https_echo_request(C->echo, 1, NULL);
	char e[128], line[200];
	b64("client-1:" V_OAUTH, e, sizeof(e));
	snprintf(line, sizeof(line), "Authorization: Basic %s\r\n", e);
	assert_non_null(strstr(tokreq, "POST /oauth/token HTTP/1.1"));
	assert_non_null(strstr(tokreq, line));
	assert_non_null(strstr(tokreq, "\r\n\r\ngrant_type=client_credentials&scope=read+write"));
	assert_non_null(strstr(api, "Authorization: Bearer " V_TOKEN "\r\n"));
	assert_scrubbed(&r, V_TOKEN);
	vh_resp_free(&r);
	free(api);
	free(tokreq);

	/* Cached until shortly before expiry: no second token request. */
	assert_int_equal(
	        vh_inject(C->gw, "api-oauth", NULL, "GET", url("/v1/data"), NULL, NULL, 0, &r),
	        AAM_OK);
	assert_int_equal(aam_test_https_echo_count(C->echo), before + 3);
	vh_resp_free(&r);

	/* A narrower scope gets its own token; a wider one is refused. */
	assert_int_equal(
	        vh_inject(C->gw, "api-oauth", "read", "GET", url("/v1/data"), NULL, NULL, 0, &r),
	        AAM_OK);
	assert_int_equal(aam_test_https_echo_count(C->echo), before + 5);
	char *t2 = aam_test_https_echo_request(C->echo, 1, NULL);
	assert_non_null(strstr(t2, "grant_type=client_credentials&scope=read"));
	assert_null(strstr(t2, "scope=read+write"));
	free(t2);
	vh_resp_free(&r);
	assert_int_equal(vh_inject(C->gw, "api-oauth", "read admin", "GET", url("/v1/data"), NULL,
	                           NULL, 0, &r),
	                 AAM_E_DENIED);
	assert_int_equal(aam_test_https_echo_count(C->echo), before + 5);
	vh_resp_free(&r);
}

static void
test_scrub_split_chunks(void **state)
{
	AAM_TEST_SOFTHSM_REQUIRE();
	(void)state;
	struct vh_resp r;
	assert_int_equal(
	        vh_inject(C->gw, "api-bearer", NULL, "GET", url("/v1/split"), NULL, NULL, 0, &r),
	        AAM_OK);
	assert_int_equal(r.status, 200);
	/* 3-byte chunks: the secret straddles many of them. */
	assert_true(r.body_frames > 3);
	assert_scrubbed(&r, V_BEARER);
	assert_true(vh_contains(r.body.data, r.body.len, "Authorization: Bearer [REDACTED]\r\n"));
	vh_resp_free(&r);
	assert_int_equal(
	        vh_inject(C->gw, "api-basic", NULL, "GET", url("/v1/split"), NULL, NULL, 0, &r),
	        AAM_OK);
	char e[128];
	b64("alice:" V_BASIC, e, sizeof(e));
	assert_false(vh_contains(r.body.data, r.body.len, e));
	assert_true(vh_contains(r.body.data, r.body.len, "Authorization: Basic [REDACTED]\r\n"));
	vh_resp_free(&r);
}

static void
test_refusals(void **state)
{
	AAM_TEST_SOFTHSM_REQUIRE();
	(void)state;
	char other_port[128], ip_literal[128], http[128], userinfo[256], trailing[128];
	snprintf(other_port, sizeof(other_port), "https://localhost:%d/v1/x",
	         C->port == 65535 ? 1 : C->port + 1);
	snprintf(ip_literal, sizeof(ip_literal), "https://127.0.0.1:%d/v1/x", C->port);
	snprintf(http, sizeof(http), "http://localhost:%d/v1/x", C->port);
	snprintf(userinfo, sizeof(userinfo), "https://localhost:%d@evil.example/v1/x", C->port);
	snprintf(trailing, sizeof(trailing), "https://localhost.:%d/v1/x", C->port);
	/* url() returns one static buffer: each path gets its own copy here. */
	static const char *const paths[] = {"/v2/x",
	                                    "/v1",
	                                    "/v1/../admin",
	                                    "/v1/%2e%2e/admin",
	                                    "/v1/%2E%2E/admin",
	                                    "/v1%2fadmin",
	                                    "/v1/..;/admin",
	                                    "/v1/x#frag",
	                                    "/v1/x"};
	char p[9][512];
	for (size_t i = 0; i < 9; i++) {
		const char *u = url(paths[i]);
		assert_true(strlen(u) < sizeof(p[i]));
		memcpy(p[i], u, strlen(u) + 1);
	}
	struct {
		const char *url;
		const char *cred;
	} bad[] = {
	        {"https://evil.example/v1/x", "api-bearer"},
	        {other_port, "api-bearer"},
	        {ip_literal, "api-bearer"},
	        {http, "api-bearer"},
	        {userinfo, "api-bearer"},
	        {trailing, "api-bearer"},
	        {p[0], "api-bearer"},
	        {p[1], "api-bearer"}, /* the binding is "/v1/": its subtree only */
	        {p[2], "api-bearer"},
	        {p[3], "api-bearer"},
	        {p[4], "api-query"},
	        {p[5], "api-header"},
	        {p[6], "api-basic"},
	        {p[7], "api-bearer"},
	        {p[8], "no-such-credential"},
	};
	size_t before = aam_test_https_echo_count(C->echo);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vh_resp r;
		int rc = vh_inject(C->gw, bad[i].cred, NULL, "GET", bad[i].url, NULL, NULL, 0, &r);
		if (rc == AAM_OK)
			fail_msg("not refused: %s", bad[i].url);
		assert_int_equal(r.status, 0);
		assert_true(rc == AAM_E_DENIED || rc == AAM_E_INVAL || rc == AAM_E_NOTFOUND);
		assert_true(r.msg[0] != '\0');
		vh_resp_free(&r);
	}
	/* Refused before any connection: the upstream saw nothing. */
	assert_int_equal(aam_test_https_echo_count(C->echo), before);

	/* Header injection and refused methods. */
	const char *crlf[] = {"X-Note", "a\r\nAuthorization: Bearer x", NULL};
	struct vh_resp r;
	assert_int_equal(
	        vh_inject(C->gw, "api-bearer", NULL, "GET", url("/v1/x"), crlf, NULL, 0, &r),
	        AAM_E_INVAL);
	vh_resp_free(&r);
	assert_int_equal(
	        vh_inject(C->gw, "api-bearer", NULL, "TRACE", url("/v1/x"), NULL, NULL, 0, &r),
	        AAM_E_INVAL);
	vh_resp_free(&r);
	assert_int_equal(
	        vh_inject(C->gw, "api-bearer", NULL, "get", url("/v1/x"), NULL, NULL, 0, &r),
	        AAM_E_INVAL);
	vh_resp_free(&r);
	assert_int_equal(aam_test_https_echo_count(C->echo), before);
}

static void
test_redirect_not_followed(void **state)
{
	AAM_TEST_SOFTHSM_REQUIRE();
	(void)state;
	size_t before = aam_test_https_echo_count(C->echo);
	struct vh_resp r;
	assert_int_equal(
	        vh_inject(C->gw, "api-bearer", NULL, "GET", url("/v1/redirect"), NULL, NULL, 0, &r),
	        AAM_OK);
	assert_int_equal(r.status, 302);
	assert_true(vh_contains(r.headers.data, r.headers.len,
	                        "Location: https://evil.example/stolen"));
	assert_int_equal(aam_test_https_echo_count(C->echo), before + 1);
	vh_resp_free(&r);
	/* Other statuses come back as they are. */
	assert_int_equal(vh_inject(C->gw, "api-bearer", NULL, "DELETE", url("/v1/status/404"), NULL,
	                           NULL, 0, &r),
	                 AAM_OK);
	assert_int_equal(r.status, 404);
	assert_true(vh_contains(r.body.data, r.body.len, "DELETE /v1/status/404"));
	vh_resp_free(&r);
}

/* Sends an INJECT of a GET and returns the open request. */
static struct aam_ipc_req *
start_get(struct aam_ipc_client *c, const char *cred, const char *u)
{
	struct aam_buf req;
	aam_buf_init(&req, 0);
	aam_ipc_put_str(&req, cred);
	aam_ipc_put_str(&req, "GET");
	aam_ipc_put_str(&req, u);
	aam_ipc_put_str(&req, "");
	aam_ipc_put_u32(&req, 0);
	aam_ipc_put_u32(&req, 0);
	aam_ipc_put_bytes(&req, NULL, 0);
	struct aam_ipc_req *q;
	assert_int_equal(aam_ipc_req_open(c, &q), AAM_OK);
	assert_int_equal(aam_ipc_req_send(q, AAM_IPC_INJECT, 0, req.data, req.len, 5000), AAM_OK);
	aam_buf_uninit(&req);
	return q;
}

static void
test_sse_incremental(void **state)
{
	AAM_TEST_SOFTHSM_REQUIRE();
	(void)state;
	struct aam_ipc_req *q = start_get(C->gw, "api-bearer", url("/v1/sse"));
	struct aam_ipc_hdr h;
	struct aam_buf f;
	aam_buf_init(&f, 0);
	assert_int_equal(aam_ipc_req_recv(q, 10000, &h, &f), AAM_OK);
	assert_int_equal(h.type, AAM_IPC_INJECT_RESP_HEAD);
	/*
	 * The upstream holds its second event until released: the first one
	 * must already have reached the caller.
	 */
	aam_buf_reset(&f);
	assert_int_equal(aam_ipc_req_recv(q, 5000, &h, &f), AAM_OK);
	assert_int_equal(h.type, AAM_IPC_INJECT_RESP_BODY);
	assert_int_equal(h.flags, AAM_IPC_F_MORE);
	assert_int_equal(f.len, 11);
	assert_memory_equal(f.data, "data: one\n\n", 11);
	aam_test_https_echo_release(C->echo);
	aam_buf_reset(&f);
	for (;;) {
		assert_int_equal(aam_ipc_req_recv(q, 10000, &h, &f), AAM_OK);
		assert_int_equal(h.flags & AAM_IPC_F_ERROR, 0);
		if (aam_ipc_flags_final(h.flags))
			break;
	}
	assert_true(vh_contains(f.data, f.len, "data: two\n\n"));
	aam_buf_uninit(&f);
	aam_ipc_req_close(q);
}

static void
test_caller_disconnects_mid_stream(void **state)
{
	AAM_TEST_SOFTHSM_REQUIRE();
	(void)state;
	size_t aborts = aam_test_https_echo_aborts(C->echo);
	struct aam_ipc_client *c = vh_connect(C->v.sock_gw);
	assert_non_null(c);
	struct aam_ipc_req *q = start_get(c, "api-bearer", url("/v1/slow"));
	struct aam_ipc_hdr h;
	struct aam_buf f;
	aam_buf_init(&f, 0);
	assert_int_equal(aam_ipc_req_recv(q, 10000, &h, &f), AAM_OK);
	assert_int_equal(h.type, AAM_IPC_INJECT_RESP_HEAD);
	assert_int_equal(aam_ipc_req_recv(q, 10000, &h, &f), AAM_OK);
	assert_int_equal(h.type, AAM_IPC_INJECT_RESP_BODY);
	aam_buf_uninit(&f);
	aam_ipc_req_close(q);
	aam_ipc_client_free(c);
	/* The vault notices and drops the upstream connection. */
	bool dropped = false;
	for (int i = 0; i < 100 && !dropped; i++) {
		dropped = aam_test_https_echo_aborts(C->echo) > aborts;
		usleep(50000);
	}
	assert_true(dropped);
	/* And keeps serving. */
	struct vh_resp r;
	assert_int_equal(
	        vh_inject(C->gw, "api-bearer", NULL, "GET", url("/v1/after"), NULL, NULL, 0, &r),
	        AAM_OK);
	assert_int_equal(r.status, 200);
	vh_resp_free(&r);
}

static void
test_large_body_in_frames(void **state)
{
	AAM_TEST_SOFTHSM_REQUIRE();
	(void)state;
	size_t n = 3u * 1024 * 1024 + 17;
	uint8_t *body = malloc(n);
	for (size_t i = 0; i < n; i++)
		body[i] = (uint8_t)(i * 131 + 7);
	const char *hdrs[] = {"Content-Type", "application/octet-stream", NULL};
	struct vh_resp r;
	assert_int_equal(
	        vh_inject(C->gw, "api-bearer", NULL, "PUT", url("/v1/sink"), hdrs, body, n, &r),
	        AAM_OK);
	uint8_t md[32];
	SHA256(body, n, md);
	char want[128];
	int k = snprintf(want, sizeof(want), "len=%zu sha256=", n);
	for (int i = 0; i < 32; i++)
		k += snprintf(want + k, sizeof(want) - (size_t)k, "%02x", md[i]);
	assert_int_equal(r.body.len, (size_t)k);
	assert_memory_equal(r.body.data, want, (size_t)k);
	vh_resp_free(&r);
	free(body);
}

static void
test_wrong_socket(void **state)
{
	AAM_TEST_SOFTHSM_REQUIRE();
	(void)state;
	const char *socks[] = {C->v.sock_admin, C->v.sock_at};
	for (size_t i = 0; i < 2; i++) {
		struct aam_ipc_client *c = vh_connect(socks[i]);
		assert_non_null(c);
		struct vh_resp r;
		size_t before = aam_test_https_echo_count(C->echo);
		assert_int_equal(
		        vh_inject(c, "api-bearer", NULL, "GET", url("/v1/x"), NULL, NULL, 0, &r),
		        AAM_E_PERM);
		assert_int_equal(aam_test_https_echo_count(C->echo), before);
		vh_resp_free(&r);
		aam_ipc_client_free(c);
	}
}

/* Last: nothing the vault wrote or printed holds a value or its base64. */
static void
test_no_value_anywhere(void **state)
{
	AAM_TEST_SOFTHSM_REQUIRE();
	(void)state;
	/* The listing and details print metadata only. */
	char *out = NULL;
	assert_int_equal(vh_aamctl(&C->v, NULL, &out, NULL, "secret", "list", NULL), 0);
	assert_non_null(strstr(out, "api-oauth"));
	free(out);
	assert_int_equal(vh_aamctl(&C->v, NULL, &out, NULL, "secret", "show", "api-basic", NULL),
	                 0);
	assert_non_null(strstr(out, "username:    alice"));
	free(out);
	assert_int_equal(vh_stop(&C->v), 0);
	char aamctl_out[1200];
	snprintf(aamctl_out, sizeof(aamctl_out), "%s/aamctl.out", C->v.dir);
	size_t len = 0;
	char *printed = aam_test_read_file(aamctl_out, &len);
	assert_non_null(printed);
	assert_true(len > 0);
	for (size_t i = 0; i < sizeof(VALUES) / sizeof(VALUES[0]); i++) {
		char e[256];
		b64(VALUES[i], e, sizeof(e));
		const char *forms[] = {VALUES[i], e};
		for (size_t j = 0; j < 2; j++) {
			size_t fl = strlen(forms[j]);
			if (vh_tree_contains(C->v.state, forms[j], fl))
				fail_msg("vault state holds '%s'", forms[j]);
			if (vh_tree_contains(C->v.hsm.token_dir, forms[j], fl))
				fail_msg("token files hold '%s' readably", forms[j]);
			char *log = aam_test_read_file(C->v.log, &len);
			assert_non_null(log);
			if (memmem(log, len, forms[j], fl) != NULL)
				fail_msg("vault log holds '%s'", forms[j]);
			free(log);
			if (strstr(printed, forms[j]) != NULL)
				fail_msg("aamctl printed '%s'", forms[j]);
		}
	}
	free(printed);
	assert_int_equal(vh_start(&C->v), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_bearer),
	        cmocka_unit_test(test_header_type),
	        cmocka_unit_test(test_basic),
	        cmocka_unit_test(test_query),
	        cmocka_unit_test(test_hmac),
	        cmocka_unit_test(test_aws_sigv4),
	        cmocka_unit_test(test_oauth2_client_credentials),
	        cmocka_unit_test(test_scrub_split_chunks),
	        cmocka_unit_test(test_refusals),
	        cmocka_unit_test(test_redirect_not_followed),
	        cmocka_unit_test(test_sse_incremental),
	        cmocka_unit_test(test_caller_disconnects_mid_stream),
	        cmocka_unit_test(test_large_body_in_frames),
	        cmocka_unit_test(test_wrong_socket),
	        cmocka_unit_test(test_no_value_anywhere),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
