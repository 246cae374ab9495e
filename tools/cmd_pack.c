/*
 * cmd_pack.c - `ds pack DIR [--days N | --before TID]`: pack a Full
 * storage as the original's pack (ZODB's db.pack(t)) does; see
 * ds_storage_pack. Without an option the pack time is now, as
 * db.pack(); the storage's min_pack_time and its last transaction bound
 * it in every case.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

void
cmd_pack_usage(FILE *out)
{
	fprintf(out,
	        "usage: ds pack [-v] [-q] [--days N | --before TID] "
	        "[--ignore-replicas]\n"
	        "               [--slot-max-age DAYS] DIR\n\n"
	        "Pack the storage in DIR as the original DirectoryStorage's "
	        "pack: remove the\nrevisions older than the pack time that "
	        "are not current, the objects\nnot reachable from the "
	        "root then, and the transactions left with nothing\n(renamed "
	        "*-<unixtime>-deleted for [storage] delay_delete seconds). "
	        "The pack\ntime is now (default), N days ago, or the time of "
	        "transaction TID, and never\nlater than now - [storage] "
	        "min_pack_time or the last transaction. x.packed\nrecords it: "
	        "replicas older than that can no longer be brought up to date.\n"
	        "The storage is held in snapshot mode while it packs.\n"
	        "A replica that replicated from DIR has a replication slot "
	        "there (ds replica\n--slots DIR): the pack time is never "
	        "later than the transaction the oldest\nslot holds, so every "
	        "known replica can still be brought up to date.\n\n"
	        "Options:\n"
	        "  --days N       keep N days of history (a decimal number)\n"
	        "  --before TID   keep history from transaction TID on (16 hex "
	        "digits)\n"
	        "  --ignore-replicas\n"
	        "                 pack to the pack time even when replication "
	        "slots need\n"
	        "                 older history (those replicas will be "
	        "refused)\n"
	        "  --slot-max-age DAYS\n"
	        "                 slots not seen for more than DAYS days "
	        "hold nothing back\n"
	        "  -v, --verbose  say what each step does (-vv: and how long "
	        "it took)\n"
	        "  -q, --quiet    print nothing unless it fails\n"
	        "  -h, --help     show this help\n");
}

int
cmd_pack(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{"quiet", no_argument, NULL, 'q'},
		{"verbose", no_argument, NULL, 'v'},
		{"days", required_argument, NULL, 'D'},
		{"before", required_argument, NULL, 'B'},
		{"ignore-replicas", no_argument, NULL, 'I'},
		{"slot-max-age", required_argument, NULL, 'A'},
		{NULL, 0, NULL, 0},
	};
	struct ds_pack_opts opts;
	struct ds_pack_stats st;
	ds_storage *s = NULL;
	ds_error err;
	ds_tid before;
	double days = 0, max_age = 0;
	int ignore = 0;
	int ch, have_days = 0, have_before = 0, rc;
	char *end, hex[17], date[24];

	optind = 1;
	before = 0;
	while ((ch = getopt_long(argc, argv, "hqv", longopts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			cmd_pack_usage(stdout);
			return DS_EXIT_OK;
		case 'q':
			cli_verbosity = 0;
			break;
		case 'v':
			cli_verbosity++;
			break;
		case 'D':
			days = strtod(optarg, &end);
			if (*optarg == '\0' || *end != '\0' || !isfinite(days) ||
			    days < 0 || days > 1e6) {
				cli_errorf("pack", "--days must be a number of "
				           "days from 0, not '%s'", optarg);
				return DS_EXIT_USAGE;
			}
			have_days = 1;
			break;
		case 'I':
			ignore = 1;
			break;
		case 'A':
			max_age = strtod(optarg, &end);
			if (*optarg == '\0' || *end != '\0' ||
			    !isfinite(max_age) || max_age <= 0 ||
			    max_age > 1e6) {
				cli_errorf("pack", "--slot-max-age must be a "
				           "number of days above 0, not '%s'",
				           optarg);
				return DS_EXIT_USAGE;
			}
			break;
		case 'B':
			if (ds_id_parse(optarg, &before) != DS_OK) {
				cli_errorf("pack", "--before needs a tid of 16 "
				           "hex digits, not '%s'", optarg);
				return DS_EXIT_USAGE;
			}
			have_before = 1;
			break;
		default:
			cmd_pack_usage(stderr);
			return DS_EXIT_USAGE;
		}
	}
	if (have_days && have_before) {
		cli_errorf("pack", "give --days or --before, not both");
		return DS_EXIT_USAGE;
	}
	if (argc - optind != 1) {
		cli_errorf("pack", "expected one storage directory");
		cmd_pack_usage(stderr);
		return DS_EXIT_USAGE;
	}
	if (!have_before)
		before = ds_tid_from_time((double)time(NULL) - days * 86400.0);
	memset(&opts, 0, sizeof(opts));
	opts.log = cli_log;
	opts.log_ctx = (void *)"pack";
	opts.ignore_replicas = ignore;
	opts.slot_max_age = max_age * 86400.0;
	ds_error_clear(&err);
	if (ds_storage_open(argv[optind], 0, &s, &err) != DS_OK)
		return cli_fail("pack", &err);
	rc = ds_storage_pack(s, before, &opts, &st, &err);
	if (rc != DS_OK) {
		ds_storage_close(s, 0, NULL);
		return cli_fail("pack", &err);
	}
	if (ds_storage_close(s, 0, &err) != DS_OK)
		return cli_fail("pack", &err);
	if (cli_verbosity > 0 && st.held_by[0] != '\0') {
		char from[24], to[24], hf[17], ht[17];

		ds_id_format(st.held_from, hf);
		ds_tid_format(st.held_from, from);
		ds_id_format(st.threshold, ht);
		ds_tid_format(st.threshold, to);
		printf("Pack time held back from %s (%s) to %s (%s) by "
		       "replication slot '%s' (ds pack --ignore-replicas "
		       "or ds replica --forget NAME DIR to pack further)\n",
		       hf, from, ht, to, st.held_by);
	}
	if (cli_verbosity > 0) {
		ds_id_format(st.threshold, hex);
		ds_tid_format(st.threshold, date);
		if (st.empty)
			printf("Pack time %s (%s): no root object, nothing "
			       "to pack\n", hex, date);
		else
			printf("Packed to %s (%s): kept %lu files (%lu "
			       "objects), removed %lu, relinked %lu "
			       "transactions, purged %lu old leftovers\n", hex,
			       date, st.files_kept, st.objects_kept,
			       st.files_removed, st.relinked,
			       st.leftovers_purged);
	}
	return DS_EXIT_OK;
}
