/* SPDX-License-Identifier: MIT */
/* Where vmmd counts what metrics.h prints, and the snapshot it prints. */
#include "metrics.h"

#include "cleanup.h"
#include "image.h"
#include "jobrec.h"
#include "vmmd.h"

#include <stdlib.h>
#include <time.h>

void metrics_job_started(struct vmmd *d)
{
	d->metrics.job_starts++;
}

/* A failure site that did not say what it was: what the job was doing. */
static enum metrics_fail reason_of_state(const struct job *j)
{
	switch (j->state) {
	case JOB_PREPARING:
		return METRICS_FAIL_IMAGE;
	case JOB_SAVED:
	case JOB_SAVING:
	case JOB_RESTORING:
		return METRICS_FAIL_CHECKPOINT;
	case JOB_BOOTING:
	case JOB_READY:
	case JOB_FAILED:
		break;
	}
	return METRICS_FAIL_OTHER;
}

void metrics_job_failed(const struct job *j)
{
	enum metrics_fail r = j->fail_reason;

	if (r <= METRICS_FAIL_NONE || r >= METRICS_FAIL_N)
		r = reason_of_state(j);
	j->d->metrics.failures[r]++;
}

void metrics_job_ready(const struct job *j)
{
	struct metrics *m = &j->d->metrics;

	/* A restored or adopted guest was not prepared and created here. */
	if (!j->t_request || j->t_prepared < j->t_request ||
	    j->t_created < j->t_prepared || j->t_ready < j->t_created)
		return;
	metrics_observe(&m->prepare_s,
			(double)(j->t_prepared - j->t_request) / 1000.0);
	metrics_observe(&m->boot_s,
			(double)(j->t_ready - j->t_created) / 1000.0);
}

void metrics_ckpt_saved(struct vmmd *d, uint64_t ms, uint64_t bytes)
{
	metrics_observe(&d->metrics.ckpt_s, (double)ms / 1000.0);
	metrics_observe(&d->metrics.ckpt_bytes, (double)bytes);
}

void metrics_cache_lookup(struct vmmd *d, bool hit)
{
	if (hit)
		d->metrics.cache_hits++;
	else
		d->metrics.cache_misses++;
}

/* The cache's size as the directory says now (it is shared with the
 * machine's other vmmds and with vmenvctl image). */
static uint64_t cache_bytes(struct vmmd *d)
{
	_cleanup_free_ struct imgcache_entry *e = NULL;
	uint64_t total = 0;
	size_t n = 0;

	if (!d->images || imgcache_list(images_cache(d), &e, &n) < 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		total += e[i].size;
	return total;
}

int metrics_render(struct vmmd *d, char **ret, size_t *ret_len)
{
	uint64_t up_s = (now_ms() - d->started_ms) / 1000;
	struct metrics_snapshot s = {
	    .node = d->cfg.node_name,
	    .m = &d->metrics,
	    .start_time_s = (uint64_t)time(NULL) - up_s,
	    .cache_bytes = cache_bytes(d),
	};

	for (const struct job *j = d->jobs; j; j = j->next) {
		s.jobs++;
		if (j->domain_running)
			s.guests_running++;
	}
	return metrics_format(&s, ret, ret_len);
}
