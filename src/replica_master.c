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

#define REPLICA_REQUEST_MAX (64 * 1024)
#define REPLICA_COPY_BUF (64 * 1024)

/* The sender thread: copies the spool to out_fd up to what the writer has
 * published (avail), until the writer says done (send the rest, then
 * stop) or abort (stop now). Everything below mu is shared. */
struct replica_sender {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int spool_fd;
	int out_fd;
	unsigned char *buf;         /* REPLICA_COPY_BUF */
	uint64_t avail;             /* spool bytes the writer has written */
	uint64_t sent;              /* bytes written to out_fd */
	int waiting, done, abort, failed;
	ds_error err;               /* the sender's failure */
};

/* One serve call: where the increment goes and how it is written. */
struct replica_ctx {
	const struct ds_replica_serve_opts *opts;
	const char *home;
	ds_layout layout;
	struct archive *a;
	struct archive_entry *entry;
	unsigned char *copybuf;
	unsigned long members;
	/* the header re-encoder */
	int fd;
	uint64_t pass;              /* data + padding bytes still to copy */
	unsigned char hdr[512];
	size_t hdr_fill;
	uint64_t written;
	unsigned char *wbuf;        /* REPLICA_COPY_BUF: spool writes are
	                             * gathered into whole buffers (one write
	                             * call per 64 KiB, not three per file:
	                             * fewer system calls in snapshot mode) */
	size_t wfill;
	uint64_t flushed;           /* bytes in the spool file */
	ds_error cb_err;            /* the first spool write error */
	char spool[PATH_MAX + 64];  /* names the spool in messages */
	struct replica_sender *snd; /* NULL until the sender runs */
};

static void replica_sender_publish(struct replica_sender *s, uint64_t avail,
                                   int done, int abort);
static int replica_sender_failed(struct replica_sender *s, ds_error *err);

/* ---- messages ---- */

static void
replica_log(const struct replica_ctx *c, int level, const char *fmt, ...)
	DS_PRINTF(3, 4);

static void
replica_log(const struct replica_ctx *c, int level, const char *fmt, ...)
{
	char msg[DS_ERROR_MSG_MAX];
	va_list ap;

	if (c->opts == NULL || c->opts->log == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->opts->log(level, msg, c->opts->log_ctx);
}

/* ---- the request ---- */

/* Read in_fd to EOF: at most REPLICA_REQUEST_MAX bytes, within timeout
 * seconds. *out is NUL terminated, caller frees. Errors: DS_EPROTO,
 * DS_EIO, DS_ENOMEM. */
static int
replica_read_request(int fd, unsigned timeout, char **out, ds_error *err)
{
	char *buf;
	size_t len = 0;
	double deadline = ds_now() + (timeout ? timeout : 300);
	int rc = DS_OK;

	*out = NULL;
	if ((buf = malloc(REPLICA_REQUEST_MAX + 1)) == NULL)
		return ds_error_set(err, DS_ENOMEM, "request: out of memory");
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		double left = deadline - ds_now();
		ssize_t n;
		int pr;

		if (left <= 0) {
			rc = ds_error_set(err, DS_EPROTO, "malformed request: not "
			                  "complete after %u seconds",
			                  timeout ? timeout : 300);
			goto out;
		}
		pr = poll(&p, 1, (int)(left * 1000) + 1);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0) {
			rc = ds_error_sys(err, errno, "poll", "request");
			goto out;
		}
		if (pr == 0)
			continue;
		n = read(fd, buf + len, REPLICA_REQUEST_MAX + 1 - len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0) {
			rc = ds_error_sys(err, errno, "read", "request");
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > REPLICA_REQUEST_MAX) {
			rc = ds_error_set(err, DS_EPROTO, "malformed request: more "
			                  "than %d bytes", REPLICA_REQUEST_MAX);
			goto out;
		}
	}
	buf[len] = '\0';
	if (memchr(buf, '\0', len) != NULL) {
		rc = ds_error_set(err, DS_EPROTO, "malformed request: holds a "
		                  "NUL byte");
		goto out;
	}
	*out = buf;
	buf = NULL;
out:
	free(buf);
	return rc;
}

/* Python's str.strip() in place. */
static char *
replica_strip(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\v' ||
	       *s == '\f')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
	                 e[-1] == '\v' || e[-1] == '\f'))
		*--e = '\0';
	return s;
}

/* Split the request into at most max stripped lines. */
static size_t
replica_lines(char *buf, char **lines, size_t max)
{
	size_t n = 0;
	char *p = buf;

	while (*p != '\0' && n < max) {
		char *nl = strchr(p, '\n');
		if (nl != NULL)
			*nl = '\0';
		lines[n++] = replica_strip(p);
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	return n;
}

/* ---- ustar writing: libarchive plus cpio's header encoding ---- */

static uint64_t
replica_octal(const unsigned char *f, size_t n)
{
	uint64_t v = 0;
	size_t i = 0;

	while (i < n && f[i] == ' ')
		i++;
	for (; i < n && f[i] >= '0' && f[i] <= '7'; i++)
		v = v * 8 + (uint64_t)(f[i] - '0');
	return v;
}

static int
replica_put_octal(unsigned char *f, size_t n, uint64_t v)
{
	char tmp[32];
	int k = snprintf(tmp, sizeof(tmp), "%0*llo", (int)(n - 1),
	                 (unsigned long long)v);

	if (k < 0 || (size_t)k != n - 1)
		return -1;      /* does not fit: cpio would refuse too */
	memcpy(f, tmp, n - 1);
	f[n - 1] = '\0';
	return 0;
}

/* Re-encode one libarchive ustar header the way GNU cpio writes it. */
static int
replica_recode(unsigned char h[512], uint64_t *size)
{
	static const struct { size_t off, len; } fields[] = {
		{100, 8}, {108, 8}, {116, 8}, {124, 12}, {136, 12},
		{329, 8}, {337, 8},
	};
	unsigned sum = 0;

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		uint64_t v = replica_octal(h + fields[i].off, fields[i].len);
		if (fields[i].off == 124)
			*size = v;
		if (replica_put_octal(h + fields[i].off, fields[i].len, v) != 0)
			return -1;
	}
	memset(h + 148, ' ', 8);
	for (int i = 0; i < 512; i++)
		sum += h[i];
	return replica_put_octal(h + 148, 8, sum);
}

/* Write the gathered bytes to the spool; the sender may send them. */
static int
replica_spool_flush(struct replica_ctx *c)
{
	if (c->wfill == 0)
		return DS_OK;
	if (ds_io_write_all(c->fd, c->wbuf, c->wfill, c->spool, &c->cb_err) !=
	    DS_OK)
		return c->cb_err.status;
	c->flushed += c->wfill;
	c->wfill = 0;
	if (c->snd != NULL)
		replica_sender_publish(c->snd, c->flushed, 0, 0);
	return DS_OK;
}

/* Append n bytes to the spool (through wbuf). */
static int
replica_spool_put(struct replica_ctx *c, const unsigned char *p, size_t n)
{
	while (n > 0) {
		size_t k = REPLICA_COPY_BUF - c->wfill;

		if (k > n)
			k = n;
		memcpy(c->wbuf + c->wfill, p, k);
		c->wfill += k;
		p += k;
		n -= k;
		if (c->wfill == REPLICA_COPY_BUF &&
		    replica_spool_flush(c) != DS_OK)
			return c->cb_err.status;
	}
	return DS_OK;
}

static la_ssize_t
replica_tar_write(struct archive *a, void *ctx, const void *buf, size_t len)
{
	struct replica_ctx *c = ctx;
	const unsigned char *p = buf;
	size_t n = len;

	/* after a spool error, swallow the rest (see fail below) */
	if (c->cb_err.status != DS_OK)
		return (la_ssize_t)len;
	while (n > 0) {
		if (c->pass > 0) {
			size_t k = c->pass < n ? (size_t)c->pass : n;
			if (replica_spool_put(c, p, k) != DS_OK)
				goto fail;
			c->pass -= k;
			c->written += k;
			p += k;
			n -= k;
			continue;
		}
		{
			size_t k = 512 - c->hdr_fill;
			static const unsigned char zero[512];
			uint64_t size = 0;

			if (k > n)
				k = n;
			memcpy(c->hdr + c->hdr_fill, p, k);
			c->hdr_fill += k;
			p += k;
			n -= k;
			if (c->hdr_fill < 512)
				continue;
			c->hdr_fill = 0;
			if (memcmp(c->hdr, zero, 512) != 0) {
				if (replica_recode(c->hdr, &size) != 0) {
					ds_error_set(&c->cb_err, DS_EIO, "increment: a "
					             "header field does not fit ustar");
					goto fail;
				}
				c->pass = (size + 511) / 512 * 512;
			}
			if (replica_spool_put(c, c->hdr, 512) != DS_OK)
				goto fail;
			c->written += 512;
		}
	}
	return (la_ssize_t)len;
fail:
	/* Not reported to libarchive: an archive in its FATAL state leaks
	 * its client buffer on free (libarchive 3.6). The error waits in
	 * cb_err, which every caller checks after each archive call. */
	(void)a;
	return (la_ssize_t)len;
}

static int
replica_tar_open(struct replica_ctx *c, ds_error *err)
{
	c->a = archive_write_new();
	c->entry = archive_entry_new();
	c->copybuf = malloc(REPLICA_COPY_BUF);
	c->wbuf = malloc(REPLICA_COPY_BUF);
	if (c->a == NULL || c->entry == NULL || c->copybuf == NULL ||
	    c->wbuf == NULL)
		return ds_error_set(err, DS_ENOMEM, "increment: out of memory");
	/* ustar; unblocked output, so the stream ends right after the two
	 * zero blocks as cpio's does (not padded to 10240). */
	if (archive_write_set_format_ustar(c->a) != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(c->a, 0) != ARCHIVE_OK ||
	    archive_write_open(c->a, c, NULL, replica_tar_write, NULL) !=
	    ARCHIVE_OK)
		return ds_error_set(err, DS_EIO, "increment: libarchive: %s",
		                    archive_error_string(c->a));
	return DS_OK;
}

/* Append HOME/relpath as member relpath: mode bits only, uid/gid 0,
 * root/root, the file's mtime, as cpio writes them. */
static int
replica_tar_add(struct replica_ctx *c, const char *relpath, ds_error *err)
{
	char path[PATH_MAX];
	struct stat st;
	uint64_t left;
	int fd = -1, rc;

	/* the replica went away: no point reading on */
	if (c->snd != NULL && (rc = replica_sender_failed(c->snd, err)) != DS_OK)
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
	archive_entry_clear(c->entry);
	archive_entry_set_pathname(c->entry, relpath);
	archive_entry_set_filetype(c->entry, AE_IFREG);
	archive_entry_set_perm(c->entry, st.st_mode & 07777);
	archive_entry_set_size(c->entry, st.st_size);
	archive_entry_set_mtime(c->entry, st.st_mtime, 0);
	archive_entry_set_uid(c->entry, 0);
	archive_entry_set_gid(c->entry, 0);
	archive_entry_set_uname(c->entry, "root");
	archive_entry_set_gname(c->entry, "root");
	if (archive_write_header(c->a, c->entry) != ARCHIVE_OK ||
	    c->cb_err.status != DS_OK) {
		if (c->cb_err.status != DS_OK) {
			rc = c->cb_err.status;
			if (err != NULL)
				*err = c->cb_err;
			goto out;
		}
		rc = ds_error_set(err, c->cb_err.status ? c->cb_err.status : DS_EIO,
		                  "increment: %s: %s", relpath,
		                  archive_error_string(c->a));
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
		if (archive_write_data(c->a, c->copybuf, (size_t)n) != n ||
		    c->cb_err.status != DS_OK) {
			if (c->cb_err.status != DS_OK) {
				rc = c->cb_err.status;
				if (err != NULL)
					*err = c->cb_err;
				goto out;
			}
			rc = ds_error_set(err, c->cb_err.status ? c->cb_err.status :
			                  DS_EIO, "increment: %s: %s", relpath,
			                  archive_error_string(c->a));
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

/* Is the last component "<something>-<digits>-deleted" (a pack's leftover)? */
static int
replica_is_leftover(const char *rel)
{
	const char *base = strrchr(rel, '/');
	size_t n;
	const char *p;

	base = base ? base + 1 : rel;
	n = strlen(base);
	if (n < 10 || strcmp(base + n - 8, "-deleted") != 0)
		return 0;
	p = base + n - 8;
	if (p == base || !(p[-1] >= '0' && p[-1] <= '9'))
		return 0;
	while (p > base && p[-1] >= '0' && p[-1] <= '9')
		p--;
	return p > base + 1 && p[-1] == '-';
}

/* Add every file under HOME/A/<sub> whose path maps to a database name,
 * in sorted order. */
static int
replica_init_dir(struct replica_ctx *c, const char *sub, ds_error *err)
{
	struct dirent **ents = NULL;
	char dir[PATH_MAX], rel[PATH_MAX], name[DS_NAME_MAX];
	int n, rc = DS_OK, i;

	if ((rc = ds_path_join(dir, sizeof(dir), c->home, sub, err)) != DS_OK)
		return rc;
	n = scandir(dir, &ents, NULL, replica_name_cmp);
	if (n < 0)
		return ds_error_sys(err, errno, "increment: scandir", dir);
	for (i = 0; i < n; i++) {
		struct stat st;
		const char *d = ents[i]->d_name;
		char full[PATH_MAX];

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
		if (replica_is_leftover(rel))
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
	char path[PATH_MAX];

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

/* The sender thread. It reads the spool with pread at its own offset and
 * never holds mu while reading or writing, so the writer (in snapshot
 * mode) never waits for the network. */
static void *
replica_sender_main(void *arg)
{
	struct replica_sender *s = arg;
	ds_error e;

	ds_error_clear(&e);
	for (;;) {
		uint64_t avail;
		size_t want;
		ssize_t n, off = 0;

		/* whole buffers until the end: as few (and as many, whatever
		 * the timing) system calls as sending the finished spool */
		pthread_mutex_lock(&s->mu);
		while (!s->abort && !s->done &&
		       s->avail - s->sent < REPLICA_COPY_BUF) {
			s->waiting = 1;
			pthread_cond_wait(&s->cv, &s->mu);
			s->waiting = 0;
		}
		avail = s->avail;
		if (s->abort || s->sent == avail) {
			/* aborted, or done and everything sent */
			pthread_mutex_unlock(&s->mu);
			return NULL;
		}
		pthread_mutex_unlock(&s->mu);
		want = avail - s->sent < REPLICA_COPY_BUF ?
		       (size_t)(avail - s->sent) : REPLICA_COPY_BUF;
		n = pread(s->spool_fd, s->buf, want, (off_t)s->sent);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ds_error_sys(&e, n < 0 ? errno : EIO, "spool: read",
			             "increment");
			goto failed;
		}
		while (off < n) {
			ssize_t w = write(s->out_fd, s->buf + off,
			                  (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				ds_error_sys(&e, errno, "send increment:",
				             "write");
				goto failed;
			}
			off += w;
		}
		pthread_mutex_lock(&s->mu);
		s->sent += (uint64_t)n;
		pthread_mutex_unlock(&s->mu);
	}
failed:
	pthread_mutex_lock(&s->mu);
	s->failed = 1;
	s->err = e;
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* The writer's side: avail bytes of the spool are written (the sender is
 * woken when it waits and a buffer's worth is there); done: that is all
 * of it; abort: stop sending. */
static void
replica_sender_publish(struct replica_sender *s, uint64_t avail, int done,
                       int abort)
{
	pthread_mutex_lock(&s->mu);
	s->avail = avail;
	s->done |= done;
	s->abort |= abort;
	if (s->waiting && (done || abort ||
	                   avail - s->sent >= REPLICA_COPY_BUF))
		pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* Has the sender failed? Its error into err. */
static int
replica_sender_failed(struct replica_sender *s, ds_error *err)
{
	int rc = DS_OK;

	pthread_mutex_lock(&s->mu);
	if (s->failed) {
		rc = s->err.status ? s->err.status : DS_EIO;
		if (err != NULL)
			*err = s->err;
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* Start the sender on spool_fd (empty so far) to out_fd. */
static int
replica_sender_start(struct replica_sender *s, int spool_fd, int out_fd,
                     ds_error *err)
{
	int e;

	memset(s, 0, sizeof(*s));
	s->spool_fd = spool_fd;
	s->out_fd = out_fd;
	s->buf = malloc(REPLICA_COPY_BUF);
	if (s->buf == NULL)
		return ds_error_set(err, DS_ENOMEM, "increment: out of memory");
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	e = pthread_create(&s->thread, NULL, replica_sender_main, s);
	if (e != 0) {
		pthread_cond_destroy(&s->cv);
		pthread_mutex_destroy(&s->mu);
		free(s->buf);
		s->buf = NULL;
		return ds_error_sys(err, e, "start the sender", "increment");
	}
	return DS_OK;
}

/* Wait for the sender to end (after done or abort) and free it; its
 * failure, if any, into err. */
static int
replica_sender_join(struct replica_sender *s, ds_error *err)
{
	int rc = DS_OK;

	pthread_join(s->thread, NULL);
	if (s->failed) {
		rc = s->err.status ? s->err.status : DS_EIO;
		if (err != NULL)
			*err = s->err;
	}
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s->buf);
	s->buf = NULL;
	return rc;
}

/* ---- checks before snapshot mode ---- */

static int
replica_read_named(const char *home, ds_layout layout, const char *name,
                   size_t max, unsigned char **buf, size_t *len,
                   ds_error *err)
{
	char rel[DS_RELPATH_MAX], path[PATH_MAX], a[PATH_MAX];
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
replica_check_reference(struct replica_ctx *c, ds_tid tid,
                        const unsigned char want[16], const char *relink,
                        ds_error *err)
{
	char name[DS_NAME_MAX];
	unsigned char *buf = NULL, md[16], rmd[16];
	size_t len = 0;
	int rc;

	if (tid != 0) {
		ds_name_transaction(tid, name);
		rc = replica_read_named(c->home, c->layout, name, 0, &buf, &len,
		                        NULL);
		if (rc != DS_OK)
			return ds_error_set(err, DS_EREFUSED,
			                    "reference transaction does not exist");
	}
	ds_md5(buf ? buf : (const unsigned char *)"", len, md);
	if (memcmp(md, want, 16) == 0) {
		rc = DS_OK;
		goto out;
	}
	rc = ds_error_set(err, DS_EREFUSED, "reference transaction differs");
	if (relink == NULL || len < 32)
		goto out;
	{
		char mdhex[64], prevhex[64], extra;
		if (sscanf(relink, "relink %63s %63s %c", mdhex, prevhex,
		           &extra) != 2 ||
		    ds_hex_decode(mdhex, rmd, 16) != DS_OK ||
		    strlen(prevhex) != 16) {
			replica_log(c, DS_LOG_WARN, "ignoring a malformed relink "
			            "line in the request");
			goto out;
		}
		memset(buf + 24, 0, 8);
		ds_md5(buf, len, md);
		if (memcmp(md, rmd, 16) == 0) {
			replica_log(c, DS_LOG_VERBOSE, "reference transaction "
			            "differs only in its previous-transaction "
			            "pointer (rewritten by a pack; the replica's is "
			            "%s): not divergence", prevhex);
			ds_error_clear(err);
			rc = DS_OK;
		}
	}
out:
	free(buf);
	return rc;
}

int
ds_replica_serve(const char *home, int in_fd, int out_fd,
                 const struct ds_replica_serve_opts *opts, ds_error *err)
{
	struct ds_replica_serve_opts defaults = {0};
	struct ds_snapshot_opts sopts = {0};
	struct replica_ctx c;
	struct ds_changes_opts copts;
	struct ds_changes_info info;
	struct replica_sender snd;
	ds_snapshot *snap = NULL;
	ds_config cfg;
	char *req = NULL, *lines[16], apath[PATH_MAX];
	const char *relink = NULL;
	unsigned char want[16], *xbuf = NULL;
	size_t nlines, xlen;
	struct stat st;
	ds_tid tid = 0;
	uint64_t packed = 0;
	double t0, held = 0;
	int rc, init = 0, sending = 0;

	if (opts == NULL)
		opts = &defaults;
	memset(&c, 0, sizeof(c));
	c.opts = opts;
	c.home = home;
	c.fd = -1;

	if (ds_path_join(apath, sizeof(apath), home, "A", NULL) != DS_OK ||
	    stat(apath, &st) != 0 || !S_ISDIR(st.st_mode))
		return ds_error_set(err, DS_EREFUSED,
		                    "%s is not a DirectoryStorage directory.", home);
	if ((rc = replica_read_request(in_fd, opts->request_timeout, &req,
	                               err)) != DS_OK)
		return rc;
	nlines = replica_lines(req, lines, sizeof(lines) / sizeof(lines[0]));
	if (nlines >= 1 && strcmp(lines[0], "replica init 0") == 0) {
		init = 1;
	} else if (nlines < 1 || strcmp(lines[0], "replica request 0") != 0) {
		rc = ds_error_set(err, DS_EPROTO, "malformed request: the first "
		                  "line is not 'replica request 0'");
		goto out;
	} else if (nlines < 4) {
		rc = ds_error_set(err, DS_EPROTO, "malformed request: %zu lines, "
		                  "4 expected", nlines);
		goto out;
	}
	if ((rc = ds_config_load(home, &cfg, err)) != DS_OK)
		goto out;
	c.layout = cfg.layout;
	if (!init) {
		if (strcmp(lines[1], cfg.identity) != 0) {
			rc = ds_error_set(err, DS_EREFUSED, "different identity");
			goto out;
		}
		if (ds_id_parse(lines[2], &tid) != DS_OK ||
		    ds_hex_decode(lines[3], want, 16) != DS_OK) {
			rc = ds_error_set(err, DS_EPROTO, "malformed request: bad "
			                  "transaction id or md5");
			goto out;
		}
		for (size_t i = 4; i < nlines; i++) {
			if (strncmp(lines[i], "relink ", 7) == 0)
				relink = lines[i];
			else if (lines[i][0] != '\0')
				replica_log(&c, DS_LOG_DEBUG, "ignoring request "
				            "line '%.60s'", lines[i]);
		}
		rc = replica_read_named(home, c.layout, "x.packed", 64, &xbuf,
		                        &xlen, err);
		if (rc == DS_OK)
			rc = ds_xfile_decode(xbuf, xlen, "x.packed", &packed, err);
		if (rc != DS_OK)
			goto out;
		if (packed > tid) {
			char d1[24], d2[24];
			ds_tid_format(packed, d1);
			ds_tid_format(tid, d2);
			rc = ds_error_set(err, DS_EREFUSED, "storage has been packed "
			                  "since the last replica ( %s > %s )", d1, d2);
			goto out;
		}
		if ((rc = replica_check_reference(&c, tid, want, relink, err)) !=
		    DS_OK)
			goto out;
	}

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
	    (rc = replica_sender_start(&snd, c.fd, out_fd, err)) != DS_OK)
		goto release;
	sending = 1;
	c.snd = &snd;
	if (init) {
		rc = replica_init_all(&c, err);
	} else {
		copts.log = opts->log;
		copts.log_ctx = opts->log_ctx;
		rc = ds_changes_walk(home, tid, &copts, replica_walk_cb, &c, &info,
		                     err);
		if (rc == DS_EREFUSED && info.newest < tid) {
			char d1[24], d2[24];
			ds_tid_format(tid, d1);
			ds_tid_format(info.newest, d2);
			rc = ds_error_set(err, DS_EREFUSED, "the replica is newer "
			                  "than the master ( %s > %s )", d1, d2);
		}
	}
	if (rc == DS_OK && archive_write_close(c.a) != ARCHIVE_OK)
		rc = ds_error_set(err, DS_EIO, "increment: %s",
		                  archive_error_string(c.a));
	if (rc == DS_OK && c.cb_err.status == DS_OK)
		replica_spool_flush(&c);
	if (rc == DS_OK && c.cb_err.status != DS_OK) {
		rc = c.cb_err.status;
		if (err != NULL)
			*err = c.cb_err;
	}
	/* the whole archive, end blocks included, is in the spool: the
	 * sender may finish; on a failure it stops where it is, short of
	 * the end-of-archive blocks */
	if (sending)
		replica_sender_publish(&snd, c.flushed, rc == DS_OK, rc != DS_OK);
release:
	held = ds_now() - t0;
	{
		ds_error e;
		ds_error_clear(&e);
		/* release quickly: before the network transfer */
		if (ds_snapshot_release(snap, &e) != DS_OK)
			replica_log(&c, DS_LOG_WARN, "%s", e.msg);
		snap = NULL;
	}
	if (rc == DS_OK)
		replica_log(&c, DS_LOG_VERBOSE, "Transferring increment.... "
		            "(%lu files, %llu bytes; snapshot mode held %.3f s)",
		            c.members, (unsigned long long)c.written, held);
	if (sending) {
		int src = replica_sender_join(&snd, rc == DS_OK ? err : NULL);

		c.snd = NULL;
		if (rc == DS_OK)
			rc = src;
	}
out:
	if (c.a != NULL)
		archive_write_free(c.a);
	archive_entry_free(c.entry);
	free(c.copybuf);
	free(c.wbuf);
	if (c.fd >= 0)
		close(c.fd);
	free(xbuf);
	free(req);
	return rc;
}
