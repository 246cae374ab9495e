/*
 * replica_state.c - misc/replica.state, what the replica side records
 * about its runs for `ds status` (struct ds_replica_state).
 *
 * The file is text, one "key value" line each after the first line
 * "ds-replica-state 1":
 *   master DIR-or-[USER@]HOST:DIR
 *   identity 32 hex digits
 *   tid 16 hex digits (the replica's last transaction after the last
 *       successful run)
 *   success_time, success_start, failure_time  Unix seconds (decimal)
 *   success_transactions, failures, failure_exit  decimal integers
 *   failure_error the message, escaped on one line
 * Unknown keys are ignored (a later version may add some); a key given
 * twice counts as its last line. It is replaced, never written in place
 * (ds_io_replace_file): a kill or a power loss leaves the old file or the
 * new one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "replica_internal.h"

#define STATE_HEADER "ds-replica-state 1"
/* more than any state file this code writes (two texts of at most
 * DS_REPLICA_STATE_TEXT_MAX bytes, each escaped to at most 4 times) */
#define STATE_FILE_MAX (16 * 1024)

/* Escape s on one line: \\, \n, \xNN for other bytes below 0x20 and 0x7f. */
static int
state_escape(const char *s, char *out, size_t outsz)
{
	size_t o = 0;

	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;
		char tmp[5];
		size_t k;

		if (ch == '\\')
			k = (size_t)snprintf(tmp, sizeof(tmp), "\\\\");
		else if (ch == '\n')
			k = (size_t)snprintf(tmp, sizeof(tmp), "\\n");
		else if (ch < 0x20 || ch == 0x7f)
			k = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02x", ch);
		else {
			tmp[0] = (char)ch;
			tmp[1] = '\0';
			k = 1;
		}
		if (o + k >= outsz)
			return -1;
		memcpy(out + o, tmp, k);
		o += k;
	}
	out[o] = '\0';
	return 0;
}

/* The reverse of state_escape into out (outsz bytes, cut short when
 * longer). -1 for a malformed escape. */
static int
state_unescape(const char *s, char *out, size_t outsz)
{
	size_t o = 0;

	while (*s != '\0') {
		char ch = *s++;

		if (ch == '\\') {
			if (*s == '\\') {
				ch = '\\';
				s++;
			} else if (*s == 'n') {
				ch = '\n';
				s++;
			} else if (*s == 'x' && ds_hex_digit((unsigned char)s[1]) >= 0 &&
			           ds_hex_digit((unsigned char)s[2]) >= 0) {
				ch = (char)(ds_hex_digit((unsigned char)s[1]) * 16 +
				            ds_hex_digit((unsigned char)s[2]));
				s += 3;
			} else {
				return -1;
			}
		}
		if (o + 1 < outsz)
			out[o++] = ch;
	}
	out[o] = '\0';
	return 0;
}

static int
state_parse_time(const char *v, double *out)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(v, &end);
	if (end == v || *end != '\0' || errno != 0 || !(d >= 0) ||
	    d > 1e11)
		return -1;
	*out = d;
	return 0;
}

static int
state_parse_ulong(const char *v, unsigned long *out)
{
	char *end;
	unsigned long n;

	if (*v < '0' || *v > '9')
		return -1;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (*end != '\0' || errno != 0)
		return -1;
	*out = n;
	return 0;
}

static int
state_parse_line(char *key, char *val, struct ds_replica_state *st)
{
	unsigned long n;

	if (strcmp(key, "master") == 0)
		return state_unescape(val, st->master, sizeof(st->master));
	if (strcmp(key, "identity") == 0) {
		if (strlen(val) != 32 || strspn(val, "0123456789abcdef") != 32)
			return -1;
		memcpy(st->identity, val, 33);
		return 0;
	}
	if (strcmp(key, "tid") == 0)
		return ds_id_parse(val, &st->tid) == DS_OK ? 0 : -1;
	if (strcmp(key, "success_time") == 0)
		return state_parse_time(val, &st->success_time);
	if (strcmp(key, "success_start") == 0)
		return state_parse_time(val, &st->success_start);
	if (strcmp(key, "failure_time") == 0)
		return state_parse_time(val, &st->failure_time);
	if (strcmp(key, "success_transactions") == 0)
		return state_parse_ulong(val, &st->success_transactions);
	if (strcmp(key, "failures") == 0)
		return state_parse_ulong(val, &st->failures);
	if (strcmp(key, "failure_exit") == 0) {
		if (state_parse_ulong(val, &n) != 0 || n > 255)
			return -1;
		st->failure_exit = (int)n;
		return 0;
	}
	if (strcmp(key, "failure_error") == 0)
		return state_unescape(val, st->failure_error,
		                      sizeof(st->failure_error));
	return 0;   /* unknown: a later version's */
}

int
ds_replica_state_parse(const char *buf, size_t len, const char *what,
                       struct ds_replica_state *st, ds_error *err)
{
	char *copy, *line, *next;
	int rc = DS_OK, lineno = 0;

	memset(st, 0, sizeof(*st));
	if (memchr(buf, '\0', len) != NULL)
		return ds_error_set(err, DS_ECORRUPT, "%s: holds a NUL byte",
		                    what);
	copy = malloc(len + 1);
	if (copy == NULL)
		return ds_error_set(err, DS_ENOMEM, "%s: out of memory", what);
	memcpy(copy, buf, len);
	copy[len] = '\0';
	for (line = copy; line != NULL; line = next) {
		char *sp;

		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		lineno++;
		if (lineno == 1) {
			if (strcmp(line, STATE_HEADER) != 0) {
				rc = ds_error_set(err, DS_ECORRUPT, "%s: not a ds "
				                  "replica state file (the first "
				                  "line is not \"%s\")", what,
				                  STATE_HEADER);
				goto out;
			}
			continue;
		}
		if (line[0] == '\0')
			continue;
		sp = strchr(line, ' ');
		if (sp == NULL) {
			rc = ds_error_set(err, DS_ECORRUPT, "%s: line %d: no value "
			                  "after \"%.40s\"", what, lineno, line);
			goto out;
		}
		*sp = '\0';
		if (state_parse_line(line, sp + 1, st) != 0) {
			rc = ds_error_set(err, DS_ECORRUPT, "%s: line %d: malformed "
			                  "%.40s value \"%.80s\"", what, lineno,
			                  line, sp + 1);
			goto out;
		}
	}
out:
	free(copy);
	if (rc != DS_OK)
		memset(st, 0, sizeof(*st));
	return rc;
}

int
ds_replica_state_format(const struct ds_replica_state *st, char *out,
                        size_t outsz, ds_error *err)
{
	char master[4 * DS_REPLICA_STATE_TEXT_MAX + 1];
	char error[4 * DS_REPLICA_STATE_TEXT_MAX + 1];
	int n;

	if (state_escape(st->master, master, sizeof(master)) != 0 ||
	    state_escape(st->failure_error, error, sizeof(error)) != 0)
		return ds_error_set(err, DS_EINVAL, "replica state: a text is "
		                    "too long");
	n = snprintf(out, outsz,
	             STATE_HEADER "\n"
	             "master %s\n"
	             "identity %s\n"
	             "tid %016llX\n"
	             "success_time %.3f\n"
	             "success_start %.3f\n"
	             "success_transactions %lu\n"
	             "failure_time %.3f\n"
	             "failure_exit %d\n"
	             "failure_error %s\n"
	             "failures %lu\n",
	             master, st->identity, (unsigned long long)st->tid,
	             st->success_time, st->success_start,
	             st->success_transactions, st->failure_time,
	             st->failure_exit, error, st->failures);
	if (n < 0 || (size_t)n >= outsz)
		return ds_error_set(err, DS_EINVAL, "replica state: does not "
		                    "fit %zu bytes", outsz);
	return DS_OK;
}

int
ds_replica_state_read(const char *home, struct ds_replica_state *st,
                      int *found, ds_error *err)
{
	char path[DS_PATH_MAX];
	unsigned char *buf = NULL;
	size_t len = 0;
	ds_error e;
	int rc;

	memset(st, 0, sizeof(*st));
	*found = 0;
	rc = ds_path_join(path, sizeof(path), home, DS_REPLICA_STATE_FILE, err);
	if (rc != DS_OK)
		return rc;
	rc = ds_file_read(path, STATE_FILE_MAX, &buf, &len, &e);
	if (rc == DS_ENOTFOUND)
		return DS_OK;
	if (rc != DS_OK) {
		if (err != NULL)
			*err = e;
		return rc;
	}
	rc = ds_replica_state_parse((const char *)buf, len, path, st, err);
	free(buf);
	if (rc == DS_OK)
		*found = 1;
	return rc;
}

int
ds_replica_state_write(const char *home, const struct ds_replica_state *st,
                       ds_error *err)
{
	char path[DS_PATH_MAX], misc[DS_PATH_MAX];
	char *buf;
	int rc;

	buf = malloc(STATE_FILE_MAX);
	if (buf == NULL)
		return ds_error_set(err, DS_ENOMEM, "replica state: out of "
		                    "memory");
	rc = ds_path_join(path, sizeof(path), home, DS_REPLICA_STATE_FILE,
	                  err);
	if (rc == DS_OK)
		rc = ds_path_join(misc, sizeof(misc), home, "misc", err);
	if (rc == DS_OK)
		rc = ds_replica_state_format(st, buf, STATE_FILE_MAX, err);
	/* the new file's bytes durable before its rename over the old one
	 * (do_sync), so that a power loss leaves one or the other whole;
	 * then the rename itself (misc/'s fsync), so that `ds status` after
	 * a crash does not report an older run than the replica holds */
	if (rc == DS_OK)
		rc = ds_io_replace_file(path, buf, strlen(buf), 0644, 1, err);
	if (rc == DS_OK)
		rc = ds_io_fsync_dir(misc, err);
	free(buf);
	return rc;
}

double
replica_state_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void
replica_state_record(const char *home, const struct ds_replica_opts *o,
                     const char *identity, ds_tid tid,
                     const struct ds_replica_stats *stats, double started,
                     int rc, const ds_error *result)
{
	struct ds_replica_state st;
	ds_error e;
	int found = 0;

	/* an unreadable or damaged old record is replaced, not kept */
	if (ds_replica_state_read(home, &st, &found, &e) != DS_OK)
		memset(&st, 0, sizeof(st));
	if (o->host != NULL)
		snprintf(st.master, sizeof(st.master), "%s%s%s:%s",
		         o->user ? o->user : "", o->user ? "@" : "", o->host,
		         o->master_dir);
	else
		snprintf(st.master, sizeof(st.master), "%s", o->master_dir);
	if (identity != NULL)
		snprintf(st.identity, sizeof(st.identity), "%s", identity);
	st.tid = tid;
	if (rc == DS_OK) {
		st.success_time = replica_state_now();
		st.success_start = started;
		st.success_transactions = stats ? stats->transactions : 0;
		st.failures = 0;
	} else {
		st.failure_time = replica_state_now();
		st.failure_exit = o->exit_for ? o->exit_for(rc, result ?
		                  result->sys_errno : 0) : 1;
		/* a longer message loses its end here, not in ds_error */
		snprintf(st.failure_error, sizeof(st.failure_error), "%.*s",
		         (int)sizeof(st.failure_error) - 1,
		         result && result->msg[0] ? result->msg :
		         ds_strerror(rc));
		st.failures++;
	}
	ds_error_clear(&e);
	if (ds_replica_state_write(home, &st, &e) != DS_OK)
		ds_log(o->log, o->log_ctx, DS_LOG_WARN, "could not record this "
		       "run in %s/%s: %s", home, DS_REPLICA_STATE_FILE, e.msg);
}
