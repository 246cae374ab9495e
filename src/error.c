/* error.c - status texts and filling ds_error values. */
#include <errno.h>
#include <stdio.h>
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
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
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
	ds_error_set(err, status, "%s %s: %s", op, path ? path : "",
	             strerror(errnum));
	if (err != NULL)
		err->sys_errno = errnum;
	return status;
}
