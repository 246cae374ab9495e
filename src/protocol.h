/*
 * protocol.h - the replication protocol between the replica side and the
 * master side (protocol.c): the request (written by ds replica, read by
 * the master side) and the master's tagged lines on stderr. Not
 * installed.
 *
 * The request is the original's four lines ("replica request 0", the
 * identity, the replica's tid in 16 lowercase hex digits, the md5 of its
 * transaction file in 32), or our "replica init 0". The original master
 * reads exactly four lines and ignores the rest, so our extensions are
 * further lines, one keyword each:
 *   relink <md5 with bytes 24..31 zeroed> <the replica's back pointer>
 *       tell "only the back pointer differs" (a pack rewrote it) from
 *       divergence;
 *   report held
 *       ask the master to report how long it held snapshot mode, on a
 *       tagged stderr line (PROTOCOL_REPORT_HELD) the replica reads.
 * "replica init 0" is ours alone (the original answers it with its usage
 * text), so it carries no extension line (the recorded exchanges with the
 * original are looked up by the request's first lines) and its answer
 * always reports the hold time.
 */
#ifndef DS_PROTOCOL_H
#define DS_PROTOCOL_H

#include <stddef.h>

#include "internal.h"

#define PROTOCOL_REQUEST_MAX (64 * 1024)   /* bytes a master reads */
#define PROTOCOL_LINES_MAX 16              /* lines a master looks at */
/* what our master side puts in front of every stderr line */
#define PROTOCOL_MASTER_PREFIX "ds replica: "
/* the tagged line answering "report held": the prefix, then seconds */
#define PROTOCOL_REPORT_HELD "ds replica: report held "

/* A decoded request. Pointers point into the buffer given to
 * protocol_request_decode. */
struct protocol_request {
	int init;                    /* "replica init 0" */
	const char *identity;        /* line 2 (increments) */
	/* lines 3 and 4 parsed: the master checks the identity first (the
	 * original's order), then refuses a request whose ids are not */
	int ids_valid;
	ds_tid tid;
	unsigned char md5[16];
	int relink;                  /* 0: no relink line; 1: parsed;
	                              * -1: malformed (ignored) */
	unsigned char relink_md5[16];
	char relink_prev[17];        /* the replica's back pointer, hex */
	int report_held;             /* "report held", or init */
	const char *other[PROTOCOL_LINES_MAX]; /* non-empty lines not
	                              * understood (the master ignores them) */
	size_t nother;
};

/* Read fd to EOF: at most PROTOCOL_REQUEST_MAX bytes, within timeout
 * seconds (0: 300). *out is NUL terminated, caller frees. Errors:
 * DS_EPROTO (too long, not complete in time, holds a NUL byte), DS_EIO,
 * DS_ENOMEM. */
int protocol_request_read(int fd, unsigned timeout, char **out,
                          ds_error *err);

/* Decode the request in buf (changed in place: split into stripped lines,
 * as the original's readline().strip()). Errors: DS_EPROTO (the first
 * line is neither "replica request 0" nor "replica init 0"; fewer than 4
 * lines in a request). */
int protocol_request_decode(char *buf, struct protocol_request *req,
                            ds_error *err);

/* The request of a replica at tid whose transaction file is txn (NULL,
 * 0 when tid is 0): the original's four lines, then our relink line
 * (when txn holds a back pointer) and "report held". Errors: DS_EINVAL
 * (does not fit outsz), DS_ENOMEM. */
int protocol_request_encode(const char *identity, ds_tid tid,
                            const unsigned char *txn, size_t txnlen,
                            char *out, size_t outsz, ds_error *err);
/* The request of ds replica --init. */
int protocol_init_encode(char *out, size_t outsz, ds_error *err);

/* The master's answer to "report held": its tagged stderr line (with the
 * newline) into out. */
void protocol_report_encode(double held, char *out, size_t outsz);
/* Is line (one stderr line of the master side, no newline) the tagged
 * report? 1 with *held set, else 0. */
int protocol_report_decode(const char *line, double *held);
/* What a master side's stderr line says, for the replica's user: line
 * without our master's PROTOCOL_MASTER_PREFIX, and without the Python
 * exception class that names the original's reasons and ours alike on
 * the wire ("ReplicaError: different identity" -> "different identity";
 * any "Name: " or "module.Name: " whose last part ends in Error or
 * Exception, as a Python traceback's last line starts). */
const char *protocol_master_text(const char *line);

#endif /* DS_PROTOCOL_H */
