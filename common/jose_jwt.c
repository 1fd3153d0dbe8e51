/*
 * JWT registered-claim checks (RFC 7519 section 4.1).  Types are checked
 * whenever a claim is present, whether or not the caller asked about it:
 * a token whose "exp" is a string is malformed, not merely unchecked.
 */
#include "common/jose.h"
#include "common/jose_int.h"
#include "aam/err.h"

#include <string.h>

static int
check_string_claim(const json_t *claims, const char *name, bool required, enum aam_jose_reason *why)
{
	const json_t *v = json_object_get(claims, name);
	if (v == NULL)
		return required ? aam_jose__fail(why, AAM_JOSE_R_MISSING_CLAIM, AAM_E_DENIED)
		                : AAM_OK;
	if (!json_is_string(v) || json_string_length(v) == 0)
		return aam_jose__fail(why, AAM_JOSE_R_CLAIM, AAM_E_DENIED);
	return AAM_OK;
}

/* Reads a NumericDate claim; *PRESENT says whether it was there. */
static int
date_claim(const json_t *claims, const char *name, bool round_up, bool required, int64_t *out,
           bool *present, enum aam_jose_reason *why)
{
	const json_t *v = json_object_get(claims, name);
	*present = v != NULL;
	if (v == NULL)
		return required ? aam_jose__fail(why, AAM_JOSE_R_MISSING_CLAIM, AAM_E_DENIED)
		                : AAM_OK;
	if (aam_jose__numeric_date(v, round_up, out) != AAM_OK)
		return aam_jose__fail(why, AAM_JOSE_R_CLAIM, AAM_E_DENIED);
	return AAM_OK;
}

/* "aud" is a string or an array of strings (RFC 7519 section 4.1.3). */
static int
check_aud(const json_t *claims, const char *want, enum aam_jose_reason *why)
{
	const json_t *aud = json_object_get(claims, "aud");
	if (aud == NULL)
		return want ? aam_jose__fail(why, AAM_JOSE_R_MISSING_CLAIM, AAM_E_DENIED) : AAM_OK;
	bool match = false;
	if (json_is_string(aud)) {
		match = want != NULL && strcmp(json_string_value(aud), want) == 0;
	} else if (json_is_array(aud)) {
		size_t i;
		const json_t *e;
		json_array_foreach(aud, i, e)
		{
			if (!json_is_string(e))
				return aam_jose__fail(why, AAM_JOSE_R_CLAIM, AAM_E_DENIED);
			if (want != NULL && strcmp(json_string_value(e), want) == 0)
				match = true;
		}
	} else {
		return aam_jose__fail(why, AAM_JOSE_R_CLAIM, AAM_E_DENIED);
	}
	if (want != NULL && !match)
		return aam_jose__fail(why, AAM_JOSE_R_AUD, AAM_E_DENIED);
	return AAM_OK;
}

int
aam_jose_check_claims(const json_t *claims, const struct aam_jose_claims_check *chk,
                      enum aam_jose_reason *why)
{
	if (!json_is_object(claims) || chk == NULL)
		return aam_jose__fail(why, AAM_JOSE_R_NONE, AAM_E_INVAL);
	const int64_t now = aam_jose__now(chk->now);
	const int64_t skew = chk->skew > 0 ? chk->skew : 0;
	const unsigned f = chk->flags;

	int rc = check_string_claim(claims, "iss", chk->iss != NULL, why);
	if (rc == AAM_OK)
		rc = check_string_claim(claims, "sub", (f & AAM_JOSE_REQ_SUB) != 0, why);
	if (rc == AAM_OK)
		rc = check_string_claim(claims, "jti", (f & AAM_JOSE_REQ_JTI) != 0, why);
	if (rc == AAM_OK)
		rc = check_aud(claims, chk->aud, why);
	if (rc != AAM_OK)
		return rc;

	/* Expiry rounds down and the start times round up: both err towards refusing. */
	int64_t exp = 0, nbf = 0, iat = 0;
	bool has_exp, has_nbf, has_iat;
	rc = date_claim(claims, "exp", false, (f & AAM_JOSE_NO_EXP) == 0, &exp, &has_exp, why);
	if (rc == AAM_OK)
		rc = date_claim(claims, "nbf", true, (f & AAM_JOSE_REQ_NBF) != 0, &nbf, &has_nbf,
		                why);
	if (rc == AAM_OK)
		rc = date_claim(claims, "iat", true, (f & AAM_JOSE_REQ_IAT) != 0, &iat, &has_iat,
		                why);
	if (rc != AAM_OK)
		return rc;

	if (chk->iss != NULL && strcmp(json_string_value(json_object_get(claims, "iss")), chk->iss))
		return aam_jose__fail(why, AAM_JOSE_R_ISS, AAM_E_DENIED);
	if (has_exp && now - skew >= exp)
		return aam_jose__fail(why, AAM_JOSE_R_EXPIRED, AAM_E_DENIED);
	if (has_nbf && now + skew < nbf)
		return aam_jose__fail(why, AAM_JOSE_R_NOT_YET_VALID, AAM_E_DENIED);
	if (has_iat && iat > now + skew)
		return aam_jose__fail(why, AAM_JOSE_R_IAT_FUTURE, AAM_E_DENIED);
	if (chk->max_lifetime > 0 && has_exp) {
		int64_t start = has_iat ? iat : now;
		if (exp - start > chk->max_lifetime)
			return aam_jose__fail(why, AAM_JOSE_R_LIFETIME, AAM_E_DENIED);
	}
	return aam_jose__fail(why, AAM_JOSE_R_NONE, AAM_OK);
}

int
aam_jose_claims_cnf_jkt(const json_t *claims, const char **jkt)
{
	if (!json_is_object(claims) || jkt == NULL)
		return AAM_E_INVAL;
	*jkt = NULL;
	const json_t *cnf = json_object_get(claims, "cnf");
	if (cnf == NULL)
		return AAM_E_NOTFOUND;
	if (!json_is_object(cnf))
		return AAM_E_PARSE;
	const json_t *v = json_object_get(cnf, "jkt");
	if (v == NULL)
		return AAM_E_NOTFOUND;
	if (!json_is_string(v) || json_string_length(v) != AAM_JWK_THUMBPRINT_LEN)
		return AAM_E_PARSE;
	*jkt = json_string_value(v);
	return AAM_OK;
}
