/*
 * ustar.c - a ustar stream byte for byte as GNU cpio writes it.
 *
 * The master side must send what the original's `cpio -o -H ustar` sends
 * (the recorded fixture responses are the reference; the unit test
 * test_ustar.c rewrites each of them through this file and compares).
 * libarchive writes the ustar structure: headers, padding, the two zero
 * blocks at the end, and no blocking to 10240 bytes
 * (archive_write_set_bytes_per_block 0), so the stream ends right after
 * the end blocks as cpio's does. Its write callback, ustar_write, gathers
 * each 512-byte header (libarchive may hand it over in pieces) and
 * re-encodes its numeric fields the way cpio does (ustar_recode); member
 * data and padding pass through unchanged.
 */
#include <stdio.h>
#include <string.h>

#include "ustar.h"

static uint64_t
ustar_octal(const unsigned char *f, size_t n)
{
	uint64_t v = 0;
	size_t i = 0;

	while (i < n && f[i] == ' ')
		i++;
	for (; i < n && f[i] >= '0' && f[i] <= '7'; i++)
		v = v * 8 + (uint64_t)(f[i] - '0');
	return v;
}

static int
ustar_put_octal(unsigned char *f, size_t n, uint64_t v)
{
	char tmp[32];
	int k = snprintf(tmp, sizeof(tmp), "%0*llo", (int)(n - 1),
	                 (unsigned long long)v);

	if (k < 0 || (size_t)k != n - 1)
		return -1;      /* does not fit: cpio would refuse too */
	memcpy(f, tmp, n - 1);
	f[n - 1] = '\0';
	return 0;
}

int
ustar_recode(unsigned char h[512], uint64_t *size)
{
	static const struct { size_t off, len; } fields[] = {
		{100, 8}, {108, 8}, {116, 8}, {124, 12}, {136, 12},
		{329, 8}, {337, 8},
	};
	unsigned sum = 0;

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		uint64_t v = ustar_octal(h + fields[i].off, fields[i].len);
		if (fields[i].off == 124)
			*size = v;
		if (ustar_put_octal(h + fields[i].off, fields[i].len, v) != 0)
			return -1;
	}
	memset(h + 148, ' ', 8);
	for (int i = 0; i < 512; i++)
		sum += h[i];
	return ustar_put_octal(h + 148, 8, sum);
}

static la_ssize_t
ustar_write(struct archive *a, void *ctx, const void *buf, size_t len)
{
	struct ustar_out *u = ctx;
	const unsigned char *p = buf;
	size_t n = len;

	/* after an error, swallow the rest (see fail below) */
	if (u->err.status != DS_OK)
		return (la_ssize_t)len;
	while (n > 0) {
		if (u->pass > 0) {
			size_t k = u->pass < n ? (size_t)u->pass : n;
			if (u->put(u->ctx, p, k, &u->err) != DS_OK)
				goto fail;
			u->pass -= k;
			u->written += k;
			p += k;
			n -= k;
			continue;
		}
		{
			size_t k = 512 - u->hdr_fill;
			static const unsigned char zero[512];
			uint64_t size = 0;

			if (k > n)
				k = n;
			memcpy(u->hdr + u->hdr_fill, p, k);
			u->hdr_fill += k;
			p += k;
			n -= k;
			if (u->hdr_fill < 512)
				continue;
			u->hdr_fill = 0;
			if (memcmp(u->hdr, zero, 512) != 0) {
				if (ustar_recode(u->hdr, &size) != 0) {
					ds_error_set(&u->err, DS_EIO, "increment: a "
					             "header field does not fit ustar");
					goto fail;
				}
				u->pass = (size + 511) / 512 * 512;
			}
			if (u->put(u->ctx, u->hdr, 512, &u->err) != DS_OK)
				goto fail;
			u->written += 512;
		}
	}
	return (la_ssize_t)len;
fail:
	/* Not reported to libarchive: an archive in its FATAL state leaks
	 * its client buffer on free (libarchive 3.6). The error waits in
	 * u->err, which every caller checks after each archive call. */
	if (u->err.status == DS_OK)
		u->err.status = DS_EIO;
	(void)a;
	return (la_ssize_t)len;
}

int
ustar_open(struct ustar_out *u, ustar_put_fn put, void *ctx, ds_error *err)
{
	memset(u, 0, sizeof(*u));
	ds_error_clear(&u->err);
	u->put = put;
	u->ctx = ctx;
	u->a = archive_write_new();
	if (u->a == NULL)
		return ds_error_set(err, DS_ENOMEM, "increment: out of memory");
	/* ustar; unblocked output, so the stream ends right after the two
	 * zero blocks as cpio's does (not padded to 10240). */
	if (archive_write_set_format_ustar(u->a) != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(u->a, 0) != ARCHIVE_OK ||
	    archive_write_open(u->a, u, NULL, ustar_write, NULL) != ARCHIVE_OK)
		return ds_error_set(err, DS_EIO, "increment: libarchive: %s",
		                    archive_error_string(u->a));
	return DS_OK;
}

void
ustar_entry(struct archive_entry *e, const char *relpath,
            const struct stat *st)
{
	archive_entry_clear(e);
	archive_entry_set_pathname(e, relpath);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, st->st_mode & 07777);
	archive_entry_set_size(e, st->st_size);
	archive_entry_set_mtime(e, st->st_mtime, 0);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	archive_entry_set_uname(e, "root");
	archive_entry_set_gname(e, "root");
}

void
ustar_free(struct ustar_out *u)
{
	if (u == NULL || u->a == NULL)
		return;
	archive_write_free(u->a);
	u->a = NULL;
}
