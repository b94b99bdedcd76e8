/* SPDX-License-Identifier: MIT */
#include "evacuate.h"

#include "ckpt.h"
#include "job.h"
#include "log.h"
#include "vmmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* What one job's evacuation came to, a line of the report: "job N:
 * saving: ...", "job N: waiting: ..." (its guest is not up yet) or
 * "job N: stays: why" (vmenvctl evacuate --wait reads the first
 * words). */
static void evacuate_job(struct job *j, FILE *out, unsigned *saving,
			 unsigned *later, unsigned *stay)
{
	char why[PROTO_MAX_ERROR] = "";
	int r;

	if (j->state == JOB_FAILED || j->state == JOB_SAVED)
		return; /* no guest runs: it goes with its job */
	r = ckpt_job_evacuate(j, why, sizeof(why));
	if (r == 0) {
		(*saving)++;
		fprintf(out, "job %u: saving: it is requeued once saved\n",
			j->id);
	} else if (r == -EAGAIN) {
		(*later)++;
		fprintf(out, "job %u: waiting: %s\n", j->id, why);
	} else {
		(*stay)++;
		fprintf(out, "job %u: stays: %s\n", j->id, why);
		log_warn("evacuate: %s", why);
	}
}

/* Slurm's drain reason of a vmenvctl evacuate: the tag lets a restarted
 * vmmd (and an admin's sinfo -R) tell it from other drains. */
#define EVACUATE_TAG "vmenv evacuate: "

static int drain(struct vmmd *d, const char *reason, char *err, size_t errlen)
{
	char tagged[sizeof(EVACUATE_TAG) + PROTO_MAX_REASON];

	if (!d->slurm_node)
		return 0;
	snprintf(tagged, sizeof(tagged), EVACUATE_TAG "%s", reason);
	return d->slurm_node->drain(d->cfg.node_name, tagged, err, errlen);
}

int evacuate_node(struct vmmd *d, const char *reason, bool by_drain,
		  char **report, char *err, size_t errlen)
{
	unsigned saving = 0, later = 0, stay = 0;
	char *jobs = NULL;
	size_t len = 0;
	FILE *out;
	int r;

	if (report)
		*report = NULL;
	if ((r = proto_reason_check(reason, err, errlen)) < 0)
		return r;
	out = open_memstream(&jobs, &len);
	if (!out)
		return err_set(err, errlen, -ENOMEM, "out of memory");
	/* First: a job requeued from here must not come back. */
	if (!by_drain && (r = drain(d, reason, err, errlen)) < 0) {
		fclose(out);
		free(jobs);
		return r;
	}
	if (!d->evacuating)
		d->evacuate_nmoved = 0; /* a new evacuation */
	d->evacuating = true;
	snprintf(d->evacuate_reason, sizeof(d->evacuate_reason), "%s", reason);
	for (struct job *j = d->jobs, *next; j; j = next) {
		next = j->next;
		evacuate_job(j, out, &saving, &later, &stay);
	}
	fclose(out);
	log_notice("evacuate: node %s (%s)%s: %u job(s) saving, %u once up, "
		   "%u cannot be saved",
		   d->cfg.node_name, reason,
		   by_drain ? ", drained in Slurm" : "", saving, later, stay);
	if (report && asprintf(report,
			       "node %s: evacuating (%s): %u job(s) saving, "
			       "%u saved once up, %u cannot be saved\n%s",
			       d->cfg.node_name, reason, saving, later, stay,
			       jobs ? jobs : "") < 0)
		*report = NULL;
	free(jobs);
	return 0;
}

/* The site's word begins the reason (case aside), as a word: "evacuate"
 * matches "evacuate: fan 3" and "EVACUATE", not "evacuated" or "re-". */
static bool marked(const char *reason, const char *word)
{
	size_t n = strlen(word);

	return n && strncasecmp(reason, word, n) == 0 &&
	       (reason[n] == '\0' || reason[n] == ' ' || reason[n] == ':' ||
		reason[n] == ',' || reason[n] == ';');
}

/* Slurm's reason as a proto reason: printable ASCII, bounded; without
 * our tag. */
static void reason_of(const char *slurm, char *buf, size_t len)
{
	size_t i = 0;

	if (strncmp(slurm, EVACUATE_TAG, strlen(EVACUATE_TAG)) == 0 &&
	    slurm[strlen(EVACUATE_TAG)])
		slurm += strlen(EVACUATE_TAG);
	for (; slurm[i] && i + 1 < len && i + 1 < PROTO_MAX_REASON; i++)
		buf[i] = slurm[i] >= 0x20 && slurm[i] <= 0x7e ? slurm[i] : '?';
	buf[i] = '\0';
}

/* Whether Slurm's drain is an evacuation: the site's word, or (a vmmd
 * restarted during one) vmenvctl evacuate's tag. */
static bool is_evacuation(const struct vmmd *d, const char *reason)
{
	return marked(reason, d->cfg.evacuate_drain_reason) ||
	       strncmp(reason, EVACUATE_TAG, strlen(EVACUATE_TAG)) == 0;
}

void evacuate_watch_drain(struct vmmd *d, bool at_start)
{
	static bool warned;
	struct slurmnode_info ni;
	char err[PROTO_MAX_ERROR], reason[PROTO_MAX_REASON];

	/* Every reconcile only where a drain may mean an evacuation; at
	 * start also for vmenvctl's own (an evacuation outlives vmmd). */
	if (!d->slurm_node ||
	    (!at_start && !d->evacuating && !d->cfg.evacuate_drain_reason[0]))
		return;
	if (d->slurm_node->state(d->cfg.node_name, &ni, err, sizeof(err)) < 0) {
		if (!warned)
			log_warn("evacuate: %s (said once until it answers)",
				 err);
		warned = true;
		return;
	}
	warned = false;
	if (d->evacuating && !ni.drain) {
		log_notice("evacuate: node %s is no longer drained in Slurm: "
			   "the evacuation (%s) is over",
			   d->cfg.node_name, d->evacuate_reason);
		d->evacuating = false;
		d->evacuate_reason[0] = '\0';
		return;
	}
	if (d->evacuating || !ni.drain || !is_evacuation(d, ni.reason))
		return;
	reason_of(ni.reason, reason, sizeof(reason));
	if (evacuate_node(d, reason, true, NULL, err, sizeof(err)) < 0)
		log_err("evacuate: node %s: %s", d->cfg.node_name, err);
}
