/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Starts the kernel's writeback of a file that another process is
 * writing (libvirt's iohelper writing a checkpoint's save image), a step
 * behind its end, while it grows.
 *
 * Why: libvirt 9.0 saves through a pipe into one helper process that
 * reads and writes in turn. With O_DIRECT (VIR_DOMAIN_SAVE_BYPASS_CACHE)
 * QEMU waits while each MiB goes to the disk; through the page cache the
 * helper never waits, but the kernel starts writing only at its
 * background threshold (a tenth of memory: a whole guest's image), so
 * the helper's final fdatasync writes everything after the stream. With
 * the writeback started as the file grows, the disk works while QEMU
 * streams and the fdatasync has only the last step left
 * (docs/checkpoint.md, "Save rate").
 */
#include <stdint.h>

struct wbfollow;

/* Follows path (which may not exist yet: the writer creates it) in a
 * thread, starting writeback of every step bytes it grows by. */
int wbfollow_start(struct wbfollow **ret, const char *path, uint64_t step);

/* Bytes handed to writeback so far. */
uint64_t wbfollow_kicked(struct wbfollow *f);

/* Stops following (within a few ms: the thread waits for the disk only
 * when the device's queue is full) and frees f. Returns the bytes handed
 * to writeback; NULL: 0. */
uint64_t wbfollow_stop(struct wbfollow *f);
