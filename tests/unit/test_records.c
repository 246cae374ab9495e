/*
 * test_records.c - object revision, transaction, pointer and x.* records:
 * encode/decode round trips, every check of the decoders on damaged
 * copies of real files from the fixtures, and error messages that name
 * the file and the fault.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dirstorage.h"
#include "helper_fixture.h"

/* Read A/<rel> of a fixture storage. */
static unsigned char *
read_fixture_file(const char *fixture, const char *rel, size_t *len)
{
	char home[4096], path[8192];
	unsigned char *buf;
	ds_error err;

	fixture_home(fixture, home, sizeof(home));
	snprintf(path, sizeof(path), "%s/A/%s", home, rel);
	if (ds_file_read(path, 0, &buf, len, &err) != DS_OK)
		fail_msg("%s", err.msg);
	return buf;
}

static void
expect_corrupt(int rc, const ds_error *err, const char *what,
               const char *reason)
{
	assert_int_equal(rc, DS_ECORRUPT);
	assert_int_equal(err->status, DS_ECORRUPT);
	if (strstr(err->msg, what) == NULL || strstr(err->msg, reason) == NULL)
		fail_msg("message \"%s\" should name \"%s\" and say \"%s\"",
		         err->msg, what, reason);
}

static void
test_objrec_round_trip(void **state)
{
	static const unsigned char pickle[] = "cpersistent.mapping\nPM\nq\x01.";
	ds_objrec rec, back;
	unsigned char *buf, *buf2;
	size_t len, len2;
	ds_error err;

	(void)state;
	memset(&rec, 0, sizeof(rec));
	rec.oid = 0x1Aull;
	rec.undo_from = 0x040D44B218EAC444ull;
	rec.prev_serial = 0x040D44B20DEBD800ull;
	rec.serial = 0x040D44B2249CA6AAull;
	rec.pickle = pickle;
	rec.pickle_len = sizeof(pickle) - 1;
	for (int with_md5 = 0; with_md5 < 2; with_md5++) {
		assert_int_equal(ds_objrec_encode(&rec, with_md5, &buf, &len, &err),
		                 DS_OK);
		assert_int_equal(len, 72 + rec.pickle_len);
		assert_int_equal(ds_get_u32(buf), DS_OBJ_MAGIC);
		assert_int_equal(ds_get_u32(buf + 4), len);
		assert_true(ds_get_u64(buf + 8) == rec.oid);
		assert_true(ds_get_u64(buf + 16) == rec.undo_from);
		for (int i = 24; i < 40; i++)
			assert_int_equal(buf[i], 0);
		assert_true(ds_get_u64(buf + 56) == rec.prev_serial);
		assert_true(ds_get_u64(buf + 64) == rec.serial);
		assert_memory_equal(buf + 72, pickle, rec.pickle_len);
		if (with_md5) {
			unsigned char sum[16];
			ds_md5(buf + 56, len - 56, sum);
			assert_memory_equal(buf + 40, sum, 16);
		} else {
			for (int i = 40; i < 56; i++)
				assert_int_equal(buf[i], 0);
		}
		assert_int_equal(ds_objrec_decode(buf, len, "o.test", &back, &err),
		                 DS_OK);
		assert_int_equal(back.md5_present, with_md5);
		assert_true(back.oid == rec.oid && back.serial == rec.serial &&
		            back.prev_serial == rec.prev_serial &&
		            back.undo_from == rec.undo_from);
		assert_int_equal(back.pickle_len, rec.pickle_len);
		assert_ptr_equal(back.pickle, buf + 72);
		assert_int_equal(ds_objrec_encode(&back, with_md5, &buf2, &len2,
		                                  &err),
		                 DS_OK);
		assert_int_equal(len2, len);
		assert_memory_equal(buf2, buf, len);
		free(buf2);
		free(buf);
	}
	/* an undone creation: 72 bytes, empty pickle */
	rec.pickle = NULL;
	rec.pickle_len = 0;
	assert_int_equal(ds_objrec_encode(&rec, 1, &buf, &len, &err), DS_OK);
	assert_int_equal(len, 72);
	assert_int_equal(ds_objrec_decode(buf, len, "o.undone", &back, &err),
	                 DS_OK);
	assert_int_equal(back.pickle_len, 0);
	free(buf);
	/* a length without bytes is refused */
	rec.pickle_len = 3;
	assert_int_equal(ds_objrec_encode(&rec, 1, &buf, &len, &err), DS_EINVAL);
	assert_null(buf);
}

/* Every damage to a real revision file is caught, with its reason. */
static void
test_objrec_damage(void **state)
{
	const char *rel = "o0/00/00/00/00/00/00/000/040D44B20DEBD800";
	const char *what = "A/o0/00/00/00/00/00/00/000/040D44B20DEBD800";
	unsigned char *orig, *buf;
	size_t len;
	ds_objrec rec;
	ds_error err;

	(void)state;
	orig = read_fixture_file("bushy-master", rel, &len);
	assert_int_equal(len, 317);
	assert_int_equal(ds_objrec_decode(orig, len, what, &rec, &err), DS_OK);
	assert_true(rec.md5_present);
	buf = malloc(len + 16);
	assert_non_null(buf);

	/* every truncation */
	for (size_t n = 0; n < len; n++) {
		memcpy(buf, orig, len);
		ds_error_clear(&err);
		assert_int_equal(ds_objrec_decode(buf, n, what, &rec, &err),
		                 DS_ECORRUPT);
		assert_non_null(strstr(err.msg, what));
	}
	memcpy(buf, orig, len);
	expect_corrupt(ds_objrec_decode(buf, 300, what, &rec, &err), &err, what,
	               "length field says 317 but file has 300 bytes");
	expect_corrupt(ds_objrec_decode(buf, 40, what, &rec, &err), &err, what,
	               "less than the 72-byte header");
	/* extra bytes */
	memcpy(buf, orig, len);
	memset(buf + len, 0, 16);
	expect_corrupt(ds_objrec_decode(buf, len + 1, what, &rec, &err), &err,
	               what, "length field says 317 but file has 318 bytes");
	/* each magic byte */
	for (int i = 0; i < 4; i++) {
		memcpy(buf, orig, len);
		buf[i] ^= 0x40;
		expect_corrupt(ds_objrec_decode(buf, len, what, &rec, &err), &err,
		               what, "bad magic");
	}
	/* a transaction is not an object */
	memcpy(buf, orig, len);
	ds_put_u32(buf, DS_TXN_MAGIC);
	expect_corrupt(ds_objrec_decode(buf, len, what, &rec, &err), &err, what,
	               "bad magic 47400776");
	/* each length byte */
	for (int i = 4; i < 8; i++) {
		memcpy(buf, orig, len);
		buf[i] ^= 0x01;
		expect_corrupt(ds_objrec_decode(buf, len, what, &rec, &err), &err,
		               what, "length field says");
	}
	/* each reserved byte */
	for (int i = 24; i < 40; i++) {
		memcpy(buf, orig, len);
		buf[i] = 1;
		expect_corrupt(ds_objrec_decode(buf, len, what, &rec, &err), &err,
		               what, "reserved bytes 24..39 are not zero");
	}
	/* every byte covered by the md5, and the md5 field itself */
	for (size_t i = 40; i < len; i++) {
		memcpy(buf, orig, len);
		buf[i] ^= 0x80;
		expect_corrupt(ds_objrec_decode(buf, len, what, &rec, &err), &err,
		               what, "md5 mismatch");
	}
	/* with the md5 field zeroed, the content is not checked */
	memcpy(buf, orig, len);
	memset(buf + 40, 0, 16);
	buf[100] ^= 0x80;
	assert_int_equal(ds_objrec_decode(buf, len, what, &rec, &err), DS_OK);
	assert_false(rec.md5_present);
	/* bytes 8..23 are outside the md5 (as in the original): decoded */
	memcpy(buf, orig, len);
	buf[15] = 0x42;
	assert_int_equal(ds_objrec_decode(buf, len, what, &rec, &err), DS_OK);
	assert_true(rec.oid == 0x42);
	expect_corrupt(ds_objrec_decode(NULL, 0, NULL, &rec, &err), &err,
	               "object revision", "0 bytes");
	free(buf);
	free(orig);
}

static void
test_txnrec_round_trip(void **state)
{
	unsigned char oids[3 * 8], *buf, *buf2;
	const unsigned char ext[] = "}q\x01U\x04stepq\x02U\x04loadq\x03s.";
	ds_txnrec rec, back;
	size_t len, len2;
	ds_error err;

	(void)state;
	ds_put_u64(oids, 7);
	ds_put_u64(oids + 8, 0x15);
	ds_put_u64(oids + 16, 0);
	memset(&rec, 0, sizeof(rec));
	rec.tid = 0x040D44B20DF38300ull;
	rec.prev_tid = 0x040D44B20DEBD800ull;
	rec.user = "/ alice";
	rec.user_len = 7;
	rec.description = "bulk load";
	rec.description_len = 9;
	rec.extension = ext;
	rec.extension_len = sizeof(ext) - 1;
	rec.oids = oids;
	rec.noids = 3;
	for (int with_md5 = 0; with_md5 < 2; with_md5++) {
		assert_int_equal(ds_txnrec_encode(&rec, with_md5, &buf, &len, &err),
		                 DS_OK);
		assert_int_equal(len, 60 + 7 + 9 + rec.extension_len + 24);
		assert_int_equal(ds_get_u32(buf), DS_TXN_MAGIC);
		assert_int_equal(ds_get_u32(buf + 4), len);
		assert_true(ds_get_u64(buf + 8) == rec.tid);
		assert_true(ds_get_u64(buf + 16) == 0);
		assert_true(ds_get_u64(buf + 24) == rec.prev_tid);
		assert_int_equal(ds_get_u16(buf + 48), 7);
		assert_int_equal(ds_get_u16(buf + 50), 9);
		assert_int_equal(ds_get_u16(buf + 52), rec.extension_len);
		assert_int_equal(ds_get_u32(buf + 54), 24);
		assert_int_equal(ds_get_u16(buf + 58), 0);
		assert_memory_equal(buf + 60, "/ alicebulk load", 16);
		assert_int_equal(ds_txnrec_decode(buf, len, "t.test", &back, &err),
		                 DS_OK);
		assert_int_equal(back.md5_present, with_md5);
		assert_true(back.tid == rec.tid && back.prev_tid == rec.prev_tid);
		assert_int_equal(back.noids, 3);
		assert_memory_equal(back.oids, oids, 24);
		assert_memory_equal(back.user, "/ alice", 7);
		assert_memory_equal(back.description, "bulk load", 9);
		assert_memory_equal(back.extension, ext, rec.extension_len);
		assert_int_equal(ds_txnrec_encode(&back, with_md5, &buf2, &len2,
		                                  &err),
		                 DS_OK);
		assert_int_equal(len2, len);
		assert_memory_equal(buf2, buf, len);
		free(buf2);
		free(buf);
	}
	/* an empty transaction */
	memset(&rec, 0, sizeof(rec));
	assert_int_equal(ds_txnrec_encode(&rec, 1, &buf, &len, &err), DS_OK);
	assert_int_equal(len, 60);
	assert_int_equal(ds_txnrec_decode(buf, len, "t.empty", &back, &err),
	                 DS_OK);
	assert_int_equal(back.noids, 0);
	free(buf);
}

static void
test_txnrec_encode_refusals(void **state)
{
	unsigned char oids[4 * 8];
	static char big[65536];
	ds_txnrec rec;
	unsigned char *buf;
	size_t len;
	ds_error err;

	(void)state;
	memset(&rec, 0, sizeof(rec));
	rec.user = big;
	rec.user_len = 65536;
	assert_int_equal(ds_txnrec_encode(&rec, 1, &buf, &len, &err), DS_EINVAL);
	assert_null(buf);
	assert_non_null(strstr(err.msg, "65535"));
	rec.user_len = 65535;
	assert_int_equal(ds_txnrec_encode(&rec, 1, &buf, &len, &err), DS_OK);
	free(buf);
	rec.user_len = 0;
	rec.description = big;
	rec.description_len = 70000;
	assert_int_equal(ds_txnrec_encode(&rec, 1, &buf, &len, &err), DS_EINVAL);
	rec.description_len = 0;
	rec.extension = (const unsigned char *)big;
	rec.extension_len = 65536;
	assert_int_equal(ds_txnrec_encode(&rec, 1, &buf, &len, &err), DS_EINVAL);
	rec.extension_len = 0;
	ds_put_u64(oids, 1);
	ds_put_u64(oids + 8, 2);
	ds_put_u64(oids + 16, 3);
	ds_put_u64(oids + 24, 2);
	rec.oids = oids;
	rec.noids = 4;
	assert_int_equal(ds_txnrec_encode(&rec, 1, &buf, &len, &err), DS_EINVAL);
	assert_non_null(strstr(err.msg, "0000000000000002 is listed twice"));
	rec.noids = 3;
	assert_int_equal(ds_txnrec_encode(&rec, 1, &buf, &len, &err), DS_OK);
	free(buf);
	rec.oids = NULL;
	assert_int_equal(ds_txnrec_encode(&rec, 1, &buf, &len, &err), DS_EINVAL);
}

/* Rewrite the md5 field of a transaction so that only the damage under
 * test is wrong. */
static void
txn_fix_md5(unsigned char *buf, size_t len)
{
	ds_md5(buf + 48, len - 48, buf + 32);
}

static void
test_txnrec_damage(void **state)
{
	const char *rel = "t0/40/D44/B20DF38300";
	const char *what = "A/t0/40/D44/B20DF38300";
	unsigned char *orig, *buf;
	size_t len;
	ds_txnrec rec;
	ds_error err;
	uint16_t lu;
	uint32_t lo;
	char msg[160];

	(void)state;
	orig = read_fixture_file("bushy-master", rel, &len);
	assert_int_equal(len, 665);
	assert_int_equal(ds_txnrec_decode(orig, len, what, &rec, &err), DS_OK);
	assert_true(rec.md5_present);
	assert_int_equal(rec.noids, 67);
	buf = malloc(len + 16);
	assert_non_null(buf);

	for (size_t n = 0; n < len; n++) {
		memcpy(buf, orig, len);
		assert_int_equal(ds_txnrec_decode(buf, n, what, &rec, &err),
		                 DS_ECORRUPT);
		assert_non_null(strstr(err.msg, what));
	}
	memcpy(buf, orig, len);
	expect_corrupt(ds_txnrec_decode(buf, 600, what, &rec, &err), &err, what,
	               "length field says 665 but file has 600 bytes");
	for (int i = 0; i < 4; i++) {
		memcpy(buf, orig, len);
		buf[i] ^= 0x10;
		expect_corrupt(ds_txnrec_decode(buf, len, what, &rec, &err), &err,
		               what, "bad magic");
	}
	for (int i = 16; i < 24; i++) {
		memcpy(buf, orig, len);
		buf[i] = 0xff;
		expect_corrupt(ds_txnrec_decode(buf, len, what, &rec, &err), &err,
		               what, "reserved bytes 16..23 are not zero");
	}
	for (size_t i = 32; i < len; i++) {
		memcpy(buf, orig, len);
		buf[i] ^= 0x01;
		expect_corrupt(ds_txnrec_decode(buf, len, what, &rec, &err), &err,
		               what, "md5 mismatch");
	}
	/* version length non-zero */
	memcpy(buf, orig, len);
	ds_put_u16(buf + 58, 1);
	txn_fix_md5(buf, len);
	expect_corrupt(ds_txnrec_decode(buf, len, what, &rec, &err), &err, what,
	               "version length is 1, not 0");
	/* lengths that do not add up to the file */
	memcpy(buf, orig, len);
	lu = ds_get_u16(buf + 48);
	ds_put_u16(buf + 48, (uint16_t)(lu + 1));
	txn_fix_md5(buf, len);
	expect_corrupt(ds_txnrec_decode(buf, len, what, &rec, &err), &err, what,
	               "make 666 bytes but the file has 665");
	memcpy(buf, orig, len);
	ds_put_u32(buf + 54, 0xfffffff8u);
	txn_fix_md5(buf, len);
	expect_corrupt(ds_txnrec_decode(buf, len, what, &rec, &err), &err, what,
	               "but the file has 665");
	/* oids block not a multiple of 8 (lengths still add up) */
	memcpy(buf, orig, len);
	lo = ds_get_u32(buf + 54);
	ds_put_u16(buf + 48, (uint16_t)(lu + 3));
	ds_put_u32(buf + 54, lo - 3);
	txn_fix_md5(buf, len);
	snprintf(msg, sizeof(msg), "oids block of %u bytes is not a multiple of 8",
	         lo - 3);
	expect_corrupt(ds_txnrec_decode(buf, len, what, &rec, &err), &err, what,
	               msg);
	/* a duplicate oid: copy the first oid over the last */
	memcpy(buf, orig, len);
	memcpy(buf + len - 8, buf + len - lo, 8);
	txn_fix_md5(buf, len);
	{
		char hex[17], want[64];
		ds_id_format(ds_get_u64(buf + len - 8), hex);
		snprintf(want, sizeof(want), "oid %s is listed twice", hex);
		expect_corrupt(ds_txnrec_decode(buf, len, what, &rec, &err), &err,
		               what, want);
	}
	/* md5 zeroed: not checked, flagged absent */
	memcpy(buf, orig, len);
	memset(buf + 32, 0, 16);
	assert_int_equal(ds_txnrec_decode(buf, len, what, &rec, &err), DS_OK);
	assert_false(rec.md5_present);
	/* an object revision is not a transaction */
	free(orig);
	orig = read_fixture_file("bushy-master",
	                         "o0/00/00/00/00/00/00/000/040D44B20DEBD800", &len);
	expect_corrupt(ds_txnrec_decode(orig, len, what, &rec, &err), &err, what,
	               "bad magic BDB82A71");
	free(buf);
	free(orig);
}

static void
test_pointer_and_xfiles(void **state)
{
	unsigned char b[16];
	ds_tid serial;
	uint64_t v;
	ds_error err;
	unsigned char *buf;
	size_t len;

	(void)state;
	ds_put_u64(b, 0x040D44B2249CA6AAull);
	assert_int_equal(ds_pointer_decode(b, 8, "o.c", &serial, &err), DS_OK);
	assert_true(serial == 0x040D44B2249CA6AAull);
	/* the legacy 12-byte form */
	ds_put_u32(b, DS_PTR_LEGACY_MAGIC);
	ds_put_u64(b + 4, 0x040D44B20DEBD800ull);
	assert_int_equal(b[0], 0x0B);
	assert_int_equal(b[1], 0xFE);
	assert_int_equal(b[2], 0xE8);
	assert_int_equal(b[3], 0xEC);
	assert_int_equal(ds_pointer_decode(b, 12, "o.c", &serial, &err), DS_OK);
	assert_true(serial == 0x040D44B20DEBD800ull);
	b[2] = 0xE9;
	expect_corrupt(ds_pointer_decode(b, 12, "A/o/legacy.c", &serial, &err),
	               &err, "A/o/legacy.c", "bad magic 0BFEE9EC");
	for (size_t n = 0; n < 16; n++) {
		if (n == 8 || n == 12)
			continue;
		expect_corrupt(ds_pointer_decode(b, n, "A/x.c", &serial, &err),
		               &err, "A/x.c", "expected 8, or 12");
	}
	for (size_t n = 0; n < 16; n++) {
		int rc = ds_xfile_decode(b, n, "A/x/serial", &v, &err);
		if (n == 8) {
			assert_int_equal(rc, DS_OK);
		} else {
			char want[64];
			snprintf(want, sizeof(want), "file has %zu bytes (expected 8)",
			         n);
			expect_corrupt(rc, &err, "A/x/serial", want);
		}
	}
	/* real files */
	buf = read_fixture_file("bushy-master", "x/serial", &len);
	assert_int_equal(ds_xfile_decode(buf, len, "x.serial", &v, &err), DS_OK);
	assert_true(v == 0x040D44B2249CA6AAull);
	free(buf);
	buf = read_fixture_file("bushy-master", "o0/00/00/00/00/00/00/01A/c",
	                        &len);
	assert_int_equal(len, 8);
	assert_int_equal(ds_pointer_decode(buf, len, "c", &serial, &err), DS_OK);
	free(buf);
}

/* Every record file of every fixture (pack leftovers too: they are old
 * revisions and transactions) decodes and re-encodes to the same bytes. */
static int nfiles_checked;

static void
reencode_tree(const char *dir)
{
	char cmd[8400];
	FILE *p;
	char line[8192];

	snprintf(cmd, sizeof(cmd), "find '%s' -type f", dir);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (fgets(line, sizeof(line), p) != NULL) {
		unsigned char *buf, *again;
		size_t len, againlen;
		ds_error err;
		uint32_t magic;

		line[strcspn(line, "\n")] = '\0';
		if (ds_file_read(line, 0, &buf, &len, &err) != DS_OK)
			fail_msg("%s", err.msg);
		magic = len >= 4 ? ds_get_u32(buf) : 0;
		if (magic == DS_OBJ_MAGIC) {
			ds_objrec rec;
			if (ds_objrec_decode(buf, len, line, &rec, &err) != DS_OK)
				fail_msg("%s", err.msg);
			assert_int_equal(ds_objrec_encode(&rec, rec.md5_present,
			                                  &again, &againlen, &err),
			                 DS_OK);
		} else if (magic == DS_TXN_MAGIC) {
			ds_txnrec rec;
			if (ds_txnrec_decode(buf, len, line, &rec, &err) != DS_OK)
				fail_msg("%s", err.msg);
			assert_int_equal(ds_txnrec_encode(&rec, rec.md5_present,
			                                  &again, &againlen, &err),
			                 DS_OK);
		} else {
			/* x.* and pointers: 8 bytes */
			uint64_t v;
			assert_int_equal(ds_xfile_decode(buf, len, line, &v, &err),
			                 DS_OK);
			free(buf);
			continue;
		}
		if (againlen != len || memcmp(again, buf, len) != 0)
			fail_msg("%s: re-encoding differs", line);
		free(again);
		free(buf);
		nfiles_checked++;
	}
	assert_int_equal(pclose(p), 0);
}

static void
test_every_fixture_file_reencodes(void **state)
{
	size_t n;
	char **names = fixture_names(&n);

	(void)state;
	nfiles_checked = 0;
	for (size_t i = 0; i < n; i++) {
		char home[4096], a[8192];
		fixture_home(names[i], home, sizeof(home));
		snprintf(a, sizeof(a), "%s/A", home);
		reencode_tree(a);
	}
	fixture_names_free(names);
	print_message("%d record files re-encoded byte for byte\n",
	              nfiles_checked);
	assert_true(nfiles_checked > 4000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_objrec_round_trip),
		cmocka_unit_test(test_objrec_damage),
		cmocka_unit_test(test_txnrec_round_trip),
		cmocka_unit_test(test_txnrec_encode_refusals),
		cmocka_unit_test(test_txnrec_damage),
		cmocka_unit_test(test_pointer_and_xfiles),
		cmocka_unit_test(test_every_fixture_file_reencodes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
