/*
 * status.c - what `ds status` reads: a replica in place (its x.serial,
 * a pending increment, misc/replica.state), and the master's newest
 * transaction, asked over the replication transport with the request
 * "replica status 0" (protocol.h), which the master side answers here.
 *
 * The answer, on the master side's stdout, is text:
 *   ds-master-status 1
 *   newest <16 hex>      the master's x.serial
 *   packed <16 hex>      its x.packed
 *   behind <N>           transactions after the replica's tid
 *   oldest <16 hex>      the first of them (zeros: none)
 *   in_history 0|1       the walk back from newest met the replica's tid
 *   now <seconds>        the master's clock (Unix time)
 * Unknown lines are ignored by the reader (later versions may add some).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "protocol.h"
#include "replica_internal.h"
#include "status.h"

#define STATUS_ANSWER_MAX 4096

/* ---- reading a storage in place ---- */

static int
status_read_x(const char *home, ds_layout layout, const char *name,
              uint64_t *v, ds_error *err)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	int rc;

	rc = replica_hook_read(home, layout, name, 64, &buf, &len, err);
	if (rc == DS_OK)
		rc = ds_xfile_decode(buf, len, name, v, err);
	free(buf);
	return rc;
}

int
ds_replica_local_status(const char *home, struct ds_replica_local *out,
                        ds_error *err)
{
	char tar[DS_PATH_MAX];
	struct stat st;
	ds_config cfg;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = ds_config_load(home, &cfg, err);
	if (rc != DS_OK)
		return rc;
	memcpy(out->identity, cfg.identity, sizeof(out->identity));
	/* x.serial is replaced by rename (the apply writes it last): read
	 * without a lock it is the old value or the new one */
	rc = status_read_x(home, cfg.layout, "x.serial", &out->tid, err);
	if (rc != DS_OK)
		return ds_error_prefix(err, rc, "replica %s", home);
	rc = ds_path_join(tar, sizeof(tar), home, "journal/replica.tar", err);
	if (rc != DS_OK)
		return rc;
	out->pending = lstat(tar, &st) == 0;
	return ds_replica_state_read(home, &out->state, &out->state_found,
	                             err);
}

/* ---- the master side ---- */

/* Walk back from newest to since: how many transactions, the oldest. A
 * transaction file older than x.packed may be gone (the pack removed
 * it): the walk stops there, short of since. */
static int
status_walk(const char *home, ds_layout layout, ds_tid since,
            struct ds_master_status *ms, ds_error *err)
{
	ds_tid tid = ms->newest;
	int rc = DS_OK;

	while (tid > since) {
		char name[DS_NAME_MAX];
		unsigned char *buf = NULL;
		size_t len = 0;
		ds_txnrec rec;
		ds_error e;

		ds_name_transaction(tid, name);
		rc = replica_hook_read(home, layout, name, 0, &buf, &len, &e);
		if (rc == DS_OK)
			rc = ds_txnrec_decode(buf, len, name, &rec, &e);
		if (rc == DS_OK && (rec.tid != tid || rec.prev_tid >= tid))
			rc = ds_error_set(&e, DS_ECORRUPT, "%s: its tid or "
			                  "previous-transaction pointer is wrong",
			                  name);
		if (rc == DS_OK) {
			ms->behind++;
			ms->oldest = tid;
			tid = rec.prev_tid;
		}
		free(buf);
		if (rc != DS_OK) {
			if (tid <= ms->packed)
				return DS_OK;   /* removed by the pack */
			if (err != NULL)
				*err = e;
			return rc;
		}
	}
	ms->in_history = tid == since;
	return DS_OK;
}

static int
status_write_all(int fd, const char *buf, size_t len, ds_error *err)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return ds_error_sys(err, errno, "write", "status answer");
		buf += n;
		len -= (size_t)n;
	}
	return DS_OK;
}

int
status_serve(const char *home, ds_layout layout, ds_tid since,
             const struct ds_replica_serve_opts *opts, int out_fd,
             ds_error *err)
{
	struct ds_snapshot_opts sopts = {0};
	struct ds_master_status ms;
	ds_snapshot *snap = NULL;
	char answer[STATUS_ANSWER_MAX];
	ds_error e;
	int rc;

	memset(&ms, 0, sizeof(ms));
	if (opts->snapshot != NULL)
		sopts = *opts->snapshot;
	sopts.log = opts->log;
	sopts.log_ctx = opts->log_ctx;
	/* a reader: the storage's files stay byte for byte as they were */
	sopts.quiet = 1;
	rc = ds_snapshot_acquire(home, &sopts, &snap, err);
	if (rc != DS_OK)
		return rc;
	rc = status_read_x(home, layout, "x.serial", &ms.newest, err);
	if (rc == DS_OK)
		rc = status_read_x(home, layout, "x.packed", &ms.packed, err);
	if (rc == DS_OK)
		rc = status_walk(home, layout, since, &ms, err);
	ds_error_clear(&e);
	if (ds_snapshot_release(snap, &e) != DS_OK)
		ds_log(opts->log, opts->log_ctx, DS_LOG_WARN, "%s", e.msg);
	if (rc != DS_OK)
		return rc;
	ms.now = replica_state_now();
	snprintf(answer, sizeof(answer),
	         PROTOCOL_STATUS_HEADER "\n"
	         "newest %016llX\n"
	         "packed %016llX\n"
	         "behind %lu\n"
	         "oldest %016llX\n"
	         "in_history %d\n"
	         "now %.3f\n",
	         (unsigned long long)ms.newest, (unsigned long long)ms.packed,
	         ms.behind, (unsigned long long)ms.oldest, ms.in_history,
	         ms.now);
	return status_write_all(out_fd, answer, strlen(answer), err);
}

/* ---- the replica side's question ---- */

struct status_run {
	const struct ds_replica_opts *opts;
	int original;           /* the original's usage text came */
};

static void
status_master_line(const char *line, void *ctx)
{
	struct status_run *run = ctx;

	if (strncmp(line, "Usage: ", 7) == 0 &&
	    strstr(line, "MasterMachine:MasterDirectory") != NULL)
		run->original = 1;
	if (!run->original)
		ds_log(run->opts->log, run->opts->log_ctx, DS_LOG_VERBOSE,
		       "master: %s", protocol_master_text(line));
}

static int
status_parse(char *buf, struct ds_master_status *ms, ds_error *err)
{
	char *line, *next;
	int seen = 0, lineno = 0;

	memset(ms, 0, sizeof(*ms));
	for (line = buf; line != NULL && *line != '\0'; line = next) {
		char key[32], val[64], extra;
		uint64_t v;
		int ok = 1;

		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		if (lineno++ == 0) {
			if (strcmp(line, PROTOCOL_STATUS_HEADER) != 0)
				break;
			seen |= 1;
			continue;
		}
		if (sscanf(line, "%31s %63s %c", key, val, &extra) != 2)
			continue;
		if (strcmp(key, "newest") == 0) {
			ok = ds_id_parse(val, &ms->newest) == DS_OK;
			seen |= 2;
		} else if (strcmp(key, "packed") == 0) {
			ok = ds_id_parse(val, &ms->packed) == DS_OK;
		} else if (strcmp(key, "oldest") == 0) {
			ok = ds_id_parse(val, &ms->oldest) == DS_OK;
		} else if (strcmp(key, "behind") == 0) {
			char *end;
			errno = 0;
			v = strtoull(val, &end, 10);
			ok = *end == '\0' && errno == 0 && val[0] != '-';
			ms->behind = (unsigned long)v;
			seen |= 4;
		} else if (strcmp(key, "in_history") == 0) {
			ok = strcmp(val, "0") == 0 || strcmp(val, "1") == 0;
			ms->in_history = val[0] == '1';
		} else if (strcmp(key, "now") == 0) {
			char *end;
			ms->now = strtod(val, &end);
			ok = *end == '\0' && ms->now > 0;
		}
		if (!ok)
			return ds_error_set(err, DS_EPROTO, "the master's status "
			                    "answer: malformed line \"%.80s %.80s\"",
			                    key, val);
	}
	if (seen != 7)
		return ds_error_set(err, DS_EPROTO, "the master's status answer "
		                    "is not one (\"%s\", newest and behind "
		                    "expected)", PROTOCOL_STATUS_HEADER);
	return DS_OK;
}

int
ds_replica_master_status(const struct ds_replica_opts *o,
                         const char *identity, ds_tid tid,
                         struct ds_master_status *out, ds_error *err)
{
	struct status_run run = {o, 0};
	struct transport_opts to;
	struct transport *t = NULL;
	char request[256], *buf = NULL;
	size_t len = 0;
	ds_error rerr, werr;
	int rc, how = 0, rfail = 0, big = 0;

	memset(out, 0, sizeof(*out));
	if (o == NULL || o->master_dir == NULL || o->master_dir[0] == '\0')
		return ds_error_set(err, DS_EINVAL, "status: no master "
		                    "directory given");
	rc = protocol_status_encode(identity, tid, request, sizeof(request),
	                            err);
	if (rc != DS_OK)
		return rc;
	buf = malloc(STATUS_ANSWER_MAX + 1);
	if (buf == NULL)
		return ds_error_set(err, DS_ENOMEM, "status: out of memory");
	memset(&to, 0, sizeof(to));
	to.host = o->host;
	to.user = o->user;
	to.command = o->ssh_command;
	to.remote_program = o->remote_program;
	to.local_program = o->local_program;
	to.master_command = o->master_command;
	to.verbosity = o->verbosity;
	to.master_dir = o->master_dir;
	to.on_stderr = status_master_line;
	to.ctx = &run;
	to.read_timeout = o->read_timeout;
	to.deadline = o->deadline;
	to.deadline_at = o->deadline ? ds_now() + o->deadline : 0;
	rc = transport_start(&to, request, strlen(request), &t, err);
	if (rc != DS_OK)
		goto out;
	ds_error_clear(&rerr);
	for (;;) {
		ssize_t n = transport_read(t, buf + len,
		                           STATUS_ANSWER_MAX + 1 - len, &rerr);

		if (n < 0) {
			rfail = 1;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > STATUS_ANSWER_MAX) {
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
	if (run.original) {
		rc = ds_error_set(err, DS_EREFUSED, "the master does not answer "
		                  "status requests: it runs the original "
		                  "replica.py (it answered with its usage text)");
	} else if (rfail) {
		rc = ds_error_set(err, rerr.status, "the master's status: %s",
		                  rerr.msg);
	} else if (big) {
		rc = ds_error_set(err, DS_EPROTO, "the master's status answer is "
		                  "longer than %d bytes", STATUS_ANSWER_MAX);
	} else if (how == 3 || how == 255 || how >= 128) {
		const char *last = protocol_master_text(transport_last_line(t));

		rc = ds_error_set(err, DS_EBUSY, "%s (%s %d)%s%s", how == 3 ?
		                  "the master is busy" : "connection to the "
		                  "master failed", how >= 128 && how != 255 ?
		                  "signal" : "exit", how >= 128 && how != 255 ?
		                  how - 128 : how, *last ? ": " : "", last);
	} else if (how != 0) {
		const char *last = protocol_master_text(transport_last_line(t));

		if (strstr(last, "malformed request") != NULL)
			rc = ds_error_set(err, DS_EREFUSED, "the master does not "
			                  "answer status requests (an older ds: "
			                  "%s)", last);
		else
			rc = ds_error_set(err, how == 4 ? DS_EIO : DS_EREFUSED,
			                  "master side (exit %d): %s", how,
			                  *last ? last : "no message");
	} else {
		buf[len] = '\0';
		rc = status_parse(buf, out, err);
	}
out:
	transport_free(t);
	free(buf);
	return rc;
}

/* ---- files outside a storage ---- */

int
ds_file_replace(const char *path, const void *buf, size_t len, mode_t mode,
                ds_error *err)
{
	char dir[DS_PATH_MAX], tmp[DS_PATH_MAX];
	const char *base, *slash = strrchr(path, '/');
	int fd = -1, rc;

	if (slash == NULL) {
		snprintf(dir, sizeof(dir), ".");
		base = path;
	} else if (slash == path) {
		snprintf(dir, sizeof(dir), "/");
		base = slash + 1;
	} else {
		if ((size_t)(slash - path) >= sizeof(dir))
			return ds_error_set(err, DS_EINVAL, "%s: path too long",
			                    path);
		memcpy(dir, path, (size_t)(slash - path));
		dir[slash - path] = '\0';
		base = slash + 1;
	}
	if (snprintf(tmp, sizeof(tmp), "%s/.%s.%ld.tmp", dir, base,
	             (long)getpid()) >= (int)sizeof(tmp))
		return ds_error_set(err, DS_EINVAL, "%s: path too long", path);
	/* a leftover of a killed writer with our pid is not anybody's */
	unlink(tmp);
	rc = ds_io_open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode, &fd,
	                err);
	if (rc != DS_OK)
		return rc;
	/* the bytes durable before the rename makes them the file */
	rc = ds_io_write_all(fd, buf, len, tmp, err);
	if (rc == DS_OK)
		rc = ds_io_fsync(fd, tmp, err);
	if (rc == DS_OK) {
		rc = ds_io_close(fd, tmp, err);
		fd = -1;
	}
	if (rc == DS_OK)
		rc = ds_io_rename(tmp, path, err);
	/* the new entry durable: a reader after a crash sees this file */
	if (rc == DS_OK)
		rc = ds_io_fsync_dir(dir, err);
	else
		unlink(tmp);
	if (fd >= 0)
		close(fd);
	return rc;
}
