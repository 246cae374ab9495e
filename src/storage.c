/*
 * storage.c - the Full storage: open (locks, recovery, leaving the startup
 * snapshot), close (entering snapshot mode "shutdown"), snapshot mode,
 * oid allocation. The background flusher and its work queue are in
 * flush.c, the string map in hashmap.c.
 *
 * The life cycle follows the original's LocalFilesystem: a storage starts
 * in snapshot mode "startup" (A untouched, flushes go to B); recovery
 * flushes the committed journal into B; then, unless a snapshot user holds
 * misc/sublock, snapshot mode is left by moving B over A. A clean close
 * enters snapshot mode "shutdown", so a closed storage is a snapshot.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "flush.h"
#include "journal.h"
#include "read.h"
#include "storage_internal.h"

/* Bytes of pickles the cache of current revisions keeps (cache.c). */
#define STORAGE_CACHE_BYTES ((size_t)32 << 20)

/* ---- small helpers ---- */

void
storage_cache_clear_locked(ds_storage *s)
{
	cache_clear(s->cache);
	s->cache_gen++;
}

int
storage_path(const ds_storage *s, char *out, size_t outsz, const char *rel,
             ds_error *err)
{
	return ds_path_join(out, outsz, s->home, rel, err);
}

static double
storage_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

ds_tid
storage_next_tid_locked(ds_storage *s)
{
	s->last_issued = ds_tid_next(s->last_issued, storage_now());
	return s->last_issued;
}

/* ---- misc/snapshot ---- */

static int
storage_write_snapshot_file(ds_storage *s, const char *code, ds_error *err)
{
	char p[DS_PATH_MAX], misc[DS_PATH_MAX];
	int rc;

	rc = storage_path(s, p, sizeof(p), "misc/snapshot", err);
	if (rc == DS_OK)
		rc = storage_path(s, misc, sizeof(misc), "misc", err);
	if (rc != DS_OK)
		return rc;
	/* 0640 and fsync when sync, as the original; replaced, not written
	 * in place (a hard-linked copy of the storage keeps its own) */
	rc = ds_io_replace_file(p, code, strlen(code), 0640, s->use_sync, err);
	if (rc == DS_OK && s->use_dirsync)
		rc = ds_io_fsync_dir(misc, err);
	return rc;
}

int
storage_unlink_snapshot_file(ds_storage *s, ds_error *err)
{
	char p[DS_PATH_MAX], misc[DS_PATH_MAX];
	ds_error e;
	int rc;

	rc = storage_path(s, p, sizeof(p), "misc/snapshot", err);
	if (rc == DS_OK)
		rc = storage_path(s, misc, sizeof(misc), "misc", err);
	if (rc != DS_OK)
		return rc;
	rc = ds_io_unlink(p, &e);
	if (rc == DS_ENOTFOUND)
		return DS_OK;
	if (rc != DS_OK) {
		if (err)
			*err = e;
		return rc;
	}
	/* nobody may still believe A is a snapshot once we write to it */
	if (s->use_dirsync)
		rc = ds_io_fsync_dir(misc, err);
	return rc;
}

/* ---- open / close ---- */

static void
storage_free(ds_storage *s)
{
	struct flush_work *w;

	if (s == NULL)
		return;
	while ((w = s->queue) != NULL) {
		s->queue = w->next;
		journal_jdir_free_list(w->dirs);
		free(w);
	}
	journal_jdir_free_list(s->unflushed);
	journal_jdir_free_list(s->failed);
	journal_jdir_free_list(s->ro_jdirs);
	hashmap_free(&s->reloc);
	cache_free(s->cache);
	ds_lock_release(s->sublock);
	ds_lock_release(s->lock);
	if (s->guarded)
		ds_io_unguard(s->home);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s->home);
	free(s);
}

static int
storage_read_x(ds_storage *s, const char *name, int optional, uint64_t *v,
               ds_error *err)
{
	unsigned char *buf = NULL;
	size_t len;
	char what[DS_PATH_MAX];
	int rc;

	*v = 0;
	rc = read_name(s, name, &buf, &len, err);
	if (rc == DS_ENOTFOUND && optional)
		return DS_OK;
	if (rc != DS_OK)
		return rc;
	snprintf(what, sizeof(what), "%s/A/%s", s->home, name);
	rc = ds_xfile_decode(buf, len, what, v, err);
	free(buf);
	return rc;
}

/* A read-only open writes nothing: the lock is taken without writing the
 * pid, the sublock is not taken (we neither write A nor need it to stay
 * a snapshot: holding misc/lock already keeps every writer out), and the
 * journal is not recovered. Instead the journal is checked with the rules
 * recovery applies (what a writing open would refuse, a read-only one
 * refuses too), and the committed transactions still in it are read
 * where they are: reads look in the journal, then B, then A, as during
 * the snapshot mode "startup" the storage stays in. An increment pending
 * in journal/replica.tar would change A on the next writing open; reads
 * without it would show an older state, so it is refused. */
static int
storage_open_readonly(ds_storage *s, ds_error *err)
{
	struct journal_scan js;
	struct jdir *d;
	char p[DS_PATH_MAX];
	ds_error e;
	int rc;

	rc = storage_path(s, p, sizeof(p), "misc/lock", err);
	if (rc != DS_OK)
		return rc;
	ds_error_clear(&e);
	rc = ds_lock_acquire_quiet(p, &s->lock, &e);
	if (rc != DS_OK) {
		if (rc == DS_ELOCKED)
			return ds_error_set(err, DS_ELOCKED,
			                    "open %s: storage is locked by another "
			                    "process: %s", s->home, e.msg);
		if (err != NULL)
			*err = e;
		return rc;
	}
	snprintf(s->snapcode, sizeof(s->snapcode), "startup");
	s->have_flushed = 1;
	rc = journal_scan(s->home, &js, err);
	if (rc != DS_OK)
		return rc;
	if (js.replica_tar)
		return ds_error_set(err, DS_ESTATE,
		                    "open %s read-only: journal/replica.tar holds "
		                    "a replication increment not applied yet; "
		                    "the next ds replica (or any writing open) "
		                    "applies it", s->home);
	rc = journal_collect(s, &s->ro_jdirs, err);
	if (rc != DS_OK)
		return rc;
	pthread_mutex_lock(&s->mu);
	for (d = s->ro_jdirs; d != NULL && rc == DS_OK; d = d->next)
		for (size_t j = 0; j < d->nnames && rc == DS_OK; j++)
			rc = hashmap_put(&s->reloc, d->names[j], d, err);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int
ds_storage_open(const char *home, unsigned flags, ds_storage **out,
                ds_error *err)
{
	ds_storage *s;
	ds_error e;
	char p[DS_PATH_MAX];
	int rc, stay = 0;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return ds_error_set(err, DS_ENOMEM, "open %s: out of memory",
		                    home);
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	hashmap_init(&s->reloc);
	s->flags = flags;
	/* no cache is no error: every load then reads the files */
	(void)cache_new(STORAGE_CACHE_BYTES, &s->cache, NULL);
	s->home = strdup(home);
	if (s->home == NULL) {
		rc = ds_error_set(err, DS_ENOMEM, "open %s: out of memory", home);
		goto fail;
	}
	rc = ds_config_load(home, &s->cfg, err);
	if (rc != DS_OK)
		goto fail;
	if (strcmp(s->cfg.classname, "Full") != 0) {
		rc = ds_error_set(err, DS_ECONFIG,
		                  "open %s: storage class is %s, not Full", home,
		                  s->cfg.classname);
		goto fail;
	}
	/* from here no write beneath home follows a symlink (io.c) */
	rc = ds_io_guard(home, err);
	if (rc != DS_OK)
		goto fail;
	s->guarded = 1;
	s->readonly = (flags & DS_OPEN_READONLY) != 0;
	s->use_sync = s->cfg.sync && !(flags & DS_OPEN_NOSYNC);
	s->use_dirsync = s->use_sync && s->cfg.dirsync;
	if (s->readonly) {
		rc = storage_open_readonly(s, err);
		if (rc == DS_OK)
			rc = storage_read_x(s, "x.serial", 0, &s->last_tid, err);
		if (rc == DS_OK)
			rc = storage_read_x(s, "x.oid", 0, &s->last_oid, err);
		if (rc == DS_OK)
			rc = storage_read_x(s, "x.packed", 1, &s->last_pack,
			                    err);
		if (rc != DS_OK)
			goto fail;
		s->last_issued = s->last_tid;
		*out = s;
		return DS_OK;
	}

	/* the main lock: whoever manages the storage */
	rc = storage_path(s, p, sizeof(p), "misc/lock", err);
	if (rc != DS_OK)
		goto fail;
	rc = ds_lock_acquire(p, &s->lock, &e);
	if (rc != DS_OK) {
		if (rc == DS_ELOCKED)
			rc = ds_error_set(err, DS_ELOCKED,
			                  "open %s: storage is locked by another "
			                  "process: %s", home, e.msg);
		else if (err)
			*err = e;
		goto fail;
	}
	/* The control socket now: holding misc/lock, we are the only one
	 * who may replace a stale one, and a refusal (a symlink, a live
	 * listener) comes before recovery changes anything. */
	if ((flags & DS_OPEN_CONTROL) && (rc = control_open(s, err)) != DS_OK)
		goto fail;
	/* We start in snapshot mode "startup": A is not written until we
	 * know nobody holds it as a snapshot. */
	snprintf(s->snapcode, sizeof(s->snapcode), "startup");
	s->have_flushed = 1;
	rc = storage_path(s, p, sizeof(p), "misc/sublock", err);
	if (rc != DS_OK)
		goto fail;
	rc = ds_lock_acquire(p, &s->sublock, &e);
	if (rc == DS_ELOCKED) {
		if (flags & DS_OPEN_SYNCHRONOUS) {
			rc = ds_error_set(err, DS_EBUSY,
			                  "open %s: storage is locked in snapshot "
			                  "mode: %s", home, e.msg);
			goto fail;
		}
		/* A snapshot user relies on A: stay in snapshot mode, as
		 * the original does; misc/snapshot stays. */
		stay = 1;
		s->sublock = NULL;
	} else if (rc != DS_OK) {
		if (err)
			*err = e;
		goto fail;
	}
	rc = journal_recover(s, stay, err);
	if (rc != DS_OK)
		goto fail;
	rc = storage_read_x(s, "x.serial", 0, &s->last_tid, err);
	if (rc == DS_OK)
		rc = storage_read_x(s, "x.oid", 0, &s->last_oid, err);
	if (rc == DS_OK)
		rc = storage_read_x(s, "x.packed", 1, &s->last_pack, err);
	if (rc != DS_OK)
		goto fail;
	s->last_issued = s->last_tid;
	if (!stay) {
		/* leave snapshot mode "startup": B over A. misc/snapshot goes
		 * first: from here A is written. */
		rc = storage_unlink_snapshot_file(s, err);
		if (rc == DS_OK)
			rc = journal_recombine(s, err);
		if (rc != DS_OK)
			goto fail;
	}
	if (!(flags & DS_OPEN_NOTHREAD)) {
		if (pthread_create(&s->thread, NULL, flush_thread, s) != 0) {
			rc = ds_error_set(err, DS_ENOMEM,
			                  "open %s: cannot start the flusher "
			                  "thread", home);
			goto fail;
		}
		s->have_thread = 1;
	}
	if (s->control != NULL && (rc = control_start(s, err)) != DS_OK) {
		/* recovered and usable, but not what was asked for: close
		 * it as any caller would */
		ds_storage_close(s, 0, NULL);
		return rc;
	}
	*out = s;
	return DS_OK;
fail:
	control_close(s);
	storage_free(s);
	return rc;
}

int
ds_storage_close(ds_storage *s, unsigned flags, ds_error *err)
{
	int rc = DS_OK, quick;

	if (s == NULL)
		return DS_OK;
	/* no enter/leave requests from here on: the socket goes first */
	control_close(s);
	if (s->readonly) {
		/* nothing was written, nothing to flush or mark */
		storage_free(s);
		return DS_OK;
	}
	quick = (flags & DS_CLOSE_QUICK) || s->cfg.quick_shutdown;
	pthread_mutex_lock(&s->mu);
	if (quick) {
		/* stop as soon as the current item is done; the journal
		 * keeps the rest for the next open */
		s->stop_now = 1;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
	} else {
		flush_all(s, 1);
		flush_drain_locked(s);
		if (s->broken) {
			rc = flush_broken_error(s, err);
			pthread_mutex_unlock(&s->mu);
		} else if (s->snapcode[0] == '\0') {
			pthread_mutex_unlock(&s->mu);
			rc = ds_storage_snapshot_enter(s, "shutdown", err);
		} else {
			/* held in snapshot mode by someone else: everything
			 * is flushed into B, A and misc/snapshot stay */
			pthread_mutex_unlock(&s->mu);
		}
	}
	flush_stop_thread(s);
	storage_free(s);
	return rc;
}

/* ---- accessors ---- */

const ds_config *
ds_storage_config(const ds_storage *s)
{
	return &s->cfg;
}

const char *
ds_storage_home(const ds_storage *s)
{
	return s->home;
}

ds_tid
ds_storage_last_tid(const ds_storage *s)
{
	ds_tid t;

	pthread_mutex_lock((pthread_mutex_t *)&s->mu);
	t = s->last_tid;
	pthread_mutex_unlock((pthread_mutex_t *)&s->mu);
	return t;
}

ds_oid
ds_storage_last_oid(const ds_storage *s)
{
	ds_oid o;

	pthread_mutex_lock((pthread_mutex_t *)&s->mu);
	o = s->last_oid;
	pthread_mutex_unlock((pthread_mutex_t *)&s->mu);
	return o;
}

ds_tid
ds_storage_last_pack(const ds_storage *s)
{
	return s->last_pack;
}

/* ---- flush and snapshot mode ---- */

int
ds_storage_flush(ds_storage *s, ds_error *err)
{
	int rc = DS_OK;

	pthread_mutex_lock(&s->mu);
	if (!s->broken) {
		flush_all(s, 1);
		flush_drain_locked(s);
	}
	if (s->broken)
		rc = flush_broken_error(s, err);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

static int
storage_code_ok(const char *code, const char *op, ds_error *err)
{
	if (code == NULL || code[0] == '\0' ||
	    strlen(code) > DS_SNAPSHOT_CODE_MAX)
		return ds_error_set(err, DS_EINVAL,
		                    "%s: a snapshot code is 1 to %d bytes", op,
		                    DS_SNAPSHOT_CODE_MAX);
	return DS_OK;
}

int
ds_storage_snapshot_enter(ds_storage *s, const char *code, ds_error *err)
{
	struct flush_work *w;
	int rc;

	if (s->readonly)
		return ds_error_set(err, DS_ESTATE, "enter snapshot mode in %s: "
		                    "storage opened read-only", s->home);
	rc = storage_code_ok(code, "enter snapshot mode", err);
	if (rc != DS_OK)
		return rc;
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return ds_error_set(err, DS_ENOMEM,
		                    "enter snapshot mode: out of memory");
	pthread_mutex_lock(&s->mu);
	/* one enter at a time; a recombination still running after a leave
	 * is waited for (A becomes a snapshot again once it is done) */
	while (!s->broken && (s->entering ||
	       strncmp(s->snapcode, "recombining/", 12) == 0))
		pthread_cond_wait(&s->cv, &s->mu);
	if (s->broken) {
		rc = flush_broken_error(s, err);
		goto out;
	}
	if (s->snapcode[0] != '\0') {
		rc = ds_error_set(err, DS_EBUSY,
		                  "enter snapshot mode %s in %s: snapshot already "
		                  "in use by '%s'", code, s->home, s->snapcode);
		goto out;
	}
	s->entering = 1;
	/* A must hold whole transactions only. A batch moves into A only
	 * the newest copy of a file several transactions wrote (x.serial,
	 * x.oid, .c pointers); a copy still in the journal in a transaction
	 * registered after the batch was cut supersedes the batch's. If
	 * such a transaction could register between the cut and the switch
	 * to B, A would get the batch's revision and t files without its
	 * x.serial and pointers. So commits wait (the one-transaction slot
	 * is taken) from the cut until the ENTER item has run. */
	while (s->txn_active && !s->broken)
		pthread_cond_wait(&s->cv, &s->mu);
	if (s->broken) {
		s->entering = 0;
		pthread_cond_broadcast(&s->cv);
		rc = flush_broken_error(s, err);
		goto out;
	}
	s->txn_active = 1;
	/* the journal as empty as possible: everything committed so far
	 * goes to A before the ENTER item switches flushes to B */
	flush_all(s, 1);
	storage_cache_clear_locked(s);
	w->kind = WORK_ENTER;
	w->waited = 1;
	snprintf(w->code, sizeof(w->code), "%s", code);
	flush_push_locked(s, w);
	while (!w->done)
		pthread_cond_wait(&s->cv, &s->mu);
	s->txn_active = 0;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	rc = storage_write_snapshot_file(s, code, err);
	pthread_mutex_lock(&s->mu);
	s->entering = 0;
	pthread_cond_broadcast(&s->cv);
out:
	pthread_mutex_unlock(&s->mu);
	free(w);
	return rc;
}

int
ds_storage_snapshot_leave(ds_storage *s, const char *code, ds_error *err)
{
	struct flush_work *w;
	char p[DS_PATH_MAX];
	ds_error e;
	int rc;

	if (s->readonly)
		return ds_error_set(err, DS_ESTATE, "leave snapshot mode in %s: "
		                    "storage opened read-only", s->home);
	rc = storage_code_ok(code, "leave snapshot mode", err);
	if (rc != DS_OK)
		return rc;
	pthread_mutex_lock(&s->mu);
	if (strcmp(code, s->snapcode) != 0 || s->entering) {
		rc = ds_error_set(err, DS_ESTATE,
		                  "leave snapshot mode %s in %s: not in snapshot "
		                  "mode under that code (current: '%s')", code,
		                  s->home, s->snapcode);
		pthread_mutex_unlock(&s->mu);
		return rc;
	}
	if (s->sublock == NULL) {
		/* the snapshot user must have let go of A */
		rc = storage_path(s, p, sizeof(p), "misc/sublock", err);
		if (rc == DS_OK)
			rc = ds_lock_acquire(p, &s->sublock, &e);
		if (rc == DS_ELOCKED)
			rc = ds_error_set(err, DS_EBUSY,
			                  "leave snapshot mode %s in %s: the "
			                  "snapshot is still held: %s", code,
			                  s->home, e.msg);
		else if (rc != DS_OK && err)
			*err = e;
		if (rc != DS_OK) {
			s->sublock = NULL;
			pthread_mutex_unlock(&s->mu);
			return rc;
		}
	}
	rc = storage_unlink_snapshot_file(s, err);
	if (rc != DS_OK) {
		pthread_mutex_unlock(&s->mu);
		return rc;
	}
	w = calloc(1, sizeof(*w));
	if (w == NULL) {
		pthread_mutex_unlock(&s->mu);
		return ds_error_set(err, DS_ENOMEM,
		                    "leave snapshot mode: out of memory");
	}
	{
		char tmp[sizeof(s->snapcode)];
		snprintf(tmp, sizeof(tmp), "%s", s->snapcode);
		snprintf(s->snapcode, sizeof(s->snapcode), "recombining/%.*s",
		         DS_SNAPSHOT_CODE_MAX, tmp);
	}
	storage_cache_clear_locked(s);
	w->kind = WORK_RECOMBINE;
	flush_push_locked(s, w);
	pthread_mutex_unlock(&s->mu);
	return DS_OK;
}

int
ds_storage_snapshot_let_go(ds_storage *s, const char *code, ds_error *err)
{
	int rc;

	if (s->readonly)
		return ds_error_set(err, DS_ESTATE, "let go of misc/sublock in "
		                    "%s: storage opened read-only", s->home);
	rc = storage_code_ok(code, "let go of misc/sublock", err);
	if (rc != DS_OK)
		return rc;
	pthread_mutex_lock(&s->mu);
	/* only a mode fully entered: while entering, A may still be written
	 * and the sublock is what says it is not */
	if (strcmp(s->snapcode, code) != 0 || s->entering) {
		rc = ds_error_set(err, DS_ESTATE,
		                  "let go of misc/sublock in %s: not in snapshot "
		                  "mode %s (current: '%s')", s->home, code,
		                  s->snapcode);
	} else if (s->sublock != NULL) {
		ds_lock_release(s->sublock);
		s->sublock = NULL;
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

void
ds_storage_snapshot_code(ds_storage *s, char out[DS_SNAPSHOT_CODE_MAX + 16])
{
	pthread_mutex_lock(&s->mu);
	snprintf(out, DS_SNAPSHOT_CODE_MAX + 16, "%s", s->snapcode);
	pthread_mutex_unlock(&s->mu);
}

/* ---- oids ---- */

int
ds_storage_new_oid(ds_storage *s, ds_oid *out, ds_error *err)
{
	if (s->readonly)
		return ds_error_set(err, DS_ESTATE,
		                    "new oid in %s: storage opened read-only",
		                    s->home);
	pthread_mutex_lock(&s->mu);
	/* x.oid is the highest oid in use: past the last one there is no
	 * id left (wrapping to 0 would hand out the root and every object
	 * after it again) */
	if (s->last_oid == UINT64_MAX) {
		pthread_mutex_unlock(&s->mu);
		return ds_error_set(err, DS_ESTATE,
		                    "new oid in %s: object ids exhausted (x.oid "
		                    "is FFFFFFFFFFFFFFFF, the highest there is)",
		                    s->home);
	}
	*out = ++s->last_oid;
	pthread_mutex_unlock(&s->mu);
	return DS_OK;
}

int
ds_storage_save_oid(ds_storage *s, ds_error *err)
{
	unsigned char buf[8];
	char name[] = "x.oid";
	char *names[1] = {name};
	struct jdir *d = NULL;
	ds_tid tid;
	int rc;

	if (s->readonly)
		return ds_error_set(err, DS_ESTATE,
		                    "save oid in %s: storage opened read-only",
		                    s->home);
	pthread_mutex_lock(&s->mu);
	while (s->txn_active)
		pthread_cond_wait(&s->cv, &s->mu);
	if (s->broken) {
		rc = flush_broken_error(s, err);
		pthread_mutex_unlock(&s->mu);
		return rc;
	}
	s->txn_active = 1;
	tid = storage_next_tid_locked(s);
	ds_put_u64(buf, s->last_oid);
	pthread_mutex_unlock(&s->mu);

	rc = journal_begin(s, tid, err);
	if (rc != DS_OK)
		goto out;
	rc = journal_write(s, tid, name, buf, 8, err);
	if (rc == DS_OK)
		rc = journal_sync(s, tid, names, 1, err);
	if (rc == DS_OK)
		rc = journal_jdir_new(tid, names, 1, &d, err);
	if (rc == DS_OK)
		rc = journal_commit(s, tid, err);
	if (rc != DS_OK) {
		journal_discard(s, tid, names, 1);
		journal_jdir_free(d);
		d = NULL;
	}
out:
	pthread_mutex_lock(&s->mu);
	if (d != NULL) {
		int rc2 = flush_register_locked(s, d, rc == DS_OK ? err : NULL);
		if (rc == DS_OK)
			rc = rc2;
	}
	s->txn_active = 0;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return rc;
}
