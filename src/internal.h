/*
 * internal.h - declarations shared by the library's source files; not
 * installed, not part of the public contract.
 */
#ifndef DS_INTERNAL_H
#define DS_INTERNAL_H

#include <stdarg.h>
#include <sys/types.h>

#include "dirstorage.h"

/* the longest path the library builds (home plus a relative path) */
#define DS_PATH_MAX 4096

/* For a failed system call: status DS_EIO (or DS_ENOTFOUND for ENOENT,
 * DS_EEXIST for EEXIST, DS_ENOMEM for ENOMEM), message
 * "<op> <path>: <strerror(errnum)>", sys_errno set. */
int ds_error_sys(ds_error *err, int errnum, const char *op, const char *path);

/* ---- protocol 0 pickle text (pickletext.c) ---- */

/* The little-endian unsigned of n (at most 8) bytes at p: the binary
 * arguments of pickle opcodes. */
uint64_t ds_pickle_le(const unsigned char *p, int n);
/* 1 when no byte of p[0..n) is above 0x7F. */
int ds_pickle_ascii(const unsigned char *p, size_t n);
/* The value of hex digit c, or -1. */
int ds_hex_digit(int c);
/* Code point cp (at most 0x10FFFF) in UTF-8 into out; returns 1 to 4. */
size_t ds_utf8_put(unsigned long cp, unsigned char out[4]);
/* STRING's argument s[0..n) (the quotes included) as Python's
 * codecs.escape_decode reads it, into out (room for n bytes), its length
 * in *outlen. NULL, or why Python's unpickler refuses it. */
const char *ds_pickletext_string0(const unsigned char *s, size_t n,
                                  unsigned char *out, size_t *outlen);
/* UNICODE's argument s[0..n) decoded as raw-unicode-escape, in UTF-8,
 * into out (room for 2 * n bytes); as ds_pickletext_string0. */
const char *ds_pickletext_unicode0(const unsigned char *s, size_t n,
                                   unsigned char *out, size_t *outlen);

/* Python's int() of a settings value (surrounding whitespace, a sign,
 * digits with single '_' between them): 0 and *out, or -1 when int()
 * would raise (settings.c). */
int ds_settings_python_int(const char *v, long *out);

/* ---- file names in A/ (layout.c) ---- */

/* What pack makes of a file it removes while [storage] delay_delete keeps
 * it: "<path>-<unixtime>-deleted". */
enum ds_leftover {
	DS_LEFTOVER_NONE = 0,      /* no "-deleted" at the end */
	DS_LEFTOVER,               /* "<name>-<digits>-deleted" */
	DS_LEFTOVER_ODD,           /* "-deleted" at the end, not that form */
};

/* Is path's last component a pack's leftover? *when (may be NULL) is
 * the unix time in its name for DS_LEFTOVER, 0 otherwise (and when the
 * number does not fit). The one rule for pack (which purges both kinds:
 * an odd one at once), check (reports the first kind as expected, the
 * second as a stray file) and the master side (never sends either). */
enum ds_leftover ds_layout_leftover(const char *path, long long *when);

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
/* fsync every fds[i] (a file, or a directory when isdir[i]; paths[i] for
 * messages), all at the same time from a pool of threads, so that the
 * filesystem makes them durable with one journal commit and one cache
 * flush rather than n. On DS_OK all are durable; while it runs, any
 * subset may already be: group only what needs no order among itself.
 * Errors: DS_EIO (the first failed member's path, in fds order). */
int ds_io_fsync_many(const int *fds, const char *const *paths,
                     const unsigned char *isdir, size_t n, ds_error *err);
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
/* The same calls on an entry of a directory the caller holds open (dfd,
 * whose path is dir, for messages and the trace): name is one component,
 * never followed if a symlink (fchmodat: the caller has seen a regular
 * file there). For a sweep of many files, which opens each directory once
 * with ds_io_opendir_beneath instead of resolving every path again.
 * unlinkat's flags: 0 or AT_REMOVEDIR. Errors as the calls above. */
int ds_io_renameat(int dfd, const char *dir, const char *from,
                   const char *to, ds_error *err);
int ds_io_unlinkat(int dfd, const char *dir, const char *name, int flags,
                   ds_error *err);
int ds_io_fchmodat(int dfd, const char *dir, const char *name, mode_t mode,
                   ds_error *err);
/* Open directory rel (relative, not empty) beneath the directory base
 * for reading (O_NOATIME where the kernel allows it: listing it leaves
 * its inode clean), following no symlink on the way nor at the end; path is
 * its path (ending with rel), for messages. Not a durable call: not
 * counted by the fault hooks. Errors: DS_ECORRUPT (a symlink on the way,
 * named), DS_EINVAL ("..", outside base), DS_ENOTFOUND, DS_EIO. */
int ds_io_opendir_beneath(int base, const char *rel, const char *path,
                          int *fd, ds_error *err);
/* Create path with O_CREAT|O_EXCL (or O_TRUNC when !excl), write buf, and
 * fsync when do_sync; mode as given (umask applies). */
int ds_io_write_file(const char *path, const void *buf, size_t len,
                     mode_t mode, int excl, int do_sync, ds_error *err);
/* Writes beneath a storage's home never follow a symlink (io.c): while
 * home is registered (ds_io_guard; counted, ds_io_unguard as many times),
 * every call above that creates, opens for writing, renames or removes a
 * path beneath it resolves the path's directories from home without
 * following any symlink (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, or
 * a walk with O_NOFOLLOW) and does not follow the last component either;
 * a symlink fails with DS_ECORRUPT, "<path> is a symlink". The home itself
 * may be a symlink. ds_io_guard's errors: DS_EIO (home cannot be
 * opened), DS_ENOMEM. */
int ds_io_guard(const char *home, ds_error *err);
void ds_io_unguard(const char *home);
/* For tests: 0 makes the layer walk component by component as on a
 * kernel without openat2, 1 uses openat2 again where it exists. */
void ds_io_use_openat2(int use);

/* Replacing a file: never written in place (a hard link to the old file
 * keeps its content). ds_io_replace_open creates the temporary file
 * <dir>/DS_IO_TEMP_PREFIX<name> (removing one a killed run left) with
 * mode (umask applies), for writing; ds_io_replace_commit fsyncs it when
 * do_sync, closes it and renames it over path (the directory's fsync is
 * the caller's: it decides when the new entry must be durable);
 * ds_io_replace_abort (fd may be -1) closes and removes it. commit aborts
 * by itself when it fails. Two writers replacing different files never
 * share a temporary name. Errors as the calls above, and DS_EINVAL for a
 * name too long for the prefix. */
#define DS_IO_TEMP_PREFIX ".ds-new."
/* flags: DS_IO_REPLACE_DIRECT: when path does not exist yet, create it
 * under its own name (O_EXCL: a new inode, nobody's hard link) and skip
 * the rename; for files that nothing reads before a later commit point
 * makes them reachable (a replica apply's members, re-applied whole after
 * a crash). An abort then leaves the partial file. */
#define DS_IO_REPLACE_DIRECT 1u
typedef struct ds_io_replace {
	const char *path;
	int dfd, owned, live, direct;
	const char *name, *tmp_name;    /* for the *at() calls */
	char tmp_path[4096];
} ds_io_replace;
int ds_io_replace_open(const char *path, mode_t mode, unsigned flags,
                       ds_io_replace *r, int *fd, ds_error *err);
int ds_io_replace_commit(ds_io_replace *r, int fd, int do_sync,
                         ds_error *err);
void ds_io_replace_abort(ds_io_replace *r, int fd);
/* open, write buf, commit */
int ds_io_replace_file(const char *path, const void *buf, size_t len,
                       mode_t mode, int do_sync, ds_error *err);
/* Is the last component of name a temporary name of ds_io_replace_open
 * (a leftover of an interrupted write when no writer runs)? */
int ds_io_is_temp(const char *name);

/* Number of hooked calls made so far (for tests and fault enumeration). */
unsigned long ds_io_calls(void);

/* ds_file_read with more open(2) flags: O_NOATIME (dropped where the
 * kernel refuses it, EPERM: not the file's owner) for a reader of many
 * files that must not dirty their inodes. */
int ds_file_read_flags(const char *path, size_t max_len, int flags,
                       unsigned char **out, size_t *outlen, ds_error *err);

/* Seconds on the monotonic clock (for timeouts and durations). */
double ds_now(void);
/* Join a and b with '/' into out; DS_EINVAL when it does not fit. */
int ds_path_join(char *out, size_t outsz, const char *a, const char *b,
                 ds_error *err);

/* ---- the control socket protocol (control.c) ----
 * Requests and replies are lines of at most CONTROL_LINE_MAX bytes; the
 * protocol is described at the top of control.c and in dirstorage.h. */
#define CONTROL_LINE_MAX 256
enum ds_control_op {
	DS_CONTROL_ENTER = 1,
	DS_CONTROL_LEAVE,
	DS_CONTROL_STATUS,
};
struct ds_control_req {
	int op;                                 /* enum ds_control_op */
	char code[DS_CONTROL_CODE_MAX + 1];     /* enter, leave */
};
/* Parse one request line (len bytes without its '\n'; may hold any
 * byte). Errors: DS_EINVAL (the message says what is wrong). */
int ds_control_parse_request(const char *line, size_t len,
                             struct ds_control_req *req, ds_error *err);
/* Parse one reply line: "ok" / "ok TEXT" give DS_OK with TEXT (printable
 * bytes only, '?' for others) in text (ignored when textsz is 0); "error KIND MESSAGE" gives KIND's
 * status (busy DS_EBUSY, state DS_ESTATE, invalid DS_EINVAL, denied
 * DS_EREFUSED, io DS_EIO) with MESSAGE in err. Errors: those, DS_EPROTO
 * (not a reply, unknown kind, TEXT longer than textsz - 1). */
int ds_control_parse_reply(const char *line, size_t len, char *text,
                           size_t textsz, ds_error *err);
/* Connect to the control socket at path (a socket, not a symlink) and
 * read its greeting, within timeout seconds. The peer must run as root,
 * our euid or owner. *fd: close it when done.
 * Errors: DS_ENOTFOUND (no such file), DS_ECONFIG (symlink, not a
 * socket), DS_EBUSY (nobody listens; no answer in time; closed),
 * DS_EREFUSED (peer's uid; or it denied us), DS_EPROTO (not a control
 * socket), DS_EIO. */
int ds_control_connect(const char *path, uid_t owner, int timeout, int *fd,
                       ds_error *err);
/* Send request (one line, without '\n') and read the reply within
 * timeout seconds; text as ds_control_parse_reply.
 * Errors: the reply's (DS_EBUSY, DS_ESTATE, DS_EINVAL, DS_EREFUSED,
 * DS_EIO), DS_EBUSY (closed, no answer in time), DS_EPROTO, DS_EIO. */
int ds_control_call(int fd, const char *path, const char *request,
                    int timeout, char *text, size_t textsz, ds_error *err);

/* As ds_lock_acquire, but the holder's pid is not written into the file:
 * for processes that only read, so that they change nothing in misc/
 * (the file is still created, empty, when it does not exist yet). Same
 * errors. */
int ds_lock_acquire_quiet(const char *path, ds_lock **out, ds_error *err);

/* vsnprintf for messages: when the text does not fit outsz, the middle
 * of its longest words (paths) is replaced by "..." instead of cutting
 * the end, so that the reason is never lost (error.c). */
void ds_msg_vformat(char *out, size_t outsz, const char *fmt, va_list ap);
void ds_msg_format(char *out, size_t outsz, const char *fmt, ...)
	DS_PRINTF(3, 4);
/* The one log helper: format a message (as ds_msg_format, at most
 * DS_ERROR_MSG_MAX bytes) and pass it to fn at level; nothing when fn is
 * NULL. Every module's <module>_log is this with its options' fn and
 * ctx. */
void ds_log(ds_log_fn fn, void *ctx, int level, const char *fmt, ...)
	DS_PRINTF(4, 5);

/* ---- the journal's recovery rules (journal.c), shared with check.c ---- */
struct journal_scan {
	int replica_tar;     /* journal/replica.tar: an increment committed
	                      * but not applied yet */
	size_t ndone;        /* working_<TID>_done: committed, not flushed */
	size_t ntemp;        /* working_<TID>_temp: never committed */
};
/* Look at home's journal/ (and B/ when replica.tar is pending) with the
 * rules recovery at open applies, changing nothing: *out says what a
 * writing open would do; the error is what it would refuse, with the same
 * message. Errors: DS_ECORRUPT (an entry that is not a _done or _temp
 * transaction directory, a file in a _done directory that is not a
 * database name, journal/replica.tar that is not a regular file or not
 * alone, or with files in B), DS_EIO, DS_ENOMEM, DS_EINVAL (path too
 * long). */
int journal_scan(const char *home, struct journal_scan *out, ds_error *err);

#endif /* DS_INTERNAL_H */
