/*
 * cmd_undo.c - `ds undo [-u USER] [-m DESCRIPTION] DIR TID`: undo
 * transaction TID in a new transaction, as the original's
 * transactionalUndo: every object it wrote gets its previous revision
 * back (bytes 16-23 name the revision copied; an object it created gets a
 * "creation undone" revision). Refused when a later transaction changed
 * one of those objects. Prints the new tid.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void
cmd_undo_usage(FILE *out)
{
	fprintf(out,
	        "usage: ds undo [-q] [-u USER] [-m DESCRIPTION] DIR TID\n\n"
	        "Undo transaction TID (16 hex digits) of the storage in DIR in "
	        "a new\ntransaction, and print the new transaction's tid. By "
	        "default its\ndescription is 'undo of TID' and its extension "
	        "{'undo': 'tid'}.\nRefused (exit 1) when a later transaction "
	        "modified one of the objects.\n\n"
	        "Options:\n"
	        "  -u, --user USER      the new transaction's user name\n"
	        "  -m, --message TEXT   its description\n"
	        "  -v, --verbose        also list the oids undone\n"
	        "  -q, --quiet          print nothing but errors\n"
	        "  -h, --help           show this help\n");
}

int
cmd_undo(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{"user", required_argument, NULL, 'u'},
		{"message", required_argument, NULL, 'm'},
		{"quiet", no_argument, NULL, 'q'},
		{"verbose", no_argument, NULL, 'v'},
		{NULL, 0, NULL, 0},
	};
	const char *user = "";
	char desc[64], lower[17], hex[17];
	const char *description = NULL;
	char key[] = "undo";
	char *keys[1] = {key}, *vals[1] = {lower};
	unsigned char *ext = NULL;
	size_t extlen = 0, noids = 0;
	ds_storage *s = NULL;
	ds_txn *t = NULL;
	ds_oid *oids = NULL;
	ds_error err;
	ds_tid tid, newtid;
	int ch, rc;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "hu:m:qv", longopts, NULL)) !=
	       -1) {
		switch (ch) {
		case 'h':
			cmd_undo_usage(stdout);
			return DS_EXIT_OK;
		case 'u':
			user = optarg;
			break;
		case 'm':
			description = optarg;
			break;
		case 'q':
			cli_verbosity = 0;
			break;
		case 'v':
			cli_verbosity++;
			break;
		default:
			cmd_undo_usage(stderr);
			return DS_EXIT_USAGE;
		}
	}
	ch = cli_operands_dir_id("undo", argc, argv, "tid", cmd_undo_usage, &tid);
	if (ch != DS_EXIT_OK)
		return ch;
	ds_id_format(tid, hex);
	for (int i = 0; i < 17; i++)
		lower[i] = (char)(hex[i] >= 'A' && hex[i] <= 'F' ? hex[i] + 32
		                                                 : hex[i]);
	snprintf(desc, sizeof(desc), "undo of %s", hex);
	if (description == NULL)
		description = desc;
	if (cli_pickle_strdict(keys, vals, 1, &ext, &extlen) != DS_OK) {
		cli_errorf("undo", "out of memory");
		return DS_EXIT_IO;
	}
	ds_error_clear(&err);
	if (ds_storage_open(argv[optind], 0, &s, &err) != DS_OK) {
		free(ext);
		return cli_fail("undo", &err);
	}
	if (ds_txn_begin(s, user, description, ext, extlen, &t, &err) != DS_OK)
		goto fail;
	if (ds_txn_undo(t, tid, &oids, &noids, &err) != DS_OK)
		goto fail;
	rc = ds_txn_finish(t, &newtid, &err);
	t = NULL;
	if (rc != DS_OK)
		goto fail;
	if (cli_verbosity > 0) {
		ds_id_format(newtid, hex);
		printf("%s\n", hex);
		for (size_t i = 0; cli_verbosity > 1 && i < noids; i++) {
			ds_id_format(oids[i], hex);
			printf("undone %s\n", hex);
		}
		fflush(stdout);
	}
	free(oids);
	free(ext);
	if (ds_storage_close(s, 0, &err) != DS_OK)
		return cli_fail("undo", &err);
	return DS_EXIT_OK;
fail:
	rc = cli_fail("undo", &err);
	ds_txn_abort(t);
	ds_storage_close(s, 0, NULL);
	free(oids);
	free(ext);
	return rc;
}
