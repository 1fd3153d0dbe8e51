/*
 * The vault's token-free parts, with hostile input: URL parsing and
 * destination binding, the streaming scrubber, SigV4's canonical form
 * (AWS's published example, with the first HMAC step in software here;
 * vault_sigv4_check does it in the token) and the permission table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/hmac.h>

#include "aam/err.h"
#include "common/buf.h"
#include "common/config.h"
#include "vault/binding.h"
#include "vault/perm.h"
#include "vault/proto.h"
#include "vault/scrub.h"
#include "vault/sigv4.h"

/* ---- URL parsing ---------------------------------------------------------------- */

static void
test_url_normalises(void **state)
{
	(void)state;
	struct vault_url *u = malloc(sizeof(*u));
	char why[128];
	struct {
		const char *in, *scheme, *host, *path, *query;
		unsigned port;
	} ok[] = {
	        {"https://API.Example.com/v1/x", "https", "api.example.com", "/v1/x", NULL, 443},
	        {"HTTPS://api.example.com", "https", "api.example.com", "/", NULL, 443},
	        {"https://api.example.com:8443/a/./b/../c?q=1", "https", "api.example.com", "/a/c",
	         "q=1", 8443},
	        {"https://api.example.com/v1/../admin", "https", "api.example.com", "/admin", NULL,
	         443},
	        {"https://api.example.com/v1/%7euser", "https", "api.example.com", "/v1/%7Euser",
	         NULL, 443},
	        {"http://127.0.0.1:8080/", "http", "127.0.0.1", "/", NULL, 8080},
	        {"https://[::1]:9000/x", "https", "::1", "/x", NULL, 9000},
	        {"https://[0:0:0:0:0:0:0:1]/x", "https", "::1", "/x", NULL, 443},
	        {"https://h/a/..", "https", "h", "/", NULL, 443},
	        {"https://h/a/b/.", "https", "h", "/a/b/", NULL, 443},
	        {"https://h?x", "https", "h", "/", "x", 443},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		int rc = vault_url_parse(ok[i].in, u, why, sizeof(why));
		if (rc != AAM_OK)
			fail_msg("%s: %s", ok[i].in, why);
		assert_string_equal(u->scheme, ok[i].scheme);
		assert_string_equal(u->host, ok[i].host);
		assert_string_equal(u->path, ok[i].path);
		assert_int_equal(u->port, ok[i].port);
		if (ok[i].query != NULL)
			assert_string_equal(u->query, ok[i].query);
		else
			assert_false(u->has_query);
	}
	free(u);
}

static void
test_url_refuses_tricks(void **state)
{
	(void)state;
	struct vault_url *u = malloc(sizeof(*u));
	char why[128];
	const char *bad[] = {
	        "https://api.example.com@evil.example/",    /* userinfo */
	        "https://user:pw@api.example.com/",         /* userinfo */
	        "https://api.example.com./v1",              /* trailing dot */
	        "https://api..example.com/",                /* empty label */
	        "https://0x7f.1/",                          /* hex IPv4 */
	        "https://2130706433/",                      /* integer IPv4 */
	        "https://0177.0.0.1/",                      /* octal IPv4 */
	        "https://127.1/",                           /* short IPv4 */
	        "https://example.123/",                     /* numeric last label */
	        "https://[fe80::1%25eth0]/",                /* zone id */
	        "https://api.example.com:0443/",            /* leading zero port */
	        "https://api.example.com:65536/",           /* port range */
	        "https://api.example.com:/",                /* empty port */
	        "https://api.example.com/v1/%2e%2e/admin",  /* encoded dots */
	        "https://api.example.com/v1/%2E%2E/admin",  /* encoded dots */
	        "https://api.example.com/v1%2fadmin",       /* encoded slash */
	        "https://api.example.com/v1/%5c..%5cadmin", /* encoded backslash */
	        "https://api.example.com/v1/%252e%252e/x",  /* double encoding */
	        "https://api.example.com/v1/..;/admin",     /* dot segment with params */
	        "https://api.example.com/v1/%00",           /* NUL */
	        "https://api.example.com/v1/%4",            /* truncated escape */
	        "https://api.example.com/v1/%zz",           /* bad escape */
	        "https://api.example.com/v1\\..\\admin",    /* backslash */
	        "https://api.example.com/v1/#frag",         /* fragment */
	        "https://api.example.com/v 1",              /* space */
	        "https://api.example.com/v1/<x>",           /* invalid path character */
	        "ftp://api.example.com/",                   /* scheme */
	        "//api.example.com/",                       /* no scheme */
	        "https:///path",                            /* no host */
	        "https://exa\xc3\xa9mple.com/",             /* non-ASCII */
	        "",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (vault_url_parse(bad[i], u, why, sizeof(why)) != AAM_E_INVAL)
			fail_msg("accepted: %s", bad[i]);
	}
	free(u);
}

static void
test_binding_match(void **state)
{
	(void)state;
	struct vault_url *u = malloc(sizeof(*u));
	char why[160];
	const char bind[][512] = {"https://api.example.com/v1"};
	struct {
		const char *url;
		int rc;
		const char *reason;
	} cases[] = {
	        {"https://api.example.com/v1", AAM_OK, NULL},
	        {"https://api.example.com/v1/", AAM_OK, NULL},
	        {"https://API.EXAMPLE.COM:443/v1/chat?x=1", AAM_OK, NULL},
	        {"https://api.example.com/v12", AAM_E_DENIED, "path"},
	        {"https://api.example.com/v1/../admin", AAM_E_DENIED, "path"},
	        {"https://api.example.com/", AAM_E_DENIED, "path"},
	        {"https://api.example.com:8443/v1", AAM_E_DENIED, "port"},
	        {"http://api.example.com/v1", AAM_E_DENIED, "scheme"},
	        {"https://evil.example/v1", AAM_E_DENIED, "host"},
	        {"https://api.example.com.evil.example/v1", AAM_E_DENIED, "host"},
	        {"https://93.184.216.34/v1", AAM_E_DENIED, "host"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(vault_url_parse(cases[i].url, u, why, sizeof(why)), AAM_OK);
		int rc = vault_binding_check(bind, 1, u, why, sizeof(why));
		if (rc != cases[i].rc)
			fail_msg("%s: got %d", cases[i].url, rc);
		if (cases[i].reason != NULL && strstr(why, cases[i].reason) == NULL)
			fail_msg("%s: reason '%s'", cases[i].url, why);
	}
	/* A binding ending in '/' covers exactly its subtree; "/" covers everything. */
	const char root[][512] = {"https://api.example.com/", "https://api.example.com/v2/"};
	assert_int_equal(vault_url_parse("https://api.example.com/anything", u, why, sizeof(why)),
	                 AAM_OK);
	assert_int_equal(vault_binding_check(root, 2, u, why, sizeof(why)), AAM_OK);
	assert_false(vault_binding_match("https://api.example.com/v2/", u));
	/* No bindings: nothing matches. */
	assert_int_equal(vault_binding_check(root, 0, u, why, sizeof(why)), AAM_E_DENIED);
	free(u);
}

static void
test_url_format_roundtrip(void **state)
{
	(void)state;
	struct vault_url *u = malloc(sizeof(*u));
	char why[128];
	struct aam_buf b;
	aam_buf_init(&b, 0);
	assert_int_equal(vault_url_parse("HTTPS://Api.Example.com:443/a/%2a/../b?x=%41", u, why,
	                                 sizeof(why)),
	                 AAM_OK);
	assert_int_equal(vault_url_format(u, &b), AAM_OK);
	assert_string_equal(aam_buf_cstr(&b), "https://api.example.com/a/b?x=%41");
	aam_buf_reset(&b);
	assert_int_equal(vault_url_parse("https://[::1]:8443/x", u, why, sizeof(why)), AAM_OK);
	assert_int_equal(vault_url_format(u, &b), AAM_OK);
	assert_string_equal(aam_buf_cstr(&b), "https://[::1]:8443/x");
	aam_buf_uninit(&b);
	free(u);
}

/* ---- scrubbing ------------------------------------------------------------------- */

/* Scrubs IN fed in chunks of STEP bytes. */
static char *
scrub_chunked(struct vault_scrub *s, const char *in, size_t step)
{
	struct aam_buf out;
	aam_buf_init(&out, 0);
	size_t n = strlen(in);
	for (size_t off = 0; off < n; off += step) {
		size_t k = n - off < step ? n - off : step;
		assert_int_equal(vault_scrub_push(s, (const uint8_t *)in + off, k, &out), AAM_OK);
	}
	assert_int_equal(vault_scrub_finish(s, &out), AAM_OK);
	aam_buf_append_byte(&out, 0);
	return (char *)aam_buf_steal(&out, NULL);
}

static void
test_scrub_across_chunks(void **state)
{
	(void)state;
	const char *secret = "sk-live-0123456789";
	const char *in = "a sk-live-0123456789 b sk-live-012345678 c sk-live-0123456789sk-live-"
	                 "0123456789 end sk-live-";
	const char *want = "a [REDACTED] b sk-live-012345678 c [REDACTED][REDACTED] end sk-live-";
	for (size_t step = 1; step <= strlen(in); step++) {
		struct vault_scrub *s;
		assert_int_equal(vault_scrub_new(&s), AAM_OK);
		assert_int_equal(vault_scrub_add(s, secret, strlen(secret)), AAM_OK);
		char *out = scrub_chunked(s, in, step);
		if (strcmp(out, want) != 0)
			fail_msg("step %zu: %s", step, out);
		assert_int_equal(vault_scrub_count(s), 3);
		free(out);
		vault_scrub_free(s);
	}
}

static void
test_scrub_multi_pattern_and_release(void **state)
{
	(void)state;
	struct vault_scrub *s;
	assert_int_equal(vault_scrub_new(&s), AAM_OK);
	assert_int_equal(vault_scrub_add(s, "abcabd", 6), AAM_OK);
	assert_int_equal(vault_scrub_add(s, "YWJjYWJk", 8), AAM_OK);
	assert_int_equal(vault_scrub_add(s, "abcabd", 6), AAM_OK); /* duplicate ignored */
	assert_int_equal(vault_scrub_add(s, "", 0), AAM_OK);       /* empty ignored */
	/* Overlapping near-misses: "abcabcabd" holds one match at offset 3. */
	char *out = scrub_chunked(s, "abcabcabd|YWJjYWJk|abcab", 2);
	assert_string_equal(out, "abc[REDACTED]|[REDACTED]|abcab");
	free(out);
	vault_scrub_free(s);

	/*
	 * Only a real partial match is held back: an SSE event's end goes
	 * out at once, while a tail that may start a secret waits.
	 */
	assert_int_equal(vault_scrub_new(&s), AAM_OK);
	assert_int_equal(vault_scrub_add(s, "TOPSECRET", 9), AAM_OK);
	struct aam_buf o;
	aam_buf_init(&o, 0);
	assert_int_equal(vault_scrub_push(s, (const uint8_t *)"data: x\n\n", 9, &o), AAM_OK);
	assert_int_equal(o.len, 9);
	aam_buf_reset(&o);
	assert_int_equal(vault_scrub_push(s, (const uint8_t *)"data: TOPS", 10, &o), AAM_OK);
	assert_int_equal(o.len, 6);
	aam_buf_reset(&o);
	assert_int_equal(vault_scrub_push(s, (const uint8_t *)"ECRET\n\n", 7, &o), AAM_OK);
	assert_memory_equal(o.data, "[REDACTED]\n\n", 12);
	aam_buf_uninit(&o);
	vault_scrub_free(s);

	/* Headers are scrubbed whole. */
	assert_int_equal(vault_scrub_new(&s), AAM_OK);
	assert_int_equal(vault_scrub_add(s, "k", 1), AAM_OK);
	aam_buf_init(&o, 0);
	assert_int_equal(vault_scrub_once(s, (const uint8_t *)"kkxk", 4, &o), AAM_OK);
	aam_buf_append_byte(&o, 0);
	assert_string_equal((char *)o.data, "[REDACTED][REDACTED]x[REDACTED]");
	aam_buf_uninit(&o);
	/* Too many patterns are refused. */
	for (int i = 0; i < VAULT_SCRUB_MAX_PATTERNS - 1; i++) {
		char p[8];
		snprintf(p, sizeof(p), "p%d", i);
		assert_int_equal(vault_scrub_add(s, p, strlen(p)), AAM_OK);
	}
	assert_int_equal(vault_scrub_add(s, "one-more", 8), AAM_E_TOOBIG);
	vault_scrub_free(s);
}

/* ---- SigV4 --------------------------------------------------------------------------- */

static const char AWS_SECRET[] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

static int
kdate_soft(void *ctx, const uint8_t *data, size_t len, uint8_t mac[32])
{
	const char *secret = ctx;
	char key[128];
	snprintf(key, sizeof(key), "AWS4%s", secret);
	unsigned int ml = 32;
	HMAC(EVP_sha256(), key, (int)strlen(key), data, len, mac, &ml);
	return AAM_OK;
}

static void
test_sigv4_aws_example(void **state)
{
	(void)state;
	struct vault_url *u = malloc(sizeof(*u));
	char why[128];
	assert_int_equal(
	        vault_url_parse("https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08", u,
	                        why, sizeof(why)),
	        AAM_OK);
	const char *names[] = {"Content-Type"};
	const char *values[] = {"application/x-www-form-urlencoded; charset=utf-8"};
	struct vault_sigv4_params p = {
	        .access_key_id = "AKIDEXAMPLE",
	        .region = "us-east-1",
	        .service = "iam",
	        .method = "GET",
	        .hnames = names,
	        .hvalues = values,
	        .nheaders = 1,
	        .now = 1440938160, /* 2015-08-30T12:36:00Z */
	        .kdate = kdate_soft,
	        .kdate_ctx = (void *)(uintptr_t)AWS_SECRET,
	};
	struct vault_sigv4_result *r = malloc(sizeof(*r));
	assert_int_equal(vault_sigv4_sign(&p, u, r), AAM_OK);
	assert_string_equal(r->amz_date, "20150830T123600Z");
	assert_string_equal(r->signature,
	                    "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
	assert_string_equal(
	        r->authorization,
	        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/"
	        "aws4_request, SignedHeaders=content-type;host;x-amz-date, "
	        "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
	assert_false(r->content_sha256);
	free(r);
	free(u);
}

static void
test_sigv4_rewrites_what_it_signs(void **state)
{
	(void)state;
	struct vault_url *u = malloc(sizeof(*u));
	char why[128];
	assert_int_equal(
	        vault_url_parse("https://bucket.s3.amazonaws.com/a%20b/c!d?z=1&a=x+y&a=%41&e", u,
	                        why, sizeof(why)),
	        AAM_OK);
	struct vault_sigv4_params p = {
	        .access_key_id = "AKID",
	        .region = "eu-west-1",
	        .service = "s3",
	        .method = "PUT",
	        .body = (const uint8_t *)"hello",
	        .body_len = 5,
	        .now = 1440938160,
	        .kdate = kdate_soft,
	        .kdate_ctx = (void *)(uintptr_t)AWS_SECRET,
	};
	struct vault_sigv4_result *r = malloc(sizeof(*r));
	assert_int_equal(vault_sigv4_sign(&p, u, r), AAM_OK);
	/* Path segments encoded once; parameters sorted, strictly encoded. */
	assert_string_equal(u->path, "/a%20b/c%21d");
	assert_string_equal(u->query, "a=A&a=x%2By&e=&z=1");
	assert_true(r->content_sha256);
	assert_string_equal(r->payload_hash,
	                    "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
	assert_non_null(
	        strstr(r->authorization, "SignedHeaders=host;x-amz-content-sha256;x-amz-date,"));
	/* No region or service: refused, never signed with empty scope. */
	p.region = "";
	assert_int_equal(vault_sigv4_sign(&p, u, r), AAM_E_INVAL);
	free(r);
	free(u);
}

/* ---- permission table ------------------------------------------------------------------ */

static void
test_perm_table(void **state)
{
	(void)state;
	struct vault_perm *p;
	assert_int_equal(vault_perm_new_default(&p), AAM_OK);
	struct aam_ipc_peer peer = {.pid = 1, .uid = 1000, .gid = 1000};
	char why[160];
	struct {
		enum vault_role role;
		enum vault_op op;
		bool ready;
		int rc;
	} cases[] = {
	        {VAULT_ROLE_GATEWAY, VAULT_OP_INJECT, true, AAM_OK},
	        {VAULT_ROLE_GATEWAY, VAULT_OP_AUDIT_APPEND, true, AAM_OK},
	        {VAULT_ROLE_GATEWAY, VAULT_OP_SIGN_ISSUER, true, AAM_E_PERM},
	        {VAULT_ROLE_GATEWAY, VAULT_OP_SECRET_LIST, true, AAM_E_PERM},
	        {VAULT_ROLE_ATTEST, VAULT_OP_SIGN_ISSUER, true, AAM_OK},
	        {VAULT_ROLE_ATTEST, VAULT_OP_SIGN_AUDIT, true, AAM_E_PERM},
	        {VAULT_ROLE_ATTEST, VAULT_OP_PUBKEY, true, AAM_OK},
	        {VAULT_ROLE_ATTEST, VAULT_OP_INJECT, true, AAM_E_PERM},
	        {VAULT_ROLE_ADMIN, VAULT_OP_SECRET_PUT, true, AAM_OK},
	        {VAULT_ROLE_ADMIN, VAULT_OP_KEYS_INIT, false, AAM_OK},
	        {VAULT_ROLE_ADMIN, VAULT_OP_SECRET_PUT, false, AAM_E_PERM},
	        {VAULT_ROLE_ADMIN, VAULT_OP_SIGN_ISSUER, true, AAM_E_PERM},
	        {VAULT_ROLE_ADMIN, VAULT_OP_INJECT, true, AAM_E_PERM},
	        {VAULT_ROLE_ATTEST, VAULT_OP_SIGN_ISSUER, false, AAM_E_PERM},
	        {VAULT_ROLE_ADMIN, VAULT_OP_UNKNOWN, true, AAM_E_PERM},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = vault_perm_check(p, cases[i].role, &peer, cases[i].op, cases[i].ready, why,
		                          sizeof(why));
		if (rc != cases[i].rc)
			fail_msg("case %zu (%s %s): %d", i, vault_role_name(cases[i].role),
			         vault_op_name(cases[i].op), rc);
	}
	assert_int_equal(vault_op_of(AAM_IPC_SIGN, (const uint8_t *)"\x01", 1),
	                 VAULT_OP_SIGN_AUDIT);
	assert_int_equal(vault_op_of(AAM_IPC_SIGN, NULL, 0), VAULT_OP_SIGN_ISSUER);
	assert_int_equal(vault_op_of(AAM_IPC_INJECT_BODY, NULL, 0), VAULT_OP_UNKNOWN);
	assert_int_equal(vault_op_of(0x04FF, NULL, 0), VAULT_OP_UNKNOWN);
	vault_perm_free(p);

	/* Configuration narrows a role and restricts peers; it cannot widen. */
	struct aam_config_vault cv;
	memset(&cv, 0, sizeof(cv));
	char *ops[] = {"secret_list", "SECRET_SHOW"};
	char *uids[] = {"4242"};
	cv.access.admin.ops.n = 2;
	cv.access.admin.ops.v = ops;
	cv.access.gateway.uids.n = 1;
	cv.access.gateway.uids.v = uids;
	assert_int_equal(vault_perm_new(&cv, &p, why, sizeof(why)), AAM_OK);
	assert_int_equal(vault_perm_check(p, VAULT_ROLE_ADMIN, &peer, VAULT_OP_SECRET_LIST, true,
	                                  why, sizeof(why)),
	                 AAM_OK);
	assert_int_equal(vault_perm_check(p, VAULT_ROLE_ADMIN, &peer, VAULT_OP_SECRET_DELETE, true,
	                                  why, sizeof(why)),
	                 AAM_E_PERM);
	assert_int_equal(vault_perm_check(p, VAULT_ROLE_GATEWAY, &peer, VAULT_OP_INJECT, true, why,
	                                  sizeof(why)),
	                 AAM_E_PERM);
	assert_non_null(strstr(why, "uid 1000"));
	struct aam_ipc_peer ok = {.pid = 1, .uid = 4242, .gid = 7};
	assert_int_equal(vault_perm_check(p, VAULT_ROLE_GATEWAY, &ok, VAULT_OP_INJECT, true, why,
	                                  sizeof(why)),
	                 AAM_OK);
	vault_perm_free(p);
	char *widen[] = {"SIGN_ISSUER"};
	memset(&cv, 0, sizeof(cv));
	cv.access.gateway.ops.n = 1;
	cv.access.gateway.ops.v = widen;
	assert_int_equal(vault_perm_new(&cv, &p, why, sizeof(why)), AAM_E_CONFIG);
	assert_non_null(strstr(why, "vault.access.gateway.ops"));
	char *unknown[] = {"FORMAT_DISK"};
	cv.access.gateway.ops.v = unknown;
	assert_int_equal(vault_perm_new(&cv, &p, why, sizeof(why)), AAM_E_CONFIG);
	char *nouser[] = {"no-such-user-aam-test"};
	memset(&cv, 0, sizeof(cv));
	cv.access.attest.uids.n = 1;
	cv.access.attest.uids.v = nouser;
	assert_int_equal(vault_perm_new(&cv, &p, why, sizeof(why)), AAM_E_CONFIG);
}

/* ---- proto ------------------------------------------------------------------------------- */

static void
test_meta_codec(void **state)
{
	(void)state;
	struct vault_ipc_meta *m = calloc(1, sizeof(*m)), *d = calloc(1, sizeof(*d));
	strcpy(m->name, "openai");
	strcpy(m->type, "bearer");
	m->nbindings = 2;
	strcpy(m->bindings[0], "https://api.openai.com/v1");
	strcpy(m->bindings[1], "https://api.openai.com/v2");
	m->version = 3;
	struct aam_buf b;
	aam_buf_init(&b, 0);
	assert_int_equal(vault_ipc_meta_encode(&b, m), AAM_OK);
	struct aam_ipc_reader r;
	aam_ipc_reader_init(&r, b.data, b.len);
	assert_int_equal(vault_ipc_meta_decode(&r, d), AAM_OK);
	assert_int_equal(aam_ipc_reader_end(&r), AAM_OK);
	assert_memory_equal(m, d, sizeof(*m));
	/* Every truncation fails; so does a trailing byte. */
	for (size_t n = 0; n < b.len; n++) {
		aam_ipc_reader_init(&r, b.data, n);
		vault_ipc_meta_decode(&r, d);
		assert_int_not_equal(aam_ipc_reader_end(&r), AAM_OK);
	}
	aam_buf_append_byte(&b, 0);
	aam_ipc_reader_init(&r, b.data, b.len);
	vault_ipc_meta_decode(&r, d);
	assert_int_not_equal(aam_ipc_reader_end(&r), AAM_OK);
	/* A binding count over 16 is malformed, whatever follows. */
	aam_buf_reset(&b);
	aam_ipc_put_str(&b, "x");
	aam_ipc_put_str(&b, "bearer");
	aam_ipc_put_u32(&b, 17);
	aam_ipc_reader_init(&r, b.data, b.len);
	assert_int_equal(vault_ipc_meta_decode(&r, d), AAM_E_PARSE);
	aam_buf_uninit(&b);
	free(m);
	free(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_url_normalises),
	        cmocka_unit_test(test_url_refuses_tricks),
	        cmocka_unit_test(test_binding_match),
	        cmocka_unit_test(test_url_format_roundtrip),
	        cmocka_unit_test(test_scrub_across_chunks),
	        cmocka_unit_test(test_scrub_multi_pattern_and_release),
	        cmocka_unit_test(test_sigv4_aws_example),
	        cmocka_unit_test(test_sigv4_rewrites_what_it_signs),
	        cmocka_unit_test(test_perm_table),
	        cmocka_unit_test(test_meta_codec),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
