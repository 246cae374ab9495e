/*
 * helper.h - what the libFuzzer targets in fuzz/ share: scratch
 * directories, pristine fixture storages extracted once per process, tree
 * copies and digests, and the invariant check that turns a broken
 * invariant into a crash libFuzzer records.
 *
 * Not a target: CMake builds every fuzz/fuzz_*.c into its own fuzzer and
 * links helper.c into each.
 */
#ifndef FUZZ_HELPER_H
#define FUZZ_HELPER_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* libFuzzer's entry points (no header declares them). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* An invariant of the code under test does not hold: print what and abort,
 * so libFuzzer keeps the input as a crash. */
#define FZ_CHECK(cond, ...)                                                 \
	do {                                                                \
		if (!(cond))                                                \
			fz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);    \
	} while (0)

void fz_fail(const char *file, int line, const char *cond, const char *fmt,
             ...) __attribute__((noreturn, format(printf, 4, 5)));

/* A status/ds_error pair a failing library call must leave: the status is
 * a DS_E* code, err.status equals it, the message is NUL terminated and
 * not empty. */
void fz_check_error(int rc, const ds_error *err, const char *call);

/* This process's scratch root (mkdtemp under $DS_FUZZ_TMPDIR, else
 * /dev/shm when writable, else $TMPDIR or /tmp; removed at
 * exit). */
const char *fz_scratch(void);

/* Where the fixture files are: $DS_FUZZ_FIXTURES, else the source
 * tree's tests/fixtures. */
const char *fz_fixture_src(void);

/* Path of a pristine extracted copy of fixture storage `name` (e.g.
 * "bushy-master"), extracted once per process from
 * $DS_FUZZ_FIXTURES/<name>.tar.gz (default: the source tree's
 * tests/fixtures). Never modify it: copy it with fz_copy_tree. */
const char *fz_fixture(const char *name);

/* gzip -dc gz > out. Aborts on failure. */
void fz_gunzip(const char *gz, const char *out);
/* cp -a src dst (dst must not exist). Aborts on failure. */
void fz_copy_tree(const char *src, const char *dst);
/* rm -rf path (no error if missing). */
void fz_remove_tree(const char *path);
/* Create or replace path with exactly len bytes. Aborts on failure. */
void fz_write_file(const char *path, const void *buf, size_t len);
/* Write all len bytes to fd. Aborts on failure. */
void fz_write_file_fd(int fd, const void *buf, size_t len);
/* md5 over every file and directory below root: relative path, type,
 * mode, size and content, in sorted order. Paths for which skip(relpath)
 * returns non-zero are left out (skip may be NULL). */
void fz_tree_digest(const char *root, int (*skip)(const char *relpath),
                    unsigned char out[16]);

#endif /* FUZZ_HELPER_H */
