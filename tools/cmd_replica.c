/*
 * cmd_replica.c - `ds replica`: keep a replica up to date with its master
 * (the seed's replica.py command line).
 *
 *   ds replica [options] [user@]HOST:DIR REPLICA   over ssh
 *   ds replica [options] DIR REPLICA               master side run locally
 *   ds replica --init [options] SOURCE REPLICA     make a new replica
 *   ds replica [-v|-q] + DIR                       the master side itself
 */
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

void
cmd_replica_usage(FILE *out)
{
	fprintf(out,
	        "usage: ds replica [options] [user@]HOST:DIR REPLICA\n"
	        "       ds replica [options] DIR REPLICA\n"
	        "       ds replica --init [options] [user@]HOST:DIR|DIR REPLICA\n"
	        "       ds replica [-v|-q] + DIR        (the master side)\n\n"
	        "Bring the local REPLICA up to date with the master storage "
	        "DIR, atomically and\naligned on transaction boundaries. "
	        "With HOST: the master side runs there through\nssh; "
	        "without, as a local child process.\n\n"
	        "Options:\n"
	        "  -v              more verbose (increment size, transactions, "
	        "files, how long\n"
	        "                  the master was held in snapshot mode); "
	        "-v -v shows the command\n"
	        "  -q              quiet unless something fails\n"
	        "  -d DIR          where ds lives on the master (DIR/ds); "
	        "default: the same path\n"
	        "                  as this ds\n"
	        "  -e COMMAND      use COMMAND instead of ssh; it may carry "
	        "arguments, e.g.\n"
	        "                  -e \"ssh -p 2222 -F /etc/ds/ssh_config\"\n"
	        "  -t SECONDS      keep retrying this long while the master is "
	        "busy (held in\n"
	        "                  snapshot mode, being packed)\n"
	        "  -s SECONDS      sleep between retries (default 10)\n"
	        "      --init      create REPLICA (which must not exist) from "
	        "the master\n"
	        "  -h, --help      show this help\n\n"
	        "Exit: 0 done; 1 needs a human (different identity, diverged, "
	        "packed since,\nreplica newer, not a Full storage, increment "
	        "refused); 2 usage; 3 try again\nlater (master busy, ssh or "
	        "connection failed, replica in use); 4 local I/O error.\n");
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
	ds_error_clear(&err);
	rc = ds_replica_serve(dir, 0, 1, &so, &err);
	if (rc != DS_OK) {
		fprintf(stderr, "ds replica: ReplicaError: %s\n",
		        err.msg[0] ? err.msg : ds_strerror(rc));
		return cli_exit_code(rc);
	}
	return DS_EXIT_OK;
}

struct progress {
	int shown;
	double last;
};

static void
replica_progress(uint64_t bytes, void *ctx)
{
	struct progress *p = ctx;
	struct timespec ts;
	double now;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = ts.tv_sec + ts.tv_nsec / 1e9;
	if (p->shown && now - p->last < 0.25)
		return;
	p->last = now;
	p->shown = 1;
	fprintf(stderr, "\rds replica: receiving %.1f MiB ", bytes /
	        (1024.0 * 1024.0));
	fflush(stderr);
}

int
cmd_replica(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{"init", no_argument, NULL, 'I'},
		{NULL, 0, NULL, 0},
	};
	struct ds_replica_opts o;
	struct ds_replica_stats st;
	struct progress prog = {0, 0};
	char self[PATH_MAX], remote[PATH_MAX + 8], *src = NULL, *colon;
	const char *ripath = NULL;
	ds_error err;
	int c, rc, init = 0, v = 0, q = 0;

	memset(&o, 0, sizeof(o));
	optind = 1;
	while ((c = getopt_long(argc, argv, "+hvqd:e:t:s:", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 'h':
			cmd_replica_usage(stdout);
			return DS_EXIT_OK;
		case 'v':
			v++;
			break;
		case 'q':
			q++;
			break;
		case 'd':
			ripath = optarg;
			break;
		case 'e':
			o.ssh_command = optarg;
			break;
		case 't':
			if (replica_parse_secs(optarg, &o.timeout) != 0) {
				cli_errorf("replica", "-t: not a number of "
				           "seconds: %s", optarg);
				return DS_EXIT_USAGE;
			}
			break;
		case 's':
			if (replica_parse_secs(optarg, &o.sleep) != 0) {
				cli_errorf("replica", "-s: not a number of "
				           "seconds: %s", optarg);
				return DS_EXIT_USAGE;
			}
			break;
		case 'I':
			init = 1;
			break;
		default:
			cmd_replica_usage(stderr);
			return DS_EXIT_USAGE;
		}
	}
	cli_verbosity = 1 + v - q;
	if (cli_verbosity < 0)
		cli_verbosity = 0;
	argc -= optind;
	argv += optind;
	if (argc != 2) {
		cli_errorf("replica", "expected [user@]HOST:DIR REPLICA (or + "
		           "DIR), got %d argument%s", argc, argc == 1 ? "" : "s");
		cmd_replica_usage(stderr);
		return DS_EXIT_USAGE;
	}
	if (strcmp(argv[0], "+") == 0) {
		if (init) {
			cli_errorf("replica", "--init is for the replica side");
			return DS_EXIT_USAGE;
		}
		return replica_master_side(argv[1]);
	}
	/* a request to write, an answer to read: a master side that dies
	 * early must give us EPIPE, not kill us */
	signal(SIGPIPE, SIG_IGN);

	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		cli_errorf("replica", "cannot find this program's path");
		return DS_EXIT_IO;
	}
	self[n] = '\0';
	src = strdup(argv[0]);
	if (src == NULL) {
		cli_errorf("replica", "out of memory");
		return DS_EXIT_IO;
	}
	/* [user@]HOST:DIR as scp: a ':' before any '/' names a host */
	colon = strchr(src, ':');
	if (colon != NULL && memchr(src, '/', (size_t)(colon - src)) == NULL) {
		char *at;

		*colon = '\0';
		o.master_dir = colon + 1;
		at = strchr(src, '@');
		if (at != NULL) {
			*at = '\0';
			o.user = src;
			o.host = at + 1;
		} else {
			o.host = src;
		}
		if (o.host[0] == '\0' || o.master_dir[0] == '\0' ||
		    (o.user != NULL && o.user[0] == '\0')) {
			cli_errorf("replica", "bad master \"%s\": expected "
			           "[user@]HOST:DIR", argv[0]);
			free(src);
			return DS_EXIT_USAGE;
		}
	} else {
		o.master_dir = src;
	}
	if (ripath != NULL)
		snprintf(remote, sizeof(remote), "%s/ds", ripath);
	else
		snprintf(remote, sizeof(remote), "%s", self);
	o.remote_program = remote;
	o.local_program = self;
	o.verbosity = cli_verbosity;
	o.log = cli_log;
	o.log_ctx = "replica";
	if (cli_verbosity >= 1 && isatty(2)) {
		o.progress = replica_progress;
		o.progress_ctx = &prog;
	}
	ds_error_clear(&err);
	if (init)
		rc = ds_replica_init(argv[1], &o, &st, &err);
	else
		rc = ds_replica_pull(argv[1], &o, &st, &err);
	if (prog.shown)
		fputc('\n', stderr);
	free(src);
	if (rc != DS_OK)
		return cli_fail("replica", &err);
	if (cli_verbosity >= 2) {
		char a[24], b[24];
		ds_tid_format(st.old_tid, a);
		ds_tid_format(st.new_tid, b);
		fprintf(stderr, "ds replica: %016llX (%s) -> %016llX (%s): "
		        "%lu transactions, %lu files, %llu bytes, %.2f s\n",
		        (unsigned long long)st.old_tid, st.old_tid ? a : "empty",
		        (unsigned long long)st.new_tid, b, st.transactions,
		        st.members, (unsigned long long)st.bytes, st.seconds);
	}
	if (cli_verbosity >= 1)
		fprintf(stderr, "ds replica: Replica complete\n");
	return DS_EXIT_OK;
}
