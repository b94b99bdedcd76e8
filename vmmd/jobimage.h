/* SPDX-License-Identifier: MIT */
/*
 * The image part of a job's start, asynchronous: the image's files are
 * fetched into the cache (image.c, worker threads) and leased for the job,
 * then qemu-img makes the job's overlay on the cached disk (a child process
 * the loop watches), then the kernel and initrd are copied into the job's
 * directory (libvirt chowns those to the user, so the cache's copies are
 * never handed over). Then the sink's ready(); on any failure its
 * failed() with a message naming the image. The sink is the job's owner
 * (job.c): this module reports, it decides nothing about the job.
 *
 * The tasks waiting are told how far the download is (jobimg_progress).
 *
 * In the job's directory: boot/vmlinuz, boot/initrd.img, disk/overlay.qcow2.
 * The disk's lease (cache/leases/<hex>/NODE.JOB) lasts until the job ends;
 * the kernel's and initrd's only until they are copied.
 */
#ifndef VMMD_JOBIMAGE_H
#define VMMD_JOBIMAGE_H

#include <stdbool.h>
#include <stddef.h>

#include "catalog.h"
#include "domxml.h"
#include "proto.h"

struct job;

/* What the job's owner hears, on the loop. */
struct jobimg_sink {
	/* The image is in place: the guest can be built. */
	void (*ready)(struct job *j);
	/* How far the download is (and once more, p->ready, when it is in):
	 * for the tasks waiting. */
	void (*progress)(struct job *j, const struct proto_progress *p);
	/* The job cannot have its image: msg names the job and the image. */
	void (*failed)(struct job *j, const char *msg);
};

/* 0: the image is ready already (first-format entries: local files
 * copied); 1: preparing, sink->ready() or sink->failed() follows on the
 * loop; -errno with a message in err. sink must outlive the job. */
int jobimg_start(struct job *j, const struct catalog_image *img,
		 const struct jobimg_sink *sink, char *err, size_t errlen);
/* --vm-env=/abs/path (allow_user_images): a disk image the job's user owns,
 * with its own bootloader. Same returns. */
int jobimg_start_user(struct job *j, const char *path,
		      const struct jobimg_sink *sink, char *err, size_t errlen);
/* While the image downloads, sink->progress() tells the job how far
 * (common/progress.h bounds how often), and once a line went out, the
 * ready one follows. For a task that begins waiting in between: true and
 * the state now, when a line went out and the files are not all in. */
bool jobimg_progress(const struct job *j, struct proto_progress *ret);
/* Stops what is in flight (downloads, qemu-img). Leases stay. NULL-safe. */
void jobimg_abort(struct job *j);
/* At the job's end: abort, drop the leases, free. */
void jobimg_release(struct job *j);
/* At vmmd's shutdown: abort and free, keeping the leases (the guest keeps
 * running and the next vmmd adopts it). */
void jobimg_forget(struct job *j);
/* The boot part of the domain: kernel/initrd/cmdline and the disk. */
void jobimg_fill_spec(const struct job *j, struct dom_spec *s);
/* The leased base (for the state file), or NULL. */
const char *jobimg_base(const struct job *j);
/* The digests of the job's boot files (kernel, initrd and the disk's base)
 * into buf, what a warm-start template is keyed on besides the domain
 * (catalog_boot_digest): -ENOENT for a guest
 * without them or a first-format catalog entry (no digest), a user's own
 * image (its files are the user's to change). */
int jobimg_boot_digest(const struct job *j, char *buf, size_t len);
/* Where the node's cache holds the job's verified boot files (root's: never
 * the job's copies, which libvirt hands to the job's user while its guest
 * runs). -ENOENT as jobimg_boot_digest. */
int jobimg_boot_blobs(const struct job *j, char *kernel, char *initrd,
		      size_t len);
/* After a vmmd restart: the job holds a lease on hex. */
int jobimg_restore(struct job *j, const char *hex);

#endif
