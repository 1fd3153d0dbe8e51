#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cli.h"

static enum aam_cli_result
parse(struct aam_cli *c, int argc, char **argv)
{
	/* Silence --help/--version output during the test. */
	FILE *saved_out = stdout, *saved_err = stderr;
	stdout = fopen("/dev/null", "w");
	stderr = fopen("/dev/null", "w");
	enum aam_cli_result r = aam_cli_parse(argc, argv, "aam-test", "[CMD]", c);
	fclose(stdout);
	fclose(stderr);
	stdout = saved_out;
	stderr = saved_err;
	return r;
}

static void
test_default_and_env(void **state)
{
	(void)state;
	struct aam_cli c;
	char *argv[] = {"aam-test", "run", NULL};
	unsetenv("AAM_CONFIG");
	assert_int_equal(parse(&c, 2, argv), AAM_CLI_RUN);
	assert_string_equal(c.config_path, "/etc/aam/aam.yaml");
	assert_int_equal(c.config_explicit, 0);
	assert_int_equal(c.argi, 1);
	setenv("AAM_CONFIG", "/tmp/x.yaml", 1);
	assert_int_equal(parse(&c, 2, argv), AAM_CLI_RUN);
	assert_string_equal(c.config_path, "/tmp/x.yaml");
	unsetenv("AAM_CONFIG");
}

static void
test_explicit_config_wins(void **state)
{
	(void)state;
	struct aam_cli c;
	setenv("AAM_CONFIG", "/tmp/env.yaml", 1);
	char *argv[] = {"aam-test", "-c", "/etc/a.yaml", "sub", "-x", NULL};
	assert_int_equal(parse(&c, 5, argv), AAM_CLI_RUN);
	assert_string_equal(c.config_path, "/etc/a.yaml");
	assert_int_equal(c.argi, 3);
	char *argv2[] = {"aam-test", "--config=/etc/b.yaml", NULL};
	assert_int_equal(parse(&c, 2, argv2), AAM_CLI_RUN);
	assert_string_equal(c.config_path, "/etc/b.yaml");
	unsetenv("AAM_CONFIG");
}

static void
test_help_version_errors(void **state)
{
	(void)state;
	struct aam_cli c;
	char *h[] = {"aam-test", "--help", NULL};
	assert_int_equal(parse(&c, 2, h), AAM_CLI_EXIT_OK);
	char *v[] = {"aam-test", "-V", NULL};
	assert_int_equal(parse(&c, 2, v), AAM_CLI_EXIT_OK);
	char *missing[] = {"aam-test", "-c", NULL};
	assert_int_equal(parse(&c, 2, missing), AAM_CLI_EXIT_ERR);
	char *unknown[] = {"aam-test", "--frobnicate", NULL};
	assert_int_equal(parse(&c, 2, unknown), AAM_CLI_EXIT_ERR);
	char *dashdash[] = {"aam-test", "--", "-c", NULL};
	assert_int_equal(parse(&c, 3, dashdash), AAM_CLI_RUN);
	assert_int_equal(c.argi, 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_default_and_env),
	        cmocka_unit_test(test_explicit_config_wins),
	        cmocka_unit_test(test_help_version_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
