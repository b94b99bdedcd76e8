/* SPDX-License-Identifier: MIT */
#include "jobrec.h"

#include "metrics.h"
#include "vmmd.h"

#include <string.h>

static const char *const state_names[] = {
    [JOB_BOOTING] = "booting",	  [JOB_READY] = "ready",
    [JOB_FAILED] = "failed",	  [JOB_PREPARING] = "preparing",
    [JOB_SAVED] = "checkpointed", [JOB_SAVING] = "saving",
    [JOB_RESTORING] = "restoring"};

const char *job_state_name(enum job_state s)
{
	return state_names[s];
}

struct job *job_find(struct vmmd *d, uint32_t id)
{
	for (struct job *j = d->jobs; j; j = j->next)
		if (j->id == id)
			return j;
	return NULL;
}

struct job *job_find_domain(struct vmmd *d, const char *name)
{
	struct job *saved = NULL;

	/* Two records may name one domain for a moment: a job whose guest
	 * went into a kept checkpoint (awaiting its epilog) and the job that
	 * restored it (--vm-restore). The running guest is the latter's. */
	for (struct job *j = d->jobs; j; j = j->next) {
		if (strcmp(j->domain, name) != 0)
			continue;
		if (j->domain_running)
			return j;
		saved = saved ? saved : j;
	}
	return saved;
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
	metrics_count_failure(&j->d->metrics, r);
}

void metrics_job_ready(const struct job *j)
{
	metrics_count_ready(&j->d->metrics, j->t_request, j->t_prepared,
			    j->t_created, j->t_ready);
}
