/*
 * journal.c - the commit protocol, flush batches, recombination of B into
 * A, and journal recovery.
 *
 * Why each fsync and rename is where it is (with [filesystem] sync 0 none
 * of the fsyncs is made; with [posix] dirsync 0 only the directory ones are
 * skipped; the renames are always made):
 *
 * Commit (journal_begin .. journal_commit):
 *  1. every file of the transaction (revisions, .c pointers, the t file,
 *     x.oid, x.serial) is written into journal/working_<TID>_temp/ under
 *     its flat database name. A crash now leaves a _temp directory, which
 *     recovery deletes: the transaction never happened.
 *  2. fsync of each file (journal_sync): the bytes must be on disk before
 *     any name can point at them as committed.
 *  3. fsync of the _temp directory: its entries (the file names) must be
 *     durable before the directory is renamed, or a crash after the
 *     rename could leave a _done directory missing some of its files.
 *  4. rename _temp -> _done (journal_commit): the commit point. rename is
 *     atomic, so recovery sees either a _temp (discarded) or a _done
 *     (rolled forward), never half of each.
 *  5. fsync of journal/: makes the rename durable. Only after it may the
 *     caller be told the transaction committed.
 *
 * Flush (journal_flush_batch), oldest transaction first:
 *  6. each file is renamed from its _done directory to its path in A (B in
 *     snapshot mode), creating directories as needed. A file overwritten
 *     by a later transaction still in the journal is unlinked instead: the
 *     later copy will be moved. Recovery may redo any of this, since the
 *     _done directory still exists and a rename of what is left is
 *     idempotent with respect to the result.
 *  7. fsync of every destination directory touched (and of the parent of
 *     every directory created, ancestors first): the renames into A/B must
 *     be durable BEFORE the _done directories disappear, otherwise a crash
 *     could lose both the journal copy and the database copy of a file.
 *     Steps 6 and 7 run twice: everything but x.oid and x.serial, then
 *     those two, so that x.serial never names a transaction whose t file
 *     is not durably in A/B yet.
 *  8. rmdir of the now empty _done directories, then fsync of journal/, so
 *     that a removed transaction directory cannot reappear after a crash
 *     and replay older files over newer ones flushed later.
 *
 * Recombination (journal_recombine), leaving snapshot mode:
 *  9. misc/snapshot is removed (and misc/ fsynced) by the caller before
 *     anything in A changes, so nobody trusts A as a snapshot meanwhile.
 * 10. every file of B is renamed over A's; then every A directory touched
 *     is fsynced before snapshot mode ends: later flushes write to A, and
 *     if an older B file's rename were lost in a crash but survived in B,
 *     the next open's recombination would put it over a newer A file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apply.h"
#include "journal.h"
#include "storage_internal.h"

void
journal_jdir_free(struct jdir *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->nnames; i++)
		free(d->names[i]);
	free(d->names);
	free(d);
}

void
journal_jdir_free_list(struct jdir *d)
{
	while (d != NULL) {
		struct jdir *next = d->next;
		journal_jdir_free(d);
		d = next;
	}
}

int
journal_jdir_new(ds_tid tid, char *const *names, size_t n, struct jdir **out,
                 ds_error *err)
{
	struct jdir *d;
	char hex[17];

	*out = NULL;
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return ds_error_set(err, DS_ENOMEM, "journal: out of memory");
	d->tid = tid;
	ds_id_format(tid, hex);
	snprintf(d->name, sizeof(d->name), "working_%s_done", hex);
	if (n > 0) {
		d->names = calloc(n, sizeof(char *));
		if (d->names == NULL)
			goto nomem;
	}
	for (size_t i = 0; i < n; i++) {
		d->names[i] = strdup(names[i]);
		if (d->names[i] == NULL)
			goto nomem;
		d->nnames++;
	}
	*out = d;
	return DS_OK;
nomem:
	journal_jdir_free(d);
	return ds_error_set(err, DS_ENOMEM, "journal: out of memory");
}

int
journal_dirpath(const ds_storage *s, ds_tid tid, const char *kind, char *out,
                size_t outsz, ds_error *err)
{
	char hex[17];
	int n;

	ds_id_format(tid, hex);
	n = snprintf(out, outsz, "%s/journal/working_%s_%s", s->home, hex, kind);
	if (n < 0 || (size_t)n >= outsz)
		return ds_error_set(err, DS_EINVAL, "journal %s: path too long",
		                    s->home);
	return DS_OK;
}

int
journal_begin(ds_storage *s, ds_tid tid, ds_error *err)
{
	char dir[DS_PATH_MAX];
	int rc;

	rc = journal_dirpath(s, tid, "temp", dir, sizeof(dir), err);
	if (rc != DS_OK)
		return rc;
	return ds_io_mkdir(dir, 0755, 0, err);
}

int
journal_write(ds_storage *s, ds_tid tid, const char *name, const void *buf,
              size_t len, ds_error *err)
{
	char dir[DS_PATH_MAX], path[DS_PATH_MAX];
	int rc;

	rc = journal_dirpath(s, tid, "temp", dir, sizeof(dir), err);
	if (rc == DS_OK)
		rc = ds_path_join(path, sizeof(path), dir, name, err);
	if (rc != DS_OK)
		return rc;
	/* 0640 as the original's first_half_write_file; fsync comes later,
	 * all files together (journal_sync), as the original does. */
	return ds_io_write_file(path, buf, len, 0640, 0, 0, err);
}

int
journal_sync(ds_storage *s, ds_tid tid, char *const *names, size_t n,
             ds_error *err)
{
	char dir[DS_PATH_MAX];
	char **paths = NULL;
	int *fds = NULL;
	unsigned char *isdir = NULL;
	size_t m = 0, len;
	int rc;

	if (!s->use_sync)
		return DS_OK;
	rc = journal_dirpath(s, tid, "temp", dir, sizeof(dir), err);
	if (rc != DS_OK)
		return rc;
	len = strlen(dir);
	/* steps 2 and 3 as one group (ds_io_fsync_many): the files'
	 * contents and the directory's entries need no order among
	 * themselves, only all before the rename of journal_commit, and
	 * issued together they cost the filesystem about one journal commit
	 * instead of one per file */
	fds = calloc(n + 1, sizeof(*fds));
	paths = calloc(n + 1, sizeof(*paths));
	isdir = calloc(n + 1, 1);
	if (fds == NULL || paths == NULL || isdir == NULL) {
		rc = ds_error_set(err, DS_ENOMEM, "commit: out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		size_t nl = strlen(names[i]);
		paths[m] = malloc(len + 1 + nl + 1);
		if (paths[m] == NULL) {
			rc = ds_error_set(err, DS_ENOMEM, "commit: out of memory");
			goto out;
		}
		memcpy(paths[m], dir, len);
		paths[m][len] = '/';
		memcpy(paths[m] + len + 1, names[i], nl + 1);
		rc = ds_io_open(paths[m], O_RDONLY, 0, &fds[m], err);
		if (rc != DS_OK) {
			free(paths[m]);
			goto out;
		}
		m++;
	}
	if (s->use_dirsync) {
		paths[m] = strdup(dir);
		if (paths[m] == NULL) {
			rc = ds_error_set(err, DS_ENOMEM, "commit: out of memory");
			goto out;
		}
		fds[m] = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fds[m] < 0) {
			rc = ds_error_sys(err, errno, "open directory", dir);
			free(paths[m]);
			goto out;
		}
		isdir[m] = 1;
		m++;
	}
	rc = ds_io_fsync_many(fds, (const char *const *)paths, isdir, m, err);
out:
	for (size_t i = 0; i < m; i++) {
		close(fds[i]);
		free(paths[i]);
	}
	free(fds);
	free(paths);
	free(isdir);
	return rc;
}

int
journal_commit(ds_storage *s, ds_tid tid, ds_error *err)
{
	char temp[DS_PATH_MAX], done[DS_PATH_MAX];
	char jdir[DS_PATH_MAX];
	int rc;

	rc = journal_dirpath(s, tid, "temp", temp, sizeof(temp), err);
	if (rc == DS_OK)
		rc = journal_dirpath(s, tid, "done", done, sizeof(done), err);
	if (rc == DS_OK)
		rc = storage_path(s, jdir, sizeof(jdir), "journal", err);
	if (rc != DS_OK)
		return rc;
	/* step 4: the commit point */
	rc = ds_io_rename(temp, done, err);
	if (rc != DS_OK)
		return rc;
	/* step 5: make it durable */
	if (s->use_dirsync)
		return ds_io_fsync_dir(jdir, err);
	return DS_OK;
}

void
journal_discard(ds_storage *s, ds_tid tid, char *const *names, size_t n)
{
	char dir[DS_PATH_MAX], path[DS_PATH_MAX];

	if (journal_dirpath(s, tid, "temp", dir, sizeof(dir), NULL) != DS_OK)
		return;
	for (size_t i = 0; i < n; i++)
		if (ds_path_join(path, sizeof(path), dir, names[i], NULL) ==
		    DS_OK)
			(void)ds_io_unlink(path, NULL);
	(void)ds_io_rmdir(dir, NULL);
}

/* ---- directories touched by a flush or a recombination ---- */

static void
journal_parent(const char *path, char *out, size_t outsz)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;

	if (n >= outsz)
		n = outsz - 1;
	memcpy(out, path, n);
	out[n] = '\0';
}

/* Make sure directory `dir` (absolute, under root) exists, creating it and
 * its missing parents; every directory that gained an entry is recorded in
 * dirset so that it can be fsynced (step 7). */
static int
journal_ensure_dir(const char *root, const char *dir,
                   struct hashmap *dirset, ds_error *err)
{
	struct stat st;
	char parent[DS_PATH_MAX];
	int rc;

	if (hashmap_get(dirset, dir) != NULL)
		return DS_OK;
	if (strcmp(dir, root) == 0 || (stat(dir, &st) == 0 && S_ISDIR(st.st_mode)))
		return hashmap_put(dirset, dir, (void *)1, err);
	journal_parent(dir, parent, sizeof(parent));
	if (strlen(parent) < strlen(root))
		return ds_error_set(err, DS_EINVAL, "mkdir %s: outside %s", dir,
		                    root);
	rc = journal_ensure_dir(root, parent, dirset, err);
	if (rc != DS_OK)
		return rc;
	rc = ds_io_mkdir(dir, 0755, 1, err);
	if (rc != DS_OK)
		return rc;
	return hashmap_put(dirset, dir, (void *)1, err);
}

struct journal_sync_ctx {
	const char **keys;
	size_t n;
};

static void
journal_sync_one(const char *key, void *val, void *arg)
{
	struct journal_sync_ctx *c = arg;

	(void)val;
	c->keys[c->n++] = key;
}

/* Depth (number of slashes), then name: a directory's ancestors come
 * before it, and the directories of one depth form one run. */
static size_t
journal_depth(const char *p)
{
	size_t n = 0;

	for (; *p != '\0'; p++)
		n += *p == '/';
	return n;
}

static int
journal_sync_cmp(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	size_t dx = journal_depth(x), dy = journal_depth(y);

	if (dx != dy)
		return dx < dy ? -1 : 1;
	return strcmp(x, y);
}

/* at most this many directories of one depth fsynced as one group */
#define JOURNAL_SYNC_GROUP 64

static int
journal_sync_group(const char **keys, size_t n, ds_error *err)
{
	int fds[JOURNAL_SYNC_GROUP];
	unsigned char isdir[JOURNAL_SYNC_GROUP];
	size_t m = 0;
	int rc = DS_OK;

	for (; m < n; m++) {
		fds[m] = open(keys[m], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fds[m] < 0) {
			rc = ds_error_sys(err, errno, "open directory", keys[m]);
			break;
		}
		isdir[m] = 1;
	}
	if (rc == DS_OK)
		rc = ds_io_fsync_many(fds, keys, isdir, m, err);
	while (m > 0)
		close(fds[--m]);
	return rc;
}

/* fsync every directory of dirset, each one's ancestors first. The order
 * matters for a directory this flush created: once its own entries are
 * durable (they are renames out of the journal, so the journal loses
 * them), it must already be durably linked into its parent, or a power
 * cut in between loses the files (finding F5 of the simulated power loss,
 * tests/README.md). So they go depth by depth (every ancestor of a
 * directory is shallower), each depth's directories as one group
 * (ds_io_fsync_many): within a depth nothing depends on anything else,
 * and fsyncs issued together cost the disk far fewer cache flushes than
 * one after the other. */
static int
journal_sync_dirset(ds_storage *s, struct hashmap *dirset, ds_error *err)
{
	struct journal_sync_ctx c = {NULL, 0};
	int rc = DS_OK;

	if (!s->use_dirsync || dirset->live == 0)
		return DS_OK;
	c.keys = calloc(dirset->live, sizeof(*c.keys));
	if (c.keys == NULL)
		return ds_error_set(err, DS_ENOMEM, "flush: out of memory");
	hashmap_each(dirset, journal_sync_one, &c);
	qsort(c.keys, c.n, sizeof(*c.keys), journal_sync_cmp);
	for (size_t i = 0; i < c.n && rc == DS_OK;) {
		size_t d = journal_depth(c.keys[i]), j = i;
		while (j < c.n && j - i < JOURNAL_SYNC_GROUP &&
		       journal_depth(c.keys[j]) == d)
			j++;
		rc = journal_sync_group(c.keys + i, j - i, err);
		i = j;
	}
	free(c.keys);
	return rc;
}

/* ---- flushing ---- */

int
journal_flush_batch(ds_storage *s, struct jdir *dirs, ds_error *err)
{
	struct hashmap dirset;
	char root[DS_PATH_MAX], src[DS_PATH_MAX];
	char dst[DS_PATH_MAX], rel[DS_RELPATH_MAX];
	char parent[DS_PATH_MAX], jroot[DS_PATH_MAX];
	int rc = DS_OK, to_b;

	hashmap_init(&dirset);
	/* The destination cannot change during a batch: only the flusher
	 * (which runs this) enters snapshot mode or ends a recombination. */
	pthread_mutex_lock(&s->mu);
	to_b = s->snapcode[0] != '\0';
	if (to_b)
		s->have_flushed = 1;
	pthread_mutex_unlock(&s->mu);
	rc = storage_path(s, root, sizeof(root), to_b ? "B" : "A", err);
	if (rc == DS_OK)
		rc = storage_path(s, jroot, sizeof(jroot), "journal", err);
	if (rc != DS_OK)
		goto out;

	/* Two passes: x.oid and x.serial last, after everything else is
	 * durable in A/B (the step 7 fsyncs in between). x.serial names the
	 * newest transaction; a reader (ds log before recovery) follows it
	 * to the t file, which must already be there even if the disk wrote
	 * the directories in another order than the renames (finding F6 of
	 * the simulated power loss, tests/README.md). No extra fsync: A/x's
	 * moves to the second pass. */
	for (int pass = 0; pass < 2; pass++) {
		for (struct jdir *d = dirs; d != NULL; d = d->next) {
			for (size_t i = 0; i < d->nnames; i++) {
				const char *name = d->names[i];
				struct jdir *holder;
				int n;

				if ((strncmp(name, "x.", 2) == 0) != pass)
					continue;

				rc = ds_layout_name_to_path(s->cfg.layout,
				                            name, rel, sizeof(rel),
				                            err);
				if (rc != DS_OK)
					goto out;
				n = snprintf(src, sizeof(src), "%s/%s/%s", jroot,
				             d->name, name);
				if (n < 0 || (size_t)n >= sizeof(src)) {
					rc = ds_error_set(err, DS_EINVAL,
					                  "flush %s: path too long",
					                  name);
					goto out;
				}
				rc = ds_path_join(dst, sizeof(dst), root, rel,
				                  err);
				if (rc != DS_OK)
					goto out;
				journal_parent(dst, parent, sizeof(parent));
				rc = journal_ensure_dir(root, parent, &dirset,
				                        err);
				if (rc != DS_OK)
					goto out;
				/* step 6, under mu so that a reader finds the
				 * file either in the journal or at its new
				 * place */
				pthread_mutex_lock(&s->mu);
				holder = hashmap_get(&s->reloc, name);
				if (holder == NULL || holder == d) {
					rc = ds_io_rename(src, dst, err);
					if (rc == DS_OK && holder != NULL)
						hashmap_del(&s->reloc,
						                name);
				} else {
					/* overwritten by a later transaction
					 * that is still in the journal: drop
					 * this copy */
					rc = ds_io_unlink(src, err);
				}
				pthread_mutex_unlock(&s->mu);
				if (rc != DS_OK)
					goto out;
			}
		}
		/* step 7 */
		rc = journal_sync_dirset(s, &dirset, err);
		if (rc != DS_OK)
			goto out;
		hashmap_free(&dirset);
		hashmap_init(&dirset);
	}
	/* step 8 */
	for (struct jdir *d = dirs; d != NULL; d = d->next) {
		rc = ds_path_join(src, sizeof(src), jroot, d->name, err);
		if (rc == DS_OK)
			rc = ds_io_rmdir(src, err);
		if (rc != DS_OK)
			goto out;
	}
	if (s->use_dirsync)
		rc = ds_io_fsync_dir(jroot, err);
out:
	hashmap_free(&dirset);
	return rc;
}

/* ---- listing directories ---- */

struct journal_list {
	char **v;
	size_t n, cap;
};

static void
journal_list_free(struct journal_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

static int
journal_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every entry of dir but . and .., sorted. */
static int
journal_listdir(const char *dir, struct journal_list *l, ds_error *err)
{
	DIR *dp;
	struct dirent *de;

	l->v = NULL;
	l->n = l->cap = 0;
	dp = opendir(dir);
	if (dp == NULL)
		return ds_error_sys(err, errno, "opendir", dir);
	while ((errno = 0, de = readdir(dp)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (l->n == l->cap) {
			size_t cap = l->cap ? 2 * l->cap : 16;
			char **v = realloc(l->v, cap * sizeof(char *));
			if (v == NULL)
				goto nomem;
			l->v = v;
			l->cap = cap;
		}
		l->v[l->n] = strdup(de->d_name);
		if (l->v[l->n] == NULL)
			goto nomem;
		l->n++;
	}
	if (errno != 0) {
		int e = errno;
		closedir(dp);
		journal_list_free(l);
		return ds_error_sys(err, e, "readdir", dir);
	}
	closedir(dp);
	if (l->n > 1)
		qsort(l->v, l->n, sizeof(char *), journal_cmp);
	return DS_OK;
nomem:
	closedir(dp);
	journal_list_free(l);
	return ds_error_set(err, DS_ENOMEM, "list %s: out of memory", dir);
}

/* ---- recombination ---- */

/* Move everything in b over a; with skip_x, but the x.oid and x.serial
 * of B's root: the entry "x" (their directory in the bushy, chunky and
 * lawn layouts) and the entries "x.*" (the files themselves, flat). */
static int
journal_recombine_dir(ds_storage *s, const char *aroot, const char *b,
                      const char *a, struct hashmap *dirset,
                      int skip_x, ds_error *err)
{
	struct journal_list l;
	char bp[DS_PATH_MAX], ap[DS_PATH_MAX];
	struct stat st;
	int rc;

	rc = journal_listdir(b, &l, err);
	if (rc != DS_OK)
		return rc;
	for (size_t i = 0; i < l.n; i++) {
		if (skip_x && (strcmp(l.v[i], "x") == 0 ||
		               strncmp(l.v[i], "x.", 2) == 0))
			continue;
		rc = ds_path_join(bp, sizeof(bp), b, l.v[i], err);
		if (rc == DS_OK)
			rc = ds_path_join(ap, sizeof(ap), a, l.v[i], err);
		if (rc != DS_OK)
			goto out;
		if (lstat(bp, &st) != 0) {
			rc = ds_error_sys(err, errno, "stat", bp);
			goto out;
		}
		if (S_ISDIR(st.st_mode)) {
			rc = journal_ensure_dir(aroot, ap, dirset, err);
			if (rc == DS_OK)
				rc = journal_recombine_dir(s, aroot, bp, ap,
				                           dirset, 0, err);
			if (rc == DS_OK)
				rc = ds_io_rmdir(bp, err);
		} else {
			rc = journal_ensure_dir(aroot, a, dirset, err);
			if (rc != DS_OK)
				goto out;
			pthread_mutex_lock(&s->mu);
			rc = ds_io_rename(bp, ap, err);
			pthread_mutex_unlock(&s->mu);
		}
		if (rc != DS_OK)
			goto out;
	}
out:
	journal_list_free(&l);
	return rc;
}

int
journal_recombine(ds_storage *s, ds_error *err)
{
	struct hashmap dirset;
	char a[DS_PATH_MAX], b[DS_PATH_MAX];
	int rc;

	hashmap_init(&dirset);
	rc = storage_path(s, a, sizeof(a), "A", err);
	if (rc == DS_OK)
		rc = storage_path(s, b, sizeof(b), "B", err);
	/* B/x (x.oid, x.serial; B/x.* in the flat layout) last, after the
	 * rest is durable in A: as in
	 * a flush (F6), A/x/serial must never name a transaction whose t
	 * file is not in A yet, whatever order the disk writes them in */
	if (rc == DS_OK)
		rc = journal_recombine_dir(s, a, b, a, &dirset, 1, err);
	/* step 10 */
	if (rc == DS_OK)
		rc = journal_sync_dirset(s, &dirset, err);
	if (rc == DS_OK) {
		hashmap_free(&dirset);
		hashmap_init(&dirset);
		rc = journal_recombine_dir(s, a, b, a, &dirset, 0, err);
	}
	if (rc == DS_OK)
		rc = journal_sync_dirset(s, &dirset, err);
	if (rc == DS_OK && s->use_dirsync)
		rc = ds_io_fsync_dir(b, err);
	if (rc == DS_OK) {
		pthread_mutex_lock(&s->mu);
		s->snapcode[0] = '\0';
		s->have_flushed = 0;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
	}
	hashmap_free(&dirset);
	return rc;
}

/* ---- recovery ---- */

/* "working_<16 UPPER hex>_done|_temp": 1 done, 2 temp, 0 neither. */
static int
journal_entry_kind(const char *name, ds_tid *tid)
{
	char hex[17];

	if (strlen(name) != 8 + 16 + 5 || strncmp(name, "working_", 8) != 0)
		return 0;
	memcpy(hex, name + 8, 16);
	hex[16] = '\0';
	for (int i = 0; i < 16; i++)
		if (!((hex[i] >= '0' && hex[i] <= '9') ||
		      (hex[i] >= 'A' && hex[i] <= 'F')))
			return 0;
	if (ds_id_parse(hex, tid) != DS_OK)
		return 0;
	if (strcmp(name + 24, "_done") == 0)
		return 1;
	if (strcmp(name + 24, "_temp") == 0)
		return 2;
	return 0;
}

/* The rules of recovery, shared by journal_recover (which refuses before
 * changing anything), a read-only open and ds check (which report what a
 * writing open would refuse). Nothing is changed. */
int
journal_scan(const char *home, struct journal_scan *out, ds_error *err)
{
	struct journal_list jl = {0}, fl = {0}, bl = {0};
	char jroot[DS_PATH_MAX], b[DS_PATH_MAX], p[DS_PATH_MAX];
	struct stat st;
	ds_error le;
	int rc, gone;

	memset(out, 0, sizeof(*out));
	rc = ds_path_join(jroot, sizeof(jroot), home, "journal", err);
	if (rc == DS_OK)
		rc = ds_path_join(b, sizeof(b), home, "B", err);
	if (rc == DS_OK)
		rc = journal_listdir(jroot, &jl, err);
	if (rc != DS_OK)
		return rc;
	for (size_t i = 0; i < jl.n; i++)
		if (strcmp(jl.v[i], "replica.tar") == 0)
			out->replica_tar = 1;
	if (out->replica_tar) {
		/* a committed increment is applied straight into A, alone:
		 * nothing else may be pending, in journal/ or in B */
		for (size_t i = 0; i < jl.n; i++) {
			if (strcmp(jl.v[i], "replica.tar") != 0) {
				rc = ds_error_set(err, DS_ECORRUPT,
				    "recover %s: journal/replica.tar exists and the "
				    "journal is not empty: unexpected entry "
				    "journal/%s", home, jl.v[i]);
				goto out;
			}
		}
		rc = ds_path_join(p, sizeof(p), jroot, "replica.tar", err);
		if (rc != DS_OK)
			goto out;
		if (lstat(p, &st) != 0 || !S_ISREG(st.st_mode)) {
			rc = ds_error_set(err, DS_ECORRUPT,
			    "recover %s: journal/replica.tar is not a regular "
			    "file", home);
			goto out;
		}
		rc = journal_listdir(b, &bl, err);
		if (rc != DS_OK)
			goto out;
		if (bl.n > 0) {
			rc = ds_error_set(err, DS_ECORRUPT,
			    "recover %s: journal/replica.tar exists and B is not "
			    "empty: B/%s", home, bl.v[0]);
			goto out;
		}
		goto out;
	}
	for (size_t i = 0; i < jl.n; i++) {
		ds_tid tid;
		int kind = journal_entry_kind(jl.v[i], &tid);

		rc = ds_path_join(p, sizeof(p), jroot, jl.v[i], err);
		if (rc != DS_OK)
			goto out;
		/* A transaction directory that vanished since the listing was
		 * renamed (temp to done) or flushed by the live engine whose
		 * storage ds check reads in place: not a problem. */
		gone = kind != 0 && lstat(p, &st) != 0;
		if (gone && errno == ENOENT)
			continue;
		if (kind == 0 || gone || !S_ISDIR(st.st_mode)) {
			rc = ds_error_set(err, DS_ECORRUPT,
			    "recover %s: unexpected entry in the journal "
			    "directory: journal/%s", home, jl.v[i]);
			goto out;
		}
		if (kind == 2) {
			out->ntemp++;
			continue;
		}
		rc = journal_listdir(p, &fl, &le);
		if (rc != DS_OK && le.sys_errno == ENOENT) {
			rc = DS_OK;  /* flushed since the listing, as above */
			continue;
		}
		if (rc != DS_OK) {
			if (err != NULL)
				*err = le;
			goto out;
		}
		out->ndone++;
		for (size_t j = 0; j < fl.n; j++) {
			if (!ds_name_valid(fl.v[j])) {
				rc = ds_error_set(err, DS_ECORRUPT,
				    "recover %s: unexpected file in committed "
				    "transaction: journal/%s/%s", home, jl.v[i],
				    fl.v[j]);
				goto out;
			}
		}
		journal_list_free(&fl);
	}
out:
	journal_list_free(&bl);
	journal_list_free(&fl);
	journal_list_free(&jl);
	return rc;
}

/* Apply journal/replica.tar (journal_scan has checked that it is alone
 * and that B is empty): apply_committed, once A has stopped being a
 * snapshot. */
static int
journal_apply_replica(ds_storage *s, int held, ds_error *err)
{
	int rc;

	if (held)
		return ds_error_set(err, DS_EBUSY,
		    "recover %s: journal/replica.tar is pending but a "
		    "snapshot user holds misc/sublock (A must not change)",
		    s->home);
	/* the increment is written straight into A: A stops being a
	 * snapshot first */
	rc = storage_unlink_snapshot_file(s, err);
	if (rc != DS_OK)
		return rc;
	return apply_committed(s->home, err);
}

static int
journal_delete_temp(const char *dir, ds_error *err)
{
	struct journal_list l;
	char p[DS_PATH_MAX];
	int rc;

	rc = journal_listdir(dir, &l, err);
	if (rc != DS_OK)
		return rc;
	for (size_t i = 0; i < l.n && rc == DS_OK; i++) {
		rc = ds_path_join(p, sizeof(p), dir, l.v[i], err);
		if (rc == DS_OK)
			rc = ds_io_unlink(p, err);
	}
	journal_list_free(&l);
	if (rc == DS_OK)
		rc = ds_io_rmdir(dir, err);
	return rc;
}

int
journal_collect(ds_storage *s, struct jdir **headp, ds_error *err)
{
	struct journal_list jl = {0}, fl = {0};
	struct jdir *head = NULL, *tail = NULL, *d;
	char jroot[DS_PATH_MAX], p[DS_PATH_MAX];
	int rc;

	*headp = NULL;
	rc = storage_path(s, jroot, sizeof(jroot), "journal", err);
	if (rc == DS_OK)
		rc = journal_listdir(jroot, &jl, err);
	if (rc != DS_OK)
		return rc;
	for (size_t i = 0; i < jl.n; i++) {
		ds_tid tid;

		if (journal_entry_kind(jl.v[i], &tid) != 1)
			continue;
		rc = ds_path_join(p, sizeof(p), jroot, jl.v[i], err);
		if (rc == DS_OK)
			rc = journal_listdir(p, &fl, err);
		if (rc == DS_OK)
			rc = journal_jdir_new(tid, fl.v, fl.n, &d, err);
		journal_list_free(&fl);
		if (rc != DS_OK)
			goto out;
		if (tail)
			tail->next = d;
		else
			head = d;
		tail = d;
	}
	*headp = head;
	head = NULL;
out:
	journal_jdir_free_list(head);
	journal_list_free(&jl);
	return rc;
}

int
journal_recover(ds_storage *s, int held, ds_error *err)
{
	struct journal_list jl = {0};
	struct journal_scan js;
	struct jdir *head = NULL, *d;
	char jroot[DS_PATH_MAX], p[DS_PATH_MAX];
	int rc;

	rc = storage_path(s, jroot, sizeof(jroot), "journal", err);
	if (rc != DS_OK)
		return rc;
	/* First verify that nothing strange is in journal/, and that every
	 * committed directory holds only database names: refuse before
	 * changing anything. */
	rc = journal_scan(s->home, &js, err);
	if (rc != DS_OK)
		return rc;
	if (js.replica_tar) {
		rc = journal_apply_replica(s, held, err);
		if (rc == DS_OK)
			rc = journal_scan(s->home, &js, err);
		if (rc != DS_OK)
			return rc;
	}
	rc = journal_collect(s, &head, err);
	if (rc != DS_OK)
		return rc;
	rc = journal_listdir(jroot, &jl, err);
	if (rc != DS_OK)
		goto out;
	/* Roll committed transactions forward, oldest first (the names sort
	 * in tid order): a later directory's copy of a file wins. */
	pthread_mutex_lock(&s->mu);
	for (d = head; d != NULL && rc == DS_OK; d = d->next)
		for (size_t j = 0; j < d->nnames && rc == DS_OK; j++)
			rc = hashmap_put(&s->reloc, d->names[j], d, err);
	pthread_mutex_unlock(&s->mu);
	if (rc != DS_OK)
		goto out;
	if (head != NULL) {
		rc = journal_flush_batch(s, head, err);
		if (rc != DS_OK)
			goto out;
	}
	/* Delete uncommitted transactions. */
	for (size_t i = 0; i < jl.n; i++) {
		ds_tid tid;
		if (journal_entry_kind(jl.v[i], &tid) != 2)
			continue;
		rc = ds_path_join(p, sizeof(p), jroot, jl.v[i], err);
		if (rc == DS_OK)
			rc = journal_delete_temp(p, err);
		if (rc != DS_OK)
			goto out;
	}
	if (js.ntemp > 0 && s->use_dirsync)
		rc = ds_io_fsync_dir(jroot, err);
out:
	if (rc != DS_OK) {
		/* relocations must not outlive the jdirs they point to */
		pthread_mutex_lock(&s->mu);
		for (d = head; d != NULL; d = d->next)
			for (size_t j = 0; j < d->nnames; j++)
				if (hashmap_get(&s->reloc, d->names[j]) == d)
					hashmap_del(&s->reloc, d->names[j]);
		pthread_mutex_unlock(&s->mu);
	}
	journal_jdir_free_list(head);
	journal_list_free(&jl);
	return rc;
}
