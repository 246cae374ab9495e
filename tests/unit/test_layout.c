/*
 * test_layout.c - database names and the four layouts: every example of
 * DESIGN.md and fixtures/README.md, refusal of every path that is not
 * exactly the path of a valid name, and random round trips.
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
#include "internal.h"

static const ds_layout all_layouts[] = {DS_LAYOUT_BUSHY, DS_LAYOUT_CHUNKY,
                                        DS_LAYOUT_LAWN, DS_LAYOUT_FLAT};

/* xorshift64*: reproducible random names (seed printed, DS_TEST_SEED
 * overrides). */
static uint64_t rng_state;

static uint64_t
rng_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

/* Mostly uniform, sometimes all-zero / all-F / small values, which are
 * the shapes real oids and tids take. */
static uint64_t
rng_id(void)
{
	switch (rng_next() % 8) {
	case 0:
		return 0;
	case 1:
		return UINT64_MAX;
	case 2:
		return rng_next() % 4096;
	case 3:
		return 0x040D44B200000000ull | (rng_next() & 0xffffffffu);
	default:
		return rng_next();
	}
}

static void
rng_seed(void)
{
	const char *s = getenv("DS_TEST_SEED");

	rng_state = s != NULL ? strtoull(s, NULL, 0) : 0x5eed2026ull;
	if (rng_state == 0)
		rng_state = 1;
	print_message("random seed 0x%llx (set DS_TEST_SEED to repeat)\n",
	              (unsigned long long)rng_state);
}

static void
test_layout_parse_and_str(void **state)
{
	static const char *const bad[] = {"Bushy", "BUSHY", "", "tree",
	                                  "bushy ", " flat", "flat\n", "lawns"};
	ds_layout l;
	ds_error err;

	(void)state;
	for (size_t i = 0; i < 4; i++) {
		const char *s = ds_layout_str(all_layouts[i]);
		assert_int_equal(ds_layout_parse(s, &l, &err), DS_OK);
		assert_int_equal(l, all_layouts[i]);
	}
	assert_string_equal(ds_layout_str(DS_LAYOUT_BUSHY), "bushy");
	assert_string_equal(ds_layout_str(DS_LAYOUT_CHUNKY), "chunky");
	assert_string_equal(ds_layout_str(DS_LAYOUT_LAWN), "lawn");
	assert_string_equal(ds_layout_str(DS_LAYOUT_FLAT), "flat");
	assert_string_equal(ds_layout_str((ds_layout)42), "unknown");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ds_error_clear(&err);
		assert_int_equal(ds_layout_parse(bad[i], &l, &err), DS_ECONFIG);
		assert_int_equal(err.status, DS_ECONFIG);
		assert_non_null(strstr(err.msg, "unknown"));
	}
	assert_int_equal(ds_layout_parse("tree", &l, &err), DS_ECONFIG);
	assert_non_null(strstr(err.msg, "\"tree\""));
	assert_int_equal(ds_layout_parse(NULL, &l, NULL), DS_ECONFIG);
}

static void
test_name_valid(void **state)
{
	static const char *const good[] = {
		"x.serial", "x.oid", "x.packed",
		"o0123456789ABCDEF.c", "o0000000000000000.c",
		"o0123456789ABCDEF.0123456789ABCDEF",
		"oFFFFFFFFFFFFFFFF.FFFFFFFFFFFFFFFF",
		"t012345.6789ABCDEF", "t040D44.B2249CA6AA",
	};
	static const char *const bad[] = {
		"", "x", "x.", "x.Serial", "x.serials", "X.serial", "x.oid ",
		"x/oid", "y.oid", ".oid",
		"o0123456789abcdef.c", "o0123456789ABCDEf.c",
		"o0123456789ABCDEF.C", "o0123456789ABCDE.c",
		"o0123456789ABCDEF0.c", "o0123456789ABCDEF.cc",
		"o0123456789ABCDEF.", "o0123456789ABCDEF",
		"o0123456789ABCDEF.0123456789abcdef",
		"o0123456789ABCDEF.0123456789ABCDE",
		"o0123456789ABCDEF.0123456789ABCDEF0",
		"o0123456789ABCDEF/0123456789ABCDEF",
		"o0123456789ABCDEF-0123456789ABCDEF",
		"O0123456789ABCDEF.c", "0123456789ABCDEF.c",
		"o0123456789ABCDEG.c", "o 123456789ABCDEF.c",
		"t01234567.89ABCDEF", "t012345.6789abcdef", "t012345.6789ABCDE",
		"t012345.6789ABCDEF0", "t0123456789ABCDEF", "T012345.6789ABCDEF",
		"t012345/6789ABCDEF", "t01234G.6789ABCDEF",
		"o0000000000000000.040D44B20DE94BEE-1795671498-deleted",
		"x.serial-1795671498-deleted",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!ds_name_valid(good[i]))
			fail_msg("valid name refused: %s", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (ds_name_valid(bad[i]))
			fail_msg("invalid name accepted: %s", bad[i]);
	assert_false(ds_name_valid(NULL));
}

static void
test_name_builders(void **state)
{
	char n[DS_NAME_MAX];

	(void)state;
	ds_name_revision(0x0123456789ABCDEFull, 0x040D44B20DEBD800ull, n);
	assert_string_equal(n, "o0123456789ABCDEF.040D44B20DEBD800");
	ds_name_pointer(0x1Aull, n);
	assert_string_equal(n, "o000000000000001A.c");
	ds_name_transaction(0x040D44B2249CA6AAull, n);
	assert_string_equal(n, "t040D44.B2249CA6AA");
	ds_name_transaction(0x0123456789ABCDEFull, n);
	assert_string_equal(n, "t012345.6789ABCDEF");
	ds_name_transaction(0, n);
	assert_string_equal(n, "t000000.0000000000");
	ds_name_revision(UINT64_MAX, UINT64_MAX, n);
	assert_string_equal(n, "oFFFFFFFFFFFFFFFF.FFFFFFFFFFFFFFFF");
}

struct example {
	ds_layout layout;
	const char *name;
	const char *path;
};

/* DESIGN.md section 2 and fixtures/README.md "On-disk facts". */
static const struct example examples[] = {
	{DS_LAYOUT_BUSHY, "o0123456789ABCDEF.0123456789ABCDEF",
	 "o0/12/34/56/78/9A/BC/DEF/0123456789ABCDEF"},
	{DS_LAYOUT_BUSHY, "o0123456789ABCDEF.c", "o0/12/34/56/78/9A/BC/DEF/c"},
	{DS_LAYOUT_BUSHY, "t012345.6789ABCDEF", "t0/12/345/6789ABCDEF"},
	{DS_LAYOUT_BUSHY, "x.oid", "x/oid"},
	{DS_LAYOUT_BUSHY, "x.serial", "x/serial"},
	{DS_LAYOUT_BUSHY, "x.packed", "x/packed"},
	{DS_LAYOUT_BUSHY, "t040D44.B2249CA6AA", "t0/40/D44/B2249CA6AA"},
	{DS_LAYOUT_BUSHY, "o000000000000001A.c", "o0/00/00/00/00/00/00/01A/c"},
	{DS_LAYOUT_BUSHY, "o0000000000000000.040D44B20DEBD800",
	 "o0/00/00/00/00/00/00/000/040D44B20DEBD800"},
	{DS_LAYOUT_CHUNKY, "o0123456789ABCDEF.c", "o012/345/678/9AB/CDEF.c"},
	{DS_LAYOUT_CHUNKY, "o0123456789ABCDEF.0123456789ABCDEF",
	 "o012/345/678/9AB/CDEF.0123456789ABCDEF"},
	{DS_LAYOUT_CHUNKY, "t012345.6789ABCDEF", "t012/345.6789ABCDEF"},
	{DS_LAYOUT_CHUNKY, "x.oid", "x/oid"},
	{DS_LAYOUT_CHUNKY, "x.serial", "x/serial"},
	{DS_LAYOUT_CHUNKY, "x.packed", "x/packed"},
	{DS_LAYOUT_CHUNKY, "o000000000000001A.c", "o000/000/000/000/001A.c"},
	{DS_LAYOUT_CHUNKY, "t040D44.B2249CA6AA", "t040/D44.B2249CA6AA"},
	{DS_LAYOUT_LAWN, "o0123456789ABCDEF.c", "o0123456789ABCDEF/c"},
	{DS_LAYOUT_LAWN, "o0123456789ABCDEF.0123456789ABCDEF",
	 "o0123456789ABCDEF/0123456789ABCDEF"},
	{DS_LAYOUT_LAWN, "t012345.6789ABCDEF", "t012345/6789ABCDEF"},
	{DS_LAYOUT_LAWN, "x.oid", "x/oid"},
	{DS_LAYOUT_LAWN, "x.serial", "x/serial"},
	{DS_LAYOUT_FLAT, "o0123456789ABCDEF.c", "o0123456789ABCDEF.c"},
	{DS_LAYOUT_FLAT, "t040D44.B2249CA6AA", "t040D44.B2249CA6AA"},
	{DS_LAYOUT_FLAT, "x.serial", "x.serial"},
	{DS_LAYOUT_FLAT, "x.oid", "x.oid"},
	{DS_LAYOUT_FLAT, "x.packed", "x.packed"},
};

static void
test_examples(void **state)
{
	char out[DS_RELPATH_MAX], name[DS_NAME_MAX];
	ds_error err;

	(void)state;
	for (size_t i = 0; i < sizeof(examples) / sizeof(examples[0]); i++) {
		const struct example *e = &examples[i];
		assert_int_equal(ds_layout_name_to_path(e->layout, e->name, out,
		                                        sizeof(out), &err),
		                 DS_OK);
		assert_string_equal(out, e->path);
		assert_int_equal(ds_layout_path_to_name(e->layout, e->path, name,
		                                        sizeof(name), &err),
		                 DS_OK);
		assert_string_equal(name, e->name);
	}
}

/* Paths that must be refused in a layout, with why. */
static const struct example refused[] = {
	/* wrong case */
	{DS_LAYOUT_BUSHY, NULL, "o0/12/34/56/78/9a/bc/def/c"},
	{DS_LAYOUT_BUSHY, NULL, "X/oid"},
	{DS_LAYOUT_BUSHY, NULL, "x/OID"},
	{DS_LAYOUT_BUSHY, NULL, "t0/40/d44/B2249CA6AA"},
	{DS_LAYOUT_FLAT, NULL, "o0123456789abcdef.c"},
	{DS_LAYOUT_CHUNKY, NULL, "o012/345/678/9AB/CDEF.C"},
	{DS_LAYOUT_LAWN, NULL, "t040d44/B2249CA6AA"},
	/* extra / missing / empty components */
	{DS_LAYOUT_BUSHY, NULL, "o0/12/34/56/78/9A/BC/DE/F/c"},
	{DS_LAYOUT_BUSHY, NULL, "o0/12/34/56/78/9A/BCDEF/c"},
	{DS_LAYOUT_BUSHY, NULL, "o0/12/34/56/78/9A/BC//DEF/c"},
	{DS_LAYOUT_BUSHY, NULL, "o01/23/45/67/89/AB/CD/EF/c"},
	{DS_LAYOUT_BUSHY, NULL, "o0/12/34/56/78/9A/BC/DEF/c/c"},
	{DS_LAYOUT_BUSHY, NULL, "t01/23/45/6789ABCDEF"},
	{DS_LAYOUT_BUSHY, NULL, "t0/12/34/5/6789ABCDEF"},
	{DS_LAYOUT_BUSHY, NULL, "x/oid/x"},
	{DS_LAYOUT_BUSHY, NULL, "x.oid"},
	{DS_LAYOUT_BUSHY, NULL, "A/x/oid"},
	{DS_LAYOUT_BUSHY, NULL, "o0123456789ABCDEF/c"},
	{DS_LAYOUT_CHUNKY, NULL, "o012/345/678/9AB/CDE/F.c"},
	{DS_LAYOUT_CHUNKY, NULL, "o01/2345/678/9AB/CDEF.c"},
	{DS_LAYOUT_CHUNKY, NULL, "o012/345/678/9ABC/DEF.c"},
	{DS_LAYOUT_CHUNKY, NULL, "o012/345/678/9AB/CDEF/c"},
	{DS_LAYOUT_CHUNKY, NULL, "o012345/678/9AB/CDEF.c"},
	{DS_LAYOUT_CHUNKY, NULL, "t040D44.B2249CA6AA"},
	{DS_LAYOUT_CHUNKY, NULL, "t040/D44/B2249CA6AA"},
	{DS_LAYOUT_CHUNKY, NULL, "t04/0D44.B2249CA6AA"},
	{DS_LAYOUT_CHUNKY, NULL, "x.oid"},
	{DS_LAYOUT_CHUNKY, NULL, "x//oid"},
	{DS_LAYOUT_LAWN, NULL, "o0123456789ABCDEF.c"},
	{DS_LAYOUT_LAWN, NULL, "o0123456789ABCDEF/c/"},
	{DS_LAYOUT_LAWN, NULL, "o0123456789ABCDEF//c"},
	{DS_LAYOUT_LAWN, NULL, "x/o/id"},
	{DS_LAYOUT_LAWN, NULL, "x.oid"},
	{DS_LAYOUT_FLAT, NULL, "x/oid"},
	{DS_LAYOUT_FLAT, NULL, "sub/x.oid"},
	{DS_LAYOUT_FLAT, NULL, "o0123456789ABCDEF/c"},
	/* leading, trailing and doubled slashes; dots */
	{DS_LAYOUT_BUSHY, NULL, "/x/oid"},
	{DS_LAYOUT_BUSHY, NULL, "x/oid/"},
	{DS_LAYOUT_BUSHY, NULL, "./x/oid"},
	{DS_LAYOUT_BUSHY, NULL, "x/./oid"},
	{DS_LAYOUT_BUSHY, NULL, "../x/oid"},
	{DS_LAYOUT_BUSHY, NULL, "x/../x/oid"},
	{DS_LAYOUT_BUSHY, NULL, "x/.."},
	{DS_LAYOUT_BUSHY, NULL, ".."},
	{DS_LAYOUT_CHUNKY, NULL, "/x/oid"},
	{DS_LAYOUT_CHUNKY, NULL, "x/oid/"},
	{DS_LAYOUT_CHUNKY, NULL, "../t040/D44.B2249CA6AA"},
	{DS_LAYOUT_LAWN, NULL, "/x/oid"},
	{DS_LAYOUT_LAWN, NULL, "../oid"},
	{DS_LAYOUT_LAWN, NULL, "x/.."},
	{DS_LAYOUT_FLAT, NULL, "/x.oid"},
	{DS_LAYOUT_FLAT, NULL, "x.oid/"},
	{DS_LAYOUT_FLAT, NULL, "./x.oid"},
	{DS_LAYOUT_FLAT, NULL, ".."},
	{DS_LAYOUT_FLAT, NULL, "."},
	{DS_LAYOUT_FLAT, NULL, ""},
	{DS_LAYOUT_BUSHY, NULL, ""},
	{DS_LAYOUT_BUSHY, NULL, "/"},
	/* pack leftovers and stray files */
	{DS_LAYOUT_BUSHY, NULL,
	 "o0/00/00/00/00/00/00/000/040D44B20DE94BEE-1795671498-deleted"},
	{DS_LAYOUT_BUSHY, NULL, "t0/40/D44/B20DEBD800-1795671498-deleted"},
	{DS_LAYOUT_BUSHY, NULL, "x/packed-1795671498-deleted"},
	{DS_LAYOUT_FLAT, NULL,
	 "o0000000000000000.040D44B224CA8E22-1795671495-deleted"},
	{DS_LAYOUT_FLAT, NULL, "t040D44.B224CA8E22-1795671495-deleted"},
	{DS_LAYOUT_FLAT, NULL, "x.serial~"},
	{DS_LAYOUT_FLAT, NULL, ".x.serial.swp"},
	{DS_LAYOUT_FLAT, NULL, "x.serial\n"},
	{DS_LAYOUT_FLAT, NULL, "x.seria\xc3\xa9"},
	{DS_LAYOUT_BUSHY, NULL, "o0/12/34/56/78/9A/BC/DEF/c.tmp"},
	{DS_LAYOUT_BUSHY, NULL, "o0/12/34/56/78/9A/BC/DEF/d"},
	{DS_LAYOUT_LAWN, NULL, "o0123456789ABCDEF/0123456789ABCDE"},
	{DS_LAYOUT_CHUNKY, NULL, "o012/345/678/9AB/CDEF.0123456789ABCDEF0"},
	{DS_LAYOUT_FLAT, NULL, "o0123456789ABCDEF.0123456789ABCDEF.c"},
	/* a valid path in another layout */
	{DS_LAYOUT_CHUNKY, NULL, "o0/12/34/56/78/9A/BC/DEF/c"},
	{DS_LAYOUT_LAWN, NULL, "o0/12/34/56/78/9A/BC/DEF/c"},
	{DS_LAYOUT_BUSHY, NULL, "o012/345/678/9AB/CDEF.c"},
	{DS_LAYOUT_BUSHY, NULL, "t012345/6789ABCDEF"},
	{DS_LAYOUT_FLAT, NULL, "t0/40/D44/B2249CA6AA"},
	/* far too long */
	{DS_LAYOUT_FLAT, NULL,
	 "o0123456789ABCDEF.0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"
	 "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"},
};

static void
test_refused_paths(void **state)
{
	char name[DS_NAME_MAX];
	ds_error err;

	(void)state;
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		const struct example *e = &refused[i];
		int rc;

		ds_error_clear(&err);
		strcpy(name, "unchanged");
		rc = ds_layout_path_to_name(e->layout, e->path, name,
		                            sizeof(name), &err);
		if (rc != DS_EINVAL)
			fail_msg("%s path \"%s\" accepted as %s",
			         ds_layout_str(e->layout), e->path, name);
		assert_int_equal(err.status, DS_EINVAL);
		assert_string_equal(name, "unchanged");
		/* the message names the layout and says what is wrong */
		assert_non_null(strstr(err.msg, ds_layout_str(e->layout)));
		assert_non_null(strstr(err.msg, "not a database file"));
	}
	assert_int_equal(ds_layout_path_to_name(DS_LAYOUT_BUSHY, NULL, name,
	                                        sizeof(name), &err),
	                 DS_EINVAL);
	assert_int_equal(ds_layout_path_to_name((ds_layout)9, "x/oid", name,
	                                        sizeof(name), &err),
	                 DS_EINVAL);
	/* the message quotes the path, with unprintable bytes replaced */
	assert_int_equal(ds_layout_path_to_name(DS_LAYOUT_FLAT, "x.serial\n",
	                                        name, sizeof(name), &err),
	                 DS_EINVAL);
	assert_non_null(strstr(err.msg, "\"x.serial?\""));
	assert_null(strchr(err.msg, '\n'));
}

static void
test_bad_names_and_small_buffers(void **state)
{
	char out[DS_RELPATH_MAX], small[8];
	ds_error err;

	(void)state;
	for (size_t l = 0; l < 4; l++) {
		assert_int_equal(ds_layout_name_to_path(all_layouts[l], "x.oids",
		                                        out, sizeof(out), &err),
		                 DS_EINVAL);
		assert_non_null(strstr(err.msg, "x.oids"));
		assert_int_equal(ds_layout_name_to_path(all_layouts[l], NULL, out,
		                                        sizeof(out), &err),
		                 DS_EINVAL);
		assert_int_equal(ds_layout_name_to_path(all_layouts[l],
		                                        "o0123456789ABCDEF.c",
		                                        small, sizeof(small),
		                                        &err),
		                 DS_EINVAL);
		assert_int_equal(ds_layout_name_to_path(all_layouts[l], "x.oid",
		                                        out, 5, &err),
		                 DS_EINVAL);
		assert_int_equal(ds_layout_name_to_path(all_layouts[l], "x.oid",
		                                        out, 6, &err),
		                 DS_OK);
		assert_int_equal(ds_layout_path_to_name(all_layouts[l],
		                                        l == 3 ? "x.serial" :
		                                        "x/serial", small, 8,
		                                        &err),
		                 DS_EINVAL);
		assert_int_equal(ds_layout_path_to_name(all_layouts[l],
		                                        l == 3 ? "x.serial" :
		                                        "x/serial", small, 8, NULL),
		                 DS_EINVAL);
	}
	assert_int_equal(ds_layout_name_to_path((ds_layout)7, "x.oid", out,
	                                        sizeof(out), &err),
	                 DS_EINVAL);
}

static void
random_name(char out[DS_NAME_MAX])
{
	switch (rng_next() % 7) {
	case 0:
		ds_name_pointer(rng_id(), out);
		break;
	case 1:
	case 2:
		ds_name_transaction(rng_id(), out);
		break;
	case 3:
		strcpy(out, (const char *[]){"x.serial", "x.oid",
		                             "x.packed"}[rng_next() % 3]);
		break;
	default:
		ds_name_revision(rng_id(), rng_id(), out);
	}
}

/* Random names: name -> path -> name in every layout; a path of one
 * layout is accepted by another exactly when the two paths are equal. */
static void
test_random_round_trips(void **state)
{
	(void)state;
	rng_seed();
	for (int i = 0; i < 50000; i++) {
		char name[DS_NAME_MAX], back[DS_NAME_MAX];
		char path[4][DS_RELPATH_MAX];
		ds_error err;

		random_name(name);
		assert_true(ds_name_valid(name));
		for (int l = 0; l < 4; l++) {
			if (ds_layout_name_to_path(all_layouts[l], name, path[l],
			                           sizeof(path[l]), &err) != DS_OK)
				fail_msg("%s", err.msg);
			assert_true(strlen(path[l]) < DS_RELPATH_MAX);
			assert_int_equal(ds_layout_path_to_name(all_layouts[l],
			                                        path[l], back,
			                                        sizeof(back), &err),
			                 DS_OK);
			assert_string_equal(back, name);
		}
		for (int l = 0; l < 4; l++) {
			for (int k = 0; k < 4; k++) {
				int rc = ds_layout_path_to_name(all_layouts[l],
				                                path[k], back,
				                                sizeof(back), NULL);
				if (strcmp(path[l], path[k]) == 0) {
					assert_int_equal(rc, DS_OK);
					assert_string_equal(back, name);
				} else {
					assert_int_equal(rc, DS_EINVAL);
				}
			}
		}
	}
}

/* Random damage to valid paths: whatever is accepted must be exactly the
 * path of the name it maps to (so nothing is ever accepted loosely). */
static void
test_mutated_paths(void **state)
{
	static const char alphabet[] = "/.0123456789ABCDEFabcdefotxc-~ \\";
	int accepted = 0, refused_n = 0;

	(void)state;
	rng_seed();
	for (int i = 0; i < 50000; i++) {
		char name[DS_NAME_MAX], path[DS_RELPATH_MAX + 4];
		char back[DS_NAME_MAX], again[DS_RELPATH_MAX];
		ds_layout l = all_layouts[rng_next() % 4];
		size_t n, pos;
		ds_error err;

		random_name(name);
		assert_int_equal(ds_layout_name_to_path(l, name, path,
		                                        DS_RELPATH_MAX, &err),
		                 DS_OK);
		n = strlen(path);
		pos = rng_next() % (n + 1);
		switch (rng_next() % 3) {
		case 0: /* replace one character */
			if (pos == n)
				pos--;
			path[pos] = alphabet[rng_next() % (sizeof(alphabet) - 1)];
			break;
		case 1: /* insert one */
			memmove(path + pos + 1, path + pos, n - pos + 1);
			path[pos] = alphabet[rng_next() % (sizeof(alphabet) - 1)];
			break;
		default: /* delete one */
			if (pos == n)
				pos--;
			memmove(path + pos, path + pos + 1, n - pos);
		}
		if (ds_layout_path_to_name(l, path, back, sizeof(back), &err) ==
		    DS_OK) {
			accepted++;
			assert_true(ds_name_valid(back));
			assert_int_equal(ds_layout_name_to_path(l, back, again,
			                                        sizeof(again), &err),
			                 DS_OK);
			assert_string_equal(again, path);
		} else {
			refused_n++;
			assert_int_equal(err.status, DS_EINVAL);
		}
	}
	/* hex digits replaced by hex digits stay valid names: both happen */
	assert_true(accepted > 0);
	assert_true(refused_n > 0);
}

/* The pack-leftover rule that pack, check and the master side share. */
static void
test_leftover(void **state)
{
	long long when;

	(void)state;
	assert_int_equal(ds_layout_leftover("A/12/o0000000000000012.c-"
	                 "1733400000-deleted", &when), DS_LEFTOVER);
	assert_int_equal(when, 1733400000LL);
	assert_int_equal(ds_layout_leftover("x.serial-5-deleted", &when),
	                 DS_LEFTOVER);
	assert_int_equal(when, 5);
	assert_int_equal(ds_layout_leftover("a-1-deleted", NULL), DS_LEFTOVER);
	/* too many digits for a time: as old as can be */
	assert_int_equal(ds_layout_leftover("a-99999999999999999999-deleted",
	                                    &when), DS_LEFTOVER);
	assert_int_equal(when, 0);
	/* "-deleted" at the end, not "<name>-<digits>-deleted" */
	static const char *const odd[] = {
		"-deleted", "1-deleted", "-1-deleted", "a1-deleted",
		"a-deleted", "a--deleted", "a-1x-deleted", "A/b/c-12a-deleted",
		"dir-1-deleted/x-deleted",
	};
	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		when = 7;
		assert_int_equal(ds_layout_leftover(odd[i], &when),
		                 DS_LEFTOVER_ODD);
		assert_int_equal(when, 0);
	}
	static const char *const none[] = {
		"", "deleted", "a-1-deleted.c", "a-1-Deleted", "a-1-deleted/",
		"A/a-1-deleted/o0000000000000012.c", "o0000000000000001.c",
	};
	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
		assert_int_equal(ds_layout_leftover(none[i], NULL),
		                 DS_LEFTOVER_NONE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_parse_and_str),
		cmocka_unit_test(test_name_valid),
		cmocka_unit_test(test_name_builders),
		cmocka_unit_test(test_examples),
		cmocka_unit_test(test_refused_paths),
		cmocka_unit_test(test_bad_names_and_small_buffers),
		cmocka_unit_test(test_random_round_trips),
		cmocka_unit_test(test_mutated_paths),
		cmocka_unit_test(test_leftover),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
