/*
 * Signed-note and checkpoint tests: sign/verify round trips with OpenSSL
 * P-256 keys, the key ID rule, vkey strings, unknown and wrong keys,
 * tampering, and malformed notes of every kind the parser must refuse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "aam/err.h"
#include "common/note.h"

#define ORIGIN "audit.example.com/aam"
#define CAP    (AAM_NOTE_MAX_LEN + 1)

struct keys {
	EVP_PKEY *a, *b;
};

static int
setup(void **state)
{
	struct keys *k = calloc(1, sizeof(*k));
	if (k == NULL)
		return -1;
	k->a = EVP_EC_gen("P-256");
	k->b = EVP_EC_gen("P-256");
	*state = k;
	return k->a != NULL && k->b != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	struct keys *k = *state;
	EVP_PKEY_free(k->a);
	EVP_PKEY_free(k->b);
	free(k);
	return 0;
}

static const uint8_t root_a[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                   17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

/* Signs a checkpoint of SIZE with PKEY under NAME into a malloc'd note. */
static char *
signed_checkpoint(EVP_PKEY *pkey, const char *name, uint64_t size, size_t *len)
{
	uint32_t id;
	assert_int_equal(aam_note_key_id(pkey, &id), AAM_OK);
	char *out = malloc(CAP);
	assert_non_null(out);
	assert_int_equal(aam_note_checkpoint_sign(ORIGIN, size, root_a, name, id,
	                                          aam_note_sign_with_pkey, pkey, out, CAP, len),
	                 AAM_OK);
	return out;
}

/* The signature line (with its newline) of a single-signature note. */
static const char *
sig_line(const char *note)
{
	const char *p = strstr(note, "\n\n");
	assert_non_null(p);
	return p + 2;
}

static int
verify_with(const char *note, size_t len, const struct aam_note_verifier *v, size_t nv)
{
	const char *why = NULL;
	int rc = aam_note_verify(note, len, v, nv, NULL, NULL, &why);
	if (rc != AAM_OK)
		assert_non_null(why); /* every refusal explains itself */
	return rc;
}

static void
test_round_trip(void **state)
{
	struct keys *k = *state;
	size_t len;
	char *note = signed_checkpoint(k->a, ORIGIN, 1000, &len);
	assert_int_equal(strlen(note), len);
	/* Text, blank line, one em-dash signature line. */
	const char *text = ORIGIN
	        "\n1000\nAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=\n\n\xe2\x80\x94 " ORIGIN " ";
	assert_memory_equal(note, text, strlen(text));
	assert_int_equal(note[len - 1], '\n');

	struct aam_note_verifier v;
	assert_int_equal(aam_note_verifier_init(&v, ORIGIN, k->a), AAM_OK);
	struct aam_note_checkpoint cp;
	const char *why = NULL;
	assert_int_equal(aam_note_checkpoint_open(note, len, &v, 1, &cp, &why), AAM_OK);
	assert_string_equal(cp.origin, ORIGIN);
	assert_int_equal(cp.size, 1000);
	assert_memory_equal(cp.root, root_a, 32);
	assert_int_equal(cp.ext_count, 0);

	size_t tlen;
	const struct aam_note_verifier *by = NULL;
	assert_int_equal(aam_note_verify(note, len, &v, 1, &tlen, &by, NULL), AAM_OK);
	assert_ptr_equal(by, &v);
	assert_int_equal(tlen, strlen(ORIGIN "\n1000\n") + 45);
	aam_note_verifier_uninit(&v);
	free(note);
}

static void
test_key_id_is_spki_hash(void **state)
{
	struct keys *k = *state;
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(k->a, &der);
	assert_true(n > 0);
	uint8_t h[32];
	SHA256(der, (size_t)n, h);
	OPENSSL_free(der);
	uint32_t want = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
	uint32_t id;
	assert_int_equal(aam_note_key_id(k->a, &id), AAM_OK);
	assert_int_equal(id, want);

	/* The signature line carries the ID in its first four bytes. */
	size_t len;
	char *note = signed_checkpoint(k->a, ORIGIN, 5, &len);
	const char *b64 = strchr(sig_line(note) + 4, ' ') + 1;
	uint8_t blob[128];
	size_t blen;
	assert_int_equal(aam_note_b64_decode(b64, strlen(b64) - 1, blob, sizeof(blob), &blen),
	                 AAM_OK);
	assert_true(blen > 4 + 8);
	assert_memory_equal(blob, h, 4);
	free(note);

	/* Only P-256 keys: P-384 and Ed25519 are refused. */
	EVP_PKEY *p384 = EVP_EC_gen("P-384");
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_non_null(p384);
	assert_non_null(ed);
	assert_int_equal(aam_note_key_id(p384, &id), AAM_E_UNSUPPORTED);
	assert_int_equal(aam_note_key_id(ed, &id), AAM_E_UNSUPPORTED);
	struct aam_note_verifier v;
	assert_int_equal(aam_note_verifier_init(&v, ORIGIN, p384), AAM_E_UNSUPPORTED);
	uint8_t sig[AAM_NOTE_ECDSA_SIG_MAX];
	size_t slen = sizeof(sig);
	assert_int_equal(aam_note_sign_with_pkey(p384, h, sig, &slen), AAM_E_UNSUPPORTED);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(ed);
}

static void
test_vkey_round_trip(void **state)
{
	struct keys *k = *state;
	char vkey[AAM_NOTE_VKEY_MAX];
	size_t vlen;
	assert_int_equal(aam_note_vkey_format(ORIGIN, k->a, vkey, sizeof(vkey), &vlen), AAM_OK);
	uint32_t id;
	assert_int_equal(aam_note_key_id(k->a, &id), AAM_OK);
	char prefix[64];
	snprintf(prefix, sizeof(prefix), ORIGIN "+%08x+", id);
	assert_memory_equal(vkey, prefix, strlen(prefix));
	/* base64(0x02 || SPKI): an ECDSA P-256 SPKI starts 0x30 0x59, so "AjBZ". */
	assert_memory_equal(vkey + strlen(prefix), "AjBZ", 4);

	struct aam_note_verifier v;
	const char *why = NULL;
	assert_int_equal(aam_note_verifier_from_vkey(&v, vkey, vlen, &why), AAM_OK);
	assert_string_equal(v.name, ORIGIN);
	assert_int_equal(v.key_id, id);
	assert_int_equal(EVP_PKEY_eq(v.pkey, k->a), 1);
	size_t len;
	char *note = signed_checkpoint(k->a, ORIGIN, 7, &len);
	assert_int_equal(verify_with(note, len, &v, 1), AAM_OK);
	free(note);
	aam_note_verifier_uninit(&v);

	/* Hostile vkeys: each is refused with a reason. */
	char bad[AAM_NOTE_VKEY_MAX + 64];
	const size_t idpos = strlen(ORIGIN) + 1;
	memcpy(bad, vkey, vlen + 1);
	bad[idpos] = bad[idpos] == '0' ? '1' : '0'; /* wrong key ID */
	assert_int_not_equal(aam_note_verifier_from_vkey(&v, bad, vlen, &why), AAM_OK);
	assert_non_null(strstr(why, "ID"));

	memcpy(bad, vkey, vlen + 1);
	for (size_t i = idpos; i < idpos + 8; i++)
		if (bad[i] >= 'a' && bad[i] <= 'f')
			bad[i] = (char)(bad[i] - 'a' + 'A');
	if (strcmp(bad, vkey) != 0) /* upper-case hex is a second spelling */
		assert_int_equal(aam_note_verifier_from_vkey(&v, bad, vlen, &why), AAM_E_PARSE);

	memcpy(bad, vkey, vlen + 1);
	bad[idpos + 9] = 'B'; /* the type byte is no longer 0x02: not ECDSA */
	assert_int_not_equal(aam_note_verifier_from_vkey(&v, bad, vlen, &why), AAM_OK);

	memcpy(bad, vkey, vlen + 1);
	bad[vlen - 3] = '!';
	assert_int_equal(aam_note_verifier_from_vkey(&v, bad, vlen, &why), AAM_E_PARSE);

	snprintf(bad, sizeof(bad), "%sAAAA", vkey); /* trailing bytes after the SPKI */
	assert_int_not_equal(aam_note_verifier_from_vkey(&v, bad, strlen(bad), &why), AAM_OK);

	snprintf(bad, sizeof(bad), "bad name%s", vkey + strlen(ORIGIN));
	assert_int_equal(aam_note_verifier_from_vkey(&v, bad, strlen(bad), &why), AAM_E_PARSE);
	assert_int_equal(
	        aam_note_verifier_from_vkey(&v, vkey + strlen(ORIGIN), vlen - strlen(ORIGIN), &why),
	        AAM_E_PARSE);
	assert_int_equal(aam_note_verifier_from_vkey(&v, vkey, idpos + 8, &why), AAM_E_PARSE);
	memset(bad, 'a', sizeof(bad));
	assert_int_equal(aam_note_verifier_from_vkey(&v, bad, sizeof(bad), &why), AAM_E_TOOBIG);
	assert_null(v.pkey);
}

static void
test_pem_verifier(void **state)
{
	struct keys *k = *state;
	BIO *bio = BIO_new(BIO_s_mem());
	assert_non_null(bio);
	assert_int_equal(PEM_write_bio_PUBKEY(bio, k->a), 1);
	char *pem;
	long plen = BIO_get_mem_data(bio, &pem);
	struct aam_note_verifier v;
	assert_int_equal(aam_note_verifier_from_pem(&v, ORIGIN, pem, (size_t)plen), AAM_OK);
	size_t len;
	char *note = signed_checkpoint(k->a, ORIGIN, 9, &len);
	assert_int_equal(verify_with(note, len, &v, 1), AAM_OK);
	aam_note_verifier_uninit(&v);
	assert_int_equal(aam_note_verifier_from_pem(&v, ORIGIN, "garbage", 7), AAM_E_PARSE);
	assert_int_equal(aam_note_verifier_from_pem(&v, "bad+name", pem, (size_t)plen),
	                 AAM_E_INVAL);
	BIO_free(bio);
	free(note);
}

static void
test_unknown_key_ignored_wrong_key_rejected(void **state)
{
	struct keys *k = *state;
	size_t alen, blen;
	char *na = signed_checkpoint(k->a, ORIGIN, 42, &alen);
	char *nb = signed_checkpoint(k->b, "witness.example", 42, &blen);
	/* One note with both signature lines: A's, then the witness's. */
	char *both = malloc(CAP);
	assert_non_null(both);
	int n = snprintf(both, CAP, "%s%s", na, sig_line(nb));
	assert_true(n > 0);
	size_t len = (size_t)n;

	struct aam_note_verifier va, vb, vc;
	assert_int_equal(aam_note_verifier_init(&va, ORIGIN, k->a), AAM_OK);
	assert_int_equal(aam_note_verifier_init(&vb, "witness.example", k->b), AAM_OK);
	/* Same name as A, but B's key: name matches, key ID does not. */
	assert_int_equal(aam_note_verifier_init(&vc, ORIGIN, k->b), AAM_OK);

	assert_int_equal(verify_with(both, len, &va, 1), AAM_OK); /* witness line ignored */
	assert_int_equal(verify_with(both, len, &vb, 1), AAM_OK); /* A's line ignored */
	struct aam_note_verifier two[2] = {va, vb};
	assert_int_equal(verify_with(both, len, two, 2), AAM_OK);
	assert_int_equal(verify_with(na, alen, &vc, 1), AAM_E_NOTFOUND);
	assert_int_equal(verify_with(na, alen, NULL, 0), AAM_E_NOTFOUND);

	/*
	 * A verifier whose name and ID match but whose key differs sees a
	 * signature that does not verify: that is a bad signature, not an
	 * unknown key.
	 */
	struct aam_note_verifier forged = vc;
	forged.key_id = va.key_id;
	assert_int_equal(verify_with(na, alen, &forged, 1), AAM_E_CRYPTO);
	/* And one bad known signature spoils the note even beside a good one. */
	struct aam_note_verifier mixed[2] = {va, vb};
	mixed[1].pkey = k->a;
	assert_int_equal(verify_with(both, len, mixed, 2), AAM_E_CRYPTO);

	aam_note_verifier_uninit(&va);
	aam_note_verifier_uninit(&vb);
	aam_note_verifier_uninit(&vc);
	free(both);
	free(na);
	free(nb);
}

static void
test_tampered_text_rejected(void **state)
{
	struct keys *k = *state;
	struct aam_note_verifier v;
	assert_int_equal(aam_note_verifier_init(&v, ORIGIN, k->a), AAM_OK);
	size_t len;
	char *note = signed_checkpoint(k->a, ORIGIN, 1000, &len);
	size_t tlen = (size_t)(strstr(note, "\n\n") - note) + 1;
	/* Changing any byte of the text breaks the signature (or the syntax). */
	for (size_t i = 0; i < tlen - 1; i++) {
		char saved = note[i];
		note[i] = note[i] == 'A' ? 'B' : (note[i] == '\n' ? 'x' : 'A');
		assert_int_not_equal(verify_with(note, len, &v, 1), AAM_OK);
		note[i] = saved;
	}
	note[strlen(ORIGIN) + 1] = '2'; /* "2000" */
	assert_int_equal(verify_with(note, len, &v, 1), AAM_E_CRYPTO);
	aam_note_verifier_uninit(&v);
	free(note);
}

static void
test_duplicate_signature_refused(void **state)
{
	struct keys *k = *state;
	struct aam_note_verifier v;
	assert_int_equal(aam_note_verifier_init(&v, ORIGIN, k->a), AAM_OK);
	size_t len;
	char *note = signed_checkpoint(k->a, ORIGIN, 3, &len);
	char *dup = malloc(CAP);
	assert_non_null(dup);
	int n = snprintf(dup, CAP, "%s%s", note, sig_line(note));
	assert_int_equal(verify_with(dup, (size_t)n, &v, 1), AAM_E_PARSE);
	aam_note_verifier_uninit(&v);
	free(dup);
	free(note);
}

/* Replaces the first occurrence of FROM in NOTE by TO into a new buffer. */
static char *
replace(const char *note, const char *from, const char *to, size_t *len)
{
	const char *p = strstr(note, from);
	assert_non_null(p);
	char *out = malloc(CAP * 2);
	assert_non_null(out);
	int n = snprintf(out, CAP * 2, "%.*s%s%s", (int)(p - note), note, to, p + strlen(from));
	*len = (size_t)n;
	return out;
}

static void
test_malformed_notes(void **state)
{
	struct keys *k = *state;
	struct aam_note_verifier v;
	assert_int_equal(aam_note_verifier_init(&v, ORIGIN, k->a), AAM_OK);
	size_t len;
	char *note = signed_checkpoint(k->a, ORIGIN, 77, &len);
	const struct {
		const char *from, *to;
		int want;
	} cases[] = {
	        {"\n\n", "\n", AAM_E_PARSE},                     /* no blank line */
	        {"\n77\n", "\n7\t7\n", AAM_E_PARSE},             /* tab is a control char */
	        {"\n77\n", "\n7\r\n", AAM_E_PARSE},              /* carriage return */
	        {"\n77\n", "\n7\x7f\n", AAM_E_PARSE},            /* DEL */
	        {"\n77\n", "\n7\xc3\n", AAM_E_PARSE},            /* truncated UTF-8 */
	        {"\n77\n", "\n7\xc0\xb7\n", AAM_E_PARSE},        /* overlong UTF-8 */
	        {"\n77\n", "\n7\xed\xa0\x80\n", AAM_E_PARSE},    /* surrogate */
	        {"\xe2\x80\x94 ", "\xe2\x80\x93 ", AAM_E_PARSE}, /* en dash */
	        {"\xe2\x80\x94 ", "-- ", AAM_E_PARSE},           /* ASCII dashes */
	        {"\xe2\x80\x94 ", "\xe2\x80\x94", AAM_E_PARSE},  /* no space after the dash */
	        {ORIGIN " ", ORIGIN "+x ", AAM_E_PARSE},         /* '+' in key name */
	        {ORIGIN " ", ORIGIN "\xc2\xa0x ", AAM_E_PARSE},  /* no-break space in name */
	        {ORIGIN " ", ORIGIN, AAM_E_PARSE},               /* no space before base64 */
	        {"\n\n\xe2\x80\x94 " ORIGIN " ", "\n\n\xe2\x80\x94  ",
	         AAM_E_PARSE}, /* empty name */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t blen;
		char *bad = replace(note, cases[i].from, cases[i].to, &blen);
		int rc = verify_with(bad, blen, &v, 1);
		if (rc != cases[i].want)
			fail_msg("case %zu: got %d want %d", i, rc, cases[i].want);
		free(bad);
	}

	/* The signature block must end in a newline and be non-empty. */
	assert_int_equal(verify_with(note, len - 1, &v, 1), AAM_E_PARSE);
	size_t tlen = (size_t)(strstr(note, "\n\n") - note) + 2;
	assert_int_equal(verify_with(note, tlen, &v, 1), AAM_E_PARSE);
	assert_int_equal(verify_with("", 0, &v, 1), AAM_E_PARSE);
	assert_int_equal(verify_with("\n\n\xe2\x80\x94 a AAAAAAA=\n", 20, &v, 1), AAM_E_PARSE);

	/* Bad base64: wrong alphabet, missing padding, non-zero trailing bits, too short. */
	const char *sigline = sig_line(note);
	const char *b64 = strchr(sigline + 4, ' ') + 1;
	char mod[CAP];
	const char *bad_b64[] = {
	        "AAAA!AAA", "AAAAAAA", "AAAAAAB=", "AAAAAA==", "AAAAAQ==", "====", "AAAA"};
	for (size_t i = 0; i < sizeof(bad_b64) / sizeof(bad_b64[0]); i++) {
		int n = snprintf(mod, sizeof(mod), "%.*s%s\n", (int)(b64 - note), note, bad_b64[i]);
		int rc = verify_with(mod, (size_t)n, &v, 1);
		if (rc != AAM_E_PARSE)
			fail_msg("base64 %s: got %d", bad_b64[i], rc);
	}

	/* Seventeen signature lines is over the limit, even if all are unknown. */
	size_t o = (size_t)(b64 - note) - strlen(ORIGIN) - 5;
	memcpy(mod, note, o);
	for (int i = 0; i < AAM_NOTE_MAX_SIGS + 1; i++)
		o += (size_t)snprintf(mod + o, sizeof(mod) - o, "\xe2\x80\x94 k%d AAAAAAAA\n", i);
	assert_int_equal(verify_with(mod, o, &v, 1), AAM_E_TOOBIG);
	/* Sixteen unknown ones are fine syntax, but no known key signed. */
	o = (size_t)(b64 - note) - strlen(ORIGIN) - 5;
	for (int i = 0; i < AAM_NOTE_MAX_SIGS; i++)
		o += (size_t)snprintf(mod + o, sizeof(mod) - o, "\xe2\x80\x94 k%d AAAAAAAA\n", i);
	assert_int_equal(verify_with(mod, o, &v, 1), AAM_E_NOTFOUND);

	/* Over 16 KiB is refused before parsing. */
	char *big = malloc(AAM_NOTE_MAX_LEN + 2);
	assert_non_null(big);
	memset(big, 'a', AAM_NOTE_MAX_LEN + 1);
	assert_int_equal(verify_with(big, AAM_NOTE_MAX_LEN + 1, &v, 1), AAM_E_TOOBIG);
	free(big);
	/* An over-long signature blob. */
	o = (size_t)(b64 - note);
	memcpy(mod, note, o);
	for (int i = 0; i < 700; i++)
		mod[o++] = 'A';
	mod[o++] = '\n';
	assert_int_equal(verify_with(mod, o, &v, 1), AAM_E_TOOBIG);

	aam_note_verifier_uninit(&v);
	free(note);
}

static void
test_checkpoint_parse(void **state)
{
	(void)state;
	struct aam_note_checkpoint cp;
	const char *why;
	const char *root = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
	char t[512];
#define PARSE(fmt, ...)                                                                            \
	(snprintf(t, sizeof(t), fmt, __VA_ARGS__),                                                 \
	 aam_note_checkpoint_parse(t, strlen(t), &cp, &why))

	assert_int_equal(PARSE("o\n0\n%s\n", root), AAM_OK);
	assert_int_equal(cp.size, 0);
	assert_int_equal(PARSE("o\n18446744073709551615\n%s\n", root), AAM_OK);
	assert_true(cp.size == UINT64_MAX);
	assert_int_equal(PARSE("o\n5\n%s\next one\next two\n", root), AAM_OK);
	assert_int_equal(cp.ext_count, 2);
	assert_memory_equal(cp.root, root_a, 32);

	assert_int_equal(PARSE("o\n18446744073709551616\n%s\n", root), AAM_E_PARSE);
	assert_int_equal(PARSE("o\n007\n%s\n", root), AAM_E_PARSE);
	assert_int_equal(PARSE("o\n-1\n%s\n", root), AAM_E_PARSE);
	assert_int_equal(PARSE("o\n+1\n%s\n", root), AAM_E_PARSE);
	assert_int_equal(PARSE("o\n\n%s\n", root), AAM_E_PARSE);
	assert_int_equal(PARSE("\n1\n%s\n", root), AAM_E_PARSE);
	assert_int_equal(PARSE("o\n1\n%s\n", "AQID"), AAM_E_PARSE);
	assert_int_equal(PARSE("o\n1\n%s=\n", root), AAM_E_PARSE);
	assert_int_equal(PARSE("o\n1\n%s", root), AAM_E_PARSE);
	assert_int_equal(PARSE("o\n1\n%s\n\next\n", root), AAM_E_PARSE);
	assert_int_equal(PARSE("o\n1\n%s", ""), AAM_E_PARSE);
	assert_non_null(why);

	/* Formatting refuses what parsing would refuse. */
	char out[512];
	assert_int_equal(aam_note_checkpoint_format("", 1, root_a, NULL, out, sizeof(out), NULL),
	                 AAM_E_INVAL);
	assert_int_equal(
	        aam_note_checkpoint_format("a\nb", 1, root_a, NULL, out, sizeof(out), NULL),
	        AAM_E_INVAL);
	assert_int_equal(
	        aam_note_checkpoint_format("o", 1, root_a, "x\n\ny\n", out, sizeof(out), NULL),
	        AAM_E_INVAL);
	size_t olen;
	assert_int_equal(aam_note_checkpoint_format("o", 3, root_a, "x\n", out, sizeof(out), &olen),
	                 AAM_OK);
	assert_int_equal(aam_note_checkpoint_parse(out, olen, &cp, &why), AAM_OK);
	assert_int_equal(cp.ext_count, 1);
	assert_int_equal(aam_note_checkpoint_format("o", 3, root_a, NULL, out, 10, NULL),
	                 AAM_E_TOOBIG);
#undef PARSE
}

static int
bad_signer(void *ctx, const uint8_t digest[32], uint8_t *der_sig, size_t *der_len)
{
	(void)digest;
	int mode = *(int *)ctx;
	if (mode == 0)
		return AAM_E_HSM;
	/* mode 1: raw r||s instead of DER; mode 2: DER with trailing garbage. */
	memset(der_sig, 0x11, 64);
	*der_len = 64;
	if (mode == 2) {
		static const uint8_t der[] = {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00};
		memcpy(der_sig, der, sizeof(der));
		*der_len = sizeof(der);
	}
	return AAM_OK;
}

static void
test_signer_misbehaviour(void **state)
{
	(void)state;
	char out[1024];
	for (int mode = 0; mode < 3; mode++) {
		int rc = aam_note_checkpoint_sign(ORIGIN, 1, root_a, ORIGIN, 1, bad_signer, &mode,
		                                  out, sizeof(out), NULL);
		assert_int_equal(rc, mode == 0 ? AAM_E_HSM : AAM_E_CRYPTO);
	}
	/* Invalid text or name is refused before signing. */
	int mode = 0;
	assert_int_equal(aam_note_sign("no newline", 10, ORIGIN, 1, bad_signer, &mode, out,
	                               sizeof(out), NULL),
	                 AAM_E_INVAL);
	assert_int_equal(
	        aam_note_sign("a\n", 2, "sp ace", 1, bad_signer, &mode, out, sizeof(out), NULL),
	        AAM_E_INVAL);
}

static void
test_base64_strict(void **state)
{
	(void)state;
	uint8_t in[40], dec[40];
	char enc[64];
	for (size_t n = 0; n <= sizeof(in); n++) {
		for (size_t i = 0; i < n; i++)
			in[i] = (uint8_t)(i * 37 + n);
		size_t elen, dlen;
		assert_int_equal(aam_note_b64_encode(in, n, enc, sizeof(enc), &elen), AAM_OK);
		assert_int_equal(elen, (n + 2) / 3 * 4);
		assert_int_equal(aam_note_b64_decode(enc, elen, dec, sizeof(dec), &dlen), AAM_OK);
		assert_int_equal(dlen, n);
		assert_memory_equal(dec, in, n);
	}
	size_t dlen;
	assert_int_equal(aam_note_b64_encode(in, 3, enc, 4, NULL), AAM_E_TOOBIG);
	assert_int_equal(aam_note_b64_decode("Zm9v", 4, dec, 2, &dlen), AAM_E_TOOBIG);
	const char *bad[] = {
	        "Zg", "Zg=", "Zh==", "Zm9=", "Z===", "Zm9v=", "Zm=v", "Zm9v\n", "Zm-_"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (aam_note_b64_decode(bad[i], strlen(bad[i]), dec, sizeof(dec), &dlen) == AAM_OK)
			fail_msg("accepted %s", bad[i]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_round_trip),
	        cmocka_unit_test(test_key_id_is_spki_hash),
	        cmocka_unit_test(test_vkey_round_trip),
	        cmocka_unit_test(test_pem_verifier),
	        cmocka_unit_test(test_unknown_key_ignored_wrong_key_rejected),
	        cmocka_unit_test(test_tampered_text_rejected),
	        cmocka_unit_test(test_duplicate_signature_refused),
	        cmocka_unit_test(test_malformed_notes),
	        cmocka_unit_test(test_checkpoint_parse),
	        cmocka_unit_test(test_signer_misbehaviour),
	        cmocka_unit_test(test_base64_strict),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
