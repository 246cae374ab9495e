/*
 * test_fixtures.c - every fixture storage written by the original
 * implementation is read completely through the library and agrees with
 * its manifest: x.* files, every transaction, the back-pointer chain,
 * every object and revision, pack leftovers, modes, counts, and no file in
 * A/ that the manifest does not list. Each storage is then laid out again
 * in all four layouts (in a scratch directory) and checked the same way.
 */
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "dirstorage.h"
#include "helper_fixture.h"

/* One regular file found under A/. */
struct found {
	char *rel;              /* path relative to A/ */
	char name[DS_NAME_MAX]; /* "" when the path maps to no name */
	unsigned mode;          /* permission bits */
	long long size;
	int claimed;            /* matched by a manifest entry */
};

struct walk {
	struct found *v;
	size_t n, cap;
	size_t prefix;          /* strlen of "<home>/A/" */
	ds_layout layout;
	unsigned dir_modes[8];  /* modes seen on directories */
	size_t ndir_modes;
};

/* nftw has no user pointer: the one walk in progress. */
static struct walk *walk_cur;

static int
walk_visit(const char *path, const struct stat *st, int type, struct FTW *f)
{
	struct walk *w = walk_cur;
	struct found *e;
	ds_error err;
	unsigned mode = (unsigned)(st->st_mode & 07777);
	size_t i;

	(void)f;
	if (type == FTW_D) {
		for (i = 0; i < w->ndir_modes; i++)
			if (w->dir_modes[i] == mode)
				break;
		if (i == w->ndir_modes && w->ndir_modes < 8)
			w->dir_modes[w->ndir_modes++] = mode;
		return 0;
	}
	if (type != FTW_F || !S_ISREG(st->st_mode))
		fail_msg("%s: neither a regular file nor a directory", path);
	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 1024;
		w->v = realloc(w->v, w->cap * sizeof(*w->v));
		assert_non_null(w->v);
	}
	e = &w->v[w->n++];
	memset(e, 0, sizeof(*e));
	e->rel = strdup(path + w->prefix);
	assert_non_null(e->rel);
	e->mode = mode;
	e->size = (long long)st->st_size;
	if (ds_layout_path_to_name(w->layout, e->rel, e->name, sizeof(e->name),
	                           &err) != DS_OK) {
		e->name[0] = '\0';
		assert_int_equal(err.status, DS_EINVAL);
		assert_non_null(strstr(err.msg, e->rel));
	}
	return 0;
}

static int
found_cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct found *)a)->name,
	              ((const struct found *)b)->name);
}

static void
walk_tree(const char *home, ds_layout layout, struct walk *w)
{
	char a[4096];

	memset(w, 0, sizeof(*w));
	w->layout = layout;
	snprintf(a, sizeof(a), "%s/A", home);
	w->prefix = strlen(a) + 1;
	walk_cur = w;
	if (nftw(a, walk_visit, 32, FTW_PHYS) != 0)
		fail_msg("walk %s: %s", a, strerror(errno));
	walk_cur = NULL;
	qsort(w->v, w->n, sizeof(*w->v), found_cmp_name);
}

static void
walk_free(struct walk *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->v[i].rel);
	free(w->v);
}

static struct found *
walk_find(struct walk *w, const char *name)
{
	struct found key;

	memset(&key, 0, sizeof(key));
	snprintf(key.name, sizeof(key.name), "%s", name);
	return bsearch(&key, w->v, w->n, sizeof(*w->v), found_cmp_name);
}

/*
 * The manifest says database file `name` is at `mpath` ("A/..." in the
 * fixture's own layout) with `mode`. Check that the walk found it at the
 * path the library gives that name (and, for the fixture's own layout,
 * at exactly the manifest's path), with that mode; read it.
 */
static unsigned char *
expect_file(const char *home, struct walk *w, const char *name,
            const char *mpath, unsigned mode, int own_layout, size_t *len)
{
	char path[DS_RELPATH_MAX], full[4096];
	struct found *e;
	unsigned char *buf;
	ds_error err;

	assert_true(ds_name_valid(name));
	if (ds_layout_name_to_path(w->layout, name, path, sizeof(path), &err) !=
	    DS_OK)
		fail_msg("%s", err.msg);
	if (own_layout) {
		assert_true(strncmp(mpath, "A/", 2) == 0);
		assert_string_equal(path, mpath + 2);
	}
	e = walk_find(w, name);
	if (e == NULL)
		fail_msg("%s: %s (%s) not found in A/", home, name, path);
	assert_string_equal(e->rel, path);
	if (e->claimed)
		fail_msg("%s: %s listed twice by the manifest", home, name);
	e->claimed = 1;
	if (e->mode != mode)
		fail_msg("%s: %s has mode %04o, manifest says %04o", home, path,
		         e->mode, mode);
	snprintf(full, sizeof(full), "%s/A/%s", home, path);
	if (ds_file_read(full, 0, &buf, len, &err) != DS_OK)
		fail_msg("%s", err.msg);
	assert_int_equal((long long)*len, e->size);
	return buf;
}

static void
expect_md5(const void *data, size_t len, const char *want, const char *what)
{
	char got[33];

	fixture_md5_hex(data, len, got);
	if (strcmp(got, want) != 0)
		fail_msg("%s: md5 %s, manifest says %s", what, got, want);
}

static void
check_x_files(const char *home, struct walk *w, const json_t *m, int own)
{
	static const char *const xs[] = {"x.serial", "x.oid", "x.packed"};
	const json_t *xf = json_object_get(m, "x_files");
	ds_error err;

	assert_non_null(xf);
	for (size_t i = 0; i < 3; i++) {
		const json_t *ent = json_object_get(xf, xs[i]);
		unsigned char *buf;
		size_t len;
		uint64_t v;

		assert_non_null(ent);
		buf = expect_file(home, w, xs[i], fixture_jstr(ent, "path"),
		                  fixture_jmode(ent, "mode"), own, &len);
		if (ds_xfile_decode(buf, len, xs[i], &v, &err) != DS_OK)
			fail_msg("%s", err.msg);
		assert_true(v == fixture_jid(m, xs[i]));
		free(buf);
	}
}

/* Compare a length-counted field with a JSON string. */
static void
expect_bytes(const void *p, size_t n, const char *want, const char *what)
{
	if (strlen(want) != n || memcmp(p, want, n) != 0)
		fail_msg("%s: \"%.*s\", manifest says \"%s\"", what, (int)n,
		         (const char *)p, want);
}

static void
check_transactions(const char *home, struct walk *w, const json_t *m,
                   int own)
{
	const json_t *txns = json_object_get(m, "transactions");
	size_t i, k;

	assert_true(json_is_array(txns));
	for (i = 0; i < json_array_size(txns); i++) {
		const json_t *t = json_array_get(txns, i);
		const json_t *oids = json_object_get(t, "oids");
		char name[DS_NAME_MAX], hex[17], what[256];
		unsigned char *buf, *again;
		size_t len, againlen;
		ds_txnrec rec;
		ds_error err;
		ds_tid tid = fixture_jid(t, "tid");

		ds_name_transaction(tid, name);
		buf = expect_file(home, w, name, fixture_jstr(t, "path"),
		                  fixture_jmode(t, "mode"), own, &len);
		snprintf(what, sizeof(what), "%s %s", home, name);
		assert_int_equal(len, fixture_jint(t, "file_len"));
		assert_int_equal(ds_get_u32(buf + 4),
		                 fixture_jint(t, "header_len_field"));
		expect_md5(buf, len, fixture_jstr(t, "file_md5"), what);
		ds_hex_upper(buf + 16, 8, hex);
		assert_string_equal(hex, fixture_jstr(t, "reserved16_24"));
		assert_true(fixture_jbool(t, "md5_field_ok"));
		if (ds_txnrec_decode(buf, len, name, &rec, &err) != DS_OK)
			fail_msg("%s: %s", what, err.msg);
		assert_true(rec.tid == tid);
		assert_true(rec.prev_tid == fixture_jid(t, "prev_tid"));
		assert_int_equal(rec.md5_present,
		                 !fixture_jbool(t, "md5_field_zero"));
		assert_int_equal(fixture_jint(t, "version_len"), 0);
		expect_bytes(rec.user, rec.user_len, fixture_jstr(t, "user"),
		             what);
		expect_bytes(rec.description, rec.description_len,
		             fixture_jstr(t, "description"), what);
		assert_int_equal(rec.extension_len,
		                 fixture_jint(t, "extension_len"));
		/* the manifest gives no md5 (null) for an empty extension */
		if (json_is_null(json_object_get(t, "extension_md5")))
			assert_int_equal(rec.extension_len, 0);
		else
			expect_md5(rec.extension, rec.extension_len,
			           fixture_jstr(t, "extension_md5"), what);
		assert_true(json_is_array(oids));
		assert_int_equal(rec.noids, json_array_size(oids));
		for (k = 0; k < rec.noids; k++) {
			ds_id_format(ds_get_u64(rec.oids + 8 * k), hex);
			assert_string_equal(hex, json_string_value(
			                             json_array_get(oids, k)));
		}
		/* the encoder reproduces the original's bytes exactly */
		if (ds_txnrec_encode(&rec, rec.md5_present, &again, &againlen,
		                     &err) != DS_OK)
			fail_msg("%s: %s", what, err.msg);
		assert_int_equal(againlen, len);
		assert_memory_equal(again, buf, len);
		free(again);
		free(buf);
	}
}

/* Walk the previous-tid chain from x.serial through the library. */
static void
check_chain(const char *home, ds_layout layout, const json_t *m)
{
	const json_t *chain = json_object_get(m, "chain");
	const json_t *txns = json_object_get(m, "transactions");
	ds_tid tid = fixture_jid(m, "x.serial");
	size_t n = 0, i;

	assert_true(json_is_array(chain));
	while (tid != 0) {
		char name[DS_NAME_MAX], rel[DS_RELPATH_MAX], full[4096];
		unsigned char *buf;
		size_t len;
		ds_txnrec rec;
		ds_error err;
		int rc;

		ds_name_transaction(tid, name);
		assert_int_equal(ds_layout_name_to_path(layout, name, rel,
		                                        sizeof(rel), &err),
		                 DS_OK);
		snprintf(full, sizeof(full), "%s/A/%s", home, rel);
		rc = ds_file_read(full, 0, &buf, &len, &err);
		if (rc == DS_ENOTFOUND)
			break; /* removed by a pack: the chain ends here */
		if (rc != DS_OK)
			fail_msg("%s", err.msg);
		if (ds_txnrec_decode(buf, len, full, &rec, &err) != DS_OK)
			fail_msg("%s", err.msg);
		assert_true(rec.tid == tid);
		if (n >= json_array_size(chain))
			fail_msg("%s: chain longer than the manifest's", home);
		assert_true(tid == strtoull(json_string_value(
		                       json_array_get(chain, n)), NULL, 16));
		n++;
		tid = rec.prev_tid;
		free(buf);
	}
	assert_int_equal(n, json_array_size(chain));
	assert_true(tid == fixture_jid(m, "chain_end"));
	/* in_chain agrees with the walk */
	for (i = 0; i < json_array_size(txns); i++) {
		const json_t *t = json_array_get(txns, i);
		const char *tt = fixture_jstr(t, "tid");
		int in = 0;
		for (size_t k = 0; k < n; k++)
			if (strcmp(json_string_value(json_array_get(chain, k)),
			           tt) == 0)
				in = 1;
		assert_int_equal(in, fixture_jbool(t, "in_chain"));
	}
}

static size_t
check_objects(const char *home, struct walk *w, const json_t *m, int own)
{
	const json_t *objs = json_object_get(m, "objects");
	size_t i, k, nrev = 0;

	assert_true(json_is_array(objs));
	for (i = 0; i < json_array_size(objs); i++) {
		const json_t *o = json_array_get(objs, i);
		const json_t *revs = json_object_get(o, "revisions");
		ds_oid oid = fixture_jid(o, "oid");
		char name[DS_NAME_MAX], what[256];
		unsigned char *buf;
		size_t len;
		ds_tid cur;
		ds_error err;

		ds_name_pointer(oid, name);
		buf = expect_file(home, w, name, fixture_jstr(o, "pointer_path"),
		                  fixture_jmode(o, "pointer_mode"), own, &len);
		assert_int_equal(len, fixture_jint(o, "pointer_len"));
		if (ds_pointer_decode(buf, len, name, &cur, &err) != DS_OK)
			fail_msg("%s", err.msg);
		assert_true(cur == fixture_jid(o, "current_serial"));
		free(buf);

		assert_true(json_is_array(revs));
		for (k = 0; k < json_array_size(revs); k++) {
			const json_t *r = json_array_get(revs, k);
			ds_tid serial = fixture_jid(r, "serial");
			unsigned char *again;
			size_t againlen;
			ds_objrec rec;

			ds_name_revision(oid, serial, name);
			buf = expect_file(home, w, name, fixture_jstr(r, "path"),
			                  fixture_jmode(r, "mode"), own, &len);
			snprintf(what, sizeof(what), "%s %s", home, name);
			assert_int_equal(len, fixture_jint(r, "file_len"));
			expect_md5(buf, len, fixture_jstr(r, "file_md5"), what);
			assert_true(fixture_jbool(r, "md5_field_ok"));
			if (ds_objrec_decode(buf, len, name, &rec, &err) != DS_OK)
				fail_msg("%s: %s", what, err.msg);
			assert_true(rec.oid == oid);
			assert_true(rec.serial == serial);
			assert_true(rec.prev_serial ==
			            fixture_jid(r, "prev_serial"));
			assert_true(rec.undo_from == fixture_jid(r, "undo_from"));
			assert_int_equal(rec.pickle_len,
			                 fixture_jint(r, "pickle_len"));
			expect_md5(rec.pickle, rec.pickle_len,
			           fixture_jstr(r, "pickle_md5"), what);
			assert_true(rec.md5_present);
			if (ds_objrec_encode(&rec, 1, &again, &againlen, &err) !=
			    DS_OK)
				fail_msg("%s: %s", what, err.msg);
			assert_int_equal(againlen, len);
			assert_memory_equal(again, buf, len);
			free(again);
			free(buf);
			nrev++;
		}
	}
	return nrev;
}

/*
 * Pack leftovers: the only files allowed not to map to a name, and they
 * must be exactly the manifest's deleted_files (path and size).
 */
static void
check_leftovers(const char *home, struct walk *w, const json_t *m, int own)
{
	const json_t *del = json_object_get(m, "deleted_files");
	size_t i, k, nunmapped = 0;

	assert_true(json_is_array(del));
	for (i = 0; i < w->n; i++) {
		struct found *e = &w->v[i];
		int listed = 0;

		if (e->name[0] != '\0')
			continue;
		nunmapped++;
		if (!own)
			fail_msg("%s: unexpected file %s", home, e->rel);
		for (k = 0; k < json_array_size(del); k++) {
			const json_t *d = json_array_get(del, k);
			if (strcmp(fixture_jstr(d, "path") + 2, e->rel) == 0) {
				assert_int_equal(e->size, fixture_jint(d, "size"));
				listed = 1;
			}
		}
		if (!listed)
			fail_msg("%s: A/%s maps to no database name and is not a "
			         "listed pack leftover", home, e->rel);
		{
			size_t l = strlen(e->rel);
			assert_true(l > 8 &&
			            strcmp(e->rel + l - 8, "-deleted") == 0);
		}
		e->claimed = 1;
	}
	if (own)
		assert_int_equal(nunmapped, json_array_size(del));
}

/* The whole agreement check of one storage home against a manifest. */
static void
check_home(const char *home, ds_layout layout, const json_t *m, int own)
{
	const json_t *counts = json_object_get(m, "counts");
	const json_t *other = json_object_get(m, "other_files_in_A");
	struct walk w;
	size_t i, nrev, ntxn = 0, nptr = 0, nrevfiles = 0, nlive = 0;

	walk_tree(home, layout, &w);
	/* nothing in A/ but database files and the listed leftovers */
	assert_true(json_is_array(other));
	assert_int_equal(json_array_size(other), 0);

	check_x_files(home, &w, m, own);
	check_transactions(home, &w, m, own);
	check_chain(home, layout, m);
	nrev = check_objects(home, &w, m, own);
	check_leftovers(home, &w, m, own);

	for (i = 0; i < w.n; i++) {
		const struct found *e = &w.v[i];
		if (!e->claimed)
			fail_msg("%s: A/%s (%s) is not in the manifest", home,
			         e->rel, e->name);
		if (e->name[0] == '\0')
			continue;
		nlive++;
		if (e->name[0] == 't')
			ntxn++;
		else if (e->name[0] == 'o' && strlen(e->name) == 19)
			nptr++;
		else if (e->name[0] == 'o')
			nrevfiles++;
	}
	assert_non_null(counts);
	assert_int_equal(ntxn, fixture_jint(counts, "transactions"));
	assert_int_equal(ntxn,
	                 json_array_size(json_object_get(m, "transactions")));
	assert_int_equal(nptr, fixture_jint(counts, "objects"));
	assert_int_equal(nrevfiles, fixture_jint(counts, "revisions"));
	assert_int_equal(nrev, nrevfiles);
	assert_int_equal(nlive, fixture_jint(m, "file_count_A_live"));
	if (own) {
		const json_t *dm = json_object_get(m, "dir_modes");
		assert_int_equal(w.n - nlive, fixture_jint(counts,
		                                           "deleted_files"));
		for (i = 0; i < w.ndir_modes; i++) {
			int ok = 0;
			for (size_t k = 0; k < json_array_size(dm); k++) {
				char want[8];
				snprintf(want, sizeof(want), "%04o", w.dir_modes[i]);
				if (strcmp(json_string_value(json_array_get(dm, k)),
				           want) == 0)
					ok = 1;
			}
			if (!ok)
				fail_msg("%s: a directory has mode %04o", home,
				         w.dir_modes[i]);
		}
	}
	walk_free(&w);
}

static void
test_every_fixture_agrees_with_its_manifest(void **state)
{
	size_t n;
	char **names = fixture_names(&n);

	(void)state;
	assert_int_equal(n, 8);
	for (size_t i = 0; i < n; i++) {
		json_t *m = fixture_manifest_load(names[i]);
		char home[4096];
		ds_layout layout;
		ds_error err;

		assert_string_equal(fixture_jstr(m, "fixture"), names[i]);
		assert_int_equal(ds_layout_parse(fixture_jstr(m, "format"),
		                                 &layout, &err),
		                 DS_OK);
		fixture_home(names[i], home, sizeof(home));
		check_home(home, layout, m, 1);
		json_decref(m);
	}
	fixture_names_free(names);
}

static void
mkdirs_for(char *path)
{
	for (char *p = path + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) != 0 && errno != EEXIST)
			fail_msg("mkdir %s: %s", path, strerror(errno));
		*p = '/';
	}
}

/*
 * Copy every database file of fixture `name` (pack leftovers excepted)
 * into dest/A laid out in `layout`, keeping bytes and modes.
 */
static void
relayout(const char *name, ds_layout from, ds_layout to, const char *dest)
{
	char home[4096];
	struct walk w;

	fixture_home(name, home, sizeof(home));
	walk_tree(home, from, &w);
	for (size_t i = 0; i < w.n; i++) {
		char src[8400], dst[8400], rel[DS_RELPATH_MAX];
		unsigned char *buf;
		size_t len;
		ds_error err;
		FILE *f;

		if (w.v[i].name[0] == '\0')
			continue;
		assert_int_equal(ds_layout_name_to_path(to, w.v[i].name, rel,
		                                        sizeof(rel), &err),
		                 DS_OK);
		snprintf(src, sizeof(src), "%s/A/%s", home, w.v[i].rel);
		snprintf(dst, sizeof(dst), "%s/A/%s", dest, rel);
		mkdirs_for(dst);
		assert_int_equal(ds_file_read(src, 0, &buf, &len, &err), DS_OK);
		f = fopen(dst, "wx");
		if (f == NULL)
			fail_msg("create %s: %s", dst, strerror(errno));
		assert_int_equal(fwrite(buf, 1, len, f), len);
		assert_int_equal(fclose(f), 0);
		assert_int_equal(chmod(dst, w.v[i].mode), 0);
		free(buf);
	}
	walk_free(&w);
}

/*
 * One master of each family, laid out again in every other layout and
 * checked against its manifest: bushy-master (the plain history) and
 * flat-master (packed: leftovers, which are not copied, and 0740 modes).
 * Only two, because creating files is slow on the test machines and the
 * other fixtures add no new kind of file.
 */
static void
test_masters_in_every_other_layout(void **state)
{
	static const char *const masters[] = {"bushy-master", "flat-master"};
	const char *scratch = *state;

	for (size_t i = 0; i < 2; i++) {
		json_t *m = fixture_manifest_load(masters[i]);
		ds_layout from;
		ds_error err;

		assert_int_equal(ds_layout_parse(fixture_jstr(m, "format"),
		                                 &from, &err),
		                 DS_OK);
		for (int to = DS_LAYOUT_BUSHY; to <= DS_LAYOUT_FLAT; to++) {
			char dest[4096];

			if ((ds_layout)to == from)
				continue;
			snprintf(dest, sizeof(dest), "%s/%s-%s", scratch,
			         masters[i], ds_layout_str((ds_layout)to));
			relayout(masters[i], from, (ds_layout)to, dest);
			check_home(dest, (ds_layout)to, m, 0);
			fixture_remove_tree(dest);
		}
		json_decref(m);
	}
}

/* The chunky and lawn paths of fixtures/README.md, on a re-laid copy of
 * bushy-master: the files are where the README says. */
static void
test_readme_paths_in_relaid_bushy_master(void **state)
{
	static const struct {
		ds_layout layout;
		const char *rel;
		const char *name;
	} cases[] = {
		{DS_LAYOUT_CHUNKY, "o000/000/000/000/001A.c", "o000000000000001A.c"},
		{DS_LAYOUT_CHUNKY, "t040/D44.B2249CA6AA", "t040D44.B2249CA6AA"},
		{DS_LAYOUT_CHUNKY, "x/serial", "x.serial"},
		{DS_LAYOUT_LAWN, "o000000000000001A/c", "o000000000000001A.c"},
		{DS_LAYOUT_LAWN, "t040D44/B2249CA6AA", "t040D44.B2249CA6AA"},
		{DS_LAYOUT_LAWN, "x/serial", "x.serial"},
		{DS_LAYOUT_BUSHY, "t0/40/D44/B2249CA6AA", "t040D44.B2249CA6AA"},
		{DS_LAYOUT_BUSHY, "o0/00/00/00/00/00/00/01A/c", "o000000000000001A.c"},
	};
	const char *scratch = *state;
	char home[4096], dest[4096];

	fixture_home("bushy-master", home, sizeof(home));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char a[8400], b[8400], name[DS_NAME_MAX];
		unsigned char *x, *y;
		size_t xl, yl, bl;
		ds_error err;

		/* bushy: the fixture itself; the others: a re-laid copy */
		if (cases[i].layout == DS_LAYOUT_BUSHY)
			snprintf(dest, sizeof(dest), "%s", home);
		else
			snprintf(dest, sizeof(dest), "%s/%s", scratch,
			         ds_layout_str(cases[i].layout));
		if (access(dest, F_OK) != 0)
			relayout("bushy-master", DS_LAYOUT_BUSHY, cases[i].layout,
			         dest);
		assert_int_equal(ds_layout_path_to_name(cases[i].layout,
		                                        cases[i].rel, name,
		                                        sizeof(name), &err),
		                 DS_OK);
		assert_string_equal(name, cases[i].name);
		snprintf(a, sizeof(a), "%s/A/%s", dest, cases[i].rel);
		assert_int_equal(ds_layout_name_to_path(DS_LAYOUT_BUSHY, name, b,
		                                        sizeof(b), &err),
		                 DS_OK);
		bl = strlen(home);
		memmove(b + bl + 3, b, strlen(b) + 1);
		memcpy(b, home, bl);
		memcpy(b + bl, "/A/", 3);
		assert_int_equal(ds_file_read(a, 0, &x, &xl, &err), DS_OK);
		assert_int_equal(ds_file_read(b, 0, &y, &yl, &err), DS_OK);
		assert_int_equal(xl, yl);
		assert_memory_equal(x, y, xl);
		free(x);
		free(y);
	}
}

/* The shared helpers: a scratch copy (cp -a) keeps bytes, modes and
 * layout, so it agrees with the manifest like the original; removing it
 * leaves nothing behind. */
static void
test_scratch_copy_agrees(void **state)
{
	const char *name = "bushy-foreign-replica"; /* the smallest */
	const char *scratch = *state;
	char *copy = fixture_copy(name, scratch);
	json_t *m = fixture_manifest_load(name);
	struct stat st;

	assert_int_equal(stat(copy, &st), 0);
	check_home(copy, DS_LAYOUT_BUSHY, m, 1);
	fixture_remove_tree(copy);
	assert_int_not_equal(stat(copy, &st), 0);
	assert_int_equal(stat(scratch, &st), 0);
	json_decref(m);
	free(copy);
}

/* Each test that writes gets its own scratch directory, removed even
 * when the test fails. */
static int
scratch_setup(void **state)
{
	*state = fixture_scratch_dir();
	return 0;
}

static int
scratch_teardown(void **state)
{
	fixture_remove_tree(*state);
	free(*state);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_fixture_agrees_with_its_manifest),
		cmocka_unit_test_setup_teardown(test_masters_in_every_other_layout,
		                                scratch_setup, scratch_teardown),
		cmocka_unit_test_setup_teardown(
			test_readme_paths_in_relaid_bushy_master, scratch_setup,
			scratch_teardown),
		cmocka_unit_test_setup_teardown(test_scratch_copy_agrees,
		                                scratch_setup, scratch_teardown),
	};

	umask(022);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
