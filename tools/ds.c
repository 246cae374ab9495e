/* ds.c - the ds front end: dispatch to subcommands, --help, --version. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const struct cli_command commands[] = {
	{"mkds", cmd_mkds, cmd_mkds_usage, "create a new empty storage"},
	{"dump", cmd_dump, cmd_dump_usage,
	 "decode storage files (md5 checked), text or --json"},
	{"log", cmd_log, cmd_log_usage,
	 "list a storage's transactions, newest first"},
	{"whatsnew", cmd_whatsnew, cmd_whatsnew_usage,
	 "list the files changed since a transaction (as whatsnew.py)"},
	{"snapshot", cmd_snapshot, cmd_snapshot_usage,
	 "run a command while the storage is held in snapshot mode"},
	{"check", cmd_check, cmd_check_usage,
	 "check a storage (checkds), or compare a replica with its master"},
	{"replica", cmd_replica, cmd_replica_usage,
	 "bring a replica up to date with its master (over ssh or locally)"},



	{"new-oid", cmd_newoid, cmd_newoid_usage,
	 "allocate new object ids (durably) and print them"},
	{"commit", cmd_commit, cmd_commit_usage,
	 "store objects' pickles in one transaction, print its tid"},
	{"cat", cmd_cat, cmd_cat_usage,
	 "print an object's pickle (current, --serial or --before a tid)"},
	{"history", cmd_history, cmd_history_usage,
	 "list an object's revisions with their transactions"},
	{"undo", cmd_undo, cmd_undo_usage,
	 "undo a transaction in a new transaction"},
	{"gen", cmd_gen, cmd_gen_usage,
	 "generate a realistic storage (reproducible from a seed)"},
	{"pack", cmd_pack, cmd_pack_usage,
	 "pack a storage: remove old revisions and unreachable objects"},
	{"backup", cmd_backup, cmd_backup_usage,
	 "full and incremental backups (as backup.py), in snapshot mode"},
	{"restore", cmd_restore, cmd_restore_usage,
	 "a new storage from a full backup and incremental ones, checked"},
	{NULL, NULL, NULL, NULL},
};

static void
usage(FILE *out)
{
	fprintf(out,
	        "usage: ds [--help] [--version] SUBCOMMAND [ARGS...]\n"
	        "       ds help SUBCOMMAND\n\n"
	        "DirectoryStorage tools, compatible with the original Python "
	        "implementation.\n\nSubcommands:\n");
	for (const struct cli_command *c = commands; c->name; c++)
		fprintf(out, "  %-10s %s\n", c->name, c->summary);
	fprintf(out,
	        "\nExit codes: 0 success; 1 failure that needs a human; "
	        "2 usage error;\n3 try again later (locked, busy, connection); "
	        "4 local system error (disk full, I/O error,\npermission denied).\n");
}

static const struct cli_command *
find(const char *name)
{
	for (const struct cli_command *c = commands; c->name; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

int
main(int argc, char **argv)
{
	const struct cli_command *c;
	static char prog[64];

	if (argc < 2) {
		usage(stderr);
		return DS_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return DS_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("ds (libdirstorage) %s\n", DS_VERSION_STRING);
		return DS_EXIT_OK;
	}
	if (strcmp(argv[1], "help") == 0) {
		if (argc < 3) {
			usage(stdout);
			return DS_EXIT_OK;
		}
		c = find(argv[2]);
		if (c == NULL) {
			fprintf(stderr, "ds: unknown subcommand '%s'\n", argv[2]);
			return DS_EXIT_USAGE;
		}
		c->usage(stdout);
		return DS_EXIT_OK;
	}
	c = find(argv[1]);
	if (c == NULL) {
		fprintf(stderr, "ds: unknown subcommand '%s' (see ds --help)\n",
		        argv[1]);
		return DS_EXIT_USAGE;
	}
	/* getopt_long prints its own errors ("unrecognized option",
	 * "option requires an argument") prefixed with argv[0]: make that
	 * "ds SUBCOMMAND", the prefix of every other message. */
	snprintf(prog, sizeof(prog), "ds %s", c->name);
	argv[1] = prog;
	return c->run(argc - 1, argv + 1);
}
