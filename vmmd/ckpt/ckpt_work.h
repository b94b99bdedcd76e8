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

/* The checkpoint's directory reaches the worker as an fd it takes over
 * (dirfd); dir is its path for messages, io_dir the path under which
 * code that takes paths (libvirt's save and restore, jobfiles) reaches
 * it: ckpt_store_path(), pinned to dirfd unless the store is root's all
 * the way. */
struct ckpt_work_save {
	const char *domain;
	int dirfd;	     /* the new seq directory (taken over) */
	const char *dir;     /* its path */
	const char *io_dir;  /* ckpt_store_path(store, dirfd, dir, "") */
	const char *job_dir; /* holds disk/overlay.qcow2 */
	uint32_t uid;	     /* the job's: may own a user image's */
	int out_fd;	     /* the batch output (taken over), or -1 */
	/* The domain's memory hard limit and its guest's RAM (KiB): the
	 * limit is raised by the RAM during the save (save_thread). */
	uint64_t limit_kib, guest_kib;
	struct ckpt_manifest man;   /* taken over; files filled by the worker */
	struct ckpt_work_devs devs; /* taken over */
	struct jobfiles_after_save files;
	bool keep_older; /* the job's older seqs stay (multi-node) */
};

/* Where the restore puts the saved batch output: a file of the job's
 * (root's) directory that exec_ckpt_adopt replays. */
#define CKPT_WORK_REPLAY "ckpt-output"

struct ckpt_work_restore {
	const char *domain;
	int dirfd;	    /* the checkpoint (taken over) */
	const char *dir;    /* its path */
	const char *io_dir; /* as in ckpt_work_save */
	const char *job_dir;
	const char *xml;
	uint64_t hard_limit_kib;
	uint32_t job_id; /* whose checkpoint it must be */
	uint32_t uid;
	bool replay; /* the saved output into job_dir/CKPT_WORK_REPLAY */
	struct ckpt_work_devs devs; /* taken over */
};

struct ckpt_work_result {
	int r;
	char err[PROTO_MAX_ERROR];
	bool guest_gone; /* the save ended QEMU (a later step failed) */
	bool restored;	 /* the restore started QEMU (a later step failed) */
	uint64_t bytes;	 /* written by the save: memory + overlay */
	uint64_t ms;
	bool replayed; /* the restore wrote job_dir/CKPT_WORK_REPLAY */
};

typedef void (*ckpt_work_done_f)(struct job *j, struct ckpt_work *w);

int ckpt_work_save(struct job *j, struct ckpt_work_save *ws,
		   ckpt_work_done_f done, struct ckpt_work **ret);
int ckpt_work_restore(struct job *j, struct ckpt_work_restore *wr,
		      ckpt_work_done_f done, struct ckpt_work **ret);
const struct ckpt_work_result *ckpt_work_result(const struct ckpt_work *w);
/* The checkpoint's directory fd (the caller's now); -1 when the worker
 * had none. A save that went well: the directory just committed. */
int ckpt_work_take_dir(struct ckpt_work *w);
/* A restore's checkpoint as the worker verified it (its files still
 * open): moved into *ret (ckpt_verified_clear it). */
void ckpt_work_take_verified(struct ckpt_work *w, struct ckpt_verified *ret);
/* Waits for the thread and frees it; done() is not called. NULL-safe. */
void ckpt_work_cancel(struct ckpt_work *w);

/* The steps the thread runs, exposed for the unit tests. */
/* job_dir/disk/overlay.qcow2 into dirfd as disk.qcow2: renamed when it is
 * a plain file of root's with one link on the same file system, else
 * copied from the fd that was checked (a user image's overlay is the
 * user's: uid); a link, a FIFO, another owner or more links are
 * refused. */
int ckpt_work_move_overlay(const char *job_dir, int dirfd, const char *dir,
			   uid_t uid, uint64_t *bytes, char *err,
			   size_t errlen);
/* The batch output fd (a plain file, at most max bytes) into dirfd as
 * output. */
int ckpt_work_copy_output(int fd, int dirfd, uint64_t max);

#endif
