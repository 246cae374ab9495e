/*
 * test_io.c - the I/O layer's two promises about paths (src/io.c):
 *  - beneath a home registered with ds_io_guard, no write follows a
 *    symlink: opening for writing, mkdir, mkdirs, rename and unlink
 *    through a symlinked directory (or onto a symlink) fail with
 *    DS_ECORRUPT naming the symlink and leave the target untouched;
 *    with openat2 and with the component-by-component walk used where
 *    the kernel lacks it; the home itself may be a symlink; outside any
 *    registered home nothing changes;
 *  - ds_io_replace_* never writes in place: a hard link to the old file
 *    keeps the old content, the new file has a new inode, a temporary
 *    file a killed run left is reused and gone afterwards, and a failed
 *    or aborted replacement leaves the old file and no temporary file;
 *    with DS_IO_REPLACE_DIRECT a new file is written under its own name
 *    and an existing one is still replaced.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "helper_fixture.h"
#include "internal.h"

struct t {
	char *scratch;
	char home[4096], out[4096];
};

static int
setup(void **state)
{
	struct t *t = calloc(1, sizeof(*t));
	char p[4200];

	if (t == NULL)
		return -1;
	umask(022);
	t->scratch = fixture_scratch_dir();
	snprintf(t->home, sizeof(t->home), "%s/home", t->scratch);
	snprintf(t->out, sizeof(t->out), "%s/outside", t->scratch);
	if (mkdir(t->home, 0755) != 0 || mkdir(t->out, 0755) != 0)
		return -1;
	snprintf(p, sizeof(p), "%s/A", t->home);
	if (mkdir(p, 0755) != 0)
		return -1;
	/* A/link -> outside */
	snprintf(p, sizeof(p), "%s/A/link", t->home);
	if (symlink(t->out, p) != 0)
		return -1;
	*state = t;
	return 0;
}

static int
teardown(void **state)
{
	struct t *t = *state;

	ds_io_use_openat2(1);
	fixture_remove_tree(t->scratch);
	free(t->scratch);
	free(t);
	return 0;
}

static int
entries(const char *dir)
{
	char cmd[4200];
	FILE *f;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", dir);
	f = popen(cmd, "r");
	if (f == NULL)
		return -1;
	if (fscanf(f, "%d", &n) != 1)
		n = -1;
	pclose(f);
	return n;
}

static void
expect_symlink(int rc, const ds_error *err, const char *link)
{
	assert_int_equal(rc, DS_ECORRUPT);
	assert_non_null(strstr(err->msg, link));
	assert_non_null(strstr(err->msg, "is a symlink"));
}

static void
refuses(struct t *t)
{
	char p[4200], q[4200], link[4200];
	ds_error err;
	int fd, rc;

	snprintf(link, sizeof(link), "%s/A/link", t->home);
	assert_int_equal(ds_io_guard(t->home, &err), DS_OK);

	snprintf(p, sizeof(p), "%s/A/link/f", t->home);
	rc = ds_io_open(p, O_WRONLY | O_CREAT, 0644, &fd, &err);
	expect_symlink(rc, &err, link);
	rc = ds_io_write_file(p, "x", 1, 0644, 1, 0, &err);
	expect_symlink(rc, &err, link);
	rc = ds_io_replace_file(p, "x", 1, 0644, 0, &err);
	expect_symlink(rc, &err, link);
	snprintf(q, sizeof(q), "%s/A/link/d/e", t->home);
	rc = ds_io_mkdirs(q, 0755, &err);
	expect_symlink(rc, &err, link);
	snprintf(q, sizeof(q), "%s/A/link/d", t->home);
	rc = ds_io_mkdir(q, 0755, 1, &err);
	expect_symlink(rc, &err, link);
	/* the symlink itself as the last component: not followed */
	rc = ds_io_open(link, O_WRONLY | O_CREAT, 0644, &fd, &err);
	expect_symlink(rc, &err, link);
	rc = ds_io_mkdir(link, 0755, 1, &err);
	expect_symlink(rc, &err, link);
	/* rename into or out of it, unlink beneath it */
	snprintf(q, sizeof(q), "%s/A/g", t->home);
	assert_int_equal(ds_io_write_file(q, "g", 1, 0644, 1, 0, &err), DS_OK);
	rc = ds_io_rename(q, p, &err);
	expect_symlink(rc, &err, link);
	rc = ds_io_unlink(p, &err);
	expect_symlink(rc, &err, link);
	assert_int_equal(entries(t->out), 0);

	/* a file outside, reachable through the link: never replaced */
	snprintf(q, sizeof(q), "%s/f", t->out);
	assert_int_equal(ds_io_write_file(q, "old", 3, 0644, 1, 0, &err), DS_OK);
	rc = ds_io_replace_file(p, "new", 3, 0644, 0, &err);
	expect_symlink(rc, &err, link);
	rc = ds_io_unlink(p, &err);
	expect_symlink(rc, &err, link);
	assert_int_equal(entries(t->out), 1);
	assert_int_equal(unlink(q), 0);

	ds_io_unguard(t->home);
	/* unregistered: the link is followed again */
	assert_int_equal(ds_io_write_file(p, "x", 1, 0644, 1, 0, &err), DS_OK);
	assert_int_equal(entries(t->out), 1);
	assert_int_equal(unlink(p), 0);
}

static void
test_refuses_openat2(void **state)
{
	ds_io_use_openat2(1);
	refuses(*state);
}

static void
test_refuses_walk(void **state)
{
	ds_io_use_openat2(0);
	refuses(*state);
}

static void
works(struct t *t)
{
	char p[8400], q[8400], home2[4200];
	ds_error err;

	/* the home reached through a symlink is fine */
	snprintf(home2, sizeof(home2), "%s/home-link", t->scratch);
	assert_int_equal(symlink(t->home, home2), 0);
	assert_int_equal(ds_io_guard(home2, &err), DS_OK);
	snprintf(p, sizeof(p), "%s/A/a/b/c", home2);
	assert_int_equal(ds_io_mkdirs(p, 0755, &err), DS_OK);
	assert_int_equal(ds_io_mkdirs(p, 0755, &err), DS_OK);
	snprintf(p, sizeof(p), "%s/A/a/b/c/f", home2);
	assert_int_equal(ds_io_replace_file(p, "1", 1, 0640, 1, &err), DS_OK);
	snprintf(q, sizeof(q), "%s/A/a/g", home2);
	assert_int_equal(ds_io_rename(p, q, &err), DS_OK);
	assert_int_equal(ds_io_unlink(q, &err), DS_OK);
	/* a trailing slash on the home, doubled slashes in the path */
	ds_io_unguard(home2);
	snprintf(home2, sizeof(home2), "%s/", t->home);
	assert_int_equal(ds_io_guard(home2, &err), DS_OK);
	snprintf(p, sizeof(p), "%s//A//a/b/c/h", t->home);
	assert_int_equal(ds_io_write_file(p, "h", 1, 0640, 1, 0, &err), DS_OK);
	snprintf(p, sizeof(p), "%s//A//link//h", t->home);
	expect_symlink(ds_io_write_file(p, "h", 1, 0640, 1, 0, &err), &err,
	               "/A//link");
	/* ".." cannot lead out of the home */
	snprintf(p, sizeof(p), "%s/A/../../outside/h", t->home);
	assert_int_not_equal(ds_io_write_file(p, "h", 1, 0640, 1, 0, &err),
	                     DS_OK);
	assert_int_equal(entries(t->out), 0);
	ds_io_unguard(home2);
}

static void
test_works_openat2(void **state)
{
	ds_io_use_openat2(1);
	works(*state);
}

static void
test_works_walk(void **state)
{
	ds_io_use_openat2(0);
	works(*state);
}

static void
read_text(const char *path, char *buf, size_t sz)
{
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, sz - 1, f);
	buf[n] = '\0';
	fclose(f);
}

static void
test_replace(void **state)
{
	struct t *t = *state;
	char p[4200], l[4200], tmp[4200], buf[64];
	struct stat st0, st1;
	ds_io_replace r;
	ds_error err;
	int fd;

	assert_int_equal(ds_io_guard(t->home, &err), DS_OK);
	snprintf(p, sizeof(p), "%s/A/serial", t->home);
	snprintf(l, sizeof(l), "%s/copy", t->scratch);
	snprintf(tmp, sizeof(tmp), "%s/A/" DS_IO_TEMP_PREFIX "serial", t->home);
	assert_int_equal(ds_io_replace_file(p, "one", 3, 0644, 1, &err), DS_OK);
	assert_int_equal(link(p, l), 0);
	assert_int_equal(stat(p, &st0), 0);
	assert_int_equal(ds_io_replace_file(p, "two", 3, 0644, 1, &err), DS_OK);
	assert_int_equal(stat(p, &st1), 0);
	assert_int_not_equal(st0.st_ino, st1.st_ino);
	read_text(p, buf, sizeof(buf));
	assert_string_equal(buf, "two");
	read_text(l, buf, sizeof(buf));
	assert_string_equal(buf, "one");
	assert_true(ds_io_is_temp(tmp));
	assert_false(ds_io_is_temp(p));

	/* a leftover of a killed run (even one hard-linked elsewhere) is
	 * replaced, not written into, and gone afterwards */
	assert_int_equal(link(l, tmp), 0);
	assert_int_equal(ds_io_replace_file(p, "three", 5, 0644, 0, &err),
	                 DS_OK);
	read_text(p, buf, sizeof(buf));
	assert_string_equal(buf, "three");
	read_text(l, buf, sizeof(buf));
	assert_string_equal(buf, "one");
	assert_int_equal(access(tmp, F_OK), -1);

	/* aborted: the old file stays, no temporary file */
	assert_int_equal(ds_io_replace_open(p, 0644, 0, &r, &fd, &err), DS_OK);
	assert_int_equal(access(tmp, F_OK), 0);
	assert_int_equal(ds_io_write_all(fd, "four", 4, p, &err), DS_OK);
	ds_io_replace_abort(&r, fd);
	assert_int_equal(access(tmp, F_OK), -1);
	read_text(p, buf, sizeof(buf));
	assert_string_equal(buf, "three");

	/* DS_IO_REPLACE_DIRECT: a new file under its own name (no temporary
	 * file while it is written); an existing one is still replaced */
	{
		char q[4200];
		struct stat st2;

		snprintf(q, sizeof(q), "%s/A/new", t->home);
		assert_int_equal(ds_io_replace_open(q, 0644,
		    DS_IO_REPLACE_DIRECT, &r, &fd, &err), DS_OK);
		assert_int_equal(access(q, F_OK), 0);
		assert_int_equal(ds_io_write_all(fd, "d", 1, q, &err), DS_OK);
		assert_int_equal(ds_io_replace_commit(&r, fd, 0, &err), DS_OK);
		read_text(q, buf, sizeof(buf));
		assert_string_equal(buf, "d");
		assert_int_equal(stat(p, &st0), 0);
		assert_int_equal(ds_io_replace_open(p, 0644,
		    DS_IO_REPLACE_DIRECT, &r, &fd, &err), DS_OK);
		assert_int_equal(access(tmp, F_OK), 0);
		assert_int_equal(ds_io_write_all(fd, "six", 3, p, &err), DS_OK);
		assert_int_equal(ds_io_replace_commit(&r, fd, 1, &err), DS_OK);
		assert_int_equal(stat(p, &st2), 0);
		assert_int_not_equal(st0.st_ino, st2.st_ino);
		read_text(p, buf, sizeof(buf));
		assert_string_equal(buf, "six");
		read_text(l, buf, sizeof(buf));
		assert_string_equal(buf, "one");
		assert_int_equal(access(tmp, F_OK), -1);
	}

	/* the same outside a registered home (paths, not *at names) */
	ds_io_unguard(t->home);
	assert_int_equal(ds_io_replace_file(p, "five", 4, 0644, 1, &err),
	                 DS_OK);
	read_text(p, buf, sizeof(buf));
	assert_string_equal(buf, "five");
	assert_int_equal(access(tmp, F_OK), -1);
	/* a name too long once prefixed */
	memset(buf, 'n', 60);
	buf[60] = '\0';
	{
		char longp[4200 + 300];
		char name[300];
		memset(name, 'n', 250);
		name[250] = '\0';
		snprintf(longp, sizeof(longp), "%s/A/%s", t->home, name);
		assert_int_equal(ds_io_replace_file(longp, "x", 1, 0644, 0,
		                                    &err), DS_EINVAL);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_refuses_openat2, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_refuses_walk, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_works_openat2, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_works_walk, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_replace, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
