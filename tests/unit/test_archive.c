/*
 * test_archive.c - the replica side's checking and applying of increments
 * (src/recv.c, src/apply.c): the original master's recorded responses are accepted
 * byte for byte; every kind of malformed or hostile stream is refused with
 * its own message (bad md5, truncated, garbage after the end, missing or
 * extra members, transactions that do not chain, a master older than the
 * replica, '..', absolute names, links, devices, directory entries, pax
 * headers, oversize members, names outside A/); apply_increment writes
 * exactly the master's files, again and again (idempotent), and into a
 * replica whose layout differs from the master's.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cmocka.h>
#include <archive.h>
#include <archive_entry.h>

#include "helper_engine.h"
#include "helper_fixture.h"
#include "apply.h"
#include "replica_internal.h"

/* ---- feeding a stream from memory ---- */

struct mem {
	const unsigned char *p;
	size_t len, pos, chunk;
};

static ssize_t
mem_read(void *ctx, void *buf, size_t len, ds_error *err)
{
	struct mem *m = ctx;
	size_t n = m->len - m->pos;

	(void)err;
	if (n > len)
		n = len;
	if (n > m->chunk)
		n = m->chunk;
	memcpy(buf, m->p + m->pos, n);
	m->pos += n;
	return (ssize_t)n;
}

struct got {
	int rc;
	ds_error err;
	struct recv_summary sum;
	unsigned char *spool;
	size_t spool_len;
};

/* What receive() holds the stream to besides base and init: the
 * replica's x.oid and md5 policy (zero: no x.oid floor, no md5
 * required). */
static ds_oid recv_base_oid;
static int recv_md5_required;

static void
receive(const unsigned char *buf, size_t len, ds_tid base, int init,
        struct got *g)
{
	char path[] = "/tmp/ds-test-spool-XXXXXX";
	struct recv_expect exp;
	struct mem m = {buf, len, 0, 7001};
	struct stat st;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	memset(&exp, 0, sizeof(exp));
	exp.base_tid = base;
	exp.base_oid = recv_base_oid;
	exp.md5_required = recv_md5_required;
	exp.init = init;
	ds_error_clear(&g->err);
	g->rc = recv_stream(mem_read, &m, fd, path, &exp, &g->sum, NULL,
	                        &g->err);
	assert_int_equal(fstat(fd, &st), 0);
	g->spool_len = (size_t)st.st_size;
	g->spool = malloc(g->spool_len + 1);
	assert_non_null(g->spool);
	assert_int_equal(pread(fd, g->spool, g->spool_len, 0),
	                 (ssize_t)g->spool_len);
	close(fd);
}

static void
got_free(struct got *g)
{
	free(g->spool);
	g->spool = NULL;
}

/* Expect a refusal whose message contains text. */
static void
refused(const unsigned char *buf, size_t len, ds_tid base, int status,
        const char *text)
{
	struct got g;

	receive(buf, len, base, 0, &g);
	if (g.rc != status || strstr(g.err.msg, text) == NULL)
		fail_msg("expected status %d with \"%s\", got %d: %s", status,
		         text, g.rc, g.err.msg);
	got_free(&g);
}

static unsigned char *
response(const char *pair, size_t *len)
{
	char p[4096];

	snprintf(p, sizeof(p), "%s/responses/%s.tar", fixture_dir(), pair);
	return engine_slurp(p, len);
}

static ds_tid
pair_tid(const char *pair, const char *which)
{
	json_t *j = fixture_json_load(pair);
	const char *fx = fixture_jstr(j, which);
	json_t *m = fixture_manifest_load(fx);
	ds_tid t = fixture_jid(m, "x.serial");

	json_decref(m);
	json_decref(j);
	return t;
}

/* ---- tar surgery on the recorded responses ---- */

struct member {
	size_t off;      /* header offset */
	size_t size;     /* data size */
	size_t span;     /* header + padded data */
	char name[101];
};

static size_t
members(const unsigned char *buf, size_t len, struct member *out, size_t max)
{
	size_t off = 0, n = 0;

	while (off + 512 <= len && buf[off] != '\0' && n < max) {
		struct member *m = &out[n++];
		m->off = off;
		memcpy(m->name, buf + off, 100);
		m->name[100] = '\0';
		m->size = (size_t)strtoull((const char *)buf + off + 124, NULL, 8);
		m->span = 512 + (m->size + 511) / 512 * 512;
		off += m->span;
	}
	return n;
}

/* buf without member i (or with member j's copy inserted after member i
 * when insert). *outlen gets the new length. */
static unsigned char *
tar_splice(const unsigned char *buf, size_t len, size_t i, int insert, size_t j,
       size_t *outlen)
{
	struct member ms[1024];
	size_t n = members(buf, len, ms, 1024);
	unsigned char *out;

	assert_true(i < n && j < n);
	out = malloc(len + ms[j].span);
	assert_non_null(out);
	if (insert) {
		size_t at = ms[i].off + ms[i].span;
		memcpy(out, buf, at);
		memcpy(out + at, buf + ms[j].off, ms[j].span);
		memcpy(out + at + ms[j].span, buf + at, len - at);
		*outlen = len + ms[j].span;
	} else {
		memcpy(out, buf, ms[i].off);
		memcpy(out + ms[i].off, buf + ms[i].off + ms[i].span,
		       len - ms[i].off - ms[i].span);
		*outlen = len - ms[i].span;
	}
	return out;
}

/* ---- the recorded responses are accepted ---- */

static void
check_accepted(const char *pair, const char *master, ds_layout layout)
{
	char file[128];
	json_t *rep, *m;
	unsigned char *buf;
	size_t len;
	struct got g;

	snprintf(file, sizeof(file), "%s.replication.json", pair);
	rep = fixture_json_load(file);
	m = fixture_manifest_load(master);
	buf = response(pair, &len);
	receive(buf, len, pair_tid(file, "replica_fixture"), 0, &g);
	if (g.rc != DS_OK)
		fail_msg("%s: %s", pair, g.err.msg);
	assert_int_equal(g.sum.members,
	    json_array_size(json_object_get(json_object_get(rep, "response"),
	                                    "member_names")));
	assert_int_equal(g.sum.new_tid, fixture_jid(m, "x.serial"));
	assert_int_equal(g.sum.new_oid, fixture_jid(m, "x.oid"));
	assert_int_equal(g.sum.bytes, len);
	assert_true(g.sum.layout_known);
	assert_int_equal(g.sum.layout, layout);
	/* the spool is the stream, byte for byte */
	assert_int_equal(g.spool_len, len);
	assert_memory_equal(g.spool, buf, len);
	got_free(&g);
	free(buf);
	json_decref(m);
	json_decref(rep);
}

static void
test_recorded_responses_accepted(void **state)
{
	(void)state;
	check_accepted("bushy-basic", "bushy-master", DS_LAYOUT_BUSHY);
	check_accepted("flat-basic", "flat-master", DS_LAYOUT_FLAT);
}

static void
test_empty_increment(void **state)
{
	unsigned char zero[1024] = {0};
	struct got g;

	(void)state;
	receive(zero, sizeof(zero), 0x040D44B2249CA6AAull, 0, &g);
	assert_int_equal(g.rc, DS_OK);
	assert_int_equal(g.sum.members, 0);
	assert_int_equal(g.sum.new_tid, 0x040D44B2249CA6AAull);
	got_free(&g);
	/* tar's blocking: more zero blocks are fine */
	{
		unsigned char *z = calloc(1, 10240);
		receive(z, 10240, 5, 0, &g);
		assert_int_equal(g.rc, DS_OK);
		got_free(&g);
		free(z);
	}
	/* nothing at all is not an increment */
	refused(zero, 0, 5, DS_EPROTO, "truncated");
	refused(zero, 512, 5, DS_EPROTO, "truncated");
}

/* ---- damaged streams ---- */

static void
test_damaged_streams(void **state)
{
	size_t len, n, l2;
	unsigned char *buf = response("bushy-basic", &len), *b2;
	ds_tid base = pair_tid("bushy-basic.replication.json",
	                       "replica_fixture");
	struct member ms[1024];

	(void)state;
	n = members(buf, len, ms, 1024);
	assert_int_equal(n, 297);
	assert_string_equal(ms[4].name,
	                    "A/o0/00/00/00/00/00/00/01A/040D44B2249CA6AA");

	/* a flipped byte in a revision's pickle */
	b2 = malloc(len);
	memcpy(b2, buf, len);
	b2[ms[4].off + 512 + ms[4].size - 1] ^= 0x55;
	refused(b2, len, base, DS_EPROTO, "md5 mismatch");
	/* ... in a transaction file's description */
	memcpy(b2, buf, len);
	b2[ms[2].off + 512 + 70] ^= 0x01;
	refused(b2, len, base, DS_EPROTO, "md5");
	/* an undo source (bytes 16..23, outside the md5) that is not
	 * earlier than the revision itself (fuzz finding
	 * fuzz/regressions/archive/revision-undo-from-unchecked) */
	memcpy(b2, buf, len);
	memset(b2 + ms[4].off + 512 + 16, 0xFF, 8);
	refused(b2, len, base, DS_EPROTO, "undo source");
	/* a damaged header (checksum) */
	memcpy(b2, buf, len);
	b2[ms[6].off + 10] ^= 0x01;
	refused(b2, len, base, DS_EPROTO, "member");
	free(b2);

	/* cut short: mid-member, at a member boundary, before the end
	 * marker, inside the end marker */
	refused(buf, len / 2, base, DS_EPROTO, "truncated");
	refused(buf, ms[100].off, base, DS_EPROTO, "truncated");
	refused(buf, ms[296].off + ms[296].span, base, DS_EPROTO, "truncated");
	refused(buf, ms[296].off + ms[296].span + 512, base, DS_EPROTO,
	        "truncated");

	/* garbage after the end */
	b2 = malloc(len + 512);
	memcpy(b2, buf, len);
	memset(b2 + len, 0, 512);
	memcpy(b2 + len + 100, "junk", 4);
	refused(b2, len + 512, base, DS_EPROTO, "garbage after the end");
	/* a whole tar member after the end marker */
	memcpy(b2 + len, buf, 512);
	refused(b2, len + 512, base, DS_EPROTO, "garbage after the end");
	/* not a whole number of blocks */
	memset(b2 + len, 0, 512);
	refused(b2, len + 100, base, DS_EPROTO, "512-byte blocks");
	free(b2);

	/* a member left out: the revision after a pointer */
	b2 = tar_splice(buf, len, 4, 0, 0, &l2);
	refused(b2, l2, base, DS_EPROTO, "where the increment must have");
	free(b2);
	/* a whole transaction's last member left out at the end */
	b2 = tar_splice(buf, len, 296, 0, 0, &l2);
	refused(b2, l2, base, DS_EPROTO, "is missing");
	free(b2);
	/* a member twice */
	b2 = tar_splice(buf, len, 4, 1, 4, &l2);
	refused(b2, l2, base, DS_EPROTO, "where the increment must have");
	free(b2);
	/* something extra after the last transaction */
	b2 = tar_splice(buf, len, 296, 1, 5, &l2);
	refused(b2, l2, base, DS_EPROTO, "more members after");
	free(b2);
	/* x.serial and x.oid swapped */
	{
		unsigned char *b3 = malloc(len);
		memcpy(b3, buf + ms[1].off, ms[1].span);
		memcpy(b3 + ms[1].span, buf, ms[0].span);
		memcpy(b3 + ms[0].span + ms[1].span, buf + ms[2].off,
		       len - ms[2].off);
		refused(b3, len, base, DS_EPROTO, "must have x.serial");
		free(b3);
	}

	/* transactions that do not chain back to the replica's tid */
	refused(buf, len, base + 1, DS_EPROTO, "do not chain back");
	refused(buf, len, base - 1, DS_EPROTO, "t040D44.B222699877 is missing");
	/* a replica newer than what the master sent */
	refused(buf, len, 0x7FFFFFFFFFFFFFFFull, DS_EREFUSED,
	        "newer than the master");
	free(buf);
}

/* ---- hostile archives written with libarchive ---- */

struct ent {
	const char *path;
	mode_t type;            /* AE_IFREG ... */
	const char *data;       /* regular: content */
	size_t len;
	const char *link;       /* symlink target or hard link */
	int hard;
	mode_t perm;
};

static unsigned char *
build(const struct ent *e, size_t n, int pax, size_t *outlen)
{
	struct archive *a = archive_write_new();
	struct archive_entry *en;
	size_t cap = 1 << 20, used = 0;
	unsigned char *out = malloc(cap);

	assert_non_null(out);
	if (pax)
		archive_write_set_format_pax(a);
	else
		archive_write_set_format_ustar(a);
	archive_write_set_bytes_per_block(a, 0);
	assert_int_equal(archive_write_open_memory(a, out, cap, &used),
	                 ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		en = archive_entry_new();
		archive_entry_set_pathname(en, e[i].path);
		archive_entry_set_filetype(en, e[i].type);
		archive_entry_set_perm(en, e[i].perm ? e[i].perm : 0640);
		if (e[i].type == AE_IFCHR)
			archive_entry_set_rdev(en, makedev(1, 3));
		if (e[i].link && e[i].hard)
			archive_entry_set_hardlink(en, e[i].link);
		else if (e[i].link)
			archive_entry_set_symlink(en, e[i].link);
		archive_entry_set_size(en, e[i].type == AE_IFREG && !e[i].hard ?
		                       (la_int64_t)e[i].len : 0);
		assert_int_equal(archive_write_header(a, en), ARCHIVE_OK);
		if (e[i].type == AE_IFREG && !e[i].hard && e[i].len)
			assert_int_equal(archive_write_data(a, e[i].data, e[i].len),
			                 (la_ssize_t)e[i].len);
		archive_entry_free(en);
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	*outlen = used;
	return out;
}

static void
hostile(const struct ent *e, size_t n, int pax, const char *text)
{
	size_t len;
	unsigned char *buf = build(e, n, pax, &len);

	refused(buf, len, 0, DS_EPROTO, text);
	free(buf);
}

static void
test_hostile_archives(void **state)
{
	static const char eight[8] = {0, 0, 0, 0, 0, 0, 0, 1};
	char longname[300];

	(void)state;
	hostile((struct ent[]){{"A/../x/serial", AE_IFREG, eight, 8, NULL, 0,
	                        0}}, 1, 0, "'..' in path");
	hostile((struct ent[]){{"../../etc/passwd", AE_IFREG, eight, 8, NULL,
	                        0, 0}}, 1, 0, "'..' in path");
	hostile((struct ent[]){{"/A/x/serial", AE_IFREG, eight, 8, NULL, 0,
	                        0}}, 1, 0, "absolute path");
	hostile((struct ent[]){{"A/x/serial", AE_IFLNK, NULL, 0, "/etc/passwd",
	                        0, 0777}}, 1, 0, "symbolic link");
	hostile((struct ent[]){{"A/x/serial", AE_IFREG, eight, 8, NULL, 0, 0},
	                       {"A/x/oid", AE_IFREG, NULL, 0, "A/x/serial",
	                        1, 0}}, 2, 0, "hard link");
	hostile((struct ent[]){{"A/x/serial", AE_IFCHR, NULL, 0, NULL, 0, 0}},
	        1, 0, "not a regular file");
	hostile((struct ent[]){{"A/x/serial", AE_IFIFO, NULL, 0, NULL, 0, 0}},
	        1, 0, "not a regular file");
	hostile((struct ent[]){{"A/x", AE_IFDIR, NULL, 0, NULL, 0, 0755}}, 1,
	        0, "directory entry");
	hostile((struct ent[]){{"A/x/serial", AE_IFREG, eight, 8, NULL, 0,
	                        04755}}, 1, 0, "setuid");
	hostile((struct ent[]){{"B/x/serial", AE_IFREG, eight, 8, NULL, 0,
	                        0}}, 1, 0, "not under A/");
	hostile((struct ent[]){{"config/settings", AE_IFREG, "x", 1, NULL, 0,
	                        0}}, 1, 0, "not under A/");
	hostile((struct ent[]){{"A/x/serial/evil", AE_IFREG, eight, 8, NULL, 0,
	                        0}}, 1, 0, "not a database file");
	hostile((struct ent[]){{"A/x//serial", AE_IFREG, eight, 8, NULL, 0,
	                        0}}, 1, 0, "empty path component");
	/* oversize and undersize members */
	hostile((struct ent[]){{"A/x/serial", AE_IFREG, "123456789", 9, NULL,
	                        0, 0}}, 1, 0, "out of bounds");
	hostile((struct ent[]){{"A/x/serial", AE_IFREG, eight, 8, NULL, 0, 0},
	                       {"A/x/oid", AE_IFREG, eight, 4, NULL, 0, 0}}, 2,
	        0, "out of bounds");
	/* x.serial names a transaction; the revision that follows is not
	 * its transaction file */
	hostile((struct ent[]){{"A/x/serial", AE_IFREG, eight, 8, NULL, 0, 0},
	                       {"A/x/oid", AE_IFREG, eight, 8, NULL, 0, 0},
	                       {"A/o0/00/00/00/00/00/00/001/c", AE_IFREG, eight,
	                        8, NULL, 0, 0}}, 3, 0,
	        "where the increment must have t000000.0000000001");
	/* pax extended headers are not what the master writes */
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	memcpy(longname, "A/", 2);
	hostile((struct ent[]){{longname, AE_IFREG, eight, 8, NULL, 0, 0}}, 1,
	        1, "not a plain ustar header");
}

/* ---- x.oid and md5 rules ---- */

/* bushy-basic: the replica (bushy-replica-old) has x.oid 00FC, the master
 * sends 0104 and oids up to 0104; the replica promises md5s. */
static void
test_xoid_rules(void **state)
{
	size_t len, n;
	unsigned char *buf = response("bushy-basic", &len), *b2;
	ds_tid base = pair_tid("bushy-basic.replication.json",
	                       "replica_fixture");
	struct member ms[1024];
	struct got g;

	(void)state;
	n = members(buf, len, ms, 1024);
	assert_true(n > 2);
	assert_string_equal(ms[1].name, "A/x/oid");
	recv_base_oid = 0xFC;
	recv_md5_required = 1;
	/* the master's own stream passes the rules */
	receive(buf, len, base, 0, &g);
	if (g.rc != DS_OK)
		fail_msg("%s", g.err.msg);
	assert_int_equal(g.sum.new_oid, 0x104);
	assert_true(g.sum.have_oid);
	assert_int_equal(g.sum.revisions_no_md5, 0);
	got_free(&g);
	b2 = malloc(len);
	/* x.oid all zeros, and any value below the replica's: refused
	 * whatever the request said */
	memcpy(b2, buf, len);
	memset(b2 + ms[1].off + 512, 0, 8);
	refused(b2, len, base, DS_EREFUSED,
	        "master's x.oid 0000000000000000 is lower than the replica's "
	        "00000000000000FC");
	ds_put_u64(b2 + ms[1].off + 512, 0xFB);
	refused(b2, len, base, DS_EREFUSED, "is lower than the replica's");
	/* equal is fine as far as this rule goes (ds check allows an oid
	 * equal to x.oid, not above it) */
	ds_put_u64(b2 + ms[1].off + 512, 0x104);
	receive(b2, len, base, 0, &g);
	assert_int_equal(g.rc, DS_OK);
	got_free(&g);
	/* oids above the x.oid sent: what ds check calls "object id
	 * higher than x.oid" */
	ds_put_u64(b2 + ms[1].off + 512, 0x103);
	refused(b2, len, base, DS_EPROTO, "object id 0000000000000104 is "
	        "higher than the x.oid sent 0000000000000103");
	ds_put_u64(b2 + ms[1].off + 512, 0x100);
	recv_base_oid = 0;
	refused(b2, len, base, DS_EPROTO, "higher than the x.oid sent");
	recv_base_oid = 0xFC;
	free(b2);
	free(buf);
	recv_base_oid = 0;
	recv_md5_required = 0;
}

static void
test_md5_policy(void **state)
{
	size_t len;
	unsigned char *buf = response("bushy-basic", &len), *b2;
	ds_tid base = pair_tid("bushy-basic.replication.json",
	                       "replica_fixture");
	struct member ms[1024];
	struct got g;

	(void)state;
	members(buf, len, ms, 1024);
	assert_string_equal(ms[4].name,
	                    "A/o0/00/00/00/00/00/00/01A/040D44B2249CA6AA");
	assert_string_equal(ms[2].name, "A/t0/40/D44/B2249CA6AA");
	b2 = malloc(len);
	/* a revision's md5 zeroed and its pickle changed */
	memcpy(b2, buf, len);
	memset(b2 + ms[4].off + 512 + 40, 0, 16);
	b2[ms[4].off + 512 + ms[4].size - 1] ^= 0x55;
	recv_md5_required = 1;
	refused(b2, len, base, DS_EPROTO, "no md5, but the storage's "
	        "[md5policy] write says every file has one");
	/* a storage that does not promise md5s takes it, and counts it */
	recv_md5_required = 0;
	receive(b2, len, base, 0, &g);
	if (g.rc != DS_OK)
		fail_msg("%s", g.err.msg);
	assert_int_equal(g.sum.revisions_no_md5, 1);
	assert_int_equal(g.sum.transactions_no_md5, 0);
	got_free(&g);
	/* a transaction file's md5 zeroed */
	memcpy(b2, buf, len);
	memset(b2 + ms[2].off + 512 + 32, 0, 16);
	recv_md5_required = 1;
	refused(b2, len, base, DS_EPROTO, "no md5");
	recv_md5_required = 0;
	receive(b2, len, base, 0, &g);
	if (g.rc != DS_OK)
		fail_msg("%s", g.err.msg);
	assert_int_equal(g.sum.transactions_no_md5, 1);
	assert_int_equal(g.sum.revisions_no_md5, 0);
	got_free(&g);
	free(b2);
	free(buf);
}

/* ---- applying ---- */

static void
copy_tar(const char *pair, const char *to)
{
	size_t len;
	unsigned char *buf = response(pair, &len);
	FILE *f = fopen(to, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	fclose(f);
	free(buf);
}

static void
test_apply_bushy(void **state)
{
	char *scratch = fixture_scratch_dir(), *rep, *mas;
	char tar[4096], a1[4096], a2[4096], d1[33], d2[33], d3[33];
	ds_error err;

	(void)state;
	rep = fixture_copy("bushy-replica-old", scratch);
	fixture_home("bushy-master", a2, sizeof(a2));
	mas = strdup(a2);
	snprintf(tar, sizeof(tar), "%s/inc.tar", scratch);
	copy_tar("bushy-basic", tar);
	snprintf(a1, sizeof(a1), "%s/A", rep);
	snprintf(a2, sizeof(a2), "%s/A", mas);
	engine_tree_digest(a2, d2, NULL);
	engine_tree_digest(a1, d1, NULL);
	assert_string_not_equal(d1, d2);
	assert_int_equal(apply_increment(rep, tar, &err), DS_OK);
	engine_tree_digest(a1, d1, NULL);
	assert_string_equal(d1, d2);   /* never packed: A equals A */
	/* again: idempotent */
	assert_int_equal(apply_increment(rep, tar, &err), DS_OK);
	engine_tree_digest(a1, d3, NULL);
	assert_string_equal(d3, d2);
	/* an unreadable archive is refused, not half applied */
	{
		char bad[4096];
		snprintf(bad, sizeof(bad), "%s/bad.tar", scratch);
		FILE *f = fopen(bad, "wb");
		fputs("this is not a tar archive at all, it is plain text "
		      "that is long enough to not be a truncated header", f);
		fclose(f);
		assert_int_equal(apply_increment(rep, bad, &err), DS_EPROTO);
		engine_tree_digest(a1, d3, NULL);
		assert_string_equal(d3, d2);
	}
	fixture_remove_tree(scratch);
	free(scratch);
	free(rep);
	free(mas);
}

/* Move every file of home's A/ from layout `from` to layout `to` and say
 * so in config/settings. */
static void
convert_layout(const char *home, ds_layout from, ds_layout to)
{
	char cmd[8192], list[4096], line[4096];
	FILE *f;

	snprintf(list, sizeof(list), "%s/.files", home);
	snprintf(cmd, sizeof(cmd), "cd '%s/A' && find . -type f | sed 's|^./||' "
	         "> '%s'", home, list);
	assert_int_equal(system(cmd), 0);
	f = fopen(list, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		char name[DS_NAME_MAX], rel[DS_RELPATH_MAX], src[8192], dst[8192];
		char *slash;

		line[strcspn(line, "\n")] = '\0';
		if (ds_layout_path_to_name(from, line, name, sizeof(name),
		                           NULL) != DS_OK)
			fail_msg("%s: not a %s path", line, ds_layout_str(from));
		assert_int_equal(ds_layout_name_to_path(to, name, rel,
		                                        sizeof(rel), NULL), DS_OK);
		snprintf(src, sizeof(src), "%s/A/%s", home, line);
		snprintf(dst, sizeof(dst), "%s/A.new/%s", home, rel);
		slash = strrchr(dst, '/');
		*slash = '\0';
		assert_int_equal(ds_io_mkdirs(dst, 0755, NULL), DS_OK);
		*slash = '/';
		assert_int_equal(rename(src, dst), 0);
	}
	fclose(f);
	unlink(list);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s/A' && mv '%s/A.new' '%s/A'", home,
	         home, home);
	assert_int_equal(system(cmd), 0);
	engine_set_setting(home, "format", ds_layout_str(to));
}

static void
test_apply_other_layout(void **state)
{
	char *scratch = fixture_scratch_dir(), *rep, *mas;
	char tar[4096], d1[33], d2[33], a[4096];
	ds_error err;

	(void)state;
	rep = fixture_copy("bushy-replica-old", scratch);
	mas = fixture_copy("bushy-master", scratch);
	snprintf(tar, sizeof(tar), "%s/inc.tar", scratch);
	copy_tar("bushy-basic", tar);
	convert_layout(rep, DS_LAYOUT_BUSHY, DS_LAYOUT_CHUNKY);
	if (apply_increment(rep, tar, &err) != DS_OK)
		fail_msg("%s", err.msg);
	/* the master converted the same way must equal the replica */
	convert_layout(mas, DS_LAYOUT_BUSHY, DS_LAYOUT_CHUNKY);
	snprintf(a, sizeof(a), "%s/A", rep);
	engine_tree_digest(a, d1, NULL);
	snprintf(a, sizeof(a), "%s/A", mas);
	engine_tree_digest(a, d2, NULL);
	assert_string_equal(d1, d2);
	/* and a flat increment into a lawn replica */
	fixture_remove_tree(rep);
	fixture_remove_tree(mas);
	free(rep);
	free(mas);
	rep = fixture_copy("flat-replica-old", scratch);
	snprintf(a, sizeof(a), "%s/second", scratch);
	assert_int_equal(mkdir(a, 0755), 0);
	mas = fixture_copy("flat-replica-old", a);
	convert_layout(rep, DS_LAYOUT_FLAT, DS_LAYOUT_LAWN);
	copy_tar("flat-basic", tar);
	assert_int_equal(apply_increment(rep, tar, NULL), DS_OK);
	assert_int_equal(apply_increment(mas, tar, NULL), DS_OK);
	convert_layout(mas, DS_LAYOUT_FLAT, DS_LAYOUT_LAWN);
	snprintf(a, sizeof(a), "%s/A", rep);
	engine_tree_digest(a, d1, NULL);
	snprintf(a, sizeof(a), "%s/A", mas);
	engine_tree_digest(a, d2, NULL);
	assert_string_equal(d1, d2);
	fixture_remove_tree(scratch);
	free(scratch);
	free(rep);
	free(mas);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_recorded_responses_accepted),
		cmocka_unit_test(test_empty_increment),
		cmocka_unit_test(test_damaged_streams),
		cmocka_unit_test(test_hostile_archives),
		cmocka_unit_test(test_xoid_rules),
		cmocka_unit_test(test_md5_policy),
		cmocka_unit_test(test_apply_bushy),
		cmocka_unit_test(test_apply_other_layout),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
