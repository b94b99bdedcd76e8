/* SPDX-License-Identifier: MIT */
#include "ckpt_save.h"

#include "wbfollow.h"

int ckpt_save_domain(const struct hv_ops *hv, void *hv_ctx, const char *domain,
		     const char *path, char *err, size_t errlen)
{
	struct wbfollow *f = NULL;
	int r;

	/* Without the follower (no memory for a thread) the save is slower,
	 * not wrong: the helper's fdatasync writes it all at the end. */
	(void)wbfollow_start(&f, path, CKPT_SAVE_STEP);
	r = hv->save(hv_ctx, domain, path, err, errlen);
	wbfollow_stop(f);
	return r;
}
