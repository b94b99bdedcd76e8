/* SPDX-License-Identifier: MIT */
/*
 * Hashes a file while another thread is still writing it: a thread of its
 * own reads back (from the page cache) what the writer reports written,
 * and starts its writeback to disk as it goes. Hashing and the final fsync
 * then overlap the network instead of adding to it: SHA-256 runs at about
 * the speed of a loopback transfer, so doing it inline halves the rate.
 */
#ifndef VMENV_HASHFOLLOW_H
#define VMENV_HASHFOLLOW_H

#include <stdint.h>

struct digest;
struct hashfollow;

/* Follows fd, whose first `from` bytes dg has seen already. */
int hashfollow_start(int fd, struct digest *dg, uint64_t from,
		     struct hashfollow **ret);
/* The writer: bytes [0, end) are in the file. Cheap; call per write. */
void hashfollow_written(struct hashfollow *h, uint64_t end);
/* The writer is about to empty the file: waits until the thread is idle,
 * resets the digest; hashing starts again at 0. */
void hashfollow_restart(struct hashfollow *h);
/* Waits until everything written is hashed, stops the thread, frees.
 * 0, or the -errno a read failed with. Accepts NULL. */
int hashfollow_finish(struct hashfollow *h);

#endif
