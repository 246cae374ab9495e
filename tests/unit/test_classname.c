/*
 * test_classname.c - ds_classname_get against the original's own
 * DirectoryStorage.utils.class_name_from_pickle: tests/fixtures/
 * refscan.json ("classes", recorded by record-refscan.py in the reference
 * environment) holds the name it read, or null, for every record of
 * "cases" (protocols 0 to 3, ZODB-made and hand-made records), of
 * "class_forms" (class pickles of other shapes: ZODB 3's "((U" form,
 * tuples of names, what the unpickler refuses) and for every object
 * revision of the fixture storages. Each must come out the same.
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

/* Compare what we read from buf with the recording (a string, or null). */
static void
check_class(const char *what, const unsigned char *buf, size_t n,
            const json_t *want)
{
	char got[1024];
	int rc = ds_classname_get(buf, n, got, sizeof(got));

	if (json_is_null(want)) {
		if (rc != DS_ENOTFOUND)
			fail_msg("%s: the original reads no class name, we "
			         "read \"%s\"", what, got);
		assert_string_equal(got, "");
		return;
	}
	assert_non_null(json_string_value(want));
	if (rc != DS_OK)
		fail_msg("%s: the original reads \"%s\", we read none", what,
		         json_string_value(want));
	if (strcmp(got, json_string_value(want)) != 0)
		fail_msg("%s: the original reads \"%s\", we read \"%s\"", what,
		         json_string_value(want), got);
}

static unsigned char *
unhex(const char *hex, size_t *n)
{
	unsigned char *buf;

	*n = strlen(hex) / 2;
	buf = malloc(*n ? *n : 1);
	assert_non_null(buf);
	assert_int_equal(ds_hex_decode(hex, buf, *n), DS_OK);
	return buf;
}

/* One list of records ("cases" or "class_forms"), each looked up in
 * "classes" as PREFIX + name. Returns how many had a name. */
static size_t
check_list(json_t *doc, const char *list, const char *prefix, size_t *total)
{
	json_t *classes = json_object_get(doc, "classes"), *c;
	size_t i, named = 0;

	json_array_foreach(json_object_get(doc, list), i, c) {
		char key[256];
		size_t n;
		const char *name = json_string_value(json_object_get(c, "name"));
		unsigned char *buf = unhex(json_string_value(
		                               json_object_get(c, "pickle")), &n);
		json_t *want;

		snprintf(key, sizeof(key), "%s%s", prefix, name);
		want = json_object_get(classes, key);
		if (want == NULL)
			fail_msg("refscan.json: no class recorded for %s", key);
		check_class(key, buf, n, want);
		if (!json_is_null(want))
			named++;
		(*total)++;
		free(buf);
	}
	return named;
}

static void
test_recorded_records(void **state)
{
	json_t *doc = fixture_json_load("refscan.json");
	size_t total = 0, named;

	(void)state;
	named = check_list(doc, "cases", "", &total);
	assert_true(total > 250);
	assert_true(named > 200);
	total = 0;
	named = check_list(doc, "class_forms", "form-", &total);
	assert_true(total >= 19);
	/* both outcomes are exercised among the odd forms */
	assert_true(named >= 8 && named < total);
	json_decref(doc);
}

static void
test_fixture_storages(void **state)
{
	json_t *doc = fixture_json_load("refscan.json");
	json_t *classes = json_object_get(doc, "classes"), *want;
	const char *key;
	size_t total = 0, mapping = 0;

	(void)state;
	json_object_foreach(classes, key, want) {
		char home[4096], path[8192], store[256];
		const char *slash = strchr(key, '/');
		unsigned char *buf;
		size_t len;
		ds_error err;

		if (slash == NULL)
			continue;     /* a case's or a form's, checked above */
		snprintf(store, sizeof(store), "%.*s", (int)(slash - key), key);
		fixture_home(store, home, sizeof(home));
		snprintf(path, sizeof(path), "%s/%s", home, slash + 1);
		assert_int_equal(ds_file_read(path, 0, &buf, &len, &err), DS_OK);
		assert_true(len > DS_OBJ_HEADER);
		check_class(path, buf + DS_OBJ_HEADER, len - DS_OBJ_HEADER,
		            want);
		if (json_is_string(want) &&
		    strcmp(json_string_value(want),
		           "persistent.mapping.PersistentMapping") == 0)
			mapping++;
		total++;
		free(buf);
	}
	assert_true(total > 1000);
	assert_true(mapping > 1000);
	json_decref(doc);
}

/* What the recording cannot show: a name longer than the buffer, and
 * empty or absurd inputs, give DS_ENOTFOUND and "", never an overrun. */
static void
test_bounds(void **state)
{
	static const unsigned char global[] =
		"\x80\x03" "cpersistent.mapping\nPersistentMapping\nq\x00.";
	char small[8], ok[64];

	(void)state;
	memset(small, 'x', sizeof(small));
	assert_int_equal(ds_classname_get(global, sizeof(global) - 1, small,
	                                  sizeof(small)), DS_ENOTFOUND);
	assert_string_equal(small, "");
	assert_int_equal(ds_classname_get(global, sizeof(global) - 1, ok,
	                                  sizeof(ok)), DS_OK);
	assert_string_equal(ok, "persistent.mapping.PersistentMapping");
	assert_int_equal(ds_classname_get(global, sizeof(global) - 1, ok, 0),
	                 DS_ENOTFOUND);
	assert_int_equal(ds_classname_get(NULL, 0, ok, sizeof(ok)),
	                 DS_ENOTFOUND);
	assert_string_equal(ok, "");
	/* PROTO alone: the unpickler's EOFError */
	assert_int_equal(ds_classname_get(global, 2, ok, sizeof(ok)), DS_OK);
	assert_string_equal(ok, ".");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_recorded_records),
		cmocka_unit_test(test_fixture_storages),
		cmocka_unit_test(test_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
