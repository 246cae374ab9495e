/*
 * fuzz_snapshot_conf.c - snapshot.conf parsing, through
 * ds_snapshot_acquire on a scratch copy of a fixture storage (closed in
 * snapshot mode, as the original leaves it).
 *
 * Input: the snapshot.conf text. The conf file's directory also holds
 * "access" (a valid user:password file) so `http URL access` lines reach
 * libcurl; every proxy variable points at 127.0.0.1:9 (discard: nothing
 * listens), so no request ever leaves the machine and each fails fast.
 *
 * The model: lines are split at '\n' (the text ends at its first NUL) and
 * into words at blanks; a line that is exactly `direct` succeeds; every
 * http line fails here; `nodirect` cancels the implicit last-resort
 * `direct`; anything else is warned about and skipped. So acquisition
 * succeeds exactly when some line is `direct` or no line is `nodirect`
 * (a file larger than 64 KiB is unreadable: plain `direct`).
 *
 * Invariants checked: the result agrees with the model; a refusal is
 * DS_EBUSY with a message (or, after an http line, the error of reading
 * its access file: missing, unreadable, not user:password); every log message is NUL terminated; after
 * release, misc/lock and misc/sublock are free again (we can take them),
 * misc/snapshot is still there and A/x.serial is unchanged; every 64
 * inputs, the whole A/ is unchanged (digest).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "helper.h"

#define CONF_MAX (64 * 1024)

static char home[PATH_MAX], conf[PATH_MAX + 32];
static unsigned char digest0[16];
static unsigned long runs;

/* Files that legitimately change: the conf (ours) and the lock files
 * (their holder writes its pid into them). */
static int
conf_skip(const char *rel)
{
	return strcmp(rel, "config/snapshot.conf") == 0 ||
	       strcmp(rel, "misc/lock") == 0 || strcmp(rel, "misc/sublock") == 0;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char access[PATH_MAX + 32];
	static const char *proxies[] = {"http_proxy", "https_proxy",
	                                "HTTPS_PROXY", "ALL_PROXY",
	                                "all_proxy"};

	(void)argc;
	(void)argv;
	for (size_t i = 0; i < sizeof(proxies) / sizeof(proxies[0]); i++)
		setenv(proxies[i], "http://127.0.0.1:9", 1);
	unsetenv("NO_PROXY");
	unsetenv("no_proxy");
	unsetenv("SNAPSHOT_VERSION");
	snprintf(home, sizeof(home), "%s/home", fz_scratch());
	fz_copy_tree(fz_fixture("bushy-master"), home);
	snprintf(conf, sizeof(conf), "%s/config/snapshot.conf", home);
	snprintf(access, sizeof(access), "%s/config/access", home);
	fz_write_file(access, "fuzz:secret\n", 12);
	fz_tree_digest(home, conf_skip, digest0);
	return 0;
}

static void
conf_log(int level, const char *msg, void *ctx)
{
	(void)ctx;
	FZ_CHECK(level >= DS_LOG_WARN && level <= DS_LOG_DEBUG, "level %d",
	         level);
	FZ_CHECK(strlen(msg) < DS_ERROR_MSG_MAX, "message length");
}

/* The model: 1 when acquisition must succeed; *http set when some line
 * is a well-formed http line (its access file's error may then be the
 * one returned). */
static int
conf_model(const char *text, size_t len, int *http)
{
	int direct = 0, nodirect = 0;
	char *copy, *p, *line;

	*http = 0;
	if (len > CONF_MAX)
		return 1;
	copy = strndup(text, len);  /* stops at the first NUL, as C does */
	if (copy == NULL)
		abort();
	p = copy;
	while ((line = strsep(&p, "\n")) != NULL) {
		char *save = NULL, *w[3];
		int n = 0;
		for (char *t = strtok_r(line, " \t\r\f\v", &save); t != NULL;
		     t = strtok_r(NULL, " \t\r\f\v", &save)) {
			if (n < 3)
				w[n] = t;
			n++;
		}
		if (n == 1 && strcmp(w[0], "direct") == 0)
			direct = 1;
		if (n == 1 && strcmp(w[0], "nodirect") == 0)
			nodirect = 1;
		if (n == 3 && strcmp(w[0], "http") == 0)
			*http = 1;
	}
	free(copy);
	return direct || !nodirect;
}

static void
conf_check_free(const char *which)
{
	char path[PATH_MAX + 32];
	ds_lock *l = NULL;
	ds_error err;

	snprintf(path, sizeof(path), "%s/misc/%s", home, which);
	FZ_CHECK(ds_lock_acquire(path, &l, &err) == DS_OK,
	         "misc/%s still held after release: %s", which, err.msg);
	ds_lock_release(l);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ds_snapshot_opts opts;
	ds_snapshot *snap = NULL;
	ds_error err;
	struct stat st;
	char path[PATH_MAX + 32];
	unsigned char *x = NULL;
	size_t xlen = 0;
	int rc, want, http;

	fz_write_file(conf, data, size);
	want = conf_model((const char *)data, size, &http);
	memset(&opts, 0, sizeof(opts));
	opts.timeout = 0;
	opts.log = conf_log;
	ds_error_clear(&err);
	rc = ds_snapshot_acquire(home, &opts, &snap, &err);
	FZ_CHECK((rc == DS_OK) == want, "acquire gave %d (%s), the model %s",
	         rc, err.msg, want ? "succeeds" : "fails");
	if (rc == DS_OK) {
		FZ_CHECK(snap != NULL && !ds_snapshot_inherited(snap), "snap");
		FZ_CHECK(ds_snapshot_release(snap, &err) == DS_OK,
		         "release: %s", err.msg);
	} else {
		fz_check_error(rc, &err, "ds_snapshot_acquire");
		/* the last line tried gives the status: busy, or what
		 * reading an http line's access file met */
		FZ_CHECK(snap == NULL && (rc == DS_EBUSY ||
		         (http && (rc == DS_ENOTFOUND || rc == DS_ECONFIG ||
		                   rc == DS_EIO || rc == DS_EINVAL))),
		         "status %d: %s", rc, err.msg);
	}
	conf_check_free("lock");
	conf_check_free("sublock");
	snprintf(path, sizeof(path), "%s/misc/snapshot", home);
	FZ_CHECK(stat(path, &st) == 0, "misc/snapshot is gone");
	snprintf(path, sizeof(path), "%s/A/x/serial", home);
	FZ_CHECK(ds_file_read(path, 64, &x, &xlen, NULL) == DS_OK &&
	         xlen == 8 && ds_get_u64(x) == 0x040D44B2249CA6AAull,
	         "A/x/serial changed");
	free(x);
	if (++runs % 64 == 0) {
		unsigned char d[16];
		fz_tree_digest(home, conf_skip, d);
		FZ_CHECK(memcmp(d, digest0, 16) == 0, "the storage changed");
	}
	return 0;
}
