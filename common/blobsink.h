/* SPDX-License-Identifier: MIT */
/*
 * Where a download's bytes go: appended to the partial file and hashed,
 * both on threads of their own, so that they overlap the network.
 *
 * The receiving thread reads the bytes from the download helper's pipe
 * (blobsink_fill) or copies them (blobsink_write) into one of four 1 MiB
 * buffers; a full buffer goes through a bounded ring to two consumers, a
 * hashing thread and a writing thread, and comes back to the receiver when
 * both are done with it (the receiver waits when the ring is full, so
 * memory stays at 4 MiB per download).
 *
 * Why a hashing thread: SHA-256 costs about as much CPU as all the rest
 * (~0.9 CPU-s per GiB with SHA-NI, against ~1.0 for the whole of
 * `curl -o`); inline it halves the rate, on a second core it costs no time.
 * Why buffers of our own: the pipe hands the bytes over 64 KiB or so at a
 * time; 1 MiB buffers make one write of 16 and let the two consumers read
 * the same bytes at leisure. Read straight into them, the bytes are copied
 * once on this side (kernel to buffer), as curl's callback copied them
 * before the download moved out of root.
 * Why a writing thread: aligned buffers are written with O_DIRECT, which
 * skips the copy into the page cache and the kernel's writeback work (0.25
 * CPU-s per GiB in all, the difference when other work keeps the cores busy),
 * but waits for the disk; on its own thread that wait overlaps the network
 * and the hash instead of stalling the receiver. File systems that refuse
 * O_DIRECT get buffered writes with writeback started every 64 MiB.
 *
 * One thread calls these functions (the receiver). Errors are sticky:
 * after a failed write or hash every call returns the same error; a write
 * error shows at the latest at the next flush.
 */
#ifndef VMENV_BLOBSINK_H
#define VMENV_BLOBSINK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct digest;
struct blobsink;

/* Appends to fd from `offset` on; dg has seen the first `offset` bytes
 * already and sees the rest here. `size` (the expected total) is
 * reserved on disk up front when the file system can (an early -ENOSPC).
 * 0, -ENOMEM, -ENOSPC, or what pthread_create failed with. */
int blobsink_new(int fd, struct digest *dg, uint64_t offset, uint64_t size,
		 struct blobsink **ret);
/* Stops the threads (after they finish what they were given) and frees.
 * Accepts NULL. Does not close fd; leaves it without O_DIRECT. */
void blobsink_free(struct blobsink *s);
/* Takes n bytes: copies them and hands a full buffer to the writing and
 * hashing threads. Waits while the ring is full. 0, or the sticky -errno
 * of a write (-ENOSPC, -EIO...) or of the digest. */
int blobsink_write(struct blobsink *s, const void *p, size_t n);
/* Reads at most max bytes from fd (a pipe from the download helper)
 * straight into the buffer being filled, as blobsink_write would have
 * copied them: no copy of its own. Bytes read (> 0), 0 at the end of
 * fd, -EAGAIN when fd has nothing yet (non-blocking), or the sticky
 * -errno. */
ssize_t blobsink_fill(struct blobsink *s, int fd, size_t max);
/* Hands over what is buffered and waits until everything is written and
 * hashed: then the file and the digest hold blobsink_offset() bytes. 0 or
 * the sticky error. */
int blobsink_flush(struct blobsink *s);
/* Bytes taken so far (written or still buffered). */
uint64_t blobsink_offset(const struct blobsink *s);
/* Starts over: drops what is buffered, waits for the threads, resets the
 * digest and empties the file. 0 or -errno. */
int blobsink_restart(struct blobsink *s);

#endif
