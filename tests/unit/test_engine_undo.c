/*
 * test_engine_undo.c - transactional undo as the original writes it.
 * First the rule is checked against the undo transactions the original
 * wrote in the fixtures (pairs.json scenarios undone/undo_tid and
 * created_then_undone/undo_creation_tid): each revision's previous serial
 * is the undone tid, bytes 16-23 the undone revision's previous serial
 * (zero, with an empty pickle, for a creation). Then our undo, on a copy
 * of the same fixture, must write revisions of exactly that form, byte for
 * byte; refusals (later change, unknown tid) leave the transaction usable;
 * undo of an undo, and undoing again once an undo-copy is current.
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

static json_t *
find_obj(json_t *m, const char *oid)
{
	size_t i;
	json_t *o;

	json_array_foreach(json_object_get(m, "objects"), i, o)
		if (strcmp(fixture_jstr(o, "oid"), oid) == 0)
			return o;
	fail_msg("no object %s", oid);
	return NULL;
}

static json_t *
find_rev(json_t *o, const char *serial)
{
	size_t i;
	json_t *r;

	json_array_foreach(json_object_get(o, "revisions"), i, r)
		if (strcmp(fixture_jstr(r, "serial"), serial) == 0)
			return r;
	return NULL;
}

static json_t *
find_txn(json_t *m, const char *tid)
{
	size_t i;
	json_t *t;

	json_array_foreach(json_object_get(m, "transactions"), i, t)
		if (strcmp(fixture_jstr(t, "tid"), tid) == 0)
			return t;
	fail_msg("no transaction %s", tid);
	return NULL;
}

/* The original's undo transaction `undo` of `undone`, as the manifest
 * records it, follows the rule; creation says whether the undone
 * transaction created (some of) its objects. */
static void
check_original_undo(json_t *m, const char *undone, const char *undo,
                    int expect_creation)
{
	json_t *tu = find_txn(m, undone), *tr = find_txn(m, undo);
	json_t *oids_u = json_object_get(tu, "oids");
	json_t *oids_r = json_object_get(tr, "oids");
	size_t i;
	json_t *x;
	int creations = 0;

	/* same objects, same order */
	assert_true(json_equal(oids_u, oids_r));
	json_array_foreach(oids_r, i, x) {
		json_t *o = find_obj(m, json_string_value(x));
		json_t *ru = find_rev(o, undone), *rr = find_rev(o, undo);
		assert_non_null(ru);
		assert_non_null(rr);
		assert_string_equal(fixture_jstr(rr, "prev_serial"), undone);
		if (strcmp(fixture_jstr(ru, "prev_serial"),
		           "0000000000000000") == 0) {
			creations++;
			assert_int_equal(fixture_jint(rr, "pickle_len"), 0);
			assert_int_equal(fixture_jint(rr, "file_len"), 72);
			assert_string_equal(fixture_jstr(rr, "undo_from"),
			                    "0000000000000000");
		} else {
			json_t *rp = find_rev(o, fixture_jstr(ru, "prev_serial"));
			assert_string_equal(fixture_jstr(rr, "undo_from"),
			                    fixture_jstr(ru, "prev_serial"));
			assert_non_null(rp);
			assert_string_equal(fixture_jstr(rr, "pickle_md5"),
			                    fixture_jstr(rp, "pickle_md5"));
		}
	}
	assert_int_equal(creations > 0, expect_creation);
}

static void
test_original_undo_rule(void **state)
{
	json_t *pairs = fixture_json_load("pairs.json");
	json_t *sc = json_object_get(pairs, "scenarios");
	const char *fam[] = {"bushy", "flat"};
	const char *fix[] = {"bushy-master", "flat-replica-old"};
	(void)state;

	for (int f = 0; f < 2; f++) {
		json_t *s = json_object_get(sc, fam[f]);
		json_t *m = fixture_manifest_load(fix[f]);
		check_original_undo(m, fixture_jstr(s, "undone"),
		                    fixture_jstr(s, "undo_tid"), 0);
		check_original_undo(m, fixture_jstr(s, "created_then_undone"),
		                    fixture_jstr(s, "undo_creation_tid"), 1);
		json_decref(m);
	}
	{
		json_t *s = json_object_get(sc, "bushy");
		json_t *m = fixture_manifest_load("bushy-master");
		check_original_undo(m, fixture_jstr(s, "undone2"),
		                    fixture_jstr(s, "undo2_tid"), 0);
		json_decref(m);
	}
	json_decref(pairs);
}

/* Read the revision file (oid, serial) of home through the layout. */
static unsigned char *
rev_bytes(ds_storage *s, ds_oid oid, ds_tid serial, size_t *len)
{
	char name[DS_NAME_MAX];
	unsigned char *b;

	ds_name_revision(oid, serial, name);
	OK(ds_storage_read_name(s, name, &b, len, &err));
	return b;
}

static ds_tid
do_undo(ds_storage *s, ds_tid tid, ds_oid **oids, size_t *n)
{
	ds_txn *t;
	ds_tid nt;

	OK(ds_txn_begin(s, "/ admin", "undo", NULL, 0, &t, &err));
	OK(ds_txn_undo(t, tid, oids, n, &err));
	OK(ds_txn_finish(t, &nt, &err));
	return nt;
}

static void
test_undo_on_fixture(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = fixture_copy("bushy-master", scratch);
	json_t *m = fixture_manifest_load("bushy-master");
	ds_storage *s;
	ds_txninfo *last, *info;
	ds_oid *oids;
	size_t n;
	ds_tid last_tid, u;
	(void)state;

	OK(ds_storage_open(home, 0, &s, &err));
	last_tid = ds_storage_last_tid(s);
	OK(ds_storage_txn_info(s, last_tid, &last, &err));
	u = do_undo(s, last_tid, &oids, &n);
	assert_int_equal(n, last->noids);
	OK(ds_storage_txn_info(s, u, &info, &err));
	assert_int_equal(info->noids, last->noids);
	for (size_t i = 0; i < n; i++) {
		ds_objrec undone, mine;
		unsigned char *b1, *b2, *want;
		size_t l1, l2, wl;
		ds_objrec w = {0};

		assert_true(oids[i] == last->oids[i]);
		assert_true(info->oids[i] == last->oids[i]);
		b1 = rev_bytes(s, oids[i], last_tid, &l1);
		OK(ds_objrec_decode(b1, l1, "undone", &undone, &err));
		b2 = rev_bytes(s, oids[i], u, &l2);
		OK(ds_objrec_decode(b2, l2, "mine", &mine, &err));
		/* what the original writes for it */
		w.oid = oids[i];
		w.serial = u;
		w.prev_serial = last_tid;
		w.undo_from = undone.prev_serial;
		if (undone.prev_serial != 0) {
			unsigned char *b3;
			size_t l3;
			ds_objrec prev;
			b3 = rev_bytes(s, oids[i], undone.prev_serial, &l3);
			OK(ds_objrec_decode(b3, l3, "prev", &prev, &err));
			w.pickle = prev.pickle;
			w.pickle_len = prev.pickle_len;
			OK(ds_objrec_encode(&w, 1, &want, &wl, &err));
			free(b3);
		} else {
			w.pickle = (const unsigned char *)"";
			OK(ds_objrec_encode(&w, 1, &want, &wl, &err));
		}
		assert_int_equal(l2, wl);
		assert_memory_equal(b2, want, wl);
		free(want);
		free(b1);
		free(b2);
	}
	free(oids);
	ds_txninfo_free(info);

	/* the objects are back to their earlier state: undoing the undo
	 * brings the last transaction's state back */
	{
		ds_tid uu = do_undo(s, u, &oids, &n);
		for (size_t i = 0; i < n; i++) {
			unsigned char *p1, *p2;
			size_t l1, l2;
			ds_tid sv;
			OK(ds_storage_load(s, oids[i], &p1, &l1, &sv, &err));
			assert_true(sv == uu);
			OK(ds_storage_load_serial(s, oids[i], last_tid, &p2, &l2,
			                          &err));
			assert_int_equal(l1, l2);
			assert_memory_equal(p1, p2, l1);
			free(p1);
			free(p2);
		}
		free(oids);
		/* and the last transaction can be undone again: the
		 * current revisions are copies of it (bytes 16-23) */
		(void)do_undo(s, last_tid, &oids, &n);
		free(oids);
	}

	/* refused: an earlier transaction whose objects changed later;
	 * the transaction stays usable */
	{
		json_t *pairs = fixture_json_load("pairs.json");
		json_t *sc = json_object_get(pairs, "scenarios");
		ds_tid p;
		ds_txn *t;
		char hp[17];
		assert_int_equal(ds_id_parse(fixture_jstr(json_object_get(sc,
		                     "bushy"), "P"), &p), DS_OK);
		ds_id_format(p, hp);
		json_decref(pairs);
		OK(ds_txn_begin(s, "u", "d", NULL, 0, &t, &err));
		assert_int_equal(ds_txn_undo(t, p, NULL, NULL, &err),
		                 DS_ECONFLICT);
		assert_non_null(strstr(err.msg, hp));
		assert_non_null(strstr(err.msg, "later transaction"));
		assert_int_equal(ds_txn_undo(t, 0x0123456789ABCDEFull, NULL,
		                             NULL, &err), DS_ENOTFOUND);
		OK(ds_txn_store(t, 0x7777, 0, "still usable", 12, &err));
		OK(ds_txn_finish(t, NULL, &err));
	}
	ds_txninfo_free(last);
	OK(ds_storage_close(s, 0, &err));
	json_decref(m);
	fixture_remove_tree(scratch);
	free(home);
	free(scratch);
}

static void
test_undo_creation(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = engine_mkds(scratch, "s", "flat");
	ds_storage *s;
	ds_txn *t;
	ds_tid t1, t2, u;
	ds_oid *oids;
	size_t n, len;
	unsigned char *b;
	ds_history_entry *h;
	(void)state;

	OK(ds_storage_open(home, 0, &s, &err));
	OK(ds_txn_begin(s, "u", "one", NULL, 0, &t, &err));
	OK(ds_txn_store(t, 1, 0, "root", 4, &err));
	OK(ds_txn_finish(t, &t1, &err));
	OK(ds_txn_begin(s, "u", "two", NULL, 0, &t, &err));
	OK(ds_txn_store(t, 1, t1, "root2", 5, &err));
	OK(ds_txn_store(t, 2, 0, "child", 5, &err));
	OK(ds_txn_finish(t, &t2, &err));
	u = do_undo(s, t2, &oids, &n);
	assert_int_equal(n, 2);
	free(oids);
	/* oid 2's creation undone: a 72-byte revision, no such object */
	b = rev_bytes(s, 2, u, &len);
	assert_int_equal(len, 72);
	assert_true(ds_get_u64(b + 16) == 0);
	assert_true(ds_get_u64(b + 56) == t2);
	free(b);
	assert_int_equal(ds_storage_load(s, 2, &b, &len, NULL, &err),
	                 DS_ENOTFOUND);
	OK(ds_storage_load(s, 1, &b, &len, NULL, &err));
	assert_int_equal(len, 4);
	assert_memory_equal(b, "root", 4);
	free(b);
	OK(ds_storage_history(s, 2, 0, &h, &n, &err));
	assert_int_equal(n, 2);
	assert_int_equal(h[0].size, 0);
	assert_true(h[0].serial == u && h[1].serial == t2);
	ds_history_free(h, n);
	OK(ds_storage_close(s, 0, &err));
	fixture_remove_tree(scratch);
	free(home);
	free(scratch);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_original_undo_rule),
		cmocka_unit_test(test_undo_on_fixture),
		cmocka_unit_test(test_undo_creation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
