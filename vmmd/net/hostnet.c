/* SPDX-License-Identifier: MIT */
/* The names of a job's devices (hostnet.h): pure, shared by the planning,
 * the domain XML's checks and the kernel side. */
#include "hostnet.h"

#include <stdio.h>
#include <string.h>

void hostnet_names(uint32_t job_id, uint32_t node_index,
		   char bridge[HOSTNET_IFNAME_MAX],
		   char tunnel[HOSTNET_IFNAME_MAX],
		   char tap[HOSTNET_IFNAME_MAX])
{
	snprintf(bridge, HOSTNET_IFNAME_MAX, HOSTNET_PREFIX "%08x", job_id);
	snprintf(tunnel, HOSTNET_IFNAME_MAX, HOSTNET_PREFIX "%08xt", job_id);
	snprintf(tap, HOSTNET_IFNAME_MAX, HOSTNET_PREFIX "%08x%04x", job_id,
		 node_index & 0xffffu);
}

bool hostnet_bridge_job(const char *name, uint32_t *job_id)
{
	const size_t plen = strlen(HOSTNET_PREFIX);
	uint32_t v = 0;

	if (strlen(name) != plen + 8 ||
	    strncmp(name, HOSTNET_PREFIX, plen) != 0)
		return false;
	for (const char *p = name + plen; *p; p++) {
		int d = *p >= '0' && *p <= '9'	 ? *p - '0'
			: *p >= 'a' && *p <= 'f' ? *p - 'a' + 10
						 : -1;
		if (d < 0)
			return false;
		v = v << 4 | (uint32_t)d;
	}
	*job_id = v;
	return true;
}
