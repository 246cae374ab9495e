/* cmd_mkds.c - `ds mkds DIR [CLASS [FORMAT]]`: create an empty storage. */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"

void
cmd_mkds_usage(FILE *out)
{
	fprintf(out,
	        "usage: ds mkds [-q] [-v] DIR [CLASS [FORMAT]]\n\n"
	        "Create a new, empty DirectoryStorage in DIR, laid out exactly as "
	        "the original\nmkds.py lays it out. DIR must not exist.\n\n"
	        "  CLASS     Full (default) or Minimal\n"
	        "  FORMAT    bushy (default), chunky, lawn or flat\n\n"
	        "Options:\n"
	        "  -q, --quiet     print nothing on success\n"
	        "  -v, --verbose   say what was created\n"
	        "  -h, --help      show this help\n");
}

int
cmd_mkds(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{"quiet", no_argument, NULL, 'q'},
		{"verbose", no_argument, NULL, 'v'},
		{NULL, 0, NULL, 0},
	};
	const char *dir, *classname = "Full", *format = "bushy";
	ds_error err;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "hqv", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			cmd_mkds_usage(stdout);
			return DS_EXIT_OK;
		case 'q':
			cli_verbosity = 0;
			break;
		case 'v':
			cli_verbosity++;
			break;
		default:
			cmd_mkds_usage(stderr);
			return DS_EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1 || argc > 3) {
		cli_errorf("mkds", "expected DIR [CLASS [FORMAT]], got %d "
		           "argument%s", argc, argc == 1 ? "" : "s");
		cmd_mkds_usage(stderr);
		return DS_EXIT_USAGE;
	}
	dir = argv[0];
	if (argc > 1)
		classname = argv[1];
	if (argc > 2)
		format = argv[2];

	ds_error_clear(&err);
	rc = ds_storage_create(dir, classname, format, &err);
	if (rc != DS_OK) {
		/* A class or format the library does not know is a bad
		 * argument on our command line. */
		if (rc == DS_ECONFIG) {
			cli_fail("mkds", &err);
			return DS_EXIT_USAGE;
		}
		return cli_fail("mkds", &err);
	}
	if (cli_verbosity >= 2)
		fprintf(stderr, "ds mkds: created %s storage %s (format %s)\n",
		        classname, dir, format);
	else if (cli_verbosity >= 1)
		fprintf(stderr, "ds mkds: created %s\n", dir);
	return DS_EXIT_OK;
}
