/*
 * changes.c - the whatsnew walk: which files a replica at transaction X
 * lacks, in exactly the order the original whatsnew.py lists them.
 *
 * The walk starts at x.serial and follows the previous-tid pointers (bytes
 * 24..31 of each transaction file) while the tid is later than X. Its cost
 * is proportional to what changed since X, never to the storage's size:
 * only the transaction files of the walk are read, and only the oids they
 * list are remembered.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Open-addressing set of oids: the "first time seen" rule for `.c`
 * pointers. Slot value 0 is "empty", so oids are stored plus one is not
 * possible (oid 2^64-1); instead a separate flag marks the zero oid. */
struct changes_set {
	uint64_t *slot;
	size_t cap;     /* power of two */
	size_t count;
	int has_zero;
};

static uint64_t
changes_hash(uint64_t v)
{
	/* splitmix64 finaliser: oids are small sequential integers. */
	v ^= v >> 30;
	v *= 0xbf58476d1ce4e5b9ULL;
	v ^= v >> 27;
	v *= 0x94d049bb133111ebULL;
	v ^= v >> 31;
	return v;
}

/* Insert v; *added tells whether it was new. Errors: DS_ENOMEM. */
static int
changes_set_add(struct changes_set *s, uint64_t v, int *added, ds_error *err)
{
	size_t i;

	if (v == 0) {
		*added = !s->has_zero;
		s->has_zero = 1;
		return DS_OK;
	}
	if ((s->count + 1) * 2 > s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 256;
		uint64_t *n = calloc(ncap, sizeof(*n));
		if (n == NULL)
			return ds_error_set(err, DS_ENOMEM, "whatsnew: out of memory");
		for (size_t k = 0; k < s->cap; k++) {
			if (s->slot[k] == 0)
				continue;
			i = changes_hash(s->slot[k]) & (ncap - 1);
			while (n[i] != 0)
				i = (i + 1) & (ncap - 1);
			n[i] = s->slot[k];
		}
		free(s->slot);
		s->slot = n;
		s->cap = ncap;
	}
	i = changes_hash(v) & (s->cap - 1);
	while (s->slot[i] != 0) {
		if (s->slot[i] == v) {
			*added = 0;
			return DS_OK;
		}
		i = (i + 1) & (s->cap - 1);
	}
	s->slot[i] = v;
	s->count++;
	*added = 1;
	return DS_OK;
}

/* opts may be NULL */
#define changes_log(opts, ...) \
	ds_log((opts) ? (opts)->log : NULL, (opts) ? (opts)->log_ctx : NULL, \
	       __VA_ARGS__)

/* "A/<path of name>" into out. */
static int
changes_apath(ds_layout layout, const char *name, char *out, size_t outsz,
              ds_error *err)
{
	char rel[DS_RELPATH_MAX];
	int rc;

	rc = ds_layout_name_to_path(layout, name, rel, sizeof(rel), err);
	if (rc != DS_OK)
		return rc;
	return ds_path_join(out, outsz, "A", rel, err);
}

/* Read one of the 8-byte x.* files of home. */
static int
changes_read_x(const char *home, ds_layout layout, const char *name,
               uint64_t *value, ds_error *err)
{
	char rel[DS_RELPATH_MAX + 4], path[4096];
	unsigned char *buf = NULL;
	size_t len;
	int rc;

	if ((rc = changes_apath(layout, name, rel, sizeof(rel), err)) != DS_OK)
		return rc;
	if ((rc = ds_path_join(path, sizeof(path), home, rel, err)) != DS_OK)
		return rc;
	rc = ds_file_read(path, 64, &buf, &len, err);
	if (rc == DS_OK)
		rc = ds_xfile_decode(buf, len, path, value, err);
	free(buf);
	return rc;
}

int
ds_changes_walk(const char *home, ds_tid since,
                const struct ds_changes_opts *opts, ds_changes_fn fn,
                void *ctx, struct ds_changes_info *info, ds_error *err)
{
	struct ds_changes_info local;
	struct changes_set seen = {0};
	ds_config cfg;
	char name[DS_NAME_MAX], rel[DS_RELPATH_MAX + 4], path[4096];
	char hex[17], date[24], tidhex[17];
	unsigned char *buf = NULL;
	size_t len;
	ds_tid cur;
	int rc;

	if (info == NULL)
		info = &local;
	memset(info, 0, sizeof(*info));
	if ((rc = ds_config_load(home, &cfg, err)) != DS_OK)
		return rc;
	if (strcmp(cfg.classname, "Full") != 0)
		return ds_error_set(err, DS_ECONFIG,
		                    "whatsnew %s: this is not a Full storage", home);
	if ((rc = changes_read_x(home, cfg.layout, "x.serial", &info->newest,
	                         err)) != DS_OK)
		return rc;
	if ((rc = changes_read_x(home, cfg.layout, "x.packed", &info->packed,
	                         err)) != DS_OK)
		return rc;
	/* The original's two refusals, in its order. */
	if (info->newest < since)
		return ds_error_set(err, DS_EREFUSED,
		                    "specified transaction id is in the future");
	if (info->packed > since)
		return ds_error_set(err, DS_EREFUSED,
		                    "storage has been packed since the specified "
		                    "transaction");
	if (since == info->newest) {
		ds_id_format(since, hex);
		ds_tid_format(since, date);
		changes_log(opts, DS_LOG_INFO, "No transactions since %s %s", hex,
		            date);
		info->since_in_chain = 1;
		return DS_OK;
	}
	ds_id_format(info->newest, hex);
	ds_tid_format(info->newest, date);
	changes_log(opts, DS_LOG_INFO, "Newest transaction is %s %s", hex, date);

	/* Always subject to change. x.packed is never listed: master and
	 * replica are packed independently. */
	if ((rc = changes_apath(cfg.layout, "x.serial", rel, sizeof(rel),
	                        err)) != DS_OK ||
	    (rc = fn(rel, ctx, err)) != DS_OK)
		goto out;
	if ((rc = changes_apath(cfg.layout, "x.oid", rel, sizeof(rel),
	                        err)) != DS_OK ||
	    (rc = fn(rel, ctx, err)) != DS_OK)
		goto out;
	info->paths = 2;

	cur = info->newest;
	while (since < cur) {
		ds_txnrec t;

		ds_name_transaction(cur, name);
		if ((rc = changes_apath(cfg.layout, name, rel, sizeof(rel),
		                        err)) != DS_OK)
			goto out;
		if ((rc = ds_path_join(path, sizeof(path), home, rel, err)) !=
		    DS_OK)
			goto out;
		/* Read and verify before listing it: a missing or corrupt
		 * transaction file is a broken master, not an increment. */
		rc = ds_file_read(path, 0, &buf, &len, err);
		if (rc == DS_ENOTFOUND) {
			rc = ds_error_set(err, DS_ECORRUPT,
			                  "whatsnew %s: transaction file %s is "
			                  "missing: broken history", home, rel);
			goto out;
		}
		if (rc != DS_OK)
			goto out;
		if ((rc = ds_txnrec_decode(buf, len, path, &t, err)) != DS_OK)
			goto out;
		if (t.tid != cur) {
			ds_id_format(t.tid, tidhex);
			rc = ds_error_set(err, DS_ECORRUPT,
			                  "whatsnew %s: holds transaction id %s",
			                  path, tidhex);
			goto out;
		}
		if (t.prev_tid >= cur) {
			rc = ds_error_set(err, DS_ECORRUPT,
			                  "whatsnew %s: previous-transaction pointer "
			                  "does not go backwards", path);
			goto out;
		}
		if ((rc = fn(rel, ctx, err)) != DS_OK)
			goto out;
		info->transactions++;
		info->paths++;
		for (size_t i = 0; i < t.noids; i++) {
			ds_oid oid = ds_get_u64(t.oids + 8 * i);
			int added;

			if ((rc = changes_set_add(&seen, oid, &added, err)) !=
			    DS_OK)
				goto out;
			if (added) {
				/* the current-revision pointer, once per run */
				ds_name_pointer(oid, name);
				if ((rc = changes_apath(cfg.layout, name, rel,
				                        sizeof(rel), err)) != DS_OK ||
				    (rc = fn(rel, ctx, err)) != DS_OK)
					goto out;
				info->paths++;
				info->objects++;
			}
			ds_name_revision(oid, cur, name);
			if ((rc = changes_apath(cfg.layout, name, rel, sizeof(rel),
			                        err)) != DS_OK ||
			    (rc = fn(rel, ctx, err)) != DS_OK)
				goto out;
			info->paths++;
		}
		cur = t.prev_tid;
		free(buf);
		buf = NULL;
	}
	/* The original stops silently when it steps past `since` (a tid
	 * that is not in this history); say so only when asked. */
	info->since_in_chain = (cur == since);
	if (!info->since_in_chain) {
		ds_id_format(since, hex);
		changes_log(opts, DS_LOG_VERBOSE,
		            "transaction %s is not in the history of %s; listed "
		            "every transaction after it", hex, home);
	}
	changes_log(opts, DS_LOG_VERBOSE,
	            "%lu files in %lu objects in %lu transactions",
	            info->paths + 1, info->objects, info->transactions);
	rc = DS_OK;
out:
	free(buf);
	free(seen.slot);
	return rc;
}
