/* SPDX-License-Identifier: MIT */
/*
 * vmenvctl console [-f|--follow] JOBID: the job's guest console log, read
 * by vmmd and streamed here (vmmd/console.h). The bytes are the guest's:
 * on a terminal they are escaped (ctlesc.h); into a pipe or a file they go
 * as they are.
 */
#include "vmenvctl.h"

#include "cleanup.h"
#include "ctlesc.h"
#include "proto.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* A line without its end yet (a prompt) is shown after this long. */
#define PARTIAL_MS 200

static int parse_args(int argc, char **argv, bool *follow, uint32_t *job)
{
	static const struct option lo[] = {
	    {"follow", no_argument, NULL, 'f'},
	    {0},
	};
	int o;

	optind = 1;
	while ((o = getopt_long(argc, argv, "+f", lo, NULL)) != -1) {
		if (o != 'f')
			return -EINVAL;
		*follow = true;
	}
	if (optind + 1 != argc) {
		fprintf(stderr,
			"usage: vmenvctl console [-f|--follow] JOBID\n");
		return -EINVAL;
	}
	if (parse_u32(argv[optind], job) < 0 || !*job) {
		fprintf(stderr, "vmenvctl: '%s' is not a job id\n",
			argv[optind]);
		return -EINVAL;
	}
	return 0;
}

/* Sends the request; 0 once vmmd said yes (the log follows). */
static int ask(const char *sock, int timeout_ms, uint32_t job, bool follow,
	       int *ret_fd)
{
	struct proto_request req = {
	    .op = PROTO_OP_CONSOLE, .job_id = job, .follow = follow};
	struct proto_reply rep = {0};
	char err[256] = "";
	int fd = unix_connect(sock, timeout_ms);
	int r = fd < 0 ? fd : proto_send_request(fd, &req, NULL, 0);

	if (r >= 0)
		r = proto_recv_reply(fd, timeout_ms, &rep, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "vmenvctl: vmmd at %s: %s%s%s\n", sock,
			strerror(-r), *err ? ": " : "", err);
	} else if (rep.kind != PROTO_REPLY_OK) {
		fprintf(stderr, "vmenvctl: %s\n", rep.error);
		r = -EPERM;
	}
	proto_reply_clear(&rep);
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

static void out_bytes(struct ctlesc *esc, bool tty, const char *buf, size_t n)
{
	if (tty)
		ctlesc_feed(esc, buf, n, stdout);
	else
		fwrite(buf, 1, n, stdout);
}

/* Copies the stream to stdout until vmmd closes it. */
static int copy_stream(int fd)
{
	struct ctlesc esc = {.len = 0};
	bool tty = isatty(STDOUT_FILENO);
	char buf[65536];

	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int r = poll(&p, 1, PARTIAL_MS);
		ssize_t n;

		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0) {
			if (tty)
				ctlesc_flush(&esc, stdout);
			fflush(stdout);
			continue;
		}
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		out_bytes(&esc, tty, buf, (size_t)n);
	}
	if (tty)
		ctlesc_flush(&esc, stdout);
	return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
}

int ctl_console(int argc, char **argv, const char *sock, int timeout_ms)
{
	bool follow = false;
	uint32_t job = 0;
	int fd, r;

	if (parse_args(argc, argv, &follow, &job) < 0)
		return 2;
	if (ask(sock, timeout_ms, job, follow, &fd) < 0)
		return 1;
	r = copy_stream(fd);
	close(fd);
	return r;
}
