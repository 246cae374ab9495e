/*
 * test_engine_restore.c - ds_txn_begin_at and ds_txn_restore: committing
 * a transaction under a given tid with given revisions, as ZODB's
 * restore() and copyTransactionsFrom need. The restored transaction must
 * read back with its tid, user, description and extension; its revision
 * files carry the previous serial, the data serial (bytes 16-23) and a
 * "creation undone" revision when the data is empty; x.oid rises to the
 * highest oid restored; tids not later than the last transaction are
 * refused without harm; later engine tids stay above a restored one; and
 * ds_check accepts the result.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "helper_engine.h"
#include "helper_fixture.h"
#include "internal.h"

static ds_error err;

static ds_tid
commit_one(ds_storage *s, ds_oid oid, ds_tid expected, const char *pickle)
{
	ds_txn *t = NULL;
	ds_tid tid = 0;

	OK(ds_txn_begin(s, "u", "d", NULL, 0, &t, &err));
	OK(ds_txn_store(t, oid, expected, pickle, strlen(pickle), &err));
	OK(ds_txn_finish(t, &tid, &err));
	return tid;
}

/* The revision file of (oid, serial) as the engine reads it. */
static void
read_rev(ds_storage *s, ds_oid oid, ds_tid serial, ds_objrec *rec,
         unsigned char **buf)
{
	char name[DS_NAME_MAX];
	size_t len;

	ds_name_revision(oid, serial, name);
	OK(ds_storage_read_name(s, name, buf, &len, &err));
	OK(ds_objrec_decode(*buf, len, name, rec, &err));
}

static void
test_restore_given_tid(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = engine_mkds(scratch, "ds", "bushy");
	ds_storage *s = NULL;
	ds_txn *t = NULL;
	ds_tid t1, want, got = 0, next;
	ds_txninfo *info = NULL;
	ds_objrec rec;
	unsigned char *buf = NULL, *p = NULL;
	size_t len;
	static const unsigned char ext[] = "\x80\x03}q\x00.";
	int rc;

	(void)state;
	OK(ds_storage_open(home, DS_OPEN_NOTHREAD, &s, &err));
	t1 = commit_one(s, 1, 0, "one");

	/* a tid not later than the last transaction is refused, and the
	 * storage stays usable */
	ds_error_clear(&err);
	rc = ds_txn_begin_at(s, t1, "u", "d", NULL, 0, &t, &err);
	assert_int_equal(rc, DS_EINVAL);
	assert_null(t);
	assert_non_null(strstr(err.msg, "not later than"));
	rc = ds_txn_begin_at(s, t1 - 5, "u", "d", NULL, 0, &t, &err);
	assert_int_equal(rc, DS_EINVAL);
	rc = ds_txn_begin_at(s, 0, "u", "d", NULL, 0, &t, &err);
	assert_int_equal(rc, DS_EINVAL);

	/* a transaction well in the future of the engine's clock */
	want = t1 + ((ds_tid)1 << 24);   /* a quarter second later */
	OK(ds_txn_begin_at(s, want, "restorer", "copied", ext, sizeof(ext) - 1,
	                   &t, &err));
	assert_true(ds_txn_tid(t) == want);
	/* serial other than the transaction's: refused, t still usable */
	ds_error_clear(&err);
	rc = ds_txn_restore(t, 1, want - 1, "x", 1, 0, &err);
	assert_int_equal(rc, DS_EINVAL);
	assert_non_null(strstr(err.msg, "not the transaction's tid"));
	/* a data serial not earlier than the transaction: refused */
	rc = ds_txn_restore(t, 1, want, "x", 1, want, &err);
	assert_int_equal(rc, DS_EINVAL);
	/* oid 1: a copy of revision t1 (undo backpointer) */
	OK(ds_txn_restore(t, 1, want, "one", 3, t1, &err));
	/* oid 7: new, with data; raises x.oid */
	OK(ds_txn_restore(t, 7, want, "seven", 5, 0, &err));
	/* oid 5: creation undone (empty data) */
	OK(ds_txn_restore(t, 5, want, NULL, 0, 0, &err));
	OK(ds_txn_finish(t, &got, &err));
	assert_true(got == want);
	assert_true(ds_storage_last_tid(s) == want);
	assert_true(ds_storage_last_oid(s) == 7);

	/* the transaction file: metadata, oids in restore order, back
	 * pointer to t1 */
	OK(ds_storage_txn_info(s, want, &info, &err));
	assert_true(info->prev_tid == t1);
	assert_string_equal(info->user, "restorer");
	assert_string_equal(info->description, "copied");
	assert_int_equal(info->extension_len, sizeof(ext) - 1);
	assert_memory_equal(info->extension, ext, sizeof(ext) - 1);
	assert_int_equal(info->noids, 3);
	assert_true(info->oids[0] == 1 && info->oids[1] == 7 &&
	            info->oids[2] == 5);
	ds_txninfo_free(info);

	/* revision files */
	read_rev(s, 1, want, &rec, &buf);
	assert_true(rec.prev_serial == t1);
	assert_true(rec.undo_from == t1);
	assert_int_equal(rec.pickle_len, 3);
	free(buf);
	read_rev(s, 7, want, &rec, &buf);
	assert_true(rec.prev_serial == 0 && rec.undo_from == 0);
	free(buf);
	read_rev(s, 5, want, &rec, &buf);
	assert_int_equal(rec.pickle_len, 0);   /* 72 bytes: creation undone */
	free(buf);
	OK(ds_storage_load(s, 7, &p, &len, &got, &err));
	assert_int_equal(len, 5);
	assert_memory_equal(p, "seven", 5);
	assert_true(got == want);
	free(p);
	rc = ds_storage_load(s, 5, &p, &len, NULL, &err);
	assert_int_equal(rc, DS_ENOTFOUND);

	/* the engine's own next tid is later than the restored one */
	next = commit_one(s, 1, want, "two");
	assert_true(next > want);
	OK(ds_storage_close(s, 0, &err));

	/* the result is a well-formed storage */
	{
		struct ds_check_opts co;
		struct ds_check_stats st;
		memset(&co, 0, sizeof(co));
		OK(ds_check(home, &co, &st, &err));
		assert_int_equal(st.problems, 0);
		assert_int_equal(st.transactions, 3);
		assert_int_equal(st.undone_creations, 1);
	}
	fixture_remove_tree(scratch);
	free(home);
	free(scratch);
}

/* An aborted restore leaves nothing behind and the tid can be used
 * again. */
static void
test_restore_abort(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = engine_mkds(scratch, "ds", "flat");
	char p[4096];
	ds_storage *s = NULL;
	ds_txn *t = NULL;
	ds_tid t1, want, got = 0;
	size_t before;

	(void)state;
	OK(ds_storage_open(home, DS_OPEN_NOTHREAD, &s, &err));
	t1 = commit_one(s, 1, 0, "one");
	snprintf(p, sizeof(p), "%s/journal", home);
	before = engine_dir_entries(p);   /* t1 may wait there unflushed */
	want = t1 + 1000;
	OK(ds_txn_begin_at(s, want, NULL, NULL, NULL, 0, &t, &err));
	OK(ds_txn_restore(t, 2, want, "two", 3, 0, &err));
	ds_txn_abort(t);
	assert_int_equal(engine_dir_entries(p), before);
	assert_true(ds_storage_last_tid(s) == t1);
	OK(ds_txn_begin_at(s, want, NULL, NULL, NULL, 0, &t, &err));
	OK(ds_txn_restore(t, 2, want, "two", 3, 0, &err));
	OK(ds_txn_finish(t, &got, &err));
	assert_true(got == want);
	OK(ds_storage_close(s, 0, &err));
	fixture_remove_tree(scratch);
	free(home);
	free(scratch);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_restore_given_tid),
		cmocka_unit_test(test_restore_abort),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
