/*
 * fuzz_replica_pull.c - the whole replica side, end to end: ds_replica_pull
 * on a scratch copy of a fixture replica, talking (in local mode) to a
 * fake master: a shell script that reads the request and answers with the
 * fuzz input, then exits with the status the input asks for.
 *
 * Input: one control byte, then the master's answer.
 *   bits 0-1  the replica: bushy-replica-old, flat-replica-old,
 *             bushy-master, flat-master (as in fuzz_archive);
 *   bits 6-7  the fake master's exit status: 0, 0, 3 (busy), 1 (error).
 *
 * Invariants checked:
 *  - a failed pull is DS_EPROTO, DS_EREFUSED or DS_EBUSY with a message,
 *    and leaves the replica exactly as it was (every file but the lock
 *    files, which take the holder's pid, and the run record
 *    misc/replica.state), with no spool
 *    (misc/.replica.incoming) or journal/replica.tar left behind;
 *  - a master that exits non-zero never gets its answer applied, valid or
 *    not;
 *  - a successful pull moved x.serial to the new tid it reports, the
 *    replica passes ds_check, and when the answer was the recorded
 *    response ds_check_compare proves it equals that master.
 * The replica is only copied afresh after a successful pull.
 */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helper.h"

static const char *const replicas[4] = {
	"bushy-replica-old", "flat-replica-old", "bushy-master", "flat-master",
};
static const int statuses[4] = {0, 0, 3, 1};

static char work[4][PATH_MAX], answer[PATH_MAX], status_path[PATH_MAX + 8];
static char script[PATH_MAX];
static unsigned char digest[4][16];
/* md5 of the recorded master responses for replicas 0 and 1 */
static unsigned char recorded[2][16];

static int
pull_skip(const char *rel)
{
	/* misc/replica.state is the run record: every run, failed or not,
	 * records itself there for ds status */
	return strcmp(rel, "misc/lock") == 0 ||
	       strcmp(rel, "misc/sublock") == 0 ||
	       strcmp(rel, "misc/replica.state") == 0;
}

static int
pull_skip_previous(const char *rel)
{
	return pull_skip(rel) || strcmp(rel, "misc/replica.previous") == 0;
}

static void
pull_fresh(int i)
{
	fz_remove_tree(work[i]);
	fz_copy_tree(fz_fixture(replicas[i]), work[i]);
	fz_tree_digest(work[i], pull_skip, digest[i]);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char text[] =
		"#!/bin/sh\n"
		"# fake master for fuzz_replica_pull: argv ends with DIR, the\n"
		"# answer file; DIR.status holds the exit status\n"
		"for a; do f=$a; done\n"
		"cat > /dev/null\n"
		"cat \"$f\" || exit 99\n"
		"exit $(cat \"$f.status\")\n";

	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	snprintf(script, sizeof(script), "%s/fake-master", fz_scratch());
	fz_write_file(script, text, strlen(text));
	if (chmod(script, 0755) != 0)
		abort();
	snprintf(answer, sizeof(answer), "%s/answer", fz_scratch());
	snprintf(status_path, sizeof(status_path), "%s.status", answer);
	for (int i = 0; i < 4; i++) {
		snprintf(work[i], sizeof(work[i]), "%s/replica-%d", fz_scratch(),
		         i);
		pull_fresh(i);
	}
	for (int i = 0; i < 2; i++) {
		static const char *const pairs[2] = {"bushy-basic",
		                                     "flat-basic"};
		char gz[PATH_MAX], tar[PATH_MAX];
		unsigned char *buf = NULL;
		size_t len = 0;

		snprintf(gz, sizeof(gz), "%s/%s.response.tar.gz",
		         fz_fixture_src(), pairs[i]);
		snprintf(tar, sizeof(tar), "%s/%s.tar", fz_scratch(), pairs[i]);
		fz_gunzip(gz, tar);
		if (ds_file_read(tar, 0, &buf, &len, NULL) != DS_OK)
			abort();
		ds_md5(buf, len, recorded[i]);
		free(buf);
		unlink(tar);
	}
	return 0;
}

static uint64_t
pull_serial(const char *home)
{
	ds_config cfg;
	char path[PATH_MAX + 16];
	unsigned char *x = NULL;
	size_t xlen = 0;
	uint64_t v;

	FZ_CHECK(ds_config_load(home, &cfg, NULL) == DS_OK, "config");
	snprintf(path, sizeof(path), "%s/A/x%cserial", home,
	         cfg.layout == DS_LAYOUT_FLAT ? '.' : '/');
	FZ_CHECK(ds_file_read(path, 64, &x, &xlen, NULL) == DS_OK &&
	         xlen == 8, "read %s", path);
	v = ds_get_u64(x);
	free(x);
	return v;
}

static void
pull_absent(const char *home, const char *rel)
{
	char path[PATH_MAX + 64];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", home, rel);
	FZ_CHECK(lstat(path, &st) != 0, "%s left behind", rel);
}

static void
pull_check_success(int i, const struct ds_replica_stats *stats,
                   int is_recorded)
{
	static const char *const masters[2] = {"bushy-master", "flat-master"};
	static const uint64_t serials[2] = {0x040D44B2249CA6AAull,
	                                    0x040D44B240E24322ull};
	struct ds_check_opts co;
	struct ds_check_stats cs;
	struct ds_compare_stats cmp;
	ds_error err;
	int rc;

	FZ_CHECK(pull_serial(work[i]) == stats->new_tid, "x.serial is not "
	         "the reported new tid");
	pull_absent(work[i], "misc/.replica.incoming");
	pull_absent(work[i], "journal/replica.tar");
	memset(&co, 0, sizeof(co));
	co.no_snapshot = 1;
	ds_error_clear(&err);
	rc = ds_check(work[i], &co, &cs, &err);
	FZ_CHECK(rc == DS_OK && cs.problems == 0, "ds check after a pull: %s",
	         err.msg);
	/* only the master's real answer must make the replica equal to it:
	 * a mutated answer may carry records without md5 (the format
	 * allows them) or other undo_from bytes, which nothing checks */
	for (int m = 0; m < 2 && is_recorded; m++) {
		if (stats->new_tid != serials[m])
			continue;
		rc = ds_check_compare(fz_fixture(masters[m]), work[i], &co,
		                      &cmp, &err);
		FZ_CHECK(rc == DS_OK && cmp.differences == 0,
		         "replica differs from %s: %s", masters[m], err.msg);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ds_replica_opts o;
	struct ds_replica_stats stats;
	unsigned char d[16];
	char st[16];
	ds_error err;
	int i, status, rc;

	if (size < 1 || size > 4 * 1024 * 1024)
		return 0;
	i = data[0] & 3;
	status = statuses[(data[0] >> 6) & 3];
	fz_write_file(answer, data + 1, size - 1);
	snprintf(st, sizeof(st), "%d\n", status);
	fz_write_file(status_path, st, strlen(st));

	memset(&o, 0, sizeof(o));
	o.master_dir = answer;
	o.local_program = script;
	o.verbosity = 0;
	o.timeout = 0;
	ds_error_clear(&err);
	rc = ds_replica_pull(work[i], &o, &stats, &err);
	if (getenv("DS_FUZZ_VERBOSE") != NULL)
		fprintf(stderr, "replica_pull %s (master exit %d): %d %s\n",
		        replicas[i], status, rc, err.msg);
	if (rc == DS_OK) {
		FZ_CHECK(status == 0, "applied the answer of a master that "
		         "exited %d", status);
		unsigned char md[16];
		ds_md5(data + 1, size - 1, md);
		pull_check_success(i, &stats, i < 2 &&
		                   memcmp(md, recorded[i], 16) == 0);
		/* nothing new (an empty increment): the replica is as it was
		 * but for misc/replica.previous; else start from a copy */
		fz_tree_digest(work[i], pull_skip_previous, d);
		if (memcmp(d, digest[i], 16) == 0) {
			char prev[PATH_MAX + 32];
			snprintf(prev, sizeof(prev), "%s/misc/replica.previous",
			         work[i]);
			unlink(prev);
		} else {
			pull_fresh(i);
		}
		return 0;
	}
	fz_check_error(rc, &err, "ds_replica_pull");
	FZ_CHECK(rc == DS_EPROTO || rc == DS_EREFUSED || rc == DS_EBUSY,
	         "status %d: %s", rc, err.msg);
	pull_absent(work[i], "misc/.replica.incoming");
	pull_absent(work[i], "journal/replica.tar");
	fz_tree_digest(work[i], pull_skip, d);
	FZ_CHECK(memcmp(d, digest[i], 16) == 0, "a failed pull (%s) changed "
	         "the replica", err.msg);
	return 0;
}
