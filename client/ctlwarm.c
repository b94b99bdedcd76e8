// SPDX-License-Identifier: MIT
/*
 * vmenvctl image warm NAME [--cpus N] [--mem MIB] [--checkpoint]
 * [--no-wait] (root): the node's vmmd makes the template of the image for
 * that guest shape now, ahead of the jobs (vmmd/warm/warmshape.h), and
 * this waits until it is made or failed. The image's files are pulled
 * into the cache first (ctlimage.c), as a job's would be.
 */
#include "ctlwarm.h"

#include "proto.h"
#include "util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WARM_POLL_MS 500
/* A template is a boot: boot_timeout_s (300 by default) and the save. */
#define WARM_WAIT_S 900

struct reply {
	char state[16], key[80], ref[160], files[16];
	unsigned long long mib;
	unsigned vcpus, mem;
	char why[PROTO_MAX_ERROR];
};

static void usage(FILE *f)
{
	fprintf(f, "usage: vmenvctl image warm NAME [--cpus N] [--mem MIB] "
		   "[--checkpoint] [--no-wait]\n");
}

/* "STATE KEY MIB REF VCPUS MEM FILES[: WHY]" (vmmd/warm/warm.h). */
static int parse(const char *text, struct reply *r)
{
	const char *why;
	int off = 0;

	memset(r, 0, sizeof(*r));
	if (!text || sscanf(text, "%15s %79s %llu %159s %u %u %15[a-z0-9-]%n",
			    r->state, r->key, &r->mib, r->ref, &r->vcpus,
			    &r->mem, r->files, &off) != 7)
		return -1;
	why = text + off;
	if (strncmp(why, ": ", 2) == 0)
		why += 2;
	snprintf(r->why, sizeof(r->why), "%.*s", (int)strcspn(why, "\n"), why);
	return 0;
}

static int ask(const char *sock, struct proto_request *req, struct reply *out,
	       char *err, size_t errlen)
{
	struct proto_reply rep = {0};
	int r = proto_call(sock, req, 10000, &rep, err, errlen);

	if (r == 0 && rep.kind != PROTO_REPLY_OK) {
		snprintf(err, errlen, "%s", rep.error);
		r = -1;
	} else if (r == 0 && parse(rep.text, out) < 0) {
		snprintf(err, errlen, "vmmd's answer is not understood");
		r = -1;
	}
	proto_reply_clear(&rep);
	return r;
}

static void print(const struct reply *r, const char *what)
{
	printf("template %.12s of %s (%u vCPU%s, %u MiB, %s files): %s", r->key,
	       r->ref, r->vcpus, r->vcpus == 1 ? "" : "s", r->mem, r->files,
	       what);
	if (strcmp(r->state, "made") == 0)
		printf(", %llu MiB", r->mib);
	printf("\n");
}

/* Asks for the template; another being made: asks again until the
 * deadline. */
static int start(const char *sock, struct proto_request *req, struct reply *r,
		 uint64_t deadline)
{
	char err[PROTO_MAX_ERROR] = "";

	for (;;) {
		if (ask(sock, req, r, err, sizeof(err)) == 0)
			return 0;
		if (!strstr(err, "is making template") || now_ms() > deadline)
			break;
		usleep(WARM_POLL_MS * 1000);
	}
	fprintf(stderr, "vmenvctl: %s\n", err);
	return 1;
}

static int wait_made(const char *sock, struct proto_request *req,
		     struct reply *r, uint64_t deadline)
{
	char err[PROTO_MAX_ERROR] = "";

	req->warm.query = true;
	while (strcmp(r->state, "making") == 0) {
		if (now_ms() > deadline) {
			fprintf(stderr,
				"vmenvctl: template %.12s of %s: not made "
				"within %u s\n",
				r->key, r->ref, WARM_WAIT_S);
			return 1;
		}
		usleep(WARM_POLL_MS * 1000);
		if (ask(sock, req, r, err, sizeof(err)) < 0) {
			fprintf(stderr, "vmenvctl: %s\n", err);
			return 1;
		}
	}
	if (strcmp(r->state, "made") == 0) {
		print(r, "made");
		return 0;
	}
	fprintf(stderr, "vmenvctl: template %.12s of %s: not made: %s\n",
		r->key, r->ref, r->why[0] ? r->why : r->state);
	return 1;
}

static int opt_u32(const char *name, const char *arg, uint32_t *ret)
{
	if (parse_u32(arg, ret) < 0 || *ret == 0) {
		fprintf(stderr, "vmenvctl: --%s=%s: not a positive number\n",
			name, arg);
		return -1;
	}
	return 0;
}

int ctl_warm(int argc, char **argv, const char *sock)
{
	static const struct option lo[] = {
	    {"cpus", required_argument, NULL, 'c'},
	    {"mem", required_argument, NULL, 'm'},
	    {"checkpoint", no_argument, NULL, 'k'},
	    {"no-wait", no_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	struct proto_request req = {.op = PROTO_OP_WARM};
	uint64_t deadline = now_ms() + WARM_WAIT_S * 1000ull;
	struct reply r;
	bool wait = true;
	int o;

	optind = 0; /* a new scan: main's getopt_long stopped before us */
	while ((o = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if ((o == 'c' && opt_u32("cpus", optarg, &req.warm.vcpus)) ||
		    (o == 'm' && opt_u32("mem", optarg, &req.warm.mem_mib)))
			return 2;
		if (o == 'k')
			req.warm.checkpoint = true;
		else if (o == 'n')
			wait = false;
		else if (o == 'h' || o == '?') {
			usage(o == 'h' ? stdout : stderr);
			return o == 'h' ? 0 : 2;
		}
	}
	if (optind + 1 != argc ||
	    strlen(argv[optind]) >= sizeof(req.warm.image)) {
		usage(stderr);
		return 2;
	}
	snprintf(req.warm.image, sizeof(req.warm.image), "%s", argv[optind]);
	if (start(sock, &req, &r, deadline))
		return 1;
	if (strcmp(r.state, "made") == 0) {
		print(&r, "already made");
		return 0;
	}
	if (!wait) {
		print(&r, "being made");
		return 0;
	}
	return wait_made(sock, &req, &r, deadline);
}
