/*
 * Fuzz target for SPIFFE ID and identity-pattern parsing.  Besides "no
 * crash", it checks the properties the rest of AAM relies on: an accepted
 * ID formats back to exactly the input (the accepted form is canonical),
 * re-parses to an equal ID, matches itself as an exact pattern, and every
 * rejection comes with a reason.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "common/spiffe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_id(const char *s, size_t len)
{
	struct aam_spiffe_id id, again;
	const char *why = NULL;
	int rc = aam_spiffe_parse(s, len, &id, &why);
	if (rc != AAM_OK) {
		if (why == NULL)
			abort();
		return;
	}
	if (why != NULL)
		abort();
	char out[AAM_SPIFFE_ID_BUFSZ];
	size_t n = 0;
	if (aam_spiffe_format(&id, out, sizeof(out), &n) != AAM_OK)
		abort();
	if (n != len || memcmp(out, s, len) != 0)
		abort();
	if (aam_spiffe_parse(out, n, &again, NULL) != AAM_OK || !aam_spiffe_equal(&id, &again))
		abort();
	if (!aam_spiffe_in_trust_domain(&id, id.trust_domain))
		abort();
	struct aam_spiffe_pattern p;
	if (aam_spiffe_pattern_parse(s, len, &p, NULL) != AAM_OK ||
	    !aam_spiffe_pattern_match(&p, &id))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	check_id(s, size);

	/*
	 * As a pattern: when it parses, it must match the ID that results
	 * from replacing the wildcard by a concrete segment.
	 */
	struct aam_spiffe_pattern p;
	const char *why = NULL;
	if (aam_spiffe_pattern_parse(s, size, &p, &why) != AAM_OK) {
		if (why == NULL)
			abort();
		return 0;
	}
	if (p.kind == AAM_SPIFFE_PATTERN_EXACT)
		return 0;
	char path[AAM_SPIFFE_ID_MAX];
	size_t plen = strlen(p.base.path);
	if (plen + 3 >= sizeof(path))
		return 0;
	memcpy(path, p.base.path, plen);
	memcpy(path + plen, "/x", 3);
	struct aam_spiffe_id id;
	if (aam_spiffe_from_parts(p.base.trust_domain, path, &id, NULL) == AAM_OK &&
	    !aam_spiffe_pattern_match(&p, &id))
		abort();
	return 0;
}
