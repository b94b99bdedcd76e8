// SPDX-License-Identifier: MIT
/*
 * test/images/jobs: vmmd's real core (server, jobs, image threads, cache,
 * qemu-img) with the fake hypervisor and fake Slurm of the unit tests, so
 * test/images/run and bench/images can drive vmmd's image path against a
 * real HTTP server without libvirt or Slurm.
 *
 *   jobs CONFIG IMAGE...
 *
 * Reads a vmmd configuration (catalog, image_cache, fetch_*, run_dir,
 * socket...), starts one job per IMAGE (ids 1, 2, ...; all requests sent
 * before vmmd handles any, as when several prologs run at once), waits
 * until each is booting (its domain created) or failed, prints per job
 *   job N: booting (prepared in M ms)   (request to domain XML ready)
 *   job N: failed: <reason>
 *   job N: refused: <reason>     (the start request itself was refused)
 * then stops every job and checks that nothing of them is left: no job
 * directory, no lease. Prints "vmmd: alive" when vmmd still answers a
 * status request at the end. Exit 0 when the run itself worked (whatever
 * the jobs did), 1 otherwise. JOBS_TIMEOUT_S (default 60) bounds the wait.
 */
#include <dirent.h>
#include <errno.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../unit/fakes.h"
#include "job.h"
#include "log.h"
#include "proto.h"
#include "vmmd.h"
#include "vmmdconf.h"

#define MAX_JOBS 8

static int send_start(struct vmmd *d, uint32_t id, const char *image)
{
	struct proto_request req = {
	    .op = PROTO_OP_START,
	    .job_id = id,
	    .start = {.job_id = id,
		      .uid = (uint32_t)getuid(),
		      .gid = (uint32_t)getgid()},
	};
	int fd = unix_connect(d->cfg.socket_path, 1000);

	if (fd < 0)
		return fd;
	snprintf(req.start.image, sizeof(req.start.image), "%s", image);
	if (proto_send_request(fd, &req, NULL, 0) < 0) {
		close(fd);
		return -EIO;
	}
	return fd;
}

static int wait_reply(struct vmmd *d, int fd, struct proto_reply *rep)
{
	char err[PROTO_MAX_ERROR];
	uint64_t end = now_ms() + 30000;

	while (proto_recv_reply(fd, 0, rep, err, sizeof(err)) != 0) {
		if (now_ms() >= end)
			return -ETIMEDOUT;
		loop_run_once(d->loop, 10);
	}
	return 0;
}

static bool settled(struct vmmd *d, uint32_t n)
{
	for (uint32_t id = 1; id <= n; id++) {
		struct job *j = job_find(d, id);
		if (j && j->state == JOB_PREPARING)
			return false;
	}
	return true;
}

static int status_ok(struct vmmd *d)
{
	struct proto_request req = {.op = PROTO_OP_STATUS};
	struct proto_reply rep;
	int fd = unix_connect(d->cfg.socket_path, 1000), r;

	if (fd < 0 || proto_send_request(fd, &req, NULL, 0) < 0)
		return -EIO;
	r = wait_reply(d, fd, &rep);
	close(fd);
	return r == 0 && rep.kind == PROTO_REPLY_OK ? 0 : -EIO;
}

/* Leases of this node left in the cache (after every job stopped: 0). */
static unsigned count_leases(const struct vmmd *d)
{
	char top[VMENV_MAX_PATH + 16], sub[2 * VMENV_MAX_PATH];
	struct dirent *e, *l;
	unsigned n = 0;
	DIR *t, *s;

	snprintf(top, sizeof(top), "%s/leases", d->cfg.image_cache);
	if (!(t = opendir(top)))
		return 0;
	while ((e = readdir(t))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", top, e->d_name);
		if (!(s = opendir(sub)))
			continue;
		while ((l = readdir(s)))
			n += strncmp(l->d_name, d->cfg.node_name,
				     strlen(d->cfg.node_name)) == 0;
		closedir(s);
	}
	closedir(t);
	return n;
}

static int setup(struct vmmd *d, const char *conf, uint32_t njobs)
{
	char err[512] = "", work[VMENV_MAX_PATH];
	struct passwd *pw = getpwuid(getuid());

	config_defaults(&d->cfg, NULL);
	if (config_load(&d->cfg, conf, 0, err, sizeof(err)) < 0 ||
	    config_expand(&d->cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "jobs: %s\n", err);
		return -EINVAL;
	}
	if (pw)
		snprintf(d->cfg.slurm_user, sizeof(d->cfg.slurm_user), "%s",
			 pw->pw_name);
	if (str_printf(work, sizeof(work), "%s/work", d->cfg.run_dir) < 0 ||
	    str_printf(d->cfg.checkpoint_dir, sizeof(d->cfg.checkpoint_dir),
		       "%s/ckpt", d->cfg.run_dir) < 0)
		return -ENAMETOOLONG;
	d->cfg.checkpoint_probe_mib = 0;
	mkdir_p(work, 0755);
	d->hv = &fake_hv_ops;
	d->slurm_lookup = fake_slurm_lookup;
	fake_hv_reset();
	fake_slurm_reset();
	for (uint32_t id = 1; id <= njobs; id++) {
		struct slurmjob_info si = {.job_id = id,
					   .uid = (uint32_t)getuid(),
					   .gid = (uint32_t)getgid(),
					   .active = true,
					   .on_node = true,
					   .cpus = 1,
					   .mem_mib = 4096,
					   /* CPU 0 of the fixture node
					    * (test/images/lib.sh). */
					   .cpu_ids = "0",
					   .node_cores = 2};
		memcpy(si.work_dir, work, sizeof(si.work_dir));
		fake_slurm_set(&si);
	}
	return vmmd_init(d);
}

static int run(struct vmmd *d, int n, char **images)
{
	uint64_t end =
	    now_ms() + 1000ull * (getenv("JOBS_TIMEOUT_S")
				      ? atoi(getenv("JOBS_TIMEOUT_S"))
				      : 60);
	char refused[MAX_JOBS][PROTO_MAX_ERROR] = {{0}};
	int fds[MAX_JOBS];
	int bad = 0;

	for (int i = 0; i < n; i++)
		fds[i] = send_start(d, (uint32_t)i + 1, images[i]);
	for (int i = 0; i < n; i++) {
		struct proto_reply rep;
		if (fds[i] < 0 || wait_reply(d, fds[i], &rep) < 0) {
			printf("job %d: no reply\n", i + 1);
			bad = 1;
		} else if (rep.kind != PROTO_REPLY_OK) {
			snprintf(refused[i], sizeof(refused[i]), "%s",
				 rep.error);
		}
		if (fds[i] >= 0)
			close(fds[i]);
	}
	while (!settled(d, (uint32_t)n) && now_ms() < end)
		loop_run_once(d->loop, 50);
	for (int i = 0; i < n; i++) {
		struct job *j = job_find(d, (uint32_t)i + 1);
		if (!j && refused[i][0])
			printf("job %d: refused: %s\n", i + 1, refused[i]);
		else if (!j)
			printf("job %d: gone\n", i + 1);
		else if (j->state == JOB_FAILED)
			printf("job %d: failed: %s\n", i + 1, j->error);
		else
			printf(
			    "job %d: %s (prepared in %llu ms)\n", i + 1,
			    job_state_name(j->state),
			    (unsigned long long)(j->t_prepared - j->t_request));
	}
	return bad;
}

static int cleanup(struct vmmd *d, int n)
{
	char dir[VMENV_MAX_PATH + 32];
	int bad = 0;

	for (int i = 0; i < n; i++) {
		job_stop(d, (uint32_t)i + 1);
		snprintf(dir, sizeof(dir), "%s/jobs/%d", d->cfg.run_dir, i + 1);
		if (access(dir, F_OK) == 0) {
			printf("leftover: %s\n", dir);
			bad = 1;
		}
	}
	/* Let cancelled downloads wind down, then count what remains. */
	for (int i = 0; i < 20; i++)
		loop_run_once(d->loop, 10);
	if (count_leases(d)) {
		printf("leftover: %u lease(s)\n", count_leases(d));
		bad = 1;
	}
	if (status_ok(d) == 0)
		printf("vmmd: alive\n");
	return bad;
}

int main(int argc, char **argv)
{
	static struct vmmd d;
	int n = argc - 2, bad;

	if (argc < 3 || n > MAX_JOBS) {
		fprintf(stderr, "usage: jobs CONFIG IMAGE... (at most %d)\n",
			MAX_JOBS);
		return 2;
	}
	log_set_level(getenv("JOBS_DEBUG") ? LOG_DEBUG : LOG_WARNING);
	if (setup(&d, argv[1], (uint32_t)n) < 0)
		return 1;
	bad = run(&d, n, argv + 2);
	bad |= cleanup(&d, n);
	vmmd_fini(&d);
	fflush(stdout);
	return bad;
}
