/*
 * test_tid.c - ZODB TimeStamps: time <-> tid, formatting, and the
 * strictly increasing tid generator, checked against what the original
 * implementation wrote and printed in the fixtures.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "dirstorage.h"
#include "helper_fixture.h"

static ds_tid
tid_of(const char *hex)
{
	uint64_t v = 0;

	assert_int_equal(ds_id_parse(hex, &v), DS_OK);
	return v;
}

/* The high word as DESIGN.md defines it, computed independently. */
static uint32_t
minutes_of(int y, int mo, int d, int h, int mi)
{
	return (uint32_t)(((((y - 1900) * 12 + mo - 1) * 31 + d - 1) * 24 + h) *
	                  60 + mi);
}

static ds_tid
tid_parts(int y, int mo, int d, int h, int mi, uint32_t low)
{
	return ((ds_tid)minutes_of(y, mo, d, h, mi) << 32) | low;
}

static double
unix_of(int y, int mo, int d, int h, int mi, int s)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	return (double)timegm(&tm);
}

static void
expect_format(ds_tid tid, const char *want)
{
	char out[24];

	memset(out, 'Z', sizeof(out));
	ds_tid_format(tid, out);
	assert_int_equal(strlen(out), 23);
	assert_string_equal(out, want);
}

/* The dates the original printed for the fixtures' tids. */
static void
test_format_known(void **state)
{
	(void)state;
	expect_format(tid_of("040D44B2465F77AA"), "2026-11-26 05:38:16 GMT");
	expect_format(tid_of("040D44B222699877"), "2026-11-26 05:38:08 GMT");
	expect_format(tid_of("040D44B240E24322"), "2026-11-26 05:38:15 GMT");
	expect_format(0, "1900-01-01 00:00:00 GMT");
	/* the last unit of a minute is 59.99999998 s; TimeStamp.timeTime()
	 * adds it to a double near 3.9e9 (its own epoch), which rounds it up
	 * to the next whole minute, so the original prints the next minute:
	 * we print what it prints */
	expect_format(tid_parts(2026, 11, 26, 5, 38, 0xffffffffu),
	              "2026-11-26 05:39:00 GMT");
	expect_format(tid_parts(1999, 12, 31, 23, 59, 0xffffffffu),
	              "2000-01-01 00:00:00 GMT");
	/* a little earlier it is still the 59th second */
	expect_format(tid_parts(2026, 11, 26, 5, 38, 0xfffe0000u),
	              "2026-11-26 05:38:59 GMT");
	expect_format(tid_parts(2000, 2, 29, 12, 0, 0), "2000-02-29 12:00:00 GMT");
}

/* Every "<TID> <date> GMT" the original printed in the fixtures:
 * whatsnew's stderr in each manifest and the packed refusal of the
 * bushy-packed pair (x.packed of bushy-packed-master > R). */
static void
test_format_matches_original_messages(void **state)
{
	size_t n, checked = 0;
	char **names = fixture_names(&n);
	json_t *pairs;
	const json_t *list;

	(void)state;
	for (size_t i = 0; i < n; i++) {
		json_t *m = fixture_manifest_load(names[i]);
		json_t *wn = json_object_get(m, "whatsnew");
		const char *key;
		json_t *v;

		json_object_foreach(wn, key, v) {
			const char *err = fixture_jstr(v, "stderr");
			const char *p;

			/* "... is|since <16 hex> <YYYY-MM-DD HH:MM:SS GMT>\n" */
			for (p = err; *p != '\0'; p++) {
				char hex[17], date[24], got[24];
				uint64_t tid;

				if (strspn(p, "0123456789ABCDEF") != 16 || p[16] != ' ')
					continue;
				if (p != err && p[-1] != ' ')
					continue;
				memcpy(hex, p, 16);
				hex[16] = '\0';
				memcpy(date, p + 17, 23);
				date[23] = '\0';
				assert_int_equal(ds_id_parse(hex, &tid), DS_OK);
				ds_tid_format(tid, got);
				assert_string_equal(got, date);
				checked++;
				p += 16;
			}
		}
		json_decref(m);
	}
	fixture_names_free(names);
	assert_true(checked >= 8);

	pairs = fixture_json_load("pairs.json");
	list = json_object_get(pairs, "pairs");
	for (size_t i = 0; i < json_array_size(list); i++) {
		const json_t *p = json_array_get(list, i);
		json_t *mm, *mr;
		char a[24], b[24], want[200];

		if (strcmp(fixture_jstr(p, "pair"), "bushy-packed") != 0)
			continue;
		mm = fixture_manifest_load(fixture_jstr(p, "master"));
		mr = fixture_manifest_load(fixture_jstr(p, "replica"));
		ds_tid_format(fixture_jid(mm, "x.packed"), a);
		ds_tid_format(fixture_jid(mr, "x.serial"), b);
		snprintf(want, sizeof(want),
		         "ReplicaError: storage has been packed since the last "
		         "replica ( %s > %s )", a, b);
		assert_string_equal(fixture_jstr(p, "master_stderr_last"), want);
		json_decref(mm);
		json_decref(mr);
		checked++;
	}
	json_decref(pairs);
}

/* Pack times recorded in pairs.json became x.packed through ZODB's
 * TimeStamp: our conversion gives the same 8 bytes. */
static void
test_from_time_matches_pack_thresholds(void **state)
{
	static const struct {
		const char *family, *key, *fixture;
	} cases[] = {
		{"bushy", "packed_master_pack_time", "bushy-packed-master"},
		{"flat", "pack_time", "flat-master"},
		{"flat", "relinked_master_pack_time", "flat-relinked-master"},
	};
	json_t *pairs = fixture_json_load("pairs.json");
	const json_t *sc = json_object_get(pairs, "scenarios");

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const json_t *fam = json_object_get(sc, cases[i].family);
		const json_t *t = json_object_get(fam, cases[i].key);
		json_t *m = fixture_manifest_load(cases[i].fixture);
		ds_tid want = fixture_jid(m, "x.packed");
		ds_tid got;

		assert_true(json_is_real(t));
		got = ds_tid_from_time(json_real_value(t));
		if (got != want)
			fail_msg("%s: from_time(%.7f) = %016llX, x.packed is "
			         "%016llX", cases[i].fixture, json_real_value(t),
			         (unsigned long long)got,
			         (unsigned long long)want);
		json_decref(m);
	}
	json_decref(pairs);
}

static void
test_from_time_fields(void **state)
{
	(void)state;
	/* whole seconds: low word = sec * 2^32 / 60, truncated */
	assert_true(ds_tid_from_time(unix_of(2026, 11, 26, 5, 38, 0)) ==
	            tid_parts(2026, 11, 26, 5, 38, 0));
	assert_true(ds_tid_from_time(unix_of(2026, 11, 26, 5, 38, 15)) ==
	            tid_parts(2026, 11, 26, 5, 38, 0x40000000u));
	assert_true(ds_tid_from_time(unix_of(2026, 11, 26, 5, 38, 30)) ==
	            tid_parts(2026, 11, 26, 5, 38, 0x80000000u));
	assert_true(ds_tid_from_time(unix_of(2026, 11, 26, 5, 38, 45)) ==
	            tid_parts(2026, 11, 26, 5, 38, 0xC0000000u));
	assert_true(ds_tid_from_time(unix_of(2026, 11, 26, 5, 38, 1)) ==
	            tid_parts(2026, 11, 26, 5, 38, 71582788u));
	assert_true(ds_tid_from_time(0.0) == tid_parts(1970, 1, 1, 0, 0, 0));
	assert_true(ds_tid_from_time(unix_of(1900, 1, 1, 0, 0, 0)) == 0);
	assert_true(ds_tid_from_time(unix_of(1899, 12, 31, 23, 59, 59)) == 0);
	assert_true(ds_tid_from_time(NAN) == 0);
	/* minute, hour, day, month and year boundaries */
	assert_true(ds_tid_from_time(unix_of(2026, 11, 26, 5, 38, 59) + 0.75) >>
	            32 == minutes_of(2026, 11, 26, 5, 38));
	assert_true(ds_tid_from_time(unix_of(2026, 11, 26, 5, 39, 0)) ==
	            tid_parts(2026, 11, 26, 5, 39, 0));
	assert_true(ds_tid_from_time(unix_of(2026, 11, 30, 23, 59, 59) + 1) ==
	            tid_parts(2026, 12, 1, 0, 0, 0));
	assert_true(ds_tid_from_time(unix_of(2026, 12, 31, 23, 59, 59) + 1) ==
	            tid_parts(2027, 1, 1, 0, 0, 0));
	assert_true(ds_tid_from_time(unix_of(2028, 2, 28, 23, 59, 59) + 1) ==
	            tid_parts(2028, 2, 29, 0, 0, 0));
	assert_true(ds_tid_from_time(unix_of(2100, 2, 28, 23, 59, 59) + 1) ==
	            tid_parts(2100, 3, 1, 0, 0, 0));
	/* the 31-day months of the encoding: Feb 1 is minute 31*1440 after
	 * Jan 1, whatever January's length */
	assert_int_equal((ds_tid_from_time(unix_of(2026, 2, 1, 0, 0, 0)) >> 32) -
	                 (ds_tid_from_time(unix_of(2026, 1, 1, 0, 0, 0)) >> 32),
	                 31 * 1440);
	assert_int_equal((ds_tid_from_time(unix_of(2026, 3, 1, 0, 0, 0)) >> 32) -
	                 (ds_tid_from_time(unix_of(2026, 2, 1, 0, 0, 0)) >> 32),
	                 31 * 1440);
}

static void
test_round_trips(void **state)
{
	uint64_t s = 0x7157ull;

	(void)state;
	/* time -> tid -> time within one unit of the low word plus the
	 * rounding of a double near 2^31 seconds */
	for (int i = 0; i < 200000; i++) {
		double t, back;
		ds_tid tid;

		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		t = (double)(s % 4102444800ull) + (double)(s >> 40) / 16777216.0;
		tid = ds_tid_from_time(t);
		back = ds_tid_to_time(tid);
		if (!(back <= t + 1e-6 && back > t - 1.5e-6))
			fail_msg("time %.9f -> %016llX -> %.9f", t,
			         (unsigned long long)tid, back);
		/* tid -> time -> tid: same minute, low word within a few
		 * units (time has less precision than the low word) */
		{
			ds_tid again = ds_tid_from_time(back);
			uint64_t d = again > tid ? again - tid : tid - again;
			assert_true((again >> 32) == (tid >> 32) || d <= 64);
			assert_true(d <= 64);
		}
	}
	/* every fixture transaction's tid lies on 2026-11-26 and converts
	 * back to itself within the precision of a double */
	{
		size_t n;
		char **names = fixture_names(&n);

		for (size_t i = 0; i < n; i++) {
			json_t *m = fixture_manifest_load(names[i]);
			const json_t *txns = json_object_get(m, "transactions");

			for (size_t k = 0; k < json_array_size(txns); k++) {
				ds_tid tid = fixture_jid(json_array_get(txns, k), "tid");
				char date[24];
				double t = ds_tid_to_time(tid);
				ds_tid again = ds_tid_from_time(t);
				uint64_t d = again > tid ? again - tid : tid - again;

				ds_tid_format(tid, date);
				assert_memory_equal(date, "2026-11-26 05:", 14);
				assert_true(d <= 64);
				assert_true(t > unix_of(2026, 11, 26, 5, 0, 0));
				assert_true(t < unix_of(2026, 11, 26, 6, 0, 0));
			}
			json_decref(m);
		}
		fixture_names_free(names);
	}
}

static void
test_next_carries(void **state)
{
	double past = unix_of(2000, 1, 1, 0, 0, 0);

	(void)state;
	/* clock later than last: the clock's tid */
	assert_true(ds_tid_next(tid_parts(2026, 11, 26, 5, 38, 5),
	                        unix_of(2026, 11, 26, 5, 39, 0)) ==
	            tid_parts(2026, 11, 26, 5, 39, 0));
	/* clock not later: last + 1 */
	assert_true(ds_tid_next(tid_parts(2026, 11, 26, 5, 38, 5), past) ==
	            tid_parts(2026, 11, 26, 5, 38, 6));
	assert_true(ds_tid_next(tid_parts(2026, 11, 26, 5, 38, 0xfffffffeu),
	                        past) ==
	            tid_parts(2026, 11, 26, 5, 38, 0xffffffffu));
	/* equal to the clock's tid is not later */
	{
		double now = unix_of(2026, 11, 26, 5, 38, 30);
		ds_tid t = ds_tid_from_time(now);
		assert_true(ds_tid_next(t, now) == t + 1);
	}
	/* low word full: next minute, on the real calendar */
	assert_true(ds_tid_next(tid_parts(2026, 11, 26, 5, 38, 0xffffffffu),
	                        past) == tid_parts(2026, 11, 26, 5, 39, 0));
	assert_true(ds_tid_next(tid_parts(2026, 11, 26, 5, 59, 0xffffffffu),
	                        past) == tid_parts(2026, 11, 26, 6, 0, 0));
	assert_true(ds_tid_next(tid_parts(2026, 11, 26, 23, 59, 0xffffffffu),
	                        past) == tid_parts(2026, 11, 27, 0, 0, 0));
	assert_true(ds_tid_next(tid_parts(2026, 11, 30, 23, 59, 0xffffffffu),
	                        past) == tid_parts(2026, 12, 1, 0, 0, 0));
	assert_true(ds_tid_next(tid_parts(2026, 12, 31, 23, 59, 0xffffffffu),
	                        past) == tid_parts(2027, 1, 1, 0, 0, 0));
	assert_true(ds_tid_next(tid_parts(2027, 1, 31, 23, 59, 0xffffffffu),
	                        past) == tid_parts(2027, 2, 1, 0, 0, 0));
	assert_true(ds_tid_next(tid_parts(2027, 2, 28, 23, 59, 0xffffffffu),
	                        past) == tid_parts(2027, 3, 1, 0, 0, 0));
	assert_true(ds_tid_next(tid_parts(2028, 2, 28, 23, 59, 0xffffffffu),
	                        past) == tid_parts(2028, 2, 29, 0, 0, 0));
	assert_true(ds_tid_next(tid_parts(2028, 2, 29, 23, 59, 0xffffffffu),
	                        past) == tid_parts(2028, 3, 1, 0, 0, 0));
	assert_true(ds_tid_next(tid_parts(1900, 2, 28, 23, 59, 0xffffffffu),
	                        -1e12) == tid_parts(1900, 3, 1, 0, 0, 0));
	assert_true(ds_tid_next(tid_parts(2000, 2, 28, 23, 59, 0xffffffffu),
	                        -1e12) == tid_parts(2000, 2, 29, 0, 0, 0));
	assert_true(ds_tid_next(tid_parts(2026, 4, 30, 23, 59, 0xffffffffu),
	                        past) == tid_parts(2026, 5, 1, 0, 0, 0));
	/* from zero (an empty storage) */
	assert_true(ds_tid_next(0, unix_of(2026, 11, 26, 5, 38, 0)) ==
	            tid_parts(2026, 11, 26, 5, 38, 0));
	assert_true(ds_tid_next(0, -1e12) == 1);
}

/* Strictly increasing whatever the clock does. */
static void
test_next_strictly_increasing(void **state)
{
	double base = unix_of(2026, 11, 26, 5, 38, 0);
	ds_tid last = 0;
	uint64_t s = 0xC10Cull;

	(void)state;
	for (int i = 0; i < 200000; i++) {
		double now;
		ds_tid t;

		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		/* a clock that mostly creeps forward, sometimes jumps back an
		 * hour or stands still */
		switch (s % 5) {
		case 0:
			base -= 3600;
			break;
		case 1:
			break;
		default:
			base += (double)(s >> 44) / 1e6;
		}
		now = base;
		t = ds_tid_next(last, now);
		if (t <= last)
			fail_msg("tid %016llX after %016llX at %.6f",
			         (unsigned long long)t, (unsigned long long)last,
			         now);
		last = t;
	}
	/* a stuck clock produces consecutive tids, crossing into the next
	 * minute when the low word is full */
	last = tid_parts(2026, 11, 26, 5, 38, 0xfffffff0u);
	for (int i = 0; i < 40; i++) {
		ds_tid t = ds_tid_next(last, base - 86400);
		assert_true(t > last);
		last = t;
	}
	assert_true(last == tid_parts(2026, 11, 26, 5, 39, 24));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_known),
		cmocka_unit_test(test_format_matches_original_messages),
		cmocka_unit_test(test_from_time_matches_pack_thresholds),
		cmocka_unit_test(test_from_time_fields),
		cmocka_unit_test(test_round_trips),
		cmocka_unit_test(test_next_carries),
		cmocka_unit_test(test_next_strictly_increasing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
