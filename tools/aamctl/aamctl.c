/*
 * aamctl: the administrator's command line.  This file only dispatches:
 * the global options (-c, --help, --version) come from common/cli.h and
 * every subcommand lives in its own cmd_<name>.c.
 */
#include <stdio.h>
#include <string.h>

#include "common/cli.h"
#include "tools/aamctl/aamctl.h"

/* Weak references: a NULL entry is a subcommand not built into this binary. */
static const struct aamctl_cmd *const commands[] = {
        &aamctl_cmd_policy, &aamctl_cmd_keys,   &aamctl_cmd_secret, &aamctl_cmd_workload,
        &aamctl_cmd_audit,  &aamctl_cmd_import, &aamctl_cmd_key,
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void
list_commands(FILE *f)
{
	fprintf(f, "commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (commands[i] != NULL)
			fprintf(f, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
	fprintf(f, "run 'aamctl COMMAND --help' for a command's options\n");
}

int
main(int argc, char **argv)
{
	struct aam_cli cli;
	switch (aam_cli_parse(argc, argv, "aamctl", "COMMAND [ARGS...]", &cli)) {
	case AAM_CLI_EXIT_OK:
		if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
			list_commands(stdout);
		return AAMCTL_EXIT_OK;
	case AAM_CLI_EXIT_ERR:
		return AAMCTL_EXIT_USAGE;
	case AAM_CLI_RUN:
		break;
	}
	if (cli.argi >= argc) {
		fprintf(stderr, "aamctl: missing command\n");
		list_commands(stderr);
		return AAMCTL_EXIT_USAGE;
	}
	const char *name = argv[cli.argi];
	for (size_t i = 0; i < NCOMMANDS; i++) {
		if (commands[i] != NULL && strcmp(commands[i]->name, name) == 0)
			return commands[i]->run(argc - cli.argi, argv + cli.argi, &cli);
	}
	fprintf(stderr, "aamctl: unknown command '%s'\n", name);
	list_commands(stderr);
	return AAMCTL_EXIT_USAGE;
}
