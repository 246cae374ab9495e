/*
 * test_ustar.c - the cpio-compatible ustar writer (src/ustar.c) alone,
 * against the original master's recorded responses: every member of each
 * response (name, mode, size, mtime, data) is written again through
 * ustar_open/ustar_entry into memory, and the bytes must be the recorded
 * response's exactly (headers re-encoded as GNU cpio writes them, end
 * blocks, no blocking). Also: ustar_recode on a header with a value that
 * does not fit is refused, and a put error stops the stream.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "helper_fixture.h"
#include "ustar.h"

struct mem {
	unsigned char *p;
	size_t len, cap;
	int fail_after;          /* > 0: fail the put after this many */
};

static int
mem_put(void *ctx, const unsigned char *p, size_t n, ds_error *err)
{
	struct mem *m = ctx;

	if (m->fail_after > 0 && --m->fail_after == 0)
		return ds_error_set(err, DS_EIO, "test: put fails");
	if (m->len + n > m->cap) {
		m->cap = (m->len + n) * 2;
		m->p = realloc(m->p, m->cap);
		assert_non_null(m->p);
	}
	memcpy(m->p + m->len, p, n);
	m->len += n;
	return DS_OK;
}

static unsigned char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* Rewrite the recorded response pair through ustar.c; compare. */
static void
rewrite_response(const char *pair)
{
	char path[4096];
	unsigned char *orig, *data = NULL;
	size_t olen;
	struct archive *in;
	struct archive_entry *e, *out_e;
	struct ustar_out u;
	struct mem m = {0};
	ds_error err;
	int ar, members = 0;

	snprintf(path, sizeof(path), "%s/responses/%s.tar", fixture_dir(), pair);
	orig = slurp(path, &olen);
	in = archive_read_new();
	assert_non_null(in);
	archive_read_support_format_tar(in);
	assert_int_equal(archive_read_open_memory(in, orig, olen), ARCHIVE_OK);
	assert_int_equal(ustar_open(&u, mem_put, &m, &err), DS_OK);
	out_e = archive_entry_new();
	assert_non_null(out_e);
	while ((ar = archive_read_next_header(in, &e)) == ARCHIVE_OK) {
		struct stat st;
		int64_t size = archive_entry_size(e);

		memset(&st, 0, sizeof(st));
		st.st_mode = archive_entry_perm(e);
		st.st_size = size;
		st.st_mtime = archive_entry_mtime(e);
		ustar_entry(out_e, archive_entry_pathname(e), &st);
		data = realloc(data, (size_t)size + 1);
		assert_non_null(data);
		assert_int_equal(archive_read_data(in, data, (size_t)size), size);
		assert_int_equal(archive_write_header(u.a, out_e), ARCHIVE_OK);
		assert_int_equal(archive_write_data(u.a, data, (size_t)size),
		                 size);
		assert_int_equal(u.err.status, DS_OK);
		members++;
	}
	assert_int_equal(ar, ARCHIVE_EOF);
	assert_true(members > 2);
	assert_int_equal(archive_write_close(u.a), ARCHIVE_OK);
	assert_int_equal(u.err.status, DS_OK);
	/* byte for byte what cpio wrote */
	assert_int_equal(m.len, olen);
	assert_int_equal(u.written, olen);   /* counted, end blocks too */
	assert_memory_equal(m.p, orig, olen);
	ustar_free(&u);
	ustar_free(&u);          /* twice: a freed writer is NULL */
	archive_entry_free(out_e);
	archive_read_free(in);
	free(data);
	free(m.p);
	free(orig);
}

static void
test_bushy_basic(void **state)
{
	(void)state;
	rewrite_response("bushy-basic");
}

static void
test_flat_basic(void **state)
{
	(void)state;
	rewrite_response("flat-basic");
}

/* A header whose size needs more than 11 octal digits is refused. */
static void
test_recode_overflow(void **state)
{
	unsigned char h[512];
	uint64_t size = 0;

	(void)state;
	memset(h, 0, sizeof(h));
	memcpy(h + 124, "77777777777 ", 12);   /* 8 GiB - 1: fits */
	assert_int_equal(ustar_recode(h, &size), 0);
	assert_int_equal(size, 077777777777ull);
	assert_memory_equal(h + 124, "77777777777\0", 12);
	memset(h, 0, sizeof(h));
	memcpy(h + 108, "7777777 ", 8);        /* uid: fits in 7 digits */
	memcpy(h + 136, "100000000000", 12);   /* mtime: 12 digits */
	assert_int_equal(ustar_recode(h, &size), -1);
}

/* The put's error stops the stream and is kept in u.err. */
static void
test_put_error(void **state)
{
	struct ustar_out u;
	struct mem m = {0};
	struct archive_entry *e;
	struct stat st;
	ds_error err;
	static const unsigned char data[600];

	(void)state;
	m.fail_after = 2;       /* the header passes, the data fails */
	assert_int_equal(ustar_open(&u, mem_put, &m, &err), DS_OK);
	e = archive_entry_new();
	memset(&st, 0, sizeof(st));
	st.st_mode = 0644;
	st.st_size = sizeof(data);
	ustar_entry(e, "A/x/serial", &st);
	archive_write_header(u.a, e);
	archive_write_data(u.a, data, sizeof(data));
	archive_write_close(u.a);
	assert_int_equal(u.err.status, DS_EIO);
	assert_string_equal(u.err.msg, "test: put fails");
	/* nothing after the header reached the output */
	assert_true(m.len <= 512);
	archive_entry_free(e);
	ustar_free(&u);
	free(m.p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bushy_basic),
		cmocka_unit_test(test_flat_basic),
		cmocka_unit_test(test_recode_overflow),
		cmocka_unit_test(test_put_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
