/*
 * Fuzz target for the JOSE parsers: the same bytes are fed as a compact
 * JWS (parse, verify, claim checks), a DPoP proof, a JWK, a JWK Set, an
 * arbitrary JWK for thumbprinting and an htu to normalise.  Inputs are
 * not NUL-terminated, so every entry point is exercised through its
 * explicit length.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "aam/err.h"
#include "common/jose.h"
#include "common/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* RFC 7515 appendix A.3's public key: the verifier key for every JWS input. */
static const char fuzz_jwk[] = "{\"kty\":\"EC\",\"crv\":\"P-256\","
                               "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
                               "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}";

static struct aam_jwk key;
static struct aam_dpop_replay *replay;

static void
fuzz_jws(const char *s, size_t n)
{
	struct aam_jose_jws jws;
	enum aam_jose_reason why;
	if (aam_jose_jws_parse(s, n, &jws, &why) != AAM_OK)
		return;
	(void)aam_jose_jws_verify(&jws, key.pkey, &why);
	struct aam_jose_claims_check chk = {
	        .iss = "joe", .aud = "gw", .now = 1300819000, .skew = 5, .max_lifetime = 900};
	(void)aam_jose_check_claims(jws.claims, &chk, &why);
	const char *jkt = NULL;
	(void)aam_jose_claims_cnf_jkt(jws.claims, &jkt);
	aam_jose_jws_uninit(&jws);
}

static void
fuzz_jwk_and_sets(const char *s, size_t n)
{
	enum aam_jose_reason why;
	struct aam_jwk k;
	if (aam_jwk_parse(s, n, &k, &why) == AAM_OK) {
		/* What parses must emit and parse back to the same thumbprint. */
		json_t *j = NULL;
		if (aam_jwk_to_json(&k, AAM_JWK_WITH_META, &j) == AAM_OK) {
			struct aam_jwk k2;
			if (aam_jwk_from_json(j, &k2, &why) != AAM_OK || strcmp(k.jkt, k2.jkt) != 0)
				__builtin_trap();
			aam_jwk_uninit(&k2);
			json_decref(j);
		}
		aam_jwk_uninit(&k);
	}
	struct aam_jwks set;
	if (aam_jwks_parse(s, n, &set, &why) == AAM_OK) {
		json_t *j = NULL;
		if (aam_jwks_to_json(&set, &j) == AAM_OK)
			json_decref(j);
		aam_jwks_uninit(&set);
	}
	json_t *any = NULL;
	if (aam_json_parse(s, n, NULL, &any, NULL) == AAM_OK) {
		char tp[AAM_JWK_THUMBPRINT_LEN + 1];
		(void)aam_jwk_thumbprint_b64(any, tp);
		json_decref(any);
	}
}

static void
fuzz_dpop(const char *s, size_t n)
{
	struct aam_dpop_check chk = {.htm = "POST",
	                             .htu = "https://gateway.example/v1/chat/completions",
	                             .access_token = "token",
	                             .now = 1767225600,
	                             .replay = replay};
	char jkt[AAM_JWK_THUMBPRINT_LEN + 1];
	enum aam_jose_reason why;
	(void)aam_dpop_verify(s, n, &chk, jkt, &why);

	struct aam_buf b;
	aam_buf_init(&b, 0);
	/* Normalisation is idempotent (percent-encoding may push a long URI over the limit). */
	if (aam_dpop_htu_normalise(s, n, &b) == AAM_OK && b.len <= AAM_DPOP_MAX_HTU) {
		struct aam_buf b2;
		aam_buf_init(&b2, 0);
		if (aam_dpop_htu_normalise(aam_buf_cstr(&b), b.len, &b2) != AAM_OK ||
		    strcmp(aam_buf_cstr(&b), aam_buf_cstr(&b2)) != 0)
			__builtin_trap();
		aam_buf_uninit(&b2);
	}
	aam_buf_uninit(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (key.pkey == NULL) {
		if (aam_jwk_parse(fuzz_jwk, strlen(fuzz_jwk), &key, NULL) != AAM_OK)
			__builtin_trap();
		replay = aam_dpop_replay_new(1024);
		if (replay == NULL)
			__builtin_trap();
	}
	const char *s = (const char *)data;
	fuzz_jws(s, size);
	fuzz_jwk_and_sets(s, size);
	fuzz_dpop(s, size);
	return 0;
}
