/*
 * cmd_history.c - `ds history [--json] [-n N] DIR OID`: an object's
 * revisions, newest first, with the metadata of the transaction that
 * wrote each (the original's Full.history).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"

void
cmd_history_usage(FILE *out)
{
	fprintf(out,
	        "usage: ds history [--json] [-n COUNT] DIR OID\n\n"
	        "List the revisions of object OID (16 hex digits) in the "
	        "storage in DIR,\nnewest first, one per line, fields separated "
	        "by a tab:\n"
	        "  SERIAL  TIME(GMT)  SIZE  UNDO_FROM  USER  DESCRIPTION\n"
	        "SIZE is the pickle's length (0: creation undone), UNDO_FROM "
	        "the serial an\nundo copied the revision from (or -); USER "
	        "and DESCRIPTION are quoted\n(\\xNN for bytes outside "
	        "printable ASCII), '?' when a pack removed the\ntransaction "
	        "file.\n\n"
	        "Options:\n"
	        "  --json              one JSON array instead\n"
	        "  -n, --max-count N   at most N revisions (0: none)\n"
	        "  -q, --quiet         accepted for symmetry; no effect\n"
	        "  -v, --verbose       accepted for symmetry; no effect\n"
	        "  -h, --help          show this help\n");
}

int
cmd_history(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{"json", no_argument, NULL, 'j'},
		{"max-count", required_argument, NULL, 'n'},
		{"quiet", no_argument, NULL, 'q'},
		{"verbose", no_argument, NULL, 'v'},
		{NULL, 0, NULL, 0},
	};
	ds_storage *s = NULL;
	ds_history_entry *h = NULL;
	ds_error err;
	ds_oid oid;
	size_t n = 0, shown;
	long max = -1;   /* -1: every revision; -n 0 shows none, as ds log */
	char *end, hex[17], uf[17], when[32];
	int ch, json = 0;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "hjn:qv", longopts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			cmd_history_usage(stdout);
			return DS_EXIT_OK;
		case 'j':
			json = 1;
			break;
		case 'n':
			max = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || max < 0) {
				cli_errorf("history", "-n wants a count, not "
				           "'%s'", optarg);
				return DS_EXIT_USAGE;
			}
			break;
		case 'q':
			cli_verbosity = 0;
			break;
		case 'v':
			cli_verbosity++;
			break;
		default:
			cmd_history_usage(stderr);
			return DS_EXIT_USAGE;
		}
	}
	ch = cli_operands_dir_id("history", argc, argv, "oid", cmd_history_usage, &oid);
	if (ch != DS_EXIT_OK)
		return ch;
	ds_error_clear(&err);
	if (ds_storage_open(argv[optind], DS_OPEN_READONLY, &s, &err) != DS_OK)
		return cli_fail("history", &err);
	/* the library's 0 means no limit; -n 0 still asks for one revision
	 * so that a missing object is an error, then shows none */
	if (ds_storage_history(s, oid, max < 0 ? 0 : max == 0 ? 1 : (size_t)max,
	                       &h, &n, &err) != DS_OK) {
		ds_storage_close(s, 0, NULL);
		return cli_fail("history", &err);
	}
	shown = max == 0 ? 0 : n;
	if (json) {
		json_t *arr = json_array();
		for (size_t i = 0; arr != NULL && i < shown; i++) {
			json_t *o = json_object();
			cli_tid_time(h[i].serial, when);
			json_object_set_new(o, "serial", cli_json_id(h[i].serial));
			json_object_set_new(o, "time", json_string(when));
			json_object_set_new(o, "size", json_integer((json_int_t)h[i].size));
			json_object_set_new(o, "prev_serial",
			                    cli_json_id(h[i].prev_serial));
			json_object_set_new(o, "undo_from",
			                    cli_json_id(h[i].undo_from));
			if (h[i].txn_known) {
				json_object_set_new(o, "user",
				    cli_json_bytes(h[i].user, strlen(h[i].user)));
				json_object_set_new(o, "description",
				    cli_json_bytes(h[i].description,
				                   strlen(h[i].description)));
				json_object_set_new(o, "extension_len",
				    json_integer((json_int_t)h[i].extension_len));
			} else {
				json_object_set_new(o, "user", json_null());
				json_object_set_new(o, "description",
				                    json_null());
			}
			json_array_append_new(arr, o);
		}
		if (arr == NULL || json_dumpf(arr, stdout, JSON_INDENT(1)) != 0) {
			json_decref(arr);
			ds_history_free(h, n);
			ds_storage_close(s, 0, NULL);
			cli_errorf("history", "cannot write JSON");
			return DS_EXIT_IO;
		}
		fputc('\n', stdout);
		json_decref(arr);
	} else {
		for (size_t i = 0; i < shown; i++) {
			ds_id_format(h[i].serial, hex);
			if (h[i].undo_from)
				ds_id_format(h[i].undo_from, uf);
			else
				snprintf(uf, sizeof(uf), "-");
			cli_tid_time(h[i].serial, when);
			printf("%s\t%s\t%zu\t%s\t", hex, when, h[i].size, uf);
			if (h[i].txn_known) {
				cli_print_quoted(stdout, h[i].user,
				                 strlen(h[i].user));
				fputc('\t', stdout);
				cli_print_quoted(stdout, h[i].description,
				                 strlen(h[i].description));
			} else {
				fputs("?\t?", stdout);
			}
			fputc('\n', stdout);
		}
	}
	ds_history_free(h, n);
	if (ds_storage_close(s, 0, &err) != DS_OK)
		return cli_fail("history", &err);
	return DS_EXIT_OK;
}
