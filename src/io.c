/*
 * io.c - the one layer through which every durability-relevant system call
 * passes (SQLite's VFS idea, reduced to what we need).
 *
 * Why a layer: a storage tool earns trust only if we can show what happens
 * when the Nth write, fsync or rename fails or the process dies right there.
 * With -DDS_FAULT_INJECTION every call below first asks io_fault() whether to
 * fail (ENOSPC or EIO, once or from then on) or to kill the process with
 * SIGKILL; the environment chooses the call index (see internal.h). Release
 * builds compile io_fault() away.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* Calls made so far; the flusher thread and a committing thread both
 * count, hence the atomic increments. */
static unsigned long io_ncalls;

unsigned long
ds_io_calls(void)
{
	return __atomic_load_n(&io_ncalls, __ATOMIC_RELAXED);
}

#ifdef DS_FAULT_INJECTION
static unsigned long fault_at;  /* 0: never */
static int fault_errno;         /* 0: kill */
static int fault_sticky;
static const char *fault_count_file;

static void
io_fault_report(void)
{
	FILE *f;

	if (fault_count_file == NULL)
		return;
	f = fopen(fault_count_file, "w");
	if (f == NULL)
		return;
	fprintf(f, "%lu\n", ds_io_calls());
	fclose(f);
}

__attribute__((constructor)) static void
io_fault_init(void)
{
	const char *at = getenv("DS_FAULT_AT");
	const char *kind = getenv("DS_FAULT_KIND");
	const char *sticky = getenv("DS_FAULT_STICKY");

	fault_count_file = getenv("DS_FAULT_COUNT_FILE");
	if (fault_count_file != NULL)
		atexit(io_fault_report);
	if (at == NULL)
		return;
	fault_at = strtoul(at, NULL, 10);
	if (kind == NULL || strcmp(kind, "kill") == 0)
		fault_errno = 0;
	else if (strcmp(kind, "enospc") == 0)
		fault_errno = ENOSPC;
	else
		fault_errno = EIO;
	fault_sticky = sticky != NULL && strcmp(sticky, "1") == 0;
}

/* Returns 0 to proceed, or the errno to fail this call with. */
static int
io_fault(void)
{
	unsigned long n = __atomic_add_fetch(&io_ncalls, 1, __ATOMIC_RELAXED);

	if (fault_at == 0 || n < fault_at || (!fault_sticky && n != fault_at))
		return 0;
	if (fault_errno == 0) {
		io_fault_report();
		kill(getpid(), SIGKILL);
	}
	return fault_errno;
}
#define IO_FAULT(op, path)                                              \
	do {                                                            \
		int fe_ = io_fault();                                   \
		if (fe_ != 0)                                           \
			return ds_error_sys(err, fe_, op, path);        \
	} while (0)
#else
#define IO_FAULT(op, path) \
	((void)__atomic_add_fetch(&io_ncalls, 1, __ATOMIC_RELAXED))
#endif

int
ds_io_open(const char *path, int flags, mode_t mode, int *fd, ds_error *err)
{
	IO_FAULT("open", path);
	do
		*fd = open(path, flags | O_CLOEXEC, mode);
	while (*fd < 0 && errno == EINTR);
	if (*fd < 0)
		return ds_error_sys(err, errno, "open", path);
	return DS_OK;
}

int
ds_io_close(int fd, const char *path, ds_error *err)
{
	/* close() can report a deferred write error (NFS); not retried on
	 * EINTR because the descriptor is gone either way on Linux. */
	if (close(fd) != 0 && errno != EINTR)
		return ds_error_sys(err, errno, "close", path);
	return DS_OK;
}

int
ds_io_write_all(int fd, const void *buf, size_t len, const char *path,
                ds_error *err)
{
	const unsigned char *p = buf;

	IO_FAULT("write", path);
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return ds_error_sys(err, errno, "write", path);
		}
		p += n;
		len -= (size_t)n;
	}
	return DS_OK;
}

int
ds_io_fsync(int fd, const char *path, ds_error *err)
{
	IO_FAULT("fsync", path);
	if (fsync(fd) != 0)
		return ds_error_sys(err, errno, "fsync", path);
	return DS_OK;
}

int
ds_io_fsync_dir(const char *dir, ds_error *err)
{
	int fd, rc;

	IO_FAULT("fsync", dir);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return ds_error_sys(err, errno, "open directory", dir);
	rc = DS_OK;
	if (fsync(fd) != 0)
		rc = ds_error_sys(err, errno, "fsync directory", dir);
	close(fd);
	return rc;
}

int
ds_io_rename(const char *from, const char *to, ds_error *err)
{
	IO_FAULT("rename", from);
	if (rename(from, to) != 0) {
		int e = errno;
		char what[64 + 2 * 4096];
		snprintf(what, sizeof(what), "%s to %s", from, to);
		return ds_error_sys(err, e, "rename", what);
	}
	return DS_OK;
}

int
ds_io_mkdir(const char *path, mode_t mode, int exist_ok, ds_error *err)
{
	IO_FAULT("mkdir", path);
	if (mkdir(path, mode) != 0) {
		struct stat st;
		if (errno == EEXIST && exist_ok && stat(path, &st) == 0 &&
		    S_ISDIR(st.st_mode))
			return DS_OK;
		return ds_error_sys(err, errno, "mkdir", path);
	}
	return DS_OK;
}

int
ds_io_mkdirs(const char *path, mode_t mode, ds_error *err)
{
	char buf[4096];
	size_t len = strlen(path);
	struct stat st;
	char *slash;
	int rc;

	/* Most calls (one per file a replica increment applies) find the
	 * directory there already: one stat, no mkdir and no fault point. */
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return DS_OK;
	if (len >= sizeof(buf))
		return ds_error_set(err, DS_EINVAL, "mkdir %s: path too long",
		                    path);
	memcpy(buf, path, len + 1);
	while (len > 1 && buf[len - 1] == '/')
		buf[--len] = '\0';
	/* the parent first (recursively, from the deepest existing one), so
	 * no mkdir is attempted on an ancestor that exists */
	slash = strrchr(buf, '/');
	if (slash != NULL && slash != buf) {
		*slash = '\0';
		rc = ds_io_mkdirs(buf, mode, err);
		*slash = '/';
		if (rc != DS_OK)
			return rc;
	}
	return ds_io_mkdir(buf, mode, 1, err);
}

int
ds_io_unlink(const char *path, ds_error *err)
{
	IO_FAULT("unlink", path);
	if (unlink(path) != 0)
		return ds_error_sys(err, errno, "unlink", path);
	return DS_OK;
}

int
ds_io_rmdir(const char *path, ds_error *err)
{
	IO_FAULT("rmdir", path);
	if (rmdir(path) != 0)
		return ds_error_sys(err, errno, "rmdir", path);
	return DS_OK;
}

int
ds_io_syncfs(int fd, const char *path, ds_error *err)
{
	IO_FAULT("syncfs", path);
	if (syncfs(fd) != 0)
		return ds_error_sys(err, errno, "syncfs", path);
	return DS_OK;
}

int
ds_io_flock(int fd, int operation, const char *path, ds_error *err)
{
	IO_FAULT("flock", path);
	while (flock(fd, operation) != 0) {
		if (errno == EINTR)
			continue;
		return ds_error_sys(err, errno, "flock", path);
	}
	return DS_OK;
}

int
ds_io_ftruncate(int fd, off_t len, const char *path, ds_error *err)
{
	IO_FAULT("ftruncate", path);
	if (ftruncate(fd, len) != 0)
		return ds_error_sys(err, errno, "ftruncate", path);
	return DS_OK;
}

int
ds_io_write_file(const char *path, const void *buf, size_t len, mode_t mode,
                 int excl, int do_sync, ds_error *err)
{
	int fd, rc;
	int flags = O_WRONLY | O_CREAT | (excl ? O_EXCL : O_TRUNC);

	rc = ds_io_open(path, flags, mode, &fd, err);
	if (rc != DS_OK)
		return rc;
	rc = ds_io_write_all(fd, buf, len, path, err);
	if (rc == DS_OK && do_sync)
		rc = ds_io_fsync(fd, path, err);
	if (rc != DS_OK) {
		close(fd);
		return rc;
	}
	return ds_io_close(fd, path, err);
}
