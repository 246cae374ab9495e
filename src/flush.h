/*
 * flush.h - the journal flusher's work queue and thread (flush.c). Every
 * function here but flush_thread and flush_stop_thread is called with the
 * storage's mutex held.
 */
#ifndef DS_FLUSH_H
#define DS_FLUSH_H

#include "internal.h"

struct jdir;

enum flush_work_kind {
	WORK_BATCH = 1,      /* flush `dirs` (oldest first) */
	WORK_ENTER,          /* enter snapshot mode `code` */
	WORK_RECOMBINE,      /* move B over A, then leave snapshot mode */
	WORK_STOP,           /* flusher thread exits */
};

struct flush_work {
	struct flush_work *next;
	enum flush_work_kind kind;
	struct jdir *dirs;
	char code[DS_SNAPSHOT_CODE_MAX + 16];
	int waited;          /* someone waits for done (then they free it) */
	int done;
	int rc;
	ds_error err;
};

/* Queue a work item (or run it inline without a thread). Caller holds
 * mu; it may be released and retaken while running inline. */
void flush_push_locked(ds_storage *s, struct flush_work *w);
/* Hand the unflushed transactions to the flusher as one batch; with
 * may_block, waits while [journal] backlog batches are pending. Caller
 * holds mu. A batch that cannot be allocated stays unflushed (the next
 * call retries). */
void flush_all(ds_storage *s, int may_block);
/* Wait until the queue is empty and the flusher idle. Caller holds mu. */
void flush_drain_locked(ds_storage *s);
/* The flusher broke: its status (DS_EIO unless the cause said otherwise)
 * and a message naming the cause. Caller holds mu. */
int flush_broken_error(ds_storage *s, ds_error *err);
/* Register a committed transaction directory (finish / save_oid): its
 * files become readable from the journal and it joins the unflushed
 * list; flush thresholds are checked. Takes ownership of d. Caller holds
 * mu. Errors: DS_ENOMEM (the transaction is committed anyway and is
 * recovered at the next open; reads may miss it until then). */
int flush_register_locked(ds_storage *s, struct jdir *d, ds_error *err);
/* The flusher thread's body (pthread_create with the storage). */
void *flush_thread(void *arg);
/* Queue a stop item and join the thread (no-op without a thread). Caller
 * does not hold mu. */
void flush_stop_thread(ds_storage *s);

#endif /* DS_FLUSH_H */
