/* SPDX-License-Identifier: MIT */
/*
 * Kept overlays (--vm-keep-overlay, docs/operations.md "Kept overlays"):
 * the store, its records and the choice of what goes over a limit. No
 * logging, no daemon state: vmmd/ovkeep.c decides when and logs.
 *
 *   <run_dir>/overlays/            root 0700 (checked on every open)
 *   <run_dir>/overlays/<job>.qcow2 the job's overlay, root 0600, one link
 *   <run_dir>/overlays/<job>.rec   its record, root 0600, written last
 *                                  and atomically
 *
 * A .qcow2 without a record is not kept (ovkeep_store_tidy removes it); a
 * record is the only thing that says whose an overlay is. Every name is
 * looked up at the store's fd, never followed (a link is -ELOOP), and a
 * file is used only when it is a plain file of root's with one link.
 * Nothing here reads the qcow2's content: root never parses it.
 */
#ifndef VMMD_OVKEEP_STORE_H
#define VMMD_OVKEEP_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util.h"

#define OVKEEP_DIR	    "overlays"
#define OVKEEP_MAX_REC	    4096u  /* bytes of a record file */
#define OVKEEP_MAX_LIST	    65536u /* records one listing reads */
#define OVKEEP_LEASE_SUFFIX ".overlay"

struct ovkeep_rec {
	uint32_t job;
	uint32_t uid;
	int64_t created; /* kept at, wall clock s */
	uint64_t bytes;	 /* the overlay's size (a listing: as it is now) */
	char node[128];
	char image[VMENV_MAX_IMAGE_NAME]; /* the job's image as asked */
	char base_hex[65];		  /* the cached base's sha256 */
	char base[VMENV_MAX_PATH];	  /* its path in the image cache */
};

/* The record as text ("key value" lines): 0 or -ENAMETOOLONG. */
int ovkeep_rec_format(const struct ovkeep_rec *r, char *buf, size_t len);
/* Strict: every key once, nothing else; 0 or -EINVAL. */
int ovkeep_rec_parse(const char *text, struct ovkeep_rec *ret);

/* The image cache lease owner of a kept overlay: NODE.JOB.overlay, which
 * imgcache_lease_sweep (NODE.JOBID only) never takes for a job's. */
int ovkeep_lease_owner(const char *node, uint32_t job, char *buf, size_t len);

/* Opens <run_dir>/overlays (with create: makes it, 0700) as root's and
 * closed to others: the fd, or -errno (-ENOENT: none yet). */
int ovkeep_store_open(const char *run_dir, bool create);

/* Moves disk_dfd's overlay.qcow2 into the store as <job>.qcow2 (a rename:
 * the same file system) and writes the record (rec->bytes set from the
 * file). The overlay must be a plain file of root's or rec->uid's (libvirt
 * may leave it the user's) with one link, and the name moved must still
 * be that file; it is made root's 0600. -ENOENT: no
 * overlay; -EPERM/-EMLINK/-EINVAL/-ELOOP: refused (left where it was);
 * -EXDEV: the store is on another file system. Nothing is left in the
 * store of a failed put. */
int ovkeep_store_put(int sfd, int disk_dfd, struct ovkeep_rec *rec);

/* The record of job (checked as above). */
int ovkeep_store_get(int sfd, uint32_t job, struct ovkeep_rec *ret);

/* The kept overlay of job opened for reading, for asker: an fd when the
 * record's uid is asker's or asker is root; -ENOENT none, -EACCES not
 * asker's; a link, another owner, a second name: refused as above. The
 * record in *ret from -EACCES on. */
int ovkeep_store_open_for(int sfd, uint32_t job, uid_t asker,
			  struct ovkeep_rec *ret);

/* Removes job's overlay and record (unlinkat: a link is removed as a
 * link). 0 when neither is there any more. */
int ovkeep_store_remove(int sfd, uint32_t job);

/* Every readable record, sorted by created (oldest first), bytes as the
 * overlay is now (0 when it is missing). *ret is malloc'ed. */
int ovkeep_store_list(int sfd, struct ovkeep_rec **ret, size_t *ret_n);

/* Removes what no record accounts for: a .qcow2 without its record,
 * a record without its .qcow2 (its lease is the caller's: those records
 * are returned in *ret, malloc'ed), leftover temporary files and names
 * that are not the store's (a link planted is removed, never followed).
 * Returns how many names went, or -errno. */
int ovkeep_store_tidy(int sfd, struct ovkeep_rec **ret, size_t *ret_n);

/* --- limits (pure) --------------------------------------------------- */

struct ovkeep_limits {
	uint32_t max;	      /* per user: overlays */
	uint64_t max_bytes;   /* per user: bytes */
	uint64_t total_bytes; /* the node: bytes, all users */
};

enum ovkeep_verdict {
	OVKEEP_KEEP,	     /* kept; evict[] says which go first */
	OVKEEP_NONE_ALLOWED, /* max is 0 */
	OVKEEP_TOO_BIG,	     /* larger than max_bytes alone */
	OVKEEP_NODE_FULL,    /* over total_bytes with all the user's gone */
};

/* Whether a new overlay of uid's job, of bytes, is kept beside recs[n]
 * (sorted oldest first), and which of recs must go for it: job's own
 * older one (a requeued job's), then uid's oldest until uid's count and
 * bytes, and the node's bytes, fit. Other users' overlays never go. With
 * a verdict other than KEEP, evict[] is all false. */
enum ovkeep_verdict ovkeep_plan(const struct ovkeep_rec *recs, size_t n,
				uint32_t uid, uint32_t job, uint64_t bytes,
				const struct ovkeep_limits *l, bool *evict);

/* Past its retention: created + retention_s <= now. */
bool ovkeep_expired(const struct ovkeep_rec *r, int64_t now,
		    uint32_t retention_s);

#endif
