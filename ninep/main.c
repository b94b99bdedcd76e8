// SPDX-License-Identifier: MIT
/*
 * vmenv-9p: serves one directory to a guest's 9p client (trans=fd over a
 * virtio-serial port) on one connected stream. Started by vmmd per job
 * (vmmd/files/jobfiles_served.c):
 *
 *   vmenv-9p --root DIR (--fd N | --connect SOCKET) [--uid U --gid G
 *            --groups G1,G2,...] [--state-in FILE] [--state-out FILE]
 *            [--ctl-fd N] [--msize BYTES] [--max-fids N] [--read-only]
 *
 * As root it becomes the job's user (setgroups, setresgid, setresuid,
 * checked) before it opens anything, so the guest can never do more in
 * the directory than that user could. --read-only (a ":ro" mount) answers
 * every request that would change something below the root, and every
 * open for writing, EROFS: the guest's mount flags do not matter (its
 * root may remount read-write). Signals:
 *   SIGUSR1  write the state to --state-out, stop reading requests, and
 *            answer "frozen" (or "error ...") on --ctl-fd. The guest's
 *            processes are frozen by then; whatever the guest kernel still
 *            sends stays unread, and when the peer goes away (the save
 *            stopped QEMU) it is written to STATE.pending for the next
 *            server, which answers it first.
 *   SIGUSR2  serve again (the save failed): answers "thawed".
 *   SIGTERM  exit.
 * Exits 0 when QEMU closes the stream.
 */
#include "srv.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define MAX_GROUPS 64
/* Most bytes kept for the next server after a save. */
#define PENDING_MAX	(16u * 1024u * 1024u)
#define CONNECT_WAIT_MS 60000u

struct opts {
	const char *root, *connect, *state_in, *state_out;
	int fd, ctl_fd;
	/* STATE and STATE.pending, opened (created, root's) before the drop:
	 * the directory they are in is root's, and the user never gets a
	 * directory of their own to write (and fill) on /run. */
	int state_fd, pending_fd;
	bool have_ids, read_only;
	uid_t uid;
	gid_t gid;
	size_t ngroups;
	gid_t groups[MAX_GROUPS];
	uint32_t msize, max_fids;
};

/* Bytes read from the stream and not yet served. */
struct inbuf {
	uint8_t *p;
	size_t len, cap;
};

static int parse_groups(const char *s, struct opts *o)
{
	char *copy = strdup(s), *save = NULL, *t;
	uint32_t v;
	int r = 0;

	if (!copy)
		return -ENOMEM;
	for (t = strtok_r(copy, ",", &save); t && !r;
	     t = strtok_r(NULL, ",", &save)) {
		if (o->ngroups >= MAX_GROUPS || parse_u32(t, &v) < 0)
			r = -EINVAL;
		else
			o->groups[o->ngroups++] = v;
	}
	free(copy);
	return r;
}

static int parse_num(const char *s, uint32_t *v, uint32_t max)
{
	return parse_u32(s, v) == 0 && *v <= max ? 0 : -EINVAL;
}

static int parse_opt(int c, const char *arg, struct opts *o)
{
	uint32_t v = 0;
	int r = 0;

	switch (c) {
	case 'r':
		o->root = arg;
		break;
	case 'c':
		o->connect = arg;
		break;
	case 'i':
		o->state_in = arg;
		break;
	case 'o':
		o->state_out = arg;
		break;
	case 'f':
	case 'C':
		r = parse_num(arg, &v, INT32_MAX);
		*(c == 'f' ? &o->fd : &o->ctl_fd) = (int)v;
		break;
	case 'u':
	case 'g':
		r = parse_num(arg, &v, UINT32_MAX - 1);
		if (c == 'u')
			o->uid = v;
		else
			o->gid = v;
		o->have_ids = true;
		break;
	case 'G':
		r = parse_groups(arg, o);
		break;
	case 'm':
		r = parse_num(arg, &o->msize, NINEP_MAX_MSIZE);
		r = r ?: o->msize < NINEP_MIN_MSIZE ? -EINVAL : 0;
		break;
	case 'n':
		r = parse_num(arg, &o->max_fids, 1u << 20);
		r = r ?: o->max_fids == 0 ? -EINVAL : 0;
		break;
	case 'R':
		o->read_only = true;
		break;
	default:
		r = -EINVAL;
	}
	return r;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longs[] = {
	    {"root", required_argument, NULL, 'r'},
	    {"connect", required_argument, NULL, 'c'},
	    {"fd", required_argument, NULL, 'f'},
	    {"ctl-fd", required_argument, NULL, 'C'},
	    {"uid", required_argument, NULL, 'u'},
	    {"gid", required_argument, NULL, 'g'},
	    {"groups", required_argument, NULL, 'G'},
	    {"state-in", required_argument, NULL, 'i'},
	    {"state-out", required_argument, NULL, 'o'},
	    {"msize", required_argument, NULL, 'm'},
	    {"max-fids", required_argument, NULL, 'n'},
	    {"read-only", no_argument, NULL, 'R'},
	    {NULL, 0, NULL, 0}};
	int c;

	*o = (struct opts){.fd = -1,
			   .ctl_fd = -1,
			   .state_fd = -1,
			   .pending_fd = -1,
			   .msize = SRV_DEFAULT_MSIZE,
			   .max_fids = SRV_DEFAULT_MAX_FIDS};
	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		if (parse_opt(c, optarg, o) < 0) {
			log_err("vmenv-9p: bad option (see the header of "
				"ninep/main.c)");
			return -EINVAL;
		}
	}
	if (optind != argc || !o->root || (o->fd < 0) == !o->connect) {
		log_err("vmenv-9p: need --root and one of --fd, --connect");
		return -EINVAL;
	}
	return 0;
}

/* Becomes the job's user for good; checks that there is no way back. */
static int drop_privileges(const struct opts *o)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	if (geteuid() != 0) {
		if (o->have_ids && (o->uid != getuid() || o->gid != getgid()))
			return -EPERM;
		return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ? -errno : 0;
	}
	if (!o->have_ids || o->uid == 0)
		return -EPERM;
	if (setgroups(o->ngroups, o->groups) < 0 ||
	    setresgid(o->gid, o->gid, o->gid) < 0 ||
	    setresuid(o->uid, o->uid, o->uid) < 0)
		return -errno;
	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0 ||
	    ru != o->uid || eu != o->uid || su != o->uid || rg != o->gid ||
	    eg != o->gid || sg != o->gid)
		return -EPERM;
	if (setresuid(0, 0, 0) == 0 || setegid(0) == 0)
		return -EPERM;
	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ? -errno : 0;
}

/* Each open fid may hold a file: allow as many as the hard limit. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* QEMU binds its end when it starts: after a restore the new server is
 * started before QEMU is, so that it is connected before the guest's
 * devices are loaded (the guest then never sees the port close). */
static int connect_retry(const char *path)
{
	uint64_t end = now_ms() + CONNECT_WAIT_MS;
	int fd;

	for (;;) {
		struct stat st;

		/* Connected as root: vmmd gives a path in the job's q/, root's
		 * 0700, where libvirtd made the socket. Still only a socket. */
		if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
			return -EPERM;
		fd = unix_connect(path, 1000);
		if (fd >= 0 || (fd != -ENOENT && fd != -ECONNREFUSED) ||
		    now_ms() >= end)
			return fd;
		usleep(10000);
	}
}

static int open_out(const char *path)
{
	int fd = open(path,
		      O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NONBLOCK |
			  O_CLOEXEC,
		      0600);

	if (fd < 0)
		log_err("vmenv-9p: cannot create '%s': %m", path);
	return fd < 0 ? -errno : fd;
}

static int open_state_out(struct opts *o)
{
	char pending[VMENV_MAX_PATH];

	if (!o->state_out)
		return 0;
	if (str_printf(pending, sizeof(pending), "%s.pending", o->state_out) <
	    0)
		return -ENAMETOOLONG;
	if ((o->state_fd = open_out(o->state_out)) < 0)
		return o->state_fd;
	o->pending_fd = open_out(pending);
	return o->pending_fd < 0 ? o->pending_fd : 0;
}

/* What is done as the invoking user (root, from vmmd), before the drop:
 * connecting to QEMU's socket (libvirt creates it in root's q/) and reading
 * the state (q/files.in, written there by vmmd). Neither is followed if a
 * link or read if not a plain file, wherever a caller may point them. */
static int setup_as_invoker(struct srv *s, struct opts *o, struct inbuf *in,
			    char **ret_state)
{
	char pending[VMENV_MAX_PATH];
	char *data = NULL;
	size_t n = 0;
	int r;

	*s = (struct srv){.root = -1,
			  .sock = o->fd,
			  .msize = o->msize,
			  .max_msize = o->msize,
			  .max_fids = o->max_fids,
			  .read_only = o->read_only};
	in->cap = o->msize;
	if (!(s->out = malloc(o->msize)) || !(in->p = malloc(in->cap)))
		return -ENOMEM;
	if (o->state_in) {
		r = read_plain_file_limited(o->state_in,
					    64 + (size_t)o->max_fids * 8300,
					    ret_state, NULL);
		if (r < 0) {
			log_err("vmenv-9p: state '%s': %s", o->state_in,
				strerror(-r));
			return r;
		}
		if (str_printf(pending, sizeof(pending), "%s.pending",
			       o->state_in) == 0 &&
		    read_plain_file_limited(pending, in->cap, &data, &n) == 0) {
			memcpy(in->p, data, n);
			in->len = n;
			log_info("vmenv-9p: %zu bytes of requests from before "
				 "the save",
				 n);
		}
		free(data);
	}
	if ((r = open_state_out(o)) < 0)
		return r;
	if (o->connect && (s->sock = connect_retry(o->connect)) < 0) {
		log_err("vmenv-9p: connect '%s': %s", o->connect,
			strerror(-s->sock));
		return s->sock;
	}
	return 0;
}

/* As the job's user: the root and the fids of the state. */
static int setup_as_user(struct srv *s, const struct opts *o, char *state)
{
	char err[512];
	struct stat st;
	int r;

	s->root = open(o->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (s->root < 0 || fstat(s->root, &st) < 0) {
		log_err("vmenv-9p: root '%s': %m", o->root);
		return -errno;
	}
	s->dev = st.st_dev;
	if (state && (r = state_parse(s, state, err, sizeof(err))) < 0) {
		log_err("vmenv-9p: state '%s': %s", o->state_in, err);
		return r;
	}
	return 0;
}

/* Serves every whole message in the buffer. -EPROTO when the stream
 * cannot be trusted any more. */
static int serve_buffered(struct srv *s, struct inbuf *in)
{
	size_t off = 0;
	int r = 0;

	while (in->len - off >= 4) {
		uint32_t size;
		size_t n;

		if (ninep_msg_size(in->p + off, in->len - off, s->msize,
				   &size) < 0) {
			log_err("vmenv-9p: message size out of bounds: "
				"closing");
			return -EPROTO;
		}
		if (size > in->len - off)
			break;
		n = srv_serve_msg(s, in->p + off, size);
		if ((r = write_full(s->sock, s->out, n)) < 0)
			return r;
		off += size;
	}
	memmove(in->p, in->p + off, in->len - off);
	in->len -= off;
	return 0;
}

/* After a freeze, when QEMU went away: what the guest sent and nobody
 * answered goes to the next server. */
static void save_pending(const struct opts *o, struct srv *s, struct inbuf *in)
{
	uint8_t *p = in->p;
	size_t len = in->len, cap = in->cap;
	ssize_t n;

	for (;;) {
		if (len == cap) {
			uint8_t *np =
			    cap < PENDING_MAX ? realloc(p, cap * 2) : NULL;

			if (!np)
				break;
			p = np;
			cap *= 2;
		}
		n = read(s->sock, p + len, cap - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	in->p = p, in->len = len, in->cap = cap;
	if (!len || o->pending_fd < 0)
		return;
	if (write_fd_whole(o->pending_fd, p, len) < 0)
		log_err("vmenv-9p: cannot write '%s.pending': %m",
			o->state_out);
	else
		log_info("vmenv-9p: %zu bytes of requests kept in '%s.pending'",
			 len, o->state_out);
}

static void ctl_say(const struct opts *o, const char *msg)
{
	if (o->ctl_fd >= 0 && write_full(o->ctl_fd, msg, strlen(msg)) < 0)
		log_err("vmenv-9p: control fd: %m");
}

static void on_signal(const struct opts *o, struct srv *s, int sig,
		      bool *frozen, bool *quit)
{
	char err[512], msg[600];

	if (sig == SIGUSR1) {
		if (o->state_fd < 0 ||
		    state_dump_fd(s, o->state_fd, err, sizeof(err)) < 0) {
			snprintf(msg, sizeof(msg), "error %s\n",
				 o->state_out ? err : "no --state-out");
			ctl_say(o, msg);
			return;
		}
		*frozen = true;
		log_info("vmenv-9p: state written (%u fids), frozen", s->nfids);
		ctl_say(o, "frozen\n");
	} else if (sig == SIGUSR2) {
		*frozen = false;
		ctl_say(o, "thawed\n");
	} else {
		*quit = true;
	}
}

static int serve(const struct opts *o, struct srv *s, struct inbuf *in, int sfd)
{
	bool frozen = false, quit = false;
	int r = serve_buffered(s, in);

	while (r == 0 && !quit) {
		struct pollfd p[2] = {{s->sock, POLLIN, 0}, {sfd, POLLIN, 0}};
		struct signalfd_siginfo si;
		ssize_t n;

		p[0].events = frozen ? 0 : POLLIN;
		if (poll(p, 2, -1) < 0) {
			r = errno == EINTR ? 0 : -errno;
			continue;
		}
		if (p[1].revents && read(sfd, &si, sizeof(si)) == sizeof(si))
			on_signal(o, s, (int)si.ssi_signo, &frozen, &quit);
		if (frozen && (p[0].revents & (POLLHUP | POLLERR))) {
			save_pending(o, s, in);
			break;
		}
		if (frozen || !p[0].revents)
			continue;
		n = read(s->sock, in->p + in->len, in->cap - in->len);
		if (n <= 0) {
			r = n < 0 && errno != EINTR ? -errno : 0;
			if (n == 0)
				break;
			continue;
		}
		in->len += (size_t)n;
		r = serve_buffered(s, in);
	}
	return r;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct srv s = {.root = -1, .sock = -1};
	struct inbuf in = {0};
	char *state = NULL;
	sigset_t mask;
	int sfd, r;

	signal(SIGPIPE, SIG_IGN);
	if (parse_args(argc, argv, &o) < 0)
		return 2;
	raise_nofile();
	if (setup_as_invoker(&s, &o, &in, &state) < 0)
		return 1;
	if ((r = drop_privileges(&o)) < 0) {
		log_err("vmenv-9p: cannot become uid %u gid %u: %s", o.uid,
			o.gid, strerror(-r));
		return 1;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGUSR2);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0 || setup_as_user(&s, &o, state) < 0)
		return 1;
	free(state);
	r = serve(&o, &s, &in, sfd);
	if (r < 0)
		log_err("vmenv-9p: %s", strerror(-r));
	fid_del_all(&s);
	free(s.out);
	free(in.p);
	return r < 0 ? 1 : 0;
}
