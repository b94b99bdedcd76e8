/* SPDX-License-Identifier: MIT */
/*
 * Where a download's bytes go: appended to the partial file and hashed, the
 * hashing on a thread of its own so that it overlaps the network.
 *
 * Why a thread: SHA-256 costs about as much CPU as receiving and writing
 * the bytes (~0.9 CPU-s per GiB with SHA-NI, against ~0.7 for the rest of
 * the download and ~0.9-1.1 for all of `curl -o`), so hashing inline
 * halves the rate; on a second core it costs no time. Why a copy: curl
 * hands the bytes over 16 KiB at a time and reuses its buffer when the
 * callback returns. Copying them into a few large buffers (0.1 CPU-s per
 * GiB) makes one write of 64, and the hashing thread reads them from
 * memory. The previous design (16 KiB writes, the hashing thread mapping
 * the written pages back and starting their writeback) spent 2.0-2.4 CPU-s
 * per GiB against 1.6-1.8 now, and its hashing thread waited on the file's
 * locks and on writeback throttling. The thread gets the buffers in order
 * through a bounded queue (a ring), so the receiver waits when hashing
 * falls behind and memory stays bounded (4 MiB per download).
 *
 * One thread writes (the receiver), one hashes; a sink is not shared by
 * other threads. Errors are sticky: after a failed write or hash every call
 * returns the same error.
 */
#ifndef VMENV_BLOBSINK_H
#define VMENV_BLOBSINK_H

#include <stddef.h>
#include <stdint.h>

struct digest;
struct blobsink;

/* Appends to fd from `offset` on; dg has seen the first `offset` bytes
 * already and sees the rest here. `size` (the expected total) is
 * reserved on disk up front when the file system can (an early -ENOSPC).
 * 0, -ENOMEM, -ENOSPC, or what pthread_create failed with. */
int blobsink_new(int fd, struct digest *dg, uint64_t offset, uint64_t size,
		 struct blobsink **ret);
/* Stops the thread (after hashing what it was given) and frees. Accepts
 * NULL. Does not close fd. */
void blobsink_free(struct blobsink *s);
/* Takes n bytes: copies them, writes a full buffer to the file and queues
 * it for hashing. Waits when the hashing thread is NBUF buffers behind.
 * 0, or -errno of pwrite (-ENOSPC, -EIO...) or of the digest. */
int blobsink_write(struct blobsink *s, const void *p, size_t n);
/* Writes what is buffered and waits until everything is hashed: then the
 * file and the digest hold blobsink_offset() bytes. 0 or the sticky error. */
int blobsink_flush(struct blobsink *s);
/* Bytes taken so far (written or still buffered). */
uint64_t blobsink_offset(const struct blobsink *s);
/* Starts over: drops what is buffered, waits for the thread, resets the
 * digest and empties the file. 0 or -errno. */
int blobsink_restart(struct blobsink *s);

#endif
