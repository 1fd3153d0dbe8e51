/*
 * Strict base64 and base64url.  See b64.h for what "strict" means and why.
 */
#include "common/b64.h"
#include "common/secret.h"
#include "aam/err.h"

#include <string.h>

static const char b64_std_alphabet[64] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url_alphabet[64] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/*
 * The 6-bit value of C in the chosen alphabet, or -1.  Ranges rather than
 * a 256-entry table keep the two alphabets visibly distinct: '+' and '/'
 * are only valid in base64, '-' and '_' only in base64url.
 */
static int
b64_value(unsigned char c, int url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (url) {
		if (c == '-')
			return 62;
		if (c == '_')
			return 63;
	} else {
		if (c == '+')
			return 62;
		if (c == '/')
			return 63;
	}
	return -1;
}

size_t
aam_b64_encoded_len(size_t n, int url)
{
	size_t groups = n / 3, rem = n % 3;
	if (groups > SIZE_MAX / 4)
		return SIZE_MAX;
	size_t len = groups * 4;
	if (rem != 0) {
		size_t tail = url ? rem + 1 : 4;
		if (len > SIZE_MAX - tail)
			return SIZE_MAX;
		len += tail;
	}
	return len;
}

size_t
aam_b64_decoded_max(size_t n)
{
	return n / 4 * 3 + (n % 4 > 1 ? n % 4 - 1 : 0);
}

int
aam_b64_encode(const void *in, size_t n, char *out, size_t outcap, size_t *outlen, int url)
{
	if ((in == NULL && n > 0) || out == NULL)
		return AAM_E_INVAL;
	size_t need = aam_b64_encoded_len(n, url);
	if (need == SIZE_MAX || outcap < need + 1) {
		if (outcap > 0)
			out[0] = '\0';
		return AAM_E_TOOBIG;
	}
	const char *alpha = url ? b64_url_alphabet : b64_std_alphabet;
	const uint8_t *p = in;
	size_t o = 0, i = 0;
	for (; n - i >= 3; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		out[o++] = alpha[v >> 18 & 63];
		out[o++] = alpha[v >> 12 & 63];
		out[o++] = alpha[v >> 6 & 63];
		out[o++] = alpha[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;
		out[o++] = alpha[v >> 18 & 63];
		out[o++] = alpha[v >> 12 & 63];
		if (!url) {
			out[o++] = '=';
			out[o++] = '=';
		}
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		out[o++] = alpha[v >> 18 & 63];
		out[o++] = alpha[v >> 12 & 63];
		out[o++] = alpha[v >> 6 & 63];
		if (!url)
			out[o++] = '=';
	}
	out[o] = '\0';
	if (outlen != NULL)
		*outlen = o;
	return AAM_OK;
}

/*
 * Works out how many characters carry data and how many bytes they decode
 * to, from the length and the padding alone.  Characters are checked later.
 */
static int
b64_shape(const char *in, size_t n, int url, size_t *datalen, size_t *declen)
{
	size_t pad = 0;
	if (url) {
		/* Unpadded: a lone final character would carry only 6 bits. */
		if (n % 4 == 1)
			return AAM_E_PARSE;
	} else {
		if (n % 4 != 0)
			return AAM_E_PARSE;
		if (n > 0 && in[n - 1] == '=')
			pad++;
		if (n > 1 && in[n - 2] == '=')
			pad++;
	}
	size_t data = n - pad;
	size_t rem = data % 4;
	/* "A===" and "====" fall here: at most two '=' are ever legitimate. */
	if (rem == 1)
		return AAM_E_PARSE;
	*datalen = data;
	*declen = data / 4 * 3 + (rem ? rem - 1 : 0);
	return AAM_OK;
}

/*
 * Checks every data character and, when OUT is non-NULL, writes the
 * decoded bytes.  A '=' among the data characters is rejected here because
 * it is not in either alphabet.
 */
static int
b64_decode_core(const char *in, size_t data, uint8_t *out, int url)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t o = 0, i = 0;
	for (; data - i >= 4; i += 4) {
		int a = b64_value(s[i], url), b = b64_value(s[i + 1], url);
		int c = b64_value(s[i + 2], url), d = b64_value(s[i + 3], url);
		if ((a | b | c | d) < 0)
			return AAM_E_PARSE;
		uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
		if (out != NULL) {
			out[o] = (uint8_t)(v >> 16);
			out[o + 1] = (uint8_t)(v >> 8);
			out[o + 2] = (uint8_t)v;
		}
		o += 3;
	}
	size_t rem = data - i;
	if (rem == 0)
		return AAM_OK;
	int a = b64_value(s[i], url), b = b64_value(s[i + 1], url);
	int c = rem == 3 ? b64_value(s[i + 2], url) : 0;
	if ((a | b | c) < 0)
		return AAM_E_PARSE;
	/*
	 * Bits of the last character that fall past the final byte must be
	 * zero (RFC 4648 section 3.5); otherwise "QR==" would decode to the
	 * same "A" as "QQ==" and the encoding would not be canonical.
	 */
	if (rem == 2 && (b & 0x0f) != 0)
		return AAM_E_PARSE;
	if (rem == 3 && (c & 0x03) != 0)
		return AAM_E_PARSE;
	uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6;
	if (out != NULL) {
		out[o] = (uint8_t)(v >> 16);
		if (rem == 3)
			out[o + 1] = (uint8_t)(v >> 8);
	}
	return AAM_OK;
}

int
aam_b64_decode(const char *in, size_t n, uint8_t *out, size_t outcap, size_t *outlen, int url)
{
	if ((in == NULL && n > 0) || (out == NULL && outcap > 0))
		return AAM_E_INVAL;
	size_t data, declen;
	int rc = b64_shape(in, n, url, &data, &declen);
	if (rc != AAM_OK)
		return rc;
	int fits = declen <= outcap;
	rc = b64_decode_core(in, data, fits ? out : NULL, url);
	if (rc != AAM_OK) {
		/* The input may be key material: leave no half-decoded copy. */
		if (fits && declen > 0)
			aam_wipe(out, declen);
		return rc;
	}
	if (outlen != NULL)
		*outlen = declen;
	return fits ? AAM_OK : AAM_E_TOOBIG;
}

int
aam_b64_encode_buf(struct aam_buf *b, const void *in, size_t n, int url)
{
	if (in == NULL && n > 0)
		return AAM_E_INVAL;
	size_t need = aam_b64_encoded_len(n, url);
	int rc = aam_buf_reserve(b, need);
	if (rc != AAM_OK)
		return rc;
	size_t got = 0;
	/* aam_buf_reserve leaves room for the NUL past NEED. */
	rc = aam_b64_encode(in, n, (char *)b->data + b->len, need + 1, &got, url);
	if (rc != AAM_OK)
		return rc;
	b->len += got;
	return AAM_OK;
}

int
aam_b64_decode_buf(struct aam_buf *b, const char *in, size_t n, int url)
{
	if (in == NULL && n > 0)
		return AAM_E_INVAL;
	if (b->err)
		return b->err;
	size_t data, declen;
	int rc = b64_shape(in, n, url, &data, &declen);
	if (rc != AAM_OK)
		return rc;
	/* Validate first so a malformed input never touches the buffer. */
	rc = b64_decode_core(in, data, NULL, url);
	if (rc != AAM_OK)
		return rc;
	rc = aam_buf_reserve(b, declen);
	if (rc != AAM_OK)
		return rc;
	rc = b64_decode_core(in, data, b->data + b->len, url);
	if (rc != AAM_OK)
		return AAM_E_INTERNAL;
	b->len += declen;
	b->data[b->len] = 0;
	return AAM_OK;
}
