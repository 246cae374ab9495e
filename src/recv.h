/*
 * recv.h - the replica side's checker of an incoming increment (recv.c).
 * Not installed.
 */
#ifndef DS_RECV_H
#define DS_RECV_H

#include <stdint.h>
#include <sys/types.h>

#include <archive.h>
#include <archive_entry.h>

#include "internal.h"

/* every layout (a bit per ds_layout): the candidates before the first
 * member name has been seen */
#define RECV_ALL_LAYOUTS 0xFu

/* Pull up to len bytes of the incoming stream into buf. Returns the number
 * of bytes (0 at the end of the stream), or -1 with err filled. */
typedef ssize_t (*recv_read_fn)(void *ctx, void *buf, size_t len,
                                   ds_error *err);

struct recv_expect {
	int init;              /* a `replica init 0` answer: config/settings,
	                        * config/identity, then every live file of A */
	ds_tid base_tid;       /* increments: the replica's x.serial */
	ds_oid base_oid;       /* increments: the replica's x.oid; an x.oid
	                        * below it is refused whatever the request
	                        * said (oids only grow) */
	/* Increments: the replica's [md5policy] write (equal to the
	 * master's: settings are copied at --init). When set, a revision or
	 * transaction file without an md5 is refused; else such files are
	 * counted in the summary. Init answers take the policy from the
	 * config/settings they carry. */
	int md5_required;
	void (*progress)(uint64_t bytes, void *ctx); /* may be NULL */
	void *progress_ctx;
	/* Refuse the stream as soon as it grows past max_bytes (0: no
	 * limit), so a hostile or broken master cannot fill the replica's
	 * disk; max_auto says the limit is the room on the filesystem
	 * (ds replica's replica_limit), not the operator's --max-size, and
	 * chooses the message. */
	uint64_t max_bytes;
	int max_auto;
	uint64_t fs_avail;     /* for the message when max_auto */
};

struct recv_summary {
	uint64_t bytes;            /* raw stream length */
	unsigned long members;     /* archive members */
	unsigned long transactions;/* transaction files */
	unsigned long revisions;   /* object revision files */
	ds_tid new_tid;            /* x.serial sent (base_tid when empty) */
	ds_tid first_tid;          /* its oldest transaction (0 when none) */
	ds_tid new_oid;            /* x.oid sent (0 when not sent) */
	int have_oid;              /* x.oid was sent */
	unsigned long revisions_no_md5;    /* md5 field zero (allowed only */
	unsigned long transactions_no_md5; /* when md5s are not promised) */
	char identity[33];         /* init: config/identity's first line */
	ds_layout layout;          /* master's layout, when known */
	int layout_known;
};

/* Read the whole stream through rd, copying every byte to spool_fd (open
 * for read and write, empty; spool_path names it in messages) while
 * checking it as DESIGN.md section 3 asks: plain ustar, regular files
 * only, names under A/ (or config/ for init) that map through the
 * master's layout to valid database names, each record's md5 and length,
 * the order and completeness of the increment (x.serial, x.oid, then each
 * transaction newest first with its .c pointers and revisions, chaining
 * back to exp->base_tid exactly), and nothing but zero bytes after the
 * end. Memory stays bounded by the largest transaction file.
 * Errors: DS_EPROTO (the stream is refused: the message says why and
 * names the member; also a stream longer than exp->max_bytes when that
 * is the operator's limit; an object id above the x.oid sent; a file
 * without an md5 when exp->md5_required), DS_EREFUSED (the master's
 * x.serial is older than the replica's: the replica is newer than the
 * master; or its x.oid is below exp->base_oid), DS_EIO
 * (spool write; or, sys_errno ENOSPC, a stream longer than the room on
 * the replica's filesystem, exp->max_auto), DS_ENOMEM, or rd's error.
 * On a read error (rd returned -1) the status of rd is returned and
 * *read_failed is set to 1 (may be NULL). */
int recv_stream(recv_read_fn rd, void *rctx, int spool_fd,
                    const char *spool_path, const struct recv_expect *exp,
                    struct recv_summary *sum, int *read_failed,
                    ds_error *err);

/* Checks of one archive header that do not depend on the stream's state:
 * ustar, a regular file without links, sane mode and size, a sane path
 * (not absolute, no "..", "." or empty component). what prefixes the
 * message. Errors: DS_EPROTO. */
int recv_check_header(struct archive *a, struct archive_entry *e,
                      const char *what, ds_error *err);
/* Map rel (relative to A/) to a database name under every layout still in
 * *cand (a bit per ds_layout); keep those that can. Errors: DS_EPROTO. */
int recv_map_name(unsigned *cand, const char *rel, char name[DS_NAME_MAX],
                  const char *what, ds_error *err);
/* The first layout left in cand. */
int recv_first_layout(unsigned cand);

#endif /* DS_RECV_H */
