/* SPDX-License-Identifier: MIT */
/*
 * The guest a job of a given shape would get on this node, without a job:
 * what a template made ahead of the jobs (vmenvctl image warm) is booted
 * from. Only what the template's key keeps matters (warmkey.h: the
 * devices, memory, vCPUs and their topology, the boot files and command
 * line); every path is a stand-in that the key and the template replace.
 *
 * A shape is an image of the catalog, whose boot files are in the node's
 * cache, with a vCPU count, a memory size and whether the job checkpoints
 * (its files are then served: another port). The vCPUs are placed on the
 * node's first CPUs that are not housekeeping CPUs, as Slurm gives an
 * idle node's cores; a job on CPUs of another topology (other packages,
 * threads of one core) has another key and makes its own template. What a
 * site policy adds to every job (mounts, a CPU model, hugepages) is not a
 * shape's: those jobs' first one makes theirs.
 */
#ifndef VMMD_WARMSHAPE_H
#define VMMD_WARMSHAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "domxml.h"
#include "util.h"
#include "warmmake.h"

struct vmmd;

struct warm_shape {
	const char *image; /* a catalog reference: NAME or NAME:VERSION */
	uint32_t vcpus;	   /* 0: 1 */
	uint32_t mem_mib;  /* 0: the node's default_mem_mib */
	bool checkpoint;
};

struct warm_shape_spec {
	struct dom_spec s;
	struct dom_placement place;
	char ref[160];	     /* NAME:VERSION */
	char boot[300];	     /* the boot files' digests, for warm_key */
	struct warm_src src; /* the cache's files and their digests */
	char cmdline[1024];
	const char *files; /* "virtio-9p" or "served" */
};

/* 0, or -errno with the reason in err (the image is unknown, not in the
 * cache or cannot be a template's; the shape is beyond the node's bounds). */
int warm_shape_spec(struct vmmd *d, const struct warm_shape *sh,
		    struct warm_shape_spec *out, char *err, size_t errlen);

#endif
