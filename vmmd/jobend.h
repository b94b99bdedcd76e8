/* SPDX-License-Identifier: MIT */
/*
 * How a job's parts go away, declared once (jobend.c's table): the job
 * failed (its guest and files go now, the record stays for its tasks),
 * the job ended here (everything goes), or vmmd shuts down (vmmd forgets
 * the job; the guest runs on and the next vmmd adopts it). Each part of a
 * job has one row with what each of those does to it, in the order the
 * parts must go: sessions and the checkpoint before the guest, the guest
 * before the kept overlay (--vm-keep-overlay moves the overlay out, after
 * the guest is gone), that before the image's lease and the job's
 * directory.
 */
#ifndef VMMD_JOBEND_H
#define VMMD_JOBEND_H

struct job;

enum job_end {
	JOB_END_FAIL,	/* the record stays with j->error */
	JOB_END_STOP,	/* the record goes after this (job_stop) */
	JOB_END_FORGET, /* vmmd's shutdown: the guest stays */
};

void job_end(struct job *j, enum job_end how);

#endif
