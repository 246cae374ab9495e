/*
 * test_changes.c - the whatsnew walk against every reference tid of every
 * fixture manifest (the original's output), plus tids outside the chain
 * and broken histories.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "helper_fixture.h"
#include "internal.h"

struct lines {
	char **v;
	size_t n, cap;
	char info[512];     /* last DS_LOG_INFO message */
	size_t stop_after;  /* fail the callback after this many (0: never) */
};

static int
collect(const char *relpath, void *ctx, ds_error *err)
{
	struct lines *l = ctx;

	if (l->stop_after != 0 && l->n == l->stop_after)
		return ds_error_set(err, DS_EIO, "stopped by the test");
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		assert_non_null(l->v);
	}
	l->v[l->n++] = strdup(relpath);
	return DS_OK;
}

static void
logmsg(int level, const char *msg, void *ctx)
{
	struct lines *l = ctx;

	if (level == DS_LOG_INFO)
		snprintf(l->info, sizeof(l->info), "%s", msg);
}

static void
lines_free(struct lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int
walk(const char *home, ds_tid tid, struct lines *l,
     struct ds_changes_info *info, ds_error *err)
{
	struct ds_changes_opts o = {logmsg, l};

	ds_error_clear(err);
	return ds_changes_walk(home, tid, &o, collect, l, info, err);
}

static void
test_every_manifest_reference(void **state)
{
	size_t nfix, checked = 0;
	char **names = fixture_names(&nfix);

	(void)state;
	for (size_t i = 0; i < nfix; i++) {
		json_t *m = fixture_manifest_load(names[i]);
		json_t *w = json_object_get(m, "whatsnew");
		const char *tidhex;
		json_t *ref;
		char home[4096];

		fixture_home(names[i], home, sizeof(home));
		json_object_foreach(w, tidhex, ref) {
			json_t *want = json_object_get(ref, "stdout_lines");
			const char *stderr_text = fixture_jstr(ref, "stderr");
			long long rcwant = fixture_jint(ref, "rc");
			struct lines l = {0};
			struct ds_changes_info info;
			ds_error err;
			ds_tid tid;
			char msg[DS_ERROR_MSG_MAX + 16];
			int rc;

			assert_int_equal(ds_id_parse(tidhex, &tid), DS_OK);
			rc = walk(home, tid, &l, &info, &err);
			if (rcwant == 0) {
				if (rc != DS_OK)
					fail_msg("%s %s: %s", names[i], tidhex, err.msg);
				assert_int_equal(l.n, json_array_size(want));
				for (size_t k = 0; k < l.n; k++)
					assert_string_equal(l.v[k], json_string_value(
					                    json_array_get(want, k)));
				/* the original's stderr line, without its newline */
				snprintf(msg, sizeof(msg), "%s\n", l.info);
				assert_string_equal(msg, stderr_text);
				if (l.n > 0)
					assert_int_equal(info.paths, l.n);
			} else {
				assert_int_equal(rc, DS_EREFUSED);
				assert_int_equal(l.n, 0);
				snprintf(msg, sizeof(msg), "ERROR: %s\n", err.msg);
				assert_string_equal(msg, stderr_text);
			}
			checked++;
			lines_free(&l);
		}
		json_decref(m);
	}
	/* 8 fixtures with 2 to 4 reference tids each */
	assert_true(checked >= 20);
	fixture_names_free(names);
}

static void
test_tid_not_in_chain(void **state)
{
	char home[4096];
	struct lines a = {0}, b = {0};
	struct ds_changes_info ia, ib;
	ds_error err;

	(void)state;
	fixture_home("bushy-master", home, sizeof(home));
	/* R is in the chain; R+1 is not: the original lists the same files
	 * (everything later than the tid) */
	assert_int_equal(walk(home, 0x040D44B222699877ULL, &a, &ia, &err), DS_OK);
	assert_int_equal(walk(home, 0x040D44B222699878ULL, &b, &ib, &err), DS_OK);
	assert_int_equal(ia.since_in_chain, 1);
	assert_int_equal(ib.since_in_chain, 0);
	assert_int_equal(a.n, b.n);
	for (size_t k = 0; k < a.n; k++)
		assert_string_equal(a.v[k], b.v[k]);
	assert_int_equal(ia.transactions, 21);  /* 63 - 42 */
	lines_free(&a);
	lines_free(&b);

	/* later than x.serial: refused */
	assert_int_equal(walk(home, 0x040D44B2249CA6ABULL, &a, &ia, &err),
	                 DS_EREFUSED);
	assert_string_equal(err.msg, "specified transaction id is in the future");
	lines_free(&a);

	/* the whole history, from tid zero */
	assert_int_equal(walk(home, 0, &a, &ia, &err), DS_OK);
	assert_int_equal(ia.transactions, 63);
	assert_int_equal(ia.objects, 261);
	assert_int_equal(a.n, 2 + 63 + 261 + 669);
	lines_free(&a);
}

static void
test_broken_history_and_callback_error(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = fixture_copy("bushy-master", scratch);
	json_t *m = fixture_manifest_load("bushy-master");
	json_t *chain = json_object_get(m, "chain");
	const char *mid = json_string_value(json_array_get(chain, 5));
	char path[4096];
	struct lines l = {0};
	struct ds_changes_info info;
	ds_error err;
	unsigned char *buf;
	size_t len;
	ds_tid tid;

	(void)state;
	/* the callback's error stops the walk and is returned */
	l.stop_after = 3;
	assert_int_equal(walk(home, 0, &l, &info, &err), DS_EIO);
	assert_string_equal(err.msg, "stopped by the test");
	assert_int_equal(l.n, 3);
	lines_free(&l);

	/* a transaction file with a flipped byte: md5 refuses it */
	assert_int_equal(ds_id_parse(mid, &tid), DS_OK);
	snprintf(path, sizeof(path), "%s/A/t0/40/D44/%s", home, mid + 6);
	assert_int_equal(ds_file_read(path, 0, &buf, &len, &err), DS_OK);
	buf[len - 1] ^= 0x40;
	assert_int_equal(ds_io_write_file(path, buf, len, 0640, 0, 0, &err),
	                 DS_OK);
	free(buf);
	assert_int_equal(walk(home, 0, &l, &info, &err), DS_ECORRUPT);
	assert_non_null(strstr(err.msg, mid + 6));
	lines_free(&l);

	/* a missing one: broken history, named */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(walk(home, 0, &l, &info, &err), DS_ECORRUPT);
	assert_non_null(strstr(err.msg, "broken history"));
	assert_non_null(strstr(err.msg, mid + 6));
	lines_free(&l);
	/* a walk that stops before it does not notice */
	assert_int_equal(walk(home, tid, &l, &info, &err), DS_OK);
	assert_int_equal(info.transactions, 5);
	lines_free(&l);

	json_decref(m);
	free(home);
	fixture_remove_tree(scratch);
	free(scratch);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_manifest_reference),
		cmocka_unit_test(test_tid_not_in_chain),
		cmocka_unit_test(test_broken_history_and_callback_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
