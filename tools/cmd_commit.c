/*
 * cmd_commit.c - `ds commit [-u USER] [-m DESCRIPTION] [-x KEY=VALUE]...
 * DIR OID=FILE...`: store the given pickles as one transaction through the
 * engine (journal protocol, fsyncs, flush) and print its tid.
 *
 * OID is 16 hex digits, or `new` to allocate the next oid; OID@SERIAL=FILE
 * makes the store conditional on the object's current serial (16 zeros:
 * the object must not exist yet), failing with a conflict otherwise.
 * FILE `-` reads standard input (once). An OID given twice is a usage
 * error; `new` never allocates an oid given on the same command line (the
 * given ones are stored first and raise x.oid), and fails once ids are
 * exhausted.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void
cmd_commit_usage(FILE *out)
{
	fprintf(out,
	        "usage: ds commit [-q] [-v] [-u USER] [-m DESCRIPTION] "
	        "[-x KEY=VALUE]... [--wait SECONDS]\n"
	        "                 DIR OID[@SERIAL]=FILE...\n\n"
	        "Store each FILE's bytes (a pickle) as the new revision of OID, "
	        "all in one\ntransaction of the storage in DIR, and print the "
	        "transaction's tid (16\nuppercase hex digits) on the first "
	        "line of standard output.\n\n"
	        "  OID       16 hex digits, or 'new' for a newly allocated "
	        "oid (then a line\n            'new <OID> <FILE>' follows "
	        "the tid)\n"
	        "  @SERIAL   store only if the object's current serial is "
	        "SERIAL (16 zeros:\n            only if it does not exist); "
	        "otherwise the current one is used\n"
	        "  FILE      a file, or - for standard input\n\n"
	        "Options:\n"
	        "  -u, --user USER          the transaction's user name\n"
	        "  -m, --message TEXT       the transaction's description\n"
	        "  -x, --extension K=V      extension data (a pickled dict of "
	        "strings, as ZODB\n                           writes it); "
	        "repeatable\n"
	        "  -q, --quiet              print nothing but errors\n"
	        "      --wait SECONDS       when the storage is in use (locked by "
	        "another process),\n"
	        "                           retry for up to SECONDS before "
	        "exit 3 (default 0)\n"
	        "  -v, --verbose            say when waiting for the storage\n"
	        "  -h, --help               show this help\n\n"
	        "An OID may be given once. 'new' never reuses an oid in use "
	        "or given on the\nsame line; past FFFFFFFFFFFFFFFF it fails.\n\n"
	        "Exit status: 0 committed; 1 conflict, refused or oids "
	        "exhausted; 2 usage\n(also an OID given twice); 3 the storage "
	        "is locked by another process;\n4 I/O error.\n");
}

/* Read all of f into a malloc'd buffer. */
static int
commit_slurp(FILE *f, unsigned char **out, size_t *outlen)
{
	size_t cap = 65536, len = 0, n;
	unsigned char *b = malloc(cap), *nb;

	if (b == NULL)
		return ENOMEM;
	while ((n = fread(b + len, 1, cap - len, f)) > 0) {
		len += n;
		if (len == cap) {
			nb = realloc(b, cap * 2);
			if (nb == NULL) {
				free(b);
				return ENOMEM;
			}
			b = nb;
			cap *= 2;
		}
	}
	if (ferror(f)) {
		int e = errno ? errno : EIO;
		free(b);
		return e;
	}
	*out = b;
	*outlen = len;
	return 0;
}

struct commit_item {
	int is_new;
	ds_oid oid;
	int has_serial;
	ds_tid serial;
	const char *file;
	unsigned char *data;
	size_t len;
};

static int
commit_parse_item(const char *arg, struct commit_item *it)
{
	char head[64];
	const char *eq = strchr(arg, '=');
	char *at;
	size_t hl;

	memset(it, 0, sizeof(*it));
	if (eq == NULL || eq == arg || eq[1] == '\0')
		return -1;
	hl = (size_t)(eq - arg);
	if (hl >= sizeof(head))
		return -1;
	memcpy(head, arg, hl);
	head[hl] = '\0';
	it->file = eq + 1;
	at = strchr(head, '@');
	if (at != NULL) {
		*at = '\0';
		if (ds_id_parse(at + 1, &it->serial) != DS_OK)
			return -1;
		it->has_serial = 1;
	}
	if (strcmp(head, "new") == 0) {
		it->is_new = 1;
		return 0;
	}
	return ds_id_parse(head, &it->oid) == DS_OK ? 0 : -1;
}

/* The committed transaction's tid, then "new OID FILE" per new object. */
static void
commit_print(ds_tid tid, const struct commit_item *items, size_t nitems)
{
	char hex[17];

	ds_id_format(tid, hex);
	printf("%s\n", hex);
	for (size_t i = 0; i < nitems; i++)
		if (items[i].is_new) {
			ds_id_format(items[i].oid, hex);
			printf("new %s %s\n", hex, items[i].file);
		}
	fflush(stdout);
}

/* The options. */
struct commit_args {
	const char *user, *desc;
	char *xkeys[120], *xvals[120];
	size_t nx;
	unsigned wait;   /* --wait: seconds to retry a storage in use */
};

/* The options into a (optind then points at the operands). Returns -1,
 * or the exit code. */
static int
commit_options(int argc, char **argv, struct commit_args *a)
{
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{"user", required_argument, NULL, 'u'},
		{"message", required_argument, NULL, 'm'},
		{"extension", required_argument, NULL, 'x'},
		{"quiet", no_argument, NULL, 'q'},
		{"verbose", no_argument, NULL, 'v'},
		{"wait", required_argument, NULL, 'W'},
		{NULL, 0, NULL, 0},
	};
	int ch;

	a->user = a->desc = "";
	a->nx = 0;
	a->wait = 0;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "hu:m:x:qv", longopts, NULL)) !=
	       -1) {
		switch (ch) {
		case 'h':
			cmd_commit_usage(stdout);
			return DS_EXIT_OK;
		case 'u':
			a->user = optarg;
			break;
		case 'm':
			a->desc = optarg;
			break;
		case 'x': {
			char *eq = strchr(optarg, '=');
			if (eq == NULL || eq == optarg || a->nx == 120) {
				cli_errorf("commit", "-x wants KEY=VALUE, not "
				           "'%s'", optarg);
				return DS_EXIT_USAGE;
			}
			*eq = '\0';
			a->xkeys[a->nx] = optarg;
			a->xvals[a->nx] = eq + 1;
			a->nx++;
			break;
		}
		case 'q':
			cli_verbosity = 0;
			break;
		case 'v':
			cli_verbosity++;
			break;
		case 'W':
			if (cli_parse_seconds("commit", "--wait", optarg,
			                      &a->wait) != DS_EXIT_OK)
				return DS_EXIT_USAGE;
			break;
		default:
			cmd_commit_usage(stderr);
			return DS_EXIT_USAGE;
		}
	}
	if (argc - optind < 2) {
		cli_errorf("commit", "expected a storage directory and at least "
		           "one OID=FILE");
		cmd_commit_usage(stderr);
		return DS_EXIT_USAGE;
	}
	return -1;
}

/* Parse args[i] into items[i] and read its file; items[0..i-1] are read
 * already. *stdin_used counts "-". Returns -1, or the exit code. */
static int
commit_read_item(char **args, size_t i, struct commit_item *items,
                 int *stdin_used)
{
	const char *arg = args[i];
	char hex[17];
	FILE *f;
	int e;

	if (commit_parse_item(arg, &items[i]) != 0) {
		cli_errorf("commit", "'%s' is not OID[@SERIAL]=FILE (OID: 16 "
		           "hex digits or 'new')", arg);
		return DS_EXIT_USAGE;
	}
	/* one revision per object and transaction: which of two pickles
	 * was meant cannot be guessed */
	for (size_t j = 0; j < i && !items[i].is_new; j++) {
		if (items[j].is_new || items[j].oid != items[i].oid)
			continue;
		ds_id_format(items[i].oid, hex);
		cli_errorf("commit", "oid %s given twice (%s and %s)", hex,
		           args[j], arg);
		return DS_EXIT_USAGE;
	}
	if (strcmp(items[i].file, "-") == 0) {
		if ((*stdin_used)++) {
			cli_errorf("commit", "standard input given twice");
			return DS_EXIT_USAGE;
		}
		f = stdin;
	} else if ((f = fopen(items[i].file, "rb")) == NULL) {
		e = errno;
		cli_errorf("commit", "open %s: %s", items[i].file, strerror(e));
		return cli_exit_errno(e);
	}
	e = commit_slurp(f, &items[i].data, &items[i].len);
	if (f != stdin)
		fclose(f);
	if (e != 0) {
		cli_errorf("commit", "read %s: %s", items[i].file, strerror(e));
		return cli_exit_errno(e);
	}
	if (items[i].len == 0) {
		cli_errorf("commit", "%s is empty: a pickle cannot be empty",
		           items[i].file);
		return DS_EXIT_FAIL;
	}
	return -1;
}

/* Store every item in t: the given oids first, then the new ones (a
 * store above x.oid raises it, so no `new` can get an oid given on the
 * same line). Without @SERIAL an item replaces the current revision. */
static int
commit_store(ds_storage *s, ds_txn *t, struct commit_item *items,
             size_t nitems, ds_error *err)
{
	int rc;

	for (size_t k = 0; k < 2 * nitems; k++) {
		struct commit_item *it = &items[k % nitems];
		ds_tid expect = it->serial;

		if (it->is_new != (k >= nitems))
			continue;
		if (it->is_new &&
		    (rc = ds_storage_new_oid(s, &it->oid, err)) != DS_OK)
			return rc;
		if (!it->has_serial) {
			rc = ds_storage_current_serial(s, it->oid, &expect, err);
			if (rc == DS_ENOTFOUND)
				expect = 0;
			else if (rc != DS_OK)
				return rc;
		}
		rc = ds_txn_store(t, it->oid, expect, it->data, it->len, err);
		if (rc != DS_OK)
			return rc;
	}
	return DS_OK;
}

/* Commit the items to the storage at home as one transaction and print
 * it. Returns the exit code. */
static int
commit_run(const char *home, const struct commit_args *a,
           struct commit_item *items, size_t nitems, const unsigned char *ext,
           size_t extlen)
{
	ds_storage *s = NULL;
	ds_txn *t = NULL;
	ds_error err;
	ds_tid tid = 0;
	char hex[17];
	int rc;

	ds_error_clear(&err);
	if (cli_storage_open("commit", home, 0, a->wait, &s, &err) != DS_OK)
		return cli_fail("commit", &err);
	if (ds_txn_begin(s, a->user, a->desc, ext, extlen, &t, &err) != DS_OK ||
	    commit_store(s, t, items, nitems, &err) != DS_OK)
		goto fail;
	rc = ds_txn_finish(t, &tid, &err);
	t = NULL;
	if (rc != DS_OK && tid != 0) {
		/* renamed into place (visible) but the fsync of journal/
		 * failed: print the tid even with -q, so that a script does
		 * not commit the same change again, and say what is at risk */
		commit_print(tid, items, nitems);
		ds_id_format(tid, hex);
		cli_errorf("commit", "transaction %s is committed and visible, "
		           "but it may not survive a crash: %s", hex, err.msg);
		ds_storage_close(s, 0, NULL);
		return cli_exit_code(err.status);
	}
	if (rc != DS_OK)
		goto fail;
	/* committed: say so before closing (close may still fail) */
	if (cli_verbosity > 0)
		commit_print(tid, items, nitems);
	rc = ds_storage_close(s, 0, &err);
	s = NULL;
	if (rc != DS_OK)
		goto fail;
	return DS_EXIT_OK;
fail:
	rc = cli_fail("commit", &err);
	ds_txn_abort(t);
	if (s != NULL)
		ds_storage_close(s, 0, NULL);
	return rc;
}

int
cmd_commit(int argc, char **argv)
{
	struct commit_args a;
	struct commit_item *items = NULL;
	unsigned char *ext = NULL;
	size_t extlen = 0, nitems;
	int rc, stdin_used = 0;

	rc = commit_options(argc, argv, &a);
	if (rc >= 0)
		return rc;
	nitems = (size_t)(argc - optind - 1);
	items = calloc(nitems, sizeof(*items));
	if (items == NULL) {
		cli_errorf("commit", "out of memory");
		return DS_EXIT_IO;
	}
	/* read every input before touching the storage */
	for (size_t i = 0; i < nitems; i++) {
		rc = commit_read_item(argv + optind + 1, i, items, &stdin_used);
		if (rc >= 0)
			goto out;
	}
	if (cli_pickle_strdict(a.xkeys, a.xvals, a.nx, &ext, &extlen) !=
	    DS_OK) {
		cli_errorf("commit", "out of memory");
		rc = DS_EXIT_IO;
		goto out;
	}
	rc = commit_run(argv[optind], &a, items, nitems, ext, extlen);
out:
	for (size_t i = 0; i < nitems; i++)
		free(items[i].data);
	free(items);
	free(ext);
	return rc;
}
