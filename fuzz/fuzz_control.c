/*
 * fuzz_control.c - the control socket's line protocol (control.c): the
 * request parser, the reply parser, and a live server, a copy of
 * bushy-master opened once with DS_OPEN_CONTROL in this process.
 *
 * Input: a control byte, then bytes. Control bit 0 clear: the bytes are
 * split at '\n' and every line is given to both parsers; set: the bytes
 * are also sent as they are to the live server over a new connection.
 *
 * The model of a request line (a trailing '\r' dropped): "status", or
 * "enter CODE" / "leave CODE" with CODE 1..DS_CONTROL_CODE_MAX bytes in
 * 0x21..0x7e; nothing else, and nothing longer than CONTROL_LINE_MAX.
 *
 * Invariants checked: the request parser accepts exactly the model's
 * lines, with the op and the code the line spells; a refusal is DS_EINVAL
 * with a message and op 0. The reply parser: DS_OK only for "ok" or
 * "ok TEXT" (TEXT printable, as given), else one of the kinds' statuses
 * or DS_EPROTO, with a message. The live server answers each complete
 * line with one reply that the reply parser accepts as well-formed (ok,
 * or an error of a known kind), and a request that the model refuses
 * gets "error invalid"; a line over the limit gets "error invalid" and
 * the connection is closed; after the connection closes the storage
 * leaves any snapshot mode the input entered (status "-" again, bounded
 * wait), keeps serving, and its A/x.serial is unchanged (nobody commits).
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helper.h"

static char home[PATH_MAX], sock[PATH_MAX + 32];
static ds_storage *st;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	ds_error err;

	(void)argc;
	(void)argv;
	snprintf(home, sizeof(home), "%s/home", fz_scratch());
	fz_copy_tree(fz_fixture("bushy-master"), home);
	snprintf(sock, sizeof(sock), "%s/misc/control", home);
	ds_error_clear(&err);
	if (ds_storage_open(home, DS_OPEN_CONTROL | DS_OPEN_NOSYNC, &st,
	                    &err) != DS_OK) {
		fprintf(stderr, "fuzz_control: open: %s\n", err.msg);
		abort();
	}
	return 0;
}

/* The model of a request line: 0 refused, else the op. */
static int
control_model(const char *line, size_t len)
{
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len > CONTROL_LINE_MAX)
		return 0;
	if (len == 6 && memcmp(line, "status", 6) == 0)
		return DS_CONTROL_STATUS;
	if (len < 7 || len - 6 > DS_CONTROL_CODE_MAX)
		return 0;
	for (size_t i = 6; i < len; i++)
		if ((unsigned char)line[i] <= 0x20 ||
		    (unsigned char)line[i] >= 0x7f)
			return 0;
	if (memcmp(line, "enter ", 6) == 0)
		return DS_CONTROL_ENTER;
	if (memcmp(line, "leave ", 6) == 0)
		return DS_CONTROL_LEAVE;
	return 0;
}

static void
check_request(const char *line, size_t len)
{
	struct ds_control_req req;
	ds_error err;
	int want = control_model(line, len), rc;

	ds_error_clear(&err);
	rc = ds_control_parse_request(line, len, &req, &err);
	FZ_CHECK((rc == DS_OK) == (want != 0), "parser %d, model %d", rc, want);
	if (rc != DS_OK) {
		fz_check_error(rc, &err, "ds_control_parse_request");
		FZ_CHECK(rc == DS_EINVAL && req.op == 0, "refusal %d op %d", rc,
		         req.op);
		return;
	}
	FZ_CHECK(req.op == want, "op %d, model %d", req.op, want);
	if (want != DS_CONTROL_STATUS) {
		size_t n = strlen(req.code);
		size_t l = len > 0 && line[len - 1] == '\r' ? len - 1 : len;
		FZ_CHECK(n == l - 6 && memcmp(req.code, line + 6, n) == 0,
		         "code is not the line's");
	}
}

static int
check_reply(const char *line, size_t len)
{
	char text[CONTROL_LINE_MAX + 64];
	ds_error err;
	int rc;

	ds_error_clear(&err);
	memset(text, 'X', sizeof(text));
	rc = ds_control_parse_reply(line, len, text, sizeof(text), &err);
	if (rc == DS_OK) {
		size_t l = len > 0 && line[len - 1] == '\r' ? len - 1 : len;
		FZ_CHECK(l >= 2 && memcmp(line, "ok", 2) == 0 &&
		         (l == 2 || line[2] == ' '), "accepted a non-ok reply");
		FZ_CHECK(strlen(text) < sizeof(text), "text not terminated");
		FZ_CHECK(l == 2 ? text[0] == '\0' : strlen(text) == l - 3,
		         "text length");
		for (size_t i = 0; text[i]; i++)
			FZ_CHECK(text[i] >= 0x20 && text[i] < 0x7f,
			         "unprintable text");
		return rc;
	}
	fz_check_error(rc, &err, "ds_control_parse_reply");
	FZ_CHECK(rc == DS_EBUSY || rc == DS_ESTATE || rc == DS_EINVAL ||
	         rc == DS_EREFUSED || rc == DS_EIO || rc == DS_EPROTO,
	         "status %d", rc);
	FZ_CHECK(rc == DS_EPROTO || memcmp(line, "error ", 6) == 0,
	         "an error kind without 'error '");
	return rc;
}

static int
readline_fd(int fd, char *buf, size_t bufsz, size_t *len)
{
	size_t n = 0;

	for (;;) {
		struct pollfd p = {fd, POLLIN, 0};
		ssize_t r;
		char ch;

		int pr = poll(&p, 1, 60000);

		/* libFuzzer's timeout alarm interrupts poll now and then */
		if (pr < 0 && errno == EINTR)
			continue;
		FZ_CHECK(pr == 1, "the server did not answer (%d)", pr);
		r = recv(fd, &ch, 1, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return 0;
		if (ch == '\n') {
			*len = n;
			buf[n] = '\0';
			return 1;
		}
		FZ_CHECK(n + 1 < bufsz, "reply too long");
		buf[n++] = ch;
	}
}

static void
current(char *out, size_t outsz)
{
	ds_error err;
	int fd;

	ds_error_clear(&err);
	FZ_CHECK(ds_control_connect(sock, geteuid(), 60, &fd, &err) == DS_OK,
	         "connect: %s", err.msg);
	FZ_CHECK(ds_control_call(fd, sock, "status", 60, out, outsz, &err) ==
	         DS_OK, "status: %s", err.msg);
	close(fd);
}

static void
live(const uint8_t *data, size_t size)
{
	char line[8192], code[300];
	const char *p = (const char *)data, *end = p + size, *nl;
	size_t len;
	ds_error err;
	int fd, closed = 0;

	ds_error_clear(&err);
	FZ_CHECK(ds_control_connect(sock, geteuid(), 60, &fd, &err) == DS_OK,
	         "connect: %s", err.msg);
	/* one line at a time, each reply read before the next is sent */
	while (!closed && p < end) {
		size_t l;
		nl = memchr(p, '\n', (size_t)(end - p));
		l = nl != NULL ? (size_t)(nl - p) + 1 : (size_t)(end - p);
		if (send(fd, p, l, MSG_NOSIGNAL) != (ssize_t)l)
			break;   /* closed by the server: a line over the limit */
		if (nl == NULL && l <= CONTROL_LINE_MAX)
			break;   /* an incomplete line: no reply due */
		if (!readline_fd(fd, line, sizeof(line), &len)) {
			closed = 1;
			break;
		}
		FZ_CHECK(check_reply(line, len) != DS_EPROTO,
		         "the server's reply is malformed: %s", line);
		if (nl == NULL || (size_t)(nl - p) > CONTROL_LINE_MAX) {
			/* the server's buffer holds CONTROL_LINE_MAX bytes
			 * and the newline */
			FZ_CHECK(strncmp(line, "error invalid", 13) == 0,
			         "an overlong line got %s", line);
			closed = 1;
		} else if (control_model(p, (size_t)(nl - p)) == 0) {
			FZ_CHECK(strncmp(line, "error invalid", 13) == 0,
			         "a refused line got %s", line);
		}
		p += l;
	}
	close(fd);
	/* the lease ends with the connection */
	for (int i = 0;; i++) {
		current(code, sizeof(code));
		if (strcmp(code, "-") == 0)
			break;
		FZ_CHECK(i < 6000, "snapshot mode %s stays after the hang-up",
		         code);
		usleep(10000);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p, *end, *nl;
	ds_tid before;

	if (size < 1)
		return 0;
	p = (const char *)data + 1;
	end = (const char *)data + size;
	while (p <= end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		check_request(p, l);
		check_reply(p, l);
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	if (data[0] & 1) {
		before = ds_storage_last_tid(st);
		live(data + 1, size - 1);
		FZ_CHECK(ds_storage_last_tid(st) == before, "x.serial moved");
	}
	return 0;
}
