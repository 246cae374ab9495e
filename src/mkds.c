/*
 * mkds.c - create a new, empty storage laid out exactly as the original's
 * mkds.py lays it out:
 *
 *   HOME/ A/ journal/ B/ misc/ config/          directories, 0755
 *   config/settings                             the original's text, 0644
 *   config/identity                             32 random lowercase hex,
 *                                               no newline, 0644
 *   A/<x.oid> A/<x.serial> A/<x.packed>         8 zero bytes each, 0644,
 *                                               at their layout paths
 *
 * in that order. misc/ stays empty: lock files appear when a storage is
 * first opened. Modes are given to mkdir/open and the umask applies, as
 * with the original (umask 022 gives the modes above).
 *
 * Unlike the original, creation is durable and all-or-nothing: every file
 * is fsynced, then every directory we made (deepest first) and HOME's
 * parent, so a storage that ds_storage_create reported as made survives a
 * crash; a failure part way removes everything made so far.
 */
#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/rand.h>

#include "internal.h"
#include "settings_template.h"

#define MKDS_MAX_CREATED 32

/* What we made, in order, so a failure can undo it. */
struct mkds_made {
	char path[MKDS_MAX_CREATED][DS_PATH_MAX];
	int is_dir[MKDS_MAX_CREATED];
	size_t n;
};

static int
mkds_record(struct mkds_made *m, const char *path, int is_dir, ds_error *err)
{
	size_t len = strlen(path);

	if (m->n == MKDS_MAX_CREATED || len >= DS_PATH_MAX)
		return ds_error_set(err, DS_EINVAL, "mkds %s: too many paths",
		                    path);
	memcpy(m->path[m->n], path, len + 1);
	m->is_dir[m->n] = is_dir;
	m->n++;
	return DS_OK;
}

static int
mkds_mkdir(struct mkds_made *m, const char *home, const char *rel,
           ds_error *err)
{
	char path[DS_PATH_MAX];
	int rc;

	if (rel == NULL) {
		snprintf(path, sizeof(path), "%s", home);  /* length checked */
	} else {
		rc = ds_path_join(path, sizeof(path), home, rel, err);
		if (rc != DS_OK)
			return rc;
	}
	rc = ds_io_mkdir(path, 0755, 0, err);
	if (rc != DS_OK)
		return rc;
	return mkds_record(m, path, 1, err);
}

/* Write a new file (O_EXCL) and fsync it. */
static int
mkds_file(struct mkds_made *m, const char *home, const char *rel,
          const void *buf, size_t len, ds_error *err)
{
	char path[DS_PATH_MAX];
	int rc;

	rc = ds_path_join(path, sizeof(path), home, rel, err);
	if (rc != DS_OK)
		return rc;
	rc = ds_io_write_file(path, buf, len, 0644, 1, 1, err);
	if (rc != DS_OK) {
		/* O_EXCL: if the file exists now, we created it */
		struct stat st;
		if (rc != DS_EEXIST && lstat(path, &st) == 0)
			mkds_record(m, path, 0, NULL);
		return rc;
	}
	return mkds_record(m, path, 0, err);
}

/* An x.* file at its layout path, making the intermediate directories
 * (e.g. A/x/ in bushy) as the original does. */
static int
mkds_xfile(struct mkds_made *m, const char *home, ds_layout layout,
           const char *name, ds_error *err)
{
	static const unsigned char zeros[8];
	char rel[DS_RELPATH_MAX], sub[8 + DS_RELPATH_MAX];
	int rc;

	rc = ds_layout_name_to_path(layout, name, rel, sizeof(rel), err);
	if (rc != DS_OK)
		return rc;
	snprintf(sub, sizeof(sub), "A/%s", rel);
	for (char *p = sub + 2; *p != '\0'; p++) {
		struct stat st;
		char path[DS_PATH_MAX];
		if (*p != '/')
			continue;
		*p = '\0';
		rc = ds_path_join(path, sizeof(path), home, sub, err);
		if (rc == DS_OK && lstat(path, &st) != 0)
			rc = mkds_mkdir(m, home, sub, err);
		*p = '/';
		if (rc != DS_OK)
			return rc;
	}
	return mkds_file(m, home, sub, zeros, sizeof(zeros), err);
}

/* Remove what a failed creation made, newest first. Best effort: the
 * error being reported is the one that stopped the creation. */
static void
mkds_undo(const struct mkds_made *m)
{
	for (size_t i = m->n; i-- > 0;) {
		if (m->is_dir[i])
			ds_io_rmdir(m->path[i], NULL);
		else
			ds_io_unlink(m->path[i], NULL);
	}
}

int
ds_storage_create(const char *home, const char *classname,
                  const char *format, ds_error *err)
{
	static const char *const xnames[] = { "x.oid", "x.serial", "x.packed" };
	static const char *const dirs[] = { "A", "journal", "B", "misc",
	                                    "config" };
	struct mkds_made *made = NULL;
	unsigned char rnd[16];
	char identity[33], parent[DS_PATH_MAX];
	char *settings = NULL;
	size_t slen;
	ds_layout layout;
	ds_error lerr;
	struct stat st;
	int rc;

	/* The original's checks, in its order: format, class, existence. */
	if (ds_layout_parse(format, &layout, &lerr) != DS_OK)
		return ds_error_set(err, DS_ECONFIG, "mkds %s: unknown format "
		                    "'%s' (known: bushy, chunky, lawn, flat)", home,
		                    format);
	if (strcmp(classname, "Full") != 0 && strcmp(classname, "Minimal") != 0)
		return ds_error_set(err, DS_ECONFIG, "mkds %s: unknown storage "
		                    "class '%s' (known: Full, Minimal)", home,
		                    classname);
	if (lstat(home, &st) == 0)
		return ds_error_set(err, DS_EEXIST, "mkds %s: already exists; "
		                    "a new storage needs a new directory", home);
	if (errno != ENOENT)
		return ds_error_sys(err, errno, "mkds: stat", home);
	if (strlen(home) + 64 >= DS_PATH_MAX)
		return ds_error_set(err, DS_EINVAL, "mkds %s: path too long",
		                    home);

	/* identity: 16 bytes from OpenSSL's CSPRNG, as 32 lowercase hex */
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return ds_error_set(err, DS_EIO, "mkds %s: OpenSSL could not "
		                    "supply random bytes for the identity", home);
	ds_hex_lower(rnd, sizeof(rnd), identity);

	slen = strlen(SETTINGS_TEMPLATE_HEAD) + strlen("format: \n") +
	       strlen(format) + strlen(SETTINGS_TEMPLATE_MIDDLE) +
	       strlen("classname: \n") + strlen(classname) +
	       strlen(SETTINGS_TEMPLATE_TAIL);
	settings = malloc(slen + 1);
	made = calloc(1, sizeof(*made));
	if (settings == NULL || made == NULL) {
		rc = ds_error_set(err, DS_ENOMEM, "mkds %s: out of memory", home);
		goto out;
	}
	snprintf(settings, slen + 1, "%sformat: %s\n%sclassname: %s\n%s",
	         SETTINGS_TEMPLATE_HEAD, format, SETTINGS_TEMPLATE_MIDDLE,
	         classname, SETTINGS_TEMPLATE_TAIL);

	/* An EEXIST here (someone made it since lstat) is DS_EEXIST. */
	rc = mkds_mkdir(made, home, NULL, err);
	if (rc != DS_OK)
		goto out;
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		if ((rc = mkds_mkdir(made, home, dirs[i], err)) != DS_OK)
			goto out;
	if ((rc = mkds_file(made, home, "config/identity", identity, 32,
	                    err)) != DS_OK)
		goto out;
	for (size_t i = 0; i < sizeof(xnames) / sizeof(xnames[0]); i++)
		if ((rc = mkds_xfile(made, home, layout, xnames[i], err)) !=
		    DS_OK)
			goto out;

	/* The files are fsynced; now their directory entries, deepest
	 * directory first, so that everything else is durable before the
	 * settings file appears. */
	for (size_t i = made->n; i-- > 0;)
		if (made->is_dir[i] &&
		    (rc = ds_io_fsync_dir(made->path[i], err)) != DS_OK)
			goto out;
	/* config/settings is what makes a directory a storage (every tool
	 * refuses a home without it), so it is written last: a crash before
	 * this point leaves debris that no tool mistakes for a storage, and
	 * never a storage missing x.packed or its identity. */
	{
		/* written under a temporary name and renamed, so that a crash
		 * never leaves a torn settings file */
		char tmp[DS_PATH_MAX], final[DS_PATH_MAX];
		if ((rc = mkds_file(made, home, "config/.settings.new",
		                    settings, slen, err)) != DS_OK)
			goto out;
		snprintf(tmp, sizeof(tmp), "%s/config/.settings.new", home);
		snprintf(final, sizeof(final), "%s/config/settings", home);
		if ((rc = ds_io_rename(tmp, final, err)) != DS_OK ||
		    (rc = mkds_record(made, final, 0, err)) != DS_OK)
			goto out;
	}
	snprintf(parent, sizeof(parent), "%s/config", home);
	if ((rc = ds_io_fsync_dir(parent, err)) != DS_OK)
		goto out;
	/* last, HOME's own entry in its parent */
	snprintf(parent, sizeof(parent), "%s", home);
	if ((rc = ds_io_fsync_dir(dirname(parent), err)) != DS_OK)
		goto out;
out:
	if (rc != DS_OK && made != NULL)
		mkds_undo(made);
	free(made);
	free(settings);
	return rc;
}
