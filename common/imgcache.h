/* SPDX-License-Identifier: MIT */
/*
 * The node-local, content-addressed image cache. Shared by every vmmd on
 * the machine and by vmenvctl, so every rule holds across processes
 * (flock), not only across threads.
 *
 *   DIR/sha256/<hex>          a verified file, root 0644, never modified;
 *                             its mtime is the last use (LRU)
 *   DIR/sha256/.<hex>.part    a download in progress (0600), only ever
 *                             written by the holder of <hex>'s lock
 *   DIR/locks/<hex>.lock      flock: one download of <hex> at a time
 *   DIR/locks/cache.lock      flock: leases and eviction (held briefly)
 *   DIR/leases/<hex>/<owner>  "a running job uses <hex>"; <owner> is
 *                             NODE.JOBID. Files, so they survive a vmmd
 *                             restart; a blob with a lease is never evicted.
 *
 * Lock files are never removed: unlinking a lock file another process has
 * open would let two holders coexist.
 *
 * No function here logs; errors are -errno, with a message in err where
 * there is one.
 */
#ifndef VMENV_IMGCACHE_H
#define VMENV_IMGCACHE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct imgcache {
	char dir[VMENV_MAX_PATH - 256];
	uint64_t max_bytes;
};

struct imgcache_entry {
	char hex[65];
	uint64_t size;
	int64_t mtime; /* last use, seconds */
	unsigned leases;
	bool partial; /* a .part file */
};

/* Creates the layout when create is set (root, 0755; locks 0700). */
int imgcache_init(struct imgcache *c, const char *dir, uint64_t max_bytes,
		  bool create);

int imgcache_blob_path(const struct imgcache *c, const char *hex, char *buf,
		       size_t len);
int imgcache_part_path(const struct imgcache *c, const char *hex, char *buf,
		       size_t len);
/* 0 when the complete blob is there (its size in *size, may be NULL). */
int imgcache_stat(const struct imgcache *c, const char *hex, uint64_t *size);
/* Marks a use now (LRU). */
int imgcache_touch(const struct imgcache *c, const char *hex);

/* Locks name ("cache" or a hex digest). wait: block until granted, polling
 * *cancel (may be NULL) every 100 ms; else -EWOULDBLOCK when held. The fd
 * is the lock; close it (imgcache_unlock) to release. */
int imgcache_lock(const struct imgcache *c, const char *name, bool wait,
		  const atomic_int *cancel, int *ret_fd);
void imgcache_unlock(int fd);

/* Lease owner names: NODE.JOBID. */
int imgcache_owner(const char *node, uint32_t job, char *buf, size_t len);
/* Adds a lease on a present blob (-ENOENT when it is not there). */
int imgcache_lease(const struct imgcache *c, const char *hex,
		   const char *owner);
int imgcache_unlease(const struct imgcache *c, const char *hex,
		     const char *owner);
/* Removes the leases of node's jobs for which keep(data, job) is false
 * (after a vmmd restart, the jobs it no longer knows). Returns how many. */
int imgcache_lease_sweep(const struct imgcache *c, const char *node,
			 bool (*keep)(void *data, uint32_t job), void *data);

/* Everything in the cache (blobs and partial files). *ret is malloc'ed. */
int imgcache_list(const struct imgcache *c, struct imgcache_entry **ret,
		  size_t *ret_n);
/* Pure LRU choice: marks in evict[] the entries to remove, oldest first,
 * never a leased or partial one, until total + need <= max. Returns the
 * bytes still over the bound (0: it fits). */
uint64_t imgcache_pick_victims(const struct imgcache_entry *e, size_t n,
			       uint64_t max, uint64_t need, bool *evict);
/* Makes room for need more bytes: -EFBIG when need alone exceeds the
 * bound, -ENOSPC when leased blobs fill it. Stale partial files (no lock
 * holder) go first. */
int imgcache_make_room(const struct imgcache *c, uint64_t need, char *err,
		       size_t errlen);
/* Removes one blob; -EBUSY when leased or being downloaded. */
int imgcache_remove(const struct imgcache *c, const char *hex, char *err,
		    size_t errlen);
/* Removes partial files nobody is writing. Returns how many. */
int imgcache_sweep_parts(const struct imgcache *c);

#endif
