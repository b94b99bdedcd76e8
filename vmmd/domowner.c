/* SPDX-License-Identifier: MIT */
#include "domowner.h"

#include "util.h"

#include <errno.h>
#include <string.h>

/* The value of attribute name inside the tag [p, end). */
static int attr(const char *p, const char *end, const char *name, char *buf,
		size_t len)
{
	size_t n = strlen(name);

	for (; p + n + 2 < end; p++) {
		const char *v, *e;

		if ((p[-1] != ' ' && p[-1] != '\t' && p[-1] != '\n') ||
		    strncmp(p, name, n) != 0 || p[n] != '=' ||
		    (p[n + 1] != '\'' && p[n + 1] != '"'))
			continue;
		v = p + n + 2;
		e = memchr(v, p[n + 1], (size_t)(end - v));
		if (!e || (size_t)(e - v) >= len)
			return -EINVAL;
		memcpy(buf, v, (size_t)(e - v));
		buf[e - v] = '\0';
		return 0;
	}
	return -ENOENT;
}

static bool plain_name(const char *s)
{
	return *s && strspn(s, "abcdefghijklmnopqrstuvwxyz"
			       "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
			 strlen(s);
}

int domowner_parse(const char *xml, uint32_t *job_id, char *node,
		   size_t nodelen)
{
	const char *p = xml ? strstr(xml, "<vmenv:job") : NULL, *end;
	char id[16];

	/* virDomainGetMetadata gives the element without its prefix and
	 * namespace: <job id="42" node="n1"/>. */
	if (!p && xml && (p = strstr(xml, "<job")) && p[4] != ' ')
		p = NULL;
	if (!p || !(end = strchr(p, '>')))
		return -ENOENT;
	p = strchr(p, ' ');
	if (!p || p > end)
		return -ENOENT;
	if (attr(p + 1, end, "id", id, sizeof(id)) < 0 ||
	    parse_u32(id, job_id) < 0 || *job_id == 0 ||
	    attr(p + 1, end, "node", node, nodelen) < 0 || !plain_name(node))
		return -EINVAL;
	return 0;
}
