/*
 * ustar.h - writing a ustar stream byte for byte as GNU cpio
 * (`cpio -o -H ustar`) writes it (ustar.c). Not installed.
 */
#ifndef DS_USTAR_H
#define DS_USTAR_H

#include <stdint.h>
#include <sys/stat.h>

#include <archive.h>
#include <archive_entry.h>

#include "internal.h"

/* Where the re-encoded stream goes: n bytes at p. Returns DS_OK, or a
 * status with err filled. */
typedef int (*ustar_put_fn)(void *ctx, const unsigned char *p, size_t n,
                            ds_error *err);

/* One stream being written: libarchive writes the ustar structure
 * (headers, padding, the two zero blocks at the end, no blocking to 10240
 * bytes); its write callback re-encodes each header the way GNU cpio does
 * and passes everything on to put. */
struct ustar_out {
	struct archive *a;       /* the libarchive writer (ustar_open) */
	ustar_put_fn put;
	void *ctx;
	uint64_t pass;           /* data + padding bytes still to pass on */
	unsigned char hdr[512];  /* the header being gathered */
	size_t hdr_fill;
	uint64_t written;        /* bytes passed to put */
	ds_error err;            /* the first error (put's, or a header
	                          * field that does not fit): from then on
	                          * the rest is swallowed; callers check
	                          * err.status after each libarchive call */
};

/* Re-encode one 512-byte ustar header's numeric fields the way GNU cpio
 * writes them: 7 octal digits + NUL for mode, uid, gid, devmajor,
 * devminor and the checksum; 11 digits + NUL for size and mtime (where
 * libarchive writes 6 digits + space + NUL and space terminators). *size
 * receives the member's size. Returns 0, or -1 when a value does not fit
 * (cpio would refuse it too). */
int ustar_recode(unsigned char h[512], uint64_t *size);

/* Start writing a stream to put (u zeroed first). Errors: DS_ENOMEM,
 * DS_EIO (libarchive refused the format). ustar_free frees it. */
int ustar_open(struct ustar_out *u, ustar_put_fn put, void *ctx,
               ds_error *err);

/* Fill e for a member named relpath with st's mode bits, size and mtime,
 * uid/gid 0, root/root: what cpio writes for a file of root's. */
void ustar_entry(struct archive_entry *e, const char *relpath,
                 const struct stat *st);

/* Free the writer (NULL-safe: u may be zeroed and never opened). */
void ustar_free(struct ustar_out *u);

#endif /* DS_USTAR_H */
