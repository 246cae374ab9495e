/*
 * slot.c - replication slots: what each replica of this (master) storage
 * is known to hold, so that a pack never removes history a replica still
 * needs to be brought up to date.
 *
 * How the master learns it: a replica's request names the transaction it
 * holds (its x.serial) and proves it with that transaction file's md5;
 * the master side admits the request only when that file is its own. So
 * an admitted request from replica NAME at tid X is proof that NAME holds
 * X, and nothing the master sends later is counted until the replica's
 * next request proves it applied (a slot is never ahead of its replica:
 * the increment being sent may still fail). Our replica names itself
 * with a "slot NAME" request line (protocol.h); the original replica
 * sends no name, and its requests record nothing.
 *
 * One file per slot, misc/slots/<md5 of the name, 32 hex digits>, so that
 * two replicas replicating at once never rewrite each other's record.
 * Content (text):
 *   ds slot 1
 *   name <NAME>
 *   tid <16 hex digits>
 *   seen <unix seconds of the admitted request>
 * Written through ds_io_replace_file (a temporary name, fsync, rename
 * over the old one, then misc/slots/ fsynced): a crash leaves the old
 * record or the new one, whole, never a mix; the temporary a killed
 * write leaves (DS_IO_TEMP_PREFIX) is skipped by the listing and reused
 * by the next write of that slot.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "internal.h"

#define SLOT_DIR "misc/slots"
#define SLOT_MAGIC "ds slot 1"
#define SLOT_FILE_MAX 4096

int
ds_slot_name_valid(const char *name)
{
	size_t n = strlen(name), i;

	if (n == 0 || n > DS_SLOT_NAME_MAX)
		return 0;
	/* a request line is stripped: no leading or trailing blanks */
	if (name[0] == ' ' || name[n - 1] == ' ')
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)name[i];
		if (ch < 0x20 || ch == 0x7f)
			return 0;
	}
	return 1;
}

/* HOME/misc/slots/<md5 hex of name> into out. */
static int
slot_path(const char *home, const char *name, char *out, size_t outsz,
          ds_error *err)
{
	unsigned char md[16];
	char hex[33];

	ds_md5(name, strlen(name), md);
	ds_hex_lower(md, 16, hex);
	if ((size_t)snprintf(out, outsz, "%s/" SLOT_DIR "/%s", home, hex) >=
	    outsz)
		return ds_error_set(err, DS_EINVAL, "slot: path too long: %s",
		                    home);
	return DS_OK;
}

/* Decode the slot file at path (buf, len) into *sl. */
static int
slot_decode(const char *path, const char *buf, size_t len, struct ds_slot *sl,
            ds_error *err)
{
	const char *p = buf, *end = buf + len;
	int have = 0;

	memset(sl, 0, sizeof(*sl));
	while (p < end) {
		const char *e = memchr(p, '\n', (size_t)(end - p));
		size_t n;
		char line[DS_SLOT_NAME_MAX + 16];

		if (e == NULL)
			break; /* a last line without newline: not ours */
		n = (size_t)(e - p);
		if (n >= sizeof(line))
			goto bad;
		memcpy(line, p, n);
		line[n] = '\0';
		p = e + 1;
		if (have == 0) {
			if (strcmp(line, SLOT_MAGIC) != 0)
				goto bad;
			have |= 1;
		} else if (strncmp(line, "name ", 5) == 0) {
			if (!ds_slot_name_valid(line + 5))
				goto bad;
			memcpy(sl->name, line + 5, n - 5 + 1);
			have |= 2;
		} else if (strncmp(line, "tid ", 4) == 0) {
			if (ds_id_parse(line + 4, &sl->tid) != DS_OK)
				goto bad;
			have |= 4;
		} else if (strncmp(line, "seen ", 5) == 0) {
			char *x;
			errno = 0;
			sl->seen = strtoll(line + 5, &x, 10);
			if (errno != 0 || *x != '\0' || x == line + 5 ||
			    sl->seen < 0)
				goto bad;
			have |= 8;
		}
		/* other lines: a later version's, ignored */
	}
	if (have == 15)
		return DS_OK;
bad:
	return ds_error_set(err, DS_ECORRUPT, "slot %s: not a replication "
	                    "slot record (forget it with ds slots --forget, "
	                    "or remove the file)", path);
}

int
ds_slot_record(const char *home, const char *name, ds_tid tid, int do_sync,
               ds_error *err)
{
	char dir[DS_PATH_MAX], path[DS_PATH_MAX], buf[SLOT_FILE_MAX], hex[17];
	int rc, n;

	if (!ds_slot_name_valid(name))
		return ds_error_set(err, DS_EINVAL, "slot: invalid name '%.80s' "
		                    "(1 to %d printable characters, no blanks "
		                    "at either end)", name, DS_SLOT_NAME_MAX);
	if ((size_t)snprintf(dir, sizeof(dir), "%s/" SLOT_DIR, home) >=
	    sizeof(dir))
		return ds_error_set(err, DS_EINVAL, "slot: path too long: %s",
		                    home);
	if ((rc = slot_path(home, name, path, sizeof(path), err)) != DS_OK)
		return rc;
	rc = ds_io_mkdir(dir, 0755, 1, err);
	if (rc == DS_OK && do_sync) {
		/* misc/slots' entry in misc/ must last before a slot inside
		 * it counts as written (every time: a killed first write may
		 * have made the directory without this fsync) */
		char misc[DS_PATH_MAX];
		snprintf(misc, sizeof(misc), "%s/misc", home);
		rc = ds_io_fsync_dir(misc, err);
	}
	if (rc != DS_OK)
		return rc;
	ds_id_format(tid, hex);
	n = snprintf(buf, sizeof(buf), SLOT_MAGIC "\nname %s\ntid %s\nseen "
	             "%lld\n", name, hex, (long long)time(NULL));
	if (n < 0 || (size_t)n >= sizeof(buf))
		return ds_error_set(err, DS_EINVAL, "slot: record too long");
	/* a temporary name, fsync, rename over the old record: a crash
	 * leaves the old record or this one */
	rc = ds_io_replace_file(path, buf, (size_t)n, 0644, do_sync, err);
	if (rc != DS_OK)
		return rc;
	/* the rename is durable only once the directory is */
	return do_sync ? ds_io_fsync_dir(dir, err) : DS_OK;
}

static int
slot_cmp(const void *a, const void *b)
{
	const struct ds_slot *x = a, *y = b;

	if (x->tid != y->tid)
		return x->tid < y->tid ? -1 : 1;
	return strcmp(x->name, y->name);
}

int
ds_slot_list(const char *home, struct ds_slot **out, size_t *count,
             ds_error *err)
{
	char dir[DS_PATH_MAX], path[DS_PATH_MAX];
	struct ds_slot *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	int rc = DS_OK;

	*out = NULL;
	*count = 0;
	if ((size_t)snprintf(dir, sizeof(dir), "%s/" SLOT_DIR, home) >=
	    sizeof(dir))
		return ds_error_set(err, DS_EINVAL, "slot: path too long: %s",
		                    home);
	d = opendir(dir);
	if (d == NULL) {
		if (errno == ENOENT)
			return DS_OK; /* no replica has named itself yet */
		return ds_error_sys(err, errno, "slots: open directory", dir);
	}
	while ((de = readdir(d)) != NULL) {
		unsigned char *buf = NULL;
		size_t len;

		/* dot files: ".", "..", and the temporary of a write that
		 * was killed (the record it would replace is still there) */
		if (de->d_name[0] == '.' || ds_io_is_temp(de->d_name))
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir,
		                     de->d_name) >= sizeof(path)) {
			rc = ds_error_set(err, DS_EINVAL, "slot: path too "
			                  "long: %s", dir);
			goto out;
		}
		if (n == cap) {
			size_t ncap = cap ? 2 * cap : 8;
			struct ds_slot *nv = realloc(v, ncap * sizeof(*nv));
			if (nv == NULL) {
				rc = ds_error_set(err, DS_ENOMEM, "slots: out "
				                  "of memory");
				goto out;
			}
			v = nv;
			cap = ncap;
		}
		rc = ds_file_read(path, SLOT_FILE_MAX, &buf, &len, err);
		if (rc != DS_OK)
			goto out;
		rc = slot_decode(path, (const char *)buf, len, &v[n], err);
		free(buf);
		if (rc != DS_OK)
			goto out;
		n++;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), slot_cmp);
	*out = v;
	*count = n;
	v = NULL;
out:
	closedir(d);
	free(v);
	return rc;
}

void
ds_slot_list_free(struct ds_slot *slots)
{
	free(slots);
}

int
ds_slot_forget(const char *home, const char *name, ds_error *err)
{
	char dir[DS_PATH_MAX], path[DS_PATH_MAX];
	struct stat sb;
	int rc;

	if (!ds_slot_name_valid(name))
		return ds_error_set(err, DS_EINVAL, "slot: invalid name "
		                    "'%.80s'", name);
	if ((rc = slot_path(home, name, path, sizeof(path), err)) != DS_OK)
		return rc;
	if (lstat(path, &sb) != 0) {
		if (errno == ENOENT)
			return ds_error_set(err, DS_ENOTFOUND, "%s: no "
			                    "replication slot named '%s'", home,
			                    name);
		return ds_error_sys(err, errno, "slot: stat", path);
	}
	if ((rc = ds_io_unlink(path, err)) != DS_OK)
		return rc;
	snprintf(dir, sizeof(dir), "%s/" SLOT_DIR, home);
	/* the removal lasts: a forgotten slot must not come back after a
	 * power cut and hold pack back again */
	return ds_io_fsync_dir(dir, err);
}
