/* SPDX-License-Identifier: MIT */
/*
 * The disk of a template (docs/warmstart.md): an image that boots with a
 * disk (debian12) is saved with its guest's page cache and mounted file
 * system in memory, so its restore needs the disk as it was at the save.
 * The template keeps the overlay its guest booted on; a job from it
 * starts on a copy of that overlay (a few MiB: what the boot wrote) over
 * the same cached base.
 *
 * That overlay was written by a QEMU serving a guest, so it is not
 * trusted: before root copies it for a job (and libvirt opens it as
 * root), its qcow2 header must name the base it was made on and nothing
 * else: no other backing file, no external data file, no encryption, no
 * internal snapshot, closed cleanly.
 */
#ifndef VMMD_WARMDISK_H
#define VMMD_WARMDISK_H

#include <stddef.h>

#define WARM_DISK_NAME "disk.qcow2"
/* The most a template's overlay may hold (what its guest's boot wrote:
 * 384 KiB for debian12); each warm start copies it. */
#define WARM_DISK_MAX_MIB 1024

/* 0 if fd (at offset 0 on) is a qcow2 overlay of base (format fmt: "qcow2"
 * or "raw") alone; -EPERM with why if not. */
int warm_disk_check(int fd, const char *base, const char *fmt, char *why,
		    size_t whylen);

/* Moves the template guest's overlay from (after its save: its QEMU is
 * gone) to to as a copy (a new file of root's, 0600, that no descriptor
 * taken while the overlay was warm_user's reaches), checked, and at most
 * WARM_DISK_MAX_MIB: 0, or -errno with why. */
int warm_disk_keep(const char *from, const char *to, const char *base,
		   const char *fmt, char *why, size_t whylen);

/* Replaces the job's overlay (a file of root's in a directory of root's,
 * which no guest has opened yet) with a copy of the template's disk, after
 * checking it. 0, or -errno with why. */
int warm_disk_copy(const char *tmpl_disk, const char *overlay, const char *base,
		   const char *fmt, char *why, size_t whylen);

#endif
