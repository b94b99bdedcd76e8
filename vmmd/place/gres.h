/* SPDX-License-Identifier: MIT */
/*
 * Which GPUs Slurm gave a job on this node, as device files. Pure text
 * parsing, no I/O:
 *
 * - slurmctld's per-node GRES detail of the job ("gpu:a100:2(IDX:0,2)",
 *   several entries separated by commas) gives GPU *indices* on the node;
 * - gres.conf's Name=gpu records for this node (NodeName= hostlists,
 *   File= with bracket ranges, "/dev/nvidia[0-3]") give the device file of
 *   each index, in the order the records and files are written, which is
 *   the order slurmd numbers them for File= configurations.
 *
 * AutoDetect (NVML) configurations have no File= and cannot be resolved
 * here: an error says so.
 */
#ifndef VMMD_GRES_H
#define VMMD_GRES_H

#include <stddef.h>
#include <stdint.h>

#include "cpuset.h"

#define GRES_MAX_GPUS	 64
#define GRES_MAX_DEVFILE 128

struct gres_gpus {
	uint32_t n;
	char file[GRES_MAX_GPUS][GRES_MAX_DEVFILE];
};

/* The GPU device files of node, in index order. 0 (possibly none), or
 * -EINVAL with "line N: reason" in err. */
int gres_conf_gpus(const char *text, const char *node, struct gres_gpus *ret,
		   char *err, size_t errlen);

/* The GPU indices in one node's GRES detail string (NULL or "" is none).
 * 0, or -EINVAL with a reason (a GPU count without indices cannot be
 * mapped to devices). */
int gres_detail_gpus(const char *detail, struct cpuset *ret, char *err,
		     size_t errlen);

/* Slurm hostlist expression ("n[01-04,7],gpu1") and bracket ranges in
 * general: calls cb for each expanded name until it returns non-zero,
 * which is then returned. -EINVAL for bad syntax, -E2BIG past 4096 names. */
int gres_expand(const char *expr, int (*cb)(const char *name, void *data),
		void *data);

#endif
