/*
 * Protected memory for secrets.  Each secret gets its own anonymous mapping
 * so it can be locked and excluded from core dumps independently of the
 * heap; a secret is short-lived (one outbound request), so the cost of a
 * mapping is acceptable and far below one HSM operation.
 */
#include "common/secret.h"
#include "aam/err.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct aam_secret {
	size_t len;     /* visible length */
	size_t cap;     /* usable bytes after the header */
	size_t map_len; /* whole mapping */
	int locked;
};

void
aam_wipe(void *p, size_t len)
{
	if (p != NULL && len > 0)
		OPENSSL_cleanse(p, len);
}

aam_secret *
aam_secret_new(size_t len)
{
	if (len > AAM_SECRET_MAX)
		return NULL;
	long page = sysconf(_SC_PAGESIZE);
	if (page <= 0)
		page = 4096;
	size_t need = sizeof(struct aam_secret) + (len ? len : 1);
	size_t map_len = (need + (size_t)page - 1) & ~((size_t)page - 1);
	void *m = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	/*
	 * Both calls can fail without privileges or on old kernels; the secret
	 * is still usable, and the daemons also disable core dumps
	 * process-wide, so failure here is not fatal.
	 */
	(void)madvise(m, map_len, MADV_DONTDUMP);
	struct aam_secret *s = m;
	s->locked = mlock(m, map_len) == 0;
	s->len = len;
	s->cap = map_len - sizeof(*s);
	s->map_len = map_len;
	return s;
}

aam_secret *
aam_secret_from(const void *data, size_t len)
{
	aam_secret *s = aam_secret_new(len);
	if (s != NULL && len > 0)
		memcpy(aam_secret_data(s), data, len);
	return s;
}

void
aam_secret_free(aam_secret *s)
{
	if (s == NULL)
		return;
	size_t map_len = s->map_len;
	int locked = s->locked;
	aam_wipe(s, map_len);
	if (locked)
		(void)munlock(s, map_len);
	(void)munmap(s, map_len);
}

uint8_t *
aam_secret_data(aam_secret *s)
{
	return (uint8_t *)(s + 1);
}

size_t
aam_secret_len(const aam_secret *s)
{
	return s->len;
}

int
aam_secret_set_len(aam_secret *s, size_t len)
{
	if (len > s->cap)
		return AAM_E_INVAL;
	if (len < s->len)
		aam_wipe(aam_secret_data(s) + len, s->len - len);
	s->len = len;
	return AAM_OK;
}

int
aam_ct_equal(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}
