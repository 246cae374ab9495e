/*
 * transport.c - running the master side of a replication and talking to it
 * through pipes, as the original replica.py does:
 *
 *   ssh [-l USER] HOST '<remote ds>' replica [-v...|-q] + '<DIR>'
 *
 * or, with -e COMMAND, COMMAND split on whitespace in place of "ssh" (so it
 * may carry its own arguments, e.g. "ssh -F config -p 2222"); with no HOST
 * the local ds runs `replica [-v|-q] + DIR` as a child. A master command
 * (--master-command, split on whitespace) replaces `<remote ds> replica`
 * in both modes, e.g. "python3 /opt/ds/replica.py" for a master that runs
 * the original tool; an exact command (exact_argv) replaces the whole
 * master side, nothing appended (reading a file of such a master). ssh
 * passes the remote command to the remote user's shell as one string, so
 * every variable part of it is single-quoted: a DIR with spaces or shell
 * metacharacters arrives intact and cannot run anything. HOST and USER
 * must not start with '-' (they would be taken as ssh options).
 *
 * The request is written to the child's stdin, which is then closed (the
 * master reads to EOF); its stdout is the archive; its stderr lines are
 * handed to a callback as they come (the master's messages and, on
 * failure, its reason) while stdout is read, so neither pipe can block the
 * other. A master side that sends nothing at all (neither output nor
 * messages) for the read timeout is given up on: a hung ssh connection or
 * a master stuck without closing its output must not hang a cron job
 * forever; and since a master that dribbles a byte now and then is never
 * silent, there is also a deadline for the whole answer.
 *
 * The child runs in a process group of its own: when we stop it (refused
 * stream, timeout, deadline) the signal goes to the group, so an -e
 * wrapper's children, or a ProxyCommand, are stopped with it instead of
 * holding the pipes (and the replica's lock) after we gave up. The
 * group is killed while its leader is still a zombie, so its id cannot
 * have been reused. A consequence: the child is not in the terminal's
 * foreground group, and an ssh that prompts (password, unknown host
 * key) is stopped by the kernel (SIGTTIN); we notice that at once and
 * say so rather than wait for the timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "replica_internal.h"

#define TRANSPORT_ARGV_MAX 64
#define TRANSPORT_LINE_MAX 4096
#define TRANSPORT_KILL_GRACE 2.0   /* s between SIGTERM and SIGKILL */

struct transport {
	pid_t pid;
	int out_fd;               /* child's stdout, -1 once at EOF */
	int err_fd;               /* child's stderr, -1 once at EOF */
	int reaped;
	int status;
	void (*on_stderr)(const char *line, void *ctx);
	void *ctx;
	char line[TRANSPORT_LINE_MAX];
	size_t line_len;
	char last[TRANSPORT_LINE_MAX];
	char *cmdline;
	unsigned timeout;         /* s of silence before giving up */
	double deadline_at;       /* ds_now() time; 0: none */
	unsigned deadline;        /* s, for the message */
	int killed_group;         /* SIGKILL sent to the group */
};

/* Append s to the remote command line in single quotes. */
static int
transport_quote(char *out, size_t outsz, size_t *pos, const char *s)
{
	if (*pos + 3 >= outsz)
		return -1;
	out[(*pos)++] = '\'';
	for (; *s; s++) {
		if (*s == '\'') {
			if (*pos + 5 >= outsz)
				return -1;
			memcpy(out + *pos, "'\\''", 4);
			*pos += 4;
		} else {
			if (*pos + 2 >= outsz)
				return -1;
			out[(*pos)++] = *s;
		}
	}
	out[(*pos)++] = '\'';
	out[*pos] = '\0';
	return 0;
}

static int
transport_append(char *out, size_t outsz, size_t *pos, const char *s)
{
	size_t n = strlen(s);

	if (*pos + n + 1 > outsz)
		return -1;
	memcpy(out + *pos, s, n + 1);
	*pos += n;
	return 0;
}

static int
transport_word_ok(const char *s)
{
	if (s == NULL || *s == '\0' || *s == '-')
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f)
			return 0;
	return 1;
}

static void
transport_emit(struct transport *t)
{
	t->line[t->line_len] = '\0';
	if (t->line_len > 0) {
		snprintf(t->last, sizeof(t->last), "%s", t->line);
		if (t->on_stderr)
			t->on_stderr(t->line, t->ctx);
	}
	t->line_len = 0;
}

/* Read what stderr has; at EOF close it. */
static void
transport_read_stderr(struct transport *t)
{
	char buf[4096];
	ssize_t n;

	n = read(t->err_fd, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		if (t->line_len > 0)
			transport_emit(t);
		close(t->err_fd);
		t->err_fd = -1;
		return;
	}
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] == '\n') {
			transport_emit(t);
			continue;
		}
		if (t->line_len + 1 < sizeof(t->line))
			t->line[t->line_len++] = buf[i];
	}
}

/* The master side's argv, and the buffers its words point into. */
struct transport_argv {
	char *argv[TRANSPORT_ARGV_MAX + 1];
	int argc;
	char *words;               /* the -e command, split in place */
	char *mwords;              /* the master command, split in place */
	char *remote;              /* the remote command line (ssh mode) */
};

static void
transport_argv_free(struct transport_argv *av)
{
	free(av->words);
	free(av->mwords);
	free(av->remote);
}

static int
transport_too_many(ds_error *err)
{
	return ds_error_set(err, DS_EINVAL, "replica: master command has too "
	                    "many words");
}

static int
transport_too_long(ds_error *err)
{
	return ds_error_set(err, DS_EINVAL, "replica: master command line too "
	                    "long");
}

/* The number of -v to pass on (o->verbosity 0 passes -q instead). */
static int
transport_nv(const struct transport_opts *o)
{
	int nv = o->verbosity - 1;

	return nv > 8 ? 8 : nv;
}

/* Local mode: exact_argv as given; else the master command's words (or
 * "<local_program> replica"), [-v...|-q], "+", DIR. */
static int
transport_argv_local(const struct transport_opts *o,
                     struct transport_argv *av, ds_error *err)
{
	char *save = NULL, *w;
	int nv = transport_nv(o);

	if (o->exact_argv != NULL) {
		for (int i = 0; o->exact_argv[i] != NULL; i++) {
			if (av->argc >= TRANSPORT_ARGV_MAX - 1)
				return transport_too_many(err);
			av->argv[av->argc++] = (char *)o->exact_argv[i];
		}
		return DS_OK;
	}
	if (o->master_command != NULL) {
		av->mwords = strdup(o->master_command);
		if (av->mwords == NULL)
			return ds_error_set(err, DS_ENOMEM, "replica: out of "
			                    "memory");
		for (w = strtok_r(av->mwords, " \t\n", &save); w != NULL;
		     w = strtok_r(NULL, " \t\n", &save)) {
			if (av->argc >= TRANSPORT_ARGV_MAX - 12)
				return transport_too_many(err);
			av->argv[av->argc++] = w;
		}
		if (av->argc == 0)
			return ds_error_set(err, DS_EINVAL, "replica: empty "
			                    "master command");
	} else {
		if (o->local_program == NULL)
			return ds_error_set(err, DS_EINVAL, "replica: local "
			                    "mode needs the ds program's path");
		av->argv[av->argc++] = (char *)o->local_program;
		av->argv[av->argc++] = "replica";
	}
	for (int i = 0; i < nv; i++)
		av->argv[av->argc++] = "-v";
	if (o->verbosity <= 0)
		av->argv[av->argc++] = "-q";
	av->argv[av->argc++] = "+";
	av->argv[av->argc++] = (char *)o->master_dir;
	return DS_OK;
}

/* The command line ssh hands to the remote user's shell, every variable
 * word single-quoted: exact_argv; else the master command's words (or
 * "<remote ds> replica"), [-v...|-q], "+", DIR. */
static int
transport_remote(const struct transport_opts *o, struct transport_argv *av,
                 size_t rsz, ds_error *err)
{
	char *remote = av->remote, *save = NULL, *w;
	size_t pos = 0;
	int nv = transport_nv(o);

	remote[0] = '\0';
	if (o->exact_argv != NULL) {
		for (int i = 0; o->exact_argv[i] != NULL; i++)
			if ((i && transport_append(remote, rsz, &pos, " ") != 0) ||
			    transport_quote(remote, rsz, &pos,
			                    o->exact_argv[i]) != 0)
				return transport_too_long(err);
		return DS_OK;
	}
	if (o->master_command != NULL) {
		int nw = 0;

		for (w = strtok_r(av->mwords, " \t\n", &save); w != NULL;
		     w = strtok_r(NULL, " \t\n", &save), nw++)
			if ((nw && transport_append(remote, rsz, &pos,
			                            " ") != 0) ||
			    transport_quote(remote, rsz, &pos, w) != 0)
				return transport_too_long(err);
		if (nw == 0)
			return ds_error_set(err, DS_EINVAL, "replica: empty "
			                    "master command");
	} else if (transport_quote(remote, rsz, &pos, o->remote_program ?
	                           o->remote_program : "ds") != 0 ||
	           transport_append(remote, rsz, &pos, " replica") != 0)
		return transport_too_long(err);
	for (int i = 0; i < nv; i++)
		if (transport_append(remote, rsz, &pos, " -v") != 0)
			return transport_too_long(err);
	if (o->verbosity <= 0 &&
	    transport_append(remote, rsz, &pos, " -q") != 0)
		return transport_too_long(err);
	if (transport_append(remote, rsz, &pos, " + ") != 0 ||
	    transport_quote(remote, rsz, &pos, o->master_dir) != 0)
		return transport_too_long(err);
	return DS_OK;
}

/* ssh mode: the -e command's words (or "ssh"), [-l USER], HOST, and the
 * remote command line as one word. */
static int
transport_argv_ssh(const struct transport_opts *o, struct transport_argv *av,
                   ds_error *err)
{
	char *save = NULL, *w;
	size_t rsz;
	int rc;

	if (!transport_word_ok(o->host))
		return ds_error_set(err, DS_EINVAL, "replica: bad master host "
		                    "name \"%s\"", o->host);
	if (o->user != NULL && !transport_word_ok(o->user))
		return ds_error_set(err, DS_EINVAL, "replica: bad master user "
		                    "name \"%s\"", o->user);
	av->words = strdup(o->command && *o->command ? o->command : "ssh");
	rsz = strlen(o->master_dir) * 4 + (o->remote_program ?
	      strlen(o->remote_program) * 4 : 0) + 128;
	if (o->master_command != NULL)
		rsz += strlen(o->master_command) * 4 + 8;
	for (int i = 0; o->exact_argv && o->exact_argv[i]; i++)
		rsz += strlen(o->exact_argv[i]) * 4 + 8;
	if (o->master_command != NULL)
		av->mwords = strdup(o->master_command);
	av->remote = malloc(rsz);
	if (av->words == NULL || av->remote == NULL ||
	    (o->master_command != NULL && av->mwords == NULL))
		return ds_error_set(err, DS_ENOMEM, "replica: out of memory");
	for (w = strtok_r(av->words, " \t\n", &save); w != NULL;
	     w = strtok_r(NULL, " \t\n", &save)) {
		if (av->argc >= TRANSPORT_ARGV_MAX - 6)
			return ds_error_set(err, DS_EINVAL, "replica: -e "
			                    "command has too many words");
		av->argv[av->argc++] = w;
	}
	if (av->argc == 0)
		return ds_error_set(err, DS_EINVAL, "replica: empty -e "
		                    "command");
	if (o->user != NULL) {
		av->argv[av->argc++] = "-l";
		av->argv[av->argc++] = (char *)o->user;
	}
	av->argv[av->argc++] = (char *)o->host;
	rc = transport_remote(o, av, rsz, err);
	if (rc != DS_OK)
		return rc;
	av->argv[av->argc++] = av->remote;
	return DS_OK;
}

/* t->cmdline: the argv joined with spaces (for -vv). */
static int
transport_set_cmdline(struct transport *t, const struct transport_argv *av,
                      ds_error *err)
{
	size_t n = 1;

	for (int i = 0; i < av->argc; i++)
		n += strlen(av->argv[i]) + 1;
	t->cmdline = malloc(n);
	if (t->cmdline == NULL)
		return ds_error_set(err, DS_ENOMEM, "replica: out of memory");
	t->cmdline[0] = '\0';
	for (int i = 0; i < av->argc; i++) {
		if (i)
			strcat(t->cmdline, " ");
		strcat(t->cmdline, av->argv[i]);
	}
	return DS_OK;
}

/* Fork and exec the master side in a process group of its own, its
 * stdout and stderr on t's pipes; *in_fd is its stdin. */
static int
transport_spawn(struct transport *t, char *const argv[], int *in_fd,
                ds_error *err)
{
	int in[2] = {-1, -1}, op[2] = {-1, -1}, ep[2] = {-1, -1};
	int rc = DS_OK;
	pid_t parent;

	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(op, O_CLOEXEC) != 0 ||
	    pipe2(ep, O_CLOEXEC) != 0) {
		rc = ds_error_sys(err, errno, "pipe", "replica");
		goto out;
	}
	parent = getpid();
	t->pid = fork();
	if (t->pid < 0) {
		ds_error_sys(err, errno, "fork", argv[0]);
		if (err)
			err->status = DS_EBUSY;
		rc = DS_EBUSY;
		goto out;
	}
	if (t->pid == 0) {
		/* the child: its own group, pipes on 0, 1, 2, then the
		 * master side. Outside our group a Ctrl-C or a kill of ds
		 * no longer reaches it: have the kernel send it SIGTERM
		 * when we die (and check we did not die already). */
		if (setpgid(0, 0) != 0 ||
		    prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 ||
		    getppid() != parent || dup2(in[0], 0) < 0 ||
		    dup2(op[1], 1) < 0 || dup2(ep[1], 2) < 0)
			_exit(127);
		signal(SIGPIPE, SIG_DFL);
		execvp(argv[0], argv);
		dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	/* also here, so that the group exists before we may signal it
	 * (whichever of parent and child runs first); EACCES once the child
	 * has exec'd means it did it itself */
	setpgid(t->pid, t->pid);
	t->out_fd = op[0];
	t->err_fd = ep[0];
	*in_fd = in[1];
	op[0] = ep[0] = in[1] = -1;
out:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (op[i] >= 0)
			close(op[i]);
		if (ep[i] >= 0)
			close(ep[i]);
	}
	return rc;
}

/* Write the request to the master side's stdin and close it. The request
 * is far smaller than a pipe's buffer. A master that died already makes
 * this fail with EPIPE (the caller ignores SIGPIPE); its exit status then
 * says why. */
static void
transport_send(int fd, const void *request, size_t len)
{
	const char *p = request;
	size_t left = len;

	while (left > 0) {
		ssize_t n = write(fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		p += n;
		left -= (size_t)n;
	}
	close(fd);
}

int
transport_start(const struct transport_opts *o, const void *request,
                size_t len, struct transport **out, ds_error *err)
{
	struct transport_argv av;
	struct transport *t = NULL;
	int rc, in_fd = -1;

	*out = NULL;
	if (o->master_dir == NULL || o->master_dir[0] == '\0')
		return ds_error_set(err, DS_EINVAL, "replica: no master "
		                    "directory");
	memset(&av, 0, sizeof(av));
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return ds_error_set(err, DS_ENOMEM, "replica: out of memory");
	t->pid = -1;
	t->out_fd = t->err_fd = -1;
	t->on_stderr = o->on_stderr;
	t->ctx = o->ctx;
	t->timeout = o->read_timeout ? o->read_timeout : 600;
	t->deadline_at = o->deadline_at;
	t->deadline = o->deadline;
	if (o->host == NULL)
		rc = transport_argv_local(o, &av, err);
	else
		rc = transport_argv_ssh(o, &av, err);
	av.argv[av.argc] = NULL;
	if (rc == DS_OK)
		rc = transport_set_cmdline(t, &av, err);
	if (rc == DS_OK)
		rc = transport_spawn(t, av.argv, &in_fd, err);
	if (rc == DS_OK) {
		transport_send(in_fd, request, len);
		*out = t;
		t = NULL;
	}
	transport_argv_free(&av);
	transport_free(t);
	return rc;
}


/* Is the master side stopped by the terminal (SIGTTIN/SIGTTOU: reading
 * or setting up the tty from its background group, i.e. ssh asking for
 * a password or about a host key)? Does not reap. */
static int
transport_tty_stopped(const struct transport *t)
{
	siginfo_t si;

	if (t->reaped || t->pid <= 0)
		return 0;
	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)t->pid, &si, WSTOPPED | WNOHANG | WNOWAIT)
	    != 0 || si.si_pid != t->pid)
		return 0;
	return si.si_status == SIGTTIN || si.si_status == SIGTTOU;
}

ssize_t
transport_read(void *vt, void *buf, size_t len, ds_error *err)
{
	struct transport *t = vt;
	double since = ds_now();

	for (;;) {
		struct pollfd p[2];
		int n = 0, io = -1, ie = -1, pr;
		double now = ds_now();
		double left = (double)t->timeout - (now - since), wait;

		if (t->out_fd < 0)
			return 0;
		if (t->deadline_at > 0 && now >= t->deadline_at) {
			ds_error_set(err, DS_EBUSY, "the master side did not "
			             "finish within %u s (--deadline): giving "
			             "up, try again later", t->deadline);
			return -1;
		}
		if (left <= 0) {
			ds_error_set(err, DS_EBUSY, "the master side sent "
			             "nothing for %u s (--timeout): giving up, "
			             "try again later", t->timeout);
			return -1;
		}
		/* wake at least once a second to look at the deadline and
		 * at a child stopped by the terminal */
		wait = left;
		if (t->deadline_at > 0 && t->deadline_at - now < wait)
			wait = t->deadline_at - now;
		if (wait > 1.0)
			wait = 1.0;
		p[n].fd = t->out_fd;
		p[n].events = POLLIN;
		io = n++;
		if (t->err_fd >= 0) {
			p[n].fd = t->err_fd;
			p[n].events = POLLIN;
			ie = n++;
		}
		pr = poll(p, (nfds_t)n, (int)(wait * 1000) + 1);
		if (pr < 0) {
			if (errno == EINTR)
				continue;
			ds_error_sys(err, errno, "poll", "master side");
			return -1;
		}
		if (pr == 0) {
			/* quiet for a while (only then: no system call
			 * more while the stream flows) */
			if (transport_tty_stopped(t)) {
				ds_error_set(err, DS_EREFUSED, "the master side "
				             "(%s) stopped to ask something on "
				             "the terminal (a password, or "
				             "whether to trust a host key?): ds "
				             "replica needs ssh to log in without "
				             "asking (a key without passphrase or "
				             "ssh-agent, the host key known)",
				             t->cmdline ? t->cmdline : "ssh");
				return -1;
			}
			continue;
		}
		if (ie >= 0 && (p[ie].revents & (POLLIN | POLLHUP | POLLERR))) {
			/* a message is a sign of life too */
			transport_read_stderr(t);
			since = ds_now();
		}
		if (p[io].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t got = read(t->out_fd, buf, len);
			if (got < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (got < 0) {
				ds_error_sys(err, errno, "read", "master side's "
				             "output");
				return -1;
			}
			if (got == 0) {
				close(t->out_fd);
				t->out_fd = -1;
			}
			return got;
		}
	}
}

/* SIGKILL the master side's whole group, once, while its leader is not
 * yet reaped (a zombie or alive: the group id is still ours). */
static void
transport_kill_group(struct transport *t)
{
	if (t->killed_group || t->reaped || t->pid <= 0)
		return;
	kill(-t->pid, SIGKILL);
	t->killed_group = 1;
}

/* Has the leader exited? Without reaping it. */
static int
transport_exited(const struct transport *t)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	return waitid(P_PID, (id_t)t->pid, &si, WEXITED | WNOHANG | WNOWAIT)
	       == 0 && si.si_pid == t->pid;
}

int
transport_wait(struct transport *t, int kill_it, int *how, ds_error *err)
{
	double reaped_at = 0, start = ds_now();
	int killed = 0, hard = 0;

	*how = 0;
	/* only a master side still sending is stopped: one that reached
	 * the end of its output has its own exit status to tell */
	if (kill_it && t->out_fd >= 0 && !t->reaped && t->pid > 0) {
		/* the group: an -e wrapper's children too; SIGCONT for
		 * members stopped by the terminal */
		kill(-t->pid, SIGTERM);
		kill(-t->pid, SIGCONT);
		killed = 1;
	}
	if (t->out_fd >= 0) {
		close(t->out_fd);
		t->out_fd = -1;
	}
	for (;;) {
		if (!t->reaped) {
			/* what it started goes with it: SIGKILL the group
			 * before reaping the leader (which pins the group
			 * id), once the leader exited or after the grace */
			if (killed && !t->killed_group &&
			    (transport_exited(t) ||
			     ds_now() - start > TRANSPORT_KILL_GRACE))
				transport_kill_group(t);
			if (!killed || t->killed_group) {
				pid_t r = waitpid(t->pid, &t->status, WNOHANG);

				if (r == t->pid) {
					t->reaped = 1;
					reaped_at = ds_now();
				} else if (r < 0 && errno != EINTR) {
					return ds_error_sys(err, errno,
					                    "waitpid",
					                    "master side");
				}
			}
		}
		if (t->err_fd < 0 && t->reaped)
			break;
		/* output ended but the process lingers: do not wait longer
		 * than for silence while reading */
		if (!t->reaped && !killed && !hard &&
		    (ds_now() - start > (double)t->timeout ||
		     (t->deadline_at > 0 && ds_now() > t->deadline_at))) {
			transport_kill_group(t);
			hard = 1;
		}
		/* stderr still open after the child ended: a process it
		 * left behind holds it; do not wait for that for long */
		if (t->reaped && ds_now() - reaped_at > 2.0)
			break;
		if (t->err_fd >= 0) {
			struct pollfd p = {.fd = t->err_fd, .events = POLLIN};
			if (poll(&p, 1, 100) > 0)
				transport_read_stderr(t);
		} else {
			struct timespec ts = {0, 20 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
	}
	if (t->err_fd >= 0) {
		if (t->line_len > 0)
			transport_emit(t);
		close(t->err_fd);
		t->err_fd = -1;
	}
	if (killed)
		*how = -1;
	else if (WIFEXITED(t->status))
		*how = WEXITSTATUS(t->status);
	else if (WIFSIGNALED(t->status))
		*how = 128 + WTERMSIG(t->status);
	else
		*how = 255;
	return DS_OK;
}

const char *
transport_last_line(const struct transport *t)
{
	return t->last;
}

const char *
transport_cmdline(const struct transport *t)
{
	return t->cmdline ? t->cmdline : "";
}

void
transport_free(struct transport *t)
{
	if (t == NULL)
		return;
	if (t->out_fd >= 0)
		close(t->out_fd);
	if (t->err_fd >= 0)
		close(t->err_fd);
	if (t->pid > 0 && !t->reaped) {
		/* never waited for: nothing of the group may outlive us */
		transport_kill_group(t);
		waitpid(t->pid, NULL, 0);
	}
	free(t->cmdline);
	free(t);
}
