/*
 * backup.h - the parts of backup.c that the unit tests reach directly:
 * the backup index (BACKUPS/tindex, the original backup.py's format),
 * the reference selection of an incremental backup, and the rule that
 * decides which archive members a restore accepts.
 */
#ifndef DS_BACKUP_H
#define DS_BACKUP_H

#include <sys/types.h>

#include "dirstorage.h"

/* One line of the index: "<seq> <unix time> <tid, 16 hex>". */
struct backup_entry {
	unsigned long seq;
	long long timestamp;
	ds_tid tid;
};

struct backup_index {
	struct backup_entry *e;  /* in file order */
	size_t n;
	unsigned long max_seq;   /* 0 when empty */
};

/* Parse the index text as backup.py reads it: '#' starts a comment,
 * blank lines are skipped, every other line holds at least three
 * whitespace-separated fields (sequence number, timestamp, tid).
 * `what` names the file in messages. out is filled (free with
 * backup_index_free).
 * Errors: DS_ECORRUPT (a line that is not that: its number and why),
 * DS_ENOMEM. */
int backup_index_parse(const char *text, size_t len, const char *what,
                       struct backup_index *out, ds_error *err);
void backup_index_free(struct backup_index *idx);

/* backup.py's find_rev: the last entry, in file order, before the first
 * one whose timestamp is later than goal. NULL when there is none. */
const struct backup_entry *backup_index_find(const struct backup_index *idx,
                                             long long goal);

/* The header backup.py writes into a new index, byte for byte. */
extern const char backup_index_header[];

/* What a restore does with an archive member. */
enum backup_member_kind {
	BM_SKIP = 0,    /* the archive's root ("." or "./"): nothing to do */
	BM_TOPDIR,      /* a directory of the storage home (A/, misc/, ...) */
	BM_DIR,         /* a directory beneath A/ */
	BM_CONFIG,      /* config/NAME, a regular file */
	BM_DATA,        /* a database file beneath A/ */
};

/* Classify member `name` of file type `type` (S_IFREG, S_IFDIR, ...;
 * hardlink: the member is a hard link) and write the normalised path
 * (leading "./" and a directory's trailing '/' removed) into norm.
 * A/ files must be the path `layout` gives a database name (have_layout
 * 0: no config/settings seen yet, A/ files refused). Refused: absolute
 * names, empty, "." or ".." components, anything but regular files and
 * directories (symlinks, hard links, devices, fifos), and names outside
 * a storage backup's shape (top-level directories, config/NAME, A/...).
 * Errors: DS_EPROTO (refused: the message says why), DS_EINVAL (norm too
 * small). */
int backup_member_check(const char *name, mode_t type, int hardlink,
                        int have_layout, ds_layout layout, char *norm,
                        size_t normsz, int *kind, ds_error *err);

#endif /* DS_BACKUP_H */
