/*
 * walk.c - the floor under a pack of a tree: how long a cold walk of a
 * directory tree takes with THREADS threads doing only
 *   MODE 0: list every directory (getdents, d_type: no stat)
 *   MODE 1: and stat every file (fstatat)
 *   MODE 2: and open each file and ask its content ahead (fadvise)
 *   MODE 3: and read each file whole
 * Read-only. bench/README.md ("Fourth pack run") quotes it:
 *   cc -O2 -pthread -Wall -Wextra -o /tmp/walk bench/walk.c
 *   sync; echo 3 >/proc/sys/vm/drop_caches; time /tmp/walk STORE/A 1 16
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static char **stack;
static size_t n, cap;
static int busy, mode;
static long files;

static void
push(char *path)
{
	pthread_mutex_lock(&mu);
	if (n == cap) {
		cap = cap ? cap * 2 : 1024;
		stack = realloc(stack, cap * sizeof(*stack));
		if (stack == NULL)
			abort();
	}
	stack[n++] = path;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
}

static void
walk_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	long f = 0;
	int dfd;

	if (d == NULL)
		return;
	dfd = dirfd(d);
	while ((de = readdir(d)) != NULL) {
		char buf[65536], *p;
		struct stat sb;
		int fd;

		if (de->d_name[0] == '.')
			continue;
		if (de->d_type == DT_DIR) {
			if (asprintf(&p, "%s/%s", dir, de->d_name) < 0)
				abort();
			push(p);
			continue;
		}
		f++;
		if (mode == 1) {
			(void)fstatat(dfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW);
		} else if (mode >= 2) {
			fd = openat(dfd, de->d_name, O_RDONLY | O_NOFOLLOW);
			if (fd < 0)
				continue;
			if (mode == 2)
				(void)posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
			else
				while (read(fd, buf, sizeof(buf)) > 0)
					;
			close(fd);
		}
	}
	closedir(d);
	__atomic_fetch_add(&files, f, __ATOMIC_RELAXED);
}

static void *
worker(void *arg)
{
	char *dir;

	(void)arg;
	pthread_mutex_lock(&mu);
	for (;;) {
		while (n == 0 && busy > 0)
			pthread_cond_wait(&cv, &mu);
		if (n == 0)
			break;
		dir = stack[--n];
		busy++;
		pthread_mutex_unlock(&mu);
		walk_dir(dir);
		free(dir);
		pthread_mutex_lock(&mu);
		busy--;
		if (busy == 0 && n == 0)
			pthread_cond_broadcast(&cv);
	}
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	return NULL;
}

int
main(int argc, char **argv)
{
	pthread_t t[64];
	int i, threads;

	if (argc != 4) {
		fprintf(stderr, "usage: walk DIR MODE THREADS (MODE 0-3, "
		        "THREADS 1-64)\n");
		return 2;
	}
	mode = atoi(argv[2]);
	threads = atoi(argv[3]);
	if (threads < 1 || threads > 64 || mode < 0 || mode > 3) {
		fprintf(stderr, "walk: bad MODE or THREADS\n");
		return 2;
	}
	push(strdup(argv[1]));
	for (i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, worker, NULL);
	for (i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	printf("%ld files\n", files);
	free(stack);
	return 0;
}
