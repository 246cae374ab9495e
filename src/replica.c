/*
 * replica.c - the replica side of `ds replica` (DESIGN.md section 3).
 *
 * ds_replica_pull(): lock and recover the replica through the engine
 * (synchronous: B is recombined into A and the journal is empty when the
 * open returns; a snapshot user holding misc/sublock makes it refuse),
 * check it is Full, build the request (the original's four lines, then our
 * `relink` line), run the master side through transport.c, spool its
 * answer to misc/.replica.incoming while recv.c checks every member,
 * and only when the master side exited 0 and the whole increment checked
 * out: fsync the spool and misc/, rename it to journal/replica.tar and
 * fsync journal/ (the commit point), extract it, rename it to
 * misc/replica.previous, close the replica in snapshot mode.
 *
 * Crash behaviour: before the rename into journal/ nothing of the replica
 * changed (a leftover misc/.replica.incoming is deleted by the next run);
 * after it, the engine's recovery (any open, including the next
 * `ds replica`) applies journal/replica.tar again, which is idempotent.
 *
 * ds_replica_init(): the same transfer with `replica init 0`, into a new
 * storage built next to the target and renamed into place when complete.
 * A master that runs the original replica.py does not know that request
 * (it answers with its usage text): the new storage is then made empty
 * with the master's config/identity and config/settings, read with `cat`
 * through the same transport, and the whole history is pulled into it as
 * an ordinary increment from the all-zero tid.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "apply.h"
#include "protocol.h"
#include "replica_internal.h"


/* What the master side's stderr lines go to. */
struct replica_run {
	const struct ds_replica_opts *opts;
	struct ds_replica_stats *stats;
	int original;          /* the original replica.py's usage text came */
};

#define replica_log(o, ...) ds_log((o)->log, (o)->log_ctx, __VA_ARGS__)

/* A line of the master side's stderr: shown as it comes, after the
 * "ds replica: " our own master side puts in front. The tagged report of
 * how long our master held snapshot mode (protocol.h) is kept for the
 * summary, not shown. */
static void
replica_master_line(const char *line, void *ctx)
{
	struct replica_run *run = ctx;
	double held;

	/* The original replica.py answers a request it does not know (or an
	 * empty one) with its usage text on stderr and exit 1: not an error
	 * to show line by line, but how to tell that master from ours. */
	if (strncmp(line, "Usage: ", 7) == 0 &&
	    strstr(line, "MasterMachine:MasterDirectory") != NULL) {
		run->original = 1;
		if (run->stats != NULL)
			run->stats->master_original = 1;
	}
	if (run->original)
		return;
	if (protocol_report_decode(line, &held)) {
		if (run->stats != NULL)
			run->stats->master_held = held;
		return;
	}
	replica_log(run->opts, DS_LOG_INFO, "master: %s",
	            protocol_master_text(line));
}

/* Files without an md5 (accepted only when [md5policy] write is 0): their
 * content was not checked, say how many at -v. */
static void
replica_no_md5(const struct ds_replica_opts *o,
               const struct recv_summary *sum)
{
	if (sum->revisions_no_md5 == 0 && sum->transactions_no_md5 == 0)
		return;
	replica_log(o, DS_LOG_VERBOSE, "%lu revisions without md5, %lu "
	            "transactions without md5 ([md5policy] write is 0: their "
	            "content could not be checked)", sum->revisions_no_md5,
	            sum->transactions_no_md5);
}

/* Run the master side once: request in, increment into spool_fd (checked),
 * exit status and stderr judged. *busy says "try again later". */
static int
replica_fetch_once(const struct ds_replica_opts *o, const char *request,
                   int spool_fd, const char *spool_path,
                   const struct recv_expect *exp,
                   struct recv_summary *sum,
                   struct ds_replica_stats *stats, double deadline_at,
                   int *busy, ds_error *err)
{
	struct replica_run run = {o, stats, 0};
	struct transport_opts to;
	struct transport *t = NULL;
	ds_error rerr, werr;
	int rc, rrc, how = 0, read_failed = 0;

	*busy = 0;
	memset(&to, 0, sizeof(to));
	to.host = o->host;
	to.user = o->user;
	to.command = o->ssh_command;
	to.remote_program = o->remote_program;
	to.local_program = o->local_program;
	to.master_command = o->master_command;
	to.verbosity = o->verbosity;
	to.master_dir = o->master_dir;
	to.on_stderr = replica_master_line;
	to.ctx = &run;
	to.read_timeout = o->read_timeout;
	to.deadline_at = deadline_at;
	to.deadline = o->deadline;
	rc = transport_start(&to, request, strlen(request), &t, err);
	if (rc != DS_OK) {
		*busy = rc == DS_EBUSY;
		return rc;
	}
	replica_log(o, DS_LOG_DEBUG, "running: %s", transport_cmdline(t));
	ds_error_clear(&rerr);
	rrc = recv_stream(transport_read, t, spool_fd, spool_path, exp, sum,
	                      &read_failed, &rerr);
	/* a refused stream: stop the master side rather than read the rest */
	rc = transport_wait(t, rrc != DS_OK, &how, &werr);
	if (rc != DS_OK) {
		if (err)
			*err = werr;
		goto out;
	}
	if (how == -1) {
		/* we stopped it: the stream's own fault decides (a master
		 * that went silent is worth another try) */
		*busy = read_failed && rrc == DS_EBUSY;
		rc = rrc;
		if (err)
			*err = rerr;
		goto out;
	}
	if (how != 0) {
		const char *last = protocol_master_text(transport_last_line(t));

		if (run.original) {
			rc = ds_error_set(err, DS_EREFUSED, "the master runs the "
			                  "original replica.py, which does not "
			                  "know this request (exit %d, it answered "
			                  "with its usage text)", how);
		} else if (how == 3) {
			*busy = 1;
			rc = ds_error_set(err, DS_EBUSY, "the master is busy, "
			                  "try again later (exit 3): %s", last);
		} else if (how == 255 || how >= 128) {
			*busy = 1;
			rc = ds_error_set(err, DS_EBUSY, "connection to the master "
			                  "failed (%s %d)%s%s",
			                  how >= 128 && how != 255 ? "signal" : "exit",
			                  how >= 128 && how != 255 ? how - 128 : how,
			                  *last ? ": " : "", last);
		} else {
			/* the master side's exit code keeps its meaning: 4 is
			 * a system error there (permission denied, disk),
			 * anything else needs a human */
			rc = ds_error_set(err, how == 4 ? DS_EIO : DS_EREFUSED,
			                  "master side: %s (exit %d)",
			                  *last ? last : "failed without a message",
			                  how);
		}
		goto out;
	}
	rc = rrc;
	if (rc != DS_OK && err)
		*err = rerr;
	if (rc != DS_OK && read_failed)
		*busy = 1;
out:
	transport_free(t);
	return rc;
}

/* Fetch with retries while the master is busy (opts->timeout). The spool
 * is emptied before each try. */
static int
replica_fetch(const struct ds_replica_opts *o, const char *request,
              int spool_fd, const char *spool_path,
              const struct recv_expect *exp, struct recv_summary *sum,
              struct ds_replica_stats *stats, ds_error *err)
{
	double start = ds_now();
	double deadline_at = o->deadline ? start + o->deadline : 0;
	unsigned sl = o->sleep ? o->sleep : 10;
	int rc, busy;

	for (;;) {
		if (stats)
			stats->tries++;
		if (lseek(spool_fd, 0, SEEK_SET) != 0)
			return ds_error_sys(err, errno, "seek", spool_path);
		rc = ds_io_ftruncate(spool_fd, 0, spool_path, err);
		if (rc != DS_OK)
			return rc;
		if (stats)
			stats->master_held = -1;
		rc = replica_fetch_once(o, request, spool_fd, spool_path, exp,
		                        sum, stats, deadline_at, &busy, err);
		if (rc == DS_OK || !busy || rc != DS_EBUSY ||
		    ds_now() - start + sl > (double)o->timeout ||
		    (deadline_at > 0 && ds_now() + sl >= deadline_at))
			return rc;
		replica_log(o, DS_LOG_INFO, "%s; retrying in %u s",
		            err ? err->msg : "master busy", sl);
		sleep(sl);
	}
}

/* The caller's stats (or *own when it gives none), zeroed, the hold
 * figure "not reported" until the master reports it. */
static struct ds_replica_stats *
replica_stats_start(struct ds_replica_stats *stats,
                    struct ds_replica_stats *own)
{
	if (stats == NULL)
		stats = own;
	memset(stats, 0, sizeof(*stats));
	stats->master_held = -1;
	return stats;
}

static int
replica_check_opts(const struct ds_replica_opts *o, ds_error *err)
{
	if (o == NULL || o->master_dir == NULL || o->master_dir[0] == '\0')
		return ds_error_set(err, DS_EINVAL, "replica: no master "
		                    "directory given");
	return DS_OK;
}

/* The limit on the stream's length (struct recv_expect): the
 * operator's --max-size, or else what the replica's filesystem can take.
 * Applying an increment needs its bytes twice (the spool, which becomes
 * journal/replica.tar, and the extracted files), and a replica whose
 * disk filled up half-way through the apply would be stuck at its commit
 * point; so the stream may take at most half of the space available to
 * us (f_bavail: root's reserve is not counted) less 1% of the
 * filesystem. Measured once, when the fetch starts. */
static int
replica_limit(const struct ds_replica_opts *o, int spool_fd,
              const char *spool_path, struct recv_expect *exp,
              ds_error *err)
{
	struct statvfs sv;
	uint64_t avail, keep;

	if (o->max_size == UINT64_MAX)
		return DS_OK;
	if (o->max_size != 0) {
		exp->max_bytes = o->max_size;
		return DS_OK;
	}
	if (fstatvfs(spool_fd, &sv) != 0)
		return ds_error_sys(err, errno, "statvfs", spool_path);
	avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	keep = (uint64_t)sv.f_blocks * sv.f_frsize / 100;
	exp->max_auto = 1;
	exp->fs_avail = avail;
	/* at least one byte: 0 would mean "no limit" */
	exp->max_bytes = avail > keep ? (avail - keep) / 2 : 1;
	if (exp->max_bytes == 0)
		exp->max_bytes = 1;
	return DS_OK;
}

/* Open spool_path afresh (a leftover from a killed run is not part of
 * anything: it never reached journal/). */
static int
replica_spool_open(const char *spool_path, int *fd, ds_error *err)
{
	struct stat st;
	int rc;

	if (lstat(spool_path, &st) == 0) {
		rc = ds_io_unlink(spool_path, err);
		if (rc != DS_OK)
			return rc;
	}
	return ds_io_open(spool_path, O_RDWR | O_CREAT | O_EXCL, 0640, fd, err);
}

/* One pull: the replica's paths, its config (loaded once, here, and
 * handed to every step that needs it), the storage held open, the spool. */
struct replica_pull {
	const char *home;
	const struct ds_replica_opts *o;
	struct ds_replica_stats *stats;
	ds_config cfg;
	ds_storage *s;
	ds_tid tid;                /* the replica's last transaction */
	char request[512];
	struct recv_expect exp;
	struct recv_summary sum;
	int fd;                    /* the spool, open while it is written */
	int committed;             /* the spool is journal/replica.tar */
	char spool[DS_PATH_MAX], tar[DS_PATH_MAX];
	char misc[DS_PATH_MAX], journal[DS_PATH_MAX];
	double started;            /* wall clock, for misc/replica.state */
	int late;                  /* hooks: lock only to commit (see
	                            * ds_replica_opts' before_apply) */
	ds_oid base_oid;           /* the replica's x.oid, read in place */
};

/* The replica's paths and config; refuse a replica that is not Full. */
static int
replica_pull_paths(struct replica_pull *p, ds_error *err)
{
	int rc;

	if (snprintf(p->spool, sizeof(p->spool), "%s/misc/.replica.incoming",
	             p->home) >= (int)sizeof(p->spool))
		return ds_error_set(err, DS_EINVAL, "replica %s: path too long",
		                    p->home);
	snprintf(p->tar, sizeof(p->tar), "%s/journal/replica.tar", p->home);
	snprintf(p->misc, sizeof(p->misc), "%s/misc", p->home);
	snprintf(p->journal, sizeof(p->journal), "%s/journal", p->home);
	rc = ds_config_load(p->home, &p->cfg, err);
	if (rc != DS_OK)
		return ds_error_prefix(err, rc, "replica %s is not a usable "
		                       "storage", p->home);
	if (strcmp(p->cfg.classname, "Full") != 0)
		return ds_error_set(err, DS_ECONFIG, "replica %s: This is not "
		                    "a Full storage (class %s)", p->home,
		                    p->cfg.classname);
	return DS_OK;
}

/* Open the replica through the engine. Synchronous: refuse (not wait)
 * when a snapshot user holds it; the journal is recovered and B
 * recombined when the open returns. */
static int
replica_pull_open(struct replica_pull *p, ds_error *err)
{
	int rc;

	rc = ds_storage_open(p->home, DS_OPEN_NOTHREAD | DS_OPEN_SYNCHRONOUS,
	                     &p->s, err);
	if (rc == DS_ELOCKED || rc == DS_EBUSY)
		return ds_error_prefix(err, rc, "replica %s is in use (a "
		                       "storage process or another ds replica)",
		                       p->home);
	if (rc != DS_OK)
		return rc;
	p->tid = ds_storage_last_tid(p->s);
	p->stats->old_tid = p->stats->new_tid = p->tid;
	return DS_OK;
}

/* The request: the replica's identity, its last tid and that
 * transaction's file (protocol.c). */
static int
replica_pull_request(struct replica_pull *p, ds_error *err)
{
	unsigned char *txn = NULL;
	size_t txnlen = 0;
	char name[DS_NAME_MAX];
	ds_error e;
	int rc;

	if (p->tid != 0) {
		ds_name_transaction(p->tid, name);
		if (p->s != NULL)
			rc = ds_storage_read_name(p->s, name, &txn, &txnlen, &e);
		else
			rc = replica_hook_read(p->home, p->cfg.layout, name, 0,
			                       &txn, &txnlen, &e);
		if (rc != DS_OK)
			return ds_error_set(err, DS_ECORRUPT, "replica %s: its "
			                    "last transaction's file is "
			                    "unreadable: %s", p->home, e.msg);
	}
	rc = protocol_request_encode(p->cfg.identity, p->tid, txn, txnlen,
	                             p->request, sizeof(p->request), err);
	if (rc == DS_OK && p->o->slot != NULL)
		rc = protocol_request_add_slot(p->request, sizeof(p->request),
		                               p->o->slot, err);
	free(txn);
	return rc;
}

/* Run the master side and spool its increment, every member checked
 * (recv.c) against what this replica expects. */
static int
replica_pull_fetch(struct replica_pull *p, ds_error *err)
{
	const struct ds_replica_opts *o = p->o;
	char szs[32];
	int rc;

	rc = p->late ? replica_hook_spool(p->spool, &p->fd, err) :
	     replica_spool_open(p->spool, &p->fd, err);
	if (rc != DS_OK)
		return rc;
	replica_log(o, DS_LOG_VERBOSE, "Fetching increment....");
	memset(&p->exp, 0, sizeof(p->exp));
	p->exp.base_tid = p->tid;
	/* what the checker holds the increment to: oids only grow, and the
	 * md5s this storage promises (its settings are the master's) */
	p->exp.base_oid = p->s ? ds_storage_last_oid(p->s) : p->base_oid;
	p->exp.md5_required = p->cfg.md5_write;
	p->exp.progress = o->progress;
	p->exp.progress_ctx = o->progress_ctx;
	rc = replica_limit(o, p->fd, p->spool, &p->exp, err);
	if (rc != DS_OK)
		return rc;
	rc = replica_fetch(o, p->request, p->fd, p->spool, &p->exp, &p->sum,
	                   p->stats, err);
	if (rc != DS_OK)
		return rc;
	ds_size_format(p->sum.bytes, szs);
	replica_log(o, DS_LOG_VERBOSE, "Increment size %s: %lu files, %lu "
	            "transactions, %lu object revisions; syncing....", szs,
	            p->sum.members, p->sum.transactions, p->sum.revisions);
	replica_no_md5(o, &p->sum);
	return DS_OK;
}

/* The commit point: the spool becomes journal/replica.tar, durably. */
static int
replica_pull_commit(struct replica_pull *p, ds_error *err)
{
	int rc;

	/* the spool's bytes and its directory entry durable before the
	 * rename below can make it the commit point */
	rc = ds_io_fsync(p->fd, p->spool, err);
	if (rc == DS_OK)
		rc = ds_io_close(p->fd, p->spool, err);
	p->fd = -1;
	if (rc == DS_OK)
		rc = ds_io_fsync_dir(p->misc, err);
	if (rc == DS_OK)
		rc = ds_io_rename(p->spool, p->tar, err);
	if (rc != DS_OK)
		return rc;
	p->committed = 1;
	/* once journal/ is durable, a crash rolls forward (the engine's
	 * recovery applies journal/replica.tar) */
	return ds_io_fsync_dir(p->journal, err);
}

/* Apply the committed increment in the replica's own layout. */
static int
replica_pull_apply(struct replica_pull *p, ds_error *err)
{
	int rc;

	replica_log(p->o, DS_LOG_VERBOSE, "Flushing increment....");
	rc = apply_committed_layout(p->home, p->cfg.layout,
	                            !p->o->no_keep_previous, err);
	if (rc != DS_OK)
		return rc;
	p->stats->new_tid = p->sum.new_tid;
	p->stats->bytes = p->sum.bytes;
	p->stats->members = p->sum.members;
	p->stats->transactions = p->sum.transactions;
	p->stats->revisions = p->sum.revisions;
	return DS_OK;
}

/* Whatever the outcome once the replica is open (its lock held, so a
 * spool there is ours or a killed run's): an uncommitted spool is
 * removed, a failure after the commit point says the next run completes
 * it, and the replica is closed (a closed replica is a snapshot,
 * "shutdown"). */
static int
replica_pull_end(struct replica_pull *p, int rc, ds_error *err)
{
	ds_error e;
	int crc;

	if (p->fd >= 0) {
		close(p->fd);
		p->fd = -1;
	}
	if (rc != DS_OK && !p->committed) {
		struct stat sst;
		if (lstat(p->spool, &sst) == 0)
			ds_io_unlink(p->spool, NULL);
	}
	if (rc != DS_OK && p->committed && err) {
		char m[DS_ERROR_MSG_MAX];
		snprintf(m, sizeof(m), "%.1800s (the increment is committed "
		         "in journal/replica.tar: the next ds replica or open "
		         "of the replica completes it)", err->msg);
		memcpy(err->msg, m, sizeof(m));
	}
	/* still holding the replica's lock: this run's record for ds status
	 * (a run refused because the replica is in use never gets here) */
	replica_state_record(p->home, p->o, p->cfg.identity, p->stats->new_tid,
	                     p->stats, p->started, rc, err);
	crc = ds_storage_close(p->s, 0, &e);
	p->s = NULL;
	if (crc != DS_OK && rc == DS_OK) {
		rc = crc;
		if (err)
			*err = e;
	}
	return rc;
}

/* The pull with hooks (ds_replica_opts' before_apply): read the replica
 * in place, fetch into misc/.replica.watch, run before_apply, and only
 * then lock the replica to commit and apply; after_apply last. */
static int
replica_pull_late(struct replica_pull *p, ds_error *err)
{
	const struct ds_replica_opts *o = p->o;
	struct ds_replica_increment inc;
	ds_tid tid;
	ds_error herr;
	int rc, hooked = 0;

	if (snprintf(p->spool, sizeof(p->spool), "%s/misc/.replica.watch",
	             p->home) >= (int)sizeof(p->spool))
		return ds_error_set(err, DS_EINVAL, "replica %s: path too long",
		                    p->home);
	rc = replica_hook_peek(p->home, &p->cfg, &tid, &p->base_oid, err);
	if (rc != DS_OK)
		return rc;
	p->tid = tid;
	p->stats->old_tid = p->stats->new_tid = tid;
	rc = replica_pull_request(p, err);
	if (rc == DS_OK)
		rc = replica_pull_fetch(p, err);
	if (rc == DS_OK && p->sum.transactions == 0) {
		/* nothing new: no hooks, nothing to commit; the replica is
		 * left alone (its open would stop a server for nothing) */
		replica_hook_drop(p->spool, &p->fd);
		replica_state_record(p->home, o, p->cfg.identity, tid, p->stats,
		                     p->started, DS_OK, NULL);
		return DS_OK;
	}
	memset(&inc, 0, sizeof(inc));
	inc.replica = p->home;
	inc.base = tid;
	inc.first = p->sum.first_tid;
	inc.last = p->sum.new_tid;
	inc.transactions = p->sum.transactions;
	inc.bytes = p->sum.bytes;
	if (rc == DS_OK && o->before_apply != NULL) {
		rc = o->before_apply(&inc, o->hook_ctx, err);
		if (rc != DS_OK)
			ds_error_prefix(err, rc, "the increment %016llX..%016llX "
			                "was abandoned, the replica is untouched",
			                (unsigned long long)inc.first,
			                (unsigned long long)inc.last);
	}
	hooked = rc == DS_OK;
	if (rc == DS_OK)
		rc = replica_pull_open(p, err);
	if (rc == DS_OK && ds_storage_last_tid(p->s) != tid)
		rc = ds_error_set(err, DS_EBUSY, "replica %s changed while the "
		                  "increment was fetched (another ds replica?): "
		                  "abandoned, try again", p->home);
	if (rc == DS_OK)
		rc = replica_hook_still_ours(p->spool, p->fd, err);
	if (rc == DS_OK)
		rc = replica_pull_commit(p, err);
	if (rc == DS_OK)
		rc = replica_pull_apply(p, err);
	if (p->s != NULL) {
		rc = replica_pull_end(p, rc, err);
	} else {
		/* never locked: our spool is ours alone (its flock) */
		replica_hook_drop(p->spool, &p->fd);
		replica_state_record(p->home, o, p->cfg.identity, tid, p->stats,
		                     p->started, rc, err);
	}
	if (hooked && o->after_apply != NULL) {
		int arc = o->after_apply(&inc, rc, rc == DS_OK ? NULL : err,
		                         o->hook_ctx, &herr);

		if (arc != DS_OK && rc == DS_OK) {
			rc = arc;
			if (err != NULL)
				*err = herr;
		}
	}
	return rc;
}

int
ds_replica_pull(const char *replica, const struct ds_replica_opts *o,
                struct ds_replica_stats *stats, ds_error *err)
{
	struct ds_replica_stats st0;
	struct replica_pull *p;
	double t0 = ds_now();
	int rc;

	stats = replica_stats_start(stats, &st0);
	rc = replica_check_opts(o, err);
	if (rc != DS_OK)
		return rc;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return ds_error_set(err, DS_ENOMEM, "replica %s: out of memory",
		                    replica);
	p->home = replica;
	p->o = o;
	p->stats = stats;
	p->fd = -1;
	p->started = replica_state_now();
	replica_log(o, DS_LOG_VERBOSE, "Preparing local storage....");
	rc = replica_pull_paths(p, err);
	if (rc != DS_OK)
		goto out;
	if (o->before_apply != NULL || o->after_apply != NULL) {
		p->late = 1;
		rc = replica_pull_late(p, err);
		goto out;
	}
	rc = replica_pull_open(p, err);
	if (rc != DS_OK)
		goto out;
	rc = replica_pull_request(p, err);
	if (rc == DS_OK)
		rc = replica_pull_fetch(p, err);
	if (rc == DS_OK)
		rc = replica_pull_commit(p, err);
	if (rc == DS_OK)
		rc = replica_pull_apply(p, err);
	rc = replica_pull_end(p, rc, err);
out:
	free(p);
	stats->seconds = ds_now() - t0;
	return rc;
}

/* ---- --init ---- */

static int
replica_rm_cb(const char *path, const struct stat *sb, int flag,
              struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag == FTW_DP)
		return ds_io_rmdir(path, NULL) == DS_OK ? 0 : -1;
	return ds_io_unlink(path, NULL) == DS_OK ? 0 : -1;
}

static void
replica_remove_tree(const char *dir)
{
	nftw(dir, replica_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- --init against a master that runs the original replica.py ---- */

/* More than any storage's config/settings or config/identity. */
#define REPLICA_CONFIG_MAX (64 * 1024)

/* What to do by hand when the original master cannot send its config. */
static void
replica_by_hand(const struct ds_replica_opts *o, const char *replica,
                char *out, size_t outsz)
{
	snprintf(out, outsz, "make the replica by hand: `ds mkds %.400s Full "
	         "FORMAT` (FORMAT: [structure] format in the master's "
	         "config/settings), copy the master's %.400s/config/identity "
	         "and %.400s/config/settings into %.400s/config/, then run ds "
	         "replica without --init; or copy the master's storage "
	         "directory while it is closed (cp -a)", replica,
	         o->master_dir, o->master_dir, replica);
}

/* Read the master's DIR/<rel> by running `cat -- DIR/<rel>` where the
 * master side would run (through ssh, or as a local child): at most
 * REPLICA_CONFIG_MAX bytes into *out (owned by the caller, NUL added). */
static int
replica_cat(const struct ds_replica_opts *o, const char *replica,
            const char *rel, char **out, size_t *outlen, ds_error *err)
{
	struct replica_run run = {o, NULL, 0};
	struct transport_opts to;
	struct transport *t = NULL;
	char path[DS_PATH_MAX], hand[DS_ERROR_MSG_MAX], *buf = NULL;
	const char *argv[4] = {"cat", "--", path, NULL};
	size_t len = 0;
	ds_error rerr, werr;
	int rc, how = 0, big = 0, rfail = 0;

	*out = NULL;
	if (snprintf(path, sizeof(path), "%s/%s", o->master_dir, rel) >=
	    (int)sizeof(path))
		return ds_error_set(err, DS_EINVAL, "replica: master path "
		                    "too long");
	buf = malloc(REPLICA_CONFIG_MAX + 1);
	if (buf == NULL)
		return ds_error_set(err, DS_ENOMEM, "replica: out of memory");
	memset(&to, 0, sizeof(to));
	to.host = o->host;
	to.user = o->user;
	to.command = o->ssh_command;
	to.master_dir = o->master_dir;
	to.exact_argv = argv;
	to.on_stderr = replica_master_line;
	to.ctx = &run;
	to.read_timeout = o->read_timeout;
	rc = transport_start(&to, "", 0, &t, err);
	if (rc != DS_OK)
		goto out;
	replica_log(o, DS_LOG_DEBUG, "running: %s", transport_cmdline(t));
	ds_error_clear(&rerr);
	for (;;) {
		ssize_t n = transport_read(t, buf + len,
		                           REPLICA_CONFIG_MAX + 1 - len, &rerr);

		if (n < 0) {
			rfail = 1;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > REPLICA_CONFIG_MAX) {
			big = 1;
			break;
		}
	}
	rc = transport_wait(t, rfail || big, &how, &werr);
	if (rc != DS_OK) {
		if (err)
			*err = werr;
		goto out;
	}
	replica_by_hand(o, replica, hand, sizeof(hand));
	if (run.original) {
		rc = ds_error_set(err, DS_EREFUSED, "the master runs the "
		                  "original replica.py, which cannot send its "
		                  "identity and settings, and `cat %.400s` on "
		                  "the master ran replica.py instead (an ssh key "
		                  "restricted to it?): %s", path, hand);
	} else if (big) {
		rc = ds_error_set(err, DS_EPROTO, "the master runs the original "
		                  "replica.py: its %s is larger than %d bytes: "
		                  "not a storage's", rel, REPLICA_CONFIG_MAX);
	} else if (rfail) {
		/* the connection went silent (--timeout) or broke */
		rc = ds_error_set(err, rerr.status, "the master runs the "
		                  "original replica.py: reading its %s: %s",
		                  rel, rerr.msg);
	} else if (how == 255 || how >= 128) {
		const char *last = transport_last_line(t);

		rc = ds_error_set(err, DS_EBUSY, "the master runs the original "
		                  "replica.py: reading its %s failed (connection "
		                  "to the master failed, %s %d)%s%.300s", rel,
		                  how == 255 ? "exit" : "signal",
		                  how == 255 ? how : how - 128, *last ? ": " : "",
		                  last);
	} else if (how != 0) {
		const char *last = transport_last_line(t);

		rc = ds_error_set(err, DS_EREFUSED, "the master runs the "
		                  "original replica.py, which cannot send its "
		                  "identity and settings, and `cat %s` on the "
		                  "master failed (exit %d%s%.300s): %s", path,
		                  how, *last ? ": " : "", last, hand);
	} else {
		buf[len] = '\0';
		*out = buf;
		*outlen = len;
		buf = NULL;
		rc = DS_OK;
	}
out:
	transport_free(t);
	free(buf);
	return rc;
}

/* Write a config file of the new storage with the master's bytes. */
static int
replica_put_config(const char *tmp, const char *rel, const char *buf,
                   size_t len, ds_error *err)
{
	char path[DS_PATH_MAX];
	int rc;

	rc = ds_path_join(path, sizeof(path), tmp, rel, err);
	if (rc != DS_OK)
		return rc;
	/* O_TRUNC over mkds's file: the directory is not a replica yet,
	 * and both files are fsynced before it becomes one */
	return ds_io_write_file(path, buf, len, 0644, 0, 1, err);
}

/* The replica at tmp (which does not exist) from an original master:
 * read its config/identity and config/settings with cat, make an empty
 * Full storage with them, pull the whole history (the all-zero tid) into
 * it as an ordinary increment, then rename it to replica. */
static int
replica_init_original(const char *replica, const char *tmp,
                      const char *parent, const struct ds_replica_opts *o,
                      struct ds_replica_stats *stats, ds_error *err)
{
	struct ds_replica_opts po = *o;
	char absdir[DS_PATH_MAX], cfgdir[DS_PATH_MAX];
	char *ident = NULL, *settings = NULL;
	size_t identlen = 0, settingslen = 0;
	ds_settings *st = NULL;
	const char *fmt, *cls;
	ds_config cfg;
	ds_error e;
	int rc, made = 0;

	replica_log(o, DS_LOG_VERBOSE, "the master runs the original "
	            "replica.py, which has no whole-storage request: making an "
	            "empty storage with the master's identity and settings "
	            "(read with cat), then pulling its whole history as one "
	            "increment");
	/* the original's master side runs whatsnew from another directory:
	 * it needs an absolute path ("error 256 in whatsnew" otherwise) */
	if (o->master_dir[0] != '/') {
		if (o->host != NULL)
			return ds_error_set(err, DS_EINVAL, "the master runs the "
			                    "original replica.py, which needs an "
			                    "absolute master directory (it fails "
			                    "with \"error 256 in whatsnew\" on %s): "
			                    "give %s:/ABSOLUTE/PATH", o->master_dir,
			                    o->host);
		if (realpath(o->master_dir, absdir) == NULL)
			return ds_error_sys(err, errno, "realpath",
			                    o->master_dir);
		po.master_dir = absdir;
	}
	rc = replica_cat(&po, replica, "config/identity", &ident, &identlen,
	                 err);
	if (rc == DS_OK)
		rc = replica_cat(&po, replica, "config/settings", &settings,
		                 &settingslen, err);
	if (rc != DS_OK)
		goto out;
	rc = ds_settings_parse(settings, settingslen, "config/settings", &st,
	                       &e);
	if (rc != DS_OK) {
		rc = ds_error_set(err, DS_ECONFIG, "the master runs the "
		                  "original replica.py: its %s", e.msg);
		goto out;
	}
	fmt = ds_settings_get(st, "structure", "format");
	cls = ds_settings_get(st, "storage", "classname");
	if (cls == NULL || strcmp(cls, "Full") != 0) {
		rc = ds_error_set(err, DS_ECONFIG, "the master runs the "
		                  "original replica.py: its storage is not Full "
		                  "(class %s): only Full storages are replicated",
		                  cls ? cls : "not given");
		goto out;
	}
	rc = ds_storage_create(tmp, "Full", fmt ? fmt : "", &e);
	if (rc != DS_OK) {
		rc = ds_error_set(err, rc, "the master runs the original "
		                  "replica.py: making the new storage from its "
		                  "settings: %s", e.msg);
		goto out;
	}
	made = 1;
	rc = replica_put_config(tmp, "config/identity", ident, identlen, err);
	if (rc == DS_OK)
		rc = replica_put_config(tmp, "config/settings", settings,
		                        settingslen, err);
	if (rc == DS_OK)
		rc = ds_path_join(cfgdir, sizeof(cfgdir), tmp, "config", err);
	if (rc == DS_OK)
		rc = ds_io_fsync_dir(cfgdir, err);
	if (rc != DS_OK)
		goto out;
	rc = ds_config_load(tmp, &cfg, &e);
	if (rc != DS_OK) {
		rc = ds_error_set(err, rc, "the master runs the original "
		                  "replica.py: its config/identity or "
		                  "config/settings is refused: %s", e.msg);
		goto out;
	}
	rc = ds_replica_pull(tmp, &po, stats, &e);
	stats->master_original = 1;
	if (rc != DS_OK) {
		if (strstr(e.msg, "storage has been packed since the last "
		           "replica") != NULL)
			rc = ds_error_set(err, DS_EREFUSED, "the master runs the "
			                  "original replica.py, and its storage "
			                  "has been packed: the original sends no "
			                  "history from before its last pack, so "
			                  "it cannot make a new replica (%.600s). "
			                  "Copy the master's storage directory "
			                  "while it is closed (cp -a, or restore a "
			                  "backup of it) to %s, then run ds "
			                  "replica without --init", e.msg, replica);
		else {
			rc = ds_error_set(err, rc, "the master runs the original "
			                  "replica.py: %.1800s", e.msg);
			if (err)
				err->sys_errno = e.sys_errno;
		}
		goto out;
	}
	rc = ds_io_rename(tmp, replica, err);
	if (rc != DS_OK)
		goto out;
	made = 0;
	/* the new name durable: the replica exists */
	rc = ds_io_fsync_dir(parent, err);
out:
	if (made)
		replica_remove_tree(tmp);
	ds_settings_free(st);
	free(ident);
	free(settings);
	return rc;
}

/* The directories of a new storage, made empty before the transfer and
 * synced before it is renamed into place. */
static const char *const replica_subdirs[] = {"A", "B", "journal", "misc",
                                              "config"};
#define REPLICA_NSUBDIRS (sizeof(replica_subdirs) / sizeof(replica_subdirs[0]))

/* One --init: the new storage is built at tmp, next to replica. */
struct replica_init_run {
	const char *replica;
	const struct ds_replica_opts *o;
	struct ds_replica_stats *stats;
	struct recv_expect exp;
	struct recv_summary sum;
	int fd;                    /* the spool, open while it is written */
	int made;                  /* tmp exists and is ours to remove */
	char tmp[DS_PATH_MAX], parent[DS_PATH_MAX], spool[DS_PATH_MAX];
};

/* Refuse an existing replica; name tmp (replica.init-<pid>) and the
 * parent directory. */
static int
replica_init_names(struct replica_init_run *r, ds_error *err)
{
	struct stat st;
	char *sl;

	if (lstat(r->replica, &st) == 0)
		return ds_error_set(err, DS_EEXIST, "replica --init %s: it "
		                    "exists already (--init makes a new "
		                    "replica)", r->replica);
	if (snprintf(r->tmp, sizeof(r->tmp), "%s.init-%ld", r->replica,
	             (long)getpid()) >= (int)sizeof(r->tmp) - 64)
		return ds_error_set(err, DS_EINVAL, "replica %s: path too long",
		                    r->replica);
	snprintf(r->parent, sizeof(r->parent), "%s", r->replica);
	sl = strrchr(r->parent, '/');
	if (sl == NULL)
		snprintf(r->parent, sizeof(r->parent), ".");
	else if (sl == r->parent)
		r->parent[1] = '\0';
	else
		*sl = '\0';
	return DS_OK;
}

/* tmp and its empty subdirectories. */
static int
replica_init_skeleton(struct replica_init_run *r, ds_error *err)
{
	char p[DS_PATH_MAX];
	int rc;

	rc = ds_io_mkdir(r->tmp, 0755, 0, err);
	if (rc != DS_OK)
		return rc;
	r->made = 1;
	for (size_t i = 0; i < REPLICA_NSUBDIRS; i++) {
		rc = ds_path_join(p, sizeof(p), r->tmp, replica_subdirs[i], err);
		if (rc == DS_OK)
			rc = ds_io_mkdir(p, 0755, 0, err);
		if (rc != DS_OK)
			return rc;
	}
	return DS_OK;
}

/* Ask for the whole storage (`replica init 0`) and spool it, checked. */
static int
replica_init_fetch(struct replica_init_run *r, ds_error *err)
{
	char request[32];
	int rc;

	rc = ds_path_join(r->spool, sizeof(r->spool), r->tmp,
	                  "misc/.replica.incoming", err);
	if (rc == DS_OK)
		rc = replica_spool_open(r->spool, &r->fd, err);
	if (rc != DS_OK)
		return rc;
	replica_log(r->o, DS_LOG_VERBOSE, "Fetching the whole storage....");
	memset(&r->exp, 0, sizeof(r->exp));
	r->exp.init = 1;
	r->exp.progress = r->o->progress;
	r->exp.progress_ctx = r->o->progress_ctx;
	rc = replica_limit(r->o, r->fd, r->spool, &r->exp, err);
	if (rc != DS_OK)
		return rc;
	rc = protocol_init_encode(request, sizeof(request), err);
	if (rc != DS_OK)
		return rc;
	return replica_fetch(r->o, request, r->fd, r->spool, &r->exp, &r->sum,
	                     r->stats, err);
}

/* Write the spooled storage into tmp, keep the spool as
 * misc/replica.previous (or remove it), and check the new storage's
 * config loads. */
static int
replica_init_apply(struct replica_init_run *r, ds_error *err)
{
	char p[DS_PATH_MAX], szs[32];
	ds_config cfg;
	int rc;

	ds_size_format(r->sum.bytes, szs);
	replica_log(r->o, DS_LOG_VERBOSE, "Storage size %s: %lu files, %lu "
	            "transactions, %lu object revisions; writing....", szs,
	            r->sum.members, r->sum.transactions, r->sum.revisions);
	replica_no_md5(r->o, &r->sum);
	rc = ds_io_fsync(r->fd, r->spool, err);
	if (rc == DS_OK)
		rc = ds_io_close(r->fd, r->spool, err);
	r->fd = -1;
	if (rc == DS_OK)
		rc = apply_init(r->tmp, r->spool, r->sum.layout, err);
	if (rc != DS_OK)
		return rc;
	/* the whole storage as a tar: kept as misc/replica.previous as
	 * every increment is, unless --no-keep-previous (then it would
	 * double the replica's size for nothing); the new storage is not
	 * under its name yet, so no sync is needed before that rename */
	if (r->o->no_keep_previous) {
		rc = ds_io_unlink(r->spool, err);
	} else {
		rc = ds_path_join(p, sizeof(p), r->tmp, "misc/replica.previous",
		                  err);
		if (rc == DS_OK)
			rc = ds_io_rename(r->spool, p, err);
	}
	if (rc == DS_OK)
		rc = ds_config_load(r->tmp, &cfg, err);
	return rc;
}

/* Every directory entry of tmp durable, then tmp renamed to replica,
 * durably. */
static int
replica_init_publish(struct replica_init_run *r, ds_error *err)
{
	char p[DS_PATH_MAX];
	int rc;

	for (size_t i = 0; i < REPLICA_NSUBDIRS; i++) {
		rc = ds_path_join(p, sizeof(p), r->tmp, replica_subdirs[i], err);
		if (rc == DS_OK)
			rc = ds_io_fsync_dir(p, err);
		if (rc != DS_OK)
			return rc;
	}
	rc = ds_io_fsync_dir(r->tmp, err);
	if (rc == DS_OK)
		rc = ds_io_rename(r->tmp, r->replica, err);
	if (rc != DS_OK)
		return rc;
	r->made = 0;
	return ds_io_fsync_dir(r->parent, err);
}

/* Through the engine once: it must open, and a closed storage is a
 * snapshot ("shutdown") with its lock files. */
static int
replica_init_open_once(const char *replica, ds_error *err)
{
	ds_storage *s = NULL;
	int rc;

	rc = ds_storage_open(replica, DS_OPEN_NOTHREAD | DS_OPEN_SYNCHRONOUS,
	                     &s, err);
	if (rc == DS_OK)
		rc = ds_storage_close(s, 0, err);
	return rc;
}

int
ds_replica_init(const char *replica, const struct ds_replica_opts *o,
                struct ds_replica_stats *stats, ds_error *err)
{
	struct ds_replica_stats st0;
	struct replica_init_run *r;
	double t0 = ds_now(), started = replica_state_now();
	ds_config cfg;
	int rc;

	stats = replica_stats_start(stats, &st0);
	rc = replica_check_opts(o, err);
	if (rc != DS_OK)
		return rc;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return ds_error_set(err, DS_ENOMEM, "replica %s: out of memory",
		                    replica);
	r->replica = replica;
	r->o = o;
	r->stats = stats;
	r->fd = -1;
	rc = replica_init_names(r, err);
	if (rc != DS_OK)
		goto out;
	rc = replica_init_skeleton(r, err);
	if (rc == DS_OK)
		rc = replica_init_fetch(r, err);
	if (rc != DS_OK && stats->master_original) {
		/* the original replica.py has no whole-storage request */
		close(r->fd);
		r->fd = -1;
		replica_remove_tree(r->tmp);
		r->made = 0;
		rc = replica_init_original(replica, r->tmp, r->parent, o, stats,
		                           err);
		goto out;
	}
	if (rc == DS_OK)
		rc = replica_init_apply(r, err);
	if (rc == DS_OK)
		rc = replica_init_publish(r, err);
	if (rc == DS_OK)
		rc = replica_init_open_once(replica, err);
	if (rc != DS_OK)
		goto out;
	stats->new_tid = r->sum.new_tid;
	stats->bytes = r->sum.bytes;
	stats->members = r->sum.members;
	stats->transactions = r->sum.transactions;
	stats->revisions = r->sum.revisions;
	/* the first record of the run record for ds status (the new
	 * replica's identity from its config, as every later run's) */
	if (ds_config_load(replica, &cfg, NULL) == DS_OK)
		replica_state_record(replica, o, cfg.identity, r->sum.new_tid,
		                     stats, started, DS_OK, NULL);
out:
	if (r->fd >= 0)
		close(r->fd);
	if (r->made)
		replica_remove_tree(r->tmp);
	free(r);
	stats->seconds = ds_now() - t0;
	return rc;
}
