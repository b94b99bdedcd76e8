// SPDX-License-Identifier: MIT
/*
 * The guest's side of a checkpoint (docs/checkpoint.md).
 *
 * CKPT_PREPARE: run the image's prepare hook (the application quiesces,
 * releases what cannot be saved: RDMA, GPUs), freeze the job's processes,
 * release the 9p mounts when asked (QEMU refuses to save while one is
 * mounted), stop reading the sessions' output, and answer. From then on the
 * agent is "held": a host that goes away (the guest is saved and its QEMU
 * ends; after the restore a new vmmd connection comes) no longer kills the
 * sessions, which stay frozen in guest memory until CKPT_RESUME.
 *
 * CKPT_RESUME: step the clock (the guest slept through the gap), mount the
 * shares again, thaw, run the resume hook, read output again.
 *
 * The freezer is cgroup v2's (every session's process joins
 * AGENT_CGROUP at exec); without cgroup v2 the sessions' process groups get
 * SIGSTOP / SIGCONT instead, which a job can observe (SIGCHLD in a parent).
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CGROUP_ROOT	"/sys/fs/cgroup"
#define HOOK_DIR	"/etc/vmenv/hooks"
#define HOOK_TIMEOUT_MS 120000
#define FREEZE_WAIT_MS	10000

/* --- the freezer ---------------------------------------------------------- */

static int write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -EIO;
}

void ckpt_cgroup_init(void)
{
	struct stat st;

	/* As init nothing mounted cgroup2 for us. */
	if (stat(CGROUP_ROOT "/cgroup.controllers", &st) < 0)
		mount("cgroup2", CGROUP_ROOT, "cgroup2", 0, NULL);
	if (mkdir(AGENT_CGROUP, 0755) < 0 && errno != EEXIST)
		agent_log("cgroup %s: %s (freezing falls back to SIGSTOP)",
			  AGENT_CGROUP, strerror(errno));
}

static bool cgroup_frozen(void)
{
	char buf[256];
	ssize_t n;
	int fd = open(AGENT_CGROUP "/cgroup.events", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, "frozen 1") != NULL;
}

static void sessions_stop(struct agent *a, int sig)
{
	for (int i = 0; i < AGENT_MAX_SESSIONS; i++)
		if (a->sessions[i].active && a->sessions[i].pid > 0)
			kill(-a->sessions[i].pid, sig);
}

static int freeze(struct agent *a, bool on)
{
	int64_t until = agent_now_ms() + FREEZE_WAIT_MS;
	struct timespec tick = {0, 20 * 1000 * 1000};

	if (write_text(AGENT_CGROUP "/cgroup.freeze", on ? "1" : "0") < 0) {
		a->ckpt_sigstop = on;
		sessions_stop(a, on ? SIGSTOP : SIGCONT);
		return 0;
	}
	if (a->ckpt_sigstop && !on) {
		a->ckpt_sigstop = false;
		sessions_stop(a, SIGCONT);
	}
	while (on && !cgroup_frozen()) {
		if (agent_now_ms() > until) {
			write_text(AGENT_CGROUP "/cgroup.freeze", "0");
			return -ETIMEDOUT;
		}
		nanosleep(&tick, NULL);
	}
	return 0;
}

/* --- hooks ------------------------------------------------------------- */

static void hook_child(char *path, int out)
{
	static char env_path[] = "PATH=/usr/local/sbin:/usr/local/bin:"
				 "/usr/sbin:/usr/bin:/sbin:/bin";
	char *argv[] = {path, NULL};
	char *envp[] = {env_path, NULL};
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	dup2(out, STDOUT_FILENO);
	dup2(out, STDERR_FILENO);
	execve(path, argv, envp);
	_exit(127);
}

/* Waits for pid, at most HOOK_TIMEOUT_MS; its first output line goes to
 * why. Returns the exit status, or -ETIMEDOUT. */
static int hook_wait(pid_t pid, int rd, char *why, size_t whylen)
{
	int64_t until = agent_now_ms() + HOOK_TIMEOUT_MS;
	struct timespec tick = {0, 20 * 1000 * 1000};
	size_t got = 0;
	int ws;

	for (;;) {
		ssize_t n = read(rd, why + got, whylen - 1 - got);
		if (n > 0)
			got += (size_t)n;
		if (waitpid(pid, &ws, WNOHANG) == pid)
			break;
		if (agent_now_ms() > until) {
			kill(pid, SIGKILL);
			waitpid(pid, &ws, 0);
			snprintf(why, whylen, "timed out after %d s",
				 HOOK_TIMEOUT_MS / 1000);
			return -ETIMEDOUT;
		}
		nanosleep(&tick, NULL);
	}
	while (got < whylen - 1) {
		ssize_t n = read(rd, why + got, whylen - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	why[got] = '\0';
	why[strcspn(why, "\n")] = '\0';
	return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

/* 0 when the hook is absent or succeeded; else why says what it said. */
static int run_hook(const char *name, char *why, size_t whylen)
{
	char path[128];
	int p[2], st;
	pid_t pid;

	snprintf(path, sizeof(path), HOOK_DIR "/%s", name);
	if (access(path, X_OK) < 0)
		return 0;
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	pid = fork();
	if (pid == 0)
		hook_child(path, p[1]);
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return -errno;
	}
	why[0] = '\0';
	st = hook_wait(pid, p[0], why, whylen);
	close(p[0]);
	if (st == 0)
		return 0;
	if (st > 0 && !why[0])
		snprintf(why, whylen, "%s hook exited with %d", name, st);
	return st < 0 ? st : -ECANCELED;
}

/* --- mounts -------------------------------------------------------------- */

/* Unmounts the SETUP mounts, last first. On EBUSY the ones already
 * released are mounted again. */
static int release_mounts(struct agent *a, char *why, size_t whylen)
{
	uint32_t i = a->nmounts;

	while (i-- > 0) {
		if (umount2(a->mount_path[i], 0) == 0)
			continue;
		snprintf(why, whylen, "checkpoint refused: files open in %s",
			 a->mount_path[i]);
		if (errno != EBUSY)
			snprintf(why, whylen,
				 "checkpoint refused: unmount %s: %s",
				 a->mount_path[i], strerror(errno));
		while (++i < a->nmounts)
			agent_mount_9p(a->mount_tag[i], a->mount_path[i]);
		return -EBUSY;
	}
	return 0;
}

static int remount(struct agent *a, char *why, size_t whylen)
{
	for (uint32_t i = 0; i < a->nmounts; i++) {
		int r = agent_mount_9p(a->mount_tag[i], a->mount_path[i]);
		if (r < 0) {
			snprintf(why, whylen, "mount 9p '%s' on %s: %s",
				 a->mount_tag[i], a->mount_path[i],
				 strerror(-r));
			return r;
		}
	}
	return 0;
}

/* --- the frames ---------------------------------------------------------- */

static void refuse(struct agent *a, uint32_t what, int err, const char *why)
{
	struct aw_buf b = {0};
	int r = aw_put_u32(&b, what);

	agent_log("checkpoint %s refused: %s", aw_type_name((uint8_t)what),
		  why);
	r = r ?: aw_put_u32(&b, (uint32_t)err);
	r = r ?: aw_put_str(&b, why);
	if (r < 0)
		a->ch.broken = true;
	else
		agent_send(a, AW_CKPT_REFUSED, 0, b.data, b.len);
	aw_buf_free(&b);
}

/* The image's hooks are the job's application's: a warm-start template
 * (no SETUP yet) has no job to quiesce or wake. */
static int job_hook(struct agent *a, const char *name, char *why, size_t whylen)
{
	return a->setup_done ? run_hook(name, why, whylen) : 0;
}

static int prepare(struct agent *a, uint32_t flags, char *why, size_t whylen)
{
	char hook[200] = "";
	int r = job_hook(a, "prepare", hook, sizeof(hook));

	if (r < 0) {
		snprintf(why, whylen, "checkpoint refused: %s",
			 hook[0] ? hook : strerror(-r));
		return r;
	}
	if ((r = freeze(a, true)) < 0) {
		snprintf(why, whylen,
			 "checkpoint refused: processes did not "
			 "freeze");
		job_hook(a, "resume", hook, sizeof(hook));
		return r;
	}
	if ((flags & AW_CKPT_MOUNTS) &&
	    (r = release_mounts(a, why, whylen)) < 0) {
		freeze(a, false);
		job_hook(a, "resume", hook, sizeof(hook));
		return r;
	}
	a->ckpt_mounts_released = flags & AW_CKPT_MOUNTS;
	return 0;
}

/* A template (held before any SETUP) is saved once and loaded by every
 * job that starts from it: its free memory is made zero first, which the
 * save skips (zerofree.c). */
static void template_zero(struct agent *a)
{
	long mib;

	if (!a->is_init)
		return;
	mib = agent_zero_free_memory();
	if (mib < 0)
		agent_log("template: free memory not zeroed: %s",
			  strerror(errno));
	else
		agent_log("template: %ld MiB of free memory zeroed", mib);
}

int ckpt_prepare(struct agent *a, const struct aw_hdr *h, const uint8_t *p)
{
	struct aw_reader r;
	char why[300];
	uint32_t flags;
	int err;

	aw_reader_init(&r, p, h->len);
	flags = aw_get_u32(&r);
	if (aw_reader_done(&r) < 0)
		return agent_proto_error(a, "malformed CKPT_PREPARE");
	if (!a->ckpt_held) {
		err = prepare(a, flags, why, sizeof(why));
		if (err < 0) {
			refuse(a, AW_CKPT_PREPARE, -err, why);
			return 0;
		}
		a->ckpt_held = true;
		agent_log("checkpoint prepared: processes frozen");
		if (!a->setup_done)
			template_zero(a);
	}
	agent_send_u32(a, AW_CKPT_OK, 0, AW_CKPT_PREPARE);
	return 0;
}

/* Credits the host's bytes to the input pool and reseeds the CRNG now:
 * RNDADDENTROPY alone only mixes them in, and the per-CPU generators of
 * a restored template would go on from the template's key until the next
 * scheduled reseed (up to a minute). */
static void reseed(const uint8_t seed[AW_SEED_LEN])
{
	struct {
		struct rand_pool_info info;
		uint8_t buf[AW_SEED_LEN];
	} in = {.info = {.entropy_count = AW_SEED_LEN * 8,
			 .buf_size = AW_SEED_LEN}};
	int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);

	if (fd < 0) {
		agent_log("reseed: /dev/urandom: %s", strerror(errno));
		return;
	}
	memcpy(in.buf, seed, AW_SEED_LEN);
	if (ioctl(fd, RNDADDENTROPY, &in.info) < 0)
		agent_log("reseed: RNDADDENTROPY: %s", strerror(errno));
	if (ioctl(fd, RNDRESEEDCRNG) < 0)
		agent_log("reseed: RNDRESEEDCRNG: %s", strerror(errno));
	else
		agent_log("random generator reseeded with %u bytes from the "
			  "host",
			  AW_SEED_LEN);
	close(fd);
	explicit_bzero(&in, sizeof(in));
}

static int resume(struct agent *a, int64_t now, char *why, size_t whylen)
{
	struct timespec ts = {.tv_sec = (time_t)now};
	char hook[200] = "";
	int r;

	if (now > 0 && clock_settime(CLOCK_REALTIME, &ts) < 0)
		agent_log("clock_settime: %s", strerror(errno));
	if (a->ckpt_mounts_released && (r = remount(a, why, whylen)) < 0)
		return r;
	a->ckpt_mounts_released = false;
	freeze(a, false);
	a->ckpt_held = false;
	if ((r = job_hook(a, "resume", hook, sizeof(hook))) < 0) {
		snprintf(why, whylen, "resume hook failed: %s",
			 hook[0] ? hook : strerror(-r));
		return r;
	}
	return 0;
}

int ckpt_resume(struct agent *a, const struct aw_hdr *h, const uint8_t *p)
{
	struct aw_reader r;
	uint8_t seed[AW_SEED_LEN];
	char why[300];
	uint32_t flags;
	int64_t now;
	int err;

	aw_reader_init(&r, p, h->len);
	now = aw_get_i64(&r);
	/* The mounts follow what PREPARE did; only the seed is RESUME's. */
	flags = aw_get_u32(&r);
	if (flags & AW_CKPT_SEED)
		aw_get_bytes(&r, seed, sizeof(seed));
	if (aw_reader_done(&r) < 0)
		return agent_proto_error(a, "malformed CKPT_RESUME");
	if (flags & AW_CKPT_SEED) {
		reseed(seed);
		explicit_bzero(seed, sizeof(seed));
	}
	if (a->ckpt_held) {
		err = resume(a, now, why, sizeof(why));
		if (err < 0) {
			refuse(a, AW_CKPT_RESUME, -err, why);
			return 0;
		}
		agent_log("checkpoint resumed");
	}
	agent_send_u32(a, AW_CKPT_OK, 0, AW_CKPT_RESUME);
	return 0;
}
