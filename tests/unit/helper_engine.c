/* helper_engine.c - see helper_engine.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "helper_engine.h"
#include "helper_fixture.h"
#include "internal.h"

static char **engine_lines;
static size_t engine_nlines, engine_caplines, engine_nfiles, engine_rootlen;

static int
engine_walk(const char *path, const struct stat *st, int type,
            struct FTW *ftw)
{
	char line[8192], md5[33] = "-";
	(void)ftw;
	if (strlen(path) <= engine_rootlen)
		return 0;
	if (type == FTW_F) {
		size_t len;
		unsigned char *b = engine_slurp(path, &len);
		fixture_md5_hex(b, len, md5);
		free(b);
		engine_nfiles++;
	}
	snprintf(line, sizeof(line), "%c %04o %s %s",
	         type == FTW_F ? 'f' : type == FTW_D ? 'd' : '?',
	         (unsigned)(st->st_mode & 07777), path + engine_rootlen, md5);
	if (engine_nlines == engine_caplines) {
		engine_caplines = engine_caplines ? 2 * engine_caplines : 256;
		engine_lines = realloc(engine_lines,
		                       engine_caplines * sizeof(char *));
		assert_non_null(engine_lines);
	}
	engine_lines[engine_nlines] = strdup(line);
	assert_non_null(engine_lines[engine_nlines]);
	engine_nlines++;
	return 0;
}

static int
engine_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void
engine_tree_digest(const char *dir, char out[33], size_t *count)
{
	size_t total = 0;
	char *all, *p;

	engine_lines = NULL;
	engine_nlines = engine_caplines = engine_nfiles = 0;
	engine_rootlen = strlen(dir);
	if (nftw(dir, engine_walk, 32, FTW_PHYS) != 0)
		fail_msg("walk %s: %s", dir, strerror(errno));
	qsort(engine_lines, engine_nlines, sizeof(char *), engine_cmp);
	for (size_t i = 0; i < engine_nlines; i++)
		total += strlen(engine_lines[i]) + 1;
	all = malloc(total + 1);
	assert_non_null(all);
	p = all;
	for (size_t i = 0; i < engine_nlines; i++) {
		size_t n = strlen(engine_lines[i]);
		memcpy(p, engine_lines[i], n);
		p[n] = '\n';
		p += n + 1;
		free(engine_lines[i]);
	}
	free(engine_lines);
	engine_lines = NULL;
	fixture_md5_hex(all, total, out);
	free(all);
	if (count)
		*count = engine_nfiles;
}

size_t
engine_dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	if (d == NULL)
		fail_msg("opendir %s: %s", dir, strerror(errno));
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

unsigned char *
engine_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *b;
	long n;

	if (f == NULL)
		fail_msg("open %s: %s", path, strerror(errno));
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	b = malloc((size_t)n + 1);
	assert_non_null(b);
	if (n > 0 && fread(b, 1, (size_t)n, f) != (size_t)n)
		fail_msg("read %s", path);
	fclose(f);
	b[n] = '\0';
	if (len)
		*len = (size_t)n;
	return b;
}

int
engine_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

unsigned
engine_mode(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		fail_msg("stat %s: %s", path, strerror(errno));
	return (unsigned)(st.st_mode & 07777);
}

void
engine_set_setting(const char *home, const char *key, const char *value)
{
	char path[4096], want[256];
	size_t len, klen;
	unsigned char *b;
	char *line, *eol;
	FILE *f;

	snprintf(path, sizeof(path), "%s/config/settings", home);
	b = engine_slurp(path, &len);
	snprintf(want, sizeof(want), "\n%s:", key);
	klen = strlen(want);
	line = strstr((char *)b, want);
	if (line == NULL)
		fail_msg("%s has no '%s:' line", path, key);
	eol = strchr(line + 1, '\n');
	f = fopen(path, "wb");
	assert_non_null(f);
	fwrite(b, 1, (size_t)(line - (char *)b) + klen, f);
	fprintf(f, " %s", value);
	if (eol)
		fputs(eol, f);
	fclose(f);
	free(b);
}

char *
engine_mkds(const char *scratch, const char *name, const char *fmt)
{
	char *home = malloc(4096);
	ds_error err;

	assert_non_null(home);
	snprintf(home, 4096, "%s/%s", scratch, name);
	ds_error_clear(&err);
	if (ds_storage_create(home, "Full", fmt, &err) != DS_OK)
		fail_msg("mkds %s: %s", home, err.msg);
	return home;
}

void
engine_log_cb(int level, const char *msg, void *ctx)
{
	struct engine_log *b = ctx;
	int n = snprintf(b->text + b->len, sizeof(b->text) - b->len, "%d %s\n",
	                 level, msg);

	if (n > 0 && b->len + (size_t)n < sizeof(b->text))
		b->len += (size_t)n;
}

int
engine_lockable(const char *home, const char *which)
{
	char path[4096];
	ds_lock *l = NULL;
	ds_error err;
	int rc;

	snprintf(path, sizeof(path), "%s/misc/%s", home, which);
	rc = ds_lock_acquire(path, &l, &err);
	ds_lock_release(l);
	return rc == DS_OK;
}
