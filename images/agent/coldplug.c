// SPDX-License-Identifier: MIT
/*
 * Drivers for the devices that come after the guest's init loaded its
 * drivers. A warm-started guest's passed-through devices (and the stand-in,
 * and a multi-node job's NIC) are plugged after its restore, as a restored
 * checkpoint's are, and an image without udev (debian12: its init loads
 * the drivers of the devices present at boot; the agent is init, so no
 * udev runs) would leave them without a driver: the job would not see its
 * GPU. The agent does what udev would for the classes debian12's init
 * loads (virtio, and PCI network, InfiniBand, display and accelerator
 * devices): it hears the kernel's uevents, and gives modprobe the modalias
 * of each such device added without a driver; at SETUP it also looks for
 * any it did not hear of. A guest whose devices all have their driver
 * (every booted one) runs nothing.
 */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_ALIASES	    32
#define ALIAS_LEN	    256
#define MODPROBE_TIMEOUT_MS 20000

struct aliases {
	unsigned n;
	char a[MAX_ALIASES][ALIAS_LEN];
};

/* The classes a driver is loaded for (as debian12's vmenv-init). */
static bool wanted(const char *a)
{
	return strncmp(a, "virtio:", 7) == 0 ||
	       (strncmp(a, "pci:", 4) == 0 &&
		(strstr(a, "bc02") || strstr(a, "bc03") || strstr(a, "bc12") ||
		 strstr(a, "bc0Csc06")));
}

static void read_alias(int dfd, const char *dev, struct aliases *out)
{
	char p[300], buf[ALIAS_LEN];
	struct stat st;
	ssize_t n;
	int fd;

	snprintf(p, sizeof(p), "%s/driver", dev);
	if (fstatat(dfd, p, &st, 0) == 0 || out->n >= MAX_ALIASES)
		return;
	snprintf(p, sizeof(p), "%s/modalias", dev);
	if ((fd = openat(dfd, p, O_RDONLY | O_CLOEXEC)) < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	if (wanted(buf))
		snprintf(out->a[out->n++], ALIAS_LEN, "%s", buf);
}

static void scan(const char *bus, struct aliases *out)
{
	DIR *d = opendir(bus);
	struct dirent *e;

	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.')
			read_alias(dirfd(d), e->d_name, out);
	if (d)
		closedir(d);
}

static const char *modprobe_path(void)
{
	static const char *const where[] = {"/sbin/modprobe",
					    "/usr/sbin/modprobe"};

	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++)
		if (access(where[i], X_OK) == 0)
			return where[i];
	return NULL;
}

static void run(const char *modprobe, struct aliases *al)
{
	static char env_path[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
	static char opt_a[] = "-a", opt_q[] = "-q", opt_b[] = "-b";
	char path[64], *argv[MAX_ALIASES + 5], *envp[] = {env_path, NULL};
	struct timespec tick = {0, 10 * 1000 * 1000};
	int64_t until = agent_now_ms() + MODPROBE_TIMEOUT_MS;
	unsigned n = 0;
	sigset_t none;
	pid_t pid;
	int ws;

	snprintf(path, sizeof(path), "%s", modprobe);
	argv[n++] = path;
	argv[n++] = opt_a;
	argv[n++] = opt_q;
	argv[n++] = opt_b;
	for (unsigned i = 0; i < al->n; i++)
		argv[n++] = al->a[i];
	argv[n] = NULL;
	if ((pid = fork()) == 0) {
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execve(path, argv, envp);
		_exit(127);
	}
	if (pid < 0)
		return;
	/* PID 1 reaps every orphan elsewhere: this child is waited for
	 * here, bounded. */
	while (waitpid(pid, &ws, WNOHANG) == 0) {
		if (agent_now_ms() > until) {
			kill(pid, SIGKILL);
			waitpid(pid, &ws, 0);
			agent_log("coldplug: modprobe timed out");
			return;
		}
		nanosleep(&tick, NULL);
	}
}

void coldplug(void)
{
	struct aliases al = {0};
	const char *modprobe;

	scan("/sys/bus/virtio/devices", &al);
	scan("/sys/bus/pci/devices", &al);
	if (al.n == 0 || !(modprobe = modprobe_path()))
		return;
	agent_log("coldplug: %u device(s) without a driver, modprobe %s%s",
		  al.n, al.a[0], al.n > 1 ? " ..." : "");
	run(modprobe, &al);
}

int coldplug_open(void)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = 1};
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			NETLINK_KOBJECT_UEVENT);

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

bool coldplug_uevent(const char *msg, size_t len, char *alias, size_t alen)
{
	const char *action = NULL, *devpath = NULL, *ma = NULL;
	char p[512];
	struct stat st;

	for (size_t i = 0; i < len; i += strnlen(msg + i, len - i) + 1) {
		const char *kv = msg + i;

		if (strncmp(kv, "ACTION=", 7) == 0)
			action = kv + 7;
		else if (strncmp(kv, "DEVPATH=", 8) == 0)
			devpath = kv + 8;
		else if (strncmp(kv, "MODALIAS=", 9) == 0)
			ma = kv + 9;
	}
	if (!action || strcmp(action, "add") != 0 || !devpath || !ma ||
	    strncmp(devpath, "/devices/", 9) != 0 || strstr(devpath, "/..") ||
	    strlen(ma) >= alen || strlen(ma) >= ALIAS_LEN || !wanted(ma))
		return false;
	/* The kernel probes before the event is read: a device whose driver
	 * is loaded has it by then. */
	snprintf(p, sizeof(p), "/sys%s/driver", devpath);
	if (stat(p, &st) == 0)
		return false;
	snprintf(alias, alen, "%s", ma);
	return true;
}

void coldplug_event(int fd)
{
	struct aliases al = {0};
	const char *modprobe;
	char buf[8192];

	for (;;) {
		struct sockaddr_nl from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf) - 1, 0,
				     (struct sockaddr *)&from, &fl);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		/* The kernel's own, not another process's. */
		if (fl != sizeof(from) || from.nl_pid != 0)
			continue;
		buf[n] = '\0';
		if (al.n < MAX_ALIASES &&
		    coldplug_uevent(buf, (size_t)n, al.a[al.n], ALIAS_LEN))
			al.n++;
	}
	if (al.n == 0 || !(modprobe = modprobe_path()))
		return;
	agent_log("plugged: %u device(s) without a driver, modprobe %s%s", al.n,
		  al.a[0], al.n > 1 ? " ..." : "");
	run(modprobe, &al);
}
