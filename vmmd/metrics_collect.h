/* SPDX-License-Identifier: MIT */
/*
 * The text of vmenvctl metrics: the node's counters (d->metrics) and the
 * gauges read at request time from the daemon's jobs and image cache, in
 * the format of metrics.h. Above metrics.c (counting) and metrics_fmt.c
 * (formatting), which know nothing of the daemon.
 */
#ifndef VMMD_METRICS_COLLECT_H
#define VMMD_METRICS_COLLECT_H

#include <stddef.h>

struct vmmd;

/* *ret malloc'ed (caller frees). 0 or -errno. */
int metrics_collect(struct vmmd *d, char **ret, size_t *ret_len);

#endif
