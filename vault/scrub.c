/*
 * Streaming multi-pattern redaction (see scrub.h).
 *
 * Memory: the patterns sit back to back in one protected arena, and the
 * held-back tail lives at the front of one protected work buffer that each
 * chunk is appended to, so a request costs two protected allocations
 * however many patterns and chunks it has.
 */
#include "vault/scrub.h"
#include "aam/err.h"
#include "common/b64.h"
#include "common/secret.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define WORK_MIN 32768u

struct vault_scrub {
	aam_secret *arena; /* the patterns, back to back */
	size_t used;
	size_t off[VAULT_SCRUB_MAX_PATTERNS], len[VAULT_SCRUB_MAX_PATTERNS];
	size_t npat;
	size_t maxlen;
	aam_secret *work; /* held tail at [0, nheld), then the chunk being scanned */
	size_t nheld;
	size_t count;
};

int
vault_scrub_new(struct vault_scrub **out)
{
	*out = calloc(1, sizeof(**out));
	return *out == NULL ? AAM_E_NOMEM : AAM_OK;
}

void
vault_scrub_free(struct vault_scrub *s)
{
	if (s == NULL)
		return;
	aam_secret_free(s->arena);
	aam_secret_free(s->work);
	free(s);
}

static const uint8_t *
pat(struct vault_scrub *s, size_t i)
{
	return aam_secret_data(s->arena) + s->off[i];
}

/* Makes room for N more pattern bytes in the arena. */
static int
arena_reserve(struct vault_scrub *s, size_t n)
{
	size_t cap = s->arena != NULL ? aam_secret_len(s->arena) : 0;
	if (s->used + n <= cap)
		return AAM_OK;
	size_t want = s->used + n;
	size_t ncap = cap > 0 ? cap : 4096;
	while (ncap < want)
		ncap *= 2;
	if (ncap > AAM_SECRET_MAX)
		ncap = want;
	if (ncap > AAM_SECRET_MAX)
		return AAM_E_TOOBIG;
	aam_secret *a = aam_secret_new(ncap);
	if (a == NULL)
		return AAM_E_NOMEM;
	if (s->arena != NULL) {
		memcpy(aam_secret_data(a), aam_secret_data(s->arena), s->used);
		aam_secret_free(s->arena);
	}
	s->arena = a;
	return AAM_OK;
}

/* Registers the pattern just written at the arena's end, unless it is a duplicate. */
static int
commit(struct vault_scrub *s, size_t len)
{
	if (len == 0)
		return AAM_OK;
	const uint8_t *p = aam_secret_data(s->arena) + s->used;
	for (size_t i = 0; i < s->npat; i++) {
		if (s->len[i] == len && memcmp(pat(s, i), p, len) == 0) {
			aam_wipe(aam_secret_data(s->arena) + s->used, len);
			return AAM_OK;
		}
	}
	if (s->npat >= VAULT_SCRUB_MAX_PATTERNS) {
		aam_wipe(aam_secret_data(s->arena) + s->used, len);
		return AAM_E_TOOBIG;
	}
	/* The work buffer must always hold a pattern's proper prefix plus new bytes. */
	if (len + 1024 > AAM_SECRET_MAX) {
		aam_wipe(aam_secret_data(s->arena) + s->used, len);
		return AAM_E_TOOBIG;
	}
	s->off[s->npat] = s->used;
	s->len[s->npat] = len;
	s->npat++;
	s->used += len;
	if (len > s->maxlen)
		s->maxlen = len;
	return AAM_OK;
}

int
vault_scrub_add(struct vault_scrub *s, const void *pattern, size_t len)
{
	if (s == NULL || (len > 0 && pattern == NULL))
		return AAM_E_INVAL;
	if (len == 0)
		return AAM_OK;
	int rc = arena_reserve(s, len);
	if (rc != AAM_OK)
		return rc;
	memcpy(aam_secret_data(s->arena) + s->used, pattern, len);
	return commit(s, len);
}

int
vault_scrub_add_b64(struct vault_scrub *s, const void *data, size_t len)
{
	if (s == NULL || (len > 0 && data == NULL))
		return AAM_E_INVAL;
	if (len == 0)
		return AAM_OK;
	size_t el = aam_b64_encoded_len(len, AAM_B64_STD);
	if (el == SIZE_MAX)
		return AAM_E_TOOBIG;
	int rc = arena_reserve(s, el + 1);
	if (rc != AAM_OK)
		return rc;
	rc = aam_b64_encode(data, len, (char *)aam_secret_data(s->arena) + s->used, el + 1, NULL,
	                    AAM_B64_STD);
	if (rc != AAM_OK)
		return rc;
	aam_secret_data(s->arena)[s->used + el] = 0;
	return commit(s, el);
}

/* The earliest match in P[0..N) (longest on a tie); N and *MLEN 0 if none. */
static size_t
find_match(struct vault_scrub *s, const uint8_t *p, size_t n, size_t *mlen)
{
	size_t best = n;
	*mlen = 0;
	for (size_t i = 0; i < s->npat; i++) {
		size_t plen = s->len[i];
		if (plen > n)
			continue;
		/* Only a match starting at or before BEST can win. */
		size_t window = best < n && best + plen < n ? best + plen : n;
		const uint8_t *hit = memmem(p, window, pat(s, i), plen);
		if (hit == NULL)
			continue;
		size_t at = (size_t)(hit - p);
		if (at < best || (at == best && plen > *mlen)) {
			best = at;
			*mlen = plen;
		}
	}
	return best;
}

/* Length of the longest suffix of P[0..N) that is a proper prefix of a pattern. */
static size_t
partial_tail(struct vault_scrub *s, const uint8_t *p, size_t n)
{
	size_t maxk = s->maxlen > 0 ? s->maxlen - 1 : 0;
	if (maxk > n)
		maxk = n;
	for (size_t k = maxk; k > 0; k--) {
		const uint8_t *tail = p + n - k;
		for (size_t i = 0; i < s->npat; i++) {
			const uint8_t *pd = pat(s, i);
			if (s->len[i] > k && pd[0] == tail[0] && memcmp(pd, tail, k) == 0)
				return k;
		}
	}
	return 0;
}

/*
 * Scrubs P[0..N) into OUT.  With HOLD, the partial-match tail is not
 * written: its length is returned through *KEPT.
 */
static int
scrub_run(struct vault_scrub *s, const uint8_t *p, size_t n, bool hold, struct aam_buf *out,
          size_t *kept)
{
	size_t pos = 0;
	*kept = 0;
	while (pos < n) {
		size_t mlen;
		size_t at = find_match(s, p + pos, n - pos, &mlen);
		if (mlen == 0)
			break;
		aam_buf_append(out, p + pos, at);
		aam_buf_append_str(out, VAULT_SCRUB_REPLACEMENT);
		s->count++;
		pos += at + mlen;
	}
	size_t k = hold ? partial_tail(s, p + pos, n - pos) : 0;
	aam_buf_append(out, p + pos, n - pos - k);
	*kept = k;
	return out->err;
}

int
vault_scrub_push(struct vault_scrub *s, const uint8_t *p, size_t n, struct aam_buf *out)
{
	if (s == NULL || out == NULL || (n > 0 && p == NULL))
		return AAM_E_INVAL;
	if (s->npat == 0)
		return aam_buf_append(out, p, n);
	size_t want = s->maxlen + WORK_MIN;
	if (want > AAM_SECRET_MAX)
		want = AAM_SECRET_MAX;
	if (s->work == NULL || aam_secret_len(s->work) < want) {
		aam_secret *w = aam_secret_new(want);
		if (w == NULL)
			return AAM_E_NOMEM;
		if (s->work != NULL) {
			memcpy(aam_secret_data(w), aam_secret_data(s->work), s->nheld);
			aam_secret_free(s->work);
		}
		s->work = w;
	}
	uint8_t *w = aam_secret_data(s->work);
	size_t cap = aam_secret_len(s->work);
	/* In slices, so held + slice always fits (the held tail is < maxlen < cap). */
	while (n > 0) {
		size_t k = n < cap - s->nheld ? n : cap - s->nheld;
		memcpy(w + s->nheld, p, k);
		size_t total = s->nheld + k, kept;
		int rc = scrub_run(s, w, total, true, out, &kept);
		if (rc != AAM_OK)
			return rc;
		memmove(w, w + total - kept, kept);
		aam_wipe(w + kept, total - kept);
		s->nheld = kept;
		p += k;
		n -= k;
	}
	return AAM_OK;
}

int
vault_scrub_finish(struct vault_scrub *s, struct aam_buf *out)
{
	if (s == NULL || out == NULL)
		return AAM_E_INVAL;
	if (s->nheld == 0)
		return AAM_OK;
	int rc = aam_buf_append(out, aam_secret_data(s->work), s->nheld);
	aam_wipe(aam_secret_data(s->work), s->nheld);
	s->nheld = 0;
	return rc;
}

int
vault_scrub_once(struct vault_scrub *s, const uint8_t *p, size_t n, struct aam_buf *out)
{
	if (s == NULL || out == NULL || (n > 0 && p == NULL))
		return AAM_E_INVAL;
	size_t kept;
	return scrub_run(s, p, n, false, out, &kept);
}

size_t
vault_scrub_count(const struct vault_scrub *s)
{
	return s != NULL ? s->count : 0;
}
