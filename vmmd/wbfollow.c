/* SPDX-License-Identifier: MIT */
#include "wbfollow.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* How often the file's size is looked at: a save streams ~1 GB/s at
 * most, so ~5 MiB arrive between two looks, well under a step. */
#define POLL_NS 5000000L

struct wbfollow {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC */
	bool stop;	   /* under mu */
	char *path;
	uint64_t step;
	int fd;
	_Atomic uint64_t kicked; /* writeback started on [0, kicked) */
};

static void try_open(struct wbfollow *f)
{
	/* O_NOFOLLOW: the path is in vmmd's own checkpoint directory; never
	 * follow a link someone put there, nor block on a FIFO. */
	f->fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
}

/* Starts writeback of what the file grew by since the last call, whole
 * steps at a time (the size can be seen in the middle of a write), at
 * most MAX_STEPS per call so that a stop is heard between them.
 * SYNC_FILE_RANGE_WRITE alone queues the pages and returns: the follower
 * waits for the disk only when its queue is full. */
#define MAX_STEPS 4u

static void kick(struct wbfollow *f)
{
	struct stat st;
	uint64_t size, from, n;

	if (f->fd < 0 && (try_open(f), f->fd < 0))
		return;
	if (fstat(f->fd, &st) < 0 || !S_ISREG(st.st_mode))
		return;
	size = (uint64_t)st.st_size;
	from = atomic_load(&f->kicked);
	if (size < from) /* truncated: follow it from its new end */
		atomic_store(&f->kicked, from = size / f->step * f->step);
	n = (size - from) / f->step;
	if (n == 0)
		return;
	if (n > MAX_STEPS)
		n = MAX_STEPS;
	if (sync_file_range(f->fd, (off_t)from, (off_t)(n * f->step),
			    SYNC_FILE_RANGE_WRITE) == 0)
		atomic_store(&f->kicked, from + n * f->step);
}

static void *follow_main(void *arg)
{
	struct wbfollow *f = arg;
	struct timespec t;

	pthread_mutex_lock(&f->mu);
	while (!f->stop) {
		pthread_mutex_unlock(&f->mu);
		kick(f);
		clock_gettime(CLOCK_MONOTONIC, &t);
		t.tv_nsec += POLL_NS;
		if (t.tv_nsec >= 1000000000L) {
			t.tv_sec++;
			t.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&f->mu);
		if (!f->stop)
			pthread_cond_timedwait(&f->cv, &f->mu, &t);
	}
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

static void follow_free(struct wbfollow *f)
{
	if (f->fd >= 0)
		close(f->fd);
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	free(f->path);
	free(f);
}

int wbfollow_start(struct wbfollow **ret, const char *path, uint64_t step)
{
	struct wbfollow *f = calloc(1, sizeof(*f));
	pthread_condattr_t ca;
	int r;

	if (!f)
		return -ENOMEM;
	f->fd = -1;
	f->step = step ? step : 1;
	pthread_mutex_init(&f->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&f->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (!(f->path = strdup(path))) {
		follow_free(f);
		return -ENOMEM;
	}
	if ((r = pthread_create(&f->thread, NULL, follow_main, f)) != 0) {
		follow_free(f);
		return -r;
	}
	*ret = f;
	return 0;
}

uint64_t wbfollow_kicked(struct wbfollow *f)
{
	return atomic_load(&f->kicked);
}

uint64_t wbfollow_stop(struct wbfollow *f)
{
	uint64_t kicked;

	if (!f)
		return 0;
	pthread_mutex_lock(&f->mu);
	f->stop = true;
	pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->mu);
	pthread_join(f->thread, NULL);
	kicked = atomic_load(&f->kicked);
	follow_free(f);
	return kicked;
}
