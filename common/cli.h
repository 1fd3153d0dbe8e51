/*
 * Command-line conventions shared by every AAM binary:
 *   -c FILE / --config FILE   configuration file
 *                             (default $AAM_CONFIG, then /etc/aam/aam.yaml)
 *   -h / --help               usage on stdout, exit 0
 *   -V / --version            "NAME VERSION" on stdout, exit 0
 * Options stop at the first non-option argument (a subcommand) or "--".
 */
#ifndef AAM_COMMON_CLI_H
#define AAM_COMMON_CLI_H

#define AAM_DEFAULT_CONFIG "/etc/aam/aam.yaml"

struct aam_cli {
	const char *config_path; /* never NULL after a successful parse */
	int config_explicit;     /* -c given or $AAM_CONFIG set */
	int argi;                /* index of the first non-option argument */
};

enum aam_cli_result {
	AAM_CLI_RUN = 0,  /* proceed */
	AAM_CLI_EXIT_OK,  /* --help or --version printed: exit 0 */
	AAM_CLI_EXIT_ERR, /* usage error printed on stderr: exit 2 */
};

/*
 * USAGE is printed after "usage: PROG " for --help and on errors.
 */
enum aam_cli_result aam_cli_parse(int argc, char **argv, const char *prog, const char *usage,
                                  struct aam_cli *out);

#endif
