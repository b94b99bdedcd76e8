/* SPDX-License-Identifier: MIT */
/*
 * One function run in a thread of its own, its end reported on vmmd's loop:
 * for the slow calls (libvirt's save and restore, a guest's boot) that must
 * not hold the loop. The thread gets only its argument; done() runs on the
 * loop after the thread was joined.
 */
#ifndef VMMD_WORKER_H
#define VMMD_WORKER_H

struct loop;
struct worker;

typedef void (*worker_done_f)(void *data);

/* 0, or -errno (nothing started, done() never called). */
int worker_start(struct loop *l, void *(*fn)(void *), void *arg,
		 worker_done_f done, void *data, struct worker **ret);
/* Waits for the thread and frees it; done() is not called. NULL-safe. */
void worker_cancel(struct worker *w);

#endif
