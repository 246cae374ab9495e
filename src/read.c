/*
 * read.c - reads through the engine: a database name is looked up in the
 * journal (committed, not yet flushed), then in B (snapshot mode, once
 * something was flushed there), then in A. Revisions and transaction
 * files are verified (magic, length, ids; md5 per [md5policy]).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache.h"
#include "journal.h"
#include "read.h"
#include "storage_internal.h"

/* Largest database file we accept reading: the length field is 32 bits. */
#define READ_MAX ((size_t)0xffffffffu)

static int
read_fd_all(int fd, const char *path, unsigned char **out, size_t *outlen,
            ds_error *err)
{
	struct stat st;
	unsigned char *buf;
	size_t cap, len = 0;

	if (fstat(fd, &st) != 0)
		return ds_error_sys(err, errno, "stat", path);
	if (!S_ISREG(st.st_mode))
		return ds_error_set(err, DS_ECORRUPT, "read %s: not a regular "
		                    "file", path);
	if ((uint64_t)st.st_size > READ_MAX)
		return ds_error_set(err, DS_ECORRUPT, "read %s: too large", path);
	cap = (size_t)st.st_size + 1;
	buf = malloc(cap);
	if (buf == NULL)
		return ds_error_set(err, DS_ENOMEM, "read %s: out of memory",
		                    path);
	for (;;) {
		ssize_t n;
		if (len == cap) {
			unsigned char *nb = realloc(buf, cap * 2);
			if (nb == NULL) {
				free(buf);
				return ds_error_set(err, DS_ENOMEM,
				                    "read %s: out of memory", path);
			}
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0) {
			int e = errno;
			if (e == EINTR)
				continue;
			free(buf);
			return ds_error_sys(err, e, "read", path);
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*out = buf;
	*outlen = len;
	return DS_OK;
}

static int
read_open(const char *path, int *fd)
{
	do
		*fd = open(path, O_RDONLY | O_CLOEXEC);
	while (*fd < 0 && errno == EINTR);
	return *fd < 0 ? errno : 0;
}

int
read_name(ds_storage *s, const char *name, unsigned char **buf, size_t *len,
          ds_error *err)
{
	char rel[DS_RELPATH_MAX], path[DS_PATH_MAX];
	struct jdir *holder;
	int fd = -1, e, rc, n;

	*buf = NULL;
	*len = 0;
	if (!ds_name_valid(name))
		return ds_error_set(err, DS_EINVAL,
		                    "read %s in %s: not a database name", name,
		                    s->home);
	rc = ds_layout_name_to_path(s->cfg.layout, name, rel, sizeof(rel), err);
	if (rc != DS_OK)
		return rc;
	/* Open under the lock: the flusher renames files out of the journal
	 * and out of B under the same lock, so the file is found. */
	pthread_mutex_lock(&s->mu);
	holder = hashmap_get(&s->reloc, name);
	if (holder != NULL) {
		n = snprintf(path, sizeof(path), "%s/journal/%s/%s", s->home,
		             holder->name, name);
		e = (n < 0 || (size_t)n >= sizeof(path)) ? ENAMETOOLONG
		                                        : read_open(path, &fd);
		if (e == ENOENT) {
			pthread_mutex_unlock(&s->mu);
			return ds_error_set(err, DS_ECORRUPT,
			                    "read %s: file missing from the journal",
			                    path);
		}
	} else {
		e = ENOENT;
		if (s->snapcode[0] != '\0' && s->have_flushed) {
			n = snprintf(path, sizeof(path), "%s/B/%s", s->home, rel);
			e = (n < 0 || (size_t)n >= sizeof(path))
			        ? ENAMETOOLONG : read_open(path, &fd);
		}
		if (e == ENOENT) {
			n = snprintf(path, sizeof(path), "%s/A/%s", s->home, rel);
			e = (n < 0 || (size_t)n >= sizeof(path))
			        ? ENAMETOOLONG : read_open(path, &fd);
		}
	}
	pthread_mutex_unlock(&s->mu);
	if (e != 0) {
		if (e == ENOENT || e == ENOTDIR)
			return ds_error_set(err, DS_ENOTFOUND,
			                    "read %s in %s: no such file", name,
			                    s->home);
		return ds_error_sys(err, e, "open", path);
	}
	rc = read_fd_all(fd, path, buf, len, err);
	close(fd);
	return rc;
}

int
ds_storage_read_name(ds_storage *s, const char *name, unsigned char **buf,
                     size_t *len, ds_error *err)
{
	return read_name(s, name, buf, len, err);
}

/* Decode with or without the md5 check: the records codec checks a
 * non-zero md5 always, so when the policy says no, the field is zeroed in
 * our private copy for the decode and put back afterwards. */
static void
read_md5_hide(unsigned char *buf, size_t len, size_t off, int check,
              unsigned char save[16], int *hidden)
{
	static const unsigned char zero[16];

	*hidden = 0;
	if (check || len < off + 16 || memcmp(buf + off, zero, 16) == 0)
		return;
	memcpy(save, buf + off, 16);
	memset(buf + off, 0, 16);
	*hidden = 1;
}

int
read_revision(ds_storage *s, ds_oid oid, ds_tid serial, int check_md5,
              unsigned char **bufp, ds_objrec *rec, ds_error *err)
{
	char name[DS_NAME_MAX], what[DS_PATH_MAX + DS_NAME_MAX];
	char h1[17], h2[17];
	unsigned char *buf = NULL, save[16];
	size_t len;
	int rc, hidden;

	*bufp = NULL;
	ds_name_revision(oid, serial, name);
	rc = read_name(s, name, &buf, &len, err);
	if (rc != DS_OK)
		return rc;
	snprintf(what, sizeof(what), "%s in %s", name, s->home);
	read_md5_hide(buf, len, 40, check_md5, save, &hidden);
	rc = ds_objrec_decode(buf, len, what, rec, err);
	if (hidden) {
		memcpy(buf + 40, save, 16);
		rec->md5_present = 1;
	}
	if (rc != DS_OK)
		goto fail;
	if (rec->oid != oid) {
		ds_id_format(rec->oid, h1);
		rc = ds_error_set(err, DS_ECORRUPT, "read %s: oid mismatch: "
		                  "the file says %s", what, h1);
		goto fail;
	}
	if (rec->serial != serial) {
		ds_id_format(rec->serial, h1);
		ds_id_format(serial, h2);
		rc = ds_error_set(err, DS_ECORRUPT, "read %s: serial mismatch: "
		                  "the file says %s, not %s", what, h1, h2);
		goto fail;
	}
	*bufp = buf;
	return DS_OK;
fail:
	free(buf);
	return rc;
}

int
read_txnfile(ds_storage *s, ds_tid tid, int check_md5, unsigned char **bufp,
             ds_txnrec *rec, ds_error *err)
{
	char name[DS_NAME_MAX], what[DS_PATH_MAX + DS_NAME_MAX];
	char h1[17];
	unsigned char *buf = NULL, save[16];
	size_t len;
	int rc, hidden;

	*bufp = NULL;
	ds_name_transaction(tid, name);
	rc = read_name(s, name, &buf, &len, err);
	if (rc != DS_OK)
		return rc;
	snprintf(what, sizeof(what), "%s in %s", name, s->home);
	read_md5_hide(buf, len, 32, check_md5, save, &hidden);
	rc = ds_txnrec_decode(buf, len, what, rec, err);
	if (hidden) {
		memcpy(buf + 32, save, 16);
		rec->md5_present = 1;
	}
	if (rc == DS_OK && rec->tid != tid) {
		ds_id_format(rec->tid, h1);
		rc = ds_error_set(err, DS_ECORRUPT, "read %s: tid mismatch: the "
		                  "file says %s", what, h1);
	}
	if (rc != DS_OK) {
		free(buf);
		return rc;
	}
	*bufp = buf;
	return DS_OK;
}

/* ---- the cache of current revisions (see storage_internal.h) ---- */

/* oid's cached current revision: DS_OK with *serial, *prev and, when
 * pickle is not NULL, a copy of its pickle; DS_ENOTFOUND when not cached
 * (*gen: the drop count to hand to read_cache_put); DS_ENOMEM. */
static int
read_cache_get(ds_storage *s, ds_oid oid, ds_tid *serial, ds_tid *prev,
               unsigned char **pickle, size_t *len, unsigned long *gen,
               ds_error *err)
{
	const unsigned char *p;
	size_t n;
	int rc = DS_ENOTFOUND;

	pthread_mutex_lock(&s->mu);
	*gen = s->cache_gen;
	if (s->snapcode[0] == '\0' &&
	    cache_get(s->cache, oid, serial, prev, &p, &n)) {
		rc = DS_OK;
		if (pickle != NULL) {
			/* one byte more: malloc(0) may return NULL */
			*pickle = malloc(n + 1);
			if (*pickle == NULL)
				rc = ds_error_set(err, DS_ENOMEM,
				                  "load: out of memory");
			else
				memcpy(*pickle, p, n);
			*len = n;
		}
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* Remember a current revision read from the files, unless a drop
 * happened since gen was taken (a commit may have replaced it) or the
 * storage is in snapshot mode. Empty pickles ("creation undone") are
 * not kept: a cached entry always is a loadable object. */
static void
read_cache_put(ds_storage *s, unsigned long gen, ds_oid oid, ds_tid serial,
               ds_tid prev, const unsigned char *pickle, size_t len)
{
	if (len == 0)
		return;
	pthread_mutex_lock(&s->mu);
	if (s->cache_gen == gen && s->snapcode[0] == '\0')
		cache_put(s->cache, oid, serial, prev, pickle, len);
	pthread_mutex_unlock(&s->mu);
}

int
ds_storage_current_serial(ds_storage *s, ds_oid oid, ds_tid *serial,
                          ds_error *err)
{
	char name[DS_NAME_MAX], what[DS_PATH_MAX + DS_NAME_MAX];
	unsigned char *buf;
	size_t len;
	ds_tid prev;
	unsigned long gen;
	int rc;

	*serial = 0;
	if (read_cache_get(s, oid, serial, &prev, NULL, NULL, &gen, err)
	    == DS_OK)
		return DS_OK;
	ds_name_pointer(oid, name);
	rc = read_name(s, name, &buf, &len, err);
	if (rc == DS_ENOTFOUND) {
		char h[17];
		ds_id_format(oid, h);
		return ds_error_set(err, DS_ENOTFOUND,
		                    "oid %s in %s: no such object", h, s->home);
	}
	if (rc != DS_OK)
		return rc;
	snprintf(what, sizeof(what), "%s in %s", name, s->home);
	rc = ds_pointer_decode(buf, len, what, serial, err);
	free(buf);
	return rc;
}

/* Hand back rec's pickle as its own buffer (reusing buf). */
static int
read_take_pickle(unsigned char *buf, const ds_objrec *rec,
                 unsigned char **pickle, size_t *len)
{
	size_t n = rec->pickle_len;

	memmove(buf, rec->pickle, n);
	*pickle = buf;
	*len = n;
	return DS_OK;
}

static int
read_undone(ds_storage *s, ds_oid oid, ds_tid serial, ds_error *err)
{
	char h1[17], h2[17];

	ds_id_format(oid, h1);
	ds_id_format(serial, h2);
	return ds_error_set(err, DS_ENOTFOUND,
	                    "oid %s in %s: no such object (creation undone by "
	                    "%s)", h1, s->home, h2);
}

int
ds_storage_load(ds_storage *s, ds_oid oid, unsigned char **pickle,
                size_t *len, ds_tid *serial, ds_error *err)
{
	unsigned char *buf;
	ds_objrec rec;
	ds_tid cur, prev;
	unsigned long gen;
	int rc;

	*pickle = NULL;
	*len = 0;
	rc = read_cache_get(s, oid, &cur, &prev, pickle, len, &gen, err);
	if (rc != DS_ENOTFOUND) {
		if (rc == DS_OK && serial)
			*serial = cur;
		return rc;
	}
	rc = ds_storage_current_serial(s, oid, &cur, err);
	if (rc != DS_OK)
		return rc;
	rc = read_revision(s, oid, cur, s->cfg.md5_read, &buf, &rec, err);
	if (rc != DS_OK)
		return rc;
	if (rec.pickle_len == 0) {
		free(buf);
		return read_undone(s, oid, cur, err);
	}
	read_cache_put(s, gen, oid, cur, rec.prev_serial, rec.pickle,
	               rec.pickle_len);
	if (serial)
		*serial = cur;
	return read_take_pickle(buf, &rec, pickle, len);
}

int
ds_storage_load_serial(ds_storage *s, ds_oid oid, ds_tid serial,
                       unsigned char **pickle, size_t *len, ds_error *err)
{
	unsigned char *buf;
	ds_objrec rec;
	int rc;

	*pickle = NULL;
	*len = 0;
	rc = read_revision(s, oid, serial, s->cfg.md5_read, &buf, &rec, err);
	if (rc == DS_ENOTFOUND) {
		char h1[17], h2[17];
		ds_id_format(oid, h1);
		ds_id_format(serial, h2);
		return ds_error_set(err, DS_ENOTFOUND,
		                    "oid %s in %s: no revision %s", h1, s->home,
		                    h2);
	}
	if (rc != DS_OK)
		return rc;
	if (rec.pickle_len == 0) {
		free(buf);
		return read_undone(s, oid, serial, err);
	}
	return read_take_pickle(buf, &rec, pickle, len);
}

int
ds_storage_load_before(ds_storage *s, ds_oid oid, ds_tid tid,
                       unsigned char **pickle, size_t *len, ds_tid *serial,
                       ds_tid *next_serial, ds_error *err)
{
	unsigned char *buf = NULL;
	ds_objrec rec;
	ds_tid cur, next = 0, prev;
	char h1[17], h2[17];
	unsigned long gen;
	int rc;

	*pickle = NULL;
	*len = 0;
	rc = read_cache_get(s, oid, &cur, &prev, NULL, NULL, &gen, err);
	if (rc == DS_OK && cur < tid) {
		/* the current revision is the one before tid */
		rc = read_cache_get(s, oid, &cur, &prev, pickle, len, &gen,
		                    err);
		if (rc != DS_ENOTFOUND) {
			if (rc == DS_OK && serial)
				*serial = cur;
			if (rc == DS_OK && next_serial)
				*next_serial = 0;
			return rc;
		}
	}
	rc = ds_storage_current_serial(s, oid, &cur, err);
	if (rc != DS_OK)
		return rc;
	for (;;) {
		rc = read_revision(s, oid, cur, s->cfg.md5_read, &buf, &rec,
		                   err);
		if (rc != DS_OK)
			return rc;
		if (cur < tid)
			break;
		next = cur;
		cur = rec.prev_serial;
		free(buf);
		buf = NULL;
		if (cur >= next) {
			ds_id_format(oid, h1);
			ds_id_format(next, h2);
			return ds_error_set(err, DS_ECORRUPT,
			                    "oid %s in %s: revision %s points to "
			                    "a later previous revision", h1,
			                    s->home, h2);
		}
		if (cur == 0) {
			ds_id_format(oid, h1);
			ds_id_format(tid, h2);
			return ds_error_set(err, DS_ENOTFOUND,
			                    "oid %s in %s: no revision before %s",
			                    h1, s->home, h2);
		}
	}
	if (rec.pickle_len == 0) {
		free(buf);
		return read_undone(s, oid, cur, err);
	}
	if (next == 0)
		read_cache_put(s, gen, oid, cur, rec.prev_serial, rec.pickle,
		               rec.pickle_len);
	if (serial)
		*serial = cur;
	if (next_serial)
		*next_serial = next;
	return read_take_pickle(buf, &rec, pickle, len);
}

/* ---- transactions ---- */

static int
read_txninfo_build(const ds_txnrec *rec, ds_txninfo **out, ds_error *err)
{
	ds_txninfo *t;
	size_t sz = sizeof(*t) + rec->user_len + 1 + rec->description_len + 1 +
	            rec->extension_len + 1 + rec->noids * sizeof(ds_oid) + 16;
	unsigned char *p;

	t = calloc(1, sz);
	if (t == NULL)
		return ds_error_set(err, DS_ENOMEM, "transaction: out of memory");
	p = (unsigned char *)(t + 1);
	t->tid = rec->tid;
	t->prev_tid = rec->prev_tid;
	/* oids first: keeps them aligned */
	t->oids = (ds_oid *)p;
	t->noids = rec->noids;
	for (size_t i = 0; i < rec->noids; i++)
		t->oids[i] = ds_get_u64(rec->oids + 8 * i);
	p += rec->noids * sizeof(ds_oid);
	t->user = (char *)p;
	memcpy(t->user, rec->user, rec->user_len);
	t->user_len = rec->user_len;
	p += rec->user_len + 1;
	t->description = (char *)p;
	memcpy(t->description, rec->description, rec->description_len);
	t->description_len = rec->description_len;
	p += rec->description_len + 1;
	t->extension = p;
	memcpy(t->extension, rec->extension, rec->extension_len);
	t->extension_len = rec->extension_len;
	*out = t;
	return DS_OK;
}

int
ds_storage_txn_info(ds_storage *s, ds_tid tid, ds_txninfo **out,
                    ds_error *err)
{
	unsigned char *buf;
	ds_txnrec rec;
	int rc;

	*out = NULL;
	rc = read_txnfile(s, tid, s->cfg.md5_undolog, &buf, &rec, err);
	if (rc == DS_ENOTFOUND) {
		char h[17];
		ds_id_format(tid, h);
		return ds_error_set(err, DS_ENOTFOUND,
		                    "transaction %s in %s: no record of that "
		                    "transaction", h, s->home);
	}
	if (rc != DS_OK)
		return rc;
	rc = read_txninfo_build(&rec, out, err);
	free(buf);
	return rc;
}

void
ds_txninfo_free(ds_txninfo *info)
{
	free(info);
}

int
ds_storage_txn_iterate(ds_storage *s, ds_tid from, unsigned flags,
                       ds_txn_iter_fn fn, void *ctx, ds_error *err)
{
	ds_txninfo *info;
	ds_tid tid, *tids = NULL;
	size_t n = 0, cap = 0;
	int rc = DS_OK, r;

	tid = ds_storage_last_tid(s);
	while (tid != 0 && ((flags & DS_ITER_NEWEST_FIRST) || tid >= from)) {
		rc = ds_storage_txn_info(s, tid, &info, err);
		if (rc == DS_ENOTFOUND && tid < s->last_pack) {
			/* earlier transactions were removed by a pack */
			rc = DS_OK;
			break;
		}
		if (rc != DS_OK)
			goto out;
		if (info->prev_tid >= tid) {
			char h[17];
			ds_id_format(tid, h);
			ds_txninfo_free(info);
			rc = ds_error_set(err, DS_ECORRUPT,
			                  "iterate %s: the back pointer of "
			                  "transaction %s does not go back in time",
			                  s->home, h);
			goto out;
		}
		if (flags & DS_ITER_NEWEST_FIRST) {
			r = fn(info, ctx);
			tid = info->prev_tid;
			ds_txninfo_free(info);
			if (r != 0) {
				rc = r;
				goto out;
			}
			continue;
		}
		if (n == cap) {
			size_t nc = cap ? 2 * cap : 64;
			ds_tid *v = realloc(tids, nc * sizeof(*v));
			if (v == NULL) {
				ds_txninfo_free(info);
				rc = ds_error_set(err, DS_ENOMEM,
				                  "iterate: out of memory");
				goto out;
			}
			tids = v;
			cap = nc;
		}
		tids[n++] = tid;
		tid = info->prev_tid;
		ds_txninfo_free(info);
	}
	/* oldest first */
	while (n > 0) {
		rc = ds_storage_txn_info(s, tids[--n], &info, err);
		if (rc != DS_OK)
			goto out;
		r = fn(info, ctx);
		ds_txninfo_free(info);
		if (r != 0) {
			rc = r;
			goto out;
		}
	}
out:
	free(tids);
	return rc;
}

/* ---- history ---- */

void
ds_history_free(ds_history_entry *h, size_t n)
{
	if (h == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free(h[i].user);
		free(h[i].description);
		free(h[i].extension);
	}
	free(h);
}

static char *
read_strndup(const void *p, size_t n)
{
	char *r = malloc(n + 1);

	if (r == NULL)
		return NULL;
	if (n)
		memcpy(r, p, n);
	r[n] = '\0';
	return r;
}

int
ds_storage_history(ds_storage *s, ds_oid oid, size_t max,
                   ds_history_entry **out, size_t *nout, ds_error *err)
{
	ds_history_entry *h = NULL, *e;
	size_t n = 0, cap = 0;
	unsigned char *buf;
	ds_objrec rec;
	ds_txnrec trec;
	ds_tid serial;
	int rc, first = 1;

	*out = NULL;
	*nout = 0;
	rc = ds_storage_current_serial(s, oid, &serial, err);
	if (rc != DS_OK)
		return rc;
	while (max == 0 || n < max) {
		if (n == cap) {
			size_t nc = cap ? 2 * cap : 16;
			ds_history_entry *v = realloc(h, nc * sizeof(*v));
			if (v == NULL) {
				rc = ds_error_set(err, DS_ENOMEM,
				                  "history: out of memory");
				goto fail;
			}
			h = v;
			cap = nc;
		}
		/* the object file: size and the next pointer */
		rc = read_revision(s, oid, serial, s->cfg.md5_history, &buf,
		                   &rec, err);
		if (rc == DS_ENOTFOUND && !first && serial < s->last_pack) {
			/* removed by a pack: no more history */
			rc = DS_OK;
			break;
		}
		if (rc != DS_OK)
			goto fail;
		e = &h[n];
		memset(e, 0, sizeof(*e));
		e->serial = serial;
		e->undo_from = rec.undo_from;
		e->prev_serial = rec.prev_serial;
		e->size = rec.pickle_len;
		free(buf);
		n++;
		/* the transaction file: who and why */
		rc = read_txnfile(s, serial, s->cfg.md5_history, &buf, &trec,
		                  err);
		if (rc == DS_ENOTFOUND && serial < s->last_pack) {
			e->user = read_strndup("", 0);
			e->description = read_strndup("", 0);
		} else if (rc != DS_OK) {
			goto fail;
		} else {
			e->txn_known = 1;
			e->user = read_strndup(trec.user, trec.user_len);
			e->description = read_strndup(trec.description,
			                              trec.description_len);
			if (trec.extension_len) {
				e->extension = malloc(trec.extension_len);
				if (e->extension) {
					memcpy(e->extension, trec.extension,
					       trec.extension_len);
					e->extension_len = trec.extension_len;
				}
			}
			free(buf);
		}
		if (e->user == NULL || e->description == NULL ||
		    (e->extension_len == 0 && e->txn_known && trec.extension_len)) {
			rc = ds_error_set(err, DS_ENOMEM, "history: out of memory");
			goto fail;
		}
		rc = DS_OK;
		if (e->prev_serial == 0)
			break;
		if (e->prev_serial >= serial) {
			char h1[17], h2[17];
			ds_id_format(oid, h1);
			ds_id_format(serial, h2);
			n--;
			free(e->user);
			free(e->description);
			free(e->extension);
			rc = ds_error_set(err, DS_ECORRUPT,
			                  "history of oid %s in %s: revision %s "
			                  "points to a later previous revision",
			                  h1, s->home, h2);
			goto fail;
		}
		serial = e->prev_serial;
		first = 0;
	}
	*out = h;
	*nout = n;
	return DS_OK;
fail:
	ds_history_free(h, n);
	return rc;
}
