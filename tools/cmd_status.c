/*
 * cmd_status.c - `ds status`: how far behind is a replica.
 *
 *   ds status [options] REPLICA [[USER@]HOST:]MASTER
 *   ds status [options] REPLICA
 *
 * Reads the replica in place (its last transaction, a pending increment,
 * misc/replica.state: the last successful and failed runs of ds replica)
 * and, given MASTER, asks the master side over the same transport as ds
 * replica for its newest transaction and how many the replica lacks.
 * Prints text, --json, a Nagios plugin line (--nagios W,C) and/or a
 * Prometheus textfile (--prometheus FILE).
 *
 * The lag in seconds: with the master's answer, how long the oldest
 * transaction the replica lacks has been committed (the master's clock
 * now minus that transaction's time; 0 when the replica lacks nothing).
 * Without it (no MASTER, or the master could not answer), a bound: the
 * time since the start of the last successful run (everything the master
 * had committed then is in the replica).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define STATUS_TIMEOUT_DEFAULT 60u   /* s: --timeout */

/* Nagios plugin exit codes. */
enum { NAGIOS_OK = 0, NAGIOS_WARNING = 1, NAGIOS_CRITICAL = 2,
       NAGIOS_UNKNOWN = 3 };

void
cmd_status_usage(FILE *out)
{
	fprintf(out,
	        "usage: ds status [options] REPLICA [[USER@]HOST:]MASTER\n"
	        "       ds status [options] REPLICA\n\n"
	        "Show how far behind REPLICA is: its last transaction and "
	        "that transaction's\ntime, the last successful and the last "
	        "failed run of ds replica (recorded in\nREPLICA/misc/"
	        "replica.state) and, given MASTER (as ds replica names it), "
	        "the\nmaster's newest transaction and the lag in transactions "
	        "and in seconds (how\nlong the oldest transaction the replica "
	        "lacks has been committed). Without\nMASTER, or when the "
	        "master cannot answer, the lag is bounded by the time since\n"
	        "the start of the last successful run. Reads only: nothing "
	        "is written in REPLICA.\n\n"
	        "Options:\n"
	        "      --json      print one JSON object\n"
	        "      --nagios W,C\n"
	        "                  a Nagios plugin: one line with perfdata, "
	        "exit 0 OK (lag < W\n"
	        "                  seconds), 1 WARNING (lag >= W), 2 CRITICAL "
	        "(lag >= C, or the\n"
	        "                  replica is not in the master's history), "
	        "3 UNKNOWN (the lag\n"
	        "                  cannot be told, the replica cannot be read, "
	        "a bad command line)\n"
	        "      --prometheus FILE\n"
	        "                  write the figures in the Prometheus "
	        "text format to FILE\n"
	        "                  (replaced atomically; for node_exporter's "
	        "textfile collector);\n"
	        "                  with neither --json nor --nagios, nothing "
	        "is printed\n"
	        "  -e COMMAND      use COMMAND instead of ssh (as ds replica "
	        "-e)\n"
	        "  -d DIR          where ds lives on the master (DIR/ds)\n"
	        "      --master-command COMMAND\n"
	        "                  the master side's program (as ds replica "
	        "--master-command)\n"
	        "      --timeout SECONDS\n"
	        "                  give up on the master after this long "
	        "(default %u)\n"
	        "  -v              show the master side's messages\n"
	        "  -h, --help      show this help\n\n"
	        "Exit (without --nagios): 0 the status was shown (also when "
	        "the master runs the\noriginal replica.py, which cannot tell "
	        "its newest transaction: shown as\nunknown); 1 the replica "
	        "cannot be read or the master refused (a different\n"
	        "identity); 2 usage; 3 the master could not be asked "
	        "(connection failed,\nbusy, --timeout); 4 system error. The "
	        "replica's figures are shown in every\ncase but 1 and 2.\n",
	        STATUS_TIMEOUT_DEFAULT);
}

struct status_view {
	const char *replica;
	const char *master_name;     /* as given, NULL without MASTER */
	struct ds_replica_local loc;
	int master_known;            /* ms valid */
	struct ds_master_status ms;
	ds_error merr;               /* why the master is unknown */
	int merr_exit;               /* its exit code */
	double now;                  /* our clock */
	int lag_known;               /* lag from the master's answer */
	int lag_bounded;             /* lag_bound from the last success */
	double lag;                  /* seconds */
	double lag_bound;            /* seconds */
};

static double
status_wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
status_compute(struct status_view *v)
{
	if (v->master_known) {
		v->lag_known = 1;
		v->lag = 0;
		if (v->ms.behind > 0 && v->ms.oldest != 0) {
			v->lag = v->ms.now - ds_tid_to_time(v->ms.oldest);
			if (v->lag < 0)
				v->lag = 0;
		}
	}
	if (v->loc.state_found && v->loc.state.success_start > 0) {
		v->lag_bounded = 1;
		v->lag_bound = v->now - v->loc.state.success_start;
		if (v->lag_bound < 0)
			v->lag_bound = 0;
	}
}

/* "YYYY-MM-DD HH:MM:SS GMT" of a Unix time, or "never" for 0. */
static void
status_time(double t, char out[40])
{
	struct tm tm;
	time_t s = (time_t)t;

	if (t <= 0) {
		snprintf(out, 40, "never");
		return;
	}
	gmtime_r(&s, &tm);
	strftime(out, 40, "%Y-%m-%d %H:%M:%S GMT", &tm);
}

static void
status_print_text(const struct status_view *v)
{
	const struct ds_replica_state *st = &v->loc.state;
	char t1[40], t2[32];

	printf("replica:          %s\n", v->replica);
	cli_tid_time(v->loc.tid, t2);
	printf("last transaction: %016llX (%s)\n",
	       (unsigned long long)v->loc.tid, t2);
	if (v->loc.pending)
		printf("pending:          a committed increment waits in "
		       "journal/replica.tar (the next ds replica or open "
		       "applies it)\n");
	if (v->master_name != NULL) {
		printf("master:           %s\n", v->master_name);
		if (v->master_known) {
			cli_tid_time(v->ms.newest, t2);
			printf("master newest:    %016llX (%s)\n",
			       (unsigned long long)v->ms.newest, t2);
			if (!v->ms.in_history)
				printf("history:          the replica's last "
				       "transaction is not in the master's "
				       "history (diverged, packed since, or "
				       "newer than the master)\n");
			printf("lag:              %lu transactions, %.0f s\n",
			       v->ms.behind, v->lag);
		} else {
			printf("master newest:    unknown: %s\n", v->merr.msg);
		}
	}
	if (!v->lag_known && v->lag_bounded)
		printf("lag:              at most %.0f s (since the start of "
		       "the last successful run)\n", v->lag_bound);
	else if (!v->lag_known)
		printf("lag:              unknown\n");
	if (!v->loc.state_found) {
		printf("runs:             none recorded (no "
		       "misc/replica.state)\n");
		return;
	}
	if (st->master[0] != '\0')
		printf("replicated from:  %s\n", st->master);
	status_time(st->success_time, t1);
	if (st->success_time > 0)
		printf("last success:     %s (%.0f s ago), %lu transactions "
		       "applied\n", t1, v->now - st->success_time,
		       st->success_transactions);
	else
		printf("last success:     never\n");
	status_time(st->failure_time, t1);
	if (st->failure_time > 0)
		printf("last failure:     %s (%.0f s ago), exit %d: %s\n", t1,
		       v->now - st->failure_time, st->failure_exit,
		       st->failure_error);
	else
		printf("last failure:     never\n");
	if (st->failures > 0)
		printf("failures:         %lu in a row since the last "
		       "success\n", st->failures);
}

static json_t *
status_json_time(double t)
{
	return t > 0 ? json_real(t) : json_null();
}

static int
status_print_json(const struct status_view *v)
{
	const struct ds_replica_state *st = &v->loc.state;
	json_t *o = json_object(), *m, *r;
	char t[32];
	int rc;

	if (o == NULL)
		return -1;
	json_object_set_new(o, "replica", json_string(v->replica));
	json_object_set_new(o, "identity", json_string(v->loc.identity));
	json_object_set_new(o, "tid", cli_json_id(v->loc.tid));
	cli_tid_time(v->loc.tid, t);
	json_object_set_new(o, "tid_time", v->loc.tid ? json_string(t) :
	                    json_null());
	json_object_set_new(o, "tid_timestamp", v->loc.tid ?
	                    json_real(ds_tid_to_time(v->loc.tid)) :
	                    json_null());
	json_object_set_new(o, "pending_increment",
	                    json_boolean(v->loc.pending));
	json_object_set_new(o, "state_recorded",
	                    json_boolean(v->loc.state_found));
	r = json_object();
	json_object_set_new(r, "time", status_json_time(st->success_time));
	json_object_set_new(r, "start", status_json_time(st->success_start));
	json_object_set_new(r, "transactions",
	                    json_integer((json_int_t)st->success_transactions));
	json_object_set_new(o, "last_success", st->success_time > 0 ? r :
	                    json_null());
	if (st->success_time <= 0)
		json_decref(r);
	r = json_object();
	json_object_set_new(r, "time", status_json_time(st->failure_time));
	json_object_set_new(r, "exit", json_integer(st->failure_exit));
	json_object_set_new(r, "error", json_string(st->failure_error));
	json_object_set_new(o, "last_failure", st->failure_time > 0 ? r :
	                    json_null());
	if (st->failure_time <= 0)
		json_decref(r);
	json_object_set_new(o, "consecutive_failures",
	                    json_integer((json_int_t)st->failures));
	json_object_set_new(o, "replicated_from", st->master[0] ?
	                    json_string(st->master) : json_null());
	if (v->master_name != NULL) {
		m = json_object();
		json_object_set_new(m, "name", json_string(v->master_name));
		json_object_set_new(m, "known", json_boolean(v->master_known));
		if (v->master_known) {
			json_object_set_new(m, "newest", cli_json_id(v->ms.newest));
			cli_tid_time(v->ms.newest, t);
			json_object_set_new(m, "newest_time", json_string(t));
			json_object_set_new(m, "newest_timestamp",
			                    json_real(ds_tid_to_time(v->ms.newest)));
			json_object_set_new(m, "oldest_missing", v->ms.oldest ?
			                    cli_json_id(v->ms.oldest) : json_null());
			json_object_set_new(m, "packed", cli_json_id(v->ms.packed));
			json_object_set_new(m, "in_history",
			                    json_boolean(v->ms.in_history));
			json_object_set_new(m, "now", json_real(v->ms.now));
		} else {
			json_object_set_new(m, "error", json_string(v->merr.msg));
		}
		json_object_set_new(o, "master", m);
	} else {
		json_object_set_new(o, "master", json_null());
	}
	json_object_set_new(o, "lag_transactions", v->master_known ?
	                    json_integer((json_int_t)v->ms.behind) :
	                    json_null());
	json_object_set_new(o, "lag_seconds", v->lag_known ?
	                    json_real(v->lag) : json_null());
	json_object_set_new(o, "lag_bound_seconds", v->lag_bounded ?
	                    json_real(v->lag_bound) : json_null());
	rc = json_dumpf(o, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
	putchar('\n');
	json_decref(o);
	return rc;
}

/* A Prometheus label value: backslash, quote and newline escaped. */
static void
status_prom_label(char *out, size_t outsz, const char *s)
{
	size_t o = 0;

	for (; *s != '\0' && o + 3 < outsz; s++) {
		if (*s == '\\' || *s == '"') {
			out[o++] = '\\';
			out[o++] = *s;
		} else if (*s == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else {
			out[o++] = *s;
		}
	}
	out[o] = '\0';
}

struct prom_buf {
	char *p;
	size_t len, cap;
	int failed;
};

static void
prom_add(struct prom_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
prom_add(struct prom_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = 1;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		char *np = realloc(b->p, b->cap * 2 + (size_t)n);
		if (np == NULL) {
			b->failed = 1;
			return;
		}
		b->p = np;
		b->cap = b->cap * 2 + (size_t)n;
	}
}

static void
prom_metric(struct prom_buf *b, const char *name, const char *help,
            const char *labels, double value)
{
	prom_add(b, "# HELP %s %s\n# TYPE %s gauge\n%s{%s} %.17g\n", name,
	         help, name, name, labels, value);
}

static int
status_write_prometheus(const struct status_view *v, const char *file)
{
	const struct ds_replica_state *st = &v->loc.state;
	struct prom_buf b = {NULL, 0, 4096, 0};
	char rl[2 * PATH_MAX], ml[4096], labels[3 * PATH_MAX + 4200];
	ds_error err;
	int rc;

	b.p = malloc(b.cap);
	if (b.p == NULL)
		b.failed = 1;
	status_prom_label(rl, sizeof(rl), v->replica);
	if (v->master_name != NULL) {
		status_prom_label(ml, sizeof(ml), v->master_name);
		snprintf(labels, sizeof(labels), "replica=\"%s\",master=\"%s\"",
		         rl, ml);
	} else {
		snprintf(labels, sizeof(labels), "replica=\"%s\"", rl);
	}
	prom_metric(&b, "ds_replica_last_transaction_timestamp_seconds",
	            "Commit time of the replica's last transaction (0: "
	            "empty).", labels,
	            v->loc.tid ? ds_tid_to_time(v->loc.tid) : 0);
	prom_metric(&b, "ds_replica_pending_increment",
	            "1 when a committed increment waits in "
	            "journal/replica.tar.", labels, v->loc.pending);
	prom_metric(&b, "ds_replica_last_success_timestamp_seconds",
	            "End of the last successful ds replica run (0: none "
	            "recorded).", labels, st->success_time);
	prom_metric(&b, "ds_replica_last_success_start_timestamp_seconds",
	            "Start of the last successful ds replica run (0: none "
	            "recorded).", labels, st->success_start);
	prom_metric(&b, "ds_replica_last_failure_timestamp_seconds",
	            "End of the last failed ds replica run (0: none "
	            "recorded).", labels, st->failure_time);
	prom_metric(&b, "ds_replica_last_failure_exit_code",
	            "Exit code of the last failed ds replica run (0: none).",
	            labels, st->failure_exit);
	prom_metric(&b, "ds_replica_consecutive_failures",
	            "Failed ds replica runs since the last successful one.",
	            labels, (double)st->failures);
	if (v->master_name != NULL)
		prom_metric(&b, "ds_replica_master_up", "1 when the master "
		            "answered the status request.", labels,
		            v->master_known);
	if (v->master_known) {
		prom_metric(&b, "ds_replica_master_last_transaction_timestamp_"
		            "seconds", "Commit time of the master's newest "
		            "transaction.", labels,
		            v->ms.newest ? ds_tid_to_time(v->ms.newest) : 0);
		prom_metric(&b, "ds_replica_lag_transactions", "Transactions "
		            "the master has and the replica lacks.", labels,
		            (double)v->ms.behind);
		prom_metric(&b, "ds_replica_in_master_history", "1 when the "
		            "replica's last transaction is in the master's "
		            "history.", labels, v->ms.in_history);
	}
	if (v->lag_known)
		prom_metric(&b, "ds_replica_lag_seconds", "How long the oldest "
		            "transaction the replica lacks has been committed "
		            "(0: up to date).", labels, v->lag);
	if (v->lag_bounded)
		prom_metric(&b, "ds_replica_lag_bound_seconds", "Time since the "
		            "start of the last successful run: the lag is at "
		            "most this.", labels, v->lag_bound);
	prom_metric(&b, "ds_replica_status_timestamp_seconds", "When ds "
	            "status wrote this file.", labels, v->now);
	if (b.failed) {
		free(b.p);
		cli_errorf("status", "--prometheus %s: out of memory", file);
		return DS_EXIT_IO;
	}
	ds_error_clear(&err);
	rc = ds_file_replace(file, b.p, b.len, 0644, &err);
	free(b.p);
	if (rc != DS_OK)
		return cli_fail("status", &err);
	return DS_EXIT_OK;
}

/* The Nagios line and state. */
static int
status_nagios(const struct status_view *v, unsigned w, unsigned c)
{
	const char *names[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};
	double lag = v->lag_known ? v->lag : v->lag_bound;
	char what[4400], perf[256];
	int state;

	if (v->master_known && !v->ms.in_history) {
		state = NAGIOS_CRITICAL;
		snprintf(what, sizeof(what), "%s: its last transaction %016llX "
		         "is not in the master's history (diverged, packed "
		         "since, or newer than the master)", v->replica,
		         (unsigned long long)v->loc.tid);
	} else if (!v->lag_known && !v->lag_bounded) {
		state = NAGIOS_UNKNOWN;
		snprintf(what, sizeof(what), "%s: lag unknown: %s", v->replica,
		         v->master_name == NULL ? "no master given and no "
		         "successful run recorded" : v->merr.msg);
	} else {
		state = lag >= c ? NAGIOS_CRITICAL : lag >= w ?
		        NAGIOS_WARNING : NAGIOS_OK;
		if (v->lag_known)
			snprintf(what, sizeof(what), "%s: %lu transactions, "
			         "%.0f s behind %s", v->replica, v->ms.behind,
			         v->lag, v->master_name);
		else
			snprintf(what, sizeof(what), "%s: lag at most %.0f s "
			         "(last successful run started %.0f s ago)%s%s",
			         v->replica, v->lag_bound, v->lag_bound,
			         v->master_name ? "; master unknown: " : "",
			         v->master_name ? v->merr.msg : "");
	}
	if (v->lag_known || v->lag_bounded)
		snprintf(perf, sizeof(perf), " | lag=%.0fs;%u;%u;0;", lag, w, c);
	else
		perf[0] = '\0';
	if (v->master_known) {
		size_t n = strlen(perf);
		snprintf(perf + n, sizeof(perf) - n, "%sbehind=%lu;;;0;",
		         n ? " " : " | ", v->ms.behind);
	}
	/* one line: a newline in a message would start Nagios' long text */
	for (char *p = what; *p; p++)
		if (*p == '\n' || *p == '|')
			*p = ' ';
	printf("DS_REPLICA %s - %s%s\n", names[state], what, perf);
	return state;
}

static int
status_parse_thresholds(const char *s, unsigned *w, unsigned *c)
{
	char *end;
	unsigned long a, b;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	a = strtoul(s, &end, 10);
	if (*end != ',' || errno != 0 || end[1] < '0' || end[1] > '9')
		return -1;
	b = strtoul(end + 1, &end, 10);
	if (*end != '\0' || errno != 0 || a > b || b > 100u * 365 * 86400)
		return -1;
	*w = (unsigned)a;
	*c = (unsigned)b;
	return 0;
}

int
cmd_status(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{"json", no_argument, NULL, 'J'},
		{"nagios", required_argument, NULL, 'N'},
		{"prometheus", required_argument, NULL, 'P'},
		{"master-command", required_argument, NULL, 'C'},
		{"timeout", required_argument, NULL, 'T'},
		{NULL, 0, NULL, 0},
	};
	struct ds_replica_opts o;
	struct status_view v;
	char self[PATH_MAX], remote[PATH_MAX + 8], *src = NULL;
	const char *ripath = NULL, *prom = NULL;
	unsigned warn = 0, crit = 0, timeout = STATUS_TIMEOUT_DEFAULT;
	int c, rc, json = 0, nagios = 0, verbose = 0, usage_exit;
	ds_error err;

	memset(&o, 0, sizeof(o));
	memset(&v, 0, sizeof(v));
	/* a Nagios plugin says UNKNOWN (3) for a bad command line: Nagios
	 * reads 2 as CRITICAL */
	usage_exit = DS_EXIT_USAGE;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--nagios") == 0 ||
		    strncmp(argv[i], "--nagios=", 9) == 0)
			usage_exit = NAGIOS_UNKNOWN;
	optind = 1;
	while ((c = getopt_long(argc, argv, "hvd:e:", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			cmd_status_usage(stdout);
			return DS_EXIT_OK;
		case 'v':
			verbose++;
			break;
		case 'd':
			ripath = optarg;
			break;
		case 'e':
			o.ssh_command = optarg;
			break;
		case 'J':
			json = 1;
			break;
		case 'N':
			if (status_parse_thresholds(optarg, &warn, &crit) != 0) {
				cli_errorf("status", "--nagios: expected W,C (whole "
				           "seconds of lag, W <= C): %s", optarg);
				return usage_exit;
			}
			nagios = 1;
			break;
		case 'P':
			prom = optarg;
			break;
		case 'C':
			if (strspn(optarg, " \t\n") == strlen(optarg)) {
				cli_errorf("status", "--master-command: empty");
				return usage_exit;
			}
			o.master_command = optarg;
			break;
		case 'T': {
			char *end;
			unsigned long t = strtoul(optarg, &end, 10);

			if (*optarg < '0' || *optarg > '9' || *end != '\0' ||
			    t == 0 || t > 86400) {
				cli_errorf("status", "--timeout: not a number of "
				           "seconds (1 to 86400): %s", optarg);
				return usage_exit;
			}
			timeout = (unsigned)t;
			break;
		}
		default:
			cmd_status_usage(stderr);
			return usage_exit;
		}
	}
	if (json && nagios) {
		cli_errorf("status", "--json and --nagios: give one");
		return usage_exit;
	}
	if (ripath != NULL && o.master_command != NULL) {
		cli_errorf("status", "-d and --master-command both say what runs "
		           "on the master: give one");
		return usage_exit;
	}
	argc -= optind;
	argv += optind;
	if (argc != 1 && argc != 2) {
		cli_errorf("status", "expected REPLICA [[USER@]HOST:]MASTER, got "
		           "%d argument%s", argc, argc == 1 ? "" : "s");
		cmd_status_usage(stderr);
		return usage_exit;
	}
	cli_verbosity = verbose ? 2 : 0;
	v.replica = argv[0];
	v.now = status_wall();
	ds_error_clear(&err);
	rc = ds_replica_local_status(v.replica, &v.loc, &err);
	if (rc != DS_OK) {
		if (nagios) {
			printf("DS_REPLICA UNKNOWN - %s\n", err.msg);
			return NAGIOS_UNKNOWN;
		}
		return cli_fail("status", &err);
	}
	if (argc == 2) {
		ssize_t n;

		signal(SIGPIPE, SIG_IGN);
		v.master_name = argv[1];
		src = strdup(argv[1]);
		if (src == NULL) {
			cli_errorf("status", "out of memory");
			return nagios ? NAGIOS_UNKNOWN : DS_EXIT_IO;
		}
		if (cli_master_parse(src, &o) != 0) {
			cli_errorf("status", "bad master \"%s\": expected "
			           "[USER@]HOST:DIR or DIR", argv[1]);
			free(src);
			return usage_exit;
		}
		n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n <= 0) {
			cli_errorf("status", "cannot find this program's path");
			free(src);
			return nagios ? NAGIOS_UNKNOWN : DS_EXIT_IO;
		}
		self[n] = '\0';
		if (ripath != NULL)
			snprintf(remote, sizeof(remote), "%s/ds", ripath);
		else
			snprintf(remote, sizeof(remote), "%s", self);
		o.remote_program = remote;
		o.local_program = self;
		o.verbosity = verbose ? 2 : 0;
		o.log = cli_log;
		o.log_ctx = "status";
		o.read_timeout = timeout;
		o.deadline = timeout;
		ds_error_clear(&v.merr);
		rc = ds_replica_master_status(&o, v.loc.identity, v.loc.tid,
		                              &v.ms, &v.merr);
		if (rc == DS_OK) {
			v.master_known = 1;
		} else {
			v.merr_exit = cli_exit_for(rc, v.merr.sys_errno);
			/* a master that cannot tell (the original replica.py,
			 * an older ds) is not a failure of this command */
			if (strstr(v.merr.msg, "does not answer status "
			           "requests") != NULL)
				v.merr_exit = DS_EXIT_OK;
		}
	}
	status_compute(&v);
	rc = DS_EXIT_OK;
	if (prom != NULL)
		rc = status_write_prometheus(&v, prom);
	if (nagios) {
		int state = status_nagios(&v, warn, crit);

		free(src);
		return rc != DS_EXIT_OK && state < NAGIOS_UNKNOWN ?
		       NAGIOS_UNKNOWN : state;
	}
	if (json) {
		if (status_print_json(&v) != 0) {
			cli_errorf("status", "writing the JSON failed");
			rc = DS_EXIT_IO;
		}
	} else if (prom == NULL) {
		/* --prometheus alone (from cron, a timer) prints nothing */
		status_print_text(&v);
	}
	free(src);
	if (v.master_name != NULL && !v.master_known && v.merr_exit != 0) {
		cli_errorf("status", "the master: %s", v.merr.msg);
		if (rc == DS_EXIT_OK)
			rc = v.merr_exit;
	}
	return rc;
}
