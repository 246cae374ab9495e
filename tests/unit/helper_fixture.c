/* helper_fixture.c - see helper_fixture.h. */
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "dirstorage.h"
#include "helper_fixture.h"

static const char *
fixture_env(const char *var)
{
	const char *v = getenv(var);

	if (v == NULL || *v == '\0')
		fail_msg("environment variable %s is not set (run through ctest)",
		         var);
	return v;
}

const char *
fixture_dir(void)
{
	return fixture_env("DS_FIXTURE_DIR");
}

const char *
fixture_manifest_dir(void)
{
	return fixture_env("DS_MANIFEST_DIR");
}

const char *
fixture_bin(void)
{
	return fixture_env("DS_BIN");
}

void
fixture_home(const char *name, char *out, size_t outsz)
{
	int n = snprintf(out, outsz, "%s/%s", fixture_dir(), name);

	if (n < 0 || (size_t)n >= outsz)
		fail_msg("fixture path for %s too long", name);
}

json_t *
fixture_json_load(const char *file)
{
	char path[4096];
	json_error_t jerr;
	json_t *j;
	int n;

	n = snprintf(path, sizeof(path), "%s/%s", fixture_manifest_dir(), file);
	if (n < 0 || (size_t)n >= sizeof(path))
		fail_msg("manifest path for %s too long", file);
	j = json_load_file(path, 0, &jerr);
	if (j == NULL)
		fail_msg("load %s: %s (line %d)", path, jerr.text, jerr.line);
	return j;
}

json_t *
fixture_manifest_load(const char *name)
{
	char file[512];
	int n = snprintf(file, sizeof(file), "%s.manifest.json", name);

	if (n < 0 || (size_t)n >= sizeof(file))
		fail_msg("manifest name for %s too long", name);
	return fixture_json_load(file);
}

char **
fixture_names(size_t *count)
{
	json_t *pairs = fixture_json_load("pairs.json");
	json_t *list = json_object_get(pairs, "fixtures");
	char **names;
	size_t i, n;

	if (!json_is_array(list))
		fail_msg("pairs.json: no \"fixtures\" array");
	n = json_array_size(list);
	names = calloc(n + 1, sizeof(*names));
	if (names == NULL)
		fail_msg("out of memory");
	for (i = 0; i < n; i++) {
		names[i] = strdup(fixture_jstr(json_array_get(list, i), "name"));
		if (names[i] == NULL)
			fail_msg("out of memory");
	}
	json_decref(pairs);
	if (count != NULL)
		*count = n;
	return names;
}

void
fixture_names_free(char **names)
{
	if (names == NULL)
		return;
	for (size_t i = 0; names[i] != NULL; i++)
		free(names[i]);
	free(names);
}

static json_t *
fixture_member(const json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL)
		fail_msg("JSON object has no member \"%s\"", key);
	return v;
}

const char *
fixture_jstr(const json_t *obj, const char *key)
{
	json_t *v = fixture_member(obj, key);

	if (!json_is_string(v))
		fail_msg("JSON member \"%s\" is not a string", key);
	return json_string_value(v);
}

long long
fixture_jint(const json_t *obj, const char *key)
{
	json_t *v = fixture_member(obj, key);

	if (!json_is_integer(v))
		fail_msg("JSON member \"%s\" is not an integer", key);
	return json_integer_value(v);
}

int
fixture_jbool(const json_t *obj, const char *key)
{
	json_t *v = fixture_member(obj, key);

	if (!json_is_boolean(v))
		fail_msg("JSON member \"%s\" is not a boolean", key);
	return json_is_true(v);
}

uint64_t
fixture_jid(const json_t *obj, const char *key)
{
	const char *s = fixture_jstr(obj, key);
	uint64_t v = 0;

	if (ds_id_parse(s, &v) != DS_OK)
		fail_msg("JSON member \"%s\" = \"%s\" is not a 16-hex id", key, s);
	return v;
}

unsigned
fixture_jmode(const json_t *obj, const char *key)
{
	const char *s = fixture_jstr(obj, key);
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 8);
	if (errno != 0 || *s == '\0' || *end != '\0' || v > 07777)
		fail_msg("JSON member \"%s\" = \"%s\" is not an octal mode", key, s);
	return (unsigned)v;
}

char *
fixture_scratch_dir(void)
{
	const char *tmp = getenv("TMPDIR");
	char *dir;

	if (tmp == NULL || *tmp == '\0')
		tmp = "/tmp";
	if (asprintf(&dir, "%s/ds-test-XXXXXX", tmp) < 0)
		fail_msg("out of memory");
	if (mkdtemp(dir) == NULL)
		fail_msg("mkdtemp %s: %s", dir, strerror(errno));
	return dir;
}

char *
fixture_copy(const char *name, const char *dest_dir)
{
	char src[4096], *dst;
	pid_t pid;
	int status;

	fixture_home(name, src, sizeof(src));
	if (asprintf(&dst, "%s/%s", dest_dir, name) < 0)
		fail_msg("out of memory");
	pid = fork();
	if (pid < 0)
		fail_msg("fork: %s", strerror(errno));
	if (pid == 0) {
		execlp("cp", "cp", "-a", "--", src, dst, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			fail_msg("waitpid: %s", strerror(errno));
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("cp -a %s %s failed (status %d)", src, dst, status);
	return dst;
}

static int
fixture_remove_one(const char *path, const struct stat *st, int type,
                   struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP) {
		/* the tree may hold read-only directories: make them writable */
		if (rmdir(path) != 0) {
			chmod(path, 0700);
			if (rmdir(path) != 0)
				fail_msg("rmdir %s: %s", path, strerror(errno));
		}
	} else if (unlink(path) != 0) {
		fail_msg("unlink %s: %s", path, strerror(errno));
	}
	return 0;
}

void
fixture_remove_tree(const char *path)
{
	struct stat st;

	if (path == NULL || lstat(path, &st) != 0)
		return;
	if (nftw(path, fixture_remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
		fail_msg("remove %s: %s", path, strerror(errno));
}

void
fixture_write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		fail_msg("cannot create %s", path);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

void
fixture_md5_hex(const void *data, size_t len, char out[33])
{
	unsigned char d[16];

	ds_md5(data, len, d);
	ds_hex_lower(d, 16, out);
}
