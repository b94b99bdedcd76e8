/* SPDX-License-Identifier: MIT */
/* The node's image catalog from its file (vmmd.conf catalog): read again
 * when the file changed, at start, at reload and when a job names an image
 * the catalog in memory does not have. A catalog URL is refreshed in the
 * background instead (image.h). */
#ifndef VMMD_CATALOGFILE_H
#define VMMD_CATALOGFILE_H

#include <stddef.h>

struct vmmd;

/* 0, also when unchanged or a URL; -errno with the reason in err, and the
 * old catalog kept. */
int catalogfile_refresh(struct vmmd *d, char *err, size_t errlen);

#endif
