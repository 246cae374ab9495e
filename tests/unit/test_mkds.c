/*
 * test_mkds.c - ds_storage_create makes what the original's mkds.py makes:
 * the settings text byte for byte (compared with the fixtures the original
 * wrote), the directories, the zeroed x.* files at their layout paths, the
 * modes, a random identity; refuses what it must and leaves nothing behind
 * when it fails part way.
 */
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "helper_fixture.h"
#include "internal.h"

#define BUSHY_SETTINGS_MD5 "4919f26c09c74b1faadd9a576872e3da"

struct mk {
	char *scratch;
	char home[4096];
};

static int
setup(void **state)
{
	struct mk *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return -1;
	umask(022);
	t->scratch = fixture_scratch_dir();
	snprintf(t->home, sizeof(t->home), "%s/store", t->scratch);
	*state = t;
	return 0;
}

static int
teardown(void **state)
{
	struct mk *t = *state;

	fixture_remove_tree(t->scratch);
	free(t->scratch);
	free(t);
	return 0;
}

static char *
slurp(const char *path, size_t *len)
{
	unsigned char *buf = NULL;
	ds_error err;

	if (ds_file_read(path, 0, &buf, len, &err) != DS_OK)
		fail_msg("%s", err.msg);
	return (char *)buf;
}

/* text with the first occurrence of from replaced by to (malloc'd). */
static char *
replace(const char *text, size_t len, const char *from, const char *to,
        size_t *outlen)
{
	const char *at = strstr(text, from);
	size_t fl = strlen(from), tl = strlen(to);
	char *out;

	assert_non_null(at);
	*outlen = len - fl + tl;
	out = malloc(*outlen + 1);
	assert_non_null(out);
	memcpy(out, text, (size_t)(at - text));
	memcpy(out + (at - text), to, tl);
	memcpy(out + (at - text) + tl, at + fl,
	       len - (size_t)(at - text) - fl);
	out[*outlen] = '\0';
	return out;
}

static void
create_ok(const char *home, const char *classname, const char *format)
{
	ds_error err;

	ds_error_clear(&err);
	if (ds_storage_create(home, classname, format, &err) != DS_OK)
		fail_msg("create %s %s %s: %s", home, classname, format, err.msg);
}

/* config/settings of a new storage equals want[0..wantlen). */
static void
expect_settings(const char *home, const char *want, size_t wantlen)
{
	char path[4200];
	size_t len;
	char *got;

	snprintf(path, sizeof(path), "%s/config/settings", home);
	got = slurp(path, &len);
	assert_int_equal(len, wantlen);
	assert_memory_equal(got, want, wantlen);
	free(got);
}

/* Byte for byte what the original wrote in the fixtures. */
static void
test_settings_match_original(void **state)
{
	struct mk *t = *state;
	char fx[4096], path[4200], md5[33], home[4200];
	char *bushy, *flat, *want;
	size_t blen, flen, wlen;

	fixture_home("bushy-master", fx, sizeof(fx));
	snprintf(path, sizeof(path), "%s/config/settings", fx);
	bushy = slurp(path, &blen);
	fixture_md5_hex(bushy, blen, md5);
	assert_string_equal(md5, BUSHY_SETTINGS_MD5);
	fixture_home("flat-master", fx, sizeof(fx));
	snprintf(path, sizeof(path), "%s/config/settings", fx);
	flat = slurp(path, &flen);

	create_ok(t->home, "Full", "bushy");
	expect_settings(t->home, bushy, blen);

	snprintf(home, sizeof(home), "%s/flat", t->scratch);
	create_ok(home, "Full", "flat");
	expect_settings(home, flat, flen);

	/* the original substitutes only the class and the format */
	snprintf(home, sizeof(home), "%s/minimal", t->scratch);
	create_ok(home, "Minimal", "bushy");
	want = replace(bushy, blen, "\nclassname: Full\n",
	               "\nclassname: Minimal\n", &wlen);
	expect_settings(home, want, wlen);
	free(want);

	static const char *const others[] = { "chunky", "lawn" };
	for (size_t i = 0; i < 2; i++) {
		char line[64];
		snprintf(home, sizeof(home), "%s/%s", t->scratch, others[i]);
		create_ok(home, "Full", others[i]);
		snprintf(line, sizeof(line), "\nformat: %s\n", others[i]);
		want = replace(bushy, blen, "\nformat: bushy\n", line, &wlen);
		expect_settings(home, want, wlen);
		free(want);
	}
	free(bushy);
	free(flat);
}

/* ---- the whole tree: every path, type, mode and size ---- */

static char tree_buf[8192];
static size_t tree_root_len;

static int
tree_visit(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	const char *rel = path + tree_root_len;
	size_t used = strlen(tree_buf);
	(void)flag;
	(void)f;

	if (*rel == '/')
		rel++;
	snprintf(tree_buf + used, sizeof(tree_buf) - used, "%s %s %04o %lld\n",
	         *rel ? rel : ".",
	         S_ISDIR(st->st_mode) ? "d" : S_ISREG(st->st_mode) ? "f" : "?",
	         (unsigned)(st->st_mode & 07777),
	         S_ISDIR(st->st_mode) ? 0LL : (long long)st->st_size);
	return 0;
}

static int
line_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "path type mode size" lines of the tree under root, sorted. */
static char *
tree_listing(const char *root)
{
	char *lines[256], *copy, *out, *save = NULL;
	size_t n = 0, used = 0;

	tree_buf[0] = '\0';
	tree_root_len = strlen(root);
	assert_int_equal(nftw(root, tree_visit, 16, FTW_PHYS), 0);
	copy = strdup(tree_buf);
	assert_non_null(copy);
	for (char *l = strtok_r(copy, "\n", &save); l != NULL;
	     l = strtok_r(NULL, "\n", &save)) {
		assert_true(n < 256);
		lines[n++] = l;
	}
	qsort(lines, n, sizeof(lines[0]), line_cmp);
	out = calloc(1, sizeof(tree_buf));
	assert_non_null(out);
	for (size_t i = 0; i < n; i++)
		used += (size_t)snprintf(out + used, sizeof(tree_buf) - used,
		                         "%s\n", lines[i]);
	free(copy);
	return out;
}

static void
test_layout_every_format(void **state)
{
	struct mk *t = *state;
	static const char *const common =
		". d 0755 0\n"
		"A d 0755 0\n"
		"B d 0755 0\n"
		"config d 0755 0\n"
		"config/identity f 0644 32\n"
		"config/settings f 0644 %zu\n"
		"journal d 0755 0\n"
		"misc d 0755 0\n";
	static const char *const xdir =
		"A/x d 0755 0\n"
		"A/x/oid f 0644 8\n"
		"A/x/packed f 0644 8\n"
		"A/x/serial f 0644 8\n";
	static const char *const xflat =
		"A/x.oid f 0644 8\n"
		"A/x.packed f 0644 8\n"
		"A/x.serial f 0644 8\n";
	static const char *const formats[] = { "bushy", "chunky", "lawn",
	                                       "flat" };

	for (size_t i = 0; i < 4; i++) {
		char home[4200], want_lines[2048], *want[32], *copy, *save = NULL;
		char want_sorted[2048], path[4400];
		char *got;
		size_t n = 0, used = 0, slen;
		struct stat st;

		snprintf(home, sizeof(home), "%s/%s", t->scratch, formats[i]);
		create_ok(home, i == 1 ? "Minimal" : "Full", formats[i]);
		snprintf(path, sizeof(path), "%s/config/settings", home);
		assert_int_equal(stat(path, &st), 0);
		slen = (size_t)st.st_size;
		n = (size_t)snprintf(want_lines, sizeof(want_lines), common, slen);
		snprintf(want_lines + n, sizeof(want_lines) - n, "%s",
		         i == 3 ? xflat : xdir);
		/* sort the expected lines the same way */
		copy = strdup(want_lines);
		n = 0;
		for (char *l = strtok_r(copy, "\n", &save); l != NULL;
		     l = strtok_r(NULL, "\n", &save))
			want[n++] = l;
		qsort(want, n, sizeof(want[0]), line_cmp);
		for (size_t k = 0; k < n; k++)
			used += (size_t)snprintf(want_sorted + used,
			                         sizeof(want_sorted) - used, "%s\n",
			                         want[k]);
		got = tree_listing(home);
		if (strcmp(got, want_sorted) != 0)
			fail_msg("%s: tree\n%s\nwant\n%s", formats[i], got,
			         want_sorted);
		free(got);
		free(copy);

		/* the x.* files hold 8 zero bytes, read through the codec */
		static const char *const xnames[] = { "x.oid", "x.serial",
		                                      "x.packed" };
		for (size_t k = 0; k < 3; k++) {
			char rel[DS_RELPATH_MAX];
			unsigned char *buf;
			size_t len;
			uint64_t v = 1;
			ds_error err;
			ds_layout layout;
			assert_int_equal(ds_layout_parse(formats[i], &layout, &err),
			                 DS_OK);
			assert_int_equal(ds_layout_name_to_path(layout, xnames[k], rel,
			                                        sizeof(rel), &err),
			                 DS_OK);
			snprintf(path, sizeof(path), "%s/A/%s", home, rel);
			buf = (unsigned char *)slurp(path, &len);
			assert_int_equal(ds_xfile_decode(buf, len, path, &v, &err),
			                 DS_OK);
			assert_int_equal(v, 0);
			free(buf);
		}
	}
}

/* The same top-level directories as a storage the original made. */
static void
test_same_dirs_as_fixture(void **state)
{
	struct mk *t = *state;
	static const char *const dirs[] = { "A", "B", "config", "journal",
	                                    "misc" };
	char fx[4096];

	fixture_home("bushy-master", fx, sizeof(fx));
	create_ok(t->home, "Full", "bushy");
	for (size_t i = 0; i < 5; i++) {
		char a[4200], b[4200];
		struct stat sa, sb;
		snprintf(a, sizeof(a), "%s/%s", fx, dirs[i]);
		snprintf(b, sizeof(b), "%s/%s", t->home, dirs[i]);
		assert_int_equal(stat(a, &sa), 0);
		assert_int_equal(stat(b, &sb), 0);
		assert_true(S_ISDIR(sa.st_mode) && S_ISDIR(sb.st_mode));
		assert_int_equal(sa.st_mode & 07777, sb.st_mode & 07777);
	}
	for (const char *f = "config/settings"; f != NULL;
	     f = strcmp(f, "config/settings") == 0 ? "config/identity" : NULL) {
		char a[4200], b[4200];
		struct stat sa, sb;
		snprintf(a, sizeof(a), "%s/%s", fx, f);
		snprintf(b, sizeof(b), "%s/%s", t->home, f);
		assert_int_equal(stat(a, &sa), 0);
		assert_int_equal(stat(b, &sb), 0);
		assert_int_equal(sa.st_mode & 07777, sb.st_mode & 07777);
	}
}

static void
test_identity_random(void **state)
{
	struct mk *t = *state;
	char ids[4][33];

	for (int i = 0; i < 4; i++) {
		char home[4200], path[4300];
		size_t len;
		char *id;
		snprintf(home, sizeof(home), "%s/s%d", t->scratch, i);
		create_ok(home, "Full", "bushy");
		snprintf(path, sizeof(path), "%s/config/identity", home);
		id = slurp(path, &len);
		assert_int_equal(len, 32);  /* no newline */
		for (size_t k = 0; k < 32; k++)
			assert_non_null(strchr("0123456789abcdef", id[k]));
		memcpy(ids[i], id, 32);
		ids[i][32] = '\0';
		free(id);
		for (int j = 0; j < i; j++)
			assert_string_not_equal(ids[i], ids[j]);
	}
}

/* The library reads back what it made, in every format and class. */
static void
test_config_load_of_result(void **state)
{
	struct mk *t = *state;
	static const char *const formats[] = { "bushy", "chunky", "lawn",
	                                       "flat" };
	static const char *const classes[] = { "Full", "Minimal" };

	for (size_t i = 0; i < 4; i++)
		for (size_t j = 0; j < 2; j++) {
			char home[4200], path[4300];
			ds_config c;
			ds_error err;
			ds_layout want;
			size_t len;
			char *id;

			snprintf(home, sizeof(home), "%s/%s-%s", t->scratch,
			         formats[i], classes[j]);
			create_ok(home, classes[j], formats[i]);
			ds_error_clear(&err);
			if (ds_config_load(home, &c, &err) != DS_OK)
				fail_msg("%s", err.msg);
			assert_int_equal(ds_layout_parse(formats[i], &want, &err),
			                 DS_OK);
			assert_int_equal(c.layout, want);
			assert_string_equal(c.classname, classes[j]);
			snprintf(path, sizeof(path), "%s/config/identity", home);
			id = slurp(path, &len);
			assert_memory_equal(c.identity, id, 32);
			free(id);
			assert_int_equal(c.sync, 1);
			assert_int_equal(c.dirsync, 1);
			assert_int_equal(c.md5_write, 1);
			assert_int_equal(c.md5_overwrite, 0);
			assert_int_equal(c.delay_delete, 864000);
			assert_int_equal(c.min_pack_time, 600);
			assert_int_equal(c.backlog, 3);
		}
}

static void
expect_absent(const char *path)
{
	struct stat st;

	assert_int_equal(lstat(path, &st), -1);
	assert_int_equal(errno, ENOENT);
}

static void
test_refusals(void **state)
{
	struct mk *t = *state;
	char path[4300], *before, *after;
	ds_error err;

	/* unknown format or class: nothing is made */
	static const char *const badfmt[] = { "bushier", "auto", "", "Bushy" };
	for (size_t i = 0; i < 4; i++) {
		ds_error_clear(&err);
		assert_int_equal(ds_storage_create(t->home, "Full", badfmt[i], &err),
		                 DS_ECONFIG);
		assert_non_null(strstr(err.msg, "unknown format"));
		assert_non_null(strstr(err.msg, t->home));
		expect_absent(t->home);
	}
	static const char *const badclass[] = { "full", "Other", "" };
	for (size_t i = 0; i < 3; i++) {
		ds_error_clear(&err);
		assert_int_equal(ds_storage_create(t->home, badclass[i], "bushy",
		                                   &err), DS_ECONFIG);
		assert_non_null(strstr(err.msg, "unknown storage class"));
		expect_absent(t->home);
	}

	/* an existing storage is left exactly as it was */
	create_ok(t->home, "Full", "bushy");
	before = tree_listing(t->home);
	snprintf(path, sizeof(path), "%s/config/identity", t->home);
	size_t l1, l2;
	char *id1 = slurp(path, &l1), *id2;
	ds_error_clear(&err);
	assert_int_equal(ds_storage_create(t->home, "Full", "bushy", &err),
	                 DS_EEXIST);
	assert_non_null(strstr(err.msg, t->home));
	assert_non_null(strstr(err.msg, "already exists"));
	after = tree_listing(t->home);
	assert_string_equal(before, after);
	id2 = slurp(path, &l2);
	assert_int_equal(l1, l2);
	assert_memory_equal(id1, id2, l1);
	free(id1);
	free(id2);
	free(before);
	free(after);

	/* an empty directory, a file, a dangling symlink: all exist */
	snprintf(path, sizeof(path), "%s/empty", t->scratch);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(ds_storage_create(path, "Full", "flat", &err),
	                 DS_EEXIST);
	snprintf(path, sizeof(path), "%s/empty/x", t->scratch);
	expect_absent(path);
	snprintf(path, sizeof(path), "%s/file", t->scratch);
	fclose(fopen(path, "w"));
	assert_int_equal(ds_storage_create(path, "Full", "flat", &err),
	                 DS_EEXIST);
	snprintf(path, sizeof(path), "%s/link", t->scratch);
	assert_int_equal(symlink("nowhere", path), 0);
	assert_int_equal(ds_storage_create(path, "Full", "flat", &err),
	                 DS_EEXIST);

	/* a missing parent */
	snprintf(path, sizeof(path), "%s/no/such/store", t->scratch);
	ds_error_clear(&err);
	assert_int_equal(ds_storage_create(path, "Full", "bushy", &err),
	                 DS_ENOTFOUND);
	assert_non_null(strstr(err.msg, path));
	snprintf(path, sizeof(path), "%s/no", t->scratch);
	expect_absent(path);
}

/* A write that fails part way (file size limit: the settings file cannot
 * be written whole) removes everything made so far. In a child, because
 * of the rlimit. */
static void
test_failure_removes_everything(void **state)
{
	struct mk *t = *state;
	static const rlim_t limits[] = { 0, 4096 };
	struct stat st;

	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		pid_t pid;
		int status;
		char home[4200];

		snprintf(home, sizeof(home), "%s/lim%zu", t->scratch, i);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct rlimit rl = { limits[i], limits[i] };
			ds_error err;
			int rc;
			signal(SIGXFSZ, SIG_IGN);
			if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
				_exit(10);
			ds_error_clear(&err);
			rc = ds_storage_create(home, "Full", "bushy", &err);
			if (rc != DS_EIO)
				_exit(11);
			if (strstr(err.msg, home) == NULL ||
			    strstr(err.msg, "write") == NULL)
				_exit(12);
			_exit(0);
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
		assert_int_equal(lstat(home, &st), -1);
		assert_int_equal(errno, ENOENT);
	}
	/* the scratch dir holds nothing else */
	char *listing = tree_listing(t->scratch);
	assert_string_equal(listing, ". d 0700 0\n");
	free(listing);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_settings_match_original,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_layout_every_format, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_same_dirs_as_fixture, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_identity_random, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_config_load_of_result, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_removes_everything,
		                                setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
