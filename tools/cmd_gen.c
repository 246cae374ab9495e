/*
 * cmd_gen.c - `ds gen`: write a realistic storage through the engine, for
 * tests and benchmarks: N objects created K per transaction, then edit
 * transactions of K distinct objects each until T transactions were
 * written; pickles are real ZODB records (class pickle + state pickle of
 * a PersistentMapping), 60 bytes to 2 KB, and a few objects over 100 KB.
 * Everything but the tids (which come from the clock) is a function of
 * the seed.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

void
cmd_gen_usage(FILE *out)
{
	fprintf(out,
	        "usage: ds gen [-q] [--format F] [--nosync] [--graph] --objects N "
	        "--transactions T\n              --per-txn K [--seed S] "
	        "[--big B] DIR\n\n"
	        "Generate data in the storage in DIR (created, class Full, "
	        "when it does not\nexist): N new objects written K per "
	        "transaction, then transactions that\nrewrite K distinct "
	        "random objects, T transactions in all. B objects (default\n"
	        "N/50, at least 1) have pickles of 100 to 300 KB. Content, "
	        "users and\ndescriptions are reproducible from the seed; tids "
	        "come from the clock.\n\n"
	        "Options:\n"
	        "  --objects N        objects to create (default 100)\n"
	        "  --transactions T   transactions to write (default 50; at "
	        "least N/K)\n"
	        "  --per-txn K        objects per transaction (default 5, at most N)\n"
	        "  --seed S           random seed (default 1)\n"
	        "  --big B            objects over 100 KB\n"
	        "  --format F         bushy, chunky, lawn or flat for a new "
	        "storage (bushy)\n"
	        "  --nosync           no fsync (as [filesystem] sync 0)\n"
	        "  --graph            objects refer to each other from the "
	        "root (oid 0):\n"
	        "                     mappings and BTree buckets with ZODB "
	        "references, a\n"
	        "                     quarter of the edits detach a subtree "
	        "(garbage\n"
	        "                     for ds pack); no big objects\n"
	        "  -q, --quiet        no summary line\n"
	        "  -v, --verbose      accepted for symmetry; no effect\n"
	        "  -h, --help         show this help\n");
}

/* splitmix64 */
static uint64_t
gen_next(uint64_t *st)
{
	uint64_t z = (*st += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint64_t
gen_below(uint64_t *st, uint64_t n)
{
	return n ? gen_next(st) % n : 0;
}

struct gen_buf {
	unsigned char *b;
	size_t len, cap;
};

static int
gen_put(struct gen_buf *g, const void *p, size_t n)
{
	if (g->len + n > g->cap) {
		size_t cap = g->cap ? g->cap : 4096;
		unsigned char *nb;
		while (cap < g->len + n)
			cap *= 2;
		nb = realloc(g->b, cap);
		if (nb == NULL)
			return -1;
		g->b = nb;
		g->cap = cap;
	}
	memcpy(g->b + g->len, p, n);
	g->len += n;
	return 0;
}

/* BINUNICODE of a string of n random lowercase letters (or of s). */
static int
gen_str(struct gen_buf *g, uint64_t *st, const char *s, size_t n)
{
	unsigned char h[5] = {'X'};
	size_t i;

	if (s)
		n = strlen(s);
	h[1] = (unsigned char)(n & 0xff);
	h[2] = (unsigned char)((n >> 8) & 0xff);
	h[3] = (unsigned char)((n >> 16) & 0xff);
	h[4] = (unsigned char)((n >> 24) & 0xff);
	if (gen_put(g, h, 5) != 0)
		return -1;
	if (s)
		return gen_put(g, s, n);
	for (i = 0; i < n; i++) {
		char c = (char)('a' + gen_below(st, 26));
		if (gen_put(g, &c, 1) != 0)
			return -1;
	}
	return 0;
}

/* A ZODB record for a PersistentMapping: the class pickle, then the
 * state {'_data': {...}} with `fields` random entries, plus one long
 * value of `bulk` bytes when bulk > 0. */
static int
gen_pickle(struct gen_buf *g, uint64_t *st, unsigned fields, size_t bulk)
{
	static const char klass[] =
	    "\x80\x03" "cpersistent.mapping\nPersistentMapping\nq\x00.";
	static const char head[] = "\x80\x03}q\x00";
	char key[16];

	g->len = 0;
	if (gen_put(g, klass, sizeof(klass) - 1) != 0 ||
	    gen_put(g, head, sizeof(head) - 1) != 0 ||
	    gen_str(g, st, "_data", 0) != 0 || gen_put(g, "}(", 2) != 0)
		return -1;
	for (unsigned i = 0; i < fields; i++) {
		snprintf(key, sizeof(key), "k%u", i);
		if (gen_str(g, st, key, 0) != 0 ||
		    gen_str(g, st, NULL, 4 + gen_below(st, 60)) != 0)
			return -1;
	}
	if (bulk > 0 && (gen_str(g, st, "blob", 0) != 0 ||
	                 gen_str(g, st, NULL, bulk) != 0))
		return -1;
	return gen_put(g, "us.", 3);
}

/* ---- --graph: objects referring to each other ----
 * Node 0 is the root (oid 0), node j+1 the j-th created object. Each node
 * but the root has one parent that refers to it; a node detached from its
 * parent (with everything below it) is garbage for a pack. Every third
 * node is a BTree bucket (BTrees.OOBTree.OOBucket, state ((k, v, ...),)),
 * the others PersistentMappings; references are ZODB's (oid, class)
 * persistent ids, plus now and then a weak reference ['w', (oid,)] that
 * keeps nothing alive. */
struct gen_graph {
	long long *parent;      /* -1: root or detached */
	long long *first, *next; /* children lists */
	unsigned long long *stamp; /* transaction that last dirtied it */
	long long *dirty;
	size_t ndirty;
};

static const char gen_map_class[] = "cpersistent.mapping\nPersistentMapping\n";
static const char gen_bucket_class[] = "cBTrees.OOBTree\nOOBucket\n";

static int
gen_is_bucket(long long node)
{
	return node > 0 && node % 3 == 2;
}

static int
gen_ref(struct gen_buf *g, ds_oid oid, int bucket)
{
	unsigned char b[10] = {'C', 8};
	const char *k = bucket ? gen_bucket_class : gen_map_class;

	ds_put_u64(b + 2, oid);
	return (gen_put(g, b, 10) != 0 || gen_put(g, k, strlen(k)) != 0 ||
	        gen_put(g, "\x86Q", 2) != 0) ? -1 : 0;
}

static ds_oid
gen_node_oid(const ds_oid *oids, long long node)
{
	return node == 0 ? 0 : oids[node - 1];
}

/* The record of node: its children as references, random fields, and
 * sometimes a weak reference to weak (>= 0). */
static int
gen_graph_pickle(struct gen_buf *g, uint64_t *st, const struct gen_graph *gr,
                 const ds_oid *oids, long long node, long long weak)
{
	char key[32];
	unsigned fields = 1 + (unsigned)gen_below(st, 8), i = 0;
	long long c;

	g->len = 0;
	if (gen_put(g, "\x80\x03", 2) != 0 ||
	    gen_put(g, gen_is_bucket(node) ? gen_bucket_class : gen_map_class,
	            strlen(gen_is_bucket(node) ? gen_bucket_class :
	                   gen_map_class)) != 0 ||
	    gen_put(g, "q\x00.\x80\x03", 5) != 0)
		return -1;
	if (gen_is_bucket(node)) {
		if (gen_put(g, "((", 2) != 0)
			return -1;
	} else if (gen_put(g, "}q\x00", 3) != 0 ||
	           gen_str(g, st, "_data", 0) != 0 || gen_put(g, "}(", 2) != 0) {
		return -1;
	}
	for (c = gr->first[node]; c >= 0; c = gr->next[c]) {
		snprintf(key, sizeof(key), "c%08u", i++);
		if (gen_str(g, st, key, 0) != 0 ||
		    gen_ref(g, gen_node_oid(oids, c), gen_is_bucket(c)) != 0)
			return -1;
	}
	for (i = 0; i < fields; i++) {
		snprintf(key, sizeof(key), "k%u", i);
		if (gen_str(g, st, key, 0) != 0 ||
		    gen_str(g, st, NULL, 4 + gen_below(st, 60)) != 0)
			return -1;
	}
	if (weak >= 0) {
		unsigned char b[10] = {'C', 8};
		ds_put_u64(b + 2, gen_node_oid(oids, weak));
		if (gen_str(g, st, "weak", 0) != 0 || gen_put(g, "(", 1) != 0 ||
		    gen_str(g, st, "w", 0) != 0 || gen_put(g, b, 10) != 0 ||
		    gen_put(g, "\x85lQ", 3) != 0)
			return -1;
	}
	if (gen_is_bucket(node))
		return gen_put(g, "tt.", 3);
	return gen_put(g, "us.", 3);
}

static void
gen_graph_dirty(struct gen_graph *gr, long long node, unsigned long long txn)
{
	if (gr->stamp[node] == txn + 1)
		return;
	gr->stamp[node] = txn + 1;
	gr->dirty[gr->ndirty++] = node;
}

static void
gen_graph_attach(struct gen_graph *gr, long long node, long long parent)
{
	gr->parent[node] = parent;
	gr->next[node] = gr->first[parent];
	gr->first[parent] = node;
}

/* Detach the first child of node (it and what hangs below it become
 * unreachable); returns it, or -1 when node has no child. */
static long long
gen_graph_detach(struct gen_graph *gr, long long node)
{
	long long c = gr->first[node];

	if (c < 0)
		return -1;
	gr->first[node] = gr->next[c];
	gr->next[c] = -1;
	gr->parent[c] = -1;
	return c;
}

/* Is node reachable from the root (walks up its parents). */
static int
gen_graph_attached(const struct gen_graph *gr, long long node)
{
	while (node > 0) {
		node = gr->parent[node];
		if (node < 0)
			return 0;
	}
	return 1;
}

static void
gen_graph_free(struct gen_graph *gr)
{
	free(gr->parent);
	free(gr->first);
	free(gr->next);
	free(gr->stamp);
	free(gr->dirty);
}

/* One transaction of --graph: create up to k objects (each hung under a
 * random reachable one, the root first), or edit k reachable objects,
 * detaching a child of one in four; then store every object changed. */
static int
gen_graph_txn(ds_storage *s, ds_txn *t, uint64_t *st, struct gen_graph *gr,
              ds_oid *oids, unsigned long long nobj, unsigned long long k,
              unsigned long long txn, size_t *created,
              unsigned long long *detached, struct gen_buf *g, ds_error *err)
{
	unsigned long long n;
	size_t d;
	int rc;

	gr->ndirty = 0;
	if (txn == 0)
		gen_graph_dirty(gr, 0, txn);
	if (*created < nobj) {
		for (n = 0; n < k && *created < nobj; n++) {
			long long node = (long long)*created + 1, p = 0;
			int tries;

			rc = ds_storage_new_oid(s, &oids[*created], err);
			if (rc != DS_OK)
				return rc;
			for (tries = 0; tries < 8; tries++) {
				p = (long long)gen_below(st, *created + 1);
				if (!gen_is_bucket(p) && gen_graph_attached(gr, p))
					break;
				p = 0;
			}
			(*created)++;
			gen_graph_attach(gr, node, p);
			gen_graph_dirty(gr, node, txn);
			gen_graph_dirty(gr, p, txn);
		}
	} else {
		for (n = 0; n < k; n++) {
			long long node = -1;
			int tries;

			for (tries = 0; tries < 16; tries++) {
				long long c = 1 + (long long)gen_below(st, nobj);
				if (gen_graph_attached(gr, c)) {
					node = c;
					break;
				}
			}
			if (node < 0)
				node = 0;
			if (gen_below(st, 4) == 0 &&
			    gen_graph_detach(gr, node) >= 0)
				(*detached)++;
			gen_graph_dirty(gr, node, txn);
		}
	}
	for (d = 0; d < gr->ndirty; d++) {
		long long node = gr->dirty[d], weak = -1;
		ds_oid oid = gen_node_oid(oids, node);
		ds_tid cur = 0;

		if (gen_below(st, 8) == 0)
			weak = (long long)gen_below(st, *created + 1);
		if (gen_graph_pickle(g, st, gr, oids, node, weak) != 0) {
			err->status = DS_ENOMEM;
			err->sys_errno = 0;
			snprintf(err->msg, sizeof(err->msg), "out of memory");
			return DS_ENOMEM;
		}
		rc = ds_storage_current_serial(s, oid, &cur, err);
		if (rc != DS_OK && rc != DS_ENOTFOUND)
			return rc;
		rc = ds_txn_store(t, oid, rc == DS_OK ? cur : 0, g->b, g->len,
		                  err);
		if (rc != DS_OK)
			return rc;
	}
	return DS_OK;
}

static int
gen_parse(const char *opt, const char *a, unsigned long long max,
          unsigned long long *out)
{
	char *end;

	errno = 0;
	*out = strtoull(a, &end, 10);
	if (*a == '\0' || *end != '\0' || errno != 0 || *out > max ||
	    a[0] == '-') {
		cli_errorf("gen", "%s wants a number up to %llu, not '%s'", opt,
		           max, a);
		return -1;
	}
	return 0;
}

int
cmd_gen(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{"objects", required_argument, NULL, 'N'},
		{"transactions", required_argument, NULL, 'T'},
		{"per-txn", required_argument, NULL, 'K'},
		{"seed", required_argument, NULL, 'S'},
		{"big", required_argument, NULL, 'B'},
		{"format", required_argument, NULL, 'F'},
		{"nosync", no_argument, NULL, 'n'},
		{"graph", no_argument, NULL, 'G'},
		{"quiet", no_argument, NULL, 'q'},
		{"verbose", no_argument, NULL, 'v'},
		{NULL, 0, NULL, 0},
	};
	unsigned long long nobj = 100, ntxn = 50, k = 5, seed = 1, nbig = 0;
	int have_big = 0, have_k = 0, ch, rc = DS_EXIT_OK, graph = 0;
	struct gen_graph gr = {0};
	unsigned long long detached = 0;
	unsigned flags = 0;
	const char *format = "bushy", *home;
	ds_oid *oids = NULL, *pick = NULL;
	unsigned char *isbig = NULL;
	struct gen_buf g = {0};
	ds_storage *s = NULL;
	ds_txn *t = NULL;
	ds_error err;
	uint64_t st;
	ds_tid tid = 0;
	size_t created = 0, bigbytes = 0;
	struct stat sb;
	char hex[17], desc[64], user[32];

	optind = 1;
	while ((ch = getopt_long(argc, argv, "hqv", longopts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			cmd_gen_usage(stdout);
			return DS_EXIT_OK;
		case 'N':
			if (gen_parse("--objects", optarg, 10000000, &nobj))
				return DS_EXIT_USAGE;
			break;
		case 'T':
			if (gen_parse("--transactions", optarg, 10000000, &ntxn))
				return DS_EXIT_USAGE;
			break;
		case 'K':
			if (gen_parse("--per-txn", optarg, 100000, &k))
				return DS_EXIT_USAGE;
			have_k = 1;
			break;
		case 'S':
			if (gen_parse("--seed", optarg, ~0ull, &seed))
				return DS_EXIT_USAGE;
			break;
		case 'B':
			if (gen_parse("--big", optarg, 10000000, &nbig))
				return DS_EXIT_USAGE;
			have_big = 1;
			break;
		case 'F':
			format = optarg;
			break;
		case 'n':
			flags |= DS_OPEN_NOSYNC;
			break;
		case 'G':
			graph = 1;
			break;
		case 'q':
			cli_verbosity = 0;
			break;
		case 'v':
			cli_verbosity++;
			break;
		default:
			cmd_gen_usage(stderr);
			return DS_EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		cli_errorf("gen", "expected one storage directory");
		cmd_gen_usage(stderr);
		return DS_EXIT_USAGE;
	}
	home = argv[optind];
	/* the default K is clamped to a small --objects (--objects 2 alone
	 * works); a K the user gave is checked as given */
	if (!have_k && nobj >= 1 && k > nobj)
		k = nobj;
	if (k < 1 || nobj < 1 || k > nobj) {
		cli_errorf("gen", "--per-txn must be 1 to --objects");
		return DS_EXIT_USAGE;
	}
	if (ntxn < (nobj + k - 1) / k) {
		cli_errorf("gen", "%llu objects at %llu per transaction need "
		           "at least %llu transactions", nobj, k,
		           (nobj + k - 1) / k);
		return DS_EXIT_USAGE;
	}
	if (!have_big)
		nbig = nobj / 50 ? nobj / 50 : 1;
	if (nbig > nobj)
		nbig = nobj;
	ds_error_clear(&err);
	if (stat(home, &sb) != 0 &&
	    ds_storage_create(home, "Full", format, &err) != DS_OK)
		return cli_fail("gen", &err);
	oids = calloc(nobj, sizeof(*oids));
	pick = calloc(k, sizeof(*pick));
	isbig = calloc(nobj, 1);
	if (oids == NULL || pick == NULL || isbig == NULL) {
		cli_errorf("gen", "out of memory");
		rc = DS_EXIT_IO;
		goto out;
	}
	if (graph) {
		size_t nn = (size_t)nobj + 1;
		gr.parent = malloc(nn * sizeof(*gr.parent));
		gr.first = malloc(nn * sizeof(*gr.first));
		gr.next = malloc(nn * sizeof(*gr.next));
		gr.stamp = calloc(nn, sizeof(*gr.stamp));
		gr.dirty = malloc((nn + 2 * k + 1) * sizeof(*gr.dirty));
		if (!gr.parent || !gr.first || !gr.next || !gr.stamp ||
		    !gr.dirty) {
			cli_errorf("gen", "out of memory");
			rc = DS_EXIT_IO;
			goto out;
		}
		for (size_t i = 0; i < nn; i++)
			gr.parent[i] = gr.first[i] = gr.next[i] = -1;
		nbig = 0;
	}
	/* the big objects: spread evenly over the creation order */
	for (unsigned long long i = 0; i < nbig; i++)
		isbig[i * nobj / nbig] = 1;
	st = seed;
	if (ds_storage_open(home, flags, &s, &err) != DS_OK) {
		rc = cli_fail("gen", &err);
		goto out;
	}
	for (unsigned long long i = 0; i < ntxn; i++) {
		size_t n = 0;

		snprintf(user, sizeof(user), "/ user%u",
		         (unsigned)gen_below(&st, 7));
		snprintf(desc, sizeof(desc), "gen %llu of %llu (seed %llu)",
		         i + 1, ntxn, seed);
		if (ds_txn_begin(s, user, desc, NULL, 0, &t, &err) != DS_OK)
			goto fail;
		if (graph) {
			if (gen_graph_txn(s, t, &st, &gr, oids, nobj, k, i,
			                  &created, &detached, &g, &err) != DS_OK)
				goto fail;
			goto finish;
		}
		if (created < nobj) {
			/* creation phase */
			while (n < k && created < nobj) {
				if (ds_storage_new_oid(s, &oids[created], &err)
				    != DS_OK)
					goto fail;
				pick[n++] = created++;
			}
		} else {
			/* K distinct random objects */
			while (n < k) {
				ds_oid j = gen_below(&st, nobj);
				size_t m;
				for (m = 0; m < n && pick[m] != j; m++)
					;
				if (m == n)
					pick[n++] = j;
			}
		}
		for (size_t m = 0; m < n; m++) {
			size_t j = (size_t)pick[m];
			size_t bulk = isbig[j] ? 100 * 1024 + (size_t)gen_below(
			                 &st, 200 * 1024) : 0;
			ds_tid cur = 0;
			int r;

			if (gen_pickle(&g, &st, 1 + (unsigned)gen_below(&st, 30),
			               bulk) != 0) {
				cli_errorf("gen", "out of memory");
				rc = DS_EXIT_IO;
				goto abort;
			}
			if (bulk)
				bigbytes += g.len;
			r = ds_storage_current_serial(s, oids[j], &cur, &err);
			if (r != DS_OK && r != DS_ENOTFOUND)
				goto fail;
			if (ds_txn_store(t, oids[j], r == DS_OK ? cur : 0, g.b,
			                 g.len, &err) != DS_OK)
				goto fail;
		}
finish:
		rc = ds_txn_finish(t, &tid, &err);
		t = NULL;
		if (rc != DS_OK)
			goto fail;
	}
	if (ds_storage_close(s, 0, &err) != DS_OK) {
		s = NULL;
		goto fail;
	}
	s = NULL;
	rc = DS_EXIT_OK;
	if (cli_verbosity > 0) {
		ds_id_format(tid, hex);
		if (graph)
			printf("%llu objects in a graph from the root, %llu "
			       "detached (garbage for a pack), %llu "
			       "transactions, last tid %s\n", nobj, detached,
			       ntxn, hex);
		else
			printf("%llu objects (%llu over 100 KB, %zu bytes), "
			       "%llu transactions, last tid %s\n", nobj, nbig,
			       bigbytes, ntxn, hex);
	}
	goto out;
fail:
	rc = cli_fail("gen", &err);
abort:
	ds_txn_abort(t);
	if (s != NULL)
		ds_storage_close(s, 0, NULL);
out:
	free(g.b);
	free(oids);
	free(pick);
	free(isbig);
	gen_graph_free(&gr);
	return rc;
}
