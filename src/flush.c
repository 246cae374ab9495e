/*
 * flush.c - the journal flusher: a FIFO of work items (flush a batch of
 * committed transaction directories into A or B, enter snapshot mode,
 * recombine B into A, stop) consumed by one background thread, or run
 * inline by the caller when the storage was opened with DS_OPEN_NOTHREAD;
 * the [journal] thresholds that cut batches; the bounded backlog that
 * makes a writer wait rather than let batches pile up; and the "broken"
 * state a failed flush leaves (nothing is flushed again: the journal
 * keeps what was committed for the next open's recovery).
 *
 * Locking: every function named *_locked, and flush_all, is called with
 * s->mu held; the work itself (journal_flush_batch, journal_recombine)
 * runs without it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flush.h"
#include "journal.h"
#include "storage_internal.h"

static double
flush_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
flush_broken_error(ds_storage *s, ds_error *err)
{
	/* the cause's status (a symlink in A/ is DS_ECORRUPT, a full disk
	 * DS_EIO): it decides the exit code */
	int status = s->broken_err.status != DS_OK ? s->broken_err.status
	                                           : DS_EIO;

	ds_error_set(err, status,
	             "storage %s: the journal flusher failed earlier "
	             "(%s); committed transactions stay in journal/ "
	             "and are recovered at the next open",
	             s->home, s->broken_err.msg);
	if (err != NULL)
		err->sys_errno = s->broken_err.sys_errno;
	return status;
}

/* ---- the work queue and the flusher ---- */

static void
flush_run_work(ds_storage *s, struct flush_work *w)
{
	ds_error_clear(&w->err);
	w->rc = DS_OK;
	switch (w->kind) {
	case WORK_BATCH:
		pthread_mutex_lock(&s->mu);
		if (s->broken) {
			w->rc = flush_broken_error(s, &w->err);
			pthread_mutex_unlock(&s->mu);
			break;
		}
		pthread_mutex_unlock(&s->mu);
		w->rc = journal_flush_batch(s, w->dirs, &w->err);
		break;
	case WORK_ENTER:
		pthread_mutex_lock(&s->mu);
		snprintf(s->snapcode, sizeof(s->snapcode), "%s", w->code);
		pthread_mutex_unlock(&s->mu);
		break;
	case WORK_RECOMBINE:
		w->rc = journal_recombine(s, &w->err);
		break;
	case WORK_STOP:
		break;
	}
}

/* After running w. Caller holds mu. */
static void
flush_work_done_locked(ds_storage *s, struct flush_work *w)
{
	if (w->rc != DS_OK && !s->broken &&
	    (w->kind == WORK_BATCH || w->kind == WORK_RECOMBINE)) {
		/* Never flush again: the journal still holds everything not
		 * flushed, and recovery at the next open will finish it. */
		s->broken = 1;
		s->broken_err = w->err;
	}
	if (w->kind == WORK_BATCH) {
		s->batches_pending--;
		if (w->rc == DS_OK) {
			journal_jdir_free_list(w->dirs);
		} else {
			/* relocations may still point at these: keep them */
			struct jdir *t = w->dirs;
			while (t && t->next)
				t = t->next;
			if (t) {
				t->next = s->failed;
				s->failed = w->dirs;
			}
		}
		w->dirs = NULL;
	}
	w->done = 1;
	pthread_cond_broadcast(&s->cv);
	if (!w->waited)
		free(w);
}

void
flush_push_locked(ds_storage *s, struct flush_work *w)
{
	if (s->have_thread) {
		w->next = NULL;
		if (s->queue_tail)
			s->queue_tail->next = w;
		else
			s->queue = w;
		s->queue_tail = w;
		pthread_cond_broadcast(&s->cv);
		return;
	}
	/* no thread: run it here, in order (one caller at a time) */
	while (s->busy)
		pthread_cond_wait(&s->cv, &s->mu);
	s->busy = 1;
	pthread_mutex_unlock(&s->mu);
	flush_run_work(s, w);
	pthread_mutex_lock(&s->mu);
	s->busy = 0;
	flush_work_done_locked(s, w);
}

void
flush_all(ds_storage *s, int may_block)
{
	struct flush_work *w;
	long backlog = s->cfg.backlog > 0 ? s->cfg.backlog : 1;

	if (s->unflushed == NULL)
		return;
	/* The bounded backlog: a writer waits here rather than letting
	 * batches pile up without limit. */
	while (may_block && s->have_thread && s->batches_pending >= backlog &&
	       !s->broken && !s->stop_now)
		pthread_cond_wait(&s->cv, &s->mu);
	if (s->unflushed == NULL)
		return;
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return;   /* stays unflushed; the next call retries */
	w->kind = WORK_BATCH;
	w->dirs = s->unflushed;
	s->unflushed = s->unflushed_tail = NULL;
	s->unflushed_n = s->unflushed_files = 0;
	s->unflushed_since = flush_now();
	s->batches_pending++;
	flush_push_locked(s, w);
}

void
flush_drain_locked(ds_storage *s)
{
	while (s->queue != NULL || s->busy)
		pthread_cond_wait(&s->cv, &s->mu);
}

void *
flush_thread(void *arg)
{
	ds_storage *s = arg;
	struct flush_work *w;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (s->queue == NULL && !s->stop_now) {
			if (s->unflushed != NULL && s->cfg.flush_interval > 0) {
				double due = s->unflushed_since +
				             (double)s->cfg.flush_interval;
				struct timespec ts;
				if (flush_now() >= due) {
					/* [journal] flush_interval reached */
					flush_all(s, 0);
					continue;
				}
				ts.tv_sec = (time_t)due;
				ts.tv_nsec = (long)((due - (double)ts.tv_sec) * 1e9);
				pthread_cond_timedwait(&s->cv, &s->mu, &ts);
			} else {
				pthread_cond_wait(&s->cv, &s->mu);
			}
		}
		if (s->stop_now)
			break;
		w = s->queue;
		s->queue = w->next;
		if (s->queue == NULL)
			s->queue_tail = NULL;
		if (w->kind == WORK_STOP) {
			w->done = 1;
			pthread_cond_broadcast(&s->cv);
			if (!w->waited)
				free(w);
			break;
		}
		s->busy = 1;
		pthread_mutex_unlock(&s->mu);
		flush_run_work(s, w);
		pthread_mutex_lock(&s->mu);
		s->busy = 0;
		flush_work_done_locked(s, w);
	}
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

int
flush_register_locked(ds_storage *s, struct jdir *d, ds_error *err)
{
	double now = flush_now();
	int rc = DS_OK;

	for (size_t i = 0; i < d->nnames && rc == DS_OK; i++)
		rc = hashmap_put(&s->reloc, d->names[i], d, err);
	if (rc != DS_OK) {
		for (size_t i = 0; i < d->nnames; i++)
			if (hashmap_get(&s->reloc, d->names[i]) == d)
				hashmap_del(&s->reloc, d->names[i]);
		journal_jdir_free(d);
		return rc;
	}
	if (s->unflushed == NULL)
		s->unflushed_since = now;
	d->next = NULL;
	if (s->unflushed_tail)
		s->unflushed_tail->next = d;
	else
		s->unflushed = d;
	s->unflushed_tail = d;
	s->unflushed_n++;
	s->unflushed_files += d->nnames;
	/* The [journal] thresholds, checked at commit as the original does
	 * (the flusher thread also wakes up for the age limit). */
	if (now - s->unflushed_since > (double)s->cfg.flush_interval ||
	    (long)s->unflushed_files >= s->cfg.flush_file_threshold ||
	    (long)s->unflushed_n >= s->cfg.flush_transaction_threshold)
		flush_all(s, 1);
	pthread_cond_broadcast(&s->cv);
	return DS_OK;
}

void
flush_stop_thread(ds_storage *s)
{
	struct flush_work *w;

	if (!s->have_thread)
		return;
	w = calloc(1, sizeof(*w));
	pthread_mutex_lock(&s->mu);
	if (w != NULL) {
		w->kind = WORK_STOP;
		flush_push_locked(s, w);
	} else {
		s->stop_now = 1;
		pthread_cond_broadcast(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	s->have_thread = 0;
}
