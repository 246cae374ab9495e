/*
 * control.c - the control socket of a storage held open by a process
 * (DS_OPEN_CONTROL), and the client side that `ds snapshot` and the master
 * side of `ds replica` use through snapshot.c.
 *
 * A storage process (a ZEO or Zope server) holds misc/lock for as long as
 * it runs, so a backup or a replication cannot open the storage directly.
 * The original let such tools call enterSnapshot(code) / leaveSnapshot(code)
 * over XML-RPC on the Zope server (snapshot.conf `http`). The engine offers
 * the same two calls on a unix stream socket in the storage, misc/control,
 * so that nothing but the storage's owner and root can use them, without
 * a web server, a password file or a network port.
 *
 * Protocol: lines of at most CONTROL_LINE_MAX bytes ending in '\n' (a '\r'
 * before it is ignored). On accept the server sends the greeting
 * "dirstorage-control 1". Then each request line gets one reply line:
 *   enter CODE   enter snapshot mode "user/CODE" (the original's storage
 *                prefixes "user/" too): the journal is flushed into A,
 *                later flushes go to B, misc/snapshot is written, and the
 *                storage lets go of misc/sublock so that the client can
 *                lock it (and must: that lock is what guarantees A stays
 *                a snapshot). Refused ("busy") while any snapshot mode is
 *                held, as the original's enter_snapshot.
 *   leave CODE   leave snapshot mode "user/CODE": the storage takes
 *                misc/sublock back (refused, "busy", while the client
 *                still holds it: it must unlock first) and moves B over
 *                A in the background. Refused ("state") under another code.
 *   status       "ok CURRENT": the current snapshot code ("shutdown",
 *                "user/...", "recombining/...") or "-" when A is written.
 * Replies: "ok" or "ok TEXT", or "error KIND MESSAGE" with KIND one of
 * busy (try again later), state, invalid (a malformed request: the
 * connection stays usable), denied (peer not allowed: closed), io.
 * CODE is 1..DS_CONTROL_CODE_MAX bytes of printable ASCII, no blanks.
 *
 * Who may connect: the socket is created mode 0600 by the process holding
 * the storage, and each peer's credentials (SO_PEERCRED) are checked: its
 * uid must be this process's effective uid or root. The client checks the
 * server likewise (root, itself, or the owner of the storage directory).
 *
 * A client that dies while holding snapshot mode: the original's http
 * mode left the storage in snapshot mode until someone called
 * leaveSnapshot, so a crashed backup script kept A frozen (flushes piling
 * up in B) until a human noticed. Here the connection is the lease: when
 * the connection that entered snapshot mode closes without leaving, the
 * server leaves that mode for it as soon as misc/sublock is free (the
 * kernel drops the dead client's flock; retried every CONTROL_RETRY_MS
 * until then). A live client that still holds misc/sublock keeps A a
 * snapshot in any case: leaving needs the sublock. So a client must keep
 * its connection open for as long as it needs the snapshot, which
 * `ds snapshot` does while COMMAND runs. A snapshot held when the storage
 * process closes stays (the close leaves the storage in that snapshot
 * mode, B holding what came after), as a close always does.
 *
 * The socket file: created only while misc/lock is held. An existing
 * misc/control is replaced only when it is a socket nobody listens on
 * (left by a holder that died); a symlink or another kind of file is
 * refused (it is not ours to remove), and a socket someone listens on
 * means another process serves this storage: refused. Close removes the
 * file if it is still the one we bound. A path too long for sun_path is
 * reached through /proc/self/fd/N/NAME of its directory.
 *
 * Nothing here is durable state: the socket file, its removal and the
 * socket calls are not fault-injected (src/io.c is for what a crash must
 * find consistent); snapshot mode itself goes through storage.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "storage_internal.h"

#define CONTROL_GREETING "dirstorage-control 1"
#define CONTROL_CLIENTS_MAX 16
#define CONTROL_RETRY_MS 200
#define CONTROL_REPLY_MAX (DS_ERROR_MSG_MAX + 64)

struct control_client {
	int fd;
	size_t len;
	char buf[CONTROL_LINE_MAX + 2];
	char held[DS_SNAPSHOT_CODE_MAX + 16]; /* code this connection entered */
	int dead;                 /* a reply could not be sent: drop it */
};

struct control {
	int lfd;                  /* the listening socket */
	int wake[2];              /* close writes to wake[1]: stop */
	dev_t dev;                /* misc/control as we bound it */
	ino_t ino;
	int bound;
	char path[DS_PATH_MAX];
	int have_thread;
	pthread_t thread;
	struct control_client cl[CONTROL_CLIENTS_MAX];
	size_t ncl;
	/* a snapshot code whose connection closed without leaving: left as
	 * soon as misc/sublock is free */
	char orphan[DS_SNAPSHOT_CODE_MAX + 16];
};

/* ---- parsing (shared by both sides; fuzz/fuzz_control.c) ---- */

static int
control_code_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f;
}

int
ds_control_parse_request(const char *line, size_t len,
                         struct ds_control_req *req, ds_error *err)
{
	size_t i, n;

	memset(req, 0, sizeof(*req));
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len > CONTROL_LINE_MAX)
		return ds_error_set(err, DS_EINVAL, "request longer than %d "
		                    "bytes", CONTROL_LINE_MAX);
	if (len == 6 && memcmp(line, "status", 6) == 0) {
		req->op = DS_CONTROL_STATUS;
		return DS_OK;
	}
	if (len > 6 && memcmp(line, "enter ", 6) == 0)
		req->op = DS_CONTROL_ENTER;
	else if (len > 6 && memcmp(line, "leave ", 6) == 0)
		req->op = DS_CONTROL_LEAVE;
	else
		return ds_error_set(err, DS_EINVAL, "unknown request (expected "
		                    "enter CODE, leave CODE or status)");
	n = len - 6;
	if (n > DS_CONTROL_CODE_MAX) {
		req->op = 0;
		return ds_error_set(err, DS_EINVAL, "snapshot code longer than "
		                    "%d bytes", DS_CONTROL_CODE_MAX);
	}
	for (i = 0; i < n; i++) {
		if (!control_code_char((unsigned char)line[6 + i])) {
			req->op = 0;
			return ds_error_set(err, DS_EINVAL, "snapshot code byte %zu "
			                    "is not printable ASCII (0x%02x)", i + 1,
			                    (unsigned char)line[6 + i]);
		}
	}
	memcpy(req->code, line + 6, n);
	req->code[n] = '\0';
	return DS_OK;
}

static const struct {
	const char *kind;
	int status;
} control_kinds[] = {
	{"busy", DS_EBUSY},
	{"state", DS_ESTATE},
	{"invalid", DS_EINVAL},
	{"denied", DS_EREFUSED},
	{"io", DS_EIO},
};

static const char *
control_kind(int status)
{
	for (size_t i = 0; i < sizeof(control_kinds) / sizeof(control_kinds[0]);
	     i++)
		if (control_kinds[i].status == status)
			return control_kinds[i].kind;
	return "io";
}

int
ds_control_parse_reply(const char *line, size_t len, char *text,
                       size_t textsz, ds_error *err)
{
	char msg[CONTROL_REPLY_MAX + 1];
	const char *p;
	size_t i, klen;

	if (textsz > 0)
		text[0] = '\0';
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len > CONTROL_REPLY_MAX)
		return ds_error_set(err, DS_EPROTO, "reply longer than %d bytes",
		                    CONTROL_REPLY_MAX);
	/* what we show of it: printable bytes only */
	for (i = 0; i < len; i++)
		msg[i] = (line[i] >= 0x20 && line[i] < 0x7f) ? line[i] : '?';
	msg[len] = '\0';
	if (strcmp(msg, "ok") == 0)
		return DS_OK;
	if (strncmp(msg, "ok ", 3) == 0) {
		if (textsz == 0)
			return DS_OK;   /* the caller wants no text */
		if (len - 3 >= textsz)
			return ds_error_set(err, DS_EPROTO, "reply text longer "
			                    "than %zu bytes", textsz - 1);
		memcpy(text, msg + 3, len - 3 + 1);
		return DS_OK;
	}
	if (strncmp(msg, "error ", 6) != 0)
		return ds_error_set(err, DS_EPROTO, "not a control reply: %.80s",
		                    msg);
	p = msg + 6;
	klen = strcspn(p, " ");
	for (i = 0; i < sizeof(control_kinds) / sizeof(control_kinds[0]); i++)
		if (strlen(control_kinds[i].kind) == klen &&
		    memcmp(control_kinds[i].kind, p, klen) == 0)
			return ds_error_set(err, control_kinds[i].status, "%s",
			                    p[klen] && p[klen + 1] ? p + klen + 1 :
			                    "(no message)");
	return ds_error_set(err, DS_EPROTO, "unknown error kind in reply: "
	                    "%.80s", msg);
}

/* ---- addresses ---- */

/* sa for path; when path does not fit in sun_path, through the
 * /proc/self/fd link of its directory, opened into *dfd (caller closes
 * it after bind/connect; -1 otherwise). Errors: DS_EIO, DS_ENOTFOUND,
 * DS_EINVAL. */
static int
control_sockaddr(const char *path, struct sockaddr_un *sa, int *dfd,
                 ds_error *err)
{
	char dir[DS_PATH_MAX];
	const char *base;
	int n;

	*dfd = -1;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) < sizeof(sa->sun_path)) {
		memcpy(sa->sun_path, path, strlen(path) + 1);
		return DS_OK;
	}
	base = strrchr(path, '/');
	if (base == NULL || (size_t)(base - path) >= sizeof(dir) ||
	    strlen(base + 1) > 64)
		return ds_error_set(err, DS_EINVAL, "control socket %s: name too "
		                    "long", path);
	memcpy(dir, path, (size_t)(base - path));
	dir[base - path] = '\0';
	*dfd = open(dir[0] ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*dfd < 0)
		return ds_error_sys(err, errno, "open", dir);
	n = snprintf(sa->sun_path, sizeof(sa->sun_path), "/proc/self/fd/%d/%s",
	             *dfd, base + 1);
	if (n < 0 || (size_t)n >= sizeof(sa->sun_path)) {
		close(*dfd);
		*dfd = -1;
		return ds_error_set(err, DS_EINVAL, "control socket %s: name too "
		                    "long", path);
	}
	return DS_OK;
}

/* Connect a new non-blocking socket to path. *refused (may be NULL) is
 * set when the socket exists but nobody listens on it. Errors: DS_EBUSY
 * (refused; or the listener's queue is full), DS_ENOTFOUND, DS_EIO. */
static int
control_dial(const char *path, int *out, int *refused, ds_error *err)
{
	struct sockaddr_un sa;
	int fd, dfd, rc, e;

	*out = -1;
	if (refused != NULL)
		*refused = 0;
	if ((rc = control_sockaddr(path, &sa, &dfd, err)) != DS_OK)
		return rc;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		rc = ds_error_sys(err, errno, "socket for", path);
		goto out;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		e = errno;
		if (e == ECONNREFUSED) {
			if (refused != NULL)
				*refused = 1;
			rc = ds_error_set(err, DS_EBUSY, "control socket %s: "
			                  "nobody listens (left by a storage process "
			                  "that stopped)", path);
		}
		else if (e == EAGAIN)
			rc = ds_error_set(err, DS_EBUSY, "control socket %s: the "
			                  "storage process is not accepting "
			                  "connections", path);
		else if (e == ENOENT)
			rc = ds_error_set(err, DS_ENOTFOUND, "control socket %s: "
			                  "no such file", path);
		else
			rc = ds_error_sys(err, e, "connect to", path);
		close(fd);
		goto out;
	}
	*out = fd;
	rc = DS_OK;
out:
	if (dfd >= 0)
		close(dfd);
	return rc;
}

/* ---- the server ---- */

static void
control_send(struct control_client *c, const char *fmt, ...)
	DS_PRINTF(2, 3);

/* Send one reply line; a client that cannot take it (gone, or not
 * reading: the socket buffer is full) is dropped by the caller. */
static void
control_send(struct control_client *c, const char *fmt, ...)
{
	char line[CONTROL_REPLY_MAX + 2];
	va_list ap;
	ssize_t n;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (len < 0)
		len = 0;
	if ((size_t)len > sizeof(line) - 2)
		len = (int)sizeof(line) - 2;
	/* one line: a message never breaks the framing */
	for (int i = 0; i < len; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	line[len++] = '\n';
	do
		n = send(c->fd, line, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n != len)
		c->dead = 1;
}

static void
control_send_error(struct control_client *c, const ds_error *e)
{
	control_send(c, "error %s %s", control_kind(e->status), e->msg);
}

/* Leave the orphaned snapshot mode if its sublock is free. */
static void
control_try_orphan(ds_storage *s, struct control *c)
{
	ds_error e;
	int rc;

	if (c->orphan[0] == '\0')
		return;
	ds_error_clear(&e);
	rc = ds_storage_snapshot_leave(s, c->orphan, &e);
	/* busy: its holder (or the kernel, for a dead one) has not let go
	 * of misc/sublock yet. Anything else ends the attempt: left, or
	 * left by someone else (state), or an error the next open's
	 * recovery deals with. */
	if (rc != DS_EBUSY)
		c->orphan[0] = '\0';
}

static void
control_forget(struct control *c, const char *code)
{
	for (size_t i = 0; i < c->ncl; i++)
		if (strcmp(c->cl[i].held, code) == 0)
			c->cl[i].held[0] = '\0';
	if (strcmp(c->orphan, code) == 0)
		c->orphan[0] = '\0';
}

static void
control_request(ds_storage *s, struct control *c, struct control_client *cl,
                const char *line, size_t len)
{
	struct ds_control_req req;
	char code[DS_SNAPSHOT_CODE_MAX + 16];
	ds_error e;
	int rc;

	ds_error_clear(&e);
	if (ds_control_parse_request(line, len, &req, &e) != DS_OK) {
		control_send_error(cl, &e);
		return;
	}
	switch (req.op) {
	case DS_CONTROL_STATUS:
		ds_storage_snapshot_code(s, code);
		control_send(cl, "ok %s", code[0] ? code : "-");
		return;
	case DS_CONTROL_ENTER:
		if (cl->held[0] != '\0') {
			control_send(cl, "error state this connection already "
			             "holds snapshot mode %s", cl->held);
			return;
		}
		snprintf(code, sizeof(code), "user/%s", req.code);
		rc = ds_storage_snapshot_enter(s, code, &e);
		if (rc != DS_OK) {
			control_send_error(cl, &e);
			return;
		}
		/* the client takes misc/sublock next: that lock, not this
		 * connection, is what keeps A a snapshot. The mode was just
		 * entered under this code: nothing to refuse. */
		rc = ds_storage_snapshot_let_go(s, code, &e);
		if (rc != DS_OK) {
			ds_storage_snapshot_leave(s, code, NULL);
			control_send_error(cl, &e);
			return;
		}
		snprintf(cl->held, sizeof(cl->held), "%s", code);
		control_send(cl, "ok");
		return;
	case DS_CONTROL_LEAVE:
		snprintf(code, sizeof(code), "user/%s", req.code);
		rc = ds_storage_snapshot_leave(s, code, &e);
		if (rc != DS_OK) {
			control_send_error(cl, &e);
			return;
		}
		/* the original lets anyone with the code leave (a backup
		 * script, or an admin's form): so do we, and the connection
		 * that entered no longer holds it */
		control_forget(c, code);
		control_send(cl, "ok");
		return;
	}
}

static void
control_drop(ds_storage *s, struct control *c, size_t i)
{
	struct control_client *cl = &c->cl[i];

	close(cl->fd);
	if (cl->held[0] != '\0') {
		snprintf(c->orphan, sizeof(c->orphan), "%s", cl->held);
		control_try_orphan(s, c);
	}
	c->cl[i] = c->cl[--c->ncl];
}

/* Read what the client sent and answer every complete line. Returns 0
 * when the client must be dropped. */
static int
control_read(ds_storage *s, struct control *c, struct control_client *cl)
{
	ssize_t n;
	char *nl;

	do
		n = recv(cl->fd, cl->buf + cl->len, sizeof(cl->buf) - 1 - cl->len,
		         MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 1;
	if (n <= 0)
		return 0;
	cl->len += (size_t)n;
	while ((nl = memchr(cl->buf, '\n', cl->len)) != NULL) {
		size_t l = (size_t)(nl - cl->buf);
		control_request(s, c, cl, cl->buf, l);
		if (cl->dead)
			return 0;
		memmove(cl->buf, nl + 1, cl->len - l - 1);
		cl->len -= l + 1;
	}
	if (cl->len >= sizeof(cl->buf) - 1) {
		/* no newline within the longest request: not our protocol */
		control_send(cl, "error invalid request longer than %d bytes",
		             CONTROL_LINE_MAX);
		return 0;
	}
	return 1;
}

static void
control_accept(struct control *c)
{
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct control_client tmp;
	int fd;

	for (;;) {
		clen = sizeof(cred);
		fd = accept4(c->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return;   /* EAGAIN: no more; anything else: next poll */
		}
		memset(&tmp, 0, sizeof(tmp));
		tmp.fd = fd;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0) {
			close(fd);
			continue;
		}
		if (cred.uid != 0 && cred.uid != geteuid()) {
			control_send(&tmp, "error denied uid %u may not use the "
			             "control socket of a storage held by uid %u",
			             (unsigned)cred.uid, (unsigned)geteuid());
			close(fd);
			continue;
		}
		if (c->ncl >= CONTROL_CLIENTS_MAX) {
			control_send(&tmp, "error busy too many connections");
			close(fd);
			continue;
		}
		control_send(&tmp, CONTROL_GREETING);
		if (tmp.dead) {
			close(fd);
			continue;
		}
		c->cl[c->ncl++] = tmp;
	}
}

static void *
control_thread(void *arg)
{
	ds_storage *s = arg;
	struct control *c = s->control;
	struct pollfd pfd[2 + CONTROL_CLIENTS_MAX];

	for (;;) {
		size_t n = 0, ncl = c->ncl;
		int r;

		pfd[n].fd = c->wake[0];
		pfd[n++].events = POLLIN;
		pfd[n].fd = c->lfd;
		pfd[n++].events = POLLIN;
		for (size_t i = 0; i < ncl; i++) {
			pfd[n].fd = c->cl[i].fd;
			pfd[n++].events = POLLIN;
		}
		r = poll(pfd, n, c->orphan[0] ? CONTROL_RETRY_MS : -1);
		if (r < 0 && errno != EINTR)
			break;   /* cannot happen with valid descriptors */
		if (r > 0 && pfd[0].revents)
			break;
		control_try_orphan(s, c);
		if (r <= 0)
			continue;
		/* clients first, newest first: dropping moves the last one
		 * into the hole, which has been served already */
		for (size_t i = ncl; i-- > 0;) {
			if (pfd[2 + i].revents == 0)
				continue;
			if (!control_read(s, c, &c->cl[i]))
				control_drop(s, c, i);
		}
		if (pfd[1].revents)
			control_accept(c);
	}
	return NULL;
}

static void
control_free(struct control *c)
{
	struct stat st;

	if (c == NULL)
		return;
	for (size_t i = 0; i < c->ncl; i++)
		close(c->cl[i].fd);
	if (c->lfd >= 0)
		close(c->lfd);
	/* remove the socket file only if it is still the one we bound */
	if (c->bound && lstat(c->path, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    st.st_dev == c->dev && st.st_ino == c->ino)
		unlink(c->path);
	if (c->wake[0] >= 0)
		close(c->wake[0]);
	if (c->wake[1] >= 0)
		close(c->wake[1]);
	free(c);
}

/* An existing misc/control: refuse it, or remove it when stale. */
static int
control_clear_old(const char *path, ds_error *err)
{
	struct stat st;
	int fd, rc, refused;

	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			return DS_OK;
		return ds_error_sys(err, errno, "stat", path);
	}
	if (S_ISLNK(st.st_mode))
		return ds_error_set(err, DS_ECONFIG, "control socket %s is a "
		                    "symbolic link: refused (remove it)", path);
	if (!S_ISSOCK(st.st_mode))
		return ds_error_set(err, DS_ECONFIG, "control socket %s exists "
		                    "and is not a socket: refused (remove it)",
		                    path);
	rc = control_dial(path, &fd, &refused, err);
	if (rc == DS_OK) {
		close(fd);
		return ds_error_set(err, DS_EBUSY, "control socket %s: another "
		                    "process listens on it", path);
	}
	if (!refused)
		return rc;
	/* stale: its process is gone (we hold misc/lock, so no storage
	 * process can be starting on it either) */
	if (unlink(path) != 0 && errno != ENOENT)
		return ds_error_sys(err, errno, "remove stale socket", path);
	return DS_OK;
}

int
control_open(ds_storage *s, ds_error *err)
{
	struct control *c;
	struct sockaddr_un sa;
	struct stat st;
	int dfd = -1, rc;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return ds_error_set(err, DS_ENOMEM, "control socket: out of "
		                    "memory");
	c->lfd = c->wake[0] = c->wake[1] = -1;
	if ((rc = storage_path(s, c->path, sizeof(c->path), "misc/control",
	                       err)) != DS_OK)
		goto fail;
	if ((rc = control_clear_old(c->path, err)) != DS_OK)
		goto fail;
	if ((rc = control_sockaddr(c->path, &sa, &dfd, err)) != DS_OK)
		goto fail;
	c->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->lfd < 0) {
		rc = ds_error_sys(err, errno, "socket for", c->path);
		goto fail;
	}
	/* On Linux the socket file is created with the socket inode's mode
	 * (less the umask): 0600 from the start, never briefly wider. */
	if (fchmod(c->lfd, 0600) != 0) {
		rc = ds_error_sys(err, errno, "chmod socket", c->path);
		goto fail;
	}
	if (bind(c->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		if (errno == EADDRINUSE)
			rc = ds_error_set(err, DS_EBUSY, "control socket %s: "
			                  "created by another process meanwhile",
			                  c->path);
		else
			rc = ds_error_sys(err, errno, "bind", c->path);
		goto fail;
	}
	if (lstat(c->path, &st) != 0) {
		rc = ds_error_sys(err, errno, "stat", c->path);
		goto fail;
	}
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	c->bound = 1;
	/* elsewhere than Linux the mode may come from the umask alone */
	if (!S_ISSOCK(st.st_mode) ||
	    ((st.st_mode & 077) != 0 && chmod(c->path, 0600) != 0)) {
		rc = ds_error_set(err, DS_EIO, "control socket %s: cannot make "
		                  "it private to its owner", c->path);
		goto fail;
	}
	if (listen(c->lfd, CONTROL_CLIENTS_MAX) != 0) {
		rc = ds_error_sys(err, errno, "listen on", c->path);
		goto fail;
	}
	if (pipe2(c->wake, O_CLOEXEC) != 0) {
		rc = ds_error_sys(err, errno, "pipe for", c->path);
		goto fail;
	}
	if (dfd >= 0)
		close(dfd);
	s->control = c;
	return DS_OK;
fail:
	if (dfd >= 0)
		close(dfd);
	control_free(c);
	return rc;
}

int
control_start(ds_storage *s, ds_error *err)
{
	struct control *c = s->control;

	if (pthread_create(&c->thread, NULL, control_thread, s) != 0)
		return ds_error_set(err, DS_ENOMEM, "control socket %s: cannot "
		                    "start its thread", c->path);
	c->have_thread = 1;
	return DS_OK;
}

void
control_close(ds_storage *s)
{
	struct control *c = s->control;
	ssize_t n;

	if (c == NULL)
		return;
	if (c->have_thread) {
		do
			n = write(c->wake[1], "x", 1);
		while (n < 0 && errno == EINTR);
		pthread_join(c->thread, NULL);
	}
	s->control = NULL;
	control_free(c);
}

/* ---- the client ---- */

/* Read one line within the deadline (CLOCK_MONOTONIC seconds). */
static int
control_readline(int fd, const char *path, double deadline, char *line,
                 size_t linesz, size_t *len, ds_error *err)
{
	size_t n = 0;

	for (;;) {
		struct pollfd p = {fd, POLLIN, 0};
		double left = deadline - ds_now();
		ssize_t r;
		char ch;

		if (left <= 0)
			return ds_error_set(err, DS_EBUSY, "control socket %s: no "
			                    "answer in time", path);
		r = poll(&p, 1, (int)(left * 1000) + 1);
		if (r < 0 && errno != EINTR)
			return ds_error_sys(err, errno, "poll", path);
		if (r <= 0)
			continue;
		do
			r = recv(fd, &ch, 1, MSG_DONTWAIT);
		while (r < 0 && errno == EINTR);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			continue;
		if (r < 0)
			return ds_error_sys(err, errno, "read from", path);
		if (r == 0)
			return ds_error_set(err, DS_EBUSY, "control socket %s: the "
			                    "storage process closed the connection",
			                    path);
		if (ch == '\n') {
			line[n] = '\0';
			*len = n;
			return DS_OK;
		}
		if (n + 1 >= linesz)
			return ds_error_set(err, DS_EPROTO, "control socket %s: "
			                    "reply line too long", path);
		line[n++] = ch;
	}
}

int
ds_control_connect(const char *path, uid_t owner, int timeout, int *out,
                   ds_error *err)
{
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct stat st;
	char line[CONTROL_REPLY_MAX + 2];
	size_t len;
	int fd = -1, rc;

	*out = -1;
	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			return ds_error_set(err, DS_ENOTFOUND, "control socket %s: "
			                    "no such file (no storage process "
			                    "listens)", path);
		return ds_error_sys(err, errno, "stat", path);
	}
	if (S_ISLNK(st.st_mode))
		return ds_error_set(err, DS_ECONFIG, "control socket %s is a "
		                    "symbolic link: refused", path);
	if (!S_ISSOCK(st.st_mode))
		return ds_error_set(err, DS_ECONFIG, "control socket %s is not a "
		                    "socket", path);
	if ((rc = control_dial(path, &fd, NULL, err)) != DS_OK)
		return rc;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0) {
		rc = ds_error_sys(err, errno, "peer credentials of", path);
		goto fail;
	}
	/* who answers must be trusted with the storage: root, ourselves or
	 * the storage's owner */
	if (cred.uid != 0 && cred.uid != geteuid() && cred.uid != owner) {
		rc = ds_error_set(err, DS_EREFUSED, "control socket %s: the "
		                  "process listening (pid %ld) runs as uid %u, "
		                  "not root, us or the storage's owner (uid %u)",
		                  path, (long)cred.pid, (unsigned)cred.uid,
		                  (unsigned)owner);
		goto fail;
	}
	rc = control_readline(fd, path, ds_now() + timeout, line, sizeof(line),
	                      &len, err);
	if (rc != DS_OK)
		goto fail;
	if (strcmp(line, CONTROL_GREETING) != 0) {
		ds_error e;
		char text[64];
		ds_error_clear(&e);
		/* a refusal (denied, busy) comes instead of the greeting */
		rc = ds_control_parse_reply(line, len, text, sizeof(text), &e);
		if (rc == DS_OK || rc == DS_EPROTO)
			rc = ds_error_set(err, DS_EPROTO, "control socket %s: not "
			                  "a DirectoryStorage control socket (it "
			                  "said: %.60s)", path, line);
		else
			rc = ds_error_set(err, rc, "control socket %s: %s", path,
			                  e.msg);
		goto fail;
	}
	*out = fd;
	return DS_OK;
fail:
	close(fd);
	return rc;
}

int
ds_control_call(int fd, const char *path, const char *request, int timeout,
                char *text, size_t textsz, ds_error *err)
{
	char line[CONTROL_REPLY_MAX + 2];
	double deadline = ds_now() + timeout;
	size_t len = strlen(request), off = 0;
	ds_error e;
	int rc;

	if (len > CONTROL_LINE_MAX || memchr(request, '\n', len) != NULL)
		return ds_error_set(err, DS_EINVAL, "control socket %s: bad "
		                    "request", path);
	memcpy(line, request, len);
	line[len++] = '\n';
	while (off < len) {
		struct pollfd p = {fd, POLLOUT, 0};
		double left = deadline - ds_now();
		ssize_t n;

		if (left <= 0)
			return ds_error_set(err, DS_EBUSY, "control socket %s: "
			                    "cannot send in time", path);
		if (poll(&p, 1, (int)(left * 1000) + 1) < 0 && errno != EINTR)
			return ds_error_sys(err, errno, "poll", path);
		n = send(fd, line + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN ||
		              errno == EWOULDBLOCK))
			continue;
		if (n < 0) {
			if (errno == EPIPE || errno == ECONNRESET)
				return ds_error_set(err, DS_EBUSY, "control socket "
				                    "%s: the storage process closed "
				                    "the connection", path);
			return ds_error_sys(err, errno, "send to", path);
		}
		off += (size_t)n;
	}
	rc = control_readline(fd, path, deadline, line, sizeof(line), &len,
	                      err);
	if (rc != DS_OK)
		return rc;
	ds_error_clear(&e);
	rc = ds_control_parse_reply(line, len, text, textsz, &e);
	if (rc != DS_OK)
		return ds_error_set(err, rc, "control socket %s: %s: %s", path,
		                    request, e.msg);
	return DS_OK;
}
