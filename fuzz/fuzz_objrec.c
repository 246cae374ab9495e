/*
 * fuzz_objrec.c - ds_objrec_decode on arbitrary bytes (object revision
 * files come from disk and from replication archives).
 *
 * Input: one control byte, then the file. Control & 3 chooses what the
 * harness does to the md5 field before decoding, so that the fuzzer gets
 * past the md5 check instead of only ever meeting it: 0 leave it, 1 fill
 * in the right md5 (when the buffer is long enough), 2 zero it.
 *
 * Invariants checked:
 *  - a refusal is DS_ECORRUPT with a message, and leaves *out zeroed;
 *  - an accepted file has the magic, its length field equals its length,
 *    the reserved bytes are zero, and every decoded field is the bytes at
 *    its offset; pickle points into the buffer and ends at its end;
 *  - re-encoding the decoded record (with md5 when the file had one)
 *    gives back exactly the same bytes;
 *  - the re-encoded bytes decode again to the same record.
 */
#include <stdlib.h>
#include <string.h>

#include "helper.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char zero[16];
	unsigned char *buf, *enc = NULL;
	size_t len, enclen = 0;
	ds_objrec rec, again;
	ds_error err;
	int rc, mode;

	if (size < 1)
		return 0;
	mode = data[0] & 3;
	len = size - 1;
	/* an exact-size heap copy: ASan sees any read past the end */
	buf = malloc(len ? len : 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data + 1, len);
	if (mode == 1 && len >= DS_OBJ_HEADER)
		ds_md5(buf + 56, len - 56, buf + 40);
	else if (mode == 2 && len >= DS_OBJ_HEADER)
		memset(buf + 40, 0, 16);

	ds_error_clear(&err);
	rc = ds_objrec_decode(buf, len, "fuzz", &rec, &err);
	if (rc != DS_OK) {
		fz_check_error(rc, &err, "ds_objrec_decode");
		FZ_CHECK(rc == DS_ECORRUPT, "status %d", rc);
		FZ_CHECK(rec.pickle == NULL && rec.pickle_len == 0 &&
		         rec.oid == 0 && rec.serial == 0,
		         "refused but out not cleared");
		goto out;
	}
	FZ_CHECK(len >= DS_OBJ_HEADER, "accepted %zu bytes", len);
	FZ_CHECK(ds_get_u32(buf) == DS_OBJ_MAGIC, "accepted bad magic");
	FZ_CHECK(ds_get_u32(buf + 4) == len, "length field %u, len %zu",
	         ds_get_u32(buf + 4), len);
	FZ_CHECK(memcmp(buf + 24, zero, 16) == 0, "reserved bytes accepted");
	FZ_CHECK(rec.oid == ds_get_u64(buf + 8), "oid");
	FZ_CHECK(rec.undo_from == ds_get_u64(buf + 16), "undo_from");
	FZ_CHECK(rec.prev_serial == ds_get_u64(buf + 56), "prev_serial");
	FZ_CHECK(rec.serial == ds_get_u64(buf + 64), "serial");
	FZ_CHECK(rec.md5_present == (memcmp(buf + 40, zero, 16) != 0),
	         "md5_present %d", rec.md5_present);
	FZ_CHECK(rec.pickle == buf + DS_OBJ_HEADER &&
	         rec.pickle_len == len - DS_OBJ_HEADER, "pickle span");
	if (rec.md5_present) {
		unsigned char sum[16];
		ds_md5(buf + 56, len - 56, sum);
		FZ_CHECK(memcmp(sum, buf + 40, 16) == 0,
		         "accepted a wrong md5");
	}

	rc = ds_objrec_encode(&rec, rec.md5_present, &enc, &enclen, &err);
	FZ_CHECK(rc == DS_OK, "re-encode failed: %s", err.msg);
	FZ_CHECK(enclen == len && memcmp(enc, buf, len) == 0,
	         "re-encoding gives different bytes (%zu vs %zu)", enclen, len);
	rc = ds_objrec_decode(enc, enclen, "fuzz-again", &again, &err);
	FZ_CHECK(rc == DS_OK, "re-encoded record refused: %s", err.msg);
	FZ_CHECK(again.oid == rec.oid && again.serial == rec.serial &&
	         again.prev_serial == rec.prev_serial &&
	         again.undo_from == rec.undo_from &&
	         again.md5_present == rec.md5_present &&
	         again.pickle_len == rec.pickle_len, "second decode differs");
out:
	free(enc);
	free(buf);
	return 0;
}
