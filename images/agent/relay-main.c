// SPDX-License-Identifier: MIT
/*
 * vmenv-files-relay PORT PATH: relay.c on its own, for test/ninep's guest
 * (which runs without the agent): mounts the served share of port PORT on
 * PATH and relays until it is unmounted. Static, like the agent.
 */
#include "relay.h"

#include <stdio.h>
#include <sys/stat.h>

int main(int argc, char **argv)
{
	struct relay r;
	char msg[512];

	if (argc != 3) {
		fprintf(stderr, "usage: vmenv-files-relay PORT PATH\n");
		return 2;
	}
	mkdir(argv[2], 0755);
	if (relay_mount(&r, argv[1], argv[2], msg, sizeof(msg)) < 0) {
		fprintf(stderr, "vmenv-files-relay: %s\n", msg);
		return 1;
	}
	printf("vmenv-files-relay: %s mounted on %s\n", argv[1], argv[2]);
	fflush(stdout);
	while (r.port >= 0) {
		struct pollfd fds[2];
		size_t n = relay_poll(&r, fds);

		poll(fds, n, r.host ? -1 : 100);
		relay_events(&r, fds, n);
	}
	return 0;
}
