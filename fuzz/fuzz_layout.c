/*
 * fuzz_layout.c - ds_layout_path_to_name (paths found in A/ and member
 * names of replication archives) and ds_layout_name_to_path, for all four
 * layouts.
 *
 * Input: one control byte (layout = control & 3; (control >> 2) & 63 is an
 * output buffer size to try), then the string (cut at its first NUL).
 *
 * Invariants checked:
 *  - path -> name accepted: the name is valid, and name -> path in the
 *    same layout gives back the identical path; the path has no empty,
 *    "." or ".." component and does not start or end with '/';
 *  - name -> path accepted (the string taken as a name): ds_name_valid
 *    holds and path -> name gives the name back, in every layout;
 *  - refusals are DS_EINVAL with a message;
 *  - a small output buffer is never overrun (exact-size heap buffers, so
 *    ASan sees it) and a result that does not fit is an error.
 */
#include <stdlib.h>
#include <string.h>

#include "helper.h"

static void
layout_check_path_shape(const char *p)
{
	size_t n = strlen(p);

	FZ_CHECK(n > 0 && p[0] != '/' && p[n - 1] != '/', "path '%s'", p);
	FZ_CHECK(strstr(p, "//") == NULL, "empty component in '%s'", p);
	for (const char *c = p; c != NULL; c = strchr(c, '/')) {
		if (*c == '/')
			c++;
		FZ_CHECK(strncmp(c, "./", 2) != 0 && strcmp(c, ".") != 0 &&
		         strncmp(c, "../", 3) != 0 && strcmp(c, "..") != 0,
		         "dot component in '%s'", p);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ds_layout layout;
	char *s, *small, name[DS_NAME_MAX], path[DS_RELPATH_MAX];
	char back[DS_RELPATH_MAX];
	size_t smallsz;
	ds_error err;
	int rc;

	if (size < 1)
		return 0;
	layout = (ds_layout)(data[0] & 3);
	smallsz = (size_t)((data[0] >> 2) & 63);
	s = malloc(size);
	if (s == NULL)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';

	/* path -> name */
	ds_error_clear(&err);
	rc = ds_layout_path_to_name(layout, s, name, sizeof(name), &err);
	if (rc == DS_OK) {
		FZ_CHECK(ds_name_valid(name), "gave invalid name '%s'", name);
		rc = ds_layout_name_to_path(layout, name, path, sizeof(path),
		                            &err);
		FZ_CHECK(rc == DS_OK, "name %s has no path: %s", name, err.msg);
		FZ_CHECK(strcmp(path, s) == 0, "%s: '%s' -> %s -> '%s'",
		         ds_layout_str(layout), s, name, path);
		layout_check_path_shape(s);
	} else {
		fz_check_error(rc, &err, "ds_layout_path_to_name");
		FZ_CHECK(rc == DS_EINVAL, "status %d", rc);
	}

	/* the same into a small buffer: never overrun */
	if (smallsz > 0 && (small = malloc(smallsz)) != NULL) {
		int rc2 = ds_layout_path_to_name(layout, s, small, smallsz, NULL);
		if (rc2 == DS_OK)
			FZ_CHECK(rc == DS_OK && strcmp(small, name) == 0,
			         "small buffer result differs");
		else
			FZ_CHECK(rc != DS_OK || strlen(name) + 1 > smallsz,
			         "refused with a buffer of %zu for '%s'", smallsz,
			         name);
		rc2 = ds_layout_name_to_path(layout, s, small, smallsz, NULL);
		if (rc2 == DS_OK)
			FZ_CHECK(strlen(small) < smallsz, "overrun");
		free(small);
	}

	/* the string as a name: name -> path -> name, every layout */
	if (ds_name_valid(s)) {
		for (int l = 0; l < 4; l++) {
			rc = ds_layout_name_to_path((ds_layout)l, s, path,
			                            sizeof(path), &err);
			FZ_CHECK(rc == DS_OK, "valid name %s refused: %s", s,
			         err.msg);
			layout_check_path_shape(path);
			rc = ds_layout_path_to_name((ds_layout)l, path, back,
			                            sizeof(back), &err);
			FZ_CHECK(rc == DS_OK && strcmp(back, s) == 0,
			         "%s: %s -> '%s' -> refused or %s (%s)",
			         ds_layout_str((ds_layout)l), s, path,
			         rc == DS_OK ? back : "-", err.msg);
		}
	} else {
		rc = ds_layout_name_to_path(layout, s, path, sizeof(path), &err);
		FZ_CHECK(rc == DS_EINVAL, "invalid name '%s' mapped", s);
		fz_check_error(rc, &err, "ds_layout_name_to_path");
	}
	free(s);
	return 0;
}
