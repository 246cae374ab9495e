/*
 * test_apply_pool.c - apply_increment's worker pool (src/apply.c): the
 * bulk of an increment is written by two threads behind a queue bounded
 * by bytes and by count, members over 1 MiB are streamed by the reader,
 * x.serial/x.oid are written last, and the first error wins.
 *
 *  - a synthetic bushy increment of 3,000 revisions (more jobs than the
 *    queue holds), some of them 1.5 MiB (streamed by the reader) and
 *    enough bytes to fill the queue's byte bound: every file lands with
 *    its exact bytes and mode, in 300 new directories (new oids), and a
 *    second apply (the recovery's) gives the same;
 *  - a recorded increment whose one member cannot be written (a directory
 *    stands at its path): the error names that path, x.serial is still
 *    the old one (not written after a failed bulk), with err NULL too;
 *    once the obstacle is gone the apply completes and equals the master.
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
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <archive.h>
#include <archive_entry.h>
#include "helper_engine.h"
#include "helper_fixture.h"
#include "apply.h"

#define NREV 3000
#define BIG_EVERY 700                    /* every 700th revision is big */
#define BIG_SIZE (1536u * 1024)          /* > the 1 MiB queued maximum */

/* Content of revision i: deterministic, size varying. */
static size_t
rev_size(int i)
{
	return i % BIG_EVERY == 0 ? BIG_SIZE : (size_t)(100 + (i * 37) % 3000);
}

static void
rev_fill(int i, unsigned char *buf, size_t len)
{
	for (size_t k = 0; k < len; k++)
		buf[k] = (unsigned char)(i * 131 + k * 7);
}

static void
rev_name(int i, char *name, size_t sz)
{
	/* 300 new oids of 10 revisions each: new directories */
	snprintf(name, sz, "o%016llX.%016llX",
	         (unsigned long long)(0x7000000 + i / 10),
	         (unsigned long long)(0x040D000000000000ull + (uint64_t)i));
}

static void
add_member(struct archive *w, const char *path, const void *data,
           size_t len, unsigned mode)
{
	struct archive_entry *e = archive_entry_new();

	archive_entry_set_pathname(e, path);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, mode);
	archive_entry_set_size(e, (la_int64_t)len);
	assert_int_equal(archive_write_header(w, e), ARCHIVE_OK);
	if (len > 0)
		assert_int_equal(archive_write_data(w, data, len), (la_ssize_t)len);
	archive_entry_free(e);
}

static void
test_many_members(void **state)
{
	char *scratch = fixture_scratch_dir(), *rep;
	char tar[4096], name[64], rel[DS_RELPATH_MAX], path[8192], p[8192];
	unsigned char *buf = malloc(BIG_SIZE), serial[8], oid[8];
	struct archive *w;
	ds_error err;

	(void)state;
	assert_non_null(buf);
	rep = fixture_copy("bushy-replica-old", scratch);
	snprintf(tar, sizeof(tar), "%s/many.tar", scratch);
	w = archive_write_new();
	assert_non_null(w);
	assert_int_equal(archive_write_set_format_ustar(w), ARCHIVE_OK);
	assert_int_equal(archive_write_open_filename(w, tar), ARCHIVE_OK);
	memcpy(serial, "\x04\x0D\x00\x00\x00\x00\x0B\xB7", 8);
	memcpy(oid, "\x00\x00\x00\x00\x07\x00\x01\x2B", 8);
	add_member(w, "A/x/serial", serial, 8, 0640);
	add_member(w, "A/x/oid", oid, 8, 0640);
	for (int i = 0; i < NREV; i++) {
		size_t len = rev_size(i);
		rev_name(i, name, sizeof(name));
		assert_int_equal(ds_layout_name_to_path(DS_LAYOUT_BUSHY, name,
		                 rel, sizeof(rel), NULL), DS_OK);
		snprintf(path, sizeof(path), "A/%s", rel);
		rev_fill(i, buf, len);
		add_member(w, path, buf, len, i % 2 ? 0640 : 0644);
	}
	assert_int_equal(archive_write_close(w), ARCHIVE_OK);
	archive_write_free(w);

	for (int round = 0; round < 2; round++) {   /* 2nd: the recovery */
		ds_error_clear(&err);
		if (apply_increment(rep, tar, &err) != DS_OK)
			fail_msg("round %d: %s", round, err.msg);
		for (int i = 0; i < NREV; i++) {
			size_t len = rev_size(i), got;
			unsigned char *data;

			rev_name(i, name, sizeof(name));
			assert_int_equal(ds_layout_name_to_path(DS_LAYOUT_BUSHY,
			                 name, rel, sizeof(rel), NULL), DS_OK);
			snprintf(p, sizeof(p), "%s/A/%s", rep, rel);
			data = engine_slurp(p, &got);
			if (data == NULL || got != len)
				fail_msg("%s: %zu bytes, expected %zu", p,
				         data ? got : 0, len);
			rev_fill(i, buf, len);
			if (memcmp(data, buf, len) != 0)
				fail_msg("%s: wrong content", p);
			free(data);
			assert_int_equal(engine_mode(p), i % 2 ? 0640u : 0644u);
		}
		snprintf(p, sizeof(p), "%s/A/x/serial", rep);
		{
			size_t got;
			unsigned char *data = engine_slurp(p, &got);
			assert_non_null(data);
			assert_int_equal(got, 8);
			assert_memory_equal(data, serial, 8);
			free(data);
		}
	}
	fixture_remove_tree(scratch);
	free(scratch);
	free(rep);
	free(buf);
}

/* The last revision member (not x.*, not a .c pointer) of tar. */
static void
last_revision(const char *tar, char *out, size_t sz)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;

	out[0] = '\0';
	archive_read_support_format_tar(a);
	assert_int_equal(archive_read_open_filename(a, tar, 65536), ARCHIVE_OK);
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		const char *path = archive_entry_pathname(e);
		if (strncmp(path, "A/o", 3) == 0 &&
		    strcmp(strrchr(path, '/'), "/c") != 0)
			snprintf(out, sz, "%s", path);
	}
	archive_read_free(a);
	assert_true(out[0] != '\0');
}

static void
test_worker_error(void **state)
{
	char *scratch = fixture_scratch_dir(), *rep;
	char tar[4096], member[4096], block[8192], p[8192], home[4096];
	char d1[33], d2[33];
	unsigned char *old, *now;
	size_t oldlen, nowlen;
	ds_error err;

	(void)state;
	rep = fixture_copy("bushy-replica-old", scratch);
	snprintf(tar, sizeof(tar), "%s/responses/bushy-basic.tar",
	         fixture_dir());
	last_revision(tar, member, sizeof(member));
	/* both bushy: the member's path is the replica's path */
	snprintf(block, sizeof(block), "%s/%s", rep, member);
	assert_int_equal(ds_io_mkdirs(block, 0755, NULL), DS_OK);
	snprintf(p, sizeof(p), "%s/A/x/serial", rep);
	old = engine_slurp(p, &oldlen);
	assert_non_null(old);

	ds_error_clear(&err);
	assert_int_not_equal(apply_increment(rep, tar, &err), DS_OK);
	if (strstr(err.msg, block) == NULL)
		fail_msg("the error does not name %s: %s", block, err.msg);
	now = engine_slurp(p, &nowlen);
	assert_non_null(now);
	assert_int_equal(nowlen, oldlen);
	assert_memory_equal(now, old, oldlen);   /* x.serial not written */
	free(now);
	/* no error structure: still refused */
	assert_int_not_equal(apply_increment(rep, tar, NULL), DS_OK);

	assert_int_equal(rmdir(block), 0);
	ds_error_clear(&err);
	if (apply_increment(rep, tar, &err) != DS_OK)
		fail_msg("%s", err.msg);
	snprintf(p, sizeof(p), "%s/A", rep);
	engine_tree_digest(p, d1, NULL);
	fixture_home("bushy-master", home, sizeof(home));
	snprintf(p, sizeof(p), "%s/A", home);
	engine_tree_digest(p, d2, NULL);
	assert_string_equal(d1, d2);
	free(old);
	fixture_remove_tree(scratch);
	free(scratch);
	free(rep);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_members),
		cmocka_unit_test(test_worker_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
