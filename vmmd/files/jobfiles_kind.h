/* SPDX-License-Identifier: MIT */
/* How a job's working directory (and mounts) reach its guest: jobfiles.h.
 * Apart, so that the job record (jobrec.h) can hold it without depending
 * on the file code. */
#ifndef VMMD_JOBFILES_KIND_H
#define VMMD_JOBFILES_KIND_H

enum jobfiles_kind { JOBFILES_VIRTIO_9P = 0, JOBFILES_SERVED = 1 };

#endif
