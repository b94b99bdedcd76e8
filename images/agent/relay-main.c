// SPDX-License-Identifier: MIT
/*
 * vmenv-files-relay PORT PATH: relay.c without the agent, for
 * test/ninep's guest: mounts the served share of port PORT on PATH; the
 * relay process it starts runs until the share is unmounted. Static, like
 * the agent.
 */
#include "relay.h"

#include <stdio.h>
#include <sys/stat.h>

int main(int argc, char **argv)
{
	char msg[512];
	pid_t pid;

	if (argc != 3) {
		fprintf(stderr, "usage: vmenv-files-relay PORT PATH\n");
		return 2;
	}
	mkdir(argv[2], 0755);
	pid = relay_start(argv[1], argv[2], msg, sizeof(msg));
	if (pid < 0) {
		fprintf(stderr, "vmenv-files-relay: %s\n", msg);
		return 1;
	}
	printf("vmenv-files-relay: %s mounted on %s (relay %d)\n", argv[1],
	       argv[2], (int)pid);
	return 0;
}
