/*
 * test_engine_journal.c - the journal and snapshot mode: recovery rolls
 * _done forward, deletes _temp and refuses anything else (naming it,
 * changing nothing); flush batches under the [journal] thresholds, reads
 * from the journal, files overwritten in the journal dropped; snapshot
 * enter/leave (one code at a time); while a snapshot user holds
 * misc/sublock, A stays byte-for-byte unchanged as commits continue; a
 * pending journal/replica.tar is applied first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "helper_engine.h"
#include "helper_fixture.h"
#include "internal.h"

static ds_error err;

/* Commit one transaction storing "<tag>-<oid>" into each oid of oids. */
static ds_tid
commit(ds_storage *s, const ds_oid *oids, size_t n, const char *tag)
{
	ds_txn *t;
	ds_tid tid;
	char pk[64];

	OK(ds_txn_begin(s, "/ test", tag, NULL, 0, &t, &err));
	for (size_t i = 0; i < n; i++) {
		ds_tid cur = 0;
		if (ds_storage_current_serial(s, oids[i], &cur, &err) != DS_OK)
			cur = 0;
		snprintf(pk, sizeof(pk), "%s-%llu", tag,
		         (unsigned long long)oids[i]);
		OK(ds_txn_store(t, oids[i], cur, pk, strlen(pk), &err));
	}
	OK(ds_txn_finish(t, &tid, &err));
	return tid;
}

static void
expect_pickle(ds_storage *s, ds_oid oid, const char *tag)
{
	unsigned char *b;
	size_t len;
	char want[64];

	snprintf(want, sizeof(want), "%s-%llu", tag, (unsigned long long)oid);
	OK(ds_storage_load(s, oid, &b, &len, NULL, &err));
	if (len != strlen(want) || memcmp(b, want, len) != 0)
		fail_msg("oid %llu: got '%.*s', want '%s'",
		         (unsigned long long)oid, (int)len, b, want);
	free(b);
}

static size_t
entries(const char *home, const char *sub)
{
	char p[4096];
	snprintf(p, sizeof(p), "%s/%s", home, sub);
	return engine_dir_entries(p);
}

/* ---- recovery ---- */

static void
test_recovery_done_forward_temp_deleted(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = engine_mkds(scratch, "s", "bushy");
	ds_storage *s;
	ds_oid oids[3] = {1, 2, 3};
	ds_tid t1, t2;
	char p[4096];
	FILE *f;
	(void)state;

	/* keep everything in the journal: no thread, high thresholds,
	 * then a quick close (which does not flush) */
	OK(ds_storage_open(home, DS_OPEN_NOTHREAD, &s, &err));
	t1 = commit(s, oids, 3, "one");
	t2 = commit(s, oids, 2, "two");
	assert_int_equal(entries(home, "journal"), 2);
	OK(ds_storage_close(s, DS_CLOSE_QUICK, &err));
	assert_int_equal(entries(home, "journal"), 2);
	snprintf(p, sizeof(p), "%s/misc/snapshot", home);
	assert_false(engine_exists(p));
	/* an uncommitted transaction left by a crash */
	snprintf(p, sizeof(p), "%s/journal/working_0FFFFFFFFFFFFFFF_temp",
	         home);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p),
	         "%s/journal/working_0FFFFFFFFFFFFFFF_temp/o0000000000000001.c",
	         home);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs("garbage!", f);
	fclose(f);

	OK(ds_storage_open(home, 0, &s, &err));
	assert_int_equal(entries(home, "journal"), 0);
	assert_int_equal(entries(home, "B"), 0);
	assert_true(ds_storage_last_tid(s) == t2);
	expect_pickle(s, 1, "two");
	expect_pickle(s, 2, "two");
	expect_pickle(s, 3, "one");
	{
		ds_txninfo *info;
		OK(ds_storage_txn_info(s, t2, &info, &err));
		assert_true(info->prev_tid == t1);
		ds_txninfo_free(info);
	}
	OK(ds_storage_close(s, 0, &err));
	fixture_remove_tree(scratch);
	free(home);
	free(scratch);
}

static void
test_recovery_refuses_stray(void **state)
{
	const char *strays[] = {"garbage", "working_0123_done",
	                        "working_0123456789abcdef_done",
	                        "working_0123456789ABCDEF_donex"};
	(void)state;
	for (size_t i = 0; i < 4; i++) {
		char *scratch = fixture_scratch_dir();
		char *home = fixture_copy("bushy-master", scratch);
		char p[4096], a[4096], d1[33], d2[33];
		ds_storage *s = NULL;
		int rc;

		snprintf(a, sizeof(a), "%s/A", home);
		engine_tree_digest(a, d1, NULL);
		snprintf(p, sizeof(p), "%s/journal/%s", home, strays[i]);
		assert_int_equal(mkdir(p, 0755), 0);
		rc = ds_storage_open(home, 0, &s, &err);
		assert_int_equal(rc, DS_ECORRUPT);
		assert_null(s);
		if (strstr(err.msg, strays[i]) == NULL)
			fail_msg("message '%s' does not name %s", err.msg,
			         strays[i]);
		/* nothing changed: A, the stray, the snapshot marker */
		engine_tree_digest(a, d2, NULL);
		assert_string_equal(d1, d2);
		assert_true(engine_exists(p));
		snprintf(p, sizeof(p), "%s/misc/snapshot", home);
		assert_true(engine_exists(p));
		/* and a file inside a committed directory that is not a
		 * database name is refused too */
		fixture_remove_tree(scratch);
		free(home);
		free(scratch);
	}
	{
		char *scratch = fixture_scratch_dir();
		char *home = fixture_copy("flat-master", scratch);
		char p[4096];
		ds_storage *s = NULL;
		FILE *f;

		snprintf(p, sizeof(p),
		         "%s/journal/working_0F0D44B2249CA6AA_done", home);
		assert_int_equal(mkdir(p, 0755), 0);
		snprintf(p, sizeof(p),
		         "%s/journal/working_0F0D44B2249CA6AA_done/evil.sh",
		         home);
		f = fopen(p, "w");
		assert_non_null(f);
		fclose(f);
		assert_int_equal(ds_storage_open(home, 0, &s, &err),
		                 DS_ECORRUPT);
		assert_non_null(strstr(err.msg, "evil.sh"));
		assert_true(engine_exists(p));
		fixture_remove_tree(scratch);
		free(home);
		free(scratch);
	}
}

static void
test_quick_shutdown_setting(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = engine_mkds(scratch, "s", "lawn");
	char p[4096];
	ds_storage *s;
	ds_oid oids[1] = {1};
	(void)state;

	engine_set_setting(home, "quick_shutdown", "1");
	OK(ds_storage_open(home, DS_OPEN_NOTHREAD, &s, &err));
	commit(s, oids, 1, "q");
	OK(ds_storage_close(s, 0, &err));
	/* no snapshot at close: misc/snapshot absent, the transaction
	 * still in the journal, recovered by the next open */
	snprintf(p, sizeof(p), "%s/misc/snapshot", home);
	assert_false(engine_exists(p));
	assert_int_equal(entries(home, "journal"), 1);
	engine_set_setting(home, "quick_shutdown", "0");
	OK(ds_storage_open(home, 0, &s, &err));
	assert_int_equal(entries(home, "journal"), 0);
	expect_pickle(s, 1, "q");
	OK(ds_storage_close(s, 0, &err));
	assert_true(engine_exists(p));
	fixture_remove_tree(scratch);
	free(home);
	free(scratch);
}

/* ---- flushing ---- */

static void
test_flush_thresholds_and_drop(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = engine_mkds(scratch, "s", "chunky");
	ds_storage *s;
	ds_oid oids[4] = {1, 2, 3, 4};
	(void)state;

	engine_set_setting(home, "flush_transaction_threshold", "3");
	OK(ds_storage_open(home, DS_OPEN_NOTHREAD, &s, &err));
	commit(s, oids, 4, "a");
	commit(s, oids, 2, "b");
	/* two transactions wait in the journal, reads find them there */
	assert_int_equal(entries(home, "journal"), 2);
	expect_pickle(s, 1, "b");
	expect_pickle(s, 4, "a");
	/* the third reaches the threshold: one batch, oldest first; the
	 * .c pointers and x.* of the first two were overwritten in the
	 * journal and are dropped, not moved */
	commit(s, oids + 1, 1, "c");
	assert_int_equal(entries(home, "journal"), 0);
	expect_pickle(s, 1, "b");
	expect_pickle(s, 2, "c");
	expect_pickle(s, 3, "a");
	{
		char p[4096];
		unsigned char *b;
		size_t len;
		ds_tid cur;
		OK(ds_storage_current_serial(s, 2, &cur, &err));
		snprintf(p, sizeof(p), "%s/A/o000/000/000/000/0002.c", home);
		b = engine_slurp(p, &len);
		assert_true(len == 8 && ds_get_u64(b) == cur);
		free(b);
	}
	OK(ds_storage_close(s, 0, &err));

	/* the file threshold, with the flusher thread */
	engine_set_setting(home, "flush_transaction_threshold", "200");
	engine_set_setting(home, "flush_file_threshold", "12");
	OK(ds_storage_open(home, 0, &s, &err));
	commit(s, oids, 1, "d");      /* 5 files */
	assert_int_equal(entries(home, "journal"), 1);
	commit(s, oids, 4, "e");      /* 11 more: over 12 */
	OK(ds_storage_flush(s, &err));
	assert_int_equal(entries(home, "journal"), 0);
	expect_pickle(s, 4, "e");
	OK(ds_storage_close(s, 0, &err));

	/* the age limit: the flusher wakes up by itself */
	engine_set_setting(home, "flush_file_threshold", "2000");
	engine_set_setting(home, "flush_interval", "1");
	OK(ds_storage_open(home, 0, &s, &err));
	commit(s, oids, 1, "f");
	for (int i = 0; i < 50 && entries(home, "journal") > 0; i++)
		usleep(100000);
	assert_int_equal(entries(home, "journal"), 0);
	expect_pickle(s, 1, "f");
	OK(ds_storage_close(s, 0, &err));
	fixture_remove_tree(scratch);
	free(home);
	free(scratch);
}

static void
test_backlog_bounded(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = engine_mkds(scratch, "s", "bushy");
	ds_storage *s;
	ds_oid oids[2] = {1, 2};
	(void)state;

	engine_set_setting(home, "flush_transaction_threshold", "1");
	engine_set_setting(home, "backlog", "1");
	engine_set_setting(home, "sync", "0");
	OK(ds_storage_open(home, 0, &s, &err));
	/* every commit is a batch; with a backlog of one batch the journal
	 * never holds more than the batch being flushed, one queued and
	 * the transaction being registered */
	for (int i = 0; i < 60; i++) {
		char tag[16];
		snprintf(tag, sizeof(tag), "t%d", i);
		commit(s, oids, 2, tag);
		assert_true(entries(home, "journal") <= 3);
	}
	expect_pickle(s, 2, "t59");
	OK(ds_storage_close(s, 0, &err));
	assert_int_equal(entries(home, "journal"), 0);
	fixture_remove_tree(scratch);
	free(home);
	free(scratch);
}

/* ---- snapshot mode ---- */

static void
test_snapshot_enter_leave(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = fixture_copy("bushy-master", scratch);
	char a[4096], p[4096], d1[33], d2[33], code[DS_SNAPSHOT_CODE_MAX + 16];
	ds_storage *s;
	ds_oid oids[3] = {3, 4, 0x300};
	unsigned char *b;
	size_t len;
	(void)state;

	snprintf(a, sizeof(a), "%s/A", home);
	snprintf(p, sizeof(p), "%s/misc/snapshot", home);
	OK(ds_storage_open(home, 0, &s, &err));
	commit(s, oids, 3, "before");
	OK(ds_storage_snapshot_enter(s, "backup", &err));
	/* everything committed before is in A */
	assert_int_equal(entries(home, "journal"), 0);
	b = engine_slurp(p, &len);
	assert_int_equal(len, 6);
	assert_memory_equal(b, "backup", 6);
	assert_int_equal(engine_mode(p), 0640);
	free(b);
	engine_tree_digest(a, d1, NULL);
	/* one code at a time, the holder named */
	assert_int_equal(ds_storage_snapshot_enter(s, "other", &err), DS_EBUSY);
	assert_non_null(strstr(err.msg, "backup"));
	assert_int_equal(ds_storage_snapshot_leave(s, "other", &err),
	                 DS_ESTATE);
	/* commits continue; flushes go to B; A unchanged */
	for (int i = 0; i < 5; i++) {
		char tag[16];
		snprintf(tag, sizeof(tag), "during%d", i);
		commit(s, oids, 3, tag);
		OK(ds_storage_flush(s, &err));
	}
	assert_true(entries(home, "B") > 0);
	expect_pickle(s, 0x300, "during4");
	engine_tree_digest(a, d2, NULL);
	assert_string_equal(d1, d2);
	ds_storage_snapshot_code(s, code);
	assert_string_equal(code, "backup");
	OK(ds_storage_snapshot_leave(s, "backup", &err));
	assert_false(engine_exists(p));
	/* enter waits for the recombination, then works again */
	OK(ds_storage_snapshot_enter(s, "second", &err));
	assert_int_equal(entries(home, "B"), 0);
	expect_pickle(s, 0x300, "during4");
	OK(ds_storage_snapshot_leave(s, "second", &err));
	commit(s, oids, 1, "after");
	OK(ds_storage_close(s, 0, &err));
	b = engine_slurp(p, &len);
	assert_int_equal(len, 8);
	assert_memory_equal(b, "shutdown", 8);
	free(b);
	assert_int_equal(entries(home, "B"), 0);
	OK(ds_storage_open(home, DS_OPEN_READONLY, &s, &err));
	expect_pickle(s, 3, "after");
	expect_pickle(s, 4, "during4");
	OK(ds_storage_close(s, 0, &err));
	fixture_remove_tree(scratch);
	free(home);
	free(scratch);
}

static void
test_snapshot_holder_keeps_A(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = fixture_copy("flat-master", scratch);
	char a[4096], p[4096], d1[33], d2[33], code[DS_SNAPSHOT_CODE_MAX + 16];
	ds_storage *s = NULL;
	ds_lock *holder;
	ds_oid oids[4] = {1, 2, 0x10, 0x400};
	size_t n1, n2;
	(void)state;

	snprintf(a, sizeof(a), "%s/A", home);
	snprintf(p, sizeof(p), "%s/misc/sublock", home);
	/* a snapshot user (as `ds snapshot`) holds the sublock of the
	 * closed storage, which is a snapshot */
	OK(ds_lock_acquire(p, &holder, &err));
	engine_tree_digest(a, d1, &n1);
	/* the synchronous opener refuses */
	assert_int_equal(ds_storage_open(home, DS_OPEN_SYNCHRONOUS, &s, &err),
	                 DS_EBUSY);
	assert_null(s);
	OK(ds_storage_open(home, 0, &s, &err));
	ds_storage_snapshot_code(s, code);
	assert_string_equal(code, "startup");
	snprintf(p, sizeof(p), "%s/misc/snapshot", home);
	assert_true(engine_exists(p));
	for (int i = 0; i < 30; i++) {
		char tag[16];
		snprintf(tag, sizeof(tag), "held%d", i);
		commit(s, oids, 4, tag);
		if (i % 7 == 0)
			OK(ds_storage_flush(s, &err));
	}
	OK(ds_storage_flush(s, &err));
	expect_pickle(s, 0x400, "held29");
	assert_true(entries(home, "B") > 0);
	assert_int_equal(ds_storage_snapshot_enter(s, "x", &err), DS_EBUSY);
	assert_non_null(strstr(err.msg, "startup"));
	/* cannot leave while the holder still holds */
	assert_int_equal(ds_storage_snapshot_leave(s, "startup", &err),
	                 DS_EBUSY);
	engine_tree_digest(a, d2, &n2);
	assert_string_equal(d1, d2);
	assert_int_equal(n1, n2);
	OK(ds_storage_close(s, 0, &err));
	/* closed: still a snapshot, A still unchanged, B holds the rest */
	engine_tree_digest(a, d2, NULL);
	assert_string_equal(d1, d2);
	assert_true(engine_exists(p));
	assert_int_equal(entries(home, "journal"), 0);
	ds_lock_release(holder);
	/* the holder is gone: the next open moves B over A */
	OK(ds_storage_open(home, 0, &s, &err));
	assert_int_equal(entries(home, "B"), 0);
	expect_pickle(s, 0x400, "held29");
	expect_pickle(s, 1, "held29");
	OK(ds_storage_close(s, 0, &err));
	engine_tree_digest(a, d2, NULL);
	assert_string_not_equal(d1, d2);

	/* leaving "startup" once the holder let go, without closing */
	snprintf(p, sizeof(p), "%s/misc/sublock", home);
	OK(ds_lock_acquire(p, &holder, &err));
	OK(ds_storage_open(home, 0, &s, &err));
	commit(s, oids, 1, "late");
	OK(ds_storage_flush(s, &err));
	assert_true(entries(home, "B") > 0);
	ds_lock_release(holder);
	OK(ds_storage_snapshot_leave(s, "startup", &err));
	OK(ds_storage_snapshot_enter(s, "check", &err));
	assert_int_equal(entries(home, "B"), 0);
	expect_pickle(s, 1, "late");
	OK(ds_storage_close(s, 0, &err));
	fixture_remove_tree(scratch);
	free(home);
	free(scratch);
}

static void
test_replica_tar_recovery(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = fixture_copy("bushy-replica-old", scratch);
	char *master = fixture_copy("bushy-master", scratch);
	char p[4096], q[4096], cmd[8192], d1[33], d2[33];
	json_t *m = fixture_manifest_load("bushy-master");
	ds_storage *s = NULL;
	int rc;
	(void)state;

	/* the recorded increment, committed but not applied */
	snprintf(cmd, sizeof(cmd), "cp %s/responses/bushy-basic.tar "
	         "%s/journal/replica.tar", fixture_dir(), home);
	assert_int_equal(system(cmd), 0);
	/* refused while something else is in journal/ */
	snprintf(p, sizeof(p), "%s/journal/working_0000000000000001_temp",
	         home);
	assert_int_equal(mkdir(p, 0755), 0);
	rc = ds_storage_open(home, 0, &s, &err);
	assert_int_equal(rc, DS_ECORRUPT);
	assert_non_null(strstr(err.msg, "working_0000000000000001_temp"));
	assert_int_equal(rmdir(p), 0);
	/* and while B is not empty */
	snprintf(p, sizeof(p), "%s/B/stray", home);
	assert_int_equal(mkdir(p, 0755), 0);
	rc = ds_storage_open(home, 0, &s, &err);
	assert_int_equal(rc, DS_ECORRUPT);
	assert_non_null(strstr(err.msg, "B/stray"));
	assert_int_equal(rmdir(p), 0);
	/* applied first, kept as misc/replica.previous */
	OK(ds_storage_open(home, 0, &s, &err));
	assert_true(ds_storage_last_tid(s) == fixture_jid(m, "x.serial"));
	OK(ds_storage_close(s, 0, &err));
	snprintf(p, sizeof(p), "%s/misc/replica.previous", home);
	assert_true(engine_exists(p));
	assert_int_equal(entries(home, "journal"), 0);
	/* the replica's A is now the master's A (never packed) */
	snprintf(p, sizeof(p), "%s/A", home);
	snprintf(q, sizeof(q), "%s/A", master);
	engine_tree_digest(p, d1, NULL);
	engine_tree_digest(q, d2, NULL);
	assert_string_equal(d1, d2);
	json_decref(m);
	fixture_remove_tree(scratch);
	free(home);
	free(master);
	free(scratch);
}

/* ---- threads: writers, readers and snapshot cycles at once ---- */

struct thr_ctx {
	ds_storage *s;
	int id;
	int rounds;
	int failures;
	char msg[DS_ERROR_MSG_MAX + 64];
};

static void *
thr_writer(void *arg)
{
	struct thr_ctx *c = arg;
	ds_error e;

	for (int i = 0; i < c->rounds; i++) {
		ds_oid oid = (ds_oid)(1000 + c->id);
		ds_tid cur = 0;
		ds_txn *t;
		char pk[64];

		snprintf(pk, sizeof(pk), "w%d-%d", c->id, i);
		if (ds_txn_begin(c->s, "/ t", "thr", NULL, 0, &t, &e) != DS_OK)
			goto fail;
		if (ds_storage_current_serial(c->s, oid, &cur, &e) != DS_OK)
			cur = 0;
		if (ds_txn_store(t, oid, cur, pk, strlen(pk), &e) != DS_OK ||
		    ds_txn_store(t, 5000 + 1000 * (ds_oid)c->id + (ds_oid)i, 0,
		                 pk, strlen(pk), &e) != DS_OK) {
			ds_txn_abort(t);
			goto fail;
		}
		if (ds_txn_finish(t, NULL, &e) != DS_OK)
			goto fail;
	}
	return NULL;
fail:
	c->failures++;
	snprintf(c->msg, sizeof(c->msg), "%s", e.msg);
	return NULL;
}

static void *
thr_reader(void *arg)
{
	struct thr_ctx *c = arg;
	ds_error e;

	for (int i = 0; i < c->rounds; i++) {
		for (int w = 0; w < 3; w++) {
			unsigned char *b;
			size_t len;
			int rc = ds_storage_load(c->s, (ds_oid)(1000 + w), &b,
			                         &len, NULL, &e);
			if (rc == DS_ENOTFOUND)
				continue;
			if (rc != DS_OK || len < 4 || b[0] != 'w') {
				c->failures++;
				snprintf(c->msg, sizeof(c->msg), "read: %s",
				         rc ? e.msg : "bad content");
				if (rc == DS_OK)
					free(b);
				return NULL;
			}
			free(b);
		}
	}
	return NULL;
}

static void *
thr_snapshot(void *arg)
{
	struct thr_ctx *c = arg;
	ds_error e;

	for (int i = 0; i < c->rounds; i++) {
		if (ds_storage_snapshot_enter(c->s, "cycle", &e) != DS_OK ||
		    ds_storage_snapshot_leave(c->s, "cycle", &e) != DS_OK ||
		    ds_storage_flush(c->s, &e) != DS_OK) {
			c->failures++;
			snprintf(c->msg, sizeof(c->msg), "snapshot: %s", e.msg);
			return NULL;
		}
	}
	return NULL;
}

static void
test_threads(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = engine_mkds(scratch, "s", "bushy");
	ds_storage *s;
	pthread_t th[6];
	struct thr_ctx c[6];
	(void)state;

	engine_set_setting(home, "flush_transaction_threshold", "4");
	engine_set_setting(home, "backlog", "2");
	engine_set_setting(home, "sync", "0");
	OK(ds_storage_open(home, 0, &s, &err));
	for (int i = 0; i < 6; i++) {
		memset(&c[i], 0, sizeof(c[i]));
		c[i].s = s;
		c[i].id = i;
		c[i].rounds = i < 3 ? 40 : i < 5 ? 200 : 15;
		assert_int_equal(pthread_create(&th[i], NULL,
		                 i < 3 ? thr_writer : i < 5 ? thr_reader
		                                          : thr_snapshot,
		                 &c[i]), 0);
	}
	for (int i = 0; i < 6; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		if (c[i].failures)
			fail_msg("thread %d: %s", i, c[i].msg);
	}
	for (int w = 0; w < 3; w++) {
		char tag[16];
		snprintf(tag, sizeof(tag), "w%d", w);
		{
			unsigned char *b;
			size_t len;
			char want[32];
			snprintf(want, sizeof(want), "w%d-39", w);
			OK(ds_storage_load(s, (ds_oid)(1000 + w), &b, &len, NULL,
			                   &err));
			assert_int_equal(len, strlen(want));
			assert_memory_equal(b, want, len);
			free(b);
		}
	}
	{
		ds_history_entry *h;
		size_t n;
		OK(ds_storage_history(s, 1001, 0, &h, &n, &err));
		assert_int_equal(n, 40);
		ds_history_free(h, n);
	}
	OK(ds_storage_close(s, 0, &err));
	assert_int_equal(entries(home, "journal"), 0);
	assert_int_equal(entries(home, "B"), 0);
	{
		char cmd[8192];
		snprintf(cmd, sizeof(cmd), "'%s' check -q '%s'", fixture_bin(),
		         home);
		assert_int_equal(system(cmd), 0);
	}
	fixture_remove_tree(scratch);
	free(home);
	free(scratch);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_recovery_done_forward_temp_deleted),
		cmocka_unit_test(test_recovery_refuses_stray),
		cmocka_unit_test(test_quick_shutdown_setting),
		cmocka_unit_test(test_flush_thresholds_and_drop),
		cmocka_unit_test(test_backlog_bounded),
		cmocka_unit_test(test_snapshot_enter_leave),
		cmocka_unit_test(test_snapshot_holder_keeps_A),
		cmocka_unit_test(test_replica_tar_recovery),
		cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
