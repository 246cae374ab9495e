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

#define REPLICA_DEADLINE_DEFAULT (4u * 3600)   /* --deadline, s */

void
cmd_replica_usage(FILE *out)
{
	fprintf(out,
	        "usage: ds replica [options] [user@]HOST:DIR REPLICA\n"
	        "       ds replica [options] DIR REPLICA\n"
	        "       ds replica --init [options] [user@]HOST:DIR|DIR REPLICA\n"
	        "       ds replica [-v|-q] + DIR        (the master side)\n"
	        "       ds replica --serve-only DIR     (the master side as an "
	        "ssh forced command)\n\n"
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

static void
replica_fmt_size(uint64_t n, char out[32])
{
	if (n < 10 * 1024)
		snprintf(out, 32, "%llu bytes", (unsigned long long)n);
	else if (n < 10ull * 1024 * 1024)
		snprintf(out, 32, "%.1f KiB", n / 1024.0);
	else
		snprintf(out, 32, "%.1f MiB", n / (1024.0 * 1024.0));
}

/* The command line, parsed. */
struct replica_args {
	struct ds_replica_opts o;
	const char *ripath;        /* -d */
	const char *serve;         /* --serve-only DIR */
	int init, v, q, deadline_set;
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
	case 'K':
		o->no_keep_previous = 0;
		break;
	case 'k':
		o->no_keep_previous = 1;
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
		{"keep-previous", no_argument, NULL, 'K'},
		{"no-keep-previous", no_argument, NULL, 'k'},
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
	return -1;
}

/* The master operand, [user@]HOST:DIR or DIR, into o (its strings point
 * into src, which the caller owns). Returns -1, or the exit code. */
static int
replica_master_arg(char *src, const char *arg, struct ds_replica_opts *o)
{
	char *colon, *at;

	/* [user@]HOST:DIR as scp: a ':' before any '/' names a host */
	colon = strchr(src, ':');
	if (colon == NULL || memchr(src, '/', (size_t)(colon - src)) != NULL) {
		o->master_dir = src;
		return -1;
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
	    (o->user != NULL && o->user[0] == '\0')) {
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
	replica_fmt_size(st->bytes, sz);
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
	o->verbosity = cli_verbosity;
	o->log = cli_log;
	o->log_ctx = "replica";
	if (cli_verbosity >= 1 && isatty(2)) {
		o->progress = replica_progress;
		o->progress_ctx = &prog;
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
