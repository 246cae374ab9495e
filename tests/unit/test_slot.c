/*
 * test_slot.c - replication slots (src/slot.c): which names can name a
 * slot; record, list (oldest tid first) and forget; a record replaced,
 * never rewritten in place (a hard link to the old record keeps it); the
 * temporary a killed write leaves skipped by the listing; damaged records
 * refused with the file named; lines of a later version ignored.
 * (Crashes and power cuts in --forget: tests/crash/c_forget.sh; slots
 * holding a pack back: e2e/t_pack_slots.sh.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "helper_fixture.h"
#include "internal.h"

/* A scratch "storage": only misc/ matters to slots. */
static char *
home_new(void)
{
	char *home = fixture_scratch_dir(), misc[4096];

	snprintf(misc, sizeof(misc), "%s/misc", home);
	assert_int_equal(mkdir(misc, 0755), 0);
	return home;
}

/* The path of name's slot file: misc/slots/<md5 of name>. */
static void
slot_file(const char *home, const char *name, char *out, size_t outsz)
{
	unsigned char md[16];
	char hex[33];

	ds_md5(name, strlen(name), md);
	ds_hex_lower(md, 16, hex);
	snprintf(out, outsz, "%s/misc/slots/%s", home, hex);
}

static void
test_names(void **state)
{
	char longest[DS_SLOT_NAME_MAX + 2];

	(void)state;
	assert_true(ds_slot_name_valid("a"));
	assert_true(ds_slot_name_valid("backup box:/srv/ds replica"));
	assert_true(ds_slot_name_valid("h\xc3\xa9te"));   /* UTF-8 is fine */
	assert_false(ds_slot_name_valid(""));
	assert_false(ds_slot_name_valid(" a"));
	assert_false(ds_slot_name_valid("a "));
	assert_false(ds_slot_name_valid("a\nb"));
	assert_false(ds_slot_name_valid("a\tb"));
	assert_false(ds_slot_name_valid("a\x7f"));
	memset(longest, 'x', DS_SLOT_NAME_MAX);
	longest[DS_SLOT_NAME_MAX] = '\0';
	assert_true(ds_slot_name_valid(longest));
	longest[DS_SLOT_NAME_MAX] = 'x';
	longest[DS_SLOT_NAME_MAX + 1] = '\0';
	assert_false(ds_slot_name_valid(longest));
}

static void
test_record_list_forget(void **state)
{
	char *home = home_new();
	struct ds_slot *sl = NULL;
	size_t n = 99;
	ds_error err;
	long long before = (long long)time(NULL);

	(void)state;
	/* no misc/slots yet: no slot, no error */
	assert_int_equal(ds_slot_list(home, &sl, &n, &err), DS_OK);
	assert_null(sl);
	assert_int_equal(n, 0);

	assert_int_equal(ds_slot_record(home, "newer", 0x040D44B2249CA6AAull, 1,
	                                &err), DS_OK);
	assert_int_equal(ds_slot_record(home, "older", 0x040D44B219000FEEull, 1,
	                                &err), DS_OK);
	assert_int_equal(ds_slot_record(home, "host:/srv/r 2",
	                                0x040D44B222699877ull, 0, &err), DS_OK);
	assert_int_equal(ds_slot_list(home, &sl, &n, &err), DS_OK);
	assert_int_equal(n, 3);
	/* oldest tid first: the one that holds a pack back */
	assert_string_equal(sl[0].name, "older");
	assert_true(sl[0].tid == 0x040D44B219000FEEull);
	assert_string_equal(sl[1].name, "host:/srv/r 2");
	assert_string_equal(sl[2].name, "newer");
	assert_true(sl[2].seen >= before && sl[2].seen <= before + 60);
	ds_slot_list_free(sl);

	/* a record moves: the same name, a new tid, still three slots */
	assert_int_equal(ds_slot_record(home, "older", 0x7000000000000000ull, 1,
	                                &err), DS_OK);
	assert_int_equal(ds_slot_list(home, &sl, &n, &err), DS_OK);
	assert_int_equal(n, 3);
	assert_string_equal(sl[0].name, "host:/srv/r 2");
	assert_string_equal(sl[2].name, "older");
	assert_true(sl[2].tid == 0x7000000000000000ull);
	ds_slot_list_free(sl);

	/* forget: gone from the listing; again, or a name never used, is
	 * DS_ENOTFOUND naming it; a bad name is DS_EINVAL */
	assert_int_equal(ds_slot_forget(home, "older", &err), DS_OK);
	assert_int_equal(ds_slot_forget(home, "older", &err), DS_ENOTFOUND);
	assert_non_null(strstr(err.msg, "no replication slot named 'older'"));
	assert_int_equal(ds_slot_forget(home, "nobody", &err), DS_ENOTFOUND);
	assert_int_equal(ds_slot_forget(home, " bad", &err), DS_EINVAL);
	assert_int_equal(ds_slot_record(home, "bad\n", 1, 1, &err), DS_EINVAL);
	assert_non_null(strstr(err.msg, "invalid name"));
	assert_int_equal(ds_slot_list(home, &sl, &n, &err), DS_OK);
	assert_int_equal(n, 2);
	assert_string_equal(sl[0].name, "host:/srv/r 2");
	assert_string_equal(sl[1].name, "newer");
	ds_slot_list_free(sl);
	ds_slot_list_free(NULL);        /* accepts NULL */
	fixture_remove_tree(home);
	free(home);
}

/* A record is replaced by rename, never written in place: a hard link to
 * the old file (a cp -al copy of the master) keeps the old bytes; the
 * temporary of a killed write is not a slot. */
static void
test_replace_not_in_place(void **state)
{
	char *home = home_new(), path[4096], lpath[4096], tmp[4096];
	unsigned char *buf;
	size_t len;
	struct ds_slot *sl;
	size_t n;
	ds_error err;

	(void)state;
	assert_int_equal(ds_slot_record(home, "r", 0x1111ull, 1, &err), DS_OK);
	slot_file(home, "r", path, sizeof(path));
	snprintf(lpath, sizeof(lpath), "%s/old-record", home);
	assert_int_equal(link(path, lpath), 0);
	assert_int_equal(ds_slot_record(home, "r", 0x2222ull, 1, &err), DS_OK);
	assert_int_equal(ds_file_read(lpath, 0, &buf, &len, &err), DS_OK);
	assert_non_null(memmem(buf, len, "tid 0000000000001111\n", 21));
	free(buf);
	assert_int_equal(ds_file_read(path, 0, &buf, &len, &err), DS_OK);
	assert_non_null(memmem(buf, len, "tid 0000000000002222\n", 21));
	free(buf);

	/* a killed write's temporary beside it: skipped */
	snprintf(tmp, sizeof(tmp), "%s/misc/slots/" DS_IO_TEMP_PREFIX "x",
	         home);
	fixture_write_text(tmp, "half a rec");
	assert_int_equal(ds_slot_list(home, &sl, &n, &err), DS_OK);
	assert_int_equal(n, 1);
	assert_true(sl[0].tid == 0x2222ull);
	ds_slot_list_free(sl);
	fixture_remove_tree(home);
	free(home);
}

/* Damaged records stop the listing (a pack must not guess what a replica
 * holds) with the file named; a later version's extra lines are fine. */
static void
test_damaged(void **state)
{
	static const char *const bad[] = {
		"",
		"ds slot 2\nname a\ntid 0000000000000001\nseen 5\n",
		"ds slot 1\nname a\ntid 0000000000000001\n",      /* no seen */
		"ds slot 1\nname a\ntid 00000000000001\nseen 5\n",  /* short */
		"ds slot 1\nname  a\ntid 0000000000000001\nseen 5\n",
		"ds slot 1\nname a\ntid 0000000000000001\nseen -5\n",
		"ds slot 1\nname a\ntid 0000000000000001\nseen 5x\n",
		"ds slot 1\nname a\ntid 0000000000000001\nseen 5", /* no \n */
	};
	char *home = home_new(), path[4096];
	struct ds_slot *sl;
	size_t n, i;
	ds_error err;

	(void)state;
	assert_int_equal(ds_slot_record(home, "a", 1, 1, &err), DS_OK);
	slot_file(home, "a", path, sizeof(path));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fixture_write_text(path, bad[i]);
		sl = (struct ds_slot *)1;
		if (ds_slot_list(home, &sl, &n, &err) != DS_ECORRUPT)
			fail_msg("damaged record %zu accepted", i);
		assert_non_null(strstr(err.msg, path));
		assert_null(sl);
		assert_int_equal(n, 0);
	}
	fixture_write_text(path, "ds slot 1\nname a\ntid 00000000000000AB\nseen 5\n"
	           "lag 3 of a later version\n");
	assert_int_equal(ds_slot_list(home, &sl, &n, &err), DS_OK);
	assert_int_equal(n, 1);
	assert_string_equal(sl[0].name, "a");
	assert_true(sl[0].tid == 0xABull);
	assert_int_equal(sl[0].seen, 5);
	ds_slot_list_free(sl);
	/* forget removes even a damaged record, so that the pack goes on */
	fixture_write_text(path, "garbage\n");
	assert_int_equal(ds_slot_forget(home, "a", &err), DS_OK);
	assert_int_equal(ds_slot_list(home, &sl, &n, &err), DS_OK);
	assert_int_equal(n, 0);
	fixture_remove_tree(home);
	free(home);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_record_list_forget),
		cmocka_unit_test(test_replace_not_in_place),
		cmocka_unit_test(test_damaged),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
