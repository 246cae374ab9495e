/*
 * sender.h - the master side's sender thread (sender.c). Not installed.
 */
#ifndef DS_SENDER_H
#define DS_SENDER_H

#include <pthread.h>
#include <stdint.h>

#include "internal.h"

#define SENDER_BUF (64 * 1024)

/* The sender thread: copies the spool to out_fd up to what the writer has
 * published (avail), until the writer says done (send the rest, then
 * stop) or abort (stop now). Everything below mu is shared. */
struct sender {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int spool_fd;
	int out_fd;
	unsigned char *buf;         /* SENDER_BUF */
	uint64_t avail;             /* spool bytes the writer has written */
	uint64_t sent;              /* bytes written to out_fd */
	int waiting, done, abort, failed;
	ds_error err;               /* the sender's failure */
};

/* Start the sender on spool_fd (empty so far) to out_fd. Errors:
 * DS_ENOMEM, DS_EIO (no thread). */
int sender_start(struct sender *s, int spool_fd, int out_fd, ds_error *err);
/* The writer's side: avail bytes of the spool are written (the sender is
 * woken when it waits and a buffer's worth is there); done: that is all
 * of it; abort: stop sending. */
void sender_publish(struct sender *s, uint64_t avail, int done, int abort);
/* Has the sender failed (the replica went away)? Its error (DS_EIO) into
 * err; DS_OK when not. */
int sender_failed(struct sender *s, ds_error *err);
/* Wait for the sender to end (after done or abort) and free what it
 * holds; its failure, if any, into err. */
int sender_join(struct sender *s, ds_error *err);

#endif /* DS_SENDER_H */
