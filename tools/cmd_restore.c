/* cmd_restore.c - `ds restore [--no-check] FULL [INC...] DIR`: a new
 * storage from a full backup and incremental ones (ds_restore), ours or
 * the original backup.py's. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void
cmd_restore_usage(FILE *out)
{
	fprintf(out,
	        "usage: ds restore [-q] [-v] [--no-check] FULL [INCREMENTAL...] "
	        "DIR\n\n"
	        "Make the new storage DIR (which must not exist) from a full "
	        "backup and the\nincremental ones after it, in sequence order "
	        "(backup-8.tgz backup-8-to-10.tgz\nbackup-10-to-12.tgz; ds "
	        "backup's or the original backup.py's, gzip or zstd).\nEach "
	        "incremental archive must continue the history restored before "
	        "it. Members\nare checked before they are written: only regular "
	        "files and directories with\nrelative names, in a storage's "
	        "shape (top-level directories, config/ files,\nA/ database "
	        "files). The storage is built as DIR.restore-PID, checked as "
	        "ds check\ndoes, and renamed to DIR only when complete: a "
	        "failed restore leaves no DIR.\n\n"
	        "Options:\n"
	        "  --no-check      do not check the result (to recover what "
	        "a damaged backup\n"
	        "                  still holds)\n"
	        "  -q, --quiet     no messages unless it fails\n"
	        "  -v, --verbose   per archive\n"
	        "  -h, --help      show this help\n\n"
	        "Exit status: 0 restored and checked; 1 DIR exists, an archive "
	        "refused or not\ncontinuous, or the result fails the check; "
	        "2 usage; 4 system error.\n");
}

int
cmd_restore(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{"quiet", no_argument, NULL, 'q'},
		{"verbose", no_argument, NULL, 'v'},
		{"no-check", no_argument, NULL, 'N'},
		{NULL, 0, NULL, 0},
	};
	struct ds_restore_opts ropts = {0};
	struct ds_restore_stats st;
	ds_error err;
	char tid[17], when[32];
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "hqv", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			cmd_restore_usage(stdout);
			return DS_EXIT_OK;
		case 'q':
			cli_verbosity = 0;
			break;
		case 'v':
			cli_verbosity++;
			break;
		case 'N':
			ropts.no_check = 1;
			break;
		default:
			cmd_restore_usage(stderr);
			return DS_EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 2) {
		cli_errorf("restore", "expected a full backup, the incremental "
		           "ones, then the new storage directory");
		cmd_restore_usage(stderr);
		return DS_EXIT_USAGE;
	}
	ds_error_clear(&err);
	ropts.log = cli_log;
	ropts.log_ctx = "restore";
	rc = ds_restore((const char *const *)argv, (size_t)argc - 1,
	                argv[argc - 1], &ropts, &st, &err);
	if (rc != DS_OK)
		return cli_fail("restore", &err);
	if (cli_verbosity >= 1) {
		ds_id_format(st.tid, tid);
		cli_tid_time(st.tid, when);
		fprintf(stderr, "ds restore: %s: %lu archive%s, %lu files "
		        "(%llu bytes); last transaction %s %s%s\n",
		        argv[argc - 1], st.archives, st.archives == 1 ? "" : "s",
		        st.files, (unsigned long long)st.bytes, tid, when,
		        ropts.no_check ? "; not checked" : "; check passed");
	}
	return DS_EXIT_OK;
}
