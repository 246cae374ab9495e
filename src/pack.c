/*
 * pack.c - packing a Full storage: the original's mark and sweep, online.
 *
 * What a pack at threshold T keeps (the original Full._pack, which this
 * follows step by step so that both leave the same tree):
 *  - every object reachable from the root (oid 0) through the persistent
 *    references (ds_refscan) of its current revision and its revisions
 *    written at or after T, which are kept; its other revisions (older
 *    than T and not current) go;
 *  - every object written by a transaction at or after T (and by the two
 *    newest transactions, a datum replication and backup rely on), with
 *    what it references;
 *  - the transaction files of kept revisions ([storage] keep_policy
 *    detailed, the default; "undoable" keeps only those at or after T),
 *    and every transaction at or after T;
 *  - x.serial, x.oid, x.packed.
 * Everything else in A/ is renamed to "<path>-<unixtime>-deleted" (or
 * removed when [storage] delay_delete is 0); leftovers older than
 * delay_delete seconds are removed; a directory found empty is removed.
 * Kept transactions whose previous transaction goes get their back
 * pointer (bytes 24..31) rewritten to the previous kept one. Kept files
 * get mode 0740 and removed ones lose the owner-execute bit, as the
 * original's permission marks leave them. x.packed is written first.
 *
 * [keepclass] (config/settings): an object whose class (read from its
 * newest revision with a non-empty pickle, as the original's
 * class_name_from_pickle reads it: ds_classname_get) is named there with
 * "forever" keeps every revision older than T it still has, one with
 * "extra DAYS" those newer than T less DAYS days (each with its
 * transaction, as above). A value the original cannot read is logged and
 * ignored as it does; "extra" with a number int() refuses stops the pack
 * before anything changes, where the original's open fails.
 *
 * Threshold: T is lowered to now - [storage] min_pack_time, then (when
 * min_pack_time > 0) to the last transaction: never later.
 *
 * Online: the storage is held in snapshot mode "packing" for the whole
 * pack, as the original does: commits go on into the journal and B while
 * A, which only the pack touches, is read and swept; leaving snapshot mode
 * moves B back over A.
 *
 * Crash safety. The original sweeps in directory order; we keep its
 * result but order the changes so that a pack killed (or a power cut) at
 * any point leaves a storage `ds check` accepts and a later pack
 * finishes: x.packed (durable) first, so that every file the pack removes
 * is older than x.packed; then the .c pointers of unreachable objects (their
 * revisions become leftovers older than x.packed), then revisions, then
 * the back pointers (each rewritten file is made in misc/ and renamed
 * over the old one: never modified in place, so a hard-linked copy such
 * as a replica made with cp -l keeps its bytes), then the transaction
 * files nothing links to any more. A syncfs between these steps (when
 * [filesystem] sync is on) keeps their order across a power cut.
 * Marks live in memory: for each kept object the oldest serial it keeps
 * (arrays indexed by oid up to x.oid, a map for any oid beyond), and a
 * set of kept tids (64-bit keys), not in file modes. A
 * revision is kept when its object is and its serial is at least that
 * oldest one: the walk below keeps a run of the object's chain of
 * previous-serial pointers from its current revision down, and in a
 * storage `ds check` accepts every revision of an object is on that chain
 * (one off it is a problem check reports), so the run is exactly the
 * revisions from that serial up. 8 bytes and a bit per oid the storage
 * has handed out, however many revisions are kept.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keyset.h"
#include "storage_internal.h"

#define PACK_TMP "misc/pack.tmp"
#define PACK_NO_REVISION UINT64_MAX
/* oids up to this use the arrays (at most 512 MiB of address space,
 * touched as the oids are) */
#define PACK_DENSE_MAX (1ull << 26)

struct pack {
	ds_storage *s;
	const struct ds_pack_opts *opts;
	struct ds_pack_stats *st;
	ds_error *err;
	ds_layout layout;
	char a[DS_PATH_MAX];     /* HOME/A */
	ds_tid threshold;
	ds_tid last_pack;             /* x.packed after this pack */
	int keep_ancient;             /* keep_policy detailed */
	long min_pack_time, delay_delete;
	long long now;                /* unixtime of the sweep */
	/* the marks: what is kept, as 64-bit keys (a database name is
	 * one of these plus its kind): objects by oid, each with the oldest
	 * serial of its revisions kept (PACK_NO_REVISION before the first),
	 * transactions by tid. 16 or 8 bytes a key at a load of at most
	 * 1/2: memory grows with the objects kept, not with names nor with
	 * revisions */
	struct keyset_map objects;
	/* objects whose oid is at most x.oid (all of them, as ZODB hands
	 * oids out in order) live in arrays indexed by oid instead: a bit
	 * "kept" and the oldest serial, 8 bytes and a bit an oid, in pages
	 * the kernel gives only when touched */
	uint64_t *kept_bits, *oldest;
	uint64_t ndense;
	struct keyset_ids txns;
	ds_oid *todo;                 /* objects to mark */
	size_t ntodo, cap;
	struct pack_keep *keep;       /* [keepclass] */
	size_t nkeep;
};

/* One [keepclass] option: the class name, and the oldest revision its
 * objects keep (0: forever; set once the threshold is known). */
struct pack_keep {
	char *cls;
	long days;                    /* -1: forever */
	ds_tid limit;
};

static void
pack_log(struct pack *p, int level, const char *fmt, ...)
	DS_PRINTF(3, 4);

static void
pack_log(struct pack *p, int level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (p->opts == NULL || p->opts->log == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	p->opts->log(level, msg, p->opts->log_ctx);
}

enum pack_kind { PACK_OTHER, PACK_POINTER, PACK_REVISION, PACK_TXN };

/* The key of a valid database name: its kind, and the oid / serial /
 * tid it names. */
static enum pack_kind
pack_key(const char *name, uint64_t *a, uint64_t *b)
{
	char hex[17];

	if (name[0] == 'o' && strlen(name) >= 19 && name[17] == '.') {
		memcpy(hex, name + 1, 16);
		hex[16] = '\0';
		if (ds_id_parse(hex, a) != DS_OK)
			return PACK_OTHER;
		if (strcmp(name + 18, "c") == 0)
			return PACK_POINTER;
		if (ds_id_parse(name + 18, b) != DS_OK)
			return PACK_OTHER;
		return PACK_REVISION;
	}
	if (name[0] == 't' && strlen(name) == 18 && name[7] == '.') {
		memcpy(hex, name + 1, 6);
		memcpy(hex + 6, name + 8, 10);
		hex[16] = '\0';
		return ds_id_parse(hex, a) == DS_OK ? PACK_TXN : PACK_OTHER;
	}
	return PACK_OTHER;
}

/* The oldest serial kept of object oid into *oldest: 1, or 0 when the
 * object is not (yet) kept. */
static int
pack_obj_get(const struct pack *p, uint64_t oid, uint64_t *oldest)
{
	if (oid < p->ndense) {
		if (!((p->kept_bits[oid >> 6] >> (oid & 63)) & 1))
			return 0;
		*oldest = p->oldest[oid];
		return 1;
	}
	return keyset_map_get(&p->objects, oid, oldest);
}

static int
pack_obj_put(struct pack *p, uint64_t oid, uint64_t oldest)
{
	if (oid < p->ndense) {
		p->kept_bits[oid >> 6] |= 1ull << (oid & 63);
		p->oldest[oid] = oldest;
		return DS_OK;
	}
	return keyset_map_put(&p->objects, oid, oldest, p->err);
}

static int pack_read_x(struct pack *p, const char *name, uint64_t *v);

/* The arrays for oids up to x.oid (none when x.oid is beyond
 * PACK_DENSE_MAX or memory is short: the map holds them all then). */
static int
pack_obj_init(struct pack *p)
{
	uint64_t last;
	int rc;

	rc = pack_read_x(p, "x.oid", &last);
	if (rc == DS_ENOTFOUND)
		return DS_OK;          /* the map will do */
	if (rc != DS_OK)
		return rc;
	if (last >= PACK_DENSE_MAX)
		return DS_OK;
	p->kept_bits = calloc((size_t)(last / 64 + 1), sizeof(uint64_t));
	p->oldest = calloc((size_t)last + 1, sizeof(uint64_t));
	if (p->kept_bits == NULL || p->oldest == NULL) {
		free(p->kept_bits);
		free(p->oldest);
		p->kept_bits = p->oldest = NULL;
		return DS_OK;
	}
	p->ndense = last + 1;
	return DS_OK;
}

/* Mark database name (a .c pointer, a revision, a transaction; the x
 * files are always kept). */
static int
pack_mark(struct pack *p, const char *name)
{
	uint64_t a = 0, b = 0, oldest;
	int rc = DS_OK;

	switch (pack_key(name, &a, &b)) {
	case PACK_POINTER:
		if (!pack_obj_get(p, a, &oldest))
			rc = pack_obj_put(p, a, PACK_NO_REVISION);
		break;
	case PACK_REVISION:
		/* the walk marks an object's pointer, then its revisions
		 * newest first */
		if (!pack_obj_get(p, a, &oldest))
			return ds_error_set(p->err, DS_ECORRUPT, "pack: %s "
			                    "marked before its object", name);
		if (b < oldest)
			rc = pack_obj_put(p, a, b);
		break;
	case PACK_TXN:
		rc = keyset_id_add(&p->txns, a, NULL, p->err);
		break;
	default:
		break;
	}
	if (rc == DS_ENOMEM)
		return ds_error_set(p->err, DS_ENOMEM, "pack: out of memory "
		                    "for the marks");
	return rc;
}

static int
pack_is_marked(struct pack *p, const char *name)
{
	uint64_t a = 0, b = 0, oldest;

	switch (pack_key(name, &a, &b)) {
	case PACK_POINTER:
		return pack_obj_get(p, a, &oldest);
	case PACK_REVISION:
		return pack_obj_get(p, a, &oldest) &&
		       oldest != PACK_NO_REVISION && b >= oldest;
	case PACK_TXN:
		return keyset_id_has(&p->txns, a);
	default:
		/* x.serial, x.oid, x.packed */
		return name[0] == 'x';
	}
}

/* Absolute path of database name in A. */
static int
pack_path(struct pack *p, const char *name, char *out, size_t outsz)
{
	char rel[DS_RELPATH_MAX];
	int rc;

	rc = ds_layout_name_to_path(p->layout, name, rel, sizeof(rel), p->err);
	if (rc != DS_OK)
		return rc;
	if ((size_t)snprintf(out, outsz, "%s/%s", p->a, rel) >= outsz)
		return ds_error_set(p->err, DS_EINVAL, "pack: path too long: "
		                    "%s/%s", p->a, rel);
	return DS_OK;
}

static int
pack_read(struct pack *p, const char *name, unsigned char **buf, size_t *len)
{
	char path[DS_PATH_MAX];
	int rc;

	*buf = NULL;
	rc = pack_path(p, name, path, sizeof(path));
	if (rc != DS_OK)
		return rc;
	return ds_file_read(path, 0, buf, len, p->err);
}

/* Replace database file `name` in A by buf: written and fsynced as
 * misc/pack.tmp, renamed over it, its directory fsynced. Never opens the
 * old file for writing. */
static int
pack_replace(struct pack *p, const char *name, const void *buf, size_t len)
{
	char tmp[DS_PATH_MAX], path[DS_PATH_MAX], *slash;
	int rc;

	if ((rc = storage_path(p->s, tmp, sizeof(tmp), PACK_TMP, p->err)) !=
	    DS_OK ||
	    (rc = pack_path(p, name, path, sizeof(path))) != DS_OK)
		return rc;
	rc = ds_io_write_file(tmp, buf, len, 0640, 0, p->s->use_sync, p->err);
	if (rc != DS_OK)
		return rc;
	rc = ds_io_rename(tmp, path, p->err);
	if (rc != DS_OK)
		return rc;
	if (!p->s->use_dirsync)
		return DS_OK;
	slash = strrchr(path, '/');
	*slash = '\0';
	return ds_io_fsync_dir(path, p->err);
}

static int
pack_todo_push(struct pack *p, ds_oid oid)
{
	if (p->ntodo == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 256;
		ds_oid *n = realloc(p->todo, ncap * sizeof(*n));
		if (n == NULL)
			return ds_error_set(p->err, DS_ENOMEM,
			                    "pack: out of memory");
		p->todo = n;
		p->cap = ncap;
	}
	p->todo[p->ntodo++] = oid;
	return DS_OK;
}

struct pack_ref_ctx {
	struct pack *p;
	const char *name;
};

static int
pack_ref(const unsigned char *oid, size_t len, void *ctx, ds_error *err)
{
	struct pack_ref_ctx *c = ctx;
	uint64_t oldest;

	if (len != 8)
		return ds_error_set(err, DS_ECORRUPT, "pack: %s refers to an "
		                    "oid of %zu bytes (8 expected)", c->name,
		                    len);
	/* an object already marked is not queued again (a popular object
	 * is referenced by many: the queue stays as small as the marks) */
	if (pack_obj_get(c->p, ds_get_u64(oid), &oldest))
		return DS_OK;
	return pack_todo_push(c->p, ds_get_u64(oid));
}

/* The [keepclass] option for a class name, or NULL. */
static const struct pack_keep *
pack_keep_find(const struct pack *p, const char *cls)
{
	for (size_t i = 0; i < p->nkeep; i++)
		if (strcmp(p->keep[i].cls, cls) == 0)
			return &p->keep[i];
	return NULL;
}

/* Mark object oid (its .c pointer, its current revision and those at or
 * after the threshold, or older ones its class's [keepclass] option
 * keeps, their transactions) and queue what those revisions refer to. */
static int
pack_mark_object(struct pack *p, ds_oid oid)
{
	char name[DS_NAME_MAX], tname[DS_NAME_MAX];
	unsigned char *buf = NULL;
	size_t len;
	const struct pack_keep *keep = NULL;
	ds_tid tid;
	int first = 1, have_class = 0, rc;

	ds_name_pointer(oid, name);
	if (pack_is_marked(p, name))
		return DS_OK;
	rc = pack_read(p, name, &buf, &len);
	if (rc == DS_ENOTFOUND) {
		/* a reference to an object that is not there: continuing
		 * could remove what only that object would keep */
		char o[17], m[DS_ERROR_MSG_MAX];
		ds_id_format(oid, o);
		snprintf(m, sizeof(m), "%s", p->err->msg);
		return ds_error_set(p->err, DS_ECORRUPT, "pack: object %s is "
		                    "referenced but has no .c pointer (%s)", o,
		                    m);
	}
	if (rc != DS_OK)
		return rc;
	rc = ds_pointer_decode(buf, len, name, &tid, p->err);
	free(buf);
	buf = NULL;
	if (rc != DS_OK)
		return rc;
	if ((rc = pack_mark(p, name)) != DS_OK)
		return rc;
	p->st->objects_kept++;
	for (;;) {
		ds_objrec rec;
		struct pack_ref_ctx rctx;

		ds_name_revision(oid, tid, name);
		rc = pack_read(p, name, &buf, &len);
		if (rc == DS_ENOTFOUND && !first && tid < p->last_pack)
			break; /* removed by an earlier pack */
		if (rc != DS_OK)
			goto out; /* missing recent revision: corruption, stop
			           * before anything is removed */
		rc = ds_objrec_decode(buf, len, name, &rec, p->err);
		if (rc != DS_OK)
			goto out;
		if (rec.oid != oid || rec.serial != tid) {
			rc = ds_error_set(p->err, DS_ECORRUPT, "pack: %s holds "
			                  "another oid or serial", name);
			goto out;
		}
		if (rec.pickle_len > 0) {
			rctx.p = p;
			rctx.name = name;
			rc = ds_refscan(rec.pickle, rec.pickle_len, pack_ref,
			                &rctx, p->err);
			if (rc != DS_OK) {
				char m[DS_ERROR_MSG_MAX];
				snprintf(m, sizeof(m), "%s", p->err->msg);
				ds_error_set(p->err, rc, "pack: %s (%s "
				             "revision): %s", name,
				             first ? "current" : "old", m);
				goto out;
			}
			/* the original reads the class from the newest
			 * revision it finds a name in */
			if (p->nkeep > 0 && !have_class) {
				char cls[1024];
				if (ds_classname_get(rec.pickle, rec.pickle_len,
				                     cls, sizeof(cls)) == DS_OK) {
					have_class = 1;
					keep = pack_keep_find(p, cls);
				}
			}
		}
		if ((rc = pack_mark(p, name)) != DS_OK)
			goto out;
		p->st->revisions_kept++;
		if (tid >= p->threshold || p->keep_ancient) {
			ds_name_transaction(tid, tname);
			if ((rc = pack_mark(p, tname)) != DS_OK)
				goto out;
		}
		tid = rec.prev_serial;
		free(buf);
		buf = NULL;
		/* older than the threshold: gone, unless its class keeps it
		 * (forever, or while newer than its limit) */
		if (tid < p->threshold && (keep == NULL || tid < keep->limit))
			break;
		first = 0;
	}
	rc = DS_OK;
out:
	free(buf);
	return rc;
}

static int
pack_mark_reachable(struct pack *p, ds_oid oid)
{
	int rc;

	if ((rc = pack_todo_push(p, oid)) != DS_OK)
		return rc;
	while (p->ntodo > 0) {
		oid = p->todo[--p->ntodo];
		if ((rc = pack_mark_object(p, oid)) != DS_OK)
			return rc;
	}
	return DS_OK;
}

static int
pack_read_x(struct pack *p, const char *name, uint64_t *v)
{
	unsigned char *buf;
	size_t len;
	int rc;

	rc = pack_read(p, name, &buf, &len);
	if (rc != DS_OK)
		return rc;
	rc = ds_xfile_decode(buf, len, name, v, p->err);
	free(buf);
	return rc;
}

/* Every transaction at or after the threshold, and the two newest, with
 * the objects they wrote (kept even when unreachable, as the original
 * does for replication and backup). */
static int
pack_mark_recent(struct pack *p)
{
	char name[DS_NAME_MAX], cname[DS_NAME_MAX];
	unsigned char *buf = NULL;
	size_t len, i;
	ds_tid tid;
	ds_txnrec rec;
	int counter = 0, rc;

	if ((rc = pack_read_x(p, "x.serial", &tid)) != DS_OK)
		return rc;
	if (p->min_pack_time == 0)
		counter = 2;
	while (tid >= p->threshold || counter < 2) {
		counter++;
		ds_name_transaction(tid, name);
		if ((rc = pack_mark(p, name)) != DS_OK)
			return rc;
		rc = pack_read(p, name, &buf, &len);
		if (rc == DS_ENOTFOUND && tid < p->last_pack)
			return DS_OK;
		if (rc != DS_OK)
			return rc;
		rc = ds_txnrec_decode(buf, len, name, &rec, p->err);
		if (rc != DS_OK)
			goto out;
		if (rec.tid != tid) {
			rc = ds_error_set(p->err, DS_ECORRUPT, "pack: %s holds "
			                  "another tid", name);
			goto out;
		}
		for (i = 0; i < rec.noids; i++) {
			ds_oid oid = ds_get_u64(rec.oids + 8 * i);
			char path[DS_PATH_MAX];
			struct stat sb;

			ds_name_pointer(oid, cname);
			if ((rc = pack_path(p, cname, path, sizeof(path))) !=
			    DS_OK)
				goto out;
			if (lstat(path, &sb) != 0)
				continue; /* no such object any more: fine */
			if ((rc = pack_mark_reachable(p, oid)) != DS_OK)
				goto out;
		}
		tid = rec.prev_tid;
		free(buf);
		buf = NULL;
		if (tid == 0)
			break;
	}
	rc = DS_OK;
out:
	free(buf);
	return rc;
}

/* Back pointers: each kept transaction points to the previous kept one.
 * Walks the chain from x.serial as the original does. */
static int
pack_relink(struct pack *p)
{
	char name[DS_NAME_MAX], prev_name[DS_NAME_MAX] = "";
	unsigned char *buf = NULL, *pbuf = NULL;
	size_t len, plen = 0;
	ds_tid tid, prev_ptr = 0;
	ds_txnrec rec;
	int rc;

	if ((rc = pack_read_x(p, "x.serial", &tid)) != DS_OK)
		return rc;
	for (;;) {
		ds_name_transaction(tid, name);
		rc = pack_read(p, name, &buf, &len);
		if (rc == DS_ENOTFOUND && tid < p->last_pack)
			break;
		if (rc != DS_OK)
			goto out;
		rc = ds_txnrec_decode(buf, len, name, &rec, p->err);
		if (rc != DS_OK)
			goto out;
		if (pack_is_marked(p, name)) {
			if (pbuf != NULL && prev_ptr != tid) {
				/* the kept transaction after this one skips
				 * removed ones: point it here */
				ds_put_u64(pbuf + 24, tid);
				rc = pack_replace(p, prev_name, pbuf, plen);
				if (rc != DS_OK)
					goto out;
				p->st->relinked++;
			}
			free(pbuf);
			pbuf = buf;
			plen = len;
			buf = NULL;
			memcpy(prev_name, name, sizeof(name));
			prev_ptr = rec.prev_tid;
		}
		tid = rec.prev_tid;
		free(buf);
		buf = NULL;
		if (tid == 0)
			break;
	}
	rc = DS_OK;
out:
	free(buf);
	free(pbuf);
	return rc;
}

/* ---- the sweep ---- */

enum pack_pass {
	PASS_POINTERS = 1, /* .c pointers, stray files, old leftovers, dirs */
	PASS_REVISIONS,    /* revisions and x.* files */
	PASS_TRANSACTIONS, /* transaction files */
};

/* Which pass handles the file at relpath (relative to A). */
static int
pack_pass_of(struct pack *p, const char *rel, char *name, size_t namesz)
{
	ds_error e;

	if (ds_layout_path_to_name(p->layout, rel, name, namesz, &e) != DS_OK) {
		name[0] = '\0';
		return PASS_POINTERS; /* not a database file */
	}
	if (name[0] == 't')
		return PASS_TRANSACTIONS;
	if (name[0] == 'o' && strcmp(strchr(name, '.'), ".c") == 0)
		return PASS_POINTERS;
	return PASS_REVISIONS;
}

static int
pack_chmod(struct pack *p, const char *path, mode_t mode)
{
	return ds_io_chmod(path, mode, p->err);
}

static int
pack_remove(struct pack *p, const char *path, mode_t mode)
{
	char to[DS_PATH_MAX];
	int rc;

	/* the original first clears every mark (owner-execute) bit */
	if (mode & S_IXUSR) {
		rc = pack_chmod(p, path, 0640);
		if (rc != DS_OK)
			return rc;
	}
	p->st->files_removed++;
	if (p->delay_delete <= 0)
		return ds_io_unlink(path, p->err);
	if ((size_t)snprintf(to, sizeof(to), "%s-%lld-deleted", path,
	                     p->now) >= sizeof(to))
		return ds_error_set(p->err, DS_EINVAL, "pack: path too long: "
		                    "%s", path);
	return ds_io_rename(path, to, p->err);
}

struct pack_ent {
	char *name;
	unsigned char type;     /* d_type: DT_DIR, DT_REG, ... DT_UNKNOWN */
};

static int
pack_ent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct pack_ent *)a)->name,
	              ((const struct pack_ent *)b)->name);
}

/* The entries of directory fd (consumed), sorted by name. */
static int
pack_list_dir(struct pack *p, int fd, const char *abs, struct pack_ent **out,
              size_t *count)
{
	struct pack_ent *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	int rc = DS_OK;

	*out = NULL;
	*count = 0;
	d = fdopendir(fd);
	if (d == NULL) {
		rc = ds_error_sys(p->err, errno, "pack: open directory", abs);
		close(fd);
		return rc;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct pack_ent *nv = realloc(v, ncap * sizeof(*nv));
			if (nv == NULL)
				goto nomem;
			v = nv;
			cap = ncap;
		}
		if ((v[n].name = strdup(de->d_name)) == NULL)
			goto nomem;
		v[n].type = de->d_type;
		n++;
	}
	closedir(d);
	/* name order: an object's revisions oldest first */
	if (n > 1)
		qsort(v, n, sizeof(*v), pack_ent_cmp);
	*out = v;
	*count = n;
	return DS_OK;
nomem:
	closedir(d);
	while (n > 0)
		free(v[--n].name);
	free(v);
	return ds_error_set(p->err, DS_ENOMEM, "pack: out of memory");
}

/* Sweep directory abs (rel: relative to A, "" for A itself; fd: open on
 * it, consumed) for one pass. Only the files of this pass are looked at
 * (a stat relative to the directory), so each pass costs a directory
 * read per directory and a stat per file of its own kind. The
 * transactions' subtrees (top-level directories "t...") are walked by
 * the transaction pass alone, the others by the first two passes alone;
 * `house` says this walk also does the housekeeping (leftovers, stray
 * files, empty directories): the pointer pass, and the transaction pass
 * in the transactions' subtrees. */
static int
pack_sweep_dir(struct pack *p, int fd, const char *abs, const char *rel,
               int pass, int house)
{
	struct pack_ent *ents = NULL;
	size_t n = 0, i;
	int rc, dfd;

	/* the listing consumes fd; a duplicate for the *at() calls */
	dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (dfd < 0) {
		rc = ds_error_sys(p->err, errno, "pack: dup", abs);
		close(fd);
		return rc;
	}
	rc = pack_list_dir(p, fd, abs, &ents, &n);
	fd = dfd;
	if (rc != DS_OK)
		goto out;
	if (n == 0 && house && rel[0] != '\0') {
		rc = ds_io_rmdir(abs, p->err);
		goto out;
	}
	for (i = 0; i < n; i++) {
		char cabs[DS_PATH_MAX], crel[DS_PATH_MAX];
		char name[DS_NAME_MAX];
		const char *base = ents[i].name;
		struct stat sb;
		long long when;
		int fpass, cfd;

		if ((size_t)snprintf(cabs, sizeof(cabs), "%s/%s", abs, base) >=
		    sizeof(cabs) ||
		    (size_t)snprintf(crel, sizeof(crel), "%s%s%s", rel,
		                     rel[0] ? "/" : "", base) >=
		    sizeof(crel)) {
			rc = ds_error_set(p->err, DS_EINVAL, "pack: path too "
			                  "long: %s/%s", abs, base);
			goto out;
		}
		if (ds_layout_leftover(base, &when) != DS_LEFTOVER_NONE) {
			if (!house)
				continue;
			if (when + p->delay_delete < p->now) {
				rc = ds_io_unlink(cabs, p->err);
				p->st->leftovers_purged++;
			} else if (fstatat(fd, base, &sb,
			                   AT_SYMLINK_NOFOLLOW) != 0) {
				rc = ds_error_sys(p->err, errno, "pack: stat",
				                  cabs);
			} else if (S_ISREG(sb.st_mode) &&
			           (sb.st_mode & S_IXUSR)) {
				rc = pack_chmod(p, cabs, 0640);
			}
			if (rc != DS_OK)
				goto out;
			continue;
		}
		if (ents[i].type == DT_DIR ||
		    (ents[i].type == DT_UNKNOWN &&
		     fstatat(fd, base, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
		     S_ISDIR(sb.st_mode))) {
			int chouse = house;

			if (rel[0] == '\0') {
				/* a top-level subtree: transactions or not */
				int tt = base[0] == 't';
				if (tt != (pass == PASS_TRANSACTIONS))
					continue;
				chouse = house || tt;
			}
			cfd = openat(fd, base, O_RDONLY | O_DIRECTORY |
			             O_NOFOLLOW | O_CLOEXEC);
			if (cfd < 0) {
				rc = ds_error_sys(p->err, errno, "pack: open "
				                  "directory", cabs);
				goto out;
			}
			rc = pack_sweep_dir(p, cfd, cabs, crel, pass, chouse);
			if (rc != DS_OK)
				goto out;
			continue;
		}
		fpass = pack_pass_of(p, crel, name, sizeof(name));
		if (fpass != pass && !(house && name[0] == '\0'))
			continue;
		if (fstatat(fd, base, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
			rc = ds_error_sys(p->err, errno, "pack: stat", cabs);
			goto out;
		}
		if (!S_ISREG(sb.st_mode)) {
			/* a symlink (or stranger) where a database file
			 * belongs: chmod would follow it out of the storage */
			if (name[0] != '\0' && pack_is_marked(p, name)) {
				rc = ds_error_set(p->err, DS_ECORRUPT, "pack: "
				                  "%s is not a regular file", cabs);
				goto out;
			}
			rc = pack_remove(p, cabs, 0);
		} else if (name[0] != '\0' && pack_is_marked(p, name)) {
			p->st->files_kept++;
			if ((sb.st_mode & 07777) != 0740)
				rc = pack_chmod(p, cabs, 0740);
		} else {
			rc = pack_remove(p, cabs, sb.st_mode);
		}
		if (rc != DS_OK)
			goto out;
	}
out:
	if (fd >= 0)
		close(fd);
	for (i = 0; i < n; i++)
		free(ents[i].name);
	free(ents);
	return rc;
}

/* Sweep A for one pass. */
static int
pack_sweep(struct pack *p, int pass)
{
	int fd = open(p->a, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return ds_error_sys(p->err, errno, "pack: open directory",
		                    p->a);
	return pack_sweep_dir(p, fd, p->a, "", pass, pass == PASS_POINTERS);
}

/* ---- prefetch ---- */

/* A pack reads every directory of A, the inode of every file, and the
 * content of the pointers, revisions and transactions it follows; on a
 * cold cache each of those is a disk read, and the walk below would wait
 * for them one at a time. Before marking, PACK_PREFETCH_THREADS threads
 * walk A together, opening each file (which reads its inode) and asking
 * the kernel to read its content ahead (POSIX_FADV_WILLNEED): the disk
 * gets many requests at once, and the mark and the sweeps then find
 * their data in the page cache. Read-only, and only a hint: a failure
 * here is ignored (the real walk reports what matters). */
#define PACK_PREFETCH_THREADS 16

struct pack_prefetch {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char **stack;            /* directories still to walk */
	size_t n, cap;
	int busy;                /* threads walking a directory */
	int failed;              /* out of memory: give up (a hint only) */
};

static void
pack_prefetch_push(struct pack_prefetch *q, const char *dir, const char *name)
{
	size_t len = strlen(dir) + strlen(name) + 2;
	char *path = malloc(len);

	if (path == NULL) {
		q->failed = 1;
		return;
	}
	snprintf(path, len, "%s/%s", dir, name);
	pthread_mutex_lock(&q->mu);
	if (q->n == q->cap) {
		size_t ncap = q->cap ? 2 * q->cap : 256;
		char **ns = realloc(q->stack, ncap * sizeof(*ns));
		if (ns == NULL) {
			q->failed = 1;
			pthread_mutex_unlock(&q->mu);
			free(path);
			return;
		}
		q->stack = ns;
		q->cap = ncap;
	}
	q->stack[q->n++] = path;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

static void
pack_prefetch_dir(struct pack_prefetch *q, const char *dir)
{
	struct dirent *de;
	DIR *d;
	int dfd;

	d = opendir(dir);
	if (d == NULL)
		return;
	dfd = dirfd(d);
	while ((de = readdir(d)) != NULL && !q->failed) {
		long long when;
		int fd;

		if (de->d_name[0] == '.' ||
		    ds_layout_leftover(de->d_name, &when) != DS_LEFTOVER_NONE)
			continue;
		if (de->d_type == DT_DIR) {
			pack_prefetch_push(q, dir, de->d_name);
			continue;
		}
		if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
			continue;
		fd = openat(dfd, de->d_name, O_RDONLY | O_NOFOLLOW |
		            O_CLOEXEC | O_NONBLOCK);
		if (fd < 0)
			continue;
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
		close(fd);
	}
	closedir(d);
}

static void *
pack_prefetch_thread(void *arg)
{
	struct pack_prefetch *q = arg;
	char *dir;

	pthread_mutex_lock(&q->mu);
	for (;;) {
		while (q->n == 0 && q->busy > 0 && !q->failed)
			pthread_cond_wait(&q->cv, &q->mu);
		if (q->n == 0 || q->failed)
			break;
		dir = q->stack[--q->n];
		q->busy++;
		pthread_mutex_unlock(&q->mu);
		pack_prefetch_dir(q, dir);
		free(dir);
		pthread_mutex_lock(&q->mu);
		q->busy--;
		if (q->busy == 0 && q->n == 0)
			pthread_cond_broadcast(&q->cv);
	}
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

static void
pack_prefetch(struct pack *p)
{
	struct pack_prefetch q;
	pthread_t t[PACK_PREFETCH_THREADS];
	int i, started = 0;

	memset(&q, 0, sizeof(q));
	pthread_mutex_init(&q.mu, NULL);
	pthread_cond_init(&q.cv, NULL);
	q.stack = malloc(sizeof(*q.stack));
	if (q.stack == NULL || (q.stack[0] = strdup(p->a)) == NULL)
		goto out;
	q.n = q.cap = 1;
	for (i = 0; i < PACK_PREFETCH_THREADS; i++) {
		if (pthread_create(&t[i], NULL, pack_prefetch_thread, &q) != 0)
			break;
		started++;
	}
	if (started == 0)
		pack_prefetch_thread(&q);
	for (i = 0; i < started; i++)
		pthread_join(t[i], NULL);
out:
	while (q.n > 0)
		free(q.stack[--q.n]);
	free(q.stack);
	pthread_cond_destroy(&q.cv);
	pthread_mutex_destroy(&q.mu);
}

/* Make the steps so far durable before the next one starts. */
static int
pack_barrier(struct pack *p)
{
	int fd, rc;

	if (!p->s->use_sync)
		return DS_OK;
	rc = ds_io_open(p->a, O_RDONLY | O_DIRECTORY, 0, &fd, p->err);
	if (rc != DS_OK)
		return rc;
	rc = ds_io_syncfs(fd, p->a, p->err);
	close(fd);
	return rc;
}

/* One [keepclass] option, read as the original reads it: "forever",
 * "extra N" (N as int() reads it, below 0 counting as 0), anything else
 * logged and ignored. */
static int
pack_keep_add(const char *key, const char *value, void *ctx)
{
	struct pack *p = ctx;
	struct pack_keep *n, *k;
	long days;

	if (strcmp(value, "forever") == 0) {
		days = -1;
	} else if (strncmp(value, "extra ", 6) == 0) {
		if (ds_settings_python_int(value + 6, &days) != 0)
			return ds_error_set(p->err, DS_ECONFIG, "pack %s: "
			                    "config/settings: [keepclass] %s: "
			                    "'%s' is not a number of days",
			                    p->s->home, key, value + 6);
		if (days < 0)
			days = 0;
	} else {
		pack_log(p, DS_LOG_WARN, "config/settings: bad [keepclass] "
		         "%s: '%s' (neither 'forever' nor 'extra DAYS'): "
		         "ignored, as the original does", key, value);
		return DS_OK;
	}
	n = realloc(p->keep, (p->nkeep + 1) * sizeof(*n));
	if (n == NULL)
		return ds_error_set(p->err, DS_ENOMEM, "pack: out of memory");
	p->keep = n;
	k = &p->keep[p->nkeep];
	memset(k, 0, sizeof(*k));
	if ((k->cls = strdup(key)) == NULL)
		return ds_error_set(p->err, DS_ENOMEM, "pack: out of memory");
	k->days = days;
	p->nkeep++;
	return DS_OK;
}

/* Each [keepclass] option's limit once the threshold is known: the
 * original's keep_extra.expired() compares with the tid of the
 * threshold's time less DAYS days. */
static void
pack_keep_limits(struct pack *p)
{
	for (size_t i = 0; i < p->nkeep; i++) {
		struct pack_keep *k = &p->keep[i];

		k->limit = k->days < 0 ? 0 :
		           ds_tid_from_time(ds_tid_to_time(p->threshold) -
		                            (double)k->days * 86400.0);
		pack_log(p, DS_LOG_VERBOSE, "[keepclass] %s: history kept %s",
		         k->cls, k->days < 0 ? "forever" : "longer");
	}
}

static int
pack_keep_policy(struct pack *p)
{
	char path[DS_PATH_MAX];
	ds_settings *set = NULL;
	const char *v;
	int rc;

	p->keep_ancient = 1;
	rc = storage_path(p->s, path, sizeof(path), "config/settings", p->err);
	if (rc != DS_OK)
		return rc;
	rc = ds_settings_load(path, &set, p->err);
	if (rc != DS_OK)
		return rc;
	if ((rc = ds_settings_foreach(set, "keepclass", pack_keep_add, p)) !=
	    DS_OK) {
		ds_settings_free(set);
		return rc;
	}
	v = ds_settings_get(set, "storage", "keep_policy");
	/* the original: "undoable" drops ancient transaction files; anything
	 * else (absent, "detailed", a typo) keeps them */
	if (v != NULL && strcmp(v, "undoable") == 0)
		p->keep_ancient = 0;
	ds_settings_free(set);
	return DS_OK;
}

/* Write x.packed (first: from now on a missing file older than it is a
 * pack's doing, for readers, check and the walks above). */
static int
pack_write_packed(struct pack *p)
{
	unsigned char b[8];
	int rc;

	ds_put_u64(b, p->last_pack);
	rc = pack_replace(p, "x.packed", b, sizeof(b));
	if (rc != DS_OK)
		return rc;
	pthread_mutex_lock(&p->s->mu);
	p->s->last_pack = p->last_pack;
	pthread_mutex_unlock(&p->s->mu);
	return DS_OK;
}

/* Replication slots: never pack past the oldest transaction a known
 * replica holds (its next request names it; the master refuses a replica
 * whose tid is older than x.packed). Read before x.packed is written: a
 * replica recorded after this point was admitted against the old
 * x.packed, and its next request is checked against the new one. */
static int
pack_hold_for_slots(struct pack *p)
{
	struct ds_slot *sl = NULL;
	size_t n = 0, i;
	long long now = (long long)time(NULL);
	double max_age = p->opts != NULL ? p->opts->slot_max_age : 0;
	int rc;

	if (p->opts != NULL && p->opts->ignore_replicas)
		return DS_OK;
	rc = ds_slot_list(p->s->home, &sl, &n, p->err);
	if (rc != DS_OK) {
		char m[DS_ERROR_MSG_MAX];
		snprintf(m, sizeof(m), "%s", p->err->msg);
		return ds_error_set(p->err, rc, "pack %s: %s (or pack with "
		                    "--ignore-replicas)", p->s->home, m);
	}
	for (i = 0; i < n; i++) {
		char hex[17];

		ds_id_format(sl[i].tid, hex);
		if (max_age > 0 && (double)(now - sl[i].seen) > max_age) {
			p->st->slots_expired++;
			pack_log(p, DS_LOG_INFO, "replication slot '%s' (at %s) "
			         "was last seen %lld s ago, more than the slot "
			         "maximum age: it does not hold the pack back",
			         sl[i].name, hex, now - sl[i].seen);
			continue;
		}
		if (sl[i].tid < p->threshold) {
			if (p->st->held_by[0] == '\0')
				p->st->held_from = p->threshold;
			p->threshold = sl[i].tid;
			snprintf(p->st->held_by, sizeof(p->st->held_by), "%s",
			         sl[i].name);
		}
	}
	ds_slot_list_free(sl);
	return DS_OK;
}

static int
pack_run(struct pack *p, ds_tid before)
{
	char path[DS_PATH_MAX];
	struct timespec ts;
	double now;
	ds_tid upper, last;
	struct stat sb;
	int rc;

	/* the clock to the nanosecond, as the original's time.time(): whole
	 * seconds would move a pack time taken from a transaction of this
	 * very second back to the start of the second */
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	if (p->opts != NULL && p->opts->now > 0)
		now = p->opts->now;

	p->threshold = before;
	upper = ds_tid_from_time(now - (double)p->min_pack_time);
	if (p->threshold > upper) {
		pack_log(p, DS_LOG_VERBOSE, "pack time moved back to now "
		         "- min_pack_time (%ld s)", p->min_pack_time);
		p->threshold = upper;
	}
	last = ds_storage_last_tid(p->s);
	if (p->threshold > last && p->min_pack_time > 0) {
		pack_log(p, DS_LOG_VERBOSE, "pack time moved back to the last "
		         "transaction");
		p->threshold = last;
	}
	if ((rc = pack_hold_for_slots(p)) != DS_OK)
		return rc;
	p->last_pack = ds_storage_last_pack(p->s);
	if (p->threshold > p->last_pack) {
		p->last_pack = p->threshold;
		if ((rc = pack_write_packed(p)) != DS_OK)
			return rc;
	}
	p->st->threshold = p->threshold;
	p->st->packed = p->last_pack;
	pack_keep_limits(p);

	/* an empty storage (no root object) is not packed */
	if ((rc = pack_path(p, "o0000000000000000.c", path, sizeof(path))) !=
	    DS_OK)
		return rc;
	if (lstat(path, &sb) != 0) {
		p->st->empty = 1;
		pack_log(p, DS_LOG_VERBOSE, "no root object: nothing to pack");
		return DS_OK;
	}
	if ((rc = pack_obj_init(p)) != DS_OK)
		return rc;
	pack_log(p, DS_LOG_VERBOSE, "reading A/ ahead");
	pack_prefetch(p);
	pack_log(p, DS_LOG_VERBOSE, "marking objects reachable from the root");
	if ((rc = pack_mark_reachable(p, 0)) != DS_OK)
		return rc;
	pack_log(p, DS_LOG_VERBOSE, "marking recent transactions");
	if ((rc = pack_mark_recent(p)) != DS_OK)
		return rc;
	if ((rc = pack_mark(p, "x.serial")) != DS_OK ||
	    (rc = pack_mark(p, "x.oid")) != DS_OK ||
	    (rc = pack_mark(p, "x.packed")) != DS_OK)
		return rc;

	p->now = (long long)time(NULL);
	pack_log(p, DS_LOG_VERBOSE, "removing unreachable objects");
	if ((rc = pack_barrier(p)) != DS_OK ||
	    (rc = pack_sweep(p, PASS_POINTERS)) != DS_OK ||
	    (rc = pack_barrier(p)) != DS_OK)
		return rc;
	pack_log(p, DS_LOG_VERBOSE, "removing old revisions");
	if ((rc = pack_sweep(p, PASS_REVISIONS)) != DS_OK ||
	    (rc = pack_barrier(p)) != DS_OK)
		return rc;
	pack_log(p, DS_LOG_VERBOSE, "relinking kept transactions");
	if ((rc = pack_relink(p)) != DS_OK ||
	    (rc = pack_barrier(p)) != DS_OK)
		return rc;
	pack_log(p, DS_LOG_VERBOSE, "removing old transactions");
	if ((rc = pack_sweep(p, PASS_TRANSACTIONS)) != DS_OK)
		return rc;
	return pack_barrier(p);
}

int
ds_storage_pack(ds_storage *s, ds_tid before, const struct ds_pack_opts *opts,
                struct ds_pack_stats *stats, ds_error *err)
{
	struct ds_pack_stats dummy;
	struct pack p;
	char tmp[DS_PATH_MAX];
	ds_error lerr;
	int rc, rc2;

	if (stats == NULL)
		stats = &dummy;
	memset(stats, 0, sizeof(*stats));
	memset(&p, 0, sizeof(p));
	p.s = s;
	p.opts = opts;
	p.st = stats;
	p.err = err;
	p.layout = s->cfg.layout;
	p.min_pack_time = s->cfg.min_pack_time;
	p.delay_delete = s->cfg.delay_delete;
	if (s->readonly)
		return ds_error_set(err, DS_ESTATE, "pack %s: storage opened "
		                    "read-only", s->home);
	if (strcmp(s->cfg.classname, "Full") != 0)
		return ds_error_set(err, DS_ECONFIG, "pack %s: not a Full "
		                    "storage", s->home);
	if ((rc = storage_path(s, p.a, sizeof(p.a), "A", err)) != DS_OK ||
	    (rc = storage_path(s, tmp, sizeof(tmp), PACK_TMP, err)) != DS_OK)
		return rc;
	if ((rc = pack_keep_policy(&p)) != DS_OK)
		return rc;
	/* A is ours (read and swept) while the engine flushes into B */
	rc = ds_storage_snapshot_enter(s, "packing", err);
	if (rc != DS_OK)
		return rc;
	/* a temporary file a killed pack left */
	if (unlink(tmp) != 0 && errno != ENOENT) {
		rc = ds_error_sys(err, errno, "pack: unlink", tmp);
		goto out;
	}
	rc = pack_run(&p, before);
out:
	ds_error_clear(&lerr);
	rc2 = ds_storage_snapshot_leave(s, "packing", &lerr);
	if (rc == DS_OK && rc2 != DS_OK) {
		rc = rc2;
		if (err != NULL)
			*err = lerr;
	}
	keyset_map_free(&p.objects);
	free(p.kept_bits);
	free(p.oldest);
	keyset_ids_free(&p.txns);
	free(p.todo);
	for (size_t i = 0; i < p.nkeep; i++)
		free(p.keep[i].cls);
	free(p.keep);
	return rc;
}
