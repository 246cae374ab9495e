/*
 * test_snapshot.c - snapshot acquisition: direct access holds misc/lock
 * and misc/sublock (a second snapshot and an engine open are refused), an
 * enclosing `ds snapshot` is reused, snapshot.conf lines (garbage warned
 * about, nodirect), a storage not closed into snapshot mode, retries.
 * (The http line against a real XML-RPC server is in e2e/t_snapshot.sh.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "helper_engine.h"
#include "helper_fixture.h"
#include "internal.h"

static int
exists(const char *home, const char *rel)
{
	char path[4096];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", home, rel);
	return stat(path, &st) == 0;
}

static void
write_text(const char *path, const char *text)
{
	ds_error err;

	assert_int_equal(ds_io_write_file(path, text, strlen(text), 0644, 0, 0,
	                                  &err), DS_OK);
}

static void
test_direct_excludes_others(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = fixture_copy("bushy-master", scratch);
	struct engine_log log = {0};
	struct ds_snapshot_opts o = {0};
	ds_snapshot *s = NULL, *s2 = NULL;
	ds_storage *st = NULL;
	char real[4096];
	ds_error err;

	(void)state;
	o.log = engine_log_cb;
	o.log_ctx = &log;
	assert_int_equal(ds_snapshot_acquire(home, &o, &s, &err), DS_OK);
	assert_non_null(realpath(home, real));
	assert_string_equal(ds_snapshot_dir(s), real);
	assert_int_equal(ds_snapshot_inherited(s), 0);
	assert_true(llabs(ds_snapshot_timestamp(s) - (long long)time(NULL)) < 5);
	assert_non_null(strstr(log.text, "Entered snapshot using direct access"));
	assert_non_null(strstr(log.text, "Locked snapshot mode"));
	assert_true(exists(home, "misc/snapshot"));
	assert_false(engine_lockable(home, "lock"));
	assert_false(engine_lockable(home, "sublock"));
	/* a second snapshot is busy, cleanly */
	assert_int_equal(ds_snapshot_acquire(home, NULL, &s2, &err), DS_EBUSY);
	assert_null(s2);
	assert_non_null(strstr(err.msg, "in use"));
	/* and so is the engine */
	assert_int_equal(ds_storage_open(home, 0, &st, &err), DS_ELOCKED);
	assert_null(st);

	assert_int_equal(ds_snapshot_release(s, &err), DS_OK);
	assert_non_null(strstr(log.text, "Unlocked snapshot mode"));
	assert_true(engine_lockable(home, "lock"));
	assert_true(engine_lockable(home, "sublock"));
	/* a closed storage stays a snapshot */
	assert_true(exists(home, "misc/snapshot"));
	free(home);
	fixture_remove_tree(scratch);
	free(scratch);
}

static void
test_inherited_environment(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = fixture_copy("flat-master", scratch);
	char *other = fixture_copy("bushy-master", scratch);
	ds_snapshot *s = NULL;
	ds_error err;

	(void)state;
	setenv("SNAPSHOT_VERSION", "2", 1);
	setenv("SNAPSHOT_DIRECTORY", home, 1);
	setenv("SNAPSHOT_TIMESTAMP", "1795671000", 1);
	assert_int_equal(ds_snapshot_acquire(NULL, NULL, &s, &err), DS_OK);
	assert_int_equal(ds_snapshot_inherited(s), 1);
	assert_string_equal(ds_snapshot_dir(s), home);
	assert_int_equal(ds_snapshot_timestamp(s), 1795671000LL);
	/* it takes no locks of its own: the enclosing snapshot holds them */
	assert_true(engine_lockable(home, "sublock"));
	assert_int_equal(ds_snapshot_release(s, &err), DS_OK);
	s = NULL;
	assert_int_equal(ds_snapshot_acquire(home, NULL, &s, &err), DS_OK);
	assert_int_equal(ds_snapshot_inherited(s), 1);
	ds_snapshot_release(s, NULL);
	s = NULL;
	/* another directory than the enclosing one */
	assert_int_equal(ds_snapshot_acquire(other, NULL, &s, &err), DS_EINVAL);
	assert_non_null(strstr(err.msg, "directories different"));
	setenv("SNAPSHOT_VERSION", "3", 1);
	assert_int_equal(ds_snapshot_acquire(home, NULL, &s, &err), DS_ECONFIG);
	unsetenv("SNAPSHOT_VERSION");
	unsetenv("SNAPSHOT_DIRECTORY");
	unsetenv("SNAPSHOT_TIMESTAMP");
	/* without the environment, a directory is needed */
	assert_int_equal(ds_snapshot_acquire(NULL, NULL, &s, &err), DS_EINVAL);
	free(home);
	free(other);
	fixture_remove_tree(scratch);
	free(scratch);
}

static void
test_conf_lines(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = fixture_copy("bushy-master", scratch);
	char conf[4096];
	struct engine_log log = {0};
	struct ds_snapshot_opts o = {0};
	ds_snapshot *s = NULL;
	ds_error err;

	(void)state;
	o.log = engine_log_cb;
	o.log_ctx = &log;
	snprintf(conf, sizeof(conf), "%s/config/snapshot.conf", home);
	/* garbage is warned about (level 0), never fatal; the last-resort
	 * direct still works */
	write_text(conf, "frobnicate now\n\nhttp only-two-fields\n");
	assert_int_equal(ds_snapshot_acquire(home, &o, &s, &err), DS_OK);
	assert_non_null(strstr(log.text, "0 malformed line 1 in "));
	assert_non_null(strstr(log.text, "0 malformed line 3 in "));
	assert_null(strstr(log.text, "malformed line 2"));
	assert_int_equal(ds_snapshot_release(s, &err), DS_OK);
	s = NULL;

	/* nodirect: nothing left to try */
	write_text(conf, "nodirect\n");
	assert_int_equal(ds_snapshot_acquire(home, &o, &s, &err), DS_EBUSY);
	assert_null(s);
	assert_true(engine_lockable(home, "lock"));

	/* an http server that is not there, then direct */
	write_text(conf, "http http://127.0.0.1:9/ access\ndirect\n");
	snprintf(conf, sizeof(conf), "%s/config/access", home);
	write_text(conf, "user:secret\n");
	assert_int_equal(ds_snapshot_acquire(home, &o, &s, &err), DS_OK);
	assert_int_equal(ds_snapshot_release(s, &err), DS_OK);
	s = NULL;

	/* --snapshot-conf: another file, the default one ignored */
	snprintf(conf, sizeof(conf), "%s/other.conf", scratch);
	write_text(conf, "nodirect\n");
	o.conf_path = conf;
	assert_int_equal(ds_snapshot_acquire(home, &o, &s, &err), DS_EBUSY);
	free(home);
	fixture_remove_tree(scratch);
	free(scratch);
}

static void
test_not_a_snapshot_and_retries(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = fixture_copy("bushy-master", scratch);
	char path[4096];
	struct engine_log log = {0};
	struct ds_snapshot_opts o = {0};
	ds_snapshot *s = NULL;
	ds_lock *l = NULL;
	ds_error err;
	time_t t0;

	(void)state;
	/* as after a crash: no misc/snapshot. Direct access opens and closes
	 * the storage through the engine, which leaves it a snapshot. */
	snprintf(path, sizeof(path), "%s/misc/snapshot", home);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(ds_snapshot_acquire(home, NULL, &s, &err), DS_OK);
	assert_true(exists(home, "misc/snapshot"));
	assert_int_equal(ds_snapshot_release(s, &err), DS_OK);
	s = NULL;

	/* the same with [filesystem] quick_shutdown: 1, where a plain close
	 * would not enter snapshot mode */
	{
		char cmd[8192];
		snprintf(cmd, sizeof(cmd), "sed -i 's/^quick_shutdown: 0/"
		         "quick_shutdown: 1/' '%s/config/settings' && grep -q "
		         "'^quick_shutdown: 1' '%s/config/settings'", home, home);
		assert_int_equal(system(cmd), 0);
	}
	snprintf(path, sizeof(path), "%s/misc/snapshot", home);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(ds_snapshot_acquire(home, NULL, &s, &err), DS_OK);
	assert_true(exists(home, "misc/snapshot"));
	assert_int_equal(ds_snapshot_release(s, &err), DS_OK);
	s = NULL;

	/* someone else holds the sublock: retried for -t, then busy */
	snprintf(path, sizeof(path), "%s/misc/sublock", home);
	assert_int_equal(ds_lock_acquire(path, &l, &err), DS_OK);
	o.timeout = 2;
	o.sleep = 1;
	o.log = engine_log_cb;
	o.log_ctx = &log;
	t0 = time(NULL);
	assert_int_equal(ds_snapshot_acquire(home, &o, &s, &err), DS_EBUSY);
	assert_true(time(NULL) - t0 >= 2);
	assert_non_null(strstr(log.text, "Retrying snapshot...."));
	ds_lock_release(l);
	/* not a storage */
	assert_int_equal(ds_snapshot_acquire(scratch, NULL, &s, &err),
	                 DS_ENOTFOUND);
	free(home);
	fixture_remove_tree(scratch);
	free(scratch);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_direct_excludes_others),
		cmocka_unit_test(test_inherited_environment),
		cmocka_unit_test(test_conf_lines),
		cmocka_unit_test(test_not_a_snapshot_and_retries),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
