/*
 * fuzz_pointer.c - ds_pointer_decode (`.c` files) and ds_xfile_decode
 * (x.serial, x.oid, x.packed) on arbitrary bytes.
 *
 * Invariants checked (the formats are tiny, so the whole rule is
 * restated here): a pointer is accepted exactly when it has 8 bytes, or 12
 * bytes starting with the legacy magic, and the serial is the big-endian
 * value of the last 8; an x file exactly when it has 8 bytes. Refusals
 * are DS_ECORRUPT with a message and a zero value.
 */
#include <stdlib.h>
#include <string.h>

#include "helper.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *buf = malloc(size ? size : 1);
	ds_tid serial = 1;
	uint64_t value = 1;
	ds_error err;
	int rc, want;

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);

	ds_error_clear(&err);
	rc = ds_pointer_decode(buf, size, "fuzz.c", &serial, &err);
	want = size == 8 ||
	       (size == 12 && ds_get_u32(buf) == DS_PTR_LEGACY_MAGIC);
	FZ_CHECK((rc == DS_OK) == want, "pointer of %zu bytes: rc %d", size,
	         rc);
	if (rc == DS_OK)
		FZ_CHECK(serial == ds_get_u64(buf + size - 8), "serial");
	else {
		fz_check_error(rc, &err, "ds_pointer_decode");
		FZ_CHECK(rc == DS_ECORRUPT && serial == 0, "refusal");
	}

	ds_error_clear(&err);
	rc = ds_xfile_decode(buf, size, "x.fuzz", &value, &err);
	FZ_CHECK((rc == DS_OK) == (size == 8), "x file of %zu bytes: rc %d",
	         size, rc);
	if (rc == DS_OK)
		FZ_CHECK(value == ds_get_u64(buf), "value");
	else {
		fz_check_error(rc, &err, "ds_xfile_decode");
		FZ_CHECK(rc == DS_ECORRUPT && value == 0, "refusal");
	}
	free(buf);
	return 0;
}
