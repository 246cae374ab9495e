/*
 * helper_fixture.h - shared helpers for unit tests that use the fixture
 * storages written by the original implementation.
 *
 * Every helper fails the running cmocka test (fail_msg) when something it
 * needs is missing, so callers do not check for errors.
 *
 * Environment (set by CMake for every unit test):
 *   DS_FIXTURE_DIR   freshly extracted storages: $DS_FIXTURE_DIR/<name>/A/...
 *                    and $DS_FIXTURE_DIR/responses/<pair>.tar
 *   DS_MANIFEST_DIR  <name>.manifest.json, <pair>.replication.json,
 *                    pairs.json
 *   DS_BIN           the ds binary
 *
 * Never modify the extracted fixtures in place: copy one to a scratch
 * directory with fixture_copy() first.
 */
#ifndef HELPER_FIXTURE_H
#define HELPER_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* $DS_FIXTURE_DIR, $DS_MANIFEST_DIR, $DS_BIN (the test fails if unset). */
const char *fixture_dir(void);
const char *fixture_manifest_dir(void);
const char *fixture_bin(void);

/* "$DS_FIXTURE_DIR/<name>" into out. */
void fixture_home(const char *name, char *out, size_t outsz);

/* Load "$DS_MANIFEST_DIR/<file>" (e.g. "pairs.json"). Caller json_decref. */
json_t *fixture_json_load(const char *file);
/* Load "$DS_MANIFEST_DIR/<name>.manifest.json". Caller json_decref. */
json_t *fixture_manifest_load(const char *name);
/* Names of every fixture storage listed in pairs.json ("fixtures"[].name),
 * in that order: a NULL-terminated malloc'd array of malloc'd strings;
 * free with fixture_names_free. *count (may be NULL) gets how many. */
char **fixture_names(size_t *count);
void fixture_names_free(char **names);

/* Members of a JSON object that must be there (the test fails if not). */
const char *fixture_jstr(const json_t *obj, const char *key);
long long fixture_jint(const json_t *obj, const char *key);
int fixture_jbool(const json_t *obj, const char *key);
/* A 16-hex-digit id member, as the integer the library uses. */
uint64_t fixture_jid(const json_t *obj, const char *key);
/* A "0640"-style octal mode member. */
unsigned fixture_jmode(const json_t *obj, const char *key);

/* New empty directory under $TMPDIR (or /tmp), from mkdtemp. Malloc'd;
 * remove with fixture_remove_tree, then free. */
char *fixture_scratch_dir(void);
/* `cp -a` fixture storage <name> into dest_dir; returns the malloc'd path
 * of the copy (dest_dir/<name>). */
char *fixture_copy(const char *name, const char *dest_dir);
/* Remove path and everything below it (no error if it does not exist). */
void fixture_remove_tree(const char *path);

/* Write text to path (created or truncated); fails the test on error. */
void fixture_write_text(const char *path, const char *text);

/* md5 of a buffer as 32 lowercase hex digits + NUL. */
void fixture_md5_hex(const void *data, size_t len, char out[33]);

#endif /* HELPER_FIXTURE_H */
