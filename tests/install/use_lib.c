/*
 * use_lib.c - a tiny program built against an installed libdirstorage
 * (tests/e2e/t_install.sh compiles it with the flags of the installed
 * dirstorage.pc, once against the shared and once against the static
 * library): creates a storage, commits one object through the engine,
 * reads it back and prints its tid and the library version.
 * usage: use_lib DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirstorage.h>

int
main(int argc, char **argv)
{
	static const char pickle[] = "installed";
	ds_storage *s = NULL;
	ds_txn *t = NULL;
	ds_error err;
	ds_oid oid;
	ds_tid tid, serial;
	unsigned char *back = NULL;
	size_t len;
	char hex[17];
	int rc = 1;

	if (argc != 2) {
		fprintf(stderr, "usage: use_lib DIR\n");
		return 2;
	}
	ds_error_clear(&err);
	if (ds_storage_create(argv[1], "Full", "bushy", &err) != DS_OK ||
	    ds_storage_open(argv[1], DS_OPEN_NOTHREAD, &s, &err) != DS_OK ||
	    ds_storage_new_oid(s, &oid, &err) != DS_OK ||
	    ds_txn_begin(s, "use_lib", "installed library", NULL, 0, &t,
	                 &err) != DS_OK ||
	    ds_txn_store(t, oid, 0, pickle, sizeof(pickle) - 1, &err) != DS_OK ||
	    ds_txn_vote(t, &err) != DS_OK)
		goto out;
	if (ds_txn_finish(t, &tid, &err) != DS_OK) {
		t = NULL;   /* finish frees t, also when it fails */
		goto out;
	}
	t = NULL;
	if (ds_storage_load(s, oid, &back, &len, &serial, &err) != DS_OK)
		goto out;
	if (len != sizeof(pickle) - 1 || memcmp(back, pickle, len) != 0 ||
	    serial != tid) {
		fprintf(stderr, "use_lib: read back something else\n");
		goto out;
	}
	ds_id_format(tid, hex);
	printf("libdirstorage %s tid %s\n", DS_VERSION_STRING, hex);
	rc = 0;
out:
	if (rc != 0 && err.status != DS_OK)
		fprintf(stderr, "use_lib: %s\n", err.msg[0] ? err.msg :
		        ds_strerror(err.status));
	free(back);
	if (t != NULL)
		ds_txn_abort(t);
	if (s != NULL && ds_storage_close(s, 0, &err) != DS_OK && rc == 0) {
		fprintf(stderr, "use_lib: %s\n", err.msg);
		rc = 1;
	}
	return rc;
}
