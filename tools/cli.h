/*
 * cli.h - what the ds subcommands share (cli.c): the exit-code table,
 * printing of errors prefixed "ds <subcommand>:", quoting and JSON helpers
 * for the subcommands that print storage content, and the subcommand
 * entry points (tools/cmd_<name>.c). Only the front end prints; the
 * library returns ds_error values. The tools see the library through
 * include/dirstorage.h only.
 */
#ifndef DS_CLI_H
#define DS_CLI_H

#include <stdio.h>

#include "cli_json.h"
#include "dirstorage.h"

/* Exit codes of every ds subcommand (documented in man/ds.1 and README). */
enum {
	DS_EXIT_OK = 0,      /* it worked */
	DS_EXIT_FAIL = 1,    /* failed; needs a human (corrupt data, refused
	                      * replica: identity, divergence, packed, ...) */
	DS_EXIT_USAGE = 2,   /* bad command line */
	DS_EXIT_TEMP = 3,    /* try again later: storage locked or held in
	                      * snapshot mode, master busy, connection failed */
	DS_EXIT_IO = 4,      /* local system error (disk full, I/O error) */
};

/* The exit code for a failure's cause: the library status and, for
 * DS_EIO, the errno (0 when unknown). The one mapping every subcommand
 * uses; the table is in tools/ds.c, README and man/ds.1. */
int cli_exit_for(int status, int sys_errno);
/* cli_exit_for(status, 0). */
int cli_exit_code(int status);
/* The exit code for a system call's errno, mapped to a status as the
 * library does (ENOENT: not found, ...), then cli_exit_for. */
int cli_exit_errno(int errnum);
/* Print "ds <sub>: <err->msg>" to stderr, return cli_exit_for(status,
 * sys_errno). */
int cli_fail(const char *sub, const ds_error *err);
/* Print "ds <sub>: <formatted>" to stderr. */
void cli_errorf(const char *sub, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The operands "DIR ID" after getopt (argv[optind], argv[optind + 1]),
 * what = "oid" or "tid": on a wrong count or an id that is not 16 hex
 * digits prints "ds <sub>: ..." (and the usage for a wrong count) and
 * returns DS_EXIT_USAGE; else stores the id and returns DS_EXIT_OK. */
int cli_operands_dir_id(const char *sub, int argc, char **argv,
                        const char *what, void (*usage)(FILE *out),
                        uint64_t *id);

/* --wait SECONDS (and the like): a whole number of seconds, at most a
 * year, into *out. On a bad value prints "ds <sub>: <opt> wants ..." and
 * returns DS_EXIT_USAGE; else DS_EXIT_OK. */
int cli_parse_seconds(const char *sub, const char *opt, const char *arg,
                      unsigned *out);

/* ds_storage_open, tried again while the storage is in use (DS_ELOCKED:
 * another process holds misc/lock; DS_EBUSY) until wait seconds have
 * passed (0: once), then that failure as ds_storage_open returns it
 * (exit 3). At verbosity 2 (-v) says once that it waits. */
int cli_storage_open(const char *sub, const char *home, unsigned flags,
                     unsigned wait, ds_storage **out, ds_error *err);

/* A ds_log_fn for library messages: prints "ds <sub>: <msg>" on stderr
 * when level <= cli_verbosity; ctx is the subcommand name (const char *). */
void cli_log(int level, const char *msg, void *ctx);

/* Verbosity shared by subcommands that take -v/-q: 0 quiet, 1 normal,
 * 2+ verbose. */
extern int cli_verbosity;

/* Print n bytes of s between double quotes; backslash, quote and bytes
 * outside printable ASCII are written as \\, \" and \xNN. */
void cli_print_quoted(FILE *out, const char *s, size_t n);

/* A JSON string for n bytes: the bytes themselves when they are valid
 * UTF-8 without NUL, else the \xNN-escaped form. New reference (NULL only
 * when out of memory). */
json_t *cli_json_bytes(const char *s, size_t n);

/* The master operand [[USER@]HOST:]DIR, as scp reads it (a ':' before
 * any '/' names a host), into o->user, o->host and o->master_dir, which
 * point into src (changed in place; the caller owns it). 0, or -1 when a
 * part is empty. */
int cli_master_parse(char *src, struct ds_replica_opts *o);

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

struct cli_command {
	const char *name;
	int (*run)(int argc, char **argv);   /* argv[0] is the subcommand */
	void (*usage)(FILE *out);           /* synopsis and options */
	const char *summary;                /* one line for `ds --help` */
};

/* Each subcommand lives in tools/cmd_<name>.c and defines these. */
#define CLI_DECLARE(n) \
	int cmd_##n(int argc, char **argv); \
	void cmd_##n##_usage(FILE *out)

CLI_DECLARE(mkds);
CLI_DECLARE(dump);
CLI_DECLARE(log);
CLI_DECLARE(whatsnew);
CLI_DECLARE(snapshot);
CLI_DECLARE(check);
CLI_DECLARE(replica);
CLI_DECLARE(status);
/* the engine's subcommands */
CLI_DECLARE(newoid);
CLI_DECLARE(commit);
CLI_DECLARE(cat);
CLI_DECLARE(history);
CLI_DECLARE(undo);
CLI_DECLARE(gen);
CLI_DECLARE(pack);
CLI_DECLARE(backup);
CLI_DECLARE(restore);
/* Pickle (protocol 3, as ZODB writes extension data) of a dict of n str
 * keys to str values; n == 0 gives 0 bytes. *out malloc'd, caller frees.
 * Returns DS_OK, DS_ENOMEM, DS_EINVAL (n > 120). */
int cli_pickle_strdict(char *const *keys, char *const *vals, size_t n,
                       unsigned char **out, size_t *outlen);

#endif
