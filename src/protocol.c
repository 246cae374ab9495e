/*
 * protocol.c - the replication request, encoded by the replica side and
 * decoded by the master side, and the master's tagged stderr lines (see
 * protocol.h for the format and its extensions).
 */
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "protocol.h"

int
protocol_request_read(int fd, unsigned timeout, char **out, ds_error *err)
{
	char *buf;
	size_t len = 0;
	double deadline = ds_now() + (timeout ? timeout : 300);
	int rc = DS_OK;

	*out = NULL;
	if ((buf = malloc(PROTOCOL_REQUEST_MAX + 1)) == NULL)
		return ds_error_set(err, DS_ENOMEM, "request: out of memory");
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		double left = deadline - ds_now();
		ssize_t n;
		int pr;

		if (left <= 0) {
			rc = ds_error_set(err, DS_EPROTO, "malformed request: not "
			                  "complete after %u seconds",
			                  timeout ? timeout : 300);
			goto out;
		}
		pr = poll(&p, 1, (int)(left * 1000) + 1);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0) {
			rc = ds_error_sys(err, errno, "poll", "request");
			goto out;
		}
		if (pr == 0)
			continue;
		n = read(fd, buf + len, PROTOCOL_REQUEST_MAX + 1 - len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0) {
			rc = ds_error_sys(err, errno, "read", "request");
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > PROTOCOL_REQUEST_MAX) {
			rc = ds_error_set(err, DS_EPROTO, "malformed request: more "
			                  "than %d bytes", PROTOCOL_REQUEST_MAX);
			goto out;
		}
	}
	buf[len] = '\0';
	if (memchr(buf, '\0', len) != NULL) {
		rc = ds_error_set(err, DS_EPROTO, "malformed request: holds a "
		                  "NUL byte");
		goto out;
	}
	*out = buf;
	buf = NULL;
out:
	free(buf);
	return rc;
}

/* Python's str.strip() in place. */
static char *
protocol_strip(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\v' ||
	       *s == '\f')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
	                 e[-1] == '\v' || e[-1] == '\f'))
		*--e = '\0';
	return s;
}

/* Split buf into at most max stripped lines. */
static size_t
protocol_lines(char *buf, char **lines, size_t max)
{
	size_t n = 0;
	char *p = buf;

	while (*p != '\0' && n < max) {
		char *nl = strchr(p, '\n');
		if (nl != NULL)
			*nl = '\0';
		lines[n++] = protocol_strip(p);
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	return n;
}

/* "relink <md5 hex> <16 hex digits>": 1 parsed, -1 malformed. */
static int
protocol_relink(const char *line, struct protocol_request *req)
{
	char mdhex[64], prevhex[64], extra;

	if (sscanf(line, "relink %63s %63s %c", mdhex, prevhex, &extra) != 2 ||
	    ds_hex_decode(mdhex, req->relink_md5, 16) != DS_OK ||
	    strlen(prevhex) != 16)
		return -1;
	memcpy(req->relink_prev, prevhex, 17);
	return 1;
}

int
protocol_request_decode(char *buf, struct protocol_request *req,
                        ds_error *err)
{
	char *lines[PROTOCOL_LINES_MAX];
	size_t n;

	memset(req, 0, sizeof(*req));
	n = protocol_lines(buf, lines, PROTOCOL_LINES_MAX);
	if (n >= 1 && strcmp(lines[0], "replica init 0") == 0) {
		req->init = 1;
		req->report_held = 1;
		return DS_OK;
	}
	if (n < 1 || strcmp(lines[0], "replica request 0") != 0)
		return ds_error_set(err, DS_EPROTO, "malformed request: the "
		                    "first line is not 'replica request 0'");
	if (n < 4)
		return ds_error_set(err, DS_EPROTO, "malformed request: %zu "
		                    "lines, 4 expected", n);
	req->identity = lines[1];
	req->ids_valid = ds_id_parse(lines[2], &req->tid) == DS_OK &&
	                 ds_hex_decode(lines[3], req->md5, 16) == DS_OK;
	for (size_t i = 4; i < n; i++) {
		/* the last relink line counts */
		if (strncmp(lines[i], "relink ", 7) == 0)
			req->relink = protocol_relink(lines[i], req);
		else if (strcmp(lines[i], "report held") == 0)
			req->report_held = 1;
		else if (lines[i][0] != '\0')
			req->other[req->nother++] = lines[i];
	}
	return DS_OK;
}

int
protocol_request_encode(const char *identity, ds_tid tid,
                        const unsigned char *txn, size_t txnlen, char *out,
                        size_t outsz, ds_error *err)
{
	unsigned char md[16], tb[8];
	char hex[33], tidhex[17];
	int n, k;

	ds_put_u64(tb, tid);
	ds_hex_lower(tb, 8, tidhex);
	ds_md5(txn ? txn : (const unsigned char *)"", txn ? txnlen : 0, md);
	ds_hex_lower(md, 16, hex);
	n = snprintf(out, outsz, "replica request 0\n%s\n%s\n%s\n", identity,
	             tidhex, hex);
	if (n < 0 || (size_t)n >= outsz)
		return ds_error_set(err, DS_EINVAL, "request: too long");
	if (txn != NULL && txnlen >= 32) {
		/* our extension: the master may tell "only the back pointer
		 * differs" (rewritten by its pack) from divergence */
		unsigned char *z = malloc(txnlen);
		char prev[17], zhex[33];

		if (z == NULL)
			return ds_error_set(err, DS_ENOMEM, "request: out of "
			                    "memory");
		memcpy(z, txn, txnlen);
		memset(z + 24, 0, 8);
		ds_md5(z, txnlen, md);
		free(z);
		ds_hex_lower(md, 16, zhex);
		ds_hex_lower(txn + 24, 8, prev);
		k = snprintf(out + n, outsz - (size_t)n, "relink %s %s\n", zhex,
		             prev);
		if (k < 0 || (size_t)k >= outsz - (size_t)n)
			return ds_error_set(err, DS_EINVAL, "request: too long");
		n += k;
	}
	k = snprintf(out + n, outsz - (size_t)n, "report held\n");
	if (k < 0 || (size_t)k >= outsz - (size_t)n)
		return ds_error_set(err, DS_EINVAL, "request: too long");
	return DS_OK;
}

int
protocol_init_encode(char *out, size_t outsz, ds_error *err)
{
	if ((size_t)snprintf(out, outsz, "replica init 0\n") >= outsz)
		return ds_error_set(err, DS_EINVAL, "request: too long");
	return DS_OK;
}

void
protocol_report_encode(double held, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s%.3f\n", PROTOCOL_REPORT_HELD,
	         held >= 0 ? held : 0.0);
}

int
protocol_report_decode(const char *line, double *held)
{
	size_t k = strlen(PROTOCOL_REPORT_HELD);
	char *end;
	double v;

	if (strncmp(line, PROTOCOL_REPORT_HELD, k) != 0)
		return 0;
	errno = 0;
	v = strtod(line + k, &end);
	if (end == line + k || *end != '\0' || errno != 0 || !(v >= 0))
		return 0;
	*held = v;
	return 1;
}

const char *
protocol_master_text(const char *line)
{
	size_t k = strlen(PROTOCOL_MASTER_PREFIX), n = 0;

	if (strncmp(line, PROTOCOL_MASTER_PREFIX, k) == 0)
		line += k;
	/* an identifier, dotted, up to ": " */
	while (isalnum((unsigned char)line[n]) || line[n] == '_' ||
	       line[n] == '.')
		n++;
	if (n > 0 && isupper((unsigned char)line[0]) && line[n] == ':' &&
	    line[n + 1] == ' ' &&
	    ((n >= 5 && strncmp(line + n - 5, "Error", 5) == 0) ||
	     (n >= 9 && strncmp(line + n - 9, "Exception", 9) == 0)))
		return line + n + 2;
	return line;
}
