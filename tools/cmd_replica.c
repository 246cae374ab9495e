/*
 * cmd_replica.c - `ds replica`: keep a replica up to date with its master
 * (the seed's replica.py command line).
 *
 *   ds replica [options] [user@]HOST:DIR REPLICA   over ssh
 *   ds replica [options] DIR REPLICA               master side run locally
 *   ds replica --init [options] SOURCE REPLICA     make a new replica
 *   ds replica [-v|-q] + DIR                       the master side itself
 *   ds replica --serve-only DIR                    the master side as an
 *                                                  ssh forced command
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "replica_watch.h"

#define REPLICA_DEADLINE_DEFAULT (4u * 3600)   /* --deadline, s */
#define REPLICA_BACKOFF_MAX_DEFAULT 600u       /* --backoff-max, s */

void
cmd_replica_usage(FILE *out)
{
	fprintf(out,
	        "usage: ds replica [options] [user@]HOST:DIR REPLICA\n"
	        "       ds replica [options] DIR REPLICA\n"
	        "       ds replica --init [options] [user@]HOST:DIR|DIR REPLICA\n"
	        "       ds replica [-v|-q] + DIR        (the master side)\n"
	        "       ds replica --serve-only DIR     (the master side as an "
	        "ssh forced command)\n"
	        "       ds replica --slots DIR          (list the master's "
	        "replication slots)\n"
	        "       ds replica --forget NAME DIR    (drop one)\n\n"
	        "Bring the local REPLICA up to date with the master storage "
	        "DIR, atomically and\naligned on transaction boundaries. "
	        "With HOST: the master side runs there through\nssh; "
	        "without, as a local child process.\n\n"
	        "Options:\n"
	        "  -v              more verbose (increment size, transactions, "
	        "files, how long\n"
	        "                  the master was held in snapshot mode, "
	        "total time); -v -v\n"
	        "                  shows the command\n"
	        "  -q              quiet unless something fails\n"
	        "  -d DIR          where ds lives on the master (DIR/ds); "
	        "default: the same path\n"
	        "                  as this ds\n"
	        "      --master-command COMMAND\n"
	        "                  run COMMAND [-v|-q] + DIR as the master "
	        "side instead of\n"
	        "                  \"DIR/ds replica\" (split on whitespace), "
	        "e.g. for a master that\n"
	        "                  runs the original: --master-command "
	        "\"python3 /opt/ds/replica.py\"\n"
	        "  -e COMMAND      use COMMAND instead of ssh; it may carry "
	        "arguments, e.g.\n"
	        "                  -e \"ssh -p 2222 -F /etc/ds/ssh_config\"\n"
	        "  -t SECONDS      keep retrying this long while the master is "
	        "busy (held in\n"
	        "                  snapshot mode, being packed)\n"
	        "  -s SECONDS      sleep between retries (default 10)\n"
	        "      --timeout SECONDS\n"
	        "                  give up (exit 3) when the master sends "
	        "nothing for this long\n"
	        "                  (default 600)\n"
	        "      --deadline SECONDS\n"
	        "                  give up (exit 3) when the master's answer "
	        "has not all arrived\n"
	        "                  this long after it was asked for, retries "
	        "included (default\n"
	        "                  14400, 4 hours; 0: no deadline)\n"
	        "      --init      create REPLICA (which must not exist) from "
	        "the master\n"
	        "      --keep-previous, --no-keep-previous\n"
	        "                  keep the increment just applied as "
	        "REPLICA/misc/replica.previous\n"
	        "                  (the default, as the original), or remove "
	        "it (and an older\n"
	        "                  one): no copy of the last increment, or of "
	        "the whole storage\n"
	        "                  after --init, on the replica's disk\n"
	        "      --max-size SIZE\n"
	        "                  refuse an increment larger than SIZE "
	        "(bytes, or with K, M, G,\n"
	        "                  T; 'unlimited'); default: what fits twice "
	        "on the replica's\n"
	        "                  filesystem, keeping 1%% of it free\n"
	        "      --serve-only DIR\n"
	        "                  serve replication of DIR and nothing else, "
	        "whatever the client\n"
	        "                  asked for (an ssh forced command, see "
	        "ds-replica(1))\n"
	        "      --watch SECONDS\n"
	        "                  keep going: an increment every SECONDS, in "
	        "one process, until\n"
	        "                  SIGTERM or SIGINT (the increment in progress "
	        "is finished, exit\n"
	        "                  0); errors of exit 3 are retried after an "
	        "exponential backoff\n"
	        "                  with jitter, any other stops it with its "
	        "exit code\n"
	        "      --backoff-max SECONDS\n"
	        "                  the longest wait between retries (default "
	        "600)\n"
	        "      --before-apply COMMAND\n"
	        "      --after-apply COMMAND\n"
	        "                  run COMMAND with /bin/sh -c before an "
	        "increment with\n"
	        "                  transactions is applied (the replica's lock "
	        "is taken after it,\n"
	        "                  so it may stop a read-only server of the "
	        "replica) and after\n"
	        "                  (also when the apply failed: DS_RESULT); "
	        "environment:\n"
	        "                  DS_REPLICA, DS_MASTER, DS_BASE_TID, "
	        "DS_FIRST_TID, DS_LAST_TID,\n"
	        "                  DS_TRANSACTIONS, DS_BYTES. A before-apply "
	        "that fails abandons\n"
	        "                  the increment, the replica untouched: its "
	        "exit 3 means try\n"
	        "                  again later (exit 3), anything else exit 1\n"
	        "      --slot NAME name this replica's replication slot on the "
	        "master (default:\n"
	        "                  HOSTNAME:/absolute/path/of/REPLICA): the "
	        "master's ds pack keeps\n"
	        "                  the history this replica needs\n"
	        "      --no-slot   do not name a slot (the master records "
	        "nothing)\n"
	        "      --slots DIR list the replication slots of the master "
	        "storage DIR: name,\n"
	        "                  the transaction it was known to hold, when "
	        "it was last seen\n"
	        "      --forget NAME DIR\n"
	        "                  drop slot NAME of the master storage DIR: "
	        "it holds ds pack\n"
	        "                  back no more\n"
	        "  -h, --help      show this help\n\n"
	        "Exit: 0 done; 1 needs a human (different identity, diverged, "
	        "packed since,\nreplica newer, not a Full storage, increment "
	        "refused, master's x.oid below\nthe replica's, ssh asking on "
	        "the terminal); 2 usage; 3 try again later\n(master busy, "
	        "ssh or connection failed, --timeout or --deadline, replica "
	        "in\nuse); 4 system error (disk full, I/O error, permission "
	        "denied), on the\nreplica or the master.\n");
}

static int
replica_parse_secs(const char *s, unsigned *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v > 31u * 24 * 3600)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* --max-size: bytes with an optional K, M, G or T (powers of 1024), or
 * "unlimited" (UINT64_MAX); at least 1. */
static int
replica_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	int shift = 0;

	if (strcmp(s, "unlimited") == 0) {
		*out = UINT64_MAX;
		return 0;
	}
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || v == 0)
		return -1;
	switch (*end) {
	case '\0': break;
	case 'K': case 'k': shift = 10; end++; break;
	case 'M': case 'm': shift = 20; end++; break;
	case 'G': case 'g': shift = 30; end++; break;
	case 'T': case 't': shift = 40; end++; break;
	default: return -1;
	}
	if (*end != '\0' || (shift > 0 && v > (UINT64_MAX >> shift)))
		return -1;
	*out = (uint64_t)v << shift;
	return *out == UINT64_MAX ? -1 : 0;
}

/* The master side: read the request on stdin, write the increment on
 * stdout, messages on stderr. */
static int
replica_master_side(const char *dir)
{
	struct ds_replica_serve_opts so;
	ds_error err;
	int rc;

	memset(&so, 0, sizeof(so));
	so.log = cli_log;
	so.log_ctx = "replica";
	so.report_fd = 2;
	ds_error_clear(&err);
	rc = ds_replica_serve(dir, 0, 1, &so, &err);
	if (rc != DS_OK) {
		fprintf(stderr, "ds replica: ReplicaError: %s\n",
		        err.msg[0] ? err.msg : ds_strerror(rc));
		return cli_exit_for(rc, err.sys_errno);
	}
	return DS_EXIT_OK;
}

/* --serve-only: the client's command (SSH_ORIGINAL_COMMAND) is only read
 * for its -v/-q; it must look like what a ds replica client (or the
 * original replica.py) sends: "[PATH/]ds replica [-v|-q]... + DIR" or
 * "[PATH/]python... PATH/replica.py [-v|-q]... + DIR". Its DIR is not used: DIR is the
 * one given to --serve-only. Anything else is refused without reading a
 * byte of stdin. Returns 0 and sets *verbosity, or -1. */
static int
replica_client_command(const char *cmd, int *verbosity)
{
	char buf[4096], *w, *save = NULL;
	int state = 0, v = 1;   /* 0 program, 1 "replica", 2 options, 3 DIR */
	int interp = 0;

	if (strlen(cmd) >= sizeof(buf))
		return -1;
	snprintf(buf, sizeof(buf), "%s", cmd);
	for (w = strtok_r(buf, " \t", &save); w != NULL;
	     w = strtok_r(NULL, " \t", &save)) {
		size_t n = strlen(w);

		/* our client single-quotes the program and DIR */
		if (n >= 2 && w[0] == '\'' && w[n - 1] == '\'') {
			w[n - 1] = '\0';
			w++;
			n -= 2;
		}
		if (state == 0) {
			const char *b = strrchr(w, '/');

			b = b ? b + 1 : w;
			if (!interp && strncmp(b, "python", 6) == 0) {
				interp = 1;   /* the original's interpreter */
				continue;
			}
			if (strcmp(b, "replica.py") == 0)
				state = 2;
			else if (strcmp(b, "ds") == 0)
				state = 1;
			else
				return -1;
		} else if (state == 1) {
			if (strcmp(w, "replica") != 0)
				return -1;
			state = 2;
		} else if (state == 2) {
			if (strcmp(w, "+") == 0)
				state = 3;
			else if (strcmp(w, "-v") == 0)
				v++;
			else if (strcmp(w, "-q") == 0)
				v = 0;
			else
				return -1;
		} else {
			/* the client's DIR (and whatever follows): not
			 * used, never run */
			state = 4;
		}
	}
	if (state != 4)
		return -1;
	*verbosity = v;
	return 0;
}

/* The master side as an ssh forced command (rrsync style):
 *   command="/usr/local/bin/ds replica --serve-only /srv/ds",restrict KEY
 * serves one replication request for DIR, whatever directory (or command)
 * the client asked for. */
static int
replica_serve_only(const char *dir, int v, int q)
{
	const char *orig = getenv("SSH_ORIGINAL_COMMAND");
	int cv = 1;

	if (orig != NULL && replica_client_command(orig, &cv) != 0) {
		/* not ours to run: say so on stderr, which ssh shows the
		 * client; the command is not echoed back in full */
		cli_errorf("replica", "--serve-only %s: refusing the command "
		           "\"%.80s\": this key only serves replication of %s",
		           dir, orig, dir);
		return DS_EXIT_FAIL;
	}
	if (v || q)
		cli_verbosity = 1 + v - q;
	else
		cli_verbosity = cv;
	if (cli_verbosity < 0)
		cli_verbosity = 0;
	if (orig != NULL)
		cli_log(DS_LOG_DEBUG, "--serve-only: serving the storage of "
		        "the forced command, whatever path the client named",
		        "replica");
	return replica_master_side(dir);
}

/* The progress line, on a terminal only, once a transfer has taken more
 * than a second: "\r"-rewritten, ended with a newline by the caller. */
struct progress {
	int shown;
	double start;
	double last;
	uint64_t bytes;
};

static double
replica_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
replica_progress_line(const struct progress *p, double now, const char *verb)
{
	double secs = now - p->start, mib = p->bytes / (1024.0 * 1024.0);

	fprintf(stderr, "\rds replica: %s %.1f MiB in %.1f s (%.1f MiB/s) ",
	        verb, mib, secs, secs > 0 ? mib / secs : 0.0);
	fflush(stderr);
}

static void
replica_progress(uint64_t bytes, void *ctx)
{
	struct progress *p = ctx;
	double now = replica_clock();

	p->bytes = bytes;
	if (now - p->start < 1.0)
		return;
	if (p->shown && now - p->last < 0.25)
		return;
	p->last = now;
	p->shown = 1;
	replica_progress_line(p, now, "receiving");
}

/* HOSTNAME:/absolute/path of the replica (its parent's real path when
 * it does not exist yet, as with --init). 0, or -1 when it does not make
 * a valid slot name. */
static int
replica_default_slot(const char *replica, char *out, size_t outsz)
{
	char host[256], abs[PATH_MAX], *copy, *slash;
	int n;

	if (gethostname(host, sizeof(host)) != 0)
		return -1;
	host[sizeof(host) - 1] = '\0';
	if (realpath(replica, abs) == NULL) {
		char dir[PATH_MAX];

		copy = strdup(replica);
		if (copy == NULL)
			return -1;
		slash = strrchr(copy, '/');
		if (slash != NULL && slash[1] == '\0')
			*slash = '\0', slash = strrchr(copy, '/');
		if (slash == NULL) {
			n = realpath(".", dir) == NULL ? -1 :
			    snprintf(abs, sizeof(abs), "%s/%s", dir, copy);
		} else {
			*slash = '\0';
			n = realpath(copy[0] ? copy : "/", dir) == NULL ? -1 :
			    snprintf(abs, sizeof(abs), "%s/%s",
			             strcmp(dir, "/") == 0 ? "" : dir, slash + 1);
		}
		free(copy);
		if (n < 0 || (size_t)n >= sizeof(abs))
			return -1;
	}
	n = snprintf(out, outsz, "%s:%s", host, abs);
	if (n < 0 || (size_t)n >= outsz || !ds_slot_name_valid(out))
		return -1;
	return 0;
}

/* ds replica --slots DIR */
static int
replica_list_slots(const char *home)
{
	struct ds_slot *sl = NULL;
	size_t n = 0, i;
	ds_error err;
	long long now = (long long)time(NULL);

	ds_error_clear(&err);
	if (ds_slot_list(home, &sl, &n, &err) != DS_OK)
		return cli_fail("replica", &err);
	if (n == 0 && cli_verbosity > 0)
		fprintf(stderr, "ds replica: %s has no replication slots\n",
		        home);
	for (i = 0; i < n; i++) {
		char hex[17], date[24];

		ds_id_format(sl[i].tid, hex);
		ds_tid_format(sl[i].tid, date);
		/* name last: it may hold blanks */
		printf("%s  %s  seen %llds ago  %s\n", hex,
		       sl[i].tid ? date : "(empty replica)", now - sl[i].seen,
		       sl[i].name);
	}
	ds_slot_list_free(sl);
	return DS_EXIT_OK;
}

/* ds replica --forget NAME DIR */
static int
replica_forget(const char *home, const char *name)
{
	ds_error err;

	ds_error_clear(&err);
	if (ds_slot_forget(home, name, &err) != DS_OK)
		return cli_fail("replica", &err);
	if (cli_verbosity > 0)
		fprintf(stderr, "ds replica: slot '%s' forgotten: it holds "
		        "ds pack back no more\n", name);
	return DS_EXIT_OK;
}

/* The command line, parsed. */
struct replica_args {
	struct ds_replica_opts o;
	const char *ripath;        /* -d */
	const char *serve;         /* --serve-only DIR */
	const char *slot;          /* --slot NAME */
	const char *forget;        /* --forget NAME */
	char slotbuf[DS_SLOT_NAME_MAX + 1];
	int init, v, q, deadline_set, noslot, list_slots;
	struct replica_watch_opts w; /* --watch, --backoff-max, hooks */
};

/* One option (getopt's c) into a. Returns -1, or the exit code. */
static int
replica_option(int c, struct replica_args *a)
{
	struct ds_replica_opts *o = &a->o;

	switch (c) {
	case 'h':
		cmd_replica_usage(stdout);
		return DS_EXIT_OK;
	case 'v':
		a->v++;
		break;
	case 'q':
		a->q++;
		break;
	case 'd':
		a->ripath = optarg;
		break;
	case 'e':
		o->ssh_command = optarg;
		break;
	case 't':
		if (replica_parse_secs(optarg, &o->timeout) != 0) {
			cli_errorf("replica", "-t: not a number of seconds: %s",
			           optarg);
			return DS_EXIT_USAGE;
		}
		break;
	case 's':
		if (replica_parse_secs(optarg, &o->sleep) != 0) {
			cli_errorf("replica", "-s: not a number of seconds: %s",
			           optarg);
			return DS_EXIT_USAGE;
		}
		break;
	case 'T':
		if (replica_parse_secs(optarg, &o->read_timeout) != 0 ||
		    o->read_timeout == 0) {
			cli_errorf("replica", "--timeout: not a number of "
			           "seconds (1 or more): %s", optarg);
			return DS_EXIT_USAGE;
		}
		break;
	case 'D':
		if (replica_parse_secs(optarg, &o->deadline) != 0) {
			cli_errorf("replica", "--deadline: not a number of "
			           "seconds (0 for none): %s", optarg);
			return DS_EXIT_USAGE;
		}
		a->deadline_set = 1;
		break;
	case 'S':
		a->serve = optarg;
		break;
	case 'M':
		if (replica_parse_size(optarg, &o->max_size) != 0) {
			cli_errorf("replica", "--max-size: not a size (bytes, "
			           "with K, M, G or T, or 'unlimited'): %s",
			           optarg);
			return DS_EXIT_USAGE;
		}
		break;
	case 'I':
		a->init = 1;
		break;
	case 'W':
		if (replica_parse_secs(optarg, &a->w.interval) != 0 ||
		    a->w.interval == 0) {
			cli_errorf("replica", "--watch: not a number of seconds "
			           "(1 or more): %s", optarg);
			return DS_EXIT_USAGE;
		}
		break;
	case 'B':
		if (replica_parse_secs(optarg, &a->w.backoff_max) != 0 ||
		    a->w.backoff_max == 0) {
			cli_errorf("replica", "--backoff-max: not a number of "
			           "seconds (1 or more): %s", optarg);
			return DS_EXIT_USAGE;
		}
		break;
	case 'b':
	case 'a':
		if (strspn(optarg, " \t\n") == strlen(optarg)) {
			cli_errorf("replica", "--%s-apply: empty",
			           c == 'b' ? "before" : "after");
			return DS_EXIT_USAGE;
		}
		if (c == 'b')
			a->w.before_apply = optarg;
		else
			a->w.after_apply = optarg;
		break;
	case 'K':
		o->no_keep_previous = 0;
		break;
	case 'k':
		o->no_keep_previous = 1;
		break;
	case 'N':
		if (!ds_slot_name_valid(optarg)) {
			cli_errorf("replica", "--slot: not a slot name (1 to %d "
			           "printable characters, no blank at either "
			           "end): %s", DS_SLOT_NAME_MAX, optarg);
			return DS_EXIT_USAGE;
		}
		a->slot = optarg;
		break;
	case 'n':
		a->noslot = 1;
		break;
	case 'L':
		a->list_slots = 1;
		break;
	case 'F':
		a->forget = optarg;
		break;
	case 'C':
		if (strspn(optarg, " \t\n") == strlen(optarg)) {
			cli_errorf("replica", "--master-command: empty");
			return DS_EXIT_USAGE;
		}
		o->master_command = optarg;
		break;
	default:
		cmd_replica_usage(stderr);
		return DS_EXIT_USAGE;
	}
	return -1;
}

/* The options into a (optind then points at the operands). Returns -1,
 * or the exit code. */
static int
replica_options(int argc, char **argv, struct replica_args *a)
{
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{"init", no_argument, NULL, 'I'},
		{"timeout", required_argument, NULL, 'T'},
		{"deadline", required_argument, NULL, 'D'},
		{"serve-only", required_argument, NULL, 'S'},
		{"max-size", required_argument, NULL, 'M'},
		{"master-command", required_argument, NULL, 'C'},
		{"watch", required_argument, NULL, 'W'},
		{"backoff-max", required_argument, NULL, 'B'},
		{"before-apply", required_argument, NULL, 'b'},
		{"after-apply", required_argument, NULL, 'a'},
		{"keep-previous", no_argument, NULL, 'K'},
		{"no-keep-previous", no_argument, NULL, 'k'},
		{"slot", required_argument, NULL, 'N'},
		{"no-slot", no_argument, NULL, 'n'},
		{"slots", no_argument, NULL, 'L'},
		{"forget", required_argument, NULL, 'F'},
		{NULL, 0, NULL, 0},
	};
	int c, ex;

	memset(a, 0, sizeof(*a));
	optind = 1;
	while ((c = getopt_long(argc, argv, "hvqd:e:t:s:", longopts, NULL)) !=
	       -1) {
		ex = replica_option(c, a);
		if (ex >= 0)
			return ex;
	}
	/* a master that sends a byte now and then is never silent for
	 * --timeout: without a deadline it could hold the replica's lock
	 * for ever */
	if (!a->deadline_set)
		a->o.deadline = REPLICA_DEADLINE_DEFAULT;
	cli_verbosity = 1 + a->v - a->q;
	if (cli_verbosity < 0)
		cli_verbosity = 0;
	if (a->ripath != NULL && a->o.master_command != NULL) {
		cli_errorf("replica", "-d and --master-command both say what "
		           "runs on the master: give one");
		return DS_EXIT_USAGE;
	}
	if (a->init && (a->w.interval || a->w.before_apply ||
	                a->w.after_apply)) {
		cli_errorf("replica", "--init makes a new replica: --watch and "
		           "the hooks are for increments");
		return DS_EXIT_USAGE;
	}
	if (a->w.backoff_max == 0)
		a->w.backoff_max = REPLICA_BACKOFF_MAX_DEFAULT;
	if (a->w.backoff_max < a->w.interval)
		a->w.backoff_max = a->w.interval;
	if (a->slot != NULL && a->noslot) {
		cli_errorf("replica", "give --slot or --no-slot, not both");
		return DS_EXIT_USAGE;
	}
	return -1;
}

/* The master operand, [user@]HOST:DIR or DIR, into o (its strings point
 * into src, which the caller owns). Returns -1, or the exit code. */
static int
replica_master_arg(char *src, const char *arg, struct ds_replica_opts *o)
{
	if (cli_master_parse(src, o) != 0) {
		cli_errorf("replica", "bad master \"%s\": expected "
		           "[user@]HOST:DIR", arg);
		return DS_EXIT_USAGE;
	}
	return -1;
}

/* The -v -v summary of a completed run. */
static void
replica_summary(const struct ds_replica_stats *st, int init)
{
	char a[24], b[24], sz[32], held[48];

	ds_tid_format(st->old_tid, a);
	ds_tid_format(st->new_tid, b);
	ds_size_format(st->bytes, sz);
	if (st->master_held >= 0)
		snprintf(held, sizeof(held), "%.3f s", st->master_held);
	else
		snprintf(held, sizeof(held), "not reported");
	fprintf(stderr, "ds replica: %s: %lu transactions, %lu files "
	        "(%lu object revisions), %s %s (%llu bytes)\n",
	        init ? "made a new replica" : "applied", st->transactions,
	        st->members, st->revisions, init ? "received" : "increment",
	        sz, (unsigned long long)st->bytes);
	fprintf(stderr, "ds replica: replica at %016llX (%s), was "
	        "%016llX (%s)\n", (unsigned long long)st->new_tid,
	        st->new_tid ? b : "empty", (unsigned long long)st->old_tid,
	        st->old_tid ? a : "empty");
	fprintf(stderr, "ds replica: master held in snapshot mode: %s; "
	        "total time %.2f s%s\n", held, st->seconds,
	        st->tries > 1 ? " (after retries)" : "");
}

/* The replica side: pull (or --init) REPLICA from the master operand. */
static int
replica_client(struct replica_args *a, const char *master,
               const char *replica)
{
	struct ds_replica_opts *o = &a->o;
	struct ds_replica_stats st;
	struct progress prog = {0, replica_clock(), 0, 0};
	char self[PATH_MAX], remote[PATH_MAX + 8], *src;
	ds_error err;
	ssize_t n;
	int rc, ex;

	/* a request to write, an answer to read: a master side that dies
	 * early must give us EPIPE, not kill us */
	signal(SIGPIPE, SIG_IGN);
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		cli_errorf("replica", "cannot find this program's path");
		return DS_EXIT_IO;
	}
	self[n] = '\0';
	src = strdup(master);
	if (src == NULL) {
		cli_errorf("replica", "out of memory");
		return DS_EXIT_IO;
	}
	ex = replica_master_arg(src, master, o);
	if (ex >= 0) {
		free(src);
		return ex;
	}
	if (a->ripath != NULL)
		snprintf(remote, sizeof(remote), "%s/ds", a->ripath);
	else
		snprintf(remote, sizeof(remote), "%s", self);
	o->remote_program = remote;
	o->local_program = self;
	if (!a->noslot) {
		if (a->slot == NULL) {
			if (replica_default_slot(replica, a->slotbuf,
			                         sizeof(a->slotbuf)) != 0) {
				cli_errorf("replica", "cannot name this "
				           "replica's slot from its path %s: give "
				           "--slot NAME or --no-slot", replica);
				free(src);
				return DS_EXIT_USAGE;
			}
			a->slot = a->slotbuf;
		}
		o->slot = a->slot;
	}
	o->verbosity = cli_verbosity;
	o->log = cli_log;
	o->log_ctx = "replica";
	o->exit_for = cli_exit_for;
	if (cli_verbosity >= 1 && isatty(2)) {
		o->progress = replica_progress;
		o->progress_ctx = &prog;
	}
	a->w.master = master;
	replica_watch_hooks(o, &a->w);
	if (a->w.interval > 0) {
		/* every few seconds: the master side's progress lines only
		 * at -v */
		if (o->verbosity == 1)
			o->verbosity = 0;
		rc = replica_watch_run(o, replica, &a->w);
		free(src);
		return rc;
	}
	ds_error_clear(&err);
	if (a->init)
		rc = ds_replica_init(replica, o, &st, &err);
	else
		rc = ds_replica_pull(replica, o, &st, &err);
	if (prog.shown) {
		replica_progress_line(&prog, replica_clock(), "received");
		fputc('\n', stderr);
	}
	free(src);
	if (rc != DS_OK)
		return cli_fail("replica", &err);
	if (cli_verbosity >= 2)
		replica_summary(&st, a->init);
	if (cli_verbosity >= 1)
		fprintf(stderr, "ds replica: Replica complete\n");
	return DS_EXIT_OK;
}

int
cmd_replica(int argc, char **argv)
{
	struct replica_args a;
	int ex;

	ex = replica_options(argc, argv, &a);
	if (ex >= 0)
		return ex;
	argc -= optind;
	argv += optind;
	if (a.list_slots || a.forget != NULL) {
		if (argc != 1 || (a.list_slots && a.forget != NULL)) {
			cli_errorf("replica", "--slots DIR and --forget NAME DIR "
			           "take one master storage directory");
			return DS_EXIT_USAGE;
		}
		return a.forget != NULL ? replica_forget(argv[0], a.forget) :
		       replica_list_slots(argv[0]);
	}
	if (a.serve != NULL) {
		if (argc != 0 || a.init) {
			cli_errorf("replica", "--serve-only DIR takes no other "
			           "arguments (the client's come in "
			           "SSH_ORIGINAL_COMMAND)");
			return DS_EXIT_USAGE;
		}
		return replica_serve_only(a.serve, a.v, a.q);
	}
	if (argc != 2) {
		cli_errorf("replica", "expected [user@]HOST:DIR REPLICA (or + "
		           "DIR), got %d argument%s", argc, argc == 1 ? "" : "s");
		cmd_replica_usage(stderr);
		return DS_EXIT_USAGE;
	}
	if (strcmp(argv[0], "+") == 0) {
		if (a.init) {
			cli_errorf("replica", "--init is for the replica side");
			return DS_EXIT_USAGE;
		}
		return replica_master_side(argv[1]);
	}
	return replica_client(&a, argv[0], argv[1]);
}
