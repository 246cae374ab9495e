/*
 * read.h - reading database files of an open storage through the
 * journal, B and A (read.c).
 */
#ifndef DS_READ_H
#define DS_READ_H

#include <stddef.h>

#include "internal.h"

/* Read database file `name` through journal/B/A. Errors: DS_ENOTFOUND,
 * DS_EIO, DS_EINVAL, DS_ENOMEM. */
int read_name(ds_storage *s, const char *name, unsigned char **buf,
              size_t *len, ds_error *err);
/* Read and verify revision (oid, serial); check_md5 per policy.
 * *buf owns the bytes rec points into. Errors: DS_ENOTFOUND, DS_ECORRUPT,
 * DS_EIO, DS_ENOMEM. */
int read_revision(ds_storage *s, ds_oid oid, ds_tid serial, int check_md5,
                  unsigned char **buf, ds_objrec *rec, ds_error *err);
/* Read and verify transaction file tid. */
int read_txnfile(ds_storage *s, ds_tid tid, int check_md5,
                 unsigned char **buf, ds_txnrec *rec, ds_error *err);

#endif /* DS_READ_H */
