/* SPDX-License-Identifier: MIT */
/*
 * The guest's life, driven from slurmstepd (root) rather than from a job
 * prolog and epilog: slurmd forks a process for SPANK prologs and epilogs
 * of every job once any plugin defines them, which cost jobs without
 * --vm-env about 4% in `srun true` (bench/run plugin). Here a job without
 * --vm-env costs nothing but reading an option.
 *
 * - Each step of a VM job asks vmmd for the job's guest as it starts
 *   (init_post_opt): the first starts it, the others find it. vmmd does not
 *   wait for the boot; the task shim waits for the guest to be ready.
 * - When the batch step ends, the job is over: the guest goes. When the
 *   job's extern step ends (PrologFlags=Contain), the job is over on this
 *   node. When another step ends, the job may go on (salloc) or not (an
 *   srun that made its own allocation): vmmd asks Slurm over the next
 *   seconds and removes the guest once the job has ended. vmmd's periodic
 *   reconcile catches anything else.
 *
 * Nothing here fails the step: vmmd keeps a failure with the job, and the
 * job's task reports it in the job's own output and fails with it
 * (vmenv-exec), naming the node and socket when vmmd is unreachable.
 */
#include "plugin.h"

#include "log.h"
#include "proto.h"

#include <errno.h>
#include <slurm/slurm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int ids(spank_t sp, uint32_t *job, uint32_t *step, uid_t *uid,
	       gid_t *gid)
{
	if (spank_get_item(sp, S_JOB_ID, job) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_STEPID, step) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_UID, uid) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_GID, gid) != ESPANK_SUCCESS)
		return -1;
	return 0;
}

/* A job's end while vmmd restarts (systemd's RestartSec=2, a package
 * upgrade): the STOP is asked again for a few seconds, so that the guest
 * goes now, not at vmmd's next reconcile, holding CPUs Slurm has given to
 * the next job meanwhile. A start is not: its task waits, and says so. */
#define STOP_RETRY_MS	   10000
#define STOP_RETRY_STEP_MS 250

static int call_retrying(const char *sock, const struct proto_request *req,
			 struct proto_reply *rep, char *err, size_t errlen)
{
	bool again = req->op == PROTO_OP_STOP || req->op == PROTO_OP_STEP_END;
	int waited = 0, r;

	for (;;) {
		r = proto_call(sock, req, plugin_cfg.timeout_ms, rep, err,
			       errlen);
		if (!again || (r != -ECONNREFUSED && r != -ENOENT) ||
		    waited >= STOP_RETRY_MS)
			return r;
		usleep(STOP_RETRY_STEP_MS * 1000);
		waited += STOP_RETRY_STEP_MS;
	}
}

static void call(spank_t sp, const char *phase, struct proto_request *req)
{
	char node[256], sock[VMENV_MAX_PATH], err[PROTO_MAX_ERROR] = "";
	struct proto_reply rep;
	int r;

	plugin_node_name(sp, node, sizeof(node));
	if (plugin_socket_path(node, sock, sizeof(sock)) < 0) {
		log_err("vmenv: %s: job %u: cannot form vmmd's socket path",
			phase, req->job_id);
		return;
	}
	r = call_retrying(sock, req, &rep, err, sizeof(err));
	if (r < 0) {
		log_err("vmenv: %s: job %u: vmmd on node %s at %s: %s%s%s",
			phase, req->job_id, *node ? node : "?", sock,
			strerror(-r), *err ? ": " : "", err);
		return;
	}
	if (rep.kind != PROTO_REPLY_OK)
		log_err("vmenv: %s: %s", phase, rep.error);
	proto_reply_clear(&rep);
}

int jobctl_step_init(spank_t sp)
{
	struct proto_request req = {.op = PROTO_OP_START};
	const char *image;
	uint32_t step;
	uid_t uid;
	gid_t gid;

	if (ids(sp, &req.job_id, &step, &uid, &gid) < 0) {
		/* Without ids there is nothing to ask vmmd for; a VM job's
		 * task then finds no guest and says so. */
		if (plugin_image(sp))
			log_err("vmenv: start: cannot get the job's ids");
		return 0;
	}
	if (step == SLURM_EXTERN_CONT)
		return 0;
	/* A job from slurmrestd has its --vm-* values in its environment
	 * only; that environment is the batch step's (an srun's step
	 * carries the srun's, which reads them itself). */
	if (step == SLURM_BATCH_SCRIPT)
		plugin_options_from_env(sp, req.job_id);
	if (plugin_refusal()) {
		/* The task prints it in the job's output (task.c). */
		log_err("vmenv: start: job %u: %s", req.job_id,
			plugin_refusal());
		return 0;
	}
	image = plugin_image(sp);
	if (!image)
		return 0;
	req.start.job_id = req.job_id;
	req.start.uid = (uint32_t)uid;
	req.start.gid = (uint32_t)gid;
	snprintf(req.start.image, sizeof(req.start.image), "%s", image);
	/* The other --vm-* options, for vmmd to judge against its policies. */
	if (plugin_request_from_spank(sp, &req.start) < 0)
		log_err("vmenv: start: job %u: out of memory", req.job_id);
	call(sp, "start", &req);
	proto_request_clear(&req);
	return 0;
}

/* Whether vmmd keeps a guest of the job on this node: a stat, so that the
 * extern step of every job does not cost a round trip to vmmd. */
static bool has_guest(spank_t sp, uint32_t job)
{
	char node[256], dir[VMENV_MAX_PATH], path[VMENV_MAX_PATH + 32];
	struct stat st;

	plugin_node_name(sp, node, sizeof(node));
	if (plugin_expand_node(plugin_cfg.run_dir, node, dir, sizeof(dir)) < 0)
		return true; /* cannot tell: ask vmmd */
	snprintf(path, sizeof(path), "%s/jobs/%u", dir, job);
	return stat(path, &st) == 0;
}

int jobctl_step_exit(spank_t sp)
{
	struct proto_request req = {.op = PROTO_OP_STOP};
	bool vm = plugin_image(sp) != NULL;
	uint32_t step;
	uid_t uid;
	gid_t gid;

	if (ids(sp, &req.job_id, &step, &uid, &gid) < 0)
		return 0;
	if (step == SLURM_EXTERN_CONT) {
		if (has_guest(sp, req.job_id))
			call(sp, "stop", &req);
		return 0;
	}
	if (!vm)
		return 0;
	if (step != SLURM_BATCH_SCRIPT)
		req.op = PROTO_OP_STEP_END;
	/* A vmmd that is down now cleans up when it reconciles. */
	call(sp, req.op == PROTO_OP_STOP ? "stop" : "step end", &req);
	return 0;
}
