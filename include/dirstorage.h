/*
 * dirstorage.h - the one public header of libdirstorage.
 *
 * libdirstorage reads and writes DirectoryStorage homes: a transactional
 * object store (the ZODB storage model) kept as one ordinary file per object
 * revision, bit-compatible with the original Python implementation.
 *
 * Contract (LMDB style):
 *  - every function that can fail returns an int status: DS_OK (0) or one of
 *    the DS_E* codes below;
 *  - a function that fails fills the caller's ds_error (when non-NULL) with a
 *    message naming the operation, the path and the reason; the library never
 *    prints and never exits;
 *  - every constructor has a matching *_free / *_close that accepts NULL;
 *  - each function's comment lists the errors it can return and who owns the
 *    pointers it hands back.
 *
 * Identifiers: oids and tids are 8 big-endian bytes on disk; the API carries
 * them as uint64_t holding that big-endian value (so comparison of tids is
 * comparison of integers).
 */
#ifndef DIRSTORAGE_H
#define DIRSTORAGE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version, "MAJOR.MINOR.PATCH": the one defined by the
 * project() line of CMakeLists.txt (compiled in as DS_VERSION). */
const char *ds_version(void);

/* ------------------------------------------------------------------ */
/* Status codes and errors (error.c)                                   */
/* ------------------------------------------------------------------ */

enum ds_status {
	DS_OK = 0,
	DS_EIO,        /* a system call failed; ds_error.sys_errno says why */
	DS_ENOMEM,     /* out of memory */
	DS_EINVAL,     /* invalid argument (bad name, bad hex, bad option) */
	DS_ECORRUPT,   /* a file's content is not what the format allows */
	DS_ENOTFOUND,  /* no such file / object / revision / transaction */
	DS_EEXIST,     /* target already exists */
	DS_ELOCKED,    /* a lock is held by another process (pid in message) */
	DS_ECONFIG,    /* settings/identity refused (version, format, class) */
	DS_ECONFLICT,  /* write conflict: stale serial */
	DS_ESTATE,     /* operation not allowed in the current state
	                * (failed transaction, snapshot held, read-only) */
	DS_EPROTO,     /* replication protocol / archive refused */
	DS_EREFUSED,   /* replication refused by policy (identity, diverged,
	                * packed, newer) - needs a human */
	DS_EBUSY,      /* try again later (master in snapshot mode, packing) */
	DS_ESTATUS_MAX
};

#define DS_ERROR_MSG_MAX 2048

typedef struct ds_error {
	int status;                 /* one of enum ds_status */
	int sys_errno;              /* errno when status is DS_EIO, else 0 */
	char msg[DS_ERROR_MSG_MAX]; /* "operation path: reason" */
} ds_error;

/* Short constant text for a status ("I/O error", "corrupt file", ...). */
const char *ds_strerror(int status);

/* Reset an error to DS_OK with an empty message. Accepts NULL. */
void ds_error_clear(ds_error *err);

#if defined(__GNUC__)
#define DS_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define DS_PRINTF(a, b)
#endif

/* Fill err (may be NULL) with status, sys_errno 0 and a formatted message
 * (when it does not fit, the middle of its longest words is elided, never
 * the end); returns status, so that callers can write
 * `return ds_error_set(err, DS_EINVAL, ...)`. */
int ds_error_set(ds_error *err, int status, const char *fmt, ...)
	DS_PRINTF(3, 4);
/* Add context in front of the message of a failure err already holds:
 * "<formatted>: <err->msg>", status set to status, sys_errno kept (the
 * exit code still sees the system call's errno). err may be NULL.
 * Returns status. */
int ds_error_prefix(ds_error *err, int status, const char *fmt, ...)
	DS_PRINTF(3, 4);

/* ------------------------------------------------------------------ */
/* Hex, md5 and tids (util.c, tid.c)                                   */
/* ------------------------------------------------------------------ */

typedef uint64_t ds_tid;
typedef uint64_t ds_oid;

/* Big-endian conversion of 8/4/2 byte fields. */
uint64_t ds_get_u64(const unsigned char *p);
uint32_t ds_get_u32(const unsigned char *p);
uint16_t ds_get_u16(const unsigned char *p);
void ds_put_u64(unsigned char *p, uint64_t v);
void ds_put_u32(unsigned char *p, uint32_t v);
void ds_put_u16(unsigned char *p, uint16_t v);

/* Write n bytes as 2n hex digits plus NUL into out (size >= 2n+1). */
void ds_hex_upper(const unsigned char *in, size_t n, char *out);
void ds_hex_lower(const unsigned char *in, size_t n, char *out);
/* Parse exactly 2n hex digits (either case) into n bytes.
 * Errors: DS_EINVAL (wrong length or non-hex digit). */
int ds_hex_decode(const char *hex, unsigned char *out, size_t n);
/* A byte count for people: "N bytes" below 10 KiB, then "N.N KiB", then
 * "N.N MiB", into out[32]. */
void ds_size_format(uint64_t n, char out[32]);
/* "%016" PRIX64 of v into out[17]. */
void ds_id_format(uint64_t v, char out[17]);
/* Parse 16 hex digits (either case). Errors: DS_EINVAL. */
int ds_id_parse(const char *hex, uint64_t *out);

/* md5 of a buffer (OpenSSL libcrypto). */
void ds_md5(const void *data, size_t len, unsigned char out[16]);

/* ZODB TimeStamp: 4 bytes of minutes since 1900-01-01 UTC, 4 bytes of
 * seconds-within-minute * 2^32/60. */
ds_tid ds_tid_from_time(double unix_seconds);
double ds_tid_to_time(ds_tid tid);
/* Returns ds_tid_from_time(now) when that is > last, else last + 1, or,
 * when last's low word is already 0xFFFFFFFF, the start of the next minute
 * on the real calendar (the original's laterThan): strictly increasing
 * even if the clock goes backwards. */
ds_tid ds_tid_next(ds_tid last, double now);
/* "YYYY-MM-DD HH:MM:SS GMT" (seconds truncated) into out[24]. */
void ds_tid_format(ds_tid tid, char out[24]);

/* ------------------------------------------------------------------ */
/* Layouts: database name <-> path (layout.c)                          */
/* ------------------------------------------------------------------ */

typedef enum ds_layout {
	DS_LAYOUT_BUSHY = 0,
	DS_LAYOUT_CHUNKY,
	DS_LAYOUT_LAWN,
	DS_LAYOUT_FLAT
} ds_layout;

#define DS_NAME_MAX 64   /* longest database name + NUL, with margin */
#define DS_RELPATH_MAX 96

/* "bushy" -> DS_LAYOUT_BUSHY etc. Errors: DS_ECONFIG (unknown format). */
int ds_layout_parse(const char *format, ds_layout *out, ds_error *err);
const char *ds_layout_str(ds_layout layout);

/* Is name a valid database name: x.serial, x.oid, x.packed,
 * o<16 UPPER hex>.c, o<16 UPPER hex>.<16 UPPER hex>, t<6 hex>.<10 hex>? */
int ds_name_valid(const char *name);

/* Name -> path relative to A/ (or B/), e.g. "x/oid".
 * Errors: DS_EINVAL (not a valid name; buffer too small). */
int ds_layout_name_to_path(ds_layout layout, const char *name, char *out,
                           size_t outsz, ds_error *err);
/* Path relative to A/ -> database name. Refuses (DS_EINVAL) any path that
 * is not exactly the path that layout gives to a valid name. */
int ds_layout_path_to_name(ds_layout layout, const char *relpath, char *out,
                           size_t outsz, ds_error *err);

/* Database names for ids: "o<OID>.<SERIAL>", "o<OID>.c", "t<6>.<10>". */
void ds_name_revision(ds_oid oid, ds_tid serial, char out[DS_NAME_MAX]);
void ds_name_pointer(ds_oid oid, char out[DS_NAME_MAX]);
void ds_name_transaction(ds_tid tid, char out[DS_NAME_MAX]);

/* ------------------------------------------------------------------ */
/* Records: object revisions, transactions, pointers, x.* (records.c)  */
/* ------------------------------------------------------------------ */

#define DS_OBJ_MAGIC 0xBDB82A71u
#define DS_TXN_MAGIC 0x47400776u
#define DS_OBJ_HEADER 72
#define DS_TXN_HEADER 60
#define DS_PTR_LEGACY_MAGIC 0x0BFEE8ECu

/* Decoded object revision. Pointers point INTO the buffer that was decoded
 * and live as long as it does. */
typedef struct ds_objrec {
	ds_oid oid;
	ds_tid undo_from;       /* bytes 16-23 */
	ds_tid prev_serial;     /* bytes 56-63 */
	ds_tid serial;          /* bytes 64-71 */
	int md5_present;        /* md5 field non-zero */
	const unsigned char *pickle;
	size_t pickle_len;      /* 0: creation undone */
} ds_objrec;

typedef struct ds_txnrec {
	ds_tid tid;
	ds_tid prev_tid;        /* bytes 24-31 */
	int md5_present;
	const char *user;        size_t user_len;       /* not NUL terminated */
	const char *description; size_t description_len;
	const unsigned char *extension; size_t extension_len;
	const unsigned char *oids;  /* 8 bytes per oid, file order */
	size_t noids;
} ds_txnrec;

/* Decode and verify an object revision file's bytes. `what` names the file
 * in error messages (a path). Checks magic, length field == len, reserved
 * fields, md5 when non-zero.
 * Errors: DS_ECORRUPT. */
int ds_objrec_decode(const unsigned char *buf, size_t len, const char *what,
                     ds_objrec *out, ds_error *err);
/* Encode; *out is malloc'd, caller frees. with_md5: compute the md5 field.
 * Errors: DS_ENOMEM, DS_EINVAL (too large). */
int ds_objrec_encode(const ds_objrec *rec, int with_md5, unsigned char **out,
                     size_t *outlen, ds_error *err);

/* Errors: DS_ECORRUPT (magic, length, md5, reserved bytes 16-23 non-zero,
 * header lengths not adding up to the file's length, oids block not a
 * multiple of 8, duplicate oid, version length non-zero), DS_ENOMEM. */
int ds_txnrec_decode(const unsigned char *buf, size_t len, const char *what,
                     ds_txnrec *out, ds_error *err);
/* Errors: DS_ENOMEM, DS_EINVAL (field too long for its length field,
 * duplicate oid). */
int ds_txnrec_encode(const ds_txnrec *rec, int with_md5, unsigned char **out,
                     size_t *outlen, ds_error *err);

/* `.c` pointer file: 8 bytes, or 12 bytes legacy (magic then serial).
 * Errors: DS_ECORRUPT. */
int ds_pointer_decode(const unsigned char *buf, size_t len, const char *what,
                      ds_tid *serial, ds_error *err);
/* x.serial, x.oid, x.packed: exactly 8 bytes. Errors: DS_ECORRUPT. */
int ds_xfile_decode(const unsigned char *buf, size_t len, const char *what,
                    uint64_t *value, ds_error *err);

/* Read a whole file into a malloc'd buffer (caller frees). max_len bounds
 * what is accepted (0: no bound). Errors: DS_ENOTFOUND, DS_EIO,
 * DS_ECORRUPT (larger than max_len), DS_ENOMEM. */
int ds_file_read(const char *path, size_t max_len, unsigned char **out,
                 size_t *outlen, ds_error *err);

/* ------------------------------------------------------------------ */
/* Settings and identity (settings.c)                                   */
/* ------------------------------------------------------------------ */

typedef struct ds_settings ds_settings; /* opaque */

/* Parse a ConfigParser-syntax file. Errors: DS_ENOTFOUND, DS_EIO,
 * DS_ECONFIG (syntax error with line number), DS_ENOMEM.
 * Result owned by caller: ds_settings_free. */
int ds_settings_load(const char *path, ds_settings **out, ds_error *err);
/* Same, from a buffer; `what` names it in messages. */
int ds_settings_parse(const char *text, size_t len, const char *what,
                      ds_settings **out, ds_error *err);
void ds_settings_free(ds_settings *s);
/* Raw value (continuation lines joined with '\n'; no %-interpolation), or
 * NULL. Pointer owned by s. Keys and sections are case sensitive; a key
 * absent from an existing section falls back to [DEFAULT] as in
 * configparser. */
const char *ds_settings_get(const ds_settings *s, const char *section,
                            const char *key);
/* Called for each option of a section: key and raw value, owned by the
 * settings. A non-zero return stops the walk and is returned. */
typedef int (*ds_settings_fn)(const char *key, const char *value, void *ctx);
/* Every option of section in configparser's options() order (the
 * section's own in file order, then those of [DEFAULT] it does not
 * have, with [DEFAULT]'s value). DS_OK at once when the section is
 * absent; otherwise DS_OK or fn's first non-zero return. */
int ds_settings_foreach(const ds_settings *s, const char *section,
                        ds_settings_fn fn, void *ctx);
/* Integer with default when absent. Errors: DS_ECONFIG (not an integer). */
int ds_settings_get_int(const ds_settings *s, const char *section,
                        const char *key, long def, long *out, ds_error *err);

/* What a storage's config says, validated. */
typedef struct ds_config {
	ds_layout layout;
	char classname[32];      /* "Full" or "Minimal" */
	char identity[33];       /* 32 lowercase hex */
	int md5_write, md5_read, md5_overwrite, md5_undolog, md5_undo,
	    md5_history, md5_pack;
	long flush_interval, flush_file_threshold,
	     flush_transaction_threshold, backlog;
	int sync, quick_shutdown, dirsync;  /* dirsync is the effective value,
	                                      * as the original uses it: [posix]
	                                      * dirsync (default 1), 0 when sync
	                                      * is 0 */
	long delay_delete, min_pack_time;
} ds_config;

/* Read HOME/config/settings and HOME/config/identity.
 * Errors: DS_ENOTFOUND (not a storage: names the missing file), DS_EIO,
 * DS_ECONFIG (version is not 0.11 / unknown format / bad identity: says
 * which), DS_ENOMEM. */
int ds_config_load(const char *home, ds_config *out, ds_error *err);

/* ------------------------------------------------------------------ */
/* Locks (lock.c)                                                      */
/* ------------------------------------------------------------------ */

typedef struct ds_lock ds_lock; /* opaque */

/* Open (creating 0644) and flock(LOCK_EX|LOCK_NB) path, then write
 * " <pid>\n" at offset 0 and truncate, as the original does.
 * Errors: DS_ELOCKED (held: message gives the holder's pid as written in
 * the file), DS_EIO, DS_ENOMEM. *out owned by caller: ds_lock_release. */
int ds_lock_acquire(const char *path, ds_lock **out, ds_error *err);
/* Unlock and close; never deletes the file. Accepts NULL. */
void ds_lock_release(ds_lock *lock);

/* ------------------------------------------------------------------ */
/* Creating a storage (mkds.c)                                          */
/* ------------------------------------------------------------------ */

/* Make a new empty storage at home, laid out exactly as the original's
 * mkds.py: config/settings (same text), config/identity (32 random hex, no
 * newline), A/ B/ journal/ misc/, zeroed x.oid x.serial x.packed (0644).
 * classname: "Full" or "Minimal"; format: bushy/chunky/lawn/flat.
 * Durable (files and directories fsynced) and all-or-nothing: a failure
 * part way removes what was made.
 * Errors: DS_EEXIST (home exists, even as an empty directory or a
 * symlink), DS_ECONFIG (class/format), DS_ENOTFOUND (parent missing),
 * DS_EIO, DS_EINVAL (path too long), DS_ENOMEM. */
int ds_storage_create(const char *home, const char *classname,
                      const char *format, ds_error *err);


/* ------------------------------------------------------------------ */
/* The Full storage engine (storage.c, journal.c, txn.c, read.c, ...)   */
/* ------------------------------------------------------------------ */

typedef struct ds_storage ds_storage; /* opaque; one per open HOME */
typedef struct ds_txn ds_txn;         /* opaque; one open transaction */

enum ds_open_flags {
	DS_OPEN_READONLY = 1u << 0,  /* no writes; commits fail DS_ESTATE */
	DS_OPEN_NOSYNC = 1u << 1,    /* as [filesystem] sync 0 */
	DS_OPEN_NOTHREAD = 1u << 2,  /* no background flusher: batches are
	                              * flushed inline by the committing
	                              * thread, and on close */
	DS_OPEN_SYNCHRONOUS = 1u << 3, /* as the original's synchronous=1:
	                              * refuse (DS_EBUSY) instead of staying
	                              * in snapshot mode when a snapshot user
	                              * holds misc/sublock; B is recombined
	                              * into A before open returns */
	DS_OPEN_CONTROL = 1u << 4,   /* listen on the control socket
	                              * misc/control (see below) so that
	                              * `ds snapshot` and the master side of
	                              * `ds replica` can put the storage in
	                              * snapshot mode while this process holds
	                              * it open (ignored with DS_OPEN_READONLY:
	                              * a read-only open writes nothing, misc/
	                              * included) */
};

enum ds_close_flags {
	DS_CLOSE_QUICK = 1u << 0,    /* do not enter snapshot mode; committed
	                              * transactions may stay in journal/ */
};

/* Longest snapshot code accepted (bytes, without NUL). */
#define DS_SNAPSHOT_CODE_MAX 200

/* Open HOME: take misc/lock then misc/sublock (when a snapshot user holds
 * the sublock, stay in snapshot mode "startup": A is not touched, flushes
 * go to B), recover the journal (apply a pending journal/replica.tar
 * first, which must be alone in journal/ with B empty; roll every
 * working_<TID>_done forward; delete every working_<TID>_temp), then leave
 * snapshot mode by moving B's files over A's. Recovery is complete when
 * open returns: journal/ is empty.
 * With DS_OPEN_READONLY nothing is written: misc/lock is taken without
 * writing the pid (created, empty, only if missing), misc/sublock is not
 * taken, the journal is checked with recovery's rules (refusing what
 * recovery would refuse) but not recovered, and committed transactions
 * still in journal/ or B/ are read where they are; a pending
 * journal/replica.tar is refused (DS_ESTATE). Closing writes nothing.
 * Errors: DS_ENOTFOUND / DS_ECONFIG (not a usable storage; class not
 * Full), DS_ELOCKED (misc/lock held: the holder's pid in the message),
 * DS_EBUSY (a snapshot user holds misc/sublock and DS_OPEN_SYNCHRONOUS
 * was given, or a journal/replica.tar is pending: it would change A),
 * DS_ECORRUPT (unexpected journal entry or bad x.* file, named),
 * DS_EPROTO (journal/replica.tar unreadable), DS_EIO, DS_ENOMEM.
 * *out owned by caller: ds_storage_close. */
int ds_storage_open(const char *home, unsigned flags, ds_storage **out,
                    ds_error *err);
/* The control socket (control.c), with DS_OPEN_CONTROL: open binds the
 * unix stream socket HOME/misc/control (mode 0600, the process's uid) once
 * it holds misc/lock, before recovery, and a thread answers on it until
 * close, which removes it. It replaces a stale socket (nobody listens:
 * the holder died) and refuses a symlink, anything but a socket, or a
 * socket someone still listens on. Only the process's own uid and root
 * are served (SO_PEERCRED). The protocol, one line each way (the server
 * speaks first):
 *   server: "dirstorage-control 1"
 *   client: "enter CODE"  -> "ok" | "error KIND MESSAGE"
 *   client: "leave CODE"  -> "ok" | "error KIND MESSAGE"
 *   client: "status"      -> "ok CURRENT" (the snapshot code, "-" when
 *                            A is being written)
 * CODE is 1..DS_CONTROL_CODE_MAX printable ASCII bytes without blanks;
 * the storage enters snapshot mode "user/CODE" and lets go of
 * misc/sublock, which the client then takes (as the original's
 * enter_snapshot over XML-RPC); leave takes misc/sublock back (refused,
 * "busy", while the client still holds it) and leaves. KIND is busy,
 * state, invalid, denied or io. A connection that entered snapshot mode
 * and closes without leaving (its client died) has it left for it as
 * soon as misc/sublock is free.
 * Open errors, besides those below: DS_EBUSY (a process listens on
 * misc/control), DS_ECONFIG (misc/control is a symlink or not a socket),
 * DS_EIO. */
#define DS_CONTROL_CODE_MAX (DS_SNAPSHOT_CODE_MAX - 5)

/* Flush the journal, enter snapshot mode "shutdown" (unless quick, by flag
 * or [filesystem] quick_shutdown, or the storage is already held in
 * snapshot mode under another code), stop the flusher, release the locks,
 * free. A transaction still open must have been finished or aborted
 * before. Accepts NULL. Errors: DS_EIO (the storage is still freed and
 * its locks released; the journal is recovered at the next open). */
int ds_storage_close(ds_storage *s, unsigned flags, ds_error *err);

/* Owned by s. */
const ds_config *ds_storage_config(const ds_storage *s);
const char *ds_storage_home(const ds_storage *s);
/* Tid of the last committed transaction (x.serial; 0 when empty). */
ds_tid ds_storage_last_tid(const ds_storage *s);
/* Highest oid allocated (x.oid as it will be written). */
ds_oid ds_storage_last_oid(const ds_storage *s);
/* x.packed (0 if never packed). */
ds_tid ds_storage_last_pack(const ds_storage *s);

/* Move every committed journal transaction into A (or B in snapshot
 * mode) now, and wait for it. Errors: DS_EIO (also when the flusher
 * failed earlier: from then on nothing more is flushed; the journal keeps
 * the data and the next open recovers it). */
int ds_storage_flush(ds_storage *s, ds_error *err);
/* Enter snapshot mode under `code` (1..DS_SNAPSHOT_CODE_MAX bytes): flush
 * the journal into A, then stop writing A (later flushes go to B) and
 * write misc/snapshot (0640, content = code, no newline). Waits for a
 * recombination still running after a leave, and for the transaction in
 * progress (commits wait from the flush until A is switched, so that A
 * holds whole transactions only): never call it with a transaction of
 * the calling thread open. This process keeps holding misc/sublock.
 * Errors: DS_EBUSY (already in snapshot mode under another code: named),
 * DS_EINVAL (bad code), DS_EIO. */
int ds_storage_snapshot_enter(ds_storage *s, const char *code, ds_error *err);
/* Leave snapshot mode held under `code`: delete misc/snapshot, then move
 * B's files over A's in the background (reads stay correct meanwhile).
 * When the storage does not hold misc/sublock (mode "startup", which open
 * stays in when a snapshot user held it; or a mode it let go of with
 * ds_storage_snapshot_let_go, as the control socket does for its
 * clients) it takes it back first.
 * Errors: DS_ESTATE (not held under that code), DS_EBUSY (sublock still
 * held by the snapshot user: pid named), DS_EIO. */
int ds_storage_snapshot_leave(ds_storage *s, const char *code, ds_error *err);
/* Let go of misc/sublock while snapshot mode `code` is held, so that a
 * snapshot user in another process (a backup script, `ds snapshot`, the
 * master side of `ds replica`) can lock it: that lock, not this process,
 * then guarantees A stays a snapshot. This is the original's
 * enter_snapshot as a storage server offers it (enter, then release the
 * sublock: half_unlock); the control socket does it after each enter.
 * ds_storage_snapshot_leave takes the lock back, and refuses (DS_EBUSY)
 * while the snapshot user still holds it. Calling it again, or in mode
 * "startup" (open found the sublock held), changes nothing.
 * Errors: DS_ESTATE (read-only; not in snapshot mode under that code,
 * or still entering it), DS_EINVAL (bad code). */
int ds_storage_snapshot_let_go(ds_storage *s, const char *code, ds_error *err);
/* Current snapshot code into out (empty when A is being written);
 * "recombining/<code>" while B is moved back. */
void ds_storage_snapshot_code(ds_storage *s, char out[DS_SNAPSHOT_CODE_MAX + 16]);

/* Read the bytes of database file `name` as the storage sees it now
 * (journal, then B in snapshot mode, then A). *buf malloc'd, caller frees.
 * Errors: DS_ENOTFOUND, DS_EIO, DS_EINVAL (bad name). */
int ds_storage_read_name(ds_storage *s, const char *name, unsigned char **buf,
                         size_t *len, ds_error *err);

/* ---- allocating oids ---- */

/* Allocate the next oid (x.oid + 1), in memory as ZODB does: it becomes
 * durable with the next committed transaction, or ds_storage_save_oid.
 * Never an id at or below one in use: x.oid counts oids stored above it
 * (ds_txn_store raises it at once), and ids do not wrap.
 * Errors: DS_ESTATE (read-only; ids exhausted: x.oid is
 * FFFFFFFFFFFFFFFF). */
int ds_storage_new_oid(ds_storage *s, ds_oid *out, ds_error *err);
/* Make the oids allocated so far durable without a transaction: writes
 * x.oid alone through the journal (same commit protocol, no t file, x.serial
 * unchanged). Errors: DS_ESTATE (read-only), DS_EIO. */
int ds_storage_save_oid(ds_storage *s, ds_error *err);

/* ---- transactions (txn.c, undo.c) ---- */

/* Begin a transaction: waits while another transaction of s is open
 * (one at a time, as ZODB's commit lock), takes the next tid (strictly
 * greater than every tid issued before) and creates
 * journal/working_<TID>_temp/. user, description: NUL-terminated (NULL =
 * empty), at most 65535 bytes each; extension: pickled dict bytes (may be
 * NULL/0), at most 65535.
 * Errors: DS_ESTATE (read-only storage; flusher broken), DS_EINVAL (too
 * long), DS_EIO. *out owned by caller until ds_txn_finish/ds_txn_abort. */
int ds_txn_begin(ds_storage *s, const char *user, const char *description,
                 const unsigned char *extension, size_t extension_len,
                 ds_txn **out, ds_error *err);
/* Begin a transaction that commits as `tid` instead of the engine's next
 * tid: restoring history copied from another storage (ZODB's restore and
 * copyTransactionsFrom), where every transaction keeps its tid. tid must
 * be later than the last committed transaction; tids the engine hands out
 * afterwards are later than it. Otherwise as ds_txn_begin.
 * Errors: DS_EINVAL (tid zero, or not later than the last committed
 * transaction: both named), and those of ds_txn_begin. */
int ds_txn_begin_at(ds_storage *s, ds_tid tid, const char *user,
                    const char *description, const unsigned char *extension,
                    size_t extension_len, ds_txn **out, ds_error *err);
/* The tid this transaction will commit as. */
ds_tid ds_txn_tid(const ds_txn *t);
/* Store a new revision of oid. expected_serial is the serial the caller's
 * data was based on (0 for a new object); when the object exists and its
 * current serial differs, the store fails with DS_ECONFLICT naming the oid
 * and both serials. Storing an oid twice in one transaction keeps the
 * last pickle. An oid above x.oid raises x.oid at once (in memory, durable
 * with the transaction), so ds_storage_new_oid never hands it out.
 * Errors: DS_ECONFLICT, DS_EINVAL (empty pickle), DS_ECORRUPT (current
 * pointer unreadable), DS_ESTATE (transaction failed / voted), DS_EIO.
 * Any error but DS_EINVAL leaves the transaction failed: abort it. */
int ds_txn_store(ds_txn *t, ds_oid oid, ds_tid expected_serial,
                 const void *pickle, size_t len, ds_error *err);
/* Write a revision of oid exactly as given, without the conflict check
 * (ZODB's restore: the data is known good, copied from another storage).
 * serial is the revision's serial and must be t's tid (a revision file
 * is named by its transaction). pickle/len: the data; len 0 writes a
 * "creation undone" revision (72 bytes). data_serial: the serial of an
 * earlier revision this data is a copy of (ZODB's data_txn / prev_txn:
 * an undo's backpointer), kept in bytes 16-23 as an undo writes it, or
 * 0. The previous-serial field is the object's current serial. An oid
 * above x.oid raises x.oid.
 * Errors: DS_EINVAL (serial is not t's tid; data_serial not earlier than
 * t: t stays usable), DS_ECORRUPT (current pointer unreadable, or later
 * than t), DS_ESTATE (transaction failed / voted), DS_EIO. Any error but
 * DS_EINVAL and DS_ESTATE leaves the transaction failed: abort it. */
int ds_txn_restore(ds_txn *t, ds_oid oid, ds_tid serial, const void *pickle,
                   size_t len, ds_tid data_serial, ds_error *err);
/* Undo transaction `tid` inside t, as the original's transactionalUndo:
 * every object it wrote gets a new revision that copies the revision
 * before it (bytes 16-23 = the serial copied; an object the undone
 * transaction created gets a 72-byte "creation undone" revision).
 * Refused, with t left usable, when a later transaction changed one of
 * the objects (unless that change is itself an undo copy of it) or when a
 * needed revision is gone. *oids (malloc'd, caller frees) receives the
 * oids undone, may be NULL.
 * Errors: DS_ENOTFOUND (no record of that transaction), DS_ECONFLICT
 * (objects modified by a later transaction: the oid named), DS_ECORRUPT,
 * DS_ESTATE, DS_EIO (then t is failed). */
int ds_txn_undo(ds_txn *t, ds_tid tid, ds_oid **oids, size_t *noids,
                ds_error *err);
/* Write the transaction file, x.oid and x.serial, fsync every file and
 * the transaction directory ([filesystem] sync, [posix] dirsync).
 * Errors: DS_ESTATE, DS_EIO (t failed). */
int ds_txn_vote(ds_txn *t, ds_error *err);
/* Commit point: rename working_<TID>_temp to working_<TID>_done, fsync
 * journal/; the transaction is then visible to reads and queued for
 * flushing (may block while [journal] backlog batches wait). Votes first
 * if not voted. Frees t in every case. *tid (may be NULL) gets the tid
 * when the transaction was committed, and is left alone otherwise: set
 * it to 0 first to tell the two failures below apart.
 * Errors: DS_ESTATE (t failed: nothing committed, t aborted), DS_EIO
 * (before the rename: nothing committed, *tid untouched; after it, only
 * the fsync of journal/ failed: *tid is set, the transaction is visible
 * but may not survive a crash, and must not be committed again). */
int ds_txn_finish(ds_txn *t, ds_tid *tid, ds_error *err);
/* Drop the transaction: its files and directory are removed. Frees t.
 * Accepts NULL. */
void ds_txn_abort(ds_txn *t);

/* ---- reads (read.c) ---- */

/* Current serial of oid (its .c pointer).
 * Errors: DS_ENOTFOUND (no such object), DS_ECORRUPT, DS_EIO. */
int ds_storage_current_serial(ds_storage *s, ds_oid oid, ds_tid *serial,
                              ds_error *err);
/* Current pickle of oid. *pickle malloc'd, caller frees (len is never 0:
 * an empty pickle is "creation undone" and reads as DS_ENOTFOUND).
 * serial may be NULL. md5 checked per [md5policy] read.
 * Errors: DS_ENOTFOUND, DS_ECORRUPT (header, oid/serial mismatch, md5),
 * DS_EIO, DS_ENOMEM. */
int ds_storage_load(ds_storage *s, ds_oid oid, unsigned char **pickle,
                    size_t *len, ds_tid *serial, ds_error *err);
/* The revision of oid written by transaction `serial`. Same errors. */
int ds_storage_load_serial(ds_storage *s, ds_oid oid, ds_tid serial,
                           unsigned char **pickle, size_t *len,
                           ds_error *err);
/* The revision current just before tid: serial < tid; *next_serial is the
 * serial of the revision after it (0 when it is the current one).
 * Errors: DS_ENOTFOUND (no revision before tid, or that revision is a
 * creation undone), DS_ECORRUPT, DS_EIO, DS_ENOMEM. */
int ds_storage_load_before(ds_storage *s, ds_oid oid, ds_tid tid,
                           unsigned char **pickle, size_t *len,
                           ds_tid *serial, ds_tid *next_serial,
                           ds_error *err);

/* One transaction's metadata (everything malloc'd inside one block owned
 * by the struct: free with ds_txninfo_free). */
typedef struct ds_txninfo {
	ds_tid tid;
	ds_tid prev_tid;
	char *user;              /* NUL-terminated copy (may hold NULs) */
	size_t user_len;
	char *description;
	size_t description_len;
	unsigned char *extension;
	size_t extension_len;
	ds_oid *oids;            /* oid block, file order */
	size_t noids;
} ds_txninfo;

/* Read transaction tid's file ([md5policy] undolog).
 * Errors: DS_ENOTFOUND, DS_ECORRUPT, DS_EIO, DS_ENOMEM. */
int ds_storage_txn_info(ds_storage *s, ds_tid tid, ds_txninfo **out,
                        ds_error *err);
void ds_txninfo_free(ds_txninfo *info);

/* Call fn for transactions: DS_ITER_NEWEST_FIRST walks the back pointers
 * from x.serial down (stopping at the start of history or where a pack
 * removed the rest); otherwise the transactions with tid >= from are
 * given oldest first. fn returns 0 to go on, non-zero to stop (that value
 * is then returned). Errors: those of ds_storage_txn_info. */
#define DS_ITER_NEWEST_FIRST 1u
typedef int (*ds_txn_iter_fn)(const ds_txninfo *info, void *ctx);
int ds_storage_txn_iterate(ds_storage *s, ds_tid from, unsigned flags,
                           ds_txn_iter_fn fn, void *ctx, ds_error *err);

/* One revision in an object's history, newest first. */
typedef struct ds_history_entry {
	ds_tid serial;
	ds_tid undo_from;        /* bytes 16-23 */
	ds_tid prev_serial;
	size_t size;             /* pickle length; 0 = creation undone */
	int txn_known;           /* 0: transaction file removed by a pack */
	char *user;              /* NUL-terminated; "" when !txn_known */
	char *description;
	unsigned char *extension;
	size_t extension_len;
} ds_history_entry;

/* Up to max revisions of oid (0 = all), newest first, with their
 * transaction's metadata ([md5policy] history). *out malloc'd: free with
 * ds_history_free(*out, *n).
 * Errors: DS_ENOTFOUND (no such object), DS_ECORRUPT, DS_EIO, DS_ENOMEM. */
int ds_storage_history(ds_storage *s, ds_oid oid, size_t max,
                       ds_history_entry **out, size_t *n, ds_error *err);
void ds_history_free(ds_history_entry *h, size_t n);

/* ------------------------------------------------------------------ */
/* Messages for the operator                                           */
/* ------------------------------------------------------------------ */

/* Long-running library functions that have something to tell the operator
 * (what the original tools print on stderr) pass it to a callback; the
 * library itself never prints. msg has no trailing newline and is only
 * valid during the call. A tool shows a message when level <= its
 * verbosity (0 with -q, 1 by default, 2 with -v, 3 with -vv). */
enum ds_log_level {
	DS_LOG_WARN = 0,     /* shown even with -q */
	DS_LOG_INFO = 1,     /* shown by default */
	DS_LOG_VERBOSE = 2,  /* -v */
	DS_LOG_DEBUG = 3,    /* -vv */
};
typedef void (*ds_log_fn)(int level, const char *msg, void *ctx);

/* ------------------------------------------------------------------ */
/* Changes since a transaction: the whatsnew walk (changes.c)           */
/* ------------------------------------------------------------------ */

struct ds_changes_opts {
	ds_log_fn log;       /* may be NULL */
	void *log_ctx;
};

struct ds_changes_info {
	ds_tid newest;              /* x.serial */
	ds_tid packed;              /* x.packed */
	unsigned long paths;        /* paths listed */
	unsigned long objects;      /* distinct oids */
	unsigned long transactions; /* transactions listed */
	int since_in_chain;         /* the walk met `since` exactly */
};

/* Called once per path, in the original whatsnew.py's order; relpath is
 * relative to HOME ("A/x/serial") and valid only during the call. A
 * non-zero return stops the walk and is returned by ds_changes_walk (fill
 * err when returning non-zero). */
typedef int (*ds_changes_fn)(const char *relpath, void *ctx, ds_error *err);

/* List the files a replica at transaction `since` lacks, exactly as the
 * original whatsnew.py: A/<x.serial>, A/<x.oid>, then walking back from
 * x.serial through the previous-tid pointers while the tid is later than
 * `since`: the transaction file, then for each oid of its oid block the
 * `.c` pointer (first time the oid is seen only) and the revision file.
 * HOME must be held in snapshot mode by the caller (ds_snapshot_acquire).
 * Logs (INFO) "Newest transaction is <TID> <date>" or "No transactions
 * since <TID> <date>", and (VERBOSE) the totals. opts, info may be NULL.
 * Errors: DS_ENOTFOUND / DS_ECONFIG (not a storage; "this is not a Full
 * storage"), DS_EREFUSED ("specified transaction id is in the future";
 * "storage has been packed since the specified transaction"), DS_ECORRUPT
 * (a transaction file of the walk is missing or corrupt, or its previous
 * pointer goes forwards), DS_EIO, DS_ENOMEM, or fn's status. */
int ds_changes_walk(const char *home, ds_tid since,
                    const struct ds_changes_opts *opts, ds_changes_fn fn,
                    void *ctx, struct ds_changes_info *info, ds_error *err);

/* ------------------------------------------------------------------ */
/* Snapshot acquisition (snapshot.c)                                   */
/* ------------------------------------------------------------------ */

typedef struct ds_snapshot ds_snapshot; /* opaque */

struct ds_snapshot_opts {
	const char *conf_path;  /* NULL or "-": HOME/config/snapshot.conf */
	unsigned timeout;       /* keep retrying a busy storage this long (s) */
	unsigned sleep;         /* seconds between retries; 0 means 10 */
	ds_log_fn log;          /* may be NULL */
	void *log_ctx;
	int quiet;              /* the caller only reads: take the locks
	                         * without writing the pid into them, so
	                         * that a storage already in snapshot mode is
	                         * left byte for byte as it was */
};

/* Force HOME into snapshot mode and lock it there, as the original
 * snapshot.py: when the environment has SNAPSHOT_VERSION=2 (we run under
 * an enclosing `ds snapshot`) that snapshot is reused (home may then be
 * NULL; if given it must be SNAPSHOT_DIRECTORY). Otherwise the lines of
 * snapshot.conf are tried in order: `http URL ACCESSFILE` (XML-RPC
 * enterSnapshot(code) with HTTP basic auth from ACCESSFILE's first line
 * "user:password", relative to the conf file's directory), `control
 * [PATH]` (the control socket of the process holding the storage open,
 * DS_OPEN_CONTROL; PATH relative to HOME, default misc/control; the
 * connection stays open until release), `direct`, `nodirect`; an
 * implicit `direct` is tried last unless `nodirect` was given or a direct
 * was tried. Without a snapshot.conf the lines are `control` then
 * `direct`. Unusable lines are warned about through the log, never
 * fatal. Direct access takes misc/lock and misc/sublock and checks
 * misc/snapshot; a storage that was not closed into snapshot mode (or,
 * unless opts->quiet, whose journal holds work a crashed process left, or
 * whose misc/snapshot is empty) is opened and closed through the engine
 * first; what recovery would refuse in journal/ is refused before
 * (DS_ECORRUPT). After http or control, only misc/sublock is taken (the
 * server holds misc/lock).
 * Errors: DS_EBUSY (storage in use or held by another snapshot user, after
 * retrying opts->timeout seconds; or "directory is not a snapshot"),
 * DS_EINVAL (no home and no enclosing snapshot; directories different),
 * DS_ECONFIG (SNAPSHOT_VERSION is not 2), DS_ENOTFOUND (not a storage),
 * DS_EIO, DS_ENOMEM. *out owned by caller: ds_snapshot_release. */
int ds_snapshot_acquire(const char *home, const struct ds_snapshot_opts *opts,
                        ds_snapshot **out, ds_error *err);
/* Absolute path of the storage held (owned by s). */
const char *ds_snapshot_dir(const ds_snapshot *s);
/* Unix time taken shortly before entering snapshot mode. */
long long ds_snapshot_timestamp(const ds_snapshot *s);
/* 1 when s reuses an enclosing `ds snapshot` (release does nothing). */
int ds_snapshot_inherited(const ds_snapshot *s);
/* Unlock and, after http, leaveSnapshot(code). Frees s. Accepts NULL.
 * Errors: DS_EIO (leaveSnapshot failed; s is still freed). */
int ds_snapshot_release(ds_snapshot *s, ds_error *err);

/* ------------------------------------------------------------------ */
/* Checking a storage (check.c)                                        */
/* ------------------------------------------------------------------ */

struct ds_check_stats {
	unsigned long transactions, transaction_bytes, transactions_no_md5;
	unsigned long objects, revisions, object_bytes, revisions_no_md5;
	unsigned long legacy_pointers;       /* 12-byte .c files */
	unsigned long undone_creations;      /* 72-byte revisions */
	unsigned long revisions_without_txn; /* their transaction was packed */
	unsigned long pack_leftovers;        /* *-<unixtime>-deleted files */
	unsigned long pack_leftover_bytes;
	unsigned long unfinished_pack;       /* revisions and transactions
	                                      * older than x.packed that
	                                      * nothing refers to: what an
	                                      * interrupted pack had yet to
	                                      * remove (the next pack does) */
	unsigned long problems;
	unsigned long cut_off;               /* transaction and revision
	                                      * files older than a break in
	                                      * the history (a missing or bad
	                                      * transaction file): counted
	                                      * here, not as problems each;
	                                      * listed at DS_LOG_VERBOSE */
};

struct ds_check_opts {
	ds_log_fn log;          /* problems: DS_LOG_WARN "<kind>: <path>";
	                         * progress: DS_LOG_VERBOSE */
	void *log_ctx;
	int no_snapshot;        /* read in place: the caller holds HOME still */
	const struct ds_snapshot_opts *snapshot; /* NULL: defaults */
};

/* The checkds equivalent: inside a snapshot, check the roots (x.* files,
 * not in the future), walk the transaction chain from x.serial verifying
 * each transaction file (magic, tid, length, md5) until zero or a
 * transaction older than x.packed, check every object (its `.c` pointer
 * names an existing revision; revision chain: header, oid, serial, md5,
 * back to zero or to before x.packed), that every oid of a transaction
 * later than x.packed has its revision, and that every file in A/ is
 * accounted for (pack leftovers counted, anything else reported as an
 * unexpected file). stats may be NULL.
 * Errors: DS_ECORRUPT (problems found: the message gives their number),
 * DS_ENOTFOUND / DS_ECONFIG (not a usable storage), DS_EBUSY (no
 * snapshot), DS_EIO, DS_ENOMEM. */
int ds_check(const char *home, const struct ds_check_opts *opts,
             struct ds_check_stats *stats, ds_error *err);

struct ds_compare_stats {
	unsigned long transactions;     /* transactions compared */
	unsigned long files_compared;
	unsigned long relinked;         /* previous pointer rewritten by pack */
	unsigned long pack_removed;     /* on the replica only, left by pack */
	unsigned long mode_differences; /* tolerated */
	unsigned long differences;      /* not tolerated */
};

/* Prove that REPLICA equals MASTER's history up to the replica's x.serial:
 * the same identity, the replica's tid is in the master's chain, and
 * every file of every transaction of that chain at or before the
 * replica's tid that the master still has holds the same bytes on both.
 * Tolerated and counted (a master pack explains them): files the master's
 * pack removed or renamed to *-deleted, a transaction file whose previous
 * pointer the pack rewrote (bytes 24..31 only), modes, x.packed, and `.c`
 * pointers of objects the master changed after the replica's tid (which
 * must then name a revision the replica has). Reads both in place (one
 * snapshot each unless opts->no_snapshot). Differences are logged at
 * DS_LOG_WARN. stats may be NULL.
 * Errors: DS_ECORRUPT (they differ: the message gives the count),
 * DS_EREFUSED (different identity; replica's tid not in the master's
 * history), DS_ENOTFOUND, DS_ECONFIG, DS_EBUSY, DS_EIO, DS_ENOMEM. */
int ds_check_compare(const char *master, const char *replica,
                     const struct ds_check_opts *opts,
                     struct ds_compare_stats *stats, ds_error *err);

/* ------------------------------------------------------------------ */
/* Replication (replica_master.c: the master side)                      */
/* ------------------------------------------------------------------ */

struct ds_replica_serve_opts {
	ds_log_fn log;               /* may be NULL */
	void *log_ctx;
	unsigned request_timeout;    /* seconds to wait for the request to
	                              * reach EOF; 0 means 300 */
	const struct ds_snapshot_opts *snapshot; /* NULL: defaults (its log
	                              * fields are replaced by ours) */
	int report_fd;               /* where the answer to the request's
	                              * "report held" goes (one tagged line
	                              * with the snapshot hold time, read by
	                              * ds replica); 0: not written. The CLI
	                              * gives 2: stderr, the channel the
	                              * replica side reads */
};

/* Serve one replication request read from in_fd (to EOF, at most 64 KiB),
 * writing the ustar increment to out_fd: byte for byte what the original
 * master (`cpio -o -H ustar`) writes. The request is the original's four
 * lines, optionally followed by our `relink <md5> <prev>` and `report held`
 * lines, or our `replica init 0` (config/settings, config/identity and every live file
 * of A/ inside one snapshot). The increment is spooled to an unlinked
 * temporary file inside snapshot mode, released as soon as the last file
 * is read; a thread sends the spool meanwhile, as it grows (the writer
 * never waits for the network). Operator messages go to opts->log.
 * err->msg holds the bare
 * reason: the original's ReplicaError texts ("different identity",
 * "reference transaction does not exist", "reference transaction
 * differs", "storage has been packed since the last replica ( <date> >
 * <date> )").
 * Errors: DS_EPROTO (malformed request), DS_EREFUSED (not a storage;
 * different identity; packed since the replica's tid; reference
 * transaction does not exist / differs; replica newer than master),
 * DS_EBUSY (snapshot held by someone else / storage in use), DS_ECORRUPT
 * (the master's own history is broken), DS_EIO, DS_ENOMEM. On a refusal
 * (every DS_EPROTO and DS_EREFUSED, and DS_EBUSY) nothing is written to
 * out_fd. A failure while the increment is being read (DS_ECORRUPT,
 * DS_EIO, DS_ENOMEM) may leave part of it sent, but never its
 * end-of-archive blocks: what reached out_fd is not a complete archive,
 * and a replica refuses it. */
int ds_replica_serve(const char *home, int in_fd, int out_fd,
                     const struct ds_replica_serve_opts *opts, ds_error *err);

/* ------------------------------------------------------------------ */
/* Replication (replica.c, recv.c, apply.c, transport.c: replica side) */
/* ------------------------------------------------------------------ */

/* An increment received and checked, for the hooks of ds_replica_opts. */
struct ds_replica_increment {
	const char *replica;          /* the replica's home */
	ds_tid base;                  /* the replica's last transaction */
	ds_tid first, last;           /* the increment's oldest and newest */
	unsigned long transactions;
	uint64_t bytes;
};

struct ds_replica_opts {
	const char *host;            /* master host; NULL: local mode (the
	                              * master side runs here as a child) */
	const char *user;            /* ssh -l USER; may be NULL */
	const char *master_dir;      /* the master's storage directory */
	const char *ssh_command;     /* replaces "ssh", split on whitespace
	                              * (may carry arguments); NULL: ssh */
	const char *remote_program;  /* ds on the master (ssh mode) */
	const char *local_program;   /* ds here (local mode) */
	const char *master_command;  /* NULL, or the master side's program
	                              * and leading words, split on
	                              * whitespace, in place of "<ds>
	                              * replica" (both modes), e.g.
	                              * "python3 /opt/ds/replica.py" for a
	                              * master that runs the original */
	int verbosity;               /* 0 -q, 1 default, 2+ -v: also passed
	                              * to the master side */
	const char *slot;            /* NULL, or this replica's name for its
	                              * replication slot on the master (sent
	                              * as a "slot" request line; slot.c) */
	unsigned timeout;            /* keep retrying this long (s) while the
	                              * master is busy (exit 3: snapshot mode
	                              * held, being packed) */
	unsigned sleep;              /* seconds between tries; 0 means 10 */
	ds_log_fn log;               /* may be NULL; the master's stderr
	                              * lines come through it too */
	void *log_ctx;
	/* called as the increment arrives (bytes so far); may be NULL */
	void (*progress)(uint64_t bytes, void *ctx);
	void *progress_ctx;
	unsigned read_timeout;       /* give up (DS_EBUSY) when the master
	                              * side sends nothing, neither output
	                              * nor messages, for this long (s);
	                              * 0 means 600 */
	unsigned deadline;           /* give up (DS_EBUSY) when the master
	                              * side's answer has not all arrived
	                              * this many seconds after the fetch
	                              * began, retries included (a master
	                              * that dribbles is never silent); its
	                              * whole process group is stopped;
	                              * 0: none (ds replica's default is
	                              * 4 hours) */
	uint64_t max_size;           /* refuse an increment (or an init
	                              * stream) longer than this many bytes
	                              * as it arrives (DS_EPROTO); 0: as
	                              * long as it fits twice (spool and
	                              * extraction) in the free space of the
	                              * replica's filesystem keeping 1% of
	                              * it free (else DS_EIO, ENOSPC);
	                              * UINT64_MAX: no limit */
	/* the exit code a failure is recorded with in misc/replica.state
	 * (the CLI's table); NULL: 1 */
	int (*exit_for)(int status, int sys_errno);
	/* Hooks around the apply (a hot standby stops and starts its
	 * read-only server there). Given either, the pull runs in another
	 * order, so that a server holding the replica open does not stop
	 * it: the replica is read in place without its lock (a journal or
	 * B/ holding work is first recovered through the engine), the
	 * increment fetched and checked into misc/.replica.watch (flock'd:
	 * one such run at a time), then, only when it holds transactions,
	 * before_apply runs; then the replica is opened (locked), must
	 * still be at the tid the increment starts from (else DS_EBUSY:
	 * abandoned, try again), and the increment is committed and
	 * applied; after_apply runs whenever before_apply returned DS_OK,
	 * with the outcome. A before_apply failure (its status and err are
	 * returned) abandons the increment: the replica is untouched. An
	 * after_apply failure is returned when the apply succeeded. */
	int (*before_apply)(const struct ds_replica_increment *inc, void *ctx,
	                    ds_error *err);
	int (*after_apply)(const struct ds_replica_increment *inc, int status,
	                   const ds_error *result, void *ctx, ds_error *err);
	void *hook_ctx;
	int no_keep_previous;        /* remove the applied increment (and
	                              * an older misc/replica.previous)
	                              * instead of keeping it as
	                              * misc/replica.previous, which the
	                              * original does (0) */
};

struct ds_replica_stats {
	ds_tid old_tid;              /* the replica's x.serial before */
	ds_tid new_tid;              /* and after */
	uint64_t bytes;              /* increment size */
	unsigned long members;       /* files in it */
	unsigned long transactions;
	unsigned long revisions;
	double seconds;              /* whole run */
	int tries;                   /* master side runs (retries + 1) */
	double master_held;          /* seconds the master was held in
	                              * snapshot mode, as its "snapshot mode
	                              * held N s" message said; -1 unknown */
	int master_original;         /* the master side answered as the
	                              * original replica.py does (its usage
	                              * text for a request it does not
	                              * know) */
};

/* Bring the replica at `replica` up to date with the master named in
 * opts (DESIGN.md section 3): lock the replica and recover it through the
 * engine, check it is a Full storage, send the request (the original's
 * four lines plus our `relink` line), spool the answer to
 * misc/.replica.incoming while checking every member (and that the
 * master's x.oid is not below the replica's), fsync, rename it to
 * journal/replica.tar (the commit point), extract it (ds_archive_apply),
 * rename it to misc/replica.previous and close the replica in snapshot
 * mode. Any failure before the commit point leaves the replica's files as
 * they were; a crash after it is completed by the next ds_replica_pull or
 * ds_storage_open. The caller must ignore SIGPIPE. stats may be NULL.
 * Errors: DS_ENOTFOUND / DS_ECONFIG (replica is not a storage, or not
 * Full), DS_ELOCKED (replica in use by a storage process or another
 * replication), DS_EBUSY (try again later: master busy or held in
 * snapshot mode, ssh or the connection failed, master side killed,
 * silent for read_timeout or past the deadline), DS_EREFUSED (the master
 * refused: identity, divergence, reference transaction missing, packed
 * since, replica newer -- the master's reason in the message; or the
 * master's x.oid is lower than the replica's; or the master side stopped
 * to prompt on the terminal), DS_EPROTO (the increment was refused: what and which
 * member in the message), DS_EINVAL (bad options), DS_EIO, DS_ENOMEM. */
int ds_replica_pull(const char *replica, const struct ds_replica_opts *opts,
                    struct ds_replica_stats *stats, ds_error *err);

/* Create a new replica at `replica` (which must not exist) from the
 * master: `replica init 0` answers with config/settings, config/identity
 * and every live file of A/ taken inside one snapshot. The storage is
 * built in a sibling directory "<replica>.init-<pid>" and renamed into
 * place when complete and durable.
 * A master that runs the original replica.py answers `replica init 0`
 * with its usage text (stats->master_original is set): then its
 * config/identity and config/settings are read with `cat` through the
 * same transport (ssh, or a local child), an empty storage is made with
 * them, and the master's whole history is pulled into it as one
 * ordinary increment (the all-zero tid, which the original serves unless
 * its storage was packed). Every failure on that path says "the master
 * runs the original replica.py: ..." and, where the original cannot make
 * a replica (packed master, cat refused), what to copy by hand.
 * Errors: those of ds_replica_pull, and DS_EEXIST (replica exists),
 * DS_EINVAL (an original master named by a relative path over ssh). */
int ds_replica_init(const char *replica, const struct ds_replica_opts *opts,
                    struct ds_replica_stats *stats, ds_error *err);

/* ------------------------------------------------------------------ */
/* Replication state and status (replica_state.c, status.c)            */
/* ------------------------------------------------------------------ */

/* What the replica side records about its runs in REPLICA/misc/
 * replica.state (a small text file, replaced atomically after every run
 * that held the replica's lock; a run refused because the replica is in
 * use writes nothing). Times are Unix seconds (wall clock); 0 means
 * never. The file format (one "key value" line each, after the line
 * "ds-replica-state 1"; unknown keys are ignored, so later versions may
 * add some) is in man/ds-status.1. */
#define DS_REPLICA_STATE_FILE "misc/replica.state"
#define DS_REPLICA_STATE_TEXT_MAX 1024

struct ds_replica_state {
	char master[DS_REPLICA_STATE_TEXT_MAX]; /* [[USER@]HOST:]DIR */
	char identity[33];            /* the storage's identity */
	ds_tid tid;                   /* the replica's last transaction after
	                               * the last successful run */
	double success_time;          /* end of the last successful run */
	double success_start;         /* its start: every transaction the
	                               * master had committed before it is
	                               * in the replica */
	unsigned long success_transactions; /* transactions it applied */
	double failure_time;          /* end of the last failed run */
	int failure_exit;             /* its exit code (README's table) */
	char failure_error[DS_REPLICA_STATE_TEXT_MAX]; /* its message */
	unsigned long failures;       /* failed runs since the last success */
};

/* Parse the bytes of a state file (what names it in messages).
 * Errors: DS_ECORRUPT (no "ds-replica-state 1" first line, a known key
 * whose value is malformed: the line number and key named). */
int ds_replica_state_parse(const char *buf, size_t len, const char *what,
                           struct ds_replica_state *st, ds_error *err);
/* The file's text for st into out (NUL terminated). Error texts are
 * written on one line (backslash, newline, other control bytes escaped
 * as \\, \n, \xNN). Errors: DS_EINVAL (does not fit outsz). */
int ds_replica_state_format(const struct ds_replica_state *st, char *out,
                            size_t outsz, ds_error *err);
/* Read HOME/misc/replica.state. *found is 0 (st zeroed, DS_OK) when the
 * file does not exist (no run recorded yet).
 * Errors: DS_ECORRUPT, DS_EIO, DS_ENOMEM. */
int ds_replica_state_read(const char *home, struct ds_replica_state *st,
                          int *found, ds_error *err);
/* Replace HOME/misc/replica.state with st: written to a temporary file
 * beside it, fsynced, renamed over it, misc/ fsynced (a crash leaves the
 * old file or the new one, never a mix). The caller must hold the
 * replica's lock. Errors: DS_EIO, DS_EINVAL, DS_ECORRUPT (misc/ is a
 * symlink). */
int ds_replica_state_write(const char *home, const struct ds_replica_state *st,
                           ds_error *err);

/* What a replica holds, read in place without locking it (status.c):
 * its identity, A's x.serial, whether a committed increment waits in
 * journal/replica.tar (then A is still at `tid`: the next ds replica or
 * open applies it), and its misc/replica.state. */
struct ds_replica_local {
	char identity[33];
	ds_tid tid;
	int pending;                  /* journal/replica.tar exists */
	int state_found;              /* misc/replica.state exists */
	struct ds_replica_state state;
};

/* Errors: DS_ENOTFOUND / DS_ECONFIG (not a storage), DS_ECORRUPT
 * (x.serial or misc/replica.state damaged: named), DS_EIO, DS_ENOMEM. */
int ds_replica_local_status(const char *home, struct ds_replica_local *out,
                            ds_error *err);

/* The master's side of `ds status`, asked with "replica status 0" over
 * the same transport as ds replica (opts: host, user, ssh_command,
 * remote_program, local_program, master_command, read_timeout,
 * deadline). The master holds snapshot mode (quietly: pids not written)
 * while it reads x.serial and walks back from it to the replica's tid. */
struct ds_master_status {
	ds_tid newest;                /* the master's x.serial */
	ds_tid packed;                /* its x.packed */
	ds_tid oldest;                /* the first transaction after the
	                               * replica's tid (0: none) */
	unsigned long behind;         /* transactions after the replica's tid */
	int in_history;               /* the walk met the replica's tid (0:
	                               * the replica diverged, was packed
	                               * away, or is newer than the master) */
	double now;                   /* the master's clock when it answered
	                               * (Unix seconds) */
};

/* Errors: DS_EREFUSED (different identity; the master runs the original
 * replica.py or a ds without this request: "the master does not answer
 * status requests"), DS_EBUSY (master busy, connection failed or timed
 * out), DS_EPROTO (an answer that is not one), DS_EIO, DS_ENOMEM. */
int ds_replica_master_status(const struct ds_replica_opts *opts,
                             const char *identity, ds_tid tid,
                             struct ds_master_status *out, ds_error *err);

/* Replace the file at path (anywhere, e.g. a node_exporter textfile
 * directory) with len bytes of buf: written to "<dir>/.<name>.<pid>.tmp"
 * (a name no "*.prom" reader picks up), fsynced, renamed over path, the
 * directory fsynced. A crash leaves the old file or the new one.
 * Errors: DS_EIO (with the errno), DS_EINVAL (path too long). */
int ds_file_replace(const char *path, const void *buf, size_t len,
                    mode_t mode, ds_error *err);

/* ------------------------------------------------------------------ */
/* Persistent references in ZODB records (refscan.c)                   */
/* ------------------------------------------------------------------ */

/* Called once per reference, in order of appearance (duplicates
 * included); oid is the persistent id's oid bytes (8 for every oid ZODB
 * makes, but given as found), valid during the call. Non-zero stops the
 * scan and is returned (fill err then). */
typedef int (*ds_refscan_fn)(const unsigned char *oid, size_t len,
                             void *ctx, ds_error *err);

/* The oids a ZODB record (class pickle then state pickle, protocols 0 to
 * 5 as zodbpickle reads them) refers to, exactly as
 * ZODB.serialize.referencesf: persistent ids that are an oid string or an
 * (oid, class) tuple; the list forms (weak ['w', ...] and cross-database
 * ['m', ...], ['n', ...] references) are skipped. Bytes after the second
 * pickle are ignored.
 * Errors: DS_ECORRUPT (not two pickles referencesf could read: the
 * reason and the byte offset), DS_ENOMEM, or fn's status. */
int ds_refscan(const unsigned char *pickle, size_t len, ds_refscan_fn fn,
               void *ctx, ds_error *err);

/* The class name of a ZODB record as the original's pack reads it to
 * apply [keepclass] settings (DirectoryStorage.utils.
 * class_name_from_pickle over ZODB's get_pickle_metadata; classname.c
 * says how): "module.Class" for the records ZODB writes, "." for a record
 * Python's unpickler refuses. Writes the NUL-terminated name (UTF-8) into
 * out (outsz bytes). Returns DS_OK, or DS_ENOTFOUND when the original
 * reads no name (or one this reader does not reproduce, or longer than
 * outsz - 1): out is then "". Never fails otherwise; nothing allocated. */
int ds_classname_get(const unsigned char *pickle, size_t len, char *out,
                     size_t outsz);

/* ------------------------------------------------------------------ */
/* Replication slots (slot.c)                                          */
/* ------------------------------------------------------------------ */

/* A slot: what the master knows replica NAME holds. NAME is what the
 * replica calls itself in its request (ds replica's default:
 * "<host>:<absolute replica path>"); tid is the transaction its last
 * admitted request proved it holds; seen is when (unix seconds). Kept in
 * HOME/misc/slots/, one file per name. */
#define DS_SLOT_NAME_MAX 255
struct ds_slot {
	char name[DS_SLOT_NAME_MAX + 1];
	ds_tid tid;
	long long seen;
};

/* 1 if name can name a slot: 1 to DS_SLOT_NAME_MAX bytes, no control
 * characters, no blank at either end. */
int ds_slot_name_valid(const char *name);

/* Record that replica `name` holds tid, now: written to a temporary name,
 * fsynced (do_sync), renamed over the old record, the directory fsynced;
 * a crash leaves the old record or the new one. Errors: DS_EINVAL (bad
 * name), DS_EIO. */
int ds_slot_record(const char *home, const char *name, ds_tid tid,
                   int do_sync, ds_error *err);

/* Every slot of HOME, oldest tid first, into *slots (free with
 * ds_slot_list_free; NULL and 0 when there is none). Errors: DS_ECORRUPT
 * (a slot file that is not one: named), DS_EIO, DS_ENOMEM. */
int ds_slot_list(const char *home, struct ds_slot **slots, size_t *count,
                 ds_error *err);
void ds_slot_list_free(struct ds_slot *slots);

/* Remove slot `name` (durably). Errors: DS_EINVAL (bad name),
 * DS_ENOTFOUND (no such slot), DS_EIO. */
int ds_slot_forget(const char *home, const char *name, ds_error *err);

/* ------------------------------------------------------------------ */
/* Packing (pack.c)                                                    */
/* ------------------------------------------------------------------ */

struct ds_pack_opts {
	ds_log_fn log;          /* may be NULL: the steps, at DS_LOG_VERBOSE */
	void *log_ctx;
	int ignore_replicas;    /* pack past what replication slots hold */
	double slot_max_age;    /* seconds: a slot not seen for longer holds
	                         * nothing back; 0: slots never expire */
	double now;             /* the time the pack's limits are taken from
	                         * (seconds since the epoch); 0: the clock.
	                         * The Python package passes its time.time(),
	                         * as the original's pack did (ZODB's pack
	                         * tests replace that clock) */
};

struct ds_pack_stats {
	ds_tid threshold;       /* the pack time used (after the limits) */
	ds_tid packed;          /* x.packed afterwards */
	int empty;              /* no root object: nothing was removed */
	unsigned long objects_kept, revisions_kept;
	unsigned long files_kept;       /* database files left in A */
	unsigned long files_removed;    /* renamed *-deleted (or unlinked) */
	unsigned long leftovers_purged; /* *-deleted older than delay_delete */
	unsigned long relinked;         /* back pointers rewritten */
	/* directories the second sweep (old revisions) listed: in a layout
	 * with a directory per object (bushy, lawn) only those of objects
	 * with a revision to remove, else every one */
	unsigned long dirs_revisited;
	/* the replication slot that held the pack time back (held_by[0]
	 * is NUL when none did) and the pack time asked for */
	char held_by[DS_SLOT_NAME_MAX + 1];
	ds_tid held_from;
	unsigned long slots_expired;    /* slots older than slot_max_age */
};

/* Pack the open Full storage s as the original's Full.pack(t): keep the
 * current revision and every revision at or after `before` of the
 * objects reachable from the root through them and of those written at
 * or after `before`; keep their transaction files ([storage] keep_policy), rewriting the
 * back pointer of a kept transaction whose predecessor goes; rename the
 * rest of A/ to "<path>-<unixtime>-deleted" (removing leftovers older
 * than [storage] delay_delete). `before` is lowered to now -
 * [storage] min_pack_time (now: opts->now or the clock) and to the last
 * transaction (when min_pack_time > 0), then, unless
 * opts->ignore_replicas, to the oldest replication slot's tid
 * (ds_slot_list; slots not seen for opts->slot_max_age seconds excepted):
 * a replica the master knows of can always be brought up to date;
 * x.packed is raised to it. Online: s stays usable by other threads
 * (commits and reads go on) while the pack holds snapshot mode "packing";
 * a pack killed at any point leaves a storage that checks clean, and the
 * next pack finishes the job. Files are never modified in place (a
 * rewritten transaction file is renamed over the old one).
 * opts, stats may be NULL.
 * Errors: DS_EBUSY (already in snapshot mode under another code),
 * DS_ESTATE (read-only), DS_ECONFIG (not Full), DS_ECORRUPT (a slot
 * file that is not one; a recent
 * revision, a .c pointer or a referenced object missing, a record that
 * cannot be read or whose pickle referencesf would refuse: nothing has
 * been removed then), DS_EIO, DS_ENOMEM. */
int ds_storage_pack(ds_storage *s, ds_tid before,
                    const struct ds_pack_opts *opts,
                    struct ds_pack_stats *stats, ds_error *err);

/* ------------------------------------------------------------------ */
/* Backups and restore (backup.c)                                      */
/* ------------------------------------------------------------------ */

enum ds_backup_compress {
	DS_BACKUP_GZIP = 0,     /* PREFIX-N.tgz, as the original backup.py */
	DS_BACKUP_ZSTD,         /* PREFIX-N.tar.zst */
};

enum ds_backup_op {
	DS_BACKUP_FULL = 1,     /* PREFIX-N.tgz: the whole storage */
	DS_BACKUP_INC,          /* PREFIX-M-to-N.tgz: what changed since M */
};

struct ds_backup_cmd {
	int op;                 /* enum ds_backup_op */
	const char *prefix;     /* file name prefix; NULL: "backup" */
	long long since;        /* DS_BACKUP_INC: the reference M is the
	                         * last backup of the index made at or before
	                         * this unix time (backup.py's find_rev) */
};

struct ds_backup_opts {
	const char *dir;        /* BACKUPS; NULL: HOME/backups (which must
	                         * exist, as in the original) */
	int compress;           /* enum ds_backup_compress */
	const struct ds_snapshot_opts *snapshot; /* NULL: defaults (its log
	                         * fields are replaced by ours) */
	ds_log_fn log;          /* backup.py's messages (INFO), warnings */
	void *log_ctx;
};

struct ds_backup_stats {
	unsigned long seq;      /* this run's sequence number N */
	ds_tid tid;             /* x.serial of the snapshot backed up */
	unsigned long archives; /* archives written (0: nothing needed) */
	unsigned long members;  /* archive members written */
	unsigned long files_read; /* storage files read */
	uint64_t bytes_read;    /* their bytes */
	uint64_t bytes_written; /* compressed archive bytes */
	int indexed;            /* the index got this run's line */
};

/* Back up HOME as the original backup.py, inside one snapshot
 * (ds_snapshot_acquire: a live storage through its control socket or
 * snapshot.conf): the commands run in order with one sequence number N
 * (the index's largest + 1); a full backup writes BACKUPS/PREFIX-N.tgz
 * (the home's directories as bare entries, config/'s files, A/'s files
 * but pack leftovers), an incremental one BACKUPS/PREFIX-M-to-N.tgz (the
 * whatsnew list since backup M's transaction: reads only what changed),
 * and is skipped ("Ignoring empty incremental backup") when nothing
 * changed since M and nothing else was written. All or nothing: archives
 * are written as BACKUPS/.tmp-NAME, fsynced, renamed when all are
 * complete; then the index BACKUPS/tindex gets "N TIMESTAMP TID"
 * (replaced atomically). stats may be NULL.
 * Errors: those of ds_snapshot_acquire (DS_EBUSY: held by someone else),
 * DS_ENOTFOUND (not a storage; BACKUPS missing; DS_BACKUP_INC without a
 * backup at or before `since`), DS_ECONFIG (not Full), DS_ESTATE (the
 * snapshot's time is in the future or over 12 hours old), DS_EREFUSED
 * (packed since the reference: a full backup is needed), DS_ELOCKED
 * (another backup writes into BACKUPS), DS_ECORRUPT (bad index, broken
 * history), DS_EINVAL (bad prefix or command), DS_EIO, DS_ENOMEM. */
int ds_backup(const char *home, const struct ds_backup_cmd *cmds,
              size_t ncmds, const struct ds_backup_opts *opts,
              struct ds_backup_stats *stats, ds_error *err);

struct ds_restore_opts {
	ds_log_fn log;          /* per archive (VERBOSE), the check's */
	void *log_ctx;
	int no_check;           /* skip ds_check of the result */
	uint64_t max_member;    /* largest A/ member accepted; 0: 4 GiB - 1
	                         * (config/ files: 1 MiB) */
};

struct ds_restore_stats {
	unsigned long archives, members, files;
	uint64_t bytes;         /* file bytes written */
	ds_tid tid;             /* the restored x.serial */
	struct ds_check_stats check;
};

/* Restore archives[0] (a full backup, ours or the original's) and then
 * each incremental one in the order given into the new storage dir,
 * which must not exist: built as "<dir>.restore-<pid>", opened and
 * closed once through the engine, checked with ds_check (unless
 * opts->no_check), synced and renamed to dir. Each member is checked
 * before it is written (regular files and directories only, relative
 * names without "..", only the shape of a storage backup: top-level
 * directories, config/ files, A/ database files of the storage's
 * layout; sizes bounded), every write stays beneath the new directory;
 * each incremental archive must continue the history restored before it
 * (its transactions chain back to that x.serial). On failure nothing is
 * left at dir (nor the temporary directory, unless killed).
 * Errors: DS_EEXIST (dir exists), DS_EPROTO (an archive or member
 * refused: which and why), DS_EREFUSED (an incremental archive does not
 * continue the restored history, or would take it back), DS_ECORRUPT
 * (the result fails the check: the number of problems), DS_ECONFIG,
 * DS_ENOTFOUND (an archive missing), DS_EINVAL, DS_EIO, DS_ENOMEM. */
int ds_restore(const char *const *archives, size_t n, const char *dir,
               const struct ds_restore_opts *opts,
               struct ds_restore_stats *stats, ds_error *err);

#ifdef __cplusplus
}
#endif
#endif /* DIRSTORAGE_H */
