#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "common/b64.h"
#include "common/buf.h"

/* RFC 4648 section 10 test vectors. */
static const struct {
	const char *plain, *std, *url;
} rfc_vectors[] = {
        {"", "", ""},
        {"f", "Zg==", "Zg"},
        {"fo", "Zm8=", "Zm8"},
        {"foo", "Zm9v", "Zm9v"},
        {"foob", "Zm9vYg==", "Zm9vYg"},
        {"fooba", "Zm9vYmE=", "Zm9vYmE"},
        {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};

#define NVEC (sizeof(rfc_vectors) / sizeof(rfc_vectors[0]))

/* Decodes a NUL-terminated string; returns the error code. */
static int
dec(const char *s, int url)
{
	uint8_t out[64];
	size_t n = 0;
	return aam_b64_decode(s, strlen(s), out, sizeof(out), &n, url);
}

static void
test_rfc4648_encode_std(void **state)
{
	(void)state;
	for (size_t i = 0; i < NVEC; i++) {
		char out[32];
		size_t n = 99;
		const char *p = rfc_vectors[i].plain;
		assert_int_equal(aam_b64_encode(p, strlen(p), out, sizeof(out), &n, AAM_B64_STD),
		                 AAM_OK);
		assert_string_equal(out, rfc_vectors[i].std);
		assert_int_equal(n, strlen(rfc_vectors[i].std));
		assert_int_equal(aam_b64_encoded_len(strlen(p), AAM_B64_STD), n);
	}
}

static void
test_rfc4648_encode_url(void **state)
{
	(void)state;
	for (size_t i = 0; i < NVEC; i++) {
		char out[32];
		size_t n = 99;
		const char *p = rfc_vectors[i].plain;
		assert_int_equal(aam_b64_encode(p, strlen(p), out, sizeof(out), &n, AAM_B64_URL),
		                 AAM_OK);
		assert_string_equal(out, rfc_vectors[i].url);
		assert_int_equal(n, strlen(rfc_vectors[i].url));
		assert_int_equal(aam_b64_encoded_len(strlen(p), AAM_B64_URL), n);
	}
}

static void
test_rfc4648_decode_both(void **state)
{
	(void)state;
	for (size_t i = 0; i < NVEC; i++) {
		const char *p = rfc_vectors[i].plain;
		uint8_t out[32];
		size_t n = 99;
		memset(out, 0xAA, sizeof(out));
		const char *s = rfc_vectors[i].std;
		assert_int_equal(aam_b64_decode(s, strlen(s), out, sizeof(out), &n, AAM_B64_STD),
		                 AAM_OK);
		assert_int_equal(n, strlen(p));
		assert_memory_equal(out, p, n);
		n = 99;
		s = rfc_vectors[i].url;
		assert_int_equal(aam_b64_decode(s, strlen(s), out, sizeof(out), &n, AAM_B64_URL),
		                 AAM_OK);
		assert_int_equal(n, strlen(p));
		assert_memory_equal(out, p, n);
	}
}

static void
test_alphabets_are_distinct(void **state)
{
	(void)state;
	const uint8_t raw[] = {0xfb, 0xff, 0xbf};
	char out[16];
	assert_int_equal(aam_b64_encode(raw, sizeof(raw), out, sizeof(out), NULL, AAM_B64_STD),
	                 AAM_OK);
	assert_string_equal(out, "+/+/");
	assert_int_equal(aam_b64_encode(raw, sizeof(raw), out, sizeof(out), NULL, AAM_B64_URL),
	                 AAM_OK);
	assert_string_equal(out, "-_-_");
	/* Each alphabet's specials are invalid in the other. */
	assert_int_equal(dec("+/+/", AAM_B64_URL), AAM_E_PARSE);
	assert_int_equal(dec("-_-_", AAM_B64_STD), AAM_E_PARSE);
	assert_int_equal(dec("AA+A", AAM_B64_URL), AAM_E_PARSE);
	assert_int_equal(dec("AA_A", AAM_B64_STD), AAM_E_PARSE);
	assert_int_equal(dec("+/+/", AAM_B64_STD), AAM_OK);
	assert_int_equal(dec("-_-_", AAM_B64_URL), AAM_OK);
	/* Every byte value survives both alphabets. */
	uint8_t all[256], back[256];
	for (int i = 0; i < 256; i++)
		all[i] = (uint8_t)i;
	char enc[400];
	for (int url = 0; url <= 1; url++) {
		size_t n = 0, m = 0;
		assert_int_equal(aam_b64_encode(all, sizeof(all), enc, sizeof(enc), &n, url),
		                 AAM_OK);
		assert_int_equal(aam_b64_decode(enc, n, back, sizeof(back), &m, url), AAM_OK);
		assert_int_equal(m, sizeof(all));
		assert_memory_equal(all, back, sizeof(all));
	}
}

static void
test_reject_whitespace_and_foreign_chars(void **state)
{
	(void)state;
	static const char *bad[] = {
	        "Zm9v\n",   " Zm9v", "Zm 9v",     "Zm9v\r\n",    "Zm\t9v",
	        "Zm9*",     "Zm9.",  "Zm9v YmFy", "Zm9\xc3\xa9", "Zm9v\x80\x80\x80\x80",
	        "Zm9v!!!!",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(dec(bad[i], AAM_B64_STD), AAM_E_PARSE);
		assert_int_equal(dec(bad[i], AAM_B64_URL), AAM_E_PARSE);
	}
	/* An embedded NUL is a character like any other: rejected. */
	uint8_t out[8];
	assert_int_equal(aam_b64_decode("Zm\0v", 4, out, sizeof(out), NULL, AAM_B64_STD),
	                 AAM_E_PARSE);
	assert_int_equal(aam_b64_decode("Zm9v\0\0\0\0", 8, out, sizeof(out), NULL, AAM_B64_URL),
	                 AAM_E_PARSE);
}

static void
test_std_padding_errors(void **state)
{
	(void)state;
	static const char *bad[] = {
	        "Zg",       /* missing padding */
	        "Zm8",      /* missing padding */
	        "Zg=",      /* short padding */
	        "Zg===",    /* too much padding */
	        "Z===",     /* three '=' can never be right */
	        "====",     /* padding only */
	        "Zg=a",     /* data after padding */
	        "Z=g=",     /* padding in the middle */
	        "=Zm9",     /* padding first */
	        "Zm9v=",    /* padding after a full quantum */
	        "Zg==Zm9v", /* padded quantum not last */
	        "Zm9v====", /* a quantum of padding */
	        "Zm9vY===", /* one data char in the last quantum */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(dec(bad[i], AAM_B64_STD), AAM_E_PARSE);
}

static void
test_url_rejects_padding(void **state)
{
	(void)state;
	static const char *bad[] = {
	        "Zg==", "Zm8=", "Zg=", "Zm9v=", "Zm9vYg==", "=", "==", "Zm9v===="};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(dec(bad[i], AAM_B64_URL), AAM_E_PARSE);
}

static void
test_impossible_lengths(void **state)
{
	(void)state;
	/* len % 4 == 1 carries 6 bits: never a whole byte. */
	assert_int_equal(dec("Z", AAM_B64_URL), AAM_E_PARSE);
	assert_int_equal(dec("Zm9vY", AAM_B64_URL), AAM_E_PARSE);
	assert_int_equal(dec("Zm9vYmFyZ", AAM_B64_URL), AAM_E_PARSE);
	assert_int_equal(dec("Z", AAM_B64_STD), AAM_E_PARSE);
	assert_int_equal(dec("Zm9vY", AAM_B64_STD), AAM_E_PARSE);
	/* Unpadded lengths that std base64 must refuse but base64url takes. */
	assert_int_equal(dec("Zm9vYg", AAM_B64_STD), AAM_E_PARSE);
	assert_int_equal(dec("Zm9vYg", AAM_B64_URL), AAM_OK);
	assert_int_equal(dec("Zm9vYmE", AAM_B64_URL), AAM_OK);
	/* The empty string is the encoding of nothing. */
	size_t n = 99;
	uint8_t out[1];
	assert_int_equal(aam_b64_decode("", 0, out, 0, &n, AAM_B64_STD), AAM_OK);
	assert_int_equal(n, 0);
	assert_int_equal(aam_b64_decode(NULL, 0, NULL, 0, &n, AAM_B64_URL), AAM_OK);
}

static void
test_noncanonical_trailing_bits(void **state)
{
	(void)state;
	uint8_t out[8];
	size_t n = 0;
	assert_int_equal(aam_b64_decode("QQ==", 4, out, sizeof(out), &n, AAM_B64_STD), AAM_OK);
	assert_int_equal(n, 1);
	assert_int_equal(out[0], 'A');
	assert_int_equal(dec("QR==", AAM_B64_STD), AAM_E_PARSE);
	assert_int_equal(dec("QX==", AAM_B64_STD), AAM_E_PARSE);
	assert_int_equal(dec("QUI=", AAM_B64_STD), AAM_OK);
	assert_int_equal(dec("QUJ=", AAM_B64_STD), AAM_E_PARSE);
	assert_int_equal(dec("QUL=", AAM_B64_STD), AAM_E_PARSE);
	assert_int_equal(dec("QQ", AAM_B64_URL), AAM_OK);
	assert_int_equal(dec("QR", AAM_B64_URL), AAM_E_PARSE);
	assert_int_equal(dec("QUI", AAM_B64_URL), AAM_OK);
	assert_int_equal(dec("QUJ", AAM_B64_URL), AAM_E_PARSE);
	assert_int_equal(dec("Zm9vQ_", AAM_B64_URL), AAM_E_PARSE);
}

/*
 * Canonical means one spelling per byte string: whenever a short string
 * over the alphabet plus '=' decodes, encoding the result gives it back.
 * This walks every string of length 2..4 over a small but complete set of
 * classes (low bits zero and not, padding, specials of both alphabets).
 */
static void
test_decode_implies_canonical(void **state)
{
	(void)state;
	static const char chars[] = "AQgw+/-_=Z9";
	const size_t k = sizeof(chars) - 1;
	unsigned accepted = 0;
	for (size_t len = 2; len <= 4; len++) {
		size_t total = 1;
		for (size_t i = 0; i < len; i++)
			total *= k;
		for (size_t x = 0; x < total; x++) {
			char s[5] = {0};
			size_t y = x;
			for (size_t i = 0; i < len; i++, y /= k)
				s[i] = chars[y % k];
			for (int url = 0; url <= 1; url++) {
				uint8_t out[4];
				size_t n = 0;
				if (aam_b64_decode(s, len, out, sizeof(out), &n, url) != AAM_OK)
					continue;
				accepted++;
				char enc[8];
				assert_int_equal(
				        aam_b64_encode(out, n, enc, sizeof(enc), NULL, url),
				        AAM_OK);
				assert_string_equal(enc, s);
			}
		}
	}
	/* Sanity: the loop really accepted some inputs. */
	assert_true(accepted > 100);
}

static void
test_capacity_limits(void **state)
{
	(void)state;
	uint8_t out[8];
	size_t n = 0;
	/* "foobar" needs 6 bytes. */
	assert_int_equal(aam_b64_decode("Zm9vYmFy", 8, out, 5, &n, AAM_B64_STD), AAM_E_TOOBIG);
	assert_int_equal(n, 6);
	assert_int_equal(aam_b64_decode("Zm9vYmFy", 8, out, 6, &n, AAM_B64_STD), AAM_OK);
	/* Malformed input is PARSE whatever the capacity. */
	assert_int_equal(aam_b64_decode("Zm9vYm*y", 8, out, 1, &n, AAM_B64_STD), AAM_E_PARSE);
	/* Encoding needs room for the NUL too. */
	char enc[9];
	assert_int_equal(aam_b64_encode("foobar", 6, enc, 8, &n, AAM_B64_STD), AAM_E_TOOBIG);
	assert_string_equal(enc, "");
	assert_int_equal(aam_b64_encode("foobar", 6, enc, 9, &n, AAM_B64_STD), AAM_OK);
	assert_string_equal(enc, "Zm9vYmFy");
	assert_int_equal(aam_b64_encode("f", 1, enc, 0, &n, AAM_B64_URL), AAM_E_TOOBIG);
}

static void
test_failed_decode_leaves_nothing(void **state)
{
	(void)state;
	uint8_t out[16];
	memset(out, 0xAA, sizeof(out));
	/* The first quantum is valid and decoded before the bad one is met. */
	assert_int_equal(aam_b64_decode("Zm9vYm*y", 8, out, sizeof(out), NULL, AAM_B64_STD),
	                 AAM_E_PARSE);
	for (size_t i = 0; i < 6; i++)
		assert_int_equal(out[i], 0);
	assert_int_equal(out[6], 0xAA);
}

static void
test_lengths(void **state)
{
	(void)state;
	assert_int_equal(aam_b64_encoded_len(0, AAM_B64_STD), 0);
	assert_int_equal(aam_b64_encoded_len(1, AAM_B64_STD), 4);
	assert_int_equal(aam_b64_encoded_len(1, AAM_B64_URL), 2);
	assert_int_equal(aam_b64_encoded_len(2, AAM_B64_URL), 3);
	assert_int_equal(aam_b64_encoded_len(32, AAM_B64_URL), 43); /* a SHA-256 digest */
	assert_int_equal(aam_b64_encoded_len(32, AAM_B64_STD), 44);
	assert_int_equal(aam_b64_encoded_len(SIZE_MAX, AAM_B64_STD), SIZE_MAX);
	assert_int_equal(aam_b64_encoded_len(SIZE_MAX / 4 * 3, AAM_B64_URL), SIZE_MAX / 4 * 4);
	for (size_t n = 0; n < 40; n++) {
		size_t e = aam_b64_encoded_len(n, AAM_B64_URL);
		assert_true(aam_b64_decoded_max(e) >= n);
		assert_true(aam_b64_decoded_max(aam_b64_encoded_len(n, AAM_B64_STD)) >= n);
	}
	assert_int_equal(aam_b64_decoded_max(43), 32);
	uint8_t x;
	assert_int_equal(aam_b64_encode(NULL, 3, (char *)&x, 1, NULL, 0), AAM_E_INVAL);
	assert_int_equal(aam_b64_decode(NULL, 3, &x, 1, NULL, 0), AAM_E_INVAL);
}

static void
test_buf_helpers(void **state)
{
	(void)state;
	struct aam_buf b;
	aam_buf_init(&b, 0);
	assert_int_equal(aam_buf_append_str(&b, "x="), AAM_OK);
	assert_int_equal(aam_b64_encode_buf(&b, "foob", 4, AAM_B64_URL), AAM_OK);
	assert_string_equal(aam_buf_cstr(&b), "x=Zm9vYg");
	assert_int_equal(aam_b64_encode_buf(&b, "f", 1, AAM_B64_STD), AAM_OK);
	assert_string_equal(aam_buf_cstr(&b), "x=Zm9vYgZg==");
	aam_buf_reset(&b);
	assert_int_equal(aam_b64_decode_buf(&b, "Zm9v", 4, AAM_B64_STD), AAM_OK);
	assert_int_equal(aam_b64_decode_buf(&b, "YmFy", 4, AAM_B64_URL), AAM_OK);
	assert_int_equal(b.len, 6);
	assert_string_equal(aam_buf_cstr(&b), "foobar");
	/* A parse failure changes nothing and does not poison the buffer. */
	assert_int_equal(aam_b64_decode_buf(&b, "QR==", 4, AAM_B64_STD), AAM_E_PARSE);
	assert_int_equal(b.len, 6);
	assert_false(aam_buf_failed(&b));
	assert_string_equal(aam_buf_cstr(&b), "foobar");
	aam_buf_uninit(&b);

	/* The buffer's hard maximum applies and is sticky. */
	aam_buf_init(&b, 4);
	assert_int_equal(aam_b64_encode_buf(&b, "fooba", 5, AAM_B64_STD), AAM_E_TOOBIG);
	assert_true(aam_buf_failed(&b));
	assert_int_equal(aam_b64_decode_buf(&b, "Zg==", 4, AAM_B64_STD), AAM_E_TOOBIG);
	aam_buf_uninit(&b);
	aam_buf_init(&b, 5);
	assert_int_equal(aam_b64_decode_buf(&b, "Zm9vYmFy", 8, AAM_B64_STD), AAM_E_TOOBIG);
	aam_buf_uninit(&b);
}

static void
test_random_round_trip(void **state)
{
	(void)state;
	srand(4648);
	uint8_t in[300], back[300];
	char enc[410];
	for (int iter = 0; iter < 2000; iter++) {
		size_t n = (size_t)rand() % sizeof(in);
		for (size_t i = 0; i < n; i++)
			in[i] = (uint8_t)rand();
		int url = iter & 1;
		size_t elen = 0, dlen = 0;
		assert_int_equal(aam_b64_encode(in, n, enc, sizeof(enc), &elen, url), AAM_OK);
		assert_int_equal(elen, aam_b64_encoded_len(n, url));
		assert_int_equal(aam_b64_decode(enc, elen, back, sizeof(back), &dlen, url), AAM_OK);
		assert_int_equal(dlen, n);
		assert_memory_equal(in, back, n);
		/* A padded encoding cut by one character is always malformed. */
		if (elen > 0 && !url)
			assert_int_equal(
			        aam_b64_decode(enc, elen - 1, back, sizeof(back), &dlen, url),
			        AAM_E_PARSE);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_rfc4648_encode_std),
	        cmocka_unit_test(test_rfc4648_encode_url),
	        cmocka_unit_test(test_rfc4648_decode_both),
	        cmocka_unit_test(test_alphabets_are_distinct),
	        cmocka_unit_test(test_reject_whitespace_and_foreign_chars),
	        cmocka_unit_test(test_std_padding_errors),
	        cmocka_unit_test(test_url_rejects_padding),
	        cmocka_unit_test(test_impossible_lengths),
	        cmocka_unit_test(test_noncanonical_trailing_bits),
	        cmocka_unit_test(test_decode_implies_canonical),
	        cmocka_unit_test(test_capacity_limits),
	        cmocka_unit_test(test_failed_decode_leaves_nothing),
	        cmocka_unit_test(test_lengths),
	        cmocka_unit_test(test_buf_helpers),
	        cmocka_unit_test(test_random_round_trip),
	};
	return cmocka_run_group_tests(tests, 0, 0);
}
