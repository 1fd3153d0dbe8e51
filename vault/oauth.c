/*
 * OAuth 2.0 client-credentials tokens with a protected cache (see oauth.h).
 */
#include "vault/oauth.h"
#include "aam/err.h"
#include "common/b64.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/log.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#define CACHE_MAX      64
#define RESP_MAX       (64u * 1024)
#define TOKEN_MAX      8192u
#define DEFAULT_EXPIRY 60 /* seconds, when the server does not say */

struct entry {
	char key[1024]; /* name \x1f version \x1f scope */
	aam_secret *token;
	int64_t refresh_at; /* monotonic seconds */
};

struct vault_oauth {
	struct vault_egress *egress;
	pthread_mutex_t mu;       /* the cache */
	pthread_mutex_t fetch_mu; /* one token request at a time */
	struct entry cache[CACHE_MAX];
	size_t n;
};

static int64_t
mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

int
vault_oauth_new(struct vault_egress *e, struct vault_oauth **out)
{
	*out = NULL;
	struct vault_oauth *o = calloc(1, sizeof(*o));
	if (o == NULL)
		return AAM_E_NOMEM;
	o->egress = e;
	pthread_mutex_init(&o->mu, NULL);
	pthread_mutex_init(&o->fetch_mu, NULL);
	*out = o;
	return AAM_OK;
}

void
vault_oauth_clear(struct vault_oauth *o)
{
	if (o == NULL)
		return;
	pthread_mutex_lock(&o->mu);
	for (size_t i = 0; i < o->n; i++)
		aam_secret_free(o->cache[i].token);
	memset(o->cache, 0, sizeof(o->cache));
	o->n = 0;
	pthread_mutex_unlock(&o->mu);
}

void
vault_oauth_free(struct vault_oauth *o)
{
	if (o == NULL)
		return;
	vault_oauth_clear(o);
	pthread_mutex_destroy(&o->mu);
	pthread_mutex_destroy(&o->fetch_mu);
	free(o);
}

/* A protected copy of a live cached token for KEY, or NULL. */
static aam_secret *
cache_get(struct vault_oauth *o, const char *key)
{
	aam_secret *copy = NULL;
	int64_t now = mono_now();
	pthread_mutex_lock(&o->mu);
	for (size_t i = 0; i < o->n; i++) {
		struct entry *e = &o->cache[i];
		if (strcmp(e->key, key) == 0 && now < e->refresh_at) {
			copy = aam_secret_from(aam_secret_data(e->token), aam_secret_len(e->token));
			break;
		}
	}
	pthread_mutex_unlock(&o->mu);
	return copy;
}

/* Stores a protected copy of TOKEN under KEY, replacing an entry or the oldest. */
static void
cache_put(struct vault_oauth *o, const char *key, aam_secret *token, int64_t refresh_at)
{
	aam_secret *copy = aam_secret_from(aam_secret_data(token), aam_secret_len(token));
	if (copy == NULL)
		return;
	pthread_mutex_lock(&o->mu);
	struct entry *slot = NULL;
	for (size_t i = 0; i < o->n && slot == NULL; i++) {
		if (strcmp(o->cache[i].key, key) == 0)
			slot = &o->cache[i];
	}
	if (slot == NULL && o->n < CACHE_MAX)
		slot = &o->cache[o->n++];
	if (slot == NULL) {
		slot = &o->cache[0];
		for (size_t i = 1; i < o->n; i++) {
			if (o->cache[i].refresh_at < slot->refresh_at)
				slot = &o->cache[i];
		}
	}
	aam_secret_free(slot->token);
	snprintf(slot->key, sizeof(slot->key), "%s", key);
	slot->token = copy;
	slot->refresh_at = refresh_at;
	pthread_mutex_unlock(&o->mu);
}

/* application/x-www-form-urlencoded, into B. */
static void
form_encode(struct aam_buf *b, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '*') {
			aam_buf_append_byte(b, c);
		} else if (c == ' ') {
			aam_buf_append_byte(b, '+');
		} else {
			char e[3] = {'%', "0123456789ABCDEF"[c >> 4], "0123456789ABCDEF"[c & 15]};
			aam_buf_append(b, e, 3);
		}
	}
}

struct resp {
	int status;
	aam_secret *body; /* RESP_MAX bytes of protected room */
	size_t len;
};

static int
resp_head(void *ctx, int status, const struct vault_http_hdr *h, size_t n)
{
	(void)h;
	(void)n;
	((struct resp *)ctx)->status = status;
	return AAM_OK;
}

static int
resp_body(void *ctx, const uint8_t *p, size_t n)
{
	struct resp *r = ctx;
	if (n > RESP_MAX - r->len)
		return AAM_E_TOOBIG;
	memcpy(aam_secret_data(r->body) + r->len, p, n);
	r->len += n;
	return AAM_OK;
}

/* Every space-separated token of WANT appears in HAVE. */
static bool
scope_subset(const char *want, const char *have)
{
	const char *p = want;
	while (*p != '\0') {
		while (*p == ' ')
			p++;
		size_t n = strcspn(p, " ");
		if (n == 0)
			break;
		bool found = false;
		for (const char *q = have; *q != '\0' && !found;) {
			while (*q == ' ')
				q++;
			size_t m = strcspn(q, " ");
			found = m == n && strncmp(p, q, n) == 0;
			q += m;
		}
		if (!found)
			return false;
		p += n;
	}
	return true;
}

/* Builds the client_secret_basic header in protected memory. */
static aam_secret *
basic_header(const struct vault_cred *cred)
{
	struct aam_buf raw;
	aam_buf_init(&raw, 4 * AAM_SECRET_MAX);
	form_encode(&raw, (const uint8_t *)cred->meta.client_id, strlen(cred->meta.client_id));
	aam_buf_append_byte(&raw, ':');
	form_encode(&raw, aam_secret_data(cred->plain), aam_secret_len(cred->plain));
	aam_secret *hdr = NULL;
	if (!aam_buf_failed(&raw)) {
		static const char pre[] = "Authorization: Basic ";
		size_t elen = aam_b64_encoded_len(raw.len, AAM_B64_STD);
		hdr = aam_secret_new(sizeof(pre) + elen + 1);
		if (hdr != NULL) {
			char *d = (char *)aam_secret_data(hdr);
			memcpy(d, pre, sizeof(pre) - 1);
			if (aam_b64_encode(raw.data, raw.len, d + sizeof(pre) - 1, elen + 1, NULL,
			                   AAM_B64_STD) != AAM_OK) {
				aam_secret_free(hdr);
				hdr = NULL;
			}
		}
	}
	aam_buf_uninit_wipe(&raw);
	return hdr;
}

static int
fetch(struct vault_oauth *o, const struct vault_cred *cred, const char *scope, aam_secret **token,
      int64_t *lifetime, char *why, size_t whylen)
{
	struct aam_buf body;
	aam_buf_init(&body, 4096);
	aam_buf_append_str(&body, "grant_type=client_credentials");
	if (scope[0] != '\0') {
		aam_buf_append_str(&body, "&scope=");
		form_encode(&body, (const uint8_t *)scope, strlen(scope));
	}
	aam_secret *auth = basic_header(cred);
	struct curl_slist *hl = NULL;
	int rc = (auth == NULL || aam_buf_failed(&body)) ? AAM_E_NOMEM : AAM_OK;
	if (rc == AAM_OK) {
		const char *lines[] = {(const char *)aam_secret_data(auth),
		                       "Content-Type: application/x-www-form-urlencoded",
		                       "Accept: application/json", "Expect:"};
		for (size_t i = 0; i < 4 && rc == AAM_OK; i++) {
			struct curl_slist *n = curl_slist_append(hl, lines[i]);
			if (n == NULL)
				rc = AAM_E_NOMEM;
			else
				hl = n;
		}
	}
	aam_secret_free(auth);
	struct resp r = {0};
	if (rc == AAM_OK && (r.body = aam_secret_new(RESP_MAX)) == NULL)
		rc = AAM_E_NOMEM;
	if (rc == AAM_OK) {
		struct vault_egress_req req = {.method = "POST",
		                               .url = cred->meta.token_url,
		                               .headers = hl,
		                               .body = body.data,
		                               .body_len = body.len};
		struct vault_egress_sink sink = {.head = resp_head, .body = resp_body, .ctx = &r};
		rc = vault_egress_perform(o->egress, &req, &sink, why, whylen);
		if (rc != AAM_OK && why[0] == '\0')
			snprintf(why, whylen, "token request failed");
	}
	vault_egress_slist_free(hl);
	aam_buf_uninit(&body);
	if (rc == AAM_OK && r.status != 200) {
		snprintf(why, whylen, "token endpoint answered HTTP %d", r.status);
		rc = AAM_E_DENIED;
	}
	json_t *doc = NULL;
	if (rc == AAM_OK) {
		struct aam_json_limits lim = {.max_bytes = RESP_MAX, .max_depth = 8};
		if (aam_json_parse(aam_secret_data(r.body), r.len, &lim, &doc, NULL) != AAM_OK ||
		    !json_is_object(doc)) {
			snprintf(why, whylen, "token endpoint answer is not a JSON object");
			rc = AAM_E_PROTO;
		}
	}
	if (rc == AAM_OK) {
		const char *tok = NULL, *type = NULL;
		int64_t exp = DEFAULT_EXPIRY;
		if (aam_json_get_str_max(doc, NULL, "access_token", AAM_JSON_REQUIRED, TOKEN_MAX,
		                         &tok, NULL) != AAM_OK ||
		    tok[0] == '\0' ||
		    aam_json_get_str(doc, NULL, "token_type", AAM_JSON_OPTIONAL, &type, NULL) !=
		            AAM_OK ||
		    (type != NULL && strcasecmp(type, "bearer") != 0) ||
		    aam_json_get_int64_range(doc, NULL, "expires_in", AAM_JSON_OPTIONAL, 1,
		                             366LL * 86400, &exp, NULL) != AAM_OK) {
			snprintf(why, whylen,
			         "token endpoint answer lacks a bearer access_token or has a bad "
			         "expires_in");
			rc = AAM_E_PROTO;
		} else {
			/* Tokens go into headers: refuse bytes that would break one. */
			for (const char *c = tok; *c != '\0' && rc == AAM_OK; c++) {
				if ((unsigned char)*c < 0x21 || (unsigned char)*c > 0x7e)
					rc = AAM_E_PROTO;
			}
			if (rc != AAM_OK)
				snprintf(why, whylen, "access token holds invalid characters");
			else if ((*token = aam_secret_from(tok, strlen(tok))) == NULL)
				rc = AAM_E_NOMEM;
			*lifetime = exp;
		}
	}
	json_decref(doc);
	aam_secret_free(r.body);
	return rc;
}

int
vault_oauth_token(struct vault_oauth *o, const struct vault_cred *cred, const char *scope,
                  aam_secret **token, char *why, size_t whylen)
{
	*token = NULL;
	if (whylen > 0)
		why[0] = '\0';
	if (o == NULL || cred == NULL || cred->meta.type != VAULT_SECRET_OAUTH2_CC ||
	    cred->plain == NULL)
		return AAM_E_INVAL;
	if (scope == NULL || scope[0] == '\0') {
		scope = cred->meta.scope;
	} else if (!scope_subset(scope, cred->meta.scope)) {
		snprintf(why, whylen, "requested scope is not within the credential's scope");
		return AAM_E_DENIED;
	}
	char key[1024];
	int kn = snprintf(key, sizeof(key), "%s\x1f%lld\x1f%s\x1f%s", cred->meta.name,
	                  (long long)cred->meta.version, cred->meta.client_id, scope);
	if (kn < 0 || (size_t)kn >= sizeof(key))
		return AAM_E_TOOBIG;

	if ((*token = cache_get(o, key)) != NULL)
		return AAM_OK;
	pthread_mutex_lock(&o->fetch_mu);
	/* Another thread may have fetched it while this one waited. */
	int rc = AAM_OK;
	if ((*token = cache_get(o, key)) == NULL) {
		int64_t life = 0;
		int64_t start = mono_now();
		rc = fetch(o, cred, scope, token, &life, why, whylen);
		if (rc == AAM_OK) {
			int64_t margin = life / 2 < 30 ? life / 2 : 30;
			cache_put(o, key, *token, start + life - margin);
			aam_log(AAM_LOG_INFO, "vault.oauth_token",
			        AAM_F_STR("credential", cred->meta.name),
			        AAM_F_INT("expires_in", life));
		}
	}
	pthread_mutex_unlock(&o->fetch_mu);
	return rc;
}
