/*
 * test_pack.c - ds_storage_pack on the engine: online (commits made while
 * the pack holds A and sweeps it land in B and survive), on an empty
 * storage, read-only, and refusing a record whose reference is dangling
 * before it removes anything; the caller's clock (ds_pack_opts.now).
 * The trees a pack leaves are compared with
 * the original's in e2e/t_pack_orig_replay.sh; crash safety is
 * crash/c_pack.sh.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "helper_engine.h"
#include "helper_fixture.h"
#include "internal.h"

#define R_THRESHOLD 0x040D44B222699866ULL /* between P and R of bushy */

/* A record referencesf reads: class None, state None. */
static const unsigned char rec_none[] = "\x80\x03N.\x80\x03N.";

struct online {
	ds_storage *s;
	int step_seen;
	int committed;
	char code[DS_SNAPSHOT_CODE_MAX + 16];
	ds_oid oids[5];
	ds_tid tids[5];
	ds_tid root_serial;
};

/* Runs inside the pack (its log callback, between the marking and the
 * sweep): commit five transactions through the same storage. */
static void
online_log(int level, const char *msg, void *ctx)
{
	struct online *o = ctx;
	ds_error err;
	int i;

	(void)level;
	if (strcmp(msg, "removing unreachable objects") != 0)
		return;
	o->step_seen = 1;
	ds_storage_snapshot_code(o->s, o->code);
	for (i = 0; i < 5; i++) {
		ds_txn *t;
		ds_tid serial;

		assert_int_equal(ds_storage_new_oid(o->s, &o->oids[i], &err),
		                 DS_OK);
		assert_int_equal(ds_txn_begin(o->s, "online", "during pack",
		                              NULL, 0, &t, &err), DS_OK);
		assert_int_equal(ds_txn_store(t, o->oids[i], 0, rec_none,
		                              sizeof(rec_none) - 1, &err),
		                 DS_OK);
		if (i == 4) {
			/* a new revision of the root, which the pack keeps */
			unsigned char *p;
			size_t len;
			assert_int_equal(ds_storage_load(o->s, 0, &p, &len,
			                                 &serial, &err), DS_OK);
			assert_int_equal(ds_txn_store(t, 0, serial, p, len,
			                              &err), DS_OK);
			free(p);
		}
		assert_int_equal(ds_txn_finish(t, &o->tids[i], &err), DS_OK);
		o->committed++;
	}
	assert_int_equal(ds_storage_flush(o->s, &err), DS_OK);
}

static size_t
count_leftovers(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		char p[8192];
		struct stat sb;
		size_t l = strlen(de->d_name);

		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		assert_int_equal(lstat(p, &sb), 0);
		if (S_ISDIR(sb.st_mode))
			n += count_leftovers(p);
		else if (l > 8 && strcmp(de->d_name + l - 8, "-deleted") == 0)
			n++;
	}
	closedir(d);
	return n;
}

static void
test_online(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = fixture_copy("bushy-master", scratch), b[4096];
	struct ds_pack_opts opts;
	struct ds_pack_stats st;
	struct ds_check_stats cst;
	struct online o;
	ds_error err;
	int i;

	(void)state;
	memset(&o, 0, sizeof(o));
	assert_int_equal(ds_storage_open(home, 0, &o.s, &err), DS_OK);
	memset(&opts, 0, sizeof(opts));
	opts.log = online_log;
	opts.log_ctx = &o;
	assert_int_equal(ds_storage_pack(o.s, R_THRESHOLD, &opts, &st, &err),
	                 DS_OK);
	assert_true(o.step_seen);
	assert_int_equal(o.committed, 5);
	/* A was held: the commits went to B meanwhile */
	assert_string_equal(o.code, "packing");
	assert_int_equal(st.threshold, R_THRESHOLD);
	assert_int_equal(st.packed, R_THRESHOLD);
	assert_int_equal(st.files_removed, 372);
	assert_int_equal(ds_storage_last_pack(o.s), R_THRESHOLD);
	/* everything committed during the pack reads back, now and after
	 * a close and reopen */
	for (int round = 0; round < 2; round++) {
		for (i = 0; i < 5; i++) {
			unsigned char *p;
			size_t len;
			ds_tid serial;
			assert_int_equal(ds_storage_load(o.s, o.oids[i], &p,
			                                 &len, &serial, &err),
			                 DS_OK);
			assert_int_equal(serial, o.tids[i]);
			assert_memory_equal(p, rec_none, len);
			free(p);
		}
		assert_int_equal(ds_storage_last_tid(o.s), o.tids[4]);
		assert_int_equal(ds_storage_close(o.s, 0, &err), DS_OK);
		o.s = NULL;
		if (round == 0)
			assert_int_equal(ds_storage_open(home, 0, &o.s, &err),
			                 DS_OK);
	}
	snprintf(b, sizeof(b), "%s/B", home);
	assert_int_equal(engine_dir_entries(b), 0);
	snprintf(b, sizeof(b), "%s/A", home);
	assert_int_equal(count_leftovers(b), 372);
	memset(&cst, 0, sizeof(cst));
	if (ds_check(home, NULL, &cst, &err) != DS_OK)
		fail_msg("check: %s", err.msg);
	assert_int_equal(cst.problems, 0);
	assert_int_equal(cst.unfinished_pack, 0);
	/* a second pack at the same time removes one more file: the
	 * root's revision that was current at the first pack (older than
	 * the threshold) and is not since the commit made during it */
	assert_int_equal(ds_storage_open(home, 0, &o.s, &err), DS_OK);
	assert_int_equal(ds_storage_pack(o.s, R_THRESHOLD, NULL, &st, &err),
	                 DS_OK);
	assert_int_equal(st.files_removed, 1);
	assert_int_equal(ds_storage_close(o.s, 0, &err), DS_OK);
	snprintf(b, sizeof(b), "%s/A/o0/00/00/00/00/00/00/000", home);
	assert_int_equal(count_leftovers(b), 2);
	assert_int_equal(ds_storage_open(home, 0, &o.s, &err), DS_OK);
	assert_int_equal(ds_storage_pack(o.s, R_THRESHOLD, NULL, &st, &err),
	                 DS_OK);
	assert_int_equal(st.files_removed, 0);
	assert_int_equal(ds_storage_close(o.s, 0, &err), DS_OK);
	fixture_remove_tree(scratch);
	free(home);
	free(scratch);
}

/* Directories under dir (not its transactions' subtrees, top-level
 * "t...") holding a revision a pack removed: a bushy revision's name is
 * 16 hex digits, and the pack renamed it "<name>-<time>-deleted". */
static size_t
count_revision_dirs(const char *dir, int top)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;
	int here = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		char p[8192];
		struct stat sb;

		if (de->d_name[0] == '.' || (top && de->d_name[0] == 't'))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		assert_int_equal(lstat(p, &sb), 0);
		if (S_ISDIR(sb.st_mode))
			n += count_revision_dirs(p, 0);
		else if (strlen(de->d_name) > 17 && de->d_name[16] == '-' &&
		         strspn(de->d_name, "0123456789ABCDEF") == 16 &&
		         strstr(de->d_name, "-deleted") != NULL)
			here = 1;
	}
	closedir(d);
	return n + (size_t)here;
}

/* The second sweep lists only the directories of the objects that have
 * a revision to remove in a layout with a directory per object (bushy),
 * and every directory in one without (flat: A itself). */
static void
test_revisit(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = fixture_copy("bushy-master", scratch), a[4096];
	char *flat = fixture_copy("flat-master", scratch);
	struct ds_pack_stats st;
	ds_storage *s;
	ds_error err;
	size_t dirs;

	(void)state;
	assert_int_equal(ds_storage_open(home, 0, &s, &err), DS_OK);
	assert_int_equal(ds_storage_pack(s, R_THRESHOLD, NULL, &st, &err),
	                 DS_OK);
	assert_int_equal(ds_storage_close(s, 0, &err), DS_OK);
	snprintf(a, sizeof(a), "%s/A", home);
	dirs = count_revision_dirs(a, 1);
	assert_true(dirs > 0);
	assert_int_equal(st.dirs_revisited, dirs);
	/* nothing left to remove: nothing listed a second time */
	assert_int_equal(ds_storage_open(home, 0, &s, &err), DS_OK);
	assert_int_equal(ds_storage_pack(s, R_THRESHOLD, NULL, &st, &err),
	                 DS_OK);
	assert_int_equal(ds_storage_close(s, 0, &err), DS_OK);
	assert_int_equal(st.files_removed, 0);
	assert_int_equal(st.dirs_revisited, 0);

	/* flat-master's R (tests/pack/cases.txt, flat-R) */
	assert_int_equal(ds_storage_open(flat, 0, &s, &err), DS_OK);
	assert_int_equal(ds_storage_pack(s, 0x040D44B2399029CCull, NULL, &st,
	                                 &err), DS_OK);
	assert_int_equal(ds_storage_close(s, 0, &err), DS_OK);
	assert_true(st.files_removed > 0);
	assert_int_equal(st.dirs_revisited, 1);
	fixture_remove_tree(scratch);
	free(home);
	free(flat);
	free(scratch);
}

static void
test_empty_and_readonly(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = engine_mkds(scratch, "e", "flat");
	struct ds_pack_stats st;
	ds_storage *s;
	ds_error err;

	(void)state;
	assert_int_equal(ds_storage_open(home, 0, &s, &err), DS_OK);
	assert_int_equal(ds_storage_pack(s, UINT64_MAX, NULL, &st, &err),
	                 DS_OK);
	assert_true(st.empty);
	assert_int_equal(st.files_removed, 0);
	assert_int_equal(ds_storage_close(s, 0, &err), DS_OK);
	assert_int_equal(ds_storage_open(home, DS_OPEN_READONLY, &s, &err),
	                 DS_OK);
	assert_int_equal(ds_storage_pack(s, UINT64_MAX, NULL, &st, &err),
	                 DS_ESTATE);
	assert_non_null(strstr(err.msg, "read-only"));
	ds_storage_close(s, 0, NULL);
	fixture_remove_tree(scratch);
	free(home);
	free(scratch);
}

/* The root refers to oid 5, which does not exist: the pack stops before
 * it removes anything (the object's references are unknown) and leaves
 * snapshot mode. */
static void
test_dangling(void **state)
{
	static const unsigned char root[] =
		"\x80\x03" "cpersistent.mapping\nPersistentMapping\nq\x00."
		"\x80\x03" "}q\x01X\x01\x00\x00\x00" "a"
		"C\x08\x00\x00\x00\x00\x00\x00\x00\x05Qs.";
	char *scratch = fixture_scratch_dir();
	char *home = engine_mkds(scratch, "d", "bushy"), a[4096];
	char code[DS_SNAPSHOT_CODE_MAX + 16];
	struct ds_pack_stats st;
	ds_storage *s;
	ds_txn *t;
	ds_tid tid;
	ds_error err;
	int i;

	(void)state;
	assert_int_equal(ds_storage_open(home, 0, &s, &err), DS_OK);
	for (i = 0; i < 3; i++) {
		assert_int_equal(ds_txn_begin(s, "u", "d", NULL, 0, &t, &err),
		                 DS_OK);
		assert_int_equal(ds_txn_store(t, 0, i ? tid : 0, root,
		                              sizeof(root) - 1, &err), DS_OK);
		assert_int_equal(ds_txn_finish(t, &tid, &err), DS_OK);
	}
	assert_int_equal(ds_storage_pack(s, tid, NULL, &st, &err),
	                 DS_ECORRUPT);
	if (strstr(err.msg, "0000000000000005") == NULL)
		fail_msg("message: %s", err.msg);
	/* snapshot mode left (B moving back over A, or done) */
	ds_storage_snapshot_code(s, code);
	assert_true(code[0] == '\0' || strcmp(code, "recombining/packing") == 0);
	assert_int_equal(ds_storage_close(s, 0, &err), DS_OK);
	snprintf(a, sizeof(a), "%s/A", home);
	assert_int_equal(count_leftovers(a), 0);
	fixture_remove_tree(scratch);
	free(home);
	free(scratch);
}

/* ds_pack_opts.now replaces the clock for the pack's limits (the Python
 * package passes its time.time(), as the original's pack): with a "now"
 * in 2001 the pack time is 2001 - min_pack_time, before every
 * transaction, and nothing goes; with the clock it is ten minutes ago. */
static void
test_now(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = engine_mkds(scratch, "n", "bushy");
	struct ds_pack_opts opts;
	struct ds_pack_stats st;
	ds_storage *s;
	ds_txn *t;
	ds_tid tid = 0;
	ds_error err;
	int i;

	(void)state;
	assert_int_equal(ds_storage_open(home, 0, &s, &err), DS_OK);
	for (i = 0; i < 3; i++) {
		assert_int_equal(ds_txn_begin(s, "u", "d", NULL, 0, &t, &err),
		                 DS_OK);
		assert_int_equal(ds_txn_store(t, 0, tid, rec_none,
		                              sizeof(rec_none) - 1, &err),
		                 DS_OK);
		assert_int_equal(ds_txn_finish(t, &tid, &err), DS_OK);
	}
	memset(&opts, 0, sizeof(opts));
	opts.now = 1e9;
	assert_int_equal(ds_storage_pack(s, UINT64_MAX, &opts, &st, &err),
	                 DS_OK);
	assert_int_equal(st.threshold, ds_tid_from_time(1e9 - 600.0));
	assert_int_equal(st.files_removed, 0);
	assert_int_equal(ds_storage_last_pack(s), st.threshold);
	/* the clock: ten minutes before the transactions just made, not
	 * 2001 */
	opts.now = 0;
	assert_int_equal(ds_storage_pack(s, UINT64_MAX, &opts, &st, &err),
	                 DS_OK);
	assert_true(st.threshold > ds_tid_from_time(2e9 - 3600.0 * 24 * 3650));
	assert_true(st.threshold < tid);
	assert_int_equal(st.files_removed, 0);
	assert_int_equal(ds_storage_close(s, 0, &err), DS_OK);
	fixture_remove_tree(scratch);
	free(home);
	free(scratch);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_online),
		cmocka_unit_test(test_revisit),
		cmocka_unit_test(test_empty_and_readonly),
		cmocka_unit_test(test_dangling),
		cmocka_unit_test(test_now),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
