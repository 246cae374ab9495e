/*
 * test_replica_state.c - misc/replica.state: the text format both ways,
 * the refusals of damaged files (line and key named), unknown keys
 * ignored, escaping of messages, and the atomic write (a leftover
 * temporary file of a killed write is replaced, a hard link to the old
 * file keeps the old record).
 */
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

#include "dirstorage.h"

static void
sample(struct ds_replica_state *st)
{
	memset(st, 0, sizeof(*st));
	snprintf(st->master, sizeof(st->master), "ds@db1:/srv/ds main");
	snprintf(st->identity, sizeof(st->identity),
	         "ab2c4b4581f95ce5df8ec029f4f3c03c");
	st->tid = 0x040D44B2249CA6AAull;
	st->success_time = 1796476260.702;
	st->success_start = 1796476260.5;
	st->success_transactions = 21;
	st->failure_time = 1796476300.25;
	st->failure_exit = 3;
	snprintf(st->failure_error, sizeof(st->failure_error),
	         "the master is busy\nsecond line \\ back\tslash");
	st->failures = 2;
}

static void
test_round_trip(void **state)
{
	struct ds_replica_state a, b;
	char buf[16384];
	ds_error err;

	(void)state;
	sample(&a);
	assert_int_equal(ds_replica_state_format(&a, buf, sizeof(buf), &err),
	                 DS_OK);
	/* one line per key: the message's newline and tab are escaped */
	assert_non_null(strstr(buf, "failure_error the master is busy\\n"
	                       "second line \\\\ back\\x09slash\n"));
	assert_non_null(strstr(buf, "tid 040D44B2249CA6AA\n"));
	assert_int_equal(ds_replica_state_parse(buf, strlen(buf), "f", &b,
	                                        &err), DS_OK);
	assert_string_equal(a.master, b.master);
	assert_string_equal(a.identity, b.identity);
	assert_true(a.tid == b.tid);
	assert_true(a.success_time == b.success_time);
	assert_true(a.success_start == b.success_start);
	assert_int_equal(a.success_transactions, b.success_transactions);
	assert_true(a.failure_time == b.failure_time);
	assert_int_equal(a.failure_exit, b.failure_exit);
	assert_string_equal(a.failure_error, b.failure_error);
	assert_int_equal(a.failures, b.failures);
}

static void
test_unknown_keys_and_order(void **state)
{
	const char *text = "ds-replica-state 1\n"
	                   "future_key anything at all\n"
	                   "failures 7\n"
	                   "tid 0000000000000001\n"
	                   "\n"
	                   "tid 00000000000000FF\n";
	struct ds_replica_state st;
	ds_error err;

	(void)state;
	assert_int_equal(ds_replica_state_parse(text, strlen(text), "f", &st,
	                                        &err), DS_OK);
	assert_int_equal(st.failures, 7);
	assert_true(st.tid == 0xFF);       /* the last line counts */
	assert_true(st.success_time == 0);
}

static void
test_refusals(void **state)
{
	static const struct {
		const char *text;
		const char *msg;
	} bad[] = {
		{"", "not a ds replica state file"},
		{"ds-replica-state 2\n", "not a ds replica state file"},
		{"something else\n", "not a ds replica state file"},
		{"ds-replica-state 1\ntid 12\n", "line 2: malformed tid"},
		{"ds-replica-state 1\n\nidentity XYZ\n",
		 "line 3: malformed identity"},
		{"ds-replica-state 1\nsuccess_time -5\n",
		 "malformed success_time"},
		{"ds-replica-state 1\nsuccess_time 12x\n",
		 "malformed success_time"},
		{"ds-replica-state 1\nfailures -1\n", "malformed failures"},
		{"ds-replica-state 1\nfailure_exit 300\n",
		 "malformed failure_exit"},
		{"ds-replica-state 1\nfailure_error a\\qb\n",
		 "malformed failure_error"},
		{"ds-replica-state 1\nfailures\n", "line 2: no value"},
	};
	struct ds_replica_state st;
	ds_error err;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ds_error_clear(&err);
		assert_int_equal(ds_replica_state_parse(bad[i].text,
		                 strlen(bad[i].text), "misc/replica.state", &st,
		                 &err), DS_ECORRUPT);
		if (strstr(err.msg, bad[i].msg) == NULL ||
		    strstr(err.msg, "misc/replica.state") == NULL)
			fail_msg("case %zu: message '%s' lacks '%s'", i, err.msg,
			         bad[i].msg);
	}
	/* a NUL byte */
	assert_int_equal(ds_replica_state_parse("ds-replica-state 1\n\0x", 21,
	                                        "f", &st, &err), DS_ECORRUPT);
}

static void
test_too_long_message_fits(void **state)
{
	struct ds_replica_state a, b;
	char buf[16384];
	ds_error err;

	(void)state;
	sample(&a);
	/* every byte a control byte: escaped to 4 times its length */
	memset(a.failure_error, 1, sizeof(a.failure_error) - 1);
	a.failure_error[sizeof(a.failure_error) - 1] = '\0';
	memset(a.master, '\n', sizeof(a.master) - 1);
	a.master[sizeof(a.master) - 1] = '\0';
	assert_int_equal(ds_replica_state_format(&a, buf, sizeof(buf), &err),
	                 DS_OK);
	assert_int_equal(ds_replica_state_parse(buf, strlen(buf), "f", &b,
	                                        &err), DS_OK);
	assert_string_equal(a.failure_error, b.failure_error);
	assert_string_equal(a.master, b.master);
	/* and a buffer too small is refused, not cut */
	assert_int_equal(ds_replica_state_format(&a, buf, 100, &err),
	                 DS_EINVAL);
}

static void
test_write_read(void **state)
{
	char dir[] = "/tmp/ds-test-state-XXXXXX";
	char path[512], tmp[512], lpath[512];
	struct ds_replica_state a, b;
	struct stat s1, s2;
	ds_error err;
	int found = -1;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/misc", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	/* no file yet: not found, not an error */
	assert_int_equal(ds_replica_state_read(dir, &b, &found, &err), DS_OK);
	assert_int_equal(found, 0);
	/* a killed write's temporary file is replaced */
	snprintf(tmp, sizeof(tmp), "%s/misc/.ds-new.replica.state", dir);
	f = fopen(tmp, "w");
	assert_non_null(f);
	fputs("half a record", f);
	fclose(f);
	sample(&a);
	assert_int_equal(ds_replica_state_write(dir, &a, &err), DS_OK);
	assert_int_equal(access(tmp, F_OK), -1);
	assert_int_equal(ds_replica_state_read(dir, &b, &found, &err), DS_OK);
	assert_int_equal(found, 1);
	assert_true(b.tid == a.tid);
	assert_string_equal(b.failure_error, a.failure_error);
	/* replaced, not written in place: a hard link keeps the old record */
	snprintf(path, sizeof(path), "%s/%s", dir, DS_REPLICA_STATE_FILE);
	snprintf(lpath, sizeof(lpath), "%s/misc/old", dir);
	assert_int_equal(link(path, lpath), 0);
	assert_int_equal(stat(path, &s1), 0);
	a.tid = 0x0500000000000000ull;
	a.failures = 0;
	assert_int_equal(ds_replica_state_write(dir, &a, &err), DS_OK);
	assert_int_equal(stat(path, &s2), 0);
	assert_true(s1.st_ino != s2.st_ino);
	assert_int_equal((int)(s2.st_mode & 0777), 0644);
	{
		unsigned char *old = NULL;
		size_t len = 0;

		assert_int_equal(ds_file_read(lpath, 0, &old, &len, &err),
		                 DS_OK);
		assert_int_equal(ds_replica_state_parse((char *)old, len, "old",
		                                        &b, &err), DS_OK);
		assert_true(b.tid == 0x040D44B2249CA6AAull);
		free(old);
	}
	assert_int_equal(ds_replica_state_read(dir, &b, &found, &err), DS_OK);
	assert_true(b.tid == 0x0500000000000000ull);
	/* a damaged file is refused with its path */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("garbage\n", f);
	fclose(f);
	assert_int_equal(ds_replica_state_read(dir, &b, &found, &err),
	                 DS_ECORRUPT);
	assert_non_null(strstr(err.msg, "misc/replica.state"));
	unlink(path);
	unlink(lpath);
	snprintf(path, sizeof(path), "%s/misc", dir);
	rmdir(path);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_unknown_keys_and_order),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_too_long_message_fits),
		cmocka_unit_test(test_write_read),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
