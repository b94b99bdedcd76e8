/* SPDX-License-Identifier: MIT */
#pragma once
/* A guest's memory and device state into a checkpoint's image, as every
 * checkpoint writes it (vmmd's worker and bench/ckpt-save alike). */
#include "hv.h"

#include <stddef.h>

/* Writeback is started every CKPT_SAVE_STEP bytes the image grows by. */
#define CKPT_SAVE_STEP (32u << 20)

/* hv->save of domain into path through the page cache, with the image's
 * writeback started behind the stream (vmmd/wbfollow.h). On success the
 * domain is gone; on failure libvirt resumed it. */
int ckpt_save_domain(const struct hv_ops *hv, void *hv_ctx, const char *domain,
		     const char *path, char *err, size_t errlen);
