/*
 * Protected memory for secrets.  Each secret gets its own anonymous mapping
 * so it can be locked and excluded from core dumps independently of the
 * heap.  A secret is short-lived (one outbound request), but mapping,
 * locking, unlocking and unmapping pages for every request was measured at
 * 15 % of aam-vault's CPU under load (munmap shoots down TLB entries on
 * every CPU), so freed small mappings are wiped and kept, still locked and
 * still excluded from dumps, for the next secret of the same size.
 */
#include "common/secret.h"
#include "aam/err.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdbool.h>
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

/*
 * Spare mappings kept per size (1..SPARE_PAGES pages, which covers the
 * largest secret, AAM_SECRET_MAX plus the header, on 4 KiB pages), all
 * wiped; at most SPARE_MAX of a size and SPARE_BYTES in all, so the spares
 * stay well inside RLIMIT_MEMLOCK.  The vault's scrubber takes a 32 KiB
 * work buffer per INJECT: before the large sizes were kept it cost five
 * system calls and a TLB shootdown per request.
 */
#define SPARE_PAGES 17
#define SPARE_MAX   64
#define SPARE_BYTES (4u * 1024 * 1024)

static pthread_mutex_t spare_mu = PTHREAD_MUTEX_INITIALIZER;
static struct aam_secret *spare[SPARE_PAGES][SPARE_MAX];
static size_t nspare[SPARE_PAGES];
static size_t spare_bytes;

static size_t
page_size(void)
{
	long page = sysconf(_SC_PAGESIZE);
	return page > 0 ? (size_t)page : 4096;
}

/* A wiped spare mapping of MAP_LEN bytes, or NULL. */
static struct aam_secret *
spare_take(size_t map_len)
{
	size_t pages = map_len / page_size();
	if (pages == 0 || pages > SPARE_PAGES)
		return NULL;
	struct aam_secret *s = NULL;
	pthread_mutex_lock(&spare_mu);
	if (nspare[pages - 1] > 0) {
		s = spare[pages - 1][--nspare[pages - 1]];
		spare_bytes -= map_len;
	}
	pthread_mutex_unlock(&spare_mu);
	return s;
}

/* Keeps the wiped, locked mapping S for reuse; false when there is no room. */
static bool
spare_keep(struct aam_secret *s, size_t map_len)
{
	size_t pages = map_len / page_size();
	if (pages == 0 || pages > SPARE_PAGES)
		return false;
	bool kept = false;
	pthread_mutex_lock(&spare_mu);
	if (nspare[pages - 1] < SPARE_MAX && spare_bytes + map_len <= SPARE_BYTES) {
		spare[pages - 1][nspare[pages - 1]++] = s;
		spare_bytes += map_len;
		kept = true;
	}
	pthread_mutex_unlock(&spare_mu);
	return kept;
}

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
	size_t page = page_size();
	size_t need = sizeof(struct aam_secret) + (len ? len : 1);
	size_t map_len = (need + page - 1) & ~(page - 1);
	struct aam_secret *reused = spare_take(map_len);
	if (reused != NULL) {
		/* Wiped when it was freed; the header is all that needs writing. */
		reused->len = len;
		reused->cap = map_len - sizeof(*reused);
		reused->map_len = map_len;
		reused->locked = 1;
		return reused;
	}
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
	/* Only locked mappings are kept: a spare must be as protected as a new one. */
	if (locked && spare_keep(s, map_len))
		return;
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
