/* SPDX-License-Identifier: MIT */
/* vmenvctl's commands that live in their own files. */
#ifndef VMENV_VMENVCTL_H
#define VMENV_VMENVCTL_H

/* "policy check|explain ...": argv[0] is "policy". Returns the exit
 * status. */
int vmenvctl_policy(int argc, char **argv);

#endif
