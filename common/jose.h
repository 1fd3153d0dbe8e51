/*
 * JOSE for AAM: JWS compact serialisation with ES256 only (RFC 7515,
 * RFC 7518 section 3.4), EC P-256 JWKs and JWK Sets (RFC 7517), RFC 7638
 * thumbprints, JWT claim checks (RFC 7519) and DPoP proofs (RFC 9449).
 *
 * One algorithm on purpose.  Every token AAM issues and every proof an
 * agent signs is ES256, so accepting anything else would only widen the
 * attack surface: "none", HMAC (the classic public-key-as-HMAC-secret
 * confusion), RSA and any "crit" extension are refused before a key is
 * even looked at, and embedded keys ("jwk", "jku", "x5u", "x5c") are never
 * trusted for a plain JWS; only DPoP uses the "jwk" header, as RFC 9449
 * requires.
 *
 * Signing goes through a pluggable signer that receives the SHA-256
 * digest of the signing input and returns the raw r||s form JOSE uses, so
 * the same code signs through aam-vault's SIGN (PKCS#11 CKM_ECDSA already
 * returns r||s), a TPM, or an OpenSSL key in tests.
 *
 * Errors.  Functions return codes from aam/err.h and, through an optional
 * WHY argument, an aam_jose_reason naming the exact check that failed
 * (aam_jose_reason_str() gives a stable snake_case name for logs and
 * error bodies).  The codes are:
 *   AAM_E_TOOBIG  input over a size limit,
 *   AAM_E_PARSE   not a well-formed JWS/JWK (segments, base64url, JSON),
 *   AAM_E_DENIED  well-formed but refused: algorithm, header, signature,
 *                 claims, DPoP binding, replay,
 *   AAM_E_BUSY    the DPoP replay cache is full of live entries,
 *   AAM_E_INVAL   a caller error (NULL or impossible argument),
 *   AAM_E_NOMEM, AAM_E_CRYPTO (OpenSSL failed for a reason not the input's).
 * No function logs, and no error carries a token, key or claim value.
 */
#ifndef AAM_COMMON_JOSE_H
#define AAM_COMMON_JOSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "common/buf.h"

#define AAM_JOSE_MAX_TOKEN      8192u /* bytes of a compact JWS we accept or emit */
#define AAM_JOSE_DIGEST_LEN     32u   /* SHA-256 */
#define AAM_JOSE_SIG_LEN        64u   /* ES256 r||s */
#define AAM_JOSE_ECDSA_DER_MAX  72u   /* largest DER ECDSA-Sig-Value for P-256 */
#define AAM_JOSE_MAX_KID        128u  /* bytes of a "kid" */
#define AAM_JWK_COORD_LEN       32u   /* P-256 x and y */
#define AAM_JWK_THUMBPRINT_LEN  43u   /* base64url of a SHA-256 digest */
#define AAM_JWKS_MAX_KEYS       64u
#define AAM_DPOP_MAX_JTI        256u
#define AAM_DPOP_MAX_HTU        4096u
#define AAM_DPOP_MAX_NONCE      1024u
#define AAM_DPOP_DEFAULT_WINDOW 60 /* seconds either side of "now" for a proof's iat */

/* Why a verification failed.  Append only: the names are a stable API. */
enum aam_jose_reason {
	AAM_JOSE_R_NONE = 0,
	AAM_JOSE_R_TOO_BIG,            /* token_too_big */
	AAM_JOSE_R_FORMAT,             /* malformed_jws: not three segments */
	AAM_JOSE_R_BASE64,             /* bad_base64url */
	AAM_JOSE_R_HEADER,             /* bad_header: not a JSON object, bad member type */
	AAM_JOSE_R_PAYLOAD,            /* bad_payload: not a JSON object */
	AAM_JOSE_R_ALG_NONE,           /* alg_none */
	AAM_JOSE_R_ALG_HMAC,           /* alg_hmac: HS256/384/512 */
	AAM_JOSE_R_ALG,                /* alg_unsupported: missing or anything but ES256 */
	AAM_JOSE_R_CRIT,               /* crit_unsupported: "crit" or "b64" present */
	AAM_JOSE_R_TYP,                /* typ_mismatch */
	AAM_JOSE_R_SIG_FORMAT,         /* bad_signature_encoding: not 64 bytes */
	AAM_JOSE_R_SIGNATURE,          /* bad_signature */
	AAM_JOSE_R_KID,                /* unknown_kid: missing or not in the key set */
	AAM_JOSE_R_KEY,                /* unsupported_key: verification key is not P-256 */
	AAM_JOSE_R_JWK,                /* bad_jwk */
	AAM_JOSE_R_JWK_MISSING,        /* jwk_missing */
	AAM_JOSE_R_JWK_PRIVATE,        /* jwk_private: "d" where a public key belongs */
	AAM_JOSE_R_CLAIM,              /* bad_claim: registered claim of the wrong type */
	AAM_JOSE_R_MISSING_CLAIM,      /* missing_claim */
	AAM_JOSE_R_ISS,                /* wrong_issuer */
	AAM_JOSE_R_AUD,                /* wrong_audience */
	AAM_JOSE_R_EXPIRED,            /* expired */
	AAM_JOSE_R_NOT_YET_VALID,      /* not_yet_valid: nbf in the future */
	AAM_JOSE_R_IAT_FUTURE,         /* issued_in_future */
	AAM_JOSE_R_LIFETIME,           /* lifetime_too_long */
	AAM_JOSE_R_DPOP_HTM,           /* dpop_htm_mismatch */
	AAM_JOSE_R_DPOP_HTU,           /* dpop_htu_mismatch */
	AAM_JOSE_R_DPOP_IAT_STALE,     /* dpop_iat_stale */
	AAM_JOSE_R_DPOP_IAT_FUTURE,    /* dpop_iat_future */
	AAM_JOSE_R_DPOP_JTI,           /* dpop_bad_jti: empty or too long */
	AAM_JOSE_R_DPOP_REPLAY,        /* dpop_jti_replayed */
	AAM_JOSE_R_DPOP_REPLAY_FULL,   /* dpop_replay_cache_full */
	AAM_JOSE_R_DPOP_ATH_MISSING,   /* dpop_ath_missing */
	AAM_JOSE_R_DPOP_ATH,           /* dpop_ath_mismatch */
	AAM_JOSE_R_DPOP_NONCE_MISSING, /* dpop_nonce_missing (answer with use_dpop_nonce) */
	AAM_JOSE_R_DPOP_NONCE,         /* dpop_nonce_mismatch */
	AAM_JOSE_R_DPOP_JKT,           /* dpop_key_mismatch: proof key is not cnf.jkt */
	AAM_JOSE_R__MAX
};

/* A stable snake_case name ("alg_none", "dpop_jti_replayed", ...); never NULL. */
const char *aam_jose_reason_str(enum aam_jose_reason r);

/* ---- ECDSA signature forms ------------------------------------------- */

/* DER ECDSA-Sig-Value (what OpenSSL produces) to JOSE r||s; AAM_E_PARSE if malformed. */
int aam_jose_ecdsa_der_to_rs(const uint8_t *der, size_t len, uint8_t rs[AAM_JOSE_SIG_LEN]);
/* JOSE r||s to DER into OUT (OUTCAP >= AAM_JOSE_ECDSA_DER_MAX is always enough). */
int aam_jose_ecdsa_rs_to_der(const uint8_t rs[AAM_JOSE_SIG_LEN], uint8_t *out, size_t outcap,
                             size_t *outlen);

/* ---- Signing ----------------------------------------------------------- */

/*
 * A signer: SIGN receives the SHA-256 digest of the JWS signing input and
 * writes the 64-byte r||s signature; it returns an aam_err code.  KID (may
 * be NULL) goes into the protected header.
 */
struct aam_jose_signer {
	int (*sign)(void *ctx, const uint8_t digest[AAM_JOSE_DIGEST_LEN],
	            uint8_t sig_rs[AAM_JOSE_SIG_LEN]);
	void *ctx;
	const char *kid;
};

/*
 * A signer over an OpenSSL EC P-256 private key (tests, tools).  The
 * caller keeps PKEY alive for as long as the signer is used.
 */
void aam_jose_signer_pkey(struct aam_jose_signer *s, EVP_PKEY *pkey, const char *kid);
/* The SIGN callback of that signer; CTX is an EVP_PKEY *. */
int aam_jose_pkey_sign(void *ctx, const uint8_t digest[AAM_JOSE_DIGEST_LEN],
                       uint8_t sig_rs[AAM_JOSE_SIG_LEN]);

struct aam_jwk;

/*
 * Signs CLAIMS (a JSON object) as a compact JWS with the protected header
 * {"alg":"ES256","typ":TYP,"kid":signer->kid,"jwk":JWK}, where TYP, the
 * kid and JWK (public members only) are left out when NULL.  *OUT
 * receives a NUL-terminated token to free().  AAM_E_TOOBIG when the token
 * would exceed AAM_JOSE_MAX_TOKEN.
 */
int aam_jose_sign(const struct aam_jose_signer *signer, const char *typ, const struct aam_jwk *jwk,
                  const json_t *claims, char **out);

/* ---- Verification ------------------------------------------------------- */

/*
 * A parsed compact JWS whose signature is not yet checked.  Parsing
 * already enforced: size limit, three segments, strict base64url,
 * header and payload JSON objects (no duplicate keys), alg ES256, no
 * "crit"/"b64", string "kid"/"typ" when present, a 64-byte signature.
 */
struct aam_jose_jws {
	json_t *header;                      /* owned */
	json_t *claims;                      /* owned */
	const char *kid;                     /* inside HEADER, NULL when absent */
	const char *typ;                     /* inside HEADER, NULL when absent */
	uint8_t digest[AAM_JOSE_DIGEST_LEN]; /* SHA-256 of the signing input */
	uint8_t sig[AAM_JOSE_SIG_LEN];
};

int aam_jose_jws_parse(const char *token, size_t len, struct aam_jose_jws *out,
                       enum aam_jose_reason *why);
/* Checks the signature with KEY (an EC P-256 key); AAM_E_DENIED if it does not verify. */
int aam_jose_jws_verify(const struct aam_jose_jws *jws, EVP_PKEY *key, enum aam_jose_reason *why);
void aam_jose_jws_uninit(struct aam_jose_jws *jws);

struct aam_jwks;

/*
 * Parse + verify in one call.  HEADER and CLAIMS (each may be NULL)
 * receive new references on success only.  The JWKS form requires a
 * "kid" that names a key of SET.  Claims are not judged here: a verified
 * token may still be expired, so callers go on to aam_jose_check_claims().
 */
int aam_jose_verify(const char *token, size_t len, EVP_PKEY *key, json_t **header, json_t **claims,
                    enum aam_jose_reason *why);
int aam_jose_verify_jwks(const char *token, size_t len, const struct aam_jwks *set, json_t **header,
                         json_t **claims, enum aam_jose_reason *why);

/* ---- JWT claims --------------------------------------------------------- */

enum {
	AAM_JOSE_REQ_IAT = 1u << 0,
	AAM_JOSE_REQ_NBF = 1u << 1,
	AAM_JOSE_REQ_JTI = 1u << 2,
	AAM_JOSE_REQ_SUB = 1u << 3,
	AAM_JOSE_NO_EXP = 1u << 4, /* allow a token without "exp" (never for access tokens) */
};

/*
 * What aam_jose_check_claims() expects.  Zero-initialise, then set what
 * matters: the defaults require "exp" and check nothing else.
 */
struct aam_jose_claims_check {
	const char *iss;      /* "iss" must equal it; NULL: not checked */
	const char *aud;      /* must equal "aud" or one of its elements; NULL: not checked */
	int64_t now;          /* seconds since the epoch; <= 0 means the real clock */
	int64_t skew;         /* leeway for exp/nbf/iat in seconds; negative is treated as 0 */
	int64_t max_lifetime; /* > 0: exp - iat (or exp - now without iat) may not exceed it */
	unsigned flags;       /* AAM_JOSE_REQ_*, AAM_JOSE_NO_EXP */
};

/*
 * Checks registered claims: types of iss, sub, aud, exp, nbf, iat and jti
 * whenever present (NumericDates may be integers or finite reals), then
 * the expectations in CHK.  A token is expired when now - skew >= exp.
 */
int aam_jose_check_claims(const json_t *claims, const struct aam_jose_claims_check *chk,
                          enum aam_jose_reason *why);

/* The "cnf"."jkt" claim (RFC 9449 section 6.1): AAM_E_NOTFOUND when absent. */
int aam_jose_claims_cnf_jkt(const json_t *claims, const char **jkt);

/* ---- JWK / JWKS --------------------------------------------------------- */

/* An EC P-256 public key with its thumbprint. */
struct aam_jwk {
	EVP_PKEY *pkey; /* public only, one reference owned */
	uint8_t x[AAM_JWK_COORD_LEN], y[AAM_JWK_COORD_LEN];
	char kid[AAM_JOSE_MAX_KID + 1];       /* "" when none */
	char jkt[AAM_JWK_THUMBPRINT_LEN + 1]; /* RFC 7638 SHA-256 thumbprint, base64url */
};

/*
 * From a JSON object: kty "EC", crv "P-256", x and y of exactly 32 bytes
 * each in strict base64url, a point on the curve, no "d" (AAM_E_DENIED,
 * AAM_JOSE_R_JWK_PRIVATE), "alg" ES256 and "use" sig (or SPIFFE's
 * jwt-svid) when present, an optional printable-ASCII "kid".  Unknown
 * members are ignored as RFC 7517 section 4 says.  Anything else is
 * AAM_E_PARSE with AAM_JOSE_R_JWK.
 */
int aam_jwk_from_json(const json_t *obj, struct aam_jwk *out, enum aam_jose_reason *why);
/* The same from JSON text. */
int aam_jwk_parse(const char *text, size_t len, struct aam_jwk *out, enum aam_jose_reason *why);
/* From an OpenSSL EC P-256 key (public or private: only the public half is kept). */
int aam_jwk_from_pkey(EVP_PKEY *pkey, const char *kid, struct aam_jwk *out);
/* From raw affine coordinates, as a TPM2B_PUBLIC or a PKCS#11 CKA_EC_POINT carries them. */
int aam_jwk_from_xy(const uint8_t x[AAM_JWK_COORD_LEN], const uint8_t y[AAM_JWK_COORD_LEN],
                    const char *kid, struct aam_jwk *out);
int aam_jwk_copy(struct aam_jwk *dst, const struct aam_jwk *src);
void aam_jwk_uninit(struct aam_jwk *k);

enum {
	AAM_JWK_PUBLIC = 0,    /* kty, crv, x, y: the form for a DPoP "jwk" header */
	AAM_JWK_WITH_META = 1, /* plus kid (when set), use "sig" and alg "ES256": for a JWKS */
};
/* A new JSON object for K; *OUT owns the reference. */
int aam_jwk_to_json(const struct aam_jwk *k, int form, json_t **out);

/*
 * RFC 7638 thumbprint of any public JWK object: the SHA-256 of its
 * required members in lexicographic order without whitespace — crv, kty,
 * x, y for EC; e, kty, n for RSA; crv, kty, x for OKP.  Member values must
 * be strings of base64url or name characters (so no JSON escaping is
 * involved).  AAM_E_UNSUPPORTED for other key types.
 */
int aam_jwk_thumbprint(const json_t *jwk, uint8_t digest[AAM_JOSE_DIGEST_LEN]);
int aam_jwk_thumbprint_b64(const json_t *jwk, char out[AAM_JWK_THUMBPRINT_LEN + 1]);

/* A JWK Set of EC P-256 keys, each with a distinct kid. */
struct aam_jwks {
	struct aam_jwk *keys;
	size_t count;
};

void aam_jwks_init(struct aam_jwks *set);
void aam_jwks_uninit(struct aam_jwks *set);
/*
 * From {"keys":[...]} (other top-level members, such as a SPIFFE bundle's
 * spiffe_sequence, are ignored).  Keys of another kty or curve, with an
 * "alg" other than ES256, a "use" other than sig/jwt-svid, or without a
 * kid are skipped as RFC 7517 section 5 allows; an EC P-256 key that is
 * malformed or private fails the whole set, as do duplicate kids and more
 * than AAM_JWKS_MAX_KEYS keys.
 */
int aam_jwks_from_json(const json_t *obj, struct aam_jwks *out, enum aam_jose_reason *why);
int aam_jwks_parse(const char *text, size_t len, struct aam_jwks *out, enum aam_jose_reason *why);
/* Adds a copy of K, which must have a kid: AAM_E_EXISTS when the kid is taken. */
int aam_jwks_add(struct aam_jwks *set, const struct aam_jwk *k);
/* The key named KID, or NULL. */
const struct aam_jwk *aam_jwks_find(const struct aam_jwks *set, const char *kid);
/* {"keys":[...]} with kid, use and alg on every key. */
int aam_jwks_to_json(const struct aam_jwks *set, json_t **out);

/* ---- DPoP (RFC 9449) ------------------------------------------------------ */

/*
 * The "htu" normal form used for comparison (RFC 9449 section 4.3, RFC
 * 3986 section 6.2.2 and 6.2.3): scheme http or https and host lowercased,
 * default port and an empty port removed, empty path made "/",
 * percent-encodings uppercased and decoded when they encode an unreserved
 * character, characters a URI may not hold raw percent-encoded, dot
 * segments removed, query and fragment dropped.  Userinfo, a missing host,
 * a bad port and control characters are AAM_E_PARSE.  Appends to OUT.
 */
int aam_dpop_htu_normalise(const char *uri, size_t len, struct aam_buf *out);

/* base64url(SHA-256(token)), the "ath" claim. */
int aam_dpop_ath(const char *token, size_t len, char out[AAM_JWK_THUMBPRINT_LEN + 1]);

/* What a proof says about its request. */
struct aam_dpop_request {
	const char *htm;          /* method, e.g. "POST" */
	const char *htu;          /* target URI; query and fragment are stripped */
	const char *access_token; /* when sent with a token: "ath" is added */
	const char *nonce;        /* server-provided nonce, or NULL */
	int64_t iat;              /* <= 0 means the real clock */
};

/*
 * Creates a proof: header {"typ":"dpop+jwt","alg":"ES256","jwk":KEY},
 * claims jti (16 random bytes, base64url), htm, htu, iat and, when set,
 * ath and nonce.  KEY is SIGNER's public key; the signer's kid is not
 * used.  *OUT receives a token to free().
 */
int aam_dpop_create(const struct aam_jose_signer *signer, const struct aam_jwk *key,
                    const struct aam_dpop_request *req, char **out);

/*
 * Replay cache for proof "jti"s: a fixed-capacity table, safe to share
 * between threads.  An entry is kept at least until its expiry and is
 * never evicted before it: when the cache is full of live entries an
 * insert fails with AAM_E_BUSY (fail closed) rather than forget a jti
 * that could still be replayed.  Lookup keys are salted hashes, so a
 * client cannot choose jtis that collide in the table.
 */
struct aam_dpop_replay;

/* CAPACITY entries (1 .. 2^24); NULL on failure. */
struct aam_dpop_replay *aam_dpop_replay_new(size_t capacity);
void aam_dpop_replay_free(struct aam_dpop_replay *r);
/*
 * Records KEY until EXPIRES (seconds): AAM_OK when it was not live,
 * AAM_E_EXISTS when it is a replay, AAM_E_BUSY when full.  Expired entries
 * are evicted first, oldest first, in O(1) amortised time.
 */
int aam_dpop_replay_insert(struct aam_dpop_replay *r, const void *key, size_t keylen, int64_t now,
                           int64_t expires);
/* Live entries as of NOW (evicting expired ones). */
size_t aam_dpop_replay_count(struct aam_dpop_replay *r, int64_t now);

/* What the server expects of a proof. */
struct aam_dpop_check {
	const char *htm;          /* the request's method */
	const char *htu;          /* the request's absolute target URI */
	const char *access_token; /* the token presented with the proof: ath required; NULL: none */
	const char *nonce;        /* the nonce the server requires; NULL: none */
	const char *jkt;          /* cnf.jkt the proof key must have; NULL: not checked */
	int64_t now;              /* <= 0 means the real clock */
	int64_t iat_past;         /* oldest acceptable iat, seconds before now; <= 0: default */
	int64_t iat_future;       /* newest acceptable iat, seconds after now; <= 0: default */
	struct aam_dpop_replay *replay; /* required */
};

/*
 * Verifies a proof per RFC 9449 section 4.3: typ exactly "dpop+jwt", alg
 * ES256, a public EC P-256 "jwk" that verifies the signature, jti, htm,
 * htu, iat, then ath, nonce and jkt as CHK asks, and last records the jti
 * (scoped to the key) in the replay cache, so a proof that fails any check
 * does not use up cache space.  JKT_OUT (may be NULL) receives the proof
 * key's thumbprint to compare with the token's cnf.jkt.
 */
int aam_dpop_verify(const char *proof, size_t len, const struct aam_dpop_check *chk,
                    char jkt_out[AAM_JWK_THUMBPRINT_LEN + 1], enum aam_jose_reason *why);

#endif /* AAM_COMMON_JOSE_H */
