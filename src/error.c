/*
 * error.c - status texts and filling ds_error values.
 *
 * A message never loses its end: when it does not fit its buffer (a path
 * near PATH_MAX is longer than DS_ERROR_MSG_MAX), the middle of its
 * longest words (the paths) is replaced by "...", so that the operation,
 * both ends of each path and the reason all survive (ds_msg_vformat).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char *const status_text[DS_ESTATUS_MAX] = {
	[DS_OK] = "success",
	[DS_EIO] = "I/O error",
	[DS_ENOMEM] = "out of memory",
	[DS_EINVAL] = "invalid argument",
	[DS_ECORRUPT] = "corrupt file",
	[DS_ENOTFOUND] = "not found",
	[DS_EEXIST] = "already exists",
	[DS_ELOCKED] = "locked by another process",
	[DS_ECONFIG] = "configuration refused",
	[DS_ECONFLICT] = "write conflict",
	[DS_ESTATE] = "not allowed in this state",
	[DS_EPROTO] = "protocol error",
	[DS_EREFUSED] = "refused",
	[DS_EBUSY] = "busy, try again later",
};

const char *
ds_strerror(int status)
{
	if (status < 0 || status >= DS_ESTATUS_MAX)
		return "unknown status";
	return status_text[status];
}

/* The longest run of non-blank bytes in s[0..n), never one that is
 * shorter than min: its start in *at, its length returned (0: none). */
static size_t
error_longest_word(const char *s, size_t n, size_t min, size_t *at)
{
	size_t best = 0, i = 0;

	while (i < n) {
		size_t j = i;

		while (j < n && s[j] != ' ')
			j++;
		if (j - i > best && j - i >= min) {
			best = j - i;
			*at = i;
		}
		i = j + 1;
	}
	return best;
}

void
ds_msg_vformat(char *out, size_t outsz, const char *fmt, va_list ap)
{
	static const char dots[] = "...";
	char *full = NULL;
	size_t n;
	int len;

	if (outsz == 0)
		return;
	len = vasprintf(&full, fmt, ap);
	if (len < 0) {
		snprintf(out, outsz, "(no memory to format a message: %s)", fmt);
		return;
	}
	n = (size_t)len;
	/* shorten the longest words, keeping each one's two ends, until the
	 * message fits; a word keeps at least 16 bytes on each side */
	while (n >= outsz) {
		size_t at = 0, w, cut, keep;

		w = error_longest_word(full, n, 32 + sizeof(dots), &at);
		if (w == 0)
			break;
		cut = n - (outsz - 1) + (sizeof(dots) - 1);
		if (cut > w - 32)
			cut = w - 32;
		if (cut <= sizeof(dots) - 1)
			break;
		keep = (w - cut) / 2;           /* bytes kept at the head */
		memcpy(full + at + keep, dots, sizeof(dots) - 1);
		memmove(full + at + keep + sizeof(dots) - 1,
		        full + at + keep + cut, n - (at + keep + cut) + 1);
		n -= cut - (sizeof(dots) - 1);
	}
	if (n >= outsz) {
		/* no word long enough: keep the head and the tail */
		size_t tail = (outsz - 1 - (sizeof(dots) - 1)) / 2;
		size_t head = outsz - 1 - (sizeof(dots) - 1) - tail;

		memcpy(out, full, head);
		memcpy(out + head, dots, sizeof(dots) - 1);
		memcpy(out + head + sizeof(dots) - 1, full + n - tail, tail);
		out[outsz - 1] = '\0';
	} else {
		memcpy(out, full, n + 1);
	}
	free(full);
}

void
ds_msg_format(char *out, size_t outsz, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ds_msg_vformat(out, outsz, fmt, ap);
	va_end(ap);
}

void
ds_error_clear(ds_error *err)
{
	if (err == NULL)
		return;
	err->status = DS_OK;
	err->sys_errno = 0;
	err->msg[0] = '\0';
}

int
ds_error_set(ds_error *err, int status, const char *fmt, ...)
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

int
ds_error_prefix(ds_error *err, int status, const char *fmt, ...)
{
	char ctx[DS_ERROR_MSG_MAX], old[DS_ERROR_MSG_MAX];
	va_list ap;

	if (err == NULL)
		return status;
	va_start(ap, fmt);
	ds_msg_vformat(ctx, sizeof(ctx), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	old[sizeof(old) - 1] = '\0';
	err->status = status;
	ds_msg_format(err->msg, sizeof(err->msg), "%s: %s", ctx, old);
	return status;
}

int
ds_error_sys(ds_error *err, int errnum, const char *op, const char *path)
{
	int status;

	switch (errnum) {
	case ENOENT:
		status = DS_ENOTFOUND;
		break;
	case EEXIST:
		status = DS_EEXIST;
		break;
	case ENOMEM:
		status = DS_ENOMEM;
		break;
	default:
		status = DS_EIO;
	}
	/* ELOOP: every file the library opens is a plain file or directory
	 * of a storage, opened with O_NOFOLLOW where a symlink must not be
	 * followed; there ELOOP means the last component is a symlink, which
	 * strerror's "Too many levels of symbolic links" hides */
	ds_error_set(err, status, "%s %s: %s", op, path ? path : "",
	             errnum == ELOOP ? "is a symlink (not followed)" :
	             errnum == ENAMETOOLONG ? "path too long" :
	             strerror(errnum));
	if (err != NULL)
		err->sys_errno = errnum;
	return status;
}

void
ds_log(ds_log_fn fn, void *ctx, int level, const char *fmt, ...)
{
	char msg[DS_ERROR_MSG_MAX];
	va_list ap;

	if (fn == NULL)
		return;
	va_start(ap, fmt);
	ds_msg_vformat(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fn(level, msg, ctx);
}
