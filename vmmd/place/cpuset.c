/* SPDX-License-Identifier: MIT */
#include "cpuset.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define NWORDS (CPUSET_MAX / 64)

void cpuset_zero(struct cpuset *s)
{
	memset(s, 0, sizeof(*s));
}

void cpuset_set(struct cpuset *s, uint32_t n)
{
	if (n < CPUSET_MAX)
		s->w[n / 64] |= 1ull << (n % 64);
}

bool cpuset_has(const struct cpuset *s, uint32_t n)
{
	return n < CPUSET_MAX && (s->w[n / 64] >> (n % 64)) & 1;
}

uint32_t cpuset_count(const struct cpuset *s)
{
	uint32_t n = 0;

	for (size_t i = 0; i < NWORDS; i++)
		n += (uint32_t)__builtin_popcountll(s->w[i]);
	return n;
}

bool cpuset_empty(const struct cpuset *s)
{
	for (size_t i = 0; i < NWORDS; i++)
		if (s->w[i])
			return false;
	return true;
}

bool cpuset_equal(const struct cpuset *a, const struct cpuset *b)
{
	return memcmp(a->w, b->w, sizeof(a->w)) == 0;
}

bool cpuset_subset(const struct cpuset *a, const struct cpuset *b)
{
	for (size_t i = 0; i < NWORDS; i++)
		if (a->w[i] & ~b->w[i])
			return false;
	return true;
}

bool cpuset_intersects(const struct cpuset *a, const struct cpuset *b)
{
	for (size_t i = 0; i < NWORDS; i++)
		if (a->w[i] & b->w[i])
			return true;
	return false;
}

void cpuset_or(struct cpuset *dst, const struct cpuset *src)
{
	for (size_t i = 0; i < NWORDS; i++)
		dst->w[i] |= src->w[i];
}

void cpuset_and(struct cpuset *dst, const struct cpuset *src)
{
	for (size_t i = 0; i < NWORDS; i++)
		dst->w[i] &= src->w[i];
}

int cpuset_next(const struct cpuset *s, int after)
{
	uint32_t n = (uint32_t)(after + 1);

	while (n < CPUSET_MAX) {
		uint64_t w = s->w[n / 64] >> (n % 64);

		if (w)
			return (int)(n + (uint32_t)__builtin_ctzll(w));
		n = (n / 64 + 1) * 64;
	}
	return -1;
}

/* One decimal number below CPUSET_MAX; *p moves past it. */
static int parse_num(const char **p, uint32_t *ret)
{
	uint32_t n = 0;
	const char *s = *p;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	for (; *s >= '0' && *s <= '9'; s++) {
		n = n * 10 + (uint32_t)(*s - '0');
		if (n >= CPUSET_MAX)
			return -ERANGE;
	}
	*p = s;
	*ret = n;
	return 0;
}

int cpuset_parse(const char *text, struct cpuset *ret)
{
	struct cpuset s;
	const char *p = text;

	cpuset_zero(&s);
	if (*p == '\n' && p[1] == '\0')
		p++;
	while (*p) {
		uint32_t lo, hi;
		int r = parse_num(&p, &lo);

		if (r < 0)
			return r;
		hi = lo;
		if (*p == '-') {
			p++;
			if ((r = parse_num(&p, &hi)) < 0)
				return r;
			if (hi < lo)
				return -EINVAL;
		}
		for (uint32_t n = lo; n <= hi; n++)
			cpuset_set(&s, n);
		if (*p == '\n' && p[1] == '\0')
			p++;
		else if (*p == ',' && p[1] != '\0')
			p++;
		else if (*p)
			return -EINVAL;
	}
	*ret = s;
	return 0;
}

int cpuset_format(const struct cpuset *s, char *buf, size_t len)
{
	size_t o = 0;
	int c = cpuset_next(s, -1);

	if (len == 0)
		return -ENOSPC;
	buf[0] = '\0';
	while (c >= 0) {
		int end = c, n;

		while (cpuset_has(s, (uint32_t)end + 1))
			end++;
		if (end == c)
			n = snprintf(buf + o, len - o, "%s%d", o ? "," : "", c);
		else
			n = snprintf(buf + o, len - o, "%s%d-%d", o ? "," : "",
				     c, end);
		if (n < 0 || (size_t)n >= len - o) {
			buf[0] = '\0';
			return -ENOSPC;
		}
		o += (size_t)n;
		c = cpuset_next(s, end);
	}
	return 0;
}
