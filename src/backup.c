/*
 * backup.c - full and incremental backups of a storage (ds_backup) and
 * their restore into a new storage (ds_restore), compatible both ways
 * with the original's backup.py.
 *
 * The files are backup.py's: BACKUPS (default HOME/backups) holds
 * PREFIX-N.tgz (a full backup), PREFIX-M-to-N.tgz (everything written
 * since backup M, the reference) and `tindex`, one line per run that
 * wrote something: sequence number N, the snapshot's unix time, the last
 * transaction backed up. Every archive is a plain tar a user can unpack
 * by hand ("start from the full backup, then the incrementals in
 * sequence order", backup.py's documentation): a full one holds the
 * home's directories as bare entries, config/'s files and every file of
 * A/ but pack leftovers (`*-deleted`); an incremental one holds exactly
 * what `ds whatsnew TID` lists for the reference's tid (x.serial, x.oid,
 * then per transaction its file, the objects' .c pointers and
 * revisions). Both are taken inside one snapshot, so they hold whole
 * transactions only, and both are streamed: a file at a time through
 * libarchive (ustar, gzip or zstd), never the storage in memory; an
 * incremental backup reads only the transaction files since its
 * reference and the files they name (the whatsnew walk, changes.c).
 *
 * Crash safety: an archive is written under ".tmp-<name>" and renamed to
 * its name only when every archive of the run is complete and fsynced;
 * then the directory is fsynced and only then is the index replaced
 * (temporary file, fsync, rename, fsync): an index entry always names
 * archives that exist. A run killed before leaves at most ".tmp-*" files
 * (overwritten by the next run) or, between the renames and the index,
 * finished archives the index does not know (the next run reuses the
 * number, replacing them).
 *
 * A restore builds the storage in "<DIR>.restore-<pid>" and renames it
 * to DIR only when complete, opened once through the engine, checked
 * (ds_check) and synced: a restore killed midway leaves no DIR. Archives
 * are untrusted: every member is checked before it is written
 * (backup_member_check), every write stays beneath the new directory
 * without following a symlink (ds_io_guard), and each incremental archive
 * must continue the history restored so far (its transactions chain back
 * to the restored x.serial).
 */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backup.h"
#include "internal.h"

#define BACKUP_BUF (64 * 1024)
#define BACKUP_INDEX_MAX (16u * 1024 * 1024)  /* tindex: 40 bytes a run */
#define RESTORE_CONFIG_MAX (1024 * 1024)      /* one config/ file */
/* a database file's length is a u32 field of its header */
#define RESTORE_DATA_MAX ((uint64_t)UINT32_MAX)

const char backup_index_header[] =
	"\n"
	"# This file is an index of incremental backups. Each row contains "
	"the following columns:\n"
	"# sequence number\n"
	"#     timestamp of the backup\n"
	"#                  last transaction id included in the backup\n"
	"\n";

/* ------------------------------------------------------------------ */
/* The index                                                           */
/* ------------------------------------------------------------------ */

void
backup_index_free(struct backup_index *idx)
{
	if (idx == NULL)
		return;
	free(idx->e);
	idx->e = NULL;
	idx->n = 0;
	idx->max_seq = 0;
}

/* Parse a decimal integer field; 0 on success. */
static int
backup_parse_ll(const char *s, long long *out)
{
	char *end;

	if (*s == '\0')
		return -1;
	errno = 0;
	*out = strtoll(s, &end, 10);
	return (errno != 0 || *end != '\0') ? -1 : 0;
}

int
backup_index_parse(const char *text, size_t len, const char *what,
                   struct backup_index *out, ds_error *err)
{
	size_t pos = 0, cap = 0;
	unsigned long lineno = 0;
	int rc = DS_OK;

	memset(out, 0, sizeof(*out));
	while (pos < len) {
		char line[512], *f[3], *save = NULL, *hash;
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - (text + pos)) : len - pos;
		long long seq, ts;
		int nf = 0;

		lineno++;
		if (ll >= sizeof(line)) {
			rc = ds_error_set(err, DS_ECORRUPT, "index %s: "
			                  "line %lu is too long", what, lineno);
			goto out;
		}
		memcpy(line, text + pos, ll);
		line[ll] = '\0';
		pos += ll + (nl ? 1 : 0);
		if (memchr(line, '\0', ll) != NULL) {
			rc = ds_error_set(err, DS_ECORRUPT, "index %s: "
			                  "line %lu holds a NUL byte", what,
			                  lineno);
			goto out;
		}
		if ((hash = strchr(line, '#')) != NULL)
			*hash = '\0';
		for (char *t = strtok_r(line, " \t\r\f\v", &save);
		     t != NULL && nf < 3; t = strtok_r(NULL, " \t\r\f\v", &save))
			f[nf++] = t;
		if (nf == 0)
			continue;
		if (nf < 3) {
			rc = ds_error_set(err, DS_ECORRUPT, "index %s: "
			                  "line %lu has %d field%s, not the three "
			                  "\"SEQ TIMESTAMP TID\"", what, lineno,
			                  nf, nf == 1 ? "" : "s");
			goto out;
		}
		if (backup_parse_ll(f[0], &seq) != 0 || seq < 0 ||
		    backup_parse_ll(f[1], &ts) != 0) {
			rc = ds_error_set(err, DS_ECORRUPT, "index %s: "
			                  "line %lu: sequence number and timestamp "
			                  "must be integers", what, lineno);
			goto out;
		}
		if (out->n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct backup_entry *ne = realloc(out->e,
			                                  ncap * sizeof(*ne));
			if (ne == NULL) {
				rc = ds_error_set(err, DS_ENOMEM, "index "
				                  "%s: out of memory", what);
				goto out;
			}
			out->e = ne;
			cap = ncap;
		}
		if (strlen(f[2]) != 16 ||
		    ds_id_parse(f[2], &out->e[out->n].tid) != DS_OK) {
			rc = ds_error_set(err, DS_ECORRUPT, "index %s: "
			                  "line %lu: '%s' is not a transaction id "
			                  "(16 hex digits)", what, lineno, f[2]);
			goto out;
		}
		out->e[out->n].seq = (unsigned long)seq;
		out->e[out->n].timestamp = ts;
		if ((unsigned long)seq > out->max_seq)
			out->max_seq = (unsigned long)seq;
		out->n++;
	}
out:
	if (rc != DS_OK)
		backup_index_free(out);
	return rc;
}

const struct backup_entry *
backup_index_find(const struct backup_index *idx, long long goal)
{
	const struct backup_entry *prev = NULL;

	for (size_t i = 0; i < idx->n; i++) {
		if (idx->e[i].timestamp > goal)
			break;
		prev = &idx->e[i];
	}
	return prev;
}

/* ------------------------------------------------------------------ */
/* Writing archives                                                    */
/* ------------------------------------------------------------------ */

struct backup_out {
	int fd;
	const char *path;        /* the temporary file */
	ds_error *err;           /* where a write failure is reported */
	int failed;
	uint64_t written;
};

struct backup_run {
	const char *home;
	const struct ds_backup_opts *o;
	ds_layout layout;
	struct ds_backup_stats *st;
	struct archive *a;
	struct backup_out out;
	unsigned char *buf;      /* BACKUP_BUF bytes */
	unsigned long skipped;   /* files of A/ that are not database files */
};

static ssize_t
backup_write_cb(struct archive *a, void *ctx, const void *buf, size_t len)
{
	struct backup_out *o = ctx;

	if (ds_io_write_all(o->fd, buf, len, o->path, o->err) != DS_OK) {
		o->failed = 1;
		archive_set_error(a, EIO, "%s", o->err->msg);
		return -1;
	}
	o->written += len;
	return (ssize_t)len;
}

/* The failure of a libarchive call: the write callback's error when it
 * failed, else libarchive's message. */
static int
backup_archive_error(struct backup_run *r, const char *what, ds_error *err)
{
	if (r->out.failed)
		return r->out.err->status;
	return ds_error_set(err, DS_EIO, "%s: %s: %s", r->out.path,
	                    what, archive_error_string(r->a) ?
	                    archive_error_string(r->a) : "libarchive failed");
}

/* Add one member: a directory (fd < 0) or the regular file open at fd
 * whose fstat is *sb, streamed in BACKUP_BUF pieces. */
static int
backup_add(struct backup_run *r, const char *rel, int fd,
           const struct stat *sb, const char *abspath, ds_error *err)
{
	struct archive_entry *e;
	uint64_t left;
	int rc = DS_OK;

	e = archive_entry_new();
	if (e == NULL)
		return ds_error_set(err, DS_ENOMEM, "out of memory");
	if (fd < 0) {
		char dname[DS_PATH_MAX];
		snprintf(dname, sizeof(dname), "%s/", rel);
		archive_entry_set_pathname(e, dname);
		archive_entry_set_filetype(e, AE_IFDIR);
		archive_entry_set_size(e, 0);
	} else {
		archive_entry_set_pathname(e, rel);
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_size(e, sb->st_size);
	}
	archive_entry_set_perm(e, sb->st_mode & 07777);
	archive_entry_set_mtime(e, sb->st_mtim.tv_sec, 0);
	archive_entry_set_uid(e, sb->st_uid);
	archive_entry_set_gid(e, sb->st_gid);
	if (archive_write_header(r->a, e) != ARCHIVE_OK) {
		rc = backup_archive_error(r, rel, err);
		goto out;
	}
	r->st->members++;
	if (fd < 0)
		goto out;
	left = (uint64_t)sb->st_size;
	while (left > 0) {
		size_t want = left < BACKUP_BUF ? (size_t)left : BACKUP_BUF;
		ssize_t n = read(fd, r->buf, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = ds_error_sys(err, errno, "read", abspath);
			goto out;
		}
		if (n == 0) {
			rc = ds_error_set(err, DS_EIO, "%s shrank while "
			                  "it was read (%" PRIu64 " bytes missing):"
			                  " the storage is not held in snapshot "
			                  "mode", abspath, left);
			goto out;
		}
		if (archive_write_data(r->a, r->buf, (size_t)n) != n) {
			rc = backup_archive_error(r, rel, err);
			goto out;
		}
		left -= (uint64_t)n;
		r->st->bytes_read += (uint64_t)n;
	}
	r->st->files_read++;
out:
	archive_entry_free(e);
	return rc;
}

/* Add the regular file HOME/rel (never through a symlink). */
static int
backup_add_file(struct backup_run *r, const char *rel, ds_error *err)
{
	char path[DS_PATH_MAX];
	struct stat sb;
	int fd, rc;

	rc = ds_path_join(path, sizeof(path), r->home, rel, err);
	if (rc != DS_OK)
		return rc;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ELOOP)
			return ds_error_set(err, DS_ECORRUPT, "%s is a "
			                    "symlink", path);
		return ds_error_sys(err, errno, "open", path);
	}
	if (fstat(fd, &sb) != 0) {
		rc = ds_error_sys(err, errno, "fstat", path);
	} else if (!S_ISREG(sb.st_mode)) {
		rc = ds_error_set(err, DS_ECORRUPT, "%s is not a "
		                  "regular file", path);
	} else {
		rc = backup_add(r, rel, fd, &sb, path, err);
	}
	close(fd);
	return rc;
}

static int
backup_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in directory path (without . and ..), sorted; *names and
 * each name malloc'd. Only for the home and config/, which are small. */
static int
backup_list(const char *path, char ***names, size_t *n, ds_error *err)
{
	DIR *d;
	struct dirent *de;
	size_t cap = 0;
	int rc = DS_OK;

	*names = NULL;
	*n = 0;
	if ((d = opendir(path)) == NULL)
		return ds_error_sys(err, errno, "opendir", path);
	while ((errno = 0, de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (*n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char **nn = realloc(*names, ncap * sizeof(*nn));
			if (nn == NULL)
				goto nomem;
			*names = nn;
			cap = ncap;
		}
		if (((*names)[*n] = strdup(de->d_name)) == NULL)
			goto nomem;
		(*n)++;
	}
	if (errno != 0)
		rc = ds_error_sys(err, errno, "readdir", path);
	closedir(d);
	if (rc == DS_OK && *n > 1)
		qsort(*names, *n, sizeof(**names), backup_cmp);
	return rc;
nomem:
	closedir(d);
	return ds_error_set(err, DS_ENOMEM, "out of memory");
}

static void
backup_list_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* Does name end in "-deleted" (a pack leftover, not backed up)? */
static int
backup_is_leftover(const char *name)
{
	size_t l = strlen(name);

	return l >= 8 && strcmp(name + l - 8, "-deleted") == 0;
}

/* Walk A/ beneath rel (relative to HOME, "A" at the top) in directory
 * order, as find does, one directory stream per level: the database
 * files become members; pack leftovers are left out (as backup.py's
 * `find -not -name '*-deleted'`); anything else is left out with a
 * warning (it is no database file: ds check reports it too). */
static int
backup_walk(struct backup_run *r, int dfd, const char *rel, ds_error *err)
{
	DIR *d;
	struct dirent *de;
	int rc = DS_OK;

	d = fdopendir(dfd);
	if (d == NULL) {
		rc = ds_error_sys(err, errno, "fdopendir", rel);
		close(dfd);
		return rc;
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		char sub[DS_PATH_MAX], name[DS_NAME_MAX];
		struct stat sb;
		ds_error e;

		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (snprintf(sub, sizeof(sub), "%s/%s", rel, de->d_name) >=
		    (int)sizeof(sub)) {
			rc = ds_error_set(err, DS_EINVAL, "%s/%s: path "
			                  "too long", rel, de->d_name);
			break;
		}
		if (fstatat(dirfd(d), de->d_name, &sb,
		            AT_SYMLINK_NOFOLLOW) != 0) {
			rc = ds_error_sys(err, errno, "lstat", sub);
			break;
		}
		if (S_ISDIR(sb.st_mode)) {
			int sfd = openat(dirfd(d), de->d_name, O_RDONLY |
			                 O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sfd < 0) {
				rc = ds_error_sys(err, errno, "open directory",
				                  sub);
				break;
			}
			rc = backup_walk(r, sfd, sub, err);
			if (rc != DS_OK)
				break;
			continue;
		}
		if (backup_is_leftover(de->d_name))
			continue;
		if (!S_ISREG(sb.st_mode) ||
		    ds_layout_path_to_name(r->layout, sub + 2, name,
		                           sizeof(name), &e) != DS_OK) {
			ds_log(r->o->log, r->o->log_ctx, DS_LOG_WARN,
			       "not backed up: %s is not a database file of a "
			       "%s storage", sub, ds_layout_str(r->layout));
			r->skipped++;
			continue;
		}
		rc = backup_add_file(r, sub, err);
		if (rc != DS_OK)
			break;
	}
	if (rc == DS_OK && errno != 0)
		rc = ds_error_sys(err, errno, "readdir", rel);
	closedir(d);
	return rc;
}

/* The full backup's members, in backup.py's order: the home's
 * directories (bare entries), config/'s regular files, A/'s files. */
static int
backup_full_members(struct backup_run *r, ds_error *err)
{
	char **names = NULL, path[DS_PATH_MAX], rel[DS_PATH_MAX];
	size_t n = 0;
	struct stat sb;
	int rc, afd;

	rc = backup_list(r->home, &names, &n, err);
	for (size_t i = 0; rc == DS_OK && i < n; i++) {
		rc = ds_path_join(path, sizeof(path), r->home, names[i], err);
		if (rc == DS_OK && lstat(path, &sb) != 0)
			rc = ds_error_sys(err, errno, "lstat", path);
		if (rc == DS_OK && S_ISDIR(sb.st_mode))
			rc = backup_add(r, names[i], -1, &sb, path, err);
	}
	backup_list_free(names, n);
	if (rc != DS_OK)
		return rc;
	rc = ds_path_join(path, sizeof(path), r->home, "config", err);
	if (rc == DS_OK)
		rc = backup_list(path, &names, &n, err);
	for (size_t i = 0; rc == DS_OK && i < n; i++) {
		snprintf(rel, sizeof(rel), "config/%s", names[i]);
		rc = ds_path_join(path, sizeof(path), r->home, rel, err);
		if (rc == DS_OK && lstat(path, &sb) != 0)
			rc = ds_error_sys(err, errno, "lstat", path);
		if (rc != DS_OK)
			break;
		if (!S_ISREG(sb.st_mode)) {
			ds_log(r->o->log, r->o->log_ctx, DS_LOG_WARN,
			       "not backed up: %s is not a regular file", path);
			continue;
		}
		rc = backup_add_file(r, rel, err);
	}
	backup_list_free(names, n);
	if (rc != DS_OK)
		return rc;
	rc = ds_path_join(path, sizeof(path), r->home, "A", err);
	if (rc != DS_OK)
		return rc;
	afd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (afd < 0)
		return ds_error_sys(err, errno, "open directory", path);
	return backup_walk(r, afd, "A", err);
}

static int
backup_inc_cb(const char *relpath, void *ctx, ds_error *err)
{
	return backup_add_file(ctx, relpath, err);
}

/* A human size as backup.py's format_filesize. */
static void
backup_size(uint64_t size, char out[32])
{
	if (size < 2048)
		snprintf(out, 32, "%" PRIu64 " bytes", size);
	else if (size / 1024 < 2048)
		snprintf(out, 32, "%" PRIu64 " k", size / 1024);
	else
		snprintf(out, 32, "%" PRIu64 " M", size / 1024 / 1024);
}

/* One archive of the run, written and fsynced under its temporary name. */
struct backup_file {
	char tmp[DS_PATH_MAX];
	char final[DS_PATH_MAX];
};

/* Write one archive into f->tmp: full (ref NULL) or incremental since
 * ref->tid. */
static int
backup_write(struct backup_run *r, const struct backup_entry *ref,
             struct backup_file *f, ds_error *err)
{
	struct ds_changes_opts copts = {0};
	char sz[32];
	int rc, fd = -1;

	rc = ds_io_open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW,
	                0640, &fd, err);
	if (rc != DS_OK)
		return rc;
	memset(&r->out, 0, sizeof(r->out));
	r->out.fd = fd;
	r->out.path = f->tmp;
	r->out.err = err;
	r->a = archive_write_new();
	if (r->a == NULL) {
		rc = ds_error_set(err, DS_ENOMEM, "out of memory");
		goto out;
	}
	if (archive_write_set_format_ustar(r->a) != ARCHIVE_OK ||
	    (r->o->compress == DS_BACKUP_ZSTD ?
	     archive_write_add_filter_zstd(r->a) :
	     archive_write_add_filter_gzip(r->a)) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(r->a, 1) != ARCHIVE_OK ||
	    archive_write_open(r->a, &r->out, NULL, backup_write_cb, NULL) !=
	    ARCHIVE_OK) {
		rc = backup_archive_error(r, "starting the archive", err);
		goto out;
	}
	if (ref == NULL) {
		rc = backup_full_members(r, err);
	} else {
		copts.log = r->o->log;
		copts.log_ctx = r->o->log_ctx;
		rc = ds_changes_walk(r->home, ref->tid, &copts, backup_inc_cb,
		                     r, NULL, err);
		if (rc == DS_EREFUSED)
			rc = ds_error_prefix(err, DS_EREFUSED, "incremental "
			                     "backup since backup %lu impossible "
			                     "(make a full backup)", ref->seq);
	}
	if (rc != DS_OK)
		goto out;
	if (archive_write_close(r->a) != ARCHIVE_OK) {
		rc = backup_archive_error(r, "finishing the archive", err);
		goto out;
	}
	/* the archive's bytes on disk before its name can say "finished" */
	rc = ds_io_fsync(fd, f->tmp, err);
	if (rc != DS_OK)
		goto out;
	rc = ds_io_close(fd, f->tmp, err);
	fd = -1;
	if (rc != DS_OK)
		goto out;
	r->st->archives++;
	r->st->bytes_written += r->out.written;
	backup_size(r->out.written, sz);
	ds_log(r->o->log, r->o->log_ctx, DS_LOG_INFO, "    %s backup "
	       "complete, %s", ref ? "incremental" : "full", sz);
out:
	if (r->a != NULL) {
		/* no archive_write_fail on failure: with it, libarchive's free
		 * skips the filters' close, which is where the gzip and zstd
		 * filters release their compressor (a leak under ASan); the
		 * trailer the close writes goes to the temporary file, which
		 * the caller removes, so no name ever says "finished" */
		archive_write_free(r->a);
		r->a = NULL;
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Read BACKUPS/tindex into *text (NUL-terminated, malloc'd; NULL when
 * the index does not exist yet). */
static int
backup_read_index(const char *path, char **text, size_t *len, ds_error *err)
{
	unsigned char *buf = NULL;
	int rc;

	*text = NULL;
	*len = 0;
	rc = ds_file_read(path, BACKUP_INDEX_MAX, &buf, len, err);
	if (rc == DS_ENOTFOUND) {
		ds_error_clear(err);
		return DS_OK;
	}
	if (rc != DS_OK)
		return rc;
	*text = malloc(*len + 1);
	if (*text == NULL) {
		free(buf);
		return ds_error_set(err, DS_ENOMEM, "out of memory");
	}
	memcpy(*text, buf, *len);
	(*text)[*len] = '\0';
	free(buf);
	return DS_OK;
}

static int
backup_check_prefix(const char *p, ds_error *err)
{
	if (p[0] == '\0' || p[0] == '.' || strchr(p, '/') != NULL ||
	    strlen(p) > 200)
		return ds_error_set(err, DS_EINVAL, "prefix '%s' "
		                    "refused: a file name is needed (not empty, "
		                    "no '/', not starting with '.')", p);
	return DS_OK;
}

/* Everything but the snapshot: home is held in snapshot mode. */
static int
backup_run_held(const char *home, long long stamp,
                const struct ds_backup_cmd *cmds, size_t ncmds,
                const struct ds_backup_opts *o, struct ds_backup_stats *st,
                ds_error *err)
{
	struct backup_run r;
	struct backup_index idx = {0};
	struct backup_file *files = NULL;
	size_t nfiles = 0;
	char bdir[DS_PATH_MAX], ipath[DS_PATH_MAX], xs[DS_PATH_MAX];
	char rel[DS_RELPATH_MAX], tidhex[17], *itext = NULL, *ntext = NULL;
	size_t ilen = 0;
	unsigned char *xb = NULL;
	size_t xlen = 0;
	struct stat sb;
	ds_config cfg;
	ds_tid current;
	const char *ext = o->compress == DS_BACKUP_ZSTD ? "tar.zst" : "tgz";
	time_t now = time(NULL);
	int rc, dfd = -1;

	memset(&r, 0, sizeof(r));
	r.home = home;
	r.o = o;
	r.st = st;
	if (stamp > (long long)now)
		return ds_error_set(err, DS_ESTATE, "ERROR: timestamp "
		                    "in the future (the snapshot's time %lld "
		                    "is later than now)", stamp);
	if (stamp < (long long)now - 60 * 60 * 12)
		return ds_error_set(err, DS_ESTATE, "ERROR: timestamp "
		                    "too far in the past (the snapshot was "
		                    "taken more than 12 hours ago)");
	rc = ds_config_load(home, &cfg, err);
	if (rc != DS_OK)
		return rc;
	if (strcmp(cfg.classname, "Full") != 0)
		return ds_error_set(err, DS_ECONFIG, "%s: ERROR: this is "
		                    "not a Full storage", home);
	r.layout = cfg.layout;
	if (o->dir != NULL)
		snprintf(bdir, sizeof(bdir), "%s", o->dir);
	else if (ds_path_join(bdir, sizeof(bdir), home, "backups", err) !=
	         DS_OK)
		return err->status;
	if (stat(bdir, &sb) != 0) {
		if (errno != ENOENT)
			return ds_error_sys(err, errno, "stat", bdir);
		return ds_error_set(err, DS_ENOTFOUND, "ERROR: %s does "
		                    "not exist (create it: backups are "
		                    "written there)", bdir);
	}
	if (!S_ISDIR(sb.st_mode))
		return ds_error_set(err, DS_ENOTFOUND, "ERROR: %s is not a "
		                    "directory", bdir);
	/* two runs writing into one BACKUPS (two storages sharing it) would
	 * hand out the same sequence number: one at a time */
	dfd = open(bdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return ds_error_sys(err, errno, "open directory", bdir);
	if (flock(dfd, LOCK_EX | LOCK_NB) != 0) {
		rc = errno == EWOULDBLOCK ?
		     ds_error_set(err, DS_ELOCKED, "another backup is "
		                  "writing into %s", bdir) :
		     ds_error_sys(err, errno, "flock", bdir);
		goto out;
	}
	/* the last transaction in the snapshot */
	rc = ds_layout_name_to_path(cfg.layout, "x.serial", rel, sizeof(rel),
	                            err);
	if (rc == DS_OK)
		rc = snprintf(xs, sizeof(xs), "%s/A/%s", home, rel) >=
		     (int)sizeof(xs) ? ds_error_set(err, DS_EINVAL, ""
		     "%s: path too long", home) : DS_OK;
	if (rc == DS_OK)
		rc = ds_file_read(xs, 64, &xb, &xlen, err);
	if (rc == DS_OK)
		rc = ds_xfile_decode(xb, xlen, xs, &current, err);
	if (rc != DS_OK)
		goto out;
	rc = ds_path_join(ipath, sizeof(ipath), bdir, "tindex", err);
	if (rc == DS_OK)
		rc = backup_read_index(ipath, &itext, &ilen, err);
	if (rc == DS_OK && itext != NULL)
		rc = backup_index_parse(itext, ilen, ipath, &idx, err);
	if (rc != DS_OK)
		goto out;
	st->seq = idx.max_seq + 1;
	st->tid = current;
	ds_log(o->log, o->log_ctx, DS_LOG_INFO, "This is backup sequence "
	       "number %lu", st->seq);
	if ((r.buf = malloc(BACKUP_BUF)) == NULL ||
	    (files = calloc(ncmds ? ncmds : 1, sizeof(*files))) == NULL) {
		rc = ds_error_set(err, DS_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < ncmds; i++) {
		const char *prefix = cmds[i].prefix ? cmds[i].prefix : "backup";
		const struct backup_entry *ref = NULL;
		struct backup_file *f = &files[nfiles];
		char name[512];

		rc = backup_check_prefix(prefix, err);
		if (rc != DS_OK)
			goto out;
		if (cmds[i].op == DS_BACKUP_FULL) {
			snprintf(name, sizeof(name), "%s-%lu.%s", prefix,
			         st->seq, ext);
		} else if (cmds[i].op == DS_BACKUP_INC) {
			ref = backup_index_find(&idx, cmds[i].since);
			if (ref == NULL) {
				rc = ds_error_set(err, DS_ENOTFOUND,
				                  "ERROR: No previous backup "
				                  "found. incremental backup "
				                  "impossible (no backup in %s "
				                  "at or before %lld: make a full "
				                  "backup first)", ipath,
				                  cmds[i].since);
				goto out;
			}
			if (ref->tid == current && nfiles == 0) {
				ds_log(o->log, o->log_ctx, DS_LOG_INFO,
				       "Ignoring empty incremental backup");
				continue;
			}
			snprintf(name, sizeof(name), "%s-%lu-to-%lu.%s",
			         prefix, ref->seq, st->seq, ext);
		} else {
			rc = ds_error_set(err, DS_EINVAL, "unknown "
			                  "command %d", cmds[i].op);
			goto out;
		}
		if (snprintf(f->final, sizeof(f->final), "%s/%s", bdir, name) >=
		    (int)sizeof(f->final) ||
		    snprintf(f->tmp, sizeof(f->tmp), "%s/.tmp-%s", bdir, name) >=
		    (int)sizeof(f->tmp)) {
			rc = ds_error_set(err, DS_EINVAL, "%s: path too "
			                  "long", bdir);
			goto out;
		}
		for (size_t k = 0; k < nfiles; k++)
			if (strcmp(files[k].final, f->final) == 0) {
				rc = ds_error_set(err, DS_EINVAL, "%s "
				                  "would be written twice in one "
				                  "run", f->final);
				goto out;
			}
		if (ref == NULL) {
			ds_log(o->log, o->log_ctx, DS_LOG_INFO, "Creating full "
			       "backup '%s'", f->final);
		} else {
			char when[32], tdate[24];
			time_t t = (time_t)ref->timestamp;
			struct tm tm;
			gmtime_r(&t, &tm);
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S GMT",
			         &tm);
			ds_id_format(ref->tid, tidhex);
			ds_tid_format(ref->tid, tdate);
			ds_log(o->log, o->log_ctx, DS_LOG_INFO, "Creating "
			       "incremental backup '%s'", f->final);
			ds_log(o->log, o->log_ctx, DS_LOG_INFO, "    since "
			       "backup %lu at %s", ref->seq, when);
			ds_log(o->log, o->log_ctx, DS_LOG_INFO, "    which "
			       "included transaction %s %s", tidhex, tdate);
		}
		nfiles++;
		rc = backup_write(&r, ref, f, err);
		if (rc != DS_OK)
			goto out;
	}
	if (r.skipped > 0)
		ds_log(o->log, o->log_ctx, DS_LOG_WARN, "%lu file%s of A/ not "
		       "backed up: not database files (ds check lists them)",
		       r.skipped, r.skipped == 1 ? "" : "s");
	if (nfiles == 0) {
		ds_log(o->log, o->log_ctx, DS_LOG_INFO, "No backups needed, "
		       "not writing an entry into the index file");
		goto out;
	}
	/* the commit: every archive under its name, durable, then the index
	 * entry that names them (never an entry for a missing archive) */
	for (size_t k = 0; k < nfiles; k++) {
		rc = ds_io_rename(files[k].tmp, files[k].final, err);
		if (rc != DS_OK)
			goto out;
		files[k].tmp[0] = '\0';
	}
	rc = ds_io_fsync_dir(bdir, err);
	if (rc != DS_OK)
		goto out;
	{
		size_t base = itext ? ilen : strlen(backup_index_header);
		size_t nl = (itext && ilen > 0 && itext[ilen - 1] != '\n');
		int w;
		ntext = malloc(base + nl + 128);
		if (ntext == NULL) {
			rc = ds_error_set(err, DS_ENOMEM, "out of "
			                  "memory");
			goto out;
		}
		memcpy(ntext, itext ? itext : backup_index_header, base);
		if (nl)
			ntext[base] = '\n';
		ds_id_format(current, tidhex);
		w = snprintf(ntext + base + nl, 128, "%-5lu %-12lld %s\n",
		             st->seq, stamp, tidhex);
		rc = ds_io_replace_file(ipath, ntext, base + nl + (size_t)w,
		                        0644, 1, err);
	}
	if (rc == DS_OK)
		rc = ds_io_fsync_dir(bdir, err);
	if (rc == DS_OK)
		st->indexed = 1;
out:
	if (rc != DS_OK)
		for (size_t k = 0; k < nfiles; k++)
			if (files[k].tmp[0] != '\0')
				unlink(files[k].tmp);
	if (dfd >= 0)
		close(dfd);
	backup_index_free(&idx);
	free(files);
	free(r.buf);
	free(itext);
	free(ntext);
	free(xb);
	return rc;
}

int
ds_backup(const char *home, const struct ds_backup_cmd *cmds, size_t ncmds,
          const struct ds_backup_opts *opts, struct ds_backup_stats *stats,
          ds_error *err)
{
	static const struct ds_backup_opts defaults = {0};
	struct ds_snapshot_opts sopts = {0};
	struct ds_backup_stats st0;
	ds_snapshot *snap = NULL;
	ds_error rerr;
	int rc, rrc;

	if (opts == NULL)
		opts = &defaults;
	if (stats == NULL)
		stats = &st0;
	memset(stats, 0, sizeof(*stats));
	if (ncmds == 0)
		return ds_error_set(err, DS_EINVAL, "nothing to do "
		                    "(full, or inc SINCE)");
	if (opts->snapshot != NULL)
		sopts = *opts->snapshot;
	sopts.log = opts->log;
	sopts.log_ctx = opts->log_ctx;
	rc = ds_snapshot_acquire(home, &sopts, &snap, err);
	if (rc != DS_OK)
		return rc;
	rc = backup_run_held(ds_snapshot_dir(snap), ds_snapshot_timestamp(snap),
	                     cmds, ncmds, opts, stats, err);
	ds_error_clear(&rerr);
	rrc = ds_snapshot_release(snap, &rerr);
	if (rc == DS_OK && rrc != DS_OK) {
		if (err != NULL)
			*err = rerr;
		rc = rrc;
	}
	return rc;
}

/* ------------------------------------------------------------------ */
/* Restoring                                                           */
/* ------------------------------------------------------------------ */

int
backup_member_check(const char *name, mode_t type, int hardlink,
                    int have_layout, ds_layout layout, char *norm,
                    size_t normsz, int *kind, ds_error *err)
{
	const char *p = name, *c;
	char dbname[DS_NAME_MAX];
	size_t len;
	ds_error e;

	*kind = BM_SKIP;
	if (name[0] == '/')
		return ds_error_set(err, DS_EPROTO, "member %s: absolute path",
		                    name);
	while (p[0] == '.' && p[1] == '/')
		p += 2;
	len = strlen(p);
	if (len == 0 || strcmp(p, ".") == 0) {
		if (type != S_IFDIR)
			return ds_error_set(err, DS_EPROTO, "member %s: not a "
			                    "file name", name);
		return DS_OK;
	}
	if (len >= normsz)
		return ds_error_set(err, DS_EINVAL, "member %s: name too long",
		                    name);
	memcpy(norm, p, len + 1);
	if (type == S_IFDIR && norm[len - 1] == '/')
		norm[--len] = '\0';
	/* every component a name: no "", ".", ".." */
	for (c = norm;;) {
		const char *sl = strchr(c, '/');
		size_t cl = sl ? (size_t)(sl - c) : strlen(c);
		if (cl == 0 || (cl == 1 && c[0] == '.') ||
		    (cl == 2 && c[0] == '.' && c[1] == '.'))
			return ds_error_set(err, DS_EPROTO, "member %s: "
			                    "\"..\", \".\" or an empty component",
			                    name);
		if (sl == NULL)
			break;
		c = sl + 1;
	}
	if (hardlink)
		return ds_error_set(err, DS_EPROTO, "member %s: a hard link "
		                    "(only regular files and directories are "
		                    "restored)", name);
	if (type != S_IFREG && type != S_IFDIR)
		return ds_error_set(err, DS_EPROTO, "member %s: a %s (only "
		                    "regular files and directories are "
		                    "restored)", name,
		                    type == S_IFLNK ? "symbolic link" :
		                    type == S_IFCHR ? "character device" :
		                    type == S_IFBLK ? "block device" :
		                    type == S_IFIFO ? "fifo" :
		                    type == S_IFSOCK ? "socket" : "special file");
	if (type == S_IFDIR) {
		if (strchr(norm, '/') == NULL) {
			*kind = BM_TOPDIR;
			return DS_OK;
		}
		if (strncmp(norm, "A/", 2) == 0) {
			*kind = BM_DIR;
			return DS_OK;
		}
		return ds_error_set(err, DS_EPROTO, "member %s: a directory "
		                    "that is not part of a storage backup",
		                    name);
	}
	if (strncmp(norm, "config/", 7) == 0 && strchr(norm + 7, '/') == NULL) {
		*kind = BM_CONFIG;
		return DS_OK;
	}
	if (strncmp(norm, "A/", 2) == 0) {
		if (!have_layout)
			return ds_error_set(err, DS_EPROTO, "member %s: a "
			                    "database file before config/settings "
			                    "(the first archive must be a full "
			                    "backup)", name);
		if (ds_layout_path_to_name(layout, norm + 2, dbname,
		                           sizeof(dbname), &e) != DS_OK)
			return ds_error_set(err, DS_EPROTO, "member %s: not a "
			                    "database file of a %s storage", name,
			                    ds_layout_str(layout));
		*kind = BM_DATA;
		return DS_OK;
	}
	return ds_error_set(err, DS_EPROTO, "member %s: not part of a "
	                    "storage backup (only top-level directories, "
	                    "config/ files and A/ database files)", name);
}

struct restore {
	const struct ds_restore_opts *o;
	struct ds_restore_stats *st;
	char tmp[DS_PATH_MAX];
	int have_layout;
	ds_layout layout;
	unsigned char *buf;
};

/* Write the current member's data into tmp/rel (mode, mtime from e). */
static int
restore_file(struct restore *r, struct archive *a, struct archive_entry *e,
             const char *arch, const char *rel, int kind, ds_error *err)
{
	char path[DS_PATH_MAX], parent[DS_PATH_MAX], *sl;
	int64_t size = archive_entry_size(e);
	uint64_t max = kind == BM_CONFIG ? RESTORE_CONFIG_MAX :
	               (r->o->max_member ? r->o->max_member : RESTORE_DATA_MAX);
	uint64_t got = 0;
	struct timespec ts[2];
	int rc, fd = -1;

	if (!archive_entry_size_is_set(e) || size < 0 ||
	    (uint64_t)size > max)
		return ds_error_set(err, DS_EPROTO, "%s: member %s: "
		                    "size %lld over the limit of %" PRIu64
		                    " bytes for a %s", arch, rel,
		                    (long long)size, max, kind == BM_CONFIG ?
		                    "config file" : "database file");
	rc = ds_path_join(path, sizeof(path), r->tmp, rel, err);
	if (rc != DS_OK)
		return rc;
	snprintf(parent, sizeof(parent), "%s", path);
	sl = strrchr(parent, '/');
	*sl = '\0';
	rc = ds_io_mkdirs(parent, 0755, err);
	if (rc != DS_OK)
		return rc;
	/* beneath the new directory, through no symlink (ds_io_guard);
	 * a later archive's member replaces the earlier one's content */
	rc = ds_io_open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600, &fd, err);
	if (rc != DS_OK)
		return rc;
	for (;;) {
		const void *blk;
		size_t len;
		la_int64_t off;
		int ar = archive_read_data_block(a, &blk, &len, &off);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar != ARCHIVE_OK) {
			rc = ds_error_set(err, DS_EPROTO, "%s: member "
			                  "%s: %s", arch, rel,
			                  archive_error_string(a) ?
			                  archive_error_string(a) :
			                  "unreadable data");
			goto out;
		}
		if (off < 0 || (uint64_t)off != got) {
			rc = ds_error_set(err, DS_EPROTO, "%s: member "
			                  "%s: a sparse member", arch, rel);
			goto out;
		}
		got += len;
		if (got > (uint64_t)size) {
			rc = ds_error_set(err, DS_EPROTO, "%s: member "
			                  "%s: more data than its size", arch, rel);
			goto out;
		}
		rc = ds_io_write_all(fd, blk, len, path, err);
		if (rc != DS_OK)
			goto out;
	}
	if (got != (uint64_t)size) {
		rc = ds_error_set(err, DS_EPROTO, "%s: member %s: "
		                  "truncated (%" PRIu64 " of %lld bytes)", arch,
		                  rel, got, (long long)size);
		goto out;
	}
	/* the member's permissions, without set-id or sticky bits */
	if (fchmod(fd, archive_entry_perm(e) & 0777) != 0) {
		rc = ds_error_sys(err, errno, "chmod", path);
		goto out;
	}
	ts[0].tv_sec = ts[1].tv_sec = archive_entry_mtime(e);
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	(void)futimens(fd, ts);
	r->st->files++;
	r->st->bytes += got;
	/* made durable all at once (syncfs) before the rename into place */
	rc = ds_io_close(fd, path, err);
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

/* The restored tree's x.serial (0 when it has none yet). */
static int
restore_serial(struct restore *r, ds_tid *tid, ds_error *err)
{
	char rel[DS_RELPATH_MAX], path[DS_PATH_MAX];
	unsigned char *b = NULL;
	size_t len = 0;
	int rc;

	*tid = 0;
	rc = ds_layout_name_to_path(r->layout, "x.serial", rel, sizeof(rel),
	                            err);
	if (rc == DS_OK &&
	    snprintf(path, sizeof(path), "%s/A/%s", r->tmp, rel) >=
	    (int)sizeof(path))
		rc = ds_error_set(err, DS_EINVAL, "path too long");
	if (rc == DS_OK)
		rc = ds_file_read(path, 64, &b, &len, err);
	if (rc == DS_ENOTFOUND) {
		ds_error_clear(err);
		return DS_OK;
	}
	if (rc == DS_OK)
		rc = ds_xfile_decode(b, len, path, tid, err);
	free(b);
	return rc;
}

/* After an incremental archive: its transactions, from the new x.serial
 * back, must reach the x.serial restored before it (`before`). */
static int
restore_continuity(struct restore *r, const char *arch, ds_tid before,
                   ds_tid after, ds_error *err)
{
	char name[DS_NAME_MAX], rel[DS_RELPATH_MAX], path[DS_PATH_MAX];
	char h1[17], h2[17];
	ds_tid t = after;
	int rc = DS_OK;

	ds_id_format(before, h1);
	ds_id_format(after, h2);
	if (after < before)
		return ds_error_set(err, DS_EREFUSED, "%s: it ends at "
		                    "transaction %s, before the %s restored so "
		                    "far: it would take the storage back (give "
		                    "the archives in sequence order)", arch, h2,
		                    h1);
	while (t > before) {
		unsigned char *b = NULL;
		size_t len = 0;
		ds_txnrec tr;
		char h3[17];

		ds_name_transaction(t, name);
		rc = ds_layout_name_to_path(r->layout, name, rel, sizeof(rel),
		                            err);
		if (rc != DS_OK)
			return rc;
		if (snprintf(path, sizeof(path), "%s/A/%s", r->tmp, rel) >=
		    (int)sizeof(path))
			return ds_error_set(err, DS_EINVAL, "path too "
			                    "long");
		rc = ds_file_read(path, 0, &b, &len, err);
		if (rc == DS_ENOTFOUND) {
			ds_id_format(t, h3);
			return ds_error_set(err, DS_EREFUSED, "%s: it "
			                    "does not continue the backups "
			                    "restored before it (at transaction "
			                    "%s): its history goes back to "
			                    "transaction %s, which none of them "
			                    "holds (an archive is missing in "
			                    "between, or it belongs to another "
			                    "storage)", arch, h1, h3);
		}
		if (rc == DS_OK)
			rc = ds_txnrec_decode(b, len, path, &tr, err);
		free(b);
		if (rc != DS_OK)
			return rc;
		if (tr.tid != t || tr.prev_tid >= t)
			return ds_error_set(err, DS_ECORRUPT, "%s: "
			                    "transaction file %s is not that of "
			                    "its name, or its previous pointer "
			                    "does not go back", arch, path);
		t = tr.prev_tid;
	}
	if (t != before)
		return ds_error_set(err, DS_EREFUSED, "%s: its "
		                    "history does not pass through "
		                    "transaction %s, where the backups restored "
		                    "before it end (it belongs to another "
		                    "storage or history)", arch, h1);
	return DS_OK;
}

/* Restore one archive into r->tmp. first: it must be a full backup. */
static int
restore_archive(struct restore *r, const char *arch, int first,
                ds_error *err)
{
	struct archive *a;
	struct archive_entry *e;
	ds_tid before = 0, after;
	int rc = DS_OK, ar, full = 0, members = 0, has_serial = 0, data = 0;

	if (!first) {
		rc = restore_serial(r, &before, err);
		if (rc != DS_OK)
			return rc;
	}
	a = archive_read_new();
	if (a == NULL)
		return ds_error_set(err, DS_ENOMEM, "out of memory");
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_format_tar(a);
	if (archive_read_open_filename(a, arch, BACKUP_BUF) != ARCHIVE_OK) {
		int e2 = archive_errno(a);
		if (e2 == ENOENT || e2 == EACCES || e2 == EISDIR)
			rc = ds_error_sys(err, e2, "open", arch);
		else
			rc = ds_error_set(err, DS_EPROTO, "%s: not a "
			                  "tar archive (plain, gzip or zstd): %s",
			                  arch, archive_error_string(a) ?
			                  archive_error_string(a) : "unreadable");
		goto out;
	}
	for (;;) {
		char norm[DS_PATH_MAX], path[DS_PATH_MAX];
		int kind;

		ar = archive_read_next_header(a, &e);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar != ARCHIVE_OK) {
			rc = ds_error_set(err, DS_EPROTO, "%s: after "
			                  "%d members: %s", arch, members,
			                  archive_error_string(a) ?
			                  archive_error_string(a) :
			                  "unreadable archive");
			goto out;
		}
		members++;
		r->st->members++;
		rc = backup_member_check(archive_entry_pathname(e) ?
		                         archive_entry_pathname(e) : "",
		                         archive_entry_filetype(e),
		                         archive_entry_hardlink(e) != NULL,
		                         r->have_layout, r->layout, norm,
		                         sizeof(norm), &kind, err);
		if (rc != DS_OK) {
			rc = ds_error_prefix(err, rc, "%s", arch);
			goto out;
		}
		if (kind == BM_SKIP)
			continue;
		if (kind == BM_CONFIG) {
			if (!first) {
				rc = ds_error_set(err, DS_EPROTO, "%s: "
				                  "it holds %s: a full backup, "
				                  "which can only be the first "
				                  "archive", arch, norm);
				goto out;
			}
			full = 1;
		}
		rc = ds_path_join(path, sizeof(path), r->tmp, norm, err);
		if (rc != DS_OK)
			goto out;
		if (kind == BM_TOPDIR || kind == BM_DIR) {
			rc = ds_io_mkdirs(path, 0755, err);
			if (rc == DS_OK &&
			    chmod(path, (archive_entry_perm(e) & 0777) | 0700))
				rc = ds_error_sys(err, errno, "chmod", path);
			if (rc != DS_OK)
				goto out;
			continue;
		}
		if (kind == BM_DATA)
			data++;
		if (kind == BM_DATA) {
			char nm[DS_NAME_MAX];
			ds_error e2;
			if (ds_layout_path_to_name(r->layout, norm + 2, nm,
			                           sizeof(nm), &e2) == DS_OK &&
			    strcmp(nm, "x.serial") == 0)
				has_serial = 1;
		}
		rc = restore_file(r, a, e, arch, norm, kind, err);
		if (rc != DS_OK)
			goto out;
		if (kind == BM_CONFIG && strcmp(norm, "config/settings") == 0) {
			ds_settings *s = NULL;
			const char *fmt;
			rc = ds_settings_load(path, &s, err);
			if (rc == DS_OK) {
				fmt = ds_settings_get(s, "structure", "format");
				rc = ds_layout_parse(fmt ? fmt : "(none)",
				                     &r->layout, err);
			}
			ds_settings_free(s);
			if (rc != DS_OK) {
				rc = ds_error_prefix(err, DS_ECONFIG,
				                     "%s", arch);
				goto out;
			}
			r->have_layout = 1;
		}
	}
	if (first && !full) {
		rc = ds_error_set(err, DS_EPROTO, "%s: not a full "
		                  "backup (no config/ files): the first archive "
		                  "must be one", arch);
		goto out;
	}
	if (first && !r->have_layout) {
		rc = ds_error_set(err, DS_EPROTO, "%s: a full backup "
		                  "without config/settings", arch);
		goto out;
	}
	if (first && !has_serial) {
		rc = ds_error_set(err, DS_EPROTO, "%s: a full backup "
		                  "without A/'s x.serial", arch);
		goto out;
	}
	/* an incremental backup always starts with x.serial (whatsnew's
	 * list); without it nothing says where its files belong */
	if (!first && data > 0 && !has_serial) {
		rc = ds_error_set(err, DS_EPROTO, "%s: an incremental backup "
		                  "without A/'s x.serial", arch);
		goto out;
	}
	if (!first && has_serial) {
		rc = restore_serial(r, &after, err);
		if (rc == DS_OK)
			rc = restore_continuity(r, arch, before, after, err);
		if (rc != DS_OK)
			goto out;
	}
	ds_log(r->o->log, r->o->log_ctx, DS_LOG_VERBOSE, "restored %s: %d "
	       "members", arch, members);
	r->st->archives++;
out:
	archive_read_free(a);
	return rc;
}

static int
restore_rm_cb(const char *path, const struct stat *sb, int flag,
              struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

int
ds_restore(const char *const *archives, size_t n, const char *dir,
           const struct ds_restore_opts *opts, struct ds_restore_stats *stats,
           ds_error *err)
{
	static const char *const subdirs[] = {"A", "B", "journal", "misc",
	                                      "config"};
	static const struct ds_restore_opts defaults = {0};
	struct ds_restore_stats st0;
	struct ds_check_opts copts = {0};
	struct restore r;
	struct stat sb;
	char parent[DS_PATH_MAX], p[DS_PATH_MAX], *sl;
	ds_storage *s = NULL;
	int rc, made = 0, guarded = 0, fd = -1;

	if (opts == NULL)
		opts = &defaults;
	if (stats == NULL)
		stats = &st0;
	memset(stats, 0, sizeof(*stats));
	memset(&r, 0, sizeof(r));
	r.o = opts;
	r.st = stats;
	if (n == 0)
		return ds_error_set(err, DS_EINVAL, "no archive (a "
		                    "full backup, then incrementals)");
	if (dir[0] == '\0')
		return ds_error_set(err, DS_EINVAL, "empty directory "
		                    "name");
	if (lstat(dir, &sb) == 0)
		return ds_error_set(err, DS_EEXIST, "%s: it exists "
		                    "already (a restore makes a new storage)",
		                    dir);
	snprintf(parent, sizeof(parent), "%s", dir);
	while (strlen(parent) > 1 && parent[strlen(parent) - 1] == '/')
		parent[strlen(parent) - 1] = '\0';
	if (snprintf(r.tmp, sizeof(r.tmp), "%s.restore-%ld", parent,
	             (long)getpid()) >= (int)sizeof(r.tmp) - DS_RELPATH_MAX)
		return ds_error_set(err, DS_EINVAL, "%s: path too "
		                    "long", dir);
	sl = strrchr(parent, '/');
	if (sl == NULL)
		snprintf(parent, sizeof(parent), ".");
	else if (sl == parent)
		parent[1] = '\0';
	else
		*sl = '\0';
	rc = ds_io_mkdir(r.tmp, 0755, 0, err);
	if (rc != DS_OK)
		return rc;
	made = 1;
	rc = ds_io_guard(r.tmp, err);
	if (rc != DS_OK)
		goto out;
	guarded = 1;
	for (size_t i = 0; i < n; i++) {
		rc = restore_archive(&r, archives[i], i == 0, err);
		if (rc != DS_OK)
			goto out;
	}
	/* the directories a storage needs, whatever the archive held */
	for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		rc = ds_path_join(p, sizeof(p), r.tmp, subdirs[i], err);
		if (rc == DS_OK)
			rc = ds_io_mkdir(p, 0755, 1, err);
		if (rc != DS_OK)
			goto out;
	}
	rc = restore_serial(&r, &stats->tid, err);
	if (rc != DS_OK)
		goto out;
	ds_io_unguard(r.tmp);
	guarded = 0;
	/* through the engine once: it must open, and a closed storage is a
	 * snapshot ("shutdown") with its lock files, as a storage closed
	 * cleanly is */
	rc = ds_storage_open(r.tmp, DS_OPEN_NOTHREAD, &s, err);
	if (rc == DS_OK)
		rc = ds_storage_close(s, 0, err);
	if (rc != DS_OK) {
		rc = ds_error_prefix(err, rc, "the restored storage "
		                     "does not open");
		goto out;
	}
	if (!opts->no_check) {
		/* in place: nobody else knows the temporary directory, and
		 * its config/snapshot.conf (the original server's) must not
		 * be used */
		copts.log = opts->log;
		copts.log_ctx = opts->log_ctx;
		copts.no_snapshot = 1;
		rc = ds_check(r.tmp, &copts, &stats->check, err);
		if (rc != DS_OK) {
			rc = ds_error_prefix(err, rc, "the restored "
			                     "storage fails the check");
			goto out;
		}
	}
	/* every file and directory of the new tree durable before it
	 * appears under its name */
	fd = open(r.tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		rc = ds_error_sys(err, errno, "open directory", r.tmp);
		goto out;
	}
	rc = ds_io_syncfs(fd, r.tmp, err);
	if (rc != DS_OK)
		goto out;
	if (lstat(dir, &sb) == 0) {
		rc = ds_error_set(err, DS_EEXIST, "%s: it appeared "
		                  "while the restore ran", dir);
		goto out;
	}
	rc = ds_io_rename(r.tmp, dir, err);
	if (rc != DS_OK)
		goto out;
	made = 0;
	/* the new name durable: the storage exists */
	rc = ds_io_fsync_dir(parent, err);
out:
	if (fd >= 0)
		close(fd);
	if (guarded)
		ds_io_unguard(r.tmp);
	if (made)
		nftw(r.tmp, restore_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return rc;
}
