/*
 * fuzz_archive.c - the replica side's checking of an increment
 * (recv_stream: arbitrary bytes as the master's ustar stream) and, for
 * the streams it accepts, applying them (apply_increment,
 * apply_init) to a scratch copy of a fixture replica.
 *
 * Input: one control byte, then the stream.
 *   bits 0-1  the replica the stream is for: bushy-replica-old,
 *             flat-replica-old (the recorded responses fit these),
 *             bushy-master, flat-master (an empty increment fits these);
 *   bit 2     an init stream (`replica init 0`) instead of an increment;
 *   bits 3-5  how the stream is cut into reads (1 byte .. 64 KiB), so
 *             that block and member boundaries fall anywhere;
 *   bit 6     the replica promises md5s ([md5policy] write: 1) and so
 *             refuses files without one (increments only: an init
 *             stream takes the policy from its own config/settings).
 * The replica's x.oid (from the fixture) is what the checker holds the
 * master's x.oid to.
 *
 * Invariants checked:
 *  - the spool holds exactly the bytes read (a prefix of the stream on a
 *    refusal, the whole stream when accepted);
 *  - a refusal is DS_EPROTO (DS_EREFUSED when x.serial is older than the
 *    replica's or x.oid lower, DS_ENOMEM) with a message; it never
 *    touches the replica (recv_stream is only given the spool);
 *  - an accepted stream ends with the two zero blocks that end a ustar
 *    archive (DESIGN.md section 3): one cut at a member boundary is a
 *    truncated stream;
 *  - an accepted increment: the summary counts the whole stream, its new
 *    tid is not older than the replica's, and applying it to a copy of
 *    the replica gives a storage whose x.serial is that tid and that
 *    ds_check finds no problem in; applying it a second time (a crash
 *    after the commit point) changes nothing; when it brings the replica
 *    to a fixture master's tid with the recorded response,
 *    ds_check_compare proves the replica equals that master (a mutated
 *    stream may carry records without md5, which nothing can check);
 *  - an accepted increment that sends x.oid sends one not lower than the
 *    replica's, and the replica's x.oid after apply is that one (oids
 *    only grow; ds_check above also proves no oid is above it); with
 *    md5s promised, it counted no file without md5;
 *  - every revision of an accepted stream has an undo_from (bytes
 *    16..23, outside the md5) that is 0 or earlier than its serial;
 *  - an accepted init stream: applied into an empty home it gives a
 *    storage with the summary's identity and layout that ds_check
 *    accepts.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "helper.h"
#include "apply.h"
#include "replica_internal.h"

static const char *const replicas[4] = {
	"bushy-replica-old", "flat-replica-old", "bushy-master", "flat-master",
};
static const size_t chunks[8] = {65536, 1, 7, 511, 512, 4096, 7001, 10240};

struct memrd {
	const unsigned char *p;
	size_t len, pos, chunk;
};

static ssize_t
archive_memrd(void *ctx, void *buf, size_t len, ds_error *err)
{
	struct memrd *r = ctx;
	size_t n = r->len - r->pos;

	(void)err;
	if (n > len)
		n = len;
	if (n > r->chunk)
		n = r->chunk;
	memcpy(buf, r->p + r->pos, n);
	r->pos += n;
	return (ssize_t)n;
}

static int
archive_skip_locks(const char *rel)
{
	return strcmp(rel, "misc/lock") == 0 || strcmp(rel, "misc/sublock") == 0;
}

/* The 8-byte A/x.<which> of home ("serial", "oid"). */
static uint64_t
archive_x(const char *home, const char *which)
{
	ds_config cfg;
	char path[PATH_MAX + 16];
	unsigned char *x = NULL;
	size_t xlen = 0;
	uint64_t v = 0;

	FZ_CHECK(ds_config_load(home, &cfg, NULL) == DS_OK, "config of %s",
	         home);
	snprintf(path, sizeof(path), "%s/A/x%c%s", home,
	         cfg.layout == DS_LAYOUT_FLAT ? '.' : '/', which);
	FZ_CHECK(ds_file_read(path, 64, &x, &xlen, NULL) == DS_OK &&
	         xlen == 8, "read %s", path);
	v = ds_get_u64(x);
	free(x);
	return v;
}

static uint64_t
archive_serial(const char *home)
{
	return archive_x(home, "serial");
}

static void
archive_check_storage(const char *home)
{
	struct ds_check_opts co;
	struct ds_check_stats cs;
	ds_error err;
	int rc;

	memset(&co, 0, sizeof(co));
	co.no_snapshot = 1;
	ds_error_clear(&err);
	rc = ds_check(home, &co, &cs, &err);
	FZ_CHECK(rc == DS_OK && cs.problems == 0,
	         "ds check after apply: %d (%s), %lu problems", rc, err.msg,
	         cs.problems);
}

/* If tid is a fixture master's x.serial, the replica must equal it. */
static void
archive_compare(const char *home, uint64_t tid)
{
	static const char *const masters[2] = {"bushy-master", "flat-master"};
	static const uint64_t serials[2] = {0x040D44B2249CA6AAull,
	                                    0x040D44B240E24322ull};
	struct ds_check_opts co;
	struct ds_compare_stats cs;
	ds_error err;
	int rc;

	for (int i = 0; i < 2; i++) {
		if (tid != serials[i])
			continue;
		memset(&co, 0, sizeof(co));
		co.no_snapshot = 1;
		ds_error_clear(&err);
		rc = ds_check_compare(fz_fixture(masters[i]), home, &co, &cs,
		                      &err);
		FZ_CHECK(rc == DS_OK && cs.differences == 0,
		         "replica differs from %s: %d (%s)", masters[i], rc,
		         err.msg);
	}
}

static void
archive_apply_increment(const char *fixture, const char *tar,
                        const struct recv_summary *sum, int is_recorded)
{
	char home[PATH_MAX];
	unsigned char d1[16], d2[16];
	ds_error err;
	int rc;

	snprintf(home, sizeof(home), "%s/work", fz_scratch());
	fz_remove_tree(home);
	fz_copy_tree(fz_fixture(fixture), home);
	ds_error_clear(&err);
	rc = apply_increment(home, tar, &err);
	FZ_CHECK(rc == DS_OK, "apply of an accepted increment: %s", err.msg);
	FZ_CHECK(archive_serial(home) == sum->new_tid,
	         "x.serial after apply is not the increment's tid");
	FZ_CHECK(archive_x(home, "oid") == sum->new_oid,
	         "x.oid after apply is not the increment's");
	archive_check_storage(home);
	fz_tree_digest(home, archive_skip_locks, d1);
	rc = apply_increment(home, tar, &err);
	FZ_CHECK(rc == DS_OK, "second apply: %s", err.msg);
	fz_tree_digest(home, archive_skip_locks, d2);
	FZ_CHECK(memcmp(d1, d2, 16) == 0, "a second apply changed the "
	         "replica");
	/* only the master's real answer must make the replica equal to
	 * it: a master may also send records without md5 (the format
	 * allows them), whose content nothing can check */
	if (is_recorded)
		archive_compare(home, sum->new_tid);
	fz_remove_tree(home);
}

/* An increment without members ("nothing changed": 1024 zero bytes, or
 * more zeros): applied to a copy of the replica kept for this, it must
 * leave every file as it was. Cheaper than a fresh copy and a check, and
 * such inputs are the ones the fuzzer finds most often. */
static void
archive_apply_nothing(int which, const char *tar)
{
	static int made[4];
	static unsigned char before[4][16];
	char home[PATH_MAX];
	unsigned char after[16];
	ds_error err;
	int rc;

	snprintf(home, sizeof(home), "%s/unchanged-%d", fz_scratch(), which);
	if (!made[which]) {
		fz_copy_tree(fz_fixture(replicas[which]), home);
		fz_tree_digest(home, archive_skip_locks, before[which]);
		made[which] = 1;
	}
	ds_error_clear(&err);
	rc = apply_increment(home, tar, &err);
	FZ_CHECK(rc == DS_OK, "apply of an empty increment: %s", err.msg);
	fz_tree_digest(home, archive_skip_locks, after);
	FZ_CHECK(memcmp(after, before[which], 16) == 0,
	         "an increment without members changed the replica");
}

static void
apply_init_stream(const char *tar, const struct recv_summary *sum)
{
	static const char *const subdirs[] = {"A", "B", "journal", "misc",
	                                      "config"};
	char home[PATH_MAX], p[PATH_MAX + 16];
	ds_config cfg;
	ds_error err;
	int rc;

	FZ_CHECK(sum->layout_known, "init accepted without a layout");
	snprintf(home, sizeof(home), "%s/work", fz_scratch());
	fz_remove_tree(home);
	if (mkdir(home, 0755) != 0)
		abort();
	for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", home, subdirs[i]);
		if (mkdir(p, 0755) != 0)
			abort();
	}
	ds_error_clear(&err);
	rc = apply_init(home, tar, sum->layout, &err);
	FZ_CHECK(rc == DS_OK, "apply of an accepted init stream: %s", err.msg);
	rc = ds_config_load(home, &cfg, &err);
	FZ_CHECK(rc == DS_OK, "init gave an unusable config: %s", err.msg);
	FZ_CHECK(strcmp(cfg.identity, sum->identity) == 0 &&
	         cfg.layout == sum->layout, "identity or layout");
	FZ_CHECK(archive_serial(home) == sum->new_tid, "x.serial after init");
	archive_check_storage(home);
	archive_compare(home, sum->new_tid);
	fz_remove_tree(home);
}

static uint64_t bases[4];
static uint64_t base_oids[4];       /* the fixture replicas' x.oid */
/* md5 of the recorded master responses for replicas 0 and 1 */
static unsigned char recorded[2][16];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const pairs[2] = {"bushy-basic", "flat-basic"};

	(void)argc;
	(void)argv;
	for (int i = 0; i < 4; i++) {
		bases[i] = archive_serial(fz_fixture(replicas[i]));
		base_oids[i] = archive_x(fz_fixture(replicas[i]), "oid");
	}
	for (int i = 0; i < 2; i++) {
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

/*
 * Every object revision an accepted stream carries has an undo_from
 * (bytes 16..23, outside the md5) that is 0 or earlier than its own
 * serial: an undo copies an earlier revision's data. Every fixture
 * agrees. The members are read back with libarchive, their names mapped
 * through every layout.
 */
static void
archive_check_undo_from(const unsigned char *p, size_t len)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	unsigned char hdr[DS_OBJ_HEADER];

	if (a == NULL)
		abort();
	archive_read_support_format_tar(a);
	if (archive_read_open_memory(a, p, len) != ARCHIVE_OK)
		abort();
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		const char *path = archive_entry_pathname(e);
		char name[DS_NAME_MAX];
		int mapped = 0;

		if (path == NULL || strncmp(path, "A/", 2) != 0)
			continue;
		for (int l = 0; l < 4 && !mapped; l++)
			mapped = ds_layout_path_to_name((ds_layout)l, path + 2,
			                                name, sizeof(name),
			                                NULL) == DS_OK;
		if (!mapped || name[0] != 'o' || strlen(name) != 34)
			continue;
		if (archive_read_data(a, hdr, sizeof(hdr)) !=
		    (la_ssize_t)sizeof(hdr))
			continue;
		FZ_CHECK(ds_get_u64(hdr + 16) == 0 ||
		         ds_get_u64(hdr + 16) < ds_get_u64(hdr + 64),
		         "accepted revision %s whose undo_from %016llX is not "
		         "earlier than its serial", path,
		         (unsigned long long)ds_get_u64(hdr + 16));
	}
	archive_read_free(a);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char zero[1024];
	struct recv_expect exp;
	struct recv_summary sum;
	struct memrd r;
	unsigned char *spool;
	char tar[PATH_MAX];
	struct stat st;
	ds_error err;
	int fd, rc, which, init, read_failed = 0;

	if (size < 1)
		return 0;
	which = data[0] & 3;
	init = (data[0] >> 2) & 1;
	r.p = data + 1;
	r.len = size - 1;
	r.pos = 0;
	r.chunk = chunks[(data[0] >> 3) & 7];

	fd = memfd_create("fuzz-archive-spool", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	memset(&exp, 0, sizeof(exp));
	exp.init = init;
	exp.base_tid = init ? 0 : bases[which];
	exp.base_oid = init ? 0 : base_oids[which];
	exp.md5_required = (data[0] >> 6) & 1;
	memset(&sum, 0, sizeof(sum));
	ds_error_clear(&err);
	rc = recv_stream(archive_memrd, &r, fd, "fuzz-spool", &exp, &sum,
	                     &read_failed, &err);
	FZ_CHECK(!read_failed, "read_failed set without a read error");

	/* the spool is what was read, byte for byte */
	if (fstat(fd, &st) != 0)
		abort();
	FZ_CHECK((size_t)st.st_size <= r.pos, "spool has %lld bytes, %zu read",
	         (long long)st.st_size, r.pos);
	spool = malloc((size_t)st.st_size + 1);
	if (spool == NULL)
		abort();
	if (pread(fd, spool, (size_t)st.st_size, 0) != st.st_size)
		abort();
	FZ_CHECK(memcmp(spool, r.p, (size_t)st.st_size) == 0,
	         "spool is not the stream");
	free(spool);

	if (rc != DS_OK) {
		fz_check_error(rc, &err, "recv_stream");
		/* DS_EREFUSED: an x.serial older than the replica's, on
		 * purpose (the master's answer says the replica is newer),
		 * or an x.oid lower than the replica's */
		FZ_CHECK(rc == DS_EPROTO || rc == DS_ENOMEM ||
		         (rc == DS_EREFUSED &&
		          (strstr(err.msg, "newer") != NULL ||
		           strstr(err.msg, "is lower than the replica's") !=
		           NULL)),
		         "status %d: %s", rc, err.msg);
		if (getenv("DS_FUZZ_VERBOSE") != NULL)
			fprintf(stderr, "archive: refused: %s\n", err.msg);
		close(fd);
		return 0;
	}
	if (getenv("DS_FUZZ_VERBOSE") != NULL)
		fprintf(stderr, "archive: accepted %lu members, %lu txns\n",
		        sum.members, sum.transactions);
	FZ_CHECK((size_t)st.st_size == r.len && sum.bytes == r.len,
	         "accepted, but spooled %lld and counted %llu of %zu bytes",
	         (long long)st.st_size, (unsigned long long)sum.bytes, r.len);
	/* DESIGN.md 3: the stream ends with two zero blocks (a stream cut
	 * at a member boundary is truncated, not complete) */
	FZ_CHECK(r.len >= 1024 && memcmp(r.p + r.len - 1024, zero, 1024) == 0,
	         "accepted a stream of %zu bytes that does not end with the "
	         "two zero blocks of the end of the archive", r.len);
	FZ_CHECK(init || sum.new_tid >= exp.base_tid, "new tid is older");
	FZ_CHECK(init || sum.transactions > 0 || sum.new_tid == exp.base_tid,
	         "no transactions but x.serial moved");
	FZ_CHECK(init || !sum.have_oid || sum.new_oid >= exp.base_oid,
	         "accepted x.oid %016llX below the replica's %016llX",
	         (unsigned long long)sum.new_oid,
	         (unsigned long long)exp.base_oid);
	FZ_CHECK(init || sum.members == 0 || sum.have_oid,
	         "accepted an increment without x.oid");
	FZ_CHECK(init || !exp.md5_required ||
	         (sum.revisions_no_md5 == 0 && sum.transactions_no_md5 == 0),
	         "md5s promised, but %lu revisions and %lu transactions "
	         "without md5 accepted", sum.revisions_no_md5,
	         sum.transactions_no_md5);

	archive_check_undo_from(r.p, r.len);

	/* apply what was accepted, from a file as the replica does */
	snprintf(tar, sizeof(tar), "%s/incoming.tar", fz_scratch());
	{
		unsigned char *copy = malloc(r.len + 1);
		if (copy == NULL)
			abort();
		if (pread(fd, copy, r.len, 0) != (ssize_t)r.len)
			abort();
		fz_write_file(tar, copy, r.len);
		free(copy);
	}
	close(fd);
	if (init)
		apply_init_stream(tar, &sum);
	else if (sum.members == 0)
		archive_apply_nothing(which, tar);
	else {
		unsigned char md[16];
		ds_md5(r.p, r.len, md);
		archive_apply_increment(replicas[which], tar, &sum,
		                        which < 2 &&
		                        memcmp(md, recorded[which], 16) == 0);
	}
	unlink(tar);
	return 0;
}
