/*
 * test_lock.c - misc/lock semantics shared with the original: flock
 * exclusion between processes, " <pid>\n" content, the holder's pid in the
 * refusal, release by the kernel when the holder dies, and interoperation
 * with util-linux flock(1) (the same BSD lock the original's zc.lockfile
 * takes).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "helper_fixture.h"
#include "internal.h"

struct lk {
	char *scratch;
	char path[4096];
};

static int
setup(void **state)
{
	struct lk *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return -1;
	umask(022);
	t->scratch = fixture_scratch_dir();
	snprintf(t->path, sizeof(t->path), "%s/lock", t->scratch);
	*state = t;
	return 0;
}

static int
teardown(void **state)
{
	struct lk *t = *state;

	fixture_remove_tree(t->scratch);
	free(t->scratch);
	free(t);
	return 0;
}

static void
read_text(const char *path, char *buf, size_t bufsz)
{
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, bufsz - 1, f);
	buf[n] = '\0';
	fclose(f);
}

static void
expect_content_pid(const char *path, pid_t pid)
{
	char buf[64], want[32];

	read_text(path, buf, sizeof(buf));
	snprintf(want, sizeof(want), " %ld\n", (long)pid);
	assert_string_equal(buf, want);
}

/* In a forked child: try the lock, send "<rc>\n<msg>" back, and keep the
 * lock for hold_ms when it was taken. Returns the child's pid. */
static pid_t
child_try(const char *path, int fd_out, int hold_ms)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		ds_lock *lock = NULL;
		ds_error err;
		char msg[sizeof(err.msg) + 16];
		int rc, n;

		ds_error_clear(&err);
		rc = ds_lock_acquire(path, &lock, &err);
		n = snprintf(msg, sizeof(msg), "%d\n%s", rc, err.msg);
		if (write(fd_out, msg, (size_t)n) != n)
			_exit(3);
		close(fd_out);
		if (rc == DS_OK && hold_ms > 0) {
			struct timespec ts = { hold_ms / 1000,
			                       (hold_ms % 1000) * 1000000L };
			nanosleep(&ts, NULL);
		}
		ds_lock_release(lock);
		_exit(0);
	}
	return pid;
}

/* Read the child's report (up to EOF or the first full report). */
static int
child_report(int fd, char *msg, size_t msgsz)
{
	char buf[4096];
	size_t len = 0;
	ssize_t n;
	char *nl;

	while (len < sizeof(buf) - 1 &&
	       (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	nl = strchr(buf, '\n');
	assert_non_null(nl);
	snprintf(msg, msgsz, "%s", nl + 1);
	return atoi(buf);
}

static void
wait_child(pid_t pid)
{
	int st;

	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void
test_acquire_content_and_mode(void **state)
{
	struct lk *t = *state;
	ds_lock *lock = NULL;
	ds_error err;
	struct stat st;

	/* a longer old content (a previous holder) is truncated away */
	fixture_write_text(t->path, " 123456789 and some junk\n");
	chmod(t->path, 0644);
	ds_error_clear(&err);
	assert_int_equal(ds_lock_acquire(t->path, &lock, &err), DS_OK);
	assert_non_null(lock);
	expect_content_pid(t->path, getpid());
	ds_lock_release(lock);
	/* never deleted; content stays */
	expect_content_pid(t->path, getpid());

	/* created 0644 when missing */
	assert_int_equal(unlink(t->path), 0);
	assert_int_equal(ds_lock_acquire(t->path, &lock, &err), DS_OK);
	assert_int_equal(stat(t->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_int_equal(st.st_size, (off_t)strlen(" \n") +
	                 snprintf(NULL, 0, "%ld", (long)getpid()));
	expect_content_pid(t->path, getpid());
	ds_lock_release(lock);
	ds_lock_release(NULL);
}

static void
test_second_holder_refused(void **state)
{
	struct lk *t = *state;
	ds_lock *lock = NULL, *again = (ds_lock *)0x1;
	ds_error err;
	char msg[4096], want[4200];
	int p[2], rc;
	pid_t pid;

	ds_error_clear(&err);
	assert_int_equal(ds_lock_acquire(t->path, &lock, &err), DS_OK);
	snprintf(want, sizeof(want), "%s is held by process %ld", t->path,
	         (long)getpid());

	/* another process */
	assert_int_equal(pipe(p), 0);
	pid = child_try(t->path, p[1], 0);
	close(p[1]);
	rc = child_report(p[0], msg, sizeof(msg));
	close(p[0]);
	wait_child(pid);
	assert_int_equal(rc, DS_ELOCKED);
	assert_string_equal(msg, want);
	/* the refused process did not touch the holder's pid */
	expect_content_pid(t->path, getpid());

	/* another open of the same file in this process: also refused */
	assert_int_equal(ds_lock_acquire(t->path, &again, &err), DS_ELOCKED);
	assert_null(again);
	assert_int_equal(err.status, DS_ELOCKED);
	assert_string_equal(err.msg, want);

	/* released: another process takes it and writes its own pid */
	ds_lock_release(lock);
	assert_int_equal(pipe(p), 0);
	pid = child_try(t->path, p[1], 0);
	close(p[1]);
	rc = child_report(p[0], msg, sizeof(msg));
	close(p[0]);
	wait_child(pid);
	assert_int_equal(rc, DS_OK);
	expect_content_pid(t->path, pid);

	/* and then we re-acquire */
	assert_int_equal(ds_lock_acquire(t->path, &lock, &err), DS_OK);
	expect_content_pid(t->path, getpid());
	ds_lock_release(lock);
}

static void
test_killed_holder_frees_lock(void **state)
{
	struct lk *t = *state;
	ds_lock *lock = NULL;
	ds_error err;
	char msg[4096], want[4200];
	int p[2], rc, st;
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	pid = child_try(t->path, p[1], 60000);  /* holds for a minute */
	close(p[1]);
	rc = child_report(p[0], msg, sizeof(msg));
	close(p[0]);
	assert_int_equal(rc, DS_OK);
	expect_content_pid(t->path, pid);

	ds_error_clear(&err);
	assert_int_equal(ds_lock_acquire(t->path, &lock, &err), DS_ELOCKED);
	snprintf(want, sizeof(want), "%s is held by process %ld", t->path,
	         (long)pid);
	assert_string_equal(err.msg, want);

	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));
	/* the kernel dropped the dead holder's lock; its pid is stale */
	expect_content_pid(t->path, pid);
	assert_int_equal(ds_lock_acquire(t->path, &lock, &err), DS_OK);
	expect_content_pid(t->path, getpid());
	ds_lock_release(lock);
}

/* Is path flock'ed by someone? (probe with our own descriptor) */
static int
is_locked(const char *path)
{
	int fd = open(path, O_RDONLY), locked;

	assert_true(fd >= 0);
	locked = flock(fd, LOCK_EX | LOCK_NB) != 0;
	if (locked)
		assert_int_equal(errno, EWOULDBLOCK);
	close(fd);
	return locked;
}

static int
run_flock_true(const char *path)
{
	char cmd[4300];
	int st;

	snprintf(cmd, sizeof(cmd), "flock -n -x '%s' true", path);
	st = system(cmd);
	assert_true(st != -1 && WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void
test_interop_flock1(void **state)
{
	struct lk *t = *state;
	ds_lock *lock = NULL;
	ds_error err;
	char want[4200];
	pid_t pid;
	int st;

	/* a shell holds the file with flock(1), as a Python holder would;
	 * the pid in the file is what the refusal reports */
	fixture_write_text(t->path, " 4242\n");
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setpgid(0, 0);
		execlp("sh", "sh", "-c", "exec flock -x \"$0\" sleep 60",
		       t->path, (char *)NULL);
		_exit(127);
	}
	setpgid(pid, pid);
	for (int i = 0; i < 500 && !is_locked(t->path); i++) {
		struct timespec ts = { 0, 10000000L };
		nanosleep(&ts, NULL);
	}
	assert_true(is_locked(t->path));

	ds_error_clear(&err);
	assert_int_equal(ds_lock_acquire(t->path, &lock, &err), DS_ELOCKED);
	snprintf(want, sizeof(want), "%s is held by process 4242", t->path);
	assert_string_equal(err.msg, want);
	assert_int_equal(run_flock_true(t->path), 1);

	/* kill flock(1) and the sleep that inherited its descriptor */
	assert_int_equal(kill(-pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	for (int i = 0; i < 500 && is_locked(t->path); i++) {
		struct timespec ts = { 0, 10000000L };
		nanosleep(&ts, NULL);
	}
	assert_int_equal(ds_lock_acquire(t->path, &lock, &err), DS_OK);
	expect_content_pid(t->path, getpid());
	/* and flock(1) is refused while we hold it */
	assert_int_equal(run_flock_true(t->path), 1);
	ds_lock_release(lock);
	assert_int_equal(run_flock_true(t->path), 0);
}

/* A holder that has not written its pid yet (or flock(1) on an empty
 * file) is still reported, without a pid. */
static void
test_holder_without_pid(void **state)
{
	struct lk *t = *state;
	ds_lock *lock = NULL;
	ds_error err;
	int fd;

	fd = open(t->path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0);
	ds_error_clear(&err);
	assert_int_equal(ds_lock_acquire(t->path, &lock, &err), DS_ELOCKED);
	assert_null(lock);
	assert_non_null(strstr(err.msg, t->path));
	assert_non_null(strstr(err.msg, "held by another process"));
	close(fd);
	assert_int_equal(ds_lock_acquire(t->path, &lock, &err), DS_OK);
	ds_lock_release(lock);
}

static void
test_errors(void **state)
{
	struct lk *t = *state;
	ds_lock *lock = (ds_lock *)0x1;
	ds_error err;
	char path[4200];

	snprintf(path, sizeof(path), "%s/nosuchdir/lock", t->scratch);
	ds_error_clear(&err);
	assert_int_equal(ds_lock_acquire(path, &lock, &err), DS_ENOTFOUND);
	assert_null(lock);
	assert_non_null(strstr(err.msg, path));
	/* a directory cannot be a lock file */
	assert_int_equal(ds_lock_acquire(t->scratch, &lock, &err), DS_EIO);
	assert_non_null(strstr(err.msg, t->scratch));
}

/* The original's misc/lock in a fixture: free (it was closed), taken over
 * with our pid, and misc/sublock independently. */
static void
test_fixture_locks(void **state)
{
	struct lk *t = *state;
	char *home = fixture_copy("bushy-master", t->scratch);
	char lpath[4200], spath[4200], buf[64];
	ds_lock *l1 = NULL, *l2 = NULL;
	ds_error err;

	snprintf(lpath, sizeof(lpath), "%s/misc/lock", home);
	snprintf(spath, sizeof(spath), "%s/misc/sublock", home);
	read_text(lpath, buf, sizeof(buf));
	assert_string_equal(buf, " 11396\n");
	ds_error_clear(&err);
	assert_int_equal(ds_lock_acquire(lpath, &l1, &err), DS_OK);
	assert_int_equal(ds_lock_acquire(spath, &l2, &err), DS_OK);
	expect_content_pid(lpath, getpid());
	expect_content_pid(spath, getpid());
	ds_lock_release(l2);
	ds_lock_release(l1);
	free(home);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_acquire_content_and_mode,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_holder_refused,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_killed_holder_frees_lock,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_interop_flock1, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_holder_without_pid, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fixture_locks, setup,
		                                teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
