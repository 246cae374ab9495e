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

/* One listing: the storage, where the walk is, what it has printed. */
struct log_run {
	const char *home;
	ds_config cfg;
	ds_tid serial, packed;
	ds_tid tid;                /* the next transaction to show (0: none) */
	long max;                  /* -n (-1: no limit) */
	size_t count;              /* shown so far */
	int json;
	json_t *root, *list;       /* --json */
	unsigned char *buf;        /* the current transaction's file */
};

/* The options into run (optind then points at the operands). Returns -1,
 * or the exit code. */
static int
log_options(int argc, char **argv, struct log_run *run)
{
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{"json", no_argument, NULL, 'j'},
		{"max-count", required_argument, NULL, 'n'},
		{"quiet", no_argument, NULL, 'q'},
		{"verbose", no_argument, NULL, 'v'},
		{NULL, 0, NULL, 0},
	};
	char *end;
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "hjn:qv", longopts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			cmd_log_usage(stdout);
			return DS_EXIT_OK;
		case 'j':
			run->json = 1;
			break;
		case 'q':
			cli_verbosity = 0;
			break;
		case 'v':
			cli_verbosity++;
			break;
		case 'n':
			run->max = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || run->max < 0) {
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
	run->home = argv[optind];
	return -1;
}

/* --json: the object the transactions are added to. */
static int
log_json_start(struct log_run *run)
{
	run->root = json_object();
	run->list = json_array();
	if (run->root == NULL || run->list == NULL) {
		json_decref(run->root);
		json_decref(run->list);
		run->root = run->list = NULL;
		cli_errorf("log", "out of memory");
		return DS_EXIT_IO;
	}
	json_object_set_new(run->root, "storage", json_string(run->home));
	json_object_set_new(run->root, "format",
	                    json_string(ds_layout_str(run->cfg.layout)));
	json_object_set_new(run->root, "x.serial", cli_json_id(run->serial));
	json_object_set_new(run->root, "x.packed", cli_json_id(run->packed));
	json_object_set_new(run->root, "transactions", run->list);
	return -1;
}

/* Read run->tid's transaction file into *r (pointing into run->buf).
 * *end: the chain stops here, at a transaction a pack removed. */
static int
log_txn(struct log_run *run, ds_txnrec *r, int *end, ds_error *err)
{
	char name[DS_NAME_MAX], path[PATH_MAX], hex[17];
	size_t len;
	int rc;

	ds_name_transaction(run->tid, name);
	free(run->buf);
	run->buf = NULL;
	rc = log_read(run->home, run->cfg.layout, name, path, sizeof(path),
	              &run->buf, &len, err);
	if (rc == DS_ENOTFOUND && run->tid <= run->packed) {
		*end = 1;       /* removed by a pack: the end */
		return DS_OK;
	}
	if (rc == DS_ENOTFOUND)
		return ds_error_set(err, DS_ECORRUPT, "%s: transaction file "
		                    "missing (the chain from x.serial leads "
		                    "here, and it is later than x.packed)", path);
	if (rc != DS_OK)
		return rc;
	if ((rc = ds_txnrec_decode(run->buf, len, path, r, err)) != DS_OK)
		return rc;
	if (r->tid != run->tid) {
		ds_id_format(r->tid, hex);
		return ds_error_set(err, DS_ECORRUPT, "%s: holds transaction "
		                    "%s, not %s", path, hex, name);
	}
	if (r->prev_tid >= r->tid) {
		ds_id_format(r->prev_tid, hex);
		return ds_error_set(err, DS_ECORRUPT, "%s: back pointer %s is "
		                    "not earlier than the transaction itself",
		                    path, hex);
	}
	return DS_OK;
}

/* Show one transaction: a line, or an object of the --json list. */
static void
log_show(struct log_run *run, const ds_txnrec *r)
{
	char hex[17], prevhex[17], when[32];
	json_t *t;

	ds_id_format(run->tid, hex);
	cli_tid_time(run->tid, when);
	if (run->json) {
		t = json_object();
		json_object_set_new(t, "tid", json_string(hex));
		json_object_set_new(t, "time", json_string(when));
		json_object_set_new(t, "prev_tid", cli_json_id(r->prev_tid));
		json_object_set_new(t, "user",
		                    cli_json_bytes(r->user, r->user_len));
		json_object_set_new(t, "description", cli_json_bytes(
		                    r->description, r->description_len));
		json_object_set_new(t, "extension_len",
		                    json_integer((json_int_t)r->extension_len));
		json_object_set_new(t, "objects",
		                    json_integer((json_int_t)r->noids));
		json_array_append_new(run->list, t);
		return;
	}
	printf("%s  %s  %4zu object%s  ", hex, when, r->noids,
	       r->noids == 1 ? " " : "s");
	cli_print_quoted(stdout, r->user, r->user_len);
	putchar(' ');
	cli_print_quoted(stdout, r->description, r->description_len);
	if (cli_verbosity >= 2) {
		ds_id_format(r->prev_tid, prevhex);
		printf("  prev %s", prevhex);
	}
	putchar('\n');
}

/* Walk the chain back from x.serial, showing each transaction, until its
 * start, a pack, or the -n limit. */
static int
log_walk(struct log_run *run, ds_error *err)
{
	ds_txnrec r;
	int rc, end = 0;

	for (run->tid = run->serial; run->tid != 0;) {
		if (run->max >= 0 && run->count >= (size_t)run->max)
			break;
		rc = log_txn(run, &r, &end, err);
		if (rc != DS_OK)
			return rc;
		if (end)
			break;
		log_show(run, &r);
		run->count++;
		run->tid = r.prev_tid;
	}
	return DS_OK;
}

/* Where the listing ended, and why: the JSON's last fields, or a
 * closing line (none with -q). */
static void
log_end(struct log_run *run)
{
	const char *reason;
	char hex[17], packedhex[17];
	size_t count = run->count;

	ds_id_format(run->tid, hex);
	if (run->max >= 0 && run->tid != 0 && count >= (size_t)run->max)
		reason = "limit";
	else if (run->tid == 0)
		reason = "first";       /* zero back pointer */
	else
		reason = "packed";
	if (run->json) {
		json_object_set_new(run->root, "count",
		                    json_integer((json_int_t)count));
		json_object_set_new(run->root, "chain_end", json_string(hex));
		json_object_set_new(run->root, "end", json_string(reason));
		json_dumpf(run->root, stdout, JSON_INDENT(2));
		putchar('\n');
	} else if (cli_verbosity < 1) {
		;                       /* -q: the transactions only */
	} else if (strcmp(reason, "first") == 0) {
		printf("-- %zu transaction%s; the history starts here (zero "
		       "back pointer)\n", count, count == 1 ? "" : "s");
	} else if (strcmp(reason, "packed") == 0) {
		ds_id_format(run->packed, packedhex);
		printf("-- %zu transaction%s; the chain continues to %s, a "
		       "transaction removed by a pack (x.packed %s)\n", count,
		       count == 1 ? "" : "s", hex, packedhex);
	} else {
		printf("-- %zu transaction%s shown (limit); older ones "
		       "follow from %s\n", count, count == 1 ? "" : "s", hex);
	}
}

int
cmd_log(int argc, char **argv)
{
	struct log_run run;
	ds_error err;
	int ex;

	memset(&run, 0, sizeof(run));
	run.max = -1;
	ex = log_options(argc, argv, &run);
	if (ex >= 0)
		return ex;
	ds_error_clear(&err);
	if (ds_config_load(run.home, &run.cfg, &err) != DS_OK ||
	    log_read_x(run.home, run.cfg.layout, "x.serial", &run.serial,
	               &err) != DS_OK ||
	    log_read_x(run.home, run.cfg.layout, "x.packed", &run.packed,
	               &err) != DS_OK)
		return cli_fail("log", &err);
	if (run.json && (ex = log_json_start(&run)) >= 0)
		return ex;
	if (log_walk(&run, &err) != DS_OK) {
		free(run.buf);
		fflush(stdout);
		json_decref(run.root);
		return cli_fail("log", &err);
	}
	free(run.buf);
	log_end(&run);
	json_decref(run.root);
	return DS_EXIT_OK;
}
