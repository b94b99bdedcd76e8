/* SPDX-License-Identifier: MIT */
/*
 * The plugin's configuration: its plugstack.conf arguments (vmenv-spank(8))
 * over the built-in defaults, and the node-name expansion of its paths.
 */
#include "plugin.h"

#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct plugin_cfg plugin_cfg = {
    .catalog = VMENV_SYSCONFDIR "/catalog.json",
    .socket = VMENV_RUNDIR "/%n/vmmd.sock",
    .run_dir = VMENV_RUNDIR "/%n",
    .exec = VMENV_LIBEXECDIR "/vmenv-exec",
    .policies = VMENV_SYSCONFDIR "/policies.d",
    .srun = VMENV_SRUN,
    .timeout_ms = 8000,
};

static int set_cfg(const char *arg)
{
	static const struct {
		const char *key;
		char *dst;
	} paths[] = {
	    {"catalog=", plugin_cfg.catalog},	{"socket=", plugin_cfg.socket},
	    {"run_dir=", plugin_cfg.run_dir},	{"exec=", plugin_cfg.exec},
	    {"policies=", plugin_cfg.policies}, {"srun=", plugin_cfg.srun}};
	uint32_t ms;

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		size_t kl = strlen(paths[i].key);
		if (strncmp(arg, paths[i].key, kl) == 0) {
			if (arg[kl] != '/' ||
			    strlen(arg + kl) >= VMENV_MAX_PATH)
				return -1;
			strcpy(paths[i].dst, arg + kl);
			return 0;
		}
	}
	if (strncmp(arg, "timeout_ms=", 11) == 0 &&
	    parse_u32(arg + 11, &ms) == 0 && ms > 0 && ms < 600000) {
		plugin_cfg.timeout_ms = (int)ms;
		return 0;
	}
	return -1;
}

int plugin_parse_args(int ac, char **av)
{
	int bad = 0;

	for (int i = 0; i < ac; i++) {
		if (set_cfg(av[i]) < 0) {
			log_err("vmenv: init: bad plugstack.conf argument '%s'",
				av[i]);
			bad = -1;
		}
	}
	return bad;
}

int plugin_socket_path(const char *node, char *buf, size_t len)
{
	return plugin_expand_node(plugin_cfg.socket, node, buf, len);
}

int plugin_expand_node(const char *p, const char *node, char *buf, size_t len)
{
	const char *n = strstr(p, "%n");
	int r;

	if (!n)
		r = snprintf(buf, len, "%s", p);
	else if (!node || !*node || strchr(node, '/'))
		return -EINVAL;
	else
		r = snprintf(buf, len, "%.*s%s%s", (int)(n - p), p, node,
			     n + 2);
	return r < 0 || (size_t)r >= len ? -ENAMETOOLONG : 0;
}
