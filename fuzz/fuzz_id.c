/*
 * fuzz_id.c - ds_id_parse (16 hex digits: tids and oids in requests,
 * names and command lines) and ds_hex_decode (md5s in requests).
 *
 * Input: the string (cut at its first NUL).
 *
 * Invariants checked:
 *  - ds_id_parse accepts exactly 16 hex digits of either case, and
 *    ds_id_format of the value is the input in upper case;
 *  - ds_hex_decode(s, out, n) with n = strlen/2 (and n one too small or
 *    too large) accepts exactly 2n hex digits, writes at most n bytes (an
 *    exact-size heap buffer: ASan sees an overrun), and ds_hex_lower /
 *    ds_hex_upper of the bytes give the input back in that case.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "helper.h"

static int
id_all_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

static void
id_hex(const char *s, size_t n)
{
	size_t len = strlen(s);
	unsigned char *out = malloc(n ? n : 1);
	char *lo = malloc(2 * n + 1), *up = malloc(2 * n + 1);
	int rc, want = len == 2 * n && id_all_hex(s, len);

	if (out == NULL || lo == NULL || up == NULL)
		goto out;
	rc = ds_hex_decode(s, out, n);
	FZ_CHECK((rc == DS_OK) == want, "hex_decode n=%zu of '%s': %d", n, s,
	         rc);
	FZ_CHECK(rc == DS_OK || rc == DS_EINVAL, "status %d", rc);
	if (rc == DS_OK) {
		ds_hex_lower(out, n, lo);
		ds_hex_upper(out, n, up);
		for (size_t i = 0; i < 2 * n; i++)
			FZ_CHECK(lo[i] == tolower((unsigned char)s[i]) &&
			         up[i] == toupper((unsigned char)s[i]),
			         "round trip of '%s' gave %s", s, lo);
		FZ_CHECK(lo[2 * n] == '\0' && up[2 * n] == '\0', "NUL");
	}
out:
	free(out);
	free(lo);
	free(up);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), fmt[17];
	size_t len;
	uint64_t v = 0;
	int rc, want;

	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	len = strlen(s);

	rc = ds_id_parse(s, &v);
	want = len == 16 && id_all_hex(s, 16);
	FZ_CHECK((rc == DS_OK) == want, "id_parse '%s': %d", s, rc);
	if (rc == DS_OK) {
		ds_id_format(v, fmt);
		for (size_t i = 0; i < 16; i++)
			FZ_CHECK(fmt[i] == toupper((unsigned char)s[i]),
			         "id '%s' formats as %s", s, fmt);
	} else {
		FZ_CHECK(rc == DS_EINVAL, "status %d", rc);
	}

	id_hex(s, len / 2);
	id_hex(s, len / 2 + 1);
	if (len >= 2)
		id_hex(s, len / 2 - 1);
	free(s);
	return 0;
}
