/*
 * aamctl subcommands.  Each one is a struct aamctl_cmd defined in its own
 * cmd_<name>.c; RUN receives the arguments after the subcommand's name
 * (argv[0] is the name itself) and returns the process exit status:
 * 0 success, 1 failure (a lint error, a failed case, a refused request),
 * 2 usage error.
 */
#ifndef AAM_TOOLS_AAMCTL_H
#define AAM_TOOLS_AAMCTL_H

#include "common/cli.h"

enum { AAMCTL_EXIT_OK = 0, AAMCTL_EXIT_FAIL = 1, AAMCTL_EXIT_USAGE = 2 };

struct aamctl_cmd {
	const char *name;
	const char *summary; /* one line for `aamctl --help` */
	int (*run)(int argc, char **argv, const struct aam_cli *cli);
};

/*
 * The subcommands aamctl knows.  They are weak references: a command
 * whose file is not built yet is simply absent from the table, so each
 * issue can add its own cmd_<name>.c without touching the others.
 */
extern const struct aamctl_cmd aamctl_cmd_policy __attribute__((weak));
extern const struct aamctl_cmd aamctl_cmd_keys __attribute__((weak));
extern const struct aamctl_cmd aamctl_cmd_secret __attribute__((weak));
extern const struct aamctl_cmd aamctl_cmd_workload __attribute__((weak));
extern const struct aamctl_cmd aamctl_cmd_audit __attribute__((weak));
extern const struct aamctl_cmd aamctl_cmd_import __attribute__((weak));
extern const struct aamctl_cmd aamctl_cmd_key __attribute__((weak));

#endif
