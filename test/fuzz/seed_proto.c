// SPDX-License-Identifier: MIT
/*
 * Seeds for fuzz_proto: every op and every reply kind, made by proto.c's
 * own encoders (so they follow the protocol as it changes), each with
 * fuzz_proto's selector byte in front, and connections of a few framed
 * messages, some with fds. Usage: seed_proto DIR. Built and run by
 * test/fuzz/run-proto-fuzz.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

static const char *dir;

static void put(const char *name, char sel, const char *text, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!(f = fopen(path, "w")) || fputc(sel, f) == EOF ||
	    fwrite(text, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

static void request(const char *name, const struct proto_request *q)
{
	char *text;
	size_t len;

	if (proto_request_encode(q, &text, &len) < 0)
		exit(1);
	put(name, 0, text, len);
	free(text);
}

static void reply(const char *name, const struct proto_reply *r)
{
	char *text;
	size_t len;

	if (proto_reply_encode(r, &text, &len) < 0)
		exit(1);
	put(name, 1, text, len);
	free(text);
}

static void requests(void)
{
	static char *argv[] = {"/bin/sh", "-c", "echo \"$X\" >out", NULL};
	static char *env[] = {"PATH=/usr/bin:/bin", "X=a b", NULL};
	struct proto_request q = {.op = PROTO_OP_START, .job_id = 42};

	q.start = (struct proto_start){.job_id = 42, .uid = 1000, .gid = 100};
	snprintf(q.start.image, sizeof(q.start.image), "debian12:2025.1");
	q.start.opts[VMSPEC_OPT_HUGEPAGES] = "2M";
	q.start.opts[VMSPEC_OPT_MOUNT] = "/home/a:/a,/data/x:/x:ro";
	q.start.opts[VMSPEC_OPT_CHECKPOINT] = "yes";
	q.start.opts[VMSPEC_OPT_MEM_HEADROOM] = "10%,512M";
	request("start", &q);
	q = (struct proto_request){.op = PROTO_OP_EXEC, .job_id = 42};
	q.exec = (struct proto_exec){.job_id = 42,
				     .want_stdin = true,
				     .script = true,
				     .relay = true,
				     .cwd = "/home/alice/job",
				     .argc = 3,
				     .argv = argv,
				     .envc = 2,
				     .envp = env};
	request("exec", &q);
	q.exec.envc = 0;
	q.exec.relay = false;
	q.exec.merge_stderr = true;
	request("exec-noenv", &q);
	request("stop",
		&(struct proto_request){.op = PROTO_OP_STOP, .job_id = 7});
	request("step_end",
		&(struct proto_request){.op = PROTO_OP_STEP_END, .job_id = 7});
	request("checkpoint", &(struct proto_request){.op = PROTO_OP_CHECKPOINT,
						      .job_id = 7});
	request("signal",
		&(struct proto_request){.op = PROTO_OP_SIGNAL, .signo = 15});
	request("status", &(struct proto_request){.op = PROTO_OP_STATUS});
	request("list", &(struct proto_request){.op = PROTO_OP_LIST});
	q = (struct proto_request){.op = PROTO_OP_REATTACH, .job_id = 42};
	q.re.session = 3;
	snprintf(q.re.token, sizeof(q.re.token), "%064d", 7);
	q.re.out_bytes = 123456;
	q.re.err_bytes = 78;
	q.exec.want_stdin = true;
	request("reattach", &q);
}

static void replies(void)
{
	struct proto_job_info jobs[2] = {
	    {42, 1000, "tiny", "running", "vmenv-n1-42", "/run/c", 2, 1024, 1,
	     "", 1700000000, 600},
	    {43, 1001, "debian12", "failed", "", "", 1, 512, 0,
	     "job 43: boot timed out", 0, 0},
	};
	struct proto_reply r = {.kind = PROTO_REPLY_OK, .has_status = true};

	r.status = (struct proto_status){"n1",
					 "0.9",
					 "kvm",
					 "qemu:///system",
					 2,
					 3600,
					 "/etc/vmenv/policies.d",
					 true,
					 3,
					 ""};
	reply("status", &r);
	r = (struct proto_reply){
	    .kind = PROTO_REPLY_OK, .has_jobs = true, .njobs = 2, .jobs = jobs};
	reply("list", &r);
	reply("ok", &(struct proto_reply){.kind = PROTO_REPLY_OK});
	reply("error", &(struct proto_reply){.kind = PROTO_REPLY_ERROR,
					     .error = "job 42: 'x' unknown"});
	reply("started", &(struct proto_reply){.kind = PROTO_EV_STARTED});
	reply("exit",
	      &(struct proto_reply){.kind = PROTO_EV_EXIT, .exit_value = 3});
	reply("killed", &(struct proto_reply){.kind = PROTO_EV_EXIT,
					      .exit_signaled = true,
					      .exit_value = 9});
	reply("session", &(struct proto_reply){
			     .kind = PROTO_EV_SESSION,
			     .session = 3,
			     .token = "0123456789abcdef0123456789abcdef"
				      "0123456789abcdef0123456789abcdef"});
	reply("restarted", &(struct proto_reply){.kind = PROTO_EV_STARTED,
						 .reattached = true,
						 .stdin_offset = 4096,
						 .stdin_eof = true});
	reply("ev-error", &(struct proto_reply){.kind = PROTO_EV_ERROR,
						.error = "agent gone"});
	reply("checkpointed",
	      &(struct proto_reply){.kind = PROTO_EV_CHECKPOINTED,
				    .error = "job 42: checkpointed on node "
					     "n1, requeued",
				    .exit_value = 0});
}

/* A connection (fuzz_proto's rx_stream): no cap, then an exec request in
 * two chunks with 3 fds on the first, then a signal op. */
static void stream(void)
{
	static char *argv[] = {"true", NULL};
	struct proto_request q = {.op = PROTO_OP_EXEC, .job_id = 1};
	char buf[1024], *text;
	size_t len, n = 0;

	q.exec = (struct proto_exec){.cwd = "/", .argc = 1, .argv = argv};
	if (proto_request_encode(&q, &text, &len) < 0 || len > 250)
		exit(1);
	buf[n++] = 0;
	buf[n++] = 3;
	buf[n++] = 6;
	memcpy(buf + n, (char[]){0, 0, 0, (char)len, '{', '"'}, 6);
	n += 6;
	buf[n++] = 8;
	buf[n++] = (char)(len - 2);
	memcpy(buf + n, text + 2, len - 2);
	n += len - 2;
	free(text);
	q = (struct proto_request){.op = PROTO_OP_SIGNAL, .signo = 2};
	if (proto_request_encode(&q, &text, &len) < 0 || len > 250)
		exit(1);
	buf[n++] = 8;
	buf[n++] = (char)(len + 4);
	memcpy(buf + n, (char[]){0, 0, 0, (char)len}, 4);
	memcpy(buf + n + 4, text, len);
	n += len + 4;
	free(text);
	put("stream", 2, buf, n);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: seed_proto DIR\n");
		return 2;
	}
	dir = argv[1];
	requests();
	replies();
	stream();
	return 0;
}
