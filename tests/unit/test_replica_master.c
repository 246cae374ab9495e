/*
 * test_replica_master.c - the master side of replication against the
 * original's recorded requests and responses: byte-identical increments
 * for the success pairs, the original's refusal texts for the others, our
 * relink extension, init requests, malformed requests, a busy master.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <archive.h>
#include <archive_entry.h>

#include "helper_fixture.h"
#include "internal.h"

struct served {
	int rc;
	ds_error err;
	unsigned char *out;
	size_t outlen;
};

/* Run ds_replica_serve on home with request bytes on its stdin. */
static void
serve(const char *home, const char *req, size_t reqlen, struct served *s)
{
	char inpath[] = "/tmp/ds-test-req-XXXXXX";
	char outpath[] = "/tmp/ds-test-out-XXXXXX";
	int in = mkstemp(inpath), out = mkstemp(outpath);
	struct stat st;

	assert_true(in >= 0 && out >= 0);
	unlink(inpath);
	unlink(outpath);
	assert_int_equal(write(in, req, reqlen), (ssize_t)reqlen);
	assert_int_equal(lseek(in, 0, SEEK_SET), 0);
	ds_error_clear(&s->err);
	s->rc = ds_replica_serve(home, in, out, NULL, &s->err);
	assert_int_equal(fstat(out, &st), 0);
	s->outlen = (size_t)st.st_size;
	s->out = malloc(s->outlen + 1);
	assert_non_null(s->out);
	assert_int_equal(pread(out, s->out, s->outlen, 0), (ssize_t)s->outlen);
	close(in);
	close(out);
}

static unsigned char *
slurp(const char *path, size_t *len)
{
	unsigned char *buf;
	ds_error err;

	assert_int_equal(ds_file_read(path, 0, &buf, len, &err), DS_OK);
	return buf;
}

/* The recorded request of a pair. */
static char *
pair_request(const char *pair)
{
	char file[256];
	json_t *j;
	char *req;

	snprintf(file, sizeof(file), "%s.replication.json", pair);
	j = fixture_json_load(file);
	req = strdup(fixture_jstr(j, "request"));
	json_decref(j);
	return req;
}

static void
test_success_pairs_byte_identical(void **state)
{
	static const char *const pairs[][2] = {
		{"bushy-basic", "bushy-master"},
		{"flat-basic", "flat-master"},
	};
	char *scratch = fixture_scratch_dir();

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		char *home = fixture_copy(pairs[i][1], scratch);
		char *req = pair_request(pairs[i][0]);
		char path[4096];
		unsigned char *want;
		size_t wantlen;
		struct served s;

		serve(home, req, strlen(req), &s);
		if (s.rc != DS_OK)
			fail_msg("%s: %s", pairs[i][0], s.err.msg);
		snprintf(path, sizeof(path), "%s/responses/%s.tar", fixture_dir(),
		         pairs[i][0]);
		want = slurp(path, &wantlen);
		assert_int_equal(s.outlen, wantlen);
		for (size_t k = 0; k < wantlen; k++)
			if (s.out[k] != want[k])
				fail_msg("%s: first difference at byte %zu", pairs[i][0],
				         k);
		/* snapshot mode was released: the storage can be locked */
		{
			ds_lock *l = NULL;
			ds_error e;
			snprintf(path, sizeof(path), "%s/misc/lock", home);
			assert_int_equal(ds_lock_acquire(path, &l, &e), DS_OK);
			ds_lock_release(l);
		}
		free(want);
		free(s.out);
		free(req);
		free(home);
	}
	fixture_remove_tree(scratch);
	free(scratch);
}

static void
test_failure_pairs_reasons(void **state)
{
	static const char *const pairs[] = {"bushy-foreign", "bushy-diverged",
	                                    "bushy-packed", "flat-relinked"};
	char *scratch = fixture_scratch_dir();

	(void)state;
	for (size_t i = 0; i < 4; i++) {
		char file[256];
		json_t *j, *ms, *lines;
		const char *master, *last;
		char *home, *req;
		struct served s;

		snprintf(file, sizeof(file), "%s.replication.json", pairs[i]);
		j = fixture_json_load(file);
		master = fixture_jstr(j, "master_fixture");
		ms = json_object_get(j, "master_side");
		lines = json_object_get(ms, "stderr");
		last = json_string_value(json_array_get(lines,
		                         json_array_size(lines) - 1));
		assert_non_null(last);
		assert_true(strncmp(last, "ReplicaError: ", 14) == 0);
		home = fixture_copy(master, scratch);
		req = pair_request(pairs[i]);
		serve(home, req, strlen(req), &s);
		assert_int_equal(s.rc, DS_EREFUSED);
		assert_string_equal(s.err.msg, last + 14);
		assert_int_equal(s.outlen, 0);
		free(s.out);
		free(req);
		fixture_remove_tree(home);
		free(home);
		json_decref(j);
	}
	fixture_remove_tree(scratch);
	free(scratch);
}

/* The relink line our replica adds, computed from its R file. */
static void
relink_line(const char *replica, char *out, size_t outsz, int spoil)
{
	char path[4096], hex[33], prev[17];
	unsigned char *buf, md[16];
	size_t len;

	snprintf(path, sizeof(path), "%s/%s/A/t040D44.B2399029CC",
	         fixture_dir(), replica);
	buf = slurp(path, &len);
	ds_id_format(ds_get_u64(buf + 24), prev);
	for (char *p = prev; *p; p++)
		if (*p >= 'A' && *p <= 'F')
			*p = (char)(*p - 'A' + 'a');
	memset(buf + 24, 0, 8);
	if (spoil)
		buf[len - 1] ^= 1;   /* something besides bytes 24..31 */
	ds_md5(buf, len, md);
	ds_hex_lower(md, 16, hex);
	snprintf(out, outsz, "relink %s %s\n", hex, prev);
	free(buf);
}

/* Member names and contents of a ustar stream, checked against HOME. */
static size_t
check_members(const unsigned char *tar, size_t len, const char *home,
              json_t *want_names)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	size_t n = 0;

	archive_read_support_format_tar(a);
	assert_int_equal(archive_read_open_memory(a, tar, len), ARCHIVE_OK);
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(e);
		char path[4096];
		unsigned char *file, *data;
		size_t flen;
		la_int64_t size = archive_entry_size(e);

		if (want_names != NULL)
			assert_string_equal(name, json_string_value(
			                    json_array_get(want_names, n)));
		assert_null(strstr(name, "-deleted"));
		snprintf(path, sizeof(path), "%s/%s", home, name);
		file = slurp(path, &flen);
		assert_int_equal((size_t)size, flen);
		data = malloc(flen + 1);
		assert_int_equal(archive_read_data(a, data, flen), (la_ssize_t)flen);
		assert_memory_equal(data, file, flen);
		free(data);
		free(file);
		n++;
	}
	archive_read_free(a);
	return n;
}

static void
test_relink_extension(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = fixture_copy("flat-relinked-master", scratch);
	char *req = pair_request("flat-relinked");
	char line[128], *full;
	json_t *m, *names;
	struct served s;

	(void)state;
	/* the original's request alone is refused (tested above); with our
	 * extension line it is served */
	relink_line("flat-replica-old", line, sizeof(line), 0);
	full = malloc(strlen(req) + strlen(line) + 1);
	strcpy(full, req);
	strcat(full, line);
	serve(home, full, strlen(full), &s);
	if (s.rc != DS_OK)
		fail_msg("relink: %s", s.err.msg);
	m = fixture_manifest_load("flat-relinked-master");
	names = json_object_get(json_object_get(json_object_get(m, "whatsnew"),
	                        "040D44B2399029CC"), "stdout_lines");
	assert_int_equal(check_members(s.out, s.outlen, home, names),
	                 json_array_size(names));
	assert_int_equal(s.outlen % 512, 0);
	free(s.out);

	/* anything else differing is still divergence */
	relink_line("flat-replica-old", line, sizeof(line), 1);
	strcpy(full, req);
	strcat(full, line);
	serve(home, full, strlen(full), &s);
	assert_int_equal(s.rc, DS_EREFUSED);
	assert_string_equal(s.err.msg, "reference transaction differs");
	assert_int_equal(s.outlen, 0);
	free(s.out);

	json_decref(m);
	free(full);
	free(req);
	free(home);
	fixture_remove_tree(scratch);
	free(scratch);
}

static void
test_nothing_new_and_newer(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = fixture_copy("bushy-master", scratch);
	char path[4096], req[256], hex[33];
	unsigned char *buf, md[16], zero[1024] = {0};
	size_t len;
	struct served s;

	(void)state;
	snprintf(path, sizeof(path), "%s/A/t0/40/D44/B2249CA6AA", home);
	buf = slurp(path, &len);
	ds_md5(buf, len, md);
	ds_hex_lower(md, 16, hex);
	free(buf);
	snprintf(req, sizeof(req), "replica request 0\n"
	         "ab2c4b4581f95ce5df8ec029f4f3c03c\n040d44b2249ca6aa\n%s\n", hex);
	serve(home, req, strlen(req), &s);
	assert_int_equal(s.rc, DS_OK);
	assert_int_equal(s.outlen, 1024);
	assert_memory_equal(s.out, zero, 1024);
	free(s.out);

	/* the master goes back to R: the replica is now newer */
	{
		unsigned char r[8];
		ds_put_u64(r, 0x040D44B222699877ULL);
		snprintf(path, sizeof(path), "%s/A/x/serial", home);
		assert_int_equal(ds_io_write_file(path, r, 8, 0640, 0, 0, NULL),
		                 DS_OK);
	}
	serve(home, req, strlen(req), &s);
	assert_int_equal(s.rc, DS_EREFUSED);
	assert_non_null(strstr(s.err.msg, "newer than the master"));
	assert_int_equal(s.outlen, 0);
	free(s.out);
	free(home);
	fixture_remove_tree(scratch);
	free(scratch);
}

static void
test_malformed_requests(void **state)
{
	static const char *const bad[] = {
		"",
		"replica request 1\nab2c4b4581f95ce5df8ec029f4f3c03c\n"
		"040d44b222699877\n1d5fe9cc576f934b0e598087227e9235\n",
		"replica request 0\nab2c4b4581f95ce5df8ec029f4f3c03c\n",
		"replica request 0\nab2c4b4581f95ce5df8ec029f4f3c03c\n"
		"040d44b22269987\n1d5fe9cc576f934b0e598087227e9235\n",
		"replica request 0\nab2c4b4581f95ce5df8ec029f4f3c03c\n"
		"040d44b222699877\nnot-an-md5\n",
	};
	char *scratch = fixture_scratch_dir();
	char *home = fixture_copy("bushy-master", scratch);
	char *big;
	struct served s;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		serve(home, bad[i], strlen(bad[i]), &s);
		if (s.rc != DS_EPROTO)
			fail_msg("request %zu: status %d (%s)", i, s.rc, s.err.msg);
		assert_int_equal(s.outlen, 0);
		free(s.out);
	}
	/* more than 64 KiB */
	big = malloc(70000);
	memset(big, 'x', 70000);
	memcpy(big, "replica request 0\n", 18);
	serve(home, big, 70000, &s);
	assert_int_equal(s.rc, DS_EPROTO);
	assert_int_equal(s.outlen, 0);
	free(s.out);
	free(big);
	/* not a storage */
	serve(scratch, "replica request 0\n", 18, &s);
	assert_int_equal(s.rc, DS_EREFUSED);
	assert_non_null(strstr(s.err.msg, "is not a DirectoryStorage directory"));
	free(s.out);
	free(home);
	fixture_remove_tree(scratch);
	free(scratch);
}

static void
test_busy_master(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = fixture_copy("bushy-master", scratch);
	char *req = pair_request("bushy-basic");
	char path[4096];
	ds_lock *l = NULL;
	ds_error e;
	struct served s;

	(void)state;
	snprintf(path, sizeof(path), "%s/misc/sublock", home);
	assert_int_equal(ds_lock_acquire(path, &l, &e), DS_OK);
	serve(home, req, strlen(req), &s);
	assert_int_equal(s.rc, DS_EBUSY);
	assert_int_equal(s.outlen, 0);
	free(s.out);
	ds_lock_release(l);
	free(req);
	free(home);
	fixture_remove_tree(scratch);
	free(scratch);
}

static void
test_init_request(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = fixture_copy("flat-master", scratch);
	json_t *m = fixture_manifest_load("flat-master");
	size_t want, n;
	struct served s;

	(void)state;
	serve(home, "replica init 0\n", 15, &s);
	if (s.rc != DS_OK)
		fail_msg("init: %s", s.err.msg);
	/* config/settings, config/identity, then every live file of A/ */
	n = check_members(s.out, s.outlen, home, NULL);
	want = 2 + (size_t)fixture_jint(m, "file_count_A_live");
	assert_int_equal(n, want);
	assert_memory_equal(s.out, "config/settings", 15);
	json_decref(m);
	free(s.out);
	free(home);
	fixture_remove_tree(scratch);
	free(scratch);
}

/* "replica status 0": the master's newest, how many transactions the
 * replica lacks and the oldest of them, on out_fd; refusals write
 * nothing. */
static void
test_status_request(void **state)
{
	const char *id = "ab2c4b4581f95ce5df8ec029f4f3c03c";
	char *scratch = fixture_scratch_dir();
	char *home = fixture_copy("bushy-master", scratch);
	char req[256];
	struct served s;

	(void)state;
	/* the replica-old fixture's tid: 21 transactions behind */
	snprintf(req, sizeof(req), "replica status 0\n%s\n040d44b222699877\n",
	         id);
	serve(home, req, strlen(req), &s);
	assert_int_equal(s.rc, DS_OK);
	s.out[s.outlen] = '\0';
	assert_non_null(strstr((char *)s.out, "ds-master-status 1\n"));
	assert_non_null(strstr((char *)s.out, "\nnewest 040D44B2249CA6AA\n"));
	assert_non_null(strstr((char *)s.out, "\nbehind 21\n"));
	assert_non_null(strstr((char *)s.out, "\noldest 040D44B2240818AA\n"));
	assert_non_null(strstr((char *)s.out, "\nin_history 1\n"));
	free(s.out);
	/* up to date */
	snprintf(req, sizeof(req), "replica status 0\n%s\n040d44b2249ca6aa\n",
	         id);
	serve(home, req, strlen(req), &s);
	assert_int_equal(s.rc, DS_OK);
	s.out[s.outlen] = '\0';
	assert_non_null(strstr((char *)s.out, "\nbehind 0\n"));
	assert_non_null(strstr((char *)s.out, "\noldest 0000000000000000\n"));
	assert_non_null(strstr((char *)s.out, "\nin_history 1\n"));
	free(s.out);
	/* newer than the master, and a tid not in its history */
	snprintf(req, sizeof(req), "replica status 0\n%s\n7fffffffffffffff\n",
	         id);
	serve(home, req, strlen(req), &s);
	assert_int_equal(s.rc, DS_OK);
	s.out[s.outlen] = '\0';
	assert_non_null(strstr((char *)s.out, "\nbehind 0\n"));
	assert_non_null(strstr((char *)s.out, "\nin_history 0\n"));
	free(s.out);
	snprintf(req, sizeof(req), "replica status 0\n%s\n040d44b222699878\n",
	         id);
	serve(home, req, strlen(req), &s);
	assert_int_equal(s.rc, DS_OK);
	s.out[s.outlen] = '\0';
	assert_non_null(strstr((char *)s.out, "\nbehind 21\n"));
	assert_non_null(strstr((char *)s.out, "\nin_history 0\n"));
	free(s.out);
	/* refusals: nothing on out_fd */
	snprintf(req, sizeof(req), "replica status 0\n%032d\n%016d\n", 0, 0);
	serve(home, req, strlen(req), &s);
	assert_int_equal(s.rc, DS_EREFUSED);
	assert_non_null(strstr(s.err.msg, "different identity"));
	assert_int_equal(s.outlen, 0);
	free(s.out);
	snprintf(req, sizeof(req), "replica status 0\n%s\nxyz\n", id);
	serve(home, req, strlen(req), &s);
	assert_int_equal(s.rc, DS_EPROTO);
	assert_int_equal(s.outlen, 0);
	free(s.out);
	snprintf(req, sizeof(req), "replica status 0\n%s\n", id);
	serve(home, req, strlen(req), &s);
	assert_int_equal(s.rc, DS_EPROTO);
	assert_int_equal(s.outlen, 0);
	free(s.out);
	free(home);
	fixture_remove_tree(scratch);
	free(scratch);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_success_pairs_byte_identical),
		cmocka_unit_test(test_failure_pairs_reasons),
		cmocka_unit_test(test_relink_extension),
		cmocka_unit_test(test_nothing_new_and_newer),
		cmocka_unit_test(test_malformed_requests),
		cmocka_unit_test(test_busy_master),
		cmocka_unit_test(test_init_request),
		cmocka_unit_test(test_status_request),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
