/*
 * internal.h - declarations shared by the library's source files; not
 * installed, not part of the public contract.
 */
#ifndef DS_INTERNAL_H
#define DS_INTERNAL_H

#include <stdarg.h>
#include <sys/types.h>

#include "dirstorage.h"

#if defined(__GNUC__)
#define DS_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define DS_PRINTF(a, b)
#endif

/* Fill err (may be NULL) with status and a formatted message; returns
 * status so callers can write `return ds_error_set(err, DS_EINVAL, ...)`. */
int ds_error_set(ds_error *err, int status, const char *fmt, ...)
	DS_PRINTF(3, 4);
/* For a failed system call: status DS_EIO (or DS_ENOTFOUND for ENOENT,
 * DS_EEXIST for EEXIST, DS_ENOMEM for ENOMEM), message
 * "<op> <path>: <strerror(errnum)>", sys_errno set. */
int ds_error_sys(ds_error *err, int errnum, const char *op, const char *path);

/* ---- the durable I/O layer (io.c) ----
 * Every system call that matters for durability goes through here, so that
 * a test build (-DDS_FAULT_INJECTION) can fail or crash at the Nth call:
 * environment DS_FAULT_AT=N (1-based call index), DS_FAULT_KIND=
 * kill|enospc|eio, DS_FAULT_STICKY=1 (fail every call from N on), and
 * DS_FAULT_COUNT_FILE=path (write the number of calls made at exit), and
 * DS_IO_TRACE=DIR, DS_IO_TRACE_ROOT=PATH (record every successful call for
 * the simulated power loss; format at the top of io.c). In a release build
 * the hook compiles to nothing.
 * Each returns DS_OK or fills err with the operation, the path and the
 * reason (DS_EIO, DS_ENOTFOUND, DS_EEXIST). */
int ds_io_open(const char *path, int flags, mode_t mode, int *fd,
               ds_error *err);
int ds_io_close(int fd, const char *path, ds_error *err);
int ds_io_write_all(int fd, const void *buf, size_t len, const char *path,
                    ds_error *err);
int ds_io_fsync(int fd, const char *path, ds_error *err);
/* open(O_RDONLY|O_DIRECTORY) + fsync + close. */
int ds_io_fsync_dir(const char *dir, ds_error *err);
int ds_io_rename(const char *from, const char *to, ds_error *err);
/* mkdir; an existing directory is success when exist_ok. */
int ds_io_mkdir(const char *path, mode_t mode, int exist_ok, ds_error *err);
/* mkdir -p of every component of path (which must be a directory path). */
int ds_io_mkdirs(const char *path, mode_t mode, ds_error *err);
int ds_io_unlink(const char *path, ds_error *err);
int ds_io_rmdir(const char *path, ds_error *err);
int ds_io_syncfs(int fd, const char *path, ds_error *err);
int ds_io_flock(int fd, int operation, const char *path, ds_error *err);
int ds_io_ftruncate(int fd, off_t len, const char *path, ds_error *err);
/* chmod (a pack's marks: owner-execute on the files it keeps). */
int ds_io_chmod(const char *path, mode_t mode, ds_error *err);
/* Create path with O_CREAT|O_EXCL (or O_TRUNC when !excl), write buf, and
 * fsync when do_sync; mode as given (umask applies). */
int ds_io_write_file(const char *path, const void *buf, size_t len,
                     mode_t mode, int excl, int do_sync, ds_error *err);
/* Number of hooked calls made so far (for tests and fault enumeration). */
unsigned long ds_io_calls(void);

/* Seconds on the monotonic clock (for timeouts and durations). */
double ds_now(void);
/* Join a and b with '/' into out; DS_EINVAL when it does not fit. */
int ds_path_join(char *out, size_t outsz, const char *a, const char *b,
                 ds_error *err);

#endif /* DS_INTERNAL_H */

/* ---- shared between engine recovery and the replica side ---- */
/* Apply a committed replication increment (a ustar archive already
 * validated before it was committed) into home: extract every member to
 * its path, create directories, make everything durable. Idempotent: it
 * may run again after a crash part way. Defined by the replication code
 * (archive.c). Errors: DS_EPROTO (archive unreadable), DS_EIO. */
int ds_archive_apply(const char *home, const char *tar_path, ds_error *err);
