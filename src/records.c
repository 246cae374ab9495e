/*
 * records.c - the byte formats of the files in A/: object revisions,
 * transactions, `.c` pointers and the x.* files. All integers are
 * big-endian.
 *
 * Object revision (o<OID>.<SERIAL>):
 *   0  magic BD B8 2A 71        4  total length (u32)
 *   8  oid                     16  serial an undo copied this from, or 0
 *  24  16 reserved zero bytes  40  md5 of bytes 56..end, or 16 zeros
 *  56  previous serial         64  serial of this revision
 *  72  pickle (empty: the object's creation was undone)
 *
 * Transaction (t<6>.<10>):
 *   0  magic 47 40 07 76        4  total length (u32)
 *   8  tid                     16  8 reserved zero bytes
 *  24  previous tid, or 0      32  md5 of bytes 48..end, or 16 zeros
 *  48  lengths: user u16, description u16, extension u16, oids u32,
 *      version u16 (always 0)
 *  60  user, description, extension, oids (8 bytes each, no duplicates)
 *
 * The original writes the reserved bytes as zeros and never anything else
 * (every file of the fixtures agrees), so a non-zero reserved byte means
 * the file is not what it claims to be and decoding refuses it.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define REC_OBJ_MD5_AT 40
#define REC_OBJ_SUM_FROM 56
#define REC_TXN_MD5_AT 32
#define REC_TXN_SUM_FROM 48
#define REC_U16_MAX 65535u
#define REC_U32_MAX 4294967295u

static const unsigned char rec_zero16[16];

static const char *
rec_what(const char *what)
{
	return what != NULL ? what : "(buffer)";
}

/* Is the md5 field at buf+at (16 bytes) non-zero, and if so does it match
 * the md5 of buf[from..len)? Returns DS_OK or fills err. */
static int
rec_check_md5(const unsigned char *buf, size_t len, size_t at, size_t from,
              const char *kind, const char *what, int *present,
              ds_error *err)
{
	unsigned char sum[16];
	char want[33], got[33];

	*present = memcmp(buf + at, rec_zero16, 16) != 0;
	if (!*present)
		return DS_OK;
	ds_md5(buf + from, len - from, sum);
	if (memcmp(sum, buf + at, 16) == 0)
		return DS_OK;
	ds_hex_lower(buf + at, 16, want);
	ds_hex_lower(sum, 16, got);
	return ds_error_set(err, DS_ECORRUPT,
	                    "decode %s %s: md5 mismatch (field says %s, bytes "
	                    "%zu..%zu have %s)",
	                    kind, rec_what(what), want, from, len, got);
}

/* Magic and length field, shared by both record kinds. */
static int
rec_check_frame(const unsigned char *buf, size_t len, size_t header,
                uint32_t magic, const char *kind, const char *what,
                ds_error *err)
{
	uint32_t m, l;

	if (buf == NULL || len < header)
		return ds_error_set(err, DS_ECORRUPT,
		                    "decode %s %s: file has %zu bytes, less than "
		                    "the %zu-byte header",
		                    kind, rec_what(what), buf == NULL ? 0 : len,
		                    header);
	m = ds_get_u32(buf);
	if (m != magic)
		return ds_error_set(err, DS_ECORRUPT,
		                    "decode %s %s: bad magic %08X (expected %08X)",
		                    kind, rec_what(what), m, magic);
	l = ds_get_u32(buf + 4);
	if ((size_t)l != len)
		return ds_error_set(err, DS_ECORRUPT,
		                    "decode %s %s: length field says %u but file "
		                    "has %zu bytes",
		                    kind, rec_what(what), l, len);
	return DS_OK;
}

int
ds_objrec_decode(const unsigned char *buf, size_t len, const char *what,
                 ds_objrec *out, ds_error *err)
{
	const char *kind = "object revision";
	int rc, present;

	memset(out, 0, sizeof(*out));
	rc = rec_check_frame(buf, len, DS_OBJ_HEADER, DS_OBJ_MAGIC, kind, what,
	                     err);
	if (rc != DS_OK)
		return rc;
	rc = rec_check_md5(buf, len, REC_OBJ_MD5_AT, REC_OBJ_SUM_FROM, kind,
	                   what, &present, err);
	if (rc != DS_OK)
		return rc;
	if (memcmp(buf + 24, rec_zero16, 16) != 0)
		return ds_error_set(err, DS_ECORRUPT,
		                    "decode %s %s: reserved bytes 24..39 are not "
		                    "zero",
		                    kind, rec_what(what));
	out->oid = ds_get_u64(buf + 8);
	out->undo_from = ds_get_u64(buf + 16);
	out->prev_serial = ds_get_u64(buf + 56);
	out->serial = ds_get_u64(buf + 64);
	out->md5_present = present;
	out->pickle = buf + DS_OBJ_HEADER;
	out->pickle_len = len - DS_OBJ_HEADER;
	return DS_OK;
}

int
ds_objrec_encode(const ds_objrec *rec, int with_md5, unsigned char **out,
                 size_t *outlen, ds_error *err)
{
	unsigned char *buf;
	size_t len;

	*out = NULL;
	*outlen = 0;
	if (rec->pickle_len > REC_U32_MAX - DS_OBJ_HEADER)
		return ds_error_set(err, DS_EINVAL,
		                    "encode object revision: pickle of %zu bytes "
		                    "is too large for the length field",
		                    rec->pickle_len);
	if (rec->pickle == NULL && rec->pickle_len != 0)
		return ds_error_set(err, DS_EINVAL,
		                    "encode object revision: no pickle bytes");
	len = DS_OBJ_HEADER + rec->pickle_len;
	buf = calloc(1, len);
	if (buf == NULL)
		return ds_error_set(err, DS_ENOMEM,
		                    "encode object revision: out of memory");
	ds_put_u32(buf, DS_OBJ_MAGIC);
	ds_put_u32(buf + 4, (uint32_t)len);
	ds_put_u64(buf + 8, rec->oid);
	ds_put_u64(buf + 16, rec->undo_from);
	/* 24..39 reserved and 40..55 md5 stay zero unless computed below */
	ds_put_u64(buf + 56, rec->prev_serial);
	ds_put_u64(buf + 64, rec->serial);
	if (rec->pickle_len > 0)
		memcpy(buf + DS_OBJ_HEADER, rec->pickle, rec->pickle_len);
	if (with_md5)
		ds_md5(buf + REC_OBJ_SUM_FROM, len - REC_OBJ_SUM_FROM,
		       buf + REC_OBJ_MD5_AT);
	*out = buf;
	*outlen = len;
	return DS_OK;
}

static int
rec_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Find an oid listed twice in an oids block. Returns DS_OK and *dup = 0
 * when there is none, 1 and the oid in *which otherwise. Sorting a copy
 * keeps this O(n log n) for transactions that touch many objects.
 */
static int
rec_find_duplicate(const unsigned char *oids, size_t n, int *dup,
                   uint64_t *which, const char *op, const char *what,
                   ds_error *err)
{
	uint64_t *v;

	*dup = 0;
	if (n < 2)
		return DS_OK;
	v = malloc(n * sizeof(*v));
	if (v == NULL)
		return ds_error_set(err, DS_ENOMEM, "%s %s: out of memory", op,
		                    rec_what(what));
	for (size_t i = 0; i < n; i++)
		v[i] = ds_get_u64(oids + 8 * i);
	qsort(v, n, sizeof(*v), rec_cmp_u64);
	for (size_t i = 1; i < n; i++) {
		if (v[i] == v[i - 1]) {
			*dup = 1;
			*which = v[i];
			break;
		}
	}
	free(v);
	return DS_OK;
}

int
ds_txnrec_decode(const unsigned char *buf, size_t len, const char *what,
                 ds_txnrec *out, ds_error *err)
{
	const char *kind = "transaction";
	uint32_t lu, ld, le, lo, lv;
	uint64_t want, dupoid = 0;
	int rc, present, dup;
	char hex[17];

	memset(out, 0, sizeof(*out));
	rc = rec_check_frame(buf, len, DS_TXN_HEADER, DS_TXN_MAGIC, kind, what,
	                     err);
	if (rc != DS_OK)
		return rc;
	rc = rec_check_md5(buf, len, REC_TXN_MD5_AT, REC_TXN_SUM_FROM, kind,
	                   what, &present, err);
	if (rc != DS_OK)
		return rc;
	if (memcmp(buf + 16, rec_zero16, 8) != 0)
		return ds_error_set(err, DS_ECORRUPT,
		                    "decode %s %s: reserved bytes 16..23 are not "
		                    "zero",
		                    kind, rec_what(what));
	lu = ds_get_u16(buf + 48);
	ld = ds_get_u16(buf + 50);
	le = ds_get_u16(buf + 52);
	lo = ds_get_u32(buf + 54);
	lv = ds_get_u16(buf + 58);
	if (lv != 0)
		return ds_error_set(err, DS_ECORRUPT,
		                    "decode %s %s: version length is %u, not 0",
		                    kind, rec_what(what), lv);
	want = (uint64_t)DS_TXN_HEADER + lu + ld + le + lo;
	if (want != (uint64_t)len)
		return ds_error_set(err, DS_ECORRUPT,
		                    "decode %s %s: header lengths (user %u, "
		                    "description %u, extension %u, oids %u) make "
		                    "%llu bytes but the file has %zu",
		                    kind, rec_what(what), lu, ld, le, lo,
		                    (unsigned long long)want, len);
	if (lo % 8 != 0)
		return ds_error_set(err, DS_ECORRUPT,
		                    "decode %s %s: oids block of %u bytes is not a "
		                    "multiple of 8",
		                    kind, rec_what(what), lo);
	out->tid = ds_get_u64(buf + 8);
	out->prev_tid = ds_get_u64(buf + 24);
	out->md5_present = present;
	out->user = (const char *)buf + DS_TXN_HEADER;
	out->user_len = lu;
	out->description = out->user + lu;
	out->description_len = ld;
	out->extension = buf + DS_TXN_HEADER + lu + ld;
	out->extension_len = le;
	out->oids = out->extension + le;
	out->noids = lo / 8;
	rc = rec_find_duplicate(out->oids, out->noids, &dup, &dupoid, "decode",
	                        what, err);
	if (rc == DS_OK && dup) {
		ds_id_format(dupoid, hex);
		rc = ds_error_set(err, DS_ECORRUPT,
		                  "decode %s %s: oid %s is listed twice", kind,
		                  rec_what(what), hex);
	}
	if (rc != DS_OK)
		memset(out, 0, sizeof(*out));
	return rc;
}

int
ds_txnrec_encode(const ds_txnrec *rec, int with_md5, unsigned char **out,
                 size_t *outlen, ds_error *err)
{
	unsigned char *buf = NULL, *p;
	uint64_t len;
	uint64_t dupoid = 0;
	int rc, dup;
	char hex[17];

	*out = NULL;
	*outlen = 0;
	if (rec->user_len > REC_U16_MAX || rec->description_len > REC_U16_MAX ||
	    rec->extension_len > REC_U16_MAX)
		return ds_error_set(err, DS_EINVAL,
		                    "encode transaction: user (%zu bytes), "
		                    "description (%zu) and extension (%zu) must "
		                    "each fit in 65535 bytes",
		                    rec->user_len, rec->description_len,
		                    rec->extension_len);
	if (rec->noids > REC_U32_MAX / 8)
		return ds_error_set(err, DS_EINVAL,
		                    "encode transaction: %zu oids do not fit the "
		                    "oids length field", rec->noids);
	if ((rec->user == NULL && rec->user_len != 0) ||
	    (rec->description == NULL && rec->description_len != 0) ||
	    (rec->extension == NULL && rec->extension_len != 0) ||
	    (rec->oids == NULL && rec->noids != 0))
		return ds_error_set(err, DS_EINVAL,
		                    "encode transaction: a field has a length but "
		                    "no bytes");
	len = (uint64_t)DS_TXN_HEADER + rec->user_len + rec->description_len +
	      rec->extension_len + (uint64_t)rec->noids * 8;
	if (len > REC_U32_MAX)
		return ds_error_set(err, DS_EINVAL,
		                    "encode transaction: %llu bytes is too large "
		                    "for the length field",
		                    (unsigned long long)len);
	rc = rec_find_duplicate(rec->oids, rec->noids, &dup, &dupoid, "encode",
	                        "transaction", err);
	if (rc != DS_OK)
		return rc;
	if (dup) {
		ds_id_format(dupoid, hex);
		return ds_error_set(err, DS_EINVAL,
		                    "encode transaction: oid %s is listed twice",
		                    hex);
	}
	buf = calloc(1, (size_t)len);
	if (buf == NULL)
		return ds_error_set(err, DS_ENOMEM,
		                    "encode transaction: out of memory");
	ds_put_u32(buf, DS_TXN_MAGIC);
	ds_put_u32(buf + 4, (uint32_t)len);
	ds_put_u64(buf + 8, rec->tid);
	/* 16..23 reserved, zero */
	ds_put_u64(buf + 24, rec->prev_tid);
	ds_put_u16(buf + 48, (uint16_t)rec->user_len);
	ds_put_u16(buf + 50, (uint16_t)rec->description_len);
	ds_put_u16(buf + 52, (uint16_t)rec->extension_len);
	ds_put_u32(buf + 54, (uint32_t)(rec->noids * 8));
	ds_put_u16(buf + 58, 0); /* version length: versions are not supported */
	p = buf + DS_TXN_HEADER;
	if (rec->user_len > 0)
		memcpy(p, rec->user, rec->user_len);
	p += rec->user_len;
	if (rec->description_len > 0)
		memcpy(p, rec->description, rec->description_len);
	p += rec->description_len;
	if (rec->extension_len > 0)
		memcpy(p, rec->extension, rec->extension_len);
	p += rec->extension_len;
	if (rec->noids > 0)
		memcpy(p, rec->oids, rec->noids * 8);
	if (with_md5)
		ds_md5(buf + REC_TXN_SUM_FROM, (size_t)len - REC_TXN_SUM_FROM,
		       buf + REC_TXN_MD5_AT);
	*out = buf;
	*outlen = (size_t)len;
	return DS_OK;
}

int
ds_pointer_decode(const unsigned char *buf, size_t len, const char *what,
                  ds_tid *serial, ds_error *err)
{
	uint32_t m;

	*serial = 0;
	if (buf != NULL && len == 8) {
		*serial = ds_get_u64(buf);
		return DS_OK;
	}
	if (buf != NULL && len == 12) {
		/* the old form: 4 bytes of magic, then the serial */
		m = ds_get_u32(buf);
		if (m != DS_PTR_LEGACY_MAGIC)
			return ds_error_set(err, DS_ECORRUPT,
			                    "decode pointer %s: bad magic %08X in "
			                    "the 12-byte form (expected %08X)",
			                    rec_what(what), m, DS_PTR_LEGACY_MAGIC);
		*serial = ds_get_u64(buf + 4);
		return DS_OK;
	}
	return ds_error_set(err, DS_ECORRUPT,
	                    "decode pointer %s: file has %zu bytes (expected 8, "
	                    "or 12 for the legacy form)",
	                    rec_what(what), buf == NULL ? 0 : len);
}

int
ds_xfile_decode(const unsigned char *buf, size_t len, const char *what,
                uint64_t *value, ds_error *err)
{
	*value = 0;
	if (buf == NULL || len != 8)
		return ds_error_set(err, DS_ECORRUPT,
		                    "decode %s: file has %zu bytes (expected 8)",
		                    rec_what(what), buf == NULL ? 0 : len);
	*value = ds_get_u64(buf);
	return DS_OK;
}
