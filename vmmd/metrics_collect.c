/* SPDX-License-Identifier: MIT */
/* The snapshot vmenvctl metrics prints (metrics_collect.h). */
#include "metrics_collect.h"

#include "cleanup.h"
#include "image.h"
#include "jobrec.h"
#include "metrics.h"
#include "vmmd.h"

#include <stdlib.h>
#include <time.h>

/* The cache's size as the directory says now (it is shared with the
 * machine's other vmmds and with vmenvctl image). */
static uint64_t cache_bytes(struct vmmd *d)
{
	_cleanup_free_ struct imgcache_entry *e = NULL;
	uint64_t total = 0;
	size_t n = 0;

	if (!d->images || imgcache_list(images_cache(d), &e, &n) < 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		total += e[i].size;
	return total;
}

int metrics_collect(struct vmmd *d, char **ret, size_t *ret_len)
{
	uint64_t up_s = (now_ms() - d->started_ms) / 1000;
	struct metrics_snapshot s = {
	    .node = d->cfg.node_name,
	    .m = &d->metrics,
	    .start_time_s = (uint64_t)time(NULL) - up_s,
	    .cache_bytes = cache_bytes(d),
	};

	for (const struct job *j = d->jobs; j; j = j->next) {
		s.jobs++;
		if (j->domain_running)
			s.guests_running++;
	}
	return metrics_format(&s, ret, ret_len);
}
