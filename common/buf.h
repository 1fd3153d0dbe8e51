/*
 * Growable byte buffer with a hard maximum size and a sticky failure flag.
 * Appends after a failure are ignored, so a caller may build a whole
 * message and check aam_buf_failed() (or the return code) once at the end.
 */
#ifndef AAM_COMMON_BUF_H
#define AAM_COMMON_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct aam_buf {
	uint8_t *data; /* always NUL-terminated past len when non-NULL */
	size_t len;
	size_t cap;
	size_t max; /* hard limit on len */
	int err;    /* sticky: first error (AAM_E_NOMEM or AAM_E_TOOBIG), 0 if none */
};

#define AAM_BUF_DEFAULT_MAX (16u * 1024 * 1024)

void aam_buf_init(struct aam_buf *b, size_t max);
/* Frees the storage (wiping it when WIPE is true) and resets to empty. */
void aam_buf_uninit(struct aam_buf *b);
void aam_buf_uninit_wipe(struct aam_buf *b);

/* Sets len to 0 and clears the failure flag; keeps the storage. */
void aam_buf_reset(struct aam_buf *b);

int aam_buf_reserve(struct aam_buf *b, size_t extra);
int aam_buf_append(struct aam_buf *b, const void *p, size_t n);
int aam_buf_append_str(struct aam_buf *b, const char *s);
int aam_buf_append_byte(struct aam_buf *b, uint8_t c);
int aam_buf_printf(struct aam_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Big-endian integers, for wire formats. */
int aam_buf_append_u16be(struct aam_buf *b, uint16_t v);
int aam_buf_append_u32be(struct aam_buf *b, uint32_t v);
int aam_buf_append_u64be(struct aam_buf *b, uint64_t v);

/* Removes the first N bytes (consumed input). */
void aam_buf_consume(struct aam_buf *b, size_t n);

/*
 * Hands the storage to the caller (free() it); the buffer is reset to
 * empty.  Returns NULL if the buffer failed.  *LEN receives the length.
 */
uint8_t *aam_buf_steal(struct aam_buf *b, size_t *len);

static inline bool
aam_buf_failed(const struct aam_buf *b)
{
	return b->err != 0;
}

static inline const char *
aam_buf_cstr(const struct aam_buf *b)
{
	return b->data ? (const char *)b->data : "";
}

#endif
