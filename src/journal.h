/*
 * journal.h - the commit protocol, flush batches, recombination of B into
 * A and recovery (journal.c). journal_scan, which only looks at a
 * journal directory, is in internal.h (the tools use it too).
 */
#ifndef DS_JOURNAL_H
#define DS_JOURNAL_H

#include <stddef.h>

#include "internal.h"

/* "working_" + 16 hex + "_temp" + NUL */
#define STORAGE_JDIR_NAME 40

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

#endif /* DS_JOURNAL_H */
