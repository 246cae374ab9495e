/*
 * replica_watch.c - `ds replica --watch SECONDS`: one process pulling an
 * increment every SECONDS, and the --before-apply / --after-apply hooks
 * for a hot standby (run through /bin/sh -c, the increment described in
 * their environment).
 *
 * Errors worth retrying (exit 3: the master busy or unreachable, the
 * replica in use) are retried after a delay that doubles with each
 * failure in a row (SECONDS, 2 SECONDS, 4 SECONDS ... up to
 * --backoff-max), each drawn at random between half of it and all of it
 * (jitter, so that many replicas of one master do not come back in step).
 * Any other error (1: needs a human; 4: a local system error) stops the
 * loop with its exit code. SIGTERM or SIGINT lets the increment in
 * progress finish (ds_replica_pull is not interrupted: the replica stays
 * at a transaction boundary either way, and a kill is safe too) and then
 * exits 0; a second signal ends the process at once (the default action).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "replica_watch.h"

static volatile sig_atomic_t watch_stop;

static void
watch_on_signal(int sig)
{
	(void)sig;
	watch_stop = 1;
}

/* ---- hooks ---- */

/* Run cmd with /bin/sh -c, the increment in the environment. Exit 0:
 * DS_OK; 3: DS_EBUSY (try again later); anything else, a signal or a
 * failure to run it: DS_EREFUSED. */
static int
watch_hook(const char *which, const char *cmd,
           const struct ds_replica_increment *inc, const char *master,
           const char *result, const char *error, ds_error *err)
{
	char first[17], last[17], base[17], n[32], bytes[32];
	pid_t pid;
	int status;

	ds_id_format(inc->first, first);
	ds_id_format(inc->last, last);
	ds_id_format(inc->base, base);
	snprintf(n, sizeof(n), "%lu", inc->transactions);
	snprintf(bytes, sizeof(bytes), "%llu", (unsigned long long)inc->bytes);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return ds_error_set(err, DS_EIO, "%s hook: fork: %s", which,
		                    strerror(errno));
	if (pid == 0) {
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		setenv("DS_REPLICA", inc->replica, 1);
		setenv("DS_MASTER", master, 1);
		setenv("DS_BASE_TID", base, 1);
		setenv("DS_FIRST_TID", first, 1);
		setenv("DS_LAST_TID", last, 1);
		setenv("DS_TRANSACTIONS", n, 1);
		setenv("DS_BYTES", bytes, 1);
		if (result != NULL)
			setenv("DS_RESULT", result, 1);
		if (error != NULL)
			setenv("DS_ERROR", error, 1);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return ds_error_set(err, DS_EIO, "%s hook: waitpid: %s",
			                    which, strerror(errno));
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return DS_OK;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 3)
		return ds_error_set(err, DS_EBUSY, "the %s hook asked to try "
		                    "again later (exit 3): %s", which, cmd);
	if (WIFEXITED(status))
		return ds_error_set(err, DS_EREFUSED, "the %s hook failed (exit "
		                    "%d): %s", which, WEXITSTATUS(status), cmd);
	return ds_error_set(err, DS_EREFUSED, "the %s hook was killed by "
	                    "signal %d: %s", which, WTERMSIG(status), cmd);
}

static int
watch_before(const struct ds_replica_increment *inc, void *ctx,
             ds_error *err)
{
	const struct replica_watch_opts *w = ctx;

	if (w->before_apply == NULL)
		return DS_OK;
	return watch_hook("--before-apply", w->before_apply, inc, w->master,
	                  NULL, NULL, err);
}

static int
watch_after(const struct ds_replica_increment *inc, int status,
            const ds_error *result, void *ctx, ds_error *err)
{
	const struct replica_watch_opts *w = ctx;

	if (w->after_apply == NULL)
		return DS_OK;
	return watch_hook("--after-apply", w->after_apply, inc, w->master,
	                  status == DS_OK ? "applied" : "failed",
	                  result ? result->msg : NULL, err);
}

void
replica_watch_hooks(struct ds_replica_opts *o,
                    const struct replica_watch_opts *w)
{
	if (w->before_apply == NULL && w->after_apply == NULL)
		return;
	o->before_apply = watch_before;
	o->after_apply = watch_after;
	o->hook_ctx = (void *)w;
}

/* ---- the loop ---- */

/* Sleep secs seconds unless a stop signal comes. */
static void
watch_sleep(double secs)
{
	struct timespec ts;

	if (secs <= 0 || watch_stop)
		return;
	ts.tv_sec = (time_t)secs;
	ts.tv_nsec = (long)((secs - (double)ts.tv_sec) * 1e9);
	/* a handled signal ends nanosleep with EINTR */
	while (!watch_stop && nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int
replica_watch_run(struct ds_replica_opts *o, const char *replica,
                  const struct replica_watch_opts *w)
{
	struct sigaction sa;
	unsigned failures = 0;
	struct timespec seed;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = watch_on_signal;
	/* no SA_RESTART: the sleep ends at once; SA_RESETHAND: a second
	 * signal takes its default action */
	sa.sa_flags = SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	clock_gettime(CLOCK_REALTIME, &seed);
	srandom((unsigned)(seed.tv_nsec ^ getpid()));
	cli_log(DS_LOG_VERBOSE, "watching: an increment every few seconds "
	        "until SIGTERM or SIGINT", "replica");
	for (;;) {
		struct ds_replica_stats st;
		ds_error err;
		double delay;
		int rc, ex;

		ds_error_clear(&err);
		rc = ds_replica_pull(replica, o, &st, &err);
		if (rc == DS_OK) {
			if (failures > 0 && cli_verbosity >= 1)
				fprintf(stderr, "ds replica: working again after "
				        "%u failed run%s\n", failures,
				        failures == 1 ? "" : "s");
			failures = 0;
			if (st.transactions > 0 && cli_verbosity >= 1) {
				char t[24];

				ds_tid_format(st.new_tid, t);
				fprintf(stderr, "ds replica: applied %lu "
				        "transaction%s, replica at %016llX (%s)\n",
				        st.transactions, st.transactions == 1 ?
				        "" : "s", (unsigned long long)st.new_tid,
				        t);
			}
			delay = w->interval;
		} else {
			ex = cli_exit_for(rc, err.sys_errno);
			if (ex != DS_EXIT_TEMP) {
				cli_fail("replica", &err);
				cli_errorf("replica", "--watch: stopped (exit %d: "
				           "not worth retrying)", ex);
				return ex;
			}
			failures++;
			delay = (double)w->interval;
			for (unsigned i = 1; i < failures && delay < w->backoff_max;
			     i++)
				delay *= 2;
			if (delay > w->backoff_max)
				delay = w->backoff_max;
			/* jitter: between half the delay and all of it */
			delay = delay / 2 + (delay / 2) * ((double)random() /
			                                   (double)RAND_MAX);
			if (!watch_stop)
				cli_errorf("replica", "%s; retrying in %.1f s "
				           "(failure %u in a row)", err.msg, delay,
				           failures);
		}
		if (watch_stop)
			break;
		watch_sleep(delay);
		if (watch_stop)
			break;
	}
	if (cli_verbosity >= 1)
		fprintf(stderr, "ds replica: --watch: stopped by a signal; the "
		        "replica is at a transaction boundary\n");
	return DS_EXIT_OK;
}
