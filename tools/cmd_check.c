/* cmd_check.c - `ds check DIR` (the original checkds.py) and
 * `ds check --compare MASTER REPLICA`. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void
cmd_check_usage(FILE *out)
{
	fprintf(out,
	        "usage: ds check [-q] [-v] [--wait SECONDS] [--storage] DIR\n"
	        "       ds check [-q] [-v] [--wait SECONDS] --compare MASTER "
	        "REPLICA\n\n"
	        "Check a storage while it is held in snapshot mode (taken "
	        "directly, through\nDIR/config/snapshot.conf, or reused under "
	        "`ds snapshot`): the x.* root files;\nthe whole transaction chain "
	        "from x.serial (magic, tid, length, md5, back\npointers down to "
	        "zero or to before x.packed); every object (its .c pointer\nnames "
	        "an existing revision; each revision's header, oid, serial and "
	        "md5, back to\nzero or to before x.packed); every file written "
	        "by a transaction later than\nthe last pack; and that every file "
	        "in A/ is accounted for. Pack leftovers\n(*-deleted) are counted, "
	        "not reported. Statistics go to stdout, problems to\nstderr.\n\n"
	        "--compare proves that REPLICA holds MASTER's history up to the "
	        "replica's\nx.serial, tolerating what a pack of the master "
	        "explains (files it removed,\nback pointers it rewrote, modes, "
	        "x.packed).\n\n"
	        "Exit: 0 clean; 1 problems found (or the replica differs); 3 the "
	        "storage is\nbusy; 2 usage.\n\n"
	        "Options:\n"
	        "  --storage DIR   the storage (same as giving DIR)\n"
	        "  --compare       compare MASTER and REPLICA\n"
	        "  --wait SECONDS  when a storage is in use (held by another "
	        "snapshot),\n"
	        "                  retry every second for up to SECONDS before "
	        "exit 3\n"
	        "                  (default 0; -v -v says so)\n"
	        "  -q, --quiet     print only problems\n"
	        "  -v, --verbose   also print progress\n"
	        "  -h, --help      show this help\n");
}

static void
check_print_stats(const struct ds_check_stats *st)
{
	const struct { unsigned long v; const char *what; } rows[] = {
		{st->transactions, "transactions"},
		{st->transaction_bytes, "bytes in transaction files"},
		{st->transactions_no_md5, "transaction files with no checksum"},
		{st->objects, "objects"},
		{st->revisions, "revisions of objects"},
		{st->object_bytes, "bytes in object files"},
		{st->revisions_no_md5, "object data files with no md5 checksum"},
		{st->undone_creations, "revisions whose creation was undone"},
		{st->revisions_without_txn,
		 "data files with no corresponding transaction file"},
		{st->legacy_pointers, "objects using the old 12 byte c-file format"},
		{st->pack_leftovers, "pack leftovers (*-deleted, expected)"},
		{st->pack_leftover_bytes, "bytes in pack leftovers"},
		{st->unfinished_pack, "files an unfinished pack left "
		                      "(older than x.packed, unreferenced)"},
		{st->cut_off, "files cut off by a broken history (ds check -v "
		              "lists them)"},
		{st->problems, "problems"},
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		printf("%10lu %s\n", rows[i].v, rows[i].what);
}

int
cmd_check(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{"quiet", no_argument, NULL, 'q'},
		{"verbose", no_argument, NULL, 'v'},
		{"storage", required_argument, NULL, 'S'},
		{"compare", no_argument, NULL, 'C'},
		{"wait", required_argument, NULL, 'W'},
		{NULL, 0, NULL, 0},
	};
	struct ds_snapshot_opts sopts = {0};
	struct ds_check_opts opts = {0};
	const char *storage = NULL;
	ds_error err;
	int c, rc, compare = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "hqv", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			cmd_check_usage(stdout);
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
		case 'C':
			compare = 1;
			break;
		case 'W':
			if (cli_parse_seconds("check", "--wait", optarg,
			                      &sopts.timeout) != DS_EXIT_OK)
				return DS_EXIT_USAGE;
			/* a storage in use is retried every second (the
			 * snapshot's default pause is 10 s) */
			sopts.sleep = 1;
			break;
		default:
			cmd_check_usage(stderr);
			return DS_EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	opts.log = cli_log;
	opts.log_ctx = "check";
	sopts.log = cli_verbosity >= 2 ? cli_log : NULL;
	sopts.log_ctx = "check";
	sopts.quiet = 1;   /* a reader: misc/ is left as it was */
	opts.snapshot = &sopts;
	ds_error_clear(&err);

	if (compare) {
		struct ds_compare_stats cs;

		if (argc != 2 || storage != NULL) {
			cli_errorf("check", "--compare wants MASTER REPLICA");
			return DS_EXIT_USAGE;
		}
		rc = ds_check_compare(argv[0], argv[1], &opts, &cs, &err);
		if (cli_verbosity >= 1 && rc != DS_EREFUSED) {
			printf("%10lu transactions of the master after the replica's\n"
			       "%10lu files compared\n"
			       "%10lu previous pointers rewritten by the master's "
			       "pack (tolerated)\n"
			       "%10lu files removed by the master's pack (tolerated)\n"
			       "%10lu mode differences (tolerated)\n"
			       "%10lu differences\n", cs.transactions,
			       cs.files_compared, cs.relinked, cs.pack_removed,
			       cs.mode_differences, cs.differences);
		}
		if (rc != DS_OK)
			return cli_fail("check", &err);
		if (cli_verbosity >= 1)
			fprintf(stderr, "ds check: %s equals %s's history up to its "
			        "last transaction\n", argv[1], argv[0]);
		return DS_EXIT_OK;
	}

	if (storage == NULL && argc == 1)
		storage = argv[0];
	else if (!(argc == 0 && (storage != NULL ||
	                         getenv("SNAPSHOT_VERSION") != NULL))) {
		cli_errorf("check", "expected one storage DIR");
		cmd_check_usage(stderr);
		return DS_EXIT_USAGE;
	}
	{
		struct ds_check_stats st;

		rc = ds_check(storage, &opts, &st, &err);
		if (cli_verbosity >= 1 && (rc == DS_OK || rc == DS_ECORRUPT))
			check_print_stats(&st);
		if (rc != DS_OK)
			return cli_fail("check", &err);
		if (cli_verbosity >= 1)
			fprintf(stderr, "ds check: %s: no problems found\n",
			        storage ? storage : getenv("SNAPSHOT_DIRECTORY"));
	}
	return DS_EXIT_OK;
}
