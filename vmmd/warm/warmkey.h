/* SPDX-License-Identifier: MIT */
/*
 * Which template a guest can start from (docs/warmstart.md). A restore
 * needs the guest the template saved: the same devices, memory, vCPUs,
 * guest NUMA cells, CPU model and boot files. Rather than list those
 * fields (and miss the next one added to the domain), the key is the
 * digest of the domain XML itself with everything that is the job's and
 * not the guest's replaced: its name, owner, paths, host pinning and
 * memory limit. Two guests with one key differ only in what libvirt
 * takes from the restore's XML.
 *
 * Pure: no I/O.
 */
#ifndef VMMD_WARMKEY_H
#define VMMD_WARMKEY_H

#include <stdbool.h>
#include <stddef.h>

#include "catalog.h"
#include "domxml.h"

#define WARM_KEY_LEN 64 /* sha256, hex */

/* Where a template's guest has its files (under one directory), and the
 * placeholders of the key. */
struct warm_paths {
	char kernel[4200], initrd[4200], console[4200], agent[4200];
	char share[4200], files[4200], bulk[4200], disk[4200];
	char fmount[DOM_MAX_FILES_MOUNTS][4200];
};
void warm_paths_in(struct warm_paths *p, const char *dir);

/* What a normalised spec points into. */
struct warm_norm {
	struct dom_spec s;
	struct dom_placement place;
	struct dom_mount mounts[16];
	struct dom_port fmounts[DOM_MAX_FILES_MOUNTS];
};

/* Whether a guest of s can start from a template at all; why (for the
 * log and vmenvctl list) when not. */
bool warm_eligible(const struct dom_spec *s, char *why, size_t whylen);

/* s as the template's guest: name, the owner (uid, gid), paths p,
 * unpinned, no memory limit, the same guest topology and cells, and none
 * of the devices a save cannot hold (passed-through devices, the stand-in):
 * a warm guest gets those plugged after its restore. s must be
 * eligible. */
void warm_normalize(const struct dom_spec *s, const char *name, uint32_t uid,
		    uint32_t gid, const struct warm_paths *p,
		    struct warm_norm *out);

/* Whether boot (what a template's guest booted from, catalog_boot_digest)
 * is still what a version of an image of catalog c boots from: a template
 * whose image changed (or left the catalog) is never used again. */
bool warm_boot_listed(const struct catalog *c, const char *boot);

/* The key of s's template: the digest of its normalised XML and of
 * boot (the boot files' digests: the paths in the XML are per job).
 * 0, -EINVAL (not eligible), -ENOMEM. */
int warm_key(const struct dom_spec *s, const char *boot,
	     char key[WARM_KEY_LEN + 1]);

#endif
