/* SPDX-License-Identifier: MIT */
/* vmenvctl image warm: a template made ahead of the jobs (ctlwarm.c). */
#ifndef VMENV_CTLWARM_H
#define VMENV_CTLWARM_H

/* argv[0] is "warm"; sock: the node's vmmd. The image is in the cache
 * (ctlimage.c pulls it first). Returns the exit status. */
int ctl_warm(int argc, char **argv, const char *sock);

#endif
