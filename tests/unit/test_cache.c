/*
 * test_cache.c - the engine's cache of current revisions (src/cache.c) and
 * when the engine must forget: the cache alone (bound by bytes, FIFO
 * eviction, too large not kept, drop, clear); through the engine, a load
 * after a commit, an undo or a restore sees the new current revision, a
 * load in snapshot mode neither uses nor fills the cache and entering or
 * leaving snapshot mode (which a pack does) forgets everything, a second
 * process cannot write the storage while it is open and what a later
 * writer commits is read after a reopen; the group fsync of io.c
 * (ds_io_fsync_many) makes every member durable and reports the failed
 * member's path.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cache.h"
#include "helper_engine.h"
#include "helper_fixture.h"
#include "internal.h"
#include "storage_internal.h"

static ds_error err;

#define OK(call)                                                        \
	do {                                                            \
		int rc_;                                                \
		ds_error_clear(&err);                                   \
		rc_ = (call);                                           \
		if (rc_ != DS_OK)                                       \
			fail_msg("%s: %s (%d)", #call, err.msg, rc_);   \
	} while (0)

/* ---- the cache alone ---- */

static void
test_cache_bounds(void **state)
{
	struct cache *c;
	unsigned char big[4096], small[100];
	const unsigned char *p;
	ds_tid serial, prev;
	size_t len;

	(void)state;
	memset(big, 'b', sizeof(big));
	memset(small, 's', sizeof(small));
	OK(cache_new(8 * 1024, &c, &err));
	/* larger than an eighth of the bound: not kept */
	cache_put(c, 1, 10, 0, big, sizeof(big));
	assert_int_equal(cache_count(c), 0);
	assert_false(cache_get(c, 1, &serial, &prev, &p, &len));
	/* kept, replaced, read back */
	cache_put(c, 2, 10, 0, small, sizeof(small));
	cache_put(c, 2, 20, 10, small, 50);
	assert_int_equal(cache_count(c), 1);
	assert_true(cache_get(c, 2, &serial, &prev, &p, &len));
	assert_int_equal(serial, 20);
	assert_int_equal(prev, 10);
	assert_int_equal(len, 50);
	assert_memory_equal(p, small, 50);
	/* many: never beyond the bound, the oldest go first */
	for (ds_oid o = 100; o < 1100; o++)
		cache_put(c, o, o, 0, small, sizeof(small));
	assert_true(cache_bytes(c) <= 8 * 1024);
	assert_true(cache_get(c, 1099, &serial, &prev, &p, &len));
	assert_false(cache_get(c, 100, &serial, &prev, &p, &len));
	assert_false(cache_get(c, 2, &serial, &prev, &p, &len));
	cache_drop(c, 1099);
	assert_false(cache_get(c, 1099, &serial, &prev, &p, &len));
	assert_true(cache_get(c, 1098, &serial, &prev, &p, &len));
	cache_clear(c);
	assert_int_equal(cache_count(c), 0);
	assert_int_equal(cache_bytes(c), 0);
	cache_free(c);
	cache_free(NULL);
}

/* ---- through the engine ---- */

static ds_tid
commit_one(ds_storage *s, ds_oid oid, ds_tid expect, const char *data)
{
	ds_txn *t;
	ds_tid tid = 0;

	OK(ds_txn_begin(s, "u", "d", NULL, 0, &t, &err));
	OK(ds_txn_store(t, oid, expect, data, strlen(data), &err));
	OK(ds_txn_finish(t, &tid, &err));
	return tid;
}

static void
expect_load(ds_storage *s, ds_oid oid, const char *data, ds_tid serial)
{
	unsigned char *p;
	size_t len;
	ds_tid got, next;

	OK(ds_storage_load(s, oid, &p, &len, &got, &err));
	assert_int_equal(len, strlen(data));
	assert_memory_equal(p, data, len);
	assert_int_equal(got, serial);
	free(p);
	/* loadBefore a tid later than everything: the current revision */
	OK(ds_storage_load_before(s, oid, UINT64_MAX, &p, &len, &got, &next,
	                          &err));
	assert_int_equal(len, strlen(data));
	assert_memory_equal(p, data, len);
	assert_int_equal(got, serial);
	assert_int_equal(next, 0);
	free(p);
	OK(ds_storage_current_serial(s, oid, &got, &err));
	assert_int_equal(got, serial);
}

static size_t
cached(ds_storage *s)
{
	size_t n;

	pthread_mutex_lock(&s->mu);
	n = cache_count(s->cache);
	pthread_mutex_unlock(&s->mu);
	return n;
}

static void
test_engine_commit_undo(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = engine_mkds(scratch, "st", "bushy");
	ds_storage *s;
	ds_txn *t;
	ds_oid oid;
	ds_tid t1, t2, t3;
	unsigned char *p;
	size_t len;
	ds_tid got, next;

	(void)state;
	OK(ds_storage_open(home, DS_OPEN_NOSYNC, &s, &err));
	OK(ds_storage_new_oid(s, &oid, &err));
	t1 = commit_one(s, oid, 0, "one");
	expect_load(s, oid, "one", t1);
	assert_int_equal(cached(s), 1);
	/* a commit replaces the cached revision */
	t2 = commit_one(s, oid, t1, "two");
	expect_load(s, oid, "two", t2);
	/* the old revision before t2 is still read from its file */
	OK(ds_storage_load_before(s, oid, t2, &p, &len, &got, &next, &err));
	assert_memory_equal(p, "one", 3);
	assert_int_equal(got, t1);
	assert_int_equal(next, t2);
	free(p);
	expect_load(s, oid, "two", t2);
	/* an undo of t2 makes "one" current again, in a new revision */
	OK(ds_txn_begin(s, "u", "undo", NULL, 0, &t, &err));
	OK(ds_txn_undo(t, t2, NULL, NULL, &err));
	OK(ds_txn_finish(t, &t3, &err));
	expect_load(s, oid, "one", t3);
	/* a restore too */
	OK(ds_txn_begin_at(s, t3 + 1000, "u", "restore", NULL, 0, &t, &err));
	OK(ds_txn_restore(t, oid, t3 + 1000, "three", 5, 0, &err));
	OK(ds_txn_finish(t, NULL, &err));
	expect_load(s, oid, "three", t3 + 1000);
	OK(ds_storage_close(s, 0, &err));
	free(home);
	free(scratch);
}

static void
test_engine_snapshot(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = engine_mkds(scratch, "st", "bushy");
	ds_storage *s;
	ds_oid oid;
	ds_tid t1, t2;

	(void)state;
	OK(ds_storage_open(home, DS_OPEN_NOSYNC, &s, &err));
	OK(ds_storage_new_oid(s, &oid, &err));
	t1 = commit_one(s, oid, 0, "one");
	expect_load(s, oid, "one", t1);
	assert_int_equal(cached(s), 1);
	/* snapshot mode (a pack's, a backup's): forgotten, not used, not
	 * filled; commits go on into B and are read */
	OK(ds_storage_snapshot_enter(s, "test", &err));
	assert_int_equal(cached(s), 0);
	expect_load(s, oid, "one", t1);
	assert_int_equal(cached(s), 0);
	t2 = commit_one(s, oid, t1, "two");
	expect_load(s, oid, "two", t2);
	assert_int_equal(cached(s), 0);
	OK(ds_storage_snapshot_leave(s, "test", &err));
	OK(ds_storage_flush(s, &err));
	expect_load(s, oid, "two", t2);
	assert_int_equal(cached(s), 1);
	OK(ds_storage_close(s, 0, &err));
	free(home);
	free(scratch);
}

/* What may change beneath an open engine: nothing another process
 * writes, because every writer holds misc/lock while it writes. */
static void
test_engine_other_process(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = engine_mkds(scratch, "st", "bushy");
	ds_storage *s, *s2;
	ds_oid oid;
	ds_tid t1, t2 = 0;
	pid_t pid;
	int status, fd[2];

	(void)state;
	OK(ds_storage_open(home, DS_OPEN_NOSYNC, &s, &err));
	OK(ds_storage_new_oid(s, &oid, &err));
	t1 = commit_one(s, oid, 0, "one");
	expect_load(s, oid, "one", t1);
	/* another process cannot open it to write (nor to read) */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		ds_error e;
		int rc = ds_storage_open(home, DS_OPEN_NOSYNC, &s2, &e);
		int rc2 = ds_storage_open(home, DS_OPEN_READONLY, &s2, &e);
		_exit(rc == DS_ELOCKED && rc2 == DS_ELOCKED ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	expect_load(s, oid, "one", t1);
	OK(ds_storage_close(s, 0, &err));
	/* a later writer (another process) commits; a new open reads it */
	assert_int_equal(pipe(fd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		ds_error e;
		ds_txn *t;
		ds_tid tid = 0;
		int ok = ds_storage_open(home, DS_OPEN_NOSYNC, &s2, &e) ==
		             DS_OK &&
		         ds_txn_begin(s2, "u", "d", NULL, 0, &t, &e) == DS_OK &&
		         ds_txn_store(t, oid, t1, "two", 3, &e) == DS_OK &&
		         ds_txn_finish(t, &tid, &e) == DS_OK &&
		         ds_storage_close(s2, 0, &e) == DS_OK;
		if (write(fd[1], &tid, sizeof(tid)) != sizeof(tid))
			ok = 0;
		_exit(ok ? 0 : 1);
	}
	close(fd[1]);
	assert_int_equal(read(fd[0], &t2, sizeof(t2)), sizeof(t2));
	close(fd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	OK(ds_storage_open(home, DS_OPEN_NOSYNC, &s, &err));
	expect_load(s, oid, "two", t2);
	OK(ds_storage_close(s, 0, &err));
	free(home);
	free(scratch);
}

/* ---- ds_io_fsync_many ---- */

static void
test_fsync_many(void **state)
{
	char *scratch = fixture_scratch_dir();
	char paths[20][4096];
	const char *pp[20];
	int fds[20];
	unsigned char isdir[20];
	int rc;

	(void)state;
	for (int i = 0; i < 19; i++) {
		snprintf(paths[i], sizeof(paths[i]), "%s/f%d", scratch, i);
		OK(ds_io_write_file(paths[i], "x", 1, 0640, 1, 0, &err));
		fds[i] = open(paths[i], O_RDONLY);
		assert_true(fds[i] >= 0);
		isdir[i] = 0;
		pp[i] = paths[i];
	}
	snprintf(paths[19], sizeof(paths[19]), "%s", scratch);
	fds[19] = open(scratch, O_RDONLY | O_DIRECTORY);
	assert_true(fds[19] >= 0);
	isdir[19] = 1;
	pp[19] = paths[19];
	/* more members than fit on the stack; and a few */
	OK(ds_io_fsync_many(fds, pp, isdir, 20, &err));
	OK(ds_io_fsync_many(fds + 3, pp + 3, isdir + 3, 2, &err));
	OK(ds_io_fsync_many(fds, pp, isdir, 0, &err));
	/* a member that fails: its path is named */
	close(fds[7]);
	fds[7] = 100000;
	ds_error_clear(&err);
	rc = ds_io_fsync_many(fds, pp, isdir, 20, &err);
	assert_int_equal(rc, DS_EIO);
	assert_non_null(strstr(err.msg, paths[7]));
	assert_non_null(strstr(err.msg, "fsync"));
	for (int i = 0; i < 20; i++)
		if (i != 7)
			close(fds[i]);
	free(scratch);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cache_bounds),
		cmocka_unit_test(test_engine_commit_undo),
		cmocka_unit_test(test_engine_snapshot),
		cmocka_unit_test(test_engine_other_process),
		cmocka_unit_test(test_fsync_many),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
