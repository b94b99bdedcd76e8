/* SPDX-License-Identifier: MIT */
/*
 * The guest agent's reading of the kernel's uevents (images/agent/
 * coldplug.c): which added devices get modprobe'd. A message is what the
 * kernel sends on NETLINK_KOBJECT_UEVENT: "ACTION@DEVPATH\0KEY=VALUE\0...".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../images/agent/agent.h"

void agent_log(const char *fmt, ...)
{
	(void)fmt;
}

int64_t agent_now_ms(void)
{
	return 0;
}

#define DEV "/devices/pci0000:00/0000:00:1e.0/virtio9"
#define EVENT(action, path, alias)                           \
	action "@" path "\0ACTION=" action "\0DEVPATH=" path \
	       "\0SUBSYSTEM=virtio\0MODALIAS=" alias "\0SEQNUM=1"

static bool wants(const char *msg, size_t len, char *alias)
{
	return coldplug_uevent(msg, len, alias, 256);
}

static void test_added_device_without_driver(void **state)
{
	static const char m[] = EVENT("add", DEV, "virtio:d00000004v00001AF4");
	char alias[256] = "";

	(void)state;
	assert_true(wants(m, sizeof(m), alias));
	assert_string_equal(alias, "virtio:d00000004v00001AF4");
}

static void test_classes(void **state)
{
	static const char gpu[] =
	    EVENT("add", DEV, "pci:v000010DEd00002330sv0sd0bc03sc02i00");
	static const char ib[] =
	    EVENT("add", DEV, "pci:v000015B3d0000101Esv0sd0bc0Csc06i00");
	static const char ide[] =
	    EVENT("add", DEV, "pci:v00008086d00007010sv0sd0bc01sc01i80");
	char alias[256];

	(void)state;
	assert_true(wants(gpu, sizeof(gpu), alias));
	assert_true(wants(ib, sizeof(ib), alias));
	/* The machine's IDE controller: not a class vmenv-init loads. */
	assert_false(wants(ide, sizeof(ide), alias));
}

static void test_not_taken(void **state)
{
	static const char rm[] = EVENT("remove", DEV, "virtio:d00000004v0");
	static const char up[] =
	    EVENT("add", "/devices/../../etc", "virtio:d00000004v0");
	static const char out[] = EVENT("add", "/sys/x", "virtio:d00000004v0");
	static const char opt[] = EVENT("add", DEV, "--help");
	static const char none[] = "add@" DEV "\0ACTION=add\0DEVPATH=" DEV;
	char alias[256];

	(void)state;
	assert_false(wants(rm, sizeof(rm), alias));
	assert_false(wants(up, sizeof(up), alias));
	assert_false(wants(out, sizeof(out), alias));
	/* Never an option to modprobe. */
	assert_false(wants(opt, sizeof(opt), alias));
	assert_false(wants(none, sizeof(none), alias));
	/* Cut short: the keys after the cut are not read. */
	assert_false(wants(rm, 10, alias));
}

/* The sysfs path (less "/sys") of a device of this machine that has its
 * driver, or "". */
static void bound_device(char *out, size_t len)
{
	static const char *const buses[] = {"/sys/bus/pci/devices",
					    "/sys/bus/virtio/devices"};

	out[0] = '\0';
	for (size_t b = 0; b < 2 && !out[0]; b++) {
		DIR *d = opendir(buses[b]);
		struct dirent *e;

		while (d && !out[0] && (e = readdir(d))) {
			char p[600], real[PATH_MAX];
			struct stat st;

			snprintf(p, sizeof(p), "%s/%s/driver", buses[b],
				 e->d_name);
			if (e->d_name[0] == '.' || stat(p, &st) < 0)
				continue;
			snprintf(p, sizeof(p), "%s/%s", buses[b], e->d_name);
			if (realpath(p, real) && strncmp(real, "/sys/", 5) == 0)
				snprintf(out, len, "%s", real + 4);
		}
		if (d)
			closedir(d);
	}
}

/* A device that has its driver needs nothing: the same event for a
 * device that has none is taken. */
static void test_has_driver(void **state)
{
	char alias[256], dev[PATH_MAX], m[PATH_MAX + 256];
	size_t n;

	(void)state;
	bound_device(dev, sizeof(dev));
	assert_true(dev[0] != '\0'); /* the machine has a bound PCI device */
	n = (size_t)snprintf(m, sizeof(m),
			     "add@%s%cACTION=add%cDEVPATH=%s%c"
			     "MODALIAS=virtio:d00000004v00001AF4",
			     dev, 0, 0, dev, 0);
	assert_false(wants(m, n + 1, alias));
	n = (size_t)snprintf(m, sizeof(m),
			     "add@%s%cACTION=add%cDEVPATH=%s/nodriver%c"
			     "MODALIAS=virtio:d00000004v00001AF4",
			     dev, 0, 0, dev, 0);
	assert_true(wants(m, n + 1, alias));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_added_device_without_driver),
	    cmocka_unit_test(test_classes),
	    cmocka_unit_test(test_not_taken),
	    cmocka_unit_test(test_has_driver),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
