/*
 * Internals shared by the store's files (store.c, keys.c, keycheck.c,
 * crypt.c, secrets.c, bind.c).  Nothing else includes this header.
 */
#ifndef AAM_VAULT_STORE_INT_H
#define AAM_VAULT_STORE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "vault/store.h"

/* Previous public keys kept in memory per EC key (newest first). */
#define VAULT_PREV_MAX 16
/* Largest stored ciphertext object: header + IV + value + padding + MAC. */
#define VAULT_BLOB_MAX (AAM_SECRET_MAX + 128)
/* Entries in the optional decrypted-secret cache. */
#define VAULT_CACHE_MAX 256
/* Spare signature-verification contexts kept per EC key (keycheck.c). */
#define VAULT_VERIFY_SPARE 16

struct vault_ec_state {
	EVP_PKEY *pkey; /* the current public key, to verify every signature */
	struct vault_pubkey cur;
	struct vault_pubkey prev[VAULT_PREV_MAX];
	size_t nprev;
	unsigned long prev_next; /* n of the next <label>.prev.<n> */
};

struct vault_cache_entry {
	char name[128];
	int64_t version;
	aam_secret *plain;
	int64_t expires; /* CLOCK_MONOTONIC seconds */
};

/*
 * Metadata and ciphertext of a secret's current version, kept so that an
 * INJECT reads neither SQLite nor the token object (metacache.c).  Neither
 * is secret: the ciphertext is only usable through the token's AES key.
 */
#define VAULT_META_MAX 256
struct vault_meta_entry {
	struct vault_secret_meta *meta;
	uint8_t *blob; /* NULL until the first decryption of META->version */
	size_t bloblen;
	uint64_t blob_gen; /* aam_p11_generation() before the blob was read */
};

struct vault_store {
	aam_p11 *p11;
	struct aam_db *db;
	/*
	 * Serialises the SQLite connection (one thread at a time), the key state
	 * and the cache.  Token operations that take long (decryption, signing)
	 * run outside it.
	 */
	pthread_mutex_t lock;
	bool ready;
	struct vault_ec_state ec[2];
	enum vault_cipher cipher;

	unsigned cache_ttl;
	struct vault_cache_entry cache[VAULT_CACHE_MAX];
	size_t ncache;

	struct vault_meta_entry meta[VAULT_META_MAX];
	size_t nmeta;

	/*
	 * Verification contexts kept between signatures, per EC key, so that
	 * each signature is checked without setting up a context.  Each one
	 * holds a reference to the public key it was made for: one left over
	 * from a rotated key is recognised by that key and dropped, never
	 * used for the new one.  Under its own lock, apart from LOCK, which
	 * SQLite work holds for long.
	 */
	pthread_mutex_t verify_lock;
	EVP_PKEY_CTX *verify_spare[2][VAULT_VERIFY_SPARE];
	size_t nverify_spare[2];
};

/*
 * Runs FN with the handle of the object (CLS, LABEL), found through the
 * p11 handle cache.  When FN reports AAM_E_NOTFOUND (a handle made stale
 * by a re-login), the object is looked up again and FN retried once.
 * Keys are always reached this way, never through a handle kept aside.
 */
typedef int (*vault_key_fn)(struct vault_store *s, CK_OBJECT_HANDLE h, void *ctx);
int vault_with_key(struct vault_store *s, CK_OBJECT_CLASS cls, const char *label, vault_key_fn fn,
                   void *ctx);

void vault_errf(char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* keys.c */
extern const uint8_t vault_p256_params[10]; /* DER OID of prime256v1 (CKA_EC_PARAMS) */
bool vault_key_id_valid(enum vault_key_id id);
int vault_keys_load(struct vault_store *s, char *err, size_t errlen);
void vault_keys_unload(struct vault_store *s);
int vault_keys_recover(struct vault_store *s);
/* keycheck.c: how many of the four AAM keys are present (private or secret key object). */
int vault_keys_count(struct vault_store *s, size_t *n, const char **missing);
/* keycheck.c: frees the spare verification contexts (at close). */
void vault_verify_spares_clear(struct vault_store *s);
/* SubjectPublicKeyInfo, kid and point from an uncompressed P-256 point. */
void vault_pubkey_from_point(const uint8_t point[65], struct vault_pubkey *out);

/* crypt.c: ciphertext objects and HMAC keys on the token. */
int vault_crypt_encrypt(struct vault_store *s, const char *name, int64_t version,
                        enum vault_secret_type type, const uint8_t *value, size_t len,
                        uint8_t **blob, size_t *bloblen);
int vault_crypt_decrypt(struct vault_store *s, const char *name, int64_t version,
                        enum vault_secret_type type, const uint8_t *blob, size_t bloblen,
                        aam_secret **out);
int vault_crypt_fingerprint(struct vault_store *s, const uint8_t *value, size_t len, char hex[65]);
/* The on-token key for an HMAC-type secret (value normalised, see crypt.c). */
int vault_crypt_import_hmac(struct vault_store *s, const char *label, enum vault_secret_type type,
                            const uint8_t *value, size_t len, CK_OBJECT_HANDLE *out);
int vault_crypt_store_blob(struct vault_store *s, const char *label, const uint8_t *blob,
                           size_t len, CK_OBJECT_HANDLE *out);
/* Destroys every object (any class) carrying LABEL; AAM_OK when there were none. */
int vault_crypt_destroy_label(struct vault_store *s, const char *label);
int vault_secret_label(const char *name, int64_t version, char *out, size_t outlen);

/* bind.c */
int vault_name_validate(const char *name);
int vault_value_validate(enum vault_secret_type type, const uint8_t *value, size_t len);

/* store.c: the decrypted-secret cache (caller holds s->lock). */
aam_secret *vault_cache_get(struct vault_store *s, const char *name, int64_t version);
void vault_cache_put(struct vault_store *s, const char *name, int64_t version, aam_secret *plain);
void vault_cache_drop(struct vault_store *s, const char *name);
void vault_cache_clear(struct vault_store *s);
int64_t vault_now(void);

/*
 * metacache.c (caller holds s->lock).  Every change of a secret calls
 * vault_cache_drop(), which forgets its entry here too; the vault is the
 * only writer of its database.
 */
bool vault_meta_cached(struct vault_store *s, const char *name, struct vault_secret_meta *out);
void vault_meta_remember(struct vault_store *s, const struct vault_secret_meta *m);
/*
 * A heap copy of the cached ciphertext of NAME at VERSION; AAM_E_NOTFOUND
 * when not cached or read before token generation GEN (aam_p11_forget() or
 * a re-login since: the object is read from the token again).
 */
int vault_meta_blob(struct vault_store *s, const char *name, int64_t version, uint64_t gen,
                    uint8_t **blob, size_t *len);
void vault_meta_blob_remember(struct vault_store *s, const char *name, int64_t version,
                              uint64_t gen, const uint8_t *blob, size_t len);
void vault_meta_drop(struct vault_store *s, const char *name);
void vault_meta_clear(struct vault_store *s);

#endif
