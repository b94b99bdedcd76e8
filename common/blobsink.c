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
 * descheduled consumer; one write per MiB instead of 64. (256 KiB and
 * 4 MiB buffers measured the same here, within the noise.) */
#define NBUF  4u
#define BUFSZ (1u << 20)
/* O_DIRECT wants the file offset, length and memory aligned to the
 * device's logical block; 4096 covers every current device. */
#define ALIGN 4096u
/* Without O_DIRECT (a file system that refuses it): start writing to disk
 * every 64 MiB, so that the fsync before the rename has little left to
 * wait for: the kernel alone keeps a whole image dirty (its background
 * threshold is a tenth of the memory), and that fsync then took 0.7 s per
 * GiB. */
#define SYNC_EVERY (64u << 20)

enum { HASHER, WRITER, NCONS };

struct blobsink {
	int fd;
	struct digest *dg;
	char *buf[NBUF];
	uint64_t off[NBUF]; /* where buffer i goes in the file */
	size_t len[NBUF];
	uint64_t offset; /* bytes taken, buffered ones included */
	/* The writer's: */
	uint64_t synced; /* writeback started up to here */
	bool direct;	 /* fd has O_DIRECT now */
	bool no_direct;	 /* the file system refused it */
	pthread_t thread[NCONS];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* Under mu. Buffer k (counting from 0) is slot k % NBUF; the receiver
	 * fills slot shipped % NBUF once both consumers are done with it. */
	uint64_t shipped;     /* buffers handed over */
	uint64_t done[NCONS]; /* buffers each consumer has finished */
	bool stop;
	int error;
};

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

/* Only the writer thread writes to fd, and the receiver touches it only
 * when both consumers are idle: switching O_DIRECT races with nothing. */
static int set_direct(struct blobsink *s, bool on)
{
	int fl;

	on = on && !s->no_direct;
	if (on == s->direct)
		return 0;
	if ((fl = fcntl(s->fd, F_GETFL)) < 0)
		return -errno;
	if (fcntl(s->fd, F_SETFL, on ? fl | O_DIRECT : fl & ~O_DIRECT) < 0) {
		if (!on || errno != EINVAL)
			return -errno;
		s->no_direct = true;
		return 0;
	}
	s->direct = on;
	return 0;
}

/* Aligned buffers (all but the first after an unaligned resume and the
 * last) go straight to the disk: no copy into the page cache and no
 * writeback for the kernel to do afterwards. */
static int write_buf(struct blobsink *s, unsigned i)
{
	uint64_t end = s->off[i] + s->len[i];
	int r = set_direct(s, s->off[i] % ALIGN == 0 && s->len[i] % ALIGN == 0);

	if (r == 0)
		r = pwrite_full(s->fd, s->buf[i], s->len[i], s->off[i]);
	/* A device that wants more alignment than ALIGN: buffered from now. */
	if (r == -EINVAL && s->direct && (r = set_direct(s, false)) == 0) {
		s->no_direct = true;
		r = pwrite_full(s->fd, s->buf[i], s->len[i], s->off[i]);
	}
	if (r == 0 && !s->direct && end - s->synced >= SYNC_EVERY) {
		sync_file_range(s->fd, (off_t)s->synced,
				(off_t)(end - s->synced),
				SYNC_FILE_RANGE_WRITE);
		s->synced = end;
	}
	return r;
}

static void consume(struct blobsink *s, unsigned who)
{
	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (s->done[who] == s->shipped && !s->stop)
			pthread_cond_wait(&s->cv, &s->mu);
		if (s->done[who] == s->shipped)
			break;
		unsigned i = (unsigned)(s->done[who] % NBUF);
		bool skip = s->error != 0; /* nothing more will be used */
		/* The receiver does not touch slot i until both consumers
		 * are done with it: use it without the lock. */
		pthread_mutex_unlock(&s->mu);
		int r = skip ? 0
			: who == HASHER
			    ? digest_update(s->dg, s->buf[i], s->len[i])
			    : write_buf(s, i);
		pthread_mutex_lock(&s->mu);
		if (r < 0 && !s->error)
			s->error = r;
		s->done[who]++;
		pthread_cond_broadcast(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
}

static void *hash_main(void *arg)
{
	consume(arg, HASHER);
	return NULL;
}

static void *write_main(void *arg)
{
	consume(arg, WRITER);
	return NULL;
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

static uint64_t slowest(const struct blobsink *s)
{
	return s->done[HASHER] < s->done[WRITER] ? s->done[HASHER]
						 : s->done[WRITER];
}

/* Hands the buffer being filled to both consumers, then waits until the
 * next slot is free (both done with it) and starts it where this one
 * ends. */
static int ship(struct blobsink *s)
{
	unsigned i = (unsigned)(s->shipped % NBUF), j;
	uint64_t end = s->off[i] + s->len[i];
	int r;

	if (s->len[i] == 0)
		return 0;
	pthread_mutex_lock(&s->mu);
	s->shipped++;
	pthread_cond_broadcast(&s->cv);
	while (s->shipped - slowest(s) == NBUF)
		pthread_cond_wait(&s->cv, &s->mu);
	r = s->error;
	pthread_mutex_unlock(&s->mu);
	j = (unsigned)(s->shipped % NBUF);
	s->off[j] = end;
	s->len[j] = 0;
	return r;
}

int blobsink_write(struct blobsink *s, const void *p, size_t n)
{
	const char *c = p;
	int r = get_error(s);

	while (r == 0 && n > 0) {
		unsigned i = (unsigned)(s->shipped % NBUF);
		/* A buffer ends on an aligned offset, so that after an
		 * unaligned start the next ones are aligned. */
		size_t room = BUFSZ - s->off[i] % ALIGN - s->len[i];
		size_t k = room < n ? room : n;

		memcpy(s->buf[i] + s->len[i], c, k);
		s->len[i] += k;
		s->offset += k;
		c += k;
		n -= k;
		if (k == room)
			r = ship(s);
	}
	return r;
}

ssize_t blobsink_fill(struct blobsink *s, int fd, size_t max)
{
	unsigned i = (unsigned)(s->shipped % NBUF);
	size_t room = BUFSZ - s->off[i] % ALIGN - s->len[i];
	size_t k = room < max ? room : max;
	int r = get_error(s);
	ssize_t n;

	if (r < 0)
		return r;
	n = read(fd, s->buf[i] + s->len[i], k);
	if (n <= 0)
		return n < 0 ? -errno : 0;
	s->len[i] += (size_t)n;
	s->offset += (uint64_t)n;
	if ((size_t)n == room && (r = ship(s)) < 0)
		return r;
	return n;
}

/* Waits until both consumers have finished everything handed over. */
static int drain(struct blobsink *s)
{
	pthread_mutex_lock(&s->mu);
	while (slowest(s) != s->shipped)
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
	unsigned i = (unsigned)(s->shipped % NBUF);
	int r;

	s->len[i] = 0;
	if ((r = drain(s)) < 0)
		return r;
	if ((r = digest_reset(s->dg)) < 0)
		return set_error(s, r);
	if (ftruncate(s->fd, 0) < 0)
		return set_error(s, -errno);
	s->offset = s->off[i] = s->synced = 0;
	return 0;
}

/* Stops the first n threads once they have finished what they were
 * given. */
static void stop(struct blobsink *s, unsigned n)
{
	pthread_mutex_lock(&s->mu);
	s->stop = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	for (unsigned i = 0; i < n; i++)
		pthread_join(s->thread[i], NULL);
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
	int fl, r;

	if (!s)
		return -ENOMEM;
	s->fd = fd;
	s->dg = dg;
	s->offset = s->off[0] = s->synced = offset;
	fl = fcntl(fd, F_GETFL);
	s->direct = fl >= 0 && (fl & O_DIRECT);
	for (unsigned i = 0; i < NBUF; i++)
		if (posix_memalign((void **)&s->buf[i], ALIGN, BUFSZ) != 0) {
			r = -ENOMEM;
			goto fail;
		}
	if ((r = reserve(fd, offset, size)) < 0)
		goto fail;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	if ((r = -pthread_create(&s->thread[HASHER], NULL, hash_main, s)) < 0)
		goto fail_sync;
	if ((r = -pthread_create(&s->thread[WRITER], NULL, write_main, s)) <
	    0) {
		stop(s, 1);
		goto fail_sync;
	}
	*ret = s;
	return 0;
fail_sync:
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
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
	stop(s, NCONS);
	/* The caller goes on with fd (fsync, another attempt) without it. */
	set_direct(s, false);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	for (unsigned i = 0; i < NBUF; i++)
		free(s->buf[i]);
	free(s);
}
