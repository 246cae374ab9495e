/*
 * helper_engine.h - helpers for the storage engine's unit tests
 * (test_engine*.c): whole-tree checksums, small file utilities, editing a
 * scratch storage's config/settings. Every helper fails the running cmocka
 * test when something it needs is missing.
 */
#ifndef HELPER_ENGINE_H
#define HELPER_ENGINE_H

#include <stddef.h>
#include <stdint.h>

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
