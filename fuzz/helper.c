/*
 * helper.c - scratch directories, fixtures and invariant checks shared by
 * the fuzz targets (see helper.h).
 *
 * Everything here runs at most once per process (fixture extraction) or
 * on the rare inputs a target accepts (tree copies), so it favours being
 * obviously right over being fast: copies go through cp -a, extraction
 * through tar, both run with posix_spawnp and waited for.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "helper.h"

#ifndef DS_SOURCE_DIR
#define DS_SOURCE_DIR "."
#endif

extern char **environ;

static char helper_root[PATH_MAX];
static pid_t helper_owner;

void
fz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "\n==FUZZ INVARIANT== %s:%d: %s\n  ", file, line,
	        cond);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	abort();
}

void
fz_check_error(int rc, const ds_error *err, const char *call)
{
	FZ_CHECK(rc > DS_OK && rc < DS_ESTATUS_MAX, "%s returned %d", call,
	         rc);
	FZ_CHECK(err->status == rc, "%s returned %d but err.status is %d",
	         call, rc, err->status);
	FZ_CHECK(memchr(err->msg, '\0', sizeof(err->msg)) != NULL,
	         "%s: message not NUL terminated", call);
	FZ_CHECK(err->msg[0] != '\0', "%s: failed (%d) with an empty message",
	         call, rc);
}

/* Run argv, wait, abort unless it exits 0. */
static void
helper_run(char *const argv[])
{
	pid_t pid;
	int st, rc;

	rc = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
	if (rc != 0) {
		fprintf(stderr, "fuzz helper: spawn %s: %s\n", argv[0],
		        strerror(rc));
		abort();
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			abort();
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "fuzz helper: %s %s failed (status %d)\n",
		        argv[0], argv[1], st);
		abort();
	}
}

static int
helper_rm_cb(const char *path, const struct stat *sb, int flag,
             struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	/* a read-only directory below would stop rmdir of its children */
	if (flag == FTW_DP)
		return rmdir(path) != 0 && errno != ENOENT;
	return unlink(path) != 0 && errno != ENOENT;
}

void
fz_remove_tree(const char *path)
{
	struct stat st;

	if (lstat(path, &st) != 0)
		return;
	nftw(path, helper_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void
helper_cleanup(void)
{
	/* children spawned by a target (none fork today) must not remove
	 * the parent's scratch */
	if (helper_root[0] != '\0' && getpid() == helper_owner)
		fz_remove_tree(helper_root);
}

/* A crashing input ends the process without atexit: remove the scratch
 * roots of fuzzers that are gone (ds-fuzz-<pid>-* with no such pid), so
 * long campaigns do not fill tmpfs. */
static void
helper_reap(const char *tmp)
{
	DIR *d = opendir(tmp);
	struct dirent *e;
	char path[PATH_MAX];

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		char *end;
		long pid;

		if (strncmp(e->d_name, "ds-fuzz-", 8) != 0)
			continue;
		pid = strtol(e->d_name + 8, &end, 10);
		if (end == e->d_name + 8 || *end != '-' || pid <= 0)
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(path, sizeof(path), "%s/%s", tmp, e->d_name);
		fz_remove_tree(path);
	}
	closedir(d);
}

const char *
fz_scratch(void)
{
	const char *tmp;

	if (helper_root[0] != '\0')
		return helper_root;
	/* tmpfs when there is one: an input rewrites files thousands of
	 * times a second, and ext4 flushes a truncated-and-rewritten file on
	 * close (auto_da_alloc), which made the disk the bottleneck */
	tmp = getenv("DS_FUZZ_TMPDIR");
	if ((tmp == NULL || tmp[0] == '\0') && access("/dev/shm", W_OK) == 0)
		tmp = "/dev/shm";
	if (tmp == NULL || tmp[0] == '\0')
		tmp = getenv("TMPDIR");
	if (tmp == NULL || tmp[0] == '\0')
		tmp = "/tmp";
	helper_reap(tmp);
	snprintf(helper_root, sizeof(helper_root), "%s/ds-fuzz-%ld-XXXXXX",
	         tmp, (long)getpid());
	if (mkdtemp(helper_root) == NULL) {
		fprintf(stderr, "fuzz helper: mkdtemp %s: %s\n", helper_root,
		        strerror(errno));
		abort();
	}
	helper_owner = getpid();
	atexit(helper_cleanup);
	return helper_root;
}

const char *
fz_fixture_src(void)
{
	const char *src = getenv("DS_FUZZ_FIXTURES");

	return src != NULL && src[0] != '\0' ? src
	                                     : DS_SOURCE_DIR "/tests/fixtures";
}

const char *
fz_fixture(const char *name)
{
	static struct {
		char name[64];
		char path[PATH_MAX];
	} cache[16];
	static size_t ncache;
	const char *src = fz_fixture_src();
	char tgz[PATH_MAX], dir[PATH_MAX];
	struct stat st;

	for (size_t i = 0; i < ncache; i++)
		if (strcmp(cache[i].name, name) == 0)
			return cache[i].path;
	if (ncache == sizeof(cache) / sizeof(cache[0]) ||
	    strlen(name) >= sizeof(cache[0].name))
		abort();
	snprintf(tgz, sizeof(tgz), "%s/%s.tar.gz", src, name);
	snprintf(dir, sizeof(dir), "%s/fixtures", fz_scratch());
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		abort();
	{
		char *argv[] = {"tar", "-xzpf", tgz, "-C", dir, NULL};
		helper_run(argv);
	}
	snprintf(cache[ncache].name, sizeof(cache[ncache].name), "%s", name);
	snprintf(cache[ncache].path, sizeof(cache[ncache].path), "%s/%s", dir,
	         name);
	if (stat(cache[ncache].path, &st) != 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "fuzz helper: %s did not unpack to %s\n", tgz,
		        cache[ncache].path);
		abort();
	}
	return cache[ncache++].path;
}

void
fz_gunzip(const char *gz, const char *out)
{
	posix_spawn_file_actions_t fa;
	char *argv[] = {"gzip", "-dc", (char *)gz, NULL};
	pid_t pid;
	int st;

	if (posix_spawn_file_actions_init(&fa) != 0 ||
	    posix_spawn_file_actions_addopen(&fa, 1, out,
	                                     O_WRONLY | O_CREAT | O_TRUNC,
	                                     0644) != 0 ||
	    posix_spawnp(&pid, "gzip", &fa, NULL, argv, environ) != 0)
		abort();
	posix_spawn_file_actions_destroy(&fa);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			abort();
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "fuzz helper: gzip -dc %s failed\n", gz);
		abort();
	}
}

void
fz_copy_tree(const char *src, const char *dst)
{
	char *argv[] = {"cp", "-a", (char *)src, (char *)dst, NULL};

	helper_run(argv);
}

void
fz_write_file_fd(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			abort();
		p += n;
		len -= (size_t)n;
	}
}

void
fz_write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0) {
		fprintf(stderr, "fuzz helper: open %s: %s\n", path,
		        strerror(errno));
		abort();
	}
	fz_write_file_fd(fd, buf, len);
	if (close(fd) != 0)
		abort();
}

/* One directory level of fz_tree_digest, in alphasort order. */
static void
helper_digest_dir(EVP_MD_CTX *md, const char *root, const char *rel,
                  int (*skip)(const char *))
{
	struct dirent **ents = NULL;
	char dir[PATH_MAX];
	int n;

	snprintf(dir, sizeof(dir), "%s%s%s", root, rel[0] ? "/" : "", rel);
	n = scandir(dir, &ents, NULL, alphasort);
	if (n < 0)
		abort();
	for (int i = 0; i < n; i++) {
		char crel[PATH_MAX], path[PATH_MAX], meta[128];
		struct stat st;
		const char *name = ents[i]->d_name;

		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			goto next;
		snprintf(crel, sizeof(crel), "%s%s%s", rel, rel[0] ? "/" : "",
		         name);
		if (skip != NULL && skip(crel))
			goto next;
		snprintf(path, sizeof(path), "%s/%s", root, crel);
		if (lstat(path, &st) != 0)
			abort();
		snprintf(meta, sizeof(meta), "|%o|%lld|", (unsigned)st.st_mode,
		         (long long)(S_ISDIR(st.st_mode) ? 0 : st.st_size));
		EVP_DigestUpdate(md, crel, strlen(crel) + 1);
		EVP_DigestUpdate(md, meta, strlen(meta));
		if (S_ISDIR(st.st_mode)) {
			helper_digest_dir(md, root, crel, skip);
		} else if (S_ISREG(st.st_mode)) {
			unsigned char buf[8192];
			ssize_t k;
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				abort();
			while ((k = read(fd, buf, sizeof(buf))) > 0)
				EVP_DigestUpdate(md, buf, (size_t)k);
			close(fd);
		} else if (S_ISLNK(st.st_mode)) {
			char target[PATH_MAX];
			ssize_t k = readlink(path, target, sizeof(target));
			if (k > 0)
				EVP_DigestUpdate(md, target, (size_t)k);
		}
next:
		free(ents[i]);
	}
	free(ents);
}

void
fz_tree_digest(const char *root, int (*skip)(const char *relpath),
               unsigned char out[16])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int outlen = 16;

	if (md == NULL || EVP_DigestInit_ex(md, EVP_md5(), NULL) != 1)
		abort();
	helper_digest_dir(md, root, "", skip);
	EVP_DigestFinal_ex(md, out, &outlen);
	EVP_MD_CTX_free(md);
}
