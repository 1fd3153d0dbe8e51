/*
 * Helpers for aam-attest's tests.  See attest_testutil.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "aam/err.h"
#include "common/b64.h"
#include "common/buf.h"
#include "common/jose.h"
#include "common/json.h"
#include "tests/lib/testutil.h"
#include "tests/unit/attest/attest_testutil.h"

struct at_recv {
	struct aam_buf body;
	struct at_resp *r;
};

static size_t
at_on_body(char *p, size_t size, size_t n, void *ud)
{
	struct at_recv *rv = ud;
	return aam_buf_append(&rv->body, p, size * n) == AAM_OK ? size * n : 0;
}

static void
header_value(const char *p, size_t len, const char *name, char *dst, size_t cap)
{
	size_t nl = strlen(name);
	if (len <= nl || strncasecmp(p, name, nl) != 0)
		return;
	size_t v = nl;
	while (v < len && p[v] == ' ')
		v++;
	size_t e = len;
	while (e > v && (p[e - 1] == '\r' || p[e - 1] == '\n'))
		e--;
	size_t c = e - v < cap - 1 ? e - v : cap - 1;
	memcpy(dst, p + v, c);
	dst[c] = '\0';
}

static size_t
at_on_header(char *p, size_t size, size_t n, void *ud)
{
	struct at_recv *rv = ud;
	header_value(p, size * n, "Retry-After:", rv->r->retry_after, sizeof(rv->r->retry_after));
	header_value(p, size * n, "Cache-Control:", rv->r->cache_control,
	             sizeof(rv->r->cache_control));
	return size * n;
}

static int
at_perform(uint16_t port, const char *method, const char *path, const void *body, size_t len,
           struct at_resp *r)
{
	memset(r, 0, sizeof(*r));
	struct at_recv rv = {.r = r};
	aam_buf_init(&rv.body, 4u << 20);
	char url[512];
	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", (unsigned)port, path);
	CURL *c = curl_easy_init();
	if (c == NULL)
		return -1;
	struct curl_slist *h = curl_slist_append(NULL, "Expect:");
	h = curl_slist_append(h, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, at_on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &rv);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, at_on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &rv);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	if (body != NULL) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	}
	CURLcode rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	size_t n = 0;
	r->body = (char *)aam_buf_steal(&rv.body, &n);
	if (r->body == NULL)
		r->body = strdup("");
	if (n > 0)
		aam_json_parse(r->body, n, NULL, &r->json, NULL);
	aam_buf_uninit(&rv.body);
	return rc == CURLE_OK ? 0 : -1;
}

int
at_request(uint16_t port, const char *method, const char *path, const json_t *body,
           struct at_resp *r)
{
	if (body == NULL)
		return at_perform(port, method, path, NULL, 0, r);
	char *s = json_dumps(body, JSON_COMPACT);
	int rc = at_perform(port, method, path, s, strlen(s), r);
	free(s);
	return rc;
}

int
at_post_raw(uint16_t port, const char *path, const void *body, size_t len, struct at_resp *r)
{
	return at_perform(port, "POST", path, body, len, r);
}

void
at_resp_free(struct at_resp *r)
{
	json_decref(r->json);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

const char *
at_err_code(const struct at_resp *r)
{
	return json_string_value(json_object_get(json_object_get(r->json, "error"), "code"));
}

char *
at_b64(const void *p, size_t n)
{
	size_t cap = aam_b64_encoded_len(n, AAM_B64_URL) + 1;
	char *s = malloc(cap);
	assert_non_null(s);
	assert_int_equal(aam_b64_encode(p, n, s, cap, NULL, AAM_B64_URL), AAM_OK);
	return s;
}

uint8_t *
at_unb64(const char *s, size_t *n)
{
	if (s == NULL)
		return NULL;
	size_t cap = aam_b64_decoded_max(strlen(s)) + 1;
	uint8_t *p = malloc(cap);
	if (p == NULL || aam_b64_decode(s, strlen(s), p, cap, n, AAM_B64_URL) != AAM_OK) {
		free(p);
		return NULL;
	}
	return p;
}

EVP_PKEY *
at_p256_new(void)
{
	EVP_PKEY *k = EVP_EC_gen("prime256v1");
	assert_non_null(k);
	return k;
}

void
at_es256(EVP_PKEY *k, const void *msg, size_t len, uint8_t rs[64])
{
	uint8_t der[80];
	size_t dl = sizeof(der);
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL, k), 1);
	assert_int_equal(EVP_DigestSign(m, der, &dl, msg, len), 1);
	EVP_MD_CTX_free(m);
	assert_int_equal(aam_jose_ecdsa_der_to_rs(der, dl, rs), AAM_OK);
}

int
at_server_start(struct at_server *f, const struct at_server_opts *o)
{
	static const struct at_server_opts none = {0};
	if (o == NULL)
		o = &none;
	memset(f, 0, sizeof(*f));
	f->dir = aam_test_mkdtemp("aam-attest");
	if (f->dir == NULL)
		return -1;
	snprintf(f->db_path, sizeof(f->db_path), "%s/attest.db", f->dir);
	f->issuer_key = at_p256_new();
	f->ps.keys[0] = f->issuer_key;
	f->ps.nkeys = 1;
	if (attest_keysrc_pkey(&f->ps, &f->ks) != AAM_OK)
		return -1;
	struct attest_server_config cfg = {
	        .host = "127.0.0.1",
	        .port = 0,
	        .db_path = f->db_path,
	        .issuer = AT_ISSUER,
	        .trust_domain = o->trust_domain,
	        .ek_ca = o->ek_ca,
	        .n_ek_ca = o->n_ek_ca,
	        .keys = &f->ks,
	        .threads = 4,
	        .fail_burst = o->fail_burst > 0 ? o->fail_burst : 1000,
	};
	char err[256];
	int rc = attest_server_new(&cfg, &f->srv, err, sizeof(err));
	if (rc != AAM_OK) {
		print_error("attest_server_new: %s\n", err);
		return rc;
	}
	rc = attest_server_start(f->srv);
	if (rc != AAM_OK)
		return rc;
	f->port = attest_server_port(f->srv);
	return attest_registry_open(f->db_path, false, &f->db);
}

void
at_server_stop(struct at_server *f)
{
	attest_server_free(f->srv);
	aam_db_close(f->db);
	EVP_PKEY_free(f->issuer_key);
	if (f->dir != NULL)
		aam_test_rmtree(f->dir);
	free(f->dir);
	memset(f, 0, sizeof(*f));
}

void
at_reg_init(struct attest_reg *r, const char *spiffe_id, enum attest_method m, const char *audience)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->spiffe_id, sizeof(r->spiffe_id), "%s", spiffe_id);
	snprintf(r->owner, sizeof(r->owner), "alice@example.com");
	snprintf(r->team, sizeof(r->team), "finance");
	snprintf(r->environment, sizeof(r->environment), "prod");
	snprintf(r->deployment, sizeof(r->deployment), "analyst-v1");
	r->method = m;
	r->naudiences = 1;
	snprintf(r->audiences[0], sizeof(r->audiences[0]), "%s", audience);
	r->token_ttl = 300;
	r->created = 1;
	if (m == ATTEST_METHOD_TPM)
		r->pcr_mask = ATTEST_PCR_DEFAULT_MASK;
}

int
at_register(struct at_server *f, struct attest_reg *r)
{
	char why[256];
	int rc = attest_reg_validate(r, NULL, why, sizeof(why));
	if (rc != AAM_OK) {
		print_error("registration invalid: %s\n", why);
		return rc;
	}
	return attest_reg_insert(f->db, r);
}

char *
at_challenge(struct at_server *f, const char *method, const char *spiffe_id)
{
	json_t *b = json_pack("{s:s}", "method", method);
	if (spiffe_id != NULL)
		json_object_set_new(b, "spiffe_id", json_string(spiffe_id));
	struct at_resp r;
	int rc = at_request(f->port, "POST", "/v1/attest/challenge", b, &r);
	json_decref(b);
	char *n = NULL;
	if (rc == 0 && r.status == 200) {
		const char *s = json_string_value(json_object_get(r.json, "nonce"));
		assert_int_equal(json_integer_value(json_object_get(r.json, "expires_in")), 60);
		n = s != NULL ? strdup(s) : NULL;
	}
	at_resp_free(&r);
	return n;
}

json_t *
at_verify_token(struct at_server *f, const char *token, const char *aud)
{
	struct at_resp r;
	if (at_request(f->port, "GET", "/.well-known/jwks.json", NULL, &r) != 0 ||
	    r.status != 200) {
		at_resp_free(&r);
		return NULL;
	}
	struct aam_jwks set;
	aam_jwks_init(&set);
	json_t *claims = NULL;
	enum aam_jose_reason why = AAM_JOSE_R_NONE;
	if (aam_jwks_from_json(r.json, &set, &why) == AAM_OK &&
	    aam_jose_verify_jwks(token, strlen(token), &set, NULL, &claims, &why) == AAM_OK) {
		struct aam_jose_claims_check chk = {
		        .iss = AT_ISSUER,
		        .aud = aud,
		        .max_lifetime = 900,
		        .flags = AAM_JOSE_REQ_IAT | AAM_JOSE_REQ_NBF | AAM_JOSE_REQ_JTI |
		                 AAM_JOSE_REQ_SUB,
		};
		if (aam_jose_check_claims(claims, &chk, &why) != AAM_OK) {
			print_error("claims: %s\n", aam_jose_reason_str(why));
			json_decref(claims);
			claims = NULL;
		}
	} else {
		print_error("token verification: %s\n", aam_jose_reason_str(why));
	}
	aam_jwks_uninit(&set);
	at_resp_free(&r);
	return claims;
}
