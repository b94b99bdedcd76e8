// SPDX-License-Identifier: MIT
/*
 * vmenv-agent: startup, the poll loop, the host's session-0 requests, and
 * what PID 1 owes the system (reaping every child, powering off). The top
 * of the agent: it calls every other file, and none calls it (the port
 * hands each frame to agent_handle_frame through chan_read's argument).
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "dev"
#endif

/* --- session-0 requests ------------------------------------------------- */

static int on_hello(struct agent *a, const struct aw_hdr *h, const uint8_t *p)
{
	struct aw_reader r;
	struct aw_buf b = {0};
	struct utsname u;
	char info[256];
	uint32_t host_version;
	int err;

	aw_reader_init(&r, p, h->len);
	host_version = aw_get_u32(&r);
	if (aw_reader_done(&r) < 0)
		return agent_proto_error(a, "malformed HELLO");
	if (host_version < AW_VERSION_MIN)
		return agent_proto_error(a, "HELLO of version %u",
					 host_version);
	/* Both ends speak the lower version: an older vmmd refuses any
	 * version but its own, and sends the SETUP it knows. */
	a->version = host_version < AW_VERSION ? host_version : AW_VERSION;
	if (uname(&u) < 0)
		snprintf(u.release, sizeof(u.release), "unknown");
	snprintf(info, sizeof(info), "vmenv-agent %s %s", PACKAGE_VERSION,
		 u.release);
	err = aw_put_u32(&b, a->version);
	err = err
		  ?: aw_put_u32(
			 &b, (a->setup_done ? AW_HELLO_SETUP_DONE : 0) |
				 AW_HELLO_CKPT | AW_HELLO_BULK |
				 (a->ckpt_held ? AW_HELLO_CKPT_HELD : 0) |
				 (a->is_init && !a->setup_done ? AW_HELLO_WARM
							       : 0));
	err = err ?: aw_put_str(&b, info);
	agent_send_buf(a, AW_HELLO, 0, &b, err);
	return 0;
}

static void shutdown_now(struct agent *a)
{
	agent_log("shutdown requested");
	sessions_kill_all(a);
	rsh_stop(&a->rsh);
	sync();
	if (!a->is_init)
		exit(0);
	reboot(RB_POWER_OFF);
	agent_log("reboot: %s", strerror(errno));
	exit(1);
}

static int on_shutdown(struct agent *a, const struct aw_hdr *h,
		       const uint8_t *p)
{
	(void)p;
	if (h->len != 0)
		return agent_proto_error(a, "malformed SHUTDOWN");
	shutdown_now(a);
	return 0;
}

/* What the host may send, and on which session. */
static const struct {
	agent_frame_fn *fn;
	bool on_session; /* needs session != 0; else session must be 0 */
} frame_table[AW_TYPE_END] = {
    [AW_HELLO] = {on_hello, false},
    [AW_SETUP] = {setup_handle, false},
    [AW_SHUTDOWN] = {on_shutdown, false},
    [AW_EXEC] = {session_exec, true},
    [AW_STDIN] = {session_stdin, true},
    [AW_CREDIT] = {session_credit, true},
    [AW_SIGNAL] = {session_signal, true},
    [AW_CKPT_PREPARE] = {ckpt_prepare, false},
    [AW_CKPT_RESUME] = {ckpt_resume, false},
    [AW_RESUME] = {session_resume, true},
    [AW_RELEASE] = {session_release, true},
};

static int agent_handle_frame(struct agent *a, const struct aw_hdr *h,
			      const uint8_t *p)
{
	/* aw_hdr_decode already refused types outside the table. */
	if (!frame_table[h->type].fn)
		return agent_proto_error(a, "unexpected %s from host",
					 aw_type_name(h->type));
	if (frame_table[h->type].on_session != (h->session != 0))
		return agent_proto_error(a, "%s on session %u",
					 aw_type_name(h->type), h->session);
	return frame_table[h->type].fn(a, h, p);
}

/* --- children and signals ----------------------------------------------- */

static void reap_children(struct agent *a)
{
	struct signalfd_siginfo si;
	int wstatus;
	pid_t pid;

	while (read(a->sig_fd, &si, sizeof(si)) == sizeof(si))
		;
	/* As PID 1 this also reaps orphans, which match no session. */
	while ((pid = waitpid(-1, &wstatus, WNOHANG)) > 0)
		if (!rsh_reaped(&a->rsh, pid, wstatus))
			session_reaped(a, pid, wstatus);
}

static int setup_signals(struct agent *a)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	a->sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (a->sig_fd < 0)
		return -errno;
	/* A child that closed its stdin must not kill the agent. */
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

/* Pipes must not land on 0-2: the child dup2()s onto those. */
static void ensure_std_fds(void)
{
	int fd;

	for (;;) {
		fd = open("/dev/null", O_RDWR);
		if (fd < 0 || fd > STDERR_FILENO) {
			if (fd >= 0)
				close(fd);
			return;
		}
	}
}

/* --- connection state --------------------------------------------------- */

static void drop_host(struct agent *a, const char *why, int err)
{
	/* Saved for a checkpoint: the sessions wait, frozen, for the host
	 * of the restored guest. */
	if (a->ckpt_held) {
		agent_log("%s; sessions held for the checkpoint", why);
		chan_reset(&a->ch);
		a->ch.connected = false;
		return;
	}
	/* v3: a vmmd restart; the sessions wait for the next one. */
	if (agent_resumable(a)) {
		agent_log("%s; sessions wait for the host to come back", why);
		sessions_detach(a);
		chan_reset(&a->ch);
		a->ch.connected = false;
		return;
	}
	if (err)
		agent_log("%s: %s; killing all sessions", why, strerror(err));
	else
		agent_log("%s; killing all sessions", why);
	sessions_kill_all(a);
	chan_reset(&a->ch);
	a->ch.connected = false;
}

/*
 * A malformed frame leaves the stream unsynchronised: tell the host why,
 * drop everything, then discard input until the host reconnects.
 */
static void protocol_error(struct agent *a)
{
	struct aw_buf b = {0};

	agent_log("protocol error: %s", a->errmsg);
	sessions_kill_all(a);
	chan_reset(&a->ch);
	agent_send_buf(a, AW_ERROR, 0, &b, aw_put_str(&b, a->errmsg));
	a->ch.poisoned = true;
}

static void port_events(struct agent *a, short revents)
{
	int r = 0;

	if (revents & POLLIN)
		r = chan_read(a, agent_handle_frame);
	else if (revents & (POLLHUP | POLLERR))
		r = -EPIPE;
	if (r == -EPIPE)
		drop_host(a, "host disconnected", 0);
	else if (r == -EPROTO)
		protocol_error(a);
	else if (r < 0)
		drop_host(a, "reading the port", -r);
}

static void check_host_back(struct agent *a)
{
	if (a->ch.connected || !chan_host_present(&a->ch))
		return;
	a->ch.connected = true;
	agent_log("host connected on %s", a->ch.dev);
}

/* --- loop --------------------------------------------------------------- */

static int loop_timeout(struct agent *a)
{
	int t = sessions_timers(a), t2 = rsh_timers(&a->rsh);

	if (t2 >= 0 && (t < 0 || t2 < t))
		t = t2;
	if (!a->ch.connected && (t < 0 || t > AGENT_RETRY_MS))
		t = AGENT_RETRY_MS;
	return t;
}

static void loop_once(struct agent *a, struct pollset *ps)
{
	short ev = 0;
	size_t i;
	int r;

	ps->n = 0;
	pollset_add(ps, a->sig_fd, POLLIN, PK_SIGNAL, -1, 0);
	if (a->ch.connected) {
		if (chan_pending(&a->ch) < AGENT_OUT_HIGH)
			ev |= POLLIN;
		if (chan_pending(&a->ch))
			ev |= POLLOUT;
		pollset_add(ps, a->ch.fd, ev, PK_PORT, -1, 0);
	}
	if (a->uevent_fd >= 0)
		pollset_add(ps, a->uevent_fd, POLLIN, PK_UEVENT, -1, 0);
	sessions_poll_add(a, ps);
	rsh_poll_add(&a->rsh, ps);
	if (poll(ps->fds, ps->n, loop_timeout(a)) < 0) {
		if (errno != EINTR)
			agent_log("poll: %s", strerror(errno));
		return;
	}
	if (ps->fds[0].revents)
		reap_children(a);
	sessions_poll_handle(a, ps);
	rsh_poll_handle(&a->rsh, ps);
	for (i = 0; i < ps->n; i++) {
		if (ps->own[i].kind == PK_PORT && ps->fds[i].revents)
			port_events(a, ps->fds[i].revents);
		if (ps->own[i].kind == PK_UEVENT && ps->fds[i].revents)
			coldplug_event(a->uevent_fd);
	}
	sessions_timers(a);
	rsh_timers(&a->rsh);
	r = a->ch.connected ? chan_flush(&a->ch) : 0;
	if (r < 0)
		drop_host(a, "writing the port", -r);
	if (a->ch.broken)
		drop_host(a, "queueing output", ENOMEM);
	check_host_back(a);
}

int main(void)
{
	static struct agent agent;
	static struct pollset ps;
	struct agent *a = &agent;
	int r;

	ensure_std_fds();
	umask(022);
	a->is_init = getpid() == 1;
	a->version = AW_VERSION_MIN;
	chan_init(&a->ch);
	rsh_init(&a->rsh);
	r = setup_signals(a);
	if (r < 0) {
		agent_log("signalfd: %s", strerror(-r));
		goto fatal;
	}
	agent_log("starting%s", a->is_init ? " as init" : "");
	/* As init, nothing else loads a plugged device's driver. */
	a->uevent_fd = a->is_init ? coldplug_open() : -1;
	chan_open(&a->ch);
	agent_log("opened %s", a->ch.dev);
	check_host_back(a);
	for (;;)
		loop_once(a, &ps);
fatal:
	if (a->is_init) {
		/* PID 1 must not exit: the kernel would panic. */
		sync();
		reboot(RB_POWER_OFF);
	}
	return 1;
}
