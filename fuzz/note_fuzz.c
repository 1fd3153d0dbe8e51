/*
 * Fuzz target for signed notes and checkpoints (common/note.c).  The
 * input is fed, as one buffer of its exact size, to every parser that
 * sees untrusted note bytes: aam_note_verify and aam_note_checkpoint_open
 * against a pinned key whose name and key ID the seed corpus uses (so
 * inputs reach the ECDSA verification), aam_note_checkpoint_parse,
 * aam_note_verifier_from_vkey and the note's base64 decoder.  Besides "no
 * crash", it checks the properties the verifier relies on: success means
 * a signed text that is a prefix of the input ending in '\n', and the
 * base64 decoder accepts only the spelling its encoder produces.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "common/note.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The seed corpus was signed with the private half of this key (then discarded). */
static const char fuzz_vkey[] =
        "fuzz.example/log+92b7d5f8+AjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABODxhtZydsu8f2t0iwnlZVZZ"
        "NNW0m4CeOp+e/rweKmcGL5TAjl8Pp5XUtD1Hez+U5kug47VOhs6F7bSa3kItKbw=";

static struct aam_note_verifier verifier;
static int have_verifier;

static void
check_b64(const char *s, size_t n)
{
	uint8_t *out = malloc(n ? n : 1);
	if (out == NULL)
		return;
	size_t len = 0;
	if (aam_note_b64_decode(s, n, out, n, &len) == AAM_OK) {
		char *enc = malloc(n + 1);
		if (enc == NULL || aam_note_b64_encode(out, len, enc, n + 1, NULL) != AAM_OK ||
		    memcmp(enc, s, n) != 0)
			abort();
		free(enc);
	}
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!have_verifier) {
		if (aam_note_verifier_from_vkey(&verifier, fuzz_vkey, sizeof(fuzz_vkey) - 1,
		                                NULL) != AAM_OK)
			abort();
		have_verifier = 1;
	}
	/* An exact-size copy, so ASan sees any read past the end. */
	char *msg = malloc(size ? size : 1);
	if (msg == NULL)
		return 0;
	memcpy(msg, data, size);

	size_t tlen = 0;
	const char *why = NULL;
	int rc = aam_note_verify(msg, size, &verifier, 1, &tlen, NULL, &why);
	if (rc == AAM_OK) {
		if (tlen == 0 || tlen >= size || msg[tlen - 1] != '\n' || msg[tlen] != '\n')
			abort();
	} else if (why == NULL) {
		abort(); /* every refusal names its reason */
	}

	struct aam_note_checkpoint cp;
	rc = aam_note_checkpoint_open(msg, size, &verifier, 1, &cp, &why);
	if (rc == AAM_OK && cp.origin[0] == '\0')
		abort();
	(void)aam_note_checkpoint_parse(msg, size, &cp, &why);

	struct aam_note_verifier v;
	if (aam_note_verifier_from_vkey(&v, msg, size, &why) == AAM_OK)
		aam_note_verifier_uninit(&v);

	check_b64(msg, size);
	free(msg);
	return 0;
}
