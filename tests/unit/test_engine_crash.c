/*
 * test_engine_crash.c - a writer killed with SIGKILL at random moments.
 *
 * A child process opens a storage and commits transactions without end
 * (small and large pickles, flushes forced by low [journal] thresholds,
 * snapshot enter/leave, undo, oid saves), reporting each transaction on a
 * log file once ds_txn_finish returned success. The parent kills it after
 * a random delay, then reopens the storage and checks: open succeeds, the
 * journal and B are empty after recovery, every reported transaction is
 * there with every revision it wrote and the exact pickle, the transaction
 * chain walks back from x.serial through every reported tid, and `ds
 * check` passes. The storage accumulates over the runs.
 *
 * DS_CRASH_RUNS (default 30) sets the number of runs; DS_CRASH_SEED the
 * random seed (default: time); DS_CRASH_MAX_MS the longest delay before the
 * kill (default 400).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "helper_engine.h"
#include "helper_fixture.h"
#include "internal.h"

static ds_error err;

#define NOBJ 40

/* The pickle the child writes for (tid, oid): reconstructible. */
static size_t
crash_pickle(ds_tid tid, ds_oid oid, unsigned char *buf, size_t cap)
{
	char h1[17], h2[17];
	size_t n, len;

	ds_id_format(tid, h1);
	ds_id_format(oid, h2);
	n = (size_t)snprintf((char *)buf, cap, "txn %s oid %s|", h1, h2);
	/* every 7th object is large: widens the windows for the kill */
	len = (oid % 7 == 0) ? 60000 + (size_t)(tid % 5000)
	                     : 40 + (size_t)(tid % 300);
	if (len > cap)
		len = cap;
	for (size_t i = n; i < len; i++)
		buf[i] = (unsigned char)('a' + (tid + oid + i) % 26);
	return len < n ? n : len;
}

static unsigned long long
crash_rand(unsigned long long *st)
{
	*st = *st * 6364136223846793005ull + 1442695040888963407ull;
	return *st >> 33;
}

/* The child: commit forever, reporting "C <tid> <oid>..." or "U <tid>"
 * lines (one write(2) each, O_APPEND) after a successful finish. */
static void __attribute__((noreturn))
crash_child(const char *home, const char *log, unsigned long long seed)
{
	static unsigned char buf[70000];
	ds_storage *s;
	ds_error e;
	int fd;
	unsigned long long st = seed;
	int in_snapshot = 0;

	fd = open(log, O_WRONLY | O_APPEND | O_CREAT, 0644);
	if (fd < 0 || ds_storage_open(home, (seed & 1) ? DS_OPEN_NOTHREAD : 0,
	                              &s, &e) != DS_OK) {
		fprintf(stderr, "crash child: %s\n", e.msg);
		_exit(3);
	}
	for (;;) {
		unsigned long long r = crash_rand(&st) % 100;
		ds_txn *t;
		ds_tid tid;
		char line[2048];
		size_t n;

		if (r < 6) {
			if (in_snapshot)
				ds_storage_snapshot_leave(s, "crash", &e);
			else
				ds_storage_snapshot_enter(s, "crash", &e);
			in_snapshot = !in_snapshot;
			continue;
		}
		if (r < 9) {
			ds_storage_flush(s, &e);
			continue;
		}
		if (r < 11) {
			ds_oid o;
			ds_storage_new_oid(s, &o, &e);
			ds_storage_save_oid(s, &e);
			continue;
		}
		if (ds_txn_begin(s, "/ crash", "crash test", NULL, 0, &t, &e)
		    != DS_OK)
			_exit(4);
		tid = ds_txn_tid(t);
		if (r < 15 && ds_storage_last_tid(s) != 0) {
			ds_tid last = ds_storage_last_tid(s);
			if (ds_txn_undo(t, last, NULL, NULL, &e) != DS_OK) {
				ds_txn_abort(t);
				continue;
			}
			if (ds_txn_finish(t, NULL, &e) != DS_OK)
				_exit(5);
			n = (size_t)snprintf(line, sizeof(line), "U %016llX\n",
			                     (unsigned long long)tid);
			if (write(fd, line, n) != (ssize_t)n)
				_exit(6);
			continue;
		}
		n = (size_t)snprintf(line, sizeof(line), "C %016llX",
		                     (unsigned long long)tid);
		for (unsigned k = 1 + (unsigned)(crash_rand(&st) % 6); k > 0;
		     k--) {
			ds_oid oid = 1 + crash_rand(&st) % NOBJ;
			ds_tid cur = 0;
			size_t len = crash_pickle(tid, oid, buf, sizeof(buf));
			{
				char h[17];
				ds_id_format(oid, h);
				if (strstr(line + 18, h) != NULL)
					continue;   /* once per transaction */
				n += (size_t)snprintf(line + n, sizeof(line) - n,
				                      " %s", h);
			}
			if (ds_storage_current_serial(s, oid, &cur, &e) != DS_OK)
				cur = 0;
			if (ds_txn_store(t, oid, cur, buf, len, &e) != DS_OK)
				_exit(7);
		}
		if (ds_txn_finish(t, NULL, &e) != DS_OK)
			_exit(8);
		line[n++] = '\n';
		if (write(fd, line, n) != (ssize_t)n)
			_exit(9);
	}
}

struct crash_seen {
	ds_tid *v;
	size_t n, cap;
};

static int
crash_chain_fn(const ds_txninfo *info, void *arg)
{
	struct crash_seen *c = arg;

	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 256;
		c->v = realloc(c->v, c->cap * sizeof(ds_tid));
		assert_non_null(c->v);
	}
	c->v[c->n++] = info->tid;
	return 0;
}

static int
crash_in_chain(const struct crash_seen *c, ds_tid tid)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->v[i] == tid)
			return 1;
	return 0;
}

/* Reopen after the kill and check every reported transaction. */
static size_t
crash_verify(const char *home, const char *log)
{
	static unsigned char want[70000];
	ds_storage *s;
	FILE *f;
	char line[4096], p[4096];
	struct crash_seen chain = {0};
	size_t nrep = 0;
	ds_tid last_rep = 0;

	OK(ds_storage_open(home, 0, &s, &err));
	snprintf(p, sizeof(p), "%s/journal", home);
	assert_int_equal(engine_dir_entries(p), 0);
	snprintf(p, sizeof(p), "%s/B", home);
	assert_int_equal(engine_dir_entries(p), 0);
	OK(ds_storage_txn_iterate(s, 0, DS_ITER_NEWEST_FIRST, crash_chain_fn,
	                          &chain, &err));
	f = fopen(log, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		char *tok = strtok(line + 2, " \n");
		ds_tid tid;
		ds_txninfo *info;

		assert_int_equal(ds_id_parse(tok, &tid), DS_OK);
		nrep++;
		if (tid > last_rep)
			last_rep = tid;
		/* the transaction, in the chain from x.serial */
		OK(ds_storage_txn_info(s, tid, &info, &err));
		if (!crash_in_chain(&chain, tid))
			fail_msg("reported transaction %s not in the chain",
			         tok);
		/* every revision it wrote */
		for (size_t i = 0; i < info->noids; i++) {
			char name[DS_NAME_MAX];
			unsigned char *b;
			size_t len;
			ds_name_revision(info->oids[i], tid, name);
			OK(ds_storage_read_name(s, name, &b, &len, &err));
			free(b);
		}
		if (line[0] == 'C') {
			size_t k = 0;
			while ((tok = strtok(NULL, " \n")) != NULL) {
				ds_oid oid;
				unsigned char *b;
				size_t len, wl;
				assert_int_equal(ds_id_parse(tok, &oid), DS_OK);
				assert_true(info->oids[k] == oid);
				k++;
				wl = crash_pickle(tid, oid, want, sizeof(want));
				OK(ds_storage_load_serial(s, oid, tid, &b, &len,
				                          &err));
				assert_int_equal(len, wl);
				assert_memory_equal(b, want, wl);
				free(b);
			}
			assert_int_equal(k, info->noids);
		}
		ds_txninfo_free(info);
	}
	fclose(f);
	assert_true(ds_storage_last_tid(s) >= last_rep);
	free(chain.v);
	OK(ds_storage_close(s, 0, &err));
	return nrep;
}

static void
test_crash_sigkill(void **state)
{
	char *scratch = fixture_scratch_dir();
	char *home = engine_mkds(scratch, "s", "bushy");
	char log[4096], cmd[8192];
	const char *e;
	unsigned long runs = 30, max_ms = 400;
	unsigned long long seed = (unsigned long long)time(NULL);
	size_t reported = 0;
	(void)state;

	if ((e = getenv("DS_CRASH_RUNS")) != NULL)
		runs = strtoul(e, NULL, 10);
	if ((e = getenv("DS_CRASH_SEED")) != NULL)
		seed = strtoull(e, NULL, 10);
	if ((e = getenv("DS_CRASH_MAX_MS")) != NULL)
		max_ms = strtoul(e, NULL, 10);
	print_message("crash test: %lu runs, seed %llu\n", runs, seed);
	engine_set_setting(home, "flush_transaction_threshold", "3");
	engine_set_setting(home, "flush_file_threshold", "40");
	engine_set_setting(home, "flush_interval", "1");
	snprintf(log, sizeof(log), "%s/committed.log", scratch);
	for (unsigned long run = 0; run < runs; run++) {
		unsigned long long st = seed + run * 7919;
		unsigned long delay = 5 + (unsigned long)(crash_rand(&st) %
		                                          (max_ms ? max_ms : 1));
		pid_t pid;
		int status;

		fflush(NULL);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			crash_child(home, log, seed + run);
		usleep((useconds_t)delay * 1000);
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
			fail_msg("run %lu: the writer exited by itself "
			         "(status %d) before the kill", run, status);
		reported = crash_verify(home, log);
		/* the reopened storage passes ds check */
		snprintf(cmd, sizeof(cmd), "'%s' check -q '%s'", fixture_bin(),
		         home);
		if (system(cmd) != 0)
			fail_msg("run %lu: ds check failed on %s", run, home);
	}
	print_message("crash test: %zu transactions reported and found\n",
	              reported);
	assert_true(runs == 0 || reported > 0);
	fixture_remove_tree(scratch);
	free(home);
	free(scratch);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crash_sigkill),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
