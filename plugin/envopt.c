/* SPDX-License-Identifier: MIT */
#include "envopt.h"

#include "cleanup.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* sbatch's own order (plugin_mirror_env): its variable wins over the one
 * every Slurm command reads. */
static const char *const prefixes[] = {"SBATCH_", "SLURM_"};

/* The longest value vmmd's request takes for option o, NUL included. */
static size_t limit(enum vmspec_opt o)
{
	return o == VMSPEC_OPT_ENV ? VMENV_MAX_IMAGE_NAME : VMSPEC_MAX_OPTARG;
}

/* The first prefix's variable that is set and not empty: 1 with the value
 * in buf and its name in name, 0 when none is, or -E2BIG. */
static int lookup_one(envopt_lookup_fn lookup, void *data, enum vmspec_opt o,
		      char *buf, char *name, size_t namelen, char *err,
		      size_t errlen)
{
	for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++) {
		int r;

		if (vmspec_option_env(o, prefixes[i], name, namelen) < 0)
			continue;
		r = lookup(data, name, buf, limit(o));
		if (r == -ENOSPC) {
			char safe[48];

			return err_set(err, errlen, -E2BIG,
				       "%s='%s' is longer than %zu bytes", name,
				       printable(buf, safe, sizeof(safe)),
				       limit(o) - 1);
		}
		if (r == 0 && *buf)
			return 1;
	}
	return 0;
}

int envopt_collect(envopt_lookup_fn lookup, void *data,
		   const bool given[VMSPEC_NOPTS], struct envopt *e, char *err,
		   size_t errlen)
{
	_cleanup_free_ char *buf = malloc(VMSPEC_MAX_OPTARG);

	memset(e, 0, sizeof(*e));
	if (!buf)
		return -ENOMEM;
	for (int o = 0; o < VMSPEC_NOPTS; o++) {
		int r;

		if (given[o])
			continue;
		r = lookup_one(lookup, data, o, buf, e->from[o],
			       sizeof(e->from[o]), err, errlen);
		if (r == 0) {
			e->from[o][0] = '\0';
			continue;
		}
		if (r > 0 && !(e->value[o] = strdup(buf)))
			r = -ENOMEM;
		if (r < 0) {
			envopt_clear(e);
			return r;
		}
	}
	return 0;
}

void envopt_clear(struct envopt *e)
{
	for (int o = 0; o < VMSPEC_NOPTS; o++) {
		free(e->value[o]);
		e->value[o] = NULL;
		e->from[o][0] = '\0';
	}
}
