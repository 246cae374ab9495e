/*
 * helper_engine.h - helpers for the unit tests of the storage engine and
 * what runs next to it (test_engine*.c, test_control.c, test_snapshot.c):
 * the OK() check, whole-tree checksums, small file utilities, editing a
 * scratch storage's config/settings, a log callback that keeps the
 * messages, the lock probe. Every helper fails the running cmocka test
 * when something it needs is missing.
 */
#ifndef HELPER_ENGINE_H
#define HELPER_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "dirstorage.h"

/* A library call that must succeed: the ds_error named err in the
 * caller's scope (the one the call is given) is cleared first, and the
 * test fails with its message otherwise. Needs cmocka.h. */
#define OK(call)                                                        \
	do {                                                            \
		int rc_;                                                \
		ds_error_clear(&err);                                   \
		rc_ = (call);                                           \
		if (rc_ != DS_OK)                                       \
			fail_msg("%s: %s (%d)", #call, err.msg, rc_);   \
	} while (0)

/* What a ds_log_fn wrote, one "<level> <message>" line each (cut at
 * the buffer's end). */
struct engine_log {
	char text[16384];
	size_t len;
};

/* A ds_log_fn: ctx is a struct engine_log. */
void engine_log_cb(int level, const char *msg, void *ctx);
/* 1 when home/misc/<which> (lock, sublock) can be locked now. */
int engine_lockable(const char *home, const char *which);

/* md5 (32 lowercase hex) over the sorted lines "<type> <mode> <relpath>
 * <md5 of content>" of every file and directory under dir: equal digests
 * mean byte-for-byte equal trees, modes included. *count (may be NULL)
 * gets the number of regular files. */
void engine_tree_digest(const char *dir, char out[33], size_t *count);
/* Number of entries directly in dir (not . and ..). */
size_t engine_dir_entries(const char *dir);
/* Whole file into a malloc'd buffer (NUL added); fails the test if
 * missing. */
unsigned char *engine_slurp(const char *path, size_t *len);
/* 1 when path exists. */
int engine_exists(const char *path);
/* File mode bits (& 07777). */
unsigned engine_mode(const char *path);
/* Replace the value of `key:` in home/config/settings. */
void engine_set_setting(const char *home, const char *key, const char *value);
/* A new empty Full storage (mkds) at scratch/name in format fmt;
 * returns the malloc'd path. */
char *engine_mkds(const char *scratch, const char *name, const char *fmt);

#endif
