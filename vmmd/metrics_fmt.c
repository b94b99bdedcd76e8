/* SPDX-License-Identifier: MIT */
/*
 * Prometheus' text exposition format (version 0.0.4) of the node's
 * metrics. Pure: the caller gathers the numbers (metrics_collect.c).
 * Names follow Prometheus' rules: snake_case, the unit as a suffix
 * (_seconds, _bytes), _total on counters.
 */
#include "metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const fail_names[METRICS_FAIL_N] = {
    [METRICS_FAIL_NONE] = "none",
    [METRICS_FAIL_REFUSED] = "refused",
    [METRICS_FAIL_IMAGE] = "image",
    [METRICS_FAIL_PLACEMENT] = "placement",
    [METRICS_FAIL_CREATE] = "create",
    [METRICS_FAIL_BOOT_TIMEOUT] = "boot_timeout",
    [METRICS_FAIL_AGENT] = "agent",
    [METRICS_FAIL_GUEST_STOPPED] = "guest_stopped",
    [METRICS_FAIL_CHECKPOINT] = "checkpoint",
    [METRICS_FAIL_OTHER] = "other",
};

const char *metrics_fail_name(enum metrics_fail r)
{
	return (unsigned)r < METRICS_FAIL_N ? fail_names[r] : "other";
}

bool metrics_valid_name(const char *name)
{
	static const char first[] = "abcdefghijklmnopqrstuvwxyz"
				    "ABCDEFGHIJKLMNOPQRSTUVWXYZ_:";

	if (!*name || !strchr(first, *name))
		return false;
	for (const char *p = name; *p; p++)
		if (!strchr(first, *p) && (*p < '0' || *p > '9'))
			return false;
	return true;
}

/* A label value: backslash, double quote and newline escaped, as the
 * format wants. The node name is the site's, but a format is only as good
 * as its weakest sample. */
static void put_label_value(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\')
			fputs("\\\\", f);
		else if (*v == '"')
			fputs("\\\"", f);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

static void family(FILE *f, const char *name, const char *type,
		   const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{node="N"[,key="val"]} */
static void sample_head(FILE *f, const char *node, const char *name,
			const char *suffix, const char *key, const char *val)
{
	fprintf(f, "%s%s{node=\"", name, suffix);
	put_label_value(f, node);
	if (key) {
		fprintf(f, "\",%s=\"", key);
		put_label_value(f, val);
	}
	fputs("\"} ", f);
}

static void sample_u64(FILE *f, const char *node, const char *name, uint64_t v)
{
	sample_head(f, node, name, "", NULL, NULL);
	fprintf(f, "%llu\n", (unsigned long long)v);
}

static void gauge(FILE *f, const struct metrics_snapshot *s, const char *name,
		  const char *help, uint64_t v)
{
	family(f, name, "gauge", help);
	sample_u64(f, s->node, name, v);
}

static void counter(FILE *f, const struct metrics_snapshot *s, const char *name,
		    const char *help, uint64_t v)
{
	family(f, name, "counter", help);
	sample_u64(f, s->node, name, v);
}

static void summary(FILE *f, const struct metrics_snapshot *s, const char *name,
		    const char *help, const struct metrics_sum *m)
{
	family(f, name, "summary", help);
	sample_head(f, s->node, name, "_sum", NULL, NULL);
	fprintf(f, "%.6f\n", m->sum);
	sample_head(f, s->node, name, "_count", NULL, NULL);
	fprintf(f, "%llu\n", (unsigned long long)m->count);
}

/* Every reason, 0 included: a series that appears only at its first
 * failure makes alerts on increase() miss that failure. */
static void failures(FILE *f, const struct metrics_snapshot *s)
{
	static const char name[] = "vmenv_job_failures_total";

	family(f, name, "counter",
	       "Jobs whose guest failed on this node, by reason.");
	for (int r = METRICS_FAIL_NONE + 1; r < METRICS_FAIL_N; r++) {
		sample_head(f, s->node, name, "", "reason",
			    metrics_fail_name(r));
		fprintf(f, "%llu\n", (unsigned long long)s->m->failures[r]);
	}
}

static void write_all(FILE *f, const struct metrics_snapshot *s)
{
	const struct metrics *m = s->m;

	gauge(f, s, "vmenv_vmmd_start_time_seconds",
	      "When vmmd started (Unix time); the counters count from then.",
	      s->start_time_s);
	gauge(f, s, "vmenv_guests_running", "Guests running on this node.",
	      s->guests_running);
	gauge(f, s, "vmenv_jobs", "VM jobs vmmd holds a record of (any state).",
	      s->jobs);
	counter(f, s, "vmenv_job_starts_total",
		"VM jobs started on this node (first step of each job).",
		m->job_starts);
	failures(f, s);
	summary(f, s, "vmenv_guest_prepare_seconds",
		"From the start request to the domain's creation (image, "
		"overlay, placement).",
		&m->prepare_s);
	summary(f, s, "vmenv_guest_boot_seconds",
		"From the domain's creation to the guest agent's ready.",
		&m->boot_s);
	summary(f, s, "vmenv_checkpoint_seconds",
		"Time of the successful checkpoint saves.", &m->ckpt_s);
	summary(f, s, "vmenv_checkpoint_bytes",
		"Bytes written by the successful checkpoint saves.",
		&m->ckpt_bytes);
	gauge(f, s, "vmenv_image_cache_bytes",
	      "Bytes in the node's image cache.", s->cache_bytes);
	counter(f, s, "vmenv_image_cache_hits_total",
		"Image files a job asked for that were in the cache.",
		m->cache_hits);
	counter(f, s, "vmenv_image_cache_misses_total",
		"Image files a job asked for that had to be downloaded.",
		m->cache_misses);
}

int metrics_format(const struct metrics_snapshot *s, char **ret,
		   size_t *ret_len)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return -ENOMEM;
	write_all(f, s);
	if (ferror(f)) {
		fclose(f);
		free(buf);
		return -ENOMEM;
	}
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}
