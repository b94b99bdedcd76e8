/* SPDX-License-Identifier: MIT */
/*
 * vmenvctl overlay list | get JOBID | rm JOBID: kept overlays
 * (--vm-keep-overlay; docs/operations.md "Kept overlays"). vmmd decides
 * who may have what from this process's uid (SO_PEERCRED); get receives
 * the file as an fd vmmd opened and copies it to stdout.
 */
#include "vmenvctl.h"

#include "cleanup.h"
#include "proto.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int fail_call(const char *sock, int r, const char *err)
{
	fprintf(stderr, "vmenvctl: vmmd at %s: %s%s%s\n", sock, strerror(-r),
		*err ? ": " : "", err);
	return 1;
}

/* Sends req; the reply (and the fd it may carry) in *rep and *ret_fd. */
static int ask(const char *sock, int timeout_ms,
	       const struct proto_request *req, struct proto_reply *rep,
	       int *ret_fd)
{
	_cleanup_close_ int fd = unix_connect(sock, timeout_ms);
	char err[256] = "";
	int r;

	if (fd < 0)
		return fail_call(sock, fd, "");
	if ((r = proto_send_request(fd, req, NULL, 0)) < 0 ||
	    (r = proto_recv_reply_fd(fd, timeout_ms, rep, ret_fd, err,
				     sizeof(err))) < 0)
		return fail_call(sock, r, err);
	if (rep->kind != PROTO_REPLY_OK) {
		fprintf(stderr, "vmenvctl: %s\n", rep->error);
		proto_reply_clear(rep);
		if (ret_fd && *ret_fd >= 0)
			close(*ret_fd);
		return 1;
	}
	return 0;
}

static void when(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	localtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
}

static int cmd_list(const char *sock, int timeout_ms)
{
	struct proto_request req = {.op = PROTO_OP_OVERLAY_LIST};
	struct proto_reply rep;
	char kept[32], until[32];

	if (ask(sock, timeout_ms, &req, &rep, NULL))
		return 1;
	printf("%-10s %-8s %-12s %8s %-19s %-19s %-16s %s\n", "JOB", "UID",
	       "NODE", "MIB", "KEPT", "UNTIL", "IMAGE", "BASE");
	for (size_t i = 0; i < rep.noverlays; i++) {
		const struct proto_overlay_info *v = &rep.overlays[i];

		when(v->created, kept, sizeof(kept));
		when(v->expires, until, sizeof(until));
		printf("%-10u %-8u %-12s %8llu %-19s %-19s %-16s %s\n",
		       v->job_id, v->uid, v->node,
		       (unsigned long long)((v->bytes + (1u << 20) - 1) >> 20),
		       kept, until, v->image, v->base);
	}
	proto_reply_clear(&rep);
	return 0;
}

/* All of in (from offset 0) to out. */
static int copy_all(int in, int out, uint64_t *done)
{
	static char buf[1 << 20];

	for (*done = 0;;) {
		ssize_t n = pread(in, buf, sizeof(buf), (off_t)*done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		if (write_full(out, buf, (size_t)n) < 0)
			return -errno;
		*done += (uint64_t)n;
	}
}

static int cmd_get(const char *sock, int timeout_ms, uint32_t job)
{
	struct proto_request req = {.op = PROTO_OP_OVERLAY_GET, .job_id = job};
	struct proto_reply rep;
	_cleanup_close_ int fd = -1;
	uint64_t done = 0;
	int r;

	if (isatty(STDOUT_FILENO)) {
		fprintf(stderr, "vmenvctl: overlay get writes the qcow2 file "
				"to stdout: redirect it to a file\n");
		return 2;
	}
	if (ask(sock, timeout_ms, &req, &rep, &fd))
		return 1;
	if (fd < 0) {
		fprintf(stderr, "vmenvctl: vmmd sent no file for job %u\n",
			job);
		proto_reply_clear(&rep);
		return 1;
	}
	r = copy_all(fd, STDOUT_FILENO, &done);
	if (r < 0)
		fprintf(stderr, "vmenvctl: job %u: writing the overlay: %s\n",
			job, strerror(-r));
	else if (rep.noverlays == 1 && done != rep.overlays[0].bytes)
		fprintf(stderr,
			"vmenvctl: job %u: note: the overlay had %llu bytes "
			"when vmmd opened it; %llu were copied\n",
			job, (unsigned long long)rep.overlays[0].bytes,
			(unsigned long long)done);
	else if (rep.noverlays == 1)
		fprintf(stderr,
			"vmenvctl: job %u: %llu bytes, a qcow2 overlay backed "
			"by %s\n",
			job, (unsigned long long)done, rep.overlays[0].base);
	proto_reply_clear(&rep);
	return r < 0 ? 1 : 0;
}

static int cmd_rm(const char *sock, int timeout_ms, uint32_t job)
{
	struct proto_request req = {.op = PROTO_OP_OVERLAY_RM, .job_id = job};
	struct proto_reply rep;

	if (ask(sock, timeout_ms, &req, &rep, NULL))
		return 1;
	proto_reply_clear(&rep);
	printf("job %u: kept overlay removed\n", job);
	return 0;
}

int ctl_overlay(int argc, char **argv, const char *sock, int timeout_ms)
{
	uint32_t job = 0;

	if (argc == 2 && strcmp(argv[1], "list") == 0)
		return cmd_list(sock, timeout_ms);
	if (argc != 3 ||
	    (strcmp(argv[1], "get") != 0 && strcmp(argv[1], "rm") != 0)) {
		fprintf(stderr, "usage: vmenvctl overlay list | get JOBID "
				"> FILE.qcow2 | rm JOBID\n");
		return 2;
	}
	if (parse_u32(argv[2], &job) < 0 || !job) {
		fprintf(stderr, "vmenvctl: '%s' is not a job id\n", argv[2]);
		return 2;
	}
	return strcmp(argv[1], "get") == 0 ? cmd_get(sock, timeout_ms, job)
					   : cmd_rm(sock, timeout_ms, job);
}
