/*
 * txn.c - transactions: begin, store, vote, finish, abort.
 *
 * What a transaction writes, byte for byte as the original's Full storage:
 * for each object stored, o<OID>.<TID> (a revision: its previous serial is
 * the object's current serial, md5 per [md5policy] write) and o<OID>.c (8
 * bytes: TID); at vote the transaction file t<6>.<10> (user, description,
 * extension, then the oids in first-store order; back pointer = the
 * previous x.serial), then x.oid and x.serial. All in
 * journal/working_<TID>_temp/, mode 0640; see journal.c for the commit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "flush.h"
#include "journal.h"
#include "read.h"
#include "storage_internal.h"

enum txn_state { TXN_OPEN = 0, TXN_VOTED, TXN_FAILED };

struct txn_undone {
	ds_oid oid;
	ds_tid serial;
};

struct ds_txn {
	ds_storage *s;
	ds_tid tid;
	ds_tid prev_tid;
	enum txn_state state;
	char *user, *description;
	unsigned char *ext;
	size_t ulen, dlen, elen;
	char **names;              /* files written, first-write order */
	size_t nnames, capnames;
	struct hashmap written; /* name -> (void *)1 */
	unsigned char *oids;       /* oid block, 8 bytes each */
	size_t noids, capoids;
	ds_oid max_oid;
	struct txn_undone *undone;
	size_t nundone, capundone;
};

ds_storage *
txn_storage(const ds_txn *t)
{
	return t->s;
}

ds_tid
ds_txn_tid(const ds_txn *t)
{
	return t->tid;
}

int
txn_fail(ds_txn *t, int status)
{
	t->state = TXN_FAILED;
	return status;
}

int
txn_check_open(const ds_txn *t, const char *op, ds_error *err)
{
	char hex[17];

	ds_id_format(t->tid, hex);
	if (t->state == TXN_FAILED)
		return ds_error_set(err, DS_ESTATE,
		                    "%s in transaction %s: the transaction failed "
		                    "earlier; abort it", op, hex);
	if (t->state == TXN_VOTED)
		return ds_error_set(err, DS_ESTATE,
		                    "%s in transaction %s: already voted", op, hex);
	return DS_OK;
}

ds_tid
txn_undone_get(const ds_txn *t, ds_oid oid)
{
	for (size_t i = 0; i < t->nundone; i++)
		if (t->undone[i].oid == oid)
			return t->undone[i].serial;
	return 0;
}

int
txn_undone_set(ds_txn *t, ds_oid oid, ds_tid serial, ds_error *err)
{
	for (size_t i = 0; i < t->nundone; i++)
		if (t->undone[i].oid == oid) {
			t->undone[i].serial = serial;
			return DS_OK;
		}
	if (t->nundone == t->capundone) {
		size_t cap = t->capundone ? 2 * t->capundone : 16;
		struct txn_undone *u = realloc(t->undone, cap * sizeof(*u));
		if (u == NULL)
			return ds_error_set(err, DS_ENOMEM, "undo: out of memory");
		t->undone = u;
		t->capundone = cap;
	}
	t->undone[t->nundone].oid = oid;
	t->undone[t->nundone].serial = serial;
	t->nundone++;
	return DS_OK;
}

static void
txn_free(ds_txn *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nnames; i++)
		free(t->names[i]);
	free(t->names);
	hashmap_free(&t->written);
	free(t->user);
	free(t->description);
	free(t->ext);
	free(t->oids);
	free(t->undone);
	free(t);
}

/* Release the storage's one-transaction slot. */
static void
txn_release(ds_storage *s)
{
	pthread_mutex_lock(&s->mu);
	s->txn_active = 0;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static int
txn_dup(const void *src, size_t len, void **out)
{
	*out = malloc(len + 1);
	if (*out == NULL)
		return DS_ENOMEM;
	if (len)
		memcpy(*out, src, len);
	((char *)*out)[len] = '\0';
	return DS_OK;
}

/* Seconds a history's newest tid may lie ahead of the clock before the
 * history counts as broken: the clock shear checkds tolerates. */
#define TXN_FUTURE_TOLERANCE 60

/* Refuse to extend a broken history. A new transaction's back pointer is
 * x.serial, so a commit on a storage whose x.serial names a transaction
 * file that is missing or not a valid transaction file would link new
 * history onto nothing, and a tid in the future would make every new tid
 * (always above the last one) lie in the future too. Only the chain's
 * head is checked, once per open (s->head_checked): the file x.serial
 * names must be readable with a valid header and its own tid (and md5,
 * when it has one), and that tid must not be more than
 * TXN_FUTURE_TOLERANCE seconds past now. Walking the whole chain would
 * cost a read per transaction on every open; that is `ds check`'s job,
 * and the message sends the user there. The check belongs here rather
 * than in open because a storage with a broken history must still open,
 * for reading and for recovery (ds check recovers a storage that was not
 * closed cleanly before checking it); only extending it is refused.
 * After our own first commit the head is ours, so it is not rechecked.
 * Errors: DS_ECORRUPT (broken: missing or invalid file, future tid),
 * DS_EIO, DS_ENOMEM. */
static int
txn_check_head(ds_storage *s, ds_error *err)
{
	unsigned char *buf = NULL;
	ds_txnrec rec;
	ds_error e;
	ds_tid head;
	char hex[17], when[32];
	int rc;

	pthread_mutex_lock(&s->mu);
	head = s->last_tid;
	rc = s->head_checked;
	pthread_mutex_unlock(&s->mu);
	if (rc || head == 0)
		return DS_OK;
	ds_id_format(head, hex);
	if (ds_tid_to_time(head) > (double)time(NULL) + TXN_FUTURE_TOLERANCE) {
		ds_tid_format(head, when);
		return ds_error_set(err, DS_ECORRUPT,
		                    "commit to %s refused: the history is broken: "
		                    "x.serial names transaction %s (%s), more than "
		                    "%d seconds in the future; `ds check %s` shows "
		                    "why", s->home, hex, when, TXN_FUTURE_TOLERANCE,
		                    s->home);
	}
	ds_error_clear(&e);
	rc = read_txnfile(s, head, 1, &buf, &rec, &e);
	free(buf);
	if (rc == DS_ENOTFOUND || rc == DS_ECORRUPT)
		return ds_error_set(err, DS_ECORRUPT,
		                    "commit to %s refused: the history is broken: "
		                    "x.serial names transaction %s, %s (%s); "
		                    "`ds check %s` shows why", s->home, hex,
		                    rc == DS_ENOTFOUND ? "whose file is missing" :
		                    "whose file is not a valid transaction file",
		                    e.msg, s->home);
	if (rc != DS_OK) {
		if (err != NULL)
			*err = e;
		return rc;
	}
	pthread_mutex_lock(&s->mu);
	s->head_checked = 1;
	pthread_mutex_unlock(&s->mu);
	return DS_OK;
}

/* Begin with the engine's next tid (want == 0) or with `want`, which
 * must be later than the last committed transaction. */
static int
txn_begin(ds_storage *s, ds_tid want, const char *user,
          const char *description, const unsigned char *extension,
          size_t extension_len, ds_txn **out, ds_error *err)
{
	ds_txn *t;
	size_t ulen = user ? strlen(user) : 0;
	size_t dlen = description ? strlen(description) : 0;
	int rc;

	*out = NULL;
	if (s->readonly)
		return ds_error_set(err, DS_ESTATE,
		                    "begin transaction in %s: storage opened "
		                    "read-only", s->home);
	if (ulen > 65535 || dlen > 65535 || extension_len > 65535)
		return ds_error_set(err, DS_EINVAL,
		                    "begin transaction in %s: %s too long (at "
		                    "most 65535 bytes)", s->home,
		                    ulen > 65535 ? "user name" :
		                    dlen > 65535 ? "description" :
		                    "extension data");
	rc = txn_check_head(s, err);
	if (rc != DS_OK)
		return rc;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return ds_error_set(err, DS_ENOMEM, "begin transaction: out of "
		                    "memory");
	hashmap_init(&t->written);
	t->s = s;
	t->ulen = ulen;
	t->dlen = dlen;
	t->elen = extension_len;
	if (txn_dup(user ? user : "", ulen, (void **)&t->user) != DS_OK ||
	    txn_dup(description ? description : "", dlen,
	            (void **)&t->description) != DS_OK ||
	    txn_dup(extension, extension_len, (void **)&t->ext) != DS_OK) {
		txn_free(t);
		return ds_error_set(err, DS_ENOMEM,
		                    "begin transaction: out of memory");
	}

	/* one transaction at a time, as ZODB's commit lock */
	pthread_mutex_lock(&s->mu);
	while (s->txn_active && !s->broken)
		pthread_cond_wait(&s->cv, &s->mu);
	if (s->broken) {
		rc = flush_broken_error(s, err);
		pthread_mutex_unlock(&s->mu);
		txn_free(t);
		return rc;
	}
	if (want != 0 && want <= s->last_tid) {
		char h1[17], h2[17];
		ds_id_format(want, h1);
		ds_id_format(s->last_tid, h2);
		rc = ds_error_set(err, DS_EINVAL,
		                  "begin transaction %s in %s: not later than "
		                  "the last transaction %s", h1, s->home, h2);
		pthread_mutex_unlock(&s->mu);
		txn_free(t);
		return rc;
	}
	s->txn_active = 1;
	if (want != 0) {
		/* later tids handed out by ds_txn_begin stay above it */
		t->tid = want;
		if (want > s->last_issued)
			s->last_issued = want;
	} else {
		t->tid = storage_next_tid_locked(s);
	}
	pthread_mutex_unlock(&s->mu);

	rc = journal_begin(s, t->tid, err);
	if (rc != DS_OK) {
		txn_release(s);
		txn_free(t);
		return rc;
	}
	*out = t;
	return DS_OK;
}

int
ds_txn_begin(ds_storage *s, const char *user, const char *description,
             const unsigned char *extension, size_t extension_len,
             ds_txn **out, ds_error *err)
{
	return txn_begin(s, 0, user, description, extension, extension_len,
	                 out, err);
}

int
ds_txn_begin_at(ds_storage *s, ds_tid tid, const char *user,
                const char *description, const unsigned char *extension,
                size_t extension_len, ds_txn **out, ds_error *err)
{
	*out = NULL;
	if (tid == 0)
		return ds_error_set(err, DS_EINVAL, "begin transaction in %s: "
		                    "tid zero", s->home);
	return txn_begin(s, tid, user, description, extension, extension_len,
	                 out, err);
}

static int txn_remember(ds_txn *t, const char *name, ds_error *err);

/* Write one file into the transaction directory; remember its name
 * (first-write order) so that vote can fsync it and abort remove it. The
 * name is remembered BEFORE the write: a write that fails part way leaves
 * a partial file that abort must remove too. */
static int
txn_write(ds_txn *t, const char *name, const void *buf, size_t len,
          ds_error *err)
{
	int rc;

	rc = txn_remember(t, name, err);
	if (rc != DS_OK)
		return rc;
	return journal_write(t->s, t->tid, name, buf, len, err);
}

static int
txn_remember(ds_txn *t, const char *name, ds_error *err)
{
	if (hashmap_get(&t->written, name) != NULL)
		return DS_OK;
	if (t->nnames == t->capnames) {
		size_t cap = t->capnames ? 2 * t->capnames : 16;
		char **v = realloc(t->names, cap * sizeof(char *));
		if (v == NULL)
			return ds_error_set(err, DS_ENOMEM,
			                    "transaction: out of memory");
		t->names = v;
		t->capnames = cap;
	}
	t->names[t->nnames] = strdup(name);
	if (t->names[t->nnames] == NULL)
		return ds_error_set(err, DS_ENOMEM, "transaction: out of memory");
	t->nnames++;
	return hashmap_put(&t->written, name, (void *)1, err);
}

int
txn_write_revision(ds_txn *t, ds_oid oid, ds_tid prev_serial,
                   ds_tid undo_from, const unsigned char *pickle, size_t len,
                   ds_error *err)
{
	ds_objrec rec;
	unsigned char *body = NULL, ptr[8];
	size_t blen;
	char name[DS_NAME_MAX], pname[DS_NAME_MAX];
	int rc, seen;

	memset(&rec, 0, sizeof(rec));
	rec.oid = oid;
	rec.undo_from = undo_from;
	rec.prev_serial = prev_serial;
	rec.serial = t->tid;
	rec.pickle = pickle;
	rec.pickle_len = len;
	rc = ds_objrec_encode(&rec, t->s->cfg.md5_write, &body, &blen, err);
	if (rc != DS_OK)
		return rc;
	ds_name_revision(oid, t->tid, name);
	ds_name_pointer(oid, pname);
	seen = hashmap_get(&t->written, pname) != NULL;
	rc = txn_write(t, name, body, blen, err);
	free(body);
	if (rc != DS_OK)
		return rc;
	ds_put_u64(ptr, t->tid);
	rc = txn_write(t, pname, ptr, 8, err);
	if (rc != DS_OK)
		return rc;
	if (!seen) {
		/* the oid block: first-store order, no duplicates */
		if (t->noids == t->capoids) {
			size_t cap = t->capoids ? 2 * t->capoids : 16;
			unsigned char *v = realloc(t->oids, cap * 8);
			if (v == NULL)
				return ds_error_set(err, DS_ENOMEM,
				                    "transaction: out of memory");
			t->oids = v;
			t->capoids = cap;
		}
		ds_put_u64(t->oids + 8 * t->noids, oid);
		t->noids++;
	}
	if (oid > t->max_oid)
		t->max_oid = oid;
	/* x.oid is "the highest oid allocated": an oid stored above it is
	 * taken from now on, so that ds_storage_new_oid never hands it out
	 * (vote writes x.oid from this; an abort only leaves a gap) */
	pthread_mutex_lock(&t->s->mu);
	if (oid > t->s->last_oid)
		t->s->last_oid = oid;
	pthread_mutex_unlock(&t->s->mu);
	return DS_OK;
}

int
ds_txn_store(ds_txn *t, ds_oid oid, ds_tid expected_serial,
             const void *pickle, size_t len, ds_error *err)
{
	ds_tid current = 0;
	char ohex[17], chex[17], ehex[17];
	int rc;

	rc = txn_check_open(t, "store", err);
	if (rc != DS_OK)
		return rc;
	ds_id_format(oid, ohex);
	if (len == 0)
		return ds_error_set(err, DS_EINVAL,
		                    "store oid %s: empty pickle (that would mean "
		                    "\"creation undone\")", ohex);
	rc = ds_storage_current_serial(t->s, oid, &current, err);
	if (rc == DS_ENOTFOUND) {
		/* no previous revision of this object */
		current = 0;
	} else if (rc != DS_OK) {
		return txn_fail(t, rc);
	} else if (current != expected_serial) {
		ds_id_format(current, chex);
		ds_id_format(expected_serial, ehex);
		return txn_fail(t, ds_error_set(err, DS_ECONFLICT,
		    "store oid %s: conflict: current serial %s, expected %s",
		    ohex, chex, ehex));
	}
	rc = txn_write_revision(t, oid, current, 0, pickle, len, err);
	if (rc != DS_OK)
		return txn_fail(t, rc);
	return DS_OK;
}

int
ds_txn_restore(ds_txn *t, ds_oid oid, ds_tid serial, const void *pickle,
               size_t len, ds_tid data_serial, ds_error *err)
{
	ds_tid current = 0;
	char ohex[17], h1[17], h2[17];
	int rc;

	rc = txn_check_open(t, "restore", err);
	if (rc != DS_OK)
		return rc;
	ds_id_format(oid, ohex);
	if (serial != t->tid) {
		/* a revision file is named by its transaction's tid, and the
		 * transaction file lists it: the two cannot differ */
		ds_id_format(serial, h1);
		ds_id_format(t->tid, h2);
		return ds_error_set(err, DS_EINVAL,
		                    "restore oid %s: serial %s is not the "
		                    "transaction's tid %s", ohex, h1, h2);
	}
	if (data_serial >= t->tid) {
		ds_id_format(data_serial, h1);
		return ds_error_set(err, DS_EINVAL,
		                    "restore oid %s: data serial %s is not "
		                    "earlier than the transaction", ohex, h1);
	}
	if (len == 0)
		pickle = NULL;   /* "creation undone": a 72-byte revision */
	rc = ds_storage_current_serial(t->s, oid, &current, err);
	if (rc == DS_ENOTFOUND)
		current = 0;
	else if (rc != DS_OK)
		return txn_fail(t, rc);
	if (current >= t->tid) {
		/* reads see committed revisions only, all earlier than t */
		ds_id_format(current, h1);
		return txn_fail(t, ds_error_set(err, DS_ECORRUPT,
		    "restore oid %s: current serial %s is not earlier than "
		    "the transaction", ohex, h1));
	}
	rc = txn_write_revision(t, oid, current, data_serial, pickle, len,
	                        err);
	if (rc != DS_OK)
		return txn_fail(t, rc);
	return DS_OK;
}

int
ds_txn_vote(ds_txn *t, ds_error *err)
{
	ds_storage *s = t->s;
	ds_txnrec rec;
	unsigned char *body = NULL, x[8];
	size_t blen;
	char name[DS_NAME_MAX];
	ds_oid xoid;
	int rc;

	rc = txn_check_open(t, "vote", err);
	if (rc != DS_OK)
		return rc;
	pthread_mutex_lock(&s->mu);
	t->prev_tid = s->last_tid;
	if (t->max_oid > s->last_oid)
		s->last_oid = t->max_oid;   /* stores above x.oid raise it */
	xoid = s->last_oid;
	pthread_mutex_unlock(&s->mu);

	memset(&rec, 0, sizeof(rec));
	rec.tid = t->tid;
	rec.prev_tid = t->prev_tid;
	rec.user = t->user;
	rec.user_len = t->ulen;
	rec.description = t->description;
	rec.description_len = t->dlen;
	rec.extension = t->ext;
	rec.extension_len = t->elen;
	rec.oids = t->oids;
	rec.noids = t->noids;
	rc = ds_txnrec_encode(&rec, s->cfg.md5_write, &body, &blen, err);
	if (rc != DS_OK)
		return txn_fail(t, rc);
	ds_name_transaction(t->tid, name);
	rc = txn_write(t, name, body, blen, err);
	free(body);
	if (rc != DS_OK)
		return txn_fail(t, rc);
	/* the database's most recent oid and serial, in every transaction */
	ds_put_u64(x, xoid);
	rc = txn_write(t, "x.oid", x, 8, err);
	if (rc != DS_OK)
		return txn_fail(t, rc);
	ds_put_u64(x, t->tid);
	rc = txn_write(t, "x.serial", x, 8, err);
	if (rc != DS_OK)
		return txn_fail(t, rc);
	/* everything on disk: only the rename (the commit point) remains */
	rc = journal_sync(s, t->tid, t->names, t->nnames, err);
	if (rc != DS_OK)
		return txn_fail(t, rc);
	t->state = TXN_VOTED;
	return DS_OK;
}

int
ds_txn_finish(ds_txn *t, ds_tid *tid, ds_error *err)
{
	ds_storage *s = t->s;
	struct jdir *d = NULL;
	char done[DS_PATH_MAX];
	int rc, committed = 0;

	if (t->state == TXN_OPEN) {
		rc = ds_txn_vote(t, err);
		if (rc != DS_OK) {
			ds_txn_abort(t);
			return rc;
		}
	}
	if (t->state != TXN_VOTED) {
		rc = txn_check_open(t, "finish", err);
		ds_txn_abort(t);
		return rc;
	}
	rc = journal_jdir_new(t->tid, t->names, t->nnames, &d, err);
	if (rc != DS_OK) {
		ds_txn_abort(t);
		return rc;
	}
	rc = journal_commit(s, t->tid, err);
	if (rc == DS_OK) {
		committed = 1;
	} else if (journal_dirpath(s, t->tid, "done", done, sizeof(done),
	                           NULL) == DS_OK && access(done, F_OK) == 0) {
		/* renamed, but the fsync of journal/ failed: the
		 * transaction is visible; report the error all the same */
		committed = 1;
	}
	if (!committed) {
		journal_jdir_free(d);
		ds_txn_abort(t);
		return rc;
	}
	pthread_mutex_lock(&s->mu);
	s->last_tid = t->tid;
	/* the objects written have new current revisions: forget the old
	 * ones (in the same critical section as the new files become
	 * readable, see register below) */
	for (size_t i = 0; i < t->noids; i++)
		cache_drop(s->cache, ds_get_u64(t->oids + 8 * i));
	s->cache_gen++;
	if (tid != NULL)
		*tid = t->tid;
	{
		int rc2 = flush_register_locked(s, d,
		                                  rc == DS_OK ? err : NULL);
		if (rc == DS_OK)
			rc = rc2;
	}
	s->txn_active = 0;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	txn_free(t);
	return rc;
}

void
ds_txn_abort(ds_txn *t)
{
	if (t == NULL)
		return;
	journal_discard(t->s, t->tid, t->names, t->nnames);
	txn_release(t->s);
	txn_free(t);
}
