/*
 * replica_internal.h - what the replica side's files share (archive.c,
 * transport.c, replica.c); not installed, not part of the public contract.
 */
#ifndef DS_REPLICA_INTERNAL_H
#define DS_REPLICA_INTERNAL_H

#include <stdint.h>
#include <sys/types.h>

#include "internal.h"

/* ---- archive.c: receiving and checking an increment ---- */

/* Pull up to len bytes of the incoming stream into buf. Returns the number
 * of bytes (0 at the end of the stream), or -1 with err filled. */
typedef ssize_t (*archive_read_fn)(void *ctx, void *buf, size_t len,
                                   ds_error *err);

struct archive_expect {
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
	 * (replica_limit in replica.c), not the operator's --max-size, and
	 * chooses the message. */
	uint64_t max_bytes;
	int max_auto;
	uint64_t fs_avail;     /* for the message when max_auto */
};

struct archive_summary {
	uint64_t bytes;            /* raw stream length */
	unsigned long members;     /* archive members */
	unsigned long transactions;/* transaction files */
	unsigned long revisions;   /* object revision files */
	ds_tid new_tid;            /* x.serial sent (base_tid when empty) */
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
int archive_receive(archive_read_fn rd, void *rctx, int spool_fd,
                    const char *spool_path, const struct archive_expect *exp,
                    struct archive_summary *sum, int *read_failed,
                    ds_error *err);

/* Extract an init archive (already checked by archive_receive) into home,
 * which must hold empty A/ and config/: like ds_archive_apply, plus the
 * config/ members. Errors: DS_EPROTO, DS_EIO, DS_ENOMEM. */
int archive_apply_init(const char *home, const char *tar_path,
                       ds_layout layout, ds_error *err);

/* ---- transport.c: running the master side ---- */

struct transport_opts {
	const char *host;          /* NULL: run local_program as a child */
	const char *user;          /* ssh -l USER (may be NULL) */
	const char *command;       /* replaces "ssh"; split on whitespace */
	const char *remote_program;/* ds on the master (ssh mode) */
	const char *local_program; /* ds here (local mode) */
	/* replaces "<remote_program or local_program> replica": the master
	 * side's program and leading words, split on whitespace (each word
	 * quoted over ssh); [-v...|-q] + DIR still follow. NULL: ds. */
	const char *master_command;
	/* NULL, or a command to run instead of the master side, one word
	 * each (each quoted over ssh, nothing appended, no request needed):
	 * how the replica side reads a file of a master whose replica.py
	 * has no request for it */
	const char *const *exact_argv;
	int verbosity;             /* 0 -q, 1 normal, 2+ -v... for the master */
	const char *master_dir;    /* DIR: the master's storage */
	/* every line the master side writes on stderr (no newline) */
	void (*on_stderr)(const char *line, void *ctx);
	void *ctx;
	unsigned read_timeout;     /* s of silence (stdout and stderr) before
	                            * transport_read gives up; 0 means 600 */
	double deadline_at;        /* ds_now() time by which the whole
	                            * answer must have arrived; 0: none */
	unsigned deadline;         /* the same in seconds, for messages */
};

struct transport;

/* Start the master side (argv built as in transport.c's comment) in a
 * process group of its own (so that stopping it stops everything it
 * started), write request to its stdin and close it.
 * Errors: DS_EINVAL (bad host/user/command), DS_EBUSY (could not start:
 * try again), DS_EIO, DS_ENOMEM. *out owned by caller: transport_free. */
int transport_start(const struct transport_opts *opts, const void *request,
                    size_t len, struct transport **out, ds_error *err);
/* archive_read_fn over the master side's stdout; stderr lines are passed
 * to on_stderr meanwhile. A master side silent for read_timeout seconds,
 * or still sending at deadline_at, is given up on: -1 with DS_EBUSY (try
 * again later). One stopped by the terminal (ssh prompting for a password
 * or a host key from its background process group) is given up on at
 * once: -1 with DS_EREFUSED (ssh must log in without asking). */
ssize_t transport_read(void *t, void *buf, size_t len, ds_error *err);
/* Wait for the master side to end (killing it first when kill_it), after
 * reading what remains of its stderr. kill_it stops a master side whose
 * output has not reached its end: SIGTERM to its whole process group,
 * then SIGKILL to the group after a short grace, before the leader is
 * reaped, so that nothing it started (an -e wrapper's children) survives.
 * *how: 0 exited 0, else its exit status, 128+signal, or -1 when we
 * stopped it. */
int transport_wait(struct transport *t, int kill_it, int *how, ds_error *err);
/* Last non-empty stderr line of the master side ("" if none). */
const char *transport_last_line(const struct transport *t);
/* The argv actually run, joined with spaces (for -vv). */
const char *transport_cmdline(const struct transport *t);
void transport_free(struct transport *t);

#endif /* DS_REPLICA_INTERNAL_H */
