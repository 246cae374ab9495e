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
#include <sys/syscall.h>
#include <unistd.h>
#ifdef SYS_openat2
#include <linux/openat2.h>
#endif

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

/* ---- writes beneath a storage home never follow a symlink ----
 *
 * A storage's home may be reached through a symlink (/srv/db -> /data/db),
 * but nothing beneath it may be one: a directory under A/, B/, journal/ or
 * misc/ that is a symlink would make a flush, an apply or a lock land
 * outside the storage, wherever the link points. The engine and the
 * replica side register the home they write into (ds_io_guard); every
 * call of this layer that creates, replaces or removes a path beneath a
 * registered home then opens that path's directory from the home with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) (where the kernel lacks
 * openat2, by a walk that opens each component with O_NOFOLLOW) and acts
 * on the last component with the *at() call, which does not follow it
 * either (O_NOFOLLOW for an open; mkdir, rename and unlink never do). A
 * symlink is refused with DS_ECORRUPT, "<path> is a symlink". Reads are
 * not concerned, and neither are paths outside every registered home. */

struct io_guard {
	struct io_guard *next;
	char *home;              /* without trailing slashes */
	size_t len;
	int fd;                  /* O_PATH descriptor of the home */
	unsigned refs;
};

static pthread_mutex_t guard_mu = PTHREAD_MUTEX_INITIALIZER;
static struct io_guard *guards;

int
ds_io_guard(const char *home, ds_error *err)
{
	struct io_guard *g;
	size_t len = strlen(home);
	int rc = DS_OK;

	while (len > 1 && home[len - 1] == '/')
		len--;
	pthread_mutex_lock(&guard_mu);
	for (g = guards; g != NULL; g = g->next)
		if (g->len == len && strncmp(g->home, home, len) == 0) {
			g->refs++;
			goto out;
		}
	g = calloc(1, sizeof(*g));
	if (g == NULL || (g->home = strndup(home, len)) == NULL) {
		free(g);
		rc = ds_error_set(err, DS_ENOMEM, "open %s: out of memory",
		                  home);
		goto out;
	}
	g->len = len;
	g->refs = 1;
	/* the home itself may be a symlink: followed */
	g->fd = open(g->home, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (g->fd < 0) {
		rc = ds_error_sys(err, errno, "open directory", g->home);
		free(g->home);
		free(g);
		goto out;
	}
	g->next = guards;
	guards = g;
out:
	pthread_mutex_unlock(&guard_mu);
	return rc;
}

void
ds_io_unguard(const char *home)
{
	struct io_guard **pp, *g;
	size_t len;

	if (home == NULL)
		return;
	len = strlen(home);
	while (len > 1 && home[len - 1] == '/')
		len--;
	pthread_mutex_lock(&guard_mu);
	for (pp = &guards; (g = *pp) != NULL; pp = &g->next) {
		if (g->len != len || strncmp(g->home, home, len) != 0)
			continue;
		if (--g->refs == 0) {
			*pp = g->next;
			close(g->fd);
			free(g->home);
			free(g);
		}
		break;
	}
	pthread_mutex_unlock(&guard_mu);
}

/* The registered home that path lies beneath (the longest one): its
 * descriptor in *fd and the offset of path's part below it in *rel;
 * 0 when there is none. The home stays registered while a write beneath
 * it runs (its owner unregisters it after its last write). */
static int
io_guard_find(const char *path, int *fd, size_t *rel)
{
	const struct io_guard *g, *best = NULL;

	pthread_mutex_lock(&guard_mu);
	for (g = guards; g != NULL; g = g->next)
		if (strncmp(path, g->home, g->len) == 0 &&
		    (path[g->len] == '/' || g->home[g->len - 1] == '/') &&
		    (best == NULL || g->len > best->len))
			best = g;
	if (best != NULL) {
		*fd = best->fd;
		*rel = best->len;
		while (path[*rel] == '/')
			(*rel)++;
	}
	pthread_mutex_unlock(&guard_mu);
	return best != NULL && path[*rel] != '\0';
}

/* Why resolving path beneath its home failed (errnum from the resolution):
 * the first component below the home that is a symlink is named; else
 * the system error. */
static int
io_beneath_error(ds_error *err, int errnum, const char *op, const char *path,
                 size_t rel)
{
	char buf[PATH_MAX];
	struct stat st;
	size_t n = strlen(path);

	if (n >= sizeof(buf))
		return ds_error_sys(err, errnum, op, path);
	memcpy(buf, path, n + 1);
	for (size_t i = rel; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		if (i == rel || buf[i - 1] == '/')
			continue;
		buf[i] = '\0';
		if (lstat(buf, &st) != 0)
			break;
		if (S_ISLNK(st.st_mode))
			return ds_error_set(err, DS_ECORRUPT, "%s %s: %s is a "
			                    "symlink (nothing in a storage is "
			                    "written through a symlink)", op,
			                    path, buf);
		if (!S_ISDIR(st.st_mode))
			break;
		buf[i] = path[i];
	}
	if (errnum == EXDEV)    /* ".." leading out of the home */
		return ds_error_set(err, DS_EINVAL, "%s %s: outside the "
		                    "storage", op, path);
	return ds_error_sys(err, errnum, op, path);
}

#ifdef SYS_openat2
static int io_no_openat2;    /* the kernel said ENOSYS once */
#endif

void
ds_io_use_openat2(int use)
{
#ifdef SYS_openat2
	__atomic_store_n(&io_no_openat2, !use, __ATOMIC_RELAXED);
#else
	(void)use;
#endif
}

/* Open directory rel (relative, not empty) beneath dirfd base without
 * following any symlink: a descriptor usable by the *at() calls (O_PATH)
 * or, with flags O_RDONLY, also for reading the directory; -1 with errno
 * (ELOOP or ENOTDIR for a symlink, EXDEV for "..", ...). */
static int
io_open_beneath(int base, const char *rel, int flags)
{
	char comp[NAME_MAX + 1];
	const char *p, *q, *r;
	int fd, nfd;

#ifdef SYS_openat2
	if (!__atomic_load_n(&io_no_openat2, __ATOMIC_RELAXED)) {
		struct open_how how;
		int tries = 0;

		memset(&how, 0, sizeof(how));
		how.flags = (uint64_t)(flags | O_DIRECTORY | O_CLOEXEC);
		how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
		              RESOLVE_NO_MAGICLINKS;
		do
			fd = (int)syscall(SYS_openat2, base, rel, &how,
			                  sizeof(how));
		while (fd < 0 && (errno == EINTR ||
		                  (errno == EAGAIN && ++tries < 16)));
		if (fd >= 0 || errno != ENOSYS)
			return fd;
		__atomic_store_n(&io_no_openat2, 1, __ATOMIC_RELAXED);
	}
#endif
	/* one component at a time, none followed */
	fd = dup(base);
	if (fd < 0)
		return -1;
	for (p = rel; *p != '\0'; p = q) {
		while (*p == '/')
			p++;
		if (*p == '\0')
			break;
		for (q = p; *q != '\0' && *q != '/'; q++)
			;
		if ((size_t)(q - p) > NAME_MAX) {
			close(fd);
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(comp, p, (size_t)(q - p));
		comp[q - p] = '\0';
		if (strcmp(comp, "..") == 0) {
			close(fd);
			errno = EXDEV;
			return -1;
		}
		for (r = q; *r == '/'; r++)
			;
		/* the last component opened as asked, the others O_PATH */
		nfd = openat(fd, comp, (*r == '\0' ? flags : O_PATH) |
		             O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (nfd < 0) {
			int e = errno;
			close(fd);
			errno = e;
			return -1;
		}
		close(fd);
		fd = nfd;
	}
	return fd;
}

/* Where an *at() call acts on path: dfd and name. Beneath a registered
 * home, dfd is path's directory opened without following symlinks and
 * name its last component; elsewhere AT_FDCWD and the whole path. */
struct io_at {
	int dfd;
	int owned;               /* dfd is ours to close */
	int guarded;
	size_t rel;              /* offset of the part below the home */
	const char *name;
};

static int
io_at_open(const char *path, const char *op, struct io_at *at, ds_error *err)
{
	char dir[PATH_MAX];
	const char *slash;
	int home;

	at->dfd = AT_FDCWD;
	at->owned = 0;
	at->name = path;
	at->guarded = io_guard_find(path, &home, &at->rel);
	if (!at->guarded)
		return DS_OK;
	slash = strrchr(path + at->rel, '/');
	if (slash == NULL) {
		at->dfd = home;
		at->name = path + at->rel;
		return DS_OK;
	}
	if ((size_t)(slash - (path + at->rel)) >= sizeof(dir))
		return ds_error_set(err, DS_EINVAL, "%s %s: path too long", op,
		                    path);
	memcpy(dir, path + at->rel, (size_t)(slash - (path + at->rel)));
	dir[slash - (path + at->rel)] = '\0';
	at->dfd = io_open_beneath(home, dir, O_PATH);
	if (at->dfd < 0)
		return io_beneath_error(err, errno, op, path, at->rel);
	at->owned = 1;
	at->name = slash + 1;
	return DS_OK;
}

static void
io_at_close(struct io_at *at)
{
	if (at->owned)
		close(at->dfd);
	at->owned = 0;
}

/* A failed *at() call on at's last component: a symlink there (ELOOP
 * from O_NOFOLLOW) is named like one on the way. */
static int
io_at_error(struct io_at *at, int errnum, const char *op, const char *path,
            ds_error *err)
{
	if (at->guarded && (errnum == ELOOP || errnum == ENOTDIR))
		return io_beneath_error(err, errnum, op, path, at->rel);
	return ds_error_sys(err, errnum, op, path);
}

int
ds_io_open(const char *path, int flags, mode_t mode, int *fd, ds_error *err)
{
	struct io_at at;
	int rc;

	IO_FAULT("open", path);
	if (!(flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC))) {
		do
			*fd = open(path, flags | O_CLOEXEC, mode);
		while (*fd < 0 && errno == EINTR);
		if (*fd < 0)
			return ds_error_sys(err, errno, "open", path);
		TRACE(trace_open(io_n_, *fd, flags, path));
		return DS_OK;
	}
	/* opened for writing: beneath a home, through no symlink */
	rc = io_at_open(path, "open", &at, err);
	if (rc != DS_OK)
		return rc;
	if (at.guarded)
		flags |= O_NOFOLLOW;
	do
		*fd = openat(at.dfd, at.name, flags | O_CLOEXEC, mode);
	while (*fd < 0 && errno == EINTR);
	if (*fd < 0)
		rc = io_at_error(&at, errno, "open", path, err);
	io_at_close(&at);
	if (rc != DS_OK)
		return rc;
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

/* ---- fsyncs issued together ----
 *
 * Each fsync of a small file ends in a flush of the disk's write cache,
 * the expensive part (a millisecond or more on a virtual disk). Issued one
 * after the other, a transaction of k files costs k flushes; issued at
 * the same time from several threads, they wait on the same journal
 * commit of the filesystem (ext4's jbd2, XFS's log force) and the block
 * layer merges their cache flushes, so the group costs about one. The
 * guarantee is the sequential one: when ds_io_fsync_many returns DS_OK,
 * every member's content (a file) or entries (a directory) are durable,
 * exactly as after n calls of ds_io_fsync; while it runs, any subset of
 * the members may be durable already, in any order. Callers only group
 * what needs no order among itself (the files of one transaction
 * directory and that directory; sibling directories of one flush level),
 * and start what depends on the group (a rename) after it returned.
 *
 * A process-wide pool of detached threads runs the fsyncs; the caller
 * runs members too, so a group finishes even if no thread can be made.
 * Threads are made on demand (up to IO_SYNC_THREADS) and then wait for
 * work for the life of the process. A child after fork() starts with an
 * empty pool (pthread_atfork). */

#define IO_SYNC_THREADS 32

struct io_sync_job {
	struct io_sync_job *next;
	int fd;
	int err;                   /* errno of the fsync, 0: done */
	int *pending;              /* the group's count of unfinished jobs */
};

static pthread_mutex_t sync_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sync_work_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t sync_done_cv = PTHREAD_COND_INITIALIZER;
static struct io_sync_job *sync_queue;
static int sync_threads, sync_idle;
static pthread_once_t sync_once = PTHREAD_ONCE_INIT;

static void
io_sync_prefork(void)
{
	pthread_mutex_lock(&sync_mu);
}

static void
io_sync_postfork_parent(void)
{
	pthread_mutex_unlock(&sync_mu);
}

static void
io_sync_postfork_child(void)
{
	/* the pool's threads did not survive the fork; a group in flight
	 * in the parent is the parent's (its caller is not in the child) */
	sync_queue = NULL;
	sync_threads = sync_idle = 0;
	pthread_mutex_unlock(&sync_mu);
}

static void
io_sync_init(void)
{
	(void)pthread_atfork(io_sync_prefork, io_sync_postfork_parent,
	                     io_sync_postfork_child);
}

/* Run one queued job; called with sync_mu held, returns with it held. */
static void
io_sync_run_locked(void)
{
	struct io_sync_job *j = sync_queue;

	sync_queue = j->next;
	pthread_mutex_unlock(&sync_mu);
	j->err = fsync(j->fd) == 0 ? 0 : errno;
	pthread_mutex_lock(&sync_mu);
	if (--*j->pending == 0)
		pthread_cond_broadcast(&sync_done_cv);
}

static void *
io_sync_worker(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&sync_mu);
	for (;;) {
		while (sync_queue == NULL) {
			sync_idle++;
			pthread_cond_wait(&sync_work_cv, &sync_mu);
			sync_idle--;
		}
		io_sync_run_locked();
	}
	return NULL;
}

int
ds_io_fsync_many(const int *fds, const char *const *paths,
                 const unsigned char *isdir, size_t n, ds_error *err)
{
	struct io_sync_job stack_jobs[16], *jobs = stack_jobs;
	unsigned long nums_stack[16], *nums = nums_stack;
	int pending = (int)n, rc = DS_OK;
	size_t i, want;

	if (n == 0)
		return DS_OK;
	if (n > 16) {
		jobs = calloc(n, sizeof(*jobs));
		nums = calloc(n, sizeof(*nums));
		if (jobs == NULL || nums == NULL) {
			/* no memory for a group: one after the other */
			if (jobs != stack_jobs)
				free(jobs);
			if (nums != nums_stack)
				free(nums);
			for (i = 0; i < n && rc == DS_OK; i++)
				rc = ds_io_fsync(fds[i], paths[i], err);
			return rc;
		}
	}
	/* Fault hooks first, one call number per member in order, before
	 * any member runs: an injected kill or error hits the group at a
	 * reproducible index. */
	for (i = 0; i < n; i++) {
#ifdef DS_FAULT_INJECTION
		int fe = io_fault(&nums[i]);
		if (fe != 0) {
			rc = ds_error_sys(err, fe, isdir[i] ? "fsync directory"
			                  : "fsync", paths[i]);
			goto out;
		}
#else
		IO_FAULT("fsync", paths[i]);
		nums[i] = 0;
#endif
	}
	pthread_once(&sync_once, io_sync_init);
	pthread_mutex_lock(&sync_mu);
	for (i = n; i-- > 0;) {
		jobs[i].fd = fds[i];
		jobs[i].err = 0;
		jobs[i].pending = &pending;
		jobs[i].next = sync_queue;
		sync_queue = &jobs[i];
	}
	/* the caller takes one member itself; threads for the others */
	want = n - 1;
	while ((size_t)sync_idle < want && sync_threads < IO_SYNC_THREADS) {
		pthread_t th;
		pthread_attr_t at;
		int ok;

		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&at, 64 * 1024);
		ok = pthread_create(&th, &at, io_sync_worker, NULL) == 0;
		pthread_attr_destroy(&at);
		if (!ok)
			break;
		sync_threads++;
		want--;
	}
	pthread_cond_broadcast(&sync_work_cv);
	while (pending > 0) {
		if (sync_queue != NULL)
			io_sync_run_locked();
		else
			pthread_cond_wait(&sync_done_cv, &sync_mu);
	}
	pthread_mutex_unlock(&sync_mu);
	for (i = 0; i < n; i++)
		if (jobs[i].err != 0) {
			rc = ds_error_sys(err, jobs[i].err, isdir[i]
			                  ? "fsync directory" : "fsync", paths[i]);
			goto out;
		}
	/* in member order, once all are durable */
	for (i = 0; i < n; i++) {
		if (isdir[i])
			TRACE(trace_path_op(nums[i], "fsyncdir", paths[i]));
		else
			TRACE(trace_fsync(nums[i], fds[i], paths[i]));
	}
out:
	if (jobs != stack_jobs)
		free(jobs);
	if (nums != nums_stack)
		free(nums);
	return rc;
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

/* The length of path's directory part (up to its last slash). */
static size_t
io_dirlen(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash == NULL ? 0 : (size_t)(slash - path);
}

int
ds_io_rename(const char *from, const char *to, ds_error *err)
{
	struct io_at af, at;
	int rc, same;

	IO_FAULT("rename", from);
	rc = io_at_open(from, "rename", &af, err);
	if (rc != DS_OK)
		return rc;
	/* the common case (a temporary name renamed over its target) needs
	 * one directory resolved, not two */
	same = af.guarded && io_dirlen(from) == io_dirlen(to) &&
	       strncmp(from, to, io_dirlen(from)) == 0;
	if (same) {
		at = af;
		at.owned = 0;
		at.name = to + (af.name - from);
	} else {
		rc = io_at_open(to, "rename", &at, err);
		if (rc != DS_OK) {
			io_at_close(&af);
			return rc;
		}
	}
	if (renameat(af.dfd, af.name, at.dfd, at.name) != 0) {
		int e = errno;
		char what[64 + 2 * 4096];
		snprintf(what, sizeof(what), "%s to %s", from, to);
		rc = ds_error_sys(err, e, "rename", what);
	}
	io_at_close(&at);
	io_at_close(&af);
	if (rc != DS_OK)
		return rc;
	TRACE(trace_rename(io_n_, from, to));
	return DS_OK;
}

int
ds_io_mkdir(const char *path, mode_t mode, int exist_ok, ds_error *err)
{
	struct io_at at;
	struct stat st;
	int rc = DS_OK, e;

	IO_FAULT("mkdir", path);
	rc = io_at_open(path, "mkdir", &at, err);
	if (rc != DS_OK)
		return rc;
	if (mkdirat(at.dfd, at.name, mode) == 0) {
		io_at_close(&at);
		TRACE(trace_mkdir(io_n_, path));
		return DS_OK;
	}
	e = errno;
	if (e == EEXIST && exist_ok &&
	    fstatat(at.dfd, at.name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISDIR(st.st_mode))
			goto out;
		/* outside a home, a symlink to a directory will do */
		if (S_ISLNK(st.st_mode) && !at.guarded &&
		    stat(path, &st) == 0 && S_ISDIR(st.st_mode))
			goto out;
		if (S_ISLNK(st.st_mode)) {
			rc = io_at_error(&at, ELOOP, "mkdir", path, err);
			goto out;
		}
	}
	rc = ds_error_sys(err, e, "mkdir", path);
out:
	io_at_close(&at);
	return rc;
}

/* Does directory path exist? 1 yes, 0 no (ENOENT), or an error (a
 * symlink beneath a home, a file in the way). */
static int
io_dir_exists(const char *path, int *exists, ds_error *err)
{
	struct stat st;
	size_t rel;
	int home, fd;

	*exists = 0;
	if (!io_guard_find(path, &home, &rel)) {
		*exists = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
		return DS_OK;
	}
	fd = io_open_beneath(home, path + rel, O_PATH);
	if (fd >= 0) {
		close(fd);
		*exists = 1;
		return DS_OK;
	}
	if (errno == ENOENT)
		return DS_OK;
	return io_beneath_error(err, errno, "mkdir", path, rel);
}

int
ds_io_mkdirs(const char *path, mode_t mode, ds_error *err)
{
	char buf[4096];
	size_t len = strlen(path);
	char *slash;
	int rc, exists;

	/* Most calls (one per file a replica increment applies) find the
	 * directory there already: one lookup, no mkdir and no fault
	 * point. */
	rc = io_dir_exists(path, &exists, err);
	if (rc != DS_OK || exists)
		return rc;
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
	struct io_at at;
	int rc;

	IO_FAULT("unlink", path);
	rc = io_at_open(path, "unlink", &at, err);
	if (rc != DS_OK)
		return rc;
	if (unlinkat(at.dfd, at.name, 0) != 0)
		rc = ds_error_sys(err, errno, "unlink", path);
	io_at_close(&at);
	if (rc != DS_OK)
		return rc;
	TRACE(trace_path_op(io_n_, "unlink", path));
	return DS_OK;
}

int
ds_io_rmdir(const char *path, ds_error *err)
{
	struct io_at at;
	int rc;

	IO_FAULT("rmdir", path);
	rc = io_at_open(path, "rmdir", &at, err);
	if (rc != DS_OK)
		return rc;
	if (unlinkat(at.dfd, at.name, AT_REMOVEDIR) != 0)
		rc = ds_error_sys(err, errno, "rmdir", path);
	io_at_close(&at);
	if (rc != DS_OK)
		return rc;
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

/* ---- calls relative to a directory the caller holds ----
 * A pack sweeps hundreds of thousands of files: resolving each one's
 * directory again from the home (an openat2 per call, above) would cost
 * more than the call itself. The sweep opens each directory once, beneath
 * A without following any symlink (ds_io_opendir_beneath), and acts on
 * its entries with the *at() calls below, which take one component and
 * do not follow it either. dir is the directory's path, for messages and
 * the trace. */

/* dir/name into buf (a path for messages and the trace). */
static const char *
io_join(const char *dir, const char *name, char *buf, size_t bufsz)
{
	if ((size_t)snprintf(buf, bufsz, "%s/%s", dir, name) >= bufsz)
		return name;
	return buf;
}

int
ds_io_opendir_beneath(int base, const char *rel, const char *path, int *fd,
                      ds_error *err)
{
	size_t plen = strlen(path), rlen = strlen(rel);

	/* listing a directory updates its atime, which a barrier would
	 * then write for every directory a sweep lists */
	*fd = io_open_beneath(base, rel, O_RDONLY | O_NOATIME);
	if (*fd < 0 && errno == EPERM)  /* not the owner's */
		*fd = io_open_beneath(base, rel, O_RDONLY);
	if (*fd >= 0)
		return DS_OK;
	if (plen >= rlen && strcmp(path + plen - rlen, rel) == 0 &&
	    (errno == ELOOP || errno == ENOTDIR))
		return io_beneath_error(err, errno, "open directory", path,
		                        plen - rlen);
	return ds_error_sys(err, errno, "open directory", path);
}

int
ds_io_renameat(int dfd, const char *dir, const char *from, const char *to,
               ds_error *err)
{
	char a[PATH_MAX], b[PATH_MAX];
	const char *pa = io_join(dir, from, a, sizeof(a));

	IO_FAULT("rename", pa);
	if (renameat(dfd, from, dfd, to) != 0) {
		int e = errno;
		char what[64 + 2 * PATH_MAX];
		snprintf(what, sizeof(what), "%s to %s", pa,
		         io_join(dir, to, b, sizeof(b)));
		return ds_error_sys(err, e, "rename", what);
	}
	TRACE(trace_rename(io_n_, pa, io_join(dir, to, b, sizeof(b))));
	return DS_OK;
}

int
ds_io_unlinkat(int dfd, const char *dir, const char *name, int flags,
               ds_error *err)
{
	char a[PATH_MAX];
	const char *pa = io_join(dir, name, a, sizeof(a));
	const char *op = (flags & AT_REMOVEDIR) ? "rmdir" : "unlink";

	IO_FAULT(op, pa);
	if (unlinkat(dfd, name, flags) != 0)
		return ds_error_sys(err, errno, op, pa);
	TRACE(trace_path_op(io_n_, op, pa));
	return DS_OK;
}

int
ds_io_fchmodat(int dfd, const char *dir, const char *name, mode_t mode,
               ds_error *err)
{
	char a[PATH_MAX];
	const char *pa = io_join(dir, name, a, sizeof(a));

	IO_FAULT("chmod", pa);
	if (fchmodat(dfd, name, mode, 0) != 0)
		return ds_error_sys(err, errno, "chmod", pa);
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

/* ---- replacing a file ----
 * A file that changes is written under a temporary name in its directory
 * and renamed over the old one, never opened for writing in place: a
 * hard link to the old file (a `cp -al` copy of the storage, rsnapshot,
 * rsync --link-dest) keeps the old content, and a reader sees the old
 * file or the new one, whole. The temporary name is DS_IO_TEMP_PREFIX
 * and the target's own name: two writers of different files never
 * collide, and writing the same file again (a replayed replica apply
 * after a crash) reuses, and so removes, what a killed run left. */

int
ds_io_is_temp(const char *name)
{
	const char *base = strrchr(name, '/');

	base = base != NULL ? base + 1 : name;
	return strncmp(base, DS_IO_TEMP_PREFIX,
	               sizeof(DS_IO_TEMP_PREFIX) - 1) == 0;
}

/* unlinkat, counted and traced like ds_io_unlink */
static int
io_unlinkat(int dfd, const char *name, const char *path, ds_error *err)
{
	IO_FAULT("unlink", path);
	if (unlinkat(dfd, name, 0) != 0)
		return ds_error_sys(err, errno, "unlink", path);
	TRACE(trace_path_op(io_n_, "unlink", path));
	return DS_OK;
}

static int
io_openat_new(int dfd, const char *name, mode_t mode, const char *path,
              int *fd, ds_error *err)
{
	int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;

	IO_FAULT("open", path);
	do
		*fd = openat(dfd, name, flags, mode);
	while (*fd < 0 && errno == EINTR);
	if (*fd < 0)
		return -errno;
	TRACE(trace_open(io_n_, *fd, flags, path));
	return DS_OK;
}

static int
io_renameat(int dfd, const char *from, const char *to, const char *pfrom,
            const char *pto, ds_error *err)
{
	IO_FAULT("rename", pfrom);
	if (renameat(dfd, from, dfd, to) != 0) {
		int e = errno;
		char what[64 + 2 * 4096];
		snprintf(what, sizeof(what), "%s to %s", pfrom, pto);
		return ds_error_sys(err, e, "rename", what);
	}
	TRACE(trace_rename(io_n_, pfrom, pto));
	return DS_OK;
}

int
ds_io_replace_open(const char *path, mode_t mode, unsigned flags,
                   ds_io_replace *r, int *fd, ds_error *err)
{
	struct io_at at;
	size_t dl = io_dirlen(path);
	const char *base = path + dl + (path[dl] == '/');
	int rc, n;

	*fd = -1;
	r->dfd = -1;
	r->owned = 0;
	r->live = 0;
	r->path = path;
	n = snprintf(r->tmp_path, sizeof(r->tmp_path), "%.*s%s%s", (int)dl,
	             path, dl > 0 || path[0] == '/' ? "/" : "",
	             DS_IO_TEMP_PREFIX);
	if (n < 0 || (size_t)n + strlen(base) >= sizeof(r->tmp_path) ||
	    strlen(base) + sizeof(DS_IO_TEMP_PREFIX) > NAME_MAX + 1)
		return ds_error_set(err, DS_EINVAL, "write %s: path too long",
		                    path);
	strcat(r->tmp_path, base);
	rc = io_at_open(path, "open", &at, err);
	if (rc != DS_OK)
		return rc;
	/* *at() names: the last components beneath a home, else the paths */
	r->name = at.guarded ? at.name : path;
	r->tmp_name = at.guarded ? r->tmp_path + (at.name - path) : r->tmp_path;
	r->dfd = at.dfd;
	r->owned = at.owned;
	r->direct = 0;
	if (flags & DS_IO_REPLACE_DIRECT) {
		/* a new file is nobody's hard link: written under its name */
		rc = io_openat_new(r->dfd, r->name, mode, path, fd, err);
		if (rc == DS_OK) {
			r->direct = 1;
			r->live = 1;
			return DS_OK;
		}
		if (rc != -EEXIST) {
			if (rc < 0)
				rc = io_at_error(&at, -rc, "open", path, err);
			*fd = -1;
			io_at_close(&at);
			r->dfd = -1;
			r->owned = 0;
			return rc;
		}
	}
	rc = io_openat_new(r->dfd, r->tmp_name, mode, r->tmp_path, fd, err);
	if (rc == -EEXIST) {
		/* left by a run that was killed: ours to remove */
		rc = io_unlinkat(r->dfd, r->tmp_name, r->tmp_path, err);
		if (rc == DS_OK)
			rc = io_openat_new(r->dfd, r->tmp_name, mode,
			                   r->tmp_path, fd, err);
	}
	if (rc < 0)
		rc = io_at_error(&at, -rc, "open", r->tmp_path, err);
	if (rc == DS_OK)
		r->live = 1;
	if (rc != DS_OK) {
		*fd = -1;
		io_at_close(&at);
		r->dfd = -1;
		r->owned = 0;
	}
	return rc;
}

int
ds_io_replace_commit(ds_io_replace *r, int fd, int do_sync, ds_error *err)
{
	const char *cur = r->direct ? r->path : r->tmp_path;
	int rc = DS_OK;

	if (do_sync)
		rc = ds_io_fsync(fd, cur, err);
	if (rc != DS_OK) {
		close(fd);
		ds_io_replace_abort(r, -1);
		return rc;
	}
	rc = ds_io_close(fd, cur, err);
	if (rc == DS_OK && !r->direct)
		rc = io_renameat(r->dfd, r->tmp_name, r->name, r->tmp_path,
		                 r->path, err);
	if (rc != DS_OK) {
		ds_io_replace_abort(r, -1);
		return rc;
	}
	r->live = 0;
	if (r->owned)
		close(r->dfd);
	r->dfd = -1;
	r->owned = 0;
	return DS_OK;
}

void
ds_io_replace_abort(ds_io_replace *r, int fd)
{
	if (fd >= 0)
		close(fd);
	/* a file created under its own name is left: it did not exist,
	 * and whoever writes it next replaces it */
	if (r->live && !r->direct)
		(void)unlinkat(r->dfd, r->tmp_name, 0);
	if (r->owned)
		close(r->dfd);
	r->dfd = -1;
	r->owned = 0;
	r->live = 0;
}

int
ds_io_replace_file(const char *path, const void *buf, size_t len, mode_t mode,
                   int do_sync, ds_error *err)
{
	ds_io_replace r;
	int fd, rc;

	rc = ds_io_replace_open(path, mode, 0, &r, &fd, err);
	if (rc != DS_OK)
		return rc;
	rc = ds_io_write_all(fd, buf, len, r.tmp_path, err);
	if (rc != DS_OK) {
		ds_io_replace_abort(&r, fd);
		return rc;
	}
	return ds_io_replace_commit(&r, fd, do_sync, err);
}
