/* SPDX-License-Identifier: MIT */
/*
 * Per-job copy-on-write overlays: "qemu-img create -f qcow2 -b BASE -F FMT
 * OVERLAY" in a child process with a clean environment, no inherited file
 * descriptors, default signal handling, stdin from /dev/null and its output
 * captured for the error message. qemu-img reads only the base's header, so
 * the time does not depend on the base's size.
 */
#ifndef VMMD_OVERLAY_H
#define VMMD_OVERLAY_H

#include <stddef.h>
#include <sys/types.h>

#define OVERLAY_MAX_ARGV 12

struct overlay_proc {
	pid_t pid;
	int out_fd; /* qemu-img's stdout+stderr; EOF when it exits */
};

/* Pure: fills argv (NULL-terminated, at most OVERLAY_MAX_ARGV entries).
 * fmt is "qcow2" or "raw". -EINVAL for anything else or a path that is not
 * a clean absolute path. */
int overlay_argv(const char *qemu_img, const char *base, const char *fmt,
		 const char *overlay, const char **argv);
/* Starts qemu-img; as uid/gid when uid is not 0 (a user's own image). */
int overlay_spawn(const char *qemu_img, const char *base, const char *fmt,
		  const char *overlay, uid_t uid, gid_t gid,
		  struct overlay_proc *ret);
/* After out_fd's EOF (or to give up: kill first): reaps the child. 0, or
 * -EIO with qemu-img's message (out, what it printed) in err. Closes
 * out_fd. */
int overlay_reap(struct overlay_proc *p, const char *out, char *err,
		 size_t errlen);
/* Spawn, wait, reap: for vmenvctl-like callers and the benchmark. */
int overlay_create(const char *qemu_img, const char *base, const char *fmt,
		   const char *overlay, char *err, size_t errlen);

/* The job's overlay in its disk directory, as it is now: opened without
 * following a link or blocking on a FIFO, and only when it is a plain file
 * of root's or the job's user's (libvirt may not have given it back) with
 * one link. The fd (read-only), or -errno (-ENOENT: none). */
#define OVERLAY_NAME "overlay.qcow2"
struct stat;
int overlay_open_checked(int disk_dfd, uid_t uid, struct stat *st);

#endif
