/* SPDX-License-Identifier: MIT */
/*
 * A job's host directories in its guest (--vm-mount, and the mounts of the
 * site's policies): checked as the job's user when the job starts, shared
 * by QEMU's 9p server (QEMU runs as that user; ":ro" is enforced by QEMU,
 * not by the guest's mount flags), mounted by the agent at SETUP after the
 * working directory. They are virtio-9p shares whatever way the working
 * directory reaches the guest (vmmd/files/jobfiles.h): across a checkpoint the
 * agent releases and mounts them again, and a mount kept busy refuses the
 * checkpoint naming the directory.
 */
#ifndef VMMD_JOBMOUNTS_H
#define VMMD_JOBMOUNTS_H

#include <stddef.h>
#include <stdint.h>

#include "agentwire.h"
#include "domxml.h"
#include "vmspec.h"

struct job;

/* A mount's 9p tag: "vmenv.m<index>". */
#define JOBMOUNTS_TAG_LEN 20

/* Every mount of the job's spec, as the job's user: the source must be a
 * directory the user may open and read, named by its own path (a
 * symbolic link on the way is refused: it could lead out of what the
 * policy allows), and the destination must not cover the working
 * directory. 0, or -errno with err naming the job, the mount and why. */
int jobmounts_check(const struct job *j, char *err, size_t errlen);

/* s->mounts, in m (room for VMSPEC_MAX_MOUNTS) and tags. */
void jobmounts_domspec(const struct job *j, struct dom_mount *m,
		       char (*tags)[JOBMOUNTS_TAG_LEN], struct dom_spec *s);

/* Appends the mounts to the agent's SETUP (after s->nmounts entries),
 * with tags in tags. */
void jobmounts_setup(struct job *j, char (*tags)[JOBMOUNTS_TAG_LEN],
		     struct aw_setup *s);

#endif
