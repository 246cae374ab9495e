/*
 * commit_rate.c - engine commits per second with fsync on, measured inside
 * one process (linked with the library) so process start-up is not counted.
 *
 *   commit_rate DIR NTXN K
 *
 * Creates the storage DIR (bushy, Full; it must not exist), creates K
 * objects in a first transaction, then times NTXN transactions that each
 * store a new ~200-byte revision of K objects, with the storage's default
 * settings ([filesystem] sync on). Prints one line:
 *   commits/s K=<K>: <rate> (<NTXN> transactions in <seconds> s)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dirstorage.h"

static double
commit_rate_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	ds_storage *s = NULL;
	ds_txn *t = NULL;
	ds_oid *oids = NULL;
	ds_tid *serials = NULL;
	ds_error err;
	unsigned char pickle[200];
	long ntxn, k;
	double t0, t1;
	int rc = 1;

	if (argc != 4 || (ntxn = atol(argv[2])) < 1 || (k = atol(argv[3])) < 1) {
		fprintf(stderr, "usage: commit_rate DIR NTXN K\n");
		return 2;
	}
	memset(pickle, 'x', sizeof(pickle));
	ds_error_clear(&err);
	oids = calloc((size_t)k, sizeof(*oids));
	serials = calloc((size_t)k, sizeof(*serials));
	if (oids == NULL || serials == NULL)
		goto out;
	if (ds_storage_create(argv[1], "Full", "bushy", &err) != DS_OK ||
	    ds_storage_open(argv[1], 0, &s, &err) != DS_OK)
		goto fail;
	/* the objects: created in one transaction, not timed */
	if (ds_txn_begin(s, "bench", "create", NULL, 0, &t, &err) != DS_OK)
		goto fail;
	for (long i = 0; i < k; i++) {
		if (ds_storage_new_oid(s, &oids[i], &err) != DS_OK ||
		    ds_txn_store(t, oids[i], 0, pickle, sizeof(pickle), &err)
		    != DS_OK)
			goto fail;
	}
	if (ds_txn_finish(t, &serials[0], &err) != DS_OK) {
		t = NULL;
		goto fail;
	}
	t = NULL;
	for (long i = 1; i < k; i++)
		serials[i] = serials[0];
	t0 = commit_rate_now();
	for (long n = 0; n < ntxn; n++) {
		ds_tid tid;

		if (ds_txn_begin(s, "bench", "rewrite", NULL, 0, &t, &err)
		    != DS_OK)
			goto fail;
		pickle[0] = (unsigned char)n;
		for (long i = 0; i < k; i++)
			if (ds_txn_store(t, oids[i], serials[i], pickle,
			                 sizeof(pickle), &err) != DS_OK)
				goto fail;
		rc = ds_txn_finish(t, &tid, &err);
		t = NULL;
		if (rc != DS_OK)
			goto fail;
		for (long i = 0; i < k; i++)
			serials[i] = tid;
	}
	t1 = commit_rate_now();
	if (ds_storage_close(s, 0, &err) != DS_OK) {
		s = NULL;
		goto fail;
	}
	s = NULL;
	printf("commits/s K=%ld: %.1f (%ld transactions in %.2f s)\n", k,
	       (double)ntxn / (t1 - t0), ntxn, t1 - t0);
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "commit_rate: %s\n", err.msg);
	rc = 1;
	if (t != NULL)
		ds_txn_abort(t);
	ds_storage_close(s, 0, NULL);
out:
	free(oids);
	free(serials);
	return rc;
}
