/* SPDX-License-Identifier: MIT */
/*
 * The image catalog: which images exist and how each boots. Read by vmmd
 * (to boot) and by the SPANK plugin at submit time (to refuse an unknown
 * image before anything is queued). Pure: parses, validates, looks up.
 *
 * Format (JSON):
 *   {"images": [{"name": "tiny", "version": "1", "boot": "kernel",
 *                "kernel": "/abs/vmlinuz", "initrd": "/abs/initrd.img",
 *                "cmdline": "console=ttyS0 quiet", "min_mem_mib": 128,
 *                "description": "..."}]}
 * Unknown keys are errors, so a typo never silently drops a setting.
 */
#ifndef VMENV_CATALOG_H
#define VMENV_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define CATALOG_MAX_IMAGES 1024
#define CATALOG_MAX_FILE   (4u * 1024u * 1024u)

struct catalog_image {
	char name[65];
	char version[65];
	char kernel[VMENV_MAX_PATH];
	char initrd[VMENV_MAX_PATH];
	char cmdline[1024];
	uint32_t min_mem_mib;
	char description[256];
};

struct catalog {
	size_t n;
	struct catalog_image *images;
};

/* 0, or -errno with a message naming the image index and field in err. */
int catalog_parse(const char *text, size_t len, struct catalog *ret, char *err,
		  size_t errlen);
int catalog_load(const char *path, struct catalog *ret, char *err,
		 size_t errlen);
void catalog_clear(struct catalog *c);

/* Resolves NAME, NAME:VERSION or NAME.img (as users write it). Without a
 * version the last entry of that name wins (the catalog lists versions
 * oldest first). NULL when unknown or malformed. */
const struct catalog_image *catalog_find(const struct catalog *c,
					 const char *ref);
/* "tiny, debian12" (each name once), for "known images: ..." messages. */
void catalog_names(const struct catalog *c, char *buf, size_t len);

#endif
