/* SPDX-License-Identifier: MIT */
/*
 * vmenvctl evacuate [NODE] [--reason TEXT] [--wait[=SECONDS]] (root): the
 * node's vmmd drains it in Slurm and saves and requeues every VM job that
 * can be saved (vmmd/evacuate.h). vmmd answers at once with what it does
 * for each job; --wait then follows the jobs it saves (vmenvctl list)
 * until each has left the node or failed to, and says which stay.
 */
#include "vmenvctl.h"

#include "proto.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EVAC_MAX_JOBS 4096
#define EVAC_POLL_MS  2000

struct evac_job {
	uint32_t id;
	bool moving; /* saving, or waiting for its guest */
	bool gone;
	bool moved; /* vmmd saved and requeued it (list's "moved") */
	char stays[PROTO_MAX_ERROR];
	/* As last listed, for a job gone without a requeue. */
	char state[32];
	char error[PROTO_MAX_ERROR];
};

struct evac {
	size_t n;
	struct evac_job jobs[EVAC_MAX_JOBS];
};

/* The report's job lines: "job N: saving|waiting|stays: text". */
static void parse_report(const char *text, struct evac *e)
{
	for (const char *l = text; l && *l && e->n < EVAC_MAX_JOBS;) {
		const char *nl = strchr(l, '\n');
		unsigned id;
		char word[16];
		int off = 0;

		if (sscanf(l, "job %u: %15[a-z]: %n", &id, word, &off) == 2 &&
		    off > 0) {
			struct evac_job *j = &e->jobs[e->n++];

			memset(j, 0, sizeof(*j));
			j->id = id;
			j->moving = strcmp(word, "stays") != 0;
			if (!j->moving)
				snprintf(j->stays, sizeof(j->stays), "%.*s",
					 (int)(nl ? nl - l - off
						  : (long)strlen(l + off)),
					 l + off);
		}
		l = nl ? nl + 1 : NULL;
	}
}

/* One look at the node: jobs gone, jobs that failed to move. Returns how
 * many still move, or -1 when vmmd does not answer. */
static int poll_once(const char *sock, int timeout_ms, struct evac *e)
{
	struct proto_request req = {.op = PROTO_OP_LIST};
	struct proto_reply rep = {0};
	char err[256] = "";
	int moving = 0;

	if (proto_call(sock, &req, timeout_ms, &rep, err, sizeof(err)) < 0 ||
	    rep.kind != PROTO_REPLY_OK) {
		proto_reply_clear(&rep);
		return -1;
	}
	for (size_t i = 0; i < e->n; i++) {
		struct evac_job *j = &e->jobs[i];
		const struct proto_job_info *in = NULL;

		for (size_t k = 0; k < rep.nmoved; k++)
			j->moved |= rep.moved[k] == j->id;
		if (!j->moving)
			continue;
		for (size_t k = 0; k < rep.njobs && !in; k++)
			if (rep.jobs[k].job_id == j->id)
				in = &rep.jobs[k];
		if (!in) {
			j->moving = false;
			j->gone = true;
		} else if (strncmp(in->error, "not evacuated: ", 15) == 0) {
			j->moving = false;
			snprintf(j->stays, sizeof(j->stays), "%s",
				 in->error + 15);
		} else {
			snprintf(j->state, sizeof(j->state), "%s", in->state);
			snprintf(j->error, sizeof(j->error), "%s", in->error);
			moving++;
		}
	}
	proto_reply_clear(&rep);
	return moving;
}

static int wait_jobs(const char *sock, int timeout_ms, unsigned wait_s,
		     struct evac *e)
{
	unsigned waited = 0;
	int left = 0, bad = 0;

	while ((left = poll_once(sock, timeout_ms, e)) != 0 &&
	       waited < wait_s * 1000u) {
		usleep(EVAC_POLL_MS * 1000u);
		waited += EVAC_POLL_MS;
	}
	for (size_t i = 0; i < e->n; i++) {
		const struct evac_job *j = &e->jobs[i];

		if (j->gone && j->moved) {
			printf("job %u: saved, requeued and gone from the "
			       "node\n",
			       j->id);
			continue;
		}
		if (j->gone) {
			bad = 1;
			printf("job %u: gone from the node without a requeue "
			       "(last seen %s%s%s; see vmmd's log)\n",
			       j->id, j->state[0] ? j->state : "?",
			       j->error[0] ? ": " : "", j->error);
			continue;
		}
		bad = 1;
		if (j->moving)
			printf("job %u: still here after %u s\n", j->id,
			       wait_s);
		else
			printf("job %u: stays on the node: %s\n", j->id,
			       j->stays);
	}
	if (left < 0)
		fprintf(stderr, "vmenvctl: vmmd at %s stopped answering\n",
			sock);
	return left != 0 || bad;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: vmenvctl evacuate [NODE] [--reason TEXT] "
		   "[--wait[=SECONDS]]\n");
}

int ctl_evacuate(int argc, char **argv, const char *sock, bool sock_given,
		 int timeout_ms)
{
	static const struct option lo[] = {
	    {"reason", required_argument, NULL, 'r'},
	    {"wait", optional_argument, NULL, 'w'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	struct proto_request req = {.op = PROTO_OP_EVACUATE};
	struct proto_reply rep = {0};
	char path[VMENV_MAX_PATH], err[PROTO_MAX_ERROR] = "";
	unsigned wait_s = 0;
	struct evac *e;
	int o, r;

	snprintf(req.reason, sizeof(req.reason), "vmenvctl evacuate");
	optind = 0; /* a new scan: main's getopt_long stopped before us */
	while ((o = getopt_long(argc, argv, "r:w::h", lo, NULL)) != -1) {
		uint32_t s;

		switch (o) {
		case 'r':
			snprintf(req.reason, sizeof(req.reason), "%s", optarg);
			if (proto_reason_check(optarg, err, sizeof(err)) < 0) {
				fprintf(stderr, "vmenvctl: --reason: %s\n",
					err);
				return 2;
			}
			break;
		case 'w':
			wait_s = 600;
			if (optarg && (parse_u32(optarg, &s) < 0 || !s)) {
				fprintf(stderr,
					"vmenvctl: --wait=%s: not a number of "
					"seconds\n",
					optarg);
				return 2;
			}
			if (optarg)
				wait_s = s > 86400 ? 86400 : s;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind + 1 < argc) {
		usage(stderr);
		return 2;
	}
	/* NODE: that node's vmmd (a --socket given wins). */
	if (optind < argc && !sock_given) {
		const char *node = argv[optind];

		if (!node[0] ||
		    strspn(node, "abcdefghijklmnopqrstuvwxyz"
				 "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				 "0123456789._-") != strlen(node) ||
		    node[0] == '.') {
			fprintf(stderr, "vmenvctl: '%s' is not a node name\n",
				node);
			return 2;
		}
		snprintf(path, sizeof(path), VMENV_RUNDIR "/%s/vmmd.sock",
			 node);
		sock = path;
	}
	r = proto_call(sock, &req, timeout_ms, &rep, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "vmenvctl: vmmd at %s: %s%s%s\n", sock,
			strerror(-r), *err ? ": " : "", err);
		return 1;
	}
	if (rep.kind != PROTO_REPLY_OK) {
		fprintf(stderr, "vmenvctl: %s\n", rep.error);
		proto_reply_clear(&rep);
		return 1;
	}
	fputs(rep.text ? rep.text : "", stdout);
	fflush(stdout);
	if (!wait_s) {
		proto_reply_clear(&rep);
		return 0;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		proto_reply_clear(&rep);
		return 1;
	}
	parse_report(rep.text, e);
	proto_reply_clear(&rep);
	r = wait_jobs(sock, timeout_ms, wait_s, e);
	free(e);
	return r;
}
