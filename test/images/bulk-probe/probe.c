// SPDX-License-Identifier: MIT
/*
 * probe: writes into a virtio-serial port the zero-copy ways (run in the
 * guest by test/images/bulk-probe/run).
 *   probe sendfile PORT FILE      sendfile(2) the file into the port
 *   probe splice PORT [PIPE_SIZE] splice(2) stdin (a pipe) into the port
 * The port's splice returns 0 on an empty pipe instead of waiting, so the
 * splice loop polls and ends at the pipe's hangup.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	long total = 0;
	if (argc < 3)
		return 2;
	int out = open(argv[2], O_WRONLY);
	if (out < 0) {
		perror("open port");
		return 1;
	}
	if (!strcmp(argv[1], "sendfile")) {
		int in = open(argv[3], O_RDONLY);
		ssize_t n;
		while ((n = sendfile(out, in, NULL, 1 << 20)) > 0)
			total += n;
		if (n < 0)
			perror("sendfile");
	} else if (!strcmp(argv[1], "splice")) {
		if (argc > 3)
			fcntl(0, F_SETPIPE_SZ, atoi(argv[3]));
		ssize_t n;
		for (;;) {
			struct pollfd p = {.fd = 0, .events = POLLIN};
			poll(&p, 1, -1);
			n = splice(0, NULL, out, NULL, 1 << 20, 0);
			if (n < 0)
				break;
			total += n;
			if (n == 0 && (p.revents & POLLHUP) &&
			    !(p.revents & POLLIN))
				break;
		}
		if (n < 0)
			perror("splice");
	}
	printf("probe %s: %ld bytes\n", argv[1], total);
	return 0;
}
