/* SPDX-License-Identifier: MIT */
#include "blobsink.h"

#include "digest.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Four buffers of 1 MiB: the receiver can run a few ms ahead of a
 * descheduled hashing thread; one pwrite per MiB instead of 64. (256 KiB
 * and 4 MiB buffers measured the same here, within the noise.) */
#define NBUF  4u
#define BUFSZ (1u << 20)
/* Start writing to disk every 64 MiB, so that the fsync before the rename
 * has little left to wait for: the kernel alone keeps a whole image dirty
 * (its background threshold is a tenth of the memory), and that fsync then
 * took 0.7 s per GiB. Every 16 MiB cost the receiver more CPU and did not
 * shorten the final fsync measurably. */
#define SYNC_EVERY (64u << 20)

struct blobsink {
	int fd;
	struct digest *dg;
	char *buf[NBUF];
	size_t len[NBUF];
	uint64_t offset;  /* bytes taken, buffered ones included */
	uint64_t written; /* bytes in the file: offset minus buffered */
	uint64_t synced;  /* writeback started up to here */
	unsigned fill;	  /* the buffer being filled (the receiver's) */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* Under mu: */
	unsigned next;	 /* the next buffer to hash */
	unsigned queued; /* buffers given to the thread, not yet hashed */
	bool stop;
	int error;
};

static void *hash_loop(void *arg)
{
	struct blobsink *s = arg;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (s->queued == 0 && !s->stop)
			pthread_cond_wait(&s->cv, &s->mu);
		if (s->queued == 0)
			break;
		unsigned i = s->next;
		bool skip = s->error != 0; /* nothing more will be used */
		/* The receiver does not touch buffer i until it is handed
		 * back below: hash it without the lock. */
		pthread_mutex_unlock(&s->mu);
		int r = skip ? 0 : digest_update(s->dg, s->buf[i], s->len[i]);
		pthread_mutex_lock(&s->mu);
		if (r < 0 && !s->error)
			s->error = r;
		s->next = (i + 1) % NBUF;
		s->queued--;
		pthread_cond_broadcast(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static int pwrite_full(int fd, const char *p, size_t n, uint64_t off)
{
	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

static int set_error(struct blobsink *s, int r)
{
	pthread_mutex_lock(&s->mu);
	if (!s->error)
		s->error = r;
	r = s->error;
	pthread_mutex_unlock(&s->mu);
	return r;
}

static int get_error(struct blobsink *s)
{
	pthread_mutex_lock(&s->mu);
	int r = s->error;
	pthread_mutex_unlock(&s->mu);
	return r;
}

/* Starts the writeback of the last SYNC_EVERY bytes written (not the
 * whole file: that would wait for pages already in flight). */
static void start_writeback(struct blobsink *s)
{
	if (s->written - s->synced < SYNC_EVERY)
		return;
	sync_file_range(s->fd, (off_t)s->synced,
			(off_t)(s->written - s->synced), SYNC_FILE_RANGE_WRITE);
	s->synced = s->written;
}

/* Hands the buffer being filled to the thread and writes it meanwhile
 * (both only read it), then waits for a free buffer to fill next. */
static int ship(struct blobsink *s)
{
	unsigned i = s->fill;
	size_t n = s->len[i];
	int r;

	if (n == 0)
		return 0;
	pthread_mutex_lock(&s->mu);
	s->queued++;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	if ((r = pwrite_full(s->fd, s->buf[i], n, s->written)) < 0)
		return set_error(s, r);
	s->written += n;
	start_writeback(s);
	s->fill = (i + 1) % NBUF;
	pthread_mutex_lock(&s->mu);
	while (s->queued == NBUF)
		pthread_cond_wait(&s->cv, &s->mu);
	r = s->error;
	pthread_mutex_unlock(&s->mu);
	s->len[s->fill] = 0;
	return r;
}

int blobsink_write(struct blobsink *s, const void *p, size_t n)
{
	const char *c = p;
	int r = get_error(s);

	while (r == 0 && n > 0) {
		unsigned i = s->fill;
		size_t k = BUFSZ - s->len[i] < n ? BUFSZ - s->len[i] : n;

		memcpy(s->buf[i] + s->len[i], c, k);
		s->len[i] += k;
		s->offset += k;
		c += k;
		n -= k;
		if (s->len[i] == BUFSZ)
			r = ship(s);
	}
	return r;
}

/* Waits until the thread has hashed everything it was given. */
static int drain(struct blobsink *s)
{
	pthread_mutex_lock(&s->mu);
	while (s->queued > 0)
		pthread_cond_wait(&s->cv, &s->mu);
	int r = s->error;
	pthread_mutex_unlock(&s->mu);
	return r;
}

int blobsink_flush(struct blobsink *s)
{
	int r = get_error(s);

	if (r == 0)
		r = ship(s);
	return r < 0 ? r : drain(s);
}

uint64_t blobsink_offset(const struct blobsink *s)
{
	return s->offset;
}

int blobsink_restart(struct blobsink *s)
{
	int r;

	s->len[s->fill] = 0;
	if ((r = drain(s)) < 0)
		return r;
	if ((r = digest_reset(s->dg)) < 0)
		return set_error(s, r);
	if (ftruncate(s->fd, 0) < 0)
		return set_error(s, -errno);
	s->offset = s->written = s->synced = 0;
	return 0;
}

/* Reserves the rest of the file's blocks: a full cache fails now rather
 * than after most of the transfer, and the blocks are allocated once
 * instead of by each writeback (on ext4 the 16 sync_file_range calls of
 * 1 GiB took 30 ms in all instead of 75-180 ms, and the receiver ~10% less
 * CPU). The size stays as it is (a partial file's size is how much of it
 * is there). File systems without fallocate just go on. */
static int reserve(int fd, uint64_t offset, uint64_t size)
{
	if (size <= offset || fallocate(fd, FALLOC_FL_KEEP_SIZE, (off_t)offset,
					(off_t)(size - offset)) == 0)
		return 0;
	return errno == ENOSPC || errno == EDQUOT ? -ENOSPC : 0;
}

int blobsink_new(int fd, struct digest *dg, uint64_t offset, uint64_t size,
		 struct blobsink **ret)
{
	struct blobsink *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	s->fd = fd;
	s->dg = dg;
	s->offset = s->written = s->synced = offset;
	for (unsigned i = 0; i < NBUF; i++)
		if (!(s->buf[i] = malloc(BUFSZ))) {
			r = -ENOMEM;
			goto fail;
		}
	if ((r = reserve(fd, offset, size)) < 0)
		goto fail;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	if ((r = -pthread_create(&s->thread, NULL, hash_loop, s)) < 0) {
		pthread_cond_destroy(&s->cv);
		pthread_mutex_destroy(&s->mu);
		goto fail;
	}
	*ret = s;
	return 0;
fail:
	for (unsigned i = 0; i < NBUF; i++)
		free(s->buf[i]);
	free(s);
	return r;
}

void blobsink_free(struct blobsink *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->stop = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	for (unsigned i = 0; i < NBUF; i++)
		free(s->buf[i]);
	free(s);
}
