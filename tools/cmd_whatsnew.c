/* cmd_whatsnew.c - `ds whatsnew [--storage DIR] TID`: the files changed
 * since transaction TID, one per line, exactly as the original
 * whatsnew.py lists them (run inside `ds snapshot`, or with --storage). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void
cmd_whatsnew_usage(FILE *out)
{
	fprintf(out,
	        "usage: ds whatsnew [-q] [-v] [--storage DIR] TID\n\n"
	        "List, relative to the storage directory, every file written "
	        "after transaction\nTID (16 hex digits): A/<x.serial>, "
	        "A/<x.oid>, then per transaction, newest\nfirst, its "
	        "transaction file and for each object its .c pointer (the first "
	        "time\nonly) and its revision file. The storage must be held in "
	        "snapshot mode: run\nthis under `ds snapshot`, or give --storage "
	        "DIR to take a snapshot for the\nduration.\n\n"
	        "Refused (exit 1): TID later than the last transaction; storage "
	        "packed since TID.\n\n"
	        "Options:\n"
	        "  --storage DIR   the storage (default: $SNAPSHOT_DIRECTORY "
	        "under ds snapshot)\n"
	        "  -q, --quiet     no messages on stderr\n"
	        "  -v, --verbose   also print totals\n"
	        "  -h, --help      show this help\n");
}

static int
whatsnew_print(const char *relpath, void *ctx, ds_error *err)
{
	(void)ctx;
	(void)err;
	fputs(relpath, stdout);
	putchar('\n');
	return DS_OK;
}

int
cmd_whatsnew(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{"quiet", no_argument, NULL, 'q'},
		{"verbose", no_argument, NULL, 'v'},
		{"storage", required_argument, NULL, 'S'},
		{NULL, 0, NULL, 0},
	};
	struct ds_snapshot_opts sopts = {0};
	struct ds_changes_opts copts = {0};
	ds_snapshot *snap = NULL;
	const char *storage = NULL;
	ds_error err, rerr;
	ds_tid tid;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "hqv", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			cmd_whatsnew_usage(stdout);
			return DS_EXIT_OK;
		case 'q':
			cli_verbosity = 0;
			break;
		case 'v':
			cli_verbosity++;
			break;
		case 'S':
			storage = optarg;
			break;
		default:
			cmd_whatsnew_usage(stderr);
			return DS_EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 1) {
		cli_errorf("whatsnew", "expected one TID, got %d arguments", argc);
		cmd_whatsnew_usage(stderr);
		return DS_EXIT_USAGE;
	}
	if (strlen(argv[0]) != 16 || ds_id_parse(argv[0], &tid) != DS_OK) {
		cli_errorf("whatsnew", "ERROR: transaction_id must be in the "
		           "16-character hexadecimal form (got '%s')", argv[0]);
		return DS_EXIT_USAGE;
	}
	if (storage == NULL && getenv("SNAPSHOT_VERSION") == NULL) {
		cli_errorf("whatsnew", "ERROR: Run this tool under ds snapshot, "
		           "or give --storage DIR");
		return DS_EXIT_USAGE;
	}

	ds_error_clear(&err);
	sopts.log = cli_log;
	sopts.log_ctx = "whatsnew";
	sopts.quiet = 1;   /* a reader: misc/ is left as it was */
	/* the snapshot's own chatter only with -v */
	if (cli_verbosity < 2)
		sopts.log = NULL;
	if ((rc = ds_snapshot_acquire(storage, &sopts, &snap, &err)) != DS_OK)
		return cli_fail("whatsnew", &err);
	copts.log = cli_log;
	copts.log_ctx = "whatsnew";
	rc = ds_changes_walk(ds_snapshot_dir(snap), tid, &copts,
	                     whatsnew_print, NULL, NULL, &err);
	ds_error_clear(&rerr);
	if (ds_snapshot_release(snap, &rerr) != DS_OK)
		cli_fail("whatsnew", &rerr);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		cli_errorf("whatsnew", "writing the list to stdout failed");
		return DS_EXIT_IO;
	}
	if (rc == DS_EREFUSED) {
		cli_errorf("whatsnew", "ERROR: %s", err.msg);
		return DS_EXIT_FAIL;
	}
	if (rc != DS_OK)
		return cli_fail("whatsnew", &err);
	return DS_EXIT_OK;
}
