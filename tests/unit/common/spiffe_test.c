/*
 * SPIFFE ID validation, case by case from the rules of the SPIFFE-ID
 * specification (spiffe/spiffe standards/SPIFFE-ID.md).  Every rejected
 * case asserts the exact rule named in `why`, so a parser that rejects
 * for the wrong reason fails too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "common/spiffe.h"

struct id_case {
	const char *in;
	size_t len; /* 0: strlen(in) */
	int rc;
	const char *why; /* NULL when valid */
	const char *td;  /* expected on success */
	const char *path;
};

#define VALID(s, t, p)                                                                             \
	{                                                                                          \
		(s), 0, AAM_OK, NULL, (t), (p)                                                     \
	}
#define INVALID(s, w)                                                                              \
	{                                                                                          \
		(s), 0, AAM_E_PARSE, (w), NULL, NULL                                               \
	}
#define INVALID_N(s, n, w)                                                                         \
	{                                                                                          \
		(s), (n), AAM_E_PARSE, (w), NULL, NULL                                             \
	}

static const struct id_case id_cases[] = {
        /* Valid: examples from the specification and the charset edges. */
        VALID("spiffe://example.org", "example.org", ""),
        VALID("spiffe://example.org/workload", "example.org", "/workload"),
        VALID("spiffe://prod/agent/finance-analyst", "prod", "/agent/finance-analyst"),
        VALID("spiffe://staging.example.com/payments/mysql", "staging.example.com",
              "/payments/mysql"),
        VALID("spiffe://staging.example.com/payments/web-fe", "staging.example.com",
              "/payments/web-fe"),
        VALID("spiffe://k8s-west.example.com/ns/staging/sa/default", "k8s-west.example.com",
              "/ns/staging/sa/default"),
        VALID("spiffe://example.com/9eebccd2-12bf-40a6-b262-65fe0487d453", "example.com",
              "/9eebccd2-12bf-40a6-b262-65fe0487d453"),
        VALID("spiffe://td_with-under.score9/Mixed.Case_Path-0", "td_with-under.score9",
              "/Mixed.Case_Path-0"),
        /* Dots are fine inside a segment; only "." and ".." alone are not. */
        VALID("spiffe://example.org/.hidden/.../a..b/x.", "example.org", "/.hidden/.../a..b/x."),
        VALID("spiffe://1.2.3.4/x", "1.2.3.4", "/x"),
        VALID("spiffe://a/B/C/D/E", "a", "/B/C/D/E"),
        VALID("spiffe://-._/-._", "-._", "/-._"),

        /* Scheme. */
        INVALID("", "SPIFFE ID is empty"),
        INVALID("SPIFFE://example.org", "scheme must be lowercase 'spiffe'"),
        INVALID("Spiffe://example.org/a", "scheme must be lowercase 'spiffe'"),
        INVALID("spiffE://example.org/a", "scheme must be lowercase 'spiffe'"),
        INVALID("https://example.org/a", "scheme is not 'spiffe'"),
        INVALID("spiffes://example.org", "scheme is not 'spiffe'"),
        INVALID(" spiffe://example.org", "scheme is not 'spiffe'"),
        INVALID("spiffe:example.org", "scheme must be followed by '//'"),
        INVALID("spiffe:/example.org/a", "scheme must be followed by '//'"),
        INVALID("example.org/workload", "missing 'spiffe://' prefix"),
        INVALID("//example.org/workload", "missing 'spiffe://' prefix"),
        INVALID("spiffe", "missing 'spiffe://' prefix"),

        /* Trust domain. */
        INVALID("spiffe://", "trust domain is empty"),
        INVALID("spiffe:///path", "trust domain is empty"),
        INVALID("spiffe://Example.org", "trust domain contains an uppercase letter"),
        INVALID("spiffe://example.ORG/a", "trust domain contains an uppercase letter"),
        INVALID("spiffe://example.org:8443/a", "trust domain contains a port"),
        INVALID("spiffe://example.org:/a", "trust domain contains a port"),
        INVALID("spiffe://user@example.org/a", "trust domain contains userinfo"),
        INVALID("spiffe://user:pw@example.org", "trust domain contains userinfo"),
        INVALID("spiffe://exa%6dple.org", "percent-encoding is not allowed"),
        INVALID("spiffe://exam ple.org", "trust domain contains an invalid character"),
        INVALID("spiffe://ex\xc3\xa4mple.org", "trust domain contains an invalid character"),
        INVALID("spiffe://[::1]/a", "trust domain contains an invalid character"),
        INVALID("spiffe://*/a", "trust domain contains an invalid character"),
        INVALID("spiffe://example.org\\a", "trust domain contains an invalid character"),
        INVALID_N("spiffe://exa\0mple.org", 21, "trust domain contains an invalid character"),

        /* Query and fragment, wherever they start. */
        INVALID("spiffe://example.org?x=1", "query is not allowed"),
        INVALID("spiffe://example.org/path?x=1", "query is not allowed"),
        INVALID("spiffe://example.org/path?", "query is not allowed"),
        INVALID("spiffe://example.org?a@b", "query is not allowed"),
        INVALID("spiffe://example.org#frag", "fragment is not allowed"),
        INVALID("spiffe://example.org/path#frag", "fragment is not allowed"),

        /* Path. */
        INVALID("spiffe://example.org/", "path has a trailing slash"),
        INVALID("spiffe://example.org/path/", "path has a trailing slash"),
        INVALID("spiffe://example.org//path", "path segment is empty"),
        INVALID("spiffe://example.org/a//b", "path segment is empty"),
        INVALID("spiffe://example.org/.", "path segment is '.'"),
        INVALID("spiffe://example.org/./a", "path segment is '.'"),
        INVALID("spiffe://example.org/a/.", "path segment is '.'"),
        INVALID("spiffe://example.org/..", "path segment is '..'"),
        INVALID("spiffe://example.org/../a", "path segment is '..'"),
        INVALID("spiffe://example.org/a/../b", "path segment is '..'"),
        INVALID("spiffe://example.org/pa%20th", "percent-encoding is not allowed"),
        INVALID("spiffe://example.org/pa th", "path contains an invalid character"),
        INVALID("spiffe://example.org/pa$th", "path contains an invalid character"),
        INVALID("spiffe://example.org/a:b", "path contains an invalid character"),
        INVALID("spiffe://example.org/a@b", "path contains an invalid character"),
        INVALID("spiffe://example.org/a*", "path contains an invalid character"),
        INVALID("spiffe://example.org/caf\xc3\xa9", "path contains an invalid character"),
        INVALID("spiffe://example.org/a\n", "path contains an invalid character"),
        INVALID("spiffe://example.org/a\\b", "path contains an invalid character"),
        INVALID_N("spiffe://example.org/a\0b", 24, "path contains an invalid character"),
};

static void
check_case(size_t i, const struct id_case *c)
{
	size_t len = c->len ? c->len : strlen(c->in);
	struct aam_spiffe_id id;
	const char *why = "unset";
	int rc = aam_spiffe_parse(c->in, len, &id, &why);
	bool ok = rc == c->rc;
	if (c->why == NULL)
		ok = ok && why == NULL && strcmp(id.trust_domain, c->td) == 0 &&
		     strcmp(id.path, c->path) == 0;
	else
		ok = ok && why != NULL && strcmp(why, c->why) == 0 && id.trust_domain[0] == '\0' &&
		     id.path[0] == '\0';
	if (!ok)
		fail_msg("case %zu \"%s\": rc=%d why=\"%s\", want rc=%d why=\"%s\"", i, c->in, rc,
		         why ? why : "(null)", c->rc, c->why ? c->why : "(null)");
}

static void
test_id_table(void **state)
{
	(void)state;
	size_t n = sizeof(id_cases) / sizeof(id_cases[0]);
	assert_true(n >= 40);
	for (size_t i = 0; i < n; i++)
		check_case(i, &id_cases[i]);
}

/*
 * Builds "spiffe://" + a TD_LEN-byte trust domain + a path of 8-byte
 * segments ("/bbbbbbb") whose last segment absorbs the rest, so the whole
 * ID is exactly TOTAL bytes.
 */
static char *
make_id(size_t td_len, size_t total)
{
	assert_true(total == 9 + td_len || total >= 9 + td_len + 2);
	char *s = malloc(total + 1);
	assert_non_null(s);
	memcpy(s, "spiffe://", 9);
	memset(s + 9, 'a', td_len);
	size_t i = 9 + td_len;
	while (total - i >= 16) {
		memcpy(s + i, "/bbbbbbb", 8);
		i += 8;
	}
	if (i < total) {
		s[i] = '/';
		memset(s + i + 1, 'c', total - i - 1);
	}
	s[total] = '\0';
	return s;
}

static void
test_trust_domain_length_limit(void **state)
{
	(void)state;
	struct aam_spiffe_id id;
	const char *why;
	char *s = make_id(255, 9 + 255);
	assert_int_equal(aam_spiffe_parse(s, strlen(s), &id, &why), AAM_OK);
	assert_int_equal(strlen(id.trust_domain), 255);
	assert_null(why);
	free(s);

	s = make_id(256, 9 + 256);
	assert_int_equal(aam_spiffe_parse(s, strlen(s), &id, &why), AAM_E_TOOBIG);
	assert_string_equal(why, "trust domain exceeds 255 bytes");
	free(s);

	char td[AAM_SPIFFE_TD_MAX + 1];
	char big[300];
	memset(big, 'z', sizeof(big));
	assert_int_equal(aam_spiffe_trust_domain_parse(big, 255, td, &why), AAM_OK);
	assert_int_equal(aam_spiffe_trust_domain_parse(big, 256, td, &why), AAM_E_TOOBIG);
	assert_string_equal(td, "");
}

static void
test_total_length_limit(void **state)
{
	(void)state;
	struct aam_spiffe_id id;
	const char *why;
	char *s = make_id(20, AAM_SPIFFE_ID_MAX);
	assert_int_equal(strlen(s), 2048);
	assert_int_equal(aam_spiffe_parse(s, 2048, &id, &why), AAM_OK);
	char out[AAM_SPIFFE_ID_BUFSZ];
	size_t n = 0;
	assert_int_equal(aam_spiffe_format(&id, out, sizeof(out), &n), AAM_OK);
	assert_int_equal(n, 2048);
	assert_string_equal(out, s);
	free(s);

	s = make_id(20, AAM_SPIFFE_ID_MAX + 1);
	assert_int_equal(aam_spiffe_parse(s, strlen(s), &id, &why), AAM_E_TOOBIG);
	assert_string_equal(why, "SPIFFE ID exceeds 2048 bytes");
	free(s);
}

static void
test_length_is_explicit(void **state)
{
	(void)state;
	/* The parser reads LEN bytes only; the rest of the buffer is ignored. */
	const char buf[] = "spiffe://example.org/agent?garbage";
	struct aam_spiffe_id id;
	assert_int_equal(aam_spiffe_parse(buf, 26, &id, NULL), AAM_OK);
	assert_string_equal(id.path, "/agent");
	/* Cut inside the prefix. */
	assert_int_equal(aam_spiffe_parse(buf, 8, &id, NULL), AAM_E_PARSE);
	/* NULL arguments are refused, not dereferenced. */
	const char *why;
	assert_int_equal(aam_spiffe_parse(NULL, 5, &id, &why), AAM_E_INVAL);
	assert_string_equal(why, "missing argument");
	assert_int_equal(aam_spiffe_parse(buf, 26, NULL, &why), AAM_E_INVAL);
	assert_int_equal(aam_spiffe_parse(NULL, 0, &id, &why), AAM_E_PARSE);
	assert_string_equal(why, "SPIFFE ID is empty");
}

static void
test_format_round_trip(void **state)
{
	(void)state;
	size_t n = sizeof(id_cases) / sizeof(id_cases[0]);
	for (size_t i = 0; i < n; i++) {
		if (id_cases[i].rc != AAM_OK)
			continue;
		struct aam_spiffe_id id;
		char out[AAM_SPIFFE_ID_BUFSZ];
		size_t w;
		assert_int_equal(
		        aam_spiffe_parse(id_cases[i].in, strlen(id_cases[i].in), &id, NULL),
		        AAM_OK);
		assert_int_equal(aam_spiffe_format(&id, out, sizeof(out), &w), AAM_OK);
		assert_string_equal(out, id_cases[i].in);
		assert_int_equal(w, strlen(id_cases[i].in));
	}
}

static void
test_format_limits_and_bad_struct(void **state)
{
	(void)state;
	struct aam_spiffe_id id;
	assert_int_equal(aam_spiffe_parse("spiffe://td/a", 13, &id, NULL), AAM_OK);
	char out[14];
	size_t w = 99;
	/* 13 bytes need 14 with the NUL. */
	assert_int_equal(aam_spiffe_format(&id, out, 13, &w), AAM_E_TOOBIG);
	assert_string_equal(out, "");
	assert_int_equal(w, 0);
	assert_int_equal(aam_spiffe_format(&id, out, 14, &w), AAM_OK);
	assert_string_equal(out, "spiffe://td/a");

	/* A hand-filled struct cannot produce an invalid ID. */
	struct aam_spiffe_id bad;
	memset(&bad, 0, sizeof(bad));
	strcpy(bad.trust_domain, "td");
	strcpy(bad.path, "/a/../b");
	assert_int_equal(aam_spiffe_format(&bad, out, sizeof(out), NULL), AAM_E_PARSE);
	strcpy(bad.path, "relative");
	assert_int_equal(aam_spiffe_format(&bad, out, sizeof(out), NULL), AAM_E_PARSE);
	memset(bad.trust_domain, 'a', sizeof(bad.trust_domain)); /* no NUL */
	bad.path[0] = '\0';
	assert_int_equal(aam_spiffe_format(&bad, out, sizeof(out), NULL), AAM_E_PARSE);
	assert_false(aam_spiffe_equal(&bad, &bad));
	memset(&bad, 0, sizeof(bad));
	assert_int_equal(aam_spiffe_format(&bad, out, sizeof(out), NULL), AAM_E_PARSE);
}

static void
test_from_parts(void **state)
{
	(void)state;
	struct aam_spiffe_id id, parsed;
	const char *why;
	assert_int_equal(aam_spiffe_from_parts("prod", "/agent/finance-analyst", &id, &why),
	                 AAM_OK);
	assert_int_equal(aam_spiffe_parse("spiffe://prod/agent/finance-analyst", 35, &parsed, NULL),
	                 AAM_OK);
	assert_true(aam_spiffe_equal(&id, &parsed));
	assert_int_equal(aam_spiffe_from_parts("prod", "", &id, &why), AAM_OK);
	assert_false(aam_spiffe_equal(&id, &parsed));

	assert_int_equal(aam_spiffe_from_parts("Prod", "/a", &id, &why), AAM_E_PARSE);
	assert_string_equal(why, "trust domain contains an uppercase letter");
	assert_int_equal(aam_spiffe_from_parts("prod", "a/b", &id, &why), AAM_E_PARSE);
	assert_string_equal(why, "path must start with '/'");
	assert_int_equal(aam_spiffe_from_parts("prod", "/a/", &id, &why), AAM_E_PARSE);
	assert_string_equal(why, "path has a trailing slash");
	assert_int_equal(aam_spiffe_from_parts(NULL, "/a", &id, &why), AAM_E_INVAL);

	char *longpath = malloc(AAM_SPIFFE_ID_MAX + 10);
	assert_non_null(longpath);
	memset(longpath, 'p', AAM_SPIFFE_ID_MAX + 9);
	longpath[0] = '/';
	longpath[AAM_SPIFFE_ID_MAX + 9] = '\0';
	assert_int_equal(aam_spiffe_from_parts("td", longpath, &id, &why), AAM_E_TOOBIG);
	assert_string_equal(why, "SPIFFE ID exceeds 2048 bytes");
	/* "spiffe://td" is 11 bytes, so a 2037-byte path is exactly the limit. */
	longpath[AAM_SPIFFE_ID_MAX - 11] = '\0';
	assert_int_equal(aam_spiffe_from_parts("td", longpath, &id, &why), AAM_OK);
	free(longpath);
}

static void
test_trust_domain_membership(void **state)
{
	(void)state;
	struct aam_spiffe_id id;
	assert_int_equal(aam_spiffe_parse("spiffe://example.org/a/b", 24, &id, NULL), AAM_OK);
	assert_true(aam_spiffe_in_trust_domain(&id, "example.org"));
	/* Exact match only: no suffix, prefix or case folding. */
	assert_false(aam_spiffe_in_trust_domain(&id, "org"));
	assert_false(aam_spiffe_in_trust_domain(&id, "example.or"));
	assert_false(aam_spiffe_in_trust_domain(&id, "example.org.evil"));
	assert_false(aam_spiffe_in_trust_domain(&id, "EXAMPLE.ORG"));
	assert_false(aam_spiffe_in_trust_domain(&id, ""));
	assert_false(aam_spiffe_in_trust_domain(&id, NULL));
	assert_false(aam_spiffe_in_trust_domain(NULL, "example.org"));

	char td[AAM_SPIFFE_TD_MAX + 1];
	const char *why;
	assert_int_equal(aam_spiffe_trust_domain_parse("example.org", 11, td, &why), AAM_OK);
	assert_string_equal(td, "example.org");
	assert_int_equal(aam_spiffe_trust_domain_parse("example.org/a", 13, td, &why), AAM_E_PARSE);
	assert_string_equal(why, "trust domain contains an invalid character");
	assert_int_equal(aam_spiffe_trust_domain_parse("", 0, td, &why), AAM_E_PARSE);
	assert_string_equal(why, "trust domain is empty");
}

struct match_case {
	const char *pattern;
	const char *id;
	bool match;
};

static const struct match_case match_cases[] = {
        {"spiffe://prod/agent/finance-analyst", "spiffe://prod/agent/finance-analyst", true},
        {"spiffe://prod/agent/finance-analyst", "spiffe://prod/agent/finance-analyst2", false},
        {"spiffe://prod/agent/finance-analyst", "spiffe://prod/agent", false},
        {"spiffe://prod/agent/finance-analyst", "spiffe://dev/agent/finance-analyst", false},
        {"spiffe://prod/agent/finance-analyst", "spiffe://prod/Agent/finance-analyst", false},
        {"spiffe://prod", "spiffe://prod", true},
        {"spiffe://prod", "spiffe://prod/a", false},
        /* One segment. */
        {"spiffe://prod/agent/*", "spiffe://prod/agent/x", true},
        {"spiffe://prod/agent/*", "spiffe://prod/agent/x/y", false},
        {"spiffe://prod/agent/*", "spiffe://prod/agent", false},
        {"spiffe://prod/agent/*", "spiffe://prod/agentx/y", false},
        {"spiffe://prod/agent/*", "spiffe://prod/agen/x", false},
        {"spiffe://prod/agent/*", "spiffe://prod2/agent/x", false},
        {"spiffe://prod/*", "spiffe://prod/a", true},
        {"spiffe://prod/*", "spiffe://prod/a/b", false},
        {"spiffe://prod/*", "spiffe://prod", false},
        /* Any depth. */
        {"spiffe://prod/agent/**", "spiffe://prod/agent/x", true},
        {"spiffe://prod/agent/**", "spiffe://prod/agent/x/y/z", true},
        {"spiffe://prod/agent/**", "spiffe://prod/agent", false},
        {"spiffe://prod/agent/**", "spiffe://prod/agents/x", false},
        {"spiffe://prod/agent/**", "spiffe://prod/other/agent/x", false},
        {"spiffe://prod/agent/**", "spiffe://dev/agent/x", false},
        {"spiffe://prod/**", "spiffe://prod/a/b/c", true},
        {"spiffe://prod/**", "spiffe://prod", false},
        {"spiffe://prod/**", "spiffe://production/a", false},
};

static void
test_pattern_match(void **state)
{
	(void)state;
	size_t n = sizeof(match_cases) / sizeof(match_cases[0]);
	for (size_t i = 0; i < n; i++) {
		const struct match_case *c = &match_cases[i];
		struct aam_spiffe_pattern p;
		struct aam_spiffe_id id;
		const char *why = NULL;
		if (aam_spiffe_pattern_parse(c->pattern, strlen(c->pattern), &p, &why) != AAM_OK)
			fail_msg("pattern %s: %s", c->pattern, why);
		assert_int_equal(aam_spiffe_parse(c->id, strlen(c->id), &id, NULL), AAM_OK);
		if (aam_spiffe_pattern_match(&p, &id) != c->match)
			fail_msg("case %zu: %s vs %s: want %d", i, c->pattern, c->id, c->match);
	}
}

static void
test_pattern_kinds(void **state)
{
	(void)state;
	struct aam_spiffe_pattern p;
	assert_int_equal(aam_spiffe_pattern_parse("spiffe://td/a/*", 15, &p, NULL), AAM_OK);
	assert_int_equal(p.kind, AAM_SPIFFE_PATTERN_ONE);
	assert_string_equal(p.base.path, "/a");
	assert_int_equal(aam_spiffe_pattern_parse("spiffe://td/**", 14, &p, NULL), AAM_OK);
	assert_int_equal(p.kind, AAM_SPIFFE_PATTERN_ANY);
	assert_string_equal(p.base.trust_domain, "td");
	assert_string_equal(p.base.path, "");
	assert_int_equal(aam_spiffe_pattern_parse("spiffe://td/a", 13, &p, NULL), AAM_OK);
	assert_int_equal(p.kind, AAM_SPIFFE_PATTERN_EXACT);

	/* Hand-filled structures never match by accident. */
	struct aam_spiffe_id id;
	memset(&id, 0, sizeof(id));
	strcpy(id.trust_domain, "td");
	strcpy(id.path, "/a//");
	p.kind = AAM_SPIFFE_PATTERN_ANY;
	assert_false(aam_spiffe_pattern_match(&p, &id));
	p.kind = (enum aam_spiffe_pattern_kind)7;
	strcpy(id.path, "/a/b");
	assert_false(aam_spiffe_pattern_match(&p, &id));
	memset(&p, 0, sizeof(p));
	memset(&id, 0, sizeof(id));
	assert_false(aam_spiffe_pattern_match(&p, &id));
	assert_false(aam_spiffe_pattern_match(NULL, &id));
}

static const struct {
	const char *in;
	int rc;
	const char *why;
} bad_patterns[] = {
        {"spiffe://td/a*/b", AAM_E_PARSE, "wildcard must be the whole last path segment"},
        {"spiffe://td/*/b", AAM_E_PARSE, "wildcard must be the whole last path segment"},
        {"spiffe://td/**/b", AAM_E_PARSE, "wildcard must be the whole last path segment"},
        {"spiffe://td/a/*b", AAM_E_PARSE, "wildcard must be the whole last path segment"},
        {"spiffe://td/a/b*", AAM_E_PARSE, "wildcard must be the whole last path segment"},
        {"spiffe://td/***", AAM_E_PARSE, "wildcard must be the whole last path segment"},
        {"spiffe://*", AAM_E_PARSE, "wildcard must be the whole last path segment"},
        {"spiffe://**", AAM_E_PARSE, "wildcard must be the whole last path segment"},
        {"spiffe://*.td/a", AAM_E_PARSE, "wildcard must be the whole last path segment"},
        {"spiffe://td/**/", AAM_E_PARSE, "wildcard must be the whole last path segment"},
        {"spiffe:///*", AAM_E_PARSE, "trust domain is empty"},
        {"spiffe://TD/*", AAM_E_PARSE, "trust domain contains an uppercase letter"},
        {"spiffe://td/../**", AAM_E_PARSE, "path segment is '..'"},
        {"spiffe://td//*", AAM_E_PARSE, "path has a trailing slash"},
        {"spiffe://td/a?/*", AAM_E_PARSE, "query is not allowed"},
        {"https://td/*", AAM_E_PARSE, "scheme is not 'spiffe'"},
        {"", AAM_E_PARSE, "SPIFFE ID is empty"},
};

static void
test_pattern_errors(void **state)
{
	(void)state;
	size_t n = sizeof(bad_patterns) / sizeof(bad_patterns[0]);
	for (size_t i = 0; i < n; i++) {
		struct aam_spiffe_pattern p;
		const char *why = NULL;
		int rc = aam_spiffe_pattern_parse(bad_patterns[i].in, strlen(bad_patterns[i].in),
		                                  &p, &why);
		if (rc != bad_patterns[i].rc || why == NULL ||
		    strcmp(why, bad_patterns[i].why) != 0)
			fail_msg("pattern \"%s\": rc=%d why=\"%s\", want \"%s\"",
			         bad_patterns[i].in, rc, why ? why : "(null)", bad_patterns[i].why);
	}
	struct aam_spiffe_pattern p;
	char *s = make_id(20, AAM_SPIFFE_ID_MAX + 1);
	const char *why;
	assert_int_equal(aam_spiffe_pattern_parse(s, strlen(s), &p, &why), AAM_E_TOOBIG);
	free(s);
	assert_int_equal(aam_spiffe_pattern_parse("x", 1, NULL, &why), AAM_E_INVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_id_table),
	        cmocka_unit_test(test_trust_domain_length_limit),
	        cmocka_unit_test(test_total_length_limit),
	        cmocka_unit_test(test_length_is_explicit),
	        cmocka_unit_test(test_format_round_trip),
	        cmocka_unit_test(test_format_limits_and_bad_struct),
	        cmocka_unit_test(test_from_parts),
	        cmocka_unit_test(test_trust_domain_membership),
	        cmocka_unit_test(test_pattern_match),
	        cmocka_unit_test(test_pattern_kinds),
	        cmocka_unit_test(test_pattern_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
