/* SPDX-License-Identifier: MIT */
#include "hashfollow.h"

#include "digest.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define CHUNK	   (4u << 20)
#define SYNC_EVERY (64u << 20)

struct hashfollow {
	int fd;
	struct digest *dg;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t written; /* by the writer */
	uint64_t hashed;  /* by the thread */
	bool busy;	  /* the thread is between lock and unlock */
	bool done;	  /* no more writes: finish and exit */
	bool paused;	  /* a restart is in progress */
	int error;
};

/* One chunk, outside the lock: mapped, not copied (the pages are in the
 * page cache, just written). A resumed file may start anywhere: the map
 * starts at the page below. */
static int hash_chunk(struct hashfollow *h, uint64_t off, size_t len)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t base = off - off % page;
	size_t skip = (size_t)(off - base);
	void *m = mmap(NULL, len + skip, PROT_READ, MAP_SHARED | MAP_POPULATE,
		       h->fd, (off_t)base);
	int r;

	if (m == MAP_FAILED)
		return -errno;
	r = digest_update(h->dg, (const char *)m + skip, len);
	munmap(m, len + skip);
	/* Start writing to disk what is hashed, a large piece at a time,
	 * so the final fsync has little left to wait for. */
	if ((off + len) / SYNC_EVERY != off / SYNC_EVERY)
		sync_file_range(h->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	return r;
}

static void *follow(void *arg)
{
	struct hashfollow *h = arg;

	pthread_mutex_lock(&h->mu);
	for (;;) {
		while (!h->error && (h->paused || h->hashed == h->written) &&
		       !(h->done && h->hashed == h->written))
			pthread_cond_wait(&h->cv, &h->mu);
		if (h->error || (h->done && h->hashed == h->written))
			break;
		uint64_t off = h->hashed, left = h->written - off;
		size_t len = left < CHUNK ? (size_t)left : CHUNK;
		h->busy = true;
		pthread_mutex_unlock(&h->mu);
		int r = hash_chunk(h, off, len);
		pthread_mutex_lock(&h->mu);
		h->busy = false;
		if (r < 0)
			h->error = r;
		else
			h->hashed = off + len;
		pthread_cond_broadcast(&h->cv);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

int hashfollow_start(int fd, struct digest *dg, uint64_t from,
		     struct hashfollow **ret)
{
	struct hashfollow *h = calloc(1, sizeof(*h));
	int r;

	if (!h)
		return -ENOMEM;
	h->fd = fd;
	h->dg = dg;
	h->written = h->hashed = from;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	r = pthread_create(&h->thread, NULL, follow, h);
	if (r != 0) {
		free(h);
		return -r;
	}
	*ret = h;
	return 0;
}

void hashfollow_written(struct hashfollow *h, uint64_t end)
{
	pthread_mutex_lock(&h->mu);
	/* Wake the thread only when a chunk is ready (or it is idle). */
	if (end > h->written &&
	    (end - h->hashed >= CHUNK || h->written == h->hashed))
		pthread_cond_signal(&h->cv);
	if (end > h->written)
		h->written = end;
	pthread_mutex_unlock(&h->mu);
}

void hashfollow_restart(struct hashfollow *h)
{
	pthread_mutex_lock(&h->mu);
	h->paused = true;
	while (h->busy)
		pthread_cond_wait(&h->cv, &h->mu);
	digest_reset(h->dg);
	h->written = h->hashed = 0;
	h->error = 0;
	h->paused = false;
	pthread_mutex_unlock(&h->mu);
}

int hashfollow_finish(struct hashfollow *h)
{
	int r;

	if (!h)
		return 0;
	pthread_mutex_lock(&h->mu);
	h->done = true;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	pthread_join(h->thread, NULL);
	r = h->error;
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->cv);
	free(h);
	return r;
}
