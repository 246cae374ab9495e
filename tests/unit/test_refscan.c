/*
 * test_refscan.c - ds_refscan against ZODB.serialize.referencesf itself:
 * tests/fixtures/refscan.json (recorded by record-refscan.py with the
 * original's ZODB) lists, for every object revision of two fixture
 * storages and for hand-made and ZODB-made records in every pickle
 * protocol and persistent id form, what referencesf returned or that it
 * refused the record. Each must come out the same here: the same oids in
 * the same order (duplicates included), or a DS_ECORRUPT refusal.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "helper_fixture.h"
#include "internal.h"

struct got {
	char *hex;     /* "OID1 OID2 ..." upper hex, space separated */
	size_t len, cap;
	int stop_after; /* >0: return 7 at that reference */
	int n;
};

static int
collect(const unsigned char *oid, size_t len, void *ctx, ds_error *err)
{
	struct got *g = ctx;
	size_t need = g->len + 2 * len + 2;

	if (g->stop_after > 0 && ++g->n == g->stop_after)
		return ds_error_set(err, 7, "stopped");
	if (need > g->cap) {
		g->cap = need * 2;
		g->hex = realloc(g->hex, g->cap);
		assert_non_null(g->hex);
	}
	if (g->len > 0)
		g->hex[g->len++] = ' ';
	ds_hex_upper(oid, len, g->hex + g->len);
	g->len += 2 * len;
	g->hex[g->len] = '\0';
	return 0;
}

static char *
expected_hex(json_t *refs)
{
	size_t i, n = json_array_size(refs), cap = 1;
	char *s;

	for (i = 0; i < n; i++)
		cap += strlen(json_string_value(json_array_get(refs, i))) + 1;
	s = calloc(1, cap);
	assert_non_null(s);
	for (i = 0; i < n; i++) {
		if (i > 0)
			strcat(s, " ");
		strcat(s, json_string_value(json_array_get(refs, i)));
	}
	return s;
}

/* Scan buf and compare with refs (NULL: referencesf refused it). */
static void
check_one(const char *name, const unsigned char *buf, size_t len,
          json_t *refs)
{
	struct got g;
	ds_error err;
	int rc;

	memset(&g, 0, sizeof(g));
	ds_error_clear(&err);
	rc = ds_refscan(buf, len, collect, &g, &err);
	if (refs == NULL) {
		if (rc != DS_ECORRUPT)
			fail_msg("%s: referencesf refuses it, ds_refscan "
			         "returned %d (%s)", name, rc, g.hex ? g.hex : "");
		assert_true(strstr(err.msg, "at byte") != NULL);
	} else {
		char *want = expected_hex(refs);
		if (rc != DS_OK)
			fail_msg("%s: ds_refscan refused: %s", name, err.msg);
		if (strcmp(want, g.hex ? g.hex : "") != 0)
			fail_msg("%s: want [%s] got [%s]", name, want,
			         g.hex ? g.hex : "");
		free(want);
	}
	free(g.hex);
}

static void
test_cases(void **state)
{
	json_t *doc = fixture_json_load("refscan.json");
	json_t *cases = json_object_get(doc, "cases"), *c;
	size_t i, nok = 0, nbad = 0;

	(void)state;
	assert_true(json_array_size(cases) > 100);
	json_array_foreach(cases, i, c) {
		const char *hex = json_string_value(json_object_get(c, "pickle"));
		size_t n = strlen(hex) / 2;
		unsigned char *buf = malloc(n ? n : 1);
		json_t *refs = json_object_get(c, "refs");

		assert_non_null(buf);
		assert_int_equal(ds_hex_decode(hex, buf, n), DS_OK);
		check_one(json_string_value(json_object_get(c, "name")), buf, n,
		          refs);
		if (refs != NULL)
			nok++;
		else
			nbad++;
		free(buf);
	}
	/* both kinds are really exercised */
	assert_true(nok > 50);
	assert_true(nbad > 10);
	json_decref(doc);
}

static void
test_fixture_storages(void **state)
{
	json_t *doc = fixture_json_load("refscan.json");
	json_t *st = json_object_get(doc, "storages"), *files, *refs;
	const char *name, *rel;
	size_t total = 0, withrefs = 0;

	(void)state;
	json_object_foreach(st, name, files) {
		char home[4096];
		fixture_home(name, home, sizeof(home));
		json_object_foreach(files, rel, refs) {
			char path[8192];
			FILE *f;
			long sz;
			unsigned char *buf;

			snprintf(path, sizeof(path), "%s/%s", home, rel);
			f = fopen(path, "rb");
			if (f == NULL)
				fail_msg("cannot open %s", path);
			fseek(f, 0, SEEK_END);
			sz = ftell(f);
			fseek(f, 0, SEEK_SET);
			assert_true(sz > DS_OBJ_HEADER);
			buf = malloc((size_t)sz);
			assert_non_null(buf);
			assert_int_equal(fread(buf, 1, (size_t)sz, f), (size_t)sz);
			fclose(f);
			check_one(path, buf + DS_OBJ_HEADER,
			          (size_t)sz - DS_OBJ_HEADER, refs);
			total++;
			if (json_array_size(refs) > 0)
				withrefs++;
			free(buf);
		}
	}
	assert_true(total > 1000);
	assert_true(withrefs > 100);
	json_decref(doc);
}

/* The callback's status stops the scan and comes back unchanged. */
static void
test_callback_stops(void **state)
{
	/* protocol 3: two oid references */
	static const unsigned char p[] =
		"\x80\x03" "N." "\x80\x03" "(C\x08\0\0\0\0\0\0\0\x01Q"
		"C\x08\0\0\0\0\0\0\0\x02Qt.";
	struct got g;
	ds_error err;

	(void)state;
	memset(&g, 0, sizeof(g));
	g.stop_after = 2;
	assert_int_equal(ds_refscan(p, sizeof(p) - 1, collect, &g, &err), 7);
	assert_string_equal(g.hex, "0000000000000001");
	free(g.hex);
	memset(&g, 0, sizeof(g));
	assert_int_equal(ds_refscan(p, sizeof(p) - 1, collect, &g, &err),
	                 DS_OK);
	assert_string_equal(g.hex, "0000000000000001 0000000000000002");
	free(g.hex);
	/* NULL input is an empty record: refused, not a crash */
	assert_int_equal(ds_refscan(NULL, 0, collect, &g, &err), DS_ECORRUPT);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_fixture_storages),
		cmocka_unit_test(test_callback_stops),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
