/*
 * settings.c - config/settings (Python ConfigParser syntax) and
 * config/identity, read exactly as the original reads them.
 *
 * The original parses config/settings with Python 3's configparser
 * (defaults: "=" and ":" delimiters, "#" and ";" full-line comments, empty
 * lines allowed inside values, strict duplicate checks) with option names
 * kept case sensitive. settings_parse() follows that parser rule by rule,
 * so a file the original accepts is accepted here with the same values and
 * a file it refuses is refused here:
 *  - every line is stripped of surrounding whitespace; an empty line, or
 *    one whose stripped text starts with '#' or ';', is a comment;
 *  - a line indented deeper than the last section/option line continues
 *    the current option's value (joined with "\n"); an empty line inside a
 *    value adds an empty piece; trailing whitespace of the joined value is
 *    removed at the end;
 *  - "[name]" (from the first '[' to the last ']') opens a section;
 *    "DEFAULT" is the section of fallback values for every other section;
 *  - otherwise "key <delim> value", split at the first ':' or '='; an
 *    empty key or a line without a delimiter is an error;
 *  - a repeated section or a repeated key in one section is an error, as is
 *    an option before the first section header.
 * Values are returned raw: the original's %-interpolation is not applied
 * (no setting it reads contains '%').
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

#define SETTINGS_MAX_FILE (1024 * 1024) /* the real file is ~7 KB */
#define SETTINGS_DEFAULT_SECTION "DEFAULT"

struct settings_opt {
	char *key;
	char *value;
};

struct settings_section {
	char *name;
	struct settings_opt *opts;
	size_t nopts, capopts;
};

struct ds_settings {
	char *what;                      /* names the source in messages */
	struct settings_section defaults;
	struct settings_section *secs;
	size_t nsecs, capsecs;
};

/* What Python's str.strip() / regex \s treat as whitespace (ASCII part). */
static int
settings_isspace(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

static void
settings_section_clear(struct settings_section *sec)
{
	for (size_t i = 0; i < sec->nopts; i++) {
		free(sec->opts[i].key);
		free(sec->opts[i].value);
	}
	free(sec->opts);
	free(sec->name);
}

void
ds_settings_free(ds_settings *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->nsecs; i++)
		settings_section_clear(&s->secs[i]);
	free(s->secs);
	settings_section_clear(&s->defaults);
	free(s->what);
	free(s);
}

static struct settings_section *
settings_find_section(const ds_settings *s, const char *name, size_t len)
{
	for (size_t i = 0; i < s->nsecs; i++)
		if (strlen(s->secs[i].name) == len &&
		    memcmp(s->secs[i].name, name, len) == 0)
			return &s->secs[i];
	return NULL;
}

static struct settings_opt *
settings_find_opt(const struct settings_section *sec, const char *key,
                  size_t len)
{
	for (size_t i = 0; i < sec->nopts; i++)
		if (strlen(sec->opts[i].key) == len &&
		    memcmp(sec->opts[i].key, key, len) == 0)
			return &sec->opts[i];
	return NULL;
}

/* Append a new section named name[0..len). NULL when out of memory. */
static struct settings_section *
settings_add_section(ds_settings *s, const char *name, size_t len)
{
	struct settings_section *sec;

	if (s->nsecs == s->capsecs) {
		size_t ncap = s->capsecs ? 2 * s->capsecs : 16;
		struct settings_section *n = realloc(s->secs, ncap * sizeof(*n));
		if (n == NULL)
			return NULL;
		s->secs = n;
		s->capsecs = ncap;
	}
	sec = &s->secs[s->nsecs];
	memset(sec, 0, sizeof(*sec));
	sec->name = strndup(name, len);
	if (sec->name == NULL)
		return NULL;
	s->nsecs++;
	return sec;
}

static struct settings_opt *
settings_add_opt(struct settings_section *sec, const char *key, size_t klen,
                 const char *value, size_t vlen)
{
	struct settings_opt *opt;

	if (sec->nopts == sec->capopts) {
		size_t ncap = sec->capopts ? 2 * sec->capopts : 16;
		struct settings_opt *n = realloc(sec->opts, ncap * sizeof(*n));
		if (n == NULL)
			return NULL;
		sec->opts = n;
		sec->capopts = ncap;
	}
	opt = &sec->opts[sec->nopts];
	opt->key = strndup(key, klen);
	opt->value = strndup(value, vlen);
	if (opt->key == NULL || opt->value == NULL) {
		free(opt->key);
		free(opt->value);
		return NULL;
	}
	sec->nopts++;
	return opt;
}

/* value = value + "\n" + piece[0..len). */
static int
settings_append(struct settings_opt *opt, const char *piece, size_t len)
{
	size_t old = strlen(opt->value);
	char *n = realloc(opt->value, old + 1 + len + 1);

	if (n == NULL)
		return DS_ENOMEM;
	n[old] = '\n';
	memcpy(n + old + 1, piece, len);
	n[old + 1 + len] = '\0';
	opt->value = n;
	return DS_OK;
}

/* The original joins continuation pieces and strips the right end. */
static void
settings_rstrip_values(struct settings_section *sec)
{
	for (size_t i = 0; i < sec->nopts; i++) {
		char *v = sec->opts[i].value;
		size_t len = strlen(v);
		while (len > 0 && settings_isspace((unsigned char)v[len - 1]))
			len--;
		v[len] = '\0';
	}
}

int
ds_settings_parse(const char *text, size_t len, const char *what,
                  ds_settings **out, ds_error *err)
{
	ds_settings *s;
	struct settings_section *cur = NULL;  /* current section */
	struct settings_opt *opt = NULL;      /* option continuations go to */
	size_t indent_level = 0;
	unsigned long lineno = 0;
	size_t pos = 0;
	int rc = DS_OK;

	*out = NULL;
	if (memchr(text, '\0', len) != NULL)
		return ds_error_set(err, DS_ECONFIG,
		                    "%s: contains a NUL byte, not a settings file",
		                    what);
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return ds_error_set(err, DS_ENOMEM, "%s: out of memory", what);
	s->what = strdup(what);
	s->defaults.name = strdup(SETTINGS_DEFAULT_SECTION);
	if (s->what == NULL || s->defaults.name == NULL)
		goto nomem;

	while (pos < len) {
		const char *line = text + pos, *nl, *v, *vend;
		size_t linelen, indent;

		nl = memchr(line, '\n', len - pos);
		linelen = nl ? (size_t)(nl - line) : len - pos;
		pos += linelen + (nl ? 1 : 0);
		lineno++;

		/* the stripped text of the line */
		v = line;
		vend = line + linelen;
		while (v < vend && settings_isspace((unsigned char)*v))
			v++;
		while (vend > v && settings_isspace((unsigned char)vend[-1]))
			vend--;
		indent = (size_t)(v - line);

		if (v < vend && (*v == '#' || *v == ';'))
			continue;  /* full-line comment: neither value nor end */
		if (v == vend) {
			/* empty line: part of a multi-line value, if any */
			if (cur != NULL && opt != NULL &&
			    settings_append(opt, "", 0) != DS_OK)
				goto nomem;
			continue;
		}
		if (cur != NULL && opt != NULL && indent > indent_level) {
			if (settings_append(opt, v, (size_t)(vend - v)) != DS_OK)
				goto nomem;
			continue;
		}
		indent_level = indent;

		/* "[" header "]": from the first '[' to the last ']' */
		if (*v == '[') {
			const char *close = NULL;
			for (const char *p = vend - 1; p > v + 1; p--)
				if (*p == ']') {
					close = p;
					break;
				}
			if (close != NULL) {
				const char *name = v + 1;
				size_t nlen = (size_t)(close - name);
				opt = NULL;
				if (nlen == strlen(SETTINGS_DEFAULT_SECTION) &&
				    memcmp(name, SETTINGS_DEFAULT_SECTION, nlen) == 0) {
					cur = &s->defaults;
					continue;
				}
				if (settings_find_section(s, name, nlen) != NULL) {
					rc = ds_error_set(err, DS_ECONFIG,
					                  "%s: line %lu: section [%.*s] "
					                  "already exists", what, lineno,
					                  (int)nlen, name);
					goto out;
				}
				cur = settings_add_section(s, name, nlen);
				if (cur == NULL)
					goto nomem;
				continue;
			}
		}
		if (cur == NULL) {
			rc = ds_error_set(err, DS_ECONFIG,
			                  "%s: line %lu: '%.*s' is outside any "
			                  "[section] (the file must start with a "
			                  "section header)", what, lineno,
			                  (int)(vend - v), v);
			goto out;
		}

		/* key <delim> value, split at the first ':' or '=' */
		{
			const char *d = v, *k_end, *val;
			while (d < vend && *d != ':' && *d != '=')
				d++;
			k_end = d;
			while (k_end > v && settings_isspace((unsigned char)k_end[-1]))
				k_end--;
			if (d == vend || k_end == v) {
				rc = ds_error_set(err, DS_ECONFIG,
				                  "%s: line %lu: '%.*s' is not "
				                  "\"key: value\" or \"key = value\"",
				                  what, lineno, (int)(vend - v), v);
				goto out;
			}
			if (settings_find_opt(cur, v, (size_t)(k_end - v)) != NULL) {
				rc = ds_error_set(err, DS_ECONFIG,
				                  "%s: line %lu: key '%.*s' in section "
				                  "[%s] already exists", what, lineno,
				                  (int)(k_end - v), v, cur->name);
				goto out;
			}
			val = d + 1;
			while (val < vend && settings_isspace((unsigned char)*val))
				val++;
			opt = settings_add_opt(cur, v, (size_t)(k_end - v), val,
			                       (size_t)(vend - val));
			if (opt == NULL)
				goto nomem;
		}
	}

	settings_rstrip_values(&s->defaults);
	for (size_t i = 0; i < s->nsecs; i++)
		settings_rstrip_values(&s->secs[i]);
	*out = s;
	s = NULL;
	goto out;
nomem:
	rc = ds_error_set(err, DS_ENOMEM, "%s: out of memory", what);
out:
	ds_settings_free(s);
	return rc;
}

int
ds_settings_load(const char *path, ds_settings **out, ds_error *err)
{
	unsigned char *buf = NULL;
	size_t len;
	int rc;

	*out = NULL;
	rc = ds_file_read(path, SETTINGS_MAX_FILE, &buf, &len, err);
	if (rc == DS_ECORRUPT)
		rc = ds_error_set(err, DS_ECONFIG, "%s: larger than %d bytes, "
		                  "not a settings file", path, SETTINGS_MAX_FILE);
	if (rc != DS_OK)
		return rc;
	rc = ds_settings_parse((const char *)buf, len, path, out, err);
	free(buf);
	return rc;
}

const char *
ds_settings_get(const ds_settings *s, const char *section, const char *key)
{
	const struct settings_section *sec;
	const struct settings_opt *opt;

	if (s == NULL || section == NULL || key == NULL)
		return NULL;
	if (strcmp(section, SETTINGS_DEFAULT_SECTION) == 0) {
		sec = &s->defaults;
	} else {
		sec = settings_find_section(s, section, strlen(section));
		if (sec == NULL)
			return NULL;
		opt = settings_find_opt(sec, key, strlen(key));
		if (opt != NULL)
			return opt->value;
		sec = &s->defaults;  /* configparser's fallback */
	}
	opt = settings_find_opt(sec, key, strlen(key));
	return opt ? opt->value : NULL;
}

int
ds_settings_foreach(const ds_settings *s, const char *section,
                    ds_settings_fn fn, void *ctx)
{
	const struct settings_section *sec;
	size_t i;
	int rc;

	if (s == NULL || section == NULL ||
	    strcmp(section, SETTINGS_DEFAULT_SECTION) == 0)
		return DS_OK;
	sec = settings_find_section(s, section, strlen(section));
	if (sec == NULL)
		return DS_OK;
	for (i = 0; i < sec->nopts; i++)
		if ((rc = fn(sec->opts[i].key, sec->opts[i].value, ctx)) != 0)
			return rc;
	/* configparser's options(): the section's, then [DEFAULT]'s */
	for (i = 0; i < s->defaults.nopts; i++) {
		const char *k = s->defaults.opts[i].key;

		if (settings_find_opt(sec, k, strlen(k)) != NULL)
			continue;
		if ((rc = fn(k, s->defaults.opts[i].value, ctx)) != 0)
			return rc;
	}
	return DS_OK;
}

/* Python int(): optional sign, decimal digits, single '_' between digits. */
static int
settings_parse_long(const char *v, long *out)
{
	const char *p = v;
	int neg = 0, ndigits = 0;
	unsigned long acc = 0, limit;

	if (*p == '+' || *p == '-')
		neg = *p++ == '-';
	limit = neg ? (unsigned long)LONG_MAX + 1 : (unsigned long)LONG_MAX;
	for (; *p != '\0'; p++) {
		if (*p == '_' && ndigits > 0 && p[1] >= '0' && p[1] <= '9')
			continue;
		if (*p < '0' || *p > '9')
			return -1;
		if (acc > (limit - (unsigned long)(*p - '0')) / 10)
			return -1;
		acc = acc * 10 + (unsigned long)(*p - '0');
		ndigits++;
	}
	if (ndigits == 0)
		return -1;
	if (neg)
		*out = acc == (unsigned long)LONG_MAX + 1 ? LONG_MIN
		                                          : -(long)acc;
	else
		*out = (long)acc;
	return 0;
}

int
ds_settings_python_int(const char *v, long *out)
{
	char buf[64];
	size_t a = 0, b = strlen(v);

	/* int() ignores surrounding whitespace */
	while (a < b && settings_isspace((unsigned char)v[a]))
		a++;
	while (b > a && settings_isspace((unsigned char)v[b - 1]))
		b--;
	if (b - a >= sizeof(buf))
		return -1;
	memcpy(buf, v + a, b - a);
	buf[b - a] = '\0';
	return settings_parse_long(buf, out);
}

int
ds_settings_get_int(const ds_settings *s, const char *section,
                    const char *key, long def, long *out, ds_error *err)
{
	const char *v = ds_settings_get(s, section, key);

	if (v == NULL) {
		*out = def;
		return DS_OK;
	}
	if (settings_parse_long(v, out) != 0)
		return ds_error_set(err, DS_ECONFIG,
		                    "%s: [%s] %s is '%s', not an integer",
		                    s->what, section, key, v);
	return DS_OK;
}

/* ---- ds_config_load ---- */

/* An integer setting with the default the original's mkds writes; refuses
 * values below min. */
static int
config_long(const ds_settings *s, const char *section, const char *key,
            long def, long min, long *out, ds_error *err)
{
	int rc = ds_settings_get_int(s, section, key, def, out, err);

	if (rc != DS_OK)
		return rc;
	if (*out < min)
		return ds_error_set(err, DS_ECONFIG,
		                    "%s: [%s] %s is %ld, it must be at least %ld",
		                    s->what, section, key, *out, min);
	return DS_OK;
}

/* A 0/1 switch: the original uses getint() and tests the integer. */
static int
config_flag(const ds_settings *s, const char *section, const char *key,
            int def, int *out, ds_error *err)
{
	long v;
	int rc = ds_settings_get_int(s, section, key, def, &v, err);

	if (rc == DS_OK)
		*out = v != 0;
	return rc;
}

static int
config_identity(const char *home, char identity[33], ds_error *err)
{
	char path[4096];
	unsigned char *buf = NULL;
	size_t len, n;
	int rc;

	rc = ds_path_join(path, sizeof(path), home, "config/identity", err);
	if (rc != DS_OK)
		return rc;
	rc = ds_file_read(path, 4096, &buf, &len, err);
	if (rc == DS_ENOTFOUND)
		return ds_error_set(err, DS_ENOTFOUND,
		                    "%s is not a complete DirectoryStorage (no "
		                    "config/identity)", home);
	if (rc == DS_ECORRUPT)
		return ds_error_set(err, DS_ECONFIG, "%s: larger than 4096 "
		                    "bytes, not an identity", path);
	if (rc != DS_OK)
		return rc;
	/* the first line is what counts */
	for (n = 0; n < len && buf[n] != '\n'; n++)
		;
	rc = DS_OK;
	if (n != 32) {
		rc = ds_error_set(err, DS_ECONFIG, "%s: identity must be 32 "
		                  "lowercase hex digits, its first line has %zu "
		                  "characters", path, n);
		goto out;
	}
	for (size_t i = 0; i < 32; i++) {
		unsigned char c = buf[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
			rc = ds_error_set(err, DS_ECONFIG, "%s: identity must be "
			                  "32 lowercase hex digits, character %zu is "
			                  "not one", path, i + 1);
			goto out;
		}
	}
	memcpy(identity, buf, 32);
	identity[32] = '\0';
out:
	free(buf);
	return rc;
}

int
ds_config_load(const char *home, ds_config *out, ds_error *err)
{
	char path[4096];
	ds_settings *s = NULL;
	const char *v;
	ds_config c;
	ds_error lerr;
	struct stat st;
	int rc;

	memset(&c, 0, sizeof(c));
	if (stat(home, &st) != 0)
		return ds_error_sys(err, errno, "open storage", home);
	if (!S_ISDIR(st.st_mode))
		return ds_error_set(err, DS_ENOTFOUND, "%s is not a "
		                    "DirectoryStorage (not a directory)", home);
	rc = ds_path_join(path, sizeof(path), home, "config/settings", err);
	if (rc != DS_OK)
		return rc;
	rc = ds_settings_load(path, &s, err);
	if (rc == DS_ENOTFOUND)
		return ds_error_set(err, DS_ENOTFOUND, "%s is not a "
		                    "DirectoryStorage (no config/settings)", home);
	if (rc != DS_OK)
		return rc;

	v = ds_settings_get(s, "structure", "version");
	if (v == NULL) {
		rc = ds_error_set(err, DS_ECONFIG, "%s: no [structure] version; "
		                  "this program reads storage version 0.11", path);
		goto out;
	}
	if (strcmp(v, "0.11") != 0) {
		rc = ds_error_set(err, DS_ECONFIG, "%s: storage version is %s, "
		                  "this program reads 0.11", path, v);
		goto out;
	}
	v = ds_settings_get(s, "structure", "format");
	if (v == NULL) {
		rc = ds_error_set(err, DS_ECONFIG, "%s: no [structure] format",
		                  path);
		goto out;
	}
	if (ds_layout_parse(v, &c.layout, &lerr) != DS_OK) {
		rc = ds_error_set(err, DS_ECONFIG, "%s: unknown format '%s' (known: "
		                  "bushy, chunky, lawn, flat)", path, v);
		goto out;
	}
	v = ds_settings_get(s, "storage", "classname");
	if (v == NULL) {
		rc = ds_error_set(err, DS_ECONFIG, "%s: no [storage] classname",
		                  path);
		goto out;
	}
	if (strcmp(v, "Full") != 0 && strcmp(v, "Minimal") != 0) {
		rc = ds_error_set(err, DS_ECONFIG, "%s: unknown storage class "
		                  "'%s' (known: Full, Minimal)", path, v);
		goto out;
	}
	memcpy(c.classname, v, strlen(v) + 1);

	/* Defaults: the values the original's mkds writes. */
	if ((rc = config_flag(s, "md5policy", "write", 1, &c.md5_write, err)) ||
	    (rc = config_flag(s, "md5policy", "read", 1, &c.md5_read, err)) ||
	    (rc = config_flag(s, "md5policy", "overwrite", 0, &c.md5_overwrite,
	                      err)) ||
	    (rc = config_flag(s, "md5policy", "undolog", 1, &c.md5_undolog,
	                      err)) ||
	    (rc = config_flag(s, "md5policy", "undo", 1, &c.md5_undo, err)) ||
	    (rc = config_flag(s, "md5policy", "history", 1, &c.md5_history,
	                      err)) ||
	    (rc = config_flag(s, "md5policy", "pack", 1, &c.md5_pack, err)))
		goto out;
	if ((rc = config_long(s, "journal", "flush_interval", 3600, 0,
	                      &c.flush_interval, err)) ||
	    (rc = config_long(s, "journal", "flush_file_threshold", 2000, 0,
	                      &c.flush_file_threshold, err)) ||
	    (rc = config_long(s, "journal", "flush_transaction_threshold", 200,
	                      0, &c.flush_transaction_threshold, err)) ||
	    /* the original blocks writes forever with no backlog token */
	    (rc = config_long(s, "journal", "backlog", 3, 1, &c.backlog, err)))
		goto out;
	if ((rc = config_flag(s, "filesystem", "sync", 1, &c.sync, err)) ||
	    (rc = config_flag(s, "filesystem", "quick_shutdown", 0,
	                      &c.quick_shutdown, err)) ||
	    (rc = config_flag(s, "posix", "dirsync", 1, &c.dirsync, err)))
		goto out;
	/* As the original: without sync, directories are not synced either. */
	if (!c.sync)
		c.dirsync = 0;
	if ((rc = config_long(s, "storage", "delay_delete", 864000, 0,
	                      &c.delay_delete, err)))
		goto out;
	/* Settings from 1.0 alpha 2 and earlier name it window_size. */
	if (ds_settings_get(s, "storage", "min_pack_time") == NULL &&
	    ds_settings_get(s, "storage", "window_size") != NULL)
		rc = config_long(s, "storage", "window_size", 600, 0,
		                 &c.min_pack_time, err);
	else
		rc = config_long(s, "storage", "min_pack_time", 600, 0,
		                 &c.min_pack_time, err);
	if (rc != DS_OK)
		goto out;

	rc = config_identity(home, c.identity, err);
	if (rc != DS_OK)
		goto out;
	*out = c;
out:
	ds_settings_free(s);
	return rc;
}
