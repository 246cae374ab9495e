/*
 * cmd_dump.c - `ds dump [--json] FILE...`: decode any storage file (object
 * revision, transaction, `.c` pointer, `x.*` file) with its md5 checked.
 *
 * The database name is recovered from the header (object revisions and
 * transactions carry their ids), so a file found out of place can be
 * identified, as the original's dumpdsf.py allowed. When the file sits in a
 * storage's A/ or B/ (or a journal transaction directory), the name its path
 * maps to in that storage's layout is shown too, and a disagreement between
 * the two is warned about.
 */
#include <getopt.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "cli.h"

#define DUMP_MAX_FILE (1u << 30)

/* Where a file lies, and what its path says its name is. */
struct dump_where {
	int in_storage;
	char home[PATH_MAX];
	char rel[PATH_MAX];
	int have_layout;
	ds_layout layout;
	char path_name[DS_NAME_MAX];   /* "" when the path gives no name */
	char note[DS_ERROR_MSG_MAX];   /* why not, when in a storage */
};

struct dump_ctx {
	int json;
	const char *file;
	json_t *j;                      /* the file's JSON object */
	char errmsg[DS_ERROR_MSG_MAX];  /* why the file was refused */
	int titled;                     /* text: file name line printed */
};

/* Text mode: the file's name heads its fields; printed with the first
 * field, so that a refused file leaves only its error message. */
static void
dump_title(struct dump_ctx *c)
{
	if (!c->json && !c->titled) {
		printf("%s\n", c->file);
		c->titled = 1;
	}
}

/* Print "ds dump: <msg>" and keep the message for --json. */
static int
dump_fail(struct dump_ctx *c, const ds_error *err)
{
	snprintf(c->errmsg, sizeof(c->errmsg), "%s",
	         err->msg[0] ? err->msg : ds_strerror(err->status));
	return cli_fail("dump", err);
}

void
cmd_dump_usage(FILE *out)
{
	fprintf(out,
	        "usage: ds dump [--json] [-q] FILE...\n\n"
	        "Decode storage files: object revisions, transactions, .c "
	        "pointers (8-byte and\nlegacy 12-byte forms) and x.* files. "
	        "Every header field is shown, the md5\nfield is checked, and "
	        "the database name is recovered from the header, so a\nfile "
	        "found out of place can be identified. For a file inside a "
	        "storage's A/\nthe name its path maps to is shown as well, "
	        "with a warning when they differ.\n\n"
	        "Options:\n"
	        "  --json        one JSON object per file, one per line\n"
	        "  -q, --quiet   no warning when a file is out of place\n"
	        "                (errors are still printed)\n"
	        "  -v, --verbose accepted for symmetry; dump always shows "
	        "every field\n"
	        "  -h, --help    show this help\n\n"
	        "Exit status: 0 when every file decoded, 1 when one was corrupt "
	        "(the others\nare still dumped), 2 usage, 4 I/O error.\n");
}

/* ---- locating the file in a storage ---- */

static void dump_note(struct dump_where *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Why the path gives no name (truncated when very long). */
static void
dump_note(struct dump_where *w, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->note, sizeof(w->note), fmt, ap);
	va_end(ap);
}

static void
dump_locate(const char *file, struct dump_where *w)
{
	char settings[PATH_MAX + 32];
	ds_settings *s = NULL;
	ds_error err;
	const char *fmt, *base, *slash;

	memset(w, 0, sizeof(*w));
	ds_error_clear(&err);
	if (cli_find_home(file, w->home, sizeof(w->home), w->rel,
	                  sizeof(w->rel)) != 0)
		return;
	w->in_storage = 1;
	snprintf(settings, sizeof(settings), "%s/config/settings", w->home);
	if (ds_settings_load(settings, &s, &err) != DS_OK) {
		dump_note(w, "%s", err.msg);
		return;
	}
	fmt = ds_settings_get(s, "structure", "format");
	if (fmt == NULL) {
		dump_note(w, "%s: no [structure] format", settings);
		goto out;
	}
	if (ds_layout_parse(fmt, &w->layout, &err) != DS_OK) {
		dump_note(w, "%s", err.msg);
		goto out;
	}
	w->have_layout = 1;
	if (strncmp(w->rel, "A/", 2) == 0 || strncmp(w->rel, "B/", 2) == 0) {
		if (ds_layout_path_to_name(w->layout, w->rel + 2, w->path_name,
		                           sizeof(w->path_name), &err) != DS_OK) {
			w->path_name[0] = '\0';
			dump_note(w, "its path is not a database name in the "
			          "%s layout: %s", ds_layout_str(w->layout),
			          err.msg);
		}
	} else if (strncmp(w->rel, "journal/working_", 16) == 0 &&
	           (slash = strchr(w->rel + 8, '/')) != NULL &&
	           strchr(slash + 1, '/') == NULL) {
		/* journal transaction directories hold flat names */
		base = slash + 1;
		if (ds_name_valid(base))
			snprintf(w->path_name, sizeof(w->path_name), "%s", base);
		else
			dump_note(w, "'%s' in the journal is not a database "
			          "name", base);
	} else {
		dump_note(w, "not under the storage's A/, B/ or journal/");
	}
out:
	ds_settings_free(s);
}

/* The name to go by for a file whose content carries none (8 bytes):
 * the path's name, else the file's own name when it is one. */
static void
dump_name_hint(const char *file, const struct dump_where *w,
               char out[DS_NAME_MAX])
{
	const char *base = strrchr(file, '/');

	base = base ? base + 1 : file;
	out[0] = '\0';
	if (w->path_name[0]) {
		snprintf(out, DS_NAME_MAX, "%s", w->path_name);
	} else if (ds_name_valid(base)) {
		snprintf(out, DS_NAME_MAX, "%s", base);
	} else if (strcmp(base, "serial") == 0 || strcmp(base, "oid") == 0 ||
	           strcmp(base, "packed") == 0) {
		snprintf(out, DS_NAME_MAX, "x.%s", base);
	}
}

/* ---- output helpers: text goes to stdout, or fields into ctx->j ---- */

static void
dump_field_str(struct dump_ctx *c, const char *key, const char *label,
               const char *val)
{
	dump_title(c);
	if (c->json)
		json_object_set_new(c->j, key, val ? json_string(val) : json_null());
	else
		printf("  %-13s %s\n", label, val ? val : "(none)");
}

static void
dump_field_id(struct dump_ctx *c, const char *key, const char *label,
              uint64_t id, int is_tid)
{
	char hex[17], when[32], tkey[64];

	ds_id_format(id, hex);
	if (c->json) {
		json_object_set_new(c->j, key, json_string(hex));
		if (is_tid) {
			/* "<key>_time": null for a zero tid */
			snprintf(tkey, sizeof(tkey), "%s_time", key);
			cli_tid_time(id, when);
			json_object_set_new(c->j, tkey, id ? json_string(when) :
			                    json_null());
		}
	} else if (is_tid) {
		cli_tid_time(id, when);
		printf("  %-13s %s  %s\n", label, hex, when);
	} else {
		printf("  %-13s %s\n", label, hex);
	}
}

static void
dump_field_int(struct dump_ctx *c, const char *key, const char *label,
               size_t v, const char *unit)
{
	if (c->json)
		json_object_set_new(c->j, key, json_integer((json_int_t)v));
	else
		printf("  %-13s %zu%s%s\n", label, v, unit ? " " : "",
		       unit ? unit : "");
}

static void
dump_field_bytes(struct dump_ctx *c, const char *key, const char *label,
                 const char *s, size_t n)
{
	if (c->json) {
		json_object_set_new(c->j, key, cli_json_bytes(s, n));
	} else {
		printf("  %-13s ", label);
		cli_print_quoted(stdout, s, n);
		putchar('\n');
	}
}

/* The md5 field: stored hex, and "valid" (the decoder verified it) or
 * "absent" (all zero, nothing to check). */
static void
dump_md5_field(struct dump_ctx *c, const unsigned char *field, int present)
{
	char hex[33];

	ds_hex_lower(field, 16, hex);
	if (c->json) {
		json_object_set_new(c->j, "md5_field",
		                    present ? json_string(hex) : json_null());
		json_object_set_new(c->j, "md5",
		                    json_string(present ? "valid" : "absent"));
	} else if (present) {
		printf("  %-13s %s (valid)\n", "md5 field", hex);
	} else {
		printf("  %-13s absent (all zero, not checked)\n", "md5 field");
	}
}

static void
dump_md5_of(struct dump_ctx *c, const char *key, const char *label,
            const void *data, size_t len)
{
	unsigned char md[16];
	char hex[33];

	ds_md5(data, len, md);
	ds_hex_lower(md, 16, hex);
	dump_field_str(c, key, label, hex);
}

/* Name from the header vs name from the path. */
static void
dump_names(struct dump_ctx *c, const struct dump_where *w,
           const char *header_name)
{
	dump_title(c);
	if (header_name) {
		if (c->json) {
			json_object_set_new(c->j, "name", json_string(header_name));
			json_object_set_new(c->j, "name_source",
			                    json_string("header"));
		} else {
			printf("  %-13s %s (from the header)\n", "name",
			       header_name);
		}
	}
	if (w->in_storage) {
		if (c->json) {
			json_object_set_new(c->j, "storage", json_string(w->home));
			json_object_set_new(c->j, "storage_path",
			                    json_string(w->rel));
			json_object_set_new(c->j, "path_name", w->path_name[0] ?
			                    json_string(w->path_name) : json_null());
			if (w->note[0])
				json_object_set_new(c->j, "path_note",
				                    json_string(w->note));
		} else {
			printf("  %-13s %s\n", "storage", w->home);
			if (w->path_name[0]) {
				printf("  %-13s %s (from %s in the %s "
				       "layout)\n", "path name", w->path_name,
				       w->rel, ds_layout_str(w->layout));
			} else {
				printf("  %-13s none: %s\n", "path name", w->note);
			}
		}
	}
	if (header_name && w->path_name[0] &&
	    strcmp(header_name, w->path_name) != 0) {
		if (c->json)
			json_object_set_new(c->j, "name_mismatch", json_true());
		if (cli_verbosity >= 1)
			fprintf(stderr, "ds dump: warning: %s: the header says "
			        "%s but its path in %s is the place of %s\n",
			        c->file, header_name, w->home, w->path_name);
	} else if (c->json && header_name && w->path_name[0]) {
		json_object_set_new(c->j, "name_mismatch", json_false());
	}
}

/* The path a name has in the storage's layout, when known. */
static void
dump_proper_path(struct dump_ctx *c, const struct dump_where *w,
                 const char *name)
{
	char rel[DS_RELPATH_MAX], buf[DS_RELPATH_MAX + 4];

	if (!w->have_layout || ds_layout_name_to_path(w->layout, name, rel,
	                                              sizeof(rel), NULL) != DS_OK)
		return;
	snprintf(buf, sizeof(buf), "A/%s", rel);
	dump_field_str(c, "proper_path", "proper path", buf);
}

/* ---- the kinds of files ---- */

static int
dump_object(struct dump_ctx *c, const struct dump_where *w,
            const unsigned char *buf, size_t len)
{
	ds_objrec r;
	ds_error err;
	char name[DS_NAME_MAX], tname[DS_NAME_MAX];

	ds_error_clear(&err);
	if (ds_objrec_decode(buf, len, c->file, &r, &err) != DS_OK)
		return dump_fail(c, &err);
	ds_name_revision(r.oid, r.serial, name);
	ds_name_transaction(r.serial, tname);
	dump_field_str(c, "kind", "kind", c->json ? "object" :
	               "object revision");
	dump_names(c, w, name);
	dump_proper_path(c, w, name);
	dump_field_id(c, "oid", "oid", r.oid, 0);
	dump_field_id(c, "serial", "serial", r.serial, 1);
	dump_field_id(c, "prev_serial", "prev serial", r.prev_serial, 1);
	dump_field_id(c, "undo_from", "undo from", r.undo_from, 1);
	dump_field_str(c, "transaction", "transaction", tname);
	dump_field_int(c, "length", "length", len, "bytes");
	dump_md5_field(c, buf + 40, r.md5_present);
	dump_field_int(c, "pickle_len", "pickle", r.pickle_len,
	               r.pickle_len ? "bytes" : "bytes (creation undone)");
	dump_md5_of(c, "pickle_md5", "pickle md5", r.pickle, r.pickle_len);
	dump_md5_of(c, "file_md5", "file md5", buf, len);
	return DS_EXIT_OK;
}

static int
dump_txn(struct dump_ctx *c, const struct dump_where *w,
         const unsigned char *buf, size_t len)
{
	ds_txnrec r;
	ds_error err;
	char name[DS_NAME_MAX], hex[17], *ext = NULL;
	json_t *oids = NULL;
	int rc = DS_EXIT_OK;

	ds_error_clear(&err);
	if (ds_txnrec_decode(buf, len, c->file, &r, &err) != DS_OK)
		return dump_fail(c, &err);
	ds_name_transaction(r.tid, name);
	dump_field_str(c, "kind", "kind", "transaction");
	dump_names(c, w, name);
	dump_proper_path(c, w, name);
	dump_field_id(c, "tid", "tid", r.tid, 1);
	dump_field_id(c, "prev_tid", "prev tid", r.prev_tid, 1);
	dump_field_bytes(c, "user", "user", r.user, r.user_len);
	dump_field_bytes(c, "description", "description", r.description,
	                 r.description_len);
	if ((ext = malloc(2 * r.extension_len + 1)) == NULL) {
		cli_errorf("dump", "%s: out of memory", c->file);
		return DS_EXIT_IO;
	}
	ds_hex_lower(r.extension, r.extension_len, ext);
	if (c->json) {
		json_object_set_new(c->j, "extension_len",
		                    json_integer((json_int_t)r.extension_len));
		json_object_set_new(c->j, "extension_hex", json_string(ext));
	} else {
		printf("  %-13s %zu bytes%s%s\n", "extension", r.extension_len,
		       r.extension_len ? ": " : "", ext);
	}
	dump_field_int(c, "length", "length", len, "bytes");
	dump_md5_field(c, buf + 32, r.md5_present);
	dump_md5_of(c, "file_md5", "file md5", buf, len);
	if (c->json) {
		if ((oids = json_array()) == NULL)
			goto nomem;
		for (size_t i = 0; i < r.noids; i++)
			json_array_append_new(oids, cli_json_id(
			    ds_get_u64(r.oids + 8 * i)));
		json_object_set_new(c->j, "noids",
		                    json_integer((json_int_t)r.noids));
		json_object_set_new(c->j, "oids", oids);
	} else {
		printf("  %-13s %zu\n", "objects", r.noids);
		for (size_t i = 0; i < r.noids; i++) {
			ds_name_revision(ds_get_u64(r.oids + 8 * i), r.tid, name);
			ds_id_format(ds_get_u64(r.oids + 8 * i), hex);
			printf("    %s  revision %s\n", hex, name);
		}
	}
	goto out;
nomem:
	cli_errorf("dump", "%s: out of memory", c->file);
	rc = DS_EXIT_IO;
out:
	free(ext);
	return rc;
}

/* 8 bytes (a pointer or an x.* file) or 12 (legacy pointer). */
static int
dump_small(struct dump_ctx *c, const struct dump_where *w,
           const unsigned char *buf, size_t len)
{
	char hint[DS_NAME_MAX], rname[DS_NAME_MAX], stem[20];
	ds_error err;
	uint64_t v;
	ds_oid oid;
	int is_x;

	ds_error_clear(&err);
	dump_name_hint(c->file, w, hint);
	is_x = strncmp(hint, "x.", 2) == 0;
	if (len == 12 || (!is_x && hint[0] == 'o' && strlen(hint) > 2 &&
	                  strcmp(hint + strlen(hint) - 2, ".c") == 0)) {
		if (ds_pointer_decode(buf, len, c->file, &v, &err) != DS_OK)
			return dump_fail(c, &err);
		dump_field_str(c, "kind", "kind", c->json ? "pointer" :
		               (len == 12 ? "current-revision pointer (.c), "
		                "legacy 12-byte form" :
		                "current-revision pointer (.c)"));
		if (c->json)
			json_object_set_new(c->j, "legacy", json_boolean(len == 12));
		dump_names(c, w, NULL);
		if (!w->in_storage)
			dump_field_str(c, "name_guess", "name", hint[0] ? hint :
			               NULL);
		dump_field_id(c, "serial", "serial", v, 1);
		/* the oid is only in the name; the revision follows */
		if (hint[0] == 'o' && strlen(hint) == 19) {
			snprintf(stem, sizeof(stem), "%.16s", hint + 1);
			if (ds_id_parse(stem, &oid) == DS_OK) {
				ds_name_revision(oid, v, rname);
				dump_field_str(c, "revision", "revision", rname);
			}
		}
	} else {
		if (ds_xfile_decode(buf, len, c->file, &v, &err) != DS_OK)
			return dump_fail(c, &err);
		if (is_x) {
			dump_field_str(c, "kind", "kind", c->json ? "xfile" : hint);
			if (c->json)
				json_object_set_new(c->j, "xname", json_string(hint));
		} else {
			dump_field_str(c, "kind", "kind", c->json ? "value8" :
			               "8-byte file: a .c pointer or an x.* file "
			               "(its name does not say which)");
		}
		dump_names(c, w, NULL);
		dump_field_id(c, "value", "value", v,
		              strcmp(hint, "x.oid") != 0);
	}
	dump_field_int(c, "length", "length", len, "bytes");
	return DS_EXIT_OK;
}

static int
dump_one(struct dump_ctx *c)
{
	struct dump_where w;
	struct stat st;
	unsigned char *buf = NULL;
	size_t len = 0;
	uint32_t magic = 0;
	ds_error err;
	int rc;

	ds_error_clear(&err);
	c->errmsg[0] = '\0';
	c->titled = 0;
	if (c->json) {
		if ((c->j = json_object()) == NULL) {
			cli_errorf("dump", "%s: out of memory", c->file);
			return DS_EXIT_IO;
		}
		json_object_set_new(c->j, "file", json_string(c->file));
	}
	if (stat(c->file, &st) == 0 && !S_ISREG(st.st_mode)) {
		ds_error_set(&err, DS_EINVAL, "%s: not a regular file",
		              c->file);
		rc = dump_fail(c, &err);
		goto report;
	}
	if (ds_file_read(c->file, DUMP_MAX_FILE, &buf, &len, &err) != DS_OK) {
		rc = dump_fail(c, &err);
		goto report;
	}
	dump_locate(c->file, &w);
	if (len >= 4)
		magic = ds_get_u32(buf);
	if (len >= 4 && magic == DS_OBJ_MAGIC) {
		rc = dump_object(c, &w, buf, len);
	} else if (len >= 4 && magic == DS_TXN_MAGIC) {
		rc = dump_txn(c, &w, buf, len);
	} else if (len == 8 || (len == 12 && magic == DS_PTR_LEGACY_MAGIC)) {
		rc = dump_small(c, &w, buf, len);
	} else {
		ds_error_set(&err, DS_ECORRUPT, "%s: not a storage file: "
		              "%zu bytes, %s%08X is neither the object "
		              "revision magic (BDB82A71) nor the transaction "
		              "magic (47400776), and only .c pointers and x.* "
		              "files are 8 bytes (or 12 with magic 0BFEE8EC)",
		              c->file, len, len >= 4 ? "magic " :
		              "too short for a magic: ", len >= 4 ? magic : 0);
		rc = dump_fail(c, &err);
	}
report:
	if (c->json) {
		if (rc != DS_EXIT_OK) {
			/* a machine reader sees the refusal in the stream too */
			json_object_clear(c->j);
			json_object_set_new(c->j, "file", json_string(c->file));
			json_object_set_new(c->j, "error", json_string(c->errmsg));
		}
		json_dumpf(c->j, stdout, JSON_COMPACT);
		putchar('\n');
		json_decref(c->j);
		c->j = NULL;
	} else if (rc == DS_EXIT_OK) {
		putchar('\n');
	}
	fflush(stdout);
	free(buf);
	return rc;
}

int
cmd_dump(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{"json", no_argument, NULL, 'j'},
		{"quiet", no_argument, NULL, 'q'},
		{"verbose", no_argument, NULL, 'v'},
		{NULL, 0, NULL, 0},
	};
	struct dump_ctx ctx;
	int ch, rc, worst = DS_EXIT_OK;

	memset(&ctx, 0, sizeof(ctx));
	optind = 1;
	while ((ch = getopt_long(argc, argv, "hjqv", longopts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			cmd_dump_usage(stdout);
			return DS_EXIT_OK;
		case 'q':
			cli_verbosity = 0;
			break;
		case 'v':
			cli_verbosity++;
			break;
		case 'j':
			ctx.json = 1;
			break;
		default:
			cmd_dump_usage(stderr);
			return DS_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		cli_errorf("dump", "no FILE given");
		cmd_dump_usage(stderr);
		return DS_EXIT_USAGE;
	}
	for (int i = optind; i < argc; i++) {
		ctx.file = argv[i];
		rc = dump_one(&ctx);
		if (rc > worst)
			worst = rc;
	}
	return worst;
}
