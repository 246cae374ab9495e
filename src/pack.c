/*
 * pack.c - packing a Full storage: the original's mark and sweep, online.
 *
 * What a pack at threshold T keeps (the original Full._pack, which this
 * follows step by step so that both leave the same tree):
 *  - every object reachable from the root (oid 0) through the persistent
 *    references (ds_refscan) of its current revision and its revisions
 *    written at or after T, which are kept; its other revisions (older
 *    than T and not current) go;
 *  - every object written by a transaction at or after T (and by the two
 *    newest transactions, a datum replication and backup rely on), with
 *    what it references;
 *  - the transaction files of kept revisions ([storage] keep_policy
 *    detailed, the default; "undoable" keeps only those at or after T),
 *    and every transaction at or after T;
 *  - x.serial, x.oid, x.packed.
 * Everything else in A/ is renamed to "<path>-<unixtime>-deleted" (or
 * removed when [storage] delay_delete is 0); leftovers older than
 * delay_delete seconds are removed; a directory found empty is removed.
 * Kept transactions whose previous transaction goes get their back
 * pointer (bytes 24..31) rewritten to the previous kept one. Kept files
 * get mode 0740 and removed ones lose the owner-execute bit, as the
 * original's permission marks leave them. x.packed is written first.
 *
 * [keepclass] (config/settings): an object whose class (read from its
 * newest revision with a non-empty pickle, as the original's
 * class_name_from_pickle reads it: ds_classname_get) is named there with
 * "forever" keeps every revision older than T it still has, one with
 * "extra DAYS" those newer than T less DAYS days (each with its
 * transaction, as above). A value the original cannot read is logged and
 * ignored as it does; "extra" with a number int() refuses stops the pack
 * before anything changes, where the original's open fails.
 *
 * Threshold: T is lowered to now - [storage] min_pack_time, then (when
 * min_pack_time > 0) to the last transaction: never later.
 *
 * Online: the storage is held in snapshot mode "packing" for the whole
 * pack, as the original does: commits go on into the journal and B while
 * A, which only the pack touches, is read and swept; leaving snapshot mode
 * moves B back over A.
 *
 * Crash safety. The original sweeps in directory order; we keep its
 * result but order the changes so that a pack killed (or a power cut) at
 * any point leaves a storage `ds check` accepts and a later pack
 * finishes: x.packed (durable) first, so that every file the pack removes
 * is older than x.packed; then the .c pointers of unreachable objects (their
 * revisions become leftovers older than x.packed), then revisions, then
 * the back pointers (each rewritten file is made in misc/ and renamed
 * over the old one: never modified in place, so a hard-linked copy such
 * as a replica made with cp -l keeps its bytes), then the transaction
 * files nothing links to any more. A syncfs between these steps (when
 * [filesystem] sync is on) keeps their order across a power cut. The
 * marks (modes) are set in the first sweep, which stats every file
 * anyway; a revision that goes loses its mark there and its object is
 * noted, and the second sweep renames only those.
 *
 * Speed: a pack's cost is system calls and, on a cold cache, disk reads
 * (every directory and inode of A, and the records the mark follows).
 * The read-ahead, the mark and each sweep run on PACK_THREADS threads
 * (the threads section below), each directory is opened once per sweep
 * and its entries acted on relative to it (no path resolved again per
 * file), and the second sweep lists only the directories of the objects
 * the first one noted (in the layouts with a directory per object).
 * Marks live in memory: for each kept object the oldest serial it keeps
 * (arrays indexed by oid up to x.oid, a map for any oid beyond), and a
 * set of kept tids (64-bit keys), not in file modes. A
 * revision is kept when its object is and its serial is at least that
 * oldest one: the walk below keeps a run of the object's chain of
 * previous-serial pointers from its current revision down, and in a
 * storage `ds check` accepts every revision of an object is on that chain
 * (one off it is a problem check reports), so the run is exactly the
 * revisions from that serial up. 8 bytes and a bit per oid the storage
 * has handed out, however many revisions are kept.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keyset.h"
#include "storage_internal.h"

#define PACK_TMP "misc/pack.tmp"
#define PACK_NO_REVISION UINT64_MAX
/* oids up to this use the arrays (at most 512 MiB of address space,
 * touched as the oids are) */
#define PACK_DENSE_MAX (1ull << 26)

struct pack {
	ds_storage *s;
	const struct ds_pack_opts *opts;
	struct ds_pack_stats *st;
	ds_error *err;
	ds_layout layout;
	char a[DS_PATH_MAX];     /* HOME/A */
	ds_tid threshold;
	ds_tid last_pack;             /* x.packed after this pack */
	int keep_ancient;             /* keep_policy detailed */
	long min_pack_time, delay_delete;
	long long now;                /* unixtime of the sweep */
	/* the marks: what is kept, as 64-bit keys (a database name is
	 * one of these plus its kind): objects by oid, each with the oldest
	 * serial of its revisions kept (PACK_NO_REVISION before the first),
	 * transactions by tid. 16 or 8 bytes a key at a load of at most
	 * 1/2: memory grows with the objects kept, not with names nor with
	 * revisions */
	struct keyset_map objects;
	/* objects whose oid is at most x.oid (all of them, as ZODB hands
	 * oids out in order) live in arrays indexed by oid instead: a bit
	 * "kept" and the oldest serial, 8 bytes and a bit an oid, in pages
	 * the kernel gives only when touched */
	uint64_t *kept_bits, *oldest;
	uint64_t ndense;
	struct keyset_ids txns;
	ds_oid *todo;                 /* objects to mark */
	size_t ntodo, cap;
	struct pack_keep *keep;       /* [keepclass] */
	size_t nkeep;
	int afd;                      /* A, open while the pack runs */
	/* the threads (below): p->mu guards the marks and the queues while
	 * they run; the sweeps only read the marks */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int busy;                     /* threads working on an item */
	int failed, rc;               /* the first failure */
	int pass;                     /* the sweep running */
	struct pack_dir *dirs;        /* directories to sweep */
	size_t ndirs, dircap;
	/* objects (by oid, up to x.oid) whose directory has a revision
	 * that goes: the second sweep visits those alone (redo_all: it
	 * walks everything) */
	uint64_t *redo_bits;
	int redo_all;
	int by_oid;                   /* the second sweep follows redo_bits */
	uint64_t cursor;              /* its next oid */
};

/* One [keepclass] option: the class name, and the oldest revision its
 * objects keep (0: forever; set once the threshold is known). */
struct pack_keep {
	char *cls;
	long days;                    /* -1: forever */
	ds_tid limit;
};

static void
pack_log(struct pack *p, int level, const char *fmt, ...)
	DS_PRINTF(3, 4);

static void
pack_log(struct pack *p, int level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (p->opts == NULL || p->opts->log == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	p->opts->log(level, msg, p->opts->log_ctx);
}

enum pack_kind { PACK_OTHER, PACK_POINTER, PACK_REVISION, PACK_TXN };

/* The key of a valid database name: its kind, and the oid / serial /
 * tid it names. */
static enum pack_kind
pack_key(const char *name, uint64_t *a, uint64_t *b)
{
	char hex[17];

	if (name[0] == 'o' && strlen(name) >= 19 && name[17] == '.') {
		memcpy(hex, name + 1, 16);
		hex[16] = '\0';
		if (ds_id_parse(hex, a) != DS_OK)
			return PACK_OTHER;
		if (strcmp(name + 18, "c") == 0)
			return PACK_POINTER;
		if (ds_id_parse(name + 18, b) != DS_OK)
			return PACK_OTHER;
		return PACK_REVISION;
	}
	if (name[0] == 't' && strlen(name) == 18 && name[7] == '.') {
		memcpy(hex, name + 1, 6);
		memcpy(hex + 6, name + 8, 10);
		hex[16] = '\0';
		return ds_id_parse(hex, a) == DS_OK ? PACK_TXN : PACK_OTHER;
	}
	return PACK_OTHER;
}

/* The oldest serial kept of object oid into *oldest: 1, or 0 when the
 * object is not (yet) kept. While the mark's threads run, with p->mu
 * held; the sweeps only read. */
static int
pack_obj_get(const struct pack *p, uint64_t oid, uint64_t *oldest)
{
	if (oid < p->ndense) {
		if (!((p->kept_bits[oid >> 6] >> (oid & 63)) & 1))
			return 0;
		*oldest = p->oldest[oid];
		return 1;
	}
	return keyset_map_get(&p->objects, oid, oldest);
}

static int
pack_obj_put(struct pack *p, uint64_t oid, uint64_t oldest, ds_error *err)
{
	if (oid < p->ndense) {
		p->kept_bits[oid >> 6] |= 1ull << (oid & 63);
		p->oldest[oid] = oldest;
		return DS_OK;
	}
	if (keyset_map_put(&p->objects, oid, oldest, err) != DS_OK)
		return ds_error_set(err, DS_ENOMEM, "pack: out of memory for "
		                    "the marks");
	return DS_OK;
}

static int pack_read_x(struct pack *p, const char *name, uint64_t *v);

/* The arrays for oids up to x.oid (none when x.oid is beyond
 * PACK_DENSE_MAX or memory is short: the map holds them all then), and
 * the bitmap of objects whose directory the second sweep visits. */
static int
pack_obj_init(struct pack *p)
{
	uint64_t last;
	int rc;

	rc = pack_read_x(p, "x.oid", &last);
	if (rc == DS_ENOTFOUND)
		return DS_OK;          /* the map will do */
	if (rc != DS_OK)
		return rc;
	if (last >= PACK_DENSE_MAX)
		return DS_OK;
	p->kept_bits = calloc((size_t)(last / 64 + 1), sizeof(uint64_t));
	p->redo_bits = calloc((size_t)(last / 64 + 1), sizeof(uint64_t));
	p->oldest = calloc((size_t)last + 1, sizeof(uint64_t));
	if (p->kept_bits == NULL || p->redo_bits == NULL || p->oldest == NULL) {
		free(p->kept_bits);
		free(p->redo_bits);
		free(p->oldest);
		p->kept_bits = p->redo_bits = p->oldest = NULL;
		return DS_OK;
	}
	p->ndense = last + 1;
	return DS_OK;
}

/* Mark database name (a .c pointer, a revision, a transaction; the x
 * files are always kept). Before or after the mark's threads run. */
static int
pack_mark(struct pack *p, const char *name)
{
	uint64_t a = 0, b = 0, oldest;
	int rc = DS_OK;

	switch (pack_key(name, &a, &b)) {
	case PACK_POINTER:
		if (!pack_obj_get(p, a, &oldest))
			rc = pack_obj_put(p, a, PACK_NO_REVISION, p->err);
		break;
	case PACK_REVISION:
		if (!pack_obj_get(p, a, &oldest))
			return ds_error_set(p->err, DS_ECORRUPT, "pack: %s "
			                    "marked before its object", name);
		if (b < oldest)
			rc = pack_obj_put(p, a, b, p->err);
		break;
	case PACK_TXN:
		if (keyset_id_add(&p->txns, a, NULL, p->err) != DS_OK)
			rc = ds_error_set(p->err, DS_ENOMEM, "pack: out of "
			                  "memory for the marks");
		break;
	default:
		break;
	}
	return rc;
}

static int
pack_is_marked(struct pack *p, const char *name)
{
	uint64_t a = 0, b = 0, oldest;

	switch (pack_key(name, &a, &b)) {
	case PACK_POINTER:
		return pack_obj_get(p, a, &oldest);
	case PACK_REVISION:
		return pack_obj_get(p, a, &oldest) &&
		       oldest != PACK_NO_REVISION && b >= oldest;
	case PACK_TXN:
		return keyset_id_has(&p->txns, a);
	default:
		/* x.serial, x.oid, x.packed */
		return name[0] == 'x';
	}
}

/* Absolute path of database name in A. */
static int
pack_path(struct pack *p, const char *name, char *out, size_t outsz,
          ds_error *err)
{
	char rel[DS_RELPATH_MAX];
	int rc;

	rc = ds_layout_name_to_path(p->layout, name, rel, sizeof(rel), err);
	if (rc != DS_OK)
		return rc;
	if ((size_t)snprintf(out, outsz, "%s/%s", p->a, rel) >= outsz)
		return ds_error_set(err, DS_EINVAL, "pack: path too long: "
		                    "%s/%s", p->a, rel);
	return DS_OK;
}

static int
pack_read(struct pack *p, const char *name, unsigned char **buf, size_t *len,
          ds_error *err)
{
	char path[DS_PATH_MAX];
	int rc;

	*buf = NULL;
	rc = pack_path(p, name, path, sizeof(path), err);
	if (rc != DS_OK)
		return rc;
	/* no atime update: reading half a million records would dirty as
	 * many inodes, which the next barrier would have to write */
	return ds_file_read_flags(path, 0, O_NOATIME, buf, len, err);
}

/* Replace database file `name` in A by buf: written and fsynced as
 * misc/pack.tmp, renamed over it, its directory fsynced. Never opens the
 * old file for writing. */
static int
pack_replace(struct pack *p, const char *name, const void *buf, size_t len)
{
	char tmp[DS_PATH_MAX], path[DS_PATH_MAX], *slash;
	int rc;

	if ((rc = storage_path(p->s, tmp, sizeof(tmp), PACK_TMP, p->err)) !=
	    DS_OK ||
	    (rc = pack_path(p, name, path, sizeof(path), p->err)) != DS_OK)
		return rc;
	rc = ds_io_write_file(tmp, buf, len, 0640, 0, p->s->use_sync, p->err);
	if (rc != DS_OK)
		return rc;
	rc = ds_io_rename(tmp, path, p->err);
	if (rc != DS_OK)
		return rc;
	if (!p->s->use_dirsync)
		return DS_OK;
	slash = strrchr(path, '/');
	*slash = '\0';
	return ds_io_fsync_dir(path, p->err);
}

/* ---- threads ----
 * The mark and the sweeps each run PACK_THREADS threads over a shared
 * queue (objects to mark, directories to sweep). On a cold cache every
 * directory, inode and record is a disk read, and one thread would wait
 * for them one at a time: many threads give the disk many requests at
 * once. Warm, the work is system calls, which two cores share. The
 * result does not depend on the order: an object's marks are the same
 * whoever marks it, a directory's sweep touches only its own entries.
 * Each thread has its own error; the first failure stops the others
 * (they finish the object or directory in hand) and is the pack's. */
#define PACK_THREADS 16

struct pack_worker {
	struct pack *p;
	ds_error err;
	const char *name;        /* the revision being scanned (messages) */
	ds_oid *refs;            /* the oids it refers to */
	size_t nrefs, refcap;
};

/* Record a thread's failure (p->mu held): the first one wins. */
static void
pack_fail_locked(struct pack *p, int rc, const ds_error *err)
{
	if (p->failed)
		return;
	p->failed = 1;
	p->rc = rc;
	if (p->err != NULL)
		*p->err = *err;
	pthread_cond_broadcast(&p->cv);
}

/* Run fn on PACK_THREADS threads (on this one alone when none can be
 * started) and wait for them all; p->rc afterwards. */
static int
pack_threads_run(struct pack *p, void *(*fn)(void *))
{
	struct pack_worker *w;
	pthread_t t[PACK_THREADS];
	int i, started = 0;

	w = calloc(PACK_THREADS, sizeof(*w));
	if (w == NULL)
		return ds_error_set(p->err, DS_ENOMEM, "pack: out of memory");
	p->busy = 0;
	p->failed = 0;
	p->rc = DS_OK;
	for (i = 0; i < PACK_THREADS; i++) {
		w[i].p = p;
		if (pthread_create(&t[i], NULL, fn, &w[i]) != 0)
			break;
		started++;
	}
	if (started == 0)
		fn(&w[0]);
	for (i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	for (i = 0; i < PACK_THREADS; i++)
		free(w[i].refs);
	free(w);
	return p->rc;
}

/* ---- the mark ---- */

/* Queue oid (p->mu held, or no thread running). */
static int
pack_todo_push(struct pack *p, ds_oid oid, ds_error *err)
{
	if (p->ntodo == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 256;
		ds_oid *n = realloc(p->todo, ncap * sizeof(*n));
		if (n == NULL)
			return ds_error_set(err, DS_ENOMEM,
			                    "pack: out of memory");
		p->todo = n;
		p->cap = ncap;
	}
	p->todo[p->ntodo++] = oid;
	return DS_OK;
}

/* ds_refscan's callback: collect the references of one revision. */
static int
pack_ref(const unsigned char *oid, size_t len, void *ctx, ds_error *err)
{
	struct pack_worker *w = ctx;

	if (len != 8)
		return ds_error_set(err, DS_ECORRUPT, "pack: %s refers to an "
		                    "oid of %zu bytes (8 expected)", w->name,
		                    len);
	if (w->nrefs == w->refcap) {
		size_t ncap = w->refcap ? w->refcap * 2 : 64;
		ds_oid *n = realloc(w->refs, ncap * sizeof(*n));
		if (n == NULL)
			return ds_error_set(err, DS_ENOMEM,
			                    "pack: out of memory");
		w->refs = n;
		w->refcap = ncap;
	}
	w->refs[w->nrefs++] = ds_get_u64(oid);
	return DS_OK;
}

/* The [keepclass] option for a class name, or NULL. */
static const struct pack_keep *
pack_keep_find(const struct pack *p, const char *cls)
{
	for (size_t i = 0; i < p->nkeep; i++)
		if (strcmp(p->keep[i].cls, cls) == 0)
			return &p->keep[i];
	return NULL;
}

/* Take object oid: *mine is 1 when no thread had (it is kept from now
 * on, its revisions are this thread's to mark), 0 when it was kept. */
static int
pack_obj_claim(struct pack_worker *w, ds_oid oid, int *mine)
{
	struct pack *p = w->p;
	uint64_t oldest;
	int rc = DS_OK;

	pthread_mutex_lock(&p->mu);
	*mine = !pack_obj_get(p, oid, &oldest);
	if (*mine) {
		rc = pack_obj_put(p, oid, PACK_NO_REVISION, &w->err);
		p->st->objects_kept++;
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

/* Keep revision (oid, serial), with its transaction when txn, and queue
 * the objects it refers to (w->refs) that nobody has marked yet. */
static int
pack_keep_revision(struct pack_worker *w, ds_oid oid, ds_tid serial, int txn)
{
	struct pack *p = w->p;
	uint64_t oldest;
	size_t i, queued = 0;
	int rc = DS_OK;

	pthread_mutex_lock(&p->mu);
	if (pack_obj_get(p, oid, &oldest) && serial < oldest)
		rc = pack_obj_put(p, oid, serial, &w->err);
	p->st->revisions_kept++;
	if (rc == DS_OK && txn &&
	    keyset_id_add(&p->txns, serial, NULL, &w->err) != DS_OK)
		rc = ds_error_set(&w->err, DS_ENOMEM, "pack: out of memory "
		                  "for the marks");
	/* an object already marked is not queued again (a popular object
	 * is referenced by many: the queue stays as small as the marks) */
	for (i = 0; rc == DS_OK && i < w->nrefs; i++) {
		if (pack_obj_get(p, w->refs[i], &oldest))
			continue;
		rc = pack_todo_push(p, w->refs[i], &w->err);
		queued++;
	}
	if (queued > 0)
		pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return rc;
}

/* Mark object oid (its .c pointer, its current revision and those at or
 * after the threshold, or older ones its class's [keepclass] option
 * keeps, their transactions) and queue what those revisions refer to. */
static int
pack_mark_object(struct pack_worker *w, ds_oid oid)
{
	struct pack *p = w->p;
	ds_error *err = &w->err;
	char name[DS_NAME_MAX];
	unsigned char *buf = NULL;
	size_t len;
	const struct pack_keep *keep = NULL;
	ds_tid tid;
	int first = 1, have_class = 0, mine, rc;

	if ((rc = pack_obj_claim(w, oid, &mine)) != DS_OK || !mine)
		return rc;
	ds_name_pointer(oid, name);
	rc = pack_read(p, name, &buf, &len, err);
	if (rc == DS_ENOTFOUND) {
		/* a reference to an object that is not there: continuing
		 * could remove what only that object would keep */
		char o[17], m[DS_ERROR_MSG_MAX];
		ds_id_format(oid, o);
		snprintf(m, sizeof(m), "%s", err->msg);
		return ds_error_set(err, DS_ECORRUPT, "pack: object %s is "
		                    "referenced but has no .c pointer (%s)", o,
		                    m);
	}
	if (rc != DS_OK)
		return rc;
	rc = ds_pointer_decode(buf, len, name, &tid, err);
	free(buf);
	buf = NULL;
	if (rc != DS_OK)
		return rc;
	for (;;) {
		ds_objrec rec;

		ds_name_revision(oid, tid, name);
		rc = pack_read(p, name, &buf, &len, err);
		if (rc == DS_ENOTFOUND && !first && tid < p->last_pack)
			break; /* removed by an earlier pack */
		if (rc != DS_OK)
			goto out; /* missing recent revision: corruption, stop
			           * before anything is removed */
		rc = ds_objrec_decode(buf, len, name, &rec, err);
		if (rc != DS_OK)
			goto out;
		if (rec.oid != oid || rec.serial != tid) {
			rc = ds_error_set(err, DS_ECORRUPT, "pack: %s holds "
			                  "another oid or serial", name);
			goto out;
		}
		w->nrefs = 0;
		if (rec.pickle_len > 0) {
			w->name = name;
			rc = ds_refscan(rec.pickle, rec.pickle_len, pack_ref, w,
			                err);
			if (rc != DS_OK) {
				char m[DS_ERROR_MSG_MAX];
				snprintf(m, sizeof(m), "%s", err->msg);
				ds_error_set(err, rc, "pack: %s (%s revision): "
				             "%s", name, first ? "current" :
				             "old", m);
				goto out;
			}
			/* the original reads the class from the newest
			 * revision it finds a name in */
			if (p->nkeep > 0 && !have_class) {
				char cls[1024];
				if (ds_classname_get(rec.pickle, rec.pickle_len,
				                     cls, sizeof(cls)) == DS_OK) {
					have_class = 1;
					keep = pack_keep_find(p, cls);
				}
			}
		}
		rc = pack_keep_revision(w, oid, tid, tid >= p->threshold ||
		                        p->keep_ancient);
		if (rc != DS_OK)
			goto out;
		tid = rec.prev_serial;
		free(buf);
		buf = NULL;
		/* older than the threshold: gone, unless its class keeps it
		 * (forever, or while newer than its limit) */
		if (tid < p->threshold && (keep == NULL || tid < keep->limit))
			break;
		first = 0;
	}
	rc = DS_OK;
out:
	free(buf);
	return rc;
}

static void *
pack_mark_thread(void *arg)
{
	struct pack_worker *w = arg;
	struct pack *p = w->p;
	ds_oid oid;
	int rc;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (p->ntodo == 0 && p->busy > 0 && !p->failed)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->ntodo == 0 || p->failed)
			break;
		oid = p->todo[--p->ntodo];
		p->busy++;
		pthread_mutex_unlock(&p->mu);
		rc = pack_mark_object(w, oid);
		pthread_mutex_lock(&p->mu);
		p->busy--;
		if (rc != DS_OK)
			pack_fail_locked(p, rc, &w->err);
		if (p->busy == 0 && p->ntodo == 0)
			pthread_cond_broadcast(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Mark every queued object and what it reaches. */
static int
pack_mark_queued(struct pack *p)
{
	double t0 = ds_now();
	int rc = pack_threads_run(p, pack_mark_thread);

	pack_log(p, DS_LOG_DEBUG, "  mark: %.2f s", ds_now() - t0);
	return rc;
}

static int
pack_read_x(struct pack *p, const char *name, uint64_t *v)
{
	unsigned char *buf;
	size_t len;
	int rc;

	rc = pack_read(p, name, &buf, &len, p->err);
	if (rc != DS_OK)
		return rc;
	rc = ds_xfile_decode(buf, len, name, v, p->err);
	free(buf);
	return rc;
}

/* Every transaction at or after the threshold, and the two newest, with
 * the objects they wrote (queued: kept even when unreachable, as the
 * original does for replication and backup). */
static int
pack_mark_recent(struct pack *p)
{
	char name[DS_NAME_MAX], cname[DS_NAME_MAX];
	unsigned char *buf = NULL;
	size_t len, i;
	ds_tid tid;
	ds_txnrec rec;
	int counter = 0, rc;

	if ((rc = pack_read_x(p, "x.serial", &tid)) != DS_OK)
		return rc;
	if (p->min_pack_time == 0)
		counter = 2;
	while (tid >= p->threshold || counter < 2) {
		counter++;
		ds_name_transaction(tid, name);
		if ((rc = pack_mark(p, name)) != DS_OK)
			return rc;
		rc = pack_read(p, name, &buf, &len, p->err);
		if (rc == DS_ENOTFOUND && tid < p->last_pack)
			return DS_OK;
		if (rc != DS_OK)
			return rc;
		rc = ds_txnrec_decode(buf, len, name, &rec, p->err);
		if (rc != DS_OK)
			goto out;
		if (rec.tid != tid) {
			rc = ds_error_set(p->err, DS_ECORRUPT, "pack: %s holds "
			                  "another tid", name);
			goto out;
		}
		for (i = 0; i < rec.noids; i++) {
			ds_oid oid = ds_get_u64(rec.oids + 8 * i);
			char path[DS_PATH_MAX];
			struct stat sb;

			ds_name_pointer(oid, cname);
			if ((rc = pack_path(p, cname, path, sizeof(path),
			                    p->err)) != DS_OK)
				goto out;
			if (lstat(path, &sb) != 0)
				continue; /* no such object any more: fine */
			if ((rc = pack_todo_push(p, oid, p->err)) != DS_OK)
				goto out;
		}
		tid = rec.prev_tid;
		free(buf);
		buf = NULL;
		if (tid == 0)
			break;
	}
	rc = DS_OK;
out:
	free(buf);
	return rc;
}

/* The rewritten transactions of the relink: each new content is written
 * as misc/pack.tmp.<i> first (not synced one by one), and once all are
 * written one barrier makes them durable together and each is renamed
 * over its transaction file. An fsync of each file and of its directory
 * (what ds_io_replace_file does for one file) would cost two journal
 * commits per transaction: thousands on a large storage. Staged outside
 * A, so that a pack killed meanwhile leaves nothing `ds check` would
 * report; the next pack removes them before it starts. */
struct pack_staged {
	char (*names)[DS_NAME_MAX];   /* the transactions rewritten */
	size_t n, cap;
};

static int
pack_stage_path(struct pack *p, size_t i, char *out, size_t outsz)
{
	char rel[64];

	snprintf(rel, sizeof(rel), "%s.%zu", PACK_TMP, i);
	return storage_path(p->s, out, outsz, rel, p->err);
}

static int
pack_stage(struct pack *p, struct pack_staged *sg, const char *name,
           const void *buf, size_t len)
{
	char tmp[DS_PATH_MAX];
	int rc;

	if (sg->n == sg->cap) {
		size_t ncap = sg->cap ? sg->cap * 2 : 64;
		char (*nn)[DS_NAME_MAX] = realloc(sg->names,
		                                  ncap * sizeof(*nn));
		if (nn == NULL)
			return ds_error_set(p->err, DS_ENOMEM,
			                    "pack: out of memory");
		sg->names = nn;
		sg->cap = ncap;
	}
	if ((rc = pack_stage_path(p, sg->n, tmp, sizeof(tmp))) != DS_OK)
		return rc;
	/* O_TRUNC: one a killed pack left is overwritten */
	rc = ds_io_write_file(tmp, buf, len, 0640, 0, 0, p->err);
	if (rc != DS_OK)
		return rc;
	snprintf(sg->names[sg->n++], DS_NAME_MAX, "%s", name);
	return DS_OK;
}

static int pack_barrier(struct pack *p);

/* Make the staged files durable (one barrier), then rename each over
 * its transaction file; the barrier after the relink makes the renames
 * durable before the transaction sweep. */
static int
pack_stage_commit(struct pack *p, struct pack_staged *sg)
{
	char tmp[DS_PATH_MAX], path[DS_PATH_MAX];
	int rc;

	if (sg->n == 0)
		return DS_OK;
	if ((rc = pack_barrier(p)) != DS_OK)
		return rc;
	for (size_t i = 0; i < sg->n; i++) {
		if ((rc = pack_stage_path(p, i, tmp, sizeof(tmp))) != DS_OK ||
		    (rc = pack_path(p, sg->names[i], path, sizeof(path),
		                    p->err)) != DS_OK ||
		    (rc = ds_io_rename(tmp, path, p->err)) != DS_OK)
			return rc;
		p->st->relinked++;
	}
	return DS_OK;
}

/* Remove misc/pack.tmp and misc/pack.tmp.<i>, which a killed pack
 * may have left. */
static int
pack_stage_clean(ds_storage *s, ds_error *err)
{
	char misc[DS_PATH_MAX], path[DS_PATH_MAX];
	const char *base = strrchr(PACK_TMP, '/') + 1;
	size_t blen = strlen(base);
	struct dirent *de;
	DIR *d;
	int rc = DS_OK;

	if ((rc = storage_path(s, misc, sizeof(misc), "misc", err)) != DS_OK)
		return rc;
	d = opendir(misc);
	if (d == NULL)
		return ds_error_sys(err, errno, "pack: open directory", misc);
	while (rc == DS_OK && (de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, base, blen) != 0 ||
		    (de->d_name[blen] != '\0' && de->d_name[blen] != '.'))
			continue;
		if ((rc = ds_path_join(path, sizeof(path), misc, de->d_name,
		                       err)) == DS_OK)
			rc = ds_io_unlink(path, err);
	}
	closedir(d);
	return rc;
}

/* Back pointers: each kept transaction points to the previous kept one.
 * Walks the chain from x.serial as the original does. */
static int
pack_relink(struct pack *p)
{
	char name[DS_NAME_MAX], prev_name[DS_NAME_MAX] = "";
	unsigned char *buf = NULL, *pbuf = NULL;
	size_t len, plen = 0;
	ds_tid tid, prev_ptr = 0;
	ds_txnrec rec;
	struct pack_staged sg = {NULL, 0, 0};
	int rc;

	if ((rc = pack_read_x(p, "x.serial", &tid)) != DS_OK)
		return rc;
	for (;;) {
		ds_name_transaction(tid, name);
		rc = pack_read(p, name, &buf, &len, p->err);
		if (rc == DS_ENOTFOUND && tid < p->last_pack)
			break;
		if (rc != DS_OK)
			goto out;
		rc = ds_txnrec_decode(buf, len, name, &rec, p->err);
		if (rc != DS_OK)
			goto out;
		if (pack_is_marked(p, name)) {
			if (pbuf != NULL && prev_ptr != tid) {
				/* the kept transaction after this one skips
				 * removed ones: point it here */
				ds_put_u64(pbuf + 24, tid);
				rc = pack_stage(p, &sg, prev_name, pbuf, plen);
				if (rc != DS_OK)
					goto out;
			}
			free(pbuf);
			pbuf = buf;
			plen = len;
			buf = NULL;
			memcpy(prev_name, name, sizeof(name));
			prev_ptr = rec.prev_tid;
		}
		tid = rec.prev_tid;
		free(buf);
		buf = NULL;
		if (tid == 0)
			break;
	}
	rc = pack_stage_commit(p, &sg);
out:
	free(buf);
	free(pbuf);
	free(sg.names);
	return rc;
}

/* ---- the sweeps ----
 * Three, in this order, with a barrier after each (crash safety, at the
 * top of this file):
 *  PASS_OBJECTS       every directory but the transactions' subtrees:
 *                     the .c pointers of unreachable objects go; every
 *                     kept file gets its mark (mode 0740), every
 *                     revision that goes loses it now (the original
 *                     clears every mark first) and its object is noted
 *                     in redo_bits; stray files, old leftovers and empty
 *                     directories go (the housekeeping).
 *  PASS_REVISIONS     the revisions that go: in the layouts with a
 *                     directory per object (bushy, lawn) only the
 *                     directories of the objects noted, found from
 *                     their oid; otherwise (chunky, flat, or a revision
 *                     of an oid beyond x.oid) every directory again. A
 *                     listing and a rename per file removed: the modes
 *                     were read and cleared by the first sweep.
 *  PASS_TRANSACTIONS  the transactions' subtrees (top-level "t..."):
 *                     marks, removals and their housekeeping. */
enum pack_pass {
	PASS_OBJECTS = 1,
	PASS_REVISIONS,
	PASS_TRANSACTIONS,
	PASS_READAHEAD,    /* before the mark: see pack_readahead */
};

/* Which kind of file the file at relpath (relative to A) is, for the
 * sweeps: PASS_OBJECTS for .c pointers, PASS_REVISIONS for revisions and
 * x files, PASS_TRANSACTIONS for transactions; 0 with name "" for what
 * is not a database file. */
static int
pack_kind_of(struct pack *p, const char *rel, char *name, size_t namesz)
{
	ds_error e;

	if (ds_layout_path_to_name(p->layout, rel, name, namesz, &e) != DS_OK) {
		name[0] = '\0';
		return 0;
	}
	if (name[0] == 't')
		return PASS_TRANSACTIONS;
	if (name[0] == 'o' && strcmp(strchr(name, '.'), ".c") == 0)
		return PASS_OBJECTS;
	return PASS_REVISIONS;
}

static void
pack_count(unsigned long *counter)
{
	__atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}

/* Remove entry base of directory dfd (path dir): renamed to
 * "<base>-<now>-deleted", or unlinked when delay_delete is 0. mode: the
 * file's mode when known (its mark is cleared first, as the original
 * does), else 0. */
static int
pack_remove(struct pack_worker *w, int dfd, const char *dir,
            const char *base, mode_t mode)
{
	struct pack *p = w->p;
	char to[NAME_MAX + 1];
	int rc;

	if (mode & S_IXUSR) {
		rc = ds_io_fchmodat(dfd, dir, base, 0640, &w->err);
		if (rc != DS_OK)
			return rc;
	}
	pack_count(&p->st->files_removed);
	if (p->delay_delete <= 0)
		return ds_io_unlinkat(dfd, dir, base, 0, &w->err);
	if ((size_t)snprintf(to, sizeof(to), "%s-%lld-deleted", base,
	                     p->now) >= sizeof(to))
		return ds_error_set(&w->err, DS_EINVAL, "pack: name too long: "
		                    "%s/%s", dir, base);
	return ds_io_renameat(dfd, dir, base, to, &w->err);
}

/* Note that object oid's directory has a revision to remove (a bit for
 * an oid up to x.oid in a layout with a directory per object; otherwise
 * the second sweep walks everything). */
static void
pack_redo(struct pack *p, const char *name)
{
	uint64_t oid = 0, serial;

	if (pack_key(name, &oid, &serial) == PACK_REVISION &&
	    oid < p->ndense &&
	    (p->layout == DS_LAYOUT_BUSHY || p->layout == DS_LAYOUT_LAWN))
		__atomic_fetch_or(&p->redo_bits[oid >> 6], 1ull << (oid & 63),
		                  __ATOMIC_RELAXED);
	else
		__atomic_store_n(&p->redo_all, 1, __ATOMIC_RELAXED);
}

struct pack_ent {
	char *name;
	unsigned char type;     /* d_type: DT_DIR, DT_REG, ... DT_UNKNOWN */
};

static int
pack_ent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct pack_ent *)a)->name,
	              ((const struct pack_ent *)b)->name);
}

/* The entries of directory fd (path abs), sorted by name. getdents64
 * itself rather than readdir: fdopendir costs a dup, a stat and an fcntl
 * per directory, and a pack lists hundreds of thousands. */
static int
pack_list_dir(struct pack_worker *w, int fd, const char *abs,
              struct pack_ent **out, size_t *count)
{
	struct pack_ent *v = NULL;
	size_t n = 0, cap = 0;
	char buf[32768];
	ssize_t got;

	*out = NULL;
	*count = 0;
	while ((got = getdents64(fd, buf, sizeof(buf))) != 0) {
		ssize_t off;

		if (got < 0) {
			if (errno == EINTR)
				continue;
			ds_error_sys(&w->err, errno, "pack: read directory",
			             abs);
			goto fail;
		}
		for (off = 0; off < got;) {
			struct dirent64 *de = (struct dirent64 *)(buf + off);

			off += de->d_reclen;
			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 16;
				struct pack_ent *nv = realloc(v, ncap *
				                              sizeof(*nv));
				if (nv == NULL)
					goto nomem;
				v = nv;
				cap = ncap;
			}
			if ((v[n].name = strdup(de->d_name)) == NULL)
				goto nomem;
			v[n].type = de->d_type;
			n++;
		}
	}
	/* name order: an object's revisions oldest first */
	if (n > 1)
		qsort(v, n, sizeof(*v), pack_ent_cmp);
	*out = v;
	*count = n;
	return DS_OK;
nomem:
	ds_error_set(&w->err, DS_ENOMEM, "pack: out of memory");
fail:
	while (n > 0)
		free(v[--n].name);
	free(v);
	return w->err.status;
}

/* A directory to sweep: its path relative to A ("" for A), and whether
 * this sweep does its housekeeping there. */
struct pack_dir {
	char *rel;
	int house;
};

/* Queue a directory (p->mu held). */
static int
pack_dir_push(struct pack *p, const char *rel, int house, ds_error *err)
{
	if (p->ndirs == p->dircap) {
		size_t ncap = p->dircap ? p->dircap * 2 : 256;
		struct pack_dir *n = realloc(p->dirs, ncap * sizeof(*n));
		if (n == NULL)
			return ds_error_set(err, DS_ENOMEM,
			                    "pack: out of memory");
		p->dirs = n;
		p->dircap = ncap;
	}
	if ((p->dirs[p->ndirs].rel = strdup(rel)) == NULL)
		return ds_error_set(err, DS_ENOMEM, "pack: out of memory");
	p->dirs[p->ndirs++].house = house;
	pthread_cond_signal(&p->cv);
	return DS_OK;
}

/* One file of a sweep (name: its database name, "" for what is not
 * one; kind: pack_kind_of's). */
static int
pack_sweep_file(struct pack_worker *w, int fd, const char *abs,
                const char *base, const char *name, int kind, int house)
{
	struct pack *p = w->p;
	int pass = p->pass, marked;
	struct stat sb;

	if (name[0] == '\0') {
		/* a stray file: the housekeeping's */
		if (!house)
			return DS_OK;
	} else if (pass == PASS_OBJECTS) {
		if (kind != PASS_OBJECTS && kind != PASS_REVISIONS)
			return DS_OK;
	} else if (kind != pass) {
		return DS_OK;
	}
	marked = name[0] != '\0' && pack_is_marked(p, name);
	if (pass == PASS_REVISIONS) {
		/* the first sweep read the modes and cleared the marks of
		 * what goes: a rename each, whatever the file is */
		return marked ? DS_OK : pack_remove(w, fd, abs, base, 0);
	}
	if (fstatat(fd, base, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
		char path[DS_PATH_MAX + NAME_MAX + 2];
		snprintf(path, sizeof(path), "%s/%s", abs, base);
		return ds_error_sys(&w->err, errno, "pack: stat", path);
	}
	if (!S_ISREG(sb.st_mode)) {
		/* a symlink (or stranger) where a database file belongs:
		 * chmod would follow it out of the storage */
		if (marked)
			return ds_error_set(&w->err, DS_ECORRUPT, "pack: %s/%s "
			                    "is not a regular file", abs, base);
		if (pass == PASS_OBJECTS && kind == PASS_REVISIONS) {
			pack_redo(p, name);
			return DS_OK;
		}
		return pack_remove(w, fd, abs, base, 0);
	}
	if (marked) {
		pack_count(&p->st->files_kept);
		if ((sb.st_mode & 07777) != 0740)
			return ds_io_fchmodat(fd, abs, base, 0740, &w->err);
		return DS_OK;
	}
	if (pass == PASS_OBJECTS && kind == PASS_REVISIONS) {
		/* goes in the second sweep, after its pointer */
		pack_redo(p, name);
		if (sb.st_mode & S_IXUSR)
			return ds_io_fchmodat(fd, abs, base, 0640, &w->err);
		return DS_OK;
	}
	return pack_remove(w, fd, abs, base, sb.st_mode);
}

/* The read-ahead before the mark. On a cold cache each record the mark
 * reads is a disk read or three (directory, inode, content), and the
 * mark learns which record it needs next only from the one before. This
 * walk (on the sweeps' threads, over all of A) opens the
 * files the mark will most likely read, each object's .c pointer, its
 * newest revision and those at or after the threshold, and the
 * transactions (which the relink then reads one after the other, from
 * the newest back), and asks the kernel to read their content ahead
 * (POSIX_FADV_WILLNEED, which does not wait), so that the disk gets many
 * requests at once. A hint: what fails here is ignored (the mark
 * reports what matters). */
struct pack_pend {
	char base[NAME_MAX + 1];  /* a revision, not fetched yet */
	uint64_t oid;
	int have;
};

static void
pack_fetch(int fd, const char *base)
{
	int f = openat(fd, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	               O_CLOEXEC);

	if (f < 0)
		return;
	(void)posix_fadvise(f, 0, 0, POSIX_FADV_WILLNEED);
	close(f);
}

/* One entry, in name order (an object's revisions oldest first, so the
 * last one before another object's or another kind of entry is its
 * newest); base NULL at the end of the directory. */
static void
pack_readahead(struct pack *p, int fd, const char *base, const char *name,
               struct pack_pend *pend)
{
	uint64_t oid = 0, serial = 0;
	enum pack_kind k = base != NULL ? pack_key(name, &oid, &serial) :
	                   PACK_OTHER;

	if (pend->have && (k != PACK_REVISION || oid != pend->oid)) {
		pack_fetch(fd, pend->base);
		pend->have = 0;
	}
	if (k == PACK_POINTER || k == PACK_TXN) {
		pack_fetch(fd, base);
	} else if (k == PACK_REVISION) {
		if (serial >= p->threshold) {
			pack_fetch(fd, base);
			return;
		}
		snprintf(pend->base, sizeof(pend->base), "%s", base);
		pend->oid = oid;
		pend->have = 1;
	}
}

/* Sweep directory rel (relative to A, "" for A itself) for the current
 * pass: a listing, and a stat per file of the pass's kinds (none in
 * the second sweep). Subdirectories are queued for any thread; the
 * transactions' subtrees (top-level directories "t...") belong to the
 * transaction sweep alone, the others to the first two. `house`: this
 * walk also does the housekeeping (leftovers, stray files, empty
 * directories): the first sweep, and the transaction sweep in the
 * transactions' subtrees. */
static int
pack_sweep_dir(struct pack_worker *w, const char *rel, int house)
{
	struct pack *p = w->p;
	struct pack_ent *ents = NULL;
	struct pack_pend pend;
	char abs[DS_PATH_MAX];
	size_t n = 0, i;
	int rc, fd = -1;

	if ((size_t)snprintf(abs, sizeof(abs), "%s%s%s", p->a,
	                     rel[0] ? "/" : "", rel) >= sizeof(abs))
		return ds_error_set(&w->err, DS_EINVAL, "pack: path too long: "
		                    "%s/%s", p->a, rel);
	if (rel[0] == '\0')
		fd = openat(p->afd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rel[0] == '\0' && fd < 0)
		return ds_error_sys(&w->err, errno, "pack: open directory",
		                    abs);
	if (rel[0] != '\0') {
		rc = ds_io_opendir_beneath(p->afd, rel, abs, &fd, &w->err);
		if (rc == DS_ENOTFOUND && p->pass == PASS_REVISIONS)
			return DS_OK;  /* an object's directory, gone */
		if (rc != DS_OK)
			return rc;
	}
	if (p->pass == PASS_REVISIONS)
		pack_count(&p->st->dirs_revisited);
	rc = pack_list_dir(w, fd, abs, &ents, &n);
	if (rc != DS_OK)
		goto out;
	pend.have = 0;
	if (n == 0 && house && rel[0] != '\0') {
		rc = ds_io_rmdir(abs, &w->err);
		goto out;
	}
	for (i = 0; i < n && !__atomic_load_n(&p->failed, __ATOMIC_RELAXED);
	     i++) {
		char crel[DS_PATH_MAX], name[DS_NAME_MAX];
		const char *base = ents[i].name;
		struct stat sb;
		long long when;
		int kind;

		if ((size_t)snprintf(crel, sizeof(crel), "%s%s%s", rel,
		                     rel[0] ? "/" : "", base) >=
		    sizeof(crel)) {
			rc = ds_error_set(&w->err, DS_EINVAL, "pack: path too "
			                  "long: %s/%s", abs, base);
			goto out;
		}
		if (ds_layout_leftover(base, &when) != DS_LEFTOVER_NONE) {
			if (!house)
				continue;
			if (when + p->delay_delete < p->now) {
				rc = ds_io_unlinkat(fd, abs, base, 0, &w->err);
				pack_count(&p->st->leftovers_purged);
			} else if (fstatat(fd, base, &sb,
			                   AT_SYMLINK_NOFOLLOW) != 0) {
				rc = ds_error_sys(&w->err, errno, "pack: stat",
				                  crel);
			} else if (S_ISREG(sb.st_mode) &&
			           (sb.st_mode & S_IXUSR)) {
				rc = ds_io_fchmodat(fd, abs, base, 0640,
				                    &w->err);
			}
			if (rc != DS_OK)
				goto out;
			continue;
		}
		if (ents[i].type == DT_DIR ||
		    (ents[i].type == DT_UNKNOWN &&
		     fstatat(fd, base, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
		     S_ISDIR(sb.st_mode))) {
			int chouse = house;

			if (p->by_oid)
				continue;   /* an object's directory has none */
			if (rel[0] == '\0' && p->pass != PASS_READAHEAD) {
				/* a top-level subtree: transactions or not */
				int tt = base[0] == 't';
				if (tt != (p->pass == PASS_TRANSACTIONS))
					continue;
				chouse = house || tt;
			}
			pthread_mutex_lock(&p->mu);
			rc = pack_dir_push(p, crel, chouse, &w->err);
			pthread_mutex_unlock(&p->mu);
			if (rc != DS_OK)
				goto out;
			continue;
		}
		kind = pack_kind_of(p, crel, name, sizeof(name));
		if (p->pass == PASS_READAHEAD) {
			pack_readahead(p, fd, base, name, &pend);
			continue;
		}
		rc = pack_sweep_file(w, fd, abs, base, name, kind, house);
		if (rc != DS_OK)
			goto out;
	}
	if (p->pass == PASS_READAHEAD)
		pack_readahead(p, fd, NULL, NULL, &pend);
out:
	if (fd >= 0)
		close(fd);
	for (i = 0; i < n; i++)
		free(ents[i].name);
	free(ents);
	return rc;
}

/* The next object noted in redo_bits, from p->cursor on (p->mu held):
 * 1 and its directory (relative to A) in rel, or 0 when none is left. */
static int
pack_redo_next(struct pack *p, char *rel, size_t relsz)
{
	char name[DS_NAME_MAX];
	ds_error e;

	while (p->cursor < p->ndense) {
		uint64_t oid = p->cursor++;
		char *slash;

		if (!((p->redo_bits[oid >> 6] >> (oid & 63)) & 1)) {
			if ((oid & 63) == 0 && p->redo_bits[oid >> 6] == 0)
				p->cursor = oid + 64;
			continue;
		}
		ds_name_pointer(oid, name);
		if (ds_layout_name_to_path(p->layout, name, rel, relsz, &e) !=
		    DS_OK || (slash = strrchr(rel, '/')) == NULL)
			continue;   /* not in this layout: redo_all is set */
		*slash = '\0';
		return 1;
	}
	return 0;
}

static void *
pack_sweep_thread(void *arg)
{
	struct pack_worker *w = arg;
	struct pack *p = w->p;
	char rel[DS_PATH_MAX];
	int house, rc;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (p->ndirs == 0 && !(p->by_oid && p->cursor < p->ndense) &&
		       p->busy > 0 && !p->failed)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->failed)
			break;
		if (p->ndirs > 0) {
			struct pack_dir *d = &p->dirs[--p->ndirs];
			snprintf(rel, sizeof(rel), "%s", d->rel);
			house = d->house;
			free(d->rel);
		} else if (p->by_oid && pack_redo_next(p, rel, sizeof(rel))) {
			house = 0;
		} else {
			break;
		}
		p->busy++;
		pthread_mutex_unlock(&p->mu);
		rc = pack_sweep_dir(w, rel, house);
		pthread_mutex_lock(&p->mu);
		p->busy--;
		if (rc != DS_OK)
			pack_fail_locked(p, rc, &w->err);
		if (p->busy == 0 && p->ndirs == 0)
			pthread_cond_broadcast(&p->cv);
	}
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* One sweep of A. */
static int
pack_sweep(struct pack *p, int pass)
{
	double t0;
	int rc;

	p->pass = pass;
	p->by_oid = pass == PASS_REVISIONS && !p->redo_all;
	p->cursor = 0;
	if (!p->by_oid &&
	    (rc = pack_dir_push(p, "", pass == PASS_OBJECTS, p->err)) !=
	    DS_OK)
		return rc;
	t0 = ds_now();
	rc = pack_threads_run(p, pack_sweep_thread);
	pack_log(p, DS_LOG_DEBUG, "  sweep: %.2f s", ds_now() - t0);
	while (p->ndirs > 0)
		free(p->dirs[--p->ndirs].rel);
	if (pass == PASS_READAHEAD && rc != DS_OK) {
		/* a hint only: the mark reports what matters */
		ds_error_clear(p->err);
		rc = DS_OK;
	}
	return rc;
}

/* Make the steps so far durable before the next one starts. */
static int
pack_barrier(struct pack *p)
{
	double t0 = ds_now();
	int fd, rc;

	if (!p->s->use_sync)
		return DS_OK;
	rc = ds_io_open(p->a, O_RDONLY | O_DIRECTORY, 0, &fd, p->err);
	if (rc != DS_OK)
		return rc;
	rc = ds_io_syncfs(fd, p->a, p->err);
	close(fd);
	pack_log(p, DS_LOG_DEBUG, "  syncfs: %.2f s", ds_now() - t0);
	return rc;
}

/* One [keepclass] option, read as the original reads it: "forever",
 * "extra N" (N as int() reads it, below 0 counting as 0), anything else
 * logged and ignored. */
static int
pack_keep_add(const char *key, const char *value, void *ctx)
{
	struct pack *p = ctx;
	struct pack_keep *n, *k;
	long days;

	if (strcmp(value, "forever") == 0) {
		days = -1;
	} else if (strncmp(value, "extra ", 6) == 0) {
		if (ds_settings_python_int(value + 6, &days) != 0)
			return ds_error_set(p->err, DS_ECONFIG, "pack %s: "
			                    "config/settings: [keepclass] %s: "
			                    "'%s' is not a number of days",
			                    p->s->home, key, value + 6);
		if (days < 0)
			days = 0;
	} else {
		pack_log(p, DS_LOG_WARN, "config/settings: bad [keepclass] "
		         "%s: '%s' (neither 'forever' nor 'extra DAYS'): "
		         "ignored, as the original does", key, value);
		return DS_OK;
	}
	n = realloc(p->keep, (p->nkeep + 1) * sizeof(*n));
	if (n == NULL)
		return ds_error_set(p->err, DS_ENOMEM, "pack: out of memory");
	p->keep = n;
	k = &p->keep[p->nkeep];
	memset(k, 0, sizeof(*k));
	if ((k->cls = strdup(key)) == NULL)
		return ds_error_set(p->err, DS_ENOMEM, "pack: out of memory");
	k->days = days;
	p->nkeep++;
	return DS_OK;
}

/* Each [keepclass] option's limit once the threshold is known: the
 * original's keep_extra.expired() compares with the tid of the
 * threshold's time less DAYS days. */
static void
pack_keep_limits(struct pack *p)
{
	for (size_t i = 0; i < p->nkeep; i++) {
		struct pack_keep *k = &p->keep[i];

		k->limit = k->days < 0 ? 0 :
		           ds_tid_from_time(ds_tid_to_time(p->threshold) -
		                            (double)k->days * 86400.0);
		pack_log(p, DS_LOG_VERBOSE, "[keepclass] %s: history kept %s",
		         k->cls, k->days < 0 ? "forever" : "longer");
	}
}

static int
pack_keep_policy(struct pack *p)
{
	char path[DS_PATH_MAX];
	ds_settings *set = NULL;
	const char *v;
	int rc;

	p->keep_ancient = 1;
	rc = storage_path(p->s, path, sizeof(path), "config/settings", p->err);
	if (rc != DS_OK)
		return rc;
	rc = ds_settings_load(path, &set, p->err);
	if (rc != DS_OK)
		return rc;
	if ((rc = ds_settings_foreach(set, "keepclass", pack_keep_add, p)) !=
	    DS_OK) {
		ds_settings_free(set);
		return rc;
	}
	v = ds_settings_get(set, "storage", "keep_policy");
	/* the original: "undoable" drops ancient transaction files; anything
	 * else (absent, "detailed", a typo) keeps them */
	if (v != NULL && strcmp(v, "undoable") == 0)
		p->keep_ancient = 0;
	ds_settings_free(set);
	return DS_OK;
}

/* Write x.packed (first: from now on a missing file older than it is a
 * pack's doing, for readers, check and the walks above). */
static int
pack_write_packed(struct pack *p)
{
	unsigned char b[8];
	int rc;

	ds_put_u64(b, p->last_pack);
	rc = pack_replace(p, "x.packed", b, sizeof(b));
	if (rc != DS_OK)
		return rc;
	pthread_mutex_lock(&p->s->mu);
	p->s->last_pack = p->last_pack;
	pthread_mutex_unlock(&p->s->mu);
	return DS_OK;
}

/* Replication slots: never pack past the oldest transaction a known
 * replica holds (its next request names it; the master refuses a replica
 * whose tid is older than x.packed). Read before x.packed is written: a
 * replica recorded after this point was admitted against the old
 * x.packed, and its next request is checked against the new one. */
static int
pack_hold_for_slots(struct pack *p)
{
	struct ds_slot *sl = NULL;
	size_t n = 0, i;
	long long now = (long long)time(NULL);
	double max_age = p->opts != NULL ? p->opts->slot_max_age : 0;
	int rc;

	if (p->opts != NULL && p->opts->ignore_replicas)
		return DS_OK;
	rc = ds_slot_list(p->s->home, &sl, &n, p->err);
	if (rc != DS_OK) {
		char m[DS_ERROR_MSG_MAX];
		snprintf(m, sizeof(m), "%s", p->err->msg);
		return ds_error_set(p->err, rc, "pack %s: %s (or pack with "
		                    "--ignore-replicas)", p->s->home, m);
	}
	for (i = 0; i < n; i++) {
		char hex[17];

		ds_id_format(sl[i].tid, hex);
		if (max_age > 0 && (double)(now - sl[i].seen) > max_age) {
			p->st->slots_expired++;
			pack_log(p, DS_LOG_INFO, "replication slot '%s' (at %s) "
			         "was last seen %lld s ago, more than the slot "
			         "maximum age: it does not hold the pack back",
			         sl[i].name, hex, now - sl[i].seen);
			continue;
		}
		if (sl[i].tid < p->threshold) {
			if (p->st->held_by[0] == '\0')
				p->st->held_from = p->threshold;
			p->threshold = sl[i].tid;
			snprintf(p->st->held_by, sizeof(p->st->held_by), "%s",
			         sl[i].name);
		}
	}
	ds_slot_list_free(sl);
	return DS_OK;
}

static int
pack_run(struct pack *p, ds_tid before)
{
	char path[DS_PATH_MAX];
	struct timespec ts;
	double now;
	ds_tid upper, last;
	struct stat sb;
	double t0;
	int rc;

	/* the clock to the nanosecond, as the original's time.time(): whole
	 * seconds would move a pack time taken from a transaction of this
	 * very second back to the start of the second */
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	if (p->opts != NULL && p->opts->now > 0)
		now = p->opts->now;

	p->threshold = before;
	upper = ds_tid_from_time(now - (double)p->min_pack_time);
	if (p->threshold > upper) {
		pack_log(p, DS_LOG_VERBOSE, "pack time moved back to now "
		         "- min_pack_time (%ld s)", p->min_pack_time);
		p->threshold = upper;
	}
	last = ds_storage_last_tid(p->s);
	if (p->threshold > last && p->min_pack_time > 0) {
		pack_log(p, DS_LOG_VERBOSE, "pack time moved back to the last "
		         "transaction");
		p->threshold = last;
	}
	if ((rc = pack_hold_for_slots(p)) != DS_OK)
		return rc;
	p->last_pack = ds_storage_last_pack(p->s);
	if (p->threshold > p->last_pack) {
		p->last_pack = p->threshold;
		if ((rc = pack_write_packed(p)) != DS_OK)
			return rc;
	}
	p->st->threshold = p->threshold;
	p->st->packed = p->last_pack;
	pack_keep_limits(p);

	/* an empty storage (no root object) is not packed */
	if ((rc = pack_path(p, "o0000000000000000.c", path, sizeof(path),
	                    p->err)) != DS_OK)
		return rc;
	if (lstat(path, &sb) != 0) {
		p->st->empty = 1;
		pack_log(p, DS_LOG_VERBOSE, "no root object: nothing to pack");
		return DS_OK;
	}
	if ((rc = pack_obj_init(p)) != DS_OK)
		return rc;
	pack_log(p, DS_LOG_VERBOSE, "reading ahead");
	(void)pack_sweep(p, PASS_READAHEAD);
	pack_log(p, DS_LOG_VERBOSE, "marking objects reachable from the root "
	         "and recent transactions");
	if ((rc = pack_todo_push(p, 0, p->err)) != DS_OK ||
	    (rc = pack_mark_recent(p)) != DS_OK ||
	    (rc = pack_mark_queued(p)) != DS_OK ||
	    (rc = pack_mark(p, "x.serial")) != DS_OK ||
	    (rc = pack_mark(p, "x.oid")) != DS_OK ||
	    (rc = pack_mark(p, "x.packed")) != DS_OK)
		return rc;

	p->now = (long long)time(NULL);
	pack_log(p, DS_LOG_VERBOSE, "removing unreachable objects");
	if ((rc = pack_barrier(p)) != DS_OK ||
	    (rc = pack_sweep(p, PASS_OBJECTS)) != DS_OK ||
	    (rc = pack_barrier(p)) != DS_OK)
		return rc;
	pack_log(p, DS_LOG_VERBOSE, "removing old revisions");
	if ((rc = pack_sweep(p, PASS_REVISIONS)) != DS_OK ||
	    (rc = pack_barrier(p)) != DS_OK)
		return rc;
	pack_log(p, DS_LOG_VERBOSE, "(old revisions: %lu directories listed)",
	         p->st->dirs_revisited);
	pack_log(p, DS_LOG_VERBOSE, "relinking kept transactions");
	t0 = ds_now();
	if ((rc = pack_relink(p)) != DS_OK)
		return rc;
	pack_log(p, DS_LOG_DEBUG, "  relink: %.2f s", ds_now() - t0);
	if ((rc = pack_barrier(p)) != DS_OK)
		return rc;
	pack_log(p, DS_LOG_VERBOSE, "removing old transactions");
	if ((rc = pack_sweep(p, PASS_TRANSACTIONS)) != DS_OK)
		return rc;
	return pack_barrier(p);
}

int
ds_storage_pack(ds_storage *s, ds_tid before, const struct ds_pack_opts *opts,
                struct ds_pack_stats *stats, ds_error *err)
{
	struct ds_pack_stats dummy;
	struct pack p;
	ds_error lerr;
	int rc, rc2;

	if (stats == NULL)
		stats = &dummy;
	memset(stats, 0, sizeof(*stats));
	memset(&p, 0, sizeof(p));
	p.s = s;
	p.opts = opts;
	p.st = stats;
	p.err = err;
	p.layout = s->cfg.layout;
	p.min_pack_time = s->cfg.min_pack_time;
	p.delay_delete = s->cfg.delay_delete;
	p.afd = -1;
	if (s->readonly)
		return ds_error_set(err, DS_ESTATE, "pack %s: storage opened "
		                    "read-only", s->home);
	if (strcmp(s->cfg.classname, "Full") != 0)
		return ds_error_set(err, DS_ECONFIG, "pack %s: not a Full "
		                    "storage", s->home);
	if ((rc = storage_path(s, p.a, sizeof(p.a), "A", err)) != DS_OK)
		return rc;
	if ((rc = pack_keep_policy(&p)) != DS_OK)
		return rc;
	/* A is ours (read and swept) while the engine flushes into B */
	rc = ds_storage_snapshot_enter(s, "packing", err);
	if (rc != DS_OK)
		return rc;
	/* the temporary files a killed pack left */
	if ((rc = pack_stage_clean(s, err)) != DS_OK)
		goto out;
	p.afd = open(p.a, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (p.afd < 0) {
		rc = ds_error_sys(err, errno, "pack: open directory", p.a);
		goto out;
	}
	pthread_mutex_init(&p.mu, NULL);
	pthread_cond_init(&p.cv, NULL);
	rc = pack_run(&p, before);
	pthread_cond_destroy(&p.cv);
	pthread_mutex_destroy(&p.mu);
out:
	if (p.afd >= 0)
		close(p.afd);
	ds_error_clear(&lerr);
	rc2 = ds_storage_snapshot_leave(s, "packing", &lerr);
	if (rc == DS_OK && rc2 != DS_OK) {
		rc = rc2;
		if (err != NULL)
			*err = lerr;
	}
	keyset_map_free(&p.objects);
	free(p.kept_bits);
	free(p.redo_bits);
	free(p.oldest);
	free(p.dirs);
	keyset_ids_free(&p.txns);
	free(p.todo);
	for (size_t i = 0; i < p.nkeep; i++)
		free(p.keep[i].cls);
	free(p.keep);
	return rc;
}
