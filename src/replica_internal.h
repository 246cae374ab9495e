/*
 * replica_internal.h - what the replica side's files share (transport.c,
 * replica.c); not installed, not part of the public contract.
 */
#ifndef DS_REPLICA_INTERNAL_H
#define DS_REPLICA_INTERNAL_H

#include <stdint.h>
#include <sys/types.h>

#include "internal.h"
#include "recv.h"

/* ---- transport.c: running the master side ---- */

struct transport_opts {
	const char *host;          /* NULL: run local_program as a child */
	const char *user;          /* ssh -l USER (may be NULL) */
	const char *command;       /* replaces "ssh"; split on whitespace */
	const char *remote_program;/* ds on the master (ssh mode) */
	const char *local_program; /* ds here (local mode) */
	/* replaces "<remote_program or local_program> replica": the master
	 * side's program and leading words, split on whitespace (each word
	 * quoted over ssh); [-v...|-q] + DIR still follow. NULL: ds. */
	const char *master_command;
	/* NULL, or a command to run instead of the master side, one word
	 * each (each quoted over ssh, nothing appended, no request needed):
	 * how the replica side reads a file of a master whose replica.py
	 * has no request for it */
	const char *const *exact_argv;
	int verbosity;             /* 0 -q, 1 normal, 2+ -v... for the master */
	const char *master_dir;    /* DIR: the master's storage */
	/* every line the master side writes on stderr (no newline) */
	void (*on_stderr)(const char *line, void *ctx);
	void *ctx;
	unsigned read_timeout;     /* s of silence (stdout and stderr) before
	                            * transport_read gives up; 0 means 600 */
	double deadline_at;        /* ds_now() time by which the whole
	                            * answer must have arrived; 0: none */
	unsigned deadline;         /* the same in seconds, for messages */
};

struct transport;

/* Start the master side (argv built as in transport.c's comment) in a
 * process group of its own (so that stopping it stops everything it
 * started), write request to its stdin and close it.
 * Errors: DS_EINVAL (bad host/user/command), DS_EBUSY (could not start:
 * try again), DS_EIO, DS_ENOMEM. *out owned by caller: transport_free. */
int transport_start(const struct transport_opts *opts, const void *request,
                    size_t len, struct transport **out, ds_error *err);
/* recv_read_fn over the master side's stdout; stderr lines are passed
 * to on_stderr meanwhile. A master side silent for read_timeout seconds,
 * or still sending at deadline_at, is given up on: -1 with DS_EBUSY (try
 * again later). One stopped by the terminal (ssh prompting for a password
 * or a host key from its background process group) is given up on at
 * once: -1 with DS_EREFUSED (ssh must log in without asking). */
ssize_t transport_read(void *t, void *buf, size_t len, ds_error *err);
/* Wait for the master side to end (killing it first when kill_it), after
 * reading what remains of its stderr. kill_it stops a master side whose
 * output has not reached its end: SIGTERM to its whole process group,
 * then SIGKILL to the group after a short grace, before the leader is
 * reaped, so that nothing it started (an -e wrapper's children) survives.
 * *how: 0 exited 0, else its exit status, 128+signal, or -1 when we
 * stopped it. */
int transport_wait(struct transport *t, int kill_it, int *how, ds_error *err);
/* Last non-empty stderr line of the master side ("" if none). */
const char *transport_last_line(const struct transport *t);
/* The argv actually run, joined with spaces (for -vv). */
const char *transport_cmdline(const struct transport *t);
void transport_free(struct transport *t);

/* ---- replica_hook.c: a pull with hooks reads the replica in place ---- */

/* Read HOME/A/<name> (layout) whole: at most max bytes (0: any). */
int replica_hook_read(const char *home, ds_layout layout, const char *name,
                      size_t max, unsigned char **buf, size_t *len,
                      ds_error *err);
/* The replica's x.serial and x.oid read in place, without its lock. A
 * journal/ or B/ that holds anything is first recovered through the
 * engine (open and close: that needs the lock, DS_ELOCKED/DS_EBUSY "in
 * use" when someone holds it). */
int replica_hook_peek(const char *home, const ds_config *cfg, ds_tid *tid,
                      ds_oid *oid, ds_error *err);
/* Open (create) the spool, flock it (one fetching run at a time: else
 * DS_ELOCKED), empty it. */
int replica_hook_spool(const char *path, int *fd, ds_error *err);
/* Is the spool at path still the file fd has open? DS_EBUSY if not. */
int replica_hook_still_ours(const char *path, int fd, ds_error *err);
/* Remove the spool (while its flock is held) and close *fd. */
void replica_hook_drop(const char *path, int *fd);

/* ---- replica_state.c: the run's record in misc/replica.state ---- */

/* Wall-clock time (Unix seconds). */
double replica_state_now(void);
/* Record a run that held the replica's lock (the caller still holds
 * it): rc DS_OK a success (the replica is at tid, stats->transactions
 * applied, the run began at `started`, wall clock), else a failure with
 * result's message and o->exit_for's code (1 without it); identity may
 * be NULL (kept from the old record). A failure to write the record is
 * logged (DS_LOG_WARN), not returned: the run's own outcome stands. */
void replica_state_record(const char *home, const struct ds_replica_opts *o,
                          const char *identity, ds_tid tid,
                          const struct ds_replica_stats *stats,
                          double started, int rc, const ds_error *result);

#endif /* DS_REPLICA_INTERNAL_H */
