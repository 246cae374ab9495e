/*
 * replica_watch.h - `ds replica --watch` and the --before-apply /
 * --after-apply hooks (replica_watch.c), for cmd_replica.c.
 */
#ifndef DS_REPLICA_WATCH_H
#define DS_REPLICA_WATCH_H

#include "cli.h"

struct replica_watch_opts {
	unsigned interval;          /* --watch SECONDS (0: one run) */
	unsigned backoff_max;       /* --backoff-max SECONDS */
	const char *before_apply;   /* --before-apply CMD, or NULL */
	const char *after_apply;    /* --after-apply CMD, or NULL */
	const char *master;         /* the master operand as given */
};

/* Set o's hooks to run the commands of w (via /bin/sh -c) when given. */
void replica_watch_hooks(struct ds_replica_opts *o,
                         const struct replica_watch_opts *w);

/* Run the pull of replica every w->interval seconds until a signal
 * (SIGTERM, SIGINT: the increment in progress is finished, then exit 0)
 * or an error that is not worth retrying (its exit code). Errors worth
 * retrying (exit 3) are retried after an exponential backoff with
 * jitter. Returns the exit code. */
int replica_watch_run(struct ds_replica_opts *o, const char *replica,
                      const struct replica_watch_opts *w);

#endif
