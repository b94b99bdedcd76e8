/* SPDX-License-Identifier: MIT */
/*
 * The slow half of a checkpoint in a worker thread: libvirt's save or
 * restore, moving the overlay, copying the batch output, hashing. The
 * worker gets copies of everything it needs (never the job), and its
 * result returns to the loop through a pipe, where done() runs, only if
 * the job still exists. One worker per job at a time.
 */
#ifndef VMMD_CKPT_WORK_H
#define VMMD_CKPT_WORK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ckpt_store.h"
#include "jobfiles.h"
#include "proto.h"

struct job;
struct ckpt_work;

/* Passed-through devices: unplugged (waiting for the guest, bounded)
 * before the save; plugged after the restore. */
#define CKPT_MAX_DEVS	    32
#define CKPT_DETACH_WAIT_MS 30000
struct ckpt_work_devs {
	uint32_t n;
	char *xml[CKPT_MAX_DEVS]; /* owned */
	char gone[CKPT_MAX_DEVS][128];
};
void ckpt_work_devs_clear(struct ckpt_work_devs *d);

struct ckpt_work_save {
	const char *domain;
	const char *root;	    /* the store */
	const char *dir;	    /* the new seq directory */
	const char *job_dir;	    /* holds disk/overlay.qcow2 */
	int out_fd;		    /* the batch output (taken over), or -1 */
	struct ckpt_manifest man;   /* taken over; files filled by the worker */
	struct ckpt_work_devs devs; /* taken over */
	struct jobfiles_after_save files;
};

struct ckpt_work_restore {
	const char *domain;
	const char *dir; /* the checkpoint */
	const char *job_dir;
	const char *xml;
	uint64_t hard_limit_kib;
	uint32_t job_id; /* whose checkpoint it must be */
	uint32_t uid;
	const char *replay; /* where the saved output goes ("" : nowhere) */
	struct ckpt_work_devs devs; /* taken over */
};

struct ckpt_work_result {
	int r;
	char err[PROTO_MAX_ERROR];
	bool guest_gone; /* the save ended QEMU (a later step failed) */
	bool restored;	 /* the restore started QEMU (a later step failed) */
	uint64_t bytes;	 /* written by the save: memory + overlay */
	uint64_t ms;
};

typedef void (*ckpt_work_done_f)(struct job *j, struct ckpt_work *w);

int ckpt_work_save(struct job *j, struct ckpt_work_save *ws,
		   ckpt_work_done_f done, struct ckpt_work **ret);
int ckpt_work_restore(struct job *j, struct ckpt_work_restore *wr,
		      ckpt_work_done_f done, struct ckpt_work **ret);
const struct ckpt_work_result *ckpt_work_result(const struct ckpt_work *w);
/* Waits for the thread and frees it; done() is not called. NULL-safe. */
void ckpt_work_cancel(struct ckpt_work *w);

/* The steps the thread runs, exposed for the unit tests. */
int ckpt_work_move_overlay(const char *job_dir, const char *dir,
			   uint64_t *bytes, char *err, size_t errlen);
int ckpt_work_copy_output(int fd, const char *path, uint64_t max);

#endif
