/*
 * replica_master.c - the master side of replication (`ds replica + DIR`).
 *
 * Reads the replica's request, refuses the cases the original refuses (in
 * its order: request line, identity, packed since the replica's tid,
 * reference transaction missing, reference transaction differs), then,
 * inside snapshot mode, writes the whatsnew file list as a ustar stream to
 * an unlinked temporary file (the spool), and leaves snapshot mode as soon
 * as the last file is read. A sender thread copies the spool to out_fd
 * while it is being written, following the writer's offset: the transfer
 * (and the replica's checking and writing) overlaps the master's reading,
 * yet snapshot mode is held for as long as the local disk needs, never for
 * as long as the network needs (the writer never waits for the sender; the
 * spool absorbs a slow network). The end-of-archive blocks are written
 * only when every member is in the spool, so a master that fails part way
 * never sends a complete archive (see ds_replica_serve).
 *
 * The stream must be byte for byte what the original's `cpio -o -H ustar`
 * writes (the recorded fixture responses). libarchive writes the ustar
 * structure (headers, padding, the two zero blocks at the end, no blocking
 * to 10240 bytes); its write callback re-encodes each header's numeric
 * fields the way GNU cpio does (7 octal digits + NUL for mode, uid, gid,
 * devmajor, devminor and the checksum; 11 digits + NUL for size and mtime,
 * where libarchive writes 6 digits + space + NUL and space terminators).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include <archive.h>
#include <archive_entry.h>

#include "internal.h"
#include "protocol.h"
#include "sender.h"
#include "status.h"
#include "ustar.h"

#define REPLICA_COPY_BUF (64 * 1024)

/* One serve call: where the increment goes and how it is written. */
struct replica_ctx {
	const struct ds_replica_serve_opts *opts;
	const char *home;
	ds_layout layout;
	struct ustar_out u;         /* the stream, as cpio writes it; its
	                            * err holds the first spool write error */
	struct archive_entry *entry;
	unsigned char *copybuf;
	unsigned long members;
	int fd;                     /* the spool */
	unsigned char *wbuf;        /* REPLICA_COPY_BUF: spool writes are
	                             * gathered into whole buffers (one write
	                             * call per 64 KiB, not three per file:
	                             * fewer system calls in snapshot mode) */
	size_t wfill;
	uint64_t flushed;           /* bytes in the spool file */
	char spool[DS_PATH_MAX + 64];  /* names the spool in messages */
	struct sender *snd; /* NULL until the sender runs */
};

/* ---- messages ---- */

/* c->opts is never NULL (ds_replica_serve gives defaults) */
#define replica_log(c, ...) \
	ds_log((c)->opts->log, (c)->opts->log_ctx, __VA_ARGS__)

/* Write the gathered bytes to the spool; the sender may send them. */
static int
replica_spool_flush(struct replica_ctx *c, ds_error *err)
{
	int rc;

	if (c->wfill == 0)
		return DS_OK;
	rc = ds_io_write_all(c->fd, c->wbuf, c->wfill, c->spool, err);
	if (rc != DS_OK)
		return rc;
	c->flushed += c->wfill;
	c->wfill = 0;
	if (c->snd != NULL)
		sender_publish(c->snd, c->flushed, 0, 0);
	return DS_OK;
}

/* Append n bytes to the spool (through wbuf): the ustar writer's
 * ustar_put_fn. */
static int
replica_spool_put(void *ctx, const unsigned char *p, size_t n, ds_error *err)
{
	struct replica_ctx *c = ctx;
	int rc;

	while (n > 0) {
		size_t k = REPLICA_COPY_BUF - c->wfill;

		if (k > n)
			k = n;
		memcpy(c->wbuf + c->wfill, p, k);
		c->wfill += k;
		p += k;
		n -= k;
		if (c->wfill == REPLICA_COPY_BUF &&
		    (rc = replica_spool_flush(c, err)) != DS_OK)
			return rc;
	}
	return DS_OK;
}

static int
replica_tar_open(struct replica_ctx *c, ds_error *err)
{
	c->entry = archive_entry_new();
	c->copybuf = malloc(REPLICA_COPY_BUF);
	c->wbuf = malloc(REPLICA_COPY_BUF);
	if (c->entry == NULL || c->copybuf == NULL || c->wbuf == NULL)
		return ds_error_set(err, DS_ENOMEM, "increment: out of memory");
	return ustar_open(&c->u, replica_spool_put, c, err);
}

/* Append HOME/relpath as member relpath: mode bits only, uid/gid 0,
 * root/root, the file's mtime, as cpio writes them. */
static int
replica_tar_add(struct replica_ctx *c, const char *relpath, ds_error *err)
{
	char path[DS_PATH_MAX];
	struct stat st;
	uint64_t left;
	int fd = -1, rc;

	/* the replica went away: no point reading on */
	if (c->snd != NULL && (rc = sender_failed(c->snd, err)) != DS_OK)
		return rc;
	if ((rc = ds_path_join(path, sizeof(path), c->home, relpath, err)) !=
	    DS_OK)
		return rc;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return ds_error_sys(err, errno, "increment: open", path);
	if (fstat(fd, &st) != 0) {
		rc = ds_error_sys(err, errno, "increment: stat", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = ds_error_set(err, DS_ECORRUPT, "increment: %s is not a "
		                  "regular file", path);
		goto out;
	}
	ustar_entry(c->entry, relpath, &st);
	if (archive_write_header(c->u.a, c->entry) != ARCHIVE_OK ||
	    c->u.err.status != DS_OK) {
		if (c->u.err.status != DS_OK) {
			rc = c->u.err.status;
			if (err != NULL)
				*err = c->u.err;
			goto out;
		}
		rc = ds_error_set(err, c->u.err.status ? c->u.err.status : DS_EIO,
		                  "increment: %s: %s", relpath,
		                  archive_error_string(c->u.a));
		goto out;
	}
	/* exactly the size in the header, even if the file changes under
	 * us (it must not: we hold snapshot mode) */
	left = (uint64_t)st.st_size;
	while (left > 0) {
		size_t want = left < REPLICA_COPY_BUF ? (size_t)left :
		              REPLICA_COPY_BUF;
		ssize_t n = read(fd, c->copybuf, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = ds_error_sys(err, errno, "increment: read", path);
			goto out;
		}
		if (n == 0) {
			rc = ds_error_set(err, DS_EIO, "increment: %s shrank while "
			                  "it was being read", path);
			goto out;
		}
		if (archive_write_data(c->u.a, c->copybuf, (size_t)n) != n ||
		    c->u.err.status != DS_OK) {
			if (c->u.err.status != DS_OK) {
				rc = c->u.err.status;
				if (err != NULL)
					*err = c->u.err;
				goto out;
			}
			rc = ds_error_set(err, c->u.err.status ? c->u.err.status :
			                  DS_EIO, "increment: %s: %s", relpath,
			                  archive_error_string(c->u.a));
			goto out;
		}
		left -= (uint64_t)n;
	}
	c->members++;
out:
	close(fd);
	return rc;
}

static int
replica_walk_cb(const char *relpath, void *ctx, ds_error *err)
{
	return replica_tar_add(ctx, relpath, err);
}

/* ---- `replica init 0`: the whole storage ---- */

static int
replica_name_cmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* Add every file under HOME/A/<sub> whose path maps to a database name,
 * in sorted order. */
static int
replica_init_dir(struct replica_ctx *c, const char *sub, ds_error *err)
{
	struct dirent **ents = NULL;
	char dir[DS_PATH_MAX], rel[DS_PATH_MAX], name[DS_NAME_MAX];
	int n, rc = DS_OK, i;

	if ((rc = ds_path_join(dir, sizeof(dir), c->home, sub, err)) != DS_OK)
		return rc;
	n = scandir(dir, &ents, NULL, replica_name_cmp);
	if (n < 0)
		return ds_error_sys(err, errno, "increment: scandir", dir);
	for (i = 0; i < n; i++) {
		struct stat st;
		const char *d = ents[i]->d_name;
		char full[DS_PATH_MAX];

		if (strcmp(d, ".") == 0 || strcmp(d, "..") == 0)
			continue;
		if ((rc = ds_path_join(rel, sizeof(rel), sub, d, err)) != DS_OK ||
		    (rc = ds_path_join(full, sizeof(full), c->home, rel, err)) !=
		    DS_OK)
			goto out;
		if (lstat(full, &st) != 0) {
			rc = ds_error_sys(err, errno, "increment: stat", full);
			goto out;
		}
		if (S_ISDIR(st.st_mode)) {
			if ((rc = replica_init_dir(c, rel, err)) != DS_OK)
				goto out;
			continue;
		}
		if (ds_layout_leftover(rel, NULL) == DS_LEFTOVER)
			continue;
		if (!S_ISREG(st.st_mode) ||
		    ds_layout_path_to_name(c->layout, rel + 2, name, sizeof(name),
		                           NULL) != DS_OK) {
			replica_log(c, DS_LOG_WARN, "not sent: %s is not a "
			            "database file", rel);
			continue;
		}
		if ((rc = replica_tar_add(c, rel, err)) != DS_OK)
			goto out;
	}
out:
	for (i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
	return rc;
}

static int
replica_init_all(struct replica_ctx *c, ds_error *err)
{
	int rc;

	if ((rc = replica_tar_add(c, "config/settings", err)) != DS_OK ||
	    (rc = replica_tar_add(c, "config/identity", err)) != DS_OK)
		return rc;
	return replica_init_dir(c, "A", err);
}

/* ---- spooling and sending ---- */

/* desc (descsz bytes) receives how messages name the spool. */
static int
replica_spool_open(int *fd, char *desc, size_t descsz, ds_error *err)
{
	const char *tmp = getenv("TMPDIR");
	char path[DS_PATH_MAX];

	if (tmp == NULL || tmp[0] == '\0')
		tmp = "/tmp";
	/* O_TMPFILE: never visible, vanishes with us (no fsync needed: the
	 * spool only has to outlive this process). */
	*fd = open(tmp, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (*fd >= 0) {
		snprintf(desc, descsz, "increment spool (unnamed file in %s)",
		         tmp);
		return DS_OK;
	}
	if (snprintf(path, sizeof(path), "%s/ds-increment-XXXXXX", tmp) >=
	    (int)sizeof(path))
		return ds_error_set(err, DS_EINVAL, "spool: %s: too long", tmp);
	*fd = mkostemp(path, O_CLOEXEC);
	if (*fd < 0)
		return ds_error_sys(err, errno, "spool: create", path);
	snprintf(desc, descsz, "increment spool %s (unlinked)", path);
	unlink(path);
	return DS_OK;
}

/* ---- checks before snapshot mode ---- */

static int
replica_read_named(const char *home, ds_layout layout, const char *name,
                   size_t max, unsigned char **buf, size_t *len,
                   ds_error *err)
{
	char rel[DS_RELPATH_MAX], path[DS_PATH_MAX], a[DS_PATH_MAX];
	int rc;

	if ((rc = ds_layout_name_to_path(layout, name, rel, sizeof(rel),
	                                 err)) != DS_OK ||
	    (rc = ds_path_join(a, sizeof(a), home, "A", err)) != DS_OK ||
	    (rc = ds_path_join(path, sizeof(path), a, rel, err)) != DS_OK)
		return rc;
	return ds_file_read(path, max, buf, len, err);
}

/* The reference transaction: the replica's x.serial must name the same
 * transaction file here. With our `relink` extension, a file that differs
 * only in bytes 24..31 (the back pointer a pack rewrote) is accepted. */
static int
replica_check_reference(struct replica_ctx *c,
                        const struct protocol_request *req, ds_error *err)
{
	char name[DS_NAME_MAX];
	unsigned char *buf = NULL, md[16];
	size_t len = 0;
	int rc;

	if (req->tid != 0) {
		ds_name_transaction(req->tid, name);
		rc = replica_read_named(c->home, c->layout, name, 0, &buf, &len,
		                        NULL);
		if (rc != DS_OK)
			return ds_error_set(err, DS_EREFUSED,
			                    "reference transaction does not exist");
	}
	ds_md5(buf ? buf : (const unsigned char *)"", len, md);
	if (memcmp(md, req->md5, 16) == 0) {
		rc = DS_OK;
		goto out;
	}
	rc = ds_error_set(err, DS_EREFUSED, "reference transaction differs");
	if (req->relink == 0 || len < 32)
		goto out;
	if (req->relink < 0) {
		replica_log(c, DS_LOG_WARN, "ignoring a malformed relink line in "
		            "the request");
		goto out;
	}
	memset(buf + 24, 0, 8);
	ds_md5(buf, len, md);
	if (memcmp(md, req->relink_md5, 16) == 0) {
		replica_log(c, DS_LOG_VERBOSE, "reference transaction differs "
		            "only in its previous-transaction pointer (rewritten "
		            "by a pack; the replica's is %s): not divergence",
		            req->relink_prev);
		ds_error_clear(err);
		rc = DS_OK;
	}
out:
	free(buf);
	return rc;
}

/* The policy: is this request answered? The original's refusals, in its
 * order: not a storage, request line, identity, ids, packed since the
 * replica's tid, reference transaction missing or different. The request
 * is read from in_fd into *reqbuf (caller frees) and decoded into req;
 * c->layout is set. */
static int
replica_admit(struct replica_ctx *c, int in_fd, char **reqbuf,
              struct protocol_request *req, ds_error *err)
{
	char apath[DS_PATH_MAX];
	unsigned char *xbuf = NULL;
	size_t xlen;
	struct stat st;
	ds_config cfg;
	uint64_t packed = 0;
	int rc;

	if (ds_path_join(apath, sizeof(apath), c->home, "A", NULL) != DS_OK ||
	    stat(apath, &st) != 0 || !S_ISDIR(st.st_mode))
		return ds_error_set(err, DS_EREFUSED,
		                    "%s is not a DirectoryStorage directory.",
		                    c->home);
	if ((rc = protocol_request_read(in_fd, c->opts->request_timeout, reqbuf,
	                                err)) != DS_OK ||
	    (rc = protocol_request_decode(*reqbuf, req, err)) != DS_OK ||
	    (rc = ds_config_load(c->home, &cfg, err)) != DS_OK)
		return rc;
	c->layout = cfg.layout;
	if (req->init)
		return DS_OK;
	if (req->status) {
		/* ds status: the identity must match; the rest is status.c's */
		if (strcmp(req->identity, cfg.identity) != 0)
			return ds_error_set(err, DS_EREFUSED, "different "
			                    "identity");
		if (!req->ids_valid)
			return ds_error_set(err, DS_EPROTO, "malformed request: "
			                    "bad transaction id");
		return DS_OK;
	}
	if (strcmp(req->identity, cfg.identity) != 0)
		return ds_error_set(err, DS_EREFUSED, "different identity");
	if (!req->ids_valid)
		return ds_error_set(err, DS_EPROTO, "malformed request: bad "
		                    "transaction id or md5");
	for (size_t i = 0; i < req->nother; i++)
		replica_log(c, DS_LOG_DEBUG, "ignoring request line '%.60s'",
		            req->other[i]);
	rc = replica_read_named(c->home, c->layout, "x.packed", 64, &xbuf,
	                        &xlen, err);
	if (rc == DS_OK)
		rc = ds_xfile_decode(xbuf, xlen, "x.packed", &packed, err);
	free(xbuf);
	if (rc != DS_OK)
		return rc;
	if (packed > req->tid) {
		char d1[24], d2[24];
		ds_tid_format(packed, d1);
		ds_tid_format(req->tid, d2);
		return ds_error_set(err, DS_EREFUSED, "storage has been packed "
		                    "since the last replica ( %s > %s )", d1, d2);
	}
	return replica_check_reference(c, req, err);
}

/* Write the whole increment (or init answer) into the spool, end blocks
 * included, inside snapshot mode; the sender (already running) follows. */
static int
replica_write_increment(struct replica_ctx *c,
                        const struct protocol_request *req, ds_error *err)
{
	struct ds_changes_opts copts;
	struct ds_changes_info info;
	int rc;

	if (req->init) {
		rc = replica_init_all(c, err);
	} else {
		copts.log = c->opts->log;
		copts.log_ctx = c->opts->log_ctx;
		rc = ds_changes_walk(c->home, req->tid, &copts, replica_walk_cb,
		                     c, &info, err);
		if (rc == DS_EREFUSED && info.newest < req->tid) {
			char d1[24], d2[24];
			ds_tid_format(req->tid, d1);
			ds_tid_format(info.newest, d2);
			rc = ds_error_set(err, DS_EREFUSED, "the replica is newer "
			                  "than the master ( %s > %s )", d1, d2);
		}
	}
	if (rc == DS_OK && archive_write_close(c->u.a) != ARCHIVE_OK)
		rc = ds_error_set(err, DS_EIO, "increment: %s",
		                  archive_error_string(c->u.a));
	if (rc == DS_OK && c->u.err.status == DS_OK)
		replica_spool_flush(c, &c->u.err);
	if (rc == DS_OK && c->u.err.status != DS_OK) {
		rc = c->u.err.status;
		if (err != NULL)
			*err = c->u.err;
	}
	return rc;
}

/* Tell the replica how long snapshot mode was held, when it asked
 * (protocol.h: the tagged line on opts->report_fd). A failure to write
 * it is not the increment's: ignored. */
static void
replica_report(const struct replica_ctx *c, const struct protocol_request *req,
               double held)
{
	char line[64];
	size_t len, off = 0;

	if (!req->report_held || c->opts->report_fd <= 0)
		return;
	protocol_report_encode(held, line, sizeof(line));
	len = strlen(line);
	while (off < len) {
		ssize_t n = write(c->opts->report_fd, line + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		off += (size_t)n;
	}
}

/* Record the replica's slot (slot.c). A failure is not the increment's:
 * warned about (the slot keeps its older tid, which holds a pack back
 * further than needed, never less). */
static void
replica_note_slot(const struct replica_ctx *c,
                  const struct protocol_request *req)
{
	ds_error e;

	ds_error_clear(&e);
	if (ds_slot_record(c->home, req->slot, req->tid, 1, &e) != DS_OK)
		replica_log(c, DS_LOG_WARN, "replication slot not recorded: "
		            "%s", e.msg);
}

int
ds_replica_serve(const char *home, int in_fd, int out_fd,
                 const struct ds_replica_serve_opts *opts, ds_error *err)
{
	struct ds_replica_serve_opts defaults = {0};
	struct ds_snapshot_opts sopts = {0};
	struct protocol_request req;
	struct replica_ctx c;
	struct sender snd;
	ds_snapshot *snap = NULL;
	char *reqbuf = NULL;
	double t0, held = 0;
	int rc, sending = 0;

	if (opts == NULL)
		opts = &defaults;
	memset(&c, 0, sizeof(c));
	c.opts = opts;
	c.home = home;
	c.fd = -1;

	/* 1. the request, and the refusals */
	rc = replica_admit(&c, in_fd, &reqbuf, &req, err);
	if (rc != DS_OK)
		goto out;
	if (req.status) {
		rc = status_serve(home, c.layout, req.tid, opts, out_fd, err);
		goto out;
	}
	/* the request proved the replica holds req.tid: its slot */
	if (!req.init && req.slot != NULL)
		replica_note_slot(&c, &req);
	/* 2. snapshot mode, the spool, the sender */
	if (opts->snapshot != NULL)
		sopts = *opts->snapshot;
	sopts.log = opts->log;
	sopts.log_ctx = opts->log_ctx;
	if ((rc = ds_snapshot_acquire(home, &sopts, &snap, err)) != DS_OK)
		goto out;
	t0 = ds_now();
	if ((rc = replica_spool_open(&c.fd, c.spool, sizeof(c.spool), err)) !=
	    DS_OK ||
	    (rc = replica_tar_open(&c, err)) != DS_OK ||
	    (rc = sender_start(&snd, c.fd, out_fd, err)) != DS_OK)
		goto release;
	sending = 1;
	c.snd = &snd;
	/* 3. the increment into the spool; the sender may finish when it is
	 * all there, end blocks included; on a failure it stops where it
	 * is, short of the end-of-archive blocks */
	rc = replica_write_increment(&c, &req, err);
	sender_publish(&snd, c.flushed, rc == DS_OK, rc != DS_OK);
release:
	/* 4. release snapshot mode quickly: before the network transfer */
	held = ds_now() - t0;
	{
		ds_error e;
		ds_error_clear(&e);
		if (ds_snapshot_release(snap, &e) != DS_OK)
			replica_log(&c, DS_LOG_WARN, "%s", e.msg);
		snap = NULL;
	}
	if (rc == DS_OK) {
		replica_log(&c, DS_LOG_VERBOSE, "Transferring increment.... "
		            "(%lu files, %llu bytes; snapshot mode held %.3f s)",
		            c.members, (unsigned long long)c.u.written, held);
		replica_report(&c, &req, held);
	}
	/* 5. the sender sends the rest */
	if (sending) {
		int src = sender_join(&snd, rc == DS_OK ? err : NULL);

		c.snd = NULL;
		if (rc == DS_OK)
			rc = src;
	}
out:
	ustar_free(&c.u);
	archive_entry_free(c.entry);
	free(c.copybuf);
	free(c.wbuf);
	if (c.fd >= 0)
		close(c.fd);
	free(reqbuf);
	return rc;
}
