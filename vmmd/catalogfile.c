/* SPDX-License-Identifier: MIT */
#include "catalogfile.h"

#include "log.h"
#include "vmmd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* The file's time when it was last loaded: unchanged, nothing is read. */
static struct timespec catalog_mtime;

int catalogfile_refresh(struct vmmd *d, char *err, size_t errlen)
{
	struct catalog fresh;
	struct stat st;
	int r;

	if (config_catalog_is_url(&d->cfg))
		return 0;
	if (stat(d->cfg.catalog, &st) < 0) {
		snprintf(err, errlen, "%s: %s", d->cfg.catalog,
			 strerror(errno));
		return -errno;
	}
	if (st.st_mtim.tv_sec == catalog_mtime.tv_sec &&
	    st.st_mtim.tv_nsec == catalog_mtime.tv_nsec && d->catalog.images)
		return 0;
	r = catalog_load(d->cfg.catalog, &fresh, err, errlen);
	if (r < 0)
		return r;
	catalog_clear(&d->catalog);
	d->catalog = fresh;
	catalog_mtime = st.st_mtim;
	log_info("catalog %s: %zu images", d->cfg.catalog, d->catalog.n);
	return 0;
}
