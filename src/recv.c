/*
 * recv.c - the replica side's checker of a replication increment: the
 * ustar stream coming from the master, read with libarchive.
 *
 * recv_stream() reads the stream, copies every byte to the spool file, and
 * checks everything before the caller makes it the commit point: plain
 * ustar, regular files only, names that map through the master's layout
 * to database names, record lengths and md5s, the exact order and
 * completeness of the original master's stream (x.serial, x.oid, then each
 * transaction newest first with the .c pointer of each oid the first time
 * it is seen and its revision, chaining back to the replica's tid), and
 * nothing after the end but zero bytes. Memory is bounded by the largest
 * transaction file: revisions are checked while they stream past. The
 * rules for one header and one member name (recv_check_header,
 * recv_map_name) are applied again by the apply (apply.c).
 *
 * The master's layout is not told: it is read from the member paths.
 * x.serial comes first, at A/x.serial (flat) or A/x/serial (bushy, chunky
 * and lawn alike), so every member is mapped under each layout still
 * possible; a layout that cannot map a member is dropped, and the layouts
 * left must agree on the name (paths of different layouts never collide
 * for o and t files, so the first transaction settles it).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>

#include "keyset.h"
#include "recv.h"

#define RECV_BUF (64 * 1024)
#define RECV_TXN_MAX (64u * 1024 * 1024)     /* largest t file accepted */
#define RECV_CONFIG_MAX (1024 * 1024)        /* config/settings */
#define RECV_IDENTITY_MAX 4096
#define RECV_TRAILER_MAX (1024 * 1024)       /* zeros after the end */

/* ---- member names ---- */

/* Check a member path for the things that are refused whatever the
 * layout: absolute, "..", ".", empty components. */
static int
recv_path_sane(const char *path, const char **why)
{
	const char *p = path;

	if (*p == '\0') {
		*why = "empty name";
		return 0;
	}
	if (*p == '/') {
		*why = "absolute path";
		return 0;
	}
	while (*p) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if (n == 0) {
			*why = "empty path component";
			return 0;
		}
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			*why = "'..' in path";
			return 0;
		}
		if (n == 1 && p[0] == '.') {
			*why = "'.' in path";
			return 0;
		}
		p += n;
		if (*p == '/')
			p++;
	}
	return 1;
}

/* Map rel (relative to A/) to a database name under every layout still in
 * *cand; keep those that can. Errors: DS_EPROTO. */
int
recv_map_name(unsigned *cand, const char *rel, char name[DS_NAME_MAX],
                 const char *what, ds_error *err)
{
	unsigned ok = 0;
	char got[DS_NAME_MAX];
	int have = 0;

	for (int l = 0; l < 4; l++) {
		if (!(*cand & (1u << l)))
			continue;
		if (ds_layout_path_to_name((ds_layout)l, rel, got, sizeof(got),
		                           NULL) != DS_OK)
			continue;
		if (have && strcmp(got, name) != 0)
			return ds_error_set(err, DS_EPROTO,
			                    "%s: A/%s names different files in "
			                    "different layouts", what, rel);
		memcpy(name, got, DS_NAME_MAX);
		have = 1;
		ok |= 1u << l;
	}
	if (!have)
		return ds_error_set(err, DS_EPROTO,
		                    "%s: A/%s is not a database file in the "
		                    "master's layout", what, rel);
	*cand = ok;
	return DS_OK;
}

int
recv_first_layout(unsigned cand)
{
	for (int l = 0; l < 4; l++)
		if (cand & (1u << l))
			return l;
	return 0;
}

/* Checks of one header that do not depend on the state: ustar, a
 * regular file without links, sane mode and size, a sane path. */
int
recv_check_header(struct archive *a, struct archive_entry *e,
                     const char *what, ds_error *err)
{
	const char *path = archive_entry_pathname(e);
	const char *why;
	mode_t type = archive_entry_filetype(e);

	if (archive_format(a) != ARCHIVE_FORMAT_TAR_USTAR)
		return ds_error_set(err, DS_EPROTO,
		                    "%s: not a plain ustar header (%s)", what,
		                    archive_format_name(a));
	if (path == NULL)
		return ds_error_set(err, DS_EPROTO, "%s: no name", what);
	if (!recv_path_sane(path, &why))
		return ds_error_set(err, DS_EPROTO, "%s: %s: %s", what, path,
		                    why);
	if (archive_entry_hardlink(e) != NULL)
		return ds_error_set(err, DS_EPROTO, "%s: %s is a hard link",
		                    what, path);
	if (type == AE_IFLNK)
		return ds_error_set(err, DS_EPROTO, "%s: %s is a symbolic link",
		                    what, path);
	if (type == AE_IFDIR)
		return ds_error_set(err, DS_EPROTO, "%s: %s is a directory "
		                    "entry", what, path);
	if (type != AE_IFREG)
		return ds_error_set(err, DS_EPROTO, "%s: %s is not a regular "
		                    "file (device, fifo or socket)", what, path);
	if (archive_entry_perm(e) & 07000)
		return ds_error_set(err, DS_EPROTO, "%s: %s has mode %04o "
		                    "(setuid, setgid or sticky)", what, path,
		                    (unsigned)archive_entry_perm(e));
	if (!archive_entry_size_is_set(e) || archive_entry_size(e) < 0)
		return ds_error_set(err, DS_EPROTO, "%s: %s has no size", what,
		                    path);
	return DS_OK;
}

/* ---- receiving ---- */

enum {
	ST_XSERIAL, ST_XOID, ST_TXN, ST_POINTER, ST_REVISION, ST_END,
	ST_INIT_SETTINGS, ST_INIT_IDENTITY, ST_INIT_A
};

struct recv {
	struct archive *a;
	const struct recv_expect *exp;
	struct recv_summary *sum;
	recv_read_fn rd;
	void *rctx;
	int spool_fd;
	const char *spool_path;
	unsigned char *buf;      /* RECV_BUF: raw stream */
	unsigned char *data;     /* RECV_BUF: member data */
	uint64_t total;          /* raw bytes read */
	uint64_t end;            /* end of the last member's data */
	int eof;
	int failed;              /* 1: rd failed; 2: spool write failed;
	                          * 3: longer than exp->max_bytes */
	ds_error cb_err;
	/* the state machine */
	int state;
	unsigned cand;           /* layouts still possible */
	ds_tid next;             /* tid of the next transaction expected */
	ds_tid cur;              /* transaction being received */
	unsigned char *txn;      /* its file */
	ds_txnrec rec;
	size_t oid_i;
	struct keyset_ids seen;       /* increments: oids seen; init: the
	                          * transactions sent */
	/* init */
	struct keyset_ids ptrs;       /* the .c pointers sent (their oids) */
	struct keyset_pairs sent;     /* the revisions sent (oid, serial) */
	struct keyset_pairs revs;     /* revisions the .c pointers name */
	int have_serial, have_oid, have_packed;
	ds_tid init_serial;
	ds_oid max_oid;          /* init: highest oid with a .c pointer */
	int md5_required;        /* refuse files without an md5 */
	char what[160];
};

/* Fill r->buf (to the end of the stream at most), copy it to the spool.
 * Whole buffers, however the pipe delivers the stream: one spool write
 * per RECV_BUF, and a number of durable I/O calls that depends on the
 * stream's length only (the crash tests count them). */
static ssize_t
recv_pull(struct recv *r)
{
	ssize_t n = 0;

	while (!r->eof && n < RECV_BUF) {
		ssize_t got = r->rd(r->rctx, r->buf + n, RECV_BUF - (size_t)n,
		                    &r->cb_err);
		if (got < 0) {
			r->failed = 1;
			return -1;
		}
		if (got == 0)
			r->eof = 1;
		n += got;
	}
	if (n == 0)
		return 0;
	if (ds_io_write_all(r->spool_fd, r->buf, (size_t)n, r->spool_path,
	                    &r->cb_err) != DS_OK) {
		r->failed = 2;
		return -1;
	}
	r->total += (uint64_t)n;
	/* checked as the bytes arrive: the spool never outgrows the limit
	 * by more than one buffer, however long the master goes on */
	if (r->exp->max_bytes != 0 && r->total > r->exp->max_bytes) {
		r->failed = 3;
		if (r->exp->max_auto) {
			ds_error_set(&r->cb_err, DS_EIO, "increment refused "
			             "after %llu bytes: it would not fit on the "
			             "replica's filesystem (%llu bytes free; the "
			             "spool and its extraction need twice the "
			             "increment, and 1%% is kept free); make room "
			             "or set a limit with --max-size",
			             (unsigned long long)r->total,
			             (unsigned long long)r->exp->fs_avail);
			r->cb_err.sys_errno = ENOSPC;
		} else {
			ds_error_set(&r->cb_err, DS_EPROTO, "increment refused "
			             "after %llu bytes: larger than --max-size "
			             "%llu", (unsigned long long)r->total,
			             (unsigned long long)r->exp->max_bytes);
		}
		return -1;
	}
	if (r->exp->progress)
		r->exp->progress(r->total, r->exp->progress_ctx);
	return n;
}

static la_ssize_t
recv_cb(struct archive *a, void *cd, const void **out)
{
	struct recv *r = cd;
	ssize_t n = recv_pull(r);

	if (n < 0) {
		archive_set_error(a, EIO, "%s", r->cb_err.msg);
		return -1;
	}
	*out = r->buf;
	return n;
}

/* Read exactly len bytes of the current member's data. */
static int
recv_data(struct recv *r, void *buf, size_t len, ds_error *err)
{
	unsigned char *p = buf;

	while (len > 0) {
		la_ssize_t n = archive_read_data(r->a, p, len);
		if (n < 0 || (n == 0 && len > 0)) {
			if (r->failed)
				goto failed;
			return ds_error_set(err, DS_EPROTO,
			                    "%s: truncated data (%s)", r->what,
			                    archive_error_string(r->a) ?
			                    archive_error_string(r->a) :
			                    "end of stream");
		}
		p += n;
		len -= (size_t)n;
	}
	return DS_OK;
failed:
	if (err)
		*err = r->cb_err;
	return r->cb_err.status ? r->cb_err.status : DS_EIO;
}

static int
recv_small(struct recv *r, int64_t size, size_t want_min, size_t want_max,
           unsigned char **out, ds_error *err)
{
	int rc;

	*out = NULL;
	if (size < (int64_t)want_min || size > (int64_t)want_max)
		return ds_error_set(err, DS_EPROTO,
		                    "%s: size %lld out of bounds (%zu..%zu)",
		                    r->what, (long long)size, want_min, want_max);
	*out = malloc((size_t)size + 1);
	if (*out == NULL)
		return ds_error_set(err, DS_ENOMEM, "%s: out of memory",
		                    r->what);
	rc = recv_data(r, *out, (size_t)size, err);
	if (rc != DS_OK) {
		free(*out);
		*out = NULL;
		return rc;
	}
	(*out)[size] = '\0';
	return DS_OK;
}

/* An 8-byte x.* file. */
static int
recv_xfile(struct recv *r, int64_t size, uint64_t *v, ds_error *err)
{
	unsigned char *b;
	int rc;

	rc = recv_small(r, size, 8, 8, &b, err);
	if (rc != DS_OK)
		return rc;
	*v = ds_get_u64(b);
	free(b);
	return DS_OK;
}

/* A `.c` pointer; its serial into *serial. */
static int
recv_pointer(struct recv *r, int64_t size, ds_tid *serial, ds_error *err)
{
	unsigned char *b;
	ds_error e;
	int rc;

	rc = recv_small(r, size, 8, 12, &b, err);
	if (rc != DS_OK)
		return rc;
	if (ds_pointer_decode(b, (size_t)size, r->what, serial, &e) != DS_OK)
		rc = ds_error_set(err, DS_EPROTO, "%s", e.msg);
	free(b);
	return rc;
}

/* A transaction file, kept in r->txn and decoded into r->rec. */
static int
recv_txn(struct recv *r, int64_t size, ds_tid tid, ds_error *err)
{
	ds_error e;
	int rc;

	free(r->txn);
	r->txn = NULL;
	rc = recv_small(r, size, DS_TXN_HEADER, RECV_TXN_MAX, &r->txn, err);
	if (rc != DS_OK)
		return rc;
	if (ds_txnrec_decode(r->txn, (size_t)size, r->what, &r->rec, &e) !=
	    DS_OK)
		return ds_error_set(err, DS_EPROTO, "%s", e.msg);
	if (r->rec.tid != tid)
		return ds_error_set(err, DS_EPROTO,
		                    "%s: holds tid %016llX, its name says "
		                    "%016llX", r->what,
		                    (unsigned long long)r->rec.tid,
		                    (unsigned long long)tid);
	if (!r->rec.md5_present) {
		if (r->md5_required)
			return ds_error_set(err, DS_EPROTO,
			                    "%s: no md5, but the storage's "
			                    "[md5policy] write says every file "
			                    "has one", r->what);
		r->sum->transactions_no_md5++;
	}
	r->sum->transactions++;
	return DS_OK;
}

/* An object revision of oid written by serial, checked while it streams:
 * header fields, length, md5 of bytes 56..end. */
static int
recv_revision(struct recv *r, int64_t size, ds_oid oid, ds_tid serial,
              ds_error *err)
{
	static const unsigned char zero[16];
	unsigned char hdr[DS_OBJ_HEADER], md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = NULL;
	int64_t left;
	int rc;

	if (size < DS_OBJ_HEADER || size > 0xFFFFFFFFll)
		return ds_error_set(err, DS_EPROTO,
		                    "%s: size %lld is not that of an object "
		                    "revision", r->what, (long long)size);
	rc = recv_data(r, hdr, sizeof(hdr), err);
	if (rc != DS_OK)
		return rc;
	if (ds_get_u32(hdr) != DS_OBJ_MAGIC)
		return ds_error_set(err, DS_EPROTO, "%s: bad magic number",
		                    r->what);
	if (ds_get_u32(hdr + 4) != (uint64_t)size)
		return ds_error_set(err, DS_EPROTO,
		                    "%s: length field %u but %lld bytes sent",
		                    r->what, ds_get_u32(hdr + 4),
		                    (long long)size);
	if (ds_get_u64(hdr + 8) != oid || ds_get_u64(hdr + 64) != serial)
		return ds_error_set(err, DS_EPROTO,
		                    "%s: holds oid %016llX serial %016llX, its "
		                    "name says %016llX %016llX", r->what,
		                    (unsigned long long)ds_get_u64(hdr + 8),
		                    (unsigned long long)ds_get_u64(hdr + 64),
		                    (unsigned long long)oid,
		                    (unsigned long long)serial);
	if (memcmp(hdr + 24, zero, 16) != 0)
		return ds_error_set(err, DS_EPROTO,
		                    "%s: reserved bytes 24..39 are not zero",
		                    r->what);
	/* The md5 covers bytes 56.., not the undo source (16..23): at least
	 * hold it to what ds check requires, an earlier revision or none. */
	if (ds_get_u64(hdr + 16) >= serial)
		return ds_error_set(err, DS_EPROTO,
		                    "%s: undo source %016llX is not earlier than "
		                    "the revision", r->what,
		                    (unsigned long long)ds_get_u64(hdr + 16));
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_md5(), NULL) != 1) {
		rc = ds_error_set(err, DS_ENOMEM, "%s: md5: out of memory",
		                  r->what);
		goto out;
	}
	EVP_DigestUpdate(ctx, hdr + 56, DS_OBJ_HEADER - 56);
	left = size - DS_OBJ_HEADER;
	while (left > 0) {
		size_t n = left > RECV_BUF ? RECV_BUF : (size_t)left;
		rc = recv_data(r, r->data, n, err);
		if (rc != DS_OK)
			goto out;
		EVP_DigestUpdate(ctx, r->data, n);
		left -= (int64_t)n;
	}
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	if (memcmp(hdr + 40, zero, 16) == 0) {
		/* a zeroed md5 field hides any change to the pickle: only
		 * a storage that does not promise md5s may send one */
		if (r->md5_required) {
			rc = ds_error_set(err, DS_EPROTO, "%s: no md5, but the "
			                  "storage's [md5policy] write says every "
			                  "file has one", r->what);
			goto out;
		}
		r->sum->revisions_no_md5++;
	} else if (memcmp(hdr + 40, md, 16) != 0) {
		rc = ds_error_set(err, DS_EPROTO, "%s: md5 mismatch", r->what);
		goto out;
	}
	r->sum->revisions++;
	rc = DS_OK;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* After a transaction's member or one of its objects: what comes next. */
static int
recv_advance(struct recv *r, ds_error *err)
{
	int added, rc;

	if (r->oid_i < r->rec.noids) {
		rc = keyset_id_add(&r->seen, ds_get_u64(r->rec.oids + 8 * r->oid_i),
		               &added, err);
		if (rc != DS_OK)
			return rc;
		r->state = added ? ST_POINTER : ST_REVISION;
		return DS_OK;
	}
	r->state = r->next == r->exp->base_tid ? ST_END : ST_TXN;
	return DS_OK;
}

static void
recv_expected(const struct recv *r, char out[DS_NAME_MAX])
{
	ds_oid oid = 0;

	if (r->state == ST_POINTER || r->state == ST_REVISION)
		oid = ds_get_u64(r->rec.oids + 8 * r->oid_i);
	switch (r->state) {
	case ST_XSERIAL:
		snprintf(out, DS_NAME_MAX, "x.serial");
		break;
	case ST_XOID:
		snprintf(out, DS_NAME_MAX, "x.oid");
		break;
	case ST_TXN:
		ds_name_transaction(r->next, out);
		break;
	case ST_POINTER:
		ds_name_pointer(oid, out);
		break;
	case ST_REVISION:
		ds_name_revision(oid, r->cur, out);
		break;
	case ST_INIT_SETTINGS:
		snprintf(out, DS_NAME_MAX, "config/settings");
		break;
	case ST_INIT_IDENTITY:
		snprintf(out, DS_NAME_MAX, "config/identity");
		break;
	default:
		out[0] = '\0';
	}
}

/* One member of an increment. */
static int
recv_increment_member(struct recv *r, const char *path, int64_t size,
                      ds_error *err)
{
	char name[DS_NAME_MAX], want[DS_NAME_MAX];
	ds_tid serial;
	ds_oid oid;
	uint64_t v;
	int rc;

	if (strncmp(path, "A/", 2) != 0)
		return ds_error_set(err, DS_EPROTO, "%s: not under A/",
		                    r->what);
	if (r->state == ST_END)
		return ds_error_set(err, DS_EPROTO,
		                    "%s: more members after the increment's "
		                    "last transaction", r->what);
	rc = recv_map_name(&r->cand, path + 2, name, r->what, err);
	if (rc != DS_OK)
		return rc;
	recv_expected(r, want);
	if (strcmp(name, want) != 0)
		return ds_error_set(err, DS_EPROTO,
		                    "%s: is %s where the increment must have %s",
		                    r->what, name, want);
	switch (r->state) {
	case ST_XSERIAL:
		rc = recv_xfile(r, size, &v, err);
		if (rc != DS_OK)
			return rc;
		if (v < r->exp->base_tid)
			return ds_error_set(err, DS_EREFUSED,
			                    "the replica is newer than the master "
			                    "(%016llX > %016llX)",
			                    (unsigned long long)r->exp->base_tid,
			                    (unsigned long long)v);
		r->sum->new_tid = r->next = v;
		r->state = ST_XOID;
		return DS_OK;
	case ST_XOID:
		rc = recv_xfile(r, size, &v, err);
		if (rc != DS_OK)
			return rc;
		/* oids only grow: a lower x.oid is not the storage this
		 * replica was copied from, or one that lost oids; the
		 * replica would hand out oids already in use */
		if (v < r->exp->base_oid)
			return ds_error_set(err, DS_EREFUSED,
			                    "increment refused: the master's "
			                    "x.oid %016llX is lower than the "
			                    "replica's %016llX (oids already "
			                    "allocated on the replica, or a master "
			                    "that lost oids)",
			                    (unsigned long long)v,
			                    (unsigned long long)r->exp->base_oid);
		r->sum->new_oid = v;
		r->sum->have_oid = 1;
		r->state = r->next == r->exp->base_tid ? ST_END : ST_TXN;
		return DS_OK;
	case ST_TXN:
		rc = recv_txn(r, size, r->next, err);
		if (rc != DS_OK)
			return rc;
		r->cur = r->next;
		r->sum->first_tid = r->cur;   /* newest first: the last is oldest */
		if (r->rec.prev_tid >= r->cur)
			return ds_error_set(err, DS_EPROTO,
			                    "%s: previous transaction %016llX is "
			                    "not older", r->what,
			                    (unsigned long long)r->rec.prev_tid);
		if (r->rec.prev_tid < r->exp->base_tid)
			return ds_error_set(err, DS_EPROTO,
			                    "%s: the transactions do not chain "
			                    "back to the replica's %016llX (this "
			                    "one points to %016llX)", r->what,
			                    (unsigned long long)r->exp->base_tid,
			                    (unsigned long long)r->rec.prev_tid);
		r->next = r->rec.prev_tid;
		r->oid_i = 0;
		/* as ds check: new oids come from x.oid, none is above it */
		for (size_t i = 0; i < r->rec.noids; i++) {
			ds_oid o = ds_get_u64(r->rec.oids + 8 * i);

			if (o > r->sum->new_oid)
				return ds_error_set(err, DS_EPROTO,
				                    "%s: object id %016llX is "
				                    "higher than the x.oid sent "
				                    "%016llX", r->what,
				                    (unsigned long long)o,
				                    (unsigned long long)
				                    r->sum->new_oid);
		}
		return recv_advance(r, err);
	case ST_POINTER:
		rc = recv_pointer(r, size, &serial, err);
		if (rc != DS_OK)
			return rc;
		if (serial != r->cur)
			return ds_error_set(err, DS_EPROTO,
			                    "%s: names serial %016llX, not its "
			                    "newest transaction %016llX", r->what,
			                    (unsigned long long)serial,
			                    (unsigned long long)r->cur);
		r->state = ST_REVISION;
		return DS_OK;
	case ST_REVISION:
		oid = ds_get_u64(r->rec.oids + 8 * r->oid_i);
		rc = recv_revision(r, size, oid, r->cur, err);
		if (rc != DS_OK)
			return rc;
		r->oid_i++;
		return recv_advance(r, err);
	default:
		return ds_error_set(err, DS_EPROTO, "%s: unexpected", r->what);
	}
}

/* One member of an init answer. */
static int
recv_init_member(struct recv *r, const char *path, int64_t size,
                 ds_error *err)
{
	char name[DS_NAME_MAX];
	unsigned char *b = NULL;
	ds_settings *st = NULL;
	ds_error e;
	ds_tid serial = 0, tid = 0;
	ds_oid oid = 0;
	uint64_t v;
	int rc, added;

	if (r->state == ST_INIT_SETTINGS || r->state == ST_INIT_IDENTITY) {
		const char *want = r->state == ST_INIT_SETTINGS ?
		                   "config/settings" : "config/identity";
		const char *fmt, *ver, *cls;
		long md5w = 1;

		if (strcmp(path, want) != 0)
			return ds_error_set(err, DS_EPROTO, "%s: expected %s",
			                    r->what, want);
		rc = recv_small(r, size, 1, r->state == ST_INIT_SETTINGS ?
		                RECV_CONFIG_MAX : RECV_IDENTITY_MAX, &b,
		                err);
		if (rc != DS_OK)
			return rc;
		if (r->state == ST_INIT_IDENTITY) {
			size_t n = strcspn((char *)b, "\r\n");
			unsigned char id[16];

			if (n != 32 || ds_hex_decode((char *)b, id, 16) != DS_OK)
				rc = ds_error_set(err, DS_EPROTO,
				                  "%s: not 32 hex digits", r->what);
			else
				snprintf(r->sum->identity, sizeof(r->sum->identity),
				         "%.32s", (char *)b);
			free(b);
			r->state = ST_INIT_A;
			return rc;
		}
		rc = ds_settings_parse((char *)b, (size_t)size, "config/settings",
		                       &st, &e);
		free(b);
		if (rc != DS_OK)
			return ds_error_set(err, DS_EPROTO, "%s: %s", r->what,
			                    e.msg);
		fmt = ds_settings_get(st, "structure", "format");
		ver = ds_settings_get(st, "structure", "version");
		cls = ds_settings_get(st, "storage", "classname");
		/* the new replica's own policy (absent means 1, as the
		 * engine reads it): what it promises, the files it
		 * receives must keep */
		if (ds_settings_get_int(st, "md5policy", "write", 1, &md5w,
		                        &e) != DS_OK)
			rc = ds_error_set(err, DS_EPROTO, "%s: %s", r->what,
			                  e.msg);
		else if (ver == NULL || strcmp(ver, "0.11") != 0)
			rc = ds_error_set(err, DS_EPROTO, "%s: [structure] "
			                  "version is not 0.11", r->what);
		else if (cls == NULL || strcmp(cls, "Full") != 0)
			rc = ds_error_set(err, DS_EPROTO, "%s: the master is "
			                  "not a Full storage", r->what);
		else if (fmt == NULL ||
		         ds_layout_parse(fmt, &r->sum->layout, &e) != DS_OK)
			rc = ds_error_set(err, DS_EPROTO, "%s: no usable "
			                  "[structure] format", r->what);
		ds_settings_free(st);
		if (rc != DS_OK)
			return rc;
		r->md5_required = md5w != 0;
		r->sum->layout_known = 1;
		r->cand = 1u << r->sum->layout;
		r->state = ST_INIT_IDENTITY;
		return DS_OK;
	}
	if (strncmp(path, "A/", 2) != 0)
		return ds_error_set(err, DS_EPROTO, "%s: not under A/",
		                    r->what);
	rc = recv_map_name(&r->cand, path + 2, name, r->what, err);
	if (rc != DS_OK)
		return rc;
	/* sent twice? (each kind of name has its own set) */
	if (name[0] == 'x') {
		int *have = strcmp(name, "x.serial") == 0 ? &r->have_serial :
		            strcmp(name, "x.oid") == 0 ? &r->have_oid :
		            &r->have_packed;

		added = !*have;
		rc = DS_OK;
	} else if (name[0] == 't') {
		char hex[17];

		snprintf(hex, sizeof(hex), "%.6s%.10s", name + 1, name + 8);
		ds_id_parse(hex, &tid);
		rc = keyset_id_add(&r->seen, tid, &added, err);
	} else {
		char hex[17];

		/* o<OID>.c or o<OID>.<SERIAL> */
		snprintf(hex, sizeof(hex), "%.16s", name + 1);
		ds_id_parse(hex, &oid);
		if (strcmp(name + 17, ".c") == 0) {
			if (oid > r->max_oid)
				r->max_oid = oid;
			rc = keyset_id_add(&r->ptrs, oid, &added, err);
		} else {
			ds_id_parse(name + 18, &serial);
			rc = keyset_pair_add(&r->sent, oid, serial, &added, err);
		}
	}
	if (rc != DS_OK)
		return rc;
	if (!added)
		return ds_error_set(err, DS_EPROTO, "%s: sent twice", r->what);
	if (name[0] == 'x') {
		rc = recv_xfile(r, size, &v, err);
		if (rc != DS_OK)
			return rc;
		if (strcmp(name, "x.serial") == 0) {
			r->have_serial = 1;
			r->init_serial = r->sum->new_tid = v;
		} else if (strcmp(name, "x.oid") == 0) {
			r->have_oid = 1;
			r->sum->new_oid = v;
			r->sum->have_oid = 1;
		} else {
			r->have_packed = 1;
		}
		return DS_OK;
	}
	if (name[0] == 't')
		return recv_txn(r, size, tid, err);
	if (strcmp(name + 17, ".c") == 0) {
		rc = recv_pointer(r, size, &serial, err);
		if (rc != DS_OK)
			return rc;
		return keyset_pair_add(&r->revs, oid, serial, NULL, err);
	}
	return recv_revision(r, size, oid, serial, err);
}

/* The end of an init answer: everything a storage needs is there. */
static int
recv_init_complete(struct recv *r, ds_error *err)
{
	char t[DS_NAME_MAX];

	if (r->state != ST_INIT_A)
		return ds_error_set(err, DS_EPROTO,
		                    "init: truncated: no config/%s",
		                    r->state == ST_INIT_SETTINGS ? "settings" :
		                    "identity");
	if (!r->have_serial || !r->have_oid || !r->have_packed)
		return ds_error_set(err, DS_EPROTO,
		                    "init: incomplete: x.serial, x.oid and "
		                    "x.packed must all be sent");
	/* as ds check: new oids come from x.oid, none is above it */
	if (r->max_oid > r->sum->new_oid)
		return ds_error_set(err, DS_EPROTO,
		                    "init: object id %016llX is higher than the "
		                    "x.oid sent %016llX",
		                    (unsigned long long)r->max_oid,
		                    (unsigned long long)r->sum->new_oid);
	if (r->init_serial != 0) {
		ds_name_transaction(r->init_serial, t);
		if (!keyset_id_has(&r->seen, r->init_serial))
			return ds_error_set(err, DS_EPROTO,
			                    "init: incomplete: no %s (the "
			                    "transaction of x.serial)", t);
	}
	for (size_t i = 0; i <= r->revs.cap; i++) {
		/* every slot, then the all-zero key */
		uint64_t oid = i < r->revs.cap ? r->revs.slot[2 * i] : 0;
		uint64_t serial = i < r->revs.cap ? r->revs.slot[2 * i + 1] : 0;

		if (i < r->revs.cap ? oid == 0 && serial == 0 :
		    !r->revs.has_zero)
			continue;
		if (!keyset_pair_has(&r->sent, oid, serial)) {
			ds_name_revision(oid, serial, t);
			return ds_error_set(err, DS_EPROTO,
			                    "init: incomplete: no %s (a current "
			                    "revision)", t);
		}
	}
	return DS_OK;
}

/* After libarchive's end: drain the rest, then check that the stream ends
 * with at least two zero blocks after the last member, nothing else. */
static int
recv_trailer(struct recv *r, ds_error *err)
{
	uint64_t at;

	while (!r->eof) {
		if (recv_pull(r) < 0) {
			if (err)
				*err = r->cb_err;
			return r->cb_err.status ? r->cb_err.status : DS_EIO;
		}
		if (r->total > r->end + RECV_TRAILER_MAX)
			return ds_error_set(err, DS_EPROTO,
			                    "increment: garbage after the end of "
			                    "the archive (more than %d bytes)",
			                    RECV_TRAILER_MAX);
	}
	if (r->total < r->end + 1024)
		return ds_error_set(err, DS_EPROTO,
		                    "increment: truncated: %llu bytes, the end "
		                    "of archive marker is missing",
		                    (unsigned long long)r->total);
	for (at = r->end; at < r->total;) {
		size_t n = r->total - at > RECV_BUF ? RECV_BUF :
		           (size_t)(r->total - at);
		ssize_t got = pread(r->spool_fd, r->data, n, (off_t)at);

		if (got <= 0)
			return ds_error_sys(err, got < 0 ? errno : EIO, "read",
			                    r->spool_path);
		for (ssize_t i = 0; i < got; i++)
			if (r->data[i] != 0)
				return ds_error_set(err, DS_EPROTO,
				                    "increment: garbage after the "
				                    "end of the archive (byte %llu)",
				                    (unsigned long long)at +
				                    (unsigned long long)i);
		at += (uint64_t)got;
	}
	if (r->total % 512 != 0)
		return ds_error_set(err, DS_EPROTO,
		                    "increment: %llu bytes is not a whole number "
		                    "of 512-byte blocks",
		                    (unsigned long long)r->total);
	return DS_OK;
}

int
recv_stream(recv_read_fn rd, void *rctx, int spool_fd,
                const char *spool_path, const struct recv_expect *exp,
                struct recv_summary *sum, int *read_failed,
                ds_error *err)
{
	struct recv r;
	struct archive_entry *e;
	int rc = DS_OK, ar;

	memset(&r, 0, sizeof(r));
	memset(sum, 0, sizeof(*sum));
	if (read_failed)
		*read_failed = 0;
	r.exp = exp;
	r.sum = sum;
	r.rd = rd;
	r.rctx = rctx;
	r.spool_fd = spool_fd;
	r.spool_path = spool_path;
	r.cand = RECV_ALL_LAYOUTS;
	r.state = exp->init ? ST_INIT_SETTINGS : ST_XSERIAL;
	r.next = exp->base_tid;
	r.md5_required = exp->md5_required && !exp->init;
	sum->new_tid = exp->base_tid;
	r.buf = malloc(RECV_BUF);
	r.data = malloc(RECV_BUF);
	r.a = archive_read_new();
	if (r.buf == NULL || r.data == NULL || r.a == NULL) {
		rc = ds_error_set(err, DS_ENOMEM, "increment: out of memory");
		goto out;
	}
	archive_read_support_format_tar(r.a);
	if (archive_read_open(r.a, &r, NULL, recv_cb, NULL) != ARCHIVE_OK) {
		rc = DS_EPROTO;
		goto archive_error;
	}
	for (;;) {
		int64_t size;

		ar = archive_read_next_header(r.a, &e);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar != ARCHIVE_OK) {
			rc = DS_EPROTO;
			goto archive_error;
		}
		snprintf(r.what, sizeof(r.what), "increment member %lu (%s)",
		         sum->members + 1,
		         archive_entry_pathname(e) ? archive_entry_pathname(e) :
		         "?");
		rc = recv_check_header(r.a, e, r.what, err);
		if (rc != DS_OK)
			goto out;
		size = archive_entry_size(e);
		if (exp->init)
			rc = recv_init_member(&r, archive_entry_pathname(e), size,
			                      err);
		else
			rc = recv_increment_member(&r, archive_entry_pathname(e),
			                           size, err);
		if (rc != DS_OK)
			goto out;
		/* every byte must have been consumed by the checks above */
		if (archive_read_data(r.a, r.data, 1) != 0) {
			rc = ds_error_set(err, DS_EPROTO, "%s: more data than "
			                  "its record says", r.what);
			goto out;
		}
		sum->members++;
		r.end += 512 + (((uint64_t)size + 511) / 512) * 512;
	}
	if (r.failed) {
		rc = DS_EPROTO;
		goto archive_error;
	}
	if (exp->init) {
		rc = recv_init_complete(&r, err);
	} else if (sum->members > 0 && r.state != ST_END) {
		char want[DS_NAME_MAX];
		recv_expected(&r, want);
		if (r.state == ST_TXN)
			rc = ds_error_set(err, DS_EPROTO,
			                  "increment: incomplete after %lu members: "
			                  "the transactions do not reach the "
			                  "replica's %016llX: %s is missing",
			                  sum->members,
			                  (unsigned long long)exp->base_tid, want);
		else
			rc = ds_error_set(err, DS_EPROTO,
			                  "increment: truncated or incomplete after "
			                  "%lu members: %s is missing",
			                  sum->members, want);
	}
	if (rc != DS_OK)
		goto out;
	rc = recv_trailer(&r, err);
	if (rc != DS_OK)
		goto out;
	sum->bytes = r.total;
	if (r.cand != RECV_ALL_LAYOUTS || exp->init) {
		sum->layout_known = 1;
		if (!exp->init)
			sum->layout = (ds_layout)recv_first_layout(r.cand);
	}
	goto out;
archive_error:
	if (r.failed) {
		if (read_failed && r.failed == 1)
			*read_failed = 1;
		if (err)
			*err = r.cb_err;
		rc = r.cb_err.status ? r.cb_err.status : DS_EIO;
	} else if (r.eof) {
		rc = ds_error_set(err, DS_EPROTO,
		                  "increment: truncated after %llu bytes (%s)",
		                  (unsigned long long)r.total,
		                  archive_error_string(r.a) ?
		                  archive_error_string(r.a) : "end of stream");
	} else {
		rc = ds_error_set(err, DS_EPROTO,
		                  "increment: malformed archive after %lu "
		                  "members: %s", sum->members,
		                  archive_error_string(r.a) ?
		                  archive_error_string(r.a) : "unreadable");
	}
out:
	if (r.failed == 1 && read_failed)
		*read_failed = 1;
	if (r.a)
		archive_read_free(r.a);
	free(r.txn);
	free(r.buf);
	free(r.data);
	keyset_ids_free(&r.seen);
	keyset_ids_free(&r.ptrs);
	keyset_pairs_free(&r.sent);
	keyset_pairs_free(&r.revs);
	return rc;
}
