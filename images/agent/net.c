// SPDX-License-Identifier: MIT
/*
 * The job's private network in the guest: bring up lo and the first
 * Ethernet interface with SETUP's address, through ioctl() on an AF_INET
 * socket. No ip/ifconfig: the tiny image has only busybox, and the agent
 * must not depend on what an image ships.
 */
#include "agent.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NET_DIR "/sys/class/net"
/* How long SETUP waits for the NIC's driver to register the interface. */
#define NET_WAIT_MS  5000
#define NET_POLL_MS  50
#define ARPHRD_ETHER 1

/* True for an Ethernet interface (sysfs type 1) other than lo. */
static bool is_ether(const char *name)
{
	char path[300], buf[16] = "";
	ssize_t n;
	int fd;

	if (name[0] == '.' || strcmp(name, "lo") == 0)
		return false;
	snprintf(path, sizeof(path), NET_DIR "/%s/type", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return atoi(buf) == ARPHRD_ETHER;
}

/* The Ethernet interface that sorts first by name (eth0, ens3, ...): with
 * one virtio-net NIC per guest that is the job's; a passed-through VF
 * appears under a later name or is not Ethernet (InfiniBand). */
static int find_nic(char *ret, size_t size)
{
	struct dirent *e;
	DIR *d;
	int r = -ENODEV;

	d = opendir(NET_DIR);
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		if (strlen(e->d_name) >= IFNAMSIZ || !is_ether(e->d_name))
			continue;
		if (r == 0 && strcmp(e->d_name, ret) >= 0)
			continue;
		snprintf(ret, size, "%s", e->d_name);
		r = 0;
	}
	closedir(d);
	return r;
}

static int wait_nic(char *ret, size_t size)
{
	struct timespec ts = {0, NET_POLL_MS * 1000000L};
	int64_t end = agent_now_ms() + NET_WAIT_MS;
	int r;

	while ((r = find_nic(ret, size)) == -ENODEV && agent_now_ms() < end)
		nanosleep(&ts, NULL);
	return r;
}

static int if_up(int sock, const char *name)
{
	struct ifreq ifr = {0};

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0)
		return -errno;
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(sock, SIOCSIFFLAGS, &ifr) < 0)
		return -errno;
	return 0;
}

static int if_set_in(int sock, const char *name, unsigned long req,
		     uint32_t addr_be)
{
	struct ifreq ifr = {0};
	struct sockaddr_in *sin = (struct sockaddr_in *)(void *)&ifr.ifr_addr;

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = addr_be;
	if (ioctl(sock, req, &ifr) < 0)
		return -errno;
	return 0;
}

static uint32_t prefix_mask_be(unsigned prefix)
{
	return htonl(prefix >= 32 ? 0xffffffffu : ~(0xffffffffu >> prefix));
}

/* Address, mask, up. Setting the address again replaces it, so a SETUP
 * that is retried after a later step failed does the same thing. */
static int nic_configure(int sock, const char *nic, uint32_t addr_be,
			 unsigned prefix, char *msg, size_t size)
{
	int r;

	r = if_set_in(sock, nic, SIOCSIFADDR, addr_be);
	if (r < 0)
		return agent_fail(msg, size, -r, "setting the address of %s",
				  nic);
	r = if_set_in(sock, nic, SIOCSIFNETMASK, prefix_mask_be(prefix));
	if (r < 0)
		return agent_fail(msg, size, -r, "setting the netmask of %s",
				  nic);
	r = if_up(sock, nic);
	if (r < 0)
		return agent_fail(msg, size, -r, "bringing %s up", nic);
	return 0;
}

int net_setup(const char *cidr, char *nic, size_t nic_size, char *msg,
	      size_t size)
{
	uint32_t addr;
	unsigned prefix;
	int sock, r;

	if (aw_cidr_parse(cidr, &addr, &prefix) < 0)
		return agent_fail(msg, size, EINVAL, "network address '%s'",
				  cidr);
	sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return agent_fail(msg, size, errno, "socket");
	/* Up, lo gets 127.0.0.1 from the kernel; it may be up already. */
	r = if_up(sock, "lo");
	if (r < 0) {
		close(sock);
		return agent_fail(msg, size, -r, "bringing lo up");
	}
	r = wait_nic(nic, nic_size);
	if (r < 0) {
		close(sock);
		return agent_fail(msg, size, -r,
				  "no Ethernet interface for '%s' after %d ms",
				  cidr, NET_WAIT_MS);
	}
	r = nic_configure(sock, nic, addr, prefix, msg, size);
	close(sock);
	return r;
}
