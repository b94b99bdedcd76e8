/* SPDX-License-Identifier: MIT */
/* vmmd: the node daemon that owns every vmenv guest on its node. */
#include "catalogfile.h"
#include "cleanup.h"
#include "devices.h"
#include "image.h"
#include "jobnet_host.h"
#include "log.h"
#include "spec.h"
#include "trustpath.h"
#include "vmmd.h"
#include "vmmdconf.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#else
/* Without libsystemd nobody waits for the notification. */
static inline int sd_notify(int unset_environment, const char *state)
{
	(void)unset_environment;
	(void)state;
	return 0;
}
#endif

struct opts {
	const char *config;
	const char *node;
	const char *pidfile;
	int check;
	int debug;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vmmd [--config FILE] [--node NAME] [--pidfile FILE]\n"
		"            [--check-config] [--debug]\n"
		"The vmenv node daemon: boots, relays to and removes the\n"
		"guests of Slurm jobs on this node.\n");
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"node", required_argument, NULL, 'N'},
	    {"pidfile", required_argument, NULL, 'p'},
	    {"check-config", no_argument, NULL, 'C'},
	    {"debug", no_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	int c;

	o->config = VMENV_SYSCONFDIR "/vmmd.conf";
	while ((c = getopt_long(argc, argv, "c:N:p:Cdh", lo, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config = optarg;
			break;
		case 'N':
			o->node = optarg;
			break;
		case 'p':
			o->pidfile = optarg;
			break;
		case 'C':
			o->check = 1;
			break;
		case 'd':
			o->debug = 1;
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	return optind == argc ? 0 : -EINVAL;
}

static int level_of(const char *name)
{
	static const struct {
		const char *n;
		int l;
	} t[] = {{"error", LOG_ERR},
		 {"warning", LOG_WARNING},
		 {"notice", LOG_NOTICE},
		 {"info", LOG_INFO},
		 {"debug", LOG_DEBUG}};

	for (size_t i = 0; i < ARRAY_SIZE(t); i++)
		if (strcmp(t[i].n, name) == 0)
			return t[i].l;
	return LOG_INFO;
}

static int load_config(const struct opts *o, struct vmmd_config *c)
{
	char err[512];

	config_defaults(c, o->node);
	if (config_load(c, o->config, 1, err, sizeof(err)) < 0 ||
	    (o->node &&
	     snprintf(c->node_name, sizeof(c->node_name), "%s", o->node) < 0) ||
	    config_expand(c, err, sizeof(err)) < 0 ||
	    devices_config_check(c, err, sizeof(err)) < 0) {
		log_err("config: %s", err);
		return -EINVAL;
	}
	return 0;
}

struct sigctx {
	struct vmmd *d;
	int fd;
};

static void sig_io(void *data, uint32_t events)
{
	struct sigctx *s = data;
	struct signalfd_siginfo si;
	char err[256];

	(void)events;
	while (read(s->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			log_notice("SIGHUP: reloading the catalog and the "
				   "policies");
			images_catalog_refresh(s->d);
			if (catalogfile_refresh(s->d, err, sizeof(err)) < 0)
				log_err(
				    "catalog: %s (keeping the previous one)",
				    err);
			spec_policies_load(s->d);
			continue;
		}
		log_notice("signal %u: shutting down (guests keep running)",
			   si.ssi_signo);
		loop_quit(s->d->loop);
	}
}

/* /run is empty after a reboot: the pid file's directory is made here,
 * as systemd's RuntimeDirectory would (the cold start of issue 15). */
static int write_pidfile(const char *path)
{
	char buf[32], dir[VMENV_MAX_PATH];
	int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	int r;

	snprintf(dir, sizeof(dir), "%s", path);
	if ((r = mkdir_p(dirname(dir), 0755)) < 0)
		return r;
	return write_file_atomic(path, buf, (size_t)n, 0644);
}

/* Every directory vmmd resolves by path as root for its whole life:
 * only root may change what they lead to (docs/security.md). */
static int check_trusted_dirs(const struct vmmd_config *c)
{
	char sock_dir[VMENV_MAX_PATH], bad[VMENV_MAX_PATH];
	/* The socket's directory, not the socket: a socket left by a vmmd
	 * before (0666, as it must be) is replaced at start. */
	const char *const dirs[] = {c->run_dir, c->console_dir, c->image_cache,
				    c->checkpoint_dir,
				    dirname(strcpy(sock_dir, c->socket_path))};
	int r;

	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		if ((r = trustpath_check(dirs[i], bad, sizeof(bad))) == 0)
			continue;
		log_err("config: '%s' leads through '%s', which someone other "
			"than root can write or own (%s): refusing to start",
			dirs[i], bad, strerror(-r));
		return r;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct vmmd d;
	static char net_lock[VMENV_MAX_PATH];
	static struct hostnet_linux net_linux = {.lock_path = net_lock};
	struct opts o = {0};
	struct sigctx sc = {.d = &d, .fd = -1};
	struct loop_watch *sw = NULL;
	sigset_t mask;
	int r;

	log_set_prefix_prio(!isatty(STDERR_FILENO));
	r = parse_args(argc, argv, &o);
	if (r != 0)
		return r > 0 ? 0 : 2;
	if (load_config(&o, &d.cfg) < 0)
		return 1;
	if (o.check) {
		config_dump(&d.cfg, stdout);
		return 0;
	}
	log_set_level(o.debug ? LOG_DEBUG : level_of(d.cfg.log_level));
	if (check_trusted_dirs(&d.cfg) < 0)
		return 1;
	d.hv = &hv_libvirt_ops;
	if (jobnet_host_lock_path(&d.cfg, net_lock, sizeof(net_lock)) == 0) {
		d.net = &hostnet_linux_ops;
		d.net_ctx = &net_linux;
	}
	d.slurm_lookup = slurmjob_lookup;
	d.slurm_requeue = slurmjob_requeue;
	d.slurm_node = &slurmnode_libslurm;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sc.fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

	r = vmmd_init(&d);
	if (r == 0 && sc.fd >= 0)
		r = loop_add_fd(d.loop, sc.fd, EPOLLIN, sig_io, &sc, &sw);
	if (r == 0 && o.pidfile && (r = write_pidfile(o.pidfile)) < 0)
		log_err("pidfile %s: %s", o.pidfile, strerror(-r));
	if (r == 0) {
		/* vmmd_init has reconciled and listens: ready (Type=notify;
		 * a no-op outside systemd). */
		sd_notify(0, "READY=1");
		r = loop_run(d.loop);
		sd_notify(0, "STOPPING=1");
	}
	loop_del_fd(sw);
	vmmd_fini(&d);
	if (o.pidfile)
		unlink(o.pidfile);
	return r < 0 ? 1 : 0;
}
