/*
 * holder.c - a test-only storage process (built as ds-test-holder): opens
 * a storage with DS_OPEN_CONTROL, as a ZEO server would, and commits a
 * transaction every few milliseconds until SIGTERM or SIGINT, then closes
 * it cleanly. The e2e scenarios use it to back up and replicate a storage
 * that a live process holds open and keeps writing.
 *
 *   ds-test-holder [-i MILLISECONDS] [-r READYFILE] [-t TIDFILE] DIR
 *
 * Each transaction rewrites oid 1 ("holder N") and creates one new object,
 * so the storage grows and the replicas have something to copy. READYFILE
 * gets the pid once the storage is open and the control socket listens;
 * TIDFILE is replaced (rename) after each commit by the tid just
 * committed, so a test can wait for the storage to move on.
 * At the end, stdout gets "commits N" and "last TID16". Exit 0 when every
 * commit and the close worked, 1 otherwise (the message on stderr).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dirstorage.h"

static volatile sig_atomic_t holder_stop;

static void
holder_signal(int sig)
{
	(void)sig;
	holder_stop = 1;
}

static int
holder_commit(ds_storage *st, long n, ds_tid *tid, ds_error *err)
{
	char pickle[64];
	ds_txn *t = NULL;
	ds_tid cur = 0;
	ds_oid oid;
	int rc, len;

	rc = ds_storage_current_serial(st, 1, &cur, err);
	if (rc == DS_ENOTFOUND)
		cur = 0;
	else if (rc != DS_OK)
		return rc;
	if ((rc = ds_txn_begin(st, "holder", "a live commit", NULL, 0, &t,
	                       err)) != DS_OK)
		return rc;
	len = snprintf(pickle, sizeof(pickle), "holder %ld", n);
	rc = ds_txn_store(t, 1, cur, pickle, (size_t)len, err);
	if (rc == DS_OK)
		rc = ds_storage_new_oid(st, &oid, err);
	if (rc == DS_OK)
		rc = ds_txn_store(t, oid, 0, pickle, (size_t)len, err);
	if (rc != DS_OK) {
		ds_txn_abort(t);
		return rc;
	}
	*tid = 0;
	return ds_txn_finish(t, tid, err);
}

int
main(int argc, char **argv)
{
	const char *ready = NULL, *tidfile = NULL;
	char tmp[4096];
	long interval = 5, commits = 0;
	struct sigaction sa;
	ds_storage *st = NULL;
	ds_tid last = 0;
	ds_error err;
	int c, rc = DS_OK;

	while ((c = getopt(argc, argv, "i:r:t:")) != -1) {
		switch (c) {
		case 'i':
			interval = atol(optarg);
			break;
		case 'r':
			ready = optarg;
			break;
		case 't':
			tidfile = optarg;
			break;
		default:
			fprintf(stderr, "usage: ds-test-holder [-i MS] "
			        "[-r READYFILE] [-t TIDFILE] DIR\n");
			return 2;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "usage: ds-test-holder [-i MS] [-r READYFILE] "
		        "DIR\n");
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = holder_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	ds_error_clear(&err);
	if (ds_storage_open(argv[optind], DS_OPEN_CONTROL, &st, &err) != DS_OK) {
		fprintf(stderr, "ds-test-holder: %s\n", err.msg);
		return 1;
	}
	if (ready != NULL) {
		FILE *f = fopen(ready, "w");
		if (f == NULL || fprintf(f, "%ld\n", (long)getpid()) < 0 ||
		    fclose(f) != 0) {
			fprintf(stderr, "ds-test-holder: %s: %s\n", ready,
			        strerror(errno));
			ds_storage_close(st, 0, NULL);
			return 1;
		}
	}
	while (!holder_stop) {
		struct timespec ts = {interval / 1000,
		                      (interval % 1000) * 1000000L};
		rc = holder_commit(st, commits + 1, &last, &err);
		if (rc != DS_OK)
			break;
		commits++;
		if (tidfile != NULL) {
			FILE *f;
			snprintf(tmp, sizeof(tmp), "%s.tmp", tidfile);
			f = fopen(tmp, "w");
			if (f == NULL || fprintf(f, "%016llX\n",
			                         (unsigned long long)last) < 0 ||
			    fclose(f) != 0 || rename(tmp, tidfile) != 0) {
				snprintf(err.msg, sizeof(err.msg), "%s: %s",
				         tidfile, strerror(errno));
				rc = DS_EIO;
				break;
			}
		}
		nanosleep(&ts, NULL);
	}
	if (rc != DS_OK)
		fprintf(stderr, "ds-test-holder: after %ld commits: %s\n",
		        commits, err.msg);
	if (ds_storage_close(st, 0, &err) != DS_OK) {
		fprintf(stderr, "ds-test-holder: close: %s\n", err.msg);
		rc = DS_EIO;
	}
	printf("commits %ld\nlast %016llX\n", commits, (unsigned long long)last);
	return rc == DS_OK ? 0 : 1;
}
