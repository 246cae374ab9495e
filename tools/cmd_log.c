/*
 * cmd_log.c - `ds log [--json] DIR`: the storage's transactions, newest
 * first, found by walking the previous-tid chain back from x.serial.
 *
 * It only reads files under A/ (through the layout and record codecs), so
 * it takes no lock. On a closed storage (journal/ and B/ empty, as the
 * original leaves it) that is the whole history. The walk ends at a zero
 * back pointer (the first transaction) or at a transaction file that a
 * pack removed (its tid is not later than x.packed); any other missing or
 * bad transaction file is an error.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"

void
cmd_log_usage(FILE *out)
{
	fprintf(out,
	        "usage: ds log [--json] [-q] [-n COUNT] DIR\n\n"
	        "List the transactions of the storage in DIR, newest first: "
	        "tid, time (GMT),\nnumber of objects written, user and "
	        "description. The history is found by\nwalking the back "
	        "pointers of the transaction files from x.serial; it ends at\n"
	        "the first transaction or at one removed by a pack.\n\n"
	        "Options:\n"
	        "  --json            one JSON object for the whole history\n"
	        "  -n, --max-count N stop after N transactions (0: none)\n"
	        "  -q, --quiet       no closing line saying where the "
	        "history ends\n"
	        "  -v, --verbose     also show each transaction's back "
	        "pointer\n"
	        "  -h, --help        show this help\n");
}

/* Read and decode A/<name> of home in layout. *buf is malloc'd and owns
 * what the decoded value points into. */
static int
log_read(const char *home, ds_layout layout, const char *name, char *path,
         size_t pathsz, unsigned char **buf, size_t *len, ds_error *err)
{
	char rel[DS_RELPATH_MAX];
	int rc;

	if ((rc = ds_layout_name_to_path(layout, name, rel, sizeof(rel), err))
	    != DS_OK)
		return rc;
	if ((size_t)snprintf(path, pathsz, "%s/A/%s", home, rel) >= pathsz)
		return ds_error_set(err, DS_EINVAL, "%s/A/%s: path too long",
		                     home, rel);
	return ds_file_read(path, 0, buf, len, err);
}

static int
log_read_x(const char *home, ds_layout layout, const char *name,
           uint64_t *v, ds_error *err)
{
	char path[PATH_MAX];
	unsigned char *buf = NULL;
	size_t len;
	int rc;

	if ((rc = log_read(home, layout, name, path, sizeof(path), &buf, &len,
	                   err)) == DS_OK)
		rc = ds_xfile_decode(buf, len, path, v, err);
	free(buf);
	return rc;
}

int
cmd_log(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{"json", no_argument, NULL, 'j'},
		{"max-count", required_argument, NULL, 'n'},
		{"quiet", no_argument, NULL, 'q'},
		{"verbose", no_argument, NULL, 'v'},
		{NULL, 0, NULL, 0},
	};
	ds_config cfg;
	ds_error err;
	ds_tid tid, serial = 0, packed = 0;
	char name[DS_NAME_MAX], path[PATH_MAX], hex[17], prevhex[17];
	char when[32], *end;
	unsigned char *buf = NULL;
	size_t len, count = 0;
	long max = -1;
	json_t *root = NULL, *list = NULL, *t;
	const char *home, *reason;
	int ch, json = 0, rc = DS_EXIT_OK;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "hjn:qv", longopts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			cmd_log_usage(stdout);
			return DS_EXIT_OK;
		case 'j':
			json = 1;
			break;
		case 'q':
			cli_verbosity = 0;
			break;
		case 'v':
			cli_verbosity++;
			break;
		case 'n':
			max = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || max < 0) {
				cli_errorf("log", "-n wants a count, not '%s'",
				           optarg);
				return DS_EXIT_USAGE;
			}
			break;
		default:
			cmd_log_usage(stderr);
			return DS_EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		cli_errorf("log", "expected one storage directory");
		cmd_log_usage(stderr);
		return DS_EXIT_USAGE;
	}
	home = argv[optind];
	ds_error_clear(&err);
	if (ds_config_load(home, &cfg, &err) != DS_OK ||
	    log_read_x(home, cfg.layout, "x.serial", &serial, &err) != DS_OK ||
	    log_read_x(home, cfg.layout, "x.packed", &packed, &err) != DS_OK)
		return cli_fail("log", &err);

	if (json) {
		root = json_object();
		list = json_array();
		if (root == NULL || list == NULL) {
			json_decref(root);
			json_decref(list);
			cli_errorf("log", "out of memory");
			return DS_EXIT_IO;
		}
		json_object_set_new(root, "storage", json_string(home));
		json_object_set_new(root, "format",
		                    json_string(ds_layout_str(cfg.layout)));
		json_object_set_new(root, "x.serial", cli_json_id(serial));
		json_object_set_new(root, "x.packed", cli_json_id(packed));
		json_object_set_new(root, "transactions", list);
	}

	for (tid = serial; tid != 0;) {
		ds_txnrec r;

		if (max >= 0 && count >= (size_t)max)
			break;
		ds_name_transaction(tid, name);
		free(buf);
		buf = NULL;
		rc = log_read(home, cfg.layout, name, path, sizeof(path), &buf,
		              &len, &err);
		if (rc == DS_ENOTFOUND && tid <= packed) {
			rc = DS_OK;
			break;          /* removed by a pack: the end */
		}
		if (rc != DS_OK) {
			if (rc == DS_ENOTFOUND)
				ds_error_set(&err, DS_ECORRUPT, "%s: transaction "
				              "file missing (the chain from "
				              "x.serial leads here, and it is later "
				              "than x.packed)", path);
			break;
		}
		if ((rc = ds_txnrec_decode(buf, len, path, &r, &err)) != DS_OK)
			break;
		if (r.tid != tid) {
			ds_id_format(r.tid, hex);
			rc = ds_error_set(&err, DS_ECORRUPT, "%s: holds "
			                   "transaction %s, not %s", path, hex,
			                   name);
			break;
		}
		if (r.prev_tid >= r.tid) {
			ds_id_format(r.prev_tid, prevhex);
			rc = ds_error_set(&err, DS_ECORRUPT, "%s: back pointer "
			                   "%s is not earlier than the "
			                   "transaction itself", path, prevhex);
			break;
		}
		ds_id_format(tid, hex);
		cli_tid_time(tid, when);
		if (json) {
			t = json_object();
			json_object_set_new(t, "tid", json_string(hex));
			json_object_set_new(t, "time", json_string(when));
			json_object_set_new(t, "prev_tid", cli_json_id(r.prev_tid));
			json_object_set_new(t, "user",
			                    cli_json_bytes(r.user, r.user_len));
			json_object_set_new(t, "description", cli_json_bytes(
			                    r.description, r.description_len));
			json_object_set_new(t, "extension_len",
			                    json_integer((json_int_t)r.extension_len));
			json_object_set_new(t, "objects",
			                    json_integer((json_int_t)r.noids));
			json_array_append_new(list, t);
		} else {
			printf("%s  %s  %4zu object%s  ", hex, when, r.noids,
			       r.noids == 1 ? " " : "s");
			cli_print_quoted(stdout, r.user, r.user_len);
			putchar(' ');
			cli_print_quoted(stdout, r.description,
			                 r.description_len);
			if (cli_verbosity >= 2) {
				ds_id_format(r.prev_tid, prevhex);
				printf("  prev %s", prevhex);
			}
			putchar('\n');
		}
		count++;
		tid = r.prev_tid;
	}
	free(buf);
	if (rc != DS_OK) {
		fflush(stdout);
		json_decref(root);
		return cli_fail("log", &err);
	}

	ds_id_format(tid, hex);
	if (max >= 0 && tid != 0 && count >= (size_t)max)
		reason = "limit";
	else if (tid == 0)
		reason = "first";       /* zero back pointer */
	else
		reason = "packed";
	if (json) {
		json_object_set_new(root, "count", json_integer((json_int_t)count));
		json_object_set_new(root, "chain_end", json_string(hex));
		json_object_set_new(root, "end", json_string(reason));
		json_dumpf(root, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(root);
	} else if (cli_verbosity < 1) {
		;                       /* -q: the transactions only */
	} else if (strcmp(reason, "first") == 0) {
		printf("-- %zu transaction%s; the history starts here (zero "
		       "back pointer)\n", count, count == 1 ? "" : "s");
	} else if (strcmp(reason, "packed") == 0) {
		ds_id_format(packed, prevhex);
		printf("-- %zu transaction%s; the chain continues to %s, a "
		       "transaction removed by a pack (x.packed %s)\n", count,
		       count == 1 ? "" : "s", hex, prevhex);
	} else {
		printf("-- %zu transaction%s shown (limit); older ones "
		       "follow from %s\n", count, count == 1 ? "" : "s", hex);
	}
	return DS_EXIT_OK;
}
