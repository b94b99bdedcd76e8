/* SPDX-License-Identifier: MIT */
/* vmenvctl image ...: the image cache from the command line (ctlimage.c). */
#ifndef VMENV_CTLIMAGE_H
#define VMENV_CTLIMAGE_H

/* argv[0] is the subcommand. config: vmmd's configuration file; node: for
 * %n in it; sock: the node's vmmd (warm). Returns the exit status. */
int ctl_image(int argc, char **argv, const char *config, const char *node,
	      const char *sock);

#endif
