/*
 * layout.c - database names and the four layouts ("formats") that map
 * them to paths under A/ (and B/).
 *
 * A database name is x.serial, x.oid, x.packed, o<OID>.c, o<OID>.<SERIAL>
 * or t<6 hex>.<10 hex>, hex in upper case. The part before the dot is the
 * stem, the part after it the tail. The layouts are the original's
 * formats.py mappings:
 *   flat    the name itself;
 *   lawn    stem/tail;
 *   bushy   the stem cut into 2-character directories while more than 3
 *           characters remain, then the last piece as a directory, and the
 *           tail as the file name: o0/12/34/56/78/9A/BC/DEF/c;
 *   chunky  a stem shorter than 3: stem/tail; otherwise 3-character
 *           directories (4 for the first piece of an o or t stem) while
 *           more than 4 characters remain, and the rest of the stem with
 *           ".tail" as the file name: o012/345/678/9AB/CDEF.c.
 * The way back from a path to a name accepts exactly the paths these
 * mappings produce for valid names, and nothing else: a path found in A/
 * or in a replication archive either is a database file or is refused.
 */
#include <limits.h>
#include <string.h>

#include "internal.h"

static const char *const layout_names[] = {
	[DS_LAYOUT_BUSHY] = "bushy",
	[DS_LAYOUT_CHUNKY] = "chunky",
	[DS_LAYOUT_LAWN] = "lawn",
	[DS_LAYOUT_FLAT] = "flat",
};

#define LAYOUT_COUNT (sizeof(layout_names) / sizeof(layout_names[0]))

/* Longest valid name: "o" + 16 + "." + 16. */
#define LAYOUT_NAME_LEN_MAX 34

/*
 * Copy at most dstsz-1 characters of s into dst for an error message,
 * replacing bytes that are not printable ASCII with '?', and marking a cut
 * with "...". Paths come from disk and from the network.
 */
static const char *
layout_quote(const char *s, char *dst, size_t dstsz)
{
	size_t i, n = strlen(s);

	for (i = 0; i < n && i + 1 < dstsz; i++) {
		unsigned char c = (unsigned char)s[i];
		dst[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	dst[i] = '\0';
	if (i < n && dstsz > 4)
		memcpy(dst + dstsz - 4, "...", 4);
	return dst;
}

int
ds_layout_parse(const char *format, ds_layout *out, ds_error *err)
{
	char q[64];

	for (size_t i = 0; format != NULL && i < LAYOUT_COUNT; i++) {
		if (strcmp(format, layout_names[i]) == 0) {
			*out = (ds_layout)i;
			return DS_OK;
		}
	}
	return ds_error_set(err, DS_ECONFIG,
	                    "storage format \"%s\": unknown (expected bushy, "
	                    "chunky, lawn or flat)",
	                    format == NULL ? "" : layout_quote(format, q,
	                                                       sizeof(q)));
}

const char *
ds_layout_str(ds_layout layout)
{
	if ((unsigned)layout >= LAYOUT_COUNT)
		return "unknown";
	return layout_names[layout];
}

/* n upper-case hex digits at s? */
static int
layout_upper_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F')))
			return 0;
	}
	return 1;
}

int
ds_name_valid(const char *name)
{
	size_t n;

	if (name == NULL)
		return 0;
	n = strlen(name);
	if (strcmp(name, "x.serial") == 0 || strcmp(name, "x.oid") == 0 ||
	    strcmp(name, "x.packed") == 0)
		return 1;
	if (name[0] == 'o' && n == 19)
		return layout_upper_hex(name + 1, 16) &&
		       strcmp(name + 17, ".c") == 0;
	if (name[0] == 'o' && n == 34)
		return layout_upper_hex(name + 1, 16) && name[17] == '.' &&
		       layout_upper_hex(name + 18, 16);
	if (name[0] == 't' && n == 18)
		return layout_upper_hex(name + 1, 6) && name[7] == '.' &&
		       layout_upper_hex(name + 8, 10);
	return 0;
}

/* Append n bytes of s to out at *pos, keeping room for the NUL. */
static int
layout_put(char *out, size_t outsz, size_t *pos, const char *s, size_t n)
{
	if (*pos + n + 1 > outsz)
		return 0;
	memcpy(out + *pos, s, n);
	*pos += n;
	out[*pos] = '\0';
	return 1;
}

/* The mapping itself, for a name already known to be valid (so it has a
 * stem and a non-empty tail). Returns 0 when out is too small. */
static int
layout_map(ds_layout layout, const char *name, char *out, size_t outsz)
{
	const char *dot = strchr(name, '.');
	const char *stem = name, *tail = dot + 1;
	size_t stemlen = (size_t)(dot - name), pos = 0, first, s;

	if (outsz == 0)
		return 0;
	out[0] = '\0';
	switch (layout) {
	case DS_LAYOUT_FLAT:
		return layout_put(out, outsz, &pos, name, strlen(name));
	case DS_LAYOUT_LAWN:
		return layout_put(out, outsz, &pos, stem, stemlen) &&
		       layout_put(out, outsz, &pos, "/", 1) &&
		       layout_put(out, outsz, &pos, tail, strlen(tail));
	case DS_LAYOUT_BUSHY:
		while (stemlen > 0) {
			s = stemlen > 3 ? 2 : 3;
			if (s > stemlen)
				s = stemlen;
			if (!layout_put(out, outsz, &pos, stem, s) ||
			    !layout_put(out, outsz, &pos, "/", 1))
				return 0;
			stem += s;
			stemlen -= s;
		}
		return layout_put(out, outsz, &pos, tail, strlen(tail));
	case DS_LAYOUT_CHUNKY:
		if (stemlen < 3)
			return layout_put(out, outsz, &pos, stem, stemlen) &&
			       layout_put(out, outsz, &pos, "/", 1) &&
			       layout_put(out, outsz, &pos, tail, strlen(tail));
		first = 1;
		while (stemlen > 4) {
			s = (first && (stem[0] == 'o' || stem[0] == 't')) ? 4 : 3;
			first = 0;
			if (!layout_put(out, outsz, &pos, stem, s) ||
			    !layout_put(out, outsz, &pos, "/", 1))
				return 0;
			stem += s;
			stemlen -= s;
		}
		return layout_put(out, outsz, &pos, stem, strlen(stem));
	}
	return 0;
}

int
ds_layout_name_to_path(ds_layout layout, const char *name, char *out,
                       size_t outsz, ds_error *err)
{
	char q[80];

	if ((unsigned)layout >= LAYOUT_COUNT)
		return ds_error_set(err, DS_EINVAL, "layout %d: unknown",
		                    (int)layout);
	if (!ds_name_valid(name))
		return ds_error_set(err, DS_EINVAL,
		                    "database name \"%s\": not a valid name",
		                    name == NULL ? "" :
		                    layout_quote(name, q, sizeof(q)));
	if (!layout_map(layout, name, out, outsz))
		return ds_error_set(err, DS_EINVAL,
		                    "database name %s: %s path does not fit in "
		                    "%zu bytes", name, layout_names[layout], outsz);
	return DS_OK;
}

/*
 * Path -> name: undo the mapping to get the one name that could have
 * produced this path, then map that name forward again and accept the
 * path only if it comes out identical. Anything else (wrong case, extra
 * or empty components, "..", a leading or trailing '/', pack leftovers
 * "...-<time>-deleted", stray files) fails one of the two steps.
 */
int
ds_layout_path_to_name(ds_layout layout, const char *relpath, char *out,
                       size_t outsz, ds_error *err)
{
	char cand[DS_RELPATH_MAX + 2], fwd[DS_RELPATH_MAX + 2], q[120];
	const char *last, *p;
	size_t n, pos = 0;
	int rc = DS_OK;

	if ((unsigned)layout >= LAYOUT_COUNT)
		return ds_error_set(err, DS_EINVAL, "layout %d: unknown",
		                    (int)layout);
	if (relpath == NULL)
		return ds_error_set(err, DS_EINVAL, "path: missing");
	n = strlen(relpath);
	if (n == 0 || n > LAYOUT_NAME_LEN_MAX + 16) {
		rc = ds_error_set(err, DS_EINVAL,
		                  "path \"%s\": not a database file in the %s "
		                  "layout (length %zu)",
		                  layout_quote(relpath, q, sizeof(q)),
		                  layout_names[layout], n);
		goto out;
	}
	last = strrchr(relpath, '/');
	last = last == NULL ? relpath : last + 1;
	switch (layout) {
	case DS_LAYOUT_FLAT:
		memcpy(cand, relpath, n + 1);
		break;
	case DS_LAYOUT_LAWN:
		/* stem/tail: the one '/' becomes the dot */
		for (p = relpath; *p != '\0'; p++)
			cand[pos++] = *p == '/' ? '.' : *p;
		cand[pos] = '\0';
		break;
	case DS_LAYOUT_BUSHY:
	case DS_LAYOUT_CHUNKY:
		/* directories are pieces of the stem; the last component is
		 * the tail (bushy, short chunky stems) or the stem's end with
		 * ".tail" (chunky) */
		for (p = relpath; p < last; p++)
			if (*p != '/')
				cand[pos++] = *p;
		if (strchr(last, '.') == NULL)
			cand[pos++] = '.';
		memcpy(cand + pos, last, strlen(last) + 1);
		break;
	}
	if (!ds_name_valid(cand)) {
		rc = ds_error_set(err, DS_EINVAL,
		                  "path \"%s\": not a database file in the %s "
		                  "layout",
		                  layout_quote(relpath, q, sizeof(q)),
		                  layout_names[layout]);
		goto out;
	}
	if (!layout_map(layout, cand, fwd, sizeof(fwd)) ||
	    strcmp(fwd, relpath) != 0) {
		rc = ds_error_set(err, DS_EINVAL,
		                  "path \"%s\": not a database file in the %s "
		                  "layout (%s is at %s)",
		                  layout_quote(relpath, q, sizeof(q)),
		                  layout_names[layout], cand, fwd);
		goto out;
	}
	if (strlen(cand) + 1 > outsz) {
		rc = ds_error_set(err, DS_EINVAL,
		                  "path %s: name %s does not fit in %zu bytes",
		                  relpath, cand, outsz);
		goto out;
	}
	memcpy(out, cand, strlen(cand) + 1);
out:
	return rc;
}

/* 16 upper-case hex digits of the 8 big-endian bytes of v, and a NUL. */
static void
layout_hex(uint64_t v, char *out)
{
	unsigned char b[8];

	ds_put_u64(b, v);
	ds_hex_upper(b, 8, out);
}

void
ds_name_revision(ds_oid oid, ds_tid serial, char out[DS_NAME_MAX])
{
	out[0] = 'o';
	layout_hex(oid, out + 1);
	out[17] = '.';
	layout_hex(serial, out + 18);
}

void
ds_name_pointer(ds_oid oid, char out[DS_NAME_MAX])
{
	out[0] = 'o';
	layout_hex(oid, out + 1);
	memcpy(out + 17, ".c", 3);
}

void
ds_name_transaction(ds_tid tid, char out[DS_NAME_MAX])
{
	char hex[17];

	layout_hex(tid, hex);
	out[0] = 't';
	memcpy(out + 1, hex, 6);
	out[7] = '.';
	memcpy(out + 8, hex + 6, 11); /* 10 digits and the NUL */
}

enum ds_leftover
ds_layout_leftover(const char *path, long long *when)
{
	const char *base = strrchr(path, '/'), *end, *p;
	long long v;
	size_t n;

	if (when != NULL)
		*when = 0;
	base = base ? base + 1 : path;
	n = strlen(base);
	if (n < 8 || strcmp(base + n - 8, "-deleted") != 0)
		return DS_LEFTOVER_NONE;
	end = base + n - 8;
	for (p = end; p > base && p[-1] >= '0' && p[-1] <= '9'; p--)
		;
	/* at least one digit, a '-' before them, and a name before that */
	if (p == end || p < base + 2 || p[-1] != '-')
		return DS_LEFTOVER_ODD;
	v = 0;
	for (; p < end; p++) {
		if (v > (LLONG_MAX - (*p - '0')) / 10) {
			v = 0;          /* does not fit: as old as can be */
			break;
		}
		v = v * 10 + (*p - '0');
	}
	if (when != NULL)
		*when = v;
	return DS_LEFTOVER;
}
