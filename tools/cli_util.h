/*
 * cli_util.h - small helpers shared by the ds subcommands that print
 * storage content (dump, log): quoting of byte strings, tid times, JSON
 * values for byte strings, and finding the storage a file belongs to.
 */
#ifndef DS_CLI_UTIL_H
#define DS_CLI_UTIL_H

#include <stdio.h>

#include <jansson.h>

#include "dirstorage.h"

/* Fill err (may be NULL) with status and a formatted message, as the
 * library does; returns status. */
int cli_error_set(ds_error *err, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Print n bytes of s between double quotes; backslash, quote and bytes
 * outside printable ASCII are written as \\, \" and \xNN. */
void cli_print_quoted(FILE *out, const char *s, size_t n);

/* A JSON string for n bytes: the bytes themselves when they are valid
 * UTF-8 without NUL, else the \xNN-escaped form. New reference (NULL only
 * when out of memory). */
json_t *cli_json_bytes(const char *s, size_t n);

/* "YYYY-MM-DD HH:MM:SS GMT" for a tid, or "(none)" for a zero tid. */
void cli_tid_time(ds_tid tid, char out[32]);

/* 16 UPPERCASE hex digits of an id, as a new JSON string. */
json_t *cli_json_id(uint64_t id);

/* The storage that path lies in: walk up from the directory of path's
 * real path to the first directory holding config/settings. On success
 * home receives that directory and rel the path of the file relative to
 * it (e.g. "A/x/serial"). Returns 0 when found, -1 when the file is not
 * inside a storage (or cannot be resolved). */
int cli_find_home(const char *path, char *home, size_t homesz, char *rel,
                  size_t relsz);

#endif
