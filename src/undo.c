/*
 * undo.c - transactional undo, as the original's Full.transactionalUndo.
 *
 * Undoing transaction U inside transaction T writes, for every oid in U's
 * oid block (in that order), a new revision with serial T whose previous
 * serial is the object's current serial, and:
 *  - when U created the object (its revision's previous serial is zero):
 *    an empty pickle (a 72-byte "creation undone" file), bytes 16-23 zero;
 *  - otherwise: the pickle of the revision before U's, and bytes 16-23 =
 *    that revision's serial (the undo source).
 * It is refused when the object's current revision is neither U's nor a
 * copy of U's made by an earlier undo (bytes 16-23 == U): a later
 * transaction changed it. [md5policy] undo decides md5 checks.
 *
 * Unlike the original, everything is checked before the first file is
 * written, so a refused undo leaves T usable.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "read.h"
#include "storage_internal.h"

struct undo_item {
	ds_oid oid;
	ds_tid current;       /* the object's current serial */
	ds_tid prev;          /* revision restored (0: creation undone) */
};

int
ds_txn_undo(ds_txn *t, ds_tid tid, ds_oid **oidsp, size_t *noidsp,
            ds_error *err)
{
	ds_storage *s;
	unsigned char *tbuf = NULL, *buf = NULL;
	ds_txnrec trec;
	ds_objrec rec;
	struct undo_item *items = NULL;
	size_t n = 0;
	char th[17], oh[17];
	int rc, check;

	if (oidsp)
		*oidsp = NULL;
	if (noidsp)
		*noidsp = 0;
	rc = txn_check_open(t, "undo", err);
	if (rc != DS_OK)
		return rc;
	s = txn_storage(t);
	check = s->cfg.md5_undo;
	ds_id_format(tid, th);
	rc = read_txnfile(s, tid, check, &tbuf, &trec, err);
	if (rc == DS_ENOTFOUND)
		return ds_error_set(err, DS_ENOTFOUND,
		                    "undo %s in %s: no record of that transaction",
		                    th, s->home);
	if (rc != DS_OK)
		return rc;
	items = calloc(trec.noids ? trec.noids : 1, sizeof(*items));
	if (items == NULL) {
		rc = ds_error_set(err, DS_ENOMEM, "undo: out of memory");
		goto out;
	}
	/* pass 1: is every object eligible, and is what we restore there? */
	for (n = 0; n < trec.noids; n++) {
		struct undo_item *it = &items[n];
		ds_tid current, undocurrent;

		it->oid = ds_get_u64(trec.oids + 8 * n);
		ds_id_format(it->oid, oh);
		/* the revision to be undone */
		rc = read_revision(s, it->oid, tid, check, &buf, &rec, err);
		if (rc == DS_ENOTFOUND)
			rc = ds_error_set(err, DS_ENOTFOUND,
			                  "undo %s in %s: revision of oid %s is gone "
			                  "(packed)", th, s->home, oh);
		if (rc != DS_OK)
			goto out;
		it->prev = rec.prev_serial;
		free(buf);
		buf = NULL;
		rc = ds_storage_current_serial(s, it->oid, &current, err);
		if (rc != DS_OK)
			goto out;
		it->current = current;
		undocurrent = txn_undone_get(t, it->oid);
		if (undocurrent == 0)
			undocurrent = current;
		if (undocurrent != tid) {
			/* maybe the current revision is a copy of the one
			 * undone, made by an earlier undo */
			rc = read_revision(s, it->oid, undocurrent, check, &buf,
			                   &rec, err);
			if (rc != DS_OK)
				goto out;
			if (rec.undo_from != tid) {
				char ch[17];
				ds_id_format(undocurrent, ch);
				rc = ds_error_set(err, DS_ECONFLICT,
				    "undo %s in %s: some objects were modified by "
				    "a later transaction: oid %s is now at %s", th,
				    s->home, oh, ch);
				goto out;
			}
			free(buf);
			buf = NULL;
		}
		if (it->prev != 0) {
			/* the revision that becomes current again */
			rc = read_revision(s, it->oid, it->prev, check, &buf,
			                   &rec, err);
			if (rc == DS_ENOTFOUND) {
				char ph[17];
				ds_id_format(it->prev, ph);
				rc = ds_error_set(err, DS_ENOTFOUND,
				    "undo %s in %s: previous revision %s of oid "
				    "%s is gone (packed)", th, s->home, ph, oh);
			}
			if (rc != DS_OK)
				goto out;
			free(buf);
			buf = NULL;
		}
	}
	/* pass 2: write the new revisions */
	for (size_t i = 0; i < n; i++) {
		struct undo_item *it = &items[i];

		if (it->prev == 0) {
			rc = txn_write_revision(t, it->oid, it->current, 0,
			                        (const unsigned char *)"", 0,
			                        err);
		} else {
			rc = read_revision(s, it->oid, it->prev, check, &buf,
			                   &rec, err);
			if (rc == DS_OK)
				rc = txn_undone_set(t, it->oid, it->prev, err);
			if (rc == DS_OK)
				rc = txn_write_revision(t, it->oid, it->current,
				                        it->prev, rec.pickle,
				                        rec.pickle_len, err);
			free(buf);
			buf = NULL;
		}
		if (rc != DS_OK) {
			rc = txn_fail(t, rc);
			goto out;
		}
	}
	if (oidsp != NULL) {
		ds_oid *v = calloc(n ? n : 1, sizeof(ds_oid));
		if (v == NULL) {
			rc = ds_error_set(err, DS_ENOMEM, "undo: out of memory");
			goto out;
		}
		for (size_t i = 0; i < n; i++)
			v[i] = items[i].oid;
		*oidsp = v;
		if (noidsp)
			*noidsp = n;
	}
	rc = DS_OK;
out:
	free(buf);
	free(items);
	free(tbuf);
	return rc;
}
