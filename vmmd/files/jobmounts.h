/* SPDX-License-Identifier: MIT */
/*
 * A job's host directories in its guest (--vm-mount, and the mounts of the
 * site's policies): checked as the job's user when the job starts, and
 * shared the way the job's working directory is (vmmd/files/jobfiles.h):
 *
 *   virtio-9p  QEMU's 9p server (QEMU runs as the job's user; ":ro" is
 *              enforced by QEMU, not by the guest's mount flags), a
 *              <filesystem> each; across a checkpoint the agent releases
 *              and mounts them again, and a mount kept busy refuses the
 *              checkpoint naming the directory.
 *   served     one vmenv-9p per mount, as the job's user, on a port of its
 *              own (jobfiles_served.h: started, frozen, thawed, adopted
 *              and stopped with the working directory's; ":ro" is
 *              enforced by the server, --read-only); open files on it
 *              survive a checkpoint.
 *
 * The agent mounts them at SETUP after the working directory.
 */
#ifndef VMMD_JOBMOUNTS_H
#define VMMD_JOBMOUNTS_H

#include <stddef.h>
#include <stdint.h>

#include "agentwire.h"
#include "domxml.h"
#include "vmspec.h"

struct job;

/* A mount's 9p tag, "vmenv.m<index>", or its port's name when served
 * (JOBFILES_MOUNT_PORT_FMT). */
#define JOBMOUNTS_TAG_LEN 32

/* Every mount of the job's spec, as the job's user: the source must be a
 * directory the user may open and read, named by its own path (a
 * symbolic link on the way is refused: it could lead out of what the
 * policy allows), and the destination must not cover the working
 * directory. 0, or -errno with err naming the job, the mount and why. */
int jobmounts_check(const struct job *j, char *err, size_t errlen);

/* s->mounts, in m (room for VMSPEC_MAX_MOUNTS) and tags; none for a
 * served job (jobfiles_domspec adds their ports). */
void jobmounts_domspec(const struct job *j, struct dom_mount *m,
		       char (*tags)[JOBMOUNTS_TAG_LEN], struct dom_spec *s);

/* Appends the mounts to the agent's SETUP (after s->nmounts entries),
 * with tags in tags: 9p tags, or for a served job the ports'
 * (AW_MOUNT_SERVED). */
void jobmounts_setup(struct job *j, char (*tags)[JOBMOUNTS_TAG_LEN],
		     struct aw_setup *s);

#endif
