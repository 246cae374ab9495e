/*
 * test_engine.c - the Full storage engine against the original's storages
 * and on new ones: open/close leaves a fixture's A byte-identical and the
 * storage a snapshot; every fixture object and transaction reads through
 * the engine with the manifest's content; commits write exactly the files,
 * names, modes and headers the original writes; conflicts, aborts,
 * load-before, history, transaction iteration, a second opener.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "helper_engine.h"
#include "helper_fixture.h"
#include "internal.h"

static ds_error err;

static void
hex16(uint64_t v, char out[17])
{
	ds_id_format(v, out);
}

/* ---- fixtures: open/close keeps A, reads match the manifest ---- */

static void check_fixture_reads(ds_storage *s, const char *name, json_t *m);

static void
check_fixture_open_close(const char *name, unsigned flags)
{
	char *scratch = fixture_scratch_dir();
	char *home = fixture_copy(name, scratch);
	char a[4096], p[4096], before[33], after[33];
	json_t *m = fixture_manifest_load(name);
	ds_storage *s = NULL;
	size_t nfiles, n2, len;
	unsigned char *b;

	snprintf(a, sizeof(a), "%s/A", home);
	engine_tree_digest(a, before, &nfiles);
	assert_true(nfiles > 0);
	OK(ds_storage_open(home, flags, &s, &err));
	assert_true(ds_storage_last_tid(s) == fixture_jid(m, "x.serial"));
	assert_true(ds_storage_last_oid(s) == fixture_jid(m, "x.oid"));
	assert_true(ds_storage_last_pack(s) == fixture_jid(m, "x.packed"));
	/* every object, revision and transaction reads as the manifest says */
	check_fixture_reads(s, name, m);
	/* open left snapshot mode: misc/snapshot is gone while open */
	snprintf(p, sizeof(p), "%s/misc/snapshot", home);
	assert_false(engine_exists(p));
	OK(ds_storage_close(s, 0, &err));
	engine_tree_digest(a, after, &n2);
	assert_string_equal(before, after);
	assert_int_equal(nfiles, n2);
	/* a closed storage is a snapshot */
	b = engine_slurp(p, &len);
	assert_int_equal(len, 8);
	assert_memory_equal(b, "shutdown", 8);
	assert_int_equal(engine_mode(p), 0640);
	free(b);
	snprintf(p, sizeof(p), "%s/journal", home);
	assert_int_equal(engine_dir_entries(p), 0);
	snprintf(p, sizeof(p), "%s/B", home);
	assert_int_equal(engine_dir_entries(p), 0);
	/* lock files keep " <pid>\n" and 0644 */
	snprintf(p, sizeof(p), "%s/misc/lock", home);
	b = engine_slurp(p, &len);
	{
		char want[32];
		snprintf(want, sizeof(want), " %ld\n", (long)getpid());
		assert_string_equal((char *)b, want);
	}
	free(b);
	json_decref(m);
	fixture_remove_tree(scratch);
	free(home);
	free(scratch);
}

static void
test_fixtures_open_read_close(void **state)
{
	size_t n;
	char **names = fixture_names(&n);
	(void)state;
	assert_true(n >= 8);
	for (size_t i = 0; i < n; i++)
		check_fixture_open_close(names[i],
		                         (i % 2) ? DS_OPEN_NOTHREAD : 0);
	fixture_names_free(names);
}

static void
check_fixture_reads(ds_storage *s, const char *name, json_t *m)
{
	json_t *objs = json_object_get(m, "objects");
	json_t *txns = json_object_get(m, "transactions");
	size_t i, j, nrev = 0;
	json_t *o, *r, *t;

	json_array_foreach(objs, i, o) {
		ds_oid oid = fixture_jid(o, "oid");
		ds_tid cur = fixture_jid(o, "current_serial"), got;
		json_t *revs = json_object_get(o, "revisions");
		unsigned char *pk;
		size_t len;
		char md5[33];

		OK(ds_storage_current_serial(s, oid, &got, &err));
		assert_true(got == cur);
		json_array_foreach(revs, j, r) {
			ds_tid serial = fixture_jid(r, "serial");
			int rc = ds_storage_load_serial(s, oid, serial, &pk,
			                                &len, &err);
			nrev++;
			if (fixture_jint(r, "pickle_len") == 0) {
				/* creation undone: no such object */
				assert_int_equal(rc, DS_ENOTFOUND);
				continue;
			}
			if (rc != DS_OK)
				fail_msg("%s: %s", name, err.msg);
			assert_int_equal(len, fixture_jint(r, "pickle_len"));
			fixture_md5_hex(pk, len, md5);
			assert_string_equal(md5, fixture_jstr(r, "pickle_md5"));
			free(pk);
			if (serial == cur) {
				ds_tid sv = 0;
				OK(ds_storage_load(s, oid, &pk, &len, &sv, &err));
				assert_true(sv == cur);
				fixture_md5_hex(pk, len, md5);
				assert_string_equal(md5,
				                    fixture_jstr(r, "pickle_md5"));
				free(pk);
			}
		}
	}
	assert_true(nrev > 100);
	/* every transaction file in the chain, with its metadata */
	json_array_foreach(txns, i, t) {
		ds_txninfo *info;
		json_t *oids = json_object_get(t, "oids");
		json_t *x;
		if (!fixture_jbool(t, "in_chain"))
			continue;
		OK(ds_storage_txn_info(s, fixture_jid(t, "tid"), &info, &err));
		assert_true(info->prev_tid == fixture_jid(t, "prev_tid"));
		assert_int_equal(info->user_len,
		                 strlen(fixture_jstr(t, "user")));
		assert_memory_equal(info->user, fixture_jstr(t, "user"),
		                    info->user_len);
		assert_string_equal(info->description,
		                    fixture_jstr(t, "description"));
		assert_int_equal(info->extension_len,
		                 fixture_jint(t, "extension_len"));
		assert_int_equal(info->noids, json_array_size(oids));
		json_array_foreach(oids, j, x) {
			ds_oid want;
			assert_int_equal(ds_id_parse(json_string_value(x), &want),
			                 DS_OK);
			assert_true(info->oids[j] == want);
		}
		ds_txninfo_free(info);
	}
}

struct chain_ctx {
	json_t *chain;
	size_t k;
};

static int
chain_fn(const ds_txninfo *info, void *arg)
{
	struct chain_ctx *c = arg;
	ds_tid want;

	if (c->k >= json_array_size(c->chain))
		return 99;
	assert_int_equal(ds_id_parse(json_string_value(
	                     json_array_get(c->chain, c->k)), &want), DS_OK);
	assert_true(info->tid == want);
	c->k++;
	return 0;
}

static int
forward_fn(const ds_txninfo *info, void *arg)
{
	struct chain_ctx *c = arg;
	ds_tid want;

	/* chain is newest first: walk it backwards */
	assert_true(c->k > 0);
	c->k--;
	assert_int_equal(ds_id_parse(json_string_value(
	                     json_array_get(c->chain, c->k)), &want), DS_OK);
	assert_true(info->tid == want);
	return 0;
}

static void
test_fixture_iterate(void **state)
{
	const char *names[] = {"bushy-master", "flat-master"};
	(void)state;
	for (size_t f = 0; f < 2; f++) {
		char *scratch = fixture_scratch_dir();
		char *home = fixture_copy(names[f], scratch);
		json_t *m = fixture_manifest_load(names[f]);
		json_t *chain = json_object_get(m, "chain");
		struct chain_ctx c = {chain, 0};
		ds_storage *s;
		size_t half = json_array_size(chain) / 2;
		ds_tid from;

		OK(ds_storage_open(home, 0, &s, &err));
		OK(ds_storage_txn_iterate(s, 0, DS_ITER_NEWEST_FIRST, chain_fn,
		                          &c, &err));
		assert_int_equal(c.k, json_array_size(chain));
		/* forward from the middle of the chain, oldest first */
		assert_int_equal(ds_id_parse(json_string_value(
		                     json_array_get(chain, half)), &from), DS_OK);
		c.k = half + 1;
		OK(ds_storage_txn_iterate(s, from, 0, forward_fn, &c, &err));
		assert_int_equal(c.k, 0);
		OK(ds_storage_close(s, 0, &err));
		json_decref(m);
		fixture_remove_tree(scratch);
		free(home);
		free(scratch);
	}
}

/* ---- commits write what the original writes ---- */

static void
expect_file(const char *home, const char *rel, const void *bytes, size_t n)
{
	char p[4096];
	size_t len;
	unsigned char *b;

	snprintf(p, sizeof(p), "%s/%s", home, rel);
	b = engine_slurp(p, &len);
	if (len != n || memcmp(b, bytes, n) != 0)
		fail_msg("%s: content differs (%zu bytes, want %zu)", p, len, n);
	assert_int_equal(engine_mode(p), 0640);
	free(b);
}

static void
test_commit_files(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = engine_mkds(scratch, "s", "bushy");
	ds_storage *s;
	ds_txn *t;
	ds_tid tid1, tid2;
	ds_oid oid0, oid1;
	static const unsigned char ext[] = "\x80\x03}q\x00.";
	unsigned char *b, x[8];
	size_t len;
	char rel[256], h[17], h2[17], name[DS_NAME_MAX];
	(void)state;

	OK(ds_storage_open(home, 0, &s, &err));
	assert_true(ds_storage_last_tid(s) == 0);
	OK(ds_storage_new_oid(s, &oid0, &err));
	OK(ds_storage_new_oid(s, &oid1, &err));
	assert_true(oid0 == 1 && oid1 == 2);
	OK(ds_txn_begin(s, "/ alice", "first", ext, sizeof(ext) - 1, &t, &err));
	OK(ds_txn_store(t, oid1, 0, "pickle-one", 10, &err));
	OK(ds_txn_store(t, oid0, 0, "pickle-zero", 11, &err));
	OK(ds_txn_finish(t, &tid1, &err));
	assert_true(tid1 > 0 && ds_storage_last_tid(s) == tid1);
	/* visible at once (from the journal) */
	OK(ds_storage_load(s, oid1, &b, &len, NULL, &err));
	assert_int_equal(len, 10);
	assert_memory_equal(b, "pickle-one", 10);
	free(b);
	OK(ds_txn_begin(s, NULL, NULL, NULL, 0, &t, &err));
	OK(ds_txn_store(t, oid1, tid1, "pickle-two", 10, &err));
	OK(ds_txn_finish(t, &tid2, &err));
	assert_true(tid2 > tid1);
	OK(ds_storage_close(s, 0, &err));

	/* the revision files, byte for byte */
	{
		ds_objrec r = {0};
		unsigned char *enc;
		size_t elen;
		r.oid = oid1;
		r.prev_serial = tid1;
		r.serial = tid2;
		r.pickle = (const unsigned char *)"pickle-two";
		r.pickle_len = 10;
		OK(ds_objrec_encode(&r, 1, &enc, &elen, &err));
		assert_int_equal(elen, 82);
		ds_name_revision(oid1, tid2, name);
		OK(ds_layout_name_to_path(DS_LAYOUT_BUSHY, name, rel,
		                          sizeof(rel), &err));
		hex16(tid2, h);
		{
			char want[128];
			snprintf(want, sizeof(want),
			         "o0/00/00/00/00/00/00/002/%s", h);
			assert_string_equal(rel, want);
		}
		{
			char r2[300];
			snprintf(r2, sizeof(r2), "A/%s", rel);
			expect_file(home, r2, enc, elen);
		}
		free(enc);
	}
	/* .c pointer: 8 bytes */
	ds_put_u64(x, tid2);
	expect_file(home, "A/o0/00/00/00/00/00/00/002/c", x, 8);
	ds_put_u64(x, tid1);
	expect_file(home, "A/o0/00/00/00/00/00/00/001/c", x, 8);
	/* x.serial, x.oid: replaced by journal files, 0640 */
	ds_put_u64(x, tid2);
	expect_file(home, "A/x/serial", x, 8);
	ds_put_u64(x, 2);
	expect_file(home, "A/x/oid", x, 8);
	/* the transaction file: user, description, extension, oids in
	 * store order, back pointer */
	{
		ds_txnrec tr = {0};
		unsigned char oids[16], *enc;
		size_t elen;
		char r2[300];
		ds_put_u64(oids, oid1);
		ds_put_u64(oids + 8, oid0);
		tr.tid = tid1;
		tr.prev_tid = 0;
		tr.user = "/ alice";
		tr.user_len = 7;
		tr.description = "first";
		tr.description_len = 5;
		tr.extension = ext;
		tr.extension_len = sizeof(ext) - 1;
		tr.oids = oids;
		tr.noids = 2;
		OK(ds_txnrec_encode(&tr, 1, &enc, &elen, &err));
		assert_int_equal(elen, 60 + 7 + 5 + 6 + 16);
		ds_name_transaction(tid1, name);
		OK(ds_layout_name_to_path(DS_LAYOUT_BUSHY, name, rel,
		                          sizeof(rel), &err));
		snprintf(r2, sizeof(r2), "A/%s", rel);
		expect_file(home, r2, enc, elen);
		free(enc);
		/* second: back pointer to the first, empty metadata */
		ds_name_transaction(tid2, name);
		OK(ds_layout_name_to_path(DS_LAYOUT_BUSHY, name, rel,
		                          sizeof(rel), &err));
		snprintf(r2, sizeof(r2), "%s/A/%s", home, rel);
		b = engine_slurp(r2, &len);
		assert_int_equal(len, 60 + 8);
		assert_true(ds_get_u64(b + 24) == tid1);
		assert_true(ds_get_u64(b + 8) == tid2);
		free(b);
	}
	/* x.packed untouched (mkds's 0644) */
	{
		char p[4096];
		snprintf(p, sizeof(p), "%s/A/x/packed", home);
		assert_int_equal(engine_mode(p), 0644);
	}
	(void)h2;
	fixture_remove_tree(scratch);
	free(home);
	free(scratch);
}

/* Our transaction file for the same user, description, extension and
 * oids is the original's byte for byte, but for the tid (8-15) and the
 * back pointer (24-31), which the md5 (of bytes 48..) does not cover. */
static void
test_txn_file_as_original(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = engine_mkds(scratch, "s", "bushy");
	char fx[4096], p[8400], rel[256], name[DS_NAME_MAX];
	json_t *m = fixture_manifest_load("bushy-master");
	json_t *txns = json_object_get(m, "transactions");
	ds_storage *s;
	size_t i, checked = 0;
	json_t *t;
	(void)state;

	fixture_home("bushy-master", fx, sizeof(fx));
	OK(ds_storage_open(home, DS_OPEN_NOTHREAD, &s, &err));
	json_array_foreach(txns, i, t) {
		unsigned char *orig, *mine;
		size_t olen, mlen;
		ds_txnrec r;
		ds_txn *tx;
		ds_tid tid;
		char user[70000], desc[70000];

		if (i % 6 != 0 && fixture_jint(t, "extension_len") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", fx, fixture_jstr(t, "path"));
		orig = engine_slurp(p, &olen);
		OK(ds_txnrec_decode(orig, olen, p, &r, &err));
		memcpy(user, r.user, r.user_len);
		user[r.user_len] = '\0';
		memcpy(desc, r.description, r.description_len);
		desc[r.description_len] = '\0';
		OK(ds_txn_begin(s, user, desc, r.extension, r.extension_len, &tx,
		                &err));
		for (size_t k = 0; k < r.noids; k++) {
			ds_oid oid = ds_get_u64(r.oids + 8 * k);
			ds_tid cur = 0;
			if (ds_storage_current_serial(s, oid, &cur, &err) != DS_OK)
				cur = 0;
			OK(ds_txn_store(tx, oid, cur, "p", 1, &err));
		}
		OK(ds_txn_finish(tx, &tid, &err));
		OK(ds_storage_flush(s, &err));
		ds_name_transaction(tid, name);
		OK(ds_layout_name_to_path(DS_LAYOUT_BUSHY, name, rel,
		                          sizeof(rel), &err));
		snprintf(p, sizeof(p), "%s/A/%s", home, rel);
		mine = engine_slurp(p, &mlen);
		assert_int_equal(mlen, olen);
		memset(orig + 8, 0, 8);
		memset(orig + 24, 0, 8);
		memset(mine + 8, 0, 8);
		memset(mine + 24, 0, 8);
		assert_memory_equal(mine, orig, olen);
		assert_int_equal(engine_mode(p), 0640);
		free(orig);
		free(mine);
		checked++;
	}
	assert_true(checked >= 10);
	OK(ds_storage_close(s, 0, &err));
	json_decref(m);
	fixture_remove_tree(scratch);
	free(home);
	free(scratch);
}

static void
test_md5_policy_write_off(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = engine_mkds(scratch, "s", "flat");
	ds_storage *s;
	ds_txn *t;
	ds_tid tid;
	char p[4096], name[DS_NAME_MAX];
	unsigned char *b, zero[16] = {0};
	size_t len;
	(void)state;

	engine_set_setting(home, "write", "0");
	OK(ds_storage_open(home, 0, &s, &err));
	OK(ds_txn_begin(s, "u", "d", NULL, 0, &t, &err));
	OK(ds_txn_store(t, 7, 0, "abc", 3, &err));
	OK(ds_txn_finish(t, &tid, &err));
	OK(ds_storage_close(s, 0, &err));
	ds_name_revision(7, tid, name);
	snprintf(p, sizeof(p), "%s/A/%s", home, name);
	b = engine_slurp(p, &len);
	assert_int_equal(len, 75);
	assert_memory_equal(b + 40, zero, 16);
	free(b);
	ds_name_transaction(tid, name);
	snprintf(p, sizeof(p), "%s/A/%s", home, name);
	b = engine_slurp(p, &len);
	assert_memory_equal(b + 32, zero, 16);
	free(b);
	/* x.oid raised to the oid stored */
	snprintf(p, sizeof(p), "%s/A/x.oid", home);
	b = engine_slurp(p, &len);
	assert_true(len == 8 && ds_get_u64(b) == 7);
	free(b);
	fixture_remove_tree(scratch);
	free(home);
	free(scratch);
}

static void
test_md5_policy_read(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = engine_mkds(scratch, "s", "flat");
	char p[4096], name[DS_NAME_MAX];
	ds_storage *s;
	ds_txn *t;
	ds_tid tid, got;
	unsigned char *b;
	size_t len;
	FILE *f;
	(void)state;

	OK(ds_storage_open(home, 0, &s, &err));
	OK(ds_txn_begin(s, "u", "d", NULL, 0, &t, &err));
	OK(ds_txn_store(t, 3, 0, "original", 8, &err));
	OK(ds_txn_finish(t, &tid, &err));
	OK(ds_storage_close(s, 0, &err));
	/* flip one pickle byte in A: the md5 no longer matches */
	ds_name_revision(3, tid, name);
	snprintf(p, sizeof(p), "%s/A/%s", home, name);
	f = fopen(p, "r+b");
	assert_non_null(f);
	fseek(f, 72, SEEK_SET);
	fputc('X', f);
	fclose(f);
	OK(ds_storage_open(home, 0, &s, &err));
	assert_int_equal(ds_storage_load(s, 3, &b, &len, NULL, &err),
	                 DS_ECORRUPT);
	assert_non_null(strstr(err.msg, name));
	OK(ds_storage_close(s, 0, &err));
	/* [md5policy] read 0: not checked */
	engine_set_setting(home, "read", "0");
	OK(ds_storage_open(home, 0, &s, &err));
	OK(ds_storage_load(s, 3, &b, &len, NULL, &err));
	assert_memory_equal(b, "Xriginal", 8);
	free(b);
	OK(ds_storage_close(s, 0, &err));
	/* a legacy 12-byte pointer (magic, serial) reads too */
	snprintf(p, sizeof(p), "%s/A/o0000000000000003.c", home);
	f = fopen(p, "wb");
	assert_non_null(f);
	{
		unsigned char leg[12] = {0x0B, 0xFE, 0xE8, 0xEC};
		ds_put_u64(leg + 4, tid);
		fwrite(leg, 1, 12, f);
	}
	fclose(f);
	OK(ds_storage_open(home, DS_OPEN_READONLY, &s, &err));
	OK(ds_storage_current_serial(s, 3, &got, &err));
	assert_true(got == tid);
	OK(ds_storage_close(s, 0, &err));
	fixture_remove_tree(scratch);
	free(home);
	free(scratch);
}

static void
test_conflict_and_abort(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = engine_mkds(scratch, "s", "chunky");
	char j[4096], a[4096], d1[33], d2[33];
	ds_storage *s;
	ds_txn *t;
	ds_tid tid1, tid2;
	unsigned char *b;
	size_t len;
	int rc;
	(void)state;

	OK(ds_storage_open(home, 0, &s, &err));
	OK(ds_txn_begin(s, "u", "d", NULL, 0, &t, &err));
	OK(ds_txn_store(t, 1, 0, "v1", 2, &err));
	OK(ds_txn_finish(t, &tid1, &err));
	OK(ds_txn_begin(s, "u", "d", NULL, 0, &t, &err));
	OK(ds_txn_store(t, 1, tid1, "v2", 2, &err));
	OK(ds_txn_finish(t, &tid2, &err));
	OK(ds_storage_flush(s, &err));
	snprintf(a, sizeof(a), "%s/A", home);
	engine_tree_digest(a, d1, NULL);

	/* stale serial: conflict naming the oid and both serials */
	OK(ds_txn_begin(s, "u", "d", NULL, 0, &t, &err));
	OK(ds_txn_store(t, 2, 0, "other", 5, &err));
	rc = ds_txn_store(t, 1, tid1, "v3", 2, &err);
	assert_int_equal(rc, DS_ECONFLICT);
	{
		char h1[17], h2[17];
		ds_id_format(tid1, h1);
		ds_id_format(tid2, h2);
		assert_non_null(strstr(err.msg, "0000000000000001"));
		assert_non_null(strstr(err.msg, h1));
		assert_non_null(strstr(err.msg, h2));
	}
	/* failed until aborted */
	assert_int_equal(ds_txn_store(t, 3, 0, "x", 1, &err), DS_ESTATE);
	assert_int_equal(ds_txn_vote(t, &err), DS_ESTATE);
	ds_txn_abort(t);
	snprintf(j, sizeof(j), "%s/journal", home);
	assert_int_equal(engine_dir_entries(j), 0);
	assert_int_equal(ds_storage_load(s, 2, &b, &len, NULL, &err),
	                 DS_ENOTFOUND);
	/* abort after vote leaves nothing either */
	OK(ds_txn_begin(s, "u", "d", NULL, 0, &t, &err));
	OK(ds_txn_store(t, 1, tid2, "v3", 2, &err));
	OK(ds_txn_vote(t, &err));
	assert_int_equal(engine_dir_entries(j), 1);
	ds_txn_abort(t);
	assert_int_equal(engine_dir_entries(j), 0);
	/* finish of a failed transaction commits nothing */
	OK(ds_txn_begin(s, "u", "d", NULL, 0, &t, &err));
	assert_int_equal(ds_txn_store(t, 1, 0, "v4", 2, &err), DS_ECONFLICT);
	assert_int_equal(ds_txn_finish(t, NULL, &err), DS_ESTATE);
	assert_int_equal(engine_dir_entries(j), 0);
	assert_true(ds_storage_last_tid(s) == tid2);
	OK(ds_storage_load(s, 1, &b, &len, NULL, &err));
	assert_memory_equal(b, "v2", 2);
	free(b);
	OK(ds_storage_flush(s, &err));
	engine_tree_digest(a, d2, NULL);
	assert_string_equal(d1, d2);
	/* empty pickle refused without failing the transaction */
	OK(ds_txn_begin(s, "u", "d", NULL, 0, &t, &err));
	assert_int_equal(ds_txn_store(t, 5, 0, "", 0, &err), DS_EINVAL);
	OK(ds_txn_store(t, 5, 0, "ok", 2, &err));
	OK(ds_txn_finish(t, NULL, &err));
	OK(ds_storage_close(s, 0, &err));
	fixture_remove_tree(scratch);
	free(home);
	free(scratch);
}

static void
test_load_before_and_history(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = engine_mkds(scratch, "s", "lawn");
	ds_storage *s;
	ds_txn *t;
	ds_tid tids[4], serial, next;
	ds_history_entry *h;
	size_t n, len;
	unsigned char *b;
	char desc[32];
	(void)state;

	OK(ds_storage_open(home, DS_OPEN_NOTHREAD, &s, &err));
	for (int i = 0; i < 4; i++) {
		char pk[16];
		snprintf(desc, sizeof(desc), "rev %d", i);
		snprintf(pk, sizeof(pk), "value-%d", i);
		OK(ds_txn_begin(s, "/ bob", desc, NULL, 0, &t, &err));
		OK(ds_txn_store(t, 9, i ? tids[i - 1] : 0, pk, strlen(pk), &err));
		OK(ds_txn_finish(t, &tids[i], &err));
	}
	OK(ds_storage_load_before(s, 9, tids[2], &b, &len, &serial, &next, &err));
	assert_memory_equal(b, "value-1", 7);
	assert_true(serial == tids[1] && next == tids[2]);
	free(b);
	OK(ds_storage_load_before(s, 9, tids[3] + 1, &b, &len, &serial, &next,
	                          &err));
	assert_memory_equal(b, "value-3", 7);
	assert_true(serial == tids[3] && next == 0);
	free(b);
	assert_int_equal(ds_storage_load_before(s, 9, tids[0], &b, &len,
	                                        &serial, &next, &err),
	                 DS_ENOTFOUND);
	OK(ds_storage_history(s, 9, 0, &h, &n, &err));
	assert_int_equal(n, 4);
	for (size_t i = 0; i < n; i++) {
		snprintf(desc, sizeof(desc), "rev %zu", 3 - i);
		assert_true(h[i].serial == tids[3 - i]);
		assert_string_equal(h[i].description, desc);
		assert_string_equal(h[i].user, "/ bob");
		assert_int_equal(h[i].size, 7);
		assert_true(h[i].txn_known);
	}
	ds_history_free(h, n);
	OK(ds_storage_history(s, 9, 2, &h, &n, &err));
	assert_int_equal(n, 2);
	ds_history_free(h, n);
	assert_int_equal(ds_storage_history(s, 10, 0, &h, &n, &err),
	                 DS_ENOTFOUND);
	OK(ds_storage_close(s, 0, &err));
	fixture_remove_tree(scratch);
	free(home);
	free(scratch);
}

static void
test_second_opener_refused(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = fixture_copy("flat-master", scratch);
	ds_storage *s, *s2 = NULL;
	char want[64];
	(void)state;

	OK(ds_storage_open(home, 0, &s, &err));
	assert_int_equal(ds_storage_open(home, 0, &s2, &err), DS_ELOCKED);
	assert_null(s2);
	snprintf(want, sizeof(want), "%ld", (long)getpid());
	assert_non_null(strstr(err.msg, want));
	assert_non_null(strstr(err.msg, home));
	OK(ds_storage_close(s, 0, &err));
	/* and it opens again once closed */
	OK(ds_storage_open(home, 0, &s, &err));
	OK(ds_storage_close(s, DS_CLOSE_QUICK, &err));
	fixture_remove_tree(scratch);
	free(home);
	free(scratch);
}

static void
test_readonly_and_save_oid(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = engine_mkds(scratch, "s", "bushy");
	ds_storage *s;
	ds_txn *t = NULL;
	ds_oid o;
	(void)state;

	OK(ds_storage_open(home, DS_OPEN_READONLY, &s, &err));
	assert_int_equal(ds_txn_begin(s, "u", "d", NULL, 0, &t, &err),
	                 DS_ESTATE);
	assert_null(t);
	assert_int_equal(ds_storage_new_oid(s, &o, &err), DS_ESTATE);
	OK(ds_storage_close(s, 0, &err));
	/* new_oid is durable only with save_oid (or a commit) */
	OK(ds_storage_open(home, 0, &s, &err));
	OK(ds_storage_new_oid(s, &o, &err));
	OK(ds_storage_new_oid(s, &o, &err));
	assert_true(o == 2);
	OK(ds_storage_save_oid(s, &err));
	OK(ds_storage_close(s, 0, &err));
	OK(ds_storage_open(home, 0, &s, &err));
	assert_true(ds_storage_last_oid(s) == 2);
	assert_true(ds_storage_last_tid(s) == 0);
	OK(ds_storage_new_oid(s, &o, &err));
	assert_true(o == 3);
	OK(ds_storage_close(s, 0, &err));
	fixture_remove_tree(scratch);
	free(home);
	free(scratch);
}

/* Oids never wrap and never repeat one in use: a store above x.oid
 * raises it at once, and past FFFFFFFFFFFFFFFF allocation fails. */
static void
test_oid_exhaustion(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = engine_mkds(scratch, "s", "bushy");
	ds_storage *s;
	ds_txn *t = NULL;
	ds_oid o;
	ds_tid tid;
	(void)state;

	OK(ds_storage_open(home, 0, &s, &err));
	OK(ds_txn_begin(s, "u", "d", NULL, 0, &t, &err));
	OK(ds_txn_store(t, 5, 0, "p", 1, &err));
	/* stored, not yet voted: already taken */
	OK(ds_storage_new_oid(s, &o, &err));
	assert_true(o == 6);
	OK(ds_txn_store(t, 0xFFFFFFFFFFFFFFFEull, 0, "q", 1, &err));
	OK(ds_storage_new_oid(s, &o, &err));
	assert_true(o == 0xFFFFFFFFFFFFFFFFull);
	OK(ds_txn_store(t, o, 0, "r", 1, &err));
	assert_int_equal(ds_storage_new_oid(s, &o, &err), DS_ESTATE);
	assert_non_null(strstr(err.msg, "object ids exhausted"));
	OK(ds_txn_finish(t, &tid, &err));
	OK(ds_storage_close(s, 0, &err));
	/* durable, and still exhausted after a reopen; oid 1 untouched */
	OK(ds_storage_open(home, 0, &s, &err));
	assert_true(ds_storage_last_oid(s) == 0xFFFFFFFFFFFFFFFFull);
	assert_int_equal(ds_storage_new_oid(s, &o, &err), DS_ESTATE);
	assert_true(ds_storage_last_oid(s) == 0xFFFFFFFFFFFFFFFFull);
	OK(ds_storage_close(s, 0, &err));
	fixture_remove_tree(scratch);
	free(home);
	free(scratch);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixtures_open_read_close),
		cmocka_unit_test(test_fixture_iterate),
		cmocka_unit_test(test_commit_files),
		cmocka_unit_test(test_txn_file_as_original),
		cmocka_unit_test(test_md5_policy_write_off),
		cmocka_unit_test(test_md5_policy_read),
		cmocka_unit_test(test_conflict_and_abort),
		cmocka_unit_test(test_load_before_and_history),
		cmocka_unit_test(test_second_opener_refused),
		cmocka_unit_test(test_readonly_and_save_oid),
		cmocka_unit_test(test_oid_exhaustion),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
