/* SPDX-License-Identifier: MIT */
/* The counters of metrics.h: what happened, added to struct metrics. The
 * daemon's side (what to count when, the gauges read at request time) is
 * metrics_collect.c's and jobrec.c's. */
#include "metrics.h"

void metrics_count_start(struct metrics *m)
{
	m->job_starts++;
}

void metrics_count_failure(struct metrics *m, enum metrics_fail r)
{
	if ((int)r <= METRICS_FAIL_NONE || (int)r >= METRICS_FAIL_N)
		r = METRICS_FAIL_OTHER;
	m->failures[r]++;
}

void metrics_count_ready(struct metrics *m, uint64_t t_request,
			 uint64_t t_prepared, uint64_t t_created,
			 uint64_t t_ready)
{
	/* A restored or adopted guest was not prepared and created here. */
	if (!t_request || t_prepared < t_request || t_created < t_prepared ||
	    t_ready < t_created)
		return;
	metrics_observe(&m->prepare_s,
			(double)(t_prepared - t_request) / 1000.0);
	metrics_observe(&m->boot_s, (double)(t_ready - t_created) / 1000.0);
}

void metrics_count_ckpt(struct metrics *m, uint64_t ms, uint64_t bytes)
{
	metrics_observe(&m->ckpt_s, (double)ms / 1000.0);
	metrics_observe(&m->ckpt_bytes, (double)bytes);
}

void metrics_count_cache(struct metrics *m, bool hit)
{
	if (hit)
		m->cache_hits++;
	else
		m->cache_misses++;
}
