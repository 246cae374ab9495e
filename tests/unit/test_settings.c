/*
 * test_settings.c - config/settings parsing (as Python 3.11's configparser
 * with case-sensitive keys parses it: the expected values below were
 * checked against that parser), ds_config_load on every fixture written by
 * the original, and every refusal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "helper_fixture.h"
#include "internal.h"

static ds_settings *
parse_ok(const char *text)
{
	ds_settings *s = NULL;
	ds_error err;

	ds_error_clear(&err);
	if (ds_settings_parse(text, strlen(text), "S", &s, &err) != DS_OK)
		fail_msg("parse failed: %s", err.msg);
	assert_non_null(s);
	return s;
}

/* Parse must fail with DS_ECONFIG and a message containing want. */
static void
parse_refused(const char *text, const char *want)
{
	ds_settings *s = (ds_settings *)0x1;
	ds_error err;
	int rc;

	ds_error_clear(&err);
	rc = ds_settings_parse(text, strlen(text), "S", &s, &err);
	assert_int_equal(rc, DS_ECONFIG);
	assert_int_equal(err.status, DS_ECONFIG);
	assert_null(s);
	if (strstr(err.msg, want) == NULL)
		fail_msg("message '%s' lacks '%s'", err.msg, want);
	assert_non_null(strstr(err.msg, "S:"));
}

static void
test_delimiters_and_case(void **state)
{
	ds_settings *s = parse_ok("[s]\na = b: c\nd: e = f\nKey: 1\nkey: 2\n"
	                          "  ; indented comment\nk : : v\n");
	(void)state;
	assert_string_equal(ds_settings_get(s, "s", "a"), "b: c");
	assert_string_equal(ds_settings_get(s, "s", "d"), "e = f");
	/* case sensitive keys: two options */
	assert_string_equal(ds_settings_get(s, "s", "Key"), "1");
	assert_string_equal(ds_settings_get(s, "s", "key"), "2");
	assert_null(ds_settings_get(s, "s", "KEY"));
	assert_null(ds_settings_get(s, "S", "key"));
	assert_string_equal(ds_settings_get(s, "s", "k"), ": v");
	assert_null(ds_settings_get(s, "s", "; indented comment"));
	assert_null(ds_settings_get(s, "nosuch", "a"));
	ds_settings_free(s);
}

static void
test_continuations(void **state)
{
	ds_settings *s;
	(void)state;

	s = parse_ok("[s]\na: one\n  two\n\n   three\n# comment\n  four\n\n\n"
	             "b: x   \n");
	assert_string_equal(ds_settings_get(s, "s", "a"),
	                    "one\ntwo\n\nthree\nfour");
	assert_string_equal(ds_settings_get(s, "s", "b"), "x");
	ds_settings_free(s);

	/* trailing empty lines and comments do not stay in the value */
	s = parse_ok("[s]\na: one\n\n#c\n\n");
	assert_string_equal(ds_settings_get(s, "s", "a"), "one");
	ds_settings_free(s);

	/* an indented header after an option is part of its value */
	s = parse_ok("[s]\nk: v\n  [t]\n");
	assert_string_equal(ds_settings_get(s, "s", "k"), "v\n[t]");
	ds_settings_free(s);

	/* right after a header, indentation does not continue anything */
	s = parse_ok("[s]\n  [t]\nk: v\n");
	assert_null(ds_settings_get(s, "s", "k"));
	assert_string_equal(ds_settings_get(s, "t", "k"), "v");
	ds_settings_free(s);

	/* indentation counts relative to the option line */
	s = parse_ok("  [s]\n  k: v\n   c\n  k2: w\n");
	assert_string_equal(ds_settings_get(s, "s", "k"), "v\nc");
	assert_string_equal(ds_settings_get(s, "s", "k2"), "w");
	ds_settings_free(s);

	/* empty first piece, tab indentation, CRLF line ends */
	s = parse_ok("[s]\nk:\n  v\nm: v\n\t\tw\n");
	assert_string_equal(ds_settings_get(s, "s", "k"), "\nv");
	assert_string_equal(ds_settings_get(s, "s", "m"), "v\nw");
	ds_settings_free(s);
	s = parse_ok("[s]\r\nk: v\r\n  cont\r\n");
	assert_string_equal(ds_settings_get(s, "s", "k"), "v\ncont");
	ds_settings_free(s);
}

static void
test_sections(void **state)
{
	ds_settings *s;
	(void)state;

	/* header runs from the first '[' to the last ']' */
	s = parse_ok("; lead\n# lead\n\n[a]b]c\nk:v\n");
	assert_string_equal(ds_settings_get(s, "a]b", "k"), "v");
	ds_settings_free(s);

	/* DEFAULT: fallbacks for every section, may be repeated */
	s = parse_ok("[DEFAULT]\nd: 1\n[s]\nk: v\nd: own\n[t]\n[DEFAULT]\n"
	             "e: 2\n");
	assert_string_equal(ds_settings_get(s, "s", "d"), "own");
	assert_string_equal(ds_settings_get(s, "t", "d"), "1");
	assert_string_equal(ds_settings_get(s, "t", "e"), "2");
	assert_string_equal(ds_settings_get(s, "DEFAULT", "e"), "2");
	assert_null(ds_settings_get(s, "nosuch", "d"));
	ds_settings_free(s);

	/* an empty file has nothing, and is not an error */
	s = parse_ok("");
	assert_null(ds_settings_get(s, "s", "k"));
	ds_settings_free(s);
}

static void
test_syntax_errors(void **state)
{
	(void)state;
	parse_refused("x: 1\n[s]\n", "line 1");
	parse_refused("# c\n\nx: 1\n[s]\n", "line 3");
	parse_refused("[s]\na: 1\n[s]\n", "line 3: section [s] already exists");
	parse_refused("[s]\na: 1\na = 2\n",
	              "line 3: key 'a' in section [s] already exists");
	parse_refused("[DEFAULT]\na: 1\na: 2\n", "line 3: key 'a'");
	parse_refused("[s]\nnodelim\n", "line 2: 'nodelim'");
	parse_refused("[s]\n = v\n", "line 2");
	parse_refused("[s]\nk: v\n[]\n", "line 3: '[]'");
	{
		static const char nul[] = "[s]\nk: v\0w\n";
		ds_settings *s = (ds_settings *)0x1;
		ds_error err;
		assert_int_equal(ds_settings_parse(nul, sizeof(nul) - 1, "S", &s,
		                                   &err), DS_ECONFIG);
		assert_null(s);
		assert_non_null(strstr(err.msg, "S: contains a NUL byte"));
	}
}

static void
test_get_int(void **state)
{
	ds_settings *s = parse_ok("[n]\na: 42\nb: -7\nc: 1_000\nd: 1.5\n"
	                          "e: abc\nf: 99999999999999999999999\ng:\n"
	                          "h: +3\ni: 1__0\nj: _1\n");
	ds_error err;
	long v;
	(void)state;

	ds_error_clear(&err);
	assert_int_equal(ds_settings_get_int(s, "n", "a", 5, &v, &err), DS_OK);
	assert_int_equal(v, 42);
	assert_int_equal(ds_settings_get_int(s, "n", "b", 5, &v, &err), DS_OK);
	assert_int_equal(v, -7);
	assert_int_equal(ds_settings_get_int(s, "n", "c", 5, &v, &err), DS_OK);
	assert_int_equal(v, 1000);
	assert_int_equal(ds_settings_get_int(s, "n", "h", 5, &v, &err), DS_OK);
	assert_int_equal(v, 3);
	assert_int_equal(ds_settings_get_int(s, "n", "absent", 5, &v, &err),
	                 DS_OK);
	assert_int_equal(v, 5);
	assert_int_equal(ds_settings_get_int(s, "none", "a", -1, &v, &err),
	                 DS_OK);
	assert_int_equal(v, -1);
	const char *bad[] = { "d", "e", "f", "g", "i", "j" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ds_error_clear(&err);
		assert_int_equal(ds_settings_get_int(s, "n", bad[i], 0, &v, &err),
		                 DS_ECONFIG);
		assert_non_null(strstr(err.msg, "not an integer"));
		assert_non_null(strstr(err.msg, "S: [n] "));
	}
	ds_settings_free(s);
	ds_settings_free(NULL);
}

/* The original's own settings file: every value it writes. */
static void
test_fixture_settings(void **state)
{
	char home[4096], path[4200];
	ds_settings *s = NULL;
	ds_error err;
	(void)state;

	fixture_home("bushy-master", home, sizeof(home));
	snprintf(path, sizeof(path), "%s/config/settings", home);
	ds_error_clear(&err);
	assert_int_equal(ds_settings_load(path, &s, &err), DS_OK);
	static const char *const want[][3] = {
		{ "structure", "format", "bushy" },
		{ "structure", "version", "0.11" },
		{ "md5policy", "write", "1" }, { "md5policy", "read", "1" },
		{ "md5policy", "overwrite", "0" }, { "md5policy", "undolog", "1" },
		{ "md5policy", "undo", "1" }, { "md5policy", "history", "1" },
		{ "md5policy", "pack", "1" },
		{ "journal", "flush_interval", "3600" },
		{ "journal", "flush_file_threshold", "2000" },
		{ "journal", "flush_transaction_threshold", "200" },
		{ "journal", "backlog", "3" },
		{ "storage", "classname", "Full" },
		{ "storage", "history_timeout", "10" },
		{ "storage", "delay_delete", "864000" },
		{ "storage", "min_pack_time", "600" },
		{ "storage", "check_dangling_references", "1" },
		{ "storage", "keep_policy", "detailed" },
		{ "filesystem", "sync", "1" },
		{ "filesystem", "quick_shutdown", "0" },
		{ "windows", "mark", "attributes" },
		{ "posix", "mark", "permissions" },
		{ "posix", "dirsync", "1" },
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const char *v = ds_settings_get(s, want[i][0], want[i][1]);
		if (v == NULL || strcmp(v, want[i][2]) != 0)
			fail_msg("[%s] %s: got %s, want %s", want[i][0],
			         want[i][1], v ? v : "(absent)", want[i][2]);
	}
	/* comments are not keys */
	assert_null(ds_settings_get(s, "keepclass", "Full.Class.Name"));
	ds_settings_free(s);

	snprintf(path, sizeof(path), "%s/config/nosuch", home);
	s = (ds_settings *)0x1;
	assert_int_equal(ds_settings_load(path, &s, &err), DS_ENOTFOUND);
	assert_null(s);
	assert_non_null(strstr(err.msg, path));
}

/* ds_config_load agrees with the manifest of every fixture. */
static void
test_config_fixtures(void **state)
{
	size_t n;
	char **names = fixture_names(&n);
	(void)state;

	assert_true(n >= 8);
	for (size_t i = 0; i < n; i++) {
		char home[4096];
		json_t *m = fixture_manifest_load(names[i]);
		ds_config c;
		ds_error err;
		ds_layout want;

		fixture_home(names[i], home, sizeof(home));
		ds_error_clear(&err);
		memset(&c, 0x55, sizeof(c));
		if (ds_config_load(home, &c, &err) != DS_OK)
			fail_msg("%s: %s", names[i], err.msg);
		assert_string_equal(c.identity, fixture_jstr(m, "identity"));
		assert_string_equal(c.classname, fixture_jstr(m, "classname"));
		assert_int_equal(ds_layout_parse(fixture_jstr(m, "format"), &want,
		                                 &err), DS_OK);
		assert_int_equal(c.layout, want);
		assert_int_equal(c.md5_write, 1);
		assert_int_equal(c.md5_read, 1);
		assert_int_equal(c.md5_overwrite, 0);
		assert_int_equal(c.md5_undolog, 1);
		assert_int_equal(c.md5_undo, 1);
		assert_int_equal(c.md5_history, 1);
		assert_int_equal(c.md5_pack, 1);
		assert_int_equal(c.flush_interval, 3600);
		assert_int_equal(c.flush_file_threshold, 2000);
		assert_int_equal(c.flush_transaction_threshold, 200);
		assert_int_equal(c.backlog, 3);
		assert_int_equal(c.sync, 1);
		assert_int_equal(c.quick_shutdown, 0);
		assert_int_equal(c.dirsync, 1);
		assert_int_equal(c.delay_delete, 864000);
		assert_int_equal(c.min_pack_time, 600);
		json_decref(m);
	}
	fixture_names_free(names);
}

/* A scratch home holding config/settings and config/identity. */
struct cfg_home {
	char *scratch;
	char home[4096];
};

static void
make_home(struct cfg_home *h, const char *settings, const char *identity)
{
	char path[4200];

	h->scratch = fixture_scratch_dir();
	snprintf(h->home, sizeof(h->home), "%s/home", h->scratch);
	assert_int_equal(mkdir(h->home, 0755), 0);
	snprintf(path, sizeof(path), "%s/config", h->home);
	assert_int_equal(mkdir(path, 0755), 0);
	if (settings != NULL) {
		snprintf(path, sizeof(path), "%s/config/settings", h->home);
		fixture_write_text(path, settings);
	}
	if (identity != NULL) {
		snprintf(path, sizeof(path), "%s/config/identity", h->home);
		fixture_write_text(path, identity);
	}
}

static void
drop_home(struct cfg_home *h)
{
	fixture_remove_tree(h->scratch);
	free(h->scratch);
}

#define ID "0123456789abcdef0123456789abcdef"
#define MINIMAL "[structure]\nformat: flat\nversion: 0.11\n[storage]\n" \
                "classname: Minimal\n"

/* Absent keys take the values the original's mkds writes. */
static void
test_config_defaults(void **state)
{
	struct cfg_home h;
	ds_config c;
	ds_error err;
	(void)state;

	make_home(&h, MINIMAL, ID "\nsecond line ignored\n");
	ds_error_clear(&err);
	if (ds_config_load(h.home, &c, &err) != DS_OK)
		fail_msg("%s", err.msg);
	assert_int_equal(c.layout, DS_LAYOUT_FLAT);
	assert_string_equal(c.classname, "Minimal");
	assert_string_equal(c.identity, ID);
	assert_int_equal(c.md5_write + c.md5_read + c.md5_undolog + c.md5_undo +
	                 c.md5_history + c.md5_pack, 6);
	assert_int_equal(c.md5_overwrite, 0);
	assert_int_equal(c.flush_interval, 3600);
	assert_int_equal(c.flush_file_threshold, 2000);
	assert_int_equal(c.flush_transaction_threshold, 200);
	assert_int_equal(c.backlog, 3);
	assert_int_equal(c.sync, 1);
	assert_int_equal(c.quick_shutdown, 0);
	assert_int_equal(c.dirsync, 1);
	assert_int_equal(c.delay_delete, 864000);
	assert_int_equal(c.min_pack_time, 600);
	drop_home(&h);

	/* values are read; no sync means no directory sync (the original) */
	make_home(&h, MINIMAL "window_size: 77\ndelay_delete: 0\n"
	          "[md5policy]\nread: 0\noverwrite: 1\n[journal]\nbacklog: 9\n"
	          "flush_interval: 5\n[filesystem]\nsync: 0\nquick_shutdown: 1\n"
	          "[posix]\ndirsync: 1\n", ID);
	if (ds_config_load(h.home, &c, &err) != DS_OK)
		fail_msg("%s", err.msg);
	assert_int_equal(c.md5_read, 0);
	assert_int_equal(c.md5_overwrite, 1);
	assert_int_equal(c.backlog, 9);
	assert_int_equal(c.flush_interval, 5);
	assert_int_equal(c.sync, 0);
	assert_int_equal(c.dirsync, 0);
	assert_int_equal(c.quick_shutdown, 1);
	assert_int_equal(c.delay_delete, 0);
	assert_int_equal(c.min_pack_time, 77);  /* 1.0a2's window_size */
	drop_home(&h);

	make_home(&h, MINIMAL "[posix]\ndirsync: 0\n", ID);
	if (ds_config_load(h.home, &c, &err) != DS_OK)
		fail_msg("%s", err.msg);
	assert_int_equal(c.sync, 1);
	assert_int_equal(c.dirsync, 0);
	drop_home(&h);
}

static void
config_refused(const char *settings, const char *identity, int status,
               const char *want1, const char *want2)
{
	struct cfg_home h;
	ds_config c;
	ds_error err;

	make_home(&h, settings, identity);
	ds_error_clear(&err);
	assert_int_equal(ds_config_load(h.home, &c, &err), status);
	assert_int_equal(err.status, status);
	if (strstr(err.msg, want1) == NULL ||
	    (want2 != NULL && strstr(err.msg, want2) == NULL))
		fail_msg("message '%s' lacks '%s' / '%s'", err.msg, want1,
		         want2 ? want2 : "");
	assert_non_null(strstr(err.msg, h.home));
	drop_home(&h);
}

static void
test_config_refusals(void **state)
{
	(void)state;
	config_refused("[structure]\nformat: bushy\nversion: 0.10\n[storage]\n"
	               "classname: Full\n", ID, DS_ECONFIG,
	               "config/settings: storage version is 0.10, this "
	               "program reads 0.11", NULL);
	config_refused("[structure]\nformat: bushy\n[storage]\n"
	               "classname: Full\n", ID, DS_ECONFIG,
	               "config/settings: no [structure] version", NULL);
	config_refused("[structure]\nformat: bushier\nversion: 0.11\n"
	               "[storage]\nclassname: Full\n", ID, DS_ECONFIG,
	               "config/settings: unknown format 'bushier'", NULL);
	config_refused("[structure]\nversion: 0.11\n[storage]\n"
	               "classname: Full\n", ID, DS_ECONFIG,
	               "config/settings: no [structure] format", NULL);
	config_refused("[structure]\nformat: flat\nversion: 0.11\n", ID,
	               DS_ECONFIG, "no [storage] classname", NULL);
	config_refused("[structure]\nformat: flat\nversion: 0.11\n[storage]\n"
	               "classname: full\n", ID, DS_ECONFIG,
	               "unknown storage class 'full'", NULL);
	config_refused(MINIMAL "[journal]\nbacklog: 0\n", ID, DS_ECONFIG,
	               "[journal] backlog is 0", NULL);
	config_refused(MINIMAL "[md5policy]\nread: yes\n", ID, DS_ECONFIG,
	               "[md5policy] read is 'yes', not an integer", NULL);
	config_refused(MINIMAL "[storage]\n", ID, DS_ECONFIG,
	               "line 6: section [storage] already exists", NULL);
	/* not a storage */
	config_refused(NULL, ID, DS_ENOTFOUND,
	               "is not a DirectoryStorage (no config/settings)", NULL);
	/* identity: first line must be 32 lowercase hex */
	config_refused(MINIMAL, NULL, DS_ENOTFOUND, "no config/identity",
	               NULL);
	config_refused(MINIMAL, "0123456789ABCDEF0123456789abcdef", DS_ECONFIG,
	               "config/identity: identity must be 32 lowercase hex",
	               "character 11");
	config_refused(MINIMAL, "0123456789abcdef", DS_ECONFIG,
	               "config/identity", "has 16 characters");
	config_refused(MINIMAL, ID "0", DS_ECONFIG, "config/identity",
	               "has 33 characters");
	config_refused(MINIMAL, "", DS_ECONFIG, "config/identity",
	               "has 0 characters");
	config_refused(MINIMAL, " " ID, DS_ECONFIG, "config/identity", NULL);
}

static void
test_config_not_a_directory(void **state)
{
	char *scratch = fixture_scratch_dir();
	char path[4200];
	ds_config c;
	ds_error err;
	(void)state;

	snprintf(path, sizeof(path), "%s/nosuch", scratch);
	ds_error_clear(&err);
	assert_int_equal(ds_config_load(path, &c, &err), DS_ENOTFOUND);
	assert_non_null(strstr(err.msg, path));
	snprintf(path, sizeof(path), "%s/file", scratch);
	fixture_write_text(path, "x");
	assert_int_equal(ds_config_load(path, &c, &err), DS_ENOTFOUND);
	assert_non_null(strstr(err.msg, "not a DirectoryStorage"));
	fixture_remove_tree(scratch);
	free(scratch);
}

/* ds_settings_foreach: configparser's options() order (the section's
 * own in file order, then [DEFAULT]'s it lacks, with DEFAULT's value),
 * nothing for an absent section or for DEFAULT itself, a non-zero return
 * stops the walk and is returned. */
struct walk {
	char seen[512];
	int stop_at, n;
};

static int
walk_note(const char *key, const char *value, void *ctx)
{
	struct walk *w = ctx;

	if (++w->n == w->stop_at)
		return 42;
	snprintf(w->seen + strlen(w->seen), sizeof(w->seen) - strlen(w->seen),
	         "%s=%s;", key, value);
	return 0;
}

static void
test_foreach(void **state)
{
	static const char text[] =
		"[DEFAULT]\nshared: d\nb: from-default\n"
		"[keepclass]\nBTrees.OOBTree.OOBucket: forever\n"
		"b: extra 3\nCase.Sensitive = x\n"
		"[empty]\n";
	ds_settings *s = NULL;
	struct walk w;
	ds_error err;

	(void)state;
	assert_int_equal(ds_settings_parse(text, strlen(text), "S", &s, &err),
	                 DS_OK);
	memset(&w, 0, sizeof(w));
	assert_int_equal(ds_settings_foreach(s, "keepclass", walk_note, &w),
	                 DS_OK);
	assert_string_equal(w.seen, "BTrees.OOBTree.OOBucket=forever;"
	                    "b=extra 3;Case.Sensitive=x;shared=d;");
	memset(&w, 0, sizeof(w));
	assert_int_equal(ds_settings_foreach(s, "empty", walk_note, &w), DS_OK);
	assert_string_equal(w.seen, "shared=d;b=from-default;");
	memset(&w, 0, sizeof(w));
	assert_int_equal(ds_settings_foreach(s, "absent", walk_note, &w),
	                 DS_OK);
	assert_int_equal(ds_settings_foreach(s, "DEFAULT", walk_note, &w),
	                 DS_OK);
	assert_int_equal(w.n, 0);
	memset(&w, 0, sizeof(w));
	w.stop_at = 2;
	assert_int_equal(ds_settings_foreach(s, "keepclass", walk_note, &w),
	                 42);
	assert_string_equal(w.seen, "BTrees.OOBTree.OOBucket=forever;");
	ds_settings_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_delimiters_and_case),
		cmocka_unit_test(test_continuations),
		cmocka_unit_test(test_sections),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_get_int),
		cmocka_unit_test(test_fixture_settings),
		cmocka_unit_test(test_config_fixtures),
		cmocka_unit_test(test_config_defaults),
		cmocka_unit_test(test_config_refusals),
		cmocka_unit_test(test_config_not_a_directory),
		cmocka_unit_test(test_foreach),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
