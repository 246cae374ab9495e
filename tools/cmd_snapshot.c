/* cmd_snapshot.c - `ds snapshot [--storage DIR] COMMAND...`: run COMMAND
 * while the storage is held in snapshot mode (the original snapshot.py). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

void
cmd_snapshot_usage(FILE *out)
{
	fprintf(out,
	        "usage: ds snapshot [-q] [-v] [-t SECONDS] [-s SECONDS] "
	        "[--snapshot-conf FILE]\n"
	        "                   --storage DIR [COMMAND [ARGS...]]\n"
	        "       ds snapshot [options] DIR CONF COMMAND [ARGS...]   "
	        "(the pre-1.1.10 form)\n\n"
	        "Force the storage into snapshot mode (A/ is not written while "
	        "it lasts), lock\nit there, run COMMAND with SNAPSHOT_VERSION=2, "
	        "SNAPSHOT_DIRECTORY and\nSNAPSHOT_TIMESTAMP in its environment, "
	        "release, and exit with COMMAND's status\n(non-zero if it was not "
	        "run; 128+N if killed by signal N).\n\n"
	        "The lines of the configuration file (default "
	        "DIR/config/snapshot.conf) are\ntried in order:\n"
	        "  http URL ACCESS  XML-RPC enterSnapshot/leaveSnapshot on a "
	        "running server;\n"
	        "                   ACCESS (relative to the file) holds "
	        "user:password\n"
	        "  control [PATH]   ask the process holding the storage open "
	        "through its control\n"
	        "                   socket (PATH relative to DIR, default "
	        "misc/control)\n"
	        "  direct           open the files directly (only when nothing "
	        "else uses them)\n"
	        "  nodirect         do not try direct access as the last "
	        "resort\n"
	        "Other lines are warned about and skipped. Without the file: "
	        "control, then direct.\n\n"
	        "Options:\n"
	        "  --storage DIR         the storage\n"
	        "  --snapshot-conf FILE  another configuration file (\"-\": the "
	        "default)\n"
	        "  -t SECONDS            retry that long while the storage is "
	        "busy (default 0)\n"
	        "  -s SECONDS            sleep between retries (default 10)\n"
	        "  -q, --quiet           no messages on stderr\n"
	        "  -v, --verbose         more messages\n"
	        "  -h, --help            show this help\n\n"
	        "Exit: COMMAND's status; 3 when the storage is busy (in use, or "
	        "held by another\nsnapshot); 1 or 2 on other errors.\n");
}

static volatile sig_atomic_t snapshot_child;

static void
snapshot_forward(int sig)
{
	if (snapshot_child > 0)
		kill(snapshot_child, sig);
}

static int
snapshot_number(const char *s, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0' || v > 86400UL * 366)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* Run argv with the snapshot environment; returns its exit status. */
static int
snapshot_run(char **argv)
{
	struct sigaction sa, old[4];
	static const int sigs[4] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
	int status = 0;
	pid_t pid, w;

	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		cli_errorf("snapshot", "fork: %s", strerror(errno));
		return 127;
	}
	if (pid == 0) {
		execvp(argv[0], argv);
		fprintf(stderr, "ds snapshot: cannot run %s: %s\n", argv[0],
		        strerror(errno));
		_exit(127);
	}
	/* A signal meant for the command must not kill us before we release
	 * the snapshot: pass it on and keep waiting. */
	snapshot_child = pid;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = snapshot_forward;
	sigemptyset(&sa.sa_mask);
	for (int i = 0; i < 4; i++)
		sigaction(sigs[i], &sa, &old[i]);
	do
		w = waitpid(pid, &status, 0);
	while (w < 0 && errno == EINTR);
	for (int i = 0; i < 4; i++)
		sigaction(sigs[i], &old[i], NULL);
	snapshot_child = 0;
	if (w < 0) {
		cli_errorf("snapshot", "waitpid: %s", strerror(errno));
		return 127;
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 127;
}

int
cmd_snapshot(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{"quiet", no_argument, NULL, 'q'},
		{"verbose", no_argument, NULL, 'v'},
		{"storage", required_argument, NULL, 'S'},
		{"snapshot-conf", required_argument, NULL, 'C'},
		{NULL, 0, NULL, 0},
	};
	struct ds_snapshot_opts sopts = {0};
	ds_snapshot *snap = NULL;
	const char *storage = NULL;
	char ts[32];
	ds_error err;
	int c, rc, status = 0;

	optind = 1;
	/* '+': options end at COMMAND, whose own options are its business */
	while ((c = getopt_long(argc, argv, "+hqvt:s:", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 'h':
			cmd_snapshot_usage(stdout);
			return DS_EXIT_OK;
		case 'q':
			cli_verbosity = 0;
			break;
		case 'v':
			cli_verbosity++;
			break;
		case 'S':
			storage = optarg;
			break;
		case 'C':
			sopts.conf_path = optarg;
			break;
		case 't':
		case 's':
			if (snapshot_number(optarg, c == 't' ? &sopts.timeout :
			                    &sopts.sleep) != 0) {
				cli_errorf("snapshot", "-%c wants a number of "
				           "seconds, not '%s'", c, optarg);
				return DS_EXIT_USAGE;
			}
			if (c == 's' && sopts.sleep == 0)
				sopts.sleep = 1;
			break;
		default:
			cmd_snapshot_usage(stderr);
			return DS_EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (storage == NULL && getenv("SNAPSHOT_VERSION") == NULL) {
		/* the pre-1.1.10 command line: DIR CONF COMMAND... */
		if (argc < 3) {
			cli_errorf("snapshot", "give --storage DIR (or DIR CONF "
			           "COMMAND...)");
			cmd_snapshot_usage(stderr);
			return DS_EXIT_USAGE;
		}
		storage = argv[0];
		sopts.conf_path = argv[1];
		argc -= 2;
		argv += 2;
	}

	sopts.log = cli_log;
	sopts.log_ctx = "snapshot";
	ds_error_clear(&err);
	if ((rc = ds_snapshot_acquire(storage, &sopts, &snap, &err)) != DS_OK)
		return cli_fail("snapshot", &err);
	snprintf(ts, sizeof(ts), "%lld", ds_snapshot_timestamp(snap));
	if (setenv("SNAPSHOT_VERSION", "2", 1) != 0 ||
	    setenv("SNAPSHOT_DIRECTORY", ds_snapshot_dir(snap), 1) != 0 ||
	    setenv("SNAPSHOT_TIMESTAMP", ts, 1) != 0) {
		cli_errorf("snapshot", "setenv: %s", strerror(errno));
		status = DS_EXIT_IO;
	} else if (argc > 0) {
		status = snapshot_run(argv);
	}
	ds_error_clear(&err);
	if (ds_snapshot_release(snap, &err) != DS_OK) {
		cli_fail("snapshot", &err);
		if (status == 0)
			status = DS_EXIT_IO;
	}
	return status;
}
