/*
 * test_check.c - ds_check on every fixture (clean, statistics agreeing
 * with the manifests) and on corrupted copies (each corruption found and
 * named); ds_check_compare on the fixture pairs, on a replica brought up
 * to date with the original's recorded increment, and on a spoiled
 * replica.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "helper_fixture.h"
#include "internal.h"

struct logbuf {
	char text[65536];
	size_t len;
};

static void
logcb(int level, const char *msg, void *ctx)
{
	struct logbuf *b = ctx;
	int n;

	if (level > DS_LOG_WARN)
		return;
	n = snprintf(b->text + b->len, sizeof(b->text) - b->len, "%s\n", msg);
	if (n > 0 && b->len + (size_t)n < sizeof(b->text))
		b->len += (size_t)n;
}

static int
check(const char *home, int no_snapshot, struct ds_check_stats *st,
      struct logbuf *log, ds_error *err)
{
	struct ds_check_opts o = {0};

	o.log = logcb;
	o.log_ctx = log;
	o.no_snapshot = no_snapshot;
	memset(log, 0, sizeof(*log));
	ds_error_clear(err);
	return ds_check(home, &o, st, err);
}

static void
test_every_fixture_clean(void **state)
{
	size_t nfix;
	char **names = fixture_names(&nfix);
	static struct logbuf log;

	(void)state;
	for (size_t i = 0; i < nfix; i++) {
		json_t *m = fixture_manifest_load(names[i]);
		json_t *counts = json_object_get(m, "counts");
		char home[4096];
		struct ds_check_stats st;
		ds_error err;

		/* pristine fixtures are read in place (no snapshot: taking one
		 * would rewrite their lock files) */
		fixture_home(names[i], home, sizeof(home));
		if (check(home, 1, &st, &log, &err) != DS_OK)
			fail_msg("%s: %s\n%s", names[i], err.msg, log.text);
		assert_int_equal(st.problems, 0);
		assert_int_equal(log.len, 0);
		assert_int_equal(st.transactions,
		                 json_array_size(json_object_get(m, "chain")));
		assert_int_equal(st.objects, fixture_jint(counts, "objects"));
		assert_int_equal(st.revisions, fixture_jint(counts, "revisions"));
		assert_int_equal(st.pack_leftovers,
		                 json_array_size(json_object_get(m,
		                                 "deleted_files")));
		json_decref(m);
	}
	fixture_names_free(names);
}

/* Copy bushy-master, spoil it with `spoil`, and expect `want` in the
 * problems reported. */
static void
corrupted(const char *what, void (*spoil)(const char *home),
          const char *want)
{
	char *scratch = fixture_scratch_dir();
	char *home = fixture_copy("bushy-master", scratch);
	static struct logbuf log;
	struct ds_check_stats st;
	ds_error err;

	spoil(home);
	/* with a real (direct) snapshot this time: the copy is ours */
	if (check(home, 0, &st, &log, &err) != DS_ECORRUPT)
		fail_msg("%s: not detected (%s)", what, err.msg);
	assert_true(st.problems >= 1);
	assert_non_null(strstr(err.msg, "problem"));
	if (strstr(log.text, want) == NULL)
		fail_msg("%s: expected '%s' in:\n%s", what, want, log.text);
	free(home);
	fixture_remove_tree(scratch);
	free(scratch);
}

static void
flip(const char *path, size_t from_end)
{
	unsigned char *buf;
	size_t len;
	ds_error err;

	assert_int_equal(ds_file_read(path, 0, &buf, &len, &err), DS_OK);
	buf[len - from_end] ^= 0x01;
	assert_int_equal(ds_io_write_file(path, buf, len, 0640, 0, 0, &err),
	                 DS_OK);
	free(buf);
}

/* object 0x1A's revisions: current 040D44B2249CA6AA (from the manifest
 * of bushy-master's first whatsnew line: A/o0/00/00/00/00/00/00/01A/c) */
static void
spoil_revision_byte(const char *home)
{
	char path[4096];

	snprintf(path, sizeof(path),
	         "%s/A/o0/00/00/00/00/00/00/01A/040D44B2249CA6AA", home);
	flip(path, 3);
}

static void
spoil_missing_current(const char *home)
{
	char path[4096];

	snprintf(path, sizeof(path),
	         "%s/A/o0/00/00/00/00/00/00/01A/040D44B2249CA6AA", home);
	assert_int_equal(unlink(path), 0);
}

static void
spoil_broken_chain(const char *home)
{
	char path[4096];

	/* R of the bushy family, in the middle of the master's chain */
	snprintf(path, sizeof(path), "%s/A/t0/40/D44/B222699877", home);
	assert_int_equal(unlink(path), 0);
}

static void
spoil_stray_file(const char *home)
{
	char path[4096];
	ds_error err;

	snprintf(path, sizeof(path), "%s/A/o0/00/00/00/00/00/00/01A/stray",
	         home);
	assert_int_equal(ds_io_write_file(path, "x", 1, 0640, 1, 0, &err),
	                 DS_OK);
}

static void
spoil_txn_byte(const char *home)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/A/t0/40/D44/B222699877", home);
	flip(path, 1);
}

static void
spoil_xoid(const char *home)
{
	char path[4096];
	unsigned char one[8] = {0, 0, 0, 0, 0, 0, 0, 1};
	ds_error err;

	snprintf(path, sizeof(path), "%s/A/x/oid", home);
	assert_int_equal(ds_io_write_file(path, one, 8, 0640, 0, 0, &err),
	                 DS_OK);
}

static void
test_corruptions_found(void **state)
{
	(void)state;
	corrupted("flipped byte in a revision", spoil_revision_byte,
	          "bad object revision: A/o0/00/00/00/00/00/00/01A/"
	          "040D44B2249CA6AA");
	corrupted("missing current revision", spoil_missing_current,
	          "revision named by a .c pointer is missing: "
	          "A/o0/00/00/00/00/00/00/01A/040D44B2249CA6AA");
	corrupted("broken chain", spoil_broken_chain,
	          "broken history: transaction file missing: "
	          "A/t0/40/D44/B222699877");
	corrupted("stray file", spoil_stray_file,
	          "unexpected file: A/o0/00/00/00/00/00/00/01A/stray");
	corrupted("x.oid behind the objects", spoil_xoid,
	          "object id higher than x.oid: A/o0/00/00/00/00/00/00/002/c");
	corrupted("flipped byte in a transaction", spoil_txn_byte,
	          "bad transaction file: A/t0/40/D44/B222699877");
}

static int
compare(const char *m, const char *r, struct ds_compare_stats *st,
        struct logbuf *log, ds_error *err)
{
	struct ds_check_opts o = {0};

	o.log = logcb;
	o.log_ctx = log;
	o.no_snapshot = 1;
	memset(log, 0, sizeof(*log));
	ds_error_clear(err);
	return ds_check_compare(m, r, &o, st, err);
}

static void
test_compare_pairs(void **state)
{
	static const struct { const char *m, *r; int rc; } cases[] = {
		{"bushy-master", "bushy-replica-old", DS_OK},
		{"flat-master", "flat-replica-old", DS_OK},
		{"flat-relinked-master", "flat-replica-old", DS_OK},
		{"bushy-master", "bushy-diverged-replica", DS_EREFUSED},
		{"bushy-master", "bushy-foreign-replica", DS_EREFUSED},
		{"bushy-master", "bushy-master", DS_OK},
	};
	static struct logbuf log;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char m[4096], r[4096];
		struct ds_compare_stats st;
		ds_error err;
		int rc;

		fixture_home(cases[i].m, m, sizeof(m));
		fixture_home(cases[i].r, r, sizeof(r));
		rc = compare(m, r, &st, &log, &err);
		if (rc != cases[i].rc)
			fail_msg("%s vs %s: status %d (%s)\n%s", cases[i].m,
			         cases[i].r, rc, err.msg, log.text);
		if (rc == DS_OK)
			assert_int_equal(st.differences, 0);
	}
}

static void
test_compare_after_original_increment(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *rep = fixture_copy("flat-replica-old", scratch);
	char m[4096], cmd[8192], path[4096];
	static struct logbuf log;
	struct ds_compare_stats st;
	ds_error err;

	(void)state;
	fixture_home("flat-master", m, sizeof(m));
	/* what the original replica does with the recorded increment */
	snprintf(cmd, sizeof(cmd), "tar -xpf '%s/responses/flat-basic.tar' "
	         "-C '%s'", fixture_dir(), rep);
	assert_int_equal(system(cmd), 0);
	if (compare(m, rep, &st, &log, &err) != DS_OK)
		fail_msg("%s\n%s", err.msg, log.text);
	/* fixtures/README.md: 295 files the pack renamed away, 3 back
	 * pointers the pack rewrote, 345 files differing only in mode (ours
	 * also counts the 3 relinked ones) */
	assert_int_equal(st.relinked, 3);
	assert_int_equal(st.pack_removed, 295);
	assert_int_equal(st.mode_differences, 345 + 3);
	assert_int_equal(st.differences, 0);

	/* a replica revision with a flipped byte is a difference, named */
	snprintf(path, sizeof(path), "%s/A/o0000000000000095.c", rep);
	{
		unsigned char *buf;
		size_t len;
		char rev[4096], hex[17];
		ds_tid cur;

		assert_int_equal(ds_file_read(path, 0, &buf, &len, &err), DS_OK);
		cur = ds_get_u64(buf);
		free(buf);
		ds_id_format(cur, hex);
		snprintf(rev, sizeof(rev), "%s/A/o0000000000000095.%s", rep, hex);
		flip(rev, 2);
		assert_int_equal(compare(m, rep, &st, &log, &err), DS_ECORRUPT);
		assert_int_equal(st.differences, 1);
		assert_non_null(strstr(log.text, "different content: "
		                       "A/o0000000000000095."));
		/* and a missing one too */
		assert_int_equal(unlink(rev), 0);
		assert_int_equal(compare(m, rep, &st, &log, &err), DS_ECORRUPT);
		assert_non_null(strstr(log.text, "missing on the replica: "
		                       "A/o0000000000000095."));
	}
	free(rep);
	fixture_remove_tree(scratch);
	free(scratch);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_fixture_clean),
		cmocka_unit_test(test_corruptions_found),
		cmocka_unit_test(test_compare_pairs),
		cmocka_unit_test(test_compare_after_original_increment),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
