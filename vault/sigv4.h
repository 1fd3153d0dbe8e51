/*
 * AWS Signature Version 4 with the secret inside the token.
 *
 * The credential's token object holds "AWS4" + secret as a
 * CKK_GENERIC_SECRET, so the first step of the key chain,
 * kDate = HMAC-SHA256("AWS4" + secret, yyyymmdd), is a C_Sign in the
 * token and the long-term secret never enters this process.  The rest of
 * the chain (kRegion, kService, kSigning, the signature) runs in OpenSSL
 * on the day-scoped derived keys, which are held in protected memory and
 * wiped after the request.
 *
 * The signer rewrites the request's path and query into the encodings it
 * signs (path segments percent-encoded once; query parameters decoded,
 * re-encoded with RFC 3986 unreserved characters only and sorted), so the
 * bytes sent are exactly the bytes signed.  It signs host, x-amz-date,
 * content-type and content-md5 when present, every x-amz-* header, and
 * for S3 x-amz-content-sha256.  The clock is a parameter, so tests can
 * reproduce AWS's published examples.
 */
#ifndef AAM_VAULT_SIGV4_H
#define AAM_VAULT_SIGV4_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "vault/binding.h"
#include "vault/store.h"

/* The first HMAC step: MAC = HMAC("AWS4" + secret, DATA), done wherever the secret lives. */
typedef int (*vault_sigv4_kdate_fn)(void *ctx, const uint8_t *data, size_t len, uint8_t mac[32]);

struct vault_sigv4_params {
	const char *access_key_id;
	const char *region;
	const char *service;
	const char *method;
	/* Caller headers (credential headers already removed); values without CR/LF/NUL. */
	const char *const *hnames;
	const char *const *hvalues;
	size_t nheaders;
	const uint8_t *body;
	size_t body_len;
	time_t now;
	vault_sigv4_kdate_fn kdate;
	void *kdate_ctx;
};

struct vault_sigv4_result {
	char amz_date[17];        /* x-amz-date: yyyymmddThhmmssZ */
	char host[300];           /* the Host header value that was signed */
	char payload_hash[65];    /* hex SHA-256 of the body */
	int content_sha256;       /* add x-amz-content-sha256: payload_hash (S3) */
	char signature[65];       /* hex */
	char authorization[2048]; /* the Authorization header value */
};

/*
 * Signs P for the request at URL, rewriting URL's path and query into the
 * signed encodings.  AAM_E_INVAL for a request that cannot be signed (a
 * malformed percent-encoding, an over-long canonical form), AAM_E_HSM or
 * AAM_E_CRYPTO when a MAC fails.
 */
int vault_sigv4_sign(const struct vault_sigv4_params *p, struct vault_url *url,
                     struct vault_sigv4_result *out);

/* The same with the kDate step done by vault_cred_hmac on CRED's token object. */
int vault_sigv4_sign_cred(struct vault_store *st, const struct vault_cred *cred,
                          struct vault_sigv4_params *p, struct vault_url *url,
                          struct vault_sigv4_result *out);

#endif
