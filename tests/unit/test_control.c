/*
 * test_control.c - the control socket (DS_OPEN_CONTROL): a storage opened
 * in this process listens on misc/control and a client acquires snapshot
 * mode through it (ds_snapshot_acquire, with and without snapshot.conf);
 * commits go on meanwhile and leave A untouched; the request and reply
 * parsers; garbage and oversized requests; a client that disconnects
 * while holding snapshot mode; leave refused while misc/sublock is held;
 * ds_storage_snapshot_let_go's rules; a stale socket replaced, a symlink, a regular file and a live listener
 * refused; the peer uid check; a close while a client holds the snapshot.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "helper_engine.h"
#include "helper_fixture.h"
#include "internal.h"

static void
path_of(char *out, size_t outsz, const char *home, const char *rel)
{
	snprintf(out, outsz, "%s/%s", home, rel);
}

static void
commit_one(ds_storage *s, ds_oid oid, const char *text)
{
	ds_txn *t = NULL;
	ds_tid cur = 0, tid = 0;
	ds_error err;

	if (ds_storage_current_serial(s, oid, &cur, &err) != DS_OK)
		cur = 0;
	OK(ds_txn_begin(s, "test", "control", NULL, 0, &t, &err));
	OK(ds_txn_store(t, oid, cur, text, strlen(text), &err));
	OK(ds_txn_finish(t, &tid, &err));
}

static void
assert_load(ds_storage *s, ds_oid oid, const char *text)
{
	unsigned char *p = NULL;
	size_t len = 0;
	ds_error err;

	OK(ds_storage_load(s, oid, &p, &len, NULL, &err));
	assert_int_equal(len, strlen(text));
	assert_memory_equal(p, text, len);
	free(p);
}

/* A raw connection to misc/control; the greeting is read and checked. */
static int
raw_connect(const char *home)
{
	char path[4096];
	ds_error err;
	int fd = -1;

	path_of(path, sizeof(path), home, "misc/control");
	ds_error_clear(&err);
	if (ds_control_connect(path, geteuid(), 30, &fd, &err) != DS_OK)
		fail_msg("connect: %s", err.msg);
	return fd;
}

/* Read one reply line. */
static void
raw_readline(int fd, char *reply, size_t replysz)
{
	size_t n = 0;
	char ch;

	for (;;) {
		ssize_t r = recv(fd, &ch, 1, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN) {
			usleep(1000);
			continue;
		}
		assert_int_equal(r, 1);
		if (ch == '\n')
			break;
		assert_true(n + 1 < replysz);
		reply[n++] = ch;
	}
	reply[n] = '\0';
}

/* Send raw bytes (no newline added), read one reply line. */
static void
raw_exchange(int fd, const void *req, size_t len, char *reply, size_t replysz)
{
	assert_int_equal(send(fd, req, len, MSG_NOSIGNAL), (ssize_t)len);
	raw_readline(fd, reply, replysz);
}

static void
raw_request(int fd, const char *line, char *reply, size_t replysz)
{
	char buf[1024];

	snprintf(buf, sizeof(buf), "%s\n", line);
	raw_exchange(fd, buf, strlen(buf), reply, replysz);
}

/* The current snapshot code, through a fresh connection. */
static void
status(const char *home, char *out, size_t outsz)
{
	char reply[512];
	int fd = raw_connect(home);

	raw_request(fd, "status", reply, sizeof(reply));
	assert_true(strncmp(reply, "ok ", 3) == 0);
	snprintf(out, outsz, "%s", reply + 3);
	close(fd);
}

/* Wait (bounded, generously: nothing here measures time) until the
 * status is `want`. */
static void
wait_status(const char *home, const char *want)
{
	char cur[512] = "";

	for (int i = 0; i < 6000; i++) {
		status(home, cur, sizeof(cur));
		if (strcmp(cur, want) == 0)
			return;
		usleep(10000);
	}
	fail_msg("status stayed '%s', expected '%s'", cur, want);
}

static void
test_parse_request(void **state)
{
	struct ds_control_req r;
	char big[400];
	ds_error err;

	(void)state;
	OK(ds_control_parse_request("status", 6, &r, &err));
	assert_int_equal(r.op, DS_CONTROL_STATUS);
	OK(ds_control_parse_request("enter host-12\r", 14, &r, &err));
	assert_int_equal(r.op, DS_CONTROL_ENTER);
	assert_string_equal(r.code, "host-12");
	OK(ds_control_parse_request("leave x", 7, &r, &err));
	assert_int_equal(r.op, DS_CONTROL_LEAVE);
	assert_string_equal(r.code, "x");
	assert_int_equal(ds_control_parse_request("enter ", 6, &r, &err),
	                 DS_EINVAL);
	assert_int_equal(ds_control_parse_request("enter a b", 9, &r, &err),
	                 DS_EINVAL);
	assert_non_null(strstr(err.msg, "not printable"));
	assert_int_equal(ds_control_parse_request("enter a\0b", 9, &r, &err),
	                 DS_EINVAL);
	assert_int_equal(ds_control_parse_request("status ", 7, &r, &err),
	                 DS_EINVAL);
	assert_int_equal(ds_control_parse_request("STATUS", 6, &r, &err),
	                 DS_EINVAL);
	assert_int_equal(ds_control_parse_request("", 0, &r, &err), DS_EINVAL);
	memset(big, 'a', sizeof(big));
	memcpy(big, "enter ", 6);
	/* the longest code is accepted, one more byte is not */
	OK(ds_control_parse_request(big, 6 + DS_CONTROL_CODE_MAX, &r, &err));
	assert_int_equal(strlen(r.code), DS_CONTROL_CODE_MAX);
	assert_int_equal(ds_control_parse_request(big, 7 + DS_CONTROL_CODE_MAX,
	                                          &r, &err), DS_EINVAL);
	assert_int_equal(ds_control_parse_request(big, sizeof(big), &r, &err),
	                 DS_EINVAL);
	assert_int_equal(r.op, 0);
}

static void
test_parse_reply(void **state)
{
	char text[16];
	ds_error err;

	(void)state;
	OK(ds_control_parse_reply("ok", 2, text, sizeof(text), &err));
	assert_string_equal(text, "");
	OK(ds_control_parse_reply("ok user/x\r", 10, text, sizeof(text), &err));
	assert_string_equal(text, "user/x");
	assert_int_equal(ds_control_parse_reply("ok 0123456789abcdefXYZ", 22,
	                                        text, sizeof(text), &err),
	                 DS_EPROTO);
	assert_int_equal(ds_control_parse_reply("error busy in use", 17, text,
	                                        sizeof(text), &err), DS_EBUSY);
	assert_string_equal(err.msg, "in use");
	assert_int_equal(ds_control_parse_reply("error state", 11, text,
	                                        sizeof(text), &err), DS_ESTATE);
	assert_int_equal(ds_control_parse_reply("error denied uid", 16, text,
	                                        sizeof(text), &err),
	                 DS_EREFUSED);
	assert_int_equal(ds_control_parse_reply("error weird x", 13, text,
	                                        sizeof(text), &err), DS_EPROTO);
	assert_int_equal(ds_control_parse_reply("okay", 4, text, sizeof(text),
	                                        &err), DS_EPROTO);
	assert_int_equal(ds_control_parse_reply("", 0, text, sizeof(text),
	                                        &err), DS_EPROTO);
}

/* The main path: no snapshot.conf, the storage held open here with its
 * control socket; ds_snapshot_acquire goes through the socket, commits go
 * on into B, A stays as it was; release leaves snapshot mode. */
static void
test_acquire_through_socket(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = engine_mkds(scratch, "s", "bushy");
	char path[4096], dA0[33], dA1[33], code[DS_SNAPSHOT_CODE_MAX + 16];
	char want[512], host[256];
	struct ds_snapshot_opts o = {0};
	struct engine_log log = {0};
	ds_snapshot *snap = NULL;
	ds_storage *s = NULL;
	unsigned char *buf;
	struct stat st;
	ds_error err;

	(void)state;
	OK(ds_storage_open(home, DS_OPEN_CONTROL, &s, &err));
	path_of(path, sizeof(path), home, "misc/control");
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	commit_one(s, 1, "before");
	OK(ds_storage_flush(s, &err));

	o.log = engine_log_cb;
	o.log_ctx = &log;
	OK(ds_snapshot_acquire(home, &o, &snap, &err));
	assert_non_null(strstr(log.text, "Entered snapshot using"));
	assert_non_null(strstr(log.text, "misc/control"));
	/* the storage's code is user/<host>-<pid>, as the original's */
	gethostname(host, sizeof(host));
	snprintf(want, sizeof(want), "user/%.180s-%ld", host, (long)getpid());
	ds_storage_snapshot_code(s, code);
	assert_string_equal(code, want);
	path_of(path, sizeof(path), home, "misc/snapshot");
	buf = engine_slurp(path, NULL);
	assert_string_equal((char *)buf, want);
	free(buf);
	/* the client holds misc/sublock, the storage process misc/lock */
	assert_false(engine_lockable(home, "sublock"));
	assert_false(engine_lockable(home, "lock"));

	path_of(path, sizeof(path), home, "A");
	engine_tree_digest(path, dA0, NULL);
	for (int i = 0; i < 5; i++)
		commit_one(s, 1, "while held");
	OK(ds_storage_flush(s, &err));
	assert_load(s, 1, "while held");
	engine_tree_digest(path, dA1, NULL);
	assert_string_equal(dA0, dA1);
	path_of(path, sizeof(path), home, "B");
	assert_true(engine_dir_entries(path) > 0);

	OK(ds_snapshot_release(snap, &err));
	assert_non_null(strstr(log.text, "Left snapshot mode"));
	OK(ds_storage_flush(s, &err));   /* waits for the recombination */
	ds_storage_snapshot_code(s, code);
	assert_string_equal(code, "");
	assert_int_equal(engine_dir_entries(path), 0);
	path_of(path, sizeof(path), home, "A");
	engine_tree_digest(path, dA1, NULL);
	assert_string_not_equal(dA0, dA1);
	assert_load(s, 1, "while held");

	OK(ds_storage_close(s, 0, &err));
	/* the socket goes with the process */
	path_of(path, sizeof(path), home, "misc/control");
	assert_false(engine_exists(path));
	free(home);
	fixture_remove_tree(scratch);
	free(scratch);
}

/* snapshot.conf decides alone when it exists: `control` (with or without
 * PATH) uses the socket; without that line the live storage is busy. */
static void
test_conf_lines(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = engine_mkds(scratch, "s", "flat");
	char conf[4096];
	struct ds_snapshot_opts o = {0};
	struct engine_log log = {0};
	ds_snapshot *snap = NULL;
	ds_storage *s = NULL;
	ds_error err;

	(void)state;
	OK(ds_storage_open(home, DS_OPEN_CONTROL, &s, &err));
	path_of(conf, sizeof(conf), home, "config/snapshot.conf");
	o.log = engine_log_cb;
	o.log_ctx = &log;

	OK(ds_io_write_file(conf, "nodirect\n", 9, 0644, 0, 0, &err));
	assert_int_equal(ds_snapshot_acquire(home, &o, &snap, &err), DS_EBUSY);
	assert_null(snap);

	OK(ds_io_write_file(conf, "control misc/control\nnodirect\n", 30, 0644,
	                    0, 0, &err));
	OK(ds_snapshot_acquire(home, &o, &snap, &err));
	OK(ds_snapshot_release(snap, &err));
	snap = NULL;

	/* a path where nothing listens: warned about? no, just busy, and
	 * the next line is tried */
	OK(ds_io_write_file(conf, "control misc/nothing\ncontrol\n", 29, 0644,
	                    0, 0, &err));
	log.len = 0;
	OK(ds_snapshot_acquire(home, &o, &snap, &err));
	assert_non_null(strstr(log.text, "misc/nothing"));
	OK(ds_snapshot_release(snap, &err));

	OK(ds_storage_close(s, 0, &err));
	/* nobody listens now: the line fails as busy, direct works */
	OK(ds_io_write_file(conf, "control\n", 8, 0644, 0, 0, &err));
	snap = NULL;
	log.len = 0;
	OK(ds_snapshot_acquire(home, &o, &snap, &err));
	assert_non_null(strstr(log.text, "direct access"));
	OK(ds_snapshot_release(snap, &err));
	free(home);
	fixture_remove_tree(scratch);
	free(scratch);
}

/* A socket file nobody listens on (a holder killed -9 leaves one): the
 * next open replaces it; the client falls back to direct meanwhile. */
static void
test_stale_socket(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = engine_mkds(scratch, "s", "bushy");
	char path[4096];
	struct sockaddr_un sa = {0};
	struct engine_log log = {0};
	struct ds_snapshot_opts o = {0};
	ds_snapshot *snap = NULL;
	ds_storage *s = NULL;
	struct stat st0, st1;
	ds_error err;
	int fd;

	(void)state;
	path_of(path, sizeof(path), home, "misc/control");
	sa.sun_family = AF_UNIX;
	assert_true(strlen(path) < sizeof(sa.sun_path));
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);   /* bound, never listened, closed: stale */
	/* marked by its mode: the new one is 0600 (inode numbers may be
	 * reused) */
	assert_int_equal(chmod(path, 0711), 0);
	assert_int_equal(lstat(path, &st0), 0);

	o.log = engine_log_cb;
	o.log_ctx = &log;
	OK(ds_snapshot_acquire(home, &o, &snap, &err));
	assert_non_null(strstr(log.text, "nobody listens"));
	assert_non_null(strstr(log.text, "direct access"));
	OK(ds_snapshot_release(snap, &err));

	OK(ds_storage_open(home, DS_OPEN_CONTROL, &s, &err));
	assert_int_equal(lstat(path, &st1), 0);
	assert_true(S_ISSOCK(st1.st_mode));
	assert_int_equal(st0.st_mode & 07777, 0711);
	assert_int_equal(st1.st_mode & 07777, 0600);
	close(raw_connect(home));
	OK(ds_storage_close(s, 0, &err));
	assert_false(engine_exists(path));
	free(home);
	fixture_remove_tree(scratch);
	free(scratch);
}

/* What open must refuse at misc/control, before recovery changes
 * anything: a symlink (even to nothing), a regular file, a socket a
 * process listens on. Each stays as it was. */
static void
test_refused_paths(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = engine_mkds(scratch, "s", "bushy");
	char path[4096], target[4096];
	struct sockaddr_un sa = {0};
	ds_storage *s = NULL;
	struct stat st;
	ds_error err;
	int fd;

	(void)state;
	path_of(path, sizeof(path), home, "misc/control");
	path_of(target, sizeof(target), scratch, "elsewhere");
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(ds_storage_open(home, DS_OPEN_CONTROL, &s, &err),
	                 DS_ECONFIG);
	assert_null(s);
	assert_non_null(strstr(err.msg, "symbolic link"));
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_false(engine_exists(target));
	/* the client refuses it too */
	assert_int_equal(ds_control_connect(path, geteuid(), 5, &fd, &err),
	                 DS_ECONFIG);
	/* the lock was let go: a plain open works */
	OK(ds_storage_open(home, 0, &s, &err));
	OK(ds_storage_close(s, 0, &err));
	unlink(path);

	OK(ds_io_write_file(path, "x", 1, 0600, 0, 0, &err));
	assert_int_equal(ds_storage_open(home, DS_OPEN_CONTROL, &s, &err),
	                 DS_ECONFIG);
	assert_non_null(strstr(err.msg, "not a socket"));
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	unlink(path);

	/* someone listens there (not a storage process of ours: it does
	 * not hold misc/lock) */
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(ds_storage_open(home, DS_OPEN_CONTROL, &s, &err),
	                 DS_EBUSY);
	assert_non_null(strstr(err.msg, "listens"));
	assert_true(engine_exists(path));
	close(fd);
	/* now stale: replaced */
	OK(ds_storage_open(home, DS_OPEN_CONTROL, &s, &err));
	OK(ds_storage_close(s, 0, &err));
	free(home);
	fixture_remove_tree(scratch);
	free(scratch);
}

/* Garbage gets "error invalid" and the connection stays usable; a line
 * longer than the limit closes it; the server keeps serving. */
static void
test_garbage_requests(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = engine_mkds(scratch, "s", "bushy");
	static const char *bad[] = {"hello", "enter", "enter ", "leave",
	                            "enter a b", "STATUS", "status now",
	                            "enter \x01\x02", "\xff\xfe"};
	char reply[4096], big[1000], code[DS_SNAPSHOT_CODE_MAX + 16];
	ds_storage *s = NULL;
	ds_error err;
	ssize_t r;
	int fd;

	(void)state;
	OK(ds_storage_open(home, DS_OPEN_CONTROL, &s, &err));
	fd = raw_connect(home);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		raw_request(fd, bad[i], reply, sizeof(reply));
		assert_true(strncmp(reply, "error invalid ", 14) == 0);
	}
	raw_exchange(fd, "enter a\0b\n", 10, reply, sizeof(reply));
	assert_true(strncmp(reply, "error invalid ", 14) == 0);
	raw_exchange(fd, "\n", 1, reply, sizeof(reply));
	assert_true(strncmp(reply, "error invalid ", 14) == 0);
	/* requests split across writes and several in one write */
	assert_int_equal(send(fd, "sta", 3, MSG_NOSIGNAL), 3);
	raw_exchange(fd, "tus\r\nstatus\n", 13, reply, sizeof(reply));
	assert_string_equal(reply, "ok -");
	raw_readline(fd, reply, sizeof(reply));
	assert_string_equal(reply, "ok -");
	close(fd);
	ds_storage_snapshot_code(s, code);
	assert_string_equal(code, "");

	fd = raw_connect(home);
	memset(big, 'x', sizeof(big));
	raw_exchange(fd, big, sizeof(big), reply, sizeof(reply));
	assert_non_null(strstr(reply, "error invalid request longer"));
	/* closed by the server: end of file, or a reset (the rest of the
	 * line was never read) */
	for (;;) {
		struct pollfd p = {fd, POLLIN, 0};
		assert_true(poll(&p, 1, -1) >= 0 || errno == EINTR);
		r = recv(fd, reply, sizeof(reply), MSG_DONTWAIT);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		break;
	}
	assert_true(r == 0 || (r < 0 && errno == ECONNRESET));
	close(fd);

	fd = raw_connect(home);
	raw_request(fd, "status", reply, sizeof(reply));
	assert_string_equal(reply, "ok -");
	close(fd);
	OK(ds_storage_close(s, 0, &err));
	free(home);
	fixture_remove_tree(scratch);
	free(scratch);
}

/* The connection is the lease: a client that entered snapshot mode and
 * hangs up without leaving has it left for it, but only once nobody holds
 * misc/sublock (a live snapshot user keeps A a snapshot). */
static void
test_disconnect_releases(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = engine_mkds(scratch, "s", "bushy");
	char reply[4096], cur[512], path[4096];
	ds_storage *s = NULL;
	ds_lock *sub = NULL;
	ds_error err;
	int fd, fd2;

	(void)state;
	OK(ds_storage_open(home, DS_OPEN_CONTROL, &s, &err));
	commit_one(s, 1, "one");

	/* entered, never took the sublock, hung up: left at once */
	fd = raw_connect(home);
	raw_request(fd, "enter dead-1", reply, sizeof(reply));
	assert_string_equal(reply, "ok");
	raw_request(fd, "enter again", reply, sizeof(reply));
	assert_true(strncmp(reply, "error state ", 12) == 0);
	status(home, cur, sizeof(cur));
	assert_string_equal(cur, "user/dead-1");
	/* a second enter is busy, as the original's */
	fd2 = raw_connect(home);
	raw_request(fd2, "enter other", reply, sizeof(reply));
	assert_true(strncmp(reply, "error busy ", 11) == 0);
	assert_non_null(strstr(reply, "user/dead-1"));
	close(fd2);
	close(fd);
	OK(ds_storage_flush(s, &err));
	wait_status(home, "-");
	path_of(path, sizeof(path), home, "misc/snapshot");
	assert_false(engine_exists(path));

	/* entered and took the sublock, then hung up: held while the
	 * sublock is; left once it is let go */
	fd = raw_connect(home);
	raw_request(fd, "enter dead-2", reply, sizeof(reply));
	assert_string_equal(reply, "ok");
	path_of(path, sizeof(path), home, "misc/sublock");
	OK(ds_lock_acquire(path, &sub, &err));
	close(fd);
	/* the hang-up is seen no later than this new connection (the
	 * server serves its clients before it accepts) */
	status(home, cur, sizeof(cur));
	assert_string_equal(cur, "user/dead-2");
	commit_one(s, 1, "two");
	status(home, cur, sizeof(cur));
	assert_string_equal(cur, "user/dead-2");
	path_of(path, sizeof(path), home, "misc/snapshot");
	assert_true(engine_exists(path));
	ds_lock_release(sub);
	wait_status(home, "-");
	OK(ds_storage_flush(s, &err));
	assert_false(engine_exists(path));
	assert_load(s, 1, "two");
	OK(ds_storage_close(s, 0, &err));
	free(home);
	fixture_remove_tree(scratch);
	free(scratch);
}

/* leave needs the sublock back: refused ("busy") while the client holds
 * it; a wrong code is "state"; anyone with the code may leave. */
static void
test_leave_rules(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = engine_mkds(scratch, "s", "bushy");
	char reply[4096], path[4096];
	ds_storage *s = NULL;
	ds_lock *sub = NULL;
	ds_error err;
	int fd, fd2;

	(void)state;
	OK(ds_storage_open(home, DS_OPEN_CONTROL, &s, &err));
	fd = raw_connect(home);
	raw_request(fd, "leave nothing", reply, sizeof(reply));
	assert_true(strncmp(reply, "error state ", 12) == 0);
	raw_request(fd, "enter k", reply, sizeof(reply));
	assert_string_equal(reply, "ok");
	path_of(path, sizeof(path), home, "misc/sublock");
	OK(ds_lock_acquire(path, &sub, &err));
	raw_request(fd, "leave k", reply, sizeof(reply));
	assert_true(strncmp(reply, "error busy ", 11) == 0);
	raw_request(fd, "leave other", reply, sizeof(reply));
	assert_true(strncmp(reply, "error state ", 12) == 0);
	ds_lock_release(sub);
	/* from another connection (the original's form or script) */
	fd2 = raw_connect(home);
	raw_request(fd2, "leave k", reply, sizeof(reply));
	assert_string_equal(reply, "ok");
	close(fd2);
	/* the first connection no longer holds it: its hang-up is
	 * harmless, and it may enter again */
	OK(ds_storage_flush(s, &err));
	raw_request(fd, "enter k2", reply, sizeof(reply));
	assert_string_equal(reply, "ok");
	raw_request(fd, "leave k2", reply, sizeof(reply));
	assert_string_equal(reply, "ok");
	close(fd);
	OK(ds_storage_close(s, 0, &err));
	free(home);
	fixture_remove_tree(scratch);
	free(scratch);
}

/* ds_storage_snapshot_let_go, the call a storage server makes after
 * entering snapshot mode for another process (the control socket's
 * enter, the dirstorage package's enter_snapshot): the sublock is free
 * for that process only in that mode, leave takes it back (refused
 * while the other holds it), and its refusals change nothing. */
static void
test_let_go(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = engine_mkds(scratch, "s", "bushy");
	char path[4096], dA0[33], dA1[33], code[DS_SNAPSHOT_CODE_MAX + 16];
	ds_storage *s = NULL, *ro = NULL;
	ds_lock *sub = NULL;
	ds_error err;

	(void)state;
	OK(ds_storage_open(home, 0, &s, &err));
	commit_one(s, 1, "one");
	/* not in snapshot mode: refused, the sublock stays ours */
	assert_int_equal(ds_storage_snapshot_let_go(s, "user/b", &err),
	                 DS_ESTATE);
	assert_non_null(strstr(err.msg, "not in snapshot mode user/b"));
	assert_false(engine_lockable(home, "sublock"));
	assert_int_equal(ds_storage_snapshot_let_go(s, "", &err), DS_EINVAL);
	{
		char longcode[DS_SNAPSHOT_CODE_MAX + 2];
		memset(longcode, 'x', sizeof(longcode) - 1);
		longcode[sizeof(longcode) - 1] = '\0';
		assert_int_equal(ds_storage_snapshot_let_go(s, longcode,
		                                            &err), DS_EINVAL);
	}
	OK(ds_storage_snapshot_enter(s, "user/b", &err));
	/* entered: still ours until let go of; another code is refused */
	assert_false(engine_lockable(home, "sublock"));
	assert_int_equal(ds_storage_snapshot_let_go(s, "user/c", &err),
	                 DS_ESTATE);
	assert_false(engine_lockable(home, "sublock"));
	OK(ds_storage_snapshot_let_go(s, "user/b", &err));
	OK(ds_storage_snapshot_let_go(s, "user/b", &err)); /* again: no-op */
	path_of(path, sizeof(path), home, "misc/sublock");
	OK(ds_lock_acquire(path, &sub, &err));
	/* the snapshot user holds it: commits go on into B, A unchanged,
	 * and leaving is refused, naming the holder */
	path_of(path, sizeof(path), home, "A");
	engine_tree_digest(path, dA0, NULL);
	commit_one(s, 1, "two");
	OK(ds_storage_flush(s, &err));
	engine_tree_digest(path, dA1, NULL);
	assert_string_equal(dA0, dA1);
	assert_int_equal(ds_storage_snapshot_leave(s, "user/b", &err),
	                 DS_EBUSY);
	assert_non_null(strstr(err.msg, "still held"));
	ds_storage_snapshot_code(s, code);
	assert_string_equal(code, "user/b");
	ds_lock_release(sub);
	OK(ds_storage_snapshot_leave(s, "user/b", &err));
	/* taken back */
	assert_false(engine_lockable(home, "sublock"));
	assert_load(s, 1, "two");
	OK(ds_storage_close(s, 0, &err));
	OK(ds_check(home, NULL, NULL, &err));
	/* read-only: refused */
	OK(ds_storage_open(home, DS_OPEN_READONLY, &ro, &err));
	assert_int_equal(ds_storage_snapshot_let_go(ro, "shutdown", &err),
	                 DS_ESTATE);
	OK(ds_storage_close(ro, 0, &err));
	free(home);
	fixture_remove_tree(scratch);
	free(scratch);
}

/* Only this process's uid and root are served: with the socket made
 * world-writable on purpose, another uid gets "error denied". */
static void
test_peer_uid(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = engine_mkds(scratch, "s", "bushy");
	char path[4096];
	ds_storage *s = NULL;
	ds_error err;
	pid_t pid;
	int status_;

	(void)state;
	if (geteuid() != 0)
		skip();   /* another uid is needed: only root can be one */
	OK(ds_storage_open(home, DS_OPEN_CONTROL, &s, &err));
	path_of(path, sizeof(path), home, "misc/control");
	assert_int_equal(chmod(path, 0666), 0);
	assert_int_equal(chmod(scratch, 0755), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		ds_error e;
		int fd = -1, rc;
		if (setgid(65534) != 0 || setuid(65534) != 0)
			_exit(10);
		ds_error_clear(&e);
		rc = ds_control_connect(path, 0, 30, &fd, &e);
		/* refused by the server's SO_PEERCRED check, with its reason */
		_exit(rc == DS_EREFUSED && strstr(e.msg, "uid 65534") ? 0 : 11);
	}
	assert_int_equal(waitpid(pid, &status_, 0), pid);
	assert_true(WIFEXITED(status_));
	assert_int_equal(WEXITSTATUS(status_), 0);
	OK(ds_storage_close(s, 0, &err));
	free(home);
	fixture_remove_tree(scratch);
	free(scratch);
}

/* The storage process closes while a client holds snapshot mode: the
 * storage stays in it (A untouched, later commits in B), and the next
 * open, once the client let go, recombines. */
static void
test_close_while_held(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = engine_mkds(scratch, "s", "bushy");
	char path[4096], dA0[33], dA1[33];
	ds_snapshot *snap = NULL;
	ds_storage *s = NULL;
	ds_error err;

	(void)state;
	OK(ds_storage_open(home, DS_OPEN_CONTROL, &s, &err));
	commit_one(s, 1, "one");
	OK(ds_snapshot_acquire(home, NULL, &snap, &err));
	path_of(path, sizeof(path), home, "A");
	engine_tree_digest(path, dA0, NULL);
	commit_one(s, 1, "two");
	OK(ds_storage_close(s, 0, &err));
	engine_tree_digest(path, dA1, NULL);
	assert_string_equal(dA0, dA1);
	/* leaving fails (the process is gone): an error, nothing lost */
	assert_int_equal(ds_snapshot_release(snap, &err), DS_EIO);
	OK(ds_storage_open(home, DS_OPEN_CONTROL, &s, &err));
	assert_load(s, 1, "two");
	OK(ds_storage_close(s, 0, &err));
	OK(ds_check(home, NULL, NULL, &err));
	free(home);
	fixture_remove_tree(scratch);
	free(scratch);
}

struct committer {
	ds_storage *s;
	int stop;           /* __atomic: set by the test */
	long n;             /* __atomic: transactions committed */
};

static void *
committer_run(void *arg)
{
	struct committer *c = arg;

	while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
		char text[32];
		snprintf(text, sizeof(text), "c %ld", c->n);
		commit_one(c->s, 1, text);
		commit_one(c->s, 2 + (ds_oid)(c->n % 7), text);
		__atomic_add_fetch(&c->n, 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

/* Snapshot mode entered while another thread commits without pause: A
 * must hold whole transactions only every time (ds check of A finds no
 * file outside the history from x.serial, no pointer ahead of it). */
static void
test_enter_while_committing(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = engine_mkds(scratch, "s", "bushy");
	struct ds_check_opts co = {0};
	struct committer c = {0};
	ds_snapshot *snap = NULL;
	pthread_t th;
	ds_error err;

	(void)state;
	engine_set_setting(home, "flush_transaction_threshold", "3");
	OK(ds_storage_open(home, DS_OPEN_CONTROL | DS_OPEN_NOSYNC, &c.s, &err));
	assert_int_equal(pthread_create(&th, NULL, committer_run, &c), 0);
	co.no_snapshot = 1;
	for (int i = 0; i < 25; i++) {
		long n0 = __atomic_load_n(&c.n, __ATOMIC_ACQUIRE);
		OK(ds_snapshot_acquire(home, NULL, &snap, &err));
		if (ds_check(home, &co, NULL, &err) != DS_OK)
			fail_msg("round %d: %s", i, err.msg);
		OK(ds_snapshot_release(snap, &err));
		/* let it commit between two rounds */
		while (__atomic_load_n(&c.n, __ATOMIC_ACQUIRE) < n0 + 3)
			usleep(1000);
	}
	__atomic_store_n(&c.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	OK(ds_storage_close(c.s, 0, &err));
	OK(ds_check(home, NULL, NULL, &err));
	free(home);
	fixture_remove_tree(scratch);
	free(scratch);
}

/* A storage whose misc/control path does not fit in sun_path (108 bytes):
 * both sides go through /proc/self/fd/N/control of misc/. */
static void
test_long_path(void **state)
{
	char *scratch = fixture_scratch_dir();
	char deep[4096], path[4200];
	struct engine_log log = {0};
	struct ds_snapshot_opts o = {0};
	ds_snapshot *snap = NULL;
	ds_storage *s = NULL;
	struct stat st;
	ds_error err;
	char *home;

	(void)state;
	snprintf(deep, sizeof(deep), "%s/%s", scratch,
	         "a-directory-name-long-enough-to-push-the-socket-path-"
	         "past-the-108-bytes-of-sun_path-in-a-sockaddr_un");
	assert_int_equal(mkdir(deep, 0700), 0);
	home = engine_mkds(deep, "s", "bushy");
	snprintf(path, sizeof(path), "%s/misc/control", home);
	assert_true(strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path));
	OK(ds_storage_open(home, DS_OPEN_CONTROL, &s, &err));
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	o.log = engine_log_cb;
	o.log_ctx = &log;
	OK(ds_snapshot_acquire(home, &o, &snap, &err));
	assert_non_null(strstr(log.text, "misc/control"));
	OK(ds_snapshot_release(snap, &err));
	OK(ds_storage_close(s, 0, &err));
	assert_false(engine_exists(path));
	free(home);
	fixture_remove_tree(scratch);
	free(scratch);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_request),
		cmocka_unit_test(test_parse_reply),
		cmocka_unit_test(test_acquire_through_socket),
		cmocka_unit_test(test_conf_lines),
		cmocka_unit_test(test_stale_socket),
		cmocka_unit_test(test_refused_paths),
		cmocka_unit_test(test_garbage_requests),
		cmocka_unit_test(test_disconnect_releases),
		cmocka_unit_test(test_leave_rules),
		cmocka_unit_test(test_let_go),
		cmocka_unit_test(test_peer_uid),
		cmocka_unit_test(test_close_while_held),
		cmocka_unit_test(test_enter_while_committing),
		cmocka_unit_test(test_long_path),
	};

	unsetenv("SNAPSHOT_VERSION");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
