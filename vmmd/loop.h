/* SPDX-License-Identifier: MIT */
/* vmmd's single-threaded event loop: epoll for fds, a sorted list of timers.
 * Watches and timers removed during dispatch are freed only after the
 * current batch, so a callback may remove any watch, its own included. */
#ifndef VMMD_LOOP_H
#define VMMD_LOOP_H

#include <stdint.h>
#include <sys/epoll.h>

struct loop;
struct loop_watch;
struct loop_timer;

typedef void (*loop_fd_cb)(void *data, uint32_t events);
typedef void (*loop_timer_cb)(void *data);

int loop_new(struct loop **ret);
void loop_free(struct loop *l);

/* -EPERM when fd cannot be polled (a regular file): callers handle those
 * synchronously. */
int loop_add_fd(struct loop *l, int fd, uint32_t events, loop_fd_cb cb,
		void *data, struct loop_watch **ret);
int loop_mod_fd(struct loop_watch *w, uint32_t events);
/* Accepts NULL. Does not close the fd. */
void loop_del_fd(struct loop_watch *w);

struct loop_timer *loop_add_timer(struct loop *l, uint64_t delay_ms,
				  loop_timer_cb cb, void *data);
/* Accepts NULL. */
void loop_cancel_timer(struct loop_timer *t);

/* Waits at most max_wait_ms (-1: until something happens). */
int loop_run_once(struct loop *l, int max_wait_ms);
int loop_run(struct loop *l);
void loop_quit(struct loop *l);

#endif
