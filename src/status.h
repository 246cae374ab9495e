/*
 * status.h - the master's answer to `ds status` (status.c), for the
 * master side (replica_master.c). Not installed.
 */
#ifndef DS_STATUS_H
#define DS_STATUS_H

#include "internal.h"

/* The first line of the answer to "replica status 0" (protocol.h). */
#define PROTOCOL_STATUS_HEADER "ds-master-status 1"

/* Answer a status request whose identity the caller checked: hold HOME
 * in snapshot mode (quietly), read x.serial and x.packed, walk back from
 * x.serial to `since`, release, write the answer's lines to out_fd.
 * Errors: those of ds_snapshot_acquire (DS_EBUSY ...), DS_ECORRUPT (a
 * transaction file of the walk, newer than x.packed, missing or
 * damaged), DS_EIO, DS_ENOMEM. */
int status_serve(const char *home, ds_layout layout, ds_tid since,
                 const struct ds_replica_serve_opts *opts, int out_fd,
                 ds_error *err);

#endif /* DS_STATUS_H */
