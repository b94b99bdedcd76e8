/* SPDX-License-Identifier: MIT */
/*
 * Makes one file of an image present in the cache: the only way a blob gets
 * there. One download per blob across threads and processes (the blob's
 * flock; a second puller waits, then finds it there), resume with a range
 * request after an interruption, retries with back-off, and no partial
 * file left behind by a failure.
 *
 * The transfer runs in the unprivileged download helper (fetch.h); the
 * bytes come back through a pipe and this process writes them into the
 * partial file and hashes them itself, as they arrive (a resumed file's
 * first part is read back through the same fd and hashed first). The
 * helper never holds an fd of the cache. The size is counted here, the
 * sha256 compared here, and the name renamed into place is checked to be
 * the file written and hashed through that fd.
 * Blocking: vmmd calls it from a worker thread, vmenvctl directly.
 */
#ifndef VMENV_IMGPULL_H
#define VMENV_IMGPULL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "fetch.h"
#include "imgcache.h"

struct imgpull_req {
	const char *url;
	const char *sha256;
	uint64_t size;
	const char *what; /* "image 'debian12:2025.1' disk", for errors */
	const char *lease_owner; /* lease the blob for this owner (or NULL) */
	fetch_progress_f progress;
	void *progress_data;
	const atomic_int *cancel;
};

struct imgpull_stats {
	bool cached;	   /* was already there: nothing transferred */
	unsigned attempts; /* transfers tried */
	uint64_t bytes;	   /* received over the network */
	bool resumed;	   /* a range request continued a partial file */
};

/* 0, or -errno with a message naming req->what in err. */
int imgpull(const struct imgcache *c, const struct fetch_opts *o,
	    const struct imgpull_req *req, struct imgpull_stats *st, char *err,
	    size_t errlen);

#endif
