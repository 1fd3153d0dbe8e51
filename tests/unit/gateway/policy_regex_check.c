/*
 * The bounded regex engine used by `when: {param: {regex: ...}}`: whole-
 * value matching, the supported syntax, refusals with reasons, and linear
 * time on inputs that make backtracking engines explode.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aam/err.h"
#include "gateway/policy_internal.h"

static struct pol_arena g_arena;

static int
setup(void **state)
{
	(void)state;
	pol_arena_init(&g_arena);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	pol_arena_uninit(&g_arena);
	return 0;
}

static struct pol_regex *
compile_ok(const char *pat)
{
	struct pol_regex *re = NULL;
	char why[160];
	int rc = pol_regex_compile(&g_arena, pat, strlen(pat), &re, why, sizeof(why));
	if (rc != AAM_OK)
		print_error("%s: %s\n", pat, why);
	assert_int_equal(rc, AAM_OK);
	assert_non_null(re);
	return re;
}

static void
test_matches(void **state)
{
	(void)state;
	struct {
		const char *pat, *s;
		bool match;
	} t[] = {
	        {"", "", true},
	        {"", "a", false},
	        {"abc", "abc", true},
	        {"abc", "abcd", false}, /* the whole value must match */
	        {"abc", "xabc", false},
	        {"^abc$", "abc", true},
	        {"a.c", "a-c", true},
	        {"a.c", "ac", false},
	        {"a*", "", true},
	        {"a*", "aaaa", true},
	        {"a+", "", false},
	        {"a+b", "aaab", true},
	        {"ab?c", "ac", true},
	        {"ab?c", "abbc", false},
	        {"a{3}", "aaa", true},
	        {"a{3}", "aa", false},
	        {"a{2,}", "aaaaa", true},
	        {"a{2,}", "a", false},
	        {"a{1,3}", "aaa", true},
	        {"a{1,3}", "aaaa", false},
	        {"a{0,2}b", "b", true},
	        {"a{0}b", "b", true},
	        {"cat|dog", "dog", true},
	        {"cat|dog", "cow", false},
	        {"a|b|c|d", "c", true},
	        {"(ab)+", "ababab", true},
	        {"(ab)+", "aba", false},
	        {"(?:x|y)z", "yz", true},
	        {"(a|b)*c", "abbac", true},
	        {"(a|)+", "aaa", true},
	        {"(a*)*", "aaaa", true},
	        {"[a-c]+", "abcabc", true},
	        {"[a-c]+", "abcd", false},
	        {"[^0-9]+", "abc", true},
	        {"[^0-9]+", "ab1", false},
	        {"[]a]", "]", true},
	        {"[a-]", "-", true},
	        {"[\\d_]+", "12_3", true},
	        {"\\d{4}-\\d{2}", "2026-01", true},
	        {"\\w+", "snake_Case9", true},
	        {"\\W", "-", true},
	        {"\\s", "\t", true},
	        {"\\S+", "a b", false},
	        {"\\.", ".", true},
	        {"\\.", "x", false},
	        {"a\\*b", "a*b", true},
	        {"FIN-[0-9]{1,6}", "FIN-123456", true},
	        {"FIN-[0-9]{1,6}", "FIN-1234567", false},
	        {"[A-Z]{2,5}-[0-9]+(/[a-z]+)?", "ABC-12/xy", true},
	        {"caf\xc3\xa9", "caf\xc3\xa9", true},
	        {"a$", "a", true},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct pol_regex *re = compile_ok(t[i].pat);
		bool got = pol_regex_match(re, t[i].s, strlen(t[i].s));
		if (got != t[i].match)
			print_error("/%s/ on '%s': got %d\n", t[i].pat, t[i].s, got);
		assert_int_equal(got, t[i].match);
	}
	/* Bytes after a NUL in the subject are part of it. */
	struct pol_regex *re = compile_ok("a.b");
	assert_true(pol_regex_match(re, "a\0b", 3));
	assert_false(pol_regex_match(NULL, "a", 1));
}

static void
test_refusals(void **state)
{
	(void)state;
	struct {
		const char *pat, *why;
	} t[] = {
	        {"(a)\\1", "backreferences (\\1) are not supported"},
	        {"(?=a)", "lookaround and inline flags are not supported"},
	        {"(?i)a", "lookaround and inline flags are not supported"},
	        {"a*?", "lazy and possessive quantifiers are not supported"},
	        {"a++", "lazy and possessive quantifiers are not supported"},
	        {"a**", "quantifier follows a quantifier"},
	        {"*a", "quantifier '*' has nothing to repeat"},
	        {"a|*", "quantifier '*' has nothing to repeat"},
	        {"(abc", "missing ')'"},
	        {"abc)", "unbalanced ')'"},
	        {"[abc", "unterminated character class"},
	        {"[z-a]", "character range is out of order"},
	        {"a{3,1}", "repetition {m,n} has n < m"},
	        {"a{101}", "repetition count over 100"},
	        {"a{x}", "malformed {m,n} repetition"},
	        {"a{2", "malformed {m,n} repetition"},
	        {"a^b", "'^' is only allowed at the start or end of the regex (the whole value "
	                "must match)"},
	        {"a$b", "'$' is only allowed at the start or end of the regex (the whole value "
	                "must match)"},
	        {"\\q", "unsupported escape \\q"},
	        {"ab\\", "regex ends with a lone backslash"},
	        {"(a{1,100}){1,100}", "regex is too large (over 1024 instructions once "
	                              "repetitions are expanded)"},
	        {"((((((((((((((((((((((((((((((((((a))))))))))))))))))))))))))))))))))",
	         "regex nests groups deeper than 32"},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct pol_regex *re = NULL;
		char why[160] = "";
		int rc = pol_regex_compile(&g_arena, t[i].pat, strlen(t[i].pat), &re, why,
		                           sizeof(why));
		if (rc == AAM_OK || strcmp(why, t[i].why) != 0)
			print_error("/%s/: rc=%d why=%s\n", t[i].pat, rc, why);
		assert_int_not_equal(rc, AAM_OK);
		assert_null(re);
		assert_string_equal(why, t[i].why);
	}
	char longpat[POL_REGEX_MAX_PATTERN + 2];
	memset(longpat, 'a', sizeof(longpat) - 1);
	longpat[sizeof(longpat) - 1] = '\0';
	struct pol_regex *re = NULL;
	char why[160];
	assert_int_equal(
	        pol_regex_compile(&g_arena, longpat, strlen(longpat), &re, why, sizeof(why)),
	        AAM_E_TOOBIG);
	assert_string_equal(why, "regex is longer than 256 bytes");
	char many[POL_REGEX_MAX_PATTERN];
	size_t n = 0;
	for (int i = 0; i < 65; i++) {
		memcpy(many + n, "\\d", 2);
		n += 2;
	}
	assert_int_equal(pol_regex_compile(&g_arena, many, n, &re, why, sizeof(why)), AAM_E_PARSE);
	assert_string_equal(why, "regex has more than 64 character classes");
}

static double
seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Patterns that take exponential time in a backtracking engine finish in
 * linear time here: 64 KiB of 'a' with no match, in well under a second
 * even under the sanitizers.
 */
static void
test_linear_time_on_redos_patterns(void **state)
{
	(void)state;
	size_t len = 64 * 1024;
	char *s = malloc(len + 1);
	assert_non_null(s);
	memset(s, 'a', len);
	s[len] = '!';
	const char *pats[] = {"(a+)+b", "(a|a)*b", "(a*)*b", "(a|aa)+$b", "([a-z]+)*[0-9]"};
	for (size_t i = 0; i < sizeof(pats) / sizeof(pats[0]); i++) {
		struct pol_regex *re = NULL;
		char why[160];
		if (pol_regex_compile(&g_arena, pats[i], strlen(pats[i]), &re, why, sizeof(why)) !=
		    AAM_OK)
			continue; /* "(a|aa)+$b" is refused: '$' in the middle */
		double t0 = seconds();
		assert_false(pol_regex_match(re, s, len + 1));
		double dt = seconds() - t0;
		assert_true(dt < 2.0);
	}
	struct pol_regex *re = compile_ok("(a|aa)+");
	assert_true(pol_regex_match(re, s, len));
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_matches),
	        cmocka_unit_test(test_refusals),
	        cmocka_unit_test(test_linear_time_on_redos_patterns),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
