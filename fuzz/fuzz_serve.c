/*
 * fuzz_serve.c - the master side's request parsing and everything it
 * drives: ds_replica_serve on a scratch copy of a fixture master, the
 * request from a memfd, the increment into another.
 *
 * Input: one control byte (bit 0: bushy-master or flat-master), then the
 * request bytes exactly as a replica (or anyone who reaches the forced
 * command) would send them.
 *
 * The request parser (protocol_request_decode) is called directly on the
 * same bytes first, and ds_replica_serve must agree with it.
 *
 * Invariants checked:
 *  - a request the parser refuses is refused by ds_replica_serve with the
 *    same status and message; one it accepts with another identity is
 *    refused as "different identity"; an accepted request's identity and
 *    tid survive protocol_request_encode and a second decode;
 *  - a refusal is DS_EPROTO or DS_EREFUSED with a message, and nothing
 *    was written to the output;
 *  - an answer is only given to a first line "replica request 0" (with
 *    the master's identity on line 2) or "replica init 0";
 *  - the answer is a whole number of 512-byte blocks, and the replica
 *    side's own checker (recv_stream) accepts it as the increment
 *    from the requested tid (or as an init stream): the two sides agree;
 *  - the master is unchanged: A/x.serial on every input, the whole tree
 *    (but the lock files, which take the holder's pid) every 16 inputs.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helper.h"
#include "protocol.h"
#include "replica_internal.h"

struct master {
	const char *fixture;
	char home[PATH_MAX];
	char identity[33];
	uint64_t serial;
	unsigned char digest[16];
};

static struct master masters[2] = {
	{.fixture = "bushy-master"},
	{.fixture = "flat-master"},
};
static unsigned long runs;

static int
serve_skip(const char *rel)
{
	return strcmp(rel, "misc/lock") == 0 || strcmp(rel, "misc/sublock") == 0;
}

static uint64_t
serve_serial(const struct master *m)
{
	char path[PATH_MAX + 16];
	unsigned char *x = NULL;
	size_t xlen = 0;
	uint64_t v = 0;

	snprintf(path, sizeof(path), "%s/A/x%cserial", m->home,
	         strcmp(m->fixture, "flat-master") == 0 ? '.' : '/');
	if (ds_file_read(path, 64, &x, &xlen, NULL) == DS_OK && xlen == 8)
		v = ds_get_u64(x);
	free(x);
	return v;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	unsetenv("SNAPSHOT_VERSION");
	for (int i = 0; i < 2; i++) {
		struct master *m = &masters[i];
		ds_config cfg;

		snprintf(m->home, sizeof(m->home), "%s/%s", fz_scratch(),
		         m->fixture);
		fz_copy_tree(fz_fixture(m->fixture), m->home);
		if (ds_config_load(m->home, &cfg, NULL) != DS_OK)
			abort();
		memcpy(m->identity, cfg.identity, sizeof(m->identity));
		m->serial = serve_serial(m);
		fz_tree_digest(m->home, serve_skip, m->digest);
	}
	return 0;
}

struct memrd {
	const unsigned char *p;
	size_t len, pos;
};

static ssize_t
serve_memrd(void *ctx, void *buf, size_t len, ds_error *err)
{
	struct memrd *r = ctx;
	size_t n = r->len - r->pos;

	(void)err;
	if (n > len)
		n = len;
	memcpy(buf, r->p + r->pos, n);
	r->pos += n;
	return (ssize_t)n;
}

/* The request's lines as the master reads them: split at '\n', stripped
 * of blanks. */
static void
serve_line(const char *req, int which, char *out, size_t outsz)
{
	const char *p = req, *e;
	size_t n;

	for (int i = 0; i < which && p != NULL; i++) {
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	out[0] = '\0';
	if (p == NULL)
		return;
	e = strchr(p, '\n');
	if (e == NULL)
		e = p + strlen(p);
	while (p < e && strchr(" \t\r\v\f", *p) != NULL)
		p++;
	while (e > p && strchr(" \t\r\v\f", e[-1]) != NULL)
		e--;
	n = (size_t)(e - p) < outsz - 1 ? (size_t)(e - p) : outsz - 1;
	memcpy(out, p, n);
	out[n] = '\0';
}

static void
serve_check_answer(const struct master *m, const char *req,
                   const unsigned char *out, size_t outlen)
{
	char l0[64], l1[64], l2[64];
	struct recv_expect exp;
	struct recv_summary sum;
	struct memrd r = {out, outlen, 0};
	ds_error err;
	int fd, rc, init;
	uint64_t tid = 0;

	serve_line(req, 0, l0, sizeof(l0));
	init = strcmp(l0, "replica init 0") == 0;
	FZ_CHECK(init || strcmp(l0, "replica request 0") == 0,
	         "answered a request whose first line is '%s'", l0);
	if (!init) {
		serve_line(req, 1, l1, sizeof(l1));
		serve_line(req, 2, l2, sizeof(l2));
		FZ_CHECK(strcmp(l1, m->identity) == 0,
		         "answered identity '%s'", l1);
		FZ_CHECK(ds_id_parse(l2, &tid) == DS_OK, "answered tid '%s'",
		         l2);
	}
	FZ_CHECK(outlen > 0 && outlen % 512 == 0, "answer of %zu bytes",
	         outlen);

	fd = memfd_create("fuzz-serve-spool", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	memset(&exp, 0, sizeof(exp));
	exp.init = init;
	exp.base_tid = tid;
	ds_error_clear(&err);
	rc = recv_stream(serve_memrd, &r, fd, "fuzz-serve-spool", &exp,
	                     &sum, NULL, &err);
	close(fd);
	FZ_CHECK(rc == DS_OK, "the replica side refuses the master's answer "
	         "to this request: %s", err.msg);
	FZ_CHECK(sum.new_tid == m->serial, "answer ends at %016llX, master "
	         "at %016llX", (unsigned long long)sum.new_tid,
	         (unsigned long long)m->serial);
	if (init)
		FZ_CHECK(strcmp(sum.identity, m->identity) == 0, "identity");
}

/* The parser alone. Returns -1 when it does not see the bytes (a NUL, or
 * longer than the master reads: protocol_request_read refuses them), 0
 * when it refuses them (*perr), 1 when it accepts (*req, into buf). */
static int
serve_decode(const uint8_t *data, size_t size, char *buf,
             struct protocol_request *req, ds_error *perr)
{
	size_t n = size - 1;

	if (n > PROTOCOL_REQUEST_MAX || memchr(data + 1, '\0', n) != NULL)
		return -1;
	memcpy(buf, data + 1, n);
	buf[n] = '\0';
	ds_error_clear(perr);
	if (protocol_request_decode(buf, req, perr) != DS_OK) {
		fz_check_error(perr->status, perr, "protocol_request_decode");
		FZ_CHECK(perr->status == DS_EPROTO, "decode status %d",
		         perr->status);
		return 0;
	}
	if (!req->init && req->ids_valid) {
		/* encode, decode again: the same identity and tid */
		char again[PROTOCOL_REQUEST_MAX + 256];
		struct protocol_request r2;
		ds_error e2;

		if (protocol_request_encode(req->identity, req->tid, NULL, 0,
		                            again, sizeof(again), &e2) == DS_OK) {
			FZ_CHECK(protocol_request_decode(again, &r2, &e2) == DS_OK,
			         "re-encoded request refused: %s", e2.msg);
			FZ_CHECK(strcmp(r2.identity, req->identity) == 0 &&
			         r2.tid == req->tid && r2.ids_valid &&
			         r2.report_held, "re-encoded request differs");
		}
	}
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct protocol_request preq;
	ds_error perr;
	char *pbuf;
	int parsed;
	struct master *m;
	struct ds_replica_serve_opts opts;
	struct stat st;
	ds_error err;
	char *req;
	unsigned char *out = NULL;
	int in, outfd, rc;

	if (size < 1 || size > 70000)
		return 0;
	m = &masters[data[0] & 1];
	pbuf = malloc(size);
	if (pbuf == NULL)
		abort();
	parsed = serve_decode(data, size, pbuf, &preq, &perr);
	in = memfd_create("fuzz-serve-in", MFD_CLOEXEC);
	outfd = memfd_create("fuzz-serve-out", MFD_CLOEXEC);
	if (in < 0 || outfd < 0)
		abort();
	if (size > 1)
		fz_write_file_fd(in, data + 1, size - 1);
	lseek(in, 0, SEEK_SET);
	memset(&opts, 0, sizeof(opts));
	opts.request_timeout = 2;
	ds_error_clear(&err);
	rc = ds_replica_serve(m->home, in, outfd, &opts, &err);
	if (fstat(outfd, &st) != 0)
		abort();
	if (getenv("DS_FUZZ_VERBOSE") != NULL)
		fprintf(stderr, "serve %s: status %d (%s), %lld bytes\n",
		        m->fixture, rc, err.msg, (long long)st.st_size);
	if (parsed == 0)
		FZ_CHECK(rc == perr.status && strcmp(err.msg, perr.msg) == 0,
		         "the parser refused (%s), serve said %d (%s)", perr.msg,
		         rc, err.msg);
	if (parsed == 1 && !preq.init && strcmp(preq.identity, m->identity) != 0)
		FZ_CHECK(rc == DS_EREFUSED &&
		         strcmp(err.msg, "different identity") == 0,
		         "another identity, serve said %d (%s)", rc, err.msg);
	free(pbuf);
	if (rc != DS_OK) {
		fz_check_error(rc, &err, "ds_replica_serve");
		FZ_CHECK(rc == DS_EPROTO || rc == DS_EREFUSED, "status %d: %s",
		         rc, err.msg);
		FZ_CHECK(st.st_size == 0, "refused (%s) but wrote %lld bytes",
		         err.msg, (long long)st.st_size);
	} else {
		req = malloc(size);
		out = malloc((size_t)st.st_size + 1);
		if (req == NULL || out == NULL)
			abort();
		memcpy(req, data + 1, size - 1);
		req[size - 1] = '\0';
		if (pread(outfd, out, (size_t)st.st_size, 0) != st.st_size)
			abort();
		serve_check_answer(m, req, out, (size_t)st.st_size);
		free(req);
		free(out);
	}
	close(in);
	close(outfd);

	FZ_CHECK(serve_serial(m) == m->serial, "%s: x.serial changed",
	         m->fixture);
	if (++runs % 16 == 0) {
		for (int i = 0; i < 2; i++) {
			unsigned char d[16];
			fz_tree_digest(masters[i].home, serve_skip, d);
			FZ_CHECK(memcmp(d, masters[i].digest, 16) == 0,
			         "%s changed", masters[i].fixture);
		}
	}
	return 0;
}
