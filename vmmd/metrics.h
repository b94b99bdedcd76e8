/* SPDX-License-Identifier: MIT */
/*
 * The node's numbers for Prometheus (vmenvctl metrics, docs/operations.md):
 * counters vmmd keeps in memory since it started, and the text exposition
 * format they are printed in. Aggregates only: no job id, user or image
 * name is ever a label, so anyone on the node may read them.
 *
 * Counters reset when vmmd restarts; vmenv_vmmd_start_time_seconds says
 * when, and Prometheus' rate() treats a drop of a counter as a reset.
 */
#ifndef VMMD_METRICS_H
#define VMMD_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Why a job failed on the node: a fixed set, so a label value is never
 * free text. Each failure site of vmmd maps to one (job.h fail_reason). */
enum metrics_fail {
	METRICS_FAIL_NONE = 0, /* not set: job_fail derives it from the state */
	METRICS_FAIL_REFUSED, /* policy, Slurm, image name, size: the request */
	METRICS_FAIL_IMAGE,   /* fetch, overlay, boot files, prepare timeout */
	METRICS_FAIL_PLACEMENT, /* CPUs, memory, devices */
	METRICS_FAIL_CREATE,	/* the job directory, files, libvirt's create */
	METRICS_FAIL_BOOT_TIMEOUT,  /* no agent HELLO within boot_timeout_s */
	METRICS_FAIL_AGENT,	    /* the guest broke the agent protocol */
	METRICS_FAIL_GUEST_STOPPED, /* the guest crashed or stopped */
	METRICS_FAIL_CHECKPOINT,    /* a save or a restore failed */
	METRICS_FAIL_OTHER,
	METRICS_FAIL_N,
};

/* A sum and a count (a Prometheus summary without quantiles). */
struct metrics_sum {
	double sum;
	uint64_t count;
};

struct metrics {
	uint64_t job_starts;
	uint64_t failures[METRICS_FAIL_N];
	struct metrics_sum prepare_s; /* request -> the domain is created */
	struct metrics_sum boot_s;    /* domain created -> agent ready */
	struct metrics_sum ckpt_s;    /* successful saves */
	struct metrics_sum ckpt_bytes;
	uint64_t cache_hits;   /* files asked for and found in the cache */
	uint64_t cache_misses; /* files that had to be downloaded */
};

/* What is printed: the counters and the gauges read at request time. */
struct metrics_snapshot {
	const char *node;
	const struct metrics *m;
	uint64_t start_time_s; /* wall clock when vmmd started */
	uint32_t guests_running;
	uint32_t jobs;
	uint64_t cache_bytes;
};

/* The label value of a reason ("boot_timeout"). */
const char *metrics_fail_name(enum metrics_fail r);

/* The exposition format (text, version 0.0.4) of s: every family with its
 * HELP and TYPE, every sample labelled node="...", escaped. *ret is
 * malloc'ed (caller frees). 0 or -ENOMEM. Pure: no I/O, no logging. */
int metrics_format(const struct metrics_snapshot *s, char **ret,
		   size_t *ret_len);

/* Whether name is a valid metric name (^[a-zA-Z_:][a-zA-Z0-9_:]*$). */
bool metrics_valid_name(const char *name);

/* The counting (metrics.c): operations on m alone, called by the modules
 * that see the events (their struct vmmd holds m). */
void metrics_count_start(struct metrics *m);
/* A job failed for r; none or a value out of range counts as other. */
void metrics_count_failure(struct metrics *m, enum metrics_fail r);
/* A guest is ready: its prepare and boot times from its milestones (ms),
 * when they are in order and t_request is set, that is when it was
 * prepared and created here (not restored or adopted); else nothing. */
void metrics_count_ready(struct metrics *m, uint64_t t_request,
			 uint64_t t_prepared, uint64_t t_created,
			 uint64_t t_ready);
void metrics_count_ckpt(struct metrics *m, uint64_t ms, uint64_t bytes);
void metrics_count_cache(struct metrics *m, bool hit);

static inline void metrics_observe(struct metrics_sum *s, double v)
{
	s->sum += v;
	s->count++;
}

#endif
