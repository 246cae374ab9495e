/* cmd_backup.c - `ds backup [--storage DIR] [--dir BACKUPS] [--prefix NAME]
 * full | inc SINCE ...`: full and incremental backups as the original
 * backup.py makes them (ds_backup). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

void
cmd_backup_usage(FILE *out)
{
	fprintf(out,
	        "usage: ds backup [-q] [-v] [--storage DIR] [--dir BACKUPS] "
	        "[--prefix NAME]\n"
	        "                 [--zstd] [-t SECONDS] [-s SECONDS] "
	        "[--snapshot-conf FILE]\n"
	        "                 COMMAND...\n\n"
	        "Back up a Full storage as the original backup.py does, inside "
	        "one snapshot\n(a live storage too: its control socket or "
	        "config/snapshot.conf). Commands,\nrun in order with one "
	        "sequence number N (the index's largest + 1):\n"
	        "  full           BACKUPS/PREFIX-N.tgz: config/ and every file "
	        "of A/\n"
	        "  inc SINCE      BACKUPS/PREFIX-M-to-N.tgz: the files written "
	        "since backup M,\n"
	        "                 the last one made at or before SINCE (unix "
	        "seconds, or\n"
	        "                 anything `date --date` reads: \"36 hours "
	        "ago\"); skipped when\n"
	        "                 nothing changed since M\n"
	        "  prefix NAME    the file name prefix for the commands after "
	        "it\n\n"
	        "BACKUPS/tindex, the index, gets the line \"N TIMESTAMP TID\" "
	        "once every archive\nof the run is complete. Restore with ds "
	        "restore, or by hand: tar xzf the full\nbackup, then each "
	        "incremental one in sequence order, in an empty directory.\n\n"
	        "Options:\n"
	        "  --storage DIR         the storage (default: "
	        "$SNAPSHOT_DIRECTORY under ds snapshot)\n"
	        "  --dir BACKUPS         where backups go (default: "
	        "DIR/backups, which must exist)\n"
	        "  --prefix NAME         file name prefix (default: backup)\n"
	        "  --zstd                zstd instead of gzip: PREFIX-N.tar.zst\n"
	        "  -t SECONDS            retry a busy storage this long\n"
	        "  -s SECONDS            sleep between retries (default 10)\n"
	        "  --snapshot-conf FILE  another snapshot configuration file\n"
	        "  -q, --quiet           no messages unless it fails\n"
	        "  -v, --verbose         more messages\n"
	        "  -h, --help            show this help\n\n"
	        "Exit status: 0 backed up (or nothing needed); 1 refused "
	        "(not a storage, no\nprevious backup for inc, packed since "
	        "it); 2 usage; 3 storage busy; 4 system\nerror. A failed run "
	        "leaves no new archive and the index as it was.\n");
}

/* Unix seconds for SINCE: an integer, or what GNU date makes of it (run
 * without a shell, so SINCE is never interpreted by one). */
static int
backup_parse_since(const char *s, long long *out)
{
	char buf[64], *end;
	int fds[2], status;
	ssize_t n;
	size_t len = 0;
	pid_t pid;

	errno = 0;
	*out = strtoll(s, &end, 10);
	if (*s != '\0' && *end == '\0' && errno == 0)
		return 0;
	if (pipe(fds) != 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execlp("date", "date", "--date", s, "+%s", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	while (len < sizeof(buf) - 1 &&
	       ((n = read(fds[0], buf + len, sizeof(buf) - 1 - len)) > 0 ||
	        (n < 0 && errno == EINTR)))
		if (n > 0)
			len += (size_t)n;
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -1;
	buf[len] = '\0';
	if (len > 0 && buf[len - 1] == '\n')
		buf[--len] = '\0';
	errno = 0;
	*out = strtoll(buf, &end, 10);
	return (len == 0 || *end != '\0' || errno != 0) ? -1 : 0;
}

static int
backup_number(const char *s, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v > 100000000)
		return -1;
	*out = (unsigned)v;
	return 0;
}

int
cmd_backup(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{"quiet", no_argument, NULL, 'q'},
		{"verbose", no_argument, NULL, 'v'},
		{"storage", required_argument, NULL, 'S'},
		{"dir", required_argument, NULL, 'D'},
		{"prefix", required_argument, NULL, 'P'},
		{"zstd", no_argument, NULL, 'Z'},
		{"snapshot-conf", required_argument, NULL, 'C'},
		{NULL, 0, NULL, 0},
	};
	struct ds_snapshot_opts sopts = {0};
	struct ds_backup_opts bopts = {0};
	struct ds_backup_stats st;
	struct ds_backup_cmd *cmds = NULL;
	const char *storage = NULL, *prefix = NULL;
	size_t ncmds = 0;
	ds_error err;
	int c, rc, ret = DS_EXIT_USAGE;

	optind = 1;
	while ((c = getopt_long(argc, argv, "hqvt:s:", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			cmd_backup_usage(stdout);
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
		case 'D':
			bopts.dir = optarg;
			break;
		case 'P':
			prefix = optarg;
			break;
		case 'Z':
			bopts.compress = DS_BACKUP_ZSTD;
			break;
		case 'C':
			sopts.conf_path = optarg;
			break;
		case 't':
		case 's':
			if (backup_number(optarg, c == 't' ? &sopts.timeout :
			                  &sopts.sleep) != 0) {
				cli_errorf("backup", "-%c: '%s' is not a number of "
				           "seconds", c, optarg);
				return DS_EXIT_USAGE;
			}
			if (c == 's' && sopts.sleep == 0)
				sopts.sleep = 1;
			break;
		default:
			cmd_backup_usage(stderr);
			return DS_EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0) {
		cli_errorf("backup", "no command: full, inc SINCE, prefix NAME");
		cmd_backup_usage(stderr);
		return DS_EXIT_USAGE;
	}
	cmds = calloc((size_t)argc, sizeof(*cmds));
	if (cmds == NULL) {
		cli_errorf("backup", "out of memory");
		return DS_EXIT_IO;
	}
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "prefix") == 0 && i + 1 < argc) {
			prefix = argv[++i];
		} else if (strcmp(argv[i], "full") == 0) {
			cmds[ncmds].op = DS_BACKUP_FULL;
			cmds[ncmds++].prefix = prefix;
		} else if (strcmp(argv[i], "inc") == 0 && i + 1 < argc) {
			if (backup_parse_since(argv[i + 1],
			                       &cmds[ncmds].since) != 0) {
				cli_errorf("backup", "inc: '%s' is neither unix "
				           "seconds nor a time date --date reads",
				           argv[i + 1]);
				goto out;
			}
			i++;
			cmds[ncmds].op = DS_BACKUP_INC;
			cmds[ncmds++].prefix = prefix;
		} else {
			cli_errorf("backup", "ERROR: unknown command '%s'%s",
			           argv[i], strcmp(argv[i], "inc") == 0 ||
			           strcmp(argv[i], "prefix") == 0 ?
			           " (it needs an argument)" : "");
			cmd_backup_usage(stderr);
			goto out;
		}
	}
	if (ncmds == 0) {
		cli_errorf("backup", "no backup asked for: give full or inc "
		           "SINCE");
		goto out;
	}
	if (storage == NULL && getenv("SNAPSHOT_VERSION") == NULL) {
		cli_errorf("backup", "give --storage DIR (or run under ds "
		           "snapshot)");
		goto out;
	}
	ds_error_clear(&err);
	sopts.log = cli_log;
	sopts.log_ctx = "backup";
	bopts.snapshot = &sopts;
	bopts.log = cli_log;
	bopts.log_ctx = "backup";
	rc = ds_backup(storage, cmds, ncmds, &bopts, &st, &err);
	if (rc != DS_OK) {
		ret = cli_fail("backup", &err);
		goto out;
	}
	if (cli_verbosity >= 2) {
		char tid[17];
		ds_id_format(st.tid, tid);
		fprintf(stderr, "ds backup: sequence %lu, transaction %s: "
		        "%lu archive%s, %lu members, %lu files read (%llu "
		        "bytes), %llu bytes written\n", st.seq, tid,
		        st.archives, st.archives == 1 ? "" : "s", st.members,
		        st.files_read, (unsigned long long)st.bytes_read,
		        (unsigned long long)st.bytes_written);
	}
	ret = DS_EXIT_OK;
out:
	free(cmds);
	return ret;
}
