/* SPDX-License-Identifier: MIT */
/* vmenvctl's commands that live in their own files. */
#ifndef VMENV_VMENVCTL_H
#define VMENV_VMENVCTL_H

#include <stdbool.h>

/* "policy check|explain ...": argv[0] is "policy". Returns the exit
 * status. */
int vmenvctl_policy(int argc, char **argv);
/* "console [-f] JOBID": argv[0] is "console" (ctlconsole.c). */
int ctl_console(int argc, char **argv, const char *sock, int timeout_ms);
/* "metrics" (ctlmetrics.c). */
int ctl_metrics(const char *sock, int timeout_ms);
/* vmenvctl overlay list | get JOBID | rm JOBID (argv[0] is "overlay"). */
int ctl_overlay(int argc, char **argv, const char *sock, int timeout_ms);

/* vmenvctl evacuate [NODE] [--reason TEXT] [--wait[=S]] (argv[0] is
 * "evacuate"; ctlevacuate.c). sock: the node's vmmd unless NODE names
 * another and no --socket was given. */
int ctl_evacuate(int argc, char **argv, const char *sock, bool sock_given,
		 int timeout_ms);

#endif
