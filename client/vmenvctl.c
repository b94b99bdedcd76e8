/* SPDX-License-Identifier: MIT */
/* vmenvctl: ask a node's vmmd what it runs; check policies; manage the
 * node's image cache. */
#include "vmenvctl.h"

#include "cleanup.h"
#include "ctlimage.h"
#include "proto.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct ctl {
	char sock[VMENV_MAX_PATH];
	int timeout_ms;
};

static int call(const struct ctl *c, enum proto_op op, struct proto_reply *rep)
{
	struct proto_request req = {.op = op};
	char err[256] = "";
	int r = proto_call(c->sock, &req, c->timeout_ms, rep, err, sizeof(err));

	if (r < 0) {
		fprintf(stderr, "vmenvctl: vmmd at %s: %s%s%s\n", c->sock,
			strerror(-r), *err ? ": " : "", err);
		return 1;
	}
	if (rep->kind != PROTO_REPLY_OK) {
		fprintf(stderr, "vmenvctl: %s\n", rep->error);
		proto_reply_clear(rep);
		return 1;
	}
	return 0;
}

static void print_ckpt(const struct proto_job_info *j)
{
	long long in = (long long)(j->ckpt_due - (int64_t)time(NULL));
	char when[64];
	struct tm tm;
	time_t t = (time_t)j->ckpt_due;

	if (!j->ckpt_due)
		return;
	localtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	printf("           checkpoint: %s (in %lld s), lead %u s\n", when,
	       in < 0 ? 0 : in, j->ckpt_lead_s);
}

/* Each job's next checkpoint, for status. */
static void status_ckpts(const struct ctl *c)
{
	struct proto_request req = {.op = PROTO_OP_LIST};
	struct proto_reply rep;
	char err[256] = "";

	if (proto_call(c->sock, &req, c->timeout_ms, &rep, err, sizeof(err)) <
		0 ||
	    rep.kind != PROTO_REPLY_OK) {
		proto_reply_clear(&rep);
		return;
	}
	for (size_t i = 0; i < rep.njobs; i++) {
		if (!rep.jobs[i].ckpt_due)
			continue;
		printf("job %-6u", rep.jobs[i].job_id);
		print_ckpt(&rep.jobs[i]);
	}
	proto_reply_clear(&rep);
}

static int cmd_status(const struct ctl *c)
{
	struct proto_reply rep;
	const struct proto_status *s = &rep.status;

	if (call(c, PROTO_OP_STATUS, &rep))
		return 1;
	printf("node:        %s\nversion:     %s\ndomain type: %s\n"
	       "libvirt:     %s\njobs:        %u\nuptime:      %llu s\n",
	       s->node, s->version, s->domain_type, s->libvirt_uri, s->jobs,
	       (unsigned long long)s->uptime_s);
	if (!s->policy_dir[0])
		; /* a vmmd without policies */
	else if (s->policy_error[0] && s->policy_loaded)
		printf("policies:    %u in force from %s: the files were "
		       "changed and are refused, the last good set stays in "
		       "force: %s\n",
		       s->policies, s->policy_dir, s->policy_error);
	else if (!s->policy_loaded)
		printf("policies:    %s REFUSED, every VM job is refused "
		       "until it is fixed: %s\n",
		       s->policy_dir, s->policy_error);
	else
		printf("policies:    %u from %s\n", s->policies, s->policy_dir);
	proto_reply_clear(&rep);
	status_ckpts(c);
	return 0;
}

static int cmd_list(const struct ctl *c)
{
	struct proto_reply rep;

	if (call(c, PROTO_OP_LIST, &rep))
		return 1;
	printf("%-10s %-8s %-16s %-8s %5s %8s %4s  %s\n", "JOB", "UID", "IMAGE",
	       "STATE", "VCPUS", "MEM_MIB", "TASKS", "DOMAIN");
	for (size_t i = 0; i < rep.njobs; i++) {
		const struct proto_job_info *j = &rep.jobs[i];
		printf("%-10u %-8u %-16s %-8s %5u %8u %4u  %s\n", j->job_id,
		       j->uid, j->image, j->state, j->vcpus, j->mem_mib,
		       j->sessions, j->domain);
		if (j->error[0])
			printf("           error: %s\n", j->error);
		if (j->started[0])
			printf("           started: %s\n", j->started);
		print_ckpt(j);
	}
	proto_reply_clear(&rep);
	return 0;
}

/* Saves the job's guest now and lets it go on (its owner or root); the
 * save of a large guest takes a while. */
static int cmd_checkpoint(struct ctl *c, const char *job)
{
	struct proto_request req = {.op = PROTO_OP_CHECKPOINT};
	struct proto_reply rep;
	char err[256] = "";
	int r;

	if (parse_u32(job, &req.job_id) < 0 || !req.job_id) {
		fprintf(stderr, "vmenvctl: '%s' is not a job id\n", job);
		return 2;
	}
	r = proto_call(c->sock, &req, 3600 * 1000, &rep, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "vmenvctl: vmmd at %s: %s%s%s\n", c->sock,
			strerror(-r), *err ? ": " : "", err);
		return 1;
	}
	if (rep.kind != PROTO_REPLY_OK) {
		fprintf(stderr, "vmenvctl: %s\n", rep.error);
		return 1;
	}
	printf("job %u: checkpointed; the job goes on\n", req.job_id);
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(const struct ctl *c);
	const char *help;
} cmds[] = {
    {"status", cmd_status, "the daemon's node, version and domain type"},
    {"list", cmd_list, "guests on the node (yours; all for root)"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: vmenvctl [--node NAME | --socket PATH] "
		   "[--config FILE] COMMAND\n"
		   "commands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++)
		fprintf(f, "  %-8s %s\n", cmds[i].name, cmds[i].help);
	fprintf(f, "  policy check [FILE|DIR]\n"
		   "           validate policy files (default: the site's)\n"
		   "  policy explain --user U [--partition P] [--account A] "
		   "[--qos Q]\n"
		   "           [--group G]... [--mem MIB] [--policies PATH] -- "
		   "OPTIONS\n"
		   "           the spec a job with these sbatch options gets, "
		   "and why\n");
	fprintf(f, "  image list            the catalog's images, what is "
		   "cached, what jobs use\n"
		   "  image pull NAME       fetch into the cache (root)\n"
		   "  image rm NAME|SHA256  remove from the cache (root)\n"
		   "  image verify [NAME]   re-hash cached files, remove "
		   "corrupt ones (root)\n"
		   "  image warm NAME [--cpus N] [--mem MIB] [--checkpoint] "
		   "[--no-wait]\n"
		   "                        make the image's warm-start "
		   "template for that guest\n"
		   "                        shape now, ahead of the jobs "
		   "(root)\n"
		   "  checkpoint JOBID      save the job's guest now; it goes "
		   "on (owner or root)\n"
		   "  console [-f] JOBID    the job's guest console log; -f: "
		   "until the guest ends\n"
		   "                        (owner or root)\n"
		   "  metrics               the node's numbers in Prometheus' "
		   "text format\n"
		   "  overlay list          kept overlays (--vm-keep-overlay) "
		   "on the node\n"
		   "                        (yours; all for root)\n"
		   "  overlay get JOBID > FILE.qcow2\n"
		   "                        the job's kept overlay (owner or "
		   "root)\n"
		   "  overlay rm JOBID      remove it now (owner or root)\n"
		   "  evacuate [NODE] [--reason TEXT] [--wait[=SECONDS]]\n"
		   "                        drain the node in Slurm, save and "
		   "requeue its VM\n"
		   "                        jobs to go on elsewhere (root)\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"node", required_argument, NULL, 'N'},
	    {"socket", required_argument, NULL, 's'},
	    {"config", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	struct ctl c = {.timeout_ms = 10000};
	char node[256] = "";
	const char *sock = NULL;
	const char *config = VMENV_SYSCONFDIR "/vmmd.conf";
	bool node_given = false;
	int o;

	gethostname(node, sizeof(node) - 1);
	node[strcspn(node, ".")] = '\0';
	while ((o = getopt_long(argc, argv, "+N:s:c:h", lo, NULL)) != -1) {
		switch (o) {
		case 'N':
			snprintf(node, sizeof(node), "%s", optarg);
			node_given = true;
			break;
		case 'c':
			config = optarg;
			break;
		case 's':
			sock = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (sock)
		snprintf(c.sock, sizeof(c.sock), "%s", sock);
	else
		snprintf(c.sock, sizeof(c.sock), VMENV_RUNDIR "/%s/vmmd.sock",
			 node);
	/* Policies are files: no vmmd needed. */
	if (optind < argc && strcmp(argv[optind], "policy") == 0)
		return vmenvctl_policy(argc - optind, argv + optind);
	/* The image cache is shared by the node's vmmds and locked with
	 * flock: vmenvctl works on it directly (docs/images.md). */
	if (optind < argc && strcmp(argv[optind], "image") == 0)
		return ctl_image(argc - optind - 1, argv + optind + 1, config,
				 node_given ? node : NULL, c.sock);
	if (optind + 2 == argc && strcmp(argv[optind], "checkpoint") == 0)
		return cmd_checkpoint(&c, argv[optind + 1]);
	if (optind < argc && strcmp(argv[optind], "console") == 0)
		return ctl_console(argc - optind, argv + optind, c.sock,
				   c.timeout_ms);
	if (optind < argc && strcmp(argv[optind], "overlay") == 0)
		return ctl_overlay(argc - optind, argv + optind, c.sock,
				   c.timeout_ms);
	if (optind < argc && strcmp(argv[optind], "evacuate") == 0)
		return ctl_evacuate(argc - optind, argv + optind, c.sock,
				    sock != NULL, c.timeout_ms);
	if (optind + 1 == argc && strcmp(argv[optind], "metrics") == 0)
		return ctl_metrics(c.sock, c.timeout_ms);
	if (optind + 1 != argc) {
		usage(stderr);
		return 2;
	}
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++)
		if (strcmp(cmds[i].name, argv[optind]) == 0)
			return cmds[i].fn(&c);
	fprintf(stderr, "vmenvctl: unknown command '%s'\n", argv[optind]);
	usage(stderr);
	return 2;
}
