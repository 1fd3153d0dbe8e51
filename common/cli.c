#include "common/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef AAM_VERSION
#define AAM_VERSION "0.0.0"
#endif

static void
cli_usage(FILE *f, const char *prog, const char *usage)
{
	fprintf(f, "usage: %s [-c FILE] %s\n", prog, usage ? usage : "");
	fprintf(f, "  -c, --config FILE  configuration file (default $AAM_CONFIG, then %s)\n",
	        AAM_DEFAULT_CONFIG);
	fprintf(f, "  -h, --help         show this help\n");
	fprintf(f, "  -V, --version      show the version\n");
}

enum aam_cli_result
aam_cli_parse(int argc, char **argv, const char *prog, const char *usage, struct aam_cli *out)
{
	memset(out, 0, sizeof(*out));
	const char *env = getenv("AAM_CONFIG");
	if (env != NULL && *env != '\0') {
		out->config_path = env;
		out->config_explicit = 1;
	} else {
		out->config_path = AAM_DEFAULT_CONFIG;
	}
	int i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-' || a[1] == '\0')
			break;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			cli_usage(stdout, prog, usage);
			return AAM_CLI_EXIT_OK;
		}
		if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			printf("%s %s\n", prog, AAM_VERSION);
			return AAM_CLI_EXIT_OK;
		}
		if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			if (i + 1 >= argc || argv[i + 1][0] == '\0') {
				fprintf(stderr, "%s: %s needs a file name\n", prog, a);
				cli_usage(stderr, prog, usage);
				return AAM_CLI_EXIT_ERR;
			}
			out->config_path = argv[++i];
			out->config_explicit = 1;
			continue;
		}
		if (strncmp(a, "--config=", 9) == 0 && a[9] != '\0') {
			out->config_path = a + 9;
			out->config_explicit = 1;
			continue;
		}
		/* Unknown option: leave it to the caller when a subcommand may
		 * own it, but a leading unknown option is a usage error. */
		fprintf(stderr, "%s: unknown option %s\n", prog, a);
		cli_usage(stderr, prog, usage);
		return AAM_CLI_EXIT_ERR;
	}
	out->argi = i;
	return AAM_CLI_RUN;
}
