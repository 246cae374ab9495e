/*
 * snapshot.c - acquiring snapshot mode for tools that read A/ while a
 * storage may be live (the original snapshot.py).
 *
 * A snapshot is held when misc/sublock is locked by us and misc/snapshot
 * exists: nobody writes into A/ then. The ways to get there are the lines
 * of config/snapshot.conf, tried in order:
 *   http URL ACCESSFILE   ask the running server (XML-RPC enterSnapshot)
 *   control [PATH]        ask the process holding the storage open through
 *                         its control socket (DS_OPEN_CONTROL, control.c):
 *                         PATH, relative to HOME, defaults to misc/control
 *   direct                nobody runs the storage: lock it ourselves
 *   nodirect              do not fall back to direct access
 * plus an implicit last-resort `direct`. Without a snapshot.conf the lines
 * are `control` then `direct`: a storage process of ours that listens is
 * asked, and when none does (no socket, or a stale one nobody listens on)
 * the storage is used directly, as before. With a snapshot.conf its lines
 * decide alone (add `control` to them to use the socket). Lines we cannot
 * use are warned about and skipped (the original stopped treating them as
 * fatal in 1.1.12). Inside an enclosing `ds snapshot` (SNAPSHOT_VERSION=2)
 * the enclosing snapshot is reused.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "internal.h"

#define SNAPSHOT_CONF_MAX (64 * 1024)
#define SNAPSHOT_HTTP_REPLY_MAX (64 * 1024)
#define SNAPSHOT_HTTP_TIMEOUT 60L
/* the greeting comes at once unless the storage process is busy with
 * another request; entering snapshot mode flushes the whole journal into
 * A first, which may take a while on a storage that committed a lot */
#define SNAPSHOT_CONTROL_GREETING_TIMEOUT 30
#define SNAPSHOT_CONTROL_TIMEOUT 600

struct ds_snapshot {
	char *dir;              /* absolute path of HOME */
	long long timestamp;
	int inherited;
	ds_lock *lock;          /* misc/lock: direct access only */
	ds_lock *sublock;       /* misc/sublock */
	int quiet;              /* locks without the pid (a reader) */
	char *url;              /* http: whom to tell leaveSnapshot */
	char *user, *password;
	int ctl_fd;             /* control: the connection (-1: none) */
	char *ctl_path;         /* control: the socket, for messages */
	char code[300];
	ds_log_fn log;
	void *log_ctx;
};

static void
snapshot_log(const ds_snapshot *s, int level, const char *fmt, ...)
	DS_PRINTF(3, 4);

static void
snapshot_log(const ds_snapshot *s, int level, const char *fmt, ...)
{
	char msg[DS_ERROR_MSG_MAX];
	va_list ap;

	if (s->log == NULL)
		return;
	va_start(ap, fmt);
	ds_msg_vformat(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	s->log(level, msg, s->log_ctx);
}

const char *
ds_snapshot_dir(const ds_snapshot *s)
{
	return s->dir;
}

long long
ds_snapshot_timestamp(const ds_snapshot *s)
{
	return s->timestamp;
}

int
ds_snapshot_inherited(const ds_snapshot *s)
{
	return s->inherited;
}

static void
snapshot_free(ds_snapshot *s)
{
	if (s == NULL)
		return;
	ds_lock_release(s->sublock);
	ds_lock_release(s->lock);
	if (s->ctl_fd >= 0)
		close(s->ctl_fd);
	free(s->ctl_path);
	free(s->dir);
	free(s->url);
	free(s->user);
	if (s->password != NULL) {
		explicit_bzero(s->password, strlen(s->password));
		free(s->password);
	}
	free(s);
}

/* ---- XML-RPC over libcurl ---- */

/*
 * libcurl is loaded with dlopen when an http line is used, not linked:
 * linked, it and its dependencies (TLS, Kerberos, LDAP, ssh, idn, ...:
 * ~30 shared libraries) were mapped and relocated at every start of ds,
 * including both ends of every `ds replica` (bench/README.md, third run:
 * 13.5 ms a start, most of it the dynamic linker). Only the http mode of
 * snapshot.conf needs it. The handle is kept open for the life of the
 * process (libcurl keeps global state).
 */
struct snapshot_curl {
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
	CURLcode (*easy_perform)(CURL *);
	CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
	const char *(*easy_strerror)(CURLcode);
	void (*easy_cleanup)(CURL *);
	struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
	void (*slist_free_all)(struct curl_slist *);
};

static struct snapshot_curl snapshot_curl_fns;
static char snapshot_curl_error[512];
static pthread_once_t snapshot_curl_once = PTHREAD_ONCE_INIT;

static void *
snapshot_curl_sym(void *h, const char *name)
{
	void *p = dlsym(h, name);

	if (p == NULL && snapshot_curl_error[0] == '\0')
		snprintf(snapshot_curl_error, sizeof(snapshot_curl_error),
		         "libcurl.so.4 has no %s", name);
	return p;
}

static void
snapshot_curl_load_once(void)
{
	struct snapshot_curl f;
	void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);

	if (h == NULL) {
		const char *e = dlerror();
		snprintf(snapshot_curl_error, sizeof(snapshot_curl_error),
		         "cannot load libcurl.so.4 (needed for http lines): %s",
		         e ? e : "unknown error");
		return;
	}
	*(void **)&f.easy_init = snapshot_curl_sym(h, "curl_easy_init");
	*(void **)&f.easy_setopt = snapshot_curl_sym(h, "curl_easy_setopt");
	*(void **)&f.easy_perform = snapshot_curl_sym(h, "curl_easy_perform");
	*(void **)&f.easy_getinfo = snapshot_curl_sym(h, "curl_easy_getinfo");
	*(void **)&f.easy_strerror = snapshot_curl_sym(h,
	                                               "curl_easy_strerror");
	*(void **)&f.easy_cleanup = snapshot_curl_sym(h, "curl_easy_cleanup");
	*(void **)&f.slist_append = snapshot_curl_sym(h, "curl_slist_append");
	*(void **)&f.slist_free_all = snapshot_curl_sym(h,
	                                                "curl_slist_free_all");
	if (snapshot_curl_error[0] == '\0')
		snapshot_curl_fns = f;
}

/* The libcurl functions, loaded on first use. Errors: DS_EBUSY (libcurl
 * cannot be loaded: the line cannot be used, as a server that cannot be
 * reached). */
static int
snapshot_curl(const struct snapshot_curl **out, const char *url,
              ds_error *err)
{
	pthread_once(&snapshot_curl_once, snapshot_curl_load_once);
	if (snapshot_curl_fns.easy_init == NULL)
		return ds_error_set(err, DS_EBUSY, "%s: %s", url,
		                    snapshot_curl_error);
	*out = &snapshot_curl_fns;
	return DS_OK;
}

struct snapshot_reply {
	char buf[SNAPSHOT_HTTP_REPLY_MAX + 1];
	size_t len;
};

static size_t
snapshot_http_write(char *data, size_t size, size_t nmemb, void *userp)
{
	struct snapshot_reply *r = userp;
	size_t n = size * nmemb;
	size_t room = SNAPSHOT_HTTP_REPLY_MAX - r->len;

	/* keep what fits: a reply is a few hundred bytes */
	memcpy(r->buf + r->len, data, n < room ? n : room);
	r->len += n < room ? n : room;
	r->buf[r->len] = '\0';
	return n;
}

/* Call method(code) on the XML-RPC server at url. Errors: DS_EBUSY (the
 * server could not be reached, refused, or answered with a fault: the
 * message says which), DS_ENOMEM. */
static int
snapshot_xmlrpc(const char *url, const char *user, const char *password,
                const char *method, const char *code, ds_error *err)
{
	CURL *c = NULL;
	struct curl_slist *hdr = NULL;
	struct snapshot_reply *reply = NULL;
	char body[4096], esc[sizeof(((ds_snapshot *)0)->code) * 6];
	char cerr[CURL_ERROR_SIZE] = "";
	size_t k = 0;
	long status = 0;
	const struct snapshot_curl *cu;
	CURLcode cc;
	int rc;

	/* the code is hostname-pid; escape it for XML anyway */
	for (const char *p = code; *p && k + 7 < sizeof(esc); p++) {
		const char *e = *p == '&' ? "&amp;" : *p == '<' ? "&lt;" :
		                *p == '>' ? "&gt;" : NULL;
		if (e != NULL) {
			memcpy(esc + k, e, strlen(e));
			k += strlen(e);
		} else {
			esc[k++] = *p;
		}
	}
	esc[k] = '\0';
	snprintf(body, sizeof(body),
	         "<?xml version='1.0'?>\n<methodCall>\n<methodName>%s"
	         "</methodName>\n<params>\n<param>\n<value><string>%s"
	         "</string></value>\n</param>\n</params>\n</methodCall>\n",
	         method, esc);
	if ((rc = snapshot_curl(&cu, url, err)) != DS_OK)
		return rc;
	reply = calloc(1, sizeof(*reply));
	c = cu->easy_init();
	hdr = cu->slist_append(NULL, "Content-Type: text/xml");
	if (reply == NULL || c == NULL || hdr == NULL) {
		rc = ds_error_set(err, DS_ENOMEM, "%s %s: out of memory", method,
		                  url);
		goto out;
	}
	cu->easy_setopt(c, CURLOPT_URL, url);
	cu->easy_setopt(c, CURLOPT_POSTFIELDS, body);
	cu->easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	cu->easy_setopt(c, CURLOPT_USERNAME, user);
	cu->easy_setopt(c, CURLOPT_PASSWORD, password);
	cu->easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
	cu->easy_setopt(c, CURLOPT_USERAGENT, "DirectoryStorage ds snapshot");
	cu->easy_setopt(c, CURLOPT_WRITEFUNCTION, snapshot_http_write);
	cu->easy_setopt(c, CURLOPT_WRITEDATA, reply);
	cu->easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	cu->easy_setopt(c, CURLOPT_TIMEOUT, SNAPSHOT_HTTP_TIMEOUT);
	cu->easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	cu->easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	cc = cu->easy_perform(c);
	if (cc != CURLE_OK) {
		rc = ds_error_set(err, DS_EBUSY, "%s %s: %s", method, url,
		                  cerr[0] ? cerr : cu->easy_strerror(cc));
		goto out;
	}
	cu->easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		rc = ds_error_set(err, DS_EBUSY, "%s %s: HTTP status %ld", method,
		                  url, status);
		goto out;
	}
	if (strstr(reply->buf, "<methodResponse") == NULL) {
		rc = ds_error_set(err, DS_EBUSY,
		                  "%s %s: the reply is not an XML-RPC response",
		                  method, url);
		goto out;
	}
	if (strstr(reply->buf, "<fault>") != NULL) {
		rc = ds_error_set(err, DS_EBUSY, "%s %s: the server answered "
		                  "with a fault", method, url);
		goto out;
	}
out:
	cu->slist_free_all(hdr);
	if (c != NULL)
		cu->easy_cleanup(c);
	free(reply);
	return rc;
}

/* ---- locking ---- */

static int
snapshot_exists(const ds_snapshot *s)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/misc/snapshot", s->dir);
	return stat(path, &st) == 0;
}

/* misc/snapshot exists but holds no code. */
static int
snapshot_marker_empty(const ds_snapshot *s)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/misc/snapshot", s->dir);
	return stat(path, &st) == 0 && st.st_size == 0;
}

/* Lock misc/<which>; a lock held by someone else is DS_EBUSY. */
static int
snapshot_lock(ds_snapshot *s, const char *which, ds_lock **out,
              ds_error *err)
{
	char path[PATH_MAX];
	ds_error e;
	int rc;

	snprintf(path, sizeof(path), "%s/misc/%s", s->dir, which);
	ds_error_clear(&e);
	rc = s->quiet ? ds_lock_acquire_quiet(path, out, &e)
	              : ds_lock_acquire(path, out, &e);
	if (rc == DS_ELOCKED)
		return ds_error_set(err, DS_EBUSY, "storage %s is in use: %s",
		                    s->dir, e.msg);
	if (rc != DS_OK && err != NULL)
		*err = e;
	return rc;
}

static void
snapshot_unlock(ds_snapshot *s)
{
	ds_lock_release(s->sublock);
	s->sublock = NULL;
	ds_lock_release(s->lock);
	s->lock = NULL;
}

/* Direct access: nobody may run the storage. Take misc/lock (so that no
 * storage process can open it while we hold the snapshot) and
 * misc/sublock, and check misc/snapshot. A storage that was not closed
 * into snapshot mode (a crash, a quick shutdown) is opened and closed
 * through the engine first: recovery, then close enters snapshot mode. */
static int
snapshot_direct(ds_snapshot *s, ds_error *err)
{
	struct journal_scan js;
	ds_storage *st = NULL;
	int rc;

	if ((rc = snapshot_lock(s, "lock", &s->lock, err)) != DS_OK)
		return rc;
	if ((rc = snapshot_lock(s, "sublock", &s->sublock, err)) != DS_OK)
		goto fail;
	/* A is a snapshot. Work a crashed process left in journal/ (we hold
	 * misc/lock: nobody runs the storage) is recovered first, so that
	 * the snapshot holds every committed transaction, and an empty
	 * marker is written again; but not for a
	 * reader (quiet: ds check, ds whatsnew), which must change nothing
	 * and looks at A as it is (ds check reports the journal). */
	if (snapshot_exists(s)) {
		if (s->quiet)
			return DS_OK;
		if ((rc = journal_scan(s->dir, &js, err)) != DS_OK)
			goto fail;
		/* an empty marker is a write of it cut short by a crash:
		 * the open and close write it again */
		if (!js.replica_tar && js.ndone == 0 && js.ntemp == 0 &&
		    !snapshot_marker_empty(s))
			return DS_OK;
	}

	snapshot_unlock(s);
	/* what recovery would refuse is refused before the open, which
	 * would write its pid into the lock files first */
	if ((rc = journal_scan(s->dir, &js, err)) != DS_OK)
		return rc;
	snapshot_log(s, DS_LOG_VERBOSE,
	             "%s is not in snapshot mode or its journal is not empty: "
	             "opening and closing it", s->dir);
	rc = ds_storage_open(s->dir, DS_OPEN_NOTHREAD, &st, err);
	if (rc == DS_ELOCKED)
		rc = err ? (err->status = DS_EBUSY) : DS_EBUSY;
	if (rc != DS_OK)
		return rc;
	/* Enter snapshot mode explicitly rather than relying on close: with
	 * [filesystem] quick_shutdown the close would not (the original sets
	 * quick_shutdown = 0 for this). A storage closed while held keeps
	 * misc/snapshot. */
	rc = ds_storage_snapshot_enter(st, "shutdown", err);
	if (rc != DS_OK) {
		ds_storage_close(st, DS_CLOSE_QUICK, NULL);
		return rc;
	}
	if ((rc = ds_storage_close(st, 0, err)) != DS_OK)
		return rc;
	if ((rc = snapshot_lock(s, "lock", &s->lock, err)) != DS_OK)
		return rc;
	if ((rc = snapshot_lock(s, "sublock", &s->sublock, err)) != DS_OK)
		goto fail;
	if (snapshot_exists(s))
		return DS_OK;
	rc = ds_error_set(err, DS_EBUSY, "snapshot %s: directory is not a "
	                  "snapshot (misc/snapshot missing after close)",
	                  s->dir);
fail:
	snapshot_unlock(s);
	return rc;
}

/* Read "user:password" from the first line of the access file. */
static int
snapshot_access(ds_snapshot *s, const char *conf, const char *access,
                ds_error *err)
{
	char path[PATH_MAX], *dir, *line, *colon, *end;
	unsigned char *buf = NULL;
	size_t len;
	int rc;

	if (access[0] == '/') {
		if (strlen(access) >= sizeof(path))
			return ds_error_set(err, DS_EINVAL, "snapshot: access file "
			                    "name too long");
		memcpy(path, access, strlen(access) + 1);
	} else {
		char tmp[PATH_MAX];
		snprintf(tmp, sizeof(tmp), "%s", conf);
		dir = strrchr(tmp, '/');
		if (dir != NULL)
			*dir = '\0';
		if ((rc = ds_path_join(path, sizeof(path), dir ? tmp : ".",
		                       access, err)) != DS_OK)
			return rc;
	}
	if ((rc = ds_file_read(path, 4096, &buf, &len, err)) != DS_OK) {
		/* a missing or oversized access file is a configuration
		 * mistake (needs a human), not "this is not a storage" */
		if ((rc == DS_ENOTFOUND || rc == DS_ECORRUPT) && err != NULL)
			err->status = DS_ECONFIG;
		return rc == DS_ENOTFOUND || rc == DS_ECORRUPT ? DS_ECONFIG : rc;
	}
	line = (char *)buf;
	line[len] = '\0';  /* ds_file_read leaves one spare byte */
	end = strchr(line, '\n');
	if (end != NULL)
		*end = '\0';
	colon = strchr(line, ':');
	if (colon == NULL) {
		rc = ds_error_set(err, DS_ECONFIG, "snapshot access file %s: "
		                  "first line is not user:password", path);
		goto out;
	}
	*colon = '\0';
	/* the original strips blanks around both, and ignores a third
	 * field (Zope access files may carry one) */
	{
		char *u = line, *p = colon + 1, *q;
		while (*u == ' ' || *u == '\t')
			u++;
		for (q = u + strlen(u); q > u && (q[-1] == ' ' || q[-1] == '\t' ||
		                                  q[-1] == '\r'); q--)
			q[-1] = '\0';
		if ((q = strchr(p, ':')) != NULL)
			*q = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		for (q = p + strlen(p); q > p && (q[-1] == ' ' || q[-1] == '\t' ||
		                                  q[-1] == '\r'); q--)
			q[-1] = '\0';
		free(s->user);
		if (s->password != NULL)
			free(s->password);
		s->user = strdup(u);
		s->password = strdup(p);
		if (s->user == NULL || s->password == NULL) {
			rc = ds_error_set(err, DS_ENOMEM, "snapshot: out of memory");
			goto out;
		}
	}
out:
	explicit_bzero(buf, len);
	free(buf);
	return rc;
}

/* http URL ACCESSFILE: ask the server, then take misc/sublock (the
 * server holds misc/lock) and check misc/snapshot. */
static int
snapshot_http(ds_snapshot *s, const char *conf, const char *url,
              const char *access, ds_error *err)
{
	int rc;

	if ((rc = snapshot_access(s, conf, access, err)) != DS_OK)
		return rc;
	rc = snapshot_xmlrpc(url, s->user, s->password, "enterSnapshot",
	                     s->code, err);
	if (rc != DS_OK)
		return rc;
	free(s->url);
	if ((s->url = strdup(url)) == NULL) {
		rc = ds_error_set(err, DS_ENOMEM, "snapshot: out of memory");
		goto leave;
	}
	snapshot_log(s, DS_LOG_INFO, "Entered snapshot using %s", url);
	if ((rc = snapshot_lock(s, "sublock", &s->sublock, err)) != DS_OK)
		goto leave;
	if (!snapshot_exists(s)) {
		rc = ds_error_set(err, DS_EBUSY, "snapshot %s: directory is not "
		                  "a snapshot (misc/snapshot missing after "
		                  "enterSnapshot)", s->dir);
		goto leave;
	}
	return DS_OK;
leave:
	snapshot_unlock(s);
	snapshot_xmlrpc(url, s->user, s->password, "leaveSnapshot", s->code,
	                NULL);
	free(s->url);
	s->url = NULL;
	return rc;
}

/* Tell the storage process to leave snapshot mode and hang up. Errors:
 * those of ds_control_call. */
static int
snapshot_control_leave(ds_snapshot *s, ds_error *err)
{
	char req[sizeof(s->code) + 8];
	int rc;

	snprintf(req, sizeof(req), "leave %s", s->code);
	rc = ds_control_call(s->ctl_fd, s->ctl_path, req,
	                     SNAPSHOT_CONTROL_TIMEOUT, NULL, 0, err);
	close(s->ctl_fd);
	s->ctl_fd = -1;
	return rc;
}

/* A failure to reach or to persuade the storage process: like a server
 * that is down, busy (the next line may do, or a retry), logged quietly
 * when it only means nobody listens, as a warning when it is stranger (a
 * symlink, another uid, not our protocol). */
static int
snapshot_control_busy(ds_snapshot *s, int rc, ds_error *err)
{
	if (rc == DS_ENOMEM)
		return rc;
	if (rc != DS_ENOTFOUND && rc != DS_EBUSY && err != NULL)
		snapshot_log(s, DS_LOG_WARN, "%s", err->msg);
	if (err != NULL)
		err->status = DS_EBUSY;
	return DS_EBUSY;
}

/* control [PATH]: ask the storage process through its control socket,
 * then take misc/sublock (it let go of it) and check misc/snapshot. The
 * connection stays open until release: closing it is how a dead client
 * lets the storage leave snapshot mode (control.c). Errors: DS_EBUSY
 * (the storage process could not be reached or refused; a PATH too
 * long), DS_EIO (our lock of misc/sublock failed: a local error),
 * DS_ENOMEM. */
static int
snapshot_control(ds_snapshot *s, const char *rel, ds_error *err)
{
	char path[PATH_MAX], req[sizeof(s->code) + 8];
	struct stat st;
	int rc;

	if (rel == NULL)
		rel = "misc/control";
	if (rel[0] == '/') {
		if (strlen(rel) >= sizeof(path))
			return snapshot_control_busy(s, ds_error_set(err,
			        DS_EINVAL, "snapshot: control socket name too "
			        "long"), err);
		memcpy(path, rel, strlen(rel) + 1);
	} else if ((rc = ds_path_join(path, sizeof(path), s->dir, rel,
	                              err)) != DS_OK) {
		return snapshot_control_busy(s, rc, err);
	}
	if (stat(s->dir, &st) != 0)
		return ds_error_sys(err, errno, "stat", s->dir);
	free(s->ctl_path);
	if ((s->ctl_path = strdup(path)) == NULL)
		return ds_error_set(err, DS_ENOMEM, "snapshot: out of memory");
	rc = ds_control_connect(path, st.st_uid,
	                        SNAPSHOT_CONTROL_GREETING_TIMEOUT, &s->ctl_fd,
	                        err);
	if (rc != DS_OK)
		return snapshot_control_busy(s, rc, err);
	snprintf(req, sizeof(req), "enter %s", s->code);
	rc = ds_control_call(s->ctl_fd, path, req, SNAPSHOT_CONTROL_TIMEOUT,
	                     NULL, 0, err);
	if (rc != DS_OK) {
		close(s->ctl_fd);
		s->ctl_fd = -1;
		return snapshot_control_busy(s, rc, err);
	}
	snapshot_log(s, DS_LOG_INFO, "Entered snapshot using %s", path);
	if ((rc = snapshot_lock(s, "sublock", &s->sublock, err)) != DS_OK)
		goto leave;
	if (!snapshot_exists(s)) {
		rc = ds_error_set(err, DS_EBUSY, "snapshot %s: directory is not "
		                  "a snapshot (misc/snapshot missing after enter)",
		                  s->dir);
		goto leave;
	}
	return DS_OK;
leave:
	snapshot_unlock(s);
	snapshot_control_leave(s, NULL);
	return rc;
}

/* One attempt over the lines of the configuration file. */
static int
snapshot_try(ds_snapshot *s, const char *conf, ds_error *err)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	char *text, *line;
	int rc, number = 0, last_resort = 1, done = 0, dflt = 0;
	char where[64 + DS_PATH_MAX];
	ds_error last, rerr;

	ds_error_clear(&last);
	ds_error_set(&last, DS_EBUSY, "snapshot %s: no line of %s could enter "
	             "snapshot mode", s->dir, conf);
	s->timestamp = (long long)time(NULL);
	ds_error_clear(&rerr);
	rc = ds_file_read(conf, SNAPSHOT_CONF_MAX, &buf, &len, &rerr);
	if (rc == DS_ENOMEM) {
		if (err)
			*err = rerr;
		return rc;
	}
	if (rc != DS_OK) {
		/* as the original: no file means "direct" (after the control
		 * socket, which the original did not have). The file is
		 * optional: its absence is said at -v as what is done, not
		 * as a failure (the original printed "failed to open"). */
		if (rc == DS_ENOTFOUND)
			snapshot_log(s, DS_LOG_VERBOSE, "no %s: trying the "
			             "control socket, then direct access", conf);
		else
			snapshot_log(s, DS_LOG_WARN, "%s; trying the control "
			             "socket, then direct access", rerr.msg);
		dflt = 1;
		free(buf);
		buf = (unsigned char *)strdup("control\ndirect\n");
		if (buf == NULL)
			return ds_error_set(err, DS_ENOMEM, "snapshot: out of memory");
		len = strlen((char *)buf);
	}
	text = (char *)buf;
	text[len] = '\0';

	/* strsep, not strtok: empty lines count in the line numbers */
	while (!done) {
		char *tok[4] = {NULL, NULL, NULL, NULL}, *tsave = NULL, *t;
		int n = 0;

		line = text != NULL ? strsep(&text, "\n") : NULL;
		if (line == NULL) {
			/* the implicit last resort */
			done = 1;
			if (!last_resort)
				break;
			tok[0] = "direct";
			n = 1;
		} else {
			number++;
			for (t = strtok_r(line, " \t\r\f\v", &tsave); t != NULL;
			     t = strtok_r(NULL, " \t\r\f\v", &tsave)) {
				if (n < 4)
					tok[n] = t;
				n++;
			}
		}
		if (n == 0 || tok[0][0] == '#')
			continue;
		/* where the method came from, for the messages */
		if (dflt)
			snprintf(where, sizeof(where), "default method %s", tok[0]);
		else
			snprintf(where, sizeof(where), "line %d of %s", number, conf);
		if (strcmp(tok[0], "http") == 0 && n == 3) {
			ds_error e;
			ds_error_clear(&e);
			rc = snapshot_http(s, conf, tok[1], tok[2], &e);
			if (rc == DS_OK)
				goto out;
			/* a server that is down is the normal case for trying
			 * the next line; an unreadable access file is not */
			snapshot_log(s, rc == DS_EBUSY ? DS_LOG_VERBOSE :
			             DS_LOG_WARN, "%s: %s", where, e.msg);
			last = e;
			if (rc == DS_ENOMEM) {
				if (err)
					*err = e;
				goto out;
			}
		} else if (strcmp(tok[0], "control") == 0 && n <= 2) {
			ds_error e;
			ds_error_clear(&e);
			rc = snapshot_control(s, n == 2 ? tok[1] : NULL, &e);
			if (rc == DS_OK)
				goto out;
			if (rc != DS_EBUSY) {
				/* our own lock failed (I/O error, no memory):
				 * the next line would meet the same disk */
				if (err)
					*err = e;
				goto out;
			}
			/* the storage process is not running, not ours, or
			 * busy: the next line may do */
			snapshot_log(s, DS_LOG_VERBOSE, "%s: %s", where, e.msg);
			last = e;
		} else if (strcmp(tok[0], "nodirect") == 0 && n == 1) {
			last_resort = 0;
		} else if (strcmp(tok[0], "direct") == 0 && n == 1) {
			ds_error e;
			ds_error_clear(&e);
			last_resort = 0;
			rc = snapshot_direct(s, &e);
			if (rc == DS_OK) {
				snapshot_log(s, DS_LOG_INFO,
				             "Entered snapshot using direct access");
				goto out;
			}
			snapshot_log(s, DS_LOG_VERBOSE, "%s", e.msg);
			last = e;
			if (rc != DS_EBUSY) {
				/* not a storage, I/O error: retrying won't help */
				if (err)
					*err = e;
				goto out;
			}
		} else {
			snapshot_log(s, DS_LOG_WARN, "malformed line %d in %s",
			             number, conf);
		}
	}
	rc = last.status != DS_OK ? last.status : DS_EBUSY;
	if (err != NULL)
		*err = last;
out:
	free(buf);
	return rc;
}

int
ds_snapshot_acquire(const char *home, const struct ds_snapshot_opts *opts,
                    ds_snapshot **out, ds_error *err)
{
	struct ds_snapshot_opts defaults = {0};
	ds_snapshot *s;
	const char *ver;
	char real[PATH_MAX], conf[PATH_MAX], host[256];
	struct stat st;
	time_t deadline;
	int rc;

	*out = NULL;
	if (opts == NULL)
		opts = &defaults;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return ds_error_set(err, DS_ENOMEM, "snapshot: out of memory");
	s->log = opts->log;
	s->log_ctx = opts->log_ctx;
	s->ctl_fd = -1;
	s->quiet = opts->quiet;

	ver = getenv("SNAPSHOT_VERSION");
	if (ver != NULL) {
		const char *dir = getenv("SNAPSHOT_DIRECTORY");
		const char *ts = getenv("SNAPSHOT_TIMESTAMP");
		char a[PATH_MAX], b[PATH_MAX];

		if (strcmp(ver, "2") != 0) {
			rc = ds_error_set(err, DS_ECONFIG, "snapshot: wrong version "
			                  "of the snapshot tool (SNAPSHOT_VERSION=%s)",
			                  ver);
			goto fail;
		}
		if (dir == NULL || dir[0] == '\0') {
			rc = ds_error_set(err, DS_EINVAL, "snapshot: SNAPSHOT_VERSION "
			                  "is set but SNAPSHOT_DIRECTORY is not");
			goto fail;
		}
		if (home != NULL && strcmp(home, dir) != 0 &&
		    (realpath(home, a) == NULL || realpath(dir, b) == NULL ||
		     strcmp(a, b) != 0)) {
			rc = ds_error_set(err, DS_EINVAL, "snapshot: directories "
			                  "different (%s is not the enclosing "
			                  "snapshot's %s)", home, dir);
			goto fail;
		}
		if ((s->dir = strdup(dir)) == NULL) {
			rc = ds_error_set(err, DS_ENOMEM, "snapshot: out of memory");
			goto fail;
		}
		s->timestamp = ts ? atoll(ts) : (long long)time(NULL);
		s->inherited = 1;
		*out = s;
		return DS_OK;
	}

	if (home == NULL) {
		rc = ds_error_set(err, DS_EINVAL, "snapshot: must be given the "
		                  "storage directory, or run under ds snapshot");
		goto fail;
	}
	if (realpath(home, real) == NULL) {
		rc = ds_error_sys(err, errno, "snapshot: resolve", home);
		goto fail;
	}
	if ((rc = ds_path_join(conf, sizeof(conf), real, "A", err)) != DS_OK)
		goto fail;
	if (stat(conf, &st) != 0 || !S_ISDIR(st.st_mode)) {
		rc = ds_error_set(err, DS_ENOTFOUND, "snapshot: %s is not a "
		                  "DirectoryStorage directory (no A/)", home);
		goto fail;
	}
	if ((s->dir = strdup(real)) == NULL) {
		rc = ds_error_set(err, DS_ENOMEM, "snapshot: out of memory");
		goto fail;
	}
	if (opts->conf_path != NULL && strcmp(opts->conf_path, "-") != 0) {
		if (strlen(opts->conf_path) >= sizeof(conf)) {
			rc = ds_error_set(err, DS_EINVAL, "snapshot: %s: name too "
			                  "long", opts->conf_path);
			goto fail;
		}
		memcpy(conf, opts->conf_path, strlen(opts->conf_path) + 1);
	}
	else if ((rc = ds_path_join(conf, sizeof(conf), real,
	                            "config/snapshot.conf", err)) != DS_OK)
		goto fail;
	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	/* host-pid as the original; short enough for a control request */
	snprintf(s->code, sizeof(s->code), "%.180s-%ld", host,
	         (long)getpid());

	deadline = time(NULL) + (time_t)opts->timeout;
	for (;;) {
		ds_error e;

		ds_error_clear(&e);
		rc = snapshot_try(s, conf, &e);
		if (rc == DS_OK)
			break;
		if (rc != DS_EBUSY || time(NULL) >= deadline) {
			if (err != NULL)
				*err = e;
			goto fail;
		}
		snapshot_log(s, DS_LOG_INFO, "Retrying snapshot.... (%s)", e.msg);
		sleep(opts->sleep ? opts->sleep : 10);
	}
	snapshot_log(s, DS_LOG_INFO, "Locked snapshot mode");
	*out = s;
	return DS_OK;
fail:
	snapshot_free(s);
	return rc;
}

int
ds_snapshot_release(ds_snapshot *s, ds_error *err)
{
	int rc = DS_OK;

	if (s == NULL)
		return DS_OK;
	if (!s->inherited) {
		snapshot_unlock(s);
		snapshot_log(s, DS_LOG_INFO, "Unlocked snapshot mode");
		if (s->url != NULL) {
			rc = snapshot_xmlrpc(s->url, s->user, s->password,
			                     "leaveSnapshot", s->code, err);
			if (rc == DS_OK)
				snapshot_log(s, DS_LOG_INFO, "Left snapshot mode");
			else if (err != NULL)
				err->status = rc = DS_EIO;
		}
		if (s->ctl_fd >= 0) {
			rc = snapshot_control_leave(s, err);
			if (rc == DS_OK)
				snapshot_log(s, DS_LOG_INFO, "Left snapshot mode");
			else if (err != NULL)
				err->status = rc = DS_EIO;
		}
	}
	snapshot_free(s);
	return rc;
}
