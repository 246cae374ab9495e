/*
 * replica_hook.c - what a pull with hooks (ds_replica_opts' before_apply
 * and after_apply) needs to fetch an increment without holding the
 * replica's lock: a hot standby's read-only server holds it until the
 * before-hook stops it, so the lock is taken only to commit.
 *
 * Reading the replica in place is safe: only a replication writes a
 * replica, and the pull checks under the lock, before its commit point,
 * that the replica is still at the tid the increment starts from.
 * Two such pulls are kept apart by a flock on their spool,
 * misc/.replica.watch (a plain ds replica spools to
 * misc/.replica.incoming under the replica's lock).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "replica_internal.h"

int
replica_hook_read(const char *home, ds_layout layout, const char *name,
                  size_t max, unsigned char **buf, size_t *len, ds_error *err)
{
	char rel[DS_RELPATH_MAX], a[DS_PATH_MAX], path[DS_PATH_MAX];
	int rc;

	if ((rc = ds_layout_name_to_path(layout, name, rel, sizeof(rel),
	                                 err)) != DS_OK ||
	    (rc = ds_path_join(a, sizeof(a), home, "A", err)) != DS_OK ||
	    (rc = ds_path_join(path, sizeof(path), a, rel, err)) != DS_OK)
		return rc;
	return ds_file_read(path, max, buf, len, err);
}

/* 1 when HOME/sub has no entry, 0 when it has one, -1 (errno) on error. */
static int
replica_hook_empty(const char *home, const char *sub)
{
	char path[DS_PATH_MAX];
	struct dirent *de;
	DIR *d;
	int empty = 1;

	if (ds_path_join(path, sizeof(path), home, sub, NULL) != DS_OK)
		return -1;
	d = opendir(path);
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			empty = 0;
			break;
		}
	closedir(d);
	return empty;
}

static int
replica_hook_x(const char *home, ds_layout layout, const char *name,
               uint64_t *v, ds_error *err)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	int rc;

	rc = replica_hook_read(home, layout, name, 64, &buf, &len, err);
	if (rc == DS_OK)
		rc = ds_xfile_decode(buf, len, name, v, err);
	free(buf);
	return rc;
}

int
replica_hook_peek(const char *home, const ds_config *cfg, ds_tid *tid,
                  ds_oid *oid, ds_error *err)
{
	int j = replica_hook_empty(home, "journal");
	int b = replica_hook_empty(home, "B");
	int rc;

	if (j < 0 || b < 0)
		return ds_error_sys(err, errno, "replica: list", home);
	if (!j || !b) {
		ds_storage *s = NULL;

		/* work left in journal/ or B/ (a crash, a pending
		 * increment): A is not the replica's state until recovered */
		rc = ds_storage_open(home, DS_OPEN_NOTHREAD |
		                     DS_OPEN_SYNCHRONOUS, &s, err);
		if (rc == DS_ELOCKED || rc == DS_EBUSY)
			return ds_error_prefix(err, rc, "replica %s is in use "
			                       "and needs recovery first", home);
		if (rc != DS_OK)
			return rc;
		rc = ds_storage_close(s, 0, err);
		if (rc != DS_OK)
			return rc;
	}
	rc = replica_hook_x(home, cfg->layout, "x.serial", tid, err);
	if (rc == DS_OK)
		rc = replica_hook_x(home, cfg->layout, "x.oid", oid, err);
	if (rc != DS_OK)
		return ds_error_prefix(err, rc, "replica %s", home);
	return DS_OK;
}

int
replica_hook_spool(const char *path, int *fd, ds_error *err)
{
	int rc;

	/* not O_EXCL: a killed run's file is reused once its flock is
	 * gone with that process */
	rc = ds_io_open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640, fd, err);
	if (rc != DS_OK)
		return rc;
	rc = ds_io_flock(*fd, LOCK_EX | LOCK_NB, path, err);
	if (rc != DS_OK) {
		int e = err ? err->sys_errno : 0;

		close(*fd);
		*fd = -1;
		if (e == EWOULDBLOCK)
			return ds_error_set(err, DS_ELOCKED, "%s is in use by "
			                    "another ds replica with hooks", path);
		return rc;
	}
	rc = ds_io_ftruncate(*fd, 0, path, err);
	if (rc != DS_OK) {
		close(*fd);
		*fd = -1;
	}
	return rc;
}

int
replica_hook_still_ours(const char *path, int fd, ds_error *err)
{
	struct stat a, b;

	if (fd < 0 || fstat(fd, &a) != 0 || lstat(path, &b) != 0 ||
	    a.st_ino != b.st_ino || a.st_dev != b.st_dev)
		return ds_error_set(err, DS_EBUSY, "%s was replaced while the "
		                    "increment was fetched: abandoned, try "
		                    "again", path);
	return DS_OK;
}

void
replica_hook_drop(const char *path, int *fd)
{
	if (*fd >= 0) {
		/* removed while our flock is held: nobody else's file */
		ds_io_unlink(path, NULL);
		close(*fd);
		*fd = -1;
	}
}
