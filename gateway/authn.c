/*
 * Request authentication: DPoP-bound tokens and virtual keys.  See authn.h.
 */
#include "gateway/authn_int.h"
#include "aam/err.h"
#include "common/json.h"
#include "common/log.h"
#include "common/secret.h"
#include "gateway/vkeys.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

/* Leeway for exp/nbf/iat between aam-attest's clock and ours. */
#define TOKEN_SKEW_S 5
/* DESIGN.md invariant 7: no token lives longer than 15 minutes. */
#define TOKEN_MAX_LIFE_S (15 * 60)

static char *
dup_trim_slash(const char *s)
{
	if (s == NULL)
		return NULL;
	size_t n = strlen(s);
	while (n > 0 && s[n - 1] == '/')
		n--;
	return strndup(s, n);
}

int
gw_authn_new(const struct gw_authn_config *cfg, struct gw_authn **out)
{
	if (out == NULL)
		return AAM_E_INVAL;
	*out = NULL;
	if (cfg == NULL || cfg->jwks_url == NULL || cfg->issuer == NULL || cfg->audience == NULL ||
	    cfg->external_url == NULL)
		return AAM_E_INVAL;
	struct gw_authn *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return AAM_E_NOMEM;
	pthread_rwlock_init(&a->keys_lock, NULL);
	pthread_mutex_init(&a->fetch_mu, NULL);
	pthread_mutex_init(&a->cache_mu, NULL);
	pthread_mutex_init(&a->th_mu, NULL);
	pthread_cond_init(&a->th_cv, NULL);
	aam_jwks_init(&a->jwks);
	a->jwks_url = strdup(cfg->jwks_url);
	a->revocations_url = cfg->revocations_url != NULL ? strdup(cfg->revocations_url) : NULL;
	a->issuer = strdup(cfg->issuer);
	a->audience = strdup(cfg->audience);
	a->external_url = dup_trim_slash(cfg->external_url);
	a->jwks_refresh_ms = cfg->jwks_refresh_ms > 0 ? cfg->jwks_refresh_ms : 30000;
	a->revocation_poll_ms = cfg->revocation_poll_ms > 0 ? cfg->revocation_poll_ms : 5000;
	a->dpop_window_s = cfg->dpop_window_s > 0 ? cfg->dpop_window_s : AAM_DPOP_DEFAULT_WINDOW;
	a->token_cache_max = cfg->token_cache_max > 0 ? cfg->token_cache_max : 65536;
	a->keys = cfg->keys;
	a->replay = aam_dpop_replay_new(cfg->replay_capacity > 0 ? cfg->replay_capacity : 1u << 20);
	int rc = AAM_OK;
	if (a->jwks_url == NULL || a->issuer == NULL || a->audience == NULL ||
	    a->external_url == NULL ||
	    (cfg->revocations_url != NULL && a->revocations_url == NULL) || a->replay == NULL)
		rc = AAM_E_NOMEM;
	if (rc == AAM_OK)
		rc = gw_authn_cache_init(a);
	if (rc != AAM_OK) {
		gw_authn_free(a);
		return rc;
	}
	*out = a;
	return AAM_OK;
}

void
gw_authn_free(struct gw_authn *a)
{
	if (a == NULL)
		return;
	gw_authn_feed_stop(a);
	gw_authn_cache_uninit(a);
	aam_jwks_uninit(&a->jwks);
	aam_dpop_replay_free(a->replay);
	free(a->jwks_url);
	free(a->revocations_url);
	free(a->issuer);
	free(a->audience);
	free(a->external_url);
	pthread_cond_destroy(&a->th_cv);
	pthread_mutex_destroy(&a->th_mu);
	pthread_mutex_destroy(&a->cache_mu);
	pthread_mutex_destroy(&a->fetch_mu);
	pthread_rwlock_destroy(&a->keys_lock);
	free(a);
}

void
gw_authn_stats(struct gw_authn *a, struct gw_authn_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->token_cache_hits = atomic_load(&a->hits);
	out->token_cache_misses = atomic_load(&a->misses);
	out->jwks_fetches = atomic_load(&a->fetches);
	out->jwks_fetch_failures = atomic_load(&a->fetch_failures);
	out->revocations_seen = atomic_load(&a->revs_seen);
	out->vkey_lookups = atomic_load(&a->vkey_lookups);
	pthread_mutex_lock(&a->cache_mu);
	out->token_cache_size = a->ntok;
	pthread_mutex_unlock(&a->cache_mu);
}

void
gw_principal_uninit(struct gw_principal *p)
{
	if (p == NULL)
		return;
	free(p->vkey_models);
	p->vkey_models = NULL;
}

/* ---- failures -------------------------------------------------------------------- */

__attribute__((format(printf, 5, 6))) static int
fail(struct gw_authn_error *err, unsigned status, const char *code, const char *www,
     const char *fmt, ...)
{
	err->status = status;
	err->code = code;
	err->www_auth = www;
	err->metric_label = code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return status == 503 ? AAM_E_BUSY : status == 403 ? AAM_E_DENIED : AAM_E_PERM;
}

static const char WWW_TOKEN[] = "DPoP algs=\"ES256\", error=\"invalid_token\"";
static const char WWW_PROOF[] = "DPoP algs=\"ES256\", error=\"invalid_dpop_proof\"";
static const char WWW_NONE[] = "DPoP algs=\"ES256\", Bearer";

static int
token_fail(struct gw_authn_error *err, const char *why)
{
	return fail(err, 401, "invalid_token", WWW_TOKEN, "The access token was refused (%s).",
	            why);
}

static int
proof_fail(struct gw_authn_error *err, const char *why)
{
	return fail(err, 401, "invalid_dpop_proof", WWW_PROOF, "The DPoP proof was refused (%s).",
	            why);
}

/* ---- DPoP-bound tokens ----------------------------------------------------------- */

static bool
printable(const char *s, size_t max)
{
	if (s == NULL)
		return true;
	size_t n = strnlen(s, max + 1);
	if (n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

/* Verifies a token not in the cache and returns its facts as a new cache entry. */
static int
token_verify(struct gw_authn *a, const char *token, size_t len, const uint8_t h[32],
             struct gw_tok **out, struct gw_authn_error *err)
{
	struct aam_jose_jws jws;
	enum aam_jose_reason why = AAM_JOSE_R_NONE;
	int rc = aam_jose_jws_parse(token, len, &jws, &why);
	if (rc != AAM_OK)
		return token_fail(err, aam_jose_reason_str(why));
	if (jws.kid == NULL) {
		aam_jose_jws_uninit(&jws);
		return token_fail(err, aam_jose_reason_str(AAM_JOSE_R_KID));
	}
	for (int attempt = 0; attempt < 2; attempt++) {
		pthread_rwlock_rdlock(&a->keys_lock);
		bool have = a->have_jwks;
		const struct aam_jwk *k = have ? aam_jwks_find(&a->jwks, jws.kid) : NULL;
		/* The key set may be swapped by a fetch: verify under the read lock. */
		rc = k != NULL ? aam_jose_jws_verify(&jws, k->pkey, &why) : AAM_E_NOTFOUND;
		pthread_rwlock_unlock(&a->keys_lock);
		if (rc != AAM_E_NOTFOUND || attempt == 1)
			break;
		/*
		 * An unknown kid may be a new issuer key: fetch, but at most once
		 * per interval, since any client can send any kid.
		 */
		pthread_mutex_lock(&a->fetch_mu);
		int64_t now_ms = gw_authn_mono_ms();
		bool due = a->last_kid_fetch_ms == 0 ||
		           now_ms - a->last_kid_fetch_ms >= a->jwks_refresh_ms;
		if (due) {
			a->last_kid_fetch_ms = now_ms;
			gw_authn_fetch_jwks(a, true);
		}
		pthread_mutex_unlock(&a->fetch_mu);
		if (!due)
			break;
	}
	if (rc == AAM_E_NOTFOUND) {
		bool have = false;
		pthread_rwlock_rdlock(&a->keys_lock);
		have = a->have_jwks;
		pthread_rwlock_unlock(&a->keys_lock);
		aam_jose_jws_uninit(&jws);
		if (!have)
			return fail(err, 503, "jwks_unavailable", NULL,
			            "The token issuer's keys are not available yet.");
		return token_fail(err, aam_jose_reason_str(AAM_JOSE_R_KID));
	}
	if (rc != AAM_OK) {
		aam_jose_jws_uninit(&jws);
		return token_fail(err, aam_jose_reason_str(why));
	}
	json_t *claims = json_incref(jws.claims);
	aam_jose_jws_uninit(&jws);

	struct aam_jose_claims_check chk = {
	        .iss = a->issuer,
	        .aud = a->audience,
	        .skew = TOKEN_SKEW_S,
	        .max_lifetime = TOKEN_MAX_LIFE_S,
	        .flags = AAM_JOSE_REQ_IAT | AAM_JOSE_REQ_JTI | AAM_JOSE_REQ_SUB,
	};
	rc = aam_jose_check_claims(claims, &chk, &why);
	if (rc != AAM_OK) {
		json_decref(claims);
		return token_fail(err, aam_jose_reason_str(why));
	}
	const char *jkt = NULL, *sub = json_string_value(json_object_get(claims, "sub"));
	const char *jti = json_string_value(json_object_get(claims, "jti"));
	if (aam_jose_claims_cnf_jkt(claims, &jkt) != AAM_OK || jkt == NULL ||
	    strlen(jkt) != AAM_JWK_THUMBPRINT_LEN) {
		json_decref(claims);
		return token_fail(err, "token_not_sender_constrained");
	}
	struct aam_spiffe_id id;
	if (sub == NULL || aam_spiffe_parse(sub, strlen(sub), &id, NULL) != AAM_OK) {
		json_decref(claims);
		return token_fail(err, "bad_subject");
	}
	json_t *aam = json_object_get(claims, "aam");
	const char *f[5] = {NULL};
	static const char *const names[5] = {"owner", "team", "environment", "deployment",
	                                     "method"};
	for (size_t i = 0; i < 5; i++) {
		json_t *v = json_object_get(aam, names[i]);
		f[i] = json_string_value(v);
		if ((v != NULL && f[i] == NULL) || !printable(f[i], GW_ID_FIELD_MAX - 1)) {
			json_decref(claims);
			return token_fail(err, "bad_claim");
		}
	}
	struct gw_tok *t = calloc(1, sizeof(*t));
	if (t == NULL) {
		json_decref(claims);
		return fail(err, 503, "unavailable", NULL, "The gateway is short of memory.");
	}
	memcpy(t->h, h, 32);
	t->exp = (int64_t)json_number_value(json_object_get(claims, "exp"));
	t->iat = (int64_t)json_number_value(json_object_get(claims, "iat"));
	memcpy(t->jkt, jkt, sizeof(t->jkt));
	t->sub = strdup(sub);
	t->jti = dup_or_null(jti);
	t->owner = dup_or_null(f[0]);
	t->team = dup_or_null(f[1]);
	t->env = dup_or_null(f[2]);
	t->dep = dup_or_null(f[3]);
	t->method = dup_or_null(f[4]);
	json_decref(claims);
	if (t->sub == NULL || (jti != NULL && t->jti == NULL)) {
		gw_authn_tok_free(t);
		return fail(err, 503, "unavailable", NULL, "The gateway is short of memory.");
	}
	*out = t;
	return AAM_OK;
}

static void
copy_in(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src != NULL ? src : "");
}

static const char *
or_null(const char *s)
{
	return s[0] != '\0' ? s : NULL;
}

static void
principal_finish(struct gw_principal *p, bool attested)
{
	p->id.spiffe_id = p->spiffe_id;
	p->id.owner = or_null(p->owner);
	p->id.team = or_null(p->team);
	p->id.environment = or_null(p->environment);
	p->id.deployment = or_null(p->deployment);
	p->id.jti = or_null(p->jti);
	p->id.method = or_null(p->method);
	p->id.vkey_id = or_null(p->vkey_id);
	p->id.attested = attested;
}

static int
authn_dpop(struct gw_authn *a, const struct aam_http_request *req, const char *token,
           struct gw_principal *p, struct gw_authn_error *err)
{
	size_t tlen = strlen(token);
	if (tlen == 0 || tlen > AAM_JOSE_MAX_TOKEN)
		return token_fail(err, tlen == 0 ? "token_missing" : "token_too_big");
	const char *proof = aam_http_request_header(req, "DPoP");
	if (proof == NULL || proof[0] == '\0')
		return proof_fail(err, "dpop_proof_missing");

	uint8_t h[32];
	EVP_Digest(token, tlen, h, NULL, EVP_sha256(), NULL);
	int64_t now = gw_authn_now_s();
	char jkt[AAM_JWK_THUMBPRINT_LEN + 1];
	int64_t iat = 0;
	if (!gw_authn_cache_get(a, h, now, p, jkt, &iat)) {
		struct gw_tok *t = NULL;
		int rc = token_verify(a, token, tlen, h, &t, err);
		if (rc != AAM_OK)
			return rc;
		if (t == NULL)
			return token_fail(err, "token_invalid");
		copy_in(p->spiffe_id, sizeof(p->spiffe_id), t->sub);
		copy_in(p->owner, sizeof(p->owner), t->owner);
		copy_in(p->team, sizeof(p->team), t->team);
		copy_in(p->environment, sizeof(p->environment), t->env);
		copy_in(p->deployment, sizeof(p->deployment), t->dep);
		copy_in(p->jti, sizeof(p->jti), t->jti);
		copy_in(p->method, sizeof(p->method), t->method);
		memcpy(jkt, t->jkt, sizeof(jkt));
		p->exp = t->exp;
		iat = t->iat;
		gw_authn_cache_put(a, t, now);
	}
	if (gw_authn_revoked(a, p->jti, p->spiffe_id, iat))
		return token_fail(err, "token_revoked");

	/* htu is the gateway's own external URL and the path, never a client-supplied Host. */
	char htu[AAM_DPOP_MAX_HTU];
	int n = snprintf(htu, sizeof(htu), "%s%s", a->external_url, req->path);
	if (n < 0 || (size_t)n >= sizeof(htu))
		return proof_fail(err, "dpop_htu_mismatch");
	struct aam_dpop_check chk = {
	        .htm = req->method,
	        .htu = htu,
	        .access_token = token,
	        .jkt = jkt,
	        .iat_past = a->dpop_window_s,
	        .iat_future = a->dpop_window_s,
	        .replay = a->replay,
	};
	enum aam_jose_reason why = AAM_JOSE_R_NONE;
	int rc = aam_dpop_verify(proof, strlen(proof), &chk, NULL, &why);
	if (rc == AAM_E_BUSY)
		return fail(err, 503, "unavailable", NULL,
		            "The gateway is busy (DPoP replay cache full); retry shortly.");
	if (rc != AAM_OK)
		return proof_fail(err, aam_jose_reason_str(why));
	principal_finish(p, true);
	return AAM_OK;
}

/* ---- virtual keys ------------------------------------------------------------------ */

static int
authn_vkey(struct gw_authn *a, const char *key, struct gw_principal *p, struct gw_authn_error *err)
{
	static const char msg_bad[] = "The API key is not valid.";
	if (a->keys == NULL)
		return fail(err, 401, "invalid_api_key", WWW_NONE,
		            "Virtual keys are not enabled on this gateway.");
	size_t n = strlen(key);
	if (n == 0 || n > GW_VKEY_MAX)
		return fail(err, 401, "invalid_api_key", WWW_NONE, "%s", msg_bad);
	struct aam_db *db = gw_dbpool_get(a->keys);
	if (db == NULL)
		return fail(err, 503, "unavailable", NULL, "The key store is not available.");
	atomic_fetch_add(&a->vkey_lookups, 1);
	struct gw_vkey k;
	int rc = gw_vkey_lookup(db, key, &k);
	gw_dbpool_put(a->keys, db);
	if (rc == AAM_E_NOTFOUND)
		return fail(err, 401, "invalid_api_key", WWW_NONE, "%s", msg_bad);
	if (rc != AAM_OK)
		return fail(err, 503, "unavailable", NULL, "The key store is not available.");
	int64_t now = gw_authn_now_s();
	if (!gw_vkey_usable(&k, now)) {
		bool revoked = k.revoked;
		gw_vkey_uninit(&k);
		return fail(err, 401, "invalid_api_key", WWW_NONE,
		            revoked ? "The API key has been revoked." : "The API key has expired.");
	}
	copy_in(p->spiffe_id, sizeof(p->spiffe_id), k.workload);
	copy_in(p->owner, sizeof(p->owner), k.owner);
	copy_in(p->team, sizeof(p->team), k.team);
	copy_in(p->method, sizeof(p->method), "virtual_key");
	/* The first 16 hex digits of the hash name the key in audit records (never the key). */
	snprintf(p->vkey_id, sizeof(p->vkey_id), "%.16s", k.hash);
	p->exp = k.expires;
	p->vkey_rpm = k.rpm;
	p->vkey_tpm = k.tpm;
	if (k.models != NULL) {
		p->vkey_models = k.models;
		k.models = NULL;
	}
	gw_vkey_uninit(&k);
	principal_finish(p, false);
	return AAM_OK;
}

/* ---- dispatch ------------------------------------------------------------------------ */

/* "SCHEME value": the value after the scheme and spaces when SCHEME matches, else NULL. */
static const char *
auth_param(const char *h, const char *scheme)
{
	size_t n = strlen(scheme);
	if (strncasecmp(h, scheme, n) != 0 || h[n] != ' ')
		return NULL;
	h += n;
	while (*h == ' ')
		h++;
	return h;
}

int
gw_authn_request(struct gw_authn *a, const struct aam_http_request *req, struct gw_principal *out,
                 struct gw_authn_error *err)
{
	if (a == NULL || req == NULL || out == NULL || err == NULL)
		return AAM_E_INVAL;
	memset(out, 0, sizeof(*out));
	memset(err, 0, sizeof(*err));
	const char *authz = aam_http_request_header(req, "Authorization");
	const char *xkey = aam_http_request_header(req, "x-api-key");
	const char *v;
	if (authz != NULL && (v = auth_param(authz, "DPoP")) != NULL)
		return authn_dpop(a, req, v, out, err);
	if (authz != NULL && (v = auth_param(authz, "Bearer")) != NULL) {
		/* A DPoP-bound token may not be downgraded to a bearer token (RFC 9449 7.1). */
		if (strncmp(v, "eyJ", 3) == 0 && strchr(v, '.') != NULL)
			return token_fail(err, "dpop_scheme_required");
		return authn_vkey(a, v, out, err);
	}
	if (authz == NULL && xkey != NULL)
		return authn_vkey(a, xkey, out, err);
	if (authz == NULL)
		return fail(err, 401, "missing_credentials", WWW_NONE,
		            "Authentication is required: a DPoP-bound token or an API key.");
	return fail(err, 401, "invalid_token", WWW_NONE,
	            "The Authorization scheme is not supported (use DPoP or Bearer).");
}
