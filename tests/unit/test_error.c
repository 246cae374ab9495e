/*
 * test_error.c - ds_error values: a message longer than its buffer keeps
 * its reason (the middle of its paths is elided, never its end), and the
 * errno texts a user sees (ELOOP from an O_NOFOLLOW open says "is a
 * symlink").
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "internal.h"

static void
test_short_message_unchanged(void **state)
{
	ds_error e;

	(void)state;
	assert_int_equal(ds_error_set(&e, DS_ECORRUPT, "read %s: %s", "/a/b",
	                              "bad magic"), DS_ECORRUPT);
	assert_string_equal(e.msg, "read /a/b: bad magic");
}

static void
test_long_path_keeps_reason(void **state)
{
	char path[4200];
	ds_error e;
	size_t n;

	(void)state;
	/* a path near PATH_MAX: 20 components of 200 bytes, then a tail */
	path[0] = '\0';
	for (int i = 0; i < 20; i++) {
		strcat(path, "/");
		memset(path + strlen(path), 'a' + i, 200);
		path[1 + i * 201 + 200] = '\0';
	}
	strcat(path, "/s/A/x/serial");
	assert_true(strlen(path) > DS_ERROR_MSG_MAX);
	ds_error_set(&e, DS_ENOTFOUND, "read %s: no such file", path);
	n = strlen(e.msg);
	assert_true(n < DS_ERROR_MSG_MAX);
	assert_true(n > DS_ERROR_MSG_MAX - 16);   /* uses the room it has */
	/* the operation, the path's two ends and the reason survive */
	assert_memory_equal(e.msg, "read /aaaa", 10);
	assert_non_null(strstr(e.msg, "..."));
	assert_non_null(strstr(e.msg, "t/s/A/x/serial: no such file"));
	assert_string_equal(e.msg + n - strlen("/s/A/x/serial: no such file"),
	                    "/s/A/x/serial: no such file");
}

static void
test_two_long_paths(void **state)
{
	char a[1500], b[1500];
	ds_error e;

	(void)state;
	memset(a, 'a', sizeof(a) - 1);
	a[0] = '/';
	a[sizeof(a) - 1] = '\0';
	memset(b, 'b', sizeof(b) - 1);
	b[0] = '/';
	b[sizeof(b) - 1] = '\0';
	ds_error_sys(&e, EXDEV, "rename", a);
	assert_true(strlen(e.msg) < 1600);   /* fits: nothing elided */
	ds_error_set(&e, DS_EIO, "rename %s to %s: %s", a, b,
	             "Invalid cross-device link");
	assert_true(strlen(e.msg) < DS_ERROR_MSG_MAX);
	assert_non_null(strstr(e.msg, "aaa to /bbb"));
	assert_non_null(strstr(e.msg, "bbb: Invalid cross-device link"));
}

static void
test_no_long_word(void **state)
{
	char big[3000];
	size_t k = 0;
	ds_error e;

	(void)state;
	while (k + 3 < sizeof(big) - 1) {
		memcpy(big + k, "ab ", 3);
		k += 3;
	}
	big[k] = '\0';
	ds_error_set(&e, DS_EINVAL, "%send", big);
	assert_true(strlen(e.msg) == DS_ERROR_MSG_MAX - 1);
	assert_string_equal(e.msg + strlen(e.msg) - 6, "ab end");
	assert_non_null(strstr(e.msg, "..."));
}

static void
test_eloop_says_symlink(void **state)
{
	char dir[] = "/tmp/ds-test-error-XXXXXX", link[64], target[64];
	ds_error e;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(target, sizeof(target), "%s/target", dir);
	snprintf(link, sizeof(link), "%s/link", dir);
	fd = open(target, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(symlink(target, link), 0);
	fd = open(link, O_RDONLY | O_NOFOLLOW);
	assert_true(fd < 0);
	assert_int_equal(errno, ELOOP);
	assert_int_equal(ds_error_sys(&e, errno, "open", link), DS_EIO);
	assert_int_equal(e.sys_errno, ELOOP);
	assert_non_null(strstr(e.msg, "link: is a symlink"));
	assert_null(strstr(e.msg, "Too many levels"));
	unlink(link);
	unlink(target);
	rmdir(dir);
}

/* ds_error_prefix: context in front, status replaced, errno kept; a
 * long context still leaves the reason at the end; NULL is accepted. */
static void
test_prefix(void **state)
{
	ds_error e;
	char longdir[3000];

	(void)state;
	ds_error_sys(&e, ENOSPC, "write", "/srv/ds/A/x/serial");
	assert_int_equal(ds_error_prefix(&e, DS_EIO, "replica %s", "/srv/r"),
	                 DS_EIO);
	assert_string_equal(e.msg, "replica /srv/r: write /srv/ds/A/x/serial: "
	                    "No space left on device");
	assert_int_equal(e.sys_errno, ENOSPC);
	assert_int_equal(ds_error_prefix(&e, DS_EBUSY, "again"), DS_EBUSY);
	assert_int_equal(e.status, DS_EBUSY);
	assert_int_equal(e.sys_errno, ENOSPC);
	memset(longdir, 'd', sizeof(longdir) - 1);
	longdir[sizeof(longdir) - 1] = '\0';
	ds_error_set(&e, DS_ECORRUPT, "bad file");
	ds_error_prefix(&e, DS_ECORRUPT, "check %s", longdir);
	assert_true(strlen(e.msg) < sizeof(e.msg));
	assert_non_null(strstr(e.msg, ": bad file"));
	assert_int_equal(ds_error_prefix(NULL, DS_EIO, "x"), DS_EIO);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_short_message_unchanged),
		cmocka_unit_test(test_long_path_keeps_reason),
		cmocka_unit_test(test_two_long_paths),
		cmocka_unit_test(test_no_long_word),
		cmocka_unit_test(test_eloop_says_symlink),
		cmocka_unit_test(test_prefix),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
