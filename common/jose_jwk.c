/*
 * EC P-256 public JWKs (RFC 7517, RFC 7518 section 6.2), RFC 7638
 * thumbprints and the OpenSSL keys behind them.  JWK Sets are in
 * jose_jwks.c.
 */
#include "common/jose.h"
#include "common/jose_int.h"
#include "common/b64.h"
#include "common/json.h"
#include "aam/err.h"

#include <pthread.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/params.h>

/* Members that carry private or symmetric key material in any key type. */
static const char *const private_members[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"};

static bool
kid_valid(const char *kid)
{
	size_t n = strlen(kid);
	if (n == 0 || n > AAM_JOSE_MAX_KID)
		return false;
	/* Printable ASCII only: a kid ends up in logs and error bodies. */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)kid[i] < 0x21 || (unsigned char)kid[i] > 0x7e)
			return false;
	return true;
}

/* Builds a public-only EVP_PKEY and lets OpenSSL check the point is on the curve. */
/*
 * Public keys made lately, by coordinates.  A DPoP client signs every proof
 * with the same key, and building and checking an EVP_PKEY from the proof's
 * jwk was a tenth of the gateway's CPU per request on that path.  Only
 * public keys that passed the checks below are kept, and an EVP_PKEY is
 * not changed by verifying with it, so sharing one (reference counted) is
 * the same as building it again.
 */
#define KEYCACHE_SIZE 32
static pthread_mutex_t keycache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	uint8_t xy[2 * AAM_JWK_COORD_LEN];
	EVP_PKEY *pkey;
} keycache[KEYCACHE_SIZE];
static unsigned keycache_next;

static EVP_PKEY *
keycache_get(const uint8_t xy[2 * AAM_JWK_COORD_LEN])
{
	EVP_PKEY *pkey = NULL;
	pthread_mutex_lock(&keycache_mu);
	for (unsigned i = 0; i < KEYCACHE_SIZE && pkey == NULL; i++)
		if (keycache[i].pkey != NULL &&
		    memcmp(keycache[i].xy, xy, sizeof(keycache[i].xy)) == 0 &&
		    EVP_PKEY_up_ref(keycache[i].pkey) == 1)
			pkey = keycache[i].pkey;
	pthread_mutex_unlock(&keycache_mu);
	return pkey;
}

static void
keycache_put(const uint8_t xy[2 * AAM_JWK_COORD_LEN], EVP_PKEY *pkey)
{
	if (EVP_PKEY_up_ref(pkey) != 1)
		return;
	pthread_mutex_lock(&keycache_mu);
	unsigned i = keycache_next++ % KEYCACHE_SIZE;
	EVP_PKEY *old = keycache[i].pkey;
	memcpy(keycache[i].xy, xy, sizeof(keycache[i].xy));
	keycache[i].pkey = pkey;
	pthread_mutex_unlock(&keycache_mu);
	EVP_PKEY_free(old);
}

static int
pkey_from_xy(const uint8_t x[AAM_JWK_COORD_LEN], const uint8_t y[AAM_JWK_COORD_LEN], EVP_PKEY **out)
{
	uint8_t xy[2 * AAM_JWK_COORD_LEN];
	memcpy(xy, x, AAM_JWK_COORD_LEN);
	memcpy(xy + AAM_JWK_COORD_LEN, y, AAM_JWK_COORD_LEN);
	EVP_PKEY *cached = keycache_get(xy);
	if (cached != NULL) {
		*out = cached;
		return AAM_OK;
	}
	uint8_t point[1 + 2 * AAM_JWK_COORD_LEN];
	char group[] = "prime256v1";
	point[0] = 0x04; /* uncompressed SEC1 point */
	memcpy(point + 1, x, AAM_JWK_COORD_LEN);
	memcpy(point + 1 + AAM_JWK_COORD_LEN, y, AAM_JWK_COORD_LEN);
	OSSL_PARAM params[] = {
	        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
	        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)),
	        OSSL_PARAM_construct_end(),
	};
	EVP_PKEY *pkey = NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	int rc = AAM_E_PARSE;
	if (ctx == NULL)
		rc = AAM_E_NOMEM;
	else if (EVP_PKEY_fromdata_init(ctx) == 1 &&
	         EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) == 1)
		rc = AAM_OK;
	EVP_PKEY_CTX_free(ctx);
	if (rc == AAM_OK) {
		/*
		 * Setting the point already checks it is on the curve, and the
		 * uncompressed form cannot encode infinity; the quick check says
		 * both again.  The full check would also multiply the point by the
		 * group order (a whole scalar multiplication, 15 % of the gateway's
		 * CPU on the DPoP path), which proves nothing more on P-256: its
		 * cofactor is 1, so every point of the curve but infinity lies in
		 * the prime-order group (SP 800-56A rev. 3, 5.6.2.3.4).
		 */
		EVP_PKEY_CTX *chk = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
		if (chk == NULL || EVP_PKEY_public_check_quick(chk) != 1)
			rc = AAM_E_PARSE;
		EVP_PKEY_CTX_free(chk);
	}
	ERR_clear_error();
	if (rc != AAM_OK) {
		EVP_PKEY_free(pkey);
		return rc;
	}
	keycache_put(xy, pkey);
	*out = pkey;
	return AAM_OK;
}

/* The RFC 7638 input for an EC key, built from its already-encoded coordinates. */
static int
ec_thumbprint(const char *xb, const char *yb, char out[AAM_JWK_THUMBPRINT_LEN + 1])
{
	struct aam_buf b;
	aam_buf_init(&b, 256);
	aam_buf_printf(&b, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", xb, yb);
	uint8_t digest[AAM_JOSE_DIGEST_LEN];
	int rc = b.err;
	if (rc == AAM_OK)
		rc = aam_jose__sha256(b.data, b.len, digest);
	if (rc == AAM_OK)
		rc = aam_jose__b64url(digest, sizeof(digest), out, AAM_JWK_THUMBPRINT_LEN + 1);
	aam_buf_uninit(&b);
	return rc;
}

int
aam_jwk_from_xy(const uint8_t x[AAM_JWK_COORD_LEN], const uint8_t y[AAM_JWK_COORD_LEN],
                const char *kid, struct aam_jwk *out)
{
	if (out == NULL)
		return AAM_E_INVAL;
	memset(out, 0, sizeof(*out));
	if (x == NULL || y == NULL || (kid != NULL && !kid_valid(kid)))
		return AAM_E_INVAL;
	char xb[AAM_JWK_THUMBPRINT_LEN + 1], yb[AAM_JWK_THUMBPRINT_LEN + 1];
	int rc = aam_jose__b64url(x, AAM_JWK_COORD_LEN, xb, sizeof(xb));
	if (rc == AAM_OK)
		rc = aam_jose__b64url(y, AAM_JWK_COORD_LEN, yb, sizeof(yb));
	if (rc == AAM_OK)
		rc = ec_thumbprint(xb, yb, out->jkt);
	if (rc == AAM_OK)
		rc = pkey_from_xy(x, y, &out->pkey);
	if (rc != AAM_OK) {
		memset(out, 0, sizeof(*out));
		return rc;
	}
	memcpy(out->x, x, AAM_JWK_COORD_LEN);
	memcpy(out->y, y, AAM_JWK_COORD_LEN);
	if (kid != NULL)
		memcpy(out->kid, kid, strlen(kid) + 1);
	return AAM_OK;
}

int
aam_jwk_from_pkey(EVP_PKEY *pkey, const char *kid, struct aam_jwk *out)
{
	if (out == NULL)
		return AAM_E_INVAL;
	memset(out, 0, sizeof(*out));
	if (!aam_jose__is_p256(pkey))
		return AAM_E_INVAL;
	BIGNUM *bx = NULL, *by = NULL;
	uint8_t x[AAM_JWK_COORD_LEN], y[AAM_JWK_COORD_LEN];
	int rc = AAM_E_CRYPTO;
	if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &bx) == 1 &&
	    EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &by) == 1 &&
	    BN_bn2binpad(bx, x, sizeof(x)) == (int)sizeof(x) &&
	    BN_bn2binpad(by, y, sizeof(y)) == (int)sizeof(y))
		rc = AAM_OK;
	BN_free(bx);
	BN_free(by);
	ERR_clear_error();
	if (rc != AAM_OK)
		return rc;
	return aam_jwk_from_xy(x, y, kid, out);
}

/* Decodes a 32-byte coordinate member. */
static int
get_coord(const json_t *obj, const char *name, uint8_t out[AAM_JWK_COORD_LEN])
{
	const char *s = json_string_value(json_object_get(obj, name));
	if (s == NULL)
		return AAM_E_PARSE;
	size_t n = 0;
	int rc = aam_b64_decode(s, strlen(s), out, AAM_JWK_COORD_LEN, &n, AAM_B64_URL);
	/* RFC 7518 section 6.2.1.2: the full coordinate size, no more, no less. */
	if (rc != AAM_OK || n != AAM_JWK_COORD_LEN)
		return AAM_E_PARSE;
	return AAM_OK;
}

int
aam_jwk_from_json(const json_t *obj, struct aam_jwk *out, enum aam_jose_reason *why)
{
	if (out == NULL)
		return aam_jose__fail(why, AAM_JOSE_R_NONE, AAM_E_INVAL);
	memset(out, 0, sizeof(*out));
	if (!json_is_object(obj))
		return aam_jose__fail(why, AAM_JOSE_R_JWK, AAM_E_PARSE);
	for (size_t i = 0; i < sizeof(private_members) / sizeof(private_members[0]); i++)
		if (json_object_get(obj, private_members[i]) != NULL)
			return aam_jose__fail(why, AAM_JOSE_R_JWK_PRIVATE, AAM_E_DENIED);

	const char *kty = json_string_value(json_object_get(obj, "kty"));
	const char *crv = json_string_value(json_object_get(obj, "crv"));
	if (kty == NULL || strcmp(kty, "EC") != 0 || crv == NULL || strcmp(crv, "P-256") != 0)
		return aam_jose__fail(why, AAM_JOSE_R_JWK, AAM_E_PARSE);
	const json_t *alg = json_object_get(obj, "alg");
	if (alg != NULL && (!json_is_string(alg) || strcmp(json_string_value(alg), "ES256") != 0))
		return aam_jose__fail(why, AAM_JOSE_R_JWK, AAM_E_PARSE);
	const json_t *use = json_object_get(obj, "use");
	if (use != NULL &&
	    (!json_is_string(use) || (strcmp(json_string_value(use), "sig") != 0 &&
	                              strcmp(json_string_value(use), "jwt-svid") != 0)))
		return aam_jose__fail(why, AAM_JOSE_R_JWK, AAM_E_PARSE);
	const json_t *kid = json_object_get(obj, "kid");
	if (kid != NULL && (!json_is_string(kid) || !kid_valid(json_string_value(kid))))
		return aam_jose__fail(why, AAM_JOSE_R_JWK, AAM_E_PARSE);

	uint8_t x[AAM_JWK_COORD_LEN], y[AAM_JWK_COORD_LEN];
	if (get_coord(obj, "x", x) != AAM_OK || get_coord(obj, "y", y) != AAM_OK)
		return aam_jose__fail(why, AAM_JOSE_R_JWK, AAM_E_PARSE);
	int rc = aam_jwk_from_xy(x, y, json_string_value(kid), out);
	if (rc == AAM_E_PARSE || rc == AAM_E_INVAL)
		return aam_jose__fail(why, AAM_JOSE_R_JWK, AAM_E_PARSE);
	return aam_jose__fail(why, AAM_JOSE_R_NONE, rc);
}

int
aam_jwk_parse(const char *text, size_t len, struct aam_jwk *out, enum aam_jose_reason *why)
{
	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (text == NULL || out == NULL)
		return aam_jose__fail(why, AAM_JOSE_R_NONE, AAM_E_INVAL);
	json_t *j = NULL;
	int rc = aam_json_parse(text, len, &aam_jose__json_limits, &j, NULL);
	if (rc != AAM_OK)
		return aam_jose__fail(why, AAM_JOSE_R_JWK, rc == AAM_E_NOMEM ? rc : AAM_E_PARSE);
	rc = aam_jwk_from_json(j, out, why);
	json_decref(j);
	return rc;
}

int
aam_jwk_copy(struct aam_jwk *dst, const struct aam_jwk *src)
{
	if (dst == NULL || src == NULL || src->pkey == NULL)
		return AAM_E_INVAL;
	if (EVP_PKEY_up_ref(src->pkey) != 1)
		return AAM_E_CRYPTO;
	memcpy(dst, src, sizeof(*dst));
	return AAM_OK;
}

void
aam_jwk_uninit(struct aam_jwk *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	memset(k, 0, sizeof(*k));
}

int
aam_jwk_to_json(const struct aam_jwk *k, int form, json_t **out)
{
	if (out != NULL)
		*out = NULL;
	if (k == NULL || k->pkey == NULL || out == NULL)
		return AAM_E_INVAL;
	char xb[AAM_JWK_THUMBPRINT_LEN + 1], yb[AAM_JWK_THUMBPRINT_LEN + 1];
	int rc = aam_jose__b64url(k->x, sizeof(k->x), xb, sizeof(xb));
	if (rc == AAM_OK)
		rc = aam_jose__b64url(k->y, sizeof(k->y), yb, sizeof(yb));
	if (rc != AAM_OK)
		return rc;
	json_t *j =
	        json_pack("{s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "P-256", "x", xb, "y", yb);
	if (j == NULL)
		return AAM_E_NOMEM;
	if (form == AAM_JWK_WITH_META) {
		if ((k->kid[0] != '\0' &&
		     json_object_set_new(j, "kid", json_string(k->kid)) != 0) ||
		    json_object_set_new(j, "use", json_string("sig")) != 0 ||
		    json_object_set_new(j, "alg", json_string("ES256")) != 0) {
			json_decref(j);
			return AAM_E_NOMEM;
		}
	}
	*out = j;
	return AAM_OK;
}

/* Values taking part in a thumbprint: base64url or a curve/type name. */
static bool
thumb_value_ok(const char *s)
{
	if (s == NULL || *s == '\0' || strlen(s) > AAM_JOSE_MAX_TOKEN)
		return false;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
	}
	return true;
}

int
aam_jwk_thumbprint(const json_t *jwk, uint8_t digest[AAM_JOSE_DIGEST_LEN])
{
	static const char *const ec[] = {"crv", "kty", "x", "y", NULL};
	static const char *const rsa[] = {"e", "kty", "n", NULL};
	static const char *const okp[] = {"crv", "kty", "x", NULL};
	if (!json_is_object(jwk) || digest == NULL)
		return AAM_E_INVAL;
	const char *kty = json_string_value(json_object_get(jwk, "kty"));
	const char *const *members;
	if (kty == NULL)
		return AAM_E_PARSE;
	if (strcmp(kty, "EC") == 0)
		members = ec;
	else if (strcmp(kty, "RSA") == 0)
		members = rsa;
	else if (strcmp(kty, "OKP") == 0)
		members = okp;
	else
		return AAM_E_UNSUPPORTED;

	/* The member names are already in lexicographic (code point) order. */
	struct aam_buf b;
	aam_buf_init(&b, 4 * AAM_JOSE_MAX_TOKEN);
	aam_buf_append_byte(&b, '{');
	int rc = AAM_OK;
	for (size_t i = 0; members[i] != NULL && rc == AAM_OK; i++) {
		const char *v = json_string_value(json_object_get(jwk, members[i]));
		if (!thumb_value_ok(v))
			rc = AAM_E_PARSE;
		else
			aam_buf_printf(&b, "%s\"%s\":\"%s\"", i ? "," : "", members[i], v);
	}
	aam_buf_append_byte(&b, '}');
	if (rc == AAM_OK)
		rc = b.err;
	if (rc == AAM_OK)
		rc = aam_jose__sha256(b.data, b.len, digest);
	aam_buf_uninit(&b);
	return rc;
}

int
aam_jwk_thumbprint_b64(const json_t *jwk, char out[AAM_JWK_THUMBPRINT_LEN + 1])
{
	uint8_t digest[AAM_JOSE_DIGEST_LEN];
	int rc = aam_jwk_thumbprint(jwk, digest);
	if (rc != AAM_OK)
		return rc;
	return aam_jose__b64url(digest, sizeof(digest), out, AAM_JWK_THUMBPRINT_LEN + 1);
}
