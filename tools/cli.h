/*
 * cli.h - what the ds subcommands share: the exit-code table, printing of
 * errors prefixed "ds <subcommand>:", and the subcommand entry points.
 * Only the front end prints; the library returns ds_error values.
 */
#ifndef DS_CLI_H
#define DS_CLI_H

#include <stdio.h>

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

/* The exit code for a library status. */
int cli_exit_code(int status);
/* Print "ds <sub>: <err->msg>" to stderr, return cli_exit_code. */
int cli_fail(const char *sub, const ds_error *err);
/* Print "ds <sub>: <formatted>" to stderr. */
void cli_errorf(const char *sub, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Verbosity shared by subcommands that take -v/-q: 0 quiet, 1 normal,
 * 2+ verbose. */
extern int cli_verbosity;

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

#endif
