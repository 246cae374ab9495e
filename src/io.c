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
 *
 * The same builds can also TRACE the calls, for the simulated power loss of
 * tests/crash/powerloss.py (ALICE / CrashMonkey style: record one clean
 * run, then rebuild what a power cut before call k would have left on disk).
 * With DS_IO_TRACE=DIR (an existing directory) every SUCCESSFUL call below
 * appends one line to DIR/trace, keyed by its call number n (the index
 * DS_FAULT_AT uses), paths made absolute with the cwd:
 *   n open INO FLAGS MODE PATH    FLAGS: creat,trunc,excl,dir or -
 *   n write INO LEN               n ftruncate INO LEN
 *   n fsync INO BLOB MODE PATH    BLOB: md5 of the file's whole content at
 *                                 that moment, kept as DIR/blobs/BLOB ("-"
 *                                 outside DS_IO_TRACE_ROOT)
 *   n fsyncdir PATH    n rename FROM TO    n mkdir MODE PATH
 *   n unlink PATH      n rmdir PATH
 *   n syncfs PATH      then a checkpoint of everything under
 *                      DS_IO_TRACE_ROOT (syncfs made all of it durable):
 *   n cp d MODE PATH   n cp f INO MODE BLOB PATH   n cpend
 * (INO from fstat; MODE octal permission bits.) One write(2) per line on
 * an O_APPEND descriptor, under a mutex (the flusher thread traces too). A
 * path with a byte outside '!'..'~' cannot be written as a line: the trace
 * ends with "ABORT ..." and the replay refuses it. Fault builds only:
 * release builds have none of this.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/types.h>
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

/* Returns 0 to proceed, or the errno to fail this call with; *np is the
 * call's number (for the trace). */
static int
io_fault(unsigned long *np)
{
	unsigned long n = __atomic_add_fetch(&io_ncalls, 1, __ATOMIC_RELAXED);

	*np = n;
	if (fault_at == 0 || n < fault_at || (!fault_sticky && n != fault_at))
		return 0;
	if (fault_errno == 0) {
		io_fault_report();
		kill(getpid(), SIGKILL);
	}
	return fault_errno;
}
#define IO_FAULT(op, path)                                              \
	unsigned long io_n_ = 0;                                        \
	do {                                                            \
		int fe_ = io_fault(&io_n_);                             \
		if (fe_ != 0)                                           \
			return ds_error_sys(err, fe_, op, path);        \
	} while (0)

/* ---- the trace (see the top of this file) ---- */
static pthread_mutex_t trace_mu = PTHREAD_MUTEX_INITIALIZER;
static int trace_fd = -1;
static char trace_dir[PATH_MAX];
static char trace_root[PATH_MAX];
static size_t trace_rootlen;
static unsigned long trace_cp_n;        /* the checkpoint's call number */

__attribute__((constructor)) static void
trace_init(void)
{
	const char *dir = getenv("DS_IO_TRACE");
	const char *root = getenv("DS_IO_TRACE_ROOT");
	char path[PATH_MAX + 16];

	if (dir == NULL || *dir == '\0' ||
	    strlen(dir) >= sizeof(trace_dir) - 64)
		return;
	snprintf(trace_dir, sizeof(trace_dir), "%s", dir);
	if (root != NULL && root[0] == '/' &&
	    strlen(root) < sizeof(trace_root)) {
		snprintf(trace_root, sizeof(trace_root), "%s", root);
		trace_rootlen = strlen(trace_root);
		while (trace_rootlen > 1 && trace_root[trace_rootlen - 1] == '/')
			trace_root[--trace_rootlen] = '\0';
	}
	snprintf(path, sizeof(path), "%s/blobs", trace_dir);
	(void)mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/trace", trace_dir);
	trace_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

/* One line, one write(2); called with trace_mu held. */
static void
trace_put(const char *line)
{
	size_t len = strlen(line);

	if (trace_fd >= 0 && write(trace_fd, line, len) != (ssize_t)len) {
		close(trace_fd);
		trace_fd = -1;
	}
}

/* End the trace: the replay refuses a trace with an ABORT line. */
static void
trace_abort(const char *why)
{
	char line[256];

	snprintf(line, sizeof(line), "ABORT %s\n", why);
	trace_put(line);
	if (trace_fd >= 0)
		close(trace_fd);
	trace_fd = -1;
}

/* path made absolute in out; 0, or -1 (and the trace aborted) when it
 * does not fit or holds a byte a line cannot carry. */
static int
trace_abs(const char *path, char *out, size_t outsz)
{
	char cwd[PATH_MAX];
	const unsigned char *p;
	int n;

	if (path[0] == '/')
		n = snprintf(out, outsz, "%s", path);
	else if (getcwd(cwd, sizeof(cwd)) != NULL)
		n = snprintf(out, outsz, "%s/%s", cwd, path);
	else
		n = -1;
	if (n < 0 || (size_t)n >= outsz) {
		trace_abort("path too long or no cwd");
		return -1;
	}
	for (p = (const unsigned char *)out; *p != '\0'; p++)
		if (*p <= ' ' || *p > '~') {
			trace_abort("path with a space or an odd byte");
			return -1;
		}
	return 0;
}

static int
trace_under_root(const char *abs)
{
	return trace_rootlen > 0 && strncmp(abs, trace_root, trace_rootlen) == 0 &&
	       (abs[trace_rootlen] == '/' || abs[trace_rootlen] == '\0');
}

/* Copy the content of fd into DIR/blobs/<md5> (once per content); its md5
 * in hex into hex[33]. Read through /proc/self/fd: fd may be write-only. */
static int
trace_blob(int fd, char hex[33])
{
	char path[PATH_MAX + 64];
	unsigned char md[16], *buf = NULL;
	size_t len = 0, cap = 0;
	ssize_t r;
	int in, out, i, rc = -1;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	in = open(path, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -1;
	for (;;) {
		if (cap - len < 65536) {
			unsigned char *nb = realloc(buf, cap + 65536 + cap / 2);
			if (nb == NULL)
				goto out;
			buf = nb;
			cap += 65536 + cap / 2;
		}
		r = read(in, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			goto out;
		if (r == 0)
			break;
		len += (size_t)r;
	}
	ds_md5(buf, len, md);
	for (i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	snprintf(path, sizeof(path), "%s/blobs/%s", trace_dir, hex);
	out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (out < 0) {
		rc = errno == EEXIST ? 0 : -1;
		goto out;
	}
	rc = (len == 0 || write(out, buf, len) == (ssize_t)len) ? 0 : -1;
	close(out);
out:
	close(in);
	free(buf);
	return rc;
}

/* "n OP ARG": OP on one path (fsyncdir, unlink, rmdir, syncfs) */
static void trace_checkpoint(unsigned long n);

static void
trace_path_op(unsigned long n, const char *op, const char *path)
{
	char abs[PATH_MAX], line[PATH_MAX + 128];

	pthread_mutex_lock(&trace_mu);
	if (trace_fd >= 0 && trace_abs(path, abs, sizeof(abs)) == 0) {
		snprintf(line, sizeof(line), "%lu %s %s\n", n, op, abs);
		trace_put(line);
		if (strcmp(op, "syncfs") == 0)
			trace_checkpoint(n);
	}
	pthread_mutex_unlock(&trace_mu);
}

static int
trace_cp_visit(const char *path, const struct stat *st, int type,
               struct FTW *ftw)
{
	char line[PATH_MAX + 128], hex[33];
	int fd;

	(void)ftw;
	if (trace_fd < 0)
		return 1;
	if (trace_abs(path, line, sizeof(line)) != 0)
		return 1;
	if (type == FTW_D) {
		snprintf(line, sizeof(line), "%lu cp d %o %s\n", trace_cp_n,
		         (unsigned)(st->st_mode & 07777), path);
		trace_put(line);
	} else if (type == FTW_F && S_ISREG(st->st_mode)) {
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 || trace_blob(fd, hex) != 0) {
			if (fd >= 0)
				close(fd);
			trace_abort("cannot copy a file at syncfs");
			return 1;
		}
		close(fd);
		snprintf(line, sizeof(line), "%lu cp f %lu %o %s %s\n",
		         trace_cp_n, (unsigned long)st->st_ino,
		         (unsigned)(st->st_mode & 07777), hex, path);
		trace_put(line);
	}
	return 0;
}

/* After syncfs: everything under the root is durable, as it is now. */
static void
trace_checkpoint(unsigned long n)
{
	char line[64];

	if (trace_rootlen == 0)
		return;
	trace_cp_n = n;
	if (nftw(trace_root, trace_cp_visit, 16, FTW_PHYS) != 0)
		return;
	snprintf(line, sizeof(line), "%lu cpend\n", n);
	trace_put(line);
}

static void
trace_rename(unsigned long n, const char *from, const char *to)
{
	char a[PATH_MAX], b[PATH_MAX], line[2 * PATH_MAX + 64];

	pthread_mutex_lock(&trace_mu);
	if (trace_fd >= 0 && trace_abs(from, a, sizeof(a)) == 0 &&
	    trace_abs(to, b, sizeof(b)) == 0) {
		snprintf(line, sizeof(line), "%lu rename %s %s\n", n, a, b);
		trace_put(line);
	}
	pthread_mutex_unlock(&trace_mu);
}

static void
trace_mkdir(unsigned long n, const char *path)
{
	char abs[PATH_MAX], line[PATH_MAX + 64];
	struct stat st;

	pthread_mutex_lock(&trace_mu);
	if (trace_fd >= 0 && trace_abs(path, abs, sizeof(abs)) == 0) {
		if (stat(abs, &st) != 0)
			st.st_mode = 0755;
		snprintf(line, sizeof(line), "%lu mkdir %o %s\n", n,
		         (unsigned)(st.st_mode & 07777), abs);
		trace_put(line);
	}
	pthread_mutex_unlock(&trace_mu);
}

static void
trace_open(unsigned long n, int fd, int flags, const char *path)
{
	char abs[PATH_MAX], line[PATH_MAX + 128], fl[32];
	struct stat st;

	pthread_mutex_lock(&trace_mu);
	if (trace_fd >= 0 && fstat(fd, &st) == 0 &&
	    trace_abs(path, abs, sizeof(abs)) == 0) {
		fl[0] = '\0';
		if (flags & O_CREAT)
			strcat(fl, ",creat");
		if (flags & O_TRUNC)
			strcat(fl, ",trunc");
		if (flags & O_EXCL)
			strcat(fl, ",excl");
		if (S_ISDIR(st.st_mode))
			strcat(fl, ",dir");
		snprintf(line, sizeof(line), "%lu open %lu %s %o %s\n", n,
		         (unsigned long)st.st_ino, fl[0] ? fl + 1 : "-",
		         (unsigned)(st.st_mode & 07777), abs);
		trace_put(line);
	}
	pthread_mutex_unlock(&trace_mu);
}

/* "n write INO LEN" or "n ftruncate INO LEN" */
static void
trace_len(unsigned long n, const char *op, int fd, unsigned long long len)
{
	char line[128];
	struct stat st;

	pthread_mutex_lock(&trace_mu);
	if (trace_fd >= 0 && fstat(fd, &st) == 0) {
		snprintf(line, sizeof(line), "%lu %s %lu %llu\n", n, op,
		         (unsigned long)st.st_ino, len);
		trace_put(line);
	}
	pthread_mutex_unlock(&trace_mu);
}

static void
trace_fsync(unsigned long n, int fd, const char *path)
{
	char abs[PATH_MAX], line[PATH_MAX + 128], hex[33] = "-";
	struct stat st;

	pthread_mutex_lock(&trace_mu);
	if (trace_fd >= 0 && fstat(fd, &st) == 0 &&
	    trace_abs(path, abs, sizeof(abs)) == 0) {
		if (trace_under_root(abs) && trace_blob(fd, hex) != 0)
			trace_abort("cannot copy a file at fsync");
		snprintf(line, sizeof(line), "%lu fsync %lu %s %o %s\n", n,
		         (unsigned long)st.st_ino, hex,
		         (unsigned)(st.st_mode & 07777), abs);
		trace_put(line);
	}
	pthread_mutex_unlock(&trace_mu);
}

#define TRACE(call)                                                     \
	do {                                                            \
		if (trace_fd >= 0)                                      \
			call;                                           \
	} while (0)
#else
#define IO_FAULT(op, path) \
	((void)__atomic_add_fetch(&io_ncalls, 1, __ATOMIC_RELAXED))
#define TRACE(call) ((void)0)
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
	TRACE(trace_open(io_n_, *fd, flags, path));
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
	size_t total = len;

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
	TRACE(trace_len(io_n_, "write", fd, total));
	(void)total;
	return DS_OK;
}

int
ds_io_fsync(int fd, const char *path, ds_error *err)
{
	IO_FAULT("fsync", path);
	if (fsync(fd) != 0)
		return ds_error_sys(err, errno, "fsync", path);
	TRACE(trace_fsync(io_n_, fd, path));
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
	if (rc == DS_OK)
		TRACE(trace_path_op(io_n_, "fsyncdir", dir));
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
	TRACE(trace_rename(io_n_, from, to));
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
	TRACE(trace_mkdir(io_n_, path));
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
	TRACE(trace_path_op(io_n_, "unlink", path));
	return DS_OK;
}

int
ds_io_rmdir(const char *path, ds_error *err)
{
	IO_FAULT("rmdir", path);
	if (rmdir(path) != 0)
		return ds_error_sys(err, errno, "rmdir", path);
	TRACE(trace_path_op(io_n_, "rmdir", path));
	return DS_OK;
}

int
ds_io_syncfs(int fd, const char *path, ds_error *err)
{
	IO_FAULT("syncfs", path);
	if (syncfs(fd) != 0)
		return ds_error_sys(err, errno, "syncfs", path);
	TRACE(trace_path_op(io_n_, "syncfs", path));
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
	TRACE(trace_len(io_n_, "ftruncate", fd, (unsigned long long)len));
	return DS_OK;
}

int
ds_io_chmod(const char *path, mode_t mode, ds_error *err)
{
	IO_FAULT("chmod", path);
	if (chmod(path, mode) != 0)
		return ds_error_sys(err, errno, "chmod", path);
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
