/*
 * check.c - the checkds equivalent (ds_check) and the replica comparison
 * (ds_check_compare).
 *
 * Both start from a listing of every file under A/, each mapped back to
 * its database name through the storage's layout, sorted by name so that
 * the checks can look files up without touching the disk again and can
 * mark what they accounted for. What is left unmarked at the end is
 * reported: pack leftovers (`*-<unixtime>-deleted`) as expected, anything
 * else as an unexpected file.
 *
 * Checking never modifies the storage (the original's mark context used
 * the owner-execute bit; we mark in memory).
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "internal.h"

enum check_kind {
	CK_X,         /* x.serial, x.oid, x.packed */
	CK_TXN,       /* t<6>.<10>: a = tid */
	CK_PTR,       /* o<oid>.c: a = oid */
	CK_REV,       /* o<oid>.<serial>: a = oid, b = serial */
	CK_LEFTOVER,  /* a pack's *-<unixtime>-deleted */
	CK_BAD,       /* anything else */
};

struct check_file {
	char *rel;              /* relative to A/ */
	char name[DS_NAME_MAX]; /* "" for LEFTOVER and BAD */
	int kind;
	uint64_t a, b;
	mode_t mode;
	off_t size;
	int seen;
	int broken;             /* PTR: its revision chain was reported */
};

struct check_tree {
	char *home;
	char adir[PATH_MAX];
	ds_config cfg;
	struct check_file *f;
	size_t n, cap;
	size_t named;           /* f[0..named) sorted by name */
};

struct check_ctx {
	const struct ds_check_opts *opts;
	struct ds_check_stats *st;
	const char *home;
	/* Where the walk of the history from x.serial stopped at a missing
	 * or unreadable transaction file (0: it did not). Every transaction
	 * and revision older than that is cut off from the history: one
	 * problem (the break) and its consequences, counted and listed at
	 * -v, not hundreds of problems. */
	ds_tid break_tid;
	char break_rel[DS_RELPATH_MAX];
	unsigned long cut_txns, cut_revs;
};

/* opts may be NULL */
#define check_log(opts, ...) \
	ds_log((opts) ? (opts)->log : NULL, (opts) ? (opts)->log_ctx : NULL, \
	       __VA_ARGS__)

/* A file older than x.packed that nothing refers to any more: what a
 * pack killed part way had yet to remove. Not a problem. */
static void
check_interrupted_pack(struct check_ctx *c, const struct ds_check_opts *opts,
                       const struct check_file *f);

static void
check_problem(struct check_ctx *c, const char *kind, const char *rel,
              const char *detail)
{
	c->st->problems++;
	if (detail != NULL && detail[0] != '\0')
		check_log(c->opts, DS_LOG_WARN, "%s: A/%s (%s)", kind, rel, detail);
	else
		check_log(c->opts, DS_LOG_WARN, "%s: A/%s", kind, rel);
}

/* The history broke at tid (file rel): later files older than it are
 * its consequences (check_cut_off). */
static void
check_break(struct check_ctx *c, ds_tid tid, const char *rel)
{
	c->break_tid = tid;
	snprintf(c->break_rel, sizeof(c->break_rel), "%s", rel);
}

/* Is a file of transaction tid (a transaction file or a revision it
 * wrote, rel) cut off by the broken history? Then it is listed at -v and
 * 1 returned; else 0 (the caller reports its problem). */
static int
check_cut_off(struct check_ctx *c, ds_tid tid, const char *what,
              const char *rel)
{
	if (c->break_tid == 0 || tid >= c->break_tid)
		return 0;
	check_log(c->opts, DS_LOG_VERBOSE, "%s: A/%s (behind the broken "
	          "history at A/%s)", what, rel, c->break_rel);
	return 1;
}

/* A problem with a path relative to the home (not under A/). */
static void
check_problem_home(struct check_ctx *c, const char *kind, const char *rel,
                   const char *detail)
{
	c->st->problems++;
	if (detail != NULL && detail[0] != '\0')
		check_log(c->opts, DS_LOG_WARN, "%s: %s (%s)", kind, rel, detail);
	else
		check_log(c->opts, DS_LOG_WARN, "%s: %s", kind, rel);
}

/* journal/ and misc/: what the engine would refuse. The journal is judged
 * by journal_scan, the very rules recovery applies at open, so that what
 * check passes every writing open accepts. A pending journal/replica.tar
 * is reported too: A does not hold that increment yet (the next writing
 * open applies it, or refuses it if it is malformed), so what was checked
 * is not the storage's whole history. In misc/, the lock files, the
 * snapshot marker and the last increment must be regular files, or the
 * engine cannot open, lock or rename them. */
static void
check_journal_misc(struct check_ctx *c, const char *home)
{
	static const char *const misc[] = {"misc/lock", "misc/sublock",
	                                   "misc/snapshot",
	                                   "misc/replica.previous"};
	struct journal_scan js;
	char path[PATH_MAX], why[DS_ERROR_MSG_MAX];
	struct stat sb;
	ds_error e;

	ds_error_clear(&e);
	if (journal_scan(home, &js, &e) != DS_OK)
		check_problem_home(c, "journal refused by the engine (every "
		                   "writing or reading open fails)", "journal",
		                   e.msg);
	else if (js.replica_tar)
		check_problem_home(c, "replication increment committed but not "
		                   "applied", "journal/replica.tar",
		                   "A does not hold it yet; the next ds replica "
		                   "or writing open applies it, or refuses it if "
		                   "it is malformed");
	for (size_t i = 0; i < sizeof(misc) / sizeof(misc[0]); i++) {
		ds_error_clear(&e);
		if (ds_path_join(path, sizeof(path), home, misc[i], &e) != DS_OK) {
			check_problem_home(c, "unusable file", misc[i], e.msg);
			continue;
		}
		if (lstat(path, &sb) != 0) {
			if (errno != ENOENT) {
				snprintf(why, sizeof(why), "%s", strerror(errno));
				check_problem_home(c, "unusable file", misc[i], why);
			}
			continue;
		}
		if (!S_ISREG(sb.st_mode))
			check_problem_home(c, "unusable file", misc[i],
			                   S_ISLNK(sb.st_mode) ? "is a symlink" :
			                   "not a regular file");
	}
}

/* ---- listing A/ ---- */

static int
check_is_leftover(const char *rel)
{
	const char *base = strrchr(rel, '/');
	const char *p;
	size_t n;

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

/* Classify a valid database name and extract its ids. */
static int
check_classify(const char *name, uint64_t *a, uint64_t *b)
{
	char hex[17];

	if (name[0] == 'x')
		return CK_X;
	if (name[0] == 't') {
		/* t + 6 hex + . + 10 hex */
		memcpy(hex, name + 1, 6);
		memcpy(hex + 6, name + 8, 10);
		hex[16] = '\0';
		if (ds_id_parse(hex, a) != DS_OK)
			return CK_BAD;
		return CK_TXN;
	}
	memcpy(hex, name + 1, 16);
	hex[16] = '\0';
	if (ds_id_parse(hex, a) != DS_OK)
		return CK_BAD;
	if (strcmp(name + 17, ".c") == 0)
		return CK_PTR;
	if (ds_id_parse(name + 18, b) != DS_OK)
		return CK_BAD;
	return CK_REV;
}

static int
check_add(struct check_tree *t, const char *rel, const struct stat *sb,
          ds_error *err)
{
	struct check_file *f;

	if (t->n == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 1024;
		struct check_file *nf = realloc(t->f, ncap * sizeof(*nf));
		if (nf == NULL)
			return ds_error_set(err, DS_ENOMEM, "check: out of memory");
		t->f = nf;
		t->cap = ncap;
	}
	f = &t->f[t->n];
	memset(f, 0, sizeof(*f));
	if ((f->rel = strdup(rel)) == NULL)
		return ds_error_set(err, DS_ENOMEM, "check: out of memory");
	t->n++;
	f->mode = sb->st_mode;
	f->size = sb->st_size;
	if (!S_ISREG(sb->st_mode)) {
		f->kind = CK_BAD;
	} else if (ds_layout_path_to_name(t->cfg.layout, rel, f->name,
	                                  sizeof(f->name), NULL) == DS_OK) {
		f->kind = check_classify(f->name, &f->a, &f->b);
		if (f->kind == CK_BAD)
			f->name[0] = '\0';
	} else {
		f->name[0] = '\0';
		f->kind = check_is_leftover(rel) ? CK_LEFTOVER : CK_BAD;
	}
	return DS_OK;
}

static int
check_scan(struct check_tree *t, const char *sub, ds_error *err)
{
	char dir[PATH_MAX], rel[PATH_MAX], full[PATH_MAX];
	DIR *d;
	struct dirent *de;
	int rc = DS_OK;

	if (sub[0] == '\0')
		snprintf(dir, sizeof(dir), "%s", t->adir);
	else if ((rc = ds_path_join(dir, sizeof(dir), t->adir, sub, err)) !=
	         DS_OK)
		return rc;
	if ((d = opendir(dir)) == NULL)
		return ds_error_sys(err, errno, "check: open directory", dir);
	while ((de = readdir(d)) != NULL) {
		struct stat sb;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (sub[0] == '\0')
			snprintf(rel, sizeof(rel), "%s", de->d_name);
		else if ((rc = ds_path_join(rel, sizeof(rel), sub, de->d_name,
		                            err)) != DS_OK)
			break;
		if ((rc = ds_path_join(full, sizeof(full), t->adir, rel, err)) !=
		    DS_OK)
			break;
		if (lstat(full, &sb) != 0) {
			rc = ds_error_sys(err, errno, "check: stat", full);
			break;
		}
		if (S_ISDIR(sb.st_mode))
			rc = check_scan(t, rel, err);
		else
			rc = check_add(t, rel, &sb, err);
		if (rc != DS_OK)
			break;
	}
	closedir(d);
	return rc;
}

static int
check_file_cmp(const void *a, const void *b)
{
	const struct check_file *x = a, *y = b;

	/* named files first, sorted by name; the rest by path */
	if ((x->name[0] == '\0') != (y->name[0] == '\0'))
		return x->name[0] == '\0' ? 1 : -1;
	if (x->name[0] != '\0')
		return strcmp(x->name, y->name);
	return strcmp(x->rel, y->rel);
}

static void
check_tree_free(struct check_tree *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->f[i].rel);
	free(t->f);
	free(t->home);
	memset(t, 0, sizeof(*t));
}

static int
check_tree_load(struct check_tree *t, const char *home, ds_error *err)
{
	int rc;

	memset(t, 0, sizeof(*t));
	if ((t->home = strdup(home)) == NULL)
		return ds_error_set(err, DS_ENOMEM, "check: out of memory");
	if ((rc = ds_path_join(t->adir, sizeof(t->adir), home, "A", err)) !=
	    DS_OK)
		return rc;
	if ((rc = ds_config_load(home, &t->cfg, err)) != DS_OK)
		return rc;
	if ((rc = check_scan(t, "", err)) != DS_OK)
		return rc;
	qsort(t->f, t->n, sizeof(*t->f), check_file_cmp);
	for (t->named = 0; t->named < t->n && t->f[t->named].name[0] != '\0';
	     t->named++)
		;
	return DS_OK;
}

static struct check_file *
check_find(struct check_tree *t, const char *name)
{
	size_t lo = 0, hi = t->named;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(t->f[mid].name, name);
		if (c == 0)
			return &t->f[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int
check_read(struct check_tree *t, const struct check_file *f,
           unsigned char **buf, size_t *len, ds_error *err)
{
	char path[PATH_MAX];
	int rc;

	if ((rc = ds_path_join(path, sizeof(path), t->adir, f->rel, err)) !=
	    DS_OK)
		return rc;
	return ds_file_read(path, 0, buf, len, err);
}

/* The path a name would have (for reporting files that are missing). */
static const char *
check_path_of(struct check_tree *t, const char *name, char *out, size_t sz)
{
	if (ds_layout_name_to_path(t->cfg.layout, name, out, sz, NULL) !=
	    DS_OK)
		snprintf(out, sz, "%s", name);
	return out;
}

/* Read an x.* file's value. Returns 0 when present and well formed. */
static int
check_xvalue(struct check_tree *t, const char *name, uint64_t *v,
             ds_error *err)
{
	struct check_file *f = check_find(t, name);
	unsigned char *buf = NULL;
	size_t len;
	int rc;

	*v = 0;
	if (f == NULL) {
		char p[DS_RELPATH_MAX];
		return ds_error_set(err, DS_ENOTFOUND, "root file A/%s is missing",
		                    check_path_of(t, name, p, sizeof(p)));
	}
	f->seen = 1;
	if ((rc = check_read(t, f, &buf, &len, err)) == DS_OK)
		rc = ds_xfile_decode(buf, len, f->rel, v, err);
	free(buf);
	return rc;
}

/* ---- ds_check ---- */

static int
check_u64_desc_find(const ds_tid *v, size_t n, ds_tid x)
{
	/* v is strictly decreasing (the chain) */
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid] == x)
			return 1;
		if (v[mid] > x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static int
check_history(struct check_ctx *c, struct check_tree *t, ds_tid serial,
              ds_tid packed, ds_tid **chain, size_t *nchain, ds_error *err)
{
	size_t cap = 0;
	ds_tid tid = serial;
	char name[DS_NAME_MAX], p[DS_RELPATH_MAX], e[DS_ERROR_MSG_MAX];

	*chain = NULL;
	*nchain = 0;
	while (tid != 0) {
		struct check_file *f;
		unsigned char *buf = NULL;
		size_t len;
		ds_txnrec rec;
		ds_error de;

		ds_name_transaction(tid, name);
		f = check_find(t, name);
		if (f == NULL) {
			if (tid >= packed) {
				check_path_of(t, name, p, sizeof(p));
				check_problem(c, "broken history: transaction file "
				              "missing", p, NULL);
				check_break(c, tid, p);
			}
			/* else: earlier transactions were lost to packing */
			break;
		}
		f->seen = 1;
		ds_error_clear(&de);
		if (check_read(t, f, &buf, &len, &de) != DS_OK ||
		    ds_txnrec_decode(buf, len, f->rel, &rec, &de) != DS_OK) {
			snprintf(e, sizeof(e), "%s", de.msg);
			check_problem(c, "bad transaction file", f->rel, e);
			check_break(c, tid, f->rel);
			free(buf);
			break;
		}
		if (rec.tid != tid) {
			free(buf);
			check_problem(c, "transaction file with an inconsistent "
			              "transaction id", f->rel, NULL);
			check_break(c, tid, f->rel);
			break;
		}
		c->st->transactions++;
		c->st->transaction_bytes += len;
		if (!rec.md5_present)
			c->st->transactions_no_md5++;
		if (*nchain == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			ds_tid *nc = realloc(*chain, ncap * sizeof(**chain));
			if (nc == NULL) {
				free(buf);
				return ds_error_set(err, DS_ENOMEM,
				                    "check: out of memory");
			}
			*chain = nc;
			cap = ncap;
		}
		(*chain)[(*nchain)++] = tid;
		/* A transaction later than the last pack keeps every file it
		 * wrote: its revisions and the objects' pointers must exist. */
		if (tid >= packed) {
			for (size_t i = 0; i < rec.noids; i++) {
				ds_oid oid = ds_get_u64(rec.oids + 8 * i);
				char rn[DS_NAME_MAX];

				ds_name_revision(oid, tid, rn);
				if (check_find(t, rn) == NULL)
					check_problem(c, "revision written by a "
					              "transaction is missing",
					              check_path_of(t, rn, p, sizeof(p)),
					              f->rel);
				ds_name_pointer(oid, rn);
				if (check_find(t, rn) == NULL)
					check_problem(c, "object without a .c pointer",
					              check_path_of(t, rn, p, sizeof(p)),
					              f->rel);
			}
		}
		if (rec.prev_tid >= tid) {
			free(buf);
			check_problem(c, "transaction file with a backwards "
			              "previous-transaction pointer", f->rel, NULL);
			break;
		}
		tid = rec.prev_tid;
		free(buf);
	}
	return DS_OK;
}

/* A problem in an object's revision chain: the object is marked, so that
 * revisions behind the break are not reported again as unreachable. */
static void
check_obj_problem(struct check_ctx *c, struct check_file *ptr,
                  const char *kind, const char *rel, const char *detail)
{
	ptr->broken = 1;
	check_problem(c, kind, rel, detail);
}

static void
check_object(struct check_ctx *c, struct check_tree *t, struct check_file *ptr,
             ds_tid packed, const ds_tid *chain, size_t nchain)
{
	unsigned char *buf = NULL;
	size_t len;
	ds_tid serial;
	ds_error de;
	char name[DS_NAME_MAX], p[DS_RELPATH_MAX];
	int first = 1;

	ptr->seen = 1;
	c->st->objects++;
	ds_error_clear(&de);
	if (check_read(t, ptr, &buf, &len, &de) != DS_OK ||
	    ds_pointer_decode(buf, len, ptr->rel, &serial, &de) != DS_OK) {
		check_obj_problem(c, ptr,
		                  "bad .c pointer",
		                  ptr->rel, de.msg);
		free(buf);
		return;
	}
	if (len == 12)
		c->st->legacy_pointers++;
	free(buf);
	buf = NULL;

	for (;;) {
		struct check_file *f;
		ds_objrec rec;

		ds_name_revision(ptr->a, serial, name);
		f = check_find(t, name);
		if (f == NULL) {
			if (first)
				check_obj_problem(c, ptr, "revision named by a .c "
				                  "pointer is missing",
				                  check_path_of(t, name, p, sizeof(p)),
				                  ptr->rel);
			else if (serial >= packed)
				check_obj_problem(c, ptr, "revision named by a "
				                  "previous pointer is missing",
				                  check_path_of(t, name, p, sizeof(p)),
				                  NULL);
			/* else: removed by packing */
			return;
		}
		f->seen = 1;
		ds_error_clear(&de);
		if (check_read(t, f, &buf, &len, &de) != DS_OK ||
		    ds_objrec_decode(buf, len, f->rel, &rec, &de) != DS_OK) {
			check_obj_problem(c, ptr,
			                  "bad object revision",
			                  f->rel, de.msg);
			goto out;
		}
		if (rec.oid != ptr->a) {
			check_obj_problem(c, ptr,
			                  "object revision with an inconsistent oid",
			                  f->rel, NULL);
			goto out;
		}
		if (rec.serial != serial) {
			check_obj_problem(c, ptr,
			                  "object revision with an inconsistent serial",
			                  f->rel, NULL);
			goto out;
		}
		if (rec.undo_from >= serial) {
			check_obj_problem(c, ptr,
			                  "object revision with a backwards undo pointer",
			                  f->rel, NULL);
			goto out;
		}
		c->st->revisions++;
		c->st->object_bytes += len;
		if (!rec.md5_present)
			c->st->revisions_no_md5++;
		if (rec.pickle_len == 0)
			c->st->undone_creations++;
		ds_name_transaction(serial, name);
		if (check_find(t, name) != NULL) {
			/* older than x.packed: a pack that was interrupted
			 * after relinking has yet to remove it */
			if (serial >= packed &&
			    !check_u64_desc_find(chain, nchain, serial)) {
				if (check_cut_off(c, serial, "revision whose "
				                  "transaction file is not linked "
				                  "into history", f->rel)) {
					ptr->broken = 1;
					c->cut_revs++;
				} else {
					check_obj_problem(c, ptr, "revision whose "
					                  "transaction file is not "
					                  "linked into history",
					                  f->rel, NULL);
				}
			}
		} else {
			c->st->revisions_without_txn++;
		}
		if (rec.prev_serial >= serial) {
			check_obj_problem(c, ptr, "object revision with a "
			                  "backwards previous pointer", f->rel,
			                  NULL);
			goto out;
		}
		serial = rec.prev_serial;
		free(buf);
		buf = NULL;
		if (serial == 0)
			return;
		first = 0;
	}
out:
	free(buf);
}

static void
check_interrupted_pack(struct check_ctx *c, const struct ds_check_opts *opts,
                       const struct check_file *f)
{
	c->st->unfinished_pack++;
	check_log(opts, DS_LOG_DEBUG, "left by an unfinished pack: A/%s",
	          f->rel);
}

static int
check_sanity(const char *home, ds_error *err)
{
	static const char *const need[] = {"A", "config/settings",
	                                   "config/identity"};
	static const char *const dirs[] = {"misc", "B", "journal"};
	char path[PATH_MAX];
	struct stat sb;
	int rc;

	for (size_t i = 0; i < 3; i++) {
		if ((rc = ds_path_join(path, sizeof(path), home, need[i], err)) !=
		    DS_OK)
			return rc;
		if (stat(path, &sb) != 0)
			return ds_error_set(err, DS_ENOTFOUND, "check %s: directory "
			                    "fails basic sanity test; %s is missing",
			                    home, need[i]);
	}
	for (size_t i = 0; i < 3; i++) {
		if ((rc = ds_path_join(path, sizeof(path), home, dirs[i], err)) !=
		    DS_OK)
			return rc;
		if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
			return ds_error_set(err, DS_ECORRUPT, "check %s: directory "
			                    "%s is missing (solution: create an empty "
			                    "one)", home, dirs[i]);
	}
	return DS_OK;
}

static int
check_run(const char *home, const struct ds_check_opts *opts,
          struct ds_check_stats *st, ds_error *err)
{
	struct check_tree t;
	struct check_ctx c = {.opts = opts, .st = st, .home = home};
	ds_tid serial = 0, packed = 0, limit, *chain = NULL;
	uint64_t oidv = 0;
	size_t nchain = 0;
	ds_error de;
	int rc;

	if ((rc = check_sanity(home, err)) != DS_OK)
		return rc;
	memset(&t, 0, sizeof(t));
	if ((rc = check_tree_load(&t, home, err)) != DS_OK)
		goto out;
	if (strcmp(t.cfg.classname, "Full") != 0) {
		rc = ds_error_set(err, DS_ECONFIG, "check %s: checker for class "
		                  "%s not implemented", home, t.cfg.classname);
		goto out;
	}
	check_log(opts, DS_LOG_VERBOSE, "checking journal/ and misc/...");
	check_journal_misc(&c, home);
	check_log(opts, DS_LOG_VERBOSE, "checking root files...");
	ds_error_clear(&de);
	if (check_xvalue(&t, "x.oid", &oidv, &de) != DS_OK)
		check_problem(&c, "bad root file", "x.oid", de.msg);
	if (check_xvalue(&t, "x.serial", &serial, &de) != DS_OK)
		check_problem(&c, "bad root file", "x.serial", de.msg);
	if (check_xvalue(&t, "x.packed", &packed, &de) != DS_OK)
		check_problem(&c, "bad root file", "x.packed", de.msg);
	/* 60 seconds of clock shear, as the original allows */
	limit = ds_tid_from_time((double)time(NULL) + 60);
	if (serial > limit)
		check_problem(&c, "timestamps in the future", "x.serial", NULL);
	if (packed > limit)
		check_problem(&c, "last pack time in the future", "x.packed",
		              NULL);

	check_log(opts, DS_LOG_VERBOSE, "checking all transaction files...");
	if ((rc = check_history(&c, &t, serial, packed, &chain, &nchain,
	                        err)) != DS_OK)
		goto out;
	check_log(opts, DS_LOG_VERBOSE, "checking all data files...");
	for (size_t i = 0; i < t.named; i++) {
		if (t.f[i].kind != CK_PTR)
			continue;
		check_object(&c, &t, &t.f[i], packed, chain, nchain);
		/* new oids come from x.oid: none can be above it */
		if (t.f[i].a > oidv)
			check_problem(&c, "object id higher than x.oid", t.f[i].rel,
			              NULL);
	}
	for (size_t i = 0; i < t.n; i++) {
		struct check_file *f = &t.f[i];

		if (f->seen)
			continue;
		switch (f->kind) {
		case CK_LEFTOVER:
			st->pack_leftovers++;
			st->pack_leftover_bytes += (unsigned long)f->size;
			check_log(opts, DS_LOG_DEBUG, "pack leftover: A/%s", f->rel);
			break;
		case CK_TXN:
			/* older than x.packed: what an interrupted pack had
			 * not removed yet (the original's checkds never
			 * reports these either) */
			if (f->a < packed) {
				check_interrupted_pack(&c, opts, f);
				break;
			}
			if (check_cut_off(&c, f->a, "transaction not linked "
			                  "into history", f->rel)) {
				c.cut_txns++;
				break;
			}
			check_problem(&c, "unexpected file: transaction not linked "
			              "into history", f->rel, NULL);
			break;
		case CK_REV: {
			char pn[DS_NAME_MAX];
			struct check_file *ptr;

			if (f->b < packed) {
				check_interrupted_pack(&c, opts, f);
				break;
			}

			/* older revisions behind a broken one were already
			 * accounted for by that problem */
			ds_name_pointer(f->a, pn);
			ptr = check_find(&t, pn);
			if (ptr != NULL && ptr->broken)
				break;
			check_problem(&c, "unexpected file: revision not reachable "
			              "from its object's .c pointer", f->rel, NULL);
			break;
		}
		default:
			check_problem(&c, "unexpected file", f->rel,
			              !S_ISREG(f->mode) ? "not a regular file" :
			              ds_io_is_temp(f->rel) ?
			              "the temporary file of a replacement that "
			              "was interrupted: the file it was to "
			              "replace is intact; safe to delete when no "
			              "ds process runs" :
			              "not a database file");
			break;
		}
	}
	st->cut_off = c.cut_txns + c.cut_revs;
	if (st->cut_off != 0)
		check_log(opts, DS_LOG_WARN, "consequences of the broken history "
		          "at A/%s: %lu older transaction file%s and %lu "
		          "revision%s not linked into history (-v lists them)",
		          c.break_rel, c.cut_txns, c.cut_txns == 1 ? "" : "s",
		          c.cut_revs, c.cut_revs == 1 ? "" : "s");
	if (st->problems != 0)
		rc = ds_error_set(err, DS_ECORRUPT, "check %s: %lu problem%s found",
		                  home, st->problems, st->problems == 1 ? "" : "s");
out:
	free(chain);
	check_tree_free(&t);
	return rc;
}

int
ds_check(const char *home, const struct ds_check_opts *opts,
         struct ds_check_stats *stats, ds_error *err)
{
	struct ds_check_opts defaults = {0};
	struct ds_check_stats local;
	struct ds_snapshot_opts sopts = {0};
	ds_snapshot *snap = NULL;
	ds_error rerr;
	int rc;

	if (opts == NULL)
		opts = &defaults;
	if (stats == NULL)
		stats = &local;
	memset(stats, 0, sizeof(*stats));
	if (!opts->no_snapshot) {
		if (opts->snapshot != NULL)
			sopts = *opts->snapshot;
		if ((rc = ds_snapshot_acquire(home, &sopts, &snap, err)) != DS_OK)
			return rc;
		home = ds_snapshot_dir(snap);
	}
	rc = check_run(home, opts, stats, err);
	ds_error_clear(&rerr);
	if (ds_snapshot_release(snap, &rerr) != DS_OK && rc == DS_OK)
		rc = ds_error_set(err, rerr.status, "%s", rerr.msg);
	return rc;
}

/* ---- ds_check_compare ---- */

struct compare_ctx {
	const struct ds_check_opts *opts;
	struct ds_compare_stats *st;
	struct check_tree *m, *r;
	ds_tid rtid, mpacked;
	char missing[DS_RELPATH_MAX];  /* compare_asof's absent file */
};

static void
compare_diff(struct compare_ctx *c, const char *what, const char *rel)
{
	c->st->differences++;
	check_log(c->opts, DS_LOG_WARN, "%s: A/%s", what, rel);
}

/* A difference found to be the master's fault: its file is named with
 * the master's home, so that nobody repairs the replica for it. */
static void
compare_diff_master(struct compare_ctx *c, const char *what, const char *rel)
{
	c->st->differences++;
	check_log(c->opts, DS_LOG_WARN, "%s: %s/A/%s (on the master)", what,
	          c->m->home, rel);
}

/* What the master's pointer for oid said at the replica's tid: follow the
 * master's revision chain back from its current serial while later than
 * the replica's tid. *asof = 0: the object did not exist then. Returns 0
 * with *asof set, 1 when the master's pack removed the revisions needed
 * to know, -1 when the master's files are broken (*broken: the master's
 * revision file, relative to A/, that is missing or not valid). */
static int
compare_asof(struct compare_ctx *c, ds_oid oid, ds_tid current, ds_tid *asof,
             const char **broken)
{
	ds_tid s = current;
	char name[DS_NAME_MAX];

	while (s > c->rtid) {
		struct check_file *f;
		unsigned char *buf = NULL;
		size_t len;
		ds_objrec rec;

		ds_name_revision(oid, s, name);
		f = check_find(c->m, name);
		if (f == NULL && s < c->mpacked)
			return 1;   /* the master's pack removed that history */
		if (f == NULL || check_read(c->m, f, &buf, &len, NULL) != DS_OK ||
		    ds_objrec_decode(buf, len, f->rel, &rec, NULL) != DS_OK ||
		    rec.prev_serial >= s) {
			free(buf);
			if (f != NULL) {
				*broken = f->rel;
			} else {
				/* the name's own path: the file is absent */
				if (ds_layout_name_to_path(c->m->cfg.layout, name,
				                           c->missing,
				                           sizeof(c->missing),
				                           NULL) != DS_OK)
					snprintf(c->missing, sizeof(c->missing),
					         "%s", name);
				*broken = c->missing;
			}
			return -1;
		}
		s = rec.prev_serial;
		free(buf);
	}
	*asof = s;
	return 0;
}

static int
compare_pointer_value(struct check_tree *t, const struct check_file *f,
                      ds_tid *v)
{
	unsigned char *buf = NULL;
	size_t len;
	int rc;

	rc = check_read(t, f, &buf, &len, NULL);
	if (rc == DS_OK)
		rc = ds_pointer_decode(buf, len, f->rel, v, NULL);
	free(buf);
	return rc;
}

/* Same bytes? 1 equal, 2 equal but for bytes 24..31 (when relink_ok),
 * 0 different, -1 the master's file unreadable, -2 the replica's. */
static int
compare_bytes(struct compare_ctx *c, const struct check_file *mf,
              const struct check_file *rf, int relink_ok)
{
	unsigned char *a = NULL, *b = NULL;
	size_t alen, blen;
	int res = -1;

	if (check_read(c->m, mf, &a, &alen, NULL) != DS_OK)
		goto out;
	if (check_read(c->r, rf, &b, &blen, NULL) != DS_OK) {
		res = -2;
		goto out;
	}
	c->st->files_compared++;
	if (alen == blen && memcmp(a, b, alen) == 0) {
		res = 1;
	} else if (relink_ok && alen == blen && alen >= 32 &&
	           memcmp(a, b, 24) == 0 &&
	           memcmp(a + 32, b + 32, alen - 32) == 0) {
		res = 2;
	} else {
		res = 0;
	}
	if (res > 0 && (mf->mode & 07777) != (rf->mode & 07777))
		c->st->mode_differences++;
out:
	free(a);
	free(b);
	return res;
}

/* 1 when f decodes as what its name says (header, md5 when present). */
static int
compare_valid(struct check_tree *t, const struct check_file *f)
{
	unsigned char *buf = NULL;
	size_t len;
	ds_objrec orec;
	ds_txnrec trec;
	int ok = 0;

	if (check_read(t, f, &buf, &len, NULL) != DS_OK)
		return 0;
	if (f->kind == CK_TXN)
		ok = ds_txnrec_decode(buf, len, f->rel, &trec, NULL) == DS_OK &&
		     trec.tid == f->a;
	else if (f->kind == CK_REV)
		ok = ds_objrec_decode(buf, len, f->rel, &orec, NULL) == DS_OK &&
		     orec.oid == f->a && orec.serial == f->b;
	free(buf);
	return ok;
}

static void
compare_one(struct compare_ctx *c, struct check_file *mf,
            struct check_file *rf)
{
	const struct check_file *any = mf ? mf : rf;
	ds_tid when = any->kind == CK_TXN ? any->a : any->b;

	switch (any->kind) {
	case CK_X:
		if (strcmp(any->name, "x.oid") == 0 && mf && rf) {
			uint64_t mo = 0, ro = 0;
			check_xvalue(c->m, "x.oid", &mo, NULL);
			check_xvalue(c->r, "x.oid", &ro, NULL);
			if (ro > mo)
				compare_diff(c, "replica's x.oid is later than the "
				             "master's", rf->rel);
		}
		/* x.serial defines the comparison, x.packed is local */
		return;
	case CK_TXN:
	case CK_REV:
		if (mf && rf) {
			int res;
			if (when > c->rtid) {
				compare_diff(c, "replica has a file later than its "
				             "x.serial", rf->rel);
				return;
			}
			res = compare_bytes(c, mf, rf, any->kind == CK_TXN);
			if (res == 2) {
				c->st->relinked++;
				check_log(c->opts, DS_LOG_VERBOSE, "previous pointer "
				          "rewritten by the master's pack: A/%s",
				          rf->rel);
			} else if (res == -1) {
				compare_diff_master(c, "unreadable", mf->rel);
			} else if (res == -2) {
				compare_diff(c, "unreadable", rf->rel);
			} else if (res == 0 && !compare_valid(c->m, mf) &&
			           compare_valid(c->r, rf)) {
				compare_diff_master(c, "different content, the "
				                    "master's file is not valid",
				                    mf->rel);
			} else if (res == 0) {
				compare_diff(c, "different content", rf->rel);
			}
		} else if (mf) {
			if (when <= c->rtid)
				compare_diff(c, "missing on the replica", mf->rel);
		} else {
			if (when < c->mpacked)
				c->st->pack_removed++;
			else
				compare_diff(c, "on the replica only", rf->rel);
		}
		return;
	case CK_PTR: {
		ds_tid mcur = 0, rcur = 0, asof = 0;
		const char *broken = NULL;
		int res;

		if (mf && compare_pointer_value(c->m, mf, &mcur) != DS_OK) {
			compare_diff_master(c, "unreadable .c pointer", mf->rel);
			return;
		}
		if (rf && compare_pointer_value(c->r, rf, &rcur) != DS_OK) {
			compare_diff(c, "unreadable .c pointer", rf->rel);
			return;
		}
		if (mf && rf) {
			c->st->files_compared++;
			if (mcur == rcur) {
				if ((mf->mode & 07777) != (rf->mode & 07777))
					c->st->mode_differences++;
				return;
			}
			res = compare_asof(c, any->a, mcur, &asof, &broken);
			if (res == 1)
				c->st->pack_removed++;
			else if (res < 0)
				compare_diff_master(c, "revision chain broken "
				                    "(missing or not a valid "
				                    "revision)", broken);
			else if (asof != rcur)
				compare_diff(c, ".c pointer differs from the master's "
				             "at the replica's transaction", rf->rel);
		} else if (mf) {
			res = compare_asof(c, any->a, mcur, &asof, &broken);
			if (res == 1)
				c->st->pack_removed++;
			else if (res < 0)
				compare_diff_master(c, "revision chain broken "
				                    "(missing or not a valid "
				                    "revision)", broken);
			else if (asof != 0)
				compare_diff(c, "missing on the replica", mf->rel);
		} else {
			if (rcur < c->mpacked)
				c->st->pack_removed++;
			else
				compare_diff(c, "on the replica only", rf->rel);
		}
		return;
	}
	default:
		return;
	}
}

static int
compare_run(const char *master, const char *replica,
            const struct ds_check_opts *opts, struct ds_compare_stats *st,
            ds_error *err)
{
	struct check_tree m, r;
	struct compare_ctx c;
	ds_tid mserial = 0, tid;
	char name[DS_NAME_MAX], hex[17];
	size_t i, j;
	int rc;

	memset(&m, 0, sizeof(m));
	memset(&r, 0, sizeof(r));
	memset(&c, 0, sizeof(c));
	c.opts = opts;
	c.st = st;
	c.m = &m;
	c.r = &r;
	if ((rc = check_tree_load(&m, master, err)) != DS_OK ||
	    (rc = check_tree_load(&r, replica, err)) != DS_OK)
		goto out;
	if (strcmp(m.cfg.identity, r.cfg.identity) != 0) {
		rc = ds_error_set(err, DS_EREFUSED, "compare: different identity "
		                  "(%s is not a replica of %s)", replica, master);
		goto out;
	}
	if ((rc = check_xvalue(&m, "x.serial", &mserial, err)) != DS_OK ||
	    (rc = check_xvalue(&m, "x.packed", &c.mpacked, err)) != DS_OK ||
	    (rc = check_xvalue(&r, "x.serial", &c.rtid, err)) != DS_OK)
		goto out;
	ds_id_format(c.rtid, hex);
	if (c.rtid > mserial) {
		rc = ds_error_set(err, DS_EREFUSED, "compare: the replica's last "
		                  "transaction %s is later than the master's last: "
		                  "not in the master's history", hex);
		goto out;
	}
	/* the replica's tid must be in the master's history */
	tid = mserial;
	while (tid > c.rtid) {
		struct check_file *f;
		unsigned char *buf = NULL;
		size_t len;
		ds_txnrec rec;

		ds_name_transaction(tid, name);
		f = check_find(&m, name);
		if (f == NULL || check_read(&m, f, &buf, &len, err) != DS_OK ||
		    ds_txnrec_decode(buf, len, f->rel, &rec, err) != DS_OK ||
		    rec.prev_tid >= tid) {
			free(buf);
			rc = ds_error_set(err, DS_ECORRUPT, "compare: the master's "
			                  "history is broken at transaction %s",
			                  name);
			goto out;
		}
		st->transactions++;
		tid = rec.prev_tid;
		free(buf);
	}
	if (tid != c.rtid) {
		rc = ds_error_set(err, DS_EREFUSED, "compare: the replica's last "
		                  "transaction %s is not in the master's history",
		                  hex);
		goto out;
	}
	/* merge the two sorted name lists */
	for (i = 0, j = 0; i < m.named || j < r.named;) {
		int cmp = i >= m.named ? 1 : j >= r.named ? -1 :
		          strcmp(m.f[i].name, r.f[j].name);
		if (cmp == 0)
			compare_one(&c, &m.f[i++], &r.f[j++]);
		else if (cmp < 0)
			compare_one(&c, &m.f[i++], NULL);
		else
			compare_one(&c, NULL, &r.f[j++]);
	}
	for (j = r.named; j < r.n; j++)
		if (r.f[j].kind == CK_BAD)
			compare_diff(&c, "unexpected file on the replica", r.f[j].rel);
	if (st->differences != 0)
		rc = ds_error_set(err, DS_ECORRUPT, "compare: %s differs from "
		                  "%s's history up to %s: %lu difference%s", replica,
		                  master, hex, st->differences,
		                  st->differences == 1 ? "" : "s");
out:
	check_tree_free(&m);
	check_tree_free(&r);
	return rc;
}

int
ds_check_compare(const char *master, const char *replica,
                 const struct ds_check_opts *opts,
                 struct ds_compare_stats *stats, ds_error *err)
{
	struct ds_check_opts defaults = {0};
	struct ds_compare_stats local;
	struct ds_snapshot_opts sopts = {0};
	ds_snapshot *ms = NULL, *rs = NULL;
	ds_error rerr;
	int rc;

	if (opts == NULL)
		opts = &defaults;
	if (stats == NULL)
		stats = &local;
	memset(stats, 0, sizeof(*stats));
	if (!opts->no_snapshot) {
		if (opts->snapshot != NULL)
			sopts = *opts->snapshot;
		if ((rc = ds_snapshot_acquire(master, &sopts, &ms, err)) != DS_OK)
			return rc;
		master = ds_snapshot_dir(ms);
		/* the replica is not served by a storage process: direct */
		sopts.conf_path = NULL;
		if ((rc = ds_snapshot_acquire(replica, &sopts, &rs, err)) !=
		    DS_OK)
			goto out;
		replica = ds_snapshot_dir(rs);
	}
	rc = compare_run(master, replica, opts, stats, err);
out:
	ds_error_clear(&rerr);
	if (ds_snapshot_release(rs, &rerr) != DS_OK && rc == DS_OK)
		rc = ds_error_set(err, rerr.status, "%s", rerr.msg);
	ds_error_clear(&rerr);
	if (ds_snapshot_release(ms, &rerr) != DS_OK && rc == DS_OK)
		rc = ds_error_set(err, rerr.status, "%s", rerr.msg);
	return rc;
}
