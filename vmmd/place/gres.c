/* SPDX-License-Identifier: MIT */
#include "gres.h"

#include "cleanup.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_NAMES 4096

static int errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

struct expand {
	int (*cb)(const char *name, void *data);
	void *data;
	unsigned count;
};

/* One range "01-04" or "7" inside brackets, between prefix and suffix. */
static int expand_range(struct expand *x, const char *pre, size_t prelen,
			const char *range, size_t rlen, const char *suf)
{
	char buf[512], lo_s[16];
	unsigned long lo, hi;
	const char *dash = memchr(range, '-', rlen);
	size_t lolen = dash ? (size_t)(dash - range) : rlen;
	char *end;

	if (lolen == 0 || lolen >= sizeof(lo_s))
		return -EINVAL;
	memcpy(lo_s, range, lolen);
	lo_s[lolen] = '\0';
	lo = strtoul(lo_s, &end, 10);
	if (*end || !isdigit((unsigned char)lo_s[0]))
		return -EINVAL;
	hi = lo;
	if (dash) {
		char hi_s[16];
		size_t hl = rlen - lolen - 1;
		if (hl == 0 || hl >= sizeof(hi_s))
			return -EINVAL;
		memcpy(hi_s, dash + 1, hl);
		hi_s[hl] = '\0';
		hi = strtoul(hi_s, &end, 10);
		if (*end || !isdigit((unsigned char)hi_s[0]) || hi < lo)
			return -EINVAL;
	}
	for (unsigned long n = lo; n <= hi; n++) {
		int r;
		if (++x->count > MAX_NAMES)
			return -E2BIG;
		if (str_printf(buf, sizeof(buf), "%.*s%0*lu%s", (int)prelen,
			       pre, (int)lolen, n, suf) < 0)
			return -EINVAL;
		if ((r = x->cb(buf, x->data)) != 0)
			return r;
	}
	return 0;
}

/* One comma-free (outside brackets) item: "n[1-3,7]x" or "n1". */
static int expand_item(struct expand *x, const char *item, size_t len)
{
	char buf[512], suf[256];
	const char *open = memchr(item, '[', len), *close, *p;
	int r;

	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	if (!open) {
		if (memchr(item, ']', len))
			return -EINVAL;
		memcpy(buf, item, len);
		buf[len] = '\0';
		if (++x->count > MAX_NAMES)
			return -E2BIG;
		return x->cb(buf, x->data);
	}
	close = memchr(open, ']', len - (size_t)(open - item));
	if (!close || close == open + 1 ||
	    memchr(close + 1, '[', len - (size_t)(close + 1 - item)) ||
	    memchr(close + 1, ']', len - (size_t)(close + 1 - item)) ||
	    (size_t)(item + len - close - 1) >= sizeof(suf))
		return -EINVAL;
	snprintf(suf, sizeof(suf), "%.*s", (int)(item + len - close - 1),
		 close + 1);
	for (p = open + 1; p < close;) {
		const char *c = memchr(p, ',', (size_t)(close - p));
		size_t n = c ? (size_t)(c - p) : (size_t)(close - p);

		if ((r = expand_range(x, item, (size_t)(open - item), p, n,
				      suf)) != 0)
			return r;
		p += n + (c != NULL);
	}
	return 0;
}

int gres_expand(const char *expr, int (*cb)(const char *name, void *data),
		void *data)
{
	struct expand x = {cb, data, 0};
	const char *p = expr;

	if (!*p)
		return -EINVAL;
	while (*p) {
		size_t n = 0;
		int depth = 0, r;

		for (; p[n] && (depth || p[n] != ','); n++) {
			if (p[n] == '[')
				depth++;
			else if (p[n] == ']')
				depth--;
			if (depth < 0 || depth > 1)
				return -EINVAL;
		}
		if (depth)
			return -EINVAL;
		if ((r = expand_item(&x, p, n)) != 0)
			return r;
		p += n;
		if (*p == ',' && !*++p)
			return -EINVAL;
	}
	return 0;
}

/* --- gres.conf -------------------------------------------------------- */

struct record {
	const char *nodes, *name, *file, *autodetect, *count;
};

static int match_cb(const char *name, void *data)
{
	return strcmp(name, data) == 0;
}

static int add_file_cb(const char *name, void *data)
{
	struct gres_gpus *g = data;

	if (g->n >= GRES_MAX_GPUS)
		return -E2BIG;
	if (!valid_abs_path(name) || strlen(name) >= GRES_MAX_DEVFILE)
		return -EINVAL;
	snprintf(g->file[g->n++], GRES_MAX_DEVFILE, "%s", name);
	return 0;
}

/* Splits a line into key=value fields (values may not contain spaces). */
static int parse_fields(char *line, struct record *rec)
{
	static const struct {
		const char *key;
		size_t off;
	} keys[] = {
	    {"NodeName", offsetof(struct record, nodes)},
	    {"Name", offsetof(struct record, name)},
	    {"File", offsetof(struct record, file)},
	    {"AutoDetect", offsetof(struct record, autodetect)},
	    {"Count", offsetof(struct record, count)},
	};
	char *save = NULL;

	memset(rec, 0, sizeof(*rec));
	for (char *f = strtok_r(line, " \t\r", &save); f;
	     f = strtok_r(NULL, " \t\r", &save)) {
		char *eq = strchr(f, '=');
		if (!eq || eq == f || !eq[1])
			return -EINVAL;
		*eq = '\0';
		for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
			if (strcasecmp(f, keys[i].key) == 0)
				memcpy((char *)rec + keys[i].off,
				       &(const char *){eq + 1},
				       sizeof(const char *));
		/* Other keys (Type, Cores, Links, Flags) do not matter to
		 * which device an index is. */
	}
	return 0;
}

static int conf_line(char *line, const char *node, struct gres_gpus *ret,
		     bool *autodetect, unsigned lineno, char *err,
		     size_t errlen)
{
	struct record rec;
	int r;

	line[strcspn(line, "#")] = '\0';
	if (parse_fields(line, &rec) < 0)
		return errf(err, errlen,
			    "gres.conf line %u: expected Key=Value", lineno);
	/* A global AutoDetect= applies to the lines after it. */
	if (rec.autodetect)
		*autodetect = strcasecmp(rec.autodetect, "off") != 0;
	if (rec.nodes && (r = gres_expand(rec.nodes, match_cb,
					  (void *)(uintptr_t)node)) != 1) {
		if (r < 0)
			return errf(err, errlen,
				    "gres.conf line %u: bad NodeName", lineno);
		return 0;
	}
	if (!rec.name || strcasecmp(rec.name, "gpu") != 0)
		return 0;
	if (!rec.file)
		return errf(err, errlen,
			    "gres.conf line %u: GPUs without File= (%s) "
			    "cannot be passed through: vmmd needs each GPU's "
			    "device file",
			    lineno, *autodetect ? "AutoDetect" : "Count only");
	r = gres_expand(rec.file, add_file_cb, ret);
	if (r < 0)
		return errf(err, errlen, "gres.conf line %u: %s", lineno,
			    r == -E2BIG ? "too many GPUs"
					: "bad File= (absolute paths, bracket "
					  "ranges)");
	return 0;
}

int gres_conf_gpus(const char *text, const char *node, struct gres_gpus *ret,
		   char *err, size_t errlen)
{
	_cleanup_free_ char *copy = strdup(text);
	bool autodetect = false;
	unsigned lineno = 0;
	char *next;

	if (!copy)
		return -ENOMEM;
	memset(ret, 0, sizeof(*ret));
	for (char *line = copy; line; line = next) {
		int r;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		if ((r = conf_line(line, node, ret, &autodetect, lineno, err,
				   errlen)) < 0)
			return r;
	}
	return 0;
}

/* --- slurmctld's GRES detail ------------------------------------------ */

/* One entry "NAME[:TYPE]:COUNT(IDX:LIST)" or "NAME(CNT:N)" at *p; adds
 * its indices when NAME is gpu; *p moves past it and its comma. */
static int detail_entry(const char **p, struct cpuset *ret, char *err,
			size_t errlen)
{
	const char *s = *p, *open = strchr(s, '('), *close;
	char list[1024];
	struct cpuset idx;
	size_t namelen = strcspn(s, ":(");
	bool gpu = namelen == 3 && strncmp(s, "gpu", 3) == 0;

	if (!open || !(close = strchr(open, ')')))
		return errf(err, errlen, "GRES detail '%.64s' not understood",
			    s);
	*p = close[1] == ',' ? close + 2 : close + 1;
	if (!gpu)
		return 0;
	if (strncmp(open + 1, "IDX:", 4) != 0)
		return errf(err, errlen,
			    "GRES detail '%.*s' has no GPU indices",
			    (int)(close - s + 1), s);
	if ((size_t)(close - open - 5) >= sizeof(list))
		return errf(err, errlen, "GRES detail too long");
	snprintf(list, sizeof(list), "%.*s", (int)(close - open - 5), open + 5);
	if (strcmp(list, "N/A") == 0)
		return 0;
	if (cpuset_parse(list, &idx) < 0)
		return errf(err, errlen, "GRES indices '%s' not understood",
			    list);
	cpuset_or(ret, &idx);
	return 0;
}

int gres_detail_gpus(const char *detail, struct cpuset *ret, char *err,
		     size_t errlen)
{
	const char *p = detail ? detail : "";

	cpuset_zero(ret);
	while (*p) {
		int r = detail_entry(&p, ret, err, errlen);
		if (r < 0)
			return r;
	}
	return 0;
}
