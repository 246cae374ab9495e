/* ds.c - the ds front end: dispatch to subcommands, --help, --version. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

int cli_verbosity = 1;

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
	{NULL, NULL, NULL, NULL},
};

/*
 * The one mapping from a failure's cause to the exit code, used by every
 * subcommand (README "Exit codes" and man/ds.1 EXIT STATUS list the same
 * table). The cause is the library status and, for DS_EIO, the errno:
 *   DS_ELOCKED, DS_EBUSY                        3 try again later
 *   DS_ENOMEM; DS_EIO with any errno but those
 *     below (EACCES, EPERM, EROFS, ENOSPC,
 *     EDQUOT, EIO, EMFILE, ...)                 4 local system error
 *   DS_EIO with ELOOP (a symlink where the
 *     storage has none: not followed), ENOTDIR,
 *     EISDIR (a file where a directory belongs
 *     or the reverse), ENAMETOOLONG             1 needs a human: the
 *                                                 tree is not a storage's
 *   every other status (ENOTFOUND, ECORRUPT,
 *     ECONFIG, EREFUSED, EPROTO, ...)           1 needs a human
 * Permission denied is 4 whichever subcommand meets it: the system
 * refused, as for a full disk, and nothing in the storage is wrong.
 */
int
cli_exit_for(int status, int sys_errno)
{
	switch (status) {
	case DS_OK:
		return DS_EXIT_OK;
	case DS_ELOCKED:
	case DS_EBUSY:
		return DS_EXIT_TEMP;
	case DS_ENOMEM:
		return DS_EXIT_IO;
	case DS_EIO:
		switch (sys_errno) {
		case ELOOP:
		case ENOTDIR:
		case EISDIR:
		case ENAMETOOLONG:
			return DS_EXIT_FAIL;
		default:
			return DS_EXIT_IO;
		}
	default:
		return DS_EXIT_FAIL;
	}
}

int
cli_exit_code(int status)
{
	return cli_exit_for(status, 0);
}

int
cli_exit_errno(int errnum)
{
	switch (errnum) {
	case ENOENT:
		return cli_exit_for(DS_ENOTFOUND, 0);
	case EEXIST:
		return cli_exit_for(DS_EEXIST, 0);
	case ENOMEM:
		return cli_exit_for(DS_ENOMEM, 0);
	default:
		return cli_exit_for(DS_EIO, errnum);
	}
}

void
cli_log(int level, const char *msg, void *ctx)
{
	if (level <= cli_verbosity)
		fprintf(stderr, "ds %s: %s\n", ctx ? (const char *)ctx : "", msg);
}

void
cli_errorf(const char *sub, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ds %s: ", sub);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int
cli_operands_dir_id(const char *sub, int argc, char **argv, const char *what,
                    void (*usage)(FILE *out), uint64_t *id)
{
	if (argc - optind != 2) {
		cli_errorf(sub, "expected a storage directory and %s %s",
		           what[0] == 'o' ? "an" : "a", what);
		usage(stderr);
		return DS_EXIT_USAGE;
	}
	if (ds_id_parse(argv[optind + 1], id) != DS_OK) {
		cli_errorf(sub, "'%s' is not %s %s (16 hex digits)",
		           argv[optind + 1], what[0] == 'o' ? "an" : "a", what);
		return DS_EXIT_USAGE;
	}
	return DS_EXIT_OK;
}

int
cli_fail(const char *sub, const ds_error *err)
{
	fprintf(stderr, "ds %s: %s\n", sub,
	        err->msg[0] ? err->msg : ds_strerror(err->status));
	return cli_exit_for(err->status, err->sys_errno);
}

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
	return c->run(argc - 1, argv + 1);
}
