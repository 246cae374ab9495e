/*
 * fuzz_txnrec.c - ds_txnrec_decode on arbitrary bytes, and the encode
 * round trip.
 *
 * Input: one control byte, then the transaction file. Control & 3: 0 leave
 * the md5 field, 1 fill in the right md5, 2 zero it, 3 fill in the length
 * field (bytes 4..7) and then the right md5 - the fuzzer rarely guesses
 * either.
 *
 * Invariants checked:
 *  - a refusal is DS_ECORRUPT (or DS_ENOMEM) with a message and *out
 *    zeroed;
 *  - an accepted file: magic, length field, reserved bytes 16..23 zero,
 *    version length 0, header lengths adding up to the file's length, an
 *    oids block of whole oids with no oid twice (checked here by brute
 *    force), and every decoded field is the bytes at its offset;
 *  - re-encoding (with md5 when the file had one) gives the same bytes;
 *  - encoding with md5 always gives a file that decodes with md5_present.
 */
#include <stdlib.h>
#include <string.h>

#include "helper.h"

static void
txn_fix(unsigned char *buf, size_t len, int mode)
{
	if (len < DS_TXN_HEADER)
		return;
	if (mode == 3)
		ds_put_u32(buf + 4, (uint32_t)len);
	if (mode == 1 || mode == 3)
		ds_md5(buf + 48, len - 48, buf + 32);
	else if (mode == 2)
		memset(buf + 32, 0, 16);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char zero[16];
	unsigned char *buf, *enc = NULL, *enc2 = NULL;
	size_t len, enclen = 0, enclen2 = 0, lu, ld, le, lo;
	ds_txnrec rec, again;
	ds_error err;
	int rc;

	if (size < 1)
		return 0;
	len = size - 1;
	buf = malloc(len ? len : 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data + 1, len);
	txn_fix(buf, len, data[0] & 3);

	ds_error_clear(&err);
	rc = ds_txnrec_decode(buf, len, "fuzz", &rec, &err);
	if (rc != DS_OK) {
		fz_check_error(rc, &err, "ds_txnrec_decode");
		FZ_CHECK(rc == DS_ECORRUPT || rc == DS_ENOMEM, "status %d", rc);
		FZ_CHECK(rec.user == NULL && rec.oids == NULL && rec.noids == 0 &&
		         rec.tid == 0, "refused but out not cleared");
		goto out;
	}
	FZ_CHECK(len >= DS_TXN_HEADER, "accepted %zu bytes", len);
	FZ_CHECK(ds_get_u32(buf) == DS_TXN_MAGIC, "accepted bad magic");
	FZ_CHECK(ds_get_u32(buf + 4) == len, "length field");
	FZ_CHECK(memcmp(buf + 16, zero, 8) == 0, "reserved bytes accepted");
	FZ_CHECK(ds_get_u16(buf + 58) == 0, "version length accepted");
	lu = ds_get_u16(buf + 48);
	ld = ds_get_u16(buf + 50);
	le = ds_get_u16(buf + 52);
	lo = ds_get_u32(buf + 54);
	FZ_CHECK(DS_TXN_HEADER + lu + ld + le + lo == len, "lengths");
	FZ_CHECK(lo % 8 == 0 && rec.noids == lo / 8, "oids block");
	FZ_CHECK(rec.tid == ds_get_u64(buf + 8), "tid");
	FZ_CHECK(rec.prev_tid == ds_get_u64(buf + 24), "prev_tid");
	FZ_CHECK(rec.md5_present == (memcmp(buf + 32, zero, 16) != 0), "md5");
	FZ_CHECK((const unsigned char *)rec.user == buf + 60 &&
	         rec.user_len == lu &&
	         (const unsigned char *)rec.description == buf + 60 + lu &&
	         rec.description_len == ld &&
	         rec.extension == buf + 60 + lu + ld &&
	         rec.extension_len == le &&
	         rec.oids == buf + 60 + lu + ld + le, "field spans");
	if (rec.md5_present) {
		unsigned char sum[16];
		ds_md5(buf + 48, len - 48, sum);
		FZ_CHECK(memcmp(sum, buf + 32, 16) == 0, "accepted wrong md5");
	}
	/* no oid twice: brute force, bounded so slow inputs stay rare */
	if (rec.noids <= 2048)
		for (size_t i = 0; i < rec.noids; i++)
			for (size_t j = i + 1; j < rec.noids; j++)
				FZ_CHECK(memcmp(rec.oids + 8 * i,
				                rec.oids + 8 * j, 8) != 0,
				         "oids %zu and %zu are the same", i, j);

	rc = ds_txnrec_encode(&rec, rec.md5_present, &enc, &enclen, &err);
	FZ_CHECK(rc == DS_OK, "re-encode failed: %s", err.msg);
	FZ_CHECK(enclen == len && memcmp(enc, buf, len) == 0,
	         "re-encoding gives different bytes");
	rc = ds_txnrec_encode(&rec, 1, &enc2, &enclen2, &err);
	FZ_CHECK(rc == DS_OK, "encode with md5 failed: %s", err.msg);
	rc = ds_txnrec_decode(enc2, enclen2, "fuzz-md5", &again, &err);
	FZ_CHECK(rc == DS_OK && again.md5_present, "md5 encoding refused: %s",
	         err.msg);
	FZ_CHECK(again.tid == rec.tid && again.prev_tid == rec.prev_tid &&
	         again.noids == rec.noids && again.user_len == rec.user_len &&
	         memcmp(enc2 + 48, buf + 48, len - 48) == 0,
	         "md5 encoding changed the record");
out:
	free(enc);
	free(enc2);
	free(buf);
	return 0;
}
