/*
 * lock.c - misc/lock and misc/sublock, compatible with the original.
 *
 * The original (zc.lockfile) opens the lock file read-write, creating it if
 * missing, takes flock(LOCK_EX|LOCK_NB) on it, and once it holds the lock
 * writes " <pid>\n" at offset 0 and truncates there. It never deletes the
 * file, and the kernel drops the lock when the holder dies. We do exactly
 * the same, so a C process and a Python process exclude each other, and the
 * pid in the file names the holder for whoever is refused.
 *
 * A process that only reads (ds cat, ds history, ds check, ds whatsnew)
 * takes the same lock without writing its pid (ds_lock_acquire_quiet), so
 * that a read-only command leaves misc/ byte for byte as it was. The pid
 * in the file then still names the last writer (a refusal names that pid:
 * readers hold the lock only for the moment they read).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "internal.h"

struct ds_lock {
	int fd;
	char *path;
};

/* The holder's pid as its file says, for the refusal message: the digits
 * of " <pid>\n", or NULL when the file holds no pid (yet). */
static const char *
lock_holder(int fd, char *buf, size_t bufsz)
{
	ssize_t n;
	char *p, *end;

	do
		n = pread(fd, buf, bufsz - 1, 0);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	for (p = buf; *p == ' ' || *p == '\t'; p++)
		;
	for (end = p; *end >= '0' && *end <= '9'; end++)
		;
	if (end == p)
		return NULL;
	*end = '\0';
	return p;
}

static int
lock_acquire(const char *path, int write_pid, ds_lock **out, ds_error *err)
{
	ds_lock *lock = NULL;
	ds_error lerr;
	char content[32];
	int fd = -1, rc, n;

	*out = NULL;
	rc = ds_io_open(path, O_RDWR | O_CREAT, 0644, &fd, err);
	if (rc != DS_OK)
		return rc;
	ds_error_clear(&lerr);
	rc = ds_io_flock(fd, LOCK_EX | LOCK_NB, path, &lerr);
	if (rc != DS_OK) {
		if (lerr.sys_errno == EWOULDBLOCK) {
			char buf[64];
			const char *pid = lock_holder(fd, buf, sizeof(buf));
			if (pid != NULL)
				rc = ds_error_set(err, DS_ELOCKED,
				                  "%s is held by process %s", path,
				                  pid);
			else
				rc = ds_error_set(err, DS_ELOCKED,
				                  "%s is held by another process "
				                  "(its pid is not in the file yet)",
				                  path);
		} else if (err != NULL) {
			*err = lerr;
		}
		goto out;
	}

	/* Ours: say who holds it. Not fsynced: the pid only informs whoever
	 * is refused, and means nothing after a crash. */
	n = snprintf(content, sizeof(content), " %ld\n", (long)getpid());
	if (write_pid &&
	    ((rc = ds_io_write_all(fd, content, (size_t)n, path, err)) != DS_OK ||
	     (rc = ds_io_ftruncate(fd, n, path, err)) != DS_OK))
		goto out;

	lock = calloc(1, sizeof(*lock));
	if (lock == NULL || (lock->path = strdup(path)) == NULL) {
		rc = ds_error_set(err, DS_ENOMEM, "lock %s: out of memory", path);
		goto out;
	}
	lock->fd = fd;
	fd = -1;
	*out = lock;
	lock = NULL;
out:
	if (lock != NULL) {
		free(lock->path);
		free(lock);
	}
	if (fd >= 0)
		close(fd);  /* also drops the flock if we took it */
	return rc;
}

int
ds_lock_acquire(const char *path, ds_lock **out, ds_error *err)
{
	return lock_acquire(path, 1, out, err);
}

int
ds_lock_acquire_quiet(const char *path, ds_lock **out, ds_error *err)
{
	return lock_acquire(path, 0, out, err);
}

void
ds_lock_release(ds_lock *lock)
{
	if (lock == NULL)
		return;
	/* Explicit unlock: a child forked without exec shares the open file
	 * description, and close alone would leave it locked for the child. */
	ds_io_flock(lock->fd, LOCK_UN, lock->path, NULL);
	ds_io_close(lock->fd, lock->path, NULL);
	free(lock->path);
	free(lock);
}
