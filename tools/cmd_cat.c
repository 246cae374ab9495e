/*
 * cmd_cat.c - `ds cat DIR OID [--serial TID | --before TID]`: write an
 * object's pickle to standard output: the current revision, the revision
 * written by transaction TID, or the one current just before TID.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void
cmd_cat_usage(FILE *out)
{
	fprintf(out,
	        "usage: ds cat [-v] DIR OID [--serial TID | --before TID]\n\n"
	        "Write the pickle of object OID (16 hex digits) of the storage "
	        "in DIR to\nstandard output: its current revision, the "
	        "revision with serial TID, or\nthe revision that was current "
	        "just before transaction TID. md5 checked as\n[md5policy] "
	        "read says. An object whose creation was undone does not "
	        "exist.\n\n"
	        "Options:\n"
	        "  -s, --serial TID   the revision written by transaction TID\n"
	        "  -b, --before TID   the revision current before TID\n"
	        "  -v, --verbose      print 'serial <TID> next <TID>' on "
	        "standard error\n"
	        "  -q, --quiet        accepted for symmetry; no effect\n"
	        "  -h, --help         show this help\n\n"
	        "Exit status: 0 printed; 1 no such object/revision or corrupt; "
	        "2 usage;\n3 the storage is locked by another process; 4 I/O "
	        "error.\n");
}

int
cmd_cat(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{"serial", required_argument, NULL, 's'},
		{"before", required_argument, NULL, 'b'},
		{"quiet", no_argument, NULL, 'q'},
		{"verbose", no_argument, NULL, 'v'},
		{NULL, 0, NULL, 0},
	};
	ds_storage *s = NULL;
	ds_error err;
	ds_oid oid;
	ds_tid at = 0, serial = 0, next = 0;
	unsigned char *pk = NULL;
	size_t len = 0;
	int ch, mode = 0, rc;
	char h1[17], h2[17];

	optind = 1;
	while ((ch = getopt_long(argc, argv, "hs:b:qv", longopts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			cmd_cat_usage(stdout);
			return DS_EXIT_OK;
		case 's':
		case 'b':
			if (mode != 0 || ds_id_parse(optarg, &at) != DS_OK) {
				cli_errorf("cat", mode ? "--serial and --before "
				           "exclude each other" : "'%s' is not a "
				           "tid (16 hex digits)", optarg);
				return DS_EXIT_USAGE;
			}
			mode = ch;
			break;
		case 'q':
			cli_verbosity = 0;
			break;
		case 'v':
			cli_verbosity++;
			break;
		default:
			cmd_cat_usage(stderr);
			return DS_EXIT_USAGE;
		}
	}
	ch = cli_operands_dir_id("cat", argc, argv, "oid", cmd_cat_usage, &oid);
	if (ch != DS_EXIT_OK)
		return ch;
	ds_error_clear(&err);
	if (ds_storage_open(argv[optind], DS_OPEN_READONLY, &s, &err) != DS_OK)
		return cli_fail("cat", &err);
	if (mode == 's') {
		rc = ds_storage_load_serial(s, oid, at, &pk, &len, &err);
		serial = at;
	} else if (mode == 'b') {
		rc = ds_storage_load_before(s, oid, at, &pk, &len, &serial,
		                            &next, &err);
	} else {
		rc = ds_storage_load(s, oid, &pk, &len, &serial, &err);
	}
	if (rc != DS_OK) {
		ds_storage_close(s, 0, NULL);
		return cli_fail("cat", &err);
	}
	if (fwrite(pk, 1, len, stdout) != len || fflush(stdout) != 0) {
		free(pk);
		ds_storage_close(s, 0, NULL);
		cli_errorf("cat", "write to standard output failed");
		return DS_EXIT_IO;
	}
	free(pk);
	if (cli_verbosity > 1) {
		ds_id_format(serial, h1);
		ds_id_format(next, h2);
		fprintf(stderr, "serial %s next %s\n", h1, h2);
	}
	if (ds_storage_close(s, 0, &err) != DS_OK)
		return cli_fail("cat", &err);
	return DS_EXIT_OK;
}
