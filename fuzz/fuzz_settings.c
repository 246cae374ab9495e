/*
 * fuzz_settings.c - config/settings (ds_settings_parse) and the storage
 * configuration built from it and config/identity (ds_config_load).
 * Settings arrive from the disk and, for `ds replica init`, from the
 * master.
 *
 * Input: the settings text; if it contains the line "%%identity%%", what
 * follows that line is config/identity instead of a valid one.
 *
 * Invariants checked:
 *  - parsing is deterministic (a second parse agrees on every lookup);
 *  - a refusal is DS_ECONFIG (or DS_ENOMEM) with a message;
 *  - every value found for a "key" of the text (any section) has no
 *    trailing whitespace, and ds_settings_get_int accepts it exactly when
 *    it is a Python int literal (sign, digits, single '_' between digits)
 *    in range, with the same value;
 *  - ds_config_load on a scratch home holding these files fails whenever
 *    the parse fails; when it succeeds, version is 0.11, the layout and
 *    class are the ones the settings name, flags are 0/1, the numbers are
 *    the settings' integers (or the defaults) within their bounds, dirsync
 *    is 0 without sync, and the identity is the file's first line of 32
 *    lowercase hex digits.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "helper.h"

#define SEP "\n%%identity%%\n"
#define GOOD_ID "0123456789abcdef0123456789abcdef"

static char home[PATH_MAX], settings_path[PATH_MAX], identity_path[PATH_MAX];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char dir[PATH_MAX + 16];

	(void)argc;
	(void)argv;
	snprintf(home, sizeof(home), "%s/home", fz_scratch());
	snprintf(dir, sizeof(dir), "%s/config", home);
	if (mkdir(home, 0755) != 0 || mkdir(dir, 0755) != 0)
		abort();
	snprintf(settings_path, sizeof(settings_path), "%s/settings", dir);
	snprintf(identity_path, sizeof(identity_path), "%s/identity", dir);
	return 0;
}

/* Python int() of an ASCII string already stripped: the reference. */
static int
settings_ref_int(const char *v, long *out)
{
	char digits[64];
	size_t n = 0;
	const char *p = v;
	char *end;

	if (*p == '+' || *p == '-')
		digits[n++] = *p++;
	if (!isdigit((unsigned char)*p))
		return -1;
	for (; *p; p++) {
		if (*p == '_') {
			if (!isdigit((unsigned char)p[-1]) ||
			    !isdigit((unsigned char)p[1]))
				return -1;
			continue;
		}
		if (!isdigit((unsigned char)*p) || n + 2 > sizeof(digits))
			return -1;
		digits[n++] = *p;
	}
	digits[n] = '\0';
	errno = 0;
	*out = strtol(digits, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	return 0;
}

static int
settings_space(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

/* Check one value found for (section, key). */
static void
settings_check_value(const ds_settings *s, const ds_settings *s2,
                     const char *section, const char *key)
{
	const char *v = ds_settings_get(s, section, key);
	const char *v2 = ds_settings_get(s2, section, key);
	long got = 0, want = 0;
	ds_error err;
	int rc, ref;

	FZ_CHECK((v == NULL) == (v2 == NULL) &&
	         (v == NULL || strcmp(v, v2) == 0),
	         "two parses differ on [%s] %s", section, key);
	if (v == NULL)
		return;
	if (v[0] != '\0')
		FZ_CHECK(!settings_space((unsigned char)v[strlen(v) - 1]),
		         "[%s] %s has trailing whitespace", section, key);
	ds_error_clear(&err);
	rc = ds_settings_get_int(s, section, key, 42, &got, &err);
	ref = settings_ref_int(v, &want);
	/* values that are too long for the reference are left alone */
	if (strlen(v) < 40)
		FZ_CHECK((rc == DS_OK) == (ref == 0) &&
		         (rc != DS_OK || got == want),
		         "[%s] %s = '%s': get_int %d/%ld, Python int %d/%ld",
		         section, key, v, rc, got, ref, want);
	if (rc != DS_OK) {
		fz_check_error(rc, &err, "ds_settings_get_int");
		FZ_CHECK(rc == DS_ECONFIG, "status %d", rc);
	}
}

/* Every "[section]" and "key" candidate of the text: query them all. */
static void
settings_probe(const ds_settings *s, const ds_settings *s2, const char *text)
{
	char section[128] = "DEFAULT", key[128];
	const char *line = text;
	int probes = 0;

	while (line != NULL && *line != '\0' && probes < 256) {
		const char *nl = strchr(line, '\n'), *v = line, *e;
		size_t n;

		e = nl ? nl : line + strlen(line);
		while (v < e && settings_space((unsigned char)*v))
			v++;
		if (v < e && *v == '[') {
			const char *close = e;
			while (close > v + 1 && close[-1] != ']')
				close--;
			n = (size_t)(close - v - 2);
			if (close > v + 1 && n < sizeof(section)) {
				memcpy(section, v + 1, n);
				section[n] = '\0';
			}
		} else {
			const char *d = v;
			while (d < e && *d != ':' && *d != '=')
				d++;
			while (d > v && settings_space((unsigned char)d[-1]))
				d--;
			n = (size_t)(d - v);
			if (n > 0 && n < sizeof(key)) {
				memcpy(key, v, n);
				key[n] = '\0';
				settings_check_value(s, s2, section, key);
				settings_check_value(s, s2, "DEFAULT", key);
				probes++;
			}
		}
		line = nl ? nl + 1 : NULL;
	}
}

static long
settings_int_or(const ds_settings *s, const char *sec, const char *key,
                long def)
{
	long v;

	if (ds_settings_get_int(s, sec, key, def, &v, NULL) != DS_OK)
		FZ_CHECK(0, "config accepted a non-integer [%s] %s", sec, key);
	return v;
}

static void
settings_check_config(const ds_settings *s, const ds_config *c,
                      const char *idtext, size_t idlen)
{
	const char *v;
	ds_layout l;
	long mpt;

	FZ_CHECK(strcmp(ds_settings_get(s, "structure", "version"), "0.11") ==
	         0, "version");
	FZ_CHECK(ds_layout_parse(ds_settings_get(s, "structure", "format"), &l,
	                         NULL) == DS_OK && l == c->layout, "layout");
	v = ds_settings_get(s, "storage", "classname");
	FZ_CHECK(v != NULL && strcmp(v, c->classname) == 0 &&
	         (strcmp(v, "Full") == 0 || strcmp(v, "Minimal") == 0),
	         "classname");
	FZ_CHECK(c->md5_write == (settings_int_or(s, "md5policy", "write", 1) !=
	                          0), "md5 write");
	FZ_CHECK(c->md5_read == (settings_int_or(s, "md5policy", "read", 1) !=
	                         0), "md5 read");
	FZ_CHECK(c->md5_overwrite ==
	         (settings_int_or(s, "md5policy", "overwrite", 0) != 0),
	         "md5 overwrite");
	FZ_CHECK(c->md5_pack == (settings_int_or(s, "md5policy", "pack", 1) !=
	                         0), "md5 pack");
	FZ_CHECK(c->flush_interval ==
	         settings_int_or(s, "journal", "flush_interval", 3600) &&
	         c->flush_interval >= 0, "flush_interval");
	FZ_CHECK(c->backlog == settings_int_or(s, "journal", "backlog", 3) &&
	         c->backlog >= 1, "backlog");
	FZ_CHECK(c->sync == (settings_int_or(s, "filesystem", "sync", 1) != 0),
	         "sync");
	FZ_CHECK(c->dirsync == (c->sync &&
	                        settings_int_or(s, "posix", "dirsync", 1) != 0),
	         "dirsync %d with sync %d", c->dirsync, c->sync);
	FZ_CHECK(c->delay_delete ==
	         settings_int_or(s, "storage", "delay_delete", 864000) &&
	         c->delay_delete >= 0, "delay_delete");
	if (ds_settings_get(s, "storage", "min_pack_time") == NULL &&
	    ds_settings_get(s, "storage", "window_size") != NULL)
		mpt = settings_int_or(s, "storage", "window_size", 600);
	else
		mpt = settings_int_or(s, "storage", "min_pack_time", 600);
	FZ_CHECK(c->min_pack_time == mpt && mpt >= 0, "min_pack_time");
	FZ_CHECK(idlen >= 32 && (idlen == 32 || idtext[32] == '\n') &&
	         memcmp(c->identity, idtext, 32) == 0 && c->identity[32] == '\0',
	         "identity");
	for (int i = 0; i < 32; i++)
		FZ_CHECK(isdigit((unsigned char)c->identity[i]) ||
		         (c->identity[i] >= 'a' && c->identity[i] <= 'f'),
		         "identity character %d", i);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	const char *sep, *idtext = GOOD_ID;
	size_t len = size, idlen = strlen(GOOD_ID);
	ds_settings *s = NULL, *s2 = NULL, *s3 = NULL;
	ds_config cfg;
	ds_error err, err2;
	int rc, rc2, crc;

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	sep = memmem(text, size, SEP, strlen(SEP));
	if (sep != NULL) {
		idtext = sep + strlen(SEP);
		idlen = size - (size_t)(idtext - text);
		len = (size_t)(sep - text) + 1;  /* keep its newline */
	}

	ds_error_clear(&err);
	rc = ds_settings_parse(text, len, "fuzz-settings", &s, &err);
	if (rc != DS_OK) {
		fz_check_error(rc, &err, "ds_settings_parse");
		FZ_CHECK(rc == DS_ECONFIG || rc == DS_ENOMEM, "status %d", rc);
		FZ_CHECK(s == NULL, "refused but returned settings");
	} else {
		rc2 = ds_settings_parse(text, len, "fuzz-settings-2", &s2, &err2);
		FZ_CHECK(rc2 == DS_OK, "second parse refused: %s", err2.msg);
		if (memchr(text, '\0', len) == NULL) {
			char save = text[len];
			text[len] = '\0';
			settings_probe(s, s2, text);
			text[len] = save;
		}
	}

	/* the same bytes as a storage's config */
	fz_write_file(settings_path, text, len);
	fz_write_file(identity_path, idtext, idlen);
	ds_error_clear(&err2);
	crc = ds_config_load(home, &cfg, &err2);
	if (crc != DS_OK) {
		fz_check_error(crc, &err2, "ds_config_load");
		FZ_CHECK(crc == DS_ECONFIG || crc == DS_ENOMEM, "status %d: %s",
		         crc, err2.msg);
	} else {
		FZ_CHECK(rc == DS_OK, "config accepted settings the parser "
		         "refused: %s", err.msg);
		rc2 = ds_settings_load(settings_path, &s3, &err2);
		FZ_CHECK(rc2 == DS_OK, "load refused what config accepted");
		settings_check_config(s3, &cfg, idtext, idlen);
	}
	ds_settings_free(s);
	ds_settings_free(s2);
	ds_settings_free(s3);
	free(text);
	return 0;
}
