/* SPDX-License-Identifier: MIT */
/*
 * Prolog and epilog (slurmd, root): start and stop the job's guest.
 *
 * The prolog never fails the job: a failing prolog would drain the node and
 * requeue the job, hiding the reason from the user. Instead vmmd keeps the
 * failure with the job, and the job's first task reports it in the job's
 * own output and fails with it (vmenv-exec). The prolog does not wait for
 * the boot either: the batch launch times out after BatchStartTimeout.
 */
#include "plugin.h"

#include "log.h"
#include "proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ids(spank_t sp, uint32_t *job, uid_t *uid, gid_t *gid)
{
	if (spank_get_item(sp, S_JOB_ID, job) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_UID, uid) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_GID, gid) != ESPANK_SUCCESS)
		return -1;
	return 0;
}

static int call(const char *phase, uint32_t job, struct proto_request *req)
{
	const char *node = getenv("SLURMD_NODENAME");
	char sock[VMENV_MAX_PATH], err[PROTO_MAX_ERROR] = "";
	struct proto_reply rep;
	int r;

	if (plugin_socket_path(node, sock, sizeof(sock)) < 0) {
		log_err("vmenv: %s: job %u: cannot form vmmd's socket path",
			phase, job);
		return -1;
	}
	r = proto_call(sock, req, plugin_cfg.timeout_ms, &rep, err,
		       sizeof(err));
	if (r < 0) {
		log_err("vmenv: %s: job %u: vmmd on node %s at %s: %s%s%s",
			phase, job, node ? node : "?", sock, strerror(-r),
			*err ? ": " : "", err);
		return -1;
	}
	if (rep.kind != PROTO_REPLY_OK)
		log_err("vmenv: %s: %s", phase, rep.error);
	proto_reply_clear(&rep);
	return 0;
}

int jobctl_prolog(spank_t sp)
{
	const char *image = plugin_image(sp);
	struct proto_request req = {.op = PROTO_OP_START};
	uid_t uid;
	gid_t gid;

	if (!image)
		return 0;
	if (ids(sp, &req.job_id, &uid, &gid) < 0) {
		log_err("vmenv: prolog: cannot get the job's ids");
		return 0;
	}
	req.start.job_id = req.job_id;
	req.start.uid = (uint32_t)uid;
	req.start.gid = (uint32_t)gid;
	snprintf(req.start.image, sizeof(req.start.image), "%s", image);
	call("prolog", req.job_id, &req);
	return 0;
}

int jobctl_epilog(spank_t sp)
{
	struct proto_request req = {.op = PROTO_OP_STOP};
	uid_t uid;
	gid_t gid;

	if (!plugin_image(sp))
		return 0;
	if (ids(sp, &req.job_id, &uid, &gid) < 0)
		return 0;
	/* A vmmd that is down now cleans up when it reconciles. */
	call("epilog", req.job_id, &req);
	return 0;
}
