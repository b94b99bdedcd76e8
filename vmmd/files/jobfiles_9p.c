/* SPDX-License-Identifier: MIT */
/*
 * JOBFILES_VIRTIO_9P: QEMU's own 9p server shares the job's working
 * directory (a <filesystem> in the domain); the agent mounts it at SETUP.
 *
 * Across a checkpoint QEMU refuses to save while the share is mounted, so
 * the agent unmounts it while preparing (CKPT_PREPARE with AW_CKPT_MOUNTS,
 * after the processes are frozen) and mounts it again at CKPT_RESUME. A
 * process with a file open or its cwd in the share keeps the mount busy:
 * the agent then refuses with "checkpoint refused: files open in <dir>".
 * Nothing of the share's state needs to go into the checkpoint, so freeze
 * and thaw have nothing to do here.
 */
#include "jobfiles_ops.h"

#include "domxml.h"
#include "jobrec.h"
#include "vmmd.h"

static int p9_domspec(const struct job *j, struct dom_spec *s)
{
	s->share_dir = j->work_dir;
	s->share_tag = JOB_SHARE_TAG;
	return 0;
}

const struct jobfiles_ops jobfiles_9p_ops = {
    .domspec = p9_domspec,
};
