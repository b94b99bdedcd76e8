/* SPDX-License-Identifier: MIT */
/*
 * vmmd's side of the image cache: downloads run in worker threads (one per
 * file in flight, shared by every job that needs it: one download per image
 * however many jobs ask at once), and report to the event loop through a
 * pipe, so the loop never blocks on the network. The threads touch nothing
 * but their own struct imgfetch until they post it back.
 *
 * Also here: the catalog when it is a URL (fetched in a thread as well,
 * every catalog_refresh_s and at SIGHUP; the last good copy is kept in the
 * cache directory for a restart while the server is down).
 */
#ifndef VMMD_IMAGE_H
#define VMMD_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "fetch.h"
#include "imgcache.h"

struct vmmd;
struct images;
struct imgfetch_waiter;

/* Called on the loop when the file is in the cache (r == 0, leased for
 * owner) or not (r < 0, err says why, naming the image). */
typedef void (*imgfetch_done_f)(void *data, int r, const char *err);
/* Called on the loop about once a second while the file is being
 * transferred (not while it is only looked up or waited for): done is
 * root's count of the file's bytes in the partial file, total the
 * catalog's size. For display only. */
typedef void (*imgfetch_progress_f)(void *data, uint64_t done, uint64_t total);

int images_init(struct vmmd *d);
/* Cancels every download, joins the threads. */
void images_fini(struct vmmd *d);

const struct imgcache *images_cache(struct vmmd *d);

/* Makes f present in the cache and leased for owner, then calls done on
 * the loop (never from inside this call). what names the file for errors
 * ("image 'debian12:2025.1' disk"). *ret lets the caller cancel. */
int images_request(struct vmmd *d, const struct catalog_file *f,
		   const char *what, const char *owner, imgfetch_done_f done,
		   void *data, struct imgfetch_waiter **ret);
/* Progress for w's request (data as given to images_request). */
void images_on_progress(struct imgfetch_waiter *w, imgfetch_progress_f fn);
/* done will not be called. The download goes on only while another job
 * waits for it. Accepts NULL. */
void images_cancel(struct imgfetch_waiter *w);
/* Downloads in flight and bytes received by finished ones (status). */
unsigned images_in_flight(struct vmmd *d);

/* Catalog from a URL: a refresh in the background (no-op for a file). */
void images_catalog_refresh(struct vmmd *d);
/* At start: fetch once, synchronously (falls back to the saved copy). */
int images_catalog_initial(struct vmmd *d, char *err, size_t errlen);

#endif
