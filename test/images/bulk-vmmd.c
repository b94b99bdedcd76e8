// SPDX-License-Identifier: MIT
/*
 * bulk-vmmd: bulk ports end to end on a real guest, without Slurm. vmmd's
 * real core and its libvirt calls (a bkdev-<id> domain booting a tiny
 * image built with this tree's agent), the unit tests' fake Slurm, and
 * exec sessions made as vmenv-exec makes them (the task's fds over vmmd's
 * socket). test/images/bulk-run builds the image and the configuration.
 *
 *   bulk-vmmd CONFIG IMAGE
 *
 * Checks: the agent offers bulk ports; 64 MiB of random bytes arrive
 * exact (sha256 against the guest's own); sessions one after another and
 * at once each get exactly their own output; stderr apart stays on the
 * relay, merged goes with stdout; a background child in the group is
 * waited for, one that left the group is not and its late bytes are
 * dropped, and the port it holds makes a later session fall back to the
 * relay; exit status after all output; a line is seen before the command
 * ends. Then measures stdout throughput in the same guest: `dd` into a
 * port the way bench/run's raw channel does, the same behind one pipe,
 * the same `dd` as a session's stdout through a bulk port, and through
 * the agent's relay. Lines "ok"/"FAIL", figures, and "bulk-vmmd: N
 * failed"; exit 1 when any failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../unit/fakes.h"
#include "digest.h"
#include "job.h"
#include "log.h"
#include "proto.h"
#include "vmmd.h"
#include "vmmdconf.h"

#define JOB_ID	 1u
#define TEXT_MAX (256u * 1024u)
#define MAX_SESS 8

extern const struct hv_ops hv_libvirt_ops;

static int failures;

/* The detail (what came) is shown for failures only. */
static void check(const char *what, bool ok, const char *detail)
{
	if (ok || !detail)
		detail = "";
	printf("%-4s %s%s%s\n", ok ? "ok" : "FAIL", what, *detail ? ": " : "",
	       detail);
	failures += !ok;
}

/* One task as vmenv-exec would be: its connection and its stdio pipes. */
struct sess {
	int cfd, out, err;
	char text[2][TEXT_MAX]; /* stdout, stderr (first TEXT_MAX - 1) */
	size_t ntext[2];
	uint64_t nbytes[2];
	struct digest *dg; /* of stdout, when asked */
	uint64_t t_start, t_first, t_last, t_line;
	bool ended; /* EXIT or ERROR came */
	bool eof[2];
	bool signaled;
	int exit_value;
	bool exit_before_eof; /* EXIT came while output was still open */
	char error[PROTO_MAX_ERROR];
};

static struct vmmd d;

static int pipe_big(int p[2])
{
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	(void)fcntl(p[0], F_SETPIPE_SZ, 1 << 20);
	return fd_set_nonblock(p[0], true);
}

static int sess_start(struct sess *s, const char *cmd, bool merge, bool hash)
{
	char sh[] = "/bin/sh", c[] = "-c", env[] = "PATH=/bin:/usr/bin:/sbin";
	char cwd[] = "/", *cmd_copy = strdup(cmd);
	char *argv[] = {sh, c, cmd_copy, NULL}, *envp[] = {env, NULL};
	struct proto_request req = {.op = PROTO_OP_EXEC, .job_id = JOB_ID};
	int out[2], err[2], fds[3], r;

	memset(s, 0, sizeof(*s));
	s->cfd = s->out = s->err = -1;
	if (!cmd_copy || pipe_big(out) < 0 || pipe_big(err) < 0)
		return -ENOMEM;
	if (hash && digest_new(&s->dg) < 0)
		return -ENOMEM;
	req.exec = (struct proto_exec){.job_id = JOB_ID,
				       .merge_stderr = merge,
				       .cwd = cwd,
				       .argc = 3,
				       .argv = argv,
				       .envc = 1,
				       .envp = envp};
	fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	fds[1] = out[1];
	fds[2] = err[1];
	s->cfd = unix_connect(d.cfg.socket_path, 1000);
	r = s->cfd < 0 ? s->cfd : proto_send_request(s->cfd, &req, fds, 3);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	free(cmd_copy);
	s->out = out[0];
	s->err = err[0];
	s->t_start = now_ms();
	return r;
}

static void sess_take(struct sess *s, int k, const char *p, size_t n)
{
	uint64_t now = now_ms();
	size_t room = TEXT_MAX - 1 - s->ntext[k];

	if (k == 0) {
		if (!s->t_first)
			s->t_first = now;
		s->t_last = now;
		if (!s->t_line && memchr(p, '\n', n))
			s->t_line = now;
		if (s->dg)
			digest_update(s->dg, p, n);
	}
	s->nbytes[k] += n;
	memcpy(s->text[k] + s->ntext[k], p, n < room ? n : room);
	s->ntext[k] += n < room ? n : room;
	s->text[k][s->ntext[k]] = '\0';
}

static void sess_read(struct sess *s, int k)
{
	static char buf[1 << 20];
	int fd = k ? s->err : s->out;

	for (int i = 0; i < 16 && !s->eof[k]; i++) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0)
			return;
		if (n == 0)
			s->eof[k] = true;
		else
			sess_take(s, k, buf, (size_t)n);
	}
}

static void sess_reply(struct sess *s)
{
	struct pollfd p = {.fd = s->cfd, .events = POLLIN};
	struct proto_reply rep;
	char err[PROTO_MAX_ERROR];

	if (s->ended || poll(&p, 1, 0) != 1)
		return;
	if (proto_recv_reply(s->cfd, 1000, &rep, err, sizeof(err)) < 0) {
		s->ended = true;
		snprintf(s->error, sizeof(s->error), "bad reply: %.400s", err);
		return;
	}
	/* "session": the command is on its way (the re-attach token). */
	if (rep.kind == PROTO_EV_STARTED || rep.kind == PROTO_EV_SESSION)
		return;
	s->ended = true;
	s->exit_before_eof = !s->eof[0] || !s->eof[1];
	if (rep.kind == PROTO_EV_EXIT) {
		s->signaled = rep.exit_signaled;
		s->exit_value = rep.exit_value;
	} else {
		snprintf(s->error, sizeof(s->error), "%s", rep.error);
	}
}

static bool sess_done(const struct sess *s)
{
	return s->ended && s->eof[0] && s->eof[1];
}

/* Runs vmmd's loop and the tasks' ends until every session is done. */
static bool pump(struct sess *ss, size_t n, int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	bool all;

	do {
		loop_run_once(d.loop, 1);
		all = true;
		for (size_t i = 0; i < n; i++) {
			sess_read(&ss[i], 0);
			sess_read(&ss[i], 1);
			sess_reply(&ss[i]);
			all &= sess_done(&ss[i]);
		}
	} while (!all && now_ms() < end);
	return all;
}

static void sess_close(struct sess *s)
{
	if (s->cfd >= 0)
		close(s->cfd);
	if (s->out >= 0)
		close(s->out);
	if (s->err >= 0)
		close(s->err);
	digest_free(s->dg);
	s->cfd = s->out = s->err = -1;
	s->dg = NULL;
}

static struct sess one;

/* Runs cmd to its end; false if it did not end in time. */
static bool run(const char *cmd, bool merge)
{
	bool ok;

	if (sess_start(&one, cmd, merge, false) < 0)
		return false;
	ok = pump(&one, 1, 120000);
	sess_close(&one);
	return ok && !one.error[0];
}

static struct job *job(void)
{
	return job_find(&d, JOB_ID);
}

/* --- vmmd with libvirt and the fake Slurm ------------------------------ */

static int setup(const char *conf)
{
	char err[512] = "", work[VMENV_MAX_PATH];
	struct slurmjob_info si = {.job_id = JOB_ID,
				   .uid = (uint32_t)getuid(),
				   .gid = (uint32_t)getgid(),
				   .active = true,
				   .on_node = true,
				   .cpus = 1,
				   .mem_mib = 640,
				   .cpu_ids = "0"};
	int r;

	config_defaults(&d.cfg, NULL);
	if (config_load(&d.cfg, conf, 0, err, sizeof(err)) < 0 ||
	    config_expand(&d.cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "bulk-vmmd: %s\n", err);
		return -EINVAL;
	}
	/* Every step gets a port here, as with session_restarts = no. */
	snprintf(d.cfg.session_restarts, sizeof(d.cfg.session_restarts), "no");
	if (str_printf(work, sizeof(work), "%s/work", d.cfg.run_dir) < 0)
		return -ENAMETOOLONG;
	mkdir_p(work, 0755);
	memcpy(si.work_dir, work, sizeof(si.work_dir));
	si.node_cores = (uint32_t)sysconf(_SC_NPROCESSORS_ONLN);
	d.hv = &hv_libvirt_ops;
	d.slurm_lookup = fake_slurm_lookup;
	fake_slurm_reset();
	fake_slurm_set(&si);
	r = vmmd_init(&d);
	/* Not vmenv-*: those are the cluster's. */
	snprintf(d.domain_prefix, sizeof(d.domain_prefix), "bkdev-");
	return r;
}

static int start_job(const char *image)
{
	struct proto_request req = {
	    .op = PROTO_OP_START,
	    .job_id = JOB_ID,
	    .start = {.job_id = JOB_ID,
		      .uid = (uint32_t)getuid(),
		      .gid = (uint32_t)getgid()},
	};
	uint64_t end = now_ms() + 300000;
	int fd = unix_connect(d.cfg.socket_path, 1000);

	if (fd < 0)
		return fd;
	snprintf(req.start.image, sizeof(req.start.image), "%s", image);
	if (proto_send_request(fd, &req, NULL, 0) < 0)
		return -EIO;
	while (now_ms() < end && (!job() || (job()->state != JOB_READY &&
					     job()->state != JOB_FAILED)))
		loop_run_once(d.loop, 50);
	close(fd);
	if (!job())
		return -ENOENT;
	if (job()->state != JOB_READY) {
		fprintf(stderr, "bulk-vmmd: job: %s\n", job()->error);
		return -EIO;
	}
	return 0;
}

/* --- checks -------------------------------------------------------------- */

static void check_exact_64mib(void)
{
	char want[DIGEST_HEX_LEN + 1] = "", got[DIGEST_HEX_LEN + 1] = "";
	uint64_t before = job()->bulk_bytes;
	bool ok;

	ok = run("head -c 67108864 /dev/urandom >/tmp/big && "
		 "sha256sum </tmp/big",
		 false);
	sscanf(one.text[0], "%64s", want);
	check("the guest made 64 MiB of random bytes", ok && strlen(want) == 64,
	      one.text[1]);
	if (sess_start(&one, "cat /tmp/big", false, true) < 0)
		return;
	ok = pump(&one, 1, 300000);
	digest_final_hex(one.dg, got);
	sess_close(&one);
	check("64 MiB through a bulk port arrive exact (sha256)",
	      ok && one.nbytes[0] == 64u << 20 && strcmp(want, got) == 0, got);
	check("... and they came through the port, not the agent",
	      job()->bulk_bytes - before >= 64u << 20, NULL);
	check("exit 0 after all of it",
	      !one.exit_before_eof && !one.signaled && one.exit_value == 0,
	      NULL);
}

static void check_sequential(void)
{
	char cmd[128], want[64];
	bool all = true;

	for (int i = 0; i < 10 && all; i++) {
		snprintf(cmd, sizeof(cmd), "echo session-%d; exit %d", i, i);
		snprintf(want, sizeof(want), "session-%d\n", i);
		all = run(cmd, false) && strcmp(one.text[0], want) == 0 &&
		      one.exit_value == i && !one.exit_before_eof;
		if (!all)
			printf("     session %d: '%s' exit %d\n", i,
			       one.text[0], one.exit_value);
	}
	check("10 sessions one after another: each its own line and exit "
	      "status, the status last",
	      all, NULL);
}

/* Three sessions at once, each printing its own numbered lines. */
static void check_concurrent(void)
{
	static struct sess ss[3];
	const char *tags[] = {"alpha", "beta", "gamma"};
	char cmd[256];
	bool ok = true;

	for (int i = 0; i < 3; i++) {
		snprintf(cmd, sizeof(cmd),
			 "i=0; while [ $i -lt 2000 ]; do echo %s $i; "
			 "i=$((i+1)); done",
			 tags[i]);
		if (sess_start(&ss[i], cmd, false, false) < 0)
			ok = false;
	}
	ok = ok && pump(ss, 3, 300000);
	for (int i = 0; i < 3 && ok; i++) {
		char *line = ss[i].text[0], *nl;
		int n = 0;

		for (; (nl = strchr(line, '\n')); line = nl + 1, n++) {
			char want[64];
			snprintf(want, sizeof(want), "%s %d", tags[i], n);
			if ((size_t)(nl - line) != strlen(want) ||
			    strncmp(line, want, strlen(want)) != 0) {
				printf("     %s line %d: '%.*s'\n", tags[i], n,
				       (int)(nl - line), line);
				ok = false;
				break;
			}
		}
		ok = ok && n == 2000 && *line == '\0';
	}
	for (int i = 0; i < 3; i++)
		sess_close(&ss[i]);
	check("3 sessions at once: each gets exactly its own 2000 lines", ok,
	      NULL);
}

static void check_stderr(void)
{
	bool ok = run("echo out; echo err >&2", false);

	check("stderr apart stays apart (on the relay)",
	      ok && !strcmp(one.text[0], "out\n") &&
		  !strcmp(one.text[1], "err\n"),
	      NULL);
	ok = run("echo out; echo err >&2; echo out2", true);
	check("merged stderr goes with stdout, in order",
	      ok && !strcmp(one.text[0], "out\nerr\nout2\n") && !one.ntext[1],
	      one.text[0]);
}

static void check_background(void)
{
	bool ok = run("(sleep 1; echo bg) & echo fg", false);

	check("a background child in the group is waited for",
	      ok && !strcmp(one.text[0], "fg\nbg\n"), one.text[0]);
}

/* A process that left the group keeps its port: the session ends without
 * it, what it writes later is dropped, and sessions that draw its port
 * meanwhile go through the relay. */
static void check_lingering(void)
{
	uint64_t t0 = now_ms();
	bool ok = run("setsid sh -c 'sleep 6; echo late' & echo early", false);
	bool all = true;

	check("a session ends without a process that left its group",
	      ok && !strcmp(one.text[0], "early\n") && now_ms() - t0 < 5000,
	      one.text[0]);
	for (int i = 0; i < 8 && all; i++) {
		char cmd[64], want[64];

		snprintf(cmd, sizeof(cmd), "echo next-%d", i);
		snprintf(want, sizeof(want), "next-%d\n", i);
		all = run(cmd, false) && !strcmp(one.text[0], want);
	}
	check("sessions meanwhile (one draws the held port: relay) are "
	      "whole",
	      all, one.text[0]);
	while (now_ms() - t0 < 8000)
		loop_run_once(d.loop, 50);
	all = true;
	for (int i = 0; i < 8 && all; i++) {
		char cmd[64], want[64];

		snprintf(cmd, sizeof(cmd), "echo after-%d", i);
		snprintf(want, sizeof(want), "after-%d\n", i);
		all = run(cmd, false) && !strcmp(one.text[0], want);
	}
	check("its late output reaches no later session", all, one.text[0]);
}

static void check_line_early(void)
{
	bool ok;

	if (sess_start(&one, "echo first; sleep 3; echo second", false, false) <
	    0)
		return;
	ok = pump(&one, 1, 60000);
	sess_close(&one);
	check("a line shows before the command ends (nothing held back)",
	      ok && one.t_line && one.t_line + 2000 < now_ms() &&
		  !strcmp(one.text[0], "first\nsecond\n"),
	      one.text[0]);
}

/* --- throughput ---------------------------------------------------------- */

#define BENCH_MIB    256
#define BENCH_BLOCKS "4096" /* of 64 KiB */

/* The guest's timing of its raw writer: "start end" from /proc/uptime
 * on stderr (busybox's dd reports no rate, its date no nanoseconds). */
static double guest_rate(const char *text)
{
	double t0 = 0, t1 = 0;

	if (sscanf(text, "%lf %lf", &t0, &t1) != 2 || t1 <= t0)
		return 0;
	return BENCH_MIB * 1048576.0 / (t1 - t0) / 1e6;
}

static double median3(double *v)
{
	double t;

	for (int i = 0; i < 2; i++)
		for (int k = 0; k < 2 - i; k++)
			if (v[k] > v[k + 1])
				t = v[k], v[k] = v[k + 1], v[k + 1] = t;
	return v[1];
}

/* stdout throughput of the session, first byte to last (as count.pl). */
static double session_rate(const char *cmd)
{
	double dt;

	if (sess_start(&one, cmd, false, false) < 0 || !pump(&one, 1, 600000))
		return 0;
	sess_close(&one);
	dt = (double)(one.t_last - one.t_first) / 1000.0;
	return dt > 0 ? (double)one.nbytes[0] / dt / 1e6 : 0;
}

/* The command that writes BENCH_MIB into a port no session holds (vmmd
 * drops what comes on it), as bench/run's raw channel does, timed by the
 * guest (1/100 s). pipe: the writer behind one pipe. */
static void raw_cmd(char *buf, size_t len, bool pipe)
{
	snprintf(buf, len,
		 "for p in 3 2 1 0; do "
		 "for n in /sys/class/virtio-ports/*/name; do "
		 "[ \"$(cat $n)\" = org.vmenv.bulk.$p ] && "
		 "dev=/dev/$(basename $(dirname $n)); done; "
		 "read t0 x </proc/uptime; "
		 "if %s dd %s bs=65536 of=$dev 2>/dev/null; then "
		 "read t1 x </proc/uptime; echo $t0 $t1 >&2; exit 0; fi; "
		 "done; exit 1",
		 pipe ? "dd if=/dev/zero bs=65536 count=" BENCH_BLOCKS
			" 2>/dev/null |"
		      : "",
		 pipe ? "" : "if=/dev/zero count=" BENCH_BLOCKS);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* What the markers cost a short command: `true`, request to exit, one
 * with a bulk port and one without in turn (the machine's load changes
 * faster than a series of either); medians. */
static void bench_rtt(void)
{
	enum { N = 30 };
	double t[2][N];

	run("true", false);
	for (int i = 0; i < N; i++) {
		for (int k = 0; k < 2; k++) {
			uint64_t t0 = now_ms();

			job()->agent_bulk = k == 0;
			run("true", false);
			t[k][i] = (double)(now_ms() - t0);
		}
	}
	job()->agent_bulk = true;
	qsort(t[0], N, sizeof(double), cmp_double);
	qsort(t[1], N, sizeof(double), cmp_double);
	printf("   exec round trip of 'true' (x%d, in turn, medians): bulk "
	       "port %.0f ms, relay %.0f ms\n",
	       N, t[0][N / 2], t[1][N / 2]);
}

static void bench(void)
{
	static const char *const what[] = {
	    "raw: dd into a virtio port (guest clock)",
	    "raw, writer behind one pipe (guest clock)",
	    "vmenv bulk port (session stdout, host clock)",
	    "vmenv agent relay (same, bulk off)"};
	char raw[1024], rawpipe[1024];
	const char *zero =
	    "dd if=/dev/zero bs=65536 count=" BENCH_BLOCKS " 2>/dev/null";
	double r[4][3], med[4];

	raw_cmd(raw, sizeof(raw), false);
	raw_cmd(rawpipe, sizeof(rawpipe), true);
	for (int i = 0; i < 3; i++) {
		run(raw, false);
		r[0][i] = guest_rate(one.text[1]);
		run(rawpipe, false);
		r[1][i] = guest_rate(one.text[1]);
		r[2][i] = session_rate(zero);
		job()->agent_bulk = false;
		r[3][i] = session_rate(zero);
		job()->agent_bulk = true;
	}
	printf("== stdout throughput in the guest, %d MiB, median of 3 "
	       "(runs)\n",
	       BENCH_MIB);
	for (int k = 0; k < 4; k++) {
		double v[3] = {r[k][0], r[k][1], r[k][2]};

		med[k] = median3(v);
		printf("   %-46s %7.1f MB/s (%.1f %.1f %.1f)\n", what[k],
		       med[k], r[k][0], r[k][1], r[k][2]);
	}
	if (med[0] > 0)
		printf("   bulk / raw: %.3f   relay / raw: %.3f\n",
		       med[2] / med[0], med[3] / med[0]);
	bench_rtt();
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: bulk-vmmd CONFIG IMAGE\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	log_set_level(getenv("BULK_DEBUG") ? LOG_DEBUG : LOG_WARNING);
	if (setup(argv[1]) < 0 || start_job(argv[2]) < 0) {
		vmmd_fini(&d);
		return 2;
	}
	check("the guest's agent offers bulk ports", job()->agent_bulk, NULL);
	check_exact_64mib();
	check_sequential();
	check_concurrent();
	check_stderr();
	check_background();
	check_line_early();
	check_lingering();
	if (!getenv("BULK_NO_BENCH"))
		bench();
	job_stop(&d, JOB_ID);
	vmmd_fini(&d);
	printf("bulk-vmmd: %d failed\n", failures);
	return failures ? 1 : 0;
}
