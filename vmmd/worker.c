// SPDX-License-Identifier: MIT
/*
 * A thread whose end wakes the loop through a pipe (worker.h).
 */
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "loop.h"

struct worker {
	pthread_t t;
	int pipe[2];
	struct loop_watch *w;
	void *(*fn)(void *);
	void *arg;
	worker_done_f done;
	void *data;
};

static void *run(void *p)
{
	struct worker *w = p;
	char c = 1;

	w->fn(w->arg);
	while (write(w->pipe[1], &c, 1) < 0 && errno == EINTR)
		;
	return NULL;
}

static void worker_free(struct worker *w)
{
	loop_del_fd(w->w);
	close(w->pipe[0]);
	close(w->pipe[1]);
	free(w);
}

static void on_end(void *data, uint32_t events)
{
	struct worker *w = data;
	worker_done_f done = w->done;
	void *d = w->data;

	(void)events;
	pthread_join(w->t, NULL);
	worker_free(w);
	done(d);
}

int worker_start(struct loop *l, void *(*fn)(void *), void *arg,
		 worker_done_f done, void *data, struct worker **ret)
{
	struct worker *w = calloc(1, sizeof(*w));
	int r;

	if (!w)
		return -ENOMEM;
	*w = (struct worker){.fn = fn, .arg = arg, .done = done, .data = data};
	if (pipe2(w->pipe, O_CLOEXEC) < 0) {
		r = -errno;
		free(w);
		return r;
	}
	if ((r = loop_add_fd(l, w->pipe[0], EPOLLIN, on_end, w, &w->w)) < 0) {
		w->w = NULL;
		worker_free(w);
		return r;
	}
	if ((r = pthread_create(&w->t, NULL, run, w)) != 0) {
		worker_free(w);
		return -r;
	}
	*ret = w;
	return 0;
}

void worker_cancel(struct worker *w)
{
	if (!w)
		return;
	pthread_join(w->t, NULL);
	worker_free(w);
}
