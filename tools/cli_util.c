/* cli_util.c - quoting, tid times, JSON values, storage lookup for tools. */
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_util.h"
#include "internal.h"

int
cli_error_set(ds_error *err, int status, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return status;
	err->status = status;
	err->sys_errno = 0;
	va_start(ap, fmt);
	ds_msg_vformat(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return status;
}

void
cli_print_quoted(FILE *out, const char *s, size_t n)
{
	fputc('"', out);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\\' || c == '"')
			fprintf(out, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(out, "\\x%02x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

json_t *
cli_json_bytes(const char *s, size_t n)
{
	json_t *j;
	char *esc;
	size_t k = 0;

	if (memchr(s, '\0', n) == NULL) {
		j = json_stringn(s, n);   /* NULL when not valid UTF-8 */
		if (j != NULL)
			return j;
	}
	esc = malloc(4 * n + 1);
	if (esc == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\\') {
			esc[k++] = '\\';
			esc[k++] = '\\';
		} else if (c < 0x20 || c >= 0x7f) {
			snprintf(esc + k, 5, "\\x%02x", c);
			k += 4;
		} else {
			esc[k++] = (char)c;
		}
	}
	j = json_stringn(esc, k);
	free(esc);
	return j;
}

void
cli_tid_time(ds_tid tid, char out[32])
{
	if (tid == 0) {
		snprintf(out, 32, "(none)");
		return;
	}
	ds_tid_format(tid, out);
}

json_t *
cli_json_id(uint64_t id)
{
	char hex[17];

	ds_id_format(id, hex);
	return json_string(hex);
}

int
cli_find_home(const char *path, char *home, size_t homesz, char *rel,
              size_t relsz)
{
	char real[PATH_MAX], probe[PATH_MAX + 32];
	struct stat st;
	size_t len;

	if (realpath(path, real) == NULL)
		return -1;
	len = strlen(real);
	/* Try each proper ancestor, nearest first. */
	while (len > 1) {
		while (len > 0 && real[len - 1] != '/')
			len--;
		if (len == 0)
			return -1;
		if (len > 1)
			len--;          /* drop the slash, keep "/" itself */
		snprintf(probe, sizeof(probe), "%.*s/config/settings",
		         (int)len, real);
		if (len == 1)
			snprintf(probe, sizeof(probe), "/config/settings");
		if (stat(probe, &st) == 0 && S_ISREG(st.st_mode)) {
			if (len + 1 > homesz)
				return -1;
			memcpy(home, real, len);
			home[len] = '\0';
			if ((int)snprintf(rel, relsz, "%s",
			                  real + len + (len > 1 ? 1 : 0)) >= (int)relsz)
				return -1;
			return 0;
		}
		if (len == 1)
			break;
	}
	return -1;
}
