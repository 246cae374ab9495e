/*
 * test_backup.c - backup.c: the index (backup.py's tindex format and
 * find_rev), the member rule of a restore, and ds_backup / ds_restore on
 * a copy of a fixture storage (round trip, the index line, refusals,
 * leftovers of a killed run).
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

#include "backup.h"
#include "helper_engine.h"
#include "helper_fixture.h"
#include "internal.h"

/* ---- the index ---- */

static void
test_index_parse(void **state)
{
	struct backup_index idx;
	ds_error err;
	char text[2048];
	const struct backup_entry *e;

	(void)state;
	/* the header alone: empty */
	assert_int_equal(backup_index_parse(backup_index_header,
	                 strlen(backup_index_header), "t", &idx, &err), DS_OK);
	assert_int_equal(idx.n, 0);
	assert_int_equal(idx.max_seq, 0);
	backup_index_free(&idx);
	/* what backup.py writes, a comment after a line, blank lines */
	snprintf(text, sizeof(text), "%s"
	         "1     1796476002   040D44B222699877\n"
	         "\n"
	         "2     1796476100   040D44B2249CA6AA  # by hand\n"
	         "  7 1796476200 040d44b2249ca6ab\n"
	         "3     1796476150   040D44B2249CA6AC", backup_index_header);
	assert_int_equal(backup_index_parse(text, strlen(text), "t", &idx,
	                 &err), DS_OK);
	assert_int_equal(idx.n, 4);
	assert_int_equal(idx.max_seq, 7);
	assert_true(idx.e[1].tid == 0x040D44B2249CA6AAull);
	assert_true(idx.e[2].tid == 0x040D44B2249CA6ABull);
	/* find_rev: the last entry before the first later one (file order) */
	assert_null(backup_index_find(&idx, 1796476001));
	e = backup_index_find(&idx, 1796476002);
	assert_non_null(e);
	assert_int_equal(e->seq, 1);
	e = backup_index_find(&idx, 1796476199);
	assert_int_equal(e->seq, 2);   /* stops at 7's later time */
	e = backup_index_find(&idx, 1796476999);
	assert_int_equal(e->seq, 3);
	backup_index_free(&idx);
}

static void
test_index_refused(void **state)
{
	static const char *bad[] = {
		"1 1796476002\n",                       /* two fields */
		"x 1796476002 040D44B222699877\n",      /* seq */
		"1 soon 040D44B222699877\n",            /* timestamp */
		"1 1796476002 040D44B22269987\n",       /* 15 digits */
		"1 1796476002 040D44B22269987G\n",      /* not hex */
		"-1 1796476002 040D44B222699877\n",     /* negative seq */
	};
	struct backup_index idx;
	ds_error err;
	char text[512];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "# c\n\n%s", bad[i]);
		assert_int_equal(backup_index_parse(text, strlen(text), "IDX",
		                 &idx, &err), DS_ECORRUPT);
		assert_non_null(strstr(err.msg, "IDX"));
		assert_non_null(strstr(err.msg, "line 3"));
		assert_null(idx.e);
	}
	/* a NUL byte */
	memcpy(text, "1 2 0\0", 6);
	assert_int_equal(backup_index_parse(text, 6, "IDX", &idx, &err),
	                 DS_ECORRUPT);
}

/* ---- the member rule ---- */

static void
test_member_check(void **state)
{
	static const struct {
		const char *name;
		mode_t type;
		int hardlink, have_layout, want, kind;
		const char *norm;
	} c[] = {
		{"A/", S_IFDIR, 0, 0, DS_OK, BM_TOPDIR, "A"},
		{"./misc/", S_IFDIR, 0, 0, DS_OK, BM_TOPDIR, "misc"},
		{"./", S_IFDIR, 0, 0, DS_OK, BM_SKIP, NULL},
		{".", S_IFDIR, 0, 0, DS_OK, BM_SKIP, NULL},
		{"A/x", S_IFDIR, 0, 1, DS_OK, BM_DIR, "A/x"},
		{"config/settings", S_IFREG, 0, 0, DS_OK, BM_CONFIG,
		 "config/settings"},
		{"./config/identity", S_IFREG, 0, 0, DS_OK, BM_CONFIG,
		 "config/identity"},
		{"A/x/serial", S_IFREG, 0, 1, DS_OK, BM_DATA, "A/x/serial"},
		{"A/o0/00/00/00/00/00/00/01A/c", S_IFREG, 0, 1, DS_OK, BM_DATA,
		 "A/o0/00/00/00/00/00/00/01A/c"},
		{"A/x/serial", S_IFREG, 0, 0, DS_EPROTO, 0, NULL}, /* no layout */
		{"A/x.serial", S_IFREG, 0, 1, DS_EPROTO, 0, NULL}, /* flat name */
		{"A/junk", S_IFREG, 0, 1, DS_EPROTO, 0, NULL},
		{"/etc/passwd", S_IFREG, 0, 1, DS_EPROTO, 0, NULL},
		{"A/../../x", S_IFREG, 0, 1, DS_EPROTO, 0, NULL},
		{"../x", S_IFREG, 0, 1, DS_EPROTO, 0, NULL},
		{"A//x/serial", S_IFREG, 0, 1, DS_EPROTO, 0, NULL},
		{"A/./x/serial", S_IFREG, 0, 1, DS_EPROTO, 0, NULL},
		{"config/../A", S_IFDIR, 0, 1, DS_EPROTO, 0, NULL},
		{"A/x/serial", S_IFLNK, 0, 1, DS_EPROTO, 0, NULL},
		{"A/x/serial", S_IFREG, 1, 1, DS_EPROTO, 0, NULL},
		{"A/x/serial", S_IFCHR, 0, 1, DS_EPROTO, 0, NULL},
		{"A/x/serial", S_IFBLK, 0, 1, DS_EPROTO, 0, NULL},
		{"A/x/serial", S_IFIFO, 0, 1, DS_EPROTO, 0, NULL},
		{"misc/lock", S_IFREG, 0, 1, DS_EPROTO, 0, NULL},
		{"journal/working_X_done", S_IFDIR, 0, 1, DS_EPROTO, 0, NULL},
		{"config/sub/x", S_IFREG, 0, 1, DS_EPROTO, 0, NULL},
		{"config/sub", S_IFDIR, 0, 1, DS_EPROTO, 0, NULL},
		{"toplevelfile", S_IFREG, 0, 1, DS_EPROTO, 0, NULL},
		{"", S_IFREG, 0, 1, DS_EPROTO, 0, NULL},
	};
	char norm[256];
	ds_error err;
	int kind;

	(void)state;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		int rc = backup_member_check(c[i].name, c[i].type,
		                             c[i].hardlink, c[i].have_layout,
		                             DS_LAYOUT_BUSHY, norm,
		                             sizeof(norm), &kind, &err);
		if (rc != c[i].want)
			fail_msg("%s: got %d (%s), want %d", c[i].name, rc,
			         rc ? err.msg : "", c[i].want);
		if (rc == DS_OK) {
			assert_int_equal(kind, c[i].kind);
			if (c[i].norm != NULL)
				assert_string_equal(norm, c[i].norm);
		} else {
			assert_non_null(strstr(err.msg, "member"));
		}
	}
	/* a name longer than the buffer */
	assert_int_equal(backup_member_check("config/settings", S_IFREG, 0, 1,
	                 DS_LAYOUT_BUSHY, norm, 8, &kind, &err), DS_EINVAL);
}

/* ---- ds_backup and ds_restore ---- */

struct msgs {
	char all[16384];
};

static void
collect(int level, const char *msg, void *ctx)
{
	struct msgs *m = ctx;
	size_t l = strlen(m->all);

	(void)level;
	snprintf(m->all + l, sizeof(m->all) - l, "%s\n", msg);
}

static void
commit_one(const char *home, const char *data)
{
	ds_storage *s = NULL;
	ds_txn *t = NULL;
	ds_error err;
	ds_tid serial = 0;

	assert_int_equal(ds_storage_open(home, DS_OPEN_NOTHREAD, &s, &err),
	                 DS_OK);
	ds_storage_current_serial(s, 1, &serial, &err);
	assert_int_equal(ds_txn_begin(s, "u", "d", NULL, 0, &t, &err), DS_OK);
	assert_int_equal(ds_txn_store(t, 1, serial, data, strlen(data), &err),
	                 DS_OK);
	assert_int_equal(ds_txn_finish(t, NULL, &err), DS_OK);
	assert_int_equal(ds_storage_close(s, 0, &err), DS_OK);
}

static void
test_round_trip(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = fixture_copy("bushy-replica-old", scratch);
	char bdir[2048], p[4096], a1[4096], a2[4096], r[2048], ra[4096];
	char ha[4096], d1[33], d2[33];
	struct ds_backup_cmd full = {DS_BACKUP_FULL, NULL, 0};
	struct ds_backup_cmd inc = {DS_BACKUP_INC, "pre", 0};
	struct ds_backup_opts o = {0};
	struct ds_backup_stats st;
	struct ds_restore_stats rst;
	struct msgs m = {{0}};
	const char *arch[2];
	size_t n1, n2, len;
	unsigned char *idx;
	ds_error err;

	(void)state;
	o.log = collect;
	o.log_ctx = &m;
	/* HOME/backups must exist, as for backup.py */
	assert_int_equal(ds_backup(home, &full, 1, &o, &st, &err),
	                 DS_ENOTFOUND);
	assert_non_null(strstr(err.msg, "backups does not exist"));
	snprintf(bdir, sizeof(bdir), "%s/backups", home);
	assert_int_equal(mkdir(bdir, 0755), 0);
	/* no command; a bad prefix; inc without an earlier backup */
	assert_int_equal(ds_backup(home, &full, 0, &o, &st, &err), DS_EINVAL);
	inc.prefix = "a/b";
	assert_int_equal(ds_backup(home, &inc, 1, &o, &st, &err), DS_EINVAL);
	inc.prefix = "pre";
	inc.since = (long long)time(NULL);
	assert_int_equal(ds_backup(home, &inc, 1, &o, &st, &err),
	                 DS_ENOTFOUND);
	assert_non_null(strstr(err.msg, "No previous backup found"));
	assert_int_equal(engine_dir_entries(bdir), 0);
	/* a temporary file a killed run left is replaced */
	snprintf(p, sizeof(p), "%s/.tmp-backup-1.tgz", bdir);
	assert_int_equal(ds_io_write_file(p, "junk", 4, 0640, 1, 0, &err),
	                 DS_OK);
	assert_int_equal(ds_backup(home, &full, 1, &o, &st, &err), DS_OK);
	assert_int_equal(st.seq, 1);
	assert_int_equal(st.archives, 1);
	assert_true(st.indexed);
	assert_true(st.tid == 0x040D44B222699877ull);
	assert_false(engine_exists(p));
	snprintf(a1, sizeof(a1), "%s/backup-1.tgz", bdir);
	assert_true(engine_exists(a1));
	assert_non_null(strstr(m.all, "This is backup sequence number 1"));
	assert_non_null(strstr(m.all, "Creating full backup '"));
	/* the index: backup.py's header, then "1     <time>   <tid>" */
	snprintf(p, sizeof(p), "%s/tindex", bdir);
	idx = engine_slurp(p, &len);
	assert_true(len > strlen(backup_index_header));
	assert_memory_equal(idx, backup_index_header,
	                    strlen(backup_index_header));
	assert_non_null(strstr((char *)idx, "\n1     17"));
	assert_non_null(strstr((char *)idx, "   040D44B222699877\n"));
	free(idx);
	/* a change, then the incremental since backup 1 */
	commit_one(home, "changed");
	inc.since = (long long)time(NULL);
	m.all[0] = '\0';
	assert_int_equal(ds_backup(home, &inc, 1, &o, &st, &err), DS_OK);
	assert_int_equal(st.seq, 2);
	assert_int_equal(st.archives, 1);
	/* x.serial, x.oid, the t file, the .c pointer, the revision */
	assert_int_equal(st.members, 5);
	assert_int_equal(st.files_read, 5);
	snprintf(a2, sizeof(a2), "%s/pre-1-to-2.tgz", bdir);
	assert_true(engine_exists(a2));
	assert_non_null(strstr(m.all, "since backup 1 at"));
	assert_non_null(strstr(m.all, "which included transaction "
	                       "040D44B222699877"));
	/* nothing changed since: skipped, no index line */
	m.all[0] = '\0';
	inc.since = (long long)time(NULL);
	idx = engine_slurp(p, &n1);
	free(idx);
	assert_int_equal(ds_backup(home, &inc, 1, &o, &st, &err), DS_OK);
	assert_int_equal(st.archives, 0);
	assert_false(st.indexed);
	assert_non_null(strstr(m.all, "Ignoring empty incremental backup"));
	idx = engine_slurp(p, &n2);
	free(idx);
	assert_int_equal(n1, n2);

	/* restore: full + incremental = the source's A/ */
	snprintf(r, sizeof(r), "%s/restored", scratch);
	arch[0] = a1;
	arch[1] = a2;
	assert_int_equal(ds_restore(arch, 0, r, NULL, &rst, &err), DS_EINVAL);
	assert_int_equal(ds_restore(arch, 2, r, NULL, &rst, &err), DS_OK);
	assert_int_equal(rst.archives, 2);
	assert_true(rst.tid == st.tid);
	assert_int_equal(rst.check.problems, 0);
	snprintf(ha, sizeof(ha), "%s/A", home);
	snprintf(ra, sizeof(ra), "%s/A", r);
	engine_tree_digest(ha, d1, &n1);
	engine_tree_digest(ra, d2, &n2);
	assert_int_equal(n1, n2);
	assert_string_equal(d1, d2);
	/* DIR exists; the incremental alone; the full twice */
	assert_int_equal(ds_restore(arch, 2, r, NULL, &rst, &err), DS_EEXIST);
	snprintf(r, sizeof(r), "%s/r2", scratch);
	assert_int_equal(ds_restore(arch + 1, 1, r, NULL, &rst, &err),
	                 DS_EPROTO);
	arch[1] = a1;
	assert_int_equal(ds_restore(arch, 2, r, NULL, &rst, &err), DS_EPROTO);
	assert_false(engine_exists(r));
	fixture_remove_tree(scratch);
	free(home);
	free(scratch);
}

/* An index that does not end in a newline keeps its lines; the next
 * number is the largest + 1 even when the lines are out of order. */
static void
test_index_appended(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = fixture_copy("flat-replica-old", scratch);
	char bdir[2048], p[4096];
	const char *old = "# mine\n5 1000 040D44B2399029CC\n"
	                  "3 1001 040D44B2399029CC";
	struct ds_backup_cmd full = {DS_BACKUP_FULL, "f", 0};
	struct ds_backup_stats st;
	unsigned char *idx;
	size_t len;
	ds_error err;

	(void)state;
	snprintf(bdir, sizeof(bdir), "%s/elsewhere", scratch);
	assert_int_equal(mkdir(bdir, 0755), 0);
	snprintf(p, sizeof(p), "%s/tindex", bdir);
	assert_int_equal(ds_io_write_file(p, old, strlen(old), 0644, 1, 0,
	                 &err), DS_OK);
	{
		struct ds_backup_opts o = {0};
		o.dir = bdir;
		o.compress = DS_BACKUP_ZSTD;
		assert_int_equal(ds_backup(home, &full, 1, &o, &st, &err),
		                 DS_OK);
	}
	assert_int_equal(st.seq, 6);
	snprintf(p, sizeof(p), "%s/f-6.tar.zst", bdir);
	assert_true(engine_exists(p));
	snprintf(p, sizeof(p), "%s/tindex", bdir);
	idx = engine_slurp(p, &len);
	assert_memory_equal(idx, old, strlen(old));
	assert_int_equal(idx[strlen(old)], '\n');
	assert_memory_equal(idx + strlen(old) + 1, "6     ", 6);
	assert_int_equal(idx[len - 1], '\n');
	free(idx);
	fixture_remove_tree(scratch);
	free(home);
	free(scratch);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_index_parse),
		cmocka_unit_test(test_index_refused),
		cmocka_unit_test(test_member_check),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_index_appended),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
