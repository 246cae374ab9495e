/*
 * archive.c - the replica side's handling of a replication increment: a
 * ustar stream read with libarchive.
 *
 * Two jobs:
 *  - archive_receive(): read the stream coming from the master, copy every
 *    byte to the spool file, and check everything before the caller makes
 *    it the commit point: plain ustar, regular files only, names that map
 *    through the master's layout to database names, record lengths and
 *    md5s, the exact order and completeness of the original master's
 *    stream (x.serial, x.oid, then each transaction newest first with the
 *    .c pointer of each oid the first time it is seen and its revision,
 *    chaining back to the replica's tid), and nothing after the end but
 *    zero bytes. Memory is bounded by the largest transaction file:
 *    revisions are checked while they stream past.
 *  - ds_archive_apply(): extract a committed increment (journal/replica.tar)
 *    into the replica's own layout, durably and idempotently, writing
 *    x.serial and x.oid last so that even a reader that ignores the
 *    journal never sees an x.serial whose files are not all there. The
 *    bulk is written by two threads (see "the pool" below).
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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>

#include "replica_internal.h"

#define ARCHIVE_BUF (64 * 1024)
#define ARCHIVE_TXN_MAX (64u * 1024 * 1024)     /* largest t file accepted */
#define ARCHIVE_CONFIG_MAX (1024 * 1024)        /* config/settings */
#define ARCHIVE_IDENTITY_MAX 4096
#define ARCHIVE_TRAILER_MAX (1024 * 1024)       /* zeros after the end */
#define ARCHIVE_ALL_LAYOUTS 0xFu
#define ARCHIVE_PATH_MAX 4096

/* ---- sets of fixed-size binary keys ----
 *
 * What the checks remember: the oids of an increment (the "first time
 * seen" rule for .c pointers), and for an init answer the transactions,
 * pointers and revisions sent and the revisions the pointers name. Keys
 * are 64-bit ids (idset: 8-byte slots) or (a, b) pairs of them (pairset:
 * 16-byte slots) in open-addressing tables kept between a quarter and a
 * half full: 16..32 bytes an oid, 32..64 a pair, however long the names
 * (the strings these replaced cost ~50 bytes an oid; bench/README.md,
 * third run). The all-zero key cannot mark an empty slot and is a flag of
 * its own. */

struct idset {
	uint64_t *slot;          /* 0: empty */
	size_t cap, n;           /* cap: a power of two */
	int has_zero;
};

struct pairset {
	uint64_t *slot;          /* 2 per key; (0, 0): empty */
	size_t cap, n;
	int has_zero;
};

static size_t
keyset_hash(uint64_t a, uint64_t b)
{
	/* splitmix64's finaliser: ids are small sequential integers */
	uint64_t v = a ^ (b * 0x9e3779b97f4a7c15ull);

	v ^= v >> 30;
	v *= 0xbf58476d1ce4e5b9ull;
	v ^= v >> 27;
	v *= 0x94d049bb133111ebull;
	v ^= v >> 31;
	return (size_t)v;
}

/* Add (a, b) to a table of width ids per key (1: idset, 2: pairset;
 * b is 0 for width 1). *added (may be NULL) says whether it was new.
 * Errors: DS_ENOMEM. */
static int
keyset_add(uint64_t **slotp, size_t *capp, size_t *np, int *has_zero,
           int width, uint64_t a, uint64_t b, int *added, ds_error *err)
{
	uint64_t *slot = *slotp;
	size_t cap = *capp, i;

	if (added)
		*added = 0;
	if (a == 0 && b == 0) {
		if (added)
			*added = !*has_zero;
		*has_zero = 1;
		return DS_OK;
	}
	if (cap == 0 || (*np + 1) * 2 > cap) {
		size_t ncap = cap ? cap * 2 : 64;
		uint64_t *ns = calloc(ncap * (size_t)width, sizeof(*ns));

		if (ns == NULL)
			return ds_error_set(err, DS_ENOMEM,
			                    "increment: out of memory");
		for (size_t j = 0; j < cap; j++) {
			uint64_t ka = slot[j * width];
			uint64_t kb = width == 2 ? slot[j * width + 1] : 0;

			if (ka == 0 && kb == 0)
				continue;
			i = keyset_hash(ka, kb) & (ncap - 1);
			while (ns[i * width] != 0 ||
			       (width == 2 && ns[i * width + 1] != 0))
				i = (i + 1) & (ncap - 1);
			ns[i * width] = ka;
			if (width == 2)
				ns[i * width + 1] = kb;
		}
		free(slot);
		*slotp = slot = ns;
		*capp = cap = ncap;
	}
	i = keyset_hash(a, b) & (cap - 1);
	for (;;) {
		uint64_t ka = slot[i * width];
		uint64_t kb = width == 2 ? slot[i * width + 1] : 0;

		if (ka == 0 && kb == 0)
			break;
		if (ka == a && kb == b)
			return DS_OK;
		i = (i + 1) & (cap - 1);
	}
	slot[i * width] = a;
	if (width == 2)
		slot[i * width + 1] = b;
	(*np)++;
	if (added)
		*added = 1;
	return DS_OK;
}

static int
keyset_has(const uint64_t *slot, size_t cap, int has_zero, int width,
           uint64_t a, uint64_t b)
{
	size_t i;

	if (a == 0 && b == 0)
		return has_zero;
	if (cap == 0)
		return 0;
	i = keyset_hash(a, b) & (cap - 1);
	for (;;) {
		uint64_t ka = slot[i * width];
		uint64_t kb = width == 2 ? slot[i * width + 1] : 0;

		if (ka == 0 && kb == 0)
			return 0;
		if (ka == a && kb == b)
			return 1;
		i = (i + 1) & (cap - 1);
	}
}

static int
idset_add(struct idset *s, uint64_t id, int *added, ds_error *err)
{
	return keyset_add(&s->slot, &s->cap, &s->n, &s->has_zero, 1, id, 0,
	                  added, err);
}

static int
idset_has(const struct idset *s, uint64_t id)
{
	return keyset_has(s->slot, s->cap, s->has_zero, 1, id, 0);
}

static int
pairset_add(struct pairset *s, uint64_t a, uint64_t b, int *added,
            ds_error *err)
{
	return keyset_add(&s->slot, &s->cap, &s->n, &s->has_zero, 2, a, b,
	                  added, err);
}

static int
pairset_has(const struct pairset *s, uint64_t a, uint64_t b)
{
	return keyset_has(s->slot, s->cap, s->has_zero, 2, a, b);
}

/* ---- member names ---- */

/* Check a member path for the things that are refused whatever the
 * layout: absolute, "..", ".", empty components. */
static int
archive_path_sane(const char *path, const char **why)
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
static int
archive_map_name(unsigned *cand, const char *rel, char name[DS_NAME_MAX],
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

static int
archive_first_layout(unsigned cand)
{
	for (int l = 0; l < 4; l++)
		if (cand & (1u << l))
			return l;
	return 0;
}

/* Checks of one header that do not depend on the state: ustar, a
 * regular file without links, sane mode and size, a sane path. */
static int
archive_check_header(struct archive *a, struct archive_entry *e,
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
	if (!archive_path_sane(path, &why))
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
	const struct archive_expect *exp;
	struct archive_summary *sum;
	archive_read_fn rd;
	void *rctx;
	int spool_fd;
	const char *spool_path;
	unsigned char *buf;      /* ARCHIVE_BUF: raw stream */
	unsigned char *data;     /* ARCHIVE_BUF: member data */
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
	struct idset seen;       /* increments: oids seen; init: the
	                          * transactions sent */
	/* init */
	struct idset ptrs;       /* the .c pointers sent (their oids) */
	struct pairset sent;     /* the revisions sent (oid, serial) */
	struct pairset revs;     /* revisions the .c pointers name */
	int have_serial, have_oid, have_packed;
	ds_tid init_serial;
	ds_oid max_oid;          /* init: highest oid with a .c pointer */
	int md5_required;        /* refuse files without an md5 */
	char what[160];
};

/* Fill r->buf (to the end of the stream at most), copy it to the spool.
 * Whole buffers, however the pipe delivers the stream: one spool write
 * per ARCHIVE_BUF, and a number of durable I/O calls that depends on the
 * stream's length only (the crash tests count them). */
static ssize_t
recv_pull(struct recv *r)
{
	ssize_t n = 0;

	while (!r->eof && n < ARCHIVE_BUF) {
		ssize_t got = r->rd(r->rctx, r->buf + n, ARCHIVE_BUF - (size_t)n,
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
	rc = recv_small(r, size, DS_TXN_HEADER, ARCHIVE_TXN_MAX, &r->txn, err);
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
		size_t n = left > ARCHIVE_BUF ? ARCHIVE_BUF : (size_t)left;
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
		rc = idset_add(&r->seen, ds_get_u64(r->rec.oids + 8 * r->oid_i),
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
	rc = archive_map_name(&r->cand, path + 2, name, r->what, err);
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
		                ARCHIVE_CONFIG_MAX : ARCHIVE_IDENTITY_MAX, &b,
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
	rc = archive_map_name(&r->cand, path + 2, name, r->what, err);
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
		rc = idset_add(&r->seen, tid, &added, err);
	} else {
		char hex[17];

		/* o<OID>.c or o<OID>.<SERIAL> */
		snprintf(hex, sizeof(hex), "%.16s", name + 1);
		ds_id_parse(hex, &oid);
		if (strcmp(name + 17, ".c") == 0) {
			if (oid > r->max_oid)
				r->max_oid = oid;
			rc = idset_add(&r->ptrs, oid, &added, err);
		} else {
			ds_id_parse(name + 18, &serial);
			rc = pairset_add(&r->sent, oid, serial, &added, err);
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
		return pairset_add(&r->revs, oid, serial, NULL, err);
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
		if (!idset_has(&r->seen, r->init_serial))
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
		if (!pairset_has(&r->sent, oid, serial)) {
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
		if (r->total > r->end + ARCHIVE_TRAILER_MAX)
			return ds_error_set(err, DS_EPROTO,
			                    "increment: garbage after the end of "
			                    "the archive (more than %d bytes)",
			                    ARCHIVE_TRAILER_MAX);
	}
	if (r->total < r->end + 1024)
		return ds_error_set(err, DS_EPROTO,
		                    "increment: truncated: %llu bytes, the end "
		                    "of archive marker is missing",
		                    (unsigned long long)r->total);
	for (at = r->end; at < r->total;) {
		size_t n = r->total - at > ARCHIVE_BUF ? ARCHIVE_BUF :
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
archive_receive(archive_read_fn rd, void *rctx, int spool_fd,
                const char *spool_path, const struct archive_expect *exp,
                struct archive_summary *sum, int *read_failed,
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
	r.cand = ARCHIVE_ALL_LAYOUTS;
	r.state = exp->init ? ST_INIT_SETTINGS : ST_XSERIAL;
	r.next = exp->base_tid;
	r.md5_required = exp->md5_required && !exp->init;
	sum->new_tid = exp->base_tid;
	r.buf = malloc(ARCHIVE_BUF);
	r.data = malloc(ARCHIVE_BUF);
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
		rc = archive_check_header(r.a, e, r.what, err);
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
	if (r.cand != ARCHIVE_ALL_LAYOUTS || exp->init) {
		sum->layout_known = 1;
		if (!exp->init)
			sum->layout = (ds_layout)archive_first_layout(r.cand);
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
	free(r.seen.slot);
	free(r.ptrs.slot);
	free(r.sent.slot);
	free(r.revs.slot);
	return rc;
}

/* ---- applying ---- */

struct deferred {
	char path[ARCHIVE_PATH_MAX];
	unsigned char data[8];
	mode_t mode;
	int used;
};

/* Write one member to path with exactly the mode sent, never into an
 * existing file: one that exists (a .c pointer, x.serial, x.oid, or a
 * file a killed apply left) is written under a temporary name and renamed
 * over it (ds_io_replace_open), so that a hard-linked copy of the replica
 * (cp -al, rsnapshot, rsync --link-dest) keeps its content; a new one
 * (revisions, transactions: most of an increment) is created under its
 * name (DS_IO_REPLACE_DIRECT, no rename: nothing reads it before x.serial
 * names its transaction, and a crash re-applies it whole). do_sync: fsync
 * it, always through a temporary name (only the x.* files, written last;
 * the bulk, renames included, is made durable by one syncfs, see
 * archive_extract). */
static int
apply_write(const char *path, const unsigned char *buf, size_t len,
            struct archive *a, int64_t size, mode_t mode, int do_sync,
            ds_error *err)
{
	unsigned char data[ARCHIVE_BUF];
	ds_io_replace r;
	int fd, rc;

	rc = ds_io_replace_open(path, mode, do_sync ? 0 : DS_IO_REPLACE_DIRECT,
	                        &r, &fd, err);
	if (rc != DS_OK)
		return rc;
	if (buf != NULL) {
		rc = ds_io_write_all(fd, buf, len, path, err);
	} else {
		int64_t left = size;
		while (rc == DS_OK && left > 0) {
			size_t want = left > ARCHIVE_BUF ? ARCHIVE_BUF :
			              (size_t)left;
			la_ssize_t n = archive_read_data(a, data, want);
			if (n <= 0) {
				rc = ds_error_set(err, DS_EPROTO,
				                  "apply %s: archive data truncated",
				                  path);
				break;
			}
			rc = ds_io_write_all(fd, data, (size_t)n, path, err);
			left -= n;
		}
	}
	/* the mode sent, exactly (O_CREAT's is cut by the umask) */
	if (rc == DS_OK && fchmod(fd, mode) != 0)
		rc = ds_error_sys(err, errno, "chmod", path);
	if (rc != DS_OK) {
		ds_io_replace_abort(&r, fd);
		return rc;
	}
	return ds_io_replace_commit(&r, fd, do_sync, err);
}

/* syncfs HOME's filesystem, and A/'s when A/ is on another one. */
static int
archive_syncfs(const char *home, ds_error *err)
{
	char a_dir[ARCHIVE_PATH_MAX];
	struct stat st_home, st_a;
	int fd, rc;

	snprintf(a_dir, sizeof(a_dir), "%s/A", home);
	rc = ds_io_open(home, O_RDONLY | O_DIRECTORY, 0, &fd, err);
	if (rc != DS_OK)
		return rc;
	rc = ds_io_syncfs(fd, home, err);
	if (rc == DS_OK && fstat(fd, &st_home) != 0)
		rc = ds_error_sys(err, errno, "stat", home);
	close(fd);
	if (rc != DS_OK)
		return rc;
	if (stat(a_dir, &st_a) != 0)
		return ds_error_sys(err, errno, "stat", a_dir);
	if (st_a.st_dev == st_home.st_dev)
		return DS_OK;
	rc = ds_io_open(a_dir, O_RDONLY | O_DIRECTORY, 0, &fd, err);
	if (rc != DS_OK)
		return rc;
	rc = ds_io_syncfs(fd, a_dir, err);
	close(fd);
	return rc;
}

/* ---- the pool that writes the bulk of an increment ----
 *
 * archive_extract runs after the commit point (journal/replica.tar is
 * durable; a crash re-applies the whole tar on the next open, and writing
 * a member twice gives the same file), an increment never names the same
 * path twice, and the files are made durable by ONE syncfs at the end,
 * with x.serial and x.oid written and fsynced only after it. So the order
 * in which the bulk is written does not matter, and it can be spread over
 * threads: creating a file (open O_CREAT, write, fchmod, close, rename
 * over the old one) is
 * kernel CPU work on ext4's metadata (directory entry
 * search, inode allocation) plus synchronous reads of the metadata blocks
 * it needs; with two writers one's CPU work overlaps the other's waits,
 * and the replica has the machine to itself by then (the master is done;
 * bench/README.md, third run, "parallel apply"). The main thread keeps
 * reading the tar with libarchive (sequential by nature) and checking
 * every header as before; it hands each member of at most APPLY_MEMBER_MAX
 * bytes, read into a buffer, to APPLY_THREADS workers through a queue
 * bounded by APPLY_QUEUE_BYTES and APPLY_QUEUE_JOBS (memory stays
 * bounded); a larger member it streams itself, as before. Two threads:
 * the machines we measure have two cores, and the reader is light next
 * to the writers (~15% of the CPU time). The reader makes the
 * directories (ds_io_mkdirs, before queuing a file): had two workers
 * raced for a new directory, both could call mkdir, and the number of
 * durable I/O calls, which the crash tests count to choose their kill
 * points, would vary from run to run; this way it is the same in every
 * run, only their order varies. The first error wins: it
 * is kept, the reader stops, the workers drop what is queued, and all are
 * joined before the syncfs (never reached then) or the return. */

#define APPLY_THREADS 2
#define APPLY_QUEUE_BYTES (4u * 1024 * 1024)
#define APPLY_QUEUE_JOBS 1024u
#define APPLY_MEMBER_MAX (1024u * 1024)

struct apply_job {
	struct apply_job *next;
	size_t len;
	mode_t mode;
	unsigned char *data;     /* len bytes, after the path */
	char path[];
};

struct apply_pool {
	pthread_mutex_t mu;
	pthread_cond_t more;     /* a job queued, or closed / failed */
	pthread_cond_t room;     /* the queue is down to half its bounds
	                          * (the reader waits from full to half: one
	                          * wake-up per file cost more than the
	                          * file), or failed */
	struct apply_job *head, *tail;
	size_t bytes, jobs;      /* queued */
	int full;                /* the reader waits for the low mark */
	int closed;              /* no more jobs will come */
	int rc;                  /* the first error (DS_OK: none) */
	ds_error err;
	pthread_t tid[APPLY_THREADS];
	int nthreads;
};

/* Record an error unless one is already there: the first wins. */
static void
apply_fail(struct apply_pool *p, int rc, const ds_error *err)
{
	pthread_mutex_lock(&p->mu);
	if (p->rc == DS_OK) {
		p->rc = rc;
		if (err != NULL)
			p->err = *err;
		else
			p->err.status = rc;
	}
	pthread_cond_broadcast(&p->more);
	pthread_cond_broadcast(&p->room);
	pthread_mutex_unlock(&p->mu);
}

static int
apply_job_run(const struct apply_job *j, ds_error *err)
{
	return apply_write(j->path, j->data, j->len, NULL, (int64_t)j->len,
	                   j->mode, 0, err);
}

static void *
apply_worker(void *arg)
{
	struct apply_pool *p = arg;
	struct apply_job *j;
	ds_error err;
	int rc;

	for (;;) {
		pthread_mutex_lock(&p->mu);
		while (p->head == NULL && !p->closed)
			pthread_cond_wait(&p->more, &p->mu);
		j = p->head;
		if (j == NULL) {
			pthread_mutex_unlock(&p->mu);
			return NULL;
		}
		p->head = j->next;
		if (p->head == NULL)
			p->tail = NULL;
		p->bytes -= j->len;
		p->jobs--;
		rc = p->rc;
		/* wake the reader at half the bounds, not for every job: a
		 * wake-up per file costs more than the file */
		if (p->full && p->jobs <= APPLY_QUEUE_JOBS / 2 &&
		    p->bytes <= APPLY_QUEUE_BYTES / 2) {
			p->full = 0;
			pthread_cond_signal(&p->room);
		}
		pthread_mutex_unlock(&p->mu);
		if (rc == DS_OK) {      /* after an error: dropped */
			ds_error_clear(&err);
			rc = apply_job_run(j, &err);
			if (rc != DS_OK)
				apply_fail(p, rc, &err);
		}
		free(j);
	}
}

/* Start the workers. With none started (pthread_create failed), the
 * caller writes every member itself. */
static void
apply_pool_start(struct apply_pool *p)
{
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->more, NULL);
	pthread_cond_init(&p->room, NULL);
	p->rc = DS_OK;
	for (int i = 0; i < APPLY_THREADS; i++) {
		if (pthread_create(&p->tid[p->nthreads], NULL, apply_worker,
		                   p) == 0)
			p->nthreads++;
	}
}

/* Queue j (ownership passes), waiting for room; run it here when there is
 * no worker. Returns the first error so far (j is freed then). */
static int
apply_pool_put(struct apply_pool *p, struct apply_job *j, ds_error *err)
{
	int rc;

	if (p->nthreads == 0) {
		rc = apply_job_run(j, err);
		free(j);
		return rc;
	}
	pthread_mutex_lock(&p->mu);
	if (p->jobs > 0 && (p->jobs >= APPLY_QUEUE_JOBS ||
	                    p->bytes + j->len > APPLY_QUEUE_BYTES)) {
		p->full = 1;
		while (p->rc == DS_OK && p->full)
			pthread_cond_wait(&p->room, &p->mu);
	}
	rc = p->rc;
	if (rc == DS_OK) {
		j->next = NULL;
		if (p->tail != NULL)
			p->tail->next = j;
		else
			p->head = j;
		p->tail = j;
		p->bytes += j->len;
		p->jobs++;
		pthread_cond_signal(&p->more);
		j = NULL;
	}
	pthread_mutex_unlock(&p->mu);
	free(j);
	return rc;
}

/* No more jobs: let the workers finish the queue (or drop it after an
 * error) and join them. Returns the first error, copied to err. */
static int
apply_pool_finish(struct apply_pool *p, ds_error *err)
{
	pthread_mutex_lock(&p->mu);
	p->closed = 1;
	pthread_cond_broadcast(&p->more);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->nthreads; i++)
		pthread_join(p->tid[i], NULL);
	pthread_cond_destroy(&p->more);
	pthread_cond_destroy(&p->room);
	pthread_mutex_destroy(&p->mu);
	if (p->rc != DS_OK && err != NULL)
		*err = p->err;
	return p->rc;
}

/* The directories the reader made or checked last (a ring; lookups are
 * linear, it is small). */
#define APPLY_DIRS 16
struct apply_dirs {
	char *d[APPLY_DIRS];
	unsigned next;
};

static int
apply_dirs_seen(const struct apply_dirs *s, const char *d)
{
	for (unsigned i = 0; i < APPLY_DIRS; i++)
		if (s->d[i] != NULL && strcmp(s->d[i], d) == 0)
			return 1;
	return 0;
}

/* Remember d (when out of memory, it is simply checked again). */
static void
apply_dirs_add(struct apply_dirs *s, const char *d)
{
	char *c = strdup(d);

	if (c == NULL)
		return;
	free(s->d[s->next]);
	s->d[s->next] = c;
	s->next = (s->next + 1) % APPLY_DIRS;
}

static void
apply_dirs_free(struct apply_dirs *s)
{
	for (unsigned i = 0; i < APPLY_DIRS; i++)
		free(s->d[i]);
}

static int
archive_extract(const char *home, const char *tar_path, int init,
                ds_layout init_layout, ds_error *errp)
{
	struct archive *a = NULL;
	struct archive_entry *e;
	struct deferred def[2];
	struct apply_pool pool;
	struct apply_job *job = NULL;
	int pooled = 0;
	ds_error err_, *err = &err_;   /* kept even when errp is NULL: the
	                                * pool's first error is a copy */
	ds_config cfg;
	ds_layout mine;
	unsigned cand = init ? 1u << init_layout : ARCHIVE_ALL_LAYOUTS;
	char what[ARCHIVE_PATH_MAX + 64], target[ARCHIVE_PATH_MAX];
	char name[DS_NAME_MAX], rel[DS_RELPATH_MAX];
	struct apply_dirs dirs = {{NULL}, 0};
	unsigned long n = 0;
	int rc, ar;

	memset(def, 0, sizeof(def));
	ds_error_clear(err);
	/* no write beneath home follows a symlink (io.c): a directory of A/
	 * that is a symlink is refused, never written through */
	rc = ds_io_guard(home, err);
	if (rc != DS_OK) {
		if (errp != NULL)
			*errp = *err;
		return rc;
	}
	if (init) {
		mine = init_layout;
	} else {
		rc = ds_config_load(home, &cfg, err);
		if (rc != DS_OK)
			goto out;
		mine = cfg.layout;
	}
	a = archive_read_new();
	if (a == NULL) {
		rc = ds_error_set(err, DS_ENOMEM, "apply %s: out of memory",
		                  tar_path);
		goto out;
	}
	archive_read_support_format_tar(a);
	if (archive_read_open_filename(a, tar_path, ARCHIVE_BUF) != ARCHIVE_OK) {
		rc = ds_error_set(err, DS_EPROTO, "apply %s: %s", tar_path,
		                  archive_error_string(a));
		goto out;
	}
	apply_pool_start(&pool);
	pooled = 1;
	for (;;) {
		const char *path;
		mode_t mode;
		int64_t size;

		ar = archive_read_next_header(a, &e);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar != ARCHIVE_OK) {
			rc = ds_error_set(err, DS_EPROTO, "apply %s: %s",
			                  tar_path, archive_error_string(a));
			goto out;
		}
		n++;
		path = archive_entry_pathname(e);
		snprintf(what, sizeof(what), "apply %s: member %lu (%s)",
		         tar_path, n, path ? path : "?");
		rc = archive_check_header(a, e, what, err);
		if (rc != DS_OK)
			goto out;
		mode = archive_entry_perm(e) & 0777;
		size = archive_entry_size(e);
		if (init && (strcmp(path, "config/settings") == 0 ||
		             strcmp(path, "config/identity") == 0)) {
			snprintf(target, sizeof(target), "%s/%s", home, path);
		} else if (strncmp(path, "A/", 2) == 0) {
			rc = archive_map_name(&cand, path + 2, name, what, err);
			if (rc == DS_OK)
				rc = ds_layout_name_to_path(mine, name, rel,
				                            sizeof(rel), err);
			if (rc != DS_OK)
				goto out;
			if ((size_t)snprintf(target, sizeof(target), "%s/A/%s",
			                     home, rel) >= sizeof(target)) {
				rc = ds_error_set(err, DS_EINVAL, "%s: path too "
				                  "long", what);
				goto out;
			}
		} else {
			rc = ds_error_set(err, DS_EPROTO, "%s: not under A/",
			                  what);
			goto out;
		}
		if (strchr(target + strlen(home) + 1, '/') != NULL) {
			char d[ARCHIVE_PATH_MAX];
			snprintf(d, sizeof(d), "%s", target);
			*strrchr(d, '/') = '\0';
			/* the increment's members come per transaction, its
			 * objects' files in the objects' few directories:
			 * the directories made or checked last are not
			 * checked again (nothing removes one during an
			 * apply) */
			if (!apply_dirs_seen(&dirs, d)) {
				rc = ds_io_mkdirs(d, 0755, err);
				if (rc != DS_OK)
					goto out;
				apply_dirs_add(&dirs, d);
			}
		}
		if (size >= 0 && size <= (int64_t)APPLY_MEMBER_MAX &&
		    (strncmp(path, "A/", 2) != 0 ||
		     (strcmp(name, "x.serial") != 0 &&
		      strcmp(name, "x.oid") != 0))) {
			/* the bulk: read here, written by the pool */
			size_t plen = strlen(target) + 1, got = 0;

			job = malloc(sizeof(*job) + plen + (size_t)size);
			if (job == NULL) {
				rc = ds_error_set(err, DS_ENOMEM, "%s: out of "
				                  "memory", what);
				goto out;
			}
			memcpy(job->path, target, plen);
			job->data = (unsigned char *)job->path + plen;
			job->len = (size_t)size;
			job->mode = mode;
			while (got < job->len) {
				la_ssize_t r = archive_read_data(a,
				    job->data + got, job->len - got);
				if (r <= 0) {
					rc = ds_error_set(err, DS_EPROTO,
					    "apply %s: archive data truncated",
					    target);
					goto out;
				}
				got += (size_t)r;
			}
			rc = apply_pool_put(&pool, job, err);
			job = NULL;
			if (rc != DS_OK)
				goto out;
			continue;
		}
		if (strcmp(path, "config/settings") != 0 &&
		    strcmp(path, "config/identity") != 0 &&
		    (strcmp(name, "x.serial") == 0 ||
		     strcmp(name, "x.oid") == 0)) {
			/* written last, below */
			struct deferred *d = &def[name[2] == 's' ? 0 : 1];
			if (size != 8 || archive_read_data(a, d->data, 8) != 8) {
				rc = ds_error_set(err, DS_EPROTO, "%s: not 8 "
				                  "bytes", what);
				goto out;
			}
			snprintf(d->path, sizeof(d->path), "%s", target);
			d->mode = mode;
			d->used = 1;
			continue;
		}
		/* larger than APPLY_MEMBER_MAX: streamed here, while the pool
		 * works on what is queued */
		rc = apply_write(target, NULL, 0, a, size, mode, 0, err);
		if (rc != DS_OK)
			goto out;
	}
	/* every worker joined before the syncfs and the x.* files */
	pooled = 0;
	rc = apply_pool_finish(&pool, err);
	if (rc != DS_OK)
		goto out;
	/* Every file's data and directory entry durable before x.serial says
	 * the transactions are there: one syncfs of the replica's filesystem
	 * instead of an fsync per file and per directory (bench/README.md:
	 * those were 59% of a 1000-transaction increment). Equally safe:
	 * syncfs writes back every dirty inode of the filesystem and commits
	 * its journal, which is what the per-file and per-directory fsyncs
	 * did one by one; and until misc/replica.previous replaces
	 * journal/replica.tar (after this returns), a crash re-applies the
	 * whole increment anyway. A/ is synced too when it is a mount of its
	 * own. */
	rc = archive_syncfs(home, err);
	if (rc != DS_OK)
		goto out;
	for (int i = 1; i >= 0; i--) {
		char d[ARCHIVE_PATH_MAX];

		if (!def[i].used)
			continue;
		rc = apply_write(def[i].path, def[i].data, 8, NULL, 8,
		                 def[i].mode, 1, err);
		if (rc != DS_OK)
			goto out;
		snprintf(d, sizeof(d), "%s", def[i].path);
		*strrchr(d, '/') = '\0';
		rc = ds_io_fsync_dir(d, err);
		if (rc != DS_OK)
			goto out;
	}
	rc = DS_OK;
out:
	free(job);
	apply_dirs_free(&dirs);
	if (pooled) {
		/* the reader's own error, unless a worker's came first */
		if (rc != DS_OK)
			apply_fail(&pool, rc, err);
		rc = apply_pool_finish(&pool, err);
	}
	if (a)
		archive_read_free(a);
	ds_io_unguard(home);
	if (rc != DS_OK && errp != NULL)
		*errp = *err;
	return rc;
}

int
ds_archive_apply(const char *home, const char *tar_path, ds_error *err)
{
	return archive_extract(home, tar_path, 0, DS_LAYOUT_BUSHY, err);
}

int
archive_apply_init(const char *home, const char *tar_path, ds_layout layout,
                   ds_error *err)
{
	return archive_extract(home, tar_path, 1, layout, err);
}
