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

#define DS_VERSION_STRING "0.1.0"

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
/* Returns ds_tid_from_time(now) when that is > last, else last + 1
 * (the original's laterThan): strictly increasing even if the clock goes
 * backwards. */
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

/* Errors: DS_ECORRUPT (magic, length, md5, oids block not a multiple of 8,
 * duplicate oid, version length non-zero). */
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
/* Raw value (continuation lines joined with '\n'), or NULL. Pointer owned
 * by s. Keys and sections are case sensitive. */
const char *ds_settings_get(const ds_settings *s, const char *section,
                            const char *key);
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
	int sync, quick_shutdown, dirsync;
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
 * Errors: DS_EEXIST (home exists), DS_ECONFIG (class/format), DS_EIO. */
int ds_storage_create(const char *home, const char *classname,
                      const char *format, ds_error *err);


/* ------------------------------------------------------------------ */
/* The Full storage engine (storage.c, journal.c, txn.c, read.c, ...)   */
/* Owned by the engine work (issue 3); signatures may be refined there. */
/* ------------------------------------------------------------------ */

typedef struct ds_storage ds_storage; /* opaque; one per open HOME */
typedef struct ds_txn ds_txn;         /* opaque; one open transaction */

enum ds_open_flags {
	DS_OPEN_READONLY = 1u << 0,  /* no writes; commits fail DS_ESTATE */
	DS_OPEN_NOSYNC = 1u << 1,    /* as [filesystem] sync 0 */
	DS_OPEN_NOTHREAD = 1u << 2,  /* no background flusher: flush on
	                              * thresholds inside finish, and on close */
};

enum ds_close_flags {
	DS_CLOSE_QUICK = 1u << 0,    /* do not enter snapshot mode */
};

/* Open HOME: take misc/lock then misc/sublock (snapshot mode if the sublock
 * is held by a snapshot user), recover the journal (apply a pending
 * journal/replica.tar first, roll _done forward, delete _temp), leave
 * snapshot mode by moving B over A.
 * Errors: DS_ENOTFOUND / DS_ECONFIG (not a usable storage), DS_ELOCKED
 * (holder's pid in the message), DS_ECORRUPT (unexpected journal entry,
 * named), DS_EIO, DS_ENOMEM. *out owned by caller: ds_storage_close. */
int ds_storage_open(const char *home, unsigned flags, ds_storage **out,
                    ds_error *err);
/* Flush, enter snapshot mode "shutdown" (unless quick), release locks,
 * free. Accepts NULL. Errors: DS_EIO (the storage is still freed). */
int ds_storage_close(ds_storage *s, unsigned flags, ds_error *err);

const ds_config *ds_storage_config(const ds_storage *s);
const char *ds_storage_home(const ds_storage *s);
/* Tid of the last committed transaction (x.serial). */
ds_tid ds_storage_last_tid(const ds_storage *s);

/* Move every committed journal transaction into A (or B in snapshot
 * mode) now. Errors: DS_EIO. */
int ds_storage_flush(ds_storage *s, ds_error *err);
/* Enter snapshot mode under `code` (flushes first, writes misc/snapshot).
 * Errors: DS_EBUSY (held under another code: named), DS_EIO. */
int ds_storage_snapshot_enter(ds_storage *s, const char *code, ds_error *err);
/* Leave snapshot mode held under `code`; B is recombined into A.
 * Errors: DS_ESTATE (not held under that code), DS_EIO. */
int ds_storage_snapshot_leave(ds_storage *s, const char *code, ds_error *err);

/* Read the bytes of database file `name` as the storage sees it now
 * (journal, then B in snapshot mode, then A). *buf malloc'd, caller frees.
 * Errors: DS_ENOTFOUND, DS_EIO, DS_EINVAL (bad name). */
int ds_storage_read_name(ds_storage *s, const char *name, unsigned char **buf,
                         size_t *len, ds_error *err);

#ifdef __cplusplus
}
#endif
#endif /* DIRSTORAGE_H */
