/*
 * JWK Sets (RFC 7517 section 5) of EC P-256 signing keys, looked up by
 * kid.  Parsing serves both AAM's own /.well-known/jwks.json and SPIFFE
 * trust bundles, which carry other keys (x509-svid, other curves) that a
 * JWT verifier must skip rather than choke on.
 */
#include "common/jose.h"
#include "common/jose_int.h"
#include "common/json.h"
#include "aam/err.h"

#include <stdlib.h>
#include <string.h>

void
aam_jwks_init(struct aam_jwks *set)
{
	if (set != NULL)
		memset(set, 0, sizeof(*set));
}

void
aam_jwks_uninit(struct aam_jwks *set)
{
	if (set == NULL)
		return;
	for (size_t i = 0; i < set->count; i++)
		aam_jwk_uninit(&set->keys[i]);
	free(set->keys);
	memset(set, 0, sizeof(*set));
}

const struct aam_jwk *
aam_jwks_find(const struct aam_jwks *set, const char *kid)
{
	if (set == NULL || kid == NULL || *kid == '\0')
		return NULL;
	for (size_t i = 0; i < set->count; i++)
		if (strcmp(set->keys[i].kid, kid) == 0)
			return &set->keys[i];
	return NULL;
}

int
aam_jwks_add(struct aam_jwks *set, const struct aam_jwk *k)
{
	if (set == NULL || k == NULL || k->pkey == NULL || k->kid[0] == '\0')
		return AAM_E_INVAL;
	if (aam_jwks_find(set, k->kid) != NULL)
		return AAM_E_EXISTS;
	if (set->count >= AAM_JWKS_MAX_KEYS)
		return AAM_E_TOOBIG;
	struct aam_jwk *keys = realloc(set->keys, (set->count + 1) * sizeof(*keys));
	if (keys == NULL)
		return AAM_E_NOMEM;
	set->keys = keys;
	int rc = aam_jwk_copy(&set->keys[set->count], k);
	if (rc == AAM_OK)
		set->count++;
	return rc;
}

/* Whether E is a key this verifier cannot use and must skip. */
static bool
skip_key(const json_t *e)
{
	const char *kty = json_string_value(json_object_get(e, "kty"));
	const char *crv = json_string_value(json_object_get(e, "crv"));
	const char *alg = json_string_value(json_object_get(e, "alg"));
	const char *use = json_string_value(json_object_get(e, "use"));
	if (kty == NULL || strcmp(kty, "EC") != 0 || crv == NULL || strcmp(crv, "P-256") != 0)
		return true;
	if (alg != NULL && strcmp(alg, "ES256") != 0)
		return true;
	if (use != NULL && strcmp(use, "sig") != 0 && strcmp(use, "jwt-svid") != 0)
		return true;
	/* Without a kid a key can never be selected for a token. */
	return json_string_value(json_object_get(e, "kid")) == NULL;
}

int
aam_jwks_from_json(const json_t *obj, struct aam_jwks *out, enum aam_jose_reason *why)
{
	if (out == NULL)
		return aam_jose__fail(why, AAM_JOSE_R_NONE, AAM_E_INVAL);
	aam_jwks_init(out);
	const json_t *keys = json_is_object(obj) ? json_object_get(obj, "keys") : NULL;
	if (!json_is_array(keys))
		return aam_jose__fail(why, AAM_JOSE_R_JWK, AAM_E_PARSE);

	size_t i;
	const json_t *e;
	int rc = AAM_OK;
	json_array_foreach(keys, i, e)
	{
		if (!json_is_object(e) || !json_is_string(json_object_get(e, "kty"))) {
			rc = aam_jose__fail(why, AAM_JOSE_R_JWK, AAM_E_PARSE);
			break;
		}
		if (skip_key(e))
			continue;
		struct aam_jwk k;
		rc = aam_jwk_from_json(e, &k, why);
		if (rc != AAM_OK)
			break;
		rc = aam_jwks_add(out, &k);
		aam_jwk_uninit(&k);
		if (rc != AAM_OK) {
			/* A duplicate kid makes the set ambiguous; too many keys is a limit. */
			rc = aam_jose__fail(why, AAM_JOSE_R_JWK,
			                    rc == AAM_E_EXISTS ? AAM_E_PARSE : rc);
			break;
		}
	}
	if (rc != AAM_OK) {
		aam_jwks_uninit(out);
		return rc;
	}
	return aam_jose__fail(why, AAM_JOSE_R_NONE, AAM_OK);
}

int
aam_jwks_parse(const char *text, size_t len, struct aam_jwks *out, enum aam_jose_reason *why)
{
	if (out != NULL)
		aam_jwks_init(out);
	if (text == NULL || out == NULL)
		return aam_jose__fail(why, AAM_JOSE_R_NONE, AAM_E_INVAL);
	/* A set of 64 keys is well under 64 KiB; the per-token limits are too tight here. */
	const struct aam_json_limits lim = {.max_bytes = 64u * 1024,
	                                    .max_depth = 8,
	                                    .max_string = 16u * 1024,
	                                    .max_members = 1024,
	                                    .allow_nul = false};
	json_t *j = NULL;
	int rc = aam_json_parse(text, len, &lim, &j, NULL);
	if (rc != AAM_OK)
		return aam_jose__fail(why, AAM_JOSE_R_JWK, rc);
	rc = aam_jwks_from_json(j, out, why);
	json_decref(j);
	return rc;
}

int
aam_jwks_to_json(const struct aam_jwks *set, json_t **out)
{
	if (out != NULL)
		*out = NULL;
	if (set == NULL || out == NULL)
		return AAM_E_INVAL;
	json_t *arr = json_array();
	json_t *root = json_object();
	if (arr == NULL || root == NULL || json_object_set(root, "keys", arr) != 0) {
		json_decref(arr);
		json_decref(root);
		return AAM_E_NOMEM;
	}
	json_decref(arr); /* ROOT holds it now */
	for (size_t i = 0; i < set->count; i++) {
		json_t *k = NULL;
		int rc = aam_jwk_to_json(&set->keys[i], AAM_JWK_WITH_META, &k);
		if (rc == AAM_OK && json_array_append_new(arr, k) != 0)
			rc = AAM_E_NOMEM;
		if (rc != AAM_OK) {
			json_decref(root);
			return rc;
		}
	}
	*out = root;
	return AAM_OK;
}
