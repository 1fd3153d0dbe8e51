/*
 * Secret values: bytes held in locked (mlock), non-dumpable
 * (MADV_DONTDUMP) pages and wiped on free.  The type is opaque, so a secret
 * cannot be handed to the logger, a printf or a JSON builder by accident:
 * the only way to its bytes is aam_secret_data(), which code outside the
 * vault has no reason to call.  The logger accepts an aam_secret only
 * through AAM_F_SECRET, which prints "[redacted]".
 */
#ifndef AAM_COMMON_SECRET_H
#define AAM_COMMON_SECRET_H

#include <stddef.h>
#include <stdint.h>

typedef struct aam_secret aam_secret;

/* Largest secret accepted; larger values are refused with AAM_E_TOOBIG. */
#define AAM_SECRET_MAX (64u * 1024)

/* A zeroed secret of LEN bytes in protected memory; NULL on failure. */
aam_secret *aam_secret_new(size_t len);
/* A protected copy of DATA; the caller still wipes its own copy. */
aam_secret *aam_secret_from(const void *data, size_t len);
/* Wipes and releases; NULL is accepted. */
void aam_secret_free(aam_secret *s);

uint8_t *aam_secret_data(aam_secret *s);
size_t aam_secret_len(const aam_secret *s);

/* Shrinks the visible length (for example after decryption). */
int aam_secret_set_len(aam_secret *s, size_t len);

/* Constant-time comparison of two byte strings of equal length. */
int aam_ct_equal(const void *a, const void *b, size_t len);

/* Wipes memory in a way the compiler cannot elide. */
void aam_wipe(void *p, size_t len);

#endif
