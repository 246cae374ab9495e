/*
 * cli.c - everything the ds subcommands share (declared in cli.h): the
 * exit-code mapping, printing errors and library messages prefixed
 * "ds <subcommand>:", the "DIR ID" operands, quoting of byte strings, tid
 * times, JSON values, finding the storage a file belongs to, and the
 * pickle of a transaction's extension dict.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"

int cli_verbosity = 1;

/*
 * The one mapping from a failure's cause to the exit code, used by every
 * subcommand (README "Exit codes" and man/ds.1 EXIT STATUS list the same
 * table). The cause is the library status and, for DS_EIO, the errno:
 *   DS_ELOCKED, DS_EBUSY                        3 try again later
 *   DS_ENOMEM; DS_EIO with any errno but those
 *     below (EACCES, EPERM, EROFS, ENOSPC,
 *     EDQUOT, EIO, EMFILE, ...)                 4 local system error
 *   DS_EIO with ELOOP (a symlink where the
 *     storage has none: not followed), ENOTDIR,
 *     EISDIR (a file where a directory belongs
 *     or the reverse), ENAMETOOLONG             1 needs a human: the
 *                                                 tree is not a storage's
 *   every other status (ENOTFOUND, ECORRUPT,
 *     ECONFIG, EREFUSED, EPROTO, ...)           1 needs a human
 * Permission denied is 4 whichever subcommand meets it: the system
 * refused, as for a full disk, and nothing in the storage is wrong.
 */
int
cli_exit_for(int status, int sys_errno)
{
	switch (status) {
	case DS_OK:
		return DS_EXIT_OK;
	case DS_ELOCKED:
	case DS_EBUSY:
		return DS_EXIT_TEMP;
	case DS_ENOMEM:
		return DS_EXIT_IO;
	case DS_EIO:
		switch (sys_errno) {
		case ELOOP:
		case ENOTDIR:
		case EISDIR:
		case ENAMETOOLONG:
			return DS_EXIT_FAIL;
		default:
			return DS_EXIT_IO;
		}
	default:
		return DS_EXIT_FAIL;
	}
}

int
cli_exit_code(int status)
{
	return cli_exit_for(status, 0);
}

int
cli_exit_errno(int errnum)
{
	switch (errnum) {
	case ENOENT:
		return cli_exit_for(DS_ENOTFOUND, 0);
	case EEXIST:
		return cli_exit_for(DS_EEXIST, 0);
	case ENOMEM:
		return cli_exit_for(DS_ENOMEM, 0);
	default:
		return cli_exit_for(DS_EIO, errnum);
	}
}

/*
 * msg without a leading "<sub>: ": the library names the operation at the
 * start of some messages ("snapshot: resolve DIR: ..."), which is worth
 * keeping under another subcommand ("ds check: snapshot: ...") but would
 * double the prefix under its own ("ds snapshot: snapshot: ...").
 */
static const char *
cli_unprefixed(const char *sub, const char *msg)
{
	size_t n = strlen(sub);

	if (n > 0 && strncmp(msg, sub, n) == 0 && msg[n] == ':' &&
	    msg[n + 1] == ' ')
		return msg + n + 2;
	return msg;
}

void
cli_log(int level, const char *msg, void *ctx)
{
	const char *sub = ctx ? (const char *)ctx : "";

	if (level <= cli_verbosity)
		fprintf(stderr, "ds %s: %s\n", sub, cli_unprefixed(sub, msg));
}

void
cli_errorf(const char *sub, const char *fmt, ...)
{
	char msg[8192];   /* a message with two paths near PATH_MAX */
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "ds %s: %s\n", sub, cli_unprefixed(sub, msg));
}

int
cli_parse_seconds(const char *sub, const char *opt, const char *arg,
                  unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (*arg < '0' || *arg > '9' || *end != '\0' || errno != 0 ||
	    v > 366ul * 86400) {
		cli_errorf(sub, "%s wants a number of seconds (0 to %lu), not "
		           "'%s'", opt, 366ul * 86400, arg);
		return DS_EXIT_USAGE;
	}
	*out = (unsigned)v;
	return DS_EXIT_OK;
}

static double
cli_monotonic(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int
cli_storage_open(const char *sub, const char *home, unsigned flags,
                 unsigned wait, ds_storage **out, ds_error *err)
{
	double deadline = cli_monotonic() + wait, pause = 0.05, left;
	int rc, said = 0;

	for (;;) {
		ds_error_clear(err);
		rc = ds_storage_open(home, flags, out, err);
		if ((rc != DS_ELOCKED && rc != DS_EBUSY) ||
		    (left = deadline - cli_monotonic()) <= 0)
			return rc;
		if (!said && cli_verbosity >= 2) {
			cli_errorf(sub, "%s; waiting up to %u s", err->msg, wait);
			said = 1;
		}
		/* the holder may be a commit of a few milliseconds or a
		 * backup of an hour: start short, back off to a second */
		if (pause > left)
			pause = left;
		struct timespec ts = {(time_t)pause,
		                      (long)((pause - (time_t)pause) * 1e9)};
		nanosleep(&ts, NULL);
		pause = pause * 2 > 1.0 ? 1.0 : pause * 2;
	}
}

int
cli_operands_dir_id(const char *sub, int argc, char **argv, const char *what,
                    void (*usage)(FILE *out), uint64_t *id)
{
	if (argc - optind != 2) {
		cli_errorf(sub, "expected a storage directory and %s %s",
		           what[0] == 'o' ? "an" : "a", what);
		usage(stderr);
		return DS_EXIT_USAGE;
	}
	if (ds_id_parse(argv[optind + 1], id) != DS_OK) {
		cli_errorf(sub, "'%s' is not %s %s (16 hex digits)",
		           argv[optind + 1], what[0] == 'o' ? "an" : "a", what);
		return DS_EXIT_USAGE;
	}
	return DS_EXIT_OK;
}

int
cli_fail(const char *sub, const ds_error *err)
{
	fprintf(stderr, "ds %s: %s\n", sub,
	        cli_unprefixed(sub, err->msg[0] ? err->msg :
	                       ds_strerror(err->status)));
	return cli_exit_for(err->status, err->sys_errno);
}

void
cli_print_quoted(FILE *out, const char *s, size_t n)
{
	fputc('"', out);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\\' || c == '"')
			fprintf(out, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(out, "\\x%02x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

int
cli_json_ok(const char *sub)
{
#ifdef DS_HAVE_JANSSON
	(void)sub;
	return 1;
#else
	cli_errorf(sub, "--json: this ds was built without jansson "
	           "(libjansson-dev), which writes the JSON");
	return 0;
#endif
}

json_t *
cli_json_bytes(const char *s, size_t n)
{
	json_t *j;
	char *esc;
	size_t k = 0;

	if (memchr(s, '\0', n) == NULL) {
		j = json_stringn(s, n);   /* NULL when not valid UTF-8 */
		if (j != NULL)
			return j;
	}
	esc = malloc(4 * n + 1);
	if (esc == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\\') {
			esc[k++] = '\\';
			esc[k++] = '\\';
		} else if (c < 0x20 || c >= 0x7f) {
			snprintf(esc + k, 5, "\\x%02x", c);
			k += 4;
		} else {
			esc[k++] = (char)c;
		}
	}
	j = json_stringn(esc, k);
	free(esc);
	return j;
}

int
cli_master_parse(char *src, struct ds_replica_opts *o)
{
	char *colon = strchr(src, ':'), *at;

	if (colon == NULL || memchr(src, '/', (size_t)(colon - src)) != NULL) {
		o->master_dir = src;
		return 0;
	}
	*colon = '\0';
	o->master_dir = colon + 1;
	at = strchr(src, '@');
	if (at != NULL) {
		*at = '\0';
		o->user = src;
		o->host = at + 1;
	} else {
		o->host = src;
	}
	if (o->host[0] == '\0' || o->master_dir[0] == '\0' ||
	    (o->user != NULL && o->user[0] == '\0'))
		return -1;
	return 0;
}

void
cli_tid_time(ds_tid tid, char out[32])
{
	if (tid == 0) {
		snprintf(out, 32, "(none)");
		return;
	}
	ds_tid_format(tid, out);
}

json_t *
cli_json_id(uint64_t id)
{
	char hex[17];

	ds_id_format(id, hex);
	return json_string(hex);
}

int
cli_find_home(const char *path, char *home, size_t homesz, char *rel,
              size_t relsz)
{
	char real[PATH_MAX], probe[PATH_MAX + 32];
	struct stat st;
	size_t len;

	if (realpath(path, real) == NULL)
		return -1;
	len = strlen(real);
	/* Try each proper ancestor, nearest first. */
	while (len > 1) {
		while (len > 0 && real[len - 1] != '/')
			len--;
		if (len == 0)
			return -1;
		if (len > 1)
			len--;          /* drop the slash, keep "/" itself */
		snprintf(probe, sizeof(probe), "%.*s/config/settings",
		         (int)len, real);
		if (len == 1)
			snprintf(probe, sizeof(probe), "/config/settings");
		if (stat(probe, &st) == 0 && S_ISREG(st.st_mode)) {
			if (len + 1 > homesz)
				return -1;
			memcpy(home, real, len);
			home[len] = '\0';
			if ((int)snprintf(rel, relsz, "%s",
			                  real + len + (len > 1 ? 1 : 0)) >= (int)relsz)
				return -1;
			return 0;
		}
		if (len == 1)
			break;
	}
	return -1;
}

/* Protocol 3 pickle of a dict of str -> str, byte for byte as Python's
 * pickle.dumps(d, 3) writes it for distinct strings: PROTO 3, EMPTY_DICT,
 * BINPUT 0, then one SETITEM ('s') or MARK + SETITEMS ('u'), each string
 * BINUNICODE + BINPUT, STOP. n == 0 gives an empty extension (0 bytes), as
 * ZODB writes for an empty dict. */
int
cli_pickle_strdict(char *const *keys, char *const *vals, size_t n,
                   unsigned char **out, size_t *outlen)
{
	size_t cap = 8, len = 0, memo = 0;
	unsigned char *b;

	*out = NULL;
	*outlen = 0;
	if (n == 0)
		return DS_OK;
	if (n > 120)
		return DS_EINVAL;   /* keep BINPUT indexes below 256 */
	for (size_t i = 0; i < n; i++)
		cap += strlen(keys[i]) + strlen(vals[i]) + 14;
	b = malloc(cap);
	if (b == NULL)
		return DS_ENOMEM;
	b[len++] = 0x80;
	b[len++] = 3;
	b[len++] = '}';
	b[len++] = 'q';
	b[len++] = (unsigned char)memo++;
	if (n > 1)
		b[len++] = '(';
	for (size_t i = 0; i < n; i++) {
		const char *s[2] = {keys[i], vals[i]};
		for (int k = 0; k < 2; k++) {
			size_t sl = strlen(s[k]);
			b[len++] = 'X';
			b[len++] = (unsigned char)(sl & 0xff);
			b[len++] = (unsigned char)((sl >> 8) & 0xff);
			b[len++] = (unsigned char)((sl >> 16) & 0xff);
			b[len++] = (unsigned char)((sl >> 24) & 0xff);
			memcpy(b + len, s[k], sl);
			len += sl;
			b[len++] = 'q';
			b[len++] = (unsigned char)memo++;
		}
	}
	b[len++] = n > 1 ? 'u' : 's';
	b[len++] = '.';
	*out = b;
	*outlen = len;
	return DS_OK;
}
