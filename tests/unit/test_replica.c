/*
 * test_replica.c - the replica side of `ds replica` end to end through the
 * library (ds_replica_pull / ds_replica_init), with the real master side
 * (the ds binary run as a local child or through a fake ssh given as -e):
 *  - every fixture pair replicates or is refused as fixtures/README.md
 *    says; a success leaves exactly `replica_after` (paths, bytes, modes),
 *    misc/replica.previous = the response, journal/ empty, misc/snapshot =
 *    shutdown; a refusal leaves the replica's files as they were;
 *  - flat-relinked replicates with our master (relink extension);
 *  - interop: the original master's recorded responses, served by a fake
 *    master that checks our request is the original's four lines;
 *  - hostile streams served through -e leave the replica untouched;
 *  - a replica in another layout (chunky) than its master;
 *  - --init, then a master that keeps committing between increments, a
 *    no-op increment; a replica in use; a leftover spool.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "helper_engine.h"
#include "helper_fixture.h"
#include "replica_internal.h"

static void
opts_local(struct ds_replica_opts *o, const char *master)
{
	memset(o, 0, sizeof(*o));
	o->master_dir = master;
	o->local_program = fixture_bin();
	o->remote_program = fixture_bin();
	o->verbosity = 1;
}

/* A file's md5 as 32 hex digits; "" when missing. */
static void
file_md5(const char *path, char out[33])
{
	size_t len;
	unsigned char *b;

	out[0] = '\0';
	if (!engine_exists(path))
		return;
	b = engine_slurp(path, &len);
	fixture_md5_hex(b, len, out);
	free(b);
}

static unsigned
jmode(const json_t *o, const char *key)
{
	return (unsigned)strtoul(fixture_jstr(o, key), NULL, 8);
}

/* One expected file: its md5 and mode, and count it. */
static void
expect_file(const char *home, const char *rel, const char *md5, unsigned mode,
            size_t *n)
{
	char p[8192], got[33];

	snprintf(p, sizeof(p), "%s/%s", home, rel);
	file_md5(p, got);
	if (strcmp(got, md5) != 0)
		fail_msg("%s: md5 %s, expected %s", rel, got[0] ? got :
		         "(missing)", md5);
	if (engine_mode(p) != mode)
		fail_msg("%s: mode %04o, expected %04o", rel, engine_mode(p), mode);
	(*n)++;
}

static void
hex_md5_of_id(const char *hex16, int legacy, char out[33])
{
	unsigned char b[12];

	ds_put_u32(b, DS_PTR_LEGACY_MAGIC);
	assert_int_equal(ds_hex_decode(hex16, b + 4, 8), DS_OK);
	if (legacy)
		fixture_md5_hex(b, 12, out);
	else
		fixture_md5_hex(b + 4, 8, out);
}

/* The replica at home holds exactly what manifest m describes in A/
 * (paths, bytes, modes), and nothing else there. */
static void
verify_manifest(const char *home, const json_t *m)
{
	const json_t *xf = json_object_get(m, "x_files"), *v, *t, *o, *r;
	const char *k;
	size_t i, j, n = 0, found;
	char cmd[8192], md5[33];
	FILE *f;

	json_object_foreach((json_t *)xf, k, v) {
		char key[16];
		snprintf(key, sizeof(key), "%s", k);
		hex_md5_of_id(fixture_jstr(m, key), 0, md5);
		expect_file(home, fixture_jstr(v, "path"), md5, jmode(v, "mode"),
		            &n);
	}
	json_array_foreach(json_object_get(m, "transactions"), i, t)
		expect_file(home, fixture_jstr(t, "path"),
		            fixture_jstr(t, "file_md5"), jmode(t, "mode"), &n);
	json_array_foreach(json_object_get(m, "objects"), i, o) {
		if (json_object_get(o, "pointer_path") != NULL &&
		    !json_is_null(json_object_get(o, "pointer_path"))) {
			hex_md5_of_id(fixture_jstr(o, "current_serial"),
			              fixture_jint(o, "pointer_len") == 12, md5);
			expect_file(home, fixture_jstr(o, "pointer_path"), md5,
			            jmode(o, "pointer_mode"), &n);
		}
		json_array_foreach(json_object_get(o, "revisions"), j, r)
			expect_file(home, fixture_jstr(r, "path"),
			            fixture_jstr(r, "file_md5"), jmode(r, "mode"),
			            &n);
	}
	n += json_array_size(json_object_get(m, "deleted_files"));
	n += json_array_size(json_object_get(m, "other_files_in_A"));
	snprintf(cmd, sizeof(cmd), "find '%s/A' -type f | wc -l", home);
	f = popen(cmd, "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%zu", &found), 1);
	pclose(f);
	if (found != n)
		fail_msg("%s/A holds %zu files, the manifest %zu", home, found, n);
}

/* After a successful replication: the closed-replica facts. */
static void
verify_closed(const char *home)
{
	char p[4096];
	size_t len;
	unsigned char *b;

	snprintf(p, sizeof(p), "%s/journal", home);
	assert_int_equal(engine_dir_entries(p), 0);
	snprintf(p, sizeof(p), "%s/B", home);
	assert_int_equal(engine_dir_entries(p), 0);
	snprintf(p, sizeof(p), "%s/misc/.replica.incoming", home);
	assert_false(engine_exists(p));
	snprintf(p, sizeof(p), "%s/misc/snapshot", home);
	b = engine_slurp(p, &len);
	assert_int_equal(len, 8);
	assert_memory_equal(b, "shutdown", 8);
	free(b);
}

/* Digest of what a refusal must not change: A, B, journal, config. */
static void
state_digest(const char *home, char out[4][33])
{
	static const char *const d[] = {"A", "B", "journal", "config"};
	char p[4096];

	for (int i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s/%s", home, d[i]);
		/* (the helper's walk wants at least one entry) */
		if (engine_dir_entries(p) == 0)
			snprintf(out[i], 33, "empty");
		else
			engine_tree_digest(p, out[i], NULL);
	}
}

static void
assert_same_state(const char *home, char before[4][33])
{
	char after[4][33], p[4096];

	state_digest(home, after);
	for (int i = 0; i < 4; i++)
		assert_string_equal(before[i], after[i]);
	snprintf(p, sizeof(p), "%s/misc/.replica.incoming", home);
	assert_false(engine_exists(p));
	snprintf(p, sizeof(p), "%s/misc/snapshot", home);
	assert_true(engine_exists(p));
}

/* ---- every fixture pair, local mode ---- */

static void
test_fixture_pairs(void **state)
{
	json_t *pairs = fixture_json_load("pairs.json"), *p;
	size_t i;

	(void)state;
	json_array_foreach(json_object_get(pairs, "pairs"), i, p) {
		const char *name = fixture_jstr(p, "pair");
		const char *expected = fixture_jstr(p, "expected");
		char *scratch = fixture_scratch_dir(), *mas, *rep;
		char before[4][33], file[128], prev[4096], resp[4096];
		char m5a[33], m5b[33];
		struct ds_replica_opts o;
		struct ds_replica_stats st;
		ds_error err;
		int rc;

		mas = fixture_copy(fixture_jstr(p, "master"), scratch);
		rep = fixture_copy(fixture_jstr(p, "replica"), scratch);
		state_digest(rep, before);
		opts_local(&o, mas);
		o.verbosity = 0;
		ds_error_clear(&err);
		rc = ds_replica_pull(rep, &o, &st, &err);
		if (strcmp(expected, "success") == 0) {
			json_t *rj;
			if (rc != DS_OK)
				fail_msg("%s: %s", name, err.msg);
			snprintf(file, sizeof(file), "%s.replication.json", name);
			rj = fixture_json_load(file);
			verify_manifest(rep, json_object_get(rj, "replica_after"));
			verify_closed(rep);
			snprintf(prev, sizeof(prev), "%s/misc/replica.previous",
			         rep);
			snprintf(resp, sizeof(resp), "%s/responses/%s.tar",
			         fixture_dir(), name);
			file_md5(prev, m5a);
			file_md5(resp, m5b);
			assert_string_equal(m5a, m5b);
			assert_int_equal(st.members, fixture_jint(p,
			                 "response_members"));
			json_decref(rj);
		} else if (strcmp(name, "flat-relinked") == 0) {
			/* the original refuses; our pair tells a pack's
			 * rewritten back pointer from divergence */
			struct ds_compare_stats cs;
			ds_error e2;
			if (rc != DS_OK)
				fail_msg("%s: %s", name, err.msg);
			verify_closed(rep);
			json_t *mm = fixture_manifest_load("flat-relinked-master");
			assert_int_equal(st.new_tid, fixture_jid(mm, "x.serial"));
			json_decref(mm);
			if (ds_check_compare(mas, rep, NULL, &cs, &e2) != DS_OK)
				fail_msg("compare after flat-relinked: %s", e2.msg);
		} else {
			const char *kind = fixture_jstr(p, "error_kind");
			if (rc != DS_EREFUSED || strstr(err.msg, kind) == NULL)
				fail_msg("%s: expected refusal \"%s\", got %d: %s",
				         name, kind, rc, err.msg);
			assert_same_state(rep, before);
		}
		fixture_remove_tree(scratch);
		free(scratch);
		free(mas);
		free(rep);
	}
	json_decref(pairs);
}

/* ---- a fake master through -e ---- */

/* Write a fake ssh: it ignores its arguments (host, remote command),
 * saves the request, checks its first four lines are `want` (when given),
 * its fifth a relink line and its sixth "report held", and answers with
 * `answer`'s bytes. */
static void
fake_master(const char *scratch, const char *want, const char *answer,
            char *cmd, size_t cmdsz)
{
	char p[4096];
	FILE *f;

	snprintf(p, sizeof(p), "%s/fake-ssh.sh", scratch);
	f = fopen(p, "w");
	assert_non_null(f);
	fprintf(f, "#!/bin/sh\n"
	        "cat > '%s/request.got'\n", scratch);
	if (want != NULL)
		fprintf(f,
		        "head -n 4 '%s/request.got' | cmp -s - '%s' || "
		        "{ echo 'fake master: request differs' >&2; exit 9; }\n"
		        "sed -n 5p '%s/request.got' | grep -Eq "
		        "'^relink [0-9a-f]{32} [0-9a-f]{16}$' || "
		        "{ echo 'fake master: no relink line' >&2; exit 9; }\n"
		        "[ \"$(sed -n 6p '%s/request.got')\" = 'report held' ] || "
		        "{ echo 'fake master: no report line' >&2; exit 9; }\n",
		        scratch, want, scratch, scratch);
	fprintf(f, "cat '%s'\n", answer);
	fclose(f);
	snprintf(cmd, cmdsz, "sh %s", p);
}

static void
test_interop_recorded_responses(void **state)
{
	static const char *const pairs[] = {"bushy-basic", "flat-basic"};

	(void)state;
	for (int i = 0; i < 2; i++) {
		char *scratch = fixture_scratch_dir(), *rep;
		char file[128], want[4096], resp[4096], cmd[8192], prev[4096];
		char m5a[33], m5b[33];
		json_t *rj, *pj;
		struct ds_replica_opts o;
		ds_error err;
		FILE *f;

		snprintf(file, sizeof(file), "%s.replication.json", pairs[i]);
		rj = fixture_json_load(file);
		pj = json_object_get(rj, "request");
		snprintf(want, sizeof(want), "%s/request.want", scratch);
		f = fopen(want, "w");
		fputs(json_string_value(pj), f);
		fclose(f);
		snprintf(resp, sizeof(resp), "%s/responses/%s.tar", fixture_dir(),
		         pairs[i]);
		fake_master(scratch, want, resp, cmd, sizeof(cmd));
		rep = fixture_copy(fixture_jstr(rj, "replica_fixture"), scratch);
		opts_local(&o, "/srv/master dir");
		o.host = "masterhost";
		o.ssh_command = cmd;
		o.verbosity = 0;
		if (ds_replica_pull(rep, &o, NULL, &err) != DS_OK)
			fail_msg("%s through a fake master: %s", pairs[i], err.msg);
		verify_manifest(rep, json_object_get(rj, "replica_after"));
		verify_closed(rep);
		snprintf(prev, sizeof(prev), "%s/misc/replica.previous", rep);
		file_md5(prev, m5a);
		file_md5(resp, m5b);
		assert_string_equal(m5a, m5b);
		json_decref(rj);
		fixture_remove_tree(scratch);
		free(scratch);
		free(rep);
	}
}

/* A master side that fails or misbehaves through -e. */
static void
run_fake(const char *script_body, int want_rc, const char *text)
{
	char *scratch = fixture_scratch_dir(), *rep;
	char p[4096], cmd[8192], before[4][33];
	struct ds_replica_opts o;
	ds_error err;
	FILE *f;
	int rc;

	rep = fixture_copy("bushy-replica-old", scratch);
	state_digest(rep, before);
	snprintf(p, sizeof(p), "%s/fake.sh", scratch);
	f = fopen(p, "w");
	fprintf(f, "#!/bin/sh\ncat >/dev/null\n%s\n", script_body);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "sh %s", p);
	opts_local(&o, "/srv/m");
	o.host = "h";
	o.ssh_command = cmd;
	o.verbosity = 0;
	ds_error_clear(&err);
	rc = ds_replica_pull(rep, &o, NULL, &err);
	if (rc != want_rc || strstr(err.msg, text) == NULL)
		fail_msg("expected %d \"%s\", got %d: %s", want_rc, text, rc,
		         err.msg);
	assert_same_state(rep, before);
	fixture_remove_tree(scratch);
	free(scratch);
	free(rep);
}

static void
test_fake_master_failures(void **state)
{
	char body[8192];

	(void)state;
	/* ssh could not connect */
	run_fake("echo 'ssh: connect to host h port 22: Connection refused' "
	         ">&2; exit 255", DS_EBUSY, "Connection refused");
	/* master busy (our master's exit 3) */
	run_fake("echo 'ds replica: ReplicaError: snapshot in use' >&2; exit 3",
	         DS_EBUSY, "busy");
	/* the original master's refusal: the reason, not the Python
	 * exception class that carries it (also after a traceback, and
	 * from our own master, which prints the same words) */
	run_fake("echo 'ReplicaError: different identity' >&2; exit 1",
	         DS_EREFUSED, "master side: different identity (exit 1)");
	run_fake("echo 'Traceback (most recent call last):' >&2; "
	         "echo 'PermissionError: [Errno 13] Permission denied' >&2; "
	         "exit 1", DS_EREFUSED,
	         "master side: [Errno 13] Permission denied (exit 1)");
	run_fake("echo 'ds replica: ReplicaError: storage has been packed' >&2; "
	         "exit 1", DS_EREFUSED,
	         "master side: storage has been packed (exit 1)");
	run_fake("echo 'ds replica: Master: not an Error: x' >&2; exit 1",
	         DS_EREFUSED, "master side: Master: not an Error: x (exit 1)");
	/* the connection cut mid-stream: ssh dies of a signal */
	snprintf(body, sizeof(body), "head -c 100000 '%s/responses/bushy-basic.tar'; "
	         "kill -9 $$", fixture_dir());
	run_fake(body, DS_EBUSY, "connection to the master failed");
	/* cut mid-stream, ssh reports it */
	snprintf(body, sizeof(body), "head -c 100000 '%s/responses/bushy-basic.tar'; "
	         "echo 'Connection to h closed by remote host.' >&2; exit 255",
	         fixture_dir());
	run_fake(body, DS_EBUSY, "closed by remote host");
	/* a master that exits 0 after half an increment */
	snprintf(body, sizeof(body), "head -c 100000 '%s/responses/bushy-basic.tar'",
	         fixture_dir());
	run_fake(body, DS_EPROTO, "truncated");
	/* garbage */
	run_fake("echo 'this is not an archive'; head -c 2000 /dev/zero",
	         DS_EPROTO, "increment");
	/* a valid increment for another replica tid (refused first for
	 * its x.oid, E0, below the replica's FC) */
	snprintf(body, sizeof(body), "cat '%s/responses/flat-basic.tar'",
	         fixture_dir());
	run_fake(body, DS_EREFUSED, "is lower than the replica's");
	/* a good increment, then junk */
	snprintf(body, sizeof(body), "cat '%s/responses/bushy-basic.tar'; "
	         "echo junk", fixture_dir());
	run_fake(body, DS_EPROTO, "garbage after the end");
	/* a hostile member after a good start: stopped mid-stream */
	snprintf(body, sizeof(body),
	         "head -c 1024 '%s/responses/bushy-basic.tar'; "
	         "cd /tmp && tar --format=ustar -cf - -C / etc/hostname; "
	         "cat /dev/zero", fixture_dir());
	run_fake(body, DS_EPROTO, "not under A/");
}

/* ---- a replica in another layout ---- */

static void
convert_to(const char *home, ds_layout from, ds_layout to)
{
	char cmd[8192], list[4096], line[4096];
	FILE *f;

	snprintf(list, sizeof(list), "%s/../files.txt", home);
	snprintf(cmd, sizeof(cmd), "cd '%s/A' && find . -type f | sed 's|^./||' "
	         "> '%s'", home, list);
	assert_int_equal(system(cmd), 0);
	f = fopen(list, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		char name[DS_NAME_MAX], rel[DS_RELPATH_MAX], src[8192], dst[8192];
		char *slash;

		line[strcspn(line, "\n")] = '\0';
		assert_int_equal(ds_layout_path_to_name(from, line, name,
		                                        sizeof(name), NULL), DS_OK);
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
	snprintf(cmd, sizeof(cmd), "rm -rf '%s/A' && mv '%s/A.new' '%s/A'", home,
	         home, home);
	assert_int_equal(system(cmd), 0);
	engine_set_setting(home, "format", ds_layout_str(to));
}

static void
test_chunky_replica(void **state)
{
	char *scratch = fixture_scratch_dir(), *mas, *rep;
	struct ds_replica_opts o;
	struct ds_compare_stats cs;
	ds_error err;

	(void)state;
	mas = fixture_copy("bushy-master", scratch);
	rep = fixture_copy("bushy-replica-old", scratch);
	convert_to(rep, DS_LAYOUT_BUSHY, DS_LAYOUT_CHUNKY);
	opts_local(&o, mas);
	o.verbosity = 0;
	if (ds_replica_pull(rep, &o, NULL, &err) != DS_OK)
		fail_msg("%s", err.msg);
	verify_closed(rep);
	if (ds_check_compare(mas, rep, NULL, &cs, &err) != DS_OK)
		fail_msg("compare: %s", err.msg);
	assert_int_equal(cs.differences, 0);
	/* and the converse: the replica's files are the master's, by name */
	convert_to(rep, DS_LAYOUT_CHUNKY, DS_LAYOUT_BUSHY);
	{
		char a1[4096], a2[4096], d1[33], d2[33];
		snprintf(a1, sizeof(a1), "%s/A", rep);
		snprintf(a2, sizeof(a2), "%s/A", mas);
		engine_tree_digest(a1, d1, NULL);
		engine_tree_digest(a2, d2, NULL);
		assert_string_equal(d1, d2);
	}
	fixture_remove_tree(scratch);
	free(scratch);
	free(mas);
	free(rep);
}

/* ---- --init, a master that keeps committing ---- */

static void
commit_some(const char *home, int n, int seed)
{
	ds_storage *s;
	ds_error err;

	if (ds_storage_open(home, 0, &s, &err) != DS_OK)
		fail_msg("open %s: %s", home, err.msg);
	for (int i = 0; i < n; i++) {
		ds_txn *t;
		char pickle[64], desc[32];
		ds_oid oid;
		ds_tid serial = 0;

		snprintf(desc, sizeof(desc), "edit %d.%d", seed, i);
		assert_int_equal(ds_txn_begin(s, "/ test", desc, NULL, 0, &t,
		                              &err), DS_OK);
		/* a new object and a change of object 0 */
		assert_int_equal(ds_storage_new_oid(s, &oid, &err), DS_OK);
		snprintf(pickle, sizeof(pickle), "new object %d.%d", seed, i);
		assert_int_equal(ds_txn_store(t, oid, 0, pickle, strlen(pickle),
		                              &err), DS_OK);
		if (ds_storage_current_serial(s, 0, &serial, &err) != DS_OK)
			serial = 0;
		snprintf(pickle, sizeof(pickle), "root %d.%d", seed, i);
		assert_int_equal(ds_txn_store(t, 0, serial, pickle,
		                              strlen(pickle), &err), DS_OK);
		if (ds_txn_finish(t, NULL, &err) != DS_OK)
			fail_msg("commit: %s", err.msg);
	}
	assert_int_equal(ds_storage_close(s, 0, &err), DS_OK);
}

static void
same_A(const char *m, const char *r)
{
	char a1[4096], a2[4096], d1[33], d2[33];

	snprintf(a1, sizeof(a1), "%s/A", m);
	snprintf(a2, sizeof(a2), "%s/A", r);
	engine_tree_digest(a1, d1, NULL);
	engine_tree_digest(a2, d2, NULL);
	assert_string_equal(d1, d2);
}

static void
test_init_and_increments(void **state)
{
	char *scratch = fixture_scratch_dir(), *mas;
	char rep[4096], c1[33], c2[33], p1[8192], p2[8192];
	struct ds_replica_opts o;
	struct ds_replica_stats st;
	ds_error err;

	(void)state;
	mas = engine_mkds(scratch, "master", "lawn");
	commit_some(mas, 3, 1);
	snprintf(rep, sizeof(rep), "%s/replica", scratch);
	opts_local(&o, mas);
	o.verbosity = 0;
	if (ds_replica_init(rep, &o, &st, &err) != DS_OK)
		fail_msg("init: %s", err.msg);
	same_A(mas, rep);
	verify_closed(rep);
	for (int i = 0; i < 2; i++) {
		snprintf(p1, sizeof(p1), "%s/config/%s", mas,
		         i ? "identity" : "settings");
		snprintf(p2, sizeof(p2), "%s/config/%s", rep,
		         i ? "identity" : "settings");
		file_md5(p1, c1);
		file_md5(p2, c2);
		assert_string_equal(c1, c2);
	}
	/* --init refuses an existing directory */
	assert_int_equal(ds_replica_init(rep, &o, NULL, &err), DS_EEXIST);
	/* increments while the master keeps committing */
	for (int round = 0; round < 3; round++) {
		commit_some(mas, 2 + round, 10 + round);
		if (ds_replica_pull(rep, &o, &st, &err) != DS_OK)
			fail_msg("round %d: %s", round, err.msg);
		assert_int_equal(st.transactions, 2 + round);
		same_A(mas, rep);
		verify_closed(rep);
	}
	/* nothing new: a no-op increment */
	assert_int_equal(ds_replica_pull(rep, &o, &st, &err), DS_OK);
	assert_int_equal(st.transactions, 0);
	assert_int_equal(st.bytes, 1024);
	assert_int_equal(st.old_tid, st.new_tid);
	same_A(mas, rep);
	fixture_remove_tree(scratch);
	free(scratch);
	free(mas);
}

/* ---- refusals on the replica's side ---- */

static void
test_replica_refusals(void **state)
{
	char *scratch = fixture_scratch_dir(), *mas, *rep;
	char p[4096], before[4][33];
	struct ds_replica_opts o;
	ds_lock *lk;
	ds_error err;
	int rc;

	(void)state;
	mas = fixture_copy("bushy-master", scratch);
	rep = fixture_copy("bushy-replica-old", scratch);
	opts_local(&o, mas);
	o.verbosity = 0;
	/* not a storage */
	snprintf(p, sizeof(p), "%s/nothing-here", scratch);
	rc = ds_replica_pull(p, &o, NULL, &err);
	assert_int_equal(rc, DS_ENOTFOUND);
	assert_non_null(strstr(err.msg, "not a usable storage"));
	/* not Full */
	state_digest(rep, before);
	engine_set_setting(rep, "classname", "Minimal");
	rc = ds_replica_pull(rep, &o, NULL, &err);
	assert_int_equal(rc, DS_ECONFIG);
	assert_non_null(strstr(err.msg, "not a Full storage"));
	engine_set_setting(rep, "classname", "Full");
	/* in use: someone holds misc/lock */
	snprintf(p, sizeof(p), "%s/misc/lock", rep);
	assert_int_equal(ds_lock_acquire(p, &lk, &err), DS_OK);
	rc = ds_replica_pull(rep, &o, NULL, &err);
	assert_int_equal(rc, DS_ELOCKED);
	assert_non_null(strstr(err.msg, "in use"));
	ds_lock_release(lk);
	/* a snapshot user holds misc/sublock */
	snprintf(p, sizeof(p), "%s/misc/sublock", rep);
	assert_int_equal(ds_lock_acquire(p, &lk, &err), DS_OK);
	rc = ds_replica_pull(rep, &o, NULL, &err);
	assert_int_equal(rc, DS_EBUSY);
	ds_lock_release(lk);
	assert_same_state(rep, before);
	/* the master directory is not a storage */
	opts_local(&o, scratch);
	o.verbosity = 0;
	rc = ds_replica_pull(rep, &o, NULL, &err);
	assert_int_equal(rc, DS_EREFUSED);
	assert_same_state(rep, before);
	/* a bad host name is not passed to ssh as an option */
	opts_local(&o, mas);
	o.host = "-oProxyCommand=touch /tmp/ds-pwned";
	rc = ds_replica_pull(rep, &o, NULL, &err);
	assert_int_equal(rc, DS_EINVAL);
	assert_same_state(rep, before);
	/* a spool left by a killed run is not in the way */
	snprintf(p, sizeof(p), "%s/misc/.replica.incoming", rep);
	{
		FILE *f = fopen(p, "w");
		fputs("half an increment", f);
		fclose(f);
	}
	opts_local(&o, mas);
	o.verbosity = 0;
	if (ds_replica_pull(rep, &o, NULL, &err) != DS_OK)
		fail_msg("%s", err.msg);
	verify_closed(rep);
	same_A(mas, rep);
	fixture_remove_tree(scratch);
	free(scratch);
	free(mas);
	free(rep);
}

/* ---- a committed increment is completed by the engine's open ---- */

static void
test_committed_increment_recovered(void **state)
{
	char *scratch = fixture_scratch_dir(), *mas, *rep;
	char tar[4096], resp[4096], cmd[8400];
	ds_storage *s;
	ds_error err;

	(void)state;
	mas = fixture_copy("bushy-master", scratch);
	rep = fixture_copy("bushy-replica-old", scratch);
	/* as if killed right after the commit point */
	snprintf(tar, sizeof(tar), "%s/journal/replica.tar", rep);
	snprintf(resp, sizeof(resp), "%s/responses/bushy-basic.tar",
	         fixture_dir());
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", resp, tar);
	assert_int_equal(system(cmd), 0);
	if (ds_storage_open(rep, DS_OPEN_NOTHREAD, &s, &err) != DS_OK)
		fail_msg("open: %s", err.msg);
	assert_int_equal(ds_storage_last_tid(s), 0x040D44B2249CA6AAull);
	assert_int_equal(ds_storage_close(s, 0, &err), DS_OK);
	same_A(mas, rep);
	verify_closed(rep);
	fixture_remove_tree(scratch);
	free(scratch);
	free(mas);
	free(rep);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixture_pairs),
		cmocka_unit_test(test_interop_recorded_responses),
		cmocka_unit_test(test_fake_master_failures),
		cmocka_unit_test(test_chunky_replica),
		cmocka_unit_test(test_init_and_increments),
		cmocka_unit_test(test_replica_refusals),
		cmocka_unit_test(test_committed_increment_recovered),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
