/*
 * Fuzz target for strict base64 and base64url.  Besides "no crash", it
 * checks the properties tokens and thumbprints rely on, in both
 * alphabets: any input that decodes re-encodes to exactly itself (one
 * spelling per byte string), the buffer variant agrees with the plain one,
 * and encoding the raw input then decoding it gives the input back.
 * Buffers are allocated at their exact size so ASan sees any overrun.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "common/b64.h"
#include "common/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_decode(const char *s, size_t n, int url)
{
	size_t max = aam_b64_decoded_max(n);
	uint8_t *out = malloc(max ? max : 1);
	if (out == NULL)
		return;
	size_t len = 0;
	int rc = aam_b64_decode(s, n, out, max, &len, url);
	if (rc != AAM_OK && rc != AAM_E_PARSE)
		abort();

	struct aam_buf b;
	aam_buf_init(&b, 0);
	int brc = aam_b64_decode_buf(&b, s, n, url);
	if (brc != rc)
		abort();
	if (rc == AAM_OK) {
		if (len > max || b.len != len || memcmp(b.data, out, len) != 0)
			abort();
		/* Canonical: the only accepted spelling is the encoder's. */
		size_t elen = aam_b64_encoded_len(len, url);
		char *enc = malloc(elen + 1);
		if (enc != NULL) {
			size_t got = 0;
			if (aam_b64_encode(out, len, enc, elen + 1, &got, url) != AAM_OK)
				abort();
			if (got != n || memcmp(enc, s, n) != 0)
				abort();
			free(enc);
		}
		/* One byte too little room is TOOBIG and reports the size. */
		if (len > 0) {
			size_t need = 0;
			if (aam_b64_decode(s, n, out, len - 1, &need, url) != AAM_E_TOOBIG ||
			    need != len)
				abort();
		}
	} else if (b.len != 0 || aam_buf_failed(&b)) {
		abort();
	}
	aam_buf_uninit(&b);
	free(out);
}

static void
check_round_trip(const uint8_t *data, size_t size, int url)
{
	size_t elen = aam_b64_encoded_len(size, url);
	char *enc = malloc(elen + 1);
	uint8_t *back = malloc(size ? size : 1);
	if (enc == NULL || back == NULL) {
		free(enc);
		free(back);
		return;
	}
	size_t got = 0, len = 0;
	if (aam_b64_encode(data, size, enc, elen + 1, &got, url) != AAM_OK || got != elen ||
	    enc[got] != '\0')
		abort();
	if (aam_b64_decode(enc, got, back, size, &len, url) != AAM_OK)
		abort();
	if (len != size || memcmp(back, data, size) != 0)
		abort();
	free(enc);
	free(back);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (int url = 0; url <= 1; url++) {
		check_decode((const char *)data, size, url);
		check_round_trip(data, size, url);
	}
	return 0;
}
