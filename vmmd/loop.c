/* SPDX-License-Identifier: MIT */
#include "loop.h"

#include "cleanup.h"
#include "util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct loop_watch {
	struct loop *loop;
	int fd;
	loop_fd_cb cb;
	void *data;
	bool dead;
	struct loop_watch *next_dead;
};

struct loop_timer {
	struct loop *loop;
	uint64_t due_ms;
	loop_timer_cb cb;
	void *data;
	bool dead;
	struct loop_timer *next;
};

struct loop {
	int epfd;
	bool quit;
	struct loop_watch *graveyard;
	struct loop_timer *timers; /* sorted by due_ms */
};

int loop_new(struct loop **ret)
{
	struct loop *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		int r = -errno;
		free(l);
		return r;
	}
	*ret = l;
	return 0;
}

static void bury(struct loop *l)
{
	while (l->graveyard) {
		struct loop_watch *w = l->graveyard;
		l->graveyard = w->next_dead;
		free(w);
	}
	for (struct loop_timer **p = &l->timers; *p;) {
		struct loop_timer *t = *p;
		if (t->dead) {
			*p = t->next;
			free(t);
		} else {
			p = &t->next;
		}
	}
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	for (struct loop_timer *t = l->timers; t; t = t->next)
		t->dead = true;
	bury(l);
	close(l->epfd);
	free(l);
}

int loop_add_fd(struct loop *l, int fd, uint32_t events, loop_fd_cb cb,
		void *data, struct loop_watch **ret)
{
	struct loop_watch *w = calloc(1, sizeof(*w));
	struct epoll_event ev = {.events = events};

	if (!w)
		return -ENOMEM;
	*w = (struct loop_watch){.loop = l, .fd = fd, .cb = cb, .data = data};
	ev.data.ptr = w;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int r = -errno;
		free(w);
		return r;
	}
	*ret = w;
	return 0;
}

int loop_mod_fd(struct loop_watch *w, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = w};

	return epoll_ctl(w->loop->epfd, EPOLL_CTL_MOD, w->fd, &ev) < 0 ? -errno
								       : 0;
}

void loop_del_fd(struct loop_watch *w)
{
	if (!w || w->dead)
		return;
	epoll_ctl(w->loop->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	w->dead = true;
	w->next_dead = w->loop->graveyard;
	w->loop->graveyard = w;
}

struct loop_timer *loop_add_timer(struct loop *l, uint64_t delay_ms,
				  loop_timer_cb cb, void *data)
{
	struct loop_timer *t = calloc(1, sizeof(*t)), **p;

	if (!t)
		return NULL;
	*t = (struct loop_timer){
	    .loop = l, .due_ms = now_ms() + delay_ms, .cb = cb, .data = data};
	for (p = &l->timers; *p && (*p)->due_ms <= t->due_ms; p = &(*p)->next)
		;
	t->next = *p;
	*p = t;
	return t;
}

void loop_cancel_timer(struct loop_timer *t)
{
	if (t)
		t->dead = true;
}

static int next_timeout(struct loop *l, int max_wait_ms)
{
	uint64_t now = now_ms();

	for (struct loop_timer *t = l->timers; t; t = t->next) {
		if (t->dead)
			continue;
		uint64_t wait = t->due_ms > now ? t->due_ms - now : 0;
		if (max_wait_ms < 0 || wait < (uint64_t)max_wait_ms)
			return (int)wait;
		break;
	}
	return max_wait_ms;
}

static void run_timers(struct loop *l)
{
	uint64_t now = now_ms();

	/* Timers added by a callback are due later than now: the walk stops
	 * at the first one not yet due, so each runs at most once here. */
	for (struct loop_timer *t = l->timers; t && t->due_ms <= now;
	     t = t->next) {
		if (t->dead)
			continue;
		t->dead = true;
		t->cb(t->data);
	}
}

int loop_run_once(struct loop *l, int max_wait_ms)
{
	struct epoll_event evs[64];
	int n = epoll_wait(l->epfd, evs, (int)ARRAY_SIZE(evs),
			   next_timeout(l, max_wait_ms));

	if (n < 0 && errno != EINTR)
		return -errno;
	for (int i = 0; i < n; i++) {
		struct loop_watch *w = evs[i].data.ptr;
		if (!w->dead)
			w->cb(w->data, evs[i].events);
	}
	run_timers(l);
	bury(l);
	return 0;
}

int loop_run(struct loop *l)
{
	while (!l->quit) {
		int r = loop_run_once(l, -1);
		if (r < 0)
			return r;
	}
	return 0;
}

void loop_quit(struct loop *l)
{
	l->quit = true;
}
