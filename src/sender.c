/*
 * sender.c - the master side's sender thread: copies the spool (the
 * increment being written, inside snapshot mode) to the replica while it
 * grows, following the writer's offset. The transfer (and the replica's
 * checking and writing) overlaps the master's reading, yet snapshot mode
 * is held for as long as the local disk needs, never for as long as the
 * network needs: the writer never waits for the sender (the spool absorbs
 * a slow network), and the sender never holds its mutex while it reads or
 * writes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sender.h"

/* The sender thread. It reads the spool with pread at its own offset and
 * never holds mu while reading or writing, so the writer (in snapshot
 * mode) never waits for the network. */
static void *
sender_main(void *arg)
{
	struct sender *s = arg;
	ds_error e;

	ds_error_clear(&e);
	for (;;) {
		uint64_t avail;
		size_t want;
		ssize_t n, off = 0;

		/* whole buffers until the end: as few (and as many, whatever
		 * the timing) system calls as sending the finished spool */
		pthread_mutex_lock(&s->mu);
		while (!s->abort && !s->done &&
		       s->avail - s->sent < SENDER_BUF) {
			s->waiting = 1;
			pthread_cond_wait(&s->cv, &s->mu);
			s->waiting = 0;
		}
		avail = s->avail;
		if (s->abort || s->sent == avail) {
			/* aborted, or done and everything sent */
			pthread_mutex_unlock(&s->mu);
			return NULL;
		}
		pthread_mutex_unlock(&s->mu);
		want = avail - s->sent < SENDER_BUF ?
		       (size_t)(avail - s->sent) : SENDER_BUF;
		n = pread(s->spool_fd, s->buf, want, (off_t)s->sent);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ds_error_sys(&e, n < 0 ? errno : EIO, "spool: read",
			             "increment");
			goto failed;
		}
		while (off < n) {
			ssize_t w = write(s->out_fd, s->buf + off,
			                  (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				ds_error_sys(&e, errno, "send increment:",
				             "write");
				goto failed;
			}
			off += w;
		}
		pthread_mutex_lock(&s->mu);
		s->sent += (uint64_t)n;
		pthread_mutex_unlock(&s->mu);
	}
failed:
	pthread_mutex_lock(&s->mu);
	s->failed = 1;
	s->err = e;
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* The writer's side: avail bytes of the spool are written (the sender is
 * woken when it waits and a buffer's worth is there); done: that is all
 * of it; abort: stop sending. */
void
sender_publish(struct sender *s, uint64_t avail, int done,
                       int abort)
{
	pthread_mutex_lock(&s->mu);
	s->avail = avail;
	s->done |= done;
	s->abort |= abort;
	if (s->waiting && (done || abort ||
	                   avail - s->sent >= SENDER_BUF))
		pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* Has the sender failed? Its error into err. */
int
sender_failed(struct sender *s, ds_error *err)
{
	int rc = DS_OK;

	pthread_mutex_lock(&s->mu);
	if (s->failed) {
		rc = s->err.status ? s->err.status : DS_EIO;
		if (err != NULL)
			*err = s->err;
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* Start the sender on spool_fd (empty so far) to out_fd. */
int
sender_start(struct sender *s, int spool_fd, int out_fd,
                     ds_error *err)
{
	int e;

	memset(s, 0, sizeof(*s));
	s->spool_fd = spool_fd;
	s->out_fd = out_fd;
	s->buf = malloc(SENDER_BUF);
	if (s->buf == NULL)
		return ds_error_set(err, DS_ENOMEM, "increment: out of memory");
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	e = pthread_create(&s->thread, NULL, sender_main, s);
	if (e != 0) {
		pthread_cond_destroy(&s->cv);
		pthread_mutex_destroy(&s->mu);
		free(s->buf);
		s->buf = NULL;
		return ds_error_sys(err, e, "start the sender", "increment");
	}
	return DS_OK;
}

/* Wait for the sender to end (after done or abort) and free it; its
 * failure, if any, into err. */
int
sender_join(struct sender *s, ds_error *err)
{
	int rc = DS_OK;

	pthread_join(s->thread, NULL);
	if (s->failed) {
		rc = s->err.status ? s->err.status : DS_EIO;
		if (err != NULL)
			*err = s->err;
	}
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s->buf);
	s->buf = NULL;
	return rc;
}

