/*
 * storage_internal.h - the Full storage engine's private state, shared by
 * storage.c (open/close/snapshot mode/oids), flush.c (the flusher thread
 * and its work queue), journal.c (commit protocol, flush batches,
 * recombination, recovery), txn.c, undo.c, read.c, pack.c and control.c.
 * Not part of the public contract. Each module's functions are declared
 * in its own header (flush.h, journal.h, read.h, hashmap.h); this one
 * holds only the state and storage.c's, txn.c's and control.c's helpers,
 * so no header includes another module's.
 *
 * Concurrency model (LocalFilesystem's, in C):
 *  - one mutex (mu) guards everything mutable below: the relocation map,
 *    the snapshot state, the lists of unflushed transactions and queued
 *    work, the tids and oids;
 *  - a file is opened for reading with mu held (journal, then B, then A),
 *    and every rename the flusher makes out of the journal or out of B is
 *    made with mu held, so a reader never misses a file in flight; the
 *    read itself happens on the open descriptor, without the lock;
 *  - one transaction at a time (txn_active, as ZODB's commit lock);
 *  - one flusher thread consumes a FIFO of work items (flush a batch of
 *    transaction directories, enter snapshot mode, recombine B into A,
 *    stop); with DS_OPEN_NOTHREAD the caller runs the items inline.
 */
#ifndef DS_STORAGE_INTERNAL_H
#define DS_STORAGE_INTERNAL_H

#include <pthread.h>
#include <stddef.h>

#include "hashmap.h"
#include "internal.h"

struct jdir;
struct flush_work;
struct cache;

struct ds_storage {
	char *home;
	ds_config cfg;
	unsigned flags;
	int readonly;
	int use_sync;        /* [filesystem] sync and not DS_OPEN_NOSYNC */
	int use_dirsync;     /* use_sync and [posix] dirsync */
	ds_lock *lock;
	ds_lock *sublock;    /* NULL while a snapshot user holds it */
	int guarded;         /* home registered with ds_io_guard */

	pthread_mutex_t mu;
	pthread_cond_t cv;   /* any change of state below */

	ds_tid last_tid;     /* x.serial as committed */
	ds_tid last_issued;  /* last tid handed out */
	ds_oid last_oid;     /* x.oid as it will be written */
	ds_tid last_pack;

	/* snapshot mode: "" when A is written */
	char snapcode[DS_SNAPSHOT_CODE_MAX + 16];
	int have_flushed;    /* B may hold files: reads look there */

	struct hashmap reloc;  /* name -> struct jdir holding it */

	/* current revisions read before (cache.c), used only while A is
	 * written (no snapshot mode): a commit drops its objects' entries,
	 * entering or leaving snapshot mode (a pack is one) drops all. No
	 * other process can change objects meanwhile: every writer of a
	 * storage holds misc/lock, which this open holds. cache_gen counts
	 * the drops: a load puts what it read only if none happened since
	 * it started, so it never puts back a revision a commit replaced. */
	struct cache *cache;
	unsigned long cache_gen;

	/* committed, not yet handed to the flusher (oldest first) */
	struct jdir *unflushed, *unflushed_tail;
	size_t unflushed_n, unflushed_files;
	double unflushed_since;

	struct flush_work *queue, *queue_tail;
	int batches_pending; /* batches queued or being flushed */
	int busy;            /* the flusher is running an item */
	int broken;          /* a flush failed: never flush again */
	ds_error broken_err;
	int stop_now;        /* quick close: drop queued work */
	int entering;        /* a snapshot enter is under way */
	struct jdir *failed; /* batches a broken flush left in journal/ */
	struct jdir *ro_jdirs; /* read-only open: the committed transactions
	                        * read in place from journal/ */

	int txn_active;
	int head_checked;    /* x.serial's transaction was found valid
	                      * (txn.c: a broken history is not extended) */
	int have_thread;
	pthread_t thread;

	struct control *control; /* DS_OPEN_CONTROL: misc/control */
};

/* ---- storage.c ---- */
/* Take the next tid (> every tid issued). Caller holds mu. */
ds_tid storage_next_tid_locked(ds_storage *s);
/* Absolute path of a home-relative path. Errors: DS_EINVAL (too long). */
int storage_path(const ds_storage *s, char *out, size_t outsz,
                 const char *rel, ds_error *err);
/* Remove misc/snapshot (absent is fine) and fsync misc/: done before
 * anything is written to A. */
int storage_unlink_snapshot_file(ds_storage *s, ds_error *err);


/* Forget every cached revision (snapshot mode entered or left, pack).
 * Caller holds mu. */
void storage_cache_clear_locked(ds_storage *s);

/* ---- control.c ---- */
/* Bind and listen on HOME/misc/control (open, with misc/lock held).
 * Errors: DS_EBUSY, DS_ECONFIG, DS_EIO, DS_ENOMEM, DS_EINVAL. */
int control_open(ds_storage *s, ds_error *err);
/* Start answering on it (open, once the storage is usable). Errors:
 * DS_ENOMEM (no thread). */
int control_start(ds_storage *s, ds_error *err);
/* Stop the thread, close every connection, remove misc/control. A
 * snapshot mode a client still holds stays (as a close leaves it).
 * Accepts s->control == NULL. */
void control_close(ds_storage *s);

/* ---- txn.c (used by undo.c) ---- */
/* Write one revision (and its .c pointer) into t. */
int txn_write_revision(ds_txn *t, ds_oid oid, ds_tid prev_serial,
                       ds_tid undo_from, const unsigned char *pickle,
                       size_t len, ds_error *err);
ds_storage *txn_storage(const ds_txn *t);
/* The serial an earlier undo in t restored oid to, or 0. */
ds_tid txn_undone_get(const ds_txn *t, ds_oid oid);
int txn_undone_set(ds_txn *t, ds_oid oid, ds_tid serial, ds_error *err);
/* Mark t failed (returns status). */
int txn_fail(ds_txn *t, int status);
/* DS_ESTATE when t is failed or voted. */
int txn_check_open(const ds_txn *t, const char *op, ds_error *err);

#endif /* DS_STORAGE_INTERNAL_H */
