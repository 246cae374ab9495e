/*
 * storage_internal.h - the Full storage engine's private state, shared by
 * storage.c (open/close/recovery/snapshot/flusher thread), journal.c
 * (commit protocol, flush batches, recombination), txn.c, undo.c and
 * read.c. Not part of the public contract.
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

#include "internal.h"

/* "working_" + 16 hex + "_temp" + NUL */
#define STORAGE_JDIR_NAME 40

/* A string -> pointer map (open addressing, linear probing, tombstones).
 * Keys are copied. */
struct storage_map_ent {
	char *key;          /* NULL: empty; storage_map_tomb: deleted */
	void *val;
};
struct storage_map {
	struct storage_map_ent *tab;
	size_t cap;         /* power of two, or 0 */
	size_t used;        /* live + tombstones */
	size_t live;
};

void storage_map_init(struct storage_map *m);
void storage_map_free(struct storage_map *m);
void *storage_map_get(const struct storage_map *m, const char *key);
/* Insert or replace. Errors: DS_ENOMEM. */
int storage_map_put(struct storage_map *m, const char *key, void *val,
                    ds_error *err);
void storage_map_del(struct storage_map *m, const char *key);
/* Call fn on every live entry (no modification during the walk). */
void storage_map_each(const struct storage_map *m,
                      void (*fn)(const char *key, void *val, void *ctx),
                      void *ctx);

/* A committed transaction directory waiting in journal/. */
struct jdir {
	struct jdir *next;
	ds_tid tid;
	char name[STORAGE_JDIR_NAME];  /* working_<TID>_done */
	char **names;                  /* database names, write order */
	size_t nnames;
};
void journal_jdir_free(struct jdir *d);
void journal_jdir_free_list(struct jdir *d);

enum storage_work_kind {
	WORK_BATCH = 1,      /* flush `dirs` (oldest first) */
	WORK_ENTER,          /* enter snapshot mode `code` */
	WORK_RECOMBINE,      /* move B over A, then leave snapshot mode */
	WORK_STOP,           /* flusher thread exits */
};

struct storage_work {
	struct storage_work *next;
	enum storage_work_kind kind;
	struct jdir *dirs;
	char code[DS_SNAPSHOT_CODE_MAX + 16];
	int waited;          /* someone waits for done (then they free it) */
	int done;
	int rc;
	ds_error err;
};

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

	struct storage_map reloc;  /* name -> struct jdir holding it */

	/* committed, not yet handed to the flusher (oldest first) */
	struct jdir *unflushed, *unflushed_tail;
	size_t unflushed_n, unflushed_files;
	double unflushed_since;

	struct storage_work *queue, *queue_tail;
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
/* Queue a work item (or run it inline without a thread). Caller holds
 * mu; it may be released and retaken while running inline. */
void storage_work_push_locked(ds_storage *s, struct storage_work *w);
/* Hand the unflushed transactions to the flusher as one batch; blocks
 * while [journal] backlog batches are pending. Caller holds mu. */
void storage_flush_all_locked(ds_storage *s);
/* Wait until the queue is empty and the flusher idle. Caller holds mu. */
void storage_drain_locked(ds_storage *s);
/* The flusher broke: DS_EIO with its message. Caller holds mu. */
int storage_broken_error(ds_storage *s, ds_error *err);
/* Absolute path of a home-relative path. Errors: DS_EINVAL (too long). */
int storage_path(const ds_storage *s, char *out, size_t outsz,
                 const char *rel, ds_error *err);
/* Register a committed transaction directory (finish / save_oid): its
 * files become readable from the journal and it joins the unflushed
 * list; flush thresholds are checked. Takes ownership of d. Caller holds
 * mu. Errors: DS_ENOMEM (the transaction is committed anyway and is
 * recovered at the next open; reads may miss it until then). */
int storage_register_locked(ds_storage *s, struct jdir *d, ds_error *err);

/* Remove misc/snapshot (absent is fine) and fsync misc/: done before
 * anything is written to A. */
int storage_unlink_snapshot_file(ds_storage *s, ds_error *err);


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

/* ---- journal.c ---- */
/* Flush batch `dirs` into A, or B in snapshot mode. Called by the
 * flusher (or inline), without mu. */
int journal_flush_batch(ds_storage *s, struct jdir *dirs, ds_error *err);
/* Move every file of B over A, remove B's subdirectories, make it
 * durable, then clear the snapshot code. Without mu. */
int journal_recombine(ds_storage *s, ds_error *err);
/* Recovery at open (no thread yet, snapshot mode "startup"): check
 * journal/ (refusing before any change), apply journal/replica.tar (only
 * when !held: it writes A, so misc/snapshot is removed first), roll _done
 * forward (into B), delete _temp. held: a snapshot user holds
 * misc/sublock. */
int journal_recover(ds_storage *s, int held, ds_error *err);
/* Every journal/working_<TID>_done directory with its file names, oldest
 * first (no checks: journal_scan has made them). *head owned by caller:
 * journal_jdir_free_list. Errors: DS_EIO, DS_ENOMEM, DS_EINVAL. */
int journal_collect(ds_storage *s, struct jdir **head, ds_error *err);
/* The commit protocol's steps, shared by txn.c and ds_storage_save_oid
 * (see the top of journal.c for why each fsync and rename is where it is).
 * Paths are absolute: journal_dirpath gives HOME/journal/working_<TID>_<kind>. */
int journal_dirpath(const ds_storage *s, ds_tid tid, const char *kind,
                    char *out, size_t outsz, ds_error *err);
/* mkdir HOME/journal/working_<TID>_temp (refuses an existing one). */
int journal_begin(ds_storage *s, ds_tid tid, ds_error *err);
/* Create (or overwrite) name in the temp dir, mode 0640; no fsync yet. */
int journal_write(ds_storage *s, ds_tid tid, const char *name,
                  const void *buf, size_t len, ds_error *err);
/* fsync every named file of the temp dir, then the dir itself. */
int journal_sync(ds_storage *s, ds_tid tid, char *const *names, size_t n,
                 ds_error *err);
/* The commit point: rename _temp to _done, fsync journal/. */
int journal_commit(ds_storage *s, ds_tid tid, ds_error *err);
/* Remove the temp dir and the named files in it (abort). Best effort. */
void journal_discard(ds_storage *s, ds_tid tid, char *const *names, size_t n);
/* A jdir for a committed transaction, copying names. */
int journal_jdir_new(ds_tid tid, char *const *names, size_t n,
                     struct jdir **out, ds_error *err);

/* ---- read.c ---- */
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
