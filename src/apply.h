/*
 * apply.h - the apply of a replication increment (apply.c): what the
 * replica side and the engine's journal recovery share. Not installed.
 */
#ifndef DS_APPLY_H
#define DS_APPLY_H

#include "internal.h"

/* Apply a committed replication increment (a ustar archive checked by
 * recv_stream before it was committed) into home: extract every member
 * to its path in home's own layout, create directories, make everything
 * durable, x.serial and x.oid last. Idempotent: it may run again after a
 * crash part way. Errors: DS_EPROTO (archive unreadable, a member name
 * that is not a database file), DS_EIO, DS_ENOMEM, DS_EINVAL (path too
 * long). */
int apply_increment(const char *home, const char *tar_path, ds_error *err);

/* apply_increment into home whose layout the caller knows already. */
int apply_increment_layout(const char *home, const char *tar_path,
                           ds_layout layout, ds_error *err);

/* Extract an init archive (already checked by recv_stream) into home,
 * which must hold empty A/ and config/: like apply_increment, plus the
 * config/ members. Errors: DS_EPROTO, DS_EIO, DS_ENOMEM. */
int apply_init(const char *home, const char *tar_path, ds_layout layout,
               ds_error *err);

/* Complete the increment committed in home's journal/replica.tar: apply
 * it (apply_increment), then rename it to misc/replica.previous and sync
 * misc/ and journal/. The caller has made sure nothing else changes A
 * meanwhile (the storage's lock; no snapshot user). Used after the commit
 * point by ds replica and by the engine's recovery at open. Errors: as
 * apply_increment. */
int apply_committed(const char *home, ds_error *err);

/* apply_committed for a caller that has home's config loaded already:
 * layout is its [structure] format. keep_previous 0: the applied
 * increment is removed instead of kept as misc/replica.previous, and an
 * older misc/replica.previous with it (ds replica --no-keep-previous).
 * Errors: as apply_increment. */
int apply_committed_layout(const char *home, ds_layout layout,
                           int keep_previous, ds_error *err);

#endif /* DS_APPLY_H */
