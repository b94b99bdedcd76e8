/* SPDX-License-Identifier: MIT */
/*
 * Warm start (docs/warmstart.md): a job's guest restored from a template
 * of its image and shape instead of booted.
 *
 * The node keeps templates in the image cache (templates/<key>/save, root
 * only; warmkey.h says what a key is), at most warm_templates_max, the
 * least recently used going first. A job that asks for warm start
 * (spec warm_start) and has no template boots as before, and once its guest
 * is ready the template of its shape is made from the image, beside it
 * (warmmake.h): nothing of that job goes into it.
 *
 * A job with a template gets a save image of its own (the template's
 * stream under the job's domain XML and a new UUID), restored by libvirt in
 * a thread; its agent then finds itself held (as after a checkpoint) with
 * no SETUP: vmmd resumes it with fresh entropy and the clock (CKPT_RESUME,
 * AW_CKPT_SEED) and sends the SETUP a booted guest gets. A restore that
 * fails boots the guest instead.
 */
#ifndef VMMD_WARM_H
#define VMMD_WARM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vmmd;
struct job;
struct dom_spec;

/* What this module tells the job's owner (job.c): the job cannot go on
 * (msg names it and why). */
struct warm_sink {
	void (*failed)(struct job *j, const char *msg);
	/* The job's QEMU runs (restored, or booted after a failed restore):
	 * what follows a domain's creation goes on. */
	void (*domain_up)(struct job *j);
};

int warm_init(struct vmmd *d, const struct warm_sink *sink);
/* Waits for a template being made and removes its guest. */
void warm_fini(struct vmmd *d);

/* From the job's domain creation, with its spec and XML: 1 when its guest
 * is being restored from a template (the agent channel connects when it
 * is up), 0 when it boots (create it as usual). */
int warm_job_start(struct job *j, const struct dom_spec *s, const char *xml,
		   uint64_t hard_limit_kib);
/* Whether the job's guest is being restored from a template now (the
 * sink's domain_up follows). */
bool warm_job_restoring(const struct job *j);
/* The guest is ready: a job that found no template has one made. */
void warm_job_ready(struct job *j);
/* The agent's HELLO: true when it was a warm-started guest's, which this
 * module resumes and then sets up. */
bool warm_job_hello(struct job *j, uint32_t flags);
/* A CKPT answer: 1 when it was the warm start's resume (handled), 0 when
 * not (the checkpoint's), <0 a protocol error. */
int warm_job_ckpt_frame(struct job *j, uint8_t type, const uint8_t *p,
			size_t n);
/* Waits for a restore in flight and frees the job's part. */
void warm_job_free(struct job *j);
/* How the guest started, for vmenvctl list: "warm", "booted" or
 * "booted: why not warm" (the job asked). */
const char *warm_job_how(const struct job *j);

/* The name of this node's template guests; one being made now (the
 * reconcile leaves it alone, and removes any other: an earlier vmmd's). */
bool warm_template_domain(struct vmmd *d, const char *name);
bool warm_owns_domain(struct vmmd *d, const char *name);
/* vmenvctl image warm (root): the template of a shape (warmshape.h),
 * made now in the background unless query or it exists or is being made.
 * *text (malloc'ed): "STATE KEY MIB NAME:VERSION VCPUS MEM FILES[: WHY]"
 * with STATE made, making, failed (the last try, and why) or none. -errno
 * with the reason in err: the shape or image cannot be warm-started here,
 * or another template is being made (-EBUSY). */
struct warm_shape;
int warm_ahead(struct vmmd *d, const struct warm_shape *sh, bool query,
	       char **text, char *err, size_t errlen);

/* The reconcile's: templates beyond warm_templates_max. */
void warm_sweep(struct vmmd *d);

#endif
