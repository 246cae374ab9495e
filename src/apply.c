/*
 * apply.c - the replica side's apply: extract a committed increment
 * (journal/replica.tar, already checked by recv.c before it was
 * committed) into the replica's own layout, durably and idempotently,
 * writing x.serial and x.oid last so that even a reader that ignores the
 * journal never sees an x.serial whose files are not all there. The bulk
 * is written by two threads (see "the pool" below) and made durable by
 * one syncfs. apply_committed() is the one recovery of a committed
 * increment, used by ds replica after its commit point and by the
 * engine's journal recovery at open.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "apply.h"
#include "recv.h"

#define APPLY_BUF (64 * 1024)

/* ---- applying ---- */

struct deferred {
	char path[DS_PATH_MAX];
	unsigned char data[8];
	mode_t mode;
	int used;
};

/* Write one member to path with exactly the mode sent, never into an
 * existing file: one that exists (a .c pointer, x.serial, x.oid, or a
 * file a killed apply left) is written under a temporary name and renamed
 * over it (ds_io_replace_open), so that a hard-linked copy of the replica
 * (cp -al, rsnapshot, rsync --link-dest) keeps its content; a new one
 * (revisions, transactions: most of an increment) is created under its
 * name (DS_IO_REPLACE_DIRECT, no rename: nothing reads it before x.serial
 * names its transaction, and a crash re-applies it whole). do_sync: fsync
 * it, always through a temporary name (only the x.* files, written last;
 * the bulk, renames included, is made durable by one syncfs, see
 * apply_extract). */
static int
apply_write(const char *path, const unsigned char *buf, size_t len,
            struct archive *a, int64_t size, mode_t mode, int do_sync,
            ds_error *err)
{
	unsigned char data[APPLY_BUF];
	ds_io_replace r;
	int fd, rc;

	rc = ds_io_replace_open(path, mode, do_sync ? 0 : DS_IO_REPLACE_DIRECT,
	                        &r, &fd, err);
	if (rc != DS_OK)
		return rc;
	if (buf != NULL) {
		rc = ds_io_write_all(fd, buf, len, path, err);
	} else {
		int64_t left = size;
		while (rc == DS_OK && left > 0) {
			size_t want = left > APPLY_BUF ? APPLY_BUF :
			              (size_t)left;
			la_ssize_t n = archive_read_data(a, data, want);
			if (n <= 0) {
				rc = ds_error_set(err, DS_EPROTO,
				                  "apply %s: archive data truncated",
				                  path);
				break;
			}
			rc = ds_io_write_all(fd, data, (size_t)n, path, err);
			left -= n;
		}
	}
	/* the mode sent, exactly (O_CREAT's is cut by the umask) */
	if (rc == DS_OK && fchmod(fd, mode) != 0)
		rc = ds_error_sys(err, errno, "chmod", path);
	if (rc != DS_OK) {
		ds_io_replace_abort(&r, fd);
		return rc;
	}
	return ds_io_replace_commit(&r, fd, do_sync, err);
}

/* syncfs HOME's filesystem, and A/'s when A/ is on another one. */
static int
apply_syncfs(const char *home, ds_error *err)
{
	char a_dir[DS_PATH_MAX];
	struct stat st_home, st_a;
	int fd, rc;

	snprintf(a_dir, sizeof(a_dir), "%s/A", home);
	rc = ds_io_open(home, O_RDONLY | O_DIRECTORY, 0, &fd, err);
	if (rc != DS_OK)
		return rc;
	rc = ds_io_syncfs(fd, home, err);
	if (rc == DS_OK && fstat(fd, &st_home) != 0)
		rc = ds_error_sys(err, errno, "stat", home);
	close(fd);
	if (rc != DS_OK)
		return rc;
	if (stat(a_dir, &st_a) != 0)
		return ds_error_sys(err, errno, "stat", a_dir);
	if (st_a.st_dev == st_home.st_dev)
		return DS_OK;
	rc = ds_io_open(a_dir, O_RDONLY | O_DIRECTORY, 0, &fd, err);
	if (rc != DS_OK)
		return rc;
	rc = ds_io_syncfs(fd, a_dir, err);
	close(fd);
	return rc;
}

/* ---- the pool that writes the bulk of an increment ----
 *
 * apply_extract runs after the commit point (journal/replica.tar is
 * durable; a crash re-applies the whole tar on the next open, and writing
 * a member twice gives the same file), an increment never names the same
 * path twice, and the files are made durable by ONE syncfs at the end,
 * with x.serial and x.oid written and fsynced only after it. So the order
 * in which the bulk is written does not matter, and it can be spread over
 * threads: creating a file (open O_CREAT, write, fchmod, close, rename
 * over the old one) is kernel CPU work on ext4's metadata (directory
 * entry search, inode allocation) plus synchronous reads of the metadata
 * blocks it needs; with two writers one's CPU work overlaps the other's
 * waits, and the replica has the machine to itself by then (the master
 * is done; bench/README.md, "parallel apply", has the measurements). The
 * main thread keeps reading the tar with libarchive (sequential by
 * nature) and checking every header; it hands each member of at most APPLY_MEMBER_MAX
 * bytes, read into a buffer, to APPLY_THREADS workers through a queue
 * bounded by APPLY_QUEUE_BYTES and APPLY_QUEUE_JOBS (memory stays
 * bounded); a larger member it streams itself. Two threads:
 * the machines we measure have two cores, and the reader is light next
 * to the writers (~15% of the CPU time). The reader makes the
 * directories (ds_io_mkdirs, before queuing a file): had two workers
 * raced for a new directory, both could call mkdir, and the number of
 * durable I/O calls, which the crash tests count to choose their kill
 * points, would vary from run to run; this way it is the same in every
 * run, only their order varies. The first error wins: it
 * is kept, the reader stops, the workers drop what is queued, and all are
 * joined before the syncfs (never reached then) or the return. */

#define APPLY_THREADS 2
#define APPLY_QUEUE_BYTES (4u * 1024 * 1024)
#define APPLY_QUEUE_JOBS 1024u
#define APPLY_MEMBER_MAX (1024u * 1024)

struct apply_job {
	struct apply_job *next;
	size_t len;
	mode_t mode;
	unsigned char *data;     /* len bytes, after the path */
	char path[];
};

struct apply_pool {
	pthread_mutex_t mu;
	pthread_cond_t more;     /* a job queued, or closed / failed */
	pthread_cond_t room;     /* the queue is down to half its bounds
	                          * (the reader waits from full to half: one
	                          * wake-up per file cost more than the
	                          * file), or failed */
	struct apply_job *head, *tail;
	size_t bytes, jobs;      /* queued */
	int full;                /* the reader waits for the low mark */
	int closed;              /* no more jobs will come */
	int rc;                  /* the first error (DS_OK: none) */
	ds_error err;
	pthread_t tid[APPLY_THREADS];
	int nthreads;
};

/* Record an error unless one is already there: the first wins. */
static void
apply_fail(struct apply_pool *p, int rc, const ds_error *err)
{
	pthread_mutex_lock(&p->mu);
	if (p->rc == DS_OK) {
		p->rc = rc;
		if (err != NULL)
			p->err = *err;
		else
			p->err.status = rc;
	}
	pthread_cond_broadcast(&p->more);
	pthread_cond_broadcast(&p->room);
	pthread_mutex_unlock(&p->mu);
}

static int
apply_job_run(const struct apply_job *j, ds_error *err)
{
	return apply_write(j->path, j->data, j->len, NULL, (int64_t)j->len,
	                   j->mode, 0, err);
}

static void *
apply_worker(void *arg)
{
	struct apply_pool *p = arg;
	struct apply_job *j;
	ds_error err;
	int rc;

	for (;;) {
		pthread_mutex_lock(&p->mu);
		while (p->head == NULL && !p->closed)
			pthread_cond_wait(&p->more, &p->mu);
		j = p->head;
		if (j == NULL) {
			pthread_mutex_unlock(&p->mu);
			return NULL;
		}
		p->head = j->next;
		if (p->head == NULL)
			p->tail = NULL;
		p->bytes -= j->len;
		p->jobs--;
		rc = p->rc;
		/* wake the reader at half the bounds, not for every job: a
		 * wake-up per file costs more than the file */
		if (p->full && p->jobs <= APPLY_QUEUE_JOBS / 2 &&
		    p->bytes <= APPLY_QUEUE_BYTES / 2) {
			p->full = 0;
			pthread_cond_signal(&p->room);
		}
		pthread_mutex_unlock(&p->mu);
		if (rc == DS_OK) {      /* after an error: dropped */
			ds_error_clear(&err);
			rc = apply_job_run(j, &err);
			if (rc != DS_OK)
				apply_fail(p, rc, &err);
		}
		free(j);
	}
}

/* Start the workers. With none started (pthread_create failed), the
 * caller writes every member itself. */
static void
apply_pool_start(struct apply_pool *p)
{
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->more, NULL);
	pthread_cond_init(&p->room, NULL);
	p->rc = DS_OK;
	for (int i = 0; i < APPLY_THREADS; i++) {
		if (pthread_create(&p->tid[p->nthreads], NULL, apply_worker,
		                   p) == 0)
			p->nthreads++;
	}
}

/* Queue j (ownership passes), waiting for room; run it here when there is
 * no worker. Returns the first error so far (j is freed then). */
static int
apply_pool_put(struct apply_pool *p, struct apply_job *j, ds_error *err)
{
	int rc;

	if (p->nthreads == 0) {
		rc = apply_job_run(j, err);
		free(j);
		return rc;
	}
	pthread_mutex_lock(&p->mu);
	if (p->jobs > 0 && (p->jobs >= APPLY_QUEUE_JOBS ||
	                    p->bytes + j->len > APPLY_QUEUE_BYTES)) {
		p->full = 1;
		while (p->rc == DS_OK && p->full)
			pthread_cond_wait(&p->room, &p->mu);
	}
	rc = p->rc;
	if (rc == DS_OK) {
		j->next = NULL;
		if (p->tail != NULL)
			p->tail->next = j;
		else
			p->head = j;
		p->tail = j;
		p->bytes += j->len;
		p->jobs++;
		pthread_cond_signal(&p->more);
		j = NULL;
	}
	pthread_mutex_unlock(&p->mu);
	free(j);
	return rc;
}

/* No more jobs: let the workers finish the queue (or drop it after an
 * error) and join them. Returns the first error, copied to err. */
static int
apply_pool_finish(struct apply_pool *p, ds_error *err)
{
	pthread_mutex_lock(&p->mu);
	p->closed = 1;
	pthread_cond_broadcast(&p->more);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->nthreads; i++)
		pthread_join(p->tid[i], NULL);
	pthread_cond_destroy(&p->more);
	pthread_cond_destroy(&p->room);
	pthread_mutex_destroy(&p->mu);
	if (p->rc != DS_OK && err != NULL)
		*err = p->err;
	return p->rc;
}

/* The directories the reader made or checked last (a ring; lookups are
 * linear, it is small). */
#define APPLY_DIRS 16
struct apply_dirs {
	char *d[APPLY_DIRS];
	unsigned next;
};

static int
apply_dirs_seen(const struct apply_dirs *s, const char *d)
{
	for (unsigned i = 0; i < APPLY_DIRS; i++)
		if (s->d[i] != NULL && strcmp(s->d[i], d) == 0)
			return 1;
	return 0;
}

/* Remember d (when out of memory, it is simply checked again). */
static void
apply_dirs_add(struct apply_dirs *s, const char *d)
{
	char *c = strdup(d);

	if (c == NULL)
		return;
	free(s->d[s->next]);
	s->d[s->next] = c;
	s->next = (s->next + 1) % APPLY_DIRS;
}

static void
apply_dirs_free(struct apply_dirs *s)
{
	for (unsigned i = 0; i < APPLY_DIRS; i++)
		free(s->d[i]);
}

/* One extraction: the archive being read, where its members go, and the
 * pool writing them. */
struct apply_run {
	const char *home;
	const char *tar_path;
	int init;                  /* an init archive: config/ members too */
	ds_layout layout;          /* home's layout */
	unsigned cand;             /* layouts the sender's names may be in */
	struct archive *a;
	struct apply_pool pool;
	int pooled;                /* the pool is started, not joined */
	int guarded;               /* home is registered with ds_io_guard */
	struct deferred def[2];    /* x.serial, x.oid: written last */
	struct apply_dirs dirs;
	unsigned long n;           /* members read */
	/* the member being read */
	const char *path;
	mode_t mode;
	int64_t size;
	char what[DS_PATH_MAX + 64];
	char target[DS_PATH_MAX];
	char name[DS_NAME_MAX];    /* its database name (under A/) */
};

/* Guard home against symlinks, open the archive, start the pool. */
static int
apply_open(struct apply_run *r, ds_error *err)
{
	int rc;

	/* no write beneath home follows a symlink (io.c): a directory of A/
	 * that is a symlink is refused, never written through */
	rc = ds_io_guard(r->home, err);
	if (rc != DS_OK)
		return rc;
	r->guarded = 1;
	r->a = archive_read_new();
	if (r->a == NULL)
		return ds_error_set(err, DS_ENOMEM, "apply %s: out of memory",
		                    r->tar_path);
	archive_read_support_format_tar(r->a);
	if (archive_read_open_filename(r->a, r->tar_path, APPLY_BUF) !=
	    ARCHIVE_OK)
		return ds_error_set(err, DS_EPROTO, "apply %s: %s", r->tar_path,
		                    archive_error_string(r->a));
	apply_pool_start(&r->pool);
	r->pooled = 1;
	return DS_OK;
}

/* The member's path in home (r->target): config/ of an init archive as
 * sent, a database file under A/ in home's layout. */
static int
apply_target(struct apply_run *r, ds_error *err)
{
	char rel[DS_RELPATH_MAX];
	int rc;

	r->name[0] = '\0';
	if (r->init && (strcmp(r->path, "config/settings") == 0 ||
	                strcmp(r->path, "config/identity") == 0)) {
		snprintf(r->target, sizeof(r->target), "%s/%s", r->home,
		         r->path);
		return DS_OK;
	}
	if (strncmp(r->path, "A/", 2) != 0)
		return ds_error_set(err, DS_EPROTO, "%s: not under A/",
		                    r->what);
	rc = recv_map_name(&r->cand, r->path + 2, r->name, r->what, err);
	if (rc == DS_OK)
		rc = ds_layout_name_to_path(r->layout, r->name, rel,
		                            sizeof(rel), err);
	if (rc != DS_OK)
		return rc;
	if ((size_t)snprintf(r->target, sizeof(r->target), "%s/A/%s",
	                     r->home, rel) >= sizeof(r->target))
		return ds_error_set(err, DS_EINVAL, "%s: path too long",
		                    r->what);
	return DS_OK;
}

/* Make the target's directory. The increment's members come per
 * transaction, its objects' files in the objects' few directories: the
 * directories made or checked last are not checked again (nothing
 * removes one during an apply). */
static int
apply_target_dir(struct apply_run *r, ds_error *err)
{
	char d[DS_PATH_MAX];
	int rc;

	if (strchr(r->target + strlen(r->home) + 1, '/') == NULL)
		return DS_OK;
	snprintf(d, sizeof(d), "%s", r->target);
	*strrchr(d, '/') = '\0';
	if (apply_dirs_seen(&r->dirs, d))
		return DS_OK;
	rc = ds_io_mkdirs(d, 0755, err);
	if (rc == DS_OK)
		apply_dirs_add(&r->dirs, d);
	return rc;
}

/* x.serial or x.oid: kept for apply_last. */
static int
apply_is_last(const struct apply_run *r)
{
	return strcmp(r->name, "x.serial") == 0 ||
	       strcmp(r->name, "x.oid") == 0;
}

/* The bulk: read the member here, hand it to the pool. */
static int
apply_queue(struct apply_run *r, ds_error *err)
{
	size_t plen = strlen(r->target) + 1, got = 0;
	struct apply_job *job;

	job = malloc(sizeof(*job) + plen + (size_t)r->size);
	if (job == NULL)
		return ds_error_set(err, DS_ENOMEM, "%s: out of memory",
		                    r->what);
	memcpy(job->path, r->target, plen);
	job->data = (unsigned char *)job->path + plen;
	job->len = (size_t)r->size;
	job->mode = r->mode;
	while (got < job->len) {
		la_ssize_t n = archive_read_data(r->a, job->data + got,
		                                 job->len - got);
		if (n <= 0) {
			free(job);
			return ds_error_set(err, DS_EPROTO, "apply %s: archive "
			                    "data truncated", r->target);
		}
		got += (size_t)n;
	}
	return apply_pool_put(&r->pool, job, err);
}

/* x.serial or x.oid: read now, written by apply_last. */
static int
apply_defer(struct apply_run *r, ds_error *err)
{
	struct deferred *d = &r->def[r->name[2] == 's' ? 0 : 1];

	if (r->size != 8 || archive_read_data(r->a, d->data, 8) != 8)
		return ds_error_set(err, DS_EPROTO, "%s: not 8 bytes", r->what);
	snprintf(d->path, sizeof(d->path), "%s", r->target);
	d->mode = r->mode;
	d->used = 1;
	return DS_OK;
}

/* Read the next member's header (*eof at the end), check it, and write
 * it or hand it on: to the pool (the bulk), to apply_last (x.serial,
 * x.oid), or streamed here (larger than APPLY_MEMBER_MAX, while the pool
 * works on what is queued). */
static int
apply_member(struct apply_run *r, int *eof, ds_error *err)
{
	struct archive_entry *e;
	int rc, ar;

	ar = archive_read_next_header(r->a, &e);
	if (ar == ARCHIVE_EOF) {
		*eof = 1;
		return DS_OK;
	}
	if (ar != ARCHIVE_OK)
		return ds_error_set(err, DS_EPROTO, "apply %s: %s", r->tar_path,
		                    archive_error_string(r->a));
	r->n++;
	r->path = archive_entry_pathname(e);
	snprintf(r->what, sizeof(r->what), "apply %s: member %lu (%s)",
	         r->tar_path, r->n, r->path ? r->path : "?");
	rc = recv_check_header(r->a, e, r->what, err);
	if (rc != DS_OK)
		return rc;
	r->mode = archive_entry_perm(e) & 0777;
	r->size = archive_entry_size(e);
	rc = apply_target(r, err);
	if (rc == DS_OK)
		rc = apply_target_dir(r, err);
	if (rc != DS_OK)
		return rc;
	if (apply_is_last(r))
		return apply_defer(r, err);
	if (r->size >= 0 && r->size <= (int64_t)APPLY_MEMBER_MAX)
		return apply_queue(r, err);
	return apply_write(r->target, NULL, 0, r->a, r->size, r->mode, 0,
	                   err);
}

/* Once the bulk is written: make it durable, then write x.oid and
 * x.serial. */
static int
apply_last(struct apply_run *r, ds_error *err)
{
	int rc;

	/* every worker joined before the syncfs and the x.* files */
	r->pooled = 0;
	rc = apply_pool_finish(&r->pool, err);
	if (rc != DS_OK)
		return rc;
	/* Every file's data and directory entry durable before x.serial
	 * says the transactions are there: one syncfs of the replica's
	 * filesystem instead of an fsync per file and per directory
	 * (bench/README.md: those were 59% of a 1000-transaction
	 * increment). Equally safe: syncfs writes back every dirty inode of
	 * the filesystem and commits its journal, which is what the
	 * per-file and per-directory fsyncs did one by one; and until
	 * misc/replica.previous replaces journal/replica.tar (after this
	 * returns), a crash re-applies the whole increment anyway. A/ is
	 * synced too when it is a mount of its own. */
	rc = apply_syncfs(r->home, err);
	if (rc != DS_OK)
		return rc;
	for (int i = 1; i >= 0; i--) {
		char d[DS_PATH_MAX];

		if (!r->def[i].used)
			continue;
		rc = apply_write(r->def[i].path, r->def[i].data, 8, NULL, 8,
		                 r->def[i].mode, 1, err);
		if (rc != DS_OK)
			return rc;
		snprintf(d, sizeof(d), "%s", r->def[i].path);
		*strrchr(d, '/') = '\0';
		rc = ds_io_fsync_dir(d, err);
		if (rc != DS_OK)
			return rc;
	}
	return DS_OK;
}

static int
apply_extract(const char *home, const char *tar_path, int init,
              ds_layout layout, ds_error *errp)
{
	struct apply_run *r;
	ds_error err_, *err = &err_;   /* kept even when errp is NULL: the
	                                * pool's first error is a copy */
	int rc, eof = 0;

	ds_error_clear(err);
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return ds_error_set(errp, DS_ENOMEM, "apply %s: out of memory",
		                    tar_path);
	r->home = home;
	r->tar_path = tar_path;
	r->init = init;
	r->layout = layout;
	r->cand = init ? 1u << layout : RECV_ALL_LAYOUTS;
	rc = apply_open(r, err);
	while (rc == DS_OK && !eof)
		rc = apply_member(r, &eof, err);
	if (rc == DS_OK)
		rc = apply_last(r, err);
	apply_dirs_free(&r->dirs);
	if (r->pooled) {
		/* the reader's own error, unless a worker's came first */
		if (rc != DS_OK)
			apply_fail(&r->pool, rc, err);
		rc = apply_pool_finish(&r->pool, err);
	}
	if (r->a)
		archive_read_free(r->a);
	if (r->guarded)
		ds_io_unguard(home);
	free(r);
	if (rc != DS_OK && errp != NULL)
		*errp = *err;
	return rc;
}

int
apply_increment_layout(const char *home, const char *tar_path,
                       ds_layout layout, ds_error *err)
{
	return apply_extract(home, tar_path, 0, layout, err);
}

int
apply_increment(const char *home, const char *tar_path, ds_error *err)
{
	ds_config cfg;
	int rc;

	rc = ds_config_load(home, &cfg, err);
	if (rc != DS_OK)
		return rc;
	return apply_increment_layout(home, tar_path, cfg.layout, err);
}

int
apply_init(const char *home, const char *tar_path, ds_layout layout,
           ds_error *err)
{
	return apply_extract(home, tar_path, 1, layout, err);
}

int
apply_committed(const char *home, ds_error *err)
{
	ds_config cfg;
	int rc;

	rc = ds_config_load(home, &cfg, err);
	if (rc != DS_OK)
		return rc;
	return apply_committed_layout(home, cfg.layout, 1, err);
}

int
apply_committed_layout(const char *home, ds_layout layout, int keep_previous,
                       ds_error *err)
{
	char tar[DS_PATH_MAX], prev[DS_PATH_MAX], misc[DS_PATH_MAX];
	char journal[DS_PATH_MAX];
	int rc;

	if ((size_t)snprintf(tar, sizeof(tar), "%s/journal/replica.tar",
	                     home) >= sizeof(tar) ||
	    (size_t)snprintf(prev, sizeof(prev), "%s/misc/replica.previous",
	                     home) >= sizeof(prev))
		return ds_error_set(err, DS_EINVAL, "apply %s: path too long",
		                    home);
	snprintf(misc, sizeof(misc), "%s/misc", home);
	snprintf(journal, sizeof(journal), "%s/journal", home);
	rc = apply_increment_layout(home, tar, layout, err);
	if (rc != DS_OK)
		return rc;
	/* Applied and durable: keep it as misc/replica.previous, as the
	 * original does (its mtime is the last replication time). The
	 * rename is made durable at once, whatever the storage's [posix]
	 * dirsync says (the apply above has synced unconditionally too): a
	 * replica.tar that came back after a crash once A has changed again
	 * (a later increment, or the replica opened as a storage and
	 * written) would be applied over the newer files and set x.serial
	 * back. misc/ first, then journal/: a crash between leaves both
	 * names, and the increment is applied again (idempotent), never
	 * neither. */
	if (!keep_previous) {
		struct stat st;

		/* Not kept: the increment goes, made durable at once for the
		 * same reason as the rename below; an older
		 * misc/replica.previous would say a wrong last increment
		 * (and time), so it goes too. */
		if (lstat(prev, &st) == 0) {
			rc = ds_io_unlink(prev, err);
			if (rc == DS_OK)
				rc = ds_io_fsync_dir(misc, err);
			if (rc != DS_OK)
				return rc;
		}
		rc = ds_io_unlink(tar, err);
		if (rc == DS_OK)
			rc = ds_io_fsync_dir(journal, err);
		return rc;
	}
	rc = ds_io_rename(tar, prev, err);
	if (rc == DS_OK)
		rc = ds_io_fsync_dir(misc, err);
	if (rc == DS_OK)
		rc = ds_io_fsync_dir(journal, err);
	return rc;
}
