/*
 * fuzz_refscan.c - ds_refscan on arbitrary bytes (the pickles a pack reads
 * come from disk, written by whoever could commit).
 *
 * Input: the record itself (class pickle, state pickle, anything after).
 *
 * Invariants checked:
 *  - the result is DS_OK, or DS_ECORRUPT / DS_ENOMEM with a message that
 *    gives the byte offset of the refusal;
 *  - every reference handed to the callback lies within the input's size
 *    (an oid is at most as long as the record that holds it);
 *  - the scan is deterministic: a second run gives the same status and
 *    the same references;
 *  - stopping from the callback at the first reference returns the
 *    callback's status at once;
 *  - ds_classname_get (the other reader of a record's pickle, for pack's
 *    [keepclass]) returns DS_OK with a NUL-terminated name that fits, or
 *    DS_ENOTFOUND with "", deterministically; with a buffer too small
 *    for that name, DS_ENOTFOUND and "" (never an overrun: the buffers
 *    are exact-size heap blocks).
 */
#include <stdlib.h>
#include <string.h>

#include "helper.h"

struct seen {
	size_t size;          /* input size */
	unsigned char *refs;  /* concatenated (len byte-pairs + bytes) */
	size_t len, cap;
	size_t n;
	int stop;
};

static int
note(const unsigned char *oid, size_t len, void *ctx, ds_error *err)
{
	struct seen *s = ctx;
	size_t need = s->len + len + sizeof(size_t);

	FZ_CHECK(len <= s->size, "reference of %zu bytes from %zu", len,
	         s->size);
	if (s->stop)
		return ds_error_set(err, DS_EINVAL, "stop");
	if (need > s->cap) {
		s->cap = need * 2;
		s->refs = realloc(s->refs, s->cap);
		FZ_CHECK(s->refs != NULL, "out of memory");
	}
	memcpy(s->refs + s->len, &len, sizeof(size_t));
	if (len > 0)
		memcpy(s->refs + s->len + sizeof(size_t), oid, len);
	s->len = need;
	s->n++;
	return 0;
}

static void
fuzz_refscan_classname(const unsigned char *buf, size_t size)
{
	char *name = malloc(256), *again = malloc(256), *small;
	size_t n;
	int rc;

	FZ_CHECK(name != NULL && again != NULL, "out of memory");
	rc = ds_classname_get(buf, size, name, 256);
	FZ_CHECK(rc == DS_OK || rc == DS_ENOTFOUND, "classname status %d", rc);
	n = strnlen(name, 256);
	FZ_CHECK(n < 256, "class name not terminated");
	FZ_CHECK(rc == DS_OK || n == 0, "DS_ENOTFOUND with a name");
	FZ_CHECK(ds_classname_get(buf, size, again, 256) == rc &&
	         strcmp(name, again) == 0, "classname not deterministic");
	if (rc == DS_OK) {
		FZ_CHECK(n > 0, "DS_OK with an empty name");
		small = malloc(n);      /* one byte short of the name's NUL */
		FZ_CHECK(small != NULL, "out of memory");
		FZ_CHECK(ds_classname_get(buf, size, small, n) == DS_ENOTFOUND &&
		         small[0] == '\0',
		         "a name too long for the buffer was given");
		free(small);
	}
	free(name);
	free(again);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *buf;
	struct seen a, b;
	ds_error err;
	int rc, rc2;

	/* an exact-size heap copy: ASan sees any read past the end */
	buf = malloc(size ? size : 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.size = b.size = size;

	ds_error_clear(&err);
	rc = ds_refscan(buf, size, note, &a, &err);
	if (rc != DS_OK) {
		fz_check_error(rc, &err, "ds_refscan");
		FZ_CHECK(rc == DS_ECORRUPT || rc == DS_ENOMEM, "status %d", rc);
		if (rc == DS_ECORRUPT)
			FZ_CHECK(strstr(err.msg, "at byte ") != NULL,
			         "no offset in \"%s\"", err.msg);
	}
	rc2 = ds_refscan(buf, size, note, &b, &err);
	FZ_CHECK(rc2 == rc, "second scan %d, first %d", rc2, rc);
	FZ_CHECK(a.n == b.n && a.len == b.len &&
	         (a.len == 0 || memcmp(a.refs, b.refs, a.len) == 0),
	         "second scan found other references");
	if (a.n > 0) {
		struct seen c;
		memset(&c, 0, sizeof(c));
		c.size = size;
		c.stop = 1;
		rc2 = ds_refscan(buf, size, note, &c, &err);
		FZ_CHECK(rc2 == DS_EINVAL, "callback's stop gave %d", rc2);
		free(c.refs);
	}
	fuzz_refscan_classname(buf, size);
	free(a.refs);
	free(b.refs);
	free(buf);
	return 0;
}
