/*
 * cmd_newoid.c - `ds new-oid DIR [N]`: allocate N (default 1) new oids
 * and make the allocation durable (x.oid written through the journal), so
 * that no later allocation returns them again. One oid per line, 16
 * uppercase hex digits.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void
cmd_newoid_usage(FILE *out)
{
	fprintf(out,
	        "usage: ds new-oid [-q] [-v] [--wait SECONDS] DIR [N]\n\n"
	        "Allocate N (default 1, at most 1000000) new object ids in the "
	        "storage in DIR\nand print them, one per line (16 uppercase hex "
	        "digits). The allocation is\ndurable: x.oid is committed "
	        "through the journal before they are printed.\n\n"
	        "Options:\n"
	        "  -q, --quiet   allocate, print nothing\n"
	        "      --wait SECONDS  when the storage is in use (locked by "
	        "another process),\n"
	        "                retry for up to SECONDS before exit 3 "
	        "(default 0)\n"
	        "  -v, --verbose say when waiting for the storage\n"
	        "  -h, --help    show this help\n");
}

int
cmd_newoid(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{"quiet", no_argument, NULL, 'q'},
		{"verbose", no_argument, NULL, 'v'},
		{"wait", required_argument, NULL, 'W'},
		{NULL, 0, NULL, 0},
	};
	unsigned wait = 0;
	ds_storage *s = NULL;
	ds_error err;
	ds_oid first = 0, o;
	long n = 1;
	char *end, hex[17];
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "hqv", longopts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			cmd_newoid_usage(stdout);
			return DS_EXIT_OK;
		case 'q':
			cli_verbosity = 0;
			break;
		case 'v':
			cli_verbosity++;
			break;
		case 'W':
			if (cli_parse_seconds("new-oid", "--wait", optarg,
			                      &wait) != DS_EXIT_OK)
				return DS_EXIT_USAGE;
			break;
		default:
			cmd_newoid_usage(stderr);
			return DS_EXIT_USAGE;
		}
	}
	if (argc - optind < 1 || argc - optind > 2) {
		cli_errorf("new-oid", "expected a storage directory and an "
		           "optional count");
		cmd_newoid_usage(stderr);
		return DS_EXIT_USAGE;
	}
	if (argc - optind == 2) {
		const char *a = argv[optind + 1];
		n = strtol(a, &end, 10);
		if (*a == '\0' || *end != '\0' || n < 1 || n > 1000000) {
			cli_errorf("new-oid", "N must be 1 to 1000000, not '%s'",
			           a);
			return DS_EXIT_USAGE;
		}
	}
	ds_error_clear(&err);
	if (cli_storage_open("new-oid", argv[optind], 0, wait, &s,
	                     &err) != DS_OK)
		return cli_fail("new-oid", &err);
	for (long i = 0; i < n; i++) {
		if (ds_storage_new_oid(s, &o, &err) != DS_OK)
			goto fail;
		if (i == 0)
			first = o;
	}
	if (ds_storage_save_oid(s, &err) != DS_OK)
		goto fail;
	if (ds_storage_close(s, 0, &err) != DS_OK)
		return cli_fail("new-oid", &err);
	if (cli_verbosity > 0)
		for (long i = 0; i < n; i++) {
			ds_id_format(first + (ds_oid)i, hex);
			printf("%s\n", hex);
		}
	return DS_EXIT_OK;
fail:
	ds_storage_close(s, DS_CLOSE_QUICK, NULL);
	return cli_fail("new-oid", &err);
}
