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
		if (gen_graph_pickle(g, st, gr, oids, node, weak) != 0)
			return ds_error_set(err, DS_ENOMEM, "out of memory");
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

/* One run: the options, and the state the transactions share. */
struct gen_run {
	unsigned long long nobj, ntxn, k, seed, nbig;
	int have_big, graph;
	unsigned flags;            /* ds_storage_open's */
	const char *format, *home;
	struct gen_graph gr;       /* --graph */
	unsigned long long detached;
	ds_oid *oids;              /* the objects, in creation order */
	ds_oid *pick;              /* the objects of this transaction */
	unsigned char *isbig;      /* per object: over 100 KB */
	struct gen_buf g;          /* the pickle being built */
	uint64_t st;               /* the random state */
	ds_tid tid;                /* the last transaction committed */
	size_t created, bigbytes;
};

/* The options into r. Returns -1, or the exit code. */
static int
gen_options(int argc, char **argv, struct gen_run *r)
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
	int ch, have_k = 0;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "hqv", longopts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			cmd_gen_usage(stdout);
			return DS_EXIT_OK;
		case 'N':
			if (gen_parse("--objects", optarg, 10000000, &r->nobj))
				return DS_EXIT_USAGE;
			break;
		case 'T':
			if (gen_parse("--transactions", optarg, 10000000,
			              &r->ntxn))
				return DS_EXIT_USAGE;
			break;
		case 'K':
			if (gen_parse("--per-txn", optarg, 100000, &r->k))
				return DS_EXIT_USAGE;
			have_k = 1;
			break;
		case 'S':
			if (gen_parse("--seed", optarg, ~0ull, &r->seed))
				return DS_EXIT_USAGE;
			break;
		case 'B':
			if (gen_parse("--big", optarg, 10000000, &r->nbig))
				return DS_EXIT_USAGE;
			r->have_big = 1;
			break;
		case 'F':
			r->format = optarg;
			break;
		case 'n':
			r->flags |= DS_OPEN_NOSYNC;
			break;
		case 'G':
			r->graph = 1;
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
	r->home = argv[optind];
	/* the default K is clamped to a small --objects (--objects 2 alone
	 * works); a K the user gave is checked as given */
	if (!have_k && r->nobj >= 1 && r->k > r->nobj)
		r->k = r->nobj;
	if (r->k < 1 || r->nobj < 1 || r->k > r->nobj) {
		cli_errorf("gen", "--per-txn must be 1 to --objects");
		return DS_EXIT_USAGE;
	}
	if (r->ntxn < (r->nobj + r->k - 1) / r->k) {
		cli_errorf("gen", "%llu objects at %llu per transaction need "
		           "at least %llu transactions", r->nobj, r->k,
		           (r->nobj + r->k - 1) / r->k);
		return DS_EXIT_USAGE;
	}
	if (!r->have_big)
		r->nbig = r->nobj / 50 ? r->nobj / 50 : 1;
	if (r->nbig > r->nobj)
		r->nbig = r->nobj;
	return -1;
}

/* The run's arrays (and the graph's with --graph, which has no big
 * objects). Returns -1, or the exit code. */
static int
gen_alloc(struct gen_run *r)
{
	struct gen_graph *gr = &r->gr;

	r->oids = calloc(r->nobj, sizeof(*r->oids));
	r->pick = calloc(r->k, sizeof(*r->pick));
	r->isbig = calloc(r->nobj, 1);
	if (r->oids == NULL || r->pick == NULL || r->isbig == NULL) {
		cli_errorf("gen", "out of memory");
		return DS_EXIT_IO;
	}
	if (r->graph) {
		size_t nn = (size_t)r->nobj + 1;
		gr->parent = malloc(nn * sizeof(*gr->parent));
		gr->first = malloc(nn * sizeof(*gr->first));
		gr->next = malloc(nn * sizeof(*gr->next));
		gr->stamp = calloc(nn, sizeof(*gr->stamp));
		gr->dirty = malloc((nn + 2 * r->k + 1) * sizeof(*gr->dirty));
		if (!gr->parent || !gr->first || !gr->next || !gr->stamp ||
		    !gr->dirty) {
			cli_errorf("gen", "out of memory");
			return DS_EXIT_IO;
		}
		for (size_t i = 0; i < nn; i++)
			gr->parent[i] = gr->first[i] = gr->next[i] = -1;
		r->nbig = 0;
	}
	/* the big objects: spread evenly over the creation order */
	for (unsigned long long i = 0; i < r->nbig; i++)
		r->isbig[i * r->nobj / r->nbig] = 1;
	return -1;
}

/* The objects of one transaction without --graph: the next K new ones
 * while there are objects to create, then K distinct random ones.
 * They go to r->pick, their number to *n. */
static int
gen_pick(ds_storage *s, struct gen_run *r, size_t *n, ds_error *err)
{
	int rc;

	*n = 0;
	if (r->created < r->nobj) {
		while (*n < r->k && r->created < r->nobj) {
			rc = ds_storage_new_oid(s, &r->oids[r->created], err);
			if (rc != DS_OK)
				return rc;
			r->pick[(*n)++] = r->created++;
		}
		return DS_OK;
	}
	while (*n < r->k) {
		ds_oid j = gen_below(&r->st, r->nobj);
		size_t m;
		for (m = 0; m < *n && r->pick[m] != j; m++)
			;
		if (m == *n)
			r->pick[(*n)++] = j;
	}
	return DS_OK;
}

/* Store a new random revision of each picked object in t. */
static int
gen_txn_plain(ds_storage *s, ds_txn *t, struct gen_run *r, ds_error *err)
{
	size_t n;
	int rc;

	rc = gen_pick(s, r, &n, err);
	if (rc != DS_OK)
		return rc;
	for (size_t m = 0; m < n; m++) {
		size_t j = (size_t)r->pick[m];
		size_t bulk = r->isbig[j] ? 100 * 1024 + (size_t)gen_below(
		                 &r->st, 200 * 1024) : 0;
		ds_tid cur = 0;

		if (gen_pickle(&r->g, &r->st,
		               1 + (unsigned)gen_below(&r->st, 30), bulk) != 0)
			return ds_error_set(err, DS_ENOMEM, "out of memory");
		if (bulk)
			r->bigbytes += r->g.len;
		rc = ds_storage_current_serial(s, r->oids[j], &cur, err);
		if (rc != DS_OK && rc != DS_ENOTFOUND)
			return rc;
		rc = ds_txn_store(t, r->oids[j], rc == DS_OK ? cur : 0, r->g.b,
		                  r->g.len, err);
		if (rc != DS_OK)
			return rc;
	}
	return DS_OK;
}

/* Transaction i of the run, committed. */
static int
gen_txn(ds_storage *s, struct gen_run *r, unsigned long long i,
        ds_error *err)
{
	char desc[64], user[32];
	ds_txn *t = NULL;
	int rc;

	snprintf(user, sizeof(user), "/ user%u",
	         (unsigned)gen_below(&r->st, 7));
	snprintf(desc, sizeof(desc), "gen %llu of %llu (seed %llu)", i + 1,
	         r->ntxn, r->seed);
	rc = ds_txn_begin(s, user, desc, NULL, 0, &t, err);
	if (rc != DS_OK)
		return rc;
	if (r->graph)
		rc = gen_graph_txn(s, t, &r->st, &r->gr, r->oids, r->nobj,
		                   r->k, i, &r->created, &r->detached, &r->g,
		                   err);
	else
		rc = gen_txn_plain(s, t, r, err);
	if (rc != DS_OK) {
		ds_txn_abort(t);
		return rc;
	}
	return ds_txn_finish(t, &r->tid, err);
}

/* What was made, unless -q. */
static void
gen_report(const struct gen_run *r)
{
	char hex[17];

	if (cli_verbosity <= 0)
		return;
	ds_id_format(r->tid, hex);
	if (r->graph)
		printf("%llu objects in a graph from the root, %llu detached "
		       "(garbage for a pack), %llu transactions, last tid %s\n",
		       r->nobj, r->detached, r->ntxn, hex);
	else
		printf("%llu objects (%llu over 100 KB, %zu bytes), %llu "
		       "transactions, last tid %s\n", r->nobj, r->nbig,
		       r->bigbytes, r->ntxn, hex);
}

int
cmd_gen(int argc, char **argv)
{
	struct gen_run r;
	ds_storage *s = NULL;
	ds_error err;
	struct stat sb;
	int rc;

	memset(&r, 0, sizeof(r));
	r.nobj = 100;
	r.ntxn = 50;
	r.k = 5;
	r.seed = 1;
	r.format = "bushy";
	rc = gen_options(argc, argv, &r);
	if (rc >= 0)
		return rc;
	ds_error_clear(&err);
	if (stat(r.home, &sb) != 0 &&
	    ds_storage_create(r.home, "Full", r.format, &err) != DS_OK)
		return cli_fail("gen", &err);
	rc = gen_alloc(&r);
	if (rc >= 0)
		goto out;
	r.st = r.seed;
	if (ds_storage_open(r.home, r.flags, &s, &err) != DS_OK)
		goto fail;
	for (unsigned long long i = 0; i < r.ntxn; i++)
		if (gen_txn(s, &r, i, &err) != DS_OK)
			goto fail;
	rc = ds_storage_close(s, 0, &err);
	s = NULL;
	if (rc != DS_OK)
		goto fail;
	gen_report(&r);
	rc = DS_EXIT_OK;
	goto out;
fail:
	rc = cli_fail("gen", &err);
	ds_storage_close(s, 0, NULL);
out:
	free(r.g.b);
	free(r.oids);
	free(r.pick);
	free(r.isbig);
	gen_graph_free(&r.gr);
	return rc;
}
