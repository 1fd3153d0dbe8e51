/*
 * C2SP signed-note and tlog-checkpoint with ECDSA P-256 (type 0x02).
 * See note.h for the formats.
 *
 * Depends only on libc, libcrypto and aam/err.h: aam-audit-verify builds
 * this file into a binary that links nothing else, which is also why the
 * note's base64 lives here rather than in common/b64.
 */
#include "common/note.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "aam/err.h"

/* U+2014 EM DASH followed by a space: the start of every signature line. */
static const char sig_prefix[] = "\xe2\x80\x94 ";
#define SIG_PREFIX_LEN (sizeof(sig_prefix) - 1)
/* More verifiers than this is a caller mistake, not a real key set. */
#define MAX_VERIFIERS 64

static void
set_why(const char **why, const char *msg)
{
	if (why != NULL)
		*why = msg;
}

/* --- UTF-8 and text rules ---------------------------------------------- */

/* Length of the well-formed UTF-8 scalar at P (N bytes left), 0 if ill-formed. */
static size_t
utf8_next(const uint8_t *p, size_t n, uint32_t *cp)
{
	if (n == 0)
		return 0;
	uint8_t c = p[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	size_t len;
	uint8_t lo = 0x80, hi = 0xbf;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		*cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		*cp = c & 0x0f;
		if (c == 0xe0)
			lo = 0xa0; /* no overlong forms */
		else if (c == 0xed)
			hi = 0x9f; /* no surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		*cp = c & 0x07;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f; /* nothing above U+10FFFF */
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		uint8_t b = p[i];
		if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xbf))
			return 0;
		*cp = (*cp << 6) | (b & 0x3f);
	}
	return len;
}

/* Valid UTF-8 without ASCII control characters other than '\n'. */
static bool
text_chars_valid(const char *s, size_t n)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t i = 0;
	while (i < n) {
		uint32_t cp;
		size_t k = utf8_next(p + i, n - i, &cp);
		if (k == 0 || (cp < 0x20 && cp != '\n') || cp == 0x7f)
			return false;
		i += k;
	}
	return true;
}

/* Unicode White_Space outside ASCII (what Go's unicode.IsSpace accepts). */
static bool
is_unicode_space(uint32_t cp)
{
	return cp == 0x85 || cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) ||
	       cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

int
aam_note_name_valid(const char *name, size_t len)
{
	if (name == NULL || len == 0 || len > AAM_NOTE_NAME_MAX)
		return 0;
	const uint8_t *p = (const uint8_t *)name;
	size_t i = 0;
	while (i < len) {
		uint32_t cp;
		size_t k = utf8_next(p + i, len - i, &cp);
		if (k == 0 || cp <= 0x20 || cp == 0x7f || cp == '+' || is_unicode_space(cp))
			return 0;
		i += k;
	}
	return 1;
}

/* --- base64 ------------------------------------------------------------ */

static const char b64_alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int
aam_note_b64_encode(const uint8_t *in, size_t len, char *out, size_t cap, size_t *out_len)
{
	if ((in == NULL && len > 0) || out == NULL || len > (SIZE_MAX / 4) * 3 - 3)
		return AAM_E_INVAL;
	size_t need = (len + 2) / 3 * 4;
	if (cap < need + 1)
		return AAM_E_TOOBIG;
	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[o++] = b64_alphabet[(v >> 18) & 63];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? b64_alphabet[v & 63] : '=';
	}
	out[o] = '\0';
	if (out_len != NULL)
		*out_len = o;
	return AAM_OK;
}

static int
b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
aam_note_b64_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
	if ((in == NULL && len > 0) || (out == NULL && cap > 0))
		return AAM_E_INVAL;
	if (len % 4 != 0)
		return AAM_E_PARSE;
	size_t pad = 0;
	if (len >= 4 && in[len - 1] == '=')
		pad = in[len - 2] == '=' ? 2 : 1;
	size_t n = len / 4 * 3 - pad;
	if (n > cap)
		return AAM_E_TOOBIG;
	size_t o = 0;
	for (size_t i = 0; i < len; i += 4) {
		bool last = i + 4 == len;
		int v[4];
		for (size_t j = 0; j < 4; j++) {
			bool is_pad = last && j >= 4 - pad;
			v[j] = is_pad ? 0 : b64_value(in[i + j]);
			if (v[j] < 0)
				return AAM_E_PARSE;
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
		             (uint32_t)v[3];
		/* Bits the padding hides must be zero, or the value has two spellings. */
		if (last && ((pad == 1 && (w & 0xff) != 0) || (pad == 2 && (w & 0xffff) != 0)))
			return AAM_E_PARSE;
		out[o++] = (uint8_t)(w >> 16);
		if (!(last && pad == 2))
			out[o++] = (uint8_t)(w >> 8);
		if (!(last && pad >= 1))
			out[o++] = (uint8_t)w;
	}
	if (out_len != NULL)
		*out_len = o;
	return AAM_OK;
}

/* --- keys -------------------------------------------------------------- */

static int
check_p256(EVP_PKEY *pkey)
{
	char group[64];
	size_t glen = 0;
	if (pkey == NULL)
		return AAM_E_INVAL;
	if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC ||
	    EVP_PKEY_get_group_name(pkey, group, sizeof(group), &glen) != 1 ||
	    strcmp(group, "prime256v1") != 0) {
		ERR_clear_error();
		return AAM_E_UNSUPPORTED;
	}
	return AAM_OK;
}

/* DER SubjectPublicKeyInfo of PKEY; the caller frees *DER with OPENSSL_free. */
static int
spki_der(EVP_PKEY *pkey, uint8_t **der, size_t *len)
{
	*der = NULL;
	int n = i2d_PUBKEY(pkey, der);
	if (n <= 0) {
		ERR_clear_error();
		return AAM_E_CRYPTO;
	}
	*len = (size_t)n;
	return AAM_OK;
}

static uint32_t
key_id_of(const uint8_t *der, size_t len)
{
	uint8_t h[SHA256_DIGEST_LENGTH];
	SHA256(der, len, h);
	return (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
}

int
aam_note_key_id(EVP_PKEY *pkey, uint32_t *id)
{
	if (id == NULL)
		return AAM_E_INVAL;
	int rc = check_p256(pkey);
	if (rc != AAM_OK)
		return rc;
	uint8_t *der;
	size_t len;
	rc = spki_der(pkey, &der, &len);
	if (rc != AAM_OK)
		return rc;
	*id = key_id_of(der, len);
	OPENSSL_free(der);
	return AAM_OK;
}

int
aam_note_verifier_init(struct aam_note_verifier *v, const char *name, EVP_PKEY *pkey)
{
	if (v == NULL || name == NULL)
		return AAM_E_INVAL;
	memset(v, 0, sizeof(*v));
	size_t nlen = strnlen(name, AAM_NOTE_NAME_MAX + 1);
	if (!aam_note_name_valid(name, nlen))
		return AAM_E_INVAL;
	uint32_t id;
	int rc = aam_note_key_id(pkey, &id);
	if (rc != AAM_OK)
		return rc;
	if (EVP_PKEY_up_ref(pkey) != 1)
		return AAM_E_CRYPTO;
	memcpy(v->name, name, nlen);
	v->name[nlen] = '\0';
	v->key_id = id;
	v->pkey = pkey;
	return AAM_OK;
}

int
aam_note_verifier_from_pem(struct aam_note_verifier *v, const char *name, const char *pem,
                           size_t len)
{
	if (v == NULL || pem == NULL || len == 0 || len > 64 * 1024)
		return AAM_E_INVAL;
	memset(v, 0, sizeof(*v));
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	if (bio == NULL)
		return AAM_E_NOMEM;
	EVP_PKEY *pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (pkey == NULL) {
		ERR_clear_error();
		return AAM_E_PARSE;
	}
	int rc = aam_note_verifier_init(v, name, pkey);
	EVP_PKEY_free(pkey);
	return rc;
}

void
aam_note_verifier_uninit(struct aam_note_verifier *v)
{
	if (v == NULL)
		return;
	EVP_PKEY_free(v->pkey);
	memset(v, 0, sizeof(*v));
}

int
aam_note_vkey_format(const char *name, EVP_PKEY *pkey, char *out, size_t cap, size_t *out_len)
{
	if (name == NULL || out == NULL ||
	    !aam_note_name_valid(name, strnlen(name, AAM_NOTE_NAME_MAX + 1)))
		return AAM_E_INVAL;
	int rc = check_p256(pkey);
	if (rc != AAM_OK)
		return rc;
	uint8_t *der;
	size_t dlen;
	rc = spki_der(pkey, &der, &dlen);
	if (rc != AAM_OK)
		return rc;
	uint8_t blob[256];
	char b64[400];
	if (dlen + 1 > sizeof(blob)) {
		OPENSSL_free(der);
		return AAM_E_TOOBIG;
	}
	blob[0] = AAM_NOTE_ALG_ECDSA;
	memcpy(blob + 1, der, dlen);
	uint32_t id = key_id_of(der, dlen);
	OPENSSL_free(der);
	rc = aam_note_b64_encode(blob, dlen + 1, b64, sizeof(b64), NULL);
	if (rc != AAM_OK)
		return rc;
	int n = snprintf(out, cap, "%s+%08" PRIx32 "+%s", name, id, b64);
	if (n < 0 || (size_t)n >= cap)
		return AAM_E_TOOBIG;
	if (out_len != NULL)
		*out_len = (size_t)n;
	return AAM_OK;
}

static int
hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1; /* upper case is refused: one spelling per key */
}

int
aam_note_verifier_from_vkey(struct aam_note_verifier *v, const char *vkey, size_t len,
                            const char **why)
{
	if (v == NULL || vkey == NULL)
		return AAM_E_INVAL;
	memset(v, 0, sizeof(*v));
	if (len > AAM_NOTE_VKEY_MAX) {
		set_why(why, "verifier key string is too long");
		return AAM_E_TOOBIG;
	}
	const char *plus = memchr(vkey, '+', len);
	if (plus == NULL || plus == vkey) {
		set_why(why, "verifier key string has no key name");
		return AAM_E_PARSE;
	}
	size_t nlen = (size_t)(plus - vkey);
	if (!aam_note_name_valid(vkey, nlen)) {
		set_why(why, "verifier key name is not a valid key name");
		return AAM_E_PARSE;
	}
	const char *hex = plus + 1;
	size_t rest = len - nlen - 1;
	if (rest < 10 || hex[8] != '+') {
		set_why(why, "verifier key string needs <name>+<8 hex digits>+<base64>");
		return AAM_E_PARSE;
	}
	uint32_t want_id = 0;
	for (size_t i = 0; i < 8; i++) {
		int d = hex_nibble(hex[i]);
		if (d < 0) {
			set_why(why, "verifier key ID is not 8 lowercase hex digits");
			return AAM_E_PARSE;
		}
		want_id = want_id << 4 | (uint32_t)d;
	}
	uint8_t blob[AAM_NOTE_VKEY_MAX];
	size_t blen;
	if (aam_note_b64_decode(hex + 9, rest - 9, blob, sizeof(blob), &blen) != AAM_OK ||
	    blen < 2) {
		set_why(why, "verifier key material is not valid base64");
		return AAM_E_PARSE;
	}
	if (blob[0] != AAM_NOTE_ALG_ECDSA) {
		set_why(why, "verifier key is not an ECDSA (type 0x02) key");
		return AAM_E_UNSUPPORTED;
	}
	const unsigned char *p = blob + 1;
	EVP_PKEY *pkey = d2i_PUBKEY(NULL, &p, (long)(blen - 1));
	if (pkey == NULL || p != blob + blen) {
		ERR_clear_error();
		EVP_PKEY_free(pkey);
		set_why(why, "verifier key is not a DER SubjectPublicKeyInfo");
		return AAM_E_PARSE;
	}
	/* Re-encoding must give the same bytes, so the key ID has one input. */
	uint8_t *der = NULL;
	size_t dlen = 0;
	int rc = check_p256(pkey);
	if (rc == AAM_OK)
		rc = spki_der(pkey, &der, &dlen);
	if (rc == AAM_OK && (dlen != blen - 1 || memcmp(der, blob + 1, dlen) != 0))
		rc = AAM_E_PARSE;
	if (rc == AAM_OK && key_id_of(der, dlen) != want_id) {
		set_why(why, "verifier key ID does not match the key");
		rc = AAM_E_PARSE;
	} else if (rc == AAM_E_UNSUPPORTED) {
		set_why(why, "verifier key is not a P-256 key");
	} else if (rc != AAM_OK) {
		set_why(why, "verifier key is not in canonical DER form");
	}
	OPENSSL_free(der);
	if (rc == AAM_OK) {
		char name[AAM_NOTE_NAME_MAX + 1];
		memcpy(name, vkey, nlen);
		name[nlen] = '\0';
		rc = aam_note_verifier_init(v, name, pkey);
	}
	EVP_PKEY_free(pkey);
	return rc;
}

/* --- signing ----------------------------------------------------------- */

int
aam_note_sign_with_pkey(void *ctx, const uint8_t digest[32], uint8_t *der_sig, size_t *der_len)
{
	EVP_PKEY *pkey = ctx;
	if (digest == NULL || der_sig == NULL || der_len == NULL)
		return AAM_E_INVAL;
	int rc = check_p256(pkey);
	if (rc != AAM_OK)
		return rc;
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(pkey, NULL);
	if (pc == NULL)
		return AAM_E_NOMEM;
	size_t len = *der_len;
	bool ok = EVP_PKEY_sign_init(pc) == 1 &&
	          EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) == 1 &&
	          EVP_PKEY_sign(pc, der_sig, &len, digest, 32) == 1;
	EVP_PKEY_CTX_free(pc);
	if (!ok) {
		ERR_clear_error();
		return AAM_E_CRYPTO;
	}
	*der_len = len;
	return AAM_OK;
}

/* Whether SIG is exactly one strict-DER ECDSA-Sig-Value. */
static bool
ecdsa_der_strict(const uint8_t *sig, size_t len)
{
	const unsigned char *p = sig;
	ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)len);
	bool ok = s != NULL && p == sig + len;
	if (ok) {
		unsigned char *re = NULL;
		int n = i2d_ECDSA_SIG(s, &re);
		ok = n > 0 && (size_t)n == len && memcmp(re, sig, len) == 0;
		OPENSSL_free(re);
	}
	ECDSA_SIG_free(s);
	ERR_clear_error();
	return ok;
}

static bool
text_valid(const char *text, size_t len)
{
	return len > 0 && len < AAM_NOTE_MAX_LEN && text[len - 1] == '\n' &&
	       text_chars_valid(text, len);
}

int
aam_note_sign(const char *text, size_t text_len, const char *key_name, uint32_t key_id,
              aam_note_sign_fn sign, void *ctx, char *out, size_t cap, size_t *out_len)
{
	if (text == NULL || key_name == NULL || sign == NULL || out == NULL)
		return AAM_E_INVAL;
	size_t nlen = strnlen(key_name, AAM_NOTE_NAME_MAX + 1);
	if (!aam_note_name_valid(key_name, nlen) || !text_valid(text, text_len))
		return AAM_E_INVAL;

	uint8_t digest[SHA256_DIGEST_LENGTH];
	if (SHA256((const uint8_t *)text, text_len, digest) == NULL)
		return AAM_E_CRYPTO;
	uint8_t blob[4 + AAM_NOTE_ECDSA_SIG_MAX];
	size_t slen = AAM_NOTE_ECDSA_SIG_MAX;
	int rc = sign(ctx, digest, blob + 4, &slen);
	if (rc != AAM_OK)
		return rc;
	/* The signer is an HSM adapter; never publish what it got wrong. */
	if (slen == 0 || slen > AAM_NOTE_ECDSA_SIG_MAX || !ecdsa_der_strict(blob + 4, slen))
		return AAM_E_CRYPTO;
	blob[0] = (uint8_t)(key_id >> 24);
	blob[1] = (uint8_t)(key_id >> 16);
	blob[2] = (uint8_t)(key_id >> 8);
	blob[3] = (uint8_t)key_id;
	char b64[(sizeof(blob) + 2) / 3 * 4 + 1];
	size_t blen;
	rc = aam_note_b64_encode(blob, 4 + slen, b64, sizeof(b64), &blen);
	if (rc != AAM_OK)
		return rc;

	size_t total = text_len + 1 + SIG_PREFIX_LEN + nlen + 1 + blen + 1;
	if (total > AAM_NOTE_MAX_LEN)
		return AAM_E_TOOBIG;
	if (cap < total + 1)
		return AAM_E_TOOBIG;
	size_t o = 0;
	memcpy(out + o, text, text_len);
	o += text_len;
	out[o++] = '\n';
	memcpy(out + o, sig_prefix, SIG_PREFIX_LEN);
	o += SIG_PREFIX_LEN;
	memcpy(out + o, key_name, nlen);
	o += nlen;
	out[o++] = ' ';
	memcpy(out + o, b64, blen);
	o += blen;
	out[o++] = '\n';
	out[o] = '\0';
	if (out_len != NULL)
		*out_len = o;
	return AAM_OK;
}

/* --- verification ------------------------------------------------------ */

static int
ecdsa_verify(EVP_PKEY *pkey, const uint8_t *sig, size_t slen, const char *text, size_t tlen)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (md == NULL)
		return AAM_E_NOMEM;
	bool ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1 &&
	          EVP_DigestVerify(md, sig, slen, (const uint8_t *)text, tlen) == 1;
	EVP_MD_CTX_free(md);
	ERR_clear_error();
	return ok ? AAM_OK : AAM_E_CRYPTO;
}

int
aam_note_verify(const char *msg, size_t len, const struct aam_note_verifier *v, size_t nv,
                size_t *text_len, const struct aam_note_verifier **by, const char **why)
{
	if (msg == NULL || (v == NULL && nv > 0) || nv > MAX_VERIFIERS)
		return AAM_E_INVAL;
	if (len > AAM_NOTE_MAX_LEN) {
		set_why(why, "note is larger than 16 KiB");
		return AAM_E_TOOBIG;
	}
	if (!text_chars_valid(msg, len)) {
		set_why(why, "note is not UTF-8 text without control characters");
		return AAM_E_PARSE;
	}
	/* The signature block starts after the last blank line. */
	size_t split = len;
	for (size_t i = len; i >= 2; i--) {
		if (msg[i - 1] == '\n' && msg[i - 2] == '\n') {
			split = i - 2;
			break;
		}
	}
	if (split == len || split == 0) {
		set_why(why, "note has no text followed by a blank line and signatures");
		return AAM_E_PARSE;
	}
	size_t tlen = split + 1;
	const char *sigs = msg + split + 2;
	size_t slen = len - split - 2;
	if (slen == 0 || sigs[slen - 1] != '\n') {
		set_why(why, "note has no signature lines ending in a newline");
		return AAM_E_PARSE;
	}

	bool seen[MAX_VERIFIERS] = {false};
	const struct aam_note_verifier *signer = NULL;
	bool bad = false;
	size_t nsig = 0;
	for (size_t off = 0; off < slen;) {
		const char *line = sigs + off;
		const char *nl = memchr(line, '\n', slen - off);
		size_t llen = (size_t)(nl - line);
		off += llen + 1;
		if (++nsig > AAM_NOTE_MAX_SIGS) {
			set_why(why, "note has more than 16 signatures");
			return AAM_E_TOOBIG;
		}
		if (llen < SIG_PREFIX_LEN || memcmp(line, sig_prefix, SIG_PREFIX_LEN) != 0) {
			set_why(why, "signature line does not start with an em dash and a space");
			return AAM_E_PARSE;
		}
		const char *name = line + SIG_PREFIX_LEN;
		const char *sp = memchr(name, ' ', llen - SIG_PREFIX_LEN);
		if (sp == NULL) {
			set_why(why, "signature line has no space after the key name");
			return AAM_E_PARSE;
		}
		size_t nlen = (size_t)(sp - name);
		if (!aam_note_name_valid(name, nlen)) {
			set_why(why, "signature line has an invalid key name");
			return AAM_E_PARSE;
		}
		const char *b64 = sp + 1;
		size_t b64len = (size_t)(line + llen - b64);
		uint8_t blob[AAM_NOTE_SIG_MAX];
		size_t blen = 0;
		int rc = aam_note_b64_decode(b64, b64len, blob, sizeof(blob), &blen);
		if (rc == AAM_E_TOOBIG) {
			set_why(why, "signature is longer than 512 bytes");
			return AAM_E_TOOBIG;
		}
		if (rc != AAM_OK || blen < 5) {
			set_why(why, "signature is not base64 of a key ID and a signature");
			return AAM_E_PARSE;
		}
		uint32_t id = (uint32_t)blob[0] << 24 | (uint32_t)blob[1] << 16 |
		              (uint32_t)blob[2] << 8 | blob[3];
		for (size_t k = 0; k < nv; k++) {
			if (v[k].key_id != id || strlen(v[k].name) != nlen ||
			    memcmp(v[k].name, name, nlen) != 0)
				continue;
			if (seen[k]) {
				set_why(why, "note has two signatures by one key");
				return AAM_E_PARSE;
			}
			seen[k] = true;
			rc = ecdsa_verify(v[k].pkey, blob + 4, blen - 4, msg, tlen);
			if (rc == AAM_E_NOMEM)
				return rc;
			if (rc != AAM_OK)
				bad = true;
			else if (signer == NULL)
				signer = &v[k];
		}
	}
	if (bad) {
		set_why(why, "a signature by a known key does not verify");
		return AAM_E_CRYPTO;
	}
	if (signer == NULL) {
		set_why(why, "no signature by a known key");
		return AAM_E_NOTFOUND;
	}
	if (text_len != NULL)
		*text_len = tlen;
	if (by != NULL)
		*by = signer;
	return AAM_OK;
}

/* --- checkpoints ------------------------------------------------------- */

static bool
origin_valid(const char *origin, size_t len)
{
	return len > 0 && len <= AAM_NOTE_ORIGIN_MAX && memchr(origin, '\n', len) == NULL &&
	       text_chars_valid(origin, len);
}

int
aam_note_checkpoint_format(const char *origin, uint64_t size, const uint8_t root[32],
                           const char *ext, char *out, size_t cap, size_t *out_len)
{
	if (origin == NULL || root == NULL || out == NULL)
		return AAM_E_INVAL;
	size_t olen = strnlen(origin, AAM_NOTE_ORIGIN_MAX + 1);
	if (!origin_valid(origin, olen))
		return AAM_E_INVAL;
	size_t elen = ext != NULL ? strnlen(ext, AAM_NOTE_MAX_LEN) : 0;
	if (elen > 0) {
		/* Extension lines: non-empty, each ending in '\n'. */
		if (ext[elen - 1] != '\n' || ext[0] == '\n' || strstr(ext, "\n\n") != NULL ||
		    !text_chars_valid(ext, elen))
			return AAM_E_INVAL;
	}
	char b64[45];
	int rc = aam_note_b64_encode(root, 32, b64, sizeof(b64), NULL);
	if (rc != AAM_OK)
		return rc;
	int n = snprintf(out, cap, "%s\n%" PRIu64 "\n%s\n%s", origin, size, b64,
	                 elen > 0 ? ext : "");
	if (n < 0 || (size_t)n >= cap || (size_t)n >= AAM_NOTE_MAX_LEN)
		return AAM_E_TOOBIG;
	if (out_len != NULL)
		*out_len = (size_t)n;
	return AAM_OK;
}

int
aam_note_checkpoint_parse(const char *text, size_t len, struct aam_note_checkpoint *cp,
                          const char **why)
{
	if (text == NULL || cp == NULL)
		return AAM_E_INVAL;
	memset(cp, 0, sizeof(*cp));
	if (len > AAM_NOTE_MAX_LEN) {
		set_why(why, "checkpoint is larger than 16 KiB");
		return AAM_E_TOOBIG;
	}
	if (len == 0 || text[len - 1] != '\n' || !text_chars_valid(text, len)) {
		set_why(why, "checkpoint is not UTF-8 text lines ending in a newline");
		return AAM_E_PARSE;
	}
	const char *line[3];
	size_t llen[3];
	size_t off = 0;
	for (int i = 0; i < 3; i++) {
		if (off >= len) {
			set_why(why, "checkpoint needs origin, size and root lines");
			return AAM_E_PARSE;
		}
		line[i] = text + off;
		const char *nl = memchr(line[i], '\n', len - off);
		llen[i] = (size_t)(nl - line[i]);
		off += llen[i] + 1;
	}
	if (!origin_valid(line[0], llen[0])) {
		set_why(why, "checkpoint origin line is empty or longer than 255 bytes");
		return AAM_E_PARSE;
	}
	memcpy(cp->origin, line[0], llen[0]);
	cp->origin[llen[0]] = '\0';

	if (llen[1] == 0 || llen[1] > 20 || (llen[1] > 1 && line[1][0] == '0')) {
		set_why(why, "checkpoint size is not a decimal number without leading zeros");
		return AAM_E_PARSE;
	}
	uint64_t size = 0;
	for (size_t i = 0; i < llen[1]; i++) {
		char c = line[1][i];
		if (c < '0' || c > '9' || size > (UINT64_MAX - (uint64_t)(c - '0')) / 10) {
			set_why(why, "checkpoint size is not a decimal number below 2^64");
			return AAM_E_PARSE;
		}
		size = size * 10 + (uint64_t)(c - '0');
	}
	cp->size = size;

	size_t rlen = 0;
	if (llen[2] != 44 || aam_note_b64_decode(line[2], llen[2], cp->root, 32, &rlen) != AAM_OK ||
	    rlen != 32) {
		set_why(why, "checkpoint root is not the base64 of a 32-byte hash");
		return AAM_E_PARSE;
	}
	while (off < len) {
		const char *nl = memchr(text + off, '\n', len - off);
		if (nl == text + off) {
			set_why(why, "checkpoint has an empty extension line");
			return AAM_E_PARSE;
		}
		cp->ext_count++;
		off = (size_t)(nl - text) + 1;
	}
	return AAM_OK;
}

int
aam_note_checkpoint_sign(const char *origin, uint64_t size, const uint8_t root[32],
                         const char *key_name, uint32_t key_id, aam_note_sign_fn sign, void *ctx,
                         char *out, size_t cap, size_t *out_len)
{
	char text[AAM_NOTE_ORIGIN_MAX + 128];
	size_t tlen;
	int rc = aam_note_checkpoint_format(origin, size, root, NULL, text, sizeof(text), &tlen);
	if (rc != AAM_OK)
		return rc;
	return aam_note_sign(text, tlen, key_name, key_id, sign, ctx, out, cap, out_len);
}

int
aam_note_checkpoint_open(const char *msg, size_t len, const struct aam_note_verifier *v, size_t nv,
                         struct aam_note_checkpoint *cp, const char **why)
{
	size_t tlen = 0;
	if (cp == NULL)
		return AAM_E_INVAL;
	memset(cp, 0, sizeof(*cp));
	int rc = aam_note_verify(msg, len, v, nv, &tlen, NULL, why);
	if (rc != AAM_OK)
		return rc;
	return aam_note_checkpoint_parse(msg, tlen, cp, why);
}
