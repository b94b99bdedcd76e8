/* SPDX-License-Identifier: MIT */
/*
 * The node's side of site policies: vmmd loads the policy directory at
 * start and on SIGHUP, and resolves every job's request against it before
 * anything of the guest exists. It never trusts the submit side: the
 * request arrives as the user wrote it, the job's partition, account and
 * QOS come from slurmctld, its user and groups from this node.
 *
 * A policy set that does not load never loosens anything: vmmd keeps the
 * last good set (and says so in its log and in `vmenvctl status`); with no
 * good set at all (bad files at start), every VM job is refused.
 *
 * The merged spec lives in struct job (j->spec) for the rest of vmmd, and
 * in the job's directory (file "spec", one "field<TAB>value<TAB>origin
 * <TAB>policy<TAB>file" line per field and per mount), so a restarted vmmd
 * adopts a running guest with the spec it was built from.
 */
#ifndef VMMD_SPEC_H
#define VMMD_SPEC_H

#include <stddef.h>

#include "proto.h"
#include "slurmjob.h"

struct vmmd;
struct job;

/* (Re)loads cfg.policy_dir; logs what happened. 0, or -errno when the
 * files were refused (the previous set stays in force). */
int spec_policies_load(struct vmmd *d);
void spec_policies_free(struct vmmd *d);

/* Parses the request, merges it with the policies matching the job, and
 * stores the result in j->spec. 0, or -EPERM (refused by policy) / -EINVAL
 * (malformed option) / -errno with "job 42: ..." in err. */
int spec_resolve(struct job *j, const struct proto_start *req,
		 const struct slurmjob_info *si, char *err, size_t errlen);

/* The job's spec to and from its directory. */
int spec_save(const struct job *j);
int spec_load(struct job *j);

#endif
