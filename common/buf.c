#include "common/buf.h"
#include "common/secret.h"
#include "aam/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
aam_buf_init(struct aam_buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max ? max : AAM_BUF_DEFAULT_MAX;
}

void
aam_buf_uninit(struct aam_buf *b)
{
	size_t max = b->max;
	free(b->data);
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void
aam_buf_uninit_wipe(struct aam_buf *b)
{
	if (b->data != NULL)
		aam_wipe(b->data, b->cap);
	aam_buf_uninit(b);
}

void
aam_buf_reset(struct aam_buf *b)
{
	b->len = 0;
	b->err = 0;
	if (b->data != NULL)
		b->data[0] = 0;
}

int
aam_buf_reserve(struct aam_buf *b, size_t extra)
{
	if (b->err)
		return b->err;
	if (extra > b->max || b->len > b->max - extra) {
		b->err = AAM_E_TOOBIG;
		return b->err;
	}
	size_t need = b->len + extra + 1; /* room for the terminating NUL */
	if (need <= b->cap)
		return AAM_OK;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	if (cap > b->max + 1)
		cap = b->max + 1;
	uint8_t *p = realloc(b->data, cap);
	if (p == NULL) {
		b->err = AAM_E_NOMEM;
		return b->err;
	}
	b->data = p;
	b->cap = cap;
	return AAM_OK;
}

int
aam_buf_append(struct aam_buf *b, const void *p, size_t n)
{
	int rc = aam_buf_reserve(b, n);
	if (rc != AAM_OK)
		return rc;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = 0;
	return AAM_OK;
}

int
aam_buf_append_str(struct aam_buf *b, const char *s)
{
	return aam_buf_append(b, s, strlen(s));
}

int
aam_buf_append_byte(struct aam_buf *b, uint8_t c)
{
	return aam_buf_append(b, &c, 1);
}

int
aam_buf_printf(struct aam_buf *b, const char *fmt, ...)
{
	if (b->err)
		return b->err;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->err = AAM_E_INVAL;
		return b->err;
	}
	int rc = aam_buf_reserve(b, (size_t)n);
	if (rc != AAM_OK)
		return rc;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return AAM_OK;
}

int
aam_buf_append_u16be(struct aam_buf *b, uint16_t v)
{
	uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	return aam_buf_append(b, x, sizeof(x));
}

int
aam_buf_append_u32be(struct aam_buf *b, uint32_t v)
{
	uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	return aam_buf_append(b, x, sizeof(x));
}

int
aam_buf_append_u64be(struct aam_buf *b, uint64_t v)
{
	int rc = aam_buf_append_u32be(b, (uint32_t)(v >> 32));
	if (rc != AAM_OK)
		return rc;
	return aam_buf_append_u32be(b, (uint32_t)v);
}

void
aam_buf_consume(struct aam_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
	} else {
		memmove(b->data, b->data + n, b->len - n);
		b->len -= n;
	}
	if (b->data != NULL)
		b->data[b->len] = 0;
}

uint8_t *
aam_buf_steal(struct aam_buf *b, size_t *len)
{
	if (b->err) {
		aam_buf_uninit(b);
		return NULL;
	}
	uint8_t *p = b->data;
	if (p == NULL)
		p = calloc(1, 1);
	if (len != NULL)
		*len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}
